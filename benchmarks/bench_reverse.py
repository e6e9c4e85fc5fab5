"""Reverse dictionary over every headword, on the published development set hill-seen-500.

Run from the repository root (a run of MiniLM on the Open Dictionary lexicon; its indexes and the
shared gloss embeddings are built on first use, which is timed)::

    .venv/bin/python -m benchmarks.bench_reverse --run RUN [--db LEXICON] [--cache-dir DIR] [--plain 5000]

Measured in one run, on `../shared/data/eval/reverse-dictionary/hill-seen-500.json` (metrics as in its
README: the rank of the target among every candidate headword, a miss — target not a headword, left
out as a query word, or ranked past 1000 — counts as rank 1000; median rank, acc@1/10/100 in percent,
rank standard deviation):

* each scorer alone: `tokens` against the original rows and against the generated rows (single-token
  words only), `senses`, the plain baseline (all-MiniLM-L6-v2, mean pooling, normalised, over every
  gloss, cosine, best gloss per word, query words left out: `glosses` with every query embedded whole),
  `glosses` as the library embeds a many-clause query, `headwords`, `lexical`, `frequency`, `lemma`;
* the combination with the library's default weights, on all 500 and on each half;
* weights tuned here by coordinate ascent on acc@10 − median rank / 2 from the default: on all 500 (the
  development set, as the defaults were), and on the even-numbered queries (half A) alone, reported on
  the odd half B that the tuning never saw (how far a tuning on this set carries to new queries);
* queries/s of `ReverseDictionary.search` (k=10, the default combination, batches of 32) over the 500
  queries on this machine;
* build: the one-off build time of the run's reverse index and of the shared sentence embeddings
  (from their manifests), and our encoder against a plain `SentenceTransformer.encode()` of the same
  `--plain` glosses in this run (ratio, and the largest difference between their embeddings).

Every number is printed as one JSON line; `--out FILE` also writes them all to one JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEV = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "eval"
    / "reverse-dictionary"
    / "hill-seen-500.json"
)
MISS = 1000
RECORDS: list[dict[str, Any]] = []


def emit(bench: str, value: float, unit: str, baseline: float | None = None, **extra: Any) -> None:
    rec: dict[str, Any] = {"bench": bench, "value": round(float(value), 4), "unit": unit}
    if baseline is not None:
        rec["baseline"] = round(float(baseline), 4)
        rec["ratio"] = round(float(value) / float(baseline), 3) if baseline else None
    rec.update(extra)
    RECORDS.append(rec)
    print(json.dumps(rec), flush=True)


def ranks_of(fused: np.ndarray, targets: np.ndarray, excluded: list[np.ndarray]) -> np.ndarray:
    """1-based rank of each query's target, MISS when absent, left out as a word of its query, or past
    MISS. Candidates tied with the target count half (the expected rank under a random tie-break: a
    prior alone ties thousands of words). The query's words are left out after fusion, as in search."""
    out = np.full(len(targets), MISS, dtype=np.int64)
    ok = targets >= 0
    tv = np.where(ok, fused[np.arange(len(targets)), np.maximum(targets, 0)], np.inf)
    better = (fused > tv[:, None]).sum(axis=1)
    tied = (fused == tv[:, None]).sum(axis=1) - 1  # the target itself is not a rival
    for i, t in enumerate(targets):
        if not ok[i] or not np.isfinite(tv[i]) or t in set(excluded[i].tolist()):
            continue
        row = fused[i, excluded[i]]  # query words, never candidates
        rivals = int(better[i]) - int((row > tv[i]).sum())
        ties = int(tied[i]) - int((row == tv[i]).sum())
        out[i] = min(MISS, 1 + rivals + ties // 2)
    return out


def metrics(r: np.ndarray) -> dict[str, float]:
    return {
        "median_rank": float(np.median(r)),
        "acc1": 100.0 * float((r <= 1).mean()),
        "acc10": 100.0 * float((r <= 10).mean()),
        "acc100": 100.0 * float((r <= 100).mean()),
        "rank_std": float(r.std()),
    }


def report(name: str, r: np.ndarray, **extra: Any) -> dict[str, float]:
    m = metrics(r)
    emit(
        f"reverse_acc10_{name}",
        m["acc10"],
        "%",
        queries=len(r),
        **{k: round(v, 2) for k, v in m.items()},
        **extra,
    )
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--db", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--plain", type=int, default=5000, help="glosses for the plain-encode speed comparison")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--scorers", default=None, help="comma-separated scorers to load (default: all the run supports)"
    )
    ap.add_argument("--note", default="", help="free text recorded with every line (e.g. the candidate set)")
    args = ap.parse_args(argv)
    if not DEV.is_file():
        print(f"skip: {DEV} is not there (the development set lives in ../shared)", file=sys.stderr)
        return 0
    from definitionemb.index.reverse_dictionary import SCORERS, ReverseDictionary, ensure_reverse, zscore

    dev = json.loads(DEV.read_text(encoding="utf-8"))
    queries = [str(d["definitions"]) for d in dev]
    t0 = time.perf_counter()
    want = args.scorers.split(",") if args.scorers else None
    ensure_reverse(args.run, db=args.db, cache_dir=args.cache_dir, progress=True, scorers=want)
    # Accuracy is measured in float32, as the plain baseline a user would write computes it; the speed
    # pass below uses the library's own precision (bfloat16 where the CPU has it) and reports its ranks.
    rd = ReverseDictionary(
        args.run,
        db=args.db,
        cache_dir=args.cache_dir,
        device="cpu",
        scorers=want,
        precision="float32",
    )
    open_s = time.perf_counter() - t0
    hw = rd.headwords
    index_of = {str(w): i for i, w in enumerate(hw.words.tolist())}
    targets = np.asarray([index_of.get(str(d["word"]), -1) for d in dev], dtype=np.int64)
    note = args.note or f"{hw.n_words} candidate headwords, {hw.n_senses} senses"
    emit(
        "reverse_candidates",
        hw.n_words,
        "words",
        senses=hw.n_senses,
        single_token=int(rd.manifest.n_single_token),
        targets_in_lexicon=int((targets >= 0).sum()),
        note=note,
        load=os.getloadavg()[0],
    )

    # Every scorer's word scores for the 500 queries (query words left out as -inf).
    t1 = time.perf_counter()
    words: dict[str, list[np.ndarray]] = {}
    excluded: list[np.ndarray] = []
    for lo in range(0, len(queries), 32):
        chunk = queries[lo : lo + 32]
        per = rd.sense_scores(chunk, scorers=rd.scorers)
        ws = rd.word_scores(per)
        if "tokens" in rd.scorers and (Path(args.run) / "token_vectors.npy").is_file():
            ws["tokens_generated"] = rd.sense_scores(chunk, scorers=["tokens"], matrix="generated")["tokens"]
        if "glosses" in rd.scorers:
            whole = rd.sense_scores(chunk, scorers=["glosses"], clauses=False)
            ws["plain"] = rd.word_scores(whole)["glosses"]
        for name, v in ws.items():
            words.setdefault(name, []).append(v)
        excluded += rd.excluded(chunk)
    scores = {name: np.concatenate(v) for name, v in words.items()}
    score_s = time.perf_counter() - t1
    alone = {}
    for name in ("plain", "tokens", "tokens_generated", *SCORERS[1:]):
        if name in scores:
            v = np.where(np.isnan(scores[name]), -np.inf, scores[name])
            alone[name] = report(
                name if name != "plain" else "glosses_plain_baseline",
                ranks_of(v, targets, excluded),
                note=note,
            )

    # Combination: the library default, then a grid tuned on half A.
    from definitionemb.index.reverse_dictionary import TOKEN_MISSING

    half_a = np.arange(len(queries)) % 2 == 0
    zs = {n: zscore(scores[n], TOKEN_MISSING if n == "tokens" else -np.inf) for n in rd.scorers}

    def fused(w: dict[str, float], rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        total = None
        for n, x in w.items():
            if x:
                part = zs[n][rows] * np.float32(x)
                total = part if total is None else total + part
        assert total is not None
        return total

    library = rd._weights(None, None)  # the library's default for the loaded scorers
    default = {n: library.get(n, 0.0) for n in rd.scorers}
    base_r = (
        ranks_of(np.where(np.isnan(scores["plain"]), -np.inf, scores["plain"]), targets, excluded)
        if "plain" in scores
        else None
    )

    def report_parts(name: str, r: np.ndarray, w: dict[str, float], parts: tuple[str, ...]) -> None:
        for part in parts:
            mask = {"all": np.ones_like(half_a), "half_a": half_a, "half_b": ~half_a}[part]
            report(
                f"{name}_{part}",
                r[mask],
                weights=w,
                token_missing=TOKEN_MISSING,
                note=note,
                baseline_acc10=round(metrics(base_r[mask])["acc10"], 2) if base_r is not None else None,
                baseline_median_rank=float(np.median(base_r[mask])) if base_r is not None else None,
            )

    r_def = ranks_of(fused(default), targets, excluded)
    report_parts("combination_default", r_def, default, ("all", "half_a", "half_b"))
    grid = {
        "tokens": [0.0, 0.05, 0.1],
        "senses": [0.0, 0.1, 0.2, 0.3, 0.5],
        "headwords": [0.0, 0.1, 0.2, 0.3],
        "glosses": [0.5, 1.0],
        "lexical": [0.0, 0.05, 0.1, 0.2, 0.3],
        "frequency": [0.0, 1.0, 1.5, 2.0, 2.5, 3.0],
        "lemma": [0.0, 0.1, 0.2, 0.3],
    }

    def objective(w: dict[str, float], rows: np.ndarray) -> tuple[float, float]:
        m = metrics(ranks_of(fused(w, rows), targets[rows], [excluded[i] for i in rows]))
        return (m["acc10"] - 0.5 * m["median_rank"], m["acc10"])

    def tune(rows: np.ndarray) -> dict[str, float]:
        """Coordinate ascent from the default, one scorer's weight at a time, until nothing improves."""
        w = dict(default)
        best = objective(w, rows)
        for _ in range(3):
            moved = False
            for n in rd.scorers:
                for x in grid[n]:
                    if x == w.get(n) or not any(v for k, v in {**w, n: x}.items()):
                        continue
                    c = objective({**w, n: x}, rows)
                    if c > best:
                        best, w, moved = c, {**w, n: x}, True
            if not moved:
                break
        return w

    every = np.arange(len(queries))
    w_all = tune(every)
    report_parts(
        "combination_tuned_on_all",
        ranks_of(fused(w_all), targets, excluded),
        w_all,
        ("all",),
    )
    w_a = tune(every[half_a])
    r_a = ranks_of(fused(w_a), targets, excluded)
    report_parts("combination_tuned_on_half_a", r_a, w_a, ("half_a", "half_b"))

    # Speed: queries/s of the library's search (default weights, default precision), after one warm-up
    # batch, against the same search scoring every word with every scorer (rerank=0, the previous
    # pass) and the plain baseline (the sentence embedding of the glosses alone), in the same process;
    # then the ranks that search gives (k=100: a target past 100 is a miss).
    from definitionemb.index.reverse_dictionary import RERANK

    t5 = time.perf_counter()
    fast = ReverseDictionary(args.run, db=args.db, cache_dir=args.cache_dir, device="cpu")
    fast.search(queries[:32], k=10)
    fast_open_s = time.perf_counter() - t5
    cases: dict[str, dict[str, Any]] = {"default": {}, "every_word": {"rerank": 0}}
    if "glosses" in fast.scorers:
        cases["plain"] = {"scorers": ["glosses"]}
    speeds: dict[str, float] = {}
    for _ in range(2):  # interleaved twice: the machine's speed drifts within minutes
        for name, kw in cases.items():
            t2 = time.perf_counter()
            fast.search(queries, k=10, **kw)
            speeds[name] = max(speeds.get(name, 0.0), len(queries) / (time.perf_counter() - t2))
    qs = speeds["default"]
    emit(
        "reverse_queries_per_s",
        qs,
        "queries/s",
        baseline=speeds.get("plain"),
        k=10,
        rerank=RERANK,
        every_word_queries_per_s=round(speeds["every_word"], 2),
        vs_every_word=round(qs / speeds["every_word"], 3),
        baseline_is="the plain baseline's search (glosses only), same process; best of 2 interleaved",
        precision=str(fast._dtype()).replace("torch.", ""),
        load=os.getloadavg()[0],
        cores=os.cpu_count(),
        scoring_pass_s=round(score_s, 1),
        open_s=round(fast_open_s, 1),
        accuracy_pass_open_s=round(open_s, 1),
    )
    for name, kw in (
        ("search_default_library_precision", {}),
        ("search_every_word_library_precision", {"rerank": 0}),
    ):
        top = fast.search(queries, k=100, **kw)  # type: ignore[arg-type]
        hit = {(int(q), str(w)): int(r) for q, w, r in top.select("query", "word", "rank").iter_rows()}
        r_fast = np.asarray(
            [hit.get((i, str(d["word"])), MISS) if targets[i] >= 0 else MISS for i, d in enumerate(dev)]
        )
        report(name, r_fast, weights=fast._weights(None, None), rerank=kw.get("rerank", RERANK), note=note)

    # Build: what the manifests recorded, and our encoder against a plain sentence-transformers encode.
    if rd.glosses is not None:
        gm = rd.glosses.manifest
        emit("reverse_build_gloss_embeddings_s", gm.seconds, "s", texts=gm.n, texts_per_s=gm.texts_per_s)
        emit("reverse_build_headword_embeddings_s", rd.heads.manifest.seconds, "s", texts=rd.heads.manifest.n)  # type: ignore[union-attr]
    emit(
        "reverse_build_run_index_s",
        float(rd.manifest.seconds.get("total", 0.0)),
        "s",
        parts=rd.manifest.seconds,
    )
    if rd.glosses is not None and args.plain > 0:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            print("skip plain encode: sentence-transformers is not installed", file=sys.stderr)
        else:
            from definitionemb.index.sentence import SentenceEncoder

            rng = np.random.default_rng(0)
            pick = np.sort(rng.choice(hw.n_senses, size=min(args.plain, hw.n_senses), replace=False))
            texts = [str(g) for g in hw.gloss[pick]]
            model = rd.glosses.manifest.model
            enc = SentenceEncoder(model, device="cpu", max_length=rd.glosses.manifest.max_length)
            t3 = time.perf_counter()
            ours = enc.encode(texts)
            ours_s = time.perf_counter() - t3
            st = SentenceTransformer(model, device="cpu")
            t4 = time.perf_counter()
            plain = st.encode(texts, batch_size=32, convert_to_numpy=True)
            plain_s = time.perf_counter() - t4
            emit(
                "reverse_gloss_encode_s",
                ours_s,
                "s",
                baseline=plain_s,
                texts=len(texts),
                max_abs_diff=float(np.abs(ours - plain).max()),
                min_cosine=float((ours * plain).sum(1).min()),
                load=os.getloadavg()[0],
                baseline_is="SentenceTransformer.encode(batch_size=32)",
            )
    if args.out:
        Path(args.out).write_text(json.dumps(RECORDS, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

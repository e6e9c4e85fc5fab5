"""The reverse dictionary over every headword: describe a word, get the word.

Candidates are the lexicon's headwords (:mod:`index.headwords`), split words included. Scorers, all
from the run's own model:

- `tokens`: the regressor's vector of the query (`embedder.encode_definitions`) against the token row
  (original or generated matrix) of single-token words; split words get no score from it;
- `senses`: the same query vector against every sense vector of the run, best sense per word;
- `glosses`: where the base model is a sentence encoder (MiniLM), its pooled embedding of the query
  against each gloss's, best gloss per word — the plain sentence-embedding baseline;
- `headwords`: that sentence embedding against the embedding of the headword itself;
- `lexical`: BM25 of the query's words against each gloss's (:mod:`index.lexical`), best gloss per
  word: the exact rare words a definition and the right gloss share;
- `frequency`: no similarity but a prior, the headword's Zipf frequency in real English text
  (:func:`index.headwords.word_zipf`, wordfreq) capped at :data:`ZIPF_CAP`, the same for every query:
  people describe words they use, and most of a large dictionary's headwords (64 % of Open
  Dictionary's) appear in none of wordfreq's corpora;
- `lemma`: a prior too, the share of the word's senses that are its own rather than "form of" /
  "alternative form of" another word (:func:`index.headwords.lemma_share`).

The sentence scorers embed a query of several ";"-separated clauses as the mean of its whole embedding
and its clauses' mean (:func:`index.headwords.query_clauses`; dictionary senses are one clause each).
The combination z-scores each scorer's word scores per query (over all candidates) and adds them with
weights (:data:`DEFAULT_WEIGHTS`, tuned on the development set by `benchmarks/bench_reverse.py`);
split words take `token_missing` for the `tokens` z-score. Words of the query itself are left out.
It runs in two passes: the sentence scorers and the priors score every word, and the
:data:`SECOND_PASS` scorers only the first pass's :data:`RERANK` best words of each query, their mean and
spread taken over a fixed sample of words (`rerank=0` scores every word with every scorer).

What a run needs beyond its vectors is kept in `<run>/index/reverse/` (manifest, per-word token ids, sense
norms), built on first use and refused when stale; the sentence embeddings are shared per lexicon and
base model (:mod:`index.gloss_cache`).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from definitionemb.core.fileio import claim_output, output_file, save_npy, write_bytes
from definitionemb.embedder.binding import bound
from definitionemb.embedder.rundir import RunDir
from definitionemb.index.errors import IndexMismatch, IndexMissing, IndexStageError
from definitionemb.index.faiss_index import source_digest
from definitionemb.index.headwords import (
    WORD_RE,
    Headwords,
    lemma_share,
    load_headwords,
    query_clauses,
    query_words,
    single_token_ids,
    word_zipf,
)
from definitionemb.index.vocabulary import RunLike, as_run

__all__ = [
    "SCORERS",
    "SECOND_PASS",
    "RERANK",
    "DEFAULT_WEIGHTS",
    "TOKEN_MISSING",
    "ZIPF_CAP",
    "ReverseManifest",
    "ReverseDictionary",
    "open_reverse",
    "build_reverse",
    "reverse_words",
    "reverse_batch",
    "BatchResult",
    "check_query",
    "supported_scorers",
    "zscore",
    "fast_bfloat16",
]

SCORERS = ("tokens", "senses", "glosses", "headwords", "lexical", "frequency", "lemma")
SENSE_LEVEL = ("senses", "glosses", "lexical")  # scored per sense, then best sense per word
# Tuned on hill-seen-500 (its README: a development set) with all 262,869 Open Dictionary headwords as
# candidates, MiniLM quick run, by coordinate search on acc@10 and median rank (RESULTS.md, "Reverse
# dictionary, fourth pass"): the sentence embedding of the glosses leads; the frequency prior, the
# regressor's sense vectors, the headword embedding, BM25 and the lemma prior each add to it. Token
# rows add nothing on top (they score alone; weight 0 here).
DEFAULT_WEIGHTS: dict[str, float] = {
    "tokens": 0.0,
    "senses": 0.3,
    "glosses": 1.0,
    "headwords": 0.2,
    "lexical": 0.1,
    "frequency": 2.0,
    "lemma": 0.1,
}
# Runs whose base model is no sentence encoder (RoBERTa, BART) have no sentence scorers; tuned the
# same way with `glosses`/`headwords` left out.
NO_SENTENCE_WEIGHTS: dict[str, float] = {
    "tokens": 0.0,
    "senses": 1.0,
    "lexical": 0.2,
    "frequency": 1.5,
    "lemma": 0.1,
}
TOKEN_MISSING = 0.0
# Past ~30 uses per 10^9 words (Zipf 1.5) a word is plainly in use and more frequency says little about
# whether it answers a definition; the cap was the best of {1, 1.5, 2, 3, none} on half A (RESULTS.md).
ZIPF_CAP = 1.5
REVERSE_FORMAT = 1  # lexical.npz and lemma.npy came later: an index without them is extended, not refused
_CHUNK = 16  # queries scored together: 16 keeps the senses×n scores (28 MB at 441k senses) in cache; 56 q/s vs 47 at 32
# The regressor's sense vectors and BM25 cost as much over every sense as the sentence scorers, and only
# reorder the words those already rank high: a second pass gives them the first pass's RERANK best words
# per query (RESULTS.md, "Reverse dictionary, fifth pass": on hill-seen-500 any cut from 200 up gives
# the acc@10 and median rank of scoring every word, 500 keeps acc@100 within 0.2). Their z-scores take
# each query's mean and spread over a fixed sample of _SAMPLE words, the sample every query shares.
RERANK = 500
SECOND_PASS = ("senses", "lexical", "headwords")
_SAMPLE = 4096
_QUERY_BATCH = 16  # queries per encoder forward, longest first: 2.5× the speed of a padded chunk of 16
_BLOCK = 256  # queries encoded together before they are scored a chunk at a time
_COLUMNS = ["query", "rank", "word", "score", "pos", "gloss", "single_token", "token_id", "sense_id"]

DbPath = str | os.PathLike[str] | None


@dataclass(frozen=True)
class ReverseManifest:
    """`<run>/index/reverse/manifest.json`: what the run's reverse index was built from."""

    format: int
    run_id: str
    lexicon_fingerprint: str
    headwords_sha256: str
    n_words: int
    n_senses: int
    n_single_token: int
    tokenizer_id: int
    scorers: list[str]
    sense_vectors_digest: str
    token_vectors_digest: str
    original_vectors_digest: str
    glosses: str | None  # cache folder of the gloss sentence embeddings (None: not a sentence encoder)
    glosses_digest: str | None
    headwords: str | None
    headwords_digest: str | None
    seconds: dict[str, float] = field(default_factory=dict)
    frequency: str | None = None  # the word list behind `frequency` ("wordfreq 3.1.1"); None: not built
    lexical: str | None = None  # GlossBM25.spec of lexical.npz; None: not built

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def zscore(v: np.ndarray, missing: float) -> np.ndarray:
    """Per-row z-scores of word scores over their finite values; NaN (no score: a split word under
    `tokens`) becomes `missing`, -inf (filtered out) stays -inf."""
    v = np.asarray(v, dtype=np.float32)
    t = _as_tensor(v)
    if _all_finite(t):  # the common case: torch's reductions use every core, numpy's one
        d, sd, _ = _centred(t)
        return (d / sd.clamp_min(1e-9)).numpy()
    finite = np.isfinite(v)
    vv = np.where(finite, v, np.nan)
    mu = np.nanmean(vv, axis=1, keepdims=True)
    sd = np.nanstd(vv, axis=1, keepdims=True)
    z = (vv - mu) / np.maximum(sd, 1e-9)
    return np.where(np.isnan(v), np.float32(missing), np.where(finite, z, -np.inf)).astype(np.float32)


def _centred(t: Any) -> tuple[Any, Any, Any]:
    """A finite n×W tensor less its row means, the population standard deviations and the means
    (n×1 each).

    Two plain reductions (the sum, then the norm of the deviations): torch's `std_mean` (Welford) took
    13 ms on 16×262k scores where these take 3-4 ms; the deviations are what the fusion adds up, so
    a near-constant scorer (σ ≪ μ) loses no precision to a large shift added at the end."""
    import torch

    mu = t.sum(dim=1, keepdim=True) / t.shape[1]
    d = t - mu
    return d, torch.linalg.vector_norm(d, dim=1, keepdim=True) / math.sqrt(t.shape[1]), mu


def _all_finite(t: Any) -> bool:
    """No NaN or ±inf anywhere (the scores are bounded, so their sum is finite exactly then)."""
    return math.isfinite(float(t.sum()))


def fast_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16/AMX), where they run 2-3×
    faster than float32; elsewhere bfloat16 would be emulated and slower."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def _as_tensor(v: np.ndarray) -> Any:
    """A zero-copy torch view of a float32 array where possible, strided ones (the transposed word
    scores of `Headwords.word_max`) included; a read-only one, such as a broadcast prior row, is
    copied: torch tensors are writable."""
    import torch

    if v.flags.writeable and all(st >= 0 for st in v.strides):
        return torch.from_numpy(v)
    return torch.from_numpy(np.array(v))


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores (any order; ties are ordered by the caller)."""

    return _as_tensor(scores).topk(k, dim=1, sorted=False).indices.numpy()


def check_query(text: str, what: str = "the query") -> str:
    """The query stripped; a clear error when it has no letters (nothing to look up)."""
    if not isinstance(text, str) or not WORD_RE.search(text):
        raise IndexStageError(
            f"{what} {text!r} has no letters; the reverse dictionary needs a definition in words, "
            'e.g. "a small domesticated feline"'
        )
    return text.strip()


def _rebuild_hint(run: RunDir) -> str:
    return f"defemb reverse --run {run.path} --rebuild"


def _model_of(run: RunDir) -> tuple[str, str]:
    m = run.manifest()
    model, sha = m.get("model"), m.get("model_sha256")
    if not model or not sha:
        raise IndexStageError(f"run {run.path} records no model/model_sha256 in its manifest; retrain it")
    return str(model), str(sha)


def _sentence_caches(
    run: RunDir, hw: Headwords, lex_fp: str, cache_dir: DbPath, build: bool, progress: bool
) -> tuple[Any, Any]:
    from definitionemb.index.gloss_cache import sentence_vectors
    from definitionemb.index.sentence import sentence_spec

    model, sha = _model_of(run)
    if not Path(model).is_dir():
        raise IndexStageError(
            f"the run's base model folder {model} is gone; the sentence-embedding scorers need it"
        )
    if sentence_spec(model) is None:
        return None, None
    key = hw.digest()
    glosses = sentence_vectors(
        hw.gloss, "glosses", lex_fp, model, sha, key, cache_dir, build=build, progress=progress
    )
    heads = sentence_vectors(
        hw.words, "headwords", lex_fp, model, sha, key, cache_dir, build=build, progress=progress
    )
    return glosses, heads


# What an encoder pass over a lexicon costs on a 2-core CPU with MiniLM (issue 27: 82,773 sense vectors
# at 80–110 per second); the up-front estimate of a build divides by it.
ENCODE_PER_S_CPU = 90.0
_SENSE_CHUNK = 2048  # senses encoded between two saves of a resumable build (~20 s on 2 cores)


def _write_sense_vectors(run: RunDir, hw: Headwords, progress: bool) -> float:
    """sense_vectors.npy + sense_ids.npy through the regressor (the generation prompt, with POS).

    Chunks go into `<run>/index/reverse/.sense_vectors.partial/` as they are done, so an interrupted
    build (Ctrl-C) resumes where it stopped; a partial build of other senses or vectors starts over.
    """
    import shutil

    from tqdm import tqdm

    encode = importlib.import_module("definitionemb.embedder").encode_definitions
    t0 = time.perf_counter()
    dim = int(run.manifest().get("dim") or run.original_vectors().shape[1])
    n = hw.n_senses
    partial = run.path / "index" / "reverse" / ".sense_vectors.partial"
    stamp = {
        "run_id": run.run_id,
        "headwords_sha256": hw.digest(),
        "token_vectors_digest": _digest_or_none(run.path / "token_vectors.npy"),
        "n": n,
        "dim": dim,
    }
    stamp_path, vec_path, done_path = partial / "stamp.json", partial / "vectors.npy", partial / "done.npy"
    n_chunks = (n + _SENSE_CHUNK - 1) // _SENSE_CHUNK
    fresh = not (stamp_path.is_file() and vec_path.is_file() and done_path.is_file())
    if not fresh:
        try:
            fresh = json.loads(stamp_path.read_text(encoding="utf-8")) != stamp
        except (OSError, json.JSONDecodeError):
            fresh = True
    if fresh:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        mm = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float32, shape=(n, dim))
        done = np.zeros(n_chunks, dtype=bool)
        save_npy(done_path, done)
        write_bytes(stamp_path, json.dumps(stamp).encode())
    else:
        mm = np.lib.format.open_memmap(vec_path, mode="r+")
        done = np.load(done_path)
    with tqdm(
        total=n,
        initial=min(n, int(done.sum()) * _SENSE_CHUNK),
        desc="sense vectors",
        unit="sense",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        for c in range(n_chunks):
            if done[c]:
                continue
            lo, hi = c * _SENSE_CHUNK, min(n, (c + 1) * _SENSE_CHUNK)
            mm[lo:hi] = encode(run, hw.gloss[lo:hi].tolist(), hw.sense_pos[lo:hi].tolist())
            mm.flush()
            done[c] = True
            save_npy(done_path, done)
            bar.update(hi - lo)
    run.save_array("sense_vectors.npy", np.asarray(mm))
    run.save_array("sense_ids.npy", hw.sense_ids)
    del mm
    shutil.rmtree(partial, ignore_errors=True)
    return time.perf_counter() - t0


def _announce(run: RunDir, hw: Headwords, sense_vectors: bool, sentence: bool) -> None:
    """Say before a long build what it will encode and about how long it takes (stderr)."""
    parts, texts = [], 0
    if sense_vectors:
        parts.append(f"{hw.n_senses:,} sense vectors")
        texts += hw.n_senses
    if sentence:
        parts.append(f"the sentence embeddings of {hw.n_senses:,} glosses and {hw.n_words:,} headwords")
        texts += hw.n_senses + hw.n_words
    if not texts:
        return
    minutes = texts / ENCODE_PER_S_CPU / 60
    when = f"~{minutes:.0f} min on a 2-core CPU" if minutes >= 1 else "under a minute"
    print(
        f"building the reverse index of run {run.path}: {' and '.join(parts)}, {when} (less on a GPU); "
        "Ctrl-C keeps what is done and the next build resumes there",
        file=sys.stderr,
        flush=True,
    )


def _digest_or_none(path: Path) -> str:
    return source_digest(path) if path.is_file() else ""


def _supported(run: RunDir) -> tuple[str, ...]:
    from definitionemb.index.sentence import sentence_spec

    model = run.manifest().get("model")
    sentence = bool(model) and Path(str(model)).is_dir() and sentence_spec(str(model)) is not None
    return SCORERS if sentence else tuple(s for s in SCORERS if s not in ("glosses", "headwords"))


def supported_scorers(run: RunLike) -> tuple[str, ...]:
    """The scorers a run's reverse dictionary can have: all of :data:`SCORERS`, less `glosses` and
    `headwords` where its base model is no sentence encoder."""
    return _supported(as_run(run))


def _frequency_source() -> str:
    from importlib.metadata import version

    return f"wordfreq {version('wordfreq')}"


def _sentence_missing(
    run: RunDir, hw: Headwords, lex_fp: str, cache_dir: DbPath, want: Sequence[str]
) -> bool:
    """Whether the `glosses`/`headwords` scorers in `want` still need their sentence embeddings built."""
    if not {"glosses", "headwords"} & set(want):
        return False
    from definitionemb.index.gloss_cache import cache_dir_for

    _, sha = _model_of(run)
    return any(
        not (cache_dir_for(lex_fp, sha, hw.digest(), kind, cache_dir) / "manifest.json").is_file()
        for kind in ("glosses", "headwords")
    )


def build_reverse(
    run: RunLike,
    db: DbPath = None,
    cache_dir: DbPath = None,
    progress: bool = True,
    scorers: Sequence[str] | None = None,
) -> ReverseManifest:
    """Build (or rebuild) what the reverse dictionary needs for a run's `scorers` (default: all the run
    supports) and write its manifest.

    `senses` needs sense vectors: written through the regressor when the run has none or they do not
    follow the lexicon's senses. `glosses`/`headwords` need the shared sentence embeddings, built only
    if their cache entry is missing.
    """
    r = as_run(run)
    want = _check_scorers(scorers, _supported(r))
    t0 = time.perf_counter()
    with bound(r, db) as lex:
        from definitionemb.lexicon.db import fingerprint

        lex_fp = fingerprint(lex.con)
        hw = load_headwords(lex.con)
        tid = lex.tokenizer_id
        token_ids = single_token_ids(lex.con, tid, hw.words)
        lemma = lemma_share(lex.con, hw) if "lemma" in want else None
    seconds: dict[str, float] = {"headwords": round(time.perf_counter() - t0, 3)}
    out = r.path / "index" / "reverse"
    save_npy(out / "token_ids.npy", token_ids)
    sv_path = r.path / "sense_vectors.npy"
    need_senses = "senses" in want and not (
        sv_path.is_file()
        and (r.path / "sense_ids.npy").is_file()
        and np.array_equal(np.asarray(r.sense_ids()), hw.sense_ids)
    )
    if progress:
        _announce(r, hw, need_senses, _sentence_missing(r, hw, lex_fp, cache_dir, want))
    if "senses" in want:
        if need_senses:
            seconds["sense_vectors"] = round(_write_sense_vectors(r, hw, progress), 3)
        t1 = time.perf_counter()
        sv = np.asarray(r.sense_vectors())
        norms = np.linalg.norm(sv, axis=1).astype(np.float32)
        inv = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
        del sv
        save_npy(out / "sense_inv_norms.npy", inv)
        seconds["sense_norms"] = round(time.perf_counter() - t1, 3)
    freq = None
    if "frequency" in want:
        t3 = time.perf_counter()
        save_npy(out / "zipf.npy", word_zipf(hw.words))
        freq = _frequency_source()
        seconds["frequency"] = round(time.perf_counter() - t3, 3)
    if lemma is not None:
        save_npy(out / "lemma.npy", lemma)
    lexical = None
    if "lexical" in want:
        from definitionemb.index.lexical import GlossBM25

        t4 = time.perf_counter()
        bm25 = GlossBM25.build(hw.gloss.tolist())
        bm25.save(out / "lexical.npz")
        lexical = bm25.spec
        seconds["lexical"] = round(time.perf_counter() - t4, 3)
    glosses = heads = None
    if {"glosses", "headwords"} & set(want):
        t2 = time.perf_counter()
        glosses, heads = _sentence_caches(r, hw, lex_fp, cache_dir, build=True, progress=progress)
        seconds["sentence_embeddings"] = round(time.perf_counter() - t2, 3)
    man = ReverseManifest(
        format=REVERSE_FORMAT,
        run_id=r.run_id,
        lexicon_fingerprint=lex_fp,
        headwords_sha256=hw.digest(),
        n_words=hw.n_words,
        n_senses=hw.n_senses,
        n_single_token=int((token_ids >= 0).sum()),
        tokenizer_id=tid,
        scorers=[s for s in SCORERS if s in want or (s in ("glosses", "headwords") and glosses is not None)],
        sense_vectors_digest=source_digest(sv_path) if "senses" in want else "",
        token_vectors_digest=_digest_or_none(r.path / "token_vectors.npy"),
        original_vectors_digest=_digest_or_none(r.path / "original_vectors.npy"),
        glosses=str(glosses.path) if glosses is not None else None,
        glosses_digest=glosses.manifest.vectors_digest if glosses is not None else None,
        headwords=str(heads.path) if heads is not None else None,
        headwords_digest=heads.manifest.vectors_digest if heads is not None else None,
        seconds={**seconds, "total": round(time.perf_counter() - t0, 3)},
        frequency=freq,
        lexical=lexical,
    )
    write_bytes(out / "manifest.json", json.dumps(man.to_dict(), indent=2, sort_keys=True).encode())
    return man


def _check_scorers(scorers: Sequence[str] | None, supported: Sequence[str]) -> list[str]:
    if scorers is None:
        return list(supported)
    want = list(dict.fromkeys(scorers))
    unknown = set(want) - set(SCORERS)
    if unknown:
        raise IndexStageError(f"unknown scorer(s) {sorted(unknown)}; choose from {', '.join(SCORERS)}")
    missing = set(want) - set(supported)
    if missing:
        raise IndexStageError(
            f"scorer(s) {sorted(missing)} need a sentence-encoder base model (e.g. all-MiniLM-L6-v2); "
            f"this run's model is not one: use {', '.join(supported)}"
        )
    return want


def _stale(run: RunDir, man: ReverseManifest, lex_fp: str, hw: Headwords) -> str | None:
    """Why the run's reverse index no longer matches the run and lexicon (None when current)."""
    if man.format != REVERSE_FORMAT:
        return f"it has format {man.format}, this definitionemb reads {REVERSE_FORMAT}"
    if man.run_id != run.run_id:
        return f"it was built for run {man.run_id!r} (copied from another run?)"
    if man.lexicon_fingerprint != lex_fp or man.headwords_sha256 != hw.digest():
        return "the lexicon's words or senses changed since it was built"
    checks = [
        ("token_vectors.npy", man.token_vectors_digest),
        ("original_vectors.npy", man.original_vectors_digest),
    ]
    if "senses" in man.scorers:
        checks.insert(0, ("sense_vectors.npy", man.sense_vectors_digest))
    for name, want in checks:
        if _digest_or_none(run.path / name) != want:
            return f"{name} changed after it was built (vectors regenerated?)"
    if "frequency" in man.scorers and man.frequency != _frequency_source():
        return f"its word frequencies come from {man.frequency}, this machine has {_frequency_source()}"
    if "lexical" in man.scorers and not man.lexical:
        return "it lists the lexical scorer but records no lexical index"
    return None


def _read_manifest(run: RunDir) -> ReverseManifest | None:
    path = run.path / "index" / "reverse" / "manifest.json"
    if not path.is_file():
        return None
    try:
        return ReverseManifest(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise IndexMismatch(
            f"{path} is not a readable manifest ({exc}); rebuild with: {_rebuild_hint(run)}"
        ) from exc


class ReverseDictionary:
    """A run's reverse dictionary, loaded once and queried many times (see the module docstring).

    `scorers` (default: every scorer the run supports) are the ones it loads; what they need and the
    run lacks is built first when `build` (else :class:`IndexMissing`). A stale index is refused.
    """

    def __init__(
        self,
        run: RunLike,
        db: DbPath = None,
        cache_dir: DbPath = None,
        build: bool = True,
        progress: bool = True,
        device: str = "auto",
        scorers: Sequence[str] | None = None,
        precision: str = "auto",
    ) -> None:
        r = as_run(run)
        self.run = r
        self.device = device
        if precision not in ("auto", "float32", "bfloat16"):
            raise IndexStageError(f"precision must be auto, float32 or bfloat16, not {precision!r}")
        self.precision = precision
        want = _check_scorers(scorers, _supported(r))
        with bound(r, db) as lex:
            from definitionemb.lexicon.db import fingerprint

            self.db = lex.check()
            lex_fp = fingerprint(lex.con)
            self.headwords = load_headwords(lex.con)
            self.pos_values = sorted({str(p) for p in self.headwords.sense_pos.tolist() if p is not None})
        man = _read_manifest(r)
        if man is not None:
            why = _stale(r, man, lex_fp, self.headwords)
            if why:
                raise IndexMismatch(
                    f"the reverse-dictionary index of run {r.path} is stale: {why}; "
                    f"rebuild with: {_rebuild_hint(r)}"
                )
        if man is None or set(want) - set(man.scorers):
            if not build:
                raise IndexMissing(
                    f"run {r.path} has no reverse-dictionary index for {', '.join(want)}; "
                    f"build it with: {_rebuild_hint(r)}"
                )
            had = man.scorers if man is not None else []
            man = build_reverse(r, db, cache_dir, progress, [s for s in SCORERS if s in set(want) | set(had)])
        self.manifest = man
        self._scorers = tuple(s for s in SCORERS if s in want)
        folder = r.path / "index" / "reverse"
        self.token_ids = np.load(folder / "token_ids.npy")
        if self.token_ids.shape != (self.headwords.n_words,):
            raise IndexMismatch(
                f"{folder} does not match the lexicon's table; rebuild with: {_rebuild_hint(r)}"
            )
        self.sense_vectors: np.ndarray | None = None
        if "senses" in self._scorers:
            self.inv_norms = np.load(folder / "sense_inv_norms.npy")
            self.sense_vectors = r.sense_vectors()
            if (
                self.inv_norms.shape != (self.headwords.n_senses,)
                or self.sense_vectors.shape[0] != self.headwords.n_senses
            ):
                raise IndexMismatch(
                    f"{folder} does not match the lexicon's senses; rebuild with: {_rebuild_hint(r)}"
                )
        self.zipf = self._word_prior("frequency", "zipf.npy")
        self.lemma = self._word_prior("lemma", "lemma.npy")
        self.lexical: Any = None
        if "lexical" in self._scorers:
            from definitionemb.index.lexical import GlossBM25

            try:
                self.lexical = GlossBM25.load(folder / "lexical.npz", self.headwords.n_senses)
            except IndexMismatch as exc:
                raise IndexMismatch(f"{exc}; rebuild with: {_rebuild_hint(r)}") from exc
            if self.lexical.spec != man.lexical:
                raise IndexMismatch(
                    f"{folder}/lexical.npz is not the index its manifest records; rebuild with: {_rebuild_hint(r)}"
                )
        self.glosses: Any = None
        self.heads: Any = None
        if {"glosses", "headwords"} & set(self._scorers):
            self.glosses, self.heads = _sentence_caches(r, self.headwords, lex_fp, cache_dir, build, progress)
            if (
                self.glosses is None
                or self.glosses.manifest.vectors_digest != man.glosses_digest
                or self.heads.manifest.vectors_digest != man.headwords_digest
            ):
                raise IndexMismatch(
                    f"the shared sentence embeddings changed since run {r.path}'s reverse index was built; "
                    f"rebuild with: {_rebuild_hint(r)}"
                )
        self.single = np.flatnonzero(self.token_ids >= 0)
        self._token_rows: dict[str, np.ndarray] = {}
        self._encoder: Any = None
        self._mats: dict[str, Any] = {}
        self._sample_words: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._sample_mats: dict[str, Any] = {}  # second-pass matrix rows of the sample words

    def _word_prior(self, scorer: str, name: str) -> np.ndarray | None:
        """A prior's one value per word from the run's reverse folder (None when `scorer` is not loaded)."""
        if scorer not in self._scorers:
            return None
        path = self.run.path / "index" / "reverse" / name
        prior = np.load(path)
        if prior.shape != (self.headwords.n_words,):
            raise IndexMismatch(
                f"{path} does not match the lexicon's words; rebuild with: {_rebuild_hint(self.run)}"
            )
        return np.asarray(prior)

    def _dtype(self) -> Any:
        import torch

        if self.precision == "float32":
            return torch.float32
        if self.precision == "bfloat16" or self._torch_device().type == "cuda" or fast_bfloat16():
            return torch.bfloat16
        return torch.float32

    def _torch_device(self) -> Any:
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _by_sense(self, name: str, q: np.ndarray, rows_first: bool = True) -> np.ndarray:
        """S×n scores of every row of matrix `name` (senses: unit rows; glosses, headwords) against every
        query; its transposed view is n×S. One contiguous row per sense, so the per-word max reads whole
        rows (`Headwords.word_max`). The matrices live as torch tensors, in bfloat16 where the hardware
        multiplies it natively (ranks on hill-seen-500 as in float32 within ±0.4 points, RESULTS.md)."""
        import torch

        mat = self._matrix(name)
        with torch.inference_mode():
            qt = torch.from_numpy(np.ascontiguousarray(q)).to(mat.device, mat.dtype)
            out = mat @ qt.T if rows_first else qt @ mat.T  # n×rows when not rows_first (word-level)
        return out.float().cpu().numpy()

    def _matrix(self, name: str) -> Any:
        """The torch matrix of `senses` (unit rows), `glosses` or `headwords`, loaded on first use."""
        import torch

        if name not in self._mats:
            if name == "senses":
                assert self.sense_vectors is not None
                m = np.asarray(self.sense_vectors, dtype=np.float32) * self.inv_norms[:, None]
            else:
                src = self.glosses if name == "glosses" else self.heads
                m = np.array(src.vectors, dtype=np.float32)
            self._mats[name] = torch.from_numpy(m).to(self._torch_device(), self._dtype())
        return self._mats[name]

    # --- scorers ----------------------------------------------------------------------------------
    @property
    def scorers(self) -> tuple[str, ...]:
        """The scorers this reverse dictionary loaded (the sentence ones need a sentence-encoder model)."""
        return self._scorers

    def _rows(self, matrix: str) -> np.ndarray:
        if matrix not in ("original", "generated"):
            raise IndexStageError(f"matrix must be 'original' or 'generated', not {matrix!r}")
        if matrix not in self._token_rows:
            src = self.run.original_vectors() if matrix == "original" else self.run.token_vectors()
            rows = np.asarray(src[self.token_ids[self.single]], dtype=np.float32)
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            self._token_rows[matrix] = rows
        return self._token_rows[matrix]

    def _sentence(self, texts: list[str], clauses: bool = True) -> np.ndarray:
        """Sentence embeddings of the queries; with `clauses`, a query of several ";"-clauses is the
        normalised mean of its whole embedding and its clauses' mean embedding."""
        parts = [query_clauses(t) if clauses else [t] for t in texts]
        multi = [i for i, p in enumerate(parts) if len(p) > 1]
        flat = [c for i in multi for c in parts[i]]
        vecs = self._encode(list(texts) + flat)  # one call: the clauses share the length-sorted batches
        whole, at = vecs[: len(texts)], len(texts)
        for i in multi:
            n = len(parts[i])
            v = 0.5 * whole[i] + 0.5 * vecs[at : at + n].mean(axis=0)
            whole[i] = v / max(float(np.linalg.norm(v)), 1e-12)
            at += n
        return np.ascontiguousarray(whole)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            from definitionemb.index.sentence import SentenceEncoder

            dev = self.device
            if dev == "auto":
                import torch

                dev = "cuda" if torch.cuda.is_available() else "cpu"
            assert self.glosses is not None
            man = self.glosses.manifest
            self._encoder = SentenceEncoder(man.model, device=dev, max_length=man.max_length)
        return self._encoder.encode(texts, max_batch=_QUERY_BATCH)

    def query_vectors(
        self,
        texts: Sequence[str],
        pos: Sequence[str | None] | None = None,
        scorers: Sequence[str] | None = None,
        clauses: bool = True,
    ) -> dict[str, np.ndarray]:
        """The queries' vectors the `scorers` need: `regressor` (unit rows of the run's regressor, for
        `tokens`/`senses`) and `sentence` (the sentence encoder's, for `glosses`/`headwords`).

        Encoding many queries at once runs them longest-first in small batches, with little padding;
        :meth:`search` encodes a block of queries so, then scores it a chunk at a time."""
        want = set(_check_scorers(scorers, self.scorers))
        out: dict[str, np.ndarray] = {}
        if want & {"tokens", "senses"}:
            encode = importlib.import_module("definitionemb.embedder").encode_definitions
            q = np.asarray(
                encode(
                    self.run,
                    list(texts),
                    list(pos) if pos is not None else None,
                    batch_size=_QUERY_BATCH,
                    device=self.device,
                ),
                dtype=np.float32,
            )
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            out["regressor"] = q
        if want & {"glosses", "headwords"}:
            out["sentence"] = self._sentence(list(texts), clauses)
        return out

    def sense_scores(
        self,
        texts: Sequence[str],
        pos: Sequence[str | None] | None = None,
        scorers: Sequence[str] | None = None,
        matrix: str = "original",
        clauses: bool = True,
        vectors: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Raw scores per scorer (default: every loaded one): cosines for `tokens` n×W (NaN for split
        words), `senses`/`glosses` n×S (sense_id order), `headwords` n×W; BM25 for `lexical` n×S;
        `frequency` n×W, the words' Zipf frequencies capped at `ZIPF_CAP`, and `lemma` n×W (each one
        read-only row, broadcast). `clauses=False` embeds every query whole for the sentence scorers
        (the plain baseline). `vectors`: the queries' :meth:`query_vectors`, when already encoded."""
        texts = [check_query(t) for t in texts]
        out: dict[str, np.ndarray] = {}
        want = set(_check_scorers(scorers, self.scorers))
        if vectors is None:
            vectors = self.query_vectors(texts, pos, list(want), clauses)
        if want & {"tokens", "senses"}:
            q = vectors["regressor"]
            if "tokens" in want:
                tok = np.full((len(texts), self.headwords.n_words), np.nan, dtype=np.float32)
                tok[:, self.single] = q @ self._rows(matrix).T
                out["tokens"] = tok
            if "senses" in want:
                assert self.sense_vectors is not None
                out["senses"] = self._by_sense("senses", q).T
        if want & {"glosses", "headwords"}:
            s = vectors["sentence"]
            if "glosses" in want:
                out["glosses"] = self._by_sense("glosses", s).T
            if "headwords" in want:
                out["headwords"] = self._by_sense("headwords", s, rows_first=False)
        if "frequency" in want:
            assert self.zipf is not None
            prior = np.minimum(self.zipf, np.float32(ZIPF_CAP))
            out["frequency"] = np.broadcast_to(prior, (len(texts), self.headwords.n_words))
        if "lemma" in want:
            assert self.lemma is not None
            out["lemma"] = np.broadcast_to(self.lemma, (len(texts), self.headwords.n_words))
        if "lexical" in want:
            assert self.lexical is not None
            out["lexical"] = self.lexical.scores(texts).T
        return out

    def word_scores(
        self, per_sense: dict[str, np.ndarray], sense_mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Per-word scores (n×W) from :meth:`sense_scores`: best sense for `senses`/`glosses`/`lexical`.

        `sense_mask` (bool S) keeps only some senses (a POS filter); words left with none score -inf.
        """
        out: dict[str, np.ndarray] = {}
        for name, arr in per_sense.items():
            if name in SENSE_LEVEL:
                if sense_mask is not None:
                    arr = np.where(sense_mask[None, :], arr, -np.inf)
                out[name] = self.headwords.word_max(arr)
            else:
                out[name] = arr
        return out

    @staticmethod
    def fuse(
        word_scores: dict[str, np.ndarray],
        weights: dict[str, float],
        token_missing: float = TOKEN_MISSING,
        sds: dict[str, np.ndarray] | None = None,
        raw_single: bool = True,
    ) -> np.ndarray:
        """Σ weight × z-score (per query, over every candidate) of the scorers with a non-zero weight.

        With a single scorer the raw cosine is returned (unless not `raw_single`), so its scores stay
        readable. `sds`, when given, receives each scorer's per-query standard deviation (the
        best-sense lookup reuses it).
        """
        import torch

        used = [s for s, w in weights.items() if w and s in word_scores]
        if not used:
            raise IndexStageError(f"no scorer with a non-zero weight among {sorted(word_scores)}")
        if len(used) == 1 and raw_single:
            v = word_scores[used[0]]
            return np.where(np.isnan(v), -np.inf, v)
        # Σ w (v − μ) / σ is accumulated in place from each scorer's deviations, the priors' one shared
        # row added once at the end.
        total: Any = None
        prior: Any = None
        for s in used:
            v = word_scores[s]
            w = float(weights[s])
            if v.ndim == 2 and v.shape[0] > 1 and v.strides[0] == 0:  # one row for every query (a prior)
                row = torch.from_numpy(zscore(v[:1], -np.inf)) * w
                prior = row if prior is None else prior + row
                continue
            t = _as_tensor(v)
            if s != "tokens" and _all_finite(t):
                d, sd, _ = _centred(t)
                scale = w / sd.clamp_min(1e-9)
                if sds is not None:
                    sds[s] = sd.squeeze(1).numpy()
                if total is None:
                    total = d.mul_(scale)
                else:
                    total.addcmul_(d, scale)
            else:
                z = torch.from_numpy(zscore(v, token_missing if s == "tokens" else -np.inf)) * w
                total = z if total is None else total.add_(z)
        if total is None:
            total = prior.expand(next(iter(word_scores.values())).shape[0], -1).clone()
        elif prior is not None:
            total.add_(prior)
        return np.asarray(total.numpy())

    def excluded(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per query, the candidate indices spelled like a word (or phrase) of the query."""
        fold = self.headwords.by_fold()
        out = []
        for t in texts:
            idx = [i for w in query_words(t) for i in fold.get(w, ())]
            out.append(np.asarray(sorted(set(idx)), dtype=np.int64))
        return out

    # --- search ------------------------------------------------------------------------------------
    def search(
        self,
        texts: str | Sequence[str],
        k: int = 10,
        pos: str | None = None,
        scorers: Sequence[str] | None = None,
        weights: dict[str, float] | None = None,
        include_query_words: bool = False,
        matrix: str = "original",
        token_missing: float = TOKEN_MISSING,
        progress: bool = False,
        rerank: int = RERANK,
    ) -> pl.DataFrame:
        """Top-k headwords of each definition; columns `query` (0-based), `rank` (1-based), `word`,
        `score`, `pos`, `gloss` (the best-matching sense), `single_token`, `token_id`, `sense_id`.

        `rerank`: how many of the first pass's best words per query the :data:`SECOND_PASS` scorers
        re-score (see :data:`RERANK`); 0 scores every word with every scorer."""
        queries = [texts] if isinstance(texts, str) else list(texts)
        if not queries:
            raise IndexStageError("reverse needs at least one definition")
        queries = [
            check_query(t, f"query {i}" if len(queries) > 1 else "the query") for i, t in enumerate(queries)
        ]
        if k < 1:
            raise IndexStageError(f"k must be at least 1, got {k}")
        if rerank < 0:
            raise IndexStageError(f"rerank must be 0 (score every word) or a number of words, not {rerank}")
        w = self._weights(scorers, weights)
        sense_mask = None
        if pos is not None:
            if pos not in self.pos_values:
                raise IndexStageError(
                    f"no sense of the lexicon has part of speech {pos!r}; choose one of {', '.join(self.pos_values)}"
                )
            sense_mask = self.headwords.sense_pos == pos
        frames = []
        from tqdm import tqdm

        bar = tqdm(total=len(queries), desc="reverse", unit="query", file=sys.stderr, disable=not progress)
        try:
            for start in range(0, len(queries), _BLOCK):
                block = queries[start : start + _BLOCK]
                vecs = self.query_vectors(block, [pos] * len(block) if pos else None, list(w))
                for lo in range(0, len(block), _CHUNK):
                    chunk = block[lo : lo + _CHUNK]
                    part = {name: v[lo : lo + _CHUNK] for name, v in vecs.items()}
                    frames.append(
                        self._search_chunk(
                            chunk,
                            start + lo,
                            k,
                            pos,
                            sense_mask,
                            w,
                            include_query_words,
                            matrix,
                            token_missing,
                            part,
                            rerank,
                        )
                    )
                    bar.update(len(chunk))
        finally:
            bar.close()
        return pl.concat(frames)

    def _weights(self, scorers: Sequence[str] | None, weights: dict[str, float] | None) -> dict[str, float]:
        """The fusion weights of a search: `weights`, else the tuned defaults of the loaded scorers
        (without the sentence scorers: `senses` alone, the better regressor scorer); scorers named
        explicitly keep their default weight, or 1 where it is 0."""
        if weights is not None:
            base = dict(weights)
        elif "glosses" in self.scorers:
            base = {s: DEFAULT_WEIGHTS[s] for s in self.scorers}
        else:
            base = {s: NO_SENTENCE_WEIGHTS[s] for s in self.scorers if s in NO_SENTENCE_WEIGHTS}
        if scorers is not None:
            scorers = list(_check_scorers(scorers, SCORERS))
            base = {s: base.get(s, 1.0) or 1.0 for s in scorers}
        out = {s: v for s, v in base.items() if v}
        return out or {s: 1.0 for s in self.scorers}

    def _search_chunk(
        self,
        chunk: list[str],
        offset: int,
        k: int,
        pos: str | None,
        sense_mask: np.ndarray | None,
        weights: dict[str, float],
        include_query_words: bool,
        matrix: str,
        token_missing: float,
        vectors: dict[str, np.ndarray] | None = None,
        rerank: int = 0,
    ) -> pl.DataFrame:
        hw = self.headwords
        second = {s: w for s, w in weights.items() if s in SECOND_PASS}
        first = {s: w for s, w in weights.items() if s not in SECOND_PASS}
        # Only a sentence scorer finds candidates good enough to re-score; without one (RoBERTa, BART)
        # or with fewer words than the cut, every word gets every scorer.
        cut = max(rerank, k)  # a k past the cut still gets k answers
        two_pass = bool(rerank) and bool(second) and "glosses" in first and cut < hw.n_words
        now = first if two_pass else weights  # the scorers of this (first) pass
        poses = [pos] * len(chunk) if pos else None
        if vectors is None:
            vectors = self.query_vectors(chunk, poses, list(weights))
        per_sense = self.sense_scores(chunk, poses, list(now), matrix, vectors=vectors)
        words = self.word_scores(per_sense, sense_mask)
        sds: dict[str, np.ndarray] = {}
        fused = self.fuse(words, now, token_missing, sds, raw_single=not two_pass)
        if sense_mask is not None:
            has_pos = np.zeros(hw.n_words, dtype=bool)
            has_pos[hw.sense_word[sense_mask]] = True
            fused[:, ~has_pos] = -np.inf
        if not include_query_words:
            for row, idx in enumerate(self.excluded(chunk)):
                fused[row, idx] = -np.inf
        scales = self._sense_scales(words, now, sds)
        if two_pass:
            top = _top_k(fused, cut)
            extra, sub, sub_scales = self._second_pass(chunk, vectors, top, second, sense_mask)
            fused = np.take_along_axis(fused, top, axis=1) + extra  # n×cut: the candidates' scores
            per_sense = {**per_sense, **sub}
            scales = {**scales, **sub_scales}
            at = _top_k(fused, k)
            top, fused_top = np.take_along_axis(top, at, axis=1), np.take_along_axis(fused, at, axis=1)
        else:
            top = _top_k(fused, min(k, hw.n_words))
            fused_top = np.take_along_axis(fused, top, axis=1)
        rows: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
        for row in range(len(chunk)):
            cand = top[row]
            sc = fused_top[row]
            keep = np.isfinite(sc)
            cand, sc = cand[keep], sc[keep]
            order = np.lexsort((cand, -sc))
            for rank, j in enumerate(order, start=1):
                wi = int(cand[j])
                sense = self._best_sense(wi, row, per_sense, scales, sense_mask)
                rows["query"].append(offset + row)
                rows["rank"].append(rank)
                rows["word"].append(str(hw.words[wi]))
                rows["score"].append(float(sc[j]))
                rows["pos"].append(hw.sense_pos[sense])
                rows["gloss"].append(str(hw.gloss[sense]))
                tid = int(self.token_ids[wi])
                rows["single_token"].append(tid >= 0)
                rows["token_id"].append(tid if tid >= 0 else None)
                rows["sense_id"].append(int(hw.sense_ids[sense]))
        schema = {
            "query": pl.Int32,
            "rank": pl.Int32,
            "word": pl.String,
            "score": pl.Float32,
            "pos": pl.String,
            "gloss": pl.String,
            "single_token": pl.Boolean,
            "token_id": pl.Int32,
            "sense_id": pl.Int64,
        }
        return pl.DataFrame(rows, schema=schema)

    def _sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fixed, seeded sample of words whose second-pass scores give each query's mean and spread
        (every word when the lexicon has no more than :data:`_SAMPLE`), with their sense rows grouped by
        word and each row's word."""
        if self._sample_words is None:
            n = self.headwords.n_words
            pick = (
                np.arange(n) if n <= _SAMPLE else np.random.default_rng(0).choice(n, _SAMPLE, replace=False)
            )
            words = np.sort(pick).astype(np.int64)
            self._sample_words = (words, *self.headwords.rows_of(words))
        return self._sample_words

    def _word_best(
        self,
        scorer: str,
        words: np.ndarray,
        rows: np.ndarray,
        seg: np.ndarray,
        chunk: list[str],
        vectors: dict[str, np.ndarray],
        sense_mask: np.ndarray | None,
        sample: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """len(words)×n scores of some words under a second-pass scorer (`rows`/`seg`: their sense rows
        and each row's word), and for the sense-level scorers the len(rows)×n per-sense scores behind
        them. The sample's matrix rows are kept between calls (`sample`)."""
        import torch

        if scorer == "lexical":
            assert self.lexical is not None
            v = torch.from_numpy(self.lexical.scores_of(rows, chunk))
        else:
            q = vectors["regressor" if scorer == "senses" else "sentence"]
            mat = self._matrix(scorer)
            at = words if scorer == "headwords" else rows  # the headword matrix has a row per word
            sub = self._sample_mats.get(scorer) if sample else None
            if sub is None:
                sub = mat.index_select(0, torch.from_numpy(at).to(mat.device))
                if sample:
                    self._sample_mats[scorer] = sub
            with torch.inference_mode():
                qt = torch.from_numpy(np.ascontiguousarray(q)).to(mat.device, mat.dtype)
                out = (sub @ qt.T).float().cpu().numpy()
            v = torch.from_numpy(out)  # made outside inference mode: the POS filter writes into it
            if scorer == "headwords":
                return v.numpy(), None
        if sense_mask is not None:
            v[torch.from_numpy(~sense_mask[rows])] = -np.inf
        n = v.shape[1]
        best = torch.full((len(words), n), -np.inf, dtype=torch.float32)
        best.scatter_reduce_(0, torch.from_numpy(seg)[:, None].expand(-1, n), v, "amax")
        return best.numpy(), v.numpy()

    def _second_pass(
        self,
        chunk: list[str],
        vectors: dict[str, np.ndarray],
        cand: np.ndarray,
        weights: dict[str, float],
        sense_mask: np.ndarray | None,
    ) -> tuple[np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
        """The :data:`SECOND_PASS` scorers on each query's candidates `cand` (n×M word indices).

        Returns what they add to the candidates' fused scores (n×M: Σ weight × z, with each query's
        mean and sd over the sample words), their per-sense scores of every candidate's senses, and the
        weight/sd factors the best-sense lookup needs.
        """
        hw = self.headwords
        n = len(chunk)
        sample = self._sample()
        words, col = np.unique(cand, return_inverse=True)
        col = col.reshape(cand.shape)
        rows, seg = hw.rows_of(words)
        extra = np.zeros(cand.shape, dtype=np.float32)
        per_sense: dict[str, Any] = {}
        scales: dict[str, np.ndarray] = {}
        for s, w in weights.items():
            ref, _ = self._word_best(s, *sample, chunk, vectors, sense_mask, sample=True)
            best, by_sense = self._word_best(s, words, rows, seg, chunk, vectors, sense_mask, sample=False)
            ref = np.where(np.isfinite(ref), ref, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a query no sample word can answer
                mu, sd = np.nanmean(ref, axis=0), np.nanstd(ref, axis=0)
            mu, sd = np.nan_to_num(mu, nan=0.0), np.maximum(np.nan_to_num(sd, nan=1.0), 1e-9)
            scale = (np.float32(w) / sd).astype(np.float32)
            extra += scale[:, None] * (best[col, np.arange(n)[:, None]] - mu[:, None].astype(np.float32))
            if by_sense is not None:
                per_sense[s] = _SomeSenses(rows, by_sense, hw.n_senses)
                scales[s] = scale
        return extra, per_sense, scales

    @staticmethod
    def _sense_scales(
        words: dict[str, np.ndarray], weights: dict[str, float], sds: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Per sense-level scorer, weight / (per-query sd of its word scores): the factors that put the
        senses of one word on the fusion's z-scale (the mean drops out of an argmax within a word).
        `sds` are those the fusion computed; any missing is computed here."""
        out: dict[str, np.ndarray] = {}
        for s in SENSE_LEVEL:
            if weights.get(s) and s in words:
                v = words[s]
                if sds is not None and s in sds:
                    sd = sds[s]
                else:
                    sd = np.nanstd(np.where(np.isfinite(v), v, np.nan), axis=1)
                out[s] = np.float32(weights[s]) / np.maximum(np.nan_to_num(sd, nan=1.0), 1e-9)
        return out

    def _best_sense(
        self,
        wi: int,
        row: int,
        per_sense: dict[str, np.ndarray],
        scales: dict[str, np.ndarray],
        sense_mask: np.ndarray | None,
    ) -> int:
        """The sense of word `wi` that matched best: weighted z of the sense-level scorers (first sense
        when only word-level scorers are used)."""
        senses = self.headwords.senses_of(wi)
        if sense_mask is not None and sense_mask[senses].any():
            senses = senses[sense_mask[senses]]
        if not scales:
            return int(senses[0])
        total = np.zeros(len(senses), dtype=np.float64)
        for s, scale in scales.items():
            total += float(scale[row]) * per_sense[s][row, senses]
        return int(senses[int(np.argmax(total))])


class _SomeSenses:
    """Scores of some senses only (the second pass's), read like the n×S array they stand for."""

    def __init__(self, rows: np.ndarray, values: np.ndarray, n_senses: int) -> None:
        self.at = np.full(n_senses, -1, dtype=np.int64)
        self.at[rows] = np.arange(len(rows))
        self.values = values  # len(rows)×n

    def __getitem__(self, key: tuple[int, np.ndarray]) -> np.ndarray:
        row, senses = key
        at = self.at[senses]
        if (at < 0).any():
            raise IndexError("a sense outside the second pass's candidates")
        return self.values[at, row]


_OPEN: dict[tuple[str, str, str, str], ReverseDictionary] = {}


def open_reverse(
    run: RunLike,
    db: DbPath = None,
    cache_dir: DbPath = None,
    progress: bool = True,
    device: str = "auto",
    scorers: Sequence[str] | None = None,
) -> ReverseDictionary:
    """A :class:`ReverseDictionary` for a run and scorers (built on first use; the last one opened is
    kept while its manifest is unchanged)."""
    r = as_run(run)
    key = (str(r.path.resolve()), str(db), str(cache_dir), str(tuple(scorers) if scorers else None))
    man = r.path / "index" / "reverse" / "manifest.json"
    stamp = str(man.stat().st_mtime_ns) if man.is_file() else ""
    hit = _OPEN.get(key)
    if hit is not None and stamp and getattr(hit, "_stamp", None) == stamp:
        return hit
    rd = ReverseDictionary(r, db, cache_dir, build=True, progress=progress, device=device, scorers=scorers)
    rd._stamp = str(man.stat().st_mtime_ns)  # type: ignore[attr-defined]
    _OPEN.clear()
    _OPEN[key] = rd
    return rd


def _check_request(texts: Sequence[str], k: int, what: Callable[[int], str]) -> None:
    """Every query and k checked before anything is built; `what(i)` names query i in the message."""
    for i, t in enumerate(texts):
        check_query(t, what(i))
    if k < 1:
        raise IndexStageError(f"k must be at least 1, got {k}")


def reverse_words(
    run: RunLike,
    text: str | Sequence[str],
    k: int = 10,
    pos: str | None = None,
    scorers: Sequence[str] | None = None,
    include_query_words: bool = False,
    matrix: str = "original",
    db: DbPath = None,
    cache_dir: DbPath = None,
    progress: bool = False,
    rerank: int | None = None,
) -> pl.DataFrame:
    """The reverse dictionary over every headword: definition(s) → top-k words (see module docstring).

    Columns: query (0-based), rank (1-based), word, score, pos, gloss, single_token, token_id, sense_id.
    `rerank`: see :meth:`ReverseDictionary.search` (None: :data:`RERANK`).
    """
    # Bad input is refused before anything is built.
    texts = [text] if isinstance(text, str) else list(text)
    if not texts:
        raise IndexStageError("reverse needs at least one definition")
    _check_request(texts, k, lambda i: f"query {i}" if len(texts) > 1 else "the query")
    rd = open_reverse(run, db, cache_dir, progress=progress, scorers=scorers)
    return rd.search(
        text,
        k=k,
        pos=pos,
        scorers=scorers,
        include_query_words=include_query_words,
        matrix=matrix,
        progress=progress,
        rerank=RERANK if rerank is None else rerank,
    )


@dataclass(frozen=True)
class BatchResult:
    """What :func:`reverse_batch` wrote."""

    input: str
    out: str
    queries: int
    rows: int
    k: int
    seconds: float
    queries_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reverse_batch(
    run: RunLike,
    input_file: str | os.PathLike[str],
    k: int,
    out: str | os.PathLike[str],
    pos: str | None = None,
    scorers: Sequence[str] | None = None,
    include_query_words: bool = False,
    matrix: str = "original",
    overwrite: bool = False,
    db: DbPath = None,
    cache_dir: DbPath = None,
    progress: bool = True,
    rerank: int | None = None,
) -> BatchResult:
    """One definition per line of `input_file` → `out` (Parquet, one row per query and rank).

    Every line is checked before any work; `out` is written atomically and never overwritten unless
    `overwrite`.
    """
    src, dst = Path(input_file), Path(out)
    claim_output(dst, "file", overwrite, "the reverse-dictionary answers")
    try:
        lines = src.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexStageError(
            f"cannot read {src} as UTF-8 text ({exc}); give one definition per line"
        ) from exc
    if not lines:
        raise IndexStageError(f"{src} is empty; give one definition per line")
    _check_request(lines, k, lambda i: f"line {i + 1} of {src}")
    t0 = time.perf_counter()
    rd = open_reverse(run, db, cache_dir, progress=progress, scorers=scorers)
    t1 = time.perf_counter()
    frame = rd.search(
        lines,
        k=k,
        pos=pos,
        scorers=scorers,
        include_query_words=include_query_words,
        matrix=matrix,
        progress=progress,
        rerank=RERANK if rerank is None else rerank,
    )
    secs = time.perf_counter() - t1
    with output_file(dst, overwrite, "the reverse-dictionary answers") as tmp:
        frame.write_parquet(tmp)
    return BatchResult(
        input=str(src),
        out=str(dst),
        queries=len(lines),
        rows=frame.height,
        k=k,
        seconds=round(time.perf_counter() - t0, 3),
        queries_per_s=round(len(lines) / max(secs, 1e-9), 2),
    )

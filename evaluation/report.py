"""The evaluation of one run, end to end, and its report in `runs/<id>/report/`.

Each `defemb eval ... --run DIR` command stores its result (with the exact command line) under
`report/results/<name>.json`; `build_report` gathers them, measures isotropy, draws the figures and
writes `report.json` and `report.md`. `evaluate_run` is the one call the pipeline makes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from definitionemb.core.fileio import write_bytes
from definitionemb.embedder.binding import LexiconRef, RunLexicon, bound
from definitionemb.embedder.results import ResultKind, current_command, jsonable, load_results, save_result
from definitionemb.embedder.rundir import RunDir
from definitionemb.evaluation.errors import EvaluationError

__all__ = [
    "RunReport",
    "isotropy_of_run",
    "isotropy_of_matrix",
    "isotropy_of_model",
    "wordsim_of_run",
    "knobs_of_run",
    "wordsim_wins",
    "wordsim_markdown",
    "knobs_markdown",
    "coverage_rows",
    "build_report",
    "evaluate_run",
]

REPORT_VERSION = 1


def _write_json(path: Path, obj: Any) -> None:
    write_bytes(path, json.dumps(jsonable(obj), indent=2, sort_keys=True).encode())


def isotropy_of_run(
    run: RunDir,
    db: LexiconRef = None,
    rows: str | None = None,
    how: Sequence[str] | str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
    """Isotropy (I(W), IsoScore, …) by bucket of the original rows, each row policy `rows` × `how`
    (default: the shipped policy and `replace`) and ABTT; also returns the matrices and the labels."""
    from definitionemb.evaluation.geometry import measure_by_bucket
    from definitionemb.evaluation.rows import describe, run_buckets, run_matrices

    with bound(run, db) as lex:
        labels, source = run_buckets(run, lex)
        mats = run_matrices(run, lex, rows, how, buckets=labels)
    result = {
        "buckets_source": source,
        "bucket_rows": describe(labels),
        "rows": rows or "covered",
        "policies": [m for m in mats if m not in ("original", "abtt")],
        "matrices": {name: measure_by_bucket(m, labels) for name, m in mats.items()},
    }
    return result, mats, labels


def _with_abtt(name: str, w: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    from definitionemb.evaluation.geometry import all_but_the_top, measure_by_bucket

    return {
        name: measure_by_bucket(w, labels),
        "abtt": measure_by_bucket(all_but_the_top(w, 10, labels == "special"), labels),
    }


def isotropy_of_matrix(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Isotropy by bucket of a V×d `.npy` matrix (`matrix`) and of its ABTT baseline (`abtt`).

    Buckets follow row order (30/50/20 %), the first 4 rows special (evaluation.rows.buckets_by_order).
    """
    from definitionemb.evaluation.rows import buckets_by_order

    try:
        w = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise EvaluationError(f"{path} is not a plain .npy array: {exc}") from exc
    return _with_abtt("matrix", w, buckets_by_order(w.shape[0]))


def isotropy_of_model(model: str, db: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Isotropy by bucket of a model's input-embedding rows (`original`) and their ABTT baseline (`abtt`).

    Buckets come from `db` when given (the model's tokenizer must be aligned there), else row order with
    the tokenizer's special rows.
    """
    from definitionemb.embedder.binding import bucket_labels, tokenizer_special_ids
    from definitionemb.evaluation.rows import buckets_by_order
    from definitionemb.evaluation.swap import load_model

    w = load_model(str(model)).get_input_embeddings().weight.detach().numpy()
    if db is None:
        return _with_abtt("original", w, buckets_by_order(w.shape[0], tokenizer_special_ids(model).tolist()))
    from definitionemb.lexicon.db import connect
    from definitionemb.lexicon.queries import token_table

    from definitionemb import lexicon

    with connect(db) as con:
        tid = lexicon.tokenizer_id(con, lexicon.load_vocab(str(model)).sha256)
        if tid is None:
            raise EvaluationError(f"{model}'s tokenizer is not aligned in {db}; run defemb lexicon align")
        labels = bucket_labels(token_table(con, tid), w.shape[0])
    return _with_abtt("original", w, labels)


def _run_tokenizer(run: RunDir) -> Any:
    from transformers import AutoTokenizer

    model = run.model_path()
    if not model:
        raise EvaluationError(f"{run.manifest_path} names no model, so its tokenizer cannot be loaded")
    try:
        tok = AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot load the tokenizer of {model}: {exc}") from exc
    return tok


def wordsim_of_run(
    run: RunDir,
    datasets: Sequence[str | os.PathLike[str]],
    matrices: Mapping[str, np.ndarray],
    part: str = "all",
) -> dict[str, Any]:
    """Spearman per dataset and matrix, with the run's own tokenizer.

    `datasets` are files or folders of `word1 word2 score` files; `part` is `all`, or the `dev`/`test`
    part of each set (`evaluation.knobs.split_pairs`) — report `test` where α was chosen on `dev`.
    """
    from definitionemb.evaluation.knobs import split_pairs
    from definitionemb.evaluation.wordsim import dataset_files, read_pairs, word_similarity

    if part not in ("all", "dev", "test"):
        raise EvaluationError(f"part must be all, dev or test, got {part!r}")
    tok = _run_tokenizer(run)
    out: dict[str, Any] = {}
    for f in dataset_files(datasets):
        pairs = read_pairs(f)
        if part != "all":
            pairs = split_pairs(pairs)[0 if part == "dev" else 1]
        out[f.stem] = {**word_similarity(pairs, tok, matrices).to_dict(), "part": part}
    return out


def knobs_of_run(
    run: RunDir,
    datasets: Sequence[str | os.PathLike[str]],
    db: LexiconRef = None,
    rows: str | None = None,
    methods: Sequence[str] = ("mix", "dirmix"),
    guard: str | None = "rare",
    objective: str = "wordsim",
    sts: str | os.PathLike[str] | None = None,
    sts_alphas: Sequence[float] | None = None,
    margin: float | None = None,
) -> dict[str, Any]:
    """Choose the policy's α on the development parts of `datasets` (`evaluation.knobs.choose_how`),
    among the candidates that keep the I(W) of the `guard` bucket (None: no guard) at least the
    original's; the buckets are the run lexicon's (`evaluation.rows.run_buckets`).

    `objective` ``sts`` or ``both`` also scores candidates on the STS-B *dev* part of `sts` (a sentence
    encoder's zero-shot use; `evaluation.sts`) at `sts_alphas`, each for all `rows` and for the rare
    bucket's rows alone (so α may differ by bucket: frequent rows kept, rare ones mixed), and picks by
    `evaluation.knobs.choose_for_use`. No test part is read before the choice.
    """
    from definitionemb.evaluation.knobs import OBJECTIVES, choose_how
    from definitionemb.evaluation.rows import policy_swap, run_buckets
    from definitionemb.evaluation.wordsim import dataset_files, read_pairs

    if objective not in OBJECTIVES:
        raise EvaluationError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if objective != "wordsim" and sts is None:
        raise EvaluationError(f"objective {objective!r} needs the STS Benchmark folder (sts-dev.csv)")
    _, mask = policy_swap(run, db, rows, "replace")
    guard_rows = None
    if guard is not None:
        labels, _source = run_buckets(run, db)
        guard_rows = labels == guard
    sets = [read_pairs(f) for f in dataset_files(datasets)]
    original = np.asarray(run.original_vectors(), dtype=np.float32)
    generated = np.asarray(run.token_vectors(), dtype=np.float32)
    tok = _run_tokenizer(run)
    choice = choose_how(
        original,
        generated,
        mask,
        tok,
        sets,
        methods,
        guard_rows=guard_rows if guard_rows is not None and guard_rows.sum() >= 2 else None,
    )
    out = {**choice.to_dict(), "rows": rows or "covered", "guard_bucket": guard, "objective": objective}
    if objective != "wordsim" and sts is not None:
        out.update(
            _knobs_for_use(run, db, rows or "covered", choice, tok, sets, objective, sts, sts_alphas, margin)
        )
    return out


def _knobs_for_use(
    run: RunDir,
    db: LexiconRef,
    rows: str,
    choice: Any,
    tok: Any,
    sets: Sequence[Any],
    objective: str,
    sts: str | os.PathLike[str],
    sts_alphas: Sequence[float] | None,
    margin: float | None,
) -> dict[str, Any]:
    """The STS-B dev side of `knobs_of_run`: candidates × rows (all, rare only), their STS dev differences,
    their word-similarity dev means, and the choice under `objective`."""
    from definitionemb.evaluation.knobs import STS_ALPHAS, STS_MARGIN, choose_for_use, dev_means
    from definitionemb.evaluation.rows import policy_swap
    from definitionemb.evaluation.sts import compare_sts
    from definitionemb.index.policy import RowPolicy

    if not is_sentence_encoder(run):
        raise EvaluationError(f"objective {objective!r}: the run's model is not a sentence encoder")
    margin = STS_MARGIN if margin is None else float(margin)
    floor = choice.guard.get("original", -np.inf) - 1e-6 if choice.guard else -np.inf
    hows = [
        f"{m}:{a:g}"
        for a in (sts_alphas or STS_ALPHAS)
        for m in choice.methods
        if not choice.guard or choice.guard.get(f"{m}:{a:g}", floor) >= floor
    ]
    original = np.asarray(run.original_vectors(), dtype=np.float32)
    generated = np.asarray(run.token_vectors(), dtype=np.float32)
    static: dict[str, float] = {}
    sts_dev: dict[str, dict[str, float]] = {}
    policies: dict[str, dict[str, str]] = {}
    for r in dict.fromkeys([rows, "rare"]):
        res = compare_sts(run, sts, "dev", db, r, hows)  # the dev part only
        _, mask = policy_swap(run, db, r, "replace")
        means = dev_means(original, generated, mask, tok, sets, ["mix:0", *hows])
        static.setdefault("original", means["mix:0"])
        sts_dev.setdefault("original", {"spearman": res.spearman["original"]["all"]})
        for h in hows:
            label = RowPolicy(r, h).label
            policies[label] = {"rows": r, "how": h}
            static[label] = means[h]
            sts_dev[label] = {**res.difference[label]["all"], "spearman": res.spearman[label]["all"]}
    cands = {k: v for k, v in sts_dev.items() if k != "original"}
    best, why = choose_for_use(static, cands, objective, margin)
    chosen = policies[best] if best else {"rows": rows, "how": "mix:0"}
    return {
        "chosen": chosen["how"],
        "chosen_rows": chosen["rows"],
        "reason": why,
        "criterion": objective,
        "sts_margin": margin,
        "sts_dev": sts_dev,
        "static_dev": static,
        "candidates": policies,
    }


def coverage_rows(db: str | os.PathLike[str] | RunLexicon, tokenizer_id: int) -> list[dict[str, Any]]:
    """Tokens per (bucket, rule of the first definition), `uncovered` for tokens without one."""
    from definitionemb.lexicon.db import connect

    con = db.con if isinstance(db, RunLexicon) else connect(db)
    try:
        rows = con.execute(
            """
            SELECT t.bucket, coalesce(a.rule, 'uncovered') AS rule, count(*) AS tokens
            FROM token t
            LEFT JOIN (SELECT token_id, arg_min(rule, rank) AS rule FROM alignment
                       WHERE tokenizer_id = ? GROUP BY token_id) a USING (token_id)
            WHERE t.tokenizer_id = ? AND NOT t.special
            GROUP BY ALL ORDER BY 1, 2
            """,
            [tokenizer_id, tokenizer_id],
        ).fetchall()
    finally:
        if not isinstance(db, RunLexicon):
            con.close()
    return [{"bucket": b, "rule": r, "tokens": int(n)} for b, r, n in rows]


@dataclass(frozen=True)
class RunReport:
    """Where the report went and what it holds (the content of report.json)."""

    report_dir: str
    content: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"report_dir": self.report_dir, **self.content}


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3e}" if x != 0 and abs(x) < 1e-3 else f"{x:.{digits}f}"
    return str(x)


def _ordered(mats: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """original first, ABTT last, the policies between in their given order."""
    items = list(mats.items())
    return sorted(items, key=lambda kv: 0 if kv[0] == "original" else 2 if kv[0] == "abtt" else 1)


def wordsim_wins(ws: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For every matrix but the original: on how many sets it beats the original, and the mean delta."""
    from definitionemb.evaluation.knobs import wins

    per = {ds: r["spearman"] for ds, r in ws.items()}
    names: list[str] = []
    for sp in per.values():
        names += [n for n in sp if n != "original" and n not in names]
    return [wins(per, n) for n in names]


def wordsim_markdown(ws: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Per set: pairs, covered pairs, Spearman of each matrix, each policy's delta; then the wins lines."""
    from definitionemb.evaluation.knobs import wins_line

    found: list[str] = []
    for r in ws.values():
        found += [m for m in r["spearman"] if m not in found]
    names = [n for n, _ in _ordered({m: None for m in found})]
    others = [n for n in names if n != "original"]
    parts = {str(r.get("part", "all")) for r in ws.values()}
    head = "## Word similarity (Spearman of cosine, single-token pairs"
    head += ")" if parts == {"all"} else f"; {'/'.join(sorted(parts))} part of each set)"
    lines = [
        head,
        "",
        "| set | pairs | covered | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"Δ {n}" for n in others)
        + " |",
        "|---|---|---|" + "---|" * (len(names) + len(others)),
    ]
    for ds, r in ws.items():
        sp = r["spearman"]
        deltas = [
            _fmt(sp[n] - sp["original"], 3)
            if isinstance(sp.get(n), float) and isinstance(sp.get("original"), float)
            else "–"
            for n in others
        ]
        lines.append(
            f"| {ds} | {r['pairs']} | {r['covered_pairs']} ({r['coverage']:.1%}) | "
            + " | ".join(_fmt(sp.get(n)) for n in names)
            + " | "
            + " | ".join(deltas)
            + " |"
        )
    lines += ["", *[f"- {wins_line(w)}" for w in wordsim_wins(ws)], ""]
    return lines


def knobs_markdown(kn: Mapping[str, Any]) -> list[str]:
    """The α curve: mean Spearman on the development and test parts, and neighbours kept, per candidate."""
    lines = [
        "## Row policy: choosing α on development data",
        "",
        f"Chosen: **{kn['chosen']}** (rows `{kn.get('chosen_rows', kn.get('rows', 'covered'))}`). "
        f"{kn['reason']}. "
        "Test-part numbers below were not seen by the choice.",
        "",
        "| how | mean Spearman, dev part | mean Spearman, test part | Δ test vs original | "
        "original top-10 neighbours kept | rare rows' I(W) |",
        "|---|---|---|---|---|---|",
    ]
    guard = kn.get("guard") or {}

    def mean(d: Mapping[str, Any]) -> float:
        v = [x for x in d.values() if isinstance(x, float)]
        return float(np.mean(v)) if v else float("nan")

    orig = mean(kn["test"].get("original", {}))
    for h in kn["dev"]:
        t = mean(kn["test"].get(h, {}))
        lines.append(
            f"| {h} | {_fmt(mean(kn['dev'][h]))} | {_fmt(t)} | {_fmt(t - orig, 3)} | "
            f"{_fmt((kn.get('neighbours_kept') or {}).get(h), 3)} | {_fmt(guard.get(h))} |"
        )
    if guard:
        lines += ["", f"Original rows: rare rows' I(W) {_fmt(guard['original'])}."]
    lines.append("")
    if kn.get("sts_dev"):
        lines += [
            f"Objective `{kn['objective']}`: each candidate on STS-B dev (zero-shot) beside its word "
            "similarity on the development parts; test parts were not read.",
            "",
            "| rows how | STS-B dev Spearman | Δ [95% CI] | word similarity, dev mean |",
            "|---|---|---|---|",
        ]
        for name, d in kn["sts_dev"].items():
            ci = "" if "delta" not in d else f"{d['delta']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
            lines.append(f"| {name} | {_fmt(d['spearman'])} | {ci} | {_fmt(kn['static_dev'].get(name))} |")
        lines.append("")
    return lines


def sts_markdown(st: Mapping[str, Any]) -> list[str]:
    """The STS table: Spearman of each matrix on the whole part and on its rare-token subset, with the
    paired bootstrap interval of each policy's difference from the original rows."""
    lines = [
        f"## Sentence similarity: STS {st['part']} (zero-shot, Spearman; {st['pairs']} pairs, rare-token "
        f"subset {st['rare_pairs']})",
        "",
        "| rows | all | Δ all [95% CI] | rare subset | Δ rare [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for name, sp in st["spearman"].items():
        cells = [name]
        for sub in ("all", "rare"):
            ci = st["difference"].get(name, {}).get(sub)
            cells += [
                _fmt(sp[sub]),
                "" if ci is None else f"{ci['delta']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return [
        *lines,
        "",
        f"Rare-token subset: pairs with ≥1 of the {st['rare_rows']} rows the policy changed in the rare "
        f"bucket ({st['buckets_from']}).",
        "",
    ]


def _markdown(c: Mapping[str, Any]) -> str:
    lines = [f"# Evaluation of run `{c['run_id']}`", "", f"Created {c['created']}.", ""]
    iso = c.get("isotropy")
    if iso:
        buckets = ("all", "frequent", "medium", "rare")
        lines += [
            f"## Isotropy (rows `{iso.get('rows', iso.get('select', 'covered'))}`, buckets from "
            f"{iso['buckets_source']})",
            "",
            "| matrix | rows | "
            + " | ".join(f"I(W) {b}" for b in buckets)
            + " | "
            + " | ".join(f"IsoScore {b}" for b in buckets)
            + " | mean cos | top-1 PC | top-10 PC |",
            "|---|---|" + "---|" * (2 * len(buckets) + 3),
        ]
        for name, by in _ordered(iso["matrices"]):
            a = by.get("all") or {}
            lines.append(
                "| "
                + " | ".join(
                    [
                        name,
                        _fmt(a.get("rows")),
                        *(_fmt((by.get(b) or {}).get("isotropy")) for b in buckets),
                        *(_fmt((by.get(b) or {}).get("isoscore")) for b in buckets),
                        _fmt(a.get("mean_cosine")),
                        _fmt(a.get("top1_share")),
                        _fmt(a.get("top10_share")),
                    ]
                )
                + " |"
            )
        lines.append("")
    ws = c.get("wordsim")
    if ws:
        lines += wordsim_markdown(ws)
    kn = c.get("knobs")
    if kn:
        lines += knobs_markdown(kn)
    for g in c.get("glue", []):
        s = g["summary"]
        lines += [
            f"## Fine-tuning: {g['task']} ({g['metric']}, rows `{g.get('rows', g.get('select'))}` "
            f"how `{g.get('how', 'replace')}`, "
            f"{g['replaced_rows']} rows swapped, {len(g['seeds'])} seeds)",
            "",
            "| model | mean | std | per seed |",
            "|---|---|---|---|",
        ]
        for name in ("original", "definitionemb"):
            per = ", ".join(_fmt(x[name][g["metric"]]) for x in g["seeds"])
            lines.append(f"| {name} | {_fmt(s[name]['mean'])} | {_fmt(s[name]['std'])} | {per} |")
        t = g["test"]
        lines += [
            "",
            f"Paired t-test over seeds: mean difference {_fmt(t['mean_diff'])} "
            f"(95% CI {_fmt(t.get('ci_low'))} to {_fmt(t.get('ci_high'))}), "
            f"t = {_fmt(t['t'])}, p = {_fmt(t['p'])}.",
            "",
        ]
        rt = g.get("rare_test") or {}
        if rt:
            rs = g["rare_summary"]
            lines += [
                f"Rare-token subset ({g['rare_examples']} examples with a changed rare-bucket token): "
                f"original {_fmt(rs['original']['mean'])}, DefinitionEMB {_fmt(rs['definitionemb']['mean'])}, "
                f"mean difference {_fmt(rt['mean_diff'])} (95% CI {_fmt(rt.get('ci_low'))} to "
                f"{_fmt(rt.get('ci_high'))}).",
                "",
            ]
    for st in c.get("sts", []):
        lines += sts_markdown(st)
    for s in c.get("summarization", []):
        lines += [
            f"## Summarisation (preset `{s['preset']}`, {s['eval_examples']} examples, "
            f"{s['train_steps']} fine-tuning steps)",
            "",
            "| metric | original | DefinitionEMB | bootstrap p |",
            "|---|---|---|---|",
        ]
        for k in s["original"]:
            lines.append(
                f"| {k} | {_fmt(s['original'][k])} | {_fmt(s['definitionemb'][k])} | "
                f"{_fmt(s['bootstrap_p'].get(k))} |"
            )
        lines.append("")
    if c.get("plots"):
        lines += ["## Figures", ""] + [f"![{k}]({v})" for k, v in c["plots"].items()] + [""]
    if c.get("commands"):
        lines += ["## Commands", "", "```"] + list(c["commands"]) + ["```", ""]
    lines += [
        "## Run manifest",
        "",
        "```json",
        json.dumps(c["manifest"], indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def build_report(
    run: RunDir,
    db: LexiconRef = None,
    rows: str | None = None,
    how: Sequence[str] | str | None = None,
    extra: Mapping[str, Any] | None = None,
    plots: bool = True,
    command: str | None = None,
) -> RunReport:
    """Gather the run's stored results, measure isotropy of the original rows, each row policy `rows` ×
    `how` (default: the run's default policy and `replace`) and ABTT, draw figures, write report.json and .md."""
    with bound(run, db) as lex:  # one connection to the lexicon for the whole report
        return _build_report(run, lex, rows, how, extra, plots, command)


def _build_report(
    run: RunDir,
    lex: RunLexicon,
    rows: str | None,
    how: Sequence[str] | str | None,
    extra: Mapping[str, Any] | None,
    plots: bool,
    command: str | None,
) -> RunReport:
    from definitionemb.evaluation.plots import alpha_curve, coverage_bars, isotropy_bars, svd_scatter

    out = run.report_dir
    stored = load_results(run)
    iso, mats, labels = isotropy_of_run(run, lex, rows, how)
    content: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "run_id": run.run_id,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": run.manifest(),
        "isotropy": iso,
        "wordsim": {},
        "wordsim_wins": [],
        "knobs": None,
        "glue": [],
        "sts": [],
        "summarization": [],
        "coverage": None,
        "plots": {},
        "commands": [],
    }
    for rec in stored:
        if rec.command and rec.command not in content["commands"]:
            content["commands"].append(rec.command)
        res = {**rec.result, "config": rec.config} if rec.config else rec.result
        if rec.kind is ResultKind.WORDSIM:
            content["wordsim"].update(rec.result)
        elif rec.kind is ResultKind.KNOBS:
            content["knobs"] = rec.result
        elif rec.kind is ResultKind.GLUE:
            content["glue"].append(res)
        elif rec.kind is ResultKind.STS:
            content["sts"].append(res)
        elif rec.kind is ResultKind.SUMMARIZATION:
            content["summarization"].append(res)
    for k, v in (extra or {}).items():
        kind = next((kd for kd in ResultKind if k == kd.value or k.startswith(kd.value + "-")), None)
        if kind is ResultKind.WORDSIM:
            content["wordsim"].update(v)
        elif kind is ResultKind.KNOBS:
            content["knobs"] = v
    content["wordsim_wins"] = wordsim_wins(content["wordsim"])
    if (command or current_command()) not in content["commands"]:
        content["commands"].append(command or current_command())
    if lex.available:
        content["coverage"] = coverage_rows(lex, lex.tokenizer_id)
    if plots:
        content["plots"]["svd"] = svd_scatter(mats, labels, out / "svd_scatter.png").name
        content["plots"]["isotropy"] = isotropy_bars(iso["matrices"], out / "isotropy_by_bucket.png").name
        if content["coverage"]:
            content["plots"]["coverage"] = coverage_bars(content["coverage"], out / "coverage.png").name
        if content["knobs"]:
            content["plots"]["alpha"] = alpha_curve(content["knobs"], out / "alpha_curve.png").name
    _write_json(out / "report.json", content)
    write_bytes(out / "report.md", _markdown(jsonable(content)).encode())
    return RunReport(str(out), jsonable(content))


def evaluate_run(
    run: RunDir | str | os.PathLike[str],
    db: LexiconRef = None,
    *,
    rows: str | None = None,
    how: Sequence[str] | str | None = None,
    wordsim: Sequence[str | os.PathLike[str]] = (),
    wordsim_part: str = "all",
    knobs: bool = False,
    glue: Any = None,
    summarization: Any = None,
    plots: bool = True,
    progress: bool = False,
    command: str | None = None,
    sts: str | os.PathLike[str] | None = None,
    sts_part: str = "test",
) -> RunReport:
    """Evaluate a run in one call: isotropy and word similarity on each of `wordsim` (files or folders)
    of the original rows, each row policy `rows` × `how` (default: the shipped policy and `replace`) and
    ABTT; with `knobs`, α chosen on the development parts of the `wordsim` sets (its curve and choice in
    the report, the choice added to the policies); optionally GLUE fine-tuning (`glue`: a
    FinetuneConfig) and summarisation (a SummarizationConfig); with `sts` (the STS Benchmark folder) and a
    sentence-encoder model, zero-shot STS on `sts_part` for the first policy; then the report. Each result
    is also stored under `report/results/`."""
    rd = run if isinstance(run, RunDir) else RunDir.open(run)
    with bound(rd, db) as lex:  # every evaluation below reads the lexicon through this one binding
        if sts is not None and is_sentence_encoder(rd):
            from definitionemb.evaluation.sts import compare_sts

            first: str | None = how if isinstance(how, str) else next(iter(how or []), None)
            res = compare_sts(rd, sts, sts_part, lex, rows, first)
            save_result(rd, ResultKind.STS, res.to_dict(), sts_part, command=command or current_command())
        return _evaluate_run(
            rd, lex, rows, how, wordsim, wordsim_part, knobs, glue, summarization, plots, progress, command
        )


def is_sentence_encoder(run: RunDir) -> bool:
    """Whether the run's model folder declares itself a sentence encoder (index.sentence.sentence_spec)."""
    from definitionemb.index.sentence import sentence_spec

    model = run.manifest().get("model")
    return bool(model) and Path(str(model)).is_dir() and sentence_spec(str(model)) is not None


def _evaluate_run(
    rd: RunDir,
    db: RunLexicon,
    rows: str | None,
    how: Sequence[str] | str | None,
    wordsim: Sequence[str | os.PathLike[str]],
    wordsim_part: str,
    knobs: bool,
    glue: Any,
    summarization: Any,
    plots: bool,
    progress: bool,
    command: str | None,
) -> RunReport:
    from definitionemb.index.policy import default_policy

    cmd = command or current_command()
    hows = [how] if isinstance(how, str) else list(how or [default_policy(rd).how, "replace"])
    if knobs and wordsim:
        kn = knobs_of_run(rd, wordsim, db, rows)
        save_result(
            rd, ResultKind.KNOBS, kn, command=cmd
        )  # shown, not adopted: `defemb eval knobs` records a choice
        if kn["chosen"] not in hows:
            hows.insert(1, kn["chosen"])
    if wordsim:
        from definitionemb.evaluation.rows import run_buckets, run_matrices

        labels, _ = run_buckets(rd, db)
        ws = wordsim_of_run(rd, wordsim, run_matrices(rd, db, rows, hows, buckets=labels), wordsim_part)
        for name, res in ws.items():
            save_result(rd, ResultKind.WORDSIM, {name: res}, name, command=cmd)
    if glue is not None:
        from definitionemb.evaluation.finetune import compare_glue

        res = compare_glue(rd, glue, db, progress)
        save_result(rd, ResultKind.GLUE, res.to_dict(), res.task, config=glue.to_dict(), command=cmd)
    if summarization is not None:
        from definitionemb.evaluation.summarization import compare_summarization

        sres = compare_summarization(rd, summarization, db, progress)
        save_result(
            rd,
            ResultKind.SUMMARIZATION,
            sres.to_dict(),
            sres.preset,
            config=summarization.to_dict(),
            command=cmd,
        )
    return build_report(rd, db, rows, hows, plots=plots, command=cmd)

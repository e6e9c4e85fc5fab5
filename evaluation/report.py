"""The evaluation of one run, end to end, and its report in `runs/<id>/report/`.

Each `defemb eval ... --run DIR` command stores its result (with the exact command line) under
`report/results/<name>.json`; `build_report` gathers them, measures isotropy, draws the figures and
writes `report.json` and `report.md`. `evaluate_run` is the one call the pipeline makes.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedder.binding import LexiconRef, RunLexicon, bound
from embedder.rundir import RunDir
from evaluation.errors import EvaluationError
from lexicon.fileio import write_bytes

__all__ = [
    "RunReport",
    "current_command",
    "save_result",
    "load_results",
    "isotropy_of_run",
    "isotropy_of_matrix",
    "isotropy_of_model",
    "wordsim_of_run",
    "coverage_rows",
    "build_report",
    "evaluate_run",
    "jsonable",
]

REPORT_VERSION = 1
_MATRIX_ORDER = {"original": 0, "definitionemb": 1, "abtt": 2}


def current_command() -> str:
    """The command line of this process, quoted so it can be pasted back into a shell."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("defemb", "__main__.py", "cli.py"):
        argv[0] = "defemb"
    return shlex.join(argv)


def jsonable(x: Any) -> Any:
    """`x` with numpy scalars as Python numbers and NaN/infinity as None, ready for `json.dumps`."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN; None reads as "undefined"
    return x


def _write_json(path: Path, obj: Any) -> None:
    write_bytes(path, json.dumps(jsonable(obj), indent=2, sort_keys=True).encode())


def save_result(run: RunDir, name: str, result: Mapping[str, Any], command: str | None = None) -> Path:
    """Store one evaluation result as `report/results/<name>.json`, with the command that produced it."""
    path = run.path / "report" / "results" / f"{name}.json"
    _write_json(
        path,
        {
            "name": name,
            "command": command or current_command(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "result": dict(result),
        },
    )
    return path


def load_results(run: RunDir) -> dict[str, dict[str, Any]]:
    """Every stored result of the run, by name."""
    folder = run.path / "report" / "results"
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EvaluationError(f"{f} is unreadable ({exc}); delete it and rerun its command") from exc
    return out


def isotropy_of_run(
    run: RunDir, db: LexiconRef = None, select: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
    """Isotropy of the original, DefinitionEMB and ABTT matrices by bucket; also returns matrices and labels."""
    from evaluation.isotropy import measure_by_bucket
    from evaluation.rows import describe, run_buckets, run_matrices

    with bound(run, db) as lex:
        labels, source = run_buckets(run, lex)
        mats = run_matrices(run, lex, select, buckets=labels)
    result = {
        "buckets_source": source,
        "bucket_rows": describe(labels),
        "select": select or "covered",
        "matrices": {name: measure_by_bucket(m, labels) for name, m in mats.items()},
    }
    return result, mats, labels


def _with_abtt(name: str, w: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    from evaluation.isotropy import all_but_the_top, measure_by_bucket

    return {
        name: measure_by_bucket(w, labels),
        "abtt": measure_by_bucket(all_but_the_top(w, 10, labels == "special"), labels),
    }


def isotropy_of_matrix(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Isotropy by bucket of a V×d `.npy` matrix (`matrix`) and of its ABTT baseline (`abtt`).

    Buckets follow row order (30/50/20 %), the first 4 rows special (evaluation.rows.buckets_by_order).
    """
    from evaluation.rows import buckets_by_order

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
    from embedder.binding import bucket_labels, tokenizer_special_ids
    from evaluation.rows import buckets_by_order
    from evaluation.swap import load_model

    w = load_model(str(model)).get_input_embeddings().weight.detach().numpy()
    if db is None:
        return _with_abtt("original", w, buckets_by_order(w.shape[0], tokenizer_special_ids(model).tolist()))
    import lexicon
    from lexicon.db import connect
    from lexicon.queries import token_table

    with connect(db) as con:
        tid = lexicon.tokenizer_id(con, lexicon.load_vocab(str(model)).sha256)
        if tid is None:
            raise EvaluationError(f"{model}'s tokenizer is not aligned in {db}; run defemb lexicon align")
        labels = bucket_labels(token_table(con, tid), w.shape[0])
    return _with_abtt("original", w, labels)


def wordsim_of_run(
    run: RunDir, datasets: Sequence[str | os.PathLike[str]], matrices: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Spearman per dataset and matrix, with the run's own tokenizer."""
    from transformers import AutoTokenizer

    from evaluation.wordsim import read_pairs, word_similarity

    model = run.manifest().get("model")
    if not model:
        raise EvaluationError(f"{run.manifest_path} names no model, so its tokenizer cannot be loaded")
    try:
        tok = AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot load the tokenizer of {model}: {exc}") from exc
    return {Path(d).stem: word_similarity(read_pairs(d), tok, matrices).to_dict() for d in datasets}


def coverage_rows(db: str | os.PathLike[str] | RunLexicon, tokenizer_id: int) -> list[dict[str, Any]]:
    """Tokens per (bucket, rule of the first definition), `uncovered` for tokens without one."""
    from lexicon.db import connect

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


def _markdown(c: Mapping[str, Any]) -> str:
    lines = [f"# Evaluation of run `{c['run_id']}`", "", f"Created {c['created']}.", ""]
    iso = c.get("isotropy")
    if iso:
        lines += [
            f"## Isotropy (selection `{iso['select']}`, buckets from {iso['buckets_source']})",
            "",
            "| matrix | rows | I(W) all | I(W) frequent | I(W) medium | I(W) rare | IsoScore | mean cos | top-1 PC | top-10 PC |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, by in sorted(iso["matrices"].items(), key=lambda kv: _MATRIX_ORDER.get(kv[0], 9)):
            a = by.get("all") or {}
            lines.append(
                "| "
                + " | ".join(
                    [
                        name,
                        _fmt(a.get("rows")),
                        _fmt(a.get("isotropy")),
                        *(_fmt((by.get(b) or {}).get("isotropy")) for b in ("frequent", "medium", "rare")),
                        _fmt(a.get("isoscore")),
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
        found = {m for r in ws.values() for m in r["spearman"]}
        names = [m for m in ("original", "definitionemb", "abtt") if m in found] + sorted(
            found - {"original", "definitionemb", "abtt"}
        )
        lines += [
            "## Word similarity (Spearman of cosine, single-token pairs)",
            "",
            "| dataset | pairs | covered | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names),
        ]
        for ds, r in ws.items():
            lines.append(
                f"| {ds} | {r['pairs']} | {r['covered_pairs']} ({r['coverage']:.1%}) | "
                + " | ".join(_fmt(r["spearman"].get(n)) for n in names)
                + " |"
            )
        lines.append("")
    for g in c.get("glue", []):
        s = g["summary"]
        lines += [
            f"## Fine-tuning: {g['task']} ({g['metric']}, selection `{g['select']}`, "
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
            f"Paired t-test over seeds: mean difference {_fmt(t['mean_diff'])}, "
            f"t = {_fmt(t['t'])}, p = {_fmt(t['p'])}.",
            "",
        ]
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
    select: str | None = None,
    extra: Mapping[str, Any] | None = None,
    plots: bool = True,
    command: str | None = None,
) -> RunReport:
    """Gather the run's stored results, measure isotropy, draw figures, write report.json and report.md."""
    with bound(run, db) as lex:  # one connection to the lexicon for the whole report
        return _build_report(run, lex, select, extra, plots, command)


def _build_report(
    run: RunDir,
    lex: RunLexicon,
    select: str | None,
    extra: Mapping[str, Any] | None,
    plots: bool,
    command: str | None,
) -> RunReport:
    from evaluation.plots import coverage_bars, isotropy_bars, svd_scatter

    out = run.path / "report"
    stored = load_results(run)
    iso, mats, labels = isotropy_of_run(run, lex, select)
    content: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "run_id": run.run_id,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": run.manifest(),
        "isotropy": iso,
        "wordsim": {},
        "glue": [],
        "summarization": [],
        "coverage": None,
        "plots": {},
        "commands": [],
    }
    merged: dict[str, dict[str, Any]] = dict(stored)
    for k, v in (extra or {}).items():
        merged[k] = {"result": v, "command": command or current_command()}
    for name, rec in merged.items():
        res = rec.get("result", {})
        if rec.get("command") and rec["command"] not in content["commands"]:
            content["commands"].append(rec["command"])
        if name.startswith("wordsim"):
            content["wordsim"].update(res)
        elif name.startswith("glue"):
            content["glue"].append(res)
        elif name.startswith("summarization"):
            content["summarization"].append(res)
    if (command or current_command()) not in content["commands"]:
        content["commands"].append(command or current_command())
    if lex.available:
        content["coverage"] = coverage_rows(lex, lex.tokenizer_id)
    if plots:
        content["plots"]["svd"] = svd_scatter(mats, labels, out / "svd_scatter.png").name
        content["plots"]["isotropy"] = isotropy_bars(iso["matrices"], out / "isotropy_by_bucket.png").name
        if content["coverage"]:
            content["plots"]["coverage"] = coverage_bars(content["coverage"], out / "coverage.png").name
    _write_json(out / "report.json", content)
    write_bytes(out / "report.md", _markdown(jsonable(content)).encode())
    return RunReport(str(out), jsonable(content))


def evaluate_run(
    run: RunDir | str | os.PathLike[str],
    db: LexiconRef = None,
    *,
    select: str | None = None,
    wordsim: Sequence[str | os.PathLike[str]] = (),
    glue: Any = None,
    summarization: Any = None,
    plots: bool = True,
    progress: bool = False,
    command: str | None = None,
) -> RunReport:
    """Evaluate a run in one call: isotropy (original / DefinitionEMB / ABTT), word similarity on each of
    `wordsim`, optionally GLUE fine-tuning (`glue`: a FinetuneConfig) and summarisation (a
    SummarizationConfig), then the report. Each result is also stored under `report/results/`."""
    rd = run if isinstance(run, RunDir) else RunDir.open(run)
    with bound(rd, db) as lex:  # every evaluation below reads the lexicon through this one binding
        return _evaluate_run(rd, lex, select, wordsim, glue, summarization, plots, progress, command)


def _evaluate_run(
    rd: RunDir,
    db: RunLexicon,
    select: str | None,
    wordsim: Sequence[str | os.PathLike[str]],
    glue: Any,
    summarization: Any,
    plots: bool,
    progress: bool,
    command: str | None,
) -> RunReport:
    cmd = command or current_command()
    if wordsim:
        from evaluation.rows import run_buckets, run_matrices

        labels, _ = run_buckets(rd, db)
        ws = wordsim_of_run(rd, wordsim, run_matrices(rd, db, select, buckets=labels))
        for name, res in ws.items():
            save_result(rd, f"wordsim-{name}", {name: res}, cmd)
    if glue is not None:
        from evaluation.finetune import compare_glue

        res = compare_glue(rd, glue, db, progress)
        save_result(rd, f"glue-{res.task}", res.to_dict(), cmd)
    if summarization is not None:
        from evaluation.summarization import compare_summarization

        sres = compare_summarization(rd, summarization, db, progress)
        save_result(rd, f"summarization-{sres.preset}", sres.to_dict(), cmd)
    return build_report(rd, db, select, plots=plots, command=cmd)

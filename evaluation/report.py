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

from embedder.rundir import RunDir
from evaluation.errors import EvaluationError
from lexicon.fileio import write_bytes

__all__ = [
    "RunReport",
    "current_command",
    "save_result",
    "load_results",
    "isotropy_of_run",
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
    run: RunDir, db: str | os.PathLike[str] | None = None, select: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
    """Isotropy of the original, DefinitionEMB and ABTT matrices by bucket; also returns matrices and labels."""
    from evaluation.isotropy import measure_by_bucket
    from evaluation.rows import describe, run_buckets, run_matrices

    labels, source = run_buckets(run, db)
    mats = run_matrices(run, db, select, buckets=labels)
    result = {
        "buckets_source": source,
        "bucket_rows": describe(labels),
        "select": select or "covered",
        "matrices": {name: measure_by_bucket(m, labels) for name, m in mats.items()},
    }
    return result, mats, labels


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


def coverage_rows(db: str | os.PathLike[str], tokenizer_id: int) -> list[dict[str, Any]]:
    """Tokens per (bucket, rule of the first definition), `uncovered` for tokens without one."""
    from lexicon.db import connect

    con = connect(db)
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
    db: str | os.PathLike[str] | None = None,
    select: str | None = None,
    extra: Mapping[str, Any] | None = None,
    plots: bool = True,
    command: str | None = None,
) -> RunReport:
    """Gather the run's stored results, measure isotropy, draw figures, write report.json and report.md."""
    from evaluation.plots import coverage_bars, isotropy_bars, svd_scatter
    from evaluation.rows import run_tokenizer_id

    out = run.path / "report"
    stored = load_results(run)
    iso, mats, labels = isotropy_of_run(run, db, select)
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
    path = db if db is not None else run.manifest().get("lexicon_db")
    if path and Path(str(path)).is_file():
        content["coverage"] = coverage_rows(path, run_tokenizer_id(run, path))
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
    db: str | os.PathLike[str] | None = None,
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

"""The one-page summary `defemb run` leaves in its work folder (summary.md + summary.json).

It gathers the headline of every stage: what was loaded, how much of the vocabulary the lexicon covers,
how training went, isotropy and word similarity before and after, and the neighbours of a few rare tokens
under the original and the DefinitionEMB rows. The full evaluation report stays in `<run>/report/`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from definitionemb.core.fileio import write_text
from definitionemb.embedder.rundir import RunDir
from definitionemb.stages import probe_neighbors_path, probe_reverse_path

__all__ = ["write_summary"]


def _f(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return "–" if math.isnan(x) else f"{x:.{digits}f}"
    return "–" if x is None else str(x)


def _isotropy_rows(iso: dict[str, Any]) -> list[str]:
    mats = (iso or {}).get("matrices", {})
    if not mats:
        return []
    buckets = ["all", "frequent", "medium", "rare"]
    lines = [
        "| matrix | "
        + " | ".join(f"I(W) {b}" for b in buckets)
        + " | "
        + " | ".join(f"IsoScore {b}" for b in buckets)
        + " |",
        "|---" * 9 + "|",
    ]
    for name, by_bucket in mats.items():
        cells = []
        for metric in ("isotropy", "isoscore"):
            for b in buckets:
                v = by_bucket.get(b)
                cells.append(_f(v.get(metric) if isinstance(v, dict) else v, 4))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _wordsim_rows(ws: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, res in (ws or {}).items():
        sp = res.get("spearman", {}) if isinstance(res, dict) else {}
        lines.append(
            f"- **{name}**: {res.get('covered_pairs', '?')}/{res.get('pairs', '?')} pairs covered; "
            "Spearman " + ", ".join(f"{m} {_f(v)}" for m, v in sp.items())
        )
    return lines


def _policy_rows(ev: dict[str, Any]) -> list[str]:
    """The run's row policy, its wins over the original rows, and what the α selection found."""
    from definitionemb.evaluation.knobs import wins_line

    pol = ev.get("policy") or {}
    lines = []
    if pol:
        lines.append(
            f"The run's row policy: `--rows {pol.get('rows')} --how {pol.get('how')}` (the shipped default "
            "unless the config sets another; chosen on the development parts of the word-similarity sets, "
            "benchmarks/RESULTS.md)."
        )
    wins = [w for w in ev.get("wordsim_wins") or [] if w.get("sets")]
    if wins:
        lines += ["", *[f"- {wins_line(w)}" for w in wins]]
    kn = ev.get("knobs")
    if kn:
        lines += ["", f"α chosen on this run's development parts: **{kn['chosen']}**. {kn['reason']}."]
    return lines


def _neighbor_rows(path: Path) -> list[str]:
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    by_token: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        tok = str(r.get("token") or r.get("query") or r.get("token_id"))
        d = by_token.setdefault(tok, {"original": [], "generated": []})
        for m in ("original", "generated"):
            piece = r.get(f"{m}_piece") or r.get(f"{m}_neighbor")
            if piece is not None and len(d[m]) < 5:
                # whose definition a generated neighbour carries: pieces sharing one word's tie at 1.0
                word, rule = r.get(f"{m}_word"), r.get(f"{m}_rule")
                d[m].append(f"{piece} (← {word}, {rule})" if word else str(piece))
    lines = ["| token | original neighbours | DefinitionEMB neighbours |", "|---|---|---|"]
    for tok, d in by_token.items():
        lines.append(f"| `{tok}` | {', '.join(d['original'])} | {', '.join(d['generated'])} |")
    return lines


def _reverse_rows(path: Path, queries: list[str], scorers: list[str]) -> list[str]:
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    by_query: dict[int, list[str]] = {}
    for r in rows:
        by_query.setdefault(int(r["query"]), []).append(
            f"{r['word']}" + ("" if r.get("single_token") else "*")
        )
    lines = [
        f"Scorers: {', '.join(scorers) or 'all'}; `*` marks words the tokenizer splits. "
        'Ask your own with `defemb reverse --run RUN "a definition"`.',
        "",
        "| definition | top 3 words |",
        "|---|---|",
    ]
    for i, words in sorted(by_query.items()):
        q = queries[i] if i < len(queries) else str(i)
        lines.append(f"| {q} | {', '.join(words)} |")
    return lines


def write_summary(
    results: dict[str, dict[str, Any]],
    work: Path,
    model: str,
    run_dir: Path,
    reverse_queries: Sequence[str] = (),
    reverse_scorers: Sequence[str] = (),
) -> dict[str, Any]:
    """Write `work/summary.md` and `work/summary.json` from the stages' results; returns their paths.

    `reverse_queries` / `reverse_scorers`: the definitions the index stage asked the reverse dictionary
    and the scorers it used ([index] reverse_queries, reverse_scorers).
    """
    r = results
    lex = r.get("lexicon", {})
    cov = r.get("align", {}).get("coverage", {})
    train = r.get("train", {})
    gen = r.get("generate", {})
    ev = r.get("evaluate", {})
    idx = r.get("index", {})
    lines = [
        "# defemb run — summary",
        "",
        f"- work folder: `{work}`",
        f"- model: `{model}`",
        f"- run: `{run_dir}`",
        f"- full evaluation report: `{ev.get('report_dir', RunDir(run_dir).report_dir)}/report.md`",
        "",
        "## Lexicon",
        "",
    ]
    for s in lex.get("sources", []):
        lines.append(
            f"- `{s.get('uri')}`: {s.get('records')} records, {s.get('loaded')} loaded, "
            f"{s.get('rejected')} rejected, filtered {s.get('filtered')}"
        )
    if cov:
        o = cov["overall"]
        lines += [
            "",
            f"Coverage of the vocabulary: {o['covered']}/{o['tokens']} tokens ({o['ratio']:.1%}).",
            "",
            "| bucket | tokens | covered | ratio |",
            "|---|---|---|---|",
        ]
        for b, v in cov.get("buckets", {}).items():
            lines.append(f"| {b} | {v['tokens']} | {v['covered']} | {v['ratio']:.1%} |")
        if cov.get("rules"):
            lines += [
                "",
                "First definitions by rule: " + ", ".join(f"{k} {v}" for k, v in cov["rules"].items()),
            ]
    if train:
        h = train.get("heldout", {})
        lines += [
            "",
            "## Regressor",
            "",
            f"{train.get('steps')} steps, {_f(train.get('tokens_per_s'), 0)} tokens/s, final train loss "
            f"{_f(train.get('train_loss'))}. On {h.get('tokens', '?')} held-out tokens the mean cosine "
            f"between generated and original rows is **{_f(h.get('cosine'))}**, against "
            f"{_f(h.get('baseline_cosine'))} for the mean of the definition's own token rows.",
        ]
    if gen:
        lines += [
            "",
            f"Generated {gen.get('tokens')} of {gen.get('vocab_size')} rows "
            f"({_f(gen.get('definitions_per_s'), 0)} definitions/s).",
        ]
    iso = _isotropy_rows(ev.get("isotropy", {}))
    if iso:
        lines += ["", "## Isotropy", "", *iso]
    ws = _wordsim_rows(ev.get("wordsim", {}))
    if ws:
        lines += ["", "## Word similarity", "", *ws]
    pol = _policy_rows(ev)
    if pol:
        lines += ["", "## Row policy", "", *pol]
    nb = _neighbor_rows(Path(idx.get("probe_neighbors", probe_neighbors_path(RunDir(run_dir)))))
    if nb:
        lines += ["", "## Neighbours of rare tokens, before and after", "", *nb]
    rev = _reverse_rows(
        Path(idx.get("reverse_answers", probe_reverse_path(RunDir(run_dir)))),
        list(reverse_queries),
        list(reverse_scorers),
    )
    if rev:
        lines += ["", "## Reverse dictionary: a definition → the word", "", *rev]
    lines.append("")
    md = work / "summary.md"
    js = work / "summary.json"
    for path, text in ((md, "\n".join(lines)), (js, json.dumps(r, indent=2, default=str))):
        write_text(path, text)
    return {"markdown": str(md), "json": str(js)}

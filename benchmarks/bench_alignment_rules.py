"""Alignment rules you can trust: judged precision per rule × position, and per-rule counts on two vocabularies.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_alignment_rules [--db LEXICON.duckdb]

1. Precision: ``benchmarks/data/alignment-judgements.csv`` holds rank-1 links drawn at random per
   (rule, position) from the demo lexicon × MiniLM, and for the rules MiniLM never uses (casefold, unaccent)
   × RoBERTa (``scripts/alignment_sample.py``), and judged by
   reading (protocol in ``benchmarks/RESULTS.md``, issue 23). One line per cell: the share judged
   correct and its Wilson 95 % interval, against ``lexicon.aligner.PRECISION_BAR``.
2. Counts: the whole Open Dictionary (``../shared``; or the lexicon given by ``--db``) aligned to the
   RoBERTa/BART vocabulary (fairseq ``dict.txt`` counts) and to MiniLM's WordPiece vocabulary, with every
   rule at both positions (``untrusted=True``). One line per (tokenizer, rule, position): tokens whose
   first definition comes from the rule with every rule on, and under the default (rules trusted at the
   position only: a token's first definition is then its best-ranked trusted link). The default's
   coverage is the all-rules alignment's tokens with at least one trusted link, since the untrusted rules
   include the two fallbacks, which reach only tokens nothing else reached.

JSON lines: ``{"bench", "value", "unit", "baseline", "ratio", ...}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from definitionemb.lexicon.aligner import PRECISION_BAR, TRUSTED_RULES, align
from definitionemb.lexicon.db import connect

from definitionemb import lexicon

ROOT = Path(__file__).resolve().parents[1]
JUDGED = ROOT / "benchmarks" / "data" / "alignment-judgements.csv"
OPEN_DICTIONARY = ROOT.parent / "shared" / "data" / "wiktionary" / "open-dictionary" / "api"
TOKENIZERS = {
    "roberta": (
        ROOT / "tests" / "data" / "roberta-bart",
        ROOT / "tests" / "data" / "roberta-bart" / "dict.txt",
    ),
    "minilm": (ROOT / "tests" / "data" / "minilm-tokenizer", None),
}


def _emit(bench: str, value: float, unit: str, baseline: float | None = None, **extra: Any) -> None:
    ratio = round(value / baseline, 3) if baseline else None
    print(
        json.dumps(
            {"bench": bench, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio, **extra}
        )
    )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def precision() -> None:
    cells: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    with JUDGED.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            c = cells[(row["rule"], row["position"], row["vocabulary"])]
            c[0] += int(row["correct"])
            c[1] += 1
    for (rule, position, vocabulary), (k, n) in sorted(cells.items()):
        lo, hi = wilson(k, n)
        _emit(
            "alignment_precision",
            round(k / n, 3),
            "share judged correct",
            PRECISION_BAR,
            rule=rule,
            position=position,
            vocabulary=vocabulary,
            judged=n,
            ci95=[round(lo, 3), round(hi, 3)],
            trusted=rule in TRUSTED_RULES[position],
        )


def counts(db: Path) -> None:
    for name, (tok, freq) in TOKENIZERS.items():
        rep = align(db, tok, frequencies=freq, untrusted=True, progress=False)
        with connect(db) as con:
            rows = con.execute(
                """WITH l AS (
                       SELECT a.token_id, a.rule, a.rank, t.word_initial,
                              list_contains(CASE WHEN t.word_initial THEN $ini ELSE $int END, a.rule) AS ok
                       FROM alignment a JOIN token t USING (tokenizer_id, token_id) WHERE a.tokenizer_id = $tid),
                   everything AS (SELECT token_id, word_initial, arg_min(rule, rank) AS rule FROM l GROUP BY ALL),
                   trusted AS (SELECT token_id, word_initial, arg_min(rule, rank) AS rule FROM l WHERE ok GROUP BY ALL)
                   SELECT coalesce(e.rule, d.rule) AS rule, coalesce(e.word_initial, d.word_initial) AS initial,
                          count(e.token_id) AS all_rules, count(d.token_id) AS default_rules
                   FROM (SELECT rule, word_initial, token_id FROM everything) e
                   FULL JOIN (SELECT rule, word_initial, token_id FROM trusted) d
                     ON d.token_id = e.token_id AND d.rule = e.rule
                   GROUP BY ALL ORDER BY ALL""",
                {
                    "tid": rep.tokenizer_id,
                    "ini": list(TRUSTED_RULES["initial"]),
                    "int": list(TRUSTED_RULES["internal"]),
                },
            ).fetchall()
        tot_all = tot_def = 0
        for rule, initial, n_all, n_def in rows:
            tot_all += n_all
            tot_def += n_def
            _emit(
                "alignment_rule_count",
                int(n_def),
                "tokens whose first definition comes from the rule, default rules",
                int(n_all) or None,
                tokenizer=name,
                rule=rule,
                position="initial" if initial else "internal",
                all_rules=int(n_all),
            )
        _emit(
            "alignment_covered",
            tot_def,
            "tokens covered, default rules",
            tot_all,
            tokenizer=name,
            vocab=rep.tokens,
            all_rules=tot_all,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--db", help="an existing lexicon to align (copied); default: build the whole Open Dictionary"
    )
    a = ap.parse_args()
    precision()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "lexicon.duckdb"
        if a.db:
            shutil.copy(a.db, db)
        elif OPEN_DICTIONARY.is_dir():
            lexicon.build(db, [f"open-dictionary:{OPEN_DICTIONARY}"], progress=False)
        else:
            print(json.dumps({"bench": "alignment_rule_count", "skipped": f"{OPEN_DICTIONARY} is absent"}))
            return
        counts(db)


if __name__ == "__main__":
    main()

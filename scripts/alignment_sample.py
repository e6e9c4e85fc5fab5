"""Draw the labelled sample behind the alignment-rule precision table (benchmarks/RESULTS.md, issue 23).

    .venv/bin/python scripts/alignment_sample.py LEXICON.duckdb TOKENIZER OUT.csv [--per-cell 50] [--seed 23]
        [--rule RULE]

The vocabulary of TOKENIZER must be aligned in LEXICON (with `untrusted=True` to sample every rule).

For every (rule, position) cell of the rank-1 links of the vocabulary aligned in LEXICON, draws up to
`--per-cell` links at random (seeded) and writes one CSV row each: the piece, the headword and the rank-1
gloss it received, and the most frequent English words (wordfreq) whose tokenization uses the piece, so a
reader can tell what the piece means where the model sees it. The `correct` column is left empty for the
judge (see RESULTS.md for the protocol); `benchmarks/bench_alignment_precision.py` reads the judged file.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import duckdb

TOP_WORDS = 200_000  # wordfreq words tokenized to find where each piece occurs
EXAMPLES = 5


def piece_examples(tokenizer: str, pieces: set[str]) -> dict[str, list[str]]:
    """The most frequent wordfreq words whose tokenization holds each of `pieces` (in frequency order)."""
    import wordfreq
    from definitionemb.lexicon.tokenizers import load_vocab, open_tokenizer

    tok = open_tokenizer(load_vocab(tokenizer))
    words = [w for w in wordfreq.top_n_list("en", TOP_WORDS) if w.isalpha()]
    # a cased vocabulary also sees the capitalised word (names, sentence starts)
    words += [w.capitalize() for w in words[: TOP_WORDS // 4]]
    seen: dict[str, list[str]] = defaultdict(list)
    for w, enc in zip(
        words, tok.encode_batch([" " + w for w in words], add_special_tokens=False), strict=True
    ):
        for p in dict.fromkeys(enc.tokens):
            if p in pieces and len(seen[p]) < EXAMPLES:
                seen[p].append(w)
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("tokenizer")
    ap.add_argument("out")
    ap.add_argument("--per-cell", type=int, default=50)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--rule", help="sample this rule only")
    a = ap.parse_args()
    con = duckdb.connect(a.db, read_only=True)
    con.execute("SELECT setseed(?)", [1.0 / a.seed])
    rows = con.execute(
        """SELECT rule, position, piece, word, pos, gloss FROM (
               SELECT a.rule, CASE WHEN t.word_initial THEN 'initial' ELSE 'internal' END AS position,
                      t.piece, e.word, e.pos, s.gloss, t.token_id,
                      row_number() OVER (PARTITION BY a.rule, t.word_initial ORDER BY hash(t.piece || $seed)) AS k
               FROM alignment a JOIN token t USING (tokenizer_id, token_id)
               JOIN sense s USING (sense_id) JOIN entry e USING (entry_id)
               WHERE a.rank = 1 AND ($rule IS NULL OR a.rule = $rule))
           WHERE k <= $n ORDER BY rule, position, piece""",
        {"seed": str(a.seed), "n": a.per_cell, "rule": a.rule},
    ).fetchall()
    examples = piece_examples(a.tokenizer, {r[2] for r in rows})
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rule", "position", "piece", "headword", "pos", "gloss", "occurs_in", "correct"])
        for rule, position, piece, word, pos, gloss in rows:
            w.writerow([rule, position, piece, word, pos, gloss[:200], " ".join(examples.get(piece, [])), ""])
    print(f"{len(rows)} links written to {out}")


if __name__ == "__main__":
    main()

"""Token ↔ definition alignment: every token of a vocabulary gets its ranked senses, in DuckDB SQL.

Alignment looks only at a token's `(surface, word_initial)`, never at the raw piece, so byte-level BPE,
WordPiece and SentencePiece vocabularies go through the same joins. Each link records the rule that
found it. Rules, and the tier each gets (lower = earlier):

==========  ==========================================================  ============  ============
rule        link                                                        word-initial  word-internal
==========  ==========================================================  ============  ============
user        a user-written definition (tsv source) of the surface            0             0
affix       ``ing`` ↔ ``-ing``, ``-ing-``; word-initial ``pre`` ↔ ``pre-``    50             5
exact       the surface is the headword                                       10            10
casefold    the surface is the headword up to case                            11            11
lemma       the lemma's definitions, reached through a form-of / alt-of       12 (9)        12 (9)
            sense of the surface or the `form` table ("brought" → bring);
            9 when the surface's first listed sense is itself a form-of
            ("ran": simple past of run, before its nautical noun)
exact       form-of senses themselves ("plural of cat"), after the lemma      13            13
casefold    likewise, up to case                                              14            14
numeral     digits → number words (``12`` → twelve, ``3rd`` → third)          60            60
unaccent    equal once accents are stripped (``cafe`` ↔ café)                 70            70
stem        only where nothing above matched: a regular English suffix       80            80
            stripped (``editors`` → editor, ``hoping`` → hope)
completion  only where nothing above matched, for lower-case alphabetic        90            90
            pieces of 5+ (word-initial) or 6+ (word-internal) letters: the
            shortest headword the piece begins (``Ġincarcer`` → incarcerate)
            or ends (``monary`` → pulmonary); form-of-only words are skipped
==========  ==========================================================  ============  ============

Not every rule is trusted everywhere. Each rule's rank-1 links were judged by reading, separately for
word-initial and word-internal pieces (``benchmarks/data/alignment-judgements.csv``, protocol and table in
``benchmarks/RESULTS.md``, issue 23): a rule applies to a position by default only where its measured
precision reaches :data:`PRECISION_BAR` (:data:`TRUSTED_RULES`). A word-internal piece such as ``##mir``
(the piece of *Kashmir*) is not the word *mir*; it takes a definition only from an affix entry (``-ness``)
or a user definition, else it keeps its pre-trained row and counts as not covered. ``untrusted=True``
(``--untrusted-rules``) applies every rule at both positions, as before.

Word-internal pieces rank affixes first, because a continuation piece such as ``ing`` is almost always
the suffix; word-initial pieces rank a prefix last, because ``Ġpre`` is as often a word of its own.

"The first definition of a token" (rank 1) is well defined: order by tier, then the rule's own
preference (`sub`: e.g. a lemma of the same part of speech first), then the part-of-speech tier
(content words, then names/phrases/abbreviations, then letters/symbols/affixes and a one-letter word's
senses about the letter), then senses not tagged obsolete/archaic/dated/rare/misspelling first, then
entry order, sense order and sense id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from definitionemb.lexicon.db import connect, writing
from definitionemb.lexicon.errors import LexiconError, TokenizerError
from definitionemb.lexicon.frequencies import (
    Frequencies,
    check_buckets,
    from_chunks,
    from_corpus,
    from_dict_txt,
    from_vocab_order,
    ranks_and_buckets,
)
from definitionemb.lexicon.numerals import numeral_table
from definitionemb.lexicon.tokenizers import Vocab, load_vocab, token_rows
from definitionemb.lexicon.wordfreq_counts import from_wordfreq

__all__ = [
    "align",
    "AlignReport",
    "tokenizer_id",
    "RULES",
    "FALLBACK_RULES",
    "PRECISION_BAR",
    "TRUSTED_RULES",
    "trusted_rules",
    "STEM_SUFFIXES",
    "WORDFREQ",
    "LEXICON_CORPUS",
]

# `frequencies=WORDFREQ` counts pieces in wordfreq's English word list instead of reading a dict.txt;
# `corpus=LEXICON_CORPUS` counts them in the lexicon's own glosses and examples.
WORDFREQ = "wordfreq"
LEXICON_CORPUS = "lexicon"

# The rules in the order they are reported (coverage tables add them one by one in this order).
RULES = ("user", "exact", "casefold", "lemma", "affix", "numeral", "unaccent", "stem", "completion")
# Rules that only reach tokens no other rule reached.
FALLBACK_RULES = ("stem", "completion")

# A rule applies to a position by default only if the judged precision of its rank-1 links there reaches
# this bar (benchmarks/data/alignment-judgements.csv, 50 links a cell where that many exist; RESULTS.md,
# issue 23). Word-initial: exact 0.88, lemma 0.96, numeral 0.98 (MiniLM); casefold 0.70 (RoBERTa: names
# read as common nouns, "ĠTRUMP", "ĠCruise"), unaccent 3 of 5, stem 0.22, completion 0.20 fall below it.
# Word-internal: exact 0.28, lemma 0.32, numeral 0.29, stem 0.04, completion 0.00 (MiniLM), casefold 0.64
# (RoBERTa). `user` definitions are the user's word; `affix` entries are what a word-internal piece is
# for (kaikki has them; the Open Dictionary has none, so no sample could be drawn).
PRECISION_BAR = 0.8
TRUSTED_RULES: dict[str, tuple[str, ...]] = {
    "initial": ("user", "exact", "lemma", "affix", "numeral"),
    "internal": ("user", "affix"),
}


def trusted_rules(rules: Sequence[str] = RULES, untrusted: bool = False) -> dict[str, list[str]]:
    """`{"initial": [...], "internal": [...]}`: the rules of `rules` applied at each position."""
    return {
        pos: [r for r in rules if untrusted or r in TRUSTED_RULES[pos]] for pos in ("initial", "internal")
    }


# (suffix, replacement) pairs the `stem` fallback tries; doubled final consonants are undone as well.
STEM_SUFFIXES = (
    ("s", ""),
    ("es", ""),
    ("ies", "y"),
    ("ed", ""),
    ("ed", "e"),
    ("ied", "y"),
    ("ing", ""),
    ("ing", "e"),
    ("ly", ""),
    ("ily", "y"),
    ("er", ""),
    ("er", "e"),
    ("est", ""),
    ("est", "e"),
    ("ness", ""),
    ("ment", ""),
    ("ers", ""),
    ("'s", ""),
)

# Senses most readers would not call "the" definition of a word.
_WEAK_TAGS = ["obsolete", "archaic", "dated", "rare", "misspelling", "nonstandard"]
_CONTENT_POS = [
    "noun",
    "verb",
    "adj",
    "adv",
    "pron",
    "det",
    "article",
    "prep",
    "conj",
    "num",
    "intj",
    "particle",
    "contraction",
    "postp",
]
_MARGINAL_POS = [
    "character",
    "symbol",
    "punct",
    "prefix",
    "suffix",
    "infix",
    "interfix",
    "affix",
    "circumfix",
    "combining_form",
]
# kaikki form rows that are inflection-table scaffolding, not forms.
_NOT_FORMS = ["table-tags", "inflection-template", "class", "romanization"]


@dataclass(frozen=True)
class AlignReport:
    """What one `align` call wrote: the tokenizer row, coverage, and counts per rule."""

    tokenizer_id: int
    name: str
    kind: str
    sha256: str
    vocab_size: int
    frequency_source: str
    tokens: int
    covered: int
    ratio: float
    links: int
    buckets: dict[str, dict[str, float]] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the `defemb lexicon align --json` output)."""
        return asdict(self)


def tokenizer_id(con: duckdb.DuckDBPyConnection, sha256: str) -> int | None:
    """The id under which the vocabulary with this fingerprint is aligned, or None."""
    rows = con.execute("SELECT tokenizer_id FROM tokenizer WHERE sha256 = ?", [sha256]).fetchall()
    return int(rows[0][0]) if rows else None  # fetchall: no open result is left on a shared connection


def _frequencies(
    con: duckdb.DuckDBPyConnection,
    vocab: Vocab,
    frequencies: str | os.PathLike[str] | None,
    corpus: str | os.PathLike[str] | None,
    progress: bool,
) -> Frequencies:
    if frequencies is not None and str(frequencies) == WORDFREQ:
        return from_wordfreq(vocab, progress=progress)
    if frequencies is not None:
        if not Path(frequencies).is_file():
            raise LexiconError(
                f"frequencies {str(frequencies)!r} is neither {WORDFREQ!r} nor a file; give a fairseq "
                f"dict.txt or {WORDFREQ!r}"
            )
        return from_dict_txt(frequencies, vocab)
    if corpus is not None and str(corpus) == "vocab-order":
        return from_vocab_order(vocab)
    lexicon_counts = corpus is not None and str(corpus) == LEXICON_CORPUS
    if corpus is None and vocab.kind in ("wordpiece", "sentencepiece"):
        # No pre-training counts ship with these: real English frequencies beat the glosses' own counts,
        # whose rare end is foreign-script pieces (see lexicon.wordfreq_counts).
        try:
            return from_wordfreq(vocab, progress=progress)
        except TokenizerError:
            pass  # e.g. a bare SentencePiece .model that nothing here can tokenize: counted below
    if corpus is not None and not lexicon_counts:
        path = Path(corpus)
        if not path.is_file():
            raise LexiconError(f"corpus {path} is not a file; give a UTF-8 text file, one passage a line")
        with path.open(encoding="utf-8", errors="replace") as fh:
            return from_corpus((line.rstrip("\n") for line in fh), vocab, f"corpus:{path}", progress=progress)
    # The lexicon's glosses and examples, cut at spaces and tallied in SQL (see from_chunks).
    tally = con.execute(
        """WITH texts AS (SELECT gloss AS text FROM sense
                          UNION ALL SELECT example FROM sense WHERE example IS NOT NULL),
                parts AS (SELECT CASE WHEN contains(text, '  ') OR starts_with(text, ' ') OR suffix(text, ' ')
                                      THEN [text] ELSE string_split(text, ' ') END AS l
                          FROM texts WHERE text <> '')
           SELECT chunk, pos = 0 AS first, count(*)::DOUBLE AS n
           FROM (SELECT unnest(l) AS chunk, unnest(range(len(l))) AS pos FROM parts)
           WHERE chunk <> '' GROUP BY ALL"""
    ).fetchnumpy()
    if len(tally["chunk"]) == 0:
        return from_vocab_order(vocab)
    try:
        return from_chunks(
            [str(c) for c in tally["chunk"]],
            [bool(f) for f in tally["first"]],
            tally["n"],
            vocab,
            "corpus:lexicon",
            progress=progress,
        )
    except TokenizerError:
        return from_vocab_order(vocab)  # e.g. a bare SentencePiece .model: nothing here can tokenize


def _write_tokens(
    con: duckdb.DuckDBPyConnection, tid: int, vocab: Vocab, freq: Frequencies, buckets: Sequence[float]
) -> None:
    rows = token_rows(vocab)
    rank, bucket = ranks_and_buckets(freq, rows.special, buckets)
    frame = pl.DataFrame(
        {
            "token_id": rows.token_id,
            "piece": rows.piece,
            "surface": rows.surface,
            "word_initial": rows.word_initial,
            "special": rows.special,
            "frequency": [int(c) if c >= 0 else None for c in freq.counts],
            "freq_rank": [int(r) if r >= 0 else None for r in rank],
            "bucket": bucket,
        },
        schema={
            "token_id": pl.Int32,
            "piece": pl.Utf8,
            "surface": pl.Utf8,
            "word_initial": pl.Boolean,
            "special": pl.Boolean,
            "frequency": pl.Int64,
            "freq_rank": pl.Int32,
            "bucket": pl.Utf8,
        },
    )
    con.register("_token_frame", frame)
    try:
        con.execute(
            "INSERT INTO token SELECT ?, token_id, piece, surface, word_initial, special, frequency, "
            "freq_rank, bucket FROM _token_frame",
            [tid],
        )
    finally:
        con.unregister("_token_frame")


def _sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


_MARKS = {
    "bpe": ("'Ġ' || surface", "surface"),
    "wordpiece": ("surface", "'##' || surface"),
    "sentencepiece": ("'▁' || surface", "surface"),
}


def _align_sql(
    con: duckdb.DuckDBPyConnection,
    tid: int,
    kind: str,
    lang: str | None,
    max_senses: int | None,
    rules: Sequence[str] = RULES,
    untrusted: bool = False,
) -> None:
    spell_initial, spell_internal = _MARKS[kind]
    con.register("_numerals", numeral_table())
    stems = pl.DataFrame({"suffix": [s for s, _ in STEM_SUFFIXES], "repl": [r for _, r in STEM_SUFFIXES]})
    con.register("_stems", stems)
    lang_filter = "AND e.lang_code = $lang" if lang else ""
    by_position = trusted_rules(rules, untrusted)
    params: dict[str, Any] = {"tid": tid, "rules": by_position["initial"], "irules": by_position["internal"]}
    if lang:
        params["lang"] = lang
    weak, content, marginal, not_forms = (
        _sql_list(x) for x in (_WEAK_TAGS, _CONTENT_POS, _MARGINAL_POS, _NOT_FORMS)
    )
    statements = [
        # distinct alignment keys of this vocabulary
        """CREATE OR REPLACE TEMP TABLE _k AS
           SELECT DISTINCT surface, word_initial, lower(surface) AS lsurface
           FROM token WHERE tokenizer_id = $tid AND NOT special AND surface IS NOT NULL
             AND trim(surface) <> '' AND length(surface) <= 64""",
        f"""CREATE OR REPLACE TEMP TABLE _s AS
           SELECT s.sense_id, s.entry_id, s.ord, e.word, lower(e.word) AS lword, e.pos,
                  coalesce(s.form_of, s.alt_of) AS target,
                  (s.form_of IS NOT NULL OR s.alt_of IS NOT NULL) AS is_form, s.user_defined,
                  -- a one-letter word's senses about the letter ("The name of the Latin-script letter
                  -- A", "The ordinal number first, derived from this letter") count as marginal, so
                  -- "a" means the article first
                  CASE WHEN list_contains({marginal}, e.pos)
                            OR (length(e.word) = 1 AND s.gloss ILIKE '%letter%') THEN 2
                       WHEN list_contains({content}, e.pos) THEN 0 ELSE 1 END AS pos_tier,
                  CASE WHEN list_has_any(coalesce(s.tags, []::VARCHAR[]), {weak}) THEN 1 ELSE 0 END AS tag_tier
           FROM sense s JOIN entry e USING (entry_id)
           WHERE s.gloss <> '' {lang_filter}""",  # glosses are stored trimmed (lexicon.normalise)
        # exact and case-folded headword matches
        """CREATE OR REPLACE TEMP TABLE _m AS
           SELECT k.surface, k.word_initial, s.sense_id, s.is_form, s.target, s.pos, s.word,
                  s.word = k.surface AS is_exact,
                  row_number() OVER (PARTITION BY k.surface, k.word_initial
                                     ORDER BY s.word = k.surface DESC, s.entry_id, s.ord) AS mo
           FROM _k k JOIN _s s ON s.lword = k.lsurface
           WHERE NOT s.user_defined""",
        # Keys whose first listed sense is a form-of ("ran": simple past of run; "is"): the lemma's
        # definitions outrank the word's own later senses ("ran": yarns coiled on a winch).
        """CREATE OR REPLACE TEMP TABLE _p AS
           SELECT surface, word_initial FROM _m WHERE mo = 1 AND is_form""",
        # User definitions are keyed by a word or by a piece as the tokenizer spells it ("Ġbeach",
        # " beach", "##ing"); the spellings are rebuilt from (surface, word_initial), most specific first.
        f"""CREATE OR REPLACE TEMP TABLE _l AS
           SELECT u.surface, u.word_initial, s.sense_id, 'user' AS rule, 0 AS tier, u.sub, 0 AS src
           FROM (SELECT surface, word_initial, unnest(spell) AS ukey, unnest(range(len(spell))) AS sub
                 FROM (SELECT surface, word_initial,
                              CASE WHEN word_initial THEN [{spell_initial}, ' ' || surface, surface]
                                   ELSE [{spell_internal}, surface] END AS spell
                       FROM _k)) u
           JOIN _s s ON s.user_defined AND s.word = u.ukey
           UNION ALL
           SELECT s.surface, s.word_initial, s.sense_id, 'user', 0, 9, 0
           FROM (SELECT k.surface, k.word_initial, s.sense_id FROM _k k
                 JOIN _s s ON s.user_defined AND s.lword = k.lsurface AND s.word <> k.surface) s
           UNION ALL
           SELECT surface, word_initial, sense_id,
                  CASE WHEN is_exact THEN 'exact' ELSE 'casefold' END,
                  CASE WHEN is_exact THEN (CASE WHEN is_form THEN 13 ELSE 10 END)
                       ELSE (CASE WHEN is_form THEN 14 ELSE 11 END) END, 0, 0
           FROM _m
           UNION ALL
           -- lemma through form-of / alt-of senses of the surface
           SELECT m.surface, m.word_initial, s.sense_id, 'lemma', CASE WHEN p.surface IS NULL THEN 12 ELSE 9 END,
                  (CASE WHEN m.is_exact THEN 0 ELSE 4 END) + (CASE WHEN s.word = m.target THEN 0 ELSE 2 END)
                  + (CASE WHEN s.pos IS NOT DISTINCT FROM m.pos THEN 0 ELSE 1 END), m.mo
           FROM _m m JOIN _s s ON s.lword = lower(m.target)
           LEFT JOIN _p p ON p.surface = m.surface AND p.word_initial = m.word_initial
           WHERE m.is_form AND NOT s.user_defined AND s.lword <> lower(m.word)
           UNION ALL
           -- lemma through the form table ("brought" is a form of bring)
           SELECT k.surface, k.word_initial, s.sense_id, 'lemma', CASE WHEN p.surface IS NULL THEN 12 ELSE 9 END,
                  CASE WHEN f.form = k.surface THEN 1 ELSE 3 END, 0
           FROM _k k
           LEFT JOIN _p p ON p.surface = k.surface AND p.word_initial = k.word_initial
           JOIN (SELECT DISTINCT entry_id, form, lower(form) AS lform FROM form
                 WHERE NOT list_has_any(coalesce(tags, []::VARCHAR[]), {not_forms})) f ON f.lform = k.lsurface
           JOIN _s s ON s.entry_id = f.entry_id
           WHERE s.lword <> k.lsurface AND NOT s.user_defined
           UNION ALL
           SELECT a.surface, a.word_initial, s.sense_id, 'affix',
                  CASE WHEN a.word_initial THEN 50 ELSE 5 END, a.sub, 0
           FROM (SELECT surface, word_initial, '-' || lsurface AS akey, 0 AS sub FROM _k WHERE NOT word_initial
                 UNION ALL
                 SELECT surface, word_initial, '-' || lsurface || '-', 1 FROM _k WHERE NOT word_initial
                 UNION ALL
                 SELECT surface, word_initial, lsurface || '-', 0 FROM _k WHERE word_initial) a
           JOIN _s s ON s.lword = a.akey
           WHERE NOT s.user_defined
           UNION ALL
           SELECT k.surface, k.word_initial, s.sense_id, 'numeral', 60, n.sub, 0
           FROM _k k JOIN _numerals n ON n.digits = k.lsurface JOIN _s s ON s.lword = n.word
           WHERE NOT s.user_defined
           UNION ALL
           SELECT k.surface, k.word_initial, s.sense_id, 'unaccent', 70, 0, 0
           FROM (SELECT *, strip_accents(lsurface) AS bare FROM _k) k
           JOIN (SELECT *, strip_accents(lword) AS bare FROM _s WHERE NOT user_defined) s
             ON s.bare = k.bare AND s.lword <> k.lsurface
           -- shorter keys are mostly lone accented letters ("á" is not the article "a")
           WHERE length(k.bare) >= 4""",
        # stem: a fallback for keys nothing above reached
        """DELETE FROM _l WHERE NOT list_contains(CASE WHEN word_initial THEN $rules ELSE $irules END, rule)""",
        """INSERT INTO _l
           WITH c AS (
               SELECT k.surface, k.word_initial, st.sub, st.repl,
                      left(k.lsurface, length(k.lsurface) - length(st.suffix)) AS base
               FROM _k k
               JOIN (SELECT suffix, repl, row_number() OVER (ORDER BY suffix, repl) AS sub FROM _stems) st
                 ON suffix(k.lsurface, st.suffix) AND length(k.lsurface) > length(st.suffix) + 2
               ANTI JOIN (SELECT DISTINCT surface, word_initial FROM _l) l
                 ON l.surface = k.surface AND l.word_initial = k.word_initial),
           cand AS (
               SELECT surface, word_initial, sub, base || repl AS word FROM c
               UNION ALL  -- "running" -> "run": undo a doubled final consonant
               SELECT surface, word_initial, sub + 100, left(base, -1) FROM c
               WHERE repl = '' AND length(base) > 2 AND right(base, 1) = left(right(base, 2), 1))
           SELECT c.surface, c.word_initial, s.sense_id, 'stem', 80, c.sub, 0
           FROM cand c JOIN _s s ON s.lword = c.word AND NOT s.user_defined
           WHERE list_contains(CASE WHEN c.word_initial THEN $rules ELSE $irules END, 'stem')""",
        # completion: the last fallback. Every headword is cut into its heads and tails of 4+ letters
        # so that the match is an equi-join, not a scan of all words per piece.
        """INSERT INTO _l
           WITH todo AS (
               SELECT k.surface, k.word_initial, k.lsurface FROM _k k
               ANTI JOIN (SELECT DISTINCT surface, word_initial FROM _l) l
                 ON l.surface = k.surface AND l.word_initial = k.word_initial
               -- capitalised pieces are mostly names ("ĠTokyo" is no tokyoite), short word-internal
               -- pieces end too many words ("ight": bight? light?) to pick one
               WHERE regexp_full_match(k.surface, '[a-z]+')
                 AND length(k.surface) >= CASE WHEN k.word_initial THEN 5 ELSE 6 END),
           words AS (
               SELECT DISTINCT lword FROM _s
               WHERE NOT user_defined AND NOT is_form AND length(lword) BETWEEN 5 AND 24
                 AND regexp_full_match(lword, '[a-z]+')),
           cuts AS (
               SELECT lword, left(lword, n) AS head, right(lword, n) AS tail
               FROM (SELECT lword, unnest(range(4, length(lword))) AS n FROM words)),
           hit AS (
               SELECT * FROM (
                   SELECT t.surface, t.word_initial, c.lword FROM todo t JOIN cuts c ON c.head = t.lsurface
                   WHERE t.word_initial
                   UNION ALL
                   SELECT t.surface, t.word_initial, c.lword FROM todo t JOIN cuts c ON c.tail = t.lsurface
                   WHERE NOT t.word_initial)
               QUALIFY row_number() OVER (PARTITION BY surface, word_initial ORDER BY length(lword), lword) = 1)
           SELECT h.surface, h.word_initial, s.sense_id, 'completion', 90, 0, 0
           FROM hit h JOIN _s s ON s.lword = h.lword AND NOT s.user_defined AND NOT s.is_form
           WHERE list_contains(CASE WHEN h.word_initial THEN $rules ELSE $irules END, 'completion')""",
    ]
    for sql in statements:
        con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    cap = "QUALIFY rank <= $cap" if max_senses else ""
    final_params: dict[str, Any] = {"tid": tid}
    if max_senses:
        final_params["cap"] = max_senses
    con.execute(
        f"""INSERT INTO alignment
            SELECT $tid, t.token_id, r.sense_id, r.rule, r.rank
            FROM (SELECT b.surface, b.word_initial, b.sense_id, b.rule,
                         row_number() OVER (PARTITION BY b.surface, b.word_initial
                                            ORDER BY b.tier, b.sub, b.src, s.pos_tier, s.tag_tier, s.entry_id,
                                                     s.ord, s.sense_id) AS rank
                  FROM (SELECT * FROM _l QUALIFY row_number() OVER (
                            PARTITION BY surface, word_initial, sense_id ORDER BY tier, sub, src) = 1) b
                  JOIN _s s USING (sense_id)
                  {cap}) r
            JOIN token t ON t.tokenizer_id = $tid AND NOT t.special
                        AND t.surface = r.surface AND t.word_initial = r.word_initial""",
        final_params,
    )
    for name in ("_k", "_s", "_m", "_p", "_l"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    con.unregister("_numerals")
    con.unregister("_stems")


def _summary(
    con: duckdb.DuckDBPyConnection, tid: int
) -> tuple[int, int, int, dict[str, dict[str, float]], dict[str, int]]:
    from definitionemb.lexicon.queries import coverage_of

    cov = coverage_of(con, tid)
    links = con.execute("SELECT count(*) FROM alignment WHERE tokenizer_id = ?", [tid]).fetchone()
    return (
        int(cov["overall"]["tokens"]),
        int(cov["overall"]["covered"]),
        int(links[0]) if links else 0,
        cov["buckets"],
        cov["rules"],
    )


def align(
    db: str | os.PathLike[str],
    tokenizer: str | os.PathLike[str] | Vocab,
    frequencies: str | os.PathLike[str] | None = None,
    corpus: str | os.PathLike[str] | None = None,
    buckets: Sequence[float] = (0.3, 0.5, 0.2),
    *,
    lang: str | None = None,
    max_senses: int | None = None,
    rules: Sequence[str] | None = None,
    untrusted: bool = False,
    progress: bool = True,
    wait: float = 0.0,
) -> AlignReport:
    """Load `tokenizer`'s vocabulary into the lexicon at `db` and link every token to ranked senses.

    `frequencies` is a fairseq `dict.txt` (RoBERTa/BART ship their pre-training counts in one) or
    ``"wordfreq"``: real English word frequencies tokenized by this tokenizer (lexicon.wordfreq_counts).
    Without it, pieces are counted in `corpus` (a text file; ``"lexicon"``: the lexicon's own glosses
    and examples; ``"vocab-order"`` skips counting); with neither, WordPiece and SentencePiece vocabularies take ``"wordfreq"`` and BPE ones
    the lexicon's own glosses and examples.
    `buckets` are the (frequent, medium, rare) shares by frequency rank. `lang` keeps only entries of
    that language code; `max_senses` caps the links per token; `rules` restricts the rules applied (a
    subset of :data:`RULES`; default all), each only at the positions where it is trusted
    (:data:`TRUSTED_RULES`) unless `untrusted` is set. Aligning the same vocabulary again replaces its rows,
    atomically.
    """
    started = time.perf_counter()
    check_buckets(buckets)
    chosen = tuple(RULES if rules is None else rules)
    unknown = sorted(set(chosen) - set(RULES))
    if unknown or not chosen:
        raise LexiconError(f"unknown or no alignment rules {unknown or ''}; choose among {', '.join(RULES)}")
    if max_senses is not None and max_senses < 1:
        raise LexiconError(f"max_senses must be at least 1, got {max_senses}")
    connect(db).close()  # a missing or outdated lexicon is refused before any work
    vocab = tokenizer if isinstance(tokenizer, Vocab) else load_vocab(tokenizer)
    with writing(db, wait=wait) as con:
        freq = _frequencies(con, vocab, frequencies, corpus, progress)
        found = tokenizer_id(con, vocab.sha256)
        if found is None:
            row = con.execute("SELECT coalesce(max(tokenizer_id), 0) + 1 FROM tokenizer").fetchone()
            tid = int(row[0]) if row else 1
        else:
            tid = found
        con.execute("DELETE FROM alignment WHERE tokenizer_id = ?", [tid])
        con.execute("DELETE FROM token WHERE tokenizer_id = ?", [tid])
        con.execute("DELETE FROM tokenizer WHERE tokenizer_id = ?", [tid])
        con.execute(
            "INSERT INTO tokenizer VALUES (?, ?, ?, ?, ?, ?, current_timestamp)",
            [tid, vocab.name, vocab.kind, len(vocab.pieces), vocab.sha256, freq.source],
        )
        _write_tokens(con, tid, vocab, freq, buckets)
        _align_sql(con, tid, vocab.kind, lang, max_senses, chosen, untrusted)
        tokens, covered, links, bucket_cov, rank1_rules = _summary(con, tid)
    return AlignReport(
        tokenizer_id=tid,
        name=vocab.name,
        kind=vocab.kind,
        sha256=vocab.sha256,
        vocab_size=len(vocab.pieces),
        frequency_source=freq.source,
        tokens=tokens,
        covered=covered,
        ratio=covered / tokens if tokens else 0.0,
        links=links,
        buckets=bucket_cov,
        rules=rank1_rules,
        seconds=round(time.perf_counter() - started, 3),
    )

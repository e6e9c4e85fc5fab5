"""Token ↔ definition alignment on real glosses (Open Dictionary, kaikki, user tsv) and real tokenizers."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from definitionemb.lexicon.aligner import TRUSTED_RULES, align, trusted_rules
from definitionemb.lexicon.db import connect
from definitionemb.lexicon.errors import LexiconError, TokenizerError
from definitionemb.lexicon.queries import definitions, query

from definitionemb import lexicon

DATA = Path(__file__).parent / "data"
SOURCES = [
    f"open-dictionary:{DATA / 'lexicon-align' / 'open-dictionary' / 'api'}",
    f"kaikki:{DATA / 'lexicon-align' / 'affixes.jsonl'}",
    f"kaikki:{DATA / 'kaikki' / 'kaikki-en-sample-yomitan.jsonl'}",
    f"tsv:{DATA / 'tsv' / 'user-definitions.tsv'}",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("align") / "lexicon.duckdb"
    lexicon.build(db, SOURCES, progress=False)
    return db


@pytest.fixture(scope="module")
def db(
    built: Path,
    tmp_path_factory: pytest.TempPathFactory,
    roberta_tokenizer_dir: Path,
    roberta_dict_txt: Path,
    minilm_tokenizer_dir: Path,
) -> Path:
    path = tmp_path_factory.mktemp("aligned") / "lexicon.duckdb"
    shutil.copy(built, path)
    # every rule at both positions: the tests below look at each rule's own behaviour
    align(path, roberta_tokenizer_dir, frequencies=roberta_dict_txt, untrusted=True, progress=False)
    align(path, minilm_tokenizer_dir, untrusted=True, progress=False)
    return path


def first(db: Path, tok: Path, token: str) -> dict:
    rows = definitions(db, tok, [token]).filter(pl.col("rank") == 1)
    assert rows.height >= 1, f"{token!r} has no definition"
    return rows.row(0, named=True)


def test_exact_and_casefold(db: Path, roberta_tokenizer_dir: Path) -> None:
    hello = first(db, roberta_tokenizer_dir, "ĠHello")
    assert (hello["rule"], hello["word"]) == ("casefold", "hello")
    saw = first(db, roberta_tokenizer_dir, "Ġsaw")
    assert (saw["rule"], saw["word"], saw["pos"]) == ("exact", "saw", "noun")
    assert saw["gloss"].startswith("A tool with a toothed blade")


def test_lemma_through_form_of_ranks_the_lemma_before_the_form_of_sense(
    db: Path, roberta_tokenizer_dir: Path
) -> None:
    cats = definitions(db, roberta_tokenizer_dir, ["Ġcats"])
    top = cats.row(0, named=True)
    assert (top["rule"], top["word"], top["pos"]) == ("lemma", "cat", "noun")
    plural = cats.filter(pl.col("gloss") == "plural of cat")
    assert plural.height == 1 and plural["rule"][0] == "exact"
    cat_noun = cats.filter((pl.col("word") == "cat") & (pl.col("pos") == "noun"))
    assert plural["rank"][0] > cat_noun["rank"].max()


def test_a_word_listed_first_as_a_form_follows_its_lemma(db: Path, roberta_tokenizer_dir: Path) -> None:
    # "ran" is first "simple past tense of run" (then "of rin"), and only later a nautical noun
    ran = definitions(db, roberta_tokenizer_dir, ["Ġran"])
    assert ran.row(0, named=True)["word"] == "run"
    assert (
        ran.filter(pl.col("word") == "run")["rank"].min() < ran.filter(pl.col("word") == "rin")["rank"].min()
    )
    noun = ran.filter(pl.col("word") == "ran")
    assert noun.height > 0 and noun["rank"].min() > ran.filter(pl.col("word") == "run")["rank"].max()
    went = first(db, roberta_tokenizer_dir, "Ġwent")
    assert (went["word"], went["pos"]) == ("go", "verb")


def test_own_definitions_outrank_the_lemma_when_listed_first(db: Path, roberta_tokenizer_dir: Path) -> None:
    saw = definitions(db, roberta_tokenizer_dir, ["Ġsaw"])
    own = saw.filter((pl.col("word") == "saw") & ~pl.col("gloss").str.contains(" of see"))
    lemma = saw.filter(pl.col("rule") == "lemma")
    forms = saw.filter(pl.col("gloss").str.contains(" of see"))
    assert lemma["word"].unique().to_list() == ["see"]
    assert own["rank"].max() < lemma["rank"].min()
    assert lemma["rank"].max() < forms["rank"].min()


def test_lemma_through_the_form_table(
    db: Path, roberta_tokenizer_dir: Path, minilm_tokenizer_dir: Path
) -> None:
    # kaikki lists "brought" among the forms of "bring"; there is no entry "brought"
    for tok, token in ((roberta_tokenizer_dir, "Ġbrought"), (minilm_tokenizer_dir, "brought")):
        row = first(db, tok, token)
        assert (row["rule"], row["word"]) == ("lemma", "bring")


def test_affixes(db: Path, roberta_tokenizer_dir: Path, minilm_tokenizer_dir: Path) -> None:
    for tok, token, word in (
        (roberta_tokenizer_dir, "ity", "-ity"),
        (minilm_tokenizer_dir, "##ity", "-ity"),
        (roberta_tokenizer_dir, "Ġpseudo", "pseudo-"),
        (minilm_tokenizer_dir, "pseudo", "pseudo-"),
    ):
        row = first(db, tok, token)
        assert (row["rule"], row["word"]) == ("affix", word), token
    # a word-initial piece never takes a suffix, a continuation never a prefix
    kinds = query(
        db,
        """SELECT word_initial, starts_with(word, '-') AS suffix, count(*) AS n
                         FROM token_definition WHERE rule = 'affix' GROUP BY ALL ORDER BY ALL""",
    )
    assert kinds.select("word_initial", "suffix").rows() == [(False, True), (True, False)]


def test_numerals(db: Path, roberta_tokenizer_dir: Path, minilm_tokenizer_dir: Path) -> None:
    assert first(db, roberta_tokenizer_dir, "Ġ12")["word"] == "twelve"
    assert first(db, roberta_tokenizer_dir, "12")["rule"] == "numeral"
    third = first(db, minilm_tokenizer_dir, "3rd")
    assert (third["rule"], third["word"]) == ("numeral", "third")


def test_user_definitions_come_first_and_match_piece_spellings(db: Path, roberta_tokenizer_dir: Path) -> None:
    beach = definitions(db, roberta_tokenizer_dir, ["Ġbeach"])
    assert beach["rule"].to_list()[:2] == ["user", "user"]
    assert beach["pos"].to_list()[:2] == ["noun", "verb"]
    the = first(db, roberta_tokenizer_dir, "Ġthe")
    assert the["rule"] == "user" and the["gloss"].startswith("Definite grammatical article")
    # the key "Ġbeach" names the word-initial piece only
    assert (
        "user"
        not in definitions(db, roberta_tokenizer_dir, ["beach"])
        .filter(pl.col("piece") == "beach")["rule"]
        .to_list()
    )


def test_unaccent_and_stem(db: Path, roberta_tokenizer_dir: Path) -> None:
    cafe = first(db, roberta_tokenizer_dir, "Ġcafé")
    assert (cafe["rule"], cafe["word"]) == ("unaccent", "cafe")
    editors = first(db, roberta_tokenizer_dir, "Ġeditors")  # the slice has "editor" but not "editors"
    assert (editors["rule"], editors["word"]) == ("stem", "editor")
    # stem is a fallback: a token reached by any other rule gets no stem links
    stems = query(
        db,
        """SELECT count(*) AS n FROM alignment a
                         WHERE rule = 'stem' AND EXISTS (SELECT 1 FROM alignment b WHERE b.tokenizer_id = a.tokenizer_id
                               AND b.token_id = a.token_id AND b.rule <> 'stem')""",
    )
    assert stems["n"][0] == 0


def test_ranks_are_contiguous_and_specials_and_broken_pieces_unlinked(db: Path) -> None:
    bad = query(
        db,
        """SELECT tokenizer_id, token_id FROM alignment GROUP BY ALL
                       HAVING min(rank) <> 1 OR max(rank) <> count(*) OR count(DISTINCT rank) <> count(*)""",
    )
    assert bad.height == 0
    linked = query(
        db,
        """SELECT count(*) FILTER (WHERE t.special) AS special,
                                 count(*) FILTER (WHERE t.surface IS NULL) AS broken
                          FROM alignment a JOIN token t USING (tokenizer_id, token_id)""",
    )
    assert linked.row(0) == (0, 0)
    kept = query(db, "SELECT count(*) AS n FROM token WHERE tokenizer_id = 1 AND surface IS NULL")
    assert kept["n"][0] > 300


def test_report_and_frequency_sources(db: Path, roberta_tokenizer_dir: Path) -> None:
    rows = query(db, "SELECT tokenizer_id, kind, vocab_size, frequency_source FROM tokenizer ORDER BY 1")
    assert rows["kind"].to_list() == ["bpe", "wordpiece"]
    assert rows["vocab_size"].to_list() == [50265, 30522]
    assert rows["frequency_source"][0].startswith("dict.txt:")
    # WordPiece ships no counts: real English word frequencies by default; "the" is commoner than "pseudo"
    assert rows["frequency_source"][1].startswith("wordfreq:en:")
    freq = dict(
        query(
            db, "SELECT piece, frequency FROM token WHERE tokenizer_id = 2 AND piece IN ('the', 'pseudo')"
        ).iter_rows()
    )
    assert freq["the"] > freq["pseudo"] >= 0
    with connect(db) as con:
        assert lexicon.tokenizer_id(con, lexicon.load_vocab(roberta_tokenizer_dir).sha256) == 1
        assert lexicon.tokenizer_id(con, "0" * 64) is None


def test_realign_replaces_rows_and_is_idempotent(
    built: Path, tmp_path: Path, roberta_tokenizer_dir: Path, roberta_dict_txt: Path
) -> None:
    path = tmp_path / "lex.duckdb"
    shutil.copy(built, path)
    r1 = lexicon.align(path, roberta_tokenizer_dir, frequencies=roberta_dict_txt, progress=False)
    a1 = query(path, "SELECT * FROM alignment ORDER BY token_id, rank")
    t1 = query(path, "SELECT * FROM token ORDER BY token_id")
    r2 = lexicon.align(path, roberta_tokenizer_dir, frequencies=roberta_dict_txt, progress=False)
    assert r2.tokenizer_id == r1.tokenizer_id
    assert query(path, "SELECT count(*) AS n FROM tokenizer")["n"][0] == 1
    assert query(path, "SELECT * FROM alignment ORDER BY token_id, rank").equals(a1)
    assert query(path, "SELECT * FROM token ORDER BY token_id").equals(t1)
    r3 = lexicon.align(
        path, roberta_tokenizer_dir, corpus="vocab-order", buckets=(0.5, 0.3, 0.2), progress=False
    )
    counts = dict(query(path, "SELECT bucket, count(*) FROM token GROUP BY bucket").iter_rows())
    assert counts["frequent"] == 25130 and r3.frequency_source == "vocab-order"
    assert query(path, "SELECT count(*) AS n FROM token")["n"][0] == 50265


def test_failures_leave_the_lexicon_untouched(
    db: Path, tmp_path: Path, roberta_tokenizer_dir: Path, roberta_dict_txt: Path
) -> None:
    path = tmp_path / "lex.duckdb"
    shutil.copy(db, path)
    before = query(path, "SELECT * FROM alignment ORDER BY ALL")
    shifted = tmp_path / "dict.txt"
    shifted.write_text(
        "\n".join(roberta_dict_txt.read_text(encoding="utf-8").splitlines()[1:]) + "\n", encoding="utf-8"
    )
    with pytest.raises(TokenizerError, match="does not match"):
        lexicon.align(path, roberta_tokenizer_dir, frequencies=shifted, progress=False)
    empty = tmp_path / "not-a-tokenizer"
    empty.mkdir()
    with pytest.raises(TokenizerError, match="holds no tokenizer files"):
        lexicon.align(path, empty, progress=False)
    assert query(path, "SELECT * FROM alignment ORDER BY ALL").equals(before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dict.txt", "lex.duckdb", "not-a-tokenizer"]
    with pytest.raises(LexiconError, match="no lexicon"):
        lexicon.align(tmp_path / "missing.duckdb", roberta_tokenizer_dir, progress=False)
    with pytest.raises(LexiconError, match="buckets"):
        lexicon.align(path, roberta_tokenizer_dir, buckets=(0.2, 0.2), progress=False)


def test_max_senses_caps_links(built: Path, tmp_path: Path, minilm_tokenizer_dir: Path) -> None:
    path = tmp_path / "lex.duckdb"
    shutil.copy(built, path)
    lexicon.align(path, minilm_tokenizer_dir, max_senses=2, progress=False)
    assert query(path, "SELECT max(rank) AS m FROM alignment")["m"][0] == 2


def test_lang_filter(built: Path, tmp_path: Path, minilm_tokenizer_dir: Path) -> None:
    path = tmp_path / "lex.duckdb"
    shutil.copy(built, path)
    r = lexicon.align(path, minilm_tokenizer_dir, lang="fr", progress=False)
    assert r.covered == 0 and r.links == 0


def test_lexicon_counts_equal_tokenizing_every_gloss(
    built: Path, tmp_path: Path, minilm_tokenizer_dir: Path
) -> None:
    import numpy as np
    from definitionemb.lexicon.frequencies import from_corpus

    db = tmp_path / "lex.duckdb"
    shutil.copy(built, db)
    report = lexicon.align(db, minilm_tokenizer_dir, corpus="lexicon", progress=False)
    assert report.frequency_source == "corpus:lexicon"
    texts = query(
        db, "SELECT gloss AS t FROM sense UNION ALL SELECT example FROM sense WHERE example IS NOT NULL"
    )
    vocab = lexicon.load_vocab(minilm_tokenizer_dir)
    expected = from_corpus(texts["t"].to_list(), vocab, "corpus:test").counts
    stored = query(db, "SELECT frequency FROM token WHERE tokenizer_id = 1 ORDER BY token_id")["frequency"]
    assert (stored.to_numpy() == expected).all()
    assert np.asarray(expected).sum() > 1000


def test_completion_is_a_careful_last_resort(db: Path, roberta_tokenizer_dir: Path) -> None:
    incarcer = first(db, roberta_tokenizer_dir, "Ġincarcer")
    assert (incarcer["rule"], incarcer["word"]) == ("completion", "incarcerate")
    monary = first(db, roberta_tokenizer_dir, "monary")
    assert (monary["rule"], monary["word"]) == ("completion", "pulmonary")
    # names and short endings are left alone although "tokyoite" and "bight" are in the lexicon
    assert definitions(db, roberta_tokenizer_dir, ["ĠTokyo", "ight"]).height == 0
    # a token that any other rule reached gets no completion links
    mixed = query(
        db,
        """SELECT count(*) AS n FROM alignment a WHERE rule = 'completion' AND EXISTS (
                           SELECT 1 FROM alignment b WHERE b.tokenizer_id = a.tokenizer_id
                           AND b.token_id = a.token_id AND b.rule <> 'completion')""",
    )
    assert mixed["n"][0] == 0


def test_rules_can_be_restricted(
    built: Path, tmp_path: Path, roberta_tokenizer_dir: Path, roberta_dict_txt: Path
) -> None:
    path = tmp_path / "lex.duckdb"
    shutil.copy(built, path)
    r = lexicon.align(
        path,
        roberta_tokenizer_dir,
        frequencies=roberta_dict_txt,
        rules=["exact", "casefold"],
        untrusted=True,
        progress=False,
    )
    assert set(query(path, "SELECT DISTINCT rule FROM alignment")["rule"]) == {"exact", "casefold"}
    assert set(r.rules) == {"exact", "casefold"}
    # without the lemma rule, "Ġcats" falls back to its own form-of sense
    assert first(path, roberta_tokenizer_dir, "Ġcats")["gloss"] == "plural of cat"
    with pytest.raises(LexiconError, match="choose among"):
        lexicon.align(path, roberta_tokenizer_dir, rules=["exact", "fuzzy"], progress=False)


def test_a_one_letter_word_means_its_word_before_its_letter(db: Path, roberta_tokenizer_dir: Path) -> None:
    a = first(db, roberta_tokenizer_dir, "Ġa")
    assert (a["word"], a["pos"]) == ("a", "article")
    letter = definitions(db, roberta_tokenizer_dir, ["Ġa"]).filter(pl.col("gloss").str.contains("letter"))
    assert letter.height > 0 and letter["rank"].min() > 1


def test_word_internal_pieces_keep_their_rows_unless_an_affix_or_trusted_rule_covers_them(
    built: Path, db: Path, tmp_path: Path, minilm_tokenizer_dir: Path
) -> None:
    path = tmp_path / "lex.duckdb"
    shutil.copy(built, path)
    align(path, minilm_tokenizer_dir, progress=False)
    per_position = query(
        path,
        """SELECT t.word_initial, list(DISTINCT a.rule ORDER BY a.rule) AS rules
           FROM alignment a JOIN token t USING (tokenizer_id, token_id) GROUP BY ALL ORDER BY ALL""",
    )
    got = dict(zip(per_position["word_initial"], per_position["rules"].to_list(), strict=True))
    assert set(got[False]) <= set(TRUSTED_RULES["internal"]) and "affix" in got[False]
    assert set(got[True]) <= set(TRUSTED_RULES["initial"])
    assert first(path, minilm_tokenizer_dir, "##ity")["word"] == "-ity"  # an affix entry still covers
    # the pieces the untrusted rules reached inside words (e.g. ##run <- run) have no definition now
    loose = query(
        db,
        """SELECT DISTINCT t.piece FROM token_definition t JOIN tokenizer k USING (tokenizer_id)
           WHERE k.kind = 'wordpiece' AND NOT t.word_initial AND t.rule NOT IN ('user', 'affix')""",
    )["piece"].to_list()
    assert "##run" in loose and len(loose) > 10
    assert definitions(path, minilm_tokenizer_dir, loose).height == 0
    # and count as not covered
    strict, everything = (lexicon.coverage(p, minilm_tokenizer_dir)["overall"]["covered"] for p in (path, db))
    assert everything - strict >= len(loose)
    assert trusted_rules(["exact", "casefold", "stem"]) == {"initial": ["exact"], "internal": []}
    assert trusted_rules(["exact", "stem"], untrusted=True)["internal"] == ["exact", "stem"]

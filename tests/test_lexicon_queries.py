"""The read-side API: coverage, coverage_frame, definitions, query, export_parquet."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from definitionemb.lexicon.errors import LexiconError, TokenizerError

from definitionemb import lexicon

DATA = Path(__file__).parent / "data"
SOURCES = [
    f"open-dictionary:{DATA / 'lexicon-align' / 'open-dictionary' / 'api'}",
    f"kaikki:{DATA / 'lexicon-align' / 'affixes.jsonl'}",
    f"tsv:{DATA / 'tsv' / 'user-definitions.tsv'}",
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, roberta_tokenizer_dir: Path, roberta_dict_txt: Path) -> Path:
    path = tmp_path_factory.mktemp("queries") / "lexicon.duckdb"
    lexicon.build(path, SOURCES, progress=False)
    # every rule at both positions: these tests are about the queries, not about which rules are trusted
    lexicon.align(path, roberta_tokenizer_dir, frequencies=roberta_dict_txt, untrusted=True, progress=False)
    return path


def test_coverage_shape_and_consistency(db: Path, roberta_tokenizer_dir: Path) -> None:
    cov = lexicon.coverage(db, roberta_tokenizer_dir)
    assert set(cov) == {"overall", "buckets", "rules"}
    assert list(cov["buckets"]) == ["frequent", "medium", "rare"]
    o = cov["overall"]
    assert o["tokens"] == 50260
    assert o["covered"] == sum(b["covered"] for b in cov["buckets"].values())
    assert o["tokens"] == sum(b["tokens"] for b in cov["buckets"].values())
    assert o["ratio"] == pytest.approx(o["covered"] / o["tokens"])
    assert sum(cov["rules"].values()) == o["covered"]
    assert {"user", "exact", "casefold", "lemma", "affix", "numeral"} <= set(cov["rules"])
    direct = lexicon.query(db, "SELECT count(DISTINCT token_id) AS n FROM alignment WHERE tokenizer_id = 1")
    assert direct["n"][0] == o["covered"]
    # the same tokenizer named by id, by its aligned name, or as a Vocab
    assert lexicon.coverage(db, 1) == cov
    assert lexicon.coverage(db, lexicon.load_vocab(roberta_tokenizer_dir)) == cov


def test_coverage_frame(db: Path, roberta_tokenizer_dir: Path) -> None:
    frame = lexicon.coverage_frame(db, roberta_tokenizer_dir)
    assert frame["bucket"].to_list() == ["frequent", "medium", "rare", "all"]
    cov = lexicon.coverage(db, roberta_tokenizer_dir)
    row = frame.filter(pl.col("bucket") == "all").row(0, named=True)
    assert (row["tokens"], row["covered"]) == (cov["overall"]["tokens"], cov["overall"]["covered"])
    assert row["by_lemma"] == cov["rules"]["lemma"]
    by = [c for c in frame.columns if c.startswith("by_")]
    assert frame.filter(pl.col("bucket") != "all").select(by).sum().row(0) == tuple(row[c] for c in by)


def test_definitions_by_piece_surface_marker_and_id(db: Path, roberta_tokenizer_dir: Path) -> None:
    by_piece = lexicon.definitions(db, roberta_tokenizer_dir, ["Ġcats"])
    assert set(by_piece["token_id"]) == {10017}
    assert by_piece.columns == [
        "tokenizer_id",
        "token_id",
        "piece",
        "surface",
        "word_initial",
        "bucket",
        "freq_rank",
        "rank",
        "rule",
        "sense_id",
        "word",
        "pos",
        "gloss",
        "tags",
        "example",
    ]
    assert by_piece["rank"].to_list() == list(range(1, by_piece.height + 1))
    assert lexicon.definitions(db, roberta_tokenizer_dir, [10017]).equals(by_piece)
    assert lexicon.definitions(db, roberta_tokenizer_dir, ["10017"]).equals(by_piece)
    assert lexicon.definitions(db, roberta_tokenizer_dir, [" cats"]).equals(by_piece)
    # a bare surface names every token spelled so: 'cats' and 'Ġcats'
    both = lexicon.definitions(db, roberta_tokenizer_dir, ["cats"])
    assert set(both["piece"]) == {"cats", "Ġcats"}
    # the accented word-initial piece, typed as it reads
    assert set(lexicon.definitions(db, roberta_tokenizer_dir, ["Ġcafé"])["piece"]) == {"ĠcafÃ©"}
    everything = lexicon.definitions(db, roberta_tokenizer_dir)
    links = lexicon.query(db, "SELECT count(*) AS n FROM alignment")["n"][0]
    assert everything.height == links


def test_definitions_refuse_unknown_tokens(db: Path, roberta_tokenizer_dir: Path) -> None:
    with pytest.raises(TokenizerError, match="not in the vocabulary"):
        lexicon.definitions(db, roberta_tokenizer_dir, ["Ġcats", "no-such-piece-xyz"])
    with pytest.raises(TokenizerError, match="not in the vocabulary"):
        lexicon.definitions(db, roberta_tokenizer_dir, [99999])
    # a token without definitions is known, just empty
    assert lexicon.definitions(db, roberta_tokenizer_dir, ["<s>"]).height == 0


def test_unaligned_tokenizer_is_refused(db: Path, minilm_tokenizer_dir: Path) -> None:
    with pytest.raises(TokenizerError, match="defemb lexicon align"):
        lexicon.coverage(db, minilm_tokenizer_dir)
    with pytest.raises(TokenizerError, match="no tokenizer_id 7"):
        lexicon.coverage(db, 7)


def test_query_is_read_only_and_reports_sql_errors(db: Path) -> None:
    frame = lexicon.query(db, "SELECT bucket, count(*) AS n FROM token GROUP BY bucket ORDER BY bucket")
    assert dict(frame.iter_rows()) == {"frequent": 15078, "medium": 25130, "rare": 10052, "special": 5}
    with pytest.raises(LexiconError, match="SQL failed"):
        lexicon.query(db, "SELEC 1")
    with pytest.raises(LexiconError, match="only reads: a DELETE statement is refused"):
        lexicon.query(db, "DELETE FROM token")
    assert lexicon.query(db, "SELECT count(*) AS n FROM token")["n"][0] == 50265


def test_export_parquet_writes_every_table_and_the_view(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "pq"
    written = lexicon.export_parquet(db, out)
    tables = set(
        lexicon.query(
            db,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE'",
        )["table_name"]
    )
    assert tables | {"token_definition", "coverage"} == set(written)
    for name, path in written.items():
        assert path == out / f"{name}.parquet" and path.is_file()
    view = pl.read_parquet(written["token_definition"])
    assert view.height == lexicon.query(db, "SELECT count(*) AS n FROM token_definition")["n"][0]
    assert pl.read_parquet(written["token"]).height == 50265
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_moved_folder_is_found_by_its_aligned_name_and_a_changed_one_is_refused(
    db: Path, tmp_path: Path, roberta_tokenizer_dir: Path
) -> None:
    import shutil

    name = lexicon.query(db, "SELECT name FROM tokenizer WHERE tokenizer_id = 1")["name"][0]
    assert name == str(roberta_tokenizer_dir)
    copy = tmp_path / "db.duckdb"
    shutil.copy(db, copy)
    moved = tmp_path / "moved-name"
    # the name is not a folder any more: found by name
    from definitionemb.lexicon.db import writing

    with writing(copy) as con:
        con.execute("UPDATE tokenizer SET name = ? WHERE tokenizer_id = 1", [str(moved)])
    assert lexicon.coverage(copy, moved)["overall"]["tokens"] == 50260
    # a folder at that name now holds another vocabulary: identified by content, so refused
    moved.mkdir()
    (moved / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="not aligned"):
        lexicon.coverage(copy, moved)


def test_probe_pieces_are_whole_words_rarest_first(db: Path) -> None:
    from definitionemb.lexicon.queries import probe_pieces, query

    pieces = probe_pieces(db, 1, n=4)
    assert 0 < len(pieces) <= 4 and probe_pieces(db, None, n=4) == pieces  # one tokenizer aligned
    rows = query(db, "SELECT piece, surface, bucket FROM token WHERE tokenizer_id = 1")
    by_piece = {r["piece"]: r for r in rows.iter_rows(named=True)}
    order = {"rare": 0, "medium": 1, "frequent": 2}
    ranks = [order[by_piece[p]["bucket"]] for p in pieces]
    assert ranks == sorted(ranks)
    assert all(
        p.startswith("Ġ") and by_piece[p]["surface"].isalpha() and len(by_piece[p]["surface"]) >= 5
        for p in pieces
    )

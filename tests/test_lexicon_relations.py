"""What kaikki gives is kept (schema 2): every example, etymology text, sense and Wikidata ids, relations;
repeatable --lang, --pos/--exclude-pos at build time, and an older lexicon refused with its rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from definitionemb.lexicon.builder import build
from definitionemb.lexicon.db import connect
from definitionemb.lexicon.errors import SchemaMismatch

from definitionemb.cli import cli

KAIKKI = Path(__file__).parent / "data" / "kaikki"


def _rows(db: Path, sql: str) -> list[tuple]:
    con = connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _source_counts() -> dict[str, int]:
    """Relations as the real samples spell them, counted straight from the JSONL (entry and sense level)."""
    counts: dict[str, int] = {}
    for f in sorted(KAIKKI.glob("*.jsonl")):
        for line in f.read_text("utf-8").splitlines():
            rec = json.loads(line)
            for holder in [rec, *rec.get("senses", [])]:
                for kind in ("synonyms", "antonyms", "derived", "hypernyms"):
                    counts[kind] = counts.get(kind, 0) + sum(1 for x in holder.get(kind, []) if x.get("word"))
    return counts


@pytest.fixture(scope="module")
def rich_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("rel") / "lex.duckdb"
    build(db, [f"kaikki:{KAIKKI}"], progress=False)
    return db


def test_relations_of_the_real_samples_land_in_the_table(rich_db: Path) -> None:
    got = dict(_rows(rich_db, "SELECT kind, count(*) FROM relation GROUP BY kind"))
    for kind, n in _source_counts().items():
        assert got.get(kind, 0) == n, kind
    # a sense-level synonym keeps its sense; an entry-level one has none
    magical = _rows(
        rich_db,
        "SELECT synonym, s.gloss FROM synonym y JOIN sense s USING (sense_id) WHERE y.word = 'magical' "
        "ORDER BY synonym",
    )
    assert ("mystical", magical[[w for w, _ in magical].index("mystical")][1]) in magical
    assert (
        _rows(rich_db, "SELECT count(*) FROM synonym WHERE word = 'dictionary' AND sense_id IS NULL")[0][0]
        > 0
    )
    assert ("antidictionary",) in _rows(rich_db, "SELECT derived FROM derived_term WHERE word = 'dictionary'")


def test_examples_etymology_and_ids_are_kept(rich_db: Path) -> None:
    n_examples = sum(
        sum(1 for x in s.get("examples", []) if (x.get("text") or "").strip())
        for f in sorted(KAIKKI.glob("*.jsonl"))
        for line in f.read_text("utf-8").splitlines()
        for s in json.loads(line).get("senses", [])
    )
    kept = _rows(rich_db, "SELECT sum(len(examples)), count(example) FROM sense")[0]
    assert n_examples > kept[1] and kept[0] >= n_examples - 2  # dedup of repeated glosses may drop a few
    (wid, senseids, wikidata) = _rows(
        rich_db,
        "SELECT wiktionary_id, senseids, wikidata FROM sense JOIN entry USING (entry_id) "
        "WHERE word = 'dictionary' AND wikidata IS NOT NULL",
    )[0]
    assert wid == "en-dictionary-en-noun-en:Q23622" and senseids == ["en:Q23622"] and wikidata == ["Q23622"]
    ety = _rows(rich_db, "SELECT etymology_text FROM entry WHERE word = 'dictionary'")[0][0]
    assert ety and "Latin" in ety


def test_no_extras_keeps_schema_one_content(tmp_path: Path) -> None:
    db = tmp_path / "lean.duckdb"
    build(db, [f"kaikki:{KAIKKI}"], progress=False, extras=False)
    assert _rows(db, "SELECT count(*) FROM relation")[0][0] == 0
    assert (
        _rows(db, "SELECT count(*) FROM sense WHERE len(examples) > 1 OR wiktionary_id IS NOT NULL")[0][0]
        == 0
    )
    assert _rows(db, "SELECT count(*) FROM sense WHERE example IS NOT NULL")[0][0] > 0


def test_pos_filters_are_counted_and_langs_repeat(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "nouns.duckdb"
    res = runner.invoke(
        cli,
        ["lexicon", "build", "--db", str(db), "--source", f"kaikki:{KAIKKI}", "--pos", "noun", "--json"],
    )
    assert res.exit_code == 0, res.output
    src = json.loads(res.output)["sources"][0]
    assert src["records"] == src["loaded"] + sum(src["filtered"].values()) and src["filtered"]["pos"] > 0
    assert _rows(db, "SELECT DISTINCT pos FROM entry") == [("noun",)]
    assert (
        _rows(
            db,
            "SELECT count(*) FROM relation r WHERE NOT EXISTS (SELECT 1 FROM entry e WHERE e.entry_id = r.entry_id)",
        )[0][0]
        == 0
    )
    db2 = tmp_path / "no-nouns.duckdb"
    res = runner.invoke(
        cli,
        [
            "lexicon",
            "build",
            "--db",
            str(db2),
            "--source",
            f"kaikki:{KAIKKI}",
            "--exclude-pos",
            "noun",
            "--lang",
            "en",
            "--lang",
            "fr",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert ("noun",) not in _rows(db2, "SELECT DISTINCT pos FROM entry")
    assert _rows(db2, "SELECT lang_code FROM source") == [("en,fr",)]


def test_an_older_lexicon_is_refused_with_the_command_that_rebuilds_it(rich_db: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    old.write_bytes(rich_db.read_bytes())
    con = duckdb.connect(str(old))
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaMismatch) as err:
        connect(old)
    msg = str(err.value)
    assert f"defemb lexicon build --db {old} --source kaikki:{KAIKKI}" in msg and "version '1'" in msg
    res = CliRunner().invoke(cli, ["sql", "--db", str(old), "SELECT 1"])
    assert res.exit_code == 1 and "Error:" in res.output and "lexicon build" in res.output


def test_a_malformed_relation_costs_the_extras_not_the_record(tmp_path: Path) -> None:
    src = tmp_path / "odd.jsonl"
    good = {"word": "wain", "lang_code": "en", "pos": "noun", "senses": [{"glosses": ["A wagon."]}]}
    odd = {**good, "word": "waggon", "synonyms": "wain", "senses": [{"glosses": ["A wagon, spelled so."]}]}
    src.write_text(json.dumps(good) + "\n" + json.dumps(odd) + "\n", encoding="utf-8")
    rep = build(tmp_path / "l.duckdb", [f"kaikki:{src}"], progress=False).to_dict()["sources"][0]
    assert rep["loaded"] == 2 and rep["rejected"] == 0
    assert _rows(tmp_path / "l.duckdb", "SELECT count(*) FROM relation")[0][0] == 0

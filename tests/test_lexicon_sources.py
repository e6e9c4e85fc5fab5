"""Source readers on real data (tests/data) and on broken copies of it; every record accounted for."""

from __future__ import annotations

import bz2
import gzip
import json
import shutil
from pathlib import Path

import pytest
from definitionemb.lexicon.builder import build
from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources import KINDS, open_source, parse_spec

from definitionemb import lexicon

DATA = Path(__file__).parent / "data"
KAIKKI = DATA / "kaikki"
OD = DATA / "open-dictionary" / "api"
TSV = DATA / "tsv" / "user-definitions.tsv"


def _rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = lexicon.db.connect(db)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _sample_lines() -> list[bytes]:
    return [ln for f in sorted(KAIKKI.glob("*.jsonl")) for ln in f.read_bytes().splitlines() if ln.strip()]


def _check_accounting(db: Path) -> None:
    for sid, n, loaded, rejected, filtered in _rows(
        db, "SELECT source_id, n_records, n_loaded, n_rejected, n_filtered FROM source"
    ):
        assert n == loaded + rejected + filtered
        assert rejected == _rows(db, "SELECT count(*) FROM reject WHERE source_id = ?", [sid])[0][0]
        assert (
            filtered == _rows(db, "SELECT coalesce(sum(n), 0) FROM filtered WHERE source_id = ?", [sid])[0][0]
        )


def test_kinds_registered() -> None:
    assert set(KINDS) == {"kaikki", "open-dictionary", "tsv", "wiktionary-dump"}


def test_kaikki_sample_loads_every_entry(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"kaikki:{KAIKKI}"], progress=False).to_dict()["sources"][0]
    assert rep == {
        **rep,
        "kind": "kaikki",
        "records": 11,
        "loaded": 11,
        "rejected": 0,
        "filtered": {},
        "skipped": False,
    }
    words = {w for (w,) in _rows(db, "SELECT word FROM entry")}
    assert {"bring", "wain", "falcon", "dictionary", "1920's"} <= words
    # forms for lemma look-ups
    assert ("brought",) in _rows(
        db, "SELECT f.form FROM form f JOIN entry e USING (entry_id) WHERE e.word = 'bring'"
    )
    # tags, topics, example, raw gloss kept
    tags, topics, example, raw = _rows(
        db,
        "SELECT s.tags, s.topics, s.example, s.raw_gloss FROM sense s JOIN entry e USING (entry_id) "
        "WHERE e.word = 'bring' AND s.gloss LIKE 'To pitch%'",
    )[0]
    assert "baseball" in topics and example == "The closer Jones can really bring it."
    assert raw.startswith("(baseball)")
    assert tags is None
    # alt-of with target and filterable flag
    assert _rows(
        db,
        "SELECT s.alt_of, list_has(s.tags, 'misspelling') FROM sense s JOIN entry e USING (entry_id) "
        "WHERE e.word = 'peninsular' AND s.alt_of IS NOT NULL",
    ) == [("peninsula", True)]
    assert _rows(db, "SELECT etymology_no FROM entry WHERE word = 'bring'") == [(1,)]
    _check_accounting(db)


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.bz2"])
def test_kaikki_compressed(tmp_path: Path, suffix: str) -> None:
    data = b"\n".join(_sample_lines()) + b"\n"
    f = tmp_path / f"sample{suffix}"
    f.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else bz2.compress(data))
    rep = build(tmp_path / "lex.duckdb", [f"kaikki:{f}"], progress=False).sources[0]
    assert (rep.records, rep.loaded) == (11, 11)


def _bad_kaikki(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """A kaikki file built from real sample lines, broken in every way we promise to survive."""
    lines = _sample_lines()
    bring = json.loads(lines[0])
    expect: dict[int, str] = {}
    out: list[bytes] = []

    def add(line: bytes, why: str) -> None:
        out.append(line)
        expect[len(out)] = why

    add(lines[0], "loaded")
    add(b"{not json", "reject:invalid JSON")
    add(json.dumps({**bring, "senses": "To carry."}).encode(), "reject:wrong type")
    add(json.dumps({**bring, "word": 42}).encode(), "reject:wrong type")
    add(json.dumps({k: v for k, v in bring.items() if k != "word"}).encode(), "reject:missing word")
    add(json.dumps({**bring, "word": "  "}).encode(), "reject:empty word")
    add(
        json.dumps({**bring, "senses": [{"glosses": ["", " "]}, {"tags": ["no-gloss"]}]}).encode(),
        "filtered:empty_gloss",
    )
    add(json.dumps({**bring, "senses": []}).encode(), "filtered:no_senses")
    add(json.dumps({**bring, "lang_code": "fr", "lang": "French"}).encode(), "filtered:lang")
    add(b"", "filtered:blank_line")
    add(b'{"word": "caf\xe9", "lang_code": "en", "senses": [{"glosses": ["x"]}]}', "reject:invalid UTF-8")
    add(
        b'{"word": "x", "lang_code": "en", "senses": [{"glosses": ["'
        + b"a" * (10 * 1024 * 1024 + 10)
        + b'"]}]}',
        "reject:line over 10 MiB",
    )
    add(b'{"title": "colour", "redirect": "color", "pos": "hard-redirect"}', "filtered:redirect")
    add(b"[1, 2, 3]", "reject:wrong type")
    add(lines[1], "loaded")
    add(lines[2][: len(lines[2]) // 2], "reject:invalid JSON")  # truncated last line, no newline
    f = tmp_path / "broken.jsonl"
    f.write_bytes(b"\n".join(out))
    return f, expect


def test_kaikki_bad_input_is_accounted_for(tmp_path: Path) -> None:
    f, expect = _bad_kaikki(tmp_path)
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"kaikki:{f}"], progress=False).sources[0]
    assert rep.records == len(expect)
    assert rep.loaded == sum(v == "loaded" for v in expect.values())
    rejects = {no: reason for no, reason in _rows(db, "SELECT record_no, reason FROM reject")}
    assert set(rejects) == {n for n, v in expect.items() if v.startswith("reject:")}
    for no, reason in rejects.items():
        assert reason.startswith(expect[no].removeprefix("reject:")), (no, reason, expect[no])
    want_filtered: dict[str, int] = {}
    for v in expect.values():
        if v.startswith("filtered:"):
            want_filtered[v.split(":", 1)[1]] = want_filtered.get(v.split(":", 1)[1], 0) + 1
    assert rep.filtered == want_filtered
    # rejects keep a location and their raw text, cut to 64 KiB
    loc, raw = _rows(db, "SELECT location, raw FROM reject WHERE reason LIKE 'line over%'")[0]
    assert loc.startswith("broken.jsonl@") and len(raw) == 64 * 1024
    assert _rows(db, "SELECT raw FROM reject WHERE record_no = 2") == [("{not json",)]
    _check_accounting(db)


def test_kaikki_truncated_gzip_keeps_what_came_before(tmp_path: Path) -> None:
    data = gzip.compress((b"\n".join(_sample_lines()) + b"\n") * 10)  # 3.5 MB: several read blocks
    f = tmp_path / "cut.jsonl.gz"
    f.write_bytes(data[: len(data) * 2 // 3])
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"kaikki:{f}"], progress=False).sources[0]
    assert rep.loaded >= 1 and rep.rejected >= 1
    assert any("compressed" in r for (r,) in _rows(db, "SELECT reason FROM reject"))
    _check_accounting(db)


def test_open_dictionary_slice(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"open-dictionary:{OD}"], progress=False).sources[0]
    n_words = sum(len(json.loads(f.read_text())) for f in OD.glob("*/*.json"))
    assert rep.records == n_words and rep.rejected == 0
    assert rep.loaded + sum(rep.filtered.values()) == n_words
    pos = {p for (p,) in _rows(db, "SELECT DISTINCT pos FROM entry")}
    assert {"noun", "verb", "adj"} <= pos and not any(p and p[0].isupper() for p in pos)
    assert _rows(db, "SELECT count(*) FROM sense WHERE gloss LIKE '%<sup>%' OR gloss LIKE '%<math>%'") == [
        (0,)
    ]
    assert _rows(db, "SELECT count(*) FROM sense WHERE form_of IS NOT NULL")[0][0] > 0
    # the word index file is not read as words
    assert _rows(db, "SELECT count(*) FROM reject") == [(0,)]
    # user_defined stays false for Wiktionary
    assert _rows(db, "SELECT bool_or(user_defined) FROM sense") == [(False,)]
    _check_accounting(db)


def test_open_dictionary_bad_words_and_files(tmp_path: Path) -> None:
    tree = tmp_path / "api"
    shutil.copytree(OD / "x", tree / "x")
    words = json.loads((OD / "x" / "xa.json").read_text())
    first = next(iter(words))
    words[first] = {"word": first, "etymologies": "oops"}
    words["emptyone"] = {
        "word": "emptyone",
        "etymologies": [{"partsOfSpeech": [{"partOfSpeech": "Noun", "senses": [{"sense": " "}]}]}],
    }
    words["nosense"] = {"word": "nosense", "etymologies": []}
    (tree / "x" / "xa.json").write_text(json.dumps(words))
    (tree / "x" / "xz.json").write_text('{"xzzy": {"word": "xzzy", "etym')  # truncated file
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"open-dictionary:{tree}"], progress=False).sources[0]
    reasons = sorted(r for (r,) in _rows(db, "SELECT reason FROM reject"))
    assert (
        len(reasons) == 2
        and reasons[0].startswith("invalid JSON file")
        and reasons[1].startswith("wrong type")
    )
    assert rep.filtered == {"empty_gloss": 1, "no_senses": 1}
    _check_accounting(db)


def test_open_dictionary_other_language_is_filtered(tmp_path: Path) -> None:
    rep = build(tmp_path / "l.duckdb", [f"open-dictionary:{OD / 'x'}"], lang="fr", progress=False).sources[0]
    assert rep.loaded == 0 and rep.filtered == {"lang": rep.records}


def test_tsv_user_definitions(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"tsv:{TSV}"], progress=False).sources[0]
    n_lines = len(TSV.read_text().splitlines())
    assert rep.records == n_lines and rep.filtered == {"header": 1} and rep.rejected == 0
    rows = _rows(
        db,
        "SELECT e.word, e.pos, count(*), bool_and(s.user_defined) FROM entry e JOIN sense s "
        "USING (entry_id) GROUP BY ALL ORDER BY 1, 2",
    )
    assert ("ing", "noun", 2, True) in rows  # two lines with the same key and pos: one entry, two senses
    assert ("Ġbeach", "verb", 1, True) in rows
    assert _rows(db, "SELECT tags FROM sense WHERE gloss = 'To run aground on a beach.'") == [
        (["intransitive"],)
    ]


def test_tsv_bad_lines(tmp_path: Path) -> None:
    f = tmp_path / "defs.tsv"
    f.write_bytes(
        b"km\tNoun\tkilometre\nonly two\tfields\n\tNoun\tno key\nkm\tNoun\t  \nbad\tNoun\t\xff\xfe\n"
        b"km\tNoun\tkilometre\n"
    )
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"tsv:{f}"], progress=False).sources[0]
    assert (rep.records, rep.loaded, rep.rejected) == (6, 1, 3)
    assert rep.filtered == {"empty_gloss": 1, "duplicate": 1}
    _check_accounting(db)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kaikki", "has no kind"),
        (str(KAIKKI), "has no kind"),
        ("wordnet:/x", "unknown source kind"),
        ("kaikki:/no/such/file.jsonl", "does not exist"),
        (f"kaikki:{TSV.parent}", "holds no"),
    ],
)
def test_refused_specs(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_wrong_files_are_refused_with_advice(tmp_path: Path) -> None:
    csv = tmp_path / "words.jsonl"
    csv.write_text("word,pos,definition\ncat,noun,a small feline\n")
    with pytest.raises(SourceError, match="does not look like wiktextract JSONL.*tsv:"):
        open_source(f"kaikki:{csv}")
    with pytest.raises(SourceError, match="kaikki:"):
        open_source(f"tsv:{KAIKKI / 'kaikki-en-sample-dictionary.jsonl'}".replace(".jsonl", ".jsonl"))
    not_gz = tmp_path / "x.jsonl.gz"
    not_gz.write_bytes(b"plain text, not gzip")
    with pytest.raises(SourceError, match="cannot be read"):
        open_source(f"kaikki:{not_gz}")
    with pytest.raises(SourceError, match="Open Dictionary"):
        bad = tmp_path / "od"
        bad.mkdir()
        (bad / "a.json").write_text("[1, 2]")
        open_source(f"open-dictionary:{bad}")


def test_refused_source_leaves_db_untouched(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    before = db.read_bytes()
    with pytest.raises(SourceError):
        build(db, [f"kaikki:{KAIKKI}", "kaikki:/no/such.jsonl"], progress=False)
    assert db.read_bytes() == before


def test_parse_spec_keeps_colons_in_path() -> None:
    assert parse_spec("tsv:/a:b/c.tsv") == ("tsv", Path("/a:b/c.tsv"))


def _dump_tables(db: Path) -> dict[str, list[tuple]]:
    return {
        t: _rows(db, f"SELECT * FROM {t} ORDER BY ALL")
        for t in ("entry", "form", "sense", "reject", "filtered")
    }


@pytest.mark.parametrize("form", ["plain", "gz-truncated"])
def test_parallel_workers_give_the_same_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """Worker processes (used for big files) must load exactly what the single-process path loads."""
    from definitionemb.lexicon.sources import kaikki, streams
    from definitionemb.lexicon.sources import lines as line_split

    f, _ = _bad_kaikki(tmp_path)
    lines = _sample_lines()
    body = b"\n".join(lines * 3) + b"\n" + f.read_bytes() + b"\n" + b"\n".join(lines)
    if form == "plain":
        big = tmp_path / "mixed.jsonl"
        big.write_bytes(body)
    else:
        big = tmp_path / "mixed.jsonl.gz"
        gz = gzip.compress(body)
        big.write_bytes(gz[: len(gz) - 2000])
    monkeypatch.setattr(line_split, "BLOCK", 100_000)  # many chunks, some straddling lines
    monkeypatch.setattr(streams, "COMPRESSED_BLOCK", 100_000)
    serial = build(tmp_path / "serial.duckdb", [f"kaikki:{big}"], progress=False).sources[0]
    monkeypatch.setattr(kaikki, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(kaikki, "_RANGE_MIN", 50_000)  # both ways of handing chunks to workers
    monkeypatch.setattr(kaikki, "workers", lambda: 2)
    pools = []
    real_pool = kaikki.process_pool

    def counting_pool(n: int):  # type: ignore[no-untyped-def]
        pools.append(n)
        return real_pool(n)

    monkeypatch.setattr(kaikki, "process_pool", counting_pool)
    parallel = build(tmp_path / "parallel.duckdb", [f"kaikki:{big}"], progress=False).sources[0]
    assert (serial.records, serial.loaded, serial.rejected, serial.filtered) == (
        parallel.records,
        parallel.loaded,
        parallel.rejected,
        parallel.filtered,
    )
    assert pools == [2]
    if form == "plain":
        assert serial.loaded == 4 * 11 + 2 and serial.rejected >= 8
    else:
        assert serial.loaded >= 30
        assert any(
            "compressed" in r for (r,) in _rows(tmp_path / "parallel.duckdb", "SELECT reason FROM reject")
        )
    assert _dump_tables(tmp_path / "serial.duckdb") == _dump_tables(tmp_path / "parallel.duckdb")


def test_open_dictionary_parallel_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from definitionemb.lexicon.sources import open_dictionary

    tree = tmp_path / "api"
    shutil.copytree(OD, tree)
    (tree / "x" / "xz.json").write_text('{"xzzy": {"word": "xzzy", "etym')  # one unreadable file
    serial = build(tmp_path / "serial.duckdb", [f"open-dictionary:{tree}"], progress=False).sources[0]
    monkeypatch.setattr(open_dictionary, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(open_dictionary, "workers", lambda: 2)
    parallel = build(tmp_path / "parallel.duckdb", [f"open-dictionary:{tree}"], progress=False).sources[0]
    assert serial.sha256 == parallel.sha256
    assert (serial.records, serial.loaded, serial.rejected) == (parallel.records, parallel.loaded, 1)
    assert _dump_tables(tmp_path / "serial.duckdb") == _dump_tables(tmp_path / "parallel.duckdb")

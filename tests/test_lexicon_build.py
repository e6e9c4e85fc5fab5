"""lexicon.build: report shape, same content twice, atomic interruption, random input accounting."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from definitionemb.lexicon.builder import BuildReport, build
from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources import lines as line_split
from definitionemb.lexicon.sources.kaikki import KaikkiSource
from definitionemb.lexicon.sources.lines import iter_lines
from definitionemb.lexicon.sources.sink import Columns, Sink
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from definitionemb import lexicon

DATA = Path(__file__).parent / "data"
KAIKKI = DATA / "kaikki"
OD = DATA / "open-dictionary" / "api"
TSV = DATA / "tsv" / "user-definitions.tsv"
ROOT = Path(__file__).parents[1]


def _rows(db: Path, sql: str) -> list[tuple]:
    con = lexicon.db.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_report_shape_and_package_entry_point(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    rep = lexicon.build(db, [f"kaikki:{KAIKKI}", f"open-dictionary:{OD}", f"tsv:{TSV}"], progress=False)
    assert isinstance(rep, BuildReport)
    d = rep.to_dict()
    assert list(d) == ["sources"] and [s["kind"] for s in d["sources"]] == [
        "kaikki",
        "open-dictionary",
        "tsv",
    ]
    for s in d["sources"]:
        assert set(s) == {
            "uri",
            "kind",
            "records",
            "loaded",
            "rejected",
            "filtered",
            "seconds",
            "skipped",
            "replaced",
        }
        assert s["records"] == s["loaded"] + s["rejected"] + sum(s["filtered"].values())
        assert s["seconds"] >= 0 and s["skipped"] is False
    # ids are unique across sources; normaliser version is recorded
    assert _rows(db, "SELECT count(*) = count(DISTINCT sense_id) FROM sense") == [(True,)]
    assert _rows(db, "SELECT count(*) = count(DISTINCT entry_id) FROM entry") == [(True,)]
    assert {v for (v,) in _rows(db, "SELECT normaliser FROM source")} == {lexicon.normalise.VERSION}
    # every sense belongs to an entry of a source
    assert _rows(
        db, "SELECT count(*) FROM sense s LEFT JOIN entry e USING (entry_id) WHERE e.word IS NULL"
    ) == [(0,)]


def test_same_content_twice_adds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    copy = tmp_path / "copy"
    shutil.copytree(KAIKKI, copy)
    rep = build(db, [f"kaikki:{KAIKKI}", f"kaikki:{KAIKKI}", f"kaikki:{copy}"], progress=False).to_dict()
    assert [s["skipped"] for s in rep["sources"]] == [False, True, True]
    assert rep["sources"][1]["loaded"] == 0
    n = _rows(db, "SELECT count(*) FROM sense")
    before = _rows(db, "SELECT count(*) FROM entry")
    again = build(db, [f"kaikki:{KAIKKI}"], progress=False).to_dict()["sources"][0]
    assert again["skipped"] is True
    assert _rows(db, "SELECT count(*) FROM sense") == n and _rows(db, "SELECT count(*) FROM entry") == before
    assert _rows(db, "SELECT count(*) FROM source") == [(1,)]


def test_identical_glosses_of_one_word_are_kept_once(tmp_path: Path) -> None:
    f = tmp_path / "d.tsv"
    f.write_text("bank\tNoun\tA slope.\nbank\tVerb\tA slope.\nbank\tVerb\tTo tilt.\n", encoding="utf-8")
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{f}"], progress=False)
    assert sorted(g for (g,) in _rows(db, "SELECT gloss FROM sense")) == ["A slope.", "To tilt."]


def test_exception_mid_build_leaves_db_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    before = db.read_bytes()
    real = KaikkiSource.read

    def exploding(self, sink, progress):  # type: ignore[no-untyped-def]
        real(self, sink, progress)
        sink.flush()  # rows really reached the (temporary) database before the failure
        raise KeyboardInterrupt

    monkeypatch.setattr(KaikkiSource, "read", exploding)
    with pytest.raises(KeyboardInterrupt):
        build(db, [f"open-dictionary:{OD}", f"kaikki:{KAIKKI}"], progress=False)
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("lex.duckdb.tmp-*"))


def test_kill_9_mid_build_leaves_db_intact(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    before = db.read_bytes()
    flag = tmp_path / "loading"
    script = textwrap.dedent(
        f"""
        import time, pathlib
        from definitionemb.lexicon.sources.kaikki import KaikkiSource
        import definitionemb.lexicon.builder
        from definitionemb import lexicon
        real = KaikkiSource.read
        def slow(self, sink, progress):
            real(self, sink, progress)
            sink.flush()
            pathlib.Path({str(flag)!r}).touch()
            time.sleep(60)
        KaikkiSource.read = slow
        lexicon.builder.build({str(db)!r}, ["kaikki:{KAIKKI}"], progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.poll() is None, "the build subprocess ended early"
            assert time.monotonic() < deadline, "the build subprocess never started loading"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert db.read_bytes() == before
    # the next build works and cleans nothing it should not
    rep = build(db, [f"kaikki:{KAIKKI}"], progress=False).to_dict()["sources"][0]
    assert rep["loaded"] == 11


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
_glossy = st.fixed_dictionaries(
    {
        "word": st.one_of(st.text(max_size=6), st.integers(), st.none()),
        "lang_code": st.sampled_from(["en", "fr", None, 3]),
        "pos": st.one_of(st.sampled_from(["noun", "Verb"]), st.integers()),
        "senses": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"glosses": st.one_of(st.lists(st.text(max_size=12), max_size=2), st.text(max_size=4))},
                    optional={"tags": st.lists(st.text(max_size=5), max_size=2), "form_of": _json_values},
                ),
                max_size=3,
            ),
            _json_values,
        ),
    },
    optional={"forms": _json_values, "etymology_number": _json_values, "redirects": _json_values},
)


# Hostile shapes: nesting deep enough to exhaust a recursive decoder (in a field the reader ignores, or
# in one it reads), and a line over the 10 MiB limit (rare: each costs a 10 MiB scan).
_deep = st.tuples(st.integers(500, 100_000), st.sampled_from(["sounds", "senses"])).map(
    lambda t: (
        b'{"word": "x", "lang_code": "en", "'
        + t[1].encode()
        + b'": '
        + b"[" * t[0]
        + b"]" * t[0]
        + b', "pos": "noun"}'
    )
)
_HUGE = b'{"word": "' + b"h" * (10 * 1024 * 1024 + 1) + b'", "lang_code": "en", "senses": []}'
_hostile = st.integers(0, 40).flatmap(lambda i: st.just(_HUGE) if i == 0 else _deep)


def _line() -> st.SearchStrategy[bytes]:
    import json

    return st.one_of(
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")),
        _glossy.map(lambda d: json.dumps(d).encode()),
        _json_values.map(lambda d: json.dumps(d).encode()),
        st.text(max_size=30).map(lambda t: t.replace("\n", " ").encode("utf-8", "surrogatepass")),
        _hostile,
    )


def _expected_lines(whole: bytes) -> int:
    return whole.count(b"\n") + (bool(whole) and not whole.endswith(b"\n"))  # a last line needs no newline


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line(), max_size=12), block=st.sampled_from([16, 64, 1 << 20]))
def test_random_lines_reader_accounting(tmp_path: Path, lines: list[bytes], block: int) -> None:
    """The reader alone (no database): many examples, small read blocks mixing the per-chunk fast path
    with the per-line fallback."""
    f = tmp_path / "random.jsonl"
    whole = b"\n".join(lines)
    f.write_bytes(whole)
    batches: list[Columns] = []
    sink = Sink(batches.append, batch_senses=3)
    head = whole.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head not in (b"{", b""):
        with pytest.raises(SourceError, match="does not look like wiktextract JSONL"):
            KaikkiSource(f, "en")
        return
    if _HUGE in lines:  # tiny reads of a 10 MiB line only make the example slow
        block = 1 << 20
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(line_split, "BLOCK", block)
        KaikkiSource(f, "en").read(sink, lambda n: None)
    sink.flush()
    n = _expected_lines(whole)
    assert sink.records == n
    assert sink.records == sink.loaded + sink.rejected + sum(sink.filtered.values())
    rejected = [no for b in batches for no in b.reject["record_no"]]
    loaded = {no for b in batches for no in b.entry["record_no"]}
    assert len(rejected) == sink.rejected and len(loaded) == sink.loaded
    assert not loaded & set(rejected) and set(rejected) | loaded <= set(range(1, n + 1))


@settings(max_examples=200, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=300), st.binary(max_size=40).map(lambda b: b"\xef\xbb\xbf" + b)),
    block=st.integers(1, 64),
    max_len=st.integers(1, 40),
)
def test_iter_chunks_cover_the_stream(data: bytes, block: int, max_len: int) -> None:
    chunks = list(line_split.iter_chunks(io.BytesIO(data), max_len=max_len, block_size=block))
    body = data.removeprefix(line_split.BOM)  # a leading BOM is not part of the first line
    shift = len(data) - len(body)
    want = body.split(b"\n")
    if want and want[-1] == b"":
        want.pop()
    lines = []
    offsets: list[int] = []
    for c in chunks:
        if c.too_long:
            lines.append((c.no, None))
            offsets.append(c.offset)
        else:
            got = list(
                iter_lines(io.BytesIO(bytes(c.data)), max_len=10**9, first_no=c.no, first_offset=c.offset)
            )
            assert len(got) == c.n_lines
            lines.extend((ln.no, ln.data) for ln in got)
            offsets.extend(ln.offset for ln in got)
    assert [no for no, _ in lines] == list(range(1, len(want) + 1))
    assert offsets == [shift + sum(len(w) + 1 for w in want[:i]) for i in range(len(want))]
    for (_, got_line), w in zip(lines, want, strict=True):
        if got_line is None:
            assert len(w) > max_len
        else:
            assert got_line == w


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line(), max_size=12), trailing_newline=st.booleans())
def test_random_lines_never_crash_and_are_all_accounted_for(
    tmp_path: Path, lines: list[bytes], trailing_newline: bool
) -> None:
    work = tmp_path / f"h{time.monotonic_ns()}"
    work.mkdir()
    f = work / "random.jsonl"
    body = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    whole = b'{"word": "seed", "lang_code": "en", "senses": [{"glosses": ["A seed."]}]}\n' + body
    f.write_bytes(whole)
    db = work / "lex.duckdb"
    rep = build(db, [f"kaikki:{f}"], progress=False).sources[0]
    n_lines = _expected_lines(whole)
    assert rep.records == n_lines
    assert rep.records == rep.loaded + rep.rejected + sum(rep.filtered.values())
    assert _rows(db, "SELECT count(*) FROM reject") == [(rep.rejected,)]
    assert _rows(db, "SELECT count(DISTINCT record_no) FROM entry") == [(rep.loaded,)]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), block=st.integers(1, 64), max_len=st.integers(1, 40))
def test_iter_lines_matches_split(data: bytes, block: int, max_len: int) -> None:
    got = list(iter_lines(io.BytesIO(data), max_len=max_len, block_size=block))
    want = data.split(b"\n")
    if want and want[-1] == b"":
        want.pop()
    assert [ln.no for ln in got] == list(range(1, len(want) + 1))
    offset = 0
    for ln, w in zip(got, want, strict=True):
        assert ln.offset == offset
        assert ln.too_long == (len(w) > max_len)
        if ln.too_long:  # the head seen before the line was known to be too long
            assert w.startswith(ln.data) and len(ln.data) > max_len
        else:
            assert ln.data == w
        offset += len(w) + 1

"""The lexicon against hostile or careless input: nothing lost, nothing changed behind the user's back.

One test per defect of issue 12 (each failed on the code before the fix).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from definitionemb.lexicon.builder import build
from definitionemb.lexicon.db import connect, lock_path, writing
from definitionemb.lexicon.errors import LexiconBusy, LexiconError, SourceError
from definitionemb.lexicon.queries import query
from definitionemb.lexicon.sources import parse_spec

DATA = Path(__file__).parent / "data"
TSV = DATA / "tsv" / "user-definitions.tsv"
KAIKKI = DATA / "kaikki"


def _kaikki_lines() -> list[bytes]:
    f = next(p for p in sorted(KAIKKI.iterdir()) if p.name.endswith(".jsonl"))
    return [ln for ln in f.read_bytes().splitlines() if ln.strip()]


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with connect(db) as con:
        return con.execute(sql).fetchall()


def _good_line(word: str) -> bytes:
    rec = {"word": word, "lang_code": "en", "pos": "noun", "senses": [{"glosses": [f"A {word} thing."]}]}
    return json.dumps(rec).encode()


# --- 3: two writers -------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    with writing(db), pytest.raises(LexiconBusy, match="one writer at a time"):
        build(db, [f"tsv:{TSV}"], progress=False)
    assert build(db, [f"tsv:{TSV}"], progress=False).sources[0].loaded > 0
    assert not lock_path(db).exists()  # the lock goes with its holder


def test_every_writer_takes_the_lock(tmp_path: Path) -> None:
    from definitionemb.lexicon.aligner import align

    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    with writing(db), pytest.raises(LexiconBusy, match="--wait"):
        align(db, DATA / "roberta-bart", corpus="vocab-order", progress=False)
    assert _rows(db, "SELECT count(*) FROM tokenizer") == [(0,)]


def test_concurrent_builds_keep_every_source(tmp_path: Path) -> None:
    """Processes building one --db at once: each waits for the one before (--wait), so no update is
    lost; the lock file is removed by each holder, and a waiter that finds it gone locks the new one."""
    db = tmp_path / "lex.duckdb"
    words = ["alpha", "beta", "gamma", "delta"]
    files = []
    for w in words:
        f = tmp_path / f"{w}.tsv"
        f.write_text(f"{w}\tnoun\tThe letter {w}.\n")
        files.append(f)
    code = "import sys, lexicon.builder as b; b.build(sys.argv[1], [sys.argv[2]], progress=False, wait=120)"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), f"tsv:{f}"]) for f in files]
    assert [p.wait(timeout=240) for p in procs] == [0] * len(words)
    assert sorted(w for (w,) in _rows(db, "SELECT word FROM entry")) == sorted(words)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("lex")) == ["lex.duckdb"]


# --- 6: interrupted builds --------------------------------------------------------------------------------
def test_stale_copies_of_killed_writers_are_removed(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    stale = tmp_path / "lex.duckdb.tmp-999999"
    stale.write_bytes(b"left by kill -9")
    (tmp_path / "lex.duckdb.tmp-999999.wal").write_bytes(b"x")
    build(db, [f"kaikki:{KAIKKI}"], progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lex.duckdb"]


_SLOW_BUILD = textwrap.dedent(
    """
    import sys, time
    from definitionemb.lexicon.sources import kaikki, lines
    kaikki.PARALLEL_MIN_BYTES = 0
    kaikki._RANGE_MIN = 1 << 62
    kaikki.workers = lambda: 2
    lines.BLOCK = 4096
    real = kaikki._work
    def slow(*a):
        time.sleep(60)
        return real(*a)
    kaikki._work = slow
    import definitionemb.lexicon.builder as b
    print("start", flush=True)
    b.build(sys.argv[1], ["kaikki:" + sys.argv[2]], progress=False)
    """
)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ps --ppid and /proc are Linux")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_parent(tmp_path: Path, sig: signal.Signals) -> None:
    src = tmp_path / "big.jsonl"
    src.write_bytes(b"\n".join(_kaikki_lines() * 20) + b"\n")
    db = tmp_path / "lex.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_BUILD, str(db), str(src)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"start"
    deadline = time.monotonic() + 30
    kids: list[int] = []
    while time.monotonic() < deadline and len(kids) < 2:
        time.sleep(0.1)
        kids = _children(proc.pid)
    assert len(kids) >= 2, "the build did not start its workers"
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.2)
    assert not any(_alive(k) for k in kids), "worker processes outlived the build"
    if sig == signal.SIGTERM:  # the handler unwinds: the copy is removed at once
        assert not list(tmp_path.glob("lex.duckdb.tmp-*"))


# --- 7: a changed source -----------------------------------------------------------------------------------
def test_a_changed_source_at_the_same_path_replaces_the_old_one(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    f = tmp_path / "mine.tsv"
    f.write_text("alpha\tnoun\tThe first letter.\nbeta\tnoun\tThe second letter.\n")
    build(db, [f"tsv:{f}"], progress=False)
    f.write_text("alpha\tnoun\tThe first letter, again.\n")
    rep = build(db, [f"tsv:{f}"], progress=False).sources[0]
    assert rep.replaced and not rep.skipped
    assert _rows(db, "SELECT word, gloss FROM entry JOIN sense USING (entry_id)") == [
        ("alpha", "The first letter, again.")
    ]
    assert _rows(db, "SELECT count(*) FROM source") == [(1,)]
    again = build(db, [f"tsv:{f}"], progress=False).sources[0]
    assert again.skipped and not again.replaced


# --- 8: damage, BOM, symlinks --------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.8, 0.95])
def test_a_cut_gz_keeps_every_complete_line(tmp_path: Path, fraction: float) -> None:
    good = [_good_line(f"word{i}") for i in range(10)]
    gz = gzip.compress(b"\n".join(good) + b"\n", compresslevel=1)
    f = tmp_path / "cut.jsonl.gz"
    f.write_bytes(gz[: int(len(gz) * fraction)])
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"kaikki:{f}"], progress=False).sources[0]
    # what decompresses before the cut, up to its last newline, is exactly what must load
    d = __import__("zlib").decompressobj(31)
    prefix = d.decompress(f.read_bytes())
    assert rep.loaded == prefix.count(b"\n") and rep.loaded >= 1
    assert rep.records == rep.loaded + rep.rejected
    assert any("truncated" in r for (r,) in _rows(db, "SELECT reason FROM reject"))


def test_a_big_cut_gz_loses_nothing_before_the_break(tmp_path: Path) -> None:
    good = [_good_line(f"w{i:06d}") for i in range(40_000)]  # several MiB of text
    gz = gzip.compress(b"\n".join(good) + b"\n", compresslevel=1)
    f = tmp_path / "cut.jsonl.gz"
    f.write_bytes(gz[: len(gz) - 100])
    prefix = __import__("zlib").decompressobj(31).decompress(f.read_bytes())
    rep = build(tmp_path / "lex.duckdb", [f"kaikki:{f}"], progress=False).sources[0]
    assert rep.loaded == prefix.count(b"\n") > 39_000


def test_a_bom_is_not_a_reject(tmp_path: Path) -> None:
    for name, body in (
        ("bom.jsonl", b"\xef\xbb\xbf" + _good_line("alpha") + b"\n" + _good_line("beta") + b"\n"),
        ("bom.tsv", "\ufeffalpha\tnoun\tThe first letter.\n".encode()),
    ):
        f = tmp_path / name
        f.write_bytes(body)
        kind = "kaikki" if name.endswith(".jsonl") else "tsv"
        rep = build(tmp_path / f"{name}.duckdb", [f"{kind}:{f}"], progress=False).sources[0]
        assert (rep.rejected, rep.loaded) == (0, rep.records), name
    od = tmp_path / "od.json"
    od.write_bytes(b"\xef\xbb\xbf" + (DATA / "open-dictionary").joinpath(_first_od()).read_bytes())
    rep = build(tmp_path / "od.duckdb", [f"open-dictionary:{od}"], progress=False).sources[0]
    assert rep.rejected == 0 and rep.loaded > 0


def _first_od() -> str:
    root = DATA / "open-dictionary"
    return (
        next(p for p in sorted(root.rglob("*.json")) if p.name != "valid_words.json")
        .relative_to(root)
        .as_posix()
    )


def test_a_symlinked_db_is_updated_in_place_of_its_target(tmp_path: Path) -> None:
    real = tmp_path / "store" / "lex.duckdb"
    real.parent.mkdir()
    build(real, [f"tsv:{TSV}"], progress=False)
    link = tmp_path / "lex.duckdb"
    link.symlink_to(real)
    build(link, [f"kaikki:{KAIKKI}"], progress=False)
    assert link.is_symlink() and link.resolve() == real
    assert _rows(real, "SELECT count(*) FROM source") == [(2,)]


# --- 5: one record aborts the build ------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["kaikki", "kaikki-ignored-field", "open-dictionary"])
def test_deep_nesting_is_one_counted_reject(tmp_path: Path, where: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    db = tmp_path / "lex.duckdb"
    if where.startswith("kaikki"):
        bad = b'{"word": "x", "lang_code": "en", "senses": ' + deep + b"}"
        if where == "kaikki-ignored-field":
            bad = b'{"word": "x", "lang_code": "en", "sounds": ' + deep + b', "senses": []}'
        f = tmp_path / "deep.jsonl"
        f.write_bytes(_good_line("alpha") + b"\n" + bad + b"\n" + _good_line("beta") + b"\n")
        rep = build(db, [f"kaikki:{f}"], progress=False).sources[0]
        assert (rep.records, rep.loaded, rep.rejected) == (3, 2, 1)
    else:
        f = tmp_path / "deep.json"
        good = json.dumps(
            {
                "word": "alpha",
                "etymologies": [
                    {"partsOfSpeech": [{"partOfSpeech": "noun", "senses": [{"sense": "The first letter."}]}]}
                ],
            }
        ).encode()
        f.write_bytes(b'{"alpha": ' + good + b', "x": ' + deep + b"}")
        rep = build(db, [f"open-dictionary:{f}"], progress=False).sources[0]
        assert rep.records == rep.loaded + rep.rejected and rep.rejected >= 1


def test_a_huge_line_is_called_a_huge_line(tmp_path: Path) -> None:
    f = tmp_path / "huge.jsonl"
    f.write_bytes(_good_line("alpha") + b"\n" + b'{"word": "' + b"a" * (30 * 1024 * 1024) + b'"}\n')
    db = tmp_path / "lex.duckdb"
    rep = build(db, [f"kaikki:{f}"], progress=False).sources[0]
    assert (rep.loaded, rep.rejected) == (1, 1)
    assert _rows(db, "SELECT reason FROM reject") == [("line over 10 MiB",)]


# --- 9: messages instead of tracebacks ------------------------------------------------------------------------
def test_source_and_db_paths_get_clear_messages(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="has no path"):
        parse_spec("kaikki:")
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    with pytest.raises(SourceError, match="cannot be opened"):
        build(tmp_path / "lex.duckdb", [f"kaikki:{loop}"], progress=False)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(LexiconError, match="is a file"):
        build(a_file / "lex.duckdb", [f"tsv:{TSV}"], progress=False)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(LexiconError, match="permission denied"):
                build(ro / "lex.duckdb", [f"tsv:{TSV}"], progress=False)
        finally:
            ro.chmod(0o755)


# --- 2: read-only SQL -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH '{other}' AS x (READ_WRITE); DELETE FROM x.sense",
        "ATTACH '{link}' AS x (READ_WRITE); DELETE FROM x.sense",
        "COPY sense TO '{out}'",
        "EXPORT DATABASE '{out}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SELECT 1; DELETE FROM sense",
        "SELECT * FROM read_csv('{other}')",
    ],
)
def test_sql_cannot_change_anything(tmp_path: Path, sql: str) -> None:
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    other = tmp_path / "other.duckdb"
    shutil.copyfile(db, other)
    link = tmp_path / "hard.duckdb"
    os.link(db, link)
    before = {p: p.read_bytes() for p in (db, other)}
    out = tmp_path / "out"
    with pytest.raises(LexiconError):
        query(db, sql.format(other=other, link=link, out=out))
    assert {p: p.read_bytes() for p in (db, other)} == before
    assert not out.exists()
    assert _rows(other, "SELECT count(*) FROM sense") == _rows(db, "SELECT count(*) FROM sense") != [(0,)]


def test_sql_reads_local_files_only_when_asked(tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(LexiconError, match="--allow-files"):
        query(db, f"SELECT * FROM read_csv('{csv}')")
    from definitionemb.core.sandbox import writes_blockable

    if writes_blockable():
        assert query(db, f"SELECT * FROM read_csv('{csv}')", allow_files=True).shape == (1, 2)
    else:  # where the kernel cannot forbid writes, file access is refused rather than risked
        with pytest.raises(LexiconError, match="--allow-files needs"):
            query(db, f"SELECT * FROM read_csv('{csv}')", allow_files=True)
    with pytest.raises(LexiconError, match="COPY"):
        query(db, f"COPY sense TO '{tmp_path / 'o.csv'}'", allow_files=True)
    assert query(db, "SELECT count(*) AS n FROM sense")["n"][0] > 0
    assert isinstance(duckdb.__version__, str)

"""definitionemb.core.fileio: atomic files and folders, and the output rule every export follows (issue 12, item 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import definitionemb.core.fileio as fileio
import numpy as np
import pytest
from definitionemb.index.errors import ExportError
from definitionemb.index.exporter import export
from definitionemb.lexicon.builder import build
from definitionemb.lexicon.errors import OutputError
from index_support import make_lexicon, make_run, roberta_pieces

TSV = Path(__file__).parent / "data" / "tsv" / "user-definitions.tsv"


def test_atomic_file_leaves_the_old_file_on_failure(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    fileio.write_json(f, {"v": 1})
    with pytest.raises(RuntimeError), fileio.atomic_file(f) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(f.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_atomic_writes_use_unique_temporary_names(tmp_path: Path) -> None:
    f = tmp_path / "x.npy"
    with fileio.atomic_file(f) as t1, fileio.atomic_file(f) as t2:
        assert t1 != t2 and t1.parent == t2.parent == tmp_path
        t1.write_bytes(b"1")
        t2.write_bytes(b"2")
    fileio.save_npy(f, np.arange(3))
    assert np.load(f).tolist() == [0, 1, 2]


def test_npy_to_fill_writes_only_when_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileio, "_MMAP_OVER", 0)  # the memory-mapped path
    f = tmp_path / "v.npy"
    with pytest.raises(KeyboardInterrupt), fileio.npy_to_fill(f, (4, 2), np.float32) as arr:
        arr[:] = 1
        raise KeyboardInterrupt
    assert not f.exists() and not list(tmp_path.iterdir())
    with fileio.npy_to_fill(f, (4, 2), np.float32) as arr:
        arr[:] = 2
    assert np.load(f).sum() == 16


def test_atomic_dir_replaces_a_folder_whole(tmp_path: Path) -> None:
    d = tmp_path / "out"
    with fileio.atomic_dir(d, marker={"what": "test"}) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), fileio.atomic_dir(d) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError
    assert sorted(p.name for p in d.iterdir()) == sorted([fileio.MARKER, "a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_output_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    claim = fileio.claim_output
    assert claim(tmp_path / "new", "dir") == tmp_path / "new"
    mine = tmp_path / "mine"
    with fileio.output_dir(mine, what="test export") as tmp:
        (tmp / "m.npy").write_bytes(b"x")
    with pytest.raises(OutputError, match="--force"):
        claim(mine, "dir")
    assert claim(mine, "dir", force=True) == mine
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "precious.txt").write_text("keep")
    for force in (False, True):
        with pytest.raises(OutputError, match="not written by definitionemb"):
            claim(theirs, "dir", force=force)
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    (run / "original_vectors.npy").write_bytes(b"")
    (run / fileio.MARKER).write_text("{}")
    with pytest.raises(OutputError, match="run folder"):
        claim(run, "dir", force=True)
    lex = tmp_path / "lex.duckdb"
    build(lex, [f"tsv:{TSV}"], progress=False)
    with pytest.raises(OutputError, match="DuckDB"):
        claim(lex, "file", force=True)
    with pytest.raises(OutputError, match="current folder"):
        claim(Path("."), "dir", force=True)
    with pytest.raises(OutputError, match="names a file"):
        claim(tmp_path / "m.npy", "dir")
    plain = tmp_path / "x.pt"
    plain.write_bytes(b"old")
    with pytest.raises(OutputError, match="--force"):
        claim(plain, "file")
    with pytest.raises(OutputError, match="not written by definitionemb"):
        claim(plain, "file", force=True)  # a user's file, even at a name the toolkit would use
    with fileio.output_file(tmp_path / "y.pt") as tmp:
        tmp.write_bytes(b"ours")
    assert claim(tmp_path / "y.pt", "file", force=True) == tmp_path / "y.pt"
    (tmp_path / "y.pt").write_bytes(b"edit")  # the user changed it since
    with pytest.raises(OutputError, match="changed since"):
        claim(tmp_path / "y.pt", "file", force=True)
    with pytest.raises(OutputError, match="is a folder"):
        claim(mine, "file", force=True)
    blocker = tmp_path / "f"
    blocker.write_text("")
    with pytest.raises(OutputError, match="is a file"), fileio.output_file(blocker / "x.pt"):
        pass


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    pieces = roberta_pieces(300)
    db = tmp_path_factory.mktemp("lex") / "lex.duckdb"
    make_lexicon(db, pieces)
    rng = np.random.default_rng(0)
    original = rng.standard_normal((len(pieces), 8)).astype(np.float32)
    covered = rng.random(len(pieces)) < 0.3
    covered[:4] = False
    return make_run(tmp_path_factory.mktemp("runs") / "r", original, covered, db=db)


def test_exports_never_destroy_what_is_there(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    for fmt in ("npy", "hf"):
        for force in (False, True):
            with pytest.raises(OutputError):
                export(run, fmt, "covered", victim, force=force)
    assert (victim / "thesis.tex").read_text() == "years of work"
    before = sorted(p.name for p in run.path.rglob("*"))
    for fmt in ("npy", "hf", "safetensors", "pt"):
        with pytest.raises((OutputError, ExportError)):
            export(run, fmt, "covered", run.path, force=True)
    assert sorted(p.name for p in run.path.rglob("*")) == before


def test_force_replaces_an_earlier_export(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "e"
    export(run, "npy", "covered", out)
    with pytest.raises(OutputError, match="--force"):
        export(run, "npy", "rare", out)
    export(run, "npy", "covered", out, force=True)
    assert np.load(out / "mask.npy").sum() == int(np.asarray(run.covered_mask()).sum())
    st = tmp_path / "m.safetensors"
    export(run, "safetensors", "covered", st)
    with pytest.raises(OutputError, match="--force"):
        export(run, "safetensors", "covered", st)
    export(run, "safetensors", "covered", st, force=True)


def test_a_file_shaped_name_gets_a_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "m.npy"
    res = export(run, "npy", "covered", out)
    assert out.is_file() and (tmp_path / "m.mask.npy").is_file() and res.out == str(out)
    matrix = np.load(out)
    assert matrix.shape == (res.vocab_size, res.dim)
    assert np.load(tmp_path / "m.mask.npy").sum() == res.rows_replaced
    with pytest.raises(OutputError, match="names a file"):
        export(run, "hf", "covered", tmp_path / "model.safetensors")


def test_parquet_export_follows_the_rule(tmp_path: Path) -> None:
    import definitionemb.lexicon.queries as q

    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    out = tmp_path / "pq"
    q.export_parquet(db, out)
    with pytest.raises(OutputError, match="--force"):
        q.export_parquet(db, out)
    assert "sense" in q.export_parquet(db, out, force=True)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="permission denied"):
                q.export_parquet(db, ro / "pq")
        finally:
            ro.chmod(0o755)


def test_leftovers_of_killed_writers_are_removed_on_the_next_write(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # that process has exited
    f = tmp_path / "token_vectors.npy"
    orphan_file = tmp_path / f".{f.name}.{fileio._HOST}-{pid}.abcd1234.tmp"
    orphan_file.write_bytes(b"half an array")
    orphan_dir = tmp_path / f".{f.name}.{fileio._HOST}-{pid}.efgh5678.tmp"
    orphan_dir.mkdir()
    live = tmp_path / f".{f.name}.{fileio._HOST}-{os.getpid()}.live0000.tmp"  # a writer still running
    live.write_bytes(b"in progress")
    other_host = tmp_path / f".{f.name}.elsewhere-{pid}.zzzz0000.tmp"
    other_host.write_bytes(b"not ours to judge")
    fileio.save_npy(f, np.zeros(3))
    assert not orphan_file.exists() and not orphan_dir.exists()
    assert live.exists() and other_host.exists() and np.load(f).shape == (3,)

"""Every `defemb` command against hostile input: exit status 1 or 2, one `Error:` line, no traceback.

Also the bounds of issue 12: k larger than the index is lowered with a warning; a vocabulary with a huge,
string or float id is refused before anything is allocated.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from definitionemb.index.query import KClamped, neighbors, reverse_vectors
from definitionemb.index.table import neighbor_frame
from definitionemb.lexicon.builder import build
from definitionemb.lexicon.errors import TokenizerError
from definitionemb.lexicon.tokenizers import load_vocab
from index_support import make_lexicon, make_run, roberta_pieces

from definitionemb import index
from definitionemb.cli import cli

DATA = Path(__file__).parent / "data"
TSV = DATA / "tsv" / "user-definitions.tsv"
ROBERTA = DATA / "roberta-bart"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    pieces = roberta_pieces(300)
    lex = root / "lex.duckdb"
    make_lexicon(lex, pieces)
    rng = np.random.default_rng(0)
    original = rng.standard_normal((len(pieces), 8)).astype(np.float32)
    covered = rng.random(len(pieces)) < 0.5
    covered[:4] = False
    run = make_run(root / "run", original, covered, db=lex).path
    index.build(run, kind="tokens", factory="Flat", metric="cosine", db=lex)
    trunc = root / "trunc-run"
    shutil.copytree(run, trunc)
    for name in ("token_vectors.npy", "original_vectors.npy"):
        data = (trunc / name).read_bytes()
        (trunc / name).write_bytes(data[: len(data) // 2])
    w: dict[str, Path] = {"root": root, "lex": lex, "run": run, "trunc": trunc}
    w["binary"] = root / "binary.bin"
    w["binary"].write_bytes(bytes(range(256)) * 64)
    w["loop"] = root / "loop"
    w["loop"].symlink_to(w["loop"])
    w["a_file"] = root / "a_file"
    w["a_file"].write_text("x")
    w["victim"] = root / "victim"
    w["victim"].mkdir()
    (w["victim"] / "notes.txt").write_text("mine")
    for name, vocab in (
        ("str-id", {"a": 0, "b": "1"}),
        ("float-id", {"a": 0, "b": 1.5}),
        ("huge-id", {"a": 0, "b": 300_000_000}),
    ):
        d = root / name
        d.mkdir()
        (d / "vocab.json").write_text(json.dumps(vocab))
        (d / "merges.txt").write_text("#version: 0.2\n")
        w[name] = d
    w["latin1"] = root / "latin1"
    w["latin1"].mkdir()
    (w["latin1"] / "vocab.txt").write_bytes("[PAD]\ncaf\xe9\n".encode("latin-1"))
    w["strings"] = root / "strings.npy"
    np.save(w["strings"], np.array([["a", "b"], ["c", "d"]]))
    w["ones"] = root / "ones.npy"
    np.save(w["ones"], np.ones((3, 4), dtype=np.float32))
    w["ro"] = root / "ro"
    w["ro"].mkdir()
    w["ro"].chmod(0o555)
    return w


def _cases(w: dict[str, Path]) -> list[list[str]]:
    lex, run, trunc, b, r = (str(w[k]) for k in ("lex", "run", "trunc", "binary", "root"))
    cases = [
        ["lexicon", "build", "--db", f"{r}/new.duckdb", "--source", "kaikki:"],
        ["lexicon", "build", "--db", f"{r}/new.duckdb", "--source", f"kaikki:{w['loop']}"],
        ["lexicon", "build", "--db", f"{r}/new.duckdb", "--source", f"kaikki:{b}"],
        ["lexicon", "build", "--db", f"{w['a_file']}/lex.duckdb", "--source", f"tsv:{TSV}"],
        ["lexicon", "build", "--db", b, "--source", f"tsv:{TSV}"],
        ["lexicon", "build", "--db", str(w["victim"]), "--source", f"tsv:{TSV}"],
        ["lexicon", "align", "--db", lex, "--tokenizer", str(w["str-id"])],
        ["lexicon", "align", "--db", lex, "--tokenizer", str(w["float-id"])],
        ["lexicon", "align", "--db", lex, "--tokenizer", str(w["huge-id"])],
        ["lexicon", "align", "--db", lex, "--tokenizer", str(w["latin1"])],
        ["lexicon", "coverage", "--db", b, "--tokenizer", str(ROBERTA)],
        ["lexicon", "definitions", "--db", lex, "--tokenizer", str(w["latin1"]), "cat"],
        ["lexicon", "export", "--db", lex, "--parquet", str(w["victim"])],
        ["lexicon", "export", "--db", lex, "--parquet", "."],
        ["sql", "--db", lex, f"ATTACH '{lex}' AS x (READ_WRITE); DELETE FROM x.sense"],
        ["sql", "--db", lex, f"COPY sense TO '{r}/x.csv'"],
        ["sql", "--db", lex, "INSTALL httpfs"],
        ["sql", "--db", b, "SELECT 1"],
        ["embed", "generate", "--db", lex, "--run", trunc],
        ["embed", "train", "--db", lex, "--model", str(ROBERTA), "--run", str(w["victim"])],
        ["embed", "train", "--db", lex, "--model", str(ROBERTA), "--run", str(w["a_file"])],
        ["index", "build", "--run", trunc],
        ["index", "neighbors", "--run", trunc, "Ġthe"],
        ["index", "neighbors", "--run", run, "no-such-token-anywhere"],
        ["index", "reverse", "--run", run, " "],
        ["export", "--run", run, "--format", "npy", "--rows", "covered", "--out", "."],
        ["export", "--run", run, "--format", "npy", "--rows", "covered", "--out", run],
        ["export", "--run", run, "--format", "hf", "--rows", "covered", "--out", run, "--force"],
        [
            "export",
            "--run",
            run,
            "--format",
            "npy",
            "--rows",
            "covered",
            "--out",
            str(w["victim"]),
            "--force",
        ],
        ["export", "--run", run, "--format", "pt", "--rows", "covered", "--out", lex, "--force"],
        ["export", "--run", run, "--format", "npy", "--rows", f"task:{b}", "--out", f"{r}/t-export"],
        ["export", "--run", trunc, "--format", "npy", "--rows", "covered", "--out", f"{r}/tr-export"],
        ["eval", "isotropy", "--matrix", str(w["strings"])],
        ["eval", "isotropy", "--matrix", str(w["ones"])],
        ["eval", "isotropy", "--matrix", b],
        ["eval", "wordsim", "--run", run, "--dataset", b],
        ["eval", "swap", "--run", run, "--out", str(w["victim"]), "--force"],
        ["eval", "report", "--run", trunc],
        ["run", "--config", b],
    ]
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = str(w["ro"])
        cases += [
            ["lexicon", "build", "--db", f"{ro}/lex.duckdb", "--source", f"tsv:{TSV}"],
            ["lexicon", "export", "--db", lex, "--parquet", f"{ro}/pq"],
            ["export", "--run", run, "--format", "safetensors", "--rows", "covered", "--out", f"{ro}/m.st"],
        ]
    return cases


def test_every_command_fails_cleanly_on_hostile_input(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(world["root"])
    monkeypatch.delenv("DEFEMB_DEBUG", raising=False)
    before_run = {p: p.read_bytes() for p in world["run"].rglob("*") if p.is_file()}
    lex_bytes = world["lex"].read_bytes()
    bad = []
    for args in _cases(world):
        res = CliRunner().invoke(cli, args)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("Warning:")]
        clean = (
            res.exit_code in (1, 2)
            and isinstance(res.exception, SystemExit)
            and "Traceback" not in res.output
            and bool(lines)
            and lines[-1].startswith("Error: ")
            and sum(ln.startswith("Error") for ln in lines) == 1
        )
        if args[:2] == ["eval", "isotropy"] and "ones" in args[-1]:
            clean = clean and "NaN" not in res.stderr  # a 3x4 matrix of ones holds no NaN
        if not clean:
            bad.append((args, res.exit_code, repr(res.exception), res.output[-400:]))
    assert not bad, "\n\n".join(map(str, bad))
    # and nothing was destroyed on the way
    assert (world["victim"] / "notes.txt").read_text() == "mine"
    # (a command may add its own derived files to the run, e.g. reverse-dictionary indexes; it may not
    # remove or change what was there)
    assert {p: p.read_bytes() for p in before_run if p.is_file()} == before_run
    assert world["lex"].read_bytes() == lex_bytes


def test_k_beyond_the_index_is_lowered_with_a_warning(world: dict[str, Path]) -> None:
    ntotal = int(np.asarray(index.open_index(world["run"], "generated").ids).shape[0])
    with pytest.warns(KClamped):
        frame = neighbors(world["run"], ["Ġthe"], k=100_000_000, db=world["lex"])
    assert frame.height == ntotal - 1
    assert (frame["generated_id"] >= 0).all() and (frame["generated_score"] > -1e30).all()
    x = np.asarray(
        world["run"].joinpath("token_vectors.npy").exists() and np.load(world["run"] / "token_vectors.npy")
    )
    with pytest.warns(KClamped):
        hits = reverse_vectors(world["run"], x[:1], k=10**9, db=world["lex"])
    assert hits.height == int(index.open_index(world["run"], "original").ids.shape[0])
    res = CliRunner().invoke(
        cli, ["index", "neighbors", "--run", str(world["run"]), "Ġthe", "-k", "100000000", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert "Warning: k=100000000" in res.stderr and len(json.loads(res.stdout)) == ntotal - 1
    with pytest.warns(KClamped):
        table = neighbor_frame(world["run"], "generated", k=10**9, progress=False)
    assert table.height == ntotal * (ntotal - 1)


@pytest.mark.parametrize("bad", [{"b": 300_000_000}, {"b": "1"}, {"b": 1.0}, {"b": True}, {"b": -1}])
def test_vocab_ids_are_checked_before_allocation(tmp_path: Path, bad: dict[str, object]) -> None:
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, **bad}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(TokenizerError, match="id|contiguous"):
        load_vocab(tmp_path)


def test_a_lexicon_is_unchanged_by_a_failed_build(world: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "lex.duckdb"
    build(db, [f"tsv:{TSV}"], progress=False)
    before = db.read_bytes()
    res = CliRunner().invoke(
        cli, ["lexicon", "build", "--db", str(db), "--source", f"kaikki:{world['loop']}"]
    )
    assert res.exit_code == 1 and db.read_bytes() == before


def test_training_never_writes_among_foreign_files(world: dict[str, Path]) -> None:
    res = CliRunner().invoke(
        cli,
        ["embed", "train", "--db", str(world["lex"]), "--model", str(ROBERTA), "--run", str(world["victim"])],
    )
    assert res.exit_code == 1 and "holds other files and no run" in res.stderr, res.stderr
    assert sorted(p.name for p in world["victim"].iterdir()) == ["notes.txt"]


# --- issue 24: nothing lost, nothing silently wrong, a work folder that always recovers ---------------------
# Every case: the exit code, one `Error:` line and no traceback, and the checksums of the run, the
# lexicon and the user's files before and after.


def _sums(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots` (files or folders), by path."""
    out: dict[str, str] = {}
    for root in roots:
        for f in [root] if root.is_file() else sorted(root.rglob("*")):
            if f.is_file() and not f.is_symlink():
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _fails_cleanly(res: Any, code: int = 1, says: str = "") -> str:
    """The command failed with `code`, one `Error:` line (the last), no traceback; returns that line."""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("Warning:")]
    assert res.exit_code == code, (res.exit_code, res.output)
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output, res.output
    assert lines and lines[-1].startswith("Error: ") and sum(ln.startswith("Error") for ln in lines) == 1, (
        lines
    )
    assert says in lines[-1], (says, lines[-1])
    return lines[-1]


def _cli(*args: object, **kw: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


@contextlib.contextmanager
def _tmpfs(where: Path, size: str = "5m", read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs at `where` (a full disk, or with `read_only` an unwritable one); skipped where this
    process may not mount one (not root, or a container without the capability)."""
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True
        )
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs to fill: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({done.stderr.strip() or done.returncode}); needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture()
def clean_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEFEMB_DEBUG", raising=False)
    return tmp_path


def test_force_never_replaces_a_folder_by_its_file_names(world: dict[str, Path], clean_cwd: Path) -> None:
    """Case 1: a folder holding `export.json` (or any marker name) and the user's photos."""
    run = world["run"]
    v = clean_cwd / "v"
    (v / "photos").mkdir(parents=True)
    (v / "export.json").write_text("{}")
    (v / "photos" / "a.jpg").write_text("x")
    (v / "definitionemb-output.json").write_text('{"written_by": "definitionemb", "output_id": "x"}')
    before = _sums(v, run, world["lex"])
    _fails_cleanly(_cli("export", "--run", run, "--format", "npy", "--out", v, "--force"), says=str(v))
    assert _sums(v, run, world["lex"]) == before
    # an export the toolkit did write, with one file of the user's added since: refused too
    out = clean_cwd / "e"
    assert _cli("export", "--run", run, "--format", "npy", "--rows", "covered", "--out", out).exit_code == 0
    (out / "notes.txt").write_text("mine")
    before = _sums(out)
    _fails_cleanly(_cli("export", "--run", run, "--format", "npy", "--out", out, "--force"), says="notes.txt")
    assert _sums(out) == before
    # the marker's id must be the one its own metadata holds
    (out / "notes.txt").unlink()
    meta = json.loads((out / "export.json").read_text())
    (out / "export.json").write_text(json.dumps({**meta, "output_id": "0" * 32}))
    before = _sums(out)
    _fails_cleanly(_cli("export", "--run", run, "--format", "npy", "--out", out, "--force"), says="output id")
    assert _sums(out) == before
    # and with everything as written, --force replaces it
    (out / "export.json").write_text(json.dumps(meta, indent=2))
    assert _cli("export", "--run", run, "--format", "npy", "--out", out, "--force").exit_code == 0


def test_force_never_writes_inside_a_run_or_over_a_lexicon(world: dict[str, Path], clean_cwd: Path) -> None:
    """Case 2: `--out RUN/original_vectors.npy --force`, and the like."""
    run, lex = world["run"], world["lex"]
    before = _sums(run, lex)
    for fmt, out in (
        ("npy", run / "original_vectors.npy"),
        ("safetensors", run / "index" / "new.safetensors"),
        ("pt", run / "token_covered.npy"),
        ("npy", run / "exports"),
        ("hf", run / "model-x"),
        ("npy", Path(f"{lex}.wal")),
    ):
        _fails_cleanly(_cli("export", "--run", run, "--format", fmt, "--out", out, "--force"))
    _fails_cleanly(_cli("eval", "swap", "--run", run, "--out", run / "index", "--force"))
    assert _sums(run, lex) == before and not (run / "exports").exists()


def test_sql_cannot_write_files_even_with_allow_files(world: dict[str, Path], clean_cwd: Path) -> None:
    """Case 3: EXPLAIN passes a statement filter; the query must still be unable to write."""
    from definitionemb.core.sandbox import writes_blockable

    victim = clean_cwd / "victim.csv"
    victim.write_text("word,note\nprecious,1\n")
    before = _sums(victim, world["lex"])
    for sql in (
        f"EXPLAIN ANALYZE COPY (SELECT 'x') TO '{victim}' (FORMAT csv)",
        f"EXPLAIN ANALYZE COPY (SELECT 'x') TO '{clean_cwd / 'new.csv'}' (FORMAT csv)",
        f"EXPLAIN ANALYZE COPY sense TO '{clean_cwd / 'new.parquet'}' (FORMAT parquet)",
    ):
        for flags in ([], ["--allow-files"]):
            _fails_cleanly(_cli("sql", "--db", world["lex"], *flags, sql))
    assert _sums(victim, world["lex"]) == before and sorted(os.listdir(clean_cwd)) == ["victim.csv"]
    # reading files is what --allow-files is for
    res = _cli("sql", "--db", world["lex"], "--allow-files", "--json", f"SELECT * FROM read_csv('{victim}')")
    if writes_blockable():
        assert res.exit_code == 0 and "precious" in res.stdout, res.output
    else:  # where the kernel cannot forbid writes, reading files is refused rather than risked
        _fails_cleanly(res, says="--allow-files")


def test_the_no_writes_guard_forbids_every_write_but_its_scratch(tmp_path: Path) -> None:
    """The guard under `defemb sql` (core.sandbox.without_writes), for any later caller: Python's own
    open() is refused too, reading is not, the scratch folder is writable, and the caller is not bound."""
    from definitionemb.core.sandbox import SandboxUnavailable, without_writes, writes_blockable

    mine = tmp_path / "mine.txt"
    mine.write_text("keep")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    if not writes_blockable():
        with pytest.raises(SandboxUnavailable):
            without_writes(mine.read_text)
        pytest.skip("this kernel cannot forbid writes (no Landlock); --allow-files is refused here")
    assert without_writes(mine.read_text) == "keep"
    for attempt in (
        lambda: mine.write_text("gone"),
        lambda: (tmp_path / "new.txt").write_text("x"),
        lambda: mine.unlink(),
        lambda: os.truncate(mine, 0),
        lambda: os.rename(mine, tmp_path / "moved.txt"),
    ):
        with pytest.raises(PermissionError):
            without_writes(attempt)
    without_writes(lambda: (scratch / "spill.tmp").write_text("ok"), scratch=str(scratch))
    assert mine.read_text() == "keep" and sorted(os.listdir(tmp_path)) == ["mine.txt", "scratch"]
    assert (scratch / "spill.tmp").read_text() == "ok"
    (tmp_path / "after.txt").write_text("the calling thread is not restricted")


def _work_folder(root: Path) -> tuple[Path, Path, Path]:
    """A work folder as `defemb run` leaves it: `<work>/lexicon.duckdb` and `<work>/runs/<id>` bound to it."""
    pieces = roberta_pieces(300)
    work = root / "work"
    lex = work / "lexicon.duckdb"
    work.mkdir(parents=True)
    make_lexicon(lex, pieces)
    rng = np.random.default_rng(1)
    covered = rng.random(len(pieces)) < 0.5
    covered[:4] = False
    original = rng.standard_normal((len(pieces), 8)).astype(np.float32)
    run = make_run(work / "runs" / "r", original, covered, db=lex).path
    index.build(run, kind="tokens", factory="Flat", metric="cosine", db=lex)
    return work, lex, run


def test_a_copied_work_folder_uses_its_own_lexicon(clean_cwd: Path) -> None:
    """Case 4: manifests hold paths relative to the run, so a copy never writes into the original."""
    work, lex, run = _work_folder(clean_cwd)
    assert json.loads((run / "manifest.json").read_text())["lexicon_db"] == "../../lexicon.duckdb"
    from definitionemb.embedder.rundir import RunDir

    rd = RunDir.open(run)  # a model in the work folder is recorded relative too, one elsewhere absolute
    assert rd.portable(work / "models" / "m") == "../../models/m"
    assert rd.local("../../models/m") == str(work / "models" / "m")
    assert rd.portable(clean_cwd / "m") == str(clean_cwd / "m") and rd.local("roberta-base") == "roberta-base"
    copy = clean_cwd / "workB"
    shutil.copytree(work, copy, symlinks=True)
    before = _sums(work)
    res = _cli("index", "neighbors-table", "--run", copy / "runs" / "r", "-k", "3")
    assert res.exit_code == 0, res.output
    assert _sums(work) == before  # the original work folder, its lexicon included, is untouched
    assert _sums(copy / "lexicon.duckdb") != _sums(lex)  # the copy's own lexicon took the table


def test_the_run_is_bound_to_its_tokenizer_by_vocabulary_hash(
    world: dict[str, Path], clean_cwd: Path
) -> None:
    """Case 5: the same sources, the run's tokenizer aligned under another row id, or not at all."""
    from definitionemb.lexicon.db import writing

    run = world["run"]
    other_id = clean_cwd / "other-id.duckdb"
    make_lexicon(other_id, roberta_pieces(300), tokenizer_id=2)  # same sources, the tokenizer is row 2
    res = _cli("index", "neighbors", "--run", run, "--db", other_id, "Ġthe", "-k", "3", "--json")
    want = _cli("index", "neighbors", "--run", run, "Ġthe", "-k", "3", "--json")
    assert res.exit_code == 0 and want.exit_code == 0, res.output + want.output
    assert json.loads(res.stdout) == json.loads(want.stdout)
    # a lexicon from the same sources whose row 1 is another tokenizer: refused, not answered
    other_tok = clean_cwd / "other-tok.duckdb"
    make_lexicon(other_tok, roberta_pieces(300))
    with writing(other_tok) as con:
        con.execute("UPDATE tokenizer SET sha256 = 'another-vocabulary'")
    before = _sums(run, other_tok)
    for args in (
        ["index", "neighbors", "--run", run, "--db", other_tok, "Ġthe"],
        ["export", "--run", run, "--db", other_tok, "--format", "npy", "--rows", "rare", "--out", "o"],
    ):
        _fails_cleanly(_cli(*args), says="not aligned")
    assert _sums(run, other_tok) == before and not (clean_cwd / "o").exists()


def test_a_plain_export_takes_the_runs_chosen_rows(clean_cwd: Path) -> None:
    """Case 6: a choice made with `--rows rare` is what a plain export writes; other rows say so."""
    from definitionemb.index.policy import record_choice

    _, _, run = _work_folder(clean_cwd)
    record_choice(run, "rare", "mix:0.35", "test: chosen on development parts", "defemb eval knobs")
    assert _cli("export", "--run", run, "--format", "npy", "--out", "plain").exit_code == 0
    meta = json.loads((clean_cwd / "plain" / "export.json").read_text())
    assert (meta["rows"], meta["how"]) == ("rare", "mix:0.35") and "run choice" in meta["policy_source"]
    res = _cli("export", "--run", run, "--format", "npy", "--rows", "covered", "--out", "cov")
    assert res.exit_code == 0 and "Warning: the run's own choice (--rows rare --how mix:0.35)" in res.stderr


def test_a_changed_row_anywhere_makes_indexes_and_choices_stale(clean_cwd: Path) -> None:
    """Case 7: NaN written into one row far from any sampled slice, mtime set back."""
    from definitionemb.index.policy import record_choice

    _, lex, run = _work_folder(clean_cwd)
    record_choice(run, "rare", "mix:0.35", "test", "defemb eval knobs")
    tv = run / "token_vectors.npy"
    st = tv.stat()
    arr = np.load(tv)
    arr[arr.shape[0] // 2 + 7] = np.nan
    with open(tv, "r+b") as fh:  # in place, same size
        fh.seek(st.st_size - arr.nbytes)
        fh.write(arr.tobytes())
    os.utime(tv, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = _sums(run, lex)
    _fails_cleanly(_cli("index", "neighbors", "--run", run, "Ġthe"), says="stale")
    res = _cli("export", "--run", run, "--format", "npy", "--out", "x")
    assert "chosen on other vectors" in res.stderr  # the choice is not silently kept
    _fails_cleanly(res, says="NaN")  # and the rows it would export are refused
    assert _sums(run, lex) == before


def test_a_manifest_copied_from_another_run_is_refused(world: dict[str, Path], clean_cwd: Path) -> None:
    """Case 8: exports would carry the other run's provenance."""
    _, lex, run = _work_folder(clean_cwd)
    shutil.copy(world["run"] / "manifest.json", run / "manifest.json")
    before = _sums(run, lex)
    for args in (
        ["index", "neighbors", "--run", run, "Ġthe"],
        ["export", "--run", run, "--format", "npy", "--out", "x"],
    ):
        _fails_cleanly(_cli(*args), says="belongs to another run")
    assert _sums(run, lex) == before and not (clean_cwd / "x").exists()


def test_a_second_run_on_a_work_folder_is_refused_naming_a_real_option(clean_cwd: Path) -> None:
    """Case 10: the work folder's lock; the message names --wait, which `defemb run` accepts."""
    from definitionemb.core.errors import DefembError
    from definitionemb.core.locks import exclusive

    from definitionemb.pipeline import LOCK

    work = clean_cwd / "work"
    work.mkdir()
    (work / "mine.txt").write_text("x")
    before = _sums(work)
    with exclusive(work / LOCK, 0, DefembError):
        line = _fails_cleanly(_cli("run", "--work", work), says="--wait")
        assert "another `defemb run`" in line
        _fails_cleanly(_cli("run", "--work", work, "--wait", "0.3"), says="--wait")
    assert {k: v for k, v in _sums(work).items() if not k.endswith(LOCK)} == before


@pytest.fixture()
def big_run(clean_cwd: Path, tiny_roberta_dir: Path) -> tuple[Path, Path]:
    """A run over the whole RoBERTa vocabulary of the tiny model (a 6.4 MB matrix), exportable as hf."""
    from transformers import AutoModelForMaskedLM

    pieces = roberta_pieces()
    lex = clean_cwd / "lex.duckdb"
    make_lexicon(lex, pieces)
    emb = AutoModelForMaskedLM.from_pretrained(str(tiny_roberta_dir)).get_input_embeddings().weight
    original = emb.detach().numpy().astype(np.float32)
    covered = np.zeros(len(pieces), dtype=bool)
    covered[100:5000] = True
    run = make_run(clean_cwd / "run", original, covered, db=lex, model=str(tiny_roberta_dir)).path
    return run, lex


def test_a_full_disk_is_one_error_and_leaves_nothing(big_run: tuple[Path, Path], clean_cwd: Path) -> None:
    """Case 11: every export format onto a full tmpfs; no partial file (npy's mask) is left behind, so
    the same command succeeds once there is room."""
    run, lex = big_run
    with _tmpfs(clean_cwd / "small", size="10m") as disk:
        (disk / "mine.txt").write_text("keep")
        (disk / "filler").write_bytes(b"\0" * (6 << 20))  # 4 MB left: less than one 6.4 MB matrix
        before = _sums(run, lex, disk)
        for fmt, name in (("hf", "m"), ("safetensors", "m.safetensors"), ("pt", "m.pt"), ("npy", "m.npy")):
            line = _fails_cleanly(_cli("export", "--run", run, "--format", fmt, "--out", disk / name))
            assert str(disk / name) in line and "disk is full" in line and ".tmp" not in line, line
        assert _sums(run, lex, disk) == before and sorted(os.listdir(disk)) == ["filler", "mine.txt"]
        (disk / "filler").unlink()
        gc.collect()  # in-process runs: a failed writer's deleted temporary file is freed once collected
        res = _cli("export", "--run", run, "--format", "npy", "--rows", "covered", "--out", disk / "m.npy")
        assert res.exit_code == 0, res.output
        assert {"m.npy", "m.mask.npy", "mine.txt"} <= set(os.listdir(disk))


def test_an_unwritable_place_is_named_as_the_user_wrote_it(world: dict[str, Path], clean_cwd: Path) -> None:
    """Case 12: a read-only file system (root can write anywhere else); the message names --out."""
    with _tmpfs(clean_cwd / "ro", size="1m", read_only=True) as ro:
        for fmt, name in (("safetensors", "m.safetensors"), ("npy", "m"), ("pt", "sub/m.pt")):
            line = _fails_cleanly(_cli("export", "--run", world["run"], "--format", fmt, "--out", ro / name))
            assert str(ro / name) in line and ".tmp" not in line, line
        _fails_cleanly(_cli("lexicon", "export", "--db", world["lex"], "--parquet", ro / "pq"), says=str(ro))


def test_outputs_honour_the_umask(world: dict[str, Path], clean_cwd: Path) -> None:
    """Case 13: files 0666 and folders 0777 less the umask, as open() and mkdir() give them."""
    old = os.umask(0o022)
    try:
        assert (
            _cli(
                "export", "--run", world["run"], "--format", "npy", "--rows", "covered", "--out", "d"
            ).exit_code
            == 0
        )
        assert (
            _cli("export", "--run", world["run"], "--format", "safetensors", "--out", "m.st").exit_code == 0
        )
        assert _cli("lexicon", "export", "--db", world["lex"], "--parquet", "pq").exit_code == 0
        os.umask(0o002)
        assert _cli("export", "--run", world["run"], "--format", "pt", "--out", "m.pt").exit_code == 0
    finally:
        os.umask(old)
    mode = {p.name: p.stat().st_mode & 0o777 for p in (clean_cwd / "d", clean_cwd / "pq")}
    mode.update({p.name: p.stat().st_mode & 0o777 for p in (clean_cwd / "d").iterdir()})
    mode.update({p.name: p.stat().st_mode & 0o777 for p in (clean_cwd / "pq").iterdir()})
    mode["m.st"] = (clean_cwd / "m.st").stat().st_mode & 0o777
    assert mode.pop("d") == mode.pop("pq") == 0o755
    assert mode.pop("m.pt", None) is None and (clean_cwd / "m.pt").stat().st_mode & 0o777 == 0o664
    assert set(mode.values()) == {0o644}, mode


def test_reverse_requests_are_bounded(world: dict[str, Path], clean_cwd: Path) -> None:
    """Case 14: 300 queries × k=10000 and a 5 MB definition are refused before anything is built."""
    queries = clean_cwd / "q.txt"
    queries.write_text("a small domesticated feline\n" * 300)
    before = _sums(world["run"], world["lex"], queries)
    run = world["run"]
    line = _fails_cleanly(
        _cli("reverse", "--run", run, "--input", queries, "-k", "10000", "--out", "a.parquet")
    )
    assert "3,000,000 answer rows" in line and str(queries) in line
    huge = clean_cwd / "huge.txt"
    huge.write_text("a cat " * 900_000 + "\n")
    _fails_cleanly(
        _cli("reverse", "--run", run, "--input", huge, "--out", "b.parquet"), says="characters long"
    )
    _fails_cleanly(_cli("reverse", "--run", run, "a feline " * 200), says="characters long")
    assert _sums(world["run"], world["lex"], queries) == before
    assert sorted(os.listdir(clean_cwd)) == ["huge.txt", "q.txt"]


def _pipeline_config(path: Path, work: Path, data_dir: Path, model: Path, steps: int) -> Path:
    path.write_text(f"""
[run]
work = "{work}"
seed = 3

[lexicon]
sources = ["open-dictionary:{data_dir / "open-dictionary" / "api"}"]

[model]
name = "{model}"

[embedder]
preset = "quick"
topk = 2
steps = {steps}
batch_tokens = 256
device = "cpu"
eval_every = 100000
ckpt_every = 2
ridge_examples = 50
""")
    return path


@pytest.mark.slow
def test_an_interrupted_run_resumes_and_a_changed_config_retrains(
    clean_cwd: Path, data_dir: Path, tiny_bert_dir: Path
) -> None:
    """Case 9: `defemb run` killed (SIGTERM) after its first training checkpoint; then `--from train`
    and a changed [embedder] config, each of which used to be refused for the run it had left."""
    import signal
    import sys
    import time

    work = clean_cwd / "work"
    cfg = _pipeline_config(clean_cwd / "p.toml", work, data_dir, tiny_bert_dir, steps=40)
    proc = subprocess.Popen(
        [sys.executable, "-m", "definitionemb", "run", "--config", str(cfg), "--until", "train"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while not list(work.glob("runs/*/regressor/LATEST")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint in 10 minutes"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, f"the run finished before it could be interrupted:\n{err[-2000:]}"
    (run,) = work.glob("runs/*")
    state = json.loads((work / "pipeline.json").read_text())
    assert state["train"].get("started") and not state["train"].get("finished")
    lexicon_before = _sums(work / "lexicon.duckdb")

    res = _cli("run", "--config", cfg, "--until", "train", "--json")
    assert res.exit_code == 0, res.output
    assert "train: resuming the interrupted training" in res.stderr
    stages = json.loads(res.stdout)["stages"]
    assert (stages["lexicon"]["status"], stages["align"]["status"], stages["train"]["status"]) == (
        "reused",
        "reused",
        "ran",
    )
    assert stages["train"]["result"]["steps"] == 40 and _sums(work / "lexicon.duckdb") == lexicon_before

    res = _cli("run", "--config", cfg, "--from", "train", "--until", "train")
    assert res.exit_code == 0 and "train: replacing the run" in res.stderr, res.output
    cfg = _pipeline_config(cfg, work, data_dir, tiny_bert_dir, steps=6)
    res = _cli("run", "--config", cfg, "--until", "train", "--json")
    assert res.exit_code == 0 and "its settings changed" in res.stderr, res.output
    assert json.loads(res.stdout)["stages"]["train"]["result"]["steps"] == 6
    assert json.loads((run / "manifest.json").read_text())["config"]["steps"] == 6
    # a run folder the pipeline did not make is never replaced
    before = _sums(work / "runs")
    (work / "pipeline.json").write_text(json.dumps({k: v for k, v in state.items() if k != "train"}))
    cfg = _pipeline_config(cfg, work, data_dir, tiny_bert_dir, steps=8)
    _fails_cleanly(_cli("run", "--config", cfg, "--until", "train"), says="did not train")
    assert _sums(work / "runs") == before


@pytest.mark.slow
def test_reverse_answers_onto_a_full_disk(clean_cwd: Path, tiny_bert_dir: Path) -> None:
    """Case 11 for `reverse --input … --out`: one Error: line naming --out, nothing left on the disk."""
    from test_reverse_dictionary import _trained_run

    run, db = _trained_run(clean_cwd / "w", tiny_bert_dir)
    queries = clean_cwd / "q.txt"
    queries.write_text("a small domesticated animal\nthe edge of a river\n")
    args = ["reverse", "--run", run, "--input", queries, "--scorer", "tokens", "-k", "3"]
    assert _cli(*args, "--out", clean_cwd / "ok.parquet").exit_code == 0  # the same request, with room
    before = _sums(run, db, queries)
    with _tmpfs(clean_cwd / "full", size="1m") as disk:
        with open(disk / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:  # fill every byte
                fh.write(b"\0" * 4096)
        line = _fails_cleanly(_cli(*args, "--out", disk / "a.parquet"))
        assert str(disk / "a.parquet") in line and "disk is full" in line and ".tmp" not in line, line
        assert sorted(os.listdir(disk)) == ["filler"]
    assert {k: v for k, v in _sums(run, db, queries).items() if k in before} == before

"""Every `defemb` command against hostile input: exit status 1 or 2, one `Error:` line, no traceback.

Also the bounds of issue 12: k larger than the index is lowered with a warning; a vocabulary with a huge,
string or float id is refused before anything is allocated.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

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

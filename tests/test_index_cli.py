"""`defemb index …` and `defemb export` end to end through click, on a fabricated run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from index_support import random_run

from definitionemb.cli import cli

V, D = 6000, 16


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return random_run(tmp_path, V, D, np.random.default_rng(0), 0.3).path


def _json(args: list[str]):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_build_neighbors_table_export(run_dir: Path, tmp_path: Path) -> None:
    built = _json(["index", "build", "--run", str(run_dir), "--factory", "Flat", "--metric", "ip", "--json"])
    assert [m["kind"] for m in built] == ["generated", "original"] and built[1]["ntotal"] == V - 4
    assert _json(["index", "build", "--run", str(run_dir), "--kind", "senses", "--json"])[0]["ntotal"] == 5
    rows = _json(["index", "neighbors", "--run", str(run_dir), "bank", "Ġhouse", "-k", "3", "--json"])
    assert len(rows) == 6 and {r["piece"] for r in rows} == {"Ġbank", "Ġhouse"}
    assert all(r["generated_id"] != r["token_id"] for r in rows)
    table = _json(["index", "neighbors-table", "--run", str(run_dir), "-k", "2", "--json"])
    assert table["rows"]["original"] == (V - 4) * 2
    out = tmp_path / "m.safetensors"
    exported = _json(
        [
            "export",
            "--run",
            str(run_dir),
            "--format",
            "safetensors",
            "--rows",
            "rare",
            "--how",
            "mix:0.5",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert exported["rows_replaced"] > 0 and out.is_file()
    assert exported["policy"] == "--rows rare --how mix:0.5"


def test_errors_are_one_clear_line(run_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["index", "neighbors", "--run", str(run_dir), "cat"])
    assert result.exit_code == 1
    assert "no generated index" in result.output and "defemb index build" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(
        cli,
        ["export", "--run", str(run_dir), "--format", "npy", "--rows", "all", "--out", str(run_dir / "x")],
    )
    assert result.exit_code == 1 and "covered, rare or task:FILE" in result.output
    result = CliRunner().invoke(
        cli,
        ["export", "--run", str(run_dir), "--format", "npy", "--how", "mix", "--out", str(run_dir / "x")],
    )
    assert (
        result.exit_code == 1 and "mix needs a weight" in result.output and "Traceback" not in result.output
    )


def test_help_texts_carry_examples() -> None:
    for args in (
        ["index", "--help"],
        ["index", "build", "--help"],
        ["index", "neighbors", "--help"],
        ["index", "reverse", "--help"],
        ["index", "neighbors-table", "--help"],
        ["export", "--help"],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "Example:" in result.output, args

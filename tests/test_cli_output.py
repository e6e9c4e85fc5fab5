"""Every command that lists rows answers in every format of the shared output options (`--fmt
table|csv|tsv|nl|json`, the same as flags), `--out FILE.parquet|.csv` writes every row, and the table
for people is a plain aligned table (no Polars `shape:` header)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from evaluation_support import DATA
from evaluation_support import make_run as make_eval_run
from index_support import make_lexicon, make_run, random_covered, roberta_pieces
from test_evaluation_synonyms import add_synonyms

from definitionemb._output import FORMATS
from definitionemb.cli import cli

V, D = 6000, 16


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("out")
    db = tmp / "lex.duckdb"
    make_lexicon(db, roberta_pieces(V))
    add_synonyms(db, [("dog", "cat"), ("house", "bank")])
    rng = np.random.default_rng(0)
    covered = random_covered(rng, V, 0.3)
    make_run(tmp / "run", rng.standard_normal((V, D)).astype(np.float32), covered, db=db)
    np.save(tmp / "w.npy", rng.standard_normal((400, D)).astype(np.float32))
    for kind in ("tokens", "senses"):
        res = CliRunner().invoke(cli, ["index", "build", "--run", str(tmp / "run"), "--kind", kind])
        assert res.exit_code == 0, res.output
    return tmp / "run", db


def _commands(run: Path, db: Path) -> dict[str, list[str]]:
    r, d = str(run), str(db)
    return {
        "neighbors": ["index", "neighbors", "--run", r, "bank", "Ġhouse", "-k", "3"],
        "senses": ["index", "senses", "--run", r, "Ġbank", "-k", "3"],
        "definitions": ["lexicon", "definitions", "--db", d, "--tokenizer", "1", "Ġbank", "Ġcat"],
        "coverage": ["lexicon", "coverage", "--db", d, "--tokenizer", "1"],
        "sql": ["sql", "--db", d, "SELECT word, pos, gloss, tags FROM entry JOIN sense USING (entry_id)"],
        "synonyms": ["eval", "synonyms", "--run", r, "-k", "5", "--how", "replace"],
        "isotropy": ["eval", "isotropy", "--matrix", str(run.parent / "w.npy")],
    }


def _check_format(fmt: str, stdout: str) -> int:
    """Parse `stdout` as `fmt`; returns the number of rows it holds."""
    if fmt == "json":
        return len(json.loads(stdout))
    if fmt == "nl":
        return len([json.loads(line) for line in stdout.splitlines()])
    if fmt in ("csv", "tsv"):
        rows = list(csv.reader(io.StringIO(stdout), delimiter="," if fmt == "csv" else "\t"))
        assert len({len(r) for r in rows}) == 1  # every row as wide as the header
        return len(rows) - 1
    lines = stdout.splitlines()
    assert "shape:" not in stdout and "┌" not in stdout and set(lines[1].replace(" ", "")) == {"-"}
    return len(lines) - 2


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "name", ["neighbors", "senses", "definitions", "coverage", "sql", "synonyms", "isotropy"]
)
def test_every_listing_answers_in_every_format(world, name: str, fmt: str, tmp_path: Path) -> None:
    args = _commands(*world)[name]
    runner = CliRunner()
    res = runner.invoke(cli, [*args, "--fmt", fmt])
    assert res.exit_code == 0, res.output
    flag = runner.invoke(cli, [*args, f"--{fmt}"])  # the flag is the same option
    assert flag.exit_code == 0 and flag.stdout == res.stdout
    n = _check_format(fmt, res.stdout)
    if name in ("coverage", "synonyms", "isotropy") and fmt == "json":  # the library's dict, as before
        keys = {"coverage": {"overall", "buckets"}, "synonyms": {"recall"}, "isotropy": {"matrix"}}[name]
        assert set(json.loads(res.stdout)) >= keys
        return
    expected = len(runner.invoke(cli, [*args, "--nl"]).stdout.splitlines())
    if name == "coverage" and fmt == "table":
        assert res.stdout.splitlines()[-1].startswith("rank-1 rule:")
        n -= 1
    assert n == expected > 0, res.stdout
    for suffix in (".parquet", ".csv"):
        out = tmp_path / f"{name}-{fmt}{suffix}"
        res = runner.invoke(cli, [*args, "--out", str(out)])
        assert res.exit_code == 0, res.output
        back = pl.read_parquet(out) if suffix == ".parquet" else pl.read_csv(out)
        assert back.height == expected


def test_formats_conflict_and_out_needs_a_known_suffix(world, tmp_path: Path) -> None:
    args = _commands(*world)["sql"]
    res = CliRunner().invoke(cli, [*args, "--fmt", "csv", "--json"])
    assert res.exit_code == 2 and "contradict" in res.output
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "x.xlsx")])
    assert res.exit_code == 2 and ".parquet" in res.output
    out = tmp_path / "x.csv"
    assert CliRunner().invoke(cli, [*args, "--out", str(out)]).exit_code == 0
    again = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert again.exit_code == 1 and "Error:" in again.output  # never over an existing file
    assert CliRunner().invoke(cli, [*args, "--out", str(out), "--force"]).exit_code == 0


def test_sql_limit_is_rows_shown_and_lists_flatten_in_csv(world) -> None:
    args = _commands(*world)["sql"]
    res = CliRunner().invoke(cli, [*args, "--limit", "2"])
    assert res.exit_code == 0 and "2 shown; --limit 0 shows all" in res.stdout
    res = CliRunner().invoke(cli, [*args, "--limit", "2", "--csv"])
    assert len(res.stdout.splitlines()) > 3  # the limit is the table view's only


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_wordsim_in_every_format(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path, fmt: str
) -> None:
    tmp = tmp_path_factory.getbasetemp() / "wordsim-out"
    if not tmp.exists():
        (tmp / "sets").mkdir(parents=True)
        for f in (DATA / "word-similarity").glob("*.txt"):
            shutil.copy(f, tmp / "sets" / f.name)
        make_eval_run(tmp / "run", tiny_bert_dir, seed=3, covered_share=0.9)
    args = ["eval", "wordsim", "--run", str(tmp / "run"), "--dataset", str(tmp / "sets")]
    res = CliRunner().invoke(cli, [*args, "--fmt", fmt])
    assert res.exit_code == 0, res.output
    n = _check_format(fmt, res.stdout) if fmt != "table" else len(res.stdout.splitlines())
    if fmt == "json":
        assert set(json.loads(res.stdout)) == {"sets", "wins"}  # as before the output options
    elif fmt == "table":
        assert "EN-RG-65" in res.stdout and "beats original on" in res.stdout and "shape:" not in res.stdout
    else:
        assert n == 2

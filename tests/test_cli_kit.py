"""The command-line kit (definitionemb/_cli.py): one error handler, shared options, one emit()."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from definitionemb.embedder.errors import EmbedderError
from definitionemb.evaluation.errors import EvaluationError
from definitionemb.index.errors import IndexStageError
from definitionemb.lexicon.errors import DefembError, LexiconError

from definitionemb._cli import Group, emit, json_option, run_option
from definitionemb.cli import cli


def test_every_stage_error_derives_from_one_root() -> None:
    from definitionemb.config import ConfigError
    from definitionemb.pipeline import PipelineError

    for exc in (LexiconError, EmbedderError, IndexStageError, EvaluationError, ConfigError, PipelineError):
        assert issubclass(exc, DefembError), exc
    assert issubclass(ConfigError, ValueError) and issubclass(PipelineError, RuntimeError)


def _stage_failure_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "broken.toml"
    cfg.write_text(f'[run]\nwork = "{tmp_path / "work"}"\n\n[lexicon]\nsources = ["nonsense:{tmp_path}"]\n')
    return cfg


def test_a_stage_error_under_defemb_run_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["run", "--config", str(_stage_failure_config(tmp_path)), "--until", "lexicon"]
    )
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit)
    # the stage's progress line, then the stage's own message as one line
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: unknown source kind 'nonsense'"), res.stderr
    assert "Traceback" not in res.output and res.stderr.count("Error") == 1


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(tmp_path: Path, how: str) -> None:
    args = ["sql", "--db", str(tmp_path / "missing.duckdb"), "SELECT 1"]
    if how == "flag":
        res = CliRunner().invoke(cli, ["--debug", *args])
    else:
        res = CliRunner().invoke(cli, args, env={"DEFEMB_DEBUG": "1"})
    assert res.exit_code == 1
    assert isinstance(res.exception, LexiconError)  # raised through, so Python prints its traceback
    quiet = CliRunner().invoke(cli, args, env={"DEFEMB_DEBUG": "0"})
    assert quiet.exit_code == 1 and quiet.stderr.startswith("Error: ") and "no lexicon at" in quiet.stderr
    assert isinstance(quiet.exception, SystemExit)


def test_usage_errors_exit_2() -> None:
    res = CliRunner().invoke(cli, ["index", "neighbors", "cat"])
    assert res.exit_code == 2 and "--run" in res.output


@click.group(cls=Group)
def _demo() -> None:
    pass


@_demo.command("show")
@run_option()
@json_option
def _show(run_dir: str, as_json: bool) -> None:
    if run_dir == "fail":
        raise EvaluationError("the run is not evaluated yet; run defemb eval report")
    if run_dir == "bug":
        raise KeyError("a bug keeps its traceback")
    emit({"run": run_dir, "score": np.float32(0.5), "nan": math.nan}, as_json, f"run {run_dir}")


def test_run_option_spellings_and_emit() -> None:
    for spelling in ("--run", "--run-dir"):
        res = CliRunner().invoke(_demo, ["show", spelling, "r1", "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout) == {"run": "r1", "score": 0.5, "nan": None}
    assert CliRunner().invoke(_demo, ["show", "--run", "r1"]).stdout == "run r1\n"


def test_group_turns_stage_errors_into_one_line_but_not_bugs() -> None:
    res = CliRunner().invoke(_demo, ["show", "--run", "fail"])
    assert (
        res.exit_code == 1 and res.stderr == "Error: the run is not evaluated yet; run defemb eval report\n"
    )
    bug = CliRunner().invoke(_demo, ["show", "--run", "bug"])
    assert isinstance(bug.exception, KeyError)

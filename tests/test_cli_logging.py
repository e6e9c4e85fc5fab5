"""`defemb -q/-v` route the toolkit's messages through `logging`; progress bars appear on a terminal only
unless `--progress` asks for them (tqdm's `disable=None`)."""

from __future__ import annotations

import io
import logging

import pytest
from click.testing import CliRunner
from definitionemb.core import progress
from tqdm import tqdm

from definitionemb.cli import cli


@pytest.fixture(autouse=True)
def _restore() -> None:
    yield
    progress.set_mode("auto")
    logging.getLogger("definitionemb").setLevel(logging.NOTSET)


def _run_with(*flags: str) -> str:
    """Invoke the root with `flags` and a subcommand that logs one info and one debug line."""

    @cli.command("_log_probe", hidden=True)
    def probe() -> None:
        log = logging.getLogger("definitionemb.run")
        log.info("[defemb run] info line")
        log.debug("debug line")
        log.warning("warning line")

    try:
        res = CliRunner().invoke(cli, [*flags, "_log_probe"])
    finally:
        cli.commands.pop("_log_probe", None)
    assert res.exit_code == 0, res.output
    return res.stderr


def test_quiet_and_verbose_set_the_level(monkeypatch: pytest.MonkeyPatch) -> None:
    from definitionemb import cli as cli_module

    monkeypatch.setitem(cli_module._COMMANDS, "_log_probe", ("definitionemb.cli", "cli", ""))
    monkeypatch.setattr(cli_module.LazyGroup, "get_command", lambda self, ctx, name: self.commands.get(name))
    err = _run_with()
    assert "info line" in err and "debug line" not in err and "warning line" in err
    assert progress.mode() == "auto"
    err = _run_with("-q")
    assert "info line" not in err and "warning line" in err and progress.mode() == "never"
    err = _run_with("-v")
    assert "debug line" in err and "definitionemb.run" in err
    _run_with("--progress")
    assert progress.mode() == "always"
    assert CliRunner().invoke(cli, ["-q", "-v", "sql", "--help"]).exit_code == 2


def test_bars_only_on_a_terminal_unless_asked() -> None:
    progress.set_mode("auto")
    assert progress.bar_disable(True) is None and progress.bar_disable(False) is True
    log = io.StringIO()  # not a terminal: tqdm with disable=None writes nothing
    for _ in tqdm(range(3), file=log, disable=progress.bar_disable(True)):
        pass
    assert log.getvalue() == ""
    progress.set_mode("always")
    for _ in tqdm(range(3), file=log, disable=progress.bar_disable(True)):
        pass
    assert "3/3" in log.getvalue()
    progress.set_mode("never")
    assert progress.bar_disable(True) is True

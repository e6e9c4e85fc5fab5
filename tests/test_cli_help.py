"""Every `defemb` subcommand has --help text with an example and is listed in the README."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from definitionemb.cli import _COMMANDS, cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _walk(cmd: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"defemb {' '.join((*path, name))} is listed but cannot be loaded"
            out.extend(_walk(sub, (*path, name)))
    return out


COMMANDS = [p for p, c in _walk(cli, ()) if p and not isinstance(c, click.Group)]


def test_every_stage_registers_its_commands() -> None:
    top = {p[0] for p in COMMANDS}
    assert top == set(_COMMANDS), f"missing: {set(_COMMANDS) - top}"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    res = CliRunner().invoke(cli, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Example" in res.output, f"defemb {' '.join(path)} --help shows no example"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_listed_in_readme(path: tuple[str, ...]) -> None:
    assert f"defemb {' '.join(path)}" in README, f"README does not show `defemb {' '.join(path)}`"

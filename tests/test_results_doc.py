"""Every command that benchmarks/RESULTS.md cites runs from this repository (a static check, nothing is run).

A command is a code span or a line of a fenced block that starts with `defemb`, `python -m definitionemb`,
`python -m benchmarks.X`, `scripts/X.py` (through `python` or not) or `make X`. Each must name a module,
file, click command or Makefile target of this tree, and each `--option` it passes must be one that
command declares: click options for `defemb`, an option string in the file's source for a script.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from fabricate import write_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")  # an inline code span may wrap onto the next line
_PREFIXES = ("nice -n 10 ", "/usr/bin/time -v ", "time ")


def _code(text: str) -> list[str]:
    """The code of `text`: each line of its fenced blocks, each inline span outside them (one line each)."""
    blocks = [line for m in _FENCE.finditer(text) for line in m.group(1).splitlines()]
    prose = _FENCE.sub("", text)
    return blocks + [" ".join(m.group(1).split()) for m in _SPAN.finditer(prose)]


def _commands(code: str) -> list[list[str]]:
    """The simple commands of one line of code, their prefixes (`nice`, `time`, VAR=…) taken off."""
    out = []
    for part in re.split(r"&&|;|\|", code.split("#", 1)[0]):
        part = part.strip()
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if part.startswith(p):
                    part, changed = part[len(p) :].strip(), True
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        if words:
            out.append(words)
    return out


def _classify(words: list[str]) -> tuple[str, str, list[str]] | None:
    """(kind, target, rest) of a command this repository must provide, or None for any other code."""
    exe = words[0]
    is_python = exe in ("python", "python3") or exe.endswith("/bin/python")
    if exe == "defemb" or exe.endswith("/bin/defemb"):
        return "defemb", "", words[1:]
    if is_python and len(words) >= 3 and words[1] == "-m":
        if words[2] == "definitionemb":
            return "defemb", "", words[3:]
        if words[2].startswith("benchmarks."):
            return "module", words[2], words[3:]
    if is_python and len(words) >= 2 and words[1].startswith("scripts/"):
        return "file", words[1], words[2:]
    if exe.startswith("scripts/") and exe.endswith(".py"):
        return "file", exe, words[1:]
    if exe == "make" and len(words) >= 2:
        return "make", words[1], []
    return None


def _options(rest: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in rest if w.startswith("--") and len(w) > 2]


def _defemb_problem(rest: list[str]) -> str | None:
    from definitionemb.cli import cli

    cmd: click.Command = cli
    ctx = click.Context(cli)
    words = list(rest)
    while isinstance(cmd, click.Group):
        names = [w for w in words if not w.startswith("-")]
        if not names:
            return None  # the group itself (`defemb --help`)
        sub = cmd.get_command(ctx, names[0])
        if sub is None:
            return f"no subcommand {names[0]!r}"
        words = words[words.index(names[0]) + 1 :]
        cmd = sub
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    unknown = [o for o in _options(words) if o not in known]
    return f"{cmd.name} has no option {unknown}" if unknown else None


def _source_problem(path: Path, rest: list[str]) -> str | None:
    if not path.is_file():
        return f"{path.relative_to(ROOT)} is not in the repository"
    source = path.read_text(encoding="utf-8")
    unknown = [
        o for o in _options(rest) if f'"{o}"' not in source and f"'{o}'" not in source and o != "--help"
    ]
    return f"{path.relative_to(ROOT)} declares no option {unknown}" if unknown else None


def _problem(kind: str, target: str, rest: list[str]) -> str | None:
    if kind == "defemb":
        return _defemb_problem(rest)
    if kind == "module":
        return _source_problem(ROOT / (target.replace(".", "/") + ".py"), rest)
    if kind == "file":
        return _source_problem(ROOT / target, rest)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return None if re.search(rf"^{re.escape(target)}:", makefile, re.M) else f"no make target {target!r}"


def _cited(text: str) -> list[tuple[str, str, list[str], str]]:
    found = []
    for code in _code(text):
        for words in _commands(code):
            c = _classify(words)
            if c is not None:
                found.append((*c, code))
    return found


def test_every_command_in_results_runs_from_this_repository() -> None:
    cited = _cited(RESULTS.read_text(encoding="utf-8"))
    kinds = {kind for kind, *_ in cited}
    # the file cites all of these; finding none would mean the parser, not the file, is broken
    assert {"defemb", "module", "file"} <= kinds, kinds
    assert len(cited) >= 20
    problems = [f"{code!r}: {p}" for kind, target, rest, code in cited if (p := _problem(kind, target, rest))]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_missing_script_an_unknown_option_and_a_wrong_subcommand() -> None:
    bad = (
        "`.venv/bin/python -m benchmarks.bench_nothing`, `python scripts/gone.py --x 1`,\n"
        "`defemb eval knobs --run R --no-such-flag`, `defemb embed tune --run R`,\n"
        "`.venv/bin/python -m benchmarks.bench_index --no-such-flag`, `make nothing`"
    )
    cited = _cited(bad)
    assert len(cited) == 6
    assert all(_problem(kind, target, rest) for kind, target, rest, _ in cited)
    good = "`nice -n 10 .venv/bin/python -m definitionemb eval knobs --run R --db L --no-adopt`"
    ((kind, target, rest, _),) = _cited(good)
    assert _problem(kind, target, rest) is None


def test_results_ends_with_the_section_later_work_appends_after() -> None:
    headings = re.findall(r"^## .*$", RESULTS.read_text(encoding="utf-8"), re.M)
    assert "## Added by later work" in headings


def test_history_keeps_what_results_no_longer_shows() -> None:
    history = (ROOT / "benchmarks" / "HISTORY.md").read_text(encoding="utf-8")
    assert history.startswith("# Benchmark history\n\n**This is history.**")
    # section names that code comments cite (`RESULTS.md, "Top-6 rows, seventh pass"`) live on there
    for name in ("Top-6 rows, seventh pass", "Reverse dictionary, fifth pass", "ninth pass"):
        assert name in history


def test_probe_row_norms_measures_the_length_a_policy_leaves(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from probe_row_norms import row_norms
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    rng = np.random.default_rng(0)
    original = rng.normal(size=(6, 4)).astype(np.float32)
    generated = original * 0.5  # same direction, half the length
    covered = np.array([True, True, True, False, False, True])
    run = write_run(tmp_path / "run", original, generated, covered, model=None, family="bert")
    out = row_norms(run, ["mix:0.4", "normmix:0.4"])
    assert out["covered"] == 4
    assert out["cosine_mean"] == pytest.approx(1.0, abs=1e-4)
    assert out["generated_norm_mean"] == pytest.approx(out["original_norm_mean"] / 2, abs=1e-3)
    untouched = np.linalg.norm(original[~covered], axis=1).mean()
    assert out["untouched_norm_mean"] == pytest.approx(untouched, abs=1e-3)
    assert out["mix:0.4"]["length_share_mean"] == pytest.approx(0.8, abs=1e-4)  # 0.6 + 0.4 · 0.5
    assert out["normmix:0.4"]["length_share_p10"] == pytest.approx(1.0, abs=1e-4)

"""The build declares every folder it ships under one import root, `definitionemb`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_of(folder: Path, package_dir: dict[str, str]) -> str | None:
    """The import name setuptools gives a source folder: the longest package-dir prefix that holds it."""
    rel = folder.relative_to(ROOT)
    best: tuple[int, str] | None = None
    for name, src in package_dir.items():
        src_parts = Path(src).parts
        if rel.parts[: len(src_parts)] == src_parts and (best is None or len(src_parts) > best[0]):
            best = (len(src_parts), ".".join([name, *rel.parts[len(src_parts) :]]))
    return None if best is None else best[1]


def test_every_shipped_folder_is_a_declared_package() -> None:
    """setuptools warns about (and would drop) any importable folder missing from `packages`."""
    setup = _pyproject()["tool"]["setuptools"]
    declared = set(setup["packages"])
    found = set()
    for src in {Path(s).parts[0] for s in setup["package-dir"].values()}:
        for folder in [ROOT / src, *(ROOT / src).rglob("*")]:
            if (
                folder.is_dir()
                and folder.name != "__pycache__"
                and any(f.is_file() for f in folder.iterdir())
            ):
                found.add(_package_of(folder, setup["package-dir"]))
    assert found == declared
    assert {p.split(".")[0] for p in declared} == {"definitionemb"}


def test_license_is_an_spdx_string() -> None:
    # A TOML table here is deprecated and repeats a warning block on every install.
    assert isinstance(_pyproject()["project"]["license"], str)


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    """Installing next to PyPI's `lexicon` or `index` must not write into their folders."""
    # Built from a copy: setuptools writes build/ beside the sources, and the checkout is not the test's.
    src = tmp_path / "src"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for rel in listed.stdout.splitlines():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("definitionemb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"definitionemb"}
    for must in (
        "definitionemb/cli.py",
        "definitionemb/core/fileio.py",
        "definitionemb/lexicon/schema.sql",
        "definitionemb/lexicon/sources/kaikki.py",
        "definitionemb/index/policy.py",
        "definitionemb/configs/minilm-demo.toml",
    ):
        assert must in names


def test_cli_runs_from_a_folder_with_index_and_lexicon_modules(tmp_path: Path) -> None:
    """A user's `index.py` or `lexicon.py` in the current folder cannot shadow the toolkit's stages."""
    for name in ("index.py", "lexicon.py", "embedder.py", "evaluation.py"):
        (tmp_path / name).write_text("raise SystemExit('the user module was imported')\n")
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "definitionemb", "index", "neighbors", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage:" in proc.stdout


def test_the_root_api() -> None:
    import definitionemb

    assert {"lexicon", "embedder", "index", "evaluation", "DefembError"} <= set(definitionemb.__all__)
    from definitionemb.index.errors import IndexStageError

    assert issubclass(IndexStageError, definitionemb.DefembError)

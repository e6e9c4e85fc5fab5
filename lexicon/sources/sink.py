"""The record sink every reader reports to: what each record became, and the accounting.

A reader walks its input once and tells a :class:`Sink` what each record became — an entry with its senses
and forms (loaded), a reject (malformed, kept with its location), or a filtered record (counted by reason).
The sink keeps the accounting (``records = loaded + rejected + filtered``) and hands full column batches to
a flush callback (the build inserts them into DuckDB as Arrow tables), so memory stays bounded whatever the
input size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COLUMNS", "RAW_LIMIT", "Columns", "Sink", "raw_text"]

RAW_LIMIT = 64 * 1024  # rejects keep at most this much of the record


def raw_text(raw: bytes | str) -> str:
    """A reject's raw record as text, cut to :data:`RAW_LIMIT` (invalid UTF-8 shown as U+FFFD)."""
    if isinstance(raw, bytes):
        return raw[:RAW_LIMIT].decode("utf-8", errors="replace")
    return raw[:RAW_LIMIT]


# The staging tables' columns, in order, with their Arrow types ("list": a list of strings): the one place
# they are spelled. `Columns` collects rows in them; the build makes its Arrow schemas from them (adding
# `source_id` to entry and reject).
COLUMNS: dict[str, dict[str, str]] = {
    "entry": {
        "entry_id": "int64",
        "record_no": "int64",
        "word": "string",
        "lang_code": "string",
        "pos": "string",
        "etymology_no": "int32",
        "redirects": "list",
        "etymology_text": "string",
    },
    "form": {"entry_id": "int64", "form": "string", "tags": "list"},
    "sense": {
        "sense_id": "int64",
        "entry_id": "int64",
        "ord": "int32",
        "gloss": "string",
        "raw_gloss": "string",
        "tags": "list",
        "topics": "list",
        "form_of": "string",
        "alt_of": "string",
        "example": "string",
        "user_defined": "bool",
        "examples": "list",
        "wiktionary_id": "string",
        "senseids": "list",
        "wikidata": "list",
    },
    "relation": {"entry_id": "int64", "sense_id": "int64", "kind": "string", "links": "string"},
    "reject": {"record_no": "int64", "location": "string", "reason": "string", "raw": "string"},
}


@dataclass
class Columns:
    """Column lists for one batch of rows of the entry, form, sense, relation and reject tables."""

    entry: dict[str, list[Any]] = field(default_factory=dict)
    form: dict[str, list[Any]] = field(default_factory=dict)
    sense: dict[str, list[Any]] = field(default_factory=dict)
    relation: dict[str, list[Any]] = field(default_factory=dict)
    reject: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, cols in COLUMNS.items():
            getattr(self, name).update({c: [] for c in cols})

    def add(self, table: str, *row: Any) -> None:
        """Append one row to `table`: a value per column, in the order `COLUMNS` gives."""
        cols: dict[str, list[Any]] = getattr(self, table)
        if len(row) != len(cols):
            raise ValueError(f"a {table} row has {len(cols)} columns, got {len(row)} values")
        for values, value in zip(cols.values(), row, strict=True):
            values.append(value)


class Sink:
    """Collects what a reader found, counts it, and flushes full batches through `flush`.

    Ids are assigned here (``next_entry_id``/``next_sense_id`` continue the database's ids) so readers
    never talk to DuckDB.
    """

    def __init__(
        self,
        flush: Callable[[Columns], None],
        next_entry_id: int = 1,
        next_sense_id: int = 1,
        batch_senses: int = 100_000,
    ) -> None:
        self._flush = flush
        self.next_entry_id = next_entry_id
        self.next_sense_id = next_sense_id
        self.batch_senses = batch_senses
        self.cols = Columns()
        self.records = 0
        self.loaded = 0
        self.rejected = 0
        self.filtered: Counter[str] = Counter()
        self._pending = 0

    # -- accounting -------------------------------------------------------------------------------
    def reject(self, record_no: int, location: str | None, reason: str, raw: bytes | str) -> None:
        """One malformed record: kept in `reject` with its location so nothing is lost."""
        self.records += 1
        self.rejected += 1
        self.cols.add("reject", record_no, location, reason, raw_text(raw))
        self._pending += 1
        self._maybe_flush()

    def filter(self, reason: str) -> None:
        """One record skipped on purpose (another language, no senses, ...)."""
        self.records += 1
        self.filtered[reason] += 1

    def entry(
        self,
        record_no: int,
        word: str,
        lang_code: str,
        pos: str | None,
        etymology_no: int | None,
        redirects: list[str] | None,
        etymology_text: str | None = None,
    ) -> int:
        """Add an entry row (does not count a record: call :meth:`loaded_record` once per record)."""
        return self._numbered(
            "entry",
            record_no,
            word,
            lang_code,
            pos,
            etymology_no,
            redirects or None,
            etymology_text,
        )

    def form(self, entry_id: int, form: str, tags: list[str] | None) -> None:
        self.cols.add("form", entry_id, form, tags or None)

    def sense(
        self,
        entry_id: int,
        ord_: int,
        gloss: str,
        raw_gloss: str | None,
        tags: list[str] | tuple[str, ...] | None,
        topics: list[str] | None,
        form_of: str | None,
        alt_of: str | None,
        example: str | None,
        user_defined: bool = False,
        *,
        examples: list[str] | None = None,
        wiktionary_id: str | None = None,
        senseids: list[str] | None = None,
        wikidata: list[str] | None = None,
    ) -> int:
        """Add a sense row; returns its sense_id (for relations from the sense)."""
        sid = self._numbered(
            "sense",
            entry_id,
            ord_,
            gloss,
            raw_gloss,
            list(tags) if tags else None,
            topics or None,
            form_of,
            alt_of,
            example,
            user_defined,
            examples or None,
            wiktionary_id,
            senseids or None,
            wikidata or None,
        )
        self._pending += 1
        return sid

    def relations(self, entry_id: int, sense_id: int | None, kind: str, links: str) -> None:
        """Lexical relations of one kind from an entry (or one of its senses): `links` is their JSON list
        as the source spells it (`[{"word": ..., "sense": ...}, ...]`), stored packed (`relation_links`) and
        unpacked by the `relation` view, so a reader copies bytes instead of building an object per link."""
        self.cols.add("relation", entry_id, sense_id, kind, links)

    def _numbered(self, table: str, *row: Any) -> int:
        """Add a row to `table` (entry or sense) under the next id of its kind, which it returns."""
        counter = f"next_{table}_id"
        new_id: int = getattr(self, counter)
        setattr(self, counter, new_id + 1)
        self.cols.add(table, new_id, *row)
        return new_id

    def loaded_record(self) -> None:
        """Count one record whose entries, forms and senses were added."""
        self.records += 1
        self.loaded += 1
        self._maybe_flush()

    def absorb(self, other: Sink, record_offset: int = 0) -> None:
        """Take over the rows and counts of `other`, a sink filled elsewhere (a worker process) whose ids
        started at 1: they are renumbered to continue this sink's, and its record numbers are shifted by
        `record_offset` (for readers that number records by count rather than by line)."""
        de, ds = self.next_entry_id - 1, self.next_sense_id - 1
        oc, c = other.cols, self.cols
        if record_offset:
            for cols in (oc.entry, oc.reject):
                cols["record_no"] = [n + record_offset for n in cols["record_no"]]
        c.entry["entry_id"].extend(i + de for i in oc.entry["entry_id"])
        c.form["entry_id"].extend(i + de for i in oc.form["entry_id"])
        c.sense["sense_id"].extend(i + ds for i in oc.sense["sense_id"])
        c.sense["entry_id"].extend(i + de for i in oc.sense["entry_id"])
        c.relation["entry_id"].extend(i + de for i in oc.relation["entry_id"])
        c.relation["sense_id"].extend(None if i is None else i + ds for i in oc.relation["sense_id"])
        for table in COLUMNS:
            mine, theirs = getattr(c, table), getattr(oc, table)
            for name, values in theirs.items():
                if name not in ("entry_id", "sense_id"):
                    mine[name].extend(values)
        self.next_entry_id += other.next_entry_id - 1
        self.next_sense_id += other.next_sense_id - 1
        self.records += other.records
        self.loaded += other.loaded
        self.rejected += other.rejected
        self.filtered.update(other.filtered)
        self._pending += other._pending
        self._maybe_flush()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_flush"] = None  # the flush callback stays in its process
        return state

    def _maybe_flush(self) -> None:
        if self._pending >= self.batch_senses:
            self.flush()

    def flush(self) -> None:
        """Hand the collected rows to the flush callback and start a new batch."""
        if self.cols.entry["entry_id"] or self.cols.reject["record_no"]:
            self._flush(self.cols)
        self.cols = Columns()
        self._pending = 0

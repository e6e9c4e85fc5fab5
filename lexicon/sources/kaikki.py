"""`kaikki:` — wiktextract JSONL as published by kaikki.org: ``.jsonl``, ``.jsonl.gz``, ``.jsonl.bz2``, a folder.

Each line is one record (a word, part of speech and etymology). The file is cut into runs of whole lines
(one read block each, :func:`~lexicon.sources.lines.iter_chunks`) and each run is decoded by one msgspec
``decode_lines`` call into typed structs that name only the fields the lexicon keeps, so the rest of a
line (translations, sounds, ...; most of its bytes) is skipped at C speed instead of being built into
Python objects. A run that does not decode as a whole is redone line by line, so a bad line is rejected
alone, with msgspec's message (naming the offending field), its line number and byte offset.

Files over :data:`PARALLEL_MIN_BYTES` are parsed by worker processes, one per core, while this process
reads, hashes and inserts; results are taken in file order, so record numbers and ids are the same as
with one process (a test checks the two databases are identical).

Why not DuckDB's ``read_json``: on kaikki's long lines (up to 180 KB) it measured slower than plain
``json.loads`` even with a ``columns=`` projection, and a line it cannot parse is dropped without its
line number; msgspec parses the same lines several times faster than ``json.loads``.
"""

from __future__ import annotations

import io
import operator
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import cast

import msgspec
from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.normalise import nested_gloss, normalise_gloss, normalise_pos
from definitionemb.lexicon.sources.base import Source, lang_set
from definitionemb.lexicon.sources.lines import MAX_LINE_BYTES, Chunk, Line, iter_chunks, iter_lines
from definitionemb.lexicon.sources.sink import Columns, Sink
from definitionemb.lexicon.sources.streams import STREAM_ERRORS, open_decompressed, sniff
from definitionemb.lexicon.sources.workers import process_pool, workers

__all__ = ["RELATION_KINDS", "KaikkiSource"]

# Forms that are table headers or template names, not words.
_META_FORM_TAGS = frozenset({"table-tags", "inflection-template", "class", "romanization"})


class _Word(msgspec.Struct):
    word: str | None = None


class _Example(msgspec.Struct):
    text: str | None = None


class _LeanSense(msgspec.Struct):
    glosses: list[str] = []
    raw_glosses: list[str] = []
    tags: list[str] = []
    topics: list[str] = []
    form_of: list[_Word] = []
    alt_of: list[_Word] = []
    # Examples are decoded one by one (a Raw is a view), so a malformed one does not cost the sense.
    examples: list[msgspec.Raw] = []


# Relations stay undecoded (a Raw is a view of the line) and are stored as the source's JSON
# (`relation_links`; the `relation` view unpacks them): a fraction of the cost of an object per link.
_NO_LINKS = msgspec.Raw(b"[]")

# wiktextract's linkage fields, kept in the `relation` table under these names (its `kind`).
RELATION_KINDS = (
    "synonyms",
    "antonyms",
    "hypernyms",
    "hyponyms",
    "holonyms",
    "meronyms",
    "troponyms",
    "coordinate_terms",
    "derived",
    "related",
    "compounds",
    "instances",
    "proverbs",
    "abbreviations",
)


class _RichSense(_LeanSense):
    # decoded in C; a malformed example fails the line, which then loads through the lean decoder
    examples: list[_Example] = []  # type: ignore[assignment]
    id: str | None = None
    senseid: list[str] = []
    wikidata: list[str] = []


# Each linkage field, undecoded, on senses and records alike.
_LINK_FIELDS: list[tuple[str, type, msgspec.Raw]] = [(k, msgspec.Raw, _NO_LINKS) for k in RELATION_KINDS]
_Sense = cast("type[_RichSense]", msgspec.defstruct("_Sense", _LINK_FIELDS, bases=(_RichSense,)))


class _Form(msgspec.Struct):
    form: str = ""
    tags: list[str] = []


class _LeanRecord(msgspec.Struct):
    # word is optional in the struct so that wiktextract's redirect lines ({"title", "redirect"}) decode
    # on the fast path; a line with neither is rejected after decoding.
    word: str | None = None
    senses: list[_LeanSense] = []
    pos: str | None = None
    lang_code: str | None = None
    etymology_number: int | None = None
    redirects: list[str] = []
    forms: list[_Form] = []
    redirect: str | None = None


class _RichRecord(_LeanRecord):
    etymology_text: str | None = None


_SENSES = list[_Sense]  # type: ignore[valid-type]  # _Sense is made by defstruct, a type at runtime
_Record = cast(
    "type[_RichRecord]",
    msgspec.defstruct("_Record", [("senses", _SENSES, []), *_LINK_FIELDS], bases=(_RichRecord,)),
)


# `extras=False` (``defemb lexicon build --no-extras``) decodes only what schema 1 kept: glosses, the
# first example, forms. The rest of a line is skipped at C speed, as before.
_DECODERS: dict[bool, msgspec.json.Decoder[_LeanRecord]] = {
    True: msgspec.json.Decoder(_Record),
    False: msgspec.json.Decoder(_LeanRecord),
}
_EXAMPLE = msgspec.json.Decoder(_Example)


def _first_example(examples: list[msgspec.Raw]) -> str | None:
    for raw in examples:
        try:
            text = _EXAMPLE.decode(raw).text
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            continue  # a malformed example does not cost the sense
        if text and text.strip():
            return text
    return None


_LINKS_OF = operator.attrgetter(*RELATION_KINDS)  # one C call for the 14 fields


def _relations(sink: Sink, entry_id: int, sense_id: int | None, holder: _RichRecord | _RichSense) -> None:
    for kind, raw in zip(RELATION_KINDS, _LINKS_OF(holder), strict=True):
        if len(raw) > 2:  # not the empty list
            sink.relations(entry_id, sense_id, kind, bytes(raw).decode("utf-8"))


def _decode_error(data: bytes) -> str:
    """Why a line does not decode into a record.

    The reason is ours, not the JSON library's: its wording changes between releases (msgspec 0.23 calls
    bad UTF-8 "invalid JSON"), so UTF-8 is checked here first.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8: {exc.reason} at byte {exc.start}"
    try:
        _DECODERS[False].decode(data)
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8: {exc.reason} at byte {exc.start}"
    except RecursionError:
        return "nested too deeply"
    except msgspec.ValidationError as exc:
        return f"wrong type: {exc}"
    except msgspec.DecodeError as exc:
        return f"invalid JSON: {exc}"
    return ""


def _nth_line(chunk: bytes, index: int) -> tuple[int, bytes]:
    """Offset in `chunk` and content of its `index`-th line (0-based); only used for rare rejects."""
    pos = 0
    for _ in range(index):
        pos = chunk.index(b"\n", pos) + 1
    end = chunk.find(b"\n", pos)
    return pos, chunk[pos : end if end >= 0 else len(chunk)]


class _Loader:
    """Turns decoded records of one kaikki file (`name` in reject locations) into sink rows."""

    def __init__(self, name: str, lang: str, sink: Sink, extras: bool = True) -> None:
        self.name = name
        self.sink = sink
        self.langs = lang_set(lang)
        self.extras = extras
        self.decoder = _DECODERS[extras]

    def loc(self, offset: int) -> str:
        return f"{self.name}@{offset}"

    def chunk(self, chunk: Chunk) -> None:
        """A run of whole lines: one msgspec call for all of them, per-line only if that fails."""
        data = chunk.data
        if chunk.too_long:
            self.sink.reject(chunk.no, self.loc(chunk.offset), "line over 10 MiB", bytes(data))
            return
        if len(data) <= MAX_LINE_BYTES:
            try:
                records = self.decoder.decode_lines(data)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                records = None
            # decode_lines skips blank lines: a count that differs sends the chunk down the per-line path
            if records is not None and len(records) == chunk.n_lines:
                for i, rec in enumerate(records):
                    why = self.record(chunk.no + i, rec)
                    if why:
                        off, raw = _nth_line(bytes(data), i)
                        self.sink.reject(chunk.no + i, self.loc(chunk.offset + off), why, raw)
                return
        for line in iter_lines(
            io.BytesIO(bytes(data)), block_size=len(data) + 1, first_no=chunk.no, first_offset=chunk.offset
        ):
            self.line(line)

    def line(self, line: Line) -> None:
        loc = self.loc
        if line.too_long:
            self.sink.reject(line.no, loc(line.offset), "line over 10 MiB", line.data)
            return
        if not line.data.strip():
            self.sink.filter("blank_line")
            return
        rec: _LeanRecord | None
        try:
            rec = self.decoder.decode(line.data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            try:  # a malformed relation or sense id costs the extras, not the record
                rec = _DECODERS[False].decode(line.data) if self.extras else None
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                rec = None
        if rec is None:
            self.sink.reject(line.no, loc(line.offset), _decode_error(line.data), line.data)
            return
        why = self.record(line.no, rec)
        if why:
            self.sink.reject(line.no, loc(line.offset), why, line.data)

    def record(self, no: int, rec: _LeanRecord) -> str | None:
        """Load or filter one decoded record; return the reason when it must be rejected instead."""
        sink = self.sink
        if rec.word is None:
            if rec.redirect is not None:
                sink.filter("redirect")
                return None
            return "missing word"
        word = rec.word.strip()
        if not word:
            return "empty word"
        if rec.lang_code is None:
            return "missing lang_code"
        if self.langs is not None and rec.lang_code not in self.langs:
            sink.filter("lang")
            return None
        if not rec.senses:
            sink.filter("no_senses")
            return None
        kept = []
        seen: set[str] = set()
        for s in rec.senses:
            gl = s.glosses
            raw = gl[-1] if gl and gl[-1].strip() else nested_gloss(gl) or nested_gloss(s.raw_glosses)
            if not raw:
                continue
            g = normalise_gloss(raw, s.tags)
            if not g.text or g.text in seen:
                continue
            seen.add(g.text)
            kept.append((s, g, raw))
        if not kept:
            sink.filter("empty_gloss")
            return None
        rich = rec if isinstance(rec, _Record) else None
        eid = sink.entry(
            no,
            word,
            rec.lang_code,
            normalise_pos(rec.pos),
            rec.etymology_number,
            rec.redirects,
            rich.etymology_text if rich is not None else None,
        )
        for f in rec.forms:
            if f.form and f.form != word and (not f.tags or _META_FORM_TAGS.isdisjoint(f.tags)):
                sink.form(eid, f.form, f.tags)
        for i, (s, g, raw) in enumerate(kept):
            # the source's own form_of/alt_of target wins over the one read from the gloss
            form_of = (s.form_of[0].word if s.form_of else None) or g.form_of
            alt_of = (s.alt_of[0].word if s.alt_of else None) or g.alt_of
            if isinstance(s, _Sense):
                examples = [e.text for e in s.examples if e.text and e.text.strip()]
            else:
                first = _first_example(s.examples) if s.examples else None
                examples = [first] if first else []
            rg = s.raw_glosses
            raw_gloss = rg[-1] if rg and rg[-1].strip() else raw
            example = examples[0] if examples else None
            if isinstance(s, _Sense):
                sid = sink.sense(
                    eid,
                    i,
                    g.text,
                    raw_gloss,
                    g.tags,
                    s.topics,
                    form_of,
                    alt_of,
                    example,
                    examples=examples,
                    wiktionary_id=s.id,
                    senseids=s.senseid,
                    wikidata=s.wikidata,
                )
                _relations(sink, eid, sid, s)
            else:
                sink.sense(eid, i, g.text, raw_gloss, g.tags, s.topics, form_of, alt_of, example)
        if rich is not None:
            _relations(sink, eid, None, rich)
        sink.loaded_record()
        return None


def _work(name: str, lang: str, chunk: Chunk, extras: bool = True) -> tuple[Sink, int]:
    """Worker process: one chunk into a private sink, numbering its lines from 1 (the parent shifts
    record numbers and ids when it absorbs the sink, in file order). Returns the sink and line count."""
    data = bytes(chunk.data)  # bytes already: chunks arrive pickled
    n_lines = chunk.n_lines if chunk.n_lines >= 0 else data.count(b"\n") + (not data.endswith(b"\n"))
    sink = Sink(_no_flush, batch_senses=1 << 62)
    _Loader(name, lang, sink, extras).chunk(Chunk(1, chunk.offset, data, n_lines, chunk.too_long))
    return sink, n_lines


def _work_range(
    path: Path, name: str, lang: str, offset: int, length: int, extras: bool = True
) -> tuple[Sink, int]:
    """Worker process: like :func:`_work`, reading the chunk from the (uncompressed) file itself. The
    parent has just read those bytes, so they come from the page cache, and nothing large is pickled."""
    with open(path, "rb") as f:
        data = os.pread(f.fileno(), length, offset)
    return _work(name, lang, Chunk(0, offset, data, -1), extras)


def _no_flush(cols: Columns) -> None:
    raise AssertionError("a worker sink never flushes")  # batch_senses is unreachable


# Files at least this large are parsed by worker processes (one per core): below it, starting them
# costs more than it saves.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
# Chunks at least this large are read by the worker from the file rather than sent to it.
_RANGE_MIN = 1024 * 1024


class KaikkiSource(Source):
    """wiktextract JSONL files, streamed line by line (memory bounded by the longest accepted line)."""

    kind = "kaikki"
    suffixes = (".jsonl", ".jsonl.gz", ".jsonl.bz2", ".json", ".json.gz", ".json.bz2")
    # False: keep only what schema 1 kept (glosses, first example, forms), for a smaller, faster build.
    extras = True

    def __init__(self, path: Path, lang: str) -> None:
        super().__init__(path, lang)
        for f in self.files:
            head = sniff(f).lstrip(b"\xef\xbb\xbf \t\r\n")
            if head and not head.startswith(b"{"):
                first = head.split(b"\n", 1)[0][:60].decode("utf-8", errors="replace")
                raise SourceError(
                    f"{f} does not look like wiktextract JSONL (one JSON object per line); it starts with "
                    f"{first!r}. kaikki: expects the JSONL files from https://kaikki.org (e.g. "
                    f"kaikki.org-dictionary-English.jsonl[.gz]); for key<TAB>pos<TAB>definition lines use "
                    f"tsv:{path}, for an Open Dictionary folder use open-dictionary:{path}"
                )

    def read(self, sink: Sink, progress: Callable[[int], None]) -> str:
        for file, raw in self._hashed_files(sink, progress):
            done = 0

            def on_bytes(_: int, raw: object = raw) -> None:
                nonlocal done
                n = raw.bytes_read  # type: ignore[attr-defined]
                progress(n - done)
                done = n

            stream = open_decompressed(raw, file.name)  # type: ignore[arg-type]
            compressed = stream is not raw
            name = self.location(file)
            n_workers = workers()
            # a compressed file holds several times its size in text
            if n_workers > 1 and file.stat().st_size * (5 if compressed else 1) >= PARALLEL_MIN_BYTES:
                chunks = iter_chunks(stream, on_bytes=on_bytes, count_lines=False)
                with process_pool(n_workers) as pool:
                    self._read_parallel(chunks, name, sink, pool, 2 * n_workers, None if compressed else file)
            else:
                chunks = iter_chunks(stream, on_bytes=on_bytes)
                self._read_serial(chunks, name, sink)
        return self._content_hash()

    def _read_serial(self, chunks: Iterator[Chunk], name: str, sink: Sink) -> None:
        loader = _Loader(name, self.lang, sink, self.extras)
        next_no = 1
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except STREAM_ERRORS as exc:
                _truncated(sink, next_no, name, exc)
                return
            loader.chunk(chunk)
            next_no = chunk.no + chunk.n_lines

    def _read_parallel(
        self,
        chunks: Iterator[Chunk],
        name: str,
        sink: Sink,
        pool: Executor,
        in_flight: int,
        path: Path | None,
    ) -> None:
        """Chunks go to worker processes (at most `in_flight` pending) and come back in file order, where
        their record numbers are fixed. With `path` (an uncompressed file) workers read big chunks from it
        themselves."""
        pending: deque[Future[tuple[Sink, int]]] = deque()
        next_no = 1

        def take() -> None:
            nonlocal next_no
            part, n_lines = pending.popleft().result()
            sink.absorb(part, record_offset=next_no - 1)
            next_no += n_lines

        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except STREAM_ERRORS as exc:
                while pending:
                    take()
                _truncated(sink, next_no, name, exc)
                return
            if path is not None and not chunk.too_long and len(chunk.data) >= _RANGE_MIN:
                fut = pool.submit(
                    _work_range, path, name, self.lang, chunk.offset, len(chunk.data), self.extras
                )
            else:
                if isinstance(chunk.data, memoryview):  # views do not pickle
                    chunk = Chunk(chunk.no, chunk.offset, bytes(chunk.data), chunk.n_lines, chunk.too_long)
                fut = pool.submit(_work, name, self.lang, chunk, self.extras)
            pending.append(fut)
            if len(pending) >= in_flight:
                take()
        while pending:
            take()


def _truncated(sink: Sink, next_no: int, name: str, exc: Exception) -> None:
    # A truncated or corrupt compressed stream: what came before is kept; the break itself is recorded as
    # one more record so the accounting shows it.
    sink.reject(next_no, name, f"unreadable compressed stream: {exc}", b"")

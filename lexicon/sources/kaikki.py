"""`kaikki:` — wiktextract JSONL as published by kaikki.org (``.jsonl``, ``.jsonl.gz``, ``.jsonl.bz2``, a folder).

Each line is one record (a word, part of speech and etymology). Lines are decoded with msgspec into typed
structs that name only the fields the lexicon keeps, so the rest of a line (translations, sounds, ...;
most of its bytes) is skipped at C speed instead of being built into Python objects. A line that does not
decode or has wrong types is rejected with msgspec's message (which names the offending field) and its
line number and byte offset.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import msgspec

from lexicon.errors import SourceError
from lexicon.normalise import nested_gloss, normalise_gloss, normalise_pos
from lexicon.sources.base import (
    COMPRESSED_BLOCK,
    MAX_LINE_BYTES,
    Chunk,
    Line,
    Sink,
    Source,
    iter_chunks,
    iter_lines,
    open_decompressed,
    sniff,
)

__all__ = ["KaikkiSource"]

# Forms that are table headers or template names, not words.
_META_FORM_TAGS = frozenset({"table-tags", "inflection-template", "class", "romanization"})


class _Word(msgspec.Struct):
    word: str | None = None


class _Example(msgspec.Struct):
    text: str | None = None


class _Sense(msgspec.Struct):
    glosses: list[str] = []
    raw_glosses: list[str] = []
    tags: list[str] = []
    topics: list[str] = []
    form_of: list[_Word] = []
    alt_of: list[_Word] = []
    examples: list[_Example] = []


class _Form(msgspec.Struct):
    form: str = ""
    tags: list[str] = []


class _Record(msgspec.Struct):
    # word is optional in the struct so that wiktextract's redirect lines ({"title", "redirect"}) decode
    # on the fast path; a line with neither is rejected after decoding.
    word: str | None = None
    senses: list[_Sense] = []
    pos: str | None = None
    lang_code: str | None = None
    etymology_number: int | None = None
    redirects: list[str] = []
    forms: list[_Form] = []
    redirect: str | None = None


_DECODER = msgspec.json.Decoder(_Record)


def _decode_error(data: bytes) -> str:
    """Why a line does not decode into a record."""
    try:
        _DECODER.decode(data)
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8: {exc.reason} at byte {exc.start}"
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
    """Turns decoded records of one kaikki file into sink rows."""

    def __init__(self, source: Source, file: Path, sink: Sink) -> None:
        self.source = source
        self.file = file
        self.sink = sink
        self.lang = source.lang

    def chunk(self, chunk: Chunk) -> None:
        """A run of whole lines: one msgspec call for all of them, per-line only if that fails."""
        data = chunk.data
        if not chunk.too_long and len(data) <= MAX_LINE_BYTES:
            try:
                records = _DECODER.decode_lines(data)
            except (msgspec.DecodeError, UnicodeDecodeError):
                records = None
            # decode_lines skips blank lines: a count that differs sends the chunk down the per-line path
            if records is not None and len(records) == chunk.n_lines:
                for i, rec in enumerate(records):
                    why = self.record(chunk.no + i, rec)
                    if why:
                        off, raw = _nth_line(bytes(data), i)
                        self.sink.reject(
                            chunk.no + i, self.source.location(self.file, chunk.offset + off), why, raw
                        )
                return
        for line in iter_lines(
            io.BytesIO(bytes(data)), block_size=len(data) + 1, first_no=chunk.no, first_offset=chunk.offset
        ):
            self.line(line)

    def line(self, line: Line) -> None:
        loc = self.source.location
        if line.too_long:
            self.sink.reject(line.no, loc(self.file, line.offset), "line over 10 MiB", line.data)
            return
        if not line.data.strip():
            self.sink.filter("blank_line")
            return
        try:
            rec = _DECODER.decode(line.data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.sink.reject(line.no, loc(self.file, line.offset), _decode_error(line.data), line.data)
            return
        why = self.record(line.no, rec)
        if why:
            self.sink.reject(line.no, loc(self.file, line.offset), why, line.data)

    def record(self, no: int, rec: _Record) -> str | None:
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
        if self.lang != "*" and rec.lang_code != self.lang:
            sink.filter("lang")
            return None
        if not rec.senses:
            sink.filter("no_senses")
            return None
        kept = []
        seen: set[str] = set()
        for s in rec.senses:
            raw = nested_gloss(s.glosses) or nested_gloss(s.raw_glosses)
            if not raw:
                continue
            g = normalise_gloss(raw, s.tags)
            if not g.text or g.text in seen:
                continue
            seen.add(g.text)
            kept.append((s, g))
        if not kept:
            sink.filter("empty_gloss")
            return None
        eid = sink.entry(no, word, rec.lang_code, normalise_pos(rec.pos), rec.etymology_number, rec.redirects)
        for f in rec.forms:
            if f.form and f.form != word and not _META_FORM_TAGS.intersection(f.tags):
                sink.form(eid, f.form, f.tags)
        for i, (s, g) in enumerate(kept):
            form_of = next((w.word for w in s.form_of if w.word), None) or g.form_of
            alt_of = next((w.word for w in s.alt_of if w.word), None) or g.alt_of
            example = next((e.text for e in s.examples if e.text), None)
            raw_gloss = nested_gloss(s.raw_glosses) or nested_gloss(s.glosses)
            sink.sense(eid, i, g.text, raw_gloss, g.tags, s.topics, form_of, alt_of, example)
        sink.loaded_record()
        return None


class KaikkiSource(Source):
    """wiktextract JSONL files, streamed line by line (memory bounded by the longest accepted line)."""

    kind = "kaikki"
    suffixes = (".jsonl", ".jsonl.gz", ".jsonl.bz2", ".json", ".json.gz", ".json.bz2")

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
            loader = _Loader(self, file, sink)
            chunks = iter_chunks(
                stream, on_bytes=on_bytes, block_size=COMPRESSED_BLOCK if compressed else None
            )
            next_no = 1
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except (OSError, EOFError, ValueError) as exc:
                    # A truncated or corrupt compressed stream: what came before is kept; the break itself
                    # is recorded as one more record so the accounting shows it.
                    sink.reject(next_no, self.location(file), f"unreadable compressed stream: {exc}", b"")
                    break
                loader.chunk(chunk)
                next_no = chunk.no + chunk.n_lines
        return self._content_hash()

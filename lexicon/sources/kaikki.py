"""`kaikki:` — wiktextract JSONL as published by kaikki.org (``.jsonl``, ``.jsonl.gz``, ``.jsonl.bz2``, a folder).

Each line is one record (a word, part of speech and etymology). Lines are decoded with msgspec into typed
structs that name only the fields the lexicon keeps, so the rest of a line (translations, sounds, ...;
most of its bytes) is skipped at C speed instead of being built into Python objects. A line that does not
decode or has wrong types is rejected with msgspec's message (which names the offending field) and its
line number and byte offset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import msgspec

from lexicon.errors import SourceError
from lexicon.normalise import nested_gloss, normalise_gloss, normalise_pos
from lexicon.sources.base import COMPRESSED_BLOCK, Line, Sink, Source, iter_lines, open_decompressed, sniff

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
    word: str
    senses: list[_Sense] = []
    pos: str | None = None
    lang_code: str | None = None
    etymology_number: int | None = None
    redirects: list[str] = []
    forms: list[_Form] = []


_DECODER = msgspec.json.Decoder(_Record)


def _why_invalid(data: bytes) -> str | None:
    """For a line the typed decoder refused: 'redirect' if it is a wiktextract redirect page, else None."""
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if isinstance(obj, dict) and "redirect" in obj and "word" not in obj:
        return "redirect"
    return None


def _record(source: Source, file: Path, line: Line, sink: Sink, lang: str) -> None:
    no = line.no
    if line.too_long:
        sink.reject(no, source.location(file, line.offset), "line over 10 MiB", line.data)
        return
    data = line.data
    if not data.strip():
        sink.filter("blank_line")
        return
    try:
        rec = _DECODER.decode(data)
    except UnicodeDecodeError as exc:
        sink.reject(
            no, source.location(file, line.offset), f"invalid UTF-8: {exc.reason} at byte {exc.start}", data
        )
        return
    except msgspec.ValidationError as exc:
        if _why_invalid(data) == "redirect":
            sink.filter("redirect")
        else:
            sink.reject(no, source.location(file, line.offset), f"wrong type: {exc}", data)
        return
    except msgspec.DecodeError as exc:
        sink.reject(no, source.location(file, line.offset), f"invalid JSON: {exc}", data)
        return
    word = rec.word.strip() if rec.word else ""
    if not word:
        sink.reject(no, source.location(file, line.offset), "empty word", data)
        return
    if rec.lang_code is None:
        sink.reject(no, source.location(file, line.offset), "missing lang_code", data)
        return
    if lang != "*" and rec.lang_code != lang:
        sink.filter("lang")
        return
    if not rec.senses:
        sink.filter("no_senses")
        return
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
        return
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
            it = iter_lines(stream, on_bytes=on_bytes, block_size=COMPRESSED_BLOCK if compressed else None)
            last = 0
            try:
                for line in it:
                    last = line.no
                    _record(self, file, line, sink, self.lang)
            except (OSError, EOFError, ValueError) as exc:
                # A truncated or corrupt compressed stream: what came before is kept; the break itself is
                # recorded as one more record so the accounting shows it.
                sink.reject(last + 1, self.location(file), f"unreadable compressed stream: {exc}", b"")
        return self._content_hash()

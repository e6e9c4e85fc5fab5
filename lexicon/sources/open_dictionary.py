"""`open-dictionary:` — the Open Dictionary JSON tree (``api/<a>/<ab>.json``), or one of its files.

Each file maps words to ``{word, etymologies: [{partsOfSpeech: [{partOfSpeech, senses: [{sense, date,
examples}]}]}]}``. A record is one word: it becomes one entry per (etymology, part of speech). A file is
decoded to ``{word: raw JSON}`` first and each word is then decoded on its own, so one malformed word is
rejected alone; a file that is not valid JSON at all is rejected as one record. In a folder, the tree's word index ``valid_words.json`` is skipped.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import msgspec
from definitionemb.core.fileio import file_sha256
from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.normalise import normalise_gloss, normalise_pos, synonym_of
from definitionemb.lexicon.sources.base import Source, lang_set
from definitionemb.lexicon.sources.lines import BOM
from definitionemb.lexicon.sources.sink import Columns, Sink
from definitionemb.lexicon.sources.streams import STREAM_ERRORS, open_decompressed, sniff
from definitionemb.lexicon.sources.workers import process_pool, workers

__all__ = ["OpenDictionarySource"]


class _Sense(msgspec.Struct):
    sense: str = ""
    examples: list[str] = []


class _Pos(msgspec.Struct):
    partOfSpeech: str | None = None  # noqa: N815 - the source's field name
    senses: list[_Sense] = []


class _Etymology(msgspec.Struct):
    partsOfSpeech: list[_Pos] = []  # noqa: N815


class _Word(msgspec.Struct):
    etymologies: list[_Etymology]
    word: str | None = None


# The tree's word index ({word: 1}), not definitions.
_INDEX_FILE = "valid_words.json"

_FILE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_WORD = msgspec.json.Decoder(_Word)


class OpenDictionarySource(Source):
    """The Open Dictionary tree; its content is English, so another `lang` filters every word."""

    kind = "open-dictionary"
    suffixes = (".json", ".json.gz", ".json.bz2")

    def _files(self) -> list[Path]:
        files = super()._files()
        if self.path.is_dir():
            files = [f for f in files if f.name != _INDEX_FILE]
        return files

    def __init__(self, path: Path, lang: str) -> None:
        super().__init__(path, lang)
        head = sniff(self.files[0], 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head and not head.startswith(b"{"):
            raise SourceError(
                f"{self.files[0]} does not look like an Open Dictionary file (a JSON object of words); "
                f"open-dictionary: expects the api/ folder of https://github.com/mhollingshead/open-dictionary "
                f"or one of its <ab>.json files"
            )

    def read(self, sink: Sink, progress: Callable[[int], None]) -> str:
        n_workers = workers()
        if n_workers > 1 and len(self.files) > 1 and self.total_bytes >= PARALLEL_MIN_BYTES:
            return self._read_parallel(sink, progress, n_workers)
        for file, raw in self._hashed_files(sink, progress):
            data: bytes | Exception
            try:
                data = open_decompressed(raw, file.name).read()  # type: ignore[arg-type]
            except STREAM_ERRORS as exc:
                data = exc
            progress(file.stat().st_size)
            _parse_file(data, self.location(file), self.lang, sink)
        return self._content_hash()

    def _read_parallel(self, sink: Sink, progress: Callable[[int], None], n_workers: int) -> str:
        """Workers parse whole files while this process hashes them; results are taken in file order."""
        hashes: list[str] = []
        pending: deque[tuple[Path, Future[Sink]]] = deque()

        def take() -> None:
            file, fut = pending.popleft()
            sink.absorb(fut.result(), record_offset=sink.records)
            progress(file.stat().st_size)

        with process_pool(n_workers) as pool:
            for file in self.files:
                pending.append((file, pool.submit(_parse_path, file, self.location(file), self.lang)))
                hashes.append(file_sha256(file))
                while len(pending) > 4 * n_workers:
                    take()
            while pending:
                take()
        self._hashes = hashes
        return self._content_hash()


# Trees at least this large are parsed by worker processes (the whole Open Dictionary is 75 MB).
PARALLEL_MIN_BYTES = 8 * 1024 * 1024


def _parse_path(path: Path, name: str, lang: str) -> Sink:
    """Worker process: one file into a private sink (ids and record numbers from 1)."""
    sink = Sink(_no_flush, batch_senses=1 << 62)
    try:
        with open(path, "rb") as raw, open_decompressed(raw, path.name) as f:
            data: bytes | Exception = f.read()
    except STREAM_ERRORS as exc:
        data = exc
    _parse_file(data, name, lang, sink)
    return sink


def _no_flush(cols: Columns) -> None:
    raise AssertionError("a worker sink never flushes")  # batch_senses is unreachable


def _parse_file(data: bytes | Exception, name: str, lang: str, sink: Sink) -> None:
    """The words of one file (or, for an unreadable or invalid file, one reject)."""
    if isinstance(data, Exception):
        sink.reject(sink.records + 1, name, f"unreadable file: {data}", b"")
        return
    try:
        words = _FILE.decode(data.removeprefix(BOM))
    except RecursionError:
        sink.reject(sink.records + 1, name, "invalid JSON file: nested too deeply", data)
        return
    except UnicodeDecodeError as exc:
        sink.reject(sink.records + 1, name, f"invalid UTF-8 file: {exc.reason}", data)
        return
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        sink.reject(sink.records + 1, name, f"invalid JSON file: {exc}", data)
        return
    for key, value in words.items():
        _word(name, lang, key, value, sink)


def _word(name: str, lang: str, key: str, value: msgspec.Raw, sink: Sink) -> None:
    no = sink.records + 1
    loc = f"{name}#{key}"
    try:
        w = _WORD.decode(value)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        sink.reject(no, loc, f"wrong type: {exc}", bytes(value))
        return
    except RecursionError:
        sink.reject(no, loc, "nested too deeply", bytes(value))
        return
    word = (w.word if w.word is not None else key).strip()
    if not word:
        sink.reject(no, loc, "empty word", bytes(value))
        return
    langs = lang_set(lang)
    if langs is not None and "en" not in langs:
        sink.filter("lang")
        return
    multi = len(w.etymologies) > 1
    entries = []
    any_sense = False
    seen: set[str] = set()  # identical glosses of one word are kept once
    for e_no, ety in enumerate(w.etymologies, start=1):
        for p in ety.partsOfSpeech:
            kept = []
            for s in p.senses:
                any_sense = True
                g = normalise_gloss(s.sense)
                if g.text and g.text not in seen:
                    seen.add(g.text)
                    kept.append((s, g))
            if kept:
                entries.append((e_no if multi else None, p.partOfSpeech, kept))
    if not entries:
        sink.filter("empty_gloss" if any_sense else "no_senses")
        return
    for ety_no, pos, senses in entries:
        eid = sink.entry(no, word, "en", normalise_pos(pos), ety_no, None)
        for i, (s, g) in enumerate(senses):
            examples = [x for x in s.examples if x and x.strip()]
            example = examples[0] if examples else None
            sid = sink.sense(
                eid, i, g.text, s.sense, g.tags, None, g.form_of, g.alt_of, example, examples=examples
            )
            target = synonym_of(g.text)
            if target:
                sink.relations(eid, sid, "synonyms", json.dumps([{"word": target}], ensure_ascii=False))
    sink.loaded_record()

"""`tsv:` — user definitions, one per line: ``key<TAB>pos<TAB>definition``.

The key is a word or a tokenizer piece (the authors wrote definitions for BPE pieces by hand); it is
kept verbatim apart from the line ending, since a piece's leading space can matter. Lines with the same
(key, pos) become the senses of one entry, in file order. Every sense is ``user_defined``, which the
aligner ranks before Wiktionary's for the keys it names. A first line ``key<TAB>pos<TAB>definition`` is a
header and filtered as such.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.normalise import Gloss, normalise_gloss, normalise_pos
from definitionemb.lexicon.sources.base import Source
from definitionemb.lexicon.sources.lines import iter_lines
from definitionemb.lexicon.sources.sink import Sink
from definitionemb.lexicon.sources.streams import open_decompressed, sniff

__all__ = ["TsvSource"]

_HEADER = ("key", "pos", "definition")


class TsvSource(Source):
    """A small file of hand-written definitions (read whole: entries group lines by key and pos)."""

    kind = "tsv"
    suffixes = (".tsv", ".txt", ".tsv.gz", ".tsv.bz2")

    def __init__(self, path: Path, lang: str) -> None:
        super().__init__(path, lang)
        for f in self.files:
            head = sniff(f).lstrip(b"\xef\xbb\xbf \r\n")
            first = head.split(b"\n", 1)[0]
            if head.startswith((b"{", b"[")) or (first and b"\t" not in first):
                raise SourceError(
                    f"{f} is not key<TAB>pos<TAB>definition text (first line {first[:60]!r}); tsv: expects "
                    f"one definition per line with tab-separated key, part of speech and definition "
                    f"(pos may be empty); for kaikki JSONL use kaikki:{path}"
                )

    def read(self, sink: Sink, progress: Callable[[int], None]) -> str:
        groups: dict[tuple[str, str | None], tuple[int, list[tuple[str, Gloss]]]] = {}
        for file, raw in self._hashed_files(sink, progress):
            stream = open_decompressed(raw, file.name)  # type: ignore[arg-type]
            for line in iter_lines(stream, on_bytes=progress):
                loc = self.location(file, line.offset)
                if line.too_long:
                    sink.reject(line.no, loc, "line over 10 MiB", line.data)
                    continue
                try:
                    text = line.data.decode("utf-8").removesuffix("\r")
                except UnicodeDecodeError as exc:
                    sink.reject(line.no, loc, f"invalid UTF-8: {exc.reason} at byte {exc.start}", line.data)
                    continue
                if line.no == 1:
                    text = text.removeprefix("\ufeff")
                if not text.strip():
                    sink.filter("blank_line")
                    continue
                parts = text.split("\t", 2)
                if len(parts) != 3:
                    sink.reject(line.no, loc, "expected key<TAB>pos<TAB>definition (3 fields)", line.data)
                    continue
                key, pos, definition = parts
                if line.no == 1 and tuple(p.strip().lower() for p in parts) == _HEADER:
                    sink.filter("header")
                    continue
                if not key.strip():
                    sink.reject(line.no, loc, "empty key", line.data)
                    continue
                g = normalise_gloss(definition)
                if not g.text:
                    sink.filter("empty_gloss")
                    continue
                k = (key, normalise_pos(pos))
                entry = groups.setdefault(k, (line.no, []))
                if any(g.text == prev.text for _, prev in entry[1]):
                    sink.filter("duplicate")
                    continue
                entry[1].append((definition, g))
                sink.loaded_record()
        for (k_word, k_pos), (first_no, senses) in groups.items():
            eid = sink.entry(first_no, k_word, self.lang.split(",")[0].strip(), k_pos, None, None)
            for i, (raw_def, gl) in enumerate(senses):
                sink.sense(eid, i, gl.text, raw_def, gl.tags, None, gl.form_of, gl.alt_of, None, True)
        return self._content_hash()

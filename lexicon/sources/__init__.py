"""Source readers, one module per input format, registered by kind (the part before ``:`` of a source).

``open_source("kaikki:path/file.jsonl.gz", lang="en")`` returns a validated :class:`Source`; anything
that cannot be read (unknown kind, missing path, a CSV given as kaikki, ...) raises :class:`SourceError`
with what to do instead.
"""

from __future__ import annotations

from pathlib import Path

from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources.base import Source
from definitionemb.lexicon.sources.kaikki import KaikkiSource
from definitionemb.lexicon.sources.open_dictionary import OpenDictionarySource
from definitionemb.lexicon.sources.sink import Sink
from definitionemb.lexicon.sources.tsv import TsvSource
from definitionemb.lexicon.sources.wiktionary_dump import WiktionaryDumpSource

__all__ = ["KINDS", "Sink", "Source", "open_source", "parse_spec"]

KINDS: dict[str, type[Source]] = {
    cls.kind: cls for cls in (KaikkiSource, OpenDictionarySource, TsvSource, WiktionaryDumpSource)
}


def parse_spec(spec: str) -> tuple[str, Path]:
    """Split ``"kind:path"``; refuse an unknown kind or a bare path with the list of kinds."""
    kinds = ", ".join(KINDS)
    kind, sep, path = spec.partition(":")
    if sep and kind in KINDS and not path.strip():
        raise SourceError(f"source {spec!r} has no path; write {kind}:PATH (a file or a folder of files)")
    if not sep or not path:
        raise SourceError(
            f"source {spec!r} has no kind; write KIND:PATH with KIND one of {kinds} "
            f"(e.g. kaikki:kaikki.org-dictionary-English.jsonl.gz)"
        )
    if kind not in KINDS:
        raise SourceError(f"unknown source kind {kind!r} in {spec!r}; use one of {kinds}")
    return kind, Path(path).expanduser()


def open_source(spec: str, lang: str = "en") -> Source:
    """A validated reader for ``"kind:path"``."""
    kind, path = parse_spec(spec)
    return KINDS[kind](path, lang)

"""`wiktionary-dump:` — a ``pages-articles.xml[.bz2]`` dump, extracted by the `wiktextract` package.

Parsing wikitext is wiktextract's job; this reader only runs it (``wiktwords``) into a temporary JSONL
file and loads that with the kaikki reader, keeping the dump's sha256 as the source identity. wiktextract
is an optional dependency and is not installed with definitionemb: PyPI's 1.99.7 imports NLTK's Brown
corpus at import time, which cannot be downloaded on offline machines. Where it does not import, the
source is refused up front with the reason and the alternative (kaikki.org's pre-extracted JSONL).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources.base import Source
from definitionemb.lexicon.sources.kaikki import KaikkiSource
from definitionemb.lexicon.sources.sink import Sink
from definitionemb.lexicon.sources.streams import sniff

__all__ = ["WiktionaryDumpSource", "wiktextract_unavailable"]

_LANG_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian"}


def wiktextract_unavailable() -> str | None:
    """Why wiktextract cannot be used here, or None when it imports."""
    try:
        import wiktextract  # noqa: F401
    except ImportError as exc:
        return f"the wiktextract package is not installed ({exc})"
    except Exception as exc:  # NLTK raises LookupError for its missing corpus, others vary
        return f"the wiktextract package does not import ({type(exc).__name__}: {str(exc).strip()[:300]})"
    return None


class WiktionaryDumpSource(Source):
    """A Wiktionary XML dump, run through wiktextract into JSONL, then read as kaikki JSONL."""

    kind = "wiktionary-dump"
    suffixes = (".xml", ".xml.bz2")

    def __init__(self, path: Path, lang: str) -> None:
        super().__init__(path, lang)
        if len(self.files) != 1:
            raise SourceError(
                f"wiktionary-dump:{path} must be one pages-articles.xml[.bz2] file, not a folder"
            )
        head = sniff(self.files[0], 4096).lstrip()
        if not head.startswith(b"<"):
            raise SourceError(
                f"{self.files[0]} is not a MediaWiki XML dump; wiktionary-dump: expects "
                f"enwiktionary-*-pages-articles.xml.bz2 from https://dumps.wikimedia.org"
            )
        why = wiktextract_unavailable()
        if why is not None:
            raise SourceError(
                f"cannot read wiktionary-dump:{path}: {why}. PyPI's wiktextract (1.99.7) needs NLTK's Brown "
                f"corpus at import time, which cannot be downloaded on an offline machine, and definitionemb "
                f"does not re-implement it. Use kaikki.org's pre-extracted wiktextract JSONL instead: download "
                f"https://kaikki.org/dictionary/rawdata.html (e.g. kaikki.org-dictionary-English.jsonl.gz) "
                f"and build with --source kaikki:PATH"
            )

    def read(self, sink: Sink, progress: Callable[[int], None]) -> str:
        wiktwords = shutil.which("wiktwords") or str(Path(sys.executable).with_name("wiktwords"))
        with tempfile.TemporaryDirectory(prefix="defemb-wiktextract-") as tmp:
            out = Path(tmp) / "extract.jsonl"
            lang_name = _LANG_NAMES.get(self.lang, "English")
            cmd = [wiktwords, "--all", "--language", lang_name, "--out", str(out), str(self.files[0])]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not out.exists():
                raise SourceError(
                    f"wiktextract failed on {self.files[0]} (exit {proc.returncode}): {proc.stderr[-2000:]}"
                )
            KaikkiSource(out, self.lang).read(sink, lambda n: None)
        progress(self.total_bytes)
        h = hashlib.sha256()
        with open(self.files[0], "rb") as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        return h.hexdigest()

"""`wiktionary-dump:` — a ``pages-articles.xml[.bz2]`` dump, extracted by the `wiktextract` package.

Parsing wikitext is wiktextract's job; this reader runs its `wiktwords` command into a JSONL file and
loads that with the kaikki reader, so a dump gets the same accounting as every source (records,
loaded, rejected with reasons, filtered), keyed by the dump's sha256. wiktextract is an optional extra
(`make dump-deps`: the pinned `wiktextract`/`wikitextprocessor` and NLTK's Brown corpus, which
wiktextract 1.99.7 reads at import time and cannot download offline).

wiktwords runs in a private working folder (it writes `temp.*` debug files into its current folder),
with its own worker processes (`DEFEMB_DUMP_WORKERS`, default: the CPU count, at most 8), and its
output — about 0.4 KB of debug lines per page, gigabytes for a full dump — goes to a log file in that
folder, never into memory. The progress bar follows the "N/M pages" lines of that log. On failure the
folder is kept and the error names the log.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources.base import Source
from definitionemb.lexicon.sources.kaikki import KaikkiSource
from definitionemb.lexicon.sources.sink import Sink
from definitionemb.lexicon.sources.streams import sniff

__all__ = ["WiktionaryDumpSource", "dump_workers", "wiktextract_unavailable"]

_LANG_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian"}
_PAGES = re.compile(rb"(\d+)/(\d+) pages")
_INSTALL = "run `make dump-deps` (pinned wiktextract and NLTK's Brown corpus into the virtualenv)"


def _brown_installed() -> bool:
    """NLTK's Brown corpus where NLTK looks (`sys.prefix/nltk_data` first), without importing NLTK."""
    roots = [Path(sys.prefix) / "nltk_data", Path.home() / "nltk_data"]
    roots += [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    roots += [Path(p) / "nltk_data" for p in ("/usr/share", "/usr/local/share", "/usr/lib", "/usr/local/lib")]
    return any((r / "corpora" / "brown" / "cats.txt").is_file() for r in roots)


def wiktextract_unavailable() -> str | None:
    """Why `wiktwords` cannot run here, or None. Checked without importing wiktextract (seconds of
    start-up and the whole Brown corpus in memory); the run itself is a separate process."""
    for module in ("wiktextract", "wikitextprocessor"):
        if find_spec(module) is None:
            return f"the {module} package is not installed"
    if find_spec("pkg_resources") is None:
        return "wikitextprocessor 0.4.96 imports pkg_resources, which setuptools >= 81 no longer ships"
    if not _brown_installed():
        return "NLTK's Brown corpus, which wiktextract reads at import time, is not installed"
    return None


def dump_workers() -> int:
    """wiktwords' worker processes: `DEFEMB_DUMP_WORKERS`, else the CPU count capped at 8."""
    raw = os.environ.get("DEFEMB_DUMP_WORKERS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise SourceError(f"DEFEMB_DUMP_WORKERS must be a positive integer, got {raw!r}")
        return int(raw)
    return max(1, min(os.cpu_count() or 1, 8))


class WiktionaryDumpSource(Source):
    """A Wiktionary XML dump, run through wiktextract into JSONL, then read as kaikki JSONL.

    After `read`, `pages` holds the number of pages wiktextract reported processing (0 if it printed
    none) and `extract_seconds` the time wiktwords ran.
    """

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
                f"cannot read wiktionary-dump:{path}: {why}; {_INSTALL}, or build from kaikki.org's "
                f"pre-extracted JSONL instead (--source kaikki:kaikki.org-dictionary-English.jsonl.gz)"
            )
        self.workers = dump_workers()
        self.pages = 0
        self.extract_seconds = 0.0

    def _command(self, out: Path) -> list[str]:
        wiktwords = Path(sys.executable).with_name("wiktwords")
        exe = str(wiktwords) if wiktwords.exists() else (shutil.which("wiktwords") or "wiktwords")
        lang_name = _LANG_NAMES.get(self.lang, "English")
        return [
            exe,
            "--all",
            "--language",
            lang_name,
            "--num-threads",
            str(self.workers),
            "--out",
            str(out),
            str(self.files[0]),
        ]

    def _extract(self, work: Path, progress: Callable[[int], None]) -> Path:
        """Run wiktwords in `work`; its output into `work/wiktextract.log`, followed for progress."""
        out = work / "extract.jsonl"
        log = work / "wiktextract.log"
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false"}
        shown = 0
        pos = 0
        tail = b""
        t0 = time.perf_counter()
        with log.open("wb") as sink_log:
            proc = subprocess.Popen(
                self._command(out),
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=sink_log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its worker processes go with it when the build is stopped
            )
            try:
                with log.open("rb") as follow:
                    while True:
                        done = proc.poll() is not None
                        follow.seek(pos)
                        chunk = follow.read(1 << 20)  # only what is new, never the whole log
                        pos += len(chunk)
                        complete, _, tail = (tail + chunk).rpartition(b"\n")
                        tail = tail[-4096:]  # a progress line is short; a runaway line is not kept
                        found = _PAGES.findall(complete)
                        if found:
                            n, total = (int(x) for x in found[-1])
                            self.pages = total
                            want = int(self.total_bytes * min(n, total) / max(total, 1))
                            if want > shown:
                                progress(want - shown)
                                shown = want
                        if done and not chunk:
                            break
                        if not chunk:
                            time.sleep(0.25)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.extract_seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not out.is_file():
            raise SourceError(
                f"wiktextract failed on {self.files[0]} (exit {proc.returncode}); its log is {log}"
            )
        if shown < self.total_bytes:
            progress(self.total_bytes - shown)
        return out

    def read(self, sink: Sink, progress: Callable[[int], None]) -> str:
        work = Path(tempfile.mkdtemp(prefix="defemb-wiktextract-"))
        out = self._extract(work, progress)  # on failure the folder stays, for its log
        try:
            KaikkiSource(out, self.lang).read(sink, lambda n: None)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        h = hashlib.sha256()
        with open(self.files[0], "rb") as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        return h.hexdigest()

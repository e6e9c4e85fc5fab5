"""The base of every source reader: a validated input of one kind, read once with its content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from definitionemb.core.fileio import file_sha256
from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources.sink import Sink
from definitionemb.lexicon.sources.streams import HashingReader

__all__ = ["Source", "combine_hashes", "lang_set"]


def combine_hashes(root: Path, files: list[Path], hashes: list[str]) -> str:
    """The sha256 of a source: the file's own sha256, or for a folder a hash of (relative path, sha256)."""
    if len(files) == 1 and files[0] == root:
        return hashes[0]
    h = hashlib.sha256()
    for f, d in zip(files, hashes, strict=True):
        h.update(f"{f.relative_to(root).as_posix()}\0{d}\n".encode())
    return h.hexdigest()


def lang_set(lang: str) -> frozenset[str] | None:
    """The language codes a build keeps: ``"*"`` keeps all (None), else the comma-separated codes."""
    if lang.strip() == "*":
        return None
    return frozenset(c.strip() for c in lang.split(",") if c.strip())


class Source:
    """A readable input of one kind. Subclasses set `kind`, validate in ``__init__`` and implement `read`.

    Construction refuses what cannot be read (missing path, wrong format) with a :class:`SourceError`
    that says what to do, before the build touches the database.
    """

    kind: str = ""
    suffixes: tuple[str, ...] = ()

    def __init__(self, path: Path, lang: str) -> None:
        try:
            self.path = path.resolve(strict=True)
        except FileNotFoundError:
            raise SourceError(f"{self.kind}:{path} does not exist; give an existing file or folder") from None
        except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13), EACCES
            raise SourceError(
                f"{self.kind}:{path} cannot be opened ({exc}); give a readable file or folder"
            ) from exc
        self.lang = lang
        try:
            self.files = self._files()
        except OSError as exc:
            raise SourceError(
                f"{self.kind}:{path} cannot be listed ({exc}); give a readable file or folder"
            ) from exc
        if not self.files:
            raise SourceError(
                f"{self.kind}:{path} holds no {'/'.join(self.suffixes)} file; "
                f"point {self.kind}: at such a file or a folder of them"
            )
        self.total_bytes = sum(f.stat().st_size for f in self.files)

    @property
    def uri(self) -> str:
        return str(self.path)

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.rglob("*") if p.name.endswith(self.suffixes) and p.is_file())
        if not self.path.is_file():
            raise SourceError(
                f"{self.kind}:{self.path} is neither a file nor a folder; give a file or folder"
            )
        return [self.path]

    def location(self, file: Path, offset: int | None = None) -> str:
        """A reject's location: the file (relative inside a folder source) and byte offset."""
        name = file.relative_to(self.path).as_posix() if file != self.path else file.name
        return name if offset is None else f"{name}@{offset}"

    def sha256(self) -> str:
        """Content hash computed up front (one extra read of the input)."""
        return combine_hashes(self.path, self.files, [file_sha256(f) for f in self.files])

    def read(self, sink: Sink, progress: Callable[[int], None]) -> str:
        """Feed every record to `sink`; call `progress(n_bytes)` as input is consumed; return the sha256."""
        raise NotImplementedError

    def _hashed_files(
        self, sink: Sink, progress: Callable[[int], None]
    ) -> Iterator[tuple[Path, HashingReader]]:
        """Open each file through a HashingReader; collect the hashes for :meth:`read`'s return value."""
        self._hashes: list[str] = []
        with ThreadPoolExecutor(max_workers=1) as pool:
            for f in self.files:
                h = hashlib.sha256()
                r = HashingReader(f, h, pool)
                try:
                    yield f, r
                    r.drain()
                finally:
                    r.close()
                self._hashes.append(h.hexdigest())

    def _content_hash(self) -> str:
        return combine_hashes(self.path, self.files, self._hashes)

"""Reading source files: decompression that keeps every byte before damage, hashing while reading.

A truncated or corrupt ``.gz``/``.bz2`` must not cost the good data before the break: the decompressors
here hand out everything they decoded up to the damaged byte and raise only when the caller asks for
more (``gzip.GzipFile`` raises before returning the last block it was decoding, which loses up to a read
block of good lines, or a whole small file).
"""

from __future__ import annotations

import bz2
import io
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, cast

from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources.lines import BLOCK

__all__ = [
    "COMPRESSED_BLOCK",
    "STREAM_ERRORS",
    "HashingReader",
    "TruncatedStream",
    "open_decompressed",
    "sniff",
]

# Compressed bytes fed to the decompressor at a time: small enough that even a maximally compressed
# block (deflate's ratio is at most ~1000:1) decodes into bounded memory.
COMPRESSED_BLOCK = 256 * 1024


class TruncatedStream(EOFError):
    """A compressed stream that ends before its end-of-stream marker (a cut download)."""


# What reading a truncated, corrupt or unreadable (compressed) file raises.
STREAM_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, ValueError, zlib.error)


class HashingReader(io.RawIOBase):
    """A binary file that feeds everything read through sha256 on a worker thread.

    hashlib releases the GIL on large buffers, so on two cores hashing overlaps with parsing and costs
    almost no wall time; at most two chunks are in flight, so memory stays bounded.
    """

    def __init__(self, path: Path, hasher: Any, pool: ThreadPoolExecutor) -> None:
        super().__init__()
        self._f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._h = hasher
        self._pool = pool
        self._last: Future[None] | None = None
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)
        if n:
            chunk = bytes(memoryview(b)[:n])
            self._submit(chunk)
            self.bytes_read += n
        return n or 0

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        if data:
            self._submit(data)
            self.bytes_read += len(data)
        return data

    def _submit(self, data: bytes) -> None:
        if self._last is not None:
            self._last.result()
        self._last = self._pool.submit(self._h.update, data)

    def drain(self) -> None:
        """Read the rest of the file into the hash (a reader that stopped early still hashes it all)."""
        while self.read(BLOCK):
            pass
        if self._last is not None:
            self._last.result()
            self._last = None

    def close(self) -> None:
        self._f.close()
        super().close()


class _Decompressed(io.RawIOBase):
    """A gzip or bz2 stream decoded incrementally: every byte decoded before damage is returned, and the
    error (:class:`TruncatedStream`, ``zlib.error``, ``OSError``) is raised only after it. Concatenated
    members (``cat a.gz b.gz``) are read as one stream, as gzip and bzip2 themselves do."""

    def __init__(self, raw: IO[bytes], kind: str) -> None:
        super().__init__()
        self._raw = raw
        self._kind = kind
        self._d: Any = self._new()
        self._out = bytearray()
        self._error: BaseException | None = None
        self._done = False
        self._fed = False  # whether the current member has been fed any input

    def _new(self) -> Any:
        return zlib.decompressobj(zlib.MAX_WBITS | 16) if self._kind == "gz" else bz2.BZ2Decompressor()

    def readable(self) -> bool:
        return True

    def _fill(self, want: int) -> None:
        """Decode until `want` bytes are buffered, the stream ends, or an error is held back."""
        while len(self._out) < want and not self._done and self._error is None:
            data = self._raw.read(COMPRESSED_BLOCK)
            if not data:
                if self._fed and not self._d.eof:
                    self._error = TruncatedStream(
                        f"the {self._kind} stream ends before its end marker: the file is truncated"
                    )
                self._done = True
                break
            try:
                while data:
                    if self._d.eof:  # the next member of a concatenated file
                        self._d = self._new()
                    self._fed = True
                    self._out += self._d.decompress(data)
                    data = self._d.unused_data if self._d.eof else b""
            except (zlib.error, OSError, EOFError, ValueError) as exc:
                self._error = exc

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            self._fill(1 << 62)
            if self._error is not None:
                raise self._error  # a whole-file read wants all of it or the reason why not
            out = bytes(self._out)
            self._out.clear()
            return out
        self._fill(size)
        if not self._out and self._error is not None:
            raise self._error
        if len(self._out) <= size:
            out = bytes(self._out)
            self._out.clear()
        else:
            out = bytes(self._out[:size])
            del self._out[:size]
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        memoryview(b)[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_decompressed(raw: IO[bytes], name: str) -> IO[bytes]:
    """Wrap `raw` in a gzip/bz2 decoder when `name` says so (see :class:`_Decompressed`)."""
    if name.endswith(".gz"):
        return cast(IO[bytes], _Decompressed(raw, "gz"))
    if name.endswith(".bz2"):
        return cast(IO[bytes], _Decompressed(raw, "bz2"))
    return raw


def sniff(path: Path, n: int = 65536) -> bytes:
    """The first `n` decompressed bytes of `path` (fewer before damage), refusing unreadable files."""
    try:
        with open(path, "rb") as raw, open_decompressed(raw, path.name) as f:
            return f.read(n)
    except STREAM_ERRORS as exc:
        raise SourceError(f"{path} cannot be read ({exc}); check that the file is complete") from exc

"""What every source reader shares: the record sink, bounded line splitting, hashing while reading.

A reader walks its input once and tells a :class:`Sink` what each record became — an entry with its senses
and forms (loaded), a reject (malformed, kept with its location), or a filtered record (counted by reason).
The sink keeps the accounting (``records = loaded + rejected + filtered``) and hands full column batches to
a flush callback (the build inserts them into DuckDB as Arrow tables), so memory stays bounded whatever the
input size.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import multiprocessing
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from lexicon.errors import SourceError

__all__ = [
    "COMPRESSED_BLOCK",
    "MAX_LINE_BYTES",
    "RAW_LIMIT",
    "STREAM_ERRORS",
    "Chunk",
    "Columns",
    "HashingReader",
    "Line",
    "Sink",
    "Source",
    "combine_hashes",
    "file_sha256",
    "iter_chunks",
    "iter_lines",
    "open_decompressed",
    "process_pool",
    "raw_text",
    "sniff",
    "workers",
]

MAX_LINE_BYTES = 10 * 1024 * 1024  # longer lines are rejected unread (bounded memory)
RAW_LIMIT = 64 * 1024  # rejects keep at most this much of the record
_BLOCK = 8 * 1024 * 1024  # read size for plain files
# Smaller reads for compressed files: a decompressor that meets a truncated end raises and loses the
# block it was decoding, so a smaller block loses less of what came before the break.
COMPRESSED_BLOCK = 1024 * 1024
# What reading a truncated or corrupt (compressed) file raises.
STREAM_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, ValueError, zlib.error)


def raw_text(raw: bytes | str) -> str:
    """A reject's raw record as text, cut to :data:`RAW_LIMIT` (invalid UTF-8 shown as U+FFFD)."""
    if isinstance(raw, bytes):
        return raw[:RAW_LIMIT].decode("utf-8", errors="replace")
    return raw[:RAW_LIMIT]


@dataclass
class Columns:
    """Column lists for one batch of rows of the entry, form, sense and reject tables."""

    entry: dict[str, list[Any]] = field(default_factory=dict)
    form: dict[str, list[Any]] = field(default_factory=dict)
    sense: dict[str, list[Any]] = field(default_factory=dict)
    reject: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, cols in (
            ("entry", ("entry_id", "record_no", "word", "lang_code", "pos", "etymology_no", "redirects")),
            ("form", ("entry_id", "form", "tags")),
            (
                "sense",
                (
                    "sense_id",
                    "entry_id",
                    "ord",
                    "gloss",
                    "raw_gloss",
                    "tags",
                    "topics",
                    "form_of",
                    "alt_of",
                    "example",
                    "user_defined",
                ),
            ),
            ("reject", ("record_no", "location", "reason", "raw")),
        ):
            getattr(self, name).update({c: [] for c in cols})


class Sink:
    """Collects what a reader found, counts it, and flushes full batches through `flush`.

    Ids are assigned here (``next_entry_id``/``next_sense_id`` continue the database's ids) so readers
    never talk to DuckDB.
    """

    def __init__(
        self,
        flush: Callable[[Columns], None],
        next_entry_id: int = 1,
        next_sense_id: int = 1,
        batch_senses: int = 100_000,
    ) -> None:
        self._flush = flush
        self.next_entry_id = next_entry_id
        self.next_sense_id = next_sense_id
        self.batch_senses = batch_senses
        self.cols = Columns()
        self.records = 0
        self.loaded = 0
        self.rejected = 0
        self.filtered: Counter[str] = Counter()
        self._pending = 0

    # -- accounting -------------------------------------------------------------------------------
    def reject(self, record_no: int, location: str | None, reason: str, raw: bytes | str) -> None:
        """One malformed record: kept in `reject` with its location so nothing is lost."""
        self.records += 1
        self.rejected += 1
        c = self.cols.reject
        c["record_no"].append(record_no)
        c["location"].append(location)
        c["reason"].append(reason)
        c["raw"].append(raw_text(raw))
        self._pending += 1
        self._maybe_flush()

    def filter(self, reason: str) -> None:
        """One record skipped on purpose (another language, no senses, ...)."""
        self.records += 1
        self.filtered[reason] += 1

    def entry(
        self,
        record_no: int,
        word: str,
        lang_code: str,
        pos: str | None,
        etymology_no: int | None,
        redirects: list[str] | None,
    ) -> int:
        """Add an entry row (does not count a record: call :meth:`loaded_record` once per record)."""
        eid = self.next_entry_id
        self.next_entry_id += 1
        c = self.cols.entry
        c["entry_id"].append(eid)
        c["record_no"].append(record_no)
        c["word"].append(word)
        c["lang_code"].append(lang_code)
        c["pos"].append(pos)
        c["etymology_no"].append(etymology_no)
        c["redirects"].append(redirects or None)
        return eid

    def form(self, entry_id: int, form: str, tags: list[str] | None) -> None:
        c = self.cols.form
        c["entry_id"].append(entry_id)
        c["form"].append(form)
        c["tags"].append(tags or None)

    def sense(
        self,
        entry_id: int,
        ord_: int,
        gloss: str,
        raw_gloss: str | None,
        tags: list[str] | tuple[str, ...] | None,
        topics: list[str] | None,
        form_of: str | None,
        alt_of: str | None,
        example: str | None,
        user_defined: bool = False,
    ) -> None:
        c = self.cols.sense
        c["sense_id"].append(self.next_sense_id)
        self.next_sense_id += 1
        c["entry_id"].append(entry_id)
        c["ord"].append(ord_)
        c["gloss"].append(gloss)
        c["raw_gloss"].append(raw_gloss)
        c["tags"].append(list(tags) if tags else None)
        c["topics"].append(topics or None)
        c["form_of"].append(form_of)
        c["alt_of"].append(alt_of)
        c["example"].append(example)
        c["user_defined"].append(user_defined)
        self._pending += 1

    def loaded_record(self) -> None:
        """Count one record whose entries, forms and senses were added."""
        self.records += 1
        self.loaded += 1
        self._maybe_flush()

    def absorb(self, other: Sink, record_offset: int = 0) -> None:
        """Take over the rows and counts of `other`, a sink filled elsewhere (a worker process) whose ids
        started at 1: they are renumbered to continue this sink's, and its record numbers are shifted by
        `record_offset` (for readers that number records by count rather than by line)."""
        de, ds = self.next_entry_id - 1, self.next_sense_id - 1
        oc, c = other.cols, self.cols
        if record_offset:
            for cols in (oc.entry, oc.reject):
                cols["record_no"] = [n + record_offset for n in cols["record_no"]]
        c.entry["entry_id"].extend(i + de for i in oc.entry["entry_id"])
        c.form["entry_id"].extend(i + de for i in oc.form["entry_id"])
        c.sense["sense_id"].extend(i + ds for i in oc.sense["sense_id"])
        c.sense["entry_id"].extend(i + de for i in oc.sense["entry_id"])
        for table in ("entry", "form", "sense", "reject"):
            mine, theirs = getattr(c, table), getattr(oc, table)
            for name, values in theirs.items():
                if name not in ("entry_id", "sense_id"):
                    mine[name].extend(values)
        self.next_entry_id += other.next_entry_id - 1
        self.next_sense_id += other.next_sense_id - 1
        self.records += other.records
        self.loaded += other.loaded
        self.rejected += other.rejected
        self.filtered.update(other.filtered)
        self._pending += other._pending
        self._maybe_flush()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_flush"] = None  # the flush callback stays in its process
        return state

    def _maybe_flush(self) -> None:
        if self._pending >= self.batch_senses:
            self.flush()

    def flush(self) -> None:
        """Hand the collected rows to the flush callback and start a new batch."""
        if self.cols.entry["entry_id"] or self.cols.reject["record_no"]:
            self._flush(self.cols)
        self.cols = Columns()
        self._pending = 0


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
        while self.read(_BLOCK):
            pass
        if self._last is not None:
            self._last.result()
            self._last = None

    def close(self) -> None:
        self._f.close()
        super().close()


class _Pieces(io.RawIOBase):
    """Reads a decompressor in :data:`COMPRESSED_BLOCK` pieces, however much is asked for at once.

    A decompressor that meets a truncated or corrupt end raises and loses the piece it was decoding;
    reading small pieces loses little, and an error is held back until what came before it has been
    returned, so callers can ask for big blocks (fewer, larger chunks) and still keep that data.
    """

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f
        self._error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        n = 0
        while size < 0 or n < size:
            try:
                piece = self._f.read(COMPRESSED_BLOCK if size < 0 else min(COMPRESSED_BLOCK, size - n))
            except STREAM_ERRORS as exc:
                if not parts:
                    raise
                self._error = exc
                break
            if not piece:
                break
            parts.append(piece)
            n += len(piece)
        return b"".join(parts)

    def close(self) -> None:
        self._f.close()
        super().close()


def open_decompressed(raw: IO[bytes], name: str) -> IO[bytes]:
    """Wrap `raw` in a gzip/bz2 decompressor when `name` says so (see :class:`_Pieces`)."""
    if name.endswith(".gz"):
        return cast(IO[bytes], _Pieces(cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))))
    if name.endswith(".bz2"):
        return cast(IO[bytes], _Pieces(cast(IO[bytes], bz2.BZ2File(raw, mode="rb"))))
    return raw


def sniff(path: Path, n: int = 65536) -> bytes:
    """The first `n` decompressed bytes of `path`, refusing unreadable compressed files."""
    try:
        with open(path, "rb") as raw, open_decompressed(raw, path.name) as f:
            return f.read(n)
    except STREAM_ERRORS as exc:
        raise SourceError(f"{path} cannot be read ({exc}); check that the file is complete") from exc


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_BLOCK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a text source: 1-based number, byte offset, content without the newline."""

    no: int
    offset: int
    data: bytes
    too_long: bool = False


def iter_lines(
    f: IO[bytes],
    max_len: int = MAX_LINE_BYTES,
    on_bytes: Callable[[int], None] | None = None,
    block_size: int | None = None,
    first_no: int = 1,
    first_offset: int = 0,
) -> Iterator[Line]:
    """Split a binary stream into lines with bounded memory.

    A line longer than `max_len` is yielded once with ``too_long=True`` and only its first
    :data:`RAW_LIMIT` bytes; the rest of it is skipped without being held. Offsets count bytes of the
    (decompressed) stream. A final line without a newline is a line; a trailing newline adds none.
    Compressed streams should be read in smaller blocks: a decompressor that hits a truncated end
    raises and loses the block it was decoding.
    """
    size = block_size or _BLOCK
    no = first_no - 1
    start = first_offset  # stream offset of the first byte of the pending (unfinished) line
    pending: list[bytes] = []  # pieces of the unfinished line; a list so a long line is not re-copied
    pending_len = 0
    skipping: Line | None = None  # a too-long line whose end has not been seen yet
    while block := f.read(size):
        if on_bytes is not None:
            on_bytes(len(block))
        if skipping is not None:
            nl = block.find(b"\n")
            if nl < 0:
                start += len(block)
                continue
            yield skipping
            skipping = None
            start += nl + 1
            block = block[nl + 1 :]
        nl = block.find(b"\n")
        if nl < 0:
            pending.append(block)
            pending_len += len(block)
        else:
            pending.append(block[:nl])
            parts = block[nl + 1 :].split(b"\n")
            parts.insert(0, b"".join(pending))
            tail = parts.pop()
            pending, pending_len = ([tail], len(tail)) if tail else ([], 0)
            for p in parts:
                no += 1
                if len(p) > max_len:
                    yield Line(no, start, p[:RAW_LIMIT], True)
                else:
                    yield Line(no, start, p)
                start += len(p) + 1
        if pending_len > max_len:
            no += 1
            skipping = Line(no, start, b"".join(pending)[:RAW_LIMIT], True)
            start += pending_len
            pending, pending_len = [], 0
    if skipping is not None:
        yield skipping
    elif pending_len:
        yield Line(no + 1, start, b"".join(pending))


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of `n_lines` whole lines starting at line `no` and stream `offset` (``data`` may be a
    zero-copy view of a read block); or, with ``too_long``, the head of one line over the limit.
    ``n_lines = -1`` / ``no = 0``: not counted (see :func:`iter_chunks`)."""

    no: int
    offset: int
    data: bytes | memoryview
    n_lines: int
    too_long: bool = False


def iter_chunks(
    f: IO[bytes],
    max_len: int = MAX_LINE_BYTES,
    on_bytes: Callable[[int], None] | None = None,
    block_size: int | None = None,
    count_lines: bool = True,
) -> Iterator[Chunk]:
    """Cut a binary stream into runs of whole lines, about one read block each, with bounded memory.

    Without `count_lines` (counting newlines costs a pass over the data; worker processes can do it),
    runs of several lines carry ``n_lines = -1`` and no chunk carries a line number (``no = 0``).

    Parsers can then decode a whole run at once and fall back to :func:`iter_lines` on the run when it
    fails. Each block gives at most two chunks: the line that straddles the previous block (joined) and
    a view of the block's remaining whole lines (not copied). A line that grows beyond `max_len` before
    its newline arrives is yielded as one ``too_long`` chunk holding its first :data:`RAW_LIMIT` bytes;
    the rest is skipped. A chunk never exceeds ``max_len + block_size`` bytes.
    """
    size = block_size or _BLOCK
    no = 1
    start = 0
    pending: list[bytes] = []
    pending_len = 0
    skipping: Chunk | None = None
    while block := f.read(size):
        if on_bytes is not None:
            on_bytes(len(block))
        lo = 0  # the block's bytes before `lo` are consumed
        if skipping is not None:
            nl = block.find(b"\n")
            if nl < 0:
                start += len(block)
                continue
            yield skipping
            skipping = None
            no += 1
            start += nl + 1
            lo = nl + 1
        first = block.find(b"\n", lo)
        if first >= 0:
            if pending:
                pending.append(block[lo : first + 1])
                head = b"".join(pending)
                yield Chunk(no if count_lines else 0, start, head, 1)
                no += 1
                start += len(head)
                pending, pending_len = [], 0
                lo = first + 1
            last = block.rfind(b"\n", lo)
            if last >= lo:
                n = block.count(b"\n", lo, last + 1) if count_lines else -1
                view = memoryview(block)[lo : last + 1] if (lo or last + 1 < len(block)) else block
                yield Chunk(no if count_lines else 0, start, view, n)
                no += n
                start += last + 1 - lo
                lo = last + 1
        if lo < len(block):
            pending.append(block[lo:])
            pending_len += len(block) - lo
        if pending_len > max_len:
            skipping = Chunk(no if count_lines else 0, start, b"".join(pending)[:RAW_LIMIT], 1, True)
            start += pending_len
            pending, pending_len = [], 0
    if skipping is not None:
        yield skipping
    elif pending_len:
        yield Chunk(no if count_lines else 0, start, b"".join(pending), 1)


def workers() -> int:
    """How many worker processes a big source may use: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def process_pool(n: int) -> Iterator[Executor]:
    """Worker processes for parsing. fork starts them in milliseconds and they need only the readers'
    code; the parent's DuckDB connection and hashing thread are never touched in a child."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        yield pool


def combine_hashes(root: Path, files: list[Path], hashes: list[str]) -> str:
    """The sha256 of a source: the file's own sha256, or for a folder a hash of (relative path, sha256)."""
    if len(files) == 1 and files[0] == root:
        return hashes[0]
    h = hashlib.sha256()
    for f, d in zip(files, hashes, strict=True):
        h.update(f"{f.relative_to(root).as_posix()}\0{d}\n".encode())
    return h.hexdigest()


class Source:
    """A readable input of one kind. Subclasses set `kind`, validate in ``__init__`` and implement `read`.

    Construction refuses what cannot be read (missing path, wrong format) with a :class:`SourceError`
    that says what to do, before the build touches the database.
    """

    kind: str = ""
    suffixes: tuple[str, ...] = ()

    def __init__(self, path: Path, lang: str) -> None:
        self.path = path.resolve()
        self.lang = lang
        if not path.exists():
            raise SourceError(f"{self.kind}:{path} does not exist; give an existing file or folder")
        self.files = self._files()
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
            return sorted(p for p in self.path.rglob("*") if p.is_file() and p.name.endswith(self.suffixes))
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

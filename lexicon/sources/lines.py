"""Splitting a byte stream into lines, or runs of whole lines, with bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from definitionemb.lexicon.sources.sink import RAW_LIMIT

__all__ = ["BLOCK", "BOM", "MAX_LINE_BYTES", "Chunk", "Line", "iter_chunks", "iter_lines"]

MAX_LINE_BYTES = 10 * 1024 * 1024  # longer lines are rejected unread (bounded memory)
BLOCK = 8 * 1024 * 1024  # read size for plain files
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark: not part of the first record


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
    """
    size = block_size or BLOCK
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
    the rest is skipped. A chunk never exceeds ``max_len + block_size`` bytes. A UTF-8 BOM at the start
    of the stream is skipped.
    """
    size = block_size or BLOCK
    no = 1
    start = 0
    pending: list[bytes] = []
    pending_len = 0
    skipping: Chunk | None = None
    opening: bytes | None = b""  # the stream's first bytes while a BOM may still be forming; then None
    while block := f.read(size):
        if on_bytes is not None:
            on_bytes(len(block))
        if opening is not None:
            block = opening + block
            if len(block) < len(BOM) and BOM.startswith(block):
                opening = block
                continue
            opening = None
            if block.startswith(BOM):  # offsets still count it: they are positions in the file
                block = block[len(BOM) :]
                start = len(BOM)
                if not block:
                    continue
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
    if opening:  # a stream shorter than a BOM that is a prefix of one: a line of its own
        pending, pending_len = [opening], len(opening)
    if skipping is not None:
        yield skipping
    elif pending_len:
        yield Chunk(no if count_lines else 0, start, b"".join(pending), 1)

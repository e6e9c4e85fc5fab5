"""Splitting a byte stream into lines, or runs of whole lines, with bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, TypedDict

from definitionemb.lexicon.sources.sink import RAW_LIMIT

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["BLOCK", "BOM", "MAX_LINE_BYTES", "Chunk", "Line", "ReadOptions", "iter_chunks", "iter_lines"]

MAX_LINE_BYTES = 10 * 1024 * 1024  # longer lines are rejected unread (bounded memory)
BLOCK = 8 * 1024 * 1024  # read size for plain files
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark: not part of the first record


class ReadOptions(TypedDict, total=False):
    """How :func:`iter_chunks` and :func:`iter_lines` read a stream: `max_len`, the longest line kept
    (default :data:`MAX_LINE_BYTES`); `on_bytes`, called with each read's size; `block_size`, the read
    size (default :data:`BLOCK`)."""

    max_len: int
    on_bytes: Callable[[int], None] | None
    block_size: int | None


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a text source: 1-based number, byte offset, content without the newline."""

    no: int
    offset: int
    data: bytes
    too_long: bool = False


def iter_lines(
    f: IO[bytes], first_no: int = 1, first_offset: int = 0, **read: Unpack[ReadOptions]
) -> Iterator[Line]:
    """Split a binary stream into lines with bounded memory (the runs of :func:`iter_chunks`, cut up).

    A line longer than `max_len` is yielded once with ``too_long=True`` and only its first
    :data:`RAW_LIMIT` bytes; the rest of it is skipped without being held. Offsets count bytes of the
    (decompressed) stream. A final line without a newline is a line; a trailing newline adds none.
    """
    max_len = read.get("max_len", MAX_LINE_BYTES)
    no = first_no
    for chunk in iter_chunks(f, count_lines=False, skip_bom=False, **read):
        start = first_offset + chunk.offset
        if chunk.too_long:
            yield Line(no, start, bytes(chunk.data), True)
            no += 1
            continue
        parts = bytes(chunk.data).split(b"\n")
        if not parts[-1]:  # the run's closing newline
            parts.pop()
        for line in parts:
            yield Line(no, start, line[:RAW_LIMIT], True) if len(line) > max_len else Line(no, start, line)
            no += 1
            start += len(line) + 1


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
    f: IO[bytes], count_lines: bool = True, skip_bom: bool = True, **read: Unpack[ReadOptions]
) -> Iterator[Chunk]:
    """Cut a binary stream into runs of whole lines, about one read block each, with bounded memory.

    Without `count_lines` (counting newlines costs a pass over the data; worker processes can do it),
    runs of several lines carry ``n_lines = -1`` and no chunk carries a line number (``no = 0``).

    Parsers can then decode a whole run at once and fall back to :func:`iter_lines` on the run when it
    fails. Each block gives at most two chunks: the line that straddles the previous block (joined) and
    a view of the block's remaining whole lines (not copied). A line that grows beyond `max_len` before
    its newline arrives is yielded as one ``too_long`` chunk holding its first :data:`RAW_LIMIT` bytes;
    the rest is skipped. A chunk never exceeds ``max_len + block_size`` bytes. A UTF-8 BOM at the start
    of the stream is skipped (unless not `skip_bom`).
    """
    max_len = read.get("max_len", MAX_LINE_BYTES)
    on_bytes = read.get("on_bytes")
    size = read.get("block_size") or BLOCK
    no = 1
    start = 0
    pending: list[bytes] = []
    pending_len = 0
    skipping: Chunk | None = None
    opening: bytes | None = b"" if skip_bom else None  # the first bytes while a BOM may be forming
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

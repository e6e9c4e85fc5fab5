"""One writer at a time: the lock every stage takes before it writes something shared.

A kernel lock (flock) on `<target>.lock`: the kernel drops it when its holder dies (kill -9 included),
so a lock is never stale. The holder writes its pid into the file for the message a waiter sees, and
deletes the file before letting go; a waiter that wakes holding a deleted file (or one replaced since it
opened it) tries again, so nothing is left beside the target after the work. POSIX only (as DuckDB's
own file locking); `filelock` was considered, but it leaves its file behind and names no holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from definitionemb.core.errors import DefembError

__all__ = ["exclusive"]


@contextlib.contextmanager
def exclusive(
    lock: str | os.PathLike[str], wait: float, busy: Callable[[str], DefembError]
) -> Iterator[None]:
    """Hold the lock file `lock`, waiting up to `wait` seconds for another holder; past that raise
    `busy(holder)`, where `holder` is what the holder wrote ("pid 1234")."""
    lock = Path(lock)
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DefembError(f"cannot create the lock file {lock}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            if time.monotonic() >= deadline:
                raise busy(holder) from None
            time.sleep(0.2)
            continue
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = -1
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the holder before us removed this file: lock the one that is there now
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)  # releases the lock

"""The worker processes that parse big sources, and how they die with their parent."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor

__all__ = ["process_pool", "workers"]


def workers() -> int:
    """How many worker processes a big source may use: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def process_pool(n: int) -> Iterator[Executor]:
    """Worker processes for parsing. fork starts them in milliseconds and they need only the readers'
    code; the parent's DuckDB connection and hashing thread are never touched in a child."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(
        max_workers=n, mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),)
    )
    try:
        yield pool
    except BaseException:
        # Interrupted (an error, Ctrl-C, SIGTERM): the results are not wanted, so waiting for the workers
        # to finish their chunks would only delay the exit. The executor has no public way to stop them.
        for proc in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the build process is gone (kill -9 gives the parent no
    chance to shut the pool down, and a worker blocked on its task queue would wait forever)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above ran
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="defemb-parent-watch").start()


# prctl option: the kernel sends the given signal to this process when its parent thread ends.
_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    """Where PR_SET_PDEATHSIG is missing (macOS), notice a new parent (init) within a second."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)

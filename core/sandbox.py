"""Running code that the kernel forbids to write files: the guarantee behind read-only SQL.

:func:`without_writes` runs a function in a fresh thread that restricts itself with Linux Landlock
before the function starts: from then on that thread, and every thread it starts (a DuckDB instance
opened there starts its workers there), can read any file but cannot create, write, truncate, rename or
remove one, except inside an optional `scratch` folder (DuckDB's spill space). The restriction is the
kernel's, so no statement, `EXPLAIN ANALYZE COPY … TO` included, can get round it; it ends with the
thread. Where Landlock is missing (not Linux, a kernel before 5.13, or a container that forbids it)
:func:`writes_blockable` is False and :func:`without_writes` raises :class:`SandboxUnavailable`.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from definitionemb.core.errors import DefembError

__all__ = ["SandboxUnavailable", "without_writes", "writes_blockable"]

T = TypeVar("T")

# <linux/landlock.h>: the system calls (the same number on every architecture) and the file rights.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_WRITE_FILE = 1 << 1
_REMOVE_DIR, _REMOVE_FILE = 1 << 4, 1 << 5
_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER = 1 << 13  # ABI 2: links and renames across folders
_TRUNCATE = 1 << 14  # ABI 3


class SandboxUnavailable(DefembError):
    """The kernel cannot forbid writes here (no Landlock), so a guarantee that needs it is refused."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _abi() -> int:
    if not sys.platform.startswith("linux"):
        return 0
    try:
        v = int(_libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(v, 0)


def writes_blockable() -> bool:
    """Whether this system can forbid a thread to write files (Landlock is there and allowed)."""
    return _abi() >= 1


def _restrict_this_thread(scratch: str | None) -> None:
    abi = _abi()
    if abi < 1:
        raise SandboxUnavailable(
            "this system cannot forbid writes (Linux Landlock, kernel 5.13 or later, is not available)"
        )
    libc = _libc()
    rights = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE
    rights |= (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(rights)
    fd = int(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0))
    if fd < 0:
        raise SandboxUnavailable(f"Landlock refused a ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        if scratch is not None:
            dfd = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
            try:
                rule = _PathBeneath(rights & ~_REFER, dfd)
                if libc.syscall(_ADD_RULE, fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                    raise SandboxUnavailable(f"Landlock refused a rule: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(dfd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise SandboxUnavailable(f"cannot set no_new_privs: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(_RESTRICT_SELF, fd, 0) != 0:
            raise SandboxUnavailable(f"Landlock refused to restrict: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def without_writes(fn: Callable[..., T], *args: Any, scratch: str | None = None, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a thread that cannot write any file outside `scratch`; its result.

    Exceptions from `fn` are raised here. Raises :class:`SandboxUnavailable` where writes cannot be
    forbidden (see :func:`writes_blockable`). Whatever `fn` opens must be opened inside it, so that the
    threads doing the work are born restricted.
    """
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            _restrict_this_thread(scratch)
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=body, name="defemb-no-writes", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result

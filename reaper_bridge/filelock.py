"""Exclusive lock files that the operating system releases when their holder dies.

A lock that is only a file's existence (``O_EXCL``) outlives a crashed holder, so it needs
an age past which it counts as stale. Two runs that both find it stale can then both take
it over, one removing the lock the other has just claimed. ``flock`` (POSIX) and
``msvcrt.locking`` (Windows) belong to the open file instead: the kernel drops them when
their process exits however it ends, so no age is guessed and nothing is taken over.
A file system without locks (NFS without its lock daemon, some FUSE mounts) falls back to
a ``<lock>.held`` file made with ``O_EXCL``, which a crash leaves behind: the busy message
then names it. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

if os.name == "nt":
    import msvcrt

    def _lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLOCK):
                return False
            raise
        return True
else:
    import fcntl

    def _lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

#: What ``flock`` says on a file system that cannot lock: the ``O_EXCL`` fallback is used.
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP,
             getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
FALLBACK_SUFFIX = ".held"
#: Opening and locking a name that another run removes and creates again meanwhile is
#: retried; this many misses in a row mean it is busy.
_ATTEMPTS = 100


class LockBusy(OSError):
    """Another process holds the lock."""


@dataclass
class HeldLock:
    """A lock ``try_lock`` gave: ``handle`` is the open file that holds it (closing it, its
    garbage collection or the process ending releases the lock), ``path`` the file that
    ``release`` removes."""

    path: str
    handle: BinaryIO


def _names_the_same_file(fd: int, path: str) -> bool:
    if os.name == "nt":  # Windows removes no file that another process holds open
        return True
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _open(path: str) -> int | None:
    """The lock file opened for reading (``flock`` needs no more, and a lock file another
    user made is readable), created if missing; None on Windows while it is being deleted."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    except PermissionError:
        if os.name == "nt":
            return None
        raise


def _fallback(path: str) -> HeldLock | None:
    marker = path + FALLBACK_SUFFIX
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return None
    return HeldLock(marker, os.fdopen(fd, "wb"))


def try_lock(path: str) -> HeldLock | None:
    """The lock ``path``, or None while another process holds it.

    The holder removes the file as it releases it, so between our opening and our locking
    the name may have gone, or been made again by a third run: a lock taken on a file the
    name no longer points to guards nothing, so we open the name again."""
    for _ in range(_ATTEMPTS):
        fd = _open(path)
        if fd is None:
            return None
        try:
            locked = _lock(fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _NO_LOCKS:
                return _fallback(path)
            raise
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            os.close(fd)
            return None
        if _names_the_same_file(fd, path):
            return HeldLock(path, os.fdopen(fd, "rb"))
        os.close(fd)
    return None


def release(lock: HeldLock) -> None:
    """Release ``lock``, removing its file. On POSIX the file is removed while still
    locked, so no run can lock it after the release; Windows refuses to remove an open file,
    so there it is closed first and left if another run has opened it."""
    if os.name == "nt":
        lock.handle.close()
    with contextlib.suppress(OSError):
        os.remove(lock.path)
    lock.handle.close()


def busy_message(path: str) -> str:
    """Who holds ``path``, and how to free it when the holder is a crash's leftover."""
    marker = path + FALLBACK_SUFFIX
    if os.path.exists(marker):
        return (f"{path} is held by another run (this folder's file system cannot lock "
                f"files; if no run is using it, delete {marker})")
    return f"{path} is held by another run"


@contextlib.contextmanager
def locked(path: str, timeout_s: float, poll_s: float = 0.05) -> Iterator[None]:
    """Hold the lock ``path`` for the block, waiting up to ``timeout_s`` for another run's
    release; ``LockBusy`` when it does not come."""
    deadline = time.monotonic() + timeout_s
    while (lock := try_lock(path)) is None:
        if time.monotonic() > deadline:
            raise LockBusy(busy_message(path))
        time.sleep(poll_s)
    try:
        yield
    finally:
        release(lock)

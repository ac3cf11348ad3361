"""Exclusive lock files that the operating system releases when their holder dies.

A lock that is only a file's existence (``O_EXCL``) outlives a crashed holder, so it needs
an age past which it counts as stale. Two runs that both find it stale can then both take
it over, one removing the lock the other has just claimed. ``flock`` (POSIX) and
``msvcrt.locking`` (Windows) belong to the open file instead: the kernel drops them when
their process exits however it ends, so no age is guessed and nothing is taken over.
Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from typing import BinaryIO

if os.name == "nt":
    import msvcrt

    def _lock(handle: BinaryIO) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLOCK):
                return False
            raise
        return True
else:
    import fcntl

    def _lock(handle: BinaryIO) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class LockBusy(OSError):
    """Another process holds the lock."""


def _names_the_same_file(handle: BinaryIO, path: str) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def try_lock(path: str) -> BinaryIO | None:
    """The open lock file ``path``, locked, or None while another process holds it.

    The holder removes the file as it releases it, so between our opening and our locking
    the name may have gone, or been created again by a third run: a lock taken on a file
    the name no longer points to guards nothing, so we open the name again. Keep the
    returned handle open for as long as the lock is held: closing it (or its garbage
    collection, or the process ending) releases the lock."""
    while True:
        handle = open(path, "ab")  # kept open by the caller: the handle is the lock
        try:
            if not _lock(handle):
                handle.close()
                return None
            if _names_the_same_file(handle, path):
                return handle
        except BaseException:
            handle.close()
            raise
        handle.close()


def release(handle: BinaryIO) -> None:
    """Release a lock ``try_lock`` gave, removing its file. On POSIX the file is removed
    while still locked, so no run can lock it after the release; Windows refuses to remove
    an open file, so there it is closed first and left if another run has opened it."""
    path = handle.name
    if os.name == "nt":
        handle.close()
    with contextlib.suppress(OSError):
        os.remove(path)
    handle.close()


@contextlib.contextmanager
def locked(path: str, timeout_s: float, poll_s: float = 0.05) -> Iterator[None]:
    """Hold the lock ``path`` for the block, waiting up to ``timeout_s`` for another run's
    release; ``LockBusy`` when it does not come."""
    deadline = time.monotonic() + timeout_s
    while (handle := try_lock(path)) is None:
        if time.monotonic() > deadline:
            raise LockBusy(f"{path} is held by another run")
        time.sleep(poll_s)
    try:
        yield
    finally:
        release(handle)

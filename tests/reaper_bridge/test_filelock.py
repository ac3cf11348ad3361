"""The bridge's lock files: one holder at a time, released by the kernel when the holder's
process dies, and no lock taken on a file its name no longer points to."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reaper_bridge import filelock
from reaper_bridge.filelock import FALLBACK_SUFFIX, LockBusy, locked, release, try_lock


def test_one_holder_at_a_time_and_the_file_goes_with_the_release(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock")
    first = try_lock(path)
    assert first is not None and try_lock(path) is None
    release(first)
    assert not (tmp_path / "x.lock").exists()
    second = try_lock(path)
    assert second is not None
    release(second)


def test_locked_waits_then_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock")
    holder = try_lock(path)
    with pytest.raises(LockBusy, match=r"x\.lock is held by another run"), locked(path, 0.1):
        pass
    release(holder)
    with locked(path, 0.1):
        assert try_lock(path) is None
    assert not (tmp_path / "x.lock").exists()


def test_a_killed_holders_lock_is_free_at_once(tmp_path: Path) -> None:
    """A crashed run's lock needed an age before it was taken over (an hour for exports)."""
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from reaper_bridge.filelock import try_lock;"
         f" h = try_lock({str(path)!r}); print(h is not None, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(filelock.__file__).parents[1])
    try:
        assert holder.stdout.readline().strip() == "True"
        assert try_lock(str(path)) is None
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert path.exists()  # left behind by the crash, and locked by no one
    mine = try_lock(str(path))
    assert mine is not None
    release(mine)
    assert not path.exists()


def test_no_lock_is_taken_on_a_file_the_name_no_longer_points_to(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """B opens the lock file while A holds it; A releases (removing the name) and C locks
    a new file under the name; B's lock then succeeds on the removed file. Two "stale lock"
    takeovers raced like this, each removing the other's fresh lock."""
    path = str(tmp_path / "x.lock")
    a = try_lock(path)
    c = []
    real_lock = filelock._lock

    def interleaved(handle):  # B's first lock attempt comes after its open
        monkeypatch.setattr(filelock, "_lock", real_lock)
        release(a)
        c.append(try_lock(path))
        return real_lock(handle)

    monkeypatch.setattr(filelock, "_lock", interleaved)
    assert try_lock(path) is None  # B finds C holding the file the name points to
    assert c[0] is not None and try_lock(path) is None
    release(c[0])


def test_a_file_system_without_locks_falls_back_to_a_held_file(tmp_path: Path,
                                                               monkeypatch) -> None:
    """NFS without its lock daemon answers ``flock`` with ENOLCK: every export failed and no
    cache index was written. A ``.held`` file made with O_EXCL stands in; a crash leaves it,
    so the busy message says to delete it."""
    def no_locks(fd: int) -> bool:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(filelock, "_lock", no_locks)
    path = str(tmp_path / "x.lock")
    first = try_lock(path)
    assert first is not None and first.path == path + FALLBACK_SUFFIX
    assert try_lock(path) is None
    with pytest.raises(LockBusy, match=rf"file system cannot lock files; if no run is using "
                                       rf"it, delete {re.escape(path + FALLBACK_SUFFIX)}"):
        with locked(path, 0.1):
            pass
    release(first)
    assert not os.path.exists(path + FALLBACK_SUFFIX)
    with locked(path, 0.1):
        assert os.path.exists(path + FALLBACK_SUFFIX)


def test_a_name_that_never_settles_is_busy_not_a_hang(tmp_path: Path, monkeypatch) -> None:
    """Reopening until the name and the locked file agree had no bound: a file system whose
    stat and fstat never agree would spin forever."""
    monkeypatch.setattr(filelock, "_names_the_same_file", lambda fd, path: False)
    assert try_lock(str(tmp_path / "x.lock")) is None

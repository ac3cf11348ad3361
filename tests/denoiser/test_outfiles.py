"""``denoiser.outfiles``: the atomic writes the REAPER bridge shares with the engine."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import warnings

import pytest

from denoiser.outfiles import (WORKER_SIGNALS, atomic_output, replace_entries, replace_paths,
                               staging_folder, write_text_atomic)


def test_importing_it_loads_no_third_party_package() -> None:
    """REAPER's embedded Python imports it: numpy or torch there crash REAPER."""
    code = ("import sys, denoiser.outfiles\n"
            "print(sorted({'numpy', 'torch', 'soundfile'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_importing_it_leaves_the_process_umask_alone() -> None:
    """Reading the umask means setting it, for the whole process: inside REAPER a file
    its threads create meanwhile would get the wrong permissions. Nothing may call it."""
    code = ("import os\n"
            "def refuse(*args):\n    raise AssertionError('os.umask called')\n"
            "os.umask = refuse\n"
            "import tempfile, pathlib, denoiser.outfiles as o\n"
            "d = pathlib.Path(tempfile.mkdtemp())\n"
            "with o.atomic_output(d / 'a.ini') as tmp: tmp.write_text('x')\n"
            "with o.staging_folder(d / 'data'):\n    pass\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_str_path_is_replaced_whole_with_plain_permissions(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        path = tmp_path / "sub" / "settings.ini"
        with atomic_output(str(path)) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            assert tmp.parent == path.parent and tmp.name.startswith(".settings.ini.")
            handle.write("new")
    finally:
        os.umask(old)
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.ini"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    path = tmp_path / "index.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_a_full_disk_names_the_output(tmp_path, monkeypatch, code: int) -> None:
    """A ``write()`` the disk refuses raises an OSError naming no file: a checkpoint, a
    benchmark, a report or a manifest on a full disk said only "[Errno 28] No space left
    on device". It names the output (not the hidden temporary file), which is left as it
    was; a nameless error of another kind may be a read's, of an input, and stays as it is."""
    path = tmp_path / "aggregate.json"
    path.write_text("old")

    def refused(self, text: str, encoding: str | None = None) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(type(path), "write_text", refused)
    with pytest.raises(OSError) as caught:
        write_text_atomic(path, "new")
    assert (caught.value.errno, caught.value.filename) == (code, str(path))
    assert f"{path}" in str(caught.value) and os.listdir(tmp_path) == ["aggregate.json"]
    with pytest.raises(OSError) as caught, atomic_output(path):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    assert caught.value.filename is None and path.read_text() == "old"


def test_a_failed_write_removes_the_folders_it_made(tmp_path) -> None:
    """``-o new/deeper/out.wav`` interrupted left ``new/deeper`` behind; a folder that
    already held something, or that another output has filled since, stays."""
    deep = tmp_path / "new" / "deeper" / "x.wav"
    with pytest.raises(KeyboardInterrupt), atomic_output(deep) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    (tmp_path / "new").mkdir()
    with atomic_output(tmp_path / "new" / "a.wav") as tmp:
        tmp.write_bytes(b"whole")
    with pytest.raises(OSError), atomic_output(tmp_path / "new" / "deeper" / "b.wav") as tmp:
        raise OSError("disk full")
    assert sorted(os.listdir(tmp_path / "new")) == ["a.wav"]


def test_folders_made_before_a_refused_one_are_removed(tmp_path) -> None:
    """The folders were made outside the clean-up's scope, and the clean-up stopped at the
    first folder it could not remove, one never made: ``-o new/<300 characters>/out.wav``
    failed on the long name and left ``new/`` behind."""
    with pytest.raises(OSError) as caught:
        with atomic_output(tmp_path / "new" / ("x" * 300) / "out.wav"):
            pass
    assert caught.value.errno == errno.ENAMETOOLONG
    assert os.listdir(tmp_path) == []
    with pytest.raises(OSError) as caught:  # a report or dataset staged there, the same
        with staging_folder(tmp_path / "new" / ("x" * 300) / "report"):
            pass
    assert caught.value.errno == errno.ENAMETOOLONG
    assert os.listdir(tmp_path) == []


def test_a_refused_write_names_the_output_not_its_temporary_name(tmp_path, monkeypatch) -> None:
    """A read-only folder refusing the hidden temporary file, or a write to it failing,
    was reported against that file ("ro/.s.pt.124a7757.73bd1b48.tmp: Read-only file
    system"), a name the user never gave and that is gone when the error is read."""
    target = tmp_path / "out" / "s.pt"
    with pytest.raises(OSError) as caught:
        with atomic_output(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OSError) as caught:
        with atomic_output(target):
            pass
    assert (caught.value.errno, caught.value.filename) == (errno.EROFS, str(target.parent))
    assert sorted(tmp_path.iterdir()) == []  # the folder made for it is gone too


def test_an_error_about_a_descriptor_passes_through_unchanged(tmp_path) -> None:
    """An OSError whose filename is a descriptor number (os.chmod(fd) and the like) became
    a TypeError when compared with the temporary name."""
    with pytest.raises(OSError) as caught:
        with atomic_output(tmp_path / "x.bin"):
            raise OSError(errno.EBADF, "Bad file descriptor", 987)
    assert (caught.value.errno, caught.value.filename) == (errno.EBADF, 987)


def test_a_staged_build_that_fails_names_the_path_under_its_output(tmp_path) -> None:
    """A report or dataset built in a hidden folder beside ``out`` reported a full disk
    against that folder ("data/.rep.e0bb8bf2.ec81d862.tmp/clips/clip-00000: could not
    write ..."), a name the user never gave and that is gone when the error is read."""
    from denoiser.errors import AudioError

    out = tmp_path / "rep"
    with pytest.raises(OSError) as caught:
        with staging_folder(out) as staging:
            raise OSError(errno.ENOSPC, "No space left on device", str(staging / "clips" / "a"))
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(out / "clips" / "a"))
    with pytest.raises(AudioError) as caught:
        with staging_folder(out) as staging:
            raise AudioError(f"{staging / 'clips'}: could not write the output there")
    assert str(caught.value) == f"{out / 'clips'}: could not write the output there"
    assert sorted(tmp_path.iterdir()) == []


def test_a_folder_staged_inside_its_output_names_that_output(tmp_path) -> None:
    """An existing empty ``out`` (a mount point) is built in a hidden folder inside it,
    whose contents become its own: an error names ``out``, not ``out/manifest.json``."""
    out = tmp_path / "data"
    out.mkdir()
    with pytest.raises(OSError) as caught:
        with staging_folder(out / "manifest.json", builds=out) as staging:
            raise OSError(errno.ENOSPC, "No space left on device", str(staging / "clip-00000"))
    assert caught.value.filename == str(out / "clip-00000")
    assert list(out.iterdir()) == []


def test_an_error_about_another_path_passes_a_staged_build_unchanged(tmp_path) -> None:
    elsewhere = OSError(errno.ENOENT, "No such file or directory", str(tmp_path / "kit"))
    with pytest.raises(OSError) as caught:
        with staging_folder(tmp_path / "rep"):
            raise elsewhere
    assert caught.value is elsewhere


def _two_runs(tmp_path):
    """An output folder holding a run's ``a.json``, ``b.md`` and ``clips/`` and a file of
    the user's, and a staging folder holding the next run's three."""
    out, staged = tmp_path / "out", tmp_path / "out" / ".staged"
    (out / "clips").mkdir(parents=True)
    (out / "clips" / "x.wav").write_text("old clip")
    (out / "a.json").write_text("old a")
    (out / "b.md").write_text("old b")
    (out / "notes.txt").write_text("mine")
    (staged / "clips").mkdir(parents=True)
    (staged / "clips" / "y.wav").write_text("new clip")
    (staged / "a.json").write_text("new a")
    (staged / "b.md").write_text("new b")
    return out, [staged / "clips", staged / "a.json", staged / "b.md"]


def _contents(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_entries_are_replaced_together_and_the_old_folder_goes(tmp_path) -> None:
    out, sources = _two_runs(tmp_path)
    replace_entries(out, sources)
    assert _contents(out) == {"a.json": "new a", "b.md": "new b", "clips/y.wav": "new clip",
                              "notes.txt": "mine"}
    assert sorted(p.name for p in out.iterdir()) == [".staged", "a.json", "b.md", "clips",
                                                     "notes.txt"]


def test_old_entries_that_cannot_be_deleted_warn_and_the_replacement_stands(
        tmp_path, monkeypatch) -> None:
    """Once every new entry is in place the replacement has succeeded: an old entry that
    cannot be deleted (on Windows a file another program opened with delete sharing stays
    listed, so its folder cannot be removed) raised out of the command as if it had
    failed. It is now left in the hidden folder, which a one-line warning names."""
    out, sources = _two_runs(tmp_path)
    unlink = os.unlink

    def held(path, *args, **kwargs):
        if os.fspath(path) == "x.wav":  # the old clip, deleted relative to its folder
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", held)
    with pytest.warns(UserWarning) as caught:
        replace_entries(out, sources)
    left = [p for p in out.iterdir() if p.name.endswith(".old")]
    assert [str(w.message) for w in caught] == [
        f"{left[0]}: the replaced entries could not all be deleted from this hidden folder "
        "(a file another program holds?); delete it"]
    assert _contents(left[0]) == {"clips/x.wav": "old clip"}
    assert {k: v for k, v in _contents(out).items() if not k.startswith(".")} == {
        "a.json": "new a", "b.md": "new b", "clips/y.wav": "new clip", "notes.txt": "mine"}


@pytest.mark.parametrize("stuck", ["b.md", "clips"])
def test_a_move_cut_short_leaves_the_old_entries_as_they_were(tmp_path, monkeypatch,
                                                               stuck) -> None:
    """One entry that cannot be replaced (on Windows a file open in another program) left
    the entries moved before it beside the old ones: one run's pages over another's audio,
    the old audio already deleted."""
    out, sources = _two_runs(tmp_path)
    before, staged = _contents(out), _contents(sources[0].parent)
    replace = os.replace

    def held(src, dst, **kwargs):
        if out / stuck in (src, dst):
            raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        return replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", held)
    with pytest.raises(PermissionError) as caught:
        replace_entries(out, sources)
    assert caught.value.filename == str(out / stuck) and caught.value.filename2 is None
    assert _contents(out) == before  # the staged entries are back in their folder
    assert _contents(sources[0].parent) == staged
    assert sorted(p.name for p in out.iterdir()) == [".staged", "a.json", "b.md", "clips",
                                                     "notes.txt"]


def test_a_move_in_that_fails_puts_the_old_entries_back(tmp_path, monkeypatch) -> None:
    out, sources = _two_runs(tmp_path)
    before = _contents(out)
    replace = os.replace

    def full(src, dst, **kwargs):
        if src == sources[-1]:
            raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))
        return replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as caught:
        replace_entries(out, sources)
    assert caught.value.filename == str(out / "b.md")
    assert _contents(out) == before


def test_an_old_entry_that_cannot_be_moved_back_stays_in_the_hidden_folder(
        tmp_path, monkeypatch) -> None:
    """A move that fails is undone, and where putting an old entry back fails too (on
    Windows a file another program opened meanwhile) it is left in the hidden folder,
    never deleted with it: the user's only copy of it is there. It was left without a
    word; one warning names it and the hidden folder it is in."""
    out, new = tmp_path / "out", tmp_path / "new"
    for folder, text in ((out, "old"), (new, "new")):
        folder.mkdir()
        for name in ("a.txt", "b.txt"):
            (folder / name).write_text(f"{text} {name[0]}")
    replace = os.replace

    def held(src, dst, **kwargs):
        if src == new / "b.txt" or (dst == out / "a.txt" and src.parent.name.endswith(".old")):
            raise PermissionError(errno.EACCES, "Permission denied", str(src))
        return replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", held)
    with warnings.catch_warnings(record=True) as left, pytest.raises(PermissionError) as caught:
        warnings.simplefilter("always")
        replace_paths([(new / "a.txt", out / "a.txt"), (new / "b.txt", out / "b.txt")])
    assert caught.value.filename == str(out / "b.txt")
    [aside] = [p.name for p in out.iterdir() if p.name.endswith(".old")]
    assert [str(w.message) for w in left] == [
        f"{out / 'a.txt'}: could not be put back; it is in {out / aside}"]
    assert _contents(tmp_path) == {f"out/{aside}/a.txt": "old a", "out/b.txt": "old b",
                                   "new/a.txt": "new a", "new/b.txt": "new b"}


@pytest.mark.parametrize("name, code", [("b.md", errno.EISDIR), ("clips", errno.ENOTDIR)])
def test_an_entry_of_another_kind_is_refused_before_anything_moves(tmp_path, name,
                                                                    code) -> None:
    """A folder named as an output file (a user's ``aggregate.md/``) was deleted whole."""
    out, sources = _two_runs(tmp_path)
    victim = out / name
    if victim.is_dir():
        import shutil

        shutil.rmtree(victim)
        victim.write_text("mine")
    else:
        victim.unlink()
        victim.mkdir()
        (victim / "notes.txt").write_text("mine")
    before = _contents(out)
    with pytest.raises(OSError) as caught:
        replace_entries(out, sources)
    assert (caught.value.errno, caught.value.filename) == (code, str(victim))
    assert _contents(out) == before


@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="no signal masks")
def test_a_signal_while_a_pool_forks_waits_for_the_workers_handlers() -> None:
    """A signal that reached a worker between its fork and its handlers ran the command's
    handler in it; held while the pool forks, it reaches the command as the block ends and
    each worker once ``leave_signals_to_parent`` has set its own."""
    script = """
import os, signal, sys
from denoiser.outfiles import leave_signals_to_parent, signals_held
caught = []
signal.signal(signal.SIGINT, lambda *a: caught.append("command"))
with signals_held("fork"):
    child = os.fork()
    if child == 0:
        os.kill(os.getpid(), signal.SIGINT)  # pending: the command's handler must not run
        leave_signals_to_parent()  # ignores SIGINT, then lets it in
        held = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        os._exit(3 if held else 0)
    os.kill(os.getpid(), signal.SIGINT)
    inside = list(caught)
_, status = os.waitpid(child, 0)
print(inside, caught, os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split("\n")[0] == "[] ['command'] 0", done.stdout + done.stderr


@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="no signal masks")
@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_a_pool_that_spawns_its_workers_starts_them_with_the_signals_held(start_method) -> None:
    """Spawned workers (macOS's ``dataset synth --jobs``) took SIGINT and SIGTERM at once:
    the pool's first lock started multiprocessing's resource tracker inside the hold, and it
    let both in again in the command as it spawned its process. The command holds all three
    until the pool has started, and so does a worker until it sets its handlers."""
    script = f"""
import multiprocessing, signal
from denoiser.outfiles import WORKER_SIGNALS, signals_held
def held(mask): return sorted(s for s in mask if s in WORKER_SIGNALS)
if __name__ == "__main__":
    with signals_held({start_method!r}):
        pool = multiprocessing.get_context({start_method!r}).Pool(1)
        command = held(signal.pthread_sigmask(signal.SIG_BLOCK, []))
    worker = held(pool.apply(signal.pthread_sigmask, (signal.SIG_BLOCK, [])))  # as it started
    pool.close()  # not terminate: its SIGTERM waits, held, as no handler lets it in
    pool.join()
    print(len(command), len(worker), len(held(signal.pthread_sigmask(signal.SIG_BLOCK, []))))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    held = str(len(WORKER_SIGNALS))  # 3; 1 (SIGHUP) as the tracker let the others in
    assert done.stdout.split() == [held, held, "0"], done.stdout + done.stderr

"""Facts about the files debleed writes, and how it writes them, in the standard library
alone: the REAPER bridge, which must not import numpy, writes WAVs, settings and indexes
with them and cleans up after a killed worker by them."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DebleedError

#: Suffix of a temporary audio output (``audio.open_wav_writer``).
AUDIO_SUFFIX = ".tmp.wav"
#: A RIFF WAV counts its bytes in 32 bits: past 4 GiB (3.1 h of 48-kHz stereo float32)
#: readers cut it short, so larger outputs are RF64 (EBU Tech 3306), the 64-bit WAV that
#: REAPER reads. Less than 2**32 by room for the header's own chunks (``fmt ``, ``fact``,
#: the audio's chunk header); a carried ``bext``, up to 10 KiB, is counted beside the audio
#: (``audio.wav_container``).
WAV_LIMIT_BYTES = 2**32 - 1 - 4096
#: Errors of a write that concern the file written, never one read in the same block: a
#: full disk, a file past the size limit, a full quota (``atomic_output``).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
#: What a terminal, ``kill -- -PGID`` or a job scheduler sends a whole run, workers included
#: (Windows has no SIGHUP): its workers leave them to the command (``leave_signals_to_parent``,
#: ``end_quietly_on_signals``, ``signals_held``).
WORKER_SIGNALS = frozenset(getattr(signal, name) for name in ("SIGINT", "SIGHUP", "SIGTERM")
                           if hasattr(signal, name))


def hidden_prefix(name: str) -> str:
    """The prefix of a temporary sibling of ``name``: hidden, and ``name`` cut to 40
    characters, so the temporary name fits a file system's 255 bytes whenever ``name``
    itself does (a random part and a suffix are added), then a checksum of the whole name.
    Without it two names alike in their first 40 characters (``<long stem>.debleed.wav``
    and ``<long stem>.debleed-2.wav``) shared a prefix, and a failed run that removes its
    temporary files by it removed another run's as well."""
    return f".{name[:40]}.{zlib.crc32(name.encode('utf-8', 'surrogatepass')):08x}."


def _new_sibling(path: Path, suffix: str, folder: bool = False) -> Path:
    """A new hidden file (or folder) beside ``path``, with the permissions a plain ``open``
    (``mkdir``) gives: 0o666 (0o777) less the umask, applied by the kernel. ``mkstemp`` and
    ``mkdtemp`` make owner-only ones, and an output renamed into place must be as readable
    as any file the user makes; reading the umask to correct that means setting it, for
    the whole process, where REAPER's own threads may be creating files."""
    for _ in range(100):
        candidate = path.parent / f"{hidden_prefix(path.name)}{secrets.token_hex(4)}{suffix}"
        try:
            if folder:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        except PermissionError as exc:  # Windows: the name is a folder, or a file being deleted
            if os.name == "nt" and os.access(path.parent, os.W_OK):
                continue
            raise _naming(exc, path.parent) from None
        except OSError as exc:  # a read-only or full folder: name it, not a hidden name
            raise _naming(exc, path.parent) from None
        return candidate
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _naming(exc: OSError, target: str | os.PathLike) -> OSError:
    """``exc`` about ``target`` instead of a temporary name the user never gave and that is
    gone by the time the error is read ("ro/.s.pt.124a7757.73bd1b48.tmp: Read-only file
    system")."""
    return type(exc)(exc.errno, exc.strerror, os.fspath(target))


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside ``path`` that becomes ``path`` when the block ends and is
    removed if it fails, so nobody ever reads half a file, with the folders it made for it
    (when they are still empty). It gets the permissions a plain ``open`` would give
    (``_new_sibling``). An ``OSError`` naming the temporary file names ``path`` instead, and
    so does a failed ``write()``'s, which names no file: a full disk said only "[Errno 28]
    No space left on device" of a checkpoint, a report or a manifest (``WRITE_ERRNOS``:
    a nameless error of another kind may be a read's, of an input)."""
    path = Path(path)
    created = missing_folders(path.parent)
    try:  # making them may fail part-way (a name too long): the ones made go again
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_sibling(path, suffix)
    except BaseException:
        remove_empty_folders(created)
        raise
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        remove_empty_folders(created)
        if isinstance(exc, OSError) and (
                (exc.filename is None and exc.errno in WRITE_ERRNOS)
                or (isinstance(exc.filename, (str, bytes, os.PathLike))  # not a descriptor
                    and os.fsdecode(exc.filename) == os.fspath(tmp))):
            raise _naming(exc, path) from None
        raise


@contextmanager
def staging_folder(out: Path, builds: Path | None = None) -> Iterator[Path]:
    """A new, empty hidden folder beside ``out``, with the permissions ``mkdir`` would give,
    to build ``builds`` (default ``out``) in before the caller moves it into place (a
    dataset, a report), inside the block. If the block fails the folder is removed, and so
    are the missing parents made for it while they are still empty: a failed command leaves
    the disk as it found it. An error that names a path in the folder names it under
    ``builds`` instead (``_staged_as``)."""
    out = out.absolute()
    created = missing_folders(out.parent)
    staging: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = _new_sibling(out, ".tmp", folder=True)
        yield staging
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        remove_empty_folders(created)
        renamed = exc if staging is None else _staged_as(exc, staging, (builds or out).absolute())
        if renamed is exc:
            raise
        raise renamed from None


@contextmanager
def staged_into(out: Path, marker: str, move_up: Callable[[Path], None]) -> Iterator[Path]:
    """A hidden folder (``staging_folder``) to build ``out``'s contents in. A new ``out`` is
    staged beside it and renamed into place when the block ends. An existing one is staged
    inside it, in a folder named after ``marker`` (the file that makes ``out`` what it is),
    and ``move_up`` moves the staged entries into ``out``: it may be a mount point or a link
    to another disk, which can be neither renamed over nor moved into from a folder beside
    it (EXDEV, after all the work), and ``.`` needs no writable parent that way."""
    if not out.is_dir():
        with staging_folder(out) as staging:
            yield staging
            os.replace(staging, out)
        return
    with staging_folder(out / marker, builds=out) as staging:  # a hidden folder in ``out``
        yield staging
        move_up(staging)
        staging.rmdir()


@contextmanager
def replaced_together(out: Path, names: Sequence[str]) -> Iterator[Path]:
    """A hidden folder in ``out`` to write the entries ``names`` into; when the block ends
    they replace ``out``'s entries of those names together (``replace_entries``), and if it
    fails nothing in ``out`` changes (``staging_folder``). For outputs that belong together
    (a benchmark's JSON and Markdown, a demo's three files, the installed scripts): written
    one after the other, a failure part-way left one run's files beside another's."""
    with staging_folder(out / names[0], builds=out) as staging:
        yield staging
        replace_entries(out, [staging / name for name in names])
        staging.rmdir()


def _staged_as(exc: BaseException, staging: Path, builds: Path) -> BaseException:
    """``exc`` naming the path under ``builds`` where it names one in ``staging``, a hidden
    folder the user never gave and that is gone by the time the error is read ("data/.rep.
    e0bb8bf2.ec81d862.tmp/clips/clip-00000: could not write the output there"). The file
    system's errors carry the path as their file name; debleed's own (``DebleedError``, a
    one-line message) in their text."""
    if isinstance(exc, OSError) and isinstance(exc.filename, (str, os.PathLike)):
        name = Path(exc.filename)
        if name.is_relative_to(staging):
            return _naming(exc, builds / name.relative_to(staging))
    if isinstance(exc, DebleedError) and str(staging) in str(exc):
        return type(exc)(str(exc).replace(str(staging), str(builds)))
    return exc


def replace_entries(out: Path, sources: Sequence[Path]) -> None:
    """Move ``sources`` (files or folders on ``out``'s file system) into ``out`` under their
    names, together (``replace_paths``): ``out`` then holds all of them or, when a move
    fails, the entries it held before, as they were. Outputs that belong together (a
    report's pages and its clips' audio) were moved in one by one, and a move cut short (a
    file another program holds, on Windows) left one run's files beside another's.

    An entry of another kind (a folder where a file goes, a file or a link where a folder
    goes) is refused before anything moves: it is not an earlier output. An old folder
    replaced is deleted whole: the caller vouches that it is its own."""
    targets = [out / source.name for source in sources]
    for source, target in zip(sources, targets):
        _check_kind(source, target)
    replace_paths(list(zip(sources, targets)))


def _old_folder(entry: Path) -> Path:
    """A new hidden folder beside ``entry`` to move it and its neighbours aside into."""
    return _new_sibling(entry, ".old", folder=True)


def replace_paths(replacements: Sequence[tuple[Path | None, Path]],
                  hidden: Callable[[Path], Path] = _old_folder) -> None:
    """Put each ``(source, target)`` of ``replacements`` in place, all together or none: a
    ``None`` source removes what is at its target. The entries at the targets are moved
    into a hidden folder first (one a folder of targets, ``hidden`` of its first entry
    makes it), the sources in next, and the old entries deleted last, a folder whole. Each
    move is a rename: a source must be on its target's file system, and ``hidden``'s folder
    too. A move that fails is undone in reverse and raised naming its target, not a hidden
    name; what cannot be moved back stays in the hidden folder, never deleted. Once every
    source is in, the replacement stands: an old entry that cannot be deleted stays in the
    hidden folder, named by a warning (``discard_replaced``)."""
    asides: dict[Path, Path] = {}
    moves: list[tuple[Path, Path, Path]] = []  # (from, to, the name an error gives)
    done: list[tuple[Path, Path]] = []
    try:
        for _, target in replacements:
            if os.path.lexists(target):
                if target.parent not in asides:
                    asides[target.parent] = hidden(target)
                moves.append((target, asides[target.parent] / target.name, target))
        moves += [(source, target, target) for source, target in replacements
                  if source is not None]
        for source, destination, shown in moves:
            try:
                os.replace(source, destination)
            except OSError as exc:
                raise _naming(exc, shown) from None
            done.append((source, destination))
    except BaseException:
        _undo(done)
        for aside in asides.values():
            remove_empty_folders([aside])
        raise
    for aside in asides.values():
        discard_replaced(aside)


def discard_replaced(folder: str | os.PathLike) -> None:
    """Delete ``folder``, the hidden one a replacement put the old entries in, as far as it
    goes. Every new entry is in place by then, so a failure here (on Windows a file another
    program opened with delete sharing stays listed, and its folder cannot be removed) is
    no failure of the command: raised, it reported outputs replaced as not, and left the
    folder without a word on what it was. A one-line warning names what is left."""
    shutil.rmtree(folder, ignore_errors=True)
    if os.path.lexists(folder):
        warnings.warn(f"{os.fspath(folder)}: the replaced entries could not all be deleted "
                      "from this hidden folder (a file another program holds?); delete it",
                      stacklevel=3)


def _check_kind(source: Path, target: Path) -> None:
    """Refuse to move ``source`` onto a ``target`` of another kind (a link counts as a
    file): a file cannot be renamed over a folder, and a folder named as an output file
    (``aggregate.md/``) is the user's, not an earlier output to delete."""
    if not os.path.lexists(target):
        return
    folder = target.is_dir() and not target.is_symlink()
    if source.is_dir() != folder:
        code = errno.EISDIR if folder else errno.ENOTDIR
        raise OSError(code, os.strerror(code), str(target))


def _undo(moves: list[tuple[Path, Path]]) -> None:
    """Move each ``(source, destination)`` of ``moves`` back, the last first; one that
    fails is left where it is, so nothing is lost, and the rest still go back. A warning
    names each one left and the folder it is in: an old entry left in the hidden folder
    was there without a word, and the error raised names another target."""
    for source, destination in reversed(moves):
        try:
            os.replace(destination, source)
        except OSError:
            warnings.warn(f"{source}: could not be put back; it is in {destination.parent}",
                          stacklevel=4)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (JSON, Markdown, HTML) atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def missing_folders(path: str | os.PathLike) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first: what a command that
    makes ``path`` creates, and must remove again if it fails."""
    path = Path(os.path.abspath(path))
    return [folder for folder in (path, *path.parents) if not folder.exists()]


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty: a folder that something
    else has put a file into since is kept, and so are the folders above it."""
    for folder in folders:
        if not os.path.lexists(folder):  # False, not an error, for a name too long
            continue  # never made (mkdir failed at or above it) or already gone
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue  # gone meanwhile
        except OSError:
            return


def exit_cleanly_on_signals() -> dict[int, Any]:
    """Make SIGTERM, and SIGHUP where the system has one, raise ``SystemExit(128 + signal)``
    in the main thread; return the handlers replaced, by signal, to restore (none off the
    main thread, where none can be set).

    Python's default for both ends the process before any ``finally`` runs, so a killed
    ``debleed denoise`` or bridge worker, or one whose terminal closed (an SSH session
    dropped), left its hidden temporary output behind (for a long take, gigabytes); as an
    exception it unwinds through ``atomic_output``'s clean-up. An ignored SIGHUP stays
    ignored: a run started under ``nohup`` must go on when its terminal closes.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_exit)}
    hangup = getattr(signal, "SIGHUP", None)  # Windows has none
    if hangup is not None and signal.getsignal(hangup) is not signal.SIG_IGN:
        replaced[hangup] = signal.signal(hangup, _raise_exit)
    return replaced


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def leave_signals_to_parent() -> None:
    """Set a worker process's signals (a ``multiprocessing`` pool's) so that the command that
    started it alone acts on them: Ctrl-C (SIGINT) and a closed terminal (SIGHUP) are
    ignored, and SIGTERM ends the worker quietly, with status 0.

    A terminal sends its signals to every process of the run, as ``kill -- -PGID``, systemd
    and SLURM send theirs, and forked workers kept the command's handlers: each printed a
    KeyboardInterrupt traceback. The command ends its workers as it stops, with SIGTERM
    (``Pool.terminate``), so that one cannot be ignored. A second SIGTERM, arriving while
    the first unwinds, ends the worker at once: raised too, in a clean-up (a WAV being
    closed), it printed "Exception ignored"; ignored, a worker left waiting on a lock the
    stopping pool held never ended, nor did the run.
    """
    for signum in WORKER_SIGNALS:
        signal.signal(signum, _end_quietly if signum == signal.SIGTERM else signal.SIG_IGN)
    _let_signals_in()


@contextmanager
def signals_held(start_method: str) -> Iterator[None]:
    """Hold SIGINT, SIGHUP and SIGTERM while a pool or a DataLoader starts its workers by
    ``start_method``, to deliver them as the block ends: a signal that reached a worker
    between its start and its own handlers (``leave_signals_to_parent``,
    ``end_quietly_on_signals``) ran the command's handler in it, and a pool could wait on
    it for ever. Workers start with them held, and those functions let them in once the
    handlers are set. Where the system has no signal masks, or off the main thread, nothing
    is held.

    Any start method but fork needs multiprocessing's resource tracker, which is started
    here, before the hold: started inside it (by the pool's first lock), it let SIGINT
    and SIGTERM in again as it spawned its process, so every worker took them at once."""
    if not hasattr(signal, "pthread_sigmask") or (
            threading.current_thread() is not threading.main_thread()):
        yield
        return
    if start_method != "fork":
        from multiprocessing import resource_tracker  # not for the bridge, which has no pools

        resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def end_quietly_on_signals() -> None:
    """Make SIGINT, SIGHUP and SIGTERM end this worker process quietly, with status 0 (a
    second one at once): a DataLoader worker's, whose command shuts it down as it stops.

    Not ``leave_signals_to_parent``'s ignoring: a worker kept going while the command
    stopped, and the command, interrupted while it took a batch from it, reset the
    connection the worker sent it on, which the worker's thread reported in a traceback.
    Status 0, not the command's 129 or 143: torch reports a worker that ended otherwise as
    crashed ("DataLoader worker (pid N) exited unexpectedly", 21 lines).
    """
    for signum in WORKER_SIGNALS:
        signal.signal(signum, _end_quietly)
    _let_signals_in()


def _let_signals_in() -> None:
    """Let SIGINT, SIGHUP and SIGTERM into a worker that started with them held
    (``signals_held``), once its own handlers are set: one sent meanwhile is handled now."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)


def _end_quietly(signum: int, frame: object) -> None:
    """Raise ``SystemExit(0)``, so the worker's clean-up runs; the same signal again ends
    it outright (the system's default action), whatever that clean-up waits on."""
    signal.signal(signum, signal.SIG_DFL)
    raise SystemExit(0)

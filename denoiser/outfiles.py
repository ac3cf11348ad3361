"""Facts about the files debleed writes, and how it writes them, in the standard library
alone: the REAPER bridge, which must not import numpy, writes WAVs, settings and indexes
with them and cleans up after a killed worker by them."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Suffix of a temporary audio output (``write_audio``, ``denoise_file``).
AUDIO_SUFFIX = ".tmp.wav"
#: A RIFF WAV counts its bytes in 32 bits: past 4 GiB (3.1 h of 48-kHz stereo float32)
#: readers cut it short, so larger outputs are RF64 (EBU Tech 3306), the 64-bit WAV that
#: REAPER reads. Less than 2**32 by room for the header's chunks.
WAV_LIMIT_BYTES = 2**32 - 1 - 4096
_UMASK = os.umask(0o022)  # read once (the call sets it), then put back
os.umask(_UMASK)


def hidden_prefix(name: str) -> str:
    """The prefix of a temporary sibling of ``name``: hidden, and ``name`` cut to 40
    characters, so the temporary name fits a file system's 255 bytes whenever ``name``
    itself does (a random part and a suffix are added)."""
    return f".{name[:40]}."


def plain_permissions(path: Path) -> None:
    """Give ``path`` the permissions ``open`` or ``mkdir`` would (the umask's), not the
    owner-only ones of ``mkstemp``/``mkdtemp``: an output is renamed into place and must
    be as readable as any file the user makes."""
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_UMASK)


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside ``path`` that becomes ``path`` when the block ends and is
    removed if it fails, so nobody ever reads half a file. It gets the permissions a plain
    ``open`` would give, not ``mkstemp``'s owner-only ones."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=hidden_prefix(path.name), suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        plain_permissions(tmp)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

def staging_folder(out: Path) -> Path:
    """A new, empty hidden folder beside ``out``, with the permissions ``mkdir`` would give,
    to build ``out`` in before it is moved into place (a dataset, a report)."""
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=hidden_prefix(out.name), suffix=".tmp", dir=parent))
    plain_permissions(staging)
    return staging


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
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue  # never made (mkdir failed below it) or already gone
        except OSError:
            return


def exit_cleanly_on_sigterm() -> Any:
    """Make SIGTERM raise ``SystemExit(143)`` in the main thread; return the handler it
    replaces (``None`` off the main thread, where none can be set).

    Python's default SIGTERM ends the process before any ``finally`` runs, so a killed
    ``debleed denoise`` or bridge worker left its hidden temporary output behind (for a
    long take, gigabytes); as an exception it unwinds through ``atomic_output``'s clean-up.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)

"""Facts about the files debleed writes, in the standard library alone: the REAPER bridge,
which must not import numpy, writes WAVs and cleans up after a killed worker by them."""

from __future__ import annotations

import signal
import threading
from typing import Any

#: Suffix of a temporary audio output (``write_audio``, ``denoise_file``).
AUDIO_SUFFIX = ".tmp.wav"
#: A RIFF WAV counts its bytes in 32 bits: past 4 GiB (3.1 h of 48-kHz stereo float32)
#: readers cut it short, so larger outputs are RF64 (EBU Tech 3306), the 64-bit WAV that
#: REAPER reads. Less than 2**32 by room for the header's chunks.
WAV_LIMIT_BYTES = 2**32 - 1 - 4096


def hidden_prefix(name: str) -> str:
    """The prefix of a temporary sibling of ``name``: hidden, and ``name`` cut to 40
    characters, so the temporary name fits a file system's 255 bytes whenever ``name``
    itself does (a random part and a suffix are added)."""
    return f".{name[:40]}."


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

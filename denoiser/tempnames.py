"""Names of the temporary files outputs are written through (standard library only: the
REAPER bridge, which must not import numpy, removes a killed worker's leftovers by them)."""

from __future__ import annotations

#: Suffix of a temporary audio output (``write_audio``, ``denoise_file``).
AUDIO_SUFFIX = ".tmp.wav"


def hidden_prefix(name: str) -> str:
    """The prefix of a temporary sibling of ``name``: hidden, and ``name`` cut to 40
    characters, so the temporary name fits a file system's 255 bytes whenever ``name``
    itself does (a random part and a suffix are added)."""
    return f".{name[:40]}."

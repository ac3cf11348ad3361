"""General MIDI drum files as grooves, so users can bring real performances.

A GM drum track (channel 10) becomes ``Events`` with the same roles the groove generator
uses; ``training.synth.render_performance`` then renders any window of it through the
snare-mic model exactly like a generated groove.
"""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np

from .errors import DatasetError
from .grooves import ROLE, Events
from .kits import visible_files

DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0
#: MIDI file type 2 (asynchronous): each track is a pattern of its own, with its own tempo,
#: not a part of one performance, so mido refuses to merge them into one timeline.
ASYNCHRONOUS_TYPE = 2
MIDI_SUFFIXES = (".mid", ".midi")
# GM percussion key map -> (role, tom index 0 = high .. 3 = floor)
GM_NOTES: dict[int, tuple[str, int]] = {
    35: ("kick", -1), 36: ("kick", -1), 37: ("sidestick", -1), 38: ("snare", -1),
    40: ("snare", -1), 42: ("hihat_closed", -1), 44: ("hihat_pedal", -1),
    46: ("hihat_open", -1), 49: ("crash", -1), 57: ("crash", -1), 55: ("crash", -1),
    51: ("ride", -1), 59: ("ride", -1), 53: ("ride", -1), 52: ("china", -1),
    50: ("tom", 0), 48: ("tom", 1), 47: ("tom", 1), 45: ("tom", 2), 43: ("tom", 3),
    41: ("tom", 3), 39: ("other", -1), 54: ("other", -1), 56: ("other", -1),
}


def read_midi(path: str | Path) -> Events:
    """Drum hits of a MIDI file in seconds (tempo map applied by mido).

    Notes on channel 10 are used when there are any (a full arrangement), else every
    channel (a drum-only file exported on another channel). Unmapped keys are skipped.
    """
    path = Path(path)
    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise DatasetError(f"{path}: not a readable MIDI file ({_reason(exc)})") from None
    _refuse_asynchronous(path, midi)
    _refuse_timecode(path, midi)
    now = 0.0
    hits: list[tuple[float, int, int]] = []
    for message in midi:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            hits.append((now, message.channel, message.note, message.velocity))
    if any(channel == DRUM_CHANNEL for _, channel, _, _ in hits):
        hits = [hit for hit in hits if hit[1] == DRUM_CHANNEL]
    hits = [hit for hit in hits if hit[2] in GM_NOTES]
    if not hits:
        raise DatasetError(f"{path}: no General MIDI drum notes found")
    time, _, notes, velocity = (np.array(column) for column in zip(*hits))
    roles = np.array([ROLE[GM_NOTES[int(n)][0]] for n in notes], np.int8)
    toms = np.array([GM_NOTES[int(n)][1] for n in notes], np.int8)
    return Events(time.astype(np.float64), roles, velocity.astype(np.int16), toms).sorted()


def _reason(exc: Exception) -> str:
    """Why mido could not read a file: its message, else what the error means. An empty or
    truncated file raises a bare ``EOFError``, and the error read "not a readable MIDI
    file ()"."""
    if str(exc):
        return str(exc)
    return "the file ends early" if isinstance(exc, EOFError) else type(exc).__name__


def _refuse_timecode(path: Path, midi: mido.MidiFile) -> None:
    """Refuse a header whose time division is not a positive count of ticks per beat. An
    SMPTE division (frames per second and ticks per frame, which mido reads as a negative
    count) gave negative hit times in reverse order, and 0 a ZeroDivisionError traceback."""
    if midi.ticks_per_beat <= 0:
        raise DatasetError(f"{path}: its header gives {midi.ticks_per_beat} ticks per beat "
                           "(an SMPTE time-code division, or a broken header); save it with "
                           "a tempo-based division (ticks per quarter note)")


def _refuse_asynchronous(path: Path, midi: mido.MidiFile) -> None:
    """Refuse a type-2 file in one line: iterating it, mido raised a bare TypeError ("can't
    merge tracks in type 2 (asynchronous) file") and the command ended in a traceback."""
    if midi.type == ASYNCHRONOUS_TYPE:
        raise DatasetError(f"{path}: a type-2 (asynchronous) MIDI file, whose tracks are "
                           "separate patterns, not one performance; save it as type 0 or 1")


def midi_files(paths: list[str | Path]) -> list[Path]:
    """MIDI files named directly or found (recursively) in the given folders, hidden ones
    left out (``visible_files``: a folder copied from a Mac holds ``._NAME.mid``)."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found.extend(visible_files(item, MIDI_SUFFIXES))
        elif item.is_file():
            found.append(item)
        else:
            raise DatasetError(f"{item}: no such MIDI file or folder")
    if not found:
        raise DatasetError("no .mid files found in " + ", ".join(map(str, paths)))
    return found

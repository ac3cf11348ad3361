"""General MIDI drum files as grooves, so users can bring real performances.

A GM drum track (channel 10) becomes ``Events`` with the same roles the groove generator
uses; ``training.synth.render_performance`` then renders any window of it through the
snare-mic model exactly like a generated groove.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import mido
import numpy as np

from .errors import DatasetError
from .grooves import ROLE, Events
from .kits import classify_name, visible_files

DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0
# What holds until a file says otherwise, as MIDI defines it: 120 BPM and 4/4.
DEFAULT_TEMPO = mido.MetaMessage("set_tempo", tempo=500_000)
DEFAULT_METER = mido.MetaMessage("time_signature", numerator=4, denominator=4)
#: A track name that says it holds the drums ("Drums", "Drum Kit", "Percussion", "drumkit").
DRUM_TRACK = re.compile(r"drum|perc|\bkit\b", re.IGNORECASE)
#: MIDI file type 2 (asynchronous): each track is a pattern of its own, with its own tempo,
#: not a part of one performance, so mido refuses to merge them into one timeline.
ASYNCHRONOUS_TYPE = 2
MIDI_SUFFIXES = (".mid", ".midi")
#: The fastest quarter note a file may set. Played music stays far below (blast beats and
#: speedcore reach 250-400 BPM); the rest leaves room for a file written at double or
#: quadruple time. Faster is a broken tempo map: a groove loops at its bar length, and a
#: tempo of 1 microsecond a beat made a bar of 4 that ``dataset synth`` looped without end.
#: No slowest: a slow tempo only spreads hits out (notation exports slow down for fermatas),
#: and MIDI's 24-bit tempo stops at 3.6 BPM.
MAX_BPM = 1000
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
    """Drum hits of a MIDI file in seconds (its tempo map applied).

    Notes on channel 10 are used when there are any (a full arrangement), else those of the
    file's one track and channel (a drum-only file exported on another channel), of tracks
    that are all drums by their names, or of the one track named as drums among others
    (``_drum_notes``). Unmapped keys are skipped.
    """
    return read_performance(path)[0]


def read_performance(path: str | Path) -> tuple[Events, float | None]:
    """A MIDI file's drum hits (``read_midi``) and its bar length in seconds, where it keeps
    one tempo and one time signature (None where either changes): a groove loop shorter
    than a clip is played over and over at its bar length."""
    path = Path(path)
    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise DatasetError(f"{path}: not a readable MIDI file ({_reason(exc)})") from None
    _refuse_asynchronous(path, midi)
    _refuse_timecode(path, midi)
    timed = list(_timed(midi))
    notes = np.array([(tick, track, message.channel, message.note, message.velocity)
                      for tick, track, message in timed
                      if message.type == "note_on" and message.velocity > 0], np.int64)
    if notes.size:
        notes = _drum_notes(path, midi, notes)
        notes = notes[np.isin(notes[:, 3], list(GM_NOTES))]
    if not notes.size:
        raise DatasetError(f"{path}: no General MIDI drum notes found")
    tempo = _changes(timed, "set_tempo", DEFAULT_TEMPO)
    _refuse_fast_tempo(path, tempo, int(notes[:, 0].max()))
    time = _seconds(notes[:, 0], tempo, midi.ticks_per_beat)
    roles = np.array([ROLE[GM_NOTES[int(n)][0]] for n in notes[:, 3]], np.int8)
    toms = np.array([GM_NOTES[int(n)][1] for n in notes[:, 3]], np.int8)
    events = Events(time, roles, notes[:, 4].astype(np.int16), toms).sorted()
    return events, _bar_seconds(tempo, _changes(timed, "time_signature", DEFAULT_METER))


def _timed(midi: mido.MidiFile) -> Iterator[tuple[int, int, mido.Message]]:
    """Every message with its tick from the file's start and its track's index, track by
    track: a note must be known by its track (``_drum_notes``), which mido's merged
    playback forgets."""
    for index, track in enumerate(midi.tracks):
        tick = 0
        for message in track:
            tick += message.time
            yield tick, index, message


def _changes(timed: list[tuple[int, int, mido.Message]], kind: str,
             default: mido.MetaMessage) -> list[tuple[int, mido.MetaMessage]]:
    """The ``kind`` meta messages (tempo, time signature) as (tick, message) in the order
    mido's playback meets them, ``default`` holding until the first: where several tracks
    give one at a tick, the last track's holds, so only it is kept."""
    changes = sorted([(0, default)] + [(tick, message) for tick, _, message in timed
                                       if message.type == kind],
                     key=lambda change: change[0])  # stable: a tick's last change comes last
    return [change for change, after in zip(changes, changes[1:] + [(-1, default)])
            if change[0] != after[0]]


def _seconds(ticks: np.ndarray, tempo: list[tuple[int, mido.MetaMessage]],
             ticks_per_beat: int) -> np.ndarray:
    """``ticks`` in seconds through the ``tempo`` changes (``_changes``), as mido's playback
    times them."""
    at = np.array([tick for tick, _ in tempo], np.float64)
    per_tick = np.array([message.tempo for _, message in tempo]) / (1e6 * ticks_per_beat)
    start = np.r_[0.0, np.cumsum(np.diff(at) * per_tick[:-1])]
    index = np.searchsorted(at, ticks, side="right") - 1
    return start[index] + (ticks - at[index]) * per_tick[index]


def _bar_seconds(tempo: list[tuple[int, mido.MetaMessage]],
                 meter: list[tuple[int, mido.MetaMessage]]) -> float | None:
    """One bar in seconds where the file keeps one tempo and one time signature, else None
    (bars then differ in length, and a bar line cannot be placed by the clock alone)."""
    tempos = {message.tempo for _, message in tempo}
    meters = {(message.numerator, message.denominator) for _, message in meter}
    if len(tempos) > 1 or len(meters) > 1:
        return None
    [(beats, unit)] = meters
    bar = beats * 4 / unit * tempos.pop() / 1e6
    return bar if bar > 0 else None  # a meter of 0: a broken header, no bar


def _refuse_fast_tempo(path: Path, tempo: list[tuple[int, mido.MetaMessage]],
                       last_hit: int) -> None:
    """Refuse a tempo (``_changes``, so a change inside the file too) faster than
    ``MAX_BPM`` that is in force at or before the last drum hit's tick ``last_hit``,
    naming it, its ``set_tempo`` value and its tick. One after the last hit times no hit
    and is let be: refused, it stopped a whole ``dataset synth --midi`` build."""
    for tick, message in tempo:
        if tick <= last_hit and message.tempo < mido.bpm2tempo(MAX_BPM):
            bpm = mido.tempo2bpm(message.tempo) if message.tempo else math.inf
            raise DatasetError(f"{path}: a tempo of {bpm:.0f} BPM (set_tempo {message.tempo}) "
                               f"at tick {tick} is faster than {MAX_BPM} BPM, no "
                               "performance's; fix the file's tempo map")


def _drum_notes(path: Path, midi: mido.MidiFile, notes: np.ndarray) -> np.ndarray:
    """The drums among ``notes`` (rows of tick, track, channel, key, velocity): channel 10's,
    else those of the file's only track and channel, else all of them where every track
    keeps to one channel and is named by a kit piece or as drums ("Kick", "Snare", "Perc";
    "Drums Verse", "Drums Chorus"), else the one track named as drums among others (with a
    warning).
    Others are refused: read together, an eighth-note bass on channel 2 became 96 snare
    hits (its E2 and D2 are GM snare keys)."""
    drums = notes[:, 2] == DRUM_CHANNEL
    if drums.any():
        return notes[drums]
    tracks = np.unique(notes[:, 1])
    if len(np.unique(notes[:, 1:3], axis=0)) == 1:
        return notes

    def drum_track(track: int) -> bool:  # a track of a bass and drums has two channels
        name = midi.tracks[track].name
        return (bool(classify_name(name) or DRUM_TRACK.search(name))
                and len(np.unique(notes[notes[:, 1] == track, 2])) == 1)

    named = [track for track in tracks if drum_track(track)]
    if len(named) == len(tracks):
        return notes  # a track per drum, as some DAWs export, or the drums in sections
    named = [track for track in named if DRUM_TRACK.search(midi.tracks[track].name)]
    if len(named) == 1:
        others = ", ".join(_track_label(midi, track) for track in tracks if track != named[0])
        warnings.warn(f"{path}: no notes on channel 10; only track "
                      f"{_track_label(midi, named[0])} is read as the drums, not {others}",
                      stacklevel=3)
        return notes[notes[:, 1] == named[0]]
    channels = np.unique(notes[:, 2])
    raise DatasetError(f"{path}: no notes on channel 10 (General MIDI drums) but notes on "
                       f"channel{'s' * (len(channels) > 1)} "
                       f"{', '.join(str(channel + 1) for channel in channels)} in "
                       f"track{'s' * (len(tracks) > 1)} "
                       f"{', '.join(_track_label(midi, track) for track in tracks)}; put the "
                       "drums on channel 10 or export the drum track alone")


def _track_label(midi: mido.MidiFile, track: int) -> str:
    """A track as a DAW shows it: its name, else its number from 1."""
    name = midi.tracks[track].name
    return repr(name) if name else f"#{track + 1}"


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

"""An in-memory REAPER: the ReaScript functions the bridge uses, over real WAV files.

``FakeReaper.module()`` returns a ``reaper_python``-like module of ``RPR_*`` functions
with the tuple shapes of REAPER's Python binding (functions with out-parameters or
buffers return ``(retval, *all_params)`` with the buffers filled; plain ones return the
value), and pointers formatted as REAPER formats them (``"(MediaItem*)0x0000000012345678"``,
null = all zeros). Playback is modelled where the tests need it: an audio accessor
returns what a take plays (offset, playrate, sections, stretch markers, loop source,
channel mode; neither take nor item volume) from the real files on disk, or what a track
plays (its items mixed, in project time). Take FX are listed (their names) and take
envelopes kept as their state chunks hold them (points, shapes, active, visible, armed),
neither played; like REAPER's accessors, the fake's reads are before take FX and envelopes.

An item's take list may hold an empty take (``None``): REAPER counts it, but ``GetTake``
and ``GetActiveTake`` give NULL for it.

Pointer arguments go through the module's ``rpr_packp`` as in REAPER's ``reaper_python``:
it parses ``"(Type*)0xHEX"`` and returns the address only when ``RPR_ValidatePtr`` knows
the object (in the project, not deleted), else 0, and the function then gets NULL. As
REAPER's, ``RPR_ValidatePtr`` knows only the types ``ValidatePtr2``'s documentation lists,
so through REAPER's own packer an audio accessor is always NULL: it is never read and
never destroyed. The module's *current* ``rpr_packp`` is looked up at each call, so a
packer a client installs later (reapy does, ``RawRPR`` does) takes effect, as in REAPER.

``module(function_table=True)`` adds REAPER's ctypes function table ``_ft`` with
``GetAudioAccessorSamples`` alone, a C-callable function of the binding's signature that
fills the ``double`` buffer it is given: the path the bridge reads the accessor by inside
REAPER. Without the table the bridge reads through ``RPR_GetAudioAccessorSamples``, as
through reapy's distant API; tests choose the path by the argument.

``RPR_defer`` and ``RPR_atexit`` are not in the module: in REAPER they are built-ins of
the script host, set in the running script's ``__main__`` (reapy's ``defer`` and
``at_exit`` call them there). ``run_script`` and ``run_deferred`` provide them, and
``run_script`` adds REAPER's automatic "ReaScript: Run" undo point to a run that neither
calls ``RPR_defer`` nor opens an undo block. Each ``run_script`` is one running instance of
a script (``ScriptRun``), as REAPER keeps them: the code it defers, from its own run or
from its deferred code, is its own, and it runs until none is left. The code it gave
``RPR_atexit`` runs then, "when the script finishes or is ended by the user" (REAPER's
ReaScript documentation), and ``terminate`` is the user ending it (*Actions > Running
scripts*, or *Terminate instances* when its action is run again): its pending deferred code
is dropped and its atexit code runs.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import json
import os
import re
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import soundfile as sf


POINTER = re.compile(r"\((\w+\*|HWND)\)0x([0-9A-F]{16})")


def null(kind: str) -> str:
    return f"({kind})0x{0:016X}"


def is_null_pointer(ptr: Any) -> bool:
    """Whether ``ptr`` is a pointer string whose address is 0."""
    match = POINTER.fullmatch(str(ptr))
    return match is not None and int(match[2], 16) == 0


class NullPointer(ValueError):
    """A function got a pointer ``rpr_packp`` packed as NULL (REAPER then does nothing)."""


@dataclass
class Source:
    ptr: str
    kind: str  # WAVE, SECTION, MIDI, or UNMAPPED (no file: only the accessor reads it)
    filename: str = ""
    rate: int = 0
    channels: int = 0
    parent: "Source | None" = None
    offset: float = 0.0
    length: float = 0.0
    reverse: bool = False  # length: of the section, or of the whole file (seconds)
    samples: np.ndarray | None = None  # UNMAPPED sources keep their audio here


@dataclass(frozen=True)
class Point:
    """An envelope point: ``PT time value shape`` in the chunk (tension: its 8th field)."""

    time: float
    value: float
    shape: int = 0
    tension: float = 0.0


@dataclass
class Envelope:
    """A take envelope as its state chunk holds it (ReaTeam's "State Chunk Definitions":
    ``EGUID``, ``ACT``, ``VIS``, ``ARM``, ``DEFSHAPE``, ``PT`` lines). ``name``: "Volume",
    "Pan", "Mute" or "Pitch" (a take's own, in ``Take.envelopes``), or for a take FX
    parameter's (``param``, kept in that FX's ``envelopes`` as REAPER keeps ``PARMENV``
    in the FX's chunk) what ``GetEnvelopeName`` gives, "<parameter> / <FX>"."""

    ptr: str
    name: str
    param: int | None = None
    guid: str = ""
    active: bool = True
    visible: bool = True
    armed: bool = False
    shape: int = 0  # DEFSHAPE: the default shape of new points
    scaling: int = 0  # VOLTYPE: 1 for a volume envelope with fader scaling (a preference)
    points: list[Point] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return "PARMENV" if self.param is not None else TAKE_ENVELOPE_TAGS[self.name]

    def chunk(self) -> str:
        """The state chunk REAPER writes for it (``GetEnvelopeStateChunk``)."""
        head = (f"<PARMENV {self.param} 0.000000 1.000000 0.500000" if self.param is not None
                else f"<{self.tag}")
        lines = [head, f"EGUID {self.guid}", f"ACT {int(self.active)} -1",
                 f"VIS {int(self.visible)} 1 1", "LANEHEIGHT 0 0", f"ARM {int(self.armed)}",
                 f"DEFSHAPE {self.shape} -1 -1"] + ([f"VOLTYPE {self.scaling}"] * bool(self.scaling))
        lines += [f"PT {p.time!r} {p.value!r} {p.shape}"
                  + (f" 0 0 0 {p.tension!r}" if p.tension else "") for p in self.points]
        return "\n".join(lines + [">"])

    def set_chunk(self, chunk: str) -> bool:
        """Take the state of ``chunk`` (``SetEnvelopeStateChunk``); false, unchanged, for
        one that is no whole chunk of this envelope's type (and parameter). Its ``EGUID``,
        when it has one, becomes the envelope's."""
        lines = [line.strip() for line in chunk.strip().splitlines()]
        head = lines[0].split() if lines else []
        if (not head or head[0] != "<" + self.tag or lines[-1] != ">"
                or (self.param is not None
                    and (len(head) < 2 or head[1].split(":")[0] != str(self.param)))):
            return False
        points = []
        for fields in (line.split() for line in lines[1:-1]):
            key, values = fields[0], fields[1:]
            if key == "EGUID":
                self.guid = values[0]
            elif key in ("ACT", "VIS", "ARM"):
                setattr(self, {"ACT": "active", "VIS": "visible", "ARM": "armed"}[key],
                        values[0] != "0")
            elif key == "DEFSHAPE":
                self.shape = int(values[0])
            elif key == "VOLTYPE":  # a chunk without it leaves it: REAPER documents neither
                self.scaling = int(values[0])
            elif key == "PT":
                points.append(Point(float(values[0]), float(values[1]),
                                    int(values[2]) if len(values) > 2 else 0,
                                    float(values[6]) if len(values) > 6 else 0.0))
        self.points = points
        return True


@dataclass
class FX:
    """A take FX: what the tests look at (REAPER's copy carries the whole plug-in state),
    and its parameter envelopes by parameter index."""

    name: str
    enabled: bool = True
    envelopes: dict[int, Envelope] = field(default_factory=dict)


@dataclass
class Take:
    ptr: str
    item: "Item"
    source: Source | None
    name: str
    values: dict[str, float] = field(default_factory=dict)
    guid: str = ""
    ext: dict[str, str] = field(default_factory=dict)  # P_EXT:<key> values
    markers: list[tuple[float, float]] = field(default_factory=list)  # (pos, srcpos), sorted
    fx: list[FX] = field(default_factory=list)  # the take FX chain, in order
    envelopes: list[Envelope] = field(default_factory=list)  # volume, pan, mute, pitch


@dataclass
class Item:
    ptr: str
    track: "Track"
    position: float
    length: float
    selected: bool = False
    notes: str = ""
    takes: list[Take | None] = field(default_factory=list)  # None: an empty take
    active: Take | None = None  # None: no take, or the empty take is active
    loop: bool = False  # B_LOOPSRC
    volume: float = 1.0  # D_VOL
    lock: int = 0  # C_LOCK: &1 locked
    all_takes_play: bool = False  # B_ALLTAKESPLAY


@dataclass(eq=False)
class ScriptRun:
    """A running instance of a script: its name (what *Actions > Running scripts* lists)
    and the code strings it gave ``RPR_atexit``, run once when it ends."""

    name: str
    atexit: list[str] = field(default_factory=list)


class Deferred(str):
    """A code string given to ``RPR_defer``, with the instance (``script``) that gave it:
    compares and runs as the string itself."""

    script: ScriptRun


@dataclass
class Track:
    ptr: str
    name: str
    selected: bool = False
    items: list[Item] = field(default_factory=list)


#: The chunk tags of a take's own envelopes, by the name ``GetTakeEnvelopeByName`` takes.
TAKE_ENVELOPE_TAGS = {"Volume": "VOLENV", "Pan": "PANENV", "Mute": "MUTEENV",
                      "Pitch": "PITCHENV"}
#: The actions "Take: Toggle take volume/pan/mute/pitch envelope", by command ID, and the
#: value of the point a new envelope gets (SWS builds its default take envelopes alike).
TOGGLE_TAKE_ENVELOPE = {40693: ("Volume", 1.0), 40694: ("Pan", 0.0), 40695: ("Mute", 1.0),
                        41612: ("Pitch", 0.0)}
TAKE_DEFAULTS = {"D_STARTOFFS": 0.0, "D_PLAYRATE": 1.0, "B_PPITCH": 1.0, "D_PITCH": 0.0,
                 "I_PITCHMODE": -1.0, "I_CHANMODE": 0.0, "D_VOL": 1.0, "D_PAN": 0.0,
                 "D_PANLAW": -1.0}
AUTO_UNDO = "ReaScript: Run"
#: Functions whose pointer parameter REAPER's binding packs as ``void*`` (any pointer type
#: parses; REAPER's packer still asks ``ValidatePtr``, which knows no ``void*``).
VOID_POINTER_ARGS = frozenset({"RPR_GetAudioAccessorSamples"})
#: ``GetAudioAccessorSamples`` as ``reaper_python`` declares it for its ``_ft`` address.
SAMPLES_FUNCTION = ct.CFUNCTYPE(ct.c_int, ct.c_uint64, ct.c_int, ct.c_int, ct.c_double,
                                ct.c_int, ct.c_void_p)
#: ``calls`` key of the reads through ``_ft`` (the ``RPR_`` function's are its own name).
FT_SAMPLES = "_ft:GetAudioAccessorSamples"
#: What a function returning a pointer gives for a NULL argument: a NULL of this type.
POINTER_RESULTS = {
    "RPR_GetTrackMediaItem": "MediaItem*", "RPR_GetMediaItem_Track": "MediaTrack*",
    "RPR_GetTake": "MediaItem_Take*", "RPR_GetActiveTake": "MediaItem_Take*",
    "RPR_AddTakeToMediaItem": "MediaItem_Take*", "RPR_GetMediaItemTake_Source": "PCM_source*",
    "RPR_GetMediaSourceParent": "PCM_source*", "RPR_CreateTakeAudioAccessor": "AudioAccessor*",
    "RPR_CreateTrackAudioAccessor": "AudioAccessor*", "RPR_GetTakeEnvelope": "TrackEnvelope*",
    "RPR_GetTakeEnvelopeByName": "TrackEnvelope*", "RPR_TakeFX_GetEnvelope": "TrackEnvelope*",
}
#: Functions with out-parameters and no return value: their tuple is the arguments back.
VOID_TUPLES = frozenset({"RPR_GetProjectPathEx", "RPR_GetMediaSourceFileName",
                         "RPR_GetMediaSourceType"})
#: What other functions give for a NULL argument, by their return annotation.
NULL_BY_TYPE: dict[str, Any] = {"bool": False, "int": 0, "float": 0.0, "str": "", "None": None}


def channel_mode(samples: np.ndarray, mode: int) -> np.ndarray:
    """What I_CHANMODE plays of ``samples`` (C, T): 0 normal, 1 reverse stereo, 2 mono
    downmix, 3..66 mono of channel mode - 2 (3 left, 4 right), 67 and above the stereo
    pair from channel mode - 66 (67 = 1/2, 68 = 2/3); a channel the source lacks is silent."""
    if mode == 0:
        return samples
    if mode == 1:
        return samples[[1, 0, *range(2, len(samples))]] if len(samples) > 1 else samples
    if mode == 2:
        return samples.mean(axis=0, keepdims=True)
    first, count = (mode - 67, 2) if mode >= 67 else (mode - 3, 1)
    return np.stack([samples[c] if c < len(samples) else np.zeros(samples.shape[1])
                     for c in range(first, first + count)])


class FakeReaper:
    def __init__(self, resource_path: str, media_dir: str):
        self.resource_path = resource_path
        self.media_dir = media_dir
        self._counter = 0x12345678
        self.objects: dict[str, Any] = {}
        self.addresses: dict[int, str] = {}  # what RPR_ValidatePtr gets: the integer
        self.project = self._ptr("ReaProject*", None)
        self.tracks: list[Track] = []
        self.ext: dict[tuple[str, str], str] = {}
        self.undo: list[tuple[str, ...]] = []
        self.undo_depth = 0
        # Undo points (description, the items' takes before the block), for Undo_DoUndo2.
        self.undo_points: list[tuple[str, dict[str, tuple[list[Take | None], Take | None]]]] = []
        self._before_block: dict[str, tuple[list[Take | None], Take | None]] = {}
        self.destroyed: set[str] = set()
        self.refuse_takes: set[str] = set()  # items whose AddTakeToMediaItem returns null
        self.refresh_depth = 0
        self.messages: list[str] = []
        self.console: list[str] = []
        self.deferred: list[Deferred] = []
        self.running: ScriptRun | None = None  # the instance whose code runs now
        self.script_deferred = False  # the running script called RPR_defer
        self.script_undo_block = False  # ... or opened an undo block
        self.commands: list[int] = []
        self.volume_scaling = 0  # VOLTYPE of the volume envelopes the toggle action makes
        self.registered: list[tuple[bool, int, str, bool]] = []
        self.calls: dict[str, int] = {}

    # -- building a project ------------------------------------------------------------
    def _ptr(self, kind: str, obj: Any) -> str:
        self._counter += 0x10
        ptr = f"({kind})0x{self._counter:016X}"
        self.objects[ptr] = obj
        self.addresses[self._counter] = ptr
        return ptr

    def add_track(self, name: str, selected: bool = False) -> Track:
        track = Track("", name, selected)
        track.ptr = self._ptr("MediaTrack*", track)
        self.tracks.append(track)
        return track

    def _guid(self) -> str:
        return "{" + str(uuid.UUID(int=self._counter)).upper() + "}"

    def add_item(self, track: Track, position: float, length: float, selected: bool = True,
                 notes: str = "", loop: bool = False, volume: float = 1.0, lock: int = 0,
                 all_takes_play: bool = False) -> Item:
        item = Item("", track, position, length, selected, notes, loop=loop, volume=volume,
                    lock=lock, all_takes_play=all_takes_play)
        item.ptr = self._ptr("MediaItem*", item)
        track.items.append(item)
        return item

    def file_source(self, path: str) -> Source:
        info = sf.info(path)
        source = Source("", "WAVE", os.path.abspath(path), info.samplerate, info.channels,
                        length=info.frames / info.samplerate)
        source.ptr = self._ptr("PCM_source*", source)
        return source

    def section_source(self, parent: Source, offset: float, length: float, reverse: bool = False) -> Source:
        source = Source("", "SECTION", parent.filename, parent.rate, parent.channels, parent,
                        offset, length, reverse)
        source.ptr = self._ptr("PCM_source*", source)
        return source

    def midi_source(self) -> Source:
        source = Source("", "MIDI")
        source.ptr = self._ptr("PCM_source*", source)
        return source

    def unmapped_source(self, samples: np.ndarray, rate: int) -> Source:
        source = Source("", "UNMAPPED", "", rate, samples.shape[0],
                        length=samples.shape[1] / rate, samples=samples)
        source.ptr = self._ptr("PCM_source*", source)
        return source

    def add_take(self, item: Item, source: Source | None, name: str, **values: float) -> Take:
        take = Take("", item, source, name, {**TAKE_DEFAULTS, **values})
        take.ptr = self._ptr("MediaItem_Take*", take)
        take.guid = self._guid()
        item.takes.append(take)
        item.active = take
        return take

    def add_empty_take(self, item: Item, active: bool = False) -> None:
        """An empty take slot (*Item > Take > Insert empty take*); ``active``: make it the
        active take."""
        item.takes.append(None)
        if active:
            item.active = None

    def add_take_fx(self, take: Take, name: str, enabled: bool = True) -> FX:
        fx = FX(name, enabled)
        take.fx.append(fx)
        return fx

    def _envelope(self, name: str, param: int | None, points: tuple[tuple[float, ...], ...],
                  **state: Any) -> Envelope:
        envelope = Envelope("", name, param, points=[Point(*p) for p in points], **state)
        envelope.ptr = self._ptr("TrackEnvelope*", envelope)
        envelope.guid = self._guid()
        return envelope

    def add_take_envelope(self, take: Take, name: str,
                          points: tuple[tuple[float, ...], ...] = ((0.0, 1.0),),
                          **state: Any) -> Envelope:
        """The take's volume, pan, mute or pitch envelope ``name``, with ``points``
        (``(time, value[, shape[, tension]])``) and ``state`` (``active``, ``visible``...)."""
        envelope = self._envelope(name, None, points, **state)
        take.envelopes.append(envelope)
        return envelope

    def add_fx_envelope(self, fx: FX, param: int,
                        points: tuple[tuple[float, ...], ...] = ((0.0, 0.5),),
                        **state: Any) -> Envelope:
        """The envelope of ``fx``'s parameter ``param`` (see ``add_take_envelope``)."""
        envelope = self._envelope(f"Param {param + 1} / {fx.name}", param, points, **state)
        fx.envelopes[param] = envelope
        return envelope

    # -- playback model ----------------------------------------------------------------
    def source_audio(self, source: Source) -> tuple[np.ndarray, int, float]:
        """(root samples (C, T), rate, offset of ``source`` in the root, seconds)."""
        if source.kind == "UNMAPPED":
            return source.samples, source.rate, 0.0
        if source.kind == "SECTION":
            samples, rate, offset = self.source_audio(source.parent)
            return samples, rate, offset + source.offset
        data, rate = sf.read(source.filename, dtype="float32", always_2d=True)
        return data.T, rate, 0.0

    @staticmethod
    def source_time(take: Take, take_time: np.ndarray) -> np.ndarray:
        """Seconds into the take's source played at ``take_time`` (item time x playrate):
        D_STARTOFFS + take time, or with stretch markers piecewise linear through their
        (position, source position), slope 1 before the first and after the last."""
        if not take.markers:
            return take.values["D_STARTOFFS"] + take_time
        pos, src = np.array(take.markers).T
        before, after = take_time < pos[0], take_time > pos[-1]
        warped = np.interp(take_time, pos, src)
        warped[before] = src[0] + take_time[before] - pos[0]
        warped[after] = src[-1] + take_time[after] - pos[-1]
        return warped

    def played(self, take: Take, rate: int, start: float, frames: int) -> np.ndarray:
        """The channels ``take`` plays (its channel mode applied, before any volume):
        ``frames`` at ``rate`` from ``start`` s after the item start, looping the source when
        the item loops it, backwards through a reversed section."""
        samples, src_rate, offset = self.source_audio(take.source)
        times = start + np.arange(frames) / rate
        local = self.source_time(take, times * take.values["D_PLAYRATE"])
        if take.item.loop:
            local = np.mod(local, take.source.length)
        if take.source.reverse:  # a reversed section plays from its end back
            local = take.source.length - local
        position = (offset + local) * src_rate
        grid = np.arange(samples.shape[1])
        return channel_mode(np.stack([np.interp(position, grid, channel, left=0.0, right=0.0)
                                      for channel in samples]),
                            int(take.values["I_CHANMODE"])).astype(np.float64)

    def play(self, take: Take, rate: int, channels: int, start: float, frames: int) -> np.ndarray:
        """``played`` in ``channels``, the played channels repeated to fill them (a mono
        take on a stereo track): what the take sends to its track."""
        played = self.played(take, rate, start, frames)
        return np.stack([played[c % len(played)] for c in range(channels)])

    def play_track(self, track: Track, rate: int, channels: int, start: float,
                   frames: int) -> np.ndarray:
        """What ``track`` plays (its items' active takes, mixed) from project time ``start``."""
        times = start + np.arange(frames) / rate
        out = np.zeros((channels, frames))
        for item in track.items:
            inside = (times >= item.position) & (times < item.position + item.length)
            if item.active is None or item.active.source is None or not inside.any():
                continue
            first = int(np.argmax(inside))
            count = int(inside.sum())
            out[:, first:first + count] += self.play(item.active, rate, channels,
                                                     times[first] - item.position, count)
        return out

    # -- inspection --------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-able state, for tests that drive the fake in a subprocess."""
        return {
            "items": [{"ptr": i.ptr, "active": i.active.name if i.active else None,
                       "takes": [None if t is None else
                                 {"name": t.name, "file": t.source.filename if t.source else None,
                                  "values": t.values, "fx": [f.name for f in t.fx]}
                                 for t in i.takes]}
                      for tr in self.tracks for i in tr.items],
            "undo": self.undo, "undo_depth": self.undo_depth, "messages": self.messages,
            "console": self.console, "ext": {f"{s}/{k}": v for (s, k), v in self.ext.items()},
            "calls": self.calls,
        }

    def dump(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.snapshot(), handle)

    @contextlib.contextmanager
    def _script_host(self, script: ScriptRun) -> Iterator[None]:
        """REAPER's Python host while ``script``'s code runs: ``RPR_defer`` and
        ``RPR_atexit`` in ``__main__``, given to that instance."""
        main = sys.modules["__main__"]
        saved = {name: getattr(main, name) for name in ("RPR_defer", "RPR_atexit")
                 if hasattr(main, name)}
        main.RPR_defer, main.RPR_atexit = self.defer, self.atexit
        running, self.running = self.running, script
        try:
            yield
        finally:
            self.running = running
            for name in ("RPR_defer", "RPR_atexit"):
                if name in saved:
                    setattr(main, name, saved[name])
                else:
                    delattr(main, name)

    def run_script(self, script: Callable[[], Any], name: str = "script") -> Any:
        """Run ``script`` as REAPER runs a ReaScript named ``name``: when it ends having
        neither called ``defer`` nor opened an undo block, REAPER adds a "ReaScript: Run"
        undo point (the reason scripts that change nothing end with a no-op defer); when
        it deferred nothing, it has finished and its atexit code runs."""
        before = self._item_state()
        self.script_deferred = self.script_undo_block = False
        run = ScriptRun(name)
        try:
            with self._script_host(run):
                return script()
        finally:
            if not (self.script_deferred or self.script_undo_block):
                self.undo.append(("auto", AUTO_UNDO))
                self.undo_points.append((AUTO_UNDO, before))
            self._finish_if_done(run)

    def run_next(self) -> None:
        """Run the first pending deferred code string, as one cycle of REAPER's defer loop
        does, in its instance; an instance left with nothing deferred has finished."""
        code = self.deferred.pop(0)
        with self._script_host(code.script):
            exec(code, {})
        self._finish_if_done(code.script)

    def run_deferred(self, limit: int = 100000, sleep: float = 0.02) -> int:
        """Run deferred code strings like REAPER's defer loop until none is left."""
        import time

        runs = 0
        while self.deferred and runs < limit:
            self.run_next()
            runs += 1
            if self.deferred:
                time.sleep(sleep)
        return runs

    def running_scripts(self) -> list[str]:
        """The names of the running instances (those with deferred code pending), as
        *Actions > Running scripts* lists them."""
        return list(dict.fromkeys(code.script.name for code in self.deferred))

    def terminate(self, name: str) -> None:
        """The user ends the running instances of script ``name``: their deferred code is
        dropped, never run, and their atexit code runs."""
        ended = list(dict.fromkeys(code.script for code in self.deferred
                                   if code.script.name == name))
        if not ended:
            raise ValueError(f"no running instance of {name!r}")
        self.deferred = [code for code in self.deferred if code.script not in ended]
        for run in ended:
            self._run_atexit(run)

    def _finish_if_done(self, run: ScriptRun) -> None:
        if not any(code.script is run for code in self.deferred):
            self._run_atexit(run)

    def _run_atexit(self, run: ScriptRun) -> None:
        """Run ``run``'s atexit code, once, in its namespace as REAPER does."""
        codes, run.atexit = run.atexit, []
        with self._script_host(run):
            for code in codes:
                exec(code, {})

    # -- the RPR_* module --------------------------------------------------------------
    def module(self, function_table: bool = False) -> types.ModuleType:
        """The ``reaper_python`` module; ``function_table``: with REAPER's ``_ft`` (see the
        module docstring), so the bridge reads the accessor through ctypes."""
        module = types.ModuleType("reaper_python")
        for name in dir(self):
            if name.startswith("RPR_"):
                setattr(module, name, self._counted(module, name, getattr(self, name)))

        def rpr_packp(kind: str, value: Any) -> int:
            """REAPER's packer: the address of a ``"(kind)0x..."`` pointer (any type for
            ``void*``), or 0 when the string is no such pointer or ``RPR_ValidatePtr``
            does not know the object."""
            match = POINTER.fullmatch(str(value))
            if match is None or kind not in (match[1], "void*"):
                return 0
            address = int(match[2], 16)
            return address if module.RPR_ValidatePtr(address, kind) else 0

        module.rpr_packp = rpr_packp
        if function_table:
            module._ft_functions = [SAMPLES_FUNCTION(self._ft_samples)]  # alive with the module
            module._ft = {"GetAudioAccessorSamples":
                          ct.cast(module._ft_functions[0], ct.c_void_p).value}
        return module

    def _ft_samples(self, address: int, rate: int, channels: int, start: float, frames: int,
                    buffer: int) -> int:
        """``GetAudioAccessorSamples`` called through ``_ft``: the accessor is the address
        itself (no packer), and the samples go interleaved into the ``double`` buffer."""
        self.calls[FT_SAMPLES] = self.calls.get(FT_SAMPLES, 0) + 1
        result, data = self._accessor_samples(self.addresses.get(address, null("AudioAccessor*")),
                                              rate, channels, start, frames)
        if data is not None:
            out = np.ctypeslib.as_array((ct.c_double * (frames * channels)).from_address(buffer))
            out[:] = data.T.reshape(-1)
        return result

    def _counted(self, module: types.ModuleType, name: str, func: Any) -> Any:
        """``func`` as the module's function: counted, and its pointer arguments packed
        through the module's current ``rpr_packp`` (0 = NULL)."""

        def call(*args: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if name == "RPR_ValidatePtr":  # takes the packed integer
                return func(*args)
            packed = [self._packed(module, name, arg) for arg in args]
            try:
                return func(*packed)
            except NullPointer:
                return self._null_result(name, func, args)

        call.__name__ = name
        return call

    @staticmethod
    def _packed(module: types.ModuleType, name: str, arg: Any) -> Any:
        """``arg`` as the function sees it: a pointer the packer refuses becomes NULL."""
        match = POINTER.fullmatch(arg) if isinstance(arg, str) else None
        if match is None:
            return arg
        kind = "void*" if name in VOID_POINTER_ARGS else match[1]
        return arg if module.rpr_packp(kind, arg) else null(match[1])

    @staticmethod
    def _null_result(name: str, func: Any, args: tuple) -> Any:
        """What REAPER gives when a pointer argument is NULL: the function does nothing and
        returns false, 0 or NULL; out-parameters come back as they were passed."""
        if name in POINTER_RESULTS:
            return null(POINTER_RESULTS[name])
        returns = getattr(func, "__annotations__", {}).get("return")
        if returns == "tuple":
            return tuple(args) if name in VOID_TUPLES else (0, *args)
        if returns not in NULL_BY_TYPE:
            raise ValueError(f"{name} got a NULL pointer; the fake does not model REAPER's answer")
        return NULL_BY_TYPE[returns]

    def RPR_ValidatePtr(self, pointer: int, kind: str) -> bool:
        """Whether the object at ``pointer`` is one of ``kind`` in the project: tracks,
        items and takes in it and not deleted, the project itself, and sources a take in
        it plays (or their parents). A source just made by ``PCM_Source_CreateFromFile``
        is in no take yet, so it is not valid (reapy issue #38). ``ValidatePtr2``'s
        documentation: "Supported types are: ReaProject*, MediaTrack*, MediaItem*,
        MediaItem_Take*, TrackEnvelope* and PCM_source*", so any other type (an audio
        accessor, ``void*``) is not valid."""
        ptr = self.addresses.get(int(pointer))
        if ptr is None or ptr in self.destroyed:
            return False
        obj = self.objects.get(ptr)
        if kind == "ReaProject*":
            return ptr == self.project
        if kind == "MediaTrack*":
            return any(track is obj for track in self.tracks)
        if kind == "MediaItem*":
            return any(item is obj for item in self._items())
        if kind == "MediaItem_Take*":
            return any(take is obj for take in self._takes())
        if kind == "PCM_source*":
            return any(source is obj for source in self._project_sources())
        if kind == "TrackEnvelope*":  # take ones; track envelopes are not modelled
            return any(e is obj for take in self._takes() for e in self._take_envelopes(take))
        return False

    def _takes(self) -> list[Take]:
        """The project's takes, less the empty ones."""
        return [take for item in self._items() for take in item.takes if take is not None]

    def _project_sources(self) -> list[Source]:
        """The sources the project's takes play, and their parents."""
        sources = []
        for take in self._takes():
            source = take.source
            while source is not None:
                sources.append(source)
                source = source.parent
        return sources

    def _get(self, ptr: str, kind: type) -> Any:
        if is_null_pointer(ptr):
            raise NullPointer(f"NULL {kind.__name__} pointer {ptr!r}")
        if str(ptr) in self.destroyed:
            raise ValueError(f"use of destroyed pointer {ptr!r} (REAPER would crash)")
        obj = self.objects.get(str(ptr))
        if not isinstance(obj, kind):
            raise ValueError(f"invalid {kind.__name__} pointer {ptr!r}")
        return obj

    def _items(self) -> list[Item]:
        return [i for t in self.tracks for i in t.items]

    def RPR_GetAppVersion(self) -> str:
        return "7.22/linux-x86_64"

    def RPR_GetResourcePath(self) -> str:
        return self.resource_path

    def RPR_EnumProjects(self, idx: int, buf: str, size: int) -> tuple:
        ptr = self.project if idx in (0, -1) else null("ReaProject*")
        return (ptr, idx, "", size)

    def RPR_GetProjectPathEx(self, proj: Any, buf: str, size: int) -> tuple:
        return (proj, self.media_dir, size)

    def RPR_CountTracks(self, proj: Any) -> int:
        return len(self.tracks)

    def RPR_GetTrack(self, proj: Any, idx: int) -> str:
        return self.tracks[idx].ptr if 0 <= idx < len(self.tracks) else null("MediaTrack*")

    def RPR_CountSelectedTracks(self, proj: Any) -> int:
        return sum(t.selected for t in self.tracks)

    def RPR_GetSelectedTrack(self, proj: Any, idx: int) -> str:
        selected = [t for t in self.tracks if t.selected]
        return selected[idx].ptr if 0 <= idx < len(selected) else null("MediaTrack*")

    def RPR_CountTrackMediaItems(self, track: str) -> int:
        return len(self._get(track, Track).items)

    def RPR_GetTrackMediaItem(self, track: str, idx: int) -> str:
        items = self._get(track, Track).items
        return items[idx].ptr if 0 <= idx < len(items) else null("MediaItem*")

    def RPR_CountSelectedMediaItems(self, proj: Any) -> int:
        return sum(i.selected for i in self._items())

    def RPR_GetSelectedMediaItem(self, proj: Any, idx: int) -> str:
        selected = [i for i in self._items() if i.selected]
        return selected[idx].ptr if 0 <= idx < len(selected) else null("MediaItem*")

    def RPR_CountMediaItems(self, proj: Any) -> int:
        return len(self._items())

    def RPR_GetMediaItem(self, proj: Any, idx: int) -> str:
        items = self._items()
        return items[idx].ptr if 0 <= idx < len(items) else null("MediaItem*")

    def RPR_DeleteTrackMediaItem(self, track: str, item: str) -> bool:
        """Deleted objects' pointers dangle: using them afterwards fails, as it crashes REAPER."""
        obj = self._get(item, Item)
        if obj not in self._get(track, Track).items:
            return False
        obj.track.items.remove(obj)
        self.destroyed.update([obj.ptr, *(t.ptr for t in obj.takes if t is not None)])
        return True

    def RPR_SetMediaItemSelected(self, item: str, selected: bool) -> None:
        self._get(item, Item).selected = bool(selected)

    def RPR_SelectAllMediaItems(self, proj: Any, selected: bool) -> None:
        for item in self._items():
            item.selected = bool(selected)

    def RPR_GetMediaItem_Track(self, item: str) -> str:
        return self._get(item, Item).track.ptr

    def RPR_GetMediaItemInfo_Value(self, item: str, parm: str) -> float:
        obj = self._get(item, Item)
        return {"D_POSITION": obj.position, "D_LENGTH": obj.length, "B_UISEL": float(obj.selected),
                "B_LOOPSRC": float(obj.loop), "D_VOL": obj.volume, "C_LOCK": float(obj.lock),
                "B_ALLTAKESPLAY": float(obj.all_takes_play)}[parm]

    def RPR_GetSetMediaItemInfo_String(self, item: str, parm: str, value: str, set_new: bool) -> tuple:
        obj = self._get(item, Item)
        if parm != "P_NOTES":
            return (False, item, parm, "", set_new)
        if set_new:
            obj.notes = value
        return (True, item, parm, obj.notes, set_new)

    def RPR_GetSetMediaTrackInfo_String(self, track: str, parm: str, value: str, set_new: bool) -> tuple:
        obj = self._get(track, Track)
        if parm != "P_NAME":
            return (False, track, parm, "", set_new)
        if set_new:
            obj.name = value
        return (True, track, parm, obj.name, set_new)

    def RPR_CountTakes(self, item: str) -> int:
        return len(self._get(item, Item).takes)

    def RPR_GetTake(self, item: str, idx: int) -> str:
        """NULL for an empty take, as for an index out of range."""
        takes = self._get(item, Item).takes
        take = takes[idx] if 0 <= idx < len(takes) else None
        return take.ptr if take is not None else null("MediaItem_Take*")

    def RPR_GetActiveTake(self, item: str) -> str:
        active = self._get(item, Item).active
        return active.ptr if active else null("MediaItem_Take*")

    def RPR_SetActiveTake(self, take: str) -> None:
        obj = self._get(take, Take)
        obj.item.active = obj

    def RPR_TakeIsMIDI(self, take: str) -> bool:
        source = self._get(take, Take).source
        return bool(source and source.kind == "MIDI")

    def RPR_GetMediaItemTake_Source(self, take: str) -> str:
        source = self._get(take, Take).source
        return source.ptr if source else null("PCM_source*")

    def RPR_SetMediaItemTake_Source(self, take: str, source: str) -> bool:
        """False, the take unchanged, when either pointer is NULL (see ``rpr_packp``)."""
        self._get(take, Take).source = self._get(source, Source)
        return True

    def RPR_GetMediaItemTakeInfo_Value(self, take: str, parm: str) -> float:
        return float(self._get(take, Take).values[parm])

    def RPR_SetMediaItemTakeInfo_Value(self, take: str, parm: str, value: float) -> bool:
        obj = self._get(take, Take)
        if parm not in TAKE_DEFAULTS:
            return False
        obj.values[parm] = float(value)
        return True

    def RPR_GetSetMediaItemTakeInfo_String(self, take: str, parm: str, value: str, set_new: bool) -> tuple:
        """P_NAME, GUID ("{XXXXXXXX-...}") and P_EXT:<key> (extension data, empty unset)."""
        obj = self._get(take, Take)
        if parm.startswith("P_EXT:"):
            if set_new:
                obj.ext[parm[6:]] = value
            return (parm[6:] in obj.ext, take, parm, obj.ext.get(parm[6:], ""), set_new)
        if parm not in ("P_NAME", "GUID"):
            return (False, take, parm, "", set_new)
        attribute = "name" if parm == "P_NAME" else "guid"
        if set_new:
            setattr(obj, attribute, value)
        return (True, take, parm, getattr(obj, attribute), set_new)

    def RPR_GetTakeNumStretchMarkers(self, take: str) -> int:
        return len(self._get(take, Take).markers)

    def RPR_GetTakeStretchMarker(self, take: str, idx: int, pos: float, srcpos: float) -> tuple:
        markers = self._get(take, Take).markers
        if not 0 <= idx < len(markers):
            return (-1, take, idx, pos, srcpos)
        return (idx, take, idx, *markers[idx])

    def RPR_SetTakeStretchMarker(self, take: str, idx: int, pos: float, srcpos: float) -> tuple:
        """Add (idx < 0) or move a marker; returns its index, -1 when one is already there."""
        markers = self._get(take, Take).markers
        if idx >= 0:
            markers[idx] = (float(pos), float(srcpos))
        elif any(abs(p - pos) < 1e-12 for p, _ in markers):
            return (-1, take, idx, pos, srcpos)
        else:
            markers.append((float(pos), float(srcpos)))
        markers.sort()
        return (markers.index((float(pos), float(srcpos))), take, idx, pos, srcpos)

    def RPR_DeleteTakeStretchMarkers(self, take: str, idx: int, count: int) -> tuple:
        markers = self._get(take, Take).markers
        deleted = len(markers[idx:idx + count])
        del markers[idx:idx + count]
        return (deleted, take, idx, count)

    def RPR_TakeFX_GetCount(self, take: str) -> int:
        return len(self._get(take, Take).fx)

    def RPR_TakeFX_CopyToTake(self, src_take: str, src_fx: int, dest_take: str, dest_fx: int,
                              is_move: bool) -> None:
        """Copy (or move) FX ``src_fx`` to position ``dest_fx`` of ``dest_take``'s chain (at
        its end past the last); an index out of range does nothing. Whether REAPER's copy
        carries the FX's parameter envelopes is not documented: the fake's has none (the
        bridge copies them itself, replacing any the copy has), a move keeps them."""
        source, dest = self._get(src_take, Take), self._get(dest_take, Take)
        if not 0 <= src_fx < len(source.fx):
            return
        fx = source.fx.pop(src_fx) if is_move else replace(source.fx[src_fx], envelopes={})
        dest.fx.insert(dest_fx, fx)

    def RPR_TakeFX_Delete(self, take: str, fx: int) -> bool:
        """Its parameter envelopes go with it (REAPER keeps them in the FX's chunk)."""
        chain = self._get(take, Take).fx
        if not 0 <= fx < len(chain):
            return False
        self.destroyed.update(envelope.ptr for envelope in chain[fx].envelopes.values())
        del chain[fx]
        return True

    @staticmethod
    def _take_envelopes(take: Take) -> list[Envelope]:
        """The take's envelopes as ``GetTakeEnvelope`` indexes them: its own, then its FX's
        parameter envelopes by FX and parameter (REAPER's order is not documented)."""
        return take.envelopes + [fx.envelopes[param] for fx in take.fx
                                 for param in sorted(fx.envelopes)]

    def RPR_CountTakeEnvelopes(self, take: str) -> int:
        return len(self._take_envelopes(self._get(take, Take)))

    def RPR_GetTakeEnvelope(self, take: str, index: int) -> str:
        envelopes = self._take_envelopes(self._get(take, Take))
        return envelopes[index].ptr if 0 <= index < len(envelopes) else null("TrackEnvelope*")

    def RPR_GetTakeEnvelopeByName(self, take: str, name: str) -> str:
        """The take's "Volume", "Pan", "Mute" or "Pitch" envelope, hidden or not; NULL when
        it has none."""
        found = next((e for e in self._get(take, Take).envelopes if e.name == name), None)
        return found.ptr if found else null("TrackEnvelope*")

    def RPR_GetEnvelopeName(self, envelope: str, buf: str, size: int) -> tuple:
        return (True, envelope, self._get(envelope, Envelope).name[:size - 1], size)

    def _envelope_parent(self, envelope: Envelope) -> tuple[Take, int, int]:
        """The project take holding ``envelope``, and its FX and parameter index (-1, -1
        for the take's own envelopes)."""
        for take in self._takes():
            if any(e is envelope for e in take.envelopes):
                return take, -1, -1
            for index, fx in enumerate(take.fx):
                if any(e is envelope for e in fx.envelopes.values()):
                    return take, index, int(envelope.param)
        raise ValueError(f"envelope {envelope.ptr!r} is in no take of the project")

    def RPR_Envelope_GetParentTake(self, envelope: str, index: int, index2: int) -> tuple:
        """``(take, envelope, fx index, parameter index)``: "If FX, indexOut set to FX
        index, index2Out set to parameter index, otherwise -1"."""
        take, fx, param = self._envelope_parent(self._get(envelope, Envelope))
        return (take.ptr, envelope, fx, param)

    def RPR_TakeFX_GetEnvelope(self, take: str, fx: int, param: int, create: bool) -> str:
        """The envelope of parameter ``param`` of FX ``fx``, made (active and visible, one
        point) when it has none and ``create``; NULL for an FX out of range."""
        chain = self._get(take, Take).fx
        if not 0 <= fx < len(chain) or param < 0:
            return null("TrackEnvelope*")
        found = chain[fx].envelopes.get(param)
        if found is None and create:
            found = self.add_fx_envelope(chain[fx], param, visible=True)
        return found.ptr if found else null("TrackEnvelope*")

    def RPR_GetEnvelopeStateChunk(self, envelope: str, buf: str, size: int,
                                  isundo: bool) -> tuple:
        """``(retval, env, chunk, size, isundo)``; a chunk past ``size`` is cut to fit the
        buffer (what REAPER answers then is not documented: the fake says true)."""
        chunk = self._get(envelope, Envelope).chunk()
        return (True, envelope, chunk[:max(size - 1, 0)], size, isundo)

    def RPR_SetEnvelopeStateChunk(self, envelope: str, chunk: str, isundo: bool) -> bool:
        return self._get(envelope, Envelope).set_chunk(chunk)

    def RPR_GetTakeName(self, take: str) -> str:
        return self._get(take, Take).name

    def RPR_AddTakeToMediaItem(self, item: str) -> str:
        obj = self._get(item, Item)
        if item in self.refuse_takes:
            return null("MediaItem_Take*")
        take = Take("", obj, None, "", dict(TAKE_DEFAULTS))
        take.ptr = self._ptr("MediaItem_Take*", take)
        take.guid = self._guid()
        obj.takes.append(take)
        return take.ptr

    def RPR_PCM_Source_Destroy(self, source: str) -> None:
        obj = self._get(source, Source)
        if any(t.source is obj for t in self._takes()):
            raise ValueError(f"destroying {source!r} while a take plays it (REAPER would crash)")
        self.destroyed.add(str(source))

    def RPR_PCM_Source_CreateFromFile(self, filename: str) -> str:
        if not os.path.isfile(filename):
            return null("PCM_source*")
        return self.file_source(filename).ptr

    def RPR_GetMediaSourceType(self, source: str, buf: str, size: int) -> tuple:
        kind = self._get(source, Source).kind
        return (source, "WAVE" if kind == "UNMAPPED" else kind, size)

    def RPR_GetMediaSourceFileName(self, source: str, buf: str, size: int) -> tuple:
        return (source, self._get(source, Source).filename, size)

    def RPR_GetMediaSourceLength(self, source: str, length_is_qn: bool) -> tuple:
        return (self._get(source, Source).length, source, False)

    def RPR_GetMediaSourceSampleRate(self, source: str) -> int:
        return self._get(source, Source).rate

    def RPR_GetMediaSourceNumChannels(self, source: str) -> int:
        return self._get(source, Source).channels

    def RPR_GetMediaSourceParent(self, source: str) -> str:
        parent = self._get(source, Source).parent
        return parent.ptr if parent else null("PCM_source*")

    def RPR_PCM_Source_GetSectionInfo(self, source: str, offs: float, length: float, rev: bool) -> tuple:
        obj = self._get(source, Source)
        if obj.kind != "SECTION":
            return (False, source, 0.0, 0.0, False)
        return (True, source, obj.offset, obj.length, obj.reverse)

    def RPR_CreateTakeAudioAccessor(self, take: str) -> str:
        return self._ptr("AudioAccessor*", self._get(take, Take))

    def RPR_CreateTrackAudioAccessor(self, track: str) -> str:
        return self._ptr("AudioAccessor*", self._get(track, Track))

    def RPR_DestroyAudioAccessor(self, accessor: str) -> None:
        """Nothing for NULL (what REAPER's own packer makes of any accessor)."""
        self.objects.pop(accessor, None)

    def RPR_GetAudioAccessorSamples(self, accessor: str, rate: int, channels: int, start: float,
                                    frames: int, buffer: list) -> tuple:
        """REAPER's Python binding special-cases this function: ``(retval, buffer)``, the
        buffer overwritten from the binding's own zeroed one (see ``_accessor_samples``)."""
        result, data = self._accessor_samples(accessor, rate, channels, start, frames)
        buffer[:] = [0.0] * (frames * channels) if data is None else data.T.reshape(-1).tolist()
        return (result, buffer)

    def _accessor_samples(self, accessor: str, rate: int, channels: int, start: float,
                          frames: int) -> tuple[int, np.ndarray | None]:
        """``(retval, samples (channels, frames) or None)``. A track accessor gives what the
        track plays, in project time. A take accessor gives what the take plays from the
        item start, its played channels packed from channel 0 and the other requested
        channels silent; it must be asked for at least the source's channel count (SWS
        BR_Loudness: asking a mono-mode take of a stereo source for one channel does not
        work), else it fails: -1, nothing filled. What REAPER returns for a NULL accessor
        is not documented: the fake says 0, no audio (the quietest answer, so a test must
        look at the samples), nothing filled."""
        if is_null_pointer(accessor):
            return 0, None
        source = self.objects.get(str(accessor))
        if isinstance(source, Track):  # project time, as REAPER's track accessors read
            return 1, self.play_track(source, rate, channels, start, frames)
        take = self._get(accessor, Take)  # take time from the item start
        if channels < take.source.channels:
            return -1, None
        played = self.played(take, rate, start, frames)[:channels]  # what fits
        data = np.zeros((channels, frames))
        data[:len(played)] = played
        return 1, data

    def _item_state(self) -> dict[str, tuple[list[Take | None], Take | None]]:
        """Each item's takes, FX chains and envelopes included (copied: a later edit must not
        reach the saved state); empty takes stay empty."""
        state = {}
        for item in self._items():
            copies = [None if t is None else
                      replace(t, values=dict(t.values), ext=dict(t.ext), markers=list(t.markers),
                              fx=[replace(f, envelopes={p: replace(e, points=list(e.points))
                                                        for p, e in f.envelopes.items()})
                                  for f in t.fx],
                              envelopes=[replace(e, points=list(e.points)) for e in t.envelopes])
                      for t in item.takes]
            active = next((c for c, t in zip(copies, item.takes) if t is item.active), None)
            state[item.ptr] = (copies, active)
        return state

    def RPR_Undo_BeginBlock(self) -> None:
        self.script_undo_block = True
        if self.undo_depth == 0:
            self._before_block = self._item_state()
        self.undo_depth += 1
        self.undo.append(("begin",))

    def RPR_Undo_EndBlock(self, description: str, flags: int) -> None:
        self.undo_depth -= 1
        self.undo.append(("end", description))
        if self.undo_depth == 0:
            self.undo_points.append((description, self._before_block))

    def RPR_Undo_DoUndo2(self, proj: Any) -> int:
        """Restore the items as they were before the last undo point; sources a take gets
        back are new objects, as REAPER rebuilds them from the saved state."""
        if not self.undo_points:
            return 0
        description, state = self.undo_points.pop()
        for item in self._items():
            if item.ptr not in state:
                continue
            takes, active = state[item.ptr]
            for take in takes:
                if take is None:
                    continue
                if take.source is not None and take.source.ptr in self.destroyed:
                    take.source = Source(**{**take.source.__dict__, "ptr": ""})
                    take.source.ptr = self._ptr("PCM_source*", take.source)
                self.objects[take.ptr] = take
                for envelope in self._take_envelopes(take):  # REAPER rebuilds them too
                    self.objects[envelope.ptr] = envelope
                    self.destroyed.discard(envelope.ptr)
            item.takes, item.active = takes, active
        self.undo.append(("undo", description))
        return 1

    def RPR_PreventUIRefresh(self, delta: int) -> None:
        self.refresh_depth += delta

    def RPR_UpdateArrange(self) -> None:
        pass

    def RPR_Main_OnCommand(self, command: int, flag: int) -> None:
        """Recorded; "Take: Toggle take volume/pan/mute/pitch envelope" act on every
        selected item's active take: one without that envelope gets it (active, visible
        and armed, one point, as SWS builds them), one with it has it shown or hidden."""
        self.commands.append(command)
        if command not in TOGGLE_TAKE_ENVELOPE:
            return
        name, value = TOGGLE_TAKE_ENVELOPE[command]
        for take in (i.active for i in self._items() if i.selected and i.active is not None):
            found = next((e for e in take.envelopes if e.name == name), None)
            if found is None:
                made = self.add_take_envelope(take, name, ((0.0, value),), armed=True)
                made.scaling = self.volume_scaling if name == "Volume" else 0
            else:
                found.visible = not found.visible

    def RPR_GetExtState(self, section: str, key: str) -> str:
        return self.ext.get((section, key), "")

    def RPR_SetExtState(self, section: str, key: str, value: str, persist: bool) -> None:
        self.ext[(section, key)] = value

    def RPR_ShowMessageBox(self, message: str, title: str, kind: int) -> int:
        self.messages.append(message)
        return 1

    def RPR_ShowConsoleMsg(self, message: str) -> None:
        self.console.append(message)

    def defer(self, code: str) -> None:
        """``RPR_defer`` as ``run_script`` and ``run_deferred`` provide it: the code is the
        running instance's."""
        self.script_deferred = True
        deferred = Deferred(code)
        deferred.script = self._running()
        self.deferred.append(deferred)

    def atexit(self, code: str) -> None:
        """``RPR_atexit`` as ``run_script`` and ``run_deferred`` provide it."""
        self._running().atexit.append(code)

    def _running(self) -> ScriptRun:
        if self.running is None:
            raise RuntimeError("RPR_defer and RPR_atexit exist only while a script runs")
        return self.running

    def RPR_AddRemoveReaScript(self, add: bool, section: int, path: str, commit: bool) -> int:
        self.registered.append((add, section, path, commit))
        return 50000 + len(self.registered)

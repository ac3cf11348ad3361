"""Render synthetic snare close-mic clips: ``noisy = clean + bleed`` (SPEC section 4).

One clip = one seeded draw of: a kit, a groove (``training.grooves``), a tuning per kit
piece (pitch/decay by resampling), a mic path per piece (``training.snaremic``), a room,
room tone, mic EQ and polarity, and an output level. The target ``clean`` is the snare
(normal hits, rimshots, side sticks, ghost notes, flams, rolls) as the snare mic hears it
with its own room; ``bleed`` is everything else the mic picks up. One-shots are placed
with one slice-add per hit, filters run once per piece track, so a 10 s clip renders in a
few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.pool
import multiprocessing.process
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from denoiser.audio import SUBTYPE_BYTES, existing_ancestor, write_audio
from denoiser.errors import ParameterError
from denoiser.outfiles import leave_signals_to_parent, signals_held, write_text_atomic

from .bounds import check_fields, check_whole, is_number
from .errors import DatasetError, KitError
from .grooves import ROLES, Events, Groove, GrooveConfig, generate_groove
from .kits import KIT_RATE, SNARE_CATEGORIES, Instrument, Kit, load_kit, refuse_test_kits
from .manifest import (SPLIT_VERSION, assign_splits, check_valid_fraction, staged_output,
                       valid_count, write_manifest)
from .midi import midi_files, read_performance
from .modaldrums import TOM_RANGES, modal_drum_instrument
from .recording import add_recording_chain
from .snaremic import (MicConfig, add_room, bleed_path, family, mic_eq, pitch_shift,
                       random_colouring, room_ir, room_tone, snare_colouring, sosfilt)


#: The widest values a synth setting may take, where "finite" is not bound enough: a pitch
#: shift of 300 semitones asked for terabytes, a pre-roll of 1e6 s generated a groove for
#: days, a peak of -1000 dBFS made silent clips and one of +25 dBFS clips far past full
#: scale. Each is far past anything a kit or a recording does.
SYNTH_LIMITS: dict[str, tuple[float, float]] = {
    "preroll_seconds": (0.0, 10.0), "pitch_semitones": (0.0, 24.0),
    "wide_pitch_semitones": (0.0, 24.0), "velocity_exponent": (0.0, 8.0),
    "decay_seconds": (0.0, 10.0), "peak_dbfs": (-60.0, 0.0), "floor_dbfs": (-160.0, 0.0)}


@dataclass(frozen=True)
class SynthConfig:
    """Everything that shapes a clip; the defaults are the training distribution."""

    sample_rate: int = KIT_RATE
    clip_seconds: float = 10.0
    preroll_seconds: float = 2.0           # grooves start before the clip so tails ring in
    pitch_semitones: float = 3.0           # per piece, uniform +-
    wide_pitch_probability: float = 0.15   # ... or sometimes +-wide_pitch_semitones
    wide_pitch_semitones: float = 6.0
    decay_probability: float = 0.25        # per piece: shorten the decay (damping, gaffer)
    decay_seconds: tuple[float, float] = (0.08, 0.6)
    procedural_snare_probability: float = 0.0  # whole clip: modal snare and toms (modaldrums)
    velocity_exponent: float = 1.7         # peak level of a hit = (velocity/127) ** this
    bleed_only_probability: float = 0.05   # whole clip without snare
    cross_kit_probability: float = 0.5     # with several kits: the bleed from another kit
    peak_dbfs: tuple[float, float] = (-12.0, -1.0)
    floor_probability: float = 0.0         # whole clip: a preamp's white floor (recording.py)
    floor_dbfs: tuple[float, float] = (-110.0, -66.0)
    quantise_probability: float = 0.0      # whole clip: exported to 16 bits with dither
    groove: GrooveConfig = field(default_factory=GrooveConfig)
    mic: MicConfig = field(default_factory=MicConfig)

    def validate(self, what: str = "synth:") -> "SynthConfig":
        """Return ``self`` or raise naming the first value no clip can be rendered with
        (``what`` begins the message: ``train --synth`` names its option).

        The rate is the kits' (their one-shots are not resampled), the clip length within
        ``CLIP_SECONDS``. Every other number is a magnitude (seconds, semitones, an
        exponent): finite, >= 0, a probability <= 1, the rest within ``SYNTH_LIMITS``. A
        range is ``[low, high]``, low <= high, on its default's side of 0 (a decay of 0 s
        divides by zero; a peak above 0 dBFS clips), within ``SYNTH_LIMITS``. The nested
        ``groove`` and ``mic`` are checked by their own ``validate`` (``GROOVE_LIMITS``,
        ``MIC_LIMITS``), named as ``groove.bpm_range``: unchecked, theirs failed deep in a
        render or rendered silent clips."""
        if self.sample_rate != KIT_RATE:
            raise ParameterError(f"{what} sample_rate = {self.sample_rate!r}: must be {KIT_RATE}, "
                                 "the kits' rate (their one-shots are not resampled)")
        check_clip_seconds(self.clip_seconds)
        check_fields(what, self, SYNTH_LIMITS, signed=True, skip=("clip_seconds",))
        for name, kind in (("groove", GrooveConfig), ("mic", MicConfig)):
            nested = getattr(self, name)
            if not isinstance(nested, kind):
                raise ParameterError(f"{what} {name} = {nested!r}: must be a {kind.__name__}")
            nested.validate(what, f"{name}.")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def as_recorded(self) -> "SynthConfig":
        """Each kit as sampled: no snare bell, no cross-kit pairing (evaluation and test sets).

        Neither draws a random number when off, so a seed renders the same clip as it did
        before these augmentations existed."""
        return replace(self, cross_kit_probability=0.0,
                       mic=replace(self.mic, snare_eq_probability=0.0))


@dataclass
class Clip:
    """Mono float32 tracks of equal length and the meta.json content."""

    noisy: np.ndarray
    clean: np.ndarray
    bleed: np.ndarray
    meta: dict


@dataclass(frozen=True)
class Performance:
    """A recorded groove (a MIDI file's drum hits, ``training.midi.read_performance``), the
    part of it, the hits at ``[start, stop)`` seconds, that clips take windows from, and
    its bar length, at which a part shorter than a clip loops."""

    events: Events
    name: str | None = None  # the MIDI file's name, for meta.json
    start: float = 0.0
    stop: float = math.inf
    bar: float | None = None  # one bar (s) where the file keeps its tempo and meter: loops


#: A window of a performance starts at most this long before its part's first hit and ends
#: at most this long after its last (for its ring).
HIT_MARGIN_SECONDS = 0.5


def split_performance(performance: Performance, valid_fraction: float) -> dict[str, Performance]:
    """The performance's training part (its first hits) and validation part (its last
    ``valid_count`` hits), disjoint in time. Clip-by-clip windows of one performance
    replayed training bars in validation clips (one valid clip shared seven snare hits
    with a training clip), so validation measured memory; the parts keep them apart."""
    times = performance.events.time
    n_valid = valid_count(times.size, valid_fraction)
    cut = float(times[times.size - n_valid]) if n_valid else math.inf
    return {"train": replace(performance, stop=cut), "valid": replace(performance, start=cut)}


def clip_seed(seed: int, index: int) -> int:
    """Independent, reproducible seed of clip ``index`` in a dataset seeded ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


def _choose_instruments(kit: Kit, rng: np.random.Generator) -> dict[str, list[Instrument]]:
    """Which kit instrument plays each role in this clip (with fallbacks for kits lacking
    a role: a rimshot-less kit plays rimshots on the snare, a stick-less one its side
    sticks, a pedal-less one its hat pedal on the closed hat...). Toms are ordered high to
    low by spectral centroid."""
    def pick(category: str) -> Instrument | None:
        options = kit.by_category(category)
        if category == "snare":
            named = [inst for inst in options if not inst.guessed]
            options = named or options
        return options[rng.integers(len(options))] if options else None

    chosen: dict[str, Instrument | None] = {cat: pick(cat) for cat in ROLES if cat != "tom"}
    fallbacks = {"snare": ("rimshot", "sidestick"), "rimshot": ("snare",),
                 "sidestick": ("snare",), "hihat_closed": ("hihat_pedal", "hihat_open", "ride"),
                 "hihat_pedal": ("hihat_closed",), "hihat_open": ("hihat_closed", "crash"),
                 "ride": ("crash", "hihat_closed"), "crash": ("ride", "china"),
                 "china": ("crash",)}
    for role, alternatives in fallbacks.items():
        for alternative in alternatives:
            if chosen[role] is None:
                chosen[role] = chosen.get(alternative)
    toms = sorted(kit.by_category("tom"), key=lambda inst: -inst.centroid_hz)
    if len(toms) > 4:
        keep = np.sort(rng.choice(len(toms), 4, replace=False))
        toms = [toms[i] for i in keep]
    result = {role: [inst] for role, inst in chosen.items() if inst is not None}
    if toms:
        result["tom"] = toms
    return result


def _labels(roles: dict[str, list[Instrument]], kits: Sequence[Kit]) -> dict[Instrument, str]:
    """A unique, readable name for each instrument playing a clip: the key of its tuning,
    mic path and rendered layers, and its name in meta.json. Kits may name several
    instruments alike (three "Tom"s sharing one sample at three pitchOffsets); keyed by
    name, they played as one drum at the first one's pitch. The first in kit order keeps
    its name, the next become "Tom #2", "Tom #3"; procedural drums come last."""
    rank = {inst: i for i, inst in enumerate(inst for kit in kits for inst in kit.instruments)}
    playing = dict.fromkeys(inst for insts in roles.values() for inst in insts)
    labels: dict[Instrument, str] = {}
    for inst in sorted(playing, key=lambda inst: rank.get(inst, len(rank))):
        label, count = inst.name, 1
        while label in labels.values():
            count += 1
            label = f"{inst.name} #{count}"
        labels[inst] = label
    return labels


def _piece_key(role: str, label: str) -> str:
    """One mic path per physical piece (``label`` from ``_labels``): hi-hat articulations
    come from one cymbal pair, and a cymbal standing in for a missing role (china played
    on the crash) is the same cymbal."""
    if role in SNARE_CATEGORIES:
        return "snare"
    return "hihat" if role.startswith("hihat") else label


@dataclass(frozen=True)
class _Hit:
    """A hit as placed on its piece's track: where its one-shot's hit sounds and where the
    one-shot ends (samples from the clip's start, before the piece's bleed path), and its
    meta.json fields."""

    key: str  # the piece's track (``_piece_key``)
    attack: int
    end: int
    fields: dict


def _list_hits(hits: Sequence[_Hit], delays: dict[str, float], n_out: int,
               sample_rate: int) -> tuple[list[dict], list[dict]]:
    """meta.json's ``onsets``, the hits that sound inside the clip, and ``onsets_before``,
    those sounding before it that still ring at its start (the metrics take their ring out
    of the "only toms or kick" regions: a ride struck 0.35 s before the clip filled a whole
    region of one). Each is marked where it sounds: its one-shot's attack (``Layer.lead``),
    for a bleed piece after its path's delay. Marked where its one-shot's file starts, a hit
    came up to 19 ms (a snare) and 49 ms (a kick) early, before SPEC 5's hit window."""
    onsets, rung_in = [], []
    for hit in hits:
        delay = int(round(delays.get(hit.key, 0.0)))
        start = hit.attack + delay
        listed = (onsets if 0 <= start < n_out
                  else rung_in if start < 0 < hit.end + delay else None)
        if listed is not None:
            listed.append({"time": round(start / sample_rate, 6), "sample": start, **hit.fields})
    return onsets, rung_in


def render_events(kit: Kit, events: Events, rng: np.random.Generator, config: SynthConfig,
                  start: float, duration: float, bleed_kit: Kit | None = None
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render ``events`` (times in seconds, window [start, start+duration)) to
    ``(clean, bleed, info)`` at the snare mic, before output normalisation.

    With ``bleed_kit`` the snare comes from ``kit`` and every other piece from
    ``bleed_kit``: six allowed kits then give thirty snare/bleed pairings instead of six.
    """
    sr = config.sample_rate
    mic = config.mic
    total = int(round((duration - start) * sr)) + 1
    n_out = int(round(duration * sr))
    offset = int(round(-start * sr))
    roles = _choose_instruments(kit, rng)
    if bleed_kit is not None:
        others = _choose_instruments(bleed_kit, rng)
        roles = {**{r: v for r, v in others.items() if r not in SNARE_CATEGORIES},
                 **{r: v for r, v in roles.items() if r in SNARE_CATEGORIES}}
    procedural = None
    chance = config.procedural_snare_probability
    if chance > 0 and rng.random() < chance:  # no draw when off: seeds render as before
        procedural = modal_drum_instrument(rng)
        # The drum replaces the kit's snare in every articulation, side sticks included
        # (at ``sidestick_gain_db``, below): the clean target is one snare, and a clip
        # with side-stick backbeats must not lose them.
        roles = {r: v for r, v in roles.items() if r not in SNARE_CATEGORIES}
        roles["snare"] = roles["rimshot"] = roles["sidestick"] = [procedural]
        if "tom" in roles:
            toms = sorted((modal_drum_instrument(rng, TOM_RANGES, "procedural tom", "tom")
                           for _ in roles["tom"]), key=lambda inst: -inst.centroid_hz)
            roles["tom"] = [replace(tom, name=f"procedural tom {i + 1}")  # high to low
                            for i, tom in enumerate(toms)]
    if "snare" not in roles:
        raise KitError(f"{kit.path}: kit {kit.name!r} has no snare instrument")
    labels = _labels(roles, [kit] if bleed_kit is None else [kit, bleed_kit])

    tracks: dict[str, np.ndarray] = {}
    families: dict[str, str] = {}
    tuning: dict[str, float] = {}
    decay: dict[str, float | None] = {}
    variants: dict[tuple[str, int], np.ndarray] = {}
    hits: list[_Hit] = []
    # hi-hat articulations choke each other (Hydrogen's mute group): an open hat stops at
    # the next hat hit.
    hat_times = events.time[np.char.startswith(np.array(ROLES)[events.role], "hihat")]

    for index in range(len(events)):
        role = ROLES[events.role[index]]
        if role not in roles:
            continue
        candidates = roles[role]
        tom = int(events.tom[index])
        inst = candidates[min(len(candidates) - 1, round(tom * (len(candidates) - 1) / 3))
                          ] if role == "tom" else candidates[0]
        name = labels[inst]
        key = _piece_key(role, name)
        if key not in tracks:
            tracks[key] = np.zeros(total, np.float32)
            families[key] = "snare" if key == "snare" else family(role)
        if name not in tuning:
            wide = rng.random() < config.wide_pitch_probability
            span = config.wide_pitch_semitones if wide else config.pitch_semitones
            tuning[name] = float(rng.uniform(-span, span))
            decay[name] = (float(rng.uniform(*config.decay_seconds))
                           if rng.random() < config.decay_probability else None)
        velocity = int(events.velocity[index])
        layer_index = inst.pick_layer(velocity / 127.0, rng)
        layer = inst.layers[layer_index]
        variant_key = (name, layer_index)
        if variant_key not in variants:
            shifted = pitch_shift(layer.samples, tuning[name], sr)
            if decay[name] is not None:
                t = np.arange(shifted.size, dtype=np.float32) / sr
                shifted = shifted * np.exp(-t / np.float32(decay[name]))
            variants[variant_key] = shifted
        sample = variants[variant_key]
        gain = (velocity / 127.0) ** config.velocity_exponent / max(layer.peak, 1e-9)
        if role == "sidestick":
            gain *= 10 ** (mic.sidestick_gain_db / 20)
        elif role == "rimshot":
            gain *= 10 ** (mic.rimshot_gain_db / 20)
        position = int(round((events.time[index] - start) * sr))
        length = min(sample.size, total - position)
        if role == "hihat_open":
            later = hat_times[hat_times > events.time[index] + 1e-4]
            if later.size:
                length = min(length, int(round((later[0] - events.time[index]) * sr)) + 240)
        if position < 0 or length <= 0:
            continue
        piece = sample[:length] * np.float32(gain)
        if role == "hihat_open" and length < sample.size:
            piece[-240:] *= np.linspace(1, 0, min(240, length), dtype=np.float32)
        tracks[key][position:position + length] += piece
        # the one-shot's lead-in is resampled with it: 2**(-st/12) as long
        attack = position + int(round(layer.lead * 2 ** (-tuning[name] / 12)))
        hits.append(_Hit(key, attack - offset, position + length - offset,
                         {"instrument": role, "kit_instrument": name, "velocity": velocity,
                          "target": role in SNARE_CATEGORIES}))

    ir = room_ir(rng, sr, mic)
    snare_room_db = float(rng.uniform(*mic.room_level_db))
    bleed_room_db = snare_room_db + float(rng.uniform(*mic.bleed_room_extra_db))
    clean = tracks.pop("snare", np.zeros(total, np.float32))
    bleed = np.zeros(total, np.float32)
    paths = {}
    delays: dict[str, float] = {}  # samples
    for key in sorted(tracks):
        gain_db = float(rng.uniform(*mic.gain_db[families[key]]))
        delay_ms = float(rng.uniform(*mic.delay_ms))
        sos = random_colouring(rng, sr, mic)
        delays[key] = delay_ms / 1000.0 * sr
        bleed += bleed_path(tracks[key], sos, gain_db, delays[key])
        paths[key] = {"gain_db": round(gain_db, 2), "delay_ms": round(delay_ms, 3)}
    clean = add_room(clean, ir, snare_room_db)
    bleed = add_room(bleed, ir, bleed_room_db)
    tone_db = float(rng.uniform(*mic.room_tone_db))
    bleed += room_tone(rng, total, sr, tone_db)
    eq = mic_eq(rng, sr, mic)
    polarity = -1.0 if rng.random() < mic.polarity_flip_probability else 1.0
    # Drawn last and only when enabled, so every other draw (and an EQ-free render of the
    # same seed) is unchanged; a linear filter commutes with the room, so applying it here
    # equals applying it to the dry snare.
    snare_eq = mic.snare_eq_probability > 0 and rng.random() < mic.snare_eq_probability
    snare_filter = np.vstack([eq, snare_colouring(rng, sr, mic)]) if snare_eq else eq
    clean = (polarity * sosfilt(snare_filter, clean)[offset:offset + n_out]).astype(np.float32)
    bleed = (polarity * sosfilt(eq, bleed)[offset:offset + n_out]).astype(np.float32)
    onsets, rung_in = _list_hits(hits, delays, n_out, sr)
    info = {"paths": paths, "tuning_semitones": {k: round(v, 3) for k, v in tuning.items()},
            "room_level_db": round(snare_room_db, 2), "bleed_room_level_db": round(bleed_room_db, 2),
            "room_tone_db": round(tone_db, 2), "polarity": int(polarity), "onsets": onsets,
            "onsets_before": rung_in,
            "snare_eq": bool(snare_eq),
            "procedural_snare_hz": (None if procedural is None
                                    else round(procedural.centroid_hz, 1)),
            "instruments": {role: [labels[inst] for inst in insts]
                            for role, insts in roles.items()}}
    return clean, bleed, info


#: The peak of a full snare hit before output scaling: ``render_events`` gives a hit the gain
#: ``(velocity / 127) ** velocity_exponent / layer.peak``, so at velocity 127 its direct sound
#: peaks at 1 (with its room and the mic's EQ, 0.1-0.7 dB more in the median on the seven
#: kits), the level the mic model's bleed gains and room tone are given against.
FULL_HIT_PEAK = 1.0


def _finish(clean: np.ndarray, bleed: np.ndarray, rng: np.random.Generator,
            config: SynthConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Scale all three tracks together to a random peak level; noisy is their exact sum.

    A clip whose clean track is silent (bleed-only, or a window of a performance without
    a snare) is scaled as if a full snare hit were there (``FULL_HIT_PEAK``), so its bleed
    keeps its level under the snare, as a tacet passage of a track the engine levels whole
    does. Scaled to its own peak, its bleed sat a median 13 dB (7-25 dB) higher than beside
    a snare, and its room tone with it."""
    peak = max(float(np.max(np.abs(clean + bleed))), float(np.max(np.abs(clean))),
               float(np.max(np.abs(bleed))), 1e-9)
    if not np.any(clean):
        peak = max(peak, FULL_HIT_PEAK)
    target_db = float(rng.uniform(*config.peak_dbfs))
    scale = np.float32(10 ** (target_db / 20) / peak)
    clean = (clean * scale).astype(np.float32)
    bleed = (bleed * scale).astype(np.float32)
    return clean + bleed, clean, bleed, 20 * np.log10(float(scale))


def render_clip(kits: Kit | Sequence[Kit], seed: int, config: SynthConfig = SynthConfig(),
                style: str | None = None,
                performances: Sequence[Performance | Events] | None = None) -> Clip:
    """One seeded clip from one of ``kits`` (same seed and kits -> same samples).

    With ``performances`` (``Performance`` parts, or whole ``training.midi.read_midi``
    event lists of real drum tracks) the groove is a random clip-long window of one of
    them that holds some of its hits, instead of a generated one; meta.json then records
    ``midi_file``, ``midi_start``, the window's start in the performance (s), and
    ``midi_loop``, the bars it loops (``_bar_loop``) or None.
    """
    check_seed(seed)
    config.validate()
    kits = [kits] if isinstance(kits, Kit) else list(kits)
    if not kits:
        raise KitError("no kit given to render from")
    rng = np.random.default_rng(seed)
    chosen = int(rng.integers(len(kits)))
    kit = kits[chosen]
    bleed_kit = None
    pair = len(kits) > 1 and config.cross_kit_probability > 0  # no draw when off: see as_recorded
    if pair and rng.random() < config.cross_kit_probability:
        # By position, not identity: one kit given twice is one cached object.
        others = kits[:chosen] + kits[chosen + 1:]
        bleed_kit = others[int(rng.integers(len(others)))]
    midi: dict[str, str | float | list[float] | None] = {}
    if performances:
        performance = performances[int(rng.integers(len(performances)))]
        if isinstance(performance, Events):
            performance = Performance(performance)
        groove, start, loop = _performance_window(performance, rng, config)
        midi = {"midi_file": performance.name, "midi_start": round(start, 6),
                "midi_loop": loop and [round(edge, 6) for edge in loop]}
    else:
        groove = generate_groove(rng, -config.preroll_seconds, config.clip_seconds,
                                 config.groove, style=style)
    bleed_only = rng.random() < config.bleed_only_probability
    if bleed_only:
        groove.events = groove.events.select(~groove.events.is_target)
    clip = _assemble(kit, groove, rng, config, seed, bleed_only, -config.preroll_seconds,
                     bleed_kit)
    clip.meta.update(midi)
    return clip


def _performance_window(performance: Performance, rng: np.random.Generator,
                        config: SynthConfig
                        ) -> tuple[Groove, float, tuple[float, float] | None]:
    """A random window of a performance's part that holds some of its hits, shifted so the
    clip starts at 0; the window's start in the performance (s); and the loop it plays.

    It hears the part's hits only (so a validation window shares no hit with a training
    window of the same performance). A part shorter than a clip plays over and over at its
    bar length where the file gives one (``_bar_loop``): a pack of 8-s groove loops gave
    10-s clips whose last 4 s were silent."""
    part, low, end = _part(performance)
    clip = config.clip_seconds
    loop = _bar_loop(performance, part) if end - low < clip else None  # ``_shorter``'s test
    if loop is None:
        hits, high = part, max(low, end - clip)
    else:
        low, high = loop
        # a hit on the loop's end bar line is the next pass's first: kept, the seam played
        # it twice, as float rounding put it a hair under the line or not; one on its start
        # line is this pass's first, and the hits before it (a validation part's start moved
        # to the bar line after its cut) are dropped
        edge = BAR_GRID * performance.bar
        kept = (part.time >= low - edge) & (part.time < high - edge)
        hits = _repeat(part.select(kept), high - low, config.preroll_seconds, clip)
    start = _start_with_hits(hits.time, low, high, clip, rng)
    window = hits.select((hits.time >= start - config.preroll_seconds)
                         & (hits.time < start + clip))
    shifted = Events(window.time - start, window.role, window.velocity, window.tom)
    return Groove(shifted, None, "midi", []), start, loop


def _part(performance: Performance) -> tuple[Events, float, float]:
    """The part's hits (in time order) and the stretch its windows may cover: from
    ``HIT_MARGIN_SECONDS`` before its first hit to as long after its last, within the part.
    Drawn from the part's start, a song's 40-s intro gave 4 of 9 windows no hit, and
    ``_finish`` raised their room tone by 45-54 dB to a clip's level."""
    events = performance.events
    part = events.select((events.time >= performance.start)
                         & (events.time < performance.stop)).sorted()
    if not len(part):
        raise DatasetError(f"{performance.name or 'a performance'}: no hit in "
                           f"[{performance.start:g}, {performance.stop:g}) s to take clips from")
    low = max(performance.start, float(part.time[0]) - HIT_MARGIN_SECONDS)
    end = min(performance.stop, float(part.time[-1]) + HIT_MARGIN_SECONDS)
    return part, low, end


#: Bar lines are placed to this fraction of a bar: hit times are sums of floats, so a hit
#: at 5.9999999 s lies on the bar line at 6 s.
BAR_GRID = 1e-6


def _bar_loop(performance: Performance, part: Events) -> tuple[float, float] | None:
    """The part as a loop of whole bars, ``[start, end)`` s, or None without a bar length.

    It runs from the bar line at or before the part's first hit to the bar line after its
    last. A cut bounding the part mid-bar (its file's hits beyond it are the other part's)
    moves an edge inward to the bar line nearest the cut: a validation part (``start`` past
    the file's start at 0) loops from there, keeping its last hit's bar (from the bar line
    before it, one cut at 7.25 s into 2-s bars played 1.25 s of silence every pass), and a
    training part (a finite ``stop``) loops to there. A tie goes inside, the later line for
    a start and the earlier for a stop: either part drops half a bar of its hits rather
    than loop half a bar of silence where the other's hits were. It is at least a bar long."""
    if performance.bar is None:
        return None
    bar, grid = performance.bar, BAR_GRID
    first, last = float(part.time[0]), float(part.time[-1])
    start = bar * math.floor(first / bar + grid)
    end = bar * (math.floor(last / bar + grid) + 1)
    if performance.start > 0:
        start = min(max(start, bar * math.floor(performance.start / bar + 0.5 + grid)),
                    end - bar)
    if math.isfinite(performance.stop):
        end = min(end, bar * math.ceil(performance.stop / bar - 0.5 - grid))
    return start, max(start + bar, end)


def _repeat(events: Events, period: float, before: float, after: float) -> Events:
    """``events`` (within one ``period``) played every ``period`` s, from at least
    ``before`` s ahead of them to ``after`` s past their period's end: a window anywhere in
    the first period, its pre-roll included, hears the loop throughout."""
    shifts = period * np.arange(-math.ceil(before / period), math.ceil(after / period) + 1)
    count = shifts.size
    return Events((events.time[None, :] + shifts[:, None]).ravel(), np.tile(events.role, count),
                  np.tile(events.velocity, count), np.tile(events.tom, count))


def _start_with_hits(times: np.ndarray, low: float, high: float, clip: float,
                     rng: np.random.Generator) -> float:
    """A clip's start in ``[low, high]``, uniform among the starts whose clip holds one of
    the hits at ``times`` (sorted): where redrawing an empty window until one holds a hit
    ends, in one draw. A clip from ``s`` holds the hit at ``t`` when ``t - clip < s <= t``;
    these stretches are merged where they overlap, one is picked by its length and the
    start placed in it. With ``low == high`` (a short part that cannot loop) it is ``low``."""
    left, right = np.maximum(times - clip, low), np.minimum(times, high)
    keep = right >= left
    left, right = left[keep], right[keep]
    new = np.r_[True, left[1:] > np.maximum.accumulate(right)[:-1]]
    first = np.flatnonzero(new)
    left, right = left[first], np.maximum.reduceat(right, first)
    ends = np.cumsum(right - left)
    at = rng.uniform(0.0, ends[-1])
    index = min(int(np.searchsorted(ends, at, side="right")), ends.size - 1)
    return float(right[index] - (ends[index] - at))


def _assemble(kit: Kit, groove: Groove, rng: np.random.Generator, config: SynthConfig,
              seed: int, bleed_only: bool, start: float, bleed_kit: Kit | None = None) -> Clip:
    clean, bleed, info = render_events(kit, groove.events, rng, config, start,
                                       config.clip_seconds, bleed_kit)
    noisy, clean, bleed, gain_db = _finish(clean, bleed, rng, config)
    bleed, chain = add_recording_chain(clean, bleed, rng, config.floor_probability,
                                       config.floor_dbfs, config.quantise_probability)
    if chain:
        noisy = clean + bleed
    meta = {
        "sample_rate": config.sample_rate, "seed": int(seed), "kit": kit.name,
        "bleed_kit": (bleed_kit or kit).name,
        "bpm": None if groove.bpm is None else round(groove.bpm, 2), "style": groove.style, "bleed_only": bool(bleed_only),
        "tacet": [[round(a, 4), round(b, 4)] for a, b in groove.tacet
                  if b > 0 and a < config.clip_seconds],
        "output_gain_db": round(gain_db, 2), **info, **chain,
    }
    return Clip(noisy, clean, bleed, meta)


CLIP_WAVS = ("noisy", "clean", "bleed")
META_BYTES = 16_384  # a clip's meta.json with a busy groove's onsets, rounded up


# Workers get everything through ``_init_worker``'s (picklable) arguments, so any start
# method works: fork where it is safe, spawn on Windows (no fork) and macOS (fork unsafe).
START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
CLIP_SECONDS = (0.5, 600.0)  # shortest and longest clip of any dataset, synthetic or session


def check_clip_seconds(seconds: float) -> None:
    """Refuse a clip length outside ``CLIP_SECONDS`` (NaN included): shorter clips hold
    hardly a hit and turn a session into thousands of tiny files, longer ones are a typo.
    A number only: ``True`` passed as one second and ``"10"`` failed as a TypeError."""
    low, high = CLIP_SECONDS
    if not (is_number(seconds) and low <= seconds <= high):
        raise DatasetError(f"--clip-seconds must be between {low:g} and {high:g}, got {seconds}")


def check_seed(seed: int, what: str = "synth:") -> None:
    """Refuse a seed numpy cannot take (a negative one failed inside the first clip's
    ``SeedSequence``, a float or a bool would seed other clips than the number says)."""
    check_whole(what, "seed", seed, 0)


def clip_count(hours: float, clip_seconds: float) -> int:
    """How many clips ``hours`` of audio is (at least one); the clip length is checked first,
    since it divides."""
    check_clip_seconds(clip_seconds)
    clips = hours * 3600 / clip_seconds
    if not math.isfinite(clips):  # 1e306 hours overflows the count; no disk holds it anyway
        raise DatasetError(f"--hours {hours:g} is more audio than any disk holds")
    return max(1, int(round(clips)))


def check_disk_space(out: Path, clips: int, config: SynthConfig) -> None:
    """Refuse before writing anything when the clips cannot fit where they go: a typo in
    ``--hours`` should cost a one-line error, not a full disk and a half-written dataset."""
    wav_bytes = config.clip_seconds * config.sample_rate * SUBTYPE_BYTES["FLOAT"]
    need = clips * (len(CLIP_WAVS) * wav_bytes + META_BYTES)
    existing = existing_ancestor(out)
    free = shutil.disk_usage(existing).free
    if need > free:
        raise DatasetError(f"{clips} clips need about {disk_size(need)}; "
                           f"{existing} has {disk_size(free)} free")


def disk_size(size: float) -> str:
    """``size`` bytes in GB, or below 1 GB in MB: a small dataset on a nearly full disk
    read "need about 0.0 GB; ... has 0.0 GB free"."""
    return f"{size / 1e9:,.1f} GB" if size >= 1e9 else f"{size / 1e6:,.1f} MB"


def write_clip(clip: Clip, folder: str | Path) -> Path:
    """Write noisy/clean/bleed float32 WAVs and meta.json into ``folder`` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rate = clip.meta["sample_rate"]
    for name in CLIP_WAVS:
        write_audio(folder / f"{name}.wav", getattr(clip, name)[None, :], rate)
    write_text_atomic(folder / "meta.json", json.dumps(clip.meta, indent=1) + "\n")
    return folder


# --- whole datasets ---------------------------------------------------------------------

_WORKER: dict = {}


def performance_parts(midi_paths: Sequence[str], valid_fraction: float | None,
                      clip_seconds: float) -> dict[str, list[Performance]]:
    """Each split's parts of the MIDI performances: every file's first hits for training
    and its last for validation (``split_performance``), or, with ``valid_fraction``
    None (a test set), the whole files for test. A file with a part shorter than a clip
    that cannot loop is named in a warning (``_warn_unlooped``)."""
    whole = [Performance(events, Path(path).name, bar=bar)
             for path in midi_paths for events, bar in [read_performance(path)]]
    if valid_fraction is None:
        for performance in whole:
            _warn_unlooped({"test": performance}, clip_seconds)
        return {"test": whole}
    parts = [split_performance(performance, valid_fraction) for performance in whole]
    splits = {split: [part[split] for part in parts if _holds_hits(part[split])]
              for split in ("train", "valid")}
    wanted = ("train", "valid") if valid_fraction > 0 else ("train",)
    empty = [split for split in wanted if not splits[split]]
    if whole and empty:  # a split without parts would silently fall back to generated grooves
        raise DatasetError(f"MIDI {', '.join(Path(p).name for p in midi_paths)}: too few hits "
                           f"at distinct times to give the {' and '.join(empty)} split its own "
                           "part; give longer performances")
    for part in parts:
        _warn_unlooped(part, clip_seconds)
    return splits


def _warn_unlooped(parts: dict[str, Performance], clip_seconds: float) -> None:
    """Warn, in one line per file, that its parts shorter than a clip will not loop: its
    tempo or time signature changes, so no bar length says where a loop would end, and
    its clips end in silence after its hits (``_performance_window``)."""
    short = [split for split, part in parts.items()
             if part.bar is None and _holds_hits(part) and _shorter(part, clip_seconds)]
    if short:
        name = next(iter(parts.values())).name
        warnings.warn(f"{name}: its {' and '.join(short)} part{'s' * (len(short) > 1)} "
                      f"last{'s' * (len(short) == 1)} less than a {clip_seconds:g} s clip and "
                      "cannot loop, its tempo or time signature changing: those clips end in "
                      "silence", stacklevel=3)


def _shorter(performance: Performance, clip_seconds: float) -> bool:
    """Whether the stretch a part's windows may cover (``_part``) is shorter than a clip."""
    _, low, end = _part(performance)
    return end - low < clip_seconds


def _holds_hits(performance: Performance) -> bool:
    """Whether the part has a hit: one hit, or a chord at one time, leaves one part empty."""
    times = performance.events.time
    return bool(np.any((times >= performance.start) & (times < performance.stop)))


def _init_worker(out: Path, kit_paths: list[str], config: SynthConfig,
                 performances: dict[str, list[Performance]]) -> None:
    """Set up a render worker: its signals left to ``render_dataset``, which terminates the
    pool and removes the unfinished dataset (Ctrl-C printed a traceback per worker), and
    the kits and settings every clip it renders reads."""
    leave_signals_to_parent()
    _WORKER.update(kits=[load_kit(path) for path in kit_paths], config=config, out=out,
                   performances=performances)


def _render_one(job: tuple[int, str, int, str]) -> dict:
    index, clip_id, seed, split = job
    clip = render_clip(_WORKER["kits"], seed, _WORKER["config"],
                       performances=_WORKER["performances"].get(split))
    write_clip(clip, _WORKER["out"] / clip_id)
    meta = clip.meta
    return {"id": clip_id, "seed": seed, "kit": meta["kit"], "style": meta["style"],
            "bpm": meta["bpm"], "bleed_only": meta["bleed_only"],
            "snare_hits": sum(1 for onset in meta["onsets"] if onset["target"]),
            "split": split}


def _terminate(pool: multiprocessing.pool.Pool, others: Collection[int]) -> None:
    """``pool.terminate()``, sending SIGTERM again each second to each of its workers (the
    children whose pids are not in ``others``, read again each time: the pool may have
    replaced one) not yet ended. ``terminate`` sends one, which a worker slept through when
    it came just before the worker blocked on the pool's task lock (its Python handler had
    no chance to run), and then waited on it for ever: 4 runs of 30 failing at once with 4
    workers. A second one interrupts that wait. Once none is left, the task lock a killed
    worker held is freed (``_free_a_dead_workers_task_lock``)."""
    done = threading.Event()

    def resend() -> None:
        while not done.wait(1.0):
            live = [worker for worker in _pool_workers(others).values()
                    if not multiprocessing.connection.wait([worker.sentinel], 0)]
            for worker in live:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(worker.pid, signal.SIGTERM)
            if not live:
                _free_a_dead_workers_task_lock(pool)

    thread = threading.Thread(target=resend, name="pool-sigterm", daemon=True)
    thread.start()
    try:
        pool.terminate()
    finally:
        done.set()
        thread.join()


def _free_a_dead_workers_task_lock(pool: multiprocessing.pool.Pool) -> None:
    """Free the read lock of ``pool``'s task queue, which ``Pool.terminate`` takes, without a
    timeout, to empty the queue; called once every worker has ended (``_terminate``).

    A worker holds that lock all the while it waits for a task: one killed then (SIGKILL
    from the out-of-memory killer to an idle worker, or a second SIGTERM) never released
    it, and the run, stopping with its one-line error, waited on it for ever. Once the pool
    starts no worker (its worker handler has ended, as ``terminate`` makes it) and every
    worker has ended, no process reads the queue: a lock still taken is a dead worker's,
    or ``terminate``'s own, which it never releases nor needs again; a free one is taken
    and released here.

    Private parts of ``multiprocessing.pool.Pool`` (``_worker_handler``, ``_inqueue._rlock``,
    which ``Pool._help_stuff_finish`` acquires), checked in CPython 3.11 (this project's)
    and in CPython's current main branch, alike; a multiprocessing ``Lock`` may be released
    by another process or thread than the one that took it."""
    if pool._worker_handler.is_alive():  # it may start a worker yet
        return
    lock = pool._inqueue._rlock
    lock.acquire(block=False)  # free: taken here; taken already: by a dead worker or terminate
    lock.release()


def _pool_workers(others: Collection[int]) -> dict[int, multiprocessing.process.BaseProcess]:
    """The running children whose pids are not in ``others``: the pool's workers."""
    return {child.pid: child for child in multiprocessing.active_children()
            if child.pid not in others}


#: How long a render worker may lie ended with status 0 before the run counts it as stopped
#: alone: far longer than the command takes to act on a signal its whole process group got.
QUIET_END_SECONDS = 1.0


def _failed_worker(workers: dict[int, multiprocessing.process.BaseProcess],
                   quiet: dict[int, float]) -> str | None:
    """How the first of ``workers`` (by pid) to have failed ended, or None while none has.

    A worker ends with status 0 on SIGTERM (``leave_signals_to_parent``): the command's own
    group signal (Ctrl-C, ``kill -- -PGID``, a scheduler's stop) ends its workers so, and
    the command, which got it too, stops by it within moments. A worker still lying so
    ``QUIET_END_SECONDS`` after it was first seen (``quiet``: pid -> when, updated here) was
    stopped alone, as earlyoom and nohang stop one before they SIGKILL it, or a plain
    ``kill PID``: taken as the command's, it left the run waiting for its clips for ever."""
    now = time.monotonic()
    for pid, worker in sorted(workers.items()):
        code = worker.exitcode
        if code == 0 and now - quiet.setdefault(pid, now) >= QUIET_END_SECONDS:
            return f"render worker {pid} was stopped by SIGTERM"
        if code is not None and code != 0:
            return (f"render worker {pid} was killed by {_signal_name(-code)}"
                    if code < 0 else f"render worker {pid} ended with status {code}")
    return None


def _signal_name(signum: int) -> str:
    """``SIGKILL`` for 9; ``signal 35`` for one Python names not (a real-time signal)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _rows_while_workers_live(pool: multiprocessing.pool.Pool,
                             jobs: Sequence[tuple[int, str, int, str]],
                             others: Collection[int]) -> Iterator[dict]:
    """``pool.imap(_render_one, jobs)``'s rows, raising ``DatasetError`` once one of the
    pool's workers (the children not in ``others``: those it started with, listed before it
    is handed a clip, and each it starts in a dead one's place) has failed
    (``_failed_worker``).

    Why: a worker killed alone (the kernel's out-of-memory killer sends SIGKILL) is replaced
    by the pool, but the clips it held are not handed out again, and the run waited for
    them for ever."""
    workers = _pool_workers(others)
    # One clip a task: in chunks, imap's rows come as a generator, without next(timeout).
    rows = pool.imap(_render_one, jobs)
    quiet: dict[int, float] = {}
    while True:
        workers.update(_pool_workers(others))
        failed = _failed_worker(workers, quiet)
        if failed:
            raise DatasetError(f"{failed} before its clips were done "
                               "(out of memory? try fewer --jobs or shorter clips)")
        try:
            row = rows.next(timeout=1.0)
        except StopIteration:
            return
        except multiprocessing.TimeoutError:
            continue
        yield row


def render_dataset(kit_paths: Sequence[str | Path], out: str | Path, hours: float, seed: int,
                   config: SynthConfig = SynthConfig(), valid_fraction: float = 0.2,
                   split: str | None = None, jobs: int = 1,
                   progress: Callable[[float, str], None] | None = None,
                   midi: Sequence[str | Path] = ()) -> Path:
    """Render ``hours`` of clips into ``out`` with a manifest; same arguments, same bytes.

    ``split="test"`` marks every clip as test (the only way to render the public test
    kit); otherwise clips are split train/valid by ``assign_splits``. ``midi`` (files or
    folders of General MIDI drum tracks) replaces generated grooves by windows of real
    performances, training clips from each file's first hits and validation clips from
    its last (``split_performance``).
    """
    out = Path(out)
    if not 0 < hours < math.inf:
        raise DatasetError(f"--hours must be a positive finite number, got {hours}")
    if split not in (None, "test"):
        raise DatasetError(f"split must be 'test' or automatic, got {split!r}")
    check_valid_fraction(valid_fraction)  # a test set has no use for it, but 7 is no fraction
    check_seed(seed)
    config.validate()
    paths = [str(path) for path in kit_paths]  # what was given: an .xml is not its folder
    kits = [load_kit(path) for path in paths]
    if not kits:
        raise DatasetError("give at least one --kit")
    if split != "test":
        refuse_test_kits(kits, " (use --split test to render a test set)")
    midi_paths = [str(path) for path in midi_files(list(midi))] if midi else []
    # A bad file or too short a performance fails here, before anything is written: in a
    # worker's initializer the pool would start a new worker for each that failed, forever.
    performances = performance_parts(midi_paths, None if split == "test" else valid_fraction,
                                     config.clip_seconds)
    n = clip_count(hours, config.clip_seconds)
    check_disk_space(out, n, config)
    width = max(5, len(str(n - 1)))
    splits = ["test"] * n if split == "test" else assign_splits(n, seed, valid_fraction)
    jobs_list = [(i, f"clip-{i:0{width}d}", clip_seed(seed, i), splits[i]) for i in range(n)]
    # The workers load the paths given, not ``kit.path``: that is the kit's folder, and for
    # a Hydrogen XML not named drumkit.xml they read it as loose one-shots, another kit.
    worker = (paths, config, performances)
    with staged_output(out) as staging:
        rows = []
        if jobs > 1:
            context = multiprocessing.get_context(START_METHOD)
            others = {child.pid for child in multiprocessing.active_children()}
            with signals_held(START_METHOD):  # till the workers have their own handlers
                pool = context.Pool(jobs, _init_worker, (staging, *worker))
            try:
                for row in _rows_while_workers_live(pool, jobs_list, others):
                    rows.append(row)
                    if progress:
                        progress(len(rows), row["id"])
                # Ended by their sentinels, not by SIGTERM, which a worker could sleep
                # through (``_terminate``): the run hung after its last clip in 2 runs of 6.
                pool.close()
                pool.join()
            except BaseException:  # a failed clip, Ctrl-C, the command's SIGTERM or SIGHUP
                _terminate(pool, others)
                raise
        else:
            _init_worker(staging, *worker)
            for job in jobs_list:
                rows.append(_render_one(job))
                if progress:
                    progress(len(rows), rows[-1]["id"])
        header = {"version": 1, "source": "synth", "sample_rate": config.sample_rate,
                  "clip_seconds": config.clip_seconds, "seed": seed,
                  "split_version": SPLIT_VERSION, "kits": [kit.name for kit in kits],
                  "midi": [Path(path).name for path in midi_paths], "config": config.to_dict()}
        write_manifest(staging, header, rows)
    return out

"""Seeded drum grooves: which piece is hit when and how hard.

A groove is a small set of parallel arrays (``Events``), built bar by bar on a 16th or
triplet grid with numpy, then humanised (timing and velocity jitter) in one vectorised
step. Styles cover what a snare close mic meets in practice: backbeats, shuffles,
half-time, funk with ghost notes, linear patterns, blast beats, cymbal swells, tom fills,
flams, rolls, side stick, and tacet bars where the snare rests and only bleed sounds.

Roles are the kit categories of ``training.kits``; toms carry an index 0..3 from high to
low, mapped onto however many toms the kit has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from denoiser.errors import ParameterError

from .bounds import check_fields, check_keys, check_number
from .kits import CATEGORIES, SNARE_CATEGORIES

ROLES = CATEGORIES
ROLE = {name: index for index, name in enumerate(ROLES)}
TARGET_ROLES = np.array([ROLE[name] for name in SNARE_CATEGORIES])
GHOST_MAX_VELOCITY = 45
STYLES = ("backbeat", "shuffle", "halftime", "funk", "linear", "blast", "swell", "fills")
N_TOMS = 4

#: The widest values a groove setting may take (probabilities are [0, 1]). Unchecked, a
#: tempo of 0 divided by zero, one of 1e9 built bars for days, a timing jitter of 1e9 ms
#: threw every hit out of the clip (silent clips); all are far past a drummer's.
GROOVE_LIMITS: dict[str, tuple[float, float]] = {
    "bpm_range": (10.0, 600.0), "timing_jitter_ms": (0.0, 100.0),
    "velocity_jitter": (0.0, 127.0), "style_weights": (0.0, 1e6)}


@dataclass(frozen=True)
class GrooveConfig:
    """Ranges and probabilities of the groove generator (defaults: SPEC section 4)."""

    bpm_range: tuple[float, float] = (60.0, 220.0)
    style_weights: dict[str, float] = field(default_factory=lambda: {
        "backbeat": 3.0, "shuffle": 1.0, "halftime": 1.0, "funk": 2.0, "linear": 1.0,
        "blast": 0.6, "swell": 0.6, "fills": 1.0})
    ghost_probability: float = 0.12     # per free 16th in styles that use ghost notes
    flam_probability: float = 0.08      # per main snare hit
    roll_probability: float = 0.08      # per bar: a snare roll replaces the last beat(s)
    kick_ghost_probability: float = 0.0  # per kick: a ghost stroke struck with it
    fill_probability: float = 0.35      # per phrase end (every 4th bar)
    tacet_bar_probability: float = 0.1  # per bar: the snare rests, everything else plays
    rimshot_probability: float = 0.2    # per clip: backbeats are rimshots
    sidestick_probability: float = 0.1  # per clip: backbeats are side sticks
    timing_jitter_ms: tuple[float, float] = (1.5, 10.0)   # per-clip sigma range
    velocity_jitter: float = 7.0

    def validate(self, what: str = "synth:", prefix: str = "groove.") -> "GrooveConfig":
        """Return ``self`` or raise naming the first setting (``groove.bpm_range``) no
        groove can be built with: numbers and ranges within ``GROOVE_LIMITS``, style
        weights of known styles, finite, >= 0, one of them > 0 (a style is drawn in
        proportion to its weight; an unknown one failed as a KeyError mid-render)."""
        check_fields(what, self, GROOVE_LIMITS, prefix)
        name = prefix + "style_weights"
        check_keys(what, name, self.style_weights, STYLES)
        for style, weight in self.style_weights.items():
            check_number(what, f"{name}[{style!r}]", weight, *GROOVE_LIMITS["style_weights"])
        if not sum(self.style_weights.values()) > 0:
            raise ParameterError(f"{what} {name} = {self.style_weights!r}: "
                                 "must weigh some style above 0")
        return self


@dataclass
class Events:
    """Hits as parallel arrays: time (s), role index, velocity 1-127, tom index (-1)."""

    time: np.ndarray
    role: np.ndarray
    velocity: np.ndarray
    tom: np.ndarray

    @classmethod
    def empty(cls) -> Events:
        return cls(np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int16), np.zeros(0, np.int8))

    def __len__(self) -> int:
        return int(self.time.size)

    def select(self, mask: np.ndarray) -> Events:
        return Events(self.time[mask], self.role[mask], self.velocity[mask], self.tom[mask])

    def sorted(self) -> Events:
        return self.select(np.argsort(self.time, kind="stable"))

    @property
    def is_target(self) -> np.ndarray:
        return np.isin(self.role, TARGET_ROLES)


@dataclass
class Groove:
    """Events plus what produced them (for meta.json)."""

    events: Events
    bpm: float | None  # None for recorded performances (MIDI) with a tempo map
    style: str
    tacet: list[tuple[float, float]]


class _Builder:
    """Collects event arrays bar by bar, concatenated once at the end. Beside each hit's
    time, role, velocity and tom it keeps the time of the main hit it is a flam's grace
    note of (NaN for any other hit), so that humanising moves the two together."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, role: str, times: np.ndarray | float, velocities: np.ndarray | float,
            tom: np.ndarray | int = -1, mains: np.ndarray | None = None) -> None:
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        shape = times.shape
        self.parts.append((times, np.full(shape, ROLE[role], np.int8),
                           np.broadcast_to(np.asarray(velocities, np.float64), shape).copy(),
                           np.broadcast_to(np.asarray(tom, np.int8), shape).copy(),
                           np.full(shape, np.nan) if mains is None else np.asarray(mains)))

    def events(self) -> tuple[Events, np.ndarray]:
        """The hits, and for each the index of the main hit it is a flam's grace note of
        (``_leaders``)."""
        if not self.parts:
            return Events.empty(), np.zeros(0, np.int64)
        time, role, velocity, tom, mains = (np.concatenate(column) for column in zip(*self.parts))
        events = Events(time, role, velocity.astype(np.int16), tom)
        return events, _leaders(events, mains)


def _leaders(events: Events, mains: np.ndarray) -> np.ndarray:
    """For each hit, the index of the main hit it is a flam's grace note of, -1 for none: the
    first snare hit at that time that is no grace note itself. A fill that replaced the
    main hit may have put its own snare hit there, which the grace note then leads into;
    where it put a tom, the grace note has none."""
    leaders = np.full(len(events), -1, np.int64)
    grace = np.flatnonzero(~np.isnan(mains))
    candidates = np.flatnonzero(events.is_target & np.isnan(mains))
    if grace.size == 0 or candidates.size == 0:
        return leaders
    order = candidates[np.argsort(events.time[candidates], kind="stable")]
    times = events.time[order]
    at = np.minimum(np.searchsorted(times, mains[grace]), times.size - 1)
    found = times[at] == mains[grace]
    leaders[grace[found]] = order[at[found]]
    return leaders


@dataclass
class _Feel:
    """Per-clip choices every bar generator shares."""

    beat: float
    backbeat_role: str
    timekeeper: str
    subdivision: int       # timekeeper hits per beat
    intensity: float       # scales main velocities
    ghosts: float          # probability of a ghost note per free slot


def _vel(rng: np.random.Generator, low: float, high: float, n: int | None = None) -> np.ndarray:
    return rng.uniform(low, high, n)


def _timekeeper(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
                triplet: bool = False) -> None:
    """Hats or ride on the beat grid, accents on the beats."""
    if triplet:
        grid = (np.arange(4)[:, None] + np.array([0.0, 2 / 3])[None, :]).ravel()
    else:
        grid = np.arange(4 * feel.subdivision) / feel.subdivision
    accent = np.isclose(grid % 1.0, 0.0)
    velocity = np.where(accent, _vel(rng, 85, 115, grid.size), _vel(rng, 55, 85, grid.size))
    b.add(feel.timekeeper, start + grid * feel.beat, velocity * feel.intensity)
    if feel.timekeeper == "hihat_closed" and rng.random() < 0.3:
        b.add("hihat_open", start + 3.5 * feel.beat, _vel(rng, 80, 110) * feel.intensity)
    if feel.timekeeper == "ride" and rng.random() < 0.5:
        b.add("hihat_pedal", start + np.array([1.0, 3.0]) * feel.beat, _vel(rng, 60, 100, 2))


def _ghosts(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
            slots: np.ndarray, taken: np.ndarray) -> None:
    """Ghost notes (velocity <= 45) on free grid slots (in beats)."""
    free = slots[~np.isin(np.round(slots, 3), np.round(taken, 3))]
    chosen = free[rng.random(free.size) < feel.ghosts]
    b.add("snare", start + chosen * feel.beat, _vel(rng, 12, GHOST_MAX_VELOCITY, chosen.size))


def _snare(b: _Builder, rng: np.random.Generator, times: np.ndarray, feel: _Feel,
           config: GrooveConfig, role: str | None = None) -> None:
    """Main snare hits (the clip's backbeat articulation), some as flams."""
    role = role or feel.backbeat_role
    velocity = _vel(rng, 95, 127, times.size) * feel.intensity
    b.add(role, times, velocity)
    flams = times[rng.random(times.size) < config.flam_probability]
    b.add("snare", flams - rng.uniform(0.015, 0.035, flams.size), _vel(rng, 25, 50, flams.size),
          mains=flams)


def _kick(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel, must: list[float],
          density: float, grid: float = 0.5) -> np.ndarray:
    slots = np.arange(0, 4, grid)
    extra = slots[rng.random(slots.size) < density]
    beats = np.union1d(np.array(must, dtype=float), extra)
    b.add("kick", start + beats * feel.beat, _vel(rng, 85, 120, beats.size) * feel.intensity)
    return beats


def _bar_backbeat(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
                  config: GrooveConfig) -> None:
    _timekeeper(b, rng, start, feel)
    kicks = _kick(b, rng, start, feel, [0.0, 2.0], 0.2)
    _snare(b, rng, start + np.array([1.0, 3.0]) * feel.beat, feel, config)
    _ghosts(b, rng, start, feel, np.arange(16) / 4, np.concatenate([kicks, [1.0, 3.0]]))


def _bar_halftime(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
                  config: GrooveConfig) -> None:
    _timekeeper(b, rng, start, feel)
    kicks = _kick(b, rng, start, feel, [0.0], 0.15, 0.25)
    _snare(b, rng, np.array([start + 2.0 * feel.beat]), feel, config)
    _ghosts(b, rng, start, feel, np.arange(16) / 4, np.concatenate([kicks, [2.0]]))


def _bar_shuffle(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
                 config: GrooveConfig) -> None:
    _timekeeper(b, rng, start, feel, triplet=True)
    kicks = _kick(b, rng, start, feel, [0.0, 2.0], 0.15, 1 / 3)
    _snare(b, rng, start + np.array([1.0, 3.0]) * feel.beat, feel, config)
    _ghosts(b, rng, start, feel, (np.arange(4)[:, None] + np.array([1 / 3, 2 / 3])).ravel(),
            kicks)


def _bar_funk(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
              config: GrooveConfig) -> None:
    grid = np.arange(16) / 4
    accent = np.isclose(grid % 0.5, 0.0)
    b.add(feel.timekeeper, start + grid * feel.beat,
          np.where(accent, _vel(rng, 80, 110, 16), _vel(rng, 45, 75, 16)) * feel.intensity)
    kicks = _kick(b, rng, start, feel, [0.0], 0.3, 0.25)
    backbeats = np.array([1.0, 3.0 + 0.25 * float(rng.random() < 0.3)])
    _snare(b, rng, start + backbeats * feel.beat, feel, config)
    busy = _Feel(**{**feel.__dict__, "ghosts": min(0.6, feel.ghosts * 3)})
    _ghosts(b, rng, start, busy, grid, np.concatenate([kicks, backbeats]))


def _bar_linear(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
                config: GrooveConfig) -> None:
    """One limb per 16th: hands and feet never coincide."""
    voice = rng.choice(3, size=16, p=[0.45, 0.2, 0.35])  # 0 hat, 1 kick, 2 ghost
    voice[[0, 4, 12]] = [1, 3, 3]                       # kick on 1, snare on 2 and 4
    grid = np.arange(16) / 4 * feel.beat + start
    b.add(feel.timekeeper, grid[voice == 0], _vel(rng, 60, 105, int(np.sum(voice == 0))))
    b.add("kick", grid[voice == 1], _vel(rng, 85, 120, int(np.sum(voice == 1))))
    b.add("snare", grid[voice == 2], _vel(rng, 15, GHOST_MAX_VELOCITY, int(np.sum(voice == 2))))
    _snare(b, rng, grid[voice == 3], feel, config)


def _bar_blast(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
               config: GrooveConfig) -> None:
    per_beat = 2 if feel.beat < 0.3 else 4
    grid = start + np.arange(4 * per_beat) / per_beat * feel.beat
    cymbal = rng.choice(["ride", "crash", "hihat_closed", "china"], p=[0.35, 0.3, 0.25, 0.1])
    b.add("kick", grid, _vel(rng, 95, 125, grid.size))
    snare = grid if rng.random() < 0.5 else grid[1::2]
    b.add(feel.backbeat_role if feel.backbeat_role != "sidestick" else "snare", snare,
          _vel(rng, 80, 120, snare.size))
    hits = grid if cymbal != "crash" else grid[::per_beat]
    b.add(str(cymbal), hits, _vel(rng, 80, 120, hits.size))


def _bar_swell(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
               config: GrooveConfig) -> None:
    """A mallet roll on a cymbal rising from soft to loud, snare roll or rest under it."""
    cymbal = str(rng.choice(["crash", "ride", "china"], p=[0.6, 0.3, 0.1]))
    n = int(rng.integers(12, 33))
    times = start + np.linspace(0.0, 4.0 * feel.beat, n, endpoint=False)
    b.add(cymbal, times, np.linspace(20, 120, n))
    if rng.random() < 0.5:
        _roll(b, rng, start, 4.0, feel, 25.0, 110.0)
    b.add("kick", start + 4.0 * feel.beat, _vel(rng, 100, 125))


def _roll(b: _Builder, rng: np.random.Generator, start: float, beats: float, feel: _Feel,
          low: float, high: float) -> None:
    """Snare roll (32nds, or a faster buzz) with a crescendo over ``beats`` beats."""
    rate = 8 if feel.beat > 0.3 else 4
    rate = rate * 2 if rng.random() < 0.3 else rate
    n = max(2, int(beats * rate))
    times = start + np.arange(n) / rate * feel.beat
    b.add("snare", times, np.clip(np.linspace(low, high, n) + rng.normal(0, 5, n), 10, 127))


def _fill(b: _Builder, rng: np.random.Generator, start: float, feel: _Feel,
          beats: float) -> None:
    """Tom fill over the last ``beats`` beats: 16ths (or triplets) from high tom to floor."""
    per_beat = 3 if rng.random() < 0.3 else 4
    n = int(beats * per_beat)
    fill_start = start + (4.0 - beats) * feel.beat
    times = fill_start + np.arange(n) / per_beat * feel.beat
    toms = np.floor(np.linspace(0, N_TOMS, n, endpoint=False)).astype(np.int8)
    on_snare = rng.random(n) < 0.25
    velocity = _vel(rng, 80, 120, n) * feel.intensity
    b.add("tom", times[~on_snare], velocity[~on_snare], toms[~on_snare])
    b.add("snare", times[on_snare], velocity[on_snare])
    b.add("kick", times[::per_beat], _vel(rng, 80, 110, times[::per_beat].size))


def _ghosts_on_kicks(b: _Builder, rng: np.random.Generator, probability: float) -> None:
    """A ghost stroke (velocity 12-45) struck with each kick, with ``probability``: the
    passage every network of the shipped bag removed (docs/model.md, forty-first round),
    which the styles play only as a roll's first stroke on a bar's closing kick. None on a
    kick that a snare hit (a rimshot, a side stick) already shares; ``generate_groove``
    drops those that humanising leaves in a tacet bar."""
    times = np.concatenate([part[0][part[1] == ROLE["kick"]] for part in b.parts] or [[]])
    snares = np.concatenate([part[0][np.isin(part[1], TARGET_ROLES)] for part in b.parts]
                            or [[]])
    times = times[rng.random(times.size) < probability]
    times = times[~np.isin(np.round(times, 9), np.round(snares, 9))]
    b.add("snare", times, _vel(rng, 12, GHOST_MAX_VELOCITY, times.size))


def _resting(time: np.ndarray, tacet: list[tuple[float, float]]) -> np.ndarray:
    """Which of the hits at ``time`` (s) fall in a tacet bar."""
    inside = np.zeros(time.size, bool)
    for start, stop in tacet:
        inside |= (time >= start) & (time < stop)
    return inside


_BARS = {"backbeat": _bar_backbeat, "halftime": _bar_halftime, "shuffle": _bar_shuffle,
         "funk": _bar_funk, "linear": _bar_linear, "blast": _bar_blast, "swell": _bar_swell,
         "fills": _bar_backbeat}


def generate_groove(rng: np.random.Generator, start: float, stop: float,
                    config: GrooveConfig = GrooveConfig(), style: str | None = None,
                    bpm: float | None = None) -> Groove:
    """A humanised groove covering [start, stop) seconds (start may be negative: a
    pre-roll whose ringing tails reach into the clip)."""
    names = list(config.style_weights)
    weights = np.array([config.style_weights[name] for name in names], dtype=float)
    style = style or str(rng.choice(names, p=weights / weights.sum()))
    bpm = float(bpm or rng.uniform(*config.bpm_range))
    beat = 60.0 / bpm
    articulation = rng.random()
    backbeat_role = ("rimshot" if articulation < config.rimshot_probability else
                     "sidestick" if articulation < config.rimshot_probability
                     + config.sidestick_probability else "snare")
    feel = _Feel(
        beat=beat, backbeat_role=backbeat_role,
        timekeeper=str(rng.choice(["hihat_closed", "ride", "hihat_open", "crash"],
                                  p=[0.6, 0.28, 0.08, 0.04])),
        subdivision=int(rng.choice([1, 2, 4], p=[0.15, 0.55, 0.3])) if bpm < 150 else
        int(rng.choice([1, 2], p=[0.4, 0.6])),
        intensity=float(rng.uniform(0.8, 1.05)),
        ghosts=config.ghost_probability * float(rng.uniform(0.0, 2.0)))
    bar_seconds = 4 * beat
    offset = float(rng.uniform(0.0, bar_seconds))  # the clip starts anywhere in a bar
    first = int(np.floor((start + offset) / bar_seconds)) - 1
    builder = _Builder()
    tacet: list[tuple[float, float]] = []
    bar_fn = _BARS[style]
    for bar in range(first, int(np.ceil((stop + offset) / bar_seconds)) + 1):
        bar_start = bar * bar_seconds - offset
        if bar_start >= stop:
            break
        phrase_end = bar % 4 == 3 or (style == "fills" and bar % 2 == 1)
        before = len(builder.parts)
        if phrase_end and (style == "fills" or rng.random() < config.fill_probability):
            beats = float(rng.choice([1.0, 2.0, 4.0], p=[0.4, 0.4, 0.2]))
            trimmed = _Builder()
            bar_fn(trimmed, rng, bar_start, feel, config)
            keep_until = bar_start + (4.0 - beats) * beat - 1e-9
            for part in trimmed.parts:
                mask = part[0] < keep_until
                builder.parts.append(tuple(column[mask] for column in part))
            _fill(builder, rng, bar_start, feel, beats)
        else:
            bar_fn(builder, rng, bar_start, feel, config)
            if rng.random() < config.roll_probability:
                _roll(builder, rng, bar_start + 3.0 * beat, 1.0, feel, 30.0, 105.0)
        if bar % 4 == 0 and style not in ("swell",) and rng.random() < 0.6:
            builder.add(str(rng.choice(["crash", "china"], p=[0.85, 0.15])), bar_start,
                        _vel(rng, 95, 125))
        if rng.random() < config.tacet_bar_probability:
            for index in range(before, len(builder.parts)):
                part = builder.parts[index]
                keep = ~np.isin(part[1], TARGET_ROLES)
                builder.parts[index] = tuple(column[keep] for column in part)
            tacet.append((bar_start, bar_start + bar_seconds))
    played = sum(part[0].size for part in builder.parts)  # the hits before the kicks' ghosts
    if config.kick_ghost_probability > 0:  # off, it draws nothing: seeds keep their grooves
        _ghosts_on_kicks(builder, rng, config.kick_ghost_probability)
    events = _humanise(*builder.events(), rng, config)
    # A ghost on the kick that ends a tacet bar, humanised a few ms early, lay inside it.
    added = np.arange(len(events)) >= played
    keep = ~(added & _resting(events.time, tacet))
    events = events.select(keep & (events.time >= start) & (events.time < stop)).sorted()
    return Groove(events, bpm, style, tacet)


def _humanise(events: Events, leaders: np.ndarray, rng: np.random.Generator,
              config: GrooveConfig) -> Events:
    """Timing and velocity jitter; ghost notes stay ghost notes (<= 45), and a flam's grace
    note moves with its main hit (``leaders``, ``_Builder.events``), keeping its 15-35 ms
    gap. Jittered alone, a third of the flams left 15-35 ms and 1 % put the grace note after
    its main hit. Every hit still draws its own jitter, so the draws, and every groove
    without a flam, are as before."""
    sigma = rng.uniform(*config.timing_jitter_ms) / 1000.0
    jitter = rng.normal(0.0, sigma, len(events))
    follows = leaders >= 0
    jitter[follows] = jitter[leaders[follows]]
    time = events.time + jitter
    ghost = events.velocity <= GHOST_MAX_VELOCITY
    velocity = events.velocity + rng.normal(0.0, config.velocity_jitter, len(events))
    velocity = np.where(ghost, np.clip(velocity, 5, GHOST_MAX_VELOCITY), np.clip(velocity, 46, 127))
    return Events(time, events.role, np.round(velocity).astype(np.int16), events.tom)

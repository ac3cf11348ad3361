"""Training pairs from a real session: clean snare takes + bleed-only takes.

A drummer records some takes with only the snare (the clean targets) and some with the
whole kit but the snare silent (what the snare mic picks up from everything else). Any
clean excerpt plus any bleed excerpt, at a random relative level, is a realistic noisy
snare-mic clip whose answer is known. Takes may differ in length, rate and channel count:
everything is converted to mono 48 kHz; bleed takes shorter than a clip are looped.
Onsets for meta.json come from an energy onset detector run on the clean take. All clips
of one clean take share a split, so validation is on takes the model never trained on, and
the bleed is split too (``bleed_split``): validation clips draw theirs from bleed takes, or
a stretch of the one bleed take, that training clips never hear.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePath

import numpy as np
import soundfile as sf
import soxr
from numpy.lib.stride_tricks import sliding_window_view

from denoiser.audio import SAMPLE_RATE_RANGE, open_counted, read_audio, sf_reason

from .bounds import check_number, check_range, check_whole
from .errors import DatasetError
from .kits import AUDIO_SUFFIXES, SILENCE_PEAK, visible_files
from .manifest import (SPLIT_STREAM, SPLIT_VERSION, assign_splits, check_valid_fraction,
                       staged_output, valid_count, write_manifest)
from .synth import (CLIP_SECONDS, SYNTH_LIMITS, Clip, check_clip_seconds, check_seed,
                    write_clip)

SESSION_RATE = 48000
#: The widest bleed gain (dB re as recorded): -60 dB is no bleed, +24 dB bleed drowning
#: the snare; (1e6, 1e6) overflowed to infinite clips.
BLEED_GAIN_LIMITS_DB = (-60.0, 24.0)
#: The longest gap between onsets: a hit a second at the least.
MAX_ONSET_GAP_MS = 1000.0
ANTIPHASE_DB = 40.0  # a mono mix this far below its loudest channel is channels cancelling
#: A take peaking under this is a muted export: 16-bit dither alone reaches -90 dBFS, above
#: the -100 dBFS that marks a silent kit sample (``SILENCE_PEAK``).
TAKE_SILENCE_PEAK = 10 ** (-80 / 20)
BLEED_SPLIT_STREAM = 0xB1EED  # the seeded order of bleed takes, apart from the clean takes'


@dataclass(frozen=True)
class SessionConfig:
    """How session takes become clips."""

    sample_rate: int = SESSION_RATE
    clip_seconds: float = 10.0
    clips_per_take: int | None = None              # None: as many as the take holds
    bleed_gain_db: tuple[float, float] = (-12.0, 6.0)  # bleed vs as recorded
    peak_dbfs: tuple[float, float] = (-12.0, -1.0)
    onset_rise_db: float = 12.0      # energy rise within 10 ms that marks a hit
    onset_floor_db: float = -45.0    # ignore rises quieter than this re the take's peak
    onset_gap_ms: float = 25.0       # at most one onset per gap (flams are 15-35 ms)

    def validate(self) -> "SessionConfig":
        """Return ``self`` or raise naming the first setting no clip can be cut with.
        Unchecked, a 7 Hz rate and a reversed bleed gain failed inside numpy, a gain of
        1e6 dB overflowed, peaks of +20 to +30 dBFS were written as they came, and 0 clips
        per take was reported as takes too short. The rate is one ``read_audio`` takes,
        the clip length within ``CLIP_SECONDS``, the peak within ``SynthConfig``'s limits."""
        what = "session:"
        check_whole(what, "sample_rate", self.sample_rate, *SAMPLE_RATE_RANGE)
        check_clip_seconds(self.clip_seconds)
        if self.clips_per_take is not None:
            check_whole(what, "clips_per_take", self.clips_per_take, 1)
        check_range(what, "bleed_gain_db", self.bleed_gain_db, BLEED_GAIN_LIMITS_DB)
        check_range(what, "peak_dbfs", self.peak_dbfs, SYNTH_LIMITS["peak_dbfs"], "<= 0")
        check_number(what, "onset_rise_db", self.onset_rise_db, 0.0, 60.0, low_open=True)
        check_number(what, "onset_floor_db", self.onset_floor_db, -120.0, 0.0)
        check_number(what, "onset_gap_ms", self.onset_gap_ms, 0.0, MAX_ONSET_GAP_MS)
        return self


@dataclass(frozen=True)
class CleanAudio:
    """How much of the clean takes the clips use. A take is cut into whole clips only, so
    a take shorter than one clip gives none and every take's last partial clip is left
    out: with 10 s clips, 8 s and 6 s takes and the last second of an 11 s take were
    dropped without a word. These numbers let the command say so."""

    takes: int                 # clean takes found
    short_takes: int           # of them, shorter than one clip: no clip from them
    seconds: float             # their total length
    used_seconds: float        # the part the clips hold
    capped_seconds: float      # whole clips left out by ``clips_per_take``
    clip_seconds: float

    @property
    def shorter_clips_help(self) -> bool:
        """Whether shorter clips would use audio the clip length left out: a take shorter
        than a clip, or partial clips together longer than one clip (a cap set by
        ``clips_per_take`` is the user's choice, not the clip length's)."""
        # Audio in no clip, less the cap: short takes and partial clips.
        leftover = self.seconds - self.used_seconds - self.capped_seconds
        return self.short_takes > 0 or leftover > self.clip_seconds


@dataclass
class SessionPlan:
    """The takes found, the clips to cut: (clean take index, start sample), the clean
    and bleed folders the takes were found in (a dataset written inside one would be read
    as takes by the next run), and how much of the clean audio the clips use."""

    clean: list[Path]
    bleed: list[Path]
    jobs: list[tuple[int, int]]
    folders: tuple[Path, Path]
    audio: CleanAudio

    @property
    def clip_takes(self) -> list[int]:
        """The clean takes (indices) that give at least one clip, in order."""
        return sorted({take for take, _ in self.jobs})

    @property
    def split_by_take(self) -> bool:
        """Whether the train/valid split can keep whole takes apart: clips of one take
        share its room, tuning and playing, so a validation clip cut from a training take
        is not held-out audio. It takes two takes with clips; one take is split by clip."""
        return len(self.clip_takes) >= 2


def _audio_files(folder: Path, what: str) -> list[Path]:
    """The audio files under ``folder``, hidden ones left out: macOS leaves a ``._NAME.wav``
    companion beside every file copied to exFAT or SMB, and it holds no audio."""
    files = visible_files(Path(folder), AUDIO_SUFFIXES)
    if not files:
        raise DatasetError(f"{folder}: no audio files for the {what} takes")
    return files


def mono_take(path: str) -> tuple[np.ndarray, int]:
    """A take mixed to mono (channels averaged) at its own rate, and that rate.

    A take that is silent once mixed to mono (a muted export, or stereo channels in
    antiphase that cancel) is refused: as a clean take it makes all-zero targets, as a
    bleed take clips without bleed, and neither teaches the model anything."""
    audio = read_audio(path)
    mono = audio.samples.mean(axis=0)
    _refuse_silent_mono(path, audio.samples, mono)
    return mono, audio.sample_rate


def _refuse_silent_mono(path: str, channels: np.ndarray, mono: np.ndarray) -> None:
    """Refuse a take whose mono mix is silent, or far quieter than its channels.

    An absolute floor (``SILENCE_PEAK``, -100 dBFS) misses channels in antiphase: each
    channel is quantised and dithered on its own, so the mix keeps 1-2 LSB of noise
    (-90 dBFS at 16 bits; 0.5 LSB even undithered) and passed, leaving the clips' bleed
    84-90 dB below the clean. So the mix is also refused when its peak is more than
    ``ANTIPHASE_DB`` below the loudest channel's. At 40 dB the channels mirror each other
    to within 1 % of their peak at every sample, which two microphones never do (1 cm of
    spacing alone leaves a residue about 20 dB down at 1 kHz), and a 16-bit antiphase take
    is caught down to a peak of about -45 dBFS, quieter than any bleed take worth pairing."""
    peak, loudest = float(np.max(np.abs(mono))), float(np.max(np.abs(channels)))
    if loudest > SILENCE_PEAK and not peak > loudest * 10 ** (-ANTIPHASE_DB / 20):
        drop = f"peaks {20 * math.log10(loudest / peak):.0f} dB below" if peak else \
            "is all zeros, unlike"
        raise DatasetError(f"{path}: take is silent after mixing its channels to mono: they "
                           f"are in antiphase and cancel (the mix {drop} the loudest channel); "
                           "flip one channel's polarity or export one channel")
    if not peak > TAKE_SILENCE_PEAK:
        raise DatasetError(f"{path}: take is silent after mixing its channels to mono (it "
                           "peaks under -80 dBFS: a muted export?)")


@lru_cache(maxsize=8)
def load_take(path: str, sample_rate: int = SESSION_RATE) -> np.ndarray:
    """A take as mono float32 at ``sample_rate`` (``mono_take``, then soxr resampling)."""
    mono, rate = mono_take(path)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def plan_session(clean_dir: str | Path, bleed_dir: str | Path,
                 config: SessionConfig = SessionConfig()) -> SessionPlan:
    """List the takes and cut the clean ones into clip-long excerpts (reads headers only)."""
    config.validate()
    _refuse_overlap(Path(clean_dir), Path(bleed_dir))
    clean, bleed = _audio_files(Path(clean_dir), "clean"), _audio_files(Path(bleed_dir), "bleed")
    clip = int(round(config.clip_seconds * config.sample_rate))
    jobs = []
    lengths = []
    capped = 0
    for index, path in enumerate(clean):
        try:
            with open_counted(path) as handle:  # as load_take reads it: a Wave64 as counted
                frames = int(handle.frames * config.sample_rate / handle.samplerate)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DatasetError(f"{path}: not a readable audio file ({sf_reason(exc)})") from None
        lengths.append(frames)
        count = frames // clip
        if config.clips_per_take is not None:
            capped += max(0, count - config.clips_per_take)
            count = min(count, config.clips_per_take)
        jobs.extend((index, k * clip) for k in range(count))
    if not jobs:
        raise _no_clip_error(Path(clean_dir), clean, lengths, config)
    rate = config.sample_rate
    audio = CleanAudio(takes=len(clean), short_takes=sum(n < clip for n in lengths),
                       seconds=sum(lengths) / rate, used_seconds=len(jobs) * clip / rate,
                       capped_seconds=capped * clip / rate, clip_seconds=config.clip_seconds)
    return SessionPlan(clean, bleed, jobs, (Path(clean_dir), Path(bleed_dir)), audio)


def _no_clip_error(folder: Path, clean: list[Path], lengths: list[int],
                   config: SessionConfig) -> DatasetError:
    """Why no clean take gives a clip, and what to do. A shorter ``--clip-seconds`` helps
    only down to the shortest clip (``CLIP_SECONDS``): with every take empty or shorter
    than that, the hint was "--clip-seconds of at most 0", which no value satisfies, so
    the empty folder or the longest take is named instead."""
    index = int(np.argmax(lengths))
    longest = math.floor(lengths[index] / config.sample_rate * 10) / 10
    shortest_clip = CLIP_SECONDS[0]
    if not lengths[index]:
        return DatasetError(f"{folder}: every clean take is empty (zero samples)")
    if longest < shortest_clip:
        return DatasetError(f"{clean[index]}: the longest clean take is only "
                            f"{lengths[index] / config.sample_rate:.3g} s, shorter than the "
                            f"shortest clip ({shortest_clip:g} s)")
    return DatasetError(f"{folder}: no clean take is as long as one {config.clip_seconds:g} s "
                        f"clip (the longest is {longest:g} s); give a --clip-seconds of at "
                        f"most {longest:g}")


def _refuse_overlap(clean_dir: Path, bleed_dir: Path) -> None:
    """Refuse clean and bleed folders that are one folder, or one inside the other: takes
    are read from every sub-folder, so a bleed take would become a clean target (or a
    snare take its own bleed), and the pairs would train the model on wrong answers."""
    clean, bleed = clean_dir.resolve(), bleed_dir.resolve()
    if clean.is_relative_to(bleed) or bleed.is_relative_to(clean):
        raise DatasetError(f"{clean_dir} and {bleed_dir}: the clean and bleed takes must be "
                           "in separate folders, neither inside the other")


def detect_onsets(samples: np.ndarray, sample_rate: int, rise_db: float = 12.0,
                  floor_db: float = -45.0, gap_ms: float = 25.0) -> np.ndarray:
    """Hit onsets (sample indices) from the energy envelope, vectorised over samples.

    1 ms RMS frames in dB; a frame is an onset candidate when it stands ``rise_db`` above
    the quietest of the previous 10 ms and above ``floor_db`` re the loudest frame; the first
    candidate of each run is kept if it lies at least ``gap_ms`` after the last onset kept.
    The floor is relative to ``samples``, so give it a whole take (``take_onsets``): an
    excerpt without hits has its floor at the noise, where hum passes for hits.

    The frames are measured about the take's mean: a DC offset (a preamp or converter's,
    -40 dBFS is common) lifts every quiet frame to its level, and a ghost note that stood
    12 dB above the noise no longer stands 12 dB above the offset (half of a take's ghost
    notes went missing). Only detection sees the centred take; the clips keep their DC.
    """
    hop = max(1, int(0.001 * sample_rate))
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    mean = float(np.mean(frames, dtype=np.float64)) if frames.size else 0.0
    level = 10 * np.log10(np.mean((frames.astype(np.float64) - mean) ** 2, axis=1) + 1e-20)
    if level.size < 12:
        return np.zeros(0, dtype=np.int64)
    history = sliding_window_view(np.concatenate([np.full(10, level[0]), level]), 10)[:-1]
    rise = level - history.min(axis=1)
    candidate = (rise > rise_db) & (level > level.max() + floor_db)
    starts = np.flatnonzero(candidate & ~np.concatenate([[False], candidate[:-1]]))
    return _spaced(starts, max(1, int(gap_ms))) * hop


@lru_cache(maxsize=8)
def take_onsets(path: str, sample_rate: int, rise_db: float, floor_db: float,
                gap_ms: float) -> np.ndarray:
    """The hits of a whole clean take (``detect_onsets`` run once on the take, cached).

    Run on each clip instead, the floor followed the clip's own loudest frame: in a clip
    where the snare rests it fell to the take's hum, and 50 Hz mains hum at -60 dBFS rose
    12 dB from each zero crossing, 334 fake hits in 10 s. Re the take's loudest hit, a
    rest holds none. The array is shared by every clip of the take: read it, never write."""
    return detect_onsets(load_take(path, sample_rate), sample_rate, rise_db, floor_db, gap_ms)


def clip_onsets(path: str, start: int, length: int, config: SessionConfig) -> np.ndarray:
    """The take's hits (``take_onsets``) inside the clip ``[start, start + length)``, as
    sample indices into the clip."""
    hits = take_onsets(path, config.sample_rate, config.onset_rise_db, config.onset_floor_db,
                       config.onset_gap_ms)
    return hits[(hits >= start) & (hits < start + length)] - start


def _spaced(starts: np.ndarray, gap: int) -> np.ndarray:
    """The candidates (sorted frame indices) that lie at least ``gap`` after the last one
    kept. Measuring from the previous *candidate* instead would drop a whole fast roll
    after its first hit (each hit is within ``gap`` of the one before, so each is dropped);
    measured from the last kept onset, a roll keeps a hit every ``gap`` or so. Candidates
    are one per peak, so this loop is short."""
    kept: list[int] = []
    for start in starts.tolist():
        if not kept or start - kept[-1] >= gap:
            kept.append(start)
    return np.asarray(kept, dtype=np.int64)


def _velocity(clean: np.ndarray, onsets: np.ndarray, sample_rate: int,
              reference: float) -> np.ndarray:
    """Velocity 1-127 from each hit's peak re the take's loudest hit (inverse of the
    synthesiser's (v/127)**1.7 level law)."""
    width = int(0.02 * sample_rate)
    peaks = np.array([np.max(np.abs(clean[o:o + width])) for o in onsets]) if onsets.size else \
        np.zeros(0)
    return np.clip(np.round(127 * (peaks / max(reference, 1e-9)) ** (1 / 1.7)), 1, 127)


def take_name(path: PurePath, folder: PurePath) -> str:
    """A take's name in the manifest and meta: its path relative to its take folder, with
    ``/`` separators. Takes are found in sub-folders too, and a basename gave
    ``day1/snare.wav`` and ``day2/snare.wav`` one name (training counted them as one
    take); the separators keep a manifest the same on Windows."""
    return path.relative_to(folder).as_posix()


@dataclass(frozen=True)
class BleedPart:
    """Bleed audio that clips of one split draw from: bleed take ``take`` (an index into
    ``SessionPlan.bleed``) from sample ``start`` to ``stop`` (None: to its end)."""

    take: int
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True)
class BleedSplit:
    """The bleed each split's clips draw from, and how the splits were kept apart: "take"
    (whole bleed takes per split), "time" (disjoint stretches of the one bleed take) or
    "none" (no validation clips, or one bleed take too short for a clip per split)."""

    parts: dict[str, tuple[BleedPart, ...]]
    by: str


def make_session_clip(plan: SessionPlan, job: int, seed: int, config: SessionConfig,
                      bleed_parts: Sequence[BleedPart] | None = None) -> Clip:
    """Clip ``job`` of the plan, seeded: clean excerpt + random bleed excerpt and level.
    The bleed comes from one of ``bleed_parts`` (its split's share of the bleed, from
    ``bleed_split``), by default from any whole bleed take."""
    rng = np.random.default_rng([seed, job])
    take_index, start = plan.jobs[job]
    n = int(round(config.clip_seconds * config.sample_rate))
    take = load_take(str(plan.clean[take_index]), config.sample_rate)
    clean = take[start:start + n]
    parts = bleed_parts or [BleedPart(take) for take in range(len(plan.bleed))]
    part = parts[int(rng.integers(len(parts)))]
    bleed_path = plan.bleed[part.take]
    bleed_take = load_take(str(bleed_path), config.sample_rate)[part.start:part.stop]
    offset = int(rng.integers(0, max(1, bleed_take.size - n + 1)))
    bleed = np.resize(np.roll(bleed_take, -offset), n)  # loops takes shorter than a clip
    gain_db = float(rng.uniform(*config.bleed_gain_db))
    bleed = (bleed * np.float32(10 ** (gain_db / 20))).astype(np.float32)
    peak = max(float(np.max(np.abs(clean + bleed))), float(np.max(np.abs(clean))),
               float(np.max(np.abs(bleed))), 1e-9)
    scale = np.float32(10 ** (rng.uniform(*config.peak_dbfs) / 20) / peak)
    clean, bleed = (clean * scale).astype(np.float32), (bleed * scale).astype(np.float32)
    onsets = clip_onsets(str(plan.clean[take_index]), start, n, config)
    reference = float(np.max(np.abs(take))) * float(scale)
    velocity = _velocity(clean, onsets, config.sample_rate, reference)
    meta = {
        "sample_rate": config.sample_rate, "seed": int(seed), "kit": "session",
        "clean_take": take_name(plan.clean[take_index], plan.folders[0]),
        "clean_start": round(start / config.sample_rate, 4),
        "bleed_take": take_name(bleed_path, plan.folders[1]),
        "bleed_start": round((part.start + offset) / config.sample_rate, 4),
        "bleed_gain_db": round(gain_db, 2),
        "onsets": [{"time": round(int(o) / config.sample_rate, 6), "sample": int(o),
                    "instrument": "snare", "velocity": int(v), "target": True}
                   for o, v in zip(onsets, velocity)],
    }
    return Clip(clean + bleed, clean, bleed, meta)


def build_session_dataset(plan: SessionPlan, out: str | Path, seed: int,
                          config: SessionConfig = SessionConfig(), valid_fraction: float = 0.2,
                          progress: Callable[[float, str], None] | None = None) -> Path:
    """Write every planned clip and the manifest (same clip format as synthetic data).

    Every take is read (and checked) before anything is written, so a silent or broken
    take late in the list costs a one-line error, not a long build thrown away."""
    check_seed(seed, "session:")
    config.validate()
    out = Path(out)
    target = out.resolve()
    for folder in plan.folders:
        source = folder.resolve()
        if target in source.parents:
            raise DatasetError(f"{out}: the output folder may not contain the input takes")
        if source == target or source in target.parents:
            raise DatasetError(f"{out}: the output folder may not lie in the input folder "
                               f"{folder}: the next run would read its clips as takes")
    for take in plan.clean + plan.bleed:  # (no resampling: load_take does that per clip)
        mono_take(str(take))
    splits = session_splits(plan, seed, valid_fraction)
    bleed = bleed_split(plan, splits, seed, config)
    width = max(5, len(str(len(plan.jobs) - 1)))
    rows = []
    with staged_output(out) as staging:
        for job, clip_split in enumerate(splits):
            clip = make_session_clip(plan, job, seed, config, bleed.parts[clip_split])
            clip_id = f"session-{job:0{width}d}"
            write_clip(clip, staging / clip_id)
            rows.append({"id": clip_id, "split": clip_split,
                         "clean_take": clip.meta["clean_take"],
                         "bleed_take": clip.meta["bleed_take"],
                         "snare_hits": len(clip.meta["onsets"])})
            if progress:
                progress(job + 1, clip_id)
        audio = plan.audio
        header = {"version": 1, "source": "session", "sample_rate": config.sample_rate,
                  "clip_seconds": config.clip_seconds, "seed": seed,
                  "split_version": SPLIT_VERSION,
                  "split_by": "take" if plan.split_by_take else "clip",
                  "clean_audio": {"takes": audio.takes, "short_takes": audio.short_takes,
                                  "seconds": round(audio.seconds, 3),
                                  "used_seconds": round(audio.used_seconds, 3)},
                  "bleed_takes": len(plan.bleed), "bleed_split_by": bleed.by,
                  "config": json.loads(json.dumps(config.__dict__))}
        write_manifest(staging, header, rows)
    return out


def take_draw(seed: int, name: str) -> float:
    """A clean take's seeded draw in [0, 1), from the seed and the take's name alone
    (``take_name``): which takes a session holds, and in what order, do not change it."""
    digest = hashlib.sha256(f"{SPLIT_STREAM}:{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def session_splits(plan: SessionPlan, seed: int, valid_fraction: float) -> list[str]:
    """Each planned clip's split. With two or more takes giving clips, whole takes are
    assigned: a validation clip from a training take shares its snare, tuning and room
    with the training audio, so the validation loss would flatter the model and pick
    ``best.pt`` on seen audio. With one take only, its clips are split one by one
    (``plan.split_by_take`` says which; ``assign_splits``).

    A take validates when its draw (``take_draw``) is below ``valid_fraction`` and its
    clips keep validation within ``valid_fraction`` of all clips, takes of lower draws
    first: chosen by their share of the clips, not by a count of takes (two takes made one
    of them, perhaps the one holding most clips, validation whatever the fraction). If none
    fits, the smallest take is the one (a fraction above 0 keeps a validation take); a
    fraction below 1 keeps a training take. Why draws of the names, not a seeded
    permutation of the takes (split version 1): a session given more takes with the same
    seed re-drew every take's split, and a model trained on the smaller set validated on
    takes it had trained on. A take now keeps its split unless these bounds decide.
    """
    if not plan.split_by_take:
        return assign_splits(len(plan.jobs), seed, valid_fraction)
    check_valid_fraction(valid_fraction)
    draws = {take: take_draw(seed, take_name(plan.clean[take], plan.folders[0]))
             for take in plan.clip_takes}
    order = sorted(draws, key=draws.__getitem__)
    clips = Counter(take for take, _ in plan.jobs)
    budget = valid_fraction * len(plan.jobs) + 1e-9  # (0.29 * 100 is 28.999...)
    valid: set[int] = set()
    for take in order:
        fits = draws[take] < valid_fraction and (
            sum(clips[t] for t in valid) + clips[take] <= budget)
        if fits and len(valid) < len(order) - 1:
            valid.add(take)
    if not valid and valid_fraction > 0:
        valid.add(min(order, key=lambda take: clips[take]))  # the first smallest by draw
    return ["valid" if take in valid else "train" for take, _ in plan.jobs]


def bleed_split(plan: SessionPlan, splits: Sequence[str], seed: int,
                config: SessionConfig) -> BleedSplit:
    """The bleed each split draws from (``splits``: each clip's, from ``session_splits``).

    Drawn from every bleed take, a validation clip held the very bleed audio of training
    clips (sample for sample when the take is shorter than a clip), so the validation loss
    measured removing bleed the model had learnt. With two or more bleed takes, whole takes
    are assigned, seeded, each split at least one, validation about its share of the clips.
    One bleed take is cut in two, validation its last stretch (that share of it, at least a
    clip), when it holds a clip for each split; else both splits draw from all of it, and
    a warning says validation is on training bleed.
    """
    whole = tuple(BleedPart(take) for take in range(len(plan.bleed)))
    if "valid" not in splits:
        return BleedSplit({"train": whole}, "none")
    share = splits.count("valid") / len(splits)
    if len(plan.bleed) >= 2:
        order = np.random.default_rng([seed, BLEED_SPLIT_STREAM]).permutation(len(plan.bleed))
        valid = set(order[:valid_count(len(plan.bleed), share)].tolist())
        return BleedSplit({"train": tuple(part for part in whole if part.take not in valid),
                           "valid": tuple(part for part in whole if part.take in valid)},
                          "take")
    clip = int(round(config.clip_seconds * config.sample_rate))
    length = load_take(str(plan.bleed[0]), config.sample_rate).size
    if length < 2 * clip:
        warnings.warn(f"{plan.bleed[0]}: the one bleed take is shorter than two "
                      f"{config.clip_seconds:g} s clips, so validation clips draw their bleed "
                      "from the audio training clips hear; give a longer bleed take, or more "
                      "of them, to validate on bleed training never hears", stacklevel=2)
        return BleedSplit({"train": whole, "valid": whole}, "none")
    cut = length - min(max(clip, round(share * length)), length - clip)
    return BleedSplit({"train": (BleedPart(0, 0, cut),), "valid": (BleedPart(0, cut),)},
                      "time")

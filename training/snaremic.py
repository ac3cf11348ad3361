"""What the snare close mic hears of each kit piece (SPEC section 4).

Every non-snare piece reaches the snare mic through its own path: a level relative to a
full snare hit, a delay from its distance (fractional, 0.3-3 ms), and off-axis colouring
(random shelves and a low-pass: cymbals far off the mic's axis lose top and gain nothing).
All pieces, the snare included, share one short room; bleed sources sit farther away and
get relatively more of it. The snare's own room stays in the training target: the model
must remove the other drums, not the snare's decay.

All functions are vectorised filters over whole tracks (scipy.signal sosfilt, oaconvolve),
never per-sample Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import soxr
from scipy import signal

from .bounds import check_fields, check_keys, check_range

#: The gain families of ``MicConfig.gain_db``, one per kind of bleed source (``family``).
FAMILIES = ("hihat", "cymbal", "kick", "tom", "other")

#: The widest values a snare-mic setting may take (probabilities are [0, 1]); a frequency,
#: delay, decay or Q stays above 0. Unchecked, a room decay of 0 failed in a reshape and
#: one of 1e7 ms asked for 25 GiB, a low-pass above 24 kHz failed in scipy, a delay of 1e7
#: ms moved all bleed out of the clip (a silent one); all are far past any studio's.
MIC_LIMITS: dict[str, tuple[float, float]] = {
    "gain_db": (-120.0, 12.0), "delay_ms": (0.05, 50.0), "low_shelf_db": (-40.0, 40.0),
    "high_shelf_db": (-40.0, 40.0), "lowpass_hz": (20.0, 20000.0),
    "room_decay_ms": (1.0, 500.0), "room_level_db": (-120.0, 12.0),
    "bleed_room_extra_db": (-40.0, 40.0), "room_tone_db": (-160.0, 0.0),
    "mic_eq_db": (-40.0, 40.0), "snare_eq_db": (-40.0, 40.0),
    "snare_eq_hz": (20.0, 20000.0), "snare_eq_q": (0.1, 20.0),
    "dry_snare_hz": (20.0, 20000.0), "sidestick_gain_db": (-40.0, 20.0),
    "rimshot_gain_db": (-40.0, 20.0)}


@dataclass(frozen=True)
class MicConfig:
    """Ranges of the snare-mic model; each clip draws its values uniformly from them."""

    gain_db: dict[str, tuple[float, float]] = field(default_factory=lambda: {
        "hihat": (-18.0, -6.0), "cymbal": (-26.0, -12.0), "kick": (-30.0, -15.0),
        "tom": (-24.0, -8.0), "other": (-30.0, -15.0)})
    delay_ms: tuple[float, float] = (0.3, 3.0)
    low_shelf_db: tuple[float, float] = (-8.0, 2.0)
    high_shelf_db: tuple[float, float] = (-10.0, 2.0)
    lowpass_probability: float = 0.5
    lowpass_hz: tuple[float, float] = (5000.0, 16000.0)
    room_decay_ms: tuple[float, float] = (10.0, 40.0)    # time constant of the IR envelope
    room_level_db: tuple[float, float] = (-26.0, -10.0)  # room vs direct, snare
    bleed_room_extra_db: tuple[float, float] = (0.0, 8.0)
    room_tone_db: tuple[float, float] = (-80.0, -58.0)   # vs a full snare hit's peak
    mic_eq_db: tuple[float, float] = (-4.0, 4.0)         # whole-mic shelves
    polarity_flip_probability: float = 0.5
    snare_eq_probability: float = 0.6                    # snare_colouring; 0: the kit's own tone
    snare_eq_db: tuple[float, float] = (-8.0, 8.0)
    snare_eq_hz: tuple[float, float] = (120.0, 8000.0)   # drawn log-uniformly
    snare_eq_q: tuple[float, float] = (0.7, 2.5)
    dry_snare_probability: float = 0.15                  # snare_colouring adds a low-pass
    dry_snare_hz: tuple[float, float] = (1500.0, 5000.0)  # drawn log-uniformly
    sidestick_gain_db: float = -6.0
    rimshot_gain_db: float = 3.0

    def validate(self, what: str = "synth:", prefix: str = "mic.") -> "MicConfig":
        """Return ``self`` or raise naming the first setting (``mic.delay_ms``) no clip can
        be rendered with: numbers and ranges within ``MIC_LIMITS``, a gain range for every
        family in ``FAMILIES`` (each bleed source looks its family up)."""
        check_fields(what, self, MIC_LIMITS, prefix)
        name = prefix + "gain_db"
        check_keys(what, name, self.gain_db, FAMILIES, every=True)
        for kind, gains in self.gain_db.items():
            check_range(what, f"{name}[{kind!r}]", gains, MIC_LIMITS["gain_db"])
        return self


DENORMAL_GUARD = np.float32(1e-30)


def sosfilt(sos: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfilt`` for sparse drum tracks, float32 out.

    An IIR filter ringing out in silence drives its state into subnormal floats, which
    makes the CPU about 25x slower; a 1e-30 offset keeps the state normal, and anything
    that small is set back to exact zero afterwards (silence stays digital silence).
    """
    out = signal.sosfilt(sos, samples + DENORMAL_GUARD).astype(np.float32)
    out[np.abs(out) < 1e-20] = 0.0
    return out


def family(category: str) -> str:
    """The gain family of a kit category (the ranges in ``MicConfig.gain_db``)."""
    if category.startswith("hihat"):
        return "hihat"
    if category in ("ride", "crash", "china"):
        return "cymbal"
    return category if category in ("kick", "tom") else "other"


def shelf_sos(kind: str, freq: float, gain_db: float, sample_rate: int,
              slope: float = 1.0) -> np.ndarray:
    """One biquad shelf (Audio EQ Cookbook, R. Bristow-Johnson) as a scipy sos row.

    scipy.signal has no shelf designer; the cookbook formulas are the standard one.
    """
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / sample_rate
    alpha = np.sin(w0) / 2 * np.sqrt((a + 1 / a) * (1 / slope - 1) + 2)
    cos, root = np.cos(w0), 2 * np.sqrt(a) * alpha
    sign = 1.0 if kind == "high" else -1.0
    b0 = a * ((a + 1) + sign * (a - 1) * cos + root)
    b1 = -2 * sign * a * ((a - 1) + sign * (a + 1) * cos)
    b2 = a * ((a + 1) + sign * (a - 1) * cos - root)
    a0 = (a + 1) - sign * (a - 1) * cos + root
    a1 = 2 * sign * ((a - 1) - sign * (a + 1) * cos)
    a2 = (a + 1) - sign * (a - 1) * cos - root
    return np.array([[b0 / a0, b1 / a0, b2 / a0, 1.0, a1 / a0, a2 / a0]])


def peak_sos(freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One biquad peaking EQ (Audio EQ Cookbook) as a scipy sos row; scipy has none."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / sample_rate
    alpha, cos = np.sin(w0) / (2 * q), np.cos(w0)
    b = np.array([1 + alpha * a, -2 * cos, 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * cos, 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def snare_colouring(rng: np.random.Generator, sample_rate: int, config: MicConfig) -> np.ndarray:
    """A random bell on the snare alone, sometimes with a low-pass: drum tuning, heads,
    dampening and mic position change a snare's tone far more than the few snares of the
    training kits cover. The low-pass stands for a dry, dark snare (wires damped or off,
    heavy muffling) -- the kind a model trained on bright snares takes for a tom."""
    freq = float(np.exp(rng.uniform(*np.log(config.snare_eq_hz))))
    sections = [peak_sos(freq, rng.uniform(*config.snare_eq_db),
                         rng.uniform(*config.snare_eq_q), sample_rate)]
    if config.dry_snare_probability > 0 and rng.random() < config.dry_snare_probability:
        cutoff = float(np.exp(rng.uniform(*np.log(config.dry_snare_hz))))
        sections.append(signal.butter(2, cutoff, fs=sample_rate, output="sos"))
    return np.vstack(sections)


def random_colouring(rng: np.random.Generator, sample_rate: int, config: MicConfig) -> np.ndarray:
    """Off-axis colouring of one bleed path: low shelf, high shelf, maybe a low-pass."""
    sections = [
        shelf_sos("low", rng.uniform(80, 400), rng.uniform(*config.low_shelf_db), sample_rate),
        shelf_sos("high", rng.uniform(2000, 8000), rng.uniform(*config.high_shelf_db),
                  sample_rate),
    ]
    if rng.random() < config.lowpass_probability:
        sections.append(signal.butter(2, rng.uniform(*config.lowpass_hz), fs=sample_rate,
                                      output="sos"))
    return np.vstack(sections)


def mic_eq(rng: np.random.Generator, sample_rate: int, config: MicConfig) -> np.ndarray:
    """Gentle whole-mic EQ (mic model, placement, preamp): applied to clean and bleed alike."""
    return np.vstack([
        shelf_sos("low", rng.uniform(100, 300), rng.uniform(*config.mic_eq_db), sample_rate),
        shelf_sos("high", rng.uniform(3000, 9000), rng.uniform(*config.mic_eq_db), sample_rate),
    ])


def thiran_allpass(fraction: float) -> np.ndarray:
    """First-order Thiran all-pass delaying by ``fraction`` samples (0.5 to 1.5, its
    well-behaved range) with flat magnitude, as one sos row."""
    a = (1.0 - fraction) / (1.0 + fraction)
    return np.array([[a, 1.0, 0.0, 1.0, a, 0.0]])


def bleed_path(track: np.ndarray, colouring: np.ndarray, gain_db: float,
               delay: float) -> np.ndarray:
    """A piece's dry track as the snare mic hears it: colouring, level, and a delay of
    ``delay`` samples (>= 0.5; integer shift plus a Thiran fraction folded into the same
    IIR pass, so each piece costs one filter run)."""
    whole = int(np.floor(delay - 0.5))
    sections = np.vstack([colouring, thiran_allpass(delay - whole)])
    filtered = sosfilt(sections, track) * np.float32(10 ** (gain_db / 20))
    out = np.zeros_like(filtered)
    if whole < track.size:
        out[whole:] = filtered[: track.size - whole]
    return out


def room_ir(rng: np.random.Generator, sample_rate: int, config: MicConfig) -> np.ndarray:
    """A short room: low-passed noise under an exponential decay, unit energy, after a
    few ms of pre-delay (the first reflection), so the direct sound stays separate."""
    tau = rng.uniform(*config.room_decay_ms) / 1000.0
    length = int(7 * tau * sample_rate)
    t = np.arange(length) / sample_rate
    noise = rng.standard_normal(length) * np.exp(-t / tau)
    noise = signal.sosfilt(signal.butter(2, rng.uniform(3000, 10000), fs=sample_rate,
                                         output="sos"), noise)
    predelay = int(rng.uniform(0.5, 4.0) / 1000.0 * sample_rate)
    ir = np.concatenate([np.zeros(predelay), noise])
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def add_room(direct: np.ndarray, ir: np.ndarray, level_db: float) -> np.ndarray:
    """Direct sound plus its room at ``level_db`` (energy of the room path vs direct)."""
    wet = signal.oaconvolve(direct, ir)[: direct.size]
    return (direct + np.float32(10 ** (level_db / 20)) * wet).astype(np.float32)


def room_tone(rng: np.random.Generator, n: int, sample_rate: int, level_db: float) -> np.ndarray:
    """Low-level, slightly dark background noise at ``level_db`` RMS."""
    noise = sosfilt(signal.butter(1, rng.uniform(1500, 6000), fs=sample_rate,
                                         output="sos"), rng.standard_normal(n))
    noise *= 10 ** (level_db / 20) / (np.sqrt(np.mean(noise**2)) + 1e-12)
    return noise.astype(np.float32)


def pitch_shift(samples: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Re-pitch by resampling (a tighter or slacker drum): the sample is read as if it had
    rate ``rate * 2**(semitones/12)``, so its duration scales by ``2**(-semitones/12)`` and
    its decay with it."""
    if semitones == 0:
        return samples
    shifted = soxr.resample(samples, sample_rate * 2 ** (semitones / 12), sample_rate,
                            quality="HQ")
    return np.ascontiguousarray(shifted, dtype=np.float32)

"""Procedural drums: a new snare, and new toms beside it, for every clip that asks for them.

Why: the six kits SPEC 4 allows for training hold a handful of snares, all tuned 180-250 Hz.
Fine-tuning on them teaches the network that a snare is one of those, and it starts to
remove a user's snare unlike them (a tight 364-Hz snare was lost in three fine-tunes, see
docs/model.md). Domain randomisation answers that: with some probability the clip's snare
is a physically plausible drum drawn at random, so "snare" stays a family of sounds (a
tuned membrane with a stick click and a wire buzz) rather than a few recordings. Its toms
are drawn too, over overlapping tunings and without wires, so that pitch alone never
separates the two.

The model: an ideal circular membrane's first modes (Bessel-zero frequency ratios), each
with its own decay (higher modes die faster) and a small random detuning, a pitch glide
on the attack that grows with velocity (tension modulation), a stick click, and the snare
wires as band-passed noise whose buzz starts a few milliseconds after the hit and dies with
the body. Harder hits are brighter. Everything is vectorised over modes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from .kits import KIT_RATE, Instrument, Layer

# Frequency ratios of the circular membrane's modes (01, 11, 21, 02, 31, 12, 41, 22, 03):
# zeros of the Bessel functions divided by the first.
MEMBRANE_RATIOS = np.array([1.0, 1.594, 2.136, 2.296, 2.653, 2.918, 3.156, 3.501, 3.600])


@dataclass(frozen=True)
class ModalDrumRanges:
    """The family of drums drawn from (uniform ranges; frequencies log-uniform). The
    defaults are snares; ``TOM_RANGES`` the toms drawn beside them."""

    fundamental_hz: tuple[float, float] = (140.0, 480.0)
    body_decay_s: tuple[float, float] = (0.04, 0.35)
    # wire decay as a share of the body's: the wires buzz only while the bottom head moves.
    # Drawn on their own (up to 0.3 s over a 0.04-s body), they outlast the drum as a burst
    # of noise, which is what a hi-hat is, and the model learned to pass hats between hits
    # (docs/model.md, seventh round).
    wire_decay_ratio: tuple[float, float] = (0.5, 1.0)
    # wires against the body, at every velocity (they follow the bottom head). Measured on
    # the training kits' snares, 3-10 kHz against 100-500 Hz in the first 150 ms sits at
    # -33 to -3 dB on a full hit (rumpf_kit's one-shots up to +19) and stays within a few
    # dB on soft ones; this range draws -28 to +1 dB. Brighter wires that faded on soft hits (the seventh
    # round's) taught a model that a dark snare and ghost notes are toms (eighth round).
    wire_level_db: tuple[float, float] | None = (-26.0, -2.0)   # None: no wires (a tom)
    wire_band_hz: tuple[tuple[float, float], tuple[float, float]] = ((800.0, 3000.0),
                                                                      (7000.0, 16000.0))
    detune: float = 0.03                                 # per mode, relative, uniform +-
    glide: tuple[float, float] = (0.0, 0.08)             # attack pitch rise at full velocity
    click_level_db: tuple[float, float] = (-20.0, -4.0)
    click_decay_s: tuple[float, float] = (0.001, 0.003)  # the stick's contact with the head
    length_s: float = 0.8
    layers: int = 4                                      # velocity layers per drawn drum


# Toms over the same and a lower range of tunings, ringing longer and without wires: drawn
# with the procedural snare, so pitch alone cannot tell the two apart and the network has to
# learn the wires and the decay, which is what separates a user's snare from their toms.
# Their stick attack is loud and long enough that the same band ratio lands at -36 to -16 dB
# on a full hit (the kits' toms: -39 to -14 dB), so brightness alone does not tell them apart.
TOM_RANGES = ModalDrumRanges(fundamental_hz=(70.0, 400.0), body_decay_s=(0.15, 0.8),
                             wire_level_db=None, glide=(0.0, 0.12), length_s=1.5,
                             click_level_db=(0.0, 12.0), click_decay_s=(0.002, 0.008))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _unit_peak(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to peak 1 (silence stays silence), so each part's level is set apart."""
    return x / max(float(np.max(np.abs(x))), 1e-9)


def modal_drum_hit(params: dict, velocity: float, rng: np.random.Generator,
                   rate: int = KIT_RATE) -> np.ndarray:
    """One mono hit of the drum described by ``params`` (from ``draw_drum_params``) at
    ``velocity`` in (0, 1]; peak normalised to 1 (the renderer sets the level)."""
    n = int(params["length_s"] * rate)
    t = np.arange(n) / rate
    freqs = params["fundamental_hz"] * params["ratios"]
    glide = 1.0 + params["glide"] * velocity * np.exp(-t / 0.02)
    phase = 2 * np.pi * np.cumsum(glide) / rate                       # (n,)
    modes = np.sin(freqs[:, None] * phase[None, :] + params["mode_phase"][:, None])
    decays = params["body_decay_s"] / params["ratios"] ** params["decay_tilt"]
    envelopes = np.exp(-t[None, :] / decays[:, None])
    # harder hits excite the higher modes more
    amplitudes = params["mode_gain"] * params["ratios"] ** (-1.5 + 1.0 * velocity)
    body = (amplitudes[:, None] * modes * envelopes).sum(axis=0)
    body = _unit_peak(body)

    low, high = params["wire_band_hz"]
    high = min(high * (0.6 + 0.4 * velocity), rate / 2.2)
    wires = signal.sosfilt(signal.butter(2, [low, max(high, 1.5 * low)], "bandpass", fs=rate,
                                         output="sos"), rng.standard_normal(n))
    buzz_onset = 1.0 - np.exp(-t / params["buzz_rise_s"])
    wire_decay = params["body_decay_s"] * params["wire_decay_ratio"]
    wires = _unit_peak(wires * buzz_onset * np.exp(-t / wire_decay))
    wire_gain = 0.0 if params["wire_level_db"] is None else 10 ** (params["wire_level_db"] / 20)

    click = rng.standard_normal(n) * np.exp(-t / params["click_decay_s"])
    click = _unit_peak(signal.sosfilt(signal.butter(1, 1500 + 9000 * velocity, fs=rate,
                                                    output="sos"), click))
    click_gain = 10 ** (params["click_level_db"] / 20) * velocity

    hit = body + wire_gain * wires + click_gain * click
    fade = np.minimum(1.0, (n - np.arange(n)) / (0.01 * rate))
    hit *= fade
    return _unit_peak(hit).astype(np.float32)


def draw_drum_params(rng: np.random.Generator, ranges: ModalDrumRanges = ModalDrumRanges()
                     ) -> dict:
    """One random drum: tuning, decays, wire level and band, click, per-mode details."""
    count = MEMBRANE_RATIOS.size
    (low_lo, low_hi), (high_lo, high_hi) = ranges.wire_band_hz
    mode_gain = rng.uniform(0.2, 1.0, count) * (rng.random(count) < 0.8)
    mode_gain[0] = max(mode_gain[0], 0.5)  # the fundamental always sounds
    return {
        "fundamental_hz": _log_uniform(rng, *ranges.fundamental_hz),
        "ratios": MEMBRANE_RATIOS * (1 + rng.uniform(-ranges.detune, ranges.detune, count)),
        "mode_gain": mode_gain,
        "mode_phase": rng.uniform(0, 2 * np.pi, count),
        "decay_tilt": float(rng.uniform(0.5, 1.5)),
        "body_decay_s": _log_uniform(rng, *ranges.body_decay_s),
        "wire_decay_ratio": float(rng.uniform(*ranges.wire_decay_ratio)),
        "wire_level_db": (None if ranges.wire_level_db is None
                          else float(rng.uniform(*ranges.wire_level_db))),
        "wire_band_hz": (_log_uniform(rng, low_lo, low_hi), _log_uniform(rng, high_lo, high_hi)),
        "buzz_rise_s": float(rng.uniform(0.001, 0.006)),
        "glide": float(rng.uniform(*ranges.glide)),
        "click_level_db": float(rng.uniform(*ranges.click_level_db)),
        "click_decay_s": _log_uniform(rng, *ranges.click_decay_s),
        "length_s": ranges.length_s,
    }


def modal_drum_instrument(rng: np.random.Generator,
                          ranges: ModalDrumRanges = ModalDrumRanges(),
                          name: str = "procedural snare", category: str = "snare",
                          rate: int = KIT_RATE) -> Instrument:
    """A random drum as a kit instrument: ``ranges.layers`` velocity layers, each hit's
    peak set by its velocity as in a sampled kit, so the renderer treats it like any other.
    Its ``centroid_hz`` is the fundamental, which orders toms high to low as well."""
    params = draw_drum_params(rng, ranges)
    edges = np.linspace(0.0, 1.0, ranges.layers + 1)
    layers = tuple(
        Layer(modal_drum_hit(params, float(high), rng, rate) * np.float32(high),
              float(low), float(high), "procedural")
        for low, high in zip(edges[:-1], edges[1:]))
    return Instrument(name=name, category=category, layers=layers,
                      centroid_hz=params["fundamental_hz"])

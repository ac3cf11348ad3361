"""What the recording chain adds after the microphone: the preamp and converter's hiss and
the word length of the file the session was exported to.

A real snare track never holds digital silence: between hits it carries the preamp's white
noise (-110 to -70 dBFS, higher with more gain) and, in a 16-bit export, dither at about
-100 dBFS. Trained on clips whose quiet stretches were exactly zero above the room tone's
dark band, the shipped networks read a flat floor near -80 dBFS as a cymbal wash and pulled
whole snare hits down with it (docs/model.md, thirty-second round). Both are part of the
bleed: the target stays the clean snare, so the model learns to leave the floor out.
"""

from __future__ import annotations

import numpy as np

EXPORT_BITS = 16  # a 24-bit export's rounding lies under any preamp's floor; 16 bits' does not


def white_floor(rng: np.random.Generator, n: int, level_dbfs: float) -> np.ndarray:
    """``n`` samples of white noise whose RMS is ``level_dbfs``: a preamp's hiss is flat
    up to the converter's band edge, unlike the room tone's dark rumble."""
    return (rng.standard_normal(n) * 10 ** (level_dbfs / 20)).astype(np.float32)


def quantise(samples: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` rounded to a ``bits``-bit grid with TPDF dither (what an export to a
    16-bit file does: white noise 1/sqrt(6) LSB RMS plus the rounding)."""
    step = 2.0 ** (1 - bits)
    dither = rng.random(samples.size) - rng.random(samples.size)
    grid = np.round(samples.astype(np.float64) / step + dither) * step
    return np.clip(grid, -1.0, 1.0 - step).astype(np.float32)


def add_recording_chain(clean: np.ndarray, bleed: np.ndarray, rng: np.random.Generator,
                        floor_probability: float, floor_dbfs: tuple[float, float],
                        quantise_probability: float) -> tuple[np.ndarray, dict]:
    """``bleed`` with a white floor (probability ``floor_probability``, level drawn from
    ``floor_dbfs``) and the mixture's export to ``EXPORT_BITS`` (probability
    ``quantise_probability``) folded in, so ``clean + bleed`` is the noisy track, and what was applied (meta keys
    ``floor_dbfs`` and ``bits``, absent when not).

    Nothing is drawn for a stage whose probability is 0, so clips rendered without the
    chain are the same samples and meta as before it existed."""
    info: dict = {}
    if floor_probability > 0 and rng.random() < floor_probability:
        level = float(rng.uniform(*floor_dbfs))
        bleed = bleed + white_floor(rng, bleed.size, level)
        info["floor_dbfs"] = round(level, 2)
    if quantise_probability > 0 and rng.random() < quantise_probability:
        bleed = quantise(clean + bleed, EXPORT_BITS, rng) - clean
        info["bits"] = EXPORT_BITS
    return bleed.astype(np.float32), info

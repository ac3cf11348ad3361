"""Does a track carry a recording floor (preamp hiss, dither) above the model's cut?

Why it matters: the shipped model reads noise above 22.05 kHz as bleed. Most of its training
kits are 44.1-kHz libraries, which leave that band to room tone, so a 48-kHz track's hiss
there, present at every frame, takes the hits with it (docs/model.md, thirty-fourth round).
Read only below the cut, the model keeps them.

How a floor is told from what the band carries in a floorless track: a floor is white, as
loud per bin at 23 kHz as at 18 kHz, while room tone and a microphone's air fall off towards
24 kHz. So in the quietest frames (between hits, where a floor shows) the band above the cut
is compared with 16-20 kHz: within ``FLOOR_GAP_DB`` of it means a floor. On the thirty-fifth
round's selection sets the gap was -10.5 to -39 dB on every floorless clip (-16 on most) and
-0.5 to -8.6 dB on most floored ones (docs/model.md, C11a).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .hiss_cut import REFERENCE_BAND_HZ

N_FFT = 1024                         # the shipped model's STFT at 48 kHz
HOP = N_FFT                          # frames side by side: a quantile needs no overlap
QUIET_QUANTILE = 0.1                 # the quietest frames: between hits, where a floor shows
FLOOR_GAP_DB = -12.0                 # band above the cut within this of the reference: a floor
# Quieter than a white noise this far under the track's peak is digital silence (float
# rounding, a resampler's leftovers), not a floor, whatever the two bands' ratio.
SILENCE_DB = -150.0
CHUNK_FRAMES = 2048                  # frames per FFT batch: bounds memory on long tracks
WINDOW = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as the model's STFT


@dataclass
class QuietBands:
    """Per-frame mean power per bin of one track in the band above ``cut_hz`` and in the
    reference band, gathered piece by piece (a streamed file's blocks) at ``sample_rate``.
    Channels' powers add up: one answer per track. Samples short of a whole frame wait for
    the next piece, so pieces cut anywhere give the whole track's frames."""

    sample_rate: int
    cut_hz: float
    top: list[np.ndarray] = field(default_factory=list)
    reference: list[np.ndarray] = field(default_factory=list)
    peak: float = 0.0
    pending: np.ndarray | None = None

    def __post_init__(self) -> None:
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / self.sample_rate)
        self.first_bin = int(np.searchsorted(freqs, REFERENCE_BAND_HZ[0]))  # none below is read
        self.top_bins = freqs[self.first_bin:] > self.cut_hz
        self.reference_bins = freqs[self.first_bin:] <= REFERENCE_BAND_HZ[1]

    def add(self, samples: np.ndarray) -> None:
        """Add the next ``(C, T)`` samples of the track."""
        samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
        self.peak = max(self.peak, float(np.max(np.abs(samples), initial=0.0)))
        if not self.top_bins.any():
            return
        if self.pending is not None:
            samples = np.concatenate([self.pending, samples], axis=-1)
        frames_total = max(samples.shape[-1] - N_FFT, -HOP) // HOP + 1
        self.pending = samples[:, frames_total * HOP:]
        for first in range(0, frames_total, CHUNK_FRAMES):
            count = min(CHUNK_FRAMES, frames_total - first)
            piece = samples[:, first * HOP: first * HOP + (count - 1) * HOP + N_FFT]
            frames = sliding_window_view(piece, N_FFT, axis=-1)[:, ::HOP] * WINDOW
            spectrum = np.fft.rfft(frames, axis=-1)[..., self.first_bin:]
            power = (spectrum.real ** 2 + spectrum.imag ** 2).sum(axis=0)
            self.top.append(power[:, self.top_bins].mean(axis=-1))
            self.reference.append(power[:, self.reference_bins].mean(axis=-1))

    def quiet_levels(self) -> tuple[float, float]:
        """The quiet power per bin above the cut and in the reference band."""
        return (float(np.quantile(np.concatenate(self.top), QUIET_QUANTILE)),
                float(np.quantile(np.concatenate(self.reference), QUIET_QUANTILE)))

    def gap_db(self) -> float:
        """Quiet level of the band above the cut less that of the reference band, in dB."""
        return _ratio_db(*self.quiet_levels()) if self.top else -np.inf

    def has_floor(self) -> bool:
        """A floor above the cut: louder than digital silence, and white enough (see module)."""
        if not self.top or self.peak == 0.0:
            return False
        top, reference = self.quiet_levels()
        # a white noise SILENCE_DB under the peak, per bin of a Hann-windowed frame
        silence = (self.peak * 10 ** (SILENCE_DB / 20)) ** 2 * float(np.sum(WINDOW ** 2))
        return top > silence and _ratio_db(top, reference) > FLOOR_GAP_DB


def _ratio_db(power: float, reference: float) -> float:
    return float(10 * np.log10(max(power, 1e-30) / max(reference, 1e-30)))


def has_top_band_floor(samples: np.ndarray, sample_rate: int, cut_hz: float) -> bool:
    """Whether ``(C, T)`` samples at ``sample_rate`` carry a recording floor above ``cut_hz``."""
    bands = QuietBands(sample_rate, cut_hz)
    bands.add(samples)
    return bands.has_floor()

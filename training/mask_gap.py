"""Where a mask model loses to the ideal mask: its mask swapped for the ideal one region by
region (the snare hits' windows or the gaps between them, split by frequency), the ΔSI-SDR
each swap gains, and whether the model's error there is bleed kept or snare removed.

Why: the model's distance to the ideal real mask (docs/model.md) says how much is left, not
where. A swap that gains most names the region the next network, loss term or input should
be judged on first; the cymbal band during hits is one such region, the snare's own body
under tom and kick bleed another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from denoiser.models.bandmask import BandMaskNet
from denoiser.models.ensemble import MaskEnsemble

from . import metrics

HIT_SPLIT_HZ = 5000.0   # the cymbal-leakage metric's band
GAP_SPLIT_HZ = 300.0    # kick and floor toms below
REGIONS = ("nowhere", "hits", f"hits < {HIT_SPLIT_HZ:g} Hz", f"hits >= {HIT_SPLIT_HZ:g} Hz",
           "gaps", f"gaps < {GAP_SPLIT_HZ:g} Hz", f"gaps >= {GAP_SPLIT_HZ:g} Hz", "everywhere")


@dataclass
class _Masks:
    """A clip's levelled noisy STFT, the model's and the ideal mask, and each region's bins."""

    spec: torch.Tensor
    predicted: torch.Tensor
    ideal: torch.Tensor
    where: dict[str, torch.Tensor]
    gain: float
    inverse: Callable[[torch.Tensor, int], torch.Tensor]


@torch.no_grad()
def _masks(model: BandMaskNet | MaskEnsemble, noisy: np.ndarray, clean: np.ndarray,
           sample_rate: int, onsets: Sequence[Mapping], level: float) -> _Masks:
    model = model.eval()
    gain = level / max(float(np.max(np.abs(noisy))), 1e-12)
    spec_x = model.spectrum(torch.from_numpy(np.asarray(noisy, np.float32) * gain)[None])
    spec_s = model.spectrum(torch.from_numpy(np.asarray(clean, np.float32) * gain)[None])
    predicted = model.predict_mask(spec_x)
    ideal = ((spec_s * spec_x.conj()).real / (spec_x.abs().square() + 1e-20)).clamp(0.0, 1.0)
    frames = spec_x.shape[-1]
    in_hits = metrics.hit_windows_mask(onsets, sample_rate, len(noisy))
    hit = torch.from_numpy(in_hits[np.minimum(np.arange(frames) * model.hop, len(noisy) - 1)])
    hit = hit[None, None, :]
    freqs = (torch.arange(spec_x.shape[1]) * sample_rate / model.n_fft)[None, :, None]
    everywhere = torch.ones_like(predicted, dtype=torch.bool)
    where = {
        "nowhere": ~everywhere, "everywhere": everywhere, "hits": hit & everywhere,
        REGIONS[2]: hit & (freqs < HIT_SPLIT_HZ), REGIONS[3]: hit & (freqs >= HIT_SPLIT_HZ),
        "gaps": ~hit & everywhere,
        REGIONS[5]: ~hit & (freqs < GAP_SPLIT_HZ), REGIONS[6]: ~hit & (freqs >= GAP_SPLIT_HZ),
    }
    inverse = model.members[0].inverse if isinstance(model, MaskEnsemble) else model.inverse
    return _Masks(spec_x, predicted, ideal, where, gain, inverse)


@torch.no_grad()
def region_gains(model: BandMaskNet | MaskEnsemble, noisy: np.ndarray, clean: np.ndarray,
                 sample_rate: int, onsets: Sequence[Mapping], level: float = 0.5) -> dict[str, float]:
    """ΔSI-SDR (dB) of ``noisy`` through the model's real mask with the ideal mask
    ``clip(Re(S X*) / |X|^2, 0, 1)`` put in its place in each of ``REGIONS``. The input is
    levelled to peak ``level`` first, as ``Denoiser`` does (the mask depends on the level).
    ``nowhere`` is the model itself, ``everywhere`` the ideal mask."""
    masks = _masks(model, noisy, clean, sample_rate, onsets, level)
    before = float(metrics.si_sdr(noisy, clean))
    gains = {}
    for name in REGIONS:
        mask = torch.where(masks.where[name], masks.ideal, masks.predicted)
        wave = masks.inverse(masks.spec * mask, len(noisy))[0].numpy() / masks.gain
        gains[name] = float(metrics.si_sdr(wave, clean)) - before
    return gains


@torch.no_grad()
def error_energies(model: BandMaskNet | MaskEnsemble, noisy: np.ndarray, clean: np.ndarray,
                   sample_rate: int, onsets: Sequence[Mapping],
                   level: float = 0.5) -> dict[str, tuple[float, float]]:
    """Per region, the model's mask error weighted by the noisy power, split into where it
    keeps more than the ideal mask (bleed let through) and where less (snare removed):
    ``(sum |X|^2 (m - m*)+^2, sum |X|^2 (m* - m)+^2)``, at the levelled scale."""
    masks = _masks(model, noisy, clean, sample_rate, onsets, level)
    power = masks.spec.abs().square()
    excess = power * (masks.predicted - masks.ideal).clamp(min=0).square()
    deficit = power * (masks.ideal - masks.predicted).clamp(min=0).square()
    return {name: (float(excess[region.expand_as(power)].sum()),
                   float(deficit[region.expand_as(power)].sum()))
            for name, region in masks.where.items() if name != "nowhere"}

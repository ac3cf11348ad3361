"""Oracle systems for the benchmark: what a careful engineer or an ideal mask would get.

Both see the clean snare, so neither is a product; they bound what debleed is measured
against. The oracle gate is the bar to beat (SPEC 6). The ideal mask is the ceiling of
the model's own design: a real mask on the same STFT, computed from the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from denoiser.gate import GateConfig, apply_gate

from . import metrics

IDEAL_MASK_FFT, IDEAL_MASK_HOP = 1024, 256  # for models without an STFT of their own


def oracle_gate(noisy: np.ndarray, clean: np.ndarray, sample_rate: int, gate: GateConfig,
                thresholds_db: Sequence[float]) -> tuple[np.ndarray, float]:
    """The gate output with the SI-SDR-best threshold of the grid, and that threshold.

    A clip without snare (bleed only) has no SI-SDR; there the engineer's best is the
    gate that lets least through, so the quietest output wins.
    """
    outputs = np.stack([apply_gate(noisy[None, :], sample_rate,
                                   replace(gate, threshold_db=float(t), auto=False))[0]
                        for t in thresholds_db])
    scores = metrics.si_sdr(outputs, clean[None, :])
    if np.isnan(scores).all():
        scores = -np.sum(outputs.astype(np.float64) ** 2, axis=-1)
    best = int(np.nanargmax(scores))
    return outputs[best], float(thresholds_db[best])


def ideal_mask(noisy: np.ndarray, clean: np.ndarray, n_fft: int = IDEAL_MASK_FFT,
               hop: int = IDEAL_MASK_HOP) -> np.ndarray:
    """The noisy track through the phase-sensitive ideal mask ``clip(Re(S X*) / |X|^2, 0, 1)``.

    Of the real masks it is the one that minimises the squared error to the clean STFT
    under the [0, 1] bound (Erdogan et al. 2015), so no real-mask model on this STFT can
    expect to beat it; it keeps the noisy phase like the model does.
    """
    window = torch.hann_window(n_fft, dtype=torch.float64)

    def stft(wave: np.ndarray) -> torch.Tensor:
        return torch.stft(torch.from_numpy(np.asarray(wave, np.float64)), n_fft, hop,
                          window=window, return_complex=True)

    spec_x, spec_s = stft(noisy), stft(clean)
    mask = ((spec_s * spec_x.conj()).real / (spec_x.abs().square() + 1e-20)).clamp(0.0, 1.0)
    out = torch.istft(spec_x * mask, n_fft, hop, window=window, length=len(noisy))
    return out.numpy().astype(np.float32)

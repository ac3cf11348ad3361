"""The bandmask network's phase-coherence input: what it measures and how it is wired."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from denoiser.models import build_model
from denoiser.models.bandmask import BandMaskNet, phase_coherence
from denoiser.models.ensemble import MaskEnsemble

RATE = 48000


def test_a_steady_partial_is_coherent_and_noise_is_not(rng):
    t = torch.arange(RATE) / RATE
    tone = 0.3 * torch.sin(2 * np.pi * 7123.4 * t)  # between two bin centres
    noise = torch.from_numpy(0.05 * rng.standard_normal(RATE).astype(np.float32))
    net = BandMaskNet(phase_coherence=True)
    coherence = phase_coherence(net.spectrum((tone + noise)[None]), 5)[0, :, 5:-5]
    tone_bin = round(7123.4 * net.n_fft / RATE)
    assert coherence.shape[0] == net.n_fft // 2 + 1
    assert coherence[tone_bin].mean().item() > 0.99
    noise_bins = coherence[300:400]  # 14-19 kHz: noise only
    assert 0.4 < noise_bins.mean().item() < 0.8  # overlapping frames: steps are not independent
    assert coherence[tone_bin].min().item() > noise_bins.max().item() - 0.2
    silent = phase_coherence(net.spectrum(torch.zeros(1, RATE)), 5)
    assert silent.abs().max().item() < 1e-5


def test_it_doubles_the_input_and_changes_the_mask():
    torch.manual_seed(0)
    plain = build_model("bandmask-tiny").eval()
    torch.manual_seed(0)
    coherent = build_model("bandmask-tiny", phase_coherence=True).eval()
    bins = plain.n_fft // 2 + 1
    assert plain.project.in_channels == bins and coherent.project.in_channels == 2 * bins
    assert coherent.context_samples() == plain.context_samples() + 3 * plain.hop
    wave = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        spec = coherent.spectrum(wave)
        mask = coherent.predict_mask(spec)
        coherent.project.weight[:, bins:] = 0  # coherence ignored: a plain net's mask
        without = coherent.predict_mask(spec)
    assert (mask - without).abs().max().item() > 1e-3
    with pytest.raises(ValueError, match="coherence_frames"):
        BandMaskNet(phase_coherence=True, coherence_frames=4)


def test_a_coherent_member_shares_the_ensembles_stft():
    torch.manual_seed(1)
    members = [build_model("bandmask-tiny").eval(),
               build_model("bandmask-tiny", phase_coherence=True).eval()]
    bag = MaskEnsemble.of(members, "power")
    wave = torch.randn(2, 12000) * 0.1
    with torch.no_grad():
        spec = bag.spectrum(wave)
        expected = torch.hypot(*(m.predict_mask(spec) for m in members)) * 2 ** -0.5
        assert torch.allclose(bag.predict_mask(spec), expected, atol=1e-6)
    assert bag.context_samples() == members[1].context_samples()

"""The region swaps between a model's mask and the ideal one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from denoiser.engine import Denoiser
from denoiser.models import build_model
from denoiser.models.ensemble import MaskEnsemble
from training import metrics
from training.mask_gap import REGIONS, error_energies, region_gains
from training.oracles import ideal_mask
from training.synth import SynthConfig, render_clip


@pytest.mark.parametrize("bag", [False, True])
def test_the_ends_are_the_model_and_the_ideal_mask(synthetic_kit, bag):
    torch.manual_seed(0)
    model = build_model("bandmask-tiny").eval()
    if bag:  # the shipped model's kind: an ensemble, with no inverse of its own
        model = MaskEnsemble.of([model, build_model("bandmask-tiny").eval()], "power")
    clip = render_clip(synthetic_kit, 5, SynthConfig(clip_seconds=2.0, preroll_seconds=1.0))
    gains = region_gains(model, clip.noisy, clip.clean, 48000, clip.meta["onsets"])
    assert list(gains) == list(REGIONS) and all(np.isfinite(list(gains.values())))
    before = float(metrics.si_sdr(clip.noisy, clip.clean))
    denoised = Denoiser(model, "cpu").denoise(clip.noisy[None], 48000)[0]
    assert gains["nowhere"] == pytest.approx(float(metrics.si_sdr(denoised, clip.clean)) - before,
                                             abs=0.05)
    oracle = ideal_mask(clip.noisy, clip.clean, model.n_fft, model.hop)
    assert gains["everywhere"] == pytest.approx(float(metrics.si_sdr(oracle, clip.clean)) - before,
                                                abs=0.05)
    assert gains["everywhere"] > gains["nowhere"] + 3


def test_against_a_model_that_keeps_everything_every_swap_gains(synthetic_kit):
    """A mask of 1 everywhere leaves the input as it is: then the ideal mask, the least
    squared error per bin, can only help wherever it is put, and the whole region helps at
    least as much as its parts (on a trained model, swapping part of its mask can also
    unbalance hits against gaps)."""
    model = build_model("bandmask-tiny").eval()
    torch.nn.init.zeros_(model.head[1].weight)
    torch.nn.init.constant_(model.head[1].bias, 30.0)  # sigmoid(30) = 1 to float precision
    clip = render_clip(synthetic_kit, 6, SynthConfig(clip_seconds=2.0, preroll_seconds=1.0))
    gains = region_gains(model, clip.noisy, clip.clean, 48000, clip.meta["onsets"])
    assert gains["nowhere"] == pytest.approx(0.0, abs=1e-3)
    for whole, parts in (("hits", REGIONS[2:4]), ("gaps", REGIONS[5:7])):
        assert all(gains[p] > 0.01 for p in parts), gains
        assert gains[whole] > max(gains[p] for p in parts) - 0.01, gains
    assert gains["everywhere"] == max(gains.values())


def test_error_energies_tell_bleed_kept_from_snare_removed(synthetic_kit):
    """A model that keeps everything errs only by keeping bleed; one that removes everything
    only by removing snare."""
    clip = render_clip(synthetic_kit, 6, SynthConfig(clip_seconds=2.0, preroll_seconds=1.0))
    for bias, kept_only in ((30.0, True), (-30.0, False)):
        model = build_model("bandmask-tiny").eval()
        torch.nn.init.zeros_(model.head[1].weight)
        torch.nn.init.constant_(model.head[1].bias, bias)
        energies = error_energies(model, clip.noisy, clip.clean, 48000, clip.meta["onsets"])
        assert set(energies) == set(REGIONS) - {"nowhere"}
        kept, removed = energies["everywhere"]
        share_kept = kept / (kept + removed)
        assert share_kept > 0.999 if kept_only else share_kept < 0.001
        hits, gaps = energies["hits"], energies["gaps"]
        assert hits[0] + gaps[0] == pytest.approx(kept) and hits[1] + gaps[1] == pytest.approx(removed)

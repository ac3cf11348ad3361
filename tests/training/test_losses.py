"""Training losses against values worked out by hand on small signals made here."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import numpy as np

from training.losses import (LOSSES, CombinedLoss, ComplexSpectralLoss, DuckingLoss, EnvelopeLoss,
                             HighBandSegmentalSNRLoss, HitLevelLoss, MSELoss,
                             MultiResolutionSTFTLoss, SegmentalSNRLoss, SISDRLoss, SNRLoss,
                             check_on_segment)
from training.metrics import hit_level_errors_db

SR = 48_000


def snare_like(batch: int = 2, seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Decaying tones plus decaying noise: a target with structure in time and frequency."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    tones = torch.stack([torch.sin(2 * math.pi * (180 + 40 * b) * t) for b in range(batch)])
    noise = torch.randn(batch, t.numel(), generator=generator)
    return 0.5 * (tones + 0.3 * noise) * torch.exp(-t / 0.15)


def orthogonal_noise(target: torch.Tensor, ratio_db: float, seed: int = 1) -> torch.Tensor:
    """Zero-mean noise orthogonal to ``target`` with |target|^2 / |noise|^2 = ratio_db."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(target.shape, generator=generator, dtype=torch.float64)
    ref = target.double() - target.double().mean(-1, keepdim=True)
    noise = noise - noise.mean(-1, keepdim=True)
    noise = noise - (noise * ref).sum(-1, keepdim=True) / ref.square().sum(-1, keepdim=True) * ref
    energy = ref.square().sum(-1, keepdim=True) / 10 ** (ratio_db / 10)
    return (noise * (energy / noise.square().sum(-1, keepdim=True)).sqrt()).float()


def test_mse_of_known_signals():
    t = torch.arange(SR) / SR
    sine = 0.8 * torch.sin(2 * math.pi * 100 * t)
    target = torch.stack([sine, torch.full_like(t, 0.5)])
    estimate = torch.stack([torch.zeros_like(t), torch.full_like(t, 0.2)])
    per_item = MSELoss(reduction="none")(estimate, target)
    assert per_item.shape == (2,)
    assert per_item[0].item() == pytest.approx(0.8**2 / 2, rel=1e-4)   # sine power A^2/2
    assert per_item[1].item() == pytest.approx(0.09, rel=1e-5)
    assert MSELoss()(estimate, target).item() == pytest.approx(per_item.mean().item())
    assert MSELoss(reduction="sum")(estimate, target).item() == pytest.approx(per_item.sum().item())


@pytest.mark.parametrize("ratio_db", [-5.0, 0.0, 12.0, 30.0])
def test_sisdr_loss_is_minus_the_ratio(ratio_db: float):
    target = snare_like()
    estimate = target + orthogonal_noise(target, ratio_db)
    loss = SISDRLoss(reduction="none")(estimate, target)
    assert torch.allclose(loss, torch.full_like(loss, -ratio_db), atol=0.05)


def test_sisdr_is_scale_invariant():
    target = snare_like()
    estimate = target + orthogonal_noise(target, 10.0)
    loss = SISDRLoss()(estimate, target).item()
    assert SISDRLoss()(3.0 * estimate, target).item() == pytest.approx(loss, abs=0.01)
    assert SISDRLoss()(estimate, 0.2 * target).item() == pytest.approx(loss, abs=0.01)
    assert SISDRLoss()(0.1 * estimate, 0.1 * target).item() == pytest.approx(loss, abs=0.01)


def test_snr_detects_a_ducked_estimate_where_sisdr_does_not():
    target = snare_like()
    ducked = 0.5 * target
    snr = SNRLoss(reduction="none")(ducked, target)
    # error = 0.5 s: SNR = 10 log10(1 / 0.25) = 6.02 dB, loss -6.02
    assert torch.allclose(snr, torch.full_like(snr, -10 * math.log10(4)), atol=0.05)
    # SI-SDR projects the scale away: a ducked hit looks perfect.
    assert SISDRLoss()(ducked, target).item() < -40
    assert SNRLoss()(target, target).item() < -40


def test_mrstft_is_zero_for_a_perfect_estimate_and_grows_with_noise():
    target = snare_like()
    loss = MultiResolutionSTFTLoss()
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    values = [loss(target + orthogonal_noise(target, ratio), target).item()
              for ratio in (40.0, 20.0, 0.0)]
    assert 0 < values[0] < values[1] < values[2]
    assert values[2] > 5 * values[0]


def test_complex_loss_sees_phase_that_magnitude_losses_miss():
    """A polarity-flipped estimate has the target's magnitudes: the STFT loss calls it
    perfect, the complex loss charges (1 - a) |2 S_c|^2 / |S_c|^2 = 0.7 x 4 (with the
    floor out of the way; it takes 2.7 % of this target's denominator by default)."""
    target = snare_like()
    assert MultiResolutionSTFTLoss()(-target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert ComplexSpectralLoss(floor_db=-200)(-target, target).item() == pytest.approx(2.8, rel=1e-3)
    assert ComplexSpectralLoss()(-target, target).item() == pytest.approx(2.8 * (1 - 0.027), rel=0.01)


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_complex_loss_of_a_gain_is_the_compressed_gain_error(gain: float):
    """Scaling by g scales every compressed bin by g^0.3: loss (g^0.3 - 1)^2, both parts alike."""
    target = snare_like()
    loss = ComplexSpectralLoss(floor_db=-200)
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-9)
    assert loss(gain * target, target).item() == pytest.approx((gain ** 0.3 - 1) ** 2, rel=5e-3)
    noisy = [loss(target + orthogonal_noise(target, ratio), target).item() for ratio in (30.0, 10.0)]
    assert 0 < noisy[0] < noisy[1]


def test_complex_loss_of_bleed_alone_is_bounded_by_the_floor():
    """A silent target scored alone (a bleed-only validation clip): white noise leaking at
    -20 dBFS costs its compressed energy over the -80 dBFS floor's, (10^6)^0.3 = 63."""
    target = torch.zeros(1, SR)
    leak = 0.1 * torch.randn(1, SR, generator=torch.Generator().manual_seed(5))
    assert ComplexSpectralLoss()(torch.zeros(1, SR), target).item() == 0.0
    assert ComplexSpectralLoss()(leak, target).item() == pytest.approx(10 ** (6 * 0.3), rel=0.05)


@pytest.mark.parametrize("name", ["mse", "sisdr", "snr", "mrstft", "envelope", "ducking", "complex",
                                  "segsnr", "hfsegsnr", "hitlevel"])
def test_silent_target_gives_a_finite_loss(name: str):
    target = torch.zeros(2, SR // 2)
    estimate = 0.05 * torch.randn(2, SR // 2, generator=torch.Generator().manual_seed(3))
    estimate.requires_grad_(True)
    hits = torch.zeros_like(target)
    hits[:, ::SR // 10] = 1.0  # hits named where the target is silent count nothing
    loss = CombinedLoss({name: 1.0})(estimate, target, hits)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(estimate.grad).all()


def two_hits(ghost_db: float = -30.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 1-s target with a backbeat at 0.1 s and a ghost note ``ghost_db`` below it at
    0.6 s (each 0.2 s of decaying tone and noise), and each hit's own part."""
    hit = snare_like(batch=1, seconds=0.2)[0]
    backbeat, ghost = torch.zeros(1, SR), torch.zeros(1, SR)
    start, ghost_start = SR // 10, 6 * SR // 10
    backbeat[0, start:start + hit.numel()] = hit
    ghost[0, ghost_start:ghost_start + hit.numel()] = hit * 10 ** (ghost_db / 20)
    return backbeat + ghost, backbeat, ghost


def test_segmental_snr_is_minus_the_ratio_in_every_frame():
    """Noise 10 dB under a steady tone in every frame: -10 log10(10^-1 + 10^-4) = 9.996 dB."""
    t = torch.arange(SR) / SR
    target = 0.5 * torch.sin(2 * math.pi * 200 * t)[None]
    noise = 0.5 / math.sqrt(2) * 10 ** (-10 / 20) * torch.randn(1, SR, generator=torch.Generator().manual_seed(4))
    loss = SegmentalSNRLoss()(target + noise, target).item()
    assert loss == pytest.approx(-10.0, abs=0.15)
    assert SegmentalSNRLoss()(target, target).item() == pytest.approx(-40.0, abs=1e-3)


def test_segmental_snr_charges_a_lost_ghost_note_where_snr_does_not():
    """Without the ghost note (30 dB below the backbeat) the whole-clip SNR still reads
    29.6 dB, a result it would call excellent; frame by frame the ghost's frames fall from
    the 40-dB ceiling to 0 dB, and the loss rises as much as for a lost backbeat (19 of the
    40 sounding frames are the ghost's, 21 the backbeat's)."""
    target, backbeat, ghost = two_hits(-30.0)
    segmental, snr = SegmentalSNRLoss(), SNRLoss()
    assert segmental(target, target).item() == pytest.approx(-40.0, abs=1e-3)
    assert segmental(backbeat, target).item() == pytest.approx(-40.0 * 21 / 40, abs=0.1)
    assert segmental(ghost, target).item() == pytest.approx(-40.0 * 19 / 40, abs=0.1)
    assert snr(backbeat, target).item() == pytest.approx(-29.6, abs=0.1)
    assert snr(ghost, target).item() == pytest.approx(0.0, abs=0.01)


def test_segmental_snr_charges_bleed_under_hits_but_not_between_them():
    """Bleed in the silence between hits is not its business (the other terms see it);
    the same bleed under the backbeat is."""
    target, _, _ = two_hits()
    bleed = 0.05 * torch.randn(1, SR, generator=torch.Generator().manual_seed(6))
    between, under = torch.zeros(1, SR), torch.zeros(1, SR)
    between[:, 4 * SR // 10:5 * SR // 10] = bleed[:, 4 * SR // 10:5 * SR // 10]
    under[:, SR // 10:2 * SR // 10] = bleed[:, SR // 10:2 * SR // 10]
    loss = SegmentalSNRLoss()
    assert loss(target + between, target).item() == pytest.approx(loss(target, target).item(), abs=1e-3)
    assert loss(target + under, target).item() > loss(target, target).item() + 5


HIT_SPACING = SR // 4  # 0.25 s between hits 0.2 s long: no window holds two


def hits_at_levels(levels_db: list[float], rate: int = SR, spacing: int = HIT_SPACING
                   ) -> tuple[torch.Tensor, list[dict], torch.Tensor]:
    """A target of one 0.2-s hit per level, ``spacing`` samples (at 48 kHz) apart from 0.1 s
    on, its onsets as the metrics take them and its hit marks: ``(1, T)``,
    ``[{"sample", "target"}]``, ``(1, T)``."""
    hit = snare_like(batch=1, seconds=0.2 * rate / SR)[0]  # 0.2 s at ``rate``
    starts = [rate // 10 + i * spacing * rate // SR for i in range(len(levels_db))]
    target = torch.zeros(1, starts[-1] + rate // 2)
    for start, level in zip(starts, levels_db):
        target[0, start:start + hit.numel()] += hit * 10 ** (level / 20)
    marks = torch.zeros_like(target)
    marks[0, starts] = 1.0
    return target, [{"sample": start, "target": True} for start in starts], marks


def scaled_hits(target: torch.Tensor, gains: list[float], rate: int = SR) -> torch.Tensor:
    """``target`` with its i-th hit (of ``hits_at_levels``) scaled by ``gains[i]``."""
    estimate = target.clone()
    for i, gain in enumerate(gains):
        start = rate // 10 + i * HIT_SPACING * rate // SR
        estimate[0, start:start + HIT_SPACING * rate // SR] *= gain
    return estimate


def metric_error(estimate: torch.Tensor, target: torch.Tensor, onsets: list[dict]) -> float:
    """The mean absolute hit level error ``training.metrics`` gives, in dB."""
    errors, _ = hit_level_errors_db(target[0].numpy(), estimate[0].numpy(), SR, onsets)
    return float(np.mean(np.abs(errors)))


def test_hit_level_loss_is_the_metrics_mean_hit_level_error():
    """Hits from a backbeat down to a ghost 35 dB under it, each ducked by its own gain: the
    loss scores the hits it is handed as ``hit_level_errors_db`` does, |20 log10 g| each
    whatever the hit's level, so the ghost's 6 dB weigh as much as the backbeat's 6 dB. A
    lost hit costs the 40-dB cap, a ghost as much as a backbeat."""
    target, onsets, marks = hits_at_levels([0.0, -10.0, -25.0, -35.0])
    gains = [0.5, 1.0, 0.8, 0.5]
    estimate = scaled_hits(target, gains)
    loss = HitLevelLoss()
    expected = float(np.mean(np.abs(20 * np.log10(gains))))
    assert metric_error(estimate, target, onsets) == pytest.approx(expected, abs=1e-3)
    assert loss(estimate, target, marks).item() == pytest.approx(expected, abs=1e-3)
    assert loss(target, target, marks).item() == pytest.approx(0.0, abs=1e-6)
    lost_ghost = scaled_hits(target, [1.0, 1.0, 1.0, 0.0])
    lost_backbeat = scaled_hits(target, [0.0, 1.0, 1.0, 1.0])
    assert loss(lost_ghost, target, marks).item() == pytest.approx(40.0 / 4, abs=0.01)
    assert loss(lost_backbeat, target, marks).item() == pytest.approx(40.0 / 4, abs=0.01)


def test_hit_level_loss_counts_a_doubled_onset_twice_as_the_metric_does():
    """Two onsets on one sample (a roll stroke on another hit) are two hits to the metric,
    each scored: a mark of 2 weighs that hit twice in the loss's mean, so the two agree."""
    target, onsets, marks = hits_at_levels([0.0, -10.0, -25.0])
    onsets = onsets + [dict(onsets[2])]
    marks[0, onsets[2]["sample"]] = 2.0
    estimate = scaled_hits(target, [0.5, 1.0, 0.8])
    expected = metric_error(estimate, target, onsets)
    assert expected == pytest.approx((6.02 + 2 * 1.94) / 4, abs=0.01)
    loss = HitLevelLoss(range_db=120)  # the metric's own floor under a hit's energy
    assert loss(estimate, target, marks).item() == pytest.approx(expected, abs=1e-5)


def test_hit_level_loss_scores_a_ghost_in_the_ring_of_a_backbeat():
    """A ghost note 30 ms after a backbeat, 20 dB under it, starts inside the backbeat's
    ring: no rise in the target's energy marks it (a detector of 10-dB rises found a quarter
    of the kits' hits), but the data names it, and the loss scores it as the metric does:
    the estimate that keeps the backbeat and removes the ghost reads the same error in both."""
    target, onsets, marks = hits_at_levels([0.0, -20.0], spacing=SR * 3 // 100)
    hit = snare_like(batch=1, seconds=0.2)[0]
    ghost_start = SR // 10 + SR * 3 // 100
    without_ghost = target.clone()
    without_ghost[0, ghost_start:ghost_start + hit.numel()] -= hit * 10 ** (-20 / 20)
    error = metric_error(without_ghost, target, onsets)
    assert error > 0.3  # the backbeat's window reads ~0, the ghost's ~1 dB
    assert HitLevelLoss()(without_ghost, target, marks).item() == pytest.approx(error, abs=1e-3)


def test_hit_level_loss_charges_bleed_under_a_hit_as_the_metric_does():
    """Kick-like bleed 6 dB over a ghost note raises its window's level; the loss reads the
    metric's level error, and the same bleed between the hits costs nothing."""
    target, onsets, marks = hits_at_levels([0.0, -30.0])
    t = torch.arange(SR // 5) / SR
    kick = torch.sin(2 * math.pi * 60 * t) * torch.exp(-t / 0.05)
    ghost = slice(SR // 10 + HIT_SPACING, SR // 10 + HIT_SPACING + SR // 5)
    kick = kick * (target[0, ghost].norm() / kick.norm()) * 10 ** (6 / 20)
    under, between = target.clone(), target.clone()
    under[0, ghost] += kick
    between[0, SR // 10 + HIT_SPACING + SR // 4:][:kick.numel()] += kick
    loss = HitLevelLoss()
    assert metric_error(under, target, onsets) > 2.5
    assert loss(under, target, marks).item() == pytest.approx(
        metric_error(under, target, onsets), abs=1e-3)
    assert loss(between, target, marks).item() == pytest.approx(0.0, abs=1e-6)


def test_hit_level_loss_counts_only_hits_with_sound_in_their_window():
    """A hit mark whose clean window is silent (a hit rendered outside the segment) counts
    nothing, as in the metric; an item with no mark scores 0 whatever the estimate does."""
    target, onsets, marks = hits_at_levels([0.0, -20.0])
    silent_mark = marks.clone()
    silent_mark[0, -1] = 1.0  # the segment's last sample: 0.4 s after the last hit's end
    estimate = scaled_hits(target, [0.5, 0.5])
    loss = HitLevelLoss()
    assert loss(estimate, target, silent_mark).item() == pytest.approx(6.02, abs=0.01)
    assert loss(estimate, target, torch.zeros_like(marks)).item() == 0.0


def test_hit_level_loss_pulls_a_lost_ghost_back_up():
    """The gradient of a removed ghost note's window points towards the ghost: a step down
    it raises the estimate's level there and lowers the loss."""
    target, _, marks = hits_at_levels([0.0, -30.0])
    estimate = scaled_hits(target, [1.0, 0.01]).requires_grad_(True)
    loss = HitLevelLoss()
    loss(estimate, target, marks).backward()
    ghost = slice(SR // 10 + HIT_SPACING, SR // 10 + HIT_SPACING + SR // 20)
    before = estimate[0, ghost].detach().square().sum()
    stepped = estimate.detach() - 1e-3 * estimate.grad / estimate.grad.abs().max()
    assert stepped[0, ghost].square().sum() > 1.5 * before
    assert loss(stepped, target, marks).item() < loss(estimate, target, marks).item()


def test_hit_level_loss_windows_follow_the_rate():
    """Built by ``CombinedLoss`` at 20 kHz its window lasts the same milliseconds: 40
    samples before the onset, 1600 after; a hit halved reads 6.02 dB there too."""
    rate = 20000
    target, _, _ = hits_at_levels([0.0, -20.0], rate)
    marks = torch.zeros_like(target)
    marks[0, [rate // 10, rate // 10 + HIT_SPACING * rate // SR]] = 1.0
    part = CombinedLoss({"hitlevel": 1.0}, sample_rate=rate).parts["hitlevel"]
    assert (part.pre, part.post) == (40, 1600)
    assert part(scaled_hits(target, [0.5, 0.5], rate), target, marks).item() == pytest.approx(
        6.02, abs=0.01)


def test_combined_loss_leaves_the_hit_level_out_without_hits():
    """Scored without hits (the guard's targets, a teacher's output) the hit level part
    counts nothing; with them it adds its weight times its value."""
    target, _, marks = hits_at_levels([0.0, -20.0])
    estimate = scaled_hits(target, [0.5, 1.0])
    both = CombinedLoss({"mrstft": 1.0, "hitlevel": 0.1})
    mrstft = CombinedLoss({"mrstft": 1.0})(estimate, target).item()
    assert both.needs_hits and not CombinedLoss({"mrstft": 1.0}).needs_hits
    assert both(estimate, target).item() == pytest.approx(mrstft, rel=1e-6)
    assert both(estimate, target, marks).item() == pytest.approx(mrstft + 0.1 * 6.02 / 2, rel=1e-3)


def test_hit_level_loss_windows_end_where_the_metrics_do():
    """Energy only at a window's first or last sample, and bleed only at the sample just
    outside it: both read 0 dB, as in the metric; a window one sample longer or shorter
    at either end would read 3 dB."""
    samples, onset = 20000, 10000
    loss = HitLevelLoss()
    marks = torch.zeros(1, samples)
    marks[0, onset] = 1.0
    for inside, outside in ((onset + loss.post - 1, onset + loss.post),
                            (onset - loss.pre, onset - loss.pre - 1)):
        target = torch.zeros(1, samples)
        target[0, inside] = 1.0
        estimate = target.clone()
        estimate[0, outside] = 1.0
        assert metric_error(estimate, target, [{"sample": onset, "target": True}]) == 0.0
        assert loss(estimate, target, marks).item() == 0.0
        assert loss(2 ** 0.5 * target, target, marks).item() == pytest.approx(3.01, abs=0.01)


def test_hit_level_loss_sums_a_ghosts_energy_as_exactly_as_the_metric():
    """Seven loud backbeats, then a ghost 50 dB under them at the end of a 2-s segment,
    halved: the loss reads the metric's mean error to 1e-4 dB. A float32 running sum read
    it 0.02 dB off (0.15 dB on the ghost), its digits spent on the backbeats before it."""
    generator = torch.Generator().manual_seed(1)
    t = torch.arange(SR // 5) / SR
    hit = torch.randn(t.numel(), generator=generator) * torch.exp(-t / 0.03)
    starts = [4800 + 12000 * i for i in range(7)] + [90000]
    target = torch.zeros(1, 2 * SR)
    for i, start in enumerate(starts):
        part = hit[:2 * SR - start] * (0.9 if i < 7 else 10 ** (-50 / 20))
        target[0, start:start + part.numel()] += part
    estimate = target.clone()
    estimate[0, 90000:] *= 0.5
    marks = torch.zeros_like(target)
    marks[0, starts] = 1.0
    onsets = [{"sample": start, "target": True} for start in starts]
    loss = HitLevelLoss(range_db=120)  # the metric's own floor lies 120 dB down
    assert loss(estimate, target, marks).item() == pytest.approx(
        metric_error(estimate, target, onsets), abs=1e-4)


def test_hit_level_loss_stays_finite_at_its_widest_options():
    """The widest range and a lost hit of a whisper-quiet target (energies ~1e-9 times
    10^-30): loss and gradient are finite, the loss the 300-dB cap."""
    target, _, marks = hits_at_levels([-70.0, -90.0])
    estimate = torch.zeros_like(target, requires_grad=True)
    loss = CombinedLoss({"hitlevel": 1.0}, {"hitlevel": {"range_db": 300}})(estimate, target, marks)
    assert loss.item() == pytest.approx(300.0, abs=0.01)
    loss.backward()
    assert torch.isfinite(estimate.grad).all()


@pytest.mark.parametrize("options, message", [
    ({"post_ms": 0}, r"post_ms and range_db > 0"),
    ({"pre_ms": -1}, r"pre_ms must be >= 0"),
    ({"range_db": 0}, r"post_ms and range_db > 0"),
    ({"range_db": 500}, r"range_db = 500: a dB option"),
    ({"frame_ms": 5}, r"loss hitlevel: bad options"),
])
def test_hit_level_loss_refuses_absurd_options(options: dict, message: str):
    with pytest.raises(ValueError, match=message):
        CombinedLoss({"hitlevel": 1.0}, {"hitlevel": options})


def test_hit_level_loss_of_a_window_longer_than_the_segment_is_the_segment():
    """A window of 100 s on a 1-s segment is the segment from the hit on, scored at once
    (an average pool over such windows took minutes): halving every hit still reads 6.02."""
    target, _, marks = hits_at_levels([0.0, -20.0])
    loss = CombinedLoss({"hitlevel": 1.0}, {"hitlevel": {"pre_ms": 1e5, "post_ms": 1e5}})
    check_on_segment(loss, target.shape[-1])
    assert loss(0.5 * target, target, marks).item() == pytest.approx(6.02, abs=0.01)


def band(seconds: float, low_hz: float, high_hz: float, seed: int) -> torch.Tensor:
    """White noise limited to [low_hz, high_hz) by zeroing its other FFT bins: (1, T)."""
    samples = int(seconds * SR)
    noise = torch.randn(1, samples, generator=torch.Generator().manual_seed(seed))
    spectrum = torch.fft.rfft(noise)
    frequencies = torch.fft.rfftfreq(samples, 1 / SR)
    return torch.fft.irfft(spectrum * ((frequencies >= low_hz) & (frequencies < high_hz)), n=samples)


def test_high_band_segmental_snr_is_minus_the_ratio_above_the_cutoff():
    """Wires (noise above 5 kHz) under a steady 200-Hz tone, and a cymbal-like leak 10 dB
    under the wires in that band: -10 log10(10^-1 + 10^-4) = 9.996 dB, as for the full-band
    term; the clean target scores the 40-dB ceiling."""
    t = torch.arange(SR) / SR
    wires = band(1.0, 5000, 24000, seed=7)
    target = 0.5 * torch.sin(2 * math.pi * 200 * t)[None] + 0.1 * wires / wires.std()
    leak = band(1.0, 6000, 20000, seed=8)
    leak = 0.1 * 10 ** (-10 / 20) * leak / leak.std()
    loss = HighBandSegmentalSNRLoss()
    assert loss(target + leak, target).item() == pytest.approx(-10.0, abs=0.2)
    assert loss(target, target).item() == pytest.approx(-40.0, abs=1e-3)


def test_high_band_segmental_snr_charges_cymbal_and_cut_wires_not_low_bleed():
    """Under the backbeat (39 sounding frames in all): a cymbal above 5 kHz and the snare's
    wires cut cost more here than in the full-band term, where the snare's low band
    dwarfs them; a kick's 60 Hz at the cymbal's level costs nothing here and 6.8 dB there."""
    target, _, _ = two_hits()
    wires = torch.zeros(1, SR)
    wires[:, SR // 10:3 * SR // 10] = 0.05 * band(0.2, 5000, 24000, seed=9) / 0.2 ** 0.5
    target = target + wires
    hit = slice(SR // 10, 2 * SR // 10)
    cymbal, kick = torch.zeros(1, SR), torch.zeros(1, SR)
    wash = band(0.1, 6000, 16000, seed=10)
    cymbal[:, hit] = 0.05 * wash / wash.std()
    kick[:, hit] = 0.05 * math.sqrt(2) * torch.sin(2 * math.pi * 60 * torch.arange(SR // 10) / SR)
    high, full = HighBandSegmentalSNRLoss(), SegmentalSNRLoss()
    assert high(target, target).item() == pytest.approx(-40.0, abs=1e-3)
    assert high(target + cymbal, target).item() == pytest.approx(-31.3, abs=0.1)
    assert full(target + cymbal, target).item() == pytest.approx(-33.2, abs=0.1)
    assert high(target - wires, target).item() == pytest.approx(-15.4, abs=0.1)
    assert full(target - wires, target).item() == pytest.approx(-22.4, abs=0.1)
    assert high(target + kick, target).item() == pytest.approx(-40.0, abs=0.01)
    assert full(target + kick, target).item() == pytest.approx(-33.2, abs=0.1)


def test_high_band_segmental_snr_refuses_a_cutoff_past_nyquist():
    with pytest.raises(ValueError, match="cutoff_hz"):
        HighBandSegmentalSNRLoss(cutoff_hz=30000)


def test_snr_silent_target_is_bounded_by_the_floor():
    """Outputting silence for a silent target scores the floor, not -inf; leaking bleed
    costs a bounded amount."""
    target = torch.zeros(1, SR)
    assert SNRLoss()(torch.zeros(1, SR), target).item() == pytest.approx(0.0, abs=1e-6)
    leak = torch.full((1, SR), 10 ** (-20 / 20))           # -20 dBFS leak, floor -60 dB
    assert SNRLoss()(leak, target).item() == pytest.approx(40.0, abs=0.01)


def test_combined_loss_is_the_weighted_sum():
    target = snare_like()
    estimate = target + orthogonal_noise(target, 8.0)
    combined = CombinedLoss({"mse": 2.0, "snr": 0.5, "sisdr": 0.25, "mrstft": 1.5})
    expected = (2.0 * MSELoss()(estimate, target) + 0.5 * SNRLoss()(estimate, target)
                + 0.25 * SISDRLoss()(estimate, target)
                + 1.5 * MultiResolutionSTFTLoss()(estimate, target))
    assert combined(estimate, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_higher_stft_floor_bounds_what_a_silent_target_costs():
    """``{"mrstft": {"floor_db": -80}}``: bleed left on a silent target (-30 dBFS noise) costs
    far less than at the default -100 dB floor, while the options reach the part and a
    snare target's loss changes much less (its bins lie mostly above both floors)."""
    silent = torch.zeros(1, SR)
    bleed = torch.randn(1, SR, generator=torch.Generator().manual_seed(3)) * 10 ** (-30 / 20)
    default = CombinedLoss({"mrstft": 1.0})
    bounded = CombinedLoss({"mrstft": 1.0}, {"mrstft": {"floor_db": -80.0}})
    assert all(part.floor == pytest.approx(10 ** (-80 / 20) * part.n_fft / 4)
               for part in bounded.parts["mrstft"].losses)
    silent_default, silent_bounded = default(bleed, silent).item(), bounded(bleed, silent).item()
    assert silent_bounded < 0.75 * silent_default, (silent_bounded, silent_default)
    target = snare_like()
    estimate = target + orthogonal_noise(target, 20.0)
    snare_default, snare_bounded = default(estimate, target).item(), bounded(estimate, target).item()
    assert abs(snare_default - snare_bounded) < silent_default - silent_bounded


@pytest.mark.parametrize("options, message", [({"snr": {"floor_db": -50}}, "not weighted"),
                                              ({"mrstft": {"bogus": 1}}, "bad options"),
                                              ({"mrstft": 3}, "bad options"),
                                              ({"mrstft": {"floor_db": math.nan}}, "finite")])
def test_combined_loss_rejects_bad_options(options: dict, message: str):
    with pytest.raises(ValueError, match=message):
        CombinedLoss({"mrstft": 1.0}, options)


@pytest.mark.parametrize("options, message", [
    ({"mrstft": {"floor_db": 1e12}}, r"loss mrstft: floor_db = 1e\+12: a dB option must lie "
                                     r"within \[-300, 300\] dB"),
    ({"snr": {"floor_db": -301}}, r"loss snr: floor_db = -301: a dB option must lie within"),
    ({"segsnr": {"ceiling_db": 1e5}}, r"loss segsnr: ceiling_db = 100000: a dB option"),
    ({"complex": {"power": 1000}}, r"loss complex: bad options \{'power': 1000\} "
                                   r"\(math range error\)")])
def test_loss_options_past_any_level_are_refused_in_one_line(options: dict, message: str):
    """``{"mrstft": {"floor_db": 1e12}}`` overflowed ``10 ** (floor_db / 20)``, and a power
    of 1000 ``math.gamma``: an OverflowError traceback, past the ``ValueError`` that
    ``TrainConfig.validate`` words as one line."""
    with pytest.raises(ValueError, match=message):
        CombinedLoss(dict.fromkeys(options, 1.0), options)


def test_a_db_option_at_its_limit_is_taken():
    loss = CombinedLoss({"snr": 1.0, "envelope": 1.0},
                        {"snr": {"floor_db": -300}, "envelope": {"floor_db": 300.0}})
    assert loss.parts["snr"].floor == pytest.approx(1e-30)
    assert loss.parts["envelope"].floor == pytest.approx(1e30)


def test_combined_loss_measures_hertz_at_the_rate_it_is_given():
    """At a 20 kHz model's rate, ``hfsegsnr``'s band starts at 5 kHz, not at 5000 * 20/48
    (about 2.1 kHz, where it started when the loss was built without the rate): a 3 kHz
    error costs nothing there (the 40-dB ceiling, as no error does), a 7 kHz one does."""
    rate = 20_000
    t = torch.arange(rate) / rate
    generator = torch.Generator().manual_seed(0)
    clean = 0.3 * torch.randn(1, rate, generator=generator) * (torch.sin(2 * math.pi * 2 * t) > 0)
    loss = CombinedLoss({"hfsegsnr": 1.0}, sample_rate=rate)
    assert loss.parts["hfsegsnr"].sample_rate == rate
    low, high = (0.05 * torch.sin(2 * math.pi * hz * t) for hz in (3000, 7000))
    assert loss(clean + low, clean).item() == pytest.approx(-40.0, abs=0.01)
    assert loss(clean + high, clean).item() > -30.0
    assert CombinedLoss({"hfsegsnr": 1.0})(clean + low, clean).item() > -30.0  # at 48 kHz


def test_the_rate_is_not_a_loss_option():
    """The rate a loss is scored at is the model's; given as an option it could only
    disagree with it."""
    with pytest.raises(ValueError, match="sample_rate is not an option"):
        CombinedLoss({"hfsegsnr": 1.0}, {"hfsegsnr": {"sample_rate": 20000}}, sample_rate=20000)


@pytest.mark.parametrize("weights", [{"l1": 1.0}, {"mse": 1.0, "bogus": 0.1}, {}])
def test_combined_loss_rejects_unknown_or_empty(weights: dict[str, float]):
    with pytest.raises(ValueError, match="unknown or empty"):
        CombinedLoss(weights)


@pytest.mark.parametrize("weights", [{"mrstft": -1.0}, {"mrstft": 1.0, "snr": 0.0},
                                     {"mse": math.inf}, {"mse": "1"}, {"mse": True}])
def test_combined_loss_rejects_weights_that_are_not_positive_numbers(weights: dict):
    with pytest.raises(ValueError, match="positive numbers"):
        CombinedLoss(weights)


@pytest.mark.parametrize("loss", [MSELoss, SISDRLoss, SNRLoss, MultiResolutionSTFTLoss,
                                  ComplexSpectralLoss, SegmentalSNRLoss, HighBandSegmentalSNRLoss])
def test_reduction_none_keeps_the_batch(loss: type[torch.nn.Module]):
    target = snare_like(batch=3)
    estimate = target + orthogonal_noise(target, 10.0)
    values = loss(reduction="none")(estimate, target)
    assert values.shape == (3,)
    assert loss(reduction="mean")(estimate, target).item() == pytest.approx(
        values.mean().item(), rel=1e-5)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction"):
        MSELoss(reduction="max")(torch.zeros(1, 8), torch.zeros(1, 8))


def test_ducking_counts_lost_level_only():
    """Halving the target everywhere loses log10(4) per frame; doubling it loses nothing,
    and leaking bleed into silence costs nothing here (the envelope term sees it)."""
    target = snare_like()
    frames = EnvelopeLoss().envelope(target)
    assert torch.all(frames > math.log10(EnvelopeLoss().floor) + 1)  # no frame at the floor
    assert DuckingLoss()(0.5 * target, target).item() == pytest.approx(math.log10(4), rel=1e-3)
    assert DuckingLoss()(2.0 * target, target).item() == pytest.approx(0.0, abs=1e-7)
    assert EnvelopeLoss()(2.0 * target, target).item() == pytest.approx(math.log10(4), rel=1e-3)
    silence = torch.zeros(1, SR // 4)
    assert DuckingLoss()(0.1 * torch.ones(1, SR // 4), silence).item() == 0.0


@pytest.mark.parametrize("options, message", [
    ({"mrstft": {"reduction": "bogus"}}, "reduction"),
    ({"mrstft": {"fft_sizes": []}}, "fft_sizes"),
    ({"mrstft": {"fft_sizes": [65536]}}, "longer than"),
    ({"envelope": {"frame": 480.5}}, "frame"),
    ({"envelope": {"frame": 0}}, "frame"),
    ({"mrstft": {"reduction": "none"}}, "one value per item"),
    ({"mrstft": {"floor_db": 1e12}}, "^train: loss mrstft: floor_db = 1e\\+12: a dB option")])
def test_loss_options_that_cannot_train_are_refused_by_the_config(options, message):
    """They used to pass validation and fail (or train on NaN) once training had started."""
    from denoiser.errors import ParameterError
    from training.config import TrainConfig

    with pytest.raises(ParameterError, match=message):
        TrainConfig(loss_options=options, segment_seconds=0.5).validate()


def test_readme_names_every_loss_part():
    """The README's list of what ``--loss`` may weight is the list ``CombinedLoss`` knows."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    listed = re.search(r"`--loss` weights any of (.+?) \(training/losses.py", readme, re.S)
    assert listed, "the README's list of loss parts is gone"
    assert set(re.findall(r"`(\w+)`", listed.group(1))) == set(LOSSES)

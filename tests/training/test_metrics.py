"""Closed-form checks of the SPEC 5 metrics on small synthetic signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from denoiser.errors import ParameterError
from training import metrics

SR = 16000


def _orthogonal_noise(rng: np.random.Generator, target: np.ndarray) -> np.ndarray:
    """Zero-mean noise with no component along the zero-mean target."""
    noise = rng.standard_normal(target.size)
    noise -= noise.mean()
    centred = target - target.mean()
    return noise - centred * (noise @ centred) / (centred @ centred)


def _snare_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """1 s: rectangular snare bursts (one full hit, one ghost) and broadband bleed throughout."""
    n = SR
    clean = np.zeros(n)
    onsets = []
    for time, velocity, amp in ((0.1, 110, 0.8), (0.5, 30, 0.1)):
        start = int(time * SR)
        clean[start:start + int(0.06 * SR)] = amp * rng.standard_normal(int(0.06 * SR))
        onsets.append({"time": time, "sample": start, "instrument": "snare",
                       "velocity": velocity, "target": True})
    onsets.append({"time": 0.8, "sample": int(0.8 * SR), "instrument": "kick",
                   "velocity": 100, "target": False})
    onsets.append({"time": 0.3, "sample": int(0.3 * SR), "instrument": "hihat_closed",
                   "velocity": 90, "target": False})
    bleed = 0.05 * rng.standard_normal(n)
    return clean, clean + bleed, onsets


def test_si_sdr_perfect_estimate_is_very_high(rng):
    s = rng.standard_normal(4000)
    assert metrics.si_sdr(s, s) > 100.0


def test_si_sdr_known_ratio(rng):
    s = rng.standard_normal(8000)
    e = _orthogonal_noise(rng, s)
    for ratio_db in (-5.0, 0.0, 12.0, 30.0):
        scaled = e * math.sqrt(np.sum((s - s.mean()) ** 2) / np.sum(e ** 2) / 10 ** (ratio_db / 10))
        assert metrics.si_sdr(s + scaled, s) == pytest.approx(ratio_db, abs=0.1)


def test_si_sdr_is_scale_invariant_and_batched(rng):
    s = rng.standard_normal(4000)
    y = s + 0.3 * rng.standard_normal(4000)
    base = float(metrics.si_sdr(y, s))
    batch = metrics.si_sdr(np.stack([y, 0.01 * y, 7.0 * y]), s[None, :])
    assert batch.shape == (3,)
    np.testing.assert_allclose(batch, base, atol=1e-9)


def test_si_sdr_cap_is_the_same_at_any_output_gain(rng):
    """The +-120 dB cap follows the estimate's energy: a perfect copy reads 120 dB whether
    the model outputs it at -80 dB or +40 dB (the floor used to follow the target, so a
    quieter copy read lower: 40 dB at 1e-4)."""
    s = rng.standard_normal(4000)
    gains = np.array([1e-4, 0.01, 0.5, 1.0, 100.0])
    np.testing.assert_allclose(metrics.si_sdr(gains[:, None] * s, s[None, :]), 120.0, atol=1e-6)


def test_si_sdr_of_a_silent_estimate_is_the_floor_not_zero(rng):
    """A model that outputs silence keeps none of the snare: -120 dB, never a 0-dB score
    that would count as an improvement over a noisy input below 0 dB."""
    s = rng.standard_normal(4000)
    noisy = s + 3.0 * _orthogonal_noise(rng, s)
    assert float(metrics.si_sdr(noisy, s)) < -5.0
    assert float(metrics.si_sdr(np.zeros(4000), s)) == pytest.approx(-120.0)
    assert float(metrics.si_sdr(np.full(4000, 0.7), s)) == pytest.approx(-120.0)  # DC only


def test_metrics_refuse_empty_signals_and_onsets_without_a_position():
    empty = np.zeros(0)
    with pytest.raises(ParameterError, match="empty"):
        metrics.bleed_reduction_db(empty, empty, empty, SR)
    with pytest.raises(ParameterError, match="at least one sample"):
        metrics.si_sdr(empty, empty)
    clip = np.ones(SR)
    with pytest.raises(ParameterError, match="'sample' or a 'time'"):
        metrics.hit_level_error_db(clip, clip, SR, [{"instrument": "snare", "target": True}])


def test_si_sdr_silent_target_is_nan(rng):
    assert math.isnan(float(metrics.si_sdr(rng.standard_normal(100), np.zeros(100))))


def test_sdr_is_scale_dependent(rng):
    s = rng.standard_normal(4000)
    assert metrics.sdr(0.5 * s, s) == pytest.approx(20 * math.log10(2), abs=1e-9)
    assert metrics.sdr(s, s) > 100.0


def test_bleed_reduction_of_a_perfect_minus_40_db_gate(rng):
    clean, noisy, _ = _snare_scene(rng)
    gain = np.where(clean == 0.0, 10 ** (-40 / 20), 1.0)  # closed exactly where no snare plays
    q = metrics.between_hits_mask(noisy, clean, SR)
    assert 0.5 < q.mean() < 0.95  # the gaps, not the hits
    assert metrics.bleed_reduction_db(noisy, clean, noisy * gain, SR) == pytest.approx(40.0, abs=0.1)
    assert metrics.bleed_reduction_db(noisy, clean, noisy, SR) == pytest.approx(0.0, abs=1e-9)


def test_bleed_reduction_tacet_clip_uses_whole_clip(rng):
    bleed = 0.1 * rng.standard_normal(SR // 4)
    clean = np.zeros_like(bleed)
    assert metrics.between_hits_mask(bleed, clean, SR).all()
    assert metrics.bleed_reduction_db(bleed, clean, 0.5 * bleed, SR) == pytest.approx(6.02, abs=0.01)


def test_hit_level_error_exact_and_halved(rng):
    clean, _, onsets = _snare_scene(rng)
    exact = metrics.hit_level_error_db(clean, clean, SR, onsets)
    assert exact["hit_level_error_db"] == pytest.approx(0.0, abs=1e-9)
    assert exact["ghost_level_error_db"] == pytest.approx(0.0, abs=1e-9)
    half = metrics.hit_level_error_db(clean, 0.5 * clean, SR, onsets)
    assert half["hit_level_error_db"] == pytest.approx(6.02, abs=0.01)
    assert half["hit_level_bias_db"] == pytest.approx(-6.02, abs=0.01)
    assert half["ghost_level_error_db"] == pytest.approx(6.02, abs=0.01)


def test_hit_level_error_separates_ghost_notes(rng):
    clean, _, onsets = _snare_scene(rng)
    ducked = clean.copy()
    ghost_start = int(0.5 * SR)
    ducked[ghost_start:ghost_start + int(0.06 * SR)] *= 0.1  # only the ghost is ducked by 20 dB
    result = metrics.hit_level_error_db(clean, ducked, SR, onsets)
    assert result["ghost_level_error_db"] == pytest.approx(20.0, abs=0.01)
    assert result["ghost_level_bias_db"] == pytest.approx(-20.0, abs=0.01)
    assert result["hit_level_error_db"] == pytest.approx(10.0, abs=0.01)  # mean of 0 and 20
    assert result["hits_lost_pct"] == pytest.approx(50.0)  # the ghost, one hit of two
    assert metrics.hit_level_error_db(clean, 0.6 * clean, SR, onsets)["hits_lost_pct"] == 0.0
    assert metrics.hit_level_error_db(clean, 0.4 * clean, SR, onsets)["hits_lost_pct"] == 100.0


def test_a_hit_at_the_ghost_bound_is_a_ghost(rng):
    """SPEC 5: ghost notes are velocity <= 45, the bound included: a hit at exactly 45
    halved scores a ghost error of 6.02 dB; at 46 it is a main hit and the clip has no
    ghost."""
    clean, _, onsets = _snare_scene(rng)
    for velocity, ghost_error in ((45, 6.02), (46, math.nan)):
        bounded = [{**o, "velocity": velocity} if o["velocity"] == 30 else o for o in onsets]
        result = metrics.hit_level_error_db(clean, 0.5 * clean, SR, bounded)
        assert result["ghost_level_error_db"] == pytest.approx(ghost_error, abs=0.01, nan_ok=True)
        assert result["hit_level_error_db"] == pytest.approx(6.02, abs=0.01)


@pytest.mark.parametrize("offset, inside", [
    (-56, False),  # 3.5 ms before the onset
    (-33, False), (-32, True),  # the window opens 2 ms (32 samples) before it...
    (-16, True),  # 1 ms before
    (1279, True), (1280, False)])  # ... and closes 80 ms (1280 samples) after it
def test_a_hit_window_spans_2_ms_before_its_onset_to_80_after(rng, offset, inside):
    """A click as loud as the whole hit raises its level 3.01 dB inside the window
    ``[onset - 2 ms, onset + 80 ms)`` and not at all outside it."""
    clean, _, onsets = _snare_scene(rng)
    loud = onsets[:1]
    start = loud[0]["sample"]
    energy = np.sum(clean[start - 32:start + 1280] ** 2)
    clicked = clean.copy()
    clicked[start + offset] += math.sqrt(energy)
    errors, _ = metrics.hit_level_errors_db(clean, clicked, SR, loud)
    assert errors[0] == pytest.approx(10 * math.log10(2.0) if inside else 0.0, abs=1e-9)


def test_hit_level_error_without_ghosts_or_hits_is_nan(rng):
    clean, _, onsets = _snare_scene(rng)
    loud_only = [o for o in onsets if o["velocity"] > 45]
    result = metrics.hit_level_error_db(clean, clean, SR, loud_only)
    assert result["hit_level_error_db"] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(result["ghost_level_error_db"])
    assert math.isnan(metrics.hit_level_error_db(clean, clean, SR, [])["hit_level_error_db"])


def test_cymbal_leakage_identity_and_perfect(rng):
    clean, noisy, onsets = _snare_scene(rng)
    assert metrics.cymbal_leakage_db(noisy, clean, noisy, SR, onsets) == pytest.approx(0.0, abs=1e-9)
    assert metrics.cymbal_leakage_db(noisy, clean, clean, SR, onsets) < -100.0


def test_cymbal_leakage_measures_only_highs(rng):
    clean, noisy, onsets = _snare_scene(rng)
    from scipy import signal

    low = signal.sosfiltfilt(signal.butter(8, 1500, fs=SR, output="sos"), noisy - clean)
    assert metrics.cymbal_leakage_db(noisy, clean, clean + low, SR, onsets) < -30.0


def test_tom_kick_leakage_of_scaled_input(rng):
    clean, noisy, onsets = _snare_scene(rng)
    assert metrics.tom_kick_leakage_db(noisy, clean, 0.1 * noisy, SR, onsets) == pytest.approx(-20.0, abs=1e-6)


def _tail_into_kick(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """A snare hit at 0 (tau 80 ms) still ringing when a kick lands 300 ms later, past the
    200-ms guard: it falls below -50 dB of the clip's peak about 80 ms into the kick."""
    n = SR
    t = np.arange(n) / SR
    clean = 0.5 * np.exp(-t / 0.08) * rng.standard_normal(n)
    bleed = np.zeros(n)
    kick = int(0.3 * SR)
    bleed[kick:kick + 1600] = 0.2 * np.sin(2 * np.pi * 60 * np.arange(1600) / SR)
    onsets = [{"time": 0.0, "sample": 0, "instrument": "snare", "velocity": 100, "target": True},
              {"time": 0.3, "sample": kick, "instrument": "kick", "velocity": 100, "target": False}]
    return clean, clean + bleed, onsets


def test_tom_kick_leakage_does_not_count_a_snare_sounding_in_the_region(rng):
    """A snare ringing into a kick's region is the snare, not leakage: only the samples
    where it has fallen silent (-50 dB under the clip's peak) count, so the clean snare
    scores under the -30 dB target even beside a kick this soft, an output that keeps it
    and halves the kick about -6 dB, and one that shuts there (a closed gate) the floor:
    it leaks nothing."""
    clean, noisy, onsets = _tail_into_kick(rng)
    kick = onsets[1]["sample"]
    assert metrics.tom_kick_regions_mask(onsets, SR, noisy.size)[kick]
    assert metrics.tom_kick_leakage_db(noisy, clean, clean, SR, onsets) < -30.0
    half = metrics.tom_kick_leakage_db(noisy, clean, clean + 0.5 * (noisy - clean), SR, onsets)
    assert half == pytest.approx(20 * math.log10(0.5), abs=0.05)
    shut = metrics.tom_kick_leakage_db(noisy, clean, np.zeros_like(noisy), SR, onsets)
    assert shut == pytest.approx(-120.0)


def test_tom_kick_leakage_does_not_charge_damage_to_a_sounding_snare(rng):
    """Where the snare still sounds (above -50 dB of the clip's peak) there is more than
    tom or kick, so an output that removes the kick and halves the snare's tail there is
    not charged for the tail as leakage (it read -32 dB when the kick's 100 ms counted
    whole); SI-SDR and the hit errors are what measure damage to the snare."""
    clean, noisy, onsets = _tail_into_kick(rng)
    sounding = ~metrics.between_hits_mask(noisy, clean, SR)
    kick = onsets[1]["sample"]
    assert sounding[kick] and not sounding[kick + 1600]
    ducked = np.where(sounding, 0.5 * clean, clean)
    assert metrics.tom_kick_leakage_db(noisy, clean, ducked, SR, onsets) == (
        metrics.tom_kick_leakage_db(noisy, clean, clean, SR, onsets))


def test_tom_kick_regions_skip_snare_and_are_nan_without_free_kicks(rng):
    _, noisy, onsets = _snare_scene(rng)
    mask = metrics.tom_kick_regions_mask(onsets, SR, noisy.size)
    kick = int(0.8 * SR)
    assert mask[kick:kick + int(0.1 * SR)].all() and mask.sum() == int(0.1 * SR)
    near_snare = [o for o in onsets if o["target"]] + [
        {"time": 0.15, "sample": int(0.15 * SR), "instrument": "tom_floor", "velocity": 90, "target": False}]
    assert not metrics.tom_kick_regions_mask(near_snare, SR, noisy.size).any()
    assert math.isnan(metrics.tom_kick_leakage_db(noisy, noisy, noisy, SR, near_snare))


def _kick_under_hats(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                          list[dict]]:
    """Two kicks (-22 dB) with no snare: one struck with a closed hi-hat (-12 dB), one
    alone 600 ms later. Returns silence for the snare, the kick bleed, the hat bleed and the
    onsets."""
    n = SR * 2
    kick_bleed, hat_bleed = np.zeros(n), np.zeros(n)
    shared, alone = int(0.5 * SR), int(1.1 * SR)
    thump = 10 ** (-22 / 20) * np.sin(2 * np.pi * 60 * np.arange(4800) / SR)
    kick_bleed[shared:shared + 4800] += thump
    kick_bleed[alone:alone + 4800] += thump
    hat_bleed[shared:shared + 4800] = (10 ** (-12 / 20) * rng.standard_normal(4800)
                                       * np.exp(-np.arange(4800) / 1200))
    onsets = [{"time": 0.5, "sample": shared, "instrument": "kick", "velocity": 100, "target": False},
              {"time": 0.5, "sample": shared, "instrument": "hihat_closed", "velocity": 100,
               "target": False},
              {"time": 1.1, "sample": alone, "instrument": "kick", "velocity": 100, "target": False}]
    return np.zeros(n), kick_bleed, hat_bleed, onsets


def test_tom_kick_leakage_counts_only_where_kick_or_tom_sound_alone(rng):
    """SPEC 5: "where only toms or kick sound". A hi-hat struck with a kick was counted
    too, and being louder it made the column: an output that removed the kick and kept the
    hat read -0.4 dB (nothing removed), one that kept the kick and removed the hat -10 dB."""
    clean, kick, hat, onsets = _kick_under_hats(rng)
    noisy = clean + kick + hat
    mask = metrics.tom_kick_regions_mask(onsets, SR, noisy.size)
    assert mask.sum() == int(0.1 * SR) and mask[int(1.1 * SR)] and not mask[int(0.5 * SR)]
    no_kick = metrics.tom_kick_leakage_db(noisy, clean, clean + hat, SR, onsets)
    assert no_kick == pytest.approx(-120.0)
    no_hat = metrics.tom_kick_leakage_db(noisy, clean, clean + kick, SR, onsets)
    assert no_hat == pytest.approx(0.0, abs=1e-9)
    lone_kick = onsets[2:]
    for instrument, rings_over_the_kick in (("crash_1", True), ("cowbell", False)):
        struck = {**onsets[1], "instrument": instrument, "sample": int(0.2 * SR), "time": 0.2}
        kept = bool(metrics.tom_kick_regions_mask(lone_kick + [struck], SR, noisy.size).any())
        assert kept != rings_over_the_kick  # a crash rings 2 s, a cowbell 0.5


def test_other_bleed_takes_out_2_ms_before_its_onset_from_a_tom_kick_region():
    """Other bleed sounds from 2 ms before its onset (as a hit window opens), so a closed
    hat struck 50 ms into a kick's region ends that region 32 samples (2 ms at 16 kHz)
    before the hat's onset."""
    kick, hat = 1000, 1000 + int(0.05 * SR)
    onsets = [{"sample": kick, "instrument": "kick", "target": False},
              {"sample": hat, "instrument": "hihat_closed", "target": False}]
    region = np.flatnonzero(metrics.tom_kick_regions_mask(onsets, SR, SR))
    assert (region[0], region[-1] + 1, region.size) == (kick, hat - 32, hat - 32 - kick)


def test_pieces_struck_before_the_clip_ring_out_of_the_tom_kick_regions(rng):
    """A ride struck 0.25 s before the clip still rings over a lone kick at 1.1 s: listed
    in ``onsets_before`` (negative samples), it takes that region out. Unlisted, whole
    regions of test clips measured ride or hi-hat removal, not kick removal."""
    clean, kick, hat, onsets = _kick_under_hats(rng)
    noisy, lone_kick = clean + kick + hat, onsets[2:]
    ride = {"time": -0.25, "sample": -int(0.25 * SR), "instrument": "ride",
            "velocity": 90, "target": False}
    closed_hat = {**ride, "instrument": "hihat_closed"}  # rings 0.2 s: over by the kick
    assert metrics.tom_kick_regions_mask(lone_kick, SR, noisy.size).sum() == int(0.1 * SR)
    assert metrics.tom_kick_regions_mask(lone_kick, SR, noisy.size, earlier=[closed_hat]).sum() \
        == int(0.1 * SR)
    assert not metrics.tom_kick_regions_mask(lone_kick, SR, noisy.size, earlier=[ride]).any()
    scores = metrics.clip_metrics(noisy, clean, clean + hat, SR, lone_kick, earlier=[ride])
    assert math.isnan(scores["tom_kick_leakage_db"])
    assert metrics.clip_metrics(noisy, clean, clean + hat, SR, lone_kick)[
        "tom_kick_leakage_db"] == pytest.approx(-120.0)


def test_clip_metrics_keys_and_input_scores(rng):
    clean, noisy, onsets = _snare_scene(rng)
    same = metrics.clip_metrics(noisy, clean, noisy, SR, onsets)
    assert same["delta_si_sdr"] == pytest.approx(0.0, abs=1e-9)
    assert same["si_sdr"] == pytest.approx(same["si_sdr_in"])
    for key in ("bleed_reduction_db", "cymbal_leakage_db", "tom_kick_leakage_db"):
        assert same[key] == pytest.approx(0.0, abs=1e-9)
    assert same["hit_level_error_db"] == pytest.approx(same["hit_level_error_in_db"])
    assert same["hit_level_bias_db"] > 0  # bleed adds energy to the hits
    perfect = metrics.clip_metrics(noisy[None, :], clean[None, :], clean[None, :], SR, onsets)
    assert perfect["delta_si_sdr"] > 80 and perfect["bleed_reduction_db"] > 100
    assert set(perfect) == set(same) and all(isinstance(v, float) for v in perfect.values())


@pytest.mark.parametrize("change, message", [
    ({"envelope_ms": 0.0}, r"metrics: envelope_ms = 0.0: must be a number in \(0, 10000\]"),
    ({"envelope_ms": -10.0}, r"envelope_ms = -10.0: must be a number in \(0, 10000\]"),
    ({"envelope_ms": math.nan}, r"envelope_ms = nan: must be"),
    ({"envelope_ms": 1e12}, r"envelope_ms = 1000000000000.0: must be"),
    ({"hit_post_ms": -5.0}, r"hit_post_ms = -5.0: must be a number in \(0, 10000\]"),
    ({"hit_pre_ms": math.nan}, r"hit_pre_ms = nan: must be a number in \[0, 10000\]"),
    ({"silence_db": 20.0}, r"silence_db = 20.0: must be a number in \[-120, 0\]"),
    ({"cymbal_cutoff_hz": 30000.0}, r"cymbal_cutoff_hz = 30000.0: must be a number in "
                                    r"\[1, 24000\)"),
    ({"cymbal_cutoff_hz": 0.0}, r"cymbal_cutoff_hz = 0.0: must be"),
    ({"cymbal_filter_order": 0}, r"cymbal_filter_order = 0: must be a whole number in \[1, 16\]"),
    ({"ghost_max_velocity": 45.5}, r"ghost_max_velocity = 45.5: must be a whole number in "
                                   r"\[0, 127\]"),
    ({"tom_kick_window_ms": math.inf}, r"tom_kick_window_ms = inf: must be"),
    ({"bleed_ring_ms": (("ride", -1.0),)}, r"bleed_ring_ms\['ride'\] = -1.0: must be"),
    ({"bleed_ring_ms": ("ride",)}, r"bleed_ring_ms entry 'ride': must be an \(instrument"),
])
def test_clip_metrics_refuses_a_config_no_clip_can_be_scored_with(rng, change, message):
    """Unchecked, a hit window ending before it starts and a cutoff above Nyquist scored
    NaN without a word, and NaN, infinite or 1e12-ms windows failed deep inside."""
    clean, noisy, onsets = _snare_scene(rng)
    assert metrics.MetricConfig().validate() == metrics.DEFAULT_CONFIG
    with pytest.raises(ParameterError, match=message):
        metrics.clip_metrics(noisy, clean, clean, SR, onsets,
                             config=metrics.MetricConfig(**change))


def test_metrics_reject_multichannel_and_mismatched(rng):
    with pytest.raises(ParameterError):
        metrics.bleed_reduction_db(np.zeros((2, 10)), np.zeros((2, 10)), np.zeros((2, 10)), SR)
    with pytest.raises(ParameterError):
        metrics.si_sdr(np.zeros(10), np.zeros(11))


def test_aggregate_mean_median_and_nan():
    rows = [{"a": 1.0, "b": math.nan}, {"a": 2.0, "b": 4.0}, {"a": 9.0, "b": math.nan}]
    table = metrics.aggregate(rows)
    assert table["a"] == {"mean": 4.0, "median": 2.0, "count": 3}
    assert table["b"]["mean"] == 4.0 and table["b"]["count"] == 1
    all_nan = metrics.aggregate([{"c": math.nan}])
    assert math.isnan(all_nan["c"]["mean"]) and all_nan["c"]["count"] == 0

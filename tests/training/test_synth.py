"""Synthetic snare-mic clips: exact mixture, onsets, ghost notes, tacet bars, tuning,
determinism, files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from denoiser.errors import ParameterError
from training.bounds import check_fields
from training.errors import DatasetError
from training.grooves import (GHOST_MAX_VELOCITY, ROLE, Events, GrooveConfig, STYLES, _humanise,
                              generate_groove)
from training.kits import load_kit
from training.manifest import read_manifest
from training.oneshots import one_shot
from training.session import detect_onsets
from training.snaremic import MicConfig, bleed_path, pitch_shift
from training.synth import (SYNTH_LIMITS, SynthConfig, _finish, clip_count, clip_seed,
                            render_clip, render_dataset, render_events, write_clip)

RATE = 48000
SHORT = SynthConfig(clip_seconds=2.0, preroll_seconds=1.0)


def test_noisy_is_exactly_clean_plus_bleed(synthetic_kit):
    for seed in range(4):
        clip = render_clip(synthetic_kit, seed, SHORT)
        assert clip.noisy.dtype == np.float32 and clip.noisy.shape == (2 * RATE,)
        assert np.array_equal(clip.noisy, clip.clean + clip.bleed)
        assert np.max(np.abs(clip.noisy)) <= 10 ** (-1 / 20) + 1e-6
        assert np.max(np.abs(clip.bleed)) > 0


@pytest.mark.parametrize("style", STYLES)
def test_every_style_renders_targets_and_bleed(synthetic_kit, style):
    config = replace(SHORT, bleed_only_probability=0.0,
                     groove=replace(GrooveConfig(), tacet_bar_probability=0.0))
    clip = render_clip(synthetic_kit, 3, config, style=style)
    onsets = clip.meta["onsets"]
    assert clip.meta["style"] == style
    assert any(o["target"] for o in onsets) and any(not o["target"] for o in onsets)
    assert all(1 <= o["velocity"] <= 127 for o in onsets)
    assert all(o["sample"] == round(o["time"] * RATE) for o in onsets)


def test_pieces_struck_in_the_preroll_that_ring_into_the_clip_are_listed(synthetic_kit):
    """``onsets_before``: what the pre-roll struck that still sounds when the clip starts
    (the metrics take its ring out of the tom/kick regions), at negative samples, never
    among ``onsets``; without a pre-roll there is none."""
    config = replace(SHORT, bleed_only_probability=0.0,
                     groove=replace(GrooveConfig(), tacet_bar_probability=0.0))
    listed = 0
    for seed in range(4):
        clip = render_clip(synthetic_kit, seed, config)
        before = clip.meta["onsets_before"]
        assert all(-RATE <= o["sample"] < 0 and o["sample"] == round(o["time"] * RATE)
                   for o in before)
        assert all(o["sample"] >= 0 for o in clip.meta["onsets"])
        listed += len(before)
        bare = render_clip(synthetic_kit, seed, replace(config, preroll_seconds=0.0))
        assert bare.meta["onsets_before"] == []
    assert listed > 0


def test_onsets_match_energy_of_clean_track(synthetic_kit):
    # as recorded: a resonant snare bell can ring into a second energy rise of the
    # detector, which says nothing about the onset times under test
    config = replace(SHORT, clip_seconds=4.0, bleed_only_probability=0.0,
                     groove=replace(GrooveConfig(), flam_probability=0.0, roll_probability=0.0)
                     ).as_recorded()
    checked = 0
    for seed in range(6):
        clip = render_clip(synthetic_kit, seed, config, style="backbeat")
        targets = np.array([o["sample"] for o in clip.meta["onsets"] if o["target"]])
        detected = detect_onsets(clip.clean, RATE, rise_db=10.0, floor_db=-40.0)
        # every detected snare hit is a listed target onset (within 3 ms) ...
        for sample in detected:
            assert np.min(np.abs(targets - sample)) <= 0.003 * RATE
        # ... and every loud, isolated target onset is detected
        loud = [o["sample"] for o in clip.meta["onsets"] if o["target"] and o["velocity"] >= 100]
        for sample in loud:
            others = targets[(targets < sample) & (targets > sample - 0.15 * RATE)]
            if others.size == 0 and sample > 0.01 * RATE:
                assert np.min(np.abs(detected - sample)) <= 0.003 * RATE
                checked += 1
    assert checked >= 5


def _late_kit(kit, seconds):
    """``kit`` with ``seconds`` of silence before every one-shot, as many kits' files start."""
    pad = np.zeros(int(seconds * RATE), np.float32)
    return replace(kit, instruments=tuple(
        replace(inst, layers=tuple(replace(layer, samples=np.concatenate([pad, layer.samples]))
                                   for layer in inst.layers))
        for inst in kit.instruments))


def _first_sound(track, start):
    """The first sample from ``start`` on within 30 dB of the next 50 ms's peak."""
    part = np.abs(track[start:start + int(0.05 * RATE)])
    return start + int(np.argmax(part >= part.max() * 10 ** (-30 / 20)))


def test_onsets_mark_where_the_hit_sounds_not_where_its_file_starts(synthetic_kit):
    """A kit whose files start 12 ms before their hits (re-tuned +-6 semitones: 2**(-st/12)
    as long) marks each hit where it sounds in its track: the snare's in clean.wav, the
    kick's and the tom's in bleed.wav after their paths' delays. Marked where the file
    starts, they came 8-17 ms early (plus the 0.3-3 ms path delay for the bleed)."""
    kit = _late_kit(synthetic_kit, 0.012)
    config = replace(SynthConfig(wide_pitch_probability=1.0),
                     mic=replace(MicConfig(), room_tone_db=(-160.0, -150.0)))
    events = Events(np.array([0.5, 1.5, 2.5]),
                    np.array([ROLE["snare"], ROLE["kick"], ROLE["tom"]], np.int8),
                    np.array([127, 127, 127], np.int16), np.array([-1, -1, 0], np.int8))
    for seed in range(6):
        clean, bleed, info = render_events(kit, events, np.random.default_rng(seed), config,
                                           0.0, 3.0)
        snare, kick, tom = info["onsets"]
        assert snare["target"] and kick["instrument"] == "kick" and tom["instrument"] == "tom"
        assert abs(_first_sound(clean, int(0.49 * RATE)) - snare["sample"]) <= 0.0005 * RATE
        for onset, at in ((kick, 1.49), (tom, 2.49)):
            assert abs(_first_sound(bleed, int(at * RATE)) - onset["sample"]) <= 0.0005 * RATE
        assert all(o["sample"] == round(o["time"] * RATE) for o in info["onsets"])


def test_ghost_notes_are_quiet(synthetic_kit):
    config = replace(SHORT, clip_seconds=6.0, pitch_semitones=0.0, wide_pitch_probability=0.0,
                     decay_probability=0.0, bleed_only_probability=0.0,
                     groove=replace(GrooveConfig(), ghost_probability=0.3,
                                    flam_probability=0.0, roll_probability=0.0,
                                    tacet_bar_probability=0.0, rimshot_probability=0.0,
                                    sidestick_probability=0.0))
    ghost, loud = [], []
    for seed in range(4):
        clip = render_clip(synthetic_kit, seed, config, style="funk")
        targets = sorted(o["sample"] for o in clip.meta["onsets"] if o["target"])
        for o in clip.meta["onsets"]:
            if not o["target"] or o["instrument"] != "snare":
                continue
            s = o["sample"]
            previous = [t for t in targets if s - 0.1 * RATE < t < s]
            if previous:
                continue  # the previous hit still rings
            level = np.max(np.abs(clip.clean[s:s + int(0.01 * RATE)]))
            (ghost if o["velocity"] <= GHOST_MAX_VELOCITY else loud).append(
                (level, o["velocity"]))
    assert ghost and loud
    assert max(v for _, v in ghost) <= GHOST_MAX_VELOCITY
    ghost_db = 20 * np.log10(np.median([g for g, _ in ghost]))
    loud_db = 20 * np.log10(np.median([g for g, _ in loud]))
    assert ghost_db < loud_db - 8.0


def test_ghost_notes_are_drawn_in_the_ghost_class():
    """Ghost notes are drawn at velocity <= 45, SPEC 5's ghost class, so that the ghost
    error scores them: with flams, rolls, fills and velocity jitter off, a backbeat's snare
    hits are mains (76 or more) or ghosts, none between."""
    config = replace(GrooveConfig(), ghost_probability=0.5, flam_probability=0.0,
                     roll_probability=0.0, fill_probability=0.0, velocity_jitter=0.0,
                     rimshot_probability=0.0, sidestick_probability=0.0)
    velocities = []
    for seed in range(40):
        events = generate_groove(np.random.default_rng(seed), 0.0, 8.0, config,
                                 style="backbeat").events
        velocities.append(events.velocity[events.role == ROLE["snare"]])
    velocity = np.concatenate(velocities)
    ghosts = velocity <= GHOST_MAX_VELOCITY
    assert ghosts.sum() >= 100 and (~ghosts).sum() >= 100
    assert velocity[~ghosts].min() >= 76


def test_a_flams_grace_note_keeps_its_gap_before_its_main_hit():
    """A flam's grace note is placed 15-35 ms before its main hit and moves with it when
    humanised: jittered alone (10 ms here), half the flams left that gap and some put the
    grace note after the main hit."""
    config = replace(GrooveConfig(), flam_probability=1.0, roll_probability=0.0,
                     fill_probability=0.0, tacet_bar_probability=0.0, ghost_probability=0.0,
                     timing_jitter_ms=(10.0, 10.0))
    gaps = []
    for seed in range(10):
        events = generate_groove(np.random.default_rng(seed), -2.0, 10.0, config,
                                 style="backbeat").events
        snare = events.select(events.is_target)
        close = np.diff(snare.time) < 0.1  # a grace note and its main hit, in time order
        assert np.all(snare.velocity[:-1][close] <= snare.velocity[1:][close])
        gaps.extend(np.diff(snare.time)[close])
    assert len(gaps) >= 100 and 0.015 - 1e-9 <= min(gaps) and max(gaps) <= 0.035 + 1e-9


def test_humanising_a_flam_draws_as_before():
    """The grace note takes its main hit's jitter, not a draw of its own: every other hit
    gets the jitter it got before, so grooves without flams render as they did."""
    events = Events(np.array([0.5, 0.98, 1.0]), np.array([ROLE["hihat_closed"], ROLE["snare"],
                    ROLE["snare"]], np.int8), np.array([90, 30, 110], np.int16),
                    np.full(3, -1, np.int8))
    alone = _humanise(events, np.array([-1, -1, -1]), np.random.default_rng(5), GrooveConfig())
    flam = _humanise(events, np.array([-1, 2, -1]), np.random.default_rng(5), GrooveConfig())
    assert np.array_equal(flam.time[[0, 2]], alone.time[[0, 2]])
    assert np.array_equal(flam.velocity, alone.velocity)
    assert flam.time[2] - flam.time[1] == pytest.approx(0.02) != alone.time[2] - alone.time[1]


def _kick_ghosts(probability: float, seeds: range, style: str = "backbeat",
                 rimshots: float = 0.0) -> tuple[int, int, int, np.ndarray]:
    """Over ``seeds``' grooves of ``style`` without jitter, ghost notes, flams, rolls or
    fills: (kicks that may take a ghost stroke, of those the ones struck with one, ghost
    strokes found anywhere else, the strokes' velocities)."""
    config = replace(GrooveConfig(), kick_ghost_probability=probability, ghost_probability=0.0,
                     flam_probability=0.0, roll_probability=0.0, fill_probability=0.0,
                     timing_jitter_ms=(0.0, 0.0), velocity_jitter=0.0,
                     rimshot_probability=rimshots, sidestick_probability=0.0,
                     tacet_bar_probability=0.3)
    free = struck = elsewhere = 0
    velocities = []
    for seed in seeds:
        groove = generate_groove(np.random.default_rng(seed), 0.0, 8.0, config, style=style)
        events = groove.events
        kicks = events.time[events.role == ROLE["kick"]]
        ghost = (events.role == ROLE["snare"]) & (events.velocity <= GHOST_MAX_VELOCITY)
        ghosts = events.time[ghost]
        mains = events.time[events.is_target & ~ghost]
        resting = np.zeros(kicks.size, bool)
        for start, stop in groove.tacet:
            resting |= (kicks >= start) & (kicks < stop)
        on_main = np.isin(np.round(kicks, 6), np.round(mains, 6))
        can = kicks[~resting & ~on_main]
        free += can.size
        struck += np.isin(np.round(can, 6), np.round(ghosts, 6)).sum()
        elsewhere += (~np.isin(np.round(ghosts, 6), np.round(can, 6))).sum()
        velocities.append(events.velocity[ghost])
    return free, struck, elsewhere, np.concatenate(velocities)


def test_a_kick_can_take_a_soft_snare_stroke_struck_with_it():
    """``kick_ghost_probability``: the passage every shipped network removed (a roll's soft
    first stroke on a loud kick, docs/model.md's forty-first round) wherever a kick is
    played: each kick takes a ghost stroke (velocity 12-45) with that probability, never
    in a tacet bar (the snare rests) nor on a snare hit, a blast's rimshots included; at 0
    (the default) no groove has one."""
    free, struck, elsewhere, velocity = _kick_ghosts(1.0, range(20))
    assert free >= 100 and struck == free and elsewhere == 0
    assert velocity.min() >= 12 and velocity.max() <= 45
    assert velocity.min() < 18 and velocity.max() > 39  # the whole ghost class
    free, struck, elsewhere, _ = _kick_ghosts(0.5, range(20))
    assert 0.35 * free <= struck <= 0.65 * free and elsewhere == 0
    free, struck, elsewhere, _ = _kick_ghosts(0.0, range(20))
    assert free >= 100 and struck == 0 and elsewhere == 0
    free, struck, elsewhere, _ = _kick_ghosts(1.0, range(10), style="blast", rimshots=1.0)
    assert free >= 50 and struck == free and elsewhere == 0


@pytest.mark.parametrize("seed, summary", [(0, (143, 660.048163, 11265)),
                                           (1, (269, 1209.0572, 19048)),
                                           (2, (71, 315.838176, 6198))])
def test_default_grooves_are_the_ones_datasets_were_rendered_with(seed, summary):
    """The default groove of a seed (hits, summed times, summed velocities, as measured
    before ``kick_ghost_probability`` existed): an option that is off draws nothing, so a
    dataset rendered from a seed stays the dataset it was."""
    events = generate_groove(np.random.default_rng(seed), -1.0, 10.0, GrooveConfig()).events
    assert (len(events), round(float(events.time.sum()), 6), int(events.velocity.sum())) == \
        pytest.approx(summary, abs=1e-6)


@pytest.mark.parametrize("kick_ghosts", [0.0, 1.0])
def test_tacet_bars_have_a_silent_target(synthetic_kit, kick_ghosts):
    """The snare rests in a tacet bar, also where every kick takes a ghost stroke: the
    stroke on the kick that ends the bar, humanised a few ms early, sounded inside it."""
    config = replace(SHORT, clip_seconds=8.0, bleed_only_probability=0.0,
                     groove=replace(GrooveConfig(), tacet_bar_probability=0.5,
                                    bpm_range=(60.0, 90.0), kick_ghost_probability=kick_ghosts))
    found = 0
    for seed in range(10):
        clip = render_clip(synthetic_kit, seed, config, style="backbeat")
        peak = np.max(np.abs(clip.clean))
        for start, stop in clip.meta["tacet"]:
            a, b = int(max(0.0, start + 1.2) * RATE), int(min(stop, 8.0) * RATE)  # tails ring out
            if b - a < 0.3 * RATE:
                continue
            assert np.max(np.abs(clip.clean[a:b])) < 1e-4 * peak
            assert np.sqrt(np.mean(clip.bleed[a:b] ** 2)) > 1e-3 * peak  # the band plays on
            assert not any(o["target"] and start <= o["time"] < stop for o in clip.meta["onsets"])
            found += 1
    assert found >= 2


def test_bleed_only_clip(synthetic_kit):
    clip = render_clip(synthetic_kit, 1, replace(SHORT, bleed_only_probability=1.0))
    assert clip.meta["bleed_only"]
    assert np.max(np.abs(clip.clean)) < 1e-6
    assert np.max(np.abs(clip.bleed)) > 0.05
    assert not any(o["target"] for o in clip.meta["onsets"])


def test_a_clip_without_snare_is_levelled_as_if_a_full_snare_hit_were_there():
    """The same bleed, scaled with a full snare hit beside it and alone, gets the same gain:
    a tacet passage of a track the engine levels whole keeps its bleed under the snare's
    peaks. Scaled to its own peak, the bleed alone came out 20 dB louder here."""
    bleed = (0.1 * np.sin(np.arange(RATE) * 0.05)).astype(np.float32)
    bleed[:200] = 0.0
    hit = np.zeros(RATE, np.float32)
    hit[100] = 1.0  # a full snare hit's peak before output scaling
    _, _, with_snare, gain = _finish(hit, bleed, np.random.default_rng(3), SHORT)
    _, clean, alone, gain_alone = _finish(np.zeros(RATE, np.float32), bleed,
                                          np.random.default_rng(3), SHORT)
    assert gain_alone == pytest.approx(gain) and -12.0 <= gain <= -1.0
    assert np.array_equal(alone, with_snare) and not np.any(clean)


def test_bleed_only_clips_keep_their_bleed_under_a_snare_hits_level(synthetic_kit):
    config = replace(SHORT, bleed_only_probability=1.0)
    for seed in range(6):
        clip = render_clip(synthetic_kit, seed, config)
        gain = clip.meta["output_gain_db"]
        assert -12.0 <= gain <= -1.0  # the drawn peak level of a full snare hit
        assert np.max(np.abs(clip.bleed)) < 10 ** (gain / 20)


def test_a_polarity_flip_negates_the_whole_clip(synthetic_kit):
    """The flip is the snare mic's: the same seed with flip probability 1 instead of 0 gives
    the exact negation of the clip, snare and bleed alike, so ``noisy = clean + bleed``
    still holds and the target stays the input's snare."""
    def clip(flip: float):
        return render_clip(synthetic_kit, 7, replace(
            SHORT, mic=replace(MicConfig(), polarity_flip_probability=flip)))

    kept, flipped = clip(0.0), clip(1.0)
    assert (kept.meta["polarity"], flipped.meta["polarity"]) == (1, -1)
    assert np.any(kept.clean) and np.any(kept.bleed)
    for track in ("clean", "bleed", "noisy"):
        assert np.array_equal(getattr(flipped, track), -getattr(kept, track)), track


@pytest.mark.parametrize("semitones", [-3.0, 3.0, 7.0])
def test_semitone_resampling_scales_duration(semitones):
    samples = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    shifted = pitch_shift(samples, semitones, RATE)
    assert shifted.size == pytest.approx(RATE * 2 ** (-semitones / 12), abs=2)


def test_bleed_path_delay_and_gain():
    impulse = np.zeros(4800, np.float32)
    impulse[100] = 1.0
    flat = np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    out = bleed_path(impulse, flat, -6.0, delay=37.4)
    response = out[100:]
    # all-pass delay: energy kept (times the gain), centre of mass at the requested delay
    assert np.sum(response**2) == pytest.approx(10 ** (-6 / 10), rel=1e-3)
    assert np.sum(np.arange(response.size) * response) / np.sum(response) == pytest.approx(
        37.4, abs=0.05)


def test_same_seed_same_clip_and_groove_in_range(synthetic_kit):
    a, b = render_clip(synthetic_kit, 11, SHORT), render_clip(synthetic_kit, 11, SHORT)
    assert np.array_equal(a.noisy, b.noisy) and a.meta == b.meta
    c = render_clip(synthetic_kit, 12, SHORT)
    assert not np.array_equal(a.noisy[: c.noisy.size], c.noisy)
    assert clip_seed(5, 0) != clip_seed(5, 1) and clip_seed(5, 1) == clip_seed(5, 1)
    groove = generate_groove(np.random.default_rng(0), -1.0, 30.0)
    assert 60 <= groove.bpm <= 220
    assert np.all(np.diff(groove.events.time) >= 0)
    assert groove.events.time.min() >= -1.0 and groove.events.time.max() < 30.0


def test_write_clip_round_trip(synthetic_kit, tmp_path):
    clip = render_clip(synthetic_kit, 2, SHORT)
    folder = write_clip(clip, tmp_path / "clip")
    for name in ("noisy", "clean", "bleed"):
        data, rate = sf.read(folder / f"{name}.wav", dtype="float32")
        assert rate == RATE and sf.info(folder / f"{name}.wav").subtype == "FLOAT"
        assert np.array_equal(data, getattr(clip, name))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["sample_rate"] == RATE and meta["seed"] == 2 and meta["kit"] == synthetic_kit.name
    assert {"time", "sample", "instrument", "velocity", "target"} <= set(meta["onsets"][0])


@pytest.fixture(scope="module")
def second_kit(tmp_path_factory):
    """Another kit whose instruments carry their own names, so a clip's meta tells
    which kit each piece came from."""
    from training.kits import load_kit
    from training.oneshots import write_synthetic_kit

    kit = load_kit(write_synthetic_kit(tmp_path_factory.mktemp("kit2") / "other", seed=7,
                                       velocities=(0.3, 1.0), name="other kit"))
    return replace(kit, instruments=tuple(replace(inst, name=f"other {inst.name}")
                                          for inst in kit.instruments))


def test_cross_kit_clip_takes_snare_and_bleed_from_different_kits(synthetic_kit, second_kit):
    config = replace(SHORT, bleed_only_probability=0.0, cross_kit_probability=1.0)
    pairs = set()
    for seed in range(6):
        clip = render_clip([synthetic_kit, second_kit], seed, config)
        snare_kit, bleed_kit = clip.meta["kit"], clip.meta["bleed_kit"]
        pairs.add((snare_kit, bleed_kit))
        assert snare_kit != bleed_kit
        assert np.array_equal(clip.noisy, clip.clean + clip.bleed)
        for role, names in clip.meta["instruments"].items():
            from_other = [name.startswith("other ") for name in names]
            source = snare_kit if role in ("snare", "rimshot", "sidestick") else bleed_kit
            assert all(from_other) if source == "other kit" else not any(from_other), role
    assert pairs == {("debleed synthetic kit", "other kit"), ("other kit", "debleed synthetic kit")}
    never = replace(config, cross_kit_probability=0.0)
    for seed in range(4):
        meta = render_clip([synthetic_kit, second_kit], seed, never).meta
        assert meta["kit"] == meta["bleed_kit"]


def test_one_kit_given_twice_renders_as_recorded(synthetic_kit, second_kit):
    """Two paths to one kit load as one cached object: the other-kit draw must pick by
    position, or it finds no other kit (an IndexError, before the fix)."""
    config = replace(SHORT, bleed_only_probability=0.0, cross_kit_probability=1.0)
    for seed in range(4):
        meta = render_clip([synthetic_kit, synthetic_kit], seed, config).meta
        assert meta["kit"] == meta["bleed_kit"] == "debleed synthetic kit"
    mixed = [render_clip([synthetic_kit, synthetic_kit, second_kit], seed, config).meta
             for seed in range(12)]
    assert {(m["kit"], m["bleed_kit"]) for m in mixed} >= {
        ("debleed synthetic kit", "other kit"), ("other kit", "debleed synthetic kit")}


def test_snare_bell_changes_only_the_snare_tone(synthetic_kit):
    from training.snaremic import MicConfig, peak_sos
    from scipy import signal

    # the bell itself: +8 dB at its centre, unity far away
    sos = peak_sos(1000.0, 8.0, 1.0, RATE)
    _, response = signal.sosfreqz(sos, worN=[50.0, 1000.0, 20000.0], fs=RATE)
    assert 20 * np.log10(np.abs(response)) == pytest.approx([0.0, 8.0, 0.0], abs=0.3)

    plain = replace(SHORT, bleed_only_probability=0.0, mic=MicConfig(snare_eq_probability=0.0))
    always = replace(plain, mic=MicConfig(snare_eq_probability=1.0))
    for seed in range(3):
        a, b = render_clip(synthetic_kit, seed, plain), render_clip(synthetic_kit, seed, always)
        assert a.meta["snare_eq"] is False and b.meta["snare_eq"] is True
        assert not np.allclose(a.clean, b.clean)
        # bleed draws come before the bell, so the bleed is the same up to the output level
        scale = 10 ** ((b.meta["output_gain_db"] - a.meta["output_gain_db"]) / 20)
        assert np.allclose(a.bleed * scale, b.bleed, atol=2e-3 * np.max(np.abs(b.bleed)))


def test_dry_snare_darkens_the_snare():
    """With the low-pass always on, the snare colouring removes the top octave."""
    from scipy import signal

    from training.snaremic import MicConfig, snare_colouring

    dry = MicConfig(dry_snare_probability=1.0, snare_eq_db=(0.0, 0.0))
    plain = MicConfig(dry_snare_probability=0.0, snare_eq_db=(0.0, 0.0))
    for seed in range(4):
        sos = snare_colouring(np.random.default_rng(seed), RATE, dry)
        _, response = signal.sosfreqz(sos, worN=[200.0, 12000.0], fs=RATE)
        low, high = 20 * np.log10(np.abs(response))
        assert abs(low) < 0.5 and high < -12.0
        flat = snare_colouring(np.random.default_rng(seed), RATE, plain)
        assert flat.shape == (1, 6)  # the bell alone


def test_a_short_decay_range_shortens_the_snare(synthetic_kit):
    """``decay_seconds`` (settable as ``--synth '{"decay_seconds": [lo, hi]}'``) damps the
    target: the same seed with 20 ms decays keeps far less energy per peak than with 2 s."""
    from training.config import synth_config_with

    always = {"decay_probability": 1.0, "bleed_only_probability": 0.0,
              "clip_seconds": 2.0, "preroll_seconds": 1.0}
    tight = synth_config_with({**always, "decay_seconds": [0.02, 0.02]})
    loose = synth_config_with({**always, "decay_seconds": [2.0, 2.0]})
    assert tight.decay_seconds == (0.02, 0.02)
    for seed in range(3):
        short, long = render_clip(synthetic_kit, seed, tight), render_clip(synthetic_kit, seed, loose)
        fill = [np.sum(c.clean**2) / np.max(np.abs(c.clean)) ** 2 for c in (short, long)]
        assert fill[0] < 0.5 * fill[1]


@pytest.mark.parametrize("hours, config, message", [
    (float("nan"), SHORT, "--hours must be a positive finite number"),
    (float("inf"), SHORT, "--hours must be a positive finite number"),
    (0.001, replace(SHORT, clip_seconds=0.1), "--clip-seconds must be between 0.5 and 600"),
    (0.001, replace(SHORT, clip_seconds=float("nan")), "--clip-seconds must be between"),
    (0.001, replace(SHORT, clip_seconds=True), "--clip-seconds must be between 0.5 and 600, got True"),
    (0.001, replace(SHORT, clip_seconds="10"), "--clip-seconds must be between 0.5 and 600, got 10"),
])
def test_render_dataset_refuses_absurd_sizes(synthetic_kit_dir, tmp_path, hours, config, message):
    """NaN or infinite hours used to crash converting the clip count; clips shorter than
    the CLI's minimum were rendered when the library was called directly."""
    with pytest.raises(DatasetError, match=message):
        render_dataset([synthetic_kit_dir], tmp_path / "out", hours, seed=0, config=config)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    ({"sample_rate": 7}, r"synth: sample_rate = 7: must be 48000, the kits' rate"),
    ({"pitch_semitones": 300.0}, r"synth: pitch_semitones = 300.0: must be a number in \[0, 24\]"),
    ({"preroll_seconds": float("nan")}, r"preroll_seconds = nan: must be a number in \[0, 10\]"),
    ({"bleed_only_probability": 2.0}, r"bleed_only_probability = 2.0: must be a probability in "
                                      r"\[0, 1\]"),
    ({"velocity_exponent": True}, r"velocity_exponent = True: must be a number in \[0, 8\]"),
    ({"decay_seconds": (0.0, 0.0)}, r"decay_seconds = \(0.0, 0.0\): must be \[low, high\], "
                                    "finite, low <= high, both > 0"),
    ({"peak_dbfs": (20.0, 30.0)}, r"peak_dbfs = \(20.0, 30.0\): .* both <= 0"),
    ({"peak_dbfs": (-1.0, -12.0)}, r"peak_dbfs = \(-1.0, -12.0\): .* low <= high"),
    ({"floor_dbfs": (-200.0, -100.0)}, r"floor_dbfs = \(-200.0, -100.0\): must lie within "
                                       r"\[-160, 0\]"),
    ({"groove": replace(GrooveConfig(), bpm_range=(220.0, 60.0))},
     r"^synth: groove.bpm_range = \(220.0, 60.0\): must be \[low, high\], finite, low <= high$"),
    ({"groove": replace(GrooveConfig(), bpm_range=(0.0, 0.0))},
     r"^synth: groove.bpm_range = \(0.0, 0.0\): must lie within \[10, 600\]$"),
    ({"groove": replace(GrooveConfig(), ghost_probability=-1.0)},
     r"^synth: groove.ghost_probability = -1.0: must be a probability in \[0, 1\]$"),
    ({"groove": replace(GrooveConfig(), velocity_jitter=float("nan"))},
     r"^synth: groove.velocity_jitter = nan: must be a number in \[0, 127\]$"),
    ({"groove": replace(GrooveConfig(), timing_jitter_ms=(1e9, 1e9))},
     r"^synth: groove.timing_jitter_ms = .*: must lie within \[0, 100\]$"),
    ({"groove": replace(GrooveConfig(), style_weights={"polka": 1.0})},
     r"^synth: groove.style_weights = \{'polka': 1.0\}: must be a dict with some of the keys "
     r"backbeat, shuffle"),
    ({"groove": replace(GrooveConfig(), style_weights={"funk": 0.0})},
     r"^synth: groove.style_weights = \{'funk': 0.0\}: must weigh some style above 0$"),
    ({"groove": replace(GrooveConfig(), style_weights={"funk": -1.0})},
     r"^synth: groove.style_weights\['funk'\] = -1.0: must be a number in \[0, 1e\+06\]$"),
    ({"mic": replace(MicConfig(), lowpass_probability=-0.5)},
     r"^synth: mic.lowpass_probability = -0.5: must be a probability in \[0, 1\]$"),
    ({"mic": replace(MicConfig(), room_decay_ms=(1e7, 1e7))},
     r"^synth: mic.room_decay_ms = .*: must lie within \[1, 500\]$"),
    ({"mic": replace(MicConfig(), lowpass_hz=(30000.0, 40000.0))},
     r"^synth: mic.lowpass_hz = .*: must lie within \[20, 20000\]$"),
    ({"mic": replace(MicConfig(), mic_eq_db="loud")},
     r"^synth: mic.mic_eq_db = 'loud': must be \[low, high\]"),
    ({"mic": replace(MicConfig(), sidestick_gain_db=float("nan"))},
     r"^synth: mic.sidestick_gain_db = nan: must be a number in \[-40, 20\]$"),
    ({"mic": replace(MicConfig(), gain_db={"kick": (-30.0, -15.0)})},
     r"^synth: mic.gain_db = \{'kick': .*\}: must be a dict with all of the keys hihat, cymbal"),
    ({"mic": replace(MicConfig(), gain_db={**MicConfig().gain_db, "tom": (float("nan"),) * 2})},
     r"^synth: mic.gain_db\['tom'\] = \(nan, nan\): must be \[low, high\]"),
    ({"mic": {"lowpass_probability": 0.1}},
     r"^synth: mic = \{'lowpass_probability': 0.1\}: must be a MicConfig$"),
])
def test_render_dataset_and_render_clip_refuse_a_config_no_clip_can_have(
        synthetic_kit, synthetic_kit_dir, tmp_path, change, message):
    """Unchecked from Python, these failed inside the first clip (a MemoryError for 300
    semitones or a 1e7 ms room, a ValueError from numpy for a reversed tempo range, a
    ZeroDivisionError for 0 bpm, a KeyError for an unknown style or a missing gain family)
    or rendered without a word: NaN clips (a 0 s decay), clips peaking at +25 dBFS, a
    negative probability, a NaN jitter, a jitter that threw every hit out of the clip."""
    config = replace(SHORT, **change)
    with pytest.raises(ParameterError, match=message):
        render_dataset([synthetic_kit_dir], tmp_path / "out", 2 / 3600, seed=0, config=config)
    with pytest.raises(ParameterError, match=message):
        render_clip(synthetic_kit, 0, config)
    assert list(tmp_path.iterdir()) == []


def test_check_fields_leaves_a_skipped_field_to_the_caller():
    """``SynthConfig.validate`` checks its clip length with ``check_clip_seconds`` (its own
    bounds and message), so the shared field check passes over it when told to."""
    config = replace(SHORT, clip_seconds=-1.0)
    check_fields("synth:", config, SYNTH_LIMITS, signed=True, skip=("clip_seconds",))
    with pytest.raises(ParameterError, match=r"^synth: clip_seconds = -1.0: must be a finite "
                                             r"number >= 0$"):
        check_fields("synth:", config, SYNTH_LIMITS, signed=True)


def test_nested_settings_at_their_limits_still_render(synthetic_kit):
    """The limits refuse only what no clip can have: no jitter, the slowest and fastest
    tempo, a short room and one style are clips as before."""
    config = replace(SHORT, groove=replace(GrooveConfig(), timing_jitter_ms=(0.0, 0.0),
                                           bpm_range=(10.0, 600.0), style_weights={"funk": 1.0}),
                     mic=replace(MicConfig(), room_decay_ms=(1.0, 1.0), delay_ms=(0.05, 50.0)))
    clip = render_clip(synthetic_kit, 1, config)
    assert clip.meta["style"] == "funk" and np.all(np.isfinite(clip.noisy))


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_a_seed_numpy_cannot_take_is_refused_before_rendering(synthetic_kit_dir, tmp_path, seed):
    with pytest.raises(ParameterError, match=f"seed = {seed!r}: must be a whole number >= 0"):
        render_dataset([synthetic_kit_dir], tmp_path / "out", 2 / 3600, seed=seed, config=SHORT)
    assert list(tmp_path.iterdir()) == []


def test_the_configs_debleed_renders_with_are_valid():
    from training.bench import BenchConfig, synth_config
    from training.demo import DEMO_CONFIG

    for config in (SynthConfig(), SynthConfig().as_recorded(), DEMO_CONFIG, SHORT,
                   synth_config(BenchConfig()), synth_config(BenchConfig(), floor=True)):
        assert config.validate() is config


def test_clip_count_of_more_hours_than_a_float_holds_is_an_error():
    assert clip_count(5 / 3600, 1.0) == 5
    with pytest.raises(DatasetError, match="more audio than any disk holds"):
        clip_count(1e306, 1.0)


def _tom_kit(folder, tom_names):
    """A kit with a snare, kick and hi-hat and three toms named ``tom_names`` that share
    tom.wav at pitchOffsets 0, -4 and -8 (as kits reuse one tom sample), no side stick."""
    folder.mkdir()
    shots = {"snare": ("snare", 190.0, 0.16, 0.6), "kick": ("kick", 55.0, 0.3, 0.6),
             "hat": ("metal", 7000.0, 0.05, 0.3), "tom": ("tom", 150.0, 0.4, 1.0)}
    for stem, (kind, tune, decay, length) in shots.items():
        sf.write(folder / f"{stem}.wav", one_shot(kind, tune, decay, length, 1.0), RATE)

    def instrument(name, stem, offset=0):
        return (f"<instrument><name>{name}</name><pitchOffset>{offset}</pitchOffset>"
                f"<instrumentComponent><layer><filename>{stem}.wav</filename><min>0</min>"
                "<max>1</max></layer></instrumentComponent></instrument>")

    toms = "".join(instrument(name, "tom", offset)
                   for name, offset in zip(tom_names, (0, -4, -8)))
    (folder / "drumkit.xml").write_text(
        '<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>Toms</name>'
        "<instrumentList>" + instrument("Snare", "snare") + instrument("Kick", "kick")
        + instrument("Hat Closed", "hat") + toms + "</instrumentList></drumkit_info>")
    return load_kit(folder)


def test_toms_named_alike_are_three_drums(tmp_path):
    """Three <instrument>s all named "Tom" at three pitches were keyed by name: every hit
    played the first one rendered, and the meta held one "Tom". They now render exactly
    as the same kit with three names, and keep three readable names."""
    alike = _tom_kit(tmp_path / "alike", ("Tom", "Tom", "Tom"))
    named = _tom_kit(tmp_path / "named", ("Tom 1", "Tom 2", "Tom 3"))
    config = replace(SHORT, bleed_only_probability=0.0)
    played = set()
    for seed in range(4):
        a = render_clip(alike, seed, config, style="fills")
        b = render_clip(named, seed, config, style="fills")
        assert np.array_equal(a.noisy, b.noisy) and np.array_equal(a.clean, b.clean)
        assert a.meta["instruments"]["tom"] == ["Tom", "Tom #2", "Tom #3"]
        tuned = {name for name in a.meta["tuning_semitones"] if name.startswith("Tom")}
        assert tuned == {name for name in a.meta["paths"] if name.startswith("Tom")}
        played |= tuned
    assert played == {"Tom", "Tom #2", "Tom #3"}


@pytest.mark.parametrize("role, gain_db", [("sidestick", MicConfig().sidestick_gain_db),
                                           ("rimshot", MicConfig().rimshot_gain_db)])
@pytest.mark.parametrize("procedural, player", [(1.0, "procedural snare"), (0.0, "Snare")])
def test_a_kit_without_a_side_stick_or_rimshot_plays_them_on_its_snare(tmp_path, procedural,
                                                                       player, role, gain_db):
    """Side-stick backbeats (a tenth of the grooves, GM note 37) on a kit with no side
    stick (BJA_Pacific of the benchmark's held-out set, say) were dropped: the clip lost
    its backbeat. The snare plays them, at ``sidestick_gain_db`` below a hit, the procedural
    one as it replaces the kit's snare in every articulation, or the kit's own. A kit with
    no rimshot plays its rimshots alike, ``rimshot_gain_db`` (+3 dB) above a hit."""
    kit = _tom_kit(tmp_path / "kit", ("Tom", "Tom", "Tom"))  # no side stick, no rimshot
    config = SynthConfig(procedural_snare_probability=procedural, pitch_semitones=0.0,
                         wide_pitch_probability=0.0, decay_probability=0.0)
    events = Events(np.array([0.2, 1.2]), np.array([ROLE["snare"], ROLE[role]], np.int8),
                    np.array([100, 100], np.int16), np.array([-1, -1], np.int8))
    clean, _, info = render_events(kit, events, np.random.default_rng(3), config, -0.5, 2.5)
    assert [o["instrument"] for o in info["onsets"] if o["target"]] == ["snare", role]
    hit, other = (np.max(np.abs(clean[int(t * RATE):int((t + 1.0) * RATE)])) for t in (0.2, 1.2))
    assert other / hit == pytest.approx(10 ** (gain_db / 20), rel=0.02)
    assert info["instruments"][role] == [player]


def test_a_small_dataset_on_a_nearly_full_disk_is_sized_in_mb(tmp_path, monkeypatch):
    """Below 1 GB the sizes read "need about 0.0 GB; ... has 0.0 GB free"."""
    import shutil
    from collections import namedtuple

    from training.synth import check_disk_space

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 12, 0, 1_000_000))
    with pytest.raises(DatasetError) as refused:  # 3 float32 WAVs of 48 000 samples + meta
        check_disk_space(tmp_path / "out", 4, SynthConfig(clip_seconds=1.0))
    assert str(refused.value) == f"4 clips need about 2.4 MB; {tmp_path} has 1.0 MB free"


def test_a_dataset_past_a_gigabyte_is_sized_in_gb(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from training.synth import check_disk_space

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 12, 0, 3 * 10 ** 9))
    with pytest.raises(DatasetError) as refused:
        check_disk_space(tmp_path / "out", 10_000, SynthConfig(clip_seconds=4.0))
    assert str(refused.value) == f"10000 clips need about 23.2 GB; {tmp_path} has 3.0 GB free"


def test_data_docs_say_what_train_synth_sets_and_how_procedural_snares_sound():
    """docs/data.md said ``train --synth`` "sets the same options as `dataset synth`", which
    has --midi and --as-recorded (and the snare EQ) that it cannot set, and that procedural
    snares are "tuned 140-480 Hz", while every piece is then re-tuned by up to +-3
    semitones (+-6 with wide pitch)."""
    import ast
    from pathlib import Path

    from denoiser.errors import ParameterError
    from training.config import synth_config_with
    from training.modaldrums import ModalDrumRanges

    text = " ".join((Path(__file__).parents[2] / "docs" / "data.md").read_text().split())
    sentence = text[text.index("--synth JSON`"):text.index("`training.dataset.ClipFolder`")]
    with pytest.raises(ParameterError) as refused:
        synth_config_with({"midi": ["groove.mid"]})
    known = ast.literal_eval(str(refused.value).split("known: ")[1])
    assert [name for name in known if f"`{name}`" not in sentence] == []
    assert all(word in sentence for word in ("`midi`", "`as_recorded`", "snare EQ"))
    low, high = ModalDrumRanges().fundamental_hz
    config = SynthConfig()
    for span in (config.pitch_semitones, config.wide_pitch_semitones):
        sounding = f"{low * 2 ** (-span / 12):.0f}-{high * 2 ** (span / 12):.0f} Hz"
        assert sounding in text


def test_a_finished_render_lets_its_workers_end_without_a_signal(synthetic_kit_dir, tmp_path,
                                                                monkeypatch):
    """``render_dataset(jobs=2)`` that rendered every clip closes its pool and waits for the
    workers to take their end-of-work sentinel, so none is sent SIGTERM: a worker that took
    it just before blocking on the pool's task lock slept through it, and the run waited on
    it for ever after its last clip (2 runs of 6 of ``dataset synth --jobs 2``)."""
    import multiprocessing.process

    terminated: list[int] = []
    terminate = multiprocessing.process.BaseProcess.terminate

    def record(process: multiprocessing.process.BaseProcess) -> None:
        terminated.append(process.pid)
        terminate(process)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "terminate", record)
    out = render_dataset([synthetic_kit_dir], tmp_path / "set", hours=6 * 1.0 / 3600, seed=1,
                         config=replace(SHORT, clip_seconds=1.0), jobs=2)
    assert len(read_manifest(out)["clips"]) == 6 and terminated == []


def run_till_it_ends(script: str, timeout: float = 60.0) -> tuple[str, str]:
    """Run ``script`` in a Python of its own, in a process group of its own; return its
    stdout and stderr. Still running after ``timeout`` (hung), it and its workers are
    killed and the test fails."""
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        return run.communicate(timeout=timeout)
    finally:
        if run.poll() is None:  # hung: end it and its workers, then fail
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_a_failed_render_ends_a_worker_that_slept_through_the_pools_sigterm(tmp_path):
    """A worker fails a clip: ``render_dataset(jobs=2)`` ends its pool and raises. A worker
    that took the pool's one SIGTERM just before blocking on the pool's task lock slept
    through it (its Python handler never ran) and the run waited on it for ever (4 of 30
    runs failing at once with --jobs 4); SIGTERM is sent again until every worker has
    ended. Here each worker ignores the first SIGTERM, as such a worker does, and is busy
    with a slow clip as the run fails (the first clip fails at once), so that the stopping
    pool holds the task lock before either worker asks it for more: without the second
    SIGTERM both then wait on that lock for ever, every time."""
    script = f"""
import errno, signal, sys, time
from dataclasses import replace
import training.synth as synth
from denoiser import outfiles
from training.oneshots import write_synthetic_kit

def deaf_to_the_first_sigterm():
    outfiles.leave_signals_to_parent()
    signal.signal(signal.SIGTERM, lambda *_: signal.signal(signal.SIGTERM, outfiles._end_quietly))

render = synth._render_one
def fail_the_first(job):
    if job[0] == 0:
        raise OSError(errno.ENOSPC, "No space left on device")
    time.sleep(0.5)
    return render(job)

synth.leave_signals_to_parent = deaf_to_the_first_sigterm
synth._render_one = fail_the_first
kit = write_synthetic_kit({str(tmp_path / "kit")!r}, velocities=(1.0,))
try:
    synth.render_dataset([kit], {str(tmp_path / "set")!r}, hours=12 / 3600, seed=1,
                         config=replace(synth.SynthConfig(), clip_seconds=1.0), jobs=2)
except OSError as exc:
    print("raised:", exc)
"""
    out, err = run_till_it_ends(script)
    assert out.strip() == "raised: [Errno 28] No space left on device", err
    assert not (tmp_path / "set").exists()


def render_with_workers_killed(tmp_path, patched: str, clips: int) -> tuple[str, str]:
    """Run ``render_dataset(jobs=2)`` of ``clips`` 1-s clips of a synthetic kit in a Python of
    its own (``run_till_it_ends``), its ``_render_one`` replaced by the function ``patched``
    defines (``patched(job)``, which has ``render``, the real one, and ``os``, ``signal``,
    ``time`` and ``Path`` at hand); the child prints "raised: <message>" for a DatasetError."""
    script = f"""
import os, signal, time
from dataclasses import replace
from pathlib import Path
import training.synth as synth
from training.errors import DatasetError
from training.oneshots import write_synthetic_kit

render = synth._render_one
{textwrap.dedent(patched)}
synth._render_one = patched
kit = write_synthetic_kit({str(tmp_path / "kit")!r}, velocities=(1.0,))
try:
    synth.render_dataset([kit], {str(tmp_path / "set")!r}, hours={clips} / 3600, seed=1,
                         config=replace(synth.SynthConfig(), clip_seconds=1.0), jobs=2)
except DatasetError as exc:
    print("raised:", exc)
"""
    return run_till_it_ends(script)


def worker_error(how: str) -> str:
    """The pattern of the one line a render whose worker ended ``how`` prints."""
    return (rf"raised: render worker \d+ {how} before its clips were done "
            r"\(out of memory\? try fewer --jobs or shorter clips\)\n")


@pytest.mark.parametrize("signum, how", [
    ("signal.SIGKILL", "was killed by SIGKILL"),
    ("signal.SIGTERM", "was stopped by SIGTERM"),
    ("signal.SIGRTMIN + 1", f"was killed by signal {signal.SIGRTMIN + 1}"),  # Python names it not
], ids=["SIGKILL", "SIGTERM", "SIGRTMIN+1"])
def test_a_render_whose_worker_is_killed_fails_instead_of_waiting_for_ever(tmp_path, signum,
                                                                          how):
    """A worker killed alone mid-clip (SIGKILL, as the out-of-memory killer sends it, or
    SIGTERM, as earlyoom, nohang and a plain ``kill PID`` send it first): the pool starts
    another in its place but never hands out the clips it held, and
    ``render_dataset(jobs=2)`` waited for them for ever. SIGTERM ends a worker with status
    0, as the command's own group signal does, and was taken for it. The run now stops
    within a second or two, with a one-line error naming the signal, and leaves no dataset
    behind."""
    out, err = render_with_workers_killed(tmp_path, f"""
        def patched(job):
            if job[0] == 2:
                os.kill(os.getpid(), {signum})
            return render(job)
        """, clips=12)
    assert re.fullmatch(worker_error(how), out), (out, err)
    assert not (tmp_path / "set").exists()


def test_a_render_whose_idle_worker_is_killed_stops_though_it_held_the_task_lock(tmp_path):
    """A worker killed while it waited for a clip (SIGKILL to an idle worker, the out-of-
    memory killer's pick) dies holding the lock of the pool's task queue, which a waiting
    worker holds till a task comes. ``Pool.terminate`` takes that lock, without a timeout,
    to empty the queue, and the run, stopping with its one-line error, waited there for
    ever. Here the last clip is slow, and as it renders its worker SIGKILLs the other one,
    idle after every other clip."""
    done = tmp_path / "done"
    done.mkdir()
    out, err = render_with_workers_killed(tmp_path, f"""
        def patched(job):
            done = Path({str(done)!r})
            if job[0] == 5:  # the others rendered, the other worker waiting for a task
                while len(list(done.iterdir())) < 5:
                    time.sleep(0.05)
                time.sleep(0.5)
                parent = os.getppid()
                for pid in open(f"/proc/{{parent}}/task/{{parent}}/children").read().split():
                    if int(pid) != os.getpid():
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(30)
            row = render(job)
            (done / str(job[0])).touch()
            return row
        """, clips=6)
    assert re.fullmatch(worker_error("was killed by SIGKILL"), out), (out, err)
    assert not (tmp_path / "set").exists()

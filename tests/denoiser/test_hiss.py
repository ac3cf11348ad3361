"""Telling a recording floor above the model's cut from what a floorless track has there."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from denoiser.hiss import FLOOR_GAP_DB, N_FFT, QuietBands, has_top_band_floor

RATE = 48_000


def snare_track(rng: np.random.Generator, seconds: float = 4.0, rate: int = RATE) -> np.ndarray:
    """Noise bursts every half second over a quiet room tone, both rolling off towards 24 kHz
    as a microphone's air and a room do (an 8th-order low-pass at 15 kHz), so the band above
    22.05 kHz holds far less per bin than 16-20 kHz."""
    n = int(seconds * rate)
    bursts = np.zeros(n)
    for start in range(0, n - rate // 10, rate // 2):
        decay = np.exp(-np.arange(rate // 10) / 600)
        bursts[start:start + rate // 10] = rng.standard_normal(rate // 10) * decay
    room = 3e-5 * rng.standard_normal(n)
    sos = signal.butter(8, 15000, fs=rate, output="sos")
    return signal.sosfilt(sos, 0.5 * bursts + room).astype(np.float32)[None]


def white(rng: np.random.Generator, shape: tuple[int, ...], dbfs: float) -> np.ndarray:
    return (10 ** (dbfs / 20) * rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("floor_dbfs", [-66.0, -80.0, -95.0])
def test_a_white_floor_is_found_and_a_room_that_rolls_off_is_not(floor_dbfs):
    rng = np.random.default_rng(1)
    track = snare_track(rng)
    plain = QuietBands(RATE, 22050.0)
    plain.add(track)
    assert plain.gap_db() < FLOOR_GAP_DB - 10 and not plain.has_floor()
    hissy = QuietBands(RATE, 22050.0)
    hissy.add(track + white(rng, track.shape, floor_dbfs))
    assert hissy.gap_db() > -3.0 and hissy.has_floor(), hissy.gap_db()


def test_the_answer_does_not_depend_on_level_and_digital_silence_is_no_floor():
    """A floor is judged against the track's own peak, so a quiet take with the same hiss
    relative to its hits gets the same answer; zeros between hits (a synthetic track, an
    edited one) are not a floor, though the two bands' ratio there is 0 dB."""
    rng = np.random.default_rng(2)
    hissy = snare_track(rng) + white(rng, (1, 4 * RATE), -90.0)
    assert all(has_top_band_floor(hissy * gain, RATE, 22050.0) for gain in (1.0, 1e-3))
    hits_only = snare_track(rng)
    hits_only[np.abs(hits_only) < 1e-2] = 0.0
    assert not has_top_band_floor(hits_only, RATE, 22050.0)
    assert not has_top_band_floor(np.zeros((1, RATE), np.float32), RATE, 22050.0)


def test_a_track_without_a_band_above_the_cut_or_shorter_than_a_frame_has_no_floor():
    rng = np.random.default_rng(3)
    assert not has_top_band_floor(white(rng, (1, 44_100), -60.0), 44_100, 22050.0)
    assert not has_top_band_floor(white(rng, (1, 500), -60.0), RATE, 22050.0)


@pytest.mark.parametrize("seams", [(N_FFT * 75,), (1000, 77_777, 77_778, 150_001)])
def test_pieces_added_one_by_one_give_the_whole_tracks_frames(seams):
    """A streamed file adds its blocks one by one, with seams anywhere (60 s at 48 kHz is
    2812.5 frames): the samples short of a frame wait for the next block, so the pieces give
    exactly the whole track's frames; the channels' powers add up (one answer per track)."""
    rng = np.random.default_rng(4)
    track = np.concatenate([snare_track(rng), snare_track(rng)]) + white(rng, (2, 4 * RATE), -80.0)
    whole, pieces = QuietBands(RATE, 22050.0), QuietBands(RATE, 22050.0)
    whole.add(track)
    for start, stop in zip((0, *seams), (*seams, track.shape[1])):
        pieces.add(track[:, start:stop])
    np.testing.assert_allclose(np.concatenate(pieces.top), np.concatenate(whole.top), rtol=1e-5)
    np.testing.assert_allclose(np.concatenate(pieces.reference), np.concatenate(whole.reference),
                               rtol=1e-5)
    assert pieces.has_floor() and whole.has_floor()

"""The pre-gate of ``denoise_file`` streams a file in blocks, yet gates it as the whole file:
hold, release and the hysteresis state reach across block seams."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from denoiser.audio import dc_offset_of
from denoiser.engine import Denoiser, InferenceConfig
from denoiser.gate import (DETECTOR_BLOCK, GateConfig, GateCurve, apply_gate, auto_threshold_db,
                           gate_gain, streamed_auto_threshold_db, streamed_gate_curve)
from denoiser.models import build_model

SR = 48_000
SECONDS = 7  # three 2-s blocks and a bit: seams at about 2, 4 and 6 s
# Blocks far shorter than the gate's memory: 0.5-s margins, a 3-s hold or release.
STREAM = InferenceConfig(segment_seconds=1.0, block_seconds=2.0, block_margin_seconds=0.5)
KEY_HIT = int(1.5 * SR)

CASES = {
    # the key's level stays between the close level (-36 dB) and the threshold (-30 dB)
    # from the hit to 5.5 s: the gate must stay open all that time
    "hysteresis": (GateConfig(threshold_db=-30, hysteresis_db=-6, rms_ms=20,
                              detector_hpf_hz=50, range_db=float("-inf")), -33.0),
    "long hold": (GateConfig(threshold_db=-30, hold_ms=3000, range_db=-80), None),
    "long release": (GateConfig(threshold_db=-30, hold_ms=10, release_ms=3000,
                                range_db=-60), None),
}


def key_signal(band_db: float | None) -> np.ndarray:
    """``(1, T)``: silence but for a 200-Hz burst at 1.5 s, then, with ``band_db``, a
    200-Hz tone of that RMS level until 5.5 s."""
    t = np.arange(SECONDS * SR) / SR
    tone = np.sin(2 * np.pi * 200 * t)
    key = np.zeros(t.size)
    key[KEY_HIT:KEY_HIT + SR // 50] = 0.8 * tone[KEY_HIT:KEY_HIT + SR // 50]
    if band_db is not None:
        stop = int(5.5 * SR)
        key[KEY_HIT + SR // 50:stop] = (np.sqrt(2) * 10 ** (band_db / 20)
                                        * tone[KEY_HIT + SR // 50:stop])
    return key[None].astype(np.float32)


def snare_every_quarter_second(rng: np.random.Generator) -> np.ndarray:
    """``(2, T)``: loud decaying hits every 250 ms on quiet noise, as on a snare close mic."""
    track = 1e-3 * rng.standard_normal((2, SECONDS * SR))
    t = np.arange(SR // 10) / SR
    hit = 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.03)
    for onset in range(0, track.shape[1] - hit.size, SR // 4):
        track[:, onset:onset + hit.size] += hit
    return track.astype(np.float32)


@pytest.mark.parametrize("keyed", [True, False], ids=["sidechain", "own-signal"])
@pytest.mark.parametrize("case", CASES)
def test_streamed_pre_gate_equals_the_whole_file_gate(tmp_path, rng, case, keyed):
    """Each block used to be gated alone with 0.5 s of context and a closed gate at its
    start: an open gate shut at the first seam after the hit (at 2 s) instead of at 5.5 s."""
    gate, band_db = CASES[case]
    key = key_signal(band_db)
    if keyed:
        track = snare_every_quarter_second(rng)
    else:  # the track keys itself: its own hit (and level) opens the gate
        track = np.vstack((key, 0.5 * key)) + (1e-4 * rng.standard_normal((2, key.shape[1]))
                                                ).astype(np.float32)
    src, key_path = tmp_path / "snare.wav", tmp_path / "key.wav"
    sf.write(src, track.T, SR, subtype="FLOAT")
    sf.write(key_path, key.T, SR, subtype="FLOAT")
    denoiser = Denoiser(build_model("identity"), "cpu", STREAM)
    out_path = denoiser.denoise_file(src, tmp_path / "out.wav", gate=gate,
                                     sidechain=key_path if keyed else None)
    out, _ = sf.read(out_path, dtype="float32", always_2d=True)
    # the engine removes the track's DC offset before the gate (a key is read as it is)
    offset = dc_offset_of(track)
    expected = apply_gate(track - offset, SR, gate, sidechain=key if keyed else None)
    np.testing.assert_allclose(out.T, expected, rtol=1e-6, atol=1e-7)
    # and the whole-file gate is indeed still (mostly) open past the first seam and its margin
    gain = gate_gain(key, SR, gate)
    assert np.all(gain[KEY_HIT + SR // 100:int(2.6 * SR)] > 0.5)


@pytest.mark.parametrize("config", [
    GateConfig(threshold_db=-20, hysteresis_db=-10, rms_ms=30, detector_hpf_hz=80,
               detector_lpf_hz=8000, hold_ms=250, release_ms=400, lookahead_ms=5,
               range_db=-40, wet=0.8),
    GateConfig(threshold_db=-12, hysteresis_db=0, hold_ms=0, release_ms=0, attack_ms=0),
], ids=["every-stage", "bare"])
def test_curve_read_in_pieces_is_the_whole_signal_gain_to_the_bit(rng, config):
    """``streamed_gate_curve`` carries the filters' state, the RMS window and the hysteresis
    state from piece to piece: any span of its curve is exactly ``gate_gain``'s."""
    frames = 5 * DETECTOR_BLOCK + 1234
    envelope = np.repeat(rng.uniform(0, 1, frames // 4000 + 1), 4000)[:frames]
    signal = (envelope * rng.standard_normal((2, frames))).astype(np.float32)
    curve = streamed_gate_curve(lambda begin, stop: signal[:, begin:stop], frames, 2, SR,
                                config)
    cuts = np.concatenate(([0], np.sort(rng.integers(0, frames, 6)), [frames]))
    spans = np.concatenate([curve.gain(begin, stop) for begin, stop in zip(cuts, cuts[1:])])
    np.testing.assert_array_equal(spans, gate_gain(signal, SR, config))


@pytest.mark.parametrize("rms_ms", [0.0, 20.0])
def test_the_streamed_auto_threshold_is_the_whole_signals(rng, rms_ms):
    """The automatic threshold read piece by piece (a number per 5-ms frame kept) is the
    one the whole signal gives: denoise used to hold the whole track for it, 1.8 GB for
    ten minutes of 8 channels at 96 kHz. Pieces and frames do not line up (65536 samples
    against 240), nor does the end."""
    total = 3 * DETECTOR_BLOCK + 1234
    x = (10 ** (-50 / 20) * rng.standard_normal((2, total))).astype(np.float32)
    decay = np.exp(-np.arange(4800, dtype=np.float32) / 600)
    for onset in range(1000, total - 4800, 9000):
        hit = rng.uniform(0.1, 0.9) * decay * rng.standard_normal(4800)
        x[onset % 2, onset:onset + 4800] += hit.astype(np.float32)
    config = GateConfig(auto=True, rms_ms=rms_ms, detector_hpf_hz=100)
    streamed = streamed_auto_threshold_db(lambda begin, stop: x[:, begin:stop], total, 2, SR,
                                          config)
    assert streamed == pytest.approx(auto_threshold_db(x, SR, config), abs=1e-6)
    assert -45 < streamed < -5


def test_the_streamed_auto_threshold_follows_a_float_take_above_full_scale(tmp_path,
                                                                          hat_bleed_take):
    """The pre-gate of ``denoise --gate --auto`` on a float take at +18 dBFS: the threshold
    was clamped to 0 dBFS (and re-validated so), 24 dB under the take, and the gate let
    its bleed through. It is the one of the take at -6 dBFS, 24 dB higher."""
    takes = {name: hat_bleed_take(peak) for name, peak in (("cold", -6.0), ("hot", 18.0))}
    threshold = {name: streamed_auto_threshold_db(lambda begin, stop, x=x: x[:, begin:stop],
                                                  x.shape[1], 1, SR, GateConfig(auto=True))
                 for name, x in takes.items()}
    assert threshold["hot"] == pytest.approx(threshold["cold"] + 24, abs=0.01)
    denoiser = Denoiser(build_model("identity"), "cpu", STREAM)
    out = {}
    for name, x in takes.items():
        src = tmp_path / f"{name}.wav"
        sf.write(src, x.T, SR, subtype="FLOAT")
        dst = denoiser.denoise_file(src, tmp_path / f"{name}.out.wav", gate=GateConfig(auto=True))
        out[name] = sf.read(dst, dtype="float32")[0]
    np.testing.assert_allclose(out["hot"] / 10 ** (24 / 20), out["cold"], rtol=1e-4, atol=1e-8)
    hat = slice(int(0.3125 * SR), int(0.3625 * SR))  # a hi-hat burst clear of the hits
    assert np.abs(out["hot"][hat]).max() < 1e-3 * np.abs(takes["hot"][0, hat]).max()


@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("auto", [False, True])
def test_the_gate_command_streams_the_file_as_the_whole_file_gates(tmp_path, rng, keyed, auto):
    """``debleed gate`` read each file whole (a 20-minute 96-kHz stereo take held 3 GB);
    ``gate_file`` streams it in blocks, with the same result as ``apply_gate`` in memory:
    a DC offset kept in the output and left out of the detector, a shorter sidechain
    zero-padded."""
    from denoiser.stream import gate_file

    t = np.arange(SECONDS * SR) / SR
    track = (0.01 * rng.standard_normal((2, t.size)) + 0.02).astype(np.float32)
    for hit in (0.7, 2.9, 5.3):
        at = int(hit * SR)
        track[:, at:at + SR // 10] += 0.7 * np.sin(2 * np.pi * 190 * t[:SR // 10])
    sf.write(tmp_path / "in.wav", track.T, SR, subtype="FLOAT")
    config = GateConfig(threshold_db=-20, hold_ms=50, release_ms=200, range_db=-60, auto=auto)
    key = None
    if keyed:
        key = key_signal(None)[:, : t.size - SR]  # a second short: padded with silence
        sf.write(tmp_path / "key.wav", key.T, SR, subtype="FLOAT")
        key = np.pad(key, ((0, 0), (0, SR)))
    streamed = gate_file(config, tmp_path / "in.wav", tmp_path / "out.wav",
                         tmp_path / "key.wav" if keyed else None, block=SR // 3)
    out, rate = sf.read(streamed, dtype="float32", always_2d=True)
    whole = apply_gate(track, SR, config, sidechain=key)
    assert rate == SR and np.max(np.abs(out.T - whole)) < 1e-6
    assert np.max(np.abs(out.T - track)) > 0.01  # it did gate


@pytest.mark.parametrize("auto", [False, True])
@pytest.mark.parametrize("command", ["gate", "denoise"])
def test_a_silent_sidechain_is_refused_and_nothing_written(tmp_path, rng, command, auto):
    """An empty trigger export keys no hit: the gate stayed shut over the whole take, which
    came out silent with no word of why. A key whose only sound is below silence (1e-8)
    is as silent."""
    from denoiser.errors import AudioError
    from denoiser.stream import gate_file

    src, key_path = tmp_path / "snare.wav", tmp_path / "trigger.wav"
    sf.write(src, snare_every_quarter_second(rng).T, SR, subtype="FLOAT")
    key = np.zeros((2, SR), np.float32)
    key[0, 100] = 1e-8
    sf.write(key_path, key.T, SR, subtype="FLOAT")
    config = GateConfig(threshold_db=-30, range_db=float("-inf"), auto=auto)
    if command == "gate":
        run = lambda: gate_file(config, src, tmp_path / "out.wav", key_path)  # noqa: E731
    else:
        denoiser = Denoiser(build_model("identity"), "cpu", STREAM)
        run = lambda: denoiser.denoise_file(src, tmp_path / "out.wav", gate=config,  # noqa: E731
                                            sidechain=key_path)
    with pytest.raises(AudioError) as refused:
        run()
    assert str(refused.value) == (f"{key_path}: the sidechain is silent: it would shut the "
                                  "gate over the whole take; key it from a track that plays "
                                  "the hits")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snare.wav", "trigger.wav"]


def test_a_key_with_one_sample_above_silence_is_accepted(tmp_path, rng):
    """Silence is every sample at most 1e-7 (the line a silent input is refused by): one
    sample above it makes a key, gated by as ``apply_gate`` gates."""
    from denoiser.stream import gate_file

    src, key_path = tmp_path / "snare.wav", tmp_path / "trigger.wav"
    track = snare_every_quarter_second(rng)
    sf.write(src, track.T, SR, subtype="FLOAT")
    key = np.zeros((1, track.shape[1]), np.float32)
    key[0, SR] = 2e-7
    sf.write(key_path, key.T, SR, subtype="FLOAT")
    config = GateConfig(threshold_db=-30, range_db=-60)
    out, _ = sf.read(gate_file(config, src, tmp_path / "out.wav", key_path), dtype="float32")
    np.testing.assert_allclose(out.T, apply_gate(track, SR, config, sidechain=key), atol=1e-7)


@pytest.mark.parametrize("command", ["gate", "denoise"])
def test_a_key_that_sounds_only_past_the_track_is_refused(tmp_path, rng, command):
    """The detector reads the key over the track's length alone: a trigger whose only hit
    comes on the sample after the track's last keys nothing there, and the take came out
    silent with exit 0 (the key was refused only when silent throughout)."""
    from denoiser.errors import AudioError
    from denoiser.stream import gate_file

    src, key_path = tmp_path / "snare.wav", tmp_path / "trigger.wav"
    sf.write(src, snare_every_quarter_second(rng)[:, :SR].T, SR, subtype="FLOAT")
    key = np.zeros((1, 2 * SR), np.float32)
    key[0, SR] = 0.8
    sf.write(key_path, key.T, SR, subtype="FLOAT")
    config = GateConfig(threshold_db=-30, range_db=float("-inf"))
    with pytest.raises(AudioError) as refused:
        if command == "gate":
            gate_file(config, src, tmp_path / "out.wav", key_path)
        else:
            Denoiser(build_model("identity"), "cpu", STREAM).denoise_file(
                src, tmp_path / "out.wav", gate=config, sidechain=key_path)
    assert str(refused.value) == (f"{key_path}: the sidechain is silent over the first 1.000 s, "
                                  f"the length of {src} (its sound comes later): it would shut "
                                  "the gate over the whole take; key it from a track that plays "
                                  "the hits")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snare.wav", "trigger.wav"]


def test_a_longer_key_that_sounds_on_the_track_s_last_sample_is_accepted(tmp_path, rng):
    """What the key holds past the track's end is no part of the check either way: one hit
    on the last sample the track keys is a key, gated as ``apply_gate`` gates with the key
    cut to the track."""
    from denoiser.stream import gate_file

    src, key_path = tmp_path / "snare.wav", tmp_path / "trigger.wav"
    track = snare_every_quarter_second(rng)[:, :SR]
    sf.write(src, track.T, SR, subtype="FLOAT")
    key = np.zeros((1, 2 * SR), np.float32)
    key[0, SR - 1] = 0.8
    sf.write(key_path, key.T, SR, subtype="FLOAT")
    config = GateConfig(threshold_db=-30, range_db=-60)
    out, _ = sf.read(gate_file(config, src, tmp_path / "out.wav", key_path), dtype="float32")
    expected = apply_gate(track, SR, config, sidechain=key[:, :SR])
    np.testing.assert_allclose(out.T, expected, atol=1e-7)
    assert np.abs(out.T[:, -1] - track[:, -1]).max() < 1e-6  # the lookahead opened it there


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_chattering_curve_read_in_spans_is_the_whole_curve(seed, monkeypatch):
    """A gate with no hold, attack or release chatters at the noise: its curve holds a
    stretch every few samples, and each streamed block worked through all of them (86 s
    and 3 GB for 20 minutes). A span now reads only the stretches near it, exactly."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((1, 20 * SR // 10)).astype(np.float32) * 0.01
    config = GateConfig(threshold_db=-40, hold_ms=0, attack_ms=0, release_ms=rng.uniform(0, 3),
                        lookahead_ms=0, hysteresis_db=0, range_db=-60)
    curve = streamed_gate_curve(lambda begin, stop: noise[:, begin:stop], noise.shape[1], 1,
                                SR, config)
    assert curve.starts.size > 1000
    whole = curve.gain()
    np.testing.assert_array_equal(whole, gate_gain(noise, SR, config))
    edges = np.sort(rng.integers(0, noise.shape[1], 12))
    for begin, stop in zip(edges[:-1], edges[1:]):
        np.testing.assert_array_equal(curve.gain(int(begin), int(stop)), whole[begin:stop])
    worked_on = []
    span_gain = GateCurve._span_gain

    def counted(self, begin, stop):
        worked_on.append(self.starts.size)
        return span_gain(self, begin, stop)

    monkeypatch.setattr(GateCurve, "_span_gain", counted)
    curve.gain(SR // 2, SR // 2 + SR // 100)  # 10 ms of 2 s
    assert worked_on and worked_on[0] < curve.starts.size / 20

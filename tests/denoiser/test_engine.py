"""The chunked engine: lossless chunking, sample alignment, any rate and channel count."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from denoiser.audio import dc_offset_of, read_audio
from denoiser.chunking import plan_chunks
from denoiser.engine import (RESAMPLER_MARGIN_SECONDS, Denoiser, InferenceConfig, apply_model,
                             pick_device, resample)
from denoiser.errors import AudioError, ModelError, ParameterError
from denoiser.gate import GateConfig, apply_gate
from denoiser.hiss import has_top_band_floor
from denoiser.models import build_model
from denoiser.models.ensemble import MaskEnsemble


def bandlimited(rng: np.random.Generator, channels: int, frames: int, rate: int) -> np.ndarray:
    """Noise plus a click, all well below 16 kHz: survives a 44.1 <-> 48 kHz round trip.
    Zero mean, so what the identity model returns is the input itself (the engine removes a
    DC offset)."""
    raw = 0.1 * rng.standard_normal((channels, frames))
    raw[:, frames // 2] += 8.0
    sos = signal.butter(10, 12000, fs=rate, output="sos")
    return centred(signal.sosfilt(sos, raw).astype(np.float32))


def centred(audio: np.ndarray) -> np.ndarray:
    """``audio`` less its mean per channel: no DC offset for the engine to remove."""
    return audio - np.mean(audio, axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)


@pytest.mark.parametrize("total,segment,overlap,align", [
    (1000, 300, 50, 16), (999, 1000, 10, 16), (5000, 128, 64, 16),
    # an overlap under half the segment that rounds up past it: the 0.50454-s segment and
    # 0.252-s overlap at 48 kHz on the model's 256-sample frames summed to 1.0208 at seams
    (200_000, 24_218, 12_096, 256)])
def test_chunk_weights_sum_to_one(total, segment, overlap, align):
    coverage = np.zeros(total)
    for chunk in plan_chunks(total, segment, overlap, context=37, align=align):
        coverage[chunk.out_start:chunk.out_stop] += chunk.weights()
        assert chunk.in_start <= chunk.out_start and chunk.in_stop >= chunk.out_stop
    np.testing.assert_allclose(coverage, 1.0, atol=1e-6)


def test_identity_model_returns_input_exactly(rng):
    audio = torch.from_numpy(rng.standard_normal((2, 48000 * 3)).astype(np.float32))
    out = apply_model(build_model("identity"), audio, segment=20000, overlap=1000)
    assert torch.equal(out, audio) or (out - audio).abs().max() < 1e-6


@pytest.mark.parametrize("options", [{}, {"frame_gate": True}, {"phase_coherence": True},
                                     {"texture_channels": 2}])
def test_chunked_equals_whole_for_finite_receptive_field(rng, options):
    """Chunks carry the context each input needs (the phase coherence and the texture
    front reach further than the convolutions alone)."""
    torch.manual_seed(0)
    model = build_model("bandmask-tiny", **options).eval()
    if model.frame_gate is not None:  # a gate that actually moves, not its all-open start
        torch.nn.init.normal_(model.frame_gate.weight, std=0.5)
    if model.coherence is not None:  # a coherence input that matters, not its zero start
        torch.nn.init.normal_(model.coherence[-1].weight, std=1.0)
    if model.texture is not None:  # both texture maps in use, not their zero start
        torch.nn.init.normal_(model.texture.body[-1].weight, std=1.0)
        torch.nn.init.normal_(model.texture_project[-1].weight, std=1.0)
    audio = torch.from_numpy(rng.standard_normal((2, 40000)).astype(np.float32)) * 0.1
    with torch.no_grad():
        whole = model(audio)
    chunked = apply_model(model, audio, segment=6000, overlap=512)
    assert (chunked - whole).abs().max().item() < 1e-4


@pytest.mark.parametrize("segment", [6000, 6001, 6003])
def test_thesis_chunks_match_a_whole_pass_off_the_pooling_grid(rng, segment):
    """Its two 2x max-pools see a 4-sample grid: chunks starting off it used to give
    seams at -27 dB (segment_seconds 0.50005)."""
    torch.manual_seed(0)
    model = build_model("thesis").eval()
    audio = torch.from_numpy(rng.standard_normal((1, 30000)).astype(np.float32)) * 0.1
    with torch.no_grad():
        whole = model(audio)
    chunked = apply_model(model, audio, segment=segment, overlap=512)
    assert (chunked - whole).abs().max().item() < 1e-5


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2])
def test_denoise_keeps_shape_and_alignment(rng, rate, channels):
    audio = bandlimited(rng, channels, rate // 2, rate)
    denoiser = Denoiser(build_model("identity"), "cpu")
    out = denoiser.denoise(audio, rate)
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.argmax(np.abs(out[0])) == np.argmax(np.abs(audio[0]))  # the click stays put
    if rate == 48000:
        np.testing.assert_allclose(out, audio, atol=1e-6)
    else:
        middle = slice(rate // 20, -rate // 20)
        assert np.abs(out[:, middle] - audio[:, middle]).max() < 2e-3


@pytest.mark.parametrize("rate", [44_100, 48_000, 96_000])
def test_streaming_file_matches_in_memory(tmp_path, rng, rate):
    """At the model's rate and at others (resampled): blocks start on the model's frame
    grid (``Denoiser.alignment``), so a streamed file is the in-memory result."""
    audio = bandlimited(rng, 2, rate * 7, rate)
    src = tmp_path / "in.wav"
    sf.write(src, audio.T, rate, subtype="FLOAT")
    torch.manual_seed(1)
    model = build_model("bandmask-tiny")
    config = InferenceConfig(segment_seconds=1.0, block_seconds=2.0, block_margin_seconds=0.5)
    denoiser = Denoiser(model, "cpu", config)
    streamed_path = denoiser.denoise_file(src, tmp_path / "out.wav")
    streamed, out_rate = sf.read(streamed_path, dtype="float32", always_2d=True)
    assert out_rate == rate and streamed.shape == audio.T.shape
    whole = denoiser.denoise(audio, rate)
    assert np.abs(streamed.T - whole).max() < 1e-4
    # No PEAK chunk: it holds the write time, so a rerun would give other bytes.
    assert b"PEAK" not in streamed_path.read_bytes()[:4096]


@pytest.mark.parametrize("gated", [None, "fixed", "auto"],
                         ids=["model", "gate-then-model", "auto-gate-then-model"])
def test_a_dc_offset_changes_nothing_but_is_removed(tmp_path, rng, gated):
    """A DC offset (an old interface, a bad converter) went into the model: the levelling
    gain counted it, and the mask, opening at each hit, made it a step, a thump per hit (the
    shipped model's hit error doubled at -40 dBFS of offset). The pre-gate keyed it in and
    out the same way. Now the result is the one without the offset, in memory and streamed."""
    rate = 48000
    audio = bandlimited(rng, 2, rate * 5, rate)
    torch.manual_seed(1)
    config = InferenceConfig(segment_seconds=1.0, block_seconds=2.0, block_margin_seconds=0.5)
    denoiser = Denoiser(build_model("bandmask-tiny"), "cpu", config)
    gate = (None if gated is None else
            GateConfig(threshold_db=-12, range_db=float("-inf"), auto=gated == "auto"))
    outputs = []
    for offset in (0.0, 0.05):
        src = tmp_path / f"in{offset}.wav"
        sf.write(src, (audio + offset).T, rate, subtype="FLOAT")
        out, _ = sf.read(denoiser.denoise_file(src, tmp_path / f"out{offset}.wav", gate=gate),
                         dtype="float32", always_2d=True)
        outputs.append(out.T)
    clean, offset_removed = outputs
    assert np.abs(clean).max() > 0.1  # the model passes something
    assert np.abs(offset_removed - clean).max() < 1e-4
    if not gated:
        in_memory = denoiser.denoise(audio + 0.05, rate)
        assert np.abs(in_memory - denoiser.denoise(audio, rate)).max() < 1e-4


def test_a_tracks_own_small_mean_is_no_offset_and_stays(tmp_path):
    """A gated snare track: digital silence between decaying hits, whose lopsided decay
    gives a mean 60-70 dB under the peak. Removing it put a constant into the silence,
    which the networks read in their lowest bins (one benchmark clip's tom/kick leakage
    moved by 17 dB): it is left, in memory and streamed."""
    rate = 48000
    t = np.arange(rate // 10) / rate
    track = np.zeros((1, rate * 2), np.float32)
    for onset in range(0, track.shape[1] - t.size, rate // 2):
        track[0, onset:onset + t.size] = 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.03)
    assert -75 < 20 * np.log10(abs(track.mean()) / np.abs(track).max()) < -55
    torch.manual_seed(1)
    denoiser = Denoiser(build_model("bandmask-tiny"), "cpu")
    kept = denoiser.denoise(track, rate, offset=0.0)
    assert np.array_equal(denoiser.denoise(track, rate), kept)
    src = tmp_path / "gated.wav"
    sf.write(src, track.T, rate, subtype="FLOAT")
    streamed, _ = sf.read(denoiser.denoise_file(src, tmp_path / "out.wav"), dtype="float32",
                          always_2d=True)
    assert np.abs(streamed.T - kept).max() < 1e-6


def test_one_sided_hits_have_no_offset_to_remove(tmp_path):
    """Hits that swing one way only (negative spikes over a faint tone): their mean, -0.0002,
    lies 74 dB under their peak about it, which is on the mean's own side. Measured above
    the mean only (0.001 there), the peak made the mean an offset, and it was removed."""
    rate = 48000
    track = np.zeros((1, rate), np.float32)
    track[0, ::rate // 10] = -1.0
    track[0] += 0.001 * np.sin(np.arange(rate) / 7.0).astype(np.float32)
    assert dc_offset_of(track).item() == 0.0
    denoiser = Denoiser(build_model("identity"), "cpu")
    np.testing.assert_allclose(denoiser.denoise(track, rate), track, rtol=0, atol=1e-6)
    src = tmp_path / "one-sided.wav"
    sf.write(src, track.T, rate, subtype="FLOAT")
    streamed, _ = sf.read(denoiser.denoise_file(src, tmp_path / "out.wav"), dtype="float32",
                          always_2d=True)
    np.testing.assert_allclose(streamed.T, track, rtol=0, atol=1e-6)


def test_a_track_of_nothing_but_an_offset_has_nothing_to_denoise(tmp_path):
    src = tmp_path / "dc.wav"
    sf.write(src, np.full(48_000, 0.2, np.float32), 48_000, subtype="FLOAT")
    denoiser = Denoiser(build_model("identity"), "cpu")
    with pytest.raises(AudioError, match=r"dc.wav: holds nothing but a DC offset \(a constant\)"):
        denoiser.denoise_file(src, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()
    with pytest.raises(AudioError, match="^input holds nothing but a DC offset"):
        denoiser.denoise(np.full((1, 4800), -0.3, np.float32), 48_000)
    with pytest.raises(AudioError, match="^input is silent"):
        denoiser.denoise(np.zeros((1, 4800), np.float32), 48_000)


@pytest.mark.parametrize("offset", [np.zeros((3, 1)), np.array([[np.nan], [0.0]]), "inf"])
def test_a_bad_offset_is_refused_in_one_line(offset):
    offset = np.inf if isinstance(offset, str) else offset
    with pytest.raises(ParameterError, match="DC offset must be one finite number per channel"):
        Denoiser(build_model("identity"), "cpu").denoise(np.ones((2, 4800), np.float32),
                                                         48_000, offset=offset)


def trigger_and_track(rng: np.random.Generator, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """A 7-s stereo track of steady bleed, and a 5-s mono trigger with a pulse every second:
    only the trigger can open a -30 dB gate, and it ends before the track does."""
    track = (0.02 * rng.standard_normal((2, rate * 7))).astype(np.float32)
    trigger = np.zeros((1, rate * 5), np.float32)
    for second in range(5):
        trigger[0, second * rate + rate // 2: second * rate + rate // 2 + 480] = 0.8
    return track, trigger


@pytest.mark.parametrize("auto", [False, True])
def test_streamed_sidechain_gates_like_the_whole_file(tmp_path, rng, auto):
    """The pre-gate's key is read block for block beside the track (zeros past its end): the
    streamed result is the whole-file gate keyed by the padded trigger, and the automatic
    threshold comes from the trigger, the gate's detector, not from the track."""
    rate = 48000
    track, trigger = trigger_and_track(rng, rate)
    src, key = tmp_path / "snare.wav", tmp_path / "trigger.wav"
    sf.write(src, track.T, rate, subtype="FLOAT")
    sf.write(key, trigger.T, rate, subtype="FLOAT")
    gate = GateConfig(threshold_db=-30, range_db=float("-inf"), auto=auto)
    config = InferenceConfig(segment_seconds=1.0, block_seconds=2.0, block_margin_seconds=0.5)
    denoiser = Denoiser(build_model("identity"), "cpu", config)
    out, _ = sf.read(denoiser.denoise_file(src, tmp_path / "out.wav", gate=gate, sidechain=key),
                     dtype="float32", always_2d=True)
    padded = np.zeros((1, track.shape[1]), np.float32)
    padded[:, :trigger.shape[1]] = trigger
    expected = apply_gate(track, rate, gate, sidechain=padded)
    assert np.abs(out.T - expected).max() < 1e-5
    opened = np.abs(out.T[:, rate // 2: rate // 2 + 480] - track[:, rate // 2: rate // 2 + 480])
    assert opened.max() < 1e-5                       # the trigger's pulse opens the gate
    assert np.abs(out.T[:, rate // 4: rate // 2 - rate // 10]).max() == 0.0  # shut between
    assert np.abs(out.T[:, 5 * rate + rate // 4:]).max() == 0.0  # shut past the trigger's end


def test_bad_sidechain_writes_nothing(tmp_path, rng):
    rate = 48000
    track, trigger = trigger_and_track(rng, rate)
    src, other_rate, nan = tmp_path / "snare.wav", tmp_path / "k44.wav", tmp_path / "nan.wav"
    sf.write(src, track.T, rate, subtype="FLOAT")
    sf.write(other_rate, trigger.T, 44100, subtype="FLOAT")
    trigger[0, 10] = np.nan
    sf.write(nan, trigger.T, rate, subtype="FLOAT")
    denoiser = Denoiser(build_model("identity"), "cpu")
    with pytest.raises(AudioError, match="44100 Hz"):
        denoiser.denoise_file(src, tmp_path / "out.wav", gate=GateConfig(), sidechain=other_rate)
    with pytest.raises(AudioError, match="NaN"):
        denoiser.denoise_file(src, tmp_path / "out.wav", gate=GateConfig(), sidechain=nan)
    with pytest.raises(ParameterError, match="turn the gate on"):
        denoiser.denoise_file(src, tmp_path / "out.wav", sidechain=nan)
    with pytest.raises(AudioError, match="overwrite"):
        denoiser.denoise_file(src, nan, gate=GateConfig(), sidechain=nan)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k44.wav", "nan.wav", "snare.wav"]


def test_bad_input_writes_nothing(tmp_path):
    denoiser = Denoiser(build_model("identity"), "cpu")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((4800, 1), np.float32), 48000)
    with pytest.raises(AudioError, match="silent"):
        denoiser.denoise_file(silent, tmp_path / "out.wav")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full((4800, 1), np.nan, np.float32), 48000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        denoiser.denoise_file(nan, tmp_path / "out.wav")
    with pytest.raises(AudioError, match="overwrite"):
        denoiser.denoise_file(silent, silent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.wav", "silent.wav"]


@pytest.mark.parametrize("rate", [100, 7_999, 1_000_000])
def test_rates_no_snare_track_has_are_refused(tmp_path, rate):
    denoiser = Denoiser(build_model("identity"), "cpu")
    samples = np.random.default_rng(1).normal(0, 0.1, (1, 4800)).astype(np.float32)
    with pytest.raises(AudioError, match=f"sample rate {rate} Hz"):
        denoiser.denoise(samples, rate)
    src = tmp_path / "odd.wav"
    sf.write(src, samples.T, rate, subtype="FLOAT")
    with pytest.raises(AudioError, match=f"sample rate {rate} Hz"):
        read_audio(src)
    with pytest.raises(AudioError, match=f"sample rate {rate} Hz"):
        denoiser.denoise_file(src, tmp_path / "out.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.wav"]


@pytest.mark.parametrize("rate,message", [("48000", "must be a number"), (None, "must be a number"),
                                          (44100.9, "not a whole number"),
                                          (float("nan"), "outside"), (1e9, "outside")])
def test_rates_that_are_not_whole_hz_are_refused_by_engine_and_gate(rate, message):
    """A rate of 44100.9 used to be truncated silently; NaN or a string reached numpy."""
    samples = np.random.default_rng(1).normal(0, 0.1, (1, 4800)).astype(np.float32)
    with pytest.raises(AudioError, match=message):
        Denoiser(build_model("identity"), "cpu").denoise(samples, rate)
    with pytest.raises(AudioError, match=message):
        apply_gate(samples, rate, GateConfig())


def test_complex_samples_are_refused():
    samples = np.full((1, 4800), 0.1 + 0.1j)
    with pytest.raises(AudioError, match="complex"):
        Denoiser(build_model("identity"), "cpu").denoise(samples, 48_000)
    with pytest.raises(AudioError, match="complex"):
        apply_gate(samples, 48_000, GateConfig())


def test_one_dimensional_input_comes_back_one_dimensional(rng):
    mono = bandlimited(rng, 1, 4800, 48_000)[0]
    out = Denoiser(build_model("identity"), "cpu").denoise(mono, 48_000)
    assert out.shape == mono.shape
    np.testing.assert_allclose(out, mono, atol=1e-6)


@pytest.mark.parametrize("changes", [{"peak_level": 0.0}, {"peak_level": float("nan")},
                                     {"peak_level": 2.0}, {"block_seconds": float("nan")},
                                     {"block_seconds": float("inf")},
                                     {"block_margin_seconds": -1.0},
                                     {"block_margin_seconds": float("nan")},
                                     {"input_max_hz": -1.0}, {"input_max_hz": float("nan")},
                                     {"hiss_cut_hz": -1.0}, {"hiss_cut_hz": float("inf")},
                                     {"hiss_cut_hz": 16000.0}])
def test_levelling_and_streaming_settings_are_checked(changes):
    """A peak level of 0 or NaN used to give all-NaN audio without a word."""
    with pytest.raises(ParameterError):
        InferenceConfig(**changes).validate()


@pytest.mark.parametrize("gain", [0.0, -1.0, float("nan"), float("inf")])
def test_a_gain_that_cannot_level_is_refused(rng, gain):
    samples = bandlimited(rng, 1, 4800, 48_000)
    with pytest.raises(ParameterError, match="levelling gain"):
        Denoiser(build_model("identity"), "cpu").denoise(samples, 48_000, gain=gain)


def test_each_channel_is_levelled_alone_in_memory_and_streamed(rng, tmp_path):
    """A quiet channel (a snare-bottom mic 26 dB under the top) gives the same result as
    on its own: levelled by the loud channel's peak it reached the model far below its
    training levels (up to 0.5 off against a peak of 0.8 with the shipped model). A
    silent channel beside them stays silence."""
    torch.manual_seed(3)
    denoiser = Denoiser(build_model("bandmask-tiny"), "cpu")
    track = bandlimited(rng, 1, 48_000, 48_000)[0]
    alone = denoiser.denoise(track[None], 48_000)[0]
    beside = denoiser.denoise(np.stack([track, 0.05 * track, 0 * track]), 48_000)
    np.testing.assert_allclose(beside[0], alone, atol=1e-6)
    np.testing.assert_allclose(beside[1] / 0.05, alone, atol=2e-5)
    assert not beside[2].any()
    src = tmp_path / "top-bottom.wav"
    sf.write(src, np.stack([track, 0.05 * track]).T, 48_000, subtype="FLOAT")
    streamed, _ = sf.read(denoiser.denoise_file(src, tmp_path / "out.wav"), dtype="float32")
    np.testing.assert_allclose(streamed[:, 1] / 0.05, alone, atol=2e-5)


def test_a_model_output_that_overflows_is_a_model_error(rng, tmp_path):
    """Finite but absurd weights (a linear-output thesis net scaled by 1e30) overflow to
    inf: an error, never a WAV of NaN."""
    model = build_model("thesis-tiny").eval()
    with torch.no_grad():
        for weight in model.parameters():
            weight.fill_(1e30)
    denoiser = Denoiser(model, "cpu")
    samples = bandlimited(rng, 1, 4800, 48_000)
    with pytest.raises(ModelError, match="NaN/inf"):
        denoiser.denoise(samples, 48_000)
    src = tmp_path / "in.wav"
    sf.write(src, samples.T, 48_000, subtype="FLOAT")
    with pytest.raises(ModelError, match="NaN/inf"):
        denoiser.denoise_file(src, tmp_path / "out.wav")
    assert [p.name for p in tmp_path.iterdir()] == ["in.wav"]


def test_a_transposed_array_is_refused_not_run_as_thousands_of_channels():
    """soundfile reads (samples, channels): passed as-is, a second of stereo was 48,000
    channels of two samples, a minute of work for noise."""
    denoiser = Denoiser(build_model("identity"), "cpu")
    frames_first = np.zeros((48_000, 2), np.float32)
    with pytest.raises(AudioError, match="48000 channels of 2 samples.*transposed"):
        denoiser.denoise(frames_first, 48_000)
    tone = np.sin(np.linspace(0, 2000, 96_000, dtype=np.float32)).reshape(48_000, 2)
    assert denoiser.denoise(tone.T, 48_000).shape == (2, 48_000)


def test_a_low_but_real_rate_is_resampled_and_kept():
    """22.05 kHz sessions exist: the track goes through at its own rate and length."""
    denoiser = Denoiser(build_model("identity"), "cpu")
    t = np.arange(22_050) / 22_050
    tones = (0.3 * np.sin(2 * np.pi * 190 * t) + 0.1 * np.sin(2 * np.pi * 3_000 * t)) * np.hanning(t.size)
    samples = np.stack([tones, -tones]).astype(np.float32)
    out = denoiser.denoise(samples, 22_050)
    assert out.shape == samples.shape
    assert np.max(np.abs(out - samples)) < 1e-4


@pytest.mark.parametrize("rate,warned", [(22_050, True), (32_000, True), (44_100, False),
                                         (96_000, False)])
def test_a_rate_under_the_trained_ones_is_named_once_per_file(tmp_path, rate, warned):
    """Under 44.1 kHz the track has no wires or stick for the model to hear, and its hits
    come out quieter (8 kHz: all but silent), so the file's output says so, once, not once
    per streamed block."""
    denoiser = Denoiser(build_model("identity"), "cpu")
    denoiser.config = replace(denoiser.config, block_seconds=1.0, block_margin_seconds=0.5)
    t = np.arange(3 * rate) / rate
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * 190 * t)).astype(np.float32), rate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        denoiser.denoise_file(tmp_path / "in.wav", tmp_path / "out.wav")
    said = [str(w.message) for w in caught if "kick or tom bleed" in str(w.message)]
    assert said == ([f"{tmp_path / 'in.wav'}: {rate} Hz: with nothing above {rate / 2000:g} "
                     "kHz, a snare sounds to the model like kick or tom bleed, and its hits "
                     "come out quieter (trained at 44.1 kHz and up)"] if warned else [])


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8])
def test_integer_samples_are_refused_not_read_as_full_scale_steps(dtype):
    """int16 from scipy or soundfile(dtype='int16') was taken as floats: one step of 16 bits
    was full scale, so the gate's dBFS threshold sat 90 dB too low and never closed, and
    the denoiser returned samples near 16000."""
    samples = (np.random.default_rng(2).normal(0, 3000, (1, 4800))).astype(dtype)
    with pytest.raises(AudioError, match=f"samples are {np.dtype(dtype)} integers; pass "
                                         "floating-point audio with full scale at 1.0"):
        Denoiser(build_model("identity"), "cpu").denoise(samples, 48_000)
    with pytest.raises(AudioError, match="integers"):
        apply_gate(samples, 48_000, GateConfig())


def test_input_max_hz_cuts_a_copy_of_the_model_and_refuses_models_without_bins():
    """The engine cuts its own copy (the caller's model keeps reading every bin); a waveform
    model has no bins to cut and a cut at or above Nyquist is no cut: both one-line errors."""
    model = build_model("bandmask-tiny")
    denoiser = Denoiser(model, "cpu", InferenceConfig(input_max_hz=22050.0))
    assert (denoiser.model.input_bins, model.input_bins) == (118, 129)
    with pytest.raises(ParameterError, match="thesis cannot be cut at 8000 Hz"):
        Denoiser(build_model("thesis-tiny"), "cpu", InferenceConfig(input_max_hz=8000.0))
    with pytest.raises(ParameterError, match="below the model.s Nyquist"):
        Denoiser(model, "cpu", InferenceConfig(input_max_hz=30000.0))
    narrow = build_model("bandmask-tiny", input_max_hz=16000.0)  # trained with its own cut
    assert Denoiser(narrow, "cpu", InferenceConfig(input_max_hz=22050.0)).model.input_bins == 86
    filtered = MaskEnsemble([{"n_fft": 256, "hop": 64, "channels": 16, "dilations": (1, 2)}] * 2,
                            "power", deep_filter=True)
    with pytest.raises(ParameterError, match="deep filter reads the whole band"):
        Denoiser(filtered, "cpu", InferenceConfig(input_max_hz=22050.0))


def hissy_and_plain(rate: int, seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A band-limited track (nothing above 12 kHz) and the same with a -70 dBFS white floor."""
    rng = np.random.default_rng(7)
    plain = bandlimited(rng, 1, int(seconds * rate), rate)
    hiss = (10 ** (-70 / 20) * rng.standard_normal(plain.shape)).astype(np.float32)
    return plain, centred(plain + hiss)


def test_a_track_with_a_floor_above_the_cut_is_read_as_input_max_hz_reads_it_and_others_whole():
    """The automatic cut: one model for hissy 48-kHz tracks (the cut copy), the other for
    the rest; 44.1- and 96-kHz tracks are never cut (see ``Denoiser.hiss_cut_applies``)."""
    torch.manual_seed(0)
    model = build_model("bandmask-tiny")
    auto = Denoiser(model, "cpu")
    cut = Denoiser(model, "cpu", InferenceConfig(input_max_hz=22050.0))
    whole = Denoiser(model, "cpu", InferenceConfig(hiss_cut_hz=0.0))
    assert auto.hiss_model is not None and auto.hiss_model.input_bins == 118
    assert auto.model.input_bins == 129 and whole.hiss_model is None and cut.hiss_model is None
    plain, hissy = hissy_and_plain(48_000)
    assert auto.hears_floor(hissy, 48_000) and not auto.hears_floor(plain, 48_000)
    out = auto.denoise(hissy, 48_000)
    np.testing.assert_array_equal(out, cut.denoise(hissy, 48_000))
    assert np.max(np.abs(out - whole.denoise(hissy, 48_000))) > 1e-4  # the cut matters here
    np.testing.assert_array_equal(auto.denoise(plain, 48_000), whole.denoise(plain, 48_000))
    np.testing.assert_array_equal(auto.denoise(hissy, 48_000, floor=False),
                                  whole.denoise(hissy, 48_000))
    for rate in (44_100, 96_000):  # no band of its own there / the resampler attenuates it
        hissy_at_rate = hissy_and_plain(rate)[1]
        assert not auto.hears_floor(hissy_at_rate, rate)
        np.testing.assert_array_equal(auto.denoise(hissy_at_rate, rate),
                                      whole.denoise(hissy_at_rate, rate))
    # a loud white floor at 96 kHz still looks like one once resampled: the rate decides
    loud96 = hissy_and_plain(96_000)[0] + 0.01 * np.random.default_rng(9).standard_normal(
        (1, 192_000)).astype(np.float32)
    assert has_top_band_floor(resample(loud96, 96_000, 48_000), 48_000, 22050.0)
    assert not auto.hears_floor(loud96, 96_000)
    assert not auto.hears_floor(np.zeros((1, 0), np.float32), 48_000)


def test_a_stereo_track_gets_the_same_answer_in_memory_and_from_its_file(tmp_path):
    """Each channel is judged as the model reads it, levelled on its own: a hissy channel 40
    dB under a clean one is found by the in-memory pass and by the file's pass alike."""
    torch.manual_seed(0)
    denoiser = Denoiser(build_model("bandmask-tiny"), "cpu")
    plain, hissy = hissy_and_plain(48_000, seconds=3.0)
    # a room up to 17 kHz on the loud channel: summed unlevelled, it hides the quiet one's floor
    rng = np.random.default_rng(8)
    room = signal.sosfilt(signal.butter(12, 17_000, fs=48_000, output="sos"),
                          1e-3 * rng.standard_normal(plain.shape))
    stereo = np.concatenate([plain + room, 0.01 * hissy + 0.05]).astype(np.float32)  # DC too
    assert not has_top_band_floor(stereo - stereo.mean(axis=-1, keepdims=True), 48_000, 22050.0)
    assert denoiser.hears_floor(stereo, 48_000)
    sf.write(tmp_path / "in.wav", stereo.T, 48_000, subtype="FLOAT")
    with pytest.warns(UserWarning, match="in.wav: a recording floor .hiss, dither. above 22050"):
        denoiser.denoise_file(tmp_path / "in.wav", tmp_path / "out.wav")
    out = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)[0].T
    cut = Denoiser(denoiser.model, "cpu", InferenceConfig(input_max_hz=22050.0))
    np.testing.assert_allclose(out, cut.denoise(stereo, 48_000), atol=1e-6)


def test_models_that_cannot_be_cut_ignore_the_hiss_cut_and_an_impossible_cut_is_refused():
    """A waveform model has no bins to cut, and a 44.1-kHz model has no band above the
    default cut: both run without the test; a cut asked for above a model's Nyquist is an
    error."""
    thesis = Denoiser(build_model("thesis-tiny"), "cpu")
    assert thesis.hiss_model is None and not thesis.hears_floor(hissy_and_plain(48_000)[1], 48_000)
    slower = build_model("bandmask-tiny", sample_rate=44_100)
    assert Denoiser(slower, "cpu").hiss_model is None
    with pytest.raises(ParameterError, match="below the model.s Nyquist .22050 Hz., not 23000"):
        Denoiser(slower, "cpu", InferenceConfig(hiss_cut_hz=23000.0))
    nyquist = "hiss_cut_hz must be 0 .never cut. or below the model.s Nyquist .24000 Hz., not 30000"
    with pytest.raises(ParameterError, match=nyquist):
        Denoiser(build_model("bandmask-tiny"), "cpu", InferenceConfig(hiss_cut_hz=30000.0))


def test_a_streamed_file_gets_one_answer_for_all_its_blocks(tmp_path):
    """The file path judges the whole track before its first block: every block of a hissy
    file is read cut, as the in-memory pass over the whole track reads it."""
    torch.manual_seed(0)
    model = build_model("bandmask-tiny")
    config = InferenceConfig(segment_seconds=1.0, overlap_seconds=0.1, block_seconds=1.0,
                             block_margin_seconds=0.5)
    streamed = Denoiser(model, "cpu", config)
    cut = Denoiser(model, "cpu", replace(config, input_max_hz=22050.0))
    _, hissy = hissy_and_plain(48_000, seconds=3.5)
    sf.write(tmp_path / "in.wav", hissy.T, 48_000, subtype="FLOAT")
    with pytest.warns(UserWarning, match="read only below it") as said:
        streamed.denoise_file(tmp_path / "in.wav", tmp_path / "out.wav")
    assert len(said) == 1  # once for the file, not once per block
    out, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    reference = cut.denoise_file(tmp_path / "in.wav", tmp_path / "ref.wav")
    np.testing.assert_array_equal(out, sf.read(reference, dtype="float32", always_2d=True)[0])
    whole = Denoiser(model, "cpu", replace(config, hiss_cut_hz=0.0))
    whole.denoise_file(tmp_path / "in.wav", tmp_path / "whole.wav")
    read_whole = sf.read(tmp_path / "whole.wav", dtype="float32", always_2d=True)[0]
    assert np.max(np.abs(out - read_whole)) > 1e-4


def test_device_and_config_validation():
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ParameterError):
        pick_device("tpu")
    with pytest.raises(ParameterError):
        InferenceConfig(overlap_seconds=InferenceConfig().segment_seconds / 2).validate()
    with pytest.raises(ParameterError, match="precision"):
        InferenceConfig(precision="int8").validate()
    with pytest.raises(ParameterError, match="CUDA"):
        Denoiser(build_model("identity"), "cpu", InferenceConfig(precision="float16"))
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA"):
            pick_device("cuda")


def test_a_block_margin_under_the_models_context_is_refused(tmp_path, rng):
    """A margin the config allowed (0 s up to the block) but shorter than what the model
    reads around each sample gave seams at block edges: -19 dB at 0 s for the shipped
    model, whose context is 0.42 s. Enough margin streams as the whole file does."""
    torch.manual_seed(0)
    model = build_model("bandmask-tiny")
    needed = model.context_samples() / model.sample_rate + RESAMPLER_MARGIN_SECONDS
    config = InferenceConfig(segment_seconds=1.0, block_seconds=1.0)
    with pytest.raises(ParameterError, match=r"block margin 0 s is under .* seams"):
        Denoiser(model, "cpu", replace(config, block_margin_seconds=0.0))
    enough = Denoiser(model, "cpu", replace(config, block_margin_seconds=needed))
    audio = bandlimited(rng, 1, 48000 * 3, 48000)
    sf.write(tmp_path / "in.wav", audio.T, 48000, subtype="FLOAT")
    streamed = sf.read(enough.denoise_file(tmp_path / "in.wav", tmp_path / "out.wav"),
                       dtype="float32", always_2d=True)[0].T
    assert np.abs(streamed - enough.denoise(audio, 48000)).max() < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(rng):
    model = build_model("bandmask-tiny")
    audio = rng.standard_normal((1, 48000)).astype(np.float32) * 0.1
    cpu = Denoiser(model, "cpu").denoise(audio, 48000)
    gpu = Denoiser(model, "cuda").denoise(audio, 48000)
    assert np.abs(cpu - gpu).max() < 1e-3
    for precision in ("float16", "bfloat16"):  # mixed precision on the GPU
        mixed = Denoiser(model, "cuda", InferenceConfig(precision=precision)).denoise(audio, 48000)
        error_db = 10 * np.log10(np.sum((mixed - cpu) ** 2) / np.sum(cpu ** 2))
        assert mixed.dtype == np.float32 and error_db < -30, (precision, error_db)

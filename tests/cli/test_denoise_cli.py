"""``debleed denoise`` through click's CliRunner with a tiny bandmask checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import save_checkpoint, serialize
from denoiser.models import build_model

SR = 48_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return save_checkpoint(path, build_model("bandmask-tiny"), {"note": "cli test"})


def run(checkpoint: Path, *args: str | Path):
    return CliRunner().invoke(
        cli, ["denoise", "--model", str(checkpoint), "--device", "cpu", *map(str, args)])


@pytest.mark.parametrize("channels", [1, 2])
def test_denoises_beside_the_input(tmp_path, write_wav, drum_track, checkpoint, channels):
    data = drum_track(channels)
    src = write_wav(tmp_path / "snare.wav", data)
    original = src.read_bytes()
    result = run(checkpoint, src)
    assert result.exit_code == 0, result.output
    dst = tmp_path / "snare.debleed.wav"
    assert result.stdout.strip() == str(dst)
    info = sf.info(str(dst))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        SR, channels, data.shape[1], "FLOAT")
    out, _ = sf.read(str(dst), dtype="float32", always_2d=True)
    assert np.isfinite(out).all() and np.abs(out).max() > 1e-4
    assert src.read_bytes() == original


@pytest.mark.parametrize("rate", [44_100, 48_000])
def test_a_ten_sample_item_comes_back_ten_samples_long(tmp_path, write_wav, checkpoint, rate):
    """Shorter than the model's STFT window (and, at 44.1 kHz, resampled): still denoised."""
    data = np.array([[0.0, 0.4, -0.3, 0.2, -0.1, 0.05, 0.0, 0.0, 0.0, 0.0]], np.float32)
    src = write_wav(tmp_path / "tiny.wav", data, rate)
    result = run(checkpoint, src)
    assert result.exit_code == 0, result.output
    out, out_rate = sf.read(str(tmp_path / "tiny.debleed.wav"), dtype="float32", always_2d=True)
    assert (out_rate, out.shape) == (rate, (10, 1))
    assert np.isfinite(out).all() and np.abs(out).max() > 1e-3


def test_pre_gate_is_applied(tmp_path, write_wav, drum_track, checkpoint):
    """A gate that never opens and closes to silence leaves the mask model nothing: zeros."""
    src = write_wav(tmp_path / "snare.wav", drum_track())
    result = run(checkpoint, src, "--gate", "--threshold-db", "-1", "--range-db", "-inf",
                 "-o", tmp_path / "gated.wav")
    assert result.exit_code == 0, result.output
    out, _ = sf.read(str(tmp_path / "gated.wav"), dtype="float32")
    assert np.abs(out).max() < 1e-6
    plain = run(checkpoint, src, "-o", tmp_path / "plain.wav")
    assert plain.exit_code == 0, plain.output
    assert np.abs(sf.read(str(tmp_path / "plain.wav"), dtype="float32")[0]).max() > 1e-4


def test_sidechain_keys_the_pre_gate(tmp_path, write_wav, drum_track, checkpoint, refused):
    """``--sidechain`` turns the gate on and keys it: a silent trigger is refused (it kept
    the gate shut and wrote a silent take, with exit 0), one that fires throughout keeps it
    open from the first sample (the lookahead is latency-compensated), which is the ungated
    result."""
    data = drum_track()
    src = write_wav(tmp_path / "snare.wav", data)
    silent = write_wav(tmp_path / "silent-trigger.wav", np.zeros_like(data))
    options = ("--range-db", "-inf")
    shut = refused(lambda: run(checkpoint, src, "--sidechain", silent, *options,
                               "-o", tmp_path / "shut.wav"))
    assert shut.stderr == (f"Error: {silent}: the sidechain is silent: it would shut the gate "
                           "over the whole take; key it from a track that plays the hits\n")
    firing = write_wav(tmp_path / "firing-trigger.wav", np.full_like(data, 0.9))
    keyed = run(checkpoint, src, "--sidechain", firing, *options, "-o", tmp_path / "open.wav")
    plain = run(checkpoint, src, "-o", tmp_path / "plain.wav")
    assert keyed.exit_code == 0 and plain.exit_code == 0, keyed.output + plain.output
    opened = sf.read(str(tmp_path / "open.wav"), dtype="float32")[0]
    ungated = sf.read(str(tmp_path / "plain.wav"), dtype="float32")[0]
    assert np.abs(ungated).max() > 1e-4
    np.testing.assert_array_equal(opened, ungated)


def test_sidechain_with_no_gate_or_as_output_is_refused(tmp_path, write_wav, drum_track,
                                                         checkpoint, refused):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    side = write_wav(tmp_path / "trigger.wav", drum_track())
    result = refused(lambda: run(checkpoint, src, "--no-gate", "--sidechain", side))
    assert "(--sidechain)" in result.stderr
    result = refused(lambda: run(checkpoint, src, "--no-gate", "--threshold-db", "-30"))
    assert "(--threshold-db)" in result.stderr  # the flag typed, not the config field
    refused(lambda: run(checkpoint, src, "--sidechain", side, "-o", side))


def test_many_inputs_into_a_folder(tmp_path, write_wav, drum_track, checkpoint):
    one = write_wav(tmp_path / "a.wav", drum_track())
    two = write_wav(tmp_path / "b.wav", drum_track(2), rate=44_100)
    result = run(checkpoint, one, two, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    info = sf.info(str(tmp_path / "out" / "b.debleed.wav"))
    assert (info.samplerate, info.channels, info.frames) == (44_100, 2, SR // 2)
    assert (tmp_path / "out" / "a.debleed.wav").is_file()


@pytest.mark.parametrize("count", [1, 2])
def test_a_dotted_folder_with_a_trailing_slash_is_a_folder(tmp_path, write_wav, drum_track,
                                                           checkpoint, count):
    """``-o "Mix v1.2/"`` was read as a file named with the extension ".2/": refused for
    one input ("name the output .wav") and for two ("name a folder")."""
    inputs = [write_wav(tmp_path / f"{name}.wav", drum_track()) for name in "ab"[:count]]
    result = run(checkpoint, *inputs, "-o", f"{tmp_path / 'Mix v1.2'}/")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "Mix v1.2").iterdir()) == [
        f"{name}.debleed.wav" for name in "ab"[:count]]


def test_bad_input_is_refused_and_nothing_written(bad_input, checkpoint, refused):
    refused(lambda: run(checkpoint, bad_input))


def test_a_bad_last_input_leaves_no_output_of_the_first(tmp_path, write_wav, drum_track,
                                                     checkpoint, bad_input, refused):
    good = write_wav(tmp_path / "good.wav", drum_track())
    silent = write_wav(tmp_path / "silent.wav", np.zeros((1, 4800), np.float32))
    refused(lambda: run(checkpoint, good, bad_input))
    refused(lambda: run(checkpoint, good, silent))


@pytest.mark.parametrize("trouble", ["sidechain", "filter"])
def test_an_input_at_another_rate_stops_the_batch_before_any_output(
        tmp_path, write_wav, drum_track, checkpoint, refused, trouble):
    first = write_wav(tmp_path / "a.wav", drum_track())
    second = write_wav(tmp_path / "b.wav", drum_track(), rate=32_000)
    extra = (["--sidechain", write_wav(tmp_path / "key.wav", drum_track())]
             if trouble == "sidechain" else ["--lpf-hz", "20000"])
    refused(lambda: run(checkpoint, first, second, *extra, "-o", tmp_path / "out"))


def test_a_checkpoint_warning_is_one_line(tmp_path, write_wav, drum_track):
    package = serialize(build_model("bandmask-tiny"))
    package["model_kwargs"]["from_the_future"] = 3
    torch.save(package, tmp_path / "future.pt")
    src = write_wav(tmp_path / "a.wav", drum_track())
    result = run(tmp_path / "future.pt", src)
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "from_the_future" in line]
    assert warning == ["Warning: checkpoint: ignoring unknown bandmask arguments ['from_the_future']"]
    assert "checkpoint.py" not in result.stderr


def test_an_output_that_is_a_folder_stops_the_batch_before_any_output(
        tmp_path, write_wav, drum_track, checkpoint, refused):
    first = write_wav(tmp_path / "a.wav", drum_track())
    second = write_wav(tmp_path / "b.wav", drum_track())
    (tmp_path / "b.debleed.wav").mkdir()
    result = refused(lambda: run(checkpoint, first, second))
    assert "b.debleed.wav: is a folder" in result.stderr


def test_a_gate_setting_the_rate_forbids_creates_no_output_folder(tmp_path, write_wav,
                                                                  drum_track, checkpoint, refused):
    src = write_wav(tmp_path / "a.wav", drum_track())
    refused(lambda: run(checkpoint, src, "--lpf-hz", "30000", "-o", tmp_path / "new" / "deep" / "x.wav"))


@pytest.mark.parametrize("damage", ["truncated flac", "truncated mp3", "truncated wav", "folder"])
def test_damaged_or_odd_inputs_are_one_line(tmp_path, write_wav, drum_track, checkpoint,
                                            refused, damage):
    """A FLAC cut in half fails to decode midway; an MP3 cut in half decodes whole from the
    start but comes up short after a seek. Both were tracebacks. A WAV cut in half decoded
    the half that is there, silently: the take came out shorter than its item."""
    if damage == "folder":
        (tmp_path / "take.wav").mkdir()
        assert "is a folder, not an audio file" in refused(lambda: run(checkpoint, tmp_path / "take.wav")).stderr
        return
    kind = damage.split()[1]
    if kind.upper() not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {kind}")
    whole = tmp_path / f"whole.{kind}"
    sf.write(whole, drum_track(seconds=2.0).T, 48_000, format=kind.upper())
    data = whole.read_bytes()
    whole.unlink()
    damaged = tmp_path / f"cut.{kind}"
    damaged.write_bytes(data[: len(data) // 2])
    error = refused(lambda: run(checkpoint, damaged)).stderr
    assert "damaged audio file" in error or "NaN/inf" in error  # what a cut MP3 decodes to varies
    if kind == "wav":
        assert "cut short" in error
    if kind == "flac":  # (the cut MP3's first half, all a short input keys from, is whole)
        good = write_wav(tmp_path / "good.wav", drum_track())
        refused(lambda: run(checkpoint, good, "--sidechain", damaged))


def test_missing_input_is_refused(tmp_path, checkpoint, refused):
    result = refused(lambda: run(checkpoint, tmp_path / "missing.wav"))
    assert "missing.wav" in result.stderr


@pytest.mark.parametrize("args", [
    ("--gate", "--attack-ms", "-5"), ("--lookahead-ms", "500"), ("--no-gate", "--hold-ms", "10"),
])
def test_absurd_gate_parameter_is_a_user_error(tmp_path, write_wav, drum_track, checkpoint,
                                               refused, args):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    refused(lambda: run(checkpoint, src, *args))


def test_missing_or_corrupt_model_is_a_user_error(tmp_path, write_wav, drum_track, refused):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    refused(lambda: run(tmp_path / "nothing.pt", src))
    refused(lambda: run(junk, src))


def test_never_writes_over_an_input(tmp_path, write_wav, drum_track, checkpoint, refused):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    assert "is the input itself" in refused(lambda: run(checkpoint, src, "-o", src)).stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_without_gpu_is_a_user_error(tmp_path, write_wav, drum_track, checkpoint, refused):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    refused(lambda: CliRunner().invoke(
        cli, ["denoise", "--model", str(checkpoint), "--device", "cuda", str(src)]))


def test_bfloat16_precision_stays_close_to_float32(tmp_path, write_wav, drum_track, checkpoint,
                                                   refused):
    """``--precision bfloat16`` runs the network in bfloat16 (the output differs, so it is
    in effect) and writes float32 within -30 dB of the float32 output; float16 needs CUDA."""
    src = write_wav(tmp_path / "snare.wav", drum_track(1, seconds=1.0))
    assert run(checkpoint, src, "-o", tmp_path / "full.wav").exit_code == 0
    result = run(checkpoint, src, "-o", tmp_path / "half.wav", "--precision", "bfloat16")
    assert result.exit_code == 0, result.output
    full, _ = sf.read(str(tmp_path / "full.wav"), dtype="float32")
    half, _ = sf.read(str(tmp_path / "half.wav"), dtype="float32")
    assert sf.info(str(tmp_path / "half.wav")).subtype == "FLOAT"
    error_db = 10 * np.log10(np.sum((half - full) ** 2) / np.sum(full ** 2))
    assert -80 < error_db < -30, error_db
    if not torch.cuda.is_available():
        refused(lambda: run(checkpoint, src, "-o", tmp_path / "f16.wav", "--precision", "float16"))


def test_input_max_hz_cuts_the_band_the_model_reads(tmp_path, write_wav, drum_track, checkpoint,
                                                    refused, rng):
    """``--input-max-hz 22050``: hiss above 22.05 kHz added to a 48-kHz track moves the
    output below that band a hundred times less than it does with the whole band read (the
    automatic cut off, ``--hiss-cut-hz 0``, so 0 reads every bin); an
    absurd frequency is a one-line error that writes nothing."""
    data = drum_track(1, seconds=1.0)
    hiss = np.fft.rfft(rng.standard_normal(data.shape[1]))
    hiss[: int(23_000 * data.shape[1] / SR)] = 0.0
    hissy = data + 0.01 * np.fft.irfft(hiss, n=data.shape[1]).astype(np.float32)[None]
    outputs = {}
    for name, track in (("plain", data), ("hissy", hissy)):
        src = write_wav(tmp_path / f"{name}.wav", track)
        for limit in ("0", "22050"):
            dst = tmp_path / f"{name}-{limit}.wav"
            result = run(checkpoint, src, "-o", dst, "--input-max-hz", limit, "--hiss-cut-hz", "0")
            assert result.exit_code == 0, result.output
            out, _ = sf.read(str(dst), dtype="float32")
            low = np.fft.rfft(out)
            outputs[name, limit] = low[: int(20_000 * out.size / SR)]
    moved = {limit: np.abs(outputs["hissy", limit] - outputs["plain", limit]).max()
             for limit in ("0", "22050")}
    assert moved["22050"] < 0.01 * moved["0"], moved
    src = tmp_path / "plain.wav"
    for bad in ("-1", "nan", "24000"):
        assert "input_max_hz" in refused(lambda: run(checkpoint, src, "-o", tmp_path / "x.wav",
                                                     "--input-max-hz", bad)).stderr


def test_hiss_cut_hz_reads_a_hissy_track_cut_by_default(tmp_path, write_wav, drum_track, checkpoint,
                                                         refused, rng):
    """A 48-kHz track with white hiss under it is read only below 22.05 kHz by default, the
    same audio as ``--input-max-hz 22050``; ``--hiss-cut-hz 0`` reads it whole; absurd
    values are one-line errors."""
    data = drum_track(1, seconds=1.0)
    hissy = data + (10 ** (-60 / 20) * rng.standard_normal(data.shape)).astype(np.float32)
    src = write_wav(tmp_path / "hissy.wav", hissy)
    outputs = {}
    for name, options in (("default", ()), ("cut", ("--input-max-hz", "22050")),
                          ("whole", ("--hiss-cut-hz", "0"))):
        result = run(checkpoint, src, "-o", tmp_path / f"{name}.wav", *options)
        assert result.exit_code == 0, result.output
        outputs[name] = sf.read(str(tmp_path / f"{name}.wav"), dtype="float32")[0]
        said = f"Warning: {src}: a recording floor (hiss, dither) above 22050 Hz" in result.stderr
        assert said == (name == "default"), result.stderr  # the user is told why, when it is
    np.testing.assert_array_equal(outputs["default"], outputs["cut"])
    assert np.max(np.abs(outputs["default"] - outputs["whole"])) > 1e-4
    # Two files of one name: each is named, by its path (Python shows a repeated warning
    # from one source line only once unless told otherwise).
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    twins = [write_wav(tmp_path / folder / "take.wav", hissy) for folder in ("a", "b")]
    result = run(checkpoint, *twins)
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if "recording floor" in line] == [
        f"Warning: {twin}: a recording floor (hiss, dither) above 22050 Hz: read only below "
        "it (--hiss-cut-hz 0, the REAPER bridge's hiss_cut_hz = 0, reads the whole band)"
        for twin in twins]
    for bad in ("-1", "nan", "24000"):
        assert "hiss_cut_hz" in refused(lambda: run(checkpoint, src, "-o", tmp_path / "x.wav",
                                                    "--hiss-cut-hz", bad)).stderr
    assert not (tmp_path / "x.wav").exists()

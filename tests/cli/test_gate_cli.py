"""``debleed gate`` through click's CliRunner: real files in, real files out."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.gate import GateConfig, apply_gate

SR = 48_000


def run(*args: str | Path):
    return CliRunner().invoke(cli, ["gate", *map(str, args)])


@pytest.mark.parametrize("channels", [1, 2])
def test_gates_beside_the_input(tmp_path, write_wav, drum_track, channels):
    data = drum_track(channels)
    src = write_wav(tmp_path / "snare.wav", data)
    original = src.read_bytes()
    result = run(src, "--threshold-db", "-20", "--hold-ms", "20", "--range-db", "-60")
    assert result.exit_code == 0, result.output
    dst = tmp_path / "snare.gate.wav"
    assert result.stdout.strip() == str(dst)
    info = sf.info(str(dst))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        SR, channels, data.shape[1], "FLOAT")
    out, _ = sf.read(str(dst), dtype="float32", always_2d=True)
    expected = apply_gate(data, SR, GateConfig(threshold_db=-20, hold_ms=20, range_db=-60))
    np.testing.assert_array_equal(out.T, expected)
    # the bleed between the hits is 60 dB down
    between = slice(int(0.25 * SR), int(0.29 * SR))
    assert np.abs(out.T[:, between]).max() < np.abs(data[:, between]).max() * 1.01e-3
    assert src.read_bytes() == original


def test_output_file_and_folder(tmp_path, write_wav, drum_track):
    one = write_wav(tmp_path / "a.wav", drum_track())
    two = write_wav(tmp_path / "b.wav", drum_track(2))
    result = run(one, "-o", tmp_path / "gated.wav")
    assert result.exit_code == 0, result.output
    assert sf.info(str(tmp_path / "gated.wav")).frames == int(0.5 * SR)
    result = run(one, two, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.gate.wav", "b.gate.wav"]
    assert sf.info(str(tmp_path / "out" / "b.gate.wav")).channels == 2


def test_a_bad_last_input_leaves_no_output_of_the_first(tmp_path, write_wav, drum_track,
                                                     bad_input, refused):
    """Every input is checked before the first is written: one error, nothing half done."""
    good = write_wav(tmp_path / "good.wav", drum_track())
    refused(lambda: run(good, bad_input))


@pytest.mark.parametrize("trouble", ["sidechain", "filter"])
def test_an_input_at_another_rate_stops_the_batch_before_any_output(tmp_path, write_wav,
                                                                   drum_track, refused, trouble):
    """The second input is at 32 kHz: the 48-kHz sidechain cannot key it, and a 20-kHz
    detector low-pass is above its Nyquist; the first input's output used to be written."""
    first = write_wav(tmp_path / "a.wav", drum_track())
    second = write_wav(tmp_path / "b.wav", drum_track(), rate=32_000)
    extra = (["--sidechain", write_wav(tmp_path / "key.wav", drum_track())]
             if trouble == "sidechain" else ["--lpf-hz", "20000"])
    result = refused(lambda: run(first, second, *extra, "-o", tmp_path / "out"))
    assert "32000" in result.stderr or "16000" in result.stderr


def test_an_output_name_without_extension_is_a_folder(tmp_path, write_wav, drum_track):
    """``-o cleaned`` with one input, as with several: ``cleaned/NAME.gate.wav``, not a
    WAV file called ``cleaned``; ``.WAV`` in capitals is a file."""
    one = write_wav(tmp_path / "a.wav", drum_track())
    assert run(one, "-o", tmp_path / "cleaned").exit_code == 0
    assert sf.info(str(tmp_path / "cleaned" / "a.gate.wav")).frames == int(0.5 * SR)
    assert run(one, "-o", tmp_path / "LOUD.WAV").exit_code == 0
    assert sf.info(str(tmp_path / "LOUD.WAV")).format == "WAV"


@pytest.mark.parametrize("name", ["gated.flac", "gated.mp3", "gated.aiff"])
def test_an_output_named_as_another_format_is_refused(tmp_path, write_wav, drum_track, refused,
                                                      name):
    """What is written is float32 WAV: a .flac name would hide a WAV in it."""
    one = write_wav(tmp_path / "a.wav", drum_track())
    result = refused(lambda: run(one, "-o", tmp_path / name))
    assert "name the output .wav" in result.stderr


def test_sidechain_is_padded_to_the_input(tmp_path, rng, write_wav):
    data = 0.01 * rng.standard_normal((1, SR // 2)).astype(np.float32)
    key = np.zeros((2, SR // 4), np.float32)
    key[0, 1000:1200] = 0.9
    src = write_wav(tmp_path / "snare.wav", data)
    side = write_wav(tmp_path / "trigger.wav", key)
    result = run(src, "--sidechain", side, "--threshold-db", "-12", "--range-db", "-40")
    assert result.exit_code == 0, result.output
    out, _ = sf.read(str(tmp_path / "snare.gate.wav"), dtype="float32", always_2d=True)
    padded = np.zeros((2, data.shape[1]), np.float32)
    padded[:, :key.shape[1]] = key
    expected = apply_gate(data, SR, GateConfig(threshold_db=-12, range_db=-40), sidechain=padded)
    np.testing.assert_array_equal(out.T, expected)
    np.testing.assert_array_equal(out.T[:, 1000:1200], data[:, 1000:1200])  # opened by the key
    assert np.abs(out.T[:, SR // 4:]).max() < 0.011  # closed after it, where the key is padding


@pytest.mark.parametrize("inputs, options", [(1, []), (1, ["--auto"]), (2, [])],
                         ids=["one", "auto", "batch"])
def test_a_silent_sidechain_is_refused(tmp_path, write_wav, drum_track, refused, inputs, options):
    """An empty trigger export shut the gate over every take: silent outputs, exit 0."""
    srcs = [write_wav(tmp_path / f"snare{n}.wav", drum_track()) for n in range(inputs)]
    side = write_wav(tmp_path / "trigger.wav", np.zeros((1, SR // 2), np.float32))
    result = refused(lambda: run(*srcs, "--sidechain", side, *options, "-o", tmp_path / "out"))
    assert f"Error: {side}: the sidechain is silent" in result.stderr


@pytest.mark.parametrize("lengths", [(0.5,), (1.0, 0.5)], ids=["one", "batch"])
def test_a_sidechain_silent_over_an_input_s_length_is_refused(tmp_path, write_wav, drum_track,
                                                             refused, lengths):
    """The key is read over each input's length only: a trigger whose one hit lies past the
    end of an input keys nothing there, and that output came out silent, exit 0. In a
    batch the key sounds over the first (longer) input but not the second."""
    srcs = [write_wav(tmp_path / f"snare{n}.wav", drum_track(seconds=seconds))
            for n, seconds in enumerate(lengths)]
    key = np.zeros((1, SR), np.float32)
    key[0, int(0.75 * SR):int(0.76 * SR)] = 0.8
    side = write_wav(tmp_path / "trigger.wav", key)
    result = refused(lambda: run(*srcs, "--sidechain", side, "-o", tmp_path / "out"))
    assert result.stderr == (f"Error: {side}: the sidechain is silent over the first 0.500 s, "
                             f"the length of {srcs[-1]} (its sound comes later): it would shut "
                             "the gate over the whole take; key it from a track that plays the "
                             "hits\n")


def test_sidechain_at_another_rate_is_refused(tmp_path, write_wav, drum_track, refused):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    side = write_wav(tmp_path / "trigger.wav", drum_track(), rate=44_100)
    result = refused(lambda: run(src, "--sidechain", side))
    assert "44100" in result.stderr


def test_bad_input_is_refused_and_nothing_written(bad_input, refused):
    assert str(bad_input) in refused(lambda: run(bad_input)).stderr


def test_missing_input_stops_before_any_output(tmp_path, write_wav, drum_track, refused):
    good = write_wav(tmp_path / "good.wav", drum_track())
    result = refused(lambda: run(good, tmp_path / "missing.wav"))
    assert "missing.wav" in result.stderr


@pytest.mark.parametrize("option", [
    ("--attack-ms", "-5"), ("--lookahead-ms", "500"), ("--threshold-db", "30"), ("--wet", "2"),
    ("--hysteresis-db", "3"), ("--hpf-hz", "30000"), ("--rms-ms", "nan"),
])
def test_absurd_parameter_is_a_user_error(tmp_path, write_wav, drum_track, refused, option):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    refused(lambda: run(src, *option))


def test_auto_gates_a_float_take_over_full_scale_as_it_gates_one_under_it(tmp_path, write_wav,
                                                                          hat_bleed_take):
    """A float render peaking at +18 dBFS was gated at a threshold clamped to 0 dBFS, under
    its bleed: the bleed between the hits came out 0.1 dB down instead of 80. The same take
    at -6 dBFS and at +18 dBFS is now gated alike, 24 dB apart, the bleed 80 dB down."""
    cold = write_wav(tmp_path / "cold.wav", hat_bleed_take(-6.0))
    hot = write_wav(tmp_path / "hot.wav", hat_bleed_take(18.0))
    result = run(cold, hot, "--auto", "-o", tmp_path / "out")
    assert result.exit_code == 0 and "Warning" not in result.stderr, result.output
    out_cold, out_hot = (sf.read(str(tmp_path / "out" / f"{name}.gate.wav"), dtype="float32")[0]
                         for name in ("cold", "hot"))
    np.testing.assert_allclose(out_hot / 10 ** (24 / 20), out_cold, rtol=1e-5, atol=1e-9)
    hat = slice(int(0.3125 * SR), int(0.3625 * SR))  # a hi-hat burst clear of the hits
    bleed = sf.read(str(hot), dtype="float32")[0][hat]
    assert 20 * np.log10(np.abs(bleed).max() / np.abs(out_hot[hat]).max()) > 79


def test_auto_at_the_top_threshold_warns_once_naming_the_file(tmp_path, write_wav,
                                                                hat_bleed_take):
    """Hits at +40 dBFS put the bleed over the highest threshold the gate takes (+24
    dBFS): the output is written, with one line saying the gate stays open on the bleed."""
    src = write_wav(tmp_path / "hot.wav", hat_bleed_take(40.0))
    result = run(src, "--auto")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("Warning")]
    assert warned == [f"Warning: {src}: the auto threshold stopped at its top, +24 dBFS, under "
                      "a take peaking at +40.0 dBFS: the gate may stay open on the bleed; turn "
                      "the take down before gating it"]
    assert (tmp_path / "hot.gate.wav").exists()


@pytest.mark.parametrize("threshold, message", [
    ("6", None), ("30", "Error: gate threshold 30.0 dB is outside [-120, +24] dBFS\n")])
def test_a_threshold_over_full_scale_is_taken_up_to_the_top(tmp_path, write_wav, drum_track,
                                                           refused, threshold, message):
    """A float take may peak over 0 dBFS, so may its threshold; +30 dBFS is past any take."""
    src = write_wav(tmp_path / "snare.wav", drum_track())
    if message is None:
        assert run(src, "--threshold-db", threshold).exit_code == 0
    else:
        assert refused(lambda: run(src, "--threshold-db", threshold)).stderr == message


def test_never_writes_over_an_input(tmp_path, write_wav, drum_track, refused):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    side = write_wav(tmp_path / "trigger.wav", drum_track())
    assert "is the input itself" in refused(lambda: run(src, "-o", src)).stderr
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    assert "is the input itself" in refused(lambda: run(src, "-o", link)).stderr
    refused(lambda: run(src, "--sidechain", side, "-o", side))


def test_several_inputs_with_a_file_name_for_o_are_refused(tmp_path, write_wav, drum_track,
                                                           refused):
    """``-o gated.wav`` with two inputs made a folder called gated.wav; an existing
    folder with a dot in its name is still a folder."""
    one = write_wav(tmp_path / "a.wav", drum_track())
    two = write_wav(tmp_path / "b.wav", drum_track())
    result = refused(lambda: run(one, two, "-o", tmp_path / "gated.wav"))
    assert "name a folder" in result.stderr
    (tmp_path / "takes.v2").mkdir()
    assert run(one, two, "-o", tmp_path / "takes.v2").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "takes.v2").iterdir()) == ["a.gate.wav",
                                                                         "b.gate.wav"]


def test_an_earlier_output_among_the_inputs_is_named_as_such(tmp_path, write_wav, drum_track,
                                                            refused):
    """``debleed gate *.wav`` run twice: the first run's outputs match the wildcard."""
    src = write_wav(tmp_path / "s1.wav", drum_track())
    assert run(src).exit_code == 0
    result = refused(lambda: run(src, tmp_path / "s1.gate.wav"))
    assert "also one of the inputs" in result.stderr


def test_two_inputs_with_one_name_are_refused(tmp_path, write_wav, drum_track, refused):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    one = write_wav(tmp_path / "x" / "snare.wav", drum_track())
    two = write_wav(tmp_path / "y" / "snare.wav", drum_track())
    refused(lambda: run(one, two, "-o", tmp_path / "out"))


def test_a_console_that_cannot_print_a_name_still_works(tmp_path, write_wav, drum_track):
    """A Windows console piped to a file is cp1252: printing a Japanese output name (or the
    tables' "ΔSI-SDR") to stdout used to end a finished command with a UnicodeEncodeError
    traceback and exit 1."""
    import os
    import subprocess
    import sys

    src = write_wav(tmp_path / "日本.wav", drum_track())
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    done = subprocess.run([sys.executable, "-m", "debleed.cli.main", "gate", str(src)],
                          capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode("cp1252", "replace")[-500:]
    assert done.stdout.decode("cp1252").strip().endswith("\\u65e5\\u672c.gate.wav")
    assert (tmp_path / "日本.gate.wav").is_file()


def test_two_inputs_one_name_apart_in_case_collide_where_case_is_ignored(
        tmp_path, write_wav, drum_track, refused, monkeypatch):
    """On macOS and Windows "a.wav" and "A.wav" from two folders would write one output."""
    import debleed.cli.outputs as outputs

    monkeypatch.setattr(outputs.sys, "platform", "darwin")
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    first = write_wav(tmp_path / "x" / "snare.wav", drum_track())
    second = write_wav(tmp_path / "y" / "Snare.wav", drum_track())
    result = refused(lambda: run(first, second, "-o", tmp_path / "out"))
    assert "would both be written" in result.stderr


def test_the_progress_bar_goes_to_stderr_on_a_terminal(capsys, monkeypatch):
    """stdout carries only the output paths, which scripts read; rich drew the bar there."""
    import sys

    from debleed.cli.common import progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress("gate", 2) as update:
        update(1, "a.wav")
        update(2, "b.wav")
    out, err = capsys.readouterr()
    assert out == "" and "gate" in err


def screen_lines(text: str) -> list[str]:
    """What a terminal shows of ``text``, line by line: a carriage return or rich's
    erase-line starts the line again, other escape codes (colours, the cursor) show nothing."""
    shown = (re.split(r"\r|\x1b\[2K", line)[-1] for line in text.split("\n"))
    return [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line) for line in shown]


def test_a_warning_raised_under_the_progress_bar_is_a_line_of_its_own(capsys, monkeypatch):
    """``click.echo(err=True)`` wrote past rich's redirection of stderr, onto the end of the
    bar's line: "denoise x.wav ━━━╺━━━ 50% 0:00:00 -:--:--  Warning: ..."."""
    import sys
    import warnings

    from debleed.cli.common import progress, warnings_as_lines

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with warnings_as_lines(), progress("denoise x.wav", 1.0) as update:
        update(0.5)
        warnings.warn("x.wav: a recording floor above 22050 Hz")
        update(1.0)
    _, err = capsys.readouterr()
    assert "Warning: x.wav: a recording floor above 22050 Hz" in screen_lines(err)


def test_output_paths_on_a_terminal_are_lines_of_their_own(tmp_path, write_wav, drum_track,
                                                           capsys, monkeypatch):
    """Printed while the bar is open, each path was glued onto the bar's line."""
    import sys

    srcs = [write_wav(tmp_path / f"{name}.wav", drum_track()) for name in ("a", "b")]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys, "stdout", sys.stderr)  # one terminal shows both
    cli.main(["gate", *map(str, srcs), "-o", str(tmp_path / "out")], standalone_mode=False)
    shown = screen_lines(capsys.readouterr().err)
    assert [line for line in shown if line.endswith(".gate.wav")] == [
        str(tmp_path / "out" / "a.gate.wav"), str(tmp_path / "out" / "b.gate.wav")]


def test_a_long_output_path_on_a_narrow_terminal_stays_one_line(tmp_path, write_wav, drum_track,
                                                                capsys, monkeypatch):
    """rich broke a path wider than the terminal at a space, so a path copied from the
    terminal held a newline; the terminal's own soft wrap keeps it one line."""
    import sys

    src = write_wav(tmp_path / "a.wav", drum_track())
    out = tmp_path / "Big Band 2024 sessions" / "Snare top take 03 (room) final mix.wav"
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys, "stdout", sys.stderr)
    cli.main(["gate", str(src), "-o", str(out)], standalone_mode=False)
    assert str(out) in screen_lines(capsys.readouterr().err)


def test_a_piped_stdout_gets_the_output_paths_alone_beside_a_bar(tmp_path, write_wav, drum_track,
                                                                  capsys, monkeypatch):
    """``debleed gate *.wav > done.txt`` on a terminal: the bar on stderr must not take the
    paths from the pipe."""
    import sys

    src = write_wav(tmp_path / "a.wav", drum_track())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    cli.main(["gate", str(src)], standalone_mode=False)
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'a.gate.wav'}\n" and "gate" in err


def test_a_file_with_more_channels_than_a_track_holds_is_refused_as_a_file(tmp_path, refused):
    """A 300-channel WAV was told to check for a transposed array, advice for the API."""
    src = tmp_path / "c300.wav"
    sf.write(src, np.zeros((480, 300), dtype=np.float32), 48_000, subtype="FLOAT")
    error = refused(lambda: run(src)).stderr
    assert "has 300 channels; debleed handles at most 128" in error
    assert "transposed" not in error

"""Bad numbers and misplaced inputs of ``debleed dataset`` and ``debleed demo``: each is a
clear error before anything is written, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from debleed.cli.main import cli
from training.oneshots import one_shot, write_synthetic_kit


@pytest.fixture(scope="module")
def kit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_kit(tmp_path_factory.mktemp("kit") / "kit", velocities=(1.0,))


@pytest.fixture
def session_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A 2.5 s clean take with snare hits and a 3 s noise bleed take."""
    clean, bleed = tmp_path / "clean", tmp_path / "bleed"
    clean.mkdir()
    bleed.mkdir()
    take = np.zeros(int(2.5 * 48000), np.float32)
    shot = one_shot("snare", 190, 0.1, 0.2, 1.0)
    for t in (0.2, 0.7, 1.2, 1.7):
        take[int(t * 48000):int(t * 48000) + shot.size] += shot
    sf.write(clean / "take.wav", take, 48000, subtype="FLOAT")
    sf.write(bleed / "bleed.wav", 0.05 * np.random.default_rng(0).standard_normal(3 * 48000),
             48000, subtype="FLOAT")
    return clean, bleed


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def synth(kit: Path, out: Path, *extra: str) -> Result:
    return invoke("dataset", "synth", "--kit", kit, "--out", out, "--clip-seconds", "1", *extra)


def session(clean: Path, bleed: Path, out: Path, *extra: str) -> Result:
    return invoke("dataset", "session", "--clean", clean, "--bleed", bleed, "--out", out,
                  "--clip-seconds", "1", *extra)


@pytest.mark.parametrize("option, value", [
    ("--seed", "-5"), ("--hours", "nan"), ("--hours", "inf"), ("--hours", "0")])
def test_synth_refuses_bad_numbers_as_usage_errors(kit_dir, tmp_path, option, value):
    given = {"--hours": "0.001", "--seed": "1", option: value}
    result = synth(kit_dir, tmp_path / "out", *[a for item in given.items() for a in item])
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_synth_refuses_more_hours_than_a_count_holds(kit_dir, tmp_path, refused):
    result = refused(lambda: synth(kit_dir, tmp_path / "out", "--hours", "1e306", "--seed", "1"))
    assert "more audio than any disk holds" in result.stderr


@pytest.mark.parametrize("option, value", [("--seed", "-5"), ("--clips-per-take", "0")])
def test_session_refuses_bad_counts_as_usage_errors(session_dirs, tmp_path, option, value):
    result = session(*session_dirs, tmp_path / "out", option, value)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("seconds", ["0", "nan", "0.001"])
def test_session_clip_length_has_the_synth_minimum(session_dirs, tmp_path, refused, seconds):
    """0 and NaN crashed; 0.001 s wrote 2500 clips of 48 samples."""
    result = refused(lambda: session(*session_dirs, tmp_path / "out", "--clip-seconds", seconds))
    assert "--clip-seconds must be between 0.5 and 600" in result.stderr


def test_demo_refuses_a_negative_seed(tmp_path):
    result = invoke("demo", "--out", tmp_path / "demo", "--seed", "-1")
    assert result.exit_code == 2 and "Invalid value for '--seed'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "demo").exists()


@pytest.mark.parametrize("inside", ["clean/ds", "bleed/ds"])
def test_session_out_inside_an_input_folder_is_refused(session_dirs, tmp_path, refused, inside):
    """Else the next run reads the dataset's noisy/clean/bleed.wav as takes."""
    result = refused(lambda: session(*session_dirs, tmp_path / inside))
    assert "may not lie in the input folder" in result.stderr


def test_session_refuses_a_clean_take_that_cancels_in_mono(session_dirs, tmp_path, refused):
    """Left and right in antiphase average to silence: the targets would be all zero."""
    clean, bleed = session_dirs
    hits, _ = sf.read(clean / "take.wav", dtype="float32")
    sf.write(clean / "stereo.wav", np.stack([hits, -hits], axis=1), 48000, subtype="FLOAT")
    result = refused(lambda: session(clean, bleed, tmp_path / "out"))
    assert f"{clean / 'stereo.wav'}: take is silent" in result.stderr


def test_synth_refuses_a_folder_of_kits(tmp_path, refused):
    """Read as one-shots, each whole kit became one 'rimshot' instrument, cymbals and all."""
    parent = tmp_path / "drumkits"
    write_synthetic_kit(parent / "KitA", velocities=(1.0,), seed=1)
    write_synthetic_kit(parent / "KitB", velocities=(1.0,), seed=2)
    result = refused(lambda: synth(parent, tmp_path / "out", "--hours", "0.001", "--seed", "1"))
    assert "holds Hydrogen kits (KitA, KitB)" in result.stderr
    assert "one --kit per kit" in result.stderr

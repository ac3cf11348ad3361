"""The recording chain under the bleed: a preamp's white floor and a dithered 16-bit export,
off by default and drawn last, so sets rendered before it existed are unchanged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import signal

from debleed.cli.main import cli
from training.recording import EXPORT_BITS, add_recording_chain, quantise, white_floor
from training.synth import SynthConfig, render_clip


def test_the_floor_is_white_at_its_level():
    floor = white_floor(np.random.default_rng(0), 480_000, -80.0)
    assert 20 * np.log10(np.sqrt(np.mean(floor.astype(np.float64) ** 2))) == pytest.approx(-80, abs=0.05)
    freqs, power = signal.welch(floor, fs=48000, nperseg=4096)
    low, high = power[(freqs > 200) & (freqs < 2000)].mean(), power[freqs > 15000].mean()
    assert abs(10 * np.log10(high / low)) < 0.5  # flat, unlike the room tone's dark band


def test_an_export_lands_on_the_16_bit_grid_with_dither():
    rng = np.random.default_rng(1)
    x = (0.3 * np.sin(np.arange(48000) / 7.0)).astype(np.float32)
    y = quantise(x, EXPORT_BITS, rng)
    steps = y.astype(np.float64) * 2 ** (EXPORT_BITS - 1)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    error_db = 20 * np.log10(np.sqrt(np.mean((y.astype(np.float64) - x) ** 2)))
    # rounding (1/12 LSB²) plus TPDF dither (1/6 LSB²): 0.5 LSB RMS, about -102 dBFS
    assert error_db == pytest.approx(20 * np.log10(0.5 / 2 ** 15), abs=0.3)


def test_probability_zero_draws_nothing_and_one_adds_both(synthetic_kit):
    plain = render_clip(synthetic_kit, 11)
    again = render_clip(synthetic_kit, 11, replace(SynthConfig(), floor_probability=0.0,
                                                   quantise_probability=0.0))
    np.testing.assert_array_equal(plain.noisy, again.noisy)
    assert "floor_dbfs" not in plain.meta and "bits" not in plain.meta
    chained = render_clip(synthetic_kit, 11, replace(SynthConfig(), floor_probability=1.0,
                                                     quantise_probability=1.0))
    np.testing.assert_array_equal(chained.clean, plain.clean)  # the target stays the snare
    np.testing.assert_array_equal(chained.noisy, chained.clean + chained.bleed)
    assert -110 <= chained.meta["floor_dbfs"] <= -66 and chained.meta["bits"] == 16
    added = chained.noisy.astype(np.float64) - plain.noisy
    level = 20 * np.log10(np.sqrt(np.mean(added ** 2)))
    assert level == pytest.approx(10 * np.log10(10 ** (chained.meta["floor_dbfs"] / 10)
                                                + 10 ** (-101.1 / 10)), abs=0.5)


def test_the_chain_only_touches_the_bleed():
    rng = np.random.default_rng(2)
    clean = (0.2 * rng.standard_normal(4800)).astype(np.float32)
    bleed = np.zeros(4800, np.float32)
    out, info = add_recording_chain(clean, bleed, rng, 1.0, (-70.0, -70.0), 0.0)
    assert info == {"floor_dbfs": -70.0}
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-70, abs=0.3)


def test_dataset_synth_takes_the_chain_options(synthetic_kit_dir, tmp_path):
    result = CliRunner().invoke(cli, [
        "dataset", "synth", "--kit", str(synthetic_kit_dir), "--out", str(tmp_path / "set"),
        "--hours", str(2 * 10 / 3600), "--seed", "3", "--floor-probability", "1",
        "--quantise-probability", "1"])
    assert result.exit_code == 0, result.output
    metas = [p.read_text() for p in (tmp_path / "set").glob("*/meta.json")]
    assert len(metas) == 2 and all('"floor_dbfs"' in m and '"bits": 16' in m for m in metas)
    refused = CliRunner().invoke(cli, [
        "dataset", "synth", "--kit", str(synthetic_kit_dir), "--out", str(tmp_path / "bad"),
        "--hours", "0.01", "--seed", "3", "--floor-probability", "1.5"])
    assert refused.exit_code == 2 and not (tmp_path / "bad").exists()

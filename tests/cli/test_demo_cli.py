"""``debleed demo`` end to end with a tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import save_checkpoint
from denoiser.engine import Denoiser
from denoiser.models import build_model
from training.demo import run_demo


def test_demo_renders_and_denoises(tmp_path):
    model = save_checkpoint(tmp_path / "tiny.pt", build_model("bandmask-tiny"))
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--model", str(model)])
    assert result.exit_code == 0, result.output
    names = ["demo_noisy.wav", "demo_clean.wav", "demo_noisy.debleed.wav"]
    for name in names:
        assert str(out / name) in result.output
    noisy, rate = sf.read(out / names[0], dtype="float32")
    clean, _ = sf.read(out / names[1], dtype="float32")
    denoised, _ = sf.read(out / names[2], dtype="float32")
    assert rate == 48000 and noisy.shape == clean.shape == denoised.shape == (8 * 48000,)
    assert np.max(np.abs(clean)) > 0.01 and np.max(np.abs(noisy - clean)) > 0.001


def test_demo_with_missing_model_writes_nothing(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--model",
                                      str(tmp_path / "absent.pt")])
    assert result.exit_code == 1 and result.output.startswith("Error:")
    assert not out.exists()


def test_a_demo_whose_last_file_cannot_be_written_leaves_none(tmp_path):
    """The noisy and clean files stayed behind when the denoised one failed."""
    model = save_checkpoint(tmp_path / "tiny.pt", build_model("bandmask-tiny"))
    out = tmp_path / "demo"
    (out / "demo_noisy.debleed.wav").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--model", str(model)])
    assert result.exit_code == 1 and result.stderr.strip().splitlines()[-1].startswith("Error:")
    assert [path.name for path in out.iterdir()] == ["demo_noisy.debleed.wav"]


def test_a_demo_stopped_while_denoising_keeps_the_earlier_three(tmp_path, monkeypatch):
    """Ctrl-C (or an error) while denoising had already replaced demo_noisy.wav and
    demo_clean.wav with the new seed's, beside the old seed's demo_noisy.debleed.wav."""
    model = save_checkpoint(tmp_path / "tiny.pt", build_model("bandmask-tiny"))
    out = tmp_path / "demo"
    run_demo(out, seed=0, model=model)
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Denoiser, "denoise_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, seed=1, model=model)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert len(before) == 3

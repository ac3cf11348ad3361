"""``debleed soup``: checkpoints of one architecture in, their average out, runnable."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import load_checkpoint, save_checkpoint
from denoiser.models import build_model


def saved(folder, name: str, seed: int, preset: str = "bandmask-tiny"):
    torch.manual_seed(seed)
    return save_checkpoint(folder / name, build_model(preset), extra={"epoch": seed})


def test_writes_the_average_that_denoise_runs(tmp_path, write_wav, drum_track):
    first, second = saved(tmp_path, "a.pt", 0), saved(tmp_path, "b.pt", 1)
    out = tmp_path / "soup.pt"
    result = CliRunner().invoke(cli, ["soup", str(first), str(second), "-o", str(out),
                                      "--weights", "1,3"])
    assert result.exit_code == 0, result.output
    assert "average of 2 bandmask networks" in result.output
    mixed, info = load_checkpoint(out)
    a, _ = load_checkpoint(first)
    b, _ = load_checkpoint(second)
    assert torch.allclose(mixed.project.weight, 0.25 * a.project.weight + 0.75 * b.project.weight)
    assert [s["weight"] for s in info["extra"]["soup"]] == [0.25, 0.75]
    assert [s["extra"]["epoch"] for s in info["extra"]["soup"]] == [0, 1]
    src = write_wav(tmp_path / "snare.wav", drum_track(1))
    result = CliRunner().invoke(cli, ["denoise", "--model", str(out), "--device", "cpu", str(src)])
    assert result.exit_code == 0, result.output
    processed, rate = sf.read(str(tmp_path / "snare.debleed.wav"), always_2d=True)
    assert rate == 48_000 and np.isfinite(processed).all() and np.abs(processed).max() > 0.01


def test_bad_soups_are_refused_and_nothing_written(tmp_path, refused):
    first, second = saved(tmp_path, "a.pt", 0), saved(tmp_path, "b.pt", 1)
    thesis = saved(tmp_path, "thesis.pt", 2, "thesis-tiny")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    out = str(tmp_path / "soup.pt")
    runner = CliRunner()
    refused(lambda: runner.invoke(cli, ["soup", str(first), "-o", out]))
    refused(lambda: runner.invoke(cli, ["soup", str(first), str(thesis), "-o", out]))
    refused(lambda: runner.invoke(cli, ["soup", str(first), str(tmp_path / "broken.pt"), "-o", out]))
    refused(lambda: runner.invoke(cli, ["soup", str(first), str(second), "-o", str(second)]))
    for weights in ("1", "1,x", "1,-1", "0,0", "1,nan"):
        refused(lambda: runner.invoke(cli, ["soup", str(first), str(second), "-o", out,
                                            "--weights", weights]))

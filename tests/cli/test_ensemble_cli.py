"""``debleed ensemble``: members in, one checkpoint out that ``debleed denoise`` runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import load_checkpoint, save_checkpoint
from denoiser.models import build_model


def members(folder: Path) -> list[Path]:
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(save_checkpoint(folder / f"m{seed}.pt", build_model("bandmask-tiny"),
                                     extra={"epoch": seed + 3}))
    return paths


def test_builds_a_checkpoint_that_denoise_runs(tmp_path, write_wav, drum_track):
    first, second = members(tmp_path)
    out = tmp_path / "bag.pt"
    result = CliRunner().invoke(cli, ["ensemble", str(first), str(second), "-o", str(out)])
    assert result.exit_code == 0, result.output
    bag, info = load_checkpoint(out)
    assert info["model_name"] == "ensemble" and len(bag.members) == 2
    assert [m["file"] for m in info["extra"]["members"]] == ["m0.pt", "m1.pt"]
    assert [m["extra"]["epoch"] for m in info["extra"]["members"]] == [3, 4]
    src = write_wav(tmp_path / "snare.wav", drum_track(2))
    result = CliRunner().invoke(cli, ["denoise", "--model", str(out), "--device", "cpu", str(src)])
    assert result.exit_code == 0, result.output
    processed, rate = sf.read(str(tmp_path / "snare.debleed.wav"), always_2d=True)
    assert rate == 48_000 and processed.shape == (drum_track(2).shape[1], 2)
    assert np.isfinite(processed).all() and np.abs(processed).max() > 0.01


def test_the_shipped_model_can_take_another_member(tmp_path, refused):
    """The README's ``debleed ensemble default runs/mine/best.pt --combine power
    --min-below-hz 150``: a full-size network joins the shipped bag as a third group; the
    shipped power mean cannot join a max ensemble."""
    torch.manual_seed(0)
    mine = save_checkpoint(tmp_path / "mine.pt", build_model("bandmask"))
    out = tmp_path / "bag.pt"
    result = CliRunner().invoke(cli, ["ensemble", "default", str(mine), "-o", str(out),
                                      "--combine", "power", "--min-below-hz", "150"])
    assert result.exit_code == 0, result.output
    bag, info = load_checkpoint(out)
    assert len(bag.members) == 4 and bag.groups == [[0, 1], [2], [3]]
    assert info["extra"]["members"][0]["model_name"] == "ensemble"
    refused(lambda: CliRunner().invoke(cli, ["ensemble", "default", str(mine), "-o", str(out)]))


def test_bad_members_are_refused_and_nothing_written(tmp_path, refused):
    first, second = members(tmp_path)
    thesis = save_checkpoint(tmp_path / "thesis.pt", build_model("thesis-tiny"))
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    out = str(tmp_path / "bag.pt")
    runner = CliRunner()
    refused(lambda: runner.invoke(cli, ["ensemble", str(first), "-o", out]))
    refused(lambda: runner.invoke(cli, ["ensemble", str(first), str(thesis), "-o", out]))
    refused(lambda: runner.invoke(cli, ["ensemble", str(first), str(tmp_path / "broken.pt"), "-o", out]))
    refused(lambda: runner.invoke(cli, ["ensemble", str(first), str(second), "-o", str(first)]))
    refused(lambda: runner.invoke(cli, ["ensemble", str(first), str(second), "-o", out,
                                        "--min-below-hz", "150"]))  # max has no cutoff
    refused(lambda: runner.invoke(cli, ["ensemble", str(first), str(second), "-o", out,
                                        "--combine", "power", "--min-below-hz", "30000"]))


def test_power_blend_with_a_low_cutoff(tmp_path):
    """``--combine power --min-below-hz``: a max ensemble among the members is one group."""
    first, second = members(tmp_path)
    pair = tmp_path / "pair.pt"
    assert CliRunner().invoke(cli, ["ensemble", str(first), str(second), "-o", str(pair)]).exit_code == 0
    torch.manual_seed(7)
    third = save_checkpoint(tmp_path / "third.pt", build_model("bandmask-tiny"))
    out = tmp_path / "blend.pt"
    result = CliRunner().invoke(cli, ["ensemble", str(pair), str(third), "-o", str(out),
                                      "--combine", "power", "--min-below-hz", "150"])
    assert result.exit_code == 0, result.output
    assert "power of 3 networks" in result.output
    bag, info = load_checkpoint(out)
    assert info["model_kwargs"]["combine"] == "power" and bag.groups == [[0, 1], [2]]
    assert info["model_kwargs"]["min_below_hz"] == 150.0 and bag.low_bins == 1


def test_one_power_ensemble_is_cut_again_above_a_frequency(tmp_path, refused):
    """``debleed ensemble BAG.pt --combine power --min-above-hz 5000``: the same networks
    and groups, the smallest mask from 5 kHz up; a single plain network is refused."""
    first, second = members(tmp_path)
    blend = tmp_path / "blend.pt"
    assert CliRunner().invoke(cli, ["ensemble", str(first), str(second), "-o", str(blend),
                                    "--combine", "power", "--min-below-hz", "150"]).exit_code == 0
    out = tmp_path / "cut.pt"
    result = CliRunner().invoke(cli, ["ensemble", str(blend), "-o", str(out), "--combine", "power",
                                      "--min-below-hz", "150", "--min-above-hz", "5000"])
    assert result.exit_code == 0, result.output
    before, _ = load_checkpoint(blend)
    after, info = load_checkpoint(out)
    assert info["model_kwargs"]["min_above_hz"] == 5000.0 and after.groups == before.groups
    assert after.high_bin == 27 and after.low_bins == before.low_bins == 1  # 27 * 187.5 >= 5000
    assert all(torch.equal(v, after.state_dict()[k]) for k, v in before.state_dict().items())
    refused(lambda: CliRunner().invoke(cli, ["ensemble", str(first), "-o", str(tmp_path / "x.pt"),
                                             "--combine", "power"]))
    refused(lambda: CliRunner().invoke(cli, ["ensemble", str(first), str(second), "-o",
                                             str(tmp_path / "y.pt"), "--min-above-hz", "5000"]))

"""The DDP path on CPU: ``torchrun`` with two gloo processes runs ``debleed train``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from denoiser.checkpoint import load_checkpoint, save_checkpoint
from denoiser.models import build_model
from denoiser.models.ensemble import MaskEnsemble
from training.synth import SynthConfig, render_dataset
from training.trainer import read_history

TIMEOUT_S = 240   # two interpreters importing torch on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def data(synthetic_kit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_dataset([synthetic_kit_dir], tmp_path_factory.mktemp("data") / "set",
                          hours=10 * 2.0 / 3600, seed=0, config=SynthConfig(clip_seconds=2.0),
                          valid_fraction=0.2)


def torchrun_train(data: Path | None, run: Path, *options: str,
                   program: tuple[str, ...] = ("-m", "debleed.cli.main")
                   ) -> subprocess.CompletedProcess:
    """``debleed train`` in two gloo processes, tiny steps; ``program`` runs the CLI; no
    ``data``: ``options`` name --kit folders."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               *program, "train", *([] if data is None else [str(data)]), "--out", str(run),
               "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "2",
               "--segment-seconds", "0.5", "--valid-clips", "1", "--threads", "1",
               "--device", "cpu", *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # once: rank 0's (every rank printed it)
    assert result.stdout.count("best checkpoint:") == 1, result.stdout
    assert f"best checkpoint: {run / 'best.pt'}" in result.stdout
    return result


def test_torchrun_two_cpu_processes(data: Path, tmp_path: Path):
    run = tmp_path / "run"
    torchrun_train(data, run, "--model", "bandmask-tiny")
    model, info = load_checkpoint(run / "best.pt")
    assert model.name == "bandmask" and info["training_config"]["epochs"] == 2
    history = read_history(run)
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["train_loss"] == h["train_loss"] for h in history)   # not NaN
    # both processes' segments: the card gave one process's batch as the run's
    assert [(h["world_size"], h["global_batch"]) for h in history] == [(2, 4), (2, 4)]
    card = (run / "MODEL_CARD.md").read_text()
    assert "- Epochs run: 2, 4 steps;" in card, card
    assert ", batch 4 (2 per process x 2 processes) x 0.5 s," in card, card


def test_torchrun_with_a_frozen_ensemble_member(data: Path, tmp_path: Path):
    """DDP must see the freeze: it records at construction which parameters get gradients."""
    torch.manual_seed(0)
    bag = MaskEnsemble.of([build_model("bandmask-tiny"), build_model("bandmask-tiny")])
    start = save_checkpoint(tmp_path / "bag.pt", bag)
    run = tmp_path / "run"
    torchrun_train(data, run, "--init", str(start), "--freeze", "members.0")
    model, _ = load_checkpoint(run / "best.pt")
    for name, value in bag.state_dict().items():
        assert torch.equal(model.state_dict()[name], value) == name.startswith("members.0."), name


def test_a_resumed_torchrun_run_gives_the_same_weights(data: Path, tmp_path: Path):
    """Each rank draws its own gains: a resume used to give every rank rank 0's random
    state, and its weights drifted from an uninterrupted run's."""
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    torchrun_train(data, straight, "--model", "bandmask-tiny", "--epochs", "3")
    torchrun_train(data, halves, "--model", "bandmask-tiny", "--epochs", "1")
    torchrun_train(data, halves, "--resume", "--epochs", "3")
    a, b = (torch.load(run / "last.pt", weights_only=True)["model"]["state_dict"]
            for run in (straight, halves))
    assert all(torch.equal(a[k], b[k]) for k in a)


RISING_VALIDATION = """
import sys
from dataclasses import replace

import torch

import training.run
from debleed.cli.main import cli
from training.trainer import Trainer

out = sys.argv.pop(1)
validate, fit, run_training = Trainer.validate, Trainer.fit, training.run.run_training


def rising(self):  # every epoch validates worse than the one before
    return {**validate(self), "valid_loss": float(self.epoch + 1)}


def reporting_fit(self, extra=None):
    history = fit(self, extra)
    torch.save({"lr": [group["lr"] for group in self.optimizer.param_groups],
                "parameters": {name: value.detach() for name, value
                               in self.model.named_parameters()}},
               f"{out}/rank{self.world.rank}.pt")
    return history


def lowering_at_once(config, *args, **kwargs):
    return run_training(replace(config, plateau_patience=1, plateau_factor=0.1), *args, **kwargs)


Trainer.validate, Trainer.fit = rising, reporting_fit
training.run.run_training = lowering_at_once
sys.argv[0] = "debleed"
cli()
"""


def test_every_rank_lowers_its_lr_with_rank_0(data: Path, tmp_path: Path):
    """Only rank 0 validates, and its plateau schedule alone used to step: after a drop the
    other rank trained on at the old lr and the ranks' weights drifted apart. Here every
    epoch validates worse, so the lr drops after epochs 2 and 3 on every rank."""
    script, report = tmp_path / "rising.py", tmp_path / "report"
    script.write_text(RISING_VALIDATION)
    report.mkdir()
    run = tmp_path / "run"
    torchrun_train(data, run, "--model", "bandmask-tiny", "--epochs", "3", "--lr", "1e-3",
                   program=(str(script), str(report)))
    history = json.loads((run / "history.json").read_text())
    assert [h["lr"] for h in history] == pytest.approx([1e-3, 1e-3, 1e-4])
    ranks = [torch.load(report / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert ranks[0]["lr"] == ranks[1]["lr"] == pytest.approx([1e-5])
    # the parameters; BatchNorm's running statistics are each rank's own until DDP
    # broadcasts rank 0's at the next forward pass
    assert all(torch.equal(value, ranks[1]["parameters"][name])
               for name, value in ranks[0]["parameters"].items())


REPORTING_TEACHER = """
import sys

import torch

from debleed.cli.main import cli
from training.trainer import Trainer

out = sys.argv.pop(1)
fit = Trainer.fit


def reporting_fit(self, extra=None):
    torch.save({"teacher": self.guard.teacher.state_dict(), "network": self.model.state_dict()},
               f"{out}/rank{self.world.rank}.pt")
    return fit(self, extra)


Trainer.fit = reporting_fit
sys.argv[0] = "debleed"
cli()
"""


def test_every_rank_holds_its_network_to_rank_0s_teacher(synthetic_kit_dir: Path,
                                                         tmp_path: Path):
    """The guard's teacher is the --init model grown by --model-kwargs (here a third
    residual block, drawn at random): each rank drew it from its own seed, and DDP, which
    gives the network rank 0's weights, never saw the teacher, so rank 1 held its network
    to another model than the one it started as, whose output differed."""
    torch.manual_seed(3)
    start = save_checkpoint(tmp_path / "start.pt", build_model("bandmask-tiny"))
    script, report = tmp_path / "teacher.py", tmp_path / "report"
    script.write_text(REPORTING_TEACHER)
    report.mkdir()
    torchrun_train(None, tmp_path / "run", "--kit", str(synthetic_kit_dir), "--init", str(start),
                   "--model-kwargs", '{"dilations": [1, 2, 4]}', "--guard-weight", "1",
                   "--guard-batch-size", "1", "--epochs", "1", "--steps-per-epoch", "1",
                   program=(str(script), str(report)))
    ranks = [torch.load(report / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    network = ranks[0]["network"]  # as every rank starts: DDP's broadcast of rank 0's
    assert "blocks.2.body.0.weight" in network
    for rank in ranks:
        assert rank["teacher"].keys() == network.keys()
        assert all(torch.equal(rank["teacher"][name], value) for name, value in network.items())


RECORDING_CUTS = """
import json
import sys

import training.trainer
from debleed.cli.main import cli
from training.trainer import Trainer

out = sys.argv.pop(1)
input_cut, common_step, fit = training.trainer.input_cut, Trainer.common_step, Trainer.fit
cuts = []


def recording_cut(model, max_hz):
    cuts.append(max_hz)
    return input_cut(model, max_hz)


def recording_step(self, noisy, clean, train, hits=None):
    before = len(cuts)
    loss = common_step(self, noisy, clean, train, hits)
    if train:
        self.cut_steps.append(len(cuts) > before)
    return loss


def recording_fit(self, extra=None):
    self.cut_steps = []
    history = fit(self, extra)
    with open(f"{out}/rank{self.world.rank}.json", "w") as file:
        json.dump(self.cut_steps, file)
    return history


training.trainer.input_cut = recording_cut
Trainer.common_step, Trainer.fit = recording_step, recording_fit
sys.argv[0] = "debleed"
cli()
"""


def test_every_rank_cuts_the_same_steps(data: Path, tmp_path: Path):
    """Whether a step reads through the hiss cut (--cut-input-share) is drawn alike on every
    rank: each rank's own generator (``Trainer.rng``) would send one rank's half of a batch
    through the cut and the other's through the whole band, another step than either."""
    script, report = tmp_path / "cuts.py", tmp_path / "report"
    script.write_text(RECORDING_CUTS)
    report.mkdir()
    torchrun_train(data, tmp_path / "run", "--model", "bandmask-tiny", "--epochs", "3",
                   "--cut-input-share", "0.5", program=(str(script), str(report)))
    ranks = [json.loads((report / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0] == ranks[1] and len(ranks[0]) == 6
    assert 0 < sum(ranks[0]) < 6, ranks  # some steps cut, some not

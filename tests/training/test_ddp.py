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


def torchrun_train(data: Path, run: Path, *options: str) -> subprocess.CompletedProcess:
    """``debleed train`` in two gloo processes, tiny steps."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               "-m", "debleed.cli.main", "train", str(data), "--out", str(run),
               "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "2",
               "--segment-seconds", "0.5", "--valid-clips", "1", "--threads", "1",
               "--device", "cpu", *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"best checkpoint: {run / 'best.pt'}" in result.stdout
    return result


def test_torchrun_two_cpu_processes(data: Path, tmp_path: Path):
    run = tmp_path / "run"
    torchrun_train(data, run, "--model", "bandmask-tiny")
    model, info = load_checkpoint(run / "best.pt")
    assert model.name == "bandmask" and info["training_config"]["epochs"] == 2
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["train_loss"] == h["train_loss"] for h in history)   # not NaN


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

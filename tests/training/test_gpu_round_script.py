"""scripts/gpu-round, the lent GPU sessions' one command, run here on the CPU: it starts
the declared run, a second call resumes it, and each trains in $OUT/run so the run's files
come back even from a call stopped at its limit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu-round"
TRAINING_KITS = ("GMRockKit", "ForzeeStereo", "Millo-Drums_v.1", "Millo_MultiLayered2",
                 "ColomboAcousticDrumkit", "rumpf_kit_z01_h2")
SMALL = ["--steps-per-epoch", "1", "--batch-size", "2", "--segment-seconds", "0.5",
         "--valid-clips", "1", "--threads", "1", "--precision", "float32"]


def gpu_round(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE": "cpu", "WORKERS": "0",
           "MINUTES": "0.001", "RUN": str(tmp_path / "run"), "KITS": str(tmp_path / "kits"),
           "OUT": str(tmp_path / "out")}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_gpu_round_starts_then_resumes_and_hands_the_run_back(synthetic_kit_dir: Path,
                                                              tmp_path: Path):
    (tmp_path / "kits").mkdir()
    for name in TRAINING_KITS:   # the same small kit under each training kit's folder name
        (tmp_path / "kits" / name).symlink_to(synthetic_kit_dir, target_is_directory=True)
    out, committed = tmp_path / "out", tmp_path / "run"
    out.mkdir()

    first = gpu_round(tmp_path, "train", *SMALL)
    assert first.returncode == 0, first.stderr[-2000:]
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["loss"]["segsnr"] == 0.15 and config["model_kwargs"] == {"frame_gate": True}
    assert config["synth"] == {"procedural_snare_probability": 0.1}
    assert config["kits"][0].endswith("kits/GMRockKit") and config["device"] == "cpu"
    started = json.loads((out / "run" / "history.json").read_text())
    assert not committed.exists()            # nothing is written outside $OUT there

    shutil.copytree(out / "run", committed)  # here: the files committed after the call
    shutil.rmtree(out)                       # the next call's $OUT starts empty
    out.mkdir()
    second = gpu_round(tmp_path, "train", "--threads", "1")
    assert second.returncode == 0, second.stderr[-2000:]
    resumed = json.loads((out / "run" / "history.json").read_text())
    assert len(resumed) == len(started) + 1
    assert resumed[:len(started)] == started            # continued, not started again
    assert json.loads((out / "run" / "config.json").read_text())["batch_size"] == 2  # the run's own
    assert json.loads((committed / "history.json").read_text()) == started   # left as it was
    assert sorted(p.name for p in (out / "run").iterdir()) == sorted(
        ["last.pt", "best.pt", "history.json", "config.json", "MODEL_CARD.md", "loss.png"])


def test_gpu_round_without_a_verb_says_how_to_use_it(tmp_path: Path):
    result = gpu_round(tmp_path)
    assert result.returncode == 2 and "usage: scripts/gpu-round prepare|train" in result.stderr

"""How a torchrun worker ends: without the interpreter's teardown, output flushed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

WORKER = """
import atexit, sys
from training.distributed import end_worker_process
atexit.register(lambda: print("teardown ran"))
print("checkpoint written")          # buffered: stdout is a pipe
sys.stderr.write("a warning\\n")
end_worker_process()
print("after the end")
"""


def run_worker(world_size: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "WORLD_SIZE"}
    if world_size is not None:
        env["WORLD_SIZE"] = world_size
    return subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True,
                          env=env, timeout=120)


def test_a_torchrun_worker_ends_at_once_with_its_output_flushed():
    result = run_worker("2")
    assert result.returncode == 0
    assert result.stdout == "checkpoint written\n"       # no teardown, nothing after
    assert result.stderr == "a warning\n"


@pytest.mark.parametrize("world_size", [None, "1"])
def test_a_single_process_ends_normally(world_size: str | None):
    result = run_worker(world_size)
    assert result.returncode == 0
    assert result.stdout == "checkpoint written\nafter the end\nteardown ran\n"


def test_gpu_ranks_get_nccl_for_tensors_and_gloo_for_cpu_collectives(monkeypatch):
    """The validation loss, stop flag and RNG states travel as CPU tensors and objects,
    which an NCCL-only process group refuses; each rank makes its own GPU current."""
    import torch
    import torch.distributed as dist
    from torch.distributed.distributed_c10d import Backend, BackendConfig

    from training.distributed import process_group_backend

    assert process_group_backend(torch.device("cpu")) == "gloo"
    current: list[int] = []
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setenv("LOCAL_RANK", "3")
    backend = process_group_backend(torch.device("cuda"))
    assert current == [3]
    assert BackendConfig(Backend(backend)).get_device_backend_map() == {"cpu": "gloo",
                                                                       "cuda": "nccl"}

"""Multi-process training through ``torchrun``: the environment it sets decides.

One process per GPU (NCCL) or, on machines without GPUs, per CPU process (gloo), so the
DDP path is tested on a laptop. Outside torchrun everything degrades to one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment, if any."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    return world


def broadcast_flag(flag: bool, world: World) -> bool:
    """Rank 0's decision (e.g. early stop) for every rank."""
    if not world.distributed:
        return flag
    tensor = torch.tensor([1 if flag else 0])
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def average(value: float, world: World) -> float:
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item() / world.size)


def wait_for_all(world: World) -> None:
    """Hold every rank here until all arrive. Why: rank 0 writes the history, plot and
    model card after the last collective, while the other ranks went on to tear down
    gloo and exit. Once, in CI, rank 1 aborted there ("terminate called without an
    active exception") and failed a run whose checkpoints were written; ranks that
    reach the teardown together remove that asymmetry."""
    if world.distributed:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()

"""Multi-process training through ``torchrun``: the environment it sets decides.

One process per GPU (NCCL) or, on machines without GPUs, per CPU process (gloo), so the
DDP path is tested on a laptop. Outside torchrun everything degrades to one process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

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


def launched_world_size() -> int:
    """How many processes torchrun started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_world(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment, if any."""
    size = launched_world_size()
    if size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(process_group_backend(device), rank=world.rank,
                                world_size=world.size)
    return world


def process_group_backend(device: torch.device) -> str:
    """gloo alone on CPUs; on GPUs NCCL for the model's tensors and gloo beside it for the
    CPU ones. Why both: the small collectives here (the validation loss, the stop flag,
    per-rank RNG states) are CPU tensors and objects, which an NCCL-only group refuses
    ("no backend for device type cpu"). Each rank also makes its own GPU current, as
    NCCL's object collectives use the current device."""
    if device.type != "cuda" or not dist.is_nccl_available():
        return "gloo"
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return "cpu:gloo,cuda:nccl"


def broadcast(value: float, world: World) -> float:
    """Rank 0's number (e.g. its validation loss) for every rank; the others' are ignored."""
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def broadcast_module(module: torch.nn.Module, world: World) -> None:
    """Give ``module`` rank 0's weights and buffers on every rank, in place. Why: DDP does
    this at construction for the network it wraps, not for a module beside it such as the
    guard's teacher, whose parts ``--model-kwargs`` grew each rank drew from its own seed,
    so the ranks held their networks to different teachers."""
    if not world.distributed:
        return
    for tensor in module.state_dict().values():
        dense = tensor.contiguous()  # a channels-last convolution's weight is not
        dist.broadcast(dense, src=0)
        tensor.copy_(dense)


def broadcast_flag(flag: bool, world: World) -> bool:
    """Rank 0's decision (e.g. early stop) for every rank."""
    return bool(broadcast(1.0 if flag else 0.0, world))


def average(value: float, world: World) -> float:
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item() / world.size)


def gather(value: Any, world: World) -> list[Any]:
    """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
    if not world.distributed:
        return [value]
    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def wait_for_all(world: World) -> None:
    """Hold every rank here until all arrive, so that no rank tears the process group
    down while rank 0 still writes the history, plot and model card after the last
    collective."""
    if world.distributed:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def end_worker_process() -> None:
    """End a process torchrun started, once its work is written, without the interpreter's
    teardown. Why: DistributedDataParallel leaves gloo's threads (``gloo_tcp_loop``,
    ``pt_gloo_runloop``) running after ``destroy_process_group`` (torch 2.13: a DDP built
    and freed is enough), and the C++ teardown at exit then now and then aborts one rank
    ("terminate called without an active exception", SIGABRT), failing a run whose
    checkpoints were written: twice in CI, the second time after the ranks had already
    met at a barrier. Outside torchrun this returns and the process ends normally."""
    if launched_world_size() <= 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

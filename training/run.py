"""Wiring for ``debleed train``: config + data source -> model, loss, loaders, Trainer.

Data comes from a dataset folder (``debleed dataset synth/session``) or is synthesised
on the fly from kits. Under ``torchrun`` each rank sees its own shard (a
DistributedSampler, or interleaved seeds for the synthetic stream) and only rank 0
validates and writes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from denoiser.audio import write_text_atomic
from denoiser.checkpoint import load_checkpoint
from denoiser.engine import pick_device
from denoiser.errors import ParameterError
from denoiser.models import build_model

from .config import TrainConfig
from .dataset import ClipFolder, SynthStream
from .distributed import World, init_world, shutdown
from .losses import CombinedLoss
from .model_card import write_model_card
from .synth import SynthConfig, render_clip
from .trainer import StepReport, Trainer, ValidClip, seed_everything, write_history

VALID_SEED_OFFSET = 1_000_003


class Flatten:
    """(B, 1, T) loader batches -> (B, T) waveforms."""

    def __init__(self, loader: Iterable[tuple[torch.Tensor, torch.Tensor]]):
        self.loader = loader

    def __iter__(self):
        for noisy, clean in self.loader:
            yield noisy.flatten(0, 1), clean.flatten(0, 1)


def folder_data(root: Path, config: TrainConfig, world: World):
    train = ClipFolder(root, "train", config.segment_seconds, random_segments=True)
    if len(train) == 0:
        raise ParameterError(f"{root}: no training clips in the manifest")
    sampler = (DistributedSampler(train, world.size, world.rank, seed=config.seed)
               if world.distributed else None)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train, batch_size=config.batch_size, shuffle=sampler is None,
                        sampler=sampler, drop_last=True, num_workers=config.num_workers,
                        generator=generator, persistent_workers=config.num_workers > 0)
    valid_set = ClipFolder(root, "valid")
    entries = valid_set.clips[: config.valid_clips] or train.clips[: config.valid_clips]
    valid = [ValidClip(c.noisy, c.clean) for c in map(valid_set.load, entries)]
    info = {"source": str(root), "kits": sorted({c.get("kit", "?") for c in train.clips}),
            "clips": len(train.clips)}
    return loader, valid, info


def synth_data(kits: Sequence[str], config: TrainConfig, world: World):
    from .kits import load_kit

    stream = SynthStream(kits, SynthConfig(), config.segment_seconds, seed=config.seed,
                         rank=world.rank, world_size=world.size)
    loader = DataLoader(stream, batch_size=config.batch_size, num_workers=config.num_workers)
    loaded = [load_kit(k) for k in kits]
    valid_config = SynthConfig()
    valid = [ValidClip(c.noisy, c.clean) for c in (
        render_clip(loaded, config.seed + VALID_SEED_OFFSET + i, valid_config)
        for i in range(config.valid_clips))]
    return loader, valid, {"source": "on-the-fly synthesis", "kits": [Path(k).name for k in kits],
                           "clips": "unbounded"}


def run_training(config: TrainConfig, run_dir: str | Path, data: str | Path | None = None,
                 kits: Sequence[str] = (), resume: bool = False,
                 report: StepReport | None = None) -> Path:
    """Train and return the path of the best checkpoint (``RUN/best.pt``)."""
    config.validate()
    if (data is None) == (not kits):
        raise ParameterError("train: give either a dataset folder or --kit folders, not both")
    run_dir = Path(run_dir)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    world = init_world(device)
    if device.type == "cuda" and world.distributed:
        device = torch.device("cuda", world.local_rank)
    try:
        seed_everything(config.seed + world.rank)
        model = build_model(config.model, **config.model_kwargs)
        loader, valid, data_info = (folder_data(Path(data), config, world) if data is not None
                                    else synth_data(kits, config, world))
        if world.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
        trainer = Trainer(model, CombinedLoss(config.loss), config, Flatten(loader), valid,
                          run_dir, device, world, report)
        if resume:
            last = run_dir / "last.pt"
            if not last.is_file():
                raise ParameterError(f"{last}: nothing to resume")
            trainer.load_state(last)
        history = trainer.fit(extra={"data": data_info})
        best = run_dir / "best.pt"
        if world.is_main and best.is_file():
            write_history(run_dir, history)
            _, info = load_checkpoint(best)
            write_model_card(run_dir / "MODEL_CARD.md", name=run_dir.name, info=info,
                             history=history, data=data_info,
                             parameters=model.parameter_count())
        return best
    finally:
        shutdown(world)


def config_with(base: TrainConfig, **overrides: Any) -> TrainConfig:
    """``base`` with the CLI options that were given (None = keep)."""
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})

"""A pass-through model. It measures what the engine itself costs (reading, chunking,
overlap-add, resampling, writing) and proves the chunking is lossless."""

from __future__ import annotations

import torch

from .base import DenoiserModel, capture_init


class Identity(DenoiserModel):
    name = "identity"

    @capture_init
    def __init__(self, sample_rate: int = 48000, gain: float = 1.0):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave * self.gain if self.gain != 1.0 else wave.clone()

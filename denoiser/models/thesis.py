"""The 2024 thesis's model, re-created as a baseline: a waveform conv autoencoder.

U-Net style with two conv + max-pool levels, concatenated skips, dropout in the
bottleneck and a linear output layer, run at 20 kHz and trained with MSE. It is kept so
the benchmark shows how far past the seed debleed is; it is not meant to be good.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import DenoiserModel, capture_init


def _conv_pair(cin: int, cout: int, kernel: int) -> nn.Sequential:
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel, padding=pad), nn.ReLU(),
        nn.Conv1d(cout, cout, kernel, padding=pad), nn.ReLU(),
    )


class ThesisAutoencoder(DenoiserModel):
    name = "thesis"
    hop = 4  # two 2x max-pools: a chunk must start on the 4-sample grid to match a whole pass

    @capture_init
    def __init__(self, sample_rate: int = 20000, channels: int = 16, kernel_size: int = 9,
                 dropout: float = 0.2):
        super().__init__()
        self.sample_rate = int(sample_rate)
        c = channels
        self.enc1 = _conv_pair(1, c, kernel_size)
        self.enc2 = _conv_pair(c, 2 * c, kernel_size)
        self.bottleneck = nn.Sequential(_conv_pair(2 * c, 4 * c, kernel_size), nn.Dropout(dropout))
        self.dec2 = _conv_pair(4 * c + 2 * c, 2 * c, kernel_size)
        self.dec1 = _conv_pair(2 * c + c, c, kernel_size)
        self.out = nn.Conv1d(c, 1, 1)  # linear output, as in the thesis

    def context_samples(self) -> int:
        return 16 * self.init_kwargs["kernel_size"] * 4

    def valid_length(self, length: int) -> int:
        return -(-length // 4) * 4

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        length = wave.shape[-1]
        x = F.pad(wave, (0, self.valid_length(length) - length)).unsqueeze(1)
        s1 = self.enc1(x)
        s2 = self.enc2(F.max_pool1d(s1, 2))
        b = self.bottleneck(F.max_pool1d(s2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(b, scale_factor=2.0), s2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), s1], dim=1))
        return self.out(d1).squeeze(1)[..., :length]

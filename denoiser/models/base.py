"""What every debleed model shares: its audio facts and its constructor arguments.

Models are ``torch.nn.Module`` mapping a waveform batch ``(batch, samples)`` at
``sample_rate`` to a waveform batch of the same shape. They record their constructor
keyword arguments (demucs' ``capture_init``) so a checkpoint can rebuild them with no
side file, and they state how much context they need on each side of a chunk so the
chunked inference knows how far chunks must overlap.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import nn


def capture_init(init):
    """Decorator for ``__init__`` storing the bound keyword arguments in ``self.init_kwargs``."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.init_kwargs = {k: v for k, v in bound.arguments.items() if k != "self"}
        init(self, *args, **kwargs)

    return wrapper


def constructor_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments as read from a checkpoint, lists back to tuples.

    Why: checkpoints store tuples as lists (``weights_only`` loading takes no tuples),
    while constructors take tuples (e.g. ``dilations``)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


class DenoiserModel(nn.Module):
    """Base class: ``forward(wave (B, T)) -> (B, T)`` at ``self.sample_rate``."""

    name: str = "base"
    sample_rate: int = 48000
    init_kwargs: dict[str, Any]

    def context_samples(self) -> int:
        """Samples of context the output at one point depends on, on each side."""
        return 0

    def valid_length(self, length: int) -> int:
        """Smallest length >= ``length`` the model can process without internal padding."""
        return length

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

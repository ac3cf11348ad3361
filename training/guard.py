"""A teacher guard: while a network trains on its kits, hold it to a frozen model's output on
clips unlike them (learning without forgetting, Li & Hoiem 2016).

Why: every continuation of the shipped union on the six training kits removes more bleed
and more tom and kick on held-out kits, and every one also starts removing snares unlike
the six kits' whole, judging them toms (docs/model.md, twenty-second round). Procedural
snares as training *targets* did not help: the network learnt to keep procedural wires and
lost real unfamiliar snares instead. As a *constraint* they ask less: on those clips the
student is only charged for doing differently from the model it started as, which already
keeps them. The guard's loss is the run's own loss with the teacher's output as the target.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from denoiser.models import DenoiserModel

from .dataset import endless


class TeacherGuard:
    """The frozen teacher, the guard clips' (noisy, clean) batches, drawn pass after pass,
    and the term's weight. Only the noisy halves are used: the teacher makes the targets."""

    def __init__(self, teacher: DenoiserModel,
                 batches: Iterable[tuple[torch.Tensor, torch.Tensor]], weight: float):
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        self.batches = endless(batches)
        self.weight = float(weight)

    def to(self, device: torch.device) -> "TeacherGuard":
        self.teacher.to(device)
        return self

    def next_inputs(self) -> torch.Tensor:
        """The next guard batch, (B, T) noisy waveforms; the stream starts over when spent."""
        noisy, _ = next(self.batches)
        return noisy

    @torch.no_grad()
    def targets(self, noisy: torch.Tensor) -> torch.Tensor:
        """What the teacher makes of the guard batch: the student's target on it."""
        return self.teacher(noisy).float()

    def term(self, loss: nn.Module, estimate: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """``weight`` times ``loss`` of the student's ``estimate`` against the teacher's."""
        return self.weight * loss(estimate.float(), self.targets(noisy))


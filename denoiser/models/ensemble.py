"""Several bandmask networks on one STFT, their masks combined: a bag of models.

Why: checkpoints from different training rounds fail on different hits. One ducks ghost
notes, another drops the backbeat of a snare tuned far down, a third rejects a snare
unlike its training kits. Demucs ships a bag of models for the same reason; here the
members share the STFT, so the bag combines their masks and pays for one STFT and one
inverse, not one per member.

``combine="max"`` keeps a bin as much as the member that keeps it most. The bag never
removes more snare than its most faithful member, so a snare any member recognises
survives (a union); the price is the bleed any member lets through. ``"mean"`` is the
usual bag average (Demucs): less bleed, but a hit one member removes loses 6 dB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from .bandmask import BandMaskNet
from .base import DenoiserModel, capture_init

COMBINES = ("max", "mean")
SHARED = ("sample_rate", "n_fft", "hop")  # what members must agree on to share one STFT


class MaskEnsemble(DenoiserModel):
    """``members``: the constructor arguments of each real-mask ``BandMaskNet``."""

    name = "ensemble"

    @capture_init
    def __init__(self, members: Sequence[dict[str, Any]] = (), combine: str = "max"):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {', '.join(COMBINES)}, not {combine!r}")
        nets = [BandMaskNet(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in dict(kwargs).items()}) for kwargs in members]
        for net in nets:
            if net.mask_kind != "real":
                raise ValueError("ensemble members must use real masks (combining complex "
                                 "masks would mix their phases)")
            differing = [key for key in SHARED if getattr(net, key) != getattr(nets[0], key)]
            if differing:
                raise ValueError(f"ensemble members differ in {', '.join(differing)}: "
                                 "they must share one STFT")
        self.members = nn.ModuleList(nets)
        self.combine = combine
        self.sample_rate, self.n_fft, self.hop = (getattr(nets[0], key) for key in SHARED)

    @classmethod
    def of(cls, models: Sequence[DenoiserModel], combine: str = "max") -> "MaskEnsemble":
        """An ensemble holding copies of trained ``models``' weights."""
        foreign = [m.name for m in models if not isinstance(m, BandMaskNet)]
        if foreign:
            raise ModelError(f"only bandmask models can be combined, not {', '.join(foreign)}")
        try:
            bag = cls([m.init_kwargs for m in models], combine)
        except ValueError as exc:
            raise ModelError(f"cannot combine these models: {exc}") from None
        for member, model in zip(bag.members, models):
            member.load_state_dict(model.state_dict())
        return bag.eval()

    def context_samples(self) -> int:
        return max(member.context_samples() for member in self.members)

    def spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        return self.members[0].spectrum(wave)

    def predict_mask(self, spec: torch.Tensor) -> torch.Tensor:
        masks = torch.stack([member.predict_mask(spec) for member in self.members])
        return masks.amax(dim=0) if self.combine == "max" else masks.mean(dim=0)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.spectrum(wave)
        masked = spec * self.predict_mask(spec)
        first = self.members[0]
        return torch.istft(masked, self.n_fft, self.hop, window=first.window, center=True,
                           length=wave.shape[-1])

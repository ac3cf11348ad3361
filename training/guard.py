"""A teacher guard: while a network trains on its kits, hold it to a frozen model's output on
clips unlike them (learning without forgetting, Li & Hoiem 2016).

Why: every continuation of the shipped union on the six training kits removes more bleed
and more tom and kick on held-out kits, and every one also starts removing snares unlike
the six kits' whole, judging them toms (docs/model.md, twenty-second round). Procedural
snares as training *targets* did not help: the network learnt to keep procedural wires and
lost real unfamiliar snares instead. As a *constraint* they ask less: on those clips the
student is only charged for doing differently from the model it started as, which already
keeps them. The guard's loss is the run's own loss with the teacher's output as the target.

Its optional high-band anchor holds the student to the teacher on the training batch itself,
above 5 kHz in the frames where the snare plays, the band where a real mask cannot tell a
hat from a snare wire sharing its bins. Why: in the shipped model's lineage every fine-tune
that takes more cymbal out of its own kits' hits also takes more wires out of unfamiliar
snares; the anchor leaves that band to the teacher (docs/model.md, twenty-fifth round: it
took back half of the wires, but not the unfamiliar snares' hit levels).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from denoiser.models import DenoiserModel

from .dataset import endless
from .metrics import DEFAULT_CONFIG

HIGH_BAND_HZ = DEFAULT_CONFIG.cymbal_cutoff_hz  # the cymbal-leakage metric's band (SPEC 5)
HIT_RANGE_DB = 30.0  # frames within this of the clean snare's loudest count as its hits
ANCHOR_FFT, ANCHOR_HOP = 1024, 256
LOG_FLOOR = 1e-5  # magnitudes below about -100 dB are all the same silence


def high_band_hit_distance(estimate: torch.Tensor, reference: torch.Tensor,
                           clean: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Mean |log magnitude| difference of ``estimate`` and ``reference`` (B, T), bins at and
    above ``HIGH_BAND_HZ``, over the frames where ``clean`` is within ``HIT_RANGE_DB`` of its
    own loudest frame; elsewhere (between hits, below the band) the two may differ freely."""
    window = torch.hann_window(ANCHOR_FFT, device=estimate.device)

    def magnitude(wave: torch.Tensor) -> torch.Tensor:
        return torch.stft(wave, ANCHOR_FFT, ANCHOR_HOP, window=window, return_complex=True).abs()

    first_bin = int(round(HIGH_BAND_HZ * ANCHOR_FFT / sample_rate))
    energy = magnitude(clean).pow(2).sum(dim=1)  # (B, frames)
    level = 10 * torch.log10(energy + 1e-12)
    hits = (level >= level.amax(dim=1, keepdim=True) - HIT_RANGE_DB) & (energy > 0)
    gap = (torch.log(magnitude(estimate)[:, first_bin:] + LOG_FLOOR)
           - torch.log(magnitude(reference)[:, first_bin:] + LOG_FLOOR)).abs().mean(dim=1)
    weights = hits.to(gap.dtype)
    return (gap * weights).sum() / weights.sum().clamp(min=1.0)


class TeacherGuard:
    """The frozen teacher, the guard clips' (noisy, clean) batches, drawn pass after pass,
    and the term's weight. Only the noisy halves are used: the teacher makes the targets."""

    def __init__(self, teacher: DenoiserModel,
                 batches: Iterable[tuple[torch.Tensor, torch.Tensor]], weight: float,
                 high_band: float = 0.0):
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        self.batches = endless(batches)
        self.weight = float(weight)
        self.high_band = float(high_band)

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

    def high_band_term(self, estimate: torch.Tensor, noisy: torch.Tensor,
                       clean: torch.Tensor) -> torch.Tensor:
        """``high_band`` times the high-band distance in the hits between the student's
        ``estimate`` of the training batch and the teacher's output on it."""
        return self.high_band * high_band_hit_distance(
            estimate.float(), self.targets(noisy), clean, self.teacher.sample_rate)

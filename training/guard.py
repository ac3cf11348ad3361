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

Its optional ducking term charges the student, on the guard's clips, for every frame it
leaves quieter than their *clean* snare. Why: the teacher itself ducks unfamiliar snares'
hits by 1-2 dB over the whole spectrum, so holding the student to the teacher holds that
ducking too; the same term on the training clips took back only the part the fine-tune
added (docs/model.md, twenty-fifth round). Measured (twenty-sixth round): it keeps the snares
it is shown, procedural ones included, and did not carry over to real unfamiliar snares.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from denoiser.models import DenoiserModel

from .dataset import endless
from .losses import DuckingLoss
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
    and the terms' weights. The teacher makes the targets; the clean halves are used only by
    the ducking term."""

    def __init__(self, teacher: DenoiserModel,
                 batches: Iterable[tuple[torch.Tensor, torch.Tensor]], weight: float,
                 high_band: float = 0.0, ducking: float = 0.0):
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        self.batches = endless(batches)
        self.weight = float(weight)
        self.high_band = float(high_band)
        self.ducking = float(ducking)
        self.ducking_loss = DuckingLoss()

    def to(self, device: torch.device) -> "TeacherGuard":
        self.teacher.to(device)
        return self

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next guard batch, (B, T) noisy and clean waveforms; the stream starts over
        when spent."""
        return next(self.batches)

    @torch.no_grad()
    def targets(self, noisy: torch.Tensor) -> torch.Tensor:
        """What the teacher makes of the guard batch: the student's target on it."""
        return self.teacher(noisy).float()

    def term(self, loss: nn.Module, estimate: torch.Tensor, noisy: torch.Tensor,
             clean: torch.Tensor) -> torch.Tensor:
        """``weight`` times ``loss`` of the student's ``estimate`` against the teacher's, plus
        ``ducking`` times the ducking of the ``estimate`` below the guard clips' ``clean``."""
        estimate = estimate.float()
        term = self.weight * loss(estimate, self.targets(noisy))
        if self.ducking:
            term = term + self.ducking * self.ducking_loss(estimate, clean)
        return term

    def high_band_term(self, estimate: torch.Tensor, noisy: torch.Tensor,
                       clean: torch.Tensor) -> torch.Tensor:
        """``high_band`` times the high-band distance in the hits between the student's
        ``estimate`` of the training batch and the teacher's output on it."""
        return self.high_band * high_band_hit_distance(
            estimate.float(), self.targets(noisy), clean, self.teacher.sample_rate)

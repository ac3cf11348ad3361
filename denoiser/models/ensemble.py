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
``"learned"`` adds a small selector network (a mixture-of-experts gate) that places each
bin between the members' smallest and largest mask, from the masks and the input's
spectrum: it can learn which member to trust for toms and which for ghost notes. It
starts as ``max`` and is trained with the members frozen (``debleed train --freeze
members``); whatever it learns, it stays within what the members propose.

``"power"`` first unites each group of members (``groups``, by default one group per
member) by their max, then takes the groups' power mean sqrt(mean(m²)): a bin one group
keeps and the other removes loses 3 dB, not the 6 dB of ``"mean"``, so a snare either
group recognises stays audible, while bleed that only one group lets through is halved.
Below ``min_below_hz`` the groups' smallest mask is taken instead: kick and floor toms put
most of their energy there and no snare body lies there, so the group that removes them
decides. At and above ``min_above_hz`` (0: off) the smallest mask is taken as well: inside
the snare hits above 5 kHz, 96 % of the shipped model's mask error was cymbal it let
through, not snare wires it cut (docs/model.md, thirteenth round), so there the group
that removes the cymbal should decide too. The shipped model is such a bag (docs/model.md,
eleventh round): the union of the first two rounds' networks, blended with a network that
removes more bleed.
``group_weights`` makes the power mean a weighted one, sqrt(sum_g w_g(f) m_g²), with one
learned weight per group and frequency bin (a softmax over the groups, so the weights sum
to 1). It starts at equal weights, which is exactly the plain power mean, and is trained
with the members frozen (``--init default --model-kwargs '{"group_weights": true}'
--freeze members``): it learns in which bands each group is the one to trust, and cannot
do more than lean towards one group's mask there (one number per group and bin, no
input).

``deep_filter`` adds a complex correction above ``filter_min_hz`` (``DeepFilter``): a
real mask cannot separate a cymbal partial from snare wires sharing a bin (the ideal real
mask leaves cymbal leakage at -6 dB, the ideal complex mask bounded to 1.2 reaches
-19 dB, docs/model.md); a short complex filter over neighbouring frames can in
principle separate them. It starts at zero, so a shipped ensemble grows it (``--init
default --model-kwargs '{"deep_filter": true}'``) and trains it with the members frozen,
starting from exactly the old output.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from .bandmask import (FRAME_GATE_OPEN, BandMaskNet, ResidualBlock, apply_mask, input_bins,
                       unit_phase_steps)
from .base import DenoiserModel, capture_init, constructor_kwargs

COMBINES = ("max", "mean", "learned", "power")
# what members must agree on to share one STFT and the level read from it
SHARED = ("sample_rate", "n_fft", "hop", "input_bins")


class MaskEnsemble(DenoiserModel):
    """``members``: the constructor arguments of each real-mask ``BandMaskNet``;
    ``groups``, ``min_below_hz`` and ``min_above_hz``: see ``"power"`` in the module
    docstring."""

    name = "ensemble"

    @capture_init
    def __init__(self, members: Sequence[dict[str, Any]] = (), combine: str = "max",
                 groups: Sequence[Sequence[int]] | None = None, min_below_hz: float = 0.0,
                 min_above_hz: float = 0.0, group_weights: bool = False,
                 selector_channels: int = 64, selector_dilations: tuple[int, ...] = (1, 2, 4),
                 deep_filter: bool = False, filter_min_hz: float = 3000.0, filter_taps: int = 3,
                 filter_channels: int = 64, filter_dilations: tuple[int, ...] = (1, 2, 4),
                 member_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        # on top of every member's own: grows all of a trained ensemble's networks at once
        # (``debleed train --init default --model-kwargs '{"member_kwargs": {...}}'``)
        members = [{**member, **(member_kwargs or {})} for member in members]
        # saved as grown: the card describes the members as they are, a second growth adds
        self.init_kwargs.update(members=members, member_kwargs=None)
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {', '.join(COMBINES)}, not {combine!r}")
        nets = [BandMaskNet(**constructor_kwargs(dict(kwargs))) for kwargs in members]
        for net in nets:
            if net.mask_kind != "real":
                raise ValueError("ensemble members must use real masks (combining complex "
                                 "masks would mix their phases)")
            differing = [key for key in SHARED if getattr(net, key) != getattr(nets[0], key)]
            if differing:
                raise ValueError(f"ensemble members differ in {', '.join(differing)}: "
                                 "they must share one STFT and the level read from it")
        self.members = nn.ModuleList(nets)
        self.combine = combine
        self.sample_rate, self.n_fft, self.hop = nets[0].sample_rate, nets[0].n_fft, nets[0].hop
        self.groups, self.low_bins, self.high_bin = self._power_groups(
            combine, groups, min_below_hz, min_above_hz, group_weights, len(nets))
        self.group_logits = None
        if group_weights:  # zero logits: equal weights, the plain power mean
            self.group_logits = nn.Parameter(torch.zeros(len(self.groups), self.n_fft // 2 + 1, 1))
        self.selector = None
        if combine == "learned":
            self.selector = MaskSelector(len(nets), self.n_fft // 2 + 1, selector_channels,
                                         tuple(selector_dilations))
        self.filter = None
        if deep_filter:
            if nets[0].input_bins < self.n_fft // 2 + 1:  # it reads every bin's phase
                raise ValueError("the deep filter reads the whole band: its members cannot "
                                 "be cut at input_max_hz")
            min_bin = int(round(filter_min_hz * self.n_fft / self.sample_rate))
            if not 0 < min_bin < self.n_fft // 2 or filter_taps < 1 or filter_taps % 2 == 0:
                raise ValueError("the deep filter needs 0 < filter_min_hz < Nyquist and an odd "
                                 "number of taps")
            self.filter = DeepFilter(self.n_fft // 2 + 1, min_bin, filter_taps, filter_channels,
                                     tuple(filter_dilations))

    def _power_groups(self, combine: str, groups: Sequence[Sequence[int]] | None,
                      min_below_hz: float, min_above_hz: float, group_weights: bool,
                      count: int) -> tuple[list[list[int]], int, int]:
        """The member indices of each group, the number of bins below ``min_below_hz`` and
        the first bin at or above ``min_above_hz`` (the bin count when it is 0); refuses
        the power mean's options on another combine."""
        bins = self.n_fft // 2 + 1
        if combine != "power":
            for name, given in (("groups", groups is not None), ("min_below_hz", bool(min_below_hz)),
                                ("min_above_hz", bool(min_above_hz)),
                                ("group_weights", group_weights)):
                if given:
                    raise ValueError(f"{name} belongs to combine='power'")
            return [], 0, bins
        groups = [list(g) for g in groups] if groups is not None else [[i] for i in range(count)]
        if sorted(i for g in groups for i in g) != list(range(count)) or len(groups) < 2:
            raise ValueError(f"groups {groups} must split the {count} members into at least "
                             "two groups, each member in exactly one")
        if not 0 <= min_below_hz < self.sample_rate / 2:
            raise ValueError(f"min_below_hz = {min_below_hz}: must be in [0, Nyquist)")
        if min_above_hz and not min_below_hz < min_above_hz < self.sample_rate / 2:
            raise ValueError(f"min_above_hz = {min_above_hz}: must be 0 (off) or between "
                             "min_below_hz and Nyquist")
        high = int(math.ceil(min_above_hz * self.n_fft / self.sample_rate)) if min_above_hz else bins
        return groups, int(math.ceil(min_below_hz * self.n_fft / self.sample_rate)), high

    @classmethod
    def of(cls, models: Sequence[DenoiserModel], combine: str = "max",
           min_below_hz: float = 0.0, min_above_hz: float = 0.0) -> "MaskEnsemble":
        """An ensemble holding copies of trained ``models``' weights.

        The members of a ``max`` ensemble join as members (the max of maxes is one max),
        so the shipped model can be extended with another network. With ``"power"``, each
        of ``models`` is one group (a ``max`` ensemble's members form one), and a ``power``
        ensemble brings its own groups, so one power ensemble alone is combined again
        with other cutoffs."""
        groups = [group for model in models for group in cls._groups(model, combine)]
        members = [member for group in groups for member in group]
        foreign = [m.name for m in members if not isinstance(m, BandMaskNet)]
        if foreign:
            raise ModelError(f"only bandmask models can be combined, not {', '.join(foreign)}")
        options: dict[str, Any] = {"min_below_hz": min_below_hz, "min_above_hz": min_above_hz}
        if combine == "power":
            starts = list(itertools.accumulate((len(group) for group in groups), initial=0))
            options["groups"] = [list(range(a, b)) for a, b in zip(starts[:-1], starts[1:])]
        try:
            bag = cls([m.init_kwargs for m in members], combine, **options)
        except ValueError as exc:
            raise ModelError(f"cannot combine these models: {exc}") from None
        for member, model in zip(bag.members, members):
            member.load_state_dict(model.state_dict())
        return bag.eval()

    @staticmethod
    def _groups(model: DenoiserModel, combine: str) -> list[list[DenoiserModel]]:
        """The groups ``model`` brings to a ``combine`` ensemble (see ``of``)."""
        if not isinstance(model, MaskEnsemble):
            return [[model]]
        if model.filter is not None or model.group_logits is not None:
            raise ModelError("an ensemble with a deep filter or learned group weights cannot "
                             "join another ensemble")
        if model.combine == "power" == combine:
            return [[model.members[i] for i in group] for group in model.groups]
        if model.combine != "max" or combine == "mean":
            raise ModelError(f"a {model.combine} ensemble cannot join a {combine} ensemble; "
                             "combine its members instead")
        return [list(model.members)]

    def context_samples(self) -> int:
        """The members' context, plus what the selector and the filter see around a frame
        of the members' masks (their inputs)."""
        extra_frames = 0
        if self.selector is not None:
            extra_frames += self.selector.receptive_frames // 2 + 1
        if self.filter is not None:
            extra_frames += self.filter.context_frames
        return max(member.context_samples() for member in self.members) + extra_frames * self.hop

    def valid_length(self, length: int) -> int:
        return self.members[0].valid_length(length)

    def spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        return self.members[0].spectrum(wave)

    def predict_mask(self, spec: torch.Tensor) -> torch.Tensor:
        level = self.members[0].input_level(spec)  # once for all members
        each = [member.predict_mask(spec, level) for member in self.members]
        if self.combine == "power":
            return self._power_mean(each)
        masks = torch.stack(each)
        if self.combine == "mean":
            return masks.mean(dim=0)
        high = masks.amax(dim=0)
        if self.selector is None:
            return high
        low = masks.amin(dim=0)
        features = self.members[0].features(spec, level)  # the first member's normalisation
        return low + self.selector(masks, features) * (high - low)

    def _power_mean(self, masks: list[torch.Tensor]) -> torch.Tensor:
        """sqrt(mean of the groups' squared masks), weighted per bin with ``group_logits``,
        the smallest below ``low_bins`` and from ``high_bin`` on. Chained ``hypot`` rather
        than squares: masks reach 0, and their squares' subnormal floats made the sum ten
        times slower than the networks' last layer."""
        sides = [functools.reduce(torch.maximum, [masks[i] for i in group]) for group in self.groups]
        if self.group_logits is None:
            mask = functools.reduce(torch.hypot, sides) * len(sides) ** -0.5
        else:
            scales = torch.softmax(self.group_logits, dim=0).sqrt()
            mask = functools.reduce(torch.hypot, [side * scale for side, scale in zip(sides, scales)])
        if not self.low_bins and self.high_bin >= mask.shape[-2]:
            return mask
        smallest = functools.reduce(torch.minimum, sides)
        return torch.cat([smallest[..., :self.low_bins, :], mask[..., self.low_bins:self.high_bin, :],
                          smallest[..., self.high_bin:, :]], dim=-2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.spectrum(wave)
        mask = self.predict_mask(spec)
        if self.filter is None:
            return self.members[0].inverse(apply_mask(spec, mask), wave.shape[-1])
        filtered = self.filter(spec, mask, self.members[0].features(spec))
        return self.members[0].inverse(filtered, wave.shape[-1])


def can_limit_input(model: DenoiserModel) -> bool:
    """Whether ``limit_input`` can cut ``model`` (``cut_networks``): bandmask networks and
    their ensembles without a deep filter."""
    try:
        cut_networks(model, 0.0)
    except ModelError:
        return False
    return True


def limit_input(model: DenoiserModel, max_hz: float) -> DenoiserModel:
    """A copy of ``model`` whose networks read only the bins at or below ``max_hz``, the band
    above taking the highest read bin's mask (``BandMaskNet``'s ``input_max_hz``), weights
    unchanged. Why at inference: the shipped model reads noise above 22.05 kHz as bleed (its
    44.1-kHz training kits leave that band to room tone), so a 48-kHz track's hiss
    there takes the hits with it; cut, it reads the track as it would a 44.1-kHz one
    (docs/model.md, thirty-fourth round)."""
    limited = copy.deepcopy(model)
    for network, bins in cut_bins(limited, max_hz).items():
        network.input_bins = bins
    return limited


@contextlib.contextmanager
def input_cut(model: DenoiserModel, max_hz: float) -> Iterator[DenoiserModel]:
    """``model`` itself reading as ``limit_input``'s copy would, inside the block; its
    networks' bins restored after, whatever happens. Why in place: training sends some steps
    through the cut path (``TrainConfig.cut_input_share``), and those steps must train the
    very weights DDP and the optimiser hold, not a copy's."""
    cut = cut_bins(model, max_hz)
    kept = {network: network.input_bins for network in cut}
    try:
        for network, bins in cut.items():
            network.input_bins = bins
        yield model
    finally:
        for network, bins in kept.items():
            network.input_bins = bins


def cut_bins(model: DenoiserModel, max_hz: float) -> dict[BandMaskNet, int]:
    """Each network of ``model`` and the bins it reads when cut at ``max_hz``: a network
    trained with a narrower cut keeps it. A cut at or past their Nyquist is a ``ModelError``,
    as is a model ``cut_networks`` refuses."""
    try:
        return {network: min(network.input_bins,
                             input_bins(max_hz, network.n_fft, network.sample_rate))
                for network in cut_networks(model, max_hz)}
    except ValueError as exc:
        raise ModelError(str(exc)) from None


def cut_networks(model: DenoiserModel, max_hz: float) -> list[BandMaskNet]:
    """The networks a cut of ``model``'s input at ``max_hz`` reaches; a ``ModelError``, naming
    the cut, where none can be cut: not a bandmask network, or an ensemble whose deep filter
    reads every bin's phase."""
    if not isinstance(model, (BandMaskNet, MaskEnsemble)):
        raise ModelError(f"only bandmask models and their ensembles read a spectrum's bins; "
                         f"{model.name} cannot be cut at {max_hz:g} Hz")
    if isinstance(model, MaskEnsemble) and model.filter is not None:
        raise ModelError("this ensemble's deep filter reads the whole band: it cannot be cut")
    return list(model.members) if isinstance(model, MaskEnsemble) else [model]


class MaskSelector(nn.Module):
    """Per bin and frame, where between the members' smallest and largest mask to land.

    Sees every member's mask and the normalised log spectrum through a short dilated
    convolution over frames (+-7 frames, 37 ms), so it can weigh the members by what they
    agree on nearby. Its output starts near 1 (``max``), so an untrained selector changes
    nothing."""

    def __init__(self, members: int, bins: int, channels: int, dilations: tuple[int, ...]):
        super().__init__()
        self.project = nn.Conv1d((members + 1) * bins, channels, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(channels, 3, d, 0.0) for d in dilations])
        self.head = nn.Sequential(nn.PReLU(channels), nn.Conv1d(channels, bins, 1))
        nn.init.zeros_(self.head[1].weight)
        nn.init.constant_(self.head[1].bias, FRAME_GATE_OPEN)
        self.receptive_frames = sum(2 * d for d in dilations)

    def forward(self, masks: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """``masks (members, B, bins, frames)``, ``level (B, bins, frames)`` -> ``(B, bins, frames)``."""
        features = torch.cat([*masks, level], dim=1)
        return torch.sigmoid(self.head(self.blocks(self.project(features))))


class DeepFilter(nn.Module):
    """``M X`` plus ``M sum_k D_k(t, f) X(t + k, f)`` for bins from ``min_bin``.

    Deep filtering (Schroeter et al. 2022, DeepFilterNet): a complex FIR over ``taps``
    neighbouring frames per bin, its coefficients predicted from the normalised log
    spectrum, the members' mask and each bin's phase advance from the previous frame. A
    single tap is a complex mask; more taps let a steady cymbal partial, whose phase
    advances regularly from frame to frame, be predicted from its neighbours and
    subtracted while the snare wires' noise burst stays. The coefficient that cancels a
    partial turns with that advance, which magnitudes alone do not show: without it as an
    input the filter learned mostly noise (docs/model.md). The correction is scaled by the
    members' mask, so the filter refines what they keep and cannot bring back what they
    removed: where their mask is zero, the output stays silent. Coefficients are
    ``tanh``-bounded and the head starts at zero, so an untrained filter adds nothing.
    """

    def __init__(self, bins: int, min_bin: int, taps: int, channels: int,
                 dilations: tuple[int, ...]):
        super().__init__()
        self.min_bin, self.taps, self.high_bins = min_bin, taps, bins - min_bin
        self.project = nn.Conv1d(2 * bins + 2 * self.high_bins, channels, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(channels, 3, d, 0.0) for d in dilations])
        self.head = nn.Sequential(nn.PReLU(channels),
                                  nn.Conv1d(channels, 2 * taps * self.high_bins, 1))
        nn.init.zeros_(self.head[1].weight)
        nn.init.zeros_(self.head[1].bias)
        # the phase advance looks one frame back, the taps reach taps // 2 frames either side
        self.context_frames = sum(2 * d for d in dilations) // 2 + 2 + taps // 2

    def forward(self, spec: torch.Tensor, mask: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The masked, filtered spectrum of ``spec`` (complex ``(B, bins, frames)``) under the
        members' ``mask`` and with their log spectrum ``level`` (real, same shape)."""
        batch, _, frames = spec.shape
        high = spec[:, self.min_bin:]
        advance = torch.view_as_real(unit_phase_steps(high))  # each bin's phase step: cos, sin
        features = [level, mask, advance[..., 0], advance[..., 1]]
        hidden = self.blocks(self.project(torch.cat(features, dim=1)))
        coefficients = torch.tanh(self.head(hidden)).view(batch, 2, self.taps, self.high_bins, frames)
        coefficients = torch.complex(coefficients[:, 0], coefficients[:, 1])
        pad = self.taps // 2
        padded = shift_frames(high, pad, pad)
        neighbours = torch.stack([padded[..., k:k + frames] for k in range(self.taps)], dim=1)
        correction = torch.zeros_like(spec)
        correction[:, self.min_bin:] = (coefficients * neighbours).sum(dim=1)
        return mask * (spec + correction)


def shift_frames(spec: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Complex ``spec (..., frames)`` with ``before`` zero frames in front and ``after`` behind."""
    padded = nn.functional.pad(torch.view_as_real(spec), (0, 0, before, after))
    return torch.view_as_complex(padded.contiguous())

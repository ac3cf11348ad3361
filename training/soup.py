"""A model soup: one network whose weights are the average of several checkpoints'.

Why: the networks of one lineage (a network trained from scratch, then fine-tuned with
another loss, then again on other data) lie in one basin of the loss, and each fine-tune
drifts along the keep-versus-remove trade-off (docs/model.md). Averaging their weights
(Wortsman et al. 2022, "Model soups"; WiSE-FT interpolates a network and its fine-tune the
same way) often keeps what each learned while undoing part of that drift, and unlike a bag
of models it costs nothing at inference: the soup is one network of the same size.

Only networks of one architecture (same model and constructor arguments) can be averaged,
and only networks fine-tuned from one another make a good soup: two networks trained from
different starts have their units in different orders, and their average is noise. That
second condition cannot be checked from the weights, so it is the caller's to keep.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from denoiser.checkpoint import as_stored
from denoiser.errors import ModelError, ParameterError
from denoiser.models import DenoiserModel


def soup_weights(count: int, weights: Sequence[float] | None) -> list[float]:
    """``weights`` normalised to sum to 1 (equal when ``None``); refuses negative, non-finite
    or all-zero weights and a count that does not match."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ParameterError(f"{len(weights)} weights for {count} models: give one per model")
    if any(not math.isfinite(w) or w < 0 for w in weights) or max(weights) <= 0:
        raise ParameterError("soup weights must be finite, non-negative and not all zero")
    # Scaled by the largest first: the sum of huge weights (1e308 twice) would overflow.
    largest = float(max(weights))
    scaled = [float(w) / largest for w in weights]
    return [w / sum(scaled) for w in scaled]


def _a(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def soup(models: Sequence[DenoiserModel], weights: Sequence[float] | None = None) -> DenoiserModel:
    """A new model (eval mode) whose floating-point weights and buffers are the weighted
    average of ``models``'; counters (BatchNorm's ``num_batches_tracked``) come from the
    first. BatchNorm's running statistics are averaged like the weights: for networks of
    one lineage they stay close to what the averaged network sees."""
    if len(models) < 2:
        raise ParameterError("a soup needs at least two models")
    shares = soup_weights(len(models), weights)
    first = models[0]
    for other in models[1:]:
        # compared as a checkpoint stores them: a model loaded from one has lists where
        # the same model built in memory has tuples, and was refused as another architecture
        if other.name != first.name:
            raise ModelError(f"cannot average {_a(other.name)} with {_a(first.name)}: a soup "
                             "needs one architecture")
        mine, theirs = as_stored(first.init_kwargs), as_stored(other.init_kwargs)
        differ = sorted(key for key in {*mine, *theirs} if mine.get(key) != theirs.get(key))
        if differ:  # named alone: the whole settings made a line of a thousand characters
            raise ModelError(f"cannot average these {first.name} models: they differ in "
                             + ", ".join(f"{key} ({mine.get(key)!r} vs {theirs.get(key)!r})"
                                         for key in differ)
                             + "; a soup needs one architecture")
    states = [model.state_dict() for model in models]
    averaged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            averaged[key] = sum(share * state[key] for share, state in zip(shares, states))
        else:
            averaged[key] = value.clone()
    result = copy.deepcopy(first)
    result.load_state_dict(averaged)
    return result.eval()


@torch.no_grad()
def interpolation_distance(a: DenoiserModel, b: DenoiserModel) -> float:
    """Relative distance of two models' weights, ||a - b|| / ||a||: how far a fine-tune
    moved from its start (a soup's members should be close, well under 1)."""
    pa = torch.cat([p.flatten() for p in a.parameters()])
    pb = torch.cat([p.flatten() for p in b.parameters()])
    return float((pa - pb).norm() / pa.norm().clamp_min(1e-12))

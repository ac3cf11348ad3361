"""Model registry: names stored in checkpoints map to classes here.

``PRESETS`` holds named size presets; ``tiny`` ones exist so tests train and run in
milliseconds (demucs' ``demucs_unittest``)."""

from __future__ import annotations

from typing import Any

from ..audio import validate_rate
from ..errors import AudioError, ModelError
from .bandmask import BandMaskNet
from .base import DenoiserModel
from .ensemble import MaskEnsemble
from .identity import Identity
from .thesis import ThesisAutoencoder

MODELS: dict[str, type[DenoiserModel]] = {
    "bandmask": BandMaskNet,
    "ensemble": MaskEnsemble,
    "thesis": ThesisAutoencoder,
    "identity": Identity,
}

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "bandmask": ("bandmask", {}),
    "bandmask-complex": ("bandmask", {"mask": "complex"}),
    "bandmask-tiny": ("bandmask", {"n_fft": 256, "hop": 64, "channels": 16, "dilations": (1, 2)}),
    "thesis": ("thesis", {}),
    "thesis-tiny": ("thesis", {"channels": 4, "kernel_size": 5}),
    "identity": ("identity", {}),
}


def build_model(name: str, **kwargs: Any) -> DenoiserModel:
    """Build a model by registry name or preset name; ``kwargs`` override the preset."""
    if name in PRESETS:
        base, preset = PRESETS[name]
        cls, kwargs = MODELS[base], {**preset, **kwargs}
    elif name in MODELS:
        cls = MODELS[name]
    else:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(PRESETS))}")
    return construct(cls, kwargs, name)


def construct(cls: type[DenoiserModel], kwargs: dict[str, Any], name: str) -> DenoiserModel:
    """``cls(**kwargs)``, with what it cannot build as a ``ModelError``: settings come from
    ``--model-kwargs`` and from checkpoints, so they are the user's, not the code's. A
    sample rate no audio has (0, 100 Hz) is refused here, before it fails deep in
    resampling or resamples every track to nonsense."""
    try:  # torch's RuntimeError: sizes it cannot build (a negative --model-kwargs channels)
        model = cls(**kwargs)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:  # Overflow: inf sizes
        raise ModelError(f"model {name!r}: {exc}") from None
    try:
        validate_rate(model.sample_rate, f"model {name!r}")
    except AudioError as exc:
        raise ModelError(str(exc)) from None
    return model


__all__ = ["MODELS", "PRESETS", "DenoiserModel", "build_model", "construct"]

"""Model registry: names stored in checkpoints map to classes here.

``PRESETS`` holds named size presets; ``tiny`` ones exist so tests train and run in
milliseconds (demucs' ``demucs_unittest``)."""

from __future__ import annotations

from typing import Any

from ..errors import ModelError
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
    try:  # torch's RuntimeError: sizes it cannot build (a negative --model-kwargs channels)
        return cls(**kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"model {name!r}: {exc}") from None


__all__ = ["MODELS", "PRESETS", "DenoiserModel", "build_model"]

"""Self-describing checkpoints (STYLE 3): class name, captured constructor kwargs, state
dict, training config and versions in one file, so a checkpoint rebuilds its model with
no side file and old checkpoints keep loading.

Loaded with ``torch.load(weights_only=True)``: a checkpoint is data, never code."""

from __future__ import annotations

import inspect
import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import ModelError
from .models import MODELS, DenoiserModel, construct
from .models.base import constructor_kwargs
from .outfiles import atomic_output

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_name", "model_kwargs", "state_dict")


def as_stored(value: Any) -> Any:
    """Tuples become lists so the checkpoint loads under ``weights_only``."""
    if isinstance(value, (tuple, list)):
        return [as_stored(v) for v in value]
    if isinstance(value, dict):
        return {str(k): as_stored(v) for k, v in value.items()}
    return value


def serialize(model: DenoiserModel, training_config: dict | None = None,
              extra: dict | None = None) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "debleed_version": __version__,
        "torch_version": str(torch.__version__),
        "model_name": model.name,
        "model_kwargs": as_stored(model.init_kwargs),
        "sample_rate": model.sample_rate,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "training_config": as_stored(training_config or {}),
        "extra": as_stored(extra or {}),
    }


def save_checkpoint(path: str | os.PathLike, model: DenoiserModel,
                    training_config: dict | None = None, extra: dict | None = None) -> Path:
    """Write atomically: a crash mid-save leaves the previous checkpoint intact."""
    return save_atomic(path, serialize(model, training_config, extra))


def save_atomic(path: str | os.PathLike, package: dict[str, Any]) -> Path:
    """``torch.save`` ``package`` to ``path`` atomically (``atomic_output``), serialised in
    memory first. Why: torch's own file writer reports a full disk as a ``RuntimeError``
    ("[enforce fail at inline_container.cc:672] . unexpected pos ..."), which no caller
    takes for the file system's refusal (``debleed train`` ended in a 47-line traceback);
    from a buffer only the file write can fail, with the ``OSError`` every command reports
    in one line."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(package, buffer)
    with atomic_output(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def rebuild(package: dict[str, Any], overrides: dict[str, Any] | None = None,
            source: str | os.PathLike | None = None) -> DenoiserModel:
    """Rebuild a model from a loaded package, checking keys and version.

    ``overrides`` change constructor arguments to grow the model for fine-tuning (e.g.
    ``{"frame_gate": True}``): weights the new model lacks are an error, parts the
    checkpoint lacks keep their initialisation. ``source``, the file the package was
    read from, lets the error for a training state name the ``best.pt`` beside it.
    """
    missing = [k for k in REQUIRED_KEYS if k not in package]
    if missing and is_training_state(package):
        raise ModelError(training_state_message(None if source is None else Path(source)))
    if missing:
        raise ModelError(f"checkpoint lacks {', '.join(missing)}: not a debleed checkpoint")
    _check_fields(package)
    if package["format_version"] > FORMAT_VERSION:
        raise ModelError(
            f"checkpoint format {package['format_version']} is newer than this debleed "
            f"({__version__}, format {FORMAT_VERSION}): upgrade debleed")
    name = package["model_name"]
    if name not in MODELS:
        raise ModelError(f"checkpoint holds unknown model {name!r}")
    cls = MODELS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    kwargs = dict(package["model_kwargs"])
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        warnings.warn(f"checkpoint: ignoring unknown {name} arguments {unknown}", stacklevel=2)
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    invalid = sorted(set(overrides or {}) - accepted)
    if invalid:
        raise ModelError(f"model {name} has no arguments {invalid}")
    kwargs = constructor_kwargs({**kwargs, **(overrides or {})})
    model = construct(cls, kwargs, name)
    try:
        result = model.load_state_dict(package["state_dict"], strict=not overrides)
        if result.unexpected_keys:
            raise RuntimeError(f"weights {result.unexpected_keys[:3]} have no place in the model")
    except RuntimeError as exc:  # torch's first line only names the class: say what misfits
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading")
                  else lines[0])
        raise ModelError(f"checkpoint weights do not fit model {name}: {detail}") from None
    return model


def is_training_state(package: dict[str, Any]) -> bool:
    """Whether ``package`` is the resume state ``debleed train`` writes as ``last.pt``
    (``Trainer.state``: the model's checkpoint nested under ``"model"`` beside the optimizer,
    epoch and random states). Why: it is a ``.pt`` in the run folder next to ``best.pt`` and
    is easily passed as ``--model``; "not a debleed checkpoint" would then be misleading."""
    model = package.get("model")
    return (isinstance(model, dict) and "state_dict" in model
            and ("optimizer" in package or "epoch" in package))


def training_state_message(path: Path | None) -> str:
    """One line telling a user who gave a training state where the model is: ``best.pt``
    in the same run folder; ``last.pt`` only serves ``debleed train --resume``."""
    if path is None:
        return ("a debleed training state (last.pt), not a model: use best.pt from the "
                "same run folder (last.pt is for `debleed train --resume`)")
    return (f"{path}: a debleed training state (last.pt), not a model: use "
            f"{path.parent / 'best.pt'} (last.pt is for `debleed train --resume`)")


def _check_fields(package: dict[str, Any]) -> None:
    """Refuse a package whose fields have the wrong types, or whose weights are not finite
    (a diverged run saved anyway would turn every output into NaN)."""
    types = {"format_version": int, "model_name": str, "model_kwargs": dict, "state_dict": dict}
    for key, kind in types.items():
        value = package[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelError(f"checkpoint field {key} is a {type(value).__name__}, not a "
                             f"{kind.__name__}: not a debleed checkpoint")
    weights = package["state_dict"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise ModelError("checkpoint weights are not named tensors: not a debleed checkpoint")
    broken = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise ModelError(f"checkpoint weights {broken[:3]} hold NaN/inf (a diverged run?)")


def load_package(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: is a folder, not a checkpoint (name its best.pt?)"
                         if path.is_dir() else f"{path}: no such checkpoint")
    try:
        package = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(package, dict):
        raise ModelError(f"{path}: not a debleed checkpoint")
    return package


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu",
                    overrides: dict[str, Any] | None = None
                    ) -> tuple[DenoiserModel, dict[str, Any]]:
    """Return ``(model in eval mode on device, info)``; info holds everything but weights.

    ``overrides``: see ``rebuild``. Its errors name ``path``: ``rebuild``'s own do not (it
    has a package, not a file), and ``denoise --model``, ``soup`` and ``ensemble`` said
    "checkpoint format 2 is newer ..." without saying which of their checkpoints."""
    package = load_package(path, device)
    try:
        model = rebuild(package, overrides, source=path)
    except ModelError as exc:
        raise ModelError(naming_file(path, str(exc))) from None
    model = model.to(device).eval()
    info = {k: v for k, v in package.items() if k != "state_dict"}
    return model, info


def naming_file(path: str | os.PathLike, message: str) -> str:
    """``message`` led by ``path``, unless it names it first already (a training state's)."""
    return message if message.startswith(str(path)) else f"{path}: {message}"

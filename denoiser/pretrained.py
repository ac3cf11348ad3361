"""Where the models shipped inside the package live. Nothing is ever downloaded."""

from __future__ import annotations

from pathlib import Path

from .errors import ModelError

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "debleed_default.pt"
THESIS_BASELINE = PRETRAINED_DIR / "thesis_baseline.pt"


def default_model_path() -> Path:
    if not DEFAULT_MODEL.is_file():
        raise ModelError(f"the shipped model {DEFAULT_MODEL} is missing: reinstall debleed")
    return DEFAULT_MODEL

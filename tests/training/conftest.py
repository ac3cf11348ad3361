"""Fixtures for the training tests: a tiny synthetic Hydrogen kit, never Debian's kits."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.kits import Kit, load_kit
from training.oneshots import write_synthetic_kit


@pytest.fixture(scope="session")
def synthetic_kit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_kit(tmp_path_factory.mktemp("kit") / "synthetic", velocities=(0.3, 1.0))


@pytest.fixture(scope="session")
def synthetic_kit(synthetic_kit_dir: Path) -> Kit:
    return load_kit(synthetic_kit_dir)

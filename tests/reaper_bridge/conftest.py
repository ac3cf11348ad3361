"""Fixtures: a fake REAPER over WAV files made here, processors, a tiny checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fake and helpers, for every test here

from fake_reaper import FakeReaper  # noqa: E402

from reaper_bridge.rpr import RawRPR  # noqa: E402


@pytest.fixture
def fake(tmp_path: Path) -> FakeReaper:
    resource = tmp_path / "REAPER"
    media = tmp_path / "project" / "Media"
    resource.mkdir()
    media.mkdir(parents=True)
    return FakeReaper(str(resource), str(media))


@pytest.fixture
def api(fake: FakeReaper) -> RawRPR:
    return RawRPR(fake.module())


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from denoiser.checkpoint import save_checkpoint
    from denoiser.models import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model("bandmask-tiny"), {"note": "reaper bridge tests"})
    return path

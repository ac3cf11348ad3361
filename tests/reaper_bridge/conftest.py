"""Fixtures: a fake REAPER over WAV files made here, processors, a tiny checkpoint."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fake and helpers, for every test here

from fake_reaper import FakeReaper  # noqa: E402

from reaper_bridge.rpr import RawRPR  # noqa: E402


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's job and render folders, and its workers' temporary files, in a folder of
    its own: a job that fails keeps its folder for its log, by design, and the system's
    temporary folder gathered one per run of such a test."""
    folder = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


@pytest.fixture
def fake(tmp_path: Path) -> FakeReaper:
    resource = tmp_path / "REAPER"
    media = tmp_path / "project" / "Media"
    resource.mkdir()
    media.mkdir(parents=True)
    return FakeReaper(str(resource), str(media))


@pytest.fixture
def api(fake: FakeReaper) -> RawRPR:
    """The raw API on the fake without REAPER's ctypes function table: the bridge reads
    the audio accessor through ``RPR_GetAudioAccessorSamples``, as through reapy's
    distant API."""
    return RawRPR(fake.module())


@pytest.fixture
def ctypes_api(fake: FakeReaper) -> RawRPR:
    """The raw API on the fake with REAPER's ctypes function table: the bridge reads the
    audio accessor through ``_ft``, as it does inside REAPER."""
    return RawRPR(fake.module(function_table=True))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from denoiser.checkpoint import save_checkpoint
    from denoiser.models import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model("bandmask-tiny"), {"note": "reaper bridge tests"})
    return path

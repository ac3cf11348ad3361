"""Shared fixtures: small signals made here, never Debian's drum kits."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from training.oneshots import write_synthetic_kit


@pytest.fixture
def held_open(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """``held_open(path)``: ``os.replace`` then refuses to move a file onto or from ``path``,
    as Windows refuses a file another program holds open (an editor, a browser)."""

    def hold(path: Path) -> None:
        replace = os.replace

        def locked(src, dst, **kwargs):
            if path in (Path(src), Path(dst)):
                raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))
            return replace(src, dst, **kwargs)

        monkeypatch.setattr(os, "replace", locked)

    return hold


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def kit_missing_an_extra(tmp_path: Path) -> Path:
    """A synthetic kit whose drumkit.xml names a cowbell sample that is not there (kits in
    the wild do this): loading it skips the cowbell with a warning."""
    kit = write_synthetic_kit(tmp_path / "kit", velocities=(1.0,))
    xml = (kit / "drumkit.xml").read_text().replace(
        "</instrumentList>", "<instrument><name>Cowbell</name><instrumentComponent><layer>"
        "<filename>cowbell.wav</filename></layer></instrumentComponent></instrument>"
        "</instrumentList>")
    (kit / "drumkit.xml").write_text(xml)
    return kit

"""Fixtures of the CLI tests: test tracks, the bad inputs of SPEC 2, and the user-error check.

Helpers are handed out as fixtures because the suite runs in pytest's importlib mode, where
test modules cannot import a sibling helper module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import Result

SR = 48_000

WriteWav = Callable[..., Path]


def _write_wav(path: Path, data: np.ndarray, rate: int = SR) -> Path:
    """``data`` is ``(channels, samples)``."""
    sf.write(str(path), np.asarray(data, dtype=np.float32).T, rate, subtype="FLOAT")
    return path


@pytest.fixture
def write_wav() -> WriteWav:
    return _write_wav


@pytest.fixture
def drum_track(rng: np.random.Generator) -> Callable[..., np.ndarray]:
    """``make(channels=1, seconds=0.5)``: quiet bleed noise with two loud decaying hits."""

    def make(channels: int = 1, seconds: float = 0.5) -> np.ndarray:
        frames = int(seconds * SR)
        data = 0.003 * rng.standard_normal((channels, frames))
        t = np.arange(int(0.1 * SR)) / SR
        hit = 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.03)
        for onset in (int(0.05 * SR), int(0.3 * SR)):
            data[:, onset:onset + t.size] += hit
        return data.astype(np.float32)

    return make


def _unreadable(path: Path) -> Path:
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage")
    return path


def _text(path: Path) -> Path:
    path.write_text("this is not audio\n")
    return path


def _empty(path: Path) -> Path:
    return _write_wav(path, np.zeros((1, 0), np.float32))


def _all_nan(path: Path) -> Path:
    return _write_wav(path, np.full((1, 4800), np.nan, np.float32))


def _with_inf(path: Path) -> Path:
    data = np.zeros((2, 4800), np.float32)
    data[1, 100] = np.inf
    return _write_wav(path, data)


def _absurd_rate(path: Path) -> Path:
    """Sound in it, but a header claiming 100 Hz: no snare track has that rate."""
    return _write_wav(path, np.random.default_rng(0).normal(0, 0.1, (1, 4800)), rate=100)


BAD_INPUTS = {
    "unreadable": _unreadable,
    "text-named-wav": _text,
    "empty": _empty,
    "all-nan": _all_nan,
    "inf-samples": _with_inf,
    "absurd-rate": _absurd_rate,
}


@pytest.fixture(params=sorted(BAD_INPUTS))
def bad_input(request, tmp_path: Path) -> Path:
    return BAD_INPUTS[request.param](tmp_path / f"{request.param}.wav")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file (hidden temporaries included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def refused(tmp_path: Path) -> Callable[[Callable[[], Result]], Result]:
    """``refused(lambda: invoke(...))`` runs the command and checks it is a clean user error:
    exit 1, a single ``Error:`` line on stderr, no traceback, and ``tmp_path`` unchanged
    byte for byte (no output, no temporary file, inputs untouched)."""

    def check(invoke: Callable[[], Result]) -> Result:
        before = _snapshot(tmp_path)
        result = invoke()
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert _snapshot(tmp_path) == before
        return result

    return check

"""Shared fixtures: small signals made here, never Debian's drum kits."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

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


def _hat_bleed_take(seconds: float = 2.0, rate: int = 48_000) -> np.ndarray:
    """``(1, T)`` peaking at 1.0: snare-like hits every 500 ms, hi-hat bursts 20 dB under
    them every 125 ms in between, on a noise floor 74 dB under the hits."""
    rng = np.random.default_rng(7)
    slot, hit, burst = rate // 8, np.arange(rate * 150 // 1000) / rate, np.arange(rate // 16)
    take = 10 ** (-74 / 20) * rng.standard_normal(int(seconds * rate))
    for n, onset in enumerate(range(slot // 2, take.size - hit.size, slot)):
        if n % 4 == 0:
            sound, level = (np.sin(2 * np.pi * 190 * hit) + 0.6 * rng.standard_normal(hit.size)
                            ) * np.exp(-hit / 0.03), 1.0
        else:
            sound, level = rng.standard_normal(burst.size) * np.exp(-burst / (rate / 125)), 0.1
        take[onset:onset + sound.size] += level * sound / np.abs(sound).max()
    return (take / np.abs(take).max())[None]


@pytest.fixture
def hat_bleed_take() -> Callable[[float], np.ndarray]:
    """``make(peak_db)``: the same float32 take of hits over hi-hat bleed (``(1, T)``, 48 kHz),
    scaled to peak at ``peak_db`` dBFS, above full scale too (a float render)."""
    base = _hat_bleed_take()
    return lambda peak_db: (10 ** (peak_db / 20) * base).astype(np.float32)


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


#: A 56-byte Wave64 list chunk: its GUID as the file holds it (libsndfile's w64.c), a size
#: counting its 24-byte header, then an INFO list.
_W64_LIST = (bytes.fromhex("7473696c912fcf11a5d628db04c10000") + struct.pack("<Q", 56)
             + b"INFOISFT" + bytes(24))


@pytest.fixture
def listed_wave64() -> Callable[[Path, np.ndarray, int], Path]:
    """``write(path, samples, rate)``: ``samples`` ((frames,) or (frames, channels)) as a
    16-bit Wave64 at ``path`` with a list chunk after its audio, counted by its riff size,
    as REAPER and other DAWs write one. libsndfile alone reads that chunk as audio: 28
    frames of noise after a mono take's end (``audio.open_counted`` reads none of it)."""

    def write(path: Path, samples: np.ndarray, rate: int) -> Path:
        sf.write(path, samples, rate, subtype="PCM_16", format="W64")
        data = path.read_bytes()
        listed = bytearray(data + bytes(-len(data) % 8) + _W64_LIST)
        struct.pack_into("<Q", listed, 16, len(listed))
        path.write_bytes(listed)
        return path

    return write

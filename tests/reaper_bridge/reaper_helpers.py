"""Signals and deterministic processors for the bridge tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from denoiser.audio import read_audio, write_audio
from reaper_bridge.install import install
from reaper_bridge.settings import load_settings, save_settings, settings_path


def make_wav(path: Path, seconds: float, rate: int = 48000, channels: int = 1, seed: int = 0) -> Path:
    """Noise bursts plus a tone: structure everywhere, so a misalignment shows."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * rate)
    t = np.arange(frames) / rate
    signal = 0.3 * np.sin(2 * np.pi * 180.0 * t)[None] + 0.2 * rng.standard_normal((channels, frames))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal.T.astype(np.float32), rate, subtype="FLOAT")
    return path


def squash(src: str, dst: str) -> None:
    """Deterministic, sample-local, nonlinear 'denoiser': y = x * |x|."""
    audio = read_audio(src)
    write_audio(dst, audio.samples * np.abs(audio.samples), audio.sample_rate, protect=(src,))


def halve(src: str, dst: str) -> None:
    """Linear processor: playback of the new take must equal half the original's."""
    audio = read_audio(src)
    write_audio(dst, audio.samples * 0.5, audio.sample_rate, protect=(src,))


def resampled(samples: np.ndarray, frames: int, playrate: float = 1.0,
              offset: int = 0) -> np.ndarray:
    """What a take at ``playrate`` starting ``offset`` source frames in plays of
    ``samples`` (channels, frames), computed from the samples themselves (linear
    interpolation, silence past the end): a reference independent of the fake."""
    position = offset + playrate * np.arange(frames)
    grid = np.arange(samples.shape[1])
    return np.stack([np.interp(position, grid, channel, left=0.0, right=0.0)
                     for channel in samples])


def configure(resource: Path, model: Path | str, **changes) -> None:
    """Install the scripts (kb.ini path), then point the settings at ``model`` on the CPU,
    with ``changes`` (settings attributes) on top."""
    install(str(resource))
    path = settings_path(str(resource))
    settings = load_settings(path)
    settings.model, settings.device = str(model), "cpu"
    for key, value in changes.items():
        setattr(settings, key, value)
    save_settings(path, settings)

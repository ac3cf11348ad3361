"""Signals and deterministic processors for the bridge tests."""

from __future__ import annotations

import os
import subprocess
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


#: REAPER's ``reaper_python`` as far as the bootstrap and the Cancel action use it; written
#: for any Python from 2.7 on, so an old REAPER Python reaches the bootstrap's message.
REAPER_PYTHON_STUB = """import os, sys
def RPR_GetResourcePath(): return os.environ["RES"]
def RPR_ShowMessageBox(message, title, kind):
    sys.stdout.write("MESSAGE BOX: " + message + "\\n")
    return 1
"""


def run_installed_script(python: str, resource: Path, script: str, path: list[Path],
                         before: str = "") -> subprocess.CompletedProcess:
    """Run an installed action script as REAPER does: ``exec`` in a ``__main__`` that holds
    ``RPR_defer`` and ``RPR_atexit``, in a bare ``python`` (``-S``: none of this
    environment's packages) whose path holds a stub ``reaper_python`` and ``path``;
    ``before``: code run first (an import another script made earlier in REAPER's
    session)."""
    stub = resource / "stub"
    stub.mkdir(exist_ok=True)
    (stub / "reaper_python.py").write_text(REAPER_PYTHON_STUB)
    code = ("import sys; sys.modules['__main__'].RPR_defer = lambda code: None; "
            "sys.modules['__main__'].RPR_atexit = lambda code: None; " + before
            + "exec(open(sys.argv[1]).read(), {'__name__': '__main__'})")
    env = {**os.environ, "RES": str(resource),
           "PYTHONPATH": os.pathsep.join(map(str, [stub, *path]))}
    return subprocess.run([python, "-S", "-c", code,
                           str(resource / "Scripts" / "debleed" / script)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=stub)

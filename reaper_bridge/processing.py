"""The heavy side: run bridge tasks with the real engine (numpy, torch, soundfile).

Never imported by REAPER's embedded Python: the worker subprocess and the ``debleed
reaper`` commands use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from denoiser.audio import open_counted, sf_reason, write_audio
from denoiser.errors import AudioError, ParameterError
from denoiser.hiss_cut import hiss_cut
from denoiser.stream import read_exactly

from .items import mode_channels
from .jobs import Task


def inference_config(precision: str = "float32", input_max_hz: float = 0.0,
                     hiss_cut_hz: float | None = None) -> Any:
    """The engine's ``InferenceConfig`` for the bridge's settings, validated; ``hiss_cut_hz``
    None keeps the engine's default, so that default lives in one place."""
    from denoiser.engine import InferenceConfig

    return InferenceConfig(precision=precision, input_max_hz=input_max_hz,
                           **hiss_cut(hiss_cut_hz)).validate()


def gate_config(overrides: dict[str, Any]) -> Any:
    """``GateConfig`` with the INI's overrides; unknown names are a one-line error."""
    from denoiser.gate import GateConfig

    known = {f.name for f in fields(GateConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(f"unknown gate setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return GateConfig(**overrides)


def channel_mode(samples: np.ndarray, mode: int) -> np.ndarray:
    """``samples`` (channels, frames) as a take with REAPER's ``I_CHANMODE`` ``mode`` plays
    them (see ``items.mode_channels``). The export slices only takes whose mode names
    channels the file has; one naming a missing channel is refused."""
    played = mode_channels(mode, samples.shape[0])
    if played is None:
        return samples.mean(axis=0, keepdims=True)
    if any(index >= samples.shape[0] for index in played):
        raise ParameterError(f"channel mode {mode} names a channel a "
                             f"{samples.shape[0]}-channel file lacks")
    return samples[list(played)]


def slice_file(src: str, dst: str, start: int, frames: int, chanmode: int = 0,
               gain: float = 1.0) -> Path:
    """Copy ``frames`` samples of ``src`` from ``start`` (zero-padded outside the file),
    through channel mode ``chanmode`` and times ``gain`` (take times item volume, negative
    when the polarity is flipped): what a take with playrate 1 plays. The file ends where
    its header says (``open_counted``), as REAPER plays it: a Wave64's chunk after its
    audio (a DAW's ``list``) was sliced as noise where the item runs past that end."""
    try:
        handle = open_counted(src)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{src}: not a readable audio file ({sf_reason(exc)})") from None
    with handle:
        out = np.zeros((handle.channels, frames), dtype=np.float32)
        first, last = max(start, 0), min(start + frames, handle.frames)
        if last > first:
            out[:, first - start:last - start] = read_exactly(handle, first, last - first)
        rate = handle.samplerate
    played = channel_mode(out, chanmode) * np.float32(gain)
    return write_audio(dst, played, rate, protect=(src,))


class TaskExecutor:
    """Runs bridge tasks; loads the model once, on the first task that needs it."""

    def __init__(self, model: str | None = None, device: str = "auto",
                 gate: dict[str, Any] | None = None, precision: str = "float32",
                 input_max_hz: float = 0.0, hiss_cut_hz: float | None = None):
        self.model = model or None
        self.device = device
        self.precision = precision
        self.input_max_hz = input_max_hz
        self.hiss_cut_hz = hiss_cut_hz  # None: the engine's default
        self.gate = gate_config(gate or {})
        self._denoiser: Any = None

    @property
    def denoiser(self) -> Any:
        if self._denoiser is None:
            from denoiser.engine import Denoiser

            self._denoiser = Denoiser.load(self.model, self.device, inference_config(
                self.precision, self.input_max_hz, self.hiss_cut_hz))
        return self._denoiser

    def __call__(self, task: Task, report: Callable[[float], None]) -> Path:
        if task.kind == "slice":
            return slice_file(task.src, task.dst, task.start, task.frames, task.chanmode,
                              task.gain)
        sidechain = task.sidechain or None
        if task.variant == "gate":  # streamed, as `debleed gate` gates a file
            from denoiser.stream import gate_file

            return gate_file(self.gate, Path(task.src), Path(task.dst),
                             None if sidechain is None else Path(sidechain))
        if task.variant in ("debleed", "debleed+gate"):
            gate = self.gate if task.variant == "debleed+gate" else None
            return Path(self.denoiser.denoise_file(task.src, task.dst, gate=gate, progress=report,
                                                   sidechain=sidechain))
        raise ParameterError(f"unknown task {task.kind} {task.variant!r}")

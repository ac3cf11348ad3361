"""Inference: one chunked function (``apply_model``) and a small facade (``Denoiser``).

Everything that runs a model -- the CLI, the REAPER bridge, evaluation, the benchmark
and validation during training -- goes through ``apply_model`` (demucs' ``apply_model``
used by its solver), so what is measured is what users get.
"""

from __future__ import annotations

import contextlib
import math
import os
from fractions import Fraction
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import torch

from .audio import SILENT_PEAK, dc_offset_of, silence_message, validate_rate, validate_samples
from .checkpoint import load_checkpoint
from .chunking import plan_chunks
from .errors import ModelError, NonFiniteOutputError, ParameterError, SilentAudioError
from .models import DenoiserModel
from .hiss import QuietBands, has_top_band_floor
from .hiss_cut import HISS_CUT_HZ, REFERENCE_BAND_HZ
from .models.ensemble import can_limit_input, limit_input
from .pretrained import default_model_path

Progress = Callable[[float], None]
# Mixed precision (torch.autocast): the networks' convolutions run in the lower precision,
# STFT, masks' application and inverse in float32. On a CPU with native bfloat16
# (AVX512-BF16, AMX) bfloat16 ran the shipped model 9 to 45 % faster, by CPU, for an output
# within -60 dB of the float32 one (docs/model.md); elsewhere it is emulated and slower.
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
# What a streamed block's margin needs beyond the model's own context: soxr's HQ filter
# reaches a few milliseconds either side of each sample.
RESAMPLER_MARGIN_SECONDS = 0.05
#: The lowest rate the shipped model's training material came at (its kits are 44.1- and
#: 48-kHz libraries). A slower track reaches the model with nothing above half its rate,
#: a snare without its wires and stick, which it reads as kick or tom bleed: on the test
#: kit, hits came out 0.8 dB down at 44.1 kHz, 2.9 dB at 32 kHz, 5 at 22.05 kHz and all
#: but silent at 8 kHz (docs/model.md, "Other rates").
LOWEST_TRAINED_RATE = 44_100


@dataclass(frozen=True)
class InferenceConfig:
    """How audio is cut and levelled for the model. Defaults live here and only here."""

    segment_seconds: float = 20.0     # model chunk length: bounds activation memory
    # (20 s: each chunk's context is 4 % of it, not 8 % at 10 s; longer chunks fall out of
    # the CPU's caches and run slower, docs/model.md)
    overlap_seconds: float = 0.25     # crossfade between model chunks
    block_seconds: float = 60.0       # file streaming block: bounds audio memory
    block_margin_seconds: float = 2.0  # context read around each block (the resampler)
    peak_level: float = 0.5           # mid-range of the training clips' peaks (-12..-1 dBFS)
    precision: str = "float32"        # or mixed: "bfloat16" (CPU or CUDA), "float16" (CUDA)
    input_max_hz: float = 0.0         # > 0: the model reads only the band below (limit_input)
    # A track whose band above this holds a recording floor (hiss, dither: denoiser.hiss) is
    # read only below it, as with input_max_hz; 0: never. 22.05 kHz: the shipped model reads
    # noise above it as bleed (docs/model.md, C11a). Models that cannot be cut read every bin.
    hiss_cut_hz: float = HISS_CUT_HZ

    def validate(self) -> "InferenceConfig":
        if not (0.5 <= self.segment_seconds <= 600):
            raise ParameterError("segment must be between 0.5 and 600 s")
        if not (0 <= self.overlap_seconds < self.segment_seconds / 2):
            raise ParameterError("overlap must be >= 0 and under half the segment")
        if not (self.segment_seconds <= self.block_seconds < math.inf):
            raise ParameterError("streaming block must be at least one segment long (and finite)")
        if not (0 <= self.block_margin_seconds <= self.block_seconds):
            raise ParameterError("block margin must be between 0 s and the block length")
        if not (0 < self.peak_level <= 1):
            raise ParameterError("peak level must be above 0 and at most 1 (full scale)")
        if not (math.isfinite(self.input_max_hz) and self.input_max_hz >= 0):
            raise ParameterError(f"input_max_hz must be 0 (every bin) or a frequency in Hz, "
                                 f"not {self.input_max_hz}")
        if not (self.hiss_cut_hz == 0 or (math.isfinite(self.hiss_cut_hz)
                                          and self.hiss_cut_hz > REFERENCE_BAND_HZ[1])):
            raise ParameterError(f"hiss_cut_hz must be 0 (never cut) or a frequency above "
                                 f"{REFERENCE_BAND_HZ[1]:g} Hz (the band a floor is compared "
                                 f"with), not {self.hiss_cut_hz}")
        if self.precision not in PRECISIONS:
            raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, "
                                 f"not {self.precision!r}")
        return self


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU; asking for absent CUDA is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError("--device cuda asked for, but no CUDA GPU is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ParameterError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def mixed_precision(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``precision`` (a ``PRECISIONS`` name) on ``device``, or nothing
    for float32: the one switch inference and training share."""
    lower = PRECISIONS[precision]
    if lower is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=lower)


def apply_model(model: DenoiserModel, audio: torch.Tensor, segment: int, overlap: int,
                device: torch.device | str = "cpu", progress: Progress | None = None,
                precision: str = "float32") -> torch.Tensor:
    """Run ``model`` over ``audio (B, T)`` in chunks; return ``(B, T)`` on the CPU.

    Chunks carry the model's context on both sides and are crossfaded over ``overlap``
    samples, so the result matches a single whole-signal pass while memory stays bounded
    by the segment length, whatever the input length. ``precision``: see ``PRECISIONS``.
    """
    was_training = model.training
    model.eval()
    device = torch.device(device)
    total = audio.shape[-1]
    out = torch.zeros_like(audio, device="cpu")
    chunks = plan_chunks(total, segment, overlap, model.context_samples(),
                         align=getattr(model, "hop", 1))
    try:
        with torch.inference_mode(), mixed_precision(device, precision):
            for done, chunk in enumerate(chunks, start=1):
                piece = audio[..., chunk.in_start:chunk.in_stop].to(device)
                length = piece.shape[-1]
                padded = torch.nn.functional.pad(piece, (0, model.valid_length(length) - length))
                result = model(padded)[..., :length][..., chunk.crop].float().cpu()
                weights = torch.from_numpy(chunk.weights())
                out[..., chunk.out_start:chunk.out_stop] += result * weights
                if progress is not None:
                    progress(done / len(chunks))
    finally:
        model.train(was_training)
    return out


def resample(samples: np.ndarray, rate_in: int, rate_out: int, length: int | None = None) -> np.ndarray:
    """soxr resampling of ``(C, T)``; ``length`` forces the exact output length."""
    if rate_in == rate_out:
        result = samples
    else:
        result = soxr.resample(samples.T, rate_in, rate_out, quality="HQ").T
    if length is not None and result.shape[-1] != length:
        fixed = np.zeros((result.shape[0], length), dtype=np.float32)
        n = min(length, result.shape[-1])
        fixed[:, :n] = result[:, :n]
        result = fixed
    return np.ascontiguousarray(result, dtype=np.float32)


class Denoiser:
    """A model plus the settings to run it on audio of any rate, length and channels."""

    def __init__(self, model: DenoiserModel, device: str | torch.device = "auto",
                 config: InferenceConfig | None = None, info: dict[str, Any] | None = None):
        self.device = pick_device(device)
        self.config = (config or InferenceConfig()).validate()
        if self.config.input_max_hz:
            try:
                model = limit_input(model, self.config.input_max_hz)
            except ModelError as exc:
                raise ParameterError(str(exc)) from None
        self.model = model.to(self.device).eval()
        #: ``model`` read only below ``hiss_cut_hz``, for tracks with a floor there (or None):
        #: a copy made here, so a caller that changes ``model`` afterwards builds a new Denoiser.
        self.hiss_model: DenoiserModel | None = None
        cut = self.config.hiss_cut_hz
        if cut and not self.config.input_max_hz and can_limit_input(model):
            nyquist = model.sample_rate / 2
            if cut < nyquist:
                self.hiss_model = limit_input(self.model, cut).eval()
            elif cut != HISS_CUT_HZ:  # the default has no band to test on a 44.1-kHz model
                raise ParameterError(f"hiss_cut_hz must be 0 (never cut) or below the model's "
                                     f"Nyquist ({nyquist:g} Hz), not {cut:g}")
        needed = self.model.context_samples() / self.model.sample_rate + RESAMPLER_MARGIN_SECONDS
        if self.config.block_margin_seconds < needed:
            raise ParameterError(f"block margin {self.config.block_margin_seconds:g} s is under "
                                 f"what the model reads around each sample ({needed:.2f} s): "
                                 "a streamed file would have seams at its block edges")
        if self.config.precision == "float16" and self.device.type != "cuda":
            raise ParameterError("float16 precision needs a CUDA device; on the CPU use bfloat16")
        self.info = info or {}

    @classmethod
    def load(cls, model: str | os.PathLike | None = None, device: str = "auto",
             config: InferenceConfig | None = None) -> "Denoiser":
        """Load a checkpoint; ``None`` or ``"default"`` loads the model shipped in the package."""
        path = default_model_path() if model in (None, "default") else Path(model)
        torch_device = pick_device(device)
        network, info = load_checkpoint(path, torch_device)
        return cls(network, torch_device, config, info)

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    def alignment(self, sample_rate: int) -> int:
        """Block starts at multiples of this (input samples) land on the model's frame grid,
        so blocks of a file see exactly the frames a whole-file pass would."""
        hop = getattr(self.model, "hop", 1)
        return Fraction(hop * sample_rate, self.sample_rate).numerator

    @staticmethod
    def low_rate_note(sample_rate: int) -> str | None:
        """Why a track at ``sample_rate`` comes out with its hits taken down, for a warning,
        or ``None`` at the rates the model was trained at (``LOWEST_TRAINED_RATE`` up)."""
        if sample_rate >= LOWEST_TRAINED_RATE:
            return None
        return (f"{sample_rate} Hz: with nothing above {sample_rate / 2000:g} kHz, a snare "
                "sounds to the model like kick or tom bleed, and its hits come out "
                f"quieter (trained at {LOWEST_TRAINED_RATE / 1000:g} kHz and up)")

    def hiss_cut_applies(self, sample_rate: int) -> bool:
        """Whether a track at ``sample_rate`` reaches the model with its own band above the
        cut: a 44.1-kHz track has none (the resampler leaves it empty), and a faster one (88.2,
        96 kHz) arrives with it attenuated by the resampler's anti-alias filter, which the
        model reads whole without losing hits (docs/model.md, thirty-fourth round: +5.86 dB
        with a floor at 96 kHz, +4.81 cut)."""
        return (self.hiss_model is not None and sample_rate <= self.sample_rate
                and sample_rate / 2 > self.config.hiss_cut_hz)

    def quiet_bands(self) -> QuietBands:
        """An empty ``QuietBands`` at the model's rate and ``hiss_cut_hz``, to fill with the
        track as the model reads it (resampled to its rate)."""
        return QuietBands(self.sample_rate, self.config.hiss_cut_hz)

    def hears_floor(self, samples: np.ndarray, sample_rate: int) -> bool:
        """Whether ``(C, T)`` samples hold a recording floor above ``hiss_cut_hz`` as the
        model reads them (less their DC offset, each channel levelled, at its rate), so that
        ``denoise`` reads them only below it: one decision per track, taken on the whole
        track (a pre-gated track is judged before its gate: the floor it hides between hits
        is still under every hit)."""
        samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
        if samples.shape[-1] == 0 or not self.hiss_cut_applies(sample_rate):
            return False
        samples = samples - dc_offset_of(samples).reshape(-1, 1)
        peaks = np.max(np.abs(samples), axis=-1)
        if float(peaks.max()) <= SILENT_PEAK:
            return False
        levelled = samples * self.gains_for(peaks)
        return self._floor_at_model_rate(resample(levelled, sample_rate, self.sample_rate))

    def gains_for(self, peaks: np.ndarray, raw_peaks: np.ndarray | None = None) -> np.ndarray:
        """Levelling gains ``(C, 1)`` float32 that bring channels with these peaks to the
        training level (raises if every channel is silent).

        Per channel, so a channel gives the same result alone or beside a louder one (a
        snare-bottom mic 26 dB under the top reached the model far below its training
        levels and was cut harder). A silent channel beside others takes the loudest
        channel's gain: raised to the training level, its noise floor would be treated as
        a track. ``peaks`` are measured about the DC offset; ``raw_peaks``, with it, only
        tell a constant from silence in the error."""
        peaks = np.asarray(peaks, dtype=np.float64).reshape(-1)
        loudest = float(peaks.max(initial=0.0))
        if loudest <= SILENT_PEAK:
            raise SilentAudioError(silence_message("input", raw_peaks))
        gains = self.config.peak_level / np.where(peaks > SILENT_PEAK, peaks, loudest)
        return gains.astype(np.float32)[:, None]

    def denoise(self, samples: np.ndarray, sample_rate: int, progress: Progress | None = None,
                gain: np.ndarray | None = None, offset: np.ndarray | None = None,
                floor: bool | None = None) -> np.ndarray:
        """Denoise ``(C, T)`` audio at any rate; the output is sample-aligned, same shape.

        ``floor``: whether the track holds a recording floor above ``hiss_cut_hz``, so the
        model reads it only below (default: ``hears_floor`` of these samples). A caller that
        passes part of a track passes the whole track's answer, as it does ``gain``.

        ``offset`` is the DC offset per channel (``(C, 1)``, or one number for all;
        default: ``dc_offset_of`` the samples), removed before the model and not restored:
        a constant is no part of the snare, and left in, the mask that opens at each hit
        would turn it into a step, a low thump, per hit. ``gain`` is the levelling gain per
        channel (``(C, 1)``, from ``gains_for`` on the peaks about the offset). A caller
        that passes ``gain`` for a part of a file passes ``offset`` too, or each part loses
        its own mean and the parts step at their seams: the streaming path removes the
        whole file's offset itself (before its pre-gate) and passes 0 with the whole
        file's gain.
        """
        shape = np.shape(samples)
        samples = validate_samples(samples)
        sample_rate = validate_rate(sample_rate)
        offset = np.asarray(dc_offset_of(samples) if offset is None else offset, dtype=np.float32)
        if offset.size not in (1, samples.shape[0]) or not np.isfinite(offset).all():
            raise ParameterError(f"DC offset must be one finite number per channel, "
                                 f"not {offset.ravel().tolist()}")
        centred = samples - offset.reshape(-1, 1)
        if gain is None:
            gain = self.gains_for(np.max(np.abs(centred), axis=-1),
                                  np.max(np.abs(samples), axis=-1))
        samples = centred
        gain = np.asarray(gain, dtype=np.float32)
        if gain.size not in (1, samples.shape[0]) or not np.all((gain > 0) & (gain < math.inf)):
            raise ParameterError(f"levelling gain must be a positive finite number per channel, "
                                 f"not {gain.ravel().tolist()}")
        gain = gain.reshape(-1, 1)
        length = samples.shape[-1]
        at_model_rate = resample(samples * gain, sample_rate, self.sample_rate)
        if floor is None:
            floor = self.hiss_cut_applies(sample_rate) and self._floor_at_model_rate(at_model_rate)
        model = self.hiss_model if floor and self.hiss_model is not None else self.model
        segment = int(round(self.config.segment_seconds * self.sample_rate))
        overlap = int(round(self.config.overlap_seconds * self.sample_rate))
        result = apply_model(model, torch.from_numpy(at_model_rate), segment, overlap,
                             self.device, progress, self.config.precision).numpy()
        if not np.isfinite(result).all():  # finite weights can still overflow
            raise NonFiniteOutputError("the model's output holds NaN/inf: this checkpoint "
                                       "cannot process this audio")
        return (resample(result, self.sample_rate, sample_rate, length) / gain).reshape(shape)

    def _floor_at_model_rate(self, levelled: np.ndarray) -> bool:
        """``hears_floor`` of a whole track already levelled and at the model's rate."""
        return has_top_band_floor(levelled, self.sample_rate, self.config.hiss_cut_hz)

    def denoise_file(self, src: str | os.PathLike, dst: str | os.PathLike, gate: Any = None,
                     progress: Progress | None = None,
                     sidechain: str | os.PathLike | None = None) -> Path:
        """Stream ``src`` through the optional pre-gate (keyed by ``sidechain`` if given) and
        the model into ``dst`` (float32)."""
        from .stream import denoise_file

        key = None if sidechain is None else Path(sidechain)
        return denoise_file(self, Path(src), Path(dst), gate, progress, key)

"""File-to-file denoising that streams: audio memory is bounded by one block (a minute by
default) whatever the file's length, so a 2-hour take works on a laptop.

Passes over the input: the first finds the DC offset and the peak about it (the offset
removed and the levelling gain must be the same for every block, or the output would step
and pump). For a track at the model's rate, the next finds whether it holds a recording
floor above the model's cut (``Denoiser.hears_floor``), one answer for every block. With
the pre-gate, another pass reads its detector (the sidechain file, or the input) piece by
piece for the ``auto`` threshold (a number per 5-ms frame), and one more keeps the gate's
open stretches for the whole file: hold, release and the hysteresis state reach across block
seams (a 10-s hold outlasts any block margin), and they take a few numbers per hit, not per
sample. The last pass reads overlapping blocks with context margins, gates each with its
span of that curve and denoises it, crossfades their seams and appends them to a temporary
file that is renamed over ``dst`` at the end.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from .audio import (TrackLevels, ensure_not_input, open_track, open_wav_writer,
                    require_key_sound, require_sound, scan, sf_reason)
from .chunking import plan_chunks
from .errors import AudioError, ParameterError
from .wavchunks import broadcast_info, channel_map

if TYPE_CHECKING:
    from .engine import Denoiser, Progress
    from .gate import GateConfig, GateCurve

def read_range(handle: sf.SoundFile, start: int, stop: int,
               offset: np.ndarray | None = None) -> np.ndarray:
    """Samples ``[start, stop)`` as ``(C, n)`` float32, less ``offset`` (``(C, 1)``, a DC
    offset), zeros past the end of the file: a sidechain shorter than the track it keys
    leaves the gate's detector silent there."""
    out = np.zeros((handle.channels, stop - start), dtype=np.float32)
    last = min(stop, handle.frames)
    if last > start:
        out[:, : last - start] = read_exactly(handle, start, last - start)
        if offset is not None:
            out[:, : last - start] -= offset
    return out


def read_exactly(handle: sf.SoundFile, start: int, frames: int) -> np.ndarray:
    """``frames`` samples from ``start`` as ``(C, frames)`` float32. A damaged compressed
    file can decode whole from the start yet come up short after a seek (an MP3 whose
    seek table is off): that is an error, not a block silently shorter than planned."""
    try:
        handle.seek(start)
        block = handle.read(frames, dtype="float32", always_2d=True).T
    except sf.LibsndfileError as exc:  # not to be taken for the output's write failing
        raise AudioError(f"{os.fsdecode(handle.name)}: damaged audio file ({sf_reason(exc)}); "
                         "export it again") from None
    if block.shape[1] != frames:
        raise AudioError(f"{os.fsdecode(handle.name)}: damaged audio file (frames "
                         f"{start}-{start + frames} do not decode after a seek); export it again")
    return block


def open_sidechain(path: Path, track: sf.SoundFile,
                   stack: contextlib.ExitStack) -> sf.SoundFile:
    """The sidechain's handle (closed with ``stack``), checked at the track's rate, finite,
    whole and not silent over the track's length."""
    from .gate import require_same_rate

    key = stack.enter_context(open_track(path))
    name = os.fsdecode(track.name)
    require_same_rate(path, key.samplerate, name, track.samplerate)
    require_key_sound(scan(key), key, track.frames, path, name)
    return key


def pre_gate_curve(gate: "GateConfig", track: sf.SoundFile, levels: TrackLevels,
                   sidechain: Path | None, stack: contextlib.ExitStack) -> "GateCurve":
    """The pre-gate's gain over all of ``track``, as ``apply_gate`` on the whole file gives it,
    from passes over its detector (one more for ``gate.auto``'s threshold): the
    ``sidechain`` file (opened on ``stack``), zero-padded to the track's length, or the
    track (``levels``: its scan). The track is read less its DC offset, as the model is fed
    and as ``apply_gate`` reads it: an offset would hold the gate open or shut whatever
    the hits do."""
    from .gate import streamed_auto_threshold_db, streamed_gate_curve

    rate = track.samplerate
    gate.validate(rate)
    if sidechain is None:
        detector, offset = track, levels.offset.astype(np.float32)[:, None]
    else:  # read as it is: a trigger's one-sided pulses have a mean that is no offset
        detector, offset = open_sidechain(sidechain, track, stack), None

    def read(begin: int, stop: int) -> np.ndarray:
        return read_range(detector, begin, stop, offset)

    if gate.auto:
        threshold = streamed_auto_threshold_db(read, track.frames, detector.channels, rate, gate,
                                               os.fsdecode(detector.name))
        gate = replace(gate, threshold_db=threshold, auto=False)
    return streamed_gate_curve(read, track.frames, detector.channels, rate, gate)


def hears_floor(denoiser: "Denoiser", handle: sf.SoundFile, offset: np.ndarray,
                gain: np.ndarray) -> bool:
    """``Denoiser.hears_floor`` of the whole track read block by block, less its DC offset,
    levelled by ``gain`` as the blocks will be, before any pre-gate: the statistics are a
    few numbers per frame, so memory stays bounded by one block."""
    rate = handle.samplerate
    if not denoiser.hiss_cut_applies(rate):
        return False
    from .engine import resample

    bands = denoiser.quiet_bands()
    block = int(denoiser.config.block_seconds * rate)
    for start in range(0, handle.frames, block):
        audio = read_exactly(handle, start, min(block, handle.frames - start)) - offset
        bands.add(resample(audio * gain, rate, denoiser.sample_rate))
    return bands.has_floor()


#: Samples per channel the gate command reads, gains and writes at a time.
GATE_BLOCK = 1 << 20


def gate_file(gate: "GateConfig", src: Path, dst: Path, sidechain: Path | None = None,
              block: int = GATE_BLOCK) -> Path:
    """Gate ``src`` into ``dst`` (keyed by ``sidechain`` when one is given) block by block,
    as ``apply_gate`` gates the whole file: the gain from ``pre_gate_curve``, the output
    keeping the input's DC offset. Why: read whole, a 20-minute 96-kHz stereo take held
    3 GB; streamed, memory is a block and the gain curve (a few numbers a hit)."""
    dst = ensure_not_input(dst, (src,) if sidechain is None else (src, sidechain))
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(open_track(src))
        curve = pre_gate_curve(gate, handle, scan(handle), sidechain, stack)
        with open_wav_writer(dst, handle.samplerate, handle.channels, handle.frames,
                             broadcast=broadcast_info(handle), layout=channel_map(handle)) as out:
            for start in range(0, handle.frames, block):
                stop = min(handle.frames, start + block)
                out.write((read_exactly(handle, start, stop - start)
                           * curve.gain(start, stop)).T)
    return dst


def denoise_file(denoiser: "Denoiser", src: Path, dst: Path, gate: "GateConfig | None" = None,
                 progress: "Progress | None" = None, sidechain: Path | None = None) -> Path:
    """Denoise ``src`` into ``dst`` through the optional pre-gate, keyed by ``sidechain`` (a
    trigger track or another microphone) when one is given."""
    if sidechain is not None and gate is None:
        raise ParameterError("a sidechain keys the pre-gate: turn the gate on to use one")
    dst = ensure_not_input(dst, (src,) if sidechain is None else (src, sidechain))
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(open_track(src))
        rate, channels, frames = handle.samplerate, handle.channels, handle.frames
        levels = scan(handle)
        require_sound(levels, src)
        gain = denoiser.gains_for(levels.peak)
        offset = levels.offset.astype(np.float32)[:, None]
        floor = hears_floor(denoiser, handle, offset, gain)
        low_rate = denoiser.low_rate_note(rate)
        if low_rate is not None:
            warnings.warn(f"{src}: {low_rate}", stacklevel=2)
        curve = (None if gate is None
                 else pre_gate_curve(gate, handle, levels, sidechain, stack))
        config = denoiser.config
        blocks = plan_chunks(frames, int(config.block_seconds * rate),
                             overlap=int(0.05 * rate),
                             context=int(config.block_margin_seconds * rate),
                             align=denoiser.alignment(rate))
        with open_wav_writer(dst, rate, channels, frames, broadcast=broadcast_info(handle),
                             layout=channel_map(handle)) as out:
            tail = np.zeros((channels, 0), dtype=np.float32)
            for index, block in enumerate(blocks):
                # the offset goes before the gate, which would otherwise key it in and out
                audio = read_exactly(handle, block.in_start, block.in_stop - block.in_start)
                audio -= offset
                if curve is not None:
                    audio = audio * curve.gain(block.in_start, block.in_stop)
                result = denoiser.denoise(audio, rate, gain=gain, offset=0.0, floor=floor,
                                          progress=_within(progress, index, len(blocks))
                                          )[:, block.crop]
                result = result * block.weights()
                result[:, : tail.shape[1]] += tail
                keep = result.shape[1] - block.fade_out
                out.write(result[:, :keep].T)
                tail = result[:, keep:]
    if floor:  # the output removes less bleed than the model can: say why, once it is written
        # named as the command line and the REAPER bridge's INI spell it: both reach here
        warnings.warn(f"{src}: a recording floor (hiss, dither) above "
                      f"{denoiser.config.hiss_cut_hz:g} Hz: read only below it "
                      "(--hiss-cut-hz 0, the REAPER bridge's hiss_cut_hz = 0, reads the whole "
                      "band)", stacklevel=2)
    return dst


def _within(progress: "Progress | None", index: int, count: int) -> "Progress | None":
    """Progress through block ``index`` of ``count`` as the model reports it chunk by chunk
    (20 s each), so a file of one 60-s block moves the bar, not just from 0 to 100 %."""
    if progress is None:
        return None
    return lambda fraction: progress((index + fraction) / count)

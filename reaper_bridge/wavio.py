"""Render what a take or a track plays through REAPER's audio accessor into a float32 WAV.

The fallback for sources that are not a readable file or that stretch markers warp (and
for training export of takes a file slice cannot reproduce), and the pre-gate's sidechain
track. Standard library only, because it runs inside REAPER: ``array`` holds the samples
and the WAV header is written with ``struct``.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from denoiser.errors import SILENT_PEAK
from denoiser.outfiles import WAV_LIMIT_BYTES, atomic_output

from .items import BridgeError, TakeSource
from .rpr import pack_pointer

BLOCK_FRAMES = 65536
#: ``Rendered.sound`` is noted in stretches this long: shorter than the gate's default hold
#: (40 ms), so a hit that close outside an item, taken for sound inside it, holds the gate
#: open into the item anyway; ten minutes are 60,000 tests.
SOUND_SECONDS = 0.01
ACCESSOR_FAILED = "REAPER's audio accessor failed to read the audio"


@dataclass(frozen=True)
class Rendered:
    """A file rendered through the accessor, and a digest of its audio: renders are new
    files each run, so the cache keys them by what they hold (the same audio again reuses
    the earlier result; a changed take or sidechain track is processed anew). ``sound``:
    the ``[start, stop)`` frame spans, in ``SOUND_SECONDS`` stretches, where a sample is
    above ``SILENT_PEAK`` (where a sidechain track plays something)."""

    path: str
    digest: str
    sound: tuple[tuple[int, int], ...]

    def sounds(self, start: int, stop: int) -> bool:
        """Whether a sample of frames ``[start, stop)`` is above silence (to the stretch)."""
        return any(begin < stop and end > start for begin, end in self.sound)


def _ctypes_reader(api: Any) -> Any:
    """REAPER's Python binding mishandles the ``double*`` sample buffer, so inside REAPER
    the function is called through its ctypes function table (as reapy does for
    ``MIDI_GetEvt``). Returns ``None`` when no such table exists (distant API, most tests).

    The accessor is packed as the binding packs it (``void*``) by ``pack_pointer``, not by
    the module's ``rpr_packp``: that one may be REAPER's own, which hands NULL for any
    pointer ``ValidatePtr`` does not know (see ``RawRPR``)."""
    module = getattr(api, "raw_module", None) or getattr(api, "_RPR", None)
    table = getattr(module, "_ft", None)
    if not table or "GetAudioAccessorSamples" not in table:
        return None
    import ctypes as ct

    func = ct.CFUNCTYPE(ct.c_int, ct.c_uint64, ct.c_int, ct.c_int, ct.c_double, ct.c_int,
                        ct.c_void_p)(table["GetAudioAccessorSamples"])

    def read(accessor: str, rate: int, channels: int, start: float, frames: int) -> array:
        buffer = (ct.c_double * (frames * channels))()
        # -1 on error, 0 when there is no audio there, 1 with audio
        if func(pack_pointer("void*", accessor), rate, channels, start, frames, buffer) < 0:
            raise BridgeError(ACCESSOR_FAILED)
        return array("f", buffer)

    return read


def _api_reader(api: Any) -> Any:
    """The documented binding (reapy's distant API, tests): this function alone returns
    just ``(retval, filled buffer)``, not every parameter back."""

    def read(accessor: str, rate: int, channels: int, start: float, frames: int) -> array:
        buffer = [0.0] * (frames * channels)
        result = api.GetAudioAccessorSamples(accessor, rate, channels, start, frames, buffer)
        if int(result[0]) < 0:
            raise BridgeError(ACCESSOR_FAILED)
        return array("f", result[1])

    return read


def _header(channels: int, rate: int, frames: int) -> bytes:
    """Header of a float32 WAV of ``frames``; RF64 when RIFF's 32-bit sizes cannot hold it."""
    data_bytes = frames * channels * 4
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 3, channels, rate, rate * channels * 4,
                                channels * 4, 32)
    if data_bytes <= WAV_LIMIT_BYTES:
        return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + fmt
                + b"data" + struct.pack("<I", data_bytes))
    riff_bytes = 4 + 36 + len(fmt) + 8 + data_bytes  # all after RF64's own size field
    ds64 = b"ds64" + struct.pack("<IQQQI", 28, riff_bytes, data_bytes, frames, 0)
    return (b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + ds64 + fmt
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


def _first_channels(samples: array, channels: int, keep: int) -> array:
    """The first ``keep`` of the ``channels`` interleaved in ``samples``, interleaved."""
    out = array("f", bytes(4 * keep * (len(samples) // channels)))
    for channel in range(keep):
        out[channel::keep] = samples[channel::channels]
    return out


def _render(api: Any, accessor: str, start: float, rate: int, channels: int, total: int,
            path: str, block: int, gain: float = 1.0, keep: int | None = None) -> Rendered:
    """Write ``total`` frames the accessor gives from ``start`` (its own time base) in
    ``channels``, of which the first ``keep`` (default and at most: all) go to the file,
    times ``gain``, to ``path`` atomically, then destroy the accessor. The file's bytes are
    hashed as they are written, not read back, and where they sound noted
    (``_sounding``)."""
    read = _ctypes_reader(api) or _api_reader(api)
    keep = min(keep or channels, channels)  # the header must describe the data written
    sha = hashlib.sha1()
    stretch = max(1, int(rate * SOUND_SECONDS))
    sound: list[tuple[int, int]] = []
    try:
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            header = _header(keep, rate, total)
            sha.update(header)
            handle.write(header)
            for first in range(0, total, block):
                frames = min(block, total - first)
                samples = read(accessor, rate, channels, start + first / rate, frames)
                if keep < channels:
                    samples = _first_channels(samples, channels, keep)
                if gain != 1.0:
                    samples = array("f", (value * gain for value in samples))
                for span in _sounding(samples, keep, first, stretch):
                    if sound and sound[-1][1] == span[0]:
                        span = (sound.pop()[0], span[1])
                    sound.append(span)
                if sys.byteorder == "big":
                    samples.byteswap()
                data = samples.tobytes()
                sha.update(data)
                handle.write(data)
    finally:
        api.DestroyAudioAccessor(accessor)
    return Rendered(path, sha.hexdigest()[:16], tuple(sound))


def _sounding(samples: array, channels: int, start: int,
              stretch: int) -> Iterator[tuple[int, int]]:
    """The frame spans of each ``stretch`` frames of interleaved ``samples`` (frame
    ``start`` on) that hold a sample above silence. Pure Python must stay cheap beside
    reading the key: digital silence is one comparison of bytes, and a sounding stretch is
    read up to its first loud sample."""
    frames = len(samples) // channels
    zeros = bytes(samples.itemsize * stretch * channels)
    for offset in range(0, frames, stretch):
        part = samples[offset * channels:(offset + stretch) * channels]
        if (part.tobytes() != zeros[:len(part) * samples.itemsize]
                and any(value > SILENT_PEAK or value < -SILENT_PEAK for value in part)):
            yield start + offset, start + min(offset + stretch, frames)


def render_take(api: Any, take: TakeSource, path: str, block: int = BLOCK_FRAMES,
                gain: float = 1.0) -> Rendered:
    """Write what the take plays from the item start for the item length, at the source
    rate, in the channels it plays (``played_channels``), times ``gain``.

    The accessor reads in take time from the item start, with the take's offset,
    playrate, stretch markers and channel mode already applied (neither take nor item
    volume), so the result plays at offset 0, rate 1, channel mode normal. It must be
    asked for the source's channel count whatever the channel mode (asking a mono-mode
    take of a stereo source for one channel fails; SWS's BR_Loudness notes the same), or
    for the played channels where they are more (a stereo-pair mode of a mono source, whose
    missing channel plays silence): it packs the played channels from channel 0 and leaves
    the others silent, so the file keeps only the first ``played_channels``.
    """
    total = int(round(take.length * take.sample_rate))
    asked = max(take.channels, take.played_channels)
    return _render(api, api.CreateTakeAudioAccessor(take.take), 0.0, take.sample_rate,
                   asked, total, path, block, gain, take.played_channels)


def render_track(api: Any, track: str, start: float, rate: int, channels: int, frames: int,
                 path: str, block: int = BLOCK_FRAMES) -> Rendered:
    """Write ``frames`` of what ``track`` plays from project time ``start`` (its items
    mixed, before its FX), e.g. a gate's sidechain."""
    return _render(api, api.CreateTrackAudioAccessor(track), start, rate, channels, frames,
                   path, block)

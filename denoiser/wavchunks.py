"""WAV chunks libsndfile writes or reads beside the samples, through its command interface.

Three jobs: carry a Broadcast WAV (BWF, EBU Tech 3285) ``bext`` chunk from an input to its
output, carry the speaker layout a WAVE_FORMAT_EXTENSIBLE ``fmt `` chunk gives its channels,
and keep outputs byte-reproducible where libsndfile insists on a timestamped ``PEAK`` chunk.
Recorders and DAWs stamp each take's ``bext`` with its time reference (its
start, in samples since midnight) and DAWs place a file at that position when it is
spotted or imported "at source position": a processed snare track that lost the chunk
lands at zero instead of beside its original, and can no longer be blended with it. A
surround or multi-microphone file that lost its channel mask is read with a guessed layout.
"""

from __future__ import annotations

import os
import struct
import warnings

import soundfile as sf

# libsndfile command ids (sndfile.h).
_SFC_SET_ADD_PEAK_CHUNK = 0x1050
_SFC_GET_BROADCAST_INFO = 0x10F0
_SFC_SET_BROADCAST_INFO = 0x10F1
_SFC_GET_CHANNEL_MAP_INFO = 0x1100
_SFC_SET_CHANNEL_MAP_INFO = 0x1101
# SF_BROADCAST_INFO's C layout: the fixed fields (with two bytes of padding before the
# time reference) end in a uint32 history length at 604, the coding history starts at 608.
_HISTORY_SIZE_AT = 604
_HISTORY_AT = 608
# libsndfile skips, on reading, a bext chunk over 10 KiB (602 bytes of fixed fields and the
# coding history); what is written leaves room below that for the line libsndfile adds.
_CHUNK_MAX = 10240
_HISTORY_MAX = _CHUNK_MAX - 602 - 160
_HEADER_SCAN_BYTES = 1 << 16


def broadcast_info(handle: sf.SoundFile) -> bytes | None:
    """The ``bext`` chunk of an open WAV/RF64 as libsndfile's ``SF_BROADCAST_INFO`` bytes,
    or ``None`` when it has none (any other format, a plain WAV, or a chunk over 10 KiB,
    which libsndfile skips)."""
    size = _HISTORY_AT + _CHUNK_MAX
    buffer = sf._ffi.new("char[]", size)
    if not sf._snd.sf_command(handle._file, _SFC_GET_BROADCAST_INFO, buffer, size):
        return None
    raw = bytes(sf._ffi.buffer(buffer))
    (history,) = struct.unpack_from("=I", raw, _HISTORY_SIZE_AT)
    return raw[: _HISTORY_AT + min(history, _CHUNK_MAX)]


def set_broadcast_info(handle: sf.SoundFile, info: bytes) -> None:
    """Give a WAV/RF64 open for writing, before its first sample, the ``bext`` chunk
    ``info`` (from ``broadcast_info``). libsndfile appends a line to its coding history
    ("A=PCM,F=...,T=libsndfile-..."), as BWF asks of each process that writes the file.
    The chunk is metadata: one libsndfile refuses is left out with a warning, not a
    reason to fail the output."""
    (history,) = struct.unpack_from("=I", info, _HISTORY_SIZE_AT)
    text = info[_HISTORY_AT:_HISTORY_AT + history].rstrip(b"\0")
    if len(text) > _HISTORY_MAX:  # the oldest lines are the recording's own: keep those
        end = text.rfind(b"\r\n", 0, _HISTORY_MAX - 1)
        text = text[: end + 2] if end > 0 else text[:_HISTORY_MAX]  # whole lines if any
    kept = len(text)
    data = bytearray((info[:_HISTORY_AT] + text).ljust(_HISTORY_AT + 256, b"\0"))
    struct.pack_into("=I", data, _HISTORY_SIZE_AT, kept)
    if not sf._snd.sf_command(handle._file, _SFC_SET_BROADCAST_INFO,
                              sf._ffi.from_buffer(data), len(data)):
        warnings.warn(f"{os.fsdecode(handle.name)}: the input's bext chunk (BWF time "
                      "reference) was refused by libsndfile and is left out", stacklevel=2)


def channel_map(handle: sf.SoundFile) -> tuple[int, ...] | None:
    """The speaker of each channel of an open file, as libsndfile's ``SF_CHANNEL_MAP_*``
    ids (read from a WAVE_FORMAT_EXTENSIBLE channel mask), or ``None`` when the file names
    none: a plain WAV, FLAC, or an extensible one whose mask is 0 ("unassigned")."""
    layout = sf._ffi.new("int[]", handle.channels)
    if not sf._snd.sf_command(handle._file, _SFC_GET_CHANNEL_MAP_INFO, layout,
                              sf._ffi.sizeof(layout)):
        return None
    return tuple(layout)


def set_channel_map(handle: sf.SoundFile, layout: tuple[int, ...]) -> None:
    """Give a WAVEX/RF64 open for writing, before its first sample, the channel mask of
    ``layout`` (from ``channel_map``, one id a channel). A layout no mask can express
    leaves libsndfile's default for the channel count, with a warning: the layout is
    metadata, not a reason to fail the output."""
    ids = sf._ffi.new("int[]", list(layout))
    if not sf._snd.sf_command(handle._file, _SFC_SET_CHANNEL_MAP_INFO, ids, sf._ffi.sizeof(ids)):
        warnings.warn(f"{os.fsdecode(handle.name)}: the input's channel layout {layout} has no "
                      f"WAV channel mask; the default for {handle.channels} channels is written",
                      stacklevel=2)


def omit_peak_chunk(handle: sf.SoundFile) -> None:
    """Ask libsndfile, before the first sample, to write no ``PEAK`` chunk: it holds the
    write time. Its RF64 writer ignores this; ``zero_peak_time`` mends those files."""
    sf._snd.sf_command(handle._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)


def zero_peak_time(path: str | os.PathLike) -> None:
    """Zero the write time in ``path``'s ``PEAK`` chunk, if it has one. libsndfile's RF64
    writer adds the chunk even when told not to, and its timestamp would make the same
    samples give other bytes on every run; the peak values themselves stay."""
    with open(path, "r+b") as handle:
        head = handle.read(_HEADER_SCAN_BYTES)
        position = 12
        while position + 8 <= len(head):
            tag, size = head[position:position + 4], struct.unpack_from("<I", head, position + 4)[0]
            if tag == b"data":
                return
            if tag == b"PEAK":
                handle.seek(position + 12)  # after the tag, size and version fields
                handle.write(b"\0\0\0\0")
                return
            position += 8 + size + (size & 1)

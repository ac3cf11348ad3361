"""WAV chunks libsndfile writes or reads beside the samples, through its command interface
or, where it falls short, in the file's own bytes.

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

import itertools
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

import soundfile as sf

# libsndfile command ids (sndfile.h).
_SFC_SET_ADD_PEAK_CHUNK = 0x1050
_SFC_GET_BROADCAST_INFO = 0x10F0
_SFC_SET_BROADCAST_INFO = 0x10F1
_SFC_GET_CHANNEL_MAP_INFO = 0x1100
# SF_BROADCAST_INFO's C layout: the fixed fields (with two bytes of padding before the
# time reference) end in a uint32 history length at 604, the coding history starts at 608.
_HISTORY_SIZE_AT = 604
_HISTORY_AT = 608
# In the file, the fixed fields take 602 bytes, the time reference starting at 338.
_FIXED_BYTES = 602
_REFERENCE_AT = 338
# The file's fields from the time reference on (version, UMID, loudness, reserved), as
# struct formats: "<" in the file, "=" (no padding) in SF_BROADCAST_INFO.
_NUMBERS = "IIH64s5h180s"
# libsndfile skips, on reading, a bext chunk over 10 KiB (602 bytes of fixed fields and the
# coding history); what is written leaves room below that for the line libsndfile adds.
_CHUNK_MAX = 10240
_LINE_MAX = 160
_HISTORY_MAX = _CHUNK_MAX - _FIXED_BYTES - _LINE_MAX
# A WAV channel mask's bits in order, as libsndfile's SF_CHANNEL_MAP ids (wavlike.c): front
# left, right, centre, LFE, back left, right, front left and right of centre, back centre,
# side left, right, top centre, top front left, centre, right, top back left, centre, right.
_MASK_SPEAKERS = (2, 3, 4, 11, 9, 10, 12, 13, 8, 14, 15, 16, 17, 19, 18, 20, 22, 21)
_FMT_MASK_AT = 20  # dwChannelMask in a WAVE_FORMAT_EXTENSIBLE fmt chunk's data
_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF  # an RF64 data chunk's size field: its ds64 counts it
# A Wave64's chunk ids are GUIDs, stored as RIFF/WAVE GUIDs are (their first three fields
# little-endian): its header's riff and wave, which take its first 40 bytes, and its data.
_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")
_W64_WAVE = bytes.fromhex("77617665f3acd3118cd100c04f8edb8a")
_W64_DATA = bytes.fromhex("64617461f3acd3118cd100c04f8edb8a")
_W64_START = 40
_W64_HEADER = 24  # a Wave64 chunk's GUID and its 64-bit size


def broadcast_info(handle: sf.SoundFile) -> bytes | None:
    """The ``bext`` chunk of an open WAV/RF64 as libsndfile's ``SF_BROADCAST_INFO`` bytes,
    or ``None`` when it has none (any other format, or a plain WAV). libsndfile skips a
    chunk over 10 KiB (a coding history of some hundred lines, which editing chains write):
    that one is read from the file itself, or the output would lose its time reference."""
    size = _HISTORY_AT + _CHUNK_MAX
    buffer = sf._ffi.new("char[]", size)
    if not sf._snd.sf_command(handle._file, _SFC_GET_BROADCAST_INFO, buffer, size):
        if handle.format not in ("WAV", "WAVEX", "RF64"):
            return None
        with open(handle.name, "rb") as file:
            return _long_broadcast_info(file)
    raw = bytes(sf._ffi.buffer(buffer))
    (history,) = struct.unpack_from("=I", raw, _HISTORY_SIZE_AT)
    return raw[: _HISTORY_AT + min(history, _CHUNK_MAX)]


def _long_broadcast_info(file: BinaryIO) -> bytes | None:
    """A ``bext`` chunk over libsndfile's 10 KiB in ``file`` (a RIFF or RF64 WAV) as
    ``broadcast_info`` gives one: the fixed fields, its numbers in the host's byte order,
    and the first 10 KiB of the coding history, which ``set_broadcast_info`` cuts to whole
    lines. ``None`` when there is none; a shorter one libsndfile did not read is damaged."""
    for tag, start, size, _ in _chunks(file):
        if tag == b"bext" and size > _CHUNK_MAX:
            file.seek(start)
            chunk = file.read(min(size, _FIXED_BYTES + _CHUNK_MAX))  # not the next chunk
            if len(chunk) < _FIXED_BYTES:
                return None
            history = chunk[_FIXED_BYTES:]
            numbers = struct.unpack_from("<" + _NUMBERS, chunk, _REFERENCE_AT)
            return (chunk[:_REFERENCE_AT] + b"\0\0" + struct.pack("=" + _NUMBERS, *numbers)
                    + struct.pack("=I", len(history)) + history)
    return None


def _chunks(file: BinaryIO) -> Iterator[tuple[bytes, int, int, int]]:
    """Each chunk of a RIFF or RF64 WAV, of an AIFF or AIFF-C (the same walk, its sizes
    big-endian) or of a Wave64 ``file`` (``_wave64_chunks``), as its id, the offset of its
    data, its size and the offset after it (its padding included), those after the audio
    included (some editors append their ``bext`` there, an AIFF its ``ID3 ``). An RF64's
    audio size is in its ``ds64``. The walk stops at the end of the file or at an id that
    is not four printable characters: padding or damage, not a chunk."""
    file.seek(0)
    head = file.read(_W64_START)
    if head[:16] == _W64_RIFF and head[24:] == _W64_WAVE:
        yield from _wave64_chunks(file, struct.unpack_from("<Q", head, 16)[0])
        return
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        size_format = "<I"
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        size_format = ">I"
    else:
        return
    position, audio_size = 12, None
    while True:
        file.seek(position)
        header = file.read(8)
        if len(header) < 8 or not all(32 <= byte < 127 for byte in header[:4]):
            return
        tag, (size,) = header[:4], struct.unpack_from(size_format, header, 4)
        if tag == b"ds64":  # its RIFF size, then its data size
            audio_size = struct.unpack("<8xQ", file.read(16))[0]
        elif tag == b"data" and size == _UNKNOWN_SIZE and audio_size is not None:
            size = audio_size
        after = position + 8 + size + (size & 1)
        yield tag, position + 8, size, after
        position = after


def _wave64_chunks(file: BinaryIO, riff: int) -> Iterator[tuple[bytes, int, int, int]]:
    """The chunks of a Wave64 whose riff size is ``riff``, after its header, as ``_chunks``
    gives them, each id a 16-byte GUID: a chunk's 64-bit size counts its own 24-byte header
    (``_W64_HEADER``), and the next chunk starts at the next multiple of 8. A data chunk
    counting no audio in a file whose riff size falls short of it (a recorder that crashed
    before finalising the file; libsndfile's own leaves both so) is given the rest of the
    file, as libsndfile reads it: the take is all there. The walk stops at the end of the
    file or at a size under a header's: padding or damage (audio a short data size leaves
    uncounted), not a chunk."""
    length = file.seek(0, os.SEEK_END)
    position = _W64_START
    while True:
        file.seek(position)
        header = file.read(_W64_HEADER)
        if len(header) < _W64_HEADER:
            return
        guid, (size,) = header[:16], struct.unpack_from("<Q", header, 16)
        if size < _W64_HEADER:
            return
        start, size = position + _W64_HEADER, size - _W64_HEADER
        if guid == _W64_DATA and size == 0 and riff < start:
            size = length - start
        position = start + (size + 7) // 8 * 8
        yield guid, start, size, position


def wave64_audio_bytes(path: str | os.PathLike) -> int | None:
    """The bytes of audio a Wave64's data chunk counts (``_wave64_chunks``), or ``None``
    for any other file. libsndfile reads a Wave64's audio from the data chunk to the end
    of the file, whatever the chunk's size says, so a chunk after it (a DAW's ``list``,
    ``levl``, ``marker`` or ``bext``) was read as audio: noise at the end, and an output
    longer than the take; ``audio.open_track`` reads only these bytes."""
    with open(path, "rb") as file:
        return next((size for tag, _, size, _ in _chunks(file) if tag == _W64_DATA), None)


def audio_end(path: str | os.PathLike) -> int | None:
    """The offset just past the audio of a WAV's, an AIFF's or a Wave64's audio chunk, or
    ``None`` for any other file: one that reaches it holds all its audio, whatever its
    sizes count past it (a WAV's pad byte after a data chunk of odd size, a Wave64's
    padding to a multiple of 8, a chunk after the audio cut short). An AIFF's SSND counts
    its pad byte too where libsndfile wrote it (``_aiff_pad``), which is no audio."""
    with open(path, "rb") as file:
        chunks = {tag: (start, size) for tag, start, size, _ in _chunks(file)}
        for tag in (_W64_DATA, b"data"):
            if tag in chunks:
                return sum(chunks[tag])
        if b"SSND" in chunks and b"COMM" in chunks:
            start, size = chunks[b"SSND"]
            return start + size - _aiff_pad(file, chunks[b"COMM"][0], start, size)
    return None


def _aiff_pad(file: BinaryIO, comm: int, ssnd: int, size: int) -> int:
    """1 where an AIFF's SSND chunk (its data at ``ssnd``) counts the pad byte after its
    samples in its ``size``, as libsndfile writes it, else 0: the samples (after its
    offset and block size) a byte short of it are an odd number of bytes in whole frames
    of its COMM (at ``comm``: channels, frames, bits per sample). A 16-bit AIFF's samples
    are never odd, so one a byte short of its SSND's count lost a byte of audio; an 8-bit
    mono one's even count cannot be told from an odd one and its pad, and reads as that."""
    file.seek(comm)
    channels, _, bits = struct.unpack(">hIh", file.read(8))
    file.seek(ssnd)
    samples = size - 8 - struct.unpack(">I", file.read(4))[0] - 1
    frame = channels * -(-bits // 8)
    return int(frame > 0 and samples > 0 and samples % 2 == 1 and samples % frame == 0)


def unfinished_audio_bytes(path: str | os.PathLike) -> int:
    """The bytes after the ``data`` chunk's header of a RIFF or RF64 WAV whose header was
    never updated (its data size 0, its RIFF size 0 or short of the data chunk's header),
    else 0: a recorder or DAW that crashed before finalising the file leaves its sizes 0
    with the audio after them, and libsndfile reads that as empty. A finalised empty WAV
    gives 0, with chunks after its audio (an editor's ``bext``) or bytes past what its RIFF
    size counts (a tag appended without updating it): its RIFF size reaches its audio."""
    with open(path, "rb") as file:
        length = os.fstat(file.fileno()).st_size
        file.seek(4)
        riff = int.from_bytes(file.read(4), "little")
        for tag, start, size, _ in _chunks(file):
            if tag == b"ds64":  # an RF64's RIFF size
                file.seek(start)
                riff = int.from_bytes(file.read(8), "little")
            elif tag == b"data":
                return length - start if size == 0 and 8 + riff < start else 0
    return 0


#: How the tags some taggers append to a WAV without counting them begin (ID3v2, ID3v1,
#: APE): bytes after the audio that are no audio.
_TAG_MAGIC = (b"ID3", b"TAG", b"APETAGEX")
#: The chunk that holds the samples: a WAV's, an AIFF's, a Wave64's.
_AUDIO_CHUNKS = (b"data", b"SSND", _W64_DATA)


def uncounted_audio_bytes(path: str | os.PathLike) -> int:
    """The bytes after the audio chunk (``_AUDIO_CHUNKS``) of a RIFF or RF64 WAV, of an
    AIFF or AIFF-C or of a Wave64, that no chunk holds and no appended tag (``_TAG_MAGIC``)
    begins, else 0: audio its header does not count. A recorder that updates its sizes
    every few seconds and crashed before the last update leaves them so; libsndfile, as a
    DAW, reads only the counted audio (an AIFF's as its ``SSND`` size counts, whatever its
    ``COMM`` frame count says; a Wave64's as ``audio.open_track`` caps it). Chunks after
    the audio (an editor's ``bext``, an AIFF's ``ID3 `` or ``MARK``, a Wave64's ``list``)
    and the padding of a chunk are walked over; a size of 0xFFFFFFFF ("unknown") reads to
    the end of the file, so nothing is left after it. What follows, a chunk running past
    the end of the file or a header too short to hold its size, is a chunk cut short
    where the container's size (``_container_end``) counts past the end of the file: the
    file was cut after its audio, which is all there. A crashed recorder's container size
    stops at its counted audio (an AIFF's FORM may count the file, its SSND not all of
    it), so what follows is audio, whatever its bytes spell: 8-bit and mu-law audio often
    spell a chunk id, and telling a chunk by its id dropped the warning at one crash in
    three."""
    with open(path, "rb") as file:
        length = os.fstat(file.fileno()).st_size
        end = None
        for tag, start, size, after in _chunks(file):
            if start + size > length + 1:  # past the end of the file
                if end is None:
                    return 0
                break
            if tag in _AUDIO_CHUNKS or end is not None:
                end = after
        if end is None or end >= length or _container_end(file) > length:
            return 0
        file.seek(end)
        return 0 if file.read(8).startswith(_TAG_MAGIC) else length - end


def _container_end(file: BinaryIO) -> int:
    """The offset up to which a WAV's RIFF (an RF64's ``ds64``), an AIFF's FORM or a
    Wave64's riff size counts the ``file``, 0 for any other file. A RIFF size of 0 (never
    finalised) counts nothing past the header, one of 0xFFFFFFFF ("unknown") the file."""
    file.seek(0)
    head = file.read(_W64_START)
    if head[:16] == _W64_RIFF:
        return struct.unpack_from("<Q", head, 16)[0]
    if head[:4] == b"RF64" and head[12:16] == b"ds64":
        return 8 + struct.unpack_from("<Q", head, 20)[0]
    if head[:4] in (b"RIFF", b"FORM"):
        return 8 + struct.unpack_from("<I" if head[:4] == b"RIFF" else ">I", head, 4)[0]
    return 0


def broadcast_chunk_bytes(info: bytes) -> int:
    """The most bytes the ``bext`` chunk that ``set_broadcast_info`` writes for ``info``
    takes in the file: its header, fixed fields, the coding history as cut and the line
    libsndfile adds. A RIFF WAV must count it beside the audio (``audio.wav_container``)."""
    return 8 + _FIXED_BYTES + len(_kept_history(info)) + _LINE_MAX


def _kept_history(info: bytes) -> bytes:
    """The coding history of ``info`` that ``set_broadcast_info`` writes: past
    ``_HISTORY_MAX`` the oldest lines, the recording's own, whole where it has line ends,
    so the chunk with libsndfile's line stays under the 10 KiB it reads."""
    (history,) = struct.unpack_from("=I", info, _HISTORY_SIZE_AT)
    text = info[_HISTORY_AT:_HISTORY_AT + history].rstrip(b"\0")
    if len(text) > _HISTORY_MAX:
        end = text.rfind(b"\r\n", 0, _HISTORY_MAX - 1)
        text = text[: end + 2] if end > 0 else text[:_HISTORY_MAX]  # whole lines if any
    return text


def set_broadcast_info(handle: sf.SoundFile, info: bytes) -> bool:
    """Give a WAV/RF64 open for writing, before its first sample, the ``bext`` chunk
    ``info`` (from ``broadcast_info``), its coding history cut by ``_kept_history``.
    libsndfile appends a line to it ("A=PCM,F=...,T=libsndfile-..."), as BWF asks of each
    process that writes the file. Returns whether libsndfile took the chunk: it is
    metadata, and the caller, which knows the output's name (``handle`` may be a temporary
    file), warns when it did not."""
    text = _kept_history(info)
    data = bytearray((info[:_HISTORY_AT] + text).ljust(_HISTORY_AT + 256, b"\0"))
    struct.pack_into("=I", data, _HISTORY_SIZE_AT, len(text))
    return bool(sf._snd.sf_command(handle._file, _SFC_SET_BROADCAST_INFO,
                                   sf._ffi.from_buffer(data), len(data)))


def channel_map(handle: sf.SoundFile) -> tuple[int, ...] | None:
    """The speaker of each channel of an open file, as libsndfile's ``SF_CHANNEL_MAP_*``
    ids (read from a WAVE_FORMAT_EXTENSIBLE channel mask; 0 for a channel past the mask's
    bits), or ``None`` when the file names none: a plain WAV, FLAC, or an extensible one
    whose mask is 0 ("unassigned")."""
    layout = sf._ffi.new("int[]", handle.channels)
    if not sf._snd.sf_command(handle._file, _SFC_GET_CHANNEL_MAP_INFO, layout,
                              sf._ffi.sizeof(layout)):
        return None
    return tuple(layout)


def channel_mask(layout: tuple[int, ...]) -> int | None:
    """The WAVE_FORMAT_EXTENSIBLE ``dwChannelMask`` naming ``layout``'s speakers (from
    ``channel_map``; ``SF_CHANNEL_MAP_INVALID``, 0, for a channel past the mask's bits),
    or ``None`` when no mask can: a mask names the first channels in its bit order, so a
    speaker out of that order, one no bit stands for (an Apple layout's) or an unnamed
    channel before a named one has none. libsndfile's own command refuses a mask that
    names fewer speakers than there are channels (4 channels, the front pair named), so
    ``set_channel_mask`` writes it."""
    named = tuple(itertools.takewhile(bool, layout))
    if any(layout[len(named):]) or not set(named) <= set(_MASK_SPEAKERS):
        return None
    bits = [_MASK_SPEAKERS.index(speaker) for speaker in named]
    return sum(1 << bit for bit in bits) if bits == sorted(set(bits)) else None


def set_channel_mask(path: str | os.PathLike, mask: int) -> None:
    """Write ``mask`` into the WAVE_FORMAT_EXTENSIBLE ``fmt `` chunk of ``path``, a WAVEX or
    RF64 that libsndfile has closed (with its default mask for the channel count)."""
    with open(path, "r+b") as file:
        for tag, start, size, _ in _chunks(file):
            if tag == b"fmt ":
                file.seek(start)
                (format_tag,) = struct.unpack("<H", file.read(2))
                if format_tag != _EXTENSIBLE or size < _FMT_MASK_AT + 4:
                    raise ValueError(f"{os.fsdecode(path)}: no extensible fmt chunk to hold "
                                     "a channel mask")
                file.seek(start + _FMT_MASK_AT)
                file.write(struct.pack("<I", mask))
                return


def omit_peak_chunk(handle: sf.SoundFile) -> None:
    """Ask libsndfile, before the first sample, to write no ``PEAK`` chunk: it holds the
    write time. Its RF64 writer ignores this; ``zero_peak_time`` mends those files."""
    sf._snd.sf_command(handle._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)


def zero_peak_time(path: str | os.PathLike) -> None:
    """Zero the write time in ``path``'s ``PEAK`` chunk, if it has one. libsndfile's RF64
    writer adds the chunk even when told not to, and its timestamp would make the same
    samples give other bytes on every run; the peak values themselves stay."""
    with open(path, "r+b") as file:
        for tag, start, _, _ in _chunks(file):
            if tag == b"PEAK":
                file.seek(start + 4)  # after the version field
                file.write(b"\0\0\0\0")
                return

"""Audio file I/O with validation (SPEC section 2).

All audio inside debleed is a float32 array shaped ``(channels, samples)``: the layout
torch models want, and the one that makes "each channel processed in one batch" a plain
reshape. Files are read and written with soundfile, whole or (``open_track``, ``scan``)
block by block; whatever reads a track refuses what no snare track is (empty, NaN, a rate
outside 8-768 kHz). Writes are atomic (temporary file in the destination folder, then
``os.replace``) so a crash never leaves half a file, never land on top of one of their own
inputs, switch to RF64 where a RIFF WAV could not count the bytes, and are
WAVE_FORMAT_EXTENSIBLE, with the input's speaker layout, where their channels have one.
"""

from __future__ import annotations

import errno
import numbers
import os
import re
import shlex
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import SILENT_PEAK, AudioError, SilentAudioError
from .outfiles import AUDIO_SUFFIX, WAV_LIMIT_BYTES, atomic_output
from .wavchunks import (audio_end, broadcast_chunk_bytes, broadcast_info, channel_map,
                        channel_mask, omit_peak_chunk, set_broadcast_info, set_channel_mask,
                        uncounted_audio_bytes, unfinished_audio_bytes, wave64_audio_bytes,
                        zero_peak_time)

# Rates a snare track can come at. Below 8 kHz not even the stick's attack is left (the
# model's work is 150 Hz to 20 kHz); above 768 kHz is beyond any DAW. Anything in between is
# resampled to the model's rate and back, so sessions at 22.05 or 32 kHz work too.
SAMPLE_RATE_RANGE = (8_000, 768_000)
#: A channel's mean is taken for a DC offset, and removed, from this far under its peak up.
#: A snare track's own mean (hits that decay lopsidedly) sits 60-70 dB under it; removing
#: that would put a constant into digitally silent stretches (a gated or faded track),
#: which the networks read in their lowest bins: gated clips' tom/kick leakage moved by
#: several dB. An offset that thumps audibly at each hit lies well above.
OFFSET_FLOOR_DB = -50.0
MAX_CHANNELS = 128  # a REAPER track's most; more is a (samples, channels) array passed as-is
SCAN_BLOCK = 1 << 20  # frames per block when a file is read through in pieces
#: The bytes a sample of each uncompressed subtype takes, to size the frames a file is read
#: in (``frame_bytes``) and the ones an output will take (``audio_bytes``). The 1-byte ones
#: (8-bit, mu-law, A-law) were missing: a Wave64 of theirs was read past its audio.
SUBTYPE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
                 "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
#: The subtypes that hold samples past full scale (1.0); every other one clips them.
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


@dataclass(frozen=True)
class Audio:
    """Samples ``(channels, samples)`` float32 plus the rate, the source subtype, its BWF
    ``bext`` chunk (``wavchunks.broadcast_info``) and its speaker layout
    (``wavchunks.channel_map``), which outputs carry over."""

    samples: np.ndarray
    sample_rate: int
    subtype: str = "FLOAT"
    broadcast: bytes | None = None
    channel_map: tuple[int, ...] | None = None

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def validate_samples(samples: np.ndarray, what: str = "audio") -> np.ndarray:
    """Return ``samples`` as float32 ``(channels, samples)`` or raise ``AudioError``.

    Non-finite samples are an error rather than something silently zeroed: a NaN in a
    session file means something upstream is broken and the user must know.
    """
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise AudioError(f"{what}: expected (channels, samples), got shape {array.shape}")
    if array.shape[0] == 0:
        raise AudioError(f"{what}: has no channels")
    if array.shape[0] > MAX_CHANNELS:
        raise AudioError(f"{what}: {array.shape[0]} channels of {array.shape[1]} samples; "
                         f"expected (channels, samples) with at most {MAX_CHANNELS} channels "
                         "(transposed?)")
    if array.shape[1] == 0:
        raise AudioError(f"{what}: is empty (zero samples)")
    if not np.issubdtype(array.dtype, np.number):
        raise AudioError(f"{what}: samples are not numeric")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise AudioError(f"{what}: samples are complex; pass real audio")
    if np.issubdtype(array.dtype, np.integer):  # full scale is 1.0: 16-bit's 1 read as 0 dBFS
        raise AudioError(f"{what}: samples are {array.dtype} integers; pass floating-point "
                         "audio with full scale at 1.0 (divide 16-bit samples by 32768)")
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - finite.sum())
        raise AudioError(f"{what}: contains {bad} NaN/inf samples")
    return array


def validate_rate(sample_rate: int, what: str = "audio") -> int:
    """Return ``sample_rate`` or raise ``AudioError`` when no snare track can have it
    (``SAMPLE_RATE_RANGE``): a header claiming 100 Hz is a broken file, not a quiet one."""
    low, high = SAMPLE_RATE_RANGE
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise AudioError(f"{what}: sample rate must be a number of Hz, not {sample_rate!r}")
    if not low <= sample_rate <= high:
        raise AudioError(f"{what}: sample rate {sample_rate} Hz is outside {low}-{high} Hz")
    if sample_rate != int(sample_rate):
        raise AudioError(f"{what}: sample rate {sample_rate} Hz is not a whole number of Hz")
    return int(sample_rate)


def read_audio(path: str | os.PathLike) -> Audio:
    """Read a sound file into an ``Audio``; raise ``AudioError`` with one clear line."""
    path = Path(path)
    with open_track(path) as handle:
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(f"{path}: not a readable audio file ({sf_reason(exc)})") from None
        require_whole(data.shape[0], handle)
        # channels in rows of their own: reduced along time, the transposed view of the
        # interleaved frames ran ~20x slower (a 10-minute stereo gate took 4 s, not 0.4)
        samples = np.ascontiguousarray(data.T)
        return Audio(validate_samples(samples, str(path)), handle.samplerate, handle.subtype,
                     broadcast_info(handle), channel_map(handle))


def require_file(path: Path) -> Path:
    """``path``, or an error saying whether it is missing or a folder."""
    if not path.is_file():
        raise AudioError(f"{path}: is a folder, not an audio file" if path.is_dir()
                         else f"{path}: no such file")
    return path


def sf_name(path: str | os.PathLike) -> str | bytes:
    """The name to give soundfile for ``path``. On POSIX a file name is bytes, and one
    that is not UTF-8 (a Latin-1 name from an old drive or a zip) reaches Python with
    surrogates, which soundfile's strict UTF-8 encoding refused: a good file was reported
    unreadable, and such an output name ended in a traceback. Windows names are text."""
    return os.fsencode(path) if os.name == "posix" else os.fspath(path)


def sf_reason(exc: Exception) -> str:
    """What soundfile's error says went wrong, on one line, without its "Error opening
    b'/the/path': " prefix: the path is named by the caller, and given to soundfile as
    bytes (``sf_name``) it repeated it in bytes form."""
    text = getattr(exc, "error_string", None) or str(exc)
    return next(iter(text.splitlines()), type(exc).__name__)


def unwritable(path: str | os.PathLike, exc: Exception, left: int) -> AudioError:
    """libsndfile's failure to write as one line naming the output file, absolute (an
    output beside the input was named by its folder as typed: "."): it is a RuntimeError,
    not the OSError the commands report, so it ended in a traceback. Its "System error."
    hides the system's reason, so a full disk is named only when the folder's free space
    is below the ``left`` bytes the write still had to go; a guess after every failure
    sent users with room to spare looking for it (a file-size limit, an I/O error)."""
    path = Path(path).absolute()
    message = f"{path}: could not write the output ({sf_reason(exc)})"
    try:
        full = shutil.disk_usage(path.parent).free < left
    except OSError:  # the folder itself is gone: nothing to say of its disk
        full = False
    return AudioError(f"{message}; no space left on the device" if full else message)


def open_track(src: Path) -> sf.SoundFile:
    """An open handle on ``src``, refused if it is missing, unreadable, empty (told from
    a recording never finalised by ``empty_message``) or at an odd rate: what
    ``read_audio`` reads whole and the streaming path block by block. Its ``frames`` are
    those its header counts (``open_counted``), so every read stops there."""
    require_file(src)
    try:
        handle = open_counted(src)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{src}: not a readable audio file ({sf_reason(exc)})") from None
    try:
        if handle.frames <= 0 or handle.channels <= 0:
            raise AudioError(empty_message(src))
        if handle.channels > MAX_CHANNELS:
            raise AudioError(f"{src}: has {handle.channels} channels; debleed handles at "
                             f"most {MAX_CHANNELS}")
        validate_rate(handle.samplerate, str(src))
        missing = cut_short(handle)
        if missing is not None:
            raise AudioError(f"{src}: damaged audio file (cut short: {missing}); "
                             "export it again")
    except AudioError:
        handle.close()
        raise
    warn_uncounted(src, handle)
    return handle


def open_counted(src: str | os.PathLike) -> sf.SoundFile:
    """An open handle on ``src`` whose ``frames`` are those its header counts
    (``count_wave64``), with none of ``open_track``'s checks: for the readers that take a
    file's length from its header or read a part of it (a REAPER item's slice of its
    source, a session take's length). Opened with soundfile alone, a Wave64's chunk after
    its audio was read as audio there; soundfile's errors are the caller's to word."""
    handle = sf.SoundFile(sf_name(src))
    try:
        count_wave64(Path(src), handle)
    except BaseException:
        handle.close()
        raise
    return handle


def frame_bytes(handle: sf.SoundFile) -> int:
    """The bytes one frame of ``handle`` takes in the file, or 0 for a subtype whose
    frames have no fixed size (compressed: FLAC, ADPCM, GSM, MP3; not in ``SUBTYPE_BYTES``)."""
    return handle.channels * SUBTYPE_BYTES.get(handle.subtype, 0)


def count_wave64(src: Path, handle: sf.SoundFile) -> None:
    """Make ``handle``, open on ``src``, read no more frames than a Wave64's data chunk
    counts (``wavchunks.wave64_audio_bytes``). libsndfile reads a Wave64 to the end of
    the file, so a chunk a DAW writes after the audio (``list``, ``levl``, ``bext``) was
    read as noise at the end of the take, and the output came out longer than it.
    soundfile's reads and blocks stop at ``frames`` (its own count of the frames there,
    which it updates itself after writes), so this one count caps every reader; a header
    counting more than is there leaves libsndfile's count."""
    size = frame_bytes(handle)
    if handle.format != "W64" or not size:
        return
    counted = wave64_audio_bytes(src)
    if counted is not None and counted // size < handle.frames:
        handle._info.frames = counted // size


def warn_uncounted(src: Path, handle: sf.SoundFile) -> None:
    """Warn, once per file, where ``src``, a WAV, an AIFF/AIFF-C or a Wave64, holds audio
    past what its header counts (``wavchunks.uncounted_audio_bytes``): it is read as its
    header says, as a DAW reads it, so the output lines up with the item there, but the
    take's tail was dropped from the output without a word."""
    size = frame_bytes(handle)
    if not size or handle.format not in ("WAV", "WAVEX", "RF64", "AIFF", "W64"):
        return
    left_out = uncounted_audio_bytes(src) // size
    if left_out:
        warnings.warn(f"{src}: its header counts {handle.frames / handle.samplerate:.3f} s, but "
                      f"{left_out / handle.samplerate:.3f} s more audio follow it uncounted (a "
                      "recording whose header was last updated before it stopped); only the "
                      "counted audio is read, as a DAW reads it: to keep the rest, "
                      f"{header_repair(src)}")


def empty_message(src: Path) -> str:
    """Why ``src`` reads as no samples. A WAV whose recorder crashed before finalising it
    (``unfinished_audio_bytes``) holds its audio after a header counting none: called
    empty, the user took the take for lost, when a repaired header reads it whole."""
    after = unfinished_audio_bytes(src)
    if after == 0:
        return f"{src}: is empty (zero samples)"
    return (f"{src}: its header counts no samples though {after} bytes follow the data "
            "chunk's header (a recording never finalised); export it again, or "
            f"{header_repair(src)}")


def header_repair(src: Path) -> str:
    """How to make a WAV's header count all its audio, for the messages of one that counts
    less (``warn_uncounted``) or none (``empty_message``)."""
    return f"repair the header (e.g. sox --ignore-length {shlex.quote(src.name)} repaired.wav)"


#: libsndfile's log lines for a file that holds less than its header counts: a WAV's or
#: AIFF's sound data chunk, a Wave64's container (bytes), an RF64's ds64 count (frames).
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND|riff)\s*:\s*(\d+)\s*\(should be (\d+)\)",
                          re.MULTILINE)
_SHORT_DS64 = re.compile(r"frame count (\d+) does not match value from 'ds64' chunk of (\d+)")
#: A size field of all ones is a streaming writer's "unknown", not a count.
_UNKNOWN_SIZE = 0xFFFFFFFF


def cut_short(handle: sf.SoundFile) -> str | None:
    """What is missing when the file holds less than its header counts, else None.

    libsndfile reads a WAV or AIFF cut short (a half-finished copy or download) as the
    frames that are there and only logs the mismatch, so ``frames`` already counts what
    decodes and ``require_whole`` cannot see it. Accepted and read whole: a size of
    0xFFFFFFFF (a streaming writer's "unknown": read to the end of the file) and bytes
    missing after audio all there (a WAV's or AIFF's pad byte after audio of odd size; a
    Wave64's padding to a multiple of 8 bytes or a chunk after its audio, cut short:
    ``audio_all_there``). A header counting less than is there (a recorder that updates
    its sizes every few seconds and crashed before the last update) is accepted too, but
    reads only the audio it counts, as a DAW reads it; ``open_track`` warns how much is
    left out (``warn_uncounted``). One counting none reads as empty, which ``open_track``
    refuses, naming the bytes that follow (``empty_message``)."""
    log = handle.extra_info
    chunk = _SHORT_CHUNK.search(log)
    if (chunk and int(chunk[2]) < int(chunk[1]) != _UNKNOWN_SIZE
            and not audio_all_there(handle)):
        return f"its header counts {chunk[1]} bytes, {chunk[2]} are there"
    ds64 = _SHORT_DS64.search(log)
    if ds64 and int(ds64[1]) < int(ds64[2]):
        return f"its header counts {ds64[2]} frames, {ds64[1]} are there"
    return None


def audio_all_there(handle: sf.SoundFile) -> bool:
    """Whether the bytes a file's header counts beyond its end are none of its audio: the
    audio its chunk counts is all there (``wavchunks.audio_end``), and what is missing is
    a WAV's or AIFF's pad byte after audio of odd size or, a Wave64's header counting the
    whole file, its padding to a multiple of 8 or a chunk after the audio, cut short. A
    byte missing was once taken for a pad byte whatever the file: a 16-bit file (no pad)
    or a Wave64 as libsndfile writes it (unpadded) a byte short, or a 24-bit one short of
    its pad and a byte of audio, lost its last frame without a word. A Wave64 cut inside
    its list chunk, more than its padding short, was refused; a WAV cut so was read."""
    path = os.fsdecode(handle.name)
    end = audio_end(path)
    return end is not None and end <= os.path.getsize(path)


@dataclass(frozen=True)
class TrackLevels:
    """What one pass over a file learns of its level, per channel: ``offset``, its DC
    offset (``dc_offset``: the mean, where it is one), and ``peak``, its peak about that
    offset (the DC is removed before the model, so it is no part of the level the model
    sees)."""

    peak: np.ndarray
    offset: np.ndarray


def scan(handle: sf.SoundFile) -> TrackLevels:
    """The levels of the whole file, checking every sample is finite and every frame the
    header counts decodes. The peak about the mean comes from each channel's extremes, so
    one pass gives both."""
    handle.seek(0)
    high = np.full(handle.channels, -np.inf)
    low = np.full(handle.channels, np.inf)
    total = np.zeros(handle.channels)
    decoded = 0
    try:
        for block in handle.blocks(blocksize=SCAN_BLOCK, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise AudioError(f"{os.fsdecode(handle.name)}: contains NaN/inf samples")
            high = np.maximum(high, np.max(block, axis=0))
            low = np.minimum(low, np.min(block, axis=0))
            total += np.sum(block, axis=0, dtype=np.float64)
            decoded += block.shape[0]
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{os.fsdecode(handle.name)}: damaged audio file "
                         f"({sf_reason(exc)})") from None
    require_whole(decoded, handle)
    mean = total / decoded
    offset = dc_offset(mean, np.maximum(high - mean, mean - low))
    return TrackLevels(np.maximum(high - offset, offset - low), offset)


def dc_offset(mean: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Each channel's ``mean`` where it is a DC offset (above ``OFFSET_FLOOR_DB`` under its
    ``peak`` about it), else 0: what the engine and the gate's detector remove."""
    return np.where(np.abs(mean) > peak * 10 ** (OFFSET_FLOOR_DB / 20), mean, 0.0)


def dc_offset_of(samples: np.ndarray) -> np.ndarray:
    """``dc_offset`` of audio in memory, per channel along the last axis (kept, size 1), in
    float32: the peak about the mean from the extremes, as ``scan`` finds it in a file."""
    mean = np.mean(samples, axis=-1, keepdims=True, dtype=np.float64)
    high = np.max(samples, axis=-1, keepdims=True)
    low = np.min(samples, axis=-1, keepdims=True)
    return dc_offset(mean, np.maximum(high - mean, mean - low)).astype(np.float32)


def require_whole(decoded: int, handle: sf.SoundFile) -> None:
    """Refuse a file that decodes to fewer frames than its header counts (a FLAC or MP3
    cut short): its output would not line up with the item REAPER shows for it."""
    if decoded != handle.frames:
        raise AudioError(f"{os.fsdecode(handle.name)}: damaged audio file (its header counts "
                         f"{handle.frames} frames, {decoded} decode); export it again")


def check_track(path: Path, need_sound: bool = True) -> int:
    """Refuse ``path`` for what processing it would refuse (unreadable, empty, an odd rate,
    NaN/inf, and with ``need_sound`` silence) without writing anything: a batch checks
    every input this way before its first output, so a bad last file leaves no outputs.
    Returns the sample rate, for the checks that depend on it."""
    with open_track(path) as handle:
        levels = scan(handle)
        rate = int(handle.samplerate)
    if need_sound:
        require_sound(levels, path)
    return rate


def require_sound(levels: TrackLevels, path: str | os.PathLike) -> None:
    """An error when the track is silent about its DC offset: it has nothing to denoise,
    and levelling it would amplify nothing by infinity."""
    if float(levels.peak.max()) <= SILENT_PEAK:
        raise SilentAudioError(f"{path}: {silence_message('', np.abs(levels.offset))}")


def require_key_sound(levels: TrackLevels, key: sf.SoundFile, frames: int,
                      path: str | os.PathLike, track: str | os.PathLike) -> None:
    """An error when a gate's sidechain has no sample above silence over the ``frames`` of
    ``track`` it keys (the detector reads no further): an empty trigger export, or one
    whose hits all lie past the track's end, keys no hit, so the gate stays shut and the
    whole take came out silent, with exit 0. ``levels``, the key's scan, tells a key silent
    throughout (DC and all: ``offset`` plus the peak about it bounds each channel's largest
    sample, as the detector reads a key); a key longer than the track is read on up to its
    first sample above silence."""
    anywhere = float(np.max(np.abs(levels.offset) + levels.peak)) > SILENT_PEAK
    if anywhere and (key.frames <= frames or _sounds_before(key, frames)):
        return
    over = (f" over the first {frames / key.samplerate:.3f} s, the length of {track} (its "
            "sound comes later)") if anywhere else ""
    raise AudioError(f"{path}: the sidechain is silent{over}: it would shut the gate over the "
                     "whole take; key it from a track that plays the hits")


def _sounds_before(handle: sf.SoundFile, frames: int) -> bool:
    """Whether any of the first ``frames`` samples of ``handle`` is above silence; reading
    stops at the block that holds one."""
    handle.seek(0)
    return any(float(np.abs(block).max()) > SILENT_PEAK for block in
               handle.blocks(blocksize=SCAN_BLOCK, frames=min(frames, handle.frames),
                             dtype="float32", always_2d=True))


def check_sidechain(path: Path, tracks: tuple[Path, ...]) -> None:
    """Refuse a gate's sidechain as ``open_sidechain`` refuses it for each of ``tracks`` it
    keys (unreadable, NaN/inf, at another rate, silent over the track's length) without
    writing anything: a batch checks it before its first output. The key is scanned once."""
    from .gate import require_same_rate

    with open_track(path) as key:
        levels = scan(key)
        for track in tracks:
            with open_track(track) as handle:
                require_same_rate(path, key.samplerate, track, handle.samplerate)
                require_key_sound(levels, key, handle.frames, path, track)


def silence_message(what: str, raw_peaks: np.ndarray | None = None) -> str:
    """Why there is nothing to denoise: silence, or (``raw_peaks``, the peaks with the DC
    offset, above silence) nothing but a constant."""
    constant = raw_peaks is not None and float(np.max(raw_peaks)) > SILENT_PEAK
    return " ".join(filter(None, (what, "holds nothing but a DC offset (a constant)" if constant
                                  else "is silent"))) + ": nothing to denoise"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def ensure_not_input(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...]) -> Path:
    """Return ``path`` or raise if it is one of ``inputs``: outputs never replace inputs."""
    path = Path(path)
    for original in inputs:
        if _same_file(path, Path(original)) or path.resolve() == Path(original).resolve():
            raise AudioError(f"{path}: refusing to overwrite an input file")
    return path


def audio_bytes(frames: int, channels: int, subtype: str) -> int:
    """The bytes of ``frames`` frames of ``subtype`` audio (an unknown subtype counts 8)."""
    return frames * channels * SUBTYPE_BYTES.get(subtype, 8)


def wav_container(frames: int, channels: int, subtype: str = "FLOAT",
                  extensible: bool = False, broadcast: bytes | None = None) -> str:
    """``"RF64"`` for audio a RIFF header cannot count (its ``fmt `` is always extensible),
    else ``"WAVEX"`` (WAVE_FORMAT_EXTENSIBLE) for a speaker layout or more than two channels,
    as Microsoft asks of those, else the plain ``"WAV"`` every reader takes. The RIFF's
    count includes the ``bext`` chunk written for ``broadcast`` (up to 10 KiB, beyond the
    room ``WAV_LIMIT_BYTES`` leaves for libsndfile's own chunks): uncounted, audio just
    under the limit made a file over 4 GiB whose size field wrapped."""
    size = audio_bytes(frames, channels, subtype)
    if broadcast is not None:
        size += broadcast_chunk_bytes(broadcast)
    if size > WAV_LIMIT_BYTES:
        return "RF64"
    return "WAVEX" if extensible or channels > 2 else "WAV"


@dataclass
class WavOutput:
    """An open output's ``write``, keeping the peak of what an integer ``subtype`` is given:
    it clips samples past full scale, silently, so ``open_wav_writer`` reports them once
    the file is written. A block's peak is two reductions, no copy."""

    handle: sf.SoundFile
    subtype: str
    peak: float = 0.0

    def write(self, frames: np.ndarray) -> None:
        """Write ``frames`` (samples, channels), as ``sf.SoundFile.write``."""
        if (self.subtype not in FLOAT_SUBTYPES and frames.size
                and np.issubdtype(frames.dtype, np.floating)):  # integers are not scaled
            self.peak = max(self.peak, float(np.max(frames)), -float(np.min(frames)))
        self.handle.write(frames)


@contextmanager
def open_wav_writer(path: Path, sample_rate: int, channels: int, frames: int,
                    subtype: str = "FLOAT", broadcast: bytes | None = None,
                    layout: tuple[int, ...] | None = None) -> Iterator[WavOutput]:
    """A WAV (RF64 past 4 GiB) open for writing ``frames`` frames, that becomes ``path``
    when the block ends (``atomic_output``), with the input's BWF ``bext`` chunk and
    speaker ``layout`` (``wavchunks.channel_map``) if it had them, and without a
    timestamped PEAK chunk: the write time would make the same samples give other bytes on
    every run (datasets and outputs must be reproducible). RF64 gets the chunk anyway, with
    its time zeroed once closed. The layout's channel mask is written once closed too, as
    libsndfile refuses one naming fewer speakers than there are channels. An integer
    ``subtype`` clips samples past full scale: a warning gives the overshoot in dB, once
    for the whole file however many blocks were written (the commands write float32,
    which keeps them; a library caller asking for PCM gets this). Warnings name ``path``,
    never the hidden temporary file that is gone when they are read."""
    container = wav_container(frames, channels, subtype, extensible=layout is not None,
                              broadcast=broadcast)
    mask = None if layout is None else channel_mask(layout)
    with atomic_output(path, AUDIO_SUFFIX) as tmp:
        try:
            with sf.SoundFile(sf_name(tmp), "w", int(sample_rate), channels, subtype,
                              format=container) as handle:
                omit_peak_chunk(handle)
                if broadcast is not None and not set_broadcast_info(handle, broadcast):
                    warnings.warn(f"{path}: the input's bext chunk (BWF time reference) was "
                                  "refused by libsndfile and is left out", stacklevel=3)
                output = WavOutput(handle, subtype)
                yield output
        except sf.LibsndfileError as exc:  # the body's reads raise AudioError, never this
            left = audio_bytes(frames, channels, subtype) - tmp.stat().st_size
            raise unwritable(path, exc, left) from None
        if container == "RF64":
            zero_peak_time(tmp)
        if mask is not None:
            set_channel_mask(tmp, mask)
    if layout is not None and mask is None:
        warnings.warn(f"{path}: the input's channel layout {layout} (libsndfile's speaker "
                      "ids) has no WAV channel mask, which names speakers in one fixed "
                      f"order; the default for {channels} channels is written", stacklevel=3)
    if output.peak > 1.0:
        warnings.warn(f"{path}: the audio peaks {20 * np.log10(output.peak):.3g} dB over full "
                      f"scale, which {subtype} cannot hold: those samples are clipped (scale "
                      "it under 1.0, or write FLOAT)", stacklevel=3)


def existing_ancestor(path: str | os.PathLike) -> Path:
    """``path`` itself if it exists, else its nearest parent that does."""
    path = Path(path).absolute()
    return next(folder for folder in (path, *path.parents) if folder.exists())


def check_output_folder(folder: str | os.PathLike) -> None:
    """Raise ``OSError`` now when ``folder`` can be neither made nor written, so a command
    that writes only at the end of long work (the benchmark) fails before that work."""
    existing = existing_ancestor(folder)
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        code = errno.EROFS if on_read_only_file_system(existing) else errno.EACCES
        raise OSError(code, os.strerror(code), str(existing))  # EACCES: a PermissionError


def on_read_only_file_system(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only. Why: ``os.access`` says only
    that it cannot be written, and "Permission denied" sent the user to the folder's
    permissions, which no ``chmod`` fixes there. Windows has no ``statvfs``: False."""
    statvfs = getattr(os, "statvfs", None)
    try:
        return statvfs is not None and bool(statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def write_audio(
    path: str | os.PathLike,
    samples: np.ndarray,
    sample_rate: int,
    subtype: str = "FLOAT",
    protect: tuple[str | os.PathLike, ...] = (),
    broadcast: bytes | None = None,
    layout: tuple[int, ...] | None = None,
) -> Path:
    """Write ``(channels, samples)`` audio atomically as WAV (float32 by default; RF64
    beyond 4 GiB), with ``broadcast`` as its BWF ``bext`` chunk and ``layout`` as its
    channel mask (the input's ``Audio.broadcast`` and ``Audio.channel_map``).

    ``protect`` lists input files that must never be overwritten: writing over one is an
    error, not a silent data loss. An integer ``subtype`` (``"PCM_24"``) clips samples past
    full scale, with a warning (``open_wav_writer``).
    """
    path = ensure_not_input(path, protect)
    data = validate_samples(samples, str(path))
    with open_wav_writer(path, sample_rate, data.shape[0], data.shape[1], subtype,
                         broadcast, layout) as handle:
        handle.write(data.T)
    return path


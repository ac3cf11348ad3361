"""How outputs land on disk: RF64 past RIFF's 4 GiB (long tracks are not cut short), and
with the permissions the umask gives."""

from __future__ import annotations

import os
import re
import shlex
import stat
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from denoiser import audio, outfiles, wavchunks
from denoiser.audio import open_wav_writer, read_audio, wav_container, write_audio
from denoiser.checkpoint import save_checkpoint
from denoiser.engine import Denoiser
from denoiser.errors import AudioError
from denoiser.models import build_model
from training.errors import DatasetError
from training.manifest import staged_output


def test_the_container_follows_the_size():
    hour = 3600 * 48_000
    assert wav_container(3 * hour, 2) == "WAV"              # 4.15 GB: under 2**32 bytes
    assert wav_container(int(3.2 * hour), 2) == "RF64"      # 4.42 GB
    assert wav_container(int(3.2 * hour), 2, "PCM_16") == "WAV"
    assert wav_container(9 * hour, 1, "PCM_24") == "RF64"   # 4.67 GB
    assert wav_container(10 * 60 * 96_000, 8) == "WAVEX"  # over two channels: extensible
    assert wav_container(48_000, 2, extensible=True) == "WAVEX"
    assert wav_container(48_000, 2) == "WAV"


def test_a_carried_bext_counts_toward_the_riff_size(tmp_path):
    """A RIFF counts its bytes in 32 bits. A Broadcast WAV's ``bext`` (up to 10 KiB with a
    long coding history) was left out of the count: audio just under the limit made a
    plain WAV past 4 GiB, whose size field wrapped. Every RIFF chosen now counts itself,
    its header measured as written."""
    history = b"A=PCM,F=48000,W=24,T=pass %04d\r\n"
    info = bytearray(608) + b"".join(history % n for n in range(290))  # 9 KB of history
    struct.pack_into("=I", info, 604, len(info) - 608)  # SF_BROADCAST_INFO's history size
    written = write_audio(tmp_path / "a.wav", np.zeros((1, 100)), 48_000, broadcast=bytes(info))
    header = written.stat().st_size - 400  # every byte but the audio's: over 9 KB
    frames = np.arange(outfiles.WAV_LIMIT_BYTES // 4 - 3000, outfiles.WAV_LIMIT_BYTES // 4 + 1)
    riff = 4 * frames + header - 8  # what a RIFF's size field would have to hold
    plain = np.array([wav_container(int(n), 1, broadcast=bytes(info)) == "WAV" for n in frames])
    assert wav_container(int(frames[-1]), 1) == "WAV" and riff[-1] > 2**32 - 1
    assert plain.any() and riff[plain].max() <= 2**32 - 1
    assert riff[~plain].min() > 2**32 - 8192  # RF64 only within a few KiB of the limit


def test_past_the_limit_the_files_are_rf64_and_read_back_whole(tmp_path, monkeypatch, rng):
    """The limit lowered to a few bytes stands in for 4 GiB: both writers (whole buffers and
    the streaming denoiser) switch to RF64, and every sample reads back."""
    samples = (0.1 * rng.standard_normal((2, 9_000))).astype(np.float32)
    samples -= samples.mean(axis=1, keepdims=True)  # the engine would remove an offset
    small = write_audio(tmp_path / "small.wav", samples, 48_000)
    monkeypatch.setattr(audio, "WAV_LIMIT_BYTES", 1_000)
    large = write_audio(tmp_path / "large.wav", samples, 48_000)
    assert small.read_bytes()[:4] == b"RIFF" and large.read_bytes()[:4] == b"RF64"
    np.testing.assert_array_equal(sf.read(large, dtype="float32")[0].T, samples)
    denoiser = Denoiser(build_model("identity"), "cpu")
    streamed = denoiser.denoise_file(small, tmp_path / "streamed.wav")
    assert streamed.read_bytes()[:4] == b"RF64"
    out, rate = sf.read(streamed, dtype="float32", always_2d=True)
    assert rate == 48_000 and out.shape == (9_000, 2)
    np.testing.assert_allclose(out.T, samples, atol=1e-5)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_umask_permissions_not_owner_only(tmp_path, rng, umask, mode):
    """Outputs are renamed into place from a ``mkstemp`` file, which is owner-only (600)
    whatever the umask: a shared studio folder got files the others could not read."""
    old = os.umask(umask)
    try:
        written = [audio.write_audio(tmp_path / "a.wav", rng.normal(0, 0.1, (1, 100)), 48_000),
                   outfiles.write_text_atomic(tmp_path / "a.json", "{}"),
                   save_checkpoint(tmp_path / "m.pt", build_model("identity"))]
        with staged_output(tmp_path / "dataset") as folder:
            (folder / "x").write_text("x")
    finally:
        os.umask(old)
    assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [mode] * 3
    assert stat.S_IMODE((tmp_path / "dataset").stat().st_mode) == mode | (0o111 & ~umask)


def test_a_name_as_long_as_the_file_system_allows_can_be_written(tmp_path, rng):
    """The temporary name adds a random part and a suffix: it used to pass 255 bytes when
    the output's own name was 238 or more."""
    long_name = "b" * 236 + ".gate.wav"  # 245 bytes
    path = write_audio(tmp_path / long_name, rng.normal(0, 0.1, (1, 100)), 48_000)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [long_name]
    with staged_output(tmp_path / ("d" * 250)) as folder:
        (folder / "x").write_text("x")
    assert (tmp_path / ("d" * 250) / "x").is_file()


def test_a_dataset_goes_into_the_empty_current_folder(tmp_path, monkeypatch):
    """``--out .`` rendered every clip, then failed ("Invalid argument": "." cannot be
    removed or renamed over); a file as --out is named as one."""
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with staged_output(Path(".")) as folder:
        (folder / "x").write_text("x")
    assert [p.name for p in (tmp_path / "here").iterdir()] == ["x"]
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(DatasetError, match="is a file"):
        with staged_output(tmp_path / "afile"):
            pass


def test_streaming_progress_moves_within_a_block(tmp_path, rng):
    """A 45-s file is one 60-s block; progress came once, at its end (the bar sat at 0 %
    until the file was done). It now follows the model's 20-s chunks, in order, to 1."""
    src = write_audio(tmp_path / "long.wav", 0.1 * rng.standard_normal((1, 45 * 48_000)),
                      48_000)
    seen: list[float] = []
    Denoiser(build_model("identity"), "cpu").denoise_file(src, tmp_path / "out.wav",
                                                          progress=seen.append)
    assert len([f for f in seen if 0 < f < 1]) >= 2 and seen[-1] == pytest.approx(1.0)
    assert seen == sorted(seen)


@pytest.mark.parametrize("container", ["WAV", "W64", "AIFF", "RF64"])
def test_a_file_cut_short_is_refused(tmp_path, rng, container):
    """libsndfile reads a half-copied WAV or AIFF as the half that is there and only logs
    the shortfall: the output came out half as long as the take, with no error."""
    whole = tmp_path / "whole.audio"
    sf.write(whole, 0.1 * rng.standard_normal((48_000, 2)), 48_000, format=container,
             subtype="PCM_16")
    assert audio.read_audio(whole).samples.shape == (2, 48_000)
    cut = tmp_path / "cut.audio"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(audio.AudioError, match=r"cut\.audio: damaged audio file \(cut short: "
                                               r"its header counts \d+ (bytes|frames)"):
        audio.read_audio(cut)


@pytest.mark.parametrize("container", ["WAV", "RF64"])
def test_a_recording_never_finalised_is_not_called_empty(tmp_path, rng, container):
    """A recorder or DAW that crashed before finalising a WAV leaves its sizes 0 (an RF64's
    in its ds64) with the audio after them: libsndfile reads no frames, and the take was
    reported "is empty (zero samples)", as if lost. The error names the bytes there and
    the repair; a truly empty WAV, and one with a chunk after its empty audio, stay empty."""
    path = tmp_path / "take 1.wav"
    sf.write(path, 0.1 * rng.standard_normal(4_800), 48_000, subtype="PCM_24",
             format=container)
    data = bytearray(path.read_bytes())
    chunk = data.index(b"data")
    assert len(data) - chunk - 8 == 3 * 4_800
    if container == "RF64":
        struct.pack_into("<QQQ", data, data.index(b"ds64") + 8, 0, 0, 0)
    else:
        struct.pack_into("<I", data, 4, 0)
        struct.pack_into("<I", data, chunk + 4, 0)
    path.write_bytes(data)
    with pytest.raises(AudioError) as caught:
        read_audio(path)
    assert str(caught.value) == (
        f"{path}: its header counts no samples though 14400 bytes follow the data chunk's "
        "header (a recording never finalised); export it again, or repair the header "
        "(e.g. sox --ignore-length 'take 1.wav' repaired.wav)")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 48_000, subtype="PCM_24")
    with pytest.raises(AudioError, match=r"empty\.wav: is empty \(zero samples\)$"):
        read_audio(empty)
    finalised = empty.read_bytes()
    tagged = bytearray(finalised + b"LIST\x04\x00\x00\x00INFO")  # counted by RIFF
    struct.pack_into("<I", tagged, 4, len(tagged) - 8)
    empty.write_bytes(tagged)
    with pytest.raises(AudioError, match=r"empty\.wav: is empty \(zero samples\)$"):
        read_audio(empty)
    # a tag appended past what RIFF counts (an ID3 tagger): the header was finalised
    empty.write_bytes(finalised + b"ID3\x04" + bytes(200))
    with pytest.raises(AudioError, match=r"empty\.wav: is empty \(zero samples\)$"):
        read_audio(empty)


def test_a_header_counting_less_than_the_file_holds_reads_what_it_counts(tmp_path, rng):
    """What ``cut_short`` says of such headers: 0xFFFFFFFF (a streaming writer's "unknown")
    reads to the end of the file; a smaller count (a recorder that crashed between two
    updates of its sizes) reads the audio it counts, as a DAW does, and the rest not
    (with a warning: ``test_audio_past_what_the_header_counts_is_named_once``)."""
    path = tmp_path / "rec.wav"
    sf.write(path, 0.1 * rng.standard_normal(4_800), 48_000, subtype="PCM_24")
    data = bytearray(path.read_bytes())
    chunk = data.index(b"data")
    for size, frames in ((0xFFFFFFFF, 4_800), (3 * 3_200, 3_200)):
        struct.pack_into("<I", data, 4, 0xFFFFFFFF if size == 0xFFFFFFFF else chunk + size)
        struct.pack_into("<I", data, chunk + 4, size)
        path.write_bytes(data)
        assert read_audio(path).frames == frames


@pytest.mark.parametrize("container", ["WAV", "RF64"])
def test_audio_past_what_the_header_counts_is_named_once(tmp_path, rng, container):
    """A header counting 3200 of the 4800 frames there (a recorder that crashed between two
    updates of its sizes) read the 3200 and dropped the rest without a word: the output was
    a third shorter than the take. It is still read as counted, as a DAW reads it, but a
    warning names the file and the seconds left out, once however often it is opened."""
    path = tmp_path / "take 2.wav"
    sf.write(path, 0.1 * rng.standard_normal(4_800), 48_000, subtype="PCM_24",
             format=container)
    data = bytearray(path.read_bytes())
    chunk = data.index(b"data")
    if container == "RF64":  # its sizes in the ds64: RIFF, data, frames
        struct.pack_into("<QQQ", data, data.index(b"ds64") + 8, chunk + 3 * 3_200,
                         3 * 3_200, 3_200)
    else:
        struct.pack_into("<I", data, 4, chunk + 3 * 3_200)
        struct.pack_into("<I", data, chunk + 4, 3 * 3_200)
    path.write_bytes(data)
    assert_reads_counted_once(path)


def test_audio_read_as_a_chunk_past_the_end_is_still_uncounted_audio(tmp_path):
    """A chunk running past the end of the file is one cut short only where the RIFF size
    counts past the file: past a header counting 3200 of 4800 float frames, samples of
    0.763 read as an id "ABC?" (printable) and a size past the file, and are named as
    left out."""
    path = tmp_path / "float.wav"
    sample = np.frombuffer(b"ABC?", "<f4")[0]
    sf.write(path, np.full(4_800, sample), 48_000, subtype="FLOAT")
    data = bytearray(path.read_bytes())
    chunk = data.index(b"data")
    struct.pack_into("<I", data, 4, chunk + 4 * 3_200)
    struct.pack_into("<I", data, chunk + 4, 4 * 3_200)
    assert data[chunk + 8 + 4 * 3_200:][:8] == b"ABC?ABC?"
    path.write_bytes(data)
    assert_reads_counted_once(path)


def test_what_follows_a_whole_data_chunk_is_no_uncounted_audio(tmp_path, rng):
    """A chunk RIFF counts after the audio (an editor's LIST), an ID3 tag appended past it,
    a missing pad byte and a size of 0xFFFFFFFF ("unknown": read to the end) leave no
    audio out, and warn of none."""
    path = tmp_path / "rec.wav"
    sf.write(path, 0.1 * rng.standard_normal(4_801), 48_000, subtype="PCM_24")
    whole = path.read_bytes()
    chunk = whole.index(b"data")
    listed = bytearray(whole + b"LIST\x04\x00\x00\x00INFO")
    struct.pack_into("<I", listed, 4, len(listed) - 8)
    unknown = bytearray(whole[:-1])
    struct.pack_into("<I", unknown, 4, 0xFFFFFFFF)
    struct.pack_into("<I", unknown, chunk + 4, 0xFFFFFFFF)
    for data in (listed, whole + b"ID3\x04" + bytes(200), whole[:-1], unknown):
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert read_audio(path).frames == 4_801


def aiff_counting(data: bytes, frames: int, frame_bytes: int) -> bytearray:
    """``data``, an AIFF or AIFF-C as libsndfile writes it (its sound data chunk last, no
    offset), with its sizes counting ``frames``: FORM, COMM's frame count, SSND's."""
    counted = bytearray(data)
    ssnd = counted.index(b"SSND")
    struct.pack_into(">I", counted, 4, ssnd + 16 + frames * frame_bytes - 8)
    struct.pack_into(">I", counted, counted.index(b"COMM") + 10, frames)
    struct.pack_into(">I", counted, ssnd + 4, 8 + frames * frame_bytes)
    return counted


@pytest.mark.parametrize(("subtype", "form"), [("PCM_24", b"AIFF"), ("FLOAT", b"AIFC")])
def test_audio_past_what_an_aiff_header_counts_is_named_once(tmp_path, rng, subtype, form):
    """An AIFF or AIFF-C whose sizes count 3200 of its 4800 frames (its recorder crashed
    between two updates) read the 3200 without a word, as WAVs did: the tail of the take
    was gone from the output. The same warning as a WAV's names the seconds left out."""
    path = tmp_path / "take 3.aif"
    sf.write(path, 0.1 * rng.standard_normal(4_800), 48_000, subtype=subtype, format="AIFF")
    data = path.read_bytes()
    assert data[8:12] == form
    frame_bytes = audio.SUBTYPE_BYTES[subtype]
    path.write_bytes(aiff_counting(data, 3_200, frame_bytes))
    assert_reads_counted_once(path)
    # COMM still counting all 4800: libsndfile reads what SSND counts, so the same 3200
    only_ssnd = bytearray(data)
    struct.pack_into(">I", only_ssnd, data.index(b"SSND") + 4, 8 + 3_200 * frame_bytes)
    path.write_bytes(only_ssnd)
    with pytest.warns(UserWarning, match=r"counts 0\.067 s, but 0\.033 s more audio"):
        assert read_audio(path).frames == 3_200


@pytest.mark.parametrize(("container", "subtype"), [("WAV", "PCM_U8"), ("AIFF", "PCM_S8")])
def test_audio_past_what_an_8_bit_header_counts_is_named_once(tmp_path, rng, container,
                                                               subtype):
    """An 8-bit WAV or AIFF whose sizes count 3200 of its 4800 frames read the 3200 without
    a word, its frames (one byte a sample) left unsized: the same warning as a 16-bit
    one's now names the seconds left out. Whole, 4801 frames (a pad byte after them) and a
    chunk after the audio, it warns of nothing."""
    path = tmp_path / "take 8.audio"
    sf.write(path, 0.1 * rng.standard_normal(4_800), 48_000, subtype=subtype,
             format=container)
    data = bytearray(path.read_bytes())
    if container == "AIFF":
        data = aiff_counting(data, 3_200, 1)
    else:
        chunk = data.index(b"data")
        struct.pack_into("<I", data, 4, chunk + 3_200)
        struct.pack_into("<I", data, chunk + 4, 3_200)
    path.write_bytes(data)
    assert_reads_counted_once(path)
    sf.write(path, 0.1 * rng.standard_normal(4_801), 48_000, subtype=subtype,
             format=container)
    frames = sf.info(path).frames  # an 8-bit AIFF's COMM counts its pad byte as a frame
    order = ">" if container == "AIFF" else "<"  # of the sizes
    tag = b"MARK" if container == "AIFF" else b"LIST"
    followed = bytearray(path.read_bytes() + tag + struct.pack(order + "I", 2) + bytes(2))
    struct.pack_into(order + "I", followed, 4, len(followed) - 8)
    path.write_bytes(followed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_audio(path).frames == frames


@pytest.mark.parametrize("subtype", ["PCM_U8", "ULAW"])
def test_8_bit_audio_spelling_a_chunk_id_is_still_uncounted_audio(tmp_path, subtype):
    """8-bit and mu-law samples often spell a chunk id: after a header counting 20000 to
    20479 of a 100 Hz tone's 48000 frames (a recorder's crash at each point), the uncounted
    audio's first four bytes were letters and digits at 172 U8 (12 mu-law) of those 480,
    taken for a chunk cut short, and the rest of the take was dropped without the warning.
    The RIFF size stops at the counted audio, so every one is named, to its last byte."""
    path = tmp_path / "tone.wav"
    sf.write(path, 0.5 * np.sin(2 * np.pi * 100 * np.arange(48_000) / 48_000), 48_000,
             subtype=subtype)
    whole = path.read_bytes()
    chunk = whole.index(b"data")
    spelt = 0
    for counted in range(20_000, 20_480):
        data = bytearray(whole)
        struct.pack_into("<I", data, 4, chunk + counted)
        struct.pack_into("<I", data, chunk + 4, counted)
        path.write_bytes(data)
        end = chunk + 8 + counted + counted % 2  # its pad byte
        spelt += whole[end:end + 4].isalnum()
        assert wavchunks.uncounted_audio_bytes(path) == len(whole) - end
    assert spelt == {"PCM_U8": 172, "ULAW": 12}[subtype]
    with pytest.warns(UserWarning, match=r"counts 0\.427 s, but 0\.573 s more audio"):
        assert read_audio(path).frames == 20_479


def test_what_follows_a_whole_ssnd_chunk_is_no_uncounted_audio(tmp_path, rng):
    """An AIFF chunk after the audio (an ID3 tag's, markers), an ID3 tag appended past what
    FORM counts, the pad byte after an odd-sized SSND or its absence, and a COMM frame
    count under SSND's (libsndfile reads what SSND counts) leave no audio out, and warn
    of none; nor does a well-formed AIFF-C."""
    path = tmp_path / "rec.aiff"
    sf.write(path, 0.1 * rng.standard_normal(4_801), 48_000, subtype="PCM_24", format="AIFF")
    whole = path.read_bytes()
    ssnd = whole.index(b"SSND")
    assert len(whole) == ssnd + 8 + 8 + 3 * 4_801 + 1  # libsndfile counts the pad byte
    odd = bytearray(whole)  # SSND counting its bytes only, the pad byte after it
    struct.pack_into(">I", odd, ssnd + 4, 8 + 3 * 4_801)

    def followed(chunk: bytes) -> bytearray:
        data = bytearray(odd + chunk)
        struct.pack_into(">I", data, 4, len(data) - 8)
        return data

    tagged = followed(b"ID3 \x00\x00\x00\x0bID3\x04" + bytes(7) + b"\x00")
    marked = followed(b"MARK\x00\x00\x00\x02\x00\x00")
    short_comm = bytearray(odd)
    struct.pack_into(">I", short_comm, whole.index(b"COMM") + 10, 3_200)
    for data in (whole, odd, odd[:-1], tagged, marked, odd + b"ID3\x04" + bytes(200),
                 short_comm):
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert read_audio(path).frames == 4_801
    aifc = tmp_path / "rec.aifc"
    sf.write(aifc, 0.1 * rng.standard_normal(4_801), 48_000, subtype="FLOAT", format="AIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_audio(aifc).frames == 4_801


#: The GUID of a Wave64's list chunk, as the file holds it (libsndfile's w64.c).
W64_LIST = bytes.fromhex("7473696c912fcf11a5d628db04c10000")


def wave64_followed(data: bytes, chunk: bytes, counted: bool = True) -> bytearray:
    """``data``, a Wave64 as libsndfile writes it (its data chunk last, not padded), with
    ``chunk`` after the audio at the next multiple of 8, as a DAW writes its ``list`` or
    ``levl`` there; its riff size counting it, unless not ``counted``."""
    followed = bytearray(bytes(data) + bytes(-len(data) % 8) + chunk)
    if counted:
        struct.pack_into("<Q", followed, 16, len(followed))
    return followed


@pytest.mark.parametrize(("subtype", "frames", "noise"),
                         [("PCM_16", 4_800, 28), ("PCM_24", 4_801, 20), ("PCM_U8", 4_800, 56),
                          ("ULAW", 4_801, 63), ("ALAW", 4_800, 56)])
def test_a_chunk_after_a_wave64s_audio_is_not_read_as_audio(tmp_path, rng, subtype, frames,
                                                            noise):
    """libsndfile reads a Wave64's audio to the end of the file, whatever its data chunk
    counts: a 56-byte list chunk after the audio (REAPER and other DAWs write one) read
    as 28 frames of noise at 16 bits (20 at 24, with the padding after an odd-sized data
    chunk; 56 at 8 bits, mu-law and A-law, which were left uncapped), and the output was
    that much longer than the take. The data chunk's count is read, whole, scanned and
    streamed, and a chunk after it, counted by the riff size or not, is no audio left out:
    nothing is warned of."""
    path = tmp_path / "take.w64"
    sf.write(path, 0.1 * rng.standard_normal(frames), 48_000, subtype=subtype, format="W64")
    whole = path.read_bytes()
    written = sf.read(path, dtype="float32", always_2d=True)[0].T  # as the subtype holds them
    chunk = W64_LIST + struct.pack("<Q", 56) + b"INFOISFT" + bytes(24)
    path.write_bytes(wave64_followed(whole, chunk))
    with sf.SoundFile(path) as handle:  # what libsndfile alone makes of it
        assert handle.frames == frames + noise
    twin = write_audio(tmp_path / "twin.wav", written, 48_000)
    denoiser = Denoiser(build_model("identity"), "cpu")
    expected = read_audio(denoiser.denoise_file(twin, tmp_path / "twin out.wav")).samples
    for data in (wave64_followed(whole, chunk), wave64_followed(whole, chunk, counted=False),
                 wave64_followed(whole, b"levl" + bytes(12) + struct.pack("<Q", 24))):
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(read_audio(path).samples, written)
            assert audio.check_track(path) == 48_000  # scan reads the counted frames whole
            out = denoiser.denoise_file(path, tmp_path / "out.wav")
        np.testing.assert_array_equal(read_audio(out).samples, expected)


def test_audio_past_what_a_wave64_header_counts_is_named_once(tmp_path, rng):
    """A Wave64 whose sizes count 3200 of its 4800 frames (a recorder that crashed between
    two updates of its sizes) is read as counted, as a WAV is, now that its count is
    read: the same warning names the seconds left out, once. One whose header was never
    finalised (libsndfile's own leaves its riff size 0, its data chunk counting none) is
    read to its end, as libsndfile reads it, without a word: nothing is left out; a
    finalised empty one stays empty, a chunk after its data chunk or not."""
    path = tmp_path / "take 4.w64"
    sf.write(path, 0.1 * rng.standard_normal(4_800), 48_000, subtype="PCM_24", format="W64")
    data = bytearray(path.read_bytes())
    chunk = data.index(b"data")  # its GUID's first bytes, then a 64-bit size
    assert data[chunk:chunk + 16] == bytes.fromhex("64617461f3acd3118cd100c04f8edb8a")
    struct.pack_into("<Q", data, 16, chunk + 24 + 3 * 3_200)
    struct.pack_into("<Q", data, chunk + 16, 24 + 3 * 3_200)
    path.write_bytes(data)
    assert_reads_counted_once(path)
    struct.pack_into("<Q", data, 16, 0)
    struct.pack_into("<Q", data, chunk + 16, 24)
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_audio(path).frames == 4_800
    empty = tmp_path / "empty.w64"
    sf.write(empty, np.zeros(0), 48_000, subtype="PCM_24", format="W64")
    listed = wave64_followed(empty.read_bytes(), W64_LIST + struct.pack("<Q", 32) + b"INFOISFT")
    for data in (empty.read_bytes(), listed):
        empty.write_bytes(data)
        with pytest.raises(AudioError, match=r"empty\.w64: is empty \(zero samples\)$"):
            read_audio(empty)


@pytest.mark.parametrize(("container", "cut"), [
    ("WAV", 3), ("WAV", 15), ("WAV", 17), ("WAV", 19), ("AIFF", 5), ("AIFF", 18),
    ("W64", 3), ("W64", 20), ("W64", 40), ("W64", 41), ("W64", 48)])
def test_a_file_cut_in_the_chunk_after_its_audio_is_read_whole(tmp_path, rng, container,
                                                               cut):
    """A file cut short inside the chunk after its audio (a DAW's list, an editor's ANNO),
    its header included (15 bytes of a WAV's 20, 40 of a Wave64's 56: its id left), holds
    every sample, and loses nothing a user hears: the cut chunk's bytes were taken for
    audio its header leaves uncounted (a warning of "0.000 s" more, 0.001 s of a Wave64),
    and a Wave64 more than its padding (7 bytes) short of its riff size was refused as
    cut short. Cut inside its id (1 to 3 bytes of a WAV's or AIFF's left, 8 to 15 of a
    Wave64's GUID), it still warned of "0.000 s" more. Each reads whole, warning of
    nothing: the container's size counts past the end of the file."""
    path = tmp_path / "take.audio"
    sf.write(path, 0.1 * rng.standard_normal(481), 48_000, subtype="PCM_16", format=container)
    written = read_audio(path).samples
    if container == "W64":
        data = wave64_followed(path.read_bytes(),
                               W64_LIST + struct.pack("<Q", 56) + b"INFOISFT" + bytes(24))
    else:
        order, tag = (">", b"ANNO") if container == "AIFF" else ("<", b"LIST")
        data = bytearray(path.read_bytes() + tag + struct.pack(order + "I", 12) + bytes(12))
        struct.pack_into(order + "I", data, 4, len(data) - 8)
    path.write_bytes(data[:-cut])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_audio(path).samples, written)
        assert audio.check_track(path) == 48_000


def test_zeros_after_a_wave64s_audio_end_its_chunk_walk(tmp_path, rng):
    """Zeros after a Wave64's audio read as a chunk whose size, 0, is under its own 24-byte
    header: walked over, the walk never moved on and reading the file hung. It stops
    there, and the 64 bytes are audio the header leaves uncounted (32 frames of silence),
    named once. Read in a process of its own, so a hang fails rather than stalls."""
    path = tmp_path / "zeros.w64"
    sf.write(path, 0.1 * rng.standard_normal(4_800), 48_000, subtype="PCM_16", format="W64")
    path.write_bytes(wave64_followed(path.read_bytes(), bytes(64)))
    code = ("import sys, warnings\n"
            "from denoiser.audio import read_audio\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    print(read_audio(sys.argv[1]).frames, *(str(w.message) for w in caught))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"4800 {path}: its header counts 0.100 s, but 0.001 s more "
                                  "audio follow it uncounted")


@pytest.mark.parametrize("missing", [1, 2, 5])
def test_a_wave64_without_its_padding_is_read_whole(tmp_path, rng, missing):
    """A Wave64's data chunk of 4801 24-bit frames is padded with 5 bytes to a multiple of
    8, which some writers count in the riff size and leave out: the file holds every
    sample. Without 2 to 5 of those bytes it was refused as cut short."""
    path = tmp_path / "odd.w64"
    sf.write(path, 0.1 * rng.standard_normal(4_801), 48_000, subtype="PCM_24", format="W64")
    written = read_audio(path).samples
    padded = wave64_followed(path.read_bytes(), b"")
    assert len(padded) == path.stat().st_size + 5
    path.write_bytes(padded[:-missing])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_audio(path).samples, written)


def test_a_wave64_short_of_a_byte_of_its_audio_is_refused(tmp_path, rng):
    """libsndfile's own Wave64 ends with its audio, unpadded: a byte fewer is no missing
    pad but part of the last frame, which was dropped without a word."""
    path = tmp_path / "cut.w64"
    sf.write(path, 0.1 * rng.standard_normal(4_801), 48_000, subtype="PCM_24", format="W64")
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(AudioError, match=r"cut\.w64: damaged audio file \(cut short: its "
                                         r"header counts 14507 bytes, 14506 are there\)"):
        read_audio(path)


def test_a_wav_without_its_pad_byte_is_read_whole(tmp_path, rng):
    """A data chunk of odd size is followed by a pad byte that some writers leave out: the
    file holds every sample and is no cut file."""
    path = tmp_path / "odd.wav"
    sf.write(path, 0.1 * rng.standard_normal(4_801), 48_000, subtype="PCM_24")
    data = path.read_bytes()
    chunk = data.index(b"data")
    size = int.from_bytes(data[chunk + 4:chunk + 8], "little")
    assert size == 3 * 4_801 and len(data) == chunk + 8 + size + 1  # then the pad byte
    path.write_bytes(data[:-1])
    assert audio.read_audio(path).samples.shape == (1, 4_801)


@pytest.mark.parametrize(("subtype", "width"), [("PCM_24", 3), ("PCM_S8", 1)])
def test_an_aiff_without_its_pad_byte_is_read_whole(tmp_path, rng, subtype, width):
    """The same of an AIFF's SSND chunk (its offset and block size, then the samples) of odd
    size: libsndfile counts the pad byte in the chunk's size, so the file without it reads
    one byte short of its header, and holds every sample."""
    path = tmp_path / "odd.aiff"
    sf.write(path, 0.1 * rng.standard_normal(4_801), 48_000, subtype=subtype, format="AIFF")
    samples = audio.read_audio(path).samples[:, :4_801]  # 8-bit: its COMM counts the pad too
    data = path.read_bytes()
    chunk = data.index(b"SSND")
    size = int.from_bytes(data[chunk + 4:chunk + 8], "big")
    assert size == 8 + width * 4_801 + 1 and len(data) == chunk + 8 + size  # the pad last
    path.write_bytes(data[:-1])
    np.testing.assert_array_equal(audio.read_audio(path).samples, samples)


@pytest.mark.parametrize(("container", "subtype", "frames", "cut", "counted", "there"),
                         [("WAV", "PCM_16", 4_800, 1, 9_600, 9_599),
                          ("AIFF", "PCM_16", 4_800, 1, 9_608, 9_607),
                          ("WAV", "PCM_24", 4_801, 2, 14_403, 14_402)])
def test_a_file_short_of_a_byte_of_its_audio_is_refused(tmp_path, rng, container, subtype,
                                                        frames, cut, counted, there):
    """A byte missing was taken for a missing pad byte whether or not the file has one: a
    16-bit file (its audio of even size, no pad) cut by one byte, and a 24-bit one of
    4801 frames cut by its pad and a byte of its audio, lost their last frame without a
    word. Only a pad byte after audio of odd size, all of it there, may be missing."""
    path = tmp_path / "cut.audio"
    sf.write(path, 0.1 * rng.standard_normal(frames), 48_000, subtype=subtype,
             format=container)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(AudioError, match=rf"cut\.audio: damaged audio file \(cut short: its "
                                         rf"header counts {counted} bytes, {there} are there\)"):
        read_audio(path)


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="this libsndfile has no MP3")
def test_a_cut_mp3_is_refused_by_name(tmp_path, rng):
    """An MP3 cut in half decodes fewer frames than its header counts: the error names the
    file, so the user knows which take of a batch to export again."""
    whole = tmp_path / "whole.mp3"
    sf.write(whole, 0.1 * rng.standard_normal(96_000), 48_000, format="MP3")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=rf"^{re.escape(str(cut))}: damaged audio file \(its "
                                         r"header counts 96000 frames, \d+ decode\)"):
        read_audio(cut)


@pytest.mark.skipif(not hasattr(os, "link"), reason="no hard links here")
def test_an_output_that_is_a_hard_link_to_an_input_is_refused(tmp_path):
    """A hard link (a session folder copied with ``cp -l``) is the input under another
    name: its path differs, its file is the input's, so it is refused as the input's own
    path is, and nothing is written."""
    src = write_audio(tmp_path / "take.wav", np.full((1, 480), 0.25, np.float32), 48_000)
    before = src.read_bytes()
    alias = tmp_path / "alias.wav"
    os.link(src, alias)
    with pytest.raises(AudioError, match=r"alias\.wav: refusing to overwrite an input file$"):
        write_audio(alias, np.zeros((1, 480), np.float32), 48_000, protect=(src,))
    assert src.read_bytes() == before and os.path.samefile(src, alias)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias.wav", "take.wav"]


@pytest.mark.parametrize(("rate", "accepted"), [(7_999, False), (8_000, True),
                                               (768_000, True), (768_001, False)])
def test_the_rate_ranges_bounds_are_read_and_past_them_refused(tmp_path, rate, accepted):
    """8 kHz (a telephone-rate stem) and 768 kHz bound the rates a snare track can come at
    and are read as any between; a header's rate past them is a broken file's."""
    path = tmp_path / "take.wav"
    sf.write(path, np.full(480, 0.25, np.float32), rate, subtype="FLOAT")
    if accepted:
        assert read_audio(path).sample_rate == rate
    else:
        with pytest.raises(AudioError, match=rf"take\.wav: sample rate {rate} Hz is outside "
                                             "8000-768000 Hz$"):
            read_audio(path)


def test_an_unreadable_file_is_named_once_as_text(tmp_path):
    """Opened by its bytes (``sf_name``), soundfile's message repeated the path as
    b'/the/path' after the one the error already gave."""
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(AudioError) as caught:
        read_audio(text)
    assert str(caught.value) == f"{text}: not a readable audio file (Format not recognised.)"


def test_read_audio_gives_each_channel_a_row_of_its_own(tmp_path):
    """A transposed view of the interleaved frames made every reduction along time (the
    gate's DC offset, its peaks) about 20 times slower on stereo files."""
    sf.write(tmp_path / "stereo.wav", np.zeros((4800, 2), np.float32), 48000, subtype="FLOAT")
    samples = read_audio(tmp_path / "stereo.wav").samples
    assert samples.shape == (2, 4800) and samples.flags.c_contiguous


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32"])
def test_an_integer_subtype_warns_once_of_the_samples_it_clips(tmp_path, subtype):
    """A PCM file cannot hold a sample past full scale: 1.3 was written as 1.0 without a
    word. Written whole or block by block, the file is named with the overshoot in dB,
    once; float files keep such samples, and PCM under full scale is quiet."""
    tone = np.sin(2 * np.pi * 100 * np.arange(4_800) / 48_000).astype(np.float32)[None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        whole = write_audio(tmp_path / "whole.wav", 1.3 * tone, 48_000, subtype=subtype)
        with open_wav_writer(tmp_path / "blocks.wav", 48_000, 1, 3 * 4_800, subtype) as out:
            for gain in (0.5, 1.3, 1.1):  # two blocks over it, the louder first
                out.write((gain * tone).T)
        write_audio(tmp_path / "quiet.wav", 0.89 * tone, 48_000, subtype=subtype)
        floats = write_audio(tmp_path / "float.wav", 1.3 * tone, 48_000)
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / name}: the audio peaks 2.28 dB over full scale, which {subtype} cannot "
        "hold: those samples are clipped (scale it under 1.0, or write FLOAT)"
        for name in ("whole.wav", "blocks.wav")]
    assert read_audio(whole).samples.max() <= 1.0
    assert read_audio(floats).samples.max() == pytest.approx(1.3)


@pytest.mark.skipif(not hasattr(os, "statvfs"), reason="no statvfs on Windows")
@pytest.mark.parametrize("flags, code", [(0, "EACCES"), (getattr(os, "ST_RDONLY", 1), "EROFS")])
def test_an_unwritable_output_folder_says_why(tmp_path, monkeypatch, flags: int, code: str):
    """A folder on a read-only file system (a mounted image, a write-protected card) was
    reported as "Permission denied", which sent the user to its permissions; it says
    "Read-only file system", naming the folder that exists, and a folder the user may not
    write still says "Permission denied"."""
    import errno
    from types import SimpleNamespace

    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_flag=flags))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OSError) as caught:
        audio.check_output_folder(tmp_path / "new" / "out")
    number = getattr(errno, code)
    assert (caught.value.errno, caught.value.strerror, caught.value.filename) == (
        number, os.strerror(number), str(tmp_path))


def assert_reads_counted_once(path: Path) -> None:
    """Two reads of ``path``, whose header counts 3200 of its 4800 frames at 48 kHz, give the
    3200 and one warning naming the 0.033 s left out, with the repair advice."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        assert read_audio(path).frames == 3_200
        assert read_audio(path).frames == 3_200
    assert [str(w.message) for w in caught] == [
        f"{path}: its header counts 0.067 s, but 0.033 s more audio follow it uncounted (a "
        "recording whose header was last updated before it stopped); only the counted audio "
        "is read, as a DAW reads it: to keep the rest, repair the header (e.g. sox "
        f"--ignore-length {shlex.quote(path.name)} repaired.wav)"]

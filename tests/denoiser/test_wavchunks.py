"""Chunks beside the samples: a BWF input's ``bext`` (its timeline position) and an
extensible input's channel mask (its speaker layout) reach every output made from it, and
RF64 outputs are byte-reproducible despite libsndfile's PEAK."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser import audio
from denoiser.audio import read_audio, write_audio
from denoiser.engine import Denoiser
from denoiser.models import build_model
from denoiser.wavchunks import (broadcast_info, channel_map, channel_mask, set_broadcast_info,
                                set_channel_mask)

# libsndfile's SF_CHANNEL_MAP ids, in channel mask bit order (sndfile.h, wavlike.c).
LEFT, RIGHT, CENTER, LFE, REAR_LEFT, REAR_RIGHT, SIDE_LEFT, SIDE_RIGHT = 2, 3, 4, 11, 9, 10, 14, 15
EXTENSIBLE = 0xFFFE
# 10:11:12 at 48 kHz, past 2**32 samples would need a day at 48 kHz: use the high word too.
REFERENCE = (1 << 32) + 1_762_176_000


def time_reference(info: bytes) -> int:
    """The ``bext`` time reference (two uint32 at 340 in ``SF_BROADCAST_INFO``)."""
    low, high = struct.unpack_from("=II", info, 340)
    return high << 32 | low


def bwf_info(description: bytes = b"Snare top, take 3", history: bytes = b"") -> bytes:
    """An ``SF_BROADCAST_INFO`` as a recorder would stamp it."""
    info = bytearray(608 + max(len(history), 256))
    info[: len(description)] = description
    info[256:262] = b"REAPER"
    info[320:338] = b"2026-12-0110:11:12"
    struct.pack_into("=IIh", info, 340, REFERENCE & 0xFFFFFFFF, REFERENCE >> 32, 1)
    struct.pack_into("=I", info, 604, len(history))
    info[608:608 + len(history)] = history
    return bytes(info)


def write_bwf(path: Path, samples: np.ndarray, rate: int = 48_000, subtype: str = "PCM_24",
              info: bytes | None = None) -> Path:
    with sf.SoundFile(path, "w", rate, samples.shape[0], subtype) as handle:
        set_broadcast_info(handle, info or bwf_info(history=b"A=PCM,F=48000,W=24,T=recorder\r\n"))
        handle.write(samples.T)
    return path


def bext_of(path: Path) -> bytes | None:
    with sf.SoundFile(path) as handle:
        return broadcast_info(handle)


def test_a_recorders_bext_reads_back_with_its_time_reference(tmp_path, rng):
    path = write_bwf(tmp_path / "in.wav", (0.1 * rng.standard_normal((1, 4800))).astype(np.float32))
    info = bext_of(path)
    assert info is not None and time_reference(info) == REFERENCE
    assert info.startswith(b"Snare top, take 3\0") and b"T=recorder\r\n" in info
    assert bext_of(write_audio(tmp_path / "plain.wav", np.zeros((1, 10)), 48_000)) is None
    sf.write(tmp_path / "in.flac", np.zeros(100), 48_000)
    assert read_audio(tmp_path / "in.flac").broadcast is None


def test_the_denoised_and_the_gated_outputs_keep_the_inputs_bext(tmp_path, rng):
    """A DAW spots a BWF file at its time reference: the outputs must land where the
    original does, and say in their coding history that they were written again."""
    samples = (0.3 * rng.standard_normal((2, 24_000))).astype(np.float32)
    src = write_bwf(tmp_path / "snare.wav", samples)
    original = bext_of(src)[608:].rstrip(b"\0")  # the recorder's line (and libsndfile's)
    denoised = Denoiser(build_model("identity"), "cpu").denoise_file(src, tmp_path / "d.wav")
    result = CliRunner().invoke(cli, ["gate", str(src), "-o", str(tmp_path / "g.wav")])
    assert result.exit_code == 0, result.output
    for out in (denoised, tmp_path / "g.wav"):
        info = bext_of(out)
        assert info is not None and time_reference(info) == REFERENCE
        assert info.startswith(b"Snare top, take 3\0")
        history = info[608:].rstrip(b"\0")
        assert history.startswith(original) and history.count(b"\r\n") == original.count(b"\r\n") + 1
        assert sf.info(out).subtype == "FLOAT" and sf.info(out).frames == 24_000
    np.testing.assert_allclose(sf.read(denoised, dtype="float32")[0].T, read_audio(src).samples,
                               atol=1e-5)  # its mean is no DC offset: far under its peak


def test_a_long_coding_history_is_cut_at_a_line_to_stay_readable(tmp_path):
    """libsndfile skips a bext chunk over 10 KiB when reading: a history that would grow
    past it keeps its oldest lines, whole, and the output's chunk still reads back."""
    lines = [b"A=PCM,F=48000,W=24,T=pass %04d\r\n" % n for n in range(295)]  # 9.4 KB
    src = write_bwf(tmp_path / "in.wav", np.zeros((1, 480), np.float32),
                    info=bwf_info(history=b"".join(lines)))
    info = bext_of(src)
    assert info is not None and info[608:].rstrip(b"\0").startswith(b"".join(lines))
    for n in range(4):  # each pass adds a line; uncut, the third would be skipped on reading
        info = bext_of(write_audio(tmp_path / f"pass{n}.wav", np.ones((1, 480)) * 0.1, 48_000,
                                   broadcast=info))
        assert info is not None and time_reference(info) == REFERENCE
    history = info[608:].rstrip(b"\0")
    assert history.startswith(b"".join(lines)) and history.endswith(b"\r\n")
    assert all(line + b"\r\n" in lines or b"libsndfile" in line
               for line in history.split(b"\r\n")[:-1])


def file_bext(history: bytes) -> bytes:
    """A ``bext`` chunk's data as the file holds it (602 bytes of fixed fields, no padding
    before the time reference), with a UMID and loudness values to carry."""
    fields = bytearray(602)
    fields[:17] = b"Snare top, take 3"
    fields[256:262] = b"REAPER"
    fields[320:338] = b"2026-12-0110:11:12"
    struct.pack_into("<IIH", fields, 338, REFERENCE & 0xFFFFFFFF, REFERENCE >> 32, 2)
    fields[348:356] = bytes(range(1, 9))
    struct.pack_into("<5h", fields, 412, -2300, 700, -100, -1800, -2000)
    return bytes(fields) + history


def with_chunk(path: Path, tag: bytes, data: bytes) -> Path:
    """``path`` (as libsndfile wrote it) with a chunk put before its audio, as a recorder
    places its ``bext``, and its RIFF size (an RF64's, in its ds64) counting it."""
    content = bytearray(path.read_bytes())
    at = content.index(b"data")
    chunk = tag + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    content[at:at] = chunk
    if content[:4] == b"RF64":
        size_at = content.index(b"ds64") + 8
        struct.pack_into("<Q", content, size_at,
                         struct.unpack_from("<Q", content, size_at)[0] + len(chunk))
    else:
        struct.pack_into("<I", content, 4, len(content) - 8)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("container", ["WAV", "RF64"])
def test_a_bext_chunk_libsndfile_skips_is_read_from_the_file(tmp_path, rng, container):
    """A coding history of a few hundred lines (an editing chain's) takes the chunk past
    10 KiB, which libsndfile skips on reading: the chunk is read from the file itself, so
    the outputs still land at the take's time reference, with its oldest history lines."""
    lines = [b"A=PCM,F=48000,W=24,T=pass %04d\r\n" % n for n in range(400)]  # 12.4 KB
    samples = (0.3 * rng.standard_normal((2, 24_000))).astype(np.float32)
    short = tmp_path / "short.wav"  # the same fields as libsndfile reads them, for comparison
    sf.write(short, samples.T, 48_000, subtype="PCM_24", format=container)
    expected = bext_of(with_chunk(short, b"bext", file_bext(lines[0])))
    src = tmp_path / "in.wav"
    sf.write(src, samples.T, 48_000, subtype="PCM_24", format=container)
    info = bext_of(with_chunk(src, b"bext", file_bext(b"".join(lines))))
    assert info is not None and time_reference(info) == REFERENCE
    assert info[:604] == expected[:604]  # every fixed field, laid out as libsndfile does
    assert info[608:] == b"".join(lines)[:10_240]
    np.testing.assert_array_equal(sf.read(src, dtype="float32")[0].T, read_audio(src).samples)
    for out in denoised_and_gated(src, tmp_path):
        info = bext_of(out)
        assert info is not None and time_reference(info) == REFERENCE
        assert info.startswith(b"Snare top, take 3\0")
        history = info[608:].rstrip(b"\0").split(b"\r\n")
        assert len(history) > 250 and b"libsndfile" in history[-2] and history[-1] == b""
        assert [line + b"\r\n" for line in history[:-2]] == lines[:len(history) - 2]


def test_a_bext_chunk_just_over_the_limit_ends_where_it_ends(tmp_path, rng):
    """A chunk of 10241-10841 bytes: the read took 602 + 10240 bytes whatever its size, so
    its history ran on into the next chunk's header and the samples."""
    history = b"".join(b"A=PCM,F=48000,W=24,T=pass %04d\r\n" % n for n in range(310))
    assert 10_240 < 602 + len(history) < 602 + 10_240
    src = tmp_path / "in.wav"
    sf.write(src, (0.3 * rng.standard_normal((24_000, 1))).astype(np.float32), 48_000,
             subtype="PCM_24")
    info = bext_of(with_chunk(src, b"bext", file_bext(history)))
    assert info is not None and info[608:] == history


def test_rf64_outputs_carry_no_write_time(tmp_path, monkeypatch, rng):
    """libsndfile's RF64 writer adds a PEAK chunk even when told not to, stamped with the
    write time; the stamp is zeroed, so two runs a second apart give the same bytes."""
    monkeypatch.setattr(audio, "WAV_LIMIT_BYTES", 1_000)
    samples = (0.1 * rng.standard_normal((2, 900))).astype(np.float32)
    first = write_audio(tmp_path / "a.wav", samples, 48_000).read_bytes()
    at = first.index(b"PEAK")
    assert first[:4] == b"RF64" and first[at + 12:at + 16] == b"\0\0\0\0"
    src = write_bwf(tmp_path / "in.wav", samples)
    out = write_audio(tmp_path / "b.wav", samples, 48_000, broadcast=read_audio(src).broadcast)
    data = out.read_bytes()
    at = data.index(b"PEAK")
    assert data.index(b"bext") < at < data.index(b"data") and data[at + 12:at + 16] == b"\0\0\0\0"
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0].T, samples)


def test_a_long_history_without_line_ends_is_cut_not_emptied(tmp_path):
    """A history past the limit is cut at its last whole line; one with no line end at
    all kept a single byte. It keeps as much as fits."""
    out = write_audio(tmp_path / "out.wav", np.ones((1, 480)) * 0.1, 48_000,
                      broadcast=bwf_info(history=b"x" * 9600))
    info = bext_of(out)
    assert time_reference(info) == REFERENCE
    assert info[608:].rstrip(b"\0").startswith(b"x" * 9400)


def fmt_of(path: Path) -> tuple[int, int | None]:
    """The format tag of ``path``'s ``fmt `` chunk and, when it is WAVE_FORMAT_EXTENSIBLE
    (40 bytes, cbSize 22), its dwChannelMask; parsed from the bytes, not through libsndfile."""
    data = path.read_bytes()
    at = data.index(b"fmt ") + 8
    size, (tag,) = struct.unpack_from("<I", data, at - 4)[0], struct.unpack_from("<H", data, at)
    if tag != EXTENSIBLE:
        assert size == 16
        return tag, None
    extension, _, mask = struct.unpack_from("<HHI", data, at + 16)
    assert size == 40 and extension == 22
    return tag, mask


def write_extensible(path: Path, samples: np.ndarray, mask: int) -> Path:
    """A WAVE_FORMAT_EXTENSIBLE file whose channel mask is ``mask``, as a DAW exports one."""
    sf.write(path, samples.T, 48_000, "PCM_24", format="WAVEX")
    set_channel_mask(path, mask)
    return path


def denoised_and_gated(src: Path, folder: Path) -> tuple[Path, Path]:
    """The outputs of both writers, the streaming denoiser and the gate command, which
    carry the input's chunks without a warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        denoised = Denoiser(build_model("identity"), "cpu").denoise_file(src, folder / "d.wav")
    result = CliRunner().invoke(cli, ["gate", str(src), "-o", str(folder / "g.wav")])
    assert result.exit_code == 0, result.output
    said = [str(w.message) for w in caught] + [result.output]
    assert not any("the input's" in text for text in said), said  # its chunk or layout
    return denoised, folder / "g.wav"


@pytest.mark.parametrize("layout,mask", [
    ((LEFT, RIGHT, CENTER, LFE, REAR_LEFT, REAR_RIGHT), 0x3F),   # 5.1
    ((LEFT, RIGHT, CENTER, LFE, SIDE_LEFT, SIDE_RIGHT), 0x60F),  # 5.1 with side surrounds
    ((LEFT, RIGHT), 0x3),
    ((SIDE_LEFT, SIDE_RIGHT), 0x600),                            # a surround pair alone
    ((LEFT, RIGHT, 0, 0), 0x3),        # the front pair named, two channels left unnamed
    ((LEFT, 0), 0x1),
    ((LEFT, CENTER, 0), 0x5),
])
def test_the_outputs_keep_an_extensible_inputs_channel_mask(tmp_path, rng, layout, mask):
    """Readers place each channel by the mask: an output in a plain ``fmt `` (or with the
    default mask for its channel count) plays a surround stem on the wrong speakers. A
    mask may name fewer speakers than there are channels; the default for the count in its
    place (0x33 for four) named the unnamed ones surrounds."""
    samples = (0.3 * rng.standard_normal((len(layout), 24_000))).astype(np.float32)
    src = write_extensible(tmp_path / "in.wav", samples, mask)
    assert fmt_of(src) == (EXTENSIBLE, mask) and read_audio(src).channel_map == layout
    for out in denoised_and_gated(src, tmp_path):
        assert fmt_of(out) == (EXTENSIBLE, mask)
        assert read_audio(out).channel_map == layout
        assert sf.info(out).subtype == "FLOAT" and sf.info(out).frames == 24_000


def test_channel_masks_name_speakers_in_their_bit_order(tmp_path):
    """Each of the 18 bits libsndfile reads maps back to itself; a layout out of the bits'
    order, with an unnamed channel before a named one, or a speaker no bit stands for
    (libsndfile's MONO, 1) has no mask."""
    for bit in range(18):
        path = write_extensible(tmp_path / f"bit{bit}.wav", np.zeros((1, 10)), 1 << bit)
        with sf.SoundFile(path) as handle:
            assert channel_mask(channel_map(handle)) == 1 << bit
    assert channel_mask((LEFT, RIGHT, CENTER, LFE, SIDE_LEFT, SIDE_RIGHT)) == 0x60F
    assert channel_mask((LEFT, RIGHT, 0, 0)) == 0x3 and channel_mask((0, 0)) == 0
    assert channel_mask((RIGHT, LEFT)) is None and channel_mask((0, LEFT)) is None
    assert channel_mask((1,)) is None


def test_warnings_name_the_output_not_its_temporary_file(tmp_path, monkeypatch):
    """An output is written to a hidden temporary file renamed over it at the end: a
    warning naming that file named one the user never gave, gone by the time it is read."""
    out = tmp_path / "out.wav"
    monkeypatch.setattr(audio, "set_broadcast_info", lambda handle, info: False)  # refused
    with pytest.warns(UserWarning) as caught:
        write_audio(out, np.ones((2, 480)) * 0.1, 48_000, broadcast=bwf_info(),
                    layout=(RIGHT, LEFT))  # out of the mask's bit order: no mask says it
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and all(text.startswith(f"{out}: ") for text in messages)
    assert "bext chunk" in messages[0] and "(3, 2)" in messages[1]
    assert fmt_of(out) == (EXTENSIBLE, 0x3) and bext_of(out) is None
    assert [path.name for path in tmp_path.iterdir()] == ["out.wav"]


def test_plain_inputs_give_plain_outputs_up_to_two_channels(tmp_path, rng):
    """Mono and stereo stay in the plain ``fmt `` every reader takes; more channels are
    extensible, as Microsoft asks, with libsndfile's default mask for their count."""
    for channels, expected in ((1, (3, None)), (2, (3, None)), (6, (EXTENSIBLE, 0x3F))):
        samples = (0.3 * rng.standard_normal((channels, 4800))).astype(np.float32)
        src = tmp_path / f"plain{channels}.wav"
        sf.write(src, samples.T, 48_000, subtype="FLOAT")
        assert fmt_of(src) == (3, None)
        folder = tmp_path / f"out{channels}"
        folder.mkdir()
        for out in denoised_and_gated(src, folder):
            assert fmt_of(out) == expected


def test_an_rf64_output_keeps_the_channel_mask(tmp_path, monkeypatch, rng):
    """Past 4 GiB the output is RF64, whose ``fmt `` libsndfile always writes extensible:
    the input's mask goes there too, not the default for the channel count."""
    monkeypatch.setattr(audio, "WAV_LIMIT_BYTES", 1_000)
    layout = (LEFT, RIGHT, CENTER, LFE, SIDE_LEFT, SIDE_RIGHT)
    samples = (0.1 * rng.standard_normal((6, 900))).astype(np.float32)
    src = write_extensible(tmp_path / "in.wav", samples, 0x60F)
    out = write_audio(tmp_path / "out.wav", samples, 48_000, layout=read_audio(src).channel_map)
    assert out.read_bytes()[:4] == b"RF64" and fmt_of(out) == (EXTENSIBLE, 0x60F)
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0].T, samples)

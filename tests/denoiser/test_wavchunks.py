"""Chunks beside the samples: a BWF input's ``bext`` (its timeline position) reaches every
output made from it, and RF64 outputs are byte-reproducible despite libsndfile's PEAK."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser import audio
from denoiser.audio import read_audio, write_audio
from denoiser.engine import Denoiser
from denoiser.models import build_model
from denoiser.wavchunks import broadcast_info, set_broadcast_info

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
                               atol=1e-5)


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

"""Training export: tagged items become clean/ and bleed/ folders of WAVs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_reaper import FakeReaper
from reaper_helpers import make_wav

from denoiser.errors import AudioError
from reaper_bridge.export import STAGING, export_session, tag_of
from reaper_bridge.items import BridgeError
from reaper_bridge.processing import TaskExecutor


def session(fake: FakeReaper, tmp_path: Path, seconds: float = 1.0) -> dict[str, np.ndarray]:
    clean = make_wav(tmp_path / "clean.wav", 3 * seconds, seed=1)
    bleed = make_wav(tmp_path / "bleed.wav", 3 * seconds, 44100, 2, seed=2)
    snare = fake.add_track("Snare top [CLEAN]")
    kit = fake.add_track("Snare top [bleed]")
    untagged = fake.add_track("Kick")
    fake.add_take(fake.add_item(snare, 0.0, seconds), fake.file_source(str(clean)), "c1", D_STARTOFFS=0.5)
    fake.add_take(fake.add_item(kit, 0.0, seconds), fake.file_source(str(bleed)), "b1")
    # A note overrides the track's tag; a playrate != 1 goes through the accessor.
    note_item = fake.add_item(kit, 5.0, seconds / 2, notes="snare alone [clean]")
    fake.add_take(note_item, fake.file_source(str(clean)), "c2", D_PLAYRATE=2.0)
    fake.add_take(fake.add_item(untagged, 0.0, seconds), fake.file_source(str(clean)), "k")
    return {"clean": sf.read(clean, dtype="float32", always_2d=True)[0].T,
            "bleed": sf.read(bleed, dtype="float32", always_2d=True)[0].T}


def test_tags() -> None:
    assert tag_of("Snare [Clean] top") == "clean" and tag_of("kit [BLEED]") == "bleed"
    assert tag_of("Snare clean") is None


def test_export_writes_clean_and_bleed_folders(fake: FakeReaper, api, tmp_path: Path) -> None:
    audio = session(fake, tmp_path)
    out = tmp_path / "export"
    plan = export_session(api, str(out), TaskExecutor())
    assert plan.counts() == {"clean": 2, "bleed": 1}
    clean = sorted((out / "clean").glob("*.wav"))
    bleed = sorted((out / "bleed").glob("*.wav"))
    assert [p.name for p in clean] == ["0000_Snare_top_CLEAN_0.000_s.wav", "0002_Snare_top_bleed_5.000_s.wav"]
    first, rate = sf.read(clean[0], dtype="float32", always_2d=True)
    np.testing.assert_array_equal(first.T, audio["clean"][:, 24000:72000])  # offset 0.5 s, 1 s
    second, _ = sf.read(clean[1], dtype="float32", always_2d=True)
    assert second.shape == (24000, 1)  # accessor render at playrate 2: item length 0.5 s
    kit, kit_rate = sf.read(bleed[0], dtype="float32", always_2d=True)
    assert kit_rate == 44100 and kit.shape == (44100, 2)
    np.testing.assert_array_equal(kit.T, audio["bleed"][:, :44100])
    manifest = json.loads((out / "export.json").read_text())
    assert [e["tag"] for e in manifest["files"]] == ["clean", "bleed", "clean"]

    # Re-export after removing a tag: the stale file of the previous export goes away.
    fake.tracks[1].items[1].notes = ""
    export_session(api, str(out), TaskExecutor())
    assert [p.name for p in sorted((out / "bleed").glob("*.wav"))] == [
        "0001_Snare_top_bleed_0.000_s.wav", "0002_Snare_top_bleed_5.000_s.wav"]
    assert not list((out / "clean").glob("0002_*"))


def test_a_failed_re_export_leaves_the_previous_export_whole(fake: FakeReaper, api,
                                                            tmp_path: Path) -> None:
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (tmp_path / "bleed.wav").write_bytes(b"not audio")  # the second export cannot read it
    with pytest.raises(AudioError, match="bleed.wav"):
        export_session(api, str(out), TaskExecutor())
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and len(before) == 4  # three clips and export.json
    assert not (out / STAGING).exists()


def test_nothing_tagged_is_a_clear_error(fake: FakeReaper, api, tmp_path: Path) -> None:
    fake.add_take(fake.add_item(fake.add_track("Snare"), 0.0, 1.0),
                  fake.file_source(str(make_wav(tmp_path / "s.wav", 1.0))), "s")
    with pytest.raises(BridgeError, match=r"put \[clean\] or \[bleed\]"):
        export_session(api, str(tmp_path / "out"), TaskExecutor())


def test_export_feeds_dataset_session(fake: FakeReaper, api, tmp_path: Path) -> None:
    pytest.importorskip("training.session", reason="training/session.py not written yet")
    from click.testing import CliRunner

    from debleed.cli.main import cli

    session(fake, tmp_path, seconds=2.0)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    result = CliRunner().invoke(cli, ["dataset", "session", "--clean", str(out / "clean"), "--bleed",
                                      str(out / "bleed"), "--out", str(tmp_path / "data"),
                                      "--clip-seconds", "0.5"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["clips"]


def test_export_is_what_each_take_plays(fake: FakeReaper, api, tmp_path: Path) -> None:
    """Channel mode and take volume (the slice applies them), and a looped item or stretch
    markers (rendered): a mono-left take of a stereo file must not carry the right
    channel's bleed into clean data."""
    rate = 48000
    left = 0.5 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)
    right = 0.3 * np.random.default_rng(0).standard_normal(rate)
    stereo = np.stack([left, right]).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo.T, rate, subtype="FLOAT")
    track = fake.add_track("Snare [clean]")
    fake.add_take(fake.add_item(track, 0.0, 0.5), fake.file_source(str(path)), "L", I_CHANMODE=3)
    fake.add_take(fake.add_item(track, 1.0, 0.5), fake.file_source(str(path)), "R",
                  I_CHANMODE=4, D_VOL=-0.5, D_STARTOFFS=0.25)
    fake.add_take(fake.add_item(track, 2.0, 1.5, loop=True), fake.file_source(str(path)), "loop",
                  D_STARTOFFS=0.5)
    warped = fake.add_take(fake.add_item(track, 4.0, 0.5), fake.file_source(str(path)), "warp")
    fake.RPR_SetTakeStretchMarker(warped.ptr, -1, 0.0, 0.0)
    fake.RPR_SetTakeStretchMarker(warped.ptr, -1, 0.2, 0.1)

    plan = export_session(api, str(tmp_path / "out"), TaskExecutor())
    files = [sf.read(tmp_path / "out" / e["file"], dtype="float32", always_2d=True)[0].T
             for e in plan.entries]
    np.testing.assert_array_equal(files[0], stereo[:1, :24000])
    np.testing.assert_array_equal(files[1], -0.5 * stereo[1:, 12000:36000])
    wrapped = stereo[:, (24000 + np.arange(72000)) % rate]
    np.testing.assert_allclose(files[2], wrapped, atol=1e-5)
    np.testing.assert_allclose(files[3], fake.play(warped, rate, 2, 0.0, 24000), atol=1e-6)
    assert not np.allclose(files[3], stereo[:, :24000], atol=1e-3)  # the markers did warp it

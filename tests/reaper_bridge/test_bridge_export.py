"""Training export: tagged items become clean/ and bleed/ folders of WAVs."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_reaper import FakeReaper
from reaper_helpers import make_wav, resampled

from denoiser.errors import AudioError
from reaper_bridge.bridge import run_tasks
from reaper_bridge.export import (LOCK, MANIFEST, STAGING_PREFIX, export_session, finish,
                                  out_dir_for, plan_export, render_fallbacks, tag_of)
from reaper_bridge.filelock import try_lock
from reaper_bridge.items import BridgeError
from reaper_bridge.jobs import Task
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


def test_a_re_export_with_no_take_of_a_tag_removes_its_previous_folder(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """The previous export's bleed/ goes with the rest when no [bleed] take is left: kept,
    its clips sat beside an export.json that no longer lists them."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    assert len(list((out / "bleed").glob("*.wav"))) == 1
    fake.tracks[1].items[0].notes = "[clean]"  # the one [bleed] take left is now clean
    plan = export_session(api, str(out), TaskExecutor())
    assert plan.counts() == {"clean": 3, "bleed": 0} and not (out / "bleed").exists()
    assert sorted(files(out)) == sorted([MANIFEST, *listed(out)]) and len(listed(out)) == 3
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not (out / LOCK).exists()


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
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not (out / LOCK).exists()


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def listed(out: Path) -> list[str]:
    return [e["file"] for e in json.loads((out / "export.json").read_text())["files"]]


def test_a_second_export_into_the_folder_is_refused_while_one_runs(fake: FakeReaper, api,
                                                                   tmp_path: Path) -> None:
    """Both used one staging folder: planning the second (the CLI, while the action's
    worker ran) deleted the first's, which then failed half-way through replacing files."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    fake.tracks[1].items[1].notes = ""  # a re-export that also has a stale file to delete
    first = plan_export(api, str(out))
    render_fallbacks(api, first)
    with pytest.raises(BridgeError, match=f"an export into {out} is running"):
        export_session(api, str(out), TaskExecutor())
    run_tasks(first.tasks, TaskExecutor(), None)
    finish(first)
    assert sorted(listed(out)) == sorted(f for f in files(out) if f.endswith(".wav"))
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not (out / LOCK).exists()
    export_session(api, str(out), TaskExecutor())  # the lock was released


def test_a_crashed_exports_lock_and_staging_are_cleared(fake: FakeReaper, api,
                                                         tmp_path: Path) -> None:
    """A crashed export leaves its lock file, unlocked, and its staging folders: neither
    stops the next export, which removes those over a day old (a younger one may be
    another machine's, where a network file system locks per machine). A running
    export's lock refuses it."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    (out / f"{STAGING_PREFIX}crashed").mkdir(parents=True)
    (out / f"{STAGING_PREFIX}recent").mkdir()
    old = time.time() - 2 * 86400
    os.utime(out / f"{STAGING_PREFIX}crashed", (old, old))
    (out / LOCK).touch()
    running = try_lock(str(out / LOCK))
    assert running is not None
    with pytest.raises(BridgeError, match=f"an export into {out} is running: "):
        export_session(api, str(out), TaskExecutor())
    assert (out / f"{STAGING_PREFIX}crashed").is_dir() and not (out / MANIFEST).exists()
    running.handle.close()  # what the kernel does when that export's process dies
    export_session(api, str(out), TaskExecutor())
    assert [p.name for p in out.glob(f"{STAGING_PREFIX}*")] == [f"{STAGING_PREFIX}recent"]
    assert not (out / LOCK).exists() and (out / MANIFEST).is_file()


def test_a_re_export_blocked_by_an_open_clip_leaves_the_previous_export_whole(
        fake: FakeReaper, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Windows a clip of the previous export open in REAPER or a player can be neither
    replaced nor moved with its folder. Files moved in one by one left clean/ holding both
    exports, mixed, beside the old export.json; the folders now move whole or not at all.
    The open file is imitated: renames that replace it or move a folder holding it fail."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    before = files(out)
    fake.tracks[0].items[0].position = 0.25  # the re-export names this clip anew
    opened = str(out / "clean" / "0002_Snare_top_bleed_5.000_s.wav")
    real_rename, real_replace = os.rename, os.replace

    def refuse(rename):
        def blocked(src: str, dst: str) -> None:
            if opened in (str(dst), str(src)) or opened.startswith(str(src) + os.sep):
                raise PermissionError(13, "being used by another process", str(src))
            rename(src, dst)
        return blocked

    monkeypatch.setattr(os, "rename", refuse(real_rename))
    monkeypatch.setattr(os, "replace", refuse(real_replace))
    with pytest.raises(PermissionError):
        export_session(api, str(out), TaskExecutor())
    assert files(out) == before
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not (out / LOCK).exists()


@pytest.mark.parametrize("refused", ["clean", "bleed", MANIFEST])
def test_a_failure_while_moving_in_puts_the_previous_export_back(
        fake: FakeReaper, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        refused: str) -> None:
    """Whichever step of the swap fails, the steps before it are undone: the previous
    folders and export.json are back, byte for byte, and nothing is left staged."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    before = files(out)
    fake.tracks[1].items[1].notes = ""  # clean/0002_* goes, bleed/0002_* comes
    plan = plan_export(api, str(out))
    render_fallbacks(api, plan)
    run_tasks(plan.tasks, TaskExecutor(), None)
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        if os.fspath(src) == os.path.join(plan.staging, refused):
            raise PermissionError(13, "refused", os.fspath(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError, match=re.escape(f"refused: '{out / refused}'")):
        finish(plan)
    assert files(out) == before
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not (out / LOCK).exists()


def test_linked_clean_and_bleed_folders_stay_links_and_are_replaced_whole(
        fake: FakeReaper, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """clean/ and bleed/ as links to folders on another disk: the swap moved the links
    aside, deleted them and put folders of its own in their place, so the export landed
    on the export folder's disk. The links stay and the folders they point to get the
    new files, by renames on that disk only (a rename across disks fails here as the
    system fails it), and a failure part-way leaves the previous export whole."""
    session(fake, tmp_path)
    out, disk = tmp_path / "export", tmp_path / "disk"
    out.mkdir()
    for tag in ("clean", "bleed"):
        (disk / tag).mkdir(parents=True)
        (out / tag).symlink_to(disk / tag)
    real_rename, real_replace = os.rename, os.replace

    def on_one_disk(rename):  # shutil.move renames, the swap replaces
        def one_disk(src: str, dst: str) -> None:
            on_disk = [os.path.realpath(os.path.dirname(p)).startswith(str(disk))
                       for p in (src, dst)]
            if on_disk[0] != on_disk[1]:
                raise OSError(18, "Invalid cross-device link", str(src))
            rename(src, dst)
        return one_disk

    def held(root: Path) -> list[str]:
        return sorted(os.path.relpath(os.path.join(d, n), root)
                      for d, _, names in os.walk(root) for n in names)

    crashed = disk / "clean" / f"{STAGING_PREFIX}crashed"  # a swap there cut short a day ago
    crashed.mkdir()
    os.utime(crashed, (time.time() - 2 * 86400,) * 2)
    monkeypatch.setattr(os, "rename", on_one_disk(real_rename))
    monkeypatch.setattr(os, "replace", on_one_disk(real_replace))
    export_session(api, str(out), TaskExecutor())
    assert not crashed.exists()
    fake.tracks[0].items[0].position = 0.25  # the re-export names this clip anew
    export_session(api, str(out), TaskExecutor())
    assert (out / "clean").is_symlink() and (out / "bleed").is_symlink()
    assert held(disk) == sorted(listed(out)) and held(out) == [MANIFEST]
    assert (disk / listed(out)[0]).read_bytes()[:4] == b"RIFF"

    before = {path: (disk / path).read_bytes() for path in held(disk)}
    fake.tracks[0].items[0].position = 0.5
    opened = str(disk / "bleed" / "0001_Snare_top_bleed_0.000_s.wav")

    def blocked(src: str, dst: str) -> None:
        if opened in (str(src), str(dst)):
            raise PermissionError(13, "being used by another process", str(src))
        on_one_disk(real_replace)(src, dst)

    monkeypatch.setattr(os, "replace", blocked)
    with pytest.raises(PermissionError):
        export_session(api, str(out), TaskExecutor())
    assert {path: (disk / path).read_bytes() for path in held(disk)} == before
    assert (out / "clean").is_symlink() and held(out) == [MANIFEST]
    for path in before:
        (disk / path).unlink()
    (disk / "bleed").rmdir()  # the disk not mounted: the link names the folder it lacks
    with pytest.raises(BridgeError, match=f"bleed: links to {disk / 'bleed'}, which is not a "
                                          "folder"):
        export_session(api, str(out), TaskExecutor())


def test_a_linked_folders_young_staging_folder_is_left_for_a_day(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """A hidden staging folder younger than a day in the folder a linked clean/ points to
    (a killed swap's, holding the previous export in old/) went into this swap's old/ with
    the previous clips and was deleted at once; it is left, as beside an unlinked one,
    until the export after it is a day old."""
    session(fake, tmp_path)
    out, disk = tmp_path / "export", tmp_path / "disk"
    out.mkdir()
    (disk / "clean").mkdir(parents=True)
    (out / "clean").symlink_to(disk / "clean")
    young = disk / "clean" / f"{STAGING_PREFIX}killed" / "old" / "previous_take.wav"
    young.parent.mkdir(parents=True)
    young.write_bytes(b"RIFF previous export")
    export_session(api, str(out), TaskExecutor())
    assert young.read_bytes() == b"RIFF previous export"
    assert sorted(p.name for p in (disk / "clean").iterdir() if p.suffix == ".wav") == sorted(
        os.path.basename(name) for name in listed(out) if name.startswith("clean/"))
    os.utime(young.parents[1], (time.time() - 2 * 86400,) * 2)
    export_session(api, str(out), TaskExecutor())
    assert not young.parents[1].exists()


def test_a_previous_clip_that_cannot_be_deleted_warns_and_the_export_stands(
        fake: FakeReaper, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the new folders are in place the export has succeeded: a previous clip that
    cannot be deleted (on Windows, one a player opened with delete sharing) stays in the
    hidden folder, named by one warning line as ``replace_entries`` does, and the next
    export clears it once it is a day old."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    fake.tracks[0].items[0].position = 0.25
    old = Path(listed(out)[0]).name
    unlink = os.unlink

    def held(path, *args, **kwargs):
        if os.path.basename(os.fspath(path)) == old:
            raise PermissionError(13, "being used by another process", os.fspath(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", held)
    with pytest.warns(UserWarning) as caught:
        export_session(api, str(out), TaskExecutor())
    left = list(out.glob(f"{STAGING_PREFIX}*"))
    assert [str(w.message) for w in caught] == [
        f"{left[0]}: the replaced entries could not all be deleted from this hidden folder "
        "(a file another program holds?); delete it"]
    assert [p.relative_to(left[0]).as_posix() for p in left[0].rglob("*.wav")] == [f"clean/{old}"]
    assert f"clean/{old}" not in listed(out) and (out / listed(out)[0]).is_file()


def test_files_no_export_json_lists_stop_the_export(fake: FakeReaper, api,
                                                    tmp_path: Path) -> None:
    """An export replaces clean/ and bleed/ whole. With export.json deleted or unreadable,
    the previous export's files were never removed and mixed into the next; a file of the
    user's there would now be deleted. Either stops the export before anything is
    written; hidden files (.DS_Store) are the system's and go with the folder."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    (out / "clean" / ".DS_Store").write_bytes(b"finder")
    export_session(api, str(out), TaskExecutor())
    assert not (out / "clean" / ".DS_Store").exists()
    (out / MANIFEST).unlink()
    before = files(out)
    with pytest.raises(BridgeError, match=rf"{out} holds 3 audio file\(s\) in clean or bleed "
                                          rf"that no {MANIFEST} there lists \(bleed/0001_Snare_top_bleed_"
                                          r"0.000_s.wav, ...\); an export replaces those folders "
                                          "whole: move the files elsewhere, or delete them"):
        export_session(api, str(out), TaskExecutor())
    assert files(out) == before and not list(out.glob(f"{STAGING_PREFIX}*"))

    # A manifest naming a file below clean/ (a tampered one) does not make it the export's.
    other = tmp_path / "other"
    export_session(api, str(other), TaskExecutor())
    manifest = json.loads((other / MANIFEST).read_text())
    manifest["files"].append({"file": "clean/sub/mine.wav"})
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "clean" / "sub").mkdir()
    (out / "clean" / "sub" / "mine.wav").write_bytes(b"keep me")
    with pytest.raises(BridgeError, match=r"holds 1 audio file\(s\) .* \(clean/sub/mine.wav\)"):
        export_session(api, str(out), TaskExecutor())
    assert (out / "clean" / "sub" / "mine.wav").read_bytes() == b"keep me"
    (out / "clean" / "sub" / "mine.wav").unlink()
    export_session(api, str(out), TaskExecutor())
    assert files(out).keys() == files(other).keys()


def test_files_dataset_session_does_not_read_go_with_the_folders(fake: FakeReaper, api,
                                                               tmp_path: Path) -> None:
    """REAPER writes a peak file beside each clip it plays (``.wav.reapeaks``) and Windows
    writes Thumbs.db and desktop.ini: ``dataset session`` reads none of them, so they
    stopped every re-export after a listen. They go with the folders; an unlisted audio
    file still stops the export, whatever the case of its suffix."""
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    clip = out / listed(out)[0]
    system = [Path(f"{clip}.reapeaks"), out / "clean" / "Thumbs.db", out / "bleed" / "desktop.ini"]
    for path in system:
        path.write_bytes(b"system")
    export_session(api, str(out), TaskExecutor())
    assert not any(path.exists() for path in system)
    assert sorted(files(out)) == sorted([*listed(out), MANIFEST])
    (out / "bleed" / "mine.FLAC").write_bytes(b"keep me")
    with pytest.raises(BridgeError, match=r"holds 1 audio file\(s\) .* \(bleed/mine.FLAC\)"):
        export_session(api, str(out), TaskExecutor())
    assert (out / "bleed" / "mine.FLAC").read_bytes() == b"keep me"


def test_a_tampered_manifest_deletes_nothing_outside_clean_and_bleed(fake: FakeReaper, api,
                                                                     tmp_path: Path) -> None:
    session(fake, tmp_path)
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    victims = [tmp_path / "victim.txt", tmp_path / "absolute.txt", tmp_path / "through_clean.txt"]
    for victim in victims:
        victim.write_text("keep me")
    manifest = json.loads((out / "export.json").read_text())
    kept = manifest["files"][0]["file"]
    manifest["files"] += [{"file": "../victim.txt"}, {"file": str(victims[1])},
                          {"file": "clean/../../through_clean.txt"},
                          {"file": kept.replace("/", "/./")}]  # another spelling of a new file
    (out / "export.json").write_text(json.dumps(manifest))
    export_session(api, str(out), TaskExecutor())
    assert all(victim.read_text() == "keep me" for victim in victims)
    assert (out / kept).is_file() and sorted(listed(out)) == sorted(
        f for f in files(out) if f.endswith(".wav"))


def test_nothing_tagged_is_a_clear_error(fake: FakeReaper, api, tmp_path: Path) -> None:
    fake.add_take(fake.add_item(fake.add_track("Snare"), 0.0, 1.0),
                  fake.file_source(str(make_wav(tmp_path / "s.wav", 1.0))), "s")
    with pytest.raises(BridgeError, match=r"put \[clean\] or \[bleed\]"):
        export_session(api, str(tmp_path / "out"), TaskExecutor())


def test_export_feeds_dataset_session(fake: FakeReaper, api, tmp_path: Path) -> None:
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


@pytest.mark.parametrize("mode,played", [(68, 2), (4, 1)], ids=["pair-2-3", "mono-right"])
def test_channel_modes_export_what_the_take_plays(fake: FakeReaper, api, tmp_path: Path,
                                                  mode: int, played: int) -> None:
    """A stereo-pair mode (68: channels 2/3) was taken for a mono mode naming a missing
    channel and rendered in all the source's channels; a mono mode at another playrate
    asked the accessor for one channel, which REAPER refuses."""
    rate = 48000
    source = (0.2 * np.random.default_rng(8).standard_normal((3, rate))).astype(np.float32)
    path = tmp_path / "three.wav"
    sf.write(path, source.T, rate, subtype="FLOAT")
    track = fake.add_track("Snare [clean]")
    fake.add_take(fake.add_item(track, 0.0, 0.5), fake.file_source(str(path)), "slice",
                  I_CHANMODE=mode, D_STARTOFFS=0.25)
    fake.add_take(fake.add_item(track, 1.0, 0.5), fake.file_source(str(path)),
                  "render", I_CHANMODE=mode, D_PLAYRATE=1.5)
    plan = export_session(api, str(tmp_path / "out"), TaskExecutor())
    assert len(plan.tasks) == 1 and len(plan.renders) == 1
    sliced, played_render = (sf.read(tmp_path / "out" / e["file"], dtype="float32",
                                     always_2d=True)[0].T for e in plan.entries)
    channels = slice(1, 3) if mode == 68 else slice(1, 2)
    np.testing.assert_array_equal(sliced, source[channels, 12000:36000])
    assert played_render.shape == (played, 24000)
    np.testing.assert_allclose(played_render, resampled(source[channels], 24000, 1.5),
                               atol=1e-6)


def test_a_stereo_pair_mode_of_a_mono_source_renders_a_valid_pair(fake: FakeReaper, api,
                                                                  tmp_path: Path) -> None:
    """Mode 67 (channels 1/2) on a mono file plays the file left and silence right. The
    export renders it (the slice cannot: channel 2 is missing), and the render wrote a
    2-channel header over the one channel the accessor was asked for: a corrupt WAV."""
    wav = make_wav(tmp_path / "mono.wav", 1.0)
    source = sf.read(wav, dtype="float32", always_2d=True)[0].T
    fake.add_take(fake.add_item(fake.add_track("Snare [clean]"), 0.0, 0.5),
                  fake.file_source(str(wav)), "pair", I_CHANMODE=67, D_STARTOFFS=0.25)
    plan = export_session(api, str(tmp_path / "out"), TaskExecutor())
    assert len(plan.tasks) == 0 and len(plan.renders) == 1
    data = sf.read(tmp_path / "out" / plan.entries[0]["file"], dtype="float32",
                   always_2d=True)[0].T
    assert data.shape == (2, 24000)
    np.testing.assert_array_equal(data[0], source[0, 12000:36000])
    np.testing.assert_array_equal(data[1], np.zeros(24000))


def test_a_slice_past_a_wave64s_end_is_silence_not_its_list_chunk(tmp_path: Path,
                                                                   listed_wave64) -> None:
    """A slice reads its source's length from the header: libsndfile alone reads a
    Wave64 to the end of the file, so the list chunk a DAW writes after the audio was 28
    frames of noise where a slice ran past the take's end, which must be silence."""
    take = (0.3 * np.random.default_rng(5).standard_normal(24000)).astype(np.float32)
    src = listed_wave64(tmp_path / "snare.w64", take, 48000)
    with sf.SoundFile(src) as handle:
        assert handle.frames == 24028  # what libsndfile alone makes of it
    held = sf.read(src, frames=24000, dtype="float32")[0]  # as 16 bits hold the take
    dst = TaskExecutor()(Task("slice", str(src), str(tmp_path / "out.wav"), start=20000,
                              frames=8000), lambda _: None)
    sliced, rate = sf.read(dst, dtype="float32")
    assert (sliced.shape, rate) == ((8000,), 48000)
    np.testing.assert_array_equal(sliced[:4000], held[20000:])
    np.testing.assert_array_equal(sliced[4000:], np.zeros(4000, np.float32))


def test_a_slice_past_the_end_of_a_cut_wave64_is_silence(tmp_path: Path) -> None:
    """A Wave64 cut short inside its audio (a copy half done: 18000 of the 24000 frames
    its data chunk counts) is read as the frames there, libsndfile's count, not its
    header's, which would have the slice fail on frames that never decode: past them, as
    past the end of any file, a slice is silence."""
    take = (0.3 * np.random.default_rng(6).standard_normal(24000)).astype(np.float32)
    src = tmp_path / "snare.w64"
    sf.write(src, take, 48000, subtype="PCM_16", format="W64")
    src.write_bytes(src.read_bytes()[:-2 * 6000])
    held = sf.read(src, dtype="float32")[0]
    assert held.shape == (18000,)
    dst = TaskExecutor()(Task("slice", str(src), str(tmp_path / "out.wav"), start=16000,
                              frames=4000), lambda _: None)
    sliced = sf.read(dst, dtype="float32")[0]
    np.testing.assert_array_equal(sliced[:2000], held[16000:])
    np.testing.assert_array_equal(sliced[2000:], np.zeros(2000, np.float32))


def test_item_volume_is_exported_with_take_volume(fake: FakeReaper, api, tmp_path: Path) -> None:
    """The accessor and a file slice leave out both volumes: an item at 0.5 with a take at
    0.8 plays its source at 0.4, which the export applied only 0.8 of."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    source = sf.read(wav, dtype="float32", always_2d=True)[0].T
    track = fake.add_track("Snare [clean]")
    fake.add_take(fake.add_item(track, 0.0, 0.5, volume=0.5), fake.file_source(str(wav)), "slice",
                  D_VOL=0.8)
    fake.add_take(fake.add_item(track, 1.0, 0.5, volume=0.5),
                  fake.file_source(str(wav)), "render", D_VOL=0.8, D_PLAYRATE=1.5)
    plan = export_session(api, str(tmp_path / "out"), TaskExecutor())
    assert len(plan.tasks) == 1 and len(plan.renders) == 1
    sliced, played = (sf.read(tmp_path / "out" / e["file"], dtype="float32", always_2d=True)[0].T
                      for e in plan.entries)
    np.testing.assert_allclose(sliced, 0.4 * source[:, :24000], atol=1e-7)
    np.testing.assert_allclose(played, 0.4 * resampled(source, 24000, 1.5), atol=1e-7)


def _next_command(message: str) -> list[str]:
    import shlex

    line = next(line for line in message.splitlines() if line.startswith("Next: "))
    return shlex.split(line[len("Next: "):])


@pytest.mark.parametrize("seconds, suggested, shortest", [
    (20.0, None, None), (2.0, "1", "1"), (17.0, "8.5", "8.5"), (1.0, "0.5", "0.5"),
    (9.3, "4.6", "4.65"), (19.99, "9.9", "9.99")])
def test_next_hint_gives_a_clip_length_the_shortest_clean_take_fits(
        fake: FakeReaper, api, tmp_path: Path, seconds: float, suggested: str | None,
        shortest: str | None) -> None:
    """``debleed dataset session`` skips clean takes shorter than its 10 s default clip, so
    the hint adds ``--clip-seconds``: the shortest clean take (here the note-tagged one,
    ``seconds / 2`` long) rounded down to 0.1 s; none when all fit. The note gives that
    take's own length, cut to 0.01 s (4.65 s read 4.6 s, the suggestion's; 9.995 s, rounded,
    read 9.99 s as 10 s, past the suggestion)."""
    session(fake, tmp_path, seconds=seconds)
    plan = export_session(api, str(tmp_path / "export"), TaskExecutor())
    command = _next_command(plan.message())
    assert command[:3] == ["debleed", "dataset", "session"] and command[-2:] == ["--out", "DATASET"]
    if suggested is None:
        assert "--clip-seconds" not in command and "--clip-seconds" not in plan.message()
    else:
        assert command[command.index("--clip-seconds") + 1] == suggested
        assert f"shortest clean take is {shortest} s" in plan.message()


@pytest.mark.parametrize("tag, missing", [("clean", "bleed"), ("bleed", "clean")])
def test_an_export_of_one_tag_says_the_other_is_needed(fake: FakeReaper, api, tmp_path: Path,
                                                       tag: str, missing: str) -> None:
    """With only [clean] takes (or only [bleed]) the export suggested a ``dataset session``
    command that failed on its missing folder; it now says which takes are still needed."""
    wav = make_wav(tmp_path / "take.wav", 2.0)
    fake.add_take(fake.add_item(fake.add_track(f"Snare [{tag}]"), 0.0, 1.0),
                  fake.file_source(str(wav)), "t")
    out = tmp_path / "export"
    plan = export_session(api, str(out), TaskExecutor())
    message = plan.message()
    assert plan.counts() == {tag: 1, missing: 0} and (out / tag).is_dir()
    assert "Next:" not in message and "session --" not in message and not (out / missing).exists()
    assert (f"No [{missing}] take was exported, and 'debleed dataset session' needs clean and "
            f"bleed takes: tag some [{missing}] and export again, or give its --{missing} "
            f"another export's {missing} folder") in message


def test_the_next_hint_runs_and_uses_every_clean_take(fake: FakeReaper, api,
                                                      tmp_path: Path) -> None:
    """The hinted command, run as printed, cuts a clip from every clean take (2 s and 1 s)."""
    from click.testing import CliRunner

    from debleed.cli.main import cli

    session(fake, tmp_path, seconds=2.0)
    plan = export_session(api, str(tmp_path / "export"), TaskExecutor())
    command = [str(tmp_path / "data") if word == "DATASET" else word
               for word in _next_command(plan.message())]
    result = CliRunner().invoke(cli, command[1:])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert len(manifest["clips"]) == 3  # 2 from the 2 s take, 1 from the 1 s take


def _hits(fake: FakeReaper, tmp_path: Path, lengths: tuple[float, ...]) -> None:
    """Clean takes of ``lengths`` (single hits cut as items) and a 2 s bleed take."""
    wav = make_wav(tmp_path / "snare.wav", 2.0 * len(lengths))
    snare = fake.add_track("Snare [clean]")
    for k, length in enumerate(lengths):
        fake.add_take(fake.add_item(snare, 2.0 * k, length), fake.file_source(str(wav)), "s",
                      D_STARTOFFS=2.0 * k)
    fake.add_take(fake.add_item(fake.add_track("Kit [bleed]"), 0.0, 2.0),
                  fake.file_source(str(make_wav(tmp_path / "kit.wav", 2.0, seed=3))), "k")


@pytest.mark.parametrize("lengths, suggested, note, clips", [
    ((0.6, 0.75, 0.9), "0.6", "the shortest clean take is 0.6 s", 3),
    ((0.3, 0.8, 1.2), "0.5", "the shortest it takes: 1 of 3 clean takes are shorter", 3)])
def test_the_hint_for_takes_under_a_second_is_a_clip_length_the_command_takes(
        fake: FakeReaper, api, tmp_path: Path, lengths: tuple[float, ...], suggested: str,
        note: str, clips: int) -> None:
    """Clean takes under a second (single hits) got ``--clip-seconds 1``, from which
    ``dataset session`` cuts no clip; the hint is now the shortest take floored to 0.1 s,
    at least the command's shortest clip (0.5 s), and the command runs as printed."""
    from click.testing import CliRunner

    from debleed.cli.main import cli

    _hits(fake, tmp_path, lengths)
    plan = export_session(api, str(tmp_path / "export"), TaskExecutor())
    command = [str(tmp_path / "data") if word == "DATASET" else word
               for word in _next_command(plan.message())]
    assert command[command.index("--clip-seconds") + 1] == suggested and note in plan.message()
    result = CliRunner().invoke(cli, command[1:])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "data" / "manifest.json").read_text())["clips"]) == clips


def test_clean_takes_too_short_for_any_clip_get_no_command(fake: FakeReaper, api,
                                                           tmp_path: Path) -> None:
    """Takes all shorter than the shortest clip give none at any ``--clip-seconds``: no
    command is printed, and the message says so."""
    _hits(fake, tmp_path, (0.2, 0.45))
    message = export_session(api, str(tmp_path / "export"), TaskExecutor()).message()
    assert "Next:" not in message and "session --" not in message
    assert ("every clean take is shorter than 0.5 s (the longest is 0.45 s), the shortest clip "
            "'debleed dataset session' cuts, so it would give no clip") in message


def test_reversed_and_section_looping_takes_are_exported_as_they_play(fake: FakeReaper, api,
                                                                      tmp_path: Path) -> None:
    """Both were refused with the denoise action's advice ("un-reverse it", "glue it"),
    though the export renders what a take plays and nothing is added to the item."""
    wav = make_wav(tmp_path / "clean.wav", 3.0)
    track = fake.add_track("Snare [clean]")
    root = fake.file_source(str(wav))
    looped = fake.add_item(track, 0.0, 2.0, loop=True)  # a 0.5-s section, four times
    fake.add_take(looped, fake.section_source(root, 1.0, 0.5), "loop")
    backwards = fake.add_item(track, 5.0, 0.5)
    fake.add_take(backwards, fake.section_source(root, 0.5, 1.0, reverse=True), "rev")
    out = tmp_path / "out"
    plan = export_session(api, str(out), TaskExecutor())
    assert plan.skipped == [] and len(plan.entries) == 2
    for entry, item in zip(plan.entries, (looped, backwards)):
        exported, rate = sf.read(out / entry["file"], dtype="float32", always_2d=True)
        frames = int(round(entry["length"] * rate))
        expected = fake.played(item.active, rate, 0.0, frames)
        assert exported.shape[0] == frames
        np.testing.assert_allclose(exported.T, expected, atol=1e-6)
    first_pass = sf.read(out / plan.entries[0]["file"], dtype="float32")[0]
    half = int(0.5 * rate)
    np.testing.assert_allclose(first_pass[:half], first_pass[half:2 * half], atol=1e-6)


def test_an_export_folder_holding_another_projects_export_is_refused(fake: FakeReaper, api,
                                                                     tmp_path: Path) -> None:
    """An export_dir shared by several projects lost each project's export to the next one,
    which reused its file names; the manifest now names its project."""
    session(fake, tmp_path)
    out = tmp_path / "shared"
    export_session(api, str(out), TaskExecutor())
    before = files(out)
    assert json.loads((out / MANIFEST).read_text())["project"] == fake.media_dir
    fake.media_dir = str(tmp_path / "another song")
    with pytest.raises(BridgeError, match=r"holds the training export of another project .*"
                                          r"delete its clean, bleed and export.json .* clear "
                                          r"export_dir in debleed.ini .*--out DIR"):
        export_session(api, str(out), TaskExecutor())
    assert files(out) == before


def test_a_moved_project_re_exports_into_its_own_folder(fake: FakeReaper, api,
                                                        tmp_path: Path) -> None:
    """export.json named its project by absolute path only: once the project folder was
    moved or renamed (an archive, a synced drive mounted elsewhere), every re-export into
    its own <media>/debleed-training was refused as another project's. It now also names
    the project relative to the export folder, which a move keeps."""
    session(fake, tmp_path)
    export_session(api, out_dir_for(api), TaskExecutor())
    moved = tmp_path / "archive" / "project renamed"
    moved.parent.mkdir()
    os.rename(tmp_path / "project", moved)
    fake.media_dir = str(moved / "Media")
    out = Path(out_dir_for(api))
    export_session(api, str(out), TaskExecutor())
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["project"] == fake.media_dir and manifest["project_from_export"] == ".."
    assert sorted(listed(out)) == sorted(f for f in files(out) if f.endswith(".wav"))
    assert len(listed(out)) == 3


def test_an_older_export_json_names_its_project_by_absolute_path(fake: FakeReaper, api,
                                                                 tmp_path: Path) -> None:
    """A manifest written before ``project_from_export`` is still read: its project
    re-exports in place; after a move the refusal says how to go on."""
    session(fake, tmp_path)
    out = Path(out_dir_for(api))

    def export_with_an_older_manifest() -> None:
        export_session(api, str(out), TaskExecutor())
        manifest = json.loads((out / MANIFEST).read_text())
        del manifest["project_from_export"]
        (out / MANIFEST).write_text(json.dumps(manifest))

    export_with_an_older_manifest()
    export_with_an_older_manifest()
    os.rename(tmp_path / "project", tmp_path / "moved")
    fake.media_dir = str(tmp_path / "moved" / "Media")
    out = Path(out_dir_for(api))
    with pytest.raises(BridgeError, match=r"or is this project's from before it moved\), "
                                          "delete its clean, bleed and export.json"):
        export_session(api, str(out), TaskExecutor())


def test_a_long_track_name_is_cut_in_the_file_name(fake: FakeReaper, api, tmp_path: Path) -> None:
    """A 300-character track name made the whole export fail past the name limit."""
    clean = make_wav(tmp_path / "clean.wav", 1.0)
    track = fake.add_track("snare " * 50 + "[clean]")
    fake.add_take(fake.add_item(track, 0.0, 0.5), fake.file_source(str(clean)), "c")
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    [name] = [p.name for p in (out / "clean").glob("*.wav")]
    assert name.startswith("0000_snare_snare") and len(name) == len("0000_") + 60 + len(".wav")


def test_a_track_renamed_in_case_only_keeps_its_export_on_a_case_blind_disk(
        fake: FakeReaper, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a disk that ignores case (macOS's default), the previous export's "snare" file
    and the new "Snare" one are one file: removing the stale name deleted the new export.
    The disk is imitated: names are compared and removed case-blind."""
    clean = make_wav(tmp_path / "clean.wav", 1.0)
    track = fake.add_track("snare [clean]")
    fake.add_take(fake.add_item(track, 0.0, 0.5), fake.file_source(str(clean)), "c")
    out = tmp_path / "export"
    export_session(api, str(out), TaskExecutor())
    track.name = "Snare [clean]"
    real_remove = os.remove

    def blind_remove(path: str) -> None:
        name = os.path.basename(path).casefold()
        folder = Path(path).parent
        newest = max((p for p in folder.iterdir() if p.name.casefold() == name),
                      key=lambda p: p.stat().st_mtime_ns)
        real_remove(newest)

    def blind_same(a: str, b: str) -> bool:
        return os.path.normpath(a).casefold() == os.path.normpath(b).casefold()

    monkeypatch.setattr(os, "remove", blind_remove)
    monkeypatch.setattr(os.path, "samefile", blind_same)
    export_session(api, str(out), TaskExecutor())
    listed_files = [entry["file"] for entry in json.loads((out / MANIFEST).read_text())["files"]]
    assert listed_files == ["clean/0000_Snare_clean_0.000_s.wav"]
    assert (out / listed_files[0]).is_file()

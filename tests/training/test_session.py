"""Session pairing: clean snare takes + bleed-only takes of other rates/channels/lengths."""

from __future__ import annotations

import json
import re
from pathlib import Path, PureWindowsPath

import numpy as np
import pytest
import soundfile as sf

from denoiser.errors import AudioError, ParameterError
from training.errors import DatasetError
from training.manifest import read_manifest
from training.oneshots import one_shot
from training.dataset import ClipFolder
from training.run import folder_info
from training.session import (BleedPart, CleanAudio, SessionConfig, SessionPlan,
                              bleed_split, build_session_dataset, detect_onsets,
                              make_session_clip, mono_take, plan_session, session_splits,
                              take_name)
from training.synth import CLIP_SECONDS, Clip, write_clip


def snare_take(seconds: float, rate: int, hits: list[float]) -> np.ndarray:
    take = np.zeros(int(seconds * rate), np.float32)
    shot = one_shot("snare", 190, 0.12, 0.3, 1.0, rate)
    for t in hits:
        start = int(t * rate)
        take[start:start + shot.size] += shot[: take.size - start]
    return take


@pytest.fixture
def session_dirs(tmp_path):
    clean, bleed = tmp_path / "clean", tmp_path / "bleed"
    clean.mkdir()
    bleed.mkdir()
    sf.write(clean / "snare_take1.wav", snare_take(2.5, 44100, [0.1, 0.6, 1.1, 1.6, 2.1]), 44100)
    stereo = np.stack([snare_take(1.2, 48000, [0.2, 0.7])] * 2, axis=1)
    sf.write(clean / "snare_take2.flac", stereo, 48000)
    rng = np.random.default_rng(0)
    hats = np.zeros((int(0.7 * 96000), 2), np.float32)
    hats[::12000] = 1.0
    hats = hats + 0.01 * rng.standard_normal(hats.shape).astype(np.float32)
    sf.write(bleed / "kit_no_snare.wav", hats * 0.2, 96000)  # shorter than a clip: looped
    return clean, bleed


def test_pairs_takes_of_any_rate_and_channels(session_dirs, tmp_path):
    clean_dir, bleed_dir = session_dirs
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean_dir, bleed_dir, config)
    assert plan.jobs == [(0, 0), (0, 48000), (1, 0)]
    clip = make_session_clip(plan, 0, seed=3, config=config)
    assert clip.noisy.shape == clip.clean.shape == clip.bleed.shape == (48000,)
    assert np.array_equal(clip.noisy, clip.clean + clip.bleed)
    assert np.sqrt(np.mean(clip.bleed[-4800:] ** 2)) > 0  # looped bleed reaches the end
    onsets = [o["time"] for o in clip.meta["onsets"]]
    assert onsets == pytest.approx([0.1, 0.6], abs=0.003)
    assert all(o["target"] and 1 <= o["velocity"] <= 127 for o in clip.meta["onsets"])

    out = build_session_dataset(plan, tmp_path / "out", seed=3, config=config)
    manifest = read_manifest(out)
    assert [c["id"] for c in manifest["clips"]] == ["session-00000", "session-00001",
                                                    "session-00002"]
    assert {c["split"] for c in manifest["clips"]} == {"train", "valid"}
    meta = json.loads((out / "session-00002" / "meta.json").read_text())
    assert [o["time"] for o in meta["onsets"]] == pytest.approx([0.2, 0.7], abs=0.003)


def test_detect_onsets_finds_quiet_hits_after_loud_ones():
    rate = 48000
    take = snare_take(1.0, rate, [0.1]) + 0.1 * snare_take(1.0, rate, [0.5])
    assert detect_onsets(take, rate) / rate == pytest.approx([0.1, 0.5], abs=0.002)
    assert detect_onsets(np.zeros(rate, np.float32), rate).size == 0


def test_detect_onsets_finds_ghost_notes_over_a_dc_offset():
    """A backbeat with ghost notes (velocity 40, about -17 dB) between its hits, a -80 dBFS
    noise floor and a -40 dBFS DC offset: measured about zero, the offset filled every
    quiet frame and half the hits (the ghost notes) were lost."""
    rate = 48000
    times = [0.25 + 0.5 * k for k in range(8)]
    ghost = (40 / 127) ** 1.7
    take = sum(snare_take(4.5, rate, [t]) * (0.5 if k % 2 else 0.5 * ghost)
               for k, t in enumerate(times))
    take = take + 1e-4 * np.random.default_rng(0).standard_normal(take.size)
    for offset in (0.0, 0.01):
        found = detect_onsets((take + offset).astype(np.float32), rate)
        assert found / rate == pytest.approx(times, abs=0.003)


def noise_bursts(rate: int, hits: list[float]) -> np.ndarray:
    """One second of silence with a 15 ms decaying noise burst at each hit time (s)."""
    n = int(0.015 * rate)
    burst = np.random.default_rng(0).standard_normal(n) * np.exp(-np.arange(n) / (0.003 * rate))
    take = np.zeros(rate, np.float32)
    for t in hits:
        take[int(t * rate):int(t * rate) + n] += burst.astype(np.float32)
    return take


def test_detect_onsets_keeps_a_hit_per_gap_through_a_fast_roll():
    # Hits 20 ms apart, closer than the 25 ms gap: spacing is measured from the last kept
    # onset, so every second hit is kept, not just the first of the roll.
    rate = 48000
    roll = noise_bursts(rate, [0.1 + 0.02 * k for k in range(10)])
    assert detect_onsets(roll, rate) / rate == pytest.approx([0.1, 0.14, 0.18, 0.22, 0.26],
                                                             abs=0.003)


def test_detect_onsets_finds_both_hits_of_a_flam():
    rate = 48000
    flam = noise_bursts(rate, [0.1, 0.13])
    assert detect_onsets(flam, rate) / rate == pytest.approx([0.1, 0.13], abs=0.003)


def test_a_clip_where_the_snare_rests_has_no_onsets_under_hum(tmp_path, session_dirs):
    """Hits in the first 2 s of a take, a rest in the last 2 s, 50 Hz hum at -60 dBFS
    under all of it: detected per clip, the rest clip's floor fell to the hum and each of
    its half cycles was a hit; detected on the take, the rest has none."""
    rate = 48000
    clean = tmp_path / "hum"
    clean.mkdir()
    take = snare_take(4.0, rate, [0.1, 0.6, 1.1, 1.6])
    take += (1e-3 * np.sin(2 * np.pi * 50 * np.arange(take.size) / rate)).astype(np.float32)
    sf.write(clean / "take.wav", take, rate, subtype="FLOAT")
    config = SessionConfig(clip_seconds=2.0)
    plan = plan_session(clean, session_dirs[1], config)
    hits, rest = (make_session_clip(plan, job, seed=1, config=config) for job in (0, 1))
    assert [o["time"] for o in hits.meta["onsets"]] == pytest.approx([0.1, 0.6, 1.1, 1.6],
                                                                    abs=0.003)
    assert rest.meta["onsets"] == []


def test_session_errors(tmp_path, session_dirs):
    clean_dir, bleed_dir = session_dirs
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no audio files"):
        plan_session(empty, bleed_dir)
    with pytest.raises(DatasetError, match="as long as one"):
        plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=5.0))
    plan = plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=1.0))
    with pytest.raises(DatasetError, match="may not contain the input"):
        build_session_dataset(plan, clean_dir.parent, seed=0)


@pytest.mark.parametrize("seconds, message", [
    (0.0, "short: every clean take is empty"),
    (0.3, r"take.wav: the longest clean take is only 0.3 s, shorter than the shortest clip "
          r"\(0.5 s\)")])
def test_takes_shorter_than_any_clip_are_named_not_a_clip_length_of_0(tmp_path, session_dirs,
                                                                     seconds, message):
    """An empty or 0.3 s take gave "--clip-seconds of at most 0", which no value meets."""
    clean = tmp_path / "short"
    clean.mkdir()
    sf.write(clean / "take.wav", snare_take(seconds, 48000, []), 48000)
    with pytest.raises(DatasetError, match=message) as error:
        plan_session(clean, session_dirs[1])
    assert "--clip-seconds" not in str(error.value)


def test_clean_and_bleed_folders_must_be_apart(tmp_path, session_dirs):
    """Takes are read from sub-folders too: a bleed folder inside the clean one made its
    bleed takes clean targets, and one folder as both paired snares with themselves."""
    clean_dir, bleed_dir = session_dirs
    inner = clean_dir / "bleed"
    inner.mkdir()
    (inner / "b.wav").write_bytes(next(bleed_dir.glob("*.wav")).read_bytes())
    for clean, bleed in ((clean_dir, inner), (clean_dir, clean_dir), (inner, clean_dir)):
        with pytest.raises(DatasetError, match="separate folders"):
            plan_session(clean, bleed)


def test_a_broken_take_is_refused_before_anything_is_written(tmp_path, session_dirs):
    """The last clean take holds a NaN: every take is read before the first clip is
    written, so the error comes before any work, and no output or staging folder exists."""
    clean_dir, bleed_dir = session_dirs
    broken = snare_take(1.2, 48000, [0.2, 0.7])
    broken[1000] = np.nan
    sf.write(clean_dir / "snare_take3.wav", broken, 48000, subtype="FLOAT")
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean_dir, bleed_dir, config)
    out = tmp_path / "data" / "session"
    with pytest.raises(AudioError, match="NaN"):
        build_session_dataset(plan, out, seed=0, config=config)
    assert not (tmp_path / "data").exists()


def test_a_clip_that_fails_midway_leaves_no_dataset(tmp_path, session_dirs, monkeypatch):
    """The disk fills at the third clip: the first two were already written, yet neither
    the dataset folder nor its hidden staging folder remains, nor the parent folder made
    for them."""
    clean_dir, bleed_dir = session_dirs
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean_dir, bleed_dir, config)
    written = []

    def write_or_fail(clip: Clip, folder: Path) -> None:
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        written.append(write_clip(clip, folder))

    monkeypatch.setattr("training.session.write_clip", write_or_fail)
    out = tmp_path / "data" / "session"
    with pytest.raises(OSError, match="No space"):
        build_session_dataset(plan, out, seed=0, config=config)
    assert len(written) == 2
    assert not out.exists()
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("seconds", [0.0, 0.001, CLIP_SECONDS[0] - 0.01, 601.0, float("nan")])
def test_clip_length_has_the_synthetic_datasets_limits(session_dirs, seconds):
    """A 1 ms clip would cut a take into thousands of 48-sample clips; 0 and NaN would
    divide by zero or fail to convert: all are refused like ``dataset synth`` refuses them."""
    clean_dir, bleed_dir = session_dirs
    with pytest.raises(DatasetError, match="--clip-seconds must be between 0.5 and 600"):
        plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=seconds))
    plan = plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=CLIP_SECONDS[0]))
    assert len(plan.jobs) == 5 + 2  # 2.5 s and 1.2 s takes in 0.5 s clips


@pytest.mark.parametrize("change, message", [
    ({"sample_rate": 7}, r"session: sample_rate = 7: must be a whole number in \[8000, 768000\]"),
    ({"clips_per_take": 0}, r"session: clips_per_take = 0: must be a whole number >= 1"),
    ({"bleed_gain_db": (6.0, -12.0)}, r"bleed_gain_db = \(6.0, -12.0\): must be \[low, high\], "
                                      "finite, low <= high"),
    ({"bleed_gain_db": (1e6, 1e6)}, r"bleed_gain_db = \(1000000.0, 1000000.0\): must lie within "
                                    r"\[-60, 24\]"),
    ({"peak_dbfs": (20.0, 30.0)}, r"peak_dbfs = \(20.0, 30.0\): .* both <= 0"),
    ({"peak_dbfs": (-90.0, -80.0)}, r"peak_dbfs = \(-90.0, -80.0\): must lie within \[-60, 0\]"),
    ({"onset_rise_db": float("nan")}, r"onset_rise_db = nan: must be a number in \(0, 60\]"),
    ({"onset_floor_db": 10.0}, r"onset_floor_db = 10.0: must be a number in \[-120, 0\]"),
    ({"onset_gap_ms": -1.0}, r"onset_gap_ms = -1.0: must be a number in \[0, 1000\]"),
])
def test_a_config_no_clip_can_be_cut_with_is_refused_before_any_work(session_dirs, tmp_path,
                                                                     change, message):
    """Unchecked, a 7 Hz rate and a reversed gain failed inside numpy, 1e6 dB overflowed,
    clips peaking at +25 dBFS were written, and 0 clips per take read as takes too short."""
    clean_dir, bleed_dir = session_dirs
    good = SessionConfig(clip_seconds=1.0)
    bad = SessionConfig(**{"clip_seconds": 1.0, **change})
    with pytest.raises(ParameterError, match=message):
        plan_session(clean_dir, bleed_dir, bad)
    plan = plan_session(clean_dir, bleed_dir, good)
    with pytest.raises(ParameterError, match=message):
        build_session_dataset(plan, tmp_path / "out", 0, bad)
    with pytest.raises(ParameterError, match=r"seed = -1: must be a whole number >= 0"):
        build_session_dataset(plan, tmp_path / "out", -1, good)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("inside", ["clean", "clean/ds", "bleed/sub/ds"])
def test_output_folder_inside_an_input_folder_is_refused(tmp_path, session_dirs, inside):
    """The next run would read the dataset's noisy/clean/bleed.wav as takes."""
    clean_dir, bleed_dir = session_dirs
    plan = plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=1.0))
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DatasetError, match="may not lie in the input folder"):
        build_session_dataset(plan, tmp_path / inside, seed=0)
    assert sorted(tmp_path.rglob("*")) == before


def antiphase(take: np.ndarray) -> np.ndarray:
    return np.stack([take, -take], axis=1)


@pytest.mark.parametrize("folder, make", [
    ("clean", lambda: np.zeros(2 * 48000, np.float32)),
    ("clean", lambda: antiphase(snare_take(2.0, 48000, [0.2, 0.7]))),
    ("bleed", lambda: np.zeros((48000, 2), np.float32)),
])
def test_a_take_silent_in_mono_is_refused(tmp_path, session_dirs, folder, make):
    """A silent clean take (or stereo channels that cancel when averaged) would make
    all-zero targets; a silent bleed take clips without bleed. Both are refused by name
    before anything is written."""
    clean_dir, bleed_dir = session_dirs
    silent = tmp_path / folder / "silent.wav"
    sf.write(silent, make(), 48000, subtype="FLOAT")
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean_dir, bleed_dir, config)
    with pytest.raises(DatasetError, match=re.escape(f"{silent}: take is silent")):
        build_session_dataset(plan, tmp_path / "out", seed=0, config=config)
    assert not (tmp_path / "out").exists()


def dither(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """TPDF dither of one 16-bit LSB, drawn for each sample of each channel."""
    return (rng.uniform(-0.5, 0.5, shape) + rng.uniform(-0.5, 0.5, shape)) / 32768


@pytest.mark.parametrize("folder, dithered", [("bleed", True), ("bleed", False),
                                              ("clean", True)])
def test_a_16_bit_take_in_antiphase_is_refused(tmp_path, session_dirs, folder, dithered):
    """Noise at 0.05 RMS, right channel inverted, written at 16 bits: each channel is
    quantised (and dithered) on its own, so the mono mix keeps -90 dBFS of noise, above
    the -100 dBFS silence floor, and the take passed; its clips had bleed 84-90 dB below
    the clean. It is refused by name as channels in antiphase."""
    clean_dir, bleed_dir = session_dirs
    rng = np.random.default_rng(4)
    noise = 0.05 * rng.standard_normal(2 * 48000)
    take = np.stack([noise, -noise], axis=1)
    if dithered:
        take += dither(take.shape, rng)
    path = tmp_path / folder / "antiphase.wav"
    sf.write(path, take, 48000, subtype="PCM_16")
    refuse_session(clean_dir, bleed_dir, tmp_path / "out",
                   f"{path}: take is silent after mixing its channels to mono: they are in antiphase")


def refuse_session(clean_dir: Path, bleed_dir: Path, out: Path, message: str) -> None:
    """Building a session dataset from these takes fails with ``message`` (its start) and
    leaves no output folder."""
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean_dir, bleed_dir, config)
    with pytest.raises(DatasetError, match=re.escape(message)):
        build_session_dataset(plan, out, seed=0, config=config)
    assert not out.exists()


def test_a_muted_16_bit_export_is_refused_as_silent(tmp_path, session_dirs):
    """A muted track exported at 16 bits with dither is 1-2 LSB of noise (-90 dBFS): above
    the kit samples' -100 dBFS silence floor, so it passed and made bleed-free clips."""
    clean_dir, bleed_dir = session_dirs
    path = bleed_dir / "muted.wav"
    sf.write(path, dither((2 * 48000, 2), np.random.default_rng(6)), 48000, subtype="PCM_16")
    refuse_session(clean_dir, bleed_dir, tmp_path / "out",
                   f"{path}: take is silent after mixing its channels to mono (it peaks under -80")


def close_mic_pair(take: np.ndarray) -> np.ndarray:
    """Top and bottom snare mics: the bottom one 0.3 ms later, 4 dB quieter and
    polarity-inverted, as a bottom mic is recorded (the pair partly cancels in mono)."""
    delay = int(0.0003 * 48000)
    bottom = -0.63 * np.concatenate([np.zeros(delay, np.float32), take[:-delay]])
    return np.stack([take, bottom], axis=1)


@pytest.mark.parametrize("make", [
    lambda take: take,
    lambda take: np.stack([take, 0.8 * take], axis=1),
    close_mic_pair,
    lambda take: 0.01 * close_mic_pair(take),  # at -40 dBFS: dither is 50 dB down
], ids=["mono", "correlated-stereo", "close-mic-pair", "quiet-close-mic-pair"])
def test_ordinary_takes_are_not_taken_for_antiphase(tmp_path, make):
    """Mono, correlated stereo and a pair of close mics (one inverted, as a bottom snare
    mic is) are dithered 16-bit takes like any export, and are read, not refused."""
    rng = np.random.default_rng(5)
    take = make(snare_take(1.0, 48000, [0.1, 0.6]))
    path = tmp_path / "take.wav"
    sf.write(path, take + dither(take.shape, rng), 48000, subtype="PCM_16")
    mono, rate = mono_take(str(path))
    assert rate == 48000 and np.max(np.abs(mono)) > 0.1 * np.max(np.abs(take))


def test_takes_are_named_by_their_path_in_the_take_folder(tmp_path, session_dirs):
    """Takes of two days with one name: the manifest and meta named all three
    ``snare.wav``, and training counted them as one clean take. They are named by their
    path relative to the --clean / --bleed folder, with / separators on every system."""
    _, bleed_dir = session_dirs
    clean = tmp_path / "s2" / "clean"
    for day in ("day1", "day2"):
        (clean / day).mkdir(parents=True)
        sf.write(clean / day / "snare.wav", snare_take(1.0, 48000, [0.1, 0.6]), 48000)
    sf.write(clean / "day2" / "snare.flac", snare_take(1.0, 48000, [0.2, 0.7]), 48000)
    (bleed_dir / "room").mkdir()
    (bleed_dir / "kit_no_snare.wav").rename(bleed_dir / "room" / "kit.wav")
    config = SessionConfig(clip_seconds=1.0)
    out = build_session_dataset(plan_session(clean, bleed_dir, config), tmp_path / "out",
                                seed=0, config=config)
    clips = read_manifest(out)["clips"]
    assert [c["clean_take"] for c in clips] == ["day1/snare.wav", "day2/snare.flac",
                                                "day2/snare.wav"]
    assert {c["bleed_take"] for c in clips} == {"room/kit.wav"}
    for clip in clips:
        meta = json.loads((out / clip["id"] / "meta.json").read_text())
        assert (meta["clean_take"], meta["bleed_take"]) == (clip["clean_take"],
                                                            clip["bleed_take"])
    assert folder_info(out, ClipFolder(out, split=None))["takes"] == {"clean": 3, "bleed": 1}


def test_a_take_name_has_slashes_on_windows_too():
    folder = PureWindowsPath(r"C:\session\clean")
    assert take_name(folder / "day1" / "snare.wav", folder) == "day1/snare.wav"


def test_hidden_files_beside_the_takes_are_not_takes(session_dirs):
    """macOS writes a ``._NAME.wav`` companion (no audio) beside each file copied to
    exFAT or SMB: one of them used to stop the whole session."""
    clean_dir, bleed_dir = session_dirs
    (clean_dir / "._snare_take1.wav").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    (bleed_dir / ".cache").mkdir()
    sf.write(bleed_dir / ".cache" / "old.wav", np.zeros(4800, np.float32), 48000)
    plan = plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=1.0))
    assert [p.name for p in plan.clean] == ["snare_take1.wav", "snare_take2.flac"]
    assert [p.name for p in plan.bleed] == ["kit_no_snare.wav"]
    # a folder named like audio was read as a file: "not a readable audio file"
    (bleed_dir / "day2.wav").mkdir()
    sf.write(bleed_dir / "day2.wav" / "kit.wav", 0.1 * np.ones(4800, np.float32), 48000)
    plan = plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=1.0))
    assert [p.name for p in plan.bleed] == ["kit.wav", "kit_no_snare.wav"]


def noise_take(folder: Path, name: str, seconds: float, rate: int = 48000) -> Path:
    """A take of quiet noise ``seconds`` long (planning reads headers only)."""
    path = folder / name
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate)), rate)
    return path


def test_the_plan_counts_the_clean_audio_the_clips_leave_out(tmp_path, session_dirs):
    """With 1 s clips, 0.8 s and 0.6 s takes give no clip and a 1.1 s take loses 0.1 s:
    the plan says how much of the 2.5 s is used and that shorter clips would use more."""
    _, bleed_dir = session_dirs
    clean = tmp_path / "short"
    clean.mkdir()
    for name, seconds in (("a.wav", 1.1), ("b.wav", 0.8), ("c.wav", 0.6)):
        noise_take(clean, name, seconds, 44100)
    audio = plan_session(clean, bleed_dir, SessionConfig(clip_seconds=1.0)).audio
    assert (audio.takes, audio.short_takes) == (3, 2)
    assert (audio.seconds, audio.used_seconds) == pytest.approx((2.5, 1.0))
    assert audio.capped_seconds == 0 and audio.shorter_clips_help

    whole = tmp_path / "whole"
    whole.mkdir()
    noise_take(whole, "long.wav", 3.4)
    audio = plan_session(whole, bleed_dir, SessionConfig(clip_seconds=1.0)).audio
    assert (audio.short_takes, audio.used_seconds) == (0, pytest.approx(3.0))
    assert not audio.shorter_clips_help  # 0.4 s left over: less than one clip
    capped = plan_session(whole, bleed_dir, SessionConfig(clip_seconds=1.0, clips_per_take=1))
    assert capped.audio.capped_seconds == pytest.approx(2.0)
    assert not capped.audio.shorter_clips_help  # the cap is the user's, not the clip length's


def test_a_wave64_take_is_planned_as_long_as_it_is_read(tmp_path, session_dirs,
                                                         listed_wave64):
    """The plan counted a take's frames with libsndfile alone, which reads a Wave64 (here
    under a .wav name: libsndfile goes by the content) to the end of the file: the list
    chunk a DAW writes after the audio made a take 10 frames short of 2 s 18 frames over
    it, and planned a second 1 s clip that ``load_take``, reading the take as counted,
    could not fill: a traceback (shapes 47990 and 48000) building the dataset."""
    _, bleed_dir = session_dirs
    clean = tmp_path / "w64"
    clean.mkdir()
    take = listed_wave64(clean / "take.wav", snare_take(2.0, 48000, [0.1, 1.1])[:-10], 48000)
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean, bleed_dir, config)
    assert plan.jobs == [(0, 0)]
    assert plan.audio.seconds == pytest.approx(95_990 / 48_000)
    assert mono_take(str(take))[0].size == 95_990
    assert make_session_clip(plan, 0, seed=3, config=config).clean.shape == (48_000,)


@pytest.mark.parametrize("suffix", [".w64", ".aifc", ".rf64", ".bwf"])
def test_takes_a_daw_records_to_other_containers_are_read(tmp_path, session_dirs, suffix):
    """A session folder of REAPER recordings can hold Wave64 (.w64), RF64 and Broadcast Wave
    (.bwf) takes, and AIFF-C from other DAWs; they were skipped as if not audio, so a folder
    of them gave no clean take."""
    _, bleed_dir = session_dirs
    clean = tmp_path / "takes"
    clean.mkdir()
    kind = {".w64": "W64", ".aifc": "AIFF", ".rf64": "RF64", ".bwf": "WAV"}[suffix]
    sf.write(clean / f"take{suffix}", snare_take(2.0, 48000, [0.1, 1.1]), 48000, format=kind)
    plan = plan_session(clean, bleed_dir, SessionConfig(clip_seconds=1.0))
    assert plan.jobs == [(0, 0), (0, 48000)]


def test_takes_all_shorter_than_a_clip_name_the_option(session_dirs):
    clean_dir, bleed_dir = session_dirs
    with pytest.raises(DatasetError, match=re.escape(
            "no clean take is as long as one 5 s clip (the longest is 2.5 s); "
            "give a --clip-seconds of at most 2.5")):
        plan_session(clean_dir, bleed_dir, SessionConfig(clip_seconds=5.0))


def test_clips_of_one_take_share_a_split(tmp_path, session_dirs):
    """A validation clip cut from a training take is not held-out audio: whole takes are
    assigned, seeded, at least one valid; the manifest says the split is by take."""
    _, bleed_dir = session_dirs
    clean = tmp_path / "takes"
    clean.mkdir()
    for k in range(4):
        sf.write(clean / f"take{k}.wav", snare_take(2.5, 48000, [0.1, 0.6, 1.1, 1.6, 2.1]),
                 48000)
    config = SessionConfig(clip_seconds=0.5)
    plan = plan_session(clean, bleed_dir, config)
    manifest = read_manifest(build_session_dataset(plan, tmp_path / "out", seed=1,
                                                   config=config))
    by_take: dict[str, set[str]] = {}
    for clip in manifest["clips"]:
        by_take.setdefault(clip["clean_take"], set()).add(clip["split"])
    assert all(len(splits) == 1 for splits in by_take.values()), by_take
    assert sorted(s for (s,) in by_take.values()) == ["train", "train", "train", "valid"]
    assert plan.split_by_take and manifest["split_by"] == "take"
    assert manifest["clean_audio"] == {"takes": 4, "short_takes": 0, "seconds": 10.0,
                                       "used_seconds": 10.0}
    assert manifest["bleed_takes"] == 1


def test_a_single_take_is_split_by_clip(tmp_path, session_dirs):
    """One take cannot be held out from itself: its clips are split one by one (and the
    manifest says so, for the command to warn)."""
    _, bleed_dir = session_dirs
    clean = tmp_path / "one"
    clean.mkdir()
    sf.write(clean / "take.wav", snare_take(2.5, 48000, [0.1, 0.6, 1.1, 1.6, 2.1]), 48000)
    config = SessionConfig(clip_seconds=0.5)
    plan = plan_session(clean, bleed_dir, config)
    assert not plan.split_by_take
    manifest = read_manifest(build_session_dataset(plan, tmp_path / "out", seed=1,
                                                   config=config))
    assert manifest["split_by"] == "clip"
    assert [c["split"] for c in manifest["clips"]].count("valid") == 1


def takes_and_bleed(tmp_path: Path, bleed_seconds: tuple[float, ...]) -> tuple[Path, Path]:
    """Five 2 s clean takes and bleed takes of the given lengths (noise, a take each)."""
    clean, bleed = tmp_path / "clean", tmp_path / "bleed"
    clean.mkdir()
    bleed.mkdir()
    for k in range(5):
        sf.write(clean / f"take{k}.wav", snare_take(2.0, 48000, [0.1, 0.6, 1.1, 1.6]), 48000)
    rng = np.random.default_rng(0)
    for k, seconds in enumerate(bleed_seconds):
        sf.write(bleed / f"song{k}.wav", 0.1 * rng.standard_normal(int(seconds * 48000)),
                 48000, subtype="FLOAT")
    return clean, bleed


def bleed_by_split(out: Path) -> dict[str, set[str]]:
    clips = read_manifest(out)["clips"]
    return {split: {c["bleed_take"] for c in clips if c["split"] == split}
            for split in ("train", "valid")}


def test_validation_clips_draw_bleed_from_their_own_bleed_takes(tmp_path):
    """Three bleed takes, five clean takes: every clip drew its bleed from any bleed take,
    so validation clips held training bleed sample for sample. Bleed takes are split too,
    seeded, at least one per split, and the same seed gives the same bytes."""
    clean, bleed = takes_and_bleed(tmp_path, (0.8, 0.8, 0.8))
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean, bleed, config)
    outs = [build_session_dataset(plan, tmp_path / f"out{k}", seed=3, config=config)
            for k in range(2)]
    by_split = bleed_by_split(outs[0])
    assert by_split["valid"] and by_split["train"]
    assert not by_split["valid"] & by_split["train"], by_split
    assert by_split["valid"] | by_split["train"] == {"song0.wav", "song1.wav", "song2.wav"}
    assert read_manifest(outs[0])["bleed_split_by"] == "take"
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert all((outs[0] / f).read_bytes() == (outs[1] / f).read_bytes() for f in files)
    splits = [session_splits(plan, seed, 0.2) for seed in range(6)]
    valid_takes = {bleed_split(plan, split, seed, config).parts["valid"]
                   for seed, split in enumerate(splits)}
    assert len(valid_takes) > 1  # the seed chooses


def test_one_long_bleed_take_is_cut_in_two_for_the_splits(tmp_path):
    """One 4 s bleed take and 1 s clips: validation clips (one take of five, a fifth of the
    clips) draw from its last 1 s, training clips from the first 3 s, never overlapping."""
    clean, bleed = takes_and_bleed(tmp_path, (4.0,))
    config = SessionConfig(clip_seconds=1.0)
    out = build_session_dataset(plan_session(clean, bleed, config), tmp_path / "out", seed=1,
                                config=config)
    assert read_manifest(out)["bleed_split_by"] == "time"
    starts: dict[str, list[float]] = {"train": [], "valid": []}
    for clip in read_manifest(out)["clips"]:
        meta = json.loads((out / clip["id"] / "meta.json").read_text())
        starts[clip["split"]].append(meta["bleed_start"])
    assert len(starts["valid"]) == 2 and len(starts["train"]) == 8
    assert all(start == 3.0 for start in starts["valid"])  # the last clip-long stretch
    assert all(0.0 <= start <= 2.0 for start in starts["train"])  # ends by 3 s
    assert len(set(starts["train"])) > 1


def test_one_short_bleed_take_is_shared_with_a_warning(tmp_path):
    """A bleed take shorter than two clips cannot give each split its own: both draw from
    all of it, and a warning says validation hears training bleed."""
    clean, bleed = takes_and_bleed(tmp_path, (1.5,))
    config = SessionConfig(clip_seconds=1.0)
    plan = plan_session(clean, bleed, config)
    with pytest.warns(UserWarning, match="song0.wav: the one bleed take is shorter than two "
                                         "1 s clips, so validation clips draw their bleed"):
        out = build_session_dataset(plan, tmp_path / "out", seed=1, config=config)
    assert read_manifest(out)["bleed_split_by"] == "none"
    assert bleed_split(plan, ["train"] * 10, 1, config).parts == {
        "train": (BleedPart(0),)}  # no validation clips: nothing to keep apart, no warning


def plan_of(*clips: int) -> SessionPlan:
    """A plan whose clean takes give ``clips`` clips each (no audio read)."""
    jobs = [(take, k) for take, n in enumerate(clips) for k in range(n)]
    audio = CleanAudio(takes=len(clips), short_takes=0, seconds=float(len(jobs)),
                       used_seconds=float(len(jobs)), capped_seconds=0.0, clip_seconds=1.0)
    return SessionPlan([Path("clean") / f"take{k}.wav" for k in range(len(clips))],
                       [Path("bleed") / "b.wav"],
                       jobs, (Path("clean"), Path("bleed")), audio)


def valid_takes(plan: SessionPlan, splits: list[str]) -> list[int]:
    takes = {take: split for (take, _), split in zip(plan.jobs, splits)}
    assert all(takes[take] == split for (take, _), split in zip(plan.jobs, splits))
    return sorted(take for take, split in takes.items() if split == "valid")


@pytest.mark.parametrize("seed", range(8))
def test_validation_takes_are_chosen_by_their_share_of_clips(seed):
    """Takes of 9 and 1 clips at 0.2: the 1-clip take is validation. Picking by a count of
    takes made either take validation, so 9 of 10 clips could validate and 1 train."""
    plan = plan_of(9, 1)
    assert valid_takes(plan, session_splits(plan, seed, 0.2)) == [1]
    plan = plan_of(1, 9)
    assert valid_takes(plan, session_splits(plan, seed, 0.2)) == [0]


@pytest.mark.parametrize("seed", range(4))
def test_validation_takes_stay_within_the_fraction(seed):
    """Five equal takes at 0.2: one validation take; fraction 0.5 of takes 4, 3, 2, 1:
    validation holds at most half the clips and at least one take trains."""
    plan = plan_of(2, 2, 2, 2, 2)
    assert len(valid_takes(plan, session_splits(plan, seed, 0.2))) == 1
    plan = plan_of(4, 3, 2, 1)
    splits = session_splits(plan, seed, 0.5)
    assert 1 <= splits.count("valid") <= 5 and "train" in splits
    assert session_splits(plan, seed, 0.0) == ["train"] * 10


def test_the_smallest_take_validates_when_every_take_exceeds_the_fraction():
    plan = plan_of(5, 3, 4)
    assert valid_takes(plan, session_splits(plan, 0, 0.1)) == [1]


@pytest.mark.parametrize("seed", range(8))
def test_a_takes_split_follows_its_name_not_its_place(seed):
    """A seeded permutation of the takes' places gave a session listing the same takes in
    another order (or with more takes, which the command finds sorted among them) other
    validation takes. Each take's draw comes from its name: listed backwards, every take
    keeps its split."""
    sizes = (3, 1, 2, 2, 1, 3, 2, 1, 1, 4)
    forward = plan_of(*sizes)
    backward = plan_of(*sizes)
    backward.clean.reverse()
    backward.jobs[:] = [(len(sizes) - 1 - take, k) for take, k in forward.jobs]
    names = {take: take_name(path, forward.folders[0]) for take, path in enumerate(forward.clean)}
    back = {take: take_name(path, backward.folders[0]) for take, path in enumerate(backward.clean)}
    assert ({names[t] for t in valid_takes(forward, session_splits(forward, seed, 0.2))}
            == {back[t] for t in valid_takes(backward, session_splits(backward, seed, 0.2))})


def test_a_seed_gives_the_same_take_split():
    plan = plan_of(3, 1, 2, 2, 1, 3, 2, 1, 1, 4)
    splits = {seed: session_splits(plan, seed, 0.2) for seed in range(6)}
    assert all(session_splits(plan, seed, 0.2) == split for seed, split in splits.items())
    assert len({tuple(split) for split in splits.values()}) > 1  # the seed matters
    assert all(split.count("valid") <= 4 for split in splits.values())

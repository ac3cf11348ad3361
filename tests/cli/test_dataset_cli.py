"""``debleed dataset synth`` / ``session`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from debleed.cli.main import cli
from training.oneshots import one_shot, write_synthetic_kit

HOURS = 5 * 1.0 / 3600  # five 1-second clips


@pytest.fixture(scope="module")
def kit_dir(tmp_path_factory) -> Path:
    return write_synthetic_kit(tmp_path_factory.mktemp("kit") / "kit", velocities=(0.4, 1.0))


def synth(out: Path, kit: Path, *extra: str, seed: int = 3):
    return CliRunner().invoke(cli, ["dataset", "synth", "--kit", str(kit), "--out", str(out),
                                    "--hours", str(HOURS), "--seed", str(seed),
                                    "--clip-seconds", "1", *extra])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_writes_clips_and_manifest_reproducibly(kit_dir, tmp_path):
    result = synth(tmp_path / "a", kit_dir)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert [c["split"] for c in manifest["clips"]].count("valid") == 1
    assert len(manifest["clips"]) == 5
    clip = tmp_path / "a" / manifest["clips"][0]["id"]
    noisy, rate = sf.read(clip / "noisy.wav", dtype="float32")
    clean, _ = sf.read(clip / "clean.wav", dtype="float32")
    bleed, _ = sf.read(clip / "bleed.wav", dtype="float32")
    assert rate == 48000 and noisy.size == 48000
    assert np.array_equal(noisy, clean + bleed)
    # same seed -> same bytes, also with worker processes
    assert synth(tmp_path / "b", kit_dir, "--jobs", "2").exit_code == 0
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_worker_processes_need_no_fork(kit_dir, tmp_path, monkeypatch):
    """Windows has no fork and macOS's is unsafe: with spawned workers (which get all they
    need as arguments) the dataset is the same bytes."""
    from training import synth as synth_module

    assert synth(tmp_path / "a", kit_dir).exit_code == 0
    monkeypatch.setattr(synth_module, "START_METHOD", "spawn")
    result = synth(tmp_path / "b", kit_dir, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert synth(tmp_path / "c", kit_dir, seed=4).exit_code == 0
    assert tree_bytes(tmp_path / "a") != tree_bytes(tmp_path / "c")


def tunings(root: Path) -> np.ndarray:
    return np.array([t for meta in root.glob("*/meta.json")
                     for t in json.loads(meta.read_text())["tuning_semitones"].values()])


def test_wide_pitch_probability_sets_the_tuning_span(kit_dir, tmp_path):
    """0: every piece within +-3 semitones; 1: every piece drawn from +-6, so some fall
    outside +-3; out of range: a usage error before anything is written."""
    assert synth(tmp_path / "narrow", kit_dir, "--wide-pitch-probability", "0").exit_code == 0
    assert synth(tmp_path / "wide", kit_dir, "--wide-pitch-probability", "1").exit_code == 0
    narrow, wide = tunings(tmp_path / "narrow"), tunings(tmp_path / "wide")
    assert narrow.size >= 10 and wide.size >= 10
    assert np.abs(narrow).max() <= 3.0
    assert np.abs(wide).max() <= 6.0 and np.mean(np.abs(wide) > 3.0) >= 0.2
    result = synth(tmp_path / "bad", kit_dir, "--wide-pitch-probability", "1.5")
    assert result.exit_code == 2 and "1.5" in result.output
    assert not (tmp_path / "bad").exists()


def test_procedural_snare_probability(kit_dir, tmp_path):
    """1: every clip's snare is a procedural one, recorded in meta.json; out of range: a
    usage error before anything is written."""
    result = synth(tmp_path / "proc", kit_dir, "--procedural-snare-probability", "1")
    assert result.exit_code == 0, result.output
    metas = [json.loads(m.read_text()) for m in (tmp_path / "proc").glob("*/meta.json")]
    assert len(metas) == 5
    assert all(140 <= m["procedural_snare_hz"] <= 480 for m in metas)
    result = synth(tmp_path / "bad", kit_dir, "--procedural-snare-probability", "-0.1")
    assert result.exit_code == 2 and "-0.1" in result.output
    assert not (tmp_path / "bad").exists()


def test_test_kit_needs_split_test(tmp_path):
    kit = write_synthetic_kit(tmp_path / "pearl", velocities=(1.0,), name="The Black Pearl 1.0")
    result = synth(tmp_path / "out", kit)
    assert result.exit_code == 1
    assert "public test kit" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    result = synth(tmp_path / "out", kit, "--split", "test")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {c["split"] for c in manifest["clips"]} == {"test"}


def test_user_errors_are_one_line(kit_dir, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    result = synth(busy, kit_dir)
    assert result.exit_code == 1 and "not empty" in result.output
    assert (busy / "keep.txt").read_text() == "mine"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "drumkit.xml").write_text("<drumkit_info><instrumentList>")
    result = synth(tmp_path / "o2", broken)
    assert result.exit_code == 1 and "malformed drumkit.xml" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("intruder", [False, True])
def test_a_failed_synth_removes_the_folders_it_made(kit_dir, tmp_path, monkeypatch, intruder):
    """A disk that fills up at the third clip: the command made ``new/deeper`` to stage the
    dataset in, and removes both again; the folder that was there already stays, and so
    does a folder another program has put a file into meanwhile (with those above it)."""
    import errno

    from training import synth as synth_module

    kept = tmp_path / "kept"
    kept.mkdir()
    out = kept / "new" / "deeper" / "data"
    write_clip = synth_module.write_clip

    def disk_full(clip, folder):
        if Path(folder).name.endswith("2"):
            if intruder:
                (kept / "new" / "theirs.txt").write_text("not the command's")
            raise OSError(errno.ENOSPC, "No space left on device", str(folder))
        return write_clip(clip, folder)

    monkeypatch.setattr(synth_module, "write_clip", disk_full)
    result = synth(out, kit_dir)
    assert result.exit_code == 1 and "No space left on device" in result.output
    if intruder:
        assert sorted(p.name for p in kept.rglob("*")) == ["new", "theirs.txt"]
    else:
        assert list(kept.iterdir()) == []


def test_more_hours_than_the_disk_holds_are_refused_before_writing(kit_dir, tmp_path, refused):
    """A typo (1e9 hours: about 2 billion GB) is a one-line error, not a traceback from a
    2-TiB allocation or a disk filled by half a dataset."""
    result = refused(lambda: CliRunner().invoke(
        cli, ["dataset", "synth", "--kit", str(kit_dir), "--out", str(tmp_path / "huge"),
              "--hours", "1e9", "--seed", "0"]))
    assert "GB free" in result.stderr


def test_session_command(tmp_path):
    clean, bleed = tmp_path / "clean", tmp_path / "bleed"
    clean.mkdir()
    bleed.mkdir()
    take = np.zeros(2 * 44100, np.float32)
    shot = one_shot("snare", 190, 0.1, 0.2, 1.0, 44100)
    for t in (0.2, 0.7, 1.2, 1.7):
        take[int(t * 44100):int(t * 44100) + shot.size] += shot
    sf.write(clean / "take.wav", take, 44100)
    sf.write(bleed / "bleed.wav", 0.05 * np.random.default_rng(0).standard_normal((48000, 2)),
             48000)
    result = CliRunner().invoke(cli, ["dataset", "session", "--clean", str(clean), "--bleed",
                                      str(bleed), "--out", str(tmp_path / "out"),
                                      "--clip-seconds", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["clips"]) == 2 and manifest["source"] == "session"


def session_takes(tmp_path: Path, seconds: tuple[float, ...]) -> tuple[Path, Path]:
    """Clean takes of the given lengths (snare hits every half second) and a bleed take."""
    clean, bleed = tmp_path / "clean", tmp_path / "bleed"
    clean.mkdir()
    bleed.mkdir()
    shot = one_shot("snare", 190, 0.1, 0.2, 1.0, 48000)
    for k, length in enumerate(seconds):
        take = np.zeros(int(length * 48000), np.float32)
        for start in range(0, take.size, 24000):
            take[start:start + shot.size] += shot[: take.size - start]
        sf.write(clean / f"take{k}.wav", take, 48000)
    sf.write(bleed / "bleed.wav", 0.05 * np.random.default_rng(0).standard_normal(48000), 48000)
    return clean, bleed


def session(clean: Path, bleed: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["dataset", "session", "--clean", str(clean), "--bleed",
                                    str(bleed), "--out", str(out), *extra])


def test_session_reports_the_clean_audio_it_left_out(tmp_path):
    """Takes of 1.1, 0.8 and 0.6 s in 1 s clips give one clip: the command used to print
    "1 clips" only, the two short takes and the last 0.1 s dropped without a word. One
    take giving clips cannot be held out from itself, which is said too."""
    clean, bleed = session_takes(tmp_path, (1.1, 0.8, 0.6))
    result = session(clean, bleed, tmp_path / "out", "--clip-seconds", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("out: 1 clips (0.00 h)")
    assert result.stderr.splitlines()[-2:] == [
        "clean audio: 1.0 s of 2.5 s used; 2 of 3 takes shorter than one 1 s clip; "
        "a shorter --clip-seconds uses more of it",
        "Warning: one clean take gives clips, so its clips are split train/valid one by one "
        "and validation is not held-out audio; export more takes to validate on a take "
        "training never hears"]


def test_session_that_uses_its_audio_names_no_option(tmp_path):
    clean, bleed = session_takes(tmp_path, (2.0, 1.0))
    result = session(clean, bleed, tmp_path / "out", "--clip-seconds", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == ("clean audio: 3.0 s of 3.0 s used; 0 of 2 takes "
                                              "shorter than one 1 s clip")
    # the 1 s bleed take cannot give each split a clip of its own: said on one line
    assert f"Warning: {bleed / 'bleed.wav'}: the one bleed take is shorter than two 1 s " \
        "clips" in result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["split_by"] == "take"
    # the 1-clip take: the 2-clip take would make 2 of 3 clips validation
    assert [(c["clean_take"], c["split"]) for c in manifest["clips"]].count(
        ("take1.wav", "valid")) == 1
    assert [c["split"] for c in manifest["clips"]].count("valid") == 1


def test_session_of_takes_all_shorter_than_a_clip_names_the_option(tmp_path, refused):
    clean, bleed = session_takes(tmp_path, (0.8, 0.6))
    result = refused(lambda: session(clean, bleed, tmp_path / "out"))
    assert "(the longest is 0.8 s); give a --clip-seconds of at most 0.8" in result.stderr


def test_session_clip_length_default_is_session_configs(tmp_path, monkeypatch):
    """Without --clip-seconds the command cuts clips of ``SessionConfig.clip_seconds``: the
    option's own ``default=10.0`` was a second copy of it that could drift."""
    from dataclasses import dataclass

    from training import session as session_module

    @dataclass(frozen=True)
    class HalfSecondClips(session_module.SessionConfig):
        clip_seconds: float = 0.5

    monkeypatch.setattr(session_module, "SessionConfig", HalfSecondClips)
    clean, bleed = session_takes(tmp_path, (1.0, 0.5))
    result = session(clean, bleed, tmp_path / "out")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["clip_seconds"] == 0.5 and len(manifest["clips"]) == 3


def test_session_help_and_the_reaper_export_state_session_configs_clip_length():
    """The 10-s default is also written in the help text and in the REAPER bridge's
    export check (a standard-library module that cannot import training), as are the
    shortest clip and the audio suffixes read: all must say what ``SessionConfig``,
    ``CLIP_SECONDS`` and ``AUDIO_SUFFIXES`` do."""
    from reaper_bridge.export import (SESSION_AUDIO_SUFFIXES, SESSION_CLIP_SECONDS,
                                      SESSION_SHORTEST_CLIP)
    from training.kits import AUDIO_SUFFIXES
    from training.session import SessionConfig
    from training.synth import CLIP_SECONDS

    default = SessionConfig().clip_seconds
    assert SESSION_CLIP_SECONDS == default and SESSION_SHORTEST_CLIP == CLIP_SECONDS[0]
    assert SESSION_AUDIO_SUFFIXES == AUDIO_SUFFIXES
    result = CliRunner().invoke(cli, ["dataset", "session", "--help"])
    assert result.exit_code == 0, result.output
    assert f"(default {default:g})" in " ".join(result.output.split())


def test_as_recorded_turns_tone_and_kit_pairing_off(kit_dir, tmp_path):
    second = write_synthetic_kit(tmp_path / "kit2", velocities=(1.0,), seed=5, name="second")
    result = synth(tmp_path / "plain", kit_dir, "--kit", str(second), "--as-recorded")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert manifest["config"]["cross_kit_probability"] == 0.0
    assert manifest["config"]["mic"]["snare_eq_probability"] == 0.0
    for entry in manifest["clips"]:
        meta = json.loads((tmp_path / "plain" / entry["id"] / "meta.json").read_text())
        assert meta["kit"] == meta["bleed_kit"] and meta["snare_eq"] is False


def test_pack_kit_writes_kits_that_synth_reads(kit_dir, tmp_path, refused):
    """``debleed dataset pack-kit``: the packed copy renders the same clips as the original."""
    packed = tmp_path / "packed"
    result = CliRunner().invoke(cli, ["dataset", "pack-kit", str(kit_dir), "--out", str(packed),
                                      "--max-layers", "1"])
    assert result.exit_code == 0, result.output
    assert "1 kits" in result.output and (packed / "kit" / "drumkit.xml").is_file()
    assert synth(tmp_path / "clips", packed / "kit").exit_code == 0
    full = tmp_path / "full"
    assert CliRunner().invoke(cli, ["dataset", "pack-kit", str(kit_dir), "--out", str(full)]).exit_code == 0
    assert synth(tmp_path / "a", kit_dir).exit_code == 0 and synth(tmp_path / "b", full / "kit").exit_code == 0
    a, _ = sf.read(str(tmp_path / "a" / "clip-00000" / "noisy.wav"))
    b, _ = sf.read(str(tmp_path / "b" / "clip-00000" / "noisy.wav"))
    assert 10 * np.log10(np.sum(a**2) / np.sum((a - b) ** 2)) > 50
    refused(lambda: CliRunner().invoke(cli, ["dataset", "pack-kit", str(kit_dir), "--out", str(full)]))
    (tmp_path / "notes.txt").write_text("not a kit\n")
    refused(lambda: CliRunner().invoke(cli, ["dataset", "pack-kit", str(kit_dir), str(tmp_path / "notes.txt"),
                                             "--out", str(tmp_path / "more")]))


def test_pack_kit_warns_about_a_missing_sample_in_one_line(kit_missing_an_extra, tmp_path):
    """A kit naming a sample that is not there: pack-kit skips it and says so in one line,
    without Python's source-line echo."""
    result = CliRunner().invoke(cli, ["dataset", "pack-kit", str(kit_missing_an_extra),
                                      "--out", str(tmp_path / "packed")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "cowbell.wav" in line]
    assert len(warnings) == 1 and warnings[0].startswith("Warning: "), result.output
    assert "warnings.warn(" not in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("1 kits")


def test_synth_takes_the_synthesis_options_train_takes(kit_dir, tmp_path):
    """``--synth JSON`` sets what ``train --synth`` sets, so a set scored after a round can
    hold the passage the round trained on: here a ghost stroke with every kick, recorded
    in the manifest and played in the clips, and the clip length from the JSON."""
    result = synth(tmp_path / "ghosts", kit_dir, "--synth",
                   '{"groove": {"kick_ghost_probability": 1}, "bleed_only_probability": 0}')
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "ghosts" / "manifest.json").read_text())
    assert manifest["config"]["groove"]["kick_ghost_probability"] == 1.0
    assert manifest["config"]["groove"]["ghost_probability"] == 0.12  # the rest as defaults
    on_kicks = 0
    for entry in manifest["clips"]:
        meta = tmp_path / "ghosts" / entry["id"] / "meta.json"
        onsets = json.loads(meta.read_text())["onsets"]
        kicks = np.array([o["time"] for o in onsets if o["instrument"] == "kick"])
        ghosts = [o["time"] for o in onsets if o["instrument"] == "snare" and o["velocity"] <= 45]
        on_kicks += sum(bool(kicks.size) and np.abs(kicks - time).min() < 0.05 for time in ghosts)
    assert on_kicks >= 3
    result = CliRunner().invoke(cli, ["dataset", "synth", "--kit", str(kit_dir), "--out",
                                      str(tmp_path / "long"), "--hours", str(4 / 3600), "--seed",
                                      "3", "--synth", '{"clip_seconds": 2}'])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "long" / "manifest.json").read_text())
    assert len(manifest["clips"]) == 2 and manifest["config"]["clip_seconds"] == 2.0
    assert result.output.rstrip().endswith("2 clips (0.00 h)")


def test_a_setting_given_as_a_flag_or_in_the_json_is_recorded_alike(kit_dir, tmp_path):
    """JSON's whole numbers are recorded as the float settings they set: the manifest of
    ``--synth '{"floor_probability": 1}'`` said 1 where ``--floor-probability 1``'s said 1.0."""
    flags = synth(tmp_path / "flags", kit_dir, "--floor-probability", "1")
    given = synth(tmp_path / "json", kit_dir, "--synth",
                  '{"floor_probability": 1, "groove": {"style_weights": {"swell": 3}}}')
    assert flags.exit_code == 0 and given.exit_code == 0, flags.output + given.output
    config = json.loads((tmp_path / "json" / "manifest.json").read_text())["config"]
    assert isinstance(config["groove"]["style_weights"]["swell"], float)
    config["groove"]["style_weights"]["swell"] = 0.6  # the flags' default weight
    expected = json.loads((tmp_path / "flags" / "manifest.json").read_text())["config"]
    assert json.dumps(config) == json.dumps(expected)


def test_synth_help_states_synth_configs_clip_length():
    """``--clip-seconds`` has no default of its own (``--synth`` may set the length), so
    its help states ``SynthConfig``'s."""
    from training.synth import SynthConfig

    result = CliRunner().invoke(cli, ["dataset", "synth", "--help"])
    assert result.exit_code == 0, result.output
    assert f"(default {SynthConfig().clip_seconds:g})" in " ".join(result.output.split())


@pytest.mark.parametrize("extra, message", [
    (["--synth", '{"groove": {"kick_ghost_probability": 2}}'],
     "dataset synth: synth option groove.kick_ghost_probability = 2: must be a probability"),
    (["--synth", '{"sample_rate": 44100}'], "dataset synth: unknown synth option ['sample_rate']"),
    (["--synth", '{"groove": {"kick": 1}}'],
     "dataset synth: synth option groove: unknown setting ['kick']"),
    (["--synth", "[1]"], "--synth: expected a JSON object"),
    (["--synth", '{"floor_probability": 1}', "--floor-probability", "0.5"],
     "dataset synth: --floor-probability and --synth's floor_probability: give it once"),
    (["--synth", '{"clip_seconds": 2}'],
     "dataset synth: --clip-seconds and --synth's clip_seconds: give it once"),
    (["--synth", '{"cross_kit_probability": 0.5}', "--as-recorded"],
     "dataset synth: --as-recorded sets --synth's cross_kit_probability to 0: give it once"),
    (["--as-recorded", "--synth", '{"mic": {"snare_eq_probability": 1}}'],
     "dataset synth: --as-recorded sets --synth's mic.snare_eq_probability to 0: give it once")])
def test_a_bad_synth_option_is_one_line_and_writes_nothing(kit_dir, tmp_path, extra, message):
    result = synth(tmp_path / "out", kit_dir, *extra)
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_groove_settings_with_midi_grooves_are_refused(kit_dir, tmp_path):
    """``--midi`` replaces the generated grooves, so ``--synth``'s ``groove`` would set
    nothing: refused in one line, before the MIDI file is read or a folder made."""
    midi = tmp_path / "groove.mid"
    midi.write_bytes(b"MThd")
    result = synth(tmp_path / "out", kit_dir, "--midi", str(midi), "--synth",
                   '{"groove": {"kick_ghost_probability": 0.5}}')
    assert result.exit_code == 1, result.output
    assert result.output.strip() == ("Error: dataset synth: --synth's groove sets the generated "
                                     "grooves, which --midi replaces: give one of them")
    assert not (tmp_path / "out").exists()

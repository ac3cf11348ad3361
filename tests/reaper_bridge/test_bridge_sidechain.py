"""The pre-gate keyed by another REAPER track (``sidechain_track``), on the fake REAPER."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_reaper import FakeReaper, Track
from reaper_helpers import halve

from denoiser.gate import GateConfig, apply_gate
from reaper_bridge import actions
from reaper_bridge.bridge import denoise, executor_for
from reaper_bridge.items import BridgeError
from reaper_bridge.processing import TaskExecutor
from reaper_bridge.settings import BridgeSettings, load_settings, save_settings, settings_path

RATE = 48000
GATE = {"threshold_db": -30.0, "range_db": float("-inf")}


def write(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples.T.astype(np.float32), rate, subtype="FLOAT")
    return path


def steady_bleed(seconds: float, seed: int = 0) -> np.ndarray:
    """Bleed 34 dB under full scale: never opens a -30 dB gate on its own."""
    return 0.02 * np.random.default_rng(seed).standard_normal((1, int(seconds * RATE)))


def pulse(seconds: float, at: float, level: float = 0.8) -> np.ndarray:
    """A trigger file: silence with one 10-ms pulse at ``at`` seconds."""
    data = np.zeros((1, int(seconds * RATE)))
    data[0, int(at * RATE): int((at + 0.01) * RATE)] = level
    return data


def trigger_track(fake: FakeReaper, tmp_path: Path, position: float, at: float,
                  name: str = "Kick Trigger") -> Track:
    track = fake.add_track(name)
    item = fake.add_item(track, position, 0.5, selected=False)
    fake.add_take(item, fake.file_source(str(write(tmp_path / f"{name}.wav", pulse(0.5, at)))),
                  "trigger")
    return track


def expected_gate(snare: np.ndarray, key_start: int, key: np.ndarray, key_frames: int) -> np.ndarray:
    """The whole snare file gated by a key that holds ``key`` from ``key_start`` and is
    ``key_frames`` long: what the bridge must render, zero-padded like the CLI's sidechain."""
    detector = np.zeros((2, max(key_frames, snare.shape[-1])), np.float32)
    detector[:, key_start:key_start + key.shape[1]] = key  # past its end: silence
    return apply_gate(snare, RATE, GateConfig(**GATE), sidechain=detector[:, :snare.shape[-1]])


def test_gate_take_is_keyed_by_the_sidechain_track(fake: FakeReaper, api, tmp_path: Path) -> None:
    """The snare item plays its file from 0.5 s at project time 2.0 s, so the file's first
    sample sits at project 1.5 s; the trigger track's pulse at project 2.45 s must open the
    gate at 0.95 s into the file, and nothing else may."""
    snare = steady_bleed(3.0)
    item = fake.add_item(fake.add_track("Snare"), 2.0, 1.0)
    original = fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", snare))),
                             "Snare", D_STARTOFFS=0.5)
    trigger_track(fake, tmp_path, position=2.25, at=0.2)
    outcome = denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track="  kick trigger ")

    assert outcome.takes_added == 1 and outcome.files_processed == 1
    new = item.active
    assert new is not original and new.name == "Snare [gate]"
    assert new.values["D_STARTOFFS"] == 0.5  # plays the processed file on the same timeline
    result = sf.read(new.source.filename, dtype="float32", always_2d=True)[0].T
    # the key covers the file from its first sample to the item's end (1.5 s), then pads
    expected = expected_gate(snare, int(0.75 * RATE), pulse(0.5, 0.2), int(1.5 * RATE))
    np.testing.assert_allclose(result, expected, atol=1e-6)
    opened = slice(int(0.951 * RATE), int(0.959 * RATE))
    np.testing.assert_allclose(result[:, opened], snare[:, opened], atol=1e-6)
    assert np.abs(result[:, : int(0.9 * RATE)]).max() == 0.0
    assert np.abs(result[:, int(1.1 * RATE):]).max() == 0.0


def test_one_file_on_two_timelines_is_gated_twice(fake: FakeReaper, api, tmp_path: Path) -> None:
    """Two items cut from one file at different places against the trigger: each gets its
    own keyed file. Unkeyed, they would share one processed file."""
    snare = steady_bleed(2.0)
    wav = write(tmp_path / "snare.wav", snare)
    track = fake.add_track("Snare")
    first, second = fake.add_item(track, 0.0, 0.5), fake.add_item(track, 5.0, 0.5)
    fake.add_take(first, fake.file_source(str(wav)), "A")
    fake.add_take(second, fake.file_source(str(wav)), "B")
    trigger = trigger_track(fake, tmp_path, position=0.0, at=0.25)
    fake.add_take(fake.add_item(trigger, 5.0, 0.5, selected=False),
                  fake.file_source(str(tmp_path / "Kick Trigger.wav")), "trigger again",
                  D_STARTOFFS=0.1)  # the same pulse, 0.1 s earlier against item B
    outcome = denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track="Kick Trigger")
    assert outcome.files_processed == 2
    a, b = (sf.read(i.active.source.filename, dtype="float32", always_2d=True)[0].T
            for i in (first, second))
    opens = [int(np.argmax(np.abs(x).max(axis=0) > 0)) / RATE for x in (a, b)]
    assert opens[0] == pytest.approx(0.25 - 0.003, abs=0.002)  # the 3-ms pre-open
    assert opens[1] == pytest.approx(0.15 - 0.003, abs=0.002)


def test_cache_follows_the_sidechain_audio(fake: FakeReaper, api, tmp_path: Path) -> None:
    """Running again reuses the gated file; moving the trigger re-processes, since the old
    file was gated by audio the trigger track no longer plays."""
    item = fake.add_item(fake.add_track("Snare"), 0.0, 1.0)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", steady_bleed(1.0)))),
                  "Snare")
    trigger = trigger_track(fake, tmp_path, position=0.0, at=0.2)
    key = BridgeSettings(gate=GATE, sidechain_track="Kick Trigger").cache_key()
    run = lambda: denoise(api, ("gate",), TaskExecutor(gate=GATE), key,  # noqa: E731
                          sidechain_track="Kick Trigger")
    assert run().files_processed == 1
    first = item.takes[1].source.filename
    again = run()
    assert (again.files_processed, again.files_cached) == (0, 1)
    trigger.items[0].position = 0.3
    moved = run()
    assert (moved.files_processed, moved.files_cached) == (1, 0)
    # The item keeps one [gate] take, now playing the file gated by the moved trigger.
    assert len(item.takes) == 2 and item.takes[1].source.filename != first
    assert Path(first).is_file()  # the earlier result stays for undo


def test_take_at_another_playrate_is_rendered_and_keyed_from_the_item_start(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    snare = steady_bleed(3.0)
    item = fake.add_item(fake.add_track("Snare"), 1.0, 1.0)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", snare))), "Snare",
                  D_PLAYRATE=1.5)
    trigger_track(fake, tmp_path, position=1.3, at=0.3)  # sounds 0.6 s into the item
    denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track="Kick Trigger")
    new = item.active
    assert (new.values["D_STARTOFFS"], new.values["D_PLAYRATE"]) == (0.0, 1.0)  # rendered
    result = sf.read(new.source.filename, dtype="float32", always_2d=True)[0].T
    assert result.shape[1] == RATE  # the item's second, as it plays
    heard = np.flatnonzero(np.abs(result).max(axis=0) > 0) / RATE
    assert heard[0] == pytest.approx(0.6 - 0.003, abs=0.002) and heard[-1] < 0.8


def test_a_looped_take_is_rendered_and_keyed_over_every_pass(fake: FakeReaper, api,
                                                             tmp_path: Path) -> None:
    """An item looping its 1-s file twice was keyed on the file's timeline, which holds
    the first pass only: a trigger in the second pass opened no gate."""
    snare = steady_bleed(1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 2.0, loop=True)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", snare))), "Snare")
    trigger_track(fake, tmp_path, position=1.25, at=0.2)  # fires 1.45 s in: the second pass
    denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track="Kick Trigger")
    new = item.active
    assert new.values["D_STARTOFFS"] == 0.0 and new.source.length == pytest.approx(2.0)
    played = fake.play(new, RATE, 1, 0.0, 2 * RATE)[0]
    heard = np.flatnonzero(np.abs(played) > 0) / RATE
    assert heard.size and heard[0] == pytest.approx(1.45 - 0.003, abs=0.002) and heard[-1] < 1.7


@pytest.mark.parametrize("name,message", [
    ("Nope", "not found"), ("Dup", "2 tracks"),
    # REAPER reads the key before the track's FX: a MIDI trigger there is silence, and every
    # gated take came out shut, with a success message
    ("Trigger", "sidechain track 'Trigger' holds only MIDI"),
    # an empty trigger track keys no hit: every gated take came out silent, as with MIDI
    ("Empty", "sidechain track 'Empty' is silent over every selected item: the gate would "
              "shut them whole")])
def test_missing_ambiguous_midi_or_empty_sidechain_track_changes_nothing(
        fake: FakeReaper, api, tmp_path: Path, name: str, message: str) -> None:
    item = fake.add_item(fake.add_track("Snare"), 0.0, 1.0)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", steady_bleed(1.0)))),
                  "Snare")
    fake.add_track("Dup")
    fake.add_track("dup")
    fake.add_take(fake.add_item(fake.add_track("Trigger"), 0.0, 1.0), fake.midi_source(), "MIDI")
    fake.add_track("Empty")
    with pytest.raises(BridgeError, match=message):
        denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track=name)
    assert len(item.takes) == 1 and fake.undo == [] and not any(Path(fake.media_dir).iterdir())


def test_an_item_the_sidechain_track_is_silent_over_is_skipped(fake: FakeReaper, api,
                                                               tmp_path: Path) -> None:
    """The trigger plays over the first item only: the second, keyed by silence, would come
    out silent whole. It is skipped and named, as the CLI refuses a silent --sidechain; the
    first gets its take."""
    wav = write(tmp_path / "snare.wav", steady_bleed(1.0))
    track = fake.add_track("Snare")
    first, second = fake.add_item(track, 0.0, 0.5), fake.add_item(track, 5.0, 0.5)
    fake.add_take(first, fake.file_source(str(wav)), "A")
    fake.add_take(second, fake.file_source(str(wav)), "B")
    trigger_track(fake, tmp_path, position=0.0, at=0.25)
    outcome = denoise(api, ("debleed", "gate"), executor_for({"debleed": halve, "gate": halve}),
                      sidechain_track="Kick Trigger")
    assert (outcome.takes_added, outcome.files_processed) == (2, 2)
    assert [take.name for take in first.takes] == ["A", "A [debleed]", "A [gate]"]
    assert len(second.takes) == 1
    assert outcome.skipped == ["Snare @ 5.000 s: sidechain track 'Kick Trigger' is silent over "
                               "it: the gate would shut it whole"]


def test_an_item_is_judged_by_the_key_it_plays_not_the_file_s(fake: FakeReaper, api,
                                                               tmp_path: Path) -> None:
    """Two items play one file from one origin (project 0.5 s), so they share one key,
    which sounds: the trigger hits at 0.75 s, inside the first item and before the second.
    The second, keyed by silence over all it plays, came out silent there with a success
    message; it is skipped and named, and the first gets its take."""
    snare = 0.5 * np.random.default_rng(0).standard_normal((1, 3 * RATE))
    wav = write(tmp_path / "snare.wav", snare)
    track = fake.add_track("Snare")
    first, second = fake.add_item(track, 0.5, 1.0), fake.add_item(track, 2.0, 1.0)
    fake.add_take(first, fake.file_source(str(wav)), "A")
    fake.add_take(second, fake.file_source(str(wav)), "B", D_STARTOFFS=1.5)
    trigger_track(fake, tmp_path, position=0.5, at=0.25)
    outcome = denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track="Kick Trigger")
    assert (outcome.takes_added, outcome.files_processed) == (1, 1)
    assert [take.name for take in first.takes] == ["A", "A [gate]"]
    assert len(second.takes) == 1
    assert outcome.skipped == ["Snare @ 2.000 s: sidechain track 'Kick Trigger' is silent over "
                               "it: the gate would shut it whole"]
    gated = sf.read(first.active.source.filename, dtype="float32", always_2d=True)[0].T
    hit = slice(int(0.25 * RATE), int(0.26 * RATE))
    np.testing.assert_allclose(gated[:, hit], snare[:, hit], atol=1e-6)


def test_a_trigger_before_the_only_item_changes_nothing(fake: FakeReaper, api,
                                                         tmp_path: Path) -> None:
    """The key sounds on the file's timeline (its first sample at project 0.5 s, the hit at
    0.75 s) but not over the item (2-3 s): one message, as for an empty track."""
    item = fake.add_item(fake.add_track("Snare"), 2.0, 1.0)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", steady_bleed(3.0)))),
                  "Snare", D_STARTOFFS=1.5)
    trigger_track(fake, tmp_path, position=0.5, at=0.25)
    with pytest.raises(BridgeError, match="sidechain track 'Kick Trigger' is silent over every "
                                          "selected item"):
        denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track="Kick Trigger")
    assert len(item.takes) == 1 and fake.undo == [] and not any(Path(fake.media_dir).iterdir())


def test_a_rendered_key_notes_where_it_sounds_to_10_ms(fake: FakeReaper, api,
                                                      tmp_path: Path) -> None:
    """``Rendered.sound``: the 480-frame stretches that hold a sample above 1e-7 of either
    sign, joined across the seams of the accessor's reads (every 1000 frames here); 1e-8
    is silence."""
    from reaper_bridge.sidechain import find_track
    from reaper_bridge.wavio import render_track

    data = np.zeros((1, RATE))
    data[0, 11976:12456] = 0.8  # across the read at 12000
    data[0, 30500] = -1e-6
    data[0, 40000] = 1e-8
    item = fake.add_item(fake.add_track("Trig"), 0.0, 1.0, selected=False)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "trig.wav", data))), "trigger")
    key = render_track(api, find_track(api, "Trig"), 0.0, RATE, 2, RATE,
                       str(tmp_path / "key.wav"), block=1000)
    assert key.sound == ((11960, 12480), (30480, 30960))
    assert key.sounds(12479, 12480) and not key.sounds(12480, 30480)


def test_ungated_variant_ignores_the_sidechain_track(fake: FakeReaper, api, tmp_path: Path) -> None:
    """Only gated variants need the key: a missing track does not stop a plain denoise."""
    item = fake.add_item(fake.add_track("Snare"), 0.0, 1.0)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", steady_bleed(1.0)))),
                  "Snare")
    outcome = denoise(api, ("debleed",), lambda task, report: write(Path(task.dst), np.zeros((1, 10))),
                      sidechain_track="Nope")
    assert outcome.takes_added == 1


def test_settings_keep_the_sidechain_track(tmp_path: Path) -> None:
    path = settings_path(str(tmp_path))
    save_settings(path, BridgeSettings(sidechain_track="Snare Trigger", gate=GATE))
    loaded = load_settings(path)
    assert loaded.sidechain_track == "Snare Trigger"
    # only gated takes hear the key, and their cache entries carry its audio's digest
    assert loaded.cache_key() == BridgeSettings(gate=GATE).cache_key()


def test_installed_gate_action_passes_the_key_to_the_worker(tmp_path: Path,
                                                            tiny_checkpoint: Path) -> None:
    """Inside REAPER: the INI names the track, the action renders the key, the worker
    subprocess gates with it before the model. A trigger too quiet to open it (-60 dBFS)
    keeps the gate shut, so the [debleed+gate] take is silence although the snare is loud."""
    from reaper_bridge.install import install
    from reaper_bridge.rpr import RawRPR

    resource, media = tmp_path / "res", tmp_path / "media"
    resource.mkdir()
    install(str(resource))
    path = settings_path(str(resource))
    settings = load_settings(path)
    settings.model, settings.device, settings.sidechain_track = str(tiny_checkpoint), "cpu", "Trig"
    settings.gate = GATE
    save_settings(path, settings)
    fake = FakeReaper(str(resource), str(media))
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.5)
    loud = 0.5 * np.random.default_rng(1).standard_normal((1, RATE // 2))
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", loud))), "Snare")
    quiet = fake.add_item(fake.add_track("Trig"), 0.0, 0.5, selected=False)
    hum = 1e-3 * np.random.default_rng(2).standard_normal((1, RATE // 2))
    fake.add_take(quiet, fake.file_source(str(write(tmp_path / "trig.wav", hum))), "trigger")
    api = RawRPR(fake.module())
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=True, threads=1))
    fake.run_deferred()
    assert fake.messages == [], fake.messages
    assert item.active.name == "Snare [debleed+gate]"
    result = sf.read(item.active.source.filename, dtype="float32")[0]
    assert np.abs(result).max() < 1e-6


def test_take_with_stretch_markers_is_rendered_and_keyed_from_the_item_start(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """A warped take plays no stretch of its file in step with the project: like a take at
    another playrate it is rendered, and keyed on the render's timeline."""
    snare = steady_bleed(3.0)
    item = fake.add_item(fake.add_track("Snare"), 1.0, 1.0)
    take = fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", snare))),
                         "Snare", D_STARTOFFS=0.5)
    fake.RPR_SetTakeStretchMarker(take.ptr, -1, 0.0, 0.5)
    fake.RPR_SetTakeStretchMarker(take.ptr, -1, 0.4, 0.6)
    trigger_track(fake, tmp_path, position=1.3, at=0.3)  # sounds 0.6 s into the item
    denoise(api, ("gate",), TaskExecutor(gate=GATE), sidechain_track="Kick Trigger")
    new = item.active
    assert (new.values["D_STARTOFFS"], new.values["D_PLAYRATE"], new.markers) == (0.0, 1.0, [])
    result = sf.read(new.source.filename, dtype="float32", always_2d=True)[0].T
    assert result.shape[1] == RATE
    heard = np.flatnonzero(np.abs(result).max(axis=0) > 0) / RATE
    assert heard[0] == pytest.approx(0.6 - 0.003, abs=0.002) and heard[-1] < 0.8


def test_a_take_moved_against_the_sidechain_while_processing_is_skipped(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """Its gate was keyed on the timeline it had when the action started: on the new one it
    would open at the wrong hits."""
    from reaper_bridge.bridge import apply, prepare, run_tasks

    item = fake.add_item(fake.add_track("Snare"), 0.0, 1.0)
    fake.add_take(item, fake.file_source(str(write(tmp_path / "snare.wav", steady_bleed(1.0)))),
                  "Snare")
    trigger_track(fake, tmp_path, position=0.0, at=0.2)
    plan, cache = prepare(api, ("gate",), "", str(tmp_path / "work"), sidechain_track="Kick Trigger")
    run_tasks(plan.tasks, TaskExecutor(gate=GATE))
    item.position = 0.4
    outcome = apply(api, plan, cache)
    assert outcome.takes_added == 0 and len(item.takes) == 1
    assert outcome.skipped == ["Snare @ 0.000 s: moved against the sidechain track while "
                               "processing; run the action again"]


@pytest.mark.parametrize("variant", ["gate", "debleed"])
def test_a_mono_take_of_a_stereo_file_is_gated_by_the_channel_it_plays(
        fake: FakeReaper, api, tmp_path: Path, variant: str) -> None:
    """The whole stereo file was gated with its channels linked: a loud event on the right
    channel, which a mono-left take never plays, opened the gate on the left. A gated take
    is now rendered as it plays; an ungated one still plays the processed file."""
    rng = np.random.default_rng(0)
    left = 0.002 * rng.standard_normal(RATE)  # bleed under -40 dBFS: never opens the gate
    right = np.zeros(RATE)
    right[RATE // 2:RATE // 2 + 480] = 0.8
    path = write(tmp_path / "stereo.wav", np.stack([left, right]).astype(np.float32))
    item = fake.add_item(fake.add_track("Snare"), 0.0, 1.0)
    fake.add_take(item, fake.file_source(str(path)), "Snare", I_CHANMODE=3.0)  # mono left
    denoise(api, (variant,), TaskExecutor(gate=GATE) if variant == "gate"
            else executor_for({"debleed": halve}))
    new = item.active
    played = fake.play(new, RATE, 1, 0.0, RATE)[0]
    if variant == "gate":
        assert new.values["I_CHANMODE"] == 0.0 and sf.info(new.source.filename).channels == 1
        assert np.abs(played).max() == 0.0
    else:  # the processed stereo file, played through the take's mode
        assert new.values["I_CHANMODE"] == 3.0 and sf.info(new.source.filename).channels == 2
        np.testing.assert_allclose(played, 0.5 * left, atol=1e-6)

"""The denoise action's take logic on the fake REAPER, through the raw RPR_* API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_reaper import FakeReaper
from reaper_helpers import halve, make_wav, resampled, squash

from denoiser.errors import AudioError
from reaper_bridge import wavio
from reaper_bridge.bridge import denoise, executor_for
from reaper_bridge.items import BridgeError, collect, compare_next


def counting(process):
    calls: list[tuple[str, str]] = []

    def wrapped(src: str, dst: str) -> None:
        calls.append((src, dst))
        process(src, dst)

    return wrapped, calls


@pytest.mark.parametrize("rate,channels", [(48000, 1), (44100, 2)])
def test_trimmed_item_at_playrate_gets_sample_aligned_take(fake: FakeReaper, api, tmp_path: Path,
                                                          rate: int, channels: int) -> None:
    wav = make_wav(tmp_path / "rec" / "snare.wav", 2.0, rate, channels)
    track = fake.add_track("Snare")
    item = fake.add_item(track, position=3.25, length=0.8)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare top",
                             D_STARTOFFS=0.37, D_PLAYRATE=1.5, B_PPITCH=0.0, I_CHANMODE=2.0,
                             D_VOL=0.7)
    outcome = denoise(api, ("debleed",), executor_for({"debleed": squash}))

    assert outcome.takes_added == 1 and outcome.files_processed == 1
    new = item.active
    assert new is not original and new.name == "Snare top [debleed]"
    assert original.source.filename == str(wav.resolve())  # original untouched
    for parm in ("D_STARTOFFS", "D_PLAYRATE", "B_PPITCH", "I_CHANMODE", "D_VOL"):
        assert new.values[parm] == original.values[parm], parm
    out_path = Path(new.source.filename)
    assert out_path.parent == Path(fake.media_dir) and out_path.name == "snare.debleed.wav"

    source, _ = sf.read(wav, dtype="float32", always_2d=True)
    result, out_rate = sf.read(out_path, dtype="float32", always_2d=True)
    assert out_rate == rate and result.shape == source.shape
    start = round(0.37 * rate)
    span = slice(start, start + round(0.8 * 1.5 * rate))
    np.testing.assert_array_equal(result[span], source[span] * np.abs(source[span]))
    assert fake.undo == [("begin",), ("end", "debleed: debleed on 1 item(s)")]
    assert fake.undo_depth == 0 and fake.refresh_depth == 0


def test_playback_of_new_take_equals_processed_playback(fake: FakeReaper, api, tmp_path: Path) -> None:
    """Through the fake's playback model (offset, playrate, interpolation), the new take
    plays exactly half of what the original plays: aligned to the sample."""
    wav = make_wav(tmp_path / "snare.wav", 1.5)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.5)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.2113,
                             D_PLAYRATE=1.5)
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    before = fake.play(original, 48000, 1, 0.0, 24000)
    after = fake.play(item.active, 48000, 1, 0.0, 24000)
    np.testing.assert_allclose(after, 0.5 * before, atol=1e-7)


def test_section_offset_is_added_and_reverse_refused(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "long.wav", 3.0)
    track = fake.add_track("Snare")
    root = fake.file_source(str(wav))
    ok_item = fake.add_item(track, 0.0, 0.5)
    original = fake.add_take(ok_item, fake.section_source(root, 1.0, 1.5), "Sec", D_STARTOFFS=0.25)
    rev_item = fake.add_item(track, 2.0, 0.5)
    fake.add_take(rev_item, fake.section_source(root, 0.5, 1.0, reverse=True), "Rev")
    outcome = denoise(api, ("debleed",), executor_for({"debleed": halve}))

    assert ok_item.active.values["D_STARTOFFS"] == pytest.approx(1.25)
    np.testing.assert_allclose(fake.play(ok_item.active, 48000, 1, 0.0, 20000),
                               0.5 * fake.play(original, 48000, 1, 0.0, 20000), atol=1e-7)
    assert len(rev_item.takes) == 1
    assert any("reversed take" in line for line in outcome.skipped)


def test_two_items_on_one_file_are_processed_once(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    items = [fake.add_item(track, p, 0.4) for p in (0.0, 1.0)]
    for index, item in enumerate(items):
        fake.add_take(item, fake.file_source(str(wav)), f"hit {index}", D_STARTOFFS=index * 0.9)
    process, calls = counting(squash)
    outcome = denoise(api, ("debleed",), executor_for({"debleed": process}))

    assert len(calls) == 1 and outcome.takes_added == 2
    assert items[0].active.source.filename == items[1].active.source.filename
    assert [i.active.values["D_STARTOFFS"] for i in items] == [0.0, 0.9]

    # Again: the cache answers, and the existing takes are re-activated, not duplicated.
    for item in items:
        fake.RPR_SetActiveTake(item.takes[0].ptr)
    outcome = denoise(api, ("debleed",), executor_for({"debleed": process}))
    assert len(calls) == 1 and outcome.files_cached == 1
    assert [len(i.takes) for i in items] == [2, 2]
    assert all(i.active.name.endswith("[debleed]") for i in items)


def test_midi_and_empty_items_are_skipped_with_a_message(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Drums")
    audio = fake.add_item(track, 0.0, 0.5)
    fake.add_take(audio, fake.file_source(str(wav)), "Snare")
    midi = fake.add_item(track, 1.0, 0.5)
    fake.add_take(midi, fake.midi_source(), "Groove")
    fake.add_item(track, 2.0, 0.5)  # empty item: no take
    outcome = denoise(api, ("debleed",), executor_for({"debleed": squash}))

    assert outcome.takes_added == 1 and len(midi.takes) == 1
    assert outcome.skipped == ["Drums @ 1.000 s: MIDI take", "Drums @ 2.000 s: empty item (no take)"]
    assert "Skipped:" in outcome.message()


@pytest.mark.filterwarnings("ignore:.*a recording floor")  # white-noise tracks
def test_silent_items_are_skipped_and_the_others_processed(fake: FakeReaper, api, tmp_path: Path,
                                                          tiny_checkpoint: Path) -> None:
    """A silent item failed the whole run with one line naming its source, for a take
    rendered through the accessor a temporary file already deleted. Silent items are now
    skipped by label, as MIDI and empty ones are, and leave nothing on disk (not even the
    [gate] file made before the model found the silence); the others get their takes in
    one undo point."""
    from reaper_bridge.processing import TaskExecutor

    track = fake.add_track("Snare")
    sound = [fake.add_item(track, 2.0 * i, 0.5) for i in range(2)]
    for i, item in enumerate(sound):
        fake.add_take(item, fake.file_source(str(make_wav(tmp_path / f"snare{i}.wav", 1.0, seed=i))),
                      f"Snare {i}")
    tacet = tmp_path / "tacet.wav"
    sf.write(tacet, np.zeros(48000, np.float32), 48000, subtype="FLOAT")
    silent_file = fake.add_item(track, 6.0, 0.5)
    fake.add_take(silent_file, fake.file_source(str(tacet)), "Tacet file")
    silent_render = fake.add_item(track, 8.0, 0.5)
    stretched = fake.add_take(silent_render, fake.unmapped_source(np.zeros((1, 48000)), 48000),
                              "Tacet render")
    stretched.markers = [(0.1, 0.1)]  # rendered through the accessor

    outcome = denoise(api, ("gate", "debleed"), TaskExecutor(str(tiny_checkpoint), "cpu"))

    assert outcome.skipped == ["Snare @ 6.000 s: silent", "Snare @ 8.000 s: silent"]
    assert outcome.takes_added == 4 and outcome.files_processed == 4
    assert [len(i.takes) for i in track.items] == [3, 3, 1, 1]
    assert sorted(os.listdir(fake.media_dir)) == sorted(
        [".debleed-cache.json"] + [f"snare{i}.{slug}.wav" for i in range(2) for slug in ("gate", "debleed")])
    assert len(json.loads((Path(fake.media_dir) / ".debleed-cache.json").read_text())) == 4
    assert fake.undo == [("begin",), ("end", "debleed: gate+debleed on 2 item(s)")]


@pytest.mark.filterwarnings("ignore:.*a recording floor")
def test_a_selection_of_silent_items_only_is_a_clear_error(fake: FakeReaper, api, tmp_path: Path,
                                                          tiny_checkpoint: Path) -> None:
    """As a selection of MIDI items only: no empty undo point named for items that got
    nothing, no file left in the media folder."""
    from reaper_bridge.processing import TaskExecutor

    tacet = tmp_path / "tacet.wav"
    sf.write(tacet, np.zeros(48000, np.float32), 48000, subtype="FLOAT")
    item = fake.add_item(fake.add_track("Snare"), 6.0, 0.5)
    fake.add_take(item, fake.file_source(str(tacet)), "Tacet")
    with pytest.raises(BridgeError, match="nothing to process: every selected item is silent: "
                                          r"Snare @ 6\.000 s: silent"):
        denoise(api, ("gate", "debleed"), TaskExecutor(str(tiny_checkpoint), "cpu"))
    assert fake.undo == [] and len(item.takes) == 1
    assert not os.path.exists(fake.media_dir) or os.listdir(fake.media_dir) == []


def test_only_midi_selected_is_a_clear_error(fake: FakeReaper, api) -> None:
    item = fake.add_item(fake.add_track("Keys"), 0.0, 1.0)
    fake.add_take(item, fake.midi_source(), "Chords")
    with pytest.raises(BridgeError, match="no audio items selected.*MIDI take"):
        denoise(api, ("debleed",), executor_for({"debleed": squash}))
    assert fake.undo == []


def test_items_of_selected_tracks_when_no_item_is_selected(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    chosen, other = fake.add_track("Snare", selected=True), fake.add_track("Kick")
    for track in (chosen, other):
        fake.add_take(fake.add_item(track, 0.0, 0.5, selected=False), fake.file_source(str(wav)), track.name)
    assert [t.take_name for t in collect(api).takes] == ["Snare"]


def test_denoiser_error_leaves_no_take_and_no_file(fake: FakeReaper, api, tmp_path: Path) -> None:
    first = make_wav(tmp_path / "a.wav", 1.0)
    second = make_wav(tmp_path / "b.wav", 1.0)
    track = fake.add_track("Snare")
    items = [fake.add_item(track, p, 0.5) for p in (0.0, 1.0)]
    fake.add_take(items[0], fake.file_source(str(first)), "A")
    fake.add_take(items[1], fake.file_source(str(second)), "B")
    done: list[str] = []

    def flaky(src: str, dst: str) -> None:
        if done:
            raise AudioError(f"{src}: model exploded")
        squash(src, dst)
        done.append(dst)

    with pytest.raises(AudioError, match="model exploded"):
        denoise(api, ("debleed",), executor_for({"debleed": flaky}))
    assert [len(i.takes) for i in items] == [1, 1]
    assert fake.undo_depth == 0 and fake.refresh_depth == 0
    assert not Path(done[0]).exists()  # the first file's result was removed too
    assert sorted(p.name for p in Path(fake.media_dir).iterdir()) == []


def test_accessor_fallback_for_unmapped_source(fake: FakeReaper, api) -> None:
    """A source with no readable file is rendered as the take plays it (offset and
    playrate applied by REAPER), so the new take plays that render at offset 0, rate 1."""
    rng = np.random.default_rng(3)
    samples = rng.standard_normal((2, 30000)).astype(np.float32) * 0.1
    item = fake.add_item(fake.add_track("Bus"), 1.0, 0.25)
    original = fake.add_take(item, fake.unmapped_source(samples, 48000), "Rendered",
                             D_STARTOFFS=0.25, D_PLAYRATE=1.5)
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    new = item.active
    assert new.name == "Rendered [debleed]"
    assert new.values["D_STARTOFFS"] == 0.0 and new.values["D_PLAYRATE"] == 1.0
    data, _ = sf.read(new.source.filename, dtype="float32", always_2d=True)
    assert data.shape == (12000, 2)
    played = fake.play(original, 48000, 2, 0.0, 12000)
    np.testing.assert_allclose(data.T, 0.5 * played, atol=1e-7)
    np.testing.assert_allclose(played[:, 0], samples[:, 12000], atol=1e-7)  # from 0.25 s on


def test_compare_cycles_original_and_variants(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    items = [fake.add_item(track, p, 0.4) for p in (0.0, 0.5)]
    for item in items:
        fake.add_take(item, fake.file_source(str(wav)), "Snare")
    processors = {"gate": halve, "debleed": squash, "debleed+gate": squash}
    denoise(api, ("gate", "debleed", "debleed+gate"), executor_for(processors))
    assert [i.active.name for i in items] == ["Snare [debleed+gate]"] * 2
    seen = [compare_next(api).variant for _ in range(4)]
    assert seen == [None, "gate", "debleed", "debleed+gate"]
    assert [i.active.name for i in items] == ["Snare [debleed+gate]"] * 2
    compare_next(api)
    assert [i.active.name for i in items] == ["Snare"] * 2
    assert fake.undo == [("begin",), ("end", "debleed: gate+debleed+debleed+gate on 2 item(s)")]


def _select(fake: FakeReaper, *items) -> None:
    for track in fake.tracks:
        for item in track.items:
            item.selected = item in items


def test_compare_cycles_every_variant_any_selected_item_has(fake: FakeReaper, api,
                                                            tmp_path: Path) -> None:
    """The first processed item alone decided the cycle: with [debleed+gate] on four items
    and [debleed] on the last two, [debleed] was never reached. The cycle is the variants
    any selected item has; an item lacking the next one keeps its take and is named."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    items = [fake.add_item(track, 0.5 * k, 0.4) for k in range(4)]
    for item in items:
        fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.5 * item.position)
    processors = {"debleed": squash, "debleed+gate": squash}
    denoise(api, ("debleed+gate",), executor_for(processors))
    _select(fake, *items[2:])
    denoise(api, ("debleed",), executor_for(processors))
    _select(fake, *items)
    playing = []
    for _ in range(4):
        comparison = compare_next(api)
        playing.append((comparison.variant, [i.active.name for i in items],
                        [s.label for s in comparison.stayed]))
    assert playing == [
        ("debleed+gate", ["Snare [debleed+gate]"] * 4, []),
        (None, ["Snare"] * 4, []),
        ("debleed", ["Snare", "Snare", "Snare [debleed]", "Snare [debleed]"],
         ["Snare @ 0.000 s", "Snare @ 0.500 s"]),
        ("debleed+gate", ["Snare [debleed+gate]"] * 4, [])]
    compare_next(api)
    assert compare_next(api).message() == ("now playing: [debleed]\nKept their take:\n"
                                           "  Snare @ 0.000 s: no [debleed] take\n"
                                           "  Snare @ 0.500 s: no [debleed] take")


def test_compare_names_only_processed_items_that_lack_the_variant(fake: FakeReaper, api,
                                                                  tmp_path: Path) -> None:
    """Every never-processed item in the selection (a track's other items, a MIDI item)
    was named on every press as keeping its take for want of one it was never meant to
    have. Only items with debleed takes, locked or not, that lack the one now playing are."""
    wav = make_wav(tmp_path / "snare.wav", 3.0)
    track = fake.add_track("Snare")
    items = [fake.add_item(track, 0.5 * k, 0.4) for k in range(4)]
    for item in items:
        fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.5 * item.position)
    midi = fake.add_item(track, 2.5, 0.4)
    fake.add_take(midi, fake.midi_source(), "Groove")
    processors = {"debleed": squash, "debleed+gate": squash}
    _select(fake, items[0])
    denoise(api, ("debleed",), executor_for(processors))
    _select(fake, items[1])
    denoise(api, ("debleed+gate",), executor_for(processors))
    items[3].lock = 1
    _select(fake, *items, midi)
    messages = [compare_next(api).message() for _ in range(3)]
    assert messages == ["now playing: original",
                        "now playing: [debleed]\nKept their take:\n"
                        "  Snare @ 0.500 s: no [debleed] take",
                        "now playing: [debleed+gate]\nKept their take:\n"
                        "  Snare @ 0.000 s: no [debleed+gate] take"]
    assert [i.active.name for i in items] == ["Snare [debleed]", "Snare [debleed+gate]",
                                              "Snare", "Snare"]


def test_compare_returns_to_the_original_where_the_first_item_lost_its_own(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """The first item's original deleted by hand: the cycle left it out, so no selected
    item could go back to its original. Now the others do, and the first keeps its take."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    first, second = (fake.add_item(track, p, 0.4) for p in (0.0, 0.5))
    for item in (first, second):
        fake.add_take(item, fake.file_source(str(wav)), "Snare")
    processors = {"debleed": squash, "debleed+gate": squash}
    denoise(api, tuple(processors), executor_for(processors))
    del first.takes[0]  # Take > Delete active take, on the original
    seen = [(c.variant, first.active.name, second.active.name, [s.reason for s in c.stayed])
            for c in (compare_next(api) for _ in range(3))]
    assert seen == [(None, "Snare [debleed+gate]", "Snare", ["no original take"]),
                    ("debleed", "Snare [debleed]", "Snare [debleed]", []),
                    ("debleed+gate", "Snare [debleed+gate]", "Snare [debleed+gate]", [])]


def test_compare_passes_over_a_variant_that_switches_no_item(fake: FakeReaper, api,
                                                             tmp_path: Path) -> None:
    """One item with [debleed], one with [gate]: from the first item's original, [gate]
    is next, but once the second item plays it, going there again would change nothing
    and hold the cycle on the same two takes; it moves on to [debleed]."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    first, second = (fake.add_item(track, p, 0.4) for p in (0.0, 0.5))
    for item in (first, second):
        fake.add_take(item, fake.file_source(str(wav)), "Snare")
    _select(fake, first)
    denoise(api, ("debleed",), executor_for({"debleed": squash}))
    _select(fake, second)
    denoise(api, ("gate",), executor_for({"gate": halve}))
    _select(fake, first, second)
    seen = [(c.variant, first.active.name, second.active.name)
            for c in (compare_next(api) for _ in range(4))]
    assert seen == [(None, "Snare", "Snare"),
                    ("gate", "Snare", "Snare [gate]"),
                    ("debleed", "Snare [debleed]", "Snare [gate]"),
                    (None, "Snare", "Snare")]


def test_compare_without_processed_takes_is_an_error(fake: FakeReaper, api, tmp_path: Path) -> None:
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "s.wav", 1.0))), "Snare")
    with pytest.raises(BridgeError, match="no selected item has a debleed take"):
        compare_next(api)


def test_rerun_on_a_debleed_take_processes_the_original(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare")
    process, calls = counting(squash)
    denoise(api, ("debleed+gate",), executor_for({"debleed+gate": process}))
    denoise(api, ("debleed",), executor_for({"debleed": process}))
    assert [Path(src).name for src, _ in calls] == ["snare.wav", "snare.wav"]
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed+gate]", "Snare [debleed]"]


def test_each_take_value_is_read_from_reaper_once(fake: FakeReaper, tmp_path: Path) -> None:
    """Finding an active [debleed+gate] take's original, and the variant take to reuse,
    read each take's link, name and GUID once: every call crosses to REAPER (a socket
    round trip through reapy), and they used to be read two or three times."""
    from collections import Counter

    from reaper_bridge.items import add_variant_take, describe_take
    from reaper_bridge.rpr import RawRPR

    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    processors = {"gate": halve, "debleed": squash, "debleed+gate": squash}
    denoise(RawRPR(fake.module()), tuple(processors), executor_for(processors))
    assert item.active.name == "Snare [debleed+gate]"

    reads: Counter[tuple[str, str]] = Counter()
    read_string = fake.RPR_GetSetMediaItemTakeInfo_String

    def counted(take: str, parm: str, value: str, set_new: bool) -> tuple:
        if not set_new:
            reads[(take, parm)] += 1
        return read_string(take, parm, value, set_new)

    fake.RPR_GetSetMediaItemTakeInfo_String = counted  # type: ignore[method-assign]
    api = RawRPR(fake.module())
    source = describe_take(api, item.ptr)
    assert source.take == original.ptr and source.take_name == "Snare"
    assert reads and max(reads.values()) == 1, reads
    reads.clear()
    debleed = next(t for t in item.takes if t.name == "Snare [debleed]")
    assert not add_variant_take(api, source, debleed.source.filename, "debleed")
    assert item.active is debleed and len(item.takes) == 4
    assert reads and max(reads.values()) == 1, reads


def test_offline_source_is_skipped(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "gone.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare")
    wav.unlink()
    with pytest.raises(BridgeError, match="offline source"):
        denoise(api, ("debleed",), executor_for({"debleed": squash}))


def test_a_render_too_long_for_riff_is_rf64(fake: FakeReaper, api, monkeypatch) -> None:
    """The accessor fallback writes its WAV header by hand: past RIFF's limit (lowered here
    to a few bytes) it writes RF64's, which soundfile reads back sample for sample."""
    monkeypatch.setattr(wavio, "WAV_LIMIT_BYTES", 1_000)
    samples = np.random.default_rng(4).standard_normal((2, 30000)).astype(np.float32) * 0.1
    item = fake.add_item(fake.add_track("Bus"), 1.0, 0.5)
    original = fake.add_take(item, fake.unmapped_source(samples, 48000), "Rendered", D_PLAYRATE=1.0)
    seen: list[bytes] = []

    def keep_header(src: str, dst: str) -> None:
        seen.append(Path(src).read_bytes()[:4])
        halve(src, dst)

    denoise(api, ("debleed",), executor_for({"debleed": keep_header}))
    assert seen == [b"RF64"]
    data, _ = sf.read(item.active.source.filename, dtype="float32", always_2d=True)
    np.testing.assert_allclose(data.T, 0.5 * fake.play(original, 48000, 2, 0.0, 24000), atol=1e-7)


def test_rerun_with_other_settings_points_the_same_take_at_the_new_result(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """One take per variant: a run with other settings re-points ``[debleed]`` (compare
    reaches the newest result), the earlier file stays, and undo brings it back."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.5)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.2)
    assert denoise(api, ("debleed",), executor_for({"debleed": halve}), "gate -30").takes_added == 1
    first = item.active.source.filename
    outcome = denoise(api, ("debleed",), executor_for({"debleed": squash}), "gate -40")
    assert (outcome.takes_added, outcome.takes_updated, outcome.files_processed) == (0, 1, 1)
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed]"]
    newest = item.active.source.filename
    assert newest != first and Path(first).is_file() and item.active.values["D_STARTOFFS"] == 0.2
    data, _ = sf.read(newest, dtype="float32")
    source, _ = sf.read(wav, dtype="float32")
    np.testing.assert_array_equal(data, source * np.abs(source))  # the second run's result
    assert compare_next(api).variant is None and compare_next(api).variant == "debleed"
    assert item.active.source.filename == newest
    assert fake.RPR_Undo_DoUndo2(0) == 1
    assert item.takes[0].ptr == original.ptr and item.takes[1].source.filename == first


def test_rerun_after_the_original_moved_realigns_the_take(fake: FakeReaper, api,
                                                          tmp_path: Path) -> None:
    """A cached result is reused, but the take gets the original's new offset and playrate:
    it must keep playing the processed version of what the original plays."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.5)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.2)
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    original.values.update(D_STARTOFFS=0.9, D_PLAYRATE=1.3)
    fake.RPR_SetActiveTake(original.ptr)
    outcome = denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert (outcome.takes_added, outcome.takes_updated, outcome.files_cached) == (0, 1, 1)
    new = item.active
    assert (new.values["D_STARTOFFS"], new.values["D_PLAYRATE"]) == (0.9, 1.3)
    np.testing.assert_allclose(fake.play(new, 48000, 1, 0.0, 24000),
                               0.5 * fake.play(original, 48000, 1, 0.0, 24000), atol=1e-7)


def test_a_take_refused_partway_leaves_no_item_changed(fake: FakeReaper, api,
                                                       tmp_path: Path) -> None:
    """All or nothing: the first item's new take is undone with the failed run, and the
    run's files are removed (no take plays them)."""
    track = fake.add_track("Snare")
    items = [fake.add_item(track, p, 0.4) for p in (0.0, 1.0)]
    for name, item in zip("ab", items):
        fake.add_take(item, fake.file_source(str(make_wav(tmp_path / f"{name}.wav", 0.5))), name)
    fake.refuse_takes.add(items[1].ptr)
    with pytest.raises(BridgeError, match="REAPER refused to add a take"):
        denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert [[t.name for t in i.takes] for i in items] == [["a"], ["b"]]
    assert [i.active.name for i in items] == ["a", "b"]
    assert fake.undo_points == [] and fake.undo[-1] == ("undo", "debleed: debleed on 2 item(s)")
    assert sorted(p.name for p in Path(fake.media_dir).iterdir()) == []  # no cache entry either
    # A later run must not find the failed run's names in the cache (they were freed and
    # may hold another run's output): the same settings are processed again.
    fake.refuse_takes.clear()
    assert denoise(api, ("debleed",), executor_for({"debleed": halve})).files_processed == 2


def test_an_unwritable_cache_index_keeps_the_takes_and_says_so(fake: FakeReaper, api,
                                                               tmp_path: Path, monkeypatch) -> None:
    from reaper_bridge import jobs

    def full_disk(self, tasks) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobs.MediaCache, "commit", full_disk)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "a.wav", 0.5))), "a")
    outcome = denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert outcome.takes_added == 1 and item.active.name == "a [debleed]"
    assert Path(item.active.source.filename).is_file()
    assert "cache index was not written (No space left on device)" in outcome.message()


def test_a_rendered_take_is_cached_by_its_audio(fake: FakeReaper, api) -> None:
    """A take with no readable file is rendered anew each run: the cache keys it by the
    render's audio, so running again reuses the result instead of writing another file,
    and a changed take is processed anew."""
    samples = np.random.default_rng(5).standard_normal((1, 30000)).astype(np.float32) * 0.1
    item = fake.add_item(fake.add_track("Bus"), 0.0, 0.5)
    original = fake.add_take(item, fake.unmapped_source(samples, 48000), "Rendered")
    assert denoise(api, ("debleed",), executor_for({"debleed": halve})).files_processed == 1
    again = denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert (again.files_processed, again.files_cached) == (0, 1)
    assert sorted(p.name for p in Path(fake.media_dir).glob("*.wav")) == ["Rendered.debleed.wav"]
    original.values["D_STARTOFFS"] = 0.1  # now it plays other audio
    moved = denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert (moved.files_processed, moved.files_cached) == (1, 0)
    assert len(item.takes) == 2 and item.active.source.filename.endswith("Rendered.debleed-2.wav")


def test_sources_differing_only_in_case_get_their_own_outputs(fake: FakeReaper, api,
                                                              tmp_path: Path) -> None:
    """NTFS and APFS ignore case: "Snare.wav" and "snare.wav" from two folders used to be
    given one output name, the second result overwriting the first."""
    track = fake.add_track("Snare")
    for index, name in enumerate(("A/Snare.wav", "B/snare.wav")):
        item = fake.add_item(track, index, 0.4)
        fake.add_take(item, fake.file_source(str(make_wav(tmp_path / name, 0.5, seed=index))), "s")
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    outputs = [Path(i.active.source.filename).name for i in track.items]
    assert len({name.casefold() for name in outputs}) == 2, outputs


def test_discard_removes_a_killed_workers_temporary_files(tmp_path: Path) -> None:
    """Windows' terminate runs no clean-up: the worker's half-written temporary file stays
    beside the output unless discard removes it too."""
    from denoiser.outfiles import hidden_prefix
    from reaper_bridge.bridge import discard
    from reaper_bridge.jobs import Task

    dst = tmp_path / "snare.debleed.wav"
    leftover = tmp_path / f"{hidden_prefix(dst.name)}k3j2x9_q.tmp.wav"
    leftover.write_bytes(b"half")
    keep = tmp_path / "other.wav"
    keep.write_bytes(b"kept")
    discard([Task("denoise", str(tmp_path / "snare.wav"), str(dst), "debleed")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.wav"]


def test_take_with_stretch_markers_is_rendered_as_it_plays(fake: FakeReaper, api,
                                                           tmp_path: Path) -> None:
    """Stretch markers warp the source, which no start offset reproduces: the take is
    rendered through the accessor, and the new take plays that render straight (rate 1,
    no markers, even when an earlier run's take had some added)."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.5)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.2)
    fake.RPR_SetTakeStretchMarker(original.ptr, -1, 0.0, 0.2)
    fake.RPR_SetTakeStretchMarker(original.ptr, -1, 0.3, 0.35)  # the first 0.3 s slowed down
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    new = item.active
    assert new.name == "Snare [debleed]" and new.markers == []
    assert (new.values["D_STARTOFFS"], new.values["D_PLAYRATE"]) == (0.0, 1.0)
    played = fake.play(original, 48000, 1, 0.0, 24000)
    np.testing.assert_allclose(fake.play(new, 48000, 1, 0.0, 24000), 0.5 * played, atol=1e-7)

    fake.RPR_SetTakeStretchMarker(new.ptr, -1, 0.1, 0.1)
    fake.RPR_SetActiveTake(original.ptr)
    assert denoise(api, ("debleed",), executor_for({"debleed": halve})).takes_updated == 1
    assert item.active is new and new.markers == []


def test_items_changed_while_processing_get_what_they_play_now(fake: FakeReaper, api,
                                                               tmp_path: Path) -> None:
    """Inside REAPER the takes are added a while after the selection was read: a slipped
    item gets the offset it has now, and an item deleted, given another take, or whose
    render no longer matches is skipped by name while the others get their takes."""
    from reaper_bridge.bridge import apply, prepare, run_tasks

    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    slipped, deleted, switched, rendered = (fake.add_item(track, p, 0.5) for p in range(4))
    original = fake.add_take(slipped, fake.file_source(str(wav)), "S", D_STARTOFFS=0.2)
    fake.add_take(deleted, fake.file_source(str(wav)), "D")
    fake.add_take(switched, fake.file_source(str(wav)), "A")
    samples = np.random.default_rng(6).standard_normal((1, 48000)).astype(np.float32)
    unmapped = fake.add_take(rendered, fake.unmapped_source(samples, 48000), "R")
    plan, cache = prepare(api, ("debleed",), "", str(tmp_path / "work"))
    run_tasks(plan.tasks, executor_for({"debleed": halve}))

    original.values["D_STARTOFFS"] = 0.7  # the user slips the item while the worker runs
    fake.RPR_DeleteTrackMediaItem(track.ptr, deleted.ptr)
    fake.add_take(switched, fake.file_source(str(make_wav(tmp_path / "b.wav", 1.0))), "B")
    unmapped.values["D_STARTOFFS"] = 0.1
    outcome = apply(api, plan, cache)

    assert outcome.takes_added == 1 and slipped.active.values["D_STARTOFFS"] == 0.7
    np.testing.assert_allclose(fake.play(slipped.active, 48000, 1, 0.0, 24000),
                               0.5 * fake.play(original, 48000, 1, 0.0, 24000), atol=1e-7)
    assert [[t.name for t in i.takes] for i in (switched, rendered)] == [["A", "B"], ["R"]]
    assert outcome.skipped == [
        "Snare @ 1.000 s: the item was deleted while processing",
        "Snare @ 2.000 s: its take or source changed while processing; run the action again",
        "Snare @ 3.000 s: edited while processing (the render no longer matches it); run the "
        "action again"]


def test_a_renamed_original_is_still_the_one_processed(fake: FakeReaper, api,
                                                       tmp_path: Path) -> None:
    """The [debleed] take links to its original's GUID: renaming the original must not make
    the next run denoise the denoised take (nor add a second [debleed] take)."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    process, calls = counting(squash)
    denoise(api, ("debleed",), executor_for({"debleed": process}))
    original.name = "Snare top"
    assert denoise(api, ("debleed",), executor_for({"debleed": process})).files_cached == 1
    assert [Path(src).name for src, _ in calls] == ["snare.wav"]
    assert [t.name for t in item.takes] == ["Snare top", "Snare top [debleed]"]
    assert item.active.ext == {"debleed_source": original.guid}


def test_a_debleed_take_without_its_original_is_skipped(fake: FakeReaper, api,
                                                        tmp_path: Path) -> None:
    """An unlinked [debleed] take (an older version's) whose original no longer has the
    name it was made from: nothing in the item is safe to process, so the item is left."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    item = fake.add_item(track, 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare top")
    fake.add_take(item, fake.file_source(str(wav)), "Snare [debleed]")
    fake.add_take(fake.add_item(track, 1.0, 0.4), fake.file_source(str(wav)), "Other")
    outcome = denoise(api, ("debleed",), executor_for({"debleed": squash}))
    assert outcome.takes_added == 1 and len(item.takes) == 2
    assert outcome.skipped == ["Snare @ 0.000 s: the active take is a debleed take and the item "
                               "holds no original for it: make the original take active"]


def test_a_render_is_keyed_by_the_bytes_it_wrote(fake: FakeReaper, api, tmp_path: Path) -> None:
    """The render's digest is hashed while writing; it must be the file's own hash, so a
    take's cache key is what it holds, and two takes playing other audio differ."""
    import hashlib

    rng = np.random.default_rng(5)
    item = fake.add_item(fake.add_track("Bus"), 0.0, 0.25)
    fake.add_take(item, fake.unmapped_source(rng.standard_normal((1, 24000)).astype(np.float32)
                                             * 0.1, 48000), "A")
    other = fake.add_item(fake.add_track("Bus 2"), 0.0, 0.25)
    fake.add_take(other, fake.unmapped_source(rng.standard_normal((1, 24000)).astype(np.float32)
                                              * 0.1, 48000), "B")
    takes = collect(api).takes
    renders = [wavio.render_take(api, take, str(tmp_path / f"{n}.wav"), block=5000)
               for n, take in enumerate(takes)]
    for render in renders:
        assert render.digest == hashlib.sha1(Path(render.path).read_bytes()).hexdigest()[:16]
    assert renders[0].digest != renders[1].digest


def test_the_raw_api_gives_new_takes_their_source_despite_reapers_pointer_check(
        fake: FakeReaper, tmp_path: Path) -> None:
    """REAPER's ``rpr_packp`` hands a function NULL for any pointer ``ValidatePtr`` does
    not find in the project, and a source just made is in no take yet (reapy issue #38):
    without reapy, ``SetMediaItemTake_Source`` did nothing, so the new take played nothing
    and a re-run destroyed the source its take still played."""
    from reaper_bridge.rpr import RawRPR

    module = fake.module()
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.5)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.2)
    loose = fake.file_source(str(wav))  # what PCM_Source_CreateFromFile returns
    assert module.rpr_packp("PCM_source*", loose.ptr) == 0  # REAPER's packer validates
    assert module.rpr_packp("PCM_source*", original.source.ptr) != 0
    api = RawRPR(module)
    denoise(api, ("debleed",), executor_for({"debleed": halve}), "first")
    new = item.active
    assert new.name == "Snare [debleed]" and new.source is not None
    assert Path(new.source.filename).name == "snare.debleed.wav"
    np.testing.assert_allclose(fake.play(new, 48000, 1, 0.0, 24000),
                               0.5 * fake.play(original, 48000, 1, 0.0, 24000), atol=1e-7)
    first = new.source
    fake.RPR_SetActiveTake(original.ptr)
    again = denoise(api, ("debleed",), executor_for({"debleed": squash}), "second")
    assert again.takes_updated == 1
    assert item.active is new and Path(new.source.filename).name == "snare.debleed-2.wav"
    assert first.ptr in fake.destroyed and new.source.ptr not in fake.destroyed


def test_the_fake_hands_null_for_pointers_reaper_does_not_validate(fake: FakeReaper,
                                                                   tmp_path: Path) -> None:
    """The fake itself: REAPER's packer makes an unknown or deleted object NULL, and the
    function then does nothing; a packer installed later is used from then on."""
    from fake_reaper import null

    from reaper_bridge.rpr import pack_pointer

    module = fake.module()
    wav = make_wav(tmp_path / "snare.wav", 0.5)
    track = fake.add_track("Snare")
    item = fake.add_item(track, 0.0, 0.4)
    take = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    playing, loose = take.source, fake.file_source(str(wav))
    assert module.RPR_SetMediaItemTake_Source(take.ptr, loose.ptr) is False
    assert take.source is playing
    fake.RPR_DeleteTrackMediaItem(track.ptr, item.ptr)
    assert module.RPR_GetMediaItemInfo_Value(item.ptr, "D_LENGTH") == 0.0
    assert module.RPR_GetActiveTake(item.ptr) == null("MediaItem_Take*")
    module.rpr_packp = pack_pointer
    with pytest.raises(ValueError, match="destroyed pointer"):  # REAPER would crash
        module.RPR_GetActiveTake(item.ptr)


@pytest.mark.parametrize("function_table", [False, True], ids=["rpr", "ctypes"])
def test_a_render_reads_and_destroys_its_accessor_though_reapers_packer_makes_it_null(
        fake: FakeReaper, tmp_path: Path, function_table: bool) -> None:
    """REAPER's ``ValidatePtr`` supports no audio accessor (``ValidatePtr2``'s documentation
    lists the types it does), so its own ``rpr_packp`` hands every accessor function NULL:
    a render would read silence and leave its accessor alive. The bridge packs pointers
    unchecked (``RawRPR``, ``pack_pointer``): the take is read, and the accessor destroyed,
    through either read."""
    from fake_reaper import FT_SAMPLES

    from reaper_bridge.items import describe_take
    from reaper_bridge.rpr import RawRPR

    module = fake.module(function_table=function_table)
    path, samples = _channels_file(tmp_path, channels=2)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.25)
    take = fake.add_take(item, fake.file_source(str(path)), "Snare", D_PLAYRATE=1.5)
    accessor = module.RPR_CreateTakeAudioAccessor(take.ptr)
    assert module.rpr_packp("AudioAccessor*", accessor) == 0
    assert module.rpr_packp("void*", accessor) == 0  # how GetAudioAccessorSamples packs it
    assert module.RPR_GetAudioAccessorSamples(accessor, 48000, 2, 0.0, 2, [0.5] * 4) == (
        0, [0.0] * 4)
    module.RPR_DestroyAudioAccessor(accessor)
    assert accessor in fake.objects  # REAPER got NULL and destroyed nothing
    fake.RPR_DestroyAudioAccessor(accessor)

    api = RawRPR(module)
    rendered = wavio.render_take(api, describe_take(api, item.ptr), str(tmp_path / "r.wav"),
                                 block=5000)
    data = sf.read(rendered.path, dtype="float32", always_2d=True)[0].T
    np.testing.assert_allclose(data, resampled(samples, 12000, 1.5), atol=1e-6)
    assert (FT_SAMPLES in fake.calls) is function_table  # the read the test chose
    assert fake.calls["RPR_CreateTakeAudioAccessor"] == 2
    assert fake.calls["RPR_DestroyAudioAccessor"] == 2
    assert not [ptr for ptr in fake.objects if ptr.startswith("(AudioAccessor*)")]


@pytest.mark.parametrize("rerun", [False, True], ids=["new-take", "existing-take"])
def test_a_source_reaper_refuses_leaves_every_take_as_before(
        fake: FakeReaper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rerun: bool) -> None:
    """``SetMediaItemTake_Source`` returning false was ignored: a new take stayed empty,
    and an existing one's source was destroyed while it still played it. Now the new
    source is destroyed, the old one kept, a new empty take undone, and the run fails in
    one line."""
    from reaper_bridge.rpr import RawRPR

    track = fake.add_track("Snare")
    items = [fake.add_item(track, p, 0.4) for p in (0.0, 1.0)]
    for name, item in zip("ab", items):
        fake.add_take(item, fake.file_source(str(make_wav(tmp_path / f"{name}.wav", 0.5))), name)
    if rerun:
        denoise(RawRPR(fake.module()), ("debleed",), executor_for({"debleed": halve}), "first")

    def state() -> list:
        return [([(t.name, t.source.ptr, t.source.filename, dict(t.values)) for t in i.takes],
                 i.active.name) for i in items]

    before, destroys = state(), fake.calls.get("RPR_PCM_Source_Destroy", 0)
    monkeypatch.setattr(fake, "RPR_SetMediaItemTake_Source", lambda take, source: False)
    with pytest.raises(BridgeError) as refused:
        denoise(RawRPR(fake.module()), ("debleed",), executor_for({"debleed": squash}), "second")
    message = str(refused.value)
    assert message.startswith("Snare @ 0.000 s: REAPER refused to give a take ")
    assert "\n" not in message
    assert state() == before
    assert fake.calls["RPR_PCM_Source_Destroy"] == destroys + 1  # the new source only
    assert not any(t.source.ptr in fake.destroyed for i in items for t in i.takes)
    assert fake.undo_depth == 0 and fake.refresh_depth == 0


def _channels_file(tmp_path: Path, channels: int = 3, rate: int = 48000) -> tuple[Path, np.ndarray]:
    """A file whose channels differ (each its own noise), so a wrong channel shows."""
    samples = (0.2 * np.random.default_rng(7).standard_normal((channels, rate))).astype(np.float32)
    path = tmp_path / f"ch{channels}.wav"
    sf.write(path, samples.T, rate, subtype="FLOAT")
    return path, samples


@pytest.mark.parametrize("mode,played", [(68, 2), (4, 1)], ids=["pair-2-3", "mono-right"])
def test_channel_modes_are_denoised_as_they_play(fake: FakeReaper, api, tmp_path: Path,
                                                  mode: int, played: int) -> None:
    """A take playing a stereo pair (68: channels 2/3) or one channel (4: right) of a
    3-channel source. From a file the new take keeps the mode; rendered, it plays the
    render straight, which must hold exactly the played channels: the accessor packs them
    from channel 0 and leaves the rest silent, and refuses a request for fewer channels
    than the source has."""
    path, samples = _channels_file(tmp_path)
    track = fake.add_track("Snare")
    from_file = fake.add_take(fake.add_item(track, 0.0, 0.5), fake.file_source(str(path)),
                              "file", I_CHANMODE=mode, D_STARTOFFS=0.1)
    rendered = fake.add_take(fake.add_item(track, 1.0, 0.5), fake.unmapped_source(samples, 48000),
                             "render", I_CHANMODE=mode, D_STARTOFFS=0.1, D_PLAYRATE=1.5)
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    channels = [1, 2] if mode == 68 else [1]
    for original, playrate in ((from_file, 1.0), (rendered, 1.5)):
        new = original.item.active
        assert new.name.endswith("[debleed]")
        expected = 0.5 * resampled(samples[channels], 24000, playrate, offset=4800)
        assert expected.shape[0] == played
        np.testing.assert_allclose(fake.played(new, 48000, 0.0, 24000), expected, atol=1e-7)
    assert rendered.item.active.values["I_CHANMODE"] == 0.0
    assert sf.info(rendered.item.active.source.filename).channels == played


def test_the_ctypes_accessor_read_raises_on_reapers_error(fake: FakeReaper, ctypes_api,
                                                         tmp_path: Path) -> None:
    """Inside REAPER the samples are read through ``reaper_python``'s ctypes function table:
    its -1 (here a request for fewer channels than the source has) was taken as audio."""
    from fake_reaper import FT_SAMPLES

    from reaper_bridge.items import describe_take

    path, source = _channels_file(tmp_path, channels=2)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.25)
    take = fake.add_take(item, fake.file_source(str(path)), "right", I_CHANMODE=4, D_PLAYRATE=1.5)
    rendered = wavio.render_take(ctypes_api, describe_take(ctypes_api, item.ptr),
                                 str(tmp_path / "r.wav"), block=5000)
    data = sf.read(rendered.path, dtype="float32", always_2d=True)[0].T
    np.testing.assert_allclose(data, resampled(source[1:], 12000, 1.5), atol=1e-6)
    # through ctypes alone, asking for the source's channels, in three blocks
    assert fake.calls[FT_SAMPLES] == 3 and "RPR_GetAudioAccessorSamples" not in fake.calls
    read = wavio._ctypes_reader(ctypes_api)
    accessor = ctypes_api.CreateTakeAudioAccessor(take.ptr)
    with pytest.raises(BridgeError, match="audio accessor failed"):
        read(accessor, 48000, 1, 0.0, 100)


def test_the_ctypes_read_renders_each_channel_of_the_take_in_its_place(
        fake: FakeReaper, api, ctypes_api, tmp_path: Path) -> None:
    """The ctypes read (inside REAPER) fills a ``double`` buffer the accessor interleaves:
    a 3-channel take at 1.5x from 0.1 s in, read in blocks that do not divide it, must be
    written as the take plays it, each channel where it belongs, and byte for byte as the
    read through ``RPR_GetAudioAccessorSamples`` (reapy's distant API) writes it."""
    from fake_reaper import FT_SAMPLES

    from reaper_bridge.items import describe_take

    path, samples = _channels_file(tmp_path, channels=3)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.25)
    fake.add_take(item, fake.file_source(str(path)), "Snare", D_STARTOFFS=0.1, D_PLAYRATE=1.5)
    take = describe_take(ctypes_api, item.ptr)
    through_ft = wavio.render_take(ctypes_api, take, str(tmp_path / "ft.wav"), block=5000)
    data, rate = sf.read(through_ft.path, dtype="float32", always_2d=True)
    assert rate == 48000 and data.shape == (12000, 3)
    np.testing.assert_allclose(data.T, resampled(samples, 12000, 1.5, offset=4800), atol=1e-6)
    assert fake.calls[FT_SAMPLES] == 3 and "RPR_GetAudioAccessorSamples" not in fake.calls
    through_rpr = wavio.render_take(api, take, str(tmp_path / "rpr.wav"), block=5000)
    assert fake.calls["RPR_GetAudioAccessorSamples"] == 3 and fake.calls[FT_SAMPLES] == 3
    assert Path(through_rpr.path).read_bytes() == Path(through_ft.path).read_bytes()
    assert through_rpr.digest == through_ft.digest


def test_a_stereo_pair_mode_of_a_mono_source_is_rendered_as_a_valid_pair(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """Mode 67 (channels 1/2) of a mono source plays it left and silence right; the render
    asked the accessor for the source's one channel but wrote a 2-channel header over it
    (a corrupt WAV, frames half as many as it claims)."""
    from reaper_bridge.items import describe_take

    path, samples = _channels_file(tmp_path, channels=1)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.25)
    fake.add_take(item, fake.unmapped_source(samples, 48000), "pair", I_CHANMODE=67,
                  D_PLAYRATE=1.5)
    take = describe_take(api, item.ptr)
    assert take.played_channels == 2 and take.channels == 1
    rendered = wavio.render_take(api, take, str(tmp_path / "r.wav"), block=5000)
    data = sf.read(rendered.path, dtype="float32", always_2d=True)[0].T
    assert data.shape == (2, 12000)
    np.testing.assert_allclose(data[0], resampled(samples, 12000, 1.5)[0], atol=1e-6)
    np.testing.assert_array_equal(data[1], np.zeros(12000))


def test_a_copied_items_variant_finds_its_original_by_name_and_is_relinked(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """One rule for a take's original: the take its link names, else the original of its
    base name. REAPER gives a copied or split item's takes new GUIDs but copies the link:
    with the link alone the action skipped the item and a run from the original added a
    second [debleed] take. Now the action and compare both find the original by name,
    and the next run reuses the variant and relinks it."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert item.active.name == "Snare [debleed]"
    original.guid = "{00000000-0000-0000-0000-000000000001}"  # as in a copied item
    assert [t.take for t in collect(api).takes] == [original.ptr]
    compare_next(api)
    assert item.active.ptr == original.ptr
    denoise(api, ("debleed",), executor_for({"debleed": squash}))
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed]"]
    assert item.takes[1].ext["debleed_source"] == original.guid

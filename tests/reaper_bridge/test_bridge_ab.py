"""What makes the new take a fair A/B against its original, on the fake REAPER: items it
must not be added to, what it copies from the original (take FX, pan law), what it says
it does not copy (take envelopes), empty takes, and compare's grouping by link."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_reaper import FakeReaper, null
from reaper_helpers import halve, make_wav, squash

from reaper_bridge.bridge import apply, denoise, executor_for, prepare, run_tasks
from reaper_bridge.export import export_session
from reaper_bridge.items import BridgeError, collect, compare_next, describe_take
from reaper_bridge.processing import TaskExecutor
from reaper_bridge.rpr import RawRPR


def test_an_item_playing_all_its_takes_is_skipped_and_keeps_its_flag(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """With "Play all takes" on, the new take sums with the original (+6 dB, comb
    filtering) and compare's switching changes nothing audible: the item is skipped with
    what to do, and its flag stays the user's."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    summing = fake.add_item(track, 0.0, 0.4, all_takes_play=True)
    fake.add_take(summing, fake.file_source(str(wav)), "Snare")
    plain = fake.add_item(track, 1.0, 0.4)
    fake.add_take(plain, fake.file_source(str(wav)), "Snare")
    outcome = denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert outcome.takes_added == 1 and [len(i.takes) for i in (summing, plain)] == [1, 2]
    assert outcome.skipped == ['Snare @ 0.000 s: the item plays all its takes at once: turn '
                               '"Play all takes" off for it (Item properties) to process and '
                               'compare']
    assert summing.all_takes_play and "RPR_SetMediaItemInfo_Value" not in fake.calls


def test_a_locked_item_is_skipped_also_when_locked_while_processing(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """A locked item gets no take, whether it was locked when the run started or while
    the worker ran; reading it (the training export) still works."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    locked = fake.add_item(track, 0.0, 0.4, lock=1)
    fake.add_take(locked, fake.file_source(str(wav)), "Snare")
    later = fake.add_item(track, 1.0, 0.4)
    fake.add_take(later, fake.file_source(str(wav)), "Snare")
    assert [s.reason for s in collect(api).skipped] == ["locked item: unlock it to process"]
    assert describe_take(api, locked.ptr).take_name == "Snare"  # what the export reads

    plan, cache = prepare(api, ("debleed",), "", str(tmp_path / "work"))
    run_tasks(plan.tasks, executor_for({"debleed": halve}))
    later.lock = 1  # the user locks it while the worker runs
    outcome = apply(api, plan, cache)
    assert outcome.takes_added == 0 and [len(i.takes) for i in (locked, later)] == [1, 1]
    assert outcome.skipped == ["Snare @ 0.000 s: locked item: unlock it to process",
                               "Snare @ 1.000 s: changed while processing: locked item: unlock "
                               "it to process"]
    assert fake.undo[-1] == ("end", "debleed: debleed on 0 item(s)")  # named for what it holds



def test_compare_leaves_a_locked_item_alone_and_names_it(fake: FakeReaper, api,
                                                         tmp_path: Path) -> None:
    """Compare switched a locked item's take, which the denoise action refuses to touch;
    it now keeps its take and is named, and a selection whose debleed takes are all on
    locked items says so."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    locked, free = (fake.add_item(track, p, 0.4) for p in (0.0, 1.0))
    for item in (locked, free):
        fake.add_take(item, fake.file_source(str(wav)), "Snare")
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    locked.lock = 1
    comparison = compare_next(api)
    assert (locked.active.name, free.active.name) == ("Snare [debleed]", "Snare")
    assert comparison.message() == ("now playing: original\nKept their take:\n"
                                    "  Snare @ 0.000 s: locked item: unlock it to compare")
    assert compare_next(api).variant == "debleed" and locked.active.name == "Snare [debleed]"
    free.selected = False
    with pytest.raises(BridgeError, match=r"no selected item has a debleed take to compare; "
                                          r"locked items are left alone: Snare @ 0\.000 s"):
        compare_next(api)
    assert locked.active.name == "Snare [debleed]"


def test_a_locked_tagged_item_is_still_exported(fake: FakeReaper, api, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "clean.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare [clean]"), 0.0, 0.5, lock=1, all_takes_play=True)
    fake.add_take(item, fake.file_source(str(wav)), "c")
    plan = export_session(api, str(tmp_path / "export"), TaskExecutor())
    assert plan.counts() == {"clean": 1, "bleed": 0}


def _fx(take) -> list[tuple[str, bool]]:
    return [(fx.name, fx.enabled) for fx in take.fx]


def test_the_new_take_gets_the_originals_fx_chain_before_it_plays(fake: FakeReaper,
                                                                 tmp_path: Path) -> None:
    """The denoiser reads the take before its FX, so the new take needs the same chain
    (bypassed ones too, in order) for the A/B to compare like with like; it has it before
    it becomes active, and a reused take's chain is replaced, not added to."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    fake.add_take_fx(original, "VST: ReaEQ (Cockos)")
    fake.add_take_fx(original, "VST: ReaComp (Cockos)", enabled=False)
    activated: list[list[tuple[str, bool]]] = []
    set_active = fake.RPR_SetActiveTake

    def recording(take: str) -> None:
        activated.append(_fx(fake.objects[take]))
        set_active(take)

    fake.RPR_SetActiveTake = recording  # type: ignore[method-assign]
    api = RawRPR(fake.module())
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    new = item.active
    assert new is not original and _fx(new) == _fx(original)
    assert activated == [_fx(original)]
    assert all(a is not b for a, b in zip(new.fx, original.fx))  # copies

    fake.add_take_fx(new, "JS: added by hand")
    original.fx[1].enabled = True
    fake.add_take_fx(original, "VST: ReaDelay (Cockos)")
    set_active(original.ptr)
    assert denoise(api, ("debleed",), executor_for({"debleed": squash})).takes_updated == 1
    assert item.active is new and _fx(new) == _fx(original)
    assert _fx(new) == [("VST: ReaEQ (Cockos)", True), ("VST: ReaComp (Cockos)", True),
                        ("VST: ReaDelay (Cockos)", True)]


def test_a_failed_run_undoes_the_fx_it_copied(fake: FakeReaper, api, tmp_path: Path) -> None:
    """All or nothing covers the FX chains: a run refused on a later item gives the first
    item's reused take back the chain it had."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    first = fake.add_item(track, 0.0, 0.4)
    original = fake.add_take(first, fake.file_source(str(wav)), "a")
    fake.add_take_fx(original, "VST: ReaEQ (Cockos)")
    denoise(api, ("debleed",), executor_for({"debleed": halve}), "first")
    variant = first.active
    assert _fx(variant) == [("VST: ReaEQ (Cockos)", True)]

    fake.add_take_fx(original, "VST: ReaComp (Cockos)")
    fake.RPR_SetActiveTake(original.ptr)
    second = fake.add_item(track, 1.0, 0.4)
    fake.add_take(second, fake.file_source(str(wav)), "b")
    fake.refuse_takes.add(second.ptr)
    with pytest.raises(BridgeError, match="REAPER refused to add a take"):
        denoise(api, ("debleed",), executor_for({"debleed": squash}), "second")
    restored = next(t for t in first.takes if t.ptr == variant.ptr)
    assert _fx(restored) == [("VST: ReaEQ (Cockos)", True)] and first.active.ptr == original.ptr


def test_the_message_names_the_items_whose_take_envelopes_are_not_copied(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """A take envelope (a clip-gain ride ducking the bleed, a pitch envelope) plays on the
    original only: the result message names those items, and only those."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    takes = [fake.add_take(fake.add_item(track, p, 0.4), fake.file_source(str(wav)), "s")
             for p in (0.0, 1.0, 2.0)]
    fake.add_take_envelope(takes[0], "Volume")
    fake.add_take_envelope(takes[2], "Pitch")
    fake.add_take_envelope(takes[2], "Mute")
    message = denoise(api, ("debleed",), executor_for({"debleed": halve})).message()
    assert message.splitlines()[1] == ("Take envelopes are not copied to the new takes: "
                                       "Snare @ 0.000 s, Snare @ 2.000 s; copy them by hand "
                                       "for a like-for-like A/B.")
    assert [t.envelopes for t in (i.active for i in track.items)] == [[], [], []]
    for take in takes:
        take.envelopes.clear()
        fake.RPR_SetActiveTake(take.ptr)
    assert "envelope" not in denoise(api, ("debleed",), executor_for({"debleed": halve})).message()


def test_the_new_take_keeps_the_originals_pan_law(fake: FakeReaper, api,
                                                  tmp_path: Path) -> None:
    """A panned take with its own pan law: the new take, from the file or rendered, must
    pan with that law or its level changes. The render does not bake it in, so changing
    it while the worker runs keeps a rendered take's result valid."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    from_file = fake.add_take(fake.add_item(track, 0.0, 0.4), fake.file_source(str(wav)), "f",
                              D_PAN=0.4, D_PANLAW=0.5)
    samples = np.random.default_rng(8).standard_normal((1, 30000)).astype(np.float32) * 0.1
    rendered = fake.add_take(fake.add_item(track, 1.0, 0.4), fake.unmapped_source(samples, 48000),
                             "r", D_PAN=-0.3, D_PANLAW=2.0, D_PLAYRATE=1.5)
    plan, cache = prepare(api, ("debleed",), "", str(tmp_path / "work"))
    run_tasks(plan.tasks, executor_for({"debleed": halve}))
    rendered.values["D_PANLAW"] = 1.414
    outcome = apply(api, plan, cache)
    assert outcome.takes_added == 2 and outcome.skipped == []
    assert [(t.item.active.values["D_PAN"], t.item.active.values["D_PANLAW"])
            for t in (from_file, rendered)] == [(0.4, 0.5), (-0.3, 1.414)]
    assert rendered.item.active.values["D_PLAYRATE"] == 1.0  # the render's own reset


def test_an_active_empty_take_is_named_as_such(fake: FakeReaper, api, tmp_path: Path) -> None:
    """REAPER gives NULL for an empty take: with other takes in the item, "empty item"
    was wrong."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    item = fake.add_item(track, 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare")
    fake.add_empty_take(item, active=True)
    fake.add_item(track, 1.0, 0.4)  # no take at all
    assert api.GetActiveTake(item.ptr) == null("MediaItem_Take*") == api.GetTake(item.ptr, 1)
    assert [(s.label, s.reason) for s in collect(api).skipped] == [
        ("Snare @ 0.000 s", "the active take is empty"),
        ("Snare @ 1.000 s", "empty item (no take)")]


def test_empty_takes_are_never_handed_to_reaper(fake: FakeReaper, tmp_path: Path) -> None:
    """An item holding an empty take beside its original and debleed takes: finding the
    original, the take to reuse, and compare's family read only real takes (the empty
    one's NULL used to be asked for its name, link and GUID), and undo keeps the slot."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_empty_take(item)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    null_takes: list[str] = []
    take_string = fake.RPR_GetSetMediaItemTakeInfo_String

    def watched(take: str, parm: str, value: str, set_new: bool) -> tuple:
        if take == null("MediaItem_Take*"):
            null_takes.append(parm)
        return take_string(take, parm, value, set_new)

    fake.RPR_GetSetMediaItemTakeInfo_String = watched  # type: ignore[method-assign]
    api = RawRPR(fake.module())
    denoise(api, ("debleed+gate",), executor_for({"debleed+gate": squash}))
    outcome = denoise(api, ("debleed+gate",), executor_for({"debleed+gate": halve}), "other")
    assert outcome.takes_updated == 1
    assert compare_next(api).variant is None and item.active is original
    assert null_takes == []
    assert fake.RPR_Undo_DoUndo2(0) == 1 and item.takes[0] is None


def test_compare_follows_the_link_after_the_original_is_renamed(fake: FakeReaper, api,
                                                                tmp_path: Path) -> None:
    """Variants keep the name they were made with: after the original is renamed between
    runs, its [debleed+gate] take is still in the cycle, found by its link."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    denoise(api, ("debleed+gate",), executor_for({"debleed+gate": squash}))
    original.name = "Snare top"
    fake.RPR_SetActiveTake(original.ptr)
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert [t.name for t in item.takes] == ["Snare top", "Snare [debleed+gate]",
                                            "Snare top [debleed]"]
    assert [compare_next(api).variant for _ in range(3)] == ["debleed+gate", None, "debleed"]
    fake.RPR_SetActiveTake(item.takes[1].ptr)  # from the variant whose name went stale
    assert compare_next(api).variant is None and item.active is original


def test_compare_keeps_two_same_named_originals_apart(fake: FakeReaper, api,
                                                      tmp_path: Path) -> None:
    """Two takes named alike (comped passes of one file): the variant belongs to the one it
    was made from, not to whichever comes first."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    first = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    second = fake.add_take(item, fake.file_source(str(wav)), "Snare", D_STARTOFFS=0.3)
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert item.active.ext == {"debleed_source": second.guid}
    assert compare_next(api).variant is None and item.active is second
    fake.RPR_SetActiveTake(first.ptr)
    with pytest.raises(BridgeError, match="no selected item has a debleed take"):
        compare_next(api)


def test_compare_groups_unlinked_takes_of_older_runs_by_name(fake: FakeReaper, api,
                                                             tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare")
    processors = {"gate": halve, "debleed": squash}
    denoise(api, tuple(processors), executor_for(processors))
    for take in item.takes:
        take.ext.clear()
    assert [compare_next(api).variant for _ in range(3)] == [None, "gate", "debleed"]
    fake.RPR_SetActiveTake(item.takes[0].ptr)
    item.takes[0].name = "Snare top"  # unlinked, a rename loses them: nothing to compare
    with pytest.raises(BridgeError, match="no selected item has a debleed take"):
        compare_next(api)


def test_the_fake_models_the_take_fx_and_item_calls_the_bridge_makes(
        fake: FakeReaper, tmp_path: Path) -> None:
    """What the bridge relies on: copying a chain in order to a take's end gives copies,
    deleting empties a chain, envelopes are counted, and the item and pan-law defaults."""
    module = fake.module()
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    take = fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "s.wav", 0.5))), "s")
    other = fake.add_take(item, take.source, "t")
    eq, comp = fake.add_take_fx(take, "VST: ReaEQ (Cockos)"), fake.add_take_fx(take, "JS: comp")
    assert module.RPR_TakeFX_GetCount(take.ptr) == 2
    for index in range(2):
        module.RPR_TakeFX_CopyToTake(take.ptr, index, other.ptr, index, False)
    assert other.fx == [eq, comp] and other.fx[0] is not eq and take.fx == [eq, comp]
    assert module.RPR_TakeFX_Delete(other.ptr, 1) and module.RPR_TakeFX_Delete(other.ptr, 0)
    assert other.fx == [] and module.RPR_TakeFX_GetCount(other.ptr) == 0
    fake.add_take_envelope(take, "Volume")
    assert module.RPR_CountTakeEnvelopes(take.ptr) == 1
    assert module.RPR_CountTakeEnvelopes(other.ptr) == 0
    assert module.RPR_GetMediaItemInfo_Value(item.ptr, "C_LOCK") == 0.0
    assert module.RPR_GetMediaItemInfo_Value(item.ptr, "B_ALLTAKESPLAY") == 0.0
    assert module.RPR_GetMediaItemTakeInfo_Value(take.ptr, "D_PANLAW") == -1.0


def test_a_failure_after_the_first_take_was_added_is_undone(fake: FakeReaper,
                                                            tmp_path: Path) -> None:
    """The first item's new take exists before its FX are copied; a failure there (REAPER
    gone, a broken plug-in) came before the run counted any take, so nothing was undone
    and the item kept a half-made take. The item is now back to its one take."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    original = fake.add_take(item, fake.file_source(str(wav)), "Snare")
    fake.add_take_fx(original, "VST: ReaEQ (Cockos)")

    def broken(*args: object) -> bool:
        raise RuntimeError("the FX could not be copied")

    fake.RPR_TakeFX_CopyToTake = broken  # type: ignore[method-assign]
    api = RawRPR(fake.module())
    with pytest.raises(RuntimeError, match="could not be copied"):
        denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert [t.ptr for t in item.takes] == [original.ptr] and item.active.ptr == original.ptr


def test_add_variant_take_reports_the_first_change_once(fake: FakeReaper, api,
                                                        tmp_path: Path) -> None:
    """``changed`` runs once per call, whether a take is added, a reused take gets a new
    file, or a reused take keeps its file (its values change)."""
    from reaper_bridge.items import add_variant_take

    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare")
    outputs = [make_wav(tmp_path / f"{name}.wav", 1.0, seed=seed)
               for seed, name in enumerate(("a", "b"))]
    source = describe_take(api, item.ptr)
    for path, added in ((outputs[0], True), (outputs[1], False), (outputs[1], False)):
        calls: list[None] = []
        assert add_variant_take(api, source, str(path), "debleed",
                                changed=lambda: calls.append(None)) is added
        assert len(calls) == 1 and item.active.source.filename == str(path)


def test_a_failure_destroying_a_reused_takes_old_source_is_undone(fake: FakeReaper, api,
                                                                   tmp_path: Path) -> None:
    """A rerun with other settings re-points the existing take, then destroys its old
    source; that came before ``changed``, so a failure there left the take playing the
    failed run's file (which the caller then deletes)."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare")
    denoise(api, ("debleed",), executor_for({"debleed": halve}), "first")
    first = item.active.source.filename

    def broken(source: str) -> None:
        raise RuntimeError("REAPER went away")

    fake.RPR_PCM_Source_Destroy = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="went away"):
        denoise(RawRPR(fake.module()), ("debleed",), executor_for({"debleed": squash}),
                "second")
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed]"]
    assert item.takes[1].source.filename == first

"""What makes the new take a fair A/B against its original, on the fake REAPER: items it
must not be added to, what it copies from the original (take FX, take envelopes, pan
law), what it says it could not copy, empty takes, and compare's grouping by link."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_reaper import FakeReaper, Point, null
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


def _envelopes(take) -> list[tuple]:
    """A take's envelopes as the tests compare them: name, state and points, its FX
    parameter envelopes after its own."""
    fx = [e for f in take.fx for _, e in sorted(f.envelopes.items())]
    return [(e.name, e.param, e.active, e.visible, e.armed, e.shape, e.points)
            for e in take.envelopes + fx]


def _enveloped_item(fake: FakeReaper, track, position: float, wav: Path):
    """An item whose take has a volume ride (a dip with a slow and a bezier shape), a
    bypassed, hidden pan envelope and an envelope on its EQ's fourth parameter."""
    take = fake.add_take(fake.add_item(track, position, 0.4), fake.file_source(str(wav)), "s")
    fake.add_take_envelope(take, "Volume", ((0.0, 1.0), (0.1, 0.25, 2), (0.3, 1.0, 5, 0.4)),
                           visible=True, armed=True, shape=2)
    fake.add_take_envelope(take, "Pan", ((0.0, -0.5),), active=False, visible=False)
    eq = fake.add_take_fx(take, "VST: ReaEQ (Cockos)")
    fake.add_fx_envelope(eq, 3, ((0.0, 0.2), (0.2, 0.9, 1)))
    return take


def test_every_new_take_gets_the_originals_take_envelopes(fake: FakeReaper, api,
                                                          tmp_path: Path) -> None:
    """A clip-gain ride ducking the bleed played on the original only, so the A/B
    compared it with a take that lacked it. Each variant take now has the same take
    envelopes (points, shapes, active, visible, armed; its FX's parameter envelopes too),
    each its own (not the original's ID), the original's untouched; the user's selection
    is as it was, and the item selected with it got no envelope from the action that
    made them."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    original = _enveloped_item(fake, track, 0.0, wav)
    before = _envelopes(original)
    plain = fake.add_take(fake.add_item(track, 1.0, 0.4), fake.file_source(str(wav)), "p")
    elsewhere = fake.add_item(track, 2.0, 0.4, selected=False)
    fake.add_take(elsewhere, fake.file_source(str(wav)), "e")
    outcome = denoise(api, ("gate", "debleed"), executor_for({"gate": halve, "debleed": squash}))
    assert outcome.takes_added == 4 and outcome.enveloped == []
    assert "envelope" not in outcome.message()
    variants = original.item.takes[1:]
    assert [t.name for t in variants] == ["s [gate]", "s [debleed]"]
    for variant in variants:
        assert _envelopes(variant) == before
        ids = {e.guid for e in variant.envelopes + list(variant.fx[0].envelopes.values())}
        assert len(ids) == 3 and not ids & {e.guid for e in original.envelopes}
    assert _envelopes(original) == before
    assert [t.envelopes for t in plain.item.takes] == [[], [], []]
    assert [i.selected for i in track.items] == [True, True, False]


def test_a_rerun_replaces_the_variant_takes_envelopes(fake: FakeReaper, api,
                                                     tmp_path: Path) -> None:
    """Running again after the ride was redrawn and the pan envelope removed: the reused
    take has the new ride in its one volume envelope, and the pan envelope it was given
    (which ReaScript cannot delete) is bypassed and hidden, so it changes nothing."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    original = _enveloped_item(fake, fake.add_track("Snare"), 0.0, wav)
    denoise(api, ("debleed",), executor_for({"debleed": halve}), "first")
    variant = original.item.active
    original.envelopes[0].points = [Point(0.0, 0.5), Point(0.2, 1.0, 0)]
    del original.envelopes[1]
    assert denoise(api, ("debleed",), executor_for({"debleed": squash}),
                   "second").takes_updated == 1
    assert original.item.active is variant and len(original.item.takes) == 2
    assert [e.name for e in variant.envelopes] == ["Volume", "Pan"]
    assert _envelopes(variant)[0] == _envelopes(original)[0]
    assert variant.envelopes[0].points == [Point(0.0, 0.5), Point(0.2, 1.0, 0)]
    assert (variant.envelopes[1].active, variant.envelopes[1].visible) == (False, False)
    assert _envelopes(variant)[2:] == _envelopes(original)[1:]  # one EQ envelope, as before


def test_undo_removes_the_takes_and_the_envelopes_with_them(fake: FakeReaper, api,
                                                           tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    original = _enveloped_item(fake, fake.add_track("Snare"), 0.0, wav)
    before = _envelopes(original)
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert fake.RPR_Undo_DoUndo2(0) == 1
    assert [t.ptr for t in original.item.takes] == [original.ptr]
    assert _envelopes(original.item.active) == before and original.item.selected


def test_a_failed_run_gives_the_selection_back_and_undoes_the_envelopes(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """All or nothing covers the envelopes, and the item selection the envelope actions
    changed is the user's again."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    original = _enveloped_item(fake, track, 0.0, wav)
    refused = fake.add_item(track, 1.0, 0.4)
    fake.add_take(refused, fake.file_source(str(wav)), "b")
    fake.refuse_takes.add(refused.ptr)
    aside = fake.add_item(track, 2.0, 0.4, selected=False)
    fake.add_take(aside, fake.file_source(str(wav)), "c")
    with pytest.raises(BridgeError, match="REAPER refused to add a take"):
        denoise(api, ("debleed",), executor_for({"debleed": halve}))
    assert [t.ptr for t in original.item.takes] == [original.ptr]
    assert [i.selected for i in track.items] == [True, True, False]


def test_the_message_names_the_envelopes_reaper_did_not_let_it_copy(
        fake: FakeReaper, tmp_path: Path) -> None:
    """Where REAPER makes no envelope for the action (the pitch one here), that envelope
    is named with its item, the others are copied."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    takes = [fake.add_take(fake.add_item(track, p, 0.4), fake.file_source(str(wav)), "s")
             for p in (0.0, 1.0, 2.0)]
    fake.add_take_envelope(takes[0], "Volume")
    fake.add_take_envelope(takes[2], "Pitch", ((0.0, 2.0),))
    fake.add_take_envelope(takes[2], "Mute")
    run_command = fake.RPR_Main_OnCommand

    def no_pitch_envelope(command: int, flag: int) -> None:
        if command != 41612:
            run_command(command, flag)

    fake.RPR_Main_OnCommand = no_pitch_envelope  # type: ignore[method-assign]
    outcome = denoise(RawRPR(fake.module()), ("debleed",), executor_for({"debleed": halve}))
    assert outcome.message().splitlines()[1] == (
        "Some take envelopes could not be copied to the new takes: Snare @ 2.000 s (Pitch); "
        "copy them by hand for a like-for-like A/B.")
    assert [[e.name for e in i.active.envelopes] for i in track.items] == [["Volume"], [],
                                                                           ["Mute"]]


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


def test_the_fake_models_the_take_envelope_calls_the_bridge_makes(
        fake: FakeReaper, tmp_path: Path) -> None:
    """Through REAPER's own pointer packer: a take envelope's chunk and its round trip, a
    chunk of another type refused, NULL answers, FX parameter envelopes made on demand
    and gone with their FX, and the toggle action on the selected items' active takes."""
    module = fake.module()
    track = fake.add_track("Snare")
    item, other = fake.add_item(track, 0.0, 0.4), fake.add_item(track, 1.0, 0.4, selected=False)
    source = fake.file_source(str(make_wav(tmp_path / "s.wav", 0.5)))
    take, aside = fake.add_take(item, source, "s"), fake.add_take(other, source, "o")
    volume = fake.add_take_envelope(take, "Volume", ((0.0, 1.0), (0.2, 0.5, 5, -0.3)))
    retval, _, chunk, _, _ = module.RPR_GetEnvelopeStateChunk(volume.ptr, "", 4096, False)
    assert retval and chunk.startswith(f"<VOLENV\nEGUID {volume.guid}\nACT 1 -1\nVIS 1 1 1")
    assert chunk.endswith("\nPT 0.0 1.0 0\nPT 0.2 0.5 5 0 0 0 -0.3\n>")
    assert module.RPR_GetEnvelopeStateChunk(volume.ptr, "", 20, False)[2] == chunk[:19]
    assert not module.RPR_SetEnvelopeStateChunk(volume.ptr, "<PANENV\nPT 0 1 0\n>", False)
    assert module.RPR_SetEnvelopeStateChunk(
        volume.ptr, chunk.replace("ACT 1", "ACT 0").replace("PT 0.0 1.0 0\n", ""), False)
    assert not volume.active and volume.points == [Point(0.2, 0.5, 5, -0.3)]
    assert module.RPR_GetEnvelopeName(volume.ptr, "", 64)[2] == "Volume"
    assert module.RPR_Envelope_GetParentTake(volume.ptr, 0, 0) == (take.ptr, volume.ptr, -1, -1)
    assert module.RPR_GetTakeEnvelopeByName(take.ptr, "Pitch") == null("TrackEnvelope*")
    assert module.RPR_GetEnvelopeStateChunk(null("TrackEnvelope*"), "", 64, False)[0] == 0
    assert not module.RPR_SetEnvelopeStateChunk(null("TrackEnvelope*"), chunk, False)

    fake.add_take_fx(take, "VST: ReaEQ (Cockos)")
    assert module.RPR_TakeFX_GetEnvelope(take.ptr, 0, 2, False) == null("TrackEnvelope*")
    assert module.RPR_TakeFX_GetEnvelope(take.ptr, 1, 2, True) == null("TrackEnvelope*")
    made = module.RPR_TakeFX_GetEnvelope(take.ptr, 0, 2, True)
    assert module.RPR_TakeFX_GetEnvelope(take.ptr, 0, 2, True) == made
    assert module.RPR_CountTakeEnvelopes(take.ptr) == 2
    assert module.RPR_GetTakeEnvelope(take.ptr, 1) == made
    assert module.RPR_Envelope_GetParentTake(made, 0, 0) == (take.ptr, made, 0, 2)
    assert module.RPR_GetEnvelopeName(made, "", 64)[2] == "Param 3 / VST: ReaEQ (Cockos)"
    assert module.RPR_TakeFX_Delete(take.ptr, 0)
    assert module.RPR_CountTakeEnvelopes(take.ptr) == 1
    assert module.RPR_GetEnvelopeName(made, "", 64)[0] == 0  # gone with its FX: NULL

    module.RPR_Main_OnCommand(41612, 0)
    assert [e.name for e in take.envelopes] == ["Volume", "Pitch"] and aside.envelopes == []
    module.RPR_SelectAllMediaItems(0, True)
    module.RPR_SetMediaItemSelected(item.ptr, False)
    assert (item.selected, other.selected) == (False, True)


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


def test_a_volume_envelope_made_with_another_scaling_is_named(fake: FakeReaper,
                                                             tmp_path: Path) -> None:
    """REAPER may make a take volume envelope with fader scaling (a preference), and no
    document says a chunk without ``VOLTYPE`` resets it (the fake keeps it): the copy would
    read the same points at another gain, so it is named for copying by hand. An original
    with that scaling copies silently."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    takes = [fake.add_take(fake.add_item(track, p, 0.4), fake.file_source(str(wav)), "s")
             for p in (0.0, 1.0)]
    fake.add_take_envelope(takes[0], "Volume", ((0.0, 0.5), (0.2, 1.0)))
    fake.add_take_envelope(takes[1], "Volume", ((0.0, 0.5),)).scaling = 1
    fake.volume_scaling = 1
    outcome = denoise(RawRPR(fake.module()), ("debleed",), executor_for({"debleed": halve}))
    assert outcome.message().splitlines()[1] == (
        "Some take envelopes could not be copied to the new takes: Snare @ 0.000 s (Volume); "
        "copy them by hand for a like-for-like A/B.")
    assert [i.active.envelopes[0].scaling for i in track.items] == [1, 1]
    # the mis-scaled copy plays nothing until copied by hand; the other plays its ride
    assert [i.active.envelopes[0].active for i in track.items] == [False, True]
    assert [i.active.envelopes[0].visible for i in track.items] == [False, True]


def test_a_reused_takes_old_ride_is_bypassed_when_its_new_copy_is_refused(
        fake: FakeReaper, tmp_path: Path) -> None:
    """A rerun whose copy REAPER refuses (a chunk past the binding's buffer reads so too)
    used to leave the first run's ride on the reused take, active: a wrong envelope plays
    worse than none."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    original = fake.add_take(item, fake.file_source(str(wav)), "s")
    fake.add_take_envelope(original, "Pitch", ((0.0, 0.0), (0.2, 7.0)))
    api = RawRPR(fake.module())
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    variant = item.active
    assert [p.value for p in variant.envelopes[0].points] == [0.0, 7.0]
    item.active = original
    original.envelopes[0].points = [Point(0.0, 0.0)]
    fake.RPR_SetEnvelopeStateChunk = lambda envelope, chunk, isundo: (  # type: ignore
        "ACT 0" in chunk and fake._get(envelope, type(original.envelopes[0])).set_chunk(chunk))
    outcome = denoise(RawRPR(fake.module()), ("debleed",), executor_for({"debleed": halve}))
    assert item.active is variant and outcome.enveloped == ["Snare @ 0.000 s (Pitch)"]
    assert not variant.envelopes[0].active and not variant.envelopes[0].visible


def _processed(fake: FakeReaper, api, tmp_path: Path, *variant_sets: tuple[str, ...]) -> list:
    """One "Snare" item per set, each processed to those variants alone (the last plays),
    then all selected."""
    wav = make_wav(tmp_path / "snare.wav", 2.0)
    track = fake.add_track("Snare")
    items = [fake.add_item(track, 0.5 * k, 0.4) for k in range(len(variant_sets))]
    for item in items:
        fake.add_take(item, fake.file_source(str(wav)), "Snare")
    for item, variants in zip(items, variant_sets):
        for other in items:
            other.selected = other is item
        denoise(api, variants, executor_for({v: halve for v in variants}))
    for item in items:
        item.selected = True
    return items


def _pressed(api, items: list, presses: int) -> list[tuple[str | None, list[str]]]:
    """What ``presses`` compare presses switched to, with each item's take after each."""
    return [(compare_next(api).variant, [i.active.name.removeprefix("Snare ") for i in items])
            for _ in range(presses)]


def test_compare_cycles_an_item_without_original_that_shares_no_variant(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """One item with [gate], one whose original was deleted with [debleed] and
    [debleed+gate]: the cycle stood where the first item played, which never moved while
    the second switched, so it went [debleed], [debleed+gate], [debleed] ... forever and
    the first item never reached its original. Both rest on their last take after
    [gate] and after [debleed+gate] alike; the variant compare switched to last tells
    which, and every press goes on round the cycle."""
    gated, lost = _processed(fake, api, tmp_path, ("gate",), ("debleed", "debleed+gate"))
    del lost.takes[0]  # Take > Delete active take, on the original
    start = [i.active.name for i in (gated, lost)]
    comparisons = [compare_next(api) for _ in range(4)]
    assert [c.message() for c in comparisons] == [
        "now playing: [debleed]\nKept their take:\n  Snare @ 0.000 s: no [debleed] take",
        "now playing: [debleed+gate]\nKept their take:\n"
        "  Snare @ 0.000 s: no [debleed+gate] take",
        "now playing: original\nKept their take:\n  Snare @ 0.500 s: no original take",
        "now playing: [gate]\nKept their take:\n  Snare @ 0.500 s: no [gate] take"]
    assert [i.active.name for i in (gated, lost)] == start
    assert _pressed(api, [gated, lost], 8) == 2 * [
        ("debleed", ["[gate]", "[debleed]"]),
        ("debleed+gate", ["[gate]", "[debleed+gate]"]),
        (None, ["Snare", "[debleed+gate]"]),
        ("gate", ["[gate]", "[debleed+gate]"])]


def test_compare_cycles_items_that_share_only_some_variants(fake: FakeReaper, api,
                                                            tmp_path: Path) -> None:
    """[gate] on one item, [debleed] on a second, [debleed] and [debleed+gate] on a third
    whose original was deleted: from the first item's [gate] the cycle went to [debleed]
    and [debleed+gate] and back, so the first two items never left their processed take."""
    items = _processed(fake, api, tmp_path, ("gate",), ("debleed",),
                       ("debleed", "debleed+gate"))
    del items[2].takes[0]
    assert _pressed(api, items, 8) == 2 * [
        (None, ["Snare", "Snare", "[debleed+gate]"]),
        ("gate", ["[gate]", "Snare", "[debleed+gate]"]),
        ("debleed", ["[gate]", "[debleed]", "[debleed]"]),
        ("debleed+gate", ["[gate]", "[debleed]", "[debleed+gate]"])]


def test_compare_cycles_past_a_locked_item(fake: FakeReaper, api, tmp_path: Path) -> None:
    """A locked item with every variant is left out of the cycle; of the two it leaves,
    one with [debleed+gate] and one without its original holding [gate] and [debleed],
    the cycle went [gate], [debleed], [gate] ... after the first press, so the first of
    them kept its original and never reached its [debleed+gate]."""
    locked, gated, lost = _processed(fake, api, tmp_path, ("gate", "debleed", "debleed+gate"),
                                     ("debleed+gate",), ("gate", "debleed"))
    del lost.takes[0]
    locked.lock = 1
    assert _pressed(api, [locked, gated, lost], 8) == 2 * [
        (None, ["[debleed+gate]", "Snare", "[debleed]"]),
        ("gate", ["[debleed+gate]", "Snare", "[gate]"]),
        ("debleed", ["[debleed+gate]", "Snare", "[debleed]"]),
        ("debleed+gate", ["[debleed+gate]", "[debleed+gate]", "[debleed]"])]


def test_a_rendered_takes_envelopes_keep_their_moments_at_another_playrate(
        fake: FakeReaper, tmp_path: Path) -> None:
    """A take envelope's time is the time into the item times the take's playrate; a
    rendered take plays at playrate 1, so its copies are retimed: copied as they were, the
    original's ride at 1.5x landed 1.5 times later in the item, past its end at the last."""
    item = fake.add_item(fake.add_track("Snare"), 1.0, 0.25)
    samples = np.random.default_rng(3).standard_normal((1, 48000)).astype(np.float32) * 0.1
    original = fake.add_take(item, fake.unmapped_source(samples, 48000), "Snare", D_PLAYRATE=1.5)
    ride = ((0.0, 1.0), (0.15, 0.1), (0.30, 0.1), (0.31, 1.0))
    fake.add_take_envelope(original, "Volume", ride)
    outcome = denoise(RawRPR(fake.module()), ("debleed",), executor_for({"debleed": halve}))
    variant = item.active
    assert variant.values["D_PLAYRATE"] == 1.0 and outcome.enveloped == []

    def moments(take) -> list[float]:
        rate = take.values["D_PLAYRATE"]
        return [item.position + point.time / rate for point in take.envelopes[0].points]

    assert moments(variant) == pytest.approx(moments(original), abs=1e-12)
    assert moments(original) == pytest.approx([1.0, 1.1, 1.2, 1.0 + 0.31 / 1.5])


def test_a_compare_press_on_another_selection_leaves_this_ones_round(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """ExtState is one store for every project tab: the variant another selection's press
    switched to between two presses here used to stand for this selection's last, and the
    second item skipped its [debleed] that round."""
    gated, lost = _processed(fake, api, tmp_path, ("gate",), ("debleed", "debleed+gate"))
    del lost.takes[0]
    other = fake.add_item(fake.tracks[0], 5.0, 0.4)
    fake.add_take(other, fake.file_source(str(make_wav(tmp_path / "other.wav", 1.0))), "Other")
    rounds = _pressed(api, [gated, lost], 4)
    for item in (gated, lost):
        item.selected = False
    other.selected = True
    denoise(api, ("debleed+gate",), executor_for({"debleed+gate": halve}))
    assert [compare_next(api).variant for _ in range(2)] == [None, "debleed+gate"]
    other.selected = False
    for item in (gated, lost):
        item.selected = True
    assert _pressed(api, [gated, lost], 4) == rounds

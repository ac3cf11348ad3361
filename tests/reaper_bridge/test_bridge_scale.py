"""Large selections: messages stay short, output names cost O(n) claims, and each item's
takes are read from REAPER once however many variants it gets."""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

import pytest
from fake_reaper import FakeReaper
from reaper_helpers import halve, make_wav, squash

from reaper_bridge import jobs
from reaper_bridge.bridge import Outcome, denoise, executor_for
from reaper_bridge.items import BridgeError, Skipped, summarise
from reaper_bridge.jobs import MediaCache
from reaper_bridge.rpr import RawRPR

PROCESSORS = {"gate": halve, "debleed": squash, "debleed+gate": squash}


def test_a_selection_of_only_skipped_items_gives_a_short_error(fake: FakeReaper, api) -> None:
    track = fake.add_track("Snare")
    for n in range(300):
        fake.add_take(fake.add_item(track, float(n), 0.5), fake.midi_source(), "Groove")
    with pytest.raises(BridgeError) as caught:
        denoise(api, ("debleed",), executor_for({"debleed": squash}))
    text = str(caught.value)
    assert len(text) < 1000, len(text)
    assert "MIDI take (300 items): Snare @ 0.000 s, " in text and "... and 292 more" in text


def test_many_skipped_items_give_a_short_outcome_message(fake: FakeReaper, api,
                                                         tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    fake.add_take(fake.add_item(track, 0.0, 0.5), fake.file_source(str(wav)), "Snare")
    for n in range(1, 301):
        fake.add_take(fake.add_item(track, float(n), 0.5), fake.midi_source(), "Groove")
    outcome = denoise(api, ("debleed",), executor_for({"debleed": squash}))
    assert outcome.takes_added == 1 and len(outcome.skipped) == 300  # the full list stays
    message = outcome.message()
    assert len(message.splitlines()) <= 4 and len(message) < 1000, message
    assert "Skipped 300 items:" in message and "MIDI take (300 items)" in message
    assert "... and 292 more" in message
    assert len(outcome.message(full=True).splitlines()) == 302


def test_summary_groups_reasons_and_caps_their_number() -> None:
    few = [Skipped("A", "MIDI take"), Skipped("B", "locked item")]
    assert summarise(few) == ["A: MIDI take", "B: locked item"]  # a few: listed in full
    many = ([Skipped(f"m{n}", "MIDI take") for n in range(3)]
            + [Skipped(f"o{n}", f"offline source (file not found: f{n}.wav)") for n in range(20)]
            + [Skipped(f"l{n}", "locked item") for n in range(10)])
    lines = summarise(many)
    assert lines[0] == "locked item (10 items): " + ", ".join(f"l{n}" for n in range(8)) \
        + ", ... and 2 more"
    assert lines[1] == "MIDI take (3 items): m0, m1, m2"
    assert len(lines) == 9 and lines[-1] == "... and 14 more item(s) for 14 other reason(s)"


def test_the_envelope_line_is_cut_short() -> None:
    outcome = Outcome(20, 0, 1, 0, [],
                      enveloped=[f"Snare @ {n}.000 s (Pitch)" for n in range(20)])
    line = outcome.message().splitlines()[1]
    assert line.endswith("Snare @ 7.000 s (Pitch), ... and 12 more; copy them by hand for a "
                         "like-for-like A/B.")
    assert "Snare @ 19.000 s (Pitch)" in outcome.message(full=True)


def test_claiming_many_names_for_one_stem_costs_linear_claims(tmp_path: Path,
                                                              monkeypatch) -> None:
    claims = Counter[str]()
    listings = Counter[str]()
    try_claim, scandir = jobs.try_claim, os.scandir

    def counted_claim(path: str) -> bool:
        claims["claim"] += 1
        return try_claim(path)

    def counted_scandir(path: object = ".") -> object:
        listings["scandir"] += 1
        return scandir(path)

    monkeypatch.setattr(jobs, "try_claim", counted_claim)
    monkeypatch.setattr(os, "scandir", counted_scandir)
    cache = MediaCache(str(tmp_path / "Media"))
    names = [os.path.basename(cache.unique_path("Snare", "debleed")) for _ in range(400)]
    assert names[:3] == ["Snare.debleed.wav", "Snare.debleed-2.wav", "Snare.debleed-3.wav"]
    assert names[-1] == "Snare.debleed-400.wav" and len(set(names)) == 400
    assert os.path.basename(cache.unique_path("Snare", "gate")) == "Snare.gate.wav"
    assert claims["claim"] == 401

    claims.clear()  # a later run starts past what the folder holds: no walk from 1
    again = MediaCache(str(tmp_path / "Media"))
    names = [os.path.basename(again.unique_path("Snare", "debleed")) for _ in range(400)]
    assert names[0] == "Snare.debleed-401.wav" and names[-1] == "Snare.debleed-800.wav"
    assert os.path.basename(again.unique_path("Snare", "debleed-gate")) == "Snare.debleed-gate.wav"
    assert claims["claim"] == 401  # the old walk from 1: 401 + 402 + ... + 800
    assert listings["scandir"] == 2  # one listing per plan, not per name


def test_a_name_claimed_by_another_run_after_the_listing_is_skipped(tmp_path: Path) -> None:
    media = tmp_path / "Media"
    media.mkdir()
    (media / "Kick.debleed.wav").touch()
    (media / "KICK.DEBLEED-3.wav").touch()
    cache = MediaCache(str(media))
    assert os.path.basename(cache.unique_path("Kick", "debleed")) == "Kick.debleed-4.wav"
    (media / "Kick.debleed-5.wav").touch()  # a concurrent run took the next one
    assert os.path.basename(cache.unique_path("Kick", "debleed")) == "Kick.debleed-6.wav"


def test_each_items_takes_are_read_once_for_all_its_variants(fake: FakeReaper,
                                                            tmp_path: Path) -> None:
    """Applying three variants to an item read its take table (takes, links, names)
    once per variant; now the table read when the item is checked again serves all."""
    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), "Snare")
    api = RawRPR(fake.module())
    denoise(api, tuple(PROCESSORS), executor_for(PROCESSORS))
    assert [t.name for t in item.takes] == ["Snare", "Snare [gate]", "Snare [debleed]",
                                            "Snare [debleed+gate]"]

    reads: Counter[tuple[str, str]] = Counter()
    read_string, count_takes = fake.RPR_GetSetMediaItemTakeInfo_String, fake.RPR_CountTakes

    def counted(take: str, parm: str, value: str, set_new: bool) -> tuple:
        if not set_new:
            reads[(take, parm)] += 1
        return read_string(take, parm, value, set_new)

    def counted_count(item_ptr: str) -> int:
        reads[(item_ptr, "CountTakes")] += 1
        return count_takes(item_ptr)

    fake.RPR_GetSetMediaItemTakeInfo_String = counted  # type: ignore[method-assign]
    fake.RPR_CountTakes = counted_count  # type: ignore[method-assign]
    api = RawRPR(fake.module())
    fake.RPR_SetActiveTake(item.takes[0].ptr)
    outcome = denoise(api, tuple(PROCESSORS), executor_for(PROCESSORS))
    assert outcome.takes_updated == 3 and outcome.files_cached == 3
    assert len(item.takes) == 4 and item.active.name == "Snare [debleed+gate]"
    # Once when the selection is read, once when apply checks the item again: not per variant.
    assert reads and max(reads.values()) == 2, reads


def test_nine_items_skipped_for_nine_reasons_are_all_named() -> None:
    """Grouping starts past eight items, and the heading says so: nine items with nine
    reasons were headed "Skipped:" over grouped lines that hid one of them."""
    from reaper_bridge.bridge import Outcome
    from reaper_bridge.items import Skipped

    skips = [Skipped(f"item {n}", f"reason {n}") for n in range(9)]
    text = Outcome(0, 0, 0, 0, skips).message()
    assert "Skipped 9 items:" in text and "Skipped:\n" not in text


def test_the_export_message_summarises_hundreds_of_skipped_items() -> None:
    """The export's message box listed every skipped item, as denoise's did."""
    from reaper_bridge.export import ExportPlan
    from reaper_bridge.items import Skipped

    plan = ExportPlan("/out", "/out/.staging", io.BytesIO(),
                      skipped=[Skipped(f"Snare {n}", "MIDI take") for n in range(300)])
    text = plan.message()
    assert len(text) < 1000 and "MIDI take (300 items)" in text

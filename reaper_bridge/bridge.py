"""The denoise action's three phases, shared by every way of running it.

``prepare`` (read the selection, plan tasks, render accessor fallbacks) and ``apply``
(add the takes in one undo block) talk to REAPER; between them the tasks run either in a
worker subprocess polled with ``defer`` (inside REAPER, ``actions``) or in this process
(the distant CLI and the tests, ``denoise``). Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from denoiser.errors import SilentAudioError

from .items import (EPSILON, SUMMARY_LIMIT, TAKE_VALUES, BridgeError, Selection, Skipped,
                    SoleSelection, TakeSource, UndoBlock, add_variant_take, collect,
                    copy_take_envelopes, describe_take, list_labels, project_items,
                    project_media_dir, summarise)
from .jobs import GATED, MediaCache, Plan, Task, discard, plan_denoise, render_path
from .sidechain import find_track, keyable, origin, render_keys, skip_silent_keys
from .wavio import render_take

#: ``process(src, dst)``: write the processed version of audio file ``src`` to ``dst``.
Processor = Callable[[str, str], object]
#: ``execute(task, report)`` runs one task; ``report(fraction)`` tells how far it is.
Executor = Callable[[Task, Callable[[float], None]], object]
#: ``progress(fraction_of_all_tasks, message)``.
Progress = Callable[[float, str], None]
#: The take values an accessor render bakes in (the new take applies volume, pan and pan
#: law itself).
RENDERED_VALUES = tuple(parm for parm in TAKE_VALUES
                        if parm not in ("D_VOL", "D_PAN", "D_PANLAW"))
#: Why an item whose source has nothing to denoise is skipped (see ``run_tasks``).
SILENT = "silent"


@dataclass
class Outcome:
    """What an action did, for the one message shown to the user. ``skips``: the items
    left alone and why (``skipped``: as ``label: reason`` lines); ``enveloped``: the
    items given takes that lack some of their original's take envelopes, as ``label
    (envelope, ...)``: those REAPER did not let the bridge copy. Both hold every item;
    the message summarises them (``items.summarise``)."""

    takes_added: int
    takes_updated: int
    files_processed: int
    files_cached: int
    skips: list[Skipped]
    note: str = ""
    enveloped: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> list[str]:
        return [f"{s.label}: {s.reason}" for s in self.skips]

    def message(self, full: bool = False) -> str:
        """The outcome in a few lines whatever the selection's size: past
        ``items.SUMMARY_LIMIT`` items, skipped items are grouped by reason with counts and
        the envelope list is cut short (``... and N more``). ``full``: list every item."""
        text = (f"debleed: {self.takes_added} take(s) added, {self.takes_updated} updated; "
                f"{self.files_processed} file(s) processed, {self.files_cached} reused from cache.")
        if self.enveloped:
            names = (", ".join(self.enveloped) if full else list_labels(self.enveloped))
            text += ("\nSome take envelopes could not be copied to the new takes: " + names
                     + "; copy them by hand for a like-for-like A/B.")
        if self.note:
            text += f"\n{self.note}"
        if self.skips:
            lines = self.skipped if full else summarise(self.skips)
            head = ("Skipped:" if full or len(self.skips) <= SUMMARY_LIMIT
                    else f"Skipped {len(self.skips)} items:")
            text += f"\n{head}\n" + "\n".join(f"  {line}" for line in lines)
        return text


def batched(api: Any) -> contextlib.AbstractContextManager[Any]:
    """Group distant-API calls: reapy holds REAPER's server loop for the whole block
    instead of one round trip per deferred cycle (a no-op inside REAPER)."""
    if api is sys.modules.get("reapy.reascript_api"):  # its __name__ is overwritten by reapy
        import reapy

        return reapy.inside_reaper()
    return contextlib.nullcontext()


def executor_for(processors: Mapping[str, Processor]) -> Executor:
    """Adapt plain ``process(src, dst)`` callables, one per variant, to an ``Executor``."""

    def execute(task: Task, report: Callable[[float], None]) -> None:
        if task.kind != "denoise" or task.variant not in processors:
            raise BridgeError(f"no processor for {task.kind} {task.variant!r}")
        processors[task.variant](task.src, task.dst)

    return execute


def run_tasks(tasks: list[Task], execute: Executor,
              progress: Progress | None = None) -> set[str]:
    """Run tasks in order, reporting overall progress (a progress callback that raises
    stops the run: the worker's cancel). Returns the sources found silent: their tasks
    are skipped, not failed (``apply`` skips their items), so one silent item among many
    no longer fails the whole run; the source's later tasks (other variants) are not run."""
    total = max(1, len(tasks))
    silent: set[str] = set()
    for index, task in enumerate(tasks):
        note = os.path.basename(task.src)

        def report(fraction: float, index: int = index, note: str = note) -> None:
            if progress is not None:
                progress((index + min(max(fraction, 0.0), 1.0)) / total, note)

        report(0.0)
        if task.src not in silent:
            try:
                execute(task, report)
            except SilentAudioError:
                silent.add(task.src)
        report(1.0)
    return silent


def prepare(api: Any, variants: tuple[str, ...], settings_key: str, work_dir: str,
            project: Any = 0, sidechain_track: str = "") -> tuple[Plan, MediaCache]:
    """Read the selection and plan the tasks; render accessor fallbacks into ``work_dir``,
    and, for gated variants keyed by ``sidechain_track``, that track's audio."""
    with batched(api):
        selection: Selection = collect(api, project)
        if not selection.takes:
            lines = summarise(selection.skipped)  # a message box: a few lines at most
            raise BridgeError("no audio items selected (select items, or tracks)"
                              + (": " + "; ".join(lines) if lines else ""))
        keys = None
        gated = bool(GATED.intersection(variants))
        if gated:
            selection.takes = [gated_as_played(take) for take in selection.takes]
        if sidechain_track and gated:
            track = find_track(api, sidechain_track, project)
            selection.takes = [keyable(take) for take in selection.takes]
            keys = skip_silent_keys(selection, render_keys(api, track, selection.takes, work_dir),
                                    sidechain_track)
        renders = {index: render_take(api, take, render_path(work_dir, index, take))
                   for index, take in enumerate(selection.takes) if take.file is None}
        cache = MediaCache(project_media_dir(api, project))
        plan = plan_denoise(selection, variants, cache, renders, settings_key, keys)
    return plan, cache


def gated_as_played(take: TakeSource) -> TakeSource:
    """The take as a plan with a gated variant processes it: one playing some of its file's
    channels (a mono-left take of a stereo file) is rendered as it plays, so the gate hears
    only those; the whole file's gate is linked across its channels, and a hit on a channel
    the take never plays opened it. A plan holds one description per take, so its ungated
    variants read the render too: the network processes each channel on its own, so they
    sound the same, but such items cost a run each instead of one per shared file."""
    played = take.played_source_channels
    if take.file is not None and played is not None and set(played) != set(range(take.channels)):
        return replace(take, file=None)
    return take


PROJECT_SWITCHED = ("the project was switched or closed while processing; run the action "
                    "again")


def current_project(api: Any) -> Any:
    """The ReaProject* of the current project tab (``EnumProjects(-1, ...)`` returns
    ``(project, idx, projfn, projfn_sz)``): recorded at prepare, compared at apply."""
    return api.EnumProjects(-1, "", 0)[0]


def require_project(api: Any, project: Any) -> None:
    """Refuse to apply when the current project is no longer ``project``: ``apply``
    works on the current project, so in another tab it would report every item deleted
    and record an empty undo point there. The caller then discards the run's files."""
    if current_project(api) != project:
        raise BridgeError(PROJECT_SWITCHED)


def _rendered_from(take: TakeSource) -> tuple[object, ...]:
    """Everything an accessor render of ``take`` depends on."""
    return (tuple(take.values[parm] for parm in RENDERED_VALUES), take.length,
            take.section_offset, take.stretch_markers)


def _current(api: Any, then: TakeSource, gated: bool, keyed: bool, live: set[str],
             tables: dict[str, Any] | None = None) -> TakeSource | Skipped:
    """The take as it is now, or why its processed file no longer fits it.

    Inside REAPER ``apply`` runs in a later deferred call than ``prepare``, and the user
    may have slipped, trimmed, moved or deleted the item meanwhile: the new takes take the
    original's values of now. An item is left alone when it is gone, plays another take
    or file, its render no longer matches what it plays, or (keyed gates) its sidechain
    timeline moved. ``gated``/``keyed``: the plan has gated variants (keyed by a
    sidechain), which process some takes as rendered (``gated_as_played``, ``keyable``);
    ``live``: the project's items now; ``tables``: where the item's take table is kept for
    ``add_variant_take`` (see ``describe_take``)."""
    if then.item not in live:
        return Skipped(then.label, "the item was deleted while processing")
    now = describe_take(api, then.item, new_take=True, tables=tables)
    if isinstance(now, Skipped):
        return Skipped(then.label, f"changed while processing: {now.reason}")
    now = gated_as_played(now) if gated else now
    now = keyable(now) if keyed else now
    if now.take != then.take or now.file != then.file:
        return Skipped(then.label, "its take or source changed while processing; run the "
                                   "action again")
    if then.file is None and _rendered_from(now) != _rendered_from(then):
        return Skipped(then.label, "edited while processing (the render no longer matches "
                                   "it); run the action again")
    if keyed and (abs(origin(now) - origin(then)) > EPSILON
                  or now.position + now.length > then.position + then.length + EPSILON):
        return Skipped(then.label, "moved against the sidechain track while processing; run "
                                   "the action again")
    return now


def undo_label(plan: Plan, items: int) -> str:
    """The undo point's name: the variants, and how many items get takes."""
    return f"debleed: {'+'.join(plan.variants)} on {items} item(s)"


def apply(api: Any, plan: Plan, cache: MediaCache, project: Any = 0,
          silent: Collection[str] = ()) -> Outcome:
    """Give every item its processed takes in one undo block; the last variant ends up
    active. Each take is read again first (see ``_current``): an item changed past what
    its file fits is skipped and named, the others get their takes. An item whose source
    is ``silent`` (``run_tasks``) is skipped as ``SILENT``, and its tasks' files (a gate
    variant made before the silence was found, the names claimed when planning) are
    removed and never cached: nothing on disk or in the project changes for it.

    All or nothing: when anything fails partway (REAPER refusing a take, or a step after
    an item was changed, see ``add_variant_take``'s ``changed``), the block is closed and
    undone, so no item keeps a take of a run that reported failure (and the caller may then
    delete the run's files: no take plays them). A block that changed nothing is not
    undone: that would undo the user's previous action if REAPER recorded no point for
    it. The cache records the new files only after that, so it never names a file a failed
    run deleted.

    Neither the files nor the accessor renders apply the original's take envelopes
    (volume, pan, mute, pitch, take FX parameters), so each new take gets copies of them
    (``copy_take_envelopes``); the outcome names the items with any REAPER did not let it
    copy. REAPER makes a take's volume, pan, mute or pitch envelope only through actions
    on the selected items' active takes, so the item is selected alone for them, and the
    user's selection is given back before the undo block closes."""
    added = updated = 0
    skipped = list(plan.selection.skipped)
    unmade = {task.dst for task in plan.tasks if task.src in silent}
    quiet = [index for index in range(len(plan.selection.takes))
             if any(plan.outputs[(index, variant)] in unmade for variant in plan.variants)]
    if len(quiet) == len(plan.selection.takes):  # as a selection of MIDI items only
        discard(plan.tasks)
        lines = summarise(skipped + [Skipped(plan.selection.takes[i].label, SILENT)
                                     for i in quiet])
        raise BridgeError("nothing to process: every selected item is silent: "
                          + "; ".join(lines))
    enveloped: list[str] = []
    touched = False  # an item changed (set by add_variant_take's callback)

    def changed() -> None:
        nonlocal touched
        touched = True

    given = 0  # items that got their takes: the undo point's count, set before it closes
    try:
        planned = len(plan.selection.takes) - len(quiet)  # named so if it fails partway
        with batched(api), UndoBlock(api, undo_label(plan, planned)) as block, \
                SoleSelection(api, project) as solo:
            live = project_items(api, project)
            for index, then in enumerate(plan.selection.takes):
                if index in quiet:
                    skipped.append(Skipped(then.label, SILENT))
                    continue
                tables: dict[str, Any] = {}  # the item's takes, read once for all variants
                take = _current(api, then, plan.gated, plan.keyed, live, tables)
                if isinstance(take, Skipped):
                    skipped.append(take)
                    continue
                missed: dict[str, None] = {}  # the envelopes not copied, in order, once each
                for variant in plan.variants:
                    output = plan.outputs[(index, variant)]
                    if add_variant_take(api, take, output, variant, rendered=take.file is None,
                                        changed=changed, tables=tables):
                        added += 1
                    else:
                        updated += 1
                    missed.update(dict.fromkeys(copy_take_envelopes(
                        api, take.take, api.GetActiveTake(take.item), take.item, solo)))
                if missed:
                    enveloped.append(f"{take.label} ({', '.join(missed)})")
                given += 1
            block.description = undo_label(plan, given)
            api.Main_OnCommand(40047, 0)  # Peaks: build any missing peaks
    except BaseException:
        if touched:
            api.Undo_DoUndo2(0)
        raise
    made = [task for task in plan.tasks if task.src not in silent]
    discard([task for task in plan.tasks if task.src in silent])
    processed = sum(1 for t in made if t.kind == "denoise")
    outcome = Outcome(added, updated, processed, plan.cached, skipped, enveloped=enveloped)
    try:
        cache.commit(made)
    except OSError as exc:  # the takes stand; a later run processes again instead of reusing
        outcome.note = (f"The cache index was not written ({exc.strerror or exc}): a later "
                        "run processes these files again.")
    return outcome


@contextlib.contextmanager
def work_directory() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="debleed-reaper-") as path:
        yield path


def denoise(api: Any, variants: tuple[str, ...], execute: Executor, settings_key: str = "",
            progress: Progress | None = None, project: Any = 0,
            sidechain_track: str = "") -> Outcome:
    """The whole action in this process: plan, process, add takes.

    A failing task, a take REAPER refuses, or a switch to another project tab while the
    tasks run leaves the project untouched (no take, no open undo block) and removes the
    files this run wrote; a silent source is no failure: its items are skipped."""
    with work_directory() as work_dir:
        tab = current_project(api)
        plan, cache = prepare(api, variants, settings_key, work_dir, project, sidechain_track)
        try:
            silent = run_tasks(plan.tasks, execute, progress)
            require_project(api, tab)
            return apply(api, plan, cache, project, silent)
        except BaseException:
            discard(plan.tasks)
            raise

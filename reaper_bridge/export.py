"""Export tagged clean-snare and bleed-only takes for ``debleed dataset session``.

Tagging: a track whose name contains ``[clean]`` (clean snare takes: isolated snare,
no kit playing) or ``[bleed]`` (the snare mic while the rest of the kit plays and the
snare does not), case-insensitive; an item note containing one of the tags overrides
its track's tag. Every tagged audio item in the project is exported as what its take
plays, into ``DIR/clean/`` and ``DIR/bleed/``, with ``DIR/export.json`` recording where
each file came from. Standard library only.

An export is written into a hidden staging folder of its own inside ``DIR`` and replaces
the previous export's ``clean/``, ``bleed/`` and manifest whole, once every file is done,
so a failed or cancelled re-export leaves the previous one whole. A lock on a file in
``DIR``, held from planning to the end, refuses a second export into the same folder (the
REAPER action's and the CLI's run in different processes, so the action's job registry
cannot see the other); the operating system releases it when its process ends, so a crash
leaves no lock behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from denoiser.outfiles import replace_paths

from .bridge import Executor, Progress, run_tasks
from .filelock import HeldLock, busy_message, release, try_lock
from .items import (EPSILON, BridgeError, Skipped, TakeSource, describe_take, item_notes,
                    project_media_dir, summarise, track_name)
from .jobs import Task, safe_stem
from .wavio import render_take

TAGS = ("clean", "bleed")
MANIFEST = "export.json"
STAGING_PREFIX = ".debleed-export-"
LOCK = ".debleed-export.lock"
#: The export folder when neither the command nor the settings name one, in the media folder.
DEFAULT_FOLDER = "debleed-training"
#: A staging folder this old was left by a crash; a younger one may still be written.
STALE_STAGING_SECONDS = 86400.0
#: ``debleed dataset session``'s default ``--clip-seconds`` (repeated here: this module is
#: standard library only, so it cannot import ``training``): a clean take shorter than one
#: clip gives no clip at all.
SESSION_CLIP_SECONDS = 10.0
#: ``debleed dataset session``'s shortest ``--clip-seconds`` (``training.synth.CLIP_SECONDS``,
#: repeated for the same reason): a clean take shorter than this gives no clip at all.
SESSION_SHORTEST_CLIP = 0.5
#: The files ``debleed dataset session`` reads (``training.kits.AUDIO_SUFFIXES``, repeated
#: for the same reason): only one of these in ``clean/`` or ``bleed/`` can mix into a dataset.
SESSION_AUDIO_SUFFIXES = (".wav", ".bwf", ".rf64", ".w64", ".flac", ".aif", ".aiff", ".aifc",
                          ".ogg")
#: Far below a sample at any rate: a take REAPER measures as 6.9999999 s is exported as
#: exactly 7 s of samples, so it still holds one 7 s clip.
LENGTH_TOLERANCE = 1e-6


def out_dir_for(api: Any, configured: str = "") -> str:
    """Where an export goes: ``configured`` (the INI's ``export_dir`` or a command's
    ``--out``), else ``DEFAULT_FOLDER`` in the project's media folder."""
    return configured or os.path.join(project_media_dir(api), DEFAULT_FOLDER)


def tag_of(text: str) -> str | None:
    lowered = text.lower()
    for tag in TAGS:
        if f"[{tag}]" in lowered:
            return tag
    return None


#: How much of an item's label an exported file name keeps: the number before it keeps names
#: unique, and a long track name made the whole export fail past the file system's limit
#: (255 bytes a name; on Windows 260 characters a path, staging folder included).
EXPORT_STEM_CHARS = 60


@dataclass
class ExportPlan:
    """Tasks and renders write into ``staging``; ``finish`` moves its folders into place."""

    out_dir: str
    staging: str
    lock: HeldLock
    tasks: list[Task] = field(default_factory=list)
    renders: list[tuple[TakeSource, str]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    project: str = ""  # the exporting project's media folder ("" if it has none yet)

    def counts(self) -> dict[str, int]:
        return {tag: sum(1 for e in self.entries if e["tag"] == tag) for tag in TAGS}

    def clean_seconds(self) -> list[float]:
        """The clean takes' lengths (within ``LENGTH_TOLERANCE``)."""
        return [float(e["length"]) + LENGTH_TOLERANCE for e in self.entries
                if e["tag"] == "clean"]

    def shortest_clean_seconds(self) -> float | None:
        """The shortest clean take's length (within ``LENGTH_TOLERANCE``), if any."""
        return min(self.clean_seconds(), default=None)

    def clip_seconds(self) -> float | None:
        """The ``--clip-seconds`` to suggest, or None when the default suits every clean take.

        Why: ``debleed dataset session`` cuts each clean take into whole clips of
        ``SESSION_CLIP_SECONDS`` by default, so a shorter take (a short sound-check) would
        give nothing. The suggestion is the shortest clean take rounded down to 0.1 s, so
        it gives at least one clip, and at least ``SESSION_SHORTEST_CLIP``, which the
        command refuses to go below (whole seconds, at least 1, gave single hits under a
        second no clip at all)."""
        shortest = self.shortest_clean_seconds()
        if shortest is None or shortest >= SESSION_CLIP_SECONDS:
            return None
        return max(SESSION_SHORTEST_CLIP, math.floor(shortest * 10) / 10)

    def message(self) -> str:
        counts = self.counts()
        text = (f"debleed: exported {counts['clean']} clean and {counts['bleed']} bleed file(s) "
                f"to {self.out_dir}\n{self.next_step()}")
        if self.skipped:
            text += "\nSkipped:\n" + "\n".join(f"  {line}" for line in summarise(self.skipped))
        return text

    def next_step(self) -> str:
        """The ``debleed dataset session`` command to run, or what it still lacks: it needs
        clean and bleed takes, and the command printed for an export of one tag failed on
        the other's missing folder."""
        missing = [tag for tag, count in self.counts().items() if not count]
        if missing:
            return (f"No [{missing[0]}] take was exported, and 'debleed dataset session' needs "
                    f"clean and bleed takes: tag some [{missing[0]}] and export again, or give "
                    f"its --{missing[0]} another export's {missing[0]} folder")
        lengths = self.clean_seconds()
        if max(lengths) < SESSION_SHORTEST_CLIP:
            return (f"No command to run: every clean take is shorter than "
                    f"{SESSION_SHORTEST_CLIP:g} s (the longest is {max(lengths):.3g} s), the "
                    "shortest clip 'debleed dataset session' cuts, so it would give no clip: "
                    "tag longer clean takes (several hits each) and export again")
        clip = self.clip_seconds()
        text = (f"Next: debleed dataset session --clean "
                f"\"{os.path.join(self.out_dir, 'clean')}\" --bleed "
                f"\"{os.path.join(self.out_dir, 'bleed')}\""
                + (f" --clip-seconds {clip:g}" if clip is not None else "") + " --out DATASET")
        short = sum(length < clip for length in lengths) if clip is not None else 0
        if short:
            text += (f"\n(--clip-seconds {clip:g}, the shortest it takes: {short} of "
                     f"{len(lengths)} clean takes are shorter and give no clip)")
        elif clip is not None:
            text += (f"\n(--clip-seconds {clip:g}: the shortest clean take is "
                     f"{math.floor(min(lengths) * 100) / 100:g} s, and a "
                     f"clean take shorter than one clip, {SESSION_CLIP_SECONDS:g} s by default, "
                     "gives none)")
        return text


def tagged_items(api: Any, project: Any = 0) -> list[tuple[str, str]]:
    """``(tag, item)`` for every item tagged by its note or its track's name."""
    found: list[tuple[str, str]] = []
    for t in range(int(api.CountTracks(project))):
        track = api.GetTrack(project, t)
        track_tag = tag_of(track_name(api, track))
        for i in range(int(api.CountTrackMediaItems(track))):
            item = api.GetTrackMediaItem(track, i)
            tag = tag_of(item_notes(api, item)) or track_tag
            if tag:
                found.append((tag, item))
    return found


def _resolved(out_dir: str, name: str) -> str:
    """``name``'s real path, comparable with another's whatever its spelling."""
    return os.path.normcase(os.path.realpath(os.path.join(out_dir, name)))


def _previous_manifest(out_dir: str) -> dict[str, Any]:
    """The previous export's manifest, or ``{}`` when there is none or it is unreadable."""
    try:
        with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        return {}
    return previous if isinstance(previous, dict) else {}


def _same_folder(a: str, b: str) -> bool:
    """Whether two paths name one folder, whatever their spelling or links."""
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _project_from_export(out_dir: str, project: str) -> str:
    """``project`` relative to ``out_dir`` ("" without a project, or on another Windows
    drive): moving or renaming a folder holding both keeps it, so ``<media>/debleed-training``
    of a moved project still names its own media folder (``..``)."""
    if not project:
        return ""
    try:
        return os.path.relpath(os.path.realpath(project), os.path.realpath(out_dir))
    except ValueError:  # Windows: no relative path from one drive to another
        return ""


def _names_project(out_dir: str, previous: dict[str, Any], project: str) -> bool:
    """Whether the previous manifest names ``project``: by its absolute path (older
    manifests have only that), or by its path relative to ``out_dir``. Neither can be
    another project's media folder at the time of the check."""
    recorded = [str(previous.get("project") or "")]
    relative = str(previous.get("project_from_export") or "")
    if relative:
        recorded.append(os.path.join(out_dir, relative))
    return any(path and _same_folder(path, project) for path in recorded)


def _refuse_another_projects(plan: ExportPlan) -> None:
    """A re-export replaces the previous one, so an ``export_dir`` shared by several
    projects lost each one's export to the next, with the same file names. The manifest
    names its project (media folder, see ``_names_project``): another's is refused, saying
    how to go on. The oldest manifests name none."""
    previous = _previous_manifest(plan.out_dir)
    recorded = str(previous.get("project") or "")
    if recorded and plan.project and not _names_project(plan.out_dir, previous, plan.project):
        raise BridgeError(f"{plan.out_dir} holds the training export of another project "
                          f"({recorded}); exporting here would replace it. If that export is "
                          "not wanted (or is this project's from before it moved), delete its "
                          f"clean, bleed and {MANIFEST} and export again; to keep it, export "
                          "this project elsewhere: clear export_dir in debleed.ini (each "
                          "project then exports into its own media folder) or run 'debleed "
                          "reaper export --out DIR'")


def _previous_files(out_dir: str) -> set[str]:
    """The files the previous export's manifest lists, as real paths: only those directly
    in ``clean/`` or ``bleed/``, where an export writes, so a tampered or foreign manifest
    cannot pass a file of the user's below them for the export's (``_refuse_unlisted``)."""
    folders = {_resolved(out_dir, tag) for tag in TAGS}
    try:
        paths = {_resolved(out_dir, str(entry["file"]))
                 for entry in _previous_manifest(out_dir).get("files", [])}
    except (TypeError, KeyError):
        return set()
    return {path for path in paths if os.path.dirname(path) in folders}


def _session_reads(name: str) -> bool:
    """Whether ``dataset session`` reads a file so named (``training.kits.visible_files``):
    a visible one with an audio suffix."""
    suffix = os.path.splitext(name)[1].lower()
    return not name.startswith(".") and suffix in SESSION_AUDIO_SUFFIXES


def _link_target(out_dir: str, tag: str) -> str | None:
    """The folder ``tag`` (``clean`` or ``bleed``) points to when it is a link (or a Windows
    junction) to one elsewhere, a bigger disk say; None when it is a folder or missing."""
    top = os.path.join(out_dir, tag)
    real = os.path.realpath(top)
    here = os.path.join(os.path.realpath(out_dir), tag)
    return real if os.path.normcase(real) != os.path.normcase(here) else None


def _refuse_unlisted(out_dir: str) -> None:
    """An export replaces ``clean/`` and ``bleed/`` whole, so an audio file there that
    ``dataset session`` would read and the previous manifest does not list stops it: a
    previous export's whose export.json was deleted or is unreadable (kept, it would mix
    into this one's takes), or one of the user's (it would be deleted). Any other file goes
    with the folders: the system and REAPER write them beside the clips (.DS_Store, ._
    companions, Thumbs.db, the ``.reapeaks`` peaks of a clip played), and refused, they
    stopped every re-export after a listen. A file where a folder goes is refused as
    ``os.makedirs`` would (it was, once moving in began)."""
    listed = _previous_files(out_dir)
    unlisted = []
    for tag in TAGS:
        top = os.path.join(out_dir, tag)
        if os.path.lexists(top) and not os.path.isdir(top):
            target = _link_target(out_dir, tag)
            raise BridgeError(f"{top}: is a file, not a folder" if target is None else
                              f"{top}: links to {target}, which is not a folder")
        for folder, folders, names in os.walk(top):
            folders[:] = [name for name in folders if not name.startswith(".")]
            paths = (os.path.join(folder, name) for name in names if _session_reads(name))
            unlisted += [path for path in paths if _resolved(out_dir, path) not in listed]
    if unlisted:
        first = os.path.relpath(min(unlisted), out_dir)
        raise BridgeError(f"{out_dir} holds {len(unlisted)} audio file(s) in clean or bleed "
                          f"that no {MANIFEST} there lists ({first}"
                          f"{', ...' if len(unlisted) > 1 else ''}); an export replaces those "
                          "folders whole: move the files elsewhere, or delete them, and "
                          "export again")


def _sliceable(take: TakeSource) -> bool:
    """Whether cutting the take's file reproduces what it plays: rate 1, no pitch shift,
    no stretch markers (then ``file`` is None), nothing past the file's ends (a looped item
    wraps there), and a channel mode naming only channels the source has (what REAPER plays
    for a missing one is left to the accessor; the slice applies volume)."""
    return (take.file is not None and take.unit_rate and take.within_file
            and abs(take.values["D_PITCH"]) < EPSILON and take.mode_channels_exist)


def _lock(out_dir: str) -> HeldLock:
    """Claim ``out_dir`` for this export: two exports into one folder would move, delete
    and list each other's files."""
    path = os.path.join(out_dir, LOCK)
    lock = try_lock(path)
    if lock is None:
        raise BridgeError(f"an export into {out_dir} is running: {busy_message(path)} (an "
                          "action's export holds it until REAPER ends it or quits)")
    return lock


def _remove_crashed_staging(out_dir: str) -> None:
    """Remove staging folders crashed exports left over a day ago, in ``out_dir`` and in a
    folder ``clean`` or ``bleed`` links to (``_linked_replacements``). While this export
    holds the lock no other one writes into ``out_dir``, but a network file system may lock
    for its own machine only, so a younger one is left: it may be another machine's."""
    linked = (_link_target(out_dir, tag) for tag in TAGS)
    for folder in [out_dir, *(target for target in linked if target and os.path.isdir(target))]:
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                if (entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False)
                        and time.time() - entry.stat().st_mtime > STALE_STAGING_SECONDS):
                    shutil.rmtree(entry.path, ignore_errors=True)


def _begin(out_dir: str) -> ExportPlan:
    """Lock ``out_dir`` and give the export a staging folder of its own."""
    os.makedirs(out_dir, exist_ok=True)
    lock = _lock(out_dir)
    try:
        _remove_crashed_staging(out_dir)
        return ExportPlan(out_dir, tempfile.mkdtemp(dir=out_dir, prefix=STAGING_PREFIX), lock)
    except BaseException:
        release(lock)
        raise


def _add_take(api: Any, plan: ExportPlan, number: int, tag: str, item: Any) -> None:
    """A slice task if a cut of the take's file reproduces it, else an accessor render."""
    take = describe_take(api, item)
    if isinstance(take, Skipped):
        plan.skipped.append(take)
        return
    name = f"{tag}/{number:04d}_{safe_stem(take.label)[:EXPORT_STEM_CHARS]}.wav"
    dst = os.path.join(plan.staging, name)
    if _sliceable(take):
        plan.tasks.append(Task("slice", take.file, dst,
                               start=int(round(take.source_offset * take.sample_rate)),
                               frames=int(round(take.length * take.sample_rate)),
                               chanmode=take.chanmode, gain=take.gain))
    else:
        plan.renders.append((take, dst))
    plan.entries.append({"file": name, "tag": tag, "item": take.label,
                         "take": take.take_name, "source": take.file,
                         "position": take.position, "length": take.length})


def plan_export(api: Any, out_dir: str, project: Any = 0) -> ExportPlan:
    """Plan every tagged take; the plan holds ``out_dir``'s lock until ``finish`` or
    ``abandon``."""
    tagged = tagged_items(api, project)
    if not tagged:
        raise BridgeError("nothing tagged: put [clean] or [bleed] in a track name or an item note")
    plan = _begin(out_dir)
    try:
        with contextlib.suppress(BridgeError):  # an unsaved project: nothing to compare
            plan.project = project_media_dir(api, project)
        _refuse_another_projects(plan)
        _refuse_unlisted(out_dir)
        for number, (tag, item) in enumerate(tagged):
            _add_take(api, plan, number, tag, item)
        if not plan.entries:
            raise BridgeError("no exportable audio among the tagged items: "
                              + "; ".join(summarise(plan.skipped)))
    except BaseException:
        abandon(plan)
        raise
    return plan


def render_fallbacks(api: Any, plan: ExportPlan) -> None:
    """Render the takes no slice reproduces; the accessor leaves take and item volume to us."""
    for take, path in plan.renders:
        render_take(api, take, path, gain=take.gain)


def finish(plan: ExportPlan) -> str:
    """Replace the previous export with this one, then end the plan however that went.
    The manifest is written into staging first and moves in with the folders; files
    added to ``clean/`` or ``bleed/`` since planning stop it as they stopped planning."""
    try:
        with open(os.path.join(plan.staging, MANIFEST), "w", encoding="utf-8") as handle:
            json.dump({"project": plan.project,
                       "project_from_export": _project_from_export(plan.out_dir, plan.project),
                       "files": plan.entries, "counts": plan.counts()}, handle, indent=1)
        _refuse_unlisted(plan.out_dir)
        _swap_in(plan)
        return os.path.join(plan.out_dir, MANIFEST)
    finally:
        abandon(plan)


def _swap_in(plan: ExportPlan) -> None:
    """Put the staged ``clean/``, ``bleed/`` and manifest in place of the previous ones,
    whole (``replace_paths``). Files moved in one by one, and a failure part-way (Windows
    refuses to replace a file REAPER or a player has open) left two exports mixed in one
    folder. The previous export waits in staging folders of its own (``_staging_beside``),
    deleted once everything is in place, as far as that goes (the export has succeeded by
    then). A tag this export has no take of has no staged folder: its old one goes."""
    incoming: list[str] = []  # a linked tag's staged files, moved to its folder's disk
    try:
        replacements: list[tuple[Path | None, Path]] = []
        for name in (*TAGS, MANIFEST):
            current, staged = os.path.join(plan.out_dir, name), os.path.join(plan.staging, name)
            target = _link_target(plan.out_dir, name) if name in TAGS else None
            if target is not None:
                incoming.append(tempfile.mkdtemp(dir=target, prefix=STAGING_PREFIX))
                replacements += _linked_replacements(target, staged, incoming[-1])
            else:
                replacements.append((Path(staged) if os.path.lexists(staged) else None,
                                     Path(current)))
        replace_paths(replacements, _staging_beside)
    finally:  # empty once moved in; after a failure, copies of staged files
        for folder in incoming:
            shutil.rmtree(folder, ignore_errors=True)


def _staging_beside(entry: Path) -> Path:
    """A staging folder beside ``entry`` for the previous export's entries: ``abandon``
    cannot delete it if undoing a failed swap fails too, and ``_remove_crashed_staging``
    clears it a day after a crash."""
    return Path(tempfile.mkdtemp(dir=entry.parent, prefix=STAGING_PREFIX))


def _linked_replacements(target: str, staged: str,
                         folder: str) -> list[tuple[Path | None, Path]]:
    """What replaces the entries of ``target``, the folder a linked ``clean`` or ``bleed``
    points to (another disk, say), and the link stays: it was renamed away and deleted, and
    the export landed in a folder of its own on the export folder's disk. ``folder`` is a
    staging folder in ``target``, so every rename stays on ``target``'s file system, mount
    point or not: the staged files move (or are copied, from another disk) into
    ``folder/new`` first. Every previous entry goes, but for hidden staging folders:
    another swap's, or a crashed one's younger than a day, which ``_remove_crashed_staging``
    keeps for a day (swept aside with the clips they were deleted at once)."""
    incoming = os.path.join(folder, "new")
    if os.path.lexists(staged):
        shutil.move(staged, incoming)  # a rename on one disk, else a copy
    else:
        os.mkdir(incoming)  # this export has no take of the tag: the folder is emptied
    new = sorted(os.listdir(incoming))
    previous = sorted(name for name in set(os.listdir(target)) - set(new)
                      if not name.startswith(STAGING_PREFIX))
    return ([(None, Path(target, name)) for name in previous]
            + [(Path(incoming, name), Path(target, name)) for name in new])


def abandon(plan: ExportPlan) -> None:
    """Remove the staging folder (the files of an export that failed or was cancelled)
    and release ``out_dir``'s lock."""
    shutil.rmtree(plan.staging, ignore_errors=True)
    release(plan.lock)


def export_session(api: Any, out_dir: str, execute: Executor,
                   progress: Progress | None = None, project: Any = 0) -> ExportPlan:
    """The whole export in this process (distant CLI and tests); files of a failed
    export are removed."""
    plan = plan_export(api, out_dir, project)
    try:
        render_fallbacks(api, plan)
        run_tasks(plan.tasks, execute, progress)
    except BaseException:
        abandon(plan)
        raise
    finish(plan)
    return plan

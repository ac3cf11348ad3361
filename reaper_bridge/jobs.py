"""Turn a selection into processing tasks: one run per distinct source file and variant.

Several items cut from one recording share one root file; the denoiser runs on the
whole file once and every item gets a take of the processed file. Results are cached in
the media folder by (path, mtime, size, variant, settings), and those of takes rendered
through the audio accessor by the digest of the render, so running the action again
costs nothing. Standard library only.

Several runs may plan against one media folder at once (the CLI through reapy while an
action's worker runs, two REAPER instances sharing a project): each output name is
claimed on disk when planned (an empty placeholder the worker's atomic write replaces),
and the cache index is merged under a lock the operating system holds, never overwritten.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from denoiser.outfiles import AUDIO_SUFFIX, atomic_output, hidden_prefix

from .filelock import locked
from .items import Selection, TakeSource
from .wavio import Rendered

CACHE_NAME = ".debleed-cache.json"
#: How long ``commit`` waits for another run's index lock (a merge holds it for
#: milliseconds; a crashed run's lock is released by its operating system).
LOCK_TIMEOUT_SECONDS = 10.0
SLUGS = {"gate": "gate", "debleed": "debleed", "debleed+gate": "debleed-gate"}
GATED = frozenset({"gate", "debleed+gate"})  # the variants a sidechain keys
#: The pre-gate's algorithm (``denoiser.gate``), in gated variants' cache keys: raise it when
#: the same settings gate differently, or a run reuses takes the old gate made. 2 since
#: 2026-12-07, when the hold began to restart above threshold + hysteresis.
GATE_VERSION = 2
#: ``<stem>.<slug>.wav`` or ``<stem>.<slug>-<n>.wav``: a name ``MediaCache.unique_path``
#: gives (the longest slug first: ``x.debleed-gate.wav`` is no numbered ``debleed``).
_OUTPUT_NAME = re.compile(
    r"(.*)\.(" + "|".join(re.escape(slug) for slug in sorted(SLUGS.values(), key=len,
                                                           reverse=True))
    + r")(?:-([0-9]+))?\.wav", re.IGNORECASE)


@dataclass(frozen=True)
class Task:
    """One file to produce. ``kind`` is ``"denoise"`` (run ``variant`` on ``src``, its gate
    keyed by the ``sidechain`` file when one is given) or ``"slice"`` (copy ``frames``
    samples from ``start``, zero-padded, through REAPER channel mode ``chanmode`` and
    times ``gain``, for export)."""

    kind: str
    src: str
    dst: str
    variant: str = ""
    start: int = 0
    frames: int = 0
    cache_key: str = ""
    sidechain: str = ""
    chanmode: int = 0
    gain: float = 1.0


@dataclass
class Plan:
    """Everything an action does: tasks to run, then takes to add from their outputs.
    ``keyed``: gated variants are keyed by a sidechain rendered on each take's timeline."""

    selection: Selection
    variants: tuple[str, ...]
    tasks: list[Task] = field(default_factory=list)
    outputs: dict[tuple[int, str], str] = field(default_factory=dict)
    cached: int = 0
    keyed: bool = False

    @property
    def gated(self) -> bool:
        """Whether a gated variant is among those made."""
        return bool(GATED.intersection(self.variants))


def tasks_to_json(tasks: list[Task]) -> list[dict[str, Any]]:
    """The worker's job-file form of ``tasks``."""
    return [asdict(t) for t in tasks]


def safe_stem(text: str) -> str:
    """A file-name-safe version of a take or track name."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "take"


def try_claim(path: str) -> bool:
    """Create ``path`` empty, unless it exists: ``O_EXCL`` makes that one atomic step, so
    of processes claiming one output name exactly one gets it. Errors other than the name
    being taken propagate."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        return False
    return True


def render_path(work_dir: str, index: int, take: TakeSource) -> str:
    """Where the ``index``-th selected take is rendered through the accessor."""
    return os.path.join(work_dir, f"{index:03d}_{safe_stem(take.take_name)}.wav")


class MediaCache:
    """Index of processed files in the project media folder."""

    def __init__(self, media_dir: str):
        self.media_dir = media_dir
        self.path = os.path.join(media_dir, CACHE_NAME)
        self.index = self._read()
        #: The number ``unique_path`` tries next, by (stem, slug) casefolded.
        self._next: dict[tuple[str, str], int] = {}
        self._highest: dict[tuple[str, str], int] | None = None  # read once, by _listed

    def _read(self) -> dict[str, str]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return dict(json.load(handle))
        except (OSError, ValueError, TypeError):
            return {}

    @staticmethod
    def key(src: str, variant: str, settings_key: str) -> str:
        stat = os.stat(src)
        return f"{variant}|{settings_key}|{os.path.abspath(src)}|{stat.st_mtime_ns}|{stat.st_size}"

    def lookup(self, key: str) -> str | None:
        """The recorded result of ``key``, if it is still there (an empty file is another
        run's claimed name, not a result)."""
        name = self.index.get(key)
        if name:
            path = os.path.join(self.media_dir, name)
            with contextlib.suppress(OSError):
                if os.path.isfile(path) and os.path.getsize(path) > 0:
                    return path
        return None

    def _listed(self) -> dict[tuple[str, str], int]:
        """The highest number of each (stem, slug) in the media folder or its cache index,
        by one listing per plan (``<stem>.<slug>.wav`` counts as 1). The index remembers
        results deleted since (the project folder cleaned after an undo): an undo or redo
        can bring back a take that played one, which must not find another result there."""
        if self._highest is None:
            names = list(self.index.values())
            with contextlib.suppress(OSError), os.scandir(self.media_dir) as entries:
                names.extend(entry.name for entry in entries)
            self._highest = {}
            for name in names:
                match = _OUTPUT_NAME.fullmatch(str(name))
                if match:
                    key = (match[1].casefold(), match[2].casefold())
                    number = int(match[3]) if match[3] else 1
                    self._highest[key] = max(self._highest.get(key, 0), number)
        return self._highest

    def unique_path(self, stem: str, slug: str) -> str:
        """Claim ``<stem>.<slug>.wav``, numbered (``<stem>.<slug>-2.wav``...) when taken on
        disk or earlier in this plan: the name is created empty with ``O_EXCL``, so a run
        planned at the same time in another process cannot get it too. The caller removes
        it if the run fails.

        The search for a stem starts past the highest number the media folder holds for
        it (one listing per plan) and goes on from the last name claimed, so a plan of n
        names costs O(n) claims however many earlier runs left files; a number freed
        since is not reused. Each failed claim is a name that exists, so it ends."""
        os.makedirs(self.media_dir, exist_ok=True)
        key = (stem.casefold(), slug.casefold())  # NTFS and APFS ignore case
        n = self._next[key] if key in self._next else self._listed().get(key, 0) + 1
        while not try_claim(path := os.path.join(
                self.media_dir, f"{stem}.{slug}.wav" if n == 1 else f"{stem}.{slug}-{n}.wav")):
            n += 1
        self._next[key] = n + 1
        return path

    def commit(self, tasks: list[Task]) -> None:
        """Record finished tasks (called only after they succeeded), merged into the index
        as it is on disk now: entries other runs wrote meanwhile are kept."""
        new = {task.cache_key: os.path.basename(task.dst) for task in tasks if task.cache_key}
        if not new:
            return
        os.makedirs(self.media_dir, exist_ok=True)
        names = {name.casefold() for name in new.values()}
        with locked(self.path + ".lock", LOCK_TIMEOUT_SECONDS):
            index = {key: name for key, name in self._read().items()
                     if str(name).casefold() not in names}  # a reused name: its old entry is stale
            index.update(new)
            with atomic_output(self.path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
                json.dump(index, handle, indent=1, sort_keys=True)
        self.index = index


def discard(tasks: list[Task]) -> None:
    """Remove the tasks' outputs (finished, or still the empty placeholders that claimed
    their names when planned) after a failure or cancel, and the temporary files of a
    worker killed while writing (Windows' terminate runs no clean-up): nothing half-done
    remains."""
    for task in tasks:  # cached results are not tasks: they stay
        folder, name = os.path.split(task.dst)
        pattern = os.path.join(glob.escape(folder), glob.escape(hidden_prefix(name)) + "*"
                               + AUDIO_SUFFIX)
        for path in [task.dst, *glob.glob(pattern)]:
            with contextlib.suppress(OSError):
                os.remove(path)


def plan_denoise(selection: Selection, variants: tuple[str, ...], cache: MediaCache,
                 renders: Mapping[int, Rendered] | None = None, settings_key: str = "",
                 keys: Mapping[int, Rendered] | None = None) -> Plan:
    """One task per (distinct source, variant). A take's source is its root file, or its
    accessor render (``renders``, by take index) when it has no readable file; renders are
    cached by the digest of their audio, files by path, time and size.

    With ``keys`` (a rendered sidechain per take index), the gated variants run once per
    distinct key instead: the same file keyed on two timelines gives two results.

    Every task's output name is claimed on disk (see ``MediaCache.unique_path``): whoever
    plans must remove the tasks' outputs if the run does not finish (``bridge.discard``);
    a plan that fails itself frees them before raising."""
    plan = Plan(selection, variants, keyed=keys is not None)
    by_source: dict[tuple[str, str, str], str] = {}
    try:
        for index, take in enumerate(selection.takes):
            render = (renders or {}).get(index)
            if render is not None:
                src, source, stem = render.path, f"render:{render.digest}", take.take_name
            else:
                src = source = os.path.abspath(take.file)
                stem = os.path.splitext(os.path.basename(take.file))[0]
            for variant in variants:
                key = keys.get(index) if keys is not None and variant in GATED else None
                sidechain = key.path if key is not None else ""
                src_key = (source, variant, sidechain)
                if src_key not in by_source:
                    salt = settings_key if key is None else f"{settings_key}|key:{key.digest}"
                    if variant in GATED:
                        salt += f"|gate:{GATE_VERSION}"
                    cache_key = (f"{variant}|{salt}|{source}" if render is not None
                                 else MediaCache.key(src, variant, salt))
                    cached = cache.lookup(cache_key)
                    if cached:
                        plan.cached += 1
                        by_source[src_key] = cached
                    else:
                        dst = cache.unique_path(safe_stem(stem), SLUGS[variant])
                        plan.tasks.append(Task("denoise", src, dst, variant,
                                               cache_key=cache_key, sidechain=sidechain))
                        by_source[src_key] = dst
                plan.outputs[(index, variant)] = by_source[src_key]
    except BaseException:
        discard(plan.tasks)  # the names this plan claimed are freed: no run will write them
        raise
    return plan

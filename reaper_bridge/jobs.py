"""Turn a selection into processing tasks: one run per distinct source file and variant.

Several items cut from one recording share one root file; the denoiser runs on the
whole file once and every item gets a take of the processed file. Results are cached in
the media folder by (path, mtime, size, variant, settings), and those of takes rendered
through the audio accessor by the digest of the render, so running the action again
costs nothing. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .items import Selection, TakeSource
from .wavio import Rendered

CACHE_NAME = ".debleed-cache.json"
SLUGS = {"gate": "gate", "debleed": "debleed", "debleed+gate": "debleed-gate"}
GATED = frozenset({"gate", "debleed+gate"})  # the variants a sidechain keys


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


def tasks_to_json(tasks: list[Task]) -> list[dict[str, Any]]:
    """The worker's job-file form of ``tasks``."""
    return [asdict(t) for t in tasks]


def safe_stem(text: str) -> str:
    """A file-name-safe version of a take or track name."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "take"


def render_path(work_dir: str, index: int, take: TakeSource) -> str:
    """Where the ``index``-th selected take is rendered through the accessor."""
    return os.path.join(work_dir, f"{index:03d}_{safe_stem(take.take_name)}.wav")


class MediaCache:
    """Index of processed files in the project media folder."""

    def __init__(self, media_dir: str):
        self.media_dir = media_dir
        self.path = os.path.join(media_dir, CACHE_NAME)
        try:
            with open(self.path, encoding="utf-8") as handle:
                self.index: dict[str, str] = dict(json.load(handle))
        except (OSError, ValueError, TypeError):
            self.index = {}
        self.reserved: set[str] = set()

    @staticmethod
    def key(src: str, variant: str, settings_key: str) -> str:
        stat = os.stat(src)
        return f"{variant}|{settings_key}|{os.path.abspath(src)}|{stat.st_mtime_ns}|{stat.st_size}"

    def lookup(self, key: str) -> str | None:
        name = self.index.get(key)
        if name and os.path.isfile(os.path.join(self.media_dir, name)):
            return os.path.join(self.media_dir, name)
        return None

    def unique_path(self, stem: str, slug: str) -> str:
        """``<stem>.<slug>.wav``, numbered when taken on disk or earlier in this plan."""
        for n in range(1, 10000):
            name = f"{stem}.{slug}.wav" if n == 1 else f"{stem}.{slug}-{n}.wav"
            path = os.path.join(self.media_dir, name)
            if name.casefold() not in self.reserved and not os.path.exists(path):
                self.reserved.add(name.casefold())  # NTFS and APFS ignore case
                return path
        raise OSError(f"no free file name for {stem}.{slug}.wav in {self.media_dir}")

    def commit(self, tasks: list[Task]) -> None:
        """Record finished tasks (called only after they succeeded)."""
        for task in tasks:
            if task.cache_key:
                self.index[task.cache_key] = os.path.basename(task.dst)
        os.makedirs(self.media_dir, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.index, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def plan_denoise(selection: Selection, variants: tuple[str, ...], cache: MediaCache,
                 renders: Mapping[int, Rendered] | None = None, settings_key: str = "",
                 keys: Mapping[int, Rendered] | None = None) -> Plan:
    """One task per (distinct source, variant). A take's source is its root file, or its
    accessor render (``renders``, by take index) when it has no readable file; renders are
    cached by the digest of their audio, files by path, time and size.

    With ``keys`` (a rendered sidechain per take index), the gated variants run once per
    distinct key instead: the same file keyed on two timelines gives two results."""
    plan = Plan(selection, variants, keyed=keys is not None)
    by_source: dict[tuple[str, str, str], str] = {}
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
    return plan

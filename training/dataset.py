"""Torch datasets of (noisy, clean) snare-mic pairs.

``ClipFolder`` reads a dataset folder (``manifest.json`` + clip folders) from disk;
``SynthStream`` renders clips on the fly from drum kits, endlessly, so training is bound
by the model, not by disk space. Both yield float32 tensors shaped ``(1, samples)``; with
``hits=True`` a third: at each sample, how many snare hits of the clip's meta start there
(what the ``hitlevel`` loss scores).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from denoiser.audio import sf_name, sf_reason
from denoiser.errors import ParameterError

from .config import MIN_SEGMENT_SECONDS, STREAM_VERSION
from .errors import DatasetError
from .manifest import SPLITS, check_clip_files, read_manifest
from .metrics import target_onset_samples
from .synth import Clip, SynthConfig, clip_seed, render_clip

TRACKS = ("noisy", "clean", "bleed")
#: The crop of an on-the-fly clip draws from its own stream of the clip's seed: drawn from
#: the stream that renders the clip, its first number also chose the clip's kit, so with
#: a segment that does not divide the clip each kit's crops started in its own stretch.
CROP_STREAM = 0xC409
#: The spawn key of the on-the-fly stream's clip seeds (``stream_clip_seed``).
STREAM_KEY = 0x57EA


def stream_clip_seed(seed: int, index: int, version: int = STREAM_VERSION) -> int:
    """The seed clip ``index`` of an on-the-fly stream seeded ``seed`` renders from.

    Version 1 (runs saved before 2026-12-07) used ``clip_seed(seed, index)``, which is clip
    ``index`` of ``dataset synth --seed seed``: ``train --kit K`` trained on the very clips
    of the dataset of the same kits and seed, its validation clips included, and
    ``evaluate`` on that dataset scored audio the run had trained on. Version 2 adds
    ``STREAM_KEY`` as SeedSequence's spawn key, appended after the entropy padded to four
    words, so no dataset clip's ``[seed, index]`` spells the same entropy."""
    if version == 1:
        return clip_seed(seed, index)
    sequence = np.random.SeedSequence([seed, index], spawn_key=(STREAM_KEY,))
    return int(sequence.generate_state(1, np.uint32)[0])


def hit_marks(starts: np.ndarray, first: int, samples: int) -> torch.Tensor:
    """``(1, samples)`` float32: at each sample of the segment from sample ``first``, how
    many of ``starts`` (hit onsets in a clip's samples) fall there, else 0. Two onsets on one
    sample (a roll stroke on another hit) are two hits to the level metrics, so two here."""
    marks = torch.zeros(1, samples)
    inside = starts[(starts >= first) & (starts < first + samples)] - first
    marks[0].index_add_(0, torch.from_numpy(inside), torch.ones(inside.size))
    return marks


def meta_hit_starts(meta: Any, sample_rate: int, where: str | Path) -> np.ndarray:
    """The samples where the snare hits of a clip's ``meta`` (its ``onsets``) start, or a
    ``DatasetError`` naming ``where`` the meta came from: among thousands of clips, an
    error without the file's name left the user to find it."""
    onsets = meta.get("onsets") if isinstance(meta, dict) else None
    if not isinstance(onsets, list) or not all(isinstance(o, dict) for o in onsets):
        raise DatasetError(f"{where}: no list of snare onsets, which the hitlevel loss scores")
    try:
        return target_onset_samples(onsets, sample_rate)
    except (ParameterError, ValueError, TypeError) as exc:
        raise DatasetError(f"{where}: unreadable snare onsets, which the hitlevel loss "
                           f"scores ({exc})") from None


def endless(batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``batches`` pass after pass, for as many steps as a run takes. Lazy: the first pass
    starts at the first draw, after a resumed run has positioned the loader."""
    while True:
        yield from batches


class ClipFolder(Dataset):
    """Map-style dataset over the clips of one split of a dataset folder.

    With ``segment_seconds`` and ``random_segments`` (training), item ``i`` is a random
    crop of clip ``i`` (offset from torch's RNG, which DataLoader seeds per worker);
    without ``random_segments`` (validation) the clips are tiled into fixed,
    non-overlapping segments so every run scores the same audio. Without
    ``segment_seconds`` an item is a whole clip. ``hits`` adds the item's hit marks
    (``hit_marks``), from each clip's ``meta.json``, read when the folder opens.
    """

    def __init__(self, root: str | Path, split: str | None = "train",
                 segment_seconds: float | None = None, random_segments: bool = True,
                 hits: bool = False):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if split is not None and split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        self.split = split
        self.sample_rate = int(self.manifest.get("sample_rate", 48000))
        self.clips = self.entries(split)
        self.segment = (None if segment_seconds is None
                        else int(round(segment_seconds * self.sample_rate)))
        self.random_segments = random_segments
        self.onsets = [self.hit_starts(entry) for entry in self.clips] if hits else None
        self.items: list[tuple[int, int]] = []
        if self.segment is not None:
            for index, entry in enumerate(self.clips):
                # Checked when the dataset opens: a broken clip stops the run before its
                # first step, not epochs into it.
                frames = check_clip_files(self.root, entry, self.sample_rate).frames
                if frames < self.segment:
                    raise DatasetError(f"{self._path(entry, 'noisy')}: clip shorter than "
                                       f"the {segment_seconds} s segment; train with a "
                                       "--segment-seconds of at most "
                                       f"{math.floor(frames / self.sample_rate * 100) / 100:g}")
                if random_segments:
                    self.items.append((index, frames - self.segment))
                else:
                    self.items.extend((index, k * self.segment)
                                      for k in range(frames // self.segment))

    def entries(self, split: str | None = None) -> list[dict]:
        """Manifest entries of ``split`` (all clips for None)."""
        return [c for c in self.manifest["clips"] if split is None or c["split"] == split]

    def hit_starts(self, entry: dict) -> np.ndarray:
        """The samples where the clip's snare hits start, from its ``meta.json``."""
        path = self.root / entry["id"] / "meta.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: no readable snare onsets, which the hitlevel loss "
                               f"scores ({type(exc).__name__}: {exc})") from None
        return meta_hit_starts(meta, self.sample_rate, path)

    def _path(self, entry: dict, track: str) -> Path:
        return self.root / entry["id"] / f"{track}.wav"

    def load(self, entry: dict) -> Clip:
        """A whole clip with its meta (bleed.wav optional: session datasets have one too).
        Its files are checked first as the training clips' are when the folder opens:
        validation clips load whole, and noisy and clean of two lengths were a traceback."""
        frames = check_clip_files(self.root, entry, self.sample_rate).frames
        if frames < MIN_SEGMENT_SECONDS * self.sample_rate:  # the losses' longest window
            raise DatasetError(f"{self.root / entry['id']}: {frames} samples, shorter than "
                               f"{MIN_SEGMENT_SECONDS:g} s; it cannot be scored (remove it)")
        tracks = {}
        for track in TRACKS:
            path = self._path(entry, track)
            if track == "bleed" and not path.is_file():
                tracks[track] = tracks["noisy"] - tracks["clean"]
                continue
            tracks[track] = self._read(path, 0, -1)
        meta_path = self.root / entry["id"] / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        meta.setdefault("sample_rate", self.sample_rate)
        return Clip(tracks["noisy"], tracks["clean"], tracks["bleed"], meta)

    def _read(self, path: Path, start: int, stop: int) -> np.ndarray:
        try:
            data, rate = sf.read(sf_name(path), start=start, stop=None if stop < 0 else stop,
                                 dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DatasetError(f"{path}: unreadable clip ({sf_reason(exc)})") from None
        if rate != self.sample_rate:
            raise DatasetError(f"{path}: {rate} Hz, the manifest says {self.sample_rate} Hz")
        if not np.isfinite(data).all():  # a NaN batch would leave BatchNorm's statistics NaN
            raise DatasetError(f"{path}: contains NaN/inf samples")
        return data.mean(axis=1)

    def __len__(self) -> int:
        return len(self.items) if self.segment is not None else len(self.clips)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """Clip ``item``, or ``(index, draw)``: a random crop then starts at ``draw`` modulo
        the room the clip leaves, so the (seeded, seekable) sampler decides it, not the
        process that reads the clip."""
        index, draw = item if isinstance(item, tuple) else (item, None)
        if self.segment is None:
            entry, start, stop = self.clips[index], 0, -1
        else:
            clip_index, value = self.items[index]
            entry = self.clips[clip_index]
            if not self.random_segments:
                start = value
            elif draw is not None:
                start = draw % (value + 1)
            else:
                start = int(torch.randint(0, value + 1, ()).item())
            stop = start + self.segment
        noisy = self._read(self._path(entry, "noisy"), start, stop)
        clean = self._read(self._path(entry, "clean"), start, stop)
        pair = torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None]
        if self.onsets is None:
            return pair
        clip_index = index if self.segment is None else self.items[index][0]
        return (*pair, hit_marks(self.onsets[clip_index], start, noisy.size))


def clip_segments(config: SynthConfig, segment_seconds: float | None) -> int:
    """The segments of ``segment_seconds`` an on-the-fly clip of ``config`` yields (its
    whole self for None; a segment longer than the clip makes the clip that long)."""
    if segment_seconds is None:
        return 1
    clip = max(config.clip_seconds, segment_seconds)
    return int(round(clip * config.sample_rate)) // int(round(segment_seconds * config.sample_rate))


class SynthStream(IterableDataset):
    """Endless on-the-fly clips from drum kits, as (noisy, clean) segments.

    Clip ``k`` of the global stream uses ``stream_clip_seed(seed, k, version)``, never a
    clip of ``dataset synth --seed seed`` (``version`` 1: a run saved before, which did);
    DataLoader workers (and distributed ranks) take interleaved indices, so the stream is
    reproducible and no two workers ever render the same clip. Each clip yields
    ``clip_seconds // segment_seconds`` non-overlapping segments at a random phase.
    """

    def __init__(self, kit_paths: Sequence[str | Path], config: SynthConfig = SynthConfig(),
                 segment_seconds: float | None = None, seed: int = 0, rank: int = 0,
                 world_size: int = 1, version: int = STREAM_VERSION, hits: bool = False):
        self.kit_paths = [str(p) for p in kit_paths]
        if not self.kit_paths:
            raise DatasetError("SynthStream needs at least one kit")
        if segment_seconds is not None and segment_seconds > config.clip_seconds:
            config = replace(config, clip_seconds=float(segment_seconds))
        self.config = config
        self.segment_seconds = segment_seconds
        self.segment = None if segment_seconds is None else int(
            round(segment_seconds * config.sample_rate))
        self.seed, self.rank, self.world_size, self.version = seed, rank, world_size, version
        self.hits = hits
        self.batches_done, self.batch_size, self.first_clip = 0, 1, 0

    @property
    def segments_per_clip(self) -> int:
        """The segments each clip of the stream yields."""
        return clip_segments(self.config, self.segment_seconds)

    def seek(self, batches_done: int, batch_size: int, first_clip: int = 0) -> None:
        """Continue after ``batches_done`` loader batches (a resumed training run) of a
        stream that starts at clip ``first_clip`` of the global stream (``clips_after``):
        the skipped clips are not rendered, the rest of the stream is unchanged."""
        self.batches_done, self.batch_size, self.first_clip = batches_done, batch_size, first_clip

    @staticmethod
    def clips_after(first_clip: int, batches: int, layout: dict[str, int]) -> int:
        """The first clip of the global stream past every segment that ``batches`` loader
        batches drew from a stream started at ``first_clip`` with ``layout`` (its
        ``batch_size``, ``segments_per_clip``, ``workers`` and ``world_size``; run.py's
        ``loader_layout``). Each of the workers of every process takes every
        ``workers x world_size``-th clip, and the one furthest on has served
        ceil(batches / workers) batches: its clips, the one it drew from last included,
        all lie before the returned one. Why: a resume that changes the layout cannot
        continue by batches, and seeking by the new batch size or segment length re-trained
        the clips the run had used (100 steps at batch 64 resumed at 16 started at clip 320,
        not 1280)."""
        workers = layout["workers"]
        segments = -(-batches // workers) * layout["batch_size"]
        clips = -(-segments // layout["segments_per_clip"])
        return first_clip + clips * workers * layout["world_size"]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        from .kits import load_kit

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # DataLoader takes whole batches from its workers in turn, starting with worker 0,
        # so after a seek worker w continues the share of the worker whose turn it is.
        worker = (worker + self.batches_done) % workers
        stride = workers * self.world_size
        index = self.first_clip + self.rank * workers + worker
        skip = (self.batches_done - worker + workers - 1) // workers * self.batch_size
        clips, skip = divmod(max(skip, 0), self.segments_per_clip)
        index += clips * stride
        kits = [load_kit(path) for path in self.kit_paths]
        while True:
            seed = stream_clip_seed(self.seed, index, self.version)
            clip = render_clip(kits, seed, self.config)
            crops = np.random.default_rng([seed, CROP_STREAM])
            yield from islice(self._segments(clip, crops), skip, None)
            skip = 0
            index += stride

    def _segments(self, clip: Clip, rng: np.random.Generator
                  ) -> Iterator[tuple[torch.Tensor, ...]]:
        noisy, clean = torch.from_numpy(clip.noisy), torch.from_numpy(clip.clean)
        starts = (target_onset_samples(clip.meta["onsets"], self.config.sample_rate)
                  if self.hits else None)
        length = noisy.numel() if self.segment is None else self.segment
        count = 1 if self.segment is None else noisy.numel() // self.segment
        start = int(rng.integers(0, noisy.numel() - count * length + 1)) if self.segment else 0
        for k in range(count):
            a = start + k * length
            pair = noisy[None, a:a + length], clean[None, a:a + length]
            yield pair if starts is None else (*pair, hit_marks(starts, a, length))

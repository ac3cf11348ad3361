"""Dataset folders: ``<root>/<id>/{noisy,clean,bleed}.wav + meta.json`` and
``<root>/manifest.json`` listing the clips with their split (SPEC 4, common contract).

Kept free of torch so the dataset commands start fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf

from denoiser.audio import sf_name, sf_reason
from denoiser.outfiles import staged_into, write_text_atomic

from .errors import DatasetError

SPLITS = ("train", "valid", "test")
MANIFEST = "manifest.json"
# The files of a clip that training and evaluation read (bleed.wav is optional).
CLIP_TRACKS = ("noisy", "clean")
# How a new dataset's train/valid split is drawn, recorded in its manifest: 2 since 2026-12-07,
# each clip's (a session take's) split a function of the seed and the clip (take) alone. A
# manifest without it was split by version 1, a seeded permutation of all the clips (takes).
SPLIT_VERSION = 2
SPLIT_STREAM = 0x5B1  # the seed's stream of the split, apart from the clips'


class ClipFormat(NamedTuple):
    """What a clip's noisy.wav and clean.wav headers agree on."""

    frames: int
    sample_rate: int


def check_valid_fraction(valid_fraction: float) -> None:
    if not 0.0 <= valid_fraction < 1.0:
        raise DatasetError(f"valid fraction must be in [0, 1), got {valid_fraction}")


def valid_count(n: int, valid_fraction: float) -> int:
    """How many of ``n`` items (a performance's hits, bleed takes) validate: ``valid_fraction``
    of them, rounded, but two or more keep at least one of each (with a fraction above
    0): rounding alone would leave two clips no validation clip (0.4 rounds to 0), and
    training would then validate on its training audio."""
    n_valid = int(round(n * valid_fraction))
    if n > 1 and valid_fraction > 0:
        n_valid = min(max(n_valid, 1), n - 1)
    return n_valid


def split_phase(seed: int) -> float:
    """Where in [0, 1) the seed starts ``assign_splits``' count of validation clips."""
    return float(np.random.default_rng([seed, SPLIT_STREAM]).random())


def assign_splits(n: int, seed: int, valid_fraction: float) -> list[str]:
    """Deterministic train/valid split, clip ``i``'s a function of the seed, ``i`` and the
    fraction alone: it validates when ``phase + i * valid_fraction`` passes a whole number
    by the next clip (``split_phase``), so the first ``n`` clips hold ``n * valid_fraction``
    validation clips rounded up or down (80/20 by default, as in the thesis), spread through
    them. Why not a seeded permutation of all ``n`` (split version 1): rendering more hours
    with the same seed kept each clip's audio and re-drew its split, so a model trained on
    the smaller set validated on clips it had trained on in the larger one.

    Two clips or more keep one of each with a fraction above 0 (``n * valid_fraction``
    below one validation clip, or a fraction near 1): the last clip takes the split that
    is missing. Only then does a clip's split depend on ``n``."""
    check_valid_fraction(valid_fraction)
    steps = np.floor(np.arange(n + 1) * valid_fraction + split_phase(seed))
    valid = np.diff(steps) > 0
    if n and (valid.all() or (n > 1 and valid_fraction > 0 and not valid.any())):
        valid[-1] = not valid[-1]
    return np.where(valid, "valid", "train").tolist()


@contextmanager
def staged_output(out: Path, marker: str = MANIFEST) -> Iterator[Path]:
    """A hidden folder to write a dataset into, moved to ``out`` when the block ends and
    removed if it fails: a dataset appears whole or not at all (a NaN in the last take must
    not leave half a dataset that trains). A folder that already holds files is refused, so
    a new dataset is never mixed into an old one. The missing parent folders made for the
    staging folder are removed again on failure, when still empty (``staging_folder``): a
    failed command leaves the disk as it found it.

    A new ``out`` is staged beside it and renamed into place. An existing empty ``out`` is
    staged inside it and its contents moved up, ``marker`` (the file that makes the folder
    a dataset or a kit) last, so a move cut short leaves no dataset that reads. Such a
    folder may be a mount point or a link to another disk, which can be neither removed nor
    renamed over, and whose disk is the one the user chose for the data (staged beside it,
    hours of clips were written to the parent's disk and then thrown away at the final
    rename)."""
    out = Path(os.path.abspath(out))  # "." cannot be removed or renamed over; its full name can
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: is a file, not a folder; choose a new --out")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: output folder exists and is not empty; choose a new --out")

    def move_up(staging: Path) -> None:
        for child in sorted(staging.iterdir(), key=lambda child: child.name == marker):
            os.replace(child, out / child.name)

    with staged_into(out, marker, move_up) as staging:
        yield staging


def write_manifest(root: Path, header: dict, clips: list[dict]) -> Path:
    return write_text_atomic(root / MANIFEST, json.dumps({**header, "clips": clips}, indent=1)
                             + "\n")


def read_manifest(root: str | Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{root}: no {MANIFEST}; not a debleed dataset folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable manifest ({exc})") from None
    clips = manifest.get("clips") if isinstance(manifest, dict) else None
    if not isinstance(clips, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) and c["id"]
            and c.get("split") in SPLITS for c in clips):
        raise DatasetError(f"{path}: manifest needs a 'clips' list of {{id, split}} entries "
                           "(ids non-empty strings: they name the clips' folders)")
    return manifest


def check_clip_files(root: Path, entry: Mapping[str, Any], sample_rate: int | None = None,
                     mono: bool = False) -> ClipFormat:
    """The length and rate of the manifest ``entry``'s clip, once the headers of its
    noisy.wav and clean.wav are found readable, equally long and at one rate (at
    ``sample_rate``, the dataset's, when given), and mono when ``mono`` is asked for.

    Headers only, no samples: training and evaluation check every clip this way before
    their long work starts, so a broken dataset fails at once and names the bad file,
    with the same words from both commands.
    """
    folder = root / str(entry["id"])
    infos = []
    for track in CLIP_TRACKS:
        path = folder / f"{track}.wav"
        try:
            info = sf.info(sf_name(path))
        except (OSError, RuntimeError) as exc:  # sf.LibsndfileError is a RuntimeError
            raise DatasetError(f"{path}: unreadable clip ({sf_reason(exc)})") from None
        if sample_rate is not None and info.samplerate != sample_rate:
            raise DatasetError(f"{path}: {info.samplerate} Hz in a {sample_rate} Hz dataset")
        if mono and info.channels != 1:
            raise DatasetError(f"{path}: {info.channels} channels; training clips must be mono")
        infos.append(info)
    noisy, clean = infos
    if noisy.frames != clean.frames:
        raise DatasetError(f"{folder}: noisy.wav and clean.wav differ in length "
                           f"({noisy.frames} and {clean.frames} samples)")
    if noisy.samplerate != clean.samplerate:
        raise DatasetError(f"{folder}: noisy.wav and clean.wav differ in rate "
                           f"({noisy.samplerate} and {clean.samplerate} Hz)")
    return ClipFormat(noisy.frames, noisy.samplerate)

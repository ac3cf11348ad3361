"""``debleed evaluate``: score a checkpoint on a dataset folder (SPEC 1 and 5).

Each clip is processed three ways -- the pre-gate at its defaults, the model, the gate
then the model -- and scored with ``training.metrics.clip_metrics`` next to the
unprocessed input, so every number in the report has its baseline beside it. With a
report folder, each clip also gets its audio versions and a mel spectrogram figure, and
an ``index.html`` ties everything together with relative links (the folder can be
zipped and opened anywhere).

The dataset folder is only ever read: the report folder may lie neither inside it nor
around it, and replaces only a ``clips/`` folder an earlier report made.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from denoiser.audio import SILENT_PEAK, check_output_folder, dc_offset_of, read_audio, write_audio
from denoiser.engine import Denoiser, InferenceConfig
from denoiser.gate import GateConfig, apply_gate
from denoiser.hiss_cut import HISS_CUT_HZ
from denoiser.outfiles import write_text_atomic

from . import metrics, report
from .errors import DatasetError
from .manifest import check_clip_files, read_manifest

SPLITS = ("valid", "test", "all")
# Scored systems -> the audio version each one scores.
SYSTEMS: dict[str, str] = {"input": "noisy", "gate": "gated", "model": "denoised",
                           "gate + model": "gate_denoised"}
# Audio versions of a clip, in the order of the players and the spectrogram rows.
VERSIONS: tuple[str, ...] = ("noisy", "gated", "denoised", "gate_denoised", "clean")
SPECTROGRAM_ROWS: tuple[str, ...] = ("noisy", "gated", "denoised", "clean")
# The report file beside clips/ that shows an earlier report made that folder.
REPORT_MARKER = "clips.json"

Progress = Callable[[float, str], None]  # (fraction done, note)


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate and how; the gate runs at ``GateConfig`` defaults."""

    split: str = "valid"  # synthetic datasets hold train/valid; session ones may hold test
    limit: int | None = None
    device: str = "auto"
    gate: GateConfig = field(default_factory=GateConfig)
    hiss_cut_hz: float = HISS_CUT_HZ  # the engine's floor test (0: the model read whole)


@dataclass
class Evaluation:
    """Per-clip scores ``[{"id", "split", "systems": {system: metrics}}]`` and their aggregate."""

    clips: list[dict[str, Any]]
    aggregate: dict[str, dict[str, dict[str, float]]]
    info: dict[str, Any]

    def markdown(self) -> str:
        return report.table_with_coverage(self.aggregate, self.info["clips"])


def denoise_mono(denoiser: Denoiser, samples: np.ndarray, sample_rate: int,
                 offset: float | None = None, floor: bool | None = None) -> np.ndarray:
    """Model output of a mono clip (``offset``, ``floor``: see ``Denoiser.denoise``); a
    silent input (e.g. a fully closed gate) stays silent, as does a constant one."""
    if float(np.max(np.abs(samples - np.mean(samples)))) <= SILENT_PEAK:
        return np.zeros_like(samples, dtype=np.float32)
    return denoiser.denoise(samples[None, :], sample_rate, offset=offset, floor=floor)[0]


def process_clip(denoiser: Denoiser, gate: GateConfig, noisy: np.ndarray,
                 sample_rate: int) -> dict[str, np.ndarray]:
    """The processed versions of one mono clip: gated, denoised, gated then denoised."""
    gated = apply_gate(noisy[None, :], sample_rate, gate)[0]
    # as denoise --gate does: the clip less its DC offset, gated, then no offset taken again
    centred = noisy - dc_offset_of(noisy)
    gate_denoised = apply_gate(centred[None, :], sample_rate, gate)[0]
    # judged on the ungated clip, as denoise --gate judges the file: see Denoiser.hears_floor
    floor = denoiser.hears_floor(centred[None, :], sample_rate)
    return {"gated": gated, "denoised": denoise_mono(denoiser, noisy, sample_rate, floor=floor),
            "gate_denoised": denoise_mono(denoiser, gate_denoised, sample_rate, offset=0.0,
                                          floor=floor)}


def score_systems(versions: Mapping[str, np.ndarray], sample_rate: int, meta: Mapping,
                  systems: Mapping[str, str] = SYSTEMS) -> dict[str, dict[str, float]]:
    """``clip_metrics`` of each system's version against ``versions["clean"]``, with the
    clip's ``onsets`` and ``onsets_before`` from its ``meta`` (a set written before the
    latter existed has none)."""
    return {name: metrics.clip_metrics(versions["noisy"], versions["clean"], versions[version],
                                       sample_rate, meta.get("onsets", []),
                                       earlier=meta.get("onsets_before", []))
            for name, version in systems.items()}


def _safe_name(clip_id: str) -> str:
    """A clip id as a file name: the id's own characters where harmless, ``_`` otherwise."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", clip_id).strip(".") or "clip"


def folder_names(clip_ids: Sequence[str]) -> list[str]:
    """One report folder name per clip, all distinct: ``_safe_name`` maps "a b" and "a_b"
    (or "." and "..") alike, and a case-insensitive disk folds "A" into "a", so a clash
    gets the clip's index appended and no clip's files overwrite another's."""
    names: list[str] = []
    taken: set[str] = set()
    for index, clip_id in enumerate(clip_ids):
        name = _safe_name(clip_id)
        while name.lower() in taken:
            name = f"{name}-{index}"
        taken.add(name.lower())
        names.append(name)
    return names


def dataset_entries(data: Path, split: str) -> list[dict[str, Any]]:
    """The manifest's clips of ``split`` ("all": every clip), in manifest order."""
    clips = read_manifest(data)["clips"]
    chosen = [c for c in clips if split == "all" or c["split"] == split]
    if not chosen:
        present = sorted({c["split"] for c in clips}) or ["none"]
        raise DatasetError(f"{data}: no clips in split {split!r} (splits present: {', '.join(present)})")
    return chosen


def check_clip(data: Path, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Read a clip's meta.json and check its WAV headers (``check_clip_files``: mono, same
    rate and length).

    Headers only, no samples: every clip is checked before the long work starts, so a
    broken dataset fails at once; a clip whose samples turn out bad (NaN) fails later,
    and the report, written into a staging folder, is then not written at all.
    """
    folder = data / str(entry["id"])
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{folder}: unreadable clip ({str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{folder / 'meta.json'}: clip metadata must be a JSON object")
    # The files' rate is what the onsets' samples count.
    meta["sample_rate"] = check_clip_files(data, entry, mono=True).sample_rate
    return meta


def load_clip(data: Path, entry: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(noisy, clean, meta)`` of one clip folder (``check_clip`` + validated samples)."""
    meta = check_clip(data, entry)
    folder = data / str(entry["id"])
    noisy, clean = read_audio(folder / "noisy.wav"), read_audio(folder / "clean.wav")
    return noisy.samples[0], clean.samples[0], meta


def _check_report_dir(report_dir: Path, data: Path) -> None:
    """The dataset is only read: the report may lie neither inside it nor around it (it
    replaces ``clips/`` whole), nor replace a ``clips/`` an earlier report did not make."""
    data, out = data.resolve(), report_dir.resolve()
    if out == data or out.is_relative_to(data):
        raise DatasetError(f"{report_dir}: the report may not be written inside the dataset {data}")
    if data.is_relative_to(out):
        raise DatasetError(f"{report_dir}: the report may not be written around the dataset {data}")
    report.check_report_folder(report_dir, ("clips",), REPORT_MARKER)
    check_output_folder(report_dir)


def _write_clip_files(folder: Path, clip_id: str, name: str, versions: Mapping[str, np.ndarray],
                      sample_rate: int) -> dict[str, Any]:
    """Write a clip's audio versions and its spectrogram into ``clips/<name>``; return the
    HTML's relative links."""
    clip_dir = folder / "clips" / name
    audio = {}
    for version in VERSIONS:
        write_audio(clip_dir / f"{version}.wav", versions[version][None, :], sample_rate)
        audio[version] = f"clips/{name}/{version}.wav"
    report.spectrogram_figure(clip_dir / "spectrogram.png",
                              {row: versions[row] for row in SPECTROGRAM_ROWS}, sample_rate,
                              title=f"{clip_id}: mel spectrograms (same colour scale)")
    return {"image": f"clips/{name}/spectrogram.png", "audio": audio}


def _clips_csv(clips: Sequence[Mapping[str, Any]]) -> str:
    keys: list[str] = []
    for clip in clips:
        for scores in clip["systems"].values():
            keys.extend(k for k in scores if k not in keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["clip", "split", "system", *keys])
    for clip in clips:
        for system, scores in clip["systems"].items():
            writer.writerow([clip["id"], clip["split"], system,
                             *(f"{scores[k]:.4f}" if np.isfinite(scores.get(k, np.nan)) else ""
                               for k in keys)])
    return buffer.getvalue()


def evaluate(checkpoint: str | Path, data: str | Path, config: EvaluateConfig = EvaluateConfig(),
             report_dir: str | Path | None = None, progress: Progress | None = None) -> Evaluation:
    """Score ``checkpoint`` ("default" = the shipped model) on the clips of ``data``.

    With ``report_dir``: writes ``clips.csv``, ``clips.json``, ``aggregate.json``,
    ``aggregate.md``, ``clips/<id>/{noisy,gated,denoised,gate_denoised,clean}.wav`` and
    ``spectrogram.png``, and ``index.html``.
    """
    if config.split not in SPLITS:
        raise DatasetError(f"unknown split {config.split!r}; use one of {', '.join(SPLITS)}")
    if config.limit is not None and config.limit < 1:
        raise DatasetError("--limit must be at least 1")
    data = Path(data)
    entries = dataset_entries(data, config.split)[:config.limit]
    for entry in entries:
        check_clip(data, entry)
    out = Path(report_dir) if report_dir is not None else None
    if out is not None:
        _check_report_dir(out, data)
    denoiser = Denoiser.load(None if str(checkpoint) == "default" else checkpoint, config.device,
                             InferenceConfig(hiss_cut_hz=config.hiss_cut_hz))

    clips: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    names = folder_names([entry["id"] for entry in entries])
    with report.staged_report(out, REPORT_MARKER) if out is not None else nullcontext() as folder:
        for index, entry in enumerate(entries):
            noisy, clean, meta = load_clip(data, entry)
            rate = int(meta["sample_rate"])
            versions = {"noisy": noisy, "clean": clean,
                        **process_clip(denoiser, config.gate, noisy, rate)}
            scores = score_systems(versions, rate, meta)
            clips.append({"id": entry["id"], "split": entry.get("split", ""), "systems": scores})
            if folder is not None:
                links = _write_clip_files(folder, entry["id"], names[index], versions, rate)
                pages.append({"id": entry["id"], "metrics": scores, **links})
            if progress is not None:
                progress((index + 1) / len(entries), entry["id"])

        table = {system: metrics.aggregate([c["systems"][system] for c in clips])
                 for system in SYSTEMS}
        info = {"checkpoint": str(checkpoint), "data": str(data), "split": config.split,
                "clips": len(clips), "model": denoiser.model.name,
                "model_sample_rate": denoiser.sample_rate, "device": str(denoiser.device),
                "gate": asdict(config.gate)}
        result = Evaluation(clips, table, info)
        if folder is not None:
            _write_report(folder, result, pages)
    return result


def _write_report(out: Path, result: Evaluation, pages: Sequence[Mapping[str, Any]]) -> None:
    report.write_json(out / "clips.json", {"info": result.info, "clips": result.clips})
    write_text_atomic(out / "clips.csv", _clips_csv(result.clips))
    report.write_json(out / "aggregate.json", {"info": result.info, "aggregate": result.aggregate})
    write_text_atomic(out / "aggregate.md",
                      f"# debleed evaluate: {result.info['checkpoint']}\n\n"
                      f"{result.info['clips']} clips of `{result.info['data']}` "
                      f"(split {result.info['split']}); cells are mean / median.\n\n"
                      + result.markdown() + "\n" + report.LEGEND)
    summary = {k: v for k, v in result.info.items() if k != "gate"}
    summary["gate"] = "defaults (threshold {threshold_db} dB)".format(**result.info["gate"])
    write_text_atomic(out / "index.html",
                      report.html_report("debleed evaluation", summary, result.aggregate, pages,
                                         result.info["clips"]))

"""The shipping rule of docs/model.md (the thirty-fifth round's) as code.

A candidate replaces the shipped model only if, against it:

1. on the floored twins of the tuning clips and of the unseen snares (the same clips with a
   recording floor), ΔSI-SDR, hit error, ghost error and hits lost are no worse;
2. on the floorless sets (tuning clips, unseen snares, held-out kits) it gives up at most
   the rule's allowance on each column, bleed and tom/kick leakage a wider one where it
   earns the weight for real tracks (large gains on both floored sets), and each hit of the
   unfamiliar-snare probe comes out within 1 dB;
3. on the demo kit (synthetic snares) ΔSI-SDR is within the allowance without a floor and
   no worse with one.

Of the candidates that pass, the one with the highest mean ΔSI-SDR over the five sets goes
to the test kit's full benchmark (``debleed bench``), which decides. Rounds thirty-five to
forty-five judged by this rule in scratch scripts that a fresh machine lost each time; here
it is one function, so a verdict is reproducible from the command line.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from denoiser.engine import Denoiser

from . import metrics
from .bench import HELDOUT_SEED, BenchConfig, preload_kits, render_heldout_set
from .demo import DEMO_CONFIG, render_demo_clip
from .evaluate import check_clip, dataset_entries, denoise_mono, load_clip
from .oneshots import one_shot

COLUMNS: tuple[str, ...] = ("delta_si_sdr", "bleed_reduction_db", "hit_level_error_db",
                            "ghost_level_error_db", "hits_lost_pct", "cymbal_leakage_db",
                            "tom_kick_leakage_db")
HIGHER_IS_BETTER = frozenset({"delta_si_sdr", "bleed_reduction_db"})
#: The columns (1) guards on the floored sets: the snare's own, not the bleed's.
FLOORED_GUARDED: tuple[str, ...] = ("delta_si_sdr", "hit_level_error_db", "ghost_level_error_db",
                                    "hits_lost_pct")
#: Set names: the dataset folders, then the rendered held-out set; labels as the tables read.
SET_LABELS: Mapping[str, str] = MappingProxyType({
    "tuning": "tuning clips", "unseen": "unseen snares", "heldout": "held-out kits",
    "tuning_floored": "tuning clips, floored", "unseen_floored": "unseen snares, floored"})
FLOORLESS: tuple[str, ...] = ("tuning", "unseen", "heldout")
FLOORED: tuple[str, ...] = ("tuning_floored", "unseen_floored")
#: Differences this small count as equal at an allowance's edge: float rounding of the
#: two-decimal figures the rule is written in (10.70 - 7.70 is 2.999999999999999), far
#: under any difference between two models' means.
EDGE = 1e-9
PROBE_HZ: tuple[float, ...] = (190.0, 230.0, 160.0)
PROBE_RATE = 48000
#: The demo kit's clips: ``debleed demo``'s synthetic kit and groove, one per seed, without a
#: floor and with a white floor on every clip (no 16-bit export, so the floor alone decides).
DEMO_SEEDS = 10
DEMO_FLOORED_CONFIG = replace(DEMO_CONFIG, floor_probability=1.0, quantise_probability=0.0)

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class SelectionRule:
    """What a candidate may give up against the reference (dB, or points for hits lost).
    The numbers are the thirty-fifth round's, declared before its candidates were scored."""

    #: (2): per column on each floorless set.
    floorless_allowance: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({
        "delta_si_sdr": 0.5, "bleed_reduction_db": 1.0, "hit_level_error_db": 0.2,
        "ghost_level_error_db": 0.3, "hits_lost_pct": 1.0, "cymbal_leakage_db": 1.0,
        "tom_kick_leakage_db": 1.0}))
    #: (2): bleed and tom/kick leakage's allowance for a candidate that earns the weight for
    #: real tracks, which every one has a floor under.
    widened_columns: tuple[str, ...] = ("bleed_reduction_db", "tom_kick_leakage_db")
    widened_allowance_db: float = 1.5
    #: The weight is earned with at least these gains on both floored sets.
    real_track_gain_db: float = 3.0         # ΔSI-SDR
    real_track_gain_lost_pct: float = 10.0  # points of hits lost
    probe_margin_db: float = 1.0  # how much lower than the reference a probe hit may come out
    demo_margin_db: float = 0.5   # (3): ΔSI-SDR given up on the demo kit without a floor
    demo_widened_margin_db: float = 1.0


@dataclass
class Scores:
    """Column means per set (``SET_LABELS``'s names; absent = not scored), the probe's signed
    hit levels in dB (one per ``PROBE_HZ``) and the demo kit's mean ΔSI-SDR (``plain``,
    ``floored``; absent = not scored)."""

    sets: dict[str, dict[str, float]] = field(default_factory=dict)
    probe: list[float] = field(default_factory=list)
    demo: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    condition: str
    passed: bool
    detail: str


def _means(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    aggregate = metrics.aggregate(rows)
    return {column: aggregate[column]["mean"] for column in COLUMNS}


def _clip_scores(denoiser: Denoiser, noisy: np.ndarray, clean: np.ndarray, meta: dict) -> dict[str, float]:
    rate = meta["sample_rate"]
    return metrics.clip_metrics(noisy, clean, denoise_mono(denoiser, noisy, rate), rate,
                                meta.get("onsets", []),  # as evaluate reads it
                                earlier=meta.get("onsets_before", []))


def check_sets(folders: Sequence[Path], kits: Sequence[Path]) -> None:
    """Check every set before any model scores one: each clip's meta and WAV headers
    (``check_clip``) and each held-out kit loaded. Why: a typo in ``--unseen`` or a kit
    without a snare failed only after the reference had scored the sets before it."""
    for folder in folders:
        for entry in dataset_entries(folder, "all"):
            check_clip(folder, entry)
    with warnings.catch_warnings():  # a kit's skipped extras do not matter here
        warnings.simplefilter("ignore")
        preload_kits(kits)


def dataset_means(denoiser: Denoiser, folder: Path) -> dict[str, float]:
    """Column means over every clip of a dataset folder (``debleed dataset synth``)."""
    return _means([_clip_scores(denoiser, *load_clip(folder, entry))
                   for entry in dataset_entries(folder, "all")])


def heldout_means(denoiser: Denoiser, kits: Sequence[Path], clips: int, seed: int) -> dict[str, float]:
    """Column means over the benchmark's held-out set (clip i from kit i mod len(kits))."""
    config = BenchConfig(heldout_clips=clips, heldout_seed=seed)
    with warnings.catch_warnings():  # a kit's skipped extras do not matter here
        warnings.simplefilter("ignore")
        return _means([_clip_scores(denoiser, clip.noisy, clip.clean, clip.meta)
                       for clip in render_heldout_set(config, list(kits))])


def _place(track: np.ndarray, hit: np.ndarray, times: np.ndarray, gain: float) -> None:
    for start in (times * PROBE_RATE).astype(int):
        stop = min(len(track), start + len(hit))
        track[start:stop] += gain * hit[: stop - start]


def probe_groove(body_hz: float) -> dict:
    """Two bars at 120 BPM of a synthetic snare unlike any kit's (``body_hz`` body under
    band-passed wire noise) with eighth hats at -12 dB and a kick at -18 dB as bleed:
    ``{"clean", "noisy", "onsets"}`` at 48 kHz."""
    length = 4 * PROBE_RATE
    clean, bleed = np.zeros(length, np.float32), np.zeros(length, np.float32)
    snare_times = np.array([0.5, 1.5, 2.5, 3.5])
    _place(clean, one_shot("snare", body_hz, 0.16, 0.6, 1.0), snare_times, 0.5)
    _place(bleed, one_shot("metal", 7000, 0.05, 0.3, 1.0, seed=1), np.arange(0, 4, 0.25),
           0.5 * 10 ** (-12 / 20))
    _place(bleed, one_shot("kick", 55, 0.3, 0.6, 1.0, seed=2), np.array([0.0, 1.0, 2.0, 3.0]),
           0.5 * 10 ** (-18 / 20))
    onsets = [{"time": float(t), "sample": int(t * PROBE_RATE), "instrument": "snare",
               "velocity": 110, "target": True} for t in snare_times]
    return {"clean": clean, "noisy": clean + bleed, "onsets": onsets}


def probe_levels(denoiser: Denoiser, body_hz: Sequence[float] = PROBE_HZ) -> list[float]:
    """The probe's signed hit level (dB, 0 = kept whole) for each snare body frequency."""
    levels = []
    for hz in body_hz:
        groove = probe_groove(hz)
        out = denoiser.denoise(groove["noisy"][None], PROBE_RATE)[0]
        levels.append(metrics.hit_level_error_db(groove["clean"], out, PROBE_RATE,
                                                 groove["onsets"])["hit_level_bias_db"])
    return levels


def demo_delta_si_sdr(denoiser: Denoiser, seeds: int = DEMO_SEEDS) -> dict[str, float]:
    """Mean ΔSI-SDR over the demo's clips of seeds ``0..seeds-1``, without and with a floor.
    Why: VariBreaks is one kit; the demo's synthetic snares are another kind no training kit
    holds, and with a floor they show a model reading the floor as bleed."""
    means = {}
    for name, config in (("plain", DEMO_CONFIG), ("floored", DEMO_FLOORED_CONFIG)):
        deltas = []
        for seed in range(seeds):
            clip = render_demo_clip(seed, config)
            estimate = denoise_mono(denoiser, clip.noisy, clip.meta["sample_rate"])
            out, before = metrics.si_sdr(np.stack([estimate, clip.noisy]), clip.clean[None, :])
            deltas.append(float(out - before))
        means[name] = float(np.mean(deltas))
    return means


def score_model(denoiser: Denoiser, folders: Mapping[str, Path], heldout_kits: Sequence[Path] = (),
                heldout_clips: int = 36, heldout_seed: int = HELDOUT_SEED, demo_seeds: int = DEMO_SEEDS,
                progress: Progress | None = None) -> Scores:
    """Every set of the rule that is given (``folders``: dataset folders by set name), the
    held-out set, the demo kit, and the probe (always: it needs no data)."""
    unknown = set(folders) - (set(SET_LABELS) - {"heldout"})
    if unknown:
        raise ValueError(f"unknown set names {sorted(unknown)}")
    scores = Scores()
    steps = len(folders) + 3
    for index, (name, folder) in enumerate(folders.items()):
        scores.sets[name] = dataset_means(denoiser, Path(folder))
        if progress:
            progress((index + 1) / steps, name)
    if heldout_kits:
        scores.sets["heldout"] = heldout_means(denoiser, heldout_kits, heldout_clips, heldout_seed)
    if progress:
        progress((steps - 2) / steps, "heldout")
    if demo_seeds:
        scores.demo = demo_delta_si_sdr(denoiser, demo_seeds)
    if progress:
        progress((steps - 1) / steps, "demo kit")
    scores.probe = probe_levels(denoiser)
    if progress:
        progress(1.0, "probe")
    return scores


def mean_delta_si_sdr(scores: Scores) -> float:
    """Rule (4)'s ranking: mean ΔSI-SDR over the five sets, NaN unless all five were scored."""
    names = (*FLOORLESS, *FLOORED)
    if not all(name in scores.sets for name in names):
        return float("nan")
    return float(np.mean([scores.sets[name]["delta_si_sdr"] for name in names]))


def no_worse(column: str, candidate: float, reference: float) -> bool:
    """Undefined on both sides (no ghost notes in the set) is no worse; undefined on one
    side only cannot be shown no worse."""
    if math.isnan(candidate) or math.isnan(reference):
        return math.isnan(candidate) and math.isnan(reference)
    return candidate >= reference if column in HIGHER_IS_BETTER else candidate <= reference


def versus(candidate: float, reference: float) -> str:
    """``"c vs r"`` to two decimals, or to as many more (up to six) as tell the two apart:
    a column lost by 0.002 dB read "5.49 vs 5.49", a failure its evidence did not show."""
    for digits in range(2, 7):
        shown = f"{candidate:.{digits}f}", f"{reference:.{digits}f}"
        if shown[0] != shown[1]:
            break
    return " vs ".join(shown)


def within(column: str, candidate: float, reference: float, allowance: float) -> bool:
    """``candidate`` gives up at most ``allowance`` of ``column`` against ``reference``
    (NaN as in ``no_worse``), ``EDGE`` included."""
    slack = allowance + EDGE
    shifted = candidate + slack if column in HIGHER_IS_BETTER else candidate - slack
    return no_worse(column, shifted, reference)


def earns_real_track_weight(candidate: Scores, reference: Scores, rule: SelectionRule) -> bool:
    """The candidate gains at least ``real_track_gain_db`` of ΔSI-SDR and
    ``real_track_gain_lost_pct`` points of hits lost on both floored sets (both scored)."""
    for name in FLOORED:
        if name not in candidate.sets or name not in reference.sets:
            return False
        c, r = candidate.sets[name], reference.sets[name]
        if not (c["delta_si_sdr"] - r["delta_si_sdr"] >= rule.real_track_gain_db - EDGE
                and r["hits_lost_pct"] - c["hits_lost_pct"] >= rule.real_track_gain_lost_pct - EDGE):
            return False
    return True


def _allowance_verdict(condition: str, candidate: dict[str, float], reference: dict[str, float],
                       allowance: Mapping[str, float]) -> Verdict:
    """The columns ``allowance`` names, each within its allowance; the others not judged."""
    worse = [f"{c} {versus(candidate[c], reference[c])}" for c in allowance
             if not within(c, candidate[c], reference[c], allowance[c])]
    return Verdict(condition, not worse, "; ".join(worse) or "every column within")


def judge(candidate: Scores, reference: Scores, rule: SelectionRule = SelectionRule()) -> list[Verdict]:
    """One verdict per condition whose set both sides scored, in the rule's order: (1) the
    floored sets, (2) the floorless sets and the probe, (3) the demo kit."""
    verdicts = []
    both = [name for name in SET_LABELS if name in candidate.sets and name in reference.sets]
    for name in (n for n in FLOORED if n in both):
        verdicts.append(_allowance_verdict(f"{SET_LABELS[name]}: ΔSI-SDR and hits no worse",
                                           candidate.sets[name], reference.sets[name],
                                           dict.fromkeys(FLOORED_GUARDED, 0.0)))
    weighted = earns_real_track_weight(candidate, reference, rule)
    allowance = dict(rule.floorless_allowance)
    if weighted:
        allowance.update(dict.fromkeys(rule.widened_columns, rule.widened_allowance_db))
    for name in (n for n in FLOORLESS if n in both):
        verdicts.append(_allowance_verdict(f"{SET_LABELS[name]}: within the allowances",
                                           candidate.sets[name], reference.sets[name], allowance))
    if candidate.probe and reference.probe:
        low = [f"{hz:g} Hz {versus(c, r)}" for hz, c, r in zip(PROBE_HZ, candidate.probe, reference.probe)
               if c < r - rule.probe_margin_db]
        verdicts.append(Verdict(f"probe: within {rule.probe_margin_db:g} dB", not low,
                                "; ".join(low) or "every hit within the margin"))
    if candidate.demo and reference.demo:
        margin = rule.demo_widened_margin_db if weighted else rule.demo_margin_db
        c, r = candidate.demo, reference.demo
        plain = within("delta_si_sdr", c["plain"], r["plain"], margin)
        floored = no_worse("delta_si_sdr", c["floored"], r["floored"])
        worse = [f"{label} {versus(c[key], r[key])}" for key, label, ok in
                 (("plain", "without a floor", plain), ("floored", "with a floor", floored)) if not ok]
        verdicts.append(Verdict(f"demo kit: within {margin:g} dB without a floor, no worse with one",
                                not worse, "; ".join(worse) or "both within"))
    return verdicts


def scores_markdown(candidate: Scores, reference: Scores) -> str:
    """Both models' means, set by set, the probe, the demo kit and rule (4)'s ranking: what
    the verdicts were read from."""
    lines = ["| set | model | " + " | ".join(COLUMNS) + " |",
             "| --- | --- |" + " ---: |" * len(COLUMNS)]
    models = (("candidate", candidate), ("reference", reference))
    for name, label in SET_LABELS.items():
        for model, scores in models:
            if name in scores.sets:
                cells = " | ".join(f"{scores.sets[name][c]:.2f}" for c in COLUMNS)
                lines.append(f"| {label} | {model} | {cells} |")
    hz = " / ".join(f"{h:g}" for h in PROBE_HZ)
    lines += ["", f"probe hit level dB ({hz} Hz): " + "; ".join(
        f"{model} " + " / ".join(f"{v:.2f}" for v in scores.probe) for model, scores in models)]
    if candidate.demo and reference.demo:
        lines.append("demo kit ΔSI-SDR dB (without / with a floor): " + "; ".join(
            f"{model} {scores.demo['plain']:+.2f} / {scores.demo['floored']:+.2f}"
            for model, scores in models))
    lines.append("mean ΔSI-SDR over the five sets (rule 4): " + "; ".join(
        f"{model} {mean_delta_si_sdr(scores):.3f}" for model, scores in models))
    return "\n".join(lines) + "\n"

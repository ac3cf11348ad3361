"""``debleed select``: judge a candidate model against the shipped one by the shipping rule."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from denoiser.hiss_cut import hiss_cut

from .common import HISS_CUT_OPTION, NonEmptyPath, progress, user_errors


def _check_json_path(json_path: Path, models: tuple[str, ...], folders: tuple[Path, ...]) -> None:
    """Refuse a ``--json`` that would replace an input: a model file ("default" resolved to
    the shipped one, which the literal name would hide) or a file of a scored folder (a
    dataset's manifest.json). Checked before the scoring, not after it."""
    from denoiser.audio import check_output_folder, ensure_not_input
    from denoiser.pretrained import default_model_path
    from training.errors import DatasetError

    ensure_not_input(json_path, tuple(default_model_path() if name == "default" else Path(name)
                                      for name in models))
    target = json_path.resolve()
    for folder in folders:
        if target.is_relative_to(folder.resolve()):
            raise DatasetError(f"{json_path}: refusing to write inside the input folder {folder}")
    check_output_folder(json_path.parent)


@click.command()
@click.argument("candidates", nargs=-1, required=True, type=NonEmptyPath())
@click.option("--reference", type=NonEmptyPath(), default="default", show_default=True,
              help='The model to beat ("default": the shipped one).')
@click.option("--tuning", type=NonEmptyPath(exists=True, file_okay=False, path_type=Path),
              help="Fresh clips of the training kits (debleed dataset synth --as-recorded).")
@click.option("--unseen", type=NonEmptyPath(exists=True, file_okay=False, path_type=Path),
              help="Clips of a kit no model was trained or tested on (e.g. VariBreaks).")
@click.option("--heldout-kit", "heldout_kits", multiple=True,
              type=NonEmptyPath(exists=True, file_okay=False, path_type=Path),
              help="Kit of the held-out set; repeatable [default: the benchmark's, where installed].")
@click.option("--heldout-clips", type=click.IntRange(min=0), default=36, show_default=True,
              help="0 skips the held-out set.")
@click.option("--json", "json_path", type=NonEmptyPath(dir_okay=False, path_type=Path),
              help="Also write every model's scores and the verdicts here.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@HISS_CUT_OPTION
@user_errors
def select(candidates: tuple[str, ...], reference: str, tuning: Path | None, unseen: Path | None,
           heldout_kits: tuple[Path, ...], heldout_clips: int, json_path: Path | None,
           device: str, hiss_cut_hz: float | None) -> None:
    """Score each of CANDIDATES and the reference on the rule's sets and print whether it
    may ship. The reference is scored once, however many candidates a round declared.

    The rule (docs/model.md): held-out kits no worse on any column, the unseen snares no
    worse in ΔSI-SDR and hits, the unfamiliar-snare probe within 1 dB, at most 0.5 dB of
    ΔSI-SDR lost on the tuning clips. Sets not given are not judged.
    """
    from denoiser.engine import Denoiser, InferenceConfig
    from training.bench import BenchConfig, installed_heldout_kits
    from training.report import write_json
    from training.selection import check_sets, judge, score_model, scores_markdown

    kits = list(heldout_kits) or installed_heldout_kits(BenchConfig())
    kits = kits if heldout_clips else []
    if json_path is not None:
        folders = tuple(folder for folder in (tuning, unseen, *kits) if folder is not None)
        _check_json_path(json_path, (reference, *candidates), folders)
    check_sets(tuning, unseen, kits)
    names = [reference, *candidates]
    config = InferenceConfig(**hiss_cut(hiss_cut_hz))
    models = [Denoiser.load(None if path == "default" else path, device, config) for path in names]
    scores = []
    for name, denoiser in zip(names, models):
        with progress(f"select: {name}", 1.0) as update:
            scores.append(score_model(denoiser, tuning, unseen, kits, heldout_clips, progress=update))
    results = []
    for name, candidate in zip(candidates, scores[1:]):
        verdicts = judge(candidate, scores[0])
        passed = all(v.passed for v in verdicts)
        click.echo(f"## {name} against {reference}\n")
        click.echo(scores_markdown(candidate, scores[0]))
        for verdict in verdicts:
            click.echo(f"{'pass' if verdict.passed else 'FAIL'}  {verdict.condition}: {verdict.detail}")
        click.echo(f"verdict: {'may ship' if passed else 'does not ship'} "
                   f"({sum(v.passed for v in verdicts)} of {len(verdicts)} conditions)\n")
        results.append({"candidate": name, "scores": asdict(candidate),
                        "verdicts": [asdict(v) for v in verdicts], "may_ship": passed})
    if json_path is not None:
        document = {"reference": reference, "reference_scores": asdict(scores[0]),
                    "candidates": results}
        write_json(json_path, document)  # NaN (an undefined column) as null: JSON has no NaN

"""``debleed select``: judge candidate models against the shipped one by the shipping rule
(``training.selection``)."""

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


#: A dataset folder of the rule's sets, or a held-out kit's folder.
FOLDER = NonEmptyPath(exists=True, file_okay=False, path_type=Path)


@click.command()
@click.argument("candidates", nargs=-1, required=True, type=NonEmptyPath())
@click.option("--reference", type=NonEmptyPath(), default="default", show_default=True,
              help='The model to beat ("default": the shipped one).')
@click.option("--tuning", type=FOLDER,
              help="Fresh clips of the training kits (debleed dataset synth --as-recorded).")
@click.option("--unseen", type=FOLDER,
              help="Clips of a kit no model was trained or tested on (e.g. VariBreaks).")
@click.option("--tuning-floored", type=FOLDER,
              help="The tuning clips' floored twin (the same seed with --floor-probability 1 "
                   "--quantise-probability 0.5).")
@click.option("--unseen-floored", type=FOLDER, help="The unseen snares' floored twin.")
@click.option("--heldout-kit", "heldout_kits", multiple=True, type=FOLDER,
              help="Kit of the held-out set; repeatable [default: the benchmark's, where installed].")
@click.option("--heldout-clips", type=click.IntRange(min=0), default=36, show_default=True,
              help="0 skips the held-out set.")
@click.option("--demo-seeds", type=click.IntRange(min=0), default=10, show_default=True,
              help="Demo-kit clips (seeds 0..N-1), each without and with a floor; 0 skips them.")
@click.option("--json", "json_path", type=NonEmptyPath(dir_okay=False, path_type=Path),
              help="Also write every model's scores and the verdicts here.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@HISS_CUT_OPTION
@user_errors
def select(candidates: tuple[str, ...], reference: str, tuning: Path | None, unseen: Path | None,
           tuning_floored: Path | None, unseen_floored: Path | None, heldout_kits: tuple[Path, ...],
           heldout_clips: int, demo_seeds: int, json_path: Path | None, device: str,
           hiss_cut_hz: float | None) -> None:
    """Score each of CANDIDATES and the reference on the rule's sets and print whether it
    may ship. The reference is scored once, however many candidates a round declared.

    The rule (docs/model.md, thirty-fifth round): (1) the floored twins no worse in
    ΔSI-SDR and hits; (2) the tuning clips, unseen snares and held-out kits within the
    allowances, the unfamiliar-snare probe within 1 dB; (3) the demo kit within 0.5 dB
    without a floor and no worse with one. Large gains on both floored sets widen bleed and
    tom/kick to 1.5 dB and the demo kit to 1.0 dB. (4) The mean ΔSI-SDR over the five sets
    ranks those that pass for the test kit's benchmark. Sets not given are not judged.
    """
    from denoiser.engine import Denoiser, InferenceConfig
    from training.bench import BenchConfig, installed_heldout_kits
    from training.report import write_json
    from training.selection import check_sets, judge, mean_delta_si_sdr, score_model, scores_markdown

    given = {"tuning": tuning, "unseen": unseen, "tuning_floored": tuning_floored,
             "unseen_floored": unseen_floored}
    folders = {name: folder for name, folder in given.items() if folder is not None}
    kits = list(heldout_kits) or installed_heldout_kits(BenchConfig())
    kits = kits if heldout_clips else []
    if json_path is not None:
        _check_json_path(json_path, (reference, *candidates), (*folders.values(), *kits))
    check_sets(tuple(folders.values()), kits)
    names = [reference, *candidates]
    config = InferenceConfig(**hiss_cut(hiss_cut_hz))
    models = [Denoiser.load(None if path == "default" else path, device, config) for path in names]
    scores = []
    for name, denoiser in zip(names, models):
        with progress(f"select: {name}", 1.0) as update:
            scores.append(score_model(denoiser, folders, kits, heldout_clips, demo_seeds=demo_seeds,
                                      progress=update))
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
                        "mean_delta_si_sdr": mean_delta_si_sdr(candidate),
                        "verdicts": [asdict(v) for v in verdicts], "may_ship": passed})
    if json_path is not None:
        document = {"reference": reference, "reference_scores": asdict(scores[0]),
                    "reference_mean_delta_si_sdr": mean_delta_si_sdr(scores[0]),
                    "candidates": results}
        write_json(json_path, document)  # NaN (an undefined column) as null: JSON has no NaN

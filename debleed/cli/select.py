"""``debleed select``: judge a candidate model against the shipped one by the shipping rule."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .common import progress, user_errors


@click.command()
@click.argument("candidates", nargs=-1, required=True)
@click.option("--reference", default="default", show_default=True,
              help='The model to beat ("default": the shipped one).')
@click.option("--tuning", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Fresh clips of the training kits (debleed dataset synth --as-recorded).")
@click.option("--unseen", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Clips of a kit no model was trained or tested on (e.g. VariBreaks).")
@click.option("--heldout-kit", "heldout_kits", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Kit of the held-out set; repeatable [default: the benchmark's, where installed].")
@click.option("--heldout-clips", type=click.IntRange(min=0), default=36, show_default=True,
              help="0 skips the held-out set.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every model's scores and the verdicts here.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@user_errors
def select(candidates: tuple[str, ...], reference: str, tuning: Path | None, unseen: Path | None,
           heldout_kits: tuple[Path, ...], heldout_clips: int, json_path: Path | None,
           device: str) -> None:
    """Score each of CANDIDATES and the reference on the rule's sets and print whether it
    may ship. The reference is scored once, however many candidates a round declared.

    The rule (docs/model.md): held-out kits no worse on any column, the unseen snares no
    worse in ΔSI-SDR and hits, the unfamiliar-snare probe within 1 dB, at most 0.5 dB of
    ΔSI-SDR lost on the tuning clips. Sets not given are not judged.
    """
    from denoiser.audio import check_output_folder, ensure_not_input, write_text_atomic
    from denoiser.engine import Denoiser
    from training.bench import BenchConfig, installed_heldout_kits
    from training.selection import judge, score_model, scores_markdown

    if json_path is not None:  # before the scoring, not after it
        ensure_not_input(json_path, tuple(name for name in (reference, *candidates)
                                          if name != "default"))
        check_output_folder(json_path.parent)
    kits = list(heldout_kits) or installed_heldout_kits(BenchConfig())
    kits = kits if heldout_clips else []
    names = [reference, *candidates]
    models = [Denoiser.load(None if path == "default" else path, device=device) for path in names]
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
        write_text_atomic(json_path, json.dumps(document, indent=2))

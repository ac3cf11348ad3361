"""``debleed evaluate CKPT DATA``: SPEC 5 metrics of a checkpoint on a dataset folder."""

from __future__ import annotations

from pathlib import Path

import click

from denoiser.hiss_cut import hiss_cut

from .common import HISS_CUT_OPTION, NonEmptyPath, progress, user_errors


@click.command()
@click.argument("checkpoint", type=NonEmptyPath())
@click.argument("data", type=NonEmptyPath(path_type=Path))
@click.option("--report", "report_dir", type=NonEmptyPath(file_okay=False, path_type=Path),
              default=None, help="Write CSV/JSON/Markdown, spectrograms, audio and index.html here.")
@click.option("--split", type=click.Choice(["valid", "test", "all"]), default="valid", show_default=True,
              help="Which clips of the dataset's manifest to score.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N clips.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@HISS_CUT_OPTION
@user_errors
def evaluate(checkpoint: str, data: Path, report_dir: Path | None, split: str, limit: int | None,
             device: str, hiss_cut_hz: float | None) -> None:
    """Score CHECKPOINT ("default" = the shipped model) on the clips of DATA.

    Each clip is scored as input, gate (defaults), model and gate + model; the aggregate
    table (mean / median) is printed. The dataset folder is never written to.
    """
    from training.evaluate import EvaluateConfig
    from training.evaluate import evaluate as run_evaluation

    config = EvaluateConfig(split=split, limit=limit, device=device, **hiss_cut(hiss_cut_hz))
    with progress("evaluate", 1.0) as update:
        result = run_evaluation(checkpoint, data, config, report_dir, progress=update)
    click.echo(result.markdown(), nl=False)
    if report_dir is not None:
        click.echo(f"report: {report_dir / 'index.html'}")

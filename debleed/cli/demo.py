"""``debleed demo``: a synthetic snare-mic clip, denoised by the shipped model."""

from __future__ import annotations

from pathlib import Path

import click

from .common import NonEmptyPath, progress, user_errors


@click.command()
@click.option("--out", default=".", show_default=True,
              type=NonEmptyPath(file_okay=False, path_type=Path), help="Folder for the three WAVs.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Which groove and mix.")
@click.option("--model", default=None, type=NonEmptyPath(dir_okay=False, path_type=Path),
              help="Checkpoint to use instead of the shipped model.")
@user_errors
def demo(out: Path, seed: int, model: Path | None) -> None:
    """Render an 8 s noisy snare close-mic clip from a built-in kit and debleed it."""
    from training.demo import run_demo

    with progress("Denoising demo clip") as update:
        paths = run_demo(out, seed, model, progress=lambda fraction: update(fraction))
    for label, path in zip(("noisy", "clean", "denoised"), paths):
        click.echo(f"{label:9s}{path}")

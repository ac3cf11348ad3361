"""``debleed bench``: the SPEC 6 benchmark (quality against baselines, and speed)."""

from __future__ import annotations

from pathlib import Path

import click

from denoiser.hiss_cut import hiss_cut

from .common import HISS_CUT_OPTION, NonEmptyPath, progress, user_errors


def _unique(kits: tuple[Path, ...]) -> tuple[Path, ...]:
    """``kits`` without repeats of one folder (however spelt), in the given order: a kit
    named twice would be listed twice and weigh double in the held-out set."""
    first: dict[Path, Path] = {}
    for kit in kits:
        first.setdefault(kit.resolve(), kit)
    return tuple(first.values())


@click.command()
@click.option("--quick", is_flag=True, help="A subset (6 clips, short speed files) in about two minutes.")
@click.option("--out", type=NonEmptyPath(file_okay=False, path_type=Path),
              default=Path("bench_out"),
              show_default=True, help="Folder for bench.json and bench.md.")
@click.option("--kit", type=NonEmptyPath(path_type=Path), default=None,
              help="Drum kit of the test set [default: The Black Pearl 1.0].")
@click.option("--model", type=NonEmptyPath(path_type=Path), default=None,
              help="debleed checkpoint [default: the shipped model].")
@click.option("--baseline", type=NonEmptyPath(path_type=Path), default=None,
              help="Thesis-style baseline checkpoint [default: the shipped one].")
@click.option("--clips", type=click.IntRange(min=1), default=None,
              help="Number of test clips [default: 40, quick: 6].")
@click.option("--heldout-kit", "heldout_kits", multiple=True,
              type=NonEmptyPath(exists=True, file_okay=False, path_type=Path),
              help="Kit of the held-out set; repeatable [default: Millo_MultiLayered3 and "
                   "BJA_Pacific where installed].")
@click.option("--heldout-clips", type=click.IntRange(min=0), default=None,
              help="Number of held-out clips [default: 36, quick: 6; 0 skips the set].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Device of the quality runs (speed is measured on CPU, and on CUDA if present).")
@HISS_CUT_OPTION
@user_errors
def bench(quick: bool, out: Path, kit: Path | None, model: Path | None, baseline: Path | None,
          clips: int | None, heldout_kits: tuple[Path, ...], heldout_clips: int | None,
          device: str, hiss_cut_hz: float | None) -> None:
    """Benchmark the shipped (or given) model: writes OUT/bench.json and OUT/bench.md."""
    from training.bench import BenchConfig, run_bench

    overrides = {key: value for key, value in
                 {"kit": kit, "model": model, "baseline": baseline, "clips": clips,
                  "heldout_kits": _unique(heldout_kits) or None,
                  "heldout_clips": heldout_clips}.items()
                 if value is not None}
    overrides.update(device=device, **hiss_cut(hiss_cut_hz))
    config = BenchConfig.quick_config(**overrides) if quick else BenchConfig(**overrides)
    with progress("bench", 1.0) as update:
        run_bench(config, out, progress=update)
    click.echo((out / "bench.md").read_text(encoding="utf-8"), nl=False)
    click.echo(f"written: {out / 'bench.json'}, {out / 'bench.md'}")

"""``debleed denoise IN...``: the shipped model (or a checkpoint), optionally pre-gated (SPEC 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from denoiser.errors import ParameterError
from denoiser.hiss_cut import hiss_cut

from .common import HISS_CUT_OPTION, NonEmptyPath, progress, user_errors
from .gate_options import gate_config, gate_options, option_flags, pop_gate_options
from .outputs import plan_outputs


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=NonEmptyPath(path_type=Path))
@click.option("-o", "--output", type=NonEmptyPath(), default=None,
              help="Output .wav file (one input) or folder (a trailing / makes any name a "
                   "folder). Default: NAME.debleed.wav beside each input.")
@click.option("--gate/--no-gate", "use_gate", default=None,
              help="Run the ReaGate-style pre-gate before the model. Default: on when a gate "
                   "option is given, off otherwise.")
@click.option("--sidechain", type=NonEmptyPath(path_type=Path), default=None,
              help="Pre-gate detector input instead of the track itself (trigger or another "
                   "mic); same sample rate, cut or padded to each input's length. Turns the "
                   "gate on.")
@gate_options
@click.option("--model", type=NonEmptyPath(), default=None,
              help="Checkpoint file. Default: the model shipped with debleed.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--precision", type=click.Choice(["float32", "bfloat16", "float16"]),
              default="float32", show_default=True,
              help="Mixed precision for the network: bfloat16 is faster on CPUs with native "
                   "bfloat16 and on GPUs, float16 on GPUs only; the output stays float32.")
@click.option("--input-max-hz", type=float, default=0.0,
              help="Let the model read only the band below this frequency for every track, "
                   "floor found or not, e.g. 22050 for a 48-kHz track whose hiss the floor "
                   "test misses (README): the shipped model takes noise above 22.05 kHz for "
                   "bleed. It keeps the hits and removes less bleed between them. 0: every bin.")
@HISS_CUT_OPTION
@user_errors
def denoise(inputs: tuple[Path, ...], output: str | None, use_gate: bool | None,
            sidechain: Path | None, model: str | None, device: str, precision: str,
            input_max_hz: float, hiss_cut_hz: float | None, **options: Any) -> None:
    """Remove hi-hat, cymbal, kick and tom bleed from each snare track IN. Writes float32 WAV,
    sample-aligned with the input, same rate, channels and length."""
    given = pop_gate_options(options)
    if use_gate is False and (given or sidechain is not None):
        named = option_flags(given) + (["--sidechain"] if sidechain is not None else [])
        raise ParameterError(f"gate options ({', '.join(named)}) given with --no-gate")
    gate = gate_config(given) if use_gate or given or sidechain is not None else None
    jobs = plan_outputs(inputs, output, ".debleed.wav", sidechain, gate)

    from denoiser.engine import Denoiser, InferenceConfig  # torch loads only for this command

    denoiser = Denoiser.load(model, device, InferenceConfig(
        precision=precision, input_max_hz=input_max_hz, **hiss_cut(hiss_cut_hz)))
    for src, dst in jobs:
        with progress(f"denoise {src.name}", 1.0) as update:
            denoiser.denoise_file(src, dst, gate=gate, progress=update, sidechain=sidechain)
        click.echo(str(dst))

"""``debleed gate IN...``: the ReaGate-style gate alone (SPEC 1, 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from denoiser.stream import gate_file

from .common import NonEmptyPath, echo, progress, user_errors
from .gate_options import gate_config, gate_options, pop_gate_options
from .outputs import plan_outputs


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=NonEmptyPath(path_type=Path))
@click.option("-o", "--output", type=NonEmptyPath(), default=None,
              help="Output .wav file (one input) or folder (a trailing / makes any name a "
                   "folder). Default: NAME.gate.wav beside each input.")
@click.option("--sidechain", type=NonEmptyPath(path_type=Path), default=None,
              help="Detector input instead of the track itself (trigger or another mic); same "
                   "sample rate, cut or padded to each input's length.")
@gate_options
@user_errors
def gate(inputs: tuple[Path, ...], output: str | None, sidechain: Path | None,
         **options: Any) -> None:
    """Gate each IN (ReaGate-style: threshold, hysteresis, attack, hold, release, pre-open,
    detector filters, range, wet). Writes float32 WAV, same rate, channels and length."""
    config = gate_config(pop_gate_options(options))
    jobs = plan_outputs(inputs, output, ".gate.wav", sidechain, config, need_sound=False)
    with progress("gate", total=len(jobs)) as update:
        for done, (src, dst) in enumerate(jobs, start=1):
            gate_file(config, src, dst, sidechain)  # streamed: memory is one block
            update(done, src.name)
            echo(str(dst))

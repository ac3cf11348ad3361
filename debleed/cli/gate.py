"""``debleed gate IN...``: the ReaGate-style gate alone (SPEC 1, 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from denoiser.audio import Audio, read_audio, write_audio
from denoiser.errors import AudioError
from denoiser.gate import apply_gate

from .common import progress, user_errors
from .gate_options import gate_config, gate_options, pop_gate_options
from .outputs import plan_outputs


def fit_sidechain(key: Audio, key_path: Path, audio: Audio, audio_path: Path) -> np.ndarray:
    """The sidechain cut or zero-padded to the input's length; rates must match, since a
    resampled trigger would drift against the audio it gates."""
    if key.sample_rate != audio.sample_rate:
        raise AudioError(f"{key_path}: sidechain at {key.sample_rate} Hz but {audio_path} is at "
                         f"{audio.sample_rate} Hz; they must match")
    fitted = np.zeros((key.channels, audio.frames), dtype=np.float32)
    length = min(key.frames, audio.frames)
    fitted[:, :length] = key.samples[:, :length]
    return fitted


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output file (one input) or folder (several). Default: NAME.gate.wav beside "
                   "each input.")
@click.option("--sidechain", type=click.Path(path_type=Path), default=None,
              help="Detector input instead of the track itself (trigger or another mic); same "
                   "sample rate, cut or padded to each input's length.")
@gate_options
@user_errors
def gate(inputs: tuple[Path, ...], output: Path | None, sidechain: Path | None,
         **options: Any) -> None:
    """Gate each IN (ReaGate-style: threshold, hysteresis, attack, hold, release, pre-open,
    detector filters, range, wet). Writes float32 WAV, same rate, channels and length."""
    config = gate_config(pop_gate_options(options))
    protect = (sidechain,) if sidechain is not None else ()
    jobs = plan_outputs(inputs, output, ".gate.wav", protect=protect)
    key = read_audio(sidechain) if sidechain is not None else None
    with progress("gate", total=len(jobs)) as update:
        for done, (src, dst) in enumerate(jobs, start=1):
            audio = read_audio(src)
            detector = None if key is None else fit_sidechain(key, sidechain, audio, src)
            gated = apply_gate(audio.samples, audio.sample_rate, config, sidechain=detector)
            write_audio(dst, gated, audio.sample_rate, protect=(src, *protect))
            update(done, src.name)
            click.echo(str(dst))

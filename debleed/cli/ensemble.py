"""``debleed ensemble``: combine trained bandmask checkpoints into one (a bag of models)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import FiniteRange, NonEmptyPath, user_errors


@click.command()
@click.argument("members", nargs=-1, required=True, type=NonEmptyPath())
@click.option("-o", "--out", "output", required=True,
              type=NonEmptyPath(dir_okay=False, path_type=Path),
              help="Checkpoint to write (never one of the members).")
@click.option("--combine", type=click.Choice(["max", "mean", "learned", "power"]), default="max",
              show_default=True,
              help="max: a bin is kept as much as the member that keeps it most; mean: the "
                   "average; learned: a selector network, starting as max, to train with "
                   "`debleed train --init OUT --freeze members`; power: the root mean square "
                   "of the MEMBERS' masks (a max ensemble among them counts as one).")
@click.option("--min-below-hz", type=FiniteRange(min=0), default=0.0,
              help="With --combine power: below this frequency take the smallest mask "
                   "instead (kick and floor toms live there).")
@click.option("--min-above-hz", type=FiniteRange(min=0), default=0.0,
              help="With --combine power: at and above this frequency take the smallest mask "
                   "as well (cymbals inside the snare hits); 0 = off.")
@user_errors
def ensemble(members: tuple[str, ...], output: Path, combine: str, min_below_hz: float,
             min_above_hz: float) -> None:
    """Combine MEMBERS (checkpoints, or "default") into one ensemble checkpoint.

    The members must be real-mask bandmask models on the same STFT, or max ensembles of
    them (their members join). Their masks are combined per bin, so the ensemble costs one
    STFT and one network per member. One power ensemble alone is combined again (its
    groups kept) with the cutoffs given.
    """
    from denoiser.audio import check_output_folder, ensure_not_input
    from denoiser.checkpoint import load_checkpoint, save_checkpoint
    from denoiser.errors import ParameterError
    from denoiser.models.ensemble import MaskEnsemble
    from denoiser.pretrained import default_model_path

    paths = [default_model_path() if m == "default" else Path(m) for m in members]
    if len(paths) < 2 and combine != "power":
        raise ParameterError("an ensemble needs at least two member checkpoints "
                             "(or one power ensemble with --combine power)")
    ensure_not_input(output, tuple(paths))
    check_output_folder(output.parent)  # before loading: a read-only folder fails at once
    loaded = [load_checkpoint(path) for path in paths]
    bag = MaskEnsemble.of([model for model, _ in loaded], combine, min_below_hz, min_above_hz)
    sources = [{"file": path.name, "model_name": info["model_name"],
                "extra": info.get("extra", {}), "training_config": info.get("training_config", {})}
               for path, (_, info) in zip(paths, loaded)]
    save_checkpoint(output, bag, extra={"members": sources})
    click.echo(f"{output}: {combine} of {len(bag.members)} networks, "
               f"{bag.parameter_count():,} parameters")

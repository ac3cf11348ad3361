"""``debleed soup``: average the weights of checkpoints of one lineage into one network."""

from __future__ import annotations

from pathlib import Path

import click

from .common import NonEmptyPath, user_errors


def _weights(value: str | None) -> list[float] | None:
    """``--weights 1,1,2`` as numbers; a user error (exit 1) when it is not."""
    from denoiser.errors import ParameterError

    if value is None:
        return None
    try:
        return [float(part) for part in value.split(",")]
    except ValueError:
        raise ParameterError(f"--weights {value!r}: give numbers separated by commas, "
                             "e.g. 1,1,2") from None


@click.command()
@click.argument("models", nargs=-1, required=True, type=NonEmptyPath())
@click.option("-o", "--out", "output", required=True,
              type=NonEmptyPath(dir_okay=False, path_type=Path),
              help="Checkpoint to write (never one of the models).")
@click.option("--weights", help="One weight per model, comma-separated (normalised to sum "
                                "to 1) [default: equal].")
@user_errors
def soup(models: tuple[str, ...], output: Path, weights: str | None) -> None:
    """Average MODELS (checkpoints, or "default") weight by weight into one network.

    The models must share one architecture, and should be fine-tunes of one another (a
    network and what later training made of it): their average then lies between them in
    one basin of the loss. Networks trained from different starts average to noise; bag
    those with `debleed ensemble` instead. The soup costs what one network costs.
    """
    from denoiser.audio import check_output_folder, ensure_not_input
    from denoiser.checkpoint import load_checkpoint, save_checkpoint
    from denoiser.errors import ParameterError
    from denoiser.pretrained import default_model_path
    from training.soup import interpolation_distance, soup as average, soup_weights

    paths = [default_model_path() if m == "default" else Path(m) for m in models]
    if len(paths) < 2:
        raise ParameterError("a soup needs at least two checkpoints")
    ensure_not_input(output, tuple(paths))
    check_output_folder(output.parent)  # before loading: a read-only folder fails at once
    shares = soup_weights(len(paths), _weights(weights))
    loaded = [load_checkpoint(path) for path in paths]
    result = average([model for model, _ in loaded], shares)
    sources = [{"file": str(path), "weight": share, "extra": info.get("extra", {}),
                "training_config": info.get("training_config", {})}
               for path, share, (_, info) in zip(paths, shares, loaded)]
    save_checkpoint(output, result, extra={"soup": sources})
    click.echo(f"{output}: average of {len(paths)} {result.name} networks, "
               f"{result.parameter_count():,} parameters")
    for path, share, (model, _) in zip(paths, shares, loaded):
        click.echo(f"  {path}: weight {share:.3f}, "
                   f"{interpolation_distance(model, result):.3f} from the soup")

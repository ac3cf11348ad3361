"""``debleed train``: parse options into a ``TrainConfig`` and call ``run_training``.

Multi-GPU: ``torchrun --nproc_per_node N -m debleed.cli.main train ...``."""

from __future__ import annotations

import os

import click

from .common import NonEmptyPath, json_object, progress, user_errors


#: The ``--guard-teacher`` word for the --init model as the run starts: ``TrainConfig``'s
#: "" (no other checkpoint), which a resume could clear a saved teacher to only with
#: ``--guard-teacher ''``, an empty path every file option refuses (``NonEmptyPath``).
STARTING_TEACHER = "init"


def teacher_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--guard-teacher``'s value as ``TrainConfig`` keeps it: ``STARTING_TEACHER`` is ""."""
    return "" if value == STARTING_TEACHER else value


@click.command()
@click.argument("data", required=False, type=NonEmptyPath(exists=True, file_okay=False))
@click.option("--out", "run_dir", required=True, type=NonEmptyPath(file_okay=False),
              help="Run folder: checkpoints, history.json, loss.png, model card.")
@click.option("--kit", "kits", multiple=True, type=NonEmptyPath(exists=True),
              help="Synthesise training clips on the fly from these kits instead of DATA.")
@click.option("--model", default=None,
              help="Model preset (bandmask, bandmask-complex, thesis, ...); not with --init, "
                   "whose checkpoint is the model [default: bandmask].")
@click.option("--model-kwargs", default=None,
              help="JSON object overriding the preset's arguments; with --init, grows the "
                   "checkpoint's model (e.g. '{\"frame_gate\": true}').")
@click.option("--loss", default=None,
              help='JSON weights, e.g. \'{"mse": 1}\' (the thesis\'s) '
                   '[default: \'{"mrstft": 1, "envelope": 0.5, "snr": 0.05}\'].')
@click.option("--loss-options", default=None,
              help='JSON object of a loss part\'s arguments, e.g. \'{"mrstft": {"floor_db": -70}}\'.')
@click.option("--synth", default=None,
              help='With --kit: JSON object of synthesis options, e.g. '
                   '\'{"procedural_snare_probability": 0.25, "decay_seconds": [0.02, 0.6]}\' '
                   '(numbers, or [low, high] ranges).')
@click.option("--guard-weight", type=float, default=None,
              help="With --init and --kit: also hold the network to the --init model's output "
                   "(or --guard-teacher's) on clips of --guard-synth, with this weight; "
                   "0 = off [default: 0].")
@click.option("--guard-synth", default=None,
              help='JSON synthesis options of the guard\'s clips, on top of --synth '
                   '[default: \'{"procedural_snare_probability": 1}\'].')
@click.option("--guard-high-band", type=float, default=None,
              help="With --guard-weight: also hold the training clips' band above 5 kHz "
                   "inside the snare hits to the --init model's output, with this weight; "
                   "0 = off [default: 0].")
@click.option("--guard-ducking", type=float, default=None,
              help="With --guard-weight: also charge every frame of the guard's clips left "
                   "quieter than their clean snare, with this weight; 0 = off [default: 0].")
@click.option("--guard-teacher", type=NonEmptyPath(), default=None, callback=teacher_option,
              help='With --guard-weight: hold the network to this checkpoint\'s output '
                   '("default": the shipped model) instead of the --init model as it starts '
                   '("init": a new run\'s default, and with --resume it replaces the saved '
                   'teacher; a file named init is ./init).')
@click.option("--guard-batch-size", type=int, default=None,
              help="Segments of guard clips per step [default: 4].")
@click.option("--cut-input-share", type=float, default=None,
              help="Share of the training steps, 0 to 1, whose networks read only the bins up "
                   "to --cut-input-hz, as denoise reads a track with a recording floor (its "
                   "hiss cut); bandmask models and their ensembles without a deep filter "
                   "[default: 0].")
@click.option("--cut-input-hz", type=float, default=None,
              help="Where --cut-input-share's steps cut the input, by default where the hiss "
                   "cut does [default: 22050].")
@click.option("--init", type=NonEmptyPath(), default=None,
              help='Start from this checkpoint\'s weights ("default": the shipped model).')
@click.option("--freeze", multiple=True,
              help="Keep this submodule fixed, e.g. members.0 of an ensemble; repeatable; "
                   "a --resume keeps the run's.")
@click.option("--epochs", type=int, default=None, help="Most epochs to run [default: 50].")
@click.option("--steps-per-epoch", type=int, default=None,
              help="Training steps between validations [default: 200].")
@click.option("--batch-size", type=int, default=None,
              help="Segments per step, per process [default: 16].")
@click.option("--segment-seconds", type=float, default=None,
              help="Length of each training segment [default: 2].")
@click.option("--lr", type=float, default=None, help="Learning rate [default: 1e-3].")
@click.option("--optimizer", default=None, type=click.Choice(["adam", "adamw"]),  # OPTIMIZERS
              help="adamw: weight decay decoupled from the gradient; adam: plain Adam, the "
                   "decay added to the gradient (L2) [default: adamw].")
@click.option("--weight-decay", type=float, default=None,
              help="Weight decay, 0 to 1; 0 = none [default: 1e-4].")
@click.option("--grad-clip", type=float, default=None,
              help="Largest global norm of the gradient; 0 = no clipping [default: 5].")
@click.option("--plateau-patience", type=int, default=None,
              help="Epochs without a better validation loss before the learning rate is "
                   "lowered, counted as for --early-stop-patience (>= 1) [default: 3].")
@click.option("--plateau-factor", type=float, default=None,
              help="What a plateau multiplies the learning rate by, in (0, 1) [default: 0.5].")
@click.option("--valid-clips", type=int, default=None,
              help="Validation clips scored each epoch [default: 24].")
@click.option("--keep-epochs", is_flag=True, default=None,
              help="Also save every epoch's weights as RUN/epochs/epoch_NNN.pt, to choose "
                   "among them afterwards on other clips than the validation ones.")
@click.option("--ema-decay", type=float, default=None,
              help="Validate and keep as best.pt an exponential moving average of the weights "
                   "(e.g. 0.999 per step); 0 = off [default: 0].")
@click.option("--max-minutes", type=float, default=None,
              help="Wall-time budget: the run stops at the end of the first epoch past it; "
                   "0 = none [default: 0].")
@click.option("--early-stop-patience", type=int, default=None,
              help="Epochs without a better validation loss before the run stops (>= 1) "
                   "[default: 8].")
@click.option("--seed", type=int, default=None,
              help="Seeds the weights, the data order and the clips synthesised [default: 0].")
@click.option("--workers", "num_workers", type=int, default=None,
              help="DataLoader worker processes; 0 = in the training process [default: 0].")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads; 0 = torch's choice [default: 0].")
@click.option("--device", default=None, type=click.Choice(["auto", "cpu", "cuda"]),
              help="auto: cuda where a GPU is, else cpu [default: auto].")
@click.option("--precision", default=None, type=click.Choice(["float32", "bfloat16"]),
              help="bfloat16: mixed-precision training steps (GPU tensor cores, or a CPU with "
                   "native bfloat16) [default: float32].")
@click.option("--resume", is_flag=True,
              help="Continue from RUN/last.pt with the options and data it was trained "
                   "with; options given here override them, e.g. a larger --epochs (a larger "
                   "--early-stop-patience for a run that stopped early), and so do DATA or "
                   "--kit (the run's data folder is refused if it now holds another dataset).")
@user_errors
def train(data, run_dir, kits, model, model_kwargs, loss, loss_options, synth, guard_synth,
          freeze, resume, **options) -> None:
    """Train a denoiser on DATA (a dataset folder) or on kits synthesised on the fly."""
    from training.config import TrainConfig
    from training.distributed import end_worker_process
    from training.run import config_with, resumed_data, run_training, saved_config

    overrides = dict(options, model=model,
                     model_kwargs=json_object("--model-kwargs", model_kwargs),
                     loss=json_object("--loss", loss),
                     loss_options=json_object("--loss-options", loss_options),
                     synth=json_object("--synth", synth),
                     guard_synth=json_object("--guard-synth", guard_synth),
                     freeze=list(freeze) or None)
    saved = saved_config(run_dir) if resume else None
    config = config_with(saved if saved is not None else TrainConfig(), **overrides)
    if resume and data is None and not kits:  # the run's own data, as it was saved
        data, kits = resumed_data(config)
    with progress("Training", shown=is_first_process()) as update:
        best = run_training(config, run_dir, data, kits, resume, report=update, saved=saved,
                            typed={name for name, value in overrides.items() if value is not None})
    if is_first_process():
        click.echo(f"best checkpoint: {best}")
    end_worker_process()


def is_first_process() -> bool:
    """Whether this is torchrun's rank 0, or the one process outside torchrun. Why: only
    rank 0 writes the run's files and reports progress, and under torchrun every rank
    printed its result line and drew a progress bar."""
    from training.distributed import launched_world_size

    return launched_world_size() <= 1 or int(os.environ.get("RANK", "0")) == 0

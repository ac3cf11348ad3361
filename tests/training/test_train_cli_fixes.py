"""``debleed train`` as a tester found it: a resume reread its data paths relative to the
folder it ran in, a thesis model's loss window was checked at 48 kHz, a model with nothing
to train blamed --freeze, the model card rounded small losses to 0.000, and under torchrun
every rank printed the result line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.errors import ParameterError
from denoiser.models import build_model
from denoiser.models.ensemble import MaskEnsemble
from training.config import TrainConfig
from training.model_card import render_model_card
from training.run import dataset_identity, resumed_data, run_training
from training.synth import SynthConfig, render_dataset
from training.trainer import frozen_modules

CLIP_SECONDS = 2.0
TINY_OPTIONS = ["--model", "bandmask-tiny", "--epochs", "1", "--steps-per-epoch", "2",
                "--batch-size", "2", "--segment-seconds", "0.5", "--valid-clips", "1",
                "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_kit_dir: Path) -> Path:
    """Eight 2 s clips (six train, two valid) from the synthetic kit."""
    return render_dataset([synthetic_kit_dir], tmp_path_factory.mktemp("data") / "set",
                          hours=8 * CLIP_SECONDS / 3600, seed=0,
                          config=SynthConfig(clip_seconds=CLIP_SECONDS), valid_fraction=0.25)


def set_manifest_seed(data: Path, seed: int) -> None:
    """Make ``data`` another dataset as far as its manifest says (another seed)."""
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**manifest, "seed": seed}))


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def test_a_resume_from_another_folder_trains_on_the_runs_own_data(
        dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """DATA typed as ``data``, stored so, was read again in the folder the resume ran in:
    there another dataset called ``data`` was trained on without a word."""
    first, other, run = tmp_path / "first", tmp_path / "other", tmp_path / "run"
    own = shutil.copytree(dataset, first / "data")
    set_manifest_seed(shutil.copytree(dataset, other / "data"), 1)
    monkeypatch.chdir(first)
    result = CliRunner().invoke(cli, ["train", "data", "--out", str(run), *TINY_OPTIONS])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(other)
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"] == str(own.resolve()) and saved["data_identity"]["seed"] == 0
    assert "Warning: resume:" not in result.output  # the same data: nothing changed


def test_a_resume_refuses_a_data_folder_that_holds_another_dataset_now(dataset: Path,
                                                                       tmp_path: Path):
    """Refused in one line naming both datasets, before the run folder is touched; DATA given
    on the command line overrides; a data folder that is gone is one line too."""
    data, run = shutil.copytree(dataset, tmp_path / "data"), tmp_path / "run"
    assert CliRunner().invoke(cli, ["train", str(data), "--out", str(run),
                                    *TINY_OPTIONS]).exit_code == 0
    set_manifest_seed(data, 7)
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    resume = ["train", "--out", str(run), "--resume", "--epochs", "2"]
    result = CliRunner().invoke(cli, resume)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert error_lines(result.output) == [
        f"Error: resume: {data} holds another dataset (seed 7) than the run was trained on "
        "(seed 0); give DATA to resume on it anyway"]
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    result = CliRunner().invoke(cli, [*resume[:1], str(data), *resume[1:]])
    assert result.exit_code == 0, result.output
    shutil.rmtree(data)
    result = CliRunner().invoke(cli, [*resume[:-1], "3"])
    assert result.exit_code == 1, result.output
    assert error_lines(result.output) == [f"Error: resume: {data}, the run's data, is not "
                                          "there; give DATA or --kit to resume it on data "
                                          "elsewhere"]


def test_a_resume_refuses_its_folder_rendered_again_with_another_split(dataset: Path,
                                                                        tmp_path: Path):
    """A run trained on a dataset split the old way (split version 1, no ``split_version``
    in its manifest) is not resumed on the same seed rendered again: the same clips, but
    other validation clips (docs/data.md)."""
    data = shutil.copytree(dataset, tmp_path / "data")
    manifest = json.loads((data / "manifest.json").read_text())
    assert dataset_identity(data)["split_version"] == 2
    old = {name: value for name, value in manifest.items() if name != "split_version"}
    (data / "manifest.json").write_text(json.dumps(old))
    run = TrainConfig(data=str(data), data_identity=dataset_identity(data))
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ParameterError, match=r"holds another dataset \(split_version 2\) "
                                             r"than the run was trained on \(split_version none\)"):
        resumed_data(run)


def test_a_run_that_stored_a_relative_data_path_resumes_from_its_folder(
        dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs of earlier versions hold DATA as typed and no dataset identity: resumed from the
    folder they were started in, they continue on that data, and the now absolute path does
    not count as a change of the validation clips."""
    data, run = shutil.copytree(dataset, tmp_path / "data"), tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["train", "data", "--out", "run",
                                    *TINY_OPTIONS]).exit_code == 0
    state = torch.load(run / "last.pt", weights_only=True)
    config = state["model"]["training_config"]
    config["data"] = "data"
    del config["data_identity"]
    torch.save(state, run / "last.pt")
    result = CliRunner().invoke(cli, ["train", "--out", "run", "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "Warning: resume:" not in result.output
    assert json.loads((run / "config.json").read_text())["data"] == str(data.resolve())


def test_a_loss_window_longer_than_a_thesis_models_segment_is_refused_first(dataset: Path,
                                                                           tmp_path: Path):
    """The trainer scores the loss at the model's 20 kHz: 0.1 s are 2000 samples there, not
    the 4800 the check counted, and the run failed mid-training leaving config.json."""
    config = TrainConfig(model="thesis-tiny", segment_seconds=0.1, loss={"mrstft": 1.0},
                         loss_options={"mrstft": {"fft_sizes": [4096]}}, batch_size=2,
                         steps_per_epoch=1, epochs=1, valid_clips=1, threads=1, device="cpu")
    with pytest.raises(ParameterError, match="^train: loss mrstft: a window of 4096 samples is "
                                             "longer than the 2000-sample training segment$"):
        run_training(config, tmp_path / "run", data=dataset)
    assert not (tmp_path / "run").exists()


def test_a_model_with_nothing_to_train_says_so_not_freeze():
    with pytest.raises(ParameterError,
                       match="^train: model 'identity' has no trainable parameters$"):
        frozen_modules(build_model("identity"), [])
    bag = MaskEnsemble.of([build_model("bandmask-tiny"), build_model("bandmask-tiny")])
    with pytest.raises(ParameterError, match="--freeze leaves nothing to train"):
        frozen_modules(bag, ["members.0", "members.1"])


def test_the_model_card_keeps_the_digits_of_small_losses():
    """An MSE run's validation loss of 0.000152 showed as 0.000."""
    best = {"epoch": 3, "valid_loss": 0.000152, "valid_snr": 5.2831, "valid_sisdr": -1.5,
            "valid_delta_sisdr": math.nan}
    card = render_model_card(name="mse", info={"model_name": "bandmask", "extra": best},
                             history=[{}], steps=200,
                             data={"source": "set", "kits": ["k"], "clips": 6}, parameters=10)
    for row in ("| valid_loss | 0.000152 |", "| valid_snr | +5.28 |",
                "| valid_sisdr | -1.50 |", "| valid_delta_sisdr | nan |"):
        assert row in card, card


def test_the_model_card_counts_the_steps_taken_and_every_processs_segments():
    """The card multiplied every epoch by the current --steps-per-epoch (5 + 5 + 1 steps
    read 3 x 1) and gave one process's batch as a torchrun run's. Each epoch's processes
    and global batch are kept in its history row; an epoch recorded before counts as one
    process."""
    config = {"batch_size": 2, "segment_seconds": 0.5}
    history = [{"epoch": 1}, {"epoch": 2, "world_size": 1, "global_batch": 2},
               {"epoch": 3, "world_size": 2, "global_batch": 4}]
    card = render_model_card(name="ddp", info={"training_config": config, "extra": {"epoch": 2}},
                             history=history, steps=11, data={}, parameters=10)
    assert "- Epochs run: 3, 11 steps; best epoch 2\n" in card, card
    assert ", batch 2, then 4 (2 per process x 2 processes) x 0.5 s," in card, card
    card = render_model_card(name="one", info={"training_config": config}, history=history[:2],
                             steps=1, data={}, parameters=10)
    assert "- Epochs run: 2, 1 step;" in card and ", batch 2 x 0.5 s," in card, card


@pytest.mark.parametrize("environment, prints", [({}, True),
                                                 ({"WORLD_SIZE": "2", "RANK": "0"}, True),
                                                 ({"WORLD_SIZE": "2", "RANK": "1"}, False)])
def test_only_the_first_torchrun_rank_prints_the_result(monkeypatch: pytest.MonkeyPatch,
                                                        environment: dict, prints: bool):
    from debleed.cli.train import is_first_process

    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert is_first_process() is prints


@pytest.mark.parametrize("rank, bars", [("0", 1), ("1", 0)])
def test_only_the_first_torchrun_rank_draws_a_progress_bar(
        rank: str, bars: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture):
    """On a terminal every rank drew a bar and only rank 0 moved its own, so rank 1's, at
    0 %, redrew over it: now rank 0 alone opens one, and another rank's updates are no-ops."""
    import sys

    import rich.progress

    opened = []

    class Counted(rich.progress.Progress):
        def __init__(self, *args, **kwargs):
            opened.append(self)
            super().__init__(*args, **kwargs)

    def trained(config, run_dir, data, kits, resume, report, saved, typed):
        report(0.5, "epoch 1 loss 0.1234")
        return Path(run_dir) / "best.pt"

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(rich.progress, "Progress", Counted)
    monkeypatch.setattr("training.run.run_training", trained)
    monkeypatch.setattr("training.distributed.end_worker_process", lambda: None)
    cli.main(["train", str(tmp_path), "--out", str(tmp_path / "run")], standalone_mode=False)
    _, err = capsys.readouterr()
    assert len(opened) == bars
    assert ("epoch 1 loss 0.1234" in err) is (rank == "0"), err


def test_a_run_saved_with_plateau_patience_0_resumes_as_1(dataset: Path, tmp_path: Path):
    """0 was accepted until the count was corrected, and lowered the rate at the first bad
    epoch, which 1 does now: the resume of such a run was refused with an error about an
    option the user had not typed."""
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(dataset), "--out", str(run), *TINY_OPTIONS])
    assert result.exit_code == 0, result.output
    state = torch.load(run / "last.pt", weights_only=True)
    state["model"]["training_config"]["plateau_patience"] = 0  # as the old code saved it
    torch.save(state, run / "last.pt")
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["plateau_patience"] == 1


def test_a_run_saved_with_an_unused_guard_batch_of_0_reads_as_the_default():
    """0 was accepted without the guard until every count was checked: such a run's resume
    was refused over a batch it never drew. With the guard on, 0 was always refused."""
    assert TrainConfig.from_dict({"guard_batch_size": 0}).validate().guard_batch_size == 4
    guarded = TrainConfig.from_dict({"guard_batch_size": 0, "guard_weight": 0.5})
    with pytest.raises(ParameterError, match="guard-batch-size 0"):
        guarded.validate()


def test_validation_changes_compare_the_data_not_its_path():
    """A run stores absolute paths: a checkout elsewhere names the same kits at another
    path (no change), and one folder may come to hold another dataset (a change)."""
    from training.config import TrainConfig

    here = TrainConfig(kits=["/home/a/debleed/.kits/GMRockKit"])
    elsewhere = TrainConfig(kits=["/srv/b/.kits/GMRockKit"])
    assert here.validation_changes(elsewhere) == []
    assert here.validation_changes(TrainConfig(kits=["/srv/b/.kits/ForzeeStereo"])) == ["kits"]
    first = TrainConfig(data="/d/data", data_identity={"seed": 0, "clips": 10})
    swapped = TrainConfig(data="/d/data", data_identity={"seed": 7, "clips": 10})
    moved = TrainConfig(data="/e/copy", data_identity={"seed": 0, "clips": 10})
    assert first.validation_changes(swapped) == ["data"]
    assert first.validation_changes(moved) == []
    assert first.validation_changes(TrainConfig(data="/e/copy")) == ["data"]  # no identity: by path


OPTIMIZER_OPTIONS = ["--optimizer", "adam", "--weight-decay", "0.01", "--grad-clip", "0.5",
                     "--plateau-patience", "1", "--plateau-factor", "0.25"]


def test_the_optimizer_options_train_and_are_recorded(dataset: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    """``train`` always stepped AdamW with a weight decay of 1e-4, clipped at 5 and lowered
    the lr by half after 3 bad epochs, whatever the user wanted. Each is an option now, run
    as given (plain Adam is ``torch.optim.Adam``) and kept with the run and its card."""
    import training.trainer

    norms, built = [], []
    clip, build = torch.nn.utils.clip_grad_norm_, training.trainer.build_optimizer
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda parameters, norm: norms.append(norm) or clip(parameters, norm))
    monkeypatch.setattr(training.trainer, "build_optimizer",
                        lambda *args: built.append(build(*args)) or built[-1])
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(dataset), "--out", str(run), *TINY_OPTIONS,
                                      *OPTIMIZER_OPTIONS])
    assert result.exit_code == 0, result.output
    assert type(built[0]) is torch.optim.Adam and norms == [0.5, 0.5]
    state = torch.load(run / "last.pt", weights_only=True)
    assert all(g["weight_decay"] == 0.01 and not g["decoupled_weight_decay"]
               for g in state["optimizer"]["param_groups"])
    # torch lowers the rate once more than its patience epochs were bad: 0 for 1
    assert (state["scheduler"]["patience"], state["scheduler"]["factor"]) == (0, 0.25)
    recorded = {"optimizer": "adam", "weight_decay": 0.01, "grad_clip": 0.5,
                "plateau_patience": 1, "plateau_factor": 0.25}
    for config in (json.loads((run / "config.json").read_text()),
                   state["model"]["training_config"]):
        assert {name: config[name] for name in recorded} == recorded
    assert ("- Optimizer: adam, weight decay 0.01, gradient clip 0.5, lr x 0.25 after 1 "
            "epochs without a better validation loss") in (run / "MODEL_CARD.md").read_text()


def test_plain_adam_is_torch_adam_and_adamw_stays_the_default():
    from training.trainer import build_optimizer

    parameters = [torch.nn.Parameter(torch.zeros(3))]
    adam = build_optimizer(parameters, TrainConfig(optimizer="adam", weight_decay=0.01))
    assert type(adam) is torch.optim.Adam and adam.defaults["decoupled_weight_decay"] is False
    assert adam.defaults["weight_decay"] == 0.01
    assert type(build_optimizer(parameters, TrainConfig())) is torch.optim.AdamW


def test_a_resume_with_another_optimizer_steps_with_it(dataset: Path, tmp_path: Path):
    """As ``--resume --lr`` does: the loaded AdamW state kept decoupling its decay inside
    Adam (torch tells the two by a flag of each parameter group), while config.json said
    adam. The moments carry over; a later resume keeps the run's new options."""
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, ["train", str(dataset), "--out", str(run),
                                    *TINY_OPTIONS]).exit_code == 0
    resume = ["train", "--out", str(run), "--resume"]
    result = CliRunner().invoke(cli, [*resume, "--epochs", "2", *OPTIMIZER_OPTIONS])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, [*resume, "--epochs", "3"])
    assert result.exit_code == 0, result.output
    state = torch.load(run / "last.pt", weights_only=True)
    assert all(g["weight_decay"] == 0.01 and not g["decoupled_weight_decay"]
               for g in state["optimizer"]["param_groups"])
    # torch lowers the rate once more than its patience epochs were bad: 0 for 1
    assert (state["scheduler"]["patience"], state["scheduler"]["factor"]) == (0, 0.25)
    assert state["model"]["training_config"]["optimizer"] == "adam"
    assert state["model"]["training_config"]["grad_clip"] == 0.5


@pytest.mark.parametrize("option, value, message", [
    ("--weight-decay", "-0.1", "--weight-decay -0.1: must be a number in [0, 1], typically "
     "1e-4 to 0.1"),
    ("--weight-decay", "1e4", "--weight-decay 10000.0: must be a number in [0, 1]"),
    ("--weight-decay", "nan", "--weight-decay nan: must be a number in [0, 1]"),
    ("--grad-clip", "-1", "--grad-clip -1.0: must be a finite number >= 0"),
    ("--grad-clip", "inf", "--grad-clip inf: must be a finite number >= 0"),
    ("--plateau-patience", "0", "--plateau-patience 0: must be a whole number >= 1, epochs "
     "without improvement"),
    ("--plateau-factor", "1.5", "--plateau-factor 1.5: must be a number in (0, 1), the factor "
     "that lowers the learning rate"),
    ("--plateau-factor", "0", "--plateau-factor 0.0: must be a number in (0, 1)")])
def test_absurd_optimizer_options_are_one_error_line(dataset: Path, tmp_path: Path,
                                                     option: str, value: str, message: str):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(dataset), "--out", str(run), *TINY_OPTIONS,
                                      option, value])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: train: {message}"), lines
    assert not run.exists()


def test_an_unknown_optimizer_is_a_usage_error(dataset: Path, tmp_path: Path):
    result = CliRunner().invoke(cli, ["train", str(dataset), "--out", str(tmp_path / "run"),
                                      "--optimizer", "sgd"])
    assert result.exit_code == 2 and "'sgd' is not one of 'adam', 'adamw'" in result.output


def test_the_cli_offers_exactly_the_optimizers_the_trainer_builds():
    """The CLI spells its choices out (importing the training config would slow every
    command's start-up); they must stay the config's and the trainer's."""
    from debleed.cli.train import train
    from training.config import OPTIMIZERS
    from training.trainer import OPTIMIZER_CLASSES

    option = next(p for p in train.params if p.name == "optimizer")
    assert tuple(option.type.choices) == OPTIMIZERS == tuple(OPTIMIZER_CLASSES)


def test_train_help_states_every_default_train_config_holds():
    """Each option of a ``TrainConfig`` setting with a default to state (a number, a name, a
    JSON object) says it as ``[default: X]``, and X is ``TrainConfig``'s: ``--epochs``,
    ``--batch-size``, ``--lr`` and seven more stated none, nor did the docs."""
    import json
    import re
    from dataclasses import fields

    from debleed.cli.train import train
    from training.config import TrainConfig

    defaults = TrainConfig()
    names = {spec.name for spec in fields(TrainConfig)}
    checked = 0
    for param in train.params:
        if param.name not in names or getattr(param, "is_flag", False):
            continue
        value = getattr(defaults, param.name)
        if value in ("", [], {}):
            continue  # nothing to state: no data, no teacher, no frozen part, no options
        found = re.search(r"\[default: (.+)\]", " ".join((param.help or "").split()))
        assert found, f"--{param.name}: help states no default"
        stated = found.group(1).strip("'")
        if isinstance(value, dict):
            assert json.loads(stated) == value, param.name
        elif isinstance(value, str):
            assert stated == value, param.name
        else:
            assert float(stated) == value, param.name
        checked += 1
    assert checked >= 25

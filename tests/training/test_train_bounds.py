"""``debleed train`` options that had no upper bound: a batch or a validation set larger
than the machine's memory ended in a MemoryError traceback or rendered clips until the
machine ran out. They are one error line now, before the run folder is made. The machine's
size is patched here, so nothing is ever allocated at the absurd sizes."""

from __future__ import annotations

import math
import os
import re
from dataclasses import fields, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import save_checkpoint
from denoiser.errors import ParameterError
from denoiser.models import build_model
from training import config as config_module
from training.config import ASSUMED_MEMORY, TrainConfig, machine_memory

# 0.5 s segments at 48 kHz, noisy and clean float32, 32 times over: 6,144,000 bytes a segment
SEGMENT = TrainConfig(segment_seconds=0.5, threads=1)
MEMORY = 2**30  # 174 such segments; 69 ten-second validation clips in its quarter


@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(config_module, "machine_memory", lambda: MEMORY)
    return MEMORY


def test_the_machines_memory_is_read_from_the_system(monkeypatch: pytest.MonkeyPatch):
    if hasattr(os, "sysconf"):
        assert machine_memory() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    monkeypatch.delattr(os, "sysconf", raising=False)  # Windows has none
    assert machine_memory() == ASSUMED_MEMORY


def test_a_batch_no_training_step_could_hold_is_refused(small_machine: int):
    replace(SEGMENT, batch_size=174).validate()
    with pytest.raises(ParameterError, match=r"^train: --batch-size 175: at most 174 segments "
                                             r"of 0\.5 s fit a training step in this machine's "
                                             r"1\.0 GiB"):
        replace(SEGMENT, batch_size=175).validate()


def test_the_guards_segments_count_with_the_batch(small_machine: int):
    guarded = replace(SEGMENT, init="default", guard_weight=1.0, batch_size=100)
    replace(guarded, guard_batch_size=74).validate()
    with pytest.raises(ParameterError, match=r"^train: --guard-batch-size 75: at most 74 "
                                             "beside --batch-size 100"):
        replace(guarded, guard_batch_size=75).validate()
    # without the guard its batch is never drawn
    replace(guarded, guard_weight=0.0, guard_batch_size=10**9).validate()


KIT_OPTIONS = ["--epochs", "1", "--steps-per-epoch", "1",
               "--batch-size", "2", "--segment-seconds", "0.5", "--valid-clips", "1",
               "--threads", "1", "--device", "cpu"]


@pytest.mark.parametrize("memory, options, message", [
    (64 * 2**20, ["--model", "bandmask-tiny", "--batch-size", "11"],
     "train: --batch-size 11: at most 10 segments of 0.5 s fit a training step"),
    (64 * 2**20, ["--init", "TINY", "--guard-weight", "1", "--guard-batch-size", "9"],
     "train: --guard-batch-size 9: at most 8 beside --batch-size 2"),
    (64 * 2**20, ["--model", "bandmask-tiny", "--valid-clips", "5"],
     "train: --valid-clips 5: at most 4 validation clips of 10 s")])
def test_cli_refuses_what_the_machine_cannot_hold_before_making_the_run(
        synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        memory: int, options: list[str], message: str):
    """On-the-fly data (--kit) has no clip count to bound a batch, and renders every
    validation clip up front: --batch-size or --guard-batch-size 1e9 ended in a MemoryError
    traceback, --valid-clips 1000000 ran the machine out of memory."""
    monkeypatch.setattr(config_module, "machine_memory", lambda: memory)
    tiny = save_checkpoint(tmp_path / "tiny.pt", build_model("bandmask-tiny"))
    options = [str(tiny) if option == "TINY" else option for option in options]
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--kit", str(synthetic_kit_dir), "--out", str(run),
                                      *KIT_OPTIONS, *options])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {message}"), result.output
    assert "Traceback" not in result.output and not run.exists()


@pytest.mark.parametrize("option", ["num_workers", "threads"])
def test_workers_and_threads_are_at_most_four_per_core(monkeypatch: pytest.MonkeyPatch,
                                                       option: str):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    replace(SEGMENT, **{option: 8}).validate()
    flag = "--workers" if option == "num_workers" else "--threads"
    with pytest.raises(ParameterError, match=f"^train: {flag} 9: must be a whole number in "
                                             r"\[0, 8\], 4 per CPU core \(2 cores\)"):
        replace(SEGMENT, **{option: 9}).validate()
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # cannot tell: counted as one
    with pytest.raises(ParameterError, match=f"^train: {flag} 5: must be a whole number in "
                                             r"\[0, 4\], 4 per CPU core \(1 core\)"):
        replace(SEGMENT, **{option: 5}).validate()


@pytest.mark.parametrize("option", ["--workers", "--threads"])
def test_cli_refuses_more_workers_or_threads_than_the_cores_before_making_the_run(
        synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str):
    """--threads 1000000 ran libgomp out of memory (or crashed it); --workers 100000 began
    starting that many loader processes and took the machine down to a load of 900."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--kit", str(synthetic_kit_dir), "--out", str(run),
                                      "--model", "bandmask-tiny", *KIT_OPTIONS, option, "5"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: train: {option} 5: must be a whole number in [0, 4], 4 per CPU "
                      "core (1 core): more only wait for each other"], result.output
    assert not run.exists()


@pytest.mark.parametrize("option, field, saved, typed, message", [
    ("--workers", "num_workers", 14, None,
     "--workers 14 (this run's saved value): must be a whole number in [0, 8]"),
    ("--workers", "num_workers", 14, 9, "--workers 9: must be a whole number in [0, 8]"),
    ("--workers", "num_workers", 14, 14, "--workers 14: must be a whole number in [0, 8]"),
    ("--threads", "threads", None, 9, "--threads 9: must be a whole number in [0, 8]"),
    ("--batch-size", "batch_size", 11, None,
     "--batch-size 11 (this run's saved value): at most 10 segments of 0.5 s"),
    ("--valid-clips", "valid_clips", 5, None,
     "--valid-clips 5 (this run's saved value): at most 4 validation clips of 10 s")])
def test_a_resumes_refusal_says_when_the_value_is_the_runs_saved_one(
        synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str,
        field: str, saved: int | None, typed: int | None, message: str):
    """A run saved with --workers 14 on a 16-core machine, resumed on a 2-core one without
    --workers, was refused as "--workers 14", an option never typed; and the batch and
    validation bounds named fields ("batch_size = 11") where the rest name options; and
    the saved value typed again (--workers 14) was marked as saved, as if never typed."""
    import torch

    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--kit", str(synthetic_kit_dir), "--out", str(run),
                                      "--model", "bandmask-tiny", *KIT_OPTIONS])
    assert result.exit_code == 0, result.output
    if saved is not None:  # saved as on a bigger machine
        state = torch.load(run / "last.pt", weights_only=True)
        state["model"]["training_config"][field] = saved
        torch.save(state, run / "last.pt")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(config_module, "machine_memory", lambda: 64 * 2**20)
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--epochs", "2",
                                      *([option, str(typed)] if typed is not None else [])])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: train: {message}"), result.output


def test_a_python_resume_marks_the_saved_values_without_being_given_them(
        synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """run_training(resume=True) without ``saved`` read the run's saved configuration only
    after the refusal, so it never marked a saved value as the run's, as the CLI does."""
    import torch

    from training.run import run_training, saved_config

    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--kit", str(synthetic_kit_dir), "--out", str(run),
                                      "--model", "bandmask-tiny", *KIT_OPTIONS])
    assert result.exit_code == 0, result.output
    state = torch.load(run / "last.pt", weights_only=True)
    state["model"]["training_config"]["num_workers"] = 14  # saved as on a bigger machine
    torch.save(state, run / "last.pt")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with pytest.raises(ParameterError, match=r"^train: --workers 14 \(this run's saved "
                                             r"value\): must be a whole number in \[0, 8\]"):
        run_training(saved_config(run), run, kits=[str(synthetic_kit_dir)], resume=True)


@pytest.mark.parametrize("change, message", [
    ({"valid_clips": 0}, "--valid-clips 0: must be a whole number >= 1"),
    ({"num_workers": -1}, "--workers -1: must be a whole number in [0, "),
    ({"epochs": 0}, "--epochs 0: must be a whole number >= 1"),
    ({"lr": float("nan")}, "--lr nan: must be a finite number > 0"),
    ({"optimizer": "sgd"}, "--optimizer sgd: must be one of"),
    ({"early_stop_patience": 0}, "--early-stop-patience 0: must be a whole number >= 1, "
                                 "epochs without improvement before the run stops"),
    ({"guard_weight": -1.0}, "--guard-weight -1.0: must be a finite number >= 0"),
    ({"gain_jitter_db": -1.0},  # no option sets it
     "gain_jitter_db = -1.0: must be a finite number >= 0")])
def test_every_refusal_names_the_option_as_typed(change: dict, message: str):
    """--valid-clips 0 was refused as "valid_clips = 0" and --workers -1 as "num_workers =
    -1", while --valid-clips 5 past the memory bound named the option: each names it now."""
    with pytest.raises(ParameterError) as caught:
        replace(SEGMENT, **change).validate()
    assert str(caught.value).startswith(f"train: {message}")


def test_the_options_named_are_the_train_commands():
    """An option a refusal names is one ``debleed train`` takes, so it can be typed."""
    from debleed.cli.train import train

    given = {flag for param in train.params for flag in param.opts}
    named = {field.name: TrainConfig().option(field.name).split(" ")[0]
             for field in fields(TrainConfig) if field.name not in config_module.NO_OPTION}
    assert {name: flag for name, flag in named.items() if flag not in given} == {}


COUNTS = [spec.name for spec in fields(TrainConfig) if spec.type == "int"]
NUMBERS = [spec.name for spec in fields(TrainConfig) if spec.type == "float"]


@pytest.mark.parametrize("name", COUNTS)
@pytest.mark.parametrize("value", [math.nan, math.inf, 2.5, True])
def test_a_count_is_a_whole_number(name: str, value: float):
    """From Python, or a saved run's options on a resume, a count compared only with its
    bounds, which NaN passes and inf one-sided ones: --epochs nan trained no epoch and then
    found no best.pt, --epochs inf never stopped, --steps-per-epoch 2.5 failed in range()
    with a traceback once the data was loaded, and True counted 1."""
    config = replace(SEGMENT, **{name: value})
    with pytest.raises(ParameterError) as caught:
        config.validate()
    assert str(caught.value).startswith(f"train: {config.option(name)}: must be a whole number")


@pytest.mark.parametrize("name", NUMBERS)
def test_a_number_is_not_true(name: str):
    """True passed as 1 (--lr True trained at a rate of 1): a bool as a number is a mistake,
    as the other settings' checks (training/bounds.py) hold."""
    config = replace(SEGMENT, **{name: True})
    with pytest.raises(ParameterError) as caught:
        config.validate()
    assert re.match(f"train: {re.escape(config.option(name))}: must be a (finite )?number",
                    str(caught.value))


@pytest.mark.parametrize("change, message", [
    ({"guard_batch_size": 0}, "--guard-batch-size 0: must be a whole number >= 1"),
    ({"guard_batch_size": -3, "guard_weight": 1.0, "init": "default"},
     "--guard-batch-size -3: must be a whole number >= 1"),
    ({"validation_version": 0}, "validation_version = 0: must be a whole number >= 1")])
def test_a_guard_batch_and_a_validation_version_are_at_least_1(change: dict, message: str):
    """--guard-batch-size 0 passed without --guard-weight, and was refused with it only as
    "a guard batch of at least 1", without the option; a saved run's validation version
    (1 or 2) was never checked."""
    with pytest.raises(ParameterError) as caught:
        replace(SEGMENT, **change).validate()
    assert str(caught.value).startswith(f"train: {message}")


GUARDED = {"init": "default", "guard_weight": 1.0}
HUGE_MEMORY = 2**40  # 178956 segments of 0.5 s, a 600 s segment too
NAN, INF = math.nan, math.inf
# Each number field: (the rest of the config, values accepted, values refused): the
# boundaries, a step past them, NaN, inf and True, with four cores to a machine of 2 CPUs.
NUMBER_BOUNDS = {
    "lr": ({}, [1e-12, 10.0], [0.0, -1e-3, NAN, INF, -INF, True]),
    "weight_decay": ({}, [0.0, 1.0], [-1e-9, 1.0 + 1e-9, NAN, INF, True]),
    "batch_size": ({}, [1, 178956], [0, -1, 178957, NAN, INF, 2.5, True]),
    "segment_seconds": ({"batch_size": 1}, [0.1, 600.0], [0.0, 0.0999, 600.001, NAN, INF]),
    "steps_per_epoch": ({}, [1, 10**9], [0, -1, NAN, INF, 2.5, True]),
    "epochs": ({}, [1, 10**9], [0, -1, NAN, INF, 2.5, True]),
    "grad_clip": ({}, [0.0, 1e9], [-1e-9, NAN, INF, True]),
    "plateau_patience": ({}, [1, 10**6], [0, -1, NAN, INF, 1.5, True]),
    "plateau_factor": ({}, [1e-9, 1 - 1e-9], [0.0, 1.0, -0.5, NAN, INF, True]),
    "early_stop_patience": ({}, [1, 10**6], [0, -1, NAN, INF, 1.5, True]),
    "gain_jitter_db": ({}, [0.0, 1e9], [-1e-9, NAN, INF, True]),
    "ema_decay": ({}, [0.0, 1 - 1e-9], [-1e-9, 1.0, NAN, INF, True]),
    "valid_clips": ({}, [1, 10**6], [0, -1, NAN, INF, 2.5, True]),
    "validation_version": ({}, [1, 2], [0, NAN, INF, 1.5, True]),
    "stream_version": ({}, [1, 2], [0, 3, NAN, INF, 1.5, True]),
    "max_minutes": ({}, [0.0, 1e9], [-1e-9, NAN, INF, True]),
    "seed": ({}, [0, 2**63 - 1], [-1, 2**63, NAN, INF, 1.5, True]),
    "num_workers": ({}, [0, 8], [-1, 9, NAN, INF, 2.5, True]),
    "threads": ({}, [0, 8], [-1, 9, NAN, INF, 2.5, True]),
    "guard_weight": ({"init": "default"}, [0.0, 1e9], [-1e-9, NAN, INF, True]),
    "guard_batch_size": (GUARDED, [1, 178956 - 16], [0, -1, 178956 - 15, NAN, INF, 2.5, True]),
    "guard_high_band": (GUARDED, [0.0, 1e9], [-1e-9, NAN, INF, True]),
    "guard_ducking": (GUARDED, [0.0, 1e9], [-1e-9, NAN, INF, True]),
    "cut_input_share": ({}, [0.0, 1.0], [-1e-9, 1.0 + 1e-9, NAN, INF, True]),
    "cut_input_hz": ({"cut_input_share": 0.5}, [1e-9, 1e9],  # the Nyquist: run_training
                     [0.0, -1.0, NAN, INF, True]),
}


def test_every_number_field_has_its_bounds_pinned():
    assert sorted(NUMBER_BOUNDS) == sorted(COUNTS + NUMBERS)


@pytest.mark.parametrize("name, rest, value, accepted", [
    (name, rest, value, accepted) for name, (rest, good, bad) in NUMBER_BOUNDS.items()
    for values, accepted in ((good, True), (bad, False)) for value in values])
def test_each_number_field_accepts_its_bounds_and_refuses_past_them(
        monkeypatch: pytest.MonkeyPatch, name: str, rest: dict, value: float, accepted: bool):
    """Which values validate takes, pinned: the bounds moved onto training/bounds.py's
    helpers (2026-12-07) take the same ones."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(config_module, "machine_memory", lambda: HUGE_MEMORY)
    monkeypatch.setattr(TrainConfig, "check_losses", lambda self, rate: None)  # 600 s: GBs
    config = replace(SEGMENT, **{**rest, name: value})
    if accepted:
        config.validate()
    else:
        with pytest.raises(ParameterError, match=f"^train: {re.escape(config.option(name))}: "):
            config.validate()

"""Training end to end on a tiny model and a tiny synthetic dataset: the loss drops, the
run folder is complete, checkpoints round-trip, resume is exact, the CLI works."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import load_checkpoint, save_checkpoint
from denoiser.engine import Denoiser, InferenceConfig
from denoiser.errors import ParameterError
from denoiser.models import build_model
from denoiser.models.ensemble import MaskEnsemble, limit_input
from training.config import DATA_RATE, TrainConfig
from training.dataset import ClipFolder
from training.errors import DatasetError, TrainingError
from training.guard import TeacherGuard
from training.losses import CombinedLoss, SISDRLoss
from training.oneshots import one_shot
from training.distributed import World
from training import run as run_module
from training.run import batch_advice, run_training, spread
from training.session import SessionConfig, build_session_dataset, plan_session
from training.synth import SynthConfig, render_dataset
from training.trainer import Trainer, ValidClip, read_history, run_fraction

CLIP_SECONDS = 2.0
TINY = TrainConfig(model="bandmask-tiny", batch_size=3, segment_seconds=0.5, steps_per_epoch=4,
                   epochs=2, valid_clips=2, lr=3e-3, threads=1, device="cpu")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_kit_dir: Path) -> Path:
    """Ten 2 s clips (eight train, two valid) from the synthetic kit."""
    return render_dataset([synthetic_kit_dir], tmp_path_factory.mktemp("data") / "set",
                          hours=10 * CLIP_SECONDS / 3600, seed=0,
                          config=SynthConfig(clip_seconds=CLIP_SECONDS), valid_fraction=0.2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, dataset: Path) -> Path:
    run = tmp_path_factory.mktemp("runs") / "tiny"
    run_training(replace(TINY, epochs=5, steps_per_epoch=8, batch_size=4), run, data=dataset)
    return run


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]["state_dict"]


def test_validation_loss_drops(trained: Path):
    history = json.loads((trained / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    losses = [h["valid_loss"] for h in history]
    # 40 steps of a tiny network on two validation clips: over five dataset seeds the best
    # epoch took 11-112 % of the first epoch's loss off (the loss, an SI-SDR term among
    # others, may cross 0) and gained 1.4-10.4 dB of SI-SDR; the last epoch may be worse
    assert min(losses) < losses[0] - 0.08 * abs(losses[0]), losses
    assert max(h["valid_sisdr"] for h in history) > history[0]["valid_sisdr"] + 1.0


def test_bfloat16_training_learns_and_keeps_float32_weights(dataset: Path, tmp_path: Path):
    """Mixed precision: the steps run under bfloat16 autocast (the losses differ from a
    float32 run's from the first step), the loss still drops as fast, and the checkpoint's
    weights are float32."""
    runs = {}
    for precision in ("float32", "bfloat16"):
        run = tmp_path / precision
        run_training(replace(TINY, epochs=3, steps_per_epoch=8, batch_size=4, precision=precision),
                     run, data=dataset)
        runs[precision] = json.loads((run / "history.json").read_text())
    mixed, full = runs["bfloat16"], runs["float32"]
    assert mixed[0]["train_loss"] != full[0]["train_loss"]
    losses = [h["valid_loss"] for h in mixed]
    assert min(losses) < losses[0] - 0.08 * abs(losses[0]), losses  # as test_validation_loss_drops
    assert mixed[-1]["valid_loss"] < full[-1]["valid_loss"] + 0.1 * abs(full[-1]["valid_loss"])
    model, info = load_checkpoint(tmp_path / "bfloat16" / "best.pt")
    assert info["training_config"]["precision"] == "bfloat16"
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_run_folder_is_complete(trained: Path, dataset: Path):
    for name in ("history.json", "loss.png", "best.pt", "last.pt", "MODEL_CARD.md", "config.json"):
        assert (trained / name).is_file(), name
    assert (trained / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (trained / "epochs").exists()   # only with keep_epochs
    card = (trained / "MODEL_CARD.md").read_text()
    assert "bandmask" in card and "valid_sisdr" in card
    assert f"- Training data: {dataset} from kits debleed synthetic kit; 8 clips\n" in card
    assert "## Validation (held-out clips of the training kits, through the inference path)" in card
    assert json.loads((trained / "config.json").read_text())["model"] == "bandmask-tiny"


def test_best_checkpoint_is_the_best_epoch(trained: Path):
    history = json.loads((trained / "history.json").read_text())
    best_epoch = min(history, key=lambda h: h["valid_loss"])
    model, info = load_checkpoint(trained / "best.pt")
    assert model.name == "bandmask" and info["extra"]["epoch"] == best_epoch["epoch"]
    assert info["extra"]["valid_loss"] == pytest.approx(best_epoch["valid_loss"])
    assert info["training_config"]["model"] == "bandmask-tiny"
    if best_epoch["epoch"] == history[-1]["epoch"]:
        last = weights(trained / "last.pt")
        assert all(torch.equal(v, last[k]) for k, v in model.state_dict().items())


def test_checkpoint_save_load_reproduces_weights(trained: Path, tmp_path: Path):
    model, _ = load_checkpoint(trained / "best.pt")
    copy = save_checkpoint(tmp_path / "copy.pt", model, {"note": "round trip"})
    again, info = load_checkpoint(copy)
    assert info["training_config"] == {"note": "round trip"}
    state = model.state_dict()
    assert state.keys() == again.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in again.state_dict().items())
    x = torch.randn(1, 12_000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_gives_the_same_weights(dataset: Path, tmp_path: Path, ema_decay: float):
    config = replace(TINY, epochs=4, steps_per_epoch=3, valid_clips=1, ema_decay=ema_decay)
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    run_training(config, straight, data=dataset)
    run_training(replace(config, epochs=2), halves, data=dataset)
    run_training(config, halves, data=dataset, resume=True)
    a, b = weights(straight / "last.pt"), weights(halves / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    if ema_decay:
        a, b = (torch.load(run / "last.pt", weights_only=True)["ema"] for run in (straight, halves))
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert all(torch.equal(x, y) for x, y in zip(*(
            load_checkpoint(run / "best.pt")[0].state_dict().values() for run in (straight, halves))))
    losses = [[h["train_loss"] for h in json.loads((run / "history.json").read_text())]
              for run in (straight, halves)]
    assert len(losses[1]) == 4 and losses[0] == losses[1]


@pytest.mark.parametrize("workers, resumed_steps", [(1, 3), (0, 1)])
def test_resume_is_exact_with_workers_and_another_epoch_length(dataset: Path, tmp_path: Path,
                                                              workers: int, resumed_steps: int):
    """A worker process drew the random crops from its own generator, which restarts on
    resume; and a resume with another --steps-per-epoch sought by epochs times the new
    length, re-reading batches. Both gave other weights than an uninterrupted run."""
    config = replace(TINY, epochs=2, steps_per_epoch=3, valid_clips=1, num_workers=workers)
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    run_training(config, straight, data=dataset)
    run_training(replace(config, epochs=1), halves, data=dataset)
    run_training(replace(config, epochs=1 + 3 // resumed_steps, steps_per_epoch=resumed_steps),
                 halves, data=dataset, resume=True)
    a, b = weights(straight / "last.pt"), weights(halves / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kept", [True, False])
def test_a_resume_at_a_smaller_batch_goes_on_past_the_clips_used(
        synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: bool):
    """On-the-fly clips of two segments: 2 steps at batch 4 train on clips 0-3, and a resume
    at batch 1 starts at clip 4. It sought by the new batch size (2 steps of 1 segment) and
    trained on clip 1 again; a second resume at that batch size continues exactly. A last.pt
    saved before positions were kept (not ``kept``) is counted at its config's batch."""
    import training.dataset
    from training.dataset import stream_clip_seed

    drawn: list[int] = []
    render = training.dataset.render_clip
    monkeypatch.setattr(training.dataset, "render_clip",
                        lambda kits, seed, config: drawn.append(seed) or render(kits, seed, config))
    config = replace(TINY, epochs=1, steps_per_epoch=2, batch_size=4, valid_clips=1,
                     synth={"clip_seconds": 2 * TINY.segment_seconds})
    run, kits = tmp_path / "run", [str(synthetic_kit_dir)]
    index = {stream_clip_seed(config.seed, k): k for k in range(20)}
    for epochs, batch_size, clips in [(1, 4, [0, 1, 2, 3]), (2, 1, [4]), (3, 1, [5])]:
        if epochs == 2 and not kept:
            state = torch.load(run / "last.pt", weights_only=True)
            torch.save({k: v for k, v in state.items() if k != "data_positions"}, run / "last.pt")
        drawn.clear()
        run_training(replace(config, epochs=epochs, batch_size=batch_size), run, kits=kits,
                     resume=epochs > 1)
        assert [index[seed] for seed in drawn] == clips


def test_a_resume_at_a_smaller_batch_goes_on_past_the_pass_used(
        dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Eight training clips: 3 steps at batch 2 use six of the first pass's, and a resume at
    batch 1 trains on the other two, then the second pass. It sought by the new batch size
    (3 of the first pass's 8 batches) and trained on three of the six again, with the same
    crops."""
    used: list[tuple[int, int]] = []
    get = ClipFolder.__getitem__
    monkeypatch.setattr(ClipFolder, "__getitem__",
                        lambda self, item: used.append(item) or get(self, item))
    config = replace(TINY, epochs=1, steps_per_epoch=3, batch_size=2, valid_clips=1)
    run = tmp_path / "run"
    run_training(config, run, data=dataset)
    first = list(used)
    used.clear()
    run_training(replace(config, epochs=2, batch_size=1), run, data=dataset, resume=True)
    assert len(first) == 6 and len(used) == 3 and not set(first) & set(used)
    assert sorted(index for index, _ in first + used[:2]) == list(range(8))


def test_resume_with_another_loss_chooses_best_afresh(dataset: Path, tmp_path: Path):
    """A resume that changes what the validation loss measures (here the loss itself, from
    SNR, which is negative, to multi-resolution STFT, which is positive) cannot compare its
    epochs with the saved best: the first resumed epoch becomes best.pt, and the plateau
    schedule does not count it as a bad epoch."""
    run = tmp_path / "run"
    config = replace(TINY, epochs=1, valid_clips=1, loss={"snr": 1.0}, plateau_patience=1)
    run_training(config, run, data=dataset)
    assert torch.load(run / "last.pt", weights_only=True)["best"] < 0
    with pytest.warns(UserWarning, match="resume: loss changed"):
        run_training(replace(config, epochs=2, loss={"mrstft": 1.0}), run, data=dataset,
                     resume=True)
    history = json.loads((run / "history.json").read_text())
    assert history[1]["valid_loss"] > 0 > history[0]["valid_loss"]
    assert load_checkpoint(run / "best.pt")[1]["extra"]["epoch"] == 2
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["best"] == history[1]["valid_loss"]
    assert state["optimizer"]["param_groups"][0]["lr"] == TINY.lr  # not halved


def test_resuming_a_run_saved_before_the_validation_changed_chooses_best_afresh(
        dataset: Path, tmp_path: Path):
    """Since 2026-12-06 the validation clips are spread through the split and the loss is
    scored at the model's rate: a run saved before validated otherwise, and its best loss
    must not decide best.pt for epochs validated the new way."""
    run = tmp_path / "run"
    config = replace(TINY, epochs=1, valid_clips=1)
    run_training(config, run, data=dataset)
    state = torch.load(run / "last.pt", weights_only=True)
    del state["model"]["training_config"]["validation_version"]  # as saved before the field
    torch.save(state, run / "last.pt")
    with pytest.warns(UserWarning, match="resume: validation_version changed"):
        run_training(replace(config, epochs=2), run, data=dataset, resume=True)
    assert load_checkpoint(run / "best.pt")[1]["extra"]["epoch"] == 2
    saved = json.loads((run / "config.json").read_text())
    assert saved["validation_version"] == 2


@pytest.mark.parametrize("steps_done, steps_planned, seconds, max_minutes, fraction", [
    (50, 200, 0.0, 0.0, 0.25),         # no clock: steps alone
    (50, 200, 30.0, 1.0, 0.5),         # the clock is further on: it decides
    (150, 200, 30.0, 1.0, 0.75),       # the steps are further on
    (10, 100_000, 3600.0, 60.0, 1.0),  # a time-bounded run with epochs to spare ends full
    (10, 100, 7200.0, 60.0, 1.0),      # past its minutes (the last epoch ends): capped
    (0, 0, 0.0, 0.0, 1.0),             # resumed at its last epoch: nothing left
])
def test_run_fraction_is_the_further_of_steps_and_clock(steps_done, steps_planned, seconds,
                                                        max_minutes, fraction):
    assert run_fraction(steps_done, steps_planned, seconds, max_minutes) == pytest.approx(fraction)


def test_progress_counts_this_run_to_its_end(dataset: Path, tmp_path: Path):
    """The bar's fractions rise to 1 over the steps this run takes; a resumed run's bar
    starts from its own first step, not from the epochs done before it."""
    config = replace(TINY, epochs=4, steps_per_epoch=3, valid_clips=1)
    first, second = [], []
    run_training(replace(config, epochs=2), tmp_path, data=dataset,
                 report=lambda fraction, note: first.append(fraction))
    run_training(config, tmp_path, data=dataset, resume=True,
                 report=lambda fraction, note: second.append((fraction, note)))
    assert first == pytest.approx([k / 6 for k in range(1, 7)])
    assert [f for f, _ in second] == pytest.approx([k / 6 for k in range(1, 7)])
    assert second[0][1].startswith("epoch 3 loss ")


class NaNOnSomeSteps(CombinedLoss):
    """The training loss, made NaN on the training steps numbered in ``steps`` (from 1)."""

    steps: set[int] = set()

    def forward(self, estimate: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        loss = super().forward(estimate, clean)
        if torch.is_grad_enabled():
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls in self.steps:
                return loss * math.nan
        return loss


def test_a_nonfinite_step_is_skipped_and_the_run_goes_on(dataset: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    """One NaN loss in eight steps: the step is skipped (said so, counted in the history),
    the weights stay finite, and the run's other seven steps still train."""
    monkeypatch.setattr("training.run.CombinedLoss", NaNOnSomeSteps)
    monkeypatch.setattr(NaNOnSomeSteps, "steps", {3})
    with pytest.warns(UserWarning, match="epoch 1: non-finite loss or gradient, step skipped"):
        run_training(replace(TINY, ema_decay=0.9), tmp_path / "run", data=dataset)
    history = read_history(tmp_path / "run")
    assert [h["skipped_steps"] for h in history] == [1, 0]
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["valid_loss"]) for h in history)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert all(torch.isfinite(w).all() for w in state["model"]["state_dict"].values())
    assert all(torch.isfinite(w).all() for w in state["ema"].values() if w.is_floating_point())


def test_a_skipped_step_leaves_the_batchnorm_statistics_as_they_were(
        dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A batch that is NaN on the way in is skipped like a NaN loss, but its forward pass
    had already written NaN into BatchNorm's running statistics: every later output, and
    validation, was NaN. The statistics of before the step are put back."""
    step = Trainer.common_step
    calls = []

    def nan_on_the_third(self, noisy, clean, train):
        calls.append(train)
        if train and calls.count(True) == 3:
            noisy = noisy * math.nan
        return step(self, noisy, clean, train)

    monkeypatch.setattr(Trainer, "common_step", nan_on_the_third)
    with pytest.warns(UserWarning, match="epoch 1: non-finite loss or gradient, step skipped"):
        run_training(TINY, tmp_path / "run", data=dataset)
    history = read_history(tmp_path / "run")
    assert [h["skipped_steps"] for h in history] == [1, 0]
    assert all(math.isfinite(h["valid_loss"]) for h in history)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]["state_dict"]
    running = [name for name in state if "running_" in name]
    assert running and all(torch.isfinite(state[name]).all() for name in running)


def test_a_clip_holding_nan_is_refused_by_name(dataset: Path, tmp_path: Path):
    """A NaN in a clip reached the network, and the run failed epochs later with an error
    blaming the checkpoint."""
    import shutil

    copy = tmp_path / "set"
    shutil.copytree(dataset, copy)
    clip = next(path for path in sorted(copy.glob("clip-*")) if path.is_dir())
    noisy, rate = sf.read(clip / "noisy.wav", dtype="float32")
    noisy[len(noisy) // 2] = np.nan
    sf.write(clip / "noisy.wav", noisy, rate, subtype="FLOAT")
    folder = ClipFolder(copy, None)
    entry = next(e for e in folder.entries() if e["id"] == clip.name)
    with pytest.raises(DatasetError, match=f"{clip / 'noisy.wav'}: contains NaN/inf samples"):
        folder.load(entry)
    sf.write(clip / "noisy.wav", np.zeros(len(noisy) - 480, np.float32), rate, subtype="FLOAT")
    with pytest.raises(DatasetError, match="noisy.wav and clean.wav differ in length"):
        folder.load(entry)  # validation clips load whole: this was a traceback in the loss


def test_a_bad_clip_read_by_a_loader_worker_is_named(dataset: Path, tmp_path: Path):
    """With --workers torch re-raised the clip's error as "Caught DatasetError in
    DataLoader worker process 0." and the worker's traceback: the one line shown named
    the worker, not the file."""
    import shutil

    copy = tmp_path / "set"
    shutil.copytree(dataset, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for clip in manifest["clips"]:
        if clip["split"] != "train":
            continue  # the validation clips are read in the main process
        path = copy / clip["id"] / "noisy.wav"
        noisy, rate = sf.read(path, dtype="float32")
        noisy[len(noisy) // 2] = np.nan
        sf.write(path, noisy, rate, subtype="FLOAT")
    result = CliRunner().invoke(cli, tiny_cli_args(copy, tmp_path / "run") + ["--workers", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.fullmatch(rf"Error: {re.escape(str(copy))}/clip-\d+/noisy\.wav: contains NaN/inf "
                        r"samples", result.stderr.strip().splitlines()[-1]), result.stderr


def test_a_validation_clip_too_short_to_score_is_refused_by_name(dataset: Path, tmp_path: Path):
    """Training clips were checked against the segment when the folder opened, validation
    clips not at all: a 1000-sample one ended the first epoch in a padding traceback."""
    import shutil

    copy = tmp_path / "set"
    shutil.copytree(dataset, copy)
    folder = ClipFolder(copy, None)
    entry = folder.entries("valid")[0]
    for track in ("noisy", "clean", "bleed"):
        sf.write(copy / entry["id"] / f"{track}.wav", np.zeros(1000, np.float32), DATA_RATE,
                 subtype="FLOAT")
    with pytest.raises(DatasetError, match=rf"{entry['id']}: 1000 samples, shorter than 0.1 s"):
        folder.load(entry)


def test_a_run_that_stays_nonfinite_stops_with_a_clear_error(dataset: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("training.run.CombinedLoss", NaNOnSomeSteps)
    monkeypatch.setattr(NaNOnSomeSteps, "steps", set(range(2, 100)))
    with pytest.warns(UserWarning), pytest.raises(TrainingError, match="not finite for 20 steps "
                                                  r"in a row \(epoch 6\): the run diverged"):
        run_training(replace(TINY, epochs=10), tmp_path / "run", data=dataset)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["skipped_steps"] for h in history] == [3, 4, 4, 4, 4]
    assert math.isfinite(history[-1]["valid_loss"])  # the weights of step 1 are kept


def test_ema_is_the_moving_average_of_the_live_weights(dataset: Path, tmp_path: Path):
    """With one step per epoch, the EMA after two steps is decay * w1 + (1 - decay) * w2 of
    the live weights (BatchNorm statistics included); validation and best.pt use it."""
    decay = 0.75
    config = replace(TINY, steps_per_epoch=1, valid_clips=1, ema_decay=decay)
    run_training(replace(config, epochs=1), tmp_path / "one", data=dataset)
    run_training(config, tmp_path / "two", data=dataset)
    w1, w2 = weights(tmp_path / "one" / "last.pt"), weights(tmp_path / "two" / "last.pt")
    state = torch.load(tmp_path / "two" / "last.pt", map_location="cpu", weights_only=True)
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    assert ema.keys() == w2.keys()
    moved = [k for k in w2 if w2[k].is_floating_point() and not torch.equal(w1[k], w2[k])]
    assert moved, "the live weights did not change"
    for k in moved:
        torch.testing.assert_close(ema[k], decay * w1[k] + (1 - decay) * w2[k])
        assert not torch.allclose(ema[k], w2[k])
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    best_epoch = min(history, key=lambda h: h["valid_loss"])["epoch"]
    best = load_checkpoint(tmp_path / "two" / "best.pt")[0].state_dict()
    expected = ema if best_epoch == 2 else w1  # the EMA's first step copies the weights
    assert all(torch.equal(best[k], expected[k]) for k in moved)


def test_on_the_fly_synthesis_trains_and_resumes(synthetic_kit_dir: Path, tmp_path: Path):
    config = replace(TINY, batch_size=2, steps_per_epoch=2, valid_clips=1)
    straight = run_training(config, tmp_path / "straight", kits=[str(synthetic_kit_dir)])
    assert straight.is_file()
    history = read_history(tmp_path / "straight")
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["valid_loss"])) for h in history)
    assert "on-the-fly" in (tmp_path / "straight" / "MODEL_CARD.md").read_text()
    run_training(replace(config, epochs=1), tmp_path / "halves", kits=[str(synthetic_kit_dir)])
    run_training(config, tmp_path / "halves", kits=[str(synthetic_kit_dir)], resume=True)
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "halves" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_saved_before_the_stream_had_its_own_seeds_resumes_on_its_stream(
        synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Since 2026-12-07 the stream renders from seeds of its own (version 2), no longer the
    clips of ``dataset synth`` with the run's seed (version 1). A run saved before keeps
    version 1 on a resume (its last.pt holds no version): its weights are those of an
    uninterrupted version-1 run, bit for bit, and a new run is on version 2."""
    config = replace(TINY, batch_size=2, steps_per_epoch=2, valid_clips=1)
    kits = [str(synthetic_kit_dir)]
    with monkeypatch.context() as old_code:  # the code before: every run on version 1
        old_code.setattr(run_module, "STREAM_VERSION", 1)
        run_training(config, tmp_path / "straight", kits=kits)
        run_training(replace(config, epochs=1), tmp_path / "halves", kits=kits)
    state = torch.load(tmp_path / "halves" / "last.pt", weights_only=True)
    del state["model"]["training_config"]["stream_version"]  # as saved before the field
    torch.save(state, tmp_path / "halves" / "last.pt")
    run_training(config, tmp_path / "halves", kits=kits, resume=True)
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "halves" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "halves" / "config.json").read_text())["stream_version"] == 1
    run_training(config, tmp_path / "new", kits=kits)
    assert json.loads((tmp_path / "new" / "config.json").read_text())["stream_version"] == 2
    c = weights(tmp_path / "new" / "last.pt")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_history_json_holds_null_where_a_value_is_undefined(synthetic_kit_dir: Path,
                                                           tmp_path: Path):
    """With every validation clip bleed-only, SI-SDR is undefined (NaN): history.json held
    a bare ``NaN``, which is not JSON. It holds ``null`` now, read back as NaN, and a file
    written before, with ``NaN``, still reads."""
    from debleed.cli.common import refuse_constant

    run = tmp_path / "run"
    synth = {"bleed_only_probability": 1.0, "clip_seconds": 2.0}
    run_training(replace(TINY, batch_size=2, steps_per_epoch=1, epochs=1, valid_clips=1,
                         synth=synth), run, kits=[str(synthetic_kit_dir)])
    (row,) = json.loads((run / "history.json").read_text(), parse_constant=refuse_constant)
    assert row["valid_sisdr"] is None and row["valid_delta_sisdr"] is None
    assert row["valid_silent_clips"] == 1 and math.isfinite(row["valid_loss"])
    (read,) = read_history(run)
    assert math.isnan(read["valid_sisdr"]) and read["valid_loss"] == row["valid_loss"]
    (run / "history.json").write_text(json.dumps([read]))  # as written before: bare NaN
    assert "NaN" in (run / "history.json").read_text()
    (old,) = read_history(run)
    assert math.isnan(old["valid_sisdr"]) and old["valid_loss"] == row["valid_loss"]


def test_synth_options_shape_on_the_fly_clips(synthetic_kit_dir: Path, tmp_path: Path):
    """--synth reaches the training stream and the validation clips, and is recorded."""
    from training.distributed import World
    from training.run import synth_data

    synth = {"procedural_snare_probability": 1.0}
    config = replace(TINY, batch_size=2, steps_per_epoch=1, epochs=1, valid_clips=2, synth=synth)
    loader, valid, _ = synth_data([str(synthetic_kit_dir)], config, World(0, 1))
    assert loader.dataset.config.procedural_snare_probability == 1.0
    _, plain, _ = synth_data([str(synthetic_kit_dir)], replace(config, synth={}), World(0, 1))
    assert all(not np.array_equal(a.clean, b.clean) for a, b in zip(valid, plain))
    run_training(config, tmp_path / "run", kits=[str(synthetic_kit_dir)])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["synth"] == synth
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "- Synthesis options: {'procedural_snare_probability': 1.0}" in card


def test_synth_groove_and_mic_settings_reach_the_clips(synthetic_kit_dir: Path, tmp_path: Path):
    """--synth's ``groove`` and ``mic`` objects set the groove generator and the snare mic of
    the training stream and the validation clips; a dict setting changes only its keys."""
    from training.config import synth_config_with
    from training.run import synth_data

    synth = {"groove": {"tacet_bar_probability": 1.0, "style_weights": {"swell": 3.0},
                        "bpm_range": [90, 100]},
             "mic": {"gain_db": {"kick": [-20, -10]}}}
    config = replace(TINY, batch_size=2, steps_per_epoch=1, epochs=1, valid_clips=2, synth=synth)
    loader, valid, _ = synth_data([str(synthetic_kit_dir)], config, World(0, 1))
    groove, mic = loader.dataset.config.groove, loader.dataset.config.mic
    assert groove.style_weights == {**SynthConfig().groove.style_weights, "swell": 3.0}
    assert groove.bpm_range == (90.0, 100.0) and mic.delay_ms == SynthConfig().mic.delay_ms
    assert mic.gain_db == {**SynthConfig().mic.gain_db, "kick": (-20.0, -10.0)}
    assert all(not clip.clean.any() and clip.noisy.any() for clip in valid)  # every bar tacet
    _, plain, _ = synth_data([str(synthetic_kit_dir)], replace(config, synth={}), World(0, 1))
    assert all(clip.clean.any() for clip in plain)
    assert synth_config_with(json.loads(json.dumps(synth))) == loader.dataset.config  # a resume
    guard = replace(config, guard_synth={"groove": {"bpm_range": [60, 70],
                                                    "style_weights": {"blast": 0}}}
                    ).guard_synth_config()
    assert guard.groove.bpm_range == (60.0, 70.0) and guard.groove.tacet_bar_probability == 1.0
    assert guard.groove.style_weights == {**SynthConfig().groove.style_weights, "swell": 3.0,
                                          "blast": 0.0}
    run_training(config, tmp_path / "run", kits=[str(synthetic_kit_dir)])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["synth"] == synth


@pytest.mark.parametrize("synth, message", [
    ({"nope": 1}, "unknown synth option"),
    ({"groove": 3}, r"synth option groove = 3: must be a JSON object of GrooveConfig settings"),
    ({"groove": {"swing": 1}}, r"synth option groove: unknown setting \['swing'\]"),
    ({"groove": {"ghost_probability": 1.5}}, r"groove.ghost_probability = 1.5: must be a "
                                             r"probability in \[0, 1\]"),
    ({"groove": {"style_weights": {"polka": 1}}}, r"groove.style_weights = .*must be a dict"),
    ({"mic": {"gain_db": {"kick": [1, "x"]}}}, r"mic.gain_db\['kick'\] = \[1, 'x'\]: must be "
                                              r"\[low, high\]"),
    ({"mic": {"delay_ms": [3.0, 1.0]}}, r"mic.delay_ms = \[3.0, 1.0\]: must be \[low, high\]"),
    ({"sample_rate": 44100}, "unknown synth option"),
    ({"procedural_snare_probability": 1.5}, r"must be a probability in \[0, 1\]"),
    ({"pitch_semitones": "3"}, r"must be a number in \[0, 24\]"),
    ({"pitch_semitones": -3}, r"must be a number in \[0, 24\]"),
    ({"wide_pitch_semitones": float("inf")}, r"must be a number in \[0, 24\]"),
    ({"pitch_semitones": 300}, r"pitch_semitones = 300: must be a number in \[0, 24\]"),
    ({"preroll_seconds": 1e6}, r"must be a number in \[0, 10\]"),
    ({"cross_kit_probability": -0.1}, r"must be a probability in \[0, 1\]"),
    ({"decay_seconds": [0.0, 0.1]}, r"must be \[low, high\], finite, low <= high, both > 0"),
    ({"decay_seconds": [0.2, 0.1]}, r"low <= high, both > 0"),
    ({"decay_seconds": 0.1}, r"must be \[low, high\]"),
    ({"decay_seconds": [0.1, float("nan")]}, r"must be \[low, high\]"),
    ({"peak_dbfs": [-6.0, 3.0]}, r"both <= 0"),
    ({"peak_dbfs": [-1000.0, -1000.0]}, r"peak_dbfs = \[-1000.0, -1000.0\]: must lie within "
                                        r"\[-60, 0\]"),
    ({"floor_dbfs": [-200.0, -100.0]}, r"within \[-160, 0\]"),
    ({"decay_seconds": [0.1, 100.0]}, r"within \[0, 10\]"),
])
def test_bad_synth_options_raise(synthetic_kit_dir: Path, tmp_path: Path, synth: dict,
                                 message: str):
    with pytest.raises(ParameterError, match=message):
        run_training(replace(TINY, synth=synth), tmp_path / "run", kits=[str(synthetic_kit_dir)])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, kwargs, message", [
    ({}, {"kits": ["KIT"]}, "not both"),
    ({}, {"data": None}, "give a dataset folder or --kit folders"),
    ({}, {"kits": True}, "not both"),
    ({"epochs": 0}, {}, "--epochs 0: must be a whole number >= 1"),
    ({"segment_seconds": 0.0}, {}, r"--segment-seconds 0.0: must be a number in \[0.1, 600\]"),
    ({"loss": {"l1": 1.0}}, {}, "unknown or empty loss"),
    ({"batch_size": 64}, {}, "fewer than one batch of 64 per process; give --batch-size 8 or less"),
    ({}, {"resume": True}, "nothing to resume"),
    ({"ema_decay": 1.0}, {}, "--ema-decay 1.0"),
    ({"ema_decay": -0.1}, {}, "--ema-decay -0.1"),
    ({"synth": {"procedural_snare_probability": 0.5}}, {}, "on-the-fly"),
    ({"precision": "float16"}, {}, "--precision float16: must be one of"),
    ({"lr": math.nan}, {}, "--lr nan: must be a finite number"),
    ({"lr": math.inf}, {}, "--lr inf: must be a finite number"),
    ({"weight_decay": math.nan}, {}, "--weight-decay nan"),
    ({"max_minutes": math.inf}, {}, "--max-minutes inf"),
    ({"segment_seconds": math.inf}, {}, "--segment-seconds inf"),
    ({"segment_seconds": 0.001}, {}, r"--segment-seconds 0.001: must be a number in "
                                     r"\[0.1, 600\], seconds from the losses' longest window "
                                     "to the longest clip"),
    ({"segment_seconds": 96000.0}, {}, r"--segment-seconds 96000.0: must be a number in "
                                       r"\[0.1, 600\]"),
    ({"seed": -1}, {}, r"--seed -1: must be a whole number in \[0, 9223372036854775807\]"),
    ({"seed": 2**64}, {}, "--seed "),
    ({"threads": -2}, {}, r"--threads -2: must be a whole number in \[0, "),
    ({"gain_jitter_db": -1.0}, {}, "gain_jitter_db = -1.0: must be a finite number >= 0"),
    ({"early_stop_patience": -1}, {}, "--early-stop-patience -1: must be a whole number >= 1"),
    ({"early_stop_patience": 0}, {}, "--early-stop-patience 0: must be a whole number >= 1"),
    ({"plateau_patience": 0}, {}, "--plateau-patience 0: must be a whole number >= 1, epochs "
                                  "without improvement before the rate is lowered"),
    ({"plateau_factor": 1.0}, {}, r"--plateau-factor 1.0: must be a number in \(0, 1\)"),
    ({"freeze": ["nothere"]}, {}, "no module 'nothere' to freeze"),
])
def test_bad_options_raise(dataset: Path, synthetic_kit_dir: Path, tmp_path: Path,
                           change: dict, kwargs: dict, message: str):
    """Refused before anything is written: no run folder, not even its config.json."""
    arguments = {"data": dataset, **kwargs}
    arguments["kits"] = [str(synthetic_kit_dir)] if "kits" in kwargs else ()
    with pytest.raises(ParameterError, match=message):
        run_training(replace(TINY, **change), tmp_path / "run", **arguments)
    assert not (tmp_path / "run").exists()


def tiny_cli_args(dataset: Path, run: Path) -> list[str]:
    return ["train", str(dataset), "--out", str(run), "--model", "bandmask-tiny",
            "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
            "--segment-seconds", "0.5", "--valid-clips", "1", "--threads", "1",
            "--device", "cpu"]


def test_cli_trains_and_prints_the_best_checkpoint(dataset: Path, tmp_path: Path):
    run = tmp_path / "cli-run"
    result = CliRunner().invoke(cli, tiny_cli_args(dataset, run))
    assert result.exit_code == 0, result.output
    assert f"best checkpoint: {run / 'best.pt'}" in result.output
    load_checkpoint(run / "best.pt")
    assert len(json.loads((run / "history.json").read_text())) == 1


def test_cli_keep_epochs_saves_every_epochs_weights(dataset: Path, tmp_path: Path):
    """``--keep-epochs``: one loadable checkpoint per epoch; the best epoch's is best.pt's
    weights and the last epoch's is last.pt's, and the epochs differ (it is not one file
    written three times)."""
    run = tmp_path / "kept"
    arguments = tiny_cli_args(dataset, run) + ["--epochs", "3", "--keep-epochs"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    kept = sorted(p.name for p in (run / "epochs").iterdir())
    assert kept == ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt"]
    history = json.loads((run / "history.json").read_text())
    best_epoch = min(history, key=lambda h: h["valid_loss"])["epoch"]
    best = load_checkpoint(run / "best.pt")[0].state_dict()
    per_epoch = {}
    for epoch in (1, 2, 3):
        model, info = load_checkpoint(run / "epochs" / f"epoch_{epoch:03d}.pt")
        assert info["extra"]["epoch"] == epoch and info["training_config"]["keep_epochs"]
        per_epoch[epoch] = model.state_dict()
    assert all(torch.equal(v, best[k]) for k, v in per_epoch[best_epoch].items())
    last = weights(run / "last.pt")
    assert all(torch.equal(v, last[k]) for k, v in per_epoch[3].items())
    assert not torch.equal(per_epoch[1]["project.weight"], per_epoch[3]["project.weight"])


def test_cli_loss_options_reach_the_loss(dataset: Path, tmp_path: Path):
    """``--loss-options``: saved with the run, and the loss it configures is the one
    trained and validated with (a higher STFT floor lowers the validation loss)."""
    losses = {}
    for name, extra in (("plain", []), ("floor", ["--loss-options", '{"mrstft": {"floor_db": -60}}'])):
        run = tmp_path / name
        result = CliRunner().invoke(cli, tiny_cli_args(dataset, run) + extra)
        assert result.exit_code == 0, result.output
        losses[name] = json.loads((run / "history.json").read_text())[0]["valid_loss"]
    saved = json.loads((tmp_path / "floor" / "config.json").read_text())["loss_options"]
    assert saved == {"mrstft": {"floor_db": -60}}
    assert load_checkpoint(tmp_path / "floor" / "best.pt")[1]["training_config"]["loss_options"] == saved
    assert losses["floor"] < losses["plain"] - 0.05, losses


def test_a_new_run_never_replaces_an_earlier_one(dataset: Path, tmp_path: Path):
    run = tmp_path / "run"
    run_training(TINY, run, data=dataset)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(ParameterError, match="holds a run already .*--resume"):
        run_training(TINY, run, data=dataset)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_cli_resume_keeps_the_runs_options(dataset: Path, tmp_path: Path):
    """``--resume`` with only the options that change (a longer --epochs) continues the run
    as trained: same data, model, steps and batch, and the same weights as an unbroken run,
    even after a failed attempt rewrote config.json."""
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert CliRunner().invoke(cli, tiny_cli_args(dataset, straight) + ["--epochs", "2"]).exit_code == 0
    assert CliRunner().invoke(cli, tiny_cli_args(dataset, halves)).exit_code == 0
    (halves / "config.json").write_text(json.dumps({"model": "thesis", "steps_per_epoch": 9}))
    result = CliRunner().invoke(cli, ["train", "--out", str(halves), "--epochs", "2", "--resume"])
    assert result.exit_code == 0, result.output
    saved = json.loads((halves / "config.json").read_text())
    assert (saved["model"], saved["steps_per_epoch"], saved["epochs"]) == ("bandmask-tiny", 2, 2)
    assert (saved["data"], saved["kits"]) == (str(dataset), [])
    assert len(json.loads((halves / "history.json").read_text())) == 2
    a, b = weights(straight / "last.pt"), weights(halves / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_resume_with_another_loss_says_so_in_one_line(dataset: Path, tmp_path: Path):
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, tiny_cli_args(dataset, run)).exit_code == 0
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--epochs", "2", "--resume",
                                      "--loss", '{"mse": 1}'])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert warning == ["Warning: resume: loss changed, so the validation loss is measured "
                       "afresh; best.pt is chosen again from the next epoch"]
    assert "run_training(" not in result.output  # no source-line echo


@pytest.mark.parametrize("state, message", [(None, "nothing to resume"),
                                            (b"{oops", "not a readable checkpoint"),
                                            ({"epoch": 1}, "not a training state")])
def test_cli_resume_without_a_saved_run_is_one_error_line(dataset: Path, tmp_path: Path,
                                                          state: bytes | dict | None, message: str):
    run = tmp_path / "run"
    run.mkdir()
    last = run / "last.pt"
    if isinstance(state, bytes):
        last.write_bytes(state)
    elif state is not None:
        torch.save(state, last)
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    result = CliRunner().invoke(cli, ["train", str(dataset), "--out", str(run), "--resume"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


@pytest.mark.parametrize("extra", [["--epochs", "0"], ["--loss", "{not json"],
                                   ["--loss", '{"l1": 1}'], ["--model-kwargs", "[1]"],
                                   ["--kit", "KIT"], ["--freeze", "nope"],
                                   ["--synth", "[1]"], ["--ema-decay", "1"],
                                   ["--synth", '{"procedural_snare_probability": 0.5}'],
                                   ["--loss-options", '{"mrstft": {"floor": 1}}'],
                                   ["--loss-options", '{"segsnr": {"floor_db": -50}}'],
                                   ["--lr", "nan"], ["--lr", "inf"], ["--seed", "-1"],
                                   ["--segment-seconds", "0.001"], ["--threads", "-2"],
                                   ["--max-minutes", "nan"], ["--ema-decay", "nan"]])
def test_cli_bad_option_is_one_error_line(dataset: Path, synthetic_kit_dir: Path,
                                          tmp_path: Path, extra: list[str]):
    extra = [str(synthetic_kit_dir) if e == "KIT" else e for e in extra]
    result = CliRunner().invoke(cli, tiny_cli_args(dataset, tmp_path / "run") + extra)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "run").exists()  # no config.json of a run that never started


@pytest.mark.parametrize("extra, given", [
    (["--model", "thesis-tiny"], "not --model thesis-tiny --model-kwargs '{}'"),
    (["--model-kwargs", '{"channels": 8}'],
     """not --model bandmask-tiny --model-kwargs '{"channels": 8}'"""),
])
def test_cli_resume_with_another_network_is_one_error_line(dataset: Path, tmp_path: Path,
                                                           extra: list[str], given: str):
    """The run's weights fit only the network it trained: another --model or --model-kwargs
    is refused, naming the run's own, before anything in the run folder is touched."""
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, tiny_cli_args(dataset, run)).exit_code == 0
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--epochs", "2",
                                      *extra])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.splitlines() == [
        f"Error: {run}: the run was trained with --model bandmask-tiny --model-kwargs '{{}}', "
        f"{given}; resume it with the same ones, or leave them out"]
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_a_run_from_an_init_resumes_after_that_file_is_gone(dataset: Path, tmp_path: Path):
    """last.pt holds the network's name, arguments and every weight, but a resume built the
    network from --init's file again (grown by --model-kwargs) and failed, "no such
    checkpoint", once that file was moved or deleted. It now resumes from last.pt alone to
    an uninterrupted run's weights, --init kept as the record of where the run started;
    another --init, which would be recorded but not used, is refused before the run folder
    changes."""
    from denoiser.models import build_model

    torch.manual_seed(6)
    start = save_checkpoint(tmp_path / "start.pt", build_model("bandmask-tiny"))
    config = replace(TINY, init=str(start), model_kwargs={"frame_gate": True}, epochs=2,
                     steps_per_epoch=1, valid_clips=1)
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    run_training(config, straight, data=dataset)
    run_training(replace(config, epochs=1), halves, data=dataset)
    start.unlink()
    result = CliRunner().invoke(cli, ["train", "--out", str(halves), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    a, b = weights(straight / "last.pt"), weights(halves / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((halves / "config.json").read_text())["init"] == str(start)
    before = {path.name: path.read_bytes() for path in halves.iterdir()}
    other = save_checkpoint(tmp_path / "other.pt", build_model("bandmask-tiny"))
    result = CliRunner().invoke(cli, ["train", "--out", str(halves), "--resume", "--epochs", "3",
                                      "--init", str(other)])
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"Error: {halves}: the run started from --init {start}, not --init {other}; a resume "
        "continues the network in its last.pt: leave --init out, or start a new run from "
        "that checkpoint"], result.output
    assert {path.name: path.read_bytes() for path in halves.iterdir()} == before


DIVERGING = replace(TINY, epochs=2, steps_per_epoch=1, valid_clips=1,
                    loss={"mse": 1e308, "snr": 1e308})  # finite loss weights, overflowing losses


def test_a_run_whose_validation_is_not_finite_stops_with_a_clear_error(dataset: Path,
                                                                       tmp_path: Path):
    """The validation loss of the first epoch is not finite: the run stops there, saving no
    best.pt and no last.pt of those weights."""
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="step skipped"), pytest.raises(
            TrainingError, match=r"validation loss after epoch 1 \(step 1\) is not finite: the "
                                 "run diverged; train it with a lower --lr or smaller --loss"):
        run_training(DIVERGING, run, data=dataset)
    assert sorted(path.name for path in run.iterdir()) == ["config.json"]


def test_weights_that_overflow_in_validation_are_a_diverged_run(dataset: Path, tmp_path: Path):
    """``--lr 1e4``: the first step leaves weights whose validation output holds NaN/inf.
    The inference engine's "this checkpoint cannot process this audio" ended the run, never
    the trainer's advice; it is a non-finite validation loss, and the folder is left as by
    any divergence in the first epoch: config.json, no checkpoint of those weights."""
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"validation loss after epoch 1 \(step 1\) is not "
                                            "finite: the run diverged; train it with a lower --lr"):
        run_training(replace(DIVERGING, loss=TINY.loss, lr=1e4), run, data=dataset)
    assert sorted(path.name for path in run.iterdir()) == ["config.json"]


def test_a_run_that_diverges_in_validation_later_keeps_its_checkpoints(dataset: Path,
                                                                       tmp_path: Path):
    """A resume at ``--lr 1e4`` whose epoch validates to NaN/inf stops as diverged and
    leaves best.pt and last.pt of the epoch before as they were, for a resume at a lower
    --lr (best.pt is never replaced by weights that validate to NaN)."""
    run = tmp_path / "run"
    config = replace(TINY, epochs=1, steps_per_epoch=1, valid_clips=1)
    run_training(config, run, data=dataset)
    before = {name: (run / name).read_bytes() for name in ("best.pt", "last.pt")}
    with pytest.raises(TrainingError, match=r"validation loss after epoch 2 \(step 2\) is not "
                                            "finite: the run diverged"):
        run_training(replace(config, epochs=2, lr=1e4), run, data=dataset, resume=True)
    assert {name: (run / name).read_bytes() for name in before} == before


@pytest.mark.parametrize("diverging", [["--loss", json.dumps(DIVERGING.loss)], ["--lr", "1e8"]])
def test_cli_never_names_a_best_checkpoint_of_a_diverged_run(dataset: Path, tmp_path: Path,
                                                             diverging: list[str]):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, tiny_cli_args(dataset, run) + diverging)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "the run diverged" in errors[0], result.output
    assert "best checkpoint" not in result.output and not (run / "best.pt").exists()


def test_a_resume_with_nothing_left_to_train_and_no_best_is_an_error(dataset: Path,
                                                                     tmp_path: Path):
    """last.pt records the epoch best.pt holds: when that is its own, the best.pt a stop cut
    short (here deleted) is written again from it (``Trainer.finish_saving``); a state that
    does not say (saved before debleed kept it) leaves none, and the resume says so."""
    run = tmp_path / "run"
    config = replace(TINY, epochs=1, steps_per_epoch=1, valid_clips=1)
    run_training(config, run, data=dataset)
    best = (run / "best.pt").read_bytes()
    (run / "best.pt").unlink()
    with pytest.warns(UserWarning, match="resume: the run has trained 1 epoch"):
        run_training(config, run, data=dataset, resume=True)
    old, new = (torch.load(package, weights_only=True)
                for package in (io.BytesIO(best), run / "best.pt"))
    assert new.keys() == old.keys() and all(new[k] == old[k] for k in old if k != "state_dict")
    assert all(torch.equal(new["state_dict"][k], v) for k, v in old["state_dict"].items())
    (run / "best.pt").unlink()
    state = torch.load(run / "last.pt", weights_only=True)
    del state["best_epoch"]
    torch.save(state, run / "last.pt")
    with pytest.raises(TrainingError, match="best.pt: no epoch of this run was saved as the best"
                       "; train it for more --epochs"), pytest.warns(
            UserWarning, match=r"resume: the run has trained 1 epoch \(--epochs 1\); nothing"):
        run_training(config, run, data=dataset, resume=True)


def test_cli_refuses_a_model_with_init(trained: Path, dataset: Path, tmp_path: Path):
    """--init's checkpoint is the network (--model-kwargs grow it): a --model beside it would
    be ignored while the run recorded it, so it is refused before anything is written."""
    run = tmp_path / "run"
    arguments = tiny_cli_args(dataset, run) + ["--init", str(trained / "best.pt")]
    result = CliRunner().invoke(cli, [a if a != "bandmask-tiny" else "thesis-tiny"
                                      for a in arguments])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"Error: --model thesis-tiny: the model is --init {trained / 'best.pt'}'s; leave "
        "--model out (--model-kwargs grows that model)"]
    assert not run.exists()


def test_a_model_beside_an_init_is_refused_by_the_library(tmp_path: Path):
    """The refusal is ``config_with``'s, not only the CLI's: a preset given beside an
    ``init`` (given with it, or the resumed run's) is named; an ``init`` alone is fine."""
    from training.run import config_with

    init = str(tmp_path / "start.pt")
    message = (f"--model thesis-tiny: the model is --init {init}'s; leave --model out "
               r"\(--model-kwargs grows that model\)")
    with pytest.raises(ParameterError, match=message):
        config_with(TrainConfig(), model="thesis-tiny", init=init)
    with pytest.raises(ParameterError, match=message):  # a resumed --init run
        config_with(replace(TINY, init=init), model="thesis-tiny", epochs=2)
    assert config_with(TrainConfig(), model=None, init=init).init == init
    assert config_with(replace(TINY, init=init), model=None).model == TINY.model


def test_cli_resume_unpickles_last_pt_once(dataset: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    """The CLI reads the run's options from last.pt and hands them to run_training, whose
    network check used to unpickle the whole state a second time."""
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, tiny_cli_args(dataset, run)).exit_code == 0
    reads: list[Path] = []
    load_package = run_module.load_package

    def counting(path, *args, **kwargs):
        reads.append(Path(path))
        return load_package(path, *args, **kwargs)

    monkeypatch.setattr(run_module, "load_package", counting)
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--epochs", "2", "--resume"])
    assert result.exit_code == 0, result.output
    assert reads == [run / "last.pt"]
    reads.clear()
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--epochs", "3", "--resume",
                                      "--model", "thesis-tiny"])
    assert result.exit_code == 1 and "the run was trained with --model" in result.output
    assert reads == [run / "last.pt"]


def test_pass_batches_shard_reshuffle_and_seek():
    from training.distributed import World
    from training.run import PassBatches

    ranks = [PassBatches(10, 2, seed=5, world=World(rank, 2)) for rank in (0, 1)]
    first = [sum(list(r), []) for r in ranks]
    clips = [[index for index, _ in items] for items in first]
    assert len(clips[0]) == len(clips[1]) == 4 and not set(clips[0]) & set(clips[1])
    second = sum(list(ranks[0]), [])
    assert second != first[0]                        # every pass reshuffles
    resumed = PassBatches(10, 2, seed=5, world=World(0, 2))
    resumed.position = 3                             # one batch into the second pass
    assert sum(list(resumed), []) == second[2:]      # the same clips and the same crops


def test_pass_batches_go_on_past_the_items_another_layout_used():
    """Two processes drew one batch of 2 each, four items of the first pass: one process at
    batch 1, started at ``mark_after``, draws the six others of that pass, then the next."""
    from training.distributed import World
    from training.run import PassBatches

    used = [index for rank in (0, 1)
            for index, _ in next(iter(PassBatches(10, 2, seed=5, world=World(rank, 2))))]
    mark = PassBatches.mark_after([0, 0], 1, {"clips": 10, "batch_size": 2, "world_size": 2})
    resumed = PassBatches(10, 1, seed=5, world=World())
    resumed.seek(mark, 0)
    rest = [index for batch in resumed for index, _ in batch]
    assert mark == [0, 4] and len(rest) == 6 and sorted(used + rest) == list(range(10))
    second = PassBatches(10, 1, seed=5, world=World())
    second.position = 10
    assert list(resumed) == list(second)  # then the next pass, as a run at batch 1 draws it


def test_init_with_model_kwargs_fine_tunes_a_grown_model(trained: Path, dataset: Path,
                                                         tmp_path: Path):
    run = tmp_path / "grown"
    best = run_training(replace(TINY, epochs=1, init=str(trained / "best.pt"),
                                model_kwargs={"frame_gate": True}), run, data=dataset)
    model, info = load_checkpoint(best)
    assert info["model_kwargs"]["frame_gate"] is True and model.frame_gate is not None
    # the gate trained: its weights left their all-zero start
    assert model.frame_gate.weight.abs().sum().item() > 0


def test_frozen_member_stays_fixed_while_the_other_learns(trained: Path, dataset: Path,
                                                          tmp_path: Path):
    """An ensemble of the trained model and a fresh one; only the fresh member trains."""
    torch.manual_seed(1)
    old, _ = load_checkpoint(trained / "best.pt")
    bag = MaskEnsemble.of([old, build_model("bandmask-tiny")])
    start = save_checkpoint(tmp_path / "bag.pt", bag)
    best = run_training(replace(TINY, init=str(start), freeze=["members.0"]), tmp_path / "run",
                        data=dataset)
    model, info = load_checkpoint(best)
    assert info["training_config"]["freeze"] == ["members.0"]
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "`ensemble` of 2 bandmask members, combine `max`" in card
    for name, value in bag.state_dict().items():  # BatchNorm statistics included
        same = torch.equal(model.state_dict()[name], value)
        assert same == name.startswith("members.0."), name
    with pytest.raises(ParameterError, match="no module 'members.7'"):
        run_training(replace(TINY, init=str(start), freeze=["members.7"]), tmp_path / "r2",
                     data=dataset)
    with pytest.raises(ParameterError, match="nothing to train"):
        run_training(replace(TINY, init=str(start), freeze=["members"]), tmp_path / "r3",
                     data=dataset)


def test_a_resume_that_changes_the_freeze_is_refused_in_one_line(dataset: Path,
                                                                 tmp_path: Path):
    """The optimizer state holds the moments of the parameters the run trained, by position:
    a resume with another --freeze was a 40-line torch error (a group of another size) or,
    members of one shape swapped, one member's moments stepping the other without a word.
    Both are refused before the run folder changes; a state saved before the set was kept is
    judged by its configuration's --freeze; another spelling of the same set resumes."""
    torch.manual_seed(4)
    bag = MaskEnsemble.of([build_model("bandmask-tiny"), build_model("bandmask-tiny")], "learned")
    start = save_checkpoint(tmp_path / "bag.pt", bag)
    config = replace(TINY, init=str(start), freeze=["members.0"], epochs=1, steps_per_epoch=1,
                     valid_clips=1)
    run = tmp_path / "run"
    run_training(config, run, data=dataset)
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--epochs", "2",
                                      "--freeze", "members.1"])
    assert result.exit_code == 1 and result.output.splitlines() == [
        "Error: resume: the run was trained with --freeze members.0, not --freeze members.1, "
        "and its optimizer state fits only the parameters it trained; resume it with its own "
        f"--freeze (leave --freeze out), or start a new run with --init {run / 'best.pt'} and "
        "the new --freeze"], result.output
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    with pytest.raises(ParameterError, match="trained with --freeze members.0, not no --freeze"):
        run_training(replace(config, epochs=2, freeze=[]), run, data=dataset, resume=True)
    state = torch.load(run / "last.pt", weights_only=True)
    del state["frozen_parameters"]  # as saved before the set was kept
    torch.save(state, run / "last.pt")
    with pytest.raises(ParameterError, match="members.0, not --freeze members.1, and its"):
        run_training(replace(config, epochs=2, freeze=["members.1"]), run, data=dataset,
                     resume=True)
    run_training(replace(config, epochs=2), run, data=dataset, resume=True)
    both = replace(config, freeze=["members.1", "members.0"])
    run_training(both, tmp_path / "both", data=dataset)
    run_training(replace(both, epochs=2, freeze=["members"]), tmp_path / "both", data=dataset,
                 resume=True)
    assert len(json.loads((tmp_path / "both" / "history.json").read_text())) == 2


def test_learned_selector_trains_with_the_members_frozen(trained: Path, dataset: Path,
                                                         tmp_path: Path):
    torch.manual_seed(2)
    old, _ = load_checkpoint(trained / "best.pt")
    bag = MaskEnsemble.of([old, build_model("bandmask-tiny")], "learned")
    start = save_checkpoint(tmp_path / "bag.pt", bag)
    best = run_training(replace(TINY, init=str(start), freeze=["members"]), tmp_path / "run",
                        data=dataset)
    model, _ = load_checkpoint(best)
    for name, value in bag.state_dict().items():
        assert torch.equal(model.state_dict()[name], value) == name.startswith("members."), name


@pytest.mark.parametrize("combine, grow, new_weight, card_line", [
    ("max", "deep_filter", "filter.head.1.weight",
     "combine `max`, deep filter above 3000 Hz (3 taps)"),
    ("power", "group_weights", "group_logits",
     "combine `power`, groups [[0], [1]], smallest mask below 400 Hz, learned group weights per bin"),
])
def test_a_grown_part_trains_from_zero_with_the_members_frozen(
        trained: Path, dataset: Path, tmp_path: Path, combine: str, grow: str, new_weight: str,
        card_line: str):
    """``--init bag.pt --model-kwargs '{"<part>": true}' --freeze members`` (a deep filter, or
    a power ensemble's per-bin group weights): the members keep every weight, BatchNorm
    statistics included, and the new part leaves its all-zero start."""
    torch.manual_seed(3)
    old, _ = load_checkpoint(trained / "best.pt")
    bag = MaskEnsemble.of([old, build_model("bandmask-tiny")], combine,
                          min_below_hz=400.0 if combine == "power" else 0.0)
    start = save_checkpoint(tmp_path / "bag.pt", bag)
    config = replace(TINY, init=str(start), model_kwargs={grow: True}, freeze=["members"])
    model, info = load_checkpoint(run_training(config, tmp_path / "run", data=dataset))
    assert info["model_kwargs"][grow] is True
    for name, value in bag.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert model.state_dict()[new_weight].abs().max().item() > 1e-4  # it started at zero
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert card_line + "; member arguments" in card


def _copy_dataset(dataset: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the dataset and its first training clip's folder."""
    import shutil

    copy = shutil.copytree(dataset, tmp_path / "data")
    first = next(c for c in json.loads((copy / "manifest.json").read_text())["clips"]
                 if c["split"] == "train")
    return copy, copy / first["id"]


@pytest.mark.parametrize("damage, message", [
    ("short clean", "differ in length"), ("clean at 44.1 kHz", "44100 Hz in a 48000 Hz"),
    ("no clean", "unreadable clip")])
def test_a_broken_clip_stops_the_run_before_its_first_step(dataset: Path, tmp_path: Path,
                                                           damage: str, message: str):
    """Only noisy.wav used to be checked when the dataset opened: a clean.wav cut short was
    a traceback, epochs into the run, after best.pt and last.pt were written."""
    import soundfile as sf

    data, clip = _copy_dataset(dataset, tmp_path)
    clean, rate = sf.read(clip / "clean.wav", dtype="float32")
    if damage == "short clean":
        sf.write(clip / "clean.wav", clean[: len(clean) // 2], rate, subtype="FLOAT")
    elif damage == "clean at 44.1 kHz":
        sf.write(clip / "clean.wav", clean, 44100, subtype="FLOAT")
    else:
        (clip / "clean.wav").unlink()
    with pytest.raises(DatasetError, match=message):
        run_training(TINY, tmp_path / "run", data=data)
    assert not (tmp_path / "run").exists()


def test_training_on_the_public_test_kit_is_refused(synthetic_kit_dir: Path, tmp_path: Path):
    import shutil

    kit = shutil.copytree(synthetic_kit_dir, tmp_path / "The Black Pearl 1.0")
    with pytest.raises(DatasetError, match="public test kit"):
        run_training(TINY, tmp_path / "run", kits=[str(kit)])
    assert not (tmp_path / "run").exists()


def test_a_best_pt_without_last_pt_says_what_to_do(trained: Path, dataset: Path,
                                                   tmp_path: Path):
    """A run saves last.pt before best.pt, so a best.pt alone is no stopped run's (its
    last.pt deleted, a model copied in): neither a new run, which would replace it, nor
    --resume takes the folder, and the one line says why."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes((trained / "best.pt").read_bytes())
    for resume in (False, True):
        with pytest.raises(ParameterError, match="best.pt but no last.pt, which a run saves "
                                                 "first: nothing to resume; move best.pt away"):
            run_training(TINY, run, data=dataset, resume=resume)


@pytest.mark.parametrize("stopped", ["last.pt", "best.pt"])
def test_a_run_stopped_in_its_first_epochs_saves_goes_on(dataset: Path, tmp_path: Path,
                                                         monkeypatch, stopped: str):
    """A Ctrl-C or a full disk in either save of the first epoch. best.pt was saved before
    last.pt, and a stop between them left a folder that neither --resume ("nothing to
    resume") nor a new run ("holds best.pt but no last.pt") would take: the user had to
    move best.pt away. last.pt is saved first now: the folder holds no run, and a new one
    starts, or a state that --resume continues, writing the best.pt the stop cut short;
    either way to an unbroken run's checkpoints."""
    import denoiser.checkpoint as checkpoint

    config = replace(TINY, epochs=1, steps_per_epoch=1, valid_clips=1)
    straight, run = tmp_path / "straight", tmp_path / "run"
    run_training(config, straight, data=dataset)
    real = checkpoint.atomic_output

    def stopping(path: Path, *args: str):
        if Path(path).name == stopped:
            raise KeyboardInterrupt
        return real(path, *args)

    monkeypatch.setattr(checkpoint, "atomic_output", stopping)
    with pytest.raises(KeyboardInterrupt):
        run_training(config, run, data=dataset)
    monkeypatch.undo()
    run_training(config, run, data=dataset, resume=(run / "last.pt").exists())
    for name in ("best.pt", "last.pt"):
        a, b = (torch.load(folder / name, weights_only=True) for folder in (straight, run))
        a, b = (package.get("model", package) for package in (a, b))
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    infos = [load_checkpoint(folder / "best.pt")[1]["extra"] for folder in (straight, run)]
    assert [(i["epoch"], i["valid_loss"]) for i in infos] == [(1, infos[0]["valid_loss"])] * 2


def test_an_interrupted_state_save_leaves_no_temporary_file(dataset: Path, tmp_path: Path,
                                                            monkeypatch):
    """A Ctrl-C while last.pt is written used to leave last.tmp behind."""
    real_write = Path.write_bytes

    def interrupted(path: Path, data: bytes) -> int:
        if path.name.startswith(".last.pt."):  # last.pt's temporary file
            real_write(path, data[: len(data) // 2])
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(replace(TINY, epochs=1), tmp_path / "run", data=dataset)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json"]


def test_a_full_disk_while_the_state_is_saved_is_one_error_line(dataset: Path, tmp_path: Path):
    """The disk fills while last.pt is written: here a 64 KiB limit on a file's size, under
    which best.pt (38 KB) would fit and last.pt (120 KB) does not, so the kernel fails the write
    (EFBIG, as a full disk does with ENOSPC; Python ignores SIGXFSZ). torch's file writer
    reports that as a RuntimeError ("[enforce fail at inline_container.cc:672] . unexpected
    pos ..."), and ``debleed train`` ended in a 47-line traceback; it is the file system's
    error now, in one line naming last.pt, and no temporary file is left."""
    import errno
    import os
    import subprocess
    import sys

    resource = pytest.importorskip("resource")
    run = tmp_path / "run"
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", "from debleed.cli.main import cli; cli()",
         *tiny_cli_args(dataset, run)], capture_output=True, text=True, env=env, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2**16, 2**16)))
    errors = [line for line in done.stderr.splitlines() if not line.startswith("Training")]
    assert done.returncode == 1 and errors == [
        f"Error: {run / 'last.pt'}: {os.strerror(errno.EFBIG)}"], done.stderr
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]  # a new run may start


def test_the_model_card_names_the_epoch_best_pt_holds(dataset: Path, tmp_path: Path):
    """After a resume with another loss, best.pt is chosen afresh; the card used to take
    the history's lowest loss, an epoch scored under the old loss."""
    run = tmp_path / "run"
    run_training(replace(TINY, epochs=2), run, data=dataset)
    with pytest.warns(UserWarning, match="best.pt is chosen again"):
        run_training(replace(TINY, epochs=3, loss={"mrstft": 10.0}), run, data=dataset,
                     resume=True)
    _, info = load_checkpoint(run / "best.pt")
    card = (run / "MODEL_CARD.md").read_text()
    assert f"best epoch {info['extra']['epoch']}" in card
    assert f"| valid_loss | {info['extra']['valid_loss']:.4g} |" in card


def test_the_model_card_counts_the_steps_of_a_resume_with_another_epoch_length(
        dataset: Path, tmp_path: Path):
    """Two epochs of 5 steps, resumed for one of 1: the card said "3 x 1 steps"."""
    run = tmp_path / "run"
    config = replace(TINY, epochs=2, steps_per_epoch=5, batch_size=2, valid_clips=1)
    run_training(config, run, data=dataset)
    run_training(replace(config, epochs=3, steps_per_epoch=1), run, data=dataset, resume=True)
    assert torch.load(run / "last.pt", weights_only=True)["batches_done"] == 11
    card = (run / "MODEL_CARD.md").read_text()
    assert "- Epochs run: 3, 11 steps;" in card and ", batch 2 x 0.5 s," in card, card
    history = json.loads((run / "history.json").read_text())
    assert [(h["world_size"], h["global_batch"]) for h in history] == [(1, 2)] * 3


def tiny_trainer(run: Path, valid: list[ValidClip] | None = None,
                 config: TrainConfig = TINY) -> Trainer:
    """A trainer of a fresh tiny network, with no training data: for validation, the
    schedule, hit marks and loading a state alone. Its loss scores at the model's rate,
    as a run's does."""
    model = build_model(config.model)
    return Trainer(model, CombinedLoss(config.loss, sample_rate=model.sample_rate), config,
                   [], valid or [], run, torch.device("cpu"))


def test_validation_sisdr_leaves_clips_with_a_silent_target_out(dataset: Path, tmp_path: Path):
    """Against a silent target (a bleed-only clip) SI-SDR is -80 dB whatever the output: each
    such clip dragged the mean down, and its gain over the input (0) did too. They are left
    out and counted; the loss and SNR, which grade the bleed left there, keep them."""
    folder = ClipFolder(dataset, "valid")
    clip = folder.load(folder.clips[0])
    assert clip.clean.any()
    sounding = ValidClip(clip.noisy, clip.clean)
    silent = ValidClip(clip.noisy, np.zeros_like(clip.clean))
    trainer = tiny_trainer(tmp_path, [sounding])
    alone = trainer.validate()
    trainer.valid = [sounding, silent]
    both = trainer.validate()
    for key in ("valid_sisdr", "valid_delta_sisdr"):
        assert both[key] == pytest.approx(alone[key]), key
    assert (alone["valid_silent_clips"], both["valid_silent_clips"]) == (0, 1)
    assert both["valid_loss"] != alone["valid_loss"] and both["valid_snr"] != alone["valid_snr"]
    trainer.valid = [silent]
    only_silent = trainer.validate()  # no clip to average: NaN, not a crash or a warning
    assert math.isnan(only_silent["valid_sisdr"]) and math.isnan(only_silent["valid_delta_sisdr"])
    assert math.isfinite(only_silent["valid_loss"]) and only_silent["valid_silent_clips"] == 1


class LossSeen(Exception):
    """Stops ``run_training`` at the trainer, with the loss it was given."""


def test_the_training_loss_is_built_at_the_models_rate(dataset: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    """The trainer scores the loss at the model's rate; built without it, ``hfsegsnr`` kept
    48 kHz and put a 20 kHz model's "5 kHz" band near 2.1 kHz."""
    def trainer(model, loss, *_args, **_kwargs):
        raise LossSeen(loss)

    monkeypatch.setattr("training.run.Trainer", trainer)
    config = replace(TINY, model="thesis-tiny", loss={"mrstft": 1.0, "hfsegsnr": 0.5})
    with pytest.raises(LossSeen) as seen:
        run_training(config, tmp_path / "run", data=dataset)
    loss = seen.value.args[0]
    assert loss.sample_rate == 20000 and loss.parts["hfsegsnr"].sample_rate == 20000


def test_the_validation_loss_is_scored_at_the_models_rate(dataset: Path, tmp_path: Path):
    """As the training loss is: scored at the 48 kHz of the inference path's output, a 20 kHz
    model's validation loss sat ~13 % off its training loss for the same output, so the two
    curves of loss.png could not be compared. SNR and SI-SDR stay at 48 kHz."""
    folder = ClipFolder(dataset, "valid")
    clip = folder.load(folder.clips[0])
    config = replace(TINY, model="thesis-tiny")
    model = build_model(config.model)
    loss = CombinedLoss(config.loss, sample_rate=model.sample_rate)
    trainer = Trainer(model, loss, config, [], [ValidClip(clip.noisy, clip.clean)], tmp_path,
                      torch.device("cpu"))
    measured = trainer.validate()
    output = Denoiser(trainer.evaluated, "cpu", InferenceConfig(hiss_cut_hz=0.0)).denoise(
        clip.noisy[None], DATA_RATE)
    estimate, clean = torch.from_numpy(output), torch.from_numpy(clip.clean[None])
    at_model_rate = float(loss(trainer.to_model_rate(estimate), trainer.to_model_rate(clean)))
    assert measured["valid_loss"] == pytest.approx(at_model_rate, rel=1e-5)
    assert abs(measured["valid_loss"] - float(loss(estimate, clean))) > 0.01 * abs(at_model_rate)
    assert measured["valid_sisdr"] == pytest.approx(-float(SISDRLoss()(estimate, clean)), rel=1e-5)


def test_validation_reads_the_network_whole_even_on_a_hissy_clip(dataset: Path, tmp_path: Path):
    """Validation measures the network itself: the engine's floor test would read a clip with
    a white floor only below 22.05 kHz and hide how the network meets the floor."""
    folder = ClipFolder(dataset, "valid")
    clip = folder.load(folder.clips[0])
    rng = np.random.default_rng(0)
    hiss = 10 ** (-60 / 20) * rng.standard_normal(clip.noisy.shape)
    hissy = (clip.noisy + hiss).astype(np.float32)
    trainer = tiny_trainer(tmp_path, [ValidClip(hissy, clip.clean)])
    measured = trainer.validate()["valid_sisdr"]

    def sisdr_through(config: InferenceConfig) -> float:
        out = Denoiser(trainer.evaluated, "cpu", config).denoise(hissy[None], DATA_RATE)
        return -float(SISDRLoss()(torch.from_numpy(out), torch.from_numpy(clip.clean[None])))

    assert Denoiser(trainer.evaluated, "cpu").hears_floor(hissy[None], DATA_RATE)
    assert measured == pytest.approx(sisdr_through(InferenceConfig(hiss_cut_hz=0.0)))
    assert abs(measured - sisdr_through(InferenceConfig())) > 1e-3


def test_the_gain_jitter_scales_the_input_and_the_target_alike(tmp_path: Path):
    """``gain_jitter_db`` changes each training segment's level, the input's and the
    target's by the same gain: the target must stay the input's snare. A segment without
    bleed (input == target) reaches the network and the loss as one signal, at a level
    within 6 dB of its own."""
    seen: dict[str, torch.Tensor] = {}
    trainer = tiny_trainer(tmp_path, config=replace(TINY, gain_jitter_db=6.0))
    trainer.network.register_forward_pre_hook(
        lambda _module, args: seen.update(input=args[0].clone()))
    trainer.loss.register_forward_pre_hook(
        lambda _module, args: seen.update(target=args[1].clone()))
    torch.manual_seed(0)
    clean = 0.1 * torch.randn(TINY.batch_size, int(TINY.segment_seconds * DATA_RATE))
    trainer.common_step(clean.clone(), clean.clone(), train=True)
    assert torch.equal(seen["input"], seen["target"])
    gains_db = 20 * torch.log10(seen["input"][:, :1] / clean[:, :1]).squeeze(1)
    assert bool((gains_db.abs() <= 6.0 + 1e-4).all()) and bool((gains_db.abs() > 0.01).all())


def test_the_plateau_schedule_counts_as_best_pt_does(tmp_path: Path):
    """An epoch is bad unless its validation loss is strictly below the best, as for best.pt
    and early stopping. The default relative threshold took a slightly worse negative loss
    (SNR and SI-SDR losses) for a better one, and a resumed run keeps the rule."""
    trainer = tiny_trainer(tmp_path)
    trainer.scheduler.step(-10.0)
    trainer.scheduler.step(-9.9999)   # worse, by less than the relative threshold
    assert trainer.scheduler.num_bad_epochs == 1
    trainer.scheduler.step(-10.00001)  # better, by less than the default threshold
    assert trainer.scheduler.num_bad_epochs == 0
    trainer.save_state()
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state["scheduler"].update(threshold_mode="rel", threshold=1e-4)  # saved before the fix
    torch.save(state, tmp_path / "last.pt")
    resumed = tiny_trainer(tmp_path)
    resumed.load_state(tmp_path / "last.pt")
    resumed.scheduler.step(-10.0)
    assert resumed.scheduler.num_bad_epochs == 1


# Every epoch validates worse than the first, for ten epochs: the rate is lowered at the
# second and fourth bad epochs, and the run stops at the fourth.
PLATEAU = replace(TINY, epochs=10, steps_per_epoch=1, valid_clips=1, plateau_patience=2,
                  early_stop_patience=4)


def rising_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every epoch validate worse than the one before."""
    validate = Trainer.validate
    monkeypatch.setattr(Trainer, "validate",
                        lambda self: {**validate(self), "valid_loss": float(self.epoch + 1)})


def flat_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every epoch validate exactly as well as the one before."""
    validate = Trainer.validate
    monkeypatch.setattr(Trainer, "validate", lambda self: {**validate(self), "valid_loss": 1.0})


def test_a_tied_validation_loss_is_not_better(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An epoch is better only when its validation loss is strictly below the best (as the
    plateau schedule counts it): a run whose validation loss stays flat stops at its third
    tied epoch with ``--early-stop-patience 3``, and best.pt holds the first epoch."""
    flat_validation(monkeypatch)
    config = replace(TINY, epochs=8, steps_per_epoch=1, batch_size=2, early_stop_patience=3)
    torch.manual_seed(0)
    noisy, clean = (0.1 * torch.randn(2, int(TINY.segment_seconds * DATA_RATE)) for _ in range(2))
    trainer = Trainer(build_model(config.model), CombinedLoss(config.loss), config,
                      [(noisy, clean)], [ValidClip(noisy[0].numpy(), clean[0].numpy())],
                      tmp_path, torch.device("cpu"))
    history = trainer.fit()
    assert (len(history), trainer.best_epoch, trainer.bad_epochs) == (4, 1, 3)
    assert load_checkpoint(tmp_path / "best.pt")[1]["extra"]["epoch"] == 1


def test_the_plateau_schedule_counts_bad_epochs_as_early_stopping_does(
        dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``--plateau-patience 2`` lowers the rate at the second bad epoch in a row, as
    ``--early-stop-patience 4`` stops at the fourth. Given the option as its ``patience``,
    torch waited for a third (more than ``patience``), and with the defaults (3 and 8) the
    second halving fell on the epoch that ended the run."""
    rising_validation(monkeypatch)
    run = tmp_path / "run"
    run_training(PLATEAU, run, data=dataset)
    history = json.loads((run / "history.json").read_text())
    assert [h["lr"] for h in history] == pytest.approx([3e-3, 3e-3, 3e-3, 1.5e-3, 1.5e-3])
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(7.5e-4)


@pytest.mark.parametrize("epochs, message, more", [
    (10, "the run stopped early at epoch 5 (4 epochs without a better validation loss, "
         "--early-stop-patience 4); nothing to resume: give a larger --early-stop-patience to "
         "train on", ["--early-stop-patience", "5"]),
    (3, "the run has trained 3 epochs (--epochs 3); nothing to resume: give a larger --epochs "
        "to train on", ["--epochs", "4"]),
])
def test_a_resume_of_a_finished_run_changes_nothing(dataset: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, epochs: int,
                                                    message: str, more: list[str]):
    """A run that stopped early, resumed as it is twice (a wrapper re-issuing --resume after
    preemptions): one line says so, it exits 0, and the run folder stays byte for byte. Each
    such resume trained one more epoch, lowered the rate again and rewrote last.pt and
    history.json. A run that trained its --epochs says so alike; a larger
    --early-stop-patience, or --epochs, trains on."""
    rising_validation(monkeypatch)
    run = tmp_path / "run"
    run_training(replace(PLATEAU, epochs=epochs), run, data=dataset)
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    for _ in range(2):
        result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume"])
        assert result.exit_code == 0, result.output
        assert {path.name: path.read_bytes() for path in run.iterdir()} == before
        assert [line for line in result.output.splitlines() if line.startswith("Warning:")] == [
            f"Warning: resume: {message}"]
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", *more])
    assert result.exit_code == 0 and "Warning:" not in result.output, result.output
    assert len(read_history(run)) == len(json.loads(before["history.json"])) + 1


def test_a_run_saved_before_the_plateau_fix_resumes_on_the_corrected_schedule(
        dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A state saved before the fix holds torch's ``patience`` equal to the option: the
    resume lays the corrected one over it and keeps the count of bad epochs, so it lowers
    the rate where an uninterrupted run does."""
    rising_validation(monkeypatch)
    run = tmp_path / "run"
    run_training(replace(PLATEAU, epochs=2), run, data=dataset)   # one bad epoch so far
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["scheduler"]["num_bad_epochs"] == 1
    state["scheduler"]["patience"] = PLATEAU.plateau_patience     # as saved before the fix
    torch.save(state, run / "last.pt")
    run_training(PLATEAU, run, data=dataset, resume=True)
    history = json.loads((run / "history.json").read_text())
    assert [h["lr"] for h in history] == pytest.approx([3e-3, 3e-3, 3e-3, 1.5e-3, 1.5e-3])
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["scheduler"]["patience"] == PLATEAU.plateau_patience - 1


def test_resume_with_a_new_lr_trains_with_it(dataset: Path, tmp_path: Path):
    """``--resume --lr`` used to be ignored: the saved optimizer's lr won while config.json
    and the model card claimed the new one. A resume that leaves the lr as it was keeps the
    saved optimizer's, which the plateau schedule may have lowered."""
    run = tmp_path / "run"
    config = replace(TINY, epochs=1, steps_per_epoch=1, valid_clips=1)
    run_training(config, run, data=dataset)
    state = torch.load(run / "last.pt", weights_only=True)
    for group in state["optimizer"]["param_groups"]:
        group["lr"] = 1e-4  # as the plateau schedule lowers it
    torch.save(state, run / "last.pt")
    run_training(replace(config, epochs=2), run, data=dataset, resume=True)
    run_training(replace(config, epochs=3, lr=1e-5, weight_decay=0.0), run, data=dataset,
                 resume=True)
    history = json.loads((run / "history.json").read_text())
    assert [h["lr"] for h in history] == [TINY.lr, 1e-4, 1e-5]
    groups = torch.load(run / "last.pt", weights_only=True)["optimizer"]["param_groups"]
    assert all(g["lr"] == 1e-5 and g["weight_decay"] == 0.0 for g in groups)
    assert json.loads((run / "config.json").read_text())["lr"] == 1e-5
    resumed = tiny_trainer(run, config=replace(config, lr=1e-6))
    resumed.load_state(run / "last.pt")
    assert resumed.scheduler.get_last_lr() == [1e-6]  # what it reports before its next step


def test_cli_resume_of_a_newer_format_is_one_error_line(dataset: Path, tmp_path: Path):
    """A state written by a newer debleed is refused as ``--init`` refuses its checkpoints,
    before anything in the run folder is touched; it used to resume without a word."""
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, tiny_cli_args(dataset, run)).exit_code == 0
    state = torch.load(run / "last.pt", weights_only=True)
    state["model"]["format_version"] = 99
    torch.save(state, run / "last.pt")
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Error: {run / 'last.pt'}: checkpoint format 99 is newer than this debleed"), lines
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_the_throughput_counts_every_ranks_audio():
    """Under torchrun the bar is rank 0's, and it showed one rank's share of the audio."""
    from training.distributed import World
    from training.trainer import audio_rate

    config = replace(TINY, batch_size=3, segment_seconds=0.5)
    assert audio_rate(4, config, World(), 2.0) == pytest.approx(3.0)
    assert audio_rate(4, config, World(rank=0, size=2), 2.0) == pytest.approx(6.0)


@pytest.mark.parametrize("seconds", [0.1, 1e9])
def test_synth_clip_seconds_out_of_range_is_refused(seconds: float):
    """``dataset synth`` refused these; ``train --synth`` rendered them."""
    with pytest.raises(ParameterError, match="clip_seconds"):
        TrainConfig(synth={"clip_seconds": seconds}).validate()


@pytest.mark.parametrize("kwargs", [{"dilations": [0]}, {"dropout": math.nan}])
def test_model_kwargs_that_build_but_cannot_run_are_refused(kwargs: dict):
    from training.run import initial_model

    with pytest.raises(ParameterError, match="cannot run"):
        initial_model(TrainConfig(model="bandmask-tiny", model_kwargs=kwargs))


def test_an_infinite_model_sample_rate_is_a_model_error():
    from denoiser.errors import ModelError

    with pytest.raises(ModelError, match="infinity"):
        build_model("bandmask-tiny", sample_rate=math.inf)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_options_refuse_nan_and_infinity(constant: str):
    from debleed.cli.common import json_object

    with pytest.raises(ParameterError, match=constant):
        json_object("--synth", f'{{"gain_jitter_db": {constant}}}')


def test_a_dataset_not_at_48_khz_is_refused(dataset: Path, tmp_path: Path):
    """Its clips were read as 48 kHz audio without a word."""
    import soundfile as sf

    data, _ = _copy_dataset(dataset, tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["sample_rate"] = 44100
    (data / "manifest.json").write_text(json.dumps(manifest))
    for wav in data.rglob("*.wav"):
        audio, _ = sf.read(wav)
        sf.write(wav, audio, 44100)
    config = TrainConfig(model="bandmask-tiny", batch_size=2, segment_seconds=0.5,
                         steps_per_epoch=1, epochs=1, valid_clips=1)
    with pytest.raises(ParameterError, match="44100 Hz.*48000 Hz"):
        run_training(config, tmp_path / "run", data=data)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["folder", "junk", "future"])
def test_init_errors_name_the_file(tmp_path: Path, kind: str):
    """Once: ``load_checkpoint`` names the file itself now."""
    from denoiser.checkpoint import serialize
    from denoiser.errors import ModelError
    from training.run import initial_model

    path = tmp_path / "init.pt"
    if kind == "folder":
        path.mkdir()
    elif kind == "junk":
        torch.save({"x": 1}, path)
    else:
        torch.save({**serialize(build_model("bandmask-tiny")), "format_version": 99}, path)
    with pytest.raises(ModelError, match=f"{path}.*{'is a folder' if kind == 'folder' else ''}"
                       ) as caught:
        initial_model(TrainConfig(init=str(path)))
    assert str(caught.value).count(str(path)) == 1


def session_dataset(root: Path, takes: int, seconds: float) -> Path:
    """A session dataset of 1 s clips from ``takes`` clean takes of ``seconds`` (a snare
    hit every half second) and one bleed take."""
    clean, bleed = root / "clean", root / "bleed"
    clean.mkdir(parents=True)
    bleed.mkdir()
    shot = one_shot("snare", 190, 0.1, 0.2, 1.0, 48000)
    for k in range(takes):
        take = np.zeros(int(seconds * 48000), np.float32)
        for start in range(0, take.size, 24000):
            take[start:start + shot.size] += shot[: take.size - start]
        sf.write(clean / f"take{k}.wav", take, 48000)
    sf.write(bleed / "kit.wav", 0.05 * np.random.default_rng(0).standard_normal(48000), 48000)
    config = SessionConfig(clip_seconds=1.0)
    return build_session_dataset(plan_session(clean, bleed, config), root / "data", seed=0,
                                 config=config)


def test_the_model_card_of_a_session_run_names_its_takes(tmp_path: Path):
    """Session clips have no kit: the card said "from kits ?". Three 2 s takes, one held
    out for validation: four training clips from two clean takes and the bleed take."""
    data = session_dataset(tmp_path, takes=3, seconds=2.0)
    run = tmp_path / "run"
    run_training(replace(TINY, epochs=1, steps_per_epoch=1, batch_size=2, valid_clips=1), run,
                 data=data)
    card = (run / "MODEL_CARD.md").read_text()
    assert f"- Training data: session takes from {data}: 2 clean takes, 1 bleed take; 4 clips\n" \
        in card
    assert "## Validation (clips of held-out session takes, through the inference path)" in card


def test_a_dataset_without_valid_clips_trains_with_a_warning(tmp_path: Path):
    """A one-clip session has no valid clip: the run used to validate on its training clip
    without a word (and asked for a smaller batch without naming --batch-size)."""
    data = session_dataset(tmp_path, takes=1, seconds=1.0)
    run = tmp_path / "run"
    arguments = tiny_cli_args(data, run)  # --batch-size 2
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {data}: 1 training clips, fewer than one batch of 2 per process; "
        "give --batch-size 1 or less\n")
    arguments[arguments.index("--batch-size") + 1] = "1"
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warning == [f"Warning: {data}: no 'valid' clips, so validation and the choice of "
                       "best.pt use 1 of the training clips, which says nothing about unheard "
                       "audio; build the dataset from two or more clips (two or more takes "
                       "for a session) with a --valid-fraction above 0"]
    card = (run / "MODEL_CARD.md").read_text()
    assert "## Validation (training clips: the dataset has no valid clips," in card


@pytest.mark.parametrize("clips, processes, advice", [
    (10, 1, "give --batch-size 10 or less"),
    (10, 4, "give --batch-size 2 or less"),
    (3, 4, "run at most 3 processes"),
    (0, 1, "the dataset has no 'train' clips"),
])
def test_too_few_clips_for_a_batch_say_what_to_change(clips: int, processes: int, advice: str):
    assert batch_advice(clips, World(size=processes)) == advice


def test_a_resumed_on_the_fly_run_with_dropout_is_the_uninterrupted_run(synthetic_kit_dir: Path,
                                                                         tmp_path: Path):
    """The on-the-fly loader drew its worker seed from torch's global RNG when its first
    batch was taken: after a resume, at another point of that stream, so the thesis
    model's dropout masks, and its weights, came out otherwise."""
    config = replace(TINY, model="thesis-tiny", epochs=2, steps_per_epoch=2, batch_size=2)
    straight, halves, kits = tmp_path / "straight", tmp_path / "halves", [str(synthetic_kit_dir)]
    run_training(config, straight, kits=kits)
    run_training(replace(config, epochs=1), halves, kits=kits)
    run_training(config, halves, kits=kits, resume=True)
    a, b = weights(straight / "last.pt"), weights(halves / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_validation_clips_are_spread_through_the_split():
    """A session manifest lists its clips take by take: the first 24 were one song's."""
    clips = [f"take{t}-clip{c}" for t in range(3) for c in range(4)]
    assert spread(clips, 3) == ["take0-clip0", "take1-clip2", "take2-clip3"]
    assert spread(clips, 12) == clips and spread(clips, 40) == clips
    assert len(set(spread(clips, 11))) == 11


@pytest.mark.parametrize("message", ["/a/b.wav: two lines\nsecond: part", ""])
def test_a_worker_error_comes_back_whole(message: str):
    """Only the last line of torch's text was kept, cut at its first ": ": a message of two
    lines came back as its last word, an empty one as the class name."""
    from torch.utils.data import DataLoader, Dataset

    from training.run import Flatten

    class Broken(Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: int):
            raise DatasetError(message)

    with pytest.raises(DatasetError) as caught:
        list(Flatten(DataLoader(Broken(), batch_size=2, num_workers=1)))
    assert str(caught.value) == message.strip()


def test_a_run_with_the_hit_level_loss_scores_the_hits_its_clips_name(
        dataset: Path, synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``--loss`` with ``hitlevel`` on a dataset folder and on the fly: every training batch
    and every validation clip hands the part the marks of the hits its clips' meta names,
    and the run trains on a finite loss."""
    from training.losses import HitLevelLoss

    seen: list[tuple[int, int]] = []
    forward = HitLevelLoss.forward

    def record(self, estimate, target, hits):
        seen.append((hits.shape[0], int(hits.sum())))
        return forward(self, estimate, target, hits)

    monkeypatch.setattr(HitLevelLoss, "forward", record)
    config = replace(TINY, epochs=1, loss={"mrstft": 1.0, "hitlevel": 0.1})
    valid = ClipFolder(dataset, "valid")
    valid_hits = [sum(o["target"] for o in valid.load(entry).meta["onsets"])
                  for entry in valid.clips]
    run_training(config, tmp_path / "folder", data=dataset)
    history = read_history(tmp_path / "folder")
    run_calls = seen[-(config.steps_per_epoch + len(valid_hits)):]  # after the options' checks
    training, validation = run_calls[:config.steps_per_epoch], run_calls[config.steps_per_epoch:]
    assert all(items == config.batch_size for items, _ in training)
    assert sum(marks for _, marks in training) > 0
    assert validation == [(1, count) for count in valid_hits]
    assert math.isfinite(history[-1]["train_loss"]) and math.isfinite(history[-1]["valid_loss"])
    seen.clear()
    run_training(config, tmp_path / "synth", kits=[str(synthetic_kit_dir)])
    assert [items for items, _ in seen[-(config.steps_per_epoch + config.valid_clips):]] == (
        [config.batch_size] * config.steps_per_epoch + [1] * config.valid_clips)
    assert all(marks > 0 for _, marks in seen[-config.valid_clips:])


# the 20-kHz thesis model with a loss that scores hits: what ``hits_at_model_rate`` needs
THESIS_HIT_LEVEL = replace(TINY, model="thesis-tiny", loss={"hitlevel": 1.0})


def test_hit_marks_move_to_a_20_khz_models_nearest_samples(tmp_path: Path):
    """The thesis model is scored at 20 kHz: a hit at 48 kHz sample s is marked at
    round(s * 20000 / 48000) there, one mark for one hit."""
    trainer = tiny_trainer(tmp_path, config=THESIS_HIT_LEVEL)
    marks = torch.zeros(2, 48000)
    marks[0, [0, 1201, 1202, 47999]] = 1.0  # 500.4 and 500.8 at 20 kHz
    marks[1, 24000] = 1.0
    moved = trainer.hits_at_model_rate(marks, 20000)
    assert moved.shape == (2, 20000)
    assert moved[0].nonzero()[:, 0].tolist() == [0, 500, 501, 19999]
    assert moved[1].nonzero()[:, 0].tolist() == [10000]


def test_hits_on_one_20_khz_sample_keep_their_count(tmp_path: Path):
    """Two hits one 48-kHz sample apart land on one 20-kHz sample: the mark there counts
    both, as the metric scores both; a mark already counting two hits keeps its two."""
    trainer = tiny_trainer(tmp_path, config=THESIS_HIT_LEVEL)
    marks = torch.zeros(1, 48000)
    marks[0, [1200, 1201]] = 1.0  # both 500 at 20 kHz
    marks[0, 24000] = 2.0
    moved = trainer.hits_at_model_rate(marks, 20000)
    assert moved[0].nonzero()[:, 0].tolist() == [500, 10000]
    assert moved[0, 500].item() == 2.0 and moved[0, 10000].item() == 2.0


def test_a_hit_level_loss_without_hits_in_the_batches_is_refused(tmp_path: Path):
    """A trainer whose loss scores hits, fed batches that name none, stops with a clear
    error: the part would count nothing and the run would train without it."""
    trainer = tiny_trainer(tmp_path, config=replace(TINY, loss={"mrstft": 1.0, "hitlevel": 0.1}))
    wave = torch.zeros(2, 24000)
    with pytest.raises(TrainingError, match=r"scores snare hits \(hitlevel\), but the batches "
                                            r"name none"):
        trainer.common_step(wave, wave, train=True)


@pytest.mark.parametrize("meta, why", [
    ({}, "no list of snare onsets"),
    ({"onsets": ["x"]}, "no list of snare onsets"),
    ({"onsets": [{"target": True}]}, r"unreadable snare onsets, which the hitlevel loss "
                                     r"scores \(every onset needs a 'sample' or a 'time'\)"),
])
@pytest.mark.parametrize("split", ["train", "valid"])
def test_a_clip_whose_meta_names_no_readable_onsets_stops_a_hit_level_run(
        dataset: Path, tmp_path: Path, meta: dict, why: str, split: str):
    """A training or a validation clip whose ``meta.json`` holds no readable onsets stops a
    run whose loss scores hits before it starts, in one line naming the file; a run whose
    loss does not score hits trains on the same folder."""
    copy = tmp_path / "set"
    shutil.copytree(dataset, copy)
    entry = ClipFolder(copy, split).clips[0]
    (copy / entry["id"] / "meta.json").write_text(json.dumps(meta))
    config = replace(TINY, epochs=1, steps_per_epoch=1)
    with pytest.raises(DatasetError, match=re.escape(str(copy / entry["id"] / "meta.json"))
                       + ": " + why):
        run_training(replace(config, loss={"mrstft": 1.0, "hitlevel": 0.1}), tmp_path / "a",
                     data=copy)
    assert not (tmp_path / "a" / "last.pt").exists()
    run_training(config, tmp_path / "b", data=copy)
    assert (tmp_path / "b" / "last.pt").exists()


def test_a_guard_with_a_loss_of_hit_level_alone_is_refused():
    """The guard scores the loss against its teacher's output, which names no hits: with
    ``hitlevel`` alone its term was 0 and the run unguarded without a word."""
    guarded = replace(TINY, init="default", guard_weight=0.5)
    with pytest.raises(ParameterError, match="a --loss of hitlevel alone leaves it nothing"):
        replace(guarded, loss={"hitlevel": 1.0}).validate()
    replace(guarded, loss={"mrstft": 1.0, "hitlevel": 0.1}).validate()
    replace(TINY, loss={"hitlevel": 1.0}).validate()


def test_a_cut_step_trains_the_weights_as_the_cut_model_would(tmp_path: Path):
    """With ``cut_input_share`` 1 every training step reads through the hiss cut: one step
    moves the weights and their average exactly as the same step on ``limit_input``'s copy
    does, not as the whole band's; the network reads every bin again after it (validation,
    saving), and BatchNorm's running statistics stay as they were, the whole band's."""
    torch.manual_seed(0)
    noisy, clean = (0.1 * torch.randn(TINY.batch_size, int(TINY.segment_seconds * DATA_RATE))
                    for _ in range(2))
    torch.manual_seed(1)
    start = build_model(TINY.model)

    def stepped(share: float, copy_cut: bool) -> Trainer:
        model = limit_input(start, 22050.0) if copy_cut else copy.deepcopy(start)
        config = replace(TINY, cut_input_share=share, ema_decay=0.9)
        trainer = Trainer(model, CombinedLoss(config.loss, sample_rate=model.sample_rate),
                          config, [], [], tmp_path, torch.device("cpu"))
        torch.manual_seed(2)  # the same dropout
        trainer.common_step(noisy.clone(), clean.clone(), train=True)
        return trainer

    cut, copied, whole = stepped(1.0, False), stepped(0.0, True), stepped(0.0, False)
    assert cut.model.input_bins == whole.model.input_bins == 129 and copied.model.input_bins == 118
    for trained in (lambda t: t.model, lambda t: t.ema.module):
        a, b, c = (dict(trained(t).named_parameters()) for t in (cut, copied, whole))
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert not all(torch.equal(a[k], c[k]) for k in a)
    before = dict(start.named_buffers())
    assert all(torch.equal(value, before[name]) for name, value in cut.model.named_buffers())
    assert not all(torch.equal(value, before[name])
                   for name, value in whole.model.named_buffers())


def test_a_cut_step_holds_the_network_to_a_teacher_reading_every_bin(tmp_path: Path):
    """The guard's teacher reads every bin in a cut step, and validation reads every bin
    whatever the share: what the cut path should give on a floorless clip is the whole
    band's output, and best.pt is chosen on the path most tracks take."""
    torch.manual_seed(0)
    noisy, clean = (0.1 * torch.randn(2, int(TINY.segment_seconds * DATA_RATE))
                    for _ in range(2))
    torch.manual_seed(1)
    model = build_model(TINY.model)
    read: list[int] = []
    guard = TeacherGuard(model, [(noisy, clean)], weight=1.0)
    guard.teacher.register_forward_pre_hook(lambda teacher, _args: read.append(teacher.input_bins))
    seen: list[int] = []
    model.register_forward_pre_hook(lambda network, _args: seen.append(network.input_bins))
    valid = [ValidClip(noisy[0].numpy(), clean[0].numpy())]
    config = replace(TINY, cut_input_share=1.0, init="start.pt", guard_weight=1.0)
    trainer = Trainer(model, CombinedLoss(config.loss, sample_rate=model.sample_rate), config,
                      [], valid, tmp_path, torch.device("cpu"), guard=guard)
    trainer.common_step(noisy, clean, train=True)
    assert (read, seen) == ([129], [118])
    seen.clear()
    trainer.validate()
    assert seen and set(seen) == {129}


def test_a_run_saved_before_the_cut_was_kept_resumes(dataset: Path, tmp_path: Path):
    """A last.pt without the cut draws' state (saved before it was kept) resumes, drawing
    the cut afresh."""
    config = replace(TINY, epochs=1, steps_per_epoch=2, valid_clips=1, cut_input_share=0.5)
    run = tmp_path / "run"
    run_training(config, run, data=dataset)
    state = torch.load(run / "last.pt", weights_only=False)
    del state["cut_rng"]
    torch.save(state, run / "last.pt")
    run_training(replace(config, epochs=2), run, data=dataset, resume=True)
    assert [h["epoch"] for h in read_history(run)] == [1, 2]


def test_a_resumed_run_with_cut_steps_gives_the_same_weights(dataset: Path, tmp_path: Path):
    """Which steps read through the cut is drawn from a generator of its own, kept in
    last.pt: drawn afresh, a resume would cut other steps than the uninterrupted run. The
    share changes the weights, and the model card names it."""
    config = replace(TINY, epochs=4, steps_per_epoch=3, valid_clips=1, cut_input_share=0.5)
    straight, halves, uncut = tmp_path / "straight", tmp_path / "halves", tmp_path / "uncut"
    run_training(config, straight, data=dataset)
    run_training(replace(config, epochs=2), halves, data=dataset)
    run_training(config, halves, data=dataset, resume=True)
    run_training(replace(config, cut_input_share=0.0), uncut, data=dataset)
    a, b, c = (weights(run / "last.pt") for run in (straight, halves, uncut))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert ("- Cut path: 0.5 of the training steps read only the bins up to 22050 Hz, as the "
            "hiss cut reads a track\n") in (straight / "MODEL_CARD.md").read_text()
    assert "Cut path" not in (uncut / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--model", "thesis-tiny", "--cut-input-share", "0.5"],
     "--cut-input-share 0.5: only bandmask models and their ensembles read a spectrum's "
     "bins; thesis cannot be cut at 22050 Hz"),
    (["--cut-input-share", "0.5", "--cut-input-hz", "24000"],
     "--cut-input-hz 24000.0: must be below the model's Nyquist (24000 Hz: it runs at "
     "48000 Hz)"),
    (["--cut-input-share", "1.5"], "--cut-input-share 1.5: must be"),
    (["--cut-input-hz", "20000"], "--cut-input-hz 20000.0: is where --cut-input-share's steps "
                                  "cut: it needs --cut-input-share > 0"),
])
def test_cli_refuses_a_cut_no_step_could_read_in_one_line(dataset: Path, tmp_path: Path,
                                                          extra: list[str], message: str):
    """A cut share for a model no cut can read, or a cut at its Nyquist, would fail at the
    first cut step, hours in: refused before any data is read, the run folder not made."""
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, [*tiny_cli_args(dataset, run), *extra])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(result.output.splitlines()) == 1 and \
        result.output.startswith(f"Error: train: {message}"), result.output
    assert not run.exists()


def test_a_deep_filter_ensemble_refuses_the_cut(trained: Path, dataset: Path, tmp_path: Path):
    """A deep filter reads every bin's phase, so no step of it can read through the cut."""
    old, _ = load_checkpoint(trained / "best.pt")
    start = save_checkpoint(tmp_path / "bag.pt", MaskEnsemble.of([old, old]))
    with pytest.raises(ParameterError, match=r"^train: --cut-input-share 0\.5: this ensemble's "
                                             "deep filter reads the whole band"):
        run_training(replace(TINY, init=str(start), model_kwargs={"deep_filter": True},
                             cut_input_share=0.5), tmp_path / "run", data=dataset)

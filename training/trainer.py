"""The training loop, apart from the model (asteroid's ``System``): it receives model,
loss, optimizer, data and config; one ``common_step`` serves training and validation's
loss; it keeps the thesis's callbacks (best checkpoint, ReduceLROnPlateau, early
stopping) and adds resume, seeded determinism, gradient clipping, DDP and an optional
exponential moving average of the weights (Demucs's solver keeps one).

Validation runs the real inference path (``Denoiser.denoise``: levelling, resampling,
chunked ``apply_model``), so the numbers in ``history.json`` are what users will get.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from denoiser.checkpoint import load_package, save_atomic, save_checkpoint, serialize
from denoiser.engine import Denoiser, InferenceConfig, mixed_precision, resample
from denoiser.errors import NonFiniteOutputError, ParameterError
from denoiser.models import DenoiserModel
from denoiser.models.ensemble import input_cut

from .config import DATA_RATE, TrainConfig
from .dataset import endless, hit_marks
from .distributed import (World, average, broadcast, broadcast_flag, broadcast_module,
                          gather)
from .errors import TrainingError
from .guard import TeacherGuard
from .losses import SISDRLoss, SNRLoss, needs_hits
from .metrics import nanmean
from .model_card import plural
from .report import write_json

StepReport = Callable[[float, str], None]  # (fraction of this run done, note)
OPTIMIZER_CLASSES: dict[str, type[torch.optim.Adam]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}  # config.OPTIMIZERS
# The parameter-group key that tells AdamW's decay from Adam's (torch keeps both in one
# class): a state saved by one and loaded into the other keeps the saved one's.
DECOUPLED = "decoupled_weight_decay"
MAX_NONFINITE_IN_A_ROW = 20  # skipped steps before a run counts as diverged
# The cut draws' seed word beside the run's seed: no rank's (those seed ``Trainer.rng``).
CUT_STREAM = 2**32 - 1


@dataclass
class ValidClip:
    noisy: np.ndarray   # (T,) at DATA_RATE
    clean: np.ndarray
    onsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # hit starts


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def frozen_modules(model: nn.Module, names: Sequence[str]) -> list[nn.Module]:
    """Stop the gradients of the named submodules (e.g. ``members.0`` of an ensemble).

    Why: training one ensemble member against the fixed output of the others teaches it
    to cover what they miss instead of repeating what they already do. A model with nothing
    to train even before (``identity``) is refused for that cause, not blamed on --freeze."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ParameterError(f"train: model {model.name!r} has no trainable parameters")
    modules = dict(model.named_modules())
    unknown = [name for name in names if name not in modules or not name]
    if unknown:
        raise ParameterError(f"train: no module {', '.join(map(repr, unknown))} to freeze")
    frozen = [modules[name] for name in names]
    for module in frozen:
        module.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise ParameterError("train: --freeze leaves nothing to train")
    return frozen


def frozen_parameters(model: nn.Module, names: Sequence[str]) -> list[str]:
    """The parameters inside the submodules ``names`` (``--freeze``), by name, sorted: those
    the optimizer leaves out. Why by parameter: its state lists the trained ones by position
    alone, so it belongs to that set, however the names spell it (``members`` or
    ``members.0`` and ``members.1`` of a two-member bag are one set)."""
    modules = dict(model.named_modules())
    return sorted({f"{name}.{parameter}" for name in names if name in modules
                   for parameter, _ in modules[name].named_parameters()})


def freeze_option(names: Sequence[str]) -> str:
    """``names`` as the --freeze options that give them, for messages."""
    return " ".join(f"--freeze {name}" for name in names) if names else "no --freeze"


class Trainer:
    def __init__(self, model: DenoiserModel, loss: nn.Module, config: TrainConfig,
                 batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 valid: Sequence[ValidClip], run_dir: Path, device: torch.device,
                 world: World = World(), report: StepReport | None = None,
                 guard: TeacherGuard | None = None):
        self.model = model.to(device)
        self.loss = loss.to(device)
        self.loss_needs_hits = needs_hits(loss)
        self.config = config
        self.batches = batches
        self.valid = list(valid)
        self.run_dir = Path(run_dir)
        self.device = device
        self.world = world
        self.report = report
        self.guard = None if guard is None else guard.to(device)
        if self.guard is not None:  # DDP gives the network rank 0's weights, not it
            broadcast_module(self.guard.teacher, world)
        # Before DDP: it records at construction which parameters will receive gradients.
        self.frozen = frozen_modules(self.model, config.freeze)
        self.frozen_parameters = frozen_parameters(self.model, config.freeze)
        self.network: nn.Module = self.model
        if world.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.network = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = build_optimizer(
            [p for p in self.model.parameters() if p.requires_grad], config)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, **plateau_options(config))
        # BatchNorm statistics are averaged with the weights (use_buffers): an average of
        # weights run with one snapshot's statistics is not a model that was ever trained.
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                                  use_buffers=True) if config.ema_decay else None)
        self.history: list[dict[str, float]] = []
        self.best = math.inf
        self.best_epoch: int | None = None  # the epoch best.pt holds, once one was the best
        self.bad_epochs = 0
        self.nonfinite_in_a_row = 0
        self.epoch = 0
        self.batches_done = 0  # what a resume seeks past, whatever --steps-per-epoch becomes
        # where each loader's data stands, for a resume at another batch size (run.data_position)
        self.data_positions: dict[str, dict[str, Any]] = {}
        self.rng = np.random.default_rng([config.seed, world.rank])
        # Which steps read through the cut (``cut_input_share``): drawn alike on every rank,
        # so that DDP's ranks run the same forward pass; kept in the state for an exact resume.
        self.cut_rng = np.random.default_rng([config.seed, CUT_STREAM])

    @property
    def evaluated(self) -> DenoiserModel:
        """The weights that are validated and saved as ``best.pt``: the moving average when
        there is one. Why: at a high learning rate the live weights of successive epochs
        can differ by many dB on unseen snares; their average is steadier."""
        return self.model if self.ema is None else self.ema.module

    # -- one step ----------------------------------------------------------------------
    def to_model_rate(self, wave: torch.Tensor) -> torch.Tensor:
        rate = self.model.sample_rate
        if rate == DATA_RATE:
            return wave
        return torch.from_numpy(resample(wave.numpy(), DATA_RATE, rate))

    def hits_at_model_rate(self, hits: torch.Tensor | None, samples: int) -> torch.Tensor | None:
        """Hit marks at DATA_RATE (``dataset.hit_marks``) moved to the nearest of the
        ``samples`` samples at the model's rate, their counts summed where two land on one."""
        if hits is None or self.model.sample_rate == DATA_RATE:
            return hits
        item, sample = hits.nonzero(as_tuple=True)
        moved = torch.zeros(hits.shape[0], samples)
        at = (sample * self.model.sample_rate / DATA_RATE).round().long().clamp_max(samples - 1)
        return moved.index_put_((item, at), hits[item, sample].float(), accumulate=True)

    def common_step(self, noisy: torch.Tensor, clean: torch.Tensor, train: bool,
                    hits: torch.Tensor | None = None) -> float:
        """One step on a batch (``hits``: its snare hits' marks, where the loss scores
        them), the loss's value returned."""
        noisy, clean = self.to_model_rate(noisy), self.to_model_rate(clean)
        if self.loss_needs_hits and hits is None:
            raise TrainingError("the loss scores snare hits (hitlevel), but the batches name "
                                "none: build the data with hits=True")
        hits = self.hits_at_model_rate(hits, clean.shape[-1])
        if train and self.config.gain_jitter_db:
            gains = 10 ** (self.rng.uniform(-1, 1, size=(noisy.shape[0], 1))
                           * self.config.gain_jitter_db / 20)
            gains = torch.from_numpy(gains.astype(np.float32))
            noisy, clean = noisy * gains, clean * gains
        noisy, clean = noisy.to(self.device), clean.to(self.device)
        hits = None if hits is None else hits.to(self.device)
        guarded = guarded_clean = None
        if train and self.guard is not None:
            guarded, guarded_clean = (self.to_model_rate(wave).to(self.device)
                                      for wave in self.guard.next_batch())
        self.network.train(train)
        for module in self.frozen:  # frozen means its BatchNorm statistics too
            module.eval()
        # The forward pass updates BatchNorm's running statistics before the loss shows
        # whether the step is skipped: kept, one non-finite batch left them NaN for good.
        statistics = [buffer.clone() for buffer in self.model.buffers()] if train else []
        # Autocast only around the forward pass: the loss (logs of small energies), the
        # weights, their gradients and the optimiser stay float32. Validation runs in
        # float32, as users run the model. The guard's batch rides in the same forward pass
        # (DDP expects one per backward).
        cut = (train and self.config.cut_input_share > 0
               and self.cut_rng.random() < self.config.cut_input_share)
        with torch.set_grad_enabled(train), (input_cut(self.model, self.config.cut_input_hz)
                                             if cut else contextlib.nullcontext()):
            inputs = noisy if guarded is None else torch.cat([noisy, guarded])
            with mixed_precision(self.device, self.config.precision):
                estimate = self.network(inputs)
            loss = score(self.loss, estimate[: len(noisy)].float(), clean, hits)
            if guarded is not None:
                loss = loss + self.guard.term(self.loss, estimate[len(noisy):], guarded,
                                              guarded_clean)
                if self.guard.high_band:
                    loss = loss + self.guard.high_band_term(estimate[: len(noisy)], noisy, clean)
        if train:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(self.model.parameters(),
                                            self.config.grad_clip or math.inf)
            if not torch.isfinite(norm):  # a non-finite loss gives a non-finite norm too
                self.skip_step(statistics)
                return math.nan
            self.optimizer.step()
            if cut:  # the running statistics stay the whole band's (restore_statistics)
                self.restore_statistics(statistics)
            self.nonfinite_in_a_row = 0
            if self.ema is not None:
                self.ema.update_parameters(self.model)
        return float(loss.detach())

    def skip_step(self, statistics: list[torch.Tensor]) -> None:
        """Leave the weights, the optimiser, the average and the BatchNorm ``statistics``
        (the model's buffers as they were before the step) as they are after a non-finite
        loss or gradient. Why: one such step turns every weight into NaN through Adam's
        moments, and every later epoch with it (a CPU run lost its last hour so); a run
        that keeps producing them has diverged, which is an error, not something to skip.
        Under DDP the gradients are already averaged, so every rank skips the same step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.restore_statistics(statistics)
        self.nonfinite_in_a_row += 1
        warnings.warn(f"train: epoch {self.epoch + 1}: non-finite loss or gradient, step "
                      "skipped", stacklevel=2)
        if self.nonfinite_in_a_row >= MAX_NONFINITE_IN_A_ROW:
            raise TrainingError(
                f"train: the loss or its gradient was not finite for {self.nonfinite_in_a_row} "
                f"steps in a row (epoch {self.epoch + 1}): the run diverged; --resume it "
                "with a lower --lr")

    def restore_statistics(self, statistics: list[torch.Tensor]) -> None:
        """Put the model's buffers (BatchNorm's running statistics) back as they were
        before a step (``statistics``): after a skipped step, and after a cut step
        (``cut_input_share``), whose input, the band above the cut silent, has other
        statistics than the whole band's. Why the cut's too: the model keeps one set, which
        every track's path reads, and mixed with the cut's it moved the whole band's output
        on floored clips more than the cut itself does; the cut path reads them as it did."""
        with torch.no_grad():
            for buffer, before in zip(self.model.buffers(), statistics, strict=True):
                buffer.copy_(before)

    # -- validation ------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Loss, SNR and SI-SDR of whole validation clips through the inference path.

        The loss is scored at the model's rate, as in training (``common_step``), on the
        output and target resampled there; SNR and SI-SDR at the output's 48 kHz. Why: scored
        at 48 kHz, the validation loss of a 20 kHz model sat ~13 % off its training loss for
        the same output, and loss.png's two curves could not be compared.

        SI-SDR and its gain over the input leave out the clips whose clean target is silent
        (bleed-only clips, counted in ``valid_silent_clips``; NaN when every clip is one).
        Why: against a silent target SI-SDR is -80 dB (its gain 0) whatever the output, so
        each such clip only dragged the mean towards -80 dB. The loss and SNR keep them:
        their energy floors make them grade the bleed left in such a clip. The network is read
        whole (no floor test): validation measures what it learned, floors included.

        Weights whose output for a clip holds NaN/inf end validation there with a NaN loss,
        on which ``fit`` stops the run as diverged. Why not the engine's error: it blamed the
        checkpoint ("cannot process this audio") where a lower --lr is the cure, and raised
        on rank 0 alone it would leave the other ranks waiting for its loss."""
        denoiser = Denoiser(self.evaluated, self.device, InferenceConfig(hiss_cut_hz=0.0))
        snr, sisdr = SNRLoss(reduction="none"), SISDRLoss(reduction="none")
        losses, snrs, sisdrs, gains = [], [], [], []
        for clip in self.valid:
            try:
                estimate = torch.from_numpy(denoiser.denoise(clip.noisy[None], DATA_RATE))
            except NonFiniteOutputError:
                losses.append(math.nan)
                snrs.append(math.nan)
                break
            clean = torch.from_numpy(clip.clean[None])
            noisy = torch.from_numpy(clip.noisy[None])
            with torch.no_grad():
                target = self.to_model_rate(clean)
                marks = self.hits_at_model_rate(hit_marks(clip.onsets, 0, clip.clean.size)
                                                if self.loss_needs_hits else None,
                                                target.shape[-1])
                losses.append(float(score(self.loss.to("cpu"), self.to_model_rate(estimate),
                                          target, marks)))
                snrs.append(-float(snr(estimate, clean)))
                if clip.clean.any():
                    sisdrs.append(-float(sisdr(estimate, clean)))
                    gains.append(sisdrs[-1] + float(sisdr(noisy, clean)))
        self.loss.to(self.device)
        return {"valid_loss": float(np.mean(losses)), "valid_snr": float(np.mean(snrs)),
                "valid_sisdr": nanmean(sisdrs), "valid_delta_sisdr": nanmean(gains),
                "valid_silent_clips": len(self.valid) - len(sisdrs)}

    # -- state -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": serialize(self.model, self.config.to_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch, "best": self.best, "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "batches_done": self.batches_done, "data_positions": self.data_positions,
            "frozen_parameters": self.frozen_parameters,  # those the optimizer state leaves out
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "cut_rng": json.dumps(self.cut_rng.bit_generator.state),  # alike on every rank
            **({} if self.ema is None else {"ema": self.ema.state_dict()}),
            # the teacher itself: a resume rebuilding it from its file held the network to
            # whatever that file held by then (run.run_teacher)
            **({} if self.guard is None else {"guard_teacher": serialize(self.guard.teacher)}),
        }

    def _rng_states(self) -> tuple[Any, ...]:
        """This rank's random states: torch's, the gains' and, on a GPU, its device's (dropout
        there draws from it)."""
        states = (torch.get_rng_state(), json.dumps(self.rng.bit_generator.state))
        if self.device.type == "cuda":
            states += (torch.cuda.get_rng_state(self.device),)
        return states

    def save_state(self) -> None:
        """Rank 0 writes ``last.pt``, with every rank's random states: each rank draws its
        own gains (and dropout), so a resume that gave all ranks rank 0's would differ."""
        ranks = gather(self._rng_states(), self.world)
        if not self.world.is_main:
            return
        save_atomic(self.run_dir / "last.pt", {**self.state(), "rank_rngs": ranks})

    def load_state(self, path: Path, state: dict[str, Any] | None = None) -> TrainConfig:
        """Continue from a saved state; returns the configuration it was trained with.
        ``state``: ``read_state(path)`` when the caller has read it already (``run_training``
        builds the network and the guard's teacher from it), so the file is not unpickled
        twice."""
        state = read_state(path) if state is None else state
        self.model.load_state_dict(state["model"]["state_dict"])
        saved = TrainConfig.from_dict(state["model"]["training_config"])
        self.check_same_freeze(state, saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict({**state["scheduler"], **plateau_options(self.config)})
        self.apply_changed_optimizer_options(saved)
        self.epoch, self.best, self.bad_epochs = state["epoch"], state["best"], state["bad_epochs"]
        self.best_epoch = state.get("best_epoch")  # states saved before it was kept: None
        self.batches_done = int(state.get("batches_done",  # states saved before it was kept
                                          self.epoch * self.config.steps_per_epoch))
        self.history = list(state["history"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        ranks = state.get("rank_rngs", [])
        torch_rng, numpy_rng, *device_rng = (ranks[self.world.rank]
                                             if len(ranks) == self.world.size
                                             else (state["torch_rng"], state["numpy_rng"]))
        torch.set_rng_state(torch_rng)
        self.rng.bit_generator.state = json.loads(numpy_rng)
        if "cut_rng" in state:  # states saved before it was kept draw the cut afresh
            self.cut_rng.bit_generator.state = json.loads(state["cut_rng"])
        if device_rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(device_rng[0], self.device)
        return saved

    def check_same_freeze(self, state: dict[str, Any], saved: TrainConfig) -> None:
        """Refuse a resume whose --freeze leaves other parameters to train than the run's
        (``saved``). Why: the optimizer state holds one entry per trained parameter, by
        position; loaded over another set it was a 40-line torch error, or, the same shapes
        (members.0 for members.1 of a bag), one member's Adam moments silently stepping the
        other, and the resume no longer gives an uninterrupted run's weights. A state saved
        before it kept the set is judged by the --freeze its configuration recorded (none
        before --freeze existed)."""
        trained_frozen = state.get("frozen_parameters",
                                   frozen_parameters(self.model, saved.freeze))
        if trained_frozen != self.frozen_parameters:
            raise ParameterError(
                f"resume: the run was trained with {freeze_option(saved.freeze)}, not "
                f"{freeze_option(self.config.freeze)}, and its optimizer state fits only the "
                "parameters it trained; resume it with its own --freeze (leave --freeze "
                f"out), or start a new run with --init {self.run_dir / 'best.pt'} and the "
                "new --freeze")

    def apply_changed_optimizer_options(self, saved: TrainConfig) -> None:
        """Give every parameter group the configuration's lr, weight decay and kind of decay
        (``optimizer``) where it differs from the run's saved ``saved`` (``--resume --lr``).
        Why: the loaded optimizer state carries the run's own, which silently won while
        config.json and the model card claimed the new ones (an AdamW state loaded into
        Adam went on decoupling its decay); an unchanged option keeps the saved group's
        value, which the plateau schedule may have lowered. The moments carry over."""
        changed = {name: getattr(self.config, name) for name in ("lr", "weight_decay")
                   if getattr(self.config, name) != getattr(saved, name)}
        # torch before 2.7 keeps Adam and AdamW apart by class, without this group key
        if self.config.optimizer != saved.optimizer and DECOUPLED in self.optimizer.defaults:
            changed[DECOUPLED] = self.optimizer.defaults[DECOUPLED]
        for group in self.optimizer.param_groups:
            group.update(changed)
        # ReduceLROnPlateau reports this until its next step and lowers the groups' own lr.
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def restart_selection(self) -> None:
        """Forget the best validation loss, here and in the plateau schedule. Why: after a
        resume that changes the validation clips or the loss, the saved best was measured
        on other clips; against it, a better network could fail to replace ``best.pt`` and
        the schedule would halve the learning rate for epochs that were not worse."""
        self.best, self.best_epoch, self.bad_epochs = math.inf, None, 0
        self.scheduler.best = self.scheduler.mode_worse
        self.scheduler.num_bad_epochs = 0

    def save_best(self, extra: dict[str, Any] | None) -> None:
        """Save the weights of the epoch just ended, the best so far, as ``best.pt``, with
        that epoch's record (``history``) and the run's ``extra`` (its data)."""
        save_checkpoint(self.run_dir / "best.pt", self.evaluated, self.config.to_dict(),
                        {**(extra or {}), **self.history[-1]})

    def finish_saving(self, extra: dict[str, Any] | None) -> None:
        """On a resume, write the ``best.pt`` of the epoch ``last.pt`` holds when the run
        stopped before it was written (a Ctrl-C, a full disk). An epoch saves ``last.pt``
        first. Why: saved the other way round, a run stopped between the two saves of its
        first epoch left a ``best.pt`` with no ``last.pt``, which neither ``--resume`` (nothing
        to resume) nor a new run (the folder holds a run) would take; now every stop leaves
        a folder one of them continues, and this save completes the one it cut short."""
        if not self.world.is_main or self.best_epoch is None or self.best_epoch != self.epoch:
            return
        best = self.run_dir / "best.pt"
        if best.is_file() and load_package(best).get("extra", {}).get("epoch") == self.epoch:
            return
        self.save_best(extra)

    def finished(self) -> str:
        """Why a resumed run has no epoch left to train, in words ("" when it has one): its
        ``epochs`` are done, or its last ``early_stop_patience`` epochs validated no better
        than its best (as ``fit`` stops). Why early stopping too: ``fit`` tests it only after
        an epoch, so every --resume of a run that had stopped early trained one more epoch,
        lowered the rate again and rewrote last.pt and history.json (a wrapper re-issuing
        --resume after preemptions added epochs for ever). A larger --early-stop-patience
        continues such a run, as a larger --epochs continues one that trained its epochs."""
        patience = self.config.early_stop_patience
        if self.bad_epochs >= patience:
            return (f"the run stopped early at epoch {self.epoch} "
                    f"({plural(self.bad_epochs, 'epoch')} without a better validation loss, "
                    f"--early-stop-patience {patience}); nothing to resume: give a larger "
                    "--early-stop-patience to train on")
        if self.epoch >= self.config.epochs:
            return (f"the run has trained {plural(self.epoch, 'epoch')} (--epochs "
                    f"{self.config.epochs}); nothing to resume: give a larger --epochs to "
                    "train on")
        return ""

    # -- the loop --------------------------------------------------------------------
    def fit(self, extra: dict[str, Any] | None = None) -> list[dict[str, float]]:
        config = self.config
        batches = endless(self.batches)
        started = time.monotonic()
        first_step = self.epoch * config.steps_per_epoch  # a resumed run counts from here
        total_steps = config.epochs * config.steps_per_epoch
        while self.epoch < config.epochs:
            epoch_start = time.monotonic()
            train_losses = []
            for step in range(config.steps_per_epoch):
                noisy, clean, *hits = next(batches)
                self.batches_done += 1
                train_losses.append(self.common_step(noisy, clean, True, *hits))
                if self.report is not None and self.world.is_main:
                    done = self.epoch * config.steps_per_epoch + step + 1
                    now = time.monotonic()
                    rate = audio_rate(step + 1, config, self.world, now - epoch_start)
                    recent = [loss for loss in train_losses[-20:] if math.isfinite(loss)]
                    self.report(run_fraction(done - first_step, total_steps - first_step,
                                             now - started, config.max_minutes),
                                f"epoch {self.epoch + 1} loss "
                                f"{np.mean(recent) if recent else math.nan:.4f} "
                                f"{rate:.0f} audio-s/s")
            finite = [loss for loss in train_losses if math.isfinite(loss)]
            train_loss = average(float(np.mean(finite)) if finite else math.nan, self.world)
            stop = False
            if self.world.is_main:
                record = {"epoch": self.epoch + 1, "train_loss": train_loss,
                          "skipped_steps": len(train_losses) - len(finite),
                          "lr": self.optimizer.param_groups[0]["lr"],
                          **batch_record(config, self.world),
                          "seconds": time.monotonic() - epoch_start, **self.validate()}
            # Rank 0's validation loss for every rank. Why: each rank's schedule must lower
            # its lr with the others; stepped on rank 0 alone, only rank 0's did, and the
            # ranks' weights drifted apart.
            valid_loss = broadcast(record["valid_loss"] if self.world.is_main else math.nan,
                                   self.world)
            # Stop before this epoch is saved: weights that validate to NaN or inf can never
            # be best.pt, and as last.pt they would leave --resume nothing to continue from.
            # Every rank stops, or the others would wait for rank 0 in the next collective.
            if not math.isfinite(valid_loss):
                raise TrainingError(
                    f"train: the validation loss after epoch {self.epoch + 1} (step "
                    f"{self.batches_done}) is not finite: the run "
                    "diverged; train it with a lower --lr or smaller --loss weights")
            self.scheduler.step(valid_loss)
            improved = False
            if self.world.is_main:
                self.history.append(record)
                if config.keep_epochs:
                    save_checkpoint(epoch_path(self.run_dir, self.epoch + 1), self.evaluated,
                                    config.to_dict(), {**(extra or {}), **record})
                improved = record["valid_loss"] < self.best
                if improved:
                    self.best, self.best_epoch, self.bad_epochs = (record["valid_loss"],
                                                                   self.epoch + 1, 0)
                else:
                    self.bad_epochs += 1
                stop = self.bad_epochs >= config.early_stop_patience
                if config.max_minutes and time.monotonic() - started > config.max_minutes * 60:
                    stop = True
            self.epoch += 1
            self.save_state()  # before best.pt: see finish_saving
            if improved:
                self.save_best(extra)
            if self.world.is_main:
                write_history(self.run_dir, self.history)
            if broadcast_flag(stop, self.world):
                break
        return self.history


def score(loss: nn.Module, estimate: torch.Tensor, target: torch.Tensor,
          hits: torch.Tensor | None) -> torch.Tensor:
    """``loss`` of ``estimate`` against ``target``, handed the batch's ``hits`` where there are
    any: a loss that scores none takes two arguments."""
    return loss(estimate, target) if hits is None else loss(estimate, target, hits)


def read_state(path: Path) -> dict[str, Any]:
    """A training state (``last.pt``) as ``Trainer.save_state`` wrote it, on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def build_optimizer(parameters: list[nn.Parameter], config: TrainConfig) -> torch.optim.Adam:
    """``config.optimizer`` over ``parameters``, with its lr and weight decay: plain
    ``torch.optim.Adam`` adds the decay to the gradient, ``AdamW`` decouples it."""
    return OPTIMIZER_CLASSES[config.optimizer](parameters, lr=config.lr,
                                               weight_decay=config.weight_decay)


def plateau_options(config: TrainConfig) -> dict[str, Any]:
    """ReduceLROnPlateau's options; laid over a resumed run's saved ones too, so that the
    schedule follows the configuration config.json records. An epoch counts as bad unless
    its validation loss is strictly below the best, as for best.pt and early stopping.
    Why absolute: the default relative threshold scales with the best loss, and for a
    negative one (SNR and SI-SDR losses) it took a slightly worse epoch for a better one,
    so the schedule saw no plateau where early stopping did.

    The rate is lowered at the ``plateau_patience``-th bad epoch in a row, as the run stops
    at the ``early_stop_patience``-th: torch lowers it only once more than its ``patience``
    epochs were bad. Given ``plateau_patience`` itself, it waited one epoch longer than
    the option, the help and the model card said, and with the defaults (3 and 8) the
    second halving fell on the epoch that ended the run. A run saved before keeps its
    count of bad epochs and lowers the rate by the corrected rule from its next epoch."""
    return {"factor": config.plateau_factor, "patience": config.plateau_patience - 1,
            "threshold": 0.0, "threshold_mode": "abs"}


def batch_record(config: TrainConfig, world: World) -> dict[str, int]:
    """An epoch's processes and segments per step, all processes together, for its history
    row. Why per epoch: a resume may change both (another ``torchrun --nproc_per_node``,
    another ``--batch-size``), and nothing recorded the processes, so the model card of
    a two-process run gave one process's batch as the run's."""
    return {"world_size": world.size, "global_batch": config.batch_size * world.size}


def audio_rate(steps: int, config: TrainConfig, world: World, seconds: float) -> float:
    """Seconds of training audio per second of ``steps`` in ``seconds``, all ranks together.
    Why all: under torchrun each rank trains its own batches, and the progress bar (rank
    0's) showed one rank's share as the run's throughput."""
    return steps * config.batch_size * config.segment_seconds * world.size / seconds


def epoch_path(run_dir: Path, epoch: int) -> Path:
    """Where ``keep_epochs`` saves an epoch's weights. Why keep them: the validation clips
    come from the training distribution, so ``best.pt`` is the best epoch for snares like
    the training kits'; choosing for another quality (unfamiliar snares, a listening test)
    needs the other epochs."""
    return run_dir / "epochs" / f"epoch_{epoch:03d}.pt"


def run_fraction(steps_done: int, steps_planned: int, seconds: float,
                 max_minutes: float) -> float:
    """How far a run is, in [0, 1]: its steps done over the steps it may take, or its wall
    time over ``max_minutes`` when that is further on. Why: most runs are stopped by the
    clock (``epochs`` defaults to 1000), and a bar counting steps alone would stand at 6 %
    with an ETA of days when the clock ends the run."""
    by_steps = steps_done / steps_planned if steps_planned > 0 else 1.0
    by_clock = seconds / (max_minutes * 60) if max_minutes else 0.0
    return min(1.0, max(by_steps, by_clock))


def write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    """``history.json`` and ``loss.png`` (train and validation loss per epoch, as the
    thesis plotted them). An undefined value (SI-SDR when every validation clip is
    bleed-only, a loss when every step was skipped) is written as ``null``: as a bare
    ``NaN`` it made the file something JSON is not, which strict readers (``jq``, a
    browser's ``JSON.parse``) refuse."""
    from .plots import plot_history

    write_json(run_dir / "history.json", history)
    plot_history(history, run_dir / "loss.png")


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """``history.json`` with its ``null`` values read back as NaN, as the run held them;
    a file written before they were nulls, with bare ``NaN``, reads the same."""
    rows = json.loads((Path(run_dir) / "history.json").read_text())
    return [{key: math.nan if value is None else value for key, value in row.items()}
            for row in rows]

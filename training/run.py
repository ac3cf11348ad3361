"""Wiring for ``debleed train``: config + data source -> model, loss, loaders, Trainer.

Data comes from a dataset folder (``debleed dataset synth/session``) or is synthesised
on the fly from kits. Under ``torchrun`` each rank sees its own shard (of every
shuffled pass, or interleaved seeds for the synthetic stream) and only rank 0
validates and writes."""

from __future__ import annotations

import copy
import json
import os
import sys
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from denoiser.checkpoint import load_checkpoint, load_package, rebuild
from denoiser.engine import pick_device
from denoiser.errors import DebleedError, ModelError, ParameterError
from denoiser.models import DenoiserModel, build_model
from denoiser.models.ensemble import cut_networks
from denoiser.outfiles import end_quietly_on_signals, signals_held, write_text_atomic
from denoiser.pretrained import default_model_path

from .config import STREAM_VERSION, VALIDATION_VERSION, TrainConfig
from .dataset import ClipFolder, SynthStream, clip_segments, meta_hit_starts
from .distributed import World, broadcast_flag, init_world, shutdown, wait_for_all
from .errors import TrainingError
from .guard import TeacherGuard
from .losses import CombinedLoss, weights_need_hits
from .manifest import read_manifest
from .model_card import write_model_card
from .synth import Clip, SynthConfig, render_clip
from .config import DATA_RATE
from .trainer import (StepReport, Trainer, ValidClip, read_state, seed_everything,
                      write_history)

VALID_SEED_OFFSET = 1_000_003
GUARD_SEED_OFFSET = 2_000_029  # the guard's clips are never the training stream's
# The manifest fields that tell one dataset folder from another (with its clip count): a
# render of the same seed with another split version validates on other clips.
IDENTITY_FIELDS = ("source", "seed", "split_version", "kits", "clip_seconds")


class Flatten:
    """(B, 1, T) loader batches (noisy, clean and, where the loss scores them, hit marks)
    -> (B, T) tensors; a worker's error as its own words."""

    def __init__(self, loader: Iterable[tuple[torch.Tensor, ...]]):
        self.loader = loader

    def __iter__(self):
        try:
            for batch in self.loader:
                yield tuple(tensor.flatten(0, 1) for tensor in batch)
        except DebleedError as exc:
            raise _from_worker(exc) from None


def _from_worker(exc: DebleedError) -> DebleedError:
    """``exc`` with the message it had in the DataLoader worker that raised it. torch
    re-raises it here as "Caught DatasetError in DataLoader worker process 0." followed by
    the worker's traceback, whose last line alone names the clip: with ``--workers`` the
    one-line error said which worker, not which of thousands of files, was broken."""
    text = str(exc).rstrip()
    name = f"\n{type(exc).__module__}.{type(exc).__qualname__}"  # the traceback's last line
    if not text.startswith("Caught "):
        return exc
    if text.endswith(name):  # raised without a message
        return type(exc)()
    if f"{name}: " not in text:
        return exc
    return type(exc)(text.rsplit(f"{name}: ", 1)[1].strip())


class PassBatches(Sampler[list[int]]):
    """Batches of clip indices for a dataset folder, one shuffled pass after another.

    Pass ``p`` is a permutation seeded by ``(seed, p)`` and split across DDP ranks, so
    every pass reshuffles (what ``DistributedSampler.set_epoch`` is for) and ``position``
    (batches served so far, after ``first``) alone says where the stream is: a resumed run
    sets it and continues with exactly the batches an uninterrupted run would have drawn,
    without reading the skipped audio. Each item is ``(clip index, draw)``, the draw fixing
    where the random crop starts: drawn here, the crops of a resumed run are the same too,
    which they were not when each DataLoader worker drew them (its generator restarts).
    """

    def __init__(self, size: int, batch_size: int, seed: int, world: World):
        self.size, self.batch_size, self.seed, self.world = size, batch_size, seed, world
        self.per_pass = size // world.size // batch_size
        self.position = 0
        self.first = 0  # batches of these passes before the mark the stream starts at

    def __len__(self) -> int:
        return self.per_pass

    def seek(self, mark: Sequence[int], batches: int) -> None:
        """Continue ``batches`` batches after ``mark``: a pass and how many items of its
        order all processes together had used there (``mark_after``)."""
        self.first = pass_batch(mark, self.per_pass, self.batch_size * self.world.size)
        self.position = batches

    @staticmethod
    def mark_after(mark: Sequence[int], batches: int, layout: dict[str, int]) -> list[int]:
        """The pass, and the items of its order all processes together had used, after
        ``batches`` batches from ``mark`` at ``layout`` (its ``clips``, ``batch_size`` and
        ``world_size``; ``loader_layout``). Why: a resume at another batch size or process
        count has other passes, and seeking by them went back to an earlier pass and
        trained its clips again, with the same crops; it continues this one past them."""
        step = layout["batch_size"] * layout["world_size"]
        per_pass = max(layout["clips"] // step, 1)  # a run saved before, resumed on fewer clips
        index, start = divmod(pass_batch(mark, per_pass, step) + batches, per_pass)
        return [index, start * step]

    def __iter__(self):
        index, start = divmod(self.first + self.position, self.per_pass)
        state = np.random.SeedSequence([self.seed, index]).generate_state(1, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(state))
        order = torch.randperm(self.size, generator=generator)
        draws = torch.randint(0, 2**62, (self.size,), generator=generator)
        mine = slice(self.world.rank, self.per_pass * self.batch_size * self.world.size,
                     self.world.size)
        shape = (self.per_pass, self.batch_size)
        for batch, crops in zip(order[mine].view(shape)[start:].tolist(),
                                draws[mine].view(shape)[start:].tolist()):
            self.position += 1
            yield list(zip(batch, crops))


def pass_batch(mark: Sequence[int], per_pass: int, step: int) -> int:
    """The batches of ``step`` items (all processes' together), ``per_pass`` to a pass,
    before ``mark`` (a pass, and the items of its order used). A batch partly used counts
    as used: no item is drawn twice, and the few others in it wait for the next pass."""
    index, used = mark
    return index * per_pass + min(-(-used // step), per_pass)


def folder_data(root: Path, config: TrainConfig, world: World):
    hits = weights_need_hits(config.loss)
    train = ClipFolder(root, "train", config.segment_seconds, random_segments=True, hits=hits)
    if train.sample_rate != DATA_RATE:  # the trainer reads every clip as 48 kHz
        raise ParameterError(f"{root}: clips at {train.sample_rate} Hz; training datasets are "
                             f"{DATA_RATE} Hz (make one with debleed dataset synth/session)")
    if len(train) // world.size < config.batch_size:
        raise ParameterError(f"{root}: {len(train)} training clips, fewer than one batch of "
                             f"{config.batch_size} per process; "
                             f"{batch_advice(len(train), world)}")
    batches = PassBatches(len(train), config.batch_size, config.seed, world)
    # The loader's own generator only seeds worker processes: drawing that seed from
    # torch's global RNG would shift the random crops of a resumed run.
    loader = RunLoader(train, batch_sampler=batches, num_workers=config.num_workers,
                       generator=torch.Generator().manual_seed(config.seed),
                       persistent_workers=config.num_workers > 0)
    valid_set = ClipFolder(root, "valid")
    entries = spread(valid_set.clips, config.valid_clips)
    info = folder_info(root, train)
    if not entries:
        entries = spread(train.clips, config.valid_clips)
        info["validation"] = "training clips: the dataset has no valid clips"
        if world.is_main:  # the rank that validates
            warnings.warn(f"{root}: no 'valid' clips, so validation and the choice of best.pt "
                          f"use {len(entries)} of the training clips, which says nothing about "
                          "unheard audio; build the dataset from two or more clips (two or "
                          "more takes for a session) with a --valid-fraction above 0",
                          stacklevel=2)
    valid = [valid_clip(valid_set.load(entry), hits, str(root / entry["id"] / "meta.json"))
             for entry in entries]
    return loader, valid, info


def batch_advice(clips: int, world: World) -> str:
    """How to train on ``clips`` training clips that hold no full batch per process: the
    error used to state the shortfall only, leaving the user to find ``--batch-size``."""
    if clips == 0:
        return "the dataset has no 'train' clips"
    if clips < world.size:
        return f"run at most {clips} processes"
    return f"give --batch-size {clips // world.size} or less"


def folder_info(root: Path, train: ClipFolder) -> dict[str, Any]:
    """What the model card and checkpoint say about a dataset folder's training clips:
    the kits of a synthetic dataset; for a session dataset, whose clips have no kit (the
    card said "from kits ?"), how many clean and bleed takes they were cut from, and what
    the validation clips are (held-out takes, or other clips of the training take)."""
    if train.manifest.get("source") != "session":
        return {"source": str(root), "kits": sorted({c.get("kit", "?") for c in train.clips}),
                "clips": len(train.clips)}
    takes = {kind: len({c.get(f"{kind}_take") for c in train.clips}) for kind in ("clean", "bleed")}
    validation = ("clips of held-out session takes" if train.manifest.get("split_by") == "take"
                  else "held-out clips of the training takes")
    return {"source": str(root), "takes": takes, "clips": len(train.clips),
            "validation": validation}


def synth_data(kits: Sequence[str], config: TrainConfig, world: World):
    from .kits import load_kit, refuse_test_kits

    loaded = [load_kit(k) for k in kits]
    refuse_test_kits(loaded)  # the guard synthesises from the same kits
    synth = config.synth_config()
    hits = weights_need_hits(config.loss)
    loader = synth_loader(kits, synth, config, world, config.seed, config.batch_size, hits)
    valid = [valid_clip(c, hits, "a synthesised validation clip") for c in (
        render_clip(loaded, config.seed + VALID_SEED_OFFSET + i, synth)
        for i in range(config.valid_clips))]
    return loader, valid, {"source": "on-the-fly synthesis", "kits": [Path(k).name for k in kits],
                           "clips": "unbounded"}


def valid_clip(clip: Clip, hits: bool, where: str) -> ValidClip:
    """A validation clip, with the samples where its snare hits start where the loss scores
    them (``hits``), read from its meta as the training clips' are (``where``: whence)."""
    if not hits:
        return ValidClip(clip.noisy, clip.clean)
    return ValidClip(clip.noisy, clip.clean, meta_hit_starts(clip.meta, DATA_RATE, where))


def guard_data(kits: Sequence[str], config: TrainConfig, world: World) -> DataLoader:
    """The guard's own on-the-fly stream: the run's synthesis with ``guard_synth`` on top
    (by default every clip's snare and toms procedural), in batches of ``guard_batch_size``."""
    return synth_loader(kits, config.guard_synth_config(), config, world,
                        config.seed + GUARD_SEED_OFFSET, config.guard_batch_size)


def spread(clips: Sequence[Any], count: int) -> list[Any]:
    """``count`` of ``clips`` evenly spaced through them (all when there are no more).
    Why not the first ``count``: a session manifest lists its clips take by take, so those
    were all one song's, and best.pt, the plateau schedule and early stopping followed it."""
    if len(clips) <= count:
        return list(clips)
    return [clips[i] for i in np.linspace(0, len(clips) - 1, count).round().astype(int)]


def synth_loader(kits: Sequence[str], synth: SynthConfig, config: TrainConfig, world: World,
                 seed: int, batch_size: int, hits: bool = False) -> DataLoader:
    """An endless stream of on-the-fly (noisy, clean) segments, each rank its own share,
    with their hit marks where ``hits``."""
    stream = SynthStream(kits, synth, config.segment_seconds, seed=seed, rank=world.rank,
                         world_size=world.size, version=config.stream_version, hits=hits)
    # The worker seed from a generator of its own, not torch's global RNG, as folder_data:
    # drawn from that, a resumed run's dropout masks were not the uninterrupted run's.
    return RunLoader(stream, batch_size=batch_size, num_workers=config.num_workers,
                     generator=torch.Generator().manual_seed(seed))


class RunLoader(DataLoader):
    """A training run's DataLoader, whose workers leave the signals a whole run is sent to
    the training process (``start_worker``). They start with those signals held
    (``signals_held``, as each iterator starts its workers: every pass without persistent
    workers) till ``start_worker`` has set their handlers: one that reached a worker
    between its fork and them ran the training process's handler in it. The two go
    together: a worker that never let them in could not be ended by SIGTERM, and the
    loader's shut-down waited on it for ever."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, worker_init_fn=start_worker, **kwargs)

    def __iter__(self):
        if self.num_workers == 0:
            return super().__iter__()
        context = self.multiprocessing_context or torch.multiprocessing  # torch's default
        with signals_held(context.get_start_method()):
            return super().__iter__()


def start_worker(worker_id: int) -> None:
    """A DataLoader worker's first act: end quietly on SIGINT, SIGHUP and SIGTERM
    (``end_quietly_on_signals``), leaving the run's exit status to the training process,
    which shuts its workers down as it stops, and let them in, held since the worker
    started (``RunLoader``). Forked with its handlers, every worker of a run stopped by
    SIGHUP (its terminal closed) or SIGTERM to its process group (systemd, SLURM's
    scancel, ``kill -- -PGID``) ended with status 129 or 143, which torch reported in 21
    lines ("Exception ignored in ... _MultiProcessingDataLoaderIter.__del__ ... DataLoader
    worker (pid N) exited unexpectedly"), and could leave its ``pymp-*`` folder in
    $TMPDIR. Also ``quiet_lost_connections``."""
    end_quietly_on_signals()
    quiet_lost_connections()


def quiet_lost_connections() -> None:
    """Drop a lost connection (``ConnectionError``: a broken pipe, a reset; ``EOFError``: the
    peer gone before it answered the connection's challenge) that reaches ``sys.excepthook``
    without a traceback; any other error is reported as before. The thread that hands a
    batch's shared memory to the training process (multiprocessing's ``resource_sharer``,
    which reports its errors through ``sys.excepthook``) printed "BrokenPipeError",
    "ConnectionResetError" or "EOFError" in 13-20 lines when a signal stopped the training
    process halfway through taking a batch, in about one stop of three. The training
    process reports its own end; a worker has nothing to add."""
    report = sys.excepthook

    def excepthook(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        if not issubclass(kind, (ConnectionError, EOFError)):
            report(kind, error, trace)

    sys.excepthook = excepthook


def loader_layout(loader: DataLoader) -> dict[str, int]:
    """What decides which data a number of ``loader``'s batches has used: a resume that
    changes any of it (``--batch-size``, ``--segment-seconds``, ``--workers``, the process
    count, the dataset's clips) cannot continue by counting batches (``data_position``)."""
    if isinstance(loader.dataset, SynthStream):
        return {"batch_size": loader.batch_size,
                "segments_per_clip": loader.dataset.segments_per_clip,
                "workers": max(loader.num_workers, 1), "world_size": loader.dataset.world_size}
    batches = loader.batch_sampler
    return {"clips": batches.size, "batch_size": batches.batch_size,
            "world_size": batches.world.size}


def start_position(loader: DataLoader, layout: dict[str, int] | None = None) -> dict[str, Any]:
    """The start of ``loader``'s data, its steps counted at ``layout`` (its own for None)."""
    return {"mark": 0 if isinstance(loader.dataset, SynthStream) else [0, 0], "since": 0,
            "layout": loader_layout(loader) if layout is None else layout}


def data_position(loader: DataLoader, saved: dict[str, Any], batches_done: int) -> dict[str, Any]:
    """Where ``loader``'s data continues after ``batches_done`` steps: a mark in units no
    batch size, segment length or process count changes (an on-the-fly stream's clip, a
    dataset folder's pass and the items used of it), the ``layout`` its steps are counted
    at from there, and ``since``, the step the mark was set at. The ``saved`` position
    (``kept_position``) is kept while the layout is the same, so a resume is exact; with
    another the mark moves past everything the run used. Why: a resume at batch 16 of a
    run that trained at 64 sought by 16 and re-trained three quarters of its clips."""
    layout = loader_layout(loader)
    if saved["layout"] == layout:
        return saved
    after = (SynthStream.clips_after if isinstance(loader.dataset, SynthStream)
             else PassBatches.mark_after)
    return {"mark": after(saved["mark"], batches_done - saved["since"], saved["layout"]),
            "since": batches_done, "layout": layout}


def kept_position(loader: DataLoader, name: str, state: dict[str, Any] | None,
                  world: World) -> dict[str, Any]:
    """Where ``loader``, the run's ``name`` data ("train", "guard"), stood when ``state``
    (last.pt) was saved: the position it kept; the start for a new run (None) or data the
    run did not have. A state saved before positions were kept counted its steps from the
    start at the layout of its configuration and last epoch (its batch, segment, workers
    and processes), which the old seek took this resume's for."""
    if state is None:
        return start_position(loader)
    if "data_positions" in state:
        return state["data_positions"].get(name, start_position(loader))
    run = TrainConfig.from_dict(state["model"]["training_config"])
    guard = name == "guard"
    history = state["history"]
    layout = {**loader_layout(loader),
              "batch_size": run.guard_batch_size if guard else run.batch_size,
              "world_size": history[-1].get("world_size", world.size) if history else world.size}
    if isinstance(loader.dataset, SynthStream):
        synth = run.guard_synth_config() if guard else run.synth_config()
        layout.update(segments_per_clip=clip_segments(synth, run.segment_seconds),
                      workers=max(run.num_workers, 1))
    return start_position(loader, layout)


def seek(loader: DataLoader, position: dict[str, Any], batches_done: int) -> None:
    """Position a fresh loader after ``batches_done`` steps, at ``position`` (``data_position``)."""
    batches = batches_done - position["since"]
    if isinstance(loader.dataset, SynthStream):
        loader.dataset.seek(batches, loader.batch_size, first_clip=position["mark"])
    else:
        loader.batch_sampler.seek(position["mark"], batches)


def initial_model(config: TrainConfig, state: dict[str, Any] | None = None,
                  kept: Collection[str] = ()):
    """A fresh model from the preset, or a checkpoint's (fine-tuning, e.g. on session data);
    with ``init``, ``model_kwargs`` grow the checkpoint's model (new parts start fresh). A
    resumed run's (``state``: its last.pt) is rebuilt from the model package there, which
    holds its name, arguments and every weight; ``init`` only records where it started.
    Why: built from ``init`` again, a run could not resume once that file was gone.
    ``kept``: the options a resume kept from its saved run (``TrainConfig.kept_from``)."""
    if state is not None:
        model = rebuild(state["model"])
    elif not config.init:
        model = build_model(config.model, **config.model_kwargs)
    else:
        model = init_model(config)
    check_model_runs(model, config)
    check_cut_input(model, config, kept)
    return model


def init_model(config: TrainConfig):
    """The ``--init`` checkpoint's model (``load_checkpoint``'s errors name the file)."""
    model, _ = load_checkpoint(checkpoint_path(config.init),
                               overrides=config.model_kwargs or None)
    return model


def checkpoint_path(name: str) -> Path:
    """The file a ``--init`` or ``--guard-teacher`` value names ("default": the shipped one)."""
    return default_model_path() if name == "default" else Path(name)


def guard_teacher(model: DenoiserModel, config: TrainConfig) -> DenoiserModel:
    """The guard's frozen teacher: ``--guard-teacher``'s model, else ``model`` as it starts.
    A teacher at another sample rate would hold the student to the wrong output."""
    if not config.guard_teacher:
        return model
    teacher, _ = load_checkpoint(checkpoint_path(config.guard_teacher))
    if teacher.sample_rate != model.sample_rate:
        raise ParameterError(f"train: the guard's teacher runs at {teacher.sample_rate} Hz, "
                             f"the network at {model.sample_rate} Hz: they must agree")
    return teacher


def run_teacher(model: DenoiserModel, config: TrainConfig, state: dict[str, Any] | None,
                run_dir: Path, seed: int) -> DenoiserModel:
    """The guard's teacher: the one a resumed run kept in its ``state`` (``last.pt``), unless
    this resume names another ``--guard-teacher``; else ``guard_teacher``'s, of ``model`` for
    a new run, of ``--init``'s model as the run started (``started_model``) for a state that
    kept none (saved before teachers were kept, or without the guard). Why kept: rebuilt
    from the file at ``--init`` or ``--guard-teacher``, a resume held the network to whatever
    that file held by then (a best.pt its own run had rewritten, another debleed's shipped
    model), and its weights were no longer an uninterrupted run's. The whole teacher, not a
    hash of it: a model is a few MB beside last.pt's optimizer moments, and a resume then
    needs neither the file nor its old contents."""
    if state is None:
        return guard_teacher(model, config)
    saved = with_absolute_paths(TrainConfig.from_dict(state["model"]["training_config"]))
    if "guard_teacher" in state and saved.guard_teacher == config.guard_teacher:
        try:
            return rebuild(state["guard_teacher"])
        except ModelError as exc:
            raise ModelError(f"{run_dir / 'last.pt'}: its guard's teacher: {exc}") from None
    return guard_teacher(model if config.guard_teacher else started_model(config, seed), config)


def started_model(config: TrainConfig, seed: int) -> DenoiserModel:
    """``--init``'s model as a run started from it: the parts ``model_kwargs`` grow drawn
    from ``seed`` (the run's, for this process), as ``initial_model`` drew them after
    ``seed_everything`` (under torchrun the trainer then gives every rank rank 0's). For
    the guard of a resumed state that kept no teacher: a resumed network is last.pt's own,
    not the model the guard holds it to."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return init_model(config)
        except ModelError as exc:
            raise ModelError(f"{exc} (the guard's teacher: last.pt, saved before debleed kept "
                             "the teacher in it, holds only the network; put the file back "
                             "to resume)") from None


def check_model_runs(model, config: TrainConfig) -> None:
    """One training-mode forward pass of a copy of ``model`` on a zero segment (CPU, no
    gradient, the global RNG untouched): ``--model-kwargs`` that build a network which
    cannot run (a dilation of 0, a NaN dropout, an FFT longer than the segment) would
    otherwise fail, with a traceback, only once the data is loaded and training starts."""
    samples = int(round(config.segment_seconds * model.sample_rate))
    probe = copy.deepcopy(model).cpu().train()  # BatchNorm statistics of the real one kept
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            output = probe(torch.zeros(2, samples))
    except Exception as exc:  # noqa: BLE001 - any failure here is the settings'
        raise ParameterError(f"train: {model_name(config)} cannot run on a {samples}-sample "
                             f"training segment ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if output.shape != (2, samples) or not torch.isfinite(output).all():
        raise ParameterError(f"train: {model_name(config)} gives no finite waveform of the "
                             f"segment's shape for a silent {samples}-sample segment")


def check_cut_input(model: DenoiserModel, config: TrainConfig,
                    kept: Collection[str] = ()) -> None:
    """Refuse ``--cut-input-share`` for a model no cut can read (``cut_networks``) or a
    ``--cut-input-hz`` at or past its Nyquist, before any data is loaded: else the first
    cut step would fail mid-run. ``kept`` as for ``TrainConfig.validate``."""
    if not config.cut_input_share:
        return
    try:
        cut_networks(model, config.cut_input_hz)
    except ModelError as exc:
        raise ParameterError(f"train: {config.option('cut_input_share', kept)}: {exc}") from None
    nyquist = model.sample_rate / 2
    if config.cut_input_hz >= nyquist:
        raise ParameterError(f"train: {config.option('cut_input_hz', kept)}: must be below the "
                             f"model's Nyquist ({nyquist:g} Hz: it runs at "
                             f"{model.sample_rate} Hz)")


def model_name(config: TrainConfig) -> str:
    """The model as the user named it, for messages."""
    kwargs = (f" with --model-kwargs '{json.dumps(config.model_kwargs)}'"
              if config.model_kwargs else "")
    return f"model {config.init or config.model!r}{kwargs}"


def run_training(config: TrainConfig, run_dir: str | Path, data: str | Path | None = None,
                 kits: Sequence[str] = (), resume: bool = False,
                 report: StepReport | None = None, saved: TrainConfig | None = None,
                 typed: Collection[str] = ()) -> Path:
    """Train and return the path of the best checkpoint (``RUN/best.pt``).

    ``saved``: with ``resume``, ``saved_config(run_dir)`` when the caller has read it
    already (the CLI does, to continue with the run's options), so ``last.pt`` is not
    unpickled twice; read here when not given, before any check. An option a refusal
    names is marked as the run's saved value where the resume kept it from ``saved``:
    its value, and not among the ``typed`` fields (the CLI's given options;
    ``TrainConfig.kept_from``).
    """
    run_dir = Path(run_dir)
    if (run_dir / "best.pt").exists() and not (run_dir / "last.pt").exists():
        # a run saves last.pt before best.pt, so this best.pt is no stopped run's (its last.pt
        # deleted, a model copied in): before last.pt is read for a resume
        raise ParameterError(f"{run_dir}: holds best.pt but no last.pt, which a run saves "
                             "first: nothing to resume; move best.pt away or train into "
                             "another folder")
    if not resume:
        saved = None
    elif saved is None:
        saved = saved_config(run_dir)
    kept = config.kept_from(saved, typed)
    config.validate(kept)
    if data is None and not kits:
        raise ParameterError("train: give a dataset folder or --kit folders to train on")
    if data is not None and kits:
        raise ParameterError("train: give either a dataset folder or --kit folders, not both")
    if data is not None and config.synth:
        raise ParameterError("train: synth options shape on-the-fly clips (--kit), "
                             "not a dataset folder's")
    if data is not None and config.guard_weight:
        raise ParameterError("train: the guard synthesises its clips from --kit folders; "
                             "it cannot run on a dataset folder")
    if data is None:  # before a kit is loaded or a clip rendered
        config.check_validation_memory(kept)
    # The stream's seeds are the saved run's, so a resume renders what the run would have
    # rendered uninterrupted (version 1 before it was kept); a new run's are this code's.
    config = with_absolute_paths(replace(config, data=str(data) if data is not None else "",
                                         kits=[str(kit) for kit in kits],
                                         stream_version=(saved.stream_version if saved is not None
                                                         else STREAM_VERSION)))
    earlier = [name for name in ("last.pt", "best.pt") if (run_dir / name).exists()]
    if earlier and not resume:  # hours of training must not go to a forgotten --resume
        raise ParameterError(f"{run_dir}: holds a run already ({', '.join(earlier)}); continue "
                             "it with --resume or train into another folder")
    if saved is not None:  # before anything is built or written: last.pt's weights fit
        check_same_network(config, saved, run_dir)  # no other network
    state = read_state(last_state(run_dir)) if resume else None
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    world = init_world(device)
    if device.type == "cuda" and world.distributed:
        device = torch.device("cuda", world.local_rank)
    try:
        seed_everything(config.seed + world.rank)
        model = initial_model(config, state, kept)
        config.check_losses(model.sample_rate)  # the trainer scores them at the model's rate
        loader, valid, data_info = (folder_data(Path(data), config, world) if data is not None
                                    else synth_data(kits, config, world))
        config = replace(config, data_identity=(dataset_identity(data) if data is not None
                                                else {}),
                         validation_version=VALIDATION_VERSION)  # this code's, whatever saved
        loss = CombinedLoss(config.loss, config.loss_options, model.sample_rate)
        guard_loader = guard_data(kits, config, world) if config.guard_weight else None
        guard = (None if guard_loader is None
                 else TeacherGuard(run_teacher(model, config, state, run_dir,
                                               config.seed + world.rank),
                                   Flatten(guard_loader),
                                   config.guard_weight,
                                   config.guard_high_band, config.guard_ducking))
        trainer = Trainer(model, loss, config, Flatten(loader), valid, run_dir, device, world,
                          report, guard)
        extra = {"data": data_info}  # saved with each checkpoint
        if resume:
            saved_state = with_absolute_paths(trainer.load_state(last_state(run_dir), state))
            trainer.finish_saving(extra)  # before best.pt may be chosen afresh
            changed = saved_state.validation_changes(config)
            if changed:
                trainer.restart_selection()
                warnings.warn(f"resume: {', '.join(changed)} changed, so the validation loss "
                              "is measured afresh; best.pt is chosen again from the next epoch",
                              stacklevel=2)
        for name, each in {"train": loader, "guard": guard_loader}.items():
            if each is not None:
                trainer.data_positions[name] = position = data_position(
                    each, kept_position(each, name, state, world), trainer.batches_done)
                seek(each, position, trainer.batches_done)
        finished = trainer.finished() if resume else ""
        if finished:  # nothing to train: config.json keeps the options the run trained with
            if world.is_main:
                warnings.warn(f"resume: {finished}", stacklevel=2)
        elif world.is_main:  # only now: a refused start leaves the run folder as it was
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
        history = trainer.history if finished else trainer.fit(extra)
        best = run_dir / "best.pt"
        # Never name a best.pt that is not there (a resume with no epochs left of a run that
        # saved none); on every rank, or the others would wait for rank 0 at the barrier.
        if broadcast_flag(world.is_main and not best.is_file(), world):
            raise TrainingError(f"{best}: no epoch of this run was saved as the best; "
                                "train it for more --epochs")
        if world.is_main:  # a finished run's as it left them, or completed where a stop cut them
            write_history(run_dir, history)
            _, info = load_checkpoint(best)
            write_model_card(run_dir / "MODEL_CARD.md", name=run_dir.name, info=info,
                             history=history, steps=trainer.batches_done, data=data_info,
                             parameters=model.parameter_count())
        wait_for_all(world)
        return best
    finally:
        shutdown(world)


def last_state(run_dir: str | Path) -> Path:
    """``RUN/last.pt``, the training state ``--resume`` continues; absent is a user error."""
    last = Path(run_dir) / "last.pt"
    if not last.is_file():
        raise ParameterError(f"{last}: nothing to resume")
    return last


def check_same_network(config: TrainConfig, saved: TrainConfig, run_dir: str | Path) -> None:
    """Refuse to resume a run with another ``model``, ``model_kwargs`` or ``init`` than it was
    trained with (``saved``, from ``saved_config``), naming those: its weights would not load
    (or, same-shaped, would load into a network the run never trained); and the network is
    last.pt's own (``initial_model``), so another ``init`` would be recorded, not used."""
    trained = (saved.model, as_saved(saved.model_kwargs))
    if (config.model, as_saved(config.model_kwargs)) != trained:
        raise ParameterError(
            f"{run_dir}: the run was trained with --model {saved.model} --model-kwargs "
            f"'{json.dumps(saved.model_kwargs)}', not --model {config.model} --model-kwargs "
            f"'{json.dumps(config.model_kwargs)}'; resume it with the same ones, or leave "
            "them out")
    started = absolute_checkpoint(saved.init)
    if config.init != started:
        raise ParameterError(
            f"{run_dir}: the run started from {init_option(started)}, not "
            f"{init_option(config.init)}; a resume continues the network in its last.pt: "
            "leave --init out, or start a new run from that checkpoint")


def init_option(init: str) -> str:
    """An ``init`` as the option that gives it, for messages."""
    return f"--init {init}" if init else "no --init"


def as_saved(value: Any) -> Any:
    """``value`` as a checkpoint holds it (tuples become lists), for comparing with one."""
    return json.loads(json.dumps(value))


def saved_config(run_dir: str | Path) -> TrainConfig:
    """The configuration of the state ``--resume`` continues: a resumed run keeps its model,
    loss, data and schedule options unless the command line changes them. Read from
    ``last.pt`` itself, not ``config.json``, which a failed resume attempt has already
    rewritten with its own options; refused unless its model passes ``check_package``."""
    last = last_state(run_dir)
    package = load_package(last).get("model")
    if not isinstance(package, dict) or not isinstance(package.get("training_config"), dict):
        raise ParameterError(f"{last}: not a training state")
    check_package(last, package)
    return TrainConfig.from_dict(package["training_config"])


def with_absolute_paths(config: TrainConfig) -> TrainConfig:
    """``config`` with its data, kit and checkpoint paths absolute. Why: stored as typed, a
    relative path resumed from another folder named whatever lay there, trained on (or
    held to, for the guard's teacher) without a word. A run that stored relative ones still
    resumes from the folder it was started in."""
    return replace(config, data=absolute(config.data) if config.data else "",
                   kits=[absolute(kit) for kit in config.kits],
                   init=absolute_checkpoint(config.init),
                   guard_teacher=absolute_checkpoint(config.guard_teacher))


def absolute_checkpoint(name: str) -> str:
    """A ``--init`` or ``--guard-teacher`` value made absolute; "" and "default" are words."""
    return name if name in ("", "default") else absolute(name)


def absolute(path: str) -> str:
    """``path`` absolute, ``~`` expanded as ``load_kit`` does, symlinks kept (a kit's folder
    name is the name the model card gives it)."""
    return os.path.abspath(os.path.expanduser(path))


def dataset_identity(root: str | Path) -> dict[str, Any]:
    """What a dataset folder's manifest says it is: its ``IDENTITY_FIELDS`` and how many
    clips it holds (as a checkpoint holds them), kept with a run as ``data_identity``."""
    manifest = read_manifest(root)
    return as_saved({**{name: manifest[name] for name in IDENTITY_FIELDS if name in manifest},
                     "clips": len(manifest["clips"])})


def resumed_data(saved: TrainConfig) -> tuple[str | None, list[str]]:
    """The dataset folder and kits a resumed run continues on when the command line names
    none: the run's own (``saved``), refused when they are gone or when the folder now holds
    another dataset than the run recorded, which it would otherwise train on silently. DATA
    or --kit given on the command line override them, unchecked."""
    for path in [saved.data] if saved.data else saved.kits:
        if not Path(path).exists():
            raise ParameterError(f"resume: {path}, the run's data, is not there; give DATA or "
                                 "--kit to resume it on data elsewhere")
    if saved.data and saved.data_identity:
        found = dataset_identity(saved.data)
        if found != saved.data_identity:
            there = identity_difference(found, saved.data_identity)
            trained = identity_difference(saved.data_identity, found)
            raise ParameterError(f"resume: {saved.data} holds another dataset ({there}) than "
                                 f"the run was trained on ({trained}); give DATA to resume "
                                 "on it anyway")
    return saved.data or None, saved.kits


def identity_difference(identity: dict[str, Any], other: dict[str, Any]) -> str:
    """The fields of a ``dataset_identity`` in which it differs from ``other``, for one line."""
    return ", ".join(f"{name} {identity.get(name, 'none')}" for name in identity | other
                     if identity.get(name) != other.get(name))


def check_package(last: Path, package: dict[str, Any]) -> None:
    """Run the checkpoint checks of ``--init`` (fields, format version, weights that fit and
    are finite) on a training state's model. Why: a state of a newer debleed resumed
    without a word, its options read as this version's, where ``--init`` refuses it."""
    try:
        rebuild(package)
    except ModelError as exc:
        raise ModelError(f"{last}: {exc}") from None


def config_with(base: TrainConfig, **overrides: Any) -> TrainConfig:
    """``base`` with the CLI options that were given (None = keep).

    A ``model`` given beside an ``init`` (given now, or the resumed run's) is refused
    before anything is written: the network is the checkpoint's regardless, so the
    preset would be ignored while the run recorded it. Checked here, where a given
    preset is told from ``TrainConfig``'s default, which ``run_training`` cannot do."""
    config = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    model = overrides.get("model")
    if model is not None and config.init:
        raise ParameterError(f"--model {model}: the model is --init {config.init}'s; leave "
                             "--model out (--model-kwargs grows that model)")
    return config

"""Training configuration: one dataclass, saved to the run folder and into checkpoints."""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from denoiser.errors import ParameterError
from denoiser.hiss_cut import HISS_CUT_HZ

from .bounds import check_number, check_whole
from .errors import DatasetError
from .grooves import GrooveConfig
from .snaremic import MicConfig
from .synth import CLIP_SECONDS, SynthConfig


# What the validation clips and the loss scored on them are made from: an epoch of a resumed
# run that changes one of these cannot be compared with the best epoch before the change.
VALIDATION_FIELDS = ("loss", "loss_options", "synth", "valid_clips", "seed", "data", "kits",
                     "validation_version")
# How validation is done (``TrainConfig.validation_version``): 2 since 2026-12-06, its clips
# spread through the split (``run.spread``) and its loss scored at the model's rate. A run
# saved before has no such field and reads as 1, so its resume picks best.pt afresh.
VALIDATION_VERSION = 2
# Which seeds the on-the-fly stream renders its clips from (``TrainConfig.stream_version``,
# ``dataset.stream_clip_seed``): 2 since 2026-12-07, a seed domain of its own. Version 1's
# clip k was clip k of ``dataset synth`` with the same seed, its validation clips included.
# A run saved before has no such field and reads as 1, so its resume renders what it would
# have rendered uninterrupted.
STREAM_VERSION = 2

# float16 would also need a gradient scaler; bfloat16 has float32's range and needs none.
TRAIN_PRECISIONS = ("float32", "bfloat16")

# The shortest training segment: the centred STFTs of the default losses (windows up to
# 2048 samples) and of the models reflect half a window at each end, which needs more
# samples than that even at the thesis model's 20 kHz.
MIN_SEGMENT_SECONDS = 0.1
# "adamw" decouples the weight decay from the gradient (Loshchilov and Hutter 2019);
# "adam" (torch.optim.Adam) adds it to the gradient, an L2 penalty.
OPTIMIZERS = ("adam", "adamw")
# AdamW shrinks every weight by lr x weight_decay a step (Adam adds weight_decay x weight to
# the gradient): far past 1 the decay, not the loss, sets the weights.
MAX_WEIGHT_DECAY = 1.0
# Seeds are offset (validation, guard, rank) and must stay within torch's 64-bit seed.
SEED_LIMIT = 2**63
# The rate of every dataset folder and kit the trainer reads (training/trainer.py).
DATA_RATE = 48000
# Bytes of one sample of a training pair: noisy and clean, float32.
PAIR_BYTES = 2 * 4
# A training step holds its batch's waveforms many times over (copies at the model's rate,
# the losses' STFTs, the network's activations and their gradients): one CPU step of 2 s
# segments peaked at 73-89 times them for bandmask, 155 for thesis. A batch whose waveforms
# take more than the machine's memory over this factor can be stepped by no preset; it lies
# below those so that nothing else is refused, on a GPU (whose memory holds the activations
# there) as long as the machine has half the GPU's memory.
STEP_MEMORY_FACTOR = 32
# On-the-fly synthesis renders its validation clips once and keeps them all run, beside the
# training: they may take at most this share of the machine's memory.
VALID_MEMORY_SHARE = 0.25
# Loader processes (--workers) and torch threads (--threads) per CPU core at most: more only
# wait for each other, each worker a process with its own copy of the data pipeline; a few
# per core leave room for workers that wait on a disk. --workers 100000 began starting that
# many processes, and --threads 1000000 ran libgomp out of memory.
MAX_PER_CORE = 4
# The memory assumed where the system does not say (``os.sysconf`` is POSIX's): a large
# workstation's, so that only what none could hold is refused.
ASSUMED_MEMORY = 256 * 2**30
# Each number field's bounds: low, high and what else a refusal says (``bounds.check_number``'s
# options; a count, an int field, is checked by ``check_whole``). Patience 0 would stop after
# the first epoch, or lower the rate after every one, improving or not; a guard batch of none
# is none whether the guard runs or not; a saved run's validation version is 1 or more
# (``TrainConfig.from_dict``), and its stream version one this code can render.
NUMBER_BOUNDS: dict[str, tuple[float, float, dict[str, Any]]] = {
    "lr": (0.0, math.inf, {"low_open": True}),
    "weight_decay": (0.0, MAX_WEIGHT_DECAY, {"why": "typically 1e-4 to 0.1"}),
    "batch_size": (1, math.inf, {}),
    "segment_seconds": (MIN_SEGMENT_SECONDS, CLIP_SECONDS[1],
                        {"why": "seconds from the losses' longest window to the longest clip "
                                "(96000 asked the loss check for 37 GB)"}),
    "steps_per_epoch": (1, math.inf, {}),
    "epochs": (1, math.inf, {}),
    "grad_clip": (0.0, math.inf, {}),
    "plateau_patience": (1, math.inf,
                         {"why": "epochs without improvement before the rate is lowered"}),
    "plateau_factor": (0.0, 1.0, {"low_open": True, "high_open": True,
                                  "why": "the factor that lowers the learning rate"}),
    "early_stop_patience": (1, math.inf,
                            {"why": "epochs without improvement before the run stops"}),
    "gain_jitter_db": (0.0, math.inf, {}),
    "ema_decay": (0.0, 1.0, {"high_open": True}),
    "valid_clips": (1, math.inf, {}),
    "validation_version": (1, math.inf, {}),
    "stream_version": (1, STREAM_VERSION, {"why": "the seed schemes of the on-the-fly stream"}),
    "max_minutes": (0.0, math.inf, {}),
    "seed": (0, SEED_LIMIT - 1, {}),
    "num_workers": (0, math.inf, {}),
    "threads": (0, math.inf, {}),
    "guard_weight": (0.0, math.inf, {}),
    "guard_batch_size": (1, math.inf, {}),
    "guard_high_band": (0.0, math.inf, {}),
    "guard_ducking": (0.0, math.inf, {}),
    "cut_input_share": (0.0, 1.0, {"why": "the share of training steps read through the cut"}),
    "cut_input_hz": (0.0, math.inf, {"low_open": True}),  # below the Nyquist: run_training
}
PER_CORE = ("num_workers", "threads")  # also at most MAX_PER_CORE per CPU core
# The ``train`` options whose names are not their fields' with "-" for "_", and the fields
# no option sets by name, named as fields (``TrainConfig.option``).
OPTION_NAMES = {"num_workers": "--workers"}
NO_OPTION = frozenset(("gain_jitter_db", "validation_version", "stream_version", "data", "kits",
                       "data_identity"))


@dataclass
class TrainConfig:
    model: str = "bandmask"                  # a preset name from denoiser.models.PRESETS
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    init: str = ""                           # start from this checkpoint ("default": shipped)
    freeze: list[str] = field(default_factory=list)  # module names kept fixed, e.g. members.0
    loss: dict[str, float] = field(
        default_factory=lambda: {"mrstft": 1.0, "envelope": 0.5, "snr": 0.05})
    # constructor arguments of a loss part, e.g. {"mrstft": {"floor_db": -70}}
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    lr: float = 1e-3
    optimizer: str = "adamw"                 # one of OPTIMIZERS
    weight_decay: float = 1e-4
    batch_size: int = 16
    segment_seconds: float = 2.0
    steps_per_epoch: int = 200
    epochs: int = 50
    grad_clip: float = 5.0                   # the gradient's largest global norm, 0 = no clip
    plateau_patience: int = 3                # epochs without improvement before LR x factor,
                                             # counted as for early stopping (>= 1)
    plateau_factor: float = 0.5
    early_stop_patience: int = 8             # epochs without improvement before stopping
    gain_jitter_db: float = 3.0              # random level change per training segment
    ema_decay: float = 0.0                   # weight EMA per step (e.g. 0.999) for validation
                                             # and best.pt; 0 = the live weights
    valid_clips: int = 24
    validation_version: int = VALIDATION_VERSION  # set by the code, not an option
    stream_version: int = STREAM_VERSION     # set by the code: a new run's, a resume's saved
    keep_epochs: bool = False                # also save every epoch's weights, for selection
                                             # after the run (RUN/epochs/epoch_NNN.pt)
    max_minutes: float = 0.0                 # wall-clock budget, 0 = none
    seed: int = 0
    num_workers: int = 0
    threads: int = 0                         # torch CPU threads, 0 = torch's default
    device: str = "auto"
    precision: str = "float32"               # "bfloat16": the forward pass under autocast
                                             # (tensor cores on a GPU); loss, weights float32
    # SynthConfig fields for on-the-fly synthesis (--kit), e.g. {"procedural_snare_probability":
    # 0.25} or {"groove": {"roll_probability": 0.25}}; empty = the dataset defaults. Unused
    # when training on a dataset folder.
    synth: dict[str, Any] = field(default_factory=dict)
    # The teacher guard (training/guard.py), with --init and --kit: each step also charges
    # the student's output on a small batch of ``guard_synth`` clips (``synth`` with these
    # options on top) against the frozen starting model's, times ``guard_weight``; 0 = off.
    guard_weight: float = 0.0
    guard_batch_size: int = 4
    guard_synth: dict[str, Any] = field(
        default_factory=lambda: {"procedural_snare_probability": 1.0})
    # With the guard: also hold the training batch's band above 5 kHz inside the snare's hits
    # to the teacher's output, times this weight (training/guard.py); 0 = off.
    guard_high_band: float = 0.0
    # With the guard: also charge the ducking of its clips below their clean snares (not the
    # teacher's output), times this weight (training/guard.py); 0 = off.
    guard_ducking: float = 0.0
    # With the guard: its teacher, a checkpoint ("default": the shipped model); "" = the
    # --init model as it starts. Why: a network grown with a change of its input (e.g.
    # ``input_max_hz``) starts as a different model, and the guard should hold it to the one
    # whose behaviour on unfamiliar snares was measured.
    guard_teacher: str = ""
    # A share of the training steps whose forward pass reads only the bins at or below
    # ``cut_input_hz`` (denoiser.models.ensemble.input_cut), as the engine reads a track with
    # a recording floor above its hiss cut (InferenceConfig.hiss_cut_hz); 0 = every step reads
    # every bin; bandmask models and their ensembles without a deep filter. Why: fine-tunes
    # trained with every bin read let the cut path drift unchecked, and it lost hits their
    # starting model kept (docs/model.md, forty-sixth round). The guard's teacher still reads
    # every bin: its output on floorless clips is what the cut path should give. BatchNorm's
    # running statistics stay the whole band's (Trainer.restore_statistics).
    cut_input_share: float = 0.0
    cut_input_hz: float = HISS_CUT_HZ
    # Where the clips came from, a dataset folder or kit folders (absolute paths); filled in
    # by run_training and saved with the run, so that ``--resume`` continues on the same data
    # by itself, from any folder.
    data: str = ""
    kits: list[str] = field(default_factory=list)
    # What the dataset folder's manifest said it is (source, seed, kits, clip count) when the
    # run trained on it: ``--resume`` refuses the folder at ``data`` if it now holds another.
    data_identity: dict[str, Any] = field(default_factory=dict)

    def validate(self, kept: Collection[str] = ()) -> "TrainConfig":
        """Refuse what no run could train with, in one line each. ``kept``: the fields a
        resume kept from its saved run (``kept_from``), so marked (``option``)."""
        self.check_numbers(kept)
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"train: {self.option('optimizer', kept)}: must be one of "
                                 f"{', '.join(OPTIMIZERS)}")
        for option, value in (("--guard-high-band", self.guard_high_band),
                              ("--guard-ducking", self.guard_ducking)):
            if value and not self.guard_weight:
                raise ParameterError(f"train: {option} is a term of the guard: "
                                     "it needs --guard-weight > 0")
        if self.cut_input_hz != HISS_CUT_HZ and not self.cut_input_share:
            raise ParameterError(f"train: {self.option('cut_input_hz', kept)}: is where "
                                 "--cut-input-share's steps cut: it needs --cut-input-share > 0")
        if self.guard_teacher and not self.guard_weight:
            raise ParameterError("train: --guard-teacher is the guard's teacher: it needs "
                                 "--guard-weight > 0")
        if self.guard_weight and not self.init:
            raise ParameterError("train: the guard needs --init (its teacher)")
        self.check_guard_loss()
        self.check_batch_memory(kept)
        if self.precision not in TRAIN_PRECISIONS:
            raise ParameterError(f"train: {self.option('precision', kept)}: must be one of "
                                 f"{', '.join(TRAIN_PRECISIONS)}")
        self.check_losses(DATA_RATE)
        self.synth_config()
        self.guard_synth_config()
        return self

    def check_numbers(self, kept: Collection[str] = ()) -> None:
        """Refuse a number field outside its ``NUMBER_BOUNDS`` (``bounds.check_number``, a
        count's ``check_whole``), and --workers or --threads past ``MAX_PER_CORE`` of this
        machine's cores; each named as typed (``option``, ``kept`` as for ``validate``)."""
        cores = os.cpu_count() or 1  # None where it cannot tell
        per_core = (f"{MAX_PER_CORE} per CPU core ({cores} core{'s' * (cores != 1)}): "
                    "more only wait for each other")
        for spec in fields(self):
            if spec.type not in ("int", "float"):
                continue
            low, high, options = NUMBER_BOUNDS[spec.name]
            if spec.name in PER_CORE:
                high, options = min(high, MAX_PER_CORE * cores), {**options, "why": per_core}
            check = check_whole if spec.type == "int" else check_number
            check("train:", spec.name, getattr(self, spec.name), low, high,
                  shown=self.option(spec.name, kept), **options)

    def check_guard_loss(self) -> None:
        """Refuse a guard whose loss is all ``hitlevel``: the guard scores the run's loss
        against its teacher's output, which names no snare hits, so its term would be 0
        and the run unguarded without a word."""
        from .losses import LOSSES, needs_hits

        if self.guard_weight and self.loss and all(
                name in LOSSES and needs_hits(LOSSES[name]) for name in self.loss):
            raise ParameterError("train: the guard scores the loss against its teacher's "
                                 "output, which names no snare hits, so a --loss of hitlevel "
                                 "alone leaves it nothing: weight another part too")

    def check_losses(self, sample_rate: int) -> None:
        """Refuse unknown or empty losses, options they do not take, and options that cannot
        score a training segment at ``sample_rate``. ``validate`` checks at the data's rate,
        before a model exists; ``run_training`` again at the model's, where the trainer
        scores them: a 0.1 s segment has 2000 samples for a 20 kHz thesis model, not 4800,
        and a 4096-sample window passed here, then failed mid-training."""
        from .losses import CombinedLoss, check_on_segment

        try:
            check_on_segment(CombinedLoss(self.loss, self.loss_options, sample_rate),
                             self.segment_samples(sample_rate))
        except ValueError as exc:
            raise ParameterError(f"train: {exc}") from None

    def kept_from(self, saved: "TrainConfig | None",
                  typed: Collection[str] = ()) -> frozenset[str]:
        """The fields whose values a resume kept from its saved configuration ``saved``:
        those not ``typed`` (the options its command line gave) that hold ``saved``'s value.
        Why ``typed``: a saved value typed again (``--resume --workers 14``) is the user's,
        and was marked as saved, as if never typed."""
        if saved is None:
            return frozenset()
        return frozenset(spec.name for spec in fields(self) if spec.name not in typed
                         and getattr(saved, spec.name) == getattr(self, spec.name))

    def option(self, name: str, kept: Collection[str] = ()) -> str:
        """The field ``name`` as its ``train`` option is typed (``--workers 14``), marked as
        this run's saved value where a resume ``kept`` it (``kept_from``). Why: a run saved
        with --workers 14 on a 16-core machine, resumed on a 2-core one, was refused as if
        --workers 14 had been typed, and errors named some options by field
        (``valid_clips = 0``), others by flag. A field no option sets (``NO_OPTION``) is
        named as a field: ``gain_jitter_db = -1.0``."""
        value = getattr(self, name)
        typed = (f"{name} = {value}" if name in NO_OPTION
                 else f"{OPTION_NAMES.get(name, '--' + name.replace('_', '-'))} {value}")
        return typed + (" (this run's saved value)" if name in kept else "")

    def check_batch_memory(self, kept: Collection[str] = ()) -> None:
        """Refuse a batch that no training step could hold in this machine's memory
        (``STEP_MEMORY_FACTOR``), the guard's segments included: they ride in the same
        forward pass. Why: with --kit, where no clip count bounds a batch, --batch-size and
        --guard-batch-size 1e9 ended in a MemoryError traceback once the loader began.
        ``kept`` as for ``validate``."""
        memory = machine_memory()
        most = memory // (self.segment_samples(DATA_RATE) * PAIR_BYTES * STEP_MEMORY_FACTOR)
        why = (f"fit a training step in this machine's {gib(memory)} (a step holds about "
               f"{STEP_MEMORY_FACTOR} times its segments' waveforms)")
        if self.batch_size > most:
            raise ParameterError(f"train: {self.option('batch_size', kept)}: at most {most} "
                                 f"segments of {self.segment_seconds:g} s {why}")
        if self.guard_weight and self.batch_size + self.guard_batch_size > most:
            raise ParameterError(f"train: {self.option('guard_batch_size', kept)}: at most "
                                 f"{most - self.batch_size} beside "
                                 f"{self.option('batch_size', kept)}: {most} segments of "
                                 f"{self.segment_seconds:g} s {why}")

    def check_validation_memory(self, kept: Collection[str] = ()) -> None:
        """Refuse more validation clips of on-the-fly synthesis than ``VALID_MEMORY_SHARE``
        of this machine's memory holds: they are rendered at the start and kept all run.
        Why: --kit --valid-clips 1000000 rendered clips (3.8 MB each) until the machine ran
        out of memory. A dataset folder's are bounded by the clips it has. ``kept`` as for
        ``validate``."""
        synth, memory = self.synth_config(), machine_memory()
        clip = int(round(synth.clip_seconds * synth.sample_rate)) * PAIR_BYTES
        most = int(memory * VALID_MEMORY_SHARE) // clip
        if self.valid_clips > most:
            raise ParameterError(f"train: {self.option('valid_clips', kept)}: at most {most} "
                                 f"validation clips of {synth.clip_seconds:g} s fit "
                                 f"{VALID_MEMORY_SHARE:.0%} of this machine's {gib(memory)} "
                                 "(on-the-fly synthesis keeps them in memory all run)")

    def segment_samples(self, sample_rate: int) -> int:
        """Samples in one training segment at ``sample_rate``: segments are cut at the 48 kHz
        of every dataset and kit, then resampled to the model's rate."""
        return int(round(self.segment_seconds * sample_rate))

    def synth_config(self) -> SynthConfig:
        """The clips of on-the-fly synthesis: ``SynthConfig`` with ``synth`` applied."""
        return synth_config_with(self.synth)

    def guard_synth_config(self) -> SynthConfig:
        """The guard's clips: the run's synthesis with ``guard_synth`` on top, setting by
        setting, inside ``groove`` and ``mic`` and their dicts too: a guard that changes one
        style's weight keeps the run's other weights and settings."""
        return synth_config_with(merged(self.synth, self.guard_synth, depth=3), "guard synth")

    def validation_changes(self, other: "TrainConfig") -> list[str]:
        """The ``VALIDATION_FIELDS`` in which ``other`` differs from this configuration.

        Data is compared by what it is, not where it lies: a dataset by its identity when
        both runs recorded one (the same folder may now hold another dataset; a copy
        elsewhere is the same one), kits by their folder names (a checkout on another
        machine lies elsewhere)."""
        return [name for name in VALIDATION_FIELDS
                if self._validation_value(name, other) != other._validation_value(name, self)]

    def _validation_value(self, name: str, other: "TrainConfig") -> Any:
        if name == "data" and self.data_identity and other.data_identity:
            return self.data_identity
        if name == "kits":
            return [Path(kit).name for kit in self.kits]
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """A saved run's config. A run saved with ``plateau_patience`` 0 (accepted until
        2026-12-07, when the count was one short) lowered the rate at the first bad epoch,
        which is 1 now: read so, its resume keeps its schedule instead of being refused.
        Saved before they were kept, the validation and stream versions read as 1. A guard
        batch of 0 in a run without the guard (accepted there until 2026-12-07) was never
        used: it reads as the default, so the run resumes without a flag to mend it."""
        known = {f.name for f in fields(cls)}
        saved = {k: v for k, v in data.items() if k in known}
        if saved.get("plateau_patience") == 0:
            saved["plateau_patience"] = 1
        if saved.get("guard_batch_size") == 0 and not saved.get("guard_weight"):
            saved["guard_batch_size"] = cls.guard_batch_size
        return cls(**{"validation_version": 1, "stream_version": 1, **saved})


def machine_memory() -> int:
    """Bytes of physical memory, or ``ASSUMED_MEMORY`` where the system does not say. The
    whole memory, not what is free now: the bounds refuse what can never run, and a run
    should not be refused for what other programs hold at the moment."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return ASSUMED_MEMORY
    return memory if memory > 0 else ASSUMED_MEMORY


def gib(size: int) -> str:
    """``size`` bytes in GiB, for messages."""
    return f"{size / 2**30:.1f} GiB"


def synth_config_with(options: dict[str, Any], what: str = "synth",
                      command: str = "train") -> SynthConfig:
    """``SynthConfig`` with ``options`` applied. Its number and range fields can be set,
    each as ``SynthConfig.validate`` allows (the checks ``render_dataset`` makes too); a
    range is given as ``[low, high]`` (JSON has no tuples). ``groove`` and ``mic`` take an
    object of the groove generator's and the snare mic's settings (``nested_with``): a round
    that aims at one kind of passage (a roll's soft first stroke on a loud kick) has to weigh
    its grooves, and only Python could. ``command`` (``train``, ``dataset synth``) opens
    each error's line."""
    numbers = {f.name for f in fields(SynthConfig)
               if f.type in ("float", "int") and f.name != "sample_rate"}
    ranges = {f.name for f in fields(SynthConfig) if f.type == "tuple[float, float]"}
    known = numbers | ranges | set(NESTED_SYNTH)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ParameterError(f"{command}: unknown {what} option {unknown}; "
                             f"known: {sorted(known)}")
    nested = {name: nested_with(kind(), options[name], f"{command}: {what} option {name}")
              for name, kind in NESTED_SYNTH.items() if name in options}
    config = replace(SynthConfig(), **{**options, **nested})
    try:
        config.validate(f"{command}: {what} option")
    except DatasetError as exc:  # the clip length, in ``dataset synth``'s words
        raise ParameterError(f"{command}: {what} option clip_seconds: {exc}") from None
    return as_declared(replace(config, **{name: as_declared(value)
                                          for name, value in nested.items()}))


def dataset_synth_config(options: dict[str, Any], flags: dict[str, Any], as_recorded: bool,
                         midi: bool) -> SynthConfig:
    """``dataset synth``'s ``SynthConfig``: its ``--synth`` JSON ``options``, the settings
    given as flags of their own (``flags``: ``clip_seconds``, ``floor_probability`` ...) and
    ``--as-recorded``. A setting given twice is refused rather than one copy winning in
    silence, as is a ``groove`` beside ``--midi``, whose performances replace the grooves it
    would set."""
    what = "dataset synth:"
    twice = sorted(flags.keys() & options.keys())
    if twice:
        raise ParameterError(f"{what} --{twice[0].replace('_', '-')} and --synth's {twice[0]}: "
                             "give it once")
    if midi and "groove" in options:
        raise ParameterError(f"{what} --synth's groove sets the generated grooves, which --midi "
                             "replaces: give one of them")
    config = replace(synth_config_with(options, command="dataset synth"), **flags)
    if not as_recorded:
        return config
    default = _dotted(SynthConfig().to_dict())
    recorded = _dotted(SynthConfig().as_recorded().to_dict())
    twice = sorted(name for name in _dotted(options) if recorded.get(name) != default.get(name))
    if twice:
        raise ParameterError(f"{what} --as-recorded sets --synth's {twice[0]} to "
                             f"{recorded[twice[0]]:g}: give it once")
    return config.as_recorded()


def _dotted(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``settings`` flat, a nested dict's keys named by their path (``mic.snare_eq_probability``):
    what ``--as-recorded`` sets is read off ``SynthConfig.as_recorded`` this way, not listed
    again beside it."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


#: ``--synth``'s nested settings: the option's name and the dataclass it sets.
NESTED_SYNTH: dict[str, type] = {"groove": GrooveConfig, "mic": MicConfig}


def merged(base: dict[str, Any], top: dict[str, Any], depth: int) -> dict[str, Any]:
    """``top`` over ``base`` key by key, the dicts both hold merged the same way down to
    ``depth`` levels (``--synth``'s ``groove`` holds ``style_weights``: depth 3)."""
    result = {**base, **top}
    if depth > 1:
        result.update({key: merged(base[key], top[key], depth - 1)
                       for key in base.keys() & top.keys()
                       if isinstance(base[key], dict) and isinstance(top[key], dict)})
    return result


def nested_with(default: Any, options: Any, what: str) -> Any:
    """``default`` (a ``GrooveConfig`` or ``MicConfig``) with ``options``, a JSON object of
    its fields, applied. A dict setting (``style_weights``, ``gain_db``) names only the keys
    it changes, the rest keep their defaults: ``{"style_weights": {"swell": 3}}`` weighs one
    style up rather than removing seven. Values are checked by ``SynthConfig.validate``."""
    if not isinstance(options, dict):
        raise ParameterError(f"{what} = {options!r}: must be a JSON object of "
                             f"{type(default).__name__} settings")
    known = {spec.name for spec in fields(default)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ParameterError(f"{what}: unknown setting {unknown}; known: {sorted(known)}")
    current = {name: getattr(default, name) for name in options}
    return replace(default, **merged(current, options, depth=2))


def as_declared(config: Any) -> Any:
    """A validated ``SynthConfig``, ``GrooveConfig`` or ``MicConfig`` with JSON's values as
    its defaults hold them: ranges (``[low, high]``, in dicts too: ``gain_db``) as tuples of
    floats, and whole numbers given to a float setting (``floor_probability``, a style's
    weight) as floats, so that a manifest records ``--synth '{"floor_probability": 1}'`` as
    ``--floor-probability 1`` does, 1.0."""
    def declared(kind: Any, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: declared("float", item) for key, item in value.items()}
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return as_range(value)

    return replace(config, **{spec.name: declared(spec.type, getattr(config, spec.name))
                              for spec in fields(config)})


def as_range(value: Any) -> Any:
    """A validated JSON ``[low, high]`` as the ``(low, high)`` of floats the synthesiser's
    ranges are; anything else as it is."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(float(item) for item in value)
    return value

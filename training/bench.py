"""``debleed bench``: the benchmark of SPEC 6 -- quality against baselines, and speed.

Quality: a fixed, seeded test set rendered from the public test kit (never trained or
tuned on), scored with ``training.metrics`` for six systems: the input unchanged, the
pre-gate at its defaults, the pre-gate with the best threshold per clip (an oracle that
tries every threshold of a grid and keeps the one with the highest SI-SDR: the best a
careful engineer could set by ear), the thesis-style baseline, the debleed model, and
the gate followed by the model; and, as a reference rather than a competitor, the ideal
real-valued mask computed from the clean snare (``oracles.ideal_mask``): the best any
mask on the model's STFT could do, which shows which targets a mask can reach at all.
The same systems score the test clips a second time with a recording floor (a preamp's
white hiss, a dithered 16-bit export: ``training.recording``), since real tracks are never
digitally silent between hits and a clean test set hides how a model meets that floor.

Speed: the real-time factor (audio seconds per wall second) of the model alone through
``Denoiser.denoise`` (levelling, resampling and STFT included) on a 60-s file, and of the
whole ``debleed denoise`` process (interpreter start-up, model load, read, write) on a
10-minute file. Each measurement runs in a fresh child process so its peak memory
(``VmHWM``, see ``peak_rss_mib``) is its own, not the benchmark's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from denoiser import __version__
from denoiser.audio import check_output_folder, read_audio, write_audio
from denoiser.engine import Denoiser, InferenceConfig
from denoiser.errors import ModelError, ParameterError
from denoiser.gate import MIN_THRESHOLD_DB, GateConfig
from denoiser.hiss_cut import HISS_CUT_HZ
from denoiser.outfiles import replaced_together, write_text_atomic
from denoiser.pretrained import THESIS_BASELINE, default_model_path

from . import metrics, report
from .bounds import check_number, check_whole
from .targets import BEATS_LEGEND, check_targets, targets_markdown
from .errors import KitError
from .evaluate import denoise_mono, process_clip, score_systems
from .oracles import IDEAL_MASK_FFT, IDEAL_MASK_HOP, ideal_mask, oracle_gate
from .recording import EXPORT_BITS

if TYPE_CHECKING:
    from .synth import SynthConfig

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
TEST_KIT = DRUMKITS / "The Black Pearl 1.0"
TEST_SEED = 20240601  # the test set's dataset seed (clip i uses synth.clip_seed(TEST_SEED, i))
# The acoustic kits of hydrogen-drumkits that share no sample with the training kits of
# SPEC 4 (checked by ``shared_layers``); clip i of the held-out set uses kit i mod 2. The
# other untrained kits are electronic (Audiophob's "8bit snare", TR808, VariBreaks' V-Synth
# sounds...): not what a snare close mic hears.
HELDOUT_KITS: tuple[Path, ...] = tuple(DRUMKITS / name for name in
                                       ("Millo_MultiLayered3", "BJA_Pacific"))
HELDOUT_SEED = 20241111
TRAINING_KITS: tuple[Path, ...] = tuple(DRUMKITS / name for name in (
    "GMRockKit", "ForzeeStereo", "Millo-Drums_v.1", "Millo_MultiLayered2",
    "ColomboAcousticDrumkit", "rumpf_kit_z01_h2"))  # SPEC 4
ORACLE_THRESHOLDS_DB: tuple[float, ...] = tuple(float(t) for t in range(-60, -4, 2))  # -60..-6
# The speed files' shortest and longest length (s): the model is warmed up on one second of
# its file, and an hour is six times the default process file (the tiling holds it in memory).
SPEED_SECONDS = (1.0, 3600.0)
SPEED_RATE = 48000  # the speed files', the test clips' (training.kits.KIT_RATE)
MAX_SPEED_RUNS = 100

# Row name -> audio version of the clip it scores.
ROWS: dict[str, str] = {
    "input (unchanged)": "noisy",
    "gate (defaults)": "gated",
    "gate (oracle threshold)": "oracle_gated",
    "thesis baseline": "thesis",
    "debleed": "denoised",
    "gate + debleed": "gate_denoised",
    "ideal mask (oracle)": "ideal_masked",
    "clean snare (perfect output)": "clean",
}

Progress = Callable[[float, str], None]  # (fraction done, note)


@dataclass(frozen=True)
class BenchConfig:
    """Every setting of the benchmark; ``quick_config()`` gives the under-two-minutes subset."""

    kit: Path = TEST_KIT
    model: str | Path | None = None  # None: the shipped default model
    baseline: Path = THESIS_BASELINE
    clips: int = 40
    clip_seconds: float = 10.0
    seed: int = TEST_SEED
    device: str = "auto"
    gate: GateConfig = field(default_factory=GateConfig)
    oracle_thresholds_db: tuple[float, ...] = ORACLE_THRESHOLDS_DB
    model_speed_seconds: float = 60.0
    process_speed_seconds: float = 600.0
    speed_baseline: bool = True  # also time the thesis baseline alone
    # Timed runs of each model alone; the median is the figure. One run was the figure
    # before, and this 2-core VM's speed moves by a fifth from one hour to the next.
    model_speed_runs: int = 5
    heldout_kits: tuple[Path, ...] = HELDOUT_KITS  # those not installed are left out
    heldout_clips: int = 36
    heldout_seed: int = HELDOUT_SEED
    training_kits: tuple[Path, ...] = TRAINING_KITS  # only to count shared samples
    # The test clips again with a recording floor (the level range is SynthConfig's
    # floor_dbfs): a floor on every clip, a dithered 16-bit export on about half.
    floor_set: bool = True
    floor_probability: float = 1.0
    quantise_probability: float = 0.5
    # The engine's floor test for debleed's quality rows (0: the model read whole); the speed
    # rows time the engine as shipped.
    hiss_cut_hz: float = HISS_CUT_HZ
    quick: bool = False

    def validate(self) -> "BenchConfig":
        """Return ``self`` or raise naming the first setting the benchmark cannot run with.
        Unchecked, a clip length of 0 or -5 s, 0 speed runs or a 0 s speed file failed after
        the quality runs, minutes in. Clips are within ``CLIP_SECONDS``, the speed files
        within ``SPEED_SECONDS``, the oracle's thresholds the gate's; the gate and the hiss
        cut are checked as the engine checks them."""
        from .synth import CLIP_SECONDS

        what = "bench:"
        check_whole(what, "clips", self.clips, 1)
        check_whole(what, "heldout_clips", self.heldout_clips, 0)
        check_number(what, "clip_seconds", self.clip_seconds, *CLIP_SECONDS)
        for name in ("seed", "heldout_seed"):
            check_whole(what, name, getattr(self, name), 0)
        for name in ("model_speed_seconds", "process_speed_seconds"):
            check_number(what, name, getattr(self, name), *SPEED_SECONDS)
        check_whole(what, "model_speed_runs", self.model_speed_runs, 1, MAX_SPEED_RUNS)
        for name in ("floor_probability", "quantise_probability"):
            check_number(what, name, getattr(self, name), 0.0, 1.0)
        if not self.oracle_thresholds_db:
            raise ParameterError(f"{what} oracle_thresholds_db is empty: give the oracle gate "
                                 "at least one threshold")
        for threshold in self.oracle_thresholds_db:
            check_number(what, "oracle_thresholds_db", threshold, MIN_THRESHOLD_DB, 0.0)
        self.gate.validate()
        InferenceConfig(hiss_cut_hz=self.hiss_cut_hz).validate()
        return self

    @classmethod
    def quick_config(cls, **overrides: Any) -> "BenchConfig":
        """6 test clips (plain and with a floor) + 6 held-out, 10-s/30-s speed files, only
        the debleed model timed."""
        base = {"clips": 6, "heldout_clips": 6, "model_speed_seconds": 10.0,
                "process_speed_seconds": 30.0, "speed_baseline": False, "model_speed_runs": 3,
                "quick": True}
        return cls(**{**base, **overrides})


def model_path(config: BenchConfig) -> Path:
    return default_model_path() if config.model in (None, "default") else Path(config.model)


def machine_description() -> dict[str, Any]:
    """Platform, CPU model, cores, torch version and GPU: what a speed figure needs beside it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "debleed": __version__, "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def synth_config(config: BenchConfig, floor: bool = False) -> SynthConfig:
    """The ``SynthConfig`` of the benchmark's clips: each kit as recorded and, with
    ``floor``, the recording floor drawn last, so each clip is the plain one plus its floor."""
    from .synth import SynthConfig

    synth = SynthConfig(clip_seconds=config.clip_seconds).as_recorded()
    if not floor:
        return synth
    return replace(synth, floor_probability=config.floor_probability,
                   quantise_probability=config.quantise_probability)


def _render_set(kit_paths: Sequence[Path], clips: int, seed: int, config: BenchConfig,
                floor: bool = False) -> Iterator[Any]:
    """Clip i: ``clip_seed(seed, i)`` on kit i mod len(kit_paths), each kit as recorded."""
    from .kits import load_kit
    from .synth import clip_seed, render_clip

    kits = [load_kit(path) for path in kit_paths]
    synth = synth_config(config, floor)
    for index in range(clips):
        yield render_clip([kits[index % len(kits)]], clip_seed(seed, index), synth)


def render_test_set(config: BenchConfig) -> Iterator[Any]:
    """The fixed test clips, one at a time: ``clip_seed(seed, i)`` for i < clips, on the test kit."""
    return _render_set([config.kit], config.clips, config.seed, config)


def render_floor_set(config: BenchConfig) -> Iterator[Any]:
    """The test clips (same kit, seeds and count), each with a recording floor: the plain
    test set has none, and real tracks always do."""
    return _render_set([config.kit], config.clips, config.seed, config, floor=True)


def installed_heldout_kits(config: BenchConfig) -> list[Path]:
    return [Path(kit) for kit in config.heldout_kits if Path(kit).is_dir()]


def render_heldout_set(config: BenchConfig, kits: Sequence[Path]) -> Iterator[Any]:
    """Clips from ``kits``, never trained on: the test kit shares samples with a training kit
    (see ``shared_layers``), so only these measure how debleed meets a snare it never heard."""
    return _render_set(kits, config.heldout_clips, config.heldout_seed, config)


def shared_layers(kit_paths: Sequence[Path], others: Sequence[Path]) -> list[tuple[int, int]]:
    """For each of ``kit_paths``, ``(its layers identical to a layer of some kit in others,
    its layer count)``: a test kit that reuses training samples measures memory, not
    generalisation. ``others`` are hashed once for all the kits."""
    from .kits import load_kit

    def digests(path: Path) -> list[str]:
        with warnings.catch_warnings():  # a kit's skipped extras do not matter for counting
            warnings.simplefilter("ignore")
            kit = load_kit(path)
        return [hashlib.sha1(layer.samples.tobytes()).hexdigest()
                for inst in kit.instruments for layer in inst.layers]

    known = {d for other in others if Path(other).is_dir() for d in digests(Path(other))}
    counts = []
    for kit_path in kit_paths:
        own = digests(kit_path)
        counts.append((sum(d in known for d in own), len(own)))
    return counts


class _Steps:
    """Turns "one more step done" into the (fraction, note) progress callback."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done, self.progress = max(1, total), 0, progress

    def step(self, note: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done / self.total, note)


def _stft_of(denoiser: Denoiser) -> tuple[int, int]:
    """The evaluated model's STFT (size, hop), so the ideal mask is its own ceiling; the
    default STFT for a model without one. A ``hop`` alone is no STFT: the thesis model's
    is its 4-sample chunk grid, and a 1024-point STFT at hop 4 took 31 s and 5.6 GB a clip."""
    model = denoiser.model
    if hasattr(model, "n_fft"):
        return model.n_fft, model.hop
    return IDEAL_MASK_FFT, IDEAL_MASK_HOP


def _quality(clips: Iterator[Any], config: BenchConfig, debleed: Denoiser, thesis: Denoiser,
             steps: _Steps, what: str, keep_samples: int = 0) -> dict[str, Any]:
    """Score every system of ``ROWS`` on ``clips``: aggregated rows, oracle thresholds,
    per-clip scores, and the noisy audio of the first clips, until it holds
    ``keep_samples`` (the speed runs reuse it, ``speed_samples``). Every clip's was kept:
    1.9 MB a 10-s clip, 8 GB for 2000 clips, of which a speed file takes ten minutes."""
    per_clip, noisy, held = [], [], 0
    for index, clip in enumerate(clips):
        rate = int(clip.meta["sample_rate"])
        oracle, threshold = oracle_gate(clip.noisy, clip.clean, rate, config.gate,
                                        config.oracle_thresholds_db)
        versions = {"noisy": clip.noisy, "clean": clip.clean, "oracle_gated": oracle,
                    "ideal_masked": ideal_mask(clip.noisy, clip.clean, *_stft_of(debleed)),
                    "thesis": denoise_mono(thesis, clip.noisy, rate),
                    **process_clip(debleed, config.gate, clip.noisy, rate)}
        # What the recording floor put on this clip (nothing on a clip without one).
        chain = {key: clip.meta[key] for key in ("floor_dbfs", "bits") if key in clip.meta}
        per_clip.append({"seed": int(clip.meta["seed"]), "kit": clip.meta["kit"], **chain,
                         "oracle_threshold_db": threshold,
                         "systems": score_systems(versions, rate, clip.meta, ROWS)})
        if held < keep_samples:
            noisy.append(clip.noisy)
            held += clip.noisy.size
        steps.step(f"{what} clip {index + 1}")
    thresholds = [c["oracle_threshold_db"] for c in per_clip]
    return {
        "rows": {row: metrics.aggregate([c["systems"][row] for c in per_clip]) for row in ROWS},
        "oracle_thresholds_db": thresholds,
        "per_clip": per_clip,
        "noisy": noisy,
    }


def peak_rss_mib() -> float | None:
    """This process's own peak resident memory in MiB.

    ``VmHWM`` of /proc/self/status is the high-water mark of the current address space,
    which exec resets. ``ru_maxrss`` is not a substitute: Linux carries the parent's RSS
    at fork into a child's ``ru_maxrss``, so a child of a big benchmark process would
    report the benchmark's memory, not its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows: the table says n/a
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 1024.0)


# Runs a module as ``python -m`` does and records its peak memory on exit (stdlib only,
# so the measured process starts exactly like ``debleed denoise``).
_PEAK_WRAPPER = (
    "import atexit, runpy, sys\n"
    "peak_file, module = sys.argv[1], sys.argv[2]\n"
    "def _peak():\n"
    "    try:\n"
    "        status = open('/proc/self/status').read().splitlines()\n"
    "    except OSError:\n"
    "        return\n"
    "    for line in status:\n"
    "        if line.startswith('VmHWM:'):\n"
    "            open(peak_file, 'w').write(line.split()[1])\n"
    "atexit.register(_peak)\n"
    "sys.argv = [module] + sys.argv[3:]\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)


def _run_child(args: Sequence[str], log: Path) -> tuple[int, float]:
    """Run a child process, output to ``log``; return (exit status, wall seconds)."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        code = subprocess.call(list(args), stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return code, time.perf_counter() - start


def _child_failure(what: str, log: Path) -> ModelError:
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    return ModelError(f"speed run '{what}' failed: {tail[0]}")


def time_model(model: Path, audio_path: Path, device: str, precision: str = "float32",
               runs: int = 1) -> dict[str, Any]:
    """In the child: load, warm up on 1 s, then time ``Denoiser.denoise`` on the whole file
    ``runs`` times; the median is the figure, every run is kept beside it."""
    denoiser = Denoiser.load(model, device, InferenceConfig(precision=precision))
    audio = read_audio(audio_path)
    denoiser.denoise(audio.samples[:, :audio.sample_rate], audio.sample_rate)  # warm-up
    if denoiser.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        denoiser.denoise(audio.samples, audio.sample_rate)
        walls.append(time.perf_counter() - start)
    result = {"wall_seconds": statistics.median(walls), "wall_seconds_runs": walls,
              "threads": torch.get_num_threads(), "device": str(denoiser.device),
              "peak_rss_mib": peak_rss_mib()}
    if denoiser.device.type == "cuda":
        result["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return result


def _speed_model(name: str, model: Path, audio_path: Path, seconds: float, device: str,
                 work: Path, precision: str = "float32", runs: int = 1) -> dict[str, Any]:
    log = work / f"model-{name}-{device}-{precision}.log"
    code, _ = _run_child([sys.executable, "-m", "training.bench", "time-model", str(model),
                          str(audio_path), device, precision, str(runs)], log)
    if code != 0:
        raise _child_failure(f"{name} model alone on {device} in {precision}", log)
    timing = json.loads(log.read_text().strip().splitlines()[-1])
    what = "model alone (Denoiser.denoise)" if precision == "float32" else \
        f"model alone (Denoiser.denoise, {precision})"
    return {"what": what, "model": name, "device": timing["device"],
            "threads": timing["threads"], "audio_seconds": seconds,
            "wall_seconds": timing["wall_seconds"], "rtf": seconds / timing["wall_seconds"],
            "runs": len(timing["wall_seconds_runs"]),
            "rtf_runs": [seconds / wall for wall in timing["wall_seconds_runs"]],
            "peak_rss_mib": timing["peak_rss_mib"], "gpu_peak_mib": timing.get("gpu_peak_mib")}


def _speed_process(model: Path, audio_path: Path, seconds: float, device: str,
                   work: Path) -> dict[str, Any]:
    log = work / f"process-{device}.log"
    out = work / f"process-{device}.debleed.wav"
    peak_file = work / f"process-{device}.peak"
    command = [sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), "debleed.cli.main", "denoise",
               str(audio_path), "-o", str(out), "--model", str(model), "--device", device]
    code, wall = _run_child(command, log)
    if code != 0 or not out.is_file():
        raise _child_failure(f"debleed denoise on {device}", log)
    peak = int(peak_file.read_text()) / 1024.0 if peak_file.is_file() else None
    out.unlink()
    return {"what": "debleed denoise process", "model": "debleed", "device": device,
            "threads": None, "audio_seconds": seconds, "wall_seconds": wall,
            "rtf": seconds / wall, "runs": 1, "rtf_runs": [seconds / wall],
            "peak_rss_mib": peak, "gpu_peak_mib": None}


def speed_samples(config: BenchConfig) -> int:
    """Samples of the longer speed file: as much of the test clips' noisy audio as the speed
    runs read. The first clips that hold this many give both files byte for byte what all
    the clips gave: a file no longer than those clips is their first samples, and when all
    the clips together are shorter, all are kept and tiled."""
    return int(round(max(config.model_speed_seconds, config.process_speed_seconds) * SPEED_RATE))


def _long_file(path: Path, pieces: Sequence[np.ndarray], seconds: float, rate: int,
               subtype: str) -> Path:
    """Tile the test clips' noisy audio to ``seconds`` (real drum content, not noise)."""
    joined = np.concatenate(pieces)
    total = int(round(seconds * rate))
    tiled = np.tile(joined, -(-total // joined.size))[:total]
    return write_audio(path, tiled[None, :].astype(np.float32), rate, subtype=subtype)


def _speed(config: BenchConfig, pieces: Sequence[np.ndarray], steps: _Steps) -> list[dict[str, Any]]:
    rate = SPEED_RATE
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    models = [("debleed", model_path(config))]
    if config.speed_baseline:
        models.append(("thesis baseline", Path(config.baseline)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="debleed-bench-") as tmp:
        work = Path(tmp)
        short = _long_file(work / "model.wav", pieces, config.model_speed_seconds, rate, "FLOAT")
        long = _long_file(work / "process.wav", pieces, config.process_speed_seconds, rate, "PCM_24")
        for device in devices:
            for name, path in models:
                # debleed also in mixed precision, the option users can turn on
                # (debleed denoise --precision bfloat16)
                for precision in ("float32", "bfloat16") if name == "debleed" else ("float32",):
                    rows.append(_speed_model(name, path, short, config.model_speed_seconds,
                                             device, work, precision, config.model_speed_runs))
                    steps.step(f"speed: {name} on {device} in {precision}")
            process = _speed_process(model_path(config), long, config.process_speed_seconds,
                                     device, work)
            # A fresh interpreter picks its thread count like the model-alone child did.
            process["threads"] = rows[-1]["threads"]
            rows.append(process)
            steps.step(f"speed: debleed denoise on {device}")
    return rows


def speed_steps(config: BenchConfig) -> int:
    devices = 1 + int(torch.cuda.is_available())
    return devices * (3 + int(config.speed_baseline))


def preload_kits(kits: Sequence[Path]) -> None:
    """Load every kit before the first clip (``load_kit`` caches them for the renders): a
    kit that cannot serve, a held-out one without a snare say, fails in seconds, not after
    the whole test set has run."""
    from .kits import load_kit

    for kit in kits:
        load_kit(kit)


def _model_facts(name: str, path: Path, denoiser: Denoiser) -> dict[str, Any]:
    return {"name": name, "path": str(path), "architecture": denoiser.model.name,
            "sample_rate": denoiser.sample_rate, "parameters": denoiser.model.parameter_count(),
            "file_bytes": path.stat().st_size}


def run_bench(config: BenchConfig, out: str | Path | None = "bench_out",
              progress: Progress | None = None) -> dict[str, Any]:
    """Run the benchmark; write ``bench.json`` and ``bench.md`` into ``out`` (if given)."""
    config.validate()
    if out is not None:
        check_output_folder(out)
    if not Path(config.kit).is_dir():
        raise KitError(f"{config.kit}: test kit not installed (Debian package hydrogen-data "
                       "ships 'The Black Pearl 1.0'); pass --kit DIR to use another kit")
    heldout_kits = installed_heldout_kits(config) if config.heldout_clips > 0 else []
    preload_kits([Path(config.kit), *heldout_kits])
    debleed_path = model_path(config)
    if not Path(config.baseline).is_file():
        raise ModelError(f"{config.baseline}: thesis baseline checkpoint not found (--baseline PATH)")
    debleed = Denoiser.load(debleed_path, config.device,
                            InferenceConfig(hiss_cut_hz=config.hiss_cut_hz))
    thesis = Denoiser.load(config.baseline, config.device)
    started = time.perf_counter()
    steps = _Steps(config.clips * (1 + int(config.floor_set))
                   + (config.heldout_clips if heldout_kits else 0) + speed_steps(config), progress)
    quality = _quality(render_test_set(config), config, debleed, thesis, steps, "test",
                       speed_samples(config))
    pieces = quality.pop("noisy")
    floor = _floor(config, debleed, thesis, steps) if config.floor_set else None
    heldout = None
    if heldout_kits:
        heldout = _quality(render_heldout_set(config, heldout_kits), config, debleed, thesis,
                           steps, "held-out")
        heldout.pop("noisy")
        heldout["targets"] = check_targets(heldout["rows"])
    speed = _speed(config, pieces, steps)
    test_shared, *heldout_shared = shared_layers([Path(config.kit), *heldout_kits],
                                                 config.training_kits)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "config": asdict(config),
        "test_set": {"kit": str(config.kit), "clips": config.clips,
                     "clip_seconds": config.clip_seconds,
                     "seed": config.seed,
                     "clip_seeds": [c["seed"] for c in quality["per_clip"]],
                     "shared_layers_with_training_kits": test_shared},
        "quality": quality,
        "floor": floor,
        "heldout": None if heldout is None else {
            "kits": [kit.name for kit in heldout_kits], "clips": config.heldout_clips,
            "seed": config.heldout_seed, "quality": heldout,
            "shared_layers_with_training_kits": heldout_shared},
        "speed": speed,
        "models": [_model_facts("debleed", debleed_path, debleed),
                   _model_facts("thesis baseline", Path(config.baseline), thesis)],
        "bench_seconds": time.perf_counter() - started,
    }
    result["targets"] = check_targets(quality["rows"])
    if out is not None:
        write_bench(Path(out), result)
    return result


def write_bench(out: Path, result: dict[str, Any]) -> None:
    """Write ``bench.json`` and ``bench.md`` into ``out`` together: built in a hidden folder
    inside it, they replace the last run's pair at once (``replaced_together``), so a failure
    leaves that pair as it was. Written one after the other, a ``bench.md`` that could not
    be replaced left this run's JSON beside the last run's Markdown."""
    with replaced_together(out, ("bench.json", "bench.md")) as staging:
        report.write_json(staging / "bench.json", result)
        write_text_atomic(staging / "bench.md", bench_markdown(result))


def _floor(config: BenchConfig, debleed: Denoiser, thesis: Denoiser,
           steps: _Steps) -> dict[str, Any]:
    """The floor set's JSON section: its quality (no targets: the bar stays on the plain
    test kit) and the floor it was rendered with."""
    quality = _quality(render_floor_set(config), config, debleed, thesis, steps, "floor")
    quality.pop("noisy")
    return {"clips": config.clips, "floor_probability": config.floor_probability,
            "floor_dbfs": list(synth_config(config, floor=True).floor_dbfs),
            "quantise_probability": config.quantise_probability, "export_bits": EXPORT_BITS,
            "quality": quality}


def _fmt(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _sharing_heldout_kits(heldout: dict[str, Any]) -> list[str]:
    """The held-out kits that reuse training samples, as "`kit` (n of its m layers)": the
    report may call the held-out set unheard only when there are none."""
    return [f"`{kit}` ({shared} of its {layers} layers)" for kit, (shared, layers)
            in zip(heldout["kits"], heldout["shared_layers_with_training_kits"]) if shared]


def _heldout_intro(sharing: list[str]) -> str:
    """The held-out section's first line: it claims unheard snares only when no kit reuses
    a training sample (``sharing``, see ``_sharing_heldout_kits``)."""
    if not sharing:
        return ("Never trained on, sharing no sample with the training kits: how debleed meets "
                "snares it has not heard.")
    return (f"Never trained on, but some of their sample layers are byte-identical to samples "
            f"of the training kits ({', '.join(sharing)}), so these rows partly measure recall "
            "of trained sounds.")


def _on_how_many(count: int, clips: int) -> str:
    """"each", "none" or "n of them": how many clips a floor stage was drawn for (the
    probabilities are per clip, so "half" would be a guess)."""
    return "each" if count == clips else "none" if count == 0 else f"{count} of them"


def _floor_markdown(floor: dict[str, Any]) -> list[str]:
    """The floor set's section: its heading says what was added, and how often."""
    per_clip, clips = floor["quality"]["per_clip"], floor["clips"]
    low, high = floor["floor_dbfs"]
    floored = _on_how_many(sum("floor_dbfs" in c for c in per_clip), clips)
    exported = _on_how_many(sum("bits" in c for c in per_clip), clips)
    return [
        f"## Quality with a recording floor (the same {clips} clips, a white floor of "
        f"{low:g} to {high:g} dBFS on {floored}, a dithered {floor['export_bits']}-bit export "
        f"on {exported})", "",
        "Real tracks are never digitally silent between hits: a preamp's hiss and a "
        f"{floor['export_bits']}-bit export's dither lie under every one, and the plain test "
        "clips have neither. Scored like the first table; the targets stay on the plain test "
        "kit.", "",
        report.table_with_coverage(floor["quality"]["rows"], clips),
    ]


def bench_markdown(result: dict[str, Any]) -> str:
    """The benchmark as Markdown: quality table, oracle thresholds, targets, the floor set,
    held-out kits, speed, models, machine."""
    machine = result["machine"]
    thresholds = result["quality"]["oracle_thresholds_db"]
    test_set = result["test_set"]
    shared, layers = test_set["shared_layers_with_training_kits"]
    heldout = result.get("heldout")
    sharing = _sharing_heldout_kits(heldout) if heldout else []
    lines = [
        "# debleed benchmark", "",
        f"{result['date']}, debleed {machine['debleed']}"
        + (" (quick subset)" if result["config"]["quick"] else ""), "",
        f"## Quality ({test_set['clips']} clips of {test_set['clip_seconds']:g} s, "
        f"kit `{Path(test_set['kit']).name}`, seed {test_set['seed']})",
        "", "Cells are mean / median over clips (n/a: undefined on every clip).", "",
        report.table_with_coverage(result["quality"]["rows"], test_set["clips"]),
        report.LEGEND,
        f"Oracle gate thresholds (dB, grid {result['config']['oracle_thresholds_db'][0]:g} to "
        f"{result['config']['oracle_thresholds_db'][-1]:g}): median {np.median(thresholds):g}, "
        f"range {min(thresholds):g} to {max(thresholds):g}; per clip: "
        + ", ".join(f"{t:g}" for t in thresholds), "",
        "## Against the oracle gate, the thesis baseline and the product targets", "",
        BEATS_LEGEND, "",
        targets_markdown(result["targets"]), "",
    ]
    if shared:
        held_out_too = "" if not heldout else (
            f" Some held-out kits below share samples too: {', '.join(sharing)}."
            if sharing else " The held-out kits below share none.")
        lines += [f"Caution: {shared} of the test kit's {layers} sample layers are byte-identical "
                  "to samples of the training kits, so the table above partly measures "
                  "recall of trained sounds." + held_out_too, ""]
    if result.get("floor"):
        lines += _floor_markdown(result["floor"])
    if heldout:
        held = heldout["quality"]
        lines += [
            f"## Held-out kits ({heldout['clips']} clips of {test_set['clip_seconds']:g} s, "
            f"kits {', '.join(f'`{k}`' for k in heldout['kits'])}, seed {heldout['seed']})", "",
            _heldout_intro(sharing), "",
            report.table_with_coverage(held["rows"], heldout["clips"]), "",
            targets_markdown(held["targets"]), "",
        ]
    lines += [
        "## Speed", "",
        "Real-time factor = audio seconds per wall second (higher is faster); with several "
        "timed runs, wall s and RTF are their median and RTF range their lowest and highest.",
        "",
        "| what | model | device | threads | audio s | runs | wall s | RTF | RTF range "
        "| peak RSS MiB | GPU peak MiB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["speed"]:
        spread = f"{_fmt(min(row['rtf_runs']))}-{_fmt(max(row['rtf_runs']))}"
        lines.append(f"| {row['what']} | {row['model']} | {row['device']} | {row['threads']} | "
                     f"{row['audio_seconds']:g} | {row['runs']} | {_fmt(row['wall_seconds'], 2)} | "
                     f"{_fmt(row['rtf'])} | {spread} | {_fmt(row['peak_rss_mib'], 0)} | "
                     f"{_fmt(row['gpu_peak_mib'], 0)} |")
    lines += ["", "## Models", "", "| model | architecture | rate Hz | parameters | file size |",
              "| --- | --- | ---: | ---: | ---: |"]
    for model in result["models"]:
        lines.append(f"| {model['name']} | {model['architecture']} | {model['sample_rate']} | "
                     f"{model['parameters']:,} | {model['file_bytes'] / 2 ** 20:.2f} MiB |")
    lines += ["", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # Child entry of the speed runs:
    # ``python -m training.bench time-model MODEL WAV DEVICE [PRECISION [RUNS]]``.
    if len(sys.argv) in (5, 6, 7) and sys.argv[1] == "time-model":
        model_file, wav, device, *rest = sys.argv[2:]
        precision = rest[0] if rest else "float32"
        runs = int(rest[1]) if len(rest) > 1 else 1
        print(json.dumps(time_model(Path(model_file), Path(wav), device, precision, runs)))
    else:
        sys.exit("usage: python -m training.bench time-model MODEL WAV DEVICE [PRECISION [RUNS]]")

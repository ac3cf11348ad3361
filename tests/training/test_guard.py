"""The teacher guard: a frozen copy of the starting model whose output on guard clips the
student is charged against while it trains on its own kits."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.signal import butter, sosfilt

from debleed.cli.main import cli
from denoiser.checkpoint import load_checkpoint, save_checkpoint
from denoiser.errors import ModelError, ParameterError
from denoiser.models import build_model
from training.config import TrainConfig
from training.guard import TeacherGuard, high_band_hit_distance
from training.kits import load_kit
from training.losses import CombinedLoss, DuckingLoss
from training.run import guard_teacher, run_training
from training.synth import render_clip

TINY = TrainConfig(model="bandmask-tiny", batch_size=2, segment_seconds=0.5, steps_per_epoch=3,
                   epochs=1, valid_clips=1, lr=3e-3, threads=1, device="cpu", seed=5)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, synthetic_kit_dir: Path) -> Path:
    """A tiny model trained briefly on the synthetic kit: the starting point of guarded runs."""
    run = tmp_path_factory.mktemp("teacher") / "run"
    return run_training(replace(TINY, epochs=2), run, kits=[str(synthetic_kit_dir)])


def rendered_clips(kit: Path, guard: bool, count: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean) one-second clips of ``kit``, seeds the training runs below never draw:
    as the guard sees them (procedural snares and toms, from the kit's other pieces) when
    ``guard``, else as the training stream draws them."""
    defaults = TrainConfig(synth={})
    synth = defaults.guard_synth_config() if guard else defaults.synth_config()
    synth = replace(synth, clip_seconds=1.0)
    first_seed = 90_000 if guard else 80_000
    clips = [render_clip([load_kit(kit)], first_seed + i, synth) for i in range(count)]
    return tuple(torch.from_numpy(np.stack([getattr(c, part) for c in clips]).astype(np.float32))
                 for part in ("noisy", "clean"))


def test_the_term_is_zero_for_the_teacher_and_grows_with_drift():
    torch.manual_seed(0)
    student = build_model("bandmask-tiny").eval()
    noisy = 0.1 * torch.randn(2, 12000)
    guard = TeacherGuard(student, [(noisy, noisy)], weight=2.0)
    mse = CombinedLoss({"mse": 1.0})
    with torch.no_grad():
        assert float(guard.term(mse, student(noisy), noisy, noisy)) == 0.0
        for parameter in student.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        drifted = float(guard.term(mse, student(noisy), noisy, noisy))
        # The teacher is a frozen copy: the student's change did not reach it.
        unweighted = float(mse(student(noisy), guard.targets(noisy)))
    assert drifted > 0.0 and unweighted == pytest.approx(drifted / 2.0)
    assert not any(p.requires_grad for p in guard.teacher.parameters())


def snare_like(rate: int = 48_000) -> tuple[torch.Tensor, torch.Tensor]:
    """One second: a decaying noise burst (the clean snare, a hit from 0.25 to 0.33 s) and
    the same with a little broadband noise on top (what a model might output)."""
    generator = torch.Generator().manual_seed(3)
    clean = torch.zeros(1, rate)
    burst = torch.randn(4000, generator=generator) * torch.exp(-torch.arange(4000) / 800.0)
    clean[0, 12_000:16_000] = burst
    return clean, clean + 0.01 * torch.randn(1, rate, generator=generator)


def with_noise_between(wave: torch.Tensor, start: int, stop: int, low_hz: float,
                       high_hz: float, rate: int = 48_000) -> torch.Tensor:
    """``wave`` plus loud band-limited noise in samples [start, stop)."""
    band = butter(8, [low_hz, high_hz], btype="bandpass", fs=rate, output="sos")
    noise = sosfilt(band, np.random.default_rng(4).standard_normal(stop - start))
    changed = wave.clone()
    changed[0, start:stop] += torch.from_numpy(0.3 * noise).float()
    return changed


def test_the_high_band_anchor_sees_only_the_band_above_5_khz_inside_the_hits():
    clean, output = snare_like()
    assert float(high_band_hit_distance(output, output, clean, 48_000)) == 0.0
    in_hit_high = with_noise_between(output, 12_000, 16_000, 6_000, 12_000)
    in_hit_low = with_noise_between(output, 12_000, 16_000, 100, 2_000)
    between_hits_high = with_noise_between(output, 30_000, 34_000, 6_000, 12_000)
    distances = [float(high_band_hit_distance(changed, output, clean, 48_000))
                 for changed in (in_hit_high, in_hit_low, between_hits_high)]
    assert distances[0] > 0.2, distances  # cymbal-band energy added inside the hit
    assert distances[1] < 0.01 * distances[0], distances  # below the band: free
    assert distances[2] < 1e-6, distances  # between hits: free


def test_the_high_band_term_charges_the_student_against_the_teacher():
    torch.manual_seed(0)
    student = build_model("bandmask-tiny").eval()
    clean, noisy = snare_like(student.sample_rate)
    guard = TeacherGuard(student, [(noisy, noisy)], weight=1.0, high_band=3.0)
    with torch.no_grad():
        assert float(guard.high_band_term(student(noisy), noisy, clean)) == 0.0
        for parameter in student.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        drifted = float(guard.high_band_term(student(noisy), noisy, clean))
        unweighted = float(high_band_hit_distance(student(noisy), guard.targets(noisy), clean,
                                                  student.sample_rate))
    assert drifted > 0.0 and unweighted == pytest.approx(drifted / 3.0)


def test_the_guard_ducking_term_charges_only_frames_quieter_than_the_clean_snare():
    """With the student equal to its teacher, only the ducking term is left: it charges an
    output quieter than the guard clip's clean snare, by its weight, and nothing louder."""
    torch.manual_seed(0)
    student = build_model("bandmask-tiny").eval()
    clean, noisy = snare_like(student.sample_rate)
    guard = TeacherGuard(student, [(noisy, clean)], weight=1.0, ducking=4.0)
    mse = CombinedLoss({"mse": 1.0})
    with torch.no_grad():
        output = student(noisy)
        terms = [float(guard.term(mse, output, noisy, level * output)) for level in (0.5, 2.0)]
    assert terms[0] == 0.0  # the output is louder than that clean snare everywhere
    # Twice as loud a clean snare: every sounding frame 6 dB (0.6 in log10 energy) above.
    assert terms[1] == pytest.approx(4.0 * 0.6, abs=0.1)


def test_the_guard_stream_starts_over_when_spent():
    first, second = torch.zeros(1, 4), torch.ones(1, 4)
    guard = TeacherGuard(build_model("bandmask-tiny"), [(first, 2 * first), (second, 2 * second)],
                         weight=1.0)
    drawn = [guard.next_batch() for _ in range(5)]
    assert [float(noisy.sum()) for noisy, _ in drawn] == [0.0, 4.0, 0.0, 4.0, 0.0]
    assert [float(clean.sum()) for _, clean in drawn] == [0.0, 8.0, 0.0, 8.0, 0.0]


def test_a_guarded_run_stays_nearer_its_teacher_on_unfamiliar_snares(
        teacher: Path, synthetic_kit_dir: Path, tmp_path: Path):
    """The same fine-tune (a high learning rate, a loss the teacher was not trained with)
    with and without the guard: on clips of procedural snares the guarded student's output
    stays much nearer the teacher's."""
    config = replace(TINY, init=str(teacher), lr=1e-2, steps_per_epoch=6, epochs=2,
                     loss={"mrstft": 1.0, "segsnr": 1.0}, guard_batch_size=2)
    kits = [str(synthetic_kit_dir)]
    free = run_training(config, tmp_path / "free", kits=kits)
    guarded = run_training(replace(config, guard_weight=20.0), tmp_path / "guarded", kits=kits)
    clips, _ = rendered_clips(synthetic_kit_dir, guard=True)
    models = [load_checkpoint(path)[0].eval() for path in (teacher, free, guarded)]
    with torch.no_grad():
        reference, *students = [model(clips) for model in models]
        drift = [float(((out - reference) ** 2).mean() / (reference ** 2).mean())
                 for out in students]
    assert drift[0] > 1e-3, drift  # unguarded, the fine-tune moves the model
    assert drift[1] < 0.25 * drift[0], drift
    saved = json.loads((tmp_path / "guarded" / "config.json").read_text())
    assert saved["guard_weight"] == 20.0
    assert saved["guard_synth"] == {"procedural_snare_probability": 1.0}
    card = (tmp_path / "guarded" / "MODEL_CARD.md").read_text()
    assert "- Teacher guard: weight 20.0, 2 segments a step" in card
    assert "Teacher guard" not in (tmp_path / "free" / "MODEL_CARD.md").read_text()


def test_the_high_band_anchor_keeps_the_hits_above_5_khz_nearer_the_teacher(
        teacher: Path, synthetic_kit_dir: Path, tmp_path: Path):
    """The same guarded fine-tune with and without the anchor: on clips like the training
    ones, the anchored student's band above 5 kHz inside the hits stays nearer the teacher's,
    and the run's config and model card say it was anchored."""
    config = replace(TINY, init=str(teacher), lr=1e-2, steps_per_epoch=6, epochs=2,
                     loss={"mrstft": 1.0, "segsnr": 1.0}, guard_batch_size=1, guard_weight=0.1)
    kits = [str(synthetic_kit_dir)]
    free = run_training(config, tmp_path / "free", kits=kits)
    anchored = run_training(replace(config, guard_high_band=60.0), tmp_path / "anchored",
                            kits=kits)
    noisy, clean = rendered_clips(synthetic_kit_dir, guard=False)
    models = [load_checkpoint(path)[0].eval() for path in (teacher, free, anchored)]
    with torch.no_grad():
        reference, *students = [model(noisy) for model in models]
        gaps = [float(high_band_hit_distance(out, reference, clean, models[0].sample_rate))
                for out in students]
    assert gaps[0] > 1e-3, gaps  # the fine-tune moves the band when it is free to
    assert gaps[1] < 0.5 * gaps[0], gaps
    assert json.loads((tmp_path / "anchored" / "config.json").read_text())["guard_high_band"] == 60.0
    card = (tmp_path / "anchored" / "MODEL_CARD.md").read_text()
    assert "- High-band anchor: weight 60.0" in card
    assert "High-band anchor" not in (tmp_path / "free" / "MODEL_CARD.md").read_text()


def test_the_guard_ducking_term_keeps_the_guard_clips_nearer_their_clean_level(
        teacher: Path, synthetic_kit_dir: Path, tmp_path: Path):
    """The same guarded fine-tune with and without the ducking term: on unseen guard clips
    the student given the term ducks their snares less than the one held to its teacher."""
    config = replace(TINY, init=str(teacher), lr=1e-2, steps_per_epoch=6, epochs=2,
                     loss={"mrstft": 1.0, "segsnr": 1.0}, guard_batch_size=2, guard_weight=0.1)
    kits = [str(synthetic_kit_dir)]
    held = run_training(config, tmp_path / "held", kits=kits)
    charged = run_training(replace(config, guard_ducking=300.0), tmp_path / "charged", kits=kits)
    noisy, clean = rendered_clips(synthetic_kit_dir, guard=True)
    with torch.no_grad():
        ducked = [float(DuckingLoss()(load_checkpoint(path)[0].eval()(noisy), clean))
                  for path in (held, charged)]
    assert ducked[1] < 0.5 * ducked[0], ducked
    assert json.loads((tmp_path / "charged" / "config.json").read_text())["guard_ducking"] == 300.0
    card = (tmp_path / "charged" / "MODEL_CARD.md").read_text()
    assert "- Guard ducking: weight 300.0" in card
    assert "Guard ducking" not in (tmp_path / "held" / "MODEL_CARD.md").read_text()


def test_a_guarded_run_resumes_to_the_same_weights(teacher: Path, synthetic_kit_dir: Path,
                                                    tmp_path: Path):
    """Resuming seeks the guard's stream too: its batches continue where they stopped."""
    config = replace(TINY, init=str(teacher), epochs=2, steps_per_epoch=2, guard_weight=1.0,
                     guard_batch_size=1)
    kits = [str(synthetic_kit_dir)]
    run_training(config, tmp_path / "straight", kits=kits)
    run_training(replace(config, epochs=1), tmp_path / "halves", kits=kits)
    run_training(config, tmp_path / "halves", kits=kits, resume=True)
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True)["model"]["state_dict"]
            for run in ("straight", "halves"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_guarded_resume_keeps_its_teacher_when_the_file_changes(
        synthetic_kit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The teacher is kept in last.pt: rebuilt from --init's file, a resume after that file
    was rewritten (the run it came from went on) held the network to the new model, and the
    weights were not an uninterrupted run's. Another --guard-teacher named on a resume is
    the one used; a state saved before teachers were kept reads the file, as it did."""
    import training.run

    start, other = tmp_path / "start.pt", tmp_path / "other.pt"
    torch.manual_seed(1)
    save_checkpoint(start, build_model("bandmask-tiny"))
    torch.manual_seed(2)
    rewritten = save_checkpoint(other, build_model("bandmask-tiny")).read_bytes()
    config = replace(TINY, init=str(start), epochs=2, steps_per_epoch=2, guard_weight=1.0,
                     guard_batch_size=1)
    kits = [str(synthetic_kit_dir)]
    run_training(config, tmp_path / "straight", kits=kits)
    run_training(replace(config, epochs=1), tmp_path / "halves", kits=kits)
    start.write_bytes(rewritten)
    run_training(config, tmp_path / "halves", kits=kits, resume=True)
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True)["model"]["state_dict"]
            for run in ("straight", "halves"))
    assert all(torch.equal(a[k], b[k]) for k in a)

    seen = []

    class Recording(TeacherGuard):
        def __init__(self, model, *args, **kwargs):
            seen.append({k: v.clone() for k, v in model.state_dict().items()})
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(training.run, "TeacherGuard", Recording)
    run_training(replace(config, epochs=3, steps_per_epoch=1, guard_teacher=str(other)),
                 tmp_path / "halves", kits=kits, resume=True)
    state = torch.load(tmp_path / "halves" / "last.pt", weights_only=True)
    del state["guard_teacher"]  # as saved before teachers were kept
    torch.save(state, tmp_path / "halves" / "last.pt")
    run_training(replace(config, epochs=4, steps_per_epoch=1, guard_teacher=""),
                 tmp_path / "halves", kits=kits, resume=True)
    named, read = seen
    rewritten_weights = load_checkpoint(other)[0].state_dict()
    for weights in (named, read):
        assert all(torch.equal(weights[k], v) for k, v in rewritten_weights.items())


def test_a_guarded_state_without_its_teacher_resumes_to_the_same_weights(
        synthetic_kit_dir: Path, tmp_path: Path):
    """A state saved before teachers were kept: the network resumes from last.pt, and the
    guard holds it to --init's model as the run started, its grown parts drawn from the
    run's seed as they were, so the weights, and the teacher last.pt keeps from then on, are
    an uninterrupted run's; with that file gone, the one error line says why it is needed."""
    start = tmp_path / "start.pt"
    torch.manual_seed(3)
    save_checkpoint(start, build_model("bandmask-tiny"))
    config = replace(TINY, init=str(start), model_kwargs={"floor_input": True}, epochs=2,
                     steps_per_epoch=2, guard_weight=1.0, guard_batch_size=1)
    kits = [str(synthetic_kit_dir)]
    run_training(config, tmp_path / "straight", kits=kits)
    run_training(replace(config, epochs=1), tmp_path / "halves", kits=kits)
    last = tmp_path / "halves" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["guard_teacher"]  # as saved before teachers were kept
    torch.save(state, last)
    saved = start.read_bytes()
    start.unlink()
    with pytest.raises(ModelError, match=re.escape(
            f"{start}: no such checkpoint (the guard's teacher: last.pt, saved before debleed "
            "kept the teacher in it, holds only the network; put the file back to resume)")):
        run_training(config, tmp_path / "halves", kits=kits, resume=True)
    start.write_bytes(saved)
    run_training(config, tmp_path / "halves", kits=kits, resume=True)
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True)
            for run in ("straight", "halves"))
    for part in ("model", "guard_teacher"):  # the teacher's fresh floor branch included
        assert all(torch.equal(a[part]["state_dict"][k], v)
                   for k, v in b[part]["state_dict"].items()), part


@pytest.mark.parametrize("change, message", [
    ({"guard_weight": 1.0, "init": ""}, "the guard needs --init"),
    ({"guard_weight": 1.0, "guard_batch_size": 0}, "--guard-batch-size 0: must be a whole number >= 1"),
    ({"guard_weight": -1.0}, "--guard-weight -1.0: must be a finite number >= 0"),
    ({"guard_weight": float("nan")}, "--guard-weight nan"),
    ({"guard_weight": 1.0, "guard_high_band": -0.5}, "--guard-high-band -0.5: must be"),
    ({"guard_weight": 1.0, "guard_high_band": float("inf")}, "--guard-high-band inf"),
    ({"guard_high_band": 1.0}, "--guard-high-band .* needs --guard-weight > 0"),
    ({"guard_weight": 1.0, "guard_ducking": -2.0}, "--guard-ducking -2.0: must be"),
    ({"guard_weight": 1.0, "guard_ducking": float("nan")}, "--guard-ducking nan"),
    ({"guard_ducking": 1.0}, "--guard-ducking is a term of the guard: it needs --guard-weight"),
    ({"guard_teacher": "default"}, "--guard-teacher is the guard's teacher: it needs --guard-w"),
    ({"guard_synth": {"nope": 1}}, "unknown guard synth option"),
    ({"guard_synth": {"procedural_snare_probability": 2}}, "guard synth option .* probability"),
])
def test_bad_guard_options_raise(teacher: Path, synthetic_kit_dir: Path, tmp_path: Path,
                                 change: dict, message: str):
    config = replace(TINY, **{"init": str(teacher), **change})
    with pytest.raises(ParameterError, match=message):
        run_training(config, tmp_path / "run", kits=[str(synthetic_kit_dir)])
    assert not (tmp_path / "run").exists()


def test_the_guard_teacher_is_the_starting_model_unless_another_checkpoint_is_named(
        teacher: Path, tmp_path: Path):
    """``--guard-teacher``: the guard holds a grown network (here cut at 22.05 kHz) to the
    checkpoint whose behaviour was measured, not to itself as it starts; a teacher at
    another sample rate is refused."""
    grown, _ = load_checkpoint(teacher, overrides={"input_max_hz": 22050.0})
    assert guard_teacher(grown, replace(TINY, init=str(teacher))) is grown
    named = guard_teacher(grown, replace(TINY, init=str(teacher), guard_weight=1.0,
                                         guard_teacher=str(teacher)))
    assert named is not grown and named.input_bins == named.n_fft // 2 + 1
    original, _ = load_checkpoint(teacher)
    assert all(torch.equal(a, b) for a, b in zip(named.state_dict().values(),
                                                 original.state_dict().values()))
    other_rate = save_checkpoint(tmp_path / "thesis.pt", build_model("thesis-tiny"))
    with pytest.raises(ParameterError, match="teacher runs at 20000 Hz, the network at 48000"):
        guard_teacher(grown, replace(TINY, guard_weight=1.0, guard_teacher=str(other_rate)))


def test_a_run_holds_its_grown_network_to_the_named_teacher(
        teacher: Path, synthetic_kit_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    """End to end: a network grown with the cut trains against the named, uncut teacher,
    given as a path relative to where the run starts and saved absolute (a resume from
    another folder holds it to the same file); a missing teacher is refused before the run
    folder exists."""
    import training.run

    seen = []

    class Recording(TeacherGuard):
        def __init__(self, model, *args, **kwargs):
            seen.append(model)
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(training.run, "TeacherGuard", Recording)
    monkeypatch.chdir(teacher.parent)
    config = replace(TINY, init=teacher.name, model_kwargs={"input_max_hz": 22050.0},
                     guard_weight=1.0, guard_batch_size=1, steps_per_epoch=1,
                     guard_teacher=teacher.name)
    best = run_training(config, tmp_path / "run", kits=[str(synthetic_kit_dir)])
    (held,) = seen
    assert held.input_bins == held.n_fft // 2 + 1
    assert load_checkpoint(best)[0].input_bins == 118
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["guard_teacher"] == saved["init"] == os.path.abspath(teacher.name)
    with pytest.raises(ModelError, match="missing.pt"):
        run_training(replace(config, guard_teacher="missing.pt"), tmp_path / "other",
                     kits=[str(synthetic_kit_dir)])
    assert not (tmp_path / "other").exists()


def test_the_guard_refuses_a_dataset_folder(teacher: Path, tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    config = replace(TINY, init=str(teacher), guard_weight=1.0)
    with pytest.raises(ParameterError, match="cannot run on a dataset folder"):
        run_training(config, tmp_path / "run", data=folder)
    assert not (tmp_path / "run").exists()


def test_cli_passes_the_guard_options(teacher: Path, synthetic_kit_dir: Path, tmp_path: Path):
    run = tmp_path / "run"
    common = ["train", "--kit", str(synthetic_kit_dir), "--out", str(run), "--init", str(teacher),
              "--batch-size", "2", "--segment-seconds", "0.5", "--steps-per-epoch", "1",
              "--epochs", "1", "--valid-clips", "1", "--threads", "1", "--device", "cpu",
              "--guard-weight", "0.5"]
    bad = CliRunner().invoke(cli, [*common, "--guard-synth", "[1]"])
    assert bad.exit_code != 0 and "--guard-synth: expected a JSON object" in bad.output
    assert not run.exists()
    result = CliRunner().invoke(cli, [*common, "--guard-synth", '{"wide_pitch_probability": 1}',
                                      "--guard-batch-size", "1", "--guard-ducking", "2",
                                      "--guard-teacher", str(teacher)])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert (saved["guard_weight"], saved["guard_batch_size"], saved["guard_synth"],
            saved["guard_ducking"], saved["guard_teacher"]) == (
        0.5, 1, {"wide_pitch_probability": 1}, 2.0, os.path.abspath(teacher))
    assert f"against the output of {os.path.abspath(teacher)}" in (run / "MODEL_CARD.md").read_text()
    # '' is an empty path to every file option; the word "init" clears the saved teacher
    resumed = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--epochs", "2",
                                       "--guard-teacher", "init"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run / "config.json").read_text())["guard_teacher"] == ""

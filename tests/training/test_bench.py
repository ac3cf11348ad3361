"""``debleed bench`` on a tiny synthetic kit with tiny checkpoints: every row and column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import save_checkpoint
from denoiser.errors import ParameterError
from denoiser.gate import GateConfig
from denoiser.models import build_model
from training import bench, metrics, report
from training.errors import KitError
from training.oneshots import write_synthetic_kit
from training.oracles import IDEAL_MASK_FFT, IDEAL_MASK_HOP
from training.report import COLUMNS


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    return {"root": root, "kit": write_synthetic_kit(root / "kit"),
            "heldout": write_synthetic_kit(root / "heldout", seed=9, name="held out"),
            "model": save_checkpoint(root / "tiny.pt", build_model("bandmask-tiny")),
            "baseline": save_checkpoint(root / "thesis.pt", build_model("thesis-tiny"))}


def test_bench_json_and_markdown_have_every_row_and_column(setup):
    out = setup["root"] / "out"
    config = bench.BenchConfig(kit=setup["kit"], model=setup["model"], baseline=setup["baseline"],
                               clips=2, clip_seconds=1.5, device="cpu",
                               oracle_thresholds_db=(-60.0, -40.0, -20.0, -10.0),
                               model_speed_seconds=2.0, process_speed_seconds=3.0,
                               heldout_kits=(setup["heldout"], setup["root"] / "not installed"),
                               heldout_clips=2, training_kits=(setup["kit"],))
    bench.run_bench(config, out)
    result = json.loads((out / "bench.json").read_text(),
                        parse_constant=lambda name: pytest.fail(f"bench.json holds {name}"))

    rows = result["quality"]["rows"]
    assert list(rows) == list(bench.ROWS)
    for row in rows.values():
        for key, _ in COLUMNS:
            assert {"mean", "median", "count"} <= set(row[key])
    input_row = rows["input (unchanged)"]
    assert input_row["delta_si_sdr"]["mean"] == 0.0 and input_row["bleed_reduction_db"]["mean"] == 0.0
    perfect = rows["clean snare (perfect output)"]
    assert perfect["hit_level_error_db"]["mean"] < 1e-6 and perfect["delta_si_sdr"]["mean"] > 60.0
    assert len(result["quality"]["per_clip"]) == 2
    # the test kit is the training kit here: every layer is shared, and the report says so
    shared, layers = result["test_set"]["shared_layers_with_training_kits"]
    assert shared == layers > 0
    heldout = result["heldout"]
    assert heldout["kits"] == ["heldout"] and len(heldout["quality"]["per_clip"]) == 2
    assert heldout["shared_layers_with_training_kits"] == [[0, 36]]
    assert all(c["kit"] == "held out" for c in heldout["quality"]["per_clip"])
    assert list(heldout["quality"]["rows"]) == list(bench.ROWS)
    assert {r["metric"] for r in heldout["quality"]["targets"]} >= {"delta_si_sdr", "hits_lost_pct"}
    floor = result["floor"]
    assert (floor["floor_probability"], floor["quantise_probability"]) == (1.0, 0.5)
    assert list(floor["quality"]["rows"]) == list(bench.ROWS) and "targets" not in floor["quality"]
    assert [c["seed"] for c in floor["quality"]["per_clip"]] == result["test_set"]["clip_seeds"]
    assert all(t in config.oracle_thresholds_db for t in result["quality"]["oracle_thresholds_db"])
    assert result["config"]["hiss_cut_hz"] == 22050.0  # the engine's floor test, as shipped
    speed = {(r["what"], r["model"]) for r in result["speed"]}
    assert speed == {("model alone (Denoiser.denoise)", "debleed"),
                     ("model alone (Denoiser.denoise, bfloat16)", "debleed"),
                     ("model alone (Denoiser.denoise)", "thesis baseline"),
                     ("debleed denoise process", "debleed")}
    for row in result["speed"]:
        assert row["rtf"] > 0 and row["threads"] >= 1 and 50 < row["peak_rss_mib"] < 8000
        # the model alone is timed model_speed_runs times and its figure is their median
        assert row["runs"] == (1 if row["what"] == "debleed denoise process" else 5)
        assert len(row["rtf_runs"]) == row["runs"]
        assert row["rtf"] == pytest.approx(float(np.median(row["rtf_runs"])), rel=1e-9)
    models = {m["name"]: m for m in result["models"]}
    assert models["debleed"]["parameters"] == build_model("bandmask-tiny").parameter_count()
    assert models["thesis baseline"]["file_bytes"] == setup["baseline"].stat().st_size
    assert {"platform", "cpu", "cores", "torch"} <= set(result["machine"]) and result["date"]

    markdown = (out / "bench.md").read_text()
    assert f"Caution: {shared} of the test kit's {layers} sample layers" in markdown
    assert "## Held-out kits (2 clips" in markdown
    assert "The held-out kits below share none." in markdown
    assert "Never trained on, sharing no sample with the training kits" in markdown
    floor_at = markdown.index("## Quality with a recording floor (the same 2 clips, a white "
                              "floor of -110 to -66 dBFS on each, a dithered 16-bit export on ")
    assert markdown.index("## Against the oracle gate") < floor_at < markdown.index("## Held-out")
    for name in bench.ROWS:
        assert f"| {name} |" in markdown
    assert all(title in markdown for _, title in COLUMNS)
    assert "| debleed denoise process | debleed | cpu |" in markdown


def test_oracle_gate_picks_a_threshold_between_bleed_and_hits(rng):
    rate = 16000
    clean = np.zeros(rate)
    for start in (2000, 9000):
        clean[start:start + 1600] = 0.5 * rng.standard_normal(1600)
    noisy = clean + 0.003 * rng.standard_normal(rate)  # bleed about -50 dBFS, hits about -6
    thresholds = tuple(float(t) for t in range(-60, -4, 2))
    gated, threshold = bench.oracle_gate(noisy, clean, rate, GateConfig(), thresholds)
    assert threshold > -46.0  # above the bleed: the gaps are muted
    assert metrics.si_sdr(gated, clean) > metrics.si_sdr(noisy, clean) + 3.0


def test_bench_quick_cli(setup):
    out = setup["root"] / "quick"
    result = CliRunner().invoke(cli, ["bench", "--quick", "--clips", "1", "--heldout-clips", "0",
                                      "--out", str(out),
                                      "--kit", str(setup["kit"]), "--model", str(setup["model"]),
                                      "--baseline", str(setup["baseline"]), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    assert data["config"]["quick"] and data["test_set"]["clips"] == 1
    assert [r["what"] for r in data["speed"]][:3] == ["model alone (Denoiser.denoise)",
                                                     "model alone (Denoiser.denoise, bfloat16)",
                                                     "debleed denoise process"]
    assert "(quick subset)" in (out / "bench.md").read_text()
    assert data["heldout"] is None and "Held-out kits" not in (out / "bench.md").read_text()
    assert data["floor"]["clips"] == 1 and len(data["floor"]["quality"]["per_clip"]) == 1
    assert "## Quality with a recording floor (the same 1 clips" in (out / "bench.md").read_text()


def test_bench_missing_kit_is_a_one_line_error(setup, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--kit", str(tmp_path / "no kit"), "--out", str(tmp_path / "o"),
                                      "--model", str(setup["model"]), "--baseline", str(setup["baseline"])])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert "test kit not installed" in result.output and not (tmp_path / "o").exists()


def test_bench_missing_heldout_kit_is_refused_not_skipped(setup, tmp_path):
    """A mistyped --heldout-kit used to give a benchmark without its held-out rows."""
    result = CliRunner().invoke(cli, ["bench", "--quick", "--heldout-kit", str(tmp_path / "typo"),
                                      "--out", str(tmp_path / "o"), "--model", str(setup["model"]),
                                      "--baseline", str(setup["baseline"])])
    assert result.exit_code == 2 and "typo' does not exist" in result.output
    assert not (tmp_path / "o").exists()


def test_oracle_gate_on_a_bleed_only_clip_closes(rng):
    rate = 16000
    noisy = 0.01 * rng.standard_normal(rate)  # about -40 dBFS of bleed, no snare at all
    thresholds = (-60.0, -50.0, -20.0, -10.0)
    gated, threshold = bench.oracle_gate(noisy, np.zeros(rate), rate, GateConfig(), thresholds)
    assert threshold >= -20.0
    assert metrics.bleed_reduction_db(noisy, np.zeros(rate), gated, rate) > 40.0


def test_ideal_mask_uses_the_models_stft_only_when_it_has_one():
    """The thesis model's ``hop`` is its 4-sample chunk grid, not an STFT hop: taken for
    one, the ideal mask ran a 1024-point STFT at hop 4 (31 s and 5.6 GB per 10-s clip)."""
    thesis = SimpleNamespace(model=build_model("thesis-tiny"))
    assert thesis.model.hop == 4
    assert bench._stft_of(thesis) == (IDEAL_MASK_FFT, IDEAL_MASK_HOP)
    assert bench._stft_of(SimpleNamespace(model=build_model("bandmask-tiny"))) == (256, 64)


def _tiny_config(setup, **overrides) -> bench.BenchConfig:
    return bench.BenchConfig(**{"kit": setup["kit"], "model": setup["model"],
                                "baseline": setup["baseline"], "clips": 1, "clip_seconds": 1.0,
                                "device": "cpu", "oracle_thresholds_db": (-40.0, -20.0),
                                "heldout_clips": 1, **overrides})


@pytest.mark.parametrize("change, message", [
    ({"clip_seconds": 0.0}, r"bench: clip_seconds = 0.0: must be a number in \[0.5, 600\]"),
    ({"clip_seconds": -5.0}, r"bench: clip_seconds = -5.0: must be"),
    ({"clips": 0}, r"bench: clips = 0: must be a whole number >= 1"),
    ({"model_speed_runs": 0}, r"bench: model_speed_runs = 0: must be a whole number in \[1, 100\]"),
    ({"model_speed_seconds": 0.0}, r"bench: model_speed_seconds = 0.0: must be a number in "
                                   r"\[1, 3600\]"),
    ({"process_speed_seconds": float("inf")}, r"bench: process_speed_seconds = inf: must be"),
    ({"seed": -1}, r"bench: seed = -1: must be a whole number >= 0"),
    ({"floor_probability": 1.5}, r"bench: floor_probability = 1.5: must be a probability"),
    ({"oracle_thresholds_db": ()}, r"bench: oracle_thresholds_db is empty"),
    ({"oracle_thresholds_db": (-40.0, 6.0)}, r"bench: oracle_thresholds_db = 6.0: must be a "
                                             r"number in \[-120, 0\]"),
    ({"gate": GateConfig(attack_ms=-1.0)}, r"gate attack -1.0 ms is outside"),
])
def test_a_setting_the_benchmark_cannot_run_with_is_refused_before_any_work(
        setup, tmp_path, monkeypatch, change, message):
    """A clip length of 0 s, 0 speed runs or a 0 s speed file failed only after the
    quality runs, minutes in."""
    monkeypatch.setattr(bench, "preload_kits", lambda kits: pytest.fail("a kit was loaded"))
    with pytest.raises(ParameterError, match=message):
        bench.run_bench(_tiny_config(setup, **change), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_the_benchmarks_own_settings_are_valid(setup):
    for config in (bench.BenchConfig(), bench.BenchConfig.quick_config(), _tiny_config(setup)):
        assert config.validate() is config


@pytest.mark.parametrize("process_seconds, kept", [(2.5, 3), (6.0, 4)])
def test_the_speed_files_keep_only_the_clips_they_need_and_the_same_bytes(
        setup, tmp_path, monkeypatch, process_seconds, kept):
    """Every test clip's noisy audio was held for the speed files (1.9 MB a 10-s clip, 8 GB
    for 2000 clips): the first clips that fill the longer file are kept, and both files are
    the bytes that all the clips gave."""
    seen = {}

    def speed(config, pieces, steps):
        seen["pieces"] = list(pieces)
        return []

    monkeypatch.setattr(bench, "_speed", speed)
    config = _tiny_config(setup, clips=4, heldout_clips=0, floor_set=False,
                          model_speed_seconds=1.0, process_speed_seconds=process_seconds)
    bench.run_bench(config, None)
    assert len(seen["pieces"]) == kept
    every_clip = [clip.noisy for clip in bench.render_test_set(config)]
    assert len(every_clip) == 4 and all(p.size == bench.SPEED_RATE for p in every_clip)
    for seconds, subtype in ((1.0, "FLOAT"), (process_seconds, "PCM_24")):
        files = [bench._long_file(tmp_path / f"{name}.wav", pieces, seconds, bench.SPEED_RATE,
                                  subtype).read_bytes()
                 for name, pieces in (("kept", seen["pieces"]), ("all", every_clip))]
        assert files[0] == files[1]


def test_heldout_kit_sharing_a_training_sample_is_reported(setup, tmp_path, monkeypatch):
    """The report called the held-out kits sample-free without counting: a held-out kit
    whose snare is a training kit's one-shot is named, and not called unheard."""
    training = tmp_path / "training kit"
    training.mkdir()
    shutil.copy(setup["heldout"] / "snare_1.wav", training / "snare.wav")
    monkeypatch.setattr(bench, "_speed", lambda config, pieces, steps: [])
    out = tmp_path / "out"
    bench.run_bench(_tiny_config(setup, heldout_kits=(setup["heldout"],),
                                 training_kits=(setup["kit"], training)), out)
    result = json.loads((out / "bench.json").read_text())
    assert result["heldout"]["shared_layers_with_training_kits"] == [[1, 36]]
    markdown = (out / "bench.md").read_text()
    assert "share none" not in markdown and "sharing no sample" not in markdown
    assert "Some held-out kits below share samples too: `heldout` (1 of its 36 layers)." in markdown
    assert ("Never trained on, but some of their sample layers are byte-identical to samples "
            "of the training kits (`heldout` (1 of its 36 layers))") in markdown


def test_bad_heldout_kit_fails_before_the_test_set_runs(setup, tmp_path, monkeypatch):
    """A held-out kit without a snare was refused only after every test clip had run."""
    no_snare = tmp_path / "no snare"
    no_snare.mkdir()
    shutil.copy(setup["kit"] / "kick_1.wav", no_snare / "kick.wav")

    def render(config):
        pytest.fail("a test clip was rendered before the held-out kits were loaded")

    monkeypatch.setattr(bench, "render_test_set", render)
    with pytest.raises(KitError, match="has no snare instrument"):
        bench.run_bench(_tiny_config(setup, heldout_kits=(no_snare,)), tmp_path / "out")


def test_bench_cli_lists_a_repeated_heldout_kit_once(setup, tmp_path, monkeypatch):
    """``--heldout-kit K --heldout-kit K/../K`` gave K twice: in the heading, and twice the
    clips of K in the held-out set."""
    seen = {}

    def run(config, out, progress=None):
        seen["kits"] = config.heldout_kits
        out.mkdir()
        (out / "bench.md").write_text("# debleed benchmark\n")

    monkeypatch.setattr(bench, "run_bench", run)
    other = write_synthetic_kit(tmp_path / "other", seed=3)
    again = setup["heldout"].parent / ".." / setup["heldout"].parent.name / setup["heldout"].name
    result = CliRunner().invoke(cli, ["bench", "--out", str(tmp_path / "o"),
                                      "--heldout-kit", str(setup["heldout"]),
                                      "--heldout-kit", str(other),
                                      "--heldout-kit", str(again)])
    assert result.exit_code == 0, result.output
    assert seen["kits"] == (setup["heldout"], other)


def test_floor_set_is_the_test_clips_plus_a_floor_and_leaves_the_rest_alone(setup, tmp_path,
                                                                            monkeypatch):
    """The floor set renders the test clips again with a recording floor: its clean snare
    is the same (SI-SDR 120), its input is worse, and the plain and held-out tables are the
    numbers they were without it."""
    monkeypatch.setattr(bench, "_speed", lambda config, pieces, steps: [])
    monkeypatch.setattr(bench, "speed_steps", lambda config: 0)

    def run(floor_set: bool) -> tuple[dict, str, list[tuple[float, str]]]:
        out, steps = tmp_path / f"floor {floor_set}", []
        config = _tiny_config(setup, heldout_kits=(setup["heldout"],), floor_set=floor_set)
        bench.run_bench(config, out, progress=lambda done, note: steps.append((done, note)))
        return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text(), steps

    (plain, plain_md, plain_steps), (floored, floored_md, floored_steps) = run(False), run(True)
    assert plain["floor"] is None and "recording floor" not in plain_md
    assert floored["quality"] == plain["quality"] and floored["heldout"] == plain["heldout"]
    assert floored["targets"] == plain["targets"]
    plain_body, floored_body = (md.split("\n", 3)[3] for md in (plain_md, floored_md))  # no date
    assert floored_body.split("## Quality with a recording floor")[0] == \
        plain_body.split("## Held-out")[0]
    assert floored_body.split("## Held-out")[1] == plain_body.split("## Held-out")[1]

    rows = floored["floor"]["quality"]["rows"]
    assert rows["clean snare (perfect output)"]["si_sdr"]["mean"] == pytest.approx(120.0)
    plain_input = plain["quality"]["rows"]["input (unchanged)"]["si_sdr"]["mean"]
    # the same clip plus a floor far below it: a little worse, not another clip
    assert plain_input - 1.0 < rows["input (unchanged)"]["si_sdr"]["mean"] < plain_input
    (clip,) = floored["floor"]["quality"]["per_clip"]
    assert -110.0 <= clip["floor_dbfs"] <= -66.0
    assert "floor_dbfs" not in plain["quality"]["per_clip"][0]
    # one step per clip of each set, ending at 1
    assert [note for _, note in floored_steps] == ["test clip 1", "floor clip 1", "held-out clip 1"]
    assert floored_steps[-1][0] == 1.0 and plain_steps[-1][0] == 1.0


def test_each_quality_table_says_which_means_cover_fewer_clips():
    """A table headed "40 clips" whose tom/kick mean rests on 19 of them read as if it
    covered 40; evaluate said so under its table, bench did not."""
    rows = {"debleed": {key: {"mean": 1.0, "median": 1.0, "count": 40} for key, _ in COLUMNS}}
    assert report.table_with_coverage(rows, 40) == report.markdown_table(rows)
    rows["debleed"]["tom_kick_leakage_db"]["count"] = 19
    assert report.table_with_coverage(rows, 40) == (
        report.markdown_table(rows) + "\nMeans over fewer of the 40 clips: tom/kick leakage dB 19.\n")


def test_the_speed_tables_rtf_range_is_the_lowest_to_the_highest_run():
    """bench.md gives each speed row its median RTF and, as "RTF range", its slowest and
    fastest timed runs, whatever order they ran in."""
    result = {
        "date": "2026-01-01", "machine": {"debleed": "x"},
        "config": {"quick": True, "oracle_thresholds_db": [-60.0, -10.0]},
        "test_set": {"shared_layers_with_training_kits": [0, 1], "clips": 1,
                     "clip_seconds": 1.0, "kit": "k", "seed": 0},
        "quality": {"oracle_thresholds_db": [-40.0], "rows": {}}, "targets": [], "models": [],
        "speed": [{"what": "model alone", "model": "debleed", "device": "cpu", "threads": 1,
                   "audio_seconds": 60, "runs": 3, "wall_seconds": 1.0, "rtf": 60.0,
                   "rtf_runs": [60.0, 50.0, 70.0], "peak_rss_mib": 100.0, "gpu_peak_mib": None}],
    }
    rows = [line for line in bench.bench_markdown(result).splitlines()
            if line.startswith("| model alone |")]
    assert rows == ["| model alone | debleed | cpu | 1 | 60 | 3 | 1.00 | 60.0 | 50.0-70.0 | "
                    "100 | n/a |"]


def test_a_bench_md_that_cannot_be_replaced_keeps_the_last_runs_pair(setup, tmp_path,
                                                                     monkeypatch, held_open):
    """bench.json and bench.md were two writes: a bench.md that could not be replaced (on
    Windows, open in an editor that locks it) left this run's JSON beside the last run's
    Markdown."""
    monkeypatch.setattr(bench, "_speed", lambda config, pieces, steps: [])
    monkeypatch.setattr(bench, "speed_steps", lambda config: 0)
    out = tmp_path / "out"
    bench.run_bench(_tiny_config(setup, heldout_clips=0), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    held_open(out / "bench.md")
    with pytest.raises(PermissionError) as caught:
        bench.run_bench(_tiny_config(setup, heldout_clips=0, clips=2), out)
    assert caught.value.filename == str(out / "bench.md")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert json.loads(before["bench.json"])["config"]["clips"] == 1

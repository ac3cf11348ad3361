"""``debleed evaluate`` end to end on a tiny rendered dataset with tiny checkpoints."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from debleed.cli.main import cli
from denoiser.checkpoint import save_checkpoint
from denoiser.models import build_model
from training.evaluate import SYSTEMS, VERSIONS, folder_names, score_systems
from training.report import mel_spectrogram_db
from training.oneshots import write_synthetic_kit
from training.synth import SynthConfig, render_dataset

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    kit = write_synthetic_kit(root / "kit")
    data = render_dataset([kit], root / "data", hours=3 * 1.5 / 3600, seed=3,
                          config=SynthConfig(clip_seconds=1.5))
    torch.manual_seed(0)
    checkpoint = save_checkpoint(root / "tiny.pt", build_model("bandmask-tiny"))
    return {"root": root, "data": data, "checkpoint": checkpoint}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("href", "src") and value]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _strict_json(path: Path):
    def no_nan(name):
        raise AssertionError(f"{path} holds {name}: not valid JSON")

    return json.loads(path.read_text(), parse_constant=no_nan)


def test_evaluate_writes_a_complete_report(setup):
    data, report = setup["data"], setup["root"] / "report"
    before = _snapshot(data)
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(data),
                                      "--report", str(report), "--split", "all", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "| gate + model |" in result.output
    assert _snapshot(data) == before  # the dataset folder is only read

    page = (report / "index.html").read_text()
    parser = _Links()
    parser.feed(page)
    assert parser.tags.count("audio") == 3 * len(VERSIONS) and parser.tags.count("img") == 3
    for link in parser.links:
        if not link.startswith("#"):
            assert not link.startswith(("/", "http", "file:")), link  # relative only
            assert (report / link).is_file(), link
    for image in report.glob("clips/*/spectrogram.png"):
        width, height = _png_size(image)
        assert width >= 600 and height >= 500 and image.stat().st_size > 20_000

    rows = list(csv.DictReader((report / "clips.csv").open()))
    assert len(rows) == 3 * len(SYSTEMS)
    assert {r["system"] for r in rows} == set(SYSTEMS)
    for row in rows:
        if row["system"] == "input":
            assert float(row["delta_si_sdr"]) == 0.0 and float(row["bleed_reduction_db"]) == 0.0
    aggregate = _strict_json(report / "aggregate.json")["aggregate"]
    assert set(aggregate) == set(SYSTEMS)
    assert math.isfinite(aggregate["model"]["si_sdr"]["mean"])
    assert len(_strict_json(report / "clips.json")["clips"]) == 3
    markdown = (report / "aggregate.md").read_text()
    assert all(f"| {system} |" in markdown for system in SYSTEMS)


def test_evaluate_limit_split_and_no_report(setup):
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(setup["data"]),
                                      "--split", "valid", "--limit", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "| model |" in result.output and "report:" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--split", "test"], "no clips in split 'test'"),
    (["--report", "{data}/report"], "inside the dataset"),
    (["--report", "{checkpoint}/report"], ".pt: Not a directory"),  # a file in the way
    (["--hiss-cut-hz", "16000"], "hiss_cut_hz must be 0 (never cut) or a frequency above 20000"),
])
def test_evaluate_user_errors(setup, args, message):
    data = setup["data"]
    args = [a.format(data=data, checkpoint=setup["checkpoint"]) for a in args]
    before = _snapshot(data)
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(data), *args])
    assert result.exit_code == 1 and "Error: " in result.output and message in result.output
    assert _snapshot(data) == before


def test_evaluate_missing_checkpoint_is_one_line(setup):
    result = CliRunner().invoke(cli, ["evaluate", str(setup["root"] / "nope.pt"), str(setup["data"]),
                                      "--split", "all"])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1


def test_evaluate_broken_clip_fails_before_writing(setup, tmp_path):
    import shutil

    data = shutil.copytree(setup["data"], tmp_path / "data")
    last = sorted(p for p in data.iterdir() if p.is_dir())[-1]
    (last / "clean.wav").write_bytes(b"not audio")
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(data),
                                      "--split", "all", "--report", str(report)])
    assert result.exit_code == 1 and "unreadable clip" in result.output
    assert not report.exists()


def test_a_nan_in_the_last_clip_leaves_no_report_and_keeps_an_earlier_one(setup, tmp_path):
    """Bad samples are found only when the clip is processed: the report, staged beside
    its folder, is then not written; an earlier report in that folder stays as it was,
    and a later good run replaces its files."""
    import shutil

    import soundfile as sf

    report = tmp_path / "report"

    def args(data: Path, to: Path = report) -> list[str]:
        return ["evaluate", str(setup["checkpoint"]), str(data), "--split", "all",
                "--report", str(to)]

    assert CliRunner().invoke(cli, args(setup["data"])).exit_code == 0
    (report / "notes.txt").write_text("mine")
    before = _snapshot(report)
    data = shutil.copytree(setup["data"], tmp_path / "data")
    last = sorted(p for p in data.iterdir() if p.is_dir())[-1]
    noisy, rate = sf.read(last / "noisy.wav", dtype="float32")
    noisy[100] = np.nan
    sf.write(last / "noisy.wav", noisy, rate, subtype="FLOAT")
    result = CliRunner().invoke(cli, args(data))
    assert result.exit_code == 1 and "NaN" in result.output
    assert _snapshot(report) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "report"]  # no staging left
    deeper = tmp_path / "new" / "deeper" / "report"  # the folders made for it go too
    assert CliRunner().invoke(cli, args(data, deeper)).exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "report"]
    assert CliRunner().invoke(cli, args(setup["data"])).exit_code == 0
    assert (report / "notes.txt").read_text() == "mine" and (report / "index.html").is_file()


def _variant(setup, tmp_path: Path, ids: dict[str, str]) -> Path:
    """A copy of the dataset whose manifest lists the clips of ``ids`` (old id -> new id,
    the folder renamed to match), all in the valid split."""
    import shutil

    data = tmp_path / "variant"
    data.mkdir()
    for old, new in ids.items():
        shutil.copytree(setup["data"] / old, data / new)
    clips = [{"id": new, "split": "valid"} for new in ids.values()]
    (data / "manifest.json").write_text(json.dumps({"clips": clips}))
    return data


def _first_ids(setup, count: int) -> list[str]:
    return [c["id"] for c in json.loads((setup["data"] / "manifest.json").read_text())["clips"]][:count]


@pytest.mark.parametrize("inside", ["clips", "mine/data"])
def test_a_report_around_the_dataset_is_refused_and_the_dataset_kept(setup, tmp_path, inside):
    """The report replaces its clips/ folder whole: a dataset at REPORT/clips was deleted."""
    import shutil

    data = shutil.copytree(setup["data"], tmp_path / "report" / inside)
    before = _snapshot(data)
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(data), "--split",
                                      "all", "--limit", "1", "--report", str(tmp_path / "report")])
    assert result.exit_code == 1 and "around the dataset" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _snapshot(data) == before


def test_a_clips_folder_no_report_made_is_not_replaced(setup, tmp_path):
    mine = tmp_path / "report" / "clips" / "keep.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(setup["data"]),
                                      "--split", "all", "--limit", "1",
                                      "--report", str(tmp_path / "report")])
    assert result.exit_code == 1 and "not made by an earlier report" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert mine.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging left


@pytest.mark.parametrize("kind", ["link", "file"])
def test_a_clips_link_or_file_is_refused_before_scoring_and_nothing_is_written(setup, tmp_path,
                                                                                kind):
    """An earlier report's clips/ moved to another disk and linked back: the rerun moved its
    clips.csv in, then failed on clips/ ("Not a directory"), leaving one checkpoint's CSV
    beside another's JSON and HTML; a plain file there left a stray clips.csv."""
    report = tmp_path / "report"
    report.mkdir()
    if kind == "link":
        (tmp_path / "elsewhere").mkdir()
        (report / "clips").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        (report / "index.html").write_text("earlier")
    else:
        (report / "clips").write_text("mine")
    before = sorted(p.name for p in report.iterdir())
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(setup["data"]),
                                      "--split", "all", "--limit", "1", "--report", str(report)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: {report / 'clips'}: a link or a file where the "
                                     "report writes its clips folder; move it, or choose "
                                     "another report folder")
    assert sorted(p.name for p in report.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["elsewhere", "report"] if kind == "link" else ["report"])


REPORT_ENTRIES = ["aggregate.json", "aggregate.md", "clips", "clips.csv", "clips.json",
                  "index.html"]


def _another_disk(monkeypatch, disk: Path) -> None:
    """Make ``os.replace`` fail with EXDEV between ``disk`` and any other folder, as it does
    across a mount point (a Docker bind mount, a link to another drive)."""
    replace, disk = os.replace, Path(os.path.realpath(disk))

    def across(src, dst, **kwargs):
        if (Path(os.path.realpath(src)).is_relative_to(disk)
                != Path(os.path.realpath(dst)).is_relative_to(disk)):
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), None, str(dst))
        return replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", across)


@pytest.mark.parametrize("through", ["mount point", "link"])
def test_a_report_folder_on_another_disk_takes_the_report(setup, tmp_path, monkeypatch, through):
    """The report was built beside --report and moved in at the end: into a mount point or
    a link to another disk that failed with EXDEV, after every clip was scored."""
    disk = tmp_path / "disk"
    disk.mkdir()
    report = disk if through == "mount point" else tmp_path / "report"
    if through == "link":
        report.symlink_to(disk, target_is_directory=True)
    _another_disk(monkeypatch, disk)
    for _ in range(2):  # a new report, then one that replaces it
        result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(setup["data"]),
                                          "--split", "all", "--limit", "1",
                                          "--report", str(report)])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in disk.iterdir()) == REPORT_ENTRIES
    assert len(_strict_json(disk / "clips.json")["clips"]) == 1


def test_a_report_into_the_working_folder_needs_no_writable_parent(setup, tmp_path, monkeypatch):
    """``--report .`` in a folder the user may write, under one they may not, was refused
    naming the parent, where the report was staged."""
    report = tmp_path / "report"
    report.mkdir()
    mkdir = os.mkdir

    def read_only_parent(path, *args, **kwargs):
        if Path(path).absolute().parent == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only_parent)
    monkeypatch.chdir(report)
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(setup["data"]),
                                      "--split", "all", "--limit", "1", "--report", "."])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in report.iterdir()) == REPORT_ENTRIES


def test_a_report_move_cut_short_keeps_the_earlier_report_whole(setup, tmp_path, held_open):
    """A report file that cannot be replaced (on Windows, index.html open in a browser that
    locks it) stopped the move part-way: the earlier report's clips/ already deleted and
    replaced, clips.json and clips.csv the new run's, index.html the old one's."""
    report = tmp_path / "report"
    args = ["evaluate", str(setup["checkpoint"]), str(setup["data"]), "--split", "all",
            "--limit", "1", "--report", str(report)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = {str(p.relative_to(report)): p.read_bytes() for p in report.rglob("*") if p.is_file()}
    held_open(report / "index.html")
    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.pt", build_model("bandmask-tiny"))
    result = CliRunner().invoke(cli, ["evaluate", str(other), *args[2:]])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {report / 'index.html'}: Permission denied")
    after = {str(p.relative_to(report)): p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in report.iterdir()) == REPORT_ENTRIES  # nothing hidden left


def test_a_folder_named_as_a_report_file_is_refused_and_kept(setup, tmp_path):
    """Any folder bearing a report file's name was deleted whole when the report moved in."""
    report = tmp_path / "report"
    args = ["evaluate", str(setup["checkpoint"]), str(setup["data"]), "--split", "all",
            "--limit", "1", "--report", str(report)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    (report / "aggregate.md").unlink()
    (report / "aggregate.md").mkdir()
    (report / "aggregate.md" / "notes.txt").write_text("mine")
    index = (report / "index.html").read_bytes()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {report / 'aggregate.md'}: a folder where the report writes its aggregate.md "
        "file; move it, or choose another report folder")
    assert (report / "aggregate.md" / "notes.txt").read_text() == "mine"
    assert (report / "index.html").read_bytes() == index
    assert sorted(p.name for p in report.iterdir()) == REPORT_ENTRIES


def test_clip_ids_of_one_safe_name_get_their_own_folders(setup, tmp_path):
    """ "a b" and "a_b" both read as a_b on disk: the second clip's files overwrote the first's."""
    first, second = _first_ids(setup, 2)
    data = _variant(setup, tmp_path, {first: "a b", second: "a_b"})
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(data),
                                      "--report", str(report), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len(list((report / "clips").iterdir())) == 2
    parser = _Links()
    parser.feed((report / "index.html").read_text())
    audio = [link for link in parser.links if link.endswith("noisy.wav")]
    assert len(set(audio)) == 2 and all((report / link).is_file() for link in audio)


def test_folder_names_are_distinct_on_any_disk():
    names = folder_names(["a b", "a_b", ".", "..", "clip", "A_B", "a_b-1"])
    assert len({name.lower() for name in names}) == 7
    assert names[:2] == ["a_b", "a_b-1"] and names[2] == "clip"


def test_a_meta_json_that_is_not_an_object_is_one_line(setup, tmp_path):
    (first,) = _first_ids(setup, 1)
    data = _variant(setup, tmp_path, {first: first})
    (data / first / "meta.json").write_text("[]")
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(data)])
    assert result.exit_code == 1 and "meta.json: clip metadata must be a JSON object" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_scores_take_the_ring_of_pieces_struck_before_the_clip_out_of_the_tom_kick_regions():
    """evaluate gives the metrics a clip's ``onsets_before``: a crash struck before the
    clip rings over its lone kick, so no sample is kick alone and tom/kick leakage is
    undefined (NaN). Without them the crash's ring was scored as kick leakage (-20 dB
    here)."""
    rng = np.random.default_rng(0)
    noisy = 0.1 * rng.standard_normal(48000)
    versions = {"noisy": noisy, "clean": np.zeros_like(noisy), "denoised": 0.1 * noisy}
    kick = {"sample": 12000, "instrument": "kick", "target": False}
    crash = {"sample": -100, "instrument": "crash", "target": False}
    rung_in = score_systems(versions, 48000, {"onsets": [kick], "onsets_before": [crash]},
                            {"model": "denoised"})
    assert math.isnan(rung_in["model"]["tom_kick_leakage_db"])
    alone = score_systems(versions, 48000, {"onsets": [kick]}, {"model": "denoised"})
    assert alone["model"]["tom_kick_leakage_db"] == pytest.approx(-20.0)


def test_means_over_fewer_clips_are_named_and_zero_is_not_negative():
    """The table's header counts every clip; a mean over fewer (a bleed-only clip has no
    SI-SDR, a clip without ghost notes no ghost error) is named under it. A value that
    rounds to zero prints as 0.00, not -0.00."""
    from training import report

    rows = {"input": {"delta_si_sdr": {"mean": 0.0, "median": 0.0, "count": 3},
                      "ghost_level_error_db": {"mean": 1.0, "median": 1.0, "count": 2}},
            "model": {"delta_si_sdr": {"mean": 5.0, "median": 5.0, "count": 3},
                      "ghost_level_error_db": {"mean": 0.5, "median": 0.5, "count": 1},
                      "bleed_reduction_db": {"mean": -0.001, "median": 9.0, "count": 4}}}
    titles = dict(report.COLUMNS)
    note = report.coverage_note(rows, 4)
    assert note == (f"Means over fewer of the 4 clips: {titles['delta_si_sdr']} 3, "
                    f"{titles['ghost_level_error_db']} 1-2.")
    assert report.coverage_note({"model": {"delta_si_sdr": {"count": 4}}}, 4) == ""
    assert "| 0.00 / 9.00 |" in report.markdown_table(rows)


@pytest.mark.parametrize("length", [1, 400, 2047, 2048])
def test_a_clip_shorter_than_a_spectrogram_frame_still_gets_its_picture(length):
    """scipy shortened the 2048-sample frame to such a clip but kept its 1536-sample
    overlap and refused the pair: ``evaluate --report`` ended in a traceback."""
    clip = np.cos(np.arange(length) * 0.3)
    spectrogram = mel_spectrogram_db(clip, 48000)
    assert spectrogram.shape[0] == 128 and np.isfinite(spectrogram).all()
    assert spectrogram.max() > -120.0 + 20.0  # the clip is in it, not just the padding


def test_a_full_disk_under_the_report_names_the_report_folder(setup, tmp_path, monkeypatch):
    """The report is built in a hidden folder beside ``--report``: a full disk was reported
    against that folder, gone by the time the error is read."""
    import soundfile as sf

    def disk_full(self, data):
        raise sf.LibsndfileError(2)  # libsndfile's failed system call

    monkeypatch.setattr(sf.SoundFile, "write", disk_full)
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(setup["checkpoint"]), str(setup["data"]),
                                      "--split", "all", "--limit", "1", "--report", str(report)])
    assert result.exit_code == 1
    clip = sorted(p.name for p in setup["data"].iterdir() if p.is_dir())[0]
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {report / 'clips' / clip / 'noisy.wav'}: could not write the output "
        "(System error.)")
    assert list(tmp_path.iterdir()) == []

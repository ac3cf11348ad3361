"""Runs planned at the same time against one media folder (the CLI through reapy while an
action's worker runs, two REAPER instances sharing a project), and a worker whose REAPER
is gone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_reaper import FakeReaper
from reaper_helpers import halve, make_wav, squash

from reaper_bridge import jobs, processing, worker
from reaper_bridge.bridge import apply, discard, executor_for, prepare, run_tasks
from reaper_bridge.filelock import LockBusy, release, try_lock
from reaper_bridge.jobs import CACHE_NAME, MediaCache, Task


def _snare(fake: FakeReaper, tmp_path: Path, name: str = "snare") -> Path:
    wav = make_wav(tmp_path / "rec" / f"{name}.wav", 0.5)
    item = fake.add_item(fake.add_track(name), 0.0, 0.4)
    fake.add_take(item, fake.file_source(str(wav)), name)
    return wav


def test_two_runs_planned_at_once_get_their_own_files_and_cache_entries(
        fake: FakeReaper, api, tmp_path: Path) -> None:
    """Both plans are made before either writes a file: each claims its own name on disk,
    so neither overwrites the other's result, and both are recorded in the index."""
    wav = _snare(fake, tmp_path)
    first, first_cache = prepare(api, ("debleed",), "settings-a", str(tmp_path / "w1"))
    second, second_cache = prepare(api, ("debleed",), "settings-b", str(tmp_path / "w2"))
    names = [os.path.basename(plan.tasks[0].dst) for plan in (first, second)]
    assert names == ["snare.debleed.wav", "snare.debleed-2.wav"]
    for plan in (first, second):  # claimed: empty placeholders until the worker writes
        assert os.path.getsize(plan.tasks[0].dst) == 0

    run_tasks(second.tasks, executor_for({"debleed": squash}))
    apply(api, second, second_cache)
    run_tasks(first.tasks, executor_for({"debleed": halve}))
    apply(api, first, first_cache)
    source = sf.read(wav, dtype="float32")[0]
    np.testing.assert_array_equal(sf.read(first.tasks[0].dst, dtype="float32")[0], source * 0.5)
    np.testing.assert_array_equal(sf.read(second.tasks[0].dst, dtype="float32")[0],
                                  source * np.abs(source))
    index = MediaCache(fake.media_dir).index
    assert sorted(index.values()) == ["snare.debleed-2.wav", "snare.debleed.wav"]


def test_a_discarded_or_failed_plan_leaves_no_placeholder(fake: FakeReaper, api, tmp_path: Path,
                                                          monkeypatch) -> None:
    _snare(fake, tmp_path)
    plan, _ = prepare(api, ("debleed", "gate"), "", str(tmp_path / "w"))
    claimed = sorted(os.path.basename(task.dst) for task in plan.tasks)
    assert claimed == ["snare.debleed.wav", "snare.gate.wav"]
    assert sorted(p.name for p in Path(fake.media_dir).iterdir()) == claimed
    discard(plan.tasks)  # a failed or cancelled run
    assert list(Path(fake.media_dir).iterdir()) == []

    calls = []

    def failing_lookup(self, key: str) -> None:  # the plan fails after claiming one name
        calls.append(key)
        if len(calls) == 2:
            raise OSError("disk gone")

    monkeypatch.setattr(MediaCache, "lookup", failing_lookup)
    with pytest.raises(OSError, match="disk gone"):
        prepare(api, ("debleed", "gate"), "", str(tmp_path / "w"))
    assert list(Path(fake.media_dir).iterdir()) == []


def test_a_failed_run_removes_its_own_temporary_files_only(tmp_path: Path) -> None:
    """Temporary files were found by their output's name cut to 40 characters: with a long
    stem, ``<stem>.debleed.wav`` and another run's ``<stem>.debleed-2.wav`` shared it, and
    run A's failure deleted run B's half-written output."""
    from denoiser.outfiles import AUDIO_SUFFIX, atomic_output, hidden_prefix

    stem = "Snare_Top_Mic_-_Session_3_-_Take_12"
    mine, theirs = (MediaCache(str(tmp_path)).unique_path(stem, "debleed") for _ in range(2))
    assert os.path.basename(theirs) == f"{stem}.debleed-2.wav"
    my_tmp = tmp_path / f"{hidden_prefix(os.path.basename(mine))}0123abcd{AUDIO_SUFFIX}"
    my_tmp.write_bytes(b"RIFF")  # run A's worker was killed while writing
    with atomic_output(theirs, AUDIO_SUFFIX) as their_tmp:  # run B is writing
        their_tmp.write_bytes(b"RIFF")
        discard([Task("denoise", "src.wav", mine, "debleed")])  # run A is cleaned up
        assert not my_tmp.exists() and not os.path.exists(mine)
        assert their_tmp.exists()
    assert Path(theirs).read_bytes() == b"RIFF"


def test_an_empty_placeholder_is_never_taken_for_a_cached_result(tmp_path: Path) -> None:
    """An index entry whose file was deleted names a free name; another run may have
    claimed it since (an empty placeholder: a run that read the index before the entry
    was written), then written its own result there."""
    (tmp_path / CACHE_NAME).write_text(json.dumps({"old": "snare.debleed.wav"}))
    cache = MediaCache(str(tmp_path))
    claimed = str(tmp_path / "snare.debleed.wav")
    assert jobs.try_claim(claimed) and os.path.getsize(claimed) == 0
    assert MediaCache(str(tmp_path)).lookup("old") is None
    Path(claimed).write_bytes(b"RIFF the other run's result")
    cache.commit([Task("denoise", "x.wav", claimed, "debleed", cache_key="new")])
    assert MediaCache(str(tmp_path)).index == {"new": "snare.debleed.wav"}  # stale entry gone


def test_two_caches_commit_and_both_entries_survive(tmp_path: Path, monkeypatch) -> None:
    media = str(tmp_path)
    first, second = MediaCache(media), MediaCache(media)  # both read the index before writing
    first.commit([Task("denoise", "a.wav", os.path.join(media, "a.debleed.wav"), "debleed",
                       cache_key="a")])
    lock = os.path.join(media, CACHE_NAME + ".lock")
    Path(lock).touch()  # left by a run that crashed while merging: nothing holds it
    second.commit([Task("denoise", "b.wav", os.path.join(media, "b.debleed.wav"), "debleed",
                        cache_key="b")])
    assert MediaCache(media).index == {"a": "a.debleed.wav", "b": "b.debleed.wav"}
    assert sorted(os.listdir(media)) == [CACHE_NAME]  # no lock or temporary file left

    merging = try_lock(lock)  # another run is merging right now: wait, then give up
    assert merging is not None
    monkeypatch.setattr(jobs, "LOCK_TIMEOUT_SECONDS", 0.2)
    with pytest.raises(LockBusy, match="held by another run"):
        MediaCache(media).commit([Task("denoise", "c.wav", "c.debleed.wav", "debleed",
                                       cache_key="c")])
    assert MediaCache(media).index == {"a": "a.debleed.wav", "b": "b.debleed.wav"}
    release(merging)


def test_the_worker_stops_when_its_parent_changes(monkeypatch) -> None:
    parent = os.getppid()
    assert not worker.cancelled("", parent)
    monkeypatch.setattr(worker.os, "getppid", lambda: 1 if parent != 1 else 2)
    assert worker.cancelled("", parent)


def test_an_orphaned_worker_stops_and_removes_the_jobs_files(tmp_path: Path, monkeypatch) -> None:
    """REAPER quit or crashed during the first task: the worker stops at its next report
    and removes every output of the job (finished and still claimed), which no action is
    left to delete, and the job's render folder (sidechain keys, accessor renders: hundreds
    of MB for long takes) and job folder, which it used to leave in the temporary folder."""
    src = make_wav(tmp_path / "snare.wav", 0.2)
    outputs = [tmp_path / "a.debleed.wav", tmp_path / "b.debleed.wav"]
    for path in outputs:
        path.touch()  # claimed when planned
    folder, scratch = tmp_path / "debleed-job-x", tmp_path / "debleed-render-x"
    folder.mkdir()
    make_wav(scratch / "key_000.wav", 0.2)
    tasks = [Task("slice", str(src), str(path), frames=4800) for path in outputs]
    job = {"tasks": jobs.tasks_to_json(tasks), "status": str(folder / "status.json"),
           "result": str(folder / "result.json"), "cancel": str(folder / "cancel"),
           "folder": str(folder), "scratch": str(scratch)}
    (folder / "job.json").write_text(json.dumps(job))
    parent, real_slice, gone = os.getppid(), processing.slice_file, []

    def slice_then_reaper_dies(*args, **kwargs):
        written = real_slice(*args, **kwargs)
        gone.append(True)
        return written

    monkeypatch.setattr(processing, "slice_file", slice_then_reaper_dies)
    monkeypatch.setattr(worker.os, "getppid", lambda: (parent + 1) if gone else parent)
    assert worker.run_job(str(folder / "job.json")) == 1
    assert len(gone) == 1  # the second task never ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snare.wav"]


def test_a_worker_whose_reaper_lives_keeps_its_folders(tmp_path: Path) -> None:
    """Only an orphan removes the job and render folders: a failure the action reports
    keeps both (the log is named in its message, the renders are the action's)."""
    folder, scratch = tmp_path / "debleed-job-x", tmp_path / "debleed-render-x"
    folder.mkdir()
    scratch.mkdir()
    job = {"tasks": jobs.tasks_to_json([Task("slice", str(tmp_path / "missing.wav"),
                                             str(tmp_path / "a.wav"), frames=10)]),
           "status": str(folder / "status.json"), "result": str(folder / "result.json"),
           "folder": str(folder), "scratch": str(scratch)}
    (folder / "job.json").write_text(json.dumps(job))
    assert worker.run_job(str(folder / "job.json")) == 1
    assert "error" in json.loads((folder / "result.json").read_text()) and scratch.is_dir()


def test_a_deleted_result_keeps_its_number(tmp_path: Path) -> None:
    """Numbers were counted from the files there: once the highest result was deleted (the
    project folder cleaned after an undo), the next run took its name, and a take brought
    back by redo played another result."""
    media = str(tmp_path)
    for key in ("a", "b"):
        cache = MediaCache(media)
        path = cache.unique_path("snare", "debleed")
        Path(path).write_bytes(b"RIFF")
        cache.commit([Task("denoise", "snare.wav", path, "debleed", cache_key=key)])
    os.remove(os.path.join(media, "snare.debleed-2.wav"))
    again = MediaCache(media).unique_path("snare", "debleed")
    assert os.path.basename(again) == "snare.debleed-3.wav"

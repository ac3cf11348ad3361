"""The worker job's lifecycle inside a (fake) REAPER, with a stub worker: a worker that
ignores SIGTERM, one that fails with a traceback, a media folder that is a file, a
project switched while processing, a source the worker finds silent, a script the user
terminates while it polls."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_reaper import FakeReaper
from reaper_helpers import make_wav

from reaper_bridge import actions
from reaper_bridge.install import install
from reaper_bridge.rpr import RawRPR
from reaper_bridge.settings import load_settings, save_settings, settings_path

#: Stands in for ``python -m reaper_bridge.worker JOB``: its job file is argv[3].
STUB = '''
import json, os, shutil, signal, sys, time, traceback
job = json.load(open(sys.argv[3]))
mode = os.environ["STUB_MODE"]
if mode == "hang":  # stuck in native code: SIGTERM does nothing
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)
if mode == "bug":
    try:
        raise TypeError("boom")
    except Exception:
        traceback.print_exc()
    open(job["result"], "w").write(json.dumps({"error": "TypeError: boom"}))
    sys.exit(1)
silent = [task["src"] for task in job["tasks"] if "tacet" in task["src"]]  # as found silent
for task in job["tasks"]:
    if task["src"] not in silent:
        shutil.copyfile(task["src"], task["dst"])
open(job["result"], "w").write(json.dumps({"ok": True, "silent": silent}))
'''


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake REAPER with one item, its settings pointing at the stub worker."""
    script = tmp_path / "stub_worker.py"
    script.write_text(f"#!{sys.executable}\n{STUB}")
    script.chmod(0o755)
    resource, media = tmp_path / "res", tmp_path / "media"
    resource.mkdir()
    install(str(resource))
    path = settings_path(str(resource))
    settings = load_settings(path)
    settings.python, settings.device = str(script), "cpu"
    save_settings(path, settings)
    fake = FakeReaper(str(resource), str(media))
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.3)
    fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "snare.wav", 0.5))), "Snare")
    jobs: dict[int, actions.WorkerJob] = {}
    monkeypatch.setattr(actions, "JOBS", jobs)
    yield fake, RawRPR(fake.module()), item, monkeypatch
    for job in jobs.values():  # a failed test must not leave its worker running
        job.process.kill()


def test_a_worker_ignoring_sigterm_is_killed_without_blocking(stub) -> None:
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", "hang")
    monkeypatch.setattr(actions, "CANCEL_GRACE_SECONDS", 0.2)
    monkeypatch.setattr(actions, "KILL_GRACE_SECONDS", 0.3, raising=False)
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False))
    fake.run_script(lambda: actions.cancel(api))
    slowest = [0.0]

    def ticks() -> None:  # REAPER's defer loop; each tick must return at once (UI thread)
        while fake.deferred:
            start = time.monotonic()
            fake.run_next()
            slowest[0] = max(slowest[0], time.monotonic() - start)
            time.sleep(0.02)

    loop = threading.Thread(target=ticks, daemon=True)
    loop.start()
    loop.join(10)
    if job.process.poll() is None:  # the old code: blocked in wait(); do not leak the stub
        job.process.kill()
        loop.join(5)
    assert slowest[0] < 1.0, f"a tick blocked the UI thread for {slowest[0]:.1f} s"
    assert not fake.deferred and not actions.JOBS
    assert job.process.returncode is not None
    assert fake.messages == ["debleed: cancelled; nothing was changed."]
    assert [len(i.takes) for i in fake.tracks[0].items] == [1]


def test_a_failing_worker_keeps_its_log(stub) -> None:
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", "bug")
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False))
    fake.run_deferred()
    assert fake.messages == [f"debleed failed: TypeError: boom; log: {job.log}"]
    assert "Traceback" in Path(job.log).read_text()
    assert not any(Path(fake.media_dir).glob("*.wav"))
    shutil.rmtree(job.folder)


def test_a_media_folder_that_is_a_file_is_one_message(stub) -> None:
    fake, api, item, monkeypatch = stub
    Path(fake.media_dir).write_text("a file")
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "debleed-render-*")))
    assert fake.run_script(lambda: actions.denoise_selected(api, with_gate=False)) is None
    assert fake.messages == [f"{fake.media_dir}: is a file, not a folder"]
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "debleed-render-*"))) == before
    assert fake.undo == [] and not actions.JOBS


def test_a_project_switched_while_processing_is_left_alone(stub) -> None:
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", "ok")
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False))
    project_a, tracks_a = fake.project, fake.tracks
    fake.project, fake.tracks = fake._ptr("ReaProject*", None), []  # another tab now
    other = fake.add_item(fake.add_track("Other"), 0.0, 1.0)
    fake.add_take(other, fake.file_source(str(make_wav(Path(fake.media_dir).parent / "o.wav", 1.0))), "O")
    fake.run_deferred()
    assert fake.messages == ["debleed: the project was switched or closed while processing; "
                             "run the action again"]
    assert fake.undo == [] and fake.undo_points == [] and not actions.JOBS
    assert [t.name for t in item.takes] == ["Snare"] and [t.name for t in other.takes] == ["O"]
    assert not any(Path(fake.media_dir).glob("*.wav")) and not os.path.exists(job.folder)
    fake.project, fake.tracks = project_a, tracks_a


def test_the_cli_leaves_a_project_switched_while_processing_alone(fake: FakeReaper, api,
                                                                  tmp_path: Path) -> None:
    """``debleed reaper denoise`` (``bridge.denoise``) did not check the tab the action
    checks: switching tabs while the model ran recorded an empty undo point in the other
    project, called every item deleted and left the run's files behind."""
    from reaper_bridge.bridge import denoise, executor_for
    from reaper_bridge.items import BridgeError
    from reaper_helpers import halve

    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.5)
    fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "s.wav", 1.0))), "Snare")
    project_a, tracks_a = fake.project, fake.tracks

    def process_then_switch(src: str, dst: str) -> None:
        halve(src, dst)
        fake.project, fake.tracks = fake._ptr("ReaProject*", None), []  # another tab now
        fake.add_take(fake.add_item(fake.add_track("Other"), 0.0, 1.0),
                      fake.file_source(str(make_wav(tmp_path / "o.wav", 1.0))), "O")

    with pytest.raises(BridgeError, match="the project was switched or closed while processing"):
        denoise(api, ("debleed",), executor_for({"debleed": process_then_switch}))
    assert fake.undo == [] and fake.undo_points == []
    assert not os.path.exists(fake.media_dir) or os.listdir(fake.media_dir) == []
    fake.project, fake.tracks = project_a, tracks_a
    assert [t.name for t in item.takes] == ["Snare"]


def test_an_item_the_worker_finds_silent_is_skipped_by_label(stub, tmp_path: Path) -> None:
    """The worker failed the whole job on one silent source; it now reports the source,
    and the action skips that item by its label while the others get their takes."""
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", "ok")
    tacet = fake.add_item(fake.tracks[0], 1.0, 0.3)
    fake.add_take(tacet, fake.file_source(str(make_wav(tmp_path / "tacet.wav", 0.5))), "Tacet")
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False))
    fake.run_deferred()
    assert fake.messages == [] and not actions.JOBS
    assert "Skipped:\n  Snare @ 1.000 s: silent" in fake.console[-1]
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed]"]
    assert [t.name for t in tacet.takes] == ["Tacet"]
    assert sorted(os.listdir(fake.media_dir)) == [".debleed-cache.json", "snare.debleed.wav"]
    assert fake.undo == [("begin",), ("end", "debleed: debleed on 1 item(s)")]  # the silent one gets none


@pytest.mark.filterwarnings("ignore:.*a recording floor")  # white-noise tracks
def test_the_worker_reports_a_silent_source_and_runs_the_others(tmp_path: Path,
                                                                tiny_checkpoint: Path) -> None:
    from reaper_bridge import worker
    from reaper_bridge.jobs import Task, tasks_to_json

    sound = make_wav(tmp_path / "snare.wav", 0.5)
    tacet = tmp_path / "tacet.wav"
    sf.write(tacet, np.zeros(24000, np.float32), 48000, subtype="FLOAT")
    tasks = [Task("denoise", str(src), str(tmp_path / f"{src.stem}.debleed.wav"), "debleed")
             for src in (tacet, sound)]
    job = {"tasks": tasks_to_json(tasks), "status": str(tmp_path / "status.json"),
           "result": str(tmp_path / "result.json"), "model": str(tiny_checkpoint),
           "device": "cpu"}
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert worker.run_job(str(tmp_path / "job.json")) == 0
    assert json.loads((tmp_path / "result.json").read_text()) == {"ok": True,
                                                                 "silent": [str(tacet)]}
    assert sf.info(str(tmp_path / "snare.debleed.wav")).frames == 24000
    assert not (tmp_path / "tacet.debleed.wav").exists()


DENOISE = "debleed_denoise_selected.py"


def _left_behind(fake: FakeReaper, job: actions.WorkerJob) -> list[str]:
    """What a job left: files in the media folder, its job folder."""
    media = sorted(os.listdir(fake.media_dir)) if os.path.isdir(fake.media_dir) else []
    return media + ([job.folder] if os.path.exists(job.folder) else [])


@pytest.mark.parametrize("mode", ["hang", "ok"])
def test_a_job_whose_script_the_user_terminates_ends_and_the_next_action_runs(
        stub, mode: str) -> None:
    """The user terminates the action's script while it polls (*Actions > Running
    scripts*): REAPER drops its deferred ticks and runs its atexit code. No tick ended the
    job: it stayed registered, every later action said a job was running, Cancel did
    nothing, and the worker's output, the job folder and ExtState's ``running`` stayed.
    Whether the worker still runs (``hang``) or had finished (``ok``), it is gone now and
    so is everything the job made."""
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", mode)
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False), DENOISE)
    if mode == "ok":
        job.process.wait(30)  # finished, and terminated before a tick saw it
    else:
        fake.run_next()  # a tick
    assert fake.run_script(lambda: actions.denoise_selected(api, with_gate=False)) is None
    assert fake.messages == ["A debleed job is already running; run 'debleed: Cancel' to stop it."]
    assert fake.running_scripts() == [DENOISE, "script"]  # the refused run's no-op defer

    boxes = list(fake.messages)
    fake.terminate(DENOISE)
    assert job.process.returncode is not None and not actions.JOBS
    # on the console, not in a box: REAPER runs atexit code as it quits too, if it does
    assert fake.messages == boxes
    assert fake.console[-1] == ("debleed: its script was terminated in REAPER; the job was "
                                "stopped and nothing was changed.\n")
    assert fake.ext[("debleed", "state")] == "idle" and _left_behind(fake, job) == []
    assert [t.name for t in item.takes] == ["Snare"] and fake.undo == []

    fake.run_deferred()
    monkeypatch.setenv("STUB_MODE", "ok")
    assert fake.run_script(lambda: actions.denoise_selected(api, with_gate=False)) is not None
    fake.run_deferred()
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed]"]
    assert len(fake.messages) == 1 and not actions.JOBS  # the one refusal


def test_a_job_that_ends_normally_leaves_its_atexit_code_nothing_to_do(stub) -> None:
    """REAPER runs the atexit code after the job's last tick too, when the script
    finishes: it must not touch the finished job's takes and files."""
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", "ok")
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False), DENOISE)
    fake.run_deferred()
    assert fake.running_scripts() == [] and fake.messages == []
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed]"]
    assert sorted(os.listdir(fake.media_dir)) == [".debleed-cache.json", "snare.debleed.wav"]


@pytest.mark.parametrize("action", ["cancel", "denoise"])
def test_a_job_whose_ticks_stopped_is_ended_by_the_next_action(stub, action: str) -> None:
    """Ticks that stopped without the atexit code running (REAPER dropped the deferred
    code some other way) leave the job registered: after ``STALE_SECONDS`` without a tick,
    Cancel or the next action ends it, and the next action then runs."""
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", "hang")
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False), DENOISE)
    fake.deferred.clear()  # dropped, its atexit code not run
    fake.run_script(lambda: actions.cancel(api))  # a second ago: still the running job's
    assert actions.JOBS and fake.ext[("debleed", "cancel")] == "1" and fake.messages == []
    job.last_tick -= actions.STALE_SECONDS
    monkeypatch.setenv("STUB_MODE", "ok")
    fake.run_script(lambda: actions.ACTIONS[action](api))
    assert job.process.returncode is not None
    assert fake.messages == ["debleed: its script stopped running in REAPER; the job was "
                             "stopped and nothing was changed."]
    assert fake.ext[("debleed", "state")] == ("idle" if action == "cancel" else "running")
    fake.run_deferred()
    assert not actions.JOBS and not os.path.exists(job.folder)
    takes = ["Snare"] if action == "cancel" else ["Snare", "Snare [debleed]"]
    assert [t.name for t in item.takes] == takes


def test_the_job_file_names_the_folders_an_orphaned_worker_removes(stub) -> None:
    """The worker can remove only what its job file names: the render folder the action
    made (here with no file: the take is read from its source) and the job folder."""
    fake, api, item, monkeypatch = stub
    monkeypatch.setenv("STUB_MODE", "ok")
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False))
    written = json.loads(Path(job.job_file).read_text())
    assert written["folder"] == job.folder
    assert os.path.basename(written["scratch"]).startswith("debleed-render-")
    assert os.path.isdir(written["scratch"])
    fake.run_deferred()
    assert not os.path.exists(written["scratch"]) and not os.path.exists(job.folder)


def test_an_unexpected_error_while_planning_leaves_no_render_folder(stub) -> None:
    """A bug in planning propagates (its traceback is the only trace of it), but the render
    folder made for the job goes first: nothing else would ever remove it."""
    fake, api, item, monkeypatch = stub

    def broken(*args, **kwargs):
        raise RuntimeError("planning bug")

    monkeypatch.setattr(actions.bridge, "prepare", broken)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "debleed-render-*")))
    with pytest.raises(RuntimeError, match="planning bug"):
        fake.run_script(lambda: actions.denoise_selected(api, with_gate=False))
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "debleed-render-*"))) == before
    assert fake.undo == [] and not actions.JOBS

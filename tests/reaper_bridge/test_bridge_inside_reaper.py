"""The installed actions inside a (fake) REAPER: real python-reapy, real worker, real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_reaper import FakeReaper
from reaper_helpers import configure, make_wav, run_installed_script

from reaper_bridge import actions
from reaper_bridge.install import install
from reaper_bridge.settings import load_settings, save_settings, settings_path

HERE = Path(__file__).parent


def run_session(tmp_path: Path, scenario: dict) -> dict:
    scenario_file, out_file = tmp_path / "scenario.json", tmp_path / "out.json"
    scenario_file.write_text(json.dumps(scenario))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(HERE / "reaper_session.py"), str(scenario_file),
                           str(out_file)], capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out_file.read_text())


def test_real_reapy_runs_on_the_fake(tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 0.5)
    (tmp_path / "res").mkdir()
    report = run_session(tmp_path, {
        "resource": str(tmp_path / "res"), "media": str(tmp_path / "media"), "probe": True,
        "items": [{"file": str(wav), "position": p, "length": 0.2, "name": "S"} for p in (0.0, 1.0)]})
    assert report["inside"] is True
    assert report["selected"] == report["fake_items"] and len(report["selected"]) == 2
    assert report["selected"][0].startswith("(MediaItem*)0x")
    assert report["state"]["calls"]["RPR_CountSelectedMediaItems"] >= 1
    assert report["state"]["calls"]["RPR_GetSelectedMediaItem"] == 2


def test_installed_action_denoises_through_reapy_with_real_model(tmp_path: Path, tiny_checkpoint: Path) -> None:
    wav = make_wav(tmp_path / "rec" / "snare.wav", 1.0)
    resource, media = tmp_path / "res", tmp_path / "media"
    resource.mkdir()
    configure(resource, tiny_checkpoint)
    report = run_session(tmp_path, {
        "resource": str(resource), "media": str(media), "script": "debleed_denoise_selected.py",
        "items": [{"file": str(wav), "position": 2.0, "length": 0.5, "name": "Snare",
                   "values": {"D_STARTOFFS": 0.3, "D_PLAYRATE": 1.5}}]})
    assert report["api"] == "reapy"
    state = report["state"]
    item = state["items"][0]
    assert item["active"] == "Snare [debleed]", state["messages"]
    new = item["takes"][1]
    assert new["values"]["D_STARTOFFS"] == 0.3 and new["values"]["D_PLAYRATE"] == 1.5
    processed, rate = sf.read(new["file"], dtype="float32", always_2d=True)
    source, _ = sf.read(wav, dtype="float32", always_2d=True)
    assert rate == 48000 and processed.shape == source.shape and np.isfinite(processed).all()
    assert not np.allclose(processed, source, atol=1e-3)  # the model did something
    assert state["undo"] == [["begin"], ["end", "debleed: debleed on 1 item(s)"]]
    assert state["ext"]["debleed/state"] == "idle" and state["messages"] == []
    assert any("1 take(s) added" in line for line in state["console"])


def test_gate_action_with_compare_variants_through_raw_fallback(tmp_path: Path, tiny_checkpoint: Path) -> None:
    wav = make_wav(tmp_path / "snare.wav", 0.6, 44100, 2)
    resource = tmp_path / "res"
    resource.mkdir()
    configure(resource, tiny_checkpoint, compare_variants=True, gate={"threshold_db": -20.0})
    report = run_session(tmp_path, {
        "resource": str(resource), "media": str(tmp_path / "media"), "reapy": False,
        "script": "debleed_denoise_selected_gate.py",
        "items": [{"file": str(wav), "position": 0.0, "length": 0.4, "name": "Top"}]})
    assert report["api"] == "RawRPR"
    item = report["state"]["items"][0]
    assert [t["name"] for t in item["takes"]] == ["Top", "Top [gate]", "Top [debleed]", "Top [debleed+gate]"]
    assert item["active"] == "Top [debleed+gate]"
    files = [Path(t["file"]).name for t in item["takes"][1:]]
    assert files == ["snare.gate.wav", "snare.debleed.wav", "snare.debleed-gate.wav"]
    for take in item["takes"][1:]:
        data, rate = sf.read(take["file"], always_2d=True)
        assert rate == 44100 and data.shape == (int(0.6 * 44100), 2)


def _fake_with_item(tmp_path: Path, model: str, seconds: float = 0.5) -> tuple[FakeReaper, object]:
    from reaper_bridge.rpr import RawRPR

    resource, media = tmp_path / "res", tmp_path / "media"
    resource.mkdir()
    configure(resource, model)
    fake = FakeReaper(str(resource), str(media))
    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.3)
    fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "snare.wav", seconds))), "Snare")
    return fake, RawRPR(fake.module())


def test_cancel_stops_the_worker_and_changes_nothing(tmp_path: Path, tiny_checkpoint: Path) -> None:
    fake, api = _fake_with_item(tmp_path, str(tiny_checkpoint))
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    assert job is not None and fake.ext[("debleed", "state")] == "running"
    # one job at a time
    assert fake.run_script(lambda: actions.denoise_selected(api, with_gate=False)) is None
    fake.run_script(lambda: actions.cancel(api))
    fake.run_deferred()
    assert job.process.returncode is not None and not actions.JOBS
    assert fake.messages[-1] == "debleed: cancelled; nothing was changed."
    assert [len(i.takes) for i in fake.tracks[0].items] == [1] and fake.undo == []
    assert not any(Path(fake.media_dir).glob("*.wav"))


def test_cancel_while_the_worker_writes_leaves_no_file(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Cancelled mid-file, the worker stops at its next block and removes its own
    half-written output: the media folder is left as it was. The job ticks while the test
    waits for the worker to write, as REAPER's defer loop runs: on a loaded machine the wait
    outlasted ``STALE_SECONDS`` without a tick, and Cancel ended the job as one whose script
    had stopped, killing the worker."""
    import time

    fake, api = _fake_with_item(tmp_path, str(tiny_checkpoint), seconds=240.0)
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    deadline = time.monotonic() + 120
    while job._read(job.status).get("fraction", 0.0) == 0.0 and time.monotonic() < deadline:
        fake.run_next()
        time.sleep(0.05)
    assert list(Path(fake.media_dir).glob(".snare.debleed.*.tmp.wav"))  # writing now
    fake.run_script(lambda: actions.cancel(api))
    fake.run_deferred()
    assert job.process.returncode == 1 and not actions.JOBS  # it stopped itself, not killed
    assert fake.messages == ["debleed: cancelled; nothing was changed."]
    assert [len(i.takes) for i in fake.tracks[0].items] == [1] and fake.undo == []
    assert list(Path(fake.media_dir).iterdir()) == []


def test_an_error_while_adding_takes_ends_the_job(tmp_path: Path, tiny_checkpoint: Path,
                                                  monkeypatch) -> None:
    """An unexpected error after the worker finished (here REAPER's peak building fails
    once the take is in) is one message, the take is undone, and the job ends, so the
    next action runs."""
    fake, api = _fake_with_item(tmp_path, str(tiny_checkpoint))

    def broken(command: int, flag: int) -> None:
        raise RuntimeError("peaks failed")

    monkeypatch.setattr(fake, "RPR_Main_OnCommand", broken)
    api = type(api)(fake.module())
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    fake.run_deferred()
    assert not actions.JOBS and fake.ext[("debleed", "state")] == "idle"
    assert len(fake.messages) == 1 and "RuntimeError: peaks failed" in fake.messages[0]
    assert [len(i.takes) for i in fake.tracks[0].items] == [1] and fake.undo_points == []
    assert list(Path(fake.media_dir).iterdir()) == []
    monkeypatch.undo()
    api = type(api)(fake.module())
    job = fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    assert job is not None
    fake.run_deferred()
    assert [len(i.takes) for i in fake.tracks[0].items] == [2]


def test_a_malformed_ini_is_one_message_in_every_action(tmp_path: Path, tiny_checkpoint: Path) -> None:
    fake, api = _fake_with_item(tmp_path, str(tiny_checkpoint))
    ini = Path(settings_path(fake.resource_path))
    ini.write_text(ini.read_text() + "threshold_db = -30dB\n")
    for action in ("denoise", "denoise_gate", "export"):
        assert fake.run_script(lambda: actions.ACTIONS[action](api)) is None
    assert len(fake.messages) == 3 and all("threshold_db = '-30dB'" in m for m in fake.messages)
    assert not actions.JOBS and [len(i.takes) for i in fake.tracks[0].items] == [1]


def test_worker_failure_is_one_message_and_no_take(tmp_path: Path) -> None:
    fake, api = _fake_with_item(tmp_path, str(tmp_path / "missing.pt"))
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    fake.run_deferred()
    assert len(fake.messages) == 1 and fake.messages[0].startswith("debleed failed: ")
    assert "missing.pt" in fake.messages[0]
    assert [len(i.takes) for i in fake.tracks[0].items] == [1] and fake.undo == []


def test_unknown_precision_in_the_ini_is_one_message_and_no_take(tmp_path: Path,
                                                                 tiny_checkpoint: Path) -> None:
    fake, api = _fake_with_item(tmp_path, str(tiny_checkpoint))
    path = settings_path(fake.resource_path)
    settings = load_settings(path)
    settings.precision = "int8"
    save_settings(path, settings)
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    fake.run_deferred()
    assert len(fake.messages) == 1 and "precision must be one of" in fake.messages[0]
    assert [len(i.takes) for i in fake.tracks[0].items] == [1] and fake.undo == []


def test_missing_worker_python_is_one_message(tmp_path: Path, tiny_checkpoint: Path) -> None:
    fake, api = _fake_with_item(tmp_path, str(tiny_checkpoint))
    path = settings_path(fake.resource_path)
    settings = load_settings(path)
    settings.python = str(tmp_path / "no-such-python")
    save_settings(path, settings)
    assert fake.run_script(lambda: actions.denoise_selected(api, with_gate=False)) is None
    assert fake.messages[0].startswith("cannot start the debleed worker with python = ")
    assert not actions.JOBS and fake.deferred == [actions.NO_OP] and fake.undo == []


def test_compare_action_says_which_items_stayed_and_is_quiet_otherwise(fake: FakeReaper, api,
                                                                      tmp_path: Path) -> None:
    """The compare action said nothing when it worked: an item without the take the others
    switched to went on playing its own unnoticed. The console now names that item, with
    what plays; a press that switched every item says nothing, since writing to the
    console opens or raises it over the arrange view during an A/B. Still no undo point."""
    from fake_reaper import AUTO_UNDO
    from reaper_helpers import halve

    from reaper_bridge.bridge import denoise, executor_for

    wav = make_wav(tmp_path / "snare.wav", 1.0)
    track = fake.add_track("Snare")
    gated, processed, plain = (fake.add_item(track, p, 0.3) for p in (0.0, 0.5, 1.0))
    for item in (gated, processed, plain):
        fake.add_take(item, fake.file_source(str(wav)), "Snare")
        item.selected = False
    processors = executor_for({"debleed": halve, "debleed+gate": halve})
    for item, variant in ((gated, "debleed+gate"), (processed, "debleed")):
        item.selected = True
        denoise(api, (variant,), processors)
        item.selected = False
    for item in (gated, processed, plain):
        item.selected = True
    undo = list(fake.undo)
    fake.run_script(lambda: actions.compare(api))
    assert [i.active.name for i in (gated, processed, plain)] == ["Snare"] * 3
    assert fake.console == []
    fake.run_script(lambda: actions.compare(api))
    assert fake.console == ["debleed: now playing: [debleed]\nKept their take:\n"
                            "  Snare @ 0.000 s: no [debleed] take\n"]
    assert processed.active.name == "Snare [debleed]" and gated.active.name == "Snare"
    assert fake.messages == [] and fake.undo == undo and ("auto", AUTO_UNDO) not in fake.undo


def test_actions_that_change_nothing_add_no_undo_point(fake: FakeReaper, api,
                                                       tmp_path: Path) -> None:
    """REAPER adds "ReaScript: Run" after a script that neither defers nor opens an undo
    block: comparing, cancelling or stopping on an error would bury the denoise run's undo
    point, so one Undo would no longer remove the takes."""
    from fake_reaper import AUTO_UNDO
    from reaper_helpers import halve

    from reaper_bridge.bridge import denoise, executor_for

    item = fake.add_item(fake.add_track("Snare"), 0.0, 0.3)
    fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "snare.wav", 0.5))), "Snare")
    denoise(api, ("debleed",), executor_for({"debleed": halve}))
    fake.run_script(lambda: actions.compare(api))
    assert item.active.name == "Snare"
    fake.run_script(lambda: actions.compare(api))
    fake.run_script(lambda: actions.cancel(api))  # no job running: a message
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False))  # no worker python
    assert len(fake.messages) == 2 and fake.messages[0] == "No debleed job is running."
    assert ("auto", AUTO_UNDO) not in fake.undo
    assert fake.RPR_Undo_DoUndo2(0) == 1 and [t.name for t in item.takes] == ["Snare"]


@pytest.mark.parametrize("text,problem", [
    ("[debleed]\npython = a\npython = b\n", "option 'python' in section 'debleed' already exists"),
    ("package_root = /opt/debleed\n", "File contains no section headers"),
    (b"[debleed]\npackage_root = /opt/caf\xe9\n", "codec can't decode"),
], ids=["duplicate-key", "no-section", "not-utf8"])
def test_an_unreadable_ini_stops_every_action_with_one_message(
        fake: FakeReaper, monkeypatch: pytest.MonkeyPatch, text: str | bytes, problem: str) -> None:
    """The bootstrap parsed the INI unguarded: every action, Cancel included, died with a
    traceback, and REAPER added its "ReaScript: Run" undo point."""
    from fake_reaper import AUTO_UNDO

    from reascripts import debleed_boot

    ini = Path(settings_path(fake.resource_path))
    ini.parent.mkdir(parents=True)
    ini.write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    monkeypatch.setattr(actions, "main", lambda action: pytest.fail("the action ran"))
    for action in ("denoise", "cancel"):
        fake.run_script(lambda: debleed_boot.run(action))
    assert len(fake.messages) == 2 and all(problem in m and str(ini) in m for m in fake.messages)
    assert fake.deferred == ["pass", "pass"] and ("auto", AUTO_UNDO) not in fake.undo


@pytest.mark.parametrize("error, shown", [
    (TypeError("unsupported operand type(s) for |: 'type' and 'NoneType'"),
     "TypeError: unsupported operand type(s) for |"),
    (RuntimeError(), "RuntimeError: )"),  # no message: the handler must not fail itself
])
def test_a_bridge_that_fails_to_import_stops_with_one_message(
        fake: FakeReaper, monkeypatch: pytest.MonkeyPatch, error: Exception, shown: str) -> None:
    """On Python 3.9 one module's ``float | None`` raised a TypeError while the bridge was
    imported: the bootstrap caught ImportError only, so REAPER showed a traceback and added
    its "ReaScript: Run" undo point."""
    import builtins

    from fake_reaper import AUTO_UNDO

    from reascripts import debleed_boot

    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name == "reaper_bridge":
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    monkeypatch.setattr(builtins, "__import__", failing)
    fake.run_script(lambda: debleed_boot.run("denoise"))
    assert len(fake.messages) == 1 and "debleed cannot load in REAPER's Python" in fake.messages[0]
    assert shown in fake.messages[0]
    assert fake.deferred == ["pass"] and ("auto", AUTO_UNDO) not in fake.undo


def test_a_percent_sign_in_package_root_reaches_the_action(
        fake: FakeReaper, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With interpolation on, "%" in the path was a syntax error before any action ran."""
    from reascripts import debleed_boot

    root = str(tmp_path / "100%")
    ini = Path(settings_path(fake.resource_path))
    ini.parent.mkdir(parents=True)
    ini.write_text(f"[debleed]\npackage_root = {root}\n")
    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    monkeypatch.setattr(sys, "path", list(sys.path))
    ran: list[str] = []
    monkeypatch.setattr(actions, "main", ran.append)
    fake.run_script(lambda: debleed_boot.run("cancel"))
    assert ran == ["cancel"] and sys.path[-1] == root and fake.messages == []


def _namesake_site(tmp_path: Path) -> Path:
    """REAPER's Python's site-packages holding another project's ``denoiser`` package
    (facebookresearch's speech enhancer is published under that name)."""
    package = tmp_path / "site" / "denoiser"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "0.1.5"\n')
    return package.parent


def test_a_namesake_denoiser_in_reapers_python_does_not_hide_debleeds(tmp_path: Path) -> None:
    """package_root went to the end of REAPER's path, so the namesake was imported in
    place of debleed's ``denoiser`` and every action stopped saying debleed is not
    installed. debleed's packages now come from package_root, which then goes to the end."""
    resource = tmp_path / "res"
    resource.mkdir()
    install(str(resource))
    done = run_installed_script(sys.executable, resource, "debleed_cancel.py",
                                [_namesake_site(tmp_path)])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "MESSAGE BOX: No debleed job is running.\n"


def test_a_namesake_denoiser_loaded_earlier_is_named(tmp_path: Path) -> None:
    """Another script imported the namesake earlier in REAPER's session: Python keeps it
    under that name whatever the path says, and the message names it instead of telling
    the user to reinstall debleed (which cannot help)."""
    resource = tmp_path / "res"
    resource.mkdir()
    install(str(resource))
    site = _namesake_site(tmp_path)
    done = run_installed_script(sys.executable, resource, "debleed_cancel.py", [site],
                                before="import denoiser; ")
    assert done.returncode == 0, done.stderr
    root = load_settings(settings_path(str(resource))).package_root
    assert done.stdout == (
        f"MESSAGE BOX: debleed cannot load: another package named 'denoiser' "
        f"({site / 'denoiser' / '__init__.py'}) is loaded in REAPER's Python in place of "
        f"debleed's ({root}).\nRestart REAPER, or uninstall that package from REAPER's "
        "Python.\n")


@pytest.mark.parametrize("blocked", ["", "clean"], ids=["export-dir-is-a-file", "clean-is-a-file"])
def test_a_file_system_refusal_in_the_export_is_one_message(fake: FakeReaper, api, tmp_path: Path,
                                                            blocked: str) -> None:
    """An OSError while planning or moving the files in was a raw traceback; the lock and
    the staging folder go with the failed export. A file named clean is refused while
    planning (the swap would replace it with the clean folder)."""
    from reaper_bridge.export import LOCK, STAGING_PREFIX

    wav = make_wav(tmp_path / "snare.wav", 1.0)
    item = fake.add_item(fake.add_track("Snare [clean]"), 0.0, 0.5)
    fake.add_take(item, fake.file_source(str(wav)), "S", D_PLAYRATE=1.5)  # rendered: no worker
    out = tmp_path / "export"
    (out / blocked).parent.mkdir(parents=True, exist_ok=True)
    (out / blocked).write_text("a file")
    ini = Path(settings_path(fake.resource_path))
    ini.parent.mkdir(parents=True)
    ini.write_text(f"[debleed]\nexport_dir = {out}\n")
    assert fake.run_script(lambda: actions.export_training(api)) is None
    assert fake.messages == [f"{out / blocked}: is a file, not a folder"]
    assert not (out / LOCK).exists() and not list(out.glob(f"{STAGING_PREFIX}*"))
    assert fake.deferred == [actions.NO_OP] and not actions.JOBS


def _ini_folder(resource: Path) -> Path:
    return Path(settings_path(str(resource))).parent


@pytest.mark.parametrize("spelling", ["relative", "home"])
def test_ini_model_path_resolves_from_its_folder_or_home_whatever_the_cwd(
        tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
        spelling: str) -> None:
    """``model = models/tiny.pt`` is read from the INI's folder and ``~/models/tiny.pt``
    from the home folder, not from the current directory REAPER hands the worker; the
    action, doctor and a reinstall (which keeps the spelling) agree."""
    import shutil

    from reaper_bridge import doctor

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    model = "~/models/tiny.pt" if spelling == "home" else "models/tiny.pt"
    fake, api = _fake_with_item(tmp_path, model)
    folder = home if spelling == "home" else _ini_folder(Path(fake.resource_path))
    (folder / "models").mkdir(parents=True)
    shutil.copyfile(tiny_checkpoint, folder / "models" / "tiny.pt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    fake.run_deferred()
    assert fake.messages == [] and [len(i.takes) for i in fake.tracks[0].items] == [2]
    ini = settings_path(fake.resource_path)
    assert load_settings(ini).model == str(folder / "models" / "tiny.pt")
    model_line = doctor._worker_checks(load_settings(ini))[-1]
    assert model_line.name == "model loads" and model_line.ok, model_line
    install(fake.resource_path)
    assert f"model = {model}\n" in Path(ini).read_text()


def test_doctor_and_the_action_agree_on_a_model_missing_beside_the_ini(
        tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative model that exists under the terminal's current directory but not under
    the INI's folder: doctor passed (it looked in the terminal's directory) while the
    action, started from REAPER's, failed. Both now look in the INI's folder and fail."""
    import shutil

    from reaper_bridge import doctor

    terminal = tmp_path / "terminal"
    (terminal / "models").mkdir(parents=True)
    shutil.copyfile(tiny_checkpoint, terminal / "models" / "tiny.pt")
    fake, api = _fake_with_item(tmp_path, "models/tiny.pt")
    expected = str(_ini_folder(Path(fake.resource_path)) / "models" / "tiny.pt")
    monkeypatch.chdir(terminal)
    monkeypatch.setattr(doctor, "distant_api", lambda timeout=5.0: (_ for _ in ()).throw(
        RuntimeError("REAPER did not answer")))
    check = next(c for c in doctor.run_checks(fake.resource_path) if c.name == "model loads")
    assert not check.ok and expected in check.detail and "no such checkpoint" in check.detail
    reaper_cwd = tmp_path / "reaper-cwd"
    reaper_cwd.mkdir()
    monkeypatch.chdir(reaper_cwd)
    fake.run_script(lambda: actions.denoise_selected(api, with_gate=False, threads=1))
    fake.run_deferred()
    assert len(fake.messages) == 1 and fake.messages[0].startswith("debleed failed: ")
    assert expected in fake.messages[0] and "no such checkpoint" in fake.messages[0]
    assert [len(i.takes) for i in fake.tracks[0].items] == [1]

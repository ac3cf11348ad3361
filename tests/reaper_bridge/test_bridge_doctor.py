"""``debleed reaper doctor`` fails exactly when the actions would (device, precision, the
worker's own Python, the registration, REAPER's Python), and the bootstrap says when
REAPER's Python is too old."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from fake_reaper import AUTO_UNDO, FakeReaper
from reaper_helpers import configure

from reaper_bridge import actions, doctor
from reaper_bridge.install import SCRIPTS, command_id

POSIX = pytest.mark.skipif(os.name == "nt", reason="the stand-in Python is a shell script")


@pytest.fixture(autouse=True)
def no_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REAPER answers (only a [warn] line), whatever reapy finds on this machine."""
    def unreachable(timeout: float = 5.0):
        raise ConnectionError("REAPER did not answer")

    monkeypatch.setattr(doctor, "distant_api", unreachable)


def checks_of(resource: Path) -> dict[str, doctor.Check]:
    return {check.name: check for check in doctor.run_checks(str(resource))}


def failures(resource: Path) -> list[str]:
    return [check.line() for check in doctor.run_checks(str(resource))
            if check.required and not check.ok]


def stand_in_python(tmp_path: Path, script: str) -> Path:
    """A shell script in place of the worker's Python: ``script`` decides what each run
    does (most hand on to this Python)."""
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\n" + script)
    python.chmod(0o755)
    return python


def installed(tmp_path: Path, model: Path, **changes: str) -> Path:
    """An install on the tiny model (no reaper.ini: that is only a [warn])."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    configure(resource, model, **changes)
    return resource


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device,precision,line", [
    ("gpu", "float32", "[FAIL] device: unknown device 'gpu': use auto, cpu or cuda"),
    ("cuda", "float32", "[FAIL] device: --device cuda asked for, but no CUDA GPU is available"),
    ("auto", "float16", "[FAIL] precision: float16 precision needs a CUDA device"),
    ("cpu", "float16", "[FAIL] precision: float16 precision needs a CUDA device"),
], ids=["unknown-device", "cuda-without-gpu", "float16-auto-on-cpu", "float16-on-cpu"])
def test_a_device_or_precision_every_action_fails_on_is_a_fail(
        tmp_path: Path, tiny_checkpoint: Path, device: str, precision: str, line: str) -> None:
    """The device was never checked, and the precision only by name, so doctor passed
    (exit 0) settings on which the worker's loader refused every denoise."""
    resource = installed(tmp_path, tiny_checkpoint, device=device, precision=precision)
    fails = failures(resource)
    assert len(fails) == 1 and fails[0].startswith(line), fails
    assert checks_of(resource)["model loads"].ok  # the checkpoint itself is fine


def test_a_cut_the_model_cannot_take_fails_the_model_line(tmp_path: Path,
                                                          tiny_checkpoint: Path) -> None:
    """``input_max_hz`` (or ``hiss_cut_hz``) at or above the model's Nyquist fails every
    action once the model loads; doctor loads it the same way, so it fails too, and a good
    cut is named."""
    (tmp_path / "bad").mkdir()
    (tmp_path / "good").mkdir()
    bad = installed(tmp_path / "bad", tiny_checkpoint, input_max_hz=30000.0)
    fails = failures(bad)
    assert len(fails) == 1 and "input_max_hz must be 0" in fails[0], fails
    good = installed(tmp_path / "good", tiny_checkpoint, input_max_hz=22050.0)
    assert failures(good) == []
    assert checks_of(good)["model loads"].detail.endswith("reading up to 22050 Hz")
    (tmp_path / "never").mkdir()
    never = installed(tmp_path / "never", tiny_checkpoint, hiss_cut_hz=0.0)
    assert checks_of(never)["model loads"].detail.endswith("parameters at 48000 Hz")
    (tmp_path / "absurd").mkdir()
    absurd = installed(tmp_path / "absurd", tiny_checkpoint, hiss_cut_hz=30000.0)
    fails = failures(absurd)
    assert len(fails) == 1 and "hiss_cut_hz must be 0 (never cut) or below" in fails[0], fails


def test_good_device_and_precision_pass(tmp_path: Path, tiny_checkpoint: Path) -> None:
    resource = installed(tmp_path, tiny_checkpoint, device="auto", precision="bfloat16")
    checks = checks_of(resource)
    assert failures(resource) == []
    assert checks["device"].line().startswith("[ok  ] device: auto")
    assert checks["precision"].line() == "[ok  ] precision: bfloat16"
    assert checks["model loads"].detail.endswith(
        "parameters at 48000 Hz, reading up to 22050 Hz on hissy tracks")


@POSIX
def test_the_model_is_loaded_by_the_workers_python(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Doctor loaded the model in its own Python: a worker Python without torch (which
    still imports reaper_bridge.processing) got "[ok] model loads", and every action
    failed."""
    blocker = tmp_path / "no-torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    path = f'PYTHONPATH="{blocker.parent}${{PYTHONPATH:+:$PYTHONPATH}}"'
    python = stand_in_python(tmp_path, f'{path} exec "{sys.executable}" "$@"\n')
    resource = installed(tmp_path, tiny_checkpoint, python=str(python))
    checks = checks_of(resource)
    assert checks["worker python"].ok
    model = checks["model loads"].line()
    assert model.startswith("[FAIL] model loads: ModuleNotFoundError: No module named 'torch'")
    assert "device" not in checks and "GPU" not in checks  # nothing to ask: one line says why
    assert checks["device, precision"].detail == "ModuleNotFoundError: No module named 'torch'"



@POSIX
@pytest.mark.parametrize("stalls,names", [
    ("probe", ("device, precision, model",)), ("import", ("worker python",)),
], ids=["probe", "import"])
def test_a_worker_python_that_never_answers_is_one_short_line(
        tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
        stalls: str, names: tuple[str, ...]) -> None:
    """A timed-out run was reported as str(TimeoutExpired), which quotes the whole command:
    the probe's Python source landed in the doctor line."""
    passes = '*"import reaper_bridge.processing"*' if stalls == "probe" else "nothing"
    python = stand_in_python(tmp_path, f'case "$*" in {passes}) exec "{sys.executable}" "$@";; '
                                       '*) exec sleep 30;; esac\n')
    resource = installed(tmp_path, tiny_checkpoint, python=str(python))
    # only the stalling run's limit is cut: the other must not time out on a busy machine
    monkeypatch.setattr(doctor, "LOAD_TIMEOUT" if stalls == "probe" else "IMPORT_TIMEOUT", 1.0)
    checks = checks_of(resource)
    doing = ("importing torch and loading the model" if stalls == "probe"
             else "importing reaper_bridge.processing")
    for name in names:
        assert checks[name].line() == f"[FAIL] {name}: {python} did not answer within 1 s ({doing})"
    assert "model loads" not in checks  # one probe, one timeout, one line


@POSIX
def test_the_workers_python_starts_once_for_device_precision_and_model(
        tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Doctor started the worker's Python once for the device and once for the model:
    torch imported twice, and a worker that hangs waited out two timeouts."""
    log = tmp_path / "starts.log"
    python = stand_in_python(tmp_path, f'case "$*" in *probe*) echo start >> "{log}";; esac\n'
                                       f'exec "{sys.executable}" "$@"\n')
    resource = installed(tmp_path, tiny_checkpoint, python=str(python))
    checks = checks_of(resource)
    assert [checks[name].ok for name in ("device", "precision", "model loads")] == [True] * 3
    assert log.read_text().splitlines() == ["start"]

def _kb(resource: Path, section: str) -> None:
    resource.mkdir(exist_ok=True)
    (resource / "reaper-kb.ini").write_text("".join(
        f'SCR 4 {section} {command_id("debleed/" + name)} "Custom: {name}" "debleed/{name}"\n'
        for name in SCRIPTS))


def test_registration_counts_only_the_main_section(tmp_path: Path) -> None:
    """Our lines in the MIDI editor's section (32060) alone were "actions registered",
    though the main action list, where the actions are run from, had none."""
    resource = tmp_path / "REAPER"
    _kb(resource, "32060")
    check = checks_of(resource)["actions registered"]
    assert not check.ok and check.required and "lacks debleed_denoise_selected.py" in check.detail
    _kb(resource, "0")
    assert checks_of(resource)["actions registered"].ok


@pytest.mark.parametrize("ini,library,name,line", [
    (None, False, "Python ReaScript", "[warn] Python ReaScript: no reaper.ini in "),
    ("reascript=0\n", False, "Python ReaScript", "[FAIL] Python ReaScript: disabled (reascript=0"),
    ("", False, "Python ReaScript", "[warn] Python ReaScript: reaper.ini has no reascript, "),
    ("reascript=1\n", False, "Python ReaScript", "[ok  ] Python ReaScript: enabled"),
    ("reascript=1\npythonlibpath64={lib}\npythonlibdll64=libpython3.11.so\n", False,
     "Python library", "[FAIL] Python library: {lib}/libpython3.11.so: no such file"),
    ("reascript=1\npythonlibpath64={lib}\npythonlibdll64=libpython3.11.so\n", True,
     "Python library", "[ok  ] Python library: {lib}/libpython3.11.so"),
    ("reascript=1\npythonlibdll64={lib}/libpython3.11.so\n", False,
     "Python library", "[FAIL] Python library: {lib}/libpython3.11.so: no such file"),
    ("reascript=1\npythonlibdll64=libpython3.11.so\n", False,
     "Python library", "[ok  ] Python library: libpython3.11.so (looked up by the system)"),
], ids=["no-reaper-ini", "disabled", "not-set", "enabled", "missing-library", "library",
        "missing-library-as-given", "bare-name"])
def test_reaper_ini_says_whether_reaper_runs_python(tmp_path: Path, ini: str | None,
                                                    library: bool, name: str, line: str) -> None:
    """Doctor never looked at whether REAPER runs Python scripts at all: with Python
    disabled, or pointed at a library that is gone, every check passed and no action ran."""
    resource, lib = tmp_path / "REAPER", tmp_path / "lib"
    resource.mkdir()
    lib.mkdir()
    if library:
        (lib / "libpython3.11.so").write_bytes(b"")
    if ini is not None:
        (resource / "reaper.ini").write_text(f"[audio]\nreascript=1\n[REAPER]\n{ini.format(lib=lib)}")
    assert checks_of(resource)[name].line().startswith(line.format(lib=lib))


def test_an_old_python_in_reaper_is_one_message(fake: FakeReaper,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Under Python 3.8 importing the bridge raised a TypeError (subscripted ABCs), which
    the bootstrap, catching only ImportError, let through as a traceback."""
    from reascripts import debleed_boot

    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    monkeypatch.setattr(actions, "main", lambda action: pytest.fail("the action ran"))
    with monkeypatch.context() as patch:
        patch.setattr(sys, "version_info", (3, 8, 10, "final", 0))
        fake.run_script(lambda: debleed_boot.run("denoise"))
    assert len(fake.messages) == 1, fake.messages
    assert fake.messages[0].startswith("debleed needs Python 3.9 or later in REAPER, which "
                                       "runs Python 3.8.")
    assert fake.deferred == ["pass"] and ("auto", AUTO_UNDO) not in fake.undo


def test_a_device_probe_that_raises_keeps_the_model_line(monkeypatch, tiny_checkpoint):
    """One run of the worker's Python answers both lines: a torch error while judging the
    device must not lose the model's answer with it."""
    def broken(device: str, precision: str):
        raise RuntimeError("CUDA error: no kernel image is available")

    monkeypatch.setattr(doctor, "engine_probe", broken)
    answer = doctor.worker_probe("cpu", "float32", str(tiny_checkpoint))
    assert answer["engine"] == [{"name": "device, precision", "ok": False, "required": True,
                                 "detail": "RuntimeError: CUDA error: no kernel image is available"}]
    assert answer["model"][0] is True and answer["model"][1].endswith(
        "parameters at 48000 Hz, reading up to 22050 Hz on hissy tracks")


def test_a_key_debleed_does_not_read_is_a_warning_and_install_keeps_it(
        tmp_path: Path, tiny_checkpoint: Path) -> None:
    """``devise = cpu`` (misspelt) left the device at auto without a word; doctor now
    warns of it, and the installer still keeps it, as it keeps every key it does not know."""
    from reaper_bridge.install import install
    from reaper_bridge.settings import settings_path

    resource = installed(tmp_path, tiny_checkpoint)
    assert checks_of(resource)["settings keys"].line() == (
        "[ok  ] settings keys: every [debleed] key is one debleed reads")
    ini = Path(settings_path(str(resource)))
    ini.write_text(ini.read_text().replace("[debleed]\n", "[debleed]\ndevise = cpu\n"))
    install(str(resource))
    assert "\ndevise = cpu\n" in ini.read_text()
    check = checks_of(resource)["settings keys"]
    assert not check.required and check.line().startswith(
        "[warn] settings keys: [debleed] devise: not read by debleed (misspelt?); its keys "
        "are python, package_root, model, device,")
    assert failures(resource) == []

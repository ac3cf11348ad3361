"""``debleed reaper doctor``: check each link between REAPER and the model, one line each.

Run outside REAPER, so it may use what the actions leave to the worker (numpy, torch):
the precision and the gate settings are validated by the very functions the worker uses,
and the worker's Python is asked to import the worker's modules, so a setting or an
environment the actions would stumble on is a FAIL here rather than an error in REAPER.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from denoiser.errors import DebleedError

from .install import KB_FILE, SCRIPTS, SUPPORT_FILES, kb_entries, read_kb, same_folder, scr_script
from .rpr import distant_api
from .settings import SCRIPTS_SUBDIR, BridgeSettings, SettingsError, load_settings, settings_path

#: Seconds the worker's Python gets to import the worker's modules (a cold disk is slow).
IMPORT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        return f"[{mark}] {self.name}: {self.detail}"


def run_checks(resource_path: str, timeout: float = 5.0) -> list[Check]:
    reaper, reaper_folder = _reaper_checks(timeout)
    live = reaper_folder is not None and same_folder(reaper_folder, resource_path)
    checks = [_resource_check(resource_path), _files_check(resource_path),
              _registration_check(resource_path, live)]
    try:
        settings: BridgeSettings | None = load_settings(settings_path(resource_path))
    except SettingsError as exc:  # the other settings checks would only repeat it
        checks.append(Check("settings", False, str(exc)))
        settings = None
    if settings is not None:
        checks += _settings_checks(settings)
    checks += reaper
    if settings is not None:
        checks.append(_model_check(settings))
    checks.append(_gpu_check())
    return checks


def _resource_check(resource_path: str) -> Check:
    if not os.path.isdir(resource_path):
        detail = f"{resource_path}: no such folder (REAPER: Options > Show REAPER resource path)"
    elif not os.path.isfile(os.path.join(resource_path, "reaper.ini")):
        detail = f"{resource_path} (no reaper.ini: has REAPER run with this folder yet?)"
    else:
        detail = resource_path
    return Check("REAPER resource path", os.path.isdir(resource_path), detail)


def _files_check(resource_path: str) -> Check:
    """The actions and the bootstrap every one of them imports."""
    scripts_dir = os.path.join(resource_path, SCRIPTS_SUBDIR)
    missing = [name for name in (*SCRIPTS, *SUPPORT_FILES)
               if not os.path.isfile(os.path.join(scripts_dir, name))]
    return Check("actions installed", not missing,
                 scripts_dir if not missing else f"missing {', '.join(missing)}: run 'debleed reaper install'")


def _registration_check(resource_path: str, live: bool) -> Check:
    """Our ``SCR`` lines in ``reaper-kb.ini``. Actions registered through the REAPER that
    runs on this folder may reach that file only when it quits: then a gap is a warning."""
    entries = kb_entries()
    found = {scr_script(line, entries) for line in read_kb(resource_path)}
    missing = [os.path.basename(rel) for rel in entries if rel not in found]
    kb_file = os.path.join(resource_path, KB_FILE)
    if not missing:
        return Check("actions registered", True, kb_file)
    if live:
        return Check("actions registered", False, f"{kb_file} lacks {', '.join(missing)} "
                     "(fine if installed while this REAPER runs: it writes them when it quits)",
                     required=False)
    return Check("actions registered", False, f"{kb_file} lacks {', '.join(missing)}: close "
                 "REAPER, run 'debleed reaper install', then start REAPER")


def _settings_checks(settings: BridgeSettings) -> list[Check]:
    from denoiser.engine import InferenceConfig

    from .processing import gate_config

    gate = ", ".join(f"{key} = {value}" for key, value in settings.gate.items()) or "defaults"
    return [_python_check(settings), _package_root_check(settings.package_root),
            _valid("precision", InferenceConfig(precision=settings.precision).validate,
                   settings.precision),
            _valid("gate settings", lambda: gate_config(settings.gate).validate(), gate)]


def _valid(name: str, validate: Callable[[], object], detail: str) -> Check:
    """``validate`` as the worker runs it: its one-line error is the FAIL detail."""
    try:
        validate()
    except DebleedError as exc:
        return Check(name, False, str(exc))
    return Check(name, True, detail)


def _python_check(settings: BridgeSettings) -> Check:
    """The worker's Python must import the worker's modules, with the worker's path."""
    python = settings.python
    if not python or not os.path.isfile(python):
        return Check("worker python", False, f"{python or 'not set'}: run 'debleed reaper install'")
    try:  # in the environment the actions start the worker in
        done = subprocess.run([python, "-c", "import reaper_bridge.processing"],
                              env=settings.worker_env(),
                              capture_output=True, text=True, timeout=IMPORT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("worker python", False, f"{python}: {exc}")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return Check("worker python", False, f"{python} cannot import reaper_bridge.processing "
                     f"({reason}): run 'debleed reaper install' from the debleed environment")
    return Check("worker python", True, python)


def _package_root_check(root: str) -> Check:
    """Where the bootstrap, inside REAPER, finds ``reaper_bridge``."""
    ok = bool(root) and os.path.isfile(os.path.join(root, "reaper_bridge", "actions.py"))
    detail = root if ok else f"{root or 'not set'}: no reaper_bridge package there; run 'debleed reaper install'"
    return Check("package_root", ok, detail)


def _reaper_checks(timeout: float) -> tuple[list[Check], str | None]:
    """reapy and the connection (neither required), and the folder REAPER runs on."""
    if importlib.util.find_spec("reapy") is None:
        return [Check("python-reapy importable", False,
                      "pip install -e '.[reaper]' in the debleed checkout", required=False)], None
    checks = [Check("python-reapy importable", True, "yes", required=False)]
    try:
        api = distant_api(timeout)
        version, folder = api.GetAppVersion(), str(api.GetResourcePath())
    except Exception as exc:  # every failure here is reported, none is fatal
        return checks + [Check("REAPER reachable", False, str(exc), required=False)], None
    return checks + [Check("REAPER reachable", True, f"REAPER {version}", required=False)], folder


def _model_check(settings: BridgeSettings) -> Check:
    """Load the model the actions' worker would load: ``settings.model`` as
    ``load_settings`` resolved it (``~`` expanded, relative to the INI's folder), never
    the INI's text against this terminal's current directory, which the worker (started
    from REAPER) does not share; so doctor fails exactly when the action would."""
    written = settings.as_written.get("model", "").strip()
    spelled = (f" (model = {written} in debleed.ini; a relative path starts at its folder)"
               if written and written != settings.model else "")
    try:
        from denoiser.engine import Denoiser

        model = Denoiser.load(settings.model or None, device="cpu")
        params = sum(p.numel() for p in model.model.parameters())
        return Check("model loads", True, f"{settings.model or 'shipped model'}: "
                                          f"{params:,} parameters at {model.sample_rate} Hz")
    except Exception as exc:  # ModelError and anything else a broken install raises
        return Check("model loads", False, f"{type(exc).__name__}: {exc}{spelled}")


def _gpu_check() -> Check:
    import torch

    if torch.cuda.is_available():
        return Check("GPU", True, torch.cuda.get_device_name(0), required=False)
    return Check("GPU", False, "no CUDA device: the model runs on the CPU", required=False)

"""``debleed reaper doctor``: check each link between REAPER and the model, one line each.

Run outside REAPER, so it may use what the actions leave to the worker (numpy, torch).
What the worker does is checked by the worker's Python (``python`` in ``debleed.ini``), in
the environment the actions start it in (``_in_worker``): it imports the worker's
modules, judges the device and the precision by the engine's own rules and loads the
model, so a setting or an environment the actions would stumble on is a FAIL here rather
than an error in REAPER. The gate settings are validated by the function the worker uses.
``reaper.ini`` tells whether REAPER itself can run Python ReaScripts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from denoiser.errors import DebleedError

from .install import KB_FILE, SCRIPTS, SUPPORT_FILES, kb_entries, read_kb, same_folder, scr_script
from .rpr import distant_api
from .settings import (MAIN_KEYS, SCRIPTS_SUBDIR, BridgeSettings, SettingsError, load_settings,
                       settings_path)

#: Seconds the worker's Python gets to import the worker's modules (a cold disk is slow).
IMPORT_TIMEOUT = 60.0
#: Seconds the worker's Python gets to import torch and load the model.
LOAD_TIMEOUT = 180.0
#: How ``_in_worker`` has the worker's Python run one of this module's probes.
PROBE = ("import json, sys; from reaper_bridge import doctor; "
         "print(json.dumps(getattr(doctor, sys.argv[1])(*sys.argv[2:])))")


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
              _registration_check(resource_path, live), *_reascript_checks(resource_path)]
    try:
        settings = load_settings(settings_path(resource_path))
    except SettingsError as exc:  # the other settings checks would only repeat it
        return checks + [Check("settings", False, str(exc))] + reaper
    python = _python_check(settings)
    checks += [python, _package_root_check(settings.package_root), _keys_check(settings),
               _gate_check(settings)]
    checks += reaper
    if not python.ok:  # nothing would answer: each line would repeat the python FAIL
        return checks + [Check("device, precision, model", False, "not checked: the worker "
                               "python above cannot run", required=False)]
    return checks + _worker_checks(settings)


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
    """Our main-section ``SCR`` lines in ``reaper-kb.ini`` (``scr_script``: a registration
    in another section, the MIDI editor's say, does not list the actions where the user
    looks for them). Actions registered through the REAPER that runs on this folder may
    reach that file only when it quits: then a gap is a warning."""
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


def _keys_check(settings: BridgeSettings) -> Check:
    """``[debleed]`` keys that nothing reads: a misspelt one (``devise = cpu``) left its
    setting at the default without a word. Only a warning: the installer keeps keys it
    does not know, as docs/reaper.md promises, so the user's own notes there are fine."""
    if not settings.unknown:
        return Check("settings keys", True, "every [debleed] key is one debleed reads")
    return Check("settings keys", False, f"[debleed] {', '.join(settings.unknown)}: not read "
                 f"by debleed (misspelt?); its keys are {', '.join(MAIN_KEYS)}", required=False)


def _gate_check(settings: BridgeSettings) -> Check:
    from .processing import gate_config

    gate = ", ".join(f"{key} = {value}" for key, value in settings.gate.items()) or "defaults"
    return _valid("gate settings", lambda: gate_config(settings.gate).validate(), gate)


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
    except subprocess.TimeoutExpired:
        return Check("worker python", False, _no_answer(python, IMPORT_TIMEOUT,
                                                        "importing reaper_bridge.processing"))
    except OSError as exc:
        return Check("worker python", False, f"{python}: {exc}")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return Check("worker python", False, f"{python} cannot import reaper_bridge.processing "
                     f"({reason}): run 'debleed reaper install' from the debleed environment")
    return Check("worker python", True, python)


def _no_answer(python: str, timeout: float, doing: str) -> str:
    """The detail for a worker Python that ran past ``timeout``: one short line, where
    ``TimeoutExpired``'s own text quotes the whole command, a probe's source included."""
    return f"{python} did not answer within {timeout:.0f} s ({doing})"


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


def _in_worker(settings: BridgeSettings, probe: str, *args: str) -> Any:
    """What ``probe(*args)``, a function of this module, returns when the worker's Python
    runs it in the worker's environment, as the actions start the worker; a run that
    gives no answer raises ``DebleedError`` with its one-line reason."""
    try:
        done = subprocess.run([settings.python, "-c", PROBE, probe, *args],
                              env=settings.worker_env(),
                              capture_output=True, text=True, timeout=LOAD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DebleedError(_no_answer(settings.python, LOAD_TIMEOUT,
                                      "importing torch and loading the model")) from None
    except OSError as exc:
        raise DebleedError(f"{settings.python}: {exc}") from None
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):  # no answer: the last error line says why
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise DebleedError(f"{settings.python} could not run the check ({reason})") from None


def _worker_checks(settings: BridgeSettings) -> list[Check]:
    """The device, the precision, the GPU and the model as the worker's Python sees them:
    one run of it (``worker_probe``), so torch is imported once and a worker that hangs
    costs one timeout."""
    try:
        answer = _in_worker(settings, "worker_probe", settings.device, settings.precision,
                            settings.model, repr(settings.input_max_hz),
                            "" if settings.hiss_cut_hz is None else repr(settings.hiss_cut_hz))
    except DebleedError as exc:
        return [Check("device, precision, model", False, str(exc))]
    engine = [Check(**fields) for fields in answer["engine"]]
    return engine + [_model_check(settings, *answer["model"])]


def worker_probe(device: str, precision: str, model: str,
                 input_max_hz: str = "0.0", hiss_cut_hz: str = "") -> dict[str, Any]:
    """Run by the worker's Python (``_in_worker``): ``engine_probe``'s lines and
    ``model_probe``'s answer, in one process (arguments as the command line gives them)."""
    try:  # each answer on its own: a torch error in one must not lose the other line
        engine = engine_probe(device, precision)
    except Exception as exc:
        engine = [asdict(Check("device, precision", False, f"{type(exc).__name__}: {exc}"))]
    return {"engine": engine, "model": model_probe(model, device, float(input_max_hz),
                                                   float(hiss_cut_hz) if hiss_cut_hz else None)}


def engine_probe(device: str, precision: str) -> list[dict[str, Any]]:
    """Run by the worker's Python (``_in_worker``): the device and the precision judged by
    the engine's own rules, those ``Denoiser`` applies when the worker builds it
    (``pick_device``, then the precision against that device, with a stand-in model:
    the checkpoint is ``model_probe``'s), and the GPU."""
    try:
        import torch

        from denoiser.engine import Denoiser, InferenceConfig, pick_device
        from denoiser.models.identity import Identity
    except Exception as exc:  # no torch in that environment, a broken install
        return [asdict(Check("device, precision", False, f"{type(exc).__name__}: {exc}"))]
    config = InferenceConfig(precision=precision)
    try:
        used = pick_device(device)
    except DebleedError as exc:
        checks = [Check("device", False, str(exc)),
                  _valid("precision", config.validate, f"{precision} (not judged against "
                         "the device, which is unusable)")]
    else:
        checks = [Check("device", True, device if str(used) == device else f"{device}: {used}"),
                  _valid("precision", lambda: Denoiser(Identity(), used, config), precision)]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    checks.append(Check("GPU", gpu is not None, gpu or "no CUDA device: the model runs on the CPU",
                        required=False))
    return [asdict(check) for check in checks]


def _model_check(settings: BridgeSettings, ok: bool, detail: str) -> Check:
    """The model line from ``model_probe``'s answer. The worker loads ``settings.model``
    as ``load_settings`` resolved it (``~`` expanded, relative to the INI's folder), never
    the INI's text against this terminal's current directory, which the worker (started
    from REAPER) does not share; so doctor fails exactly when the action would, and a
    failure shows how the INI spelled the path."""
    if ok:
        return Check("model loads", True, f"{settings.model or 'shipped model'}: {detail}")
    written = settings.as_written.get("model", "").strip()
    spelled = (f" (model = {written} in debleed.ini; a relative path starts at its folder)"
               if written and written != settings.model else "")
    return Check("model loads", False, f"{detail}{spelled}")


def model_probe(model: str, device: str, input_max_hz: float = 0.0,
                hiss_cut_hz: float | None = None) -> tuple[bool, str]:
    """Run by the worker's Python (``_in_worker``): load ``model`` as the worker does, cut
    at ``input_max_hz`` or ``hiss_cut_hz`` when set (a cut the model cannot take fails here,
    as it would in every action), on its device, or on the CPU when that device is unusable
    (``engine_probe`` says why), so this line is about the checkpoint alone."""
    try:
        from denoiser.engine import Denoiser, pick_device

        from .processing import inference_config

        try:
            used = str(pick_device(device))
        except DebleedError:
            used = "cpu"
        loaded = Denoiser.load(model or None, used,
                               inference_config(input_max_hz=input_max_hz, hiss_cut_hz=hiss_cut_hz))
        params = sum(p.numel() for p in loaded.model.parameters())
        cut = (f", reading up to {input_max_hz:g} Hz" if input_max_hz else
               f", reading up to {loaded.config.hiss_cut_hz:g} Hz on hissy tracks"
               if loaded.hiss_model is not None else "")
        return True, f"{params:,} parameters at {loaded.sample_rate} Hz{cut}"
    except Exception as exc:  # ModelError and anything else a broken install raises
        return False, f"{type(exc).__name__}: {exc}"


def _reascript_checks(resource_path: str) -> list[Check]:
    """Whether this REAPER runs Python ReaScripts, as ``reaper.ini`` records it (what
    *Preferences > Plug-ins > ReaScript* and reapy's ``configure_reaper`` set)."""
    try:
        values = reaper_ini(resource_path)
    except OSError as exc:
        return [Check("Python ReaScript", False, f"{exc}: cannot tell whether REAPER runs "
                      "Python scripts", required=False)]
    if values is None:
        return [Check("Python ReaScript", False, f"no reaper.ini in {resource_path}: cannot "
                      "tell whether REAPER runs Python scripts", required=False)]
    return [_python_enabled_check(values), _python_library_check(values)]


def reaper_ini(resource_path: str) -> dict[str, str] | None:
    """The ``[REAPER]`` section of ``reaper.ini`` (keys lower-cased, the first of a key
    given twice), or None without the file. Read line by line rather than with
    ``configparser``, which REAPER's own file need not satisfy."""
    try:
        with open(os.path.join(resource_path, "reaper.ini"), encoding="utf-8",
                  errors="replace") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return None
    values: dict[str, str] = {}
    section = ""
    for line in lines:
        text = line.strip()
        if text.startswith("[") and text.endswith("]"):
            section = text[1:-1].strip().casefold()
        elif section == "reaper" and "=" in text:
            key, value = text.split("=", 1)
            values.setdefault(key.strip().casefold(), value.strip())
    return values


ENABLE_PYTHON = ("Options > Preferences > Plug-ins > ReaScript: tick 'Enable Python for use "
                 "with ReaScript'")


def _python_enabled_check(values: dict[str, str]) -> Check:
    """``reascript=1`` is REAPER's "Python enabled"; absent, it may only be a REAPER that
    has not written the default yet, so only an explicit 0 fails."""
    value = values.get("reascript")
    if value == "1":
        return Check("Python ReaScript", True, "enabled (reascript=1 in reaper.ini)")
    if value == "0":
        return Check("Python ReaScript", False, f"disabled (reascript=0 in reaper.ini): "
                     f"{ENABLE_PYTHON}, then restart REAPER")
    found = "no reascript" if value is None else f"reascript={value}"
    return Check("Python ReaScript", False, f"reaper.ini has {found}, not reascript=1: if the "
                 f"actions do nothing, {ENABLE_PYTHON}", required=False)


def _python_library_check(values: dict[str, str]) -> Check:
    """The Python library REAPER is told to load: ``pythonlibdll64`` (a file name) in
    ``pythonlibpath64`` (a folder) when that is set, else as given. A bare name with no
    folder is left to the system's library search, which doctor does not imitate."""
    name, folder = values.get("pythonlibdll64", ""), values.get("pythonlibpath64", "")
    if not name:
        return Check("Python library", True, "not forced: REAPER looks for one itself")
    path = os.path.join(folder, name) if folder else name
    if not (folder or os.path.isabs(name)):
        return Check("Python library", True, f"{name} (looked up by the system)")
    if os.path.isfile(path):
        return Check("Python library", True, path)
    return Check("Python library", False, f"{path}: no such file (pythonlibpath64 and "
                 "pythonlibdll64 in reaper.ini): in Options > Preferences > Plug-ins > "
                 "ReaScript point REAPER at a Python 3.9+ shared library, then restart REAPER")

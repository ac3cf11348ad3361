"""``debleed reaper doctor``: check each link between REAPER and the model, one line each.

Run outside REAPER. Imports torch only for the model and GPU checks.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from .install import SCRIPTS
from .rpr import distant_api
from .settings import SCRIPTS_SUBDIR, load_settings, settings_path


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
    checks: list[Check] = []
    if not os.path.isdir(resource_path):
        detail = f"{resource_path}: no such folder (REAPER: Options > Show REAPER resource path)"
    elif not os.path.isfile(os.path.join(resource_path, "reaper.ini")):
        detail = f"{resource_path} (no reaper.ini: has REAPER run with this folder yet?)"
    else:
        detail = resource_path
    checks.append(Check("REAPER resource path", os.path.isdir(resource_path), detail))
    scripts_dir = os.path.join(resource_path, SCRIPTS_SUBDIR)
    missing = [name for name in SCRIPTS if not os.path.isfile(os.path.join(scripts_dir, name))]
    checks.append(Check("actions installed", not missing,
                        scripts_dir if not missing else f"missing {', '.join(missing)}: run 'debleed reaper install'"))
    settings = load_settings(settings_path(resource_path))
    python_ok = bool(settings.python) and os.path.isfile(settings.python)
    checks.append(Check("worker python", python_ok,
                        settings.python or "not set: run 'debleed reaper install'"))
    reapy_ok = importlib.util.find_spec("reapy") is not None
    checks.append(Check("python-reapy importable", reapy_ok,
                        "yes" if reapy_ok else "pip install 'debleed[reaper]'", required=False))
    if reapy_ok:
        try:
            api = distant_api(timeout)
            checks.append(Check("REAPER reachable", True, f"REAPER {api.GetAppVersion()}", required=False))
        except Exception as exc:  # every failure here is reported, none is fatal
            checks.append(Check("REAPER reachable", False, str(exc), required=False))
    try:
        from denoiser.engine import Denoiser

        model = Denoiser.load(settings.model or None, device="cpu")
        params = sum(p.numel() for p in model.model.parameters())
        checks.append(Check("model loads", True, f"{settings.model or 'shipped model'}: "
                                                  f"{params:,} parameters at {model.sample_rate} Hz"))
    except Exception as exc:  # ModelError and anything else a broken install raises
        checks.append(Check("model loads", False, f"{type(exc).__name__}: {exc}"))
    import torch

    if torch.cuda.is_available():
        checks.append(Check("GPU", True, torch.cuda.get_device_name(0), required=False))
    else:
        checks.append(Check("GPU", False, "no CUDA device: the model runs on the CPU", required=False))
    return checks

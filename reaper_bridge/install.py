"""Install the ReaScript actions into REAPER and register them.

The scripts and their bootstrap go to ``<resource path>/Scripts/debleed/`` with the
settings INI (which records this Python and where ``reaper_bridge`` lives, so the
in-REAPER scripts can find both). Registration goes through ``AddRemoveReaScript`` when
REAPER is reachable through reapy, else through ``SCR`` lines in ``reaper-kb.ini`` (read
by REAPER at start-up). Both are idempotent. Standard library only.

The API route is taken only when the REAPER that answers uses the resource folder being
installed into: another REAPER (a portable one, say) would register scripts it cannot see
in its own folder, and the requested folder would get no registration at all.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from denoiser.outfiles import atomic_output

from .items import BridgeError
from .settings import SCRIPTS_SUBDIR, load_settings, save_settings, settings_path

#: Script file -> action name shown in REAPER's action list (after "Custom: ").
SCRIPTS: dict[str, str] = {
    "debleed_denoise_selected.py": "debleed: Denoise selected items",
    "debleed_denoise_selected_gate.py": "debleed: Denoise selected items (pre-gate + model)",
    "debleed_compare_takes.py": "debleed: Compare takes (cycle original / processed)",
    "debleed_export_training.py": "debleed: Export [clean]/[bleed] items for training",
    "debleed_cancel.py": "debleed: Cancel the running job",
}
SUPPORT_FILES = ("debleed_boot.py",)
KB_FILE = "reaper-kb.ini"


@dataclass
class InstallReport:
    scripts_dir: str
    settings_file: str
    registered: dict[str, Any] = field(default_factory=dict)
    kb_file: str | None = None
    kb_reason: str | None = None  # why reaper-kb.ini was used although REAPER answered

    def lines(self) -> list[str]:
        out = [f"scripts: {self.scripts_dir}", f"settings: {self.settings_file}"]
        if self.kb_reason:
            out.append(self.kb_reason)
        if self.kb_file:
            out.append(f"registered in {self.kb_file}; restart REAPER to see the actions "
                       "(REAPER rewrites that file when it quits: close it before installing)")
        else:
            out += [f"registered: {name} (command {cmd})" for name, cmd in self.registered.items()]
        return out


def scripts_source() -> Path:
    import reascripts

    return Path(next(iter(reascripts.__path__))).resolve()  # also right for a namespace package


def package_root() -> str:
    """The folder that holds ``reaper_bridge`` (site-packages, or the source checkout)."""
    return str(Path(__file__).resolve().parent.parent)


def command_id(relative_path: str) -> str:
    """A stable ``RS`` + 40-hex command id, so reinstalling keeps shortcuts and toolbars."""
    return "RS" + hashlib.sha1(relative_path.encode("utf-8")).hexdigest()


def kb_line(relative_path: str, description: str) -> str:
    return f'SCR 4 0 {command_id(relative_path)} "Custom: {description}" "{relative_path}"'


def kb_entries() -> dict[str, str]:
    """Our actions as ``reaper-kb.ini`` names them: path relative to Scripts -> description."""
    return {f"debleed/{name}": description for name, description in SCRIPTS.items()}


def scr_script(line: str, entries: dict[str, str]) -> str | None:
    """The entry of ``entries`` that an ``SCR`` line registers, or None.

    REAPER, or a user's editor, may separate the fields with tabs and write the path with
    backslashes or in another case; our command id identifies the line whatever its path.
    """
    try:
        fields = shlex.split(line, posix=False)  # posix=False: a backslash is a character
    except ValueError:  # an unbalanced quote: not a line we wrote
        return None
    if len(fields) < 5 or fields[0] != "SCR":
        return None
    path = fields[-1].strip('"').replace("\\", "/").casefold()
    for relative in entries:
        if path == relative.casefold() or fields[3] == command_id(relative):
            return relative
    return None


def read_kb(resource_path: str) -> list[str]:
    """The lines of ``reaper-kb.ini``; none when REAPER has not written it yet."""
    try:
        with open(os.path.join(resource_path, KB_FILE), encoding="utf-8",
                  errors="surrogateescape") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        return []


def register_in_kb(resource_path: str, entries: dict[str, str]) -> str:
    """Add or replace ``SCR`` lines for ``entries`` (relative path -> description)."""
    path = os.path.join(resource_path, KB_FILE)
    kept = [line for line in read_kb(resource_path) if scr_script(line, entries) is None]
    kept += [kb_line(rel, desc) for rel, desc in entries.items()]
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", errors="surrogateescape",
                                          newline="\n") as handle:
        handle.write("\n".join(kept) + "\n")
    return path


def same_folder(first: str, second: str) -> bool:
    """Whether two spellings of a folder name the same folder (links, case on Windows)."""
    def norm(path: str) -> str:
        return os.path.normcase(os.path.realpath(os.path.expanduser(path)))

    return norm(first) == norm(second)


def install(resource_path: str, api: Any | None = None, python: str | None = None) -> InstallReport:
    """Copy the scripts, write the settings, register the actions (through ``api`` if given
    and it is the REAPER of ``resource_path``, else through ``reaper-kb.ini``)."""
    if not os.path.isdir(resource_path):
        raise BridgeError(f"{resource_path}: no such REAPER resource folder (use --resource-path; "
                          "REAPER shows it under Options > Show REAPER resource path)")
    ini = settings_path(resource_path)
    settings = load_settings(ini)  # a malformed INI stops the install before any copy
    settings.python = python or sys.executable
    settings.package_root = package_root()
    save_settings(ini, settings)  # so does a value the INI cannot hold
    scripts_dir = os.path.join(resource_path, SCRIPTS_SUBDIR)
    source = scripts_source()
    for name in (*SCRIPTS, *SUPPORT_FILES):
        shutil.copyfile(source / name, os.path.join(scripts_dir, name))
    report = InstallReport(scripts_dir, ini)
    running = str(api.GetResourcePath()) if api is not None else resource_path
    if not same_folder(running, resource_path):
        report.kb_reason = (f"the running REAPER uses {running}, not {resource_path}: "
                            "registering through reaper-kb.ini instead")
        api = None
    if api is not None:
        names = list(SCRIPTS)
        for index, name in enumerate(names):
            cmd = api.AddRemoveReaScript(True, 0, os.path.join(scripts_dir, name), index == len(names) - 1)
            if not cmd:
                raise BridgeError(f"REAPER refused to register {name}")
            report.registered[SCRIPTS[name]] = cmd
    else:
        report.kb_file = register_in_kb(resource_path, kb_entries())
    return report

"""Install the ReaScript actions into REAPER and register them.

The scripts and their bootstrap go to ``<resource path>/Scripts/debleed/`` with the
settings INI (which records this Python and where ``reaper_bridge`` lives, so the
in-REAPER scripts can find both). Registration goes through ``AddRemoveReaScript`` when
REAPER is reachable through reapy, else through ``SCR`` lines in ``reaper-kb.ini`` (read
by REAPER at start-up). Both are idempotent, and neither file is rewritten wholesale: the
INI and ``reaper-kb.ini`` are edited in place (``save_settings``, ``register_in_kb``), so
what the user wrote or registered there stays. Standard library only.

The API route is taken only when the REAPER that answers uses the resource folder being
installed into: another REAPER (a portable one, say) would register scripts it cannot see
in its own folder, and the requested folder would get no registration at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from denoiser.outfiles import replaced_together

from .items import BridgeError
from .settings import (SCRIPTS_SUBDIR, check_writable, load_settings, save_settings,
                       settings_path, split_lines, write_in_place)

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
#: The ``SCR`` section field of REAPER's main action list, where the installer registers.
MAIN_SECTION = "0"


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


def kb_line(relative_path: str, description: str, flags: str = "4", command: str = "") -> str:
    """A main-section ``SCR`` line; ``command`` (default: ``command_id``) and ``flags``
    keep a line's own when it is rewritten."""
    return (f'SCR {flags} {MAIN_SECTION} {command or command_id(relative_path)} '
            f'"Custom: {description}" "{relative_path}"')


def kb_entries() -> dict[str, str]:
    """Our actions as ``reaper-kb.ini`` names them: path relative to Scripts -> description."""
    return {f"debleed/{name}": description for name, description in SCRIPTS.items()}


def scr_fields(line: str) -> list[str] | None:
    """An ``SCR`` line's fields (flags, section, command id, "description", "path" after
    ``SCR``), or None for any other line. REAPER, or a user's editor, may separate them
    with tabs."""
    try:
        fields = shlex.split(line, posix=False)  # posix=False: a backslash is a character
    except ValueError:  # an unbalanced quote: not a line we wrote
        return None
    return fields if len(fields) >= 5 and fields[0] == "SCR" else None


def _same_script(path: str, relative: str) -> bool:
    """Whether an ``SCR`` line's path names ``relative``: written with backslashes or in
    another case, it is the same file to REAPER."""
    return path.strip('"').replace("\\", "/").casefold() == relative.casefold()


def scr_script(line: str, entries: dict[str, str]) -> str | None:
    """The entry of ``entries`` that a main-section ``SCR`` line registers, or None.

    Only the main section ("0") is ours: a line in another one (the MIDI editor's
    32060...) is a registration the user made, even of our script. Our command id
    identifies a line whatever its path."""
    fields = scr_fields(line)
    if fields is None or fields[2] != MAIN_SECTION:
        return None
    for relative in entries:
        if _same_script(fields[-1], relative) or fields[3] == command_id(relative):
            return relative
    return None


def _kb_text(resource_path: str) -> str:
    """``reaper-kb.ini`` as it is, line endings included (REAPER on Windows writes CRLF);
    empty when REAPER has not written it yet."""
    try:
        with open(os.path.join(resource_path, KB_FILE), encoding="utf-8",
                  errors="surrogateescape", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def read_kb(resource_path: str) -> list[str]:
    """The lines of ``reaper-kb.ini``, without their endings; none when there is no file."""
    return _kb_text(resource_path).splitlines()


def _rewritten(line: str, relative: str, description: str) -> str:
    """Our registration ``line`` naming ``relative`` and ``description``: its flags and
    command id (what shortcuts, toolbars and menus refer to) stay, and so does a path
    that already names the script; a line that needs no change stays as written."""
    fields = scr_fields(line)
    assert fields is not None  # scr_script matched it
    path = fields[-1].strip('"') if _same_script(fields[-1], relative) else relative
    wanted = kb_line(path, description, flags=fields[1], command=fields[3])
    return line if scr_fields(wanted) == fields else wanted


def register_in_kb(resource_path: str, entries: dict[str, str]) -> str:
    """Give each of ``entries`` (relative path -> description) a main-section ``SCR`` line,
    destroying nothing a user made:

    - the first main-section line that registers an entry (``scr_script``) is rewritten in
      place (``_rewritten``), keeping its command id, so shortcuts bound to it still work;
    - further main-section lines of the same script (say a second "Load ReaScript") stay
      as they are: removing one would leave the shortcuts and toolbar buttons bound to its
      command id pointing at nothing, while REAPER just lists the action twice;
    - lines in other sections (the MIDI editor...) are the user's and stay;
    - an entry with no line gets one with our stable ``command_id``, at the end.

    The file is edited in place: written through a symbolic link, with its permission
    bits kept (``write_in_place``), its line endings (``split_lines``) and every line not
    rewritten staying byte for byte."""
    lines, newline = split_lines(_kb_text(resource_path))
    done: set[str] = set()
    for index, line in enumerate(lines):
        body = line.rstrip("\r\n")
        relative = scr_script(body, entries)
        if relative is not None and relative not in done:
            lines[index] = _rewritten(body, relative, entries[relative]) + line[len(body):]
            done.add(relative)
    added = [kb_line(rel, desc) + newline for rel, desc in entries.items() if rel not in done]
    if added and lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline  # a last line without an ending, now followed by ours
    return write_in_place(os.path.join(resource_path, KB_FILE), "".join(lines + added))


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
    scripts_dir = os.path.join(resource_path, SCRIPTS_SUBDIR)
    report = InstallReport(scripts_dir, ini)
    running = str(api.GetResourcePath()) if api is not None else resource_path
    if not same_folder(running, resource_path):
        report.kb_reason = (f"the running REAPER uses {running}, not {resource_path}: "
                            "registering through reaper-kb.ini instead")
        api = None
    kb = os.path.join(resource_path, KB_FILE)
    if api is None:
        with _registering(kb):  # so does a reaper-kb.ini that cannot be written
            check_writable(kb)
    with _staged_scripts(Path(scripts_dir)):  # so does a folder refusing them, or a full disk
        save_settings(ini, settings)  # so does a value the INI cannot hold
    if api is not None:
        names = list(SCRIPTS)
        for index, name in enumerate(names):
            cmd = api.AddRemoveReaScript(True, 0, os.path.join(scripts_dir, name), index == len(names) - 1)
            if not cmd:
                raise BridgeError(f"REAPER refused to register {name}")
            report.registered[SCRIPTS[name]] = cmd
    else:
        with _registering(kb):
            report.kb_file = register_in_kb(resource_path, kb_entries())
    return report


@contextlib.contextmanager
def _staged_scripts(scripts_dir: Path) -> Iterator[None]:
    """Copy the scripts into a hidden folder in ``scripts_dir``, run the block (which saves
    the settings), then replace the installed scripts with them together
    (``replaced_together``): a script that cannot be replaced (on Windows, one an editor or
    a virus scanner holds open) leaves every installed one as it was. Copied in place one
    by one after the settings were saved, such a script stopped the install with the new
    action scripts beside the old bootstrap, and a script being rewritten read short."""
    names = (*SUPPORT_FILES, *SCRIPTS)
    with replaced_together(scripts_dir, names) as staging:
        for name in names:
            shutil.copyfile(scripts_source() / name, staging / name)
        yield


@contextlib.contextmanager
def _registering(kb: str) -> Iterator[None]:
    """Turn an ``OSError`` on ``reaper-kb.ini`` into one line naming that file (and where
    a link there points): the bare error named the folder of the link's target, a
    read-only store, say, that the user would not know as REAPER's."""
    try:
        yield
    except OSError as exc:
        link = f" (it links to {os.path.realpath(kb)})" if os.path.islink(kb) else ""
        raise BridgeError(f"cannot register the actions in {kb}: "
                          f"{exc.strerror or exc}{link}") from None

"""Bridge settings: a small INI next to the installed scripts.

``<REAPER resource path>/Scripts/debleed/debleed.ini`` is written by ``debleed reaper
install`` and read by the actions inside REAPER and by the ``debleed reaper`` commands,
so both paths process with the same gate, model and device. Standard library only.

The paths (``model``, empty = the shipped model, and ``export_dir``) are resolved once, by
``load_settings`` (``resolve_path``), so the actions, the worker, the ``debleed reaper``
commands and ``debleed reaper doctor`` all use one path.

    [debleed]
    python = /path/to/venv/bin/python   ; the debleed environment that runs the worker
    package_root = /path/to/site-packages ; where REAPER's Python finds reaper_bridge
    model =                               ; checkpoint (~/x.pt, or relative to this folder, as export_dir)
    device = auto                         ; auto, cpu, cuda
    precision = float32                   ; or bfloat16 (faster on recent CPUs), float16 (CUDA)
    compare_variants = false              ; also render the other two variants' takes
    export_dir =                          ; training export; empty = <media>/debleed-training
    sidechain_track =                     ; key the pre-gate from this track (e.g. a trigger)
    [gate]
    threshold_db = -30                    ; any GateConfig field (SPEC 3)
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field

from denoiser.errors import DebleedError
from denoiser.outfiles import atomic_output

SCRIPTS_SUBDIR = os.path.join("Scripts", "debleed")
INI_NAME = "debleed.ini"
#: Keys holding a path: ``~`` expanded, relative to the INI's own folder (``resolve_path``).
#: Each maps to the words that are not paths: empty (the default) and, for ``model``,
#: ``default`` (the shipped model); an ``export_dir`` of "default" is a folder so named.
PATH_KEYS: dict[str, tuple[str, ...]] = {"model": ("", "default"), "export_dir": ("",)}


class SettingsError(DebleedError):
    """The settings INI cannot be read: the user edits it by hand, so say where it is wrong."""


@dataclass
class BridgeSettings:
    python: str = ""
    package_root: str = ""
    #: The checkpoint as used: ``load_settings`` gives it resolved (``resolve_path``).
    model: str = ""
    device: str = "auto"
    precision: str = "float32"
    compare_variants: bool = False
    export_dir: str = ""
    sidechain_track: str = ""
    gate: dict[str, float | bool] = field(default_factory=dict)
    #: The ``PATH_KEYS`` as the INI spells them (``~/x.pt``, ``models/x.pt``):
    #: ``save_settings`` writes each back while it still resolves to the value in use, so a
    #: reinstall keeps the user's portable spelling rather than freezing today's absolute
    #: path into the file.
    as_written: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def variants(self, with_gate: bool) -> tuple[str, ...]:
        """Variants an action renders; the last one becomes the active take."""
        main = "debleed+gate" if with_gate else "debleed"
        if not self.compare_variants:
            return (main,)
        return tuple(v for v in ("gate", "debleed", "debleed+gate") if v != main) + (main,)

    def worker_env(self) -> dict[str, str]:
        """The environment the worker's Python runs in: REAPER's embedded Python may set
        ``PYTHONHOME``, which the worker's own Python must not inherit, and
        ``package_root`` comes first on its path."""
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        if self.package_root:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (self.package_root, env.get("PYTHONPATH")) if p)
        return env

    def cache_key(self) -> str:
        """Changes whenever the processed audio would change (model file, precision, gate
        settings). The sidechain track is not part of it: only gated variants hear the key,
        and ``jobs`` adds the digest of its audio to their entries alone, so an ungated take
        is reused whichever track is named."""
        model = self.model
        if model and os.path.isfile(model):
            model = f"{os.path.abspath(model)}@{os.stat(model).st_mtime_ns}"
        keyed = {"model": model, "precision": self.precision, "gate": self.gate}
        text = json.dumps(keyed, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def default_resource_path() -> str:
    """REAPER's default resource folder on this OS (portable installs differ)."""
    if sys.platform.startswith("win"):
        return os.path.join(os.environ.get("APPDATA", os.path.expanduser("~")), "REAPER")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Application Support/REAPER")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(config, "REAPER")


def settings_path(resource_path: str) -> str:
    return os.path.join(resource_path, SCRIPTS_SUBDIR, INI_NAME)


def resolve_path(value: str, ini_path: str, words: tuple[str, ...] = ("",)) -> str:
    """The path the INI's ``model = value`` or ``export_dir = value`` means: ``~`` expanded
    and a relative path taken from the folder of ``ini_path``; ``words`` (``PATH_KEYS``:
    empty, meaning the shipped model or the default export folder) stay as they are.

    Why: the worker inherits REAPER's current directory, which is arbitrary, while
    ``debleed reaper doctor`` ran in the terminal's, so a relative path could pass doctor
    and fail the action; and nothing expanded ``~``. The INI's own folder is the one
    place both agree on, and it moves with a portable REAPER."""
    text = value.strip()
    if text in words:
        return text
    path = os.path.expanduser(text)
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.path.abspath(ini_path)), path)
    return os.path.normpath(path)


def _gate_value(path: str, key: str, text: str) -> float | bool:
    word = text.strip().lower()
    if word in ("true", "yes", "on", "false", "no", "off"):
        return word in ("true", "yes", "on")
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{path}: [gate] {key} = {text!r} is neither a number nor "
                            "true/false") from None


def load_settings(path: str) -> BridgeSettings:
    """Read the INI; a missing file gives the defaults, a malformed one a one-line error.
    ``model`` and ``export_dir`` come resolved against ``path`` (``resolve_path``), so
    every reader of the settings, in REAPER, in the worker or in a terminal, uses the same
    checkpoint and export folder."""
    # No interpolation: a "%" in a path is a path, not a reference to another key.
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    try:
        parser.read(path, encoding="utf-8-sig")  # Notepad may save a byte-order mark
    except (configparser.Error, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise SettingsError(f"{path}: not a readable settings file ({reason})") from None
    main = parser["debleed"] if parser.has_section("debleed") else {}
    gate = dict(parser["gate"]) if parser.has_section("gate") else {}
    written = {key: main.get(key, "") for key in PATH_KEYS}
    resolved = {key: resolve_path(value, path, PATH_KEYS[key]) for key, value in written.items()}
    return BridgeSettings(
        python=main.get("python", ""), package_root=main.get("package_root", ""),
        model=resolved["model"], export_dir=resolved["export_dir"], as_written=written,
        device=main.get("device", "auto") or "auto",
        precision=main.get("precision", "float32") or "float32",
        compare_variants=str(main.get("compare_variants", "false")).lower() in ("1", "true", "yes", "on"),
        sidechain_track=main.get("sidechain_track", "").strip(),
        gate={key: _gate_value(path, key, value) for key, value in gate.items()},
    )


def _savable(path: str, key: str, value: str) -> str:
    """``value``, unless reading it back would cut it: a ";" that starts the value or
    follows a space or tab starts a comment (the INI is commented by hand, see
    ``load_settings``), so ``/home/me/a ;b`` would come back as ``/home/me/a``."""
    if re.search(r"(^|\s);", value):
        raise SettingsError(f"{path}: cannot save {key} = {value!r}: ';' after a space starts "
                            "a comment in this file, so the value would not read back")
    return value


def save_settings(path: str, settings: BridgeSettings) -> str:
    """Write the INI atomically; a value that would not read back unchanged is refused.

    A path keeps the INI's spelling (``as_written``) while it still resolves to the value
    in use; a changed one is written as given (read back against ``path``)."""
    parser = configparser.ConfigParser(interpolation=None)
    paths = {}
    for key in PATH_KEYS:
        value, written = getattr(settings, key), settings.as_written.get(key, "")
        same = written and resolve_path(written, path, PATH_KEYS[key]) == value
        paths[key] = written if same else value
    main = {
        "python": settings.python, "package_root": settings.package_root,
        "model": paths["model"], "device": settings.device, "precision": settings.precision,
        "compare_variants": "true" if settings.compare_variants else "false",
        "export_dir": paths["export_dir"], "sidechain_track": settings.sidechain_track,
    }
    parser["debleed"] = {key: _savable(path, key, value) for key, value in main.items()}
    parser["gate"] = {key: str(value).lower() if isinstance(value, bool) else repr(float(value))
                      for key, value in settings.gate.items()}
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path

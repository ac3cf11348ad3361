"""Bridge settings: a small INI next to the installed scripts.

``<REAPER resource path>/Scripts/debleed/debleed.ini`` is written by ``debleed reaper
install`` and read by the actions inside REAPER and by the ``debleed reaper`` commands,
so both paths process with the same gate, model and device. The user edits it by hand, so
``save_settings`` edits an existing file in place and keeps what it does not need to
change (comments, unknown keys, spellings). Standard library only.

The paths (``model``, empty = the shipped model, and ``export_dir``) are resolved once, by
``load_settings`` (``resolve_path``), so the actions, the worker, the ``debleed reaper``
commands and ``debleed reaper doctor`` all use one path.

    [debleed]
    python = /path/to/venv/bin/python   ; the debleed environment that runs the worker
    package_root = /path/to/site-packages ; where REAPER's Python finds reaper_bridge
    model =                               ; checkpoint (~/x.pt, or relative to this folder, as export_dir)
    device = auto                         ; auto, cpu, cuda
    precision = float32                   ; or bfloat16 (faster on recent CPUs), float16 (CUDA)
    input_max_hz = 0                      ; 22050: never read a 48-kHz track above it
    hiss_cut_hz =                         ; empty: the engine's (22050); 0: never cut on hiss
    compare_variants = false              ; also render the other two variants' takes
    export_dir =                          ; training export; empty = <media>/debleed-training
    sidechain_track =                     ; key the pre-gate from this track (e.g. a trigger)
    [gate]
    threshold_db = -30                    ; any GateConfig field (SPEC 3)
"""

from __future__ import annotations

import configparser
import hashlib
import io
import json
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from denoiser import pretrained
from denoiser.errors import DebleedError
from denoiser.hiss_cut import HISS_CUT_HZ
from denoiser.outfiles import atomic_output, missing_folders, remove_empty_folders

SCRIPTS_SUBDIR = os.path.join("Scripts", "debleed")
INI_NAME = "debleed.ini"
#: Keys holding a path: ``~`` expanded, relative to the INI's own folder (``resolve_path``).
#: Each maps to the words that are not paths: empty (the default) and, for ``model``,
#: ``default`` (the shipped model); an ``export_dir`` of "default" is a folder so named.
PATH_KEYS: dict[str, tuple[str, ...]] = {"model": ("", "default"), "export_dir": ("",)}


#: The ``[debleed]`` keys debleed reads. Another key there is kept (``save_settings``) but
#: read by nothing: ``debleed reaper doctor`` warns of it, as a misspelt ``devise = cpu``.
MAIN_KEYS = ("python", "package_root", "model", "device", "precision", "input_max_hz",
             "hiss_cut_hz", "compare_variants", "export_dir", "sidechain_track")
#: The sections debleed reads, by the names configparser gives them.
SECTIONS = ("debleed", "gate")


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
    #: The model reads only the band below (``InferenceConfig.input_max_hz``); 0: all of it.
    input_max_hz: float = 0.0
    #: Where a track's band above this holds a floor, the model reads only below
    #: (``InferenceConfig.hiss_cut_hz``); None: the engine's default.
    hiss_cut_hz: float | None = None
    compare_variants: bool = False
    export_dir: str = ""
    sidechain_track: str = ""
    gate: dict[str, float | bool] = field(default_factory=dict)
    #: The ``PATH_KEYS`` as the INI spells them (``~/x.pt``, ``models/x.pt``):
    #: ``save_settings`` writes each back while it still resolves to the value in use, so a
    #: reinstall keeps the user's portable spelling rather than freezing today's absolute
    #: path into the file.
    as_written: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    #: The ``[debleed]`` keys not among ``MAIN_KEYS``, which nothing reads.
    unknown: tuple[str, ...] = field(default=(), compare=False, repr=False)

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
        """Changes whenever the processed audio would change (model file, the shipped one's
        included, precision, ``input_max_hz``, ``hiss_cut_hz``, gate settings). The
        sidechain track is not part of it: only gated variants hear the key, and ``jobs``
        adds the digest of its audio to their entries alone, so an ungated take is reused
        whichever track is named."""
        # the shipped model by its file too: an upgrade that ships new weights must not
        # reuse the takes the old ones rendered
        model = str(pretrained.DEFAULT_MODEL) if self.model in PATH_KEYS["model"] else self.model
        if model and os.path.isfile(model):
            model = f"{os.path.abspath(model)}@{os.stat(model).st_mtime_ns}"
        keyed = {"model": model, "precision": self.precision, "gate": self.gate}
        if self.input_max_hz:  # absent when off, so takes rendered before the key existed match
            keyed["input_max_hz"] = self.input_max_hz
        # keyed by the value in effect wherever the floor test runs: takes rendered before
        # the engine had it (read whole) are not reused for it, those rendered with it off are
        hiss_cut_hz = HISS_CUT_HZ if self.hiss_cut_hz is None else self.hiss_cut_hz
        if hiss_cut_hz and not self.input_max_hz:
            keyed["hiss_cut_hz"] = hiss_cut_hz
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


#: The words an on/off setting is written with (``compare_variants``, a gate switch).
ON_WORDS, OFF_WORDS = ("true", "yes", "on"), ("false", "no", "off")


#: The ``[gate]`` keys that are on/off switches; every other one is a number.
GATE_SWITCHES = ("auto",)


def _gate_values(path: str, section: dict[str, str]) -> dict[str, float | bool]:
    """The ``[gate]`` section's values: switches read as ``compare_variants`` is ("1" and
    "true" alike: ``auto = 1`` used to be refused as the number 1), the rest as numbers. An
    empty number is an error, not a default: a key left empty is more likely a value
    forgotten than one meant to be the default (removing the line gives that)."""
    values: dict[str, float | bool] = {}
    for key, text in section.items():
        if key in GATE_SWITCHES:
            values[key] = _switch(path, f"[gate] {key}", text)
        elif not text.strip():
            raise SettingsError(f"{path}: [gate] {key} is empty; give a number, or remove "
                                "the line for the default")
        else:
            try:
                values[key] = float(text)
            except ValueError:
                raise SettingsError(f"{path}: [gate] {key} = {text!r} is not a number") from None
    return values


def _switch(path: str, key: str, text: str) -> bool:
    """An on/off setting; empty is off. A misspelt word ("ture") is an error, not off."""
    word = text.strip().lower()
    if word not in ("", "1", "0", *ON_WORDS, *OFF_WORDS):
        raise SettingsError(f"{path}: {key} = {text!r} is neither true nor false")
    return word in ("1", *ON_WORDS)


def _frequency(path: str, key: str, text: str) -> float:
    """A frequency setting in Hz; empty is 0 (off). The engine judges the value itself."""
    try:
        return float(text or 0)
    except ValueError:
        raise SettingsError(f"{path}: {key} = {text!r} is not a frequency in Hz") from None


def _optional_frequency(path: str, key: str, text: str) -> float | None:
    """A frequency setting in Hz; empty is None (the engine's default)."""
    return _frequency(path, key, text) if text else None


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
    for name in parser.sections():
        _check_section_name(path, name)
    main = parser["debleed"] if parser.has_section("debleed") else {}
    gate = dict(parser["gate"]) if parser.has_section("gate") else {}
    written = {key: main.get(key, "") for key in PATH_KEYS}
    resolved = {key: resolve_path(value, path, PATH_KEYS[key]) for key, value in written.items()}
    return BridgeSettings(
        python=main.get("python", ""), package_root=main.get("package_root", ""),
        model=resolved["model"], export_dir=resolved["export_dir"], as_written=written,
        device=main.get("device", "auto") or "auto",
        precision=main.get("precision", "float32") or "float32",
        input_max_hz=_frequency(path, "input_max_hz", main.get("input_max_hz", "").strip()),
        hiss_cut_hz=_optional_frequency(path, "hiss_cut_hz", main.get("hiss_cut_hz", "").strip()),
        compare_variants=_switch(path, "compare_variants", main.get("compare_variants", "")),
        sidechain_track=main.get("sidechain_track", "").strip(),
        gate=_gate_values(path, gate),
        unknown=tuple(key for key in main if key not in MAIN_KEYS),
    )


def _check_section_name(path: str, name: str) -> None:
    """Refuse a section meant as one of ``SECTIONS`` that configparser names otherwise: its
    names are case-sensitive and keep the spaces inside the brackets, so ``[Gate]`` or
    ``[ gate ]`` was ignored whole, and a reinstall then wrote a second section."""
    wanted = name.strip().lower()
    if name == wanted or wanted not in SECTIONS:
        return
    how = [word for word, wrong in (("lower case", wanted != name.strip()),
                                    ("no spaces", name != name.strip())) if wrong]
    raise SettingsError(f"{path}: section [{name}] is read only as [{wanted}] "
                        f"({', '.join(how)}); rename it")


def _savable(path: str, key: str, value: str) -> str:
    """``value``, unless reading it back would cut it: a ";" that starts the value or
    follows a space or tab starts a comment (the INI is commented by hand, see
    ``load_settings``), so ``/home/me/a ;b`` would come back as ``/home/me/a``."""
    if re.search(r"(^|\s);", value):
        raise SettingsError(f"{path}: cannot save {key} = {value!r}: ';' after a space starts "
                            "a comment in this file, so the value would not read back")
    return value


def write_in_place(path: str, text: str) -> str:
    """Write ``text`` (line endings as given) to ``path`` atomically, as the file the user
    keeps there: a symbolic link is followed, since renaming the new file onto the link
    would replace the link with a plain file, and the file's permission bits are kept (a
    read-only file stays read-only; on POSIX the rename needs only a writable folder).

    The bits are given to the file once it is in place, never to the temporary file: on
    Windows a read-only temporary file can neither replace the target nor be removed when
    that fails, which left it behind and hid the error under the failed removal's."""
    target = os.path.realpath(path)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    with atomic_output(target) as tmp:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            handle.write(text)
    if mode is not None:
        os.chmod(target, mode)
    return path


def check_writable(path: str) -> None:
    """Raise the ``OSError`` that ``write_in_place(path)`` would meet first (its folder, the
    link's target's, refuses a new file: read-only, not a folder), having made and removed
    what that step makes, so an install that writes several files refuses before it
    writes any."""
    folder = Path(os.path.realpath(path)).parent
    created = missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    finally:
        remove_empty_folders(created)


def _ini_values(path: str, settings: BridgeSettings) -> dict[str, dict[str, str]]:
    """Section -> key -> the text ``settings`` is saved as; a value that would not read
    back unchanged is refused. A path keeps the INI's spelling (``as_written``) while it
    still resolves to the value in use; a changed one is written as given."""
    paths = {}
    for key in PATH_KEYS:
        value, written = getattr(settings, key), settings.as_written.get(key, "")
        same = written and resolve_path(written, path, PATH_KEYS[key]) == value
        paths[key] = written if same else value
    main = {
        "python": settings.python, "package_root": settings.package_root,
        "model": paths["model"], "device": settings.device, "precision": settings.precision,
        "input_max_hz": f"{settings.input_max_hz:.17g}",
        "hiss_cut_hz": "" if settings.hiss_cut_hz is None else f"{settings.hiss_cut_hz:.17g}",
        "compare_variants": "true" if settings.compare_variants else "false",
        "export_dir": paths["export_dir"], "sidechain_track": settings.sidechain_track,
    }
    gate = {key: str(value).lower() if isinstance(value, bool) else repr(float(value))
            for key, value in settings.gate.items()}
    return {"debleed": {key: _savable(path, key, value) for key, value in main.items()},
            "gate": gate}


def save_settings(path: str, settings: BridgeSettings) -> str:
    """Write the INI atomically; a value that would not read back unchanged is refused.

    A new INI is written whole. An existing one is the user's, edited by hand, so it is
    edited in place (``_edit_ini``): only the keys whose value differs from ``settings``
    are rewritten (for a reinstall, ``python`` and ``package_root``), missing keys are
    added, and every other line (comments, keys debleed does not know, ``-24`` rather than
    ``-24.0``, ``on`` rather than ``true``) stays byte for byte."""
    values = _ini_values(path, settings)
    if os.path.exists(path):
        current = load_settings(path)  # an unreadable INI is an error, not overwritten
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            text = handle.read()
        return write_in_place(path, _edit_ini(text, values, _changed(current, settings, values)))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(values)
    buffer = io.StringIO()
    parser.write(buffer)
    return write_in_place(path, buffer.getvalue().replace("\n", os.linesep))


def _changed(current: BridgeSettings, settings: BridgeSettings,
             values: dict[str, dict[str, str]]) -> set[tuple[str, str]]:
    """The (section, key) pairs of ``values`` whose value in ``settings`` differs from the
    one the INI gives now (``current``); ``-24`` and ``-24.0`` are the same value, ``1``
    and ``true`` are not."""
    def differs(old: object, new: object) -> bool:
        return type(old) is not type(new) or old != new

    changed = {("debleed", key) for key in values["debleed"]
               if differs(getattr(current, key), getattr(settings, key))}
    return changed | {("gate", key) for key in values["gate"]
                      if differs(current.gate.get(key), settings.gate[key])}


#: A ``key = value ; comment`` line as ``load_settings`` reads it: the first ``=`` or ``:``
#: ends the key, and a ``;`` after a space starts a comment. The spaces after the ``=``
#: are ``lead``'s only when a value or the line's end follows them: before a comment (an
#: empty value, ``model =    ; checkpoint``) they are ``tail``'s, so that a new value goes
#: in front of them rather than making the comment its own text.
_KEY_LINE = re.compile(r"(?P<lead>\s*(?P<key>[^=:]*?)\s*[=:](?:[ \t]*(?=[^\s;]|$))?)"
                       r"(?P<value>.*?)(?P<tail>(?:\s+;.*)?\s*)$")
_SECTION_LINE = re.compile(r"\s*\[(?P<name>.+)\]")
_INLINE_COMMENT = re.compile(r"(^|\s);.*")


def split_lines(text: str) -> tuple[list[str], str]:
    """``text``'s lines as ``open`` splits them, each with its own line ending, and the
    ending a line added to it should get (its first line's): a file edited in place keeps
    the CRLF endings Windows editors and REAPER give it, and its other lines byte for byte."""
    lines = io.StringIO(text, newline="").readlines()
    return lines, "\r\n" if lines and lines[0].endswith("\r\n") else "\n"


@dataclass
class _Layout:
    """Where things are in an INI's lines: each key's first and after-last line (its
    continuation lines included) and each section's header line."""
    keys: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    headers: dict[str, int] = field(default_factory=dict)


def _is_comment(line: str) -> bool:
    return line.strip().startswith(("#", ";"))


def _layout(lines: list[str]) -> _Layout:
    """Sections and keys as ``configparser`` finds them: key names lower-cased and section
    names as written between the brackets, spaces included, as it does; a line indented
    deeper than its key continues the key's value."""
    layout, section, indent = _Layout(), "", 0
    key: tuple[str, str] | None = None
    for index, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if not body.strip() or _is_comment(body):
            continue
        depth = len(body) - len(body.lstrip())
        if key is not None and depth > indent:
            layout.keys[key] = (layout.keys[key][0], index + 1)
            continue
        header = _SECTION_LINE.match(_INLINE_COMMENT.sub("", body))
        entry = _KEY_LINE.match(body)
        if header:
            section, key = header["name"], None
            layout.headers[section] = index
        elif entry and entry["key"]:
            key, indent = (section, entry["key"].strip().lower()), depth
            layout.keys[key] = (index, index + 1)
    return layout


def _set_value(line: str, value: str) -> str:
    """``line`` with its value replaced: the key's spelling, an inline comment (with the
    spaces before it) and the line ending stay. An empty value's ``lead`` may end at the
    ``=`` (``_KEY_LINE``): the new value gets a space after it, as ``key = value``."""
    body = line.rstrip("\r\n")
    entry = _KEY_LINE.match(body)
    assert entry is not None  # _layout found a key on this line
    lead = entry["lead"]
    gap = "" if entry["value"] or lead[-1].isspace() else " "
    return f"{lead}{gap}{value}{entry['tail']}{line[len(body):]}"


def _edit_ini(text: str, values: dict[str, dict[str, str]], changed: set[tuple[str, str]]) -> str:
    """``text`` (an INI) made to hold ``values``: a ``changed`` key's line gets the new
    value, a missing key is added after its section's last key (a missing section at the
    end), a ``[gate]`` key no longer in ``values`` is removed, and every other line stays
    as it is, byte order mark and line endings included."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines, newline = split_lines(text[len(bom):])
    layout = _layout(lines)
    replaced: dict[int, str] = {}
    dropped: set[int] = set()
    added: dict[int, list[str]] = {}
    for section, wanted in values.items():
        present = [(key, span) for (name, key), span in layout.keys.items() if name == section]
        for key, (start, stop) in present:
            if key not in wanted and section == "gate":
                dropped.update(range(start, stop))
            elif (section, key) in changed:
                replaced[start] = _set_value(lines[start], wanted[key])
                dropped.update(range(start + 1, stop))
        missing = [f"{key} = {value}{newline}" for key, value in wanted.items()
                   if (section, key) not in layout.keys]
        if section in layout.headers:
            after = max((stop for _, (_, stop) in present), default=layout.headers[section] + 1)
            added.setdefault(after, []).extend(missing)
        elif missing:
            gap = [newline] if lines and lines[-1].strip() else []
            added.setdefault(len(lines), []).extend([*gap, f"[{section}]{newline}", *missing])
    kept = [None if index in dropped else replaced.get(index, line)
            for index, line in enumerate(lines)]
    return bom + _insert(kept, added, newline)


def _insert(lines: list[str | None], added: dict[int, list[str]], newline: str) -> str:
    """``lines`` (None: removed) joined with ``added[i]`` before line ``i`` (``len(lines)``:
    at the end); a last line without a line ending gets one only when a line follows it."""
    out: list[str] = []
    for index, line in enumerate([*lines, None]):
        extra = added.get(index, [])
        if extra and out and not out[-1].endswith(("\n", "\r")):
            out.append(newline)
        out += extra if line is None else [*extra, line]
    return "".join(out)

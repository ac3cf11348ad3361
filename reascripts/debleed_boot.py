"""Bootstrap shared by the debleed ReaScripts (standard library only).

Reads ``debleed.ini`` beside this file to find the folder holding ``reaper_bridge``
(written by ``debleed reaper install``), imports debleed's own packages from there ahead
of everything else (``_import_own``), leaves that folder at the END of ``sys.path`` so
nothing in REAPER's own Python is shadowed later, and runs the named action. When
REAPER's Python is older than the bridge needs, the INI cannot be read or the bridge
cannot be imported (or fails while importing) it says so and ends with a no-op defer,
which keeps REAPER from adding a "ReaScript: Run" undo point for a script that changed
nothing. To say so this file must itself run on such an old Python, 2.7 included: no
newer syntax (no f-strings, no second star in a call, no annotations), no newer library
calls or modules before the version check (tests/reaper_bridge/test_bridge_stdlib.py).
"""

import os
import sys

try:
    import configparser
except ImportError:  # Python 2, which run() turns away before reading the INI
    configparser = None

#: The oldest Python the bridge runs on (tests/reaper_bridge/test_bridge_stdlib.py keeps
#: its syntax and type hints to it); an older one is told so before anything is imported.
MIN_PYTHON = (3, 9)
#: debleed's top-level packages, imported from ``package_root`` before anything else:
#: another project's ``denoiser`` (facebookresearch's speech enhancer is published under
#: that name) must not stand in for debleed's.
OWN_PACKAGES = ("reaper_bridge", "denoiser")


def _package_root(ini):
    """``package_root`` from the INI, read as ``reaper_bridge.settings`` reads it: a "%"
    is a character and Notepad's byte-order mark is skipped."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.read(ini, encoding="utf-8-sig")
    return parser.get("debleed", "package_root", fallback="")


def _import_own(root):
    """Import ``OWN_PACKAGES`` with ``root`` first on ``sys.path``, then leave ``root`` at
    its end. Appended only, a namesake already on REAPER's path was imported instead and
    every action stopped saying debleed is not installed; first for good, the debleed
    environment's site-packages would shadow REAPER's own modules for every later import.
    Once imported, a package finds its submodules in its own folder whatever the path."""
    sys.path.insert(0, root)
    try:
        for name in OWN_PACKAGES:
            __import__(name)
    finally:
        sys.path.remove(root)  # the first occurrence: the one just inserted
        if root not in sys.path:
            sys.path.append(root)


def _namesake(root):
    """The first of ``OWN_PACKAGES`` loaded from outside ``root``, as "'name' (where)", or
    "": one another script imported earlier in REAPER's session stays in ``sys.modules``
    and is found there before any path."""
    inside = os.path.join(os.path.realpath(root), "")
    for name in OWN_PACKAGES:
        module = sys.modules.get(name)
        if module is None:
            continue
        where = (getattr(module, "__file__", None)
                 or next(iter(getattr(module, "__path__", [])), ""))  # a namespace package
        if not os.path.realpath(where).startswith(inside):
            return "'{}' ({})".format(name, where)
    return ""


def _stop(message):
    """Show ``message`` and end without an undo point. The bridge's own helpers may be
    what cannot be imported, so this is their minimal equivalent."""
    from reaper_python import RPR_ShowMessageBox

    RPR_ShowMessageBox(message, "debleed", 0)
    defer = getattr(sys.modules["__main__"], "RPR_defer", None)  # a host built-in
    if defer is not None:
        defer("pass")


def run(action):
    if sys.version_info < MIN_PYTHON:
        versions = MIN_PYTHON + tuple(sys.version_info[:2])
        _stop("debleed needs Python {}.{} or later in REAPER, which runs Python {}.{}.\n"
              "Point REAPER at a newer Python library (Options > Preferences > Plug-ins > "
              "ReaScript), then restart REAPER.".format(*versions))
        return
    from reaper_python import RPR_GetResourcePath

    ini = os.path.join(RPR_GetResourcePath(), "Scripts", "debleed", "debleed.ini")
    try:
        root = _package_root(ini)
    except (configparser.Error, UnicodeDecodeError) as exc:
        _stop("{}: not a readable settings file ({}).\nFix it, or delete it and run "
              "'debleed reaper install'.".format(ini, str(exc).splitlines()[0].rstrip(".")))
        return
    try:
        if root:
            _import_own(root)
        from reaper_bridge import actions
    except ImportError as exc:
        namesake = _namesake(root) if root else ""
        if namesake:
            _stop("debleed cannot load: another package named {} is loaded in REAPER's "
                  "Python in place of debleed's ({}).\nRestart REAPER, or uninstall that "
                  "package from REAPER's Python.".format(namesake, root))
        else:
            _stop("debleed is not installed for REAPER's Python ({}).\n"
                  "Run 'debleed reaper install' from the debleed environment.".format(exc))
        return
    except Exception as exc:  # a module REAPER's Python cannot run: a message, not a traceback
        _stop("debleed cannot load in REAPER's Python {}.{} ({}: {}).\n"
              "Run 'debleed reaper doctor' from the debleed environment.".format(
                  sys.version_info[0], sys.version_info[1], type(exc).__name__,
                  (str(exc).splitlines() or [""])[0]))
        return
    actions.main(action)

"""Bootstrap shared by the debleed ReaScripts (standard library only).

Reads ``debleed.ini`` beside this file to find the folder holding ``reaper_bridge``
(written by ``debleed reaper install``), puts it at the END of ``sys.path`` so nothing
in REAPER's own Python is shadowed, and runs the named action. When REAPER's Python is
older than the bridge needs, the INI cannot be read or the bridge cannot be imported (or
fails while importing) it says so and ends with a no-op defer, which keeps REAPER from
adding a "ReaScript: Run" undo point for a script that changed nothing. To say so this
file must itself run on such an old Python: no newer syntax, no newer library calls.
"""

import configparser
import os
import sys

#: The oldest Python the bridge runs on (tests/reaper_bridge/test_bridge_stdlib.py keeps
#: its syntax and type hints to it); an older one is told so before anything is imported.
MIN_PYTHON = (3, 9)


def _package_root(ini):
    """``package_root`` from the INI, read as ``reaper_bridge.settings`` reads it: a "%"
    is a character and Notepad's byte-order mark is skipped."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.read(ini, encoding="utf-8-sig")
    return parser.get("debleed", "package_root", fallback="")


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
        _stop("debleed needs Python {}.{} or later in REAPER, which runs Python {}.{}.\n"
              "Point REAPER at a newer Python library (Options > Preferences > Plug-ins > "
              "ReaScript), then restart REAPER.".format(*MIN_PYTHON, *sys.version_info[:2]))
        return
    from reaper_python import RPR_GetResourcePath

    ini = os.path.join(RPR_GetResourcePath(), "Scripts", "debleed", "debleed.ini")
    try:
        root = _package_root(ini)
    except (configparser.Error, UnicodeDecodeError) as exc:
        _stop("{}: not a readable settings file ({}).\nFix it, or delete it and run "
              "'debleed reaper install'.".format(ini, str(exc).splitlines()[0].rstrip(".")))
        return
    if root and root not in sys.path:
        sys.path.append(root)
    try:
        from reaper_bridge import actions
    except ImportError as exc:
        _stop("debleed is not installed for REAPER's Python ({}).\n"
              "Run 'debleed reaper install' from the debleed environment.".format(exc))
        return
    except Exception as exc:  # a module REAPER's Python cannot run: a message, not a traceback
        _stop("debleed cannot load in REAPER's Python {}.{} ({}: {}).\n"
              "Run 'debleed reaper doctor' from the debleed environment.".format(
                  *sys.version_info[:2], type(exc).__name__,
                  (str(exc).splitlines() or [""])[0]))
        return
    actions.main(action)

"""Bootstrap shared by the debleed ReaScripts (standard library only).

Reads ``debleed.ini`` beside this file to find the folder holding ``reaper_bridge``
(written by ``debleed reaper install``), puts it at the END of ``sys.path`` so nothing
in REAPER's own Python is shadowed, and runs the named action. When the bridge cannot be
imported it says so and ends with a no-op defer, which keeps REAPER from adding a
"ReaScript: Run" undo point for a script that changed nothing.
"""

import configparser
import os
import sys


def run(action):
    from reaper_python import RPR_GetResourcePath, RPR_ShowMessageBox

    ini = os.path.join(RPR_GetResourcePath(), "Scripts", "debleed", "debleed.ini")
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read(ini, encoding="utf-8-sig")
    root = parser.get("debleed", "package_root", fallback="")
    if root and root not in sys.path:
        sys.path.append(root)
    try:
        from reaper_bridge import actions
    except ImportError as exc:
        RPR_ShowMessageBox(
            "debleed is not installed for REAPER's Python ({}).\n"
            "Run 'debleed reaper install' from the debleed environment.".format(exc), "debleed", 0)
        sys.modules["__main__"].RPR_defer("pass")  # a host built-in, not in reaper_python
        return
    actions.main(action)

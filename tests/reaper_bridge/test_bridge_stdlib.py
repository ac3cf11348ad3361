"""What REAPER's embedded Python imports must stay standard library: numpy or torch in
there crash REAPER when a script runs twice."""

from __future__ import annotations

import subprocess
import sys

IN_REAPER = ["reaper_bridge.actions", "reaper_bridge.bridge", "reaper_bridge.export",
             "reaper_bridge.install", "reaper_bridge.items", "reaper_bridge.rpr",
             "reaper_bridge.settings", "reaper_bridge.sidechain", "reaper_bridge.wavio",
             "reascripts.debleed_boot"]


def test_reaper_side_imports_no_third_party_package() -> None:
    code = ("import sys\n"
            f"for name in {IN_REAPER!r}: __import__(name)\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'torch', 'scipy', 'soundfile', 'soxr', 'click', 'rich', 'reapy'})\n"
            "print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""

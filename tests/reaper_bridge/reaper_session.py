"""Run a debleed ReaScript as REAPER would, on the fake REAPER, in a fresh interpreter.

``python reaper_session.py SCENARIO.json OUT.json``. The fake's module, with REAPER's
ctypes function table, becomes ``reaper_python`` and ``__main__.obj`` is set, which is how
python-reapy recognises REAPER's embedded interpreter; so ``import reapy`` here is the real
reapy 0.10.0 running "inside REAPER" on the fake. A subprocess keeps that global state out
of the test run.

Scenario keys: ``resource``, ``media``, ``items`` (``[{"file", "position", "length",
"name", "values"}]`` on one track), ``script`` (file in Scripts/debleed to run),
``reapy`` (false: make ``import reapy`` fail, to exercise the raw fallback),
``probe`` (report what reapy's object API sees).
"""

from __future__ import annotations

import json
import runpy
import sys
import __main__
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_reaper import FakeReaper  # noqa: E402


def main(scenario_path: str, out_path: str) -> None:
    scenario = json.loads(Path(scenario_path).read_text())
    fake = FakeReaper(scenario["resource"], scenario["media"])
    track = fake.add_track(scenario.get("track", "Snare"))
    for spec in scenario["items"]:
        item = fake.add_item(track, spec["position"], spec["length"])
        fake.add_take(item, fake.file_source(spec["file"]), spec["name"], **spec.get("values", {}))
    sys.modules["reaper_python"] = fake.module(function_table=True)
    __main__.obj = object()
    if not scenario.get("reapy", True):
        sys.modules["reapy"] = None  # import reapy raises ImportError
    report: dict = {}
    if scenario.get("probe"):
        import reapy

        report["inside"] = reapy.is_inside_reaper()
        report["selected"] = [item.id for item in reapy.Project().selected_items]
        report["fake_items"] = [i.ptr for i in track.items]
    if scenario.get("script"):
        script = Path(scenario["resource"]) / "Scripts" / "debleed" / scenario["script"]
        fake.run_script(lambda: runpy.run_path(str(script), run_name="reascript"))
        fake.run_deferred()
        from reaper_bridge.rpr import reaper_api

        api = reaper_api()
        report["api"] = "reapy" if api is sys.modules.get("reapy.reascript_api") else type(api).__name__
    report["state"] = fake.snapshot()
    Path(out_path).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

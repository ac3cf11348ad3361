"""What REAPER's embedded Python imports must stay standard library: numpy or torch in
there crash REAPER when a script runs twice."""

from __future__ import annotations

import ast
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


def _reaper_side_modules() -> list[str]:
    """The files of our own modules that importing the REAPER side loads."""
    code = (f"import sys\nfor name in {IN_REAPER!r}: __import__(name)\n"
            "print('\\n'.join(sorted({m.__file__ for n, m in sys.modules.items() if "
            "n.split('.')[0] in ('reaper_bridge', 'reascripts', 'denoiser') "
            "and getattr(m, '__file__', None)})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_reaper_side_runs_on_python_3_9() -> None:
    """REAPER embeds whatever Python library the user points it at, 3.9 or later
    (docs/reaper.md). One module's ``float | None`` in a signature, evaluated at import
    there, stopped every action with a TypeError. Annotations stay strings (the
    ``__future__`` import) and the syntax stays 3.9's."""
    files = _reaper_side_modules()
    assert any(path.endswith("hiss_cut.py") for path in files)
    for path in files:
        source = open(path, encoding="utf-8").read()
        tree = ast.parse(source, path, feature_version=(3, 9))
        annotations = [node.annotation for node in ast.walk(tree)
                       if isinstance(node, (ast.arg, ast.AnnAssign)) and node.annotation]
        annotations += [node.returns for node in ast.walk(tree)
                        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and node.returns]
        unions = any(isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr)
                     for annotation in annotations for part in ast.walk(annotation))
        future = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                     and any(alias.name == "annotations" for alias in node.names)
                     for node in tree.body)
        assert future or not unions, f"{path}: X | Y annotations without the __future__ import"

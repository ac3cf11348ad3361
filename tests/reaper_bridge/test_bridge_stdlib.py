"""What REAPER's embedded Python imports must stay standard library: numpy or torch in
there crash REAPER when a script runs twice."""

from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reaper_helpers import run_installed_script

from reaper_bridge.install import install

IN_REAPER = ["reaper_bridge.actions", "reaper_bridge.bridge", "reaper_bridge.export",
             "reaper_bridge.install", "reaper_bridge.items", "reaper_bridge.rpr",
             "reaper_bridge.settings", "reaper_bridge.sidechain", "reaper_bridge.wavio",
             "reascripts.debleed_boot"]
BOOT = Path(__file__).parents[2] / "reascripts" / "debleed_boot.py"
#: What Python 2.7 cannot parse (Python 3 syntax), by AST node type.
PYTHON3_ONLY = (ast.JoinedStr, ast.AnnAssign, ast.Nonlocal, ast.AsyncFunctionDef, ast.Await,
                ast.NamedExpr, ast.YieldFrom)
#: The modules the bootstrap may import unguarded at its top, before the version check:
#: ones Python 2.7 has too.
PYTHON2_MODULES = {"os", "sys"}


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


def _python2_problems(tree: ast.Module) -> list[str]:
    """Where ``tree`` uses Python 3 syntax, or imports at its top, unguarded, a module
    Python 2.7 lacks: either stops the file before its version check can speak. A call
    may end with one ``*args`` and one ``**kwargs``; nothing else may be starred."""
    problems = [f"line {node.lineno}: {type(node).__name__}" for node in ast.walk(tree)
                if isinstance(node, PYTHON3_ONLY)]
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[-1], ast.Starred):
            allowed.add(id(node.args[-1]))
        if isinstance(node, ast.Call) and [k.arg for k in node.keywords].count(None) > 1:
            problems.append(f"line {node.lineno}: two ** in a call")
        if isinstance(node, (ast.FunctionDef, ast.Lambda)) and (
                node.args.kwonlyargs or node.args.posonlyargs or getattr(node, "returns", None)
                or any(arg.annotation for arg in node.args.args)):
            problems.append(f"line {node.lineno}: a Python 3 signature")
        if isinstance(node, ast.Raise) and node.cause is not None:
            problems.append(f"line {node.lineno}: raise ... from")
    problems += [f"line {node.lineno}: a second star" for node in ast.walk(tree)
                 if isinstance(node, ast.Starred) and id(node) not in allowed]
    problems += [f"line {node.lineno}: import {alias.name}" for node in tree.body
                 if isinstance(node, ast.Import) for alias in node.names
                 if alias.name not in PYTHON2_MODULES]
    return problems


def test_the_bootstrap_parses_as_python_2() -> None:
    """docs/reaper.md promises that an older Python in REAPER stops every action with a
    message saying so; under Python 2.7 the bootstrap was a SyntaxError (two stars in one
    ``format`` call) and its top imported ``configparser``, Python 3's name, so REAPER
    showed a traceback instead. Checked without a Python 2: the next test runs the real
    ones this machine has."""
    assert _python2_problems(ast.parse(BOOT.read_text(encoding="utf-8"))) == []


def _pythons() -> list[str]:
    """The interpreters this machine offers (system ``python2``/``python3.x``, pyenv's
    versions), one path each: REAPER may be pointed at any of them. pyenv's shims are
    left out (scripts that fail for a version not selected); its versions are listed."""
    names = ["python2", "python2.7", *(f"python3.{minor}" for minor in range(6, 15))]
    found = {shutil.which(name) for name in names}
    found |= set(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python")))
    return sorted({os.path.realpath(path) for path in found
                   if path and os.sep + "shims" + os.sep not in path})


@pytest.mark.parametrize("python", _pythons() or [None])
def test_the_bootstrap_speaks_to_every_python_found(tmp_path: Path, python: str | None) -> None:
    """An installed action under each interpreter found: an older one than the bridge
    needs shows the "needs Python 3.9" message (no traceback), a newer one runs Cancel."""
    if python is None:
        pytest.skip("no other Python interpreter on this machine")
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] >= (3, 9))"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    resource = tmp_path / "res"
    resource.mkdir()
    install(str(resource))
    done = run_installed_script(python, resource, "debleed_cancel.py", [])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MESSAGE BOX: No debleed job is running." if version == "True"
                                  else "MESSAGE BOX: debleed needs Python 3.9 or later")

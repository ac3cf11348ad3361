"""``python -m reaper_bridge.worker JOB.json``: the subprocess REAPER's actions start.

REAPER's embedded Python must not import numpy or torch (re-runs crash REAPER), so the
actions write the tasks to a JSON job file and start this worker in the user's debleed
environment. It writes its progress atomically to ``status`` (``{"fraction",
"message"}``), and at the end ``result`` (``{"ok": true, "silent": [sources]}``, the
sources found silent, whose items the action skips; or ``{"error": "one line"}``).
The action polls both with ``defer``. It cancels by creating the job's ``cancel`` file,
which the worker checks at every progress report, so the running task stops where its
own clean-up runs (no half-written file is left); a SIGTERM, the action's last resort,
is turned into the same orderly exit. A worker whose parent (REAPER) is gone stops the
same way at its next report and removes everything of the job itself, since no action
is left to add takes of its outputs or delete them: the outputs, the job's ``scratch``
folder (the action's renders and sidechain keys, hundreds of MB for long takes) and its
job ``folder``, log included (no message will name it). The parent is noticed by
``os.getppid()`` changing, which POSIX does when it dies; on Windows it never changes, so
there an orphaned worker runs to the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

from denoiser.errors import DebleedError
from denoiser.outfiles import exit_cleanly_on_signals, write_text_atomic

from .bridge import run_tasks
from .items import BridgeError
from .jobs import Task, discard

ORPHANED = "cancelled: the process that started the worker ended"


def orphaned(parent: int) -> bool:
    """Whether the process that started the worker is gone (POSIX re-parents an orphan,
    so its ``getppid`` changes; on Windows it does not, and this stays false)."""
    return os.getppid() != parent


def cancelled(cancel: str, parent: int) -> bool:
    """The worker's stop check: the job's ``cancel`` file exists, or its parent is gone."""
    return orphaned(parent) or (bool(cancel) and os.path.exists(cancel))


def run_job(job_path: str) -> int:
    parent = os.getppid()
    job: dict[str, Any] = json.loads(Path(job_path).read_text(encoding="utf-8"))
    status, result, cancel = job["status"], job["result"], job.get("cancel", "")
    tasks: list[Task] = []

    def progress(fraction: float, message: str) -> None:
        if cancelled(cancel, parent):
            raise BridgeError(ORPHANED if orphaned(parent) else "cancelled")
        with contextlib.suppress(OSError):  # on Windows REAPER may hold the file open: skip
            write_text_atomic(status, json.dumps({"fraction": round(fraction, 4),
                                                  "message": message}))

    try:
        tasks = [Task(**task) for task in job["tasks"]]
        threads = int(job.get("threads", 0))
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        from .processing import TaskExecutor

        executor = TaskExecutor(job.get("model") or None, job.get("device", "auto"), job.get("gate"),
                                job.get("precision", "float32"), job.get("input_max_hz", 0.0),
                                job.get("hiss_cut_hz"))
        silent = run_tasks(tasks, executor, progress)
        if orphaned(parent):  # it ended after the last report
            raise BridgeError(ORPHANED)
    except DebleedError as exc:
        error = str(exc).splitlines()[0]
    except Exception as exc:  # a bug: the traceback goes to the log, one line to the user
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    else:
        write_text_atomic(result, json.dumps({"ok": True, "silent": sorted(silent)}))
        return 0
    write_text_atomic(result, json.dumps({"error": error}))
    if orphaned(parent):  # no action is left to add takes of these files, or delete them
        _remove_job(job, tasks)
    return 1


def _remove_job(job: dict[str, Any], tasks: list[Task]) -> None:
    """Remove everything the orphaned ``job`` made: its tasks' outputs, its ``scratch``
    folder and its job ``folder`` (the result and log in it)."""
    discard(tasks)
    for folder in (job.get("scratch"), job.get("folder")):
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m reaper_bridge.worker JOB.json", file=sys.stderr)
        return 2
    exit_cleanly_on_signals()
    return run_job(args[0])


if __name__ == "__main__":
    sys.exit(main())

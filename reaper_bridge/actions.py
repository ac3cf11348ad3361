"""The actions as they run inside REAPER: plan, start the worker, poll with ``defer``.

REAPER's UI thread must never wait for the denoiser, and its embedded Python must not
import numpy or torch, so the tasks go to ``python -m reaper_bridge.worker`` in the
user's debleed environment. A deferred callback polls the worker five times a second,
mirrors its progress into ExtState (section ``debleed``: ``state``, ``progress``,
``message``) and the console, honours ``cancel`` = ``1`` (set by the cancel action), and
on success adds the takes in one undo block (skipping the items whose source the worker
found silent). Standard library only.

Cancelling asks the worker to stop (a ``cancel`` file in the job folder, which it checks
between blocks) so it removes its half-written file itself; only a worker that does not
stop within ``CANCEL_GRACE_SECONDS`` is terminated.

REAPER stops calling a script's deferred code when the user terminates the script
(*Actions > Running scripts*, or *Terminate instances* when the action is run again while
it polls); then no tick would ever end the job. So each job gives ``RPR_atexit`` code
(``exited``), which REAPER runs when the script ends, normally after the job's last tick,
and after the user's termination when it is still registered: that kills the worker and
ends the job as a cancel does. A job whose ticks stopped without that code running is
ended by the next action (``_reclaim_stale``).

REAPER adds a "ReaScript: Run" undo point after every script that neither opens an undo
block nor calls ``defer``, so every action ends with a no-op ``defer`` (REAPER's documented
way out): switching takes, cancelling or stopping on an error never buries the user's last
undo point; what changes the project has its own undo block.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from denoiser.errors import DebleedError, error_text

from . import bridge, export
from .items import SECTION, compare_next
from .jobs import tasks_to_json
from .rpr import at_exit, defer, reaper_api
from .settings import BridgeSettings, load_settings, settings_path

TITLE = "debleed"
#: Jobs in flight, by id; the deferred code string finds them here. Module state lives
#: as long as REAPER's interpreter, so a second action sees a running job.
JOBS: dict[int, "WorkerJob"] = {}
_NEXT_ID = [0]
POLL_SECONDS = 0.2
CANCEL_GRACE_SECONDS = 10.0
#: After ``terminate``, how long a worker may take to exit before it is killed: one stuck
#: in native code may ignore SIGTERM, and the UI thread must never wait on it.
KILL_GRACE_SECONDS = 2.0
#: A job whose last tick is older than this was dropped by REAPER's defer loop, which runs
#: each script's deferred code about 30 times a second: the next action ends it.
STALE_SECONDS = 5.0
#: How long ending an abandoned job waits for its killed worker to be gone, before it
#: removes the files that worker wrote (a kill cannot be ignored; this is the OS's time).
REAP_SECONDS = 1.0
#: The deferred code that only keeps REAPER from adding its automatic undo point.
NO_OP = "pass"
Result = TypeVar("Result")
#: What an action does with the worker's result (``{}`` when no worker ran): the message.
Finish = Callable[[dict[str, Any]], str]


class WorkerStartError(DebleedError):
    """The worker's Python (from the settings INI) cannot be started."""


def _no_undo_point(action: Callable[..., Result]) -> Callable[..., Result]:
    """End the action, however it ends, with a no-op ``defer`` (see the module docstring)."""

    @functools.wraps(action)
    def run(*args: Any, **kwargs: Any) -> Result:
        try:
            return action(*args, **kwargs)
        finally:
            defer(NO_OP)

    return run


def _ext(api: Any, key: str, value: str) -> None:
    api.SetExtState(SECTION, key, value, False)


class WorkerJob:
    """A worker subprocess, its job folder, and what to do when it ends. ``scratch`` is the
    folder the action made for the job (renders and sidechain keys, an export's staging),
    which the worker removes with the job folder when REAPER dies under it (``worker``)."""

    def __init__(self, api: Any, settings: BridgeSettings, tasks: list[dict[str, Any]],
                 on_success: Finish, on_failure: Callable[[], None], threads: int = 0,
                 scratch: str = ""):
        self.api = api
        self.on_success = on_success
        self.on_failure = on_failure
        self.folder = tempfile.mkdtemp(prefix="debleed-job-")
        self.status = os.path.join(self.folder, "status.json")
        self.result = os.path.join(self.folder, "result.json")
        self.log = os.path.join(self.folder, "worker.log")
        self.cancel_file = os.path.join(self.folder, "cancel")
        self.cancel_deadline: float | None = None
        self.kill_deadline: float | None = None
        job = {"tasks": tasks, "status": self.status, "result": self.result,
               "cancel": self.cancel_file, "folder": self.folder, "scratch": scratch,
               "model": settings.model, "device": settings.device,
               "precision": settings.precision, "input_max_hz": settings.input_max_hz,
               "hiss_cut_hz": settings.hiss_cut_hz,
               "gate": settings.gate,
               "threads": threads}
        self.job_file = os.path.join(self.folder, "job.json")
        with open(self.job_file, "w", encoding="utf-8") as handle:
            json.dump(job, handle)
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            with open(self.log, "wb") as log:
                self.process = subprocess.Popen(
                    [settings.python, "-m", "reaper_bridge.worker", self.job_file],
                    stdout=log, stderr=subprocess.STDOUT, env=settings.worker_env(),
                    creationflags=flags)
        except OSError as exc:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise WorkerStartError(f"cannot start the debleed worker with python = "
                                   f"{settings.python!r} ({exc}); run 'debleed reaper install' "
                                   "from the debleed environment") from None
        self.last_decile = -1
        self.last_poll = 0.0
        self.last_tick = time.monotonic()
        _NEXT_ID[0] += 1
        self.id = _NEXT_ID[0]
        JOBS[self.id] = self
        _ext(api, "cancel", "")
        _ext(api, "state", "running")
        at_exit(f"import sys; sys.modules[{__name__!r}].exited({self.id})")
        self.defer()

    def defer(self) -> None:
        defer(f"import sys; sys.modules[{__name__!r}].tick({self.id})")

    def _read(self, path: str) -> dict[str, Any]:
        try:
            with open(path, encoding="utf-8") as handle:
                return dict(json.load(handle))
        except (OSError, ValueError):
            return {}

    def tick(self) -> None:
        now = self.last_tick = time.monotonic()
        if now - self.last_poll < POLL_SECONDS and self.process.poll() is None:
            self.defer()  # REAPER defers ~30 times a second; reading files that often is waste
            return
        self.last_poll = now
        status = self._read(self.status)
        fraction = float(status.get("fraction", 0.0))
        _ext(self.api, "progress", f"{fraction:.3f}")
        _ext(self.api, "message", str(status.get("message", "")))
        if int(fraction * 10) > self.last_decile:
            self.last_decile = int(fraction * 10)
            self.api.ShowConsoleMsg(f"debleed: {100 * fraction:.0f}% {status.get('message', '')}\n")
        if self.cancel_deadline is None and self.api.GetExtState(SECTION, "cancel") == "1":
            with open(self.cancel_file, "w", encoding="utf-8"):
                pass
            self.cancel_deadline = now + CANCEL_GRACE_SECONDS
        if self.cancel_deadline is not None:
            if self.process.poll() is None:
                if now >= self.cancel_deadline:
                    self._stop(now)
                self.defer()
                return
            self.end(None, "debleed: cancelled; nothing was changed.")
            return
        if self.process.poll() is None:
            self.defer()
            return
        result = self._read(self.result)
        if self.process.returncode == 0 and result.get("ok"):
            self._succeed(result)
        else:
            self.end(None, f"debleed failed: {self._failure(result)}")

    def _stop(self, now: float) -> None:
        """Stop a worker past its cancel grace without ever waiting on it (the UI thread
        runs this): terminate first, kill once ``KILL_GRACE_SECONDS`` have passed; a later
        tick ends the job when the process has exited."""
        if self.kill_deadline is None:
            self.process.terminate()
            self.kill_deadline = now + KILL_GRACE_SECONDS
        elif now >= self.kill_deadline:
            self.process.kill()

    def abandon(self, why: str, box: bool = True) -> None:
        """End a job no tick will end (``exited``, ``_reclaim_stale``), as a cancel does:
        nobody is left to wait for an orderly stop, so the worker is killed, and once it is
        gone its outputs (the temporary file it was writing included) are discarded.
        ``box``: say so in a message box, not only on the console."""
        self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(REAP_SECONDS)
        self.end(None, f"debleed: {why}; the job was stopped and nothing was changed.", box)

    def _failure(self, result: dict[str, Any]) -> str:
        """The worker's error, naming its log (which ``end`` then keeps) whenever the log
        holds something: a traceback there is the only trace of a bug."""
        error = result.get("error")
        if not error:
            return f"the worker stopped (exit {self.process.returncode}); log: {self.log}"
        if self.process.returncode != 0 and _has_content(self.log):
            return f"{error}; log: {self.log}"
        return str(error)

    def _succeed(self, result: dict[str, Any]) -> None:
        """Run ``on_success`` on the worker's ``result``; whatever it raises ends the job (a
        job left registered would refuse every later action until REAPER restarts)."""
        try:
            message = self.on_success(result)
        except DebleedError as exc:
            self.end(None, f"debleed: {exc}")
        except Exception as exc:  # a bug or the OS: the traceback goes to the log
            with open(self.log, "a", encoding="utf-8") as handle:
                traceback.print_exc(file=handle)
            self.end(None, f"debleed failed: {type(exc).__name__}: {exc}; log: {self.log}")
        else:
            self.end(message, None)

    def end(self, message: str | None, error: str | None, box: bool = True) -> None:
        JOBS.pop(self.id, None)
        _ext(self.api, "state", "idle")
        _ext(self.api, "cancel", "")
        if error is not None:
            self.on_failure()
        if error is not None and box:
            self.api.ShowMessageBox(error, TITLE, 0)
        else:
            self.api.ShowConsoleMsg((error or message or "") + "\n")
        keep_log = error is not None and "log:" in error
        if not keep_log:
            shutil.rmtree(self.folder, ignore_errors=True)


def _has_content(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def tick(job_id: int) -> None:
    """Entry point of the deferred code string."""
    job = JOBS.get(job_id)
    if job is not None:
        job.tick()


def exited(job_id: int) -> None:
    """Entry point of the job's ``RPR_atexit`` code, which REAPER runs when the script that
    started the job ends: after the job's last tick (it is gone then: nothing to do), or
    when the user terminated the script, which drops its pending ticks."""
    job = JOBS.get(job_id)
    if job is not None:  # on the console: REAPER may be quitting, with no one to click OK
        job.abandon("its script was terminated in REAPER", box=False)


def _reclaim_stale() -> bool:
    """End the jobs whose ticks stopped ``STALE_SECONDS`` ago without their atexit code
    running; whether there was one. Left registered, such a job refused every later
    action, and Cancel, which only asks a tick to stop it, did nothing."""
    now = time.monotonic()
    stale = [job for job in JOBS.values() if now - job.last_tick > STALE_SECONDS]
    for job in stale:
        job.abandon("its script stopped running in REAPER")
    return bool(stale)


def _start(api: Any, settings: BridgeSettings, tasks: list[dict[str, Any]],
           on_success: Finish, on_failure: Callable[[], None],
           threads: int, scratch: str) -> WorkerJob | None:
    """Start a worker, or show why it cannot start (and undo the preparation)."""
    try:
        if not settings.python:
            raise WorkerStartError("no worker python configured: run 'debleed reaper install' "
                                   "from the debleed environment")
        return WorkerJob(api, settings, tasks, on_success, on_failure, threads, scratch)
    except (WorkerStartError, OSError) as exc:  # on_failure also releases an export's lock
        on_failure()
        api.ShowMessageBox(error_text(exc), TITLE, 0)
        return None


def _settings(api: Any) -> BridgeSettings | None:
    """The INI's settings, or ``None`` after showing why they cannot be read."""
    try:
        return load_settings(settings_path(str(api.GetResourcePath())))
    except DebleedError as exc:
        api.ShowMessageBox(str(exc), TITLE, 0)
        return None


def _show_outcome(api: Any, success: Finish) -> None:
    """Finish an action that needs no worker (every result cached)."""
    try:
        api.ShowConsoleMsg(success({}) + "\n")
    except (DebleedError, OSError) as exc:
        api.ShowMessageBox(f"debleed: {error_text(exc)}", TITLE, 0)


def _busy(api: Any) -> bool:
    """Whether a job runs (and the user was told so); a stale one is ended first."""
    _reclaim_stale()
    if JOBS:
        api.ShowMessageBox("A debleed job is already running; run 'debleed: Cancel' to stop it.", TITLE, 0)
        return True
    return False


@_no_undo_point
def denoise_selected(api: Any, with_gate: bool, threads: int = 0) -> WorkerJob | None:
    """Start the denoise action; returns the running job (``None`` if all came from cache)."""
    settings = None if _busy(api) else _settings(api)
    if settings is None:
        return None
    variants = settings.variants(with_gate)
    work_dir = tempfile.mkdtemp(prefix="debleed-render-")
    try:
        project = bridge.current_project(api)
        plan, cache = bridge.prepare(api, variants, settings.cache_key(), work_dir,
                                     sidechain_track=settings.sidechain_track)
    except BaseException as exc:  # a bug or Ctrl+C too: the folder goes before it propagates
        shutil.rmtree(work_dir, ignore_errors=True)
        if not isinstance(exc, (DebleedError, OSError)):  # OSError: a media folder that is a file...
            raise
        api.ShowMessageBox(error_text(exc), TITLE, 0)
        return None

    def success(result: dict[str, Any]) -> str:
        try:
            bridge.require_project(api, project)
            return bridge.apply(api, plan, cache, silent=result.get("silent", ())).message()
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    def failure() -> None:
        bridge.discard(plan.tasks)
        shutil.rmtree(work_dir, ignore_errors=True)

    if not plan.tasks:
        _show_outcome(api, success)
        return None
    api.ShowConsoleMsg(f"debleed: processing {len(plan.tasks)} file(s) for "
                       f"{len(plan.selection.takes)} item(s)...\n")
    return _start(api, settings, tasks_to_json(plan.tasks), success, failure, threads, work_dir)


@_no_undo_point
def export_training(api: Any, threads: int = 0) -> WorkerJob | None:
    """Export the [clean]/[bleed]-tagged items for ``debleed dataset session``."""
    settings = None if _busy(api) else _settings(api)
    if settings is None:
        return None
    plan = None
    try:
        out_dir = export.out_dir_for(api, settings.export_dir)
        plan = export.plan_export(api, out_dir)
        export.render_fallbacks(api, plan)
    except BaseException as exc:
        if plan is not None:
            export.abandon(plan)
        if not isinstance(exc, (DebleedError, OSError)):
            raise
        api.ShowMessageBox(error_text(exc), TITLE, 0)
        return None

    def success(result: dict[str, Any]) -> str:
        export.finish(plan)
        return plan.message()

    if not plan.tasks:
        _show_outcome(api, success)
        return None
    return _start(api, settings, tasks_to_json(plan.tasks), success,
                  lambda: export.abandon(plan), threads, plan.staging)


@_no_undo_point
def compare(api: Any) -> None:
    """Switch takes without an undo point: an A/B must not bury the denoise run's. Items
    that kept their take go to the console with what plays now, as the denoise action's
    outcome does (a message box on every press would stop the A/B); a press that switched
    every item writes nothing, since writing opens or raises the console over the arrange
    view on every press of a listen. An error, nothing switched, gets a message box."""
    try:
        comparison = compare_next(api)
    except DebleedError as exc:
        api.ShowMessageBox(str(exc), TITLE, 0)
    else:
        if comparison.stayed:
            api.ShowConsoleMsg(f"debleed: {comparison.message()}\n")


@_no_undo_point
def cancel(api: Any) -> None:
    """Ask the running job's tick to stop it; a job whose ticks stopped is ended here."""
    if _reclaim_stale():
        return
    if JOBS:
        _ext(api, "cancel", "1")
    else:
        api.ShowMessageBox("No debleed job is running.", TITLE, 0)


ACTIONS: dict[str, Callable[[Any], object]] = {
    "denoise": lambda api: denoise_selected(api, with_gate=False),
    "denoise_gate": lambda api: denoise_selected(api, with_gate=True),
    "compare": compare,
    "export": export_training,
    "cancel": cancel,
}


def main(action: str) -> None:
    """What each script in ``reascripts/`` calls."""
    ACTIONS[action](reaper_api())

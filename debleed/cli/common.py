"""Shared CLI plumbing: user errors become one line on stderr and exit code 1, warnings one
line each, and long jobs get a progress bar on a terminal and plain lines otherwise (SPEC 1)."""

from __future__ import annotations

import functools
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from denoiser.errors import DebleedError, ParameterError, error_text

F = TypeVar("F", bound=Callable[..., Any])


class FiniteRange(click.FloatRange):
    """``click.FloatRange`` that also refuses NaN and infinities: NaN compares false with
    both bounds, so a plain ``FloatRange`` lets ``nan`` through."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses the empty string, the type of every file or folder option
    and argument. ``Path("")`` is ``Path(".")``: ``-o ''`` replaced the current folder
    ("Device or resource busy", after the work) and ``reaper install --resource-path ''``
    installed into it. Without ``path_type`` the value stays a string ("default" models)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, bytes)) and not value:
            self.fail("an empty path; give a file or folder name.", param, ctx)
        return super().convert(value, param, ctx)


#: The engine's floor test, for every command that runs the model (None: the engine's default).
HISS_CUT_OPTION = click.option(
    "--hiss-cut-hz", type=float, default=None,
    help="Read a 48-kHz track whose band above this holds hiss or dither (a recording floor) "
         "only below it, other tracks whole. Default 22050 (the engine's); 0: never.")


def one_line(exc: Exception) -> str:
    """The first line of what went wrong, naming the file when the file system refused."""
    return error_text(exc).splitlines()[0]


def user_errors(func: F) -> F:
    """Turn ``DebleedError`` and the file system's refusals (a missing file, a folder that
    is a file, a full or read-only disk: ``OSError``) into ``Error: ...`` and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DebleedError, OSError) as exc:
            click.echo(f"Error: {one_line(exc)}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def echo(line: str, err: bool = False) -> None:
    """Print ``line`` to ``sys.stdout`` (``sys.stderr``) as it is now: while a progress bar
    is open on a terminal that is the bar's redirection, which prints the line whole above
    the bar. ``click.echo``'s own stream lookup writes past it, onto the bar's line."""
    click.echo(line, file=sys.stderr if err else sys.stdout)


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Show each warning as one ``Warning: ...`` line on stderr when it is raised, without
    Python's source-line echo. For warnings that must be seen before a long job ends."""
    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        echo(f"Warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextmanager
def warnings_after() -> Iterator[None]:
    """Collect the warnings raised inside, and show each distinct one as a ``Warning: ...``
    line after it: for jobs that warn once per file or clip and end soon, so the lines
    neither break the progress bar nor repeat."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(str(w.message) for w in caught):
        click.echo(f"Warning: {message}", err=True)


ProgressCallback = Callable[[float, str], None]
PLAIN_INTERVAL_S = 30.0  # without a terminal, a line per 10% or at least this often


@contextmanager
def progress(description: str, total: float = 1.0,
             shown: bool = True) -> Iterator[ProgressCallback]:
    """Yield ``update(done, note)``; rich bar on a TTY, plain lines otherwise, nothing when
    not ``shown``. Why not shown: under torchrun every rank shares the terminal, and a bar
    opened by a rank that never updates it (all but the first) redrew its 0 % over the
    first rank's."""
    if not shown:
        yield lambda done, note="": None
    elif sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        # On stderr, as the plain lines are: stdout carries only the output paths, which
        # scripts read (``debleed gate *.wav > done.txt``), so a piped stdout is left alone;
        # on a terminal its lines are printed above the bar, as stderr's are (``echo``),
        # soft-wrapped: rich broke a long path at a space, and a copied path held a newline.
        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                      TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                      console=Console(stderr=True, soft_wrap=True), transient=False,
                      redirect_stdout=sys.stdout.isatty()) as bar:
            task = bar.add_task(description, total=total, note="")

            def update(done: float, note: str = "") -> None:
                bar.update(task, completed=done, note=note)

            yield update
    else:
        last = {"decile": -1, "time": time.monotonic()}

        def update(done: float, note: str = "") -> None:
            decile = int(10 * done / total) if total else 10
            now = time.monotonic()
            if decile > last["decile"] or now - last["time"] >= PLAIN_INTERVAL_S:
                last.update(decile=decile, time=now)
                percent = 100.0 * done / total if total else 100.0
                click.echo(f"{description}: {percent:.0f}% {note}".rstrip(), err=True)

        yield update


def json_object(option: str, text: str | None) -> dict | None:
    """A JSON object option (None when not given); anything else is a user error."""
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except ValueError as exc:  # JSONDecodeError, or NaN/Infinity from refuse_constant
        raise ParameterError(f"{option}: not JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(value, dict):
        raise ParameterError(f"{option}: expected a JSON object, got {text!r}")
    return value


def refuse_constant(name: str) -> float:
    """``json.loads`` takes NaN and Infinity, which standard JSON has not; as options they
    slip past range checks (NaN compares false with everything) and fail deep in training."""
    raise ValueError(f"{name} is not a number JSON allows; give a finite number")

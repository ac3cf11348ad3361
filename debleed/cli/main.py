"""Root of the ``debleed`` command. Subcommands load lazily so ``debleed --help`` and the
REAPER doctor start fast and do not import torch unless a command needs it."""

from __future__ import annotations

import functools
import importlib
import signal
import sys
from typing import Any

import click

from denoiser import __version__
from denoiser.outfiles import exit_cleanly_on_signals

from .common import warnings_as_lines

SUBCOMMANDS: dict[str, str] = {
    "demo": "debleed.cli.demo:demo",
    "denoise": "debleed.cli.denoise:denoise",
    "gate": "debleed.cli.gate:gate",
    "dataset": "debleed.cli.dataset:dataset",
    "train": "debleed.cli.train:train",
    "ensemble": "debleed.cli.ensemble:ensemble",
    "soup": "debleed.cli.soup:soup",
    "evaluate": "debleed.cli.evaluate:evaluate",
    "bench": "debleed.cli.bench:bench",
    "select": "debleed.cli.select:select",
    "reaper": "debleed.cli.reaper:reaper",
}


#: The exit status of a run stopped by Ctrl-C: 128 + SIGINT, as a shell reports a process
#: the signal ended, so a script tells it from bad input's 1 (click's own Abort exits 1).
INTERRUPTED = 128 + signal.SIGINT


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented pattern)."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C, once the command's own clean-up has run (the
        temporary output removed), prints click's ``Aborted!`` and exits ``INTERRUPTED``."""
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, click.Abort) as exc:
            # the blank line closes the terminal's ^C echo, as click's does
            click.echo("\nAborted!" if isinstance(exc, KeyboardInterrupt) else "Aborted!",
                       err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
@click.version_option(__version__, prog_name="debleed")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Remove hi-hat, cymbal, kick and tom bleed from snare close-mic tracks."""
    ctx.with_resource(warnings_as_lines())  # every command's warnings: one line each
    # A killed run, or one whose terminal closed, removes its temporary output.
    for signum, handler in exit_cleanly_on_signals().items():
        if handler is not None:  # None: a handler set outside Python, which cannot be restored
            ctx.call_on_close(functools.partial(signal.signal, signum, handler))
    for stream in (sys.stdout, sys.stderr):
        # A Windows console piped to a file is cp1252: "ΔSI-SDR" must not end a finished
        # run with UnicodeEncodeError.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


if __name__ == "__main__":
    cli()

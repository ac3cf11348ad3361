"""``debleed reaper ...``: install the REAPER actions, check the setup, and run the
actions on a running REAPER from outside through reapy's distant API."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from debleed.cli.common import FiniteRange, NonEmptyPath, progress, user_errors

TIMEOUT = click.option("--timeout", type=FiniteRange(min=0.1, max=3600.0), default=5.0,
                       show_default=True, help="Seconds to wait for REAPER to answer.")


@click.group()
def reaper() -> None:
    """Use debleed from REAPER (see docs/reaper.md)."""


def _resource(path: Path | None) -> str:
    from reaper_bridge.settings import default_resource_path

    return str(path) if path else default_resource_path()


@reaper.command()
@click.option("--resource-path", type=NonEmptyPath(path_type=Path), default=None,
              help="REAPER's resource folder (default: the OS default).")
@click.option("--connect/--no-connect", default=True, show_default=True,
              help="Register through a running REAPER (reapy) before falling back to reaper-kb.ini.")
@TIMEOUT
@user_errors
def install(resource_path: Path | None, connect: bool, timeout: float) -> None:
    """Copy the actions into REAPER's Scripts/debleed folder and register them."""
    from reaper_bridge.install import install as run_install
    from reaper_bridge.rpr import ReaperConnectionError, distant_api

    api = None
    if connect:
        try:
            api = distant_api(timeout)
        except ReaperConnectionError as exc:
            click.echo(f"REAPER not reachable ({exc}); registering through reaper-kb.ini", err=True)
    if api is not None and resource_path is None:
        resource_path = Path(str(api.GetResourcePath()))
    report = run_install(_resource(resource_path), api=api)
    for line in report.lines():
        click.echo(line)


@reaper.command()
@click.option("--resource-path", type=NonEmptyPath(path_type=Path), default=None)
@TIMEOUT
@user_errors
def doctor(resource_path: Path | None, timeout: float) -> None:
    """Check REAPER's folder, the actions, reapy, the REAPER connection, the model, the GPU."""
    from reaper_bridge.doctor import run_checks

    checks = run_checks(_resource(resource_path), timeout)
    for check in checks:
        click.echo(check.line())
    sys.exit(1 if any(c.required and not c.ok for c in checks) else 0)


def _connect(timeout: float):
    from reaper_bridge.rpr import distant_api
    from reaper_bridge.settings import load_settings, settings_path

    api = distant_api(timeout)
    return api, load_settings(settings_path(str(api.GetResourcePath())))


@reaper.command()
@click.option("--gate/--no-gate", default=False, help="Pre-gate before the model ([debleed+gate]).")
@click.option("--compare-variants/--no-compare-variants", default=None,
              help="Also add the other two variants' takes ([gate], [debleed] or "
                   "[debleed+gate]) for A/B (default: the INI's compare_variants).")
@click.option("--model", type=NonEmptyPath(exists=True, dir_okay=False), default=None,
              help="Checkpoint (default: the INI's, else the shipped model).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--precision", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
              help="Mixed precision for the network (default: the INI's, else float32).")
@click.option("--input-max-hz", type=float, default=None,
              help="Let the model read only the band below this frequency for every track, "
                   "floor found or not, e.g. 22050 for 48-kHz tracks whose hiss the floor test "
                   "misses (default: the INI's input_max_hz, else 0, every bin).")
@click.option("--hiss-cut-hz", type=float, default=None,
              help="On a track whose band above this holds hiss or dither, let the model "
                   "read only below it (default: the INI's hiss_cut_hz, else 22050; 0: never).")
@click.option("--sidechain-track", default=None,
              help="Key the pre-gate from this track, e.g. a trigger (default: the INI's "
                   "sidechain_track, else the snare itself).")
@TIMEOUT
@user_errors
def denoise(gate: bool, compare_variants: bool | None, model: str | None, device: str | None,
            precision: str | None, input_max_hz: float | None, hiss_cut_hz: float | None,
            sidechain_track: str | None, timeout: float) -> None:
    """Denoise the selected items of the running REAPER; add aligned takes."""
    from reaper_bridge.bridge import denoise as run_denoise
    from reaper_bridge.processing import TaskExecutor

    api, settings = _connect(timeout)
    settings.model = model or settings.model
    settings.device = device or settings.device
    settings.precision = precision or settings.precision
    if input_max_hz is not None:
        settings.input_max_hz = input_max_hz
    if hiss_cut_hz is not None:
        settings.hiss_cut_hz = hiss_cut_hz
    if compare_variants is not None:
        settings.compare_variants = compare_variants
    if sidechain_track is not None:
        settings.sidechain_track = sidechain_track.strip()
    executor = TaskExecutor(settings.model or None, settings.device, settings.gate,
                            settings.precision, settings.input_max_hz, settings.hiss_cut_hz)
    # loaded now, its settings validated: a precision, model or cut that cannot run is refused
    # before any item is touched
    _ = executor.denoiser
    with progress("debleed") as update:
        outcome = run_denoise(api, settings.variants(gate), executor, settings.cache_key(),
                              progress=lambda done, note: update(done, note),
                              sidechain_track=settings.sidechain_track)
    click.echo(outcome.message())


@reaper.command()
@TIMEOUT
@user_errors
def compare(timeout: float) -> None:
    """Switch the selected items to their next take: original, [gate], [debleed], [debleed+gate]."""
    from reaper_bridge.items import compare_next

    api, _ = _connect(timeout)
    click.echo(compare_next(api).message())


@reaper.command()
@click.option("--out", "out_dir", type=NonEmptyPath(file_okay=False, path_type=Path), default=None,
              help="Export folder (default: the INI's export_dir, else <media>/debleed-training).")
@TIMEOUT
@user_errors
def export(out_dir: Path | None, timeout: float) -> None:
    """Export [clean]/[bleed]-tagged items as a folder for 'debleed dataset session'."""
    from reaper_bridge.export import export_session, out_dir_for
    from reaper_bridge.processing import TaskExecutor

    api, settings = _connect(timeout)
    target = out_dir_for(api, str(out_dir or settings.export_dir))
    with progress("export") as update:
        plan = export_session(api, target, TaskExecutor(), lambda done, note: update(done, note))
    click.echo(plan.message())

"""``debleed dataset``: build training data (synthetic from drum kits, or from session stems)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import FiniteRange, NonEmptyPath, json_object, progress, user_errors, warnings_after

if TYPE_CHECKING:  # imported when the command runs: the CLI starts without numpy
    from training.session import CleanAudio


@click.group()
def dataset() -> None:
    """Build snare-mic training datasets (clips + manifest.json)."""


@dataset.command()
@click.option("--kit", "kits", multiple=True, required=True,
              type=NonEmptyPath(exists=True, path_type=Path),
              help="Hydrogen kit folder (drumkit.xml) or folder of one-shots; repeatable.")
@click.option("--out", required=True, type=NonEmptyPath(path_type=Path),
              help="New (or empty) dataset folder.")
@click.option("--hours", required=True, type=FiniteRange(min=0.0, min_open=True),
              help="Total audio to render.")
@click.option("--seed", required=True, type=click.IntRange(min=0), help="Same seed, same bytes.")
@click.option("--clip-seconds", default=None, type=float, help="Length of each clip (default 10).")
@click.option("--valid-fraction", default=0.2, show_default=True, type=float,
              help="Share of clips in the validation split.")
@click.option("--split", type=click.Choice(["test"]), default=None,
              help="Mark every clip 'test' (required for the public test kit).")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes.")
@click.option("--midi", "midi", multiple=True, type=NonEmptyPath(exists=True, path_type=Path),
              help="General MIDI drum file or folder: use real performances as grooves.")
@click.option("--wide-pitch-probability", type=FiniteRange(0.0, 1.0), default=None,
              help="Share of kit pieces tuned up to +-6 semitones instead of +-3 "
                   "(default 0.15): more snares far from the kit's own tuning.")
@click.option("--procedural-snare-probability", type=FiniteRange(0.0, 1.0), default=None,
              help="Share of clips whose snare and toms are random membrane-model drums "
                   "(snare drawn at 140-480 Hz, then re-tuned like every piece; body decay "
                   "40-350 ms) instead of the kit's (default 0).")
@click.option("--floor-probability", type=FiniteRange(0.0, 1.0), default=None,
              help="Share of clips given a preamp's white noise floor, -110 to -66 dBFS "
                   "(default 0): real tracks are never digitally silent between hits.")
@click.option("--quantise-probability", type=FiniteRange(0.0, 1.0), default=None,
              help="Share of clips exported to 16 bits with dither (default 0).")
@click.option("--as-recorded", is_flag=True,
              help="Each kit as sampled: no snare EQ, no snare/bleed kit pairing "
                   "(for evaluation sets).")
@click.option("--synth", "synth_options", default=None,
              help='JSON object of synthesis options, as train --synth takes them, e.g. '
                   '\'{"groove": {"kick_ghost_probability": 0.1}}\'.')
@user_errors
def synth(kits: tuple[Path, ...], out: Path, hours: float, seed: int, clip_seconds: float | None,
          valid_fraction: float, split: str | None, jobs: int, midi: tuple[Path, ...],
          wide_pitch_probability: float | None, procedural_snare_probability: float | None,
          floor_probability: float | None, quantise_probability: float | None,
          as_recorded: bool, synth_options: str | None) -> None:
    """Render synthetic snare close-mic clips (noisy = clean snare + bleed) from kits."""
    from training.config import dataset_synth_config
    from training.synth import clip_count, render_dataset

    flags = {"clip_seconds": clip_seconds, "wide_pitch_probability": wide_pitch_probability,
             "procedural_snare_probability": procedural_snare_probability,
             "floor_probability": floor_probability, "quantise_probability": quantise_probability}
    given = {name: value for name, value in flags.items() if value is not None}
    config = dataset_synth_config(json_object("--synth", synth_options) or {}, given,
                                  as_recorded=as_recorded, midi=bool(midi))
    total = clip_count(hours, config.clip_seconds)
    with warnings_after(), progress("Rendering clips", total=total) as update:
        root = render_dataset(kits, out, hours, seed, config, valid_fraction=valid_fraction,
                              split=split, jobs=jobs, progress=update, midi=midi)
    click.echo(f"{root}: {total} clips ({total * config.clip_seconds / 3600:.2f} h)")


@dataset.command()
@click.option("--clean", "clean_dir", required=True,
              type=NonEmptyPath(exists=True, file_okay=False, path_type=Path),
              help="Folder of clean snare takes.")
@click.option("--bleed", "bleed_dir", required=True,
              type=NonEmptyPath(exists=True, file_okay=False, path_type=Path),
              help="Folder of bleed-only takes (snare mic with the snare silent).")
@click.option("--out", required=True, type=NonEmptyPath(path_type=Path))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--clip-seconds", default=None, type=float,
              help="Length of each clip in seconds (default 10).")
@click.option("--clips-per-take", default=None, type=click.IntRange(min=1),
              help="Clips per clean take (default: as many as its length allows).")
@click.option("--valid-fraction", default=0.2, show_default=True, type=float)
@user_errors
def session(clean_dir: Path, bleed_dir: Path, out: Path, seed: int, clip_seconds: float | None,
            clips_per_take: int | None, valid_fraction: float) -> None:
    """Pair clean snare takes with bleed-only takes from a real session."""
    from training.session import SessionConfig, build_session_dataset, plan_session

    # No --clip-seconds: SessionConfig's default (not a copy of it here, which could drift).
    given = {} if clip_seconds is None else {"clip_seconds": clip_seconds}
    config = SessionConfig(clips_per_take=clips_per_take, **given)
    plan = plan_session(clean_dir, bleed_dir, config)
    with warnings_after(), progress("Pairing takes", total=max(1, len(plan.jobs))) as update:
        root = build_session_dataset(plan, out, seed, config, valid_fraction=valid_fraction,
                                     progress=update)
    click.echo(f"{root}: {len(plan.jobs)} clips ({plan.audio.used_seconds / 3600:.2f} h)")
    click.echo(clean_audio_line(plan.audio), err=True)
    if not plan.split_by_take:
        click.echo("Warning: one clean take gives clips, so its clips are split train/valid "
                   "one by one and validation is not held-out audio; export more takes to "
                   "validate on a take training never hears", err=True)


def clean_audio_line(audio: CleanAudio) -> str:
    """How much clean audio the clips hold, out of how much the takes have: takes are cut
    into whole clips only, so a take shorter than one clip, and each take's last part,
    are left out, and the user must hear of it (and of the option that recovers it)."""
    line = (f"clean audio: {audio.used_seconds:.1f} s of {audio.seconds:.1f} s used; "
            f"{audio.short_takes} of {audio.takes} takes shorter than one "
            f"{audio.clip_seconds:g} s clip")
    if audio.capped_seconds:
        line += f"; {audio.capped_seconds:.1f} s left out by --clips-per-take"
    if audio.shorter_clips_help:
        line += "; a shorter --clip-seconds uses more of it"
    return line


@dataset.command("pack-kit")
@click.argument("kits", nargs=-1, required=True, type=NonEmptyPath(exists=True, path_type=Path))
@click.option("--out", required=True, type=NonEmptyPath(file_okay=False, path_type=Path),
              help="Folder to pack into; each kit becomes OUT/<its folder name>.")
@click.option("--max-layers", type=click.IntRange(min=1), default=None,
              help="Keep at most this many velocity layers per instrument [default: all].")
@click.option("--bits", type=click.Choice(["16", "24"]), default="16", show_default=True,
              help="FLAC sample width.")
@user_errors
def pack_kit(kits: tuple[Path, ...], out: Path, max_layers: int | None, bits: str) -> None:
    """Compact copies of KITS (mono 48 kHz FLAC, tails trimmed) that `--kit` reads like
    the originals: to train on a machine where the kits are not installed."""
    from training.kitpack import pack_kits

    with warnings_after():
        packed = pack_kits(kits, out, max_layers, int(bits))
    for kit in packed:
        click.echo(f"{kit.path}: {kit.name!r}, {kit.layers} of {kit.original_layers} layers, "
                   f"{kit.bytes / 1e6:.1f} MB")
    click.echo(f"{len(packed)} kits, {sum(kit.bytes for kit in packed) / 1e6:.1f} MB")

"""Gate options shared by ``debleed gate`` and ``debleed denoise --gate``, defined once.

Every option defaults to ``None`` ("not given") so the defaults live only in
``denoiser.gate.GateConfig``; ranges are checked by ``GateConfig.validate`` so an absurd value
is a user error (exit 1, one line) rather than a click usage error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from denoiser.gate import MAX_THRESHOLD_DB, MIN_THRESHOLD_DB, GateConfig

F = TypeVar("F", bound=Callable[..., Any])

_DEFAULTS = GateConfig()

# (option flag, GateConfig field, help)
GATE_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--threshold-db", "threshold_db", f"Open at this detector level (dBFS, "
     f"{MIN_THRESHOLD_DB:g} to {MAX_THRESHOLD_DB:+g}: a float take may peak over 0)."),
    ("--hysteresis-db", "hysteresis_db", "Close below threshold + this (dB, <= 0)."),
    ("--attack-ms", "attack_ms", "Opening ramp (ms)."),
    ("--hold-ms", "hold_ms", "Stay open this long after the level drops (ms)."),
    ("--release-ms", "release_ms", "Closing ramp (ms)."),
    ("--lookahead-ms", "lookahead_ms", "Pre-open: start opening this early (ms, <= 100)."),
    ("--hpf-hz", "detector_hpf_hz", "Detector high-pass (Hz, 0 = off)."),
    ("--lpf-hz", "detector_lpf_hz", "Detector low-pass (Hz, 0 = off)."),
    ("--rms-ms", "rms_ms", "Detector RMS window (ms, 0 = peak)."),
    ("--range-db", "range_db", "Gain while closed (dB, e.g. -80; -inf = silence)."),
    ("--wet", "wet", "Wet/dry mix (0 = dry, 1 = fully gated)."),
)
#: The flag a user types for each GateConfig field the options set (for messages).
GATE_FLAGS = {field: flag for flag, field, _ in GATE_OPTIONS} | {"auto": "--auto"}
GATE_FIELDS = tuple(GATE_FLAGS)


def gate_options(func: F) -> F:
    """Add the gate options (and ``--auto``) to a click command, as GateConfig field names."""
    func = click.option("--auto", "auto", is_flag=True, default=None,
                        help="Pick the threshold from the signal (overrides --threshold-db).")(func)
    for flag, field, text in reversed(GATE_OPTIONS):
        default = getattr(_DEFAULTS, field)
        shown = "off" if default is None else f"{default:g}"
        func = click.option(flag, field, type=float, default=None,
                            help=f"{text} [default: {shown}]")(func)
    return func


def pop_gate_options(options: dict[str, Any]) -> dict[str, Any]:
    """Remove the gate options from a command's kwargs; return those the user gave."""
    given = {field: options.pop(field) for field in GATE_FIELDS}
    return {field: value for field, value in given.items() if value is not None}


def option_flags(given: dict[str, Any]) -> list[str]:
    """The flags the user typed for these GateConfig fields, for messages."""
    return [GATE_FLAGS[field] for field in given]


def gate_config(given: dict[str, Any]) -> GateConfig:
    """``GateConfig`` defaults overridden by the given options, validated (ParameterError)."""
    return replace(_DEFAULTS, **given).validate()

"""Range checks shared by the settings dataclasses' ``validate`` methods (``SynthConfig``,
``GrooveConfig``, ``MicConfig``, ``SessionConfig``, ``MetricConfig``, ``BenchConfig``,
``TrainConfig``).

Each refusal is one ``ParameterError`` line naming the field, its value and what it may
be. NaN compares false with every bound and an infinity passes a one-sided one, so each
check asks for a finite number before its bounds: unchecked, such values rendered NaN
clips, scored silent NaN or asked for terabytes, often after minutes of work.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from dataclasses import fields
from typing import Any

from denoiser.errors import ParameterError


def is_number(value: Any) -> bool:
    """A real number; ``True`` is an int to Python but a mistake as a setting."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(what: str, name: str, value: Any, low: float, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False, *, shown: str = "",
                 why: str = "") -> None:
    """Refuse ``value`` unless it is a finite number in ``[low, high]`` (either end open
    with ``low_open``/``high_open``). ``what`` begins the message, e.g. "synth:"; ``shown``
    names the setting there instead of ``name = value`` (e.g. as its option is typed), and
    ``why`` follows the bounds."""
    finite = is_number(value) and math.isfinite(value)
    if not (finite and (low < value if low_open else low <= value)
            and (value < high if high_open else value <= high)):
        raise ParameterError(f"{what} {shown or f'{name} = {value!r}'}: must be "
                             f"{_interval(name, low, high, low_open, high_open)}"
                             f"{_because(why)}")


def is_whole(value: Any) -> bool:
    """An integer; not ``True``, nor 2.0, which would fail later in ``range``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_whole(what: str, name: str, value: Any, low: int, high: float = math.inf, *,
                shown: str = "", why: str = "") -> None:
    """Refuse ``value`` unless it is an integer in ``[low, high]`` (a count, ``is_whole``);
    ``what``, ``shown`` and ``why`` as for ``check_number``."""
    if not (is_whole(value) and low <= value <= high):
        top = high if isinstance(high, int) else f"{high:g}"  # a seed's 2**63 - 1 exactly
        wanted = f"in [{low}, {top}]" if high < math.inf else f">= {low}"
        raise ParameterError(f"{what} {shown or f'{name} = {value!r}'}: must be a whole "
                             f"number {wanted}{_because(why)}")


def check_range(what: str, name: str, value: Any, limits: tuple[float, float],
                sign: str = "") -> None:
    """Refuse a ``[low, high]`` setting unless it is two finite numbers, low <= high, on
    ``sign``'s side of 0 ("> 0", "<= 0", "": either), within ``limits``."""
    pair = isinstance(value, (list, tuple)) and len(value) == 2 and all(map(is_number, value))
    ordered = pair and all(map(math.isfinite, value)) and value[0] <= value[1]
    signed = ordered and {"> 0": value[0] > 0, "<= 0": value[1] <= 0, "": True}[sign]
    if not signed:
        side = f", both {sign}" if sign else ""
        raise ParameterError(f"{what} {name} = {value!r}: must be [low, high], finite, "
                             f"low <= high{side}")
    low, high = limits
    if not low <= value[0] <= value[1] <= high:
        raise ParameterError(f"{what} {name} = {value!r}: must lie within [{low:g}, {high:g}]")


def check_fields(what: str, config: Any, limits: dict[str, tuple[float, float]],
                 prefix: str = "", *, signed: bool = False, skip: Collection[str] = ()) -> None:
    """Check a settings dataclass's numbers (a probability in [0, 1], any other within
    ``limits``, else >= 0) and ``[low, high]`` ranges (within ``limits``; with ``signed``
    on their default's side of 0, > 0 or <= 0, where the limits alone let in a 0 that
    divides or a level that clips), each named with ``prefix`` (``mic.``) as a user reaches
    it. Dict, int and nested fields and those in ``skip`` are the caller's to check."""
    for spec in fields(config):
        name, value = prefix + spec.name, getattr(config, spec.name)
        if spec.name in skip:
            continue
        if spec.type == "tuple[float, float]":
            sign = ("> 0" if min(spec.default) > 0 else "<= 0") if signed else ""
            check_range(what, name, value, limits[spec.name], sign)
        elif spec.type == "float":
            low, high = (0.0, 1.0) if spec.name.endswith("probability") else \
                limits.get(spec.name, (0.0, math.inf))
            check_number(what, name, value, low, high)


def check_keys(what: str, name: str, value: Any, known: Collection[str],
               every: bool = False) -> None:
    """Refuse a mapping setting unless it is a dict whose keys are among ``known`` (all of
    them with ``every``: code looks each up), not empty: a misspelt key was ignored or
    failed as a KeyError deep in a render."""
    keys = set(value) if isinstance(value, dict) else None
    if keys is None or not keys or not keys <= set(known) or (every and keys != set(known)):
        wanted = "all" if every else "some"
        raise ParameterError(f"{what} {name} = {value!r}: must be a dict with {wanted} of "
                             f"the keys {', '.join(known)}")


def _interval(name: str, low: float, high: float, low_open: bool, high_open: bool) -> str:
    """What a number may be, in words: "a probability in [0, 1]", "a number in (0, 10]"."""
    if name.endswith("probability") and (low, high, low_open, high_open) == (0, 1, False, False):
        return "a probability in [0, 1]"
    if high == math.inf:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _because(why: str) -> str:
    """``why`` as the end of a refusal: ", " before it, nothing without it."""
    return f", {why}" if why else ""

"""Where the file commands write: ``NAME<suffix>`` beside each input, or under ``-o``.

Planned for all inputs before any work starts, so a missing or bad input, or two inputs
that would write the same file, stop the command before anything is written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from denoiser.audio import (check_output_folder, check_sidechain, check_track, ensure_not_input,
                            require_file)
from denoiser.errors import ParameterError

if TYPE_CHECKING:
    from denoiser.gate import GateConfig

#: How an ``-o`` that names a folder may end (``/`` on every system, ``\\`` on Windows too).
FOLDER_ENDS = ("/", os.sep)


def plan_outputs(inputs: tuple[Path, ...], output: str | None, suffix: str,
                 sidechain: Path | None = None, gate: "GateConfig | None" = None,
                 need_sound: bool = True) -> list[tuple[Path, Path]]:
    """Pair each input with its output path.

    With several inputs each is read through first (``check_track``; ``need_sound``: a
    silent one is refused too) and checked against what depends on its rate (the gate's
    detector filters below its Nyquist, the ``sidechain`` at its rate and not silent over
    its length), so a bad last file leaves no outputs of the first ones; a single input is
    checked by the command that reads it, before it writes.

    ``output`` is a ``.wav`` file for a single input, else a folder (made if missing): a
    name without an extension (``-o cleaned``) is a folder whatever the number of inputs,
    and any other extension is refused, since what is written is float32 WAV whatever
    the name says; with several inputs a new ``-o`` with an extension is refused too (a
    folder named ``take.wav`` is not what was meant). A trailing separator (``-o "Mix
    v1.2/"``) names a folder whatever the name looks like: read as a path, the slash is
    lost and "v1.2" looked like an extension. No output may be an input or the sidechain:
    an earlier run's output that a wildcard picked up is named as such.
    """
    protect = () if sidechain is None else (sidechain,)
    for src in (*inputs, *protect):
        require_file(src)
    folder = output is not None and output.endswith(FOLDER_ENDS)
    output = None if output is None else Path(output)
    if output is None:
        targets = [src.with_name(src.stem + suffix) for src in inputs]
    elif len(inputs) == 1 and output.suffix and not output.is_dir() and not folder:
        if output.suffix.lower() != ".wav":
            raise ParameterError(f"{output}: debleed writes float32 WAV; name the output .wav")
        targets = [output]
    else:
        if output.exists() and not output.is_dir():
            raise ParameterError(f"{output}: is a file; -o must name a folder here")
        if output.suffix and not output.exists() and not folder:  # -o take.wav: a file
            raise ParameterError(f"{output}: {len(inputs)} inputs write one file each; name "
                                 "a folder for -o (without an extension)")
        targets = [output / (src.stem + suffix) for src in inputs]
    seen: dict[str, Path] = {}
    input_keys = {_key(src) for src in inputs}
    for src, dst in zip(inputs, targets):
        key = _key(dst)
        if key in seen:
            raise ParameterError(f"{seen[key]} and {src} would both be written to {dst}")
        seen[key] = src
        if key == _key(src):
            raise ParameterError(f"{dst}: is the input itself; debleed never writes over "
                                 "an input, name another output")
        if key in input_keys:
            raise ParameterError(f"{dst}: the output for {src} is also one of the inputs (an "
                                 "earlier run's output, matched by a wildcard?); leave it out")
        ensure_not_input(dst, (*inputs, *protect))
        if dst.is_dir():
            raise ParameterError(f"{dst}: is a folder; the output for {src} cannot go there")
        check_output_folder(dst.parent)  # a read-only folder stops the batch before it starts
    if len(inputs) > 1:
        _check_batch(inputs, sidechain, gate, need_sound)
    return list(zip(inputs, targets))


def _key(path: Path) -> str:
    """What names one file: the resolved path, without case where file systems ignore it."""
    key = str(path.resolve())
    return key.casefold() if sys.platform in ("darwin", "win32") else key


def _check_batch(inputs: tuple[Path, ...], sidechain: Path | None, gate: "GateConfig | None",
                 need_sound: bool) -> None:
    for src in inputs:
        rate = check_track(src, need_sound)
        if gate is not None:
            gate.validate(rate)
    if sidechain is not None:
        check_sidechain(sidechain, inputs)

"""Where the file commands write: ``NAME<suffix>`` beside each input, or under ``-o``.

Planned for all inputs before any work starts, so a missing input or two inputs that would
write the same file stop the command before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from denoiser.audio import ensure_not_input
from denoiser.errors import AudioError, ParameterError


def plan_outputs(inputs: tuple[Path, ...], output: Path | None, suffix: str,
                 protect: tuple[Path, ...] = ()) -> list[tuple[Path, Path]]:
    """Pair each input with its output path.

    ``output`` is a file for a single input (unless it is an existing folder) and a folder
    for several. No output may be an input or one of ``protect`` (e.g. a sidechain file).
    """
    for src in (*inputs, *protect):
        if not src.is_file():
            raise AudioError(f"{src}: no such file")
    if output is None:
        targets = [src.with_name(src.stem + suffix) for src in inputs]
    elif len(inputs) == 1 and not output.is_dir():
        targets = [output]
    else:
        if output.exists() and not output.is_dir():
            raise ParameterError(f"{output}: with several inputs, -o must be a folder")
        targets = [output / (src.stem + suffix) for src in inputs]
    seen: dict[Path, Path] = {}
    for src, dst in zip(inputs, targets):
        key = dst.resolve()
        if key in seen:
            raise ParameterError(f"{seen[key]} and {src} would both be written to {dst}")
        seen[key] = src
        ensure_not_input(dst, (*inputs, *protect))
    return list(zip(inputs, targets))

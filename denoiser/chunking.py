"""Planning of overlapping chunks, shared by the in-memory inference (``apply_model``) and
the file streaming (``stream``), so both cut audio the same way.

Each chunk owns an output span; neighbouring spans overlap by ``overlap`` samples where a
linear crossfade (complementary ramps summing to exactly 1) hides any seam. Each chunk
reads ``context`` extra samples on both sides that the model needs but whose output is
thrown away, so a model with a finite receptive field gives the same result chunked as
whole. Chunk starts are multiples of ``align`` (the STFT hop) so frames line up too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    out_start: int
    out_stop: int
    in_start: int
    in_stop: int
    fade_in: int
    fade_out: int

    @property
    def crop(self) -> slice:
        """Where this chunk's output span sits inside the model output for its input."""
        offset = self.out_start - self.in_start
        return slice(offset, offset + self.out_stop - self.out_start)

    def weights(self) -> np.ndarray:
        w = np.ones(self.out_stop - self.out_start, dtype=np.float32)
        if self.fade_in:
            w[: self.fade_in] = ramp(self.fade_in)
        if self.fade_out:
            w[len(w) - self.fade_out:] = ramp(self.fade_out)[::-1]
        return w


def ramp(length: int) -> np.ndarray:
    """Rising ramp whose reverse is its complement: ``ramp + ramp[::-1] == 1``."""
    return ((np.arange(length, dtype=np.float64) + 0.5) / length).astype(np.float32)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def plan_chunks(total: int, segment: int, overlap: int, context: int,
                align: int = 1) -> list[Chunk]:
    """Cut ``total`` samples into chunks of at most ``segment`` output samples."""
    if total <= 0:
        return []
    align = max(1, int(align))
    context = _round_up(max(0, context), align)
    overlap = _round_up(max(0, overlap), align)
    segment = max(_round_up(segment, align), overlap + align)
    # Rounding up can lift the overlap past the stride, where three chunks' fades meet and
    # their weights sum over 1 (a ripple at every seam): at most half a segment, on the grid.
    overlap = min(overlap, segment // 2 // align * align)
    if total <= segment:
        return [Chunk(0, total, 0, total, 0, 0)]
    stride = segment - overlap
    starts = list(range(0, total - overlap, stride))
    chunks = []
    for index, start in enumerate(starts):
        stop = min(total, start + segment)
        last = index == len(starts) - 1
        if last:
            stop = total
        chunks.append(Chunk(
            out_start=start,
            out_stop=stop,
            in_start=max(0, start - context),
            in_stop=min(total, stop + context),
            fade_in=overlap if index > 0 else 0,
            fade_out=overlap if not last else 0,
        ))
    return chunks

"""The debleed model: a per-bin spectral mask predicted by a non-causal dilated TCN.

Why this shape:
- Full band at 48 kHz on an STFT (1024/256 by default): the seed thesis ran at 20 kHz on
  waveforms and named that its main limit. Frequency resolution separates the snare's
  body (~180-250 Hz) from tom and kick fundamentals, and per-bin masks let cymbal
  partials above 5 kHz be cut during a hit while the snare wires stay.
- The mask multiplies the noisy STFT (``mask="real"``): the output keeps the input's
  phase, so the processed take is phase-coherent with the original and can be blended.
  ``mask="complex"`` is the alternative design measured in docs/model.md.
- Offline use allows non-causal context: dilated convolutions over frames see about
  +-0.35 s, enough to hear a cymbal ring before a hit and the snare's own decay after it.
- ``frame_gate``: one more output, a per-frame broadband gain in (0, 1) that multiplies
  every bin's mask. Silencing a frame of tom or hi-hat bleed then takes one decision
  instead of 513 bins agreeing; it is the "gating layer" the seed thesis asked for,
  learned instead of set by a threshold. It starts open (see ``FRAME_GATE_OPEN``), so a
  trained model can be extended with it and fine-tuned (``debleed train --init``).
- ``phase_coherence``: a second input per bin, how steadily its phase advances over
  ``coherence_frames`` frames (``phase_coherence``, 0 to 1). A cymbal or tom partial
  advances its phase by the same step frame after frame; the snare wires' noise does not.
  Magnitudes cannot tell the two apart where they share a bin (the real mask's cymbal
  limit, docs/model.md), this can; the mask stays real, so the output keeps the input's
  phase. It enters through its own projection, added to the level's, whose output starts
  at zero: a trained network grows it and starts from exactly its old mask
  (``coherence_rank`` > 0 makes that projection a low-rank one, to fit a budget).
- ``texture_channels``: a small 2-D convolution over (bin, frame) of the level, whose
  filters are shared by every bin. The per-bin projection learns each bin's pattern on
  its own, so a snare tuned where no training snare sat is a pattern it never saw; a
  detector of "noise burst with a sharp onset" slid along frequency recognises wires and
  stick attack wherever they are. It yields two maps: one enters like the phase coherence
  (its own low-rank projection, ``texture_rank``), one is added to the mask's logits bin by
  bin, the one path from input to mask that is the same at every frequency. Both start at
  zero.
- ``floor_input``: a third input per bin, the level the bin falls to between sounds (its
  ``floor_quantile`` quantile over every frame of the chunk, normalised like the level),
  the same at every frame. A recording floor (preamp hiss, dither) is stationary; a
  decaying snare's wires are noise too, and in +-0.35 s of context the two look alike, so
  networks fine-tuned on floored clips cut noise-like snares' tails on floorless tracks
  (docs/model.md, thirty-second round). Told the floor, they need not guess it. It enters
  through its own zero-start projection (``floor_rank``), so a grown network starts from
  exactly its old mask.
- ``input_max_hz``: bins above this frequency enter the network as digital silence (their
  level and phase coherence), and their mask is the highest input bin's. Four of the shipped
  model's six training kits are 44.1-kHz libraries, so above 22.05 kHz its training clips
  held the synthesiser's room tone and the bleed but none of those kits' snares; it learned
  noise there as a bleed cue, and a 48-kHz track with hiss or dither fills the band at every
  frame, hits included, which took the hits down (docs/model.md, thirty-fourth round; other
  rates reach the model through a resampler that empties or attenuates the band). Cut, a
  network reads such a track as it would a 44.1-kHz one. The band above
  carries the same sound as the band below, so it takes the mask decided for the highest
  input bin. 0: every bin is an input.
- Cheap: the time axis runs at the frame rate (188 Hz at hop 256), so the network costs
  well under a GFLOP per second of audio and runs >100x real time on two CPU cores.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import DenoiserModel, capture_init

FRAME_GATE_OPEN = 4.0  # initial logit: sigmoid(4) = 0.98, -0.16 dB, gradients still alive
POWER_GUARD = 1e-10  # added to the power before its log: digital silence reads as its log
SILENT_LEVEL = math.log10(POWER_GUARD)


def unit_phase_steps(spec: torch.Tensor) -> torch.Tensor:
    """X(t) X*(t - 1) / |.| per bin of a complex ``(..., T)`` spectrum: each bin's phase
    advance from the previous frame as a unit phasor (0 for the first frame, which has no
    previous one, and in digital silence)."""
    step = spec[..., 1:] * spec[..., :-1].conj()
    return nn.functional.pad(step / (step.abs() + 1e-12), (1, 0))


def phase_coherence(spec: torch.Tensor, frames: int) -> torch.Tensor:
    """Per bin and frame of a complex ``(B, bins, T)`` spectrum, the length of the mean of
    the unit phase steps over ``frames`` frames centred on t: 1 for a steady partial (its
    step is the same every frame, whatever its frequency inside the bin), lower for noise
    (about 0.66 at hop n_fft / 4, whose overlapping frames make the steps of noise depend
    on each other), 0 in digital silence."""
    step = unit_phase_steps(spec)
    parts = torch.cat([step.real, step.imag], dim=1)
    mean = nn.functional.avg_pool1d(parts, frames, stride=1, padding=frames // 2,
                                    count_include_pad=False)
    real, imag = mean.chunk(2, dim=1)
    return torch.sqrt(real.square() + imag.square() + 1e-12)


def level_floor(level: torch.Tensor, quantile: float) -> torch.Tensor:
    """Per bin of a ``(B, bins, T)`` level, its ``quantile`` over the frames, ``(B, bins,
    1)``: where the bin sits between sounds when the quantile is low. Hits, however dense,
    fill a fraction of the frames, so a low quantile reads the gaps."""
    return torch.quantile(level, quantile, dim=-1, keepdim=True)


def input_bins(max_hz: float, n_fft: int, sample_rate: int) -> int:
    """How many bins a network cut at ``max_hz`` reads: those at or below it (bin k sits at
    k * sample_rate / n_fft); all of them for 0."""
    if max_hz == 0:  # before the rate is judged: an impossible rate has its own error
        return n_fft // 2 + 1
    if not 0.0 < max_hz < sample_rate / 2:
        raise ValueError(f"input_max_hz must be 0 (every bin) or below the model's Nyquist "
                         f"({sample_rate / 2:g} Hz: it runs at {sample_rate} Hz), not {max_hz}")
    return int(max_hz * n_fft / sample_rate) + 1


def extend_mask_above(mask: torch.Tensor, bins: int) -> torch.Tensor:
    """``mask`` ``(..., all bins, T)`` with every bin from ``bins`` on replaced by bin
    ``bins - 1``: the mask for a band the network was not shown (``input_max_hz``)."""
    if bins >= mask.shape[-2]:
        return mask
    above = mask[..., bins - 1:bins, :].expand(*mask.shape[:-2], mask.shape[-2] - bins,
                                               mask.shape[-1])
    return torch.cat([mask[..., :bins, :], above], dim=-2)


def apply_mask(spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``spec * mask``; a real mask scales the real and imaginary parts in place of being
    promoted to a complex copy first (the same numbers, 3 % less time)."""
    if mask.is_complex():
        return spec * mask
    return torch.view_as_complex(torch.view_as_real(spec) * mask.unsqueeze(-1))


def zero_start_projection(inputs: int, outputs: int, rank: int) -> nn.Sequential:
    """Bias-free 1x1 projection of an extra input (``rank`` > 0: through ``rank`` channels,
    to fit a budget) whose last layer starts at zero, so a network grown with the input
    starts from exactly its old mask."""
    widths = [inputs, rank, outputs] if rank else [inputs, outputs]
    projection = nn.Sequential(*[nn.Conv1d(a, b, 1, bias=False)
                                 for a, b in zip(widths[:-1], widths[1:])])
    nn.init.zeros_(projection[-1].weight)
    return projection


class ResidualBlock(nn.Module):
    """Dilated conv over frames, normalised, gated by a pointwise conv, plus skip."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=padding),
            nn.BatchNorm1d(channels),  # affine at inference: cheap, finite receptive field
            nn.PReLU(channels),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TextureFront(nn.Module):
    """Two 2-D convolutions over (bin, frame) of the normalised level, the same at every
    bin, giving two maps per bin and frame: a feature for the projection and a logit added
    to the mask. 5 bins (235 Hz) by 3 frames each, the second dilated over frames, so one
    output sees +-4 bins (+-190 Hz) and +-3 frames (+-16 ms): a hit's onset and its spread.
    Few channels: the maps are as large as the spectrum, so their memory traffic, not their
    arithmetic, is what this costs on a CPU."""

    receptive_frames = 6  # (3 - 1) * 1 + (3 - 1) * 2: 3 frames on either side

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, (5, 3), padding=(2, 1)),
            nn.PReLU(channels),
            nn.Conv2d(channels, 2, (5, 3), padding=(2, 2), dilation=(1, 2)),
        ).to(memory_format=torch.channels_last)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``level`` (B, bins, T) -> (feature, logit), each (B, bins, T)."""
        # channels-last: with so few channels, 3-4x faster on the CPU than the default layout
        maps = self.body(level.unsqueeze(1).contiguous(memory_format=torch.channels_last))
        return maps[:, 0], maps[:, 1]


class BandMaskNet(DenoiserModel):
    """STFT -> log power -> per-bin projection -> dilated TCN -> mask -> ISTFT."""

    name = "bandmask"

    @capture_init
    def __init__(
        self,
        sample_rate: int = 48000,
        n_fft: int = 1024,
        hop: int = 256,
        channels: int = 128,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 2, 8),
        kernel_size: int = 3,
        mask: str = "real",
        dropout: float = 0.0,
        frame_gate: bool = False,
        phase_coherence: bool = False,
        coherence_frames: int = 5,
        coherence_rank: int = 0,
        texture_channels: int = 0,
        texture_rank: int = 16,
        floor_input: bool = False,
        floor_quantile: float = 0.1,
        floor_rank: int = 16,
        input_max_hz: float = 0.0,
    ):
        super().__init__()
        if mask not in ("real", "complex"):
            raise ValueError(f"mask must be 'real' or 'complex', not {mask!r}")
        if phase_coherence and (coherence_frames < 2 or coherence_frames % 2 == 0):
            raise ValueError("coherence_frames must be odd and at least 3")
        if coherence_rank < 0:
            raise ValueError("coherence_rank must be 0 (full) or positive")
        if texture_channels < 0 or texture_rank < 1:
            raise ValueError("texture_channels must be >= 0 and texture_rank >= 1")
        if not 0.0 <= floor_quantile <= 0.5 or floor_rank < 0:
            raise ValueError("floor_quantile must be from 0 to 0.5 and floor_rank >= 0")
        if texture_channels and mask != "real":
            raise ValueError("texture_channels needs the real mask (its map adds to the logits)")
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop = int(hop)
        if not 1 <= self.hop <= self.n_fft // 2:  # Hann frames must overlap by half to invert
            raise ValueError(f"hop must be from 1 to n_fft / 2 ({self.n_fft // 2}), not {hop}")
        self.mask_kind = mask
        bins = n_fft // 2 + 1
        self.input_bins = input_bins(input_max_hz, n_fft, self.sample_rate)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # Input normalisation lives in the model (open-unmix's input_mean/input_scale);
        # initialised for log10 power of peak-normalised drum audio, then learned.
        self.input_mean = nn.Parameter(torch.full((bins, 1), -4.0))
        self.input_scale = nn.Parameter(torch.full((bins, 1), 0.5))
        self.project = nn.Conv1d(bins, channels, 1)
        self.coherence_frames = int(coherence_frames) if phase_coherence else 0
        self.coherence = None
        if phase_coherence:
            self.coherence = zero_start_projection(bins, channels, coherence_rank)
        self.texture = self.texture_project = None
        if texture_channels:
            self.texture = TextureFront(texture_channels)
            self.texture_project = zero_start_projection(bins, channels, texture_rank)
        self.floor_quantile = float(floor_quantile)
        self.floor = zero_start_projection(bins, channels, floor_rank) if floor_input else None
        self.blocks = nn.Sequential(
            *[ResidualBlock(channels, kernel_size, d, dropout) for d in dilations]
        )
        outputs = bins * (2 if mask == "complex" else 1)
        self.head = nn.Sequential(nn.PReLU(channels), nn.Conv1d(channels, outputs, 1))
        self.frame_gate = None
        if frame_gate:
            self.frame_gate = nn.Conv1d(channels, 1, 1)
            nn.init.zeros_(self.frame_gate.weight)
            nn.init.constant_(self.frame_gate.bias, FRAME_GATE_OPEN)
        self.receptive_frames = sum(d * (kernel_size - 1) for d in dilations)
        if self.texture is not None:
            self.receptive_frames += self.texture.receptive_frames

    def context_samples(self) -> int:
        # the phase coherence of a frame reaches coherence_frames // 2 + 1 frames back
        extra = self.coherence_frames // 2 + 1 if self.coherence_frames else 0
        return (self.receptive_frames // 2 + 2 + extra) * self.hop + self.n_fft

    def valid_length(self, length: int) -> int:
        """At least one window: the centred STFT reflects half a window at each end, which
        a clip shorter than that (a 10-ms item) does not have; the zeros are cropped off."""
        return max(length, self.n_fft)

    def spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True,
                          return_complex=True)

    @staticmethod
    def log_power(spec: torch.Tensor) -> torch.Tensor:
        """log10 power of ``spec``: what every network on one STFT starts from, so an
        ensemble computes it once for all its members (a fifth of a member's time).
        Contiguous: the STFT's frames-major layout made each member's first convolution
        copy its input, 6 % of the ensemble's time."""
        return torch.log10(spec.real.square() + spec.imag.square() + POWER_GUARD).contiguous()

    def input_level(self, spec: torch.Tensor) -> torch.Tensor:
        """``log_power(spec)`` with the bins above ``input_max_hz`` silent: the level the
        network reads."""
        level = self.log_power(spec)
        if self.input_bins < level.shape[-2]:
            level[..., self.input_bins:, :] = SILENT_LEVEL
        return level

    def features(self, spec: torch.Tensor, level: torch.Tensor | None = None) -> torch.Tensor:
        """The network's input: ``input_level(spec)`` (or the given ``level``, which must be
        it, cut at ``input_max_hz``) under its learned per-bin normalisation."""
        level = self.input_level(spec) if level is None else level
        return (level - self.input_mean) * self.input_scale

    def inverse(self, masked: torch.Tensor, length: int) -> torch.Tensor:
        """Waveform of ``length`` samples from a masked spectrum on this model's STFT."""
        return torch.istft(masked, self.n_fft, self.hop, window=self.window, center=True,
                           length=length)

    def predict_mask(self, spec: torch.Tensor,
                     level: torch.Tensor | None = None) -> torch.Tensor:
        """Mask for a complex spectrum ``(B, bins, frames)``; real or complex valued.
        ``level``: ``input_level(spec)`` when the caller already has it (an ensemble, once
        for all its members); a plain ``log_power`` would skip the cut."""
        level = self.input_level(spec) if level is None else level
        features = self.features(spec, level)
        projected = self.project(features)
        if self.coherence is not None:
            coherence = phase_coherence(spec, self.coherence_frames)
            coherence[:, self.input_bins:] = 0.0  # the band not read: as digital silence
            projected = projected + self.coherence(coherence)
        if self.floor is not None:  # one column, the same for every frame: broadcast
            floor = level_floor(level, self.floor_quantile)
            projected = projected + self.floor((floor - self.input_mean) * self.input_scale)
        local_logits = None
        if self.texture is not None:
            texture, local_logits = self.texture(features)
            projected = projected + self.texture_project(texture)
        hidden = self.blocks(projected)
        out = self.head(hidden)
        if local_logits is not None:
            out = out + local_logits  # real mask only (checked at construction)
        if self.mask_kind == "real":
            mask = torch.sigmoid(out)
        else:
            real, imag = out.chunk(2, dim=1)
            # Magnitude bounded to [0, 1.2): a little above 1 undoes destructive interference.
            magnitude = 1.2 * torch.tanh(torch.sqrt(real.square() + imag.square() + 1e-8))
            mask = torch.polar(magnitude, torch.atan2(imag, real + 1e-8))
        if self.frame_gate is not None:
            mask = mask * torch.sigmoid(self.frame_gate(hidden))
        return extend_mask_above(mask, self.input_bins)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.spectrum(wave)
        return self.inverse(apply_mask(spec, self.predict_mask(spec)), wave.shape[-1])

"""``debleed demo``: hear what debleed does without any audio of your own.

Renders an 8 s snare close-mic clip from the built-in synthetic kit (so it needs neither
Debian's kits nor a session), then denoises it with the shipped model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from denoiser.audio import check_output_folder, write_audio
from denoiser.engine import Denoiser
from denoiser.outfiles import replaced_together

from .kits import load_kit
from .oneshots import write_synthetic_kit
from .synth import Clip, SynthConfig, render_clip

DEMO_CONFIG = replace(SynthConfig(clip_seconds=8.0), bleed_only_probability=0.0)
DEMO_STYLE = "funk"
#: What a demo writes: the clip, its bleed-free truth, and the clip denoised.
DEMO_FILES = ("demo_noisy.wav", "demo_clean.wav", "demo_noisy.debleed.wav")


def render_demo_clip(seed: int, config: SynthConfig = DEMO_CONFIG) -> Clip:
    """The demo's clip for ``seed``: the built-in synthetic kit drawn with that seed, and a
    groove of ``DEMO_STYLE`` from it. The shipping rule scores its demo kit on these too."""
    with tempfile.TemporaryDirectory(prefix="debleed-demo-kit-") as kit_dir:
        kit = load_kit(write_synthetic_kit(Path(kit_dir) / "kit", seed=seed))
        return render_clip(kit, seed, config, style=DEMO_STYLE)


def run_demo(out: str | Path, seed: int = 0, model: str | Path | None = None,
             progress: Callable[[float], None] | None = None) -> tuple[Path, Path, Path]:
    """Write ``demo_noisy.wav``, ``demo_clean.wav`` and ``demo_noisy.debleed.wav`` into
    ``out``; return their paths (noisy, clean, denoised).

    The three are rendered in a hidden folder inside ``out`` and replace an earlier demo's
    together (``replaced_together``) once the last is written: a demo that fails (an error
    or Ctrl-C while denoising) leaves the earlier three as they were, or nothing, never a
    new seed's clip beside the old one's denoised file."""
    out = Path(out)
    check_output_folder(out)
    denoiser = Denoiser.load(model)  # fail on a missing model before writing anything
    clip = render_demo_clip(seed)
    with replaced_together(out, DEMO_FILES) as staging:
        noisy, clean, denoised = (staging / name for name in DEMO_FILES)
        write_audio(noisy, clip.noisy[None], clip.meta["sample_rate"])
        write_audio(clean, clip.clean[None], clip.meta["sample_rate"])
        denoiser.denoise_file(noisy, denoised, progress=progress)
    return out / DEMO_FILES[0], out / DEMO_FILES[1], out / DEMO_FILES[2]

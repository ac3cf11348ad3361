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
from denoiser.outfiles import missing_folders, remove_empty_folders

from .kits import load_kit
from .oneshots import write_synthetic_kit
from .synth import SynthConfig, render_clip

DEMO_CONFIG = replace(SynthConfig(clip_seconds=8.0), bleed_only_probability=0.0)


def run_demo(out: str | Path, seed: int = 0, model: str | Path | None = None,
             progress: Callable[[float], None] | None = None) -> tuple[Path, Path, Path]:
    """Write ``demo_noisy.wav``, ``demo_clean.wav`` and ``demo_noisy.debleed.wav`` into
    ``out``; return their paths (noisy, clean, denoised)."""
    out = Path(out)
    check_output_folder(out)
    denoiser = Denoiser.load(model)  # fail on a missing model before writing anything
    with tempfile.TemporaryDirectory(prefix="debleed-demo-kit-") as kit_dir:
        kit = load_kit(write_synthetic_kit(Path(kit_dir) / "kit", seed=seed))
        clip = render_clip(kit, seed, DEMO_CONFIG, style="funk")
    new = [path for path in (out / "demo_noisy.wav", out / "demo_clean.wav") if not path.exists()]
    created = missing_folders(out)
    try:
        noisy = write_audio(out / "demo_noisy.wav", clip.noisy[None], clip.meta["sample_rate"])
        clean = write_audio(out / "demo_clean.wav", clip.clean[None], clip.meta["sample_rate"])
        denoised = denoiser.denoise_file(noisy, out / "demo_noisy.debleed.wav", progress=progress)
    except BaseException:  # a failed demo leaves no half of itself behind
        for path in new:
            path.unlink(missing_ok=True)
        remove_empty_folders(created)
        raise
    return noisy, clean, Path(denoised)

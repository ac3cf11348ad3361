"""Regenerate the mel spectrograms of docs/data.md (noisy / clean / bleed of 3 clips).

    .venv/bin/python docs/data/make_figures.py [KIT_ROOT]

KIT_ROOT defaults to Debian's Hydrogen kits (/usr/share/hydrogen/data/drumkits).
"""

from __future__ import annotations

import sys
from pathlib import Path

from training.kits import load_kit
from training.report import spectrogram_figure
from training.synth import SynthConfig, clip_seed, render_clip

TRAIN_KITS = ("GMRockKit", "ForzeeStereo", "Millo-Drums_v.1", "Millo_MultiLayered2",
              "ColomboAcousticDrumkit", "rumpf_kit_z01_h2")
CLIPS = ((0, "backbeat"), (1, "funk"), (2, "fills"))


def main(root: str = "/usr/share/hydrogen/data/drumkits") -> None:
    kits = [load_kit(Path(root) / name) for name in TRAIN_KITS]
    here = Path(__file__).parent
    for index, style in CLIPS:
        seed = clip_seed(2024, index)
        clip = render_clip(kits, seed, SynthConfig(bleed_only_probability=0.0), style=style)
        meta = clip.meta
        title = (f"{meta['kit']}, {style}, {meta['bpm']:.0f} BPM, seed {seed} "
                 f"(same colour scale)")
        spectrogram_figure(here / f"clip{index + 1}_{style}.png",
                           {"noisy": clip.noisy, "clean": clip.clean, "bleed": clip.bleed},
                           meta["sample_rate"], title)
        print(here / f"clip{index + 1}_{style}.png", meta["paths"])


if __name__ == "__main__":
    main(*sys.argv[1:])

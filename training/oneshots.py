"""Synthetic drum one-shots and a tiny Hydrogen kit made of them.

Tests and ``debleed demo`` need a kit without depending on Debian's drum kits: these are
simple physical caricatures (snare: tuned shell modes plus band-passed noise for the
wires; kick: a pitch-swept sine; hats and cymbals: inharmonic square partials plus
high-passed noise with the right decays; toms: decaying tuned tones), at several
velocities with brighter, louder hard hits.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from scipy import signal

from denoiser.audio import write_audio
from denoiser.outfiles import write_text_atomic

# name, file stem, generator kind, tuning (Hz), decay (s), length (s)
PIECES = (
    ("Snare", "snare", "snare", 190.0, 0.16, 0.6),
    ("Snare Rimshot", "rimshot", "rimshot", 200.0, 0.2, 0.6),
    ("Side Stick", "sidestick", "sidestick", 900.0, 0.03, 0.25),
    ("Kick", "kick", "kick", 55.0, 0.3, 0.6),
    ("Hat Closed", "hat_closed", "metal", 7000.0, 0.05, 0.3),
    ("Hat Open", "hat_open", "metal", 7000.0, 0.45, 1.2),
    ("Hat Pedal", "hat_pedal", "metal", 6000.0, 0.03, 0.2),
    ("Ride", "ride", "metal", 3000.0, 1.2, 2.0),
    ("Crash", "crash", "metal", 4000.0, 0.9, 2.0),
    ("Tom High", "tom_high", "tom", 210.0, 0.35, 1.0),
    ("Tom Mid", "tom_mid", "tom", 150.0, 0.4, 1.0),
    ("Floor Tom", "tom_floor", "tom", 95.0, 0.5, 1.2),
)
VELOCITIES = (0.3, 0.65, 1.0)


def _decay(n: int, rate: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(n) / rate / seconds)


def one_shot(kind: str, tune: float, decay: float, length: float, velocity: float,
             rate: int = 48000, seed: int = 0) -> np.ndarray:
    """One mono hit, peak proportional to ``velocity`` (0-1)."""
    rng = np.random.default_rng(seed)
    n = int(length * rate)
    t = np.arange(n) / rate
    env = _decay(n, rate, decay)
    bright = min(2000 + 8000 * velocity, rate / 2.2)  # under Nyquist at any rate offered
    if kind in ("snare", "rimshot"):
        body = sum(a * np.sin(2 * np.pi * tune * f * t) for a, f in ((1.0, 1.0), (0.5, 1.6)))
        wires = signal.sosfilt(signal.butter(2, [1500, min(bright + 4000, rate / 2.2)],
                                             "bandpass", fs=rate, output="sos"),
                               rng.standard_normal(n))
        x = body * _decay(n, rate, decay * 0.6) + 2.5 * wires * env
        if kind == "rimshot":
            x += 3.0 * np.sin(2 * np.pi * 1100 * t) * _decay(n, rate, 0.015)
    elif kind == "sidestick":
        x = signal.sosfilt(signal.butter(2, [tune, 3 * tune], "bandpass", fs=rate,
                                         output="sos"), rng.standard_normal(n)) * env
        x += np.sin(2 * np.pi * tune * t) * env
    elif kind == "kick":
        phase = 2 * np.pi * np.cumsum(tune + 100 * np.exp(-t / 0.03)) / rate
        x = np.sin(phase) * env + 0.3 * rng.standard_normal(n) * _decay(n, rate, 0.004)
    elif kind == "metal":
        partials = tune * np.array([0.21, 0.33, 0.46, 0.59, 0.79, 1.0])
        square = np.sign(np.sin(2 * np.pi * partials[:, None] * t[None, :])).sum(axis=0)
        noise = rng.standard_normal(n)
        x = signal.sosfilt(signal.butter(2, min(tune, rate / 2.5), "highpass", fs=rate,
                                         output="sos"), 0.3 * square + noise) * env
    elif kind == "tom":
        pitch = tune * (1 + 0.1 * np.exp(-t / 0.05))
        x = np.sin(2 * np.pi * np.cumsum(pitch) / rate) * env
        x += 0.2 * rng.standard_normal(n) * _decay(n, rate, 0.01)
    else:
        raise ValueError(f"unknown one-shot kind {kind!r}")
    x = signal.sosfilt(signal.butter(1, bright, fs=rate, output="sos"), x)
    attack = np.minimum(1.0, np.arange(n) / (0.0005 * rate))
    fade = np.minimum(1.0, (n - np.arange(n)) / (0.01 * rate))
    x = x * attack * fade
    return (velocity * x / np.max(np.abs(x))).astype(np.float32)


def write_synthetic_kit(folder: str | Path, sample_rate: int = 48000, channels: int = 1,
                        velocities: tuple[float, ...] = VELOCITIES, seed: int = 0,
                        name: str = "debleed synthetic kit") -> Path:
    """Write a Hydrogen kit (drumkit.xml + one WAV per piece and velocity) into ``folder``.

    ``sample_rate`` and ``channels`` let tests exercise resampling and stereo mixdown.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ns = "http://www.hydrogen-music.org/drumkit"
    root = ET.Element("drumkit_info", xmlns=ns)
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "author").text = "debleed"
    ET.SubElement(root, "license").text = "CC0"
    instruments = ET.SubElement(root, "instrumentList")
    edges = np.linspace(0.0, 1.0, len(velocities) + 1)
    for index, (title, stem, kind, tune, decay, length) in enumerate(PIECES):
        inst = ET.SubElement(instruments, "instrument")
        ET.SubElement(inst, "id").text = str(index)
        ET.SubElement(inst, "name").text = title
        component = ET.SubElement(inst, "instrumentComponent")
        ET.SubElement(component, "component_id").text = "0"
        for layer_index, velocity in enumerate(velocities):
            mono = one_shot(kind, tune, decay, length, velocity, sample_rate,
                            seed=seed * 1000 + index * 10 + layer_index)
            filename = f"{stem}_{layer_index + 1}.wav"
            write_audio(folder / filename, np.repeat(mono[None], channels, axis=0), sample_rate)
            layer = ET.SubElement(component, "layer")
            ET.SubElement(layer, "filename").text = filename
            ET.SubElement(layer, "min").text = f"{edges[layer_index]:.6f}"
            ET.SubElement(layer, "max").text = f"{edges[layer_index + 1]:.6f}"
            ET.SubElement(layer, "gain").text = "1"
    ET.indent(root)
    write_text_atomic(folder / "drumkit.xml", '<?xml version="1.0" encoding="UTF-8"?>\n'
                      + ET.tostring(root, encoding="unicode") + "\n")
    return folder

"""Compact copies of drum kits, for training on a machine that does not have them installed.

Why: a lent GPU machine cannot reach a package archive, and what travels to it is limited
(docs/model.md, the GPU recipe). The six training kits take 181 MB as installed, most of it
ForzeeStereo's stereo WAVs, while the synthesiser only ever uses each sample as mono 48 kHz
audio with its tail trimmed (``training.kits``). A packed kit stores exactly that, as FLAC,
with a Hydrogen ``drumkit.xml`` the loader reads like any other kit, and can keep fewer
velocity layers per instrument when even that is too big.

A packed kit keeps its name, so the public test kit stays recognisable (and refused for
training) wherever it is packed to. Every packed kit is loaded back before it is put in
place, and must give the same instruments with the same categories as the original.
"""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from denoiser.outfiles import missing_folders, remove_empty_folders

from .errors import KitError
from .kits import KIT_RATE, Instrument, Kit, Layer, load_kit
from .manifest import staged_output

HYDROGEN_NS = "http://www.hydrogen-music.org/drumkit"
FLAC_BITS = {16: "PCM_16", 24: "PCM_24"}


@dataclass(frozen=True)
class PackedKit:
    """What ``pack_kit`` wrote: where, how many layers of how many, and its size."""

    name: str
    path: Path
    layers: int
    original_layers: int
    bytes: int


def thin_layers(layers: Sequence[Layer], max_layers: int | None) -> list[tuple[Layer, float, float]]:
    """At most ``max_layers`` layers with the velocity range each now covers.

    The layers (sorted by velocity range) are cut into ``max_layers`` runs of neighbours;
    each run keeps its loudest layer, which takes over the whole run's range, so every
    velocity the kit answered still has a layer, and the instrument's loudest sample (the
    one its category is guessed from when its name says nothing) always stays."""
    if max_layers is not None and max_layers < 1:
        raise KitError(f"--max-layers must be at least 1, not {max_layers}")
    ordered = sorted(layers, key=lambda layer: (layer.low, layer.high))
    if max_layers is None or len(ordered) <= max_layers:
        return [(layer, layer.low, layer.high) for layer in ordered]
    runs = np.array_split(np.arange(len(ordered)), max_layers)
    kept = []
    for run in runs:
        members = [ordered[i] for i in run]
        loudest = max(members, key=lambda layer: layer.peak)
        kept.append((loudest, min(m.low for m in members), max(m.high for m in members)))
    return kept


def _write_layer(folder: Path, filename: str, samples: np.ndarray, bits: int) -> float:
    """Write one mono layer as FLAC; return the gain that restores its level (samples
    louder than full scale are stored scaled down)."""
    peak = float(np.max(np.abs(samples)))
    gain = peak if peak > 1.0 else 1.0
    sf.write(str(folder / filename), samples / np.float32(gain), KIT_RATE,
             subtype=FLAC_BITS[bits], format="FLAC")
    return gain


def _instrument_xml(parent: ET.Element, index: int, instrument: Instrument, folder: Path,
                    max_layers: int | None, bits: int) -> int:
    element = ET.SubElement(parent, "instrument")
    ET.SubElement(element, "id").text = str(index)
    ET.SubElement(element, "name").text = _xml_text(instrument.name)
    component = ET.SubElement(element, "instrumentComponent")
    ET.SubElement(component, "component_id").text = "0"
    kept = thin_layers(instrument.layers, max_layers)
    for number, (layer, low, high) in enumerate(kept):
        # The source's stem stays in the name: a kit whose instrument names say nothing is
        # classified by its file names (training.kits.classify_name); digits add no words.
        # ASCII: a Latin-1 name read on a UTF-8 system cannot be written by name
        stem = re.sub(r"[^\w.-]+", "_", os.fsencode(Path(layer.source).stem)
                      .decode("ascii", "replace"), flags=re.ASCII)
        filename = f"{index:03d}-{number:02d}-{stem}.flac"
        gain = _write_layer(folder, filename, layer.samples, bits)
        node = ET.SubElement(component, "layer")
        ET.SubElement(node, "filename").text = filename
        ET.SubElement(node, "min").text = f"{low:.6f}"
        ET.SubElement(node, "max").text = f"{high:.6f}"
        ET.SubElement(node, "gain").text = f"{gain:.9g}"
    return len(kept)


def _xml_text(name: str) -> str:
    """``name`` as XML can hold it: a file name that is not UTF-8 (an old archive's Latin-1,
    read with surrogate escapes) is read as Latin-1, which it most likely was."""
    if any("\udc80" <= char <= "\udcff" for char in name):
        return name.encode("utf-8", "surrogateescape").decode("latin-1")
    return name


def _same_instruments(original: Kit, packed: Kit) -> None:
    before = [(_xml_text(inst.name), inst.category) for inst in original.instruments]
    after = [(inst.name, inst.category) for inst in packed.instruments]
    if before != after:
        changed = sorted(set(before) ^ set(after))
        raise KitError(f"{original.path}: the packed kit would read differently ({changed[:3]}); "
                       "try more layers")


def packed_folder_name(source: str | Path) -> str:
    """The folder a kit is packed into: its own folder's name (``source`` is the kit
    folder or its drumkit.xml)."""
    path = Path(source).expanduser().resolve()
    return path.parent.name if path.is_file() else path.name


def pack_kit(source: str | Path, out_dir: str | Path, max_layers: int | None = None,
             bits: int = 16) -> PackedKit:
    """Write a compact copy of the kit at ``source`` into ``out_dir/<kit folder name>``.

    Written into a temporary folder beside it and renamed into place once it has been
    loaded back and checked, so a failure leaves no half-written kit; an existing kit of
    that name is never replaced."""
    if bits not in FLAC_BITS:
        raise KitError(f"FLAC bits must be 16 or 24, not {bits}")
    out_dir = Path(out_dir)
    target = out_dir / packed_folder_name(source)
    if target.exists():
        raise KitError(f"{target}: already exists; pack into another folder")
    kit = load_kit(source)
    with staged_output(target) as staging:
        root = ET.Element("drumkit_info", xmlns=HYDROGEN_NS)
        ET.SubElement(root, "name").text = _xml_text(kit.name)
        ET.SubElement(root, "info").text = (f"Packed by debleed from {_xml_text(kit.path.name)}: "
                                            f"mono {KIT_RATE} Hz FLAC, tails trimmed.")
        instruments = ET.SubElement(root, "instrumentList")
        layers = sum(_instrument_xml(instruments, index, instrument, staging, max_layers, bits)
                     for index, instrument in enumerate(kit.instruments))
        ET.indent(root)
        (staging / "drumkit.xml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                                             + ET.tostring(root, encoding="unicode") + "\n",
                                             encoding="utf-8")
        _same_instruments(kit, load_kit(staging))
    size = sum(p.stat().st_size for p in target.iterdir())
    original = sum(len(inst.layers) for inst in kit.instruments)
    return PackedKit(kit.name, target, layers, original, size)


def pack_kits(sources: Sequence[str | Path], out_dir: str | Path, max_layers: int | None = None,
              bits: int = 16) -> list[PackedKit]:
    """``pack_kit`` for each of ``sources``, all or nothing: a kit that fails removes the
    kits packed before it (and ``out_dir`` with the parents this call created)."""
    out_dir = Path(out_dir)
    for source in sources:  # a copy inside a one-shot folder makes it read as a Hydrogen kit
        if out_dir.resolve().is_relative_to(Path(source).resolve()):
            raise KitError(f"{out_dir}: inside the kit {source}; pack into another folder")
    names = [packed_folder_name(source) for source in sources]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise KitError(f"two kits would be packed to the same folder: {', '.join(clashes)}")
    taken = [out_dir / name for name in names if (out_dir / name).exists()]
    if taken:
        raise KitError(f"{taken[0]}: already exists; pack into another folder")
    created = missing_folders(out_dir)
    packed: list[PackedKit] = []
    try:
        for source in sources:
            packed.append(pack_kit(source, out_dir, max_layers, bits))
    except BaseException:
        for kit in packed:
            shutil.rmtree(kit.path, ignore_errors=True)
        if created:  # with what the failed kit left, then the parents made for it
            shutil.rmtree(out_dir, ignore_errors=True)
            remove_empty_folders(created)
        raise
    return packed

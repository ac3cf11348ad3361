"""Packed kits: compact FLAC copies that load and render like the originals."""

from __future__ import annotations

import numpy as np
import pytest

from training.errors import KitError
from training.kitpack import pack_kit, pack_kits, thin_layers
from training.kits import load_kit
from training.oneshots import write_synthetic_kit
from training.synth import SynthConfig, render_clip

SHORT = SynthConfig(clip_seconds=2.0, preroll_seconds=1.0)


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - other) ** 2)))


@pytest.fixture(scope="module")
def stereo_kit(tmp_path_factory):
    """Stereo 44.1 kHz WAVs with five velocity layers: packing has to mix down, resample
    and, when asked, thin."""
    return write_synthetic_kit(tmp_path_factory.mktemp("src") / "stereo", sample_rate=44100,
                               channels=2, velocities=(0.2, 0.4, 0.6, 0.8, 1.0))


def test_a_packed_kit_loads_and_renders_like_the_original(stereo_kit, tmp_path):
    packed = pack_kit(stereo_kit, tmp_path / "packed")
    original, copy = load_kit(stereo_kit), load_kit(packed.path)
    assert packed.path == tmp_path / "packed" / "stereo" and copy.name == original.name
    assert [(i.name, i.category) for i in copy.instruments] == \
        [(i.name, i.category) for i in original.instruments]
    for before, after in zip(original.instruments, copy.instruments):
        assert [v for l in after.layers for v in (l.low, l.high)] == \
            pytest.approx([v for l in before.layers for v in (l.low, l.high)])
    assert packed.layers == packed.original_layers == sum(len(i.layers) for i in original.instruments)
    source_bytes = sum(p.stat().st_size for p in stereo_kit.iterdir())
    assert packed.bytes < source_bytes / 3  # mono, trimmed, FLAC
    # The same clips to within -50 dB (a wrong layer or a misplaced sample would differ by
    # about 0 dB); what differs is the loader's 10-ms tail fade, applied once more to the
    # already trimmed samples, at -70 dB re their peak, and 16-bit quantisation.
    wide = load_kit(pack_kit(stereo_kit, tmp_path / "wide", bits=24).path)
    for seed in range(3):
        a, b, c = (render_clip(kit, seed, SHORT) for kit in (original, copy, wide))
        assert snr_db(a.noisy, b.noisy) > 50 and snr_db(a.clean, b.clean) > 50
        assert snr_db(a.noisy, c.noisy) > 50


def test_thinning_keeps_every_velocity_answered_and_the_loudest_layer(stereo_kit, tmp_path):
    original = load_kit(stereo_kit)
    packed = pack_kit(stereo_kit, tmp_path, max_layers=2)
    copy = load_kit(packed.path)
    assert packed.layers == 2 * len(original.instruments) < packed.original_layers
    for before, after in zip(original.instruments, copy.instruments):
        assert len(after.layers) == 2
        assert after.layers[0].low == pytest.approx(0.0) and after.layers[-1].high == pytest.approx(1.0)
        assert after.layers[0].high == pytest.approx(after.layers[1].low)
        assert max(l.peak for l in after.layers) == pytest.approx(max(l.peak for l in before.layers),
                                                                 rel=1e-3)
    layers = original.instruments[0].layers
    assert [(low, high) for _, low, high in thin_layers(layers, 5)] == \
        [(l.low, l.high) for l in layers]
    with pytest.raises(KitError):
        thin_layers(layers, 0)


def test_the_test_kit_keeps_its_name_and_stays_refused(tmp_path):
    source = write_synthetic_kit(tmp_path / "src" / "pearl", name="The Black Pearl 1.0")
    packed = pack_kit(source, tmp_path / "packed")
    assert load_kit(packed.path).is_test_kit


def test_packing_is_all_or_nothing(synthetic_kit_dir, tmp_path):
    no_snare = tmp_path / "src" / "hats"
    no_snare.mkdir(parents=True)
    (no_snare / "hihat.wav").write_bytes((synthetic_kit_dir / "hat_closed_1.wav").read_bytes())
    out = tmp_path / "out"
    with pytest.raises(KitError):
        pack_kits([synthetic_kit_dir, no_snare], out)
    assert not out.exists()
    with pytest.raises(KitError):  # the parents made for --out go too
        pack_kits([synthetic_kit_dir, no_snare], tmp_path / "new" / "deeper" / "kits")
    assert not (tmp_path / "new").exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(KitError):
        pack_kits([synthetic_kit_dir, no_snare], out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    pack_kits([synthetic_kit_dir], out)
    with pytest.raises(KitError, match="already exists"):
        pack_kits([synthetic_kit_dir], out)
    with pytest.raises(KitError, match="same folder"):
        pack_kits([synthetic_kit_dir, synthetic_kit_dir / "drumkit.xml"], tmp_path / "other")
    with pytest.raises(KitError, match="bits"):
        pack_kit(synthetic_kit_dir, tmp_path / "third", bits=8)
    assert not (tmp_path / "other").exists() and not (tmp_path / "third").exists()



def test_one_shots_named_in_latin_1_are_packed_under_ascii_names(tmp_path):
    """A name read on a UTF-8 system from an old archive (caisse claire \xe9) loads, and
    packing it raised a UnicodeEncodeError traceback: the packed name is made ASCII."""
    import os

    import soundfile as sf

    folder = tmp_path / "oneshots"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in (b"snare_caisse_claire_\xe9.wav", b"kick.wav", b"hihat.wav"):
        noise = rng.standard_normal(4800) * np.exp(-np.arange(4800) / 800)
        sf.write(folder / "tmp.wav", (0.5 * noise).astype(np.float32), 48_000)
        os.rename(folder / "tmp.wav", os.fsencode(folder) + b"/" + name)  # not UTF-8
    packed = pack_kit(folder, tmp_path / "out").path
    names = [path.name for path in packed.iterdir()]
    assert all(name.isascii() for name in names) and any("caisse_claire_" in n for n in names)
    assert [i.category for i in load_kit(packed).instruments] == [
        i.category for i in load_kit(folder).instruments]


def test_a_kit_is_never_packed_into_itself(synthetic_kit_dir):
    """A packed copy inside a one-shot folder made it read as a folder of Hydrogen kits,
    which synth then refused: the user's kit was unusable until they found the copy."""
    before = sorted(p.name for p in synthetic_kit_dir.iterdir())
    for out in (synthetic_kit_dir, synthetic_kit_dir / "packed"):
        with pytest.raises(KitError, match="inside the kit"):
            pack_kits([synthetic_kit_dir], out)
    assert sorted(p.name for p in synthetic_kit_dir.iterdir()) == before

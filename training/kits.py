"""Drum sample kits: Hydrogen ``drumkit.xml`` kits and plain folders of one-shots.

Everything is converted once, at load time, to what the synthesiser needs: mono float32
at 48 kHz (the snare close mic is mono; soxr for the rate change), velocity layers with
their Hydrogen velocity ranges, and a *category* per instrument (snare, rimshot, kick,
hi-hat...) so grooves can ask for "the ride" whatever the kit calls it. Kits are small
(tens of MB), so loaded kits are cached per path and modification time.

Hydrogen has two drumkit.xml dialects: the modern one (namespaced, ``<layer>`` elements,
possibly inside ``<instrumentComponent>``) and the old one (one ``<filename>`` per
instrument). Both are read. A multi-mic kit (several ``<drumkitComponent>``s: close,
overhead...) is read through one component, the close one by name (see ``_kit_component``).
Empty slots (no file, or Hydrogen's ``emptySample`` placeholder) are skipped; any other
missing or unreadable file is a ``KitError``. A layer's ``<pitch>`` plus its instrument's
``<pitchOffset>`` (semitones) is applied at load time, as Hydrogen would play it: kits
reuse one tom sample at several pitches for their different toms.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soxr

from denoiser.audio import read_audio
from denoiser.errors import AudioError

from .errors import DatasetError, KitError
from .snaremic import pitch_shift

KIT_RATE = 48000
AUDIO_SUFFIXES = (".wav", ".bwf", ".rf64", ".w64", ".flac", ".aif", ".aiff", ".aifc",
                  ".ogg")
SNARE_CATEGORIES = ("snare", "rimshot", "sidestick")
CATEGORIES = (
    "snare", "rimshot", "sidestick", "kick", "hihat_closed", "hihat_open", "hihat_pedal",
    "ride", "crash", "china", "tom", "other",
)
SILENCE_PEAK = 1e-5
TEST_KIT_NAMES = ("The Black Pearl 1.0",)
# A one-shot's hit sounds from its first sample this close to its peak (``attack_sample``).
ATTACK_DB = -30.0


def attack_sample(samples: np.ndarray, threshold_db: float = ATTACK_DB) -> int:
    """Where the hit of a one-shot sounds: its first sample within ``threshold_db`` of its
    peak (0 for a silent one).

    Files start with silence, noise or a faint lead-in before their hit (rumpf_kit_z01_h2's
    snares up to 19 ms, a kick 49 ms; ForzeeStereo's snares 6.6 ms, its kick 12 ms), and meta.json's onsets
    mark the hit, which the metrics' windows open 2 ms ahead of. From the -30 dB point, no
    snare, kick or tom layer of the nine acoustic Hydrogen kits has more than 0.03 % (-37 dB)
    of its window's energy ahead of the window; from -20 dB a soft first stroke fell ahead
    of a few (up to -8 dB). Lower, the onset moves onto what some files hold before their
    hit at -35 to -60 dB (ForzeeStereo's cymbals, rumpf's slices cut from loops)."""
    magnitude = np.abs(samples)
    peak = float(np.max(magnitude, initial=0.0))
    return int(np.argmax(magnitude >= peak * 10 ** (threshold_db / 20))) if peak > 0 else 0


@dataclass(frozen=True)
class Layer:
    """One velocity layer: a mono 48 kHz one-shot used for velocities in [low, high] (0-1),
    its peak, and ``lead``, the samples before its hit sounds (``attack_sample``)."""

    samples: np.ndarray
    low: float
    high: float
    source: str
    peak: float = field(init=False)
    lead: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak", float(np.max(np.abs(self.samples))))
        object.__setattr__(self, "lead", attack_sample(self.samples))


@dataclass(frozen=True, eq=False)
class Instrument:
    """A kit piece with its velocity layers and its category (see ``CATEGORIES``)."""

    name: str
    category: str
    layers: tuple[Layer, ...]
    centroid_hz: float
    guessed: bool = False  # category from spectral features, not from a name

    @functools.cached_property
    def ranges(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([layer.low for layer in self.layers]),
                np.array([layer.high for layer in self.layers]))

    def pick_layer(self, velocity: float, rng: np.random.Generator) -> int:
        """Index of the layer for ``velocity`` (0-1): among the layers whose range holds
        it, the innermost (a range holding another one's is passed over), and a random one
        among those left; else the nearest range.

        Nested ranges (Millo_MultiLayered2's [0, 0.3], [0, 0.5], [0, 0.7], [0, 1]) mean
        "softest layer that reaches this velocity": Hydrogen plays the first range that
        holds it, which there is the innermost, and a random pick played the hardest
        cymbal for a soft touch. Identical ranges are round-robin sets, and ranges that
        only touch at their ends (most kits' rounding) stay a random pick as before."""
        lows, highs = self.ranges
        inside = np.flatnonzero((lows <= velocity) & (velocity <= highs))
        if inside.size > 1:
            lo, hi = lows[inside], highs[inside]
            holds_other = ((lo[:, None] <= lo[None, :]) & (hi[None, :] <= hi[:, None])
                           & ((lo[:, None] != lo[None, :]) | (hi[:, None] != hi[None, :])))
            inside = inside[~holds_other.any(axis=1)]
        if inside.size:
            return int(inside[rng.integers(inside.size)])
        distance = np.minimum(np.abs(lows - velocity), np.abs(highs - velocity))
        return int(np.argmin(distance))


@dataclass(frozen=True)
class Kit:
    """A loaded kit: instruments at ``KIT_RATE``, mono."""

    name: str
    path: Path
    instruments: tuple[Instrument, ...]
    sample_rate: int = KIT_RATE

    def by_category(self, category: str) -> list[Instrument]:
        return [inst for inst in self.instruments if inst.category == category]

    @property
    def is_test_kit(self) -> bool:
        """The public test kit must never be trained or tuned on (SPEC 4)."""
        return self.name in TEST_KIT_NAMES or self.path.name in TEST_KIT_NAMES


def refuse_test_kits(kits: Sequence[Kit], hint: str = "") -> None:
    """Refuse the public test kit among ``kits`` (SPEC 4: never train or tune on it), for
    every path that renders training clips from kits; ``hint`` ends the message."""
    test_kits = [kit.name for kit in kits if kit.is_test_kit]
    if test_kits:
        raise DatasetError(f"kit {test_kits[0]!r} is the public test kit: never train on it{hint}")


# --- classification -------------------------------------------------------------------

_HAT_OPEN = ("open", "semi", "half", "swish")
_HAT_OPEN_TOKENS = {"oh", "op"}  # whole words only: "op" is not in "top" or "stop"
_HAT_PEDAL = ("pedal", "foot", "chick")
# Percussion extras, matched against whole words: compounds ("woodblock", "handclap") and
# plurals count, but "Snare Snappy" and "Blocked Snare" are snares, not a snap or a block.
_PERCUSSION = re.compile(
    r"[a-z]*(?:cowbell|clap|block|snap|shaker|whistle|triangle)s?|(?:tamb|timbal|vibra)[a-z]*"
    r"|(?:agogo|conga|bongo|clave|cabasa|maraca|guiro|cuica)s?")
_RIMSHOT = re.compile(r"rim[\s_\-]?shot")
_SIDESTICK = re.compile(r"(?:side|cross)[\s_\-]?stick|rim[\s_\-]?click")
_KICK = re.compile(r"kick|bass[\s_\-]?drum")
_TOM = re.compile(r"(?<!cus|bot)tom|floor")  # "HiTom", "Tom1", not "Custom" or "Bottom"
_CYMBAL = re.compile(r"ride|bell|cup|crash|splash|cymbal|cym")


def _stroke(low: str, tokens: set[str], snare: bool) -> str | None:
    """The snare stroke a name gives ("rimshot", "sidestick"), or None. A bare "rim" is a
    rimshot on a named snare ("Snare Rim") and a side stick otherwise ("stick-rim")."""
    if _RIMSHOT.search(low):
        return "rimshot"
    if _SIDESTICK.search(low) or tokens & {"stick", "sticks"}:
        return "sidestick"
    if "rim" in tokens:
        return "rimshot" if snare else "sidestick"
    return None


def classify_name(text: str) -> str | None:
    """Category from an instrument (or file) name, or None when the name says nothing.

    Order matters: "China" before cymbals, "cowbell" before "bell", a named snare before
    anything else drum-like, its stroke (rimshot, side stick) before the plain snare. Without
    "snare" a tom or kick wins over a stroke word: "floor_tom_rimshot" and "Tom Rim" are
    toms (a rimshot is a snare category, so a tom there would play as the snare). A bare
    "OH" is an open hi-hat only where no drum or cymbal is named: multi-mic packs call the
    overhead mic "OH", and "Tom_OH" and "Crash_OH" are a tom and a crash.
    """
    low = text.lower()
    tokens = set(re.findall(r"[a-z]+", low))
    if "china" in low:
        return "china"
    # CamelCase parts too: "ClapHi" and "CowbellHigh" name a clap and a cowbell.
    camel = {part.lower() for part in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", text)}
    if any(_PERCUSSION.fullmatch(token) for token in tokens | camel):
        return "other"
    if "snare" in low or tokens & {"sd", "sn", "snr"}:
        return _stroke(low, tokens, snare=True) or "snare"
    is_kick = bool(_KICK.search(low)) or bool(tokens & {"bd", "kik", "bassdrum"})
    stroke = _stroke(low, tokens, snare=False)
    if stroke and not (is_kick or _TOM.search(low)):
        return stroke
    if is_kick:
        return "kick"
    hat_tokens = {"hh", "hihat", "ch", "ph"}
    if not (_TOM.search(low) or _CYMBAL.search(low) or tokens & {"cy", "cr"}):
        hat_tokens.add("oh")
    if re.search(r"hi-?hat|hat", low) or tokens & hat_tokens:
        if any(word in low for word in _HAT_OPEN) or tokens & _HAT_OPEN_TOKENS:
            return "hihat_open"
        if any(word in low for word in _HAT_PEDAL) or "ph" in tokens:
            return "hihat_pedal"
        return "hihat_closed"
    if re.search(r"ride|bell|cup", low):
        return "ride"
    if re.search(r"crash|splash|cymbal|cym", low) or tokens & {"cy", "cr"}:
        return "crash"
    if _TOM.search(low):
        return "tom"
    return None


def spectral_features(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Centroid, low-frequency share, spectral flatness and decay time of a one-shot.

    These separate drum families well enough for kits whose names say nothing:
    kicks are low and short, cymbals bright, noisy and long, toms tonal and mid-low,
    snares mid-bright and noisy.
    """
    head = samples[: int(0.25 * sample_rate)]
    power = np.abs(np.fft.rfft(head * np.hanning(head.size), n=1 << 15)) ** 2 + 1e-20
    freqs = np.fft.rfftfreq(1 << 15, 1.0 / sample_rate)
    centroid = float(np.sum(freqs * power) / np.sum(power))
    low_share = float(np.sum(power[freqs < 150]) / np.sum(power))
    band = power[(freqs > 200) & (freqs < 16000)]
    flatness = float(np.exp(np.mean(np.log(band))) / np.mean(band))
    hop = int(0.01 * sample_rate)
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    envelope = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20) if frames.size else np.zeros(1)
    peak_frame = int(np.argmax(envelope))
    below = np.flatnonzero(envelope[peak_frame:] < envelope[peak_frame] - 30)
    decay = (below[0] if below.size else envelope.size - peak_frame) * hop / sample_rate
    return {"centroid_hz": centroid, "low_share": low_share, "flatness": flatness,
            "decay_s": float(decay)}


def classify_features(features: dict[str, float]) -> str:
    """Conservative spectral guess; doubtful sounds become "other" (used only as bleed)."""
    centroid, decay = features["centroid_hz"], features["decay_s"]
    if features["low_share"] > 0.35 and centroid < 600:
        return "kick"
    if centroid > 4000 and features["flatness"] > 0.1:
        if decay > 1.2:
            return "crash"
        return "hihat_open" if decay > 0.35 else "hihat_closed"
    if centroid < 1200 and features["flatness"] < 0.05 and decay > 0.15:
        return "tom"
    if 1000 <= centroid <= 4500 and features["flatness"] > 0.05 and decay < 0.8:
        return "snare"
    return "other"


# --- loading ---------------------------------------------------------------------------

def _load_sample(path: Path) -> np.ndarray:
    """Mono float32 at KIT_RATE; stereo kits are averaged (the snare mic is one mic)."""
    try:
        audio = read_audio(path)
    except AudioError as exc:
        raise KitError(f"kit sample {exc}") from None
    mono = audio.samples.mean(axis=0)
    if audio.sample_rate != KIT_RATE:
        mono = soxr.resample(mono, audio.sample_rate, KIT_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def trim_tail(samples: np.ndarray, floor_db: float = -70.0, fade_s: float = 0.01) -> np.ndarray:
    """Cut a one-shot where its 10 ms RMS falls for good below ``floor_db`` re its peak,
    then fade out over ``fade_s``. Stock samples often carry seconds of hum or hiss after
    the decay, or stop abruptly; summed over a groove that would put a constant noise
    floor into the clean target and clicks at every sample end."""
    hop = int(0.01 * KIT_RATE)
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    if frames.shape[0] == 0:
        return samples
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-30)
    loud = np.flatnonzero(level > level.max() + floor_db)
    end = min(samples.size, (int(loud[-1]) + 2) * hop) if loud.size else samples.size
    out = samples[:end].copy()
    fade = min(int(fade_s * KIT_RATE), end // 4)
    if fade > 0:
        out[-fade:] *= np.cos(np.linspace(0.0, np.pi / 2, fade, dtype=np.float32)) ** 2
    return out


def _strip_namespaces(root: ET.Element) -> None:
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]


def _float(element: ET.Element, tag: str, default: float, where: str) -> float:
    text = element.findtext(tag)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # <pitch>inf</pitch> resampled for ever
        raise KitError(f"{where}: <{tag}> is not a number: {text!r}")
    return value


def _is_placeholder(filename: str) -> bool:
    return not filename.strip() or Path(filename).stem.lower() == "emptysample"


@dataclass(frozen=True)
class LayerSpec:
    """Where a layer comes from: its file, velocity range (0-1), gain and pitch
    (semitones, Hydrogen's direction: +12 plays an octave up, in half the time)."""

    path: Path
    low: float
    high: float
    gain: float = 1.0
    pitch: float = 0.0


def _make_instrument(name: str, layer_specs: Sequence[LayerSpec]) -> Instrument | None:
    """Load the layers, drop silent ones, classify. A missing file is an error, except for
    percussion extras ("other": cowbell, clap...) that the snare-mic model can do without;
    those are skipped with a warning (a stock kit ships without its cowbell sample)."""
    layers = []
    for spec in layer_specs:
        if not spec.path.is_file():
            if classify_name(name) == "other":
                warnings.warn(f"{spec.path}: missing sample of {name!r} skipped", stacklevel=2)
                continue
            raise KitError(f"{spec.path}: sample file named in the kit is missing")
        pitched = pitch_shift(_load_sample(spec.path), spec.pitch, KIT_RATE)
        samples = trim_tail(pitched * np.float32(spec.gain))
        if np.max(np.abs(samples)) > SILENCE_PEAK:
            layers.append(Layer(samples, min(spec.low, spec.high), max(spec.low, spec.high),
                                spec.path.name))
    if not layers:
        return None
    loudest = max(layers, key=lambda layer: layer.peak)
    features = spectral_features(loudest.samples, KIT_RATE)
    named = (classify_name(name)
             or classify_name(" ".join(Path(layer.source).stem for layer in layers)))
    category = named or classify_features(features)
    layers.sort(key=lambda layer: (layer.low, layer.high))
    return Instrument(name, category, tuple(layers), features["centroid_hz"], named is None)


# Words naming a close mic, best first: a multi-mic kit is read through the component
# whose name has the earliest of them ("Snare Top" before "Snare Bottom"), else its first.
_CLOSE_MIC_WORDS = ("close", "direct", "main", "top", "snare")


def _mic_rank(name: str) -> int:
    words = set(re.findall(r"[a-z]+", name.lower()))
    return next((rank for rank, word in enumerate(_CLOSE_MIC_WORDS) if word in words),
                len(_CLOSE_MIC_WORDS))


def _kit_component(root: ET.Element, xml_path: Path) -> str | None:
    """The id of the one mic component read from the kit, or None without <componentList>.

    Hydrogen plays every component of an instrument at once (close and overhead mics
    together); read as round-robin layers, half the hard snare hits took the overhead
    sample into the clean target. So one component is used, close-sounding by name (see
    ``_CLOSE_MIC_WORDS``), with a warning naming it when the kit has several."""
    components = [((node.findtext("id") or "").strip(), (node.findtext("name") or "").strip())
                  for node in root.iterfind("componentList/drumkitComponent")]
    if not components:
        return None
    chosen_id, chosen_name = min(components, key=lambda component: _mic_rank(component[1]))
    if len(components) > 1:
        names = ", ".join(repr(name) for _, name in components)
        warnings.warn(f"{xml_path}: kit has {len(components)} mic components ({names}); "
                      f"only {chosen_name!r} is used", stacklevel=2)
    return chosen_id


def _component_layers(element: ET.Element, component_id: str | None) -> list[ET.Element]:
    """An instrument's ``<layer>``s in the kit's chosen component. An instrument that this
    mic has no samples of (or any in a kit without <componentList>) reads its first
    component; old kits put the layers straight in ``<instrument>``."""
    parts = [part for part in element.findall("instrumentComponent")
             if part.find("layer") is not None]
    if not parts:
        return element.findall("layer")
    chosen = [part for part in parts
              if (part.findtext("component_id") or "").strip() == component_id]
    return (chosen or parts)[0].findall("layer")


def _layer_specs(element: ET.Element, folder: Path, where: str,
                 component_id: str | None) -> list[LayerSpec]:
    """The instrument's layers (its ``<pitchOffset>`` added to each layer's pitch), or the
    old dialect's single ``<filename>``; Hydrogen's empty slots are skipped."""
    offset = _float(element, "pitchOffset", 0.0, where)
    specs = []
    for layer in _component_layers(element, component_id):
        filename = layer.findtext("filename") or ""
        if _is_placeholder(filename):
            continue
        specs.append(LayerSpec(folder / filename.strip(), _float(layer, "min", 0.0, where),
                               _float(layer, "max", 1.0, where),
                               _float(layer, "gain", 1.0, where),
                               offset + _float(layer, "pitch", 0.0, where)))
    old_style = element.findtext("filename")
    if not specs and old_style and not _is_placeholder(old_style):
        specs.append(LayerSpec(folder / old_style.strip(), 0.0, 1.0, pitch=offset))
    return specs


def _load_hydrogen(xml_path: Path) -> Kit:
    folder = xml_path.parent
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, LookupError, ValueError) as exc:  # also an encoding Python lacks
        raise KitError(f"{xml_path}: malformed drumkit.xml ({exc}); re-save it as UTF-8 if "
                       "its encoding is named") from None
    _strip_namespaces(root)
    if root.tag != "drumkit_info":
        raise KitError(f"{xml_path}: not a Hydrogen drumkit (root <{root.tag}>)")
    instrument_list = root.find("instrumentList")
    if instrument_list is None:
        raise KitError(f"{xml_path}: drumkit.xml has no <instrumentList>")
    component_id = _kit_component(root, xml_path)
    instruments = []
    for index, element in enumerate(instrument_list.findall("instrument")):
        name = (element.findtext("name") or f"instrument {index}").strip()
        specs = _layer_specs(element, folder, f"{xml_path}: instrument {name!r}", component_id)
        instrument = _make_instrument(name, specs)
        if instrument is not None:
            instruments.append(instrument)
    name = (root.findtext("name") or folder.name).strip()
    return _finish(Kit(name, folder, tuple(instruments)))


# A layer suffix: a dynamics word after a separator ("snare_soft", "kick-ff"; without the
# separator "Floor Tom" would lose its "m"), or a number ("snare-2", "kick1").
_LAYER_SUFFIX = re.compile(
    r"[\s_\-.]+(?:soft(?:est)?|med(?:ium)?|hard(?:est)?|loud|ghost|[pfm]+)$|[\s_\-.]*\d+$",
    re.IGNORECASE)
# Pieces that kits number as distinct drums: tom1, tom2 are two toms, not two layers.
_NUMBERED_PIECE = re.compile(r"(tom|crash|ride|china|splash|cym(?:bal)?)[\s_\-.]*\d+$",
                             re.IGNORECASE)


# Mic positions in one-shot names, closest first, "" for a name without one: a multi-mic
# sample pack names each drum's samples "Snare_Top_01", "Snare_OH_01", "Snare_Room_01",
# and a kick's "Kick In" and "Kick Out" (or "Kick/Inside/", "Kick/Outside/"). A snare mic
# hears the kick through its shell and front head, as the outside mic does, not at the
# beater inside it; a sub-kick mic, like a snare's bottom one, hears only part of the drum.
_SHOT_MICS = (("close", "direct", "main", "top"), ("out", "outside"), ("in", "inside"), ("",),
              ("bottom", "btm", "sub"), ("oh", "overhead", "overheads", "ovh"),
              ("room", "rooms", "amb", "ambience", "ambient", "far"))
_SHOT_MIC_WORD = re.compile(
    r"[\s_\-.]*(?<![a-z])(" + "|".join(word for words in _SHOT_MICS for word in words if word)
    + r")(?![a-z])", re.IGNORECASE)
# What comes before an "in" or "out" that names no mic: a drum's size in inches makes
# "in" a size, a number right before it ("Floor Tom 16in", "Tom 8in") or one of two
# digits, 10 to 99, whatever separates them ("Floor_Tom_16_in", "Kick-22-in",
# "Tom.12.in"); a fill's or a fade's "in" and "out" name the part ("Fill In", "Crash Fade
# In", "Crash Fade Out"). A single digit or a 0-led number apart from it may be a size
# ("Tom 8 in", "Tom_6_in") or a layer's or a piece's ("Kick_1_In", "Tom2_In",
# "Kick_01_In"): there "in" is the mic only in a kit whose other names use mic words
# (``_split_mic``'s ``mic_kit``: "Kick_1_In" beside "Kick_1_Out"), and not even there
# where another mic word follows it: a one-shot has one mic, so "Tom 8 in_OH" and "Snare
# 14x6.5 in_Bottom" name a size (``_AFTER_A_NUMBER``). Separators are many or none: a
# fixed-width lookbehind in ``_SHOT_MIC_WORD`` only knew a space or none.
_SIZE = r"\d$|(?<!\d)[1-9]\d[\s_\-.]+$"
_AFTER_A_NUMBER = re.compile(r"\d[\s_\-.]*$")
_FILL_OR_FADE = r"(?<![a-z])(?:fill|fade)[\s_\-.]*$"
_NOT_A_MIC = {"in": re.compile(f"{_SIZE}|{_FILL_OR_FADE}", re.IGNORECASE),
              "out": re.compile(_FILL_OR_FADE, re.IGNORECASE)}
# Mic words that beside a hi-hat name its articulation or its top cymbal: "HH_Close" is a
# closed hi-hat, "HH_OH" an open one, unless the kit names its mics elsewhere (``_split_mic``).
_HAT_WORDS = frozenset(("close", "oh", "top"))
# The mic words that make a kit a multi-mic one, where a hi-hat's "close", "OH" and "top"
# are mics: each beside anything but a hi-hat ("Kick_Close", "Snare_Top"), except "OH"
# itself and "main", which also names a main ride.
_MIC_KIT_WORDS = frozenset(word for words in _SHOT_MICS for word in words) - {
    "", "oh", "main"}


def _names_mics(folder: Path, files: list[Path]) -> bool:
    """Whether the one-shots in ``folder`` name their mics (``_split_mic``'s ``mic_kit``):
    one names a ``_MIC_KIT_WORDS`` mic, or, read as mics, one drum's files name its inside
    mic and its overhead ("Kick_1_In" beside "Kick_1_OH": left out, the kick's OH file
    became a kick of its own, played as if close-miked). Not an "In" and an "OH" of two
    pieces: "Tom 8 in" (a size) beside "Crash_OH" or "Tom 8 in_OH" names no mic."""
    if any(_read_shot(path, folder, False).mic in _MIC_KIT_WORDS for path in files):
        return True
    read = [_read_shot(path, folder, True) for path in files]
    pieces = {mic: {(shot.where, shot.name) for shot in read if shot.mic == mic}
              for mic in ("in", "oh")}
    return bool(pieces["in"] & pieces["oh"])


def _shot_mic_rank(mic: str) -> int:
    """How far the mic ``mic`` (a ``_SHOT_MICS`` word, "" for none) is: 0 for a close mic."""
    return next(rank for rank, words in enumerate(_SHOT_MICS) if mic in words)


def _is_mic(match: re.Match[str], mic_kit: bool) -> bool:
    """Whether a ``_SHOT_MIC_WORD`` match in a name names a mic: not the "in" of a size
    or the "in" or "out" of a fill or a fade (``_NOT_A_MIC``, read before the word), nor
    an "in" after a number outside a ``mic_kit`` or with a mic named after it (one-shots
    have one mic). Read as the mic, the size of a lone "Tom 8 in" made its folder a
    multi-mic kit, whose "HH_Close" and "HH_OH" were then one hi-hat, the open one lost."""
    word, name, start = match.group(1).lower(), match.string, match.start(1)
    not_a_mic = _NOT_A_MIC.get(word)
    if not_a_mic is not None and not_a_mic.search(name, 0, start):
        return False
    return not (word == "in" and _AFTER_A_NUMBER.search(name, 0, start)
                and (not mic_kit or any(_is_mic(later, mic_kit)
                                        for later in _SHOT_MIC_WORD.finditer(name, match.end()))))


def _mic_matches(name: str, mic_kit: bool) -> list[re.Match[str]]:
    """The mic-position words (``_SHOT_MICS``) in a one-shot name, with what separates
    each from the word before it."""
    return [match for match in _SHOT_MIC_WORD.finditer(name) if _is_mic(match, mic_kit)]


def _split_mic(name: str, where: str, mic_kit: bool) -> tuple[str, str, str]:
    """A one-shot's name (or a folder's, in the folders ``where``) less its mic-position
    word, that word in lower case ("" for none) and as spelled. Beside a hi-hat, read
    behind its folders where the name is only mic words ("Hats/OH"), "close", "OH" and
    "top" name the articulation or top cymbal ("HH_Close", "HH_OH"), as they do beside
    another mic word ("HH_OH_Room"), and the mic only in a kit whose names use other mic
    words (``mic_kit``: there "HiHat_OH" is a closed hi-hat heard from above); beside any
    other drum "OH" is its overhead ("Snare_OH", "Snare/OH"). An "in" after a single digit
    is the mic only in a ``mic_kit`` too ("Kick_1_In"), a size elsewhere ("Tom 8 in")."""
    matches = _mic_matches(name, mic_kit)
    words = found = {match.group(1).lower() for match in matches}
    beside = _in_context(_SHOT_MIC_WORD.sub(lambda m: "" if _is_mic(m, mic_kit) else m.group(0),
                                            name), where)
    if (classify_name(beside) or "").startswith("hihat"):
        words = found - _HAT_WORDS or (found if mic_kit else set())
    if not words:
        return name, "", ""
    mic = min(words, key=lambda word: (_shot_mic_rank(word), word))
    match = next(m for m in matches if m.group(1).lower() == mic)
    return (name[:match.start()] + name[match.end():]).strip(" _-."), mic, match.group(1)


def _instrument_name(stem: str) -> str:
    """The instrument a one-shot file belongs to: its stem less one layer suffix. A number
    after a tom or cymbal names a piece of its own (``tom1``, ``crash-2``); after anything
    else (snare, kick, hi-hat) it is a layer (``snare-2``), since fills must move across
    the toms rather than follow velocity within one."""
    if _NUMBERED_PIECE.search(stem):
        return stem
    return _LAYER_SUFFIX.sub("", stem) or stem


def visible_files(folder: Path, suffixes: Collection[str]) -> list[Path]:
    """The files under ``folder`` (recursively, sorted) whose name ends in one of
    ``suffixes`` (lower case), hidden ones and those in hidden folders left out: macOS
    leaves a ``._NAME`` AppleDouble companion (metadata) beside every file copied to exFAT
    or SMB, and read as audio or MIDI it refused the whole folder."""
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in suffixes
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts)
                  and path.is_file())  # a folder named like a file is searched, not read


@dataclass(frozen=True)
class _Shot:
    """A one-shot file of a folder kit, named by its path in the kit less its suffix and
    its mic word (``_split_mic``): ``where``, the folders ("" at the top), and ``name``,
    the file's name less a layer suffix (``_instrument_name``)."""

    path: Path
    where: str
    name: str
    mic: str      # the mic word in lower case, "" for none
    spelled: str  # the mic word as spelled


def _read_shot(path: Path, folder: Path, mic_kit: bool) -> _Shot:
    """A one-shot's names and mic: the mic word nearest the file, in its name or a
    folder's (``Snare/Snare_Top_01.wav``, ``Kick/Room/01.wav``; a folder named by the mic
    alone, ``Close/Snare_01.wav``, drops out of its path). A layer number may follow the
    mic word or come before it: ``Snare_Top_01``, ``Snare_01_Top``. A one-shot that would
    keep no letter in its path (``Room_01.wav``) keeps its mic word: it names no piece."""
    parts = [*path.relative_to(folder).parent.parts, _instrument_name(path.stem)]
    mic = spelled = ""
    for index in reversed(range(len(parts))):
        rest, word, as_spelled = _split_mic(parts[index], "/".join(parts[:index]), mic_kit)
        kept = [*parts[:index], rest, *parts[index + 1:]]
        if word and re.search(r"[a-z]", "".join(kept), re.IGNORECASE):
            parts, mic, spelled = kept, word, as_spelled
            break
    # the same mic named again by a folder above ("Snare/Snare OH/snare_oh_01.wav"): that
    # folder is the mic's too, or each mic's folder would make a piece of its own
    for index in range(len(parts) - 1) if mic else ():
        rest, word, _ = _split_mic(parts[index], "/".join(parts[:index]), mic_kit)
        if word == mic and rest:
            parts[index] = rest
    name = _instrument_name(parts[-1]) if mic and parts[-1] else parts[-1]
    return _Shot(path, "/".join(part for part in parts[:-1] if part), name, mic, spelled)


def _in_context(name: str, where: str) -> str:
    """A one-shot's name, behind its folders when it says nothing alone: ``Hats/Closed``."""
    if where and not (name and classify_name(name)):
        return f"{where}/{name}".rstrip("/")
    return name


def _is_bare(name: str) -> bool:
    """Whether a one-shot's name is a layer's only: a number or a dynamics word."""
    return not _LAYER_SUFFIX.sub("", f" {name}").strip()


# Pieces a kit has one of, so differently named one-shots of one of them in a folder are
# its layers ("Kick/kick_a.wav", "Kick/kick_b.wav"); a folder's toms, cymbals or
# percussion with different names are different drums ("Toms/Tom 1.wav", "Floor Tom.wav").
_ONE_PER_KIT = frozenset(("snare", "rimshot", "sidestick", "kick", "hihat_closed",
                          "hihat_open", "hihat_pedal"))


def _numbered_layer(stem: str, where: str) -> bool:
    """Whether a one-shot named ``stem`` in the folders ``where`` ends in a layer's number
    after a tom or cymbal word: "Crash/crash_01.wav" and "crash_02.wav" are one crash, "Tom
    Hi/tom_01.wav" and "Toms/Hi/tom_01.wav" one tom's layers. The number is a piece's, as at
    the top, in a folder named in the plural ("Toms/Tom 1.wav", "Tom 2.wav": two toms), and
    where the name spells its folder's and adds the drum that folder lacks: "Toms/Rack/Rack
    Tom 1.wav" and "Rack Tom 2.wav" were one rack tom with two layers. Only a number
    ``_instrument_name`` kept as a piece's is read so: one it left after taking a layer's
    off is the piece's own ("Crash/Crash_16_01.wav" and "Crash_18_01.wav" are two crashes,
    "Tom/tom1_01.wav" and "tom2_01.wav" two toms)."""
    match = _NUMBERED_PIECE.search(stem)
    if match is None or re.search(r"s[^a-z]*$", where, re.IGNORECASE):
        return False
    folder = set(re.findall(r"[a-z]+", where.rpartition("/")[2].lower()))
    spelled = set(re.findall(r"[a-z]+", stem[:match.start()].lower()))
    return not (folder and folder <= spelled and match.group(1).lower() not in folder)


def _holds_one_piece(shots: Sequence[_Shot]) -> bool:
    """Whether a subfolder's one-shots are layers of one piece: their names (less numbers,
    dynamics and mic words; names that are only those left out) agree, or name one piece
    a kit has one of (``_ONE_PER_KIT``), read behind the folder's name where they say
    nothing alone. Read as one instrument, "Toms" made three drums velocity layers of one
    tom and "Cymbals" played the ride as a loud crash. A number after a tom or cymbal is
    mostly a layer's here (``_numbered_layer``)."""

    def piece(shot: _Shot) -> str:
        layered = _numbered_layer(shot.path.stem, shot.where)
        return (_LAYER_SUFFIX.sub("", shot.name) if layered else shot.name).casefold()

    names = {piece(shot) for shot in shots if not _is_bare(shot.name)}
    if len(names) <= 1:
        return True
    roles = {classify_name(_in_context(name, shots[0].where)) for name in names} - {None}
    return len(roles) == 1 and roles <= _ONE_PER_KIT


def _load_folder(folder: Path) -> Kit:
    """A folder of one-shots named by instrument: ``snare_soft.wav``, ``snare-2.wav``,
    ``kick.flac``... (names matched regardless of case, ``_add_to_group``), at any depth.
    A subfolder whose one-shots are layers of one piece (``_holds_one_piece``: ``Snare/``
    with ``soft.wav`` and ``hard.wav``) is that instrument, named by its path
    (``Cymbals/Crash``); the one-shots of any other are grouped by name as top-level ones
    are, within the folder (``Toms/`` with ``Tom 1.wav`` and ``Floor Tom.wav``). Layers of
    one instrument are ordered by peak level and share the velocity range evenly. Numbered
    toms and cymbals (``tom1.wav``, ``crash2.wav``) are separate instruments, not layers,
    except in a folder of one piece (``Crash/crash_01.wav``); numbered snares, kicks and
    hi-hats are layers (see ``_instrument_name``). A mic word in a name or folder
    (``Snare_Top_01``, ``Snare_OH_01``, ``Room/``) names the mic, not the piece, and each
    piece is read through its closest mic only (``_split_mic``, ``_closest_mics``).

    A folder of Hydrogen kits is refused: read as one-shots, each whole kit would become
    one instrument, cymbals and all, and could land in the clean snare target."""
    kits = [xml.parent.relative_to(folder).as_posix()
            for xml in visible_files(folder, (".xml",)) if xml.name == "drumkit.xml"]
    if kits:
        raise KitError(f"{folder}: holds Hydrogen kits ({', '.join(kits)}), not one-shots; "
                       "pass each kit folder on its own (one --kit per kit)")
    files = visible_files(folder, AUDIO_SUFFIXES)
    mic_kit = _names_mics(folder, files)
    shots = [_read_shot(path, folder, mic_kit) for path in files]
    by_folder: dict[Path, list[_Shot]] = {}
    for shot in shots:
        by_folder.setdefault(shot.path.parent, []).append(shot)
    one_piece = {parent for parent, members in by_folder.items()
                 if parent != folder and _holds_one_piece(members)}
    groups: _ShotGroups = {}
    for shot in shots:
        # (a folder named by a mic word only, "Close/", names no piece)
        if shot.path.parent in one_piece and shot.where:
            piece = name = shot.where
        else:  # keyed by its folders too: "A/tom_01.wav" and "B/tom_01.wav" are two drums
            piece = "/".join(filter(None, (shot.where, shot.name)))
            name = _in_context(shot.name, shot.where)
        _add_to_group(groups, piece, name, (shot.mic, shot.spelled), [shot.path])
    instruments = []
    for name, files in _closest_mics(groups, folder):
        peaks = [float(np.max(np.abs(_load_sample(f)))) for f in files]
        order = [files[i] for i in np.argsort(peaks, kind="stable")]
        edges = np.linspace(0.0, 1.0, len(order) + 1)
        specs = [LayerSpec(f, float(edges[i]), float(edges[i + 1])) for i, f in enumerate(order)]
        instrument = _make_instrument(name, specs)
        if instrument is not None:
            instruments.append(instrument)
    return _finish(Kit(folder.name, folder, tuple(instruments)))


# One-shots by (piece, mic word): the piece's name as first spelled, the mic word as
# spelled, files. A piece is its path in the kit, less mic words and layer suffixes.
_ShotGroups = dict[tuple[str, str], tuple[str, str, list[Path]]]


def _add_to_group(groups: _ShotGroups, piece: str, name: str, mic: tuple[str, str],
                  files: list[Path]) -> None:
    """Add ``files`` to the piece ``piece`` (shown as ``name``) recorded by the mic ``mic``
    (its word in lower case and as spelled, "" for none), matched case-insensitively and
    shown as first spelled: ``Snare_soft.wav``, ``snare_med.wav`` and ``SNARE_hard.wav``
    were three snares of one layer each, not one snare with three velocity layers."""
    groups.setdefault((piece.casefold(), mic[0]), (name, mic[1], []))[2].extend(files)


def _closest_mics(groups: _ShotGroups, folder: Path) -> list[tuple[str, list[Path]]]:
    """Each piece's name and one-shots, from its closest mic (``_SHOT_MICS``) only.

    A multi-mic pack's "Snare_Top", "Snare_OH" and "Snare_Room" were three snares, and
    clips took overhead and room snares (the whole kit ringing in them) as the clean
    target. As Hydrogen kits are read through their close mic component, each piece keeps
    the one-shots of its closest mic, and a warning names the mics left out."""
    pieces: dict[str, list[tuple[str, str, str, list[Path]]]] = {}
    for (key, mic), (name, spelled, files) in groups.items():
        pieces.setdefault(key, []).append((mic, name, spelled, files))
    kept, notes = [], []
    for variants in pieces.values():
        variants.sort(key=lambda variant: _shot_mic_rank(variant[0]))  # stable: first kept
        _, name, _, files = variants[0]
        kept.append((name, files))
        if len(variants) > 1:
            mics = [repr(spelled) if spelled else "the files without a mic word"
                    for _, _, spelled, _ in variants]
            notes.append(f"{name!r} from {mics[0]}, not {', '.join(mics[1:])}")
    if notes:
        warnings.warn(f"{folder}: one-shots of one piece from several mics; only the "
                      f"closest mic's are used: {'; '.join(notes)}", stacklevel=3)
    return kept


def _finish(kit: Kit) -> Kit:
    if not any(inst.category in SNARE_CATEGORIES for inst in kit.instruments):
        raise KitError(f"{kit.path}: kit {kit.name!r} has no snare instrument")
    return _bare_sticks_beside_a_side_stick(kit)


def _bare_sticks_beside_a_side_stick(kit: Kit) -> Kit:
    """A bare "Stick" is the side stick of most Hydrogen kits (GMRockKit, the Millo kits),
    but in a kit that also names one ("Rim Click", "Side Stick") it is something else:
    ForzeeStereo's "Stick", sticks clicked together with no drum body, played in half of
    its side-stick hits, into the clean snare target. There it is percussion ("other")."""
    explicit = any(_SIDESTICK.search(inst.name.lower()) for inst in kit.instruments)
    if not explicit:
        return kit

    def bare(inst: Instrument) -> bool:
        return inst.category == "sidestick" and not _SIDESTICK.search(inst.name.lower())
    return replace(kit, instruments=tuple(replace(inst, category="other") if bare(inst) else inst
                                          for inst in kit.instruments))


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int) -> Kit:
    target = Path(path)
    xml_path = target if target.is_file() else target / "drumkit.xml"
    if xml_path.is_file():
        return _load_hydrogen(xml_path)
    return _load_folder(target)


def load_kit(path: str | Path) -> Kit:
    """Load a Hydrogen kit (its folder or its drumkit.xml) or a folder of one-shots.

    Cached per path and drumkit.xml/folder modification time, so rendering thousands of
    clips loads each kit once.
    """
    target = Path(path).expanduser()
    if not target.exists():
        raise KitError(f"{target}: no such kit folder")
    if target.is_file() and target.suffix.lower() != ".xml":  # read as XML, it was "malformed"
        raise KitError(f"{target}: a file, not a kit; give the kit's folder (or its "
                       "drumkit.xml)")
    stamp_path = target / "drumkit.xml" if (target / "drumkit.xml").is_file() else target
    return _load_cached(str(target.resolve()), stamp_path.stat().st_mtime_ns)

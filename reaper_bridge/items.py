"""What the selected items play, and how a processed file becomes an aligned take.

Pure Python over an ``RPR``-like API object (see ``rpr``): the same code runs inside
REAPER, from outside through reapy's distant API, and on the tests' fake REAPER.
Standard library only.

Alignment: the denoiser keeps a file's length, rate and channels sample for sample
(SPEC 2), so a take that plays the processed *root* file with the original take's start
offset (plus any section offset), playrate, pitch settings and channel mode plays the
processed version of exactly the samples the original plays. Stretch markers break that
(they warp the source), so such takes are rendered as they play instead.

A processed take stores the GUID of the take it was made from in ``SOURCE_LINK``, so the
bridge finds an item's original and its variants again even after either is renamed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from denoiser.errors import DebleedError

from .rpr import is_null

#: Take-name tags of the processed variants, in the order ``compare`` cycles them.
VARIANT_TAGS: dict[str, str] = {
    "gate": "[gate]",
    "debleed": "[debleed]",
    "debleed+gate": "[debleed+gate]",
}
#: Extensions libsndfile reads; other files are rendered through the audio accessor.
READABLE_EXTENSIONS = frozenset({".wav", ".wave", ".bwf", ".w64", ".rf64", ".aif", ".aiff",
                                 ".aifc", ".flac", ".ogg", ".oga", ".mp3", ".caf"})
#: The take settings a processed take copies from its original (``D_PANLAW``: a panned
#: take with its own pan law would change level without it).
TAKE_VALUES = ("D_STARTOFFS", "D_PLAYRATE", "B_PPITCH", "D_PITCH", "I_PITCHMODE",
               "I_CHANMODE", "D_VOL", "D_PAN", "D_PANLAW")
#: Take extension data of a processed take: the GUID of the take it was made from.
SOURCE_LINK = "P_EXT:debleed_source"
#: The take envelopes ReaScript names (``GetTakeEnvelopeByName``) and the action that makes
#: each on the selected items' active takes ("Take: Toggle take volume envelope"...): no
#: ReaScript call creates one (take FX parameter envelopes have ``TakeFX_GetEnvelope``).
TAKE_ENVELOPES = {"Volume": 40693, "Pan": 40694, "Mute": 40695, "Pitch": 41612}
#: What REAPER's Python binding allocates for a string it fills (``rpr_packs``: 4 MiB).
CHUNK_BUFFER = 4 * 1024 * 1024
#: The ExtState section of the bridge's state in REAPER (kept for the session, not in the
#: project): the actions' job state, and under ``COMPARED`` the variant compare switched
#: the selection to last.
SECTION = "debleed"
COMPARED = "compare"
EPSILON = 1e-9


class BridgeError(DebleedError):
    """A REAPER-side problem the user can fix (nothing selected, a refused take...)."""


def mode_channels(mode: int, channels: int) -> tuple[int, ...] | None:
    """The source channels (0-based, in play order) a take with ``I_CHANMODE`` ``mode``
    plays of a ``channels``-channel source, or ``None`` for the mono downmix (2): 0 normal,
    1 reverse stereo (channels 1 and 2 swapped), 3..66 mono of channel ``mode - 2``, 67 and
    above the stereo pair from channel ``mode - 66`` (1-based: 3 = left, 67 = 1/2, 68 =
    2/3). An index at or past ``channels`` names a channel the source lacks: REAPER plays
    silence there. The one description of channel modes: what a take plays, which modes a
    file slice reproduces, and the slice itself all follow it."""
    if mode == 2:
        return None
    if mode >= 67:
        return (mode - 67, mode - 66)
    if mode >= 3:
        return (mode - 3,)
    if mode == 1 and channels > 1:
        return (1, 0, *range(2, channels))
    return tuple(range(channels))


@dataclass(frozen=True)
class TakeSource:
    """One audio take and exactly what it plays.

    ``file`` is the root source file, or ``None`` when what the take plays cannot be read
    from it (no readable file, or stretch markers warp it): the take is then rendered
    through the audio accessor. ``values`` holds the take's ``TAKE_VALUES``;
    ``section_offset`` is the summed offset of section sources between the take and the
    root file, in source seconds; ``file_length`` is the root file's length in seconds;
    ``stretch_markers`` are the take's ``(position, source position)`` pairs;
    ``item_volume`` is the item's ``D_VOL``.
    """

    item: str
    take: str
    label: str
    take_name: str
    file: str | None
    section_offset: float
    values: dict[str, float]
    position: float
    length: float
    sample_rate: int
    channels: int
    file_length: float
    stretch_markers: tuple[tuple[float, float], ...]
    item_volume: float

    @property
    def chanmode(self) -> int:
        return int(self.values["I_CHANMODE"])

    @property
    def played_source_channels(self) -> tuple[int, ...] | None:
        """The source channels the take plays (see ``mode_channels``); ``None``: downmix."""
        return mode_channels(self.chanmode, self.channels)

    @property
    def played_channels(self) -> int:
        """How many channels the take plays (``I_CHANMODE``): one in the mono modes (2
        downmix, 3..66 one channel), two in the stereo-pair modes (67 and above, even of a
        mono source: the missing channel plays silence), else the source's."""
        played = self.played_source_channels
        return 1 if played is None else len(played)

    @property
    def mode_channels_exist(self) -> bool:
        """Whether the source has every channel the channel mode names."""
        played = self.played_source_channels
        return played is None or all(index < self.channels for index in played)

    @property
    def gain(self) -> float:
        """Take volume times item volume (negative when the polarity is flipped): what
        neither a file slice nor the audio accessor applies."""
        return self.values["D_VOL"] * self.item_volume

    @property
    def unit_rate(self) -> bool:
        """Plays its source at playrate 1: the file and the project timeline run in step."""
        return abs(self.values["D_PLAYRATE"] - 1.0) < EPSILON

    @property
    def source_offset(self) -> float:
        """Where in the root file the take starts playing, in source seconds."""
        return self.section_offset + self.values["D_STARTOFFS"]

    @property
    def within_file(self) -> bool:
        """Plays no time before or past its root file (where a looped item wraps around)."""
        end = self.source_offset + self.length * self.values["D_PLAYRATE"]
        return self.source_offset >= -EPSILON and end <= self.file_length + EPSILON


@dataclass(frozen=True)
class Skipped:
    """An item left alone, and why (shown to the user as one line)."""

    label: str
    reason: str


@dataclass
class Selection:
    takes: list[TakeSource] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


#: How many labels (and reasons) a summary names before "... and N more".
SUMMARY_LIMIT = 8


def list_labels(labels: Sequence[str], limit: int = SUMMARY_LIMIT) -> str:
    """``labels`` joined with commas, the first ``limit`` of them, then "... and N more"."""
    rest = len(labels) - limit
    return ", ".join(labels[:limit]) + (f", ... and {rest} more" if rest > 0 else "")


def summarise(skipped: Sequence[Skipped], limit: int = SUMMARY_LIMIT) -> list[str]:
    """Lines for a message box or the console that stay short however many items were
    skipped: up to ``limit`` items one ``label: reason`` line each, as listed in full;
    more are grouped by reason, most frequent first, each with its count and at most
    ``limit`` labels, and at most ``limit`` reasons, the rest counted on a last line.
    The full list stays with the caller (``Outcome.skipped``, ``Outcome.message(full=True)``)."""
    if len(skipped) <= limit:
        return [f"{s.label}: {s.reason}" for s in skipped]
    groups: dict[str, list[str]] = {}
    for s in skipped:
        groups.setdefault(s.reason, []).append(s.label)
    ordered = sorted(groups.items(), key=lambda group: -len(group[1]))  # stable: ties keep order
    lines = [f"{reason} ({len(labels)} item{'s' if len(labels) > 1 else ''}): "
             f"{list_labels(labels, limit)}" for reason, labels in ordered[:limit]]
    others = ordered[limit:]
    if others:
        lines.append(f"... and {sum(len(labels) for _, labels in others)} more item(s) for "
                     f"{len(others)} other reason(s)")
    return lines


def _string(api: Any, func: str, obj: str, parm: str) -> str:
    """Read a string attribute through a ``GetSet*Info_String`` call."""
    result = getattr(api, func)(obj, parm, "", False)
    return str(result[3]) if isinstance(result, (tuple, list)) else str(result)


def take_name(api: Any, take: str) -> str:
    return _string(api, "GetSetMediaItemTakeInfo_String", take, "P_NAME")


def set_take_name(api: Any, take: str, name: str) -> None:
    api.GetSetMediaItemTakeInfo_String(take, "P_NAME", name, True)


def track_name(api: Any, track: str) -> str:
    return _string(api, "GetSetMediaTrackInfo_String", track, "P_NAME")


def item_notes(api: Any, item: str) -> str:
    return _string(api, "GetSetMediaItemInfo_String", item, "P_NOTES")


def take_guid(api: Any, take: str) -> str:
    return _string(api, "GetSetMediaItemTakeInfo_String", take, "GUID")


def source_link(api: Any, take: str) -> str:
    """The GUID of the take ``take`` was processed from; empty for any other take."""
    return _string(api, "GetSetMediaItemTakeInfo_String", take, SOURCE_LINK)


def _is_variant_of(link: str, name: str) -> bool:
    """Whether the take with this ``source_link`` and name is one this bridge made: linked
    to its original, or named like one (made before the link existed). Takes the values,
    not the take, so a caller that needs them anyway reads each from REAPER once."""
    return bool(link) or base_take_name(name)[1] is not None


def stretch_markers(api: Any, take: str) -> tuple[tuple[float, float], ...]:
    """The take's stretch markers as ``(position, source position)``: any at all means
    the take plays its source time-warped, which no start offset can reproduce."""
    markers = []
    for index in range(int(api.GetTakeNumStretchMarkers(take))):
        marker = api.GetTakeStretchMarker(take, index, 0.0, 0.0)
        markers.append((float(marker[3]), float(marker[4])))
    return tuple(markers)


def source_file_name(api: Any, source: str) -> str:
    return str(api.GetMediaSourceFileName(source, "", 4096)[1])


def source_type(api: Any, source: str) -> str:
    return str(api.GetMediaSourceType(source, "", 64)[1])


def project_media_dir(api: Any, project: Any = 0) -> str:
    """The project's recording path: where REAPER itself puts new media."""
    path = str(api.GetProjectPathEx(project, "", 4096)[1])
    if not path:
        raise BridgeError("REAPER reports no project media folder; save the project first")
    return path


def base_take_name(name: str) -> tuple[str, str | None]:
    """Split ``"Snare [debleed+gate]"`` into ``("Snare", "debleed+gate")``."""
    for variant, tag in VARIANT_TAGS.items():
        if name.endswith(" " + tag):
            return name[: -len(tag) - 1], variant
    return name, None


def variant_take_name(original: str, variant: str) -> str:
    return f"{original} {VARIANT_TAGS[variant]}"


def item_takes(api: Any, item: str) -> list[str]:
    """The item's takes, less its empty ones: REAPER counts an empty take but gives NULL
    for it, which no other call should be handed."""
    takes = (api.GetTake(item, i) for i in range(int(api.CountTakes(item))))
    return [take for take in takes if not is_null(take)]


def item_label(api: Any, item: str) -> str:
    """``"Snare @ 12.500 s"``: enough for the user to find a skipped item."""
    track = api.GetMediaItem_Track(item)
    name = track_name(api, track) if not is_null(track) else ""
    position = float(api.GetMediaItemInfo_Value(item, "D_POSITION"))
    return f"{name or 'track'} @ {position:.3f} s"


def project_items(api: Any, project: Any = 0) -> set[str]:
    """Every item in the project: how to tell an item was deleted without handing REAPER
    its dangling pointer (``ValidatePtr2`` takes the pointer as a string in
    ``reaper_python`` but as an integer in reapy, so neither form works through both)."""
    return {api.GetMediaItem(project, i) for i in range(int(api.CountMediaItems(project)))}


def target_items(api: Any, project: Any = 0) -> list[str]:
    """Selected items; with none selected, every item on the selected tracks."""
    count = int(api.CountSelectedMediaItems(project))
    if count:
        return [api.GetSelectedMediaItem(project, i) for i in range(count)]
    items: list[str] = []
    for t in range(int(api.CountSelectedTracks(project))):
        track = api.GetSelectedTrack(project, t)
        count = int(api.CountTrackMediaItems(track))
        items += [api.GetTrackMediaItem(track, i) for i in range(count)]
    return items


class _ItemTakes:
    """An item's takes with each one's link and name (and, when asked, GUID) read once:
    every call crosses to REAPER, a socket round trip each through reapy.

    ``original_of`` is the one rule for a take's original, which the denoise action (what
    to process, which take to reuse) and compare (what to cycle) both follow."""

    def __init__(self, api: Any, item: str):
        self.api = api
        self.takes = item_takes(api, item)
        self.links = {take: source_link(api, take) for take in self.takes}
        self.names = {take: take_name(api, take) for take in self.takes}
        self._guids: dict[str, str] = {}

    def guid(self, take: str) -> str:
        if take not in self._guids:
            self._guids[take] = take_guid(self.api, take)
        return self._guids[take]

    def is_original(self, take: str) -> bool:
        return not _is_variant_of(self.links[take], self.names[take])

    def original_of(self, take: str) -> str | None:
        """``take`` itself when it is an original; else the original it was processed from:
        the take whose GUID its ``SOURCE_LINK`` names (whatever either is called now), else
        the original of its base name: a take of a run before links existed, or of an item
        REAPER copied or split, which gives the takes new GUIDs but copies the link (the
        next run relinks it); ``None`` when the item holds neither."""
        if self.is_original(take):
            return take
        originals = [t for t in self.takes if self.is_original(t)]
        linked = next((t for t in originals if self.links[take]
                       and self.guid(t) == self.links[take]), None)
        if linked is not None:
            return linked
        base = base_take_name(self.names[take])[0]
        return next((t for t in originals if self.names[t] == base), None)

    def variants(self, take: str) -> dict[str, str]:
        """The processed takes of ``take``'s family by variant: the takes sharing its
        original (or, without one, its link, else its base name); a linked take wins over
        an unlinked one, and a linked take whose name lost its tag is no variant."""
        def group(t: str) -> tuple[str, str]:
            original = self.original_of(t)
            if original is not None:
                return "take", original
            if self.links[t]:
                return "link", self.links[t]
            return "name", base_take_name(self.names[t])[0]

        wanted = group(take)
        members = [t for t in self.takes if not self.is_original(t) and group(t) == wanted]
        found: dict[str, str] = {}
        for t in sorted(members, key=lambda t: not self.links[t]):  # linked ones first
            variant = base_take_name(self.names[t])[1]
            if variant is not None:
                found.setdefault(variant, t)
        return found


def _item_takes(api: Any, item: str, tables: dict[str, _ItemTakes] | None) -> _ItemTakes:
    """``item``'s take table: the one in ``tables`` (read earlier in the same step, kept
    current by ``add_variant_take``), else read now and kept there."""
    if tables is None:
        return _ItemTakes(api, item)
    if item not in tables:
        tables[item] = _ItemTakes(api, item)
    return tables[item]


def _input_take(api: Any, item: str, take: str,
                tables: dict[str, _ItemTakes] | None = None) -> tuple[str, str] | None:
    """The take to process and its name: ``take``, or its original when ``take`` is a
    processed take (``_ItemTakes.original_of``); ``None`` when the item holds no original.

    Running the action again on an item showing ``[debleed]`` must process the original
    again (and find the existing take), never denoise the denoised file, even when the
    original was renamed since.
    """
    takes = _item_takes(api, item, tables)
    original = takes.original_of(take)
    return None if original is None else (original, takes.names[original])


def _locked(api: Any, item: str) -> bool:
    """Whether the user locked the item (``C_LOCK`` & 1) to keep it as it is: neither
    a new take nor a switch of its active take (compare), though ReaScript could."""
    return bool(int(api.GetMediaItemInfo_Value(item, "C_LOCK")) & 1)


def _refuses_new_take(api: Any, item: str) -> str | None:
    """Why a processed take must not be added to ``item``, or ``None``.

    A locked item is one the user asked REAPER to keep as it is (ReaScript could still
    change it). An item that plays all its takes at once would sum the new take with the
    original (+6 dB where they agree, comb filtering where they differ), and switching
    takes to compare them would change nothing audible; that flag is the user's, so the
    item is skipped rather than the flag turned off.
    """
    if _locked(api, item):
        return "locked item: unlock it to process"
    if api.GetMediaItemInfo_Value(item, "B_ALLTAKESPLAY"):
        return ("the item plays all its takes at once: turn \"Play all takes\" off for it "
                "(Item properties) to process and compare")
    return None


def describe_take(api: Any, item: str, new_take: bool = False,
                  tables: dict[str, _ItemTakes] | None = None) -> TakeSource | Skipped:
    """Resolve an item's active take down to its root file, or say why it is skipped.

    ``new_take``: the caller will add a processed take to the item, which locked items
    and items playing all their takes also refuse (see ``_refuses_new_take``), as do
    reversed takes and items looping a source section; reading what a take plays (the
    training export) needs none of that, and such takes come without a file, to be
    rendered as they play. ``tables``: where the item's take table is kept for
    ``add_variant_take`` to reuse (``bridge.apply``)."""
    label = item_label(api, item)
    refusal = _refuses_new_take(api, item) if new_take else None
    if refusal is not None:
        return Skipped(label, refusal)
    take = api.GetActiveTake(item)
    if is_null(take):  # REAPER gives NULL for an empty take too, not only for no take
        return Skipped(label, "the active take is empty" if int(api.CountTakes(item))
                       else "empty item (no take)")
    found = _input_take(api, item, take, tables)
    if found is None:
        return Skipped(label, "the active take is a debleed take and the item holds no "
                              "original for it: make the original take active")
    take, name = found
    if api.TakeIsMIDI(take):
        return Skipped(label, "MIDI take")
    source = api.GetMediaItemTake_Source(take)
    if is_null(source):
        return Skipped(label, "take has no source")
    values = {parm: float(api.GetMediaItemTakeInfo_Value(take, parm)) for parm in TAKE_VALUES}
    markers = stretch_markers(api, take)
    length = float(api.GetMediaItemInfo_Value(item, "D_LENGTH"))
    played = length * values["D_PLAYRATE"]
    section_offset = 0.0
    window_start, window_end = values["D_STARTOFFS"], values["D_STARTOFFS"] + played
    unsliceable = False  # reversed or looping a section: only a render reproduces it
    while True:
        kind = source_type(api, source)
        if kind in ("MIDI", "MIDIPOOL"):
            return Skipped(label, "MIDI take")
        if kind == "EMPTY":
            return Skipped(label, "empty take")
        section = api.PCM_Source_GetSectionInfo(source, 0.0, 0.0, False)
        parent = api.GetMediaSourceParent(source)
        if not section[0] or is_null(parent):
            break
        offset, section_length, reverse = float(section[2]), float(section[3]), bool(section[4])
        outside = window_start < -EPSILON or window_end > section_length + EPSILON
        if reverse and new_take:
            return Skipped(label, "reversed take: un-reverse it (Item properties), "
                                  "denoise, then reverse the new take")
        if outside and not markers and new_take:  # warped takes are rendered as they play
            return Skipped(label, "item plays past its source section (loop section); "
                                  "trim the item inside the section or glue it first")
        unsliceable = unsliceable or reverse or outside
        section_offset += offset
        window_start += offset
        window_end += offset
        source = parent
    file_name = source_file_name(api, source)
    rate = int(round(float(api.GetMediaSourceSampleRate(source))))
    channels = int(api.GetMediaSourceNumChannels(source))
    mapped: str | None = file_name
    if file_name and not os.path.isfile(file_name):
        return Skipped(label, f"offline source (file not found: {file_name})")
    if (markers or unsliceable or not file_name
            or os.path.splitext(file_name)[1].lower() not in READABLE_EXTENSIONS):
        mapped = None
    if rate <= 0 or channels <= 0:
        return Skipped(label, "source is offline or not audio")
    return TakeSource(
        item=item, take=take, label=label, take_name=name, file=mapped,
        section_offset=section_offset, values=values,
        position=float(api.GetMediaItemInfo_Value(item, "D_POSITION")), length=length,
        sample_rate=rate, channels=channels,
        file_length=float(api.GetMediaSourceLength(source, False)[0]), stretch_markers=markers,
        item_volume=float(api.GetMediaItemInfo_Value(item, "D_VOL")),
    )


def collect(api: Any, project: Any = 0) -> Selection:
    """The audio takes of the target items, each to get a processed take, and the items
    skipped with the reason."""
    selection = Selection()
    for item in target_items(api, project):
        described = describe_take(api, item, new_take=True)
        if isinstance(described, Skipped):
            selection.skipped.append(described)
        else:
            selection.takes.append(described)
    return selection


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def _copy_fx(api: Any, original: str, variant: str) -> None:
    """Give ``variant`` the original's take FX chain, in order, replacing any it has (a
    reused take keeps the chain of an earlier run, or one added by hand). The files and
    renders the denoiser reads are before take FX, so without the chain an A/B would
    compare the original with its FX against the processed take without them."""
    for index in reversed(range(int(api.TakeFX_GetCount(variant)))):
        api.TakeFX_Delete(variant, index)
    for index in range(int(api.TakeFX_GetCount(original))):
        api.TakeFX_CopyToTake(original, index, variant, index, False)


def _clear_stretch_markers(api: Any, take: str) -> None:
    """A reused variant take plays its file straight: markers someone added would warp it."""
    count = int(api.GetTakeNumStretchMarkers(take))
    if count:
        api.DeleteTakeStretchMarkers(take, 0, count)


class SoleSelection:
    """Selects one item at a time for an action that works on every selected item, and
    gives the user's selection back once, on leaving the ``with`` block: REAPER's take
    envelope actions act on all the selected items' active takes. The selection is read
    and cleared only the first time an item is selected, so a run that needs no action
    leaves it alone."""

    def __init__(self, api: Any, project: Any = 0):
        self.api = api
        self.project = project
        self.saved: list[str] | None = None
        self.current: str | None = None

    def select(self, item: str) -> None:
        if self.saved is None:
            self.saved = [self.api.GetSelectedMediaItem(self.project, i)
                          for i in range(int(self.api.CountSelectedMediaItems(self.project)))]
            self.api.SelectAllMediaItems(self.project, False)
        elif self.current is not None:
            self.api.SetMediaItemSelected(self.current, False)
        self.api.SetMediaItemSelected(item, True)
        self.current = item

    def __enter__(self) -> "SoleSelection":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            return
        if self.current is not None:
            self.api.SetMediaItemSelected(self.current, False)
        for item in self.saved:
            self.api.SetMediaItemSelected(item, True)
        self.saved = self.current = None


def envelope_chunk(api: Any, envelope: str) -> str | None:
    """The envelope's state chunk (``<VOLENV`` ... ``>``), or ``None`` when REAPER gives
    none whole (refused, or longer than the binding's buffer: cut short)."""
    result = api.GetEnvelopeStateChunk(envelope, "", CHUNK_BUFFER, False)
    chunk = str(result[2]).rstrip()
    return chunk if result[0] and chunk.startswith("<") and chunk.endswith(">") else None


def _without_id(chunk: str) -> str:
    """``chunk`` less its ``EGUID`` line: the copy keeps the envelope's own ID instead of
    sharing the original's (SWS strips every ID line before it sets an object's state)."""
    return "\n".join(line for line in chunk.splitlines()
                     if not line.strip().startswith("EGUID "))


def _retimed(chunk: str, stretch: float) -> str:
    """``chunk`` with each point's time (the first field of a ``PT`` line) times
    ``stretch``. A take envelope's time is the time into the item times the take's
    playrate (SWS's BR_EnvelopeUtil, OSARA's envelope commands convert so), and a rendered
    take plays at playrate 1 where its original may not: unscaled, a copied ride would
    play at other moments than the original's."""
    if abs(stretch - 1.0) < EPSILON:
        return chunk
    lines = []
    for line in chunk.splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[0] == "PT":
            line = " ".join(["PT", repr(float(fields[1]) * stretch), *fields[2:]])
        lines.append(line)
    return "\n".join(lines)


def _scaling(chunk: str | None) -> str | None:
    """The ``VOLTYPE`` line of ``chunk`` ("" without one; ``None`` for no chunk). REAPER
    may make a volume envelope with fader scaling (``VOLTYPE 1``, a preference), and
    nothing documents whether setting a chunk without the line resets it: the same points
    read with another scaling play at another gain, so a copy whose scaling reads back
    unlike its original's counts as not copied."""
    if chunk is None:
        return None
    return next((line.strip() for line in chunk.splitlines()
                 if line.strip().startswith("VOLTYPE")), "")


def _bypassed(chunk: str) -> str:
    """``chunk`` made inactive, hidden and disarmed (the first field of ``ACT``, ``VIS``
    and ``ARM``): an envelope that changes nothing, for one ReaScript cannot delete."""
    lines = []
    for line in chunk.splitlines():
        fields = line.split()
        if fields and fields[0] in ("ACT", "VIS", "ARM"):
            line = " ".join([fields[0], "0", *fields[2:]])
        lines.append(line)
    return "\n".join(lines)


def _take_envelope(api: Any, take: str, item: str, name: str, solo: SoleSelection) -> str:
    """``take``'s volume, pan, mute or pitch envelope (``name``), made first when it has
    none by the action that toggles it, run with ``item`` (whose active take ``take`` is)
    the only item selected; NULL when REAPER makes none."""
    envelope = api.GetTakeEnvelopeByName(take, name)
    if is_null(envelope) and name in TAKE_ENVELOPES:
        solo.select(item)
        api.Main_OnCommand(TAKE_ENVELOPES[name], 0)
        envelope = api.GetTakeEnvelopeByName(take, name)
    return envelope


def copy_take_envelopes(api: Any, original: str, variant: str, item: str,
                        solo: SoleSelection) -> list[str]:
    """Give ``variant`` (``item``'s active take) the take envelopes of ``original``:
    volume, pan, mute, pitch and take FX parameter envelopes, with the same points,
    shapes and active, visible and armed state, each replacing the one ``variant`` has (a
    reused take's, from an earlier run). A volume, pan, mute or pitch envelope the
    original no longer has, and one that could not be copied, is left inactive and hidden
    (``_bypass``). Neither the
    processed files nor the renders apply take envelopes, so without them an A/B would
    compare the original's rides with a take that has none. Point times follow the
    takes' playrates (``_retimed``). FX parameter envelopes need
    ``variant``'s FX chain to be the original's (``_copy_fx``). Returns the names of the
    envelopes REAPER did not let it copy, for the user to copy by hand."""
    count = int(api.CountTakeEnvelopes(original))
    if not count and not int(api.CountTakeEnvelopes(variant)):
        return []
    missed: list[str] = []
    copied: set[str] = set()
    stretch = (float(api.GetMediaItemTakeInfo_Value(variant, "D_PLAYRATE"))
               / float(api.GetMediaItemTakeInfo_Value(original, "D_PLAYRATE")))
    for index in range(count):
        envelope = api.GetTakeEnvelope(original, index)
        name = str(api.GetEnvelopeName(envelope, "", 512)[2])
        _, _, fx, param = api.Envelope_GetParentTake(envelope, 0, 0)
        if int(fx) >= 0:
            target = api.TakeFX_GetEnvelope(variant, int(fx), int(param), True)
        else:
            target = _take_envelope(api, variant, item, name, solo)
            copied.add(name)
        chunk = envelope_chunk(api, envelope)
        if (chunk is None or is_null(target)
                or not api.SetEnvelopeStateChunk(target, _retimed(_without_id(chunk), stretch),
                                                 False)
                or _scaling(envelope_chunk(api, target)) != _scaling(chunk)):
            missed.append(name)
            _bypass(api, target)  # a reused take's old ride, or one at another scaling
    for name in TAKE_ENVELOPES.keys() - copied:
        _bypass(api, api.GetTakeEnvelopeByName(variant, name))
    return missed


def _bypass(api: Any, envelope: str) -> None:
    """Leave ``envelope`` (if any) inactive and hidden (``_bypassed``): a take had better
    play no envelope than a wrong one until the user copies the right one by hand."""
    chunk = None if is_null(envelope) else envelope_chunk(api, envelope)
    if chunk is not None:
        api.SetEnvelopeStateChunk(envelope, _bypassed(chunk), False)


def add_variant_take(api: Any, source: TakeSource, path: str, variant: str,
                     rendered: bool = False, changed: Callable[[], None] = lambda: None,
                     tables: dict[str, _ItemTakes] | None = None) -> bool:
    """Make ``<take> [variant]``, playing ``path`` aligned with the original, the active take.

    ``rendered`` means ``path`` holds what the take plays from the item start (the audio
    accessor fallback), so it plays at offset 0 and rate 1. An item keeps one take per
    variant: when it already has one (an earlier run, perhaps with other settings, or
    before the original's offset, playrate or name changed), that take is pointed at
    ``path`` and given the original's current values and name, so re-running never
    duplicates a take and compare always reaches the newest result. The take is linked to
    the original by GUID (``SOURCE_LINK``) and gets a copy of its take FX chain before it
    becomes active, so it never plays without them. Returns whether a take was added.

    ``changed`` is called once, as soon as the item has changed (a take added, a source
    replaced, values about to be set), before anything else can fail: from then on only
    undoing the caller's undo block restores the item (ReaScript cannot delete a take), so
    the caller knows to undo even when no take of this run was completed yet. Opening
    ``path`` and adding the take fail before any change; REAPER refusing a take its new
    source destroys that source and leaves an existing take its old one.

    ``tables``: the item's take table, read once per item for all its variants (by
    ``describe_take`` or the first variant) and kept current here as takes are added
    and renamed; without it the table is read for this call.
    """
    takes = _item_takes(api, source.item, tables)
    guid = takes.guid(source.take)
    take = takes.variants(source.take).get(variant)  # the variant made from this original
    old = None if take is None else api.GetMediaItemTake_Source(take)
    old = None if old is None or is_null(old) else old
    added = take is None
    if old is None or not _same_file(source_file_name(api, old), path):
        pcm = api.PCM_Source_CreateFromFile(path)
        if is_null(pcm):
            raise BridgeError(f"REAPER could not open {path}")
        if added:
            take = api.AddTakeToMediaItem(source.item)
            if is_null(take):
                api.PCM_Source_Destroy(pcm)
                raise BridgeError(f"{source.label}: REAPER refused to add a take")
            changed()
        if not api.SetMediaItemTake_Source(take, pcm):
            api.PCM_Source_Destroy(pcm)  # no take plays it; the old one still plays
            raise BridgeError(f"{source.label}: REAPER refused to give a take {path}")
        if not added:  # the reused take's source was the first change
            changed()
        if old is not None:  # REAPER leaves the old source to the caller
            api.PCM_Source_Destroy(old)
    else:  # the values set next are the first change
        changed()
    values = dict(source.values)
    if rendered:  # the render holds exactly the channels the original plays, mode applied
        values.update(D_STARTOFFS=0.0, D_PLAYRATE=1.0, D_PITCH=0.0, I_CHANMODE=0.0)
    else:
        values["D_STARTOFFS"] = source.source_offset
    for parm in TAKE_VALUES:
        api.SetMediaItemTakeInfo_Value(take, parm, values[parm])
    _clear_stretch_markers(api, take)
    _copy_fx(api, source.take, take)
    name = variant_take_name(source.take_name, variant)
    set_take_name(api, take, name)
    api.GetSetMediaItemTakeInfo_String(take, SOURCE_LINK, guid, True)
    if added:  # REAPER appends it: the table stays what reading the item again would give
        takes.takes.append(take)
    takes.names[take], takes.links[take] = name, guid
    api.SetActiveTake(take)
    return added


class UndoBlock:
    """One undo point for a whole action, closed even when something fails inside."""

    def __init__(self, api: Any, description: str):
        self.api = api
        self.description = description

    def __enter__(self) -> "UndoBlock":
        self.api.Undo_BeginBlock()
        self.api.PreventUIRefresh(1)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.api.PreventUIRefresh(-1)
        finally:
            self.api.Undo_EndBlock(self.description, -1)
            self.api.UpdateArrange()


@dataclass
class _Family:
    """An item's original take and its processed variants, by variant (None = original),
    the take it plays, and whether the item is locked (compare leaves it as it is)."""

    item: str
    active: str
    takes: dict[str | None, str]
    locked: bool

    @property
    def processed(self) -> bool:
        """Whether it has a debleed take: only then can lacking a variant be news (an item
        never processed, or a MIDI one, lacks them all and plays what it always did)."""
        return any(variant is not None for variant in self.takes)


@dataclass(frozen=True)
class Comparison:
    """What compare switched the selection to (``variant``, ``None`` = the original) and
    the items that kept their take, with why: they lack that take."""

    variant: str | None
    stayed: tuple[Skipped, ...] = ()

    def message(self) -> str:
        """``now playing: [debleed]``, then the items that stayed, summarised as the
        denoise action's skipped items are (``summarise``)."""
        name = "original" if self.variant is None else VARIANT_TAGS[self.variant]
        text = f"now playing: {name}"
        if self.stayed:
            head = ("Kept their take:" if len(self.stayed) <= SUMMARY_LIMIT
                    else f"{len(self.stayed)} items kept their take:")
            text += f"\n{head}\n" + "\n".join(f"  {line}" for line in summarise(self.stayed))
        return text


def _family(api: Any, item: str, active: str) -> _Family:
    """The family of ``item``'s active take: its original and that original's variants,
    by the rule the denoise action follows (``_ItemTakes``): linked takes by the GUID link
    (``SOURCE_LINK``), so a family stays whole when the original is renamed between runs
    (its variants keep the name they were made with); unlinked variants, made before links
    existed, by name (``<original name> [tag]``)."""
    takes = _ItemTakes(api, item)
    original = takes.original_of(active)
    family: dict[str | None, str] = {} if original is None else {None: original}
    family.update(takes.variants(active))
    return _Family(item, active, family, _locked(api, item))


def _kept_take(family: _Family, cycle: list[str | None], position: str | None) -> str:
    """The take ``family`` plays once compare has switched the selection to ``position``
    (in ``cycle``): its take of that variant, else the one it kept, its take of the last
    variant before it in the cycle (going round past the original)."""
    index = cycle.index(position)
    return next(family.takes[v] for v in cycle[index::-1] + cycle[:index:-1]
                if v in family.takes)


def _position(families: Sequence[_Family], cycle: list[str | None], last: str) -> str | None:
    """Where the cycle stands: the variant compare switched the selection to last, read
    from what the items play. Items holding different variants keep a take where they
    lack one, so the variant any single item plays can be behind; the position is the
    one after which the most items play what they do now (all of them, unless the user
    switched some by hand). Two can fit alike, when the items' variants fall into two
    runs of the cycle that none spans (one item with the original and ``[gate]``, one
    with only ``[debleed]`` and ``[debleed+gate]``: both rest on their second take after
    ``[gate]`` and after ``[debleed+gate]``); then the one compare last switched to
    (``last``, from ExtState) tells them apart, else the cycle starts before its first
    variant."""
    start = cycle[0] if None in cycle else cycle[-1]

    def fit(position: str | None) -> tuple[int, bool, bool]:
        fitting = sum(f.active == _kept_take(f, cycle, position) for f in families)
        return fitting, _state_name(position) == last, position == start

    return max(cycle, key=fit)


def _state_name(variant: str | None) -> str:
    """How ExtState records a variant compare switched to."""
    return "original" if variant is None else variant


def _selection_key(families: Sequence[_Family]) -> str:
    """What names a selection's takes in the ExtState kept for compare: ExtState is one
    store for every project tab, so a press on another selection in between must not
    count as this one's last."""
    takes = sorted(str(take) for family in families for take in family.takes.values())
    return hashlib.sha1("|".join(takes).encode("utf-8")).hexdigest()[:16]


def _next_variant(families: Sequence[_Family], last: str) -> str | None:
    """The variant compare switches to: the next one after where the cycle stands
    (``_position``) that would switch some item, so every press is heard. The cycle is
    every variant an item that can switch (two takes or more) has, in ``VARIANT_TAGS``
    order after the original, so every such item meets each of its takes once per cycle
    and the selection is back where it started after one."""
    switching = [f for f in families if len(f.takes) > 1]
    cycle = [v for v in (None, *VARIANT_TAGS) if any(v in f.takes for f in switching)]
    start = cycle.index(_position(switching, cycle, last)) + 1
    # a family with two takes is there (the caller checks): some variant switches it
    return next(v for v in cycle[start:] + cycle[:start]
                if any(v in f.takes and f.takes[v] != f.active for f in switching))


def compare_next(api: Any, project: Any = 0) -> Comparison:
    """Cycle the selected items' active takes: original -> gate -> debleed -> debleed+gate.

    The cycle is every variant any selected item has, so none is out of reach
    (``_next_variant``); every item switches to its take of the next variant, so an A/B
    stays in step across a multi-item selection, and an item without one keeps its take
    and is named in the result where it has debleed takes (one never processed is not
    news). The variant switched to is kept in ExtState (``COMPARED``), with the selection
    it was switched for, for that selection's next press to tell apart positions the takes
    alone cannot (``_position``). Takes are grouped by their link to the original (see
    ``_family``), not by name. A locked item keeps its take (the denoise action refuses it
    too) and is named where it has debleed takes and plays another than the selection now
    does. No undo point: switching back and forth
    must not bury the denoise action's own undo point ("keep or undo").
    """
    families: list[_Family] = []
    for item in target_items(api, project):
        active = api.GetActiveTake(item)
        if not is_null(active):
            families.append(_family(api, item, active))
    free = [f for f in families if not f.locked]
    if not any(len(f.takes) > 1 for f in free):
        held = [item_label(api, f.item) for f in families if f.locked and len(f.takes) > 1]
        raise BridgeError("no selected item has a debleed take to compare" + (
            f"; locked items are left alone: {list_labels(held)}" if held else ""))
    selection = _selection_key(free)
    stored, _, last = str(api.GetExtState(SECTION, COMPARED)).rpartition(" ")
    target = _next_variant(free, last if stored == selection else "")
    api.SetExtState(SECTION, COMPARED, f"{selection} {_state_name(target)}", False)
    stayed: list[Skipped] = []
    for family in families:
        take = family.takes.get(target)
        if family.locked:
            if family.processed and take != family.active:
                stayed.append(Skipped(item_label(api, family.item),
                                      "locked item: unlock it to compare"))
        elif take is None:
            if family.processed:
                lacking = "original take" if target is None else f"{VARIANT_TAGS[target]} take"
                stayed.append(Skipped(item_label(api, family.item), f"no {lacking}"))
        elif take != family.active:
            api.SetActiveTake(take)
    api.UpdateArrange()
    return Comparison(target, tuple(stayed))

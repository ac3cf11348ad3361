"""The pre-gate's sidechain inside REAPER: another track (a trigger, the snare's bottom mic)
rendered over exactly the timeline each processed file covers.

ReaGate keys from a track's sidechain input; here the key is the audio a named track
plays (``sidechain_track`` in the settings INI), read through REAPER's track audio
accessor in project time. The denoiser processes a take's whole root file, so the key is
rendered on that file's timeline: sample ``n`` of the key is what the sidechain track plays
when the take would play sample ``n`` of the root file (origin ``position - offset``). Takes
that do not play their file once through at rate 1 go through the accessor render instead,
whose file starts at the item start. Standard library only: it runs inside REAPER.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from .items import BridgeError, Selection, Skipped, TakeSource, track_name
from .rpr import is_null
from .wavio import Rendered, render_track

#: Channels of a rendered key: the gate's detector takes the loudest channel, so a stereo
#: sidechain keeps both sides, and a mono one costs a duplicate channel.
KEY_CHANNELS = 2


def find_track(api: Any, name: str, project: Any = 0) -> str:
    """The one track named ``name`` (case and surrounding spaces ignored)."""
    wanted = name.strip().casefold()
    found = [api.GetTrack(project, t) for t in range(int(api.CountTracks(project)))]
    found = [track for track in found if track_name(api, track).strip().casefold() == wanted]
    if not found:
        raise BridgeError(f"sidechain track {name!r} not found; rename a track or change "
                          "sidechain_track in debleed.ini")
    if len(found) > 1:
        raise BridgeError(f"{len(found)} tracks are named {name!r}; the sidechain track must be "
                          "unique")
    if _all_midi(api, found[0]):
        raise BridgeError(f"sidechain track {name!r} holds only MIDI: REAPER reads it before "
                          "its FX, where a MIDI trigger is silence and the gate would shut on "
                          "every hit; render the trigger to audio, or key from an audio track")
    return found[0]


def _all_midi(api: Any, track: str) -> bool:
    """Whether every item on ``track`` plays a MIDI take (an empty track is not: it is a
    silent key, ``skip_silent_keys``)."""
    takes = [api.GetActiveTake(api.GetTrackMediaItem(track, i))
             for i in range(int(api.CountTrackMediaItems(track)))]
    return bool(takes) and all(not is_null(t) and api.TakeIsMIDI(t) for t in takes)


def keyable(take: TakeSource) -> TakeSource:
    """The take as the keyed plan processes it: a file played at a rate other than 1, or
    looped past its end (its second pass would be gated by the key of its first), is
    rendered through the accessor, so its file and the project timeline run in step (a
    take with stretch markers already is: ``describe_take`` gives it no file)."""
    if take.file is not None and not (take.unit_rate and take.within_file):
        return replace(take, file=None)
    return take


def origin(take: TakeSource) -> float:
    """Project time of the processed file's first sample."""
    return take.position - (take.source_offset if take.file is not None else 0.0)


def played_frames(take: TakeSource) -> tuple[int, int]:
    """The frames ``[start, stop)`` of the take's key (which starts at ``origin``) that its
    item plays: the rest of the processed file is never heard."""
    rate = take.sample_rate
    first = int(round(origin(take) * rate))
    return (max(0, int(round(take.position * rate)) - first),
            int(round((take.position + take.length) * rate)) - first)


def render_keys(api: Any, track: str, takes: list[TakeSource],
                work_dir: str) -> dict[int, Rendered]:
    """Render one key per distinct (file, origin, rate) among ``takes`` (by index): long
    enough to cover every item that plays the file from that origin. Takes rendered through
    the accessor each get their own key, from their item start."""
    groups: dict[tuple[str, int, int], list[int]] = {}
    for index, take in enumerate(takes):
        first = int(round(origin(take) * take.sample_rate))
        source = take.file if take.file is not None else f"render:{index}"
        groups.setdefault((source, first, take.sample_rate), []).append(index)
    keys: dict[int, Rendered] = {}
    for number, ((_, first, rate), members) in enumerate(groups.items()):
        frames = max(1, max(played_frames(takes[i])[1] for i in members))
        path = os.path.join(work_dir, f"key_{number:03d}.wav")
        key = render_track(api, track, first / rate, rate, KEY_CHANNELS, frames, path)
        keys.update((i, key) for i in members)
    return keys


def skip_silent_keys(selection: Selection, keys: dict[int, Rendered],
                     name: str) -> dict[int, Rendered]:
    """Skip the takes whose key is silent over what their item plays (``played_frames``:
    an empty trigger track, or one whose items lie elsewhere, before the item on the
    file's timeline included), as the library refuses a key silent over the track: keyed
    by silence the gate stays shut, and the played part came out silent with a success
    message. The key of a file two items play is one, so each item is judged by its own
    frames of it. Returns the kept takes' keys by their new index; refuses when no take is
    left, as a MIDI-only track is refused."""
    reason = f"sidechain track {name!r} is silent over it: the gate would shut it whole"
    heard = [keys[index].sounds(*played_frames(take))
             for index, take in enumerate(selection.takes)]
    kept = [index for index, sounds in enumerate(heard) if sounds]
    if not kept:
        raise BridgeError(f"sidechain track {name!r} is silent over every selected item: the "
                          "gate would shut them whole; key it from a track that plays the hits")
    selection.skipped += [Skipped(take.label, reason) for take, sounds
                          in zip(selection.takes, heard) if not sounds]
    selection.takes = [selection.takes[index] for index in kept]
    return {new: keys[old] for new, old in enumerate(kept)}

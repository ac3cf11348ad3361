"""General MIDI drum files: note map, tempo map, and rendering at the right times."""

from __future__ import annotations

import re
from dataclasses import replace

import mido
import numpy as np
import pytest

from training.errors import DatasetError
from training.grooves import ROLES
from training.midi import midi_files, read_midi
from training.session import detect_onsets
from training.synth import SynthConfig, render_clip

RATE = 48000


def write_midi(path, notes, tempo_bpm=120, ticks=480, channel=9, tempo_change=None):
    """``notes``: (beat, note, velocity). ``tempo_change``: (beat, bpm)."""
    midi = mido.MidiFile(ticks_per_beat=ticks)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    events = [(round(b * ticks), mido.Message("note_on", channel=channel, note=n, velocity=v))
              for b, n, v in notes]
    events += [(round(b * ticks) + 60, mido.Message("note_off", channel=channel, note=n))
               for b, n, _ in notes]
    events.append((0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm))))
    if tempo_change:
        events.append((round(tempo_change[0] * ticks),
                       mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_change[1]))))
    events.sort(key=lambda e: (e[0], e[1].type != "set_tempo"))
    now = 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    midi.save(path)
    return path


def test_read_midi_maps_notes_and_tempo(tmp_path):
    path = write_midi(tmp_path / "g.mid", [(0, 36, 100), (1, 38, 110), (2, 42, 80), (3, 45, 90),
                                           (4, 37, 70), (5, 52, 100), (6, 38, 30)],
                      tempo_change=(4, 60))
    events = read_midi(path)
    assert [ROLES[r] for r in events.role] == ["kick", "snare", "hihat_closed", "tom",
                                               "sidestick", "china", "snare"]
    # 120 BPM for 4 beats (0.5 s each), then 60 BPM (1 s each)
    assert events.time == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    assert events.velocity.tolist() == [100, 110, 80, 90, 70, 100, 30]
    assert events.tom.tolist() == [-1, -1, -1, 2, -1, -1, -1]


def test_channel_10_preferred(tmp_path):
    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.Message("note_on", channel=0, note=38, velocity=100, time=0))
    track.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=480))
    midi.save(tmp_path / "mixed.mid")
    events = read_midi(tmp_path / "mixed.mid")
    assert [ROLES[r] for r in events.role] == ["kick"]


def test_midi_rendering_places_snare_hits(synthetic_kit, tmp_path):
    beats = [(0.0, 36, 110), (1.0, 38, 120), (2.0, 36, 110), (2.5, 42, 90), (3.0, 38, 120)]
    events = read_midi(write_midi(tmp_path / "p.mid", beats, tempo_bpm=100))
    config = SynthConfig(clip_seconds=2.5, preroll_seconds=0.5, bleed_only_probability=0.0)
    clip = render_clip(synthetic_kit, 0, config, performances=[events])
    assert clip.meta["style"] == "midi" and clip.meta["bpm"] is None
    snares = [o for o in clip.meta["onsets"] if o["target"]]
    # beats 1 and 3 at 100 BPM, marked where the one-shot's attack sounds (under a ms in)
    assert [o["time"] for o in snares] == pytest.approx([0.6, 1.8], abs=1e-3)
    detected = detect_onsets(clip.clean, RATE)
    assert np.abs(detected / RATE - np.array([0.6, 1.8])).max() < 0.003
    kick = [o for o in clip.meta["onsets"] if o["instrument"] == "kick"]
    assert [o["time"] for o in kick] == pytest.approx([0.0, 1.2], abs=0.004)  # + its path


def test_not_a_midi_file(tmp_path):
    (tmp_path / "x.mid").write_bytes(b"RIFF not midi at all")
    with pytest.raises(DatasetError, match="not a readable MIDI file"):
        read_midi(tmp_path / "x.mid")
    path = write_midi(tmp_path / "piano.mid", [(0, 90, 100)])
    with pytest.raises(DatasetError, match="no General MIDI drum notes"):
        read_midi(path)


def test_a_type_2_midi_file_is_refused_in_one_line(tmp_path):
    """mido cannot merge a type-2 file's tracks and raised a TypeError, a traceback."""
    midi = mido.MidiFile(type=2)
    for note in (36, 38):
        track = mido.MidiTrack()
        midi.tracks.append(track)
        track.append(mido.Message("note_on", channel=9, note=note, velocity=100, time=0))
        track.append(mido.Message("note_off", channel=9, note=note, velocity=0, time=480))
    midi.save(tmp_path / "patterns.mid")
    with pytest.raises(DatasetError, match="patterns.mid: a type-2 .* save it as type 0 or 1"):
        read_midi(tmp_path / "patterns.mid")


def test_a_midi_folder_copied_from_a_mac_skips_its_hidden_files(tmp_path):
    """macOS leaves a ``._NAME.mid`` AppleDouble companion (metadata) beside each copied
    file: read as MIDI it was "not a readable MIDI file", and the whole folder was refused."""
    folder = tmp_path / "grooves"
    (folder / ".Trashes").mkdir(parents=True)
    groove = write_midi(folder / "groove.mid", [(0, 36, 100), (1, 38, 110)])
    (folder / "._groove.mid").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    (folder / ".Trashes" / "old.mid").write_bytes(groove.read_bytes())
    assert midi_files([folder]) == [groove]
    assert [ROLES[r] for r in read_midi(groove).role] == ["kick", "snare"]


@pytest.mark.parametrize("division, ticks", [(b"\xe7\x28", r"-\d+"), (b"\x00\x00", "0")],
                         ids=["smpte", "zero"])
def test_a_time_division_that_is_not_ticks_per_beat_is_refused(tmp_path, division, ticks):
    """An SMPTE division (-25 fps, 40 ticks per frame: mido reads a negative count) gave
    hits at negative times in reverse order, and 0 ticks per beat a ZeroDivisionError."""
    raw = bytearray(write_midi(tmp_path / "good.mid", [(0, 36, 100), (1, 38, 110)]).read_bytes())
    raw[12:14] = division  # the header's division field
    (tmp_path / "bad.mid").write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=rf"bad.mid: its header gives {ticks} ticks per "
                                           r"beat \(an SMPTE time-code division"):
        read_midi(tmp_path / "bad.mid")


@pytest.mark.parametrize("size", [0, 10, 30])
def test_an_empty_or_truncated_midi_file_says_why(tmp_path, size):
    """mido raises a bare EOFError for these, and the error read "... MIDI file ()"."""
    raw = write_midi(tmp_path / "good.mid", [(0, 36, 100), (1, 38, 110)]).read_bytes()
    (tmp_path / "cut.mid").write_bytes(raw[:size])
    with pytest.raises(DatasetError, match=r"cut.mid: not a readable MIDI file \(the file "
                                           r"ends early\)$"):
        read_midi(tmp_path / "cut.mid")


def _daw_export(path, drum_name="", bass_name="Bass", bass_channel=1):
    """Four beats of kick and snare on channel 1 in a track of their own, and an eighth-note
    bass line (E2, D2: GM snare keys 40 and 38) on ``bass_channel``."""
    midi = mido.MidiFile(type=1)
    for name, channel, notes, step in ((drum_name, 0, (36, 38), 480),
                                       (bass_name, bass_channel, (40, 38), 240)):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        for k in range(1920 // step):
            note = notes[k % 2]
            track += [mido.Message("note_on", channel=channel, note=note, velocity=90),
                      mido.Message("note_on", channel=channel, note=note, velocity=0, time=step)]
        midi.tracks.append(track)
    midi.save(path)
    return path


@pytest.mark.parametrize("bass_channel, channels", [(1, "channels 1, 2"), (0, "channel 1")])
def test_notes_of_several_instruments_without_channel_10_are_refused(tmp_path, bass_channel,
                                                                      channels):
    """Read together, the bass's eighths became 8 snare hits beside the drummer's 2 (96 in
    the audit's 16-bar song), on a channel of their own or, as DAWs export every track,
    on the drums' channel 1."""
    path = _daw_export(tmp_path / "song.mid", bass_channel=bass_channel)
    with pytest.raises(DatasetError, match=rf"song.mid: no notes on channel 10 \(General MIDI "
                                           rf"drums\) but notes on {channels} in tracks #1, "
                                           "'Bass'; put the drums on channel 10 or export the "
                                           "drum track alone$"):
        read_midi(path)


@pytest.mark.parametrize("bass_channel", [1, 0])
@pytest.mark.parametrize("name", ["Drums", "Drum Kit", "Percussion"])
def test_a_track_named_as_drums_is_read_alone_with_a_warning(tmp_path, name, bass_channel):
    path = _daw_export(tmp_path / "song.mid", drum_name=name, bass_channel=bass_channel)
    with pytest.warns(UserWarning, match=rf"no notes on channel 10; only track '{name}' is "
                                         "read as the drums, not 'Bass'"):
        events = read_midi(path)
    assert [ROLES[r] for r in events.role] == ["kick", "snare", "kick", "snare"]
    assert events.time == pytest.approx([0.0, 0.5, 1.0, 1.5])


def test_a_track_per_drum_without_channel_10_is_read_whole(tmp_path):
    """A DAW's export of one track per piece, named by the piece, on channels 1 and 2: the
    drums, not a band to refuse."""
    midi = mido.MidiFile(type=1)
    for name, channel, note in (("Kick", 0, 36), ("Snare", 0, 38), ("Hi-Hat", 1, 42)):
        midi.tracks.append(mido.MidiTrack([
            mido.MetaMessage("track_name", name=name),
            mido.Message("note_on", channel=channel, note=note, velocity=90),
            mido.Message("note_on", channel=channel, note=note, velocity=0, time=240)]))
    midi.save(tmp_path / "split.mid")
    assert sorted(ROLES[r] for r in read_midi(tmp_path / "split.mid").role) == [
        "hihat_closed", "kick", "snare"]


def _tracks(path, tracks):
    """A type-1 file of ``(name, [(channel, key), ...])`` tracks, a note each quarter."""
    midi = mido.MidiFile(type=1)
    for name, notes in tracks:
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        for channel, note in notes:
            track += [mido.Message("note_on", channel=channel, note=note, velocity=90),
                      mido.Message("note_on", channel=channel, note=note, velocity=0, time=480)]
        midi.tracks.append(track)
    midi.save(path)
    return path


def test_drum_tracks_beside_a_perc_or_in_sections_are_all_read(tmp_path):
    """A track per drum beside one named "Perc" was read as "Perc" alone (no snare left),
    and the drums in two tracks "Drums Verse" and "Drums Chorus" were refused."""
    perc = _tracks(tmp_path / "perc.mid", [("Kick", [(0, 36)]), ("Snare", [(1, 38)]),
                                           ("Perc", [(3, 56)])])
    assert sorted(ROLES[r] for r in read_midi(perc).role) == ["kick", "other", "snare"]
    sections = _tracks(tmp_path / "sections.mid", [("Drums Verse", [(0, 36), (0, 38)]),
                                                   ("Drums Chorus", [(0, 38), (0, 36)])])
    assert sorted(ROLES[r] for r in read_midi(sections).role) == ["kick"] * 2 + ["snare"] * 2


def test_one_track_of_drums_and_bass_on_two_channels_is_refused(tmp_path):
    """A type-0 song named "Drums" with its bass on channel 2 was read whole, the bass's
    notes as snare hits, and the warning named nothing it left out."""
    path = _tracks(tmp_path / "song.mid", [("Drums", [(0, 36), (1, 40), (0, 38), (1, 38)])])
    with pytest.raises(DatasetError, match="no notes on channel 10 .* channels 1, 2 in track "
                                           "'Drums'; put the drums on channel 10"):
        read_midi(path)


def test_a_drum_only_file_on_another_channel_is_read_whole(tmp_path):
    """One track on one channel (not 10) is a drum track exported alone."""
    path = write_midi(tmp_path / "g.mid", [(0, 36, 100), (1, 38, 110), (1.5, 40, 90)], channel=3)
    assert [ROLES[r] for r in read_midi(path).role] == ["kick", "snare", "snare"]


@pytest.mark.parametrize("meta, bar", [
    ([], 2.0),  # MIDI's defaults: 120 BPM, 4/4
    ([(0, "set_tempo", {"tempo": mido.bpm2tempo(90)}),
      (0, "time_signature", {"numerator": 3, "denominator": 4})], 2.0),
    ([(0, "time_signature", {"numerator": 6, "denominator": 8})], 1.5),
    ([(0, "set_tempo", {"tempo": mido.bpm2tempo(90)}),
      (960, "set_tempo", {"tempo": mido.bpm2tempo(100)})], None),
    ([(1920, "time_signature", {"numerator": 3, "denominator": 4})], None),
    # a broken header: a bar of 0 s divided by zero where the file looped
    ([(0, "time_signature", {"numerator": 0, "denominator": 4})], None),
    # the slowest tempo MIDI can write, 16.8 s a quarter note: slow, not a runaway loop
    ([(0, "set_tempo", {"tempo": 2**24 - 1})], 4 * (2**24 - 1) / 1e6)])
def test_a_midi_file_gives_its_bar_length_where_tempo_and_meter_hold(tmp_path, meta, bar):
    """A groove loop shorter than a clip loops at its bar length, which only a file of one
    tempo and one time signature gives."""
    from training.midi import read_performance

    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    messages = [(tick, mido.MetaMessage(kind, **values)) for tick, kind, values in meta]
    messages += [(480 * k, mido.Message("note_on", channel=9, note=36, velocity=100))
                 for k in range(8)]
    now = 0
    for tick, message in sorted(messages, key=lambda item: item[0]):
        track.append(message.copy(time=tick - now))
        now = tick
    midi.save(tmp_path / "g.mid")
    events, seconds = read_performance(tmp_path / "g.mid")
    assert len(events) == 8 and seconds == (None if bar is None else pytest.approx(bar))


FAST = "faster than 1000 BPM, no performance's; fix the file's tempo map"


@pytest.mark.parametrize("tempo, change, message", [
    (1, None, "a tempo of 60000000 BPM (set_tempo 1) at tick 0 is " + FAST),
    (0, None, "a tempo of inf BPM (set_tempo 0) at tick 0 is " + FAST),
    (120, 1001, "a tempo of 1001 BPM (set_tempo 59940) at tick 1920 is " + FAST)])
def test_a_tempo_faster_than_any_performance_is_refused_by_name(tmp_path, tempo, change,
                                                                message):
    """A tempo of 1 microsecond a beat made a bar of 4, and ``dataset synth --midi`` looped it
    to fill each clip without end; a tempo change later in the file counts as well."""
    from training.midi import read_performance

    path = write_midi(tmp_path / "fast.mid", [(b, 38, 100) for b in range(8)], tempo_bpm=120,
                      tempo_change=None if change is None else (4, change))
    if change is None:
        midi = mido.MidiFile(path)
        midi.tracks[0][0] = midi.tracks[0][0].copy(tempo=tempo)  # below what bpm2tempo gives
        midi.save(path)
    with pytest.raises(DatasetError, match=f"^{re.escape(str(path))}: {re.escape(message)}$"):
        read_performance(path)


@pytest.mark.parametrize("tempo", [1, 0])
def test_a_fast_tempo_after_the_last_hit_is_let_be(tmp_path, tempo):
    """A set_tempo of 1 or 0 after the last hit (beat 7, at 3.5 s) times no hit, yet it
    refused the file, and one such file stopped a ``dataset synth --midi`` build; a
    tempo on the last hit's tick still counts."""
    from training.midi import read_performance

    path = write_midi(tmp_path / "late.mid", [(b, 38, 100) for b in range(8)],
                      tempo_change=(9, 120))
    midi = mido.MidiFile(path)
    [index] = [i for i, message in enumerate(midi.tracks[0]) if message.type == "set_tempo"
               and i > 0]
    midi.tracks[0][index] = midi.tracks[0][index].copy(tempo=tempo)
    midi.save(path)
    events, bar = read_performance(path)
    assert events.time.tolist() == pytest.approx([0.5 * b for b in range(8)]) and bar is None
    on_last = write_midi(tmp_path / "on_last.mid", [(b, 38, 100) for b in range(8)],
                         tempo_change=(7, 1200))
    with pytest.raises(DatasetError, match="a tempo of 1200 BPM .* at tick 3360 is "):
        read_performance(on_last)


def test_the_fastest_tempo_taken_is_1000_bpm(tmp_path):
    path = write_midi(tmp_path / "g.mid", [(b, 38, 100) for b in range(8)], tempo_bpm=1000)
    assert read_midi(path).time[1] == pytest.approx(0.06)


def test_dataset_synth_refuses_a_runaway_tempo_before_writing(synthetic_kit_dir, tmp_path):
    from training.synth import render_dataset

    path = write_midi(tmp_path / "fast.mid", [(b, 38, 100) for b in range(8)], tempo_bpm=1200)
    out = tmp_path / "set"
    with pytest.raises(DatasetError, match=r"a tempo of 1200 BPM \(set_tempo 50000\)"):
        render_dataset([synthetic_kit_dir], out, hours=2 / 3600, seed=0,
                       config=SynthConfig(clip_seconds=1.0), midi=[str(path)])
    assert not out.exists()

"""Kit loading: both drumkit.xml dialects, folders of one-shots, rates, channels, formats,
classification, and clear errors."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from training.errors import KitError
from training.kits import (KIT_RATE, Instrument, Layer, attack_sample, classify_features,
                           classify_name, load_kit, spectral_features, trim_tail)
from training.oneshots import one_shot, write_synthetic_kit


def test_synthetic_kit_categories(synthetic_kit):
    categories = {inst.name: inst.category for inst in synthetic_kit.instruments}
    assert categories == {
        "Snare": "snare", "Snare Rimshot": "rimshot", "Side Stick": "sidestick", "Kick": "kick",
        "Hat Closed": "hihat_closed", "Hat Open": "hihat_open", "Hat Pedal": "hihat_pedal",
        "Ride": "ride", "Crash": "crash", "Tom High": "tom", "Tom Mid": "tom",
        "Floor Tom": "tom"}
    snare = synthetic_kit.by_category("snare")[0]
    assert [layer.high for layer in snare.layers] == pytest.approx([0.5, 1.0])
    assert snare.layers[0].peak < snare.layers[1].peak
    assert not synthetic_kit.is_test_kit


@pytest.mark.parametrize("name, category", [
    ("Snare Rimshot (Pearl Free Floating Maple 14x3.5)", "rimshot"),
    ("c3 - bass drum 1", "kick"), ("BassDrum", "kick"), ("bd_01", "kick"),
    ("Closed HH", "hihat_closed"), ("Hi-Hat Semiopen (Paiste)", "hihat_open"),
    ("Pedal HH", "hihat_pedal"), ("Hat Pedal", "hihat_pedal"), ("China (Paiste Alpha 18\")", "china"),
    ("ride-cup", "ride"), ("Splash", "crash"), ("crash16inch", "crash"), ("tomhi2", "tom"),
    ("Floor Tom", "tom"), ("stick-rim-9", "sidestick"), ("Rim Click", "sidestick"),
    ("jsnare_01", "snare"), ("Cowbell", "other"), ("Hand Clap", "other"),
    ("Sample: beats_01-39.flac", None), ("17", None),
    ("Snare_Rim_Shot", "rimshot"), ("rim_shot", "rimshot"), ("Bass_Drum", "kick"),
    ("bass-drum", "kick"), ("Hat Op Dirty", "hihat_open"), ("Hat Top", "hihat_closed"),
    # percussion words are whole words (compounds and plurals count), so snares keep theirs
    ("Snare Snappy", "snare"), ("Blocked Snare", "snare"), ("Finger Snaps", "other"),
    ("Woodblock Hi", "other"), ("HandClap", "other"), ("Tambourine", "other"),
    # without "snare", a tom or kick wins over rim/rimshot/stick (rimshot is a snare role)
    ("floor_tom_rimshot", "tom"), ("Tom Rim", "tom"), ("Kick Rim", "kick"),
    ("Custom Stick", "sidestick"), ("HiTom", "tom"), ("Bottom", None),
    ("ClapHi", "other"), ("CowbellHigh", "other"), ("HandClapLo", "other"),
    ("ShakerLoop", "other"), ("SnareSnappy", "snare"),
    ("Stick", "sidestick"), ("c#3 - stick", "sidestick"), ("Rim", "sidestick"),
    # with "snare", rim and rimshot are rimshots, side/cross stick side sticks
    ("Chopstick snare", "snare"), ("Snare Rim", "rimshot"), ("SD rimshot", "rimshot"),
    ("Snare Side Stick", "sidestick"), ("Snare Cross Stick", "sidestick"),
    ("Pearl Side Stick", "sidestick"),
    # "OH" is an open hi-hat only where no tom or cymbal is named (multi-mic packs' overhead)
    ("Tom_OH", "tom"), ("Crash_OH_01", "crash"), ("Ride OH", "ride"), ("HH_OH", "hihat_open"),
    ("OH", "hihat_open"),
])
def test_classify_name(name, category):
    assert classify_name(name) == category


def test_classify_features_without_names():
    kick = one_shot("kick", 55.0, 0.3, 0.6, 1.0)
    hat = one_shot("metal", 7000.0, 0.05, 0.3, 1.0)
    crash = one_shot("metal", 4000.0, 0.9, 2.0, 1.0)
    assert classify_features(spectral_features(kick, KIT_RATE)) == "kick"
    assert classify_features(spectral_features(hat, KIT_RATE)) == "hihat_closed"
    assert classify_features(spectral_features(crash, KIT_RATE)) == "crash"


def test_unnamed_instrument_is_classified_by_sound(tmp_path):
    kit_dir = write_synthetic_kit(tmp_path / "kit", velocities=(1.0,))
    xml = (kit_dir / "drumkit.xml").read_text().replace("<name>Kick</name>", "<name>17</name>")
    (kit_dir / "drumkit.xml").write_text(xml.replace("kick_1.wav", "x1.wav"))
    (kit_dir / "kick_1.wav").rename(kit_dir / "x1.wav")
    kit = load_kit(kit_dir)
    unnamed = [inst for inst in kit.instruments if inst.name == "17"][0]
    assert unnamed.category == "kick" and unnamed.guessed


def test_resampled_to_48k_and_mixed_to_mono(tmp_path):
    kit48 = load_kit(write_synthetic_kit(tmp_path / "a", velocities=(1.0,)))
    kit44 = load_kit(write_synthetic_kit(tmp_path / "b", sample_rate=44100, channels=2,
                                         velocities=(1.0,)))
    for a, b in zip(kit48.instruments, kit44.instruments):
        assert a.layers[0].samples.ndim == 1 and b.layers[0].samples.ndim == 1
        assert abs(a.layers[0].samples.size - b.layers[0].samples.size) <= 2
    assert kit44.sample_rate == KIT_RATE


def test_folder_of_one_shots_flac_and_aiff(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for velocity, stem in ((0.3, "snare_soft"), (1.0, "snare_hard")):
        sf.write(folder / f"{stem}.flac", one_shot("snare", 190, 0.16, 0.5, velocity), 48000)
    sf.write(folder / "kick.aiff", one_shot("kick", 55, 0.3, 0.5, 1.0), 44100, format="AIFF")
    (folder / "hihat").mkdir()
    sf.write(folder / "hihat" / "1.wav", one_shot("metal", 7000, 0.05, 0.3, 0.5), 48000)
    kit = load_kit(folder)
    by_name = {inst.name: inst for inst in kit.instruments}
    assert set(by_name) == {"snare", "kick", "hihat"}
    snare = by_name["snare"]
    assert snare.category == "snare" and len(snare.layers) == 2
    assert snare.layers[0].peak < snare.layers[1].peak  # layers ordered by level
    assert by_name["kick"].category == "kick" and by_name["hihat"].category == "hihat_closed"


def test_folder_numbered_toms_and_cymbals_are_pieces_and_names_keep_letters(tmp_path):
    """tom1..tom3 are three toms (a fill moves across them), not one tom with three
    velocity layers; numbered snares, kicks and hats stay layers; a dynamics suffix
    needs a separator, so "Floor Tom" and "Kick_Drum" keep their last letters."""
    folder = tmp_path / "shots"
    folder.mkdir()
    shots = {"tom1": ("tom", 210), "tom2": ("tom", 150), "tom3": ("tom", 95),
             "crash1": ("metal", 4000), "crash2": ("metal", 4500), "Floor Tom": ("tom", 90),
             "Kick_Drum": ("kick", 55), "snare-1": ("snare", 190), "snare-2": ("snare", 190),
             "hihat1": ("metal", 7000), "hihat2": ("metal", 7000), "ride_ff": ("metal", 3000)}
    for index, (stem, (kind, tune)) in enumerate(shots.items()):
        hit = one_shot(kind, tune, 0.1, 0.3, 0.4 + 0.05 * index, seed=index)
        sf.write(folder / f"{stem}.wav", hit, 48000)
    layers = {inst.name: len(inst.layers) for inst in load_kit(folder).instruments}
    assert layers == {"tom1": 1, "tom2": 1, "tom3": 1, "crash1": 1, "crash2": 1,
                      "Floor Tom": 1, "Kick_Drum": 1, "snare": 2, "hihat": 2, "ride": 1}


def write_shots(folder, stems):
    """A one-shot per stem (``folder/stem.wav``, in subfolders where the stem has a "/"),
    louder down the list."""
    kinds = {"snare": ("snare", 190), "kick": ("kick", 55), "tom": ("tom", 120)}
    for index, stem in enumerate(stems):
        kind, tune = next((v for k, v in kinds.items() if k in stem.lower()), ("metal", 6000))
        (folder / stem).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{stem}.wav",
                 one_shot(kind, tune, 0.1, 0.3, 0.3 + 0.05 * index, seed=index), 48000)


def folder_instruments(folder):
    return {inst.name: (inst.category, [layer.source for layer in inst.layers])
            for inst in load_kit(folder).instruments}


def test_a_subfolder_is_one_instrument_only_when_it_holds_one_piece(tmp_path):
    """Read as one instrument each, "Toms" made three drums velocity layers of one tom and
    "Cymbals" one crash whose loud layer was the ride. A subfolder is an instrument when
    its files' names (less numbers and dynamics words) agree or name one piece a kit has
    one of; else its files are grouped by name as top-level files are."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Toms/Tom 1", "Toms/Tom 2", "Toms/Floor Tom", "Cymbals/crash",
                         "Cymbals/ride", "Cymbals/hihat closed", "Snare/soft", "Snare/hard",
                         "Kick/kick_a", "Kick/kick_b", "Hats/Closed", "Hats/Open"])
    assert folder_instruments(folder) == {
        "crash": ("crash", ["crash.wav"]), "hihat closed": ("hihat_closed", ["hihat closed.wav"]),
        "ride": ("ride", ["ride.wav"]), "Hats/Closed": ("hihat_closed", ["Closed.wav"]),
        "Hats/Open": ("hihat_open", ["Open.wav"]), "Kick": ("kick", ["kick_a.wav", "kick_b.wav"]),
        "Snare": ("snare", ["soft.wav", "hard.wav"]), "Floor Tom": ("tom", ["Floor Tom.wav"]),
        "Tom 1": ("tom", ["Tom 1.wav"]), "Tom 2": ("tom", ["Tom 2.wav"])}


def test_a_piece_folder_of_numbered_layers_is_one_piece_and_folders_keep_drums_apart(tmp_path):
    """Numbers after tom/crash/ride name pieces at the top level (tom1, tom2), so
    Crash/crash_01..03 was three one-layer crashes and tom_01 joined "Tom Hi/tom_01" and
    "Tom Floor/tom_01", two drums, as layers of one. In a folder the numbers are layers,
    except in one named in the plural (Toms/), and files of different folders are
    different pieces: Rack Toms/Tom 1 and Floor Toms/Tom 1 are two toms."""
    folder = tmp_path / "pack"
    write_shots(folder, [f"{piece}/{name}_{k:02d}" for piece, name, count in (
        ("Snare", "snare", 3), ("Kick", "kick", 2), ("Crash", "crash", 3), ("Ride", "ride", 2),
        ("Tom Hi", "tom", 3), ("Tom Floor", "tom", 3)) for k in range(1, count + 1)])
    assert folder_instruments(folder) == {
        "Crash": ("crash", ["crash_01.wav", "crash_02.wav", "crash_03.wav"]),
        "Kick": ("kick", ["kick_01.wav", "kick_02.wav"]), "Ride": ("ride", ["ride_01.wav",
                                                                          "ride_02.wav"]),
        "Snare": ("snare", ["snare_01.wav", "snare_02.wav", "snare_03.wav"]),
        "Tom Floor": ("tom", ["tom_01.wav", "tom_02.wav", "tom_03.wav"]),
        "Tom Hi": ("tom", ["tom_01.wav", "tom_02.wav", "tom_03.wav"])}
    toms = tmp_path / "toms"
    write_shots(toms, ["Snare/snare", "Rack Toms/Tom 1", "Rack Toms/Tom 2", "Floor Toms/Tom 1",
                       "Floor Toms/Tom 2"])
    # write_shots makes the i-th one-shot peak at 0.3 + 0.05 i: the peaks tell the files apart
    shown = sorted((inst.name, [round(layer.peak, 3) for layer in inst.layers])
                   for inst in load_kit(toms).instruments)
    assert shown == [("Snare", [0.3]), ("Tom 1", [0.35]), ("Tom 1", [0.45]), ("Tom 2", [0.4]),
                     ("Tom 2", [0.5])]


def test_numbered_files_spelling_their_folder_and_a_drum_are_pieces(tmp_path):
    """Toms/Rack/Rack Tom 1.wav and Rack Tom 2.wav were one rack tom with two velocity
    layers, since only a folder named in the plural numbers pieces. A name that spells its
    folder's and adds the drum the folder lacks numbers pieces too; where the folder names
    the piece (Crash/crash_01) or the names do not spell it (Hi/tom_01) the numbers are
    layers, and numbered piece folders (Floor Tom 14in/, Floor Tom 16in/) stay pieces."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare/snare_01", "Toms/Rack/Rack Tom 1", "Toms/Rack/Rack Tom 2",
                         "Toms/Hi/tom_01", "Toms/Hi/tom_02", "Cymbals/Crash/crash_01",
                         "Cymbals/Crash/crash_02", "Cymbals/Crash/crash_03",
                         "Toms/Floor/Floor Tom 14in/01", "Toms/Floor/Floor Tom 14in/02",
                         "Toms/Floor/Floor Tom 16in/01"])
    assert {name: files for name, (_, files) in folder_instruments(folder).items()} == {
        "Snare": ["snare_01.wav"], "Rack Tom 1": ["Rack Tom 1.wav"],
        "Rack Tom 2": ["Rack Tom 2.wav"], "Toms/Hi": ["tom_01.wav", "tom_02.wav"],
        "Cymbals/Crash": ["crash_01.wav", "crash_02.wav", "crash_03.wav"],
        "Toms/Floor/Floor Tom 14in": ["01.wav", "02.wav"],
        "Toms/Floor/Floor Tom 16in": ["01.wav"]}


def test_a_pieces_own_number_before_a_layer_number_keeps_pieces_apart(tmp_path):
    """The folder rule took a second number off: Crash_16_01 and Crash_18_01 (a 16" and an
    18" crash, layer 01) became one crash, tom1_01 and tom2_01 one tom."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare/snare_01", "Crash/Crash_16_01", "Crash/Crash_16_02",
                         "Crash/Crash_18_01", "Crash/Crash_18_02", "Tom/tom1_01", "Tom/tom1_02",
                         "Tom/tom2_01"])
    shown = folder_instruments(folder)
    assert {name: files for name, (_, files) in shown.items() if name != "Snare"} == {
        "Crash_16": ["Crash_16_01.wav", "Crash_16_02.wav"],
        "Crash_18": ["Crash_18_01.wav", "Crash_18_02.wav"],
        "tom1": ["tom1_01.wav", "tom1_02.wav"], "tom2": ["tom2_01.wav"]}


def test_a_mic_named_by_the_file_and_its_folder_is_one_mic_of_the_piece(tmp_path):
    """Snare/Snare OH/snare_oh_01.wav: the mic word was taken off the file's name only, so
    each mic's folder made a snare of its own and the overhead and room ones were targets."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare/Snare Top/snare_top_01", "Snare/Snare Top/snare_top_02",
                         "Snare/Snare OH/snare_oh_01", "Snare/Snare Room/snare_room_01",
                         "Kick/Kick OH/kick_oh_01", "Kick/Kick Room/kick_room_01"])
    with pytest.warns(UserWarning, match="only the closest mic's are used"):
        shown = folder_instruments(folder)
    snares = {name: files for name, (role, files) in shown.items() if role == "snare"}
    assert list(snares.values()) == [["snare_top_01.wav", "snare_top_02.wav"]]
    assert sum(role == "kick" for role, _ in shown.values()) == 1


def test_one_shots_in_deeper_folders_are_read(tmp_path):
    """Pieces two levels down were dropped without a word; they are read, a piece's
    folder named by its path (a file named by its mic alone is its layer), and a mic
    folder ("Close/", "Room/") names the mic."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Cymbals/Crash/crash 1", "Cymbals/Ride/Close_01", "Hats/Closed/hh",
                         "Hats/Open/hh", "Mics/Close/Snare_01", "Mics/Close/Kick_01",
                         "Mics/Room/Snare_01", "Mics/Room/Kick_01"])
    with pytest.warns(UserWarning, match="'Kick' from 'Close', not 'Room'; 'Snare' from "
                                         "'Close', not 'Room'"):
        shown = folder_instruments(folder)
    assert shown == {
        "Cymbals/Crash": ("crash", ["crash 1.wav"]), "Cymbals/Ride": ("ride", ["Close_01.wav"]),
        "Hats/Closed": ("hihat_closed", ["hh.wav"]), "Hats/Open": ("hihat_open", ["hh.wav"]),
        "Kick": ("kick", ["Kick_01.wav"]), "Snare": ("snare", ["Snare_01.wav"])}
    (snare,) = load_kit(folder).by_category("snare")
    close, room = (np.abs(sf.read(folder / "Mics" / mic / "Snare_01.wav")[0]).max()
                   for mic in ("Close", "Room"))
    assert snare.layers[0].peak == pytest.approx(close, rel=1e-6) != room


def test_a_multi_mic_folder_keeps_each_pieces_closest_mic(tmp_path):
    """Snare_Top, Snare_OH and Snare_Room were three snares, and most clips took an
    overhead or room snare as the clean target. Each piece keeps its closest mic (top or
    close, else overhead before room), layer numbers before or after the mic word, and a
    warning names what was left out; in a multi-mic kit "OH" is the overhead, so
    HiHat_OH is a closed hi-hat heard from above and Tom_OH a tom."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare_Top_01", "Snare_02_Top", "Snare_OH_01", "Snare_OH_02",
                         "Snare_Room_01", "Kick_Close_01", "Kick_Room_01", "Tom_OH_01",
                         "Tom_Room_01", "HiHat_OH_01"])
    with pytest.warns(UserWarning, match="one-shots of one piece from several mics") as caught:
        kit = load_kit(folder)
    shown = {inst.name: (inst.category, [layer.source for layer in inst.layers])
             for inst in kit.instruments}
    assert shown == {"Snare": ("snare", ["Snare_Top_01.wav", "Snare_02_Top.wav"]),
                     "Kick": ("kick", ["Kick_Close_01.wav"]),
                     "Tom": ("tom", ["Tom_OH_01.wav"]),
                     "HiHat": ("hihat_closed", ["HiHat_OH_01.wav"])}
    assert "'Snare' from 'Top', not 'OH', 'Room'" in str(caught[0].message)
    assert "'Tom' from 'OH', not 'Room'" in str(caught[0].message)


def test_oh_is_an_open_hat_in_a_single_mic_folder_but_not_beside_a_drum(tmp_path):
    """Without other mic words "HH_OH" is the open hi-hat; "Snare_OH" is still a snare's
    overhead, left out beside the snare without a mic word."""
    folder = tmp_path / "shots"
    write_shots(folder, ["snare", "Snare_OH", "hh_oh", "hh_ch", "kick"])
    with pytest.warns(UserWarning, match="'snare' from the files without a mic word, not 'OH'"):
        kit = load_kit(folder)
    shown = {inst.name: (inst.category, [layer.source for layer in inst.layers])
             for inst in kit.instruments}
    assert shown == {"snare": ("snare", ["snare.wav"]), "hh_oh": ("hihat_open", ["hh_oh.wav"]),
                     "hh_ch": ("hihat_closed", ["hh_ch.wav"]), "kick": ("kick", ["kick.wav"])}


def test_close_and_oh_beside_a_hat_are_its_articulation_unless_the_kit_names_mics(tmp_path):
    """"close" counted as a mic word, so HH_Close made the kit a multi-mic one, HH_OH
    became its overhead and the kit lost its open hi-hat. Beside a hi-hat "close" and "OH"
    are the articulation; they are mics only where other names use mic words."""
    folder = tmp_path / "shots"
    write_shots(folder, ["Kick", "Snare", "HH_Close", "HH_OH"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mic is left out
        shown = folder_instruments(folder)
    assert shown == {"Kick": ("kick", ["Kick.wav"]), "Snare": ("snare", ["Snare.wav"]),
                     "HH_Close": ("hihat_closed", ["HH_Close.wav"]),
                     "HH_OH": ("hihat_open", ["HH_OH.wav"])}
    miked = tmp_path / "miked"
    write_shots(miked, ["Snare_Close", "Snare_Room", "HH_Close", "HH_OH"])
    with pytest.warns(UserWarning, match="'HH' from 'Close', not 'OH'"):
        shown = folder_instruments(miked)
    assert shown == {"Snare": ("snare", ["Snare_Close.wav"]),
                     "HH": ("hihat_closed", ["HH_Close.wav"])}


def test_a_mic_folder_under_a_piece_folder_is_that_pieces_mic(tmp_path):
    """Snare/OH/ was read alone, as an open hi-hat's name, so Snare/OH became a second
    snare, the overhead one a clean target. A mic folder under a piece's folder is that
    piece's mic ("top" beside a drum makes the kit a multi-mic one, where HH/OH is the
    hi-hat's overhead); under Hats/, OH/ and CH/ are articulations where no mic is named."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare/Top/01", "Snare/Top/02", "Snare/OH/01", "Snare/OH/02",
                         "Kick/Top/01", "Kick/OH/01", "HH/Top/01", "HH/OH/01"])
    with pytest.warns(UserWarning, match="'Snare' from 'Top', not 'OH'"):
        kit = load_kit(folder)
    # write_shots makes the i-th one-shot peak at 0.3 + 0.05 i: the peaks tell the files apart
    shown = {inst.name: (inst.category, [round(layer.peak, 3) for layer in inst.layers])
             for inst in kit.instruments}
    assert shown == {"Snare": ("snare", [0.3, 0.35]), "Kick": ("kick", [0.5]),
                     "HH": ("hihat_closed", [0.6])}
    hats = tmp_path / "hats"
    write_shots(hats, ["Snare/01", "Hats/OH/01", "Hats/CH/01"])
    assert folder_instruments(hats) == {"Snare": ("snare", ["01.wav"]),
                                        "Hats/OH": ("hihat_open", ["01.wav"]),
                                        "Hats/CH": ("hihat_closed", ["01.wav"])}


def test_a_kicks_in_out_and_sub_mics_are_mics_of_one_kick(tmp_path):
    """Kick/In/ and Kick/Out/ (or "Kick In/", "Kick/Inside/", "Kick_Sub_01") were two or
    three kicks, each a piece the grooves played. They are mics of one kick, read through
    the outside one, which hears the drum as a snare mic does; a size's "in" is no mic."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare/snare_01", "Kick/In/kick_01", "Kick/In/kick_02",
                         "Kick/Out/kick_01", "Kick/Out/kick_02", "Kick/Sub/kick_01",
                         "Toms/Floor Tom 14in", "Toms/Floor Tom 16 in"])
    with pytest.warns(UserWarning, match="'Kick' from 'Out', not 'In', 'Sub'"):
        kit = load_kit(folder)
    # write_shots makes the i-th one-shot peak at 0.3 + 0.05 i: the peaks tell the files apart
    shown = {inst.name: (inst.category, [round(layer.peak, 3) for layer in inst.layers])
             for inst in kit.instruments}
    assert shown == {"Snare": ("snare", [0.3]), "Kick": ("kick", [0.45, 0.5]),
                     "Floor Tom 14in": ("tom", [0.6]), "Floor Tom 16 in": ("tom", [0.65])}
    for index, spelled in enumerate((["Kick In/kick_01", "Kick Out/kick_01"],
                                     ["Kick/Inside/kick_01", "Kick/Outside/kick_01"])):
        pack = tmp_path / f"spelled{index}"
        write_shots(pack, ["Snare/snare_01", *spelled])
        with pytest.warns(UserWarning, match="'Kick' from 'Out(side)?', not 'In(side)?'"):
            kicks = load_kit(pack).by_category("kick")
        assert [[round(layer.peak, 3) for layer in kick.layers] for kick in kicks] == [[0.4]]


@pytest.mark.parametrize("name, split", [
    ("Floor Tom 16in", ("Floor Tom 16in", "", "")), ("Kick 22 in", ("Kick 22 in", "", "")),
    ("Floor_Tom_16_in", ("Floor_Tom_16_in", "", "")), ("Kick-22-in", ("Kick-22-in", "", "")),
    ("Tom.12.in", ("Tom.12.in", "", "")), ("Tom 12 inch", ("Tom 12 inch", "", "")),
    ("Fill In", ("Fill In", "", "")), ("Crash_Fade_In", ("Crash_Fade_In", "", "")),
    ("Crash Fade Out", ("Crash Fade Out", "", "")),
    ("Kick In", ("Kick", "in", "In")), ("Kick_22_Out", ("Kick_22", "out", "Out")),
    ("Kick-In-02", ("Kick-02", "in", "In")), ("Snare Fill Top", ("Snare Fill", "top", "Top")),
    ("Tom 8in", ("Tom 8in", "", "")), ("Kick_1_In", ("Kick_1", "in", "In")),
    ("Kick1_In", ("Kick1", "in", "In")), ("Tom2_In", ("Tom2", "in", "In")),
    ("Kick 1 In", ("Kick 1", "in", "In")), ("Kick_01_In", ("Kick_01", "in", "In")),
    ("Kick_100_In", ("Kick_100", "in", "In")), ("Tom 8 in_OH", ("Tom 8 in", "oh", "OH")),
    ("Snare 14x6.5 in_Bottom", ("Snare 14x6.5 in", "bottom", "Bottom")),
    ("Kick_1_In_02", ("Kick_1_02", "in", "In"))])
def test_a_size_and_a_fill_or_fade_in_or_out_are_no_mics(name, split):
    """"An 'in' after a number is a size" held with a space or none between: with "_",
    "-" or "." (file names often have no spaces) Floor_Tom_16_in was read as the tom's
    inside mic; and "Fill In", "Crash Fade In" and "Crash Fade Out" as in and out mics.
    Read in a kit whose other names use mic words: outside one, see the next test."""
    from training.kits import _split_mic

    assert _split_mic(name, "", True) == split


@pytest.mark.parametrize("name", ["Tom 8 in", "Tom_8_in", "Splash 8 in", "Tom 6 in",
                                  "Kick 1 In", "Kick_01_In"])
def test_an_in_after_a_number_is_a_size_outside_a_multi_mic_kit(name):
    """After a single digit or a 0-led number "in" is a size or a numbered drum's inside
    mic; in a kit whose names use no other mic word it is a size, as "Tom 10 in" is."""
    from training.kits import _split_mic

    assert _split_mic(name, "", False) == (name, "", "")
    assert _split_mic("Kick In", "", False) == ("Kick", "in", "In")


def test_a_lone_tom_8_in_leaves_the_hi_hats_apart(tmp_path):
    """Read as the inside mic, the "in" of "Tom 8 in" (its size) made the folder a multi-mic
    kit, so "HH_Close" and "HH_OH", a closed and an open hi-hat, were one hi-hat read from
    its close mic, the open one dropped with a warning, and the tom was named "Tom 8"."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare", "Kick", "Tom 8 in", "Tom 10 in", "HH_Close", "HH_OH"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kit = load_kit(folder)
    assert {inst.name: inst.category for inst in kit.instruments} == {
        "Snare": "snare", "Kick": "kick", "Tom 8 in": "tom", "Tom 10 in": "tom",
        "HH_Close": "hihat_closed", "HH_OH": "hihat_open"}


def test_sizes_and_fades_keep_their_pieces_apart(tmp_path):
    """Read as mics, "Crash Fade In" and "Crash Fade Out" were one crash heard through
    its outside mic, and "Floor_Tom_16_in" a tom named "Floor_Tom_16" that made the
    folder a multi-mic kit; they are pieces of their own, named in full."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare/snare_01", "Kick/kick_01", "Toms/Floor_Tom_16_in",
                         "Toms/Rack-12-in", "Toms/Tom.10.in", "Crash Fade In", "Crash Fade Out"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kit = load_kit(folder)
    assert {inst.name: inst.category for inst in kit.instruments if inst.category == "tom"} == {
        "Floor_Tom_16_in": "tom", "Toms/Rack-12-in": "tom", "Tom.10.in": "tom"}
    assert sorted(inst.name for inst in kit.instruments if "Fade" in inst.name) == [
        "Crash Fade In", "Crash Fade Out"]


def test_a_numbered_kicks_in_mic_is_no_size(tmp_path):
    """Read as a size, the "In" of Kick_1_In and Kick_2_In made each a kick of its own,
    played beside the kick read from the Out mics, with no warning; a layer's single
    digit makes no size, so they are the in mics of the one kick read from its Out mics."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare_Top", "Kick_1_In", "Kick_1_Out", "Kick_2_In", "Kick_2_Out"])
    with pytest.warns(UserWarning, match="'Kick' from 'Out', not 'In'"):
        kit = load_kit(folder)
    # write_shots makes the i-th one-shot peak at 0.3 + 0.05 i: the peaks tell the files apart
    shown = {inst.name: (inst.category, [round(layer.peak, 3) for layer in inst.layers])
             for inst in kit.instruments}
    assert shown == {"Snare": ("snare", [0.3]), "Kick": ("kick", [0.4, 0.5])}


def test_an_in_before_another_mic_word_is_a_size(tmp_path):
    """Read as the inside mic, the "in" of Tom 8 in_OH and Snare 14x6.5 in_Bottom (a
    single digit or a decimal before it) made a second tom played from its overhead file
    and a second snare from its bottom mic, with no warning; a one-shot has one mic, so
    with another mic word after it that "in" is a size and each drum is one, closest mic."""
    folder = tmp_path / "pack"
    write_shots(folder, ["Snare_Top", "Tom 8 in_Close", "Tom 8 in_OH",
                         "Snare 14x6.5 in_Top", "Snare 14x6.5 in_Bottom"])
    with pytest.warns(UserWarning, match="'Tom 8 in' from 'Close', not 'OH'") as caught:
        kit = load_kit(folder)
    assert "'Snare 14x6.5 in' from 'Top', not 'Bottom'" in str(caught[0].message)
    # write_shots makes the i-th one-shot peak at 0.3 + 0.05 i: the peaks tell the files apart
    shown = {inst.name: (inst.category, [round(layer.peak, 3) for layer in inst.layers])
             for inst in kit.instruments}
    assert shown == {"Snare": ("snare", [0.3]), "Tom 8 in": ("tom", [0.35]),
                     "Snare 14x6.5 in": ("snare", [0.45])}


def test_folder_groups_one_shots_whose_names_differ_only_in_case(tmp_path):
    """Snare_soft, snare_med and SNARE_hard were three snares of one layer each; grouped
    case-insensitively they are one snare with three layers, named as first spelled."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for velocity, stem in ((0.2, "Snare_soft"), (0.5, "snare_med"), (0.9, "SNARE_hard")):
        sf.write(folder / f"{stem}.wav", one_shot("snare", 190, 0.16, 0.5, velocity), 48000)
    sf.write(folder / "kick.wav", one_shot("kick", 55, 0.3, 0.5, 1.0), 48000)
    (snare,) = load_kit(folder).by_category("snare")
    assert snare.name == "SNARE"  # the first in sorted order
    assert [layer.source for layer in snare.layers] == ["Snare_soft.wav", "snare_med.wav",
                                                        "SNARE_hard.wav"]
    assert [layer.high for layer in snare.layers] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_folder_skips_macos_appledouble_files(tmp_path):
    """``._name.wav`` companions are metadata, not audio: skipped at top level and in
    instrument subfolders instead of failing the whole kit."""
    folder = tmp_path / "shots"
    (folder / "hihat").mkdir(parents=True)
    for velocity, stem in ((0.3, "snare_soft"), (1.0, "snare_hard")):
        sf.write(folder / f"{stem}.wav", one_shot("snare", 190, 0.16, 0.5, velocity), 48000)
    sf.write(folder / "hihat" / "1.wav", one_shot("metal", 7000, 0.05, 0.3, 0.5), 48000)
    appledouble = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)
    (folder / "._snare_soft.wav").write_bytes(appledouble)
    (folder / "hihat" / "._1.wav").write_bytes(appledouble)
    layers = {inst.name: len(inst.layers) for inst in load_kit(folder).instruments}
    assert layers == {"snare": 2, "hihat": 1}


def _pitched_kit_xml(instruments: str) -> str:
    return ('<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>Pitched</name>'
            f"<instrumentList>{instruments}</instrumentList></drumkit_info>")


def _pitched_instrument(name: str, filename: str, pitch: str, offset: str = "") -> str:
    offset_tag = f"<pitchOffset>{offset}</pitchOffset>" if offset else ""
    return (f"<instrument><name>{name}</name>{offset_tag}<instrumentComponent><layer>"
            f"<filename>{filename}</filename><min>0</min><max>1</max><gain>1</gain>"
            f"<pitch>{pitch}</pitch></layer></instrumentComponent></instrument>")


def test_hydrogen_layer_pitch_is_applied(tmp_path):
    """Kits reuse one tom sample at several <pitch>es for their toms (Colombo's tomhi2-4):
    +12 semitones plays an octave up in half the time, <pitchOffset> adds to it, and a
    zero pitch leaves the samples exactly as read."""
    folder = tmp_path / "pitched"
    folder.mkdir()
    sf.write(folder / "snare.wav", one_shot("snare", 190, 0.16, 0.5, 1.0), 48000)
    sf.write(folder / "tom.wav", one_shot("tom", 150, 0.35, 1.0, 1.0), 48000)
    (folder / "drumkit.xml").write_text(_pitched_kit_xml(
        _pitched_instrument("Snare", "snare.wav", "0")
        + _pitched_instrument("tomhi1", "tom.wav", "0")
        + _pitched_instrument("tomhi2", "tom.wav", "12")
        + _pitched_instrument("tomhi3", "tom.wav", "5", offset="7")))
    toms = {inst.name: inst for inst in load_kit(folder).by_category("tom")}
    plain, octave, offset = (toms[name].layers[0].samples
                             for name in ("tomhi1", "tomhi2", "tomhi3"))
    read = sf.read(folder / "tom.wav", dtype="float32")[0]
    assert np.array_equal(plain, trim_tail(read))
    assert octave.size == pytest.approx(plain.size / 2, abs=2)
    assert toms["tomhi2"].centroid_hz > 1.5 * toms["tomhi1"].centroid_hz
    assert np.array_equal(offset, octave)


def test_a_layers_lead_is_where_its_hit_sounds():
    """A one-shot's file may start with silence and a faint lead-in before its hit: the
    layer's ``lead`` is the hit's first sample within 30 dB of its peak."""
    hit = one_shot("snare", 190, 0.16, 0.5, 1.0)
    lead_in = np.zeros(960, np.float32)
    lead_in[480:] = 0.005  # -46 dB re the hit's peak: a previous hit's tail, noise
    layer = Layer(np.concatenate([lead_in, hit]), 0.0, 1.0, "late.wav")
    assert layer.lead == 960 + attack_sample(hit) and attack_sample(hit) < 24
    assert Layer(np.zeros(100, np.float32), 0.0, 1.0, "silent.wav").lead == 0


def _multi_mic_kit(folder, components, snare_parts, extra=""):
    """A Hydrogen 1.x kit with the given <drumkitComponent>s (id, name) and a Snare with one
    <instrumentComponent> per (component id, sample file) in ``snare_parts``."""
    folder.mkdir()
    listed = "".join(f"<drumkitComponent><id>{cid}</id><name>{name}</name>"
                     "<volume>1</volume></drumkitComponent>" for cid, name in components)
    parts = "".join(f"<instrumentComponent><component_id>{cid}</component_id><gain>1</gain>"
                    f"<layer><filename>{filename}</filename><min>0</min><max>1</max>"
                    "<gain>1</gain><pitch>0</pitch></layer></instrumentComponent>"
                    for cid, filename in snare_parts)
    (folder / "drumkit.xml").write_text(
        '<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>Multi</name>'
        f"<componentList>{listed}</componentList><instrumentList>"
        f"<instrument><name>Snare</name>{parts}</instrument>{extra}"
        "</instrumentList></drumkit_info>")
    return folder


def test_multi_mic_kit_reads_the_close_component_only(tmp_path):
    """Hydrogen plays all components of an instrument together: the overhead's layer is
    not a round-robin alternative of the close one, so it never enters the snare target.
    The close component is picked by name even when listed second, and named in a warning."""
    folder = tmp_path / "multi"
    kit_dir = _multi_mic_kit(folder, [(0, "Overhead"), (1, "Close")],
                             [(0, "snare_oh.wav"), (1, "snare_close.wav")])
    sf.write(folder / "snare_oh.wav", one_shot("snare", 190, 0.3, 0.5, 0.2, seed=1), 48000)
    sf.write(folder / "snare_close.wav", one_shot("snare", 190, 0.16, 0.5, 1.0), 48000)
    with pytest.warns(UserWarning, match=r"2 mic components \('Overhead', 'Close'\); "
                                         r"only 'Close' is used"):
        snare = load_kit(kit_dir).by_category("snare")[0]
    assert [layer.source for layer in snare.layers] == ["snare_close.wav"]


@pytest.mark.parametrize("names, used", [
    (["Overhead", "Room"], "Overhead"),  # no close-sounding name: the first listed
    (["Snare Bottom", "Snare Top", "OH"], "Snare Top"),
    (["Room", "Main"], "Main"),
    (["Kit Direct", "Ambience"], "Kit Direct"),
])
def test_multi_mic_component_choice_by_name(tmp_path, names, used):
    folder = tmp_path / "multi"
    components = list(enumerate(names))
    _multi_mic_kit(folder, components, [(cid, f"snare_{cid}.wav") for cid, _ in components])
    for cid, _ in components:
        sf.write(folder / f"snare_{cid}.wav", one_shot("snare", 190, 0.16, 0.5, 1.0), 48000)
    with pytest.warns(UserWarning, match=f"only '{used}' is used"):
        snare = load_kit(folder).by_category("snare")[0]
    assert [layer.source for layer in snare.layers] == [f"snare_{names.index(used)}.wav"]


def test_single_mic_component_list_loads_without_warning(tmp_path):
    """GMRockKit and TR808EmulationKit list one component ("Main"): nothing to warn about."""
    folder = _multi_mic_kit(tmp_path / "one", [(0, "Main")], [(0, "snare.wav")])
    sf.write(folder / "snare.wav", one_shot("snare", 190, 0.16, 0.5, 1.0), 48000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snare = load_kit(folder).by_category("snare")[0]
    assert [layer.source for layer in snare.layers] == ["snare.wav"]


def test_instrument_missing_from_the_chosen_mic_reads_its_own(tmp_path):
    """A crash that only the overhead recorded is kept (from its one component) rather than
    dropped; the snare still reads the close mic alone."""
    folder = tmp_path / "multi"
    crash = ("<instrument><name>Crash</name><instrumentComponent><component_id>1"
             "</component_id><layer><filename>crash_oh.wav</filename><min>0</min><max>1</max>"
             "</layer></instrumentComponent></instrument>")
    _multi_mic_kit(folder, [(0, "Close"), (1, "Overhead")],
                   [(0, "snare_close.wav"), (1, "snare_oh.wav")], extra=crash)
    sf.write(folder / "snare_close.wav", one_shot("snare", 190, 0.16, 0.5, 1.0), 48000)
    sf.write(folder / "snare_oh.wav", one_shot("snare", 190, 0.3, 0.5, 0.2), 48000)
    sf.write(folder / "crash_oh.wav", one_shot("metal", 4000, 0.9, 2.0, 1.0), 48000)
    with pytest.warns(UserWarning, match="only 'Close' is used"):
        kit = load_kit(folder)
    sources = {inst.name: [layer.source for layer in inst.layers] for inst in kit.instruments}
    assert sources == {"Snare": ["snare_close.wav"], "Crash": ["crash_oh.wav"]}


def test_folder_of_hydrogen_kits_is_refused(tmp_path):
    """A folder holding kits (Hydrogen's drumkits/ folder) read as one-shots would make each
    whole kit one instrument, cymbals in the snare target: refused, naming the kits."""
    parent = tmp_path / "drumkits"
    write_synthetic_kit(parent / "KitB", velocities=(1.0,), seed=2)
    write_synthetic_kit(parent / "KitA", velocities=(1.0,), seed=1)
    with pytest.raises(KitError, match=r"holds Hydrogen kits \(KitA, KitB\).*one --kit per kit"):
        load_kit(parent)
    sf.write(parent / "snare.wav", one_shot("snare", 190, 0.16, 0.5, 1.0), 48000)
    with pytest.raises(KitError, match="holds Hydrogen kits"):  # one-shots beside a kit too
        load_kit(parent)
    assert load_kit(parent / "KitA").name == "debleed synthetic kit"
    outer = tmp_path / "outer"  # kits a folder further down are kits too, not one-shots
    write_synthetic_kit(outer / "drumkits" / "KitC", velocities=(1.0,), seed=3)
    with pytest.raises(KitError, match=r"holds Hydrogen kits \(drumkits/KitC\)"):
        load_kit(outer)


def test_old_style_drumkit_xml(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    sf.write(folder / "snare.flac", one_shot("snare", 190, 0.16, 0.5, 1.0), 44100)
    sf.write(folder / "bd.flac", one_shot("kick", 55, 0.3, 0.5, 1.0), 44100)
    (folder / "drumkit.xml").write_text(
        "<drumkit_info><name>Old</name><instrumentList>"
        "<instrument><id>0</id><filename>bd.flac</filename><name>Kick</name></instrument>"
        "<instrument><id>1</id><filename>snare.flac</filename><name>Snare Rock</name></instrument>"
        "<instrument><id>2</id><filename>emptySample.flac</filename><name>17</name></instrument>"
        "</instrumentList></drumkit_info>")
    kit = load_kit(folder)
    assert [(i.name, i.category) for i in kit.instruments] == [("Kick", "kick"),
                                                               ("Snare Rock", "snare")]
    assert kit.instruments[0].layers[0].low == 0.0 and kit.instruments[0].layers[0].high == 1.0


def test_pick_layer_by_velocity(synthetic_kit, rng):
    snare = synthetic_kit.by_category("snare")[0]
    assert snare.pick_layer(0.2, rng) == 0
    assert snare.pick_layer(0.9, rng) == 1


def test_pick_layer_takes_the_innermost_of_nested_ranges(rng):
    """Millo_MultiLayered2 nests its cymbal and tom ranges ([0, .3], [0, .5], ...): a soft
    touch plays the softest layer that reaches it, as in Hydrogen, not a random harder one.
    Identical ranges stay a round-robin set."""
    def instrument(ranges):
        layers = tuple(Layer(np.full(8, 0.5, np.float32), low, high, f"l{i}")
                       for i, (low, high) in enumerate(ranges))
        return Instrument("Crash", "crash", layers, 5000.0)

    nested = instrument([(0.0, 0.3), (0.0, 0.5), (0.0, 0.7), (0.0, 1.0)])
    assert {nested.pick_layer(0.2, rng) for _ in range(50)} == {0}
    assert {nested.pick_layer(0.6, rng) for _ in range(50)} == {2}
    assert {nested.pick_layer(0.9, rng) for _ in range(50)} == {3}
    round_robin = instrument([(0.0, 1.0), (0.0, 1.0)])
    assert {round_robin.pick_layer(0.4, rng) for _ in range(50)} == {0, 1}
    touching = instrument([(0.0, 0.21), (0.2, 0.4)])
    assert {touching.pick_layer(0.205, rng) for _ in range(50)} == {0, 1}


def test_cache_and_reload_on_change(tmp_path):
    kit_dir = write_synthetic_kit(tmp_path / "kit", velocities=(1.0,))
    first = load_kit(kit_dir)
    assert load_kit(kit_dir) is first
    xml = kit_dir / "drumkit.xml"
    stat = xml.stat()
    os.utime(xml, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_kit(kit_dir) is not first


def test_malformed_xml_is_a_kit_error(tmp_path):
    kit_dir = write_synthetic_kit(tmp_path / "kit", velocities=(1.0,))
    (kit_dir / "drumkit.xml").write_text("<drumkit_info><instrumentList><instrument>")
    with pytest.raises(KitError, match="malformed drumkit.xml"):
        load_kit(kit_dir)


@pytest.mark.parametrize("declared", ["ANSI", "Shift_JIS"])
def test_an_xml_encoding_python_cannot_read_is_a_kit_error(tmp_path, declared):
    """An unknown (LookupError) or multi-byte (ValueError) declared encoding was a traceback."""
    kit_dir = write_synthetic_kit(tmp_path / "kit", velocities=(1.0,))
    xml = kit_dir / "drumkit.xml"
    text = xml.read_text(encoding="utf-8").split("?>", 1)[-1]
    xml.write_text(f'<?xml version="1.0" encoding="{declared}"?>{text}', encoding="utf-8")
    with pytest.raises(KitError, match="malformed drumkit.xml .*re-save it as UTF-8"):
        load_kit(kit_dir)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_number_that_is_not_finite_is_a_kit_error(tmp_path, value):
    """<pitch>inf</pitch> resampled for ever; a NaN gain dropped every layer, and the kit
    was said to have no snare."""
    kit_dir = write_synthetic_kit(tmp_path / "kit", velocities=(1.0,))
    xml = kit_dir / "drumkit.xml"
    text = xml.read_text(encoding="utf-8")
    assert "<gain>" in text
    xml.write_text(text.replace("<gain>1</gain>", f"<gain>{value}</gain>", 1), encoding="utf-8")
    with pytest.raises(KitError, match=f"<gain> is not a number: '{value}'"):
        load_kit(kit_dir)


def test_missing_sample_is_a_kit_error(tmp_path):
    kit_dir = write_synthetic_kit(tmp_path / "kit", velocities=(1.0,))
    (kit_dir / "snare_1.wav").unlink()
    with pytest.raises(KitError, match="snare_1.wav: sample file named in the kit is missing"):
        load_kit(kit_dir)


def test_missing_percussion_extra_is_skipped_with_warning(kit_missing_an_extra):
    with pytest.warns(UserWarning, match="cowbell.wav"):
        kit = load_kit(kit_missing_an_extra)
    assert "Cowbell" not in [inst.name for inst in kit.instruments]


def test_kit_without_snare_and_missing_folder(tmp_path):
    folder = tmp_path / "nosnare"
    folder.mkdir()
    sf.write(folder / "kick.wav", one_shot("kick", 55, 0.3, 0.5, 1.0), 48000)
    with pytest.raises(KitError, match="no snare"):
        load_kit(folder)
    with pytest.raises(KitError, match="no such kit folder"):
        load_kit(tmp_path / "absent")
    # one of the kit's samples given for the kit was read as XML: "malformed drumkit.xml"
    with pytest.raises(KitError, match=r"kick\.wav: a file, not a kit; give the kit's folder"):
        load_kit(folder / "kick.wav")


def test_test_kit_is_recognised(tmp_path):
    kit = load_kit(write_synthetic_kit(tmp_path / "k", velocities=(1.0,),
                                       name="The Black Pearl 1.0"))
    assert kit.is_test_kit


@pytest.mark.parametrize("with_rim_click", [False, True])
def test_a_bare_stick_is_the_side_stick_unless_the_kit_names_one(tmp_path, with_rim_click):
    """GMRockKit's "Stick" is its side stick; ForzeeStereo has a "Rim Click" too, and its
    "Stick" (sticks clicked together) was played as half its side-stick hits, into the
    clean snare target."""
    folder = tmp_path / "shots"
    folder.mkdir()
    sf.write(folder / "snare.wav", one_shot("snare", 190, 0.16, 0.5, 1.0), 48000)
    sf.write(folder / "stick.wav", one_shot("snare", 900, 0.03, 0.5, 0.6), 48000)
    if with_rim_click:
        sf.write(folder / "rim click.wav", one_shot("snare", 400, 0.05, 0.5, 0.6), 48000)
    kit = load_kit(folder)
    side_sticks = [inst.name for inst in kit.by_category("sidestick")]
    assert side_sticks == (["rim click"] if with_rim_click else ["stick"])
    assert [inst.category for inst in kit.instruments if inst.name == "stick"] == [
        "other" if with_rim_click else "sidestick"]


@pytest.mark.parametrize("names, piece", [
    (["Snare_1", "Kick_1_In", "Kick_1_OH"], "Kick"),
    (["Kick_1", "Snare_1", "Tom2_In", "Tom2_OH", "HH_Closed"], "Tom2"),
])
def test_a_numbered_drums_in_mic_beside_its_overhead_is_one_drum(tmp_path, names, piece):
    """An "In" after a number is the inside mic only in a kit that names its mics, and
    "OH" did not count as naming one (beside a hi-hat it is the open articulation): the
    drum's overhead file became a drum of its own, played as if close-miked, beside one
    named "Kick_1_In". Beside a drum "OH" names its overhead: one drum, closest mic."""
    folder = tmp_path / "pack"
    write_shots(folder, names)
    with pytest.warns(UserWarning, match=f"'{piece}' from 'In', not 'OH'"):
        kit = load_kit(folder)
    inside = next(i for i, name in enumerate(names) if name.endswith("_In"))
    category = "kick" if piece == "Kick" else "tom"
    # write_shots makes the i-th one-shot peak at 0.3 + 0.05 i: the peaks tell the files apart
    assert [(inst.name, [round(layer.peak, 3) for layer in inst.layers])
            for inst in kit.instruments if inst.category == category] == [
        (piece, [round(0.3 + 0.05 * inside, 3)])]


@pytest.mark.parametrize("names, toms, hats", [
    (["Kick", "Snare", "Tom 8 in", "Tom 8 in_OH"], ["Tom 8 in"], []),
    (["Kick", "Snare", "Snare OH", "Tom 8 in", "HH_Close", "HH_OH"], ["Tom 8 in"],
     ["hihat_closed", "hihat_open"]),
    (["Kick", "Snare", "Tom_6_in", "Crash_OH", "HH_Closed", "HH_OH"], ["Tom_6_in"],
     ["hihat_closed", "hihat_open"]),
])
def test_an_in_and_an_oh_of_two_pieces_name_no_mics(tmp_path, names, toms, hats):
    """An "In" after a number and an "OH" make a folder name its mics only on one drum:
    "Tom 8 in" (a size) beside another piece's OH had the folder read as a multi-mic kit,
    its HH_OH a closed hi-hat from above and Tom 8 in_OH a tom of its own."""
    folder = tmp_path / "pack"
    write_shots(folder, names)
    kit = load_kit(folder)
    assert sorted(inst.name for inst in kit.instruments if inst.category == "tom") == toms
    assert sorted(inst.category for inst in kit.instruments
                  if inst.category.startswith("hihat")) == hats


@pytest.mark.parametrize("rate", [16000, 22050])
def test_a_synthetic_kit_at_a_low_rate_is_written_and_loads(tmp_path, rate):
    """``write_synthetic_kit`` offers ``sample_rate`` for resampling tests: below 22 kHz its
    brightness filter (up to 10 kHz) passed Nyquist and scipy refused it."""
    kit = load_kit(write_synthetic_kit(tmp_path / "low", sample_rate=rate, velocities=(1.0,)))
    assert sf.info(str(next((tmp_path / "low").glob("*.wav")))).samplerate == rate
    assert kit.name == "debleed synthetic kit"

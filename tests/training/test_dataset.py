"""Dataset folders (render_dataset + ClipFolder) and the on-the-fly SynthStream."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from dataclasses import replace

import mido
import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from training.dataset import ClipFolder, SynthStream, hit_marks, stream_clip_seed
from training.errors import DatasetError
from training.kits import load_kit
from training.manifest import (MANIFEST, assign_splits, read_manifest, staged_output,
                               valid_count)
from training.synth import Clip, SynthConfig, clip_seed, render_clip, render_dataset

CONFIG = SynthConfig(clip_seconds=1.5, preroll_seconds=0.5)


@pytest.fixture(scope="module")
def dataset_dir(synthetic_kit_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "set"
    return render_dataset([synthetic_kit_dir], out, hours=10 * 1.5 / 3600, seed=4, config=CONFIG)


def test_manifest_and_split(dataset_dir):
    manifest = read_manifest(dataset_dir)
    splits = [c["split"] for c in manifest["clips"]]
    assert len(splits) == 10 and splits.count("valid") == 2
    assert splits == assign_splits(10, 4, 0.2)
    assert assign_splits(10, 5, 0.2) != splits or assign_splits(10, 6, 0.2) != splits
    assert manifest["sample_rate"] == 48000 and manifest["clip_seconds"] == 1.5
    assert manifest["split_version"] == 2


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_a_small_dataset_keeps_a_validation_clip(seed):
    """Two clips or more keep one valid clip at the default fraction (rounding alone would give
    two clips none); larger datasets, where the fraction rounds to one or more, keep the
    split they always had."""
    counts = [assign_splits(n, seed, 0.2).count("valid") for n in (1, 2, 3, 10, 100)]
    assert counts == [0, 1, 1, 2, 20]
    for n in range(3, 400):
        assert assign_splits(n, seed, 0.2).count("valid") in (n // 5, -(-n // 5), 1), n


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.5, 0.9])
def test_more_clips_of_a_seed_keep_the_splits_of_the_first(fraction):
    """Rendering more hours with the same seed keeps every clip's audio: the seeded
    permutation of all the clips gave them other splits (the first 7 of 14 clips: one
    valid clip became a training clip and a training clip a valid one), so a model trained
    on the smaller set validated on clips it had trained on. Every clip common to ``n``
    and ``2n`` clips now keeps its split, once ``n`` holds a validation and a training
    clip by the fraction alone (fewer, the last clip is made the missing one)."""
    for seed in range(20):
        for n in range(math.ceil(max(1 / fraction, 1 / (1 - fraction))), 60):
            assert assign_splits(n, seed, fraction) == assign_splits(2 * n, seed, fraction)[:n]


def test_a_grown_dataset_keeps_its_clips_splits(synthetic_kit_dir, dataset_dir, tmp_path):
    """The audit's case: half the clips of ``dataset_dir`` (same seed, fewer hours) are
    its first five clips, byte for byte, each in the split it has there."""
    small = render_dataset([synthetic_kit_dir], tmp_path / "small", hours=5 * 1.5 / 3600,
                           seed=4, config=CONFIG)
    grown = {c["id"]: c["split"] for c in read_manifest(dataset_dir)["clips"]}
    clips = read_manifest(small)["clips"]
    assert [c["split"] for c in clips].count("valid") == 1
    for clip in clips:
        assert clip["split"] == grown[clip["id"]]
        assert (small / clip["id"] / "noisy.wav").read_bytes() == (
            dataset_dir / clip["id"] / "noisy.wav").read_bytes()


def test_clip_folder_segments(dataset_dir):
    train = ClipFolder(dataset_dir, "train", segment_seconds=0.5)
    assert len(train) == 8
    noisy, clean = train[0]
    assert noisy.shape == clean.shape == (1, 24000) and noisy.dtype == torch.float32
    valid = ClipFolder(dataset_dir, "valid", segment_seconds=0.5, random_segments=False)
    assert len(valid) == 2 * 3
    first = valid[0][0]
    assert torch.equal(first, valid[0][0])  # fixed segments are fixed
    whole = ClipFolder(dataset_dir, None)
    entry = whole.entries("valid")[0]
    clip = whole.load(entry)
    assert np.array_equal(clip.noisy, clip.clean + clip.bleed)
    assert torch.equal(valid[0][0][0], torch.from_numpy(clip.noisy[:24000]))


def test_clip_folder_errors(tmp_path, dataset_dir):
    with pytest.raises(DatasetError, match="manifest"):
        ClipFolder(tmp_path)
    with pytest.raises(DatasetError, match="unknown split"):
        ClipFolder(dataset_dir, "nope")
    # the way out is named: the export's hint can suggest clips under the default segment
    with pytest.raises(DatasetError, match=r"shorter than the 3.0 s segment; train with a "
                                           r"--segment-seconds of at most 1.5$"):
        ClipFolder(dataset_dir, "train", segment_seconds=3.0)


def test_a_broken_clip_stops_the_dataset_from_opening(tmp_path, dataset_dir):
    broken = tmp_path / "broken"
    shutil.copytree(dataset_dir, broken)
    entry = ClipFolder(broken, "valid").clips[0]
    (broken / entry["id"] / "noisy.wav").write_bytes(b"not a wav")
    with pytest.raises(DatasetError, match=f"{entry['id']}/noisy.wav: unreadable clip"):
        ClipFolder(broken, "valid", segment_seconds=0.5)


@pytest.mark.parametrize("damage, message", [
    ("short clean", "noisy.wav and clean.wav differ in length (72000 and 36000 samples)"),
    ("no clean", "clean.wav: unreadable clip"),
    ("garbled noisy", "noisy.wav: unreadable clip")])
def test_training_and_evaluation_refuse_a_broken_clip_in_the_same_words(
        tmp_path, dataset_dir, damage, message):
    """One header check (``check_clip_files``) serves the dataset and ``debleed evaluate``:
    they used to word a clean.wav cut short differently, and evaluate named no file."""

    from training.evaluate import check_clip

    broken = shutil.copytree(dataset_dir, tmp_path / "broken")
    entry = ClipFolder(broken, "valid").clips[0]
    clip = broken / entry["id"]
    if damage == "short clean":
        clean, rate = sf.read(clip / "clean.wav", dtype="float32")
        sf.write(clip / "clean.wav", clean[: len(clean) // 2], rate, subtype="FLOAT")
    elif damage == "no clean":
        (clip / "clean.wav").unlink()
    else:
        (clip / "noisy.wav").write_bytes(b"not a wav")
    with pytest.raises(DatasetError) as opening:
        ClipFolder(broken, "valid", segment_seconds=0.5)
    with pytest.raises(DatasetError) as evaluating:
        check_clip(broken, entry)
    assert str(opening.value) == str(evaluating.value)
    assert str(opening.value).startswith(str(clip)) and message in str(opening.value)


def test_clip_file_check_rates_and_channels(tmp_path):
    """The dataset's rate when given, else the two files' rates must agree; ``mono`` (for
    evaluation, which reads the first channel only) refuses a stereo file, naming it."""

    from training.manifest import ClipFormat, check_clip_files

    clip = tmp_path / "c1"
    clip.mkdir()
    sf.write(clip / "noisy.wav", np.zeros((100, 2), np.float32), 44100)
    sf.write(clip / "clean.wav", np.zeros(100, np.float32), 48000)
    entry = {"id": "c1", "split": "valid"}
    with pytest.raises(DatasetError, match="noisy.wav: 44100 Hz in a 48000 Hz dataset"):
        check_clip_files(tmp_path, entry, 48000)
    with pytest.raises(DatasetError, match=r"noisy.wav: 2 channels; training clips must be mono"):
        check_clip_files(tmp_path, entry, mono=True)
    with pytest.raises(DatasetError, match=r"differ in rate \(44100 and 48000 Hz\)"):
        check_clip_files(tmp_path, entry)
    sf.write(clip / "noisy.wav", np.zeros((100, 2), np.float32), 48000)
    assert check_clip_files(tmp_path, entry, 48000) == ClipFormat(100, 48000)


def test_hit_marks_mark_the_hits_inside_the_segment():
    marks = hit_marks(np.array([5, 100, 130, 400]), 100, 200)
    assert marks.shape == (1, 200) and marks.dtype == torch.float32
    assert marks[0].nonzero()[:, 0].tolist() == [0, 30]


def test_hit_marks_count_two_hits_that_start_on_one_sample():
    """A roll stroke the groove places on another hit's sample is two hits to the level
    metrics (each onset scored): the mark counts both, so the hitlevel loss weighs them so."""
    marks = hit_marks(np.array([130, 5, 130, 140]), 100, 200)
    assert marks[0, 30].item() == 2.0 and marks[0, 40].item() == 1.0
    assert marks.sum().item() == 3.0


def test_clip_folder_items_carry_the_clips_hit_marks(dataset_dir):
    """With ``hits``, every item (random crop, fixed segment or whole clip) carries a mark at
    each snare onset of its clip's meta that falls inside it, and nowhere else; its audio
    is the item's without ``hits``."""
    whole = ClipFolder(dataset_dir, None)
    marked = 0
    for split, seconds, random_segments in (("train", 0.5, True), ("valid", 0.5, False),
                                            ("valid", None, False)):
        folder = ClipFolder(dataset_dir, split, seconds, random_segments, hits=True)
        plain = ClipFolder(dataset_dir, split, seconds, random_segments)
        for index in range(len(folder)):
            item = (index, 7919 * index) if random_segments else index
            noisy, clean, marks = folder[item]
            assert torch.equal(noisy, plain[item][0]) and torch.equal(clean, plain[item][1])
            if seconds is None:
                entry, start = folder.clips[index], 0
            else:
                clip_index, value = folder.items[index]
                entry = folder.clips[clip_index]
                start = 7919 * index % (value + 1) if random_segments else value
            onsets = [o["sample"] for o in whole.load(entry).meta["onsets"] if o["target"]]
            inside = [o - start for o in onsets if start <= o < start + noisy.shape[-1]]
            assert marks[0].nonzero()[:, 0].tolist() == inside
            marked += len(inside)
    assert marked > 10


def test_a_folder_whose_meta_names_no_onsets_is_refused_for_hits(dataset_dir, tmp_path):
    copy = tmp_path / "set"
    shutil.copytree(dataset_dir, copy)
    entry = ClipFolder(copy, "train").clips[0]
    (copy / entry["id"] / "meta.json").write_text("{}")
    with pytest.raises(DatasetError, match=r"meta.json: no list of snare onsets, which the "
                                           r"hitlevel loss scores"):
        ClipFolder(copy, "train", 0.5, hits=True)
    assert len(ClipFolder(copy, "train", 0.5)) == 8  # without hits, as before


def test_synth_stream_segments_carry_their_clips_hit_marks(synthetic_kit_dir):
    """The stream's segments with ``hits``: the same audio as without, and a mark at each
    snare onset of the rendered clip's meta inside the segment."""
    stream = SynthStream([synthetic_kit_dir], CONFIG, segment_seconds=0.5, seed=9, hits=True)
    plain = SynthStream([synthetic_kit_dir], CONFIG, segment_seconds=0.5, seed=9)
    clip = render_clip([load_kit(synthetic_kit_dir)], stream_clip_seed(9, 0), CONFIG)
    onsets = np.array([o["sample"] for o in clip.meta["onsets"] if o["target"]])
    segments = [item for _, item in zip(range(3), stream)]  # the first clip's three
    for (noisy, clean, marks), (plain_noisy, plain_clean) in zip(segments, plain):
        assert torch.equal(noisy, plain_noisy) and torch.equal(clean, plain_clean)
    first = next(a for a in range(clip.noisy.size - 3 * 24000 + 1)
                 if np.array_equal(segments[0][0][0].numpy(), clip.noisy[a:a + 24000]))
    for k, (_, _, marks) in enumerate(segments):
        start = first + k * 24000
        inside = onsets[(onsets >= start) & (onsets < start + 24000)] - start
        assert marks[0].nonzero()[:, 0].tolist() == inside.tolist()
    whole = next(iter(SynthStream([synthetic_kit_dir], CONFIG, seed=9, hits=True)))
    assert whole[2][0].nonzero()[:, 0].tolist() == onsets.tolist() and onsets.size


def test_synth_stream_workers_are_distinct_and_reproducible(synthetic_kit_dir):
    stream = SynthStream([synthetic_kit_dir], CONFIG, segment_seconds=0.5, seed=9)
    loader = DataLoader(stream, batch_size=3, num_workers=2)
    batches = [b for _, b in zip(range(2), loader)]
    again = [b for _, b in zip(range(2), DataLoader(stream, batch_size=3, num_workers=2))]
    for (n1, c1), (n2, c2) in zip(batches, again):
        assert n1.shape == (3, 1, 24000) and torch.equal(n1, n2) and torch.equal(c1, c2)
    # worker 0 and worker 1 render different clips
    assert not torch.equal(batches[0][0], batches[1][0])
    single = next(iter(SynthStream([synthetic_kit_dir], CONFIG, seed=9)))
    assert single[0].shape == (1, int(1.5 * 48000))


def test_synth_stream_crops_do_not_follow_the_kit_choice(synthetic_kit_dir):
    """With a segment that does not divide the clip, the crop's start is free within the
    slack. It was the first draw of the stream that chose the clip's kit, so each kit's
    crops started in its own part of the slack (with two kits, the first kit's in the
    first half)."""
    kits = [synthetic_kit_dir, synthetic_kit_dir]
    stream = iter(SynthStream(kits, CONFIG, segment_seconds=0.4, seed=9))
    segment, loaded = int(0.4 * 48000), [load_kit(path) for path in kits]
    starts: dict[int, list[int]] = {0: [], 1: []}
    for index in range(40):
        first = next(stream)[0][0].numpy()
        next(stream), next(stream)  # three segments a clip
        seed = stream_clip_seed(9, index)
        noisy = render_clip(loaded, seed, CONFIG).noisy
        windows = np.lib.stride_tricks.sliding_window_view(noisy, segment)
        start = int(np.flatnonzero((windows == first).all(axis=1))[0])
        starts[int(np.random.default_rng(seed).integers(2))].append(start)  # as render_clip
    slack = int(1.5 * 48000) - 3 * segment
    for kit in (0, 1):
        assert min(starts[kit]) < slack / 3 and max(starts[kit]) > 2 * slack / 3


def _holds(clip: np.ndarray, part: np.ndarray) -> bool:
    """Whether ``part`` lies in ``clip`` sample for sample: compared only where the clip
    holds ``part``'s loudest sample at the right distance (every offset took 2 minutes)."""
    loudest = int(np.argmax(np.abs(part)))
    starts = np.flatnonzero(clip == part[loudest]) - loudest
    starts = starts[(starts >= 0) & (starts <= clip.size - part.size)]
    return any(np.array_equal(clip[start:start + part.size], part) for start in starts)


def test_holds_finds_a_part_wherever_it_lies():
    clip = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    assert _holds(clip, clip[1234:3234].copy()) and _holds(clip, clip[3000:].copy())
    moved = clip[1234:3234].copy()
    moved[7] += 1e-3
    assert not _holds(clip, moved) and not _holds(clip[:3000], clip[2000:4000].copy())


def test_the_stream_never_trains_on_a_clip_of_the_dataset_of_its_seed(synthetic_kit_dir,
                                                                       dataset_dir):
    """``train --kit K --seed 4`` rendered clip k of ``dataset synth --kit K --seed 4``
    (both from ``clip_seed(4, k)``), so ``evaluate`` on that dataset's validation clips
    scored audio the run trained on. No segment of the stream is now found in any clip of
    the dataset, and no stream seed is a dataset clip's; a run saved before (version 1)
    keeps its stream."""
    clips = [np.asarray(sf.read(dataset_dir / entry["id"] / "noisy.wav", dtype="float32")[0])
             for entry in read_manifest(dataset_dir)["clips"]]
    stream = iter(SynthStream([synthetic_kit_dir], CONFIG, segment_seconds=0.5, seed=4))
    segment = int(0.5 * 48000)
    for _ in range(3 * len(clips)):  # the stream's first ten clips, three segments each
        trained = next(stream)[0][0].numpy()
        assert trained.size == segment
        assert not any(_holds(clip, trained) for clip in clips)
    dataset_seeds = {clip_seed(seed, index) for seed in range(4) for index in range(2000)}
    stream_seeds = {stream_clip_seed(seed, index) for seed in range(4) for index in range(2000)}
    assert not dataset_seeds & stream_seeds
    assert [stream_clip_seed(4, k, version=1) for k in range(3)] == [clip_seed(4, k)
                                                                     for k in range(3)]


@pytest.mark.parametrize("workers", [0, 2])
def test_synth_stream_seek_resumes_exactly(synthetic_kit_dir, workers):
    stream = SynthStream([synthetic_kit_dir], CONFIG, segment_seconds=0.5, seed=2)
    unbroken = [b for _, b in zip(range(6), DataLoader(stream, batch_size=2,
                                                       num_workers=workers))]
    resumed_stream = SynthStream([synthetic_kit_dir], CONFIG, segment_seconds=0.5, seed=2)
    resumed_stream.seek(3, 2)
    resumed = [b for _, b in zip(range(3), DataLoader(resumed_stream, batch_size=2,
                                                      num_workers=workers))]
    for (n1, c1), (n2, c2) in zip(unbroken[3:], resumed):
        assert torch.equal(n1, n2) and torch.equal(c1, c2)


def test_synth_stream_goes_on_past_the_clips_another_layout_used(synthetic_kit_dir,
                                                                monkeypatch):
    """Two processes of two workers drew 5 batches of 3 segments each (three a clip); a
    stream at batch 2 in one process, started at ``clips_after``, draws none of their clips
    and leaves out at most one clip of each worker. Seeking it by 5 batches of 2 re-drew
    most of them. Each clip is rendered as its index, to tell them apart."""
    import training.dataset

    samples = int(CONFIG.clip_seconds * CONFIG.sample_rate)
    index = {stream_clip_seed(2, k): k for k in range(200)}
    monkeypatch.setattr(training.dataset, "render_clip", lambda kits, seed, config: Clip(
        np.full(samples, index[seed], np.float32), *np.zeros((2, samples), np.float32), {}))

    def clips(stream: SynthStream, batch_size: int, workers: int) -> set[int]:
        loader = DataLoader(stream, batch_size=batch_size, num_workers=workers)
        return {int(noisy[0, 0]) for _, (noisy, _) in zip(range(5), loader) for noisy in noisy}

    used = set().union(*(clips(SynthStream([synthetic_kit_dir], CONFIG, 0.5, seed=2, rank=rank,
                                           world_size=2), 3, 2) for rank in (0, 1)))
    first = SynthStream.clips_after(0, 5, {"batch_size": 3, "segments_per_clip": 3,
                                           "workers": 2, "world_size": 2})
    resumed = SynthStream([synthetic_kit_dir], CONFIG, 0.5, seed=2)
    resumed.seek(0, 2, first_clip=first)
    # each process's first worker served 3 batches (clips 0, 4, 8 and 2, 6, 10), the
    # second 2 (1, 5 and 3, 7): 9 and 11 are left out
    assert used == {*range(9), 10} and first == 12
    assert min(clips(resumed, 2, 0)) == first


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_interrupted_render_leaves_no_dataset(synthetic_kit_dir, tmp_path, jobs):
    """Ctrl-C after the third clip: no half dataset (which would train without complaint)
    and no hidden staging folder remain; an empty --out folder is left as it was."""
    out = tmp_path / "data"
    out.mkdir()

    def interrupt(done: float, clip_id: str) -> None:
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_dataset([synthetic_kit_dir], out, hours=10 * 1.5 / 3600, seed=4, config=CONFIG,
                       jobs=jobs, progress=interrupt)
    assert [p.name for p in tmp_path.iterdir()] == ["data"] and not any(out.iterdir())
    root = render_dataset([synthetic_kit_dir], out, hours=3 * 1.5 / 3600, seed=4, config=CONFIG)
    assert len(read_manifest(root)["clips"]) == 3 and root == out


def test_an_empty_out_folder_keeps_its_identity(tmp_path):
    """An existing empty --out (a mount point, a link to a big disk) is filled in place:
    staged beside it and renamed over it, a mount point could not be removed and a link
    was replaced (ENOTDIR), after every clip had been rendered. The manifest comes last, so
    a half-moved folder is no dataset."""
    disk = tmp_path / "disk"
    disk.mkdir()
    link = tmp_path / "data"
    link.symlink_to(disk, target_is_directory=True)
    inode = disk.stat().st_ino
    with staged_output(link) as staging:
        (staging / "clip-00000").mkdir()
        (staging / MANIFEST).write_text("{}")
        (staging / "z.txt").write_text("z")

    assert link.is_symlink() and disk.stat().st_ino == inode
    assert sorted(p.name for p in disk.iterdir()) == ["clip-00000", MANIFEST, "z.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "disk"]


def test_an_empty_out_folder_gets_its_manifest_last(tmp_path, monkeypatch):
    out = tmp_path / "data"
    out.mkdir()
    moved: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr("training.manifest.os.replace",
                        lambda src, dst: (moved.append(Path(dst).name), real_replace(src, dst)))
    with staged_output(out) as staging:
        for name in (MANIFEST, "a.txt", "z.txt"):
            (staging / name).write_text(name)
    assert moved[-1] == MANIFEST and sorted(moved) == sorted([MANIFEST, "a.txt", "z.txt"])


@pytest.mark.parametrize("manifest", ['[]', '"clips"', '{"clips": [{"id": 7, "split": "valid"}]}',
                                      '{"clips": [{"id": "", "split": "valid"}]}'])
def test_a_manifest_of_the_wrong_shape_is_a_dataset_error(tmp_path, manifest):
    """Not an object, or a clip id that cannot name a folder: a traceback, before."""
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(DatasetError, match="manifest needs a 'clips' list"):
        read_manifest(tmp_path)


def _snare_performance(path, hits):
    """A MIDI file of ``hits`` snare notes, a 16th apart at 60 BPM (hit k at k/4 s), each
    with its own velocity (10 + k), so a clip's onsets name the hits it replays."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60))])
    midi.tracks.append(track)
    for k in range(hits):
        track.append(mido.Message("note_on", channel=9, note=38, velocity=10 + k,
                                  time=0 if k == 0 else 60))
        track.append(mido.Message("note_off", channel=9, note=38, time=60))
    midi.save(path)
    return path


def test_midi_validation_clips_replay_no_training_hit(synthetic_kit_dir, tmp_path):
    """Train and valid clips were windows of the same performance drawn clip by clip (a
    valid clip shared seven snare hits with a train clip). Each file's last hits are now
    validation's alone, and meta.json says which file and where the window starts. The
    validation part, shorter than a clip, loops at its 4-s bar (60 BPM, 4/4), so its
    windows may start before it in the file and still hear only its hits."""
    midi = _snare_performance(tmp_path / "groove.mid", 16)  # 4 s; the last 3 hits validate
    config = replace(CONFIG, bleed_only_probability=0.0)
    root = render_dataset([synthetic_kit_dir], tmp_path / "set", hours=10 * 1.5 / 3600,
                          seed=4, config=config, midi=[midi])
    metas = {"train": [], "valid": []}
    for entry in read_manifest(root)["clips"]:
        metas[entry["split"]].append(json.loads((root / entry["id"] / "meta.json").read_text()))
    train, valid = ({o["velocity"] for meta in metas[split] for o in meta["onsets"]}
                    for split in ("train", "valid"))
    assert len(metas["valid"]) == 2 and not train & valid and valid == {23, 24, 25}
    for meta in metas["train"] + metas["valid"]:
        assert meta["midi_file"] == "groove.mid" and meta["style"] == "midi"
        # hit k (velocity 10 + k) is struck at k/4 s in the file; its onset marks where it
        # sounds, at the one-shot's attack (a fraction of a ms into the re-tuned file)
        for onset in meta["onsets"]:
            assert (meta["midi_start"] + onset["time"]) % 4 == pytest.approx(
                (onset["velocity"] - 10) / 4, abs=1e-3)
    starts = {split: [meta["midi_start"] for meta in metas[split]] for split in metas}
    assert max(starts["train"]) + CONFIG.clip_seconds <= 3.25
    assert [meta["midi_loop"] for meta in metas["train"]] == [None] * 8
    assert [meta["midi_loop"] for meta in metas["valid"]] == [[0.0, 4.0]] * 2


def _groove(path, beats, starts=(0,), tempo_change=None):
    """A 4/4 GM groove at 120 BPM, ``beats`` beats from each of ``starts`` (beats): kick and
    snare on the beats, hi-hats on the eighths, each hit with its own velocity (10 + its
    index), so a clip's onsets name the hits it replays. ``tempo_change``: (beat, bpm)."""
    hits = sorted([(start + k, 36 if k % 2 == 0 else 38) for start in starts
                   for k in range(beats)]
                  + [(start + k / 2, 42) for start in starts for k in range(2 * beats)])
    midi = mido.MidiFile(ticks_per_beat=480)
    messages = [(0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)))]
    if tempo_change:
        messages.append((tempo_change[0] * 480,
                         mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_change[1]))))
    messages += [(round(beat * 480), mido.Message("note_on", channel=9, note=note,
                                                  velocity=10 + k))
                 for k, (beat, note) in enumerate(hits)]
    messages.sort(key=lambda item: item[0])
    track = mido.MidiTrack()
    now = 0
    for tick, message in messages:
        track.append(message.copy(time=tick - now))
        now = tick
    midi.tracks.append(track)
    midi.save(path)
    return path


def _metas(root):
    """Each split's clips' meta.json, in manifest order."""
    metas = {}
    for entry in read_manifest(root)["clips"]:
        metas.setdefault(entry["split"], []).append(
            json.loads((root / entry["id"] / "meta.json").read_text()))
    return metas


def test_midi_windows_are_drawn_where_the_drums_play(synthetic_kit_dir, tmp_path):
    """Windows were drawn anywhere in a part: a song whose drums enter after a 40-s intro
    gave 4 of 9 training clips no hit, only room tone raised 45-54 dB to a clip's level.
    A window now starts at most 0.5 s before its part's first hit, and one that would hold
    no hit (here in a 20-s break) is drawn again."""
    song = _groove(tmp_path / "song.mid", 8, starts=(40, 88))  # drums at 20-24 and 44-48 s
    config = replace(CONFIG, bleed_only_probability=0.0)
    root = render_dataset([synthetic_kit_dir], tmp_path / "set", hours=40 * 1.5 / 3600,
                          seed=3, config=config, midi=[song])
    metas = _metas(root)
    assert len(metas["train"]) == 32
    for meta in metas["train"] + metas["valid"]:
        assert meta["onsets"] and meta["midi_loop"] is None
        assert meta["midi_start"] >= 19.5
    starts = [meta["midi_start"] for meta in metas["train"]]
    assert min(starts) < 22 and max(starts) > 40  # both stretches of drums are heard


@pytest.mark.parametrize("bpm", [68, 87])
def test_a_hit_on_the_loops_end_bar_line_is_not_played_twice(synthetic_kit_dir, tmp_path, bpm):
    """Eight quarter-note kicks, the last three for validation: the training part loops its
    first bar, whose end bar line holds the fifth kick. At these tempos float rounding put
    that kick a hair under the line, so it was looped too and every seam played it on top
    of the next pass's first kick."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
    for k in range(8):
        track += [mido.Message("note_on", channel=9, note=36, velocity=20 + k),
                  mido.Message("note_on", channel=9, note=36, velocity=0, time=480)]
    midi.tracks.append(track)
    midi.save(tmp_path / "kicks.mid")
    config = replace(CONFIG, clip_seconds=10.0, bleed_only_probability=0.0)
    root = render_dataset([synthetic_kit_dir], tmp_path / "set", hours=2 * 10.0 / 3600, seed=1,
                          config=config, valid_fraction=0.375, midi=[tmp_path / "kicks.mid"])
    for meta in _metas(root)["train"]:
        samples = [o["sample"] for o in meta["onsets"]]
        assert meta["midi_loop"] and len(samples) == len(set(samples))


@pytest.mark.parametrize("jobs", [1, 2])
def test_midi_parts_shorter_than_a_clip_loop_at_their_bar(synthetic_kit_dir, tmp_path, jobs):
    """A pack of 8-s groove loops with 10-s clips gave training clips whose last 4 s were
    silent and validation clips about 85 % silence. Here 2-bar loops (4 s at 120 BPM) and
    5-s clips: each part loops at its 2-s bar, so hits run through every clip (a gap of
    at most an eighth in training, half a bar in validation, whose part is the second bar's
    second half), and still no validation clip hears a training hit."""
    loops = tmp_path / "loops"
    loops.mkdir()
    for name in ("a.mid", "b.mid"):
        _groove(loops / name, 8)
    config = replace(CONFIG, clip_seconds=5.0, bleed_only_probability=0.0)
    root = render_dataset([synthetic_kit_dir], tmp_path / "set", hours=10 * 5.0 / 3600,
                          seed=2, config=config, midi=[loops], jobs=jobs)
    metas = _metas(root)
    widest = {"train": 0.25, "valid": 1.25}
    for split, loop in (("train", [0.0, 2.0]), ("valid", [2.0, 4.0])):
        for meta in metas[split]:
            times = [0.0] + sorted(o["time"] for o in meta["onsets"]) + [5.0]
            assert meta["midi_loop"] == loop and loop[0] <= meta["midi_start"] <= loop[1]
            assert max(np.diff(times)) <= widest[split] + 1e-3
    heard = {split: {o["velocity"] for meta in metas[split] for o in meta["onsets"]}
             for split in metas}
    assert heard["valid"] == set(range(10 + 18, 10 + 24)) and not heard["train"] & heard["valid"]
    if jobs == 2:  # the same bytes as one process
        single = render_dataset([synthetic_kit_dir], tmp_path / "one", hours=10 * 5.0 / 3600,
                                seed=2, config=config, midi=[loops])
        for clip in read_manifest(root)["clips"]:
            for name in ("noisy.wav", "meta.json"):
                assert ((root / clip["id"] / name).read_bytes()
                        == (single / clip["id"] / name).read_bytes())


def test_a_short_part_that_cannot_loop_is_named_once(synthetic_kit_dir, tmp_path):
    """A tempo change leaves no bar length to loop at: one warning line per file, and its
    windows start where its part does."""
    path = _groove(tmp_path / "rubato.mid", 8, tempo_change=(4, 100))
    config = replace(CONFIG, clip_seconds=5.0, bleed_only_probability=0.0)
    with pytest.warns(UserWarning) as caught:
        root = render_dataset([synthetic_kit_dir], tmp_path / "set", hours=6 * 5.0 / 3600,
                              seed=2, config=config, midi=[path])
    assert [str(w.message) for w in caught] == [
        "rubato.mid: its train and valid parts last less than a 5 s clip and cannot loop, its "
        "tempo or time signature changing: those clips end in silence"]
    metas = _metas(root)
    assert {meta["midi_start"] for meta in metas["train"]} == {0.0}
    assert all(meta["midi_loop"] is None for meta in metas["train"] + metas["valid"])


def _sixteenths(hits=40, bar=2.0):
    """A performance of ``hits`` snare hits a 16th apart at 120 BPM in 4/4 (2-s bars): hit
    k at k/4 s with velocity 10 + k, so a window's hits name themselves."""
    from training.grooves import ROLE, Events
    from training.synth import Performance

    k = np.arange(hits)
    events = Events(k / 4, np.full(hits, ROLE["snare"], np.int8), (10 + k).astype(np.int16),
                    np.full(hits, -1, np.int8))
    return Performance(events, "p.mid", bar=bar)


@pytest.mark.parametrize("n_valid, loop, dropped, longest", [
    (11, (8.0, 10.0), {39, 40, 41}, 0.25),  # cut at 7.25 s, 5/8 into the bar [6, 8)
    (12, (8.0, 10.0), {38, 39, 40, 41}, 0.25),  # cut at 7 s, halfway: a tie goes inside
    (14, (6.0, 10.0), set(), 0.75)])  # cut at 6.5 s, a quarter in: the line before is nearer
def test_a_validation_loop_starts_at_the_bar_line_nearest_its_cut(n_valid, loop, dropped,
                                                                   longest):
    """A validation part (40 16ths in 2-s bars, the last ``n_valid`` validating) lasts less
    than a 5-s clip and loops. From the bar line before its cut at 7.25 s, each pass of
    [6, 10) began with 1.25 s of silence where the training part's hits were; it now loops
    from the bar line nearest the cut, so no gap is longer than a 16th (but for the
    quarter bar of silence a cut a quarter into its bar keeps), dropping the part's hits
    before that line. No validation window hears a training window's hit."""
    from training.synth import _performance_window, split_performance

    parts = split_performance(_sixteenths(), n_valid / 40)
    config = replace(CONFIG, clip_seconds=5.0)
    heard = {}
    for split, part in parts.items():
        heard[split] = set()
        for seed in range(20):
            groove, start, played = _performance_window(part, np.random.default_rng(seed),
                                                        config)
            times = groove.events.time[groove.events.time >= 0]
            heard[split] |= set(groove.events.velocity.tolist())
            if split == "valid":
                assert played == loop and loop[0] <= start <= loop[1]
                gaps = np.diff(np.r_[0.0, np.sort(times), config.clip_seconds])
                assert gaps.max() <= longest + 1e-9
    cut = parts["valid"].start
    assert heard["valid"] == {10 + k for k in range(40) if k / 4 >= cut} - dropped
    assert not heard["train"] & heard["valid"] and max(heard["train"]) < 10 + 4 * cut


@pytest.mark.parametrize("start, stop, loop", [
    (0.0, float("inf"), (0.0, 10.0)),  # a whole file: from its first hit's bar line
    (0.0, 3.25, (0.0, 4.0)), (0.0, 3.0, (0.0, 2.0)), (0.0, 1.0, (0.0, 2.0)),  # training
    (7.25, float("inf"), (8.0, 10.0)), (7.0, float("inf"), (8.0, 10.0)),  # validation
    (6.5, float("inf"), (6.0, 10.0)), (9.25, float("inf"), (8.0, 10.0))])
def test_a_cut_moves_its_loop_edge_to_the_nearest_bar_line_inside(start, stop, loop):
    """40 16ths in 2-s bars cut at ``start`` or ``stop``: a validation part loops from the
    bar line nearest its cut (the later at a tie, 7 s) but keeps its last hit's bar (cut at
    9.25 s, the nearest line, 10 s, is past its hits); a training part loops to the bar
    line nearest its cut (the earlier at a tie, 3 s) and at least a bar; a whole file loops
    from the bar line before its first hit to the one after its last, as before."""
    from training.synth import _bar_loop, _part

    performance = replace(_sixteenths(), start=start, stop=stop)
    assert _bar_loop(performance, _part(performance)[0]) == loop


@pytest.mark.parametrize("n, fraction, valid", [
    (10, 0.2, 2), (2, 0.4, 1), (2, 0.9, 1), (3, 0.9, 2), (5, 0.0, 0)])
def test_valid_count_keeps_one_of_each_split_of_two_or_more(n, fraction, valid):
    """``valid_fraction`` of ``n`` items, rounded, but with two or more items and a
    fraction above 0 at least one validates and at least one trains."""
    assert valid_count(n, fraction) == valid


@pytest.mark.parametrize("fraction, hits, valid_from", [
    (0.2, 16, 3.25), (0.2, 2, 0.25), (0.9, 2, 0.25), (0.0, 16, float("inf"))])
def test_split_performance_keeps_a_hit_each_side(tmp_path, fraction, hits, valid_from):
    """A performance validates on its last ``valid_count`` hits: at least one of each with
    two or more hits and a fraction above 0 (0.9 of two hits rounds to both, and one is
    kept to train), and none at a fraction of 0."""
    from training.midi import read_midi
    from training.synth import Performance, split_performance

    events = read_midi(_snare_performance(tmp_path / "p.mid", hits))
    parts = split_performance(Performance(events, "p.mid"), fraction)
    assert parts["train"].stop == parts["valid"].start == valid_from
    assert parts["train"].start == 0.0 and parts["valid"].stop == float("inf")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_midi_file_too_short_to_split_is_refused(synthetic_kit_dir, tmp_path, jobs):
    """One hit leaves the validation part empty (it started at infinity and the window's
    draw overflowed, a traceback); a split without parts would fall back to generated
    grooves without a word. Refused by name, nothing written. With workers the check ran
    in each one's initializer, and the pool replaced every worker that failed it, forever."""
    midi = _snare_performance(tmp_path / "one.mid", 1)
    with pytest.raises(DatasetError, match="MIDI one.mid: too few hits at distinct times to "
                                           "give the valid split its own part"):
        render_dataset([synthetic_kit_dir], tmp_path / "set", hours=10 * 1.5 / 3600, seed=4,
                       config=CONFIG, midi=[midi], jobs=jobs)
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("split", [None, "test"])
def test_a_valid_fraction_outside_0_1_is_refused_for_any_split(synthetic_kit_dir, tmp_path,
                                                                split):
    """A test set has no validation part, so ``--split test --valid-fraction 7`` went
    through without a word."""
    with pytest.raises(DatasetError, match=r"valid fraction must be in \[0, 1\), got 7"):
        render_dataset([synthetic_kit_dir], tmp_path / "set", hours=10 * 1.5 / 3600, seed=4,
                       config=CONFIG, valid_fraction=7, split=split)
    assert not (tmp_path / "set").exists()


def test_a_kit_given_as_an_xml_not_named_drumkit_renders_that_kit(synthetic_kit_dir, tmp_path):
    """The workers reloaded the kit's folder, not the XML given: without a drumkit.xml
    there, they read its WAVs as loose one-shots, and every clip came from that other kit
    while the manifest named the Hydrogen one."""
    kit = shutil.copytree(synthetic_kit_dir, tmp_path / "kit")
    (kit / "drumkit.xml").rename(kit / "mykit.xml")
    root = render_dataset([kit / "mykit.xml"], tmp_path / "set", hours=2 * 1.5 / 3600, seed=4,
                          config=CONFIG)
    manifest = read_manifest(root)
    assert manifest["kits"] == ["debleed synthetic kit"]
    assert [clip["kit"] for clip in manifest["clips"]] == ["debleed synthetic kit"] * 2

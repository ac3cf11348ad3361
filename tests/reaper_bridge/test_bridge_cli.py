"""``debleed reaper ...`` against the fake REAPER standing in for reapy's distant API."""

from __future__ import annotations

import os
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from fake_reaper import FakeReaper
from reaper_helpers import make_wav

from debleed.cli.main import cli
from reaper_bridge import rpr
from reaper_bridge.install import install
from reaper_bridge.settings import BridgeSettings, load_settings, save_settings, settings_path


@pytest.fixture
def distant(fake: FakeReaper, api, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path) -> FakeReaper:
    """The fake answers as a running REAPER would through reapy; settings point at the tiny model."""
    torch.set_num_threads(1)
    monkeypatch.setattr(rpr, "distant_api", lambda timeout=5.0: api)
    install(fake.resource_path)
    path = settings_path(fake.resource_path)
    settings = load_settings(path)
    settings.model, settings.device = str(tiny_checkpoint), "cpu"
    save_settings(path, settings)
    return fake


def add_snare(fake: FakeReaper, tmp_path: Path) -> None:
    item = fake.add_item(fake.add_track("Snare"), 1.0, 0.4)
    fake.add_take(item, fake.file_source(str(make_wav(tmp_path / "snare.wav", 0.8))), "Snare",
                  D_STARTOFFS=0.1)


def test_denoise_compare_through_distant_api(distant: FakeReaper, tmp_path: Path) -> None:
    add_snare(distant, tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["reaper", "denoise", "--gate", "--compare-variants"])
    assert result.exit_code == 0, result.output
    assert "3 take(s) added, 0 updated; 3 file(s) processed" in result.output
    item = distant.tracks[0].items[0]
    assert [t.name for t in item.takes] == ["Snare", "Snare [gate]", "Snare [debleed]", "Snare [debleed+gate]"]
    assert all(t.values["D_STARTOFFS"] == 0.1 for t in item.takes)
    result = runner.invoke(cli, ["reaper", "compare"])
    assert result.exit_code == 0 and result.output.strip() == "now playing: original"
    assert item.active.name == "Snare"


def test_sidechain_track_option_keys_the_gate(distant: FakeReaper, tmp_path: Path) -> None:
    """A trigger track too quiet to open it (-60 dBFS) keeps the pre-gate shut: the [gate]
    take is silence; a track that is not there, or silent (which would shut every take
    whole), is one error line and no take."""
    add_snare(distant, tmp_path)
    for name, level in (("Trigger", 1e-3), ("Silent", 0.0)):
        trigger = distant.add_item(distant.add_track(name), 0.0, 3.0, selected=False)
        quiet = tmp_path / f"{name}.wav"
        sf.write(quiet, level * np.random.default_rng(2).standard_normal(3 * 48000), 48000,
                 subtype="FLOAT")
        distant.add_take(trigger, distant.file_source(str(quiet)), "trigger")
    runner = CliRunner()
    missing = runner.invoke(cli, ["reaper", "denoise", "--gate", "--sidechain-track", "Nope"])
    assert missing.exit_code == 1 and "sidechain track 'Nope' not found" in missing.output
    silent = runner.invoke(cli, ["reaper", "denoise", "--gate", "--sidechain-track", "Silent"])
    assert silent.exit_code == 1
    assert "sidechain track 'Silent' is silent over every selected item" in silent.output
    item = distant.tracks[0].items[0]
    assert len(item.takes) == 1
    result = runner.invoke(cli, ["reaper", "denoise", "--gate", "--compare-variants",
                                 "--sidechain-track", "trigger"])
    assert result.exit_code == 0, result.output
    peak = {t.name: np.abs(sf.read(t.source.filename, dtype="float32")[0]).max()
            for t in item.takes}
    assert peak["Snare [gate]"] <= peak["Snare"] * 10 ** (-80 / 20) * 1.001  # shut: -80 dB range
    assert peak["Snare [debleed+gate]"] < 1e-3 * peak["Snare"]
    assert peak["Snare [debleed]"] > 0.1 * peak["Snare"]  # the ungated take ignores the key


def test_ungated_takes_reuse_the_cache_whatever_the_sidechain_track(distant: FakeReaper,
                                                                   tmp_path: Path) -> None:
    """The sidechain track was in every take's cache key: naming one for an ungated run,
    then running plain, processed the same file twice. Gated takes still follow the key."""
    add_snare(distant, tmp_path)
    trigger = distant.add_item(distant.add_track("Trigger"), 0.0, 3.0, selected=False)
    distant.add_take(trigger, distant.file_source(str(make_wav(tmp_path / "trigger.wav", 3.0))),
                     "trigger")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["reaper", "denoise", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "1 file(s) processed, 0 reused" in run("--sidechain-track", "Trigger")
    assert "0 file(s) processed, 1 reused from cache" in run()
    keyed = ("--gate", "--sidechain-track", "Trigger")
    assert "1 file(s) processed, 0 reused" in run(*keyed)
    assert "1 file(s) processed, 0 reused" in run("--gate")  # unkeyed: not the keyed file
    assert "0 file(s) processed, 1 reused from cache" in run(*keyed)


def test_gated_takes_of_an_older_gate_are_made_again(distant: FakeReaper, tmp_path: Path,
                                                     monkeypatch) -> None:
    """The gate's hold changed (2026-12-07) and the cache key did not, so a gated take of the
    old gate was reused for the same settings; ungated takes are still reused."""
    from reaper_bridge import jobs

    add_snare(distant, tmp_path)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["reaper", "denoise", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "1 file(s) processed, 0 reused" in run("--gate")
    assert "1 file(s) processed, 0 reused" in run()
    monkeypatch.setattr(jobs, "GATE_VERSION", jobs.GATE_VERSION + 1)
    assert "1 file(s) processed, 0 reused" in run("--gate")
    assert "0 file(s) processed, 1 reused from cache" in run()


def test_compare_names_the_items_that_kept_their_take(distant: FakeReaper, api,
                                                      tmp_path: Path) -> None:
    """``now playing: X`` was printed even where a selected item had no X take and kept
    playing its own; such items are now named, those never processed are not."""
    from reaper_helpers import halve

    from reaper_bridge.bridge import denoise, executor_for

    add_snare(distant, tmp_path)
    gated, plain = (distant.add_item(distant.tracks[0], p, 0.4) for p in (2.0, 3.0))
    for item in (gated, plain):
        distant.add_take(item, distant.file_source(str(tmp_path / "snare.wav")), "Snare")
        item.selected = False
    processors = executor_for({"debleed": halve, "debleed+gate": halve})
    denoise(api, ("debleed",), processors)
    distant.tracks[0].items[0].selected, gated.selected = False, True
    denoise(api, ("debleed+gate",), processors)
    for item in distant.tracks[0].items:
        item.selected = True
    runner = CliRunner()
    outputs = [runner.invoke(cli, ["reaper", "compare"]).output for _ in range(2)]
    assert outputs == ["now playing: original\n",
                       "now playing: [debleed]\nKept their take:\n"
                       "  Snare @ 2.000 s: no [debleed] take\n"]


def test_no_compare_variants_overrides_the_ini(distant: FakeReaper, tmp_path: Path) -> None:
    """``compare_variants = true`` in the INI could not be turned off from the command line."""
    _edit_settings(Path(distant.resource_path), compare_variants=True)
    add_snare(distant, tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["reaper", "denoise", "--no-compare-variants"])
    assert result.exit_code == 0, result.output
    item = distant.tracks[0].items[0]
    assert [t.name for t in item.takes] == ["Snare", "Snare [debleed]"]
    result = runner.invoke(cli, ["reaper", "denoise"])  # no option: the INI's value
    assert result.exit_code == 0 and "2 take(s) added, 1 updated" in result.output, result.output


def test_denoise_with_nothing_selected_is_one_line(distant: FakeReaper) -> None:
    result = CliRunner().invoke(cli, ["reaper", "denoise"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: no audio items selected")


def test_export_through_distant_api(distant: FakeReaper, tmp_path: Path) -> None:
    add_snare(distant, tmp_path)
    distant.tracks[0].name = "Snare [clean]"
    result = CliRunner().invoke(cli, ["reaper", "export", "--out", str(tmp_path / "ex")])
    assert result.exit_code == 0, result.output
    assert "exported 1 clean and 0 bleed" in result.output
    assert len(list((tmp_path / "ex" / "clean").glob("*.wav"))) == 1


def test_install_command_without_reaper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(timeout: float = 5.0):
        raise rpr.ReaperConnectionError("REAPER did not answer")

    monkeypatch.setattr(rpr, "distant_api", unreachable)
    (tmp_path / "REAPER").mkdir()
    result = CliRunner().invoke(cli, ["reaper", "install", "--resource-path", str(tmp_path / "REAPER")])
    assert result.exit_code == 0, result.output
    assert "registering through reaper-kb.ini" in result.output
    assert (tmp_path / "REAPER" / "reaper-kb.ini").read_text().count("SCR 4 0 RS") == 5


def test_doctor_reports_each_check(distant: FakeReaper, monkeypatch: pytest.MonkeyPatch) -> None:
    import reaper_bridge.doctor as doctor

    monkeypatch.setattr(doctor, "distant_api", rpr.distant_api)
    result = CliRunner().invoke(cli, ["reaper", "doctor", "--resource-path", distant.resource_path])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("[ok  ] actions installed")
    assert "[ok  ] REAPER reachable: REAPER 7.22/linux-x86_64" in result.output
    assert "[ok  ] model loads" in result.output and "parameters at 48000 Hz" in result.output
    assert any(line.startswith(("[ok  ] GPU", "[warn] GPU")) for line in lines)
    for name in ("actions registered", "worker python", "package_root", "precision", "gate settings"):
        assert f"[ok  ] {name}: " in result.output


def test_doctor_fails_without_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reaper_bridge.doctor as doctor

    def unreachable(timeout: float = 5.0):
        raise rpr.ReaperConnectionError("REAPER did not answer within 5 s")

    monkeypatch.setattr(doctor, "distant_api", unreachable)
    result = CliRunner().invoke(cli, ["reaper", "doctor", "--resource-path", str(tmp_path)])
    assert result.exit_code == 1
    assert "[FAIL] actions installed" in result.output
    assert "[warn] REAPER reachable: REAPER did not answer" in result.output


def test_install_into_another_folder_than_the_running_reapers(
        fake: FakeReaper, api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(rpr, "distant_api", lambda timeout=5.0: api)
    portable = tmp_path / "Portable"
    portable.mkdir()
    result = CliRunner().invoke(cli, ["reaper", "install", "--resource-path", str(portable)])
    assert result.exit_code == 0, result.output
    assert f"the running REAPER uses {fake.resource_path}, not {portable}" in result.output
    assert fake.registered == [] and (portable / "reaper-kb.ini").read_text().count("SCR 4 0 RS") == 5


def _unreachable(timeout: float = 5.0):
    raise rpr.ReaperConnectionError("REAPER did not answer within 5 s")


def _edit_settings(resource: Path, **changes) -> None:
    path = settings_path(str(resource))
    settings = load_settings(path)
    for key, value in changes.items():
        setattr(settings, key, value)
    save_settings(path, settings)


def _python_without_the_bridge(resource: Path) -> None:
    """Another environment's Python: no site-packages (-S), and isolated mode (-I) ignores
    the PYTHONPATH doctor sets."""
    python = resource / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    python.chmod(0o755)
    _edit_settings(resource, python=str(python))


BREAKAGES = {
    "malformed-ini": (lambda r: Path(settings_path(str(r))).open("a").write("threshold_db = -30dB\n"),
                      "settings: ", "threshold_db = '-30dB' is not a number"),
    "no-kb": (lambda r: (r / "reaper-kb.ini").unlink(), "actions registered: ", "lacks debleed_"),
    "kb-without-ours": (lambda r: (r / "reaper-kb.ini").write_text("KEY 1 65 40001 0\n"),
                        "actions registered: ", "lacks debleed_denoise_selected.py"),
    "package-root": (lambda r: _edit_settings(r, package_root=str(r)), "package_root: ",
                     "no reaper_bridge package there"),
    "precision": (lambda r: _edit_settings(r, precision="int8"), "precision: ",
                  "precision must be one of"),
    "gate-key": (lambda r: _edit_settings(r, gate={"loudness": 3.0}), "gate settings: ",
                 "unknown gate setting(s) loudness"),
    "gate-threshold": (lambda r: _edit_settings(r, gate={"threshold_db": 30.0}), "gate settings: ",
                       "gate threshold 30.0 dB is outside [-120, +24] dBFS"),
    "python": (_python_without_the_bridge, "worker python: ",
               "cannot import reaper_bridge.processing (ModuleNotFoundError"),
    "boot-deleted": (lambda r: (r / "Scripts" / "debleed" / "debleed_boot.py").unlink(),
                     "actions installed: ", "missing debleed_boot.py"),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_doctor_fails_an_install_that_cannot_work(distant: FakeReaper, monkeypatch: pytest.MonkeyPatch,
                                                  name: str) -> None:
    """Each of these passed as ok (or, for the malformed INI, ended in a traceback)."""
    import reaper_bridge.doctor as doctor

    breakage, check, detail = BREAKAGES[name]
    breakage(Path(distant.resource_path))
    monkeypatch.setattr(doctor, "distant_api", _unreachable)
    result = CliRunner().invoke(cli, ["reaper", "doctor", "--resource-path", distant.resource_path])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    fails = [line for line in result.output.splitlines() if line.startswith("[FAIL]")]
    assert len(fails) == 1 and fails[0].startswith(f"[FAIL] {check}") and detail in fails[0], fails


def test_doctor_kb_gap_warns_only_while_reaper_runs_on_that_folder(
        distant: FakeReaper, api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Actions registered through the running REAPER may reach reaper-kb.ini only when it
    quits; a REAPER on another folder says nothing about this one."""
    import reaper_bridge.doctor as doctor

    (Path(distant.resource_path) / "reaper-kb.ini").unlink()
    monkeypatch.setattr(doctor, "distant_api", rpr.distant_api)
    result = CliRunner().invoke(cli, ["reaper", "doctor", "--resource-path", distant.resource_path])
    assert result.exit_code == 0 and "[warn] actions registered: " in result.output, result.output
    other = FakeReaper(str(tmp_path / "other"), str(tmp_path / "media"))
    monkeypatch.setattr(doctor, "distant_api", lambda timeout=5.0: type(api)(other.module()))
    result = CliRunner().invoke(cli, ["reaper", "doctor", "--resource-path", distant.resource_path])
    assert result.exit_code == 1 and "[FAIL] actions registered: " in result.output, result.output


def _fake_reapy(monkeypatch: pytest.MonkeyPatch, **attrs) -> None:
    module = types.ModuleType("reapy")
    module.__dict__.update(attrs)
    monkeypatch.setitem(__import__("sys").modules, "reapy", module)


def test_distant_api_times_out_on_a_hanging_import(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    _fake_reapy(monkeypatch, dist_api_is_enabled=lambda: release.wait(5) and False)
    try:
        with pytest.raises(rpr.ReaperConnectionError, match="did not answer within 0.2 s.*configure_reaper"):
            rpr.distant_api(0.2)
    finally:
        release.set()


def test_distant_api_disabled_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_reapy(monkeypatch, dist_api_is_enabled=lambda: False, reconnect=lambda: None)
    with pytest.raises(rpr.ReaperConnectionError, match="distant API is not enabled"):
        rpr.distant_api(2.0)
    monkeypatch.setitem(__import__("sys").modules, "reapy", None)
    with pytest.raises(rpr.ReaperConnectionError, match="python-reapy is not installed"):
        rpr.distant_api(2.0)


def _retaken(distant: FakeReaper, tmp_path: Path, runner: CliRunner, *options: str):
    """A snare item denoised with the defaults, then with ``options``: the item, the first
    take's file, and both takes' audio; the second run re-pointed the same take."""
    import soundfile as sf

    add_snare(distant, tmp_path)
    item = distant.tracks[0].items[0]
    assert runner.invoke(cli, ["reaper", "denoise"]).exit_code == 0
    first = item.takes[1].source.filename
    assert runner.invoke(cli, ["reaper", "denoise", *options]).exit_code == 0
    assert len(item.takes) == 2 and item.takes[1].source.filename != first  # re-pointed
    audio = [sf.read(path, dtype="float32")[0] for path in (first, item.takes[1].source.filename)]
    return item, first, audio


def test_precision_from_the_option_or_the_ini(distant: FakeReaper, tmp_path: Path) -> None:
    """``--precision bfloat16`` (or ``precision = bfloat16`` in the INI) renders a take close
    to, not equal to, the float32 one; an unknown precision in the INI is one line and adds
    no take."""
    import numpy as np

    runner = CliRunner()
    item, first, (full, mixed) = _retaken(distant, tmp_path, runner, "--precision", "bfloat16")
    error_db = 10 * np.log10(np.sum((mixed - full) ** 2) / np.sum(full ** 2))
    assert -90 < error_db < -30, error_db
    path = settings_path(distant.resource_path)
    settings = load_settings(path)
    settings.precision = "int8"
    save_settings(path, settings)
    result = runner.invoke(cli, ["reaper", "denoise"])
    assert result.exit_code == 1 and "precision" in result.output
    assert len(result.output.strip().splitlines()) == 1 and len(item.takes) == 2


def test_input_max_hz_from_the_option_or_the_ini(distant: FakeReaper, tmp_path: Path) -> None:
    """``--input-max-hz 16000`` (or ``input_max_hz`` in the INI) renders another take than
    the default (the cache key changed, the take is re-pointed); a cut at or above the
    model's Nyquist, or a word where a frequency belongs, is one line and adds no take."""
    import numpy as np

    runner = CliRunner()
    item, first, (default, cut) = _retaken(distant, tmp_path, runner, "--input-max-hz", "16000")
    assert not np.array_equal(default, cut)
    assert runner.invoke(cli, ["reaper", "denoise", "--input-max-hz", "0"]).exit_code == 0
    assert item.takes[1].source.filename == first  # off again: the first take, reused
    _refused_in_the_ini(distant, runner, "input_max_hz", "input_max_hz must be 0")
    assert len(item.takes) == 2


def test_hiss_cut_hz_from_the_option_or_the_ini(distant: FakeReaper, tmp_path: Path) -> None:
    """The test snare is white noise over a tone, so the band above 22.05 kHz is as loud per
    bin as 16-20 kHz even in its quietest frames: a floor by the engine's test, read cut by
    default. ``--hiss-cut-hz 0`` reads it whole (another take), and the default comes back to
    the first take; an absurd cut or a word in the INI is one line and adds no take."""
    import numpy as np
    import soundfile as sf

    runner = CliRunner()
    item, first, (default, whole) = _retaken(distant, tmp_path, runner, "--hiss-cut-hz", "0")
    assert not np.array_equal(default, whole)
    assert runner.invoke(cli, ["reaper", "denoise", "--input-max-hz", "22050"]).exit_code == 0
    cut = sf.read(item.takes[1].source.filename, dtype="float32")[0]
    np.testing.assert_array_equal(cut, default)  # the default read this track cut
    assert runner.invoke(cli, ["reaper", "denoise"]).exit_code == 0
    assert item.takes[1].source.filename == first
    assert load_settings(settings_path(distant.resource_path)).hiss_cut_hz is None  # unset
    _refused_in_the_ini(distant, runner, "hiss_cut_hz", "hiss_cut_hz must be 0 (never cut) or")
    assert len(item.takes) == 2


def _refused_in_the_ini(distant: FakeReaper, runner: CliRunner, key: str, message: str) -> None:
    """``key`` at 30000 Hz (above the model's Nyquist) in the INI, then a word: each is one
    error line (``message``, then "not a frequency") and no action runs."""
    path = settings_path(distant.resource_path)
    settings = load_settings(path)
    setattr(settings, key, 30000.0)
    save_settings(path, settings)
    assert getattr(load_settings(path), key) == 30000.0
    result = runner.invoke(cli, ["reaper", "denoise"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    Path(path).write_text(Path(path).read_text().replace(f"{key} = 30000", f"{key} = high"))
    result = runner.invoke(cli, ["reaper", "denoise"])
    assert result.exit_code == 1 and f"{key} = 'high' is not a frequency" in result.output


def test_the_cache_key_follows_the_hiss_cut_in_effect(tmp_path: Path) -> None:
    """Keyed by the value the engine uses: unset and the engine's default are one key; off,
    or overridden by ``input_max_hz`` (the test never runs), the key is the one takes had
    before the engine had the test, so those are reused; 0 survives the INI as 0, not as
    unset."""
    default = BridgeSettings()
    assert default.cache_key() == BridgeSettings(hiss_cut_hz=22050.0).cache_key()
    assert default.cache_key() != BridgeSettings(hiss_cut_hz=0.0).cache_key()
    assert default.cache_key() != BridgeSettings(hiss_cut_hz=23000.0).cache_key()
    forced = BridgeSettings(input_max_hz=22050.0)
    assert forced.cache_key() == BridgeSettings(input_max_hz=22050.0, hiss_cut_hz=0.0).cache_key()
    path = str(tmp_path / "debleed.ini")
    save_settings(path, BridgeSettings(hiss_cut_hz=0.0))
    assert load_settings(path).hiss_cut_hz == 0.0
    save_settings(path, BridgeSettings())
    assert load_settings(path).hiss_cut_hz is None


def test_the_cache_key_follows_the_shipped_models_file(tmp_path: Path, monkeypatch) -> None:
    """With the shipped model (``model`` empty or "default") the key held no trace of it:
    after an upgrade that ships new weights, every cached [debleed] take of the old ones
    was reused."""
    from denoiser import pretrained

    shipped = tmp_path / "debleed_default.pt"
    shipped.write_bytes(b"old weights")
    monkeypatch.setattr(pretrained, "DEFAULT_MODEL", shipped)
    before = BridgeSettings().cache_key()
    assert BridgeSettings(model="default").cache_key() == before
    os.utime(shipped, ns=(shipped.stat().st_atime_ns, shipped.stat().st_mtime_ns + 10**9))
    assert BridgeSettings().cache_key() != before
    named = BridgeSettings(model=str(shipped)).cache_key()
    assert named == BridgeSettings().cache_key()  # named or not, the same file is one key


@pytest.mark.parametrize("written, read", [("1", True), ("yes", True), ("0", False),
                                           ("off", False), ("", False)])
def test_the_gate_auto_switch_is_written_as_compare_variants_is(tmp_path: Path, written: str,
                                                                read: bool) -> None:
    """``auto = 1`` was read as the number 1 and refused, where ``compare_variants = 1`` in
    the same file is on."""
    path = tmp_path / "debleed.ini"
    path.write_text(f"[debleed]\ncompare_variants = {written}\n[gate]\nauto = {written}\n"
                    "threshold_db = -40\n")
    settings = load_settings(str(path))
    assert settings.gate == {"auto": read, "threshold_db": -40.0}
    assert settings.compare_variants is read


def test_an_empty_gate_number_says_how_to_get_the_default(tmp_path: Path) -> None:
    from reaper_bridge.settings import SettingsError

    path = tmp_path / "debleed.ini"
    path.write_text("[gate]\ndetector_hpf_hz =\n")
    with pytest.raises(SettingsError, match="detector_hpf_hz is empty; give a number, or "
                                            "remove the line for the default"):
        load_settings(str(path))


@pytest.mark.parametrize("text, message", [
    ("[debleed]\ncompare_variants = ture\n",
     "compare_variants = 'ture' is neither true nor false"),
    ("[Gate]\nhold_ms = oops\n", r"section \[Gate\] is read only as \[gate\] \(lower case\)"),
    ("[DEBLEED]\nmodel = my.pt\n", r"section \[DEBLEED\] is read only as \[debleed\]"),
])
def test_a_misspelt_switch_or_section_is_an_error_not_ignored(tmp_path: Path, text: str,
                                                              message: str) -> None:
    """``compare_variants = ture`` read as off, and a ``[Gate]`` section (configparser's
    names are case-sensitive) was dropped whole, bad values and all, doctor included."""
    from reaper_bridge.settings import SettingsError

    path = tmp_path / "debleed.ini"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(str(path))
    path.write_text("[debleed]\ncompare_variants = On\n[gate]\nhold_ms = 20\n")
    settings = load_settings(str(path))
    assert settings.compare_variants is True and settings.gate == {"hold_ms": 20.0}

"""``debleed reaper ...`` against the fake REAPER standing in for reapy's distant API."""

from __future__ import annotations

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
from reaper_bridge.settings import load_settings, save_settings, settings_path


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
    """A silent trigger track keeps the pre-gate shut: the [gate] take is silence; a track
    that is not there is one error line and no take."""
    add_snare(distant, tmp_path)
    trigger = distant.add_item(distant.add_track("Trigger"), 0.0, 3.0, selected=False)
    silent = make_wav(tmp_path / "trigger.wav", 3.0)
    sf.write(silent, np.zeros(3 * 48000, np.float32), 48000, subtype="FLOAT")
    distant.add_take(trigger, distant.file_source(str(silent)), "trigger")
    runner = CliRunner()
    missing = runner.invoke(cli, ["reaper", "denoise", "--gate", "--sidechain-track", "Nope"])
    assert missing.exit_code == 1 and "sidechain track 'Nope' not found" in missing.output
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


def test_doctor_fails_without_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reaper_bridge.doctor as doctor

    def unreachable(timeout: float = 5.0):
        raise rpr.ReaperConnectionError("REAPER did not answer within 5 s")

    monkeypatch.setattr(doctor, "distant_api", unreachable)
    result = CliRunner().invoke(cli, ["reaper", "doctor", "--resource-path", str(tmp_path)])
    assert result.exit_code == 1
    assert "[FAIL] actions installed" in result.output
    assert "[warn] REAPER reachable: REAPER did not answer" in result.output


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


def test_precision_from_the_option_or_the_ini(distant: FakeReaper, tmp_path: Path) -> None:
    """``--precision bfloat16`` (or ``precision = bfloat16`` in the INI) renders a take close
    to, not equal to, the float32 one; an unknown precision in the INI is one line and adds
    no take."""
    import numpy as np
    import soundfile as sf

    add_snare(distant, tmp_path)
    runner = CliRunner()
    item = distant.tracks[0].items[0]
    assert runner.invoke(cli, ["reaper", "denoise"]).exit_code == 0
    first = item.takes[1].source.filename
    assert runner.invoke(cli, ["reaper", "denoise", "--precision", "bfloat16"]).exit_code == 0
    assert len(item.takes) == 2 and item.takes[1].source.filename != first  # re-pointed
    full, mixed = (sf.read(path, dtype="float32")[0] for path in (first, item.takes[1].source.filename))
    error_db = 10 * np.log10(np.sum((mixed - full) ** 2) / np.sum(full ** 2))
    assert -90 < error_db < -30, error_db
    path = settings_path(distant.resource_path)
    settings = load_settings(path)
    settings.precision = "int8"
    save_settings(path, settings)
    result = runner.invoke(cli, ["reaper", "denoise"])
    assert result.exit_code == 1 and "precision" in result.output
    assert len(result.output.strip().splitlines()) == 1 and len(item.takes) == 2

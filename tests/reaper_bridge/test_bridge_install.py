"""``debleed reaper install``: scripts copied, settings written, actions registered."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_reaper import FakeReaper

from reaper_bridge.install import SCRIPTS, command_id, install, package_root
from reaper_bridge.items import BridgeError
from reaper_bridge.rpr import RawRPR
from reaper_bridge.settings import SettingsError, load_settings, settings_path


def scr_lines(resource: Path) -> list[str]:
    return [l for l in (resource / "reaper-kb.ini").read_text().splitlines() if l.startswith("SCR ")]


def test_kb_lines_written_and_idempotent(tmp_path: Path) -> None:
    resource = tmp_path / "REAPER"
    resource.mkdir()
    (resource / "reaper-kb.ini").write_text('KEY 1 65 40001 0\nSCR 4 0 RSabc "Custom: other.lua" "other.lua"\n')
    report = install(str(resource), python="/opt/debleed/bin/python")
    first = (resource / "reaper-kb.ini").read_text()
    install(str(resource), python="/opt/debleed/bin/python")
    assert (resource / "reaper-kb.ini").read_text() == first  # idempotent
    lines = first.splitlines()
    assert lines[:2] == ["KEY 1 65 40001 0", 'SCR 4 0 RSabc "Custom: other.lua" "other.lua"']
    ours = scr_lines(resource)[1:]
    assert len(ours) == len(SCRIPTS) == 5
    expected = (f'SCR 4 0 {command_id("debleed/debleed_denoise_selected.py")} '
                '"Custom: debleed: Denoise selected items" "debleed/debleed_denoise_selected.py"')
    assert ours[0] == expected
    for line, name in zip(ours, SCRIPTS):
        parts = line.split(" ")
        assert parts[:3] == ["SCR", "4", "0"]
        assert parts[3].startswith("RS") and len(parts[3]) == 42
        assert line.endswith(f' "debleed/{name}"') and '"Custom: debleed: ' in line
        assert (resource / "Scripts" / "debleed" / name).is_file()
    assert (resource / "Scripts" / "debleed" / "debleed_boot.py").is_file()
    settings = load_settings(report.settings_file)
    assert settings.python == "/opt/debleed/bin/python" and settings.package_root == package_root()
    assert (Path(settings.package_root) / "reaper_bridge" / "actions.py").is_file()


def test_reinstall_keeps_user_settings(tmp_path: Path) -> None:
    resource = tmp_path / "REAPER"
    resource.mkdir()
    install(str(resource))
    ini = Path(settings_path(str(resource)))
    ini.write_text(ini.read_text().replace("device = auto", "device = cuda") + "threshold_db = -24\n")
    install(str(resource))
    settings = load_settings(str(ini))
    assert settings.device == "cuda" and settings.gate == {"threshold_db": -24.0}


def test_register_through_reachable_reaper(tmp_path: Path) -> None:
    fake = FakeReaper(str(tmp_path / "REAPER"), str(tmp_path / "media"))
    (tmp_path / "REAPER").mkdir()
    report = install(fake.resource_path, api=RawRPR(fake.module()))
    assert not (tmp_path / "REAPER" / "reaper-kb.ini").exists()
    scripts_dir = Path(fake.resource_path) / "Scripts" / "debleed"
    assert [Path(path) for _, _, path, _ in fake.registered] == [scripts_dir / n for n in SCRIPTS]
    assert [commit for *_, commit in fake.registered] == [False] * 4 + [True]
    assert all(add and section == 0 for add, section, _, _ in fake.registered)
    assert list(report.registered.values()) == [50001, 50002, 50003, 50004, 50005]


def test_missing_resource_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BridgeError, match="no such REAPER resource folder"):
        install(str(tmp_path / "nope"))


@pytest.mark.parametrize("text,error", [
    ("[gate]\nthreshold_db = loud\n", r"\[gate\] threshold_db = 'loud' is neither a number"),
    ("[debleed\npython = x\n", "not a readable settings file"),
])
def test_a_malformed_ini_is_one_line_and_the_install_copies_nothing(tmp_path: Path, text: str,
                                                                    error: str) -> None:
    resource = tmp_path / "REAPER"
    ini = Path(settings_path(str(resource)))
    ini.parent.mkdir(parents=True)
    ini.write_text(text)
    with pytest.raises(SettingsError, match=error) as caught:
        install(str(resource))
    assert len(str(caught.value).splitlines()) == 1 and str(ini) in str(caught.value)
    assert [p.name for p in ini.parent.iterdir()] == ["debleed.ini"] and ini.read_text() == text


def test_a_percent_sign_in_a_path_is_a_path(tmp_path: Path) -> None:
    """configparser's default interpolation read "%" as a reference: a traceback in every
    action, and save_settings refused such a path."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    install(str(resource))
    ini = Path(settings_path(str(resource)))
    ini.write_text(ini.read_text().replace("export_dir = ", "export_dir = /mix/100%done"))
    settings = load_settings(str(ini))
    assert settings.export_dir == "/mix/100%done"
    install(str(resource), python="/opt/50%/bin/python")
    assert load_settings(str(ini)).python == "/opt/50%/bin/python"


def test_an_ini_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Notepad's "UTF-8 with BOM" put the mark before "[debleed]": no section header."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    install(str(resource))
    ini = Path(settings_path(str(resource)))
    ini.write_bytes(b"\xef\xbb\xbf" + ini.read_bytes().replace(b"device = auto", b"device = cpu"))
    assert load_settings(str(ini)).device == "cpu"

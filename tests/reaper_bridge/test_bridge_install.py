"""``debleed reaper install``: scripts copied, settings written, actions registered."""

from __future__ import annotations

import configparser
import errno
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from fake_reaper import FakeReaper

from reaper_bridge.install import SCRIPTS, SUPPORT_FILES, command_id, install, kb_line, package_root
from reaper_bridge.items import BridgeError
from reaper_bridge.rpr import RawRPR
from reaper_bridge.settings import (BridgeSettings, SettingsError, _layout, load_settings,
                                    save_settings, settings_path, split_lines)


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
    ("[gate]\nthreshold_db = loud\n", r"\[gate\] threshold_db = 'loud' is not a number"),
    ("[debleed\npython = x\n", "not a readable settings file"),
    ("[debleed]\ndevice = cpu\n\n[ gate ]   ; my snare gate\nthreshold_db = -20\n",
     r"section \[ gate \] is read only as \[gate\] \(no spaces\); rename it"),
    ("[ debleed ]\ndevice = cpu\n", r"section \[ debleed \] is read only as \[debleed\]"),
    ("[ Gate]\nhold_ms = 20\n", r"read only as \[gate\] \(lower case, no spaces\)"),
])
def test_a_malformed_ini_is_one_line_and_the_install_copies_nothing(tmp_path: Path, text: str,
                                                                    error: str) -> None:
    """Among them a section meant as ours that configparser names otherwise: it keeps the
    spaces inside the brackets, so ``[ gate ]`` was ignored whole and the install deleted
    its keys, and ``python`` written under ``[ debleed ]`` never read back."""
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


def test_a_reaper_running_on_another_folder_does_not_register(tmp_path: Path) -> None:
    """Registering through the running REAPER B for scripts copied into A left A's REAPER
    without the actions and B with scripts from a folder it does not use."""
    fake = FakeReaper(str(tmp_path / "B"), str(tmp_path / "media"))
    (tmp_path / "B").mkdir()
    (tmp_path / "A").mkdir()
    report = install(str(tmp_path / "A"), api=RawRPR(fake.module()))
    assert fake.registered == [] and not (tmp_path / "B" / "reaper-kb.ini").exists()
    assert len(scr_lines(tmp_path / "A")) == len(SCRIPTS)
    assert report.kb_file == str(tmp_path / "A" / "reaper-kb.ini")
    assert any(f"uses {tmp_path / 'B'}, not {tmp_path / 'A'}: registering through reaper-kb.ini"
               in line for line in report.lines())


def test_another_spelling_of_the_running_reapers_folder_registers_through_it(tmp_path: Path) -> None:
    fake = FakeReaper(str(tmp_path / "REAPER"), str(tmp_path / "media"))
    (tmp_path / "REAPER").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "REAPER")
    report = install(str(tmp_path / "link") + "/", api=RawRPR(fake.module()))
    assert len(fake.registered) == len(SCRIPTS) and report.kb_file is None and report.kb_reason is None


DENOISE = "debleed/debleed_denoise_selected.py"


OURS = kb_line(DENOISE, SCRIPTS["debleed_denoise_selected.py"])
NAMED = '"Custom: debleed: Denoise selected items"'


@pytest.mark.parametrize("line,expected", [
    (f'SCR\t4\t0\t{command_id(DENOISE)}\t{NAMED}\t"{DENOISE}"',
     f'SCR\t4\t0\t{command_id(DENOISE)}\t{NAMED}\t"{DENOISE}"'),
    (f'SCR 4 0 RS{"0" * 40} "Custom: debleed_denoise_selected.py" "debleed\\debleed_denoise_selected.py"',
     f'SCR 4 0 RS{"0" * 40} {NAMED} "debleed\\debleed_denoise_selected.py"'),
    (f'SCR 260 0 RS{"1" * 40} "Custom: denoise" "Debleed/DEBLEED_denoise_selected.py"',
     f'SCR 260 0 RS{"1" * 40} {NAMED} "Debleed/DEBLEED_denoise_selected.py"'),
    (f'SCR 4 0 {command_id(DENOISE)} "Custom: debleed: old name" "old/place.py"', OURS),
], ids=["tabs", "backslash", "case", "our-command-id"])
def test_reinstall_updates_our_line_however_it_is_written(tmp_path: Path, line: str,
                                                          expected: str) -> None:
    """Only a space-separated line ending in "debleed/<name>" was recognised: REAPER's or
    an editor's spelling of it stayed, and the action was listed twice. The line is
    updated in place: its command id and flags (what shortcuts and toolbar buttons refer
    to) and a path that names the script stay, a line already right stays as written."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    other = 'SCR 4 0 RSabc "Custom: other.lua" "other.lua"'
    (resource / "reaper-kb.ini").write_text(f"{other}\n{line}\n")
    install(str(resource))
    lines = (resource / "reaper-kb.ini").read_text().splitlines()
    assert lines[:2] == [other, expected]
    assert [l for l in lines if "denoise_selected.py" in l.lower()] == [expected]
    assert len(lines) == 1 + len(SCRIPTS)


def test_reinstall_leaves_the_users_other_registrations_alone(tmp_path: Path) -> None:
    """Every SCR line naming one of our scripts was dropped, whatever its section or
    command id: a MIDI-editor registration (section 32060) or a second "Load ReaScript"
    one vanished, and the shortcuts (KEY lines) bound to them pointed at nothing."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    compare = "debleed/debleed_compare_takes.py"
    user = [f'SCR 4 32060 RS{"7" * 40} "Custom: debleed_denoise_selected.py" "{DENOISE}"',
            f'KEY 1 68 _RS{"7" * 40} 32060',
            f'SCR 4 0 RS{"8" * 40} "Custom: debleed_compare_takes.py" "{compare}"',
            f'KEY 1 67 _RS{"8" * 40} 0',
            f'SCR 4 0 RS{"9" * 40} "Custom: compare again" "{compare}"',
            f'KEY 1 69 _RS{"9" * 40} 0']
    (resource / "reaper-kb.ini").write_text("\n".join(user) + "\n")
    install(str(resource))
    lines = (resource / "reaper-kb.ini").read_text().splitlines()
    renamed = f'SCR 4 0 RS{"8" * 40} "Custom: {SCRIPTS["debleed_compare_takes.py"]}" "{compare}"'
    assert lines[:6] == [user[0], user[1], renamed, *user[3:]]
    assert OURS in lines[6:]  # the MIDI editor's line is not the main list's
    assert not any(command_id(compare) in line for line in lines)  # the user's id is kept
    assert len(lines) == 6 + len(SCRIPTS) - 1
    install(str(resource))
    assert (resource / "reaper-kb.ini").read_text().splitlines() == lines


@pytest.mark.skipif(os.name == "nt", reason="symbolic links and permission bits are POSIX's")
@pytest.mark.parametrize("name", ["reaper-kb.ini", "Scripts/debleed/debleed.ini"])
def test_a_linked_or_read_only_file_stays_so(tmp_path: Path, name: str) -> None:
    """The atomic write renamed its new file onto the path: a symbolic link (a synced
    configuration folder, say) became a plain file, and a read-only file writable."""
    resource, kept = tmp_path / "REAPER", tmp_path / "dotfiles" / "kept.ini"
    (resource / name).parent.mkdir(parents=True)
    kept.parent.mkdir()
    install(str(resource))
    kept.write_text((resource / name).read_text())
    (resource / name).unlink()
    (resource / name).symlink_to(kept)
    kept.chmod(0o444)
    install(str(resource), python="/opt/other/bin/python")
    assert (resource / name).is_symlink() and os.readlink(resource / name) == str(kept)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o444
    if name == "reaper-kb.ini":
        assert kept.read_text().count("SCR 4 0 RS") == len(SCRIPTS)
    else:  # the new value went through the link
        assert load_settings(str(resource / name)).python == "/opt/other/bin/python"
    assert not [p for p in kept.parent.iterdir() if p != kept]  # no temporary file left


USER_INI = """\ufeff; my debleed settings\r
[debleed]\r
python = /old/env/bin/python   ; set by install\r
Package_Root=/old/env/site-packages\r
device = cpu ; no GPU on this laptop\r
my_note = keep me\r
compare_variants = yes\r
\r
; the pre-gate, tuned by ear\r
[gate]                   ; see 'debleed gate --help'\r
threshold_db = -24\r
auto = on\r
hold_ms = 40"""


def test_reinstall_edits_the_ini_in_place(tmp_path: Path) -> None:
    """The INI was rewritten from scratch: comments and keys debleed does not know were
    lost and values respelled (-24 became -24.0, on became true), though the docs say
    the settings you changed are kept."""
    resource = tmp_path / "REAPER"
    ini = Path(settings_path(str(resource)))
    ini.parent.mkdir(parents=True)
    ini.write_bytes(USER_INI.encode())
    install(str(resource), python="/new/env/bin/python")
    lines = USER_INI.splitlines(keepends=True)
    added = [f"{key} = {value}\r\n" for key, value in (("model", ""), ("precision", "float32"),
                                                        ("input_max_hz", "0"), ("hiss_cut_hz", ""),
                                                        ("export_dir", ""),
                                                        ("sidechain_track", ""))]
    expected = [*lines[:2], "python = /new/env/bin/python   ; set by install\r\n",
                f"Package_Root={package_root()}\r\n", *lines[4:7], *added, *lines[7:]]
    assert ini.read_bytes().decode() == "".join(expected)
    settings = load_settings(str(ini))
    assert settings.compare_variants and settings.device == "cpu"
    assert settings.gate == {"threshold_db": -24.0, "auto": True, "hold_ms": 40.0}
    install(str(resource), python="/new/env/bin/python")
    assert ini.read_bytes().decode() == "".join(expected)  # nothing left to change


def test_save_settings_rewrites_changed_values_and_drops_removed_gate_keys(tmp_path: Path) -> None:
    """What the tests and the installer save reads back, while untouched lines stay."""
    ini = tmp_path / "debleed.ini"
    ini.write_text("[debleed]\n; comment\ndevice = auto\n\n[gate]\nhold_ms = 40\nauto = 1\n")
    settings = load_settings(str(ini))
    settings.device, settings.gate = "cpu", {"auto": True, "range_db": -12.0}
    save_settings(str(ini), settings)
    assert load_settings(str(ini)) == settings
    text = ini.read_text()
    assert "; comment\ndevice = cpu\n" in text and "hold_ms" not in text
    assert text.endswith("[gate]\nauto = 1\nrange_db = -12.0\n")  # unchanged: kept as written


def test_a_value_a_comment_would_cut_is_refused_and_others_round_trip(tmp_path: Path) -> None:
    """The INI is read with ";" comments: "/home/me/a ;b/python" was saved, then read
    back as "/home/me/a"."""
    ini = str(tmp_path / "debleed.ini")
    kept = BridgeSettings(python="/home/me/a;b/python", export_dir="/mix/100% done",
                          sidechain_track="Snare; trig")
    save_settings(ini, kept)
    assert load_settings(ini) == kept
    before = Path(ini).read_text()
    for key, value in [("python", "/home/me/a ;b/python"), ("export_dir", "/mix/a\t;b"),
                       ("sidechain_track", ";trig")]:
        with pytest.raises(SettingsError, match=f"cannot save {key} = ") as caught:
            save_settings(ini, BridgeSettings(**{key: value}))
        assert len(str(caught.value).splitlines()) == 1 and ini in str(caught.value)
    assert Path(ini).read_text() == before


def test_install_refuses_a_python_path_the_ini_cannot_hold(tmp_path: Path) -> None:
    resource = tmp_path / "REAPER"
    resource.mkdir()
    with pytest.raises(SettingsError, match="cannot save python"):
        install(str(resource), python="/home/me/a ;b/python")
    assert not (resource / "Scripts").exists() and not (resource / "reaper-kb.ini").exists()


def test_export_dir_is_read_from_the_ini_folder_and_keeps_its_spelling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``export_dir = exports`` meant a folder under whatever directory REAPER handed the
    action; like ``model`` it now starts at the INI's folder, ``~`` is the home folder,
    and a reinstall writes back what the user typed."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    resource = tmp_path / "REAPER"
    resource.mkdir()
    install(str(resource))
    ini = Path(settings_path(str(resource)))
    for typed, meant in (("exports", ini.parent / "exports"),
                         ("~/sessions/x", tmp_path / "home" / "sessions" / "x"),
                         ("/abs/out", Path("/abs/out")), ("", None)):
        ini.write_text(re.sub(r"(?m)^export_dir = .*$", f"export_dir = {typed}", ini.read_text()))
        assert load_settings(str(ini)).export_dir == (str(meant) if meant else "")
        install(str(resource))
        assert f"export_dir = {typed}\n" in ini.read_text()


def test_an_export_dir_named_default_is_a_folder_beside_the_ini(tmp_path: Path) -> None:
    """"default" means the shipped model for ``model`` only; as ``export_dir`` it stayed
    unresolved and the export went to a "default" folder wherever REAPER was started."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    install(str(resource))
    ini = Path(settings_path(str(resource)))
    ini.write_text(re.sub(r"(?m)^export_dir = .*$", "export_dir = default", ini.read_text()))
    ini.write_text(re.sub(r"(?m)^model = .*$", "model = default", ini.read_text()))
    settings = load_settings(str(ini))
    assert settings.export_dir == str(ini.parent / "default") and settings.model == "default"


@pytest.mark.parametrize("line,expected", [
    ("python =        ; set by debleed reaper install",
     "python = /new/env/bin/python        ; set by debleed reaper install"),
    ("python = ; set by install", "python = /new/env/bin/python ; set by install"),
    ("python =\t; set by install", "python = /new/env/bin/python\t; set by install"),
    ("python =", "python = /new/env/bin/python"),
], ids=["spaces", "one-space", "tab", "no-comment"])
def test_an_empty_value_gets_its_new_value_before_its_comment(tmp_path: Path, line: str,
                                                              expected: str) -> None:
    """The spaces after "=" went to the key, so an empty value's comment was read as the
    value and replaced: "python =        ; set by ..." became "python =        /new/...",
    its comment gone, though the docs (and this module's sample INI) keep comments."""
    resource = tmp_path / "REAPER"
    ini = Path(settings_path(str(resource)))
    ini.parent.mkdir(parents=True)
    ini.write_bytes(f"[debleed]\r\n{line}\r\nmodel =    ; checkpoint\r\n".encode())
    install(str(resource), python="/new/env/bin/python")
    lines = ini.read_bytes().decode().splitlines(keepends=True)
    assert lines[1:3] == [f"{expected}\r\n", "model =    ; checkpoint\r\n"]
    assert load_settings(str(ini)).python == "/new/env/bin/python"
    settings = load_settings(str(ini))
    settings.model = "/models/mine.pt"
    save_settings(str(ini), settings)
    assert ini.read_bytes().decode().splitlines(keepends=True)[2] == \
        "model = /models/mine.pt    ; checkpoint\r\n"
    assert load_settings(str(ini)).model == "/models/mine.pt"


def test_reaper_kb_keeps_its_line_endings(tmp_path: Path) -> None:
    """reaper-kb.ini was read with splitlines and joined with "\\n": REAPER's CRLF file
    came back LF throughout, every line changed, though it is edited in place."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    old = f'SCR 4 0 {command_id(DENOISE)} "Custom: debleed: old name" "{DENOISE}"'
    user = ['KEY 1 65 40001 0', 'SCR 4 0 RSabc "Custom: other.lua" "other.lua"', old,
            'ACT 0 0 "c0ffee" "Custom: mine" 40001']
    (resource / "reaper-kb.ini").write_bytes("\r\n".join(user).encode())  # no ending at the end
    install(str(resource))
    data = (resource / "reaper-kb.ini").read_bytes().decode()
    lines = data.splitlines(keepends=True)
    assert lines[:4] == [f"{user[0]}\r\n", f"{user[1]}\r\n", f"{OURS}\r\n", f"{user[3]}\r\n"]
    assert len(lines) == 4 + len(SCRIPTS) - 1 and all(l.endswith("\r\n") for l in lines)
    assert data.count("\n") == data.count("\r\n")
    install(str(resource))
    assert (resource / "reaper-kb.ini").read_bytes().decode() == data


def test_a_failed_replace_leaves_no_temporary_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The old permission bits went to the temporary file before the rename: on Windows a
    read-only one can neither replace the target nor be removed when that fails, so a
    hidden temporary file stayed and the removal's error hid the real one."""
    ini = tmp_path / "debleed.ini"
    ini.write_text("[debleed]\ndevice = auto\n")
    ini.chmod(0o444)
    modes: list[int] = []

    def refused(source: str | os.PathLike, target: str | os.PathLike) -> None:
        modes.append(stat.S_IMODE(os.stat(source).st_mode))
        raise PermissionError(13, "Access is denied", str(target))

    monkeypatch.setattr(os, "replace", refused)
    settings = load_settings(str(ini))
    settings.device = "cpu"
    with pytest.raises(PermissionError, match="Access is denied"):
        save_settings(str(ini), settings)
    assert modes and modes[0] & stat.S_IWUSR  # the temporary file was writable
    assert [p.name for p in tmp_path.iterdir()] == ["debleed.ini"]
    assert ini.read_text() == "[debleed]\ndevice = auto\n"


@pytest.mark.parametrize("text", [
    "[debleed]\ndevice = cpu\n[ gate ]  ; mine\nthreshold_db = -20\n",
    " [ debleed ]\npython = x\n  continued\n[gate] ]\nhold_ms = 4\n[Gate]\nAuto = on\n",
])
def test_the_ini_editor_finds_the_sections_and_keys_configparser_finds(text: str) -> None:
    """The editor stripped the spaces from ``[ gate ]``, which configparser keeps: it
    edited as ``[gate]`` a section that is read as another."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.read_string(text)
    layout = _layout(split_lines(text)[0])
    assert sorted(layout.headers) == sorted(parser.sections())
    assert sorted(layout.keys) == sorted((name, key) for name in parser.sections()
                                         for key in parser[name])


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(os.name == "nt", reason="symbolic links and permission bits are POSIX's")
@pytest.mark.parametrize("store, reason", [
    pytest.param("read-only", "Permission denied",
                 marks=pytest.mark.skipif(ROOT, reason="root writes into read-only folders")),
    ("file/sub", "Not a directory"),  # a file where a folder should be: refuses root too
])
def test_a_reaper_kb_that_cannot_be_written_stops_the_install_before_it_writes(
        tmp_path: Path, store: str, reason: str) -> None:
    """reaper-kb.ini a link into a folder that refuses new files (a read-only store of a
    configuration manager): the install wrote the scripts and debleed.ini, and only then
    failed, naming the folder of the link's target, not reaper-kb.ini."""
    resource, folder = tmp_path / "REAPER", tmp_path / store
    resource.mkdir()
    if store == "read-only":
        folder.mkdir()
        (folder / "reaper-kb.ini").write_text("KEY 1 65 40001 0\n")
        folder.chmod(0o555)
    else:
        folder.parent.write_text("a file")
    kb = resource / "reaper-kb.ini"
    kb.symlink_to(folder / "reaper-kb.ini")
    with pytest.raises(BridgeError) as caught:
        install(str(resource))
    assert str(caught.value) == (f"cannot register the actions in {kb}: {reason} (it links "
                                 f"to {folder / 'reaper-kb.ini'})")
    assert [p.name for p in resource.iterdir()] == ["reaper-kb.ini"]
    if store == "read-only":
        assert sorted(p.name for p in folder.iterdir()) == ["reaper-kb.ini"]
        folder.chmod(0o755)


def test_a_script_that_cannot_be_replaced_leaves_every_installed_one_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripts were copied in place one by one: one that could not be replaced (on
    Windows, held open by an editor or a virus scanner) stopped the install with the new
    action scripts beside the old bootstrap."""
    resource = tmp_path / "REAPER"
    resource.mkdir()
    install(str(resource))
    scripts = resource / "Scripts" / "debleed"
    names = [*SCRIPTS, *SUPPORT_FILES]
    for name in names:
        (scripts / name).write_text("# an earlier version\n")
    inode = (scripts / names[0]).stat().st_ino
    held, replace, copyfile = scripts / SUPPORT_FILES[0], os.replace, shutil.copyfile

    def refuse(src, dst) -> None:  # neither renamed, nor renamed over, nor written
        if held in (Path(src), Path(dst)):
            raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))

    def locked_replace(src, dst) -> None:
        refuse(src, dst)
        replace(src, dst)

    def locked_copy(src, dst):
        refuse(src, dst)
        return copyfile(src, dst)

    monkeypatch.setattr(os, "replace", locked_replace)
    monkeypatch.setattr(shutil, "copyfile", locked_copy)
    with pytest.raises(PermissionError) as caught:
        install(str(resource))
    assert caught.value.filename == str(held)
    assert {name: (scripts / name).read_text() for name in names} == {
        name: "# an earlier version\n" for name in names}
    assert sorted(p.name for p in scripts.iterdir()) == sorted([*names, "debleed.ini"])
    monkeypatch.undo()
    install(str(resource))  # renamed into place, never rewritten where a reader sees it short
    assert (scripts / names[0]).stat().st_ino != inode
    assert "an earlier version" not in (scripts / names[0]).read_text()

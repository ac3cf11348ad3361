"""An empty path is a usage error in every command: ``Path("")`` is the current folder, so
``-o ''`` failed on it after the work and ``reaper install --resource-path ''`` installed
into it."""

from __future__ import annotations

import os

import click
import pytest
from click.testing import CliRunner

from debleed.cli.common import NonEmptyPath
from debleed.cli.main import SUBCOMMANDS, cli

# A checkpoint, folder or file named by a plain string: these take "default" or a path.
STRING_PATHS = {"soup": {"models"}, "ensemble": {"members"}, "select": {"candidates", "reference"},
                "evaluate": {"checkpoint"}, "denoise": {"model"}, "train": {"init", "guard_teacher"}}


def _commands() -> list[tuple[str, click.Command]]:
    """Every leaf command as ``(dotted name, command)``, groups walked."""
    found = []
    pending = [(name, cli.get_command(click.Context(cli), name)) for name in SUBCOMMANDS]
    while pending:
        name, command = pending.pop()
        if isinstance(command, click.Group):
            pending += [(f"{name}.{sub}", command.commands[sub]) for sub in command.commands]
        else:
            found.append((name, command))
    return found


@pytest.mark.parametrize("name,command", _commands(), ids=[name for name, _ in _commands()])
def test_every_path_parameter_refuses_the_empty_string(name, command):
    strings = STRING_PATHS.get(name, set())
    paths = [p for p in command.params if isinstance(p.type, click.Path) or p.name in strings]
    assert {p.name for p in paths} >= strings
    for param in paths:
        assert isinstance(param.type, NonEmptyPath), f"{name} {param.name}"


@pytest.mark.parametrize("args", [
    ["soup", "default", "default", "-o", ""],
    ["soup", "", "default", "-o", "soup.pt"],
    ["select", "default", "--heldout-clips", "0", "--json", ""],
    ["reaper", "install", "--resource-path", "", "--no-connect"],
    ["denoise", "snare.wav", "-o", ""],
    ["train", "--kit", ".", "--init", "", "--out", "run"],
    ["train", "--out", "run", "--resume", "--guard-teacher", ""],
    ["demo", "--out", ""],
], ids=lambda args: " ".join(repr(a) if a == "" else a for a in args))
def test_an_empty_path_is_a_one_line_usage_error_and_writes_nothing(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "an empty path; give a file or folder name." in result.stderr.splitlines()[-1]
    assert os.listdir(tmp_path) == []

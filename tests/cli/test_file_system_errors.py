"""What the file system refuses (an output folder that is a file) is a one-line user error
in every writing command, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from debleed.cli.common import one_line
from debleed.cli.main import cli


@pytest.mark.parametrize("command", [
    ["gate", "{src}", "-o", "{blocker}/out.wav"],
    ["demo", "--out", "{blocker}/demo"],
    ["bench", "--quick", "--out", "{blocker}/bench"],
    ["select", "default", "--heldout-clips", "0", "--json", "{blocker}/scores.json"],
], ids=lambda command: command[0])
def test_an_output_under_a_file_is_refused_in_one_line(tmp_path, write_wav, drum_track, refused,
                                                       command):
    src = write_wav(tmp_path / "snare.wav", drum_track())
    blocker = tmp_path / "takes"
    blocker.write_text("a file where a folder should be")
    args = [part.format(src=src, blocker=blocker) for part in command]
    result = refused(lambda: CliRunner().invoke(cli, args))
    assert str(blocker) in result.stderr


def test_one_line_names_the_file_the_system_refused():
    assert one_line(NotADirectoryError(20, "Not a directory", "a/b")) == "a/b: Not a directory"
    assert one_line(FileExistsError(17, "File exists", "a")) == "a: is a file, not a folder"
    assert one_line(OSError(28, "No space left on device")) == "[Errno 28] No space left on device"

"""What the file system refuses (an output folder that is a file) is a one-line user error
in every writing command, never a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
import soundfile as sf
from click.testing import CliRunner

from debleed.cli.common import one_line
from debleed.cli.main import cli

SF_ERR_SYSTEM = 2  # libsndfile's code for a failed system call (a full disk)


@pytest.mark.parametrize("command", [
    ["gate", "{src}", "-o", "{blocker}/out.wav"],
    ["demo", "--out", "{blocker}/demo"],
    ["bench", "--quick", "--out", "{blocker}/bench"],
    ["select", "default", "--heldout-clips", "0", "--json", "{blocker}/scores.json"],
    ["soup", "default", "default", "-o", "{blocker}/soup.pt"],
    ["ensemble", "default", "--combine", "power", "-o", "{blocker}/bag.pt"],
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


STUCK_WRITER = """
import sys, time
import debleed.cli.gate
from denoiser.outfiles import atomic_output
from denoiser.outfiles import AUDIO_SUFFIX

def stuck(config, src, dst, *args, **kwargs):  # a write still going when the run is killed
    with atomic_output(dst, AUDIO_SUFFIX) as tmp:
        tmp.write_bytes(b"half a take")
        print("writing", flush=True)
        time.sleep(60)

debleed.cli.gate.gate_file = stuck
from debleed.cli.main import cli
cli(["gate", sys.argv[1], "-o", sys.argv[2]])
"""


def start_stuck_writer(tmp_path, src, **popen) -> subprocess.Popen:
    """A ``debleed gate`` run that is writing its output when this returns."""
    run = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(src), str(tmp_path / "out.wav")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    assert run.stdout.readline().strip() == "writing"
    return run


def _default_handler(signum: int) -> None:
    """Give the child the default action for ``signum``, whatever the test run ignores."""
    signal.signal(signum, signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows' terminate runs no clean-up")
@pytest.mark.parametrize("signum",
                         [signal.SIGTERM, getattr(signal, "SIGHUP", None), signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_killed_run_leaves_no_temporary_output(tmp_path, write_wav, drum_track, signum):
    """SIGTERM (a job scheduler's stop, REAPER's cancel, ``kill``) and SIGHUP (the terminal
    closed, an SSH session dropped) used to end the process before any clean-up ran,
    leaving the hidden temporary output behind. Each run exits 128 + the signal, as a
    shell reports it: Ctrl-C (SIGINT) exited 1, as bad input does."""
    src = write_wav(tmp_path / "snare.wav", drum_track())
    # a test run in the background inherits an ignored SIGINT, and one under nohup an
    # ignored SIGHUP, which Python then keeps (and the run rightly honours, see below)
    run = start_stuck_writer(tmp_path, src, preexec_fn=lambda: _default_handler(signum))
    run.send_signal(signum)
    assert run.wait(timeout=30) == 128 + signum
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snare.wav"]
    if signum == signal.SIGINT:
        assert run.stderr.read() == "\nAborted!\n"


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on Windows")
def test_a_run_under_nohup_outlives_its_terminal(tmp_path, write_wav, drum_track):
    """``nohup`` ignores SIGHUP before starting the run: it must stay ignored, so the run goes
    on when the terminal closes (here it is then stopped by SIGTERM)."""
    src = write_wav(tmp_path / "snare.wav", drum_track())
    run = start_stuck_writer(tmp_path, src,
                             preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    run.send_signal(signal.SIGHUP)
    with pytest.raises(subprocess.TimeoutExpired):
        run.wait(timeout=2)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 128 + signal.SIGTERM
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snare.wav"]


@pytest.mark.parametrize("free, reason", [(None, ""), (0, "; no space left on the device")],
                         ids=["room", "full"])
@pytest.mark.parametrize("command, output", [("gate", "snare.gate.wav"),
                                             ("denoise", "snare.debleed.wav")],
                         ids=["gate", "denoise"])
def test_a_failed_write_is_one_line(tmp_path, write_wav, drum_track, monkeypatch, command,
                                    output, free, reason):
    """libsndfile reports a write the system refuses as "System error." in a RuntimeError,
    not an OSError: it ended every writing command in a traceback. The line names the
    output file, absolute (beside an input in the current folder it named the folder "."),
    and says the disk is full only when its free space is short of what was left to write
    (here made 0): "is the disk full?" after every failure sent users with room to spare
    (a file-size limit, an I/O error) looking for it. (The progress line of the work done
    before the write may come first.)"""
    write_wav(tmp_path / "snare.wav", drum_track())
    monkeypatch.chdir(tmp_path)

    def disk_full(self, data):
        raise sf.LibsndfileError(SF_ERR_SYSTEM)

    monkeypatch.setattr(sf.SoundFile, "write", disk_full)
    if free is not None:
        usage = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(path)._replace(free=free))
    result = CliRunner().invoke(cli, [command, "snare.wav"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {tmp_path / output}: could not write the output (System error.){reason}")
    assert [path.name for path in tmp_path.iterdir()] == ["snare.wav"]


@pytest.mark.skipif(sys.platform != "linux", reason="other systems' file names are text")
@pytest.mark.parametrize("command", [["gate", "{src}", "-o", "{out}"], ["denoise", "{src}"]],
                         ids=lambda command: command[0])
def test_a_file_name_that_is_not_utf8_is_read_and_written(tmp_path, drum_track, command):
    """A Latin-1 name (an old drive, a zip archive) reaches Python with surrogates, which
    soundfile refused to encode: the good file was called unreadable, and such an output
    name ended in a traceback."""
    src = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.wav")
    out = os.fsdecode(os.fsencode(tmp_path) + b"/out\xe9.wav")
    sf.write(os.fsencode(src), drum_track().T, 48000, subtype="FLOAT")
    args = [part.format(src=src, out=out) for part in command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    written = out if command[0] == "gate" else src[:-len(".wav")] + ".debleed.wav"
    assert sf.info(os.fsencode(written)).frames == drum_track().shape[1]

"""Typed errors. Anything deriving from ``DebleedError`` is a user error: the CLI prints
its message as one line and exits 1, and the REAPER bridge shows it in a message box."""


class DebleedError(Exception):
    """Base class for errors caused by the user's input or settings, not by a bug."""


class AudioError(DebleedError):
    """Audio that cannot be read, is empty, or holds no finite samples."""


#: A peak this low is silence: there is nothing to level, denoise or key a gate with. Here,
#: in the standard library, so that the REAPER bridge tests a rendered sidechain by it too.
SILENT_PEAK = 1e-7


class SilentAudioError(AudioError):
    """Audio with nothing to denoise: silence, or nothing but a DC offset. Its own class
    because the REAPER bridge skips such an item (as it skips a MIDI or empty one) instead
    of failing the whole run on it."""


class ModelError(DebleedError):
    """A checkpoint that is missing, corrupt, or from an incompatible version."""


class NonFiniteOutputError(ModelError):
    """A model whose output holds NaN/inf for some audio. Its own class because training's
    validation reads it as weights that diverged, not as a broken checkpoint."""


class ParameterError(DebleedError):
    """A setting outside its meaningful range (negative times, absurd thresholds...)."""


def error_text(exc: BaseException) -> str:
    """What went wrong, for a person: the message, or for the file system's refusals (a
    folder that is a file, a full or read-only disk) the file and the reason. Shared by
    the CLI (its first line) and the REAPER bridge's message boxes (whole), so both name
    the file the same way; standard library only, as REAPER's Python needs."""
    if isinstance(exc, FileExistsError) and exc.filename:
        return f"{exc.filename}: is a file, not a folder"  # mkdir(exist_ok=True) met a file
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__

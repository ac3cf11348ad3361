"""Typed errors. Anything deriving from ``DebleedError`` is a user error: the CLI prints
its message as one line and exits 1, and the REAPER bridge shows it in a message box."""


class DebleedError(Exception):
    """Base class for errors caused by the user's input or settings, not by a bug."""


class AudioError(DebleedError):
    """Audio that cannot be read, is empty, or holds no finite samples."""


class ModelError(DebleedError):
    """A checkpoint that is missing, corrupt, or from an incompatible version."""


class ParameterError(DebleedError):
    """A setting outside its meaningful range (negative times, absurd thresholds...)."""

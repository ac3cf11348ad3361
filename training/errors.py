"""Typed user errors of the training tools (all ``DebleedError``, so the CLI prints one line)."""

from denoiser.errors import DebleedError


class KitError(DebleedError):
    """A drum kit that cannot be used: malformed drumkit.xml, missing or unreadable sample,
    or no snare to train on."""


class DatasetError(DebleedError):
    """A dataset folder or request that cannot be honoured (missing manifest, bad split,
    the public test kit in a training set, an output folder that already holds data)."""


class TrainingError(DebleedError):
    """A training run that cannot go on: its loss or gradient stayed non-finite (diverged)."""

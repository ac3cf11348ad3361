"""Training side of debleed: synthetic snare-mic data, losses, metrics, trainer, evaluation.

Imports ``denoiser`` (never the reverse), so the inference package stays small.
"""

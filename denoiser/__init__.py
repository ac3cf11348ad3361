"""debleed inference engine: neural snare de-bleeding, the pre-gate, audio I/O.

Imports nothing from ``training`` or ``reaper_bridge``: dependencies point one way."""

__version__ = "0.1.0"

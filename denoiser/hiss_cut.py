"""Where the engine looks for a recording floor by default (``InferenceConfig.hiss_cut_hz``).

Standard library only: REAPER's embedded Python, which has no numpy, keys the bridge's take
cache on it (``reaper_bridge.settings``), and the engine and the floor test take it from
here, so the value lives in one place.
"""

from __future__ import annotations  # REAPER may embed Python 3.9: no "float | None" at run time

#: Above 22.05 kHz the shipped model reads noise as bleed (docs/model.md, thirty-fourth round).
HISS_CUT_HZ = 22050.0
#: The band a floor is compared with (``denoiser.hiss``): a cut must lie above it.
REFERENCE_BAND_HZ = (16000.0, 20000.0)


def hiss_cut(hiss_cut_hz: float | None) -> dict[str, float]:
    """``InferenceConfig`` keyword for a ``hiss_cut_hz`` that may be unset (a command-line
    option not given, an empty INI value): none then, so the engine's default stays the one
    default."""
    return {} if hiss_cut_hz is None else {"hiss_cut_hz": hiss_cut_hz}

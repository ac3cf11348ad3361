"""The ideal mask: exact where the mask can be, bounded by [0, 1] where it cannot."""

from __future__ import annotations

import numpy as np
import pytest

from training import metrics
from training.oracles import ideal_mask

RATE = 48000


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def test_ideal_mask_separates_disjoint_bands(rng):
    t = np.arange(RATE) / RATE
    clean = 0.3 * np.sin(2 * np.pi * 200 * t) * np.exp(-3 * t)       # low "snare body"
    bleed = 0.1 * np.sin(2 * np.pi * 9000 * t)                       # far-off "cymbal"
    out = ideal_mask((clean + bleed).astype(np.float32), clean.astype(np.float32))
    assert out.dtype == np.float32 and out.shape == clean.shape
    assert metrics.si_sdr(out, clean) > 40.0   # disjoint in frequency: almost perfect


def test_ideal_mask_cannot_split_one_bin_and_never_amplifies(rng):
    clean = 0.2 * rng.standard_normal(RATE // 2)
    bleed = 0.2 * rng.standard_normal(RATE // 2)  # same spectrum, same level: inseparable
    noisy = (clean + bleed).astype(np.float32)
    out = ideal_mask(noisy, clean.astype(np.float32))
    gain_db = 10 * np.log10(np.sum(out ** 2) / np.sum(noisy ** 2))
    assert -6.0 < gain_db < 0.0                 # about half the energy kept, never more
    improvement = metrics.si_sdr(out, clean) - metrics.si_sdr(noisy, clean)
    assert 0.0 < improvement < 10.0             # better than nothing, far from perfect
    assert np.array_equal(ideal_mask(np.zeros(4800, np.float32), np.zeros(4800, np.float32)),
                          np.zeros(4800, np.float32))

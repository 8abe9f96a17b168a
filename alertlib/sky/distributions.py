"""Random draws the simulator shares: lognormal scatter and power-law counts."""

from __future__ import annotations

import numpy as np


def lognormal(rng, median, spread, size):
    """Values ``median * exp(N(0, spread))``."""
    return median * np.exp(rng.normal(0.0, spread, size))


def power_law(rng, index, bounds, size) -> np.ndarray:
    """Values drawn from dN/dx ~ x^-index between ``bounds`` (index != 1)."""
    low, high = np.asarray(bounds, dtype=np.float64) ** (1.0 - index)
    return (low + rng.random(size) * (high - low)) ** (1.0 / (1.0 - index))


def power_law_magnitudes(rng, slope, bounds, size) -> np.ndarray:
    """Magnitudes drawn from counts dN/dm ~ 10^(slope m) between ``bounds``."""
    low, high = 10 ** (slope * np.asarray(bounds, dtype=np.float64))
    return np.log10(low + rng.random(size) * (high - low)) / slope

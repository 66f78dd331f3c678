"""Price precision and Brownian-bridge price paths."""
from __future__ import annotations

import numpy as np

from .params import MIN_PRICE


def round_price(x):
    """Polygon-like price precision: 4 decimals below $1, 2 decimals from $1."""
    x = np.asarray(x, dtype="float64")
    return np.maximum(np.where(x < 1.0, np.round(x, 4), np.round(x, 2)), MIN_PRICE)


def bridge(rng, a, b, n, sigma):
    """Brownian bridges (points 1..n) from ``a`` to ``b`` (arrays of length k), step sd
    ``sigma`` (one per bridge)."""
    z = rng.standard_normal((len(a), n)) * np.asarray(sigma)[:, None]
    w = np.cumsum(z, axis=1)
    t = np.arange(1, n + 1) / n
    return a[:, None] + (b - a)[:, None] * t + w - t * w[:, -1:]


def bridge1(rng, a, b, n, sigma):
    """One Brownian bridge (points 1..n) from the scalar ``a`` to ``b``, step sd ``sigma``."""
    return bridge(rng, np.array([a]), np.array([b]), n, [sigma])[0]

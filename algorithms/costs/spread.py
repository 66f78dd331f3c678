"""Half-spread estimates from minute-bar highs and lows (the ``spread`` slippage model).

The half-spread comes from the last ``spread_window`` minute bars: Corwin-Schultz (2012)
high-low estimator on consecutive bar pairs (``spread_estimator="corwin_schultz"``, negative
pair estimates set to 0) or the mean of (high - low) / 2 (``"high_low"``, an upper bound). It
is floored at ``min_half_spread`` dollars (half a cent: a one-tick spread) and
``min_half_spread_bps``, and capped at ``max_half_spread_bps``.
"""
from __future__ import annotations

import math

import numpy as np

from .config import CostConfig

CS_DENOM = 3.0 - 2.0 * math.sqrt(2.0)  # Corwin-Schultz (2012): the 3 - 2*sqrt(2) in alpha


def corwin_schultz_spread(high, low) -> float:
    """Mean Corwin-Schultz relative spread (fraction of price) over consecutive bar pairs.

    Pairs with a missing bar are skipped; negative pair estimates count as 0. NaN when no
    pair is usable.
    """
    h = np.asarray(high, dtype="float64")
    lo = np.asarray(low, dtype="float64")
    if len(h) < 2:
        return float("nan")
    ok = np.isfinite(h) & np.isfinite(lo) & (h > 0) & (lo > 0)
    pair = ok[1:] & ok[:-1]
    if not pair.any():
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = np.log(h / lo) ** 2
        beta = hl[1:] + hl[:-1]
        gamma = np.log(np.maximum(h[1:], h[:-1]) / np.minimum(lo[1:], lo[:-1])) ** 2
        alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / CS_DENOM - np.sqrt(gamma / CS_DENOM)
        s = 2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))
    s = np.where(pair, np.maximum(s, 0.0), np.nan)
    return float(np.nanmean(s))


def high_low_half_spread(high, low) -> float:
    """Mean (high - low) / 2 in dollars over the bars with both values (NaN when none)."""
    h = np.asarray(high, dtype="float64")
    lo = np.asarray(low, dtype="float64")
    ok = np.isfinite(h) & np.isfinite(lo)
    if not ok.any():
        return float("nan")
    return float(np.mean((h[ok] - lo[ok]) / 2.0))


def half_spread(config: CostConfig, price: float, high, low) -> float:
    """Estimated half-spread in dollars at ``price`` from bar highs/lows (floors, cap applied)."""
    if config.spread_estimator == "corwin_schultz":
        rel = corwin_schultz_spread(high, low)
        hs = rel / 2.0 * price if np.isfinite(rel) else 0.0
    else:
        hs = high_low_half_spread(high, low)
        hs = hs if np.isfinite(hs) else 0.0
    floor = max(config.min_half_spread, price * config.min_half_spread_bps / 1e4)
    cap = price * config.max_half_spread_bps / 1e4
    return float(min(max(hs, floor), max(cap, floor)))

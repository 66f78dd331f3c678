"""What the sell-gap rule and the sell-gap screen see of the simulated history."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .params import (EWM_SPAN, SCREEN_ADV_WINDOW, SCREEN_MIN_CLOSE, SCREEN_SMA_WINDOW,
                     SCREEN_STD_DECAY, SCREEN_STD_WINDOW, SCREEN_TOP)


def ewm_std(closes_hist, i, d) -> float:
    """The test rule's std of ticker ``i`` before session ``d``: ``close.ewm(span=63).std()``
    of its prior day-aggregate closes (NaN with fewer than 10)."""
    hist = closes_hist[i, :d]
    hist = hist[~np.isnan(hist)]
    if len(hist) < 10:
        return float("nan")
    return float(pd.Series(hist).ewm(span=EWM_SPAN).std().iloc[-1])


def ewm_std_zipline(x, decay_rate):
    """zipline's ``ExponentialWeightedMovingStdDev`` of a window ``x`` (oldest first)."""
    w = np.full(len(x), decay_rate) ** np.arange(len(x) + 1, 1, -1)
    mean = np.average(x, weights=w)
    var = np.average((x - mean) ** 2, weights=w)
    sw2 = w.sum() ** 2
    return float(np.sqrt(var * sw2 / (sw2 - (w ** 2).sum())))


def screen(sim, a, d, prev):
    """Rows ``j`` of ``a`` that pass the sell-gap screen before session ``d`` opens, with
    the screen's 63-day std and 20-day mean (Pipeline's view: adjusted closes, regular-
    session volume; see :func:`factors.screens.sell_gap_pipeline`)."""
    if d < SCREEN_STD_WINDOW:
        return []
    u = sim.universe
    adv = sim.dv_hist[:, d - SCREEN_ADV_WINDOW:d].sum(axis=1) / SCREEN_ADV_WINDOW
    listed = u.is_cs & (u.first <= d - 1) & (u.last >= d - 1)
    order = np.flatnonzero(listed)[np.argsort(-adv[listed], kind="stable")]
    top = set(order[:SCREEN_TOP].tolist())
    out = []
    for j, i in enumerate(a):
        if i not in top or u.role[i] not in ("large", "mid"):
            continue
        hist = sim.adj_hist[i, d - SCREEN_STD_WINDOW:d]
        if not np.isfinite(hist).all() or prev[j] <= SCREEN_MIN_CLOSE * 1.02:
            continue
        sma = float(hist[-SCREEN_SMA_WINDOW:].mean())
        if prev[j] <= sma * 1.005:
            continue
        out.append((j, ewm_std_zipline(hist, SCREEN_STD_DECAY), sma))
    return out

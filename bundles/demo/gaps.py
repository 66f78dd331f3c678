"""Sell-gap days: the open set below the prior low, then continuation or reversion on 4x volume."""
from __future__ import annotations

import numpy as np

from .params import SCREEN_GAP_RATE
from .screen import ewm_std, screen


def plan_sell_gaps(sim, day) -> list[tuple]:
    """Sell gaps of the scheduled liquid names: the open at the prior day-aggregate low minus
    1.3-3x the 63-day EWM std of closes. Returns ``(j, std, direction, screened)`` rows."""
    sch, a, d, sig, rng = sim.schedule, day.a, day.d, day.sig, day.rng
    gap_rows = []
    for j in np.flatnonzero(sch.gap_event[a, d]):
        i = a[j]
        std = ewm_std(sim.closes_hist, i, d)
        target = day.prev_low[j] - sch.gap_k[i, d] * std
        if not np.isfinite(std) or target < 0.55 * day.prev[j] or target <= 0:
            continue
        day.open_[j] = target
        # Continuation or reversion through the session.
        day.r[j] = sch.gap_dir[i, d] * rng.uniform(1.0, 3.0) * sig[j] + rng.normal(0, sig[j])
        day.vol_mult[j] *= 4.0
        day.rth_sigma[j] *= 1.8
        gap_rows.append((j, std, sch.gap_dir[i, d], False))
    return gap_rows


def plan_screened_gaps(sim, day, gap_rows: list[tuple]) -> set[int]:
    """Sell gaps on names that pass the sell-gap screen (top decile of dollar volume, above
    the 20-day mean): open below both the prior low - the screen's std (zipline's 63-day EWM
    std, decay 0.99) and the test rule's std, and below the 20-day mean. Appends to
    ``gap_rows``; returns the rows ``j`` that gap."""
    sch, a, d, sig, ev = sim.schedule, day.a, day.d, day.sig, day.ev
    gapped = {row[0] for row in gap_rows}
    if d < sch.events_from:
        return gapped
    for j, std_z, sma in screen(sim, a, d, day.prev):
        i = a[j]
        if j in gapped or sch.special[i, d] or sch.screen_draw[i, d] >= SCREEN_GAP_RATE:
            continue
        std = ewm_std(sim.closes_hist, i, d)
        kk = sch.screen_k[i, d]
        target = min(day.prev_low[j] - kk * std, day.prev_low_rth[j] - kk * std_z, 0.99 * sma)
        if not np.isfinite(target) or target < 0.55 * day.prev[j]:
            continue
        day.open_[j] = target
        day.r[j] = (sch.screen_dir[i, d] * ev.uniform(1.0, 3.0) * sig[j]
                    + ev.normal(0, sig[j]))
        day.vol_mult[j] *= 4.0
        day.rth_sigma[j] *= 1.8
        gap_rows.append((j, std, sch.screen_dir[i, d], True))
        gapped.add(j)
    return gapped

"""Penny-stock pumps: pre-market news and a spike; in the session a morning of chop (or a
squeeze 20-80 % above the open), then the fade (or the squeeze holds into the close)."""
from __future__ import annotations

import numpy as np

from .params import PRE_MINUTES
from .paths import bridge1, round_price
from .sessions import iso


def plan_pumps(sim, day) -> list[tuple]:
    """Open, close and morning of the scheduled pumps: ``(j, size, t_news, morning)`` rows with
    ``morning = (move from the open, minutes after the open, holds the squeeze?)``."""
    sch, a, d, rng, ev, prev = sim.schedule, day.a, day.d, day.rng, day.ev, day.prev
    pump_rows = []
    for j in np.flatnonzero(sch.pump_event[a, d]):
        i = a[j]
        p = sch.pump_size[i, d]
        day.open_[j] = round_price(prev[j] * (1 + p * rng.uniform(0.6, 0.95)))
        day.close[j] = round_price(prev[j] * (1 + p * rng.uniform(-0.25, 0.45)))
        day.rth_sigma[j] *= 2.0
        t_news = int(rng.integers(0, 201))
        if sch.squeeze[i, d]:  # squeezes 20-80 % above the open in the first hour
            size, t_sq = ev.uniform(0.2, 0.8), int(ev.integers(8, 61))
            hold = bool(ev.random() < 0.35)  # ... and holds, or fades as usual
            if hold:
                day.close[j] = round_price(day.open_[j] * (1 + size * ev.uniform(0.2, 0.8)))
            morning = (size, t_sq, hold)
        else:  # the fade starts after a morning of chop around the open
            morning = (ev.uniform(-0.08, 0.06), int(ev.integers(30, 121)), None)
        pump_rows.append((j, p, t_news, morning))
    return pump_rows


def pump_path(sim, day, row) -> None:
    """Path, presence and volume of one pump (a ``plan_pumps`` row); logs it in ``sim.pumps``."""
    j, p, t_news, morning = row
    _premarket(day, j, p, t_news)
    entry = {"ticker": sim.universe.tickers[day.a[j]], "session": iso(day.session),
             "prior_close": float(day.prev[j]), "pump": round(float(p), 3),
             "open": float(day.open_[j]), "close": float(day.close[j]), "kind": "fade"}
    move, t_w, hold = morning
    _regular_session(day, j, move, t_w, hold)
    if hold is not None:
        entry.update(kind="squeeze_hold" if hold else "squeeze",
                     squeeze_high=float(round_price(day.open_[j] * (1 + move))),
                     squeeze_minute=t_w)
    sim.pumps.append(entry)


def _premarket(day, j, p, t_news):
    """News at ``t_news`` minutes after 04:00, a spike to the peak, back to the open; busy
    minutes from the news on, heavy volume around the peak."""
    rng, L, present, vol_f, n = day.rng, day.L, day.present, day.vol_f, day.n
    base = np.log(day.prev[j])
    peak = base + np.log1p(p)
    first = base + np.log1p(p * rng.uniform(0.6, 0.9))
    t_peak = int(rng.integers(t_news + 1, PRE_MINUTES - 10))
    s_pump = 4 * day.sig[j] / np.sqrt(PRE_MINUTES)
    pts = [np.array([base])]
    if t_news:
        pts.append(bridge1(rng, base, base, t_news, day.pre_sigma[j]))
    pts.append(np.array([first]))
    if t_peak > t_news + 1:
        pts.append(bridge1(rng, first, peak, t_peak - t_news - 1, s_pump))
    pts.append(bridge1(rng, peak, np.log(day.open_[j]), PRE_MINUTES - t_peak, s_pump))
    L[j, :PRE_MINUTES + 1] = np.concatenate(pts)[:PRE_MINUTES + 1]
    present[j, t_news:PRE_MINUTES] = rng.random(PRE_MINUTES - t_news) < 0.9
    present[j, [t_news, t_peak - 1]] = True
    tt = np.arange(PRE_MINUTES - t_news)
    vol_f[j, t_news:PRE_MINUTES] *= 8 + 60 * np.exp(-np.abs(tt - (t_peak - t_news)) / 60)
    vol_f[j, PRE_MINUTES:PRE_MINUTES + n] *= 2 + 10 * np.exp(-4 * day.x)
    vol_f[j, PRE_MINUTES + n:] *= 3


def _regular_session(day, j, move, t_w, hold):
    """Open -> the morning waypoint (a squeeze top, or chop around the open) -> the close;
    a squeeze trades at its top on a volume burst."""
    ev, n = day.ev, day.n
    lo_, mid = np.log(day.open_[j]), np.log(day.open_[j]) + np.log1p(move)
    s_w = 1.5 * day.rth_sigma[j]
    day.L[j, PRE_MINUTES + 1:PRE_MINUTES + t_w + 1] = bridge1(ev, lo_, mid, t_w, s_w)
    day.L[j, PRE_MINUTES + t_w + 1:PRE_MINUTES + n + 1] = bridge1(ev, mid, np.log(day.close[j]),
                                                                  n - t_w, s_w)
    if hold is not None:
        m = np.arange(n)
        day.vol_f[j, PRE_MINUTES:PRE_MINUTES + n] *= 1 + 4 * np.exp(-np.abs(m - t_w) / 20)
        day.present[j, PRE_MINUTES + t_w - 1] = True

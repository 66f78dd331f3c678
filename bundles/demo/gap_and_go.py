"""Gap-and-go days: news before the open, a 11-40 % pre-market gap on heavy volume, a pull-back
under the pre-market high after the open, then a break above it on a volume burst before 11:00
and a run of 4-30 % that holds (runner), gives back (fader) or collapses below VWAP (reversal)."""
from __future__ import annotations

import numpy as np

from .params import GAP_AND_GO_PRICE, PRE_MINUTES
from .paths import bridge1, round_price

_RUN = {"runner": (0.15, 0.30), "fader": (0.05, 0.15), "reversal": (0.04, 0.10)}


def plan_gap_and_go(sim, day, gapped: set[int]) -> list[dict]:
    """Open, close and timeline of the scheduled gap-and-go days (not on sell-gap rows, prior
    close in :data:`GAP_AND_GO_PRICE`): one dict per day, row ``j`` of ``day.a``."""
    sch, a, d, ev, prev = sim.schedule, day.a, day.d, day.ev, day.prev
    gng_rows = []
    for j in np.flatnonzero(sch.gng_event[a, d]):
        if j in gapped or not GAP_AND_GO_PRICE[0] <= prev[j] <= GAP_AND_GO_PRICE[1]:
            continue
        g = ev.uniform(0.11, 0.40)
        o = float(round_price(prev[j] * (1 + g)))
        high = o * (1 + ev.uniform(0.03, 0.10))
        u = ev.random()
        kind = "runner" if u < 0.45 else "fader" if u < 0.75 else "reversal"
        peak = high * (1 + ev.uniform(*_RUN[kind]))
        if kind == "runner":
            c = peak * (1 - ev.uniform(0.02, 0.10))
        elif kind == "fader":
            c = high * (1 + ev.uniform(-0.05, 0.04))
        else:
            c = o * (1 - ev.uniform(0.03, 0.12))
        t_news = int(ev.integers(30, 241))
        t_b = int(ev.integers(4, 76))  # breakout bar, minutes after the open
        t_pk = t_b + int(ev.integers(8, 61))
        t_mid = t_pk + int(ev.integers(15, 51))  # reversal: back near the open by then
        day.open_[j], day.close[j] = o, round_price(c)
        day.rth_sigma[j] *= 2.5
        gng_rows.append(dict(j=j, gap=g, high=high, peak=peak, kind=kind, t_news=t_news,
                             t_peak=int(ev.integers(t_news + 10, PRE_MINUTES - 20)),
                             t_b=t_b, t_pk=t_pk, t_mid=t_mid,
                             mid=o * (1 - ev.uniform(0.0, 0.05)),
                             first=np.log1p(g * ev.uniform(0.5, 0.9)),
                             pm_mult=ev.uniform(4, 10), rth_mult=ev.uniform(6, 15)))
    return gng_rows


def gap_and_go_path(sim, day, e) -> None:
    """Price path, presence and volume of one gap-and-go day (row ``e["j"]``)."""
    _premarket_path(day, e)
    _session_path(day, e)
    _presence_and_volume(day, e, sim.universe.base_vol[day.a[e["j"]]])


def _premarket_path(day, e):
    """Quiet, the news print, a run to the pre-market high, a pull-back to the last pre-market
    price (= the open); the high is never exceeded (resistance)."""
    ev, j, P0 = day.ev, e["j"], PRE_MINUTES
    t_news, t_peak = e["t_news"], e["t_peak"]
    base, lo_, lh = np.log(day.prev[j]), np.log(day.open_[j]), np.log(e["high"])
    s_pre = 3 * day.sig[j] / np.sqrt(PRE_MINUTES)
    pts = [np.array([base]), bridge1(ev, base, base, t_news, day.pre_sigma[j]),
           np.array([base + e["first"]]),
           bridge1(ev, base + e["first"], lh, t_peak - t_news - 1, s_pre),
           bridge1(ev, lh, lo_, P0 - t_peak, s_pre)]
    day.L[j, :P0 + 1] = np.minimum(np.concatenate(pts), lh)


def _session_path(day, e):
    """Under the pre-market high until the breakout bar ``t_b``, whose close clears it; the run
    to the peak; then the close (reversals first drop back to around the open)."""
    ev, L, n, j, P0 = day.ev, day.L, day.n, e["j"], PRE_MINUTES
    t_b, t_pk = e["t_b"], e["t_pk"]
    lo_, lh, lp = np.log(day.open_[j]), np.log(e["high"]), np.log(e["peak"])
    s = 1.2 * day.rth_sigma[j]
    below = lh + np.log(1 - ev.uniform(0.005, 0.02))
    L[j, P0 + 1:P0 + t_b + 1] = np.minimum(bridge1(ev, lo_, below, t_b, s), lh - 0.004)
    brk = lh + np.log1p(ev.uniform(0.015, 0.035))
    L[j, P0 + t_b + 1] = brk
    L[j, P0 + t_b + 2:P0 + t_pk + 1] = bridge1(ev, brk, lp, t_pk - t_b - 1, s)
    lc = np.log(day.close[j])
    if e["kind"] == "reversal":  # a quick drop back to the open, then the afternoon
        t_mid, lm = e["t_mid"], np.log(e["mid"])
        L[j, P0 + t_pk + 1:P0 + t_mid + 1] = bridge1(ev, lp, lm, t_mid - t_pk, s)
        L[j, P0 + t_mid + 1:P0 + n + 1] = bridge1(ev, lm, lc, n - t_mid, s)
    else:
        L[j, P0 + t_pk + 1:P0 + n + 1] = bridge1(ev, lp, lc, n - t_pk, s)


def _presence_and_volume(day, e, base_vol):
    """Busy from the news on (the last pre-market bar, the news bar, the bar reaching the
    pre-market high and the breakout bars always trade); heavy pre-market volume around the
    high; in the session an opening burst, the breakout burst (volume confirmation), selling
    volume on reversals, a closing bump."""
    ev, n, j, P0 = day.ev, day.n, e["j"], PRE_MINUTES
    t_news, t_peak, t_b, t_pk = e["t_news"], e["t_peak"], e["t_b"], e["t_pk"]
    day.present[j, t_news:P0] = ev.random(P0 - t_news) < 0.85
    day.present[j, [t_news, t_peak - 1, P0 - 1]] = True
    day.present[j, P0 + t_b:P0 + t_b + 3] = True
    tt = np.arange(P0 - t_news)
    day.vol_f[j, t_news:P0] = base_vol * e["pm_mult"] * (
        1 + 5 * np.exp(-np.abs(tt - (t_peak - t_news)) / 40))
    m = np.arange(n)
    shape = (0.6 + 1.8 * np.exp(-m / 25) + 0.8 * np.exp(-(n - 1 - m) / 15)
             + np.where(m >= t_b, 8 * np.exp(-(m - t_b) / 10), 0.0))
    if e["kind"] == "reversal":
        shape += np.where(m >= t_pk, 3 * np.exp(-(m - t_pk) / 15), 0.0)
    day.vol_f[j, P0:P0 + n] = base_vol * e["rth_mult"] * shape
    day.vol_f[j, P0 + n:] *= 3

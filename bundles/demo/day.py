"""One session of the simulation: open and close, the minute price path, which minutes trade,
the volume profile, the day's events (sell gaps, pumps, gap-and-go, the intraday halt), bars."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..market import MINUTES_PER_DAY
from . import bars, gap_and_go, gaps, pumps
from .params import INTRADAY_HALT, INTRADAY_HALT_SESSION, POST_MINUTES, PRE_MINUTES, SEED
from .paths import bridge, round_price
from .sessions import iso


class Day:
    """The working arrays of session ``d``; row ``j`` is ticker ``a[j]`` of the universe.

    Minute ``m`` of the ``M``-minute day (04:00 .. the close + 4 h) is the bar starting at
    04:00 + m; ``L[:, m]`` is the log price at its start (``L[:, M]`` after the last bar), so
    the regular session is ``PRE_MINUTES .. PRE_MINUTES + n``. ``rng`` draws the day's base
    path and bars, ``ev`` the v3 events (screened gaps, gap-and-go days, squeezes).

    The steps of :func:`simulate_day` fill in the rest: ``prev``, ``prev_low``,
    ``prev_low_rth`` (split-adjusted), ``open_``, ``close``, ``r`` (intraday log return),
    ``vol_mult``, the step sizes ``pre_sigma``, ``rth_sigma``, ``post_sigma``, then the path
    ``L``, ``present`` (which minutes have a bar) and ``vol_f`` (expected minute volume).
    """

    def __init__(self, sim, d: int):
        u = sim.universe
        self.d = d
        self.session = sim.sessions.days[d]
        self.rng = np.random.default_rng([SEED, 1, d])
        self.ev = np.random.default_rng([SEED, 2, d])  # the v3 events' own stream
        trading = (u.first <= d) & (d <= u.last) & ~sim.schedule.halted[:, d]
        self.a = np.flatnonzero(trading)
        self.k = len(self.a)
        self.n = int(sim.sessions.n_rth[d])
        self.M = PRE_MINUTES + self.n + POST_MINUTES
        self.sig = u.sigma[self.a]
        self.x = np.arange(self.n) / max(self.n - 1, 1)  # the regular session in [0, 1]
        self.t_pre = np.arange(PRE_MINUTES) / PRE_MINUTES  # the pre-market in [0, 1)
        self.t_post = np.arange(POST_MINUTES)  # minutes since the close


def simulate_day(sim, d: int, build: bool = True):
    """Simulate session ``d``: returns ({"n": rows, "frame": minute frame or None}, day frame).

    The steps draw from the day's two streams in this order: moving one changes the data.
    """
    day = Day(sim, d)
    _apply_splits(sim, day)
    _open_and_close(sim, day)
    gap_rows = gaps.plan_sell_gaps(sim, day)
    gapped = gaps.plan_screened_gaps(sim, day, gap_rows)
    day.open_ = round_price(day.open_)
    day.close = round_price(day.open_ * np.exp(day.r))
    pump_rows = pumps.plan_pumps(sim, day)
    gng_rows = gap_and_go.plan_gap_and_go(sim, day, gapped)
    day.L = _base_path(day)
    day.present = _presence(sim, day, [row[0] for row in pump_rows] + [e["j"] for e in gng_rows])
    day.vol_f = _volume_profile(sim, day)
    for row in pump_rows:
        pumps.pump_path(sim, day, row)
    for e in gng_rows:
        gap_and_go.gap_and_go_path(sim, day, e)
    if day.session == pd.Timestamp(INTRADAY_HALT_SESSION):
        _intraday_halt(sim, day)
    _cap_volume(day)
    b = bars.minute_bars(sim, day)
    agg = bars.day_aggregates(sim, day, b)
    _record_events(sim, day, b, agg, gap_rows, gng_rows)
    _advance(sim, day, b, agg)
    result = {"n": b.n, "frame": bars.minute_frame(sim, day, b) if build else None}
    return result, agg.frame


def _apply_splits(sim, day):
    """On an execution date, prices (anchor, prior close and lows) divide by the split ratio,
    share counts multiply; Pipeline's history windows are split- and dividend-adjusted."""
    u, sch, a, d = sim.universe, sim.schedule, day.a, day.d
    ratio = sch.split_ratio[a, d]
    sim.anchor[a] /= ratio
    u.base_vol[a] *= ratio  # share counts follow the split
    u.trade_shares[a] *= ratio
    day.prev = sim.last_close[a] / ratio
    day.prev_low = sim.last_low[a] / ratio
    day.prev_low_rth = sim.last_low_rth[a] / ratio
    # Pipeline windows are split- and dividend-adjusted as of today.
    for j in np.flatnonzero((ratio != 1) | (sch.dividend[a, d] > 0)):
        sim.adj_hist[a[j], :d] *= (1.0 - sch.dividend[a[j], d] / day.prev[j]) / ratio[j]


def _open_and_close(sim, day):
    """The overnight gap (market factor, idiosyncratic shock, mean reversion to the anchor,
    wider after a full-day halt, less the dividend) and the intraday return ``r``; the step
    sizes of the three parts of the day."""
    u, sch, a, d, sig, prev = sim.universe, sim.schedule, day.a, day.d, day.sig, day.prev
    pull = u.kappa[a] * (np.log(prev) - np.log(sim.anchor[a]))
    after_halt = np.zeros(day.k, dtype=bool)
    if d > 0:
        after_halt = sch.halted[a, d - 1]
    gap_sd = 0.45 * sig * np.where(after_halt, 6.0, 1.0)
    g = u.beta[a] * sch.mkt_gap[d] + gap_sd * sch.eps_gap[a, d] - pull + u.drift[a] / 2
    day.r = u.beta[a] * sch.mkt_intra[d] + 0.75 * sig * sch.eps_intra[a, d] + u.drift[a] / 2
    day.open_ = prev * np.exp(g) - sch.dividend[a, d]
    day.close = None
    day.vol_mult = sch.vol_day[a, d].copy()
    day.pre_sigma = 0.35 * sig / np.sqrt(PRE_MINUTES)
    day.rth_sigma = 0.8 * sig / np.sqrt(MINUTES_PER_DAY)
    day.post_sigma = 0.3 * sig / np.sqrt(POST_MINUTES)


def _base_path(day):
    """Continuous log-price path: prior close -> open -> close -> after hours."""
    rng, k, n, M = day.rng, day.k, day.n, day.M
    lp, lo, lc = np.log(day.prev), np.log(day.open_), np.log(day.close)
    L = np.empty((k, M + 1))
    L[:, 0] = lp
    L[:, 1:PRE_MINUTES + 1] = bridge(rng, lp, lo, PRE_MINUTES, day.pre_sigma)
    L[:, PRE_MINUTES + 1:PRE_MINUTES + n + 1] = bridge(rng, lo, lc, n, day.rth_sigma)
    L[:, PRE_MINUTES + n + 1:] = lc[:, None] + np.cumsum(
        rng.standard_normal((k, POST_MINUTES)) * day.post_sigma[:, None], axis=1)
    return L


def _presence(sim, day, busy):
    """Which minutes have a bar: each name's regular-session coverage; extended-hours activity
    rising into the open and fading after the close; the ``busy`` rows (pumps, gap-and-go)
    trade nearly every minute of the morning. Every name trades the first and last minute."""
    u, a, n, M = sim.universe, day.a, day.n, day.M
    t_pre, t_post = day.t_pre, day.t_post
    ext_cov = np.r_[0.01 + 0.25 * t_pre ** 3, np.zeros(n), 0.02 + 0.35 * np.exp(-t_post / 20)]
    rth = np.zeros(M, dtype=bool)
    rth[PRE_MINUTES:PRE_MINUTES + n] = True
    cov = np.where(rth[None, :], u.cov[a][:, None], ext_cov[None, :] * u.ext[a][:, None])
    for j in busy:
        cov[j, PRE_MINUTES:PRE_MINUTES + 150] = 0.97
        cov[j, PRE_MINUTES + 150:PRE_MINUTES + n] = max(u.cov[a[j]], 0.7)
    present = day.rng.random((day.k, M)) < np.where(rth[None, :], cov, np.minimum(cov, 0.95))
    present[:, PRE_MINUTES] = True
    present[:, PRE_MINUTES + n - 1] = True
    return present


def _volume_profile(sim, day):
    """Expected minute volume: U-shaped regular session, thin extended hours (noise comes with
    the bars)."""
    t_pre, t_post, x = day.t_pre, day.t_post, day.x
    rth_prof = 0.7 + 2.5 * np.exp(-x * 12) + 1.8 * np.exp(-(1 - x) * 15)
    prof = np.r_[0.04 + 0.25 * t_pre ** 2, rth_prof, 0.05 + 0.3 * np.exp(-t_post / 30)]
    return (sim.universe.base_vol[day.a] * day.vol_mult)[:, None] * prof[None, :]


def _intraday_halt(sim, day):
    """No bars for 26 minutes; trading resumes with a jump that fades by the close."""
    u = sim.universe
    j = int(np.flatnonzero(day.a == u.pos[id(u.intraday_halt)])[0])
    h0, h1 = (PRE_MINUTES + (pd.Timedelta(f"{t}:00") - pd.Timedelta("09:30:00"))
              // pd.Timedelta(minutes=1) for t in INTRADAY_HALT)
    end = PRE_MINUTES + day.n
    ramp = 1 - (np.arange(h1, end + 1) - h1) / (end - h1)
    day.L[j, h1:end + 1] += np.log(1.18) * ramp
    day.present[j, h0:h1] = False
    day.present[j, [h0 - 1, h1]] = True
    day.vol_f[j, h1:h1 + 15] *= 6


def _cap_volume(day):
    """zipline stores daily volumes as uint32: keep a day's regular-session volume (sub-penny
    pumps trade billions of shares) under 2 billion."""
    rth = slice(PRE_MINUTES, PRE_MINUTES + day.n)
    rth_volume = (day.vol_f[:, rth] * day.present[:, rth]).sum(axis=1)
    day.vol_f *= np.minimum(1.0, 2e9 / np.maximum(rth_volume, 1.0))[:, None]


def _record_events(sim, day, b, agg, gap_rows, gng_rows):
    """The day's sell gaps and gap-and-go days, for the manifest."""
    tickers, session = sim.universe.tickers[day.a], iso(day.session)
    for j, std, direction, screened in gap_rows:
        sim.sell_gaps.append({"ticker": tickers[j], "session": session,
                              "open": float(day.open_[j]), "prior_low": float(day.prev_low[j]),
                              "ewm_std": round(std, 6),
                              "kind": "continuation" if direction < 0 else "reversion",
                              "screened": screened})
    for e in gng_rows:
        j = e["j"]
        sim.gap_and_go.append({
            "ticker": tickers[j], "session": session,
            "prior_close": float(day.prev[j]), "premarket_last": float(day.open_[j]),
            "premarket_high": float(b.hi[agg.starts[j]:agg.first_rth[j]].max()),
            "breakout_et": (pd.Timestamp("09:30") + pd.Timedelta(minutes=e["t_b"]))
            .strftime("%H:%M"),
            "high": float(b.hi[agg.first_rth[j]:agg.last_rth[j] + 1].max()),
            "close": float(agg.close[j]), "kind": e["kind"]})


def _advance(sim, day, b, agg):
    """What the following sessions see: the last close and lows, the close histories (the
    rule's and Pipeline's) and the regular-session dollar volume."""
    a, d, n = day.a, day.d, day.n
    rth_row = (b.rows_m >= PRE_MINUTES) & (b.rows_m < PRE_MINUTES + n)
    sim.last_close[a] = agg.close
    sim.last_low[a] = agg.low
    sim.last_low_rth[a] = np.minimum.reduceat(np.where(rth_row, b.lo, np.inf), agg.first_rth)
    sim.closes_hist[a, d] = agg.close
    sim.adj_hist[a, d] = agg.close
    sim.dv_hist[a, d] = agg.close * np.bincount(b.rows_s, weights=np.where(rth_row, b.vol, 0),
                                                minlength=day.k)

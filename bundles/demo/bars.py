"""Minute bars from a simulated day (OHLC, volume, transactions), the day aggregates and the
minute file's rows."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from .params import NS_PER_MINUTE, PRE_MINUTES, UNSORTED_SESSION
from .paths import round_price


def minute_bars(sim, day) -> SimpleNamespace:
    """The bars where ``day.present`` (rows in ticker, then time order): ``rows_s``/``rows_m``
    (row of ``day.a``, minute), ``o, c, hi, lo, vol, tx``; ``n`` bars. A bar opens and closes
    on the path; its wicks, volume noise and trade counts are drawn."""
    rng, n = day.rng, day.n
    rows_s, rows_m = np.nonzero(day.present)
    P = np.exp(day.L)
    P[:, PRE_MINUTES] = day.open_
    P[:, PRE_MINUTES + n] = day.close
    o, c = P[rows_s, rows_m], P[rows_s, rows_m + 1]
    nb = len(rows_s)
    wick = (0.6 * day.rth_sigma)[rows_s]
    hi = np.maximum(o, c) * np.exp(np.abs(rng.standard_normal(nb)) * wick)
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.standard_normal(nb)) * wick)
    o, c, hi, lo = round_price(o), round_price(c), round_price(hi), round_price(lo)
    hi = np.maximum(hi, np.maximum(o, c))
    lo = np.minimum(lo, np.minimum(o, c))
    vol = day.vol_f[rows_s, rows_m] * np.exp(rng.normal(0, 0.5, nb))
    vol = np.maximum(np.rint(vol), 1).astype(np.int64)
    tx = np.rint(vol / sim.universe.trade_shares[day.a][rows_s] * np.exp(rng.normal(0, 0.3, nb)))
    tx = np.clip(tx, 1, vol).astype(np.int64)
    return SimpleNamespace(rows_s=rows_s, rows_m=rows_m, o=o, c=c, hi=hi, lo=lo, vol=vol, tx=tx,
                           n=nb)


def day_aggregates(sim, day, b) -> SimpleNamespace:
    """The day aggregates (see the package docstring for the definitions): ``frame``, with
    ``close``/``low`` per row of ``day.a`` and each ticker's first bar, first and last
    regular-session bar (``starts``, ``first_rth``, ``last_rth``: positions in ``b``)."""
    k, M, n = day.k, day.M, day.n
    starts = np.searchsorted(b.rows_s, np.arange(k))  # every ticker has >= 2 bars
    cell = b.rows_s * M + b.rows_m
    first_rth = np.searchsorted(cell, np.arange(k) * M + PRE_MINUTES)
    last_rth = np.searchsorted(cell, np.arange(k) * M + PRE_MINUTES + n - 1)
    day_close = b.c[last_rth]
    low_d = np.minimum.reduceat(b.lo, starts)
    frame = pd.DataFrame({
        "ticker": sim.universe.tickers[day.a],
        "volume": np.add.reduceat(b.vol, starts),
        "open": b.o[first_rth],
        "close": day_close,
        "high": np.maximum.reduceat(b.hi, starts),
        "low": low_d,
        "window_start": np.full(k, sim.sessions.day_ns[day.d], dtype=np.int64),
        "transactions": np.add.reduceat(b.tx, starts),
    })
    return SimpleNamespace(frame=frame, close=day_close, low=low_d, starts=starts,
                           first_rth=first_rth, last_rth=last_rth)


def minute_frame(sim, day, b) -> pd.DataFrame:
    """The minute file's rows in Polygon's columns (shuffled on :data:`UNSORTED_SESSION`)."""
    M = day.M
    ws = (sim.sessions.opens[day.d] - PRE_MINUTES * NS_PER_MINUTE
          + np.arange(M, dtype=np.int64) * NS_PER_MINUTE)
    frame = pd.DataFrame({
        "ticker": sim.universe.tickers[day.a][b.rows_s],
        "volume": b.vol,
        "open": b.o,
        "close": b.c,
        "high": b.hi,
        "low": b.lo,
        "window_start": ws[b.rows_m],
        "transactions": b.tx,
    })
    if day.session == pd.Timestamp(UNSORTED_SESSION):
        frame = frame.iloc[day.rng.permutation(len(frame))].reset_index(drop=True)
    return frame

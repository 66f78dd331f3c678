"""The event calendar, drawn before the first session: splits, dividends, halts, which days
gap down, pump, squeeze or gap and go, and the daily market and idiosyncratic shocks."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .params import (ETF_SPECS, EVENTS_FROM, FORWARD_SPLIT_DATE, FULL_DAY_HALT_SESSION,
                     GAP_AND_GO_RATE, INTRADAY_HALT_SESSION, LOW_FLOAT, PUMP_RATE,
                     REVERSE_SPLIT_DATE, SEED, SELL_GAP_RATE, SQUEEZE_RATE)
from .sessions import iso


class Schedule:
    """Ticker x session arrays of what happens when (rows as in the universe).

    ``split_ratio`` (new shares per old share on the execution date), ``dividend`` (cash on the
    ex-date, with ``dividend_rows`` as Polygon lists them), ``halted`` (no bars all day);
    ``gap_event``/``pump_event``/``gng_event``/``squeeze``: sell gap, penny pump, gap-and-go
    and squeezing-pump days; ``special``: days no such event may fall on.
    """

    def __init__(self, universe, sessions, rng):
        self.universe, self.sessions, self.rng = universe, sessions, rng
        S, D = len(universe), len(sessions)
        self.split_ratio = np.ones((S, D))
        self.dividend = np.zeros((S, D))
        self.halted = np.zeros((S, D), dtype=bool)
        self.dividend_rows: list[dict] = []

    def corporate_actions(self):
        """The two splits, the full-day halt and the quarterly dividends."""
        u, sess = self.universe, self.sessions.index
        fs, rs = u.pos[id(u.forward_split)], u.pos[id(u.reverse_split)]
        self.split_ratio[fs, sess(FORWARD_SPLIT_DATE)] = 4.0
        self.split_ratio[rs, sess(REVERSE_SPLIT_DATE)] = 0.1
        self.halted[u.pos[id(u.full_halt)], sess(FULL_DAY_HALT_SESSION)] = True
        # Dividends: 15 large caps (not the split name) quarterly, and the ETFs.
        large = [i for i in range(len(u)) if u.role[i] == "large" and i != fs]
        payers = sorted(self.rng.choice(large, 15, replace=False))
        for i in payers:
            first = int(self.rng.integers(8, 60))
            yld = self.rng.uniform(0.008, 0.035)
            amount = round(float(u.p0[i]) * yld / 4, 2)
            for d in (first, first + 63):
                if d < len(self.sessions):
                    self._add_dividend(i, d, amount)
        for ticker, *_, divs in ETF_SPECS:
            i = int(np.flatnonzero(u.tickers == ticker)[0])
            for day, amount in divs:
                self._add_dividend(i, sess(day), amount)

    def _add_dividend(self, i, d, amount):
        self.dividend[i, d] = amount
        ex = pd.Timestamp(self.sessions.days[d])
        self.dividend_rows.append({
            "ticker": self.universe.tickers[i],
            "ex_dividend_date": iso(ex),
            "record_date": iso(ex),  # T+1 settlement (from May 2024): record date = ex-date
            "pay_date": iso(ex + pd.Timedelta(days=14 + int(self.rng.integers(0, 14)))),
            "declaration_date": iso(ex - pd.Timedelta(days=14 + int(self.rng.integers(0, 21)))),
            "cash_amount": float(amount),
            "dividend_type": "CD",
            "frequency": 4,
            "currency": "USD",
        })

    def gaps_pumps_and_shocks(self):
        """Sell gaps (liquid names), pre-market pumps (penny names) and the daily shocks."""
        u, rng = self.universe, self.rng
        S, D = len(u), len(self.sessions)
        special = (self.split_ratio != 1) | (self.dividend > 0) | self.halted
        special[:, 1:] |= self.halted[:, :-1]
        draw = rng.random((S, D))
        liquid = np.isin(u.role, ["large", "mid"])[:, None]
        penny = (u.role == "penny")[:, None]
        days = np.arange(D)[None, :]
        self.gap_event = liquid & (draw < SELL_GAP_RATE) & (days >= 15) & ~special
        self.pump_event = penny & (draw > 1 - PUMP_RATE) & (days >= 1) & ~special
        ih = u.pos[id(u.intraday_halt)], self.sessions.index(INTRADAY_HALT_SESSION)
        self.pump_event[ih] = False
        # Market factor and idiosyncratic shocks.
        self.mkt_gap = rng.normal(0.0002, 0.004, D)
        self.mkt_intra = rng.normal(0.0003, 0.007, D)
        self.eps_gap = rng.standard_normal((S, D))
        self.eps_intra = rng.standard_normal((S, D))
        self.vol_day = np.exp(rng.normal(0, 0.3, (S, D)))
        self.gap_k = rng.uniform(1.3, 3.0, (S, D))
        self.gap_dir = np.where(rng.random((S, D)) < 0.5, -1.0, 1.0)
        self.pump_size = rng.uniform(0.25, 1.5, (S, D))
        self.special = special

    def v3_events(self):
        """Screened sell gaps, gap-and-go days and squeezing pumps, from their own stream (the
        draws of :meth:`gaps_pumps_and_shocks` are unchanged)."""
        u = self.universe
        S, D = len(u), len(self.sessions)
        ev = np.random.default_rng([SEED, 5])
        days = np.arange(D)[None, :]
        self.events_from = self.sessions.index(EVENTS_FROM)
        self.screen_draw = ev.random((S, D))
        self.screen_k = ev.uniform(1.1, 1.8, (S, D))
        self.screen_dir = np.where(ev.random((S, D)) < 0.5, -1.0, 1.0)
        small_mid = np.isin(u.role, ["small", "mid", "reused"]) & (u.shares < LOW_FLOAT)
        self.gng_event = (small_mid[:, None] & (ev.random((S, D)) < GAP_AND_GO_RATE)
                          & (days >= self.events_from) & ~self.special & ~self.gap_event)
        self.squeeze = self.pump_event & (ev.random((S, D)) < SQUEEZE_RATE)


def schedule_events(universe, sessions, rng) -> Schedule:
    """Draw every event from ``rng`` (continuing the universe's stream) and the v3 stream."""
    schedule = Schedule(universe, sessions, rng)
    schedule.corporate_actions()
    schedule.gaps_pumps_and_shocks()
    schedule.v3_events()
    return schedule

"""``demo_manifest.json``: what was generated (roles, special events and their dates)."""
from __future__ import annotations

import pandas as pd

from ..market import CALENDAR, MINUTES_PER_DAY
from .params import (DELISTED_LAST_SESSION, DEMO_END, DEMO_START, DEMO_VERSION,
                     FORWARD_SPLIT_DATE, FULL_DAY_HALT_SESSION, INTRADAY_HALT,
                     INTRADAY_HALT_SESSION, REUSED_TICKER, REVERSE_SPLIT_DATE, UNSORTED_SESSION)
from .sessions import iso, utc_midnight

_ROLE_NAMES = {"large": "large_cap", "mid": "mid_cap", "small": "small_cap", "penny": "penny",
               "etf": "etf", "adr": "adr", "warrant": "warrant", "preferred": "preferred",
               "reused": "reused"}


def delisted_utc(sim, row):
    """``delisted_utc`` of a listing row: the day after its last session (None if active)."""
    if row["last"] == len(sim.sessions) - 1:
        return None
    return utc_midnight(pd.Timestamp(sim.sessions.days[row["last"]]) + pd.Timedelta(days=1))


def manifest_base(sim) -> dict:
    """The universe part: version, dates, early closes, tickers by role."""
    sessions, rows = sim.sessions, sim.universe.rows
    cal_early = [iso(s) for s, m in zip(sessions.days, sessions.n_rth) if m < MINUTES_PER_DAY]
    roles: dict[str, list[str]] = {}
    for r in rows:
        roles.setdefault(r["role"], []).append(r["ticker"])
    roles = {k: sorted(set(v)) for k, v in roles.items()}
    return {
        "version": DEMO_VERSION,
        "start": DEMO_START,
        "end": DEMO_END,
        "calendar": CALENDAR,
        "sessions": len(sessions),
        "early_closes": cal_early,
        "tickers": {_ROLE_NAMES[k]: v for k, v in roles.items()},
        "liquid": sorted(roles["large"] + roles["mid"]),
        "sub_penny": sorted(r["ticker"] for r in rows if r["role"] == "penny" and r["p0"] < 0.05),
        "sell_gap_rule": "open < prior session low - close.ewm(span=63).std() "
                         "of the prior sessions' closes (day aggregates)",
    }


def manifest_events(sim) -> dict:
    """The events part: corporate actions, special cases and the simulated event days."""
    u, sch, days = sim.universe, sim.schedule, sim.sessions.days
    reused = [r for r in u.rows if r["role"] == "reused"]
    return {
        "splits": [
            {"ticker": u.forward_split["ticker"], "execution_date": FORWARD_SPLIT_DATE,
             "split_from": 1, "split_to": 4, "kind": "forward"},
            {"ticker": u.reverse_split["ticker"], "execution_date": REVERSE_SPLIT_DATE,
             "split_from": 10, "split_to": 1, "kind": "reverse"},
        ],
        "dividends": [{k: r[k] for k in ("ticker", "ex_dividend_date", "cash_amount")}
                      for r in sorted(sch.dividend_rows,
                                      key=lambda r: (r["ex_dividend_date"], r["ticker"]))],
        "delisted": {"ticker": u.delisted["ticker"], "last_session": DELISTED_LAST_SESSION,
                     "delisted_utc": delisted_utc(sim, u.delisted)},
        "reused_ticker": {
            "ticker": REUSED_TICKER,
            "periods": [{"name": r["name"], "composite_figi": r["figi"], "cik": r["cik"],
                         "first_session": iso(days[r["first"]]),
                         "last_session": iso(days[r["last"]]),
                         "active": r["last"] == len(days) - 1,
                         "delisted_utc": delisted_utc(sim, r)} for r in reused],
        },
        "full_day_halt": {"ticker": u.full_halt["ticker"], "session": FULL_DAY_HALT_SESSION},
        "intraday_halt": {"ticker": u.intraday_halt["ticker"],
                          "session": INTRADAY_HALT_SESSION, "start_et": INTRADAY_HALT[0],
                          "end_et": INTRADAY_HALT[1]},
        "unsorted_session": UNSORTED_SESSION,
        "sell_gaps": sim.sell_gaps,
        "penny_pumps": sim.pumps,
        "gap_and_go": sim.gap_and_go,
    }

"""The ~150 tickers: roles, price levels, volatility, volume, listing dates and identifiers."""
from __future__ import annotations

import numpy as np

from .figi import figi
from .names import NameGenerator
from .params import (DELISTED_LAST_SESSION, ETF_SPECS, NASDAQ_MIC, NYSE_AMERICAN_MIC,
                     NYSE_ARCA_MIC, NYSE_MIC, REUSED_A_LAST_SESSION, REUSED_B_FIRST_SESSION,
                     REUSED_TICKER, SEED)

_ETF_LIST_DATES = {"SPY": "1993-01-29", "QQQ": "1999-03-10", "IWM": "2000-05-26"}
_PER_TICKER = ("p0", "sigma", "beta", "base_vol", "cov", "ext", "trade_shares", "drift", "kappa")


class Universe:
    """One row dict per listing (sorted by ticker, then first session, as Polygon lists them)
    and the same fields as arrays; ``pos[id(row)]`` is a row's position. ``forward_split``,
    ``reverse_split``, ``delisted``, ``full_halt`` and ``intraday_halt`` are the special rows.
    ``base_vol`` and ``trade_shares`` follow splits while the simulation runs."""

    def __init__(self, rows: list[dict], special: dict[str, dict]):
        upper = [r["ticker"].upper() for r in rows if r["role"] != "reused"]
        assert len(upper) == len(set(upper)), "demo tickers clash"
        self.rows = rows
        self.tickers = np.array([r["ticker"] for r in rows], dtype=object)
        for key in _PER_TICKER:
            setattr(self, key, np.array([r[key] for r in rows], dtype="float64"))
        self.first = np.array([r["first"] for r in rows])
        self.last = np.array([r["last"] for r in rows])
        self.role = np.array([r["role"] for r in rows], dtype=object)
        self.shares = np.array([r["shares"] for r in rows], dtype="float64")
        self.is_cs = np.array([r["type"] == "CS" for r in rows])
        self.pos = {id(r): i for i, r in enumerate(rows)}
        self.forward_split = special["forward_split"]
        self.reverse_split = special["reverse_split"]
        self.delisted = special["delisted"]
        self.full_halt = special["full_halt"]
        self.intraday_halt = special["intraday_halt"]

    def __len__(self) -> int:
        return len(self.rows)


class _Rows:
    """Appends listing rows; draws what a row does not give (shares, list date, FIGIs, CIK)."""

    def __init__(self, rng, n_sessions):
        self.rng, self.last_session = rng, n_sessions - 1
        self.company = NameGenerator(np.random.default_rng([SEED, 7]),
                                     reserved={"SPY", "QQQ", "IWM", REUSED_TICKER})
        self.rows: list[dict] = []

    def logu(self, lo, hi) -> float:
        """Log-uniform in [lo, hi)."""
        return float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))

    def of(self, role) -> list[dict]:
        return [r for r in self.rows if r["role"] == role]

    def add(self, role, ptype, exchange, p0, sigma, beta, base_vol, cov, ext, trade_shares,
            ticker=None, name=None, first=0, last=None, drift=0.0, kappa=0.02,
            shares=None, list_date=None):
        rng = self.rng
        last = self.last_session if last is None else last
        if ticker is None:
            ticker, name = self.company(role)
        if shares is None:
            shares = int(rng.uniform(100e6, 3e9)) if role == "large" else \
                int(rng.uniform(40e6, 400e6))
        if list_date is None:
            year = int(rng.integers(1985, 2016) if role in ("large", "mid", "etf", "adr")
                       else rng.integers(2015, 2024))
            list_date = f"{year}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
        self.rows.append(dict(
            ticker=ticker, name=name, role=role, type=ptype, exchange=exchange, p0=float(p0),
            sigma=float(sigma), beta=float(beta), base_vol=float(base_vol), cov=float(cov),
            ext=float(ext), trade_shares=float(trade_shares), first=first, last=last,
            drift=float(drift), kappa=float(kappa), shares=int(shares), list_date=list_date,
            figi=figi(rng), share_figi=figi(rng, "BBG001S"),
            cik=f"{int(rng.integers(1_000_000, 1_999_999)):010d}"))
        return self.rows[-1]


def _add_stocks(t: _Rows):
    """Large, mid and small caps, penny stocks."""
    rng, logu = t.rng, t.logu
    for i in range(28):
        ex = NYSE_MIC if i % 2 else NASDAQ_MIC
        t.add("large", "CS", ex, 560.0 if i == 0 else logu(40, 600), rng.uniform(0.010, 0.022),
              rng.uniform(0.7, 1.4), logu(3000, 30000), 1.0, 1.0, rng.uniform(60, 150))
    for i in range(62):
        ex = NYSE_MIC if i % 3 == 0 else NASDAQ_MIC
        t.add("mid", "CS", ex, logu(16, 150), rng.uniform(0.016, 0.032), rng.uniform(0.8, 1.6),
              logu(1000, 8000), rng.uniform(0.2, 0.5), 0.4, rng.uniform(80, 200))
    for i in range(20):  # low-float small caps (shares 5-60 M)
        t.add("small", "CS", NASDAQ_MIC, logu(3, 20), rng.uniform(0.03, 0.05),
              rng.uniform(0.9, 1.5), logu(300, 2500), rng.uniform(0.08, 0.3), 0.15,
              rng.uniform(100, 300), shares=int(logu(5e6, 60e6)))
    penny_prices = [logu(0.12, 3.0) for _ in range(21)] + [0.0034, 0.0102, 0.021, 0.043]
    penny_prices[1] = 0.30  # the reverse-split name
    for i, p in enumerate(penny_prices):
        ex = NYSE_AMERICAN_MIC if i % 3 == 0 else NASDAQ_MIC
        t.add("penny", "CS", ex, p, rng.uniform(0.04, 0.09), rng.uniform(0.2, 0.8),
              logu(300, 8000) / p, rng.uniform(0.2, 0.5), 0.15, min(max(800 / p, 100), 2e6),
              kappa=0.05, shares=int(rng.uniform(2e6, 40e6)))


def _add_other_securities(t: _Rows):
    """ETFs, ADRs, warrants (on small caps) and preferreds (of large caps)."""
    rng, logu = t.rng, t.logu
    for ticker, name, price, beta, idio, vol, _ in ETF_SPECS:
        t.add("etf", "ETF", NYSE_ARCA_MIC, price, idio, beta, vol, 1.0, 2.0, 120, ticker=ticker,
              name=name, kappa=0.0, shares=int(rng.uniform(2e8, 9e8)),
              list_date=_ETF_LIST_DATES[ticker])
    for i in range(3):
        t.add("adr", "ADRC", NYSE_MIC if i else NASDAQ_MIC, logu(15, 90),
              rng.uniform(0.015, 0.03), rng.uniform(0.6, 1.2), logu(500, 4000),
              rng.uniform(0.45, 0.75), 0.5, rng.uniform(100, 250))
    for under in t.of("small")[:3]:
        p = logu(0.08, 0.6)
        t.add("warrant", "WARRANT", under["exchange"], p, rng.uniform(0.06, 0.1), 1.5,
              logu(100, 1500) / p, rng.uniform(0.05, 0.2), 0.03, 500,
              ticker=under["ticker"] + "W", name=under["name"].rsplit(" ", 1)[0] + " Warrants",
              kappa=0.05, shares=int(rng.uniform(5e6, 2e7)))
    issuers = [r for r in t.of("large") if r["exchange"] == NYSE_MIC][:2]
    for under, series in zip(issuers, "AC"):
        t.add("preferred", "PFD", NYSE_MIC, rng.uniform(19, 25), 0.006, 0.2, logu(100, 600),
              rng.uniform(0.1, 0.3), 0.02, 100, ticker=f"{under['ticker']}p{series}",
              name=f"{under['name']} {series} Pfd", shares=int(rng.uniform(8e6, 3e7)))
    t.company.used |= {r["ticker"] for r in t.rows}


def _add_reused_ticker(t: _Rows, sessions):
    """Company A until early August, company B (another FIGI, CIK, name) from mid-October."""
    a_last, b_first = sessions.index(REUSED_A_LAST_SESSION), sessions.index(REUSED_B_FIRST_SESSION)
    t.add("reused", "CS", NYSE_MIC, 34.0, 0.025, 1.1, 2500, 0.6, 0.3, 120, ticker=REUSED_TICKER,
          name="Relocon Industries Inc.", last=a_last, drift=-0.002, list_date="2009-06-17")
    t.add("reused", "CS", NASDAQ_MIC, 11.5, 0.04, 1.3, 1800, 0.5, 0.3, 150, ticker=REUSED_TICKER,
          name="Reloft Biosciences Inc.", first=b_first, list_date=REUSED_B_FIRST_SESSION,
          shares=int(t.rng.uniform(40e6, 90e6)))


def build_universe(rng, sessions) -> Universe:
    """Draw the universe from ``rng`` (the simulation's main stream; names have their own)."""
    t = _Rows(rng, len(sessions))
    _add_stocks(t)
    _add_other_securities(t)
    _add_reused_ticker(t, sessions)
    mids, pennies = t.of("mid"), t.of("penny")
    special = {"delisted": mids[5], "full_halt": mids[11], "reverse_split": pennies[1],
               "intraday_halt": pennies[4], "forward_split": t.of("large")[0]}
    special["delisted"].update(last=sessions.index(DELISTED_LAST_SESSION), drift=-0.006)
    rows = sorted(t.rows, key=lambda r: (r["ticker"], r["first"]))  # Polygon's row order
    return Universe(rows, special)

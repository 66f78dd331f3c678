"""The ``polygon-demo`` data set: realistic, fully deterministic Polygon-format raw files.

:func:`generate` writes, under ``root``, exactly what a user's Polygon (Massive) flat files and
reference downloads look like (see :mod:`bundles.layout`)::

    <root>/raw/us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz   one file per session
    <root>/raw/us_stocks_sip/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz
    <root>/raw/reference/{tickers,splits,dividends,ticker_details}.json
    <root>/raw/demo_manifest.json     what was generated (roles, special events and dates)
    <root>/raw/DEMO_VERSION           written last; present + same version => nothing to do

Everything is drawn from fixed seeds (``np.random.default_rng``), so two runs write
byte-identical files. The sessions are the XNYS sessions ``DEMO_START..DEMO_END`` (128,
three of them early closes at 13:00 ET); session opens and closes come from the calendar.

**Universe** (~150 tickers, fictional names except the ETFs):

* 90 liquid names: 28 large caps and 62 mid caps (``CS``, $10-$800, minute volumes in the
  thousands; large caps trade every regular-session minute, mid caps 20-50 % of them, which
  keeps the set at ~3.7 million minute rows). About 1.5 % of their days (after the first 15
  sessions) open with a *sell gap*: the open is set below the prior day's low by 1.3-3x the
  63-day EWM standard deviation of closes (``close.ewm(span=63).std()`` over the prior
  sessions' day-aggregate closes), and the day then drifts on (continuation) or back
  (reversion) at random, on 4x volume. From October on (once the screen has its 63 sessions),
  another ~10 % of the days on which a name passes the QuantRocket sell-gap *screen* -- as
  Pipeline computes it on the ingested bundle: one of the ~11 most liquid common stocks by
  30-day dollar volume (the screen keeps the top decile, ~14), close > $10 and above its
  20-day mean -- open with a sell gap that also satisfies the screen's signal: below the
  prior regular-session low minus zipline's ``ExponentialWeightedMovingStdDev(close, 63,
  decay 0.99)`` (1.1-1.8x), and below the 20-day mean (``screened: true`` in the manifest).
* 20 low-float small caps (``CS``, $3-$20, 5-60 M shares, 8-30 % of minutes). From October
  on, ~3 % of the days of the small and mid caps with fewer than 50 M shares outstanding and
  a prior close of $5.5-$34 are *gap-and-go* days: news between 04:30 and 08:00 ET, a
  pre-market gap of 11-40 % on heavy volume (the pre-market high 3-10 % above the last
  pre-market price), a pull-back under the pre-market high after the open, then a break above
  it on a volume burst 4-75 minutes after the open and a run of 4-30 %: *runners* (45 %) hold
  most of it, *faders* (30 %) give it back to around the pre-market high, *reversals* (25 %)
  drop back to the open and below within the hour (``gap_and_go`` in the manifest).
* 25 penny stocks (``CS``, $0.10-$5; four below $0.05 with sub-penny prices such as 0.0034,
  one of them around $0.01): 20-50 % of regular-session minutes have a bar; on ~3 % of days a
  pre-market *pump* (news between 04:00 and 07:20 ET, heavy volume, prices 20-150 % above the
  prior close; the stock then trades nearly every minute of the morning). Most pumps chop
  around the open for 30-120 minutes and fade (``kind: fade``); a quarter *squeeze* 20-80 %
  above the open 8-60 minutes after it, then fade (``squeeze``) or hold most of it into the
  close (``squeeze_hold``, about a third of the squeezes). One penny stock is halted
  intraday (no bars for 26 minutes) on one day.
* SPY, QQQ, IWM (``ETF``, ARCX), 3 ADRs (``ADRC``), 3 warrants (``WARRANT``, ticker ends in
  ``W``, sub-dollar), 2 preferreds (``PFD``, Polygon-style tickers such as ``ABCpA``).

**Corporate actions and special cases** (all in the returned manifest):

* a 4:1 forward split of a large cap in mid-October and a 1:10 reverse split of a penny stock
  in November; raw prices are *unadjusted* (they drop ~4x / jump ~10x on the execution date,
  volumes move the other way). ``splits.json`` records them as Polygon does
  (4:1 forward: ``split_from=1, split_to=4``; 1:10 reverse: ``split_from=10, split_to=1``).
* quarterly cash dividends (``CD``) for 15 large caps and the ETFs; the open drops by the
  amount on the ex-date (record date = ex-date, as under T+1 settlement).
* a mid cap delisted in mid-September (``active: false``, ``delisted_utc`` = the day after
  its last session, ``YYYY-MM-DDT00:00:00Z``).
* a reused ticker: company A trades it until early August (delisted), company B (another
  FIGI, CIK, name and price level) from mid-October. Both are in ``tickers.json``.
* a mid cap with no bars at all on one session (full-day halt), re-opening with a wide gap.
* one session's minute file is written with its rows shuffled (real ingest must sort).

**Bars.** Minute bars carry Polygon's columns ``ticker,volume,open,close,high,low,
window_start,transactions`` with ``window_start`` the bar START in ns since the epoch (UTC).
Regular-session bars start at the open .. close - 1 minute (15:59, or 12:59 on early closes);
sparse extended-hours bars start 04:00 .. 09:29 ET and at the close .. close + 4 h - 1 minute
(19:59, or 16:59 on early closes). Each day's prices follow one continuous path (prior close
-> open -> close -> after hours), and every ticker that trades has bars at the first (09:30)
and the last regular-session minute. Prices are positive, rounded to 4 decimals below $1 and 2 decimals
above, ``low <= min(open, close) <= max(open, close) <= high``; volumes and transactions are
positive integers. Minute rows are sorted by ticker, then ``window_start`` (except the
shuffled session).

**Day aggregates** (``day_aggs_v1``, one row per ticker and session, ``window_start`` = the
session date at 00:00 America/New_York in UTC ns, as Polygon labels them): ``open`` = the
first regular-session bar's open, ``close`` = the last regular-session bar's close, while
``high``, ``low``, ``volume`` and ``transactions`` cover *all* that day's minute bars,
04:00-20:00 ET including extended hours.
"""
from __future__ import annotations

import concurrent.futures as futures
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import layout

log = logging.getLogger(__name__)

DEMO_START = "2024-07-01"
DEMO_END = "2024-12-31"
DEMO_VERSION = "3"
SEED = 20240701
CALENDAR = "XNYS"
ET = "America/New_York"
MARKER = "DEMO_VERSION"
MANIFEST = "demo_manifest.json"

NS_PER_MINUTE = 60_000_000_000
PRE_MINUTES = 330   # 04:00 .. 09:29 ET
POST_MINUTES = 240  # the close .. the close + 4 h
MIN_PRICE = 0.0001
EWM_SPAN = 63
SELL_GAP_RATE = 0.015
PUMP_RATE = 0.03
SQUEEZE_RATE = 0.25       # share of pumps that squeeze 20-80 % above the open in the first hour
SCREEN_GAP_RATE = 0.10    # sell gaps planted on names that pass the sell-gap screen
GAP_AND_GO_RATE = 0.03    # gap-and-go days of low-float small/mid caps
EVENTS_FROM = "2024-10-01"  # first session of the screened sell gaps and gap-and-go days
LOW_FLOAT = 50e6          # gap-and-go names: shares outstanding below this
GAP_AND_GO_PRICE = (5.5, 34.0)  # prior close band of gap-and-go names (above the $5 microcap band)
# The sell-gap screen as the pipeline computes it (factors.screens.sell_gap_pipeline).
SCREEN_ADV_WINDOW = 30
SCREEN_TOP = 11           # the most liquid common stocks (the screen keeps the top decile, ~14)
SCREEN_STD_WINDOW = 63
SCREEN_STD_DECAY = 0.99
SCREEN_SMA_WINDOW = 20
SCREEN_MIN_CLOSE = 10.0
LAST_UPDATED = "2025-01-02T00:00:00Z"

# Special dates (sessions).
FORWARD_SPLIT_DATE = "2024-10-15"
REVERSE_SPLIT_DATE = "2024-11-18"
DELISTED_LAST_SESSION = "2024-09-13"
REUSED_A_LAST_SESSION = "2024-08-02"
REUSED_B_FIRST_SESSION = "2024-10-16"
FULL_DAY_HALT_SESSION = "2024-09-25"
INTRADAY_HALT_SESSION = "2024-08-21"
INTRADAY_HALT = ("11:02", "11:28")  # no bar starts in [11:02, 11:28) ET
UNSORTED_SESSION = "2024-08-14"
REUSED_TICKER = "RELO"

ETF_SPECS = [  # ticker, name, price, beta, idiosyncratic vol, minute volume, (ex-date, amount) x2
    ("IWM", "iShares Russell 2000 ETF", 203.0, 1.25, 0.007, 30000,
     [("2024-09-25", 0.62), ("2024-12-17", 0.64)]),
    ("QQQ", "Invesco QQQ Trust, Series 1", 479.0, 1.2, 0.004, 40000,
     [("2024-09-23", 0.68), ("2024-12-23", 0.72)]),
    ("SPY", "SPDR S&P 500 ETF Trust", 545.0, 1.0, 0.001, 60000,
     [("2024-09-20", 1.75), ("2024-12-20", 1.97)]),
]

_SYLLABLES = ("ab", "ar", "bel", "bra", "cor", "dal", "den", "el", "fal", "gar", "hel", "jar",
              "kel", "lan", "mar", "nor", "or", "pal", "quin", "ros", "sel", "tal", "ul", "val",
              "wex", "zan", "ver", "tor", "lyn", "cas", "dor", "fen", "gil", "hal", "ix", "jun",
              "kor", "lum", "mon", "nex", "ost", "pry", "rav", "syl", "tern", "vox", "bri",
              "cam", "dex", "fro", "gen", "hex", "tri", "mer", "sto", "plu", "ven", "qua")
# Real listings the name generator happens to produce: skipped to keep the demo fictional.
_AVOID = frozenset({"BRDR", "CMCM", "CSTR", "DLTR", "DXTR", "FLTR", "GLBR", "GLDX", "JRVR",
                    "MRDN", "NXGN", "PLMR", "STKL", "ULTR", "VRDN"})
_SUFFIXES = {
    "large": ("Corp", "Inc.", "Holdings Inc.", "Group Inc.", "Technologies Inc.", "Industries"),
    "mid": ("Inc.", "Corp", "Systems Inc.", "Brands Inc.", "Energy Corp", "Financial Corp"),
    "small": ("Inc.", "Corp", "Labs Inc.", "Networks Inc."),
    "penny": ("Therapeutics Inc.", "Mining Corp", "Biosciences Inc.", "Holdings Inc.",
              "Technologies Corp", "Resources Ltd"),
    "adr": ("Ltd ADR", "PLC ADR", "Group Ltd ADR"),
}
_SIC = {"large": ("3674", "Semiconductors & Related Devices"),
        "mid": ("7372", "Services-Prepackaged Software"),
        "small": ("3841", "Surgical & Medical Instruments & Apparatus"),
        "penny": ("2834", "Pharmaceutical Preparations"),
        "adr": ("4813", "Telephone Communications (No Radiotelephone)"),
        "etf": (None, None), "warrant": ("6770", "Blank Checks"),
        "preferred": ("6022", "State Commercial Banks")}


# ----------------------------------------------------------------------------- public API
def generate(root, force: bool = False, progress: bool = True, sessions=None,
             workers: int | None = None) -> dict:
    """Write the demo raw files under ``root`` and return the manifest (see module docstring).

    Idempotent: when ``root/raw/DEMO_VERSION`` holds :data:`DEMO_VERSION` (and ``force`` is
    False) nothing is written and the stored manifest is returned. Otherwise every file is
    (re)written -- the demo folder belongs to the generator -- and the marker is written last,
    so an interrupted run is redone next time.

    ``sessions`` (optional, for spot checks): write the minute and day files of these sessions
    only, plus the reference files; the simulation runs from the start up to the last of them,
    so their bytes are the same as in a full run. The manifest and marker are not written and
    the returned manifest only lists events up to that session.
    ``workers``: processes that format and compress minute files (default: the CPU count, at
    most 4; 1 writes in this process).
    """
    root = Path(root)
    raw = root / "raw"
    marker = raw / MARKER
    manifest_path = raw / MANIFEST
    if sessions is None and not force and marker.exists() and manifest_path.exists() \
            and marker.read_text().strip() == DEMO_VERSION:
        with open(manifest_path) as fh:
            return json.load(fh)

    t0 = time.perf_counter()
    only = None if sessions is None else {pd.Timestamp(s).normalize() for s in sessions}
    sim = _Simulation()
    manifest = sim.manifest_base()
    n_minute = n_day = 0
    if workers is None:
        workers = max(1, min(4, os.cpu_count() or 1))
    log.info("generating polygon-demo data under %s (%d sessions, %d tickers)",
             root, len(sim.sessions), len(set(sim.tickers)))
    n_sessions = len(sim.sessions)
    if only is not None:  # the simulation is sequential: stop after the last requested session
        n_sessions = int(np.searchsorted(sim.sessions, max(only), side="right")) if only else 0
    with _writer_pool(workers) as pool, _progress(progress, n_sessions) as bar:
        pending: list[futures.Future] = []
        for d in range(n_sessions):
            day = sim.sessions[d]
            minute, daily = sim.simulate_day(d, build=only is None or day in only)
            n_minute += minute["n"]
            n_day += len(daily)
            if only is None or day in only:
                frame = minute["frame"]
                if pool is None:
                    layout.write_day_file(root, layout.MINUTE_DATASET, day, frame, overwrite=True)
                else:
                    pending.append(pool.submit(_write_minute_file, str(root), day, frame))
                    while len(pending) > 2 * workers:
                        pending.pop(0).result()
                layout.write_day_file(root, layout.DAY_DATASET, day, daily, overwrite=True)
            bar.update(1)
        for fut in pending:
            fut.result()
    for name, payload in sim.reference().items():
        layout.write_reference(root, name, payload, overwrite=True)
    manifest.update(sim.manifest_events())
    manifest["rows"] = {"minute": int(n_minute), "day": int(n_day)}
    elapsed = time.perf_counter() - t0
    log.info("polygon-demo: %d minute rows, %d day rows, %d sessions in %.1f s",
             n_minute, n_day, len(sim.sessions), elapsed)
    if only is None:
        layout.atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1).encode(),
                                  overwrite=True)
        layout.atomic_write_bytes(marker, (DEMO_VERSION + "\n").encode(), overwrite=True)
    return manifest


def _write_minute_file(root, day, frame):
    layout.write_day_file(Path(root), layout.MINUTE_DATASET, day, frame, overwrite=True)


@contextlib.contextmanager
def _writer_pool(workers):
    if workers <= 1:
        yield None
        return
    # fork is cheap and safe on Linux (workers only format and compress); elsewhere the
    # platform default (spawn on macOS and Windows).
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    try:
        pool = futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    except (OSError, NotImplementedError) as exc:  # e.g. no semaphores in a sandbox
        log.warning("polygon-demo: no worker processes (%s); writing in this process", exc)
        yield None
        return
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


class _NoBar:
    def update(self, n):
        pass


@contextlib.contextmanager
def _progress(show, length):
    if not show:
        yield _NoBar()
        return
    import click

    with click.progressbar(length=length, label="polygon-demo sessions") as bar:
        yield bar


# ----------------------------------------------------------------------------- helpers
def round_price(x):
    """Polygon-like price precision: 4 decimals below $1, 2 decimals from $1."""
    x = np.asarray(x, dtype="float64")
    return np.maximum(np.where(x < 1.0, np.round(x, 4), np.round(x, 2)), MIN_PRICE)


def _figi(rng, prefix="BBG00"):
    """A FIGI-shaped id: prefix, consonants/digits, and the FIGI check digit."""
    alphabet = np.array(list("BCDFGHJKLMNPQRSTVWXYZ0123456789"))
    body = prefix + "".join(rng.choice(alphabet, 11 - len(prefix)))
    total = 0
    for i, ch in enumerate(body):
        v = int(ch) if ch.isdigit() else ord(ch) - 55
        if i % 2 == 1:
            v *= 2
        total += sum(int(c) for c in str(v))
    return body + str((10 - total % 10) % 10)


def _bridge(rng, a, b, n, sigma):
    """Brownian bridges (points 1..n) from ``a`` to ``b`` (arrays of length k), step sd ``sigma``."""
    z = rng.standard_normal((len(a), n)) * np.asarray(sigma)[:, None]
    w = np.cumsum(z, axis=1)
    t = np.arange(1, n + 1) / n
    return a[:, None] + (b - a)[:, None] * t + w - t * w[:, -1:]


def _ewm_std_zipline(x, decay_rate):
    """zipline's ``ExponentialWeightedMovingStdDev`` of a window ``x`` (oldest first)."""
    w = np.full(len(x), decay_rate) ** np.arange(len(x) + 1, 1, -1)
    mean = np.average(x, weights=w)
    var = np.average((x - mean) ** 2, weights=w)
    sw2 = w.sum() ** 2
    return float(np.sqrt(var * sw2 / (sw2 - (w ** 2).sum())))


def _iso(day) -> str:
    return pd.Timestamp(day).strftime("%Y-%m-%d")


def _utc_midnight(day) -> str:
    return pd.Timestamp(day).strftime("%Y-%m-%dT00:00:00Z")


# ----------------------------------------------------------------------------- simulation
class _Simulation:
    """The universe and its day-by-day state; :meth:`simulate_day` must be called in order."""

    def __init__(self):
        import exchange_calendars as xcals

        cal = xcals.get_calendar(CALENDAR)
        self.sessions = cal.sessions_in_range(DEMO_START, DEMO_END)
        self.opens = np.array([cal.session_open(s).value for s in self.sessions], dtype=np.int64)
        self.closes = np.array([cal.session_close(s).value for s in self.sessions], dtype=np.int64)
        self.n_rth = ((self.closes - self.opens) // NS_PER_MINUTE).astype(int)
        self.day_ns = np.array([pd.Timestamp(s).tz_localize(ET).tz_convert("UTC").value
                                for s in self.sessions], dtype=np.int64)
        self.index = {pd.Timestamp(s): i for i, s in enumerate(self.sessions)}
        self.rng = np.random.default_rng(SEED)
        self._build_universe()
        self._schedule_events()
        S, D = len(self.tickers), len(self.sessions)
        self.last_close = self.p0.copy()
        self.last_low = self.p0.copy()
        self.anchor = self.p0.copy()
        self.closes_hist = np.full((S, D), np.nan)
        # What the bundle's daily bars (regular-session minutes) and Pipeline see: adjusted
        # closes, the regular-session low, dollar volume.
        self.last_low_rth = self.p0.copy()
        self.adj_hist = np.full((S, D), np.nan)
        self.dv_hist = np.zeros((S, D))
        self.sell_gaps: list[dict] = []
        self.gap_and_go: list[dict] = []
        self.pumps: list[dict] = []

    def _sess(self, day) -> int:
        return self.index[pd.Timestamp(day)]

    # -- universe ---------------------------------------------------------------------
    def _build_universe(self):
        rng = self.rng
        D = len(self.sessions)
        used: set[str] = {"SPY", "QQQ", "IWM", REUSED_TICKER} | set(_AVOID)
        rows: list[dict] = []

        names = np.random.default_rng([SEED, 7])  # own stream: the avoid list moves no prices

        def company(role, exchange):
            while True:
                word = names.choice(_SYLLABLES) + names.choice(_SYLLABLES)
                if names.random() < 0.3:
                    word += names.choice(_SYLLABLES)
                letters = word[0] + "".join(c for c in word[1:] if c not in "aeiou")
                if len(letters) < 4:
                    letters = (letters + word[1:])[:4]
                ticker = letters[:4].upper()
                if len(ticker) == 4 and ticker not in used and ticker + "W" not in used:
                    used.add(ticker)
                    name = f"{word.capitalize()} {names.choice(_SUFFIXES[role])}"
                    return ticker, name

        def add(role, ptype, exchange, p0, sigma, beta, base_vol, cov, ext, trade_shares,
                ticker=None, name=None, first=0, last=D - 1, drift=0.0, kappa=0.02,
                shares=None, list_date=None):
            if ticker is None:
                ticker, name = company(role, exchange)
            if shares is None:
                shares = int(rng.uniform(100e6, 3e9)) if role == "large" else \
                    int(rng.uniform(40e6, 400e6))
            if list_date is None:
                year = int(rng.integers(1985, 2016) if role in ("large", "mid", "etf", "adr")
                           else rng.integers(2015, 2024))
                list_date = f"{year}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
            rows.append(dict(
                ticker=ticker, name=name, role=role, type=ptype, exchange=exchange, p0=float(p0),
                sigma=float(sigma), beta=float(beta), base_vol=float(base_vol), cov=float(cov),
                ext=float(ext), trade_shares=float(trade_shares), first=first, last=last,
                drift=float(drift), kappa=float(kappa), shares=int(shares), list_date=list_date,
                figi=_figi(rng), share_figi=_figi(rng, "BBG001S"),
                cik=f"{int(rng.integers(1_000_000, 1_999_999)):010d}"))
            return rows[-1]

        logu = lambda lo, hi: float(np.exp(rng.uniform(np.log(lo), np.log(hi))))  # noqa: E731

        for i in range(28):
            ex = "XNYS" if i % 2 else "XNAS"
            add("large", "CS", ex, 560.0 if i == 0 else logu(40, 600), rng.uniform(0.010, 0.022),
                rng.uniform(0.7, 1.4), logu(3000, 30000), 1.0, 1.0, rng.uniform(60, 150))
        for i in range(62):
            ex = "XNYS" if i % 3 == 0 else "XNAS"
            add("mid", "CS", ex, logu(16, 150), rng.uniform(0.016, 0.032), rng.uniform(0.8, 1.6),
                logu(1000, 8000), rng.uniform(0.2, 0.5), 0.4, rng.uniform(80, 200))
        for i in range(20):  # low-float small caps (shares 5-60 M)
            add("small", "CS", "XNAS", logu(3, 20), rng.uniform(0.03, 0.05), rng.uniform(0.9, 1.5),
                logu(300, 2500), rng.uniform(0.08, 0.3), 0.15, rng.uniform(100, 300),
                shares=int(logu(5e6, 60e6)))
        penny_prices = [logu(0.12, 3.0) for _ in range(21)] + [0.0034, 0.0102, 0.021, 0.043]
        penny_prices[1] = 0.30  # the reverse-split name
        for i, p in enumerate(penny_prices):
            ex = "XASE" if i % 3 == 0 else "XNAS"
            add("penny", "CS", ex, p, rng.uniform(0.04, 0.09), rng.uniform(0.2, 0.8),
                logu(300, 8000) / p, rng.uniform(0.2, 0.5), 0.15, min(max(800 / p, 100), 2e6),
                kappa=0.05, shares=int(rng.uniform(2e6, 40e6)))
        for ticker, name, price, beta, idio, vol, _ in ETF_SPECS:
            add("etf", "ETF", "ARCX", price, idio, beta, vol, 1.0, 2.0, 120, ticker=ticker,
                name=name, kappa=0.0, shares=int(rng.uniform(2e8, 9e8)),
                list_date={"SPY": "1993-01-29", "QQQ": "1999-03-10", "IWM": "2000-05-26"}[ticker])
        for i in range(3):
            add("adr", "ADRC", "XNYS" if i else "XNAS", logu(15, 90), rng.uniform(0.015, 0.03),
                rng.uniform(0.6, 1.2), logu(500, 4000), rng.uniform(0.45, 0.75), 0.5,
                rng.uniform(100, 250))
        small = [r for r in rows if r["role"] == "small"]
        for i in range(3):
            under = small[i]
            p = logu(0.08, 0.6)
            add("warrant", "WARRANT", under["exchange"], p, rng.uniform(0.06, 0.1), 1.5,
                logu(100, 1500) / p, rng.uniform(0.05, 0.2), 0.03, 500, ticker=under["ticker"] + "W",
                name=under["name"].rsplit(" ", 1)[0] + " Warrants", kappa=0.05,
                shares=int(rng.uniform(5e6, 2e7)))
        issuers = [r for r in rows if r["role"] == "large" and r["exchange"] == "XNYS"][:2]
        for under, series in zip(issuers, "AC"):
            add("preferred", "PFD", "XNYS", rng.uniform(19, 25), 0.006, 0.2, logu(100, 600),
                rng.uniform(0.1, 0.3), 0.02, 100, ticker=f"{under['ticker']}p{series}",
                name=f"{under['name']} {series} Pfd", shares=int(rng.uniform(8e6, 3e7)))
        used |= {r["ticker"] for r in rows}
        # The reused ticker: company A until early August, company B from mid-October.
        a_last, b_first = self._sess(REUSED_A_LAST_SESSION), self._sess(REUSED_B_FIRST_SESSION)
        add("reused", "CS", "XNYS", 34.0, 0.025, 1.1, 2500, 0.6, 0.3, 120, ticker=REUSED_TICKER,
            name="Relocon Industries Inc.", last=a_last, drift=-0.002, list_date="2009-06-17")
        add("reused", "CS", "XNAS", 11.5, 0.04, 1.3, 1800, 0.5, 0.3, 150, ticker=REUSED_TICKER,
            name="Reloft Biosciences Inc.", first=b_first, list_date=REUSED_B_FIRST_SESSION,
            shares=int(rng.uniform(40e6, 90e6)))

        mids = [r for r in rows if r["role"] == "mid"]
        self.delisted = mids[5]
        self.delisted.update(last=self._sess(DELISTED_LAST_SESSION), drift=-0.006)
        self.full_halt = mids[11]
        pennies = [r for r in rows if r["role"] == "penny"]
        self.reverse_split = pennies[1]
        self.intraday_halt = pennies[4]
        self.forward_split = [r for r in rows if r["role"] == "large"][0]

        rows.sort(key=lambda r: (r["ticker"], r["first"]))  # Polygon's row order
        upper = [r["ticker"].upper() for r in rows if r["role"] != "reused"]
        assert len(upper) == len(set(upper)), "demo tickers clash"
        self.rows = rows
        self.tickers = np.array([r["ticker"] for r in rows], dtype=object)
        for key in ("p0", "sigma", "beta", "base_vol", "cov", "ext", "trade_shares", "drift",
                    "kappa"):
            setattr(self, key, np.array([r[key] for r in rows], dtype="float64"))
        self.first = np.array([r["first"] for r in rows])
        self.last = np.array([r["last"] for r in rows])
        self.role = np.array([r["role"] for r in rows], dtype=object)
        self.shares = np.array([r["shares"] for r in rows], dtype="float64")
        self.is_cs = np.array([r["type"] == "CS" for r in rows])
        self.pos = {id(r): i for i, r in enumerate(rows)}

    # -- events -----------------------------------------------------------------------
    def _schedule_events(self):
        rng = self.rng
        S, D = len(self.rows), len(self.sessions)
        self.split_ratio = np.ones((S, D))
        self.dividend = np.zeros((S, D))
        self.halted = np.zeros((S, D), dtype=bool)
        fs, rs = self.pos[id(self.forward_split)], self.pos[id(self.reverse_split)]
        self.split_ratio[fs, self._sess(FORWARD_SPLIT_DATE)] = 4.0
        self.split_ratio[rs, self._sess(REVERSE_SPLIT_DATE)] = 0.1
        self.halted[self.pos[id(self.full_halt)], self._sess(FULL_DAY_HALT_SESSION)] = True

        # Dividends: 15 large caps (not the split name) quarterly, and the ETFs.
        self.dividend_rows: list[dict] = []
        large = [i for i in range(S) if self.role[i] == "large" and i != fs]
        payers = sorted(rng.choice(large, 15, replace=False))
        for i in payers:
            first = int(rng.integers(8, 60))
            yld = rng.uniform(0.008, 0.035)
            amount = round(float(self.p0[i]) * yld / 4, 2)
            for d in (first, first + 63):
                if d < D:
                    self._add_dividend(i, d, amount)
        for ticker, *_, divs in ETF_SPECS:
            i = int(np.flatnonzero(self.tickers == ticker)[0])
            for day, amount in divs:
                self._add_dividend(i, self._sess(day), amount)

        # Sell gaps (liquid names) and pre-market pumps (penny names).
        special = (self.split_ratio != 1) | (self.dividend > 0) | self.halted
        special[:, 1:] |= self.halted[:, :-1]
        draw = rng.random((S, D))
        liquid = np.isin(self.role, ["large", "mid"])[:, None]
        penny = (self.role == "penny")[:, None]
        days = np.arange(D)[None, :]
        self.gap_event = liquid & (draw < SELL_GAP_RATE) & (days >= 15) & ~special
        self.pump_event = penny & (draw > 1 - PUMP_RATE) & (days >= 1) & ~special
        ih = self.pos[id(self.intraday_halt)], self._sess(INTRADAY_HALT_SESSION)
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

        # v3 events, from their own stream (the draws above are unchanged): sell gaps planted on
        # names that pass the sell-gap screen, gap-and-go days, and squeezing pumps.
        ev = np.random.default_rng([SEED, 5])
        self.events_from = self._sess(EVENTS_FROM)
        self.screen_draw = ev.random((S, D))
        self.screen_k = ev.uniform(1.1, 1.8, (S, D))
        self.screen_dir = np.where(ev.random((S, D)) < 0.5, -1.0, 1.0)
        small_mid = np.isin(self.role, ["small", "mid", "reused"]) & (self.shares < LOW_FLOAT)
        self.gng_event = (small_mid[:, None] & (ev.random((S, D)) < GAP_AND_GO_RATE)
                          & (days >= self.events_from) & ~special & ~self.gap_event)
        self.squeeze = self.pump_event & (ev.random((S, D)) < SQUEEZE_RATE)

    def _add_dividend(self, i, d, amount):
        self.dividend[i, d] = amount
        ex = pd.Timestamp(self.sessions[d])
        self.dividend_rows.append({
            "ticker": self.tickers[i],
            "ex_dividend_date": _iso(ex),
            "record_date": _iso(ex),  # T+1 settlement (from May 2024): record date = ex-date
            "pay_date": _iso(ex + pd.Timedelta(days=14 + int(self.rng.integers(0, 14)))),
            "declaration_date": _iso(ex - pd.Timedelta(days=14 + int(self.rng.integers(0, 21)))),
            "cash_amount": float(amount),
            "dividend_type": "CD",
            "frequency": 4,
            "currency": "USD",
        })

    def _ewm_std(self, i, d) -> float:
        hist = self.closes_hist[i, :d]
        hist = hist[~np.isnan(hist)]
        if len(hist) < 10:
            return float("nan")
        return float(pd.Series(hist).ewm(span=EWM_SPAN).std().iloc[-1])

    def _screen(self, a, d, prev):
        """Rows ``j`` of ``a`` that pass the sell-gap screen before session ``d`` opens, with
        the screen's 63-day std and 20-day mean (Pipeline's view: adjusted closes, regular-
        session volume; see :func:`factors.screens.sell_gap_pipeline`)."""
        if d < SCREEN_STD_WINDOW:
            return []
        adv = self.dv_hist[:, d - SCREEN_ADV_WINDOW:d].sum(axis=1) / SCREEN_ADV_WINDOW
        listed = self.is_cs & (self.first <= d - 1) & (self.last >= d - 1)
        order = np.flatnonzero(listed)[np.argsort(-adv[listed], kind="stable")]
        top = set(order[:SCREEN_TOP].tolist())
        out = []
        for j, i in enumerate(a):
            if i not in top or self.role[i] not in ("large", "mid"):
                continue
            hist = self.adj_hist[i, d - SCREEN_STD_WINDOW:d]
            if not np.isfinite(hist).all() or prev[j] <= SCREEN_MIN_CLOSE * 1.02:
                continue
            sma = float(hist[-SCREEN_SMA_WINDOW:].mean())
            if prev[j] <= sma * 1.005:
                continue
            out.append((j, _ewm_std_zipline(hist, SCREEN_STD_DECAY), sma))
        return out

    # -- one session --------------------------------------------------------------------
    def simulate_day(self, d: int, build: bool = True):
        """Simulate session ``d``: returns ({"n": rows, "frame": minute frame or None}, day frame)."""
        rng = np.random.default_rng([SEED, 1, d])
        ev = np.random.default_rng([SEED, 2, d])  # the v3 events' own stream
        trading = (self.first <= d) & (d <= self.last) & ~self.halted[:, d]
        a = np.flatnonzero(trading)
        k = len(a)
        n = int(self.n_rth[d])
        M = PRE_MINUTES + n + POST_MINUTES
        sig = self.sigma[a]

        # Daily open and close.
        ratio = self.split_ratio[a, d]
        self.anchor[a] /= ratio
        self.base_vol[a] *= ratio  # share counts follow the split
        self.trade_shares[a] *= ratio
        prev = self.last_close[a] / ratio
        prev_low = self.last_low[a] / ratio
        prev_low_rth = self.last_low_rth[a] / ratio
        # Pipeline windows are split- and dividend-adjusted as of today.
        for j in np.flatnonzero((ratio != 1) | (self.dividend[a, d] > 0)):
            self.adj_hist[a[j], :d] *= (1.0 - self.dividend[a[j], d] / prev[j]) / ratio[j]
        pull = self.kappa[a] * (np.log(prev) - np.log(self.anchor[a]))
        after_halt = np.zeros(k, dtype=bool)
        if d > 0:
            after_halt = self.halted[a, d - 1]
        gap_sd = 0.45 * sig * np.where(after_halt, 6.0, 1.0)
        g = self.beta[a] * self.mkt_gap[d] + gap_sd * self.eps_gap[a, d] - pull + self.drift[a] / 2
        r = self.beta[a] * self.mkt_intra[d] + 0.75 * sig * self.eps_intra[a, d] + self.drift[a] / 2
        open_ = prev * np.exp(g) - self.dividend[a, d]
        close = None
        vol_mult = self.vol_day[a, d].copy()
        pre_sigma = 0.35 * sig / np.sqrt(PRE_MINUTES)
        rth_sigma = 0.8 * sig / np.sqrt(390)
        post_sigma = 0.3 * sig / np.sqrt(POST_MINUTES)

        gap_rows = []
        for j in np.flatnonzero(self.gap_event[a, d]):
            i = a[j]
            std = self._ewm_std(i, d)
            target = prev_low[j] - self.gap_k[i, d] * std
            if not np.isfinite(std) or target < 0.55 * prev[j] or target <= 0:
                continue
            open_[j] = target
            # Continuation or reversion through the session.
            r[j] = self.gap_dir[i, d] * rng.uniform(1.0, 3.0) * sig[j] + rng.normal(0, sig[j])
            vol_mult[j] *= 4.0
            rth_sigma[j] *= 1.8
            gap_rows.append((j, std, self.gap_dir[i, d], False))
        # Sell gaps on names that pass the sell-gap screen (top decile of dollar volume, above
        # the 20-day mean): open below both the prior low - the screen's std (zipline's
        # 63-day EWM std, decay 0.99) and the test rule's std, and below the 20-day mean.
        gapped = {row[0] for row in gap_rows}
        if d >= self.events_from:
            for j, std_z, sma in self._screen(a, d, prev):
                i = a[j]
                if j in gapped or self.special[i, d] or self.screen_draw[i, d] >= SCREEN_GAP_RATE:
                    continue
                std = self._ewm_std(i, d)
                kk = self.screen_k[i, d]
                target = min(prev_low[j] - kk * std, prev_low_rth[j] - kk * std_z, 0.99 * sma)
                if not np.isfinite(target) or target < 0.55 * prev[j]:
                    continue
                open_[j] = target
                r[j] = (self.screen_dir[i, d] * ev.uniform(1.0, 3.0) * sig[j]
                        + ev.normal(0, sig[j]))
                vol_mult[j] *= 4.0
                rth_sigma[j] *= 1.8
                gap_rows.append((j, std, self.screen_dir[i, d], True))
                gapped.add(j)
        open_ = round_price(open_)
        close = round_price(open_ * np.exp(r))

        pump_rows = []
        for j in np.flatnonzero(self.pump_event[a, d]):
            i = a[j]
            p = self.pump_size[i, d]
            open_[j] = round_price(prev[j] * (1 + p * rng.uniform(0.6, 0.95)))
            close[j] = round_price(prev[j] * (1 + p * rng.uniform(-0.25, 0.45)))
            rth_sigma[j] *= 2.0
            t_news = int(rng.integers(0, 201))
            # The morning: (move from the open, minutes after the open, holds the squeeze?)
            if self.squeeze[i, d]:  # squeezes 20-80 % above the open in the first hour
                size, t_sq = ev.uniform(0.2, 0.8), int(ev.integers(8, 61))
                hold = bool(ev.random() < 0.35)  # ... and holds, or fades as usual
                if hold:
                    close[j] = round_price(open_[j] * (1 + size * ev.uniform(0.2, 0.8)))
                morning = (size, t_sq, hold)
            else:  # the fade starts after a morning of chop around the open
                morning = (ev.uniform(-0.08, 0.06), int(ev.integers(30, 121)), None)
            pump_rows.append((j, p, t_news, morning))

        # Gap-and-go days: news before the open, a 11-40 % pre-market gap on heavy volume, a
        # pull-back under the pre-market high after the open, then a break above it on a volume
        # burst before 11:00 and a run of 4-30 % that holds (runner), gives back (fader) or
        # collapses below VWAP (reversal).
        gng_rows = []
        for j in np.flatnonzero(self.gng_event[a, d]):
            if j in gapped or not GAP_AND_GO_PRICE[0] <= prev[j] <= GAP_AND_GO_PRICE[1]:
                continue
            g = ev.uniform(0.11, 0.40)
            o = float(round_price(prev[j] * (1 + g)))
            high = o * (1 + ev.uniform(0.03, 0.10))
            u = ev.random()
            kind = "runner" if u < 0.45 else "fader" if u < 0.75 else "reversal"
            run = {"runner": (0.15, 0.30), "fader": (0.05, 0.15), "reversal": (0.04, 0.10)}[kind]
            peak = high * (1 + ev.uniform(*run))
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
            open_[j], close[j] = o, round_price(c)
            rth_sigma[j] *= 2.5
            gng_rows.append(dict(j=j, gap=g, high=high, peak=peak, kind=kind, t_news=t_news,
                                 t_peak=int(ev.integers(t_news + 10, PRE_MINUTES - 20)),
                                 t_b=t_b, t_pk=t_pk, t_mid=t_mid,
                                 mid=o * (1 - ev.uniform(0.0, 0.05)),
                                 first=np.log1p(g * ev.uniform(0.5, 0.9)),
                                 pm_mult=ev.uniform(4, 10), rth_mult=ev.uniform(6, 15)))

        # Continuous log-price path: prior close -> open -> close -> after hours.
        L = np.empty((k, M + 1))
        L[:, 0] = np.log(prev)
        L[:, 1:PRE_MINUTES + 1] = _bridge(rng, np.log(prev), np.log(open_), PRE_MINUTES, pre_sigma)
        L[:, PRE_MINUTES + 1:PRE_MINUTES + n + 1] = _bridge(rng, np.log(open_), np.log(close), n,
                                                            rth_sigma)
        L[:, PRE_MINUTES + n + 1:] = np.log(close)[:, None] + np.cumsum(
            rng.standard_normal((k, POST_MINUTES)) * post_sigma[:, None], axis=1)

        # Presence: extended-hours activity rises into the open and fades after the close.
        t_pre = np.arange(PRE_MINUTES) / PRE_MINUTES
        t_post = np.arange(POST_MINUTES)
        ext_cov = np.r_[0.01 + 0.25 * t_pre ** 3, np.zeros(n), 0.02 + 0.35 * np.exp(-t_post / 20)]
        rth = np.zeros(M, dtype=bool)
        rth[PRE_MINUTES:PRE_MINUTES + n] = True
        cov = np.where(rth[None, :], self.cov[a][:, None], ext_cov[None, :] * self.ext[a][:, None])
        # Pumped and gap-and-go names trade nearly every minute of the morning.
        for j in [row[0] for row in pump_rows] + [e["j"] for e in gng_rows]:
            cov[j, PRE_MINUTES:PRE_MINUTES + 150] = 0.97
            cov[j, PRE_MINUTES + 150:PRE_MINUTES + n] = max(self.cov[a[j]], 0.7)
        present = rng.random((k, M)) < np.where(rth[None, :], cov, np.minimum(cov, 0.95))
        present[:, PRE_MINUTES] = True
        present[:, PRE_MINUTES + n - 1] = True

        # Volume profile: U-shaped regular session, thin extended hours.
        x = np.arange(n) / max(n - 1, 1)
        rth_prof = 0.7 + 2.5 * np.exp(-x * 12) + 1.8 * np.exp(-(1 - x) * 15)
        prof = np.r_[0.04 + 0.25 * t_pre ** 2, rth_prof, 0.05 + 0.3 * np.exp(-t_post / 30)]
        vol_f = (self.base_vol[a] * vol_mult)[:, None] * prof[None, :]  # x noise below

        # Pre-market pumps: news between 04:00 and 07:20, a spike; in the session a morning of
        # chop (or a squeeze), then the fade (or the squeeze holds).
        for j, p, t_news, morning in pump_rows:
            base = np.log(prev[j])
            peak = base + np.log1p(p)
            first = base + np.log1p(p * rng.uniform(0.6, 0.9))
            t_peak = int(rng.integers(t_news + 1, PRE_MINUTES - 10))
            s_pump = 4 * sig[j] / np.sqrt(PRE_MINUTES)
            pts = [np.array([base])]
            if t_news:
                pts.append(_bridge(rng, np.array([base]), np.array([base]), t_news, [pre_sigma[j]])[0])
            pts.append(np.array([first]))
            if t_peak > t_news + 1:
                pts.append(_bridge(rng, np.array([first]), np.array([peak]), t_peak - t_news - 1,
                                   [s_pump])[0])
            pts.append(_bridge(rng, np.array([peak]), np.array([np.log(open_[j])]),
                               PRE_MINUTES - t_peak, [s_pump])[0])
            L[j, :PRE_MINUTES + 1] = np.concatenate(pts)[:PRE_MINUTES + 1]
            present[j, t_news:PRE_MINUTES] = rng.random(PRE_MINUTES - t_news) < 0.9
            present[j, [t_news, t_peak - 1]] = True
            tt = np.arange(PRE_MINUTES - t_news)
            vol_f[j, t_news:PRE_MINUTES] *= 8 + 60 * np.exp(-np.abs(tt - (t_peak - t_news)) / 60)
            vol_f[j, PRE_MINUTES:PRE_MINUTES + n] *= 2 + 10 * np.exp(-4 * x)
            vol_f[j, PRE_MINUTES + n:] *= 3
            entry = {"ticker": self.tickers[a[j]], "session": _iso(self.sessions[d]),
                     "prior_close": float(prev[j]), "pump": round(float(p), 3),
                     "open": float(open_[j]), "close": float(close[j]), "kind": "fade"}
            # Regular session: open -> the morning waypoint (a squeeze top, or chop around
            # the open) -> the close.
            move, t_w, hold = morning
            lo_, mid = np.log(open_[j]), np.log(open_[j]) + np.log1p(move)
            s_w = 1.5 * rth_sigma[j]
            L[j, PRE_MINUTES + 1:PRE_MINUTES + t_w + 1] = _bridge(
                ev, np.array([lo_]), np.array([mid]), t_w, [s_w])[0]
            L[j, PRE_MINUTES + t_w + 1:PRE_MINUTES + n + 1] = _bridge(
                ev, np.array([mid]), np.array([np.log(close[j])]), n - t_w, [s_w])[0]
            if hold is not None:
                m = np.arange(n)
                vol_f[j, PRE_MINUTES:PRE_MINUTES + n] *= 1 + 4 * np.exp(-np.abs(m - t_w) / 20)
                present[j, PRE_MINUTES + t_w - 1] = True
                entry.update(kind="squeeze_hold" if hold else "squeeze",
                             squeeze_high=float(round_price(open_[j] * (1 + move))),
                             squeeze_minute=t_w)
            self.pumps.append(entry)

        for e in gng_rows:
            self._gap_and_go_path(e, n, ev, L, present, vol_f, prev, open_, close, sig,
                                  pre_sigma, rth_sigma, self.base_vol[a[e["j"]]])

        # Intraday halt: no bars for 26 minutes, resumes with a jump that fades by the close.
        halt_j = None
        if self.sessions[d] == pd.Timestamp(INTRADAY_HALT_SESSION):
            ih = self.pos[id(self.intraday_halt)]
            halt_j = int(np.flatnonzero(a == ih)[0])
            h0, h1 = (PRE_MINUTES + (pd.Timedelta(f"{t}:00") - pd.Timedelta("09:30:00"))
                      // pd.Timedelta(minutes=1) for t in INTRADAY_HALT)
            end = PRE_MINUTES + n
            ramp = 1 - (np.arange(h1, end + 1) - h1) / (end - h1)
            L[halt_j, h1:end + 1] += np.log(1.18) * ramp
            present[halt_j, h0:h1] = False
            present[halt_j, [h0 - 1, h1]] = True
            vol_f[halt_j, h1:h1 + 15] *= 6

        # zipline stores daily volumes as uint32: keep a day's regular-session volume (sub-penny
        # pumps trade billions of shares) under 2 billion.
        rth_volume = (vol_f[:, PRE_MINUTES:PRE_MINUTES + n]
                      * present[:, PRE_MINUTES:PRE_MINUTES + n]).sum(axis=1)
        vol_f *= np.minimum(1.0, 2e9 / np.maximum(rth_volume, 1.0))[:, None]

        # Bars, computed only where there is one (rows in ticker, then time order).
        rows_s, rows_m = np.nonzero(present)
        P = np.exp(L)
        P[:, PRE_MINUTES] = open_
        P[:, PRE_MINUTES + n] = close
        o, c = P[rows_s, rows_m], P[rows_s, rows_m + 1]
        nb = len(rows_s)
        wick = (0.6 * rth_sigma)[rows_s]
        hi = np.maximum(o, c) * np.exp(np.abs(rng.standard_normal(nb)) * wick)
        lo = np.minimum(o, c) * np.exp(-np.abs(rng.standard_normal(nb)) * wick)
        o, c, hi, lo = round_price(o), round_price(c), round_price(hi), round_price(lo)
        hi = np.maximum(hi, np.maximum(o, c))
        lo = np.minimum(lo, np.minimum(o, c))
        vol = vol_f[rows_s, rows_m] * np.exp(rng.normal(0, 0.5, nb))
        vol = np.maximum(np.rint(vol), 1).astype(np.int64)
        tx = np.rint(vol / self.trade_shares[a][rows_s] * np.exp(rng.normal(0, 0.3, nb)))
        tx = np.clip(tx, 1, vol).astype(np.int64)

        # Day aggregates (see the module docstring for the definitions).
        starts = np.searchsorted(rows_s, np.arange(k))  # every ticker has >= 2 bars
        cell = rows_s * M + rows_m
        first_rth = np.searchsorted(cell, np.arange(k) * M + PRE_MINUTES)
        last_rth = np.searchsorted(cell, np.arange(k) * M + PRE_MINUTES + n - 1)
        day_close = c[last_rth]
        low_d = np.minimum.reduceat(lo, starts)
        daily = pd.DataFrame({
            "ticker": self.tickers[a],
            "volume": np.add.reduceat(vol, starts),
            "open": o[first_rth],
            "close": day_close,
            "high": np.maximum.reduceat(hi, starts),
            "low": low_d,
            "window_start": np.full(k, self.day_ns[d], dtype=np.int64),
            "transactions": np.add.reduceat(tx, starts),
        })

        # Book-keeping for the following sessions.
        for j, std, direction, screened in gap_rows:
            i = a[j]
            self.sell_gaps.append({"ticker": self.tickers[i], "session": _iso(self.sessions[d]),
                                   "open": float(open_[j]), "prior_low": float(prev_low[j]),
                                   "ewm_std": round(std, 6),
                                   "kind": "continuation" if direction < 0 else "reversion",
                                   "screened": screened})
        for e in gng_rows:
            j = e["j"]
            self.gap_and_go.append({
                "ticker": self.tickers[a[j]], "session": _iso(self.sessions[d]),
                "prior_close": float(prev[j]), "premarket_last": float(open_[j]),
                "premarket_high": float(hi[starts[j]:first_rth[j]].max()),
                "breakout_et": (pd.Timestamp("09:30") + pd.Timedelta(minutes=e["t_b"]))
                .strftime("%H:%M"),
                "high": float(hi[first_rth[j]:last_rth[j] + 1].max()),
                "close": float(day_close[j]), "kind": e["kind"]})
        rth_row = (rows_m >= PRE_MINUTES) & (rows_m < PRE_MINUTES + n)
        self.last_close[a] = day_close
        self.last_low[a] = low_d
        self.last_low_rth[a] = np.minimum.reduceat(np.where(rth_row, lo, np.inf), first_rth)
        self.closes_hist[a, d] = day_close
        self.adj_hist[a, d] = day_close
        self.dv_hist[a, d] = day_close * np.bincount(rows_s, weights=np.where(rth_row, vol, 0),
                                                     minlength=k)

        result = {"n": nb, "frame": None}
        if build:
            ws = self.opens[d] - PRE_MINUTES * NS_PER_MINUTE + np.arange(M, dtype=np.int64) * NS_PER_MINUTE
            frame = pd.DataFrame({
                "ticker": self.tickers[a][rows_s],
                "volume": vol,
                "open": o,
                "close": c,
                "high": hi,
                "low": lo,
                "window_start": ws[rows_m],
                "transactions": tx,
            })
            if self.sessions[d] == pd.Timestamp(UNSORTED_SESSION):
                frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
            result["frame"] = frame
        return result, daily

    def _gap_and_go_path(self, e, n, ev, L, present, vol_f, prev, open_, close, sig,
                         pre_sigma, rth_sigma, base_vol):
        """Price path, presence and volume of one gap-and-go day (row ``e["j"]``)."""
        j, P0 = e["j"], PRE_MINUTES
        t_news, t_peak, t_b, t_pk = e["t_news"], e["t_peak"], e["t_b"], e["t_pk"]
        one = lambda x: np.array([x])  # noqa: E731
        base, lo_, lh = np.log(prev[j]), np.log(open_[j]), np.log(e["high"])
        # Pre-market: quiet, the news print, a run to the pre-market high, a pull-back to the
        # last pre-market price (= the open); the high is never exceeded (resistance).
        s_pre = 3 * sig[j] / np.sqrt(PRE_MINUTES)
        pts = [one(base), _bridge(ev, one(base), one(base), t_news, [pre_sigma[j]])[0],
               one(base + e["first"]),
               _bridge(ev, one(base + e["first"]), one(lh), t_peak - t_news - 1, [s_pre])[0],
               _bridge(ev, one(lh), one(lo_), P0 - t_peak, [s_pre])[0]]
        L[j, :P0 + 1] = np.minimum(np.concatenate(pts), lh)
        # Regular session: under the high until the breakout bar t_b, whose close clears it.
        s = 1.2 * rth_sigma[j]
        below = lh + np.log(1 - ev.uniform(0.005, 0.02))
        L[j, P0 + 1:P0 + t_b + 1] = np.minimum(_bridge(ev, one(lo_), one(below), t_b, [s])[0],
                                               lh - 0.004)
        brk = lh + np.log1p(ev.uniform(0.015, 0.035))
        L[j, P0 + t_b + 1] = brk
        L[j, P0 + t_b + 2:P0 + t_pk + 1] = _bridge(ev, one(brk), one(np.log(e["peak"])),
                                                   t_pk - t_b - 1, [s])[0]
        lc = np.log(close[j])
        if e["kind"] == "reversal":  # a quick drop back to the open, then the afternoon
            t_mid, lm = e["t_mid"], np.log(e["mid"])
            L[j, P0 + t_pk + 1:P0 + t_mid + 1] = _bridge(ev, one(np.log(e["peak"])), one(lm),
                                                         t_mid - t_pk, [s])[0]
            L[j, P0 + t_mid + 1:P0 + n + 1] = _bridge(ev, one(lm), one(lc), n - t_mid, [s])[0]
        else:
            L[j, P0 + t_pk + 1:P0 + n + 1] = _bridge(ev, one(np.log(e["peak"])), one(lc),
                                                     n - t_pk, [s])[0]
        # Presence: busy from the news on; the last pre-market bar, the news bar, the bar
        # reaching the pre-market high and the breakout bars always trade.
        present[j, t_news:P0] = ev.random(P0 - t_news) < 0.85
        present[j, [t_news, t_peak - 1, P0 - 1]] = True
        present[j, P0 + t_b:P0 + t_b + 3] = True
        # Volume: heavy pre-market around the high; in the session an opening burst, the
        # breakout burst (volume confirmation), selling volume on reversals, a closing bump.
        tt = np.arange(P0 - t_news)
        vol_f[j, t_news:P0] = base_vol * e["pm_mult"] * (
            1 + 5 * np.exp(-np.abs(tt - (t_peak - t_news)) / 40))
        m = np.arange(n)
        shape = (0.6 + 1.8 * np.exp(-m / 25) + 0.8 * np.exp(-(n - 1 - m) / 15)
                 + np.where(m >= t_b, 8 * np.exp(-(m - t_b) / 10), 0.0))
        if e["kind"] == "reversal":
            shape += np.where(m >= t_pk, 3 * np.exp(-(m - t_pk) / 15), 0.0)
        vol_f[j, P0:P0 + n] = base_vol * e["rth_mult"] * shape
        vol_f[j, P0 + n:] *= 3

    # -- outputs ----------------------------------------------------------------------
    def manifest_base(self) -> dict:
        cal_early = [_iso(s) for s, m in zip(self.sessions, self.n_rth) if m < 390]
        roles: dict[str, list[str]] = {}
        for r in self.rows:
            roles.setdefault(r["role"], []).append(r["ticker"])
        roles = {k: sorted(set(v)) for k, v in roles.items()}
        names = {"large": "large_cap", "mid": "mid_cap", "small": "small_cap", "penny": "penny",
                 "etf": "etf", "adr": "adr", "warrant": "warrant", "preferred": "preferred",
                 "reused": "reused"}
        return {
            "version": DEMO_VERSION,
            "start": DEMO_START,
            "end": DEMO_END,
            "calendar": CALENDAR,
            "sessions": len(self.sessions),
            "early_closes": cal_early,
            "tickers": {names[k]: v for k, v in roles.items()},
            "liquid": sorted(roles["large"] + roles["mid"]),
            "sub_penny": sorted(r["ticker"] for r in self.rows
                                if r["role"] == "penny" and r["p0"] < 0.05),
            "sell_gap_rule": "open < prior session low - close.ewm(span=63).std() "
                             "of the prior sessions' closes (day aggregates)",
        }

    def manifest_events(self) -> dict:
        reused = [r for r in self.rows if r["role"] == "reused"]
        return {
            "splits": [
                {"ticker": self.forward_split["ticker"], "execution_date": FORWARD_SPLIT_DATE,
                 "split_from": 1, "split_to": 4, "kind": "forward"},
                {"ticker": self.reverse_split["ticker"], "execution_date": REVERSE_SPLIT_DATE,
                 "split_from": 10, "split_to": 1, "kind": "reverse"},
            ],
            "dividends": [{k: r[k] for k in ("ticker", "ex_dividend_date", "cash_amount")}
                          for r in sorted(self.dividend_rows,
                                          key=lambda r: (r["ex_dividend_date"], r["ticker"]))],
            "delisted": {"ticker": self.delisted["ticker"], "last_session": DELISTED_LAST_SESSION,
                         "delisted_utc": self._delisted_utc(self.delisted)},
            "reused_ticker": {
                "ticker": REUSED_TICKER,
                "periods": [{"name": r["name"], "composite_figi": r["figi"], "cik": r["cik"],
                             "first_session": _iso(self.sessions[r["first"]]),
                             "last_session": _iso(self.sessions[r["last"]]),
                             "active": r["last"] == len(self.sessions) - 1,
                             "delisted_utc": self._delisted_utc(r)} for r in reused],
            },
            "full_day_halt": {"ticker": self.full_halt["ticker"], "session": FULL_DAY_HALT_SESSION},
            "intraday_halt": {"ticker": self.intraday_halt["ticker"],
                              "session": INTRADAY_HALT_SESSION, "start_et": INTRADAY_HALT[0],
                              "end_et": INTRADAY_HALT[1]},
            "unsorted_session": UNSORTED_SESSION,
            "sell_gaps": self.sell_gaps,
            "penny_pumps": self.pumps,
            "gap_and_go": self.gap_and_go,
        }

    def _delisted_utc(self, r):
        if r["last"] == len(self.sessions) - 1:
            return None
        return _utc_midnight(pd.Timestamp(self.sessions[r["last"]]) + pd.Timedelta(days=1))

    def reference(self) -> dict:
        tickers, details = [], []
        for r in self.rows:
            delisted = self._delisted_utc(r)
            entry = {
                "ticker": r["ticker"], "name": r["name"], "market": "stocks", "locale": "us",
                "primary_exchange": r["exchange"], "type": r["type"], "active": delisted is None,
                "currency_name": "usd", "cik": r["cik"], "composite_figi": r["figi"],
                "share_class_figi": r["share_figi"],
                "last_updated_utc": delisted or LAST_UPDATED,
            }
            if delisted:
                entry["delisted_utc"] = delisted
            tickers.append(entry)
            sic_code, sic_desc = _SIC.get(r["role"], _SIC["mid"])
            detail = {
                "ticker": r["ticker"], "name": r["name"], "type": r["type"],
                "active": delisted is None, "list_date": r["list_date"],
                "primary_exchange": r["exchange"], "composite_figi": r["figi"],
                "share_class_figi": r["share_figi"], "cik": r["cik"], "currency_name": "usd",
                "share_class_shares_outstanding": r["shares"],
                "weighted_shares_outstanding": int(r["shares"] * 0.995),
                "market_cap": round(r["shares"] * r["p0"], 2),
            }
            if sic_code:
                detail.update(sic_code=sic_code, sic_description=sic_desc)
            if delisted:
                detail["delisted_utc"] = delisted
            details.append(detail)
        splits = []
        for info, (frm, to) in ((self.forward_split, (1, 4)), (self.reverse_split, (10, 1))):
            date = FORWARD_SPLIT_DATE if to > frm else REVERSE_SPLIT_DATE
            sid = hashlib.sha256(f"{info['ticker']}|{date}|{frm}|{to}".encode()).hexdigest()
            splits.append({"id": "E" + sid, "ticker": info["ticker"], "execution_date": date,
                           "split_from": frm, "split_to": to})
        dividends = sorted(self.dividend_rows, key=lambda r: (r["ticker"], r["ex_dividend_date"]))
        return {"tickers": tickers, "splits": splits, "dividends": dividends,
                "ticker_details": details}

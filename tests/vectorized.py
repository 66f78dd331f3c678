"""Independent re-implementations of ``sell_gap`` and ``microcap_short`` in plain pandas/numpy.

They read the same bars as the zipline runs -- the bundle's bcolz daily and minute files, its
``adjustments.sqlite`` tables and its ``gapline/`` side tables -- but share no code with
zipline's Pipeline, blotter, ledger or with ``algorithms/``: screens, signals, order sizing,
partial fills under the ``published`` cost preset (close +/- 3 bps, at most
``int(0.1 x bar volume)`` shares per minute bar, bars without volume or close skipped),
stops, cancellations at the end of the day and the daily mark-to-market are all written out
here from the strategy rules. ``tests/test_algorithms.py`` requires both implementations to
produce the same fills and daily returns.

Conventions mirrored from zipline because they are facts of the simulation, not strategy:
minute bars are end-labelled (09:31 holds the 09:30 bar); an order placed at minute ``t``
fills from the bar ``t + 1`` on; the daily screen of session ``D`` sees daily bars through
``D - 1`` with every split/dividend whose ex-date is ``<= D`` applied to earlier rows (prices x
ratio, volumes / split ratio); an asset is in the screen's universe on ``D`` when
``start_date < D <= end_date``; order sizes from a dollar value are truncated toward zero;
the "price" of an asset is its last traded close.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SLIPPAGE = 3e-4
VOLUME_LIMIT = 0.1
ET = "America/New_York"


def _session_minutes(calendar, session):
    return calendar.session_minutes(session)


@dataclass
class Bundle:
    """Raw arrays of one ingestion folder."""

    path: Path
    calendar: object = None
    sessions: pd.DatetimeIndex = None
    assets: pd.DataFrame = None
    daily: dict = field(default_factory=dict)        # field -> DataFrame sessions x sids (raw)
    splits: pd.DataFrame = None
    dividends: pd.DataFrame = None
    premarket: pd.DataFrame = None

    @classmethod
    def open(cls, path):
        from zipline.data.bcolz_daily_bars import BcolzDailyBarReader
        from zipline.data.bcolz_minute_bars import BcolzMinuteBarReader
        from zipline.utils.calendar_utils import get_calendar

        path = Path(path)
        self = cls(path=path)
        self.calendar = get_calendar("XNYS")
        assets = pd.read_parquet(path / "gapline" / "assets.parquet")
        assets["start_date"] = pd.to_datetime(assets["start_date"]).dt.tz_localize(None)
        assets["end_date"] = pd.to_datetime(assets["end_date"]).dt.tz_localize(None)
        self.assets = assets.set_index("sid").sort_index()
        sids = list(self.assets.index)
        reader = BcolzDailyBarReader(str(path / "daily_equities.bcolz"))
        self.sessions = reader.sessions
        arrays = reader.load_raw_arrays(["open", "high", "low", "close", "volume"],
                                        self.sessions[0], self.sessions[-1], sids)
        for name, arr in zip(["open", "high", "low", "close", "volume"], arrays):
            self.daily[name] = pd.DataFrame(arr, index=self.sessions, columns=sids)
        self.minute_reader = BcolzMinuteBarReader(str(path / "minute_equities.bcolz"))
        with sqlite3.connect(path / "adjustments.sqlite") as con:
            self.splits = pd.read_sql("select sid, ratio, effective_date from splits", con)
            self.dividends = pd.read_sql("select sid, ratio, effective_date from dividends", con)
        for frame in (self.splits, self.dividends):
            frame["effective_date"] = pd.to_datetime(frame["effective_date"], unit="s")
        pm = pd.read_parquet(path / "gapline" / "extended_hours.parquet")
        pm["session"] = pd.to_datetime(pm["session"]).dt.tz_localize(None)
        self.premarket = pm.set_index(["session", "sid"]).sort_index()
        return self

    # -- daily history as the screen of session D sees it ----------------------------------
    def history(self, session, window, fields=("open", "high", "low", "close", "volume")):
        """Rows D-window .. D-1, adjusted for every split/dividend with ex-date <= D."""
        i = self.sessions.get_loc(session)
        if i < window:
            raise ValueError(f"{session.date()}: fewer than {window} sessions of history")
        rows = self.sessions[i - window:i]
        cols = self.daily["close"].columns
        price_mult = np.ones((window, len(cols)))
        volume_mult = np.ones((window, len(cols)))
        for table, is_split in ((self.splits, True), (self.dividends, False)):
            for sid, ratio, eff in table.itertuples(index=False):
                if eff > session or sid not in cols:
                    continue
                before = np.asarray(rows < eff)
                j = cols.get_loc(sid)
                price_mult[before, j] *= ratio
                if is_split:
                    volume_mult[before, j] /= ratio
        out = {}
        for f in fields:
            raw = self.daily[f].to_numpy()[i - window:i]
            mult = volume_mult if f == "volume" else price_mult
            out[f] = pd.DataFrame(raw * mult, index=rows, columns=cols)
        return out

    def alive(self, session):
        a = self.assets
        return pd.Series((a["start_date"] < session) & (session <= a["end_date"]), index=a.index)

    def common_stock(self, session):
        """Polygon type CS, alive as of the previous session."""
        prev = self.sessions[self.sessions.get_loc(session) - 1]
        a = self.assets
        return (a["type"] == "CS") & (a["start_date"] <= prev) & (prev <= a["end_date"])

    # -- minute bars ----------------------------------------------------------------------
    def minutes(self, session, sids):
        """The session's minute bars of ``sids`` as numpy arrays (NaN where no bar)."""
        minutes = _session_minutes(self.calendar, session)
        sids = list(sids)
        if sids:
            arrays = self.minute_reader.load_raw_arrays(
                ["open", "high", "low", "close", "volume"], minutes[0], minutes[-1], sids)
        else:
            arrays = [np.empty((len(minutes), 0))] * 5
        return Bars(minutes, {s: j for j, s in enumerate(sids)}, *arrays)

    def last_close(self, session, sid):
        """Last traded daily close on or before ``session`` (raw)."""
        c = self.daily["close"][sid].loc[:session].dropna()
        return float(c.iloc[-1]) if len(c) else np.nan


@dataclass
class Bars:
    """One session's minute bars: rows = minutes (end labels), columns = ``col[sid]``."""

    minutes: pd.DatetimeIndex
    col: dict
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def price(self, t, sid):
        """Last traded close at or before row ``t`` today (NaN when none yet)."""
        j = self.col.get(sid)
        if j is None:
            return np.nan
        c = self.close[: t + 1, j]
        c = c[np.isfinite(c)]
        return float(c[-1]) if len(c) else np.nan


# ----------------------------------------------------------------------------- factor maths
def ewm_std(values: np.ndarray, decay: float) -> np.ndarray:
    """Exponentially weighted std with bias correction, weights decay**k (k=0: newest row)."""
    n = values.shape[0]
    w = decay ** np.arange(n - 1, -1, -1, dtype=float)[:, None]
    mean = (values * w).sum(axis=0) / w.sum()
    var = (((values - mean) ** 2) * w).sum(axis=0) / w.sum()
    s2 = w.sum() ** 2
    return np.sqrt(var * s2 / (s2 - (w ** 2).sum()))


def percentile_mask(values: pd.Series, universe: pd.Series, lo: float, hi: float) -> pd.Series:
    x = values.where(universe)
    finite = x.dropna().to_numpy()
    if not len(finite):
        return pd.Series(False, index=values.index)
    lo_v, hi_v = np.percentile(finite, lo), np.percentile(finite, hi)
    return (x >= lo_v) & (x <= hi_v)


def sell_gap_screen(b: Bundle, session) -> pd.DataFrame:
    """QuantRocket's sell-gap screen for ``session`` (see factors.screens.sell_gap_pipeline)."""
    h = b.history(session, 63)
    close, low, volume = h["close"], h["low"], h["volume"]
    alive = b.alive(session)
    cs = b.common_stock(session) & alive
    adv = (close.iloc[-30:] * volume.iloc[-30:]).sum(axis=0) / 30.0  # NaN days count as 0
    liquid = percentile_mask(adv, cs, 90, 100)
    last = close.iloc[-1]
    mavg = close.iloc[-20:].mean(axis=0)  # NaN-skipping, like SimpleMovingAverage
    std = pd.Series(ewm_std(close.to_numpy(), 0.99), index=close.columns)
    screen = cs & liquid & (last > 10) & (last < 2000) & (last > mavg)
    out = pd.DataFrame({"prior_low": low.iloc[-1], "std": std, "mavg": mavg, "close": last})
    return out[screen.fillna(False)]


def microcap_screen(b: Bundle, session, min_price=0.10, max_price=5.0, sigma_window=100,
                    ema_span=20, ema_window=60) -> pd.DataFrame:
    """Penny gap-up screen for ``session`` (see factors.screens.microcap_short_pipeline)."""
    h = b.history(session, max(sigma_window, ema_window), fields=("close",))
    close = h["close"]
    alive = b.alive(session)
    cs = b.common_stock(session) & alive
    c = close.iloc[-sigma_window:].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = pd.DataFrame(c[1:] / c[:-1] - 1.0)
    sigma = r.std(ddof=0).where(r.notna().sum() >= 2).to_numpy()
    e = close.iloc[-ema_window:].to_numpy()
    decay = 1.0 - 2.0 / (ema_span + 1.0)
    w = decay ** np.arange(ema_window - 1, -1, -1, dtype=float)[:, None]
    valid = ~np.isnan(e)
    wsum = np.where(valid, w, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ema = np.where(wsum > 0, np.where(valid, e * w, 0.0).sum(axis=0) / wsum, np.nan)
    last = close.iloc[-1]
    out = pd.DataFrame({"prior_close": last, "sigma": sigma, "ema20": ema}, index=close.columns)
    screen = cs & (last > min_price) & (last <= max_price) & out["sigma"].notna()
    return out[screen.fillna(False)]


# ----------------------------------------------------------------------------- execution
@dataclass
class Book:
    """Cash, positions, open orders and fills of a simulated account."""

    cash: float
    positions: dict = field(default_factory=dict)   # sid -> shares
    cost: dict = field(default_factory=dict)        # sid -> average fill price
    last_price: dict = field(default_factory=dict)  # sid -> last traded close
    orders: list = field(default_factory=list)      # [sid, remaining shares (signed)]
    fills: list = field(default_factory=list)

    def value(self):
        return self.cash + sum(n * self.last_price.get(s, np.nan) for s, n in
                               self.positions.items() if n)

    def fill_bar(self, dt, bars, t):
        """Fill open orders on minute row ``t`` (published costs, volume cap per asset)."""
        used = {}
        for order in self.orders:
            sid, remaining = order
            if remaining == 0:
                continue
            vol = bars.volume[t, bars.col[sid]]
            close = bars.close[t, bars.col[sid]]
            if not vol or not np.isfinite(close):
                continue
            cap = int(VOLUME_LIMIT * vol) - used.get(sid, 0)
            if cap <= 0:
                continue
            n = min(abs(remaining), cap)
            side = 1 if remaining > 0 else -1
            price = close * (1 + SLIPPAGE * side)
            self._apply(dt, sid, side * n, price)
            used[sid] = used.get(sid, 0) + n
            order[1] = remaining - side * n
        self.orders = [o for o in self.orders if o[1] != 0]

    def _apply(self, dt, sid, amount, price):
        old = self.positions.get(sid, 0)
        new = old + amount
        if old == 0 or np.sign(old) == np.sign(amount):
            self.cost[sid] = (self.cost.get(sid, 0.0) * old + price * amount) / new
        elif new == 0:
            self.cost.pop(sid, None)
        elif np.sign(new) != np.sign(old):
            self.cost[sid] = price
        self.positions[sid] = new
        if new == 0:
            del self.positions[sid]
        self.cash -= amount * price
        self.fills.append({"dt": dt, "sid": sid, "amount": int(amount), "price": float(price)})

    def mark(self, bars, t):
        """Remember the last traded close of the assets in the book."""
        for sid in self.positions:
            j = bars.col.get(sid)
            if j is not None and np.isfinite(bars.close[t, j]):
                self.last_price[sid] = float(bars.close[t, j])

    def cancel_all(self, sids=None):
        self.orders = [o for o in self.orders if sids is not None and o[0] not in sids]


def _shares(value, price):
    x = value / price
    r = round(x)
    if abs(x - r) <= 1e-4:
        x = r
    return int(x)


def _ffill_price(b, book, bars, t, sid, session):
    """zipline's 'price': the last traded close at or before ``t`` (today, else before)."""
    p = bars.price(t, sid)
    if np.isfinite(p):
        return p
    if sid in book.last_price:
        return book.last_price[sid]
    prev = b.sessions[b.sessions.get_loc(session) - 1]
    return b.last_close(prev, sid)


def _run_days(b: Bundle, start, end, capital, day_fn):
    sessions = b.sessions[(b.sessions >= pd.Timestamp(start)) & (b.sessions <= pd.Timestamp(end))]
    book = Book(cash=float(capital))
    daily = []
    for session in sessions:
        start_value = book.value() if book.positions else book.cash
        # positions carried overnight are valued at the previous close until they trade
        n_before = len(book.fills)
        day_fn(b, book, session)
        for sid in list(book.positions):
            if not np.isfinite(book.last_price.get(sid, np.nan)):
                book.last_price[sid] = b.last_close(session, sid)
        end_value = book.value()
        daily.append({"date": session, "pnl": end_value - start_value,
                      "returns": (end_value - start_value) / start_value,
                      "portfolio_value": end_value,
                      "positions": sum(1 for n in book.positions.values() if n),
                      "transactions": len(book.fills) - n_before})
    fills = pd.DataFrame(book.fills, columns=["dt", "sid", "amount", "price"])
    fills["symbol"] = fills["sid"].map(b.assets["symbol"])
    return fills, pd.DataFrame(daily).set_index("date")


# ----------------------------------------------------------------------------- sell gap
def _row_values(bars, row, sids, field="open"):
    arr = getattr(bars, field)
    return pd.Series([arr[row, bars.col[s]] if s in bars.col else np.nan for s in sids],
                     index=sids, dtype=float)


def sell_gap(b: Bundle, start, end, capital=1_000_000.0, top_n=10, value=50_000.0):
    """Fills and daily results of QuantRocket's sell-gap under the published costs."""

    def day(b, book, session):
        screen = sell_gap_screen(b, session)
        sids = sorted(set(screen.index) | set(book.positions))
        bars = b.minutes(session, sids)
        t_signal, t_entry, t_exit = 0, 9, len(bars.minutes) - 6  # 09:31, 09:40, 15:55
        opens = _row_values(bars, t_signal, list(screen.index))
        sig = screen[(opens < screen["prior_low"] - screen["std"]) & (opens < screen["mavg"])]
        shorts = list(sig.sort_values("std", ascending=False).index[:top_n])
        for t, dt in enumerate(bars.minutes):
            book.fill_bar(dt, bars, t)
            book.mark(bars, t)
            if t == t_entry:
                for sid in shorts:
                    price = _ffill_price(b, book, bars, t, sid, session)
                    if np.isfinite(price) and price > 0:
                        n = _shares(-value, price)
                        if n:
                            book.orders.append([sid, n])
            if t == t_exit:
                book.cancel_all()
                for sid, n in list(book.positions.items()):
                    if np.isfinite(_ffill_price(b, book, bars, t, sid, session)):
                        book.orders.append([sid, -n])
        book.cancel_all()  # end-of-day cancel

    return _run_days(b, start, end, capital, day)


# ----------------------------------------------------------------------------- microcap short
def microcap_short(b: Bundle, start, end, capital=1_000_000.0, min_price=0.10, max_price=5.0,
                   min_gap_sigmas=2.0, top_gaps=50, max_positions=5, short_fraction=0.5,
                   stop_pct=0.20, sigma_window=100, ema_window=60):
    """Fills and daily results of the penny gap-up short under the published costs."""

    def day(b, book, session):
        screen = microcap_screen(b, session, min_price, max_price, sigma_window=sigma_window,
                                 ema_window=ema_window)
        held = sorted(book.positions)
        sids = sorted(set(screen.index) | set(held))
        bars = b.minutes(session, sids)
        t_entry, t_cover = 0, 149  # 09:31, 12:00
        stopped = set()
        monitoring = False
        last = {}  # sid -> (shares, average price) after the previous bar
        for t, dt in enumerate(bars.minutes):
            book.fill_bar(dt, bars, t)
            book.mark(bars, t)
            if monitoring:  # stops, every minute between the entry and noon
                shorts = {s: n for s, n in book.positions.items() if n < 0 and s not in stopped}
                before = last
                last = {s: (n, book.cost[s]) for s, n in shorts.items()}
                for s in sorted(shorts):
                    if before.get(s, (0, 0.0))[0] >= 0:
                        continue
                    high = bars.high[t, bars.col[s]]
                    if np.isfinite(high) and high >= before[s][1] * (1 + stop_pct):
                        book.cancel_all({s})
                        book.orders.append([s, -shorts[s]])
                        stopped.add(s)
                        last.pop(s, None)
            if t == t_entry and len(screen):
                pm = b.premarket.reindex(pd.MultiIndex.from_product([[session], screen.index]))
                pm.index = screen.index
                opens = _row_values(bars, t, list(screen.index))
                price = pm["pm_last"].where(pm["pm_last"].notna(), opens)
                gap = price / screen["prior_close"] - 1
                ok = ((screen["prior_close"] > min_price) & (screen["prior_close"] <= max_price)
                      & price.notna() & (price >= screen["ema20"])
                      & (gap / screen["sigma"] >= min_gap_sigmas))
                cand = pd.DataFrame({"gap": gap, "dv": pm["pm_dollar_volume"].fillna(0.0),
                                     "sid": screen.index}, index=screen.index)[ok]
                cand = cand[~cand.index.isin(held)]
                cand = cand.sort_values(["gap", "sid"], ascending=[False, True]).head(top_gaps)
                cand = cand.sort_values(["dv", "gap", "sid"],
                                        ascending=[False, False, True]).head(max_positions)
                slice_value = short_fraction * book.value() / max_positions
                placed = False
                for sid in cand.index:
                    p = _ffill_price(b, book, bars, t, sid, session)
                    if np.isfinite(p) and p > 0:
                        n = _shares(-slice_value, p)
                        if n:
                            book.orders.append([sid, n])
                            placed = True
                monitoring = placed or monitoring
            if t == t_cover:
                monitoring = False
                last = {}
                book.cancel_all()
                for sid, n in list(book.positions.items()):
                    if np.isfinite(_ffill_price(b, book, bars, t, sid, session)):
                        book.orders.append([sid, -n])
        book.cancel_all()

    return _run_days(b, start, end, capital, day)

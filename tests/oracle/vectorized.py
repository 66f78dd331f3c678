"""Independent re-implementations of ``sell_gap`` and ``microcap_short`` in plain pandas/numpy.

They read the same bars as the zipline runs -- the bundle's bcolz daily and minute files, its
``adjustments.sqlite`` tables and its ``gapline/`` side tables -- but share no code with
zipline's Pipeline, blotter, ledger or with ``algorithms/``: screens, signals, order sizing,
partial fills under the ``published`` cost preset (base price +/- 3 bps, at most
``int(0.1 x bar volume)`` shares per minute bar for continuous-trading orders, bars without
volume or close skipped), market-on-open orders filled whole at the 09:30 bar's open,
resting stops triggered on the bar's high and filled at the stop (or the open through it),
market-on-close orders sent at 15:50 and filled whole at the official close of the bundle's
auction table (else the session's last trade), cancellations and the daily mark-to-market
are all written out here from the strategy rules. ``tests/algorithms/test_algorithms.py`` requires both implementations to
produce the same fills and daily returns. microcap_short's SPY hedge is the one position held
overnight (it gets no closing-auction order); cash dividends are earned on the positions held
into an ex-date and paid on the pay date when that is a session.

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
    auctions: pd.DataFrame = None
    payouts: pd.DataFrame = None                     # cash dividends: sid, amount, ex/pay date
    reference_history: pd.DataFrame = None           # dated shares outstanding (known_date)

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
            self.payouts = pd.read_sql("select sid, amount, ex_date, pay_date "
                                       "from dividend_payouts", con)
        for frame in (self.splits, self.dividends):
            frame["effective_date"] = pd.to_datetime(frame["effective_date"], unit="s")
        for col in ("ex_date", "pay_date"):
            self.payouts[col] = pd.to_datetime(self.payouts[col], unit="s")
        pm = pd.read_parquet(path / "gapline" / "extended_hours.parquet")
        pm["session"] = pd.to_datetime(pm["session"]).dt.tz_localize(None)
        self.premarket = pm.set_index(["session", "sid"]).sort_index()
        history = path / "gapline" / "reference_history.parquet"
        if history.exists():
            rh = pd.read_parquet(history)
            rh["known_date"] = pd.to_datetime(rh["known_date"]).dt.tz_localize(None)
            self.reference_history = rh
        auctions = path / "gapline" / "auctions.parquet"
        if auctions.exists():
            au = pd.read_parquet(auctions)
            au["session"] = pd.to_datetime(au["session"]).dt.tz_localize(None)
            self.auctions = au.set_index(["session", "sid"]).sort_index()
        return self

    def close_print(self, session, sid) -> float:
        """The official close of the auction table (NaN when absent)."""
        if self.auctions is None or (session, sid) not in self.auctions.index:
            return np.nan
        return float(self.auctions.loc[(session, sid), "close_print"])

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

    def shares_outstanding(self, session) -> pd.Series:
        """Per sid: the count of the latest history row known strictly before ``session``
        (NaN without one; the undated snapshot of assets.parquet is never used)."""
        out = pd.Series(np.nan, index=self.assets.index, dtype=float)
        h = self.reference_history
        if h is None:
            return out
        for sid, rows in h[h["known_date"] < session].groupby("sid", sort=False):
            if sid in out.index:
                out[sid] = float(rows["shares_outstanding"].iloc[-1])  # the file's last row
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


def sell_gap_screen(b: Bundle, session, rank_within="all_assets", min_price=10.0,
                    max_price=2000.0) -> pd.DataFrame:
    """QuantRocket's sell-gap screen for ``session`` (see factors.screens.sell_gap_pipeline):
    common stock & top decile of 30-day average dollar volume & min_price < close < max_price
    (``None``: open end; both ``None`` is the buy-gap screen) & close > 20-day mean.

    ``rank_within``: ``"all_assets"`` takes the dollar-volume percentiles over every asset
    alive on the session (the post's ``percentile_between(90, 100)`` without a mask),
    ``"common_stock"`` over the common stocks only (the 2024 code)."""
    h = b.history(session, 63)
    close, low, volume = h["close"], h["low"], h["volume"]
    alive = b.alive(session)
    cs = b.common_stock(session) & alive
    adv = (close.iloc[-30:] * volume.iloc[-30:]).sum(axis=0) / 30.0  # NaN days count as 0
    ranked = {"all_assets": alive, "common_stock": cs}[rank_within]
    liquid = percentile_mask(adv, ranked, 90, 100)
    last = close.iloc[-1]
    mavg = close.iloc[-20:].mean(axis=0)  # NaN-skipping, like SimpleMovingAverage
    std = pd.Series(ewm_std(close.to_numpy(), 0.99), index=close.columns)
    screen = cs & liquid & (last > mavg)
    if min_price is not None:
        screen &= last > min_price
    if max_price is not None:
        screen &= last < max_price
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
class Order:
    """An open order: ``kind`` market | moo | moc | stop; ``stop_pct`` makes each fill of a
    market-on-open order create a buy/sell stop at the fill price x (1 +/- stop_pct), in cents."""

    sid: int
    remaining: int
    kind: str = "market"
    stop: float = np.nan
    triggered: bool = False
    stop_pct: float | None = None


@dataclass
class Book:
    """Cash, positions, open orders and fills of a simulated account."""

    cash: float
    positions: dict = field(default_factory=dict)   # sid -> shares
    cost: dict = field(default_factory=dict)        # sid -> average fill price
    last_price: dict = field(default_factory=dict)  # sid -> last traded close
    orders: list = field(default_factory=list)      # Order
    fills: list = field(default_factory=list)
    unclosed: list = field(default_factory=list)    # (dt, sid) of MOC orders without a print
    overnight: frozenset = frozenset()              # sids held overnight: no MOC order
    owed: list = field(default_factory=list)        # (pay date, cash) of earned dividends

    def value(self):
        return self.cash + sum(n * self.last_price.get(s, np.nan) for s, n in
                               self.positions.items() if n)

    def fill_bar(self, dt, bars, t, official=None):
        """Fill open orders on minute row ``t`` (published costs). ``official(sid)``: the
        closing print in the session's last bar, None in other bars."""
        used, exhausted = {}, set()
        first, last = t == 0, official is not None
        queue = list(self.orders)
        while queue:
            order = queue.pop(0)
            if order.remaining == 0:
                continue
            j = bars.col[order.sid]
            o, h, lo = bars.open[t, j], bars.high[t, j], bars.low[t, j]
            c, vol = bars.close[t, j], bars.volume[t, j]
            side = 1 if order.remaining > 0 else -1
            traded = bool(vol) and np.isfinite(c)
            auction = order.kind in ("moo", "moc")
            if order.kind == "moo":
                base = o if first and np.isfinite(o) and vol > 0 else None
            elif order.kind == "moc":
                base = official(order.sid) if last else None
                if last and base is None:
                    self.unclosed.append((dt, order.sid))
            elif order.kind == "stop" and not order.triggered:
                # a stop may also ask its trigger bar for volume (BracketOrder.volume_over)
                reached = np.isfinite(h) and np.isfinite(lo) and (
                    h >= order.stop if side > 0 else lo <= order.stop)
                if reached and vol > getattr(order, "volume_over", -np.inf):
                    order.triggered = True
                    base = order.stop if not np.isfinite(o) else \
                        (max(order.stop, o) if side > 0 else min(order.stop, o))
                else:
                    base = None
            elif order.kind == "limit":
                touched = (lo <= order.limit) if side > 0 else (h >= order.limit)
                base = order.limit if np.isfinite(h) and np.isfinite(lo) and touched else None
            else:  # market, or the rest of a triggered stop
                base = c if traded else None
            n = None if base is None else self.shares(order, vol, auction, used, exhausted)
            if not n:
                continue
            price = base * (1 + SLIPPAGE * side)
            self._apply(dt, order.sid, side * n, price)
            order.remaining -= side * n
            queue += self.after_fill(order, side, n, price)
        self.orders = [o for o in self.orders if o.remaining != 0]

    def after_fill(self, order, side, n, price) -> list:
        """The orders a fill creates: a market-on-open order's stop for these shares, in
        cents (``stop_pct``); returns those live in this same bar (from the opening print)."""
        if order.stop_pct is None:
            return []
        child = Order(order.sid, -side * n, "stop",
                      stop=round(price * (1 - side * order.stop_pct), 2))
        self.orders.append(child)
        return [child] if order.kind == "moo" else []

    @staticmethod
    def shares(order, vol, auction, used, exhausted):
        """Shares of ``order`` this bar: all of an auction order; else at most
        ``int(VOLUME_LIMIT x volume)`` per asset and bar, over all its orders (None: none)."""
        if auction:
            return abs(order.remaining)
        if order.sid in exhausted or not vol:
            return None
        room = int(VOLUME_LIMIT * vol) - used.get(order.sid, 0)
        if room <= 0:
            exhausted.add(order.sid)
            return None
        n = min(abs(order.remaining), room)
        used[order.sid] = used.get(order.sid, 0) + n
        return n

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
        self.orders = [o for o in self.orders if sids is not None and o.sid not in sids]

    def to_closing_auction(self):
        """The 15:50 MOC cutoff: cancel every open order, a MOC order for every position but
        the ``overnight`` ones."""
        self.cancel_all()
        self.orders = [Order(sid, -n, "moc") for sid, n in self.positions.items()
                       if n and sid not in self.overnight]

    def dividends(self, payouts, session):
        """Start of ``session``: earn the cash dividends going ex today on the shares held
        (short: owed), and receive those whose pay date is today."""
        for sid, amount, _, pay in payouts[payouts["ex_date"] == session].itertuples(index=False):
            if self.positions.get(sid, 0):
                self.owed.append((pay, self.positions[sid] * amount))
        self.cash += sum(cash for pay, cash in self.owed if pay == session)
        self.owed = [(pay, cash) for pay, cash in self.owed if pay != session]


def _official_close(b, session, bars):
    """The closing print: the auction table's, else the session's last trade (None: none)."""
    def official(sid):
        price = b.close_print(session, sid)
        if np.isfinite(price):
            return price
        # else the last trade, if it came in the session's last 30 minutes (else: halted)
        n = len(bars.minutes)
        j = bars.col[sid]
        traded = np.flatnonzero(np.isfinite(bars.close[:, j]) & (bars.volume[:, j] > 0))
        if not len(traded) or traded[-1] < n - 30:
            return None
        return float(bars.close[traded[-1], j])
    return official


def _walk_session(b, book, session, bars, on_bar):
    """Every minute of ``session``: fills, marks, then the strategy's ``on_bar(t)``; the MOC
    cutoff 10 minutes before the close; the closing auction in the last bar."""
    n = len(bars.minutes)
    t_moc = n - 11  # 15:50 (12:50 on half days)
    official = _official_close(b, session, bars)
    for t, dt in enumerate(bars.minutes):
        book.fill_bar(dt, bars, t, official if t == n - 1 else None)
        book.mark(bars, t)
        on_bar(t)
        if t == t_moc:
            book.to_closing_auction()
    book.cancel_all()  # end-of-day cancel


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


def _run_days(b: Bundle, start, end, book, day_fn):
    """Run ``day_fn`` over the sessions on ``book`` (a new account: a :class:`Book` or a
    subclass); returns the fills and the daily results."""
    sessions = b.sessions[(b.sessions >= pd.Timestamp(start)) & (b.sessions <= pd.Timestamp(end))]
    daily = []
    for session in sessions:
        start_value = book.value() if book.positions else book.cash
        # positions carried overnight are valued at the previous close until they trade
        n_before = len(book.fills)
        book.dividends(b.payouts, session)
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
    """Fills and daily results of QuantRocket's sell-gap under the published costs; exits in
    the closing auction."""

    def day(b, book, session):
        screen = sell_gap_screen(b, session)
        sids = sorted(set(screen.index) | set(book.positions))
        bars = b.minutes(session, sids)
        t_signal, t_entry = 0, 9  # 09:31, 09:40
        opens = _row_values(bars, t_signal, list(screen.index))
        sig = screen[(opens < screen["prior_low"] - screen["std"]) & (opens < screen["mavg"])]
        shorts = list(sig.sort_values("std", ascending=False).index[:top_n])

        def on_bar(t):
            if t == t_entry:
                for sid in shorts:
                    price = _ffill_price(b, book, bars, t, sid, session)
                    if np.isfinite(price) and price > 0:
                        n = _shares(-value, price)
                        if n:
                            book.orders.append(Order(sid, n))

        _walk_session(b, book, session, bars, on_bar)

    return _run_days(b, start, end, Book(cash=float(capital)), day)


# ----------------------------------------------------------------------------- microcap short
def microcap_short(b: Bundle, start, end, capital=1_000_000.0, min_price=0.10, max_price=5.0,
                   min_gap_sigmas=2.0, top_gaps=50, max_positions=5, short_fraction=0.5,
                   stop_pct=0.20, sigma_window=100, ema_window=60, hedge_weight=0.4,
                   hedge_symbol="SPY", hedge_weekday=0, hedge_minutes=5):
    """Fills and daily results of the penny gap-up short under the published costs: the 09:25
    decision from pre-market bars before 09:25, market-on-open shorts, a stop in cents at
    +stop_pct over each fill, market covers at 12:00, the rest in the closing auction; and the
    long hedge: on Mondays (``hedge_weekday``; a holiday Monday has none) at 09:35 a market
    order to hold ``int(hedge_weight x account value / price)`` shares, kept overnight and
    through the noon cover."""
    match = b.assets.index[b.assets["symbol"] == hedge_symbol] if hedge_weight > 0 else []
    hedge = int(match[-1]) if len(match) else None
    book = Book(cash=float(capital), overnight=frozenset() if hedge is None else {hedge})

    def day(b, book, session):
        screen = microcap_screen(b, session, 0.0, max_price, sigma_window=sigma_window,
                                 ema_window=ema_window)
        held = sorted(book.positions)
        sids = sorted(set(screen.index) | set(held) | ({hedge} - {None}))
        bars = b.minutes(session, sids)
        if len(screen):
            pm = b.premarket.reindex(pd.MultiIndex.from_product([[session], screen.index]))
            pm.index = screen.index
            price = pm["pmcut_last"].astype(float)
            gap = price / screen["prior_close"] - 1
            ok = ((price > min_price) & (price <= max_price) & (price >= screen["ema20"])
                  & (gap / screen["sigma"] >= min_gap_sigmas))
            cand = pd.DataFrame({"gap": gap, "price": price, "sid": screen.index,
                                 "dv": pm["pmcut_window_dollar_volume"].astype(float)},
                                index=screen.index)[ok]
            cand = cand.sort_values(["gap", "sid"], ascending=[False, True]).head(top_gaps)
            cand = cand[cand["dv"] > 0].sort_values(["dv", "sid"], ascending=[False, True])
            available = short_fraction * book.value()
            for sid, row in cand.head(max_positions).iterrows():
                n = round(available / len(cand) / row["price"])
                if n > 0:
                    book.orders.append(Order(sid, -n, "moo", stop_pct=stop_pct))
        t_hedge, t_cover = hedge_minutes - 1, 149  # 09:35, 12:00
        monday = session.weekday() == hedge_weekday

        def on_bar(t):
            if t == t_hedge and monday and hedge is not None:
                price = _ffill_price(b, book, bars, t, hedge, session)
                if np.isfinite(price) and price > 0:
                    target = int(hedge_weight * book.value() / price + 1e-9)
                    n = target - book.positions.get(hedge, 0)
                    if n:
                        book.orders.append(Order(hedge, n))
            if t == t_cover:
                book.orders = [o for o in book.orders if o.sid in book.overnight]
                for sid, n in list(book.positions.items()):
                    if sid not in book.overnight and \
                            np.isfinite(_ffill_price(b, book, bars, t, sid, session)):
                        book.orders.append(Order(sid, -n))

        _walk_session(b, book, session, bars, on_bar)

    return _run_days(b, start, end, book, day)


# ----------------------------------------------------------------------------- buy gap
def buy_gap(b: Bundle, start, end, capital=1_000_000.0, variant="original", top_n=0,
            value=50_000.0, rank_within="all_assets"):
    """Fills and daily results of QuantRocket's buy-on-gap post under the published costs:
    the buy-gap screen (sell-gap's without a price band), at 09:31 every candidate with
    ``open < prior_low - std`` (``revised``: and ``open > mavg``; ``top_n > 0``: the largest
    ``std`` only) is bought for ``value`` dollars with a market order (fills from the 09:32
    bar); every position goes to the closing auction."""

    def day(b, book, session):
        screen = sell_gap_screen(b, session, rank_within, None, None)
        sids = sorted(set(screen.index) | set(book.positions))
        bars = b.minutes(session, sids)
        t_signal = 0  # 09:31: the 09:30 bar's open; orders fill from the next bar
        opens = _row_values(bars, t_signal, list(screen.index))
        ok = opens < screen["prior_low"] - screen["std"]
        if variant == "revised":
            ok &= opens > screen["mavg"]
        sig = screen[ok]
        if top_n:
            sig = sig.sort_values("std", ascending=False, kind="stable").iloc[:top_n]
        buys = list(sig.index)

        def on_bar(t):
            if t == t_signal:
                for sid in buys:
                    price = _ffill_price(b, book, bars, t, sid, session)
                    if np.isfinite(price) and price > 0:
                        n = _shares(value, price)
                        if n:
                            book.orders.append(Order(sid, n))

        _walk_session(b, book, session, bars, on_bar)

    return _run_days(b, start, end, Book(cash=float(capital)), day)


# ----------------------------------------------------------------------------- gap and go
# The Gap & Go article (../shared/references/001_77709d99fd9024e0.txt, "GG"): the scanner's
# filters and score (GG 100-185), simulate_gap_trade's entry and exits (GG 553-587) and
# calculate_gap_position_size (GG 348-397), written out here from the article's code. The
# execution adds what the broker simulation needs and the article leaves out: a resting buy
# stop placed at 09:31 (the first bar after the pre-market is known), filled at the stop or at
# the open of a bar that opens above it, only in a bar trading more than VOLUME_CONFIRM x the
# average traded bar so far; each fill's stop (0.97 x the session VWAP through the previous
# bar) and target (+15% of the fill, a limit) cancel each other; partial fills under the 10%
# volume cap; the 15:45 market exit and the closing auction.

#: parameters as named by algorithms/gap_and_go.py (lower case), the article's values
GAP_AND_GO_PARAMS = {
    "variant": "article", "min_price": 1.0, "max_price": 50.0, "min_gap_pct": 10.0,
    "min_pm_volume": 500_000, "max_shares_outstanding": 50e6,
    "require_shares_outstanding": True, "min_avg_volume": 100_000.0, "avg_volume_window": 20,
    "min_rvol": 0.0, "min_score": 7.0, "catalyst": "none", "top_n": 5, "rank_by": "score",
    "entry_offset": 0.01, "volume_confirm": 2.0, "volume_average": "session",
    "entry_deadline_minutes": 375, "vwap_stop": 0.97, "stop_mode": "session",
    "target_pct": 0.15, "price_decimals": 2, "flat_minutes_before_close": 15,
    "sizing": "risk", "risk_pct": 0.015, "max_position_pct": 0.10,
    "position_fraction": 0.10, "max_gross": 0.50,
}
GAP_AND_GO_VARIANTS = {
    "article": {},
    "author": {"min_gap_pct": 12.0, "min_pm_volume": 750_000, "max_shares_outstanding": 40e6,
               "min_price": 2.0, "max_price": 40.0, "min_rvol": 3.0, "min_score": 8.0,
               "top_n": 5, "entry_deadline_minutes": 90},
    "loose": {"min_gap_pct": 10.0, "min_pm_volume": 50_000, "max_shares_outstanding": 100e6,
              "require_shares_outstanding": False, "min_avg_volume": 0.0, "min_score": 0.0,
              "entry_deadline_minutes": 90, "sizing": "fraction"},
}


def gap_and_go_params(**overrides) -> dict:
    """The article's values, then the variant's, then ``overrides`` (which always win)."""
    unknown = set(overrides) - set(GAP_AND_GO_PARAMS)
    if unknown:
        raise TypeError(f"unknown gap_and_go parameter(s) {sorted(unknown)}")
    q = dict(GAP_AND_GO_PARAMS)
    q.update(GAP_AND_GO_VARIANTS[overrides.get("variant", "article")])
    q.update(overrides)
    return q


def gng_score(gap_pct, rvol, float_shares, price):
    """score_gap_setup (GG 123-185) for one name, catalyst 'none' (1); NaN on a NaN input."""
    if any(not np.isfinite(x) for x in (gap_pct, rvol, float_shares, price)):
        return np.nan
    scores = {}
    scores["gap_size"] = 10 if gap_pct >= 30 else 8 if gap_pct >= 20 else \
        6 if gap_pct >= 15 else 4
    scores["volume"] = 10 if rvol >= 20 else 8 if rvol >= 10 else 6 if rvol >= 5 else 3
    scores["float"] = 10 if float_shares < 5_000_000 else 8 if float_shares < 15_000_000 else \
        6 if float_shares < 30_000_000 else 3
    scores["catalyst"] = 1
    if 5 <= price <= 20:
        scores["price_level"] = 10
    elif 2 <= price < 5 or 20 < price <= 30:
        scores["price_level"] = 7
    else:
        scores["price_level"] = 4
    weights = {"gap_size": 0.25, "volume": 0.30, "float": 0.20, "catalyst": 0.15,
               "price_level": 0.10}
    return sum(scores[f] * weights[f] for f in scores)


def gng_size(account_value, entry_price, stop_price, gap_pct, rvol, float_shares,
             risk_tolerance=0.015, max_pct=0.10):
    """calculate_gap_position_size (GG 348-397), sized at 09:31 (time multiplier 1)."""
    base_risk = account_value * risk_tolerance
    mult = {"gap_size": 1.0, "volume": 1.0, "float": 1.0, "time": 1.0}
    if gap_pct > 50:
        mult["gap_size"] = 0.5
    elif gap_pct > 30:
        mult["gap_size"] = 0.75
    elif gap_pct < 10:
        mult["gap_size"] = 1.25
    if rvol < 2:
        mult["volume"] = 0.5
    elif rvol > 10:
        mult["volume"] = 1.25
    if float_shares < 5_000_000:
        mult["float"] = 0.75
    elif float_shares > 30_000_000:
        mult["float"] = 1.25
    final = 1.0
    for m in mult.values():
        final *= m
    risk_per_share = entry_price - stop_price
    if risk_per_share <= 0:
        return 0
    shares = int(base_risk * final / risk_per_share)
    return min(shares, int(account_value * max_pct / entry_price))


def gap_and_go_candidates(b: Bundle, session, q) -> pd.DataFrame:
    """The article's scanner for ``session``: daily columns through D-1 (common stock, alive,
    a prior close, 20-day mean volume, shares outstanding) and the session's pre-market row;
    every rule evaluated here, ranked, the first ``top_n`` rows."""
    h = b.history(session, q["avg_volume_window"], fields=("close", "volume"))
    prior = h["close"].iloc[-1]
    avg_volume = h["volume"].mean(axis=0)
    shares = b.shares_outstanding(session)
    universe = (b.common_stock(session) & b.alive(session)).fillna(False)
    rows = []
    for sid in universe.index[universe.to_numpy()]:
        c = float(prior[sid])
        if not np.isfinite(c):
            continue
        key = (session, sid)
        pm = b.premarket.loc[key] if key in b.premarket.index else None
        if pm is None:
            continue
        price, high = float(pm["pm_last"]), float(pm["pm_high"])
        pm_volume = float(pm["pm_volume"])
        avg, so = float(avg_volume[sid]), float(shares[sid])
        gap_pct = (price - c) / c * 100 if c > 0 else np.nan
        rvol = pm_volume / (avg * 0.1) if avg > 0 else np.nan
        score = gng_score(gap_pct, rvol, so, price)
        ok = (q["min_price"] <= price <= q["max_price"] and gap_pct >= q["min_gap_pct"]
              and pm_volume >= q["min_pm_volume"] and avg >= q["min_avg_volume"]
              and (so <= q["max_shares_outstanding"]
                   or (np.isnan(so) and not q["require_shares_outstanding"]))
              and (q["min_rvol"] <= 0 or rvol >= q["min_rvol"])
              and (q["min_score"] <= 0 or score >= q["min_score"]) and np.isfinite(high))
        if ok:
            rows.append({"sid": sid, "price": price, "pm_high": high, "pm_volume": pm_volume,
                         "pm_bars": float(pm["pm_bars"]),
                         "pm_vwap": float(pm["pm_dollar_volume"]) / pm_volume,
                         "gap_pct": gap_pct, "rvol": rvol, "score": score, "shares": so,
                         "avg_volume": avg})
    first = {"score": ("score", "gap_pct"), "rvol": ("rvol", "score"),
             "gap": ("gap_pct", "score")}[q["rank_by"]]

    def key(r):  # best first, NaN last, then sid
        return tuple(-r[k] if np.isfinite(r[k]) else np.inf for k in first) + (r["sid"],)

    return pd.DataFrame(sorted(rows, key=key)[:q["top_n"]],
                        columns=["sid", "price", "pm_high", "pm_volume", "pm_bars", "pm_vwap",
                                 "gap_pct", "rvol", "score", "shares", "avg_volume"])


@dataclass
class BracketOrder(Order):
    """:class:`Order` plus a ``limit`` kind (fills at ``limit`` when touched), a volume
    condition on a stop's trigger bar (its volume must be > ``volume_over``), a bracket
    (each fill creates a sell stop at ``bracket_stop`` and a sell limit at the fill x (1 +
    ``bracket_target``), in cents, cancelling each other), OCO siblings and fill count."""

    limit: float = np.nan
    volume_over: float = -np.inf
    bracket_stop: float | None = None
    bracket_target: float | None = None
    parent: object = None
    siblings: list = field(default_factory=list)
    filled: int = 0


class BracketBook(Book):
    """:class:`Book` with the orders of :class:`BracketOrder`."""

    def after_fill(self, order, side, n, price) -> list:
        """One cancels the other; an entry's fill creates its stop and target (next bar on)."""
        if not isinstance(order, BracketOrder):
            return super().after_fill(order, side, n, price)
        order.filled += side * n
        for sibling in order.siblings:  # one cancels the other
            sibling.remaining = 0
        order.siblings = []
        if order.bracket_stop is not None:
            stop = BracketOrder(order.sid, -side * n, "stop",
                                stop=round(order.bracket_stop, 2), parent=order)
            target = BracketOrder(
                order.sid, -side * n, "limit", parent=order,
                limit=round(price * (1.0 + side * order.bracket_target), 2))
            stop.siblings, target.siblings = [target], [stop]
            self.orders += [stop, target]
        return []


@dataclass
class _GapTrade:
    entry_price: float
    order: BracketOrder = None
    pm_bar_volume: float = np.nan
    avg_volume: float = np.nan
    pv: float = 0.0
    volume: float = 0.0
    bars: int = 0
    fixed: set = field(default_factory=set)


def gap_and_go(b: Bundle, start, end, capital=1_000_000.0, **params):
    """Fills and daily results of gap_and_go (``params`` as algorithms/gap_and_go.py names
    them: ``variant="author"``, ``min_gap_pct=3.0``, ...) under the published costs."""
    q = gap_and_go_params(**params)
    dec = q["price_decimals"]

    def day(b, book, session):
        ranked = gap_and_go_candidates(b, session, q)
        ranked = ranked[~ranked["sid"].isin([s for s, n in book.positions.items() if n])]
        sids = sorted(set(ranked["sid"]) | set(book.positions))
        bars = b.minutes(session, sids)
        n_min = len(bars.minutes)
        t_flat = n_min - 1 - q["flat_minutes_before_close"]
        trades = {}
        state = {"flat": False}

        def tape(t):
            for sid, tr in trades.items():
                j = bars.col[sid]
                h, lo, c, v = bars.high[t, j], bars.low[t, j], bars.close[t, j], \
                    bars.volume[t, j]
                if np.isfinite(c) and v > 0:
                    tr.pv += (h + lo + c) / 3.0 * v
                    tr.volume += v
                    tr.bars += 1

        def average(tr):
            if q["volume_average"] == "daily":
                return tr.avg_volume
            return tr.volume / tr.bars if tr.bars else tr.pm_bar_volume

        def open_trades():
            for row in ranked.itertuples():
                pm_bar = row.pm_volume / row.pm_bars if row.pm_bars > 0 else np.nan
                trades[row.sid] = _GapTrade(round(row.pm_high + q["entry_offset"], dec),
                                            pm_bar_volume=pm_bar, avg_volume=row.avg_volume)
            tape(0)
            equity = book.value()
            for row in ranked.itertuples():
                tr = trades[row.sid]
                vwap = tr.pv / tr.volume if tr.volume > 0 else row.pm_vwap
                stop = round(q["vwap_stop"] * vwap, dec)
                if q["sizing"] == "risk":
                    n = gng_size(equity, tr.entry_price, stop, row.gap_pct, row.rvol,
                                 row.shares, q["risk_pct"], q["max_position_pct"])
                else:
                    n = int(q["position_fraction"] * equity / tr.entry_price)
                if n <= 0 or not stop > 0:
                    continue
                # never above max_gross x equity: today's buy stops at their entry prices
                gross = sum(abs(o.remaining) * trades[o.sid].entry_price for o in book.orders
                            if o.sid in trades and o is trades[o.sid].order)
                room = q["max_gross"] * equity - gross
                n = min(n, int(room // tr.entry_price)) if room > 0 else 0
                if n <= 0:
                    continue
                tr.order = BracketOrder(row.sid, n, "stop", stop=tr.entry_price,
                                        volume_over=_over(q, average(tr)),
                                        bracket_stop=stop, bracket_target=q["target_pct"])
                book.orders.append(tr.order)

        def manage(t):
            tape(t)
            for sid, tr in trades.items():
                entry = tr.order
                if entry is None:
                    continue
                held = book.positions.get(sid, 0)
                if entry.remaining != 0:
                    if held < entry.filled or t + 1 >= q["entry_deadline_minutes"]:
                        entry.remaining = 0  # cancelled
                    elif not entry.triggered:
                        entry.volume_over = _over(q, average(tr))
                if held <= 0 or not tr.volume > 0:
                    continue
                stop = round(q["vwap_stop"] * (tr.pv / tr.volume), dec)
                for o in book.orders:
                    if o.parent is entry and o.kind == "stop" and o.remaining != 0 and (
                            q["stop_mode"] == "session" or id(o) not in tr.fixed):
                        o.stop = stop
                        tr.fixed.add(id(o))
            book.orders = [o for o in book.orders if o.remaining != 0]

        def on_bar(t):
            if state["flat"]:
                return
            if t == 0:
                open_trades()
                return
            if trades:
                manage(t)
            if t == t_flat:  # 15:45: cancel, sell what is held at the market
                state["flat"] = True
                book.cancel_all()
                for sid, n in list(book.positions.items()):
                    if n and np.isfinite(_ffill_price(b, book, bars, t, sid, session)):
                        book.orders.append(Order(sid, -n))

        _walk_session(b, book, session, bars, on_bar)

    return _run_days(b, start, end, BracketBook(cash=float(capital)), day)


def _over(q, average):
    """The trigger bar's volume must exceed this (no condition when the average is unknown)."""
    return q["volume_confirm"] * average if np.isfinite(average) else -np.inf

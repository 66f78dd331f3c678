"""Fill prices and fill sizes (:class:`GaplineSlippage`), with the short-side rules as a backstop.

The fill price is the minute bar's close moved against the order by

* ``none``: nothing;
* ``fixed_bps``: ``slippage_bps`` of the close (identical to zipline's
  ``FixedBasisPointsSlippage``);
* ``spread``: an estimated half-spread (:mod:`algorithms.costs.spread`) x ``spread_factor``,
  and x ``ssr_spread_multiplier`` (default 2) while the asset's short-sale restriction is
  active (on every order in it, buys too: SSR days are the volatile, wide-spread ones).

Fill sizes are capped at ``int(volume_limit x bar volume)`` shares per minute bar, summed over
all orders in the asset (zipline's rule); the rest of the order stays open and keeps filling
on later bars (partial fills). Bars without volume or without a close never fill.

On the part of a sell order that opens or increases a short, the rules of
:mod:`algorithms.costs.short_rules` apply (locate; SSR per ``ssr_mode``: the short part waits
for an up-tick bar, is rejected, or is not restricted).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from zipline.finance.slippage import (
    EquitySlippageModel,
    LiquidityExceeded,
    fill_price_worse_than_limit_price,
)
from zipline.finance.transaction import create_transaction

from bundles.market import ET, session_of, trading_calendar

from ..execution.auctions import AuctionPrints, auction_impact, parkinson_sigma
from ..execution.bar_fills import base_price
from ..execution.book import OrderBook
from ..execution.styles import MarketOnClose, MarketOnOpen

from .config import CostConfig
from .short_rules import ShortSaleRules
from .spread import half_spread

log = logging.getLogger(__name__)

ONE_MINUTE = pd.Timedelta(minutes=1)
#: a name without a closing-cross print whose last trade is older than this at the close has
#: stopped trading (halted, delisted): its market-on-close order finds no cross
LAST_TRADE_WINDOW = pd.Timedelta(minutes=30)


class _Tape:
    """One asset's minute bars of the current session as the slippage model saw them.

    Updated from ``data.current`` on consecutive minutes (cheap); re-read from
    ``data.history`` after a gap or at a new session. Holds the last ``n`` highs/lows (spread
    estimator), the session low so far (SSR) and the last two traded prices (up-tick test).
    """

    __slots__ = ("session", "last_dt", "highs", "lows", "session_low", "prev_price", "price")

    def __init__(self):
        self.session = None
        self.last_dt = None


def _session_open_utc(algo, session):
    cal = getattr(algo, "trading_calendar", None)
    if cal is not None:
        return cal.session_open(session)
    open_et = pd.Timestamp(session) + pd.Timedelta(hours=9, minutes=30)
    return open_et.tz_localize(ET).tz_convert("UTC")


class _LazyBar:
    """The current bar of one asset for :func:`~algorithms.execution.bar_fills.base_price`:
    close and volume given, open/high/low read on first use (a resting stop that does not
    trigger reads one field a minute, not three)."""

    def __init__(self, data, asset, close: float, volume: float):
        self._data, self._asset = data, asset
        self.close, self.volume = close, volume

    def __getattr__(self, name):
        if name not in ("open", "high", "low"):
            raise AttributeError(name)
        value = float(self._data.current(self._asset, name))
        setattr(self, name, value)
        return value


class GaplineSlippage(EquitySlippageModel):
    """Slippage + partial fills + short-side backstop; see the module docstring.

    ``algo`` (set by :func:`apply_costs`) gives access to positions (to tell a short sale from
    a long sale) and to the blotter (to reject orders); without it every sell is treated as a
    short sale and rejected orders are only marked REJECTED.
    """

    def __init__(self, config: CostConfig, rules: ShortSaleRules | None = None, algo=None,
                 fill_log: list | None = None):
        super().__init__()
        self.config = config
        self.rules = rules or ShortSaleRules(config)
        self.algo = algo
        self.fill_log = fill_log  # (dt, asset, amount, price) of every fill, when given
        self.rejected: list[dict] = []
        self._pending = 0
        self._tapes: dict = {}
        self.book = OrderBook()
        self._session_bounds: dict = {}
        self._auction_prints = None

    def __repr__(self):
        c = self.config
        return (f"GaplineSlippage(slippage={c.slippage!r}, bps={c.slippage_bps}, "
                f"volume_limit={c.volume_limit}, estimator={c.spread_estimator!r}, "
                f"short_rules={c.short_rules}, ssr_mode={c.ssr_mode!r})")

    # -- helpers ------------------------------------------------------------------------
    def _position(self, asset) -> int:
        if self.algo is None:
            return 0
        pos = self.algo.metrics_tracker.positions.get(asset)
        return int(pos.amount) if pos is not None else 0

    def _reject(self, order, data, reason):
        log.warning("order %s %+d %s rejected at %s: %s", order.id[:8], order.open_amount,
                    getattr(order.asset, "symbol", order.asset), data.current_dt, reason)
        self.rejected.append({"dt": data.current_dt, "asset": order.asset,
                              "amount": order.open_amount, "reason": reason})
        if self.algo is not None:
            self.algo.blotter.cancel(order.id)
        order.reject(reason)

    def _needs_tape(self) -> bool:
        return self.config.slippage == "spread" or (
            self.rules.enabled and self.config.ssr_mode != "ignore")

    def tape(self, data, asset, close=None) -> _Tape:
        """The asset's :class:`_Tape` brought up to the current bar (``close``: the bar's close
        when the caller has already read it)."""
        dt = pd.Timestamp(data.current_dt)
        tape = self._tapes.get(asset)
        if tape is None:
            tape = self._tapes[asset] = _Tape()
        if tape.last_dt == dt:
            return tape
        session = session_of(data.current_dt)
        n = self.config.spread_window + 1
        if tape.session == session and tape.last_dt == dt - ONE_MINUTE:
            h = float(data.current(asset, "high"))
            lo = float(data.current(asset, "low"))
            c = float(data.current(asset, "close") if close is None else close)
            tape.highs = np.append(tape.highs[1:], h)
            tape.lows = np.append(tape.lows[1:], lo)
            if np.isfinite(lo):
                tape.session_low = lo if not np.isfinite(tape.session_low) else \
                    min(tape.session_low, lo)
            if np.isfinite(c):
                tape.prev_price, tape.price = tape.price, c
        else:
            since_open = int((dt - _session_open_utc(self.algo, session)) / ONE_MINUTE)
            k = max(n, since_open, 2)
            highs = data.history(asset, "high", k, "1m")
            lows = data.history(asset, "low", k, "1m")
            prices = np.asarray(data.history(asset, "price", 2, "1m"), dtype="float64")
            tape.highs = np.asarray(highs, dtype="float64")[-n:]
            tape.lows = np.asarray(lows, dtype="float64")[-n:]
            today = np.asarray(lows, dtype="float64")[-max(since_open, 1):]
            today = today[np.isfinite(today)]
            tape.session_low = float(today.min()) if len(today) else np.nan
            tape.prev_price = prices[0] if len(prices) == 2 else np.nan
            tape.price = prices[-1] if len(prices) else np.nan
        tape.session = session
        tape.last_dt = dt
        return tape

    def _uptick(self, data, asset) -> bool:
        t = self.tape(data, asset)
        return bool(np.isfinite(t.price) and np.isfinite(t.prev_price) and t.price > t.prev_price)

    def half_spread(self, data, asset, price) -> float:
        t = self.tape(data, asset)
        window = self.config.spread_window + (1 if self.config.spread_estimator ==
                                              "corwin_schultz" else 0)
        return half_spread(self.config, price, t.highs[-window:], t.lows[-window:])

    def fill_price(self, data, order, base, ssr: bool, short_sale: bool = False) -> float:
        """The fill price of ``order`` from its style's ``base`` price: the cost model's
        slippage on top, never better than ``base`` -- except an SSR short sale, which Rule 201
        only lets execute above the national best bid: it is posted at the ask estimate
        (``base`` + half-spread) and fills there when a bar trades up to it."""
        c = self.config
        if c.slippage == "none":
            return base
        if c.slippage == "fixed_bps":
            return base + base * (c.slippage_bps / 10000.0 * order.direction)
        hs = self.half_spread(data, order.asset, base) * c.spread_factor
        if ssr and short_sale:
            return base + hs  # at the ask estimate, never below the bid
        if ssr:
            hs *= c.ssr_spread_multiplier
        return base + hs * order.direction

    # -- bar position, official prints -----------------------------------------------------
    def _bar_position(self, dt) -> tuple[bool, bool]:
        """(first bar of the session, last bar of the session) for the minute ``dt``."""
        dt = pd.Timestamp(dt)
        key = dt.normalize()
        bounds = self._session_bounds.get(key)
        if bounds is None:
            cal = getattr(self.algo, "trading_calendar", None) or trading_calendar()
            session = cal.minute_to_session(dt)
            bounds = (cal.session_first_minute(session), cal.session_close(session))
            self._session_bounds = {key: bounds}
        return dt == bounds[0], dt == bounds[1]

    def _prints(self) -> AuctionPrints:
        if self._auction_prints is None:
            self._auction_prints = (AuctionPrints.for_algorithm(self.algo) if self.algo is not None
                                    else AuctionPrints(None))
        return self._auction_prints

    def official_close(self, data, asset) -> float | None:
        """The closing-cross price of ``asset`` today: the auction table's ``close_print``,
        else the session's last regular-session trade when it came in the last
        :data:`LAST_TRADE_WINDOW` of the session (a thin name without a cross); None for a
        name that stopped trading before that (halted, delisted): no cross takes its order."""
        session = session_of(data.current_dt)
        price = self._prints().value(session, asset.sid, "close_print")
        if np.isfinite(price):
            return price
        last = data.current(asset, "last_traded")
        if last is None or pd.isnull(last) or session_of(last) != session:
            return None
        if pd.Timestamp(data.current_dt) - pd.Timestamp(last) >= LAST_TRADE_WINDOW:
            return None
        price = float(data.current(asset, "price"))
        return price if np.isfinite(price) else None

    def _auction_volume(self, data, asset, style) -> float:
        """The cross's volume from the auction table; without one, the current bar's volume
        (the opening bar holds the opening cross; the last bar is the closest proxy the
        minute bars have for the closing one, and a smaller volume only costs more)."""
        session = session_of(data.current_dt)
        column = "open_volume" if isinstance(style, MarketOnOpen) else "close_volume"
        volume = self._prints().value(session, asset.sid, column)
        if not (np.isfinite(volume) and volume > 0):
            volume = float(data.current(asset, "volume") or 0.0)
        return volume

    def _daily_sigma(self, data, asset) -> float:
        """Parkinson volatility of the previous session's range, else today's so far."""
        days = data.history(asset, ["high", "low"], 2, "1d")
        for i in (0, 1):
            sigma = parkinson_sigma(float(days["high"].iloc[i]), float(days["low"].iloc[i]))
            if np.isfinite(sigma):
                return sigma
        return float("nan")

    def auction_impact(self, data, asset, style, price, shares) -> float:
        """Dollars per share beyond the print (see :mod:`algorithms.execution.auctions`)."""
        c = self.config
        if c.auction_impact_y <= 0:
            return 0.0
        return auction_impact(price, shares, self._auction_volume(data, asset, style),
                              self._daily_sigma(data, asset), c.auction_impact_y,
                              c.auction_impact_cap)

    def _report_unclosed(self, order, data):
        """A market-on-close order that found no closing print (halted, delisted)."""
        log.warning("%s: no closing print for %s; %+d shares stay open", data.current_dt,
                    getattr(order.asset, "symbol", order.asset), order.open_amount)
        self.book.unclosed.append({"dt": data.current_dt, "asset": order.asset,
                                   "amount": order.open_amount})
        record = getattr(self.algo, "record", None)
        if record is not None:
            today = [u for u in self.book.unclosed if u["dt"] == data.current_dt]
            record(unclosed_at_close=len(today))

    # -- brackets and one-cancels-other -----------------------------------------------------
    def _after_fill(self, order, txn) -> list:
        """Cancel the fill's OCO siblings; create its bracket children. Returns the children
        (zipline orders) so an opening-auction parent's children see the opening bar too."""
        book = self.book
        blotter = getattr(self.algo, "blotter", None)
        if blotter is None:
            return []
        for sibling in book.oco.pop(order.id, ()):
            if sibling in blotter.orders and blotter.orders[sibling].open:
                blotter.cancel(sibling)
            book.forget(sibling)
        bracket = book.brackets.get(order.id)
        if bracket is None:
            return []
        from zipline.finance.execution import MarketOrder

        children, ids = [], []
        for amount, style in bracket.children(txn.price, txn.amount):
            child_id = blotter.order(order.asset, amount, MarketOrder())
            if child_id is None:
                continue
            book.register(child_id, style)
            book.parent_of[child_id] = order.id
            ids.append(child_id)
            children.append(blotter.orders[child_id])
        book.link_oco(ids)
        return children

    # -- zipline hooks --------------------------------------------------------------------
    def simulate(self, data, asset, orders_for_asset):
        """zipline's ``SlippageModel.simulate`` with gapline's order styles: each order's base
        price comes from its style and the bar (:func:`~algorithms.execution.bar_fills.
        base_price`), auction orders fill whole at the official prints, then the short-side
        checks, the volume cap and the slippage apply. Iterates a copy of the order list
        (rejections and cancels change the blotter's)."""
        self._volume_for_bar = 0
        self._pending = 0
        if not orders_for_asset:
            return
        # each field read once per bar and handed down: this runs per open order per minute
        volume = data.current(asset, "volume")
        price = data.current(asset, "close")
        if self._needs_tape():
            self.tape(data, asset, price)  # every bar while orders are open, trades or not
        dt = data.current_dt
        first_bar = last_bar = False
        bar = None
        if self.book.styles:
            first_bar, last_bar = self._bar_position(dt)
        queue = list(orders_for_asset)
        exhausted = False  # the bar's volume cap is used up; only auction orders still fill
        while queue:
            order = queue.pop(0)
            if order.open_amount == 0 or not order.open:
                continue
            style = self.book.style(order.id)
            if style is None:  # a plain zipline order: zipline's own rules on the close
                if exhausted or not volume or pd.isnull(price):
                    continue
                order.check_triggers(price, dt)
                if not order.triggered:
                    continue
                base = price
            else:
                if bar is None:
                    bar = _LazyBar(data, asset, float(price), float(volume) if volume else 0.0)
                official = (self.official_close(data, asset)
                            if isinstance(style, MarketOnClose) and last_bar else None)
                base, triggered = base_price(style, order.direction, bar, first_bar=first_bar,
                                             last_bar=last_bar, official_close=official,
                                             triggered=order.id in self.book.triggered)
                if triggered:
                    self.book.triggered.add(order.id)
                if base is None:
                    if isinstance(style, MarketOnClose) and last_bar:
                        self._report_unclosed(order, data)
                    continue
            auction = isinstance(style, (MarketOnOpen, MarketOnClose))
            if exhausted and not auction:
                continue
            try:
                execution_price, execution_volume = self.process_order(
                    data, order, price, volume, base=base, style=style)
            except LiquidityExceeded:
                exhausted = True
                continue
            if execution_price is None or not execution_volume:
                continue
            txn = create_transaction(order, dt, execution_price, execution_volume)
            if not auction:
                self._volume_for_bar += abs(txn.amount)
            self._pending += txn.amount
            if self.fill_log is not None:
                self.fill_log.append((dt, asset, txn.amount, txn.price))
            yield order, txn
            children = self._after_fill(order, txn)
            if isinstance(style, MarketOnOpen):
                queue.extend(children)  # live from the opening print: this bar counts

    def process_order(self, data, order, close=None, volume=None, base=None, style=None):
        """``(price, signed shares)`` of ``order`` in this bar, or ``(None, None)``.

        ``base``: the style's base price (default: the bar's close, zipline's market fill);
        ``style``: the gapline style (auction orders fill whole, outside the volume cap)."""
        c = self.config
        asset = order.asset
        if close is None:
            close = data.current(asset, "close")
        if volume is None:
            volume = data.current(asset, "volume")
        if base is None:
            base = close
        auction = isinstance(style, (MarketOnOpen, MarketOnClose))
        want = abs(order.open_amount)
        allowed = want
        ssr = False
        short_sale = False
        rules = self.rules
        if rules.enabled:
            if c.ssr_mode != "ignore":
                ssr = rules.ssr_active(data, asset, self.tape(data, asset).session_low)
            if order.direction < 0:
                held = self._position(asset) + self._pending
                long_part = max(0, min(want, held))
                short_part = want - long_part
                if short_part > 0 and ssr and long_part > 0:
                    # one price per fill: under SSR the long sale goes first, the short part
                    # (which may only print above the bid) waits for a later bar
                    allowed = long_part
                elif short_part > 0:
                    short_sale = True
                    blocked_reason = None
                    if not rules.locatable(asset, close if np.isfinite(close) else base):
                        blocked_reason = "no locate (hard to borrow)"
                    elif ssr and (c.ssr_mode == "reject" or auction):
                        # an auction order cannot wait for an up-tick: Rule 201 keeps it out
                        blocked_reason = "short-sale restriction (SSR) active"
                    elif ssr and c.ssr_mode == "wait" and not self._uptick(data, asset):
                        allowed = long_part  # the short part waits for an up-tick bar
                    if blocked_reason is not None:
                        if long_part == 0:
                            self._reject(order, data, blocked_reason)
                            return None, None
                        allowed = long_part
                if allowed == 0:
                    return None, None
        if auction or c.volume_limit is None:
            shares = allowed
        else:
            if not volume:
                return None, None
            max_volume = int(c.volume_limit * volume)
            room = max_volume - self.volume_for_bar
            if room <= 0:
                raise LiquidityExceeded()
            shares = min(allowed, room)
        if shares <= 0:
            return None, None
        fill = self.fill_price(data, order, base, ssr, short_sale)
        if ssr and short_sale and c.slippage == "spread" \
                and not float(data.current(asset, "high")) >= fill:
            return None, None  # posted at the ask: waits for a bar that trades up to it
        if auction:
            fill += order.direction * self.auction_impact(data, asset, style, base, shares)
        if style is None and fill_price_worse_than_limit_price(fill, order):
            return None, None
        return fill, int(shares) * int(order.direction)

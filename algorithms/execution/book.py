"""Placing gapline orders: the style of each zipline order id, stop triggers, attached children.

zipline keeps only market/limit/stop prices on an ``Order``; :class:`OrderBook` keeps the
gapline style (:mod:`.styles`) of each order id, whether its stop has triggered, the
protective children a fill must create, and one-cancels-other groups. The cost model
(:class:`algorithms.costs.slippage.GaplineSlippage`) reads it on every bar.

:func:`place` is the one way an algorithm sends an order:

* market-on-open orders go in before the open: from ``before_trading_start``, straight to
  zipline's blotter (``TradingAlgorithm.order`` refuses orders there, but an MOO order is only
  executable at the opening cross, which comes after);
* market-on-close orders are refused after the exchanges' MOC cutoff (15:50);
* every order can carry ``max_gross`` (the strategy's stated gross exposure, a multiple of
  the portfolio value): the order is cut so that positions plus open orders stay within it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import pandas as pd

from .styles import MOC_CUTOFF_MINUTES, Limit, MarketOnClose, MarketOnOpen, Stop

log = logging.getLogger(__name__)


@dataclass
class Bracket:
    """Children a parent's fill creates for the filled shares: a protective stop at
    ``fill x (1 +/- stop_pct)`` and/or a target at ``fill x (1 -/+ target_pct)`` (as Limit),
    or absolute prices; stop and target cancel each other (OCO). Computed prices are rounded
    to ``decimals`` (brokers take stops in cents: 2)."""

    stop_pct: float | None = None
    target_pct: float | None = None
    stop_price: float | None = None
    target_price: float | None = None
    decimals: int = 6

    def __post_init__(self):
        for name in ("stop_pct", "target_pct"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")

    def children(self, fill_price: float, filled: int) -> list:
        """(amount, style) of the closing orders for ``filled`` shares bought/sold at
        ``fill_price``; a long's stop sits below, a short's above."""
        side = 1 if filled > 0 else -1
        out = []
        stop = self.stop_price
        if stop is None and self.stop_pct is not None:
            stop = fill_price * (1.0 - side * self.stop_pct)
        if stop is not None:
            out.append((-filled, Stop(round(stop, self.decimals))))
        target = self.target_price
        if target is None and self.target_pct is not None:
            target = fill_price * (1.0 + side * self.target_pct)
        if target is not None:
            out.append((-filled, Limit(round(target, self.decimals))))
        return out


@dataclass
class OrderBook:
    """gapline's view of the open orders: style, trigger state, brackets, OCO groups."""

    styles: dict = field(default_factory=dict)
    triggered: set = field(default_factory=set)
    brackets: dict = field(default_factory=dict)
    oco: dict = field(default_factory=dict)       # order id -> ids cancelled when it fills
    parent_of: dict = field(default_factory=dict)  # child id -> parent id
    unclosed: list = field(default_factory=list)   # MOC orders without a closing print

    def style(self, order_id):
        return self.styles.get(order_id)

    def register(self, order_id, style, bracket: Bracket | None = None):
        if style is not None:
            self.styles[order_id] = style
        if bracket is not None:
            self.brackets[order_id] = bracket

    def amend(self, order_id, style):
        """Replace a resting order's style (e.g. a trailing or VWAP stop moved each bar)."""
        if order_id in self.styles:
            self.styles[order_id] = style

    def forget(self, order_id):
        for table in (self.styles, self.brackets, self.oco, self.parent_of):
            table.pop(order_id, None)
        self.triggered.discard(order_id)

    def link_oco(self, ids):
        ids = [i for i in ids if i is not None]
        for i in ids:
            self.oco[i] = [j for j in ids if j != i]


def _algo(context):
    """The TradingAlgorithm behind ``context`` (zipline passes the algorithm itself)."""
    return context


def book_of(context) -> OrderBook:
    costs = getattr(context, "costs", None)
    if costs is None:
        raise RuntimeError("gapline orders need the cost models installed "
                           "(algorithms.common.prepare / algorithms.costs.apply_costs)")
    return costs.book


def _order_price(order, style, asset_price: float) -> float:
    """What an open order is worth per share: its stop/limit price, else its asset's price."""
    for attr in ("stop_price", "limit_price"):
        value = getattr(style, attr, None)
        if value is not None:
            return float(value)
    return asset_price


def _gross_room(context, asset, amount, price, max_gross) -> int:
    """The part of ``amount`` that keeps |positions| + |opening orders| <= max_gross x equity.

    Each open order is valued at its own stop/limit price, else its own asset's last price;
    orders that reduce a position (stops, targets, covers) do not add exposure."""
    algo = _algo(context)
    book = book_of(context)
    held = {a: p for a, p in algo.portfolio.positions.items() if p.amount}
    if asset in held and (held[asset].amount > 0) != (amount > 0):
        return amount  # closing orders never count against the limit
    equity = float(algo.portfolio.portfolio_value)
    gross = sum(abs(p.amount * p.last_sale_price) for p in held.values())
    current = algo.trading_client.current_data
    for a, orders in algo.blotter.open_orders.items():
        position = held[a].amount if a in held else 0
        asset_price = price if a == asset else float(current.current(a, "price"))
        for o in orders:
            if not o.open or (position and (position > 0) != (o.open_amount > 0)):
                continue  # a closing order
            px = _order_price(o, book.style(o.id), asset_price)
            gross += abs(o.open_amount) * (px if math.isfinite(px) else 0.0)
    room = max_gross * equity - gross
    if room <= 0 or not math.isfinite(price) or price <= 0:
        return 0
    cap = int(room // price)
    return amount if abs(amount) <= cap else int(math.copysign(cap, amount))


def place(context, asset, amount: int, style=None, bracket: Bracket | None = None,
          max_gross: float | None = None, price: float | None = None):
    """Send ``amount`` shares of ``asset`` with a gapline ``style`` (None: market); returns the
    order id, or None when nothing was sent (zero shares, MOC after the cutoff, no room under
    ``max_gross``). ``price``: the price used for the gross-exposure check (default: current)."""
    from zipline.finance.execution import MarketOrder

    algo = _algo(context)
    amount = int(amount)
    if max_gross is not None and amount:
        px = float(price) if price is not None else float(algo.trading_client.current_data
                                                           .current(asset, "price"))
        amount = _gross_room(context, asset, amount, px, max_gross)
    if amount == 0:
        return None
    book = book_of(context)
    now = pd.Timestamp(algo.get_datetime())
    if isinstance(style, MarketOnClose):
        session = algo.trading_calendar.minute_to_session(now)
        cutoff = algo.trading_calendar.session_close(session) - pd.Timedelta(
            minutes=MOC_CUTOFF_MINUTES)
        if now > cutoff:
            log.warning("%s: MOC order for %s after the %d-minute cutoff refused", now,
                        getattr(asset, "symbol", asset), MOC_CUTOFF_MINUTES)
            return None
    if getattr(algo, "_in_before_trading_start", False):
        if not isinstance(style, MarketOnOpen):
            raise ValueError("only MarketOnOpen orders may be placed before the open")
        order_id = algo.blotter.order(asset, amount, MarketOrder())
    else:
        if isinstance(style, MarketOnOpen):
            raise ValueError("MarketOnOpen orders must be placed before the open "
                             "(in before_trading_start)")
        order_id = algo.order(asset, amount)
    if order_id is not None:
        book.register(order_id, style, bracket)
    return order_id


def place_value(context, asset, value: float, style=None, bracket: Bracket | None = None,
                max_gross: float | None = None, price: float | None = None):
    """:func:`place` for ``value`` dollars (negative: sell/short) at ``price`` (default: the
    current price; before the open, the caller passes its own reference price)."""
    algo = _algo(context)
    if price is None:
        price = float(algo.trading_client.current_data.current(asset, "price"))
    if not (math.isfinite(price) and price > 0):
        return None
    return place(context, asset, int(value / price), style, bracket, max_gross, price)

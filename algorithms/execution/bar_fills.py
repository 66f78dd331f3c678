"""Where a broker fills each order style inside one minute bar: the base price, before costs.

Pure functions of the bar (open, high, low, close) and the order's side, so every rule is
tested on hand-built bars. ``direction`` is +1 for a buy, -1 for a sell. ``None`` means the
order does not fill in this bar.

=================  =====================================  ===================================
style              fills when                             base price
=================  =====================================  ===================================
market             the bar traded                         the bar's close (zipline's rule)
MarketOnOpen       the session's first bar                its open (the opening print)
MarketOnClose      the session's last bar                 the official close
Stop (buy)         high >= stop                           max(stop, open): a gap through
Stop (sell)        low <= stop                            min(stop, open)  fills at the open
  with min_volume  ... and volume >= min_volume           (the same)
Limit (buy)        low <= limit                           limit
Limit (sell)       high >= limit                          limit
StopLimit          as Stop, then as Limit                 the Stop price if within the limit
=================  =====================================  ===================================
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .styles import Limit, MarketOnClose, MarketOnOpen, Stop, StopLimit


class Bar(NamedTuple):
    open: float
    high: float
    low: float
    close: float
    volume: float


def _finite(*values) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def stop_triggered(stop_price: float, direction: int, bar: Bar, min_volume: float = 0.0) -> bool:
    """A buy stop triggers when the bar's high reaches the stop, a sell stop on its low; with
    ``min_volume`` > 0 only on a bar that also trades at least ``min_volume`` shares."""
    if min_volume > 0 and not (_finite(bar.volume) and bar.volume >= min_volume):
        return False
    if direction > 0:
        return _finite(bar.high) and bar.high >= stop_price
    return _finite(bar.low) and bar.low <= stop_price


def stop_price_in_bar(stop_price: float, direction: int, bar: Bar) -> float:
    """The stop's fill price in its trigger bar: the stop, or the open when the bar opened
    through it (worse for the order either way)."""
    if not _finite(bar.open):
        return stop_price
    return max(stop_price, bar.open) if direction > 0 else min(stop_price, bar.open)


def limit_touched(limit_price: float, direction: int, bar: Bar) -> bool:
    if direction > 0:
        return _finite(bar.low) and bar.low <= limit_price
    return _finite(bar.high) and bar.high >= limit_price


def within_limit(price: float, limit_price: float, direction: int) -> bool:
    return price <= limit_price if direction > 0 else price >= limit_price


def base_price(style, direction: int, bar: Bar, *, first_bar: bool, last_bar: bool,
               official_close: float | None = None, triggered: bool = False):
    """``(price, triggered)``: the base fill price of an order of ``style`` in ``bar`` (None
    when it does not fill here) and whether a stop(-limit) has triggered by this bar.

    ``triggered``: the order's stop already triggered in an earlier bar (it then behaves as a
    market order for :class:`Stop`, as a limit order for :class:`StopLimit`).
    ``official_close``: the closing-cross price for :class:`MarketOnClose` in the last bar.
    """
    if style is None:
        return (bar.close if _finite(bar.close) and bar.volume > 0 else None), triggered
    if isinstance(style, MarketOnOpen):
        ok = first_bar and _finite(bar.open) and bar.volume > 0
        return (bar.open if ok else None), triggered
    if isinstance(style, MarketOnClose):
        ok = last_bar and official_close is not None and _finite(official_close)
        return (official_close if ok else None), triggered
    if isinstance(style, Limit):
        touched = limit_touched(style.limit_price, direction, bar)
        return (style.limit_price if touched else None), triggered
    if isinstance(style, Stop):
        if triggered:  # the rest of a triggered stop is a market order
            return (bar.close if _finite(bar.close) and bar.volume > 0 else None), True
        if not stop_triggered(style.stop_price, direction, bar, style.min_volume):
            return None, False
        return stop_price_in_bar(style.stop_price, direction, bar), True
    if isinstance(style, StopLimit):
        if triggered:
            touched = limit_touched(style.limit_price, direction, bar)
            return (style.limit_price if touched else None), True
        if not stop_triggered(style.stop_price, direction, bar):
            return None, False
        price = stop_price_in_bar(style.stop_price, direction, bar)
        if within_limit(price, style.limit_price, direction):
            return price, True
        # opened through the limit too: the rest of the bar may still come back to it
        touched = limit_touched(style.limit_price, direction, bar)
        return (style.limit_price if touched else None), True
    raise TypeError(f"unknown order style {style!r}")

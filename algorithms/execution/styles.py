"""The order styles gapline simulates (one frozen dataclass each).

zipline's blotter only knows market/limit/stop prices checked against the bar CLOSE; gapline
places these orders as zipline market orders and keeps the style beside the order id
(:class:`~algorithms.execution.book.OrderBook`), so the cost model can decide each bar how
the broker would have executed it (:func:`~algorithms.execution.bar_fills.base_price`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def _check_price(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite price, got {value!r}")


@dataclass(frozen=True)
class MarketOnOpen:
    """Market-on-open: the whole quantity at the opening print (the session's first regular
    trade, the open of Polygon's 09:30 bar = zipline's 09:31 bar). Placed before the open
    (``before_trading_start``), as exchanges accept MOO orders only before the opening cross.
    A bracket attached to it (:class:`~algorithms.execution.book.Bracket`) is live from the
    opening print on, so the opening bar's own high/low can trigger its stop.
    """


@dataclass(frozen=True)
class MarketOnClose:
    """Market-on-close: the whole remaining quantity at the official close (the closing
    cross), in the session's last minute. Exchanges stop taking MOC orders 10 minutes before
    the close (NYSE Rule 7.35B and Nasdaq Rule 4754: no MOC entry after 3:50 p.m. ET); see
    :data:`MOC_CUTOFF_MINUTES`."""


#: minutes before the close after which MOC orders are not accepted (NYSE and Nasdaq: 15:50
#: on a full day, 12:50 on a half day)
MOC_CUTOFF_MINUTES = 10


@dataclass(frozen=True)
class Stop:
    """Resting stop: a buy stop triggers on a bar whose HIGH reaches ``stop_price``, a sell
    stop on a bar whose LOW reaches it; fills at the stop price, or at the bar's open when the
    bar opens through the stop (a gap through fills at the first price available).

    ``min_volume`` (default 0: no condition) makes it a volume-confirmed stop: it triggers
    only on a bar that reaches the price AND trades at least ``min_volume`` shares (a breakout
    "on volume"); a bar that reaches the price on less volume leaves it resting. Once triggered
    it behaves as any stop. Amend it bar by bar (``OrderBook.amend``) to move the threshold."""

    stop_price: float
    min_volume: float = 0.0

    def __post_init__(self):
        _check_price("stop_price", self.stop_price)
        v = self.min_volume
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"min_volume must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class Limit:
    """Resting limit (a target): a buy limit fills when a bar's LOW reaches ``limit_price``, a
    sell limit when its HIGH does, at the limit price (no price improvement assumed when the
    bar opens through it: a touch is all the bar proves)."""

    limit_price: float

    def __post_init__(self):
        _check_price("limit_price", self.limit_price)


@dataclass(frozen=True)
class StopLimit:
    """Stop-limit: triggers as :class:`Stop`; once triggered it is a :class:`Limit` at
    ``limit_price`` (in the trigger bar it fills at the stop, or at the open when the bar
    opens through the stop, only if that price is within the limit)."""

    stop_price: float
    limit_price: float

    def __post_init__(self):
        _check_price("stop_price", self.stop_price)
        _check_price("limit_price", self.limit_price)

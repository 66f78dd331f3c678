"""Borrow fees and locate fees on short positions, booked at the end of each session.

As brokers charge them:

* **Borrow** accrues on shorts held across a session boundary, at ``annual_rate / 360`` per
  **calendar day** (the money-market actual/360 convention): for each short still open at the
  end of session D, ``shares x close(D) x annual_rate / 360 x days``, where ``days`` is the
  number of calendar days from D to the next session of the trading calendar
  (:func:`bundles.market.trading_calendar`): 1 for Wednesday -> Thursday, 3 for Friday ->
  Monday, 2 over a mid-week holiday (2024-07-03 -> 2024-07-05). The shares stay on loan every
  calendar day until the next session can return them (settlement-date convention), so
  weekends and holidays count. A short opened and covered within one session pays **no**
  borrow. ``annual_rate`` is :meth:`~algorithms.costs.short_rules.ShortSaleRules.
  borrow_annual_rate` at the close (``borrow_annual_rate``; ``htb_borrow_annual_rate`` for
  hard-to-borrow names; or the HTB CSV's rate).
* **Locate**: ``locate_fee_per_share`` x the shares of a hard-to-borrow short opened or
  increased during the session (the session's peak short beyond the short held at the open),
  once per session: a located quantity is good for the day, so covering and re-shorting the
  same shares does not pay again (TradeZero's "Pre-Borrow (PB) Locates ... allow multiple uses
  throughout the trading day"). HTB is judged at the price of the fill that opened the new
  short. Easy-to-borrow shorts need no paid locate.

Sources for the convention: Ally Invest, "How are hard-to-borrow fees calculated?" (an
annualized fee "charged on a prorated basis depending on how many days you hold the position
short"; "If you open and close a short stock position intraday (meaning not held overnight),
you will not be subject to a hard-to-borrow fee"); EDDID Financial USA's fee schedule ("Daily
Hard-to-Borrow Fee = Collateral Amount Per Share x Share Quantity x Annual Hard-to-Borrow Rate
/ 360"). Brokers compute the collateral as 102% of the close rounded up to the dollar (EDDID;
Interactive Brokers' pre-borrow page: "102% x mark price rounded up to the nearest 1.00"); we
charge on the plain close (a simplification of at most a few percent of the fee).

Fees are booked at the end of the session (zipline's session-end account-control hook,
:class:`BorrowFeeCharger`) as a cash commission against the asset, so they show up in that
day's ``pnl``; the day's total (borrow + locate) is recorded as the perf column ``borrow_fee``
and :attr:`~algorithms.costs.Costs.borrow_log` lists every charge (``kind`` ``"borrow"`` or
``"locate"``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from zipline.finance.controls import AccountControl

from bundles.market import trading_calendar

from .short_rules import ShortSaleRules

if TYPE_CHECKING:
    from . import Costs

DAY_COUNT = 360  # actual/360: annual rate / 360 per calendar day


def days_to_next_session(session) -> int:
    """Calendar days from ``session`` (a session label) to the next session of the trading
    calendar: 1 on a Wednesday, 3 on a Friday, 2 before a mid-week holiday."""
    day = pd.Timestamp(session)
    if day.tz is not None:
        day = day.tz_localize(None)
    day = day.normalize()
    try:
        nxt = pd.Timestamp(trading_calendar().next_session(day))
    except Exception:  # past the calendar's last session: next weekday
        nxt = day + pd.offsets.BDay(1)
    if nxt.tz is not None:
        nxt = nxt.tz_localize(None)
    return int((nxt.normalize() - day).days)


def borrow_charges(shorts, closes, days: int, rules: ShortSaleRules):
    """Borrow accrued on the shorts still open at the end of a session.

    ``shorts``: ``{asset: short shares (> 0)}`` held at the close; ``closes``: ``{asset:
    session close}``; ``days``: calendar days until the next session. Returns ``[{kind:
    "borrow", asset, shares, price, notional, annual_rate, days, fee}, ...]`` with ``fee =
    shares x close x annual_rate / 360 x days`` (assets without a finite close are skipped).
    """
    out = []
    for asset, shares in shorts.items():
        shares = abs(int(shares))
        price = float(closes.get(asset, np.nan))
        if shares == 0 or not np.isfinite(price) or price <= 0 or days <= 0:
            continue
        rate = rules.borrow_annual_rate(asset, price)
        notional = shares * price
        fee = notional * rate / DAY_COUNT * days
        if fee > 0:
            out.append({"kind": "borrow", "asset": asset, "shares": shares, "price": price,
                        "notional": notional, "annual_rate": rate, "days": int(days),
                        "fee": fee})
    return out


def locate_charges(session_fills, start_positions, rules: ShortSaleRules,
                   fee_per_share: float):
    """Locate fees of one session.

    ``session_fills``: ``[(dt, asset, amount, price), ...]`` in time order;
    ``start_positions``: ``{asset: shares held at the open}``. For each asset, the new short
    shares are the session's peak short beyond the short held at the open; they pay
    ``fee_per_share`` once when the asset is hard to borrow at the price of the fill that
    opened them. Returns ``[{kind: "locate", asset, shares, price, fee_per_share, fee}, ...]``.
    """
    if fee_per_share <= 0 or not rules.enabled:
        return []
    out = []
    assets = dict.fromkeys(f[1] for f in session_fills)
    for asset in assets:
        pos = int(start_positions.get(asset, 0))
        open_short = max(-pos, 0)
        peak, price = open_short, None
        for _, a, amount, fill_price in session_fills:
            if a is not asset and a != asset:
                continue
            pos += int(amount)
            if -pos > peak:
                if price is None:
                    price = float(fill_price)
                peak = -pos
        new = peak - open_short
        if new <= 0 or not rules.is_htb(asset, price):
            continue
        out.append({"kind": "locate", "asset": asset, "shares": new, "price": price,
                    "fee_per_share": float(fee_per_share), "fee": new * float(fee_per_share)})
    return out


class BorrowFeeCharger(AccountControl):
    """Charges borrow and locate fees at the end of each session (uses zipline's session-end
    account-control hook; it never fails the algorithm)."""

    def __init__(self, costs: "Costs"):
        super().__init__()
        self.costs = costs

    def validate(self, _portfolio, _account, _algo_datetime, _algo_current_data):
        self.costs.end_of_session(_portfolio, _algo_datetime, _algo_current_data)

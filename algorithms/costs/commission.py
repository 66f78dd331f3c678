"""Per-fill fees (:class:`GaplineCommission`).

``ecn_fee_per_share`` on every share traded; on sells only (long sales and short sales alike)
the SEC Section 31 fee (rate x dollar amount sold) and the FINRA TAF (per share sold, capped
per trade). Each zipline fill is one trade (one execution), so the TAF cap applies per fill.

The SEC rate and the TAF are the ones in force on the fill's trade date (``transaction.dt`` in
New York time), from the dated tables of :mod:`~algorithms.costs.fee_schedule`, unless pinned:
``sec_fee_rate`` / ``taf_per_share`` / ``taf_max_per_trade`` set to a number replace the
schedule (each independently); ``None`` (the default) means "the dated schedule".

With ``round_reg_fees`` (default) the SEC fee and the TAF are each rounded up to the next cent
per fill, as brokers pass them through (see :mod:`~algorithms.costs.fee_schedule`); the ECN fee
is never rounded.

The default values are :class:`~algorithms.costs.config.CostConfig`'s (their one home).
"""
from __future__ import annotations

import math

from zipline.finance.commission import EquityCommissionModel

from . import fee_schedule
from .config import CostConfig


def ceil_cent(amount: float) -> float:
    """``amount`` rounded up to the next cent (a float product like 50,000 x 27.80e-6 =
    1.3900000000000001 counts as its exact decimal, 1.39)."""
    if amount <= 0:
        return 0.0
    return math.ceil(round(amount * 100.0, 6)) / 100.0


def _pinned(value):
    return None if value is None else float(value)


class GaplineCommission(EquityCommissionModel):
    """ECN fee per share + SEC fee and FINRA TAF on sells (see the module docstring)."""

    def __init__(self, ecn_fee_per_share=CostConfig.ecn_fee_per_share,
                 sec_fee_rate=CostConfig.sec_fee_rate, taf_per_share=CostConfig.taf_per_share,
                 taf_max_per_trade=CostConfig.taf_max_per_trade,
                 round_reg_fees=CostConfig.round_reg_fees):
        self.ecn_fee_per_share = float(ecn_fee_per_share)
        self.sec_fee_rate = _pinned(sec_fee_rate)
        self.taf_per_share = _pinned(taf_per_share)
        self.taf_max_per_trade = _pinned(taf_max_per_trade)
        self.round_reg_fees = bool(round_reg_fees)

    @classmethod
    def from_config(cls, config: CostConfig):
        return cls(config.ecn_fee_per_share, config.sec_fee_rate, config.taf_per_share,
                   config.taf_max_per_trade, config.round_reg_fees)

    def __repr__(self):
        def show(v):
            return "dated" if v is None else v
        return (f"GaplineCommission(ecn_fee_per_share={self.ecn_fee_per_share}, "
                f"sec_fee_rate={show(self.sec_fee_rate)}, "
                f"taf_per_share={show(self.taf_per_share)}, "
                f"taf_max_per_trade={show(self.taf_max_per_trade)}, "
                f"round_reg_fees={self.round_reg_fees})")

    @property
    def dated(self) -> bool:
        """Does any sell-side rate come from the dated schedule?"""
        return None in (self.sec_fee_rate, self.taf_per_share, self.taf_max_per_trade)

    def rates(self, dt=None) -> tuple[float, float, float]:
        """``(sec_fee_rate, taf_per_share, taf_max_per_trade)`` applied to a sale on ``dt``
        (a timestamp, converted to its New York date; needed unless every rate is pinned)."""
        if self.dated and dt is None:
            raise ValueError("GaplineCommission with a dated fee schedule needs the fill's "
                             "date: fee(amount, price, dt)")
        sec = self.sec_fee_rate
        if sec is None:
            sec = fee_schedule.sec_fee_rate(dt)
        per_share, cap = self.taf_per_share, self.taf_max_per_trade
        if per_share is None or cap is None:
            dated_per_share, dated_cap = fee_schedule.taf(dt)
            per_share = dated_per_share if per_share is None else per_share
            cap = dated_cap if cap is None else cap
        return sec, per_share, cap

    def sell_fees(self, shares: int, price: float, dt=None) -> tuple[float, float]:
        """``(SEC fee, TAF)`` of a sale of ``shares`` at ``price`` on ``dt`` (rounded up to
        the cent each when ``round_reg_fees``)."""
        shares = abs(int(shares))
        sec_rate, per_share, cap = self.rates(dt)
        sec = sec_rate * shares * price
        taf = fee_schedule.taf_fee(shares, price, per_share, cap)
        if self.round_reg_fees:
            sec, taf = ceil_cent(sec), ceil_cent(taf)
        return float(sec), float(taf)

    def fee(self, amount: int, price: float, dt=None) -> float:
        """Fee for one fill of ``amount`` shares (negative: sell) at ``price`` on ``dt``."""
        shares = abs(int(amount))
        cost = self.ecn_fee_per_share * shares
        if amount < 0:
            sec, taf = self.sell_fees(shares, price, dt)
            cost += sec + taf
        return float(cost)

    def calculate(self, order, transaction):
        return self.fee(transaction.amount, transaction.price, transaction.dt)

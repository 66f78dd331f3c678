"""Execution costs for gapline's zipline algorithms, selectable per run by preset name.

One call in ``initialize`` installs everything::

    from algorithms.costs import apply_costs
    apply_costs(context, "realistic", ecn_fee_per_share=0.0035)

Presets ``zero``, ``published`` (QuantRocket's published sell-gap assumptions) and
``realistic``; any :class:`CostConfig` field can be overridden by keyword. One module per idea,
as in ``zipline.finance`` (each module's docstring details its model; all per fill unless
stated):

* :mod:`~algorithms.costs.config`: :class:`CostConfig` (every knob and default),
  :data:`PRESETS`, :func:`make_config`;
* :mod:`~algorithms.costs.spread`: Corwin-Schultz and high-low half-spread estimators;
* :mod:`~algorithms.costs.short_rules`: SSR (Reg SHO Rule 201), locates (hard-to-borrow) and
  borrow rates (:class:`ShortSaleRules`);
* :mod:`~algorithms.costs.slippage`: fill prices, volume-capped partial fills and the
  short-side backstop (:class:`GaplineSlippage`);
* :mod:`~algorithms.costs.commission`: ECN fee, SEC Section 31 fee and FINRA TAF
  (:class:`GaplineCommission`), at the rates of
  :mod:`~algorithms.costs.fee_schedule` in force on each fill's date;
* :mod:`~algorithms.costs.borrow`: borrow fees accrued per calendar day a short is held
  overnight, and locate fees on hard-to-borrow shorts (:func:`borrow_charges`,
  :func:`locate_charges`, :class:`BorrowFeeCharger`);
* here: :class:`Costs` (the installed models of one run) and :func:`apply_costs`.

Algorithms use :meth:`Costs.new_short_allowed` to skip names they could not short before
placing orders; the slippage model enforces the same rules as a backstop.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bundles.market import session_of

from .borrow import BorrowFeeCharger, borrow_charges, days_to_next_session, locate_charges
from .commission import GaplineCommission
from .config import PRESETS, CostConfig, make_config
from .short_rules import ShortSaleRules
from .slippage import GaplineSlippage
from .spread import CS_DENOM, corwin_schultz_spread, half_spread, high_low_half_spread

__all__ = [
    "CS_DENOM", "PRESETS", "BorrowFeeCharger", "CostConfig", "Costs", "GaplineCommission",
    "GaplineSlippage", "ShortSaleRules", "apply_costs", "borrow_charges",
    "corwin_schultz_spread", "days_to_next_session", "half_spread", "high_low_half_spread",
    "locate_charges", "make_config",
]

log = logging.getLogger(__name__)


@dataclass
class Costs:
    """The installed cost models of one run (``context.costs``)."""

    config: CostConfig
    algo: object = None
    preset: str = "custom"
    rules: ShortSaleRules = field(init=False)
    slippage: GaplineSlippage = field(init=False)
    commission: GaplineCommission = field(init=False)
    fills: list = field(default_factory=list)
    borrow_log: list = field(default_factory=list)

    def __post_init__(self):
        self.rules = ShortSaleRules(self.config)
        self.slippage = GaplineSlippage(self.config, self.rules, self.algo,
                                        self.fills if self.charges_borrow else None)
        self.commission = GaplineCommission.from_config(self.config)
        self.book = self.slippage.book  # gapline order styles, brackets (algorithms.execution)
        if self.algo is not None and self.rules.enabled:
            # Rule 201 triggers on pre-market and after-hours trades too
            from ..extended_hours import ExtendedHours

            try:
                self.rules.extended = ExtendedHours.for_algorithm(self.algo)
            except (AttributeError, FileNotFoundError, ValueError):
                pass  # no bundle-backed algorithm or no extended-hours table: regular lows only
        self._start_positions: dict = {}
        self._session = None

    @property
    def charges_borrow(self) -> bool:
        """Are borrow or locate fees charged (installs the session-end hook)?"""
        c = self.config
        return bool(c.short_rules and (c.borrow_annual_rate > 0 or c.htb_borrow_annual_rate > 0
                                       or c.locate_fee_per_share > 0 or c.htb_tickers_csv))

    def new_short_allowed(self, data, assets) -> pd.Series:
        """Boolean Series: may a new short be placed now in each asset (locate, and SSR when
        ``ssr_mode="reject"``)? Batched; all True when short rules are off."""
        assets = list(assets)
        out = pd.Series(True, index=pd.Index(assets, dtype=object), dtype=bool)
        if not assets or not self.rules.enabled:
            return out
        prices = data.current(assets, "price")
        for a in assets:
            out[a] = self.rules.locatable(a, float(prices[a]))
        if self.config.ssr_mode == "reject":
            ssr = self.rules.ssr_active_many(data, assets)
            out &= ~ssr
        return out

    def end_of_session(self, portfolio, dt, current_data):
        """Book the session's borrow and locate fees (called once per session by
        :class:`BorrowFeeCharger`; see :mod:`~algorithms.costs.borrow`): borrow on the shorts
        still open at the close for the calendar days until the next session, locates on the
        hard-to-borrow shorts opened today. Returns the charges."""
        session = session_of(dt)
        fills = [f for f in self.fills if session_of(f[0]) == session]
        self.fills[:] = [f for f in self.fills if session_of(f[0]) > session]
        if not self.charges_borrow:
            self._record(0.0)
            return []
        positions = {a: int(p.amount) for a, p in portfolio.positions.items() if p.amount}
        # shares at the open = shares now - today's fills
        start = dict(positions)
        for _, a, amount, _ in fills:
            start[a] = start.get(a, 0) - int(amount)
        charges = []
        shorts = {a: -n for a, n in positions.items() if n < 0}
        if shorts:
            closes = {}
            for a in shorts:
                p = portfolio.positions.get(a)
                if p is not None and np.isfinite(p.last_sale_price):
                    closes[a] = float(p.last_sale_price)
                else:
                    try:
                        closes[a] = float(current_data.current(a, "price"))
                    except Exception:  # delisted asset
                        closes[a] = np.nan
            charges += borrow_charges(shorts, closes, days_to_next_session(session),
                                      self.rules)
        charges += locate_charges(fills, start, self.rules, self.config.locate_fee_per_share)
        for ch in charges:
            if self.algo is not None:
                self.algo.metrics_tracker.process_commission(
                    {"asset": ch["asset"], "cost": ch["fee"], "order": None})
            self.borrow_log.append({"session": session, **ch})
        self._record(sum(ch["fee"] for ch in charges))
        return charges

    def _record(self, total):
        """Expose the session's borrow + locate fees as the ``borrow_fee`` column of the perf
        frame."""
        record = getattr(self.algo, "record", None)
        if record is not None:
            try:
                record(borrow_fee=float(total))
            except Exception:  # outside a simulation (unit tests with fakes)
                pass

    def describe(self) -> dict:
        return {"preset": self.preset, **dataclasses.asdict(self.config)}


def apply_costs(context_or_algo, preset_name: str = "published", **overrides) -> Costs:
    """Install the ``preset_name`` cost models (with ``overrides``) on the algorithm.

    Call from ``initialize``. Sets slippage and commission for US equities, registers the
    borrow-fee session-end hook when short rules charge fees, stores the :class:`Costs` object
    as ``context.costs`` and returns it.
    """
    algo = context_or_algo
    config = make_config(preset_name, **overrides)
    costs = Costs(config, algo=algo,
                  preset=preset_name if isinstance(preset_name, str) else "custom")
    algo.set_slippage(us_equities=costs.slippage)
    algo.set_commission(us_equities=costs.commission)
    if costs.charges_borrow:
        algo.register_account_control(BorrowFeeCharger(costs))
    algo.costs = costs
    log.info("costs: %s", costs.describe())
    return costs

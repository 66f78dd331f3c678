"""Every knob of the cost model (:class:`CostConfig`) and the named presets over it.

Presets (:data:`PRESETS`; any :class:`CostConfig` field can be overridden by keyword):

``zero``
    Fills at the bar's close, whole order at once, no fees, no short-side rules.
``published``
    What QuantRocket's published sell-gap backtest assumes: 3 bps fixed slippage on the bar's
    close, fills capped at 10% of each minute bar's volume (zipline's
    ``FixedBasisPointsSlippage(basis_points=3)``, reproduced exactly), zero commission, no
    short-side rules.
``realistic``
    Spread-aware slippage, an ECN fee per share plus the SEC Section 31 fee and FINRA TAF in
    force on each fill's date (:mod:`~algorithms.costs.fee_schedule`), short-sale restriction,
    borrow fees accrued per calendar day a short is held overnight, and a locate fee on
    hard-to-borrow shorts.

The defaults below are the ``realistic`` preset and the one home of every default number
(:class:`~algorithms.costs.commission.GaplineCommission` reads its defaults from here).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class CostConfig:
    """Every knob of the cost model; presets are sets of overrides of these defaults."""

    # slippage
    slippage: str = "spread"                  # "none" | "fixed_bps" | "spread"
    slippage_bps: float = 3.0                 # fixed_bps
    volume_limit: float | None = 0.05         # share of a bar's volume per fill; None: no cap
    spread_estimator: str = "corwin_schultz"  # or "high_low"
    spread_window: int = 10                   # minute bars feeding the estimator
    spread_factor: float = 1.0                # x estimated half-spread
    ssr_spread_multiplier: float = 2.0        # extra factor while SSR is active
    min_half_spread: float = 0.005            # dollars (one-cent spread)
    # floor = the published preset's fixed 3 bps, so a realistic fill is never better than a
    # published one for the same order and bar (issue #10: "costs that can only cost")
    min_half_spread_bps: float = 3.0
    max_half_spread_bps: float = 500.0
    # auctions: impact = Y x sigma x sqrt(shares / auction volume) (square-root law, Almgren et
    # al. 2005; see algorithms.execution.auctions), capped
    auction_impact_y: float = 1.0
    auction_impact_cap: float = 0.10
    # commission (see commission.py and fee_schedule.py)
    ecn_fee_per_share: float = 0.003
    # SEC Section 31 fee, dollars of fee per dollar sold; None: the dated schedule
    # (fee_schedule.SEC_SECTION_31, the rate in force on each fill's date); a number pins it
    # (e.g. 27.80e-6, the $27.80 per million of 2024-05-22 .. 2025-05-13)
    sec_fee_rate: float | None = None
    # FINRA TAF per share sold and its cap per trade; None: the dated schedule
    # (fee_schedule.FINRA_TAF); a number pins it (e.g. 0.000166 / 8.30, the 2024-2025 values)
    taf_per_share: float | None = None
    taf_max_per_trade: float | None = None
    # SEC fee and TAF each rounded up to the next cent per fill (broker practice, see
    # fee_schedule's docstring); the ECN fee is never rounded
    round_reg_fees: bool = True
    # short side
    short_rules: bool = True
    ssr_threshold: float = 0.10
    ssr_mode: str = "wait"                    # "wait" | "reject" | "ignore"
    # Borrow fees (borrow.py): annual rates, accrued as rate / 360 per calendar day a short is
    # held over a session boundary. Same economics as the former per-session defaults:
    # 0.1 bps x 252 sessions = 25.2 bps a year -> 0.25%; 25 bps x 252 = 63% a year -> 0.63.
    borrow_annual_rate: float = 0.0025        # easy to borrow
    htb_price: float = 5.0                    # HTB below this price
    htb_tickers_csv: str | None = None
    htb_policy: str = "fee"                   # "fee" | "reject"
    htb_borrow_annual_rate: float = 0.63      # hard to borrow
    # Locate fee, dollars per share, charged once on the shares of a hard-to-borrow short
    # opened (or increased) in a session. $0.01/share is the worked example of TradeZero's
    # zero-commission FAQ ("100 shares were located for 0.01 per share"; "Hard to Borrow Short
    # Location: At cost" -- real locate prices vary by name and day). Close to the former
    # realistic cost of an intraday HTB short (25 bps of a ~$4 share = $0.01/share).
    locate_fee_per_share: float = 0.01

    def __post_init__(self):
        checks = {
            "slippage": ("none", "fixed_bps", "spread"),
            "spread_estimator": ("corwin_schultz", "high_low"),
            "ssr_mode": ("wait", "reject", "ignore"),
            "htb_policy": ("fee", "reject"),
        }
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        if self.volume_limit is not None and not self.volume_limit > 0:
            raise ValueError(f"volume_limit must be > 0 or None; got {self.volume_limit!r}")
        if self.spread_window < 1:
            raise ValueError("spread_window must be >= 1")
        for name in ("slippage_bps", "ecn_fee_per_share", "sec_fee_rate", "taf_per_share",
                     "taf_max_per_trade", "borrow_annual_rate", "htb_borrow_annual_rate",
                     "locate_fee_per_share", "min_half_spread", "min_half_spread_bps",
                     "spread_factor", "auction_impact_y", "auction_impact_cap"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")


PRESETS: dict[str, dict] = {
    "zero": dict(slippage="none", volume_limit=None, auction_impact_y=0.0,
                 ecn_fee_per_share=0.0, sec_fee_rate=0.0,
                 taf_per_share=0.0, taf_max_per_trade=0.0, short_rules=False,
                 borrow_annual_rate=0.0, htb_borrow_annual_rate=0.0, locate_fee_per_share=0.0),
    "published": dict(slippage="fixed_bps", slippage_bps=3.0, volume_limit=0.1,
                      auction_impact_y=0.0,
                      ecn_fee_per_share=0.0, sec_fee_rate=0.0, taf_per_share=0.0,
                      taf_max_per_trade=0.0, short_rules=False, borrow_annual_rate=0.0,
                      htb_borrow_annual_rate=0.0, locate_fee_per_share=0.0),
    "realistic": dict(),
}


def make_config(preset: str | CostConfig = "published", **overrides) -> CostConfig:
    """The :class:`CostConfig` of ``preset`` with ``overrides`` applied."""
    if isinstance(preset, CostConfig):
        base = preset
    else:
        if preset not in PRESETS:
            raise ValueError(f"unknown cost preset {preset!r}; choose from {sorted(PRESETS)}")
        base = CostConfig(**PRESETS[preset])
    valid = {f.name for f in dataclasses.fields(CostConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise TypeError(f"unknown cost parameter(s) {unknown}; valid: {sorted(valid)}")
    return dataclasses.replace(base, **overrides)

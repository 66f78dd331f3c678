"""Execution costs for gapline's zipline algorithms, selectable per run by preset name.

One call in ``initialize`` installs everything::

    from algorithms.costs import apply_costs
    apply_costs(context, "realistic", ecn_fee_per_share=0.0035)

Presets (:data:`PRESETS`; any :class:`CostConfig` field can be overridden by keyword):

``zero``
    Fills at the bar's close, whole order at once, no fees, no short-side rules.
``published``
    What QuantRocket's published sell-gap backtest assumes: 3 bps fixed slippage on the bar's
    close, fills capped at 10% of each minute bar's volume (zipline's
    ``FixedBasisPointsSlippage(basis_points=3)``, reproduced exactly), zero commission, no
    short-side rules.
``realistic``
    Spread-aware slippage, US per-share fees, short-sale restriction, borrow fees and locates.

Model details (all per fill unless stated)
------------------------------------------
**Commission** (:class:`GaplineCommission`): ``ecn_fee_per_share`` on every share traded;
on sells (long sales and short sales alike) the SEC Section 31 fee ``sec_fee_rate`` x dollar
amount and the FINRA TAF ``taf_per_share`` x shares, capped at ``taf_max_per_trade``. Each
zipline fill is one trade (one execution), so the TAF cap applies per fill. Fees are not
rounded to cents.

**Slippage** (:class:`GaplineSlippage`): the fill price is the minute bar's close moved against
the order by

* ``none``: nothing;
* ``fixed_bps``: ``slippage_bps`` of the close (identical to zipline's
  ``FixedBasisPointsSlippage``);
* ``spread``: an estimated half-spread x ``spread_factor``, and x ``ssr_spread_multiplier``
  (default 2) while the asset's short-sale restriction is active (on every order in it, buys
  too: SSR days are the volatile, wide-spread ones). The half-spread comes from
  the last ``spread_window`` minute bars: Corwin-Schultz (2012) high-low estimator on
  consecutive bar pairs (``spread_estimator="corwin_schultz"``, negative pair estimates set
  to 0) or the mean of (high - low) / 2 (``"high_low"``, an upper bound). It is floored at
  ``min_half_spread`` dollars (half a cent: a one-tick spread) and ``min_half_spread_bps``,
  and capped at ``max_half_spread_bps``.

Fill sizes are capped at ``int(volume_limit x bar volume)`` shares per minute bar, summed over
all orders in the asset (zipline's rule); the rest of the order stays open and keeps filling
on later bars (partial fills). Bars without volume or without a close never fill.

**Short side** (``short_rules=True``), checked on the part of a sell order that opens or
increases a short position (the part selling an existing long is never restricted):

* *SSR* (Reg SHO Rule 201): the restriction is active for an asset from the first bar whose
  session low is ``ssr_threshold`` (10%) or more below the prior session's close, for the rest
  of that session and the whole next session. A short sale then has to be executed above the
  national best bid, which a bar-level simulator cannot see. ``ssr_mode="wait"`` (default)
  models it like a resting limit order at the offer: the short part fills only on an up-tick
  bar (close above the previous minute's close), and pays the doubled half-spread; otherwise
  it waits (open orders are cancelled at the end of the day by the algorithms' ``EODCancel``
  policy). ``ssr_mode="reject"`` rejects such orders (status REJECTED, logged);
  ``"ignore"`` applies no restriction.
* *Locate*: an asset is hard-to-borrow (HTB) when its price is below ``htb_price`` or its ticker
  is in ``htb_tickers_csv`` (a CSV with a ``ticker`` column and optional
  ``borrow_bps_per_day`` and ``shortable`` (0/1) columns). With ``htb_policy="reject"`` (or
  ``shortable=0`` in the CSV) new shorts in HTB names are rejected; with ``"fee"`` they are
  allowed at ``htb_borrow_bps_per_day``.
* *Borrow fee*: ``borrow_bps_per_day`` (HTB: ``htb_borrow_bps_per_day`` or the CSV rate) x the
  short market value, charged once for **every session in which the short position exists at
  any point**, including shorts opened and covered the same day (brokers bill a locate/borrow
  for intraday shorts of HTB names; charging a day for every day touched is the conservative
  convention quants expect). The market value charged is the largest short notional of the
  session: short shares after each fill x the fill price, and short shares held at the open or
  at the close x the session's close. Fees are booked at the end of the session (zipline's
  session-end account-control hook) as a cash commission against the asset, so they show up in
  that day's ``pnl``; the day's total is recorded as the perf column ``borrow_fee`` and
  :attr:`Costs.borrow_log` lists every charge.

Algorithms use :meth:`Costs.new_short_allowed` to skip names they could not short before
placing orders; the slippage model enforces the same rules as a backstop.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from zipline.finance.commission import EquityCommissionModel
from zipline.finance.controls import AccountControl
from zipline.finance.slippage import (
    EquitySlippageModel,
    LiquidityExceeded,
    fill_price_worse_than_limit_price,
)
from zipline.finance.transaction import create_transaction

from .common import session_of

log = logging.getLogger(__name__)

CS_DENOM = 3.0 - 2.0 * math.sqrt(2.0)


# ----------------------------------------------------------------------------- configuration
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
    min_half_spread_bps: float = 1.0
    max_half_spread_bps: float = 500.0
    # commission
    ecn_fee_per_share: float = 0.003
    sec_fee_rate: float = 27.80e-6            # dollars of fee per dollar sold ($27.80 / million)
    taf_per_share: float = 0.000166           # FINRA TAF per share sold
    taf_max_per_trade: float = 8.30
    # short side
    short_rules: bool = True
    ssr_threshold: float = 0.10
    ssr_mode: str = "wait"                    # "wait" | "reject" | "ignore"
    borrow_bps_per_day: float = 0.1           # easy to borrow (~25 bps a year)
    htb_price: float = 5.0                    # HTB below this price
    htb_tickers_csv: str | None = None
    htb_policy: str = "fee"                   # "fee" | "reject"
    htb_borrow_bps_per_day: float = 25.0      # ~63% a year over 252 sessions

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
                     "taf_max_per_trade", "borrow_bps_per_day", "htb_borrow_bps_per_day",
                     "min_half_spread", "min_half_spread_bps", "spread_factor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


PRESETS: dict[str, dict] = {
    "zero": dict(slippage="none", volume_limit=None, ecn_fee_per_share=0.0, sec_fee_rate=0.0,
                 taf_per_share=0.0, taf_max_per_trade=0.0, short_rules=False,
                 borrow_bps_per_day=0.0, htb_borrow_bps_per_day=0.0),
    "published": dict(slippage="fixed_bps", slippage_bps=3.0, volume_limit=0.1,
                      ecn_fee_per_share=0.0, sec_fee_rate=0.0, taf_per_share=0.0,
                      taf_max_per_trade=0.0, short_rules=False, borrow_bps_per_day=0.0,
                      htb_borrow_bps_per_day=0.0),
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


# ----------------------------------------------------------------------------- half-spread
def corwin_schultz_spread(high, low) -> float:
    """Mean Corwin-Schultz relative spread (fraction of price) over consecutive bar pairs.

    Pairs with a missing bar are skipped; negative pair estimates count as 0. NaN when no
    pair is usable.
    """
    h = np.asarray(high, dtype="float64")
    lo = np.asarray(low, dtype="float64")
    if len(h) < 2:
        return float("nan")
    ok = np.isfinite(h) & np.isfinite(lo) & (h > 0) & (lo > 0)
    pair = ok[1:] & ok[:-1]
    if not pair.any():
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = np.log(h / lo) ** 2
        beta = hl[1:] + hl[:-1]
        gamma = np.log(np.maximum(h[1:], h[:-1]) / np.minimum(lo[1:], lo[:-1])) ** 2
        alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / CS_DENOM - np.sqrt(gamma / CS_DENOM)
        s = 2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))
    s = np.where(pair, np.maximum(s, 0.0), np.nan)
    return float(np.nanmean(s))


def high_low_half_spread(high, low) -> float:
    """Mean (high - low) / 2 in dollars over the bars with both values (NaN when none)."""
    h = np.asarray(high, dtype="float64")
    lo = np.asarray(low, dtype="float64")
    ok = np.isfinite(h) & np.isfinite(lo)
    if not ok.any():
        return float("nan")
    return float(np.mean((h[ok] - lo[ok]) / 2.0))


def half_spread(config: CostConfig, price: float, high, low) -> float:
    """Estimated half-spread in dollars at ``price`` from bar highs/lows (floors, cap applied)."""
    if config.spread_estimator == "corwin_schultz":
        rel = corwin_schultz_spread(high, low)
        hs = rel / 2.0 * price if np.isfinite(rel) else 0.0
    else:
        hs = high_low_half_spread(high, low)
        hs = hs if np.isfinite(hs) else 0.0
    floor = max(config.min_half_spread, price * config.min_half_spread_bps / 1e4)
    cap = price * config.max_half_spread_bps / 1e4
    return float(min(max(hs, floor), max(cap, floor)))


# ----------------------------------------------------------------------------- short rules
def _read_htb_csv(path) -> pd.DataFrame:
    frame = pd.read_csv(Path(path).expanduser())
    frame.columns = [c.strip().lower() for c in frame.columns]
    if "ticker" not in frame:
        raise ValueError(f"{path}: hard-to-borrow CSV needs a 'ticker' column")
    frame["ticker"] = frame["ticker"].astype(str).str.strip().str.upper()
    if "borrow_bps_per_day" not in frame:
        frame["borrow_bps_per_day"] = np.nan
    if "shortable" not in frame:
        frame["shortable"] = 1
    frame["shortable"] = frame["shortable"].fillna(1).astype(int).astype(bool)
    return frame.drop_duplicates("ticker", keep="last").set_index("ticker")


class ShortSaleRules:
    """SSR state, locate (hard-to-borrow) and borrow-fee rates; see the module docstring."""

    def __init__(self, config: CostConfig):
        self.config = config
        self.htb_table = (_read_htb_csv(config.htb_tickers_csv) if config.htb_tickers_csv
                          else pd.DataFrame(columns=["borrow_bps_per_day", "shortable"]))
        self._ssr_prior: dict = {}  # (asset, session) -> (prior close, triggered yesterday)
        self._ssr_today: set = set()  # (asset, session) triggered today

    @property
    def enabled(self) -> bool:
        return bool(self.config.short_rules)

    # -- locate / borrow ----------------------------------------------------------------
    def _csv_row(self, asset):
        sym = getattr(asset, "symbol", None)
        if sym is not None and sym in self.htb_table.index:
            return self.htb_table.loc[sym]
        return None

    def is_htb(self, asset, price) -> bool:
        if self._csv_row(asset) is not None:
            return True
        return bool(np.isfinite(price) and price < self.config.htb_price)

    def locatable(self, asset, price) -> bool:
        """Can a new short be located? (always True with short rules off)."""
        if not self.enabled:
            return True
        row = self._csv_row(asset)
        if row is not None and not bool(row["shortable"]):
            return False
        if self.is_htb(asset, price) and self.config.htb_policy == "reject":
            return False
        return True

    def borrow_bps(self, asset, price) -> float:
        """Borrow fee in bps per session for a short in ``asset`` at ``price``."""
        if not self.enabled:
            return 0.0
        row = self._csv_row(asset)
        if row is not None and pd.notna(row["borrow_bps_per_day"]):
            return float(row["borrow_bps_per_day"])
        if self.is_htb(asset, price):
            return float(self.config.htb_borrow_bps_per_day)
        return float(self.config.borrow_bps_per_day)

    # -- SSR ------------------------------------------------------------------------------
    @staticmethod
    def ssr_from_daily(lows, closes, threshold) -> tuple[bool, bool]:
        """(triggered yesterday, triggered today) from the last three sessions' lows/closes
        (oldest first; the last row is today so far)."""
        lows = np.asarray(lows, dtype="float64")
        closes = np.asarray(closes, dtype="float64")
        k = 1.0 - threshold
        yday = bool(len(lows) >= 3 and lows[-2] <= k * closes[-3])
        today = bool(len(lows) >= 2 and lows[-1] <= k * closes[-2])
        return yday, today

    def prior_state(self, data, asset, session) -> tuple[float, bool]:
        """(prior session's close, SSR triggered in the prior session), cached per session."""
        key = (asset, session)
        state = self._ssr_prior.get(key)
        if state is None:
            lows = np.asarray(data.history(asset, "low", 3, "1d"), dtype="float64")
            closes = np.asarray(data.history(asset, "close", 3, "1d"), dtype="float64")
            yday, _ = self.ssr_from_daily(lows, closes, self.config.ssr_threshold)
            prior_close = closes[-2] if len(closes) >= 2 else np.nan
            state = self._ssr_prior[key] = (float(prior_close), yday)
        return state

    def ssr_active(self, data, asset, session_low=None) -> bool:
        """Is Rule 201 active for ``asset`` at the current bar? ``session_low``: the lowest
        price of the session so far (read from the daily history when not given)."""
        if not self.enabled or self.config.ssr_mode == "ignore":
            return False
        if session_low is None:
            return bool(self.ssr_active_many(data, [asset]).iloc[0])
        session = session_of(data.current_dt)
        if (asset, session) in self._ssr_today:
            return True
        prior_close, yday = self.prior_state(data, asset, session)
        today = bool(np.isfinite(session_low) and
                     session_low <= (1.0 - self.config.ssr_threshold) * prior_close)
        if yday or today:
            self._ssr_today.add((asset, session))
            return True
        return False

    def ssr_active_many(self, data, assets) -> pd.Series:
        """Batched :meth:`ssr_active` for a list of assets (one history call per field)."""
        assets = list(assets)
        out = pd.Series(False, index=pd.Index(assets, dtype=object), dtype=bool)
        if not assets or not self.enabled or self.config.ssr_mode == "ignore":
            return out
        session = session_of(data.current_dt)
        need = [a for a in assets if (a, session) not in self._ssr_today]
        if need:
            lows = data.history(need, "low", 3, "1d")
            closes = data.history(need, "close", 3, "1d")
            for a in need:
                yday, today = self.ssr_from_daily(lows[a].to_numpy(), closes[a].to_numpy(),
                                                  self.config.ssr_threshold)
                if yday or today:
                    self._ssr_today.add((a, session))
        for a in assets:
            out[a] = (a, session) in self._ssr_today
        return out



# ----------------------------------------------------------------------------- slippage
ONE_MINUTE = pd.Timedelta(minutes=1)


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
    return (pd.Timestamp(session) + pd.Timedelta(hours=9, minutes=30)).tz_localize(
        "America/New_York").tz_convert("UTC")


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

    def fill_price(self, data, order, close, ssr: bool) -> float:
        c = self.config
        if c.slippage == "none":
            return close
        if c.slippage == "fixed_bps":
            return close + close * (c.slippage_bps / 10000.0 * order.direction)
        hs = self.half_spread(data, order.asset, close) * c.spread_factor
        if ssr:
            hs *= c.ssr_spread_multiplier
        return close + hs * order.direction

    # -- zipline hooks --------------------------------------------------------------------
    def simulate(self, data, asset, orders_for_asset):
        """zipline's ``SlippageModel.simulate`` plus the short-side checks, over a copy of the
        order list (rejections remove orders from the blotter's list)."""
        self._volume_for_bar = 0
        self._pending = 0
        if not orders_for_asset:
            return
        # each field read once per bar and handed down: this runs per open order per minute
        volume = data.current(asset, "volume")
        price = data.current(asset, "close")
        if self._needs_tape():
            self.tape(data, asset, price)  # every bar while orders are open, trades or not
        if not volume or volume == 0:
            return
        if pd.isnull(price):
            return
        dt = data.current_dt
        for order in list(orders_for_asset):
            if order.open_amount == 0 or not order.open:
                continue
            order.check_triggers(price, dt)
            if not order.triggered:
                continue
            try:
                execution_price, execution_volume = self.process_order(data, order, price, volume)
            except LiquidityExceeded:
                break
            if execution_price is None or not execution_volume:
                continue
            txn = create_transaction(order, dt, execution_price, execution_volume)
            self._volume_for_bar += abs(txn.amount)
            self._pending += txn.amount
            if self.fill_log is not None:
                self.fill_log.append((dt, asset, txn.amount, txn.price))
            yield order, txn

    def process_order(self, data, order, close=None, volume=None):
        c = self.config
        asset = order.asset
        if close is None:
            close = data.current(asset, "close")
        if volume is None:
            volume = data.current(asset, "volume")
        want = abs(order.open_amount)
        allowed = want
        ssr = False
        rules = self.rules
        if rules.enabled:
            if c.ssr_mode != "ignore":
                ssr = rules.ssr_active(data, asset, self.tape(data, asset).session_low)
            if order.direction < 0:
                held = self._position(asset) + self._pending
                long_part = max(0, min(want, held))
                short_part = want - long_part
                if short_part > 0:
                    blocked_reason = None
                    if not rules.locatable(asset, close):
                        blocked_reason = "no locate (hard to borrow)"
                    elif ssr and c.ssr_mode == "reject":
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
        if c.volume_limit is None:
            shares = allowed
        else:
            max_volume = int(c.volume_limit * volume)
            room = max_volume - self.volume_for_bar
            if room <= 0:
                raise LiquidityExceeded()
            shares = min(allowed, room)
        if shares <= 0:
            return None, None
        fill = self.fill_price(data, order, close, ssr)
        if fill_price_worse_than_limit_price(fill, order):
            return None, None
        return fill, int(shares) * int(order.direction)


# ----------------------------------------------------------------------------- commission
class GaplineCommission(EquityCommissionModel):
    """ECN fee per share + SEC fee and FINRA TAF on sells (see the module docstring)."""

    def __init__(self, ecn_fee_per_share=0.003, sec_fee_rate=27.80e-6, taf_per_share=0.000166,
                 taf_max_per_trade=8.30):
        self.ecn_fee_per_share = float(ecn_fee_per_share)
        self.sec_fee_rate = float(sec_fee_rate)
        self.taf_per_share = float(taf_per_share)
        self.taf_max_per_trade = float(taf_max_per_trade)

    @classmethod
    def from_config(cls, config: CostConfig):
        return cls(config.ecn_fee_per_share, config.sec_fee_rate, config.taf_per_share,
                   config.taf_max_per_trade)

    def __repr__(self):
        return (f"GaplineCommission(ecn_fee_per_share={self.ecn_fee_per_share}, "
                f"sec_fee_rate={self.sec_fee_rate}, taf_per_share={self.taf_per_share}, "
                f"taf_max_per_trade={self.taf_max_per_trade})")

    def fee(self, amount: int, price: float) -> float:
        """Fee for one fill of ``amount`` shares (negative: sell) at ``price``."""
        shares = abs(int(amount))
        cost = self.ecn_fee_per_share * shares
        if amount < 0:
            cost += self.sec_fee_rate * shares * price
            cost += min(self.taf_per_share * shares, self.taf_max_per_trade)
        return float(cost)

    def calculate(self, order, transaction):
        return self.fee(transaction.amount, transaction.price)


# ----------------------------------------------------------------------------- borrow fees
def borrow_charges(session_fills, start_positions, closes, rules: ShortSaleRules):
    """Borrow fees of one session.

    ``session_fills``: ``[(dt, asset, amount, price), ...]`` in time order;
    ``start_positions``: ``{asset: shares held at the open}``; ``closes``: ``{asset: session
    close}``. Returns ``[{asset, shares, notional, bps, fee}, ...]`` for every asset short at
    any point of the session; notional = the largest of (short shares after each fill x fill
    price) and (short shares at the open / at the close x close).
    """
    out = []
    assets = dict.fromkeys(list(start_positions) + [f[1] for f in session_fills])
    for asset in assets:
        pos = int(start_positions.get(asset, 0))
        close = closes.get(asset, np.nan)
        notional, max_short = 0.0, 0
        if pos < 0 and np.isfinite(close):
            notional, max_short = -pos * close, -pos
        for _, a, amount, price in session_fills:
            if a is not asset and a != asset:
                continue
            pos += int(amount)
            if pos < 0:
                max_short = max(max_short, -pos)
                notional = max(notional, -pos * price)
        if pos < 0 and np.isfinite(close):
            notional = max(notional, -pos * close)
        if max_short == 0 or notional <= 0:
            continue
        ref_price = notional / max_short
        bps = rules.borrow_bps(asset, ref_price)
        fee = notional * bps / 1e4
        if fee > 0:
            out.append({"asset": asset, "shares": max_short, "notional": notional, "bps": bps,
                        "fee": fee})
    return out


class BorrowFeeCharger(AccountControl):
    """Charges borrow fees at the end of each session (uses zipline's session-end
    account-control hook; it never fails the algorithm)."""

    def __init__(self, costs: "Costs"):
        super().__init__()
        self.costs = costs

    def validate(self, _portfolio, _account, _algo_datetime, _algo_current_data):
        self.costs.end_of_session(_portfolio, _algo_datetime, _algo_current_data)


# ----------------------------------------------------------------------------- the bundle
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
        self._start_positions: dict = {}
        self._session = None

    @property
    def charges_borrow(self) -> bool:
        c = self.config
        return bool(c.short_rules and (c.borrow_bps_per_day > 0 or c.htb_borrow_bps_per_day > 0
                                       or c.htb_tickers_csv))

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
        """Book today's borrow fees (called once per session by :class:`BorrowFeeCharger`)."""
        session = session_of(dt)
        fills = [f for f in self.fills if session_of(f[0]) == session]
        self.fills[:] = [f for f in self.fills if session_of(f[0]) > session]
        positions = {a: int(p.amount) for a, p in portfolio.positions.items() if p.amount}
        # shares at the open = shares now - today's fills
        start = dict(positions)
        for _, a, amount, _ in fills:
            start[a] = start.get(a, 0) - int(amount)
        start = {a: s for a, s in start.items() if s}
        involved = set(start) | {f[1] for f in fills} | set(positions)
        shorts = [a for a in involved
                  if start.get(a, 0) < 0 or positions.get(a, 0) < 0
                  or any(f[1] == a for f in fills)]
        if not shorts or not self.charges_borrow:
            self._record(0.0)
            return []
        closes = {}
        for a in shorts:
            p = portfolio.positions.get(a)
            if p is not None and p.amount and np.isfinite(p.last_sale_price):
                closes[a] = float(p.last_sale_price)
            else:
                try:
                    closes[a] = float(current_data.current(a, "price"))
                except Exception:  # delisted asset
                    closes[a] = np.nan
        charges = borrow_charges(fills, {a: start.get(a, 0) for a in shorts}, closes, self.rules)
        for ch in charges:
            if self.algo is not None:
                self.algo.metrics_tracker.process_commission(
                    {"asset": ch["asset"], "cost": ch["fee"], "order": None})
            self.borrow_log.append({"session": session, **ch})
        self._record(sum(ch["fee"] for ch in charges))
        return charges

    def _record(self, total):
        """Expose the session's borrow fees as the ``borrow_fee`` column of the perf frame."""
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

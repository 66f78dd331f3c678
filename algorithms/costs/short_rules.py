"""Short-sale rules: Reg SHO Rule 201 (SSR), locates (hard-to-borrow) and borrow-fee rates.

With ``short_rules=True`` these are checked on the part of a sell order that opens or
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
  ``borrow_annual_rate`` (a fraction a year, e.g. 0.35) and ``shortable`` (0/1) columns; a
  legacy ``borrow_bps_per_day`` column is read as bps per session x 252 sessions a year). With
  ``htb_policy="reject"`` (or ``shortable=0`` in the CSV) new shorts in HTB names are
  rejected; with ``"fee"`` they are allowed at ``htb_borrow_annual_rate`` (plus
  ``locate_fee_per_share`` on the shares shorted).

:meth:`ShortSaleRules.borrow_annual_rate` gives the annual borrow rate that
:mod:`algorithms.costs.borrow` accrues per calendar day. The slippage model
(:class:`~algorithms.costs.slippage.GaplineSlippage`) enforces these rules on every fill;
algorithms check them up front with :meth:`~algorithms.costs.Costs.new_short_allowed`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bundles.market import session_of

from .config import CostConfig


def _read_htb_csv(path) -> pd.DataFrame:
    frame = pd.read_csv(Path(path).expanduser())
    frame.columns = [c.strip().lower() for c in frame.columns]
    if "ticker" not in frame:
        raise ValueError(f"{path}: hard-to-borrow CSV needs a 'ticker' column")
    frame["ticker"] = frame["ticker"].astype(str).str.strip().str.upper()
    if "borrow_annual_rate" not in frame:
        frame["borrow_annual_rate"] = np.nan
    if "borrow_bps_per_day" in frame:  # legacy per-session rate: 252 sessions a year
        legacy = pd.to_numeric(frame["borrow_bps_per_day"], errors="coerce") * 252 / 1e4
        frame["borrow_annual_rate"] = frame["borrow_annual_rate"].fillna(legacy)
    if "shortable" not in frame:
        frame["shortable"] = 1
    frame["shortable"] = frame["shortable"].fillna(1).astype(int).astype(bool)
    return frame.drop_duplicates("ticker", keep="last").set_index("ticker")


class ShortSaleRules:
    """SSR state, locate (hard-to-borrow) and borrow-fee rates; see the module docstring."""

    def __init__(self, config: CostConfig):
        self.config = config
        self.htb_table = (_read_htb_csv(config.htb_tickers_csv) if config.htb_tickers_csv
                          else pd.DataFrame(columns=["borrow_annual_rate", "shortable"]))
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

    def borrow_annual_rate(self, asset, price) -> float:
        """Annual borrow rate (a fraction, accrued / 360 per calendar day) for a short in
        ``asset`` at ``price``: the CSV's rate, else the HTB or the easy-to-borrow rate."""
        if not self.enabled:
            return 0.0
        row = self._csv_row(asset)
        if row is not None and pd.notna(row["borrow_annual_rate"]):
            return float(row["borrow_annual_rate"])
        if self.is_htb(asset, price):
            return float(self.config.htb_borrow_annual_rate)
        return float(self.config.borrow_annual_rate)

    # -- SSR ------------------------------------------------------------------------------
    #: where pre-market / after-hours lows come from: an ``ExtendedHours`` table (set by
    #: :class:`~algorithms.costs.Costs` when the algorithm's bundle has one); Rule 201 counts
    #: a trade at or below the trigger price at any hour, not only in the regular session
    extended = None

    @staticmethod
    def ssr_from_daily(lows, closes, threshold, extended_lows=None) -> tuple[bool, bool]:
        """(triggered yesterday, triggered today) from the last three sessions' lows/closes
        (oldest first; the last row is today so far; closes are official closes).

        ``extended_lows``: ``(yesterday's lowest pre-market or after-hours trade, today's
        lowest pre-market trade)``, NaN when unknown -- Rule 201 triggers on a trade at or
        below 90% of the prior close at any hour."""
        lows = np.asarray(lows, dtype="float64")
        closes = np.asarray(closes, dtype="float64")
        ext_yday, ext_today = extended_lows if extended_lows is not None else (np.nan, np.nan)
        k = 1.0 - threshold
        yday = bool(len(lows) >= 3 and np.nanmin([lows[-2], ext_yday, np.inf]) <= k * closes[-3])
        today = bool(len(lows) >= 2 and np.nanmin([lows[-1], ext_today, np.inf]) <= k * closes[-2])
        return yday, today

    def extended_lows(self, asset, now) -> tuple[float, float]:
        """(yesterday's lowest pre-market/after-hours trade, today's lowest pre-market trade)
        for ``asset`` at ``now``, each NaN when not known (no table, no trade, not yet)."""
        if self.extended is None:
            return np.nan, np.nan
        from ..extended_hours import LookAheadError

        cal = self.extended.calendar
        session = cal.minute_to_session(now)
        yday = cal.previous_session(session)

        def low(read, day):
            try:
                return float(read(day, [asset], now)["low"].iloc[0])
            except LookAheadError:
                return np.nan

        ext = self.extended
        yday_low = np.nanmin([low(ext.premarket, yday), low(ext.afterhours, yday), np.inf])
        return (yday_low if np.isfinite(yday_low) else np.nan), low(ext.premarket, session)

    def prior_state(self, data, asset, session) -> tuple[float, bool, float]:
        """(prior session's close, SSR triggered in the prior session, today's pre-market
        low), cached per session."""
        key = (asset, session)
        state = self._ssr_prior.get(key)
        if state is None:
            lows = np.asarray(data.history(asset, "low", 3, "1d"), dtype="float64")
            closes = np.asarray(data.history(asset, "close", 3, "1d"), dtype="float64")
            ext = self.extended_lows(asset, pd.Timestamp(data.current_dt))
            yday, _ = self.ssr_from_daily(lows, closes, self.config.ssr_threshold, ext)
            prior_close = closes[-2] if len(closes) >= 2 else np.nan
            state = self._ssr_prior[key] = (float(prior_close), yday, ext[1])
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
        prior_close, yday, premarket_low = self.prior_state(data, asset, session)
        low = np.nanmin([session_low, premarket_low, np.inf])
        today = bool(np.isfinite(low) and low <= (1.0 - self.config.ssr_threshold) * prior_close)
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
            now = pd.Timestamp(data.current_dt)
            for a in need:
                yday, today = self.ssr_from_daily(lows[a].to_numpy(), closes[a].to_numpy(),
                                                  self.config.ssr_threshold,
                                                  self.extended_lows(a, now))
                if yday or today:
                    self._ssr_today.add((a, session))
        for a in assets:
            out[a] = (a, session) in self._ssr_today
        return out

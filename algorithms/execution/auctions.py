"""The opening and closing crosses: official prints per sid and session, and auction impact.

The ``polygon`` ingest writes ``<ingestion>/gapline/auctions.parquet`` (one row group per
session): ``open_print`` (the first regular-session trade, the open of Polygon's 09:30 bar),
``open_volume`` (that bar's volume), ``close_print`` (the official close: the first trade of
Polygon's bar that STARTS at the close, 16:00 or 13:00 on half days -- polygon-io/issues #67,
#95) and ``close_volume`` (that bar's volume, the closing-auction volume proxy: it also holds
the trades of the first after-hours minute, so it overstates the cross a little and the
impact below errs low, not high).

Without the table (an ingestion made before it existed) or without a close print for a name,
the official close falls back to the session's last regular-session trade; a name that did not
trade in the session at all (halted, delisted) has no closing print and is reported.

Auction impact (cost of an auction order beyond the spread), the square-root law of market
impact (Almgren, Thum, Hauptmann and Li 2005, "Direct Estimation of Equity Market Impact";
Toth et al. 2011, "Anomalous price impact and the critical nature of liquidity")::

    impact / price = Y x sigma x sqrt(shares / auction_volume)

with ``sigma`` the Parkinson (1980) daily volatility of the PREVIOUS session's range,
``ln(high / low) / (2 sqrt(ln 2))``, and ``Y = auction_impact_y`` (1.0 in ``realistic``, 0 in
``published``/``zero``), capped at ``auction_impact_cap`` (10% by default).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bundles.ingestions import AUCTIONS_FILE, SIDE_DIR, ingestion_dir_of

from ..session_tables import load_session_table, session_key

PARKINSON = 1.0 / (2.0 * math.sqrt(math.log(2.0)))


def parkinson_sigma(high: float, low: float) -> float:
    """Daily volatility from one session's range (Parkinson 1980); NaN when unknown."""
    if not (np.isfinite(high) and np.isfinite(low)) or low <= 0 or high < low:
        return float("nan")
    return PARKINSON * math.log(high / low)


def auction_impact(price: float, shares: int, auction_volume: float, sigma: float,
                   y: float, cap: float) -> float:
    """Dollars per share an auction order of ``shares`` pays beyond the print (>= 0).

    Unknown volume or volatility costs the cap (a cost model must not get cheaper for
    missing data)."""
    if y <= 0 or shares == 0:
        return 0.0
    if not (np.isfinite(auction_volume) and auction_volume > 0 and np.isfinite(sigma)):
        return cap * price
    fraction = y * sigma * math.sqrt(abs(shares) / auction_volume)
    return min(fraction, cap) * price


class AuctionPrints:
    """The auction table of the ingestion an algorithm runs on (None rows when absent)."""

    def __init__(self, folder: Path | None):
        path = None if folder is None else Path(folder) / SIDE_DIR / AUCTIONS_FILE
        self.table = load_session_table(str(path)) if path is not None and path.exists() else None

    @classmethod
    def for_algorithm(cls, algo) -> "AuctionPrints":
        try:
            folder = ingestion_dir_of(algo.asset_finder)
        except (ValueError, AttributeError):
            folder = None
        return cls(folder)

    def row(self, session, sid: int):
        if self.table is None:
            return None
        rows = self.table.get(session_key(session))
        if rows is None or sid not in rows.index:
            return None
        return rows.loc[sid]

    def value(self, session, sid: int, column: str) -> float:
        row = self.row(session, sid)
        if row is None or column not in row.index:
            return float("nan")
        value = row[column]
        return float(value) if value is not None and np.isfinite(value) else float("nan")

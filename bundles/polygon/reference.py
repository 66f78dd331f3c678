"""Polygon reference data for an ingest: the tickers frame and the universe it defines."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .. import layout
from ..market import ET
from .config import PolygonBundleConfig


def load_reference_assets(root) -> pd.DataFrame:
    """Polygon reference tickers (+ details) as one frame, one row per (ticker, company)."""
    tickers = pd.DataFrame(layout.read_reference(root, "tickers"))
    cols = ["ticker", "name", "type", "primary_exchange", "active", "delisted_utc",
            "composite_figi", "share_class_figi", "cik"]
    if tickers.empty:
        return pd.DataFrame(columns=cols + ["delisted_date", "share_class_shares_outstanding",
                                            "weighted_shares_outstanding", "list_date"])
    for c in cols:
        if c not in tickers:
            tickers[c] = None
    tickers = tickers[cols].copy()
    delisted = pd.to_datetime(tickers["delisted_utc"], utc=True, errors="coerce")
    tickers["delisted_date"] = delisted.dt.tz_convert(ET).dt.tz_localize(None).dt.normalize()
    details = pd.DataFrame(layout.read_reference(root, "ticker_details"))
    detail_cols = ["share_class_shares_outstanding", "weighted_shares_outstanding", "list_date"]
    for c in detail_cols:
        tickers[c] = None
    if not details.empty:
        for c in ["ticker", "composite_figi"] + detail_cols:
            if c not in details:
                details[c] = None
        # Match details by FIGI (it tells reused tickers apart), else by ticker.
        by_figi = details.dropna(subset=["composite_figi"]).drop_duplicates("composite_figi", keep="last")
        by_figi = by_figi.set_index("composite_figi")
        by_ticker = details.drop_duplicates("ticker", keep="last").set_index("ticker")
        for c in detail_cols:
            from_figi = tickers["composite_figi"].map(by_figi[c]) if len(by_figi) else None
            from_ticker = tickers["ticker"].map(by_ticker[c])
            tickers[c] = from_figi.combine_first(from_ticker) if from_figi is not None else from_ticker
    return tickers.reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class Universe:
    """Which tickers an ingest keeps, and which of those get minute bars: the config's
    ``tickers`` / ``types`` / ``minute_tickers`` against the reference types."""

    config: PolygonBundleConfig
    ref_types: dict  # ticker -> Polygon type (the last reference entry of a reused ticker)

    @classmethod
    def of(cls, config: PolygonBundleConfig, reference: pd.DataFrame) -> "Universe":
        last = reference.drop_duplicates("ticker", keep="last")
        return cls(config, last.set_index("ticker")["type"].to_dict())

    def contains(self, ticker: str) -> bool:
        cfg = self.config
        if cfg.tickers is not None and ticker not in cfg.tickers:
            return False
        if cfg.types is not None and self.ref_types.get(ticker) not in cfg.types:
            return False
        return True

    def wants_minutes(self, ticker: str) -> bool:
        mt = self.config.minute_tickers
        if mt == "all":
            return True
        if mt == "none":
            return False
        if isinstance(mt, str) and mt.startswith("types:"):
            return self.ref_types.get(ticker) in mt[6:].split(",")
        return ticker in mt

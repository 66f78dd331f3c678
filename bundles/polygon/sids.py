"""Sids: one per (ticker, company), and the map from (ticker, day) to the sid owning it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ASSET_COLUMNS = ["ticker", "symbol", "name", "type", "primary_exchange", "composite_figi",
                 "share_class_figi", "cik", "active", "delisted_utc",
                 "share_class_shares_outstanding", "weighted_shares_outstanding", "list_date",
                 "start_date", "end_date"]


@dataclass(frozen=True, eq=False)
class SidMap:
    """The ingest's assets (index ``sid``) and the owner of each (ticker, day)."""

    assets: pd.DataFrame
    sid_of_ticker: dict  # ticker -> sid, for tickers with one sid
    periods: dict  # reused ticker -> [(last day, sid), ...] in date order

    def map(self, tickers, days) -> np.ndarray:
        """The sid owning each (ticker, day); -1 for tickers not ingested."""
        tickers = np.asarray(tickers, dtype=object)
        sids = pd.Series(tickers).map(self.sid_of_ticker).fillna(-1).to_numpy(np.int64)
        for ticker, periods in self.periods.items():
            m = tickers == ticker
            if m.any():
                ends = np.array([p[0] for p in periods], dtype="datetime64[ns]")
                idx = np.searchsorted(ends, np.asarray(days)[m].astype("datetime64[ns]"),
                                      side="left").clip(0, len(periods) - 1)
                sids[m] = np.array([p[1] for p in periods], dtype=np.int64)[idx]
        return sids


def assign_sids(daily: pd.DataFrame, reference: pd.DataFrame) -> SidMap:
    """One sid per (ticker, company): a reused ticker's bars are split at delisting dates.

    ``daily`` holds one row per (ticker, day) with bars; ``reference`` is
    :func:`~bundles.polygon.reference.load_reference_assets`."""
    if daily.empty:
        raise ValueError(
            "no bars to ingest after filtering (check tickers/types options and the date range)")
    ref = reference
    first_last = daily.groupby("ticker")["day"].agg(["min", "max"])
    counts = ref.groupby("ticker").size() if len(ref) else pd.Series(dtype=int)
    multi = set(counts[counts > 1].index) & set(first_last.index)
    # Tickers with at most one reference entry: one sid over the whole life.
    single = first_last.drop(index=list(multi))
    one_ref = ref[~ref["ticker"].isin(multi)].drop_duplicates("ticker", keep="last")
    rows = single.rename(columns={"min": "start_date", "max": "end_date"}).join(
        one_ref.set_index("ticker"), how="left").reset_index(names="ticker")
    parts = [rows]
    # Reused tickers: delisted companies first (by date), the active one last; a bar on
    # day d belongs to the first company whose delisting date is >= d.
    for ticker in sorted(multi):
        entries = ref[ref["ticker"] == ticker]
        entries = entries.assign(_k=entries["delisted_date"].fillna(pd.Timestamp.max))
        entries = entries.sort_values("_k").drop(columns="_k").reset_index(drop=True)
        days = np.sort(daily.loc[daily["ticker"] == ticker, "day"].unique())
        bounds = entries["delisted_date"].to_numpy()
        lo = 0
        for i in range(len(entries)):
            last = i == len(entries) - 1
            hi = len(days) if last or pd.isna(bounds[i]) else \
                int(np.searchsorted(days, bounds[i], side="right"))
            if hi > lo:
                parts.append(entries.iloc[[i]].assign(start_date=pd.Timestamp(days[lo]),
                                                      end_date=pd.Timestamp(days[hi - 1])))
            lo = max(lo, hi)
    assets = pd.concat(parts, ignore_index=True)
    assets["symbol"] = assets["ticker"].str.upper()
    assets["name"] = assets["name"].where(assets["name"].notna(), assets["ticker"])
    keep = ASSET_COLUMNS
    for c in keep:
        if c not in assets:
            assets[c] = None
    assets = assets[keep].sort_values(["ticker", "start_date"]).reset_index(drop=True)
    assets = assets.astype({c: object for c in keep if c not in ("start_date", "end_date")})
    assets = assets.where(assets.notna(), None)
    assets.index.name = "sid"
    upper = assets.groupby("symbol")["ticker"].nunique()
    clash = upper[upper > 1]
    if len(clash):
        raise ValueError(
            f"tickers differing only by case map to one zipline symbol: {list(clash.index)}; "
            "zipline upper-cases symbols")
    sid_of_ticker = {t: sid for sid, t in assets["ticker"].items() if t not in multi}
    periods = {t: [(row.end_date, sid) for sid, row in assets[assets["ticker"] == t].iterrows()]
               for t in multi}
    return SidMap(assets, sid_of_ticker, periods)

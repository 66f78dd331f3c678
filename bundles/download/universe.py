"""The default ticker universe: reference tickers of some types, not delisted before the start."""
from __future__ import annotations

import pandas as pd

DEFAULT_TYPES = ("CS", "ETF", "ADRC")


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def universe(tickers_reference: list[dict], types, start) -> list[str]:
    """Sorted unique tickers of ``types`` (all when empty) not delisted before ``start``."""
    start = _utc(start)
    keep = set()
    for record in tickers_reference:
        if types and record.get("type") not in types:
            continue
        delisted = record.get("delisted_utc")
        if delisted and _utc(delisted) < start:
            continue
        keep.add(record["ticker"])
    return sorted(keep)

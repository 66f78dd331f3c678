"""Polygon aggregate results -> frames in the flat-file format (:mod:`bundles.layout`)."""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from bundles.layout import FLAT_COLUMNS

# Polygon's short aggregate keys -> flat-file column names.
_AGG_KEYS = {"T": "ticker", "v": "volume", "o": "open", "c": "close", "h": "high", "l": "low",
             "t": "window_start", "n": "transactions"}
_NS_PER_MS = 1_000_000


def bars_to_frame(bars: Iterable[dict], ticker: str | None = None) -> pd.DataFrame:
    """Polygon aggregate results -> a flat-file frame (:data:`~bundles.layout.FLAT_COLUMNS`).

    Parameters
    ----------
    bars : iterable of dict
        Results with Polygon's short keys (``T`` only for grouped daily, ``t`` in ms).
    ticker : str, optional
        The ticker of every bar, for per-ticker endpoints whose results carry no ``T``.

    Returns
    -------
    pandas.DataFrame
        ``window_start`` in nanoseconds, ``transactions`` as nullable ``Int64``, ``volume`` as
        int64 when every value is whole, sorted by ticker then ``window_start`` and without
        duplicate (ticker, window_start) rows.
    """
    raw = pd.DataFrame.from_records(list(bars), columns=list(_AGG_KEYS))
    if ticker is not None:
        raw["T"] = ticker
    frame = raw.rename(columns=_AGG_KEYS)[FLAT_COLUMNS].dropna(subset=["ticker", "window_start"])
    volume = pd.to_numeric(frame["volume"])
    if volume.notna().all() and (volume % 1 == 0).all():
        volume = volume.astype("int64")
    frame = frame.assign(
        ticker=frame["ticker"].astype(str),
        volume=volume,
        open=frame["open"].astype("float64"),
        close=frame["close"].astype("float64"),
        high=frame["high"].astype("float64"),
        low=frame["low"].astype("float64"),
        window_start=frame["window_start"].astype("int64") * _NS_PER_MS,
        transactions=pd.to_numeric(frame["transactions"]).astype("Int64"),
    )
    return (frame.sort_values(["ticker", "window_start"], kind="mergesort")
            .drop_duplicates(["ticker", "window_start"])
            .reset_index(drop=True))

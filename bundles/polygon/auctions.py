"""The opening and closing crosses of each session -> ``gapline/auctions.parquet``, and the
official close as the daily close.

Polygon labels a minute bar by its window START. The opening print is the first trade of the
bar starting at the session open (09:30 ET): that bar's ``open``. The official close (the
closing cross) prints in the bar starting AT the session close (16:00 ET, 13:00 on half days;
the calendar's ``session_close``): that bar's ``open`` (polygon-io/issues #67, #95). That
16:00 bar is not a regular-session minute -- it also holds the first after-hours minute's
trades -- so it never enters the minute bars (zipline's last minute, 16:00, is Polygon's 15:59
bar) and its volume is not added to the daily volume; only its first trade is used.

Table columns (one Parquet row group per session, like ``extended_hours.parquet``):
``session`` (tz-naive midnight), ``sid`` (int64), ``open_print``, ``open_volume``,
``close_print``, ``close_volume`` (float64; NaN where the bar is absent). A row exists for a
sid with at least one of the two bars. Read by :mod:`algorithms.execution.auctions`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .report import IngestReport
from .sids import SidMap

AUCTION_COLUMNS = ["session", "sid", "open_print", "open_volume", "close_print", "close_volume"]


def auction_prints(codes, ws, o, v, open_ns: int, close_ns: int) -> pd.DataFrame | None:
    """Per ticker code (index): the open and volume of the bar starting at ``open_ns`` and of
    the bar starting at ``close_ns``; rows sorted by (code, time) without duplicates."""
    parts = []
    for prefix, at in (("open", open_ns), ("close", close_ns)):
        m = ws == at
        parts.append(pd.DataFrame({f"{prefix}_print": o[m], f"{prefix}_volume": v[m]},
                                  index=pd.Index(codes[m], name="code")))
    out = parts[0].join(parts[1], how="outer")
    return out if len(out) else None


def apply_official_close(daily: pd.DataFrame, prints: pd.DataFrame | None,
                         report: IngestReport) -> pd.DataFrame:
    """Daily rows (resampled from regular-session minutes, indexed like ``prints``) with the
    official close as ``close`` where the session has a closing-cross print.

    Fallback: a name without a bar starting at the close (it did not print in the cross, or
    the data lacks the bar) keeps the close of its last regular-session minute (the 15:59 bar,
    12:59 on half days). High/low stay those of the regular-session minutes, widened to the
    print when the cross printed outside them so that low <= close <= high still holds (the
    cross is a regular-session trade; the rest of its bar is not). Volume stays the
    regular-session minutes' sum: the closing bar also holds after-hours trades.
    """
    close = (prints["close_print"].reindex(daily.index) if prints is not None
             else pd.Series(np.nan, index=daily.index))
    official = close.notna().to_numpy()
    report.daily_close_official += int(official.sum())
    report.daily_close_fallback += int((~official).sum())
    if not official.any():
        return daily
    daily = daily.copy()
    c = close.to_numpy()
    daily.loc[official, "close"] = c[official]
    widened = official & ((c > daily["high"].to_numpy()) | (c < daily["low"].to_numpy()))
    if widened.any():
        report.daily_range_widened_by_close += int(widened.sum())
        daily["high"] = np.fmax(daily["high"].to_numpy(), c)
        daily["low"] = np.fmin(daily["low"].to_numpy(), c)
    return daily


def auctions_table(auctions: pd.DataFrame | None, sids: SidMap) -> pd.DataFrame:
    """Pass 1's per-(ticker, session) prints -> AUCTION_COLUMNS rows of ingested sids, sorted
    by (session, sid)."""
    if auctions is None or auctions.empty:
        frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in AUCTION_COLUMNS})
        frame["session"] = pd.Series(dtype="datetime64[ns]")
        frame["sid"] = pd.Series(dtype="int64")
        return frame
    a = auctions.assign(sid=sids.map(auctions["ticker"].to_numpy(),
                                     auctions["session"].to_numpy()))
    a = a[a["sid"] >= 0]
    a = a[AUCTION_COLUMNS].astype({c: "float64" for c in AUCTION_COLUMNS[2:]})
    a["sid"] = a["sid"].astype("int64")
    return a.sort_values(["session", "sid"]).reset_index(drop=True)


"""Daily bars -> zipline's daily store: dense over each sid's life, x1000 uint32 prices."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import zipline_writers
from ..progress import track
from .bars import UINT32_MAX, dense_daily_columns
from .report import IngestReport
from .sids import SidMap


def daily_row_sids(daily: pd.DataFrame, sids: SidMap) -> np.ndarray:
    """The sid of each of pass 1's daily rows (-1: no asset)."""
    return sids.map(daily["ticker"].to_numpy(), daily["day"].to_numpy())


def write_daily(daily_bar_writer, daily: pd.DataFrame, row_sids: np.ndarray, calendar,
                start_session, end_session, report: IngestReport, show: bool) -> None:
    """Write pass 1's daily rows (``row_sids``: :func:`daily_row_sids`); values zipline cannot
    store are clipped or blanked and reported (sessions without trades have NaN prices and
    zero volume)."""
    d = daily.assign(sid=row_sids)
    over = d["volume"] > UINT32_MAX
    if over.any():
        for _, r in d[over].head(100).iterrows():
            report.unstorable_values.append(
                f"daily {r['ticker']} {r['day'].date()}: volume {r['volume']:.0f} clipped "
                f"to {UINT32_MAX} (zipline stores uint32)")
        d.loc[over, "volume"] = UINT32_MAX
    # Daily bars are stored x1000 in uint32: a price above ~$4.29M cannot be stored at all.
    too_big = d[["open", "high", "low", "close"]].max(axis=1) * 1000 > UINT32_MAX
    if too_big.any():
        for _, r in d[too_big].head(100).iterrows():
            report.unstorable_values.append(
                f"daily {r['ticker']} {r['day'].date()}: high {r['high']:.2f} exceeds what "
                "zipline's x1000 uint32 daily storage holds; bar stored as no-trade (NaN)")
        d.loc[too_big, ["open", "high", "low", "close", "volume"]] = 0.0
    tiny = (d["low"] < 0.001)
    if tiny.any():
        report.low_precision_daily.append(
            f"{int(tiny.sum())} daily bar(s) below $0.001 lose digits in zipline's x1000 daily "
            f"storage (minute bars keep them), e.g. {d.loc[tiny, 'ticker'].iloc[0]}")
    sessions = calendar.sessions_in_range(start_session, end_session)
    d = d.sort_values(["sid", "day"])
    zipline_writers.write_daily_tables(
        daily_bar_writer, track(dense_daily_columns(d, sessions), "writing daily bars", show))


def daily_sources(daily: pd.DataFrame, row_sids: np.ndarray, sids: SidMap,
                  report: IngestReport) -> pd.Series:
    """Where each sid's daily bars came from (index sid): ``"minute"`` (regular-session minute
    bars), ``"day"`` (Polygon day aggs) or ``"mixed"`` (some sessions from each); the counts
    go to ``report`` (``daily_rows_by_source``, ``daily_source_by_sid``). A pure function of
    pass 1's daily rows (their ``source`` column, "minute" when absent) and their sids
    (:func:`daily_row_sids`)."""
    source = daily["source"] if "source" in daily else pd.Series("minute", index=daily.index)
    d = pd.DataFrame({"sid": row_sids, "source": source.to_numpy()})
    d = d[d["sid"] >= 0]
    report.daily_rows_by_source = {k: int(v) for k, v in d["source"].value_counts().items()}
    # on sorted codes, not the strings: pandas' min/max of strings is a Python loop per group
    codes, names = pd.factorize(d["source"], sort=True)
    span = pd.DataFrame({"sid": d["sid"].to_numpy(), "code": codes}).groupby("sid")["code"].agg(
        ["min", "max"])
    first = pd.Series(np.asarray(names, dtype=object)[span["min"].to_numpy()], index=span.index)
    per_sid = first.where(span["min"] == span["max"], "mixed").reindex(sids.assets.index)
    per_sid.name = "daily_source"
    report.daily_source_by_sid = {k: int(v) for k, v in per_sid.value_counts().items()}
    return per_sid

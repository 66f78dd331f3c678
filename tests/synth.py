"""Small hand-controlled Polygon-format data sets for bundle tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bundles import layout

ET = "America/New_York"


def minute_rows(ticker, day, base, rng, start="04:00", end="19:59", skip=0.0):
    """Polygon minute rows (start-labelled, ns UTC) for ``ticker`` on ``day`` from ``start``
    to ``end`` ET inclusive; ``skip`` is the share of minutes left without a bar."""
    minutes = pd.date_range(f"{day} {start}", f"{day} {end}", freq="min", tz=ET)
    if skip:
        minutes = minutes[rng.random(len(minutes)) >= skip]
    n = len(minutes)
    close = base * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[base, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    digits = 4 if base < 1 else 2
    frame = pd.DataFrame({
        "ticker": ticker,
        "volume": rng.integers(100, 5000, n).astype(float),
        "open": open_.round(digits), "close": close.round(digits),
        "high": high.round(digits), "low": low.round(digits),
        "window_start": minutes.tz_convert("UTC").asi8,
        "transactions": rng.integers(1, 50, n),
    })
    frame["high"] = frame[["open", "close", "high"]].max(axis=1)
    frame["low"] = frame[["open", "close", "low"]].min(axis=1)
    return frame


def write_minute_days(root, frame):
    """Write ``frame`` (Polygon rows) as one minute day file per ET date."""
    days = pd.to_datetime(frame["window_start"], utc=True).dt.tz_convert(ET).dt.strftime("%Y-%m-%d")
    for day, rows in frame.groupby(days):
        # Polygon's files are sorted by ticker, then time
        layout.write_day_file(root, layout.MINUTE_DATASET, day,
                              rows.sort_values(["ticker", "window_start"], kind="stable"))


def regular_session_expected(frame, early_closes=()):
    """Independent expectation: the regular-session bars, END-labelled (start + 1 minute).

    Computed from ET wall-clock times, not from a trading calendar: a bar starting
    09:30..15:59 ET (12:59 on ``early_closes`` dates) is kept and relabelled +1 minute.
    """
    start = pd.to_datetime(frame["window_start"], utc=True).dt.tz_convert(ET)
    clock = start.dt.hour * 60 + start.dt.minute
    date = start.dt.strftime("%Y-%m-%d")
    last = np.where(date.isin(list(early_closes)), 12 * 60 + 59, 15 * 60 + 59)
    keep = (clock >= 9 * 60 + 30) & (clock <= last)
    out = frame[keep].copy()
    out["dt"] = start[keep].dt.tz_convert("UTC") + pd.Timedelta(minutes=1)
    return out


def data_portal(bundle_data):
    """A zipline DataPortal over a loaded bundle (minute + daily readers, adjustments)."""
    from zipline.data.data_portal import DataPortal

    return DataPortal(bundle_data.asset_finder, bundle_data.equity_minute_bar_reader.calendar,
                      bundle_data.equity_daily_bar_reader.first_trading_day,
                      equity_minute_reader=bundle_data.equity_minute_bar_reader,
                      equity_daily_reader=bundle_data.equity_daily_bar_reader,
                      adjustment_reader=bundle_data.adjustment_reader)


def quiet(fn, *args, **kwargs):
    """Call ``fn`` with warnings and log records below ERROR silenced (zipline is chatty:
    every partially filled order at the close logs a warning)."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return fn(*args, **kwargs)
        finally:
            logging.disable(logging.NOTSET)

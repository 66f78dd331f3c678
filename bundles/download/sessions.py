"""Which sessions to download, and the New York clock of their bars."""
from __future__ import annotations

import pandas as pd

from bundles.market import CALENDAR, ET, et_midnight_ns

from .convert import _NS_PER_MS


def sessions_between(start, end) -> pd.DatetimeIndex:
    """Sessions of :data:`bundles.market.CALENDAR` in [start, end] that are over (before today
    in New York)."""
    import exchange_calendars as xcals

    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end < start:
        raise ValueError(f"end {end.date()} is before start {start.date()}")
    today = pd.Timestamp.now(tz=ET).tz_localize(None).normalize()
    end = min(end, today - pd.Timedelta(days=1))  # today's bars are not final yet
    if end < start:
        return pd.DatetimeIndex([])
    # pad the calendar's bounds: sessions_in_range refuses dates outside them, and the
    # default calendar only reaches ~20 years back while Polygon has data from 2003
    pad = pd.Timedelta(days=10)
    calendar = xcals.get_calendar(CALENDAR, start=start - pad, end=end + pad)
    return calendar.sessions_in_range(start, end)


def _ny_span_ms(first, last) -> tuple[int, int]:
    """[midnight New York of ``first``, midnight New York after ``last``) in epoch ms, inclusive.

    Explicit timestamps because a bare date would leave it to the API which time zone a day
    starts in, and extended hours run to 20:00 New York, past midnight UTC in winter.
    """
    start = et_midnight_ns(first)
    stop = et_midnight_ns(pd.Timestamp(last) + pd.Timedelta(days=1))
    return start // _NS_PER_MS, stop // _NS_PER_MS - 1


def _session_dates(frame: pd.DataFrame) -> pd.Series:
    """The New York calendar date of each bar (a minute file holds 04:00-20:00 New York)."""
    return (pd.to_datetime(frame["window_start"], unit="ns", utc=True)
            .dt.tz_convert(ET).dt.tz_localize(None).dt.normalize())

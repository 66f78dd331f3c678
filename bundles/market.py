"""The market gapline trades: US equities on the NYSE calendar, clocks in New York time.

One home for the names every layer needs (the calendar, the time zone, "which session is this
minute in"), so no module spells ``"America/New_York"`` or ``"XNYS"`` itself.
"""
from __future__ import annotations

import functools

import pandas as pd

ET = "America/New_York"
CALENDAR = "XNYS"  # every US venue trades the NYSE session (same hours, same half days)
MINUTES_PER_DAY = 390  # zipline's bundle registration: 09:31..16:00 on a full day


@functools.lru_cache(maxsize=1)
def trading_calendar():
    """The (cached) zipline/exchange-calendars calendar of :data:`CALENDAR`."""
    from zipline.utils.calendar_utils import get_calendar

    return get_calendar(CALENDAR)


def session_of(dt) -> pd.Timestamp:
    """The session label (naive midnight) of a tz-aware timestamp, by its New York date."""
    return pd.Timestamp(dt).tz_convert(ET).normalize().tz_localize(None)


def et_midnight_ns(day) -> int:
    """A session's 00:00 New York time in ns since the epoch (Polygon's day-agg label)."""
    return pd.Timestamp(day).tz_localize(ET).value

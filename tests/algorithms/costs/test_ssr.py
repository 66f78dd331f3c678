"""Rule 201 from every trade: pre-market and after-hours trades trigger SSR too (hand-built)."""
import numpy as np
import pandas as pd

from algorithms import costs as C
from algorithms.extended_hours import LookAheadError

F = C.ShortSaleRules.ssr_from_daily
NAN = np.nan
# oldest first: day before yesterday, yesterday, today so far; closes are official closes
LOWS, CLOSES = [99.0, 95.0, 96.0], [100.0, 98.0, 97.0]


def test_regular_session_lows_alone_do_not_trigger():
    assert F(LOWS, CLOSES, 0.10, (NAN, NAN)) == (False, False)


def test_a_premarket_trade_at_90_percent_of_the_prior_close_triggers_today():
    # today's prior close 98 -> trigger at 88.20; a pre-market print at 88.20 triggers
    assert F(LOWS, CLOSES, 0.10, (NAN, 88.20)) == (False, True)
    assert F(LOWS, CLOSES, 0.10, (NAN, 88.21)) == (False, False)


def test_yesterdays_after_hours_trade_carries_to_today():
    # yesterday's prior close 100 -> trigger at 90.00; an after-hours print at 90.00
    assert F(LOWS, CLOSES, 0.10, (90.00, NAN)) == (True, False)
    assert F(LOWS, CLOSES, 0.10, (90.01, NAN)) == (False, False)


class Table:
    """An ExtendedHours stand-in: lows per (part, session), the look-ahead guard by time."""

    def __init__(self, lows):
        from bundles.market import trading_calendar

        self.calendar = trading_calendar()
        self.lows = lows

    def _read(self, part, day, now):
        known = (self.calendar.session_open(day) if part == "pm"
                 else self.calendar.session_close(day) + pd.Timedelta(hours=4))
        if now < known:
            raise LookAheadError(part)
        return pd.DataFrame({"low": [self.lows.get((part, day), NAN)]})

    def premarket(self, day, assets, now):
        return self._read("pm", day, now)

    def afterhours(self, day, assets, now):
        return self._read("ah", day, now)


def test_extended_lows_read_yesterday_and_today_without_look_ahead():
    rules = C.ShortSaleRules(C.make_config("realistic"))
    yday, today = pd.Timestamp("2024-10-01"), pd.Timestamp("2024-10-02")
    rules.extended = Table({("ah", yday): 80.0, ("pm", yday): 85.0, ("pm", today): 70.0})
    at_open = pd.Timestamp("2024-10-02 13:31", tz="UTC")   # 09:31 ET
    assert rules.extended_lows("AAA", at_open) == (80.0, 70.0)
    before_open = pd.Timestamp("2024-10-02 13:00", tz="UTC")  # 09:00 ET: today's pm unknown
    got = rules.extended_lows("AAA", before_open)
    assert got[0] == 80.0 and np.isnan(got[1])

"""The 09:25 pre-market cut (``pmcut_*`` of extended_hours.parquet) and its reader's guard,
on hand-written bars (:mod:`tests.bundles.polygon.hand`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from algorithms.extended_hours import ExtendedHours, LookAheadError
from bundles.ingestions import EXTENDED_HOURS_FILE
from bundles.polygon.premarket_cut import DECISION_CUT, DECISION_WINDOW

from .hand import ET, sid_of, bar


def _hand_cut(ticker, day, starts):
    bars = [bar(ticker, day, hm) for hm in starts]
    return bars, sum(b["close"] * b["volume"] for b in bars)


def test_cut_constants_are_the_reference_0925_and_30_minutes():
    assert DECISION_CUT == pd.Timedelta("09:25:00")
    assert DECISION_WINDOW == pd.Timedelta(minutes=30)


def test_cut_columns_equal_hand_sums(bundle):
    data, side = bundle
    ext = pd.read_parquet(side / EXTENDED_HOURS_FILE)
    row = ext[(ext.sid == sid_of(data, "AUC", "2024-11-26"))
              & (ext.session == pd.Timestamp("2024-11-26"))].iloc[0]
    # bars starting 04:00..09:24 count; 09:25 (high 12.00, low 8.00, 9000 shares) does not
    cut, dollars = _hand_cut("AUC", "2024-11-26", ["04:00", "08:54", "08:55", "09:10", "09:24"])
    _, window = _hand_cut("AUC", "2024-11-26", ["08:55", "09:10", "09:24"])
    assert row.pmcut_last == 9.85
    assert row.pmcut_high == 9.90 and row.pmcut_low == 8.90
    assert row.pmcut_volume == 1500 == sum(b["volume"] for b in cut)
    assert row.pmcut_dollar_volume == pytest.approx(dollars) and dollars == pytest.approx(14325)
    assert row.pmcut_window_dollar_volume == pytest.approx(window)
    assert window == pytest.approx(11570)
    assert row.pmcut_bars == 5
    # the full pre-market summary still runs to 09:29
    assert row.pm_last == 10.02 and row.pm_high == 12.00 and row.pm_bars == 7


def test_cut_edge_cases(bundle):
    data, side = bundle
    ext = pd.read_parquet(side / EXTENDED_HOURS_FILE).set_index(["session", "sid"])
    day = pd.Timestamp("2024-11-27")
    # MID's pre-market starts at 09:26: a pre-market row, nothing before the cut
    mid = ext.loc[(day, sid_of(data, "MID", day))]
    assert mid.pm_bars == 1 and all(np.isnan(mid[c]) for c in ext.columns if c.startswith("pmcut_"))
    # EAR traded only before 08:55: cut columns, an empty 30-minute window (NaN)
    ear = ext.loc[(day, sid_of(data, "EAR", day))]
    assert ear.pmcut_bars == 2 and ear.pmcut_last == 2.10
    assert ear.pmcut_dollar_volume == pytest.approx(2.05 * 1000 + 2.10 * 3000)
    assert np.isnan(ear.pmcut_window_dollar_volume)
    # NOX: one bar at 09:24, inside both
    nox = ext.loc[(pd.Timestamp("2024-11-26"), sid_of(data, "NOX", "2024-11-26"))]
    assert nox.pmcut_window_dollar_volume == pytest.approx(50.0) and nox.pmcut_bars == 1


def test_reader_serves_the_cut_from_before_trading_start(bundle):
    data, side = bundle
    eh = ExtendedHours(side.parent)
    session = pd.Timestamp("2024-11-26")
    assets = [sid_of(data, "AUC", session), sid_of(data, "NOX", session), 99999]
    got = eh.premarket_cut(session, assets, pd.Timestamp("2024-11-26 08:45", tz=ET))
    assert list(got.columns) == ["last", "high", "low", "volume", "dollar_volume",
                                 "window_dollar_volume", "bars"]
    assert got.loc[assets[0], "last"] == 9.85
    assert got.loc[assets[0], "window_dollar_volume"] == pytest.approx(11570)
    assert got.loc[assets[1], "dollar_volume"] == pytest.approx(50.0)
    assert got.loc[99999].isna().all()  # unknown sid: a NaN row
    later = eh.premarket_cut(session, assets, pd.Timestamp("2024-11-26 09:31", tz=ET))
    pd.testing.assert_frame_equal(got, later)


@pytest.mark.parametrize("now", [
    "2024-11-25 16:00",  # the previous session's close
    "2024-11-25 20:00",  # the previous evening
    "2024-11-26 08:44",  # before before_trading_start
])
def test_reader_refuses_the_cut_on_an_earlier_simulation_day(bundle, now):
    _, side = bundle
    eh = ExtendedHours(side.parent)
    with pytest.raises(LookAheadError, match="09:25 pre-market cut"):
        eh.premarket_cut(pd.Timestamp("2024-11-26"), [0], pd.Timestamp(now, tz=ET))
    with pytest.raises(LookAheadError):
        eh.premarket_cut(pd.Timestamp("2024-11-26"), [0], None)


def test_full_premarket_is_still_refused_before_the_open(bundle):
    _, side = bundle
    eh = ExtendedHours(side.parent)
    with pytest.raises(LookAheadError):
        eh.premarket(pd.Timestamp("2024-11-26"), [0], pd.Timestamp("2024-11-26 08:45", tz=ET))


def test_cut_now_in_before_trading_start(bundle):
    """What an algorithm calls: the session about to open, at zipline's 08:45 ET."""
    data, side = bundle
    eh = ExtendedHours(side.parent)

    class Data:
        current_dt = pd.Timestamp("2024-11-26 08:45", tz=ET).tz_convert("UTC")

    sid = sid_of(data, "AUC", "2024-11-26")
    assert eh.premarket_cut_now(None, Data(), [sid]).loc[sid, "last"] == 9.85

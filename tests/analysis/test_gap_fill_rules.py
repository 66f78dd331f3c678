"""Gap-fill rules of analysis.gapstats on a hand-built frame, expected values worked out by hand.

The rules are the article's (``../shared/references/003_290001eae97eba9c.txt``):

* gap classes: ``pd.cut(gap_pct, bins=[-inf, -10, -5, -2, 2, 5, 10, 20, inf])`` (lines 13-18),
  closed on the right;
* "filled within N days": ``future_data = df.loc[idx:idx+days]`` (line 135) -- sessions D..D+N,
  both ends included; up gaps (``gap_pct > 0``) fill on ``low.min() <= prev_close``, every other
  gap on ``high.max() >= prev_close`` (lines 137-140);
* an event counts only when ``idx + days < len(df)`` (line 134): an incomplete window is dropped,
  filled or not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import gapstats

SESSIONS = pd.bdate_range("2024-03-04", periods=6)  # s0 .. s5; s5 is the last session
NAN = np.nan

#: sid -> rows (open, high, low, close) per session; NaN rows: no trade (B and C stop trading)
BARS = {
    1: [(100.0, 101.0, 99.0, 100.0),    # s0
        (104.0, 106.0, 103.0, 104.0),   # s1 gap +4% from 100; lows 103, 101 then 96 <= 100
        (102.0, 103.0, 101.0, 102.0),   # s2 gap -1.92% from 104; highs 103, 99 then 104.5
        (98.0, 99.0, 96.0, 97.0),       # s3 gap -3.92% from 102; s4's high 104.5 >= 102
        (97.5, 104.5, 97.0, 104.0),     # s4 gap +0.52% from 97; its own low 97 <= 97
        (116.48, 117.0, 100.0, 101.0)],  # s5 gap +12% from 104; its own low 100 <= 104
    2: [(50.0, 51.0, 49.0, 50.0),       # s0
        (44.0, 46.0, 43.5, 45.0),       # s1 gap -12% from 50; highs 46, 47, 44.5: never 50
        (46.0, 47.0, 45.0, 46.0),       # s2 gap +2.22% from 45; its own low 45 <= 45
        (44.0, 44.5, 43.0, 44.0),       # s3 gap -4.35% from 46; high 44.5 < 46
        (NAN, NAN, NAN, NAN),           # delisted: B's frame has 4 rows (len(df) = 4)
        (NAN, NAN, NAN, NAN)],
    3: [(20.0, 20.5, 19.5, 20.0),       # s0
        (20.0, 20.2, 19.8, 20.1),       # s1 flat open (gap 0): the down test, 20.2 >= 20
        (NAN, NAN, NAN, NAN), (NAN, NAN, NAN, NAN), (NAN, NAN, NAN, NAN),
        (NAN, NAN, NAN, NAN)],
}

HORIZONS = (1, 2, 3)

#: (sid, session index) -> gap class, direction, days_to_fill, filled_1, filled_2, filled_3
EXPECTED = {
    (1, 1): ("2%..5%", "up", 2, 0.0, 1.0, 1.0),       # fills on D+2: within 2 days (D..D+2)
    (1, 2): ("-2%..2%", "down", 2, 0.0, 1.0, 1.0),    # window D..D+3 = s2..s5 just complete
    (1, 3): ("-5%..-2%", "down", 1, 1.0, 1.0, NAN),   # filled on D+1, but s3+3 is past the data
    (1, 4): ("-2%..2%", "up", 0, 1.0, NAN, NAN),      # filled on the gap day itself
    (1, 5): ("10%..20%", "up", 0, NAN, NAN, NAN),     # last session: every window incomplete
    (2, 1): ("<=-10%", "down", NAN, 0.0, 0.0, NAN),   # s1..s3 seen, s4 is past B's last bar
    (2, 2): ("2%..5%", "up", 0, 1.0, NAN, NAN),
    (2, 3): ("-5%..-2%", "down", NAN, NAN, NAN, NAN),
    (3, 1): ("-2%..2%", "flat", 0, NAN, NAN, NAN),
}


def _daily():
    rows = []
    for sid, bars in BARS.items():
        for session, (o, h, lo, c) in zip(SESSIONS, bars):
            rows.append({"session": session, "sid": sid, "symbol": "ABC"[sid - 1], "open": o,
                         "high": h, "low": lo, "close": c, "volume": 1000.0})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def events():
    return gapstats.gap_events(_daily(), SESSIONS[1], SESSIONS[-1], horizons=HORIZONS)


def test_each_event_by_hand(events):
    got = events.set_index(["sid", "session"])
    assert len(got) == len(EXPECTED)
    for (sid, i), (cls, direction, days, *filled) in EXPECTED.items():
        row = got.loc[(sid, SESSIONS[i])]
        assert (row["gap_class"], row["direction"]) == (cls, direction), (sid, i)
        assert row["days_to_fill"] == pytest.approx(days, nan_ok=True), (sid, i)
        got_filled = [row[f"filled_{n}"] for n in HORIZONS]
        np.testing.assert_array_equal(got_filled, filled, err_msg=f"{(sid, i)}")
    a = got.loc[1]
    assert a.loc[SESSIONS[5], "gap"] == pytest.approx(0.12)
    assert a.loc[SESSIONS[1], "gap"] == pytest.approx(0.04)


def test_window_includes_day_d_plus_n(events):
    """A's s1 gap fills on s3 = D+2: ``df.loc[idx:idx+2]`` holds s1, s2, s3, so it counts for
    N = 2 (the earlier D..D+N-1 window missed it)."""
    row = events[(events["sid"] == 1) & (events["session"] == SESSIONS[1])].iloc[0]
    assert row["days_to_fill"] == 2 and row["filled_1"] == 0 and row["filled_2"] == 1


def test_incomplete_windows_are_dropped_filled_or_not(events):
    """A's s3 gap filled on s4, but its 3-day window s3..s6 is not in the data: dropped
    (the earlier rule kept it as filled because it dropped only unfilled events)."""
    row = events[(events["sid"] == 1) & (events["session"] == SESSIONS[3])].iloc[0]
    assert row["days_to_fill"] == 1 and np.isnan(row["filled_3"])
    # B delists after s3: its s1 gap (never filled) has a 2-day window (s1..s3) but no
    # 3-day one
    row = events[(events["sid"] == 2) & (events["session"] == SESSIONS[1])].iloc[0]
    assert row["filled_2"] == 0 and np.isnan(row["filled_3"])


def test_fill_table_by_hand(events):
    table = gapstats.gap_fill_table(events, horizons=HORIZONS)
    expected = pd.DataFrame.from_dict({
        #             events  fill_1d fill_2d fill_3d mean_days_to_fill
        "<=-10%":     (1, 0.0, 0.0, NAN, NAN),
        "-10%..-5%":  (0, NAN, NAN, NAN, NAN),
        "-5%..-2%":   (2, 1.0, 1.0, NAN, NAN),   # A s3 (filled next day); B s3 has no window
        "-2%..2%":    (3, 0.5, 1.0, 1.0, 2.0),   # A s2, A s4, C s1
        "2%..5%":     (2, 0.5, 1.0, 1.0, 2.0),   # A s1, B s2
        "5%..10%":    (0, NAN, NAN, NAN, NAN),
        "10%..20%":   (1, NAN, NAN, NAN, NAN),   # A s5, on the last session
        ">20%":       (0, NAN, NAN, NAN, NAN),
    }, orient="index", columns=["events", "fill_1d", "fill_2d", "fill_3d",
                                "mean_days_to_fill"])
    got = table[expected.columns].copy()
    got.index = got.index.astype(str)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_names=False)


def test_gap_classes_are_the_articles_right_closed_bins():
    """Gaps exactly on a bound (in percent) go to the class below, as ``pd.cut`` does."""
    from factors.gap import GAP_CLASS_BINS, GAP_CLASSES, GAP_TYPES, gap_class

    assert GAP_CLASS_BINS == (-np.inf, -10, -5, -2, 2, 5, 10, 20, np.inf)
    pct = pd.Series([-10.0, -5.0, -2.0, 2.0, 5.0, 10.0, 20.0, -9.5, 2.5, 20.5])
    assert list(gap_class(pct).astype(str)) == [
        "<=-10%", "-10%..-5%", "-5%..-2%", "-2%..2%", "2%..5%", "5%..10%", "10%..20%",
        "-10%..-5%", "2%..5%", ">20%"]
    article = pd.cut(pct, bins=[-np.inf, -10, -5, -2, 2, 5, 10, 20, np.inf],
                     labels=['large_gap_down', 'medium_gap_down', 'small_gap_down', 'no_gap',
                             'small_gap_up', 'medium_gap_up', 'large_gap_up', 'massive_gap_up'])
    assert [GAP_TYPES[c] for c in gap_class(pct)] == list(article)
    assert list(GAP_TYPES) == list(GAP_CLASSES)

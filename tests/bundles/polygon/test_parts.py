"""Part files (``YYYY-MM-DD.part-<n>.csv.gz``): tickers downloaded after a session's day file
are ingested, and the last-row-wins duplicate rule runs across the files in order."""
from __future__ import annotations

import pandas as pd
import pytest

from bundles import layout
from bundles.polygon.parts import read_session_files

from . import hand
from .hand import ET, PART_BARS


@pytest.fixture(scope="module")
def bundle(hand_bundle):
    return hand_bundle


def test_ticker_in_a_part_file_is_ingested(bundle):
    data, side, root = bundle
    assert [p.name for p in layout.day_file_parts(root, layout.MINUTE_DATASET, "2024-11-26")] \
        == ["2024-11-26.csv.gz", "2024-11-26.part-1.csv.gz"]
    late = data.asset_finder.lookup_symbol("LATE", pd.Timestamp("2024-11-26"))
    reader = data.equity_minute_bar_reader
    minutes = reader.calendar.session_minutes(pd.Timestamp("2024-11-26"))
    close, volume = reader.load_raw_arrays(["close", "volume"], minutes[0], minutes[-1],
                                           [late.sid])
    traded = minutes[volume[:, 0] > 0].tz_convert(ET)
    assert [t.strftime("%H:%M") for t in traded] == ["09:31", "16:00"]
    assert close[volume[:, 0] > 0, 0] == pytest.approx([7.10, 7.35])
    daily = data.equity_daily_bar_reader
    assert daily.get_value(late.sid, pd.Timestamp("2024-11-26"), "close") == pytest.approx(7.36)
    assert daily.get_value(late.sid, pd.Timestamp("2024-11-26"), "volume") == 300
    r = hand.report(side)
    assert r["file_counts"]["part_files"] == 1
    assert r["rows_read"] == len(hand.BARS) + len(PART_BARS)


def test_last_row_wins_across_parts(tmp_path):
    day = "2024-11-26"
    layout.write_day_file(tmp_path, layout.MINUTE_DATASET, day, hand.frame(hand.BARS[:3]))
    # part 1 repeats AUC's 04:00 bar with another close (it must win) and adds LATE
    fix = hand.frame([("AUC", day, "04:00", 9.00, 9.10, 8.90, 9.08, 100)] + PART_BARS)
    layout.write_day_part(tmp_path, layout.MINUTE_DATASET, day, fix)
    # part 2 repeats LATE's 09:30 bar unchanged (an exact duplicate)
    layout.write_day_part(tmp_path, layout.MINUTE_DATASET, day, hand.frame(PART_BARS[:1]))
    paths = layout.day_file_parts(tmp_path, layout.MINUTE_DATASET, day)
    assert len(paths) == 3
    frame = read_session_files(paths, day)
    assert list(frame.symbols) == ["AUC", "LATE"]
    tickers = frame.ticker
    assert list(tickers) == ["AUC"] * 3 + ["LATE"] * 3  # sorted by (ticker, time)
    assert (frame.window_start[:3] == hand.frame(hand.BARS[:3])["window_start"].to_numpy()).all()
    assert frame.close[0] == 9.08  # the later file's row
    assert frame.counts["conflicting_duplicates"] == 1 and frame.counts["duplicate_rows"] == 1
    assert frame.counts["rows"] == 3 + 4 + 1 and frame.counts["part_files"] == 2
    # one file: exactly read_day_file
    single = read_session_files(paths[:1], day)
    assert "part_files" not in single.counts and len(single) == 3

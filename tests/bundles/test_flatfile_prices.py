"""Issue #12, item 3: prices the bundle cannot store are bad rows of the flat-file reader.

``inf`` (or ``1e400``, which parses as inf) and prices above :data:`bundles.flatfiles.MAX_PRICE`
(~$4.29M: zipline stores daily prices as uint32 x 1000) used to pass the reader and crash in
zipline's ``convert_cols`` ("Value inf from column 'high' is too large") naming nothing, even
with ``bad_rows=skip``. They are now rejected with the file, ticker and line, or dropped and
reported with ``bad_rows=skip`` -- in the reader and through a whole ingest.
"""
from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pandas as pd
import pytest

from bundles import flatfiles, layout
from bundles.flatfiles import FlatFileError, read_day_file
from bundles.polygon import PolygonBundleConfig, build_bundle
from bundles.polygon.bars import UINT32_MAX, ohlc_ratio_for
from tests.synth import ET, minute_rows, write_minute_days

DAY = "2024-07-09"
HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
T0 = pd.Timestamp(f"{DAY} 09:30", tz=ET).value
MIN = 60_000_000_000


def _row(ticker="AAA", i=0, o=10.0, c=10.5, h=11.0, l=9.5, v=100):
    return f"{ticker},{v},{o},{c},{h},{l},{T0 + i * MIN},3"


def _write(tmp_path, lines, name=f"{DAY}.csv.gz"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(("\n".join([HEADER] + lines) + "\n").encode()))
    return path


BAD_PRICES = [
    # (row, reason in the message)
    (_row("ZZZ", h="inf"), "not finite"),
    (_row("ZZZ", h="Infinity"), "not finite"),
    (_row("ZZZ", h="1e400"), "not finite"),  # overflows float64 to inf
    (_row("ZZZ", o="inf", c="inf", h="inf", l="inf"), "not finite"),
    (_row("ZZZ", c="inf", h="inf"), "not finite"),
    (_row("ZZZ", o=5e6, c=5e6, h=5e6, l=5e6), "above the largest storable price"),
    (_row("ZZZ", h=4_294_968.0), "above the largest storable price"),
    (_row("ZZZ", o=5e9, c=5e9, h=5e9, l=5e9), "above the largest storable price"),
    (_row("ZZZ", o=1e300, c=1e300, h=1e300, l=1e300), "above the largest storable price"),
    (_row("ZZZ", v="inf"), "volume is not finite"),
    (_row("ZZZ", o=1e-7, c=1e-7, h=1e-7, l=1e-7), "below the smallest storable price"),
    (_row("ZZZ", l=4e-7, o=1e-6, c=1e-6, h=1e-6), "below the smallest storable price"),
]


@pytest.mark.parametrize("bad, reason", BAD_PRICES)
def test_unstorable_prices_are_rejected_with_file_ticker_and_line(tmp_path, bad, reason):
    path = _write(tmp_path, [_row("AAA", 0), _row("AAA", 1), bad])
    with pytest.raises(FlatFileError) as err:
        read_day_file(path, DAY)
    msg = str(err.value)
    assert str(path) in msg and "line 4" in msg and "ticker 'ZZZ'" in msg, msg
    assert reason in msg, msg
    assert "bad_rows=skip" in msg  # says what to do


@pytest.mark.parametrize("bad, reason", BAD_PRICES)
@pytest.mark.parametrize("kind", ["minute", "day"])
def test_unstorable_prices_are_skipped_and_listed(tmp_path, bad, reason, kind):
    path = _write(tmp_path, [_row("AAA", 0), bad, _row("BBB", 0)])
    frame = read_day_file(path, DAY, kind=kind, bad_rows="skip")
    assert list(frame.ticker) == ["AAA", "BBB"]
    assert frame.counts["bad_rows"] == 1
    assert len(frame.skipped) == 1 and "line 3" in frame.skipped[0]
    assert "'ZZZ'" in frame.skipped[0] and reason in frame.skipped[0]
    assert np.isfinite(frame.high).all() and (frame.high <= flatfiles.MAX_PRICE).all()


@pytest.mark.parametrize("price", [1e-6, 0.0001, 750_000.0, 4_294_967.0, 4_294_967.294])
def test_real_prices_up_to_the_limit_are_kept(tmp_path, price):
    """BRK.A (~$700k-$800k, the highest-priced US share) is nowhere near the limit."""
    path = _write(tmp_path, [_row("BRK.A", 0, o=price, c=price, h=price, l=price)])
    frame = read_day_file(path, DAY)
    assert list(frame.high) == [price]


def test_the_limits_are_what_the_bar_stores_hold():
    """Every price the reader accepts fits zipline's daily bars (uint32 x 1000) and the
    minute bars (uint32 x the per-sid ratio, >= 1000 for any accepted price); the lowest is
    one unit of the finest minute ratio (x 1e6)."""
    assert flatfiles.MAX_PRICE == UINT32_MAX / 1000
    assert round(flatfiles.MAX_PRICE * 1000) <= UINT32_MAX
    assert ohlc_ratio_for(flatfiles.MAX_PRICE) >= 1000
    assert flatfiles.MAX_PRICE * ohlc_ratio_for(flatfiles.MAX_PRICE) <= UINT32_MAX
    assert round(flatfiles.MIN_PRICE * ohlc_ratio_for(1.0)) == 1


def _raw_with(tmp_path, mangle):
    root, rng = tmp_path / "raw", np.random.default_rng(12)
    ok = minute_rows("OK", DAY, 20.0, rng, "09:30", "09:40")
    bad = minute_rows("BAD", DAY, 20.0, rng, "09:30", "09:40")
    mangle(bad)
    write_minute_days(root, pd.concat([ok, bad], ignore_index=True))
    # rows sorted by ticker: BAD's 11 rows on lines 2..12, the mangled one is row 3 (line 5)
    return root


def _inf_high(bad):
    bad.loc[bad.index[3], "high"] = np.inf


def _huge_bar(bad):
    bad.loc[bad.index[3], ["open", "high", "low", "close"]] = 5e9


def _five_million(bad):
    """$5M: storable in minute bars (x100) but not in daily bars (x1000): no longer half
    ingested (minutes kept, daily bar blanked) but a bad row like any unstorable price."""
    bad.loc[bad.index[3], ["open", "high", "low", "close"]] = 5_000_000.0


@pytest.mark.parametrize("mangle, reason", [(_inf_high, "not finite"),
                                            (_huge_bar, "above the largest storable price"),
                                            (_five_million, "above the largest storable price")])
def test_ingest_stops_naming_file_ticker_and_line(tmp_path, mangle, reason):
    root = _raw_with(tmp_path, mangle)
    with pytest.raises(FlatFileError) as err:
        build_bundle("test-unstorable", PolygonBundleConfig(root=root), tmp_path / "z")
    msg = str(err.value)
    assert re.search(rf"{DAY}\.csv\.gz: line 5, ticker 'BAD': .*{reason}", msg), msg
    assert "too large" not in msg


@pytest.mark.parametrize("mangle", [_inf_high, _huge_bar, _five_million])
def test_ingest_with_skip_drops_the_bar_and_reports_it(tmp_path, mangle):
    root = _raw_with(tmp_path, mangle)
    data = build_bundle("test-unstorable-skip", PolygonBundleConfig(root=root, bad_rows="skip"),
                        tmp_path / "z")
    sid = data.asset_finder.lookup_symbol("BAD", pd.Timestamp(DAY)).sid
    minutes = pd.date_range(f"{DAY} 09:31", f"{DAY} 09:41", freq="min", tz=ET).tz_convert("UTC")
    (high,) = data.equity_minute_bar_reader.load_raw_arrays(["high"], minutes[0], minutes[-1],
                                                            [sid])
    # the 09:33 bar (4th, ends 09:34) is gone; the others are stored as they were
    assert np.isnan(high[3, 0]) and np.isfinite(np.delete(high[:, 0], 3)).all()
    assert np.nanmax(high) < 100
    daily_high = data.equity_daily_bar_reader.get_value(sid, pd.Timestamp(DAY), "high")
    assert 10 < daily_high < 100
    report = json.loads(next((tmp_path / "z").rglob("ingest_report.json")).read_text())
    assert report["file_counts"]["bad_rows"] == 1
    (skipped,) = report["skipped_rows"]
    assert f"{DAY}.csv.gz: line 5, ticker 'BAD'" in skipped


def test_day_aggs_with_unstorable_prices_are_rejected(tmp_path):
    """``daily_source=day`` reads Polygon day aggs with the same reader and the same limit."""
    root = tmp_path / "raw"
    day_ns = pd.Timestamp(DAY, tz=ET).value
    rows = pd.DataFrame({"ticker": ["AAA", "HUGE"], "volume": [1e6, 10.0],
                         "open": [10.0, 5e6], "close": [10.5, 5e6], "high": [11.0, 5e6],
                         "low": [9.5, 5e6], "window_start": [day_ns, day_ns],
                         "transactions": [100, 1]})
    layout.write_day_file(root, layout.DAY_DATASET, DAY, rows)
    with pytest.raises(FlatFileError, match=r"line 3, ticker 'HUGE': .*above the largest"):
        build_bundle("test-unstorable-day", PolygonBundleConfig(root=root, daily_source="day"),
                     tmp_path / "z")

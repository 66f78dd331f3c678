"""Real minute bars (QuantConnect Lean / AlgoSeek, ../shared/data/real/lean) through the bundle.

The Lean files are unadjusted, start-labelled, ET, extended hours included -- the same facts as
Polygon's. We convert them into Polygon flat files exactly as a user's files would arrive, ingest,
and compare what zipline reads back with the source bars.
"""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from bundles import layout
from bundles.polygon import PolygonBundleConfig, build_bundle
from tests.conftest import shared_path
from tests.synth import data_portal

ET = "America/New_York"
LEAN_TICKERS = ["aapl", "aig", "bac", "ibm", "spy"]


def read_lean_day(path):
    """One Lean ``_trade.zip``: ms since midnight ET, OHLC x10000, volume -> Polygon rows."""
    ticker = path.parent.name.upper()
    day = pd.Timestamp(path.name[:8])
    with zipfile.ZipFile(path) as zf:
        raw = zf.read(zf.namelist()[0])
    frame = pd.read_csv(io.BytesIO(raw), header=None,
                        names=["ms", "open", "high", "low", "close", "volume"])
    start = (day.tz_localize(ET) + pd.to_timedelta(frame["ms"], unit="ms")).dt.tz_convert("UTC")
    return pd.DataFrame({
        "ticker": ticker,
        "volume": frame["volume"].astype(float),
        "open": frame["open"] / 10000, "close": frame["close"] / 10000,
        "high": frame["high"] / 10000, "low": frame["low"] / 10000,
        "window_start": start.astype("int64"),
        "transactions": 1,
        "day": day,
    })


@pytest.fixture(scope="module")
def lean(tmp_path_factory):
    base = shared_path("real", "lean", "minute")
    frames = [read_lean_day(p) for t in LEAN_TICKERS for p in sorted((base / t).glob("*_trade.zip"))]
    frame = pd.concat(frames, ignore_index=True)
    root = tmp_path_factory.mktemp("lean_raw")
    for day, rows in frame.groupby("day"):
        layout.write_day_file(root, layout.MINUTE_DATASET, day,
                              rows.sort_values(["ticker", "window_start"]))
    # AAPL 7:1 split effective 2014-06-09 (Polygon: split_from=1, split_to=7); cross-check it
    # against Lean's own factor file below.
    layout.write_reference(root, "splits", [
        {"ticker": "AAPL", "execution_date": "2014-06-09", "split_from": 1, "split_to": 7}])
    layout.write_reference(root, "tickers", [
        {"ticker": t.upper(), "name": t.upper(), "type": "ETF" if t == "spy" else "CS",
         "primary_exchange": "ARCX" if t == "spy" else "XNYS", "active": True} for t in LEAN_TICKERS])
    # two disjoint periods (2013-10 and 2014-06): one bundle over both
    config = PolygonBundleConfig(root=root)
    data = build_bundle("test-lean", config, tmp_path_factory.mktemp("lean_zipline"))
    return frame, data


def test_lean_factor_file_confirms_the_7_to_1_split():
    factors = pd.read_csv(shared_path("real", "lean", "factor_files", "aapl.csv"), header=None,
                          names=["date", "price_factor", "split_factor", "ref"])
    before = factors[factors.date <= 20140606].iloc[-1].split_factor
    after = factors[factors.date >= 20140609].iloc[0].split_factor
    assert before / after == pytest.approx(1 / 7, rel=1e-6)


@pytest.mark.parametrize("ticker", ["AAPL", "IBM", "SPY", "BAC"])
def test_lean_minutes_read_back_exactly(lean, ticker):
    frame, data = lean
    reader = data.equity_minute_bar_reader
    src = frame[frame.ticker == ticker].copy()
    start_et = pd.to_datetime(src.window_start, utc=True).dt.tz_convert(ET)
    clock = start_et.dt.hour * 60 + start_et.dt.minute
    regular = src[(clock >= 570) & (clock <= 959)].copy()  # 09:30..15:59 starts; no half days here
    regular["dt"] = pd.to_datetime(regular.window_start, utc=True) + pd.Timedelta(minutes=1)
    sid = data.asset_finder.lookup_symbol(ticker, regular.day.iloc[-1]).sid
    for day, exp in regular.groupby("day"):
        minutes = reader.calendar.session_minutes(day)
        arrays = reader.load_raw_arrays(["open", "high", "low", "close", "volume"],
                                        minutes[0], minutes[-1], [sid])
        got = pd.DataFrame({f: a[:, 0] for f, a in zip(["open", "high", "low", "close", "volume"], arrays)},
                           index=minutes)
        exp = exp.set_index("dt")
        assert list(got.index[got.volume > 0]) == list(exp.index)
        np.testing.assert_allclose(got.loc[exp.index, ["open", "high", "low", "close"]],
                                   exp[["open", "high", "low", "close"]], rtol=1e-9)
        np.testing.assert_array_equal(got.loc[exp.index, "volume"], exp["volume"])


def test_aapl_bad_0400_print_stays_out_of_the_session(lean):
    _, data = lean
    sid = data.asset_finder.lookup_symbol("AAPL", pd.Timestamp("2014-06-09")).sid
    day = pd.Timestamp("2014-06-09")
    reader = data.equity_minute_bar_reader
    minutes = reader.calendar.session_minutes(day)
    highs = reader.load_raw_arrays(["high"], minutes[0], minutes[-1], [sid])[0][:, 0]
    assert np.nanmax(highs) < 100  # the 04:00 print was 645.57
    daily = data.equity_daily_bar_reader.get_value(sid, day, "high")
    assert daily < 100


def test_aapl_split_applied_as_adjustment(lean):
    frame, data = lean
    portal = data_portal(data)
    aapl = data.asset_finder.lookup_symbol("AAPL", pd.Timestamp("2014-06-09"))
    end = pd.Timestamp("2014-06-09 16:00", tz=ET).tz_convert("UTC")
    hist = portal.get_history_window([aapl], end, 3, "1d", "close", "minute")[aapl]
    src = frame[frame.ticker == "AAPL"].copy()
    t = pd.to_datetime(src.window_start, utc=True).dt.tz_convert(ET)
    clock = t.dt.hour * 60 + t.dt.minute
    closes = src[(clock >= 570) & (clock <= 959)].groupby("day").close.last()
    hand = closes.round(3) * np.where(closes.index < pd.Timestamp("2014-06-09"), 1 / 7, 1.0)
    np.testing.assert_allclose(hist.to_numpy(), hand.round(3).to_numpy(), atol=1e-9)
    assert hist.iloc[0] == pytest.approx(closes.iloc[0] / 7, rel=1e-4)  # ~92.x, not ~645
    raw = data.equity_daily_bar_reader.get_value(aapl.sid, pd.Timestamp("2014-06-06"), "close")
    assert raw == pytest.approx(closes.loc["2014-06-06"], abs=1e-3)  # stored unadjusted

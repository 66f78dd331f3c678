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


def write_lean_raw(root) -> pd.DataFrame:
    """The Lean minute bars of :data:`LEAN_TICKERS` written under ``root`` as Polygon day
    files, with AAPL's split and the tickers file; returns the bars."""
    base = shared_path("real", "lean", "minute")
    frames = [read_lean_day(p) for t in LEAN_TICKERS for p in sorted((base / t).glob("*_trade.zip"))]
    frame = pd.concat(frames, ignore_index=True)
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
    return frame


@pytest.fixture(scope="module")
def lean(tmp_path_factory):
    root = tmp_path_factory.mktemp("lean_raw")
    frame = write_lean_raw(root)
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
    # daily closes are official closes (the 16:00 bar's open: 647.25 on 2014-06-05, where
    # the 15:59 bar closed at 647.35); the end session's value in a minute-mode history
    # window is its last minute's close (both 93.70 on 2014-06-09)
    official, last = _closes(frame, "AAPL")
    closes = official.fillna(last)
    closes.iloc[-1] = last.iloc[-1]
    assert (official.loc["2014-06-05"], last.loc["2014-06-05"]) == (647.25, 647.35)
    hand = closes.round(3) * np.where(closes.index < pd.Timestamp("2014-06-09"), 1 / 7, 1.0)
    np.testing.assert_allclose(hist.to_numpy(), hand.round(3).to_numpy(), atol=1e-9)
    assert hist.iloc[0] == pytest.approx(closes.iloc[0] / 7, rel=1e-4)  # ~92.x, not ~645
    raw = data.equity_daily_bar_reader.get_value(aapl.sid, pd.Timestamp("2014-06-06"), "close")
    assert raw == pytest.approx(closes.loc["2014-06-06"], abs=1e-3)  # stored unadjusted


def _closes(frame, ticker):
    """Per day: the open of the Lean bar starting 16:00 (NaN when absent) and the close of
    the last bar starting 09:30..15:59 (no half days in these files)."""
    src = frame[frame.ticker == ticker]
    t = pd.to_datetime(src.window_start, utc=True).dt.tz_convert(ET)
    clock = t.dt.hour * 60 + t.dt.minute
    last = src[(clock >= 570) & (clock <= 959)].groupby("day").close.last()
    official = src[clock == 960].set_index("day").open.reindex(last.index)
    return official, last


@pytest.mark.parametrize("ticker", ["AIG", "BAC", "IBM", "SPY"])
def test_lean_closing_cross_is_the_auction_close_and_the_daily_close(lean, ticker):
    from algorithms.execution.auctions import AuctionPrints
    from bundles.ingestions import ingestion_dir_of

    frame, data = lean
    official, last = _closes(frame, ticker)
    prints = AuctionPrints(ingestion_dir_of(data.asset_finder))
    reader = data.equity_daily_bar_reader
    sid = data.asset_finder.lookup_symbol(ticker, official.index[-1]).sid
    for day in official.index:
        close = reader.get_value(sid, day, "close")
        if np.isnan(official.loc[day]):  # no 16:00 bar (AIG 10-09, IBM 10-10/11): fallback
            assert np.isnan(prints.value(day, sid, "close_print"))
            assert close == pytest.approx(last.loc[day], abs=1e-9)
        else:
            assert prints.value(day, sid, "close_print") == official.loc[day]
            assert close == pytest.approx(official.loc[day], abs=1e-9)
    # the week holds both cases: closes that differ from the 15:59 bar's, and fallbacks
    if ticker in ("BAC", "SPY", "IBM"):
        assert (official.dropna() != last[official.notna()]).any()


def test_lean_spy_2023_08_03_auction_prints(lean):
    """SPY 2023-08-03: the opening print is the 09:30 bar's open, the closing print the
    16:00 bar's open, each with its bar's volume (Lean file values)."""
    from algorithms.execution.auctions import AuctionPrints
    from bundles.ingestions import ingestion_dir_of

    _, data = lean
    day = pd.Timestamp("2023-08-03")
    sid = data.asset_finder.lookup_symbol("SPY", day).sid
    prints = AuctionPrints(ingestion_dir_of(data.asset_finder))
    assert prints.value(day, sid, "open_print") == 448.04
    assert prints.value(day, sid, "open_volume") == 764109
    assert prints.value(day, sid, "close_print") == 448.84
    assert prints.value(day, sid, "close_volume") == 282858
    assert data.equity_daily_bar_reader.get_value(sid, day, "close") == pytest.approx(448.84)
    # the 16:00 bar's 282,858 shares are not in the daily volume: regular minutes only
    frame = lean[0]
    src = frame[(frame.ticker == "SPY") & (frame.day == day)]
    t = pd.to_datetime(src.window_start, utc=True).dt.tz_convert(ET)
    clock = t.dt.hour * 60 + t.dt.minute
    regular = src[(clock >= 570) & (clock <= 959)].volume.sum()
    assert data.equity_daily_bar_reader.get_value(sid, day, "volume") == regular


def test_lean_spy_premarket_cut_at_0925(lean):
    """The 09:25 cut of SPY 2023-08-03 against the Lean bars: starts 04:00..09:24 (09:24 in,
    09:25 out), the ranking window 08:55..09:24."""
    from algorithms.extended_hours import ExtendedHours
    from bundles.ingestions import ingestion_dir_of

    frame, data = lean
    day = pd.Timestamp("2023-08-03")
    src = frame[(frame.ticker == "SPY") & (frame.day == day)]
    t = pd.to_datetime(src.window_start, utc=True).dt.tz_convert(ET)
    clock = (t.dt.hour * 60 + t.dt.minute).to_numpy()
    cut = src[(clock >= 240) & (clock < 565)]
    window = src[(clock >= 535) & (clock < 565)]
    assert clock[(clock >= 240) & (clock < 565)].max() == 564  # a 09:24 bar exists
    sid = data.asset_finder.lookup_symbol("SPY", day).sid
    eh = ExtendedHours(ingestion_dir_of(data.asset_finder))
    row = eh.premarket_cut(day, [sid], pd.Timestamp("2023-08-03 08:45", tz=ET)).loc[sid]
    assert row["last"] == cut.close.iloc[-1] == 448.48
    assert row["high"] == cut.high.max() and row["low"] == cut.low.min()
    assert row["volume"] == cut.volume.sum() and row["bars"] == len(cut)
    assert row["dollar_volume"] == pytest.approx((cut.close * cut.volume).sum(), rel=1e-12)
    assert row["window_dollar_volume"] == pytest.approx((window.close * window.volume).sum(),
                                                        rel=1e-12)

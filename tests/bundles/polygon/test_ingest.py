"""Polygon flat files -> ingest -> zipline readers, against independent pandas expectations."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from bundles import layout
from bundles.flatfiles import FlatFileError
from bundles.polygon import SIDE_DIR, PolygonBundleConfig, build_bundle
from tests.synth import ET, data_portal, minute_rows, regular_session_expected, write_minute_days

DAYS = ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08", "2024-07-09"]
EARLY = ["2024-07-03"]  # NYSE closes 13:00 ET on 3 July 2024


def _frames():
    rng = np.random.default_rng(7)
    parts = []
    for day in DAYS:
        parts.append(minute_rows("AAA", day, 50.0 if day < "2024-07-08" else 49.0, rng))
        parts.append(minute_rows("PNY", day, 0.0034, rng, skip=0.5))
        # split 2:1 effective 2024-07-08: unadjusted prices halve
        parts.append(minute_rows("SPLT", day, 80.0 if day < "2024-07-08" else 40.0, rng, "09:00", "16:30"))
        if day in ("2024-07-01", "2024-07-03"):  # DLST: no trade on 07-02, delisted after 07-03
            parts.append(minute_rows("DLST", day, 12.0, rng, "09:30", "15:59", skip=0.3))
        if day in ("2024-07-01", "2024-07-02"):
            parts.append(minute_rows("RUSE", day, 5.0, rng, "09:30", "15:59"))
        if day in ("2024-07-08", "2024-07-09"):
            parts.append(minute_rows("RUSE", day, 30.0, rng, "09:30", "15:59"))
        big = minute_rows("BIG", day, 5000.0, rng, "09:30", "15:59")
        if day == "2024-07-02":
            big.loc[big.index[10], "volume"] = 5e9  # above uint32
        parts.append(big)
    frame = pd.concat(parts, ignore_index=True)
    # closing crosses away from the last regular close: the open of the bar starting at the
    # close is the official close (the daily close); 13:00 on the 3 July half day
    start = pd.to_datetime(frame.window_start, utc=True).dt.tz_convert(ET).dt.strftime("%Y-%m-%d %H:%M")
    for ticker, at, col in [("AAA", "2024-07-05 16:00", "low"), ("SPLT", "2024-07-03 13:00", "high")]:
        row = (frame.ticker == ticker) & (start == at)
        assert row.sum() == 1
        frame.loc[row, "open"] = frame.loc[row, col]
    return frame


def _reference(root):
    layout.write_reference(root, "tickers", [
        {"ticker": "AAA", "name": "Alpha", "type": "CS", "primary_exchange": "XNAS", "active": True,
         "composite_figi": "BBG000AAA", "cik": "1"},
        {"ticker": "PNY", "name": "Penny", "type": "CS", "primary_exchange": "XNAS", "active": True},
        {"ticker": "SPLT", "name": "Splitter", "type": "ETF", "primary_exchange": "ARCX", "active": True},
        {"ticker": "DLST", "name": "Gone", "type": "CS", "primary_exchange": "XNYS", "active": False,
         "delisted_utc": "2024-07-04T00:00:00Z"},
        {"ticker": "RUSE", "name": "Old Co", "type": "CS", "primary_exchange": "XNYS", "active": False,
         "delisted_utc": "2024-07-03T00:00:00Z", "composite_figi": "BBG000OLD"},
        {"ticker": "RUSE", "name": "New Co", "type": "CS", "primary_exchange": "XNAS", "active": True,
         "composite_figi": "BBG000NEW"},
        {"ticker": "BIG", "name": "Big", "type": "CS", "active": True},  # no primary exchange
    ])
    layout.write_reference(root, "splits", [
        {"ticker": "SPLT", "execution_date": "2024-07-08", "split_from": 1, "split_to": 2}])
    layout.write_reference(root, "dividends", [
        {"ticker": "AAA", "ex_dividend_date": "2024-07-08", "cash_amount": 1.0, "dividend_type": "CD",
         "pay_date": "2024-07-20", "record_date": "2024-07-09", "declaration_date": "2024-06-20"}])
    layout.write_reference(root, "ticker_details", [
        {"ticker": "AAA", "composite_figi": "BBG000AAA", "share_class_shares_outstanding": 5e8}])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    zroot = tmp_path_factory.mktemp("zipline")
    frame = _frames()
    # one deliberately unsorted file with a conflicting duplicate (last row must win)
    day0 = frame[pd.to_datetime(frame.window_start, utc=True).dt.tz_convert(ET).dt.strftime("%Y-%m-%d") == DAYS[1]]
    dup = day0[(day0.ticker == "AAA")].iloc[[340]].copy()  # 04:00 + 340 min = the 09:40 ET bar
    dup["close"] = dup["low"]
    rest = frame.drop(day0.index)
    write_minute_days(root, rest)
    layout.write_day_file(root, layout.MINUTE_DATASET, DAYS[1],
                          pd.concat([day0.sample(frac=1.0, random_state=3), dup]))
    frame.loc[dup.index, "close"] = dup["close"].to_numpy()  # what the bundle must keep
    _reference(root)
    data = build_bundle("test-synthetic", PolygonBundleConfig(root=root), zroot)
    return {"root": root, "zroot": zroot, "frame": frame, "data": data}


def _official_close(frame, early_closes=EARLY):
    """(day, ticker) -> the official close: the open of the bar STARTING at the close (16:00,
    13:00 on half days), from ET wall-clock times; absent where there is no such bar."""
    start = pd.to_datetime(frame["window_start"], utc=True).dt.tz_convert(ET)
    date = start.dt.strftime("%Y-%m-%d")
    close_at = np.where(date.isin(list(early_closes)), "13:00", "16:00")
    at = frame[start.dt.strftime("%H:%M").to_numpy() == close_at]
    day = pd.to_datetime(date[at.index])
    return pd.Series(at["open"].to_numpy(), index=pd.MultiIndex.from_arrays(
        [day, at["ticker"]], names=["day", "ticker"]))


def _sid(data, symbol, as_of="2024-07-09"):
    return data.asset_finder.lookup_symbol(symbol, pd.Timestamp(as_of)).sid


def _side(zroot, name="test-synthetic"):
    folders = sorted((zroot / "data" / name).iterdir())
    return folders[-1] / SIDE_DIR


def _read_minutes(data, sid, day):
    reader = data.equity_minute_bar_reader
    cal_minutes = pd.date_range(pd.Timestamp(f"{day} 09:31", tz=ET),
                                pd.Timestamp(f"{day} {'13:00' if day in EARLY else '16:00'}", tz=ET),
                                freq="min").tz_convert("UTC")
    arrays = reader.load_raw_arrays(["open", "high", "low", "close", "volume"],
                                    cal_minutes[0], cal_minutes[-1], [sid])
    return pd.DataFrame({f: a[:, 0] for f, a in zip(["open", "high", "low", "close", "volume"], arrays)},
                        index=cal_minutes)


@pytest.mark.parametrize("ticker", ["AAA", "PNY", "SPLT", "BIG"])
def test_minute_round_trip_is_exactly_the_regular_session_shifted(synthetic, ticker):
    data, frame = synthetic["data"], synthetic["frame"]
    sid = _sid(data, ticker)
    expected_all = regular_session_expected(frame[frame.ticker == ticker], EARLY)
    for day in DAYS:
        got = _read_minutes(data, sid, day)
        exp = expected_all[expected_all.dt.dt.tz_convert(ET).dt.strftime("%Y-%m-%d") == day]
        exp = exp.set_index("dt")[["open", "high", "low", "close", "volume"]]
        exp["volume"] = exp["volume"].clip(upper=np.iinfo(np.uint32).max - 1)
        # every stored minute is an expected bar and vice versa (no pre-market leak)
        stored = got.index[got["volume"] > 0]
        assert list(stored) == list(exp.index), (ticker, day)
        np.testing.assert_allclose(got.loc[exp.index, ["open", "high", "low", "close"]].to_numpy(),
                                   exp[["open", "high", "low", "close"]].to_numpy(), rtol=1e-9)
        np.testing.assert_array_equal(got.loc[exp.index, "volume"].to_numpy(), exp["volume"].to_numpy())


def test_0930_bar_lands_at_0931_and_premarket_does_not(synthetic):
    data, frame = synthetic["data"], synthetic["frame"]
    sid = _sid(data, "AAA")
    start = pd.to_datetime(frame.window_start, utc=True).dt.tz_convert(ET)
    bar_0930 = frame[(frame.ticker == "AAA") & (start == pd.Timestamp("2024-07-05 09:30", tz=ET))].iloc[0]
    bar_0929 = frame[(frame.ticker == "AAA") & (start == pd.Timestamp("2024-07-05 09:29", tz=ET))].iloc[0]
    got = _read_minutes(data, sid, "2024-07-05")
    first = got.loc[pd.Timestamp("2024-07-05 09:31", tz=ET)]
    assert first["open"] == pytest.approx(bar_0930["open"], rel=1e-9)
    assert first["volume"] == bar_0930["volume"] != bar_0929["volume"]
    bar_1559 = frame[(frame.ticker == "AAA") & (start == pd.Timestamp("2024-07-05 15:59", tz=ET))].iloc[0]
    assert got.loc[pd.Timestamp("2024-07-05 16:00", tz=ET), "close"] == pytest.approx(bar_1559["close"])


def test_half_day_is_cut_at_1300(synthetic):
    data = synthetic["data"]
    got = _read_minutes(data, _sid(data, "AAA"), "2024-07-03")
    assert got.index[-1] == pd.Timestamp("2024-07-03 13:00", tz=ET)
    assert (got["volume"] > 0).sum() == 210  # 09:30..12:59 start labels, one bar each
    minutes = data.equity_minute_bar_reader.calendar.session_minutes(pd.Timestamp("2024-07-03"))
    assert minutes[-1] == pd.Timestamp("2024-07-03 13:00", tz=ET)


def test_sub_penny_prices_keep_their_digits(synthetic):
    data, frame = synthetic["data"], synthetic["frame"]
    got = _read_minutes(data, _sid(data, "PNY"), "2024-07-05")
    got = got[got.volume > 0]
    assert got["low"].min() < 0.0035
    exp = regular_session_expected(frame[frame.ticker == "PNY"]).set_index("dt")
    np.testing.assert_allclose(got["close"], exp.loc[got.index, "close"], rtol=0, atol=1e-9)
    assets = pd.read_parquet(_side(synthetic["zroot"]) / "assets.parquet").set_index("ticker")
    assert assets.loc["PNY", "ohlc_ratio"] == 1e6
    assert assets.loc["BIG", "ohlc_ratio"] < 1e6  # $5,000 x 1e6 would overflow uint32


def test_conflicting_duplicate_keeps_last_and_is_reported(synthetic):
    report = json.loads((_side(synthetic["zroot"]) / "ingest_report.json").read_text())
    assert report["file_counts"]["conflicting_duplicates"] == 1
    assert report["file_counts"]["unsorted"] == 1
    assert any("BIG" in m and "clipped" in m for m in report["unstorable_values"])


def test_daily_bars_are_dense_and_resampled_from_the_regular_session(synthetic):
    data, frame = synthetic["data"], synthetic["frame"]
    reader = data.equity_daily_bar_reader
    for ticker in ["AAA", "SPLT", "DLST"]:
        sid = _sid(data, ticker, "2024-07-03")
        exp = regular_session_expected(frame[frame.ticker == ticker], EARLY)
        exp["day"] = exp.dt.dt.tz_convert(ET).dt.tz_localize(None).dt.normalize()
        g = exp.groupby("day")
        exp_daily = pd.DataFrame({"open": g.open.first(), "high": g.high.max(), "low": g.low.min(),
                                  "close": g.close.last(), "volume": g.volume.sum()})
        # the official close (the 16:00 / 13:00 bar's open) where there is one, else the
        # last regular minute's close; high/low widened to it; volume: regular minutes only
        official = _official_close(frame[frame.ticker == ticker]).xs(ticker, level="ticker")
        official = official.reindex(exp_daily.index)
        exp_daily["close"] = official.fillna(exp_daily["close"])
        exp_daily["high"] = np.fmax(exp_daily["high"], official)
        exp_daily["low"] = np.fmin(exp_daily["low"], official)
        asset = data.asset_finder.retrieve_asset(sid)
        sessions = reader.sessions[(reader.sessions >= asset.start_date) & (reader.sessions <= asset.end_date)]
        arrays = reader.load_raw_arrays(["open", "high", "low", "close", "volume"],
                                        sessions[0], sessions[-1], [sid])
        got = pd.DataFrame({f: a[:, 0] for f, a in zip(["open", "high", "low", "close", "volume"], arrays)},
                           index=sessions)
        exp_daily = exp_daily.reindex(sessions)
        exp_daily["volume"] = exp_daily["volume"].fillna(0)
        # daily bars are stored x1000
        np.testing.assert_allclose(got[["open", "high", "low", "close"]], exp_daily[["open", "high", "low", "close"]].round(3), atol=1e-9)
        np.testing.assert_array_equal(got["volume"], exp_daily["volume"])
    dl = data.asset_finder.retrieve_asset(_sid(data, "DLST", "2024-07-01"))
    assert dl.end_date == pd.Timestamp("2024-07-03")


def test_reused_ticker_gets_two_sids_with_separate_lives(synthetic):
    finder = synthetic["data"].asset_finder
    old = finder.lookup_symbol("RUSE", pd.Timestamp("2024-07-02"))
    new = finder.lookup_symbol("RUSE", pd.Timestamp("2024-07-09"))
    assert old.sid != new.sid
    assert (old.start_date, old.end_date) == (pd.Timestamp("2024-07-01"), pd.Timestamp("2024-07-02"))
    assert (new.start_date, new.end_date) == (pd.Timestamp("2024-07-08"), pd.Timestamp("2024-07-09"))
    assert (old.asset_name, new.asset_name) == ("Old Co", "New Co")
    assert old.exchange_info.country_code == "US"
    assets = pd.read_parquet(_side(synthetic["zroot"]) / "assets.parquet").set_index("sid")
    assert assets.loc[old.sid, "composite_figi"] == "BBG000OLD"
    assert assets.loc[new.sid, "composite_figi"] == "BBG000NEW"
    assert assets.loc[_sid(synthetic["data"], "SPLT"), "type"] == "ETF"
    assert assets.loc[_sid(synthetic["data"], "AAA"), "share_class_shares_outstanding"] == 5e8


def test_exchanges_keep_polygon_mic_and_trade_on_the_bundle_calendar(synthetic):
    finder = synthetic["data"].asset_finder
    minute = pd.Timestamp("2024-07-09 10:00", tz=ET)
    expected = {"AAA": "XNAS", "SPLT": "ARCX", "BIG": "UNKNOWN"}
    for ticker, mic in expected.items():
        asset = finder.lookup_symbol(ticker, pd.Timestamp("2024-07-09"))
        assert asset.exchange_full == mic
        # can_trade() opens the calendar named asset.exchange: one that exists, the bundle's
        assert asset.exchange == "XNYS"
        assert asset.is_exchange_open(minute)
        assert not asset.is_exchange_open(pd.Timestamp("2024-07-09 16:30", tz=ET))


def test_extended_hours_table_matches_pandas(synthetic):
    data, frame = synthetic["data"], synthetic["frame"]
    ext = pd.read_parquet(_side(synthetic["zroot"]) / "extended_hours.parquet")
    sid = _sid(data, "AAA")
    start = pd.to_datetime(frame.window_start, utc=True).dt.tz_convert(ET)
    for day in ["2024-07-02", "2024-07-03"]:
        clock = start.dt.strftime("%H:%M")
        on_day = (frame.ticker == "AAA") & (start.dt.strftime("%Y-%m-%d") == day)
        pm = frame[on_day & (clock >= "04:00") & (clock < "09:30")]
        close = "13:00" if day in EARLY else "16:00"
        ah_end = "17:00" if day in EARLY else "20:00"
        ah = frame[on_day & (clock >= close) & (clock < ah_end)]
        row = ext[(ext.sid == sid) & (ext.session == pd.Timestamp(day))].iloc[0]
        assert row.pm_open == pm.open.iloc[0] and row.pm_last == pm.close.iloc[-1]
        assert row.pm_high == pm.high.max() and row.pm_low == pm.low.min()
        assert row.pm_volume == pm.volume.sum() and row.pm_bars == len(pm)
        assert row.pm_dollar_volume == pytest.approx((pm.volume * (pm.high + pm.low + pm.close) / 3).sum())
        assert row.ah_high == ah.high.max() and row.ah_volume == ah.volume.sum()


def test_split_and_dividend_adjusted_history(synthetic):
    data, frame = synthetic["data"], synthetic["frame"]
    portal = data_portal(data)
    spl = data.asset_finder.lookup_symbol("SPLT", pd.Timestamp("2024-07-09"))
    aaa = data.asset_finder.lookup_symbol("AAA", pd.Timestamp("2024-07-09"))
    end = pd.Timestamp("2024-07-09 16:00", tz=ET).tz_convert("UTC")
    hist = portal.get_history_window([spl, aaa], end, 6, "1d", "close", "minute")

    exp = regular_session_expected(frame, EARLY)
    exp["day"] = exp.dt.dt.tz_convert(ET).dt.tz_localize(None).dt.normalize()
    last = exp.groupby(["day", "ticker"]).close.last()
    # daily closes are official closes where a closing bar exists; the end session's value in
    # a minute-mode history window comes from its minute bars (the 15:59 bar's close)
    closes = _official_close(frame).reindex(last.index).fillna(last).unstack()
    closes.iloc[-1] = last.unstack().iloc[-1]
    raw_spl = closes["SPLT"].round(3)
    raw_aaa = closes["AAA"].round(3)
    ex = pd.Timestamp("2024-07-08")
    hand_spl = raw_spl.where(raw_spl.index >= ex, raw_spl * 0.5)  # 1:2 -> ratio 1/2 before
    prior_close = raw_aaa[raw_aaa.index < ex].iloc[-1]
    ratio = 1 - 1.0 / prior_close  # zipline: 1 - amount / close before the ex-date
    hand_aaa = raw_aaa.where(raw_aaa.index >= ex, raw_aaa * ratio)
    # zipline rounds adjusted equity prices to 3 decimals in history windows
    np.testing.assert_allclose(hist[spl].to_numpy(), hand_spl.round(3).to_numpy(), atol=1e-9)
    np.testing.assert_allclose(hist[aaa].to_numpy(), hand_aaa.round(3).to_numpy(), atol=1e-9)
    assert hist[spl].iloc[0] == pytest.approx(raw_spl.iloc[0] / 2, rel=1e-6)


def test_failed_ingest_leaves_previous_ingestion_loadable(synthetic, tmp_path):
    from zipline.data import bundles as zb

    bad_root = tmp_path / "bad"
    write_minute_days(bad_root, synthetic["frame"][synthetic["frame"].ticker == "AAA"])
    # corrupt the last day file: truncated gzip
    last = sorted(layout.list_day_files(bad_root, layout.MINUTE_DATASET).values())[-1]
    raw = last.read_bytes()
    os.chmod(last, 0o644)
    last.write_bytes(raw[: len(raw) // 2])
    zroot = synthetic["zroot"]
    def ingestions():  # zipline's own hidden .cache folder is not an ingestion
        return sorted(p for p in os.listdir(zroot / "data" / "test-synthetic") if not p.startswith("."))

    before = ingestions()
    environ = dict(os.environ, ZIPLINE_ROOT=str(zroot))
    from bundles.polygon import make_ingest
    zb.register("test-synthetic", make_ingest(lambda env: PolygonBundleConfig(root=bad_root)),
                calendar_name="XNYS", start_session=pd.Timestamp(DAYS[0]),
                end_session=pd.Timestamp(DAYS[-1]))
    with pytest.raises(FlatFileError, match=last.name):
        zb.ingest("test-synthetic", environ=environ)
    assert ingestions() == before
    reloaded = zb.load("test-synthetic", environ=environ)
    assert {a.symbol for a in reloaded.asset_finder.retrieve_all(reloaded.asset_finder.sids)} >= {"AAA", "PNY"}


def test_one_call_minute_table_equals_zipline_write_cols(tmp_path):
    """bundles.zipline_writers.write_minute_table writes the same table as zipline's writer."""
    import bcolz
    from zipline.data.bcolz_minute_bars import BcolzMinuteBarWriter
    from zipline.utils.calendar_utils import get_calendar

    from bundles.zipline_writers import write_minute_table

    cal = get_calendar("XNYS")
    frame = regular_session_expected(
        pd.concat([minute_rows("X", d, 3.21, np.random.default_rng(5), skip=0.4)
                   for d in ["2024-07-02", "2024-07-03", "2024-07-08"]]), EARLY)
    end_ns = frame["dt"].astype("int64").to_numpy()
    cols = {c: frame[c].to_numpy() for c in ["open", "high", "low", "close", "volume"]}
    tables = []
    for name, write in [("zipline", lambda w: w.write_cols(3, end_ns.astype("datetime64[ns]"), dict(cols))),
                        ("direct", lambda w: write_minute_table(w, 3, end_ns, dict(cols), 10_000))]:
        (tmp_path / name).mkdir()
        writer = BcolzMinuteBarWriter(str(tmp_path / name), cal, pd.Timestamp("2024-07-01"),
                                      pd.Timestamp("2024-07-10"), 390, default_ohlc_ratio=10_000)
        write(writer)
        tables.append(bcolz.open(writer.sidpath(3)))
    assert len(tables[0]) == len(tables[1]) > 0
    for col in ["open", "high", "low", "close", "volume"]:
        np.testing.assert_array_equal(tables[0][col][:], tables[1][col][:])

"""The auctions side table and the official close as the daily close, on hand-written bars
(:mod:`tests.bundles.polygon.hand`): every expected value below is read off that file."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from algorithms.execution.auctions import AuctionPrints
from bundles.ingestions import AUCTIONS_FILE, EXTENDED_HOURS_FILE

from . import hand
from .hand import ET, sid_of, HALF_DAY, bar


def _daily(data, ticker, day):
    reader = data.equity_daily_bar_reader
    sid = sid_of(data, ticker, day)
    fields = ["open", "high", "low", "close", "volume"]
    # daily bars are stored x1000 in uint32: round away the float noise of the read-back
    return {f: round(float(reader.get_value(sid, pd.Timestamp(day), f)), 6) for f in fields}


def test_auction_table_holds_the_hand_prints(bundle):
    data, side = bundle
    table = pd.read_parquet(side / AUCTIONS_FILE)
    assert list(table.columns) == ["session", "sid", "open_print", "open_volume", "close_print",
                                   "close_volume"]
    assert table["sid"].dtype == "int64"
    for c in ["open_print", "open_volume", "close_print", "close_volume"]:
        assert table[c].dtype == "float64"
    ext = pd.read_parquet(side / EXTENDED_HOURS_FILE)
    assert table["session"].dtype == ext["session"].dtype
    rows = {(data.asset_finder.retrieve_asset(r.sid).symbol, str(r.session.date())): r
            for r in table.itertuples()}
    # names with the 09:30 or the closing bar only; MID has neither, so no row
    assert sorted(rows) == sorted([("AUC", "2024-11-26"), ("NOX", "2024-11-26"),
                                   ("WID", "2024-11-26"), ("LATE", "2024-11-26"),
                                   ("AUC", "2024-11-27"), ("EAR", "2024-11-27"),
                                   ("AUC", HALF_DAY)])
    auc = rows[("AUC", "2024-11-26")]
    assert (auc.open_print, auc.open_volume) == (10.10, 7000)
    assert (auc.close_print, auc.close_volume) == (10.60, 777777)
    nox = rows[("NOX", "2024-11-26")]
    assert nox.open_print == 5.10 and np.isnan(nox.close_print) and np.isnan(nox.close_volume)
    wid = rows[("WID", "2024-11-26")]
    assert np.isnan(wid.open_print) and wid.close_print == 21.00
    # half day: the cross is the bar starting 13:00, not the after-hours bar at 16:00
    half = rows[("AUC", HALF_DAY)]
    assert (half.close_print, half.close_volume) == (10.28, 6600)
    # one row group per session, as extended_hours.parquet
    import pyarrow.parquet as pq

    assert pq.ParquetFile(side / AUCTIONS_FILE).metadata.num_row_groups == 3


def test_auction_reader_serves_the_table(bundle):
    data, side = bundle
    prints = AuctionPrints(side.parent)
    sid = sid_of(data, "AUC", "2024-11-26")
    assert prints.value(pd.Timestamp("2024-11-26"), sid, "close_print") == 10.60
    assert prints.value(pd.Timestamp(HALF_DAY), sid, "close_print") == 10.28
    assert np.isnan(prints.value(pd.Timestamp("2024-11-26"), sid_of(data, "NOX", "2024-11-26"),
                                 "close_print"))


def test_daily_close_is_the_official_close(bundle):
    data, _ = bundle
    d = _daily(data, "AUC", "2024-11-26")
    assert d["close"] == 10.60  # the 16:00 bar's open, not the 15:59 close 10.55
    assert d["open"] == 10.10
    # high/low/volume: regular-session minutes only (the 16:00 bar's 10.90 / 10.10 / 777777
    # and everything before 09:30 stay out)
    assert (d["high"], d["low"]) == (10.80, 10.00)
    assert d["volume"] == 7000 + 1500 + 2500
    assert _daily(data, "AUC", "2024-11-27")["close"] == 10.38


def test_without_a_closing_print_the_close_falls_back_to_the_1559_bar(bundle):
    data, _ = bundle
    assert _daily(data, "NOX", "2024-11-26")["close"] == bar("NOX", "2024-11-26", "15:59")["close"]
    # MID's last regular bar starts 11:00 and there is no closing print
    assert _daily(data, "MID", "2024-11-27")["close"] == 3.15


def test_half_day_close_is_the_1300_bar(bundle):
    data, _ = bundle
    d = _daily(data, "AUC", HALF_DAY)
    assert d["close"] == 10.28  # not 12:59's close 10.25, not 16:00's 11.00
    assert d["volume"] == 3000 + 900


def test_a_cross_outside_the_regular_range_widens_it(bundle):
    data, side = bundle
    d = _daily(data, "WID", "2024-11-26")
    assert d["close"] == 21.00 and d["high"] == 21.00 and d["low"] == 19.90
    assert d["volume"] == 300  # the 16:00 bar's 300 shares are not added


def test_report_counts_official_and_fallback_closes(bundle):
    _, side = bundle
    r = hand.report(side)
    # official: AUC x3, WID, LATE, EAR; fallback: NOX, MID
    assert (r["daily_close_official"], r["daily_close_fallback"]) == (6, 2)
    assert r["daily_range_widened_by_close"] == 1
    assert r["auction_rows"] == 7
    assert "official close" in r["daily_close"]


def test_closing_bar_is_not_a_minute_bar(bundle):
    data, _ = bundle
    reader = data.equity_minute_bar_reader
    sid = sid_of(data, "AUC", "2024-11-26")
    minutes = reader.calendar.sessions_minutes(pd.Timestamp("2024-11-26"), pd.Timestamp(HALF_DAY))
    arrays = reader.load_raw_arrays(["open", "close", "volume"], minutes[0], minutes[-1], [sid])
    got = pd.DataFrame({f: a[:, 0] for f, a in zip(["open", "close", "volume"], arrays)},
                       index=minutes.tz_convert(ET))
    traded = got[got["volume"] > 0]
    expected = ["2024-11-26 09:31", "2024-11-26 12:01", "2024-11-26 16:00",
                "2024-11-27 09:31", "2024-11-27 16:00",
                f"{HALF_DAY} 09:31", f"{HALF_DAY} 13:00"]
    assert [t.strftime("%Y-%m-%d %H:%M") for t in traded.index] == expected
    # zipline's 16:00 minute is Polygon's 15:59 bar; the closing bar is nowhere
    assert got.loc[pd.Timestamp("2024-11-26 16:00", tz=ET), "close"] == pytest.approx(10.55)
    assert not (got["volume"] == 777777).any() and not (got["volume"] == 4400).any()
    assert got.loc[pd.Timestamp(f"{HALF_DAY} 13:00", tz=ET), "close"] == pytest.approx(10.25)
    assert not (got["volume"] == 6600).any()


def test_daily_source_day_keeps_polygon_day_agg_close(tmp_path_factory):
    """With day aggregates the close is Polygon's (already the official close)."""
    from bundles import layout
    from bundles.polygon import PolygonBundleConfig, build_bundle

    root = tmp_path_factory.mktemp("auc-day-raw")
    hand.write_raw(root)
    midnight = pd.Timestamp("2024-11-26", tz=ET).value
    layout.write_day_file(root, layout.DAY_DATASET, "2024-11-26", pd.DataFrame([
        {"ticker": "AUC", "volume": 999.0, "open": 10.1, "close": 10.61, "high": 10.9,
         "low": 10.0, "window_start": midnight, "transactions": 5}]))
    zroot = tmp_path_factory.mktemp("auc-day-zipline")
    data = build_bundle("test-auctions-day", PolygonBundleConfig(
        root=root, daily_source="day", start="2024-11-26", end="2024-11-26"), zroot)
    assert _daily(data, "AUC", "2024-11-26")["close"] == 10.61
    side = sorted(p for p in (zroot / "data" / "test-auctions-day").iterdir()
                  if not p.name.startswith("."))[-1] / "gapline"
    r = hand.report(side)
    assert (r["daily_close_official"], r["daily_close_fallback"]) == (0, 0)
    assert "day aggregates" in r["daily_close"]
    # minute-file tickers without a day-aggregate bar have no asset: said, not a crash
    assert any("no day-aggregate bar" in n for n in r["notes"])
    # the auction table still comes from the minute files
    table = pd.read_parquet(side / AUCTIONS_FILE)
    assert table["close_print"].max() == 10.60

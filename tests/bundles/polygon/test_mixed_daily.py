"""Daily bars from minute files and day aggs together (issue 11): a minute subset must not
shrink the market the daily bars -- and every Pipeline screen -- cover.

Hand-built raw cache: Polygon day aggs for the whole market (six common stocks and a
warrant) on four sessions, minute files for two of the stocks (MA, MB) on the last three.
Every bar is written out below, so every expected value is arithmetic on this page:

* minute (ticker, session)s: open = the 09:30 bar's open, high/low = the regular-session
  minutes' range (raised/lowered to the official close), close = the official close (the
  16:00 bar's open; the 15:59 close without it), volume = the regular-session minutes' sum;
  the pre-market and after-hours bars (outside that range) and the day-agg row never count.
* day-agg (ticker, session)s: the day agg's values as they are.

Also: the ``gapline download --tickers`` scenario end to end (fake REST API), and the
discrepancy between the closes on real minute data (Lean/AlgoSeek), quoted in the README.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bundles import layout
from bundles.ingestions import ASSETS_FILE, side_dir
from bundles.polygon import PolygonBundleConfig, build_bundle

from . import hand

ET = "America/New_York"
D0, D1, D2, D3 = "2024-11-22", "2024-11-25", "2024-11-26", "2024-11-27"
MINUTE_TICKERS = ["MA", "MB"]
DAY_TICKERS = ["DA", "DB", "DC", "DD"]
STOCKS = MINUTE_TICKERS + DAY_TICKERS

# (ticker, day, HH:MM start, open, high, low, close, volume): Polygon minute bars
MINUTE_BARS = []
for _k, _day in enumerate([D1, D2, D3]):
    _p = 10.0 + 0.5 * _k
    MINUTE_BARS += [
        ("MA", _day, "08:00", _p - 0.50, _p + 2.00, _p - 1.00, _p - 0.40, 300),  # pre-market
        ("MA", _day, "09:30", _p, _p + 0.20, _p - 0.10, _p + 0.10, 1000),
        ("MA", _day, "12:00", _p + 0.10, _p + 0.50, _p + 0.05, _p + 0.40, 2000),
        ("MA", _day, "15:59", _p + 0.40, _p + 0.45, _p + 0.30, _p + 0.35, 1500),
        ("MA", _day, "16:00", _p + 0.42, _p + 0.60, _p + 0.40, _p + 0.55, 5000),  # the cross
        ("MA", _day, "17:00", _p + 0.80, _p + 0.90, _p - 2.00, _p + 0.85, 400),  # after hours
    ]
MINUTE_BARS += [
    # D1: no bar starting 16:00 -> the close falls back to the 15:59 bar's
    ("MB", D1, "09:30", 20.00, 20.30, 19.80, 20.10, 30000),
    ("MB", D1, "15:59", 20.10, 20.20, 20.00, 20.05, 20000),
    # D2: a pre-market trade only -> no regular-session trade, no daily bar (its day-agg
    # row below is not used: the minute files hold MB that session)
    ("MB", D2, "08:00", 21.00, 21.00, 21.00, 21.00, 100),
    # D3: the cross prints above every regular trade -> the daily high is raised to it
    ("MB", D3, "09:30", 20.50, 20.60, 20.40, 20.55, 1000),
    ("MB", D3, "15:59", 20.55, 20.70, 20.50, 20.65, 1000),
    ("MB", D3, "16:00", 20.90, 20.95, 20.60, 20.70, 800),
]

# (ticker, day, open, high, low, close, volume): Polygon day aggs, the whole market. The rows
# of MA and MB differ on purpose from their minutes (they must not be used where the minute
# files hold the ticker).
DAY_BASE = {"MA": (10.0, 9_999), "MB": (20.0, 7_777), "DA": (30.0, 100_000),
            "DB": (5.0, 10_000), "DC": (100.0, 50_000), "DD": (2.0, 1_000), "DW": (1.0, 500)}
DAY_ROWS = [(t, day, round(b * (1 + k / 100), 2), round(b * (1.04 + k / 100), 2),
             round(b * (0.97 + k / 100), 2), round(b * (1.01 + k / 100), 2), v + 10 * k)
            for k, day in enumerate([D0, D1, D2, D3]) for t, (b, v) in DAY_BASE.items()]
TYPES = {**{t: "CS" for t in STOCKS}, "DW": "WARRANT"}


def minute_daily(ticker, day):
    """The documented minute rule, by hand from :data:`MINUTE_BARS` (None: no daily bar)."""
    bars = [b for b in MINUTE_BARS if b[0] == ticker and b[1] == day]
    regular = [b for b in bars if "09:30" <= b[2] <= "15:59"]
    if not regular:
        return None
    cross = [b for b in bars if b[2] == "16:00"]
    close = cross[0][3] if cross else regular[-1][6]
    return {"open": regular[0][3], "high": max([b[4] for b in regular] + [close]),
            "low": min([b[5] for b in regular] + [close]), "close": close,
            "volume": float(sum(b[7] for b in regular))}


def day_daily(ticker, day):
    (row,) = [r for r in DAY_ROWS if r[0] == ticker and r[1] == day]
    return dict(zip(["open", "high", "low", "close", "volume"], row[2:7]))


def write_raw(root):
    minute = hand.frame(MINUTE_BARS)
    for day, rows in minute.groupby("day"):
        layout.write_day_file(root, layout.MINUTE_DATASET, day,
                              rows.sort_values(["ticker", "window_start"]))
    day_aggs = pd.DataFrame([
        {"ticker": t, "volume": float(v), "open": o, "close": c, "high": h, "low": lo,
         "window_start": pd.Timestamp(d, tz=ET).value, "transactions": 10, "day": d}
        for t, d, o, h, lo, c, v in DAY_ROWS])
    for day, rows in day_aggs.groupby("day"):
        layout.write_day_file(root, layout.DAY_DATASET, day,
                              rows.drop(columns="day").sort_values("ticker"))
    layout.write_reference(root, "tickers", [
        {"ticker": t, "name": t, "type": ty, "primary_exchange": "XNAS", "active": True}
        for t, ty in TYPES.items()])


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed-raw")
    write_raw(root)
    return root


def ingest(raw, tmp_path_factory, name, **config):
    zroot = tmp_path_factory.mktemp(f"{name}-zipline")
    data = build_bundle(name, PolygonBundleConfig(root=raw, **config), zroot)
    folder = sorted(p for p in (zroot / "data" / name).iterdir() if not p.name.startswith("."))
    return data, folder[-1]


@pytest.fixture(scope="module")
def mixed(raw, tmp_path_factory):
    """``auto`` over D1..D3, common stocks only (the warrant is outside the universe)."""
    return ingest(raw, tmp_path_factory, "mixed-auto", start=D1, end=D3, types="CS")


def daily_bar(data, ticker, day):
    sid = data.asset_finder.lookup_symbol(ticker, pd.Timestamp(day)).sid
    reader = data.equity_daily_bar_reader
    return {f: reader.get_value(sid, pd.Timestamp(day), f)
            for f in ("open", "high", "low", "close", "volume")}


def assert_bar(got, expected):
    for field, value in expected.items():
        assert got[field] == pytest.approx(value, abs=1e-9 if field == "volume" else 1e-3), \
            (field, got, expected)


def symbols(data):
    return {a.symbol for a in data.asset_finder.retrieve_all(data.asset_finder.sids)}


def test_every_day_agg_ticker_of_the_universe_has_daily_bars(mixed):
    data, _ = mixed
    assert symbols(data) == set(STOCKS)  # DW: a warrant, outside types=CS


@pytest.mark.parametrize("day", [D1, D2, D3])
@pytest.mark.parametrize("ticker", MINUTE_TICKERS)
def test_minute_tickers_daily_bars_come_from_their_minutes(mixed, ticker, day):
    data, _ = mixed
    expected = minute_daily(ticker, day)
    got = daily_bar(data, ticker, day)
    if expected is None:  # MB on D2, below
        assert np.isnan(got["close"]) and got["volume"] == 0
    else:
        assert_bar(got, expected)


def test_minute_rule_by_hand():
    """The hand rule on this page, spelled out: the extended-hours bars and the day agg lose."""
    assert minute_daily("MA", D1) == {"open": 10.0, "high": 10.5, "low": 9.9, "close": 10.42,
                                      "volume": 4500.0}
    assert minute_daily("MB", D1)["close"] == 20.05  # fallback: the 15:59 close
    assert minute_daily("MB", D3)["high"] == 20.90  # raised to the cross
    assert minute_daily("MB", D2) is None


def test_minute_files_win_even_without_regular_trades(mixed):
    """MB on D2: the minute files hold only a pre-market bar: no daily bar, though the day aggs
    have a row for it (both sources agree on what a daily bar is: regular-session trading)."""
    data, _ = mixed
    got = daily_bar(data, "MB", D2)
    assert np.isnan(got["close"]) and got["volume"] == 0


@pytest.mark.parametrize("day", [D1, D2, D3])
@pytest.mark.parametrize("ticker", DAY_TICKERS)
def test_other_tickers_daily_bars_are_the_day_aggs(mixed, ticker, day):
    data, _ = mixed
    assert_bar(daily_bar(data, ticker, day), day_daily(ticker, day))


def test_minute_bars_for_the_minute_tickers_only(mixed):
    data, folder = mixed
    assets = pd.read_parquet(side_dir(folder) / ASSETS_FILE).set_index("ticker")
    assert assets["has_minute_bars"].to_dict() == {t: t in MINUTE_TICKERS for t in STOCKS}
    # day-agg sids get an empty minute table: a minute read is "no trades", not an error
    minute = data.equity_minute_bar_reader
    at = pd.Timestamp(f"{D1} 09:31", tz=ET).tz_convert("UTC")
    dc = data.asset_finder.lookup_symbol("DC", pd.Timestamp(D1)).sid
    assert minute.get_value(dc, at, "volume") == 0


def test_report_and_side_table_say_where_each_sids_daily_bars_came_from(mixed):
    _, folder = mixed
    assets = pd.read_parquet(side_dir(folder) / ASSETS_FILE).set_index("ticker")
    assert assets["daily_source"].to_dict() == {
        **{t: "minute" for t in MINUTE_TICKERS}, **{t: "day" for t in DAY_TICKERS}}
    r = hand.report(side_dir(folder))
    assert r["daily_source"] == "mixed"
    assert r["daily_source_by_sid"] == {"minute": 2, "day": 4}
    # MA x3, MB x2 (D1, D3) from minutes; DA..DD x3 from day aggs
    assert r["daily_rows_by_source"] == {"minute": 5, "day": 12}
    assert set(r["daily_fields"]) == {"minute", "day"}
    assert "official close" in r["daily_close"] and "day aggregates" in r["daily_close"]
    assert "Form T" in r["daily_fields"]["day"]["volume"] or \
        "after-hours" in r["daily_fields"]["day"]["volume"]
    # official: MA x3, MB D3; fallback: MB D1
    assert (r["daily_close_official"], r["daily_close_fallback"]) == (4, 1)


def test_log_line_counts_sids_by_source(raw, tmp_path_factory, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="bundles.polygon.ingest"):
        ingest(raw, tmp_path_factory, "mixed-log", start=D1, end=D2, types="CS")
    assert "2 sids from minute files, 4 from day aggs, 0 from both" in caplog.text


def test_pipeline_ranks_across_the_whole_market(mixed):
    """AverageDollarVolume over D1..D2 (the bundle's loader lags a session: the run of D3 sees
    D1 and D2) ranks all six stocks; a top-half screen keeps a minute ticker and day-agg
    tickers alike."""
    from zipline.pipeline import Pipeline
    from zipline.pipeline.domain import US_EQUITIES
    from zipline.pipeline.engine import SimplePipelineEngine
    from zipline.pipeline.factors import AverageDollarVolume

    from factors.loaders import pipeline_loader

    data, folder = mixed
    engine = SimplePipelineEngine(pipeline_loader(data, folder), data.asset_finder,
                                  default_domain=US_EQUITIES)
    adv = AverageDollarVolume(window_length=2)
    out = engine.run_pipeline(Pipeline({"adv": adv, "top": adv.percentile_between(50, 100)}),
                              pd.Timestamp(D3), pd.Timestamp(D3))
    out = out.droplevel(0)
    out.index = [a.symbol for a in out.index]
    assert set(out.index) == set(STOCKS)

    def bar(t, d):
        return minute_daily(t, d) if t in MINUTE_TICKERS else day_daily(t, d)

    def dollars(t, d):  # MB on D2: no bar, no dollars (AverageDollarVolume's nansum)
        b = bar(t, d)
        return b["close"] * b["volume"] if b else 0.0

    expected = {t: np.mean([dollars(t, d) for d in (D1, D2)]) for t in STOCKS}
    np.testing.assert_allclose(out["adv"].reindex(list(expected)), list(expected.values()),
                               rtol=1e-9)
    # DC 5.1M > DA 3.1M > MB 501k > DB 51k > MA 48k > DD 2k: the top half of six
    assert set(out.index[out["top"]]) == {"DC", "DA", "MB"}


def test_history_before_the_minute_files_comes_from_the_day_aggs(raw, tmp_path_factory):
    """From D0 (day aggs only) the minute tickers' first session comes from the day aggs:
    their sids are ``mixed``."""
    data, folder = ingest(raw, tmp_path_factory, "mixed-history", start=D0, end=D3,
                          types="CS")
    for t in STOCKS:
        assert_bar(daily_bar(data, t, D0), day_daily(t, D0))
    assert_bar(daily_bar(data, "MA", D1), minute_daily("MA", D1))
    assets = pd.read_parquet(side_dir(folder) / ASSETS_FILE).set_index("ticker")
    assert assets["daily_source"].to_dict() == {
        **{t: "mixed" for t in MINUTE_TICKERS}, **{t: "day" for t in DAY_TICKERS}}
    assert hand.report(side_dir(folder))["daily_source_by_sid"] == {"mixed": 2, "day": 4}


@pytest.mark.parametrize("source", ["minute", "day"])
def test_explicit_sources_stay_available(raw, tmp_path_factory, source):
    data, folder = ingest(raw, tmp_path_factory, f"mixed-{source}", start=D1, end=D2,
                          types="CS", daily_source=source)
    r = hand.report(side_dir(folder))
    assert r["daily_source"] == source
    if source == "minute":  # the old behaviour: the minute files' tickers only
        assert symbols(data) == set(MINUTE_TICKERS)
        assert r["daily_source_by_sid"] == {"minute": 2}
    else:
        assert symbols(data) == set(STOCKS)
        assert_bar(daily_bar(data, "MA", D1), day_daily("MA", D1))
        assert r["daily_source_by_sid"] == {"day": 6}


def test_download_tickers_subset_then_ingest_covers_the_market(tmp_path):
    """The issue's scenario: ``gapline download --tickers AAPL`` fetches AAPL's minute bars
    and the whole market's grouped daily; the ingest then has daily bars for every ticker of
    the grouped daily, minute bars for AAPL only."""
    from tests.bundles.download.test_download import (END, START, FakePolygon, FakeSession,
                                                      make_client)

    market = ["AAPL", "MSFT", "BRK.A", "SPY"]
    session = FakeSession(handler=FakePolygon(tickers=market))
    summary = dl_download(tmp_path / "raw", START, END, ["AAPL"], make_client(session))
    assert summary.day_files == 4 and summary.minute_files == 4
    grouped = [u for u, _ in session.calls if "/grouped/" in u]
    assert len(grouped) == 4  # one request per session, whole market
    data = build_bundle("mixed-download", PolygonBundleConfig(root=tmp_path / "raw"),
                        tmp_path / "zipline")
    assert symbols(data) == set(market)
    folder = sorted(p for p in (tmp_path / "zipline" / "data" / "mixed-download").iterdir()
                    if not p.name.startswith("."))[-1]
    assets = pd.read_parquet(side_dir(folder) / ASSETS_FILE).set_index("ticker")
    assert assets["daily_source"].to_dict() == {"AAPL": "minute", "MSFT": "day",
                                                "BRK.A": "day", "SPY": "day"}
    assert assets["has_minute_bars"].to_dict() == {"AAPL": True, "MSFT": False,
                                                   "BRK.A": False, "SPY": False}


def dl_download(root, start, end, tickers, client):
    from bundles import download as dl

    return dl.download(root, start, end, tickers=tickers, client=client, progress=False)


# ----------------------------------------------------------------------------- real data
def lean_close_discrepancies():
    """Per (ticker, session) of the Lean/AlgoSeek minute files: the official close (the open
    of the bar starting at the close), the last regular-session minute's close, the last
    trade before 20:00 (after hours included), and regular vs whole-day volume and range."""
    import exchange_calendars as xcals

    from tests.bundles.polygon.test_lean_real_data import read_lean_day
    from tests.conftest import shared_path

    base = shared_path("real", "lean", "minute")
    frame = pd.concat([read_lean_day(p) for d in sorted(base.iterdir()) if d.is_dir()
                       for p in sorted(d.glob("*_trade.zip"))], ignore_index=True)
    cal = xcals.get_calendar("XNYS", start="2008-01-01")
    ws = frame["window_start"].to_numpy()
    rows = []
    for (ticker, day), g in frame.groupby(["ticker", "day"]):
        w = ws[g.index]
        open_ns, close_ns = cal.session_open(day).value, cal.session_close(day).value
        reg = g[(w >= open_ns) & (w < close_ns)]
        cross = g[w == close_ns]
        if reg.empty:
            continue
        rows.append({"ticker": ticker, "day": day,
                     "official": cross["open"].iloc[0] if len(cross) else np.nan,
                     "last_regular": reg["close"].iloc[-1], "last_trade": g["close"].iloc[-1],
                     "reg_high": reg["high"].max(), "reg_low": reg["low"].min(),
                     "all_high": g["high"].max(), "all_low": g["low"].min(),
                     "reg_volume": reg["volume"].sum(), "all_volume": g["volume"].sum()})
    return pd.DataFrame(rows)


def _diff_bps(a, b):
    m = a.notna() & b.notna()
    d = ((a[m] - b[m]).abs() / b[m] * 1e4).round(6)
    return {"rows": int(m.sum()), "differ": round(float((d > 0).mean()), 3),
            "median_bps": round(float(d.median()), 2),
            "median_bps_differing": round(float(d[d > 0].median()), 2)}


def test_real_data_close_discrepancies_quoted_in_readme():
    """The README's numbers: 41 Lean (ticker, session)s, 34 with a closing-cross bar."""
    r = lean_close_discrepancies()
    assert len(r) == 41 and r["official"].notna().sum() == 34
    # the 15:59 close (the minute fallback; what a day agg built from regular minutes would
    # hold) vs the official close
    assert _diff_bps(r["last_regular"], r["official"]) == {
        "rows": 34, "differ": 0.5, "median_bps": 0.3, "median_bps_differing": 4.41}
    # the last trade before 20:00 (a close that took after-hours trades) vs the official
    assert _diff_bps(r["last_trade"], r["official"]) == {
        "rows": 34, "differ": 0.882, "median_bps": 8.41, "median_bps_differing": 10.33}
    # extended-hours prices outside the regular range, and the volume they add
    outside = (r["all_high"] > r["reg_high"]) | (r["all_low"] < r["reg_low"])
    assert round(float(outside.mean()), 3) == 0.659
    ratio = r["all_volume"] / r["reg_volume"]
    assert [round(float(ratio.quantile(q)), 3) for q in (0.1, 0.5, 0.9)] == [1.011, 1.028, 1.138]


def test_real_data_vendor_daily_close_is_mostly_the_official_close():
    """GOOG, the only overlap of the Lean minutes and the pystock daily file: the vendor's daily
    close is the 16:00 (13:00 on 2015-12-24) bar's open on two of three sessions, the 15:59
    close on the third."""
    from tests.realdata import load_pystock

    r = lean_close_discrepancies().set_index(["ticker", "day"]).loc["GOOG"]
    daily = load_pystock(symbols=("GOOG",), start="2015-12-23", end="2015-12-28")
    daily = daily.set_index(pd.to_datetime(daily["date"]))["close"].round(2)
    assert list(daily.index) == list(r.index)
    assert (daily == r["official"]).tolist() == [True, True, False]
    assert daily.iloc[2] == r["last_regular"].iloc[2] == 762.51

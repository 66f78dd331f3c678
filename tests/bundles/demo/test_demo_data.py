"""The ``polygon-demo`` generator (:mod:`bundles.demo`), checked by independent pandas reads."""
from __future__ import annotations

import functools
import json
import time

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from bundles import demo, layout

ET = "America/New_York"
MIN = pd.Timedelta(minutes=1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, demo.generate(root, progress=False)


@pytest.fixture(scope="module")
def root(generated):
    return generated[0]


@pytest.fixture(scope="module")
def manifest(generated):
    return generated[1]


@pytest.fixture(scope="module")
def calendar():
    return xcals.get_calendar("XNYS")


@pytest.fixture(scope="module")
def sessions(calendar):
    return calendar.sessions_in_range(demo.DEMO_START, demo.DEMO_END)


@functools.lru_cache(maxsize=16)
def read_minute(root, day) -> pd.DataFrame:
    """One minute file, as written (cached: callers must not modify it)."""
    return pd.read_csv(layout.day_file_path(root, layout.MINUTE_DATASET, day))


@pytest.fixture(scope="module")
def daily(root, sessions):
    """All day-aggregate files, with a ``session`` column."""
    frames = []
    for day in sessions:
        f = pd.read_csv(layout.day_file_path(root, layout.DAY_DATASET, day))
        frames.append(f.assign(session=day))
    return pd.concat(frames, ignore_index=True).sort_values(["ticker", "session"],
                                                             ignore_index=True)


@functools.lru_cache(maxsize=None)
def minute_tickers(root, day) -> frozenset:
    """The tickers with at least one bar in a session's minute file."""
    path = layout.day_file_path(root, layout.MINUTE_DATASET, day)
    return frozenset(pd.read_csv(path, usecols=["ticker"])["ticker"])


def ref(root, name):
    with open(root / "raw" / "reference" / f"{name}.json") as fh:
        return json.load(fh)


def et_clock(window_start: pd.Series) -> pd.Series:
    return pd.to_datetime(window_start, unit="ns", utc=True).dt.tz_convert(ET)


def sample_sessions(manifest):
    pump = manifest["penny_pumps"][0]["session"]
    return sorted({demo.DEMO_START, "2024-07-03", "2024-11-29", "2024-12-24",
                   manifest["unsorted_session"], manifest["intraday_halt"]["session"],
                   manifest["full_day_halt"]["session"], manifest["splits"][0]["execution_date"],
                   pump, "2024-12-31"})


# ----------------------------------------------------------------------------- files
def test_files_marker_and_manifest(root, manifest, sessions):
    raw = root / "raw"
    assert (raw / "DEMO_VERSION").read_text().strip() == demo.DEMO_VERSION
    minute = layout.list_day_files(root, layout.MINUTE_DATASET)
    day = layout.list_day_files(root, layout.DAY_DATASET)
    assert list(minute) == list(sessions) == list(day)
    assert len(sessions) == manifest["sessions"] == 128
    assert manifest["start"] == demo.DEMO_START and manifest["end"] == demo.DEMO_END
    assert manifest["early_closes"] == ["2024-07-03", "2024-11-29", "2024-12-24"]
    assert 3_000_000 <= manifest["rows"]["minute"] <= 5_000_000
    for name in layout.REFERENCE_FILES:
        assert (raw / "reference" / f"{name}.json").exists()


def test_generation_is_idempotent(root, manifest):
    marker = root / "raw" / "DEMO_VERSION"
    path = layout.day_file_path(root, layout.MINUTE_DATASET, "2024-07-01")
    before = (marker.stat().st_mtime_ns, path.stat().st_mtime_ns)
    t0 = time.perf_counter()
    again = demo.generate(root, progress=False)
    assert time.perf_counter() - t0 < 2
    assert again == manifest
    assert (marker.stat().st_mtime_ns, path.stat().st_mtime_ns) == before


def test_deterministic(root, manifest, tmp_path):
    # A partial run simulates up to its last session: the same bytes as the full run.
    days = ["2024-07-01", "2024-07-03", manifest["unsorted_session"], "2024-11-29"]
    other = demo.generate(tmp_path, progress=False, sessions=days)
    assert not (tmp_path / "raw" / "DEMO_VERSION").exists()  # partial runs leave no marker
    assert other["tickers"] == manifest["tickers"]
    assert other["sell_gaps"] == [e for e in manifest["sell_gaps"] if e["session"] <= days[-1]]
    assert len(layout.list_day_files(tmp_path, layout.MINUTE_DATASET)) == len(days)
    for day in days:
        for dataset in (layout.MINUTE_DATASET, layout.DAY_DATASET):
            a = layout.day_file_path(root, dataset, day).read_bytes()
            b = layout.day_file_path(tmp_path, dataset, day).read_bytes()
            assert a == b, (dataset, day)
    for name in layout.REFERENCE_FILES:
        rel = f"raw/reference/{name}.json"
        assert (root / rel).read_bytes() == (tmp_path / rel).read_bytes(), name


def test_columns_dtypes_and_prices(root, manifest, daily):
    for day in sample_sessions(manifest)[:5]:
        for dataset in (layout.MINUTE_DATASET, layout.DAY_DATASET):
            f = pd.read_csv(layout.day_file_path(root, dataset, day))
            assert list(f.columns) == layout.FLAT_COLUMNS
            for col in ("volume", "window_start", "transactions"):
                assert f[col].dtype == np.int64, (dataset, col)
            assert (f[["volume", "transactions"]] > 0).all().all()
            assert (f["transactions"] <= f["volume"]).all()
            prices = f[["open", "close", "high", "low"]]
            assert (prices > 0).all().all()
            assert (f["high"] >= prices[["open", "close"]].max(axis=1)).all()
            assert (f["low"] <= prices[["open", "close"]].min(axis=1)).all()
            for col in prices:
                x = f[col].to_numpy()
                scale = np.where(x < 1, 1e4, 1e2)
                assert np.allclose(x * scale, np.round(x * scale), atol=1e-6), (dataset, col)
    # Day window_start: the session date at midnight New York time, in UTC ns.
    expected = daily["session"].dt.tz_localize(ET).dt.tz_convert("UTC").astype("int64")
    assert (daily["window_start"] == expected.to_numpy()).all()


def test_rows_sorted_except_the_shuffled_session(root, manifest):
    for day in sample_sessions(manifest):
        f = read_minute(root, day)
        ordered = f.sort_values(["ticker", "window_start"], ignore_index=True)
        assert not ordered.duplicated(["ticker", "window_start"]).any()
        if day == manifest["unsorted_session"]:
            assert not f.equals(ordered)
        else:
            assert_frame_equal(f, ordered)


def test_bars_within_session_hours(root, manifest, calendar):
    for day in sample_sessions(manifest):
        f = read_minute(root, day)
        start = pd.to_datetime(f["window_start"], unit="ns", utc=True)
        open_, close = calendar.session_open(day), calendar.session_close(day)
        rth = (start >= open_) & (start < close)
        pre = start < open_
        post = start >= close
        clock = start.dt.tz_convert(ET)
        assert (clock.dt.normalize() == pd.Timestamp(day, tz=ET)).all()
        hhmm = (clock.dt.hour * 100 + clock.dt.minute).to_numpy()
        assert hhmm[pre].min() >= 400 and (start[post] < close + pd.Timedelta(hours=4)).all()
        assert pre.sum() > 100 and post.sum() > 100  # extended hours are there, sparse
        assert rth.sum() > 5 * (pre.sum() + post.sum())
        assert hhmm[rth].min() == 930
        assert hhmm[rth].max() == (1259 if day in manifest["early_closes"] else 1559)
        assert hhmm[post].max() <= (1659 if day in manifest["early_closes"] else 1959)
        # The large caps trade every regular-session minute.
        per_ticker = f[rth].groupby("ticker").size()
        minutes = int((close - open_) / MIN)
        assert (per_ticker[manifest["tickers"]["large_cap"]] == minutes).all()


def test_day_aggregates_match_minute_bars(root, manifest, calendar):
    for day in sample_sessions(manifest):
        f = read_minute(root, day).sort_values(["ticker", "window_start"])
        start = pd.to_datetime(f["window_start"], unit="ns", utc=True)
        rth = f[(start >= calendar.session_open(day)) & (start < calendar.session_close(day))]
        g, r = f.groupby("ticker"), rth.groupby("ticker")
        expected = pd.DataFrame({
            "ticker": g.size().index,
            "volume": g["volume"].sum().to_numpy(),
            "open": r["open"].first().to_numpy(),
            "close": r["close"].last().to_numpy(),
            "high": g["high"].max().to_numpy(),
            "low": g["low"].min().to_numpy(),
            "window_start": pd.Timestamp(day, tz=ET).tz_convert("UTC").value,
            "transactions": g["transactions"].sum().to_numpy(),
        })
        got = pd.read_csv(layout.day_file_path(root, layout.DAY_DATASET, day))
        assert_frame_equal(got, expected, check_dtype=False)


# ----------------------------------------------------------------------------- reference
def test_reference_tickers_and_types(root, manifest):
    tickers = pd.DataFrame(ref(root, "tickers"))
    for col in ("ticker", "name", "market", "locale", "primary_exchange", "type", "active",
                "currency_name", "cik", "composite_figi", "share_class_figi", "last_updated_utc"):
        assert tickers[col].notna().all(), col
    assert set(tickers["market"]) == {"stocks"} and set(tickers["locale"]) == {"us"}
    assert set(tickers["primary_exchange"]) <= {"XNAS", "XNYS", "ARCX", "XASE"}
    assert tickers["composite_figi"].is_unique and tickers["cik"].str.fullmatch(r"\d{10}").all()
    assert 140 <= tickers["ticker"].nunique() <= 160
    by_type = tickers.groupby("type")["ticker"].apply(sorted)
    etf = tickers[tickers["type"] == "ETF"]
    assert sorted(etf["ticker"]) == ["IWM", "QQQ", "SPY"] and set(etf["primary_exchange"]) == {"ARCX"}
    assert len(by_type["ADRC"]) == 3
    assert len(by_type["WARRANT"]) == 3 and all(t.endswith("W") for t in by_type["WARRANT"])
    assert len(by_type["PFD"]) == 2
    assert all(pd.Series(by_type["PFD"]).str.fullmatch(r"[A-Z]+p[A-Z]"))
    assert len(manifest["liquid"]) == 90
    assert set(manifest["liquid"]) | set(manifest["tickers"]["penny"]) <= set(by_type["CS"])
    assert len(manifest["tickers"]["penny"]) == 25
    # Shares outstanding: penny names small, large caps 100M+.
    details = pd.DataFrame(ref(root, "ticker_details")).set_index("composite_figi")
    shares = details["share_class_shares_outstanding"]
    penny = details["ticker"].isin(manifest["tickers"]["penny"])
    large = details["ticker"].isin(manifest["tickers"]["large_cap"])
    assert shares[penny].between(2e6, 40e6).all() and (shares[large] >= 100e6).all()
    assert details["list_date"].notna().all()
    assert set(details.index) == set(tickers["composite_figi"])


def test_dividends(root, manifest, daily):
    divs = pd.DataFrame(ref(root, "dividends"))
    for col in ("ticker", "ex_dividend_date", "pay_date", "record_date", "declaration_date",
                "cash_amount", "dividend_type", "frequency", "currency"):
        assert divs[col].notna().all(), col
    assert set(divs["dividend_type"]) == {"CD"} and set(divs["currency"]) == {"USD"}
    assert (divs["frequency"] == 4).all() and (divs["cash_amount"] > 0).all()
    assert (divs["declaration_date"] < divs["ex_dividend_date"]).all()
    assert (divs["pay_date"] > divs["ex_dividend_date"]).all()
    payers = set(divs["ticker"])
    assert {"SPY", "QQQ", "IWM"} <= payers
    assert len(payers & set(manifest["tickers"]["large_cap"])) == 15
    # Every ex-date is a session the payer trades; the amount is small next to the price.
    bars = daily.set_index(["ticker", "session"])
    for _, d in divs.iterrows():
        row = bars.loc[(d["ticker"], pd.Timestamp(d["ex_dividend_date"]))]
        assert d["cash_amount"] < 0.02 * row["open"]


def test_forward_and_reverse_split_in_raw_prices(root, manifest, daily, sessions):
    splits = pd.DataFrame(ref(root, "splits"))
    assert len(splits) == 2 and splits["id"].notna().all()
    for event in manifest["splits"]:
        rec = splits[splits["ticker"] == event["ticker"]].iloc[0]
        assert rec["execution_date"] == event["execution_date"]
        assert (rec["split_from"], rec["split_to"]) == (event["split_from"], event["split_to"])
        bars = daily[daily["ticker"] == event["ticker"]].set_index("session")
        ex = pd.Timestamp(event["execution_date"])
        before = bars.loc[sessions[sessions.get_loc(ex) - 1], "close"]
        expected = rec["split_to"] / rec["split_from"]
        assert 0.85 * expected < before / bars.loc[ex, "open"] < 1.15 * expected
    forward = next(e for e in manifest["splits"] if e["kind"] == "forward")
    assert (forward["split_from"], forward["split_to"]) == (1, 4)
    assert forward["ticker"] in manifest["tickers"]["large_cap"]
    assert "2024-10-10" <= forward["execution_date"] <= "2024-10-20"
    reverse = next(e for e in manifest["splits"] if e["kind"] == "reverse")
    assert (reverse["split_from"], reverse["split_to"]) == (10, 1)
    assert reverse["ticker"] in manifest["tickers"]["penny"]


# ----------------------------------------------------------------------------- gap events
def test_sell_gaps(manifest, daily):
    liquid = daily[daily["ticker"].isin(manifest["liquid"])]
    found = []
    for ticker, bars in liquid.groupby("ticker"):
        bars = bars.sort_values("session")
        std = bars["close"].ewm(span=63).std().shift(1)
        prior_low = bars["low"].shift(1)
        hit = (bars["open"] < prior_low - std) & (np.arange(len(bars)) >= 10)
        found += [(ticker, s.strftime("%Y-%m-%d")) for s in bars.loc[hit, "session"]]
    assert len(found) >= 10
    events = {(e["ticker"], e["session"]) for e in manifest["sell_gaps"]}
    assert len(events) >= 50
    assert events <= set(found)
    # Large gaps that play out both ways during the session.
    bars = daily.set_index(["ticker", "session"])
    rets = [bars.loc[(t, pd.Timestamp(s)), "close"] / bars.loc[(t, pd.Timestamp(s)), "open"] - 1
            for t, s in events]
    assert min(rets) < -0.01 and max(rets) > 0.01
    # About 1-2 % of liquid ticker-days.
    assert 0.005 < len(events) / len(liquid) < 0.025


def _zipline_ewm_std(x, decay_rate=0.99):
    """zipline's ExponentialWeightedMovingStdDev over a window (oldest first)."""
    w = decay_rate ** np.arange(len(x) + 1, 1, -1)
    mean = np.average(x, weights=w)
    var = np.average((x - mean) ** 2, weights=w)
    return np.sqrt(var * w.sum() ** 2 / (w.sum() ** 2 - (w ** 2).sum()))


def test_screened_sell_gaps(root, manifest, daily, calendar):
    """From October on, sell gaps that pass the sell-gap screen itself: top decile of 30-day
    dollar volume (common stocks), prior close > $10 and above its 20-day mean, open below the
    prior regular-session low - zipline's 63-day EWM std (decay 0.99) and below the mean."""
    screened = [e for e in manifest["sell_gaps"] if e["screened"]]
    assert len(screened) >= 15
    assert min(e["session"] for e in screened) >= demo.EVENTS_FROM
    split_names = {s["ticker"] for s in manifest["splits"]}
    common = daily[daily["ticker"].isin(
        set(manifest["liquid"]) | set(manifest["tickers"]["small_cap"])
        | set(manifest["tickers"]["penny"]) | set(manifest["tickers"]["reused"]))]
    dollar = (common.assign(dv=common["close"] * common["volume"])
              .pivot_table(index="session", columns="ticker", values="dv", aggfunc="sum"))
    checked = 0
    for e in screened:
        if e["ticker"] in split_names:
            continue  # raw closes are not the adjusted ones Pipeline sees
        day = pd.Timestamp(e["session"])
        bars = daily[(daily["ticker"] == e["ticker"]) & (daily["session"] < day)]
        closes = bars["close"].to_numpy()[-63:]
        assert len(closes) == 63
        mean20 = closes[-20:].mean()
        assert closes[-1] > 10 and closes[-1] > mean20 and e["open"] < mean20
        adv = dollar[dollar.index < day].iloc[-30:].sum()
        assert adv.rank(ascending=False)[e["ticker"]] <= 14
        if checked < 4:  # the regular-session low, from the minute file
            prev = bars["session"].iloc[-1]
            f = read_minute(root, prev.strftime("%Y-%m-%d"))
            f = f[f["ticker"] == e["ticker"]]
            start = pd.to_datetime(f["window_start"], unit="ns", utc=True)
            rth = f[(start >= calendar.session_open(prev)) & (start < calendar.session_close(prev))]
            assert e["open"] < rth["low"].min() - _zipline_ewm_std(closes)
        checked += 1
    assert checked >= 10


def test_penny_premarket_pumps(root, manifest, daily, calendar):
    pumps = manifest["penny_pumps"]
    assert len(pumps) >= 20
    assert {p["ticker"] for p in pumps} <= set(manifest["tickers"]["penny"])
    prior = daily.assign(prev_close=daily.groupby("ticker")["close"].shift(1))
    prior = prior.set_index(["ticker", "session"])
    median_volume = daily.groupby("ticker")["volume"].median()
    checked = 0
    for pump in pumps[:6]:
        f = read_minute(root, pump["session"])
        f = f[f["ticker"] == pump["ticker"]]
        start = pd.to_datetime(f["window_start"], unit="ns", utc=True)
        pre = f[start < calendar.session_open(pump["session"])]
        prev_close = prior.loc[(pump["ticker"], pd.Timestamp(pump["session"])), "prev_close"]
        assert pre["high"].max() >= 1.2 * prev_close
        assert pre["volume"].sum() > median_volume[pump["ticker"]]
        day = prior.loc[(pump["ticker"], pd.Timestamp(pump["session"]))]
        assert day["open"] > 1.1 * prev_close  # gap up ...
        if pump["kind"] != "squeeze_hold":
            assert day["close"] < pre["high"].max()  # ... that fades
        checked += 1
    assert checked == 6


def test_penny_pump_squeezes(root, manifest, calendar):
    """Most pumps fade; a quarter squeeze 20-80 % above the open within the first hour, then
    fade or hold."""
    pumps = manifest["penny_pumps"]
    kinds = pd.Series([p["kind"] for p in pumps])
    assert set(kinds) == {"fade", "squeeze", "squeeze_hold"}
    assert 0.15 <= kinds.isin(["squeeze", "squeeze_hold"]).mean() <= 0.40
    assert (kinds == "fade").mean() > 0.55
    squeezes = [p for p in pumps if p["kind"] != "fade"]
    for pump in squeezes[:3] + squeezes[-2:]:
        f = read_minute(root, pump["session"])
        f = f[f["ticker"] == pump["ticker"]]
        start = pd.to_datetime(f["window_start"], unit="ns", utc=True)
        open_time = calendar.session_open(pump["session"])
        rth = f[(start >= open_time) & (start < calendar.session_close(pump["session"]))]
        first_hour = rth[start[rth.index] < open_time + 61 * MIN]
        assert rth["open"].iloc[0] == pump["open"]
        assert first_hour["high"].max() >= max(1.19 * pump["open"], pump["squeeze_high"])
        assert 8 <= pump["squeeze_minute"] <= 60
        assert pump["squeeze_high"] <= 1.81 * pump["open"]
        if pump["kind"] == "squeeze":
            assert rth["close"].iloc[-1] < pump["open"]
        else:
            assert rth["close"].iloc[-1] > pump["open"]


def test_gap_and_go_days(root, manifest, daily, calendar):
    """Low-float small/mid caps gap 10 %+ on pre-market volume and break the pre-market high on
    rising volume before 11:00 (gap_and_go's default rules), then run, fade or reverse."""
    events = manifest["gap_and_go"]
    assert 10 <= len(events) <= 60
    assert min(e["session"] for e in events) >= demo.EVENTS_FROM
    assert {e["kind"] for e in events} == {"runner", "fader", "reversal"}
    details = pd.DataFrame(ref(root, "ticker_details"))
    shares = details[details["active"]].set_index("ticker")["share_class_shares_outstanding"]
    names = (set(manifest["tickers"]["small_cap"]) | set(manifest["tickers"]["mid_cap"])
             | set(manifest["tickers"]["reused"]))
    for e in events:
        assert e["ticker"] in names and shares[e["ticker"]] < 50e6
        assert 5 <= e["prior_close"] and e["premarket_last"] <= 50
        assert 0.10 <= e["premarket_last"] / e["prior_close"] - 1 <= 0.41
        assert e["breakout_et"] <= "10:45"
    prior = daily.assign(prev_close=daily.groupby("ticker")["close"].shift(1))
    prior = prior.set_index(["ticker", "session"])
    for e in events[:4] + events[-4:]:
        day = pd.Timestamp(e["session"])
        f = read_minute(root, e["session"])
        f = f[f["ticker"] == e["ticker"]].sort_values("window_start")
        start = pd.to_datetime(f["window_start"], unit="ns", utc=True)
        open_time = calendar.session_open(day)
        pre = f[start < open_time]
        rth = f[(start >= open_time) & (start < calendar.session_close(day))]
        assert prior.loc[(e["ticker"], day), "prev_close"] == e["prior_close"]
        assert pre["close"].iloc[-1] == e["premarket_last"]
        assert pre["high"].max() == e["premarket_high"]
        assert pre["volume"].sum() >= 50_000
        # the break: a bar ending by 11:00 closes above the pre-market high on at least twice
        # the average volume of the session's earlier bars (first bar: the pre-market average)
        volume = rth["volume"].to_numpy(dtype=float)
        earlier = np.r_[pre["volume"].mean(), np.cumsum(volume)[:-1] / np.arange(1, len(volume))]
        in_time = (start[rth.index] + MIN <= open_time + 90 * MIN).to_numpy()
        breaks = in_time & (rth["close"].to_numpy() > e["premarket_high"]) & (volume >= 2 * earlier)
        assert breaks.any(), e
        run = rth["high"].max() / e["premarket_high"] - 1
        assert 0.03 <= run <= 0.35
        if e["kind"] == "reversal":
            assert rth["close"].iloc[-1] < e["premarket_last"]
    runners = [e for e in events if e["kind"] == "runner"]
    assert any(e["high"] >= 1.15 * e["premarket_high"] for e in runners)


def test_penny_prices_and_missing_minutes(root, manifest, daily, calendar):
    penny = daily[daily["ticker"].isin(manifest["tickers"]["penny"])]
    medians = penny.groupby("ticker")["close"].median()
    assert (medians < 5.5).all()
    assert (medians < 0.05).sum() >= 3
    assert ((medians > 0.005) & (medians < 0.02)).any()  # one around $0.01
    assert (penny["close"] < 0.005).any()  # sub-penny prints like 0.0034
    day = "2024-09-04"
    f = read_minute(root, day)
    start = pd.to_datetime(f["window_start"], unit="ns", utc=True)
    rth = f[(start >= calendar.session_open(day)) & (start < calendar.session_close(day))]
    share = rth[rth["ticker"].isin(manifest["tickers"]["penny"])].groupby("ticker").size() / 390
    pumped = {p["ticker"] for p in manifest["penny_pumps"] if p["session"] == day}
    assert share[~share.index.isin(pumped)].between(0.1, 0.7).all() and share.median() < 0.55
    assert (share[share.index.isin(pumped)] > 0.6).all()  # a pumped name trades all morning


def test_intraday_halt(root, manifest):
    halt = manifest["intraday_halt"]
    f = read_minute(root, halt["session"])
    clock = et_clock(f.loc[f["ticker"] == halt["ticker"], "window_start"]).dt.strftime("%H:%M")
    assert not clock.between(halt["start_et"], halt["end_et"], inclusive="left").any()
    gap = pd.Timestamp(f"2000-01-01 {halt['end_et']}") - pd.Timestamp(f"2000-01-01 {halt['start_et']}")
    assert gap >= pd.Timedelta(minutes=15)
    assert (clock < halt["start_et"]).any() and (clock >= halt["end_et"]).any()
    assert ((clock >= "12:00") & (clock < "16:00")).any()


# ----------------------------------------------------------------------------- special tickers
def test_delisted_ticker(root, manifest, daily, sessions):
    info = manifest["delisted"]
    bars = daily[daily["ticker"] == info["ticker"]]
    assert bars["session"].max() == pd.Timestamp(info["last_session"])
    assert "2024-09-09" <= info["last_session"] <= "2024-09-20"
    assert info["ticker"] in minute_tickers(root, pd.Timestamp(info["last_session"]))
    after = sessions[sessions > pd.Timestamp(info["last_session"])]
    for day in list(after[:3]) + list(after[3::5]):  # the minute files themselves, sampled
        assert info["ticker"] not in minute_tickers(root, day), day
    tickers = [t for t in ref(root, "tickers") if t["ticker"] == info["ticker"]]
    assert len(tickers) == 1 and tickers[0]["active"] is False
    next_day = pd.Timestamp(info["last_session"]) + pd.Timedelta(days=1)
    assert tickers[0]["delisted_utc"] == info["delisted_utc"] == f"{next_day:%Y-%m-%d}T00:00:00Z"


def test_reused_ticker(manifest, daily, root):
    info = manifest["reused_ticker"]
    entries = [t for t in ref(root, "tickers") if t["ticker"] == info["ticker"]]
    assert len(entries) == 2
    old, new = sorted(entries, key=lambda t: t["active"])
    assert old["active"] is False and old["delisted_utc"] and new["active"] is True
    assert "delisted_utc" not in new
    for key in ("composite_figi", "cik", "name"):
        assert old[key] != new[key]
    bars = daily[daily["ticker"] == info["ticker"]].set_index("session")
    a_end = pd.Timestamp(info["periods"][0]["last_session"])
    b_start = pd.Timestamp(info["periods"][1]["first_session"])
    assert a_end.month == 8 and b_start.month == 10
    assert old["delisted_utc"] == f"{a_end + pd.Timedelta(days=1):%Y-%m-%d}T00:00:00Z"
    # Two non-overlapping periods, a gap between them, different price levels.
    assert not ((bars.index > a_end) & (bars.index < b_start)).any()
    sessions = daily["session"].drop_duplicates().sort_values()
    between = sessions[(sessions > a_end) & (sessions < b_start)]
    assert len(between) > 40
    for day in list(between[:2]) + list(between[-2:]) + list(between[::6]):
        assert info["ticker"] not in minute_tickers(root, day), day
    assert info["ticker"] in minute_tickers(root, a_end)
    assert info["ticker"] in minute_tickers(root, b_start)
    first, second = bars[bars.index <= a_end], bars[bars.index >= b_start]
    assert len(first) > 15 and len(second) > 40
    assert first.index[0] == pd.Timestamp(demo.DEMO_START) and second.index[-1] == pd.Timestamp(demo.DEMO_END)
    ratio = first["close"].median() / second["close"].median()
    assert ratio > 1.5 or ratio < 1 / 1.5
    details = [d for d in ref(root, "ticker_details") if d["ticker"] == info["ticker"]]
    assert {d["composite_figi"] for d in details} == {old["composite_figi"], new["composite_figi"]}


def test_full_day_halt(root, manifest, daily, sessions):
    info = manifest["full_day_halt"]
    day = pd.Timestamp(info["session"])
    traded = set(daily.loc[daily["ticker"] == info["ticker"], "session"])
    i = sessions.get_loc(day)
    assert day not in traded and sessions[i - 1] in traded and sessions[i + 1] in traded
    assert info["ticker"] not in minute_tickers(root, day)
    assert info["ticker"] in minute_tickers(root, sessions[i - 1])
    assert info["ticker"] in minute_tickers(root, sessions[i + 1])
    assert info["ticker"] in manifest["liquid"]

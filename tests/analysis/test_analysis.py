"""Results analysis (analysis): round trips, statistics, tear sheet page, gap
statistics and the ``gapline tearsheet|compare|gaps`` commands, against hand-built data and
plain pandas."""
from __future__ import annotations

import os
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import empyrical as ep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from pandas.testing import assert_frame_equal, assert_series_equal  # noqa: E402

from analysis import compare, gapstats, perf_files, roundtrips as rt, tearsheet as ts  # noqa: E402
from bundles import layout, reference_history  # noqa: E402
from gapline.cli import main  # noqa: E402
from bundles.polygon import PolygonBundleConfig, build_bundle  # noqa: E402
from tests.demo_fixture import demo_raw_root  # noqa: E402
from tests.synth import minute_rows, write_minute_days  # noqa: E402

UTC = "UTC"
ET = "America/New_York"


def ts_et(text):
    return pd.Timestamp(text, tz=ET).tz_convert(UTC)


# ============================================================================ round trips
def _txns(rows):
    frame = pd.DataFrame(rows, columns=["dt", "symbol", "amount", "price", "order_id",
                                        "commission"])
    frame["dt"] = pd.to_datetime(frame["dt"]).dt.tz_localize(ET).dt.tz_convert(UTC)
    return frame


@pytest.fixture
def hand_txns():
    return _txns([
        # AAA long: scale in (two entries), scale out (a partial exit spanning both lots)
        ("2024-07-08 09:41", "AAA", 100, 10.0, "a1", 1.0),
        ("2024-07-08 10:00", "AAA", 50, 11.0, "a2", 0.5),
        ("2024-07-08 11:00", "AAA", -120, 12.0, "a3", 1.2),
        ("2024-07-08 15:55", "AAA", -30, 9.0, "a4", 0.3),
        # BBB short entered in two partial fills of one order, covered by a fill that
        # crosses zero: the rest (50) opens a long that is still open at the end
        ("2024-07-08 09:41", "BBB", -150, 5.0, "b1", 0.0),
        ("2024-07-08 09:42", "BBB", -50, 5.1, "b1", 0.0),
        ("2024-07-09 09:45", "BBB", 250, 4.0, "b2", 2.5),
    ])


def test_match_fifo_partial_fills_scaling_and_reversal(hand_txns):
    got = rt.match_fifo(hand_txns)
    t = lambda s: ts_et(s)  # noqa: E731
    expected = pd.DataFrame([
        ("AAA", 0, "long", 100, t("2024-07-08 09:41"), 10.0, t("2024-07-08 11:00"), 12.0,
         200.0, 1.0 + 1.0, "a1", "a3"),
        ("AAA", 0, "long", 20, t("2024-07-08 10:00"), 11.0, t("2024-07-08 11:00"), 12.0,
         20.0, 0.2 + 0.2, "a2", "a3"),
        ("AAA", 0, "long", 30, t("2024-07-08 10:00"), 11.0, t("2024-07-08 15:55"), 9.0,
         -60.0, 0.3 + 0.3, "a2", "a4"),
        ("BBB", 0, "short", 150, t("2024-07-08 09:41"), 5.0, t("2024-07-09 09:45"), 4.0,
         150.0, 1.5, "b1", "b2"),
        ("BBB", 0, "short", 50, t("2024-07-08 09:42"), 5.1, t("2024-07-09 09:45"), 4.0,
         55.0, 0.5, "b1", "b2"),
        ("BBB", 1, "long", 50, t("2024-07-09 09:45"), 4.0, pd.NaT, np.nan, np.nan, 0.5,
         "b2", None),
    ], columns=rt.PIECE_COLUMNS)
    expected["exit_dt"] = pd.to_datetime(expected["exit_dt"], utc=True)
    assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_round_trips_aggregate_pieces_per_episode(hand_txns):
    trips = rt.round_trips(hand_txns, scheduled=["15:55"])
    cols = ["symbol", "trip", "side", "shares", "entry_price", "exit_price", "pnl",
            "commission", "net_pnl", "hold_minutes", "entry_fills", "exit_fills",
            "open_shares", "closed", "entry_clock", "minutes_after_open", "exit_reason"]
    aaa_hold = (100 * 79 + 20 * 60 + 30 * 355) / 150
    bbb_hold = (150 * (24 * 60 + 4) + 50 * (24 * 60 + 3)) / 200
    expected = pd.DataFrame([
        ("AAA", 0, "long", 150, (1000 + 550) / 150, (120 * 12 + 30 * 9) / 150, 160.0, 3.0,
         157.0, aaa_hold, 2, 2, 0, True, "09:41", 11, "scheduled close"),
        ("BBB", 0, "short", 200, (750 + 255) / 200, 4.0, 205.0, 2.0, 203.0, bbb_hold, 2, 1,
         0, True, "09:41", 11, "target"),
        ("BBB", 1, "long", 50, 4.0, np.nan, 0.0, 0.5, -0.5, np.nan, 1, 0, 50, False,
         "09:45", 15, "open"),
    ], columns=cols)
    assert_frame_equal(trips[cols], expected, check_dtype=False, rtol=1e-12)
    assert list(trips["session"].dt.strftime("%Y-%m-%d")) == ["2024-07-08"] * 2 + ["2024-07-09"]
    assert list(trips["weekday"].astype(str)) == ["Monday", "Monday", "Tuesday"]
    # PnL of closed episodes = minus the sum of signed cash flows
    flows = -(hand_txns["amount"] * hand_txns["price"]).groupby(hand_txns["symbol"]).sum()
    assert trips.loc[0, "pnl"] == pytest.approx(flows["AAA"])
    assert trips.loc[1, "return"] == pytest.approx(205.0 / 1005.0)


def test_exit_reasons_mapping_callable_and_heuristics(hand_txns):
    by_id = rt.round_trips(hand_txns, exit_reasons={"a4": "time stop"}, scheduled=[])
    assert list(by_id["exit_reason"]) == ["time stop", "target", "open"]
    by_clock = rt.round_trips(hand_txns, exit_reasons={"9:45": "cover"})
    assert list(by_clock["exit_reason"]) == ["target", "cover", "open"]
    called = rt.round_trips(hand_txns, exit_reasons=lambda r: "x" if r.symbol == "BBB" else None,
                            scheduled=[])
    assert list(called["exit_reason"]) == ["target", "x", "x"]
    losing = hand_txns.copy()
    losing.loc[losing["order_id"] == "a3", "price"] = 8.0
    assert rt.round_trips(losing, scheduled=[])["exit_reason"].iloc[0] == "stop"
    # no order id on the exit fill: zipline's auto close
    auto = hand_txns.copy()
    auto.loc[auto["order_id"] == "a4", "order_id"] = None
    assert rt.round_trips(auto, scheduled=[])["exit_reason"].iloc[0] == "auto close"


def test_scheduled_exit_clock_inferred_across_sessions():
    rows = []
    for day in ("2024-07-08", "2024-07-09", "2024-07-10"):
        rows += [(f"{day} 09:41", "AAA", -100, 10.0, f"e{day}", 0.0),
                 (f"{day} 15:56", "AAA", 100, 9.0, f"x{day}", 0.0)]
    rows += [("2024-07-11 09:41", "AAA", -100, 10.0, "e4", 0.0),
             ("2024-07-11 10:13", "AAA", 100, 12.0, "x4", 0.0)]
    trips = rt.round_trips(_txns(rows))
    assert rt.scheduled_exit_clocks(trips) == ["15:56"]
    assert list(trips["exit_reason"]) == ["scheduled close"] * 3 + ["stop"]


class _Asset:
    """What zipline puts in perf cells: an object with sid and symbol."""

    def __init__(self, sid, symbol):
        self.sid, self.symbol = sid, symbol


def _perf_from_fills(fills, orders, sessions, extra=None):
    """A minimal perf frame: returns, transactions and orders per session."""
    idx = pd.DatetimeIndex([pd.Timestamp(f"{s} 20:00", tz=UTC) for s in sessions])
    txn_cells = [[f for f in fills if rt.asset_symbol(f["sid"]) and
                  f["dt"].tz_convert(ET).strftime("%Y-%m-%d") == s] for s in sessions]
    order_cells = [[o for o in orders if o["created"].tz_convert(ET).strftime("%Y-%m-%d") == s]
                   for s in sessions]
    perf = pd.DataFrame({"returns": 0.0, "transactions": txn_cells, "orders": order_cells,
                         "positions": [[] for _ in sessions]}, index=idx)
    for k, v in (extra or {}).items():
        perf[k] = v
    return perf


def test_round_trips_from_perf_frame_spread_order_commission():
    a = _Asset(3, "AAA")
    t = ts_et
    fills = [
        {"dt": t("2024-07-08 09:41"), "sid": a, "amount": -100, "price": 10.0,
         "order_id": "o1", "commission": None},
        {"dt": t("2024-07-08 09:42"), "sid": a, "amount": -300, "price": 10.5,
         "order_id": "o1", "commission": None},
        {"dt": t("2024-07-08 15:56"), "sid": a, "amount": 400, "price": 10.0,
         "order_id": "o2", "commission": None},
    ]
    orders = [{"id": "o1", "created": t("2024-07-08 09:40"), "dt": t("2024-07-08 09:42"),
               "amount": -400, "filled": -400, "commission": 2.0, "sid": a, "status": "FILLED"},
              {"id": "o2", "created": t("2024-07-08 15:55"), "dt": t("2024-07-08 15:56"),
               "amount": 400, "filled": 400, "commission": 1.0, "sid": a, "status": "FILLED"}]
    perf = _perf_from_fills(fills, orders, ["2024-07-08", "2024-07-09"],
                            extra={"gaps": [{a: -0.07}, {}]})
    txns = rt.transactions_frame(perf)
    assert list(txns["commission"]) == [0.5, 1.5, 1.0]
    assert list(txns["sid"]) == [3, 3, 3]
    trips = rt.round_trips(perf, exit_reasons={"15:55": "scheduled close"})
    assert len(trips) == 1
    row = trips.iloc[0]
    assert row["pnl"] == pytest.approx(150.0) and row["commission"] == pytest.approx(3.0)
    assert row["exit_clock"] == "15:55"  # the exit ORDER's creation time, not the fill's
    assert row["exit_reason"] == "scheduled close"
    assert row["gap"] == pytest.approx(-0.07) and row["gap_class"] == "-10%..-5%"


def test_gaps_keyed_by_date_and_symbol_and_breakdowns(hand_txns):
    gaps = pd.Series([0.03, -0.12, 0.25],
                     index=pd.MultiIndex.from_tuples([(pd.Timestamp("2024-07-08"), "AAA"),
                                                      (pd.Timestamp("2024-07-08"), "BBB"),
                                                      (pd.Timestamp("2024-07-09"), "BBB")]))
    trips = rt.round_trips(hand_txns, gaps=gaps, scheduled=["15:55"])
    assert list(trips["gap"]) == [0.03, -0.12, 0.25]
    assert list(trips["gap_class"].astype(str)) == ["2%..5%", "<=-10%", ">20%"]
    # a frame with date/symbol columns works the same
    frame = gaps.rename("gap").rename_axis(["date", "symbol"]).reset_index()
    assert_frame_equal(rt.round_trips(hand_txns, gaps=frame, scheduled=["15:55"]), trips)
    by_gap = rt.pnl_by(trips, "gap_class")
    assert list(by_gap.index.astype(str)) == ["<=-10%", "2%..5%", ">20%"]
    assert by_gap.loc["2%..5%", "total_pnl"] == pytest.approx(160.0)
    by_clock = rt.pnl_by(trips, "entry_clock")
    assert by_clock.loc["09:41", "trades"] == 2
    assert by_clock.loc["09:41", "win_rate"] == 1.0
    by_day = rt.pnl_by(trips, "weekday")
    assert list(by_day.index.astype(str)) == ["Monday", "Tuesday"]
    summary = rt.trip_summary(trips)
    assert summary["round trips"] == 3 and summary["closed"] == 2
    assert summary["total PnL"] == pytest.approx(365.0)


def test_no_fills_gives_empty_round_trips():
    perf = _perf_from_fills([], [], ["2024-07-08"])
    trips = rt.round_trips(perf)
    assert trips.empty and list(trips.columns) == rt.TRIP_COLUMNS


# ============================================================================ statistics
def test_perf_stats_equal_empyrical_called_directly():
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024-01-02", periods=120, freq="B", tz=UTC)
    r = pd.Series(rng.normal(0.0005, 0.01, len(idx)), index=idx)
    b = pd.Series(rng.normal(0.0003, 0.008, len(idx)), index=idx)
    got = ts.perf_stats(r, b)
    expected = pd.Series({
        "annual_return": ep.annual_return(r),
        "cumulative_return": ep.cum_returns_final(r),
        "annual_volatility": ep.annual_volatility(r),
        "sharpe_ratio": ep.sharpe_ratio(r),
        "sortino_ratio": ep.sortino_ratio(r),
        "calmar_ratio": ep.calmar_ratio(r),
        "max_drawdown": ep.max_drawdown(r),
        "stability": ep.stability_of_timeseries(r),
        "tail_ratio": ep.tail_ratio(r),
        "daily_var": ep.value_at_risk(r, cutoff=0.05),
        "alpha": ep.alpha(r, b),
        "beta": ep.beta(r, b),
    }, name="value", dtype=float)
    assert_series_equal(got, expected, rtol=1e-10)
    assert "alpha" not in ts.perf_stats(r)


def test_perf_stats_of_a_flat_run_do_not_raise():
    r = pd.Series(0.0, index=pd.date_range("2024-01-02", periods=5, freq="B", tz=UTC))
    stats = ts.perf_stats(r)
    assert stats["cumulative_return"] == 0.0 and stats["max_drawdown"] == 0.0
    assert ts.format_stats(stats)["Sharpe ratio"] == "n/a"


def test_load_perf_reads_a_csv_of_the_perf_frame(tmp_path):
    a = _Asset(7, "XYZ")
    fill = {"dt": ts_et("2024-07-08 09:41"), "sid": a, "amount": 10, "price": 1.5,
            "order_id": "o1", "commission": None}
    perf = _perf_from_fills([fill], [], ["2024-07-08"])
    # what pandas writes for zipline objects: their reprs
    perf["transactions"] = ["[{'amount': 10, 'dt': Timestamp('2024-07-08 13:41:00+0000', "
                            "tz='UTC'), 'price': 1.5, 'order_id': 'o1', 'sid': Equity(7 [XYZ]), "
                            "'commission': None}]"]
    perf["orders"] = ["[{'id': 'o1', 'status': <ORDER_STATUS.FILLED: 1>, 'commission': nan, "
                      "'created': Timestamp('2024-07-08 13:40:00+0000', tz='UTC'), "
                      "'sid': Equity(7 [XYZ])}]"]
    perf.to_csv(tmp_path / "perf.csv")
    got = perf_files.load_perf(tmp_path / "perf.csv")
    (txn,) = got["transactions"].iloc[0]
    assert txn["sid"] == (7, "XYZ") and txn["dt"] == ts_et("2024-07-08 09:41")
    (order,) = got["orders"].iloc[0]
    assert order["status"] == "FILLED" and order["commission"] is None
    assert rt.transactions_frame(got)["symbol"].tolist() == ["XYZ"]


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "data", "action"):
                self.refs.append((tag, k, v or ""))


def assert_self_contained(path):
    text = path.read_text()
    parser = _Refs()
    parser.feed(text)
    assert not {"link", "script", "iframe", "object"} & set(parser.tags)
    assert "url(" not in text and "@import" not in text
    for tag, attr, value in parser.refs:
        assert attr == "src" and tag == "img" and value.startswith("data:image/png;base64,"), \
            (tag, attr, value[:60])
    return parser


# ============================================================================ gap statistics
def _expected_events(daily, start, end, horizons=gapstats.FILL_HORIZONS):
    """Plain pandas/Python, written after the article's ``gap_fill_analysis``
    (``003_290001eae97eba9c.txt`` lines 119-146): per asset, a frame truncated at its last
    bar (``len(df)``), and for each gap on row ``idx`` and each horizon ``days``:
    ``if idx + days < len(df)``: ``future_data = df.loc[idx:idx+days]`` (both ends
    included); up gaps (``gap_pct > 0``) fill on ``low.min() <= prev_close``, the others on
    ``high.max() >= prev_close``."""
    sessions = sorted(daily["session"].unique())
    rows = []
    for sid, g in daily.groupby("sid"):
        g = g.set_index("session").reindex(sessions).reset_index(drop=True)
        valid = [i for i in range(len(g)) if np.isfinite(g["close"].iloc[i])]
        df = g.iloc[: valid[-1] + 1] if valid else g.iloc[:0]
        for idx in range(1, len(g)):
            day = sessions[idx]
            if day < pd.Timestamp(start) or day > pd.Timestamp(end):
                continue
            prior, o = g["close"].iloc[idx - 1], g["open"].iloc[idx]
            if not (prior > 0) or not np.isfinite(o):
                continue
            gap = o / prior - 1

            def filled(days):
                future_data = df.loc[idx:idx + days]
                if gap > 0:
                    return future_data["low"].min() <= prior
                return future_data["high"].max() >= prior

            days = next((k for k in range(max(horizons) + 1)
                         if idx + k < len(g) and filled(k)), np.nan)
            row = {"session": day, "sid": sid, "gap": gap,
                   "continuation": g["close"].iloc[idx] / o - 1, "days_to_fill": days}
            for n in horizons:
                row[f"filled_{n}"] = float(filled(n)) if idx + n < len(df) else np.nan
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["session", "sid"]).reset_index(drop=True)


def _hand_daily():
    """Six assets x 45 sessions of random OHLC with planted gaps, missing days and a
    delisting, as a long frame (session, sid, symbol, open, high, low, close)."""
    rng = np.random.default_rng(11)
    sessions = pd.bdate_range("2024-03-01", periods=45)
    frames = []
    for sid in range(6):
        if sid == 5:  # a steady riser whose gap-ups never fill
            close = 20 * np.exp(np.cumsum(rng.normal(0.05, 0.005, len(sessions))))
            gap = rng.choice([0.06, 0.15], len(sessions))
        else:
            close = 20 * np.exp(np.cumsum(rng.normal(0, 0.03, len(sessions))))
            gap = rng.choice([0.0, 0.01, -0.03, 0.06, -0.08, 0.15, 0.3, -0.15], len(sessions))
        prior = np.r_[close[0], close[:-1]]
        open_ = prior * (1 + gap)
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.03, len(sessions)))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.03, len(sessions)))
        f = pd.DataFrame({"session": sessions, "sid": sid, "symbol": f"S{sid}", "open": open_,
                          "high": high, "low": low, "close": close, "volume": 1000.0})
        if sid == 2:  # no trades on two sessions
            f.loc[[10, 11], ["open", "high", "low", "close"]] = np.nan
        if sid == 3:  # delisted after session 30
            f.loc[31:, ["open", "high", "low", "close"]] = np.nan
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def test_gap_events_equal_a_plain_pandas_loop():
    daily = _hand_daily()
    start, end = "2024-03-04", "2024-04-30"
    assets = pd.DataFrame({"shares_outstanding": [5e6, 12e6, 30e6, 60e6, 2e8, np.nan]})
    events = gapstats.gap_events(daily, start, end, assets=assets)
    expected = _expected_events(daily, start, end)
    cols = list(expected.columns)
    assert_frame_equal(events[cols], expected, check_dtype=False, rtol=1e-12)
    # the window rule is exercised: incomplete 20-day windows dropped (filled ones too),
    # some never filled, fills on the gap day (k = 0) and later
    assert events["filled_20"].isna().any() and (events["filled_20"] == 0).any()
    assert ((events["days_to_fill"] <= 3) & events["filled_20"].isna()).any()
    assert (events["days_to_fill"] == 0).any() and (events["days_to_fill"] > 0).any()
    shares = dict(zip(events["sid"], events["shares_class"].astype(str)))
    assert shares == {0: "micro", 1: "low", 2: "medium", 3: "large", 4: "institutional",
                      5: "unknown"}
    # the article's bins: pd.cut(gap_pct, [-inf, -10, -5, -2, 2, 5, 10, 20, inf]), right-closed
    pct = 100 * expected["gap"]
    bins = pd.cut(pct, [-np.inf, -10, -5, -2, 2, 5, 10, 20, np.inf], labels=[
        "<=-10%", "-10%..-5%", "-5%..-2%", "-2%..2%", "2%..5%", "5%..10%", "10%..20%",
        ">20%"]).astype(str)
    assert list(events["gap_class"].astype(str)) == list(bins)

    table = gapstats.gap_fill_table(events)
    ex = expected.assign(gap_class=bins)
    for cls, g in ex.groupby("gap_class"):
        row = table.loc[cls]
        assert row["events"] == len(g)
        for n in gapstats.FILL_HORIZONS:
            known = g[f"filled_{n}"].dropna()
            assert row[f"fill_{n}d"] == pytest.approx(known.mean() if len(known) else np.nan,
                                                      nan_ok=True)
        done = g.loc[g["filled_20"] == 1, "days_to_fill"]
        assert row["mean_days_to_fill"] == pytest.approx(
            done.mean() if len(done) else np.nan, nan_ok=True)
        assert row["cont_mean"] == pytest.approx(g["continuation"].mean())
        assert row["cont_median"] == pytest.approx(g["continuation"].median())
        assert row["cont_positive"] == pytest.approx((g["continuation"] > 0).mean())
    by_shares = gapstats.shares_table(events, min_gap=0.02)
    big = ex[ex["gap"].abs() >= 0.02]
    assert by_shares["events"].sum() == len(big)
    micro_up = big[(big["sid"] == 0) & (big["gap"] > 0)]
    assert by_shares.loc[("micro", "up"), "events"] == len(micro_up)
    assert by_shares.loc[("micro", "up"), "fill_1d"] == pytest.approx(
        micro_up["filled_1"].mean())


# ============================================================================ small bundle
SESSIONS = ["2024-07-08", "2024-07-09", "2024-07-10", "2024-07-11", "2024-07-12",
            "2024-07-15", "2024-07-16", "2024-07-17", "2024-07-18", "2024-07-19"]
PLANNED_GAPS = {  # ticker -> gap per session (the first session has none)
    "UPG": [0, 0.06, 0.03, 0.12, -0.01, 0.25, 0.04, 0.0, 0.02, 0.08],
    "DNG": [0, -0.06, -0.03, -0.12, 0.01, -0.04, -0.02, -0.2, 0.05, -0.07],
    "SPL": [0, 0.02, -0.025, 0.0, 0.01, 0.03, -0.05, 0.0, 0.04, -0.01],
    "MIC": [0, 0.3, -0.1, 0.05, 0.0, -0.06, 0.15, -0.3, 0.07, 0.0],
}
BASE = {"UPG": 20.0, "DNG": 40.0, "SPL": 80.0, "MIC": 3.0}
SPLIT_DATE = "2024-07-15"  # SPL 2:1: raw prices halve on this session


def _bundle_frames():
    rng = np.random.default_rng(5)
    parts = []
    for ticker, gaps in PLANNED_GAPS.items():
        prev_close = None
        for day, g in zip(SESSIONS, gaps):
            base = BASE[ticker] if prev_close is None else prev_close * (1 + g)
            if ticker == "SPL" and day == SPLIT_DATE:
                base /= 2
            rows = minute_rows(ticker, day, round(base, 2), rng, "09:30", "15:59",
                               skip=0.3 if ticker == "MIC" else 0.0)
            parts.append(rows)
            prev_close = rows["close"].iloc[-1]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    raw = tmp_path_factory.mktemp("analysis_raw")
    zroot = tmp_path_factory.mktemp("analysis_zipline")
    frame = _bundle_frames()
    write_minute_days(raw, frame)
    layout.write_reference(raw, "tickers", [
        {"ticker": t, "name": t, "type": "CS", "primary_exchange": "XNAS", "active": True}
        for t in PLANNED_GAPS])
    layout.write_reference(raw, "splits", [
        {"ticker": "SPL", "execution_date": SPLIT_DATE, "split_from": 1, "split_to": 2}])
    # dated counts, known (90-day lag) before the first session; MIC's later count is known
    # only after the last session, so no session sees it
    first = pd.Timestamp(SESSIONS[0])
    for ticker, shares, days in (("UPG", 2e8, 120), ("DNG", 40e6, 120), ("MIC", 4e6, 120),
                                 ("MIC", 90e6, -1)):
        reference_history.write_dated_details(
            raw, ticker, first - pd.Timedelta(days=days),
            {"ticker": ticker, "share_class_shares_outstanding": shares})
    data = build_bundle("analysis-small", PolygonBundleConfig(root=raw), zroot)
    return {"raw": raw, "zroot": zroot, "frame": frame, "data": data,
            "environ": dict(os.environ, ZIPLINE_ROOT=str(zroot))}


def _raw_daily(frame):
    """Daily OHLC from the raw minute rows (all regular session here), split-adjusted."""
    t = pd.to_datetime(frame["window_start"], utc=True).dt.tz_convert(ET)
    f = frame.assign(session=t.dt.tz_localize(None).dt.normalize(), t=t)
    f = f.sort_values(["ticker", "t"])
    g = f.groupby(["ticker", "session"])
    daily = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(),
                          "low": g["low"].min(), "close": g["close"].last()}).reset_index()
    before = (daily["ticker"] == "SPL") & (daily["session"] < pd.Timestamp(SPLIT_DATE))
    daily.loc[before, ["open", "high", "low", "close"]] *= 0.5
    return daily


def test_bundle_gap_events_match_the_raw_files(small):
    data = small["data"]
    daily = gapstats.load_daily("analysis-small", SESSIONS[0], SESSIONS[-1], bundle_data=data)
    events = gapstats.gap_events(daily, SESSIONS[1], SESSIONS[-1],
                                 history=gapstats.reference_history(data))
    raw = _raw_daily(small["frame"])
    sid_of = daily.drop_duplicates("symbol").set_index("symbol")["sid"]
    raw["sid"] = raw["ticker"].map(sid_of)
    expected = _expected_events(raw.rename(columns={"ticker": "symbol"}), SESSIONS[1],
                                SESSIONS[-1])
    cols = list(expected.columns)
    assert_frame_equal(events[cols], expected, check_dtype=False, rtol=1e-6)
    spl = events[(events["symbol"] == "SPL") & (events["session"] == pd.Timestamp(SPLIT_DATE))]
    assert abs(spl["gap"].iloc[0] - 0.03) < 0.01  # the split is no -50% gap
    classes = events.drop_duplicates("symbol").set_index("symbol")["shares_class"].astype(str)
    assert classes.to_dict() == {"DNG": "medium", "MIC": "micro", "SPL": "unknown",
                                 "UPG": "institutional"}


def test_intraday_path_equals_plain_pandas_per_event(small):
    data = small["data"]
    daily = gapstats.load_daily("analysis-small", SESSIONS[0], SESSIONS[-1], bundle_data=data)
    events = gapstats.gap_events(daily, SESSIONS[1], SESSIONS[-1])
    path = gapstats.intraday_path(data, events, min_gap=0.02)
    frame = small["frame"]
    t = pd.to_datetime(frame["window_start"], utc=True).dt.tz_convert(ET)
    frame = frame.assign(session=t.dt.tz_localize(None).dt.normalize(),
                         minute=(t.dt.hour * 60 + t.dt.minute) - (9 * 60 + 30) + 1)
    sums = {"up": pd.Series(0.0, index=range(1, 391)), "down": pd.Series(0.0, index=range(1, 391))}
    counts = {k: pd.Series(0, index=range(1, 391)) for k in sums}
    for ev in events[events["gap"].abs() >= 0.02].itertuples():
        bars = frame[(frame["ticker"] == ev.symbol) & (frame["session"] == ev.session)]
        bars = bars.set_index("minute").sort_index()
        close = bars["close"].reindex(range(1, 391)).ffill()
        ret = close / bars["open"].iloc[0] - 1
        k = "up" if ev.gap > 0 else "down"
        sums[k] += ret.fillna(0.0)
        counts[k] += ret.notna().astype(int)
    for k in ("up", "down"):
        expected = (sums[k] / counts[k]).where(counts[k] > 0)
        np.testing.assert_allclose(path[k].to_numpy(), expected.to_numpy(), rtol=1e-6)
        assert list(path[f"n_{k}"]) == list(counts[k])
    assert path["n_up"].iloc[0] > 0 and path["n_down"].iloc[0] > 0


# ----------------------------------------------------------------------------- tiny algorithms
def _run(small, trade=True, size=100):
    from zipline import run_algorithm
    from zipline.api import (date_rules, order, order_target, record, schedule_function,
                             set_commission, set_slippage, symbol, time_rules)
    from zipline.finance.commission import PerShare
    from zipline.finance.slippage import FixedBasisPointsSlippage

    def initialize(context):
        context.assets = [symbol(s) for s in ("UPG", "DNG", "MIC")]
        set_slippage(FixedBasisPointsSlippage(basis_points=0, volume_limit=1.0))
        set_commission(PerShare(cost=0.005, min_trade_cost=0))
        if trade:
            schedule_function(enter, date_rules.every_day(), time_rules.market_open(minutes=10))
            schedule_function(leave, date_rules.every_day(), time_rules.market_close(minutes=5))

    def enter(context, data):
        gaps = {}
        for i, a in enumerate(context.assets):
            bars = data.history(a, ["open", "close"], 2, "1d")  # today's bar is partial
            gaps[a] = bars["open"].iloc[-1] / bars["close"].iloc[0] - 1
            order(a, size if i % 2 == 0 else -size)
        record(gaps=gaps)

    def leave(context, data):
        for a in context.assets:
            order_target(a, 0)

    return run_algorithm(start=pd.Timestamp(SESSIONS[1]), end=pd.Timestamp(SESSIONS[-1]),
                         initialize=initialize, capital_base=100_000.0,
                         data_frequency="minute", bundle="analysis-small",
                         environ=small["environ"])


@pytest.fixture(scope="module")
def pickles(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis_runs")
    paths = {}
    for name, kwargs in (("a", {}), ("b", {"size": 300}), ("zero", {"trade": False})):
        perf = _run(small, **kwargs)
        perf.to_pickle(out / f"{name}.pickle")
        paths[name] = out / f"{name}.pickle"
    return paths


def test_cli_tearsheet_writes_pngs_and_a_self_contained_page(pickles, small, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("ZIPLINE_ROOT", str(small["zroot"]))
    out = tmp_path / "sheet"
    result = CliRunner().invoke(main, ["tearsheet", str(pickles["a"]), "-o", str(out),
                                       "--exit-time", "15:55", "-b", "analysis-small",
                                       "--benchmark", "UPG"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    for name in ("returns.png", "round_trips.png", "transactions.png",
                 "intraday_round_trips.png", "index.html", "stats.csv", "round_trips.csv"):
        assert (out / name).stat().st_size > 0, name
    parser = assert_self_contained(out / "index.html")
    assert sum(1 for tag in parser.tags if tag == "img") == 4
    page = (out / "index.html").read_text()
    for label in ("Annual return", "Sharpe ratio", "Sortino ratio", "Calmar ratio",
                  "Max drawdown", "Stability", "Tail ratio", "Daily value at risk", "Beta",
                  "PnL by entry minute", "PnL by weekday", "PnL by gap class"):
        assert label in page, label
    trips = pd.read_csv(out / "round_trips.csv")
    assert len(trips) == 3 * (len(SESSIONS) - 1)
    assert set(trips["exit_reason"]) == {"scheduled close"}
    # orders at 09:40 fill on the 09:41 bar, or later when a bar is missing (MIC is sparse)
    assert trips["entry_clock"].min() == "09:41" and trips["entry_clock"].max() < "10:00"
    assert (trips.loc[trips["symbol"] != "MIC", "entry_clock"] == "09:41").all()
    # the gap comes from the bundle (-b) and equals what the algorithm recorded
    perf = pd.read_pickle(pickles["a"])
    recorded = rt.round_trips(perf)
    np.testing.assert_allclose(trips["gap"].to_numpy(), recorded["gap"].to_numpy(), atol=1e-9)
    assert "Sharpe ratio" in result.output


def test_tearsheet_of_a_run_without_trades(pickles, tmp_path):
    out = tmp_path / "zero"
    result = CliRunner().invoke(main, ["tearsheet", str(pickles["zero"]), "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    page = (out / "index.html").read_text()
    assert "No trades in this run" in page
    assert_self_contained(out / "index.html")
    assert pd.read_csv(out / "round_trips.csv").empty


def test_cli_compare_two_runs(pickles, tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", str(pickles["a"]), str(pickles["b"]),
                                       str(pickles["zero"]), "--labels", "small,big,flat",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    table = pd.read_csv(out / "compare.csv", index_col=0)
    assert list(table.index) == ["small", "big", "flat"]
    assert list(table["trades"]) == [27, 27, 0]
    for name in ("a", "b"):
        perf = pd.read_pickle(pickles[name])
        label = {"a": "small", "b": "big"}[name]
        expected = ts.perf_stats(ts.daily_returns(perf))
        assert table.loc[label, "sharpe_ratio"] == pytest.approx(expected["sharpe_ratio"])
        assert table.loc[label, "max_drawdown"] == pytest.approx(expected["max_drawdown"])
    assert (out / "cumulative_returns.png").stat().st_size > 0
    cum = compare.cumulative_returns({"a": pd.read_pickle(pickles["a"])})
    assert cum["a"].iloc[-1] == pytest.approx(
        ep.cum_returns_final(pd.read_pickle(pickles["a"])["returns"]))
    bad = CliRunner().invoke(main, ["compare", str(pickles["a"]), "--labels", "x,y",
                                    "-o", str(out)])
    assert bad.exit_code != 0


def test_cli_gaps_on_the_small_bundle(small, tmp_path, monkeypatch):
    monkeypatch.setenv("ZIPLINE_ROOT", str(small["zroot"]))
    out = tmp_path / "gaps"
    result = CliRunner().invoke(main, ["gaps", "-b", "analysis-small", "--start", SESSIONS[1],
                                       "--end", SESSIONS[-1], "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    for name in ("gap_fill_by_class.csv", "gap_fill_by_shares.csv", "intraday_path.csv",
                 "gap_events.csv", "gaps.png"):
        assert (out / name).stat().st_size > 0, name
    by_class = pd.read_csv(out / "gap_fill_by_class.csv", index_col=0)
    assert by_class["events"].sum() == 4 * (len(SESSIONS) - 1)
    assert "gap_class" in result.output and "shares_class" in result.output
    events = pd.read_csv(out / "gap_events.csv")
    assert len(events) == 4 * (len(SESSIONS) - 1)


# ============================================================================ demo bundle
def test_gap_study_on_the_demo_bundle(demo_root):
    """The demo bundle's gaps vs its raw day-aggregate files."""
    root = demo_root
    environ = dict(os.environ, ZIPLINE_ROOT=str(root))
    data = gapstats.load_bundle("polygon-demo", environ)
    start, end = "2024-09-03", "2024-09-30"
    result = gapstats.study("polygon-demo", start, end, bundle_data=data, types=["CS"])
    ev = result.events
    assert len(ev) > 1000 and result.by_gap["events"].sum() == len(ev)
    assert result.path["n_up"].iloc[0] > 0 and result.path["n_down"].iloc[0] > 0
    # every gap equals open / prior close of the raw day-aggregate files (prices above $5;
    # daily bars keep 3 decimals)
    raw_root = demo_raw_root(root)
    sessions = pd.DatetimeIndex(sorted(ev["session"].unique()))
    prev = data.equity_daily_bar_reader.trading_calendar.previous_session(sessions[0])
    frames = []
    for day in [prev] + list(sessions):
        f = pd.read_csv(layout.day_file_path(raw_root, layout.DAY_DATASET, day))
        frames.append(f.assign(session=pd.Timestamp(day).normalize()))
    raw = pd.concat(frames).sort_values(["ticker", "session"])
    raw["prior"] = raw.groupby("ticker")["close"].shift(1)
    raw = raw.set_index(["session", "ticker"])
    check = ev[(ev["prior_close"] > 5)].set_index(["session", "symbol"])
    check = check[check.index.isin(raw.index)]
    assert len(check) > 500
    expected = raw.loc[check.index, "open"] / raw.loc[check.index, "prior"] - 1
    np.testing.assert_allclose(check["gap"].to_numpy(), expected.to_numpy(), atol=2e-4)


def test_cli_rejects_a_file_that_is_not_a_perf_frame(tmp_path):
    pd.DataFrame({"x": [1.0]}).to_pickle(tmp_path / "x.pickle")
    for args in (["tearsheet", str(tmp_path / "x.pickle"), "-o", str(tmp_path / "o")],
                 ["compare", str(tmp_path / "x.pickle"), "-o", str(tmp_path / "o")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "not a zipline perf frame" in result.output

"""factors/: plain functions on hand-built frames, compute() on hand arrays, bad parameters,
the reference loader on a hand table, and the zipline patch (no bundle needed)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from bundles import ingestions
from zipline.pipeline.data import EquityPricing
from zipline.pipeline.factors import SimpleMovingAverage
from factors import gap, loaders, screens
from factors.gap import (
    GAP_CLASSES,
    SHARES_CLASSES,
    AverageRange,
    DailyReturnsStdDev,
    ExponentialMovingAverage,
    RelativeVolume,
    SharesOutstandingClass,
    gap_class,
    gap_percent,
    gap_zscore,
    liquid_stocks,
    price_std,
    shares_outstanding_class,
)
from factors.reference import (
    CommonStock,
    PolygonReference,
    PolygonReferenceLoader,
    is_reference_column,
    read_reference_table,
)

TODAY = np.datetime64("2016-01-04")


def run_compute(term, *inputs):
    """Call ``term.compute`` the way zipline does for one day; returns the output row."""
    n = inputs[0].shape[1]
    out = np.empty(n, dtype=term.dtype)
    term.compute(TODAY, np.arange(n), out, *inputs, **term.params)
    return out


# ----------------------------------------------------------------------------- plain functions
def test_gap_zscore_on_frames():
    idx = pd.Index(["A", "B", "C", "D", "E"], name="asset")
    frame = pd.DataFrame({
        "open": [11.0, 9.5, 2.0, 5.0, np.nan],
        "prior_close": [10.0, 10.0, 0.0, 5.0, 3.0],
        "sigma": [0.02, 0.05, 0.1, 0.0, 0.1],
    }, index=idx)
    got = pd.DataFrame({"z": gap_zscore(frame["open"], frame["prior_close"], frame["sigma"]),
                        "pct": gap_percent(frame["open"], frame["prior_close"])})
    expected = pd.DataFrame({
        "z": [0.1 / 0.02, -0.05 / 0.05, np.nan, np.nan, np.nan],   # prior 0 / sigma 0 -> NaN
        "pct": [10.0, -5.0, np.nan, 0.0, np.nan],
    }, index=idx)
    assert_frame_equal(got, expected, rtol=1e-12)
    # DataFrames (dates x assets) broadcast the same way; scalars give scalars
    opens = pd.DataFrame({"A": [1.1, 0.9], "B": [2.0, 2.2]})
    prior = pd.DataFrame({"A": [1.0, 1.0], "B": [2.0, 2.0]})
    sigma = pd.DataFrame({"A": [0.05, 0.05], "B": [0.1, -1.0]})
    assert_frame_equal(gap_zscore(opens, prior, sigma),
                       pd.DataFrame({"A": [2.0, -2.0], "B": [0.0, np.nan]}), rtol=1e-12)
    assert gap_zscore(5.5, 5.0, 0.05) == pytest.approx(2.0)
    assert np.isnan(gap_zscore(5.5, 5.0, 0.0))
    np.testing.assert_allclose(gap_zscore(np.array([1.2, 0.8]), np.array([1.0, 1.0]), 0.1),
                               [2.0, -2.0])


def test_gap_class_bins_and_bounds():
    # the article's pd.cut bins (003_290001eae97eba9c.txt lines 13-15), closed on the right:
    # a value on a bound belongs to the class below it (2.0 is no gap, 5.0 a small gap up)
    pct = pd.Series([-25.0, -10.0, -9.99, -5.0, -4.0, -2.0, -1.99, 0.0, 1.99, 2.0, 2.01, 4.99,
                     5.0, 5.01, 9.99, 10.0, 10.01, 20.0, 20.01, np.nan], name="gap")
    expected = pd.Series(pd.Categorical(
        ["<=-10%", "<=-10%", "-10%..-5%", "-10%..-5%", "-5%..-2%", "-5%..-2%", "-2%..2%",
         "-2%..2%", "-2%..2%", "-2%..2%", "2%..5%", "2%..5%", "2%..5%", "5%..10%", "5%..10%",
         "5%..10%", "10%..20%", "10%..20%", ">20%", None],
        categories=list(GAP_CLASSES), ordered=True), name="gap")
    assert_series_equal(gap_class(pct), expected)
    cut = pd.cut(pct, bins=list(gap.GAP_CLASS_BINS), labels=list(GAP_CLASSES))
    assert_series_equal(gap_class(pct), cut)
    frame = pd.DataFrame({"AAA": [-12.0, 3.0], "BBB": [25.0, np.nan]}, index=["d1", "d2"])
    cat = pd.CategoricalDtype(list(GAP_CLASSES), ordered=True)
    assert_frame_equal(gap_class(frame), pd.DataFrame({
        "AAA": pd.Categorical(["<=-10%", "2%..5%"], dtype=cat),
        "BBB": pd.Categorical([">20%", None], dtype=cat)}, index=["d1", "d2"]))
    assert gap_class(7.5) == "5%..10%" and gap_class(np.nan) is None
    assert list(gap_class(np.array([-3.0, 30.0]))) == ["-5%..-2%", ">20%"]
    # classes of gap_percent: a 12% gap up from 10.00 to 11.20
    assert gap_class(gap_percent(11.2, 10.0)) == "10%..20%"


def test_shares_outstanding_class_bounds():
    shares = pd.DataFrame({"shares": [0.0, 9_999_999, 10e6, 24.9e6, 25e6, 49e6, 50e6, 99.9e6,
                                      100e6, 3e9, np.nan, -5.0]})
    got = shares.apply(shares_outstanding_class)
    cat = pd.CategoricalDtype(list(SHARES_CLASSES), ordered=True)
    expected = pd.DataFrame({"shares": pd.Categorical(
        ["micro", "micro", "low", "low", "medium", "medium", "large", "large",
         "institutional", "institutional", None, None], dtype=cat)})
    assert_frame_equal(got, expected)
    assert shares_outstanding_class(12e6) == "low"
    assert shares_outstanding_class(None) is None
    # the classifier's integer codes agree with the labels
    codes = run_compute(SharesOutstandingClass(), shares["shares"].to_numpy()[None, :])
    labels = [SHARES_CLASSES[c] if c >= 0 else None for c in codes]
    assert labels == list(expected["shares"].astype(object).where(expected["shares"].notna(), None))


# ----------------------------------------------------------------------------- compute()
def test_above_moving_average_compute():
    close = np.array([[10.0, 5.0, np.nan, 1.0],
                      [11.0, np.nan, np.nan, 1.0],
                      [12.0, 4.0, np.nan, np.nan]])
    # the screens' ``are_above_mavg = close.latest > SimpleMovingAverage(close, 3)``
    sma = run_compute(SimpleMovingAverage(inputs=[EquityPricing.close], window_length=3), close)
    with np.errstate(invalid="ignore"):
        out = close[-1] > sma
    # 12 > 11; 4 < 4.5; all NaN -> False; last close missing -> False
    assert out.tolist() == [True, False, False, False]


def test_daily_returns_std_compute_is_population_std_nan_aware():
    rng = np.random.default_rng(7)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.03, (100, 3)), axis=0))
    close[40, 1] = np.nan  # removes the two returns touching it
    close[:, 2] = np.nan
    close[50, 2] = 3.0
    close[51, 2] = 3.3  # a single return: below min_returns
    out = run_compute(DailyReturnsStdDev(), close)
    r0 = close[1:, 0] / close[:-1, 0] - 1
    r1 = pd.Series(close[:, 1]).pct_change(fill_method=None).dropna().to_numpy()
    assert len(r0) == 99 and len(r1) == 97
    np.testing.assert_allclose(out[:2], [np.std(r0), np.std(r1)], rtol=1e-12)
    assert np.isnan(out[2])


def test_exponential_moving_average_compute():
    from zipline.pipeline.factors import ExponentialWeightedMovingAverage

    rng = np.random.default_rng(3)
    data = rng.uniform(1, 2, (60, 3))
    data[10, 1] = np.nan
    data[:, 2] = np.nan
    ema = ExponentialMovingAverage.from_span(span=20, window_length=60)
    assert ema.params["decay_rate"] == pytest.approx(1 - 2 / 21)
    out = run_compute(ema, data)
    # no NaN: zipline's EWMA and pandas' ewm(span=20, adjust=True) over the same 60 values
    zipline_ewma = ExponentialWeightedMovingAverage.from_span(
        inputs=ema.inputs, window_length=60, span=20)
    zl = np.empty(3)
    zipline_ewma.compute(TODAY, np.arange(3), zl, data, **zipline_ewma.params)
    assert out[0] == pytest.approx(zl[0], rel=1e-12)
    assert out[0] == pytest.approx(pd.Series(data[:, 0]).ewm(span=20).mean().iloc[-1], rel=1e-12)
    # a NaN is skipped with its weight, where zipline's EWMA gives NaN
    assert np.isnan(zl[1])
    w = (1 - 2 / 21) ** np.arange(59, -1, -1)
    ok = ~np.isnan(data[:, 1])
    assert out[1] == pytest.approx(np.sum(w[ok] * data[ok, 1]) / np.sum(w[ok]), rel=1e-12)
    assert np.isnan(out[2])


def test_average_range_and_relative_volume_compute():
    # "Gap % and Float" line 21: ((high - low) / low).rolling(20).mean() -- over the low
    high = np.array([[11.0, 2.0], [12.0, np.nan], [10.5, 2.2]])
    low = np.array([[9.0, 1.0], [10.0, np.nan], [9.5, 2.0]])
    out = run_compute(AverageRange(window_length=3), high, low)
    np.testing.assert_allclose(out, [np.mean([2 / 9, 2 / 10, 1 / 9.5]), np.mean([1.0, 0.1])])
    # full_window=True: NaN unless every session of the window traded (rolling(3).mean())
    out = run_compute(AverageRange(window_length=3, full_window=True), high, low)
    assert out[0] == pytest.approx(np.mean([2 / 9, 2 / 10, 1 / 9.5])) and np.isnan(out[1])
    frame = pd.DataFrame({"high": high[:, 0], "low": low[:, 0]})
    article = ((frame["high"] - frame["low"]) / frame["low"]).rolling(3).mean().iloc[-1]
    assert out[0] == pytest.approx(article, rel=1e-12)
    volume = np.array([[100.0, 0.0, 5.0], [300.0, 0.0, 0.0], [200.0, 0.0, 0.0]])
    out = run_compute(RelativeVolume(window_length=3), volume)
    np.testing.assert_allclose(out[:1], [1.0])  # 200 / mean(100, 300, 200)
    assert np.isnan(out[1]) and out[2] == 0.0    # zero average -> NaN; no trade today -> 0


# ----------------------------------------------------------------------------- bad parameters
@pytest.mark.parametrize("build", [
    lambda: screens.buy_gap_pipeline(mavg_window=1),
    lambda: DailyReturnsStdDev(window_length=1),
    lambda: DailyReturnsStdDev(min_returns=0),
    lambda: AverageRange(window_length=1),
    lambda: RelativeVolume(window_length=1),
    lambda: ExponentialMovingAverage(window_length=1),
    lambda: ExponentialMovingAverage(decay_rate=0.0),
    lambda: ExponentialMovingAverage(decay_rate=1.0),
    lambda: ExponentialMovingAverage(decay_rate=1.5),
    lambda: ExponentialMovingAverage(decay_rate=-0.1),
    lambda: ExponentialMovingAverage.from_span(span=1),
    lambda: price_std(decay_rate=1.0),
    lambda: price_std(decay_rate=0.0),
    lambda: price_std(window_length=1),
    lambda: liquid_stocks(window_length=1),
    lambda: liquid_stocks(min_percentile=-1),
    lambda: liquid_stocks(max_percentile=101),
    lambda: liquid_stocks(min_percentile=90, max_percentile=90),
    lambda: liquid_stocks(min_percentile="90"),
    lambda: liquid_stocks(rank_within="everything"),
    lambda: screens.sell_gap_pipeline(min_price=10, max_price=5),
    lambda: screens.sell_gap_pipeline(std_decay=1.2),
    lambda: screens.sell_gap_pipeline(mavg_window=1),
    lambda: screens.microcap_short_pipeline(min_price=-1),
    lambda: screens.microcap_short_pipeline(ema_span=0.5),
    lambda: screens.gap_and_go_pipeline(window_length=1),
])
def test_bad_parameters_raise_at_construction(build):
    with pytest.raises(ValueError):
        build()


def test_good_parameters_construct():
    assert DailyReturnsStdDev().window_length == 100
    assert ExponentialMovingAverage(decay_rate=0.5, window_length=2).params["decay_rate"] == 0.5
    liquid_stocks(min_percentile=0, max_percentile=100, rank_within="all_assets")
    liquid_stocks(rank_within=CommonStock())


# ----------------------------------------------------------------------------- pipelines
def test_screens_columns_and_reused_zipline_terms():
    from zipline.pipeline.factors import (
        AverageDollarVolume,
        ExponentialWeightedMovingStdDev,
        SimpleMovingAverage,
    )

    sell = screens.sell_gap_pipeline()
    assert set(sell.columns) == {"prior_low", "std", "mavg", "close"}
    std = sell.columns["std"]
    assert type(std) is ExponentialWeightedMovingStdDev  # zipline's own, not a rewrite
    assert std.window_length == 63 and std.params["decay_rate"] == 0.99
    assert type(sell.columns["mavg"]) is SimpleMovingAverage
    assert sell.columns["mavg"].window_length == 20
    assert set(screens.buy_gap_pipeline().columns) == set(sell.columns)
    micro = screens.microcap_short_pipeline()
    assert {"prior_close", "sigma", "ema20"} <= set(micro.columns)
    assert micro.columns["sigma"].window_length == 100
    gng = screens.gap_and_go_pipeline()
    assert {"avg_range", "relative_volume", "shares_class", "shares_outstanding"} <= set(gng.columns)
    assert type(liquid_stocks().inputs[0]) is AverageDollarVolume
    assert liquid_stocks().inputs[0].window_length == 30


def test_liquidity_ranking_choices_differ_only_in_the_mask():
    within = liquid_stocks(rank_within="common_stock")
    across = liquid_stocks(rank_within="all_assets")
    assert within.mask is CommonStock() and across.mask is not CommonStock()
    assert within.inputs == across.inputs
    assert set(gap.LIQUIDITY_RANKING) == {"common_stock", "all_assets"}
    # the default is the 2020 post's reading: percentile_between(90, 100) without a mask
    assert gap.DEFAULT_LIQUIDITY_RANK == "all_assets"
    assert liquid_stocks() is across


# ----------------------------------------------------------------------------- reference data
def _table(tmp_path):
    side = tmp_path / "ingestion" / "gapline"
    side.mkdir(parents=True)
    pd.DataFrame({
        "sid": [0, 1, 2],
        "ticker": ["AAA", "ETFX", "OLD"],
        "type": pd.array(["CS", "ETF", None], dtype="string"),
        "primary_exchange": pd.array(["XNAS", None, "XNYS"], dtype="string"),
        "share_class_shares_outstanding": [12e6, np.nan, np.nan],
        "weighted_shares_outstanding": [11e6, 5e8, np.nan],
        "start_date": pd.to_datetime(["2016-01-04", "2016-01-04", "2016-01-04"]),
        "end_date": pd.to_datetime(["2016-01-29", "2016-01-29", "2016-01-08"]),
    }).to_parquet(side / "assets.parquet", index=False)
    return tmp_path / "ingestion"


def test_reference_table_and_loader_point_in_time(tmp_path):
    from zipline.pipeline.domain import US_EQUITIES

    folder = _table(tmp_path)
    table = read_reference_table(folder)
    # weighted when no share-class count; today's snapshot, never served (look-ahead)
    assert table.loc[1, "snapshot_shares_outstanding"] == 5e8
    assert table.loc[2, "security_type"] is None
    loader = PolygonReferenceLoader(folder)
    dates = pd.DatetimeIndex(["2016-01-04", "2016-01-05", "2016-01-08", "2016-01-11",
                              "2016-01-12", "2016-02-01"])
    cols = [PolygonReference.security_type, PolygonReference.primary_exchange,
            PolygonReference.shares_outstanding]
    out = loader.load_adjusted_array(US_EQUITIES, cols, dates, pd.Index([0, 1, 2, 99]), None)
    types = out[cols[0]].data.as_string_array()
    exch = out[cols[1]].data.as_string_array()
    shares = out[cols[2]].data
    # as-of = previous session: 01-04 sees 12-31 (before every start) -> missing;
    # OLD (end 01-08) is seen on 01-11 (as of 01-08) but not on 01-12; 02-01 sees 01-29
    assert types.tolist() == [
        ["", "", "", ""],
        ["CS", "ETF", "", ""],
        ["CS", "ETF", "", ""],
        ["CS", "ETF", "", ""],
        ["CS", "ETF", "", ""],
        ["CS", "ETF", "", ""],
    ]
    assert exch[:, 2].tolist() == ["", "XNYS", "XNYS", "XNYS", "", ""]
    # no reference_history.parquet (an old ingestion): counts unknown, the snapshot unused
    assert np.isnan(shares).all()
    with pytest.raises(ValueError, match="cannot load"):
        from zipline.pipeline.data import EquityPricing

        loader.load_adjusted_array(US_EQUITIES, [EquityPricing.close.specialize(US_EQUITIES)],
                                   dates, pd.Index([0]), None)


def test_reference_table_missing_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="polygon bundle"):
        read_reference_table(tmp_path)


def test_reference_columns_and_filters():
    from zipline.pipeline.data import EquityPricing
    from zipline.pipeline.domain import US_EQUITIES

    assert PolygonReference.security_type.missing_value == ""
    assert is_reference_column(PolygonReference.shares_outstanding)
    assert is_reference_column(PolygonReference.security_type.unspecialize())
    assert not is_reference_column(EquityPricing.close)
    assert not is_reference_column(EquityPricing.close.specialize(US_EQUITIES))
    assert CommonStock() is PolygonReference.security_type.latest.eq("CS")


# ----------------------------------------------------------------------------- the patch
def test_install_is_idempotent_and_reversible():
    from zipline.algorithm import TradingAlgorithm

    loaders.uninstall()
    original = TradingAlgorithm.init_engine
    try:
        assert loaders.install() is True
        patched = TradingAlgorithm.init_engine
        assert loaders.install() is False and TradingAlgorithm.init_engine is patched
        assert loaders.installed()
    finally:
        assert loaders.uninstall() is True
    assert TradingAlgorithm.init_engine is original and not loaders.installed()


def test_wrapped_lookup_falls_back_to_the_ingestion_side_table(tmp_path):
    from zipline.pipeline.data import EquityPricing
    from zipline.pipeline.domain import US_EQUITIES

    folder = _table(tmp_path)
    (folder / "assets-7.sqlite").touch()
    finder = SimpleNamespace(engine=SimpleNamespace(url=SimpleNamespace(
        database=str(folder / "assets-7.sqlite"))))
    pricing = object()

    def choose_loader(column):  # zipline's run_algo lookup, with no custom_loader
        if column.unspecialize() in EquityPricing.columns:
            return pricing
        raise ValueError(f"No PipelineLoader registered for column {column}.")

    get = loaders.wrap_get_loader(choose_loader, finder)
    assert get(EquityPricing.close.specialize(US_EQUITIES)) is pricing
    ref = get(PolygonReference.security_type)
    assert isinstance(ref, PolygonReferenceLoader)
    assert ref.table.loc[0, "security_type"] == "CS"
    assert get(PolygonReference.shares_outstanding) is ref  # cached per ingestion
    # an explicit custom loader for the column wins
    mine = object()
    get = loaders.wrap_get_loader(
        lambda c: mine if is_reference_column(c) else choose_loader(c), finder)
    assert get(PolygonReference.security_type) is mine
    # other unknown columns still fail the way zipline does
    from zipline.pipeline.data import Column, DataSet

    class Other(DataSet):
        x = Column(float)

    with pytest.raises(ValueError, match="No PipelineLoader"):
        loaders.wrap_get_loader(choose_loader, finder)(Other.x)
    with pytest.raises(ValueError, match="ingested bundle"):
        ingestions.ingestion_dir_of(SimpleNamespace(engine=None))

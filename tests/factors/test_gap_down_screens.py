"""The buy/sell-gap Pipelines (factors.screens) on hand-built universes, run by zipline's own
engine: which names pass each rule, worked out by hand.

Every asset's closes rise (or stay flat, or fall) linearly to a chosen last close; high =
close x 1.01, low = close x 0.99; volumes are constant, so each asset's 30-day dollar volume
ranks like ``price x volume``. The frames are served with zipline's ``DataFrameLoader``, which
does not lag: the row of session ``D`` is what the screen of ``D`` calls "latest" (the bundle's
loader adds the one-session lag; that is tested elsewhere).

Percentiles are numpy's (linear interpolation), as in ``percentile_between``: of ``n`` ranked
values the 90th percentile sits at position ``0.9 (n - 1)``, so the band [90, 100] keeps the
values strictly above that position: the top 3 of 30, the top 4 of 40, the top 3 of 28.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from zipline.pipeline.domain import US_EQUITIES
from zipline.pipeline.engine import SimplePipelineEngine
from zipline.pipeline.loaders.frame import DataFrameLoader

from factors import screens
from factors.reference import PolygonReferenceLoader, is_reference_column

SESSIONS = US_EQUITIES.sessions()
SESSIONS = SESSIONS[(SESSIONS >= "2024-01-02")][:90]
D = SESSIONS[-1]
SLOPE = 0.002  # per session, as a fraction of the last close


def _asset(sid, kind="CS", last=50.0, dollar_volume=1e6, trend=1):
    return dict(sid=sid, kind=kind, last=last, dollar_volume=dollar_volume, trend=trend)


def _closes(last, trend):
    """Closes ending exactly at ``last``: rising (trend 1), flat (0) or falling (-1)."""
    t = np.arange(len(SESSIONS)) - (len(SESSIONS) - 1)
    return last * (1.0 + trend * SLOPE * t)


def _run(tmp_path, assets, pipeline):
    """Run ``pipeline`` on session ``D`` over ``assets``; returns the output indexed by sid."""
    from sqlalchemy import create_engine
    from zipline.assets import AssetDBWriter, AssetFinder

    sids = [a["sid"] for a in assets]
    equities = pd.DataFrame({
        "symbol": [f"S{s}" for s in sids], "asset_name": [f"S{s}" for s in sids],
        "start_date": pd.Timestamp("2023-01-03"), "end_date": pd.Timestamp("2030-01-02"),
        "exchange": "NYSE"}, index=pd.Index(sids, name="sid"))
    exchanges = pd.DataFrame({"exchange": ["NYSE"], "canonical_name": ["NYSE"],
                              "country_code": ["US"]})
    path = tmp_path / f"assets-{len(list(tmp_path.glob('assets-*.sqlite')))}.sqlite"
    db = create_engine(f"sqlite:///{path}")
    AssetDBWriter(db).write(equities=equities, exchanges=exchanges)
    finder = AssetFinder(db)

    close = pd.DataFrame({a["sid"]: _closes(a["last"], a["trend"]) for a in assets},
                         index=SESSIONS)
    volume = pd.DataFrame({a["sid"]: a["dollar_volume"] / a["last"] for a in assets},
                          index=SESSIONS)
    frames = {"close": close, "open": close, "high": close * 1.01, "low": close * 0.99,
              "volume": volume}
    reference = pd.DataFrame({
        "security_type": [a["kind"] for a in assets], "primary_exchange": "XNYS",
        "shares_outstanding": np.nan, "start_date": pd.Timestamp("2023-01-03"),
        "end_date": pd.Timestamp("2030-01-02")}, index=pd.Index(sids, name="sid"))
    ref_loader = PolygonReferenceLoader(reference)
    loaders = {}

    def get_loader(column):
        if is_reference_column(column):
            return ref_loader
        if column not in loaders:  # one loader per column, asked for again and again
            loaders[column] = DataFrameLoader(column, frames[column.name])
        return loaders[column]

    engine = SimplePipelineEngine(get_loader, finder, default_domain=US_EQUITIES)
    out = engine.run_pipeline(pipeline, D, D)
    out.index = [a.sid for a in out.index.get_level_values(1)]
    return out


def _ranking_universe():
    """2 ETFs (most liquid), 3 liquid common stocks (ids 11-13), 25 illiquid ones."""
    etfs = [_asset(1, "ETF", 400.0, 10e9), _asset(2, "ETF", 300.0, 9e9)]
    liquid = [_asset(11, last=50.0, dollar_volume=8e9), _asset(12, last=60.0, dollar_volume=7e9),
              _asset(13, last=70.0, dollar_volume=6e9)]
    rest = [_asset(100 + i, last=30.0, dollar_volume=1e6 * (i + 1)) for i in range(25)]
    return etfs + liquid + rest


@pytest.mark.parametrize("build", [screens.sell_gap_pipeline, screens.buy_gap_pipeline])
def test_liquidity_ranked_across_all_assets_by_default(tmp_path, build):
    """The post: ``AverageDollarVolume(window_length=30).percentile_between(90, 100)`` with no
    mask (004 line 21). Of 30 assets the top decile is the top 3 -- the two ETFs and stock 11
    -- and the common-stock test then keeps stock 11 only."""
    out = _run(tmp_path, _ranking_universe(), build())
    assert sorted(out.index) == [11]


@pytest.mark.parametrize("build", [screens.sell_gap_pipeline, screens.buy_gap_pipeline])
def test_liquidity_ranked_within_common_stock_variant(tmp_path, build):
    """The 2024 code's reading: percentiles over the 28 common stocks only -> their top 3."""
    out = _run(tmp_path, _ranking_universe(), build(rank_within="common_stock"))
    assert sorted(out.index) == [11, 12, 13]


def _top4(lasts, trends=(1, 1, 1, 1)):
    """40 common stocks; ids 1-4 are the 4 most liquid (the top decile of 40)."""
    top = [_asset(i + 1, last=p, dollar_volume=1e9 * (5 - i), trend=tr)
           for i, (p, tr) in enumerate(zip(lasts, trends))]
    return top + [_asset(100 + i, last=30.0, dollar_volume=1e5 * (i + 1)) for i in range(36)]


def test_sell_gap_price_band_is_strict(tmp_path):
    """``close > 10`` and ``close < 2000`` (sell_gap/pipeline.py): 10.00 and 2000.00 fail."""
    universe = _top4([10.0, 10.01, 2000.0, 1999.99])
    assert sorted(_run(tmp_path, universe, screens.sell_gap_pipeline()).index) == [2, 4]


def test_buy_gap_has_no_price_band(tmp_path):
    """The post's buy-on-gap screen (004 lines 24-30) has no price test."""
    universe = _top4([10.0, 10.01, 2000.0, 1999.99])
    assert sorted(_run(tmp_path, universe, screens.buy_gap_pipeline()).index) == [1, 2, 3, 4]
    universe = _top4([0.5, 5.0, 2500.0, 50.0])
    assert sorted(_run(tmp_path, universe, screens.buy_gap_pipeline()).index) == [1, 2, 3, 4]


@pytest.mark.parametrize("build", [screens.sell_gap_pipeline, screens.buy_gap_pipeline])
def test_close_above_its_20_day_mean_is_strict(tmp_path, build):
    """``EquityPricing.close.latest > mavg`` (004 line 22): a flat close (= its mean) and a
    falling one fail; ``above_mavg=False`` drops the rule."""
    universe = _top4([50.0, 50.0, 50.0, 50.0], trends=(0, 1, -1, 1))
    assert sorted(_run(tmp_path, universe, build()).index) == [2, 4]
    assert sorted(_run(tmp_path, universe, build(above_mavg=False)).index) == [1, 2, 3, 4]


def test_columns_by_hand(tmp_path):
    """prior_low = the last low; mavg = the mean of the last 20 closes; std = zipline's
    exponentially weighted std of the last 63 closes (weights 0.99**age, bias-corrected)."""
    out = _run(tmp_path, _top4([50.0, 60.0, 70.0, 80.0]), screens.sell_gap_pipeline())
    assert sorted(out.index) == [1, 2, 3, 4]
    for sid, last in zip([1, 2, 3, 4], [50.0, 60.0, 70.0, 80.0]):
        row = out.loc[sid]
        assert row["close"] == pytest.approx(last, rel=1e-12)
        assert row["prior_low"] == pytest.approx(last * 0.99, rel=1e-12)
        # a straight line: the mean of its last 20 points is its value 9.5 sessions back
        assert row["mavg"] == pytest.approx(last * (1 - 9.5 * SLOPE), rel=1e-12)
        x = _closes(last, 1)[-63:]
        w = 0.99 ** np.arange(62, -1, -1)
        mean = np.sum(w * x) / np.sum(w)
        var = np.sum(w * (x - mean) ** 2) / np.sum(w)
        std = np.sqrt(var / (1 - np.sum(w ** 2) / np.sum(w) ** 2))
        assert row["std"] == pytest.approx(std, rel=1e-9)

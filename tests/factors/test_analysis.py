"""factors.analysis: alphalens' input frame against plain pandas on hand-built bars, and
against the raw daily bars of polygon-demo."""
from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from factors import analysis as fa


def _bars(seed=0, days=12, assets=("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-03-01", periods=days)
    closes = pd.DataFrame(rng.uniform(5, 50, (days, len(assets))), index=dates, columns=assets)
    opens = closes.shift(1) * (1 + rng.normal(0, 0.03, closes.shape))
    opens.iloc[0] = closes.iloc[0] * 0.99
    opens.iloc[3, 1] = np.nan                      # no opening print
    return opens, closes


def test_forward_returns_match_plain_loops():
    opens, closes = _bars()
    out = fa.forward_returns(opens, closes, periods=(1, 3), open_to_close=True)
    assert list(out.columns) == [fa.OPEN_TO_CLOSE, "1D", "3D"]
    dates = list(opens.index)
    for i, day in enumerate(dates):
        for asset in opens.columns:
            row = out.loc[(day, asset)]
            o = opens.at[day, asset]
            expect_oc = closes.at[day, asset] / o - 1
            assert row[fa.OPEN_TO_CLOSE] == pytest.approx(expect_oc, nan_ok=True)
            for k in (1, 3):
                later = opens.at[dates[i + k], asset] if i + k < len(dates) else np.nan
                assert row[f"{k}D"] == pytest.approx(later / o - 1, nan_ok=True)


def test_gap_factor_uses_each_rows_open_and_the_previous_close():
    opens, closes = _bars(1)
    spec = fa.resolve_factor("gap")
    index = pd.MultiIndex.from_product([opens.index[1:], opens.columns], names=["date", "asset"])
    pipe_out = pd.DataFrame({"close": 1.0}, index=index)    # only the universe matters
    values = fa.factor_frame(spec, pipe_out, opens, closes)
    for (day, asset), value in values.items():
        prev = opens.index[opens.index.get_loc(day) - 1]
        expected = opens.at[day, asset] / closes.at[prev, asset] - 1
        assert value == pytest.approx(expected, nan_ok=True)


def test_clean_factor_data_is_alphalens_frame_with_quantiles():
    opens, closes = _bars(2, days=30)
    spec = fa.resolve_factor("gap")
    index = pd.MultiIndex.from_product([opens.index[1:], opens.columns], names=["date", "asset"])
    values = fa.factor_frame(spec, pd.DataFrame({"close": 1.0}, index=index), opens, closes)
    returns = fa.forward_returns(opens, closes, periods=(1,), open_to_close=True)
    data = fa.clean_factor_data(values, returns, quantiles=3, max_loss=1.0,
                                calendar_index=opens.index)
    assert list(data.columns) == [fa.OPEN_TO_CLOSE, "1D", "factor", "factor_quantile"]
    kept = values.dropna().index.intersection(returns.dropna().index)
    assert data.index.equals(kept.sort_values())
    pd.testing.assert_series_equal(data["factor"], values.reindex(data.index),
                                   check_names=False)
    pd.testing.assert_frame_equal(data[[fa.OPEN_TO_CLOSE, "1D"]],
                                  returns.reindex(data.index), check_freq=False)
    # alphalens' quantiles: within each date, by factor rank
    for day, group in data.groupby(level="date"):
        expected = pd.qcut(group["factor"], 3, labels=False) + 1
        assert (group["factor_quantile"] == expected).all()
    assert data.index.levels[0].freq is not None


def test_unknown_factor_names_are_refused():
    with pytest.raises(ValueError, match="unknown factor"):
        fa.resolve_factor("nope")
    with pytest.raises(ValueError, match="no numeric column"):
        fa.resolve_factor("sell_gap.nope")
    assert "sell_gap.std" in fa.factor_names()


def _adjusted_sids(root) -> set:
    [db] = list((root / "data" / "polygon-demo").glob("*/adjustments.sqlite"))
    with sqlite3.connect(db) as con:
        return {r[0] for t in ("splits", "dividends") for r in con.execute(f"select sid from {t}")}


def test_factor_data_on_the_demo_bundle_matches_its_raw_bars(demo_root, demo_bundle):
    data = fa.factor_data("gap", "2024-10-01", "2024-10-15", bundle="polygon-demo",
                          periods=(1,), max_loss=1.0)
    assert list(data.columns[:2]) == [fa.OPEN_TO_CLOSE, "1D"]
    reader = demo_bundle.equity_daily_bar_reader
    sessions = pd.bdate_range("2024-09-30", "2024-10-16")
    skip = _adjusted_sids(demo_root)
    checked = 0
    for (day, asset), row in data.iterrows():
        if asset.sid in skip:
            continue
        o, c = (reader.get_value(asset.sid, day, f) for f in ("open", "close"))
        prev = sessions[sessions.get_loc(day) - 1]
        nxt = sessions[sessions.get_loc(day) + 1]
        assert row[fa.OPEN_TO_CLOSE] == pytest.approx(c / o - 1, rel=1e-9)
        assert row["factor"] == pytest.approx(o / reader.get_value(asset.sid, prev, "close") - 1,
                                              rel=1e-9)
        assert row["1D"] == pytest.approx(reader.get_value(asset.sid, nxt, "open") / o - 1,
                                          rel=1e-9)
        checked += 1
    assert checked > 100

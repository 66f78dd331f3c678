"""microcap_short's rules on hand-built candidates (``select_gap_ups``): the 09:25 price band,
the EMA and 2-sigma tests, the top-50 gaps, the 30-minute dollar-volume ranking, the
reference's sizing and the top 5 (every expected value worked out by hand here)."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from algorithms import microcap_short as M
from algorithms.execution import Bracket, Stop
from algorithms.params import module_params
from bundles.market import trading_calendar

BTS = pd.Timestamp("2024-12-03 13:45", tz="UTC")  # 08:45 ET, before_trading_start


class Cut:
    """An ExtendedHours stand-in serving the 09:25 cut and recording what was asked."""

    def __init__(self, frame):
        self.frame, self.asked = frame, []

    def premarket_cut(self, session, assets, now):
        self.asked.append((session, now))
        return self.frame.reindex(assets)


def context(cands, cut, value=1_000_000.0, **overrides):
    params = {**module_params(vars(M)), **{k.upper(): v for k, v in overrides.items()}}
    return SimpleNamespace(params=SimpleNamespace(**params), candidates=cands,
                           get_datetime=lambda: BTS, trading_calendar=trading_calendar(),
                           portfolio=SimpleNamespace(portfolio_value=value),
                           _gapline_extended_hours=Cut(cut))


def frames(rows):
    """rows: name -> (prior_close, sigma, ema20, last_0925, window_dollar_volume)."""
    idx = pd.Index(list(rows), dtype=object)
    cands = pd.DataFrame({"prior_close": [r[0] for r in rows.values()],
                          "sigma": [r[1] for r in rows.values()],
                          "ema20": [r[2] for r in rows.values()]}, index=idx)
    cut = pd.DataFrame({"last": [r[3] for r in rows.values()],
                        "window_dollar_volume": [r[4] for r in rows.values()]}, index=idx)
    return cands, cut


def select(rows, **kw):
    cands, cut = frames(rows)
    cands.index = [SimpleNamespace(sid=i, name=n) for i, n in enumerate(cands.index)]
    cut.index = cands.index
    ctx = context(cands, cut, **kw)
    out = M.select_gap_ups(ctx, None)
    return out.rename(index=lambda a: a.name), ctx


def test_price_band_is_on_the_0925_price_not_the_prior_close():
    got, _ = select({
        "IN": (0.08, 0.05, 0.05, 0.12, 1e5),    # prior 0.08, 09:25 price 0.12 > 0.10: in
        "FLOOR": (0.08, 0.05, 0.05, 0.10, 1e5),  # 0.10 is not > 0.10
        "CAP": (4.0, 0.05, 3.0, 5.00, 1e5),      # 5.00 <= 5.00: in
        "OVER": (4.0, 0.05, 3.0, 5.01, 1e5),     # above 5.00
    })
    assert set(got.index) == {"IN", "CAP"}


def test_ema_and_two_sigma_tests():
    got, _ = select({
        "OK": (1.00, 0.05, 1.05, 1.10, 1e5),      # gap 10% = 2.0 sigma, price >= ema
        "WEAK": (1.00, 0.05, 1.05, 1.09, 1e5),    # gap 9% = 1.8 sigma
        "BELOW_EMA": (1.00, 0.05, 1.20, 1.15, 1e5),
    })
    assert list(got.index) == ["OK"]
    assert got.loc["OK", "zscore"] == pytest.approx(2.0)


def test_no_window_volume_is_not_ranked_and_ranking_is_by_dollar_volume():
    got, _ = select({
        "A": (1.0, 0.01, 0.5, 1.5, 2e5),
        "B": (1.0, 0.01, 0.5, 1.5, 9e5),
        "C": (1.0, 0.01, 0.5, 1.5, np.nan),  # no bar in 08:55..09:24: dropped
    })
    assert list(got.index) == ["B", "A"]


def test_reference_sizing_over_all_ranked_names_then_top_5():
    rows = {f"N{i}": (1.0, 0.01, 0.5, 2.0, 1e6 - i) for i in range(7)}
    got, ctx = select(rows, max_positions=5)
    # 0.5 x 1,000,000 / 7 ranked names / $2.00 = 35,714.28 -> round -> 35,714 shares
    assert len(got) == 5 and (got["shares"] == 35_714).all()
    assert list(got.index) == ["N0", "N1", "N2", "N3", "N4"]
    session, now = ctx._gapline_extended_hours.asked[0]
    assert session == pd.Timestamp("2024-12-03") and now == BTS  # today's cut, asked at 08:45


def test_top_50_gaps_before_the_ranking():
    rows = {f"G{i:02d}": (1.0, 0.01, 0.5, 1.0 + 0.5 + i / 100, 1e6 - 1000 * i) for i in range(52)}
    rows["G00"] = (1.0, 0.01, 0.5, 1.40, 9e9)  # the smallest gap with the most dollar volume
    rows["G01"] = (1.0, 0.01, 0.5, 1.41, 8e9)
    got, _ = select(rows, max_positions=60)
    assert "G00" not in got.index and "G01" not in got.index and len(got) == 50


def test_stop_is_twenty_percent_over_each_fill_in_cents():
    assert (M.STOP_PCT, M.STOP_DECIMALS) == (0.20, 2)  # round(fill.FillPrice*1.2, 2)
    bracket = Bracket(stop_pct=M.STOP_PCT, decimals=M.STOP_DECIMALS)
    assert bracket.children(fill_price=1.2345, filled=-1000) == [(1000, Stop(1.48))]


def test_default_costs_are_realistic_and_runs_use_the_module_default(monkeypatch):
    # the reference's README names spread and borrow as its backtest's flaws: realistic by
    # default; runner.run without costs= runs the module's COSTS
    assert M.COSTS == "realistic"
    from algorithms import runner

    seen = {}
    monkeypatch.setattr(runner, "make_config", lambda preset, **kw: seen.setdefault("p", preset))
    monkeypatch.setattr(runner, "bundle_history", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("stop before zipline")))
    with pytest.raises(RuntimeError, match="stop before zipline"):
        runner.run("microcap_short", "2024-12-02", "2024-12-03")
    assert seen["p"] == "realistic"


def test_constants_are_the_references():
    assert (M.MIN_PRICE, M.MAX_PRICE, M.MIN_GAP_SIGMAS, M.TOP_GAPS, M.MAX_POSITIONS,
            M.SHORT_FRACTION, M.COVER_MINUTES_AFTER_OPEN) == (0.10, 5.00, 2.0, 50, 5, 0.5, 150)

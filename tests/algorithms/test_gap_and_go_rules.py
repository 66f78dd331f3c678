"""gap_and_go's rules on hand-built numbers: the Gap & Go article's score and RVOL
(``factors.gap``), the scanner (``screen_gaps``: each filter, unknown share counts), the
ranking, ``calculate_gap_position_size``, the buy stop's volume threshold and the variants.

"GG n" is line n of ../shared/references/001_77709d99fd9024e0.txt.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from algorithms import gap_and_go as G
from algorithms import params
from factors.gap_and_go import gap_and_go_score, gap_and_go_score_parts, premarket_rvol


def article(**overrides):
    """The module's parameters (variant applied, as ``initialize`` does), with overrides."""
    p = SimpleNamespace(**params.resolve_params(params.module_params(vars(G)), overrides,
                                                use_extension_args=False,
                                                bounds=G.PARAM_BOUNDS))
    return G.variant_params(p, overrides)


# ----------------------------------------------------------------------------- score and RVOL
def test_score_by_hand():
    # gap 36.9% -> 10, RVOL 646 -> 10, 13.85M shares -> 8, no catalyst -> 1, $31.51 -> 4
    assert gap_and_go_score(36.88, 646.0, 13.85e6, 31.51) == pytest.approx(
        10 * 0.25 + 10 * 0.30 + 8 * 0.20 + 1 * 0.15 + 4 * 0.10)   # 7.65
    # gap 24% -> 8, RVOL 7 -> 6, 20M -> 6, $12 -> 10: 2 + 1.8 + 1.2 + 0.15 + 1 = 6.15 < 7
    assert gap_and_go_score(24.0, 7.0, 20e6, 12.0) == pytest.approx(6.15)
    # the best score without a catalyst (GG 83's 7 is reachable, the author's 8 barely)
    assert gap_and_go_score(30.0, 20.0, 4e6, 10.0) == pytest.approx(8.65)
    assert gap_and_go_score(30.0, 20.0, 4e6, 10.0, catalyst="fda_approval") == \
        pytest.approx(10.0)


@pytest.mark.parametrize("column, values, scores", [
    # GG 128-135: >= 30: 10, >= 20: 8, >= 15: 6, else 4
    ("gap_size", dict(gap_pct=[30.0, 29.99, 20.0, 15.0, 14.99]), [10, 8, 8, 6, 4]),
    # GG 138-145: >= 20: 10, >= 10: 8, >= 5: 6, else 3
    ("volume", dict(rvol=[20.0, 19.9, 10.0, 5.0, 4.99]), [10, 8, 8, 6, 3]),
    # GG 148-155: < 5M: 10, < 15M: 8, < 30M: 6, else 3 (strict: exactly 5M is 8)
    ("float", dict(float_shares=[4_999_999, 5e6, 14_999_999, 15e6, 30e6]), [10, 8, 8, 6, 3]),
    # GG 166-171: 5..20: 10; 2..5 or 20..30: 7; else 4
    ("price_level", dict(price=[5.0, 20.0, 20.01, 30.0, 30.01, 2.0, 1.99]),
     [10, 10, 7, 7, 4, 7, 4]),
])
def test_each_score_bracket(column, values, scores):
    base = dict(gap_pct=12.0, rvol=3.0, float_shares=40e6, price=3.0)
    n = len(scores)
    args = {k: np.asarray(values.get(k, [v] * n), dtype=float) for k, v in base.items()}
    got = gap_and_go_score_parts(**args)[column]
    assert got.tolist() == scores


def test_catalyst_scores_and_default():
    parts = gap_and_go_score_parts([12.0] * 4, 3.0, 40e6, 3.0,
                                   catalyst=["buyout_rumor", "none", "unknown", None])
    assert parts["catalyst"].tolist() == [9, 1, 1, 1]   # GG 157-163: .get(catalyst, 1)
    assert G.CATALYST == "none"


def test_score_of_unknown_inputs_is_nan_and_pandas_in_pandas_out():
    idx = pd.Index(["A", "B"])
    got = gap_and_go_score(pd.Series([25.0, 25.0], idx), pd.Series([12.0, 12.0], idx),
                           pd.Series([8e6, np.nan], idx), pd.Series([10.0, 10.0], idx))
    assert isinstance(got, pd.Series) and list(got.index) == ["A", "B"]
    assert got["A"] == pytest.approx(8 * 0.25 + 8 * 0.3 + 8 * 0.2 + 0.15 + 10 * 0.1)
    assert np.isnan(got["B"])


def test_premarket_rvol_is_the_articles():
    # GG 119: pm_volume / (avg_volume * 0.1) -- 500,000 against a 100,000-share day is 50
    assert premarket_rvol(500_000, 100_000) == pytest.approx(50.0)
    assert premarket_rvol(10_000, 100_000) == pytest.approx(1.0)   # a normal pre-market
    got = premarket_rvol(pd.Series([1_000.0, 1_000.0]), pd.Series([0.0, np.nan]))
    assert got.isna().all()


# ----------------------------------------------------------------------------- the scanner
def morning(**columns):
    """One passing name (score 7.65), then the rows given by ``columns``' values."""
    good = dict(prior_close=10.0, pm_last=12.5, pm_high=13.0, pm_volume=600_000.0,
                avg_volume=150_000.0, shares_outstanding=12e6, pm_bars=100.0)
    rows = [good] + [dict(good, **{k: v}) for k, vs in columns.items() for v in vs]
    return pd.DataFrame(rows, index=[f"N{i}" for i in range(len(rows))])


def test_a_name_passing_every_rule():
    got = G.screen_gaps(morning(), article()).iloc[0]
    assert got["price"] == 12.5 and got["gap_pct"] == pytest.approx(25.0)
    assert got["rvol"] == pytest.approx(600_000 / 15_000)
    assert got["score"] == pytest.approx(8 * 0.25 + 10 * 0.3 + 8 * 0.2 + 0.15 + 10 * 0.1)
    assert got["passes"]


@pytest.mark.parametrize("column, values, passes, rule", [
    # GG 103: 1.00 <= current_price <= 50.00, current_price = the last pre-market price
    ("pm_last", [0.99, 1.0, 50.0, 50.01], [False, True, True, False], "price_ok"),
    # GG 104/116: (current - prev) / prev * 100 >= 10
    ("prior_close", [0.5, 11.3, 11.37], [True, True, False], "gap_ok"),
    # GG 105: premarket_volume >= 500,000
    ("pm_volume", [499_999.0, 500_000.0], [False, True], "pm_volume_ok"),
    # GG 106: float_shares <= 50M -- shares outstanding; unknown fails
    ("shares_outstanding", [50e6, 50e6 + 1, np.nan], [True, False, False], "shares_ok"),
    # GG 107: avg_volume_20d >= 100,000
    ("avg_volume", [99_999.0, 100_000.0], [False, True], "avg_volume_ok"),
])
def test_each_filter_of_the_scanner(column, values, passes, rule):
    got = G.screen_gaps(morning(**{column: values}), article()).iloc[1:]
    assert got[rule].tolist() == passes
    assert got["passes"].tolist() == [ok and s >= 7 for ok, s in zip(passes, got["score"])]


def test_unknown_share_count_fails_the_article_screen_and_passes_the_loose_one():
    table = morning(shares_outstanding=[np.nan])
    assert G.screen_gaps(table, article())["passes"].tolist() == [True, False]
    assert G.screen_gaps(table, article(variant="loose"))["passes"].tolist() == [True, True]
    # and the Pipeline prefilter is built the same way (see make_pipeline)
    assert article().REQUIRE_SHARES_OUTSTANDING and \
        not article(variant="loose").REQUIRE_SHARES_OUTSTANDING


def test_score_floor():
    # a 40M-share, $40 name with a 10.5% gap and RVOL 4: 4x.25 + 3x.3 + 3x.2 + .15 + 4x.1
    table = morning(shares_outstanding=[40e6])
    table.loc["N1", ["prior_close", "pm_last", "pm_high", "pm_volume", "avg_volume"]] = \
        [38.0, 41.99, 42.5, 600_000.0, 1_500_000.0]
    got = G.screen_gaps(table, article()).loc["N1"]
    assert got["score"] == pytest.approx(3.05) and not got["score_ok"] and not got["passes"]
    assert G.screen_gaps(table, article(min_score=0.0)).loc["N1", "passes"]  # 0: no floor


def test_no_premarket_trade_never_passes():
    table = morning(pm_last=[np.nan])
    table.loc["N1", ["pm_high", "pm_volume"]] = [np.nan, 0.0]
    assert not G.screen_gaps(table, article(variant="loose")).loc["N1", "passes"]


def names(*changes):
    """One row per dict of ``changes`` to the passing name of :func:`morning`."""
    good = morning().iloc[0].to_dict()
    return pd.DataFrame([dict(good, **c) for c in changes],
                        index=[f"N{i}" for i in range(len(changes))])


def test_rank_by_score_then_gap_then_sid_top_5():
    table = names(dict(sid=7), dict(sid=3),
                  dict(sid=2, shares_outstanding=4e6),   # < 5M shares: score 8.15
                  dict(sid=9, pm_last=13.5),             # 35% gap: score 8.25
                  dict(sid=5, pm_last=12.6), dict(sid=4, pm_last=12.6),
                  dict(sid=1, pm_last=12.6))             # 26% gaps: score 7.75 as N0, N1
    screened = G.screen_gaps(table, article())
    assert screened["passes"].all()
    ranked = G.rank_gaps(screened, article())
    # by score, then the larger gap, then sid; N1 and N0 (25%) are sixth and seventh: cut
    assert list(ranked.index) == ["N3", "N2", "N6", "N5", "N4"]
    assert list(G.rank_gaps(screened, article(top_n=2)).index) == ["N3", "N2"]
    # by gap first: the 26% gaps before N2's 25% (its better score only breaks the 25% tie)
    assert list(G.rank_gaps(screened, article(rank_by="gap")).index) == \
        ["N3", "N6", "N5", "N4", "N2"]


def test_rank_by_rvol():
    table = morning(pm_volume=[900_000.0, 700_000.0])
    table["sid"] = [1, 2, 3]
    ranked = G.rank_gaps(G.screen_gaps(table, article()), article(rank_by="rvol"))
    assert list(ranked.index) == ["N1", "N2", "N0"]


# ----------------------------------------------------------------------------- size and entry
def test_position_size_by_hand():
    # GG 350: 1% x ... 1.5% of $1M = $15,000 at risk; RVOL 15 > 10: x 1.25 -> $18,750 over
    # 10.01 - 9.70 = 0.31 a share = 60,483 shares, capped at 10% of $1M / 10.01 = 9,990
    assert G.position_size(1e6, 10.01, 9.70, 25.0, 15.0, 20e6) == 9_990
    # every multiplier at its low end: gap > 50 (0.5), RVOL < 2 (0.5), < 5M shares (0.75),
    # after 11:00 (0.75): $15,000 x 0.140625 = $2,109.375 / $2 = 1,054 shares
    assert G.position_size(1e6, 10.0, 8.0, 60.0, 1.5, 3e6, late=True) == 1_054
    # gap < 10 (1.25) and > 30M shares (1.25): $23,437.5 / $5 = 4,687 (cap 10,000)
    assert G.position_size(1e6, 10.0, 5.0, 8.0, 5.0, 40e6) == 4_687
    # gap > 30 (0.75), unknown RVOL and shares: multiplier 1
    assert G.position_size(1e6, 10.0, 5.0, 35.0, np.nan, np.nan) == 2_250
    # no risk per share: nothing (GG 390-392)
    assert G.position_size(1e6, 10.0, 10.0, 25.0, 15.0, 20e6) == 0
    assert G.position_size(1e6, 10.0, 10.5, 25.0, 15.0, 20e6) == 0


def test_volume_threshold_is_the_articles_strict_comparison():
    # GG 556: bar volume > 2 x average; whole shares: > 2000.8 is >= 2001
    assert G.confirm_volume(1_000.4, 2.0) == 2_001
    assert G.confirm_volume(1_000.0, 2.0) == 2_001   # > 2000, not >= 2000
    assert G.confirm_volume(float("nan"), 2.0) == 0.0  # unknown average: no condition


def test_trade_averages():
    p = article()
    t = G.Trade(entry_price=10.0, pm_bar_volume=500.0, daily_avg_volume=2e5)
    assert t.bar_average(p) == 500.0                 # no regular bar yet: pre-market bars
    t.volume, t.bars, t.pv = 3_000.0, 2, 31_000.0
    assert t.bar_average(p) == 1_500.0 and t.vwap == pytest.approx(31_000 / 3_000)
    assert t.bar_average(article(volume_average="daily")) == 2e5


# ----------------------------------------------------------------------------- variants
def test_variant_switch_sets_the_authors_setup():
    a = article(variant="author")
    assert (a.MIN_GAP_PCT, a.MIN_PM_VOLUME, a.MAX_SHARES_OUTSTANDING, a.MIN_PRICE,
            a.MAX_PRICE, a.MIN_RVOL, a.MIN_SCORE, a.TOP_N, a.ENTRY_DEADLINE_MINUTES) == \
        (12.0, 750_000, 40e6, 2.0, 40.0, 3.0, 8.0, 5, 90)
    p = article()
    assert (p.MIN_GAP_PCT, p.MIN_PM_VOLUME, p.MAX_SHARES_OUTSTANDING, p.MIN_PRICE, p.MAX_PRICE,
            p.MIN_RVOL, p.MIN_SCORE, p.TOP_N, p.MIN_AVG_VOLUME) == \
        (10.0, 500_000, 50e6, 1.0, 50.0, 0.0, 7.0, 5, 100_000.0)
    loose = article(variant="loose")
    assert (loose.MIN_PM_VOLUME, loose.MAX_SHARES_OUTSTANDING, loose.MIN_AVG_VOLUME,
            loose.MIN_SCORE, loose.SIZING, loose.ENTRY_DEADLINE_MINUTES) == \
        (50_000, 100e6, 0.0, 0.0, "fraction", 90)


def test_explicit_overrides_win_over_the_variant():
    a = article(variant="author", min_score=7.5, MIN_PRICE=1.0)
    assert a.MIN_SCORE == 7.5 and a.MIN_PRICE == 1.0 and a.MIN_GAP_PCT == 12.0


def test_the_author_screen_on_one_morning():
    table = names({}, dict(shares_outstanding=3e6, pm_last=13.0, pm_volume=800_000.0),
                  dict(shares_outstanding=3e6, pm_last=13.0, pm_volume=800_000.0,
                       prior_close=11.65))
    got = G.screen_gaps(table, article(variant="author"))
    # N0: 600,000 pre-market shares (< 750,000) and score 7.75 (< 8); N1: < 5M shares, a 30%
    # gap, RVOL 53: 8.65; N2: the same with an 11.6% gap (< 12%)
    assert got["score"].round(2).tolist() == [7.75, 8.65, 7.15]
    assert got["passes"].tolist() == [False, True, False]
    assert G.screen_gaps(table, article())["passes"].tolist() == [True, True, True]


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        article(variant="sideways")


def test_max_gross_is_stated_and_covers_top_n_full_positions():
    assert G.MAX_GROSS == pytest.approx(G.TOP_N * G.MAX_POSITION_PCT)
    assert G.LOOKBACK_SESSIONS == 20

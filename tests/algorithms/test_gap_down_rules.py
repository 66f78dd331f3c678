"""The intraday rules of sell_gap and buy_gap on hand-built candidate frames, and the constants
that carry QuantRocket's timing, size and universe (each quoted in the algorithm modules).

References: the post ``../shared/references/004_3c38ecd07eeb7bfa.txt`` (line numbers below)
and ``quantrocket-codeload/sell-gap``'s ``sell_gap/sell-gap.py`` (``find_down_gaps``).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from algorithms import buy_gap, params, sell_gap
from factors.reference import CommonStock


def _candidates(n=14):
    """Pipeline-like output: prior_low 100, std 1..n (sid k has std k), mavg 99."""
    sids = list(range(1, n + 1))
    return pd.DataFrame({"prior_low": 100.0, "std": np.arange(1.0, n + 1), "mavg": 99.0,
                         "close": 101.0}, index=pd.Index(sids))


# ----------------------------------------------------------------------------- sell gap
def test_sell_signal_is_strictly_below_prior_low_minus_std_and_mavg():
    """``gapped_down = today_opens < (prior_lows - stds)`` and ``are_below_mavg = today_opens
    < mavg`` (sell-gap.py): equality is no signal, a missing open is no signal."""
    c = _candidates(5)  # thresholds prior_low - std: 99, 98, 97, 96, 95; mavg 99
    opens = pd.Series({1: 98.99,    # < 99 and < mavg 99: short
                       2: 98.0,     # == 100 - 2: not below
                       3: 96.0,     # < 97, < 99: short
                       4: np.nan,   # no 09:30 bar
                       5: 94.0})    # < 95: short
    assert sell_gap.select_shorts(c, opens) == [5, 3, 1]  # largest std first
    c.loc[3, "mavg"] = 96.0  # open 96 == mavg: not below the average
    assert sell_gap.select_shorts(c, opens) == [5, 1]


def test_sell_keeps_the_top_10_by_std():
    """"Limit to the top 10 by std": ``sort_values("std", ascending=False).iloc[:10]``."""
    c = _candidates(14)
    opens = pd.Series(50.0, index=c.index)  # every name gaps far below prior_low - std
    assert sell_gap.select_shorts(c, opens) == list(range(14, 4, -1))
    assert sell_gap.select_shorts(c, opens, top_n=3) == [14, 13, 12]
    assert sell_gap.select_shorts(c.iloc[:0], opens) == []


def test_sell_gap_constants_are_the_codes():
    assert sell_gap.SIGNAL_MINUTE == 1       # market_open(minutes=1): the 09:30 bar's open
    assert sell_gap.ENTRY_MINUTE == 10       # "at 9:40, short stocks that gapped down"
    assert sell_gap.POSITION_VALUE == 50_000.0  # target_value_per_position = -50e3
    assert sell_gap.TOP_N == 10
    assert sell_gap.COSTS == "published"     # 3 bps, no commission
    assert sell_gap.LIQUIDITY_RANK == "all_assets"


# ----------------------------------------------------------------------------- buy gap
def test_buy_original_buys_every_gap_below_prior_low_minus_std():
    """The post's only rule: ``gapped_down = today_opens < (prior_lows - stds)`` (line 39),
    ``assets_to_buy = context.candidates[gapped_down]`` (line 41): no moving-average test on
    the open and no cap -- opens above and below the mean are both bought, all 14 of them."""
    c = _candidates(14)
    opens = pd.Series(50.0, index=c.index)
    opens[2] = 98.0   # == 100 - 2: no signal
    opens[3] = np.nan
    c.loc[4, "mavg"] = 40.0  # open 50 above the mean: still an original buy
    got = buy_gap.select_buys(c, opens)
    assert got == [1] + list(range(4, 15))  # the pipeline's order, every signal
    assert len(got) == 12 > buy_gap.TOP_N


def test_buy_revised_adds_open_above_mavg():
    """"also open above the moving average on the day of the down gap" (line 62): strictly
    above; the revised buys are a subset of the original ones."""
    c = _candidates(4)  # thresholds 99, 98, 97, 96
    c["mavg"] = [90.0, 97.0, 95.0, 96.5]
    opens = pd.Series({1: 95.0,    # < 99, > 90: revised buy
                       2: 97.0,    # < 98, == mavg 97: original only
                       3: 94.0,    # < 97, < mavg 95: original only
                       4: 95.0})   # < 96, < mavg 96.5: original only
    assert buy_gap.select_buys(c, opens, "original") == [1, 2, 3, 4]
    assert buy_gap.select_buys(c, opens, "revised") == [1]
    with pytest.raises(ValueError):
        buy_gap.select_buys(c, opens, "sideways")


def test_buy_top_n_is_an_opt_in_cap():
    c = _candidates(14)
    opens = pd.Series(50.0, index=c.index)
    assert buy_gap.select_buys(c, opens, top_n=0) == list(range(1, 15))
    assert buy_gap.select_buys(c, opens, top_n=10) == list(range(14, 4, -1))


def test_buy_gap_constants_are_the_posts():
    assert buy_gap.VARIANT == "original"
    assert buy_gap.TOP_N == 0                 # every signal
    assert buy_gap.SIGNAL_MINUTE == 1         # "1 minute after the open"
    assert buy_gap.POSITION_VALUE == 50_000.0  # not in the post: sell-gap's size
    assert buy_gap.LIQUIDITY_RANK == "all_assets"


# ----------------------------------------------------------------------------- universe
@pytest.mark.parametrize("module", [sell_gap, buy_gap])
def test_liquidity_rank_parameter_selects_the_pipeline(module):
    """``LIQUIDITY_RANK``: "all_assets" (the post: no mask) or "common_stock" (2024 code)."""
    from zipline.pipeline.filters.filter import PercentileFilter

    def percentile_filter(pipe):  # the screen is one NumExprFilter over named conditions
        return [t for t in pipe.screen.bindings.values() if isinstance(t, PercentileFilter)]

    default = module.make_pipeline()
    variant = module.make_pipeline(SimpleNamespace(LIQUIDITY_RANK="common_stock"))
    (across,), (within,) = percentile_filter(default), percentile_filter(variant)
    assert within.mask is CommonStock() and across.mask is not CommonStock()
    p = params.resolve_params(params.module_params(vars(module)),
                              {"liquidity_rank": "common_stock"}, use_extension_args=False,
                              bounds=module.PARAM_BOUNDS)
    assert p["LIQUIDITY_RANK"] == "common_stock"
    with pytest.raises(ValueError, match="liquidity_rank"):
        params.resolve_params(params.module_params(vars(module)), {"liquidity_rank": "cs"},
                              use_extension_args=False, bounds=module.PARAM_BOUNDS)

"""gap_and_go's rules as plain functions of frames and numbers: the article's scanner screen,
its ranking, ``calculate_gap_position_size`` and the breakout volume threshold
(``../shared/references/001_77709d99fd9024e0.txt``; the algorithm is
:mod:`algorithms.gap_and_go`, whose constants these functions read from ``p``)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from factors.gap_and_go import gap_and_go_score, premarket_rvol

#: ``risk_tolerance=0.015`` (GG 348; the author's ``'base_risk_pct': 0.015``, GG 628)
ARTICLE_RISK_PCT = 0.015
#: ``max_position_value = account_value * 0.10 # 10% max en small caps volátiles`` (GG 395)
ARTICLE_MAX_POSITION_PCT = 0.10


# ----------------------------------------------------------------------------- plain rules
def screen_gaps(table: pd.DataFrame, p) -> pd.DataFrame:
    """The article's scanner on one morning's numbers (pure; ``p`` holds the parameters).

    ``table`` (one row per asset): ``prior_close``, ``avg_volume`` (20-day average daily
    volume), ``shares_outstanding``, ``pm_last``, ``pm_high``, ``pm_volume`` (``pm_bars`` and
    ``sid`` optional). Returns it with ``price`` (= ``pm_last``, the scanner's
    ``current_price``), ``gap_pct``, ``rvol``, ``score`` and one boolean column per rule --
    ``price_ok``, ``gap_ok``, ``pm_volume_ok``, ``shares_ok``, ``avg_volume_ok``, ``rvol_ok``,
    ``score_ok`` -- and ``passes``, their conjunction. A missing number fails its rule (a
    name without a pre-market trade has no price); an unknown share count fails unless
    ``p.REQUIRE_SHARES_OUTSTANDING`` is false.
    """
    t = table.copy()
    prior = t["prior_close"].astype(float)
    price = t["pm_last"].astype(float)
    shares = t["shares_outstanding"].astype(float)
    avg_volume = t["avg_volume"].astype(float)
    pm_volume = t["pm_volume"].astype(float)
    t["price"] = price
    with np.errstate(invalid="ignore", divide="ignore"):
        t["gap_pct"] = ((price - prior) / prior * 100.0).where(prior > 0)   # GG 116
    t["rvol"] = premarket_rvol(pm_volume, avg_volume)                       # GG 119
    t["score"] = gap_and_go_score(t["gap_pct"], t["rvol"], shares, price, p.CATALYST)
    t["price_ok"] = (price >= p.MIN_PRICE) & (price <= p.MAX_PRICE)
    t["gap_ok"] = t["gap_pct"] >= p.MIN_GAP_PCT
    t["pm_volume_ok"] = pm_volume >= p.MIN_PM_VOLUME
    t["shares_ok"] = (shares <= p.MAX_SHARES_OUTSTANDING) | (
        shares.isna() & (not p.REQUIRE_SHARES_OUTSTANDING))
    t["avg_volume_ok"] = avg_volume >= p.MIN_AVG_VOLUME
    t["rvol_ok"] = (t["rvol"] >= p.MIN_RVOL) if p.MIN_RVOL > 0 else True
    t["score_ok"] = (t["score"] >= p.MIN_SCORE) if p.MIN_SCORE > 0 else True
    rules = ["price_ok", "gap_ok", "pm_volume_ok", "shares_ok", "avg_volume_ok", "rvol_ok",
             "score_ok"]
    t["passes"] = t[rules].all(axis=1) & t["pm_high"].astype(float).notna()
    return t


def rank_gaps(screened: pd.DataFrame, p) -> pd.DataFrame:
    """The passing rows, best first (``RANK_BY``, then the other quality columns, then sid;
    NaN last), at most ``TOP_N``."""
    keys = {"score": ["score", "gap_pct"], "rvol": ["rvol", "score"],
            "gap": ["gap_pct", "score"]}[p.RANK_BY]
    ok = screened[screened["passes"]]
    if "sid" not in ok:
        ok = ok.assign(sid=[int(getattr(a, "sid", a)) for a in ok.index])
    ranked = ok.sort_values(keys + ["sid"], ascending=[False] * len(keys) + [True],
                            na_position="last")
    return ranked.head(p.TOP_N)


def position_size(account_value, entry_price, stop_price, gap_pct, rvol, float_shares,
                  late=False, risk_pct=ARTICLE_RISK_PCT,
                  max_position_pct=ARTICLE_MAX_POSITION_PCT) -> int:
    """Shares to buy: the article's ``calculate_gap_position_size`` (GG 348-397).

    ``account_value x risk_pct`` (GG 350) x the product of four multipliers (GG 352-385):

    ========  ==============================================  ========
    factor    multiplier                                      lines
    ========  ==============================================  ========
    gap size  gap % > 50: 0.5; > 30: 0.75; < 10: 1.25; else 1  359-365
    volume    RVOL < 2: 0.5; > 10: 1.25; else 1                367-371
    float     < 5M shares: 0.75; > 30M: 1.25; else 1           373-377
    time      after 11:00 (``late``): 0.75; else 1             379-381
    ========  ==============================================  ========

    divided by the risk per share ``entry - stop`` (0 shares when it is not positive, GG
    390-392), truncated to whole shares, and capped at ``max_position_pct`` of the account
    at the entry price (GG 394-397). Missing RVOL or share count: multiplier 1 (a NaN
    comparison is false in the article's Python too).
    """
    base_risk = account_value * risk_pct
    gap_m = 0.5 if gap_pct > 50 else 0.75 if gap_pct > 30 else 1.25 if gap_pct < 10 else 1.0
    volume_m = 0.5 if rvol < 2 else 1.25 if rvol > 10 else 1.0
    float_m = 0.75 if float_shares < 5_000_000 else 1.25 if float_shares > 30_000_000 else 1.0
    time_m = 0.75 if late else 1.0
    final = 1.0
    for m in (gap_m, volume_m, float_m, time_m):
        final *= m
    adjusted_risk = base_risk * final
    risk_per_share = entry_price - stop_price
    if not risk_per_share > 0:
        return 0
    shares = int(adjusted_risk / risk_per_share)
    max_shares = int(account_value * max_position_pct / entry_price)
    return max(0, min(shares, max_shares))


def confirm_volume(average, factor):
    """The ``min_volume`` of the buy stop for "bar volume > factor x average" (GG 556, strict):
    volumes are whole shares, so ``volume > x`` is ``volume >= floor(x) + 1``. An unknown
    average (no bar traded yet and no pre-market bars) sets no volume condition."""
    if not math.isfinite(average) or average < 0:
        return 0.0
    return float(math.floor(factor * average) + 1)

"""The Gap & Go article's scanner arithmetic: pre-market RVOL and the weighted setup score
(``../shared/references/001_77709d99fd9024e0.txt``, ``calculate_gap_metrics`` and
``score_gap_setup``), as plain vectorised functions over scalars, arrays or Series."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .gap import _positive_or_nan


# ----------------------------------------------------------------------------- Gap & Go score
# The Gap & Go article (../shared/references/001_77709d99fd9024e0.txt), ``GapAndGoScanner``:
# ``calculate_gap_metrics`` (lines 109-122) and ``score_gap_setup`` (lines 123-185). Plain
# vectorised functions: the inputs are today's pre-market numbers, known only after the open.

#: "'rvol': pm_volume / (avg_volume * 0.1), # Assuming 10% of volume pre-market" (line 119)
GAP_AND_GO_PREMARKET_SHARE = 0.1
#: ``weights = {'gap_size': 0.25, 'volume': 0.30, 'float': 0.20, 'catalyst': 0.15,
#: 'price_level': 0.10}`` (lines 173-179)
GAP_AND_GO_WEIGHTS = {"gap_size": 0.25, "volume": 0.30, "float": 0.20, "catalyst": 0.15,
                      "price_level": 0.10}
#: ``catalyst_scores`` (lines 158-162); any other catalyst scores 1
#: (``catalyst_scores.get(catalyst, 1)``, line 163)
GAP_AND_GO_CATALYST_SCORES = {
    "fda_approval": 10, "buyout_rumor": 9, "major_contract": 8, "earnings_beat": 7,
    "analyst_upgrade": 6, "breakthrough": 6, "follow_through": 4, "technical": 3,
    "sympathy": 2, "none": 1,
}
#: the catalyst when none is known: ``data.get('catalyst', 'none')`` (line 157) -- score 1.
#: (The scanner's output shows ``data.get('catalyst', 'unknown')`` (line 91), which also
#: scores 1 through ``.get(catalyst, 1)``: both readings give the same score.)
GAP_AND_GO_DEFAULT_CATALYST = "none"


def premarket_rvol(premarket_volume, avg_volume, premarket_share=GAP_AND_GO_PREMARKET_SHARE):
    """The Gap & Go article's relative volume: ``pm_volume / (avg_volume x 0.1)``.

    ``avg_volume`` is the 20-day average daily volume (``avg_volume_20d``); the article
    assumes 10% of a day's volume trades pre-market (``001_77709d99fd9024e0.txt`` line 119),
    so RVOL 1 means a normal pre-market. Vectorised; NaN where ``avg_volume`` <= 0 or missing.
    """
    if isinstance(avg_volume, (pd.Series, pd.DataFrame)):
        expected = avg_volume.astype("float64") * premarket_share
    else:
        expected = np.asarray(avg_volume, dtype="float64") * premarket_share
    with np.errstate(invalid="ignore", divide="ignore"):
        return premarket_volume / _positive_or_nan(expected)


def _steps(x, bounds, scores, default, strict=False):
    """``scores[i]`` for the first ``x >= bounds[i]`` (``x < bounds[i]`` when ``strict``),
    else ``default``; NaN where ``x`` is NaN."""
    arr = np.asarray(x, dtype="float64")
    with np.errstate(invalid="ignore"):
        conditions = [(arr < b) if strict else (arr >= b) for b in bounds]
        out = np.select(conditions, scores, default=default).astype("float64")
    out[np.isnan(arr)] = np.nan
    return out


def gap_and_go_score_parts(gap_pct, rvol, float_shares, price,
                           catalyst=GAP_AND_GO_DEFAULT_CATALYST) -> pd.DataFrame:
    """The five scores of the article's ``score_gap_setup`` (``001_77709d99fd9024e0.txt``
    lines 123-171), one row per input value, columns ``gap_size, volume, float, catalyst,
    price_level``:

    ===========  ==========================================================  ===========
    score        rule                                                        lines
    ===========  ==========================================================  ===========
    gap_size     gap_pct >= 30: 10, >= 20: 8, >= 15: 6, else 4               127-135
    volume       rvol >= 20: 10, >= 10: 8, >= 5: 6, else 3                   137-145
    float        float < 5M: 10, < 15M: 8, < 30M: 6, else 3                  147-155
    catalyst     :data:`GAP_AND_GO_CATALYST_SCORES`, unknown names 1         157-163
    price_level  5 <= price <= 20: 10; 2 <= price < 5 or 20 < price <= 30:   165-171
                 7; else 4
    ===========  ==========================================================  ===========

    ``gap_pct`` in percent (:func:`gap_percent`), ``rvol`` from :func:`premarket_rvol`,
    ``float_shares`` a share count (gapline has shares outstanding, not the float). A NaN
    input gives NaN for its score. ``catalyst``: a name or a sequence of names.
    """
    index = next((x.index for x in (gap_pct, rvol, float_shares, price)
                  if isinstance(x, pd.Series)), None)
    gap = np.atleast_1d(np.asarray(gap_pct, dtype="float64"))
    n = len(gap)
    p = np.broadcast_to(np.asarray(price, dtype="float64"), (n,)).copy()
    if isinstance(catalyst, str) or catalyst is None:
        catalyst = [catalyst] * n
    cat = np.array([GAP_AND_GO_CATALYST_SCORES.get(c if c is not None else "none", 1)
                    for c in catalyst], dtype="float64")
    with np.errstate(invalid="ignore"):
        sweet_spot = (p >= 5) & (p <= 20)
        near = ((p >= 2) & (p < 5)) | ((p > 20) & (p <= 30))
        price_level = np.select([sweet_spot, near], [10.0, 7.0], default=4.0)
    price_level[np.isnan(p)] = np.nan
    parts = pd.DataFrame({
        "gap_size": _steps(gap, (30, 20, 15), (10, 8, 6), 4),
        "volume": _steps(np.broadcast_to(np.asarray(rvol, dtype="float64"), (n,)),
                         (20, 10, 5), (10, 8, 6), 3),
        "float": _steps(np.broadcast_to(np.asarray(float_shares, dtype="float64"), (n,)),
                        (5e6, 15e6, 30e6), (10, 8, 6), 3, strict=True),
        "catalyst": cat,
        "price_level": price_level,
    }, index=index)
    return parts


def gap_and_go_score(gap_pct, rvol, float_shares, price, catalyst=GAP_AND_GO_DEFAULT_CATALYST):
    """The article's weighted setup score (``total_score``, ``001_77709d99fd9024e0.txt`` line
    180): ``sum(scores[f] x weights[f])`` over :func:`gap_and_go_score_parts` with
    :data:`GAP_AND_GO_WEIGHTS`, added in the article's order (gap, volume, float, catalyst,
    price level) so the float sums equal the article's. The scanner keeps ``total_score >= 7``
    (line 83); the author's workflow ``score >= 8`` (line 647). With no known catalyst the
    best possible score is 8.65. Returns a Series for pandas input (NaN where any part is NaN),
    else an array (a float for scalars).
    """
    parts = gap_and_go_score_parts(gap_pct, rvol, float_shares, price, catalyst)
    total = np.zeros(len(parts))
    for name, weight in GAP_AND_GO_WEIGHTS.items():
        total = total + parts[name].to_numpy() * weight
    if any(isinstance(x, pd.Series) for x in (gap_pct, rvol, float_shares, price)):
        return pd.Series(total, index=parts.index, name="score")
    return total.item() if np.ndim(gap_pct) == 0 else total

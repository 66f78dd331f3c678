"""Walk-forward selection: choose on each in-sample window, trade the next out-of-sample one.

With ``--walk-forward 2M:1M`` the sweep runs every configuration on every one-month block of
the range (one task per block). Fold ``k`` takes the two blocks before block ``k`` as its
in-sample window, picks the configuration with the best ``--select`` statistic there, and
trades it on block ``k``; the out-of-sample blocks stitched together are the walk-forward
curve. Beside it: the *in-sample best*, the configuration that is best over the whole range
in hindsight, on the same out-of-sample sessions -- the gap between the two is what choosing
on the past costs.

Each block is its own backtest starting with the full capital; a block's daily returns are
fractions of the portfolio, so blocks are stitched by compounding their returns (for gapline's
intraday strategies, flat every night, that is the one long run up to the dollar size of
orders against a drifting portfolio value).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: ``--select`` statistics, all "higher is better" (max drawdown is negative)
SELECT = ("sharpe", "sortino", "annual_return", "calmar", "max_drawdown")


def score(returns: pd.Series, metric: str = "sharpe") -> float:
    """The ``metric`` of daily ``returns`` (empyrical, annualised); -inf when undefined so
    that it is never selected."""
    import empyrical as ep

    r = pd.Series(returns, dtype=float)
    if r.isna().any() or len(r) < 2:
        return -np.inf
    fn = {"sharpe": ep.sharpe_ratio, "sortino": ep.sortino_ratio,
          "annual_return": ep.annual_return, "calmar": ep.calmar_ratio,
          "max_drawdown": ep.max_drawdown}.get(metric)
    if fn is None:
        raise ValueError(f"--select {metric!r}: choose one of {', '.join(SELECT)}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = float(fn(r))
    return value if np.isfinite(value) else -np.inf


@dataclass
class WalkForwardResult:
    folds: pd.DataFrame            # one row per out-of-sample block
    oos_returns: pd.Series         # the chosen configurations, stitched
    in_sample_best: str            # best over the whole range, in hindsight
    best_returns: pd.Series        # the in-sample best on the same out-of-sample sessions
    summary: dict


def walk_forward(matrix: pd.DataFrame, blocks, in_sample_blocks: int,
                 metric: str = "sharpe") -> WalkForwardResult:
    """``matrix``: daily returns, sessions x configurations (NaN where a configuration's
    block failed); ``blocks``: the ``(first, last)`` sessions of each block; fold ``k`` selects
    on blocks ``k - in_sample_blocks .. k - 1`` and trades block ``k``."""
    if metric not in SELECT:
        raise ValueError(f"--select {metric!r}: choose one of {', '.join(SELECT)}")
    if len(blocks) <= in_sample_blocks:
        raise ValueError(f"walk-forward needs more than {in_sample_blocks} blocks of the "
                         f"out-of-sample span in the range, got {len(blocks)}: lengthen the "
                         f"range or shorten the spans")
    index = pd.DatetimeIndex(matrix.index)

    def rows(first, last):
        return matrix.loc[(index >= first) & (index <= last)]

    folds, pieces = [], []
    for k in range(in_sample_blocks, len(blocks)):
        is_first, is_last = blocks[k - in_sample_blocks][0], blocks[k - 1][1]
        oos_first, oos_last = blocks[k]
        ins = rows(is_first, is_last)
        scores = {c: score(ins[c], metric) for c in matrix.columns}
        chosen = max(scores, key=lambda c: scores[c])  # first of equals: grid order
        oos = rows(oos_first, oos_last)[chosen]
        pieces.append(oos)
        folds.append({"fold": k - in_sample_blocks + 1, "is_start": is_first.date(),
                      "is_end": is_last.date(), "oos_start": oos_first.date(),
                      "oos_end": oos_last.date(), "chosen": chosen,
                      f"is_{metric}": scores[chosen], f"oos_{metric}": score(oos, metric)})
    oos_returns = pd.concat(pieces).rename("walk_forward")
    full = {c: score(matrix[c], metric) for c in matrix.columns}
    best = max(full, key=lambda c: full[c])
    best_returns = matrix[best].reindex(oos_returns.index).rename("in_sample_best")
    summary = {"select": metric, "folds": len(folds), "in_sample_best": best,
               f"in_sample_best_{metric}_full_range": full[best],
               f"in_sample_best_{metric}_oos_sessions": score(best_returns, metric),
               f"walk_forward_{metric}": score(oos_returns, metric),
               "walk_forward_total_return": float((1 + oos_returns.fillna(0)).prod() - 1),
               "in_sample_best_total_return": float((1 + best_returns.fillna(0)).prod() - 1)}
    summary = {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
               for k, v in summary.items()}
    return WalkForwardResult(pd.DataFrame(folds), oos_returns, best, best_returns, summary)

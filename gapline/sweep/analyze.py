"""From task results to conclusions: one row per configuration, walk-forward, and how much of
the best configuration is selection luck (deflated Sharpe ratio, PBO).

Everything is per cost preset: presets are not alternatives to choose between (``realistic``
is the estimate of the truth), so the configurations tried are the parameter combinations.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.overfitting import deflated_sharpe_of, probability_of_backtest_overfitting
from analysis.tearsheet import perf_stats

from .grid import config_label
from .walkforward import walk_forward

#: CSCV sub-periods (S) and the fewest sessions each must hold for PBO to be reported
CSCV_SPLITS = 8
CSCV_MIN_SESSIONS = 5


def returns_matrix(store, tasks, preset) -> pd.DataFrame:
    """Daily returns of every configuration of ``preset``, its windows stitched (sessions x
    configuration label; NaN over the sessions of a window that failed)."""
    pieces = [(config_label(t.param_dict), t, store.returns(t.key))
              for t in sorted((t for t in tasks if t.costs == preset), key=lambda t: t.window)]
    found = [r.index for _, _, r in pieces if r is not None]
    sessions = found[0].append(found[1:]).unique().sort_values() if found else pd.DatetimeIndex([])
    columns = {}
    for label, task, r in pieces:
        if r is None:
            inside = sessions[(sessions >= pd.Timestamp(task.start)) &
                              (sessions <= pd.Timestamp(task.end))]
            r = pd.Series(np.nan, index=inside, dtype=float)
        columns.setdefault(label, []).append(r)
    frame = pd.DataFrame({label: pd.concat(parts).groupby(level=0).last()
                          for label, parts in columns.items()})
    return frame.sort_index()


def configs_table(results: pd.DataFrame, matrices: dict, params: list) -> pd.DataFrame:
    """One row per (preset, configuration): the parameters, full-range statistics of its
    stitched returns, fills and costs summed over windows, failed windows."""
    rows = []
    if results.empty:
        return pd.DataFrame()
    results = results.assign(label=results.apply(
        lambda r: config_label({p: r[p] for p in params}), axis=1))
    for (preset, label), group in results.groupby(["costs", "label"], sort=False):
        r = matrices[preset][label]
        stats = perf_stats(r.dropna()) if r.notna().sum() > 1 else {}
        first = group.iloc[0]
        rows.append({"costs": preset, "config": label, **{p: first[p] for p in params},
                     "annual_return": stats.get("annual_return", np.nan),
                     "sharpe": stats.get("sharpe_ratio", np.nan),
                     "sortino": stats.get("sortino_ratio", np.nan),
                     "max_drawdown": stats.get("max_drawdown", np.nan),
                     "fills": group["fills"].sum(min_count=1),
                     "costs_paid": group["costs_paid"].sum(min_count=1),
                     "windows": len(group), "failed": int(group["error"].notna().sum())})
    return pd.DataFrame(rows)


def overfitting(matrix: pd.DataFrame, splits: int = CSCV_SPLITS) -> dict:
    """Deflated Sharpe ratio of the best configuration and CSCV's PBO (when the sessions
    fill ``splits`` sub-periods of at least :data:`CSCV_MIN_SESSIONS`) of one preset."""
    complete = matrix.dropna(axis=1, how="any")  # configurations with every window
    out = {"configurations": int(matrix.shape[1]), "complete": int(complete.shape[1]),
           "sessions": int(len(complete))}
    try:
        dsr = deflated_sharpe_of(complete)
        out["deflated_sharpe"] = {**dsr.as_dict(), "best": dsr_best(complete)}
    except ValueError as exc:
        out["deflated_sharpe"] = {"note": str(exc)}
    need = splits * CSCV_MIN_SESSIONS
    if complete.shape[1] < 2 or len(complete) < need:
        out["pbo"] = {"note": f"PBO needs >= 2 configurations and >= {need} sessions "
                              f"({splits} CSCV sub-periods of {CSCV_MIN_SESSIONS}); have "
                              f"{complete.shape[1]} and {len(complete)}"}
    else:
        out["pbo"] = probability_of_backtest_overfitting(complete.to_numpy(), splits).as_dict()
    return out


def dsr_best(matrix: pd.DataFrame) -> str:
    srs = matrix.mean() / matrix.std(ddof=1)
    return str(srs.idxmax())


def analyze(spec, tasks, store, windows, results) -> dict:
    """``{"configs": frame, "presets": {preset: {matrix, overfitting, walk_forward}}}``."""
    from .grid import parse_walk_forward

    params = list(spec.grid)
    presets = {}
    matrices = {p: returns_matrix(store, tasks, p) for p in spec.costs}
    wf = parse_walk_forward(spec.walk_forward)
    for preset, matrix in matrices.items():
        entry = {"matrix": matrix, "overfitting": overfitting(matrix)}
        if wf is not None:
            try:
                entry["walk_forward"] = walk_forward(matrix, windows, wf.in_sample_blocks,
                                                     spec.select)
            except ValueError as exc:
                entry["walk_forward_note"] = str(exc)
        presets[preset] = entry
    return {"configs": configs_table(results, matrices, params), "presets": presets}

"""Several runs side by side: one statistics table and one cumulative-returns chart.

::

    from analysis.compare import compare_stats, plot_cumulative
    table = compare_stats({"published": perf_a, "realistic": perf_b})

The table has one row per run: the statistics of
:func:`analysis.tearsheet.perf_stats`, plus ``trades`` (FIFO round trips,
:func:`analysis.roundtrips.round_trips`), ``fills``, and the first and last
session. Runs over different date ranges are compared as they are (each on its own dates).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from .fills import run_labels, transactions_frame
from .roundtrips import round_trips
from .tearsheet import STATS, daily_returns, perf_stats


def unique_labels(names) -> list:
    """``names`` with duplicates suffixed ``-2``, ``-3``, ..."""
    seen, out = {}, []
    for n in names:
        n = str(n)
        if n in seen:
            seen[n] += 1
            out.append(f"{n}-{seen[n]}")
        else:
            seen[n] = 1
            out.append(n)
    return out


def compare_stats(perfs: Mapping[str, pd.DataFrame], benchmark: pd.Series | None = None,
                  labels: bool = False) -> pd.DataFrame:
    """One row per run (keys of ``perfs``); columns: statistic keys of
    :data:`~analysis.tearsheet.STATS` (their display labels with
    ``labels=True``), ``trades``, ``fills``, ``bundle``, ``data`` ("synthetic data" on
    ``polygon-demo``), ``costs`` (the preset), ``start``, ``end``."""
    rows = {}
    for name, perf in perfs.items():
        r = daily_returns(perf)
        row = perf_stats(r, benchmark).to_dict()
        row["trades"] = len(round_trips(perf))
        row["fills"] = len(transactions_frame(perf))
        row.update(run_labels(perf))
        row["start"] = r.index[0].date() if len(r) else None
        row["end"] = r.index[-1].date() if len(r) else None
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "run"
    if labels:
        table = table.rename(columns={k: v[0] for k, v in STATS.items()})
    return table


def cumulative_returns(perfs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Cumulative returns of each run (columns), on the union of their sessions."""
    return pd.DataFrame({name: (1.0 + daily_returns(p)).cumprod() - 1.0
                         for name, p in perfs.items()})


def plot_cumulative(perfs: Mapping[str, pd.DataFrame], title="Cumulative returns"):
    """Line chart of :func:`cumulative_returns` (percent). Returns the figure."""
    import matplotlib.pyplot as plt

    cum = cumulative_returns(perfs)
    fig, ax = plt.subplots(figsize=(12, 5))
    for name in cum.columns:
        s = cum[name].dropna()
        ax.plot(s.index, s.to_numpy() * 100.0, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("cumulative return (%)")
    ax.set_title(title)
    ax.legend(loc="best")
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


def write_compare(perfs: Mapping[str, pd.DataFrame], out_dir, benchmark=None):
    """Write ``compare.csv`` (the table) and ``cumulative_returns.png`` under ``out_dir``;
    returns ``(table, {name: path})``."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = compare_stats(perfs, benchmark)
    table.to_csv(out / "compare.csv")
    kinds = sorted({run_labels(p)["data"] for p in perfs.values()} - {"unknown"})
    fig = plot_cumulative(perfs, title="Cumulative returns" + (f" ({', '.join(kinds)})"
                                                              if kinds else ""))
    fig.savefig(out / "cumulative_returns.png", dpi=90)
    plt.close(fig)
    return table, {"table": out / "compare.csv", "figure": out / "cumulative_returns.png"}

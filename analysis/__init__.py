"""Results analysis: plain functions around one frame (alphalens style).

==========================  =================================================================
module                      what
==========================  =================================================================
:mod:`.tearsheet`           load a perf frame (pickle or CSV), empyrical statistics, pyfolio
                            tear sheets as PNG + one self-contained HTML page
:mod:`.roundtrips`          FIFO round trips from the fills of intraday runs; PnL by entry
                            minute, weekday, gap class, exit reason
:mod:`.compare`             several runs: one statistics table, one cumulative-returns chart
:mod:`.gapstats`            gap-fill probability, continuation and intraday path after gaps,
                            from a bundle's daily and minute bars
==========================  =================================================================

Command line: ``gapline tearsheet``, ``gapline compare``, ``gapline gaps``
(:mod:`bundles.cli`). Submodules import pyfolio/matplotlib lazily; nothing here picks a
matplotlib backend (the command line uses Agg, notebooks their inline backend).
"""
from .compare import compare_stats, cumulative_returns, plot_cumulative, write_compare
from .gapstats import (FILL_HORIZONS, gap_events, gap_fill_table, intraday_path, load_daily,
                       shares_table, study)
from .fills import orders_frame, transactions_frame
from .roundtrips import match_fifo, pnl_by, plot_round_trips, round_trips, trip_summary
from .perf_files import load_perf
from .tearsheet import (daily_returns, perf_stats, pyfolio_figures,
                        write_tearsheet)

__all__ = [
    "compare_stats", "cumulative_returns", "plot_cumulative", "write_compare",
    "FILL_HORIZONS", "gap_events", "gap_fill_table", "intraday_path", "load_daily",
    "shares_table", "study",
    "match_fifo", "orders_frame", "pnl_by", "plot_round_trips", "round_trips",
    "transactions_frame", "trip_summary",
    "daily_returns", "load_perf", "perf_stats", "pyfolio_figures", "write_tearsheet",
]

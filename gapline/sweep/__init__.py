"""``gapline sweep``: backtests over a parameter grid, cost presets and walk-forward windows
on a Dask cluster, resumable, with a report that says how much of the best result is luck.

Modules, one idea each: :mod:`.grid` (what is tried), :mod:`.tasks` (one backtest, its key,
what runs on a worker), :mod:`.store` (the sweep folder, resume), :mod:`.cluster` (Dask,
the extension on every worker, one ingestion for all), :mod:`.run` (the driver),
:mod:`.walkforward` (choose in sample, trade out of sample), :mod:`.analyze` (per
configuration, DSR, PBO) and :mod:`.report` (heat maps, HTML).
"""
from .cluster import ClusterError, check_ingestions, dashboard_link, start_client
from .grid import GridError, parse_grid, parse_list
from .run import SweepInterrupted, SweepOutcome, SweepSpec, run_sweep

__all__ = ["ClusterError", "GridError", "SweepInterrupted", "SweepOutcome", "SweepSpec",
           "check_ingestions", "dashboard_link", "parse_grid", "parse_list", "run_sweep",
           "start_client"]

"""Pipeline factors and filters for the gap screens.

- :mod:`factors.reference` -- ``PolygonReference`` DataSet (security type, primary exchange,
  shares outstanding -- point in time, not the float) and its loader over the bundle's
  ``gapline/assets.parquet`` and ``gapline/reference_history.parquet``; ``CommonStock()``.
- :mod:`factors.reference_history` -- the as-of join of dated reference values (the latest
  value dated strictly before the session) every reader uses.
- :mod:`factors.gap` -- factors/filters (``DailyReturnsStdDev``,
  ``ExponentialMovingAverage``, ``AverageRange``, ``RelativeVolume``,
  ``SharesOutstandingClass``, ``liquid_stocks``, ``price_std``) and plain functions for
  what needs today's open (``gap_percent``, ``gap_zscore``, ``gap_class``,
  ``shares_outstanding_class``).
- :mod:`factors.screens` -- one Pipeline per strategy.
- :mod:`factors.loaders` -- ``run_pipeline`` for research, ``install()`` for ``zipline run``.

Submodules import zipline; this package itself imports nothing.
"""

"""Pipeline factors and filters for the gap screens.

- :mod:`factors.reference` -- ``PolygonReference`` DataSet (security type, primary exchange,
  shares outstanding) and its loader over the bundle's ``gapline/assets.parquet``;
  ``CommonStock()``.
- :mod:`factors.gap` -- factors/filters (``DailyReturnsStdDev``,
  ``ExponentialMovingAverage``, ``AverageRange``, ``RelativeVolume``,
  ``SharesOutstandingClass``, ``liquid_stocks``, ``price_std``) and plain functions for
  what needs today's open (``gap_percent``, ``gap_zscore``, ``gap_class``,
  ``shares_outstanding_class``).
- :mod:`factors.screens` -- one Pipeline per strategy.
- :mod:`factors.loaders` -- ``run_pipeline`` for research, ``install()`` for ``zipline run``.

Submodules import zipline; this package itself imports nothing.
"""

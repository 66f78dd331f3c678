"""Wire :class:`~factors.reference.PolygonReference` into zipline: research and backtests.

Research
--------
:func:`run_pipeline` runs a Pipeline over an ingested bundle with every loader wired
(zipline's ``USEquityPricingLoader`` for prices, :class:`~factors.reference.
PolygonReferenceLoader` for the reference columns) and returns the usual frame indexed by
(date, asset)::

    from factors.loaders import run_pipeline
    from factors.screens import sell_gap_pipeline
    out = run_pipeline(sell_gap_pipeline(), "2016-01-04", "2016-06-30", bundle="polygon")

Backtests (``zipline run``)
---------------------------
zipline's ``run`` builds its own loader lookup (``choose_loader`` inside
``zipline.utils.run_algo._run``) that knows only ``EquityPricing`` and a ``custom_loader``
that the CLI always leaves empty. :func:`install` patches one place,
``TradingAlgorithm.init_engine``: the loader lookup handed to every ``TradingAlgorithm`` is
wrapped so that a :class:`PolygonReference` column, when the original lookup has no loader
for it, is served from the ingestion the algorithm is running on. That ingestion is the
folder of the algorithm's asset database (``<ZIPLINE_ROOT>/data/<bundle>/<timestamp>/
assets-N.sqlite``): the same folder ``bundles.load`` chose with ``most_recent_data``, so a
``--bundle-timestamp`` is honoured. Patching the class (rather than ``run_algo._run``, which
``zipline.__main__`` imported by value before any extension runs) covers ``zipline run``,
``zipline.run_algorithm`` and direct ``TradingAlgorithm`` use alike.

Call :func:`install` from the zipline extension (``extension.py``); it is idempotent.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd

from bundles.ingestions import ensure_registered, ingestion_dir_of

from .reference import PolygonReferenceLoader, is_reference_column

_lock = threading.Lock()
_reference_loaders: dict[Path, PolygonReferenceLoader] = {}


def reference_loader(folder) -> PolygonReferenceLoader:
    """A (cached) :class:`PolygonReferenceLoader` for the ingestion ``folder``."""
    folder = Path(folder).resolve()
    with _lock:
        loader = _reference_loaders.get(folder)
        if loader is None:
            loader = _reference_loaders[folder] = PolygonReferenceLoader(folder)
        return loader


# ----------------------------------------------------------------------------- loader lookup
def pipeline_loader(bundle_data, folder, custom_loader=None):
    """``get_loader(column)`` for a SimplePipelineEngine over ``bundle_data``.

    ``EquityPricing`` columns -> ``USEquityPricingLoader`` (raw bars + the bundle's
    adjustments), ``PolygonReference`` columns -> the side table in ``folder``, anything
    else -> ``custom_loader[column]`` (a mapping, like ``run_algorithm(custom_loader=...)``).
    """
    from zipline.pipeline.data import EquityPricing
    from zipline.pipeline.loaders import USEquityPricingLoader

    pricing = USEquityPricingLoader.without_fx(bundle_data.equity_daily_bar_reader,
                                               bundle_data.adjustment_reader)
    custom_loader = custom_loader or {}

    def get_loader(column):
        if column.unspecialize() in EquityPricing.columns:
            return pricing
        if column in custom_loader:
            return custom_loader[column]
        if is_reference_column(column):
            return reference_loader(folder)
        raise ValueError(f"No PipelineLoader registered for column {column}.")

    return get_loader


def pipeline_engine(bundle="polygon", environ=None, bundle_timestamp=None, custom_loader=None):
    """A ``SimplePipelineEngine`` (domain US_EQUITIES) over the bundle's newest ingestion."""
    from zipline.data import bundles as zb
    from zipline.pipeline.domain import US_EQUITIES
    from zipline.pipeline.engine import SimplePipelineEngine

    environ = os.environ if environ is None else environ
    ensure_registered(bundle)
    timestamp = pd.Timestamp.utcnow() if bundle_timestamp is None else pd.Timestamp(bundle_timestamp)
    bundle_data = zb.load(bundle, environ, timestamp)
    folder = ingestion_dir_of(bundle_data.asset_finder)  # the ingestion zb.load picked
    return SimplePipelineEngine(pipeline_loader(bundle_data, folder, custom_loader),
                                bundle_data.asset_finder, default_domain=US_EQUITIES)


def run_pipeline(pipeline, start, end, bundle="polygon", environ=None, bundle_timestamp=None,
                 chunksize=None, custom_loader=None, engine=None):
    """Run ``pipeline`` for sessions ``start``..``end`` over an ingested bundle.

    Parameters
    ----------
    pipeline : zipline.pipeline.Pipeline
    start, end : date-like
        First and last session of the output (the row for ``D`` uses data through ``D-1``).
    bundle : str
        Registered bundle name (``polygon``; registered on demand if not yet).
    environ : mapping, optional
        Environment used to find ``ZIPLINE_ROOT`` (default ``os.environ``).
    bundle_timestamp : datetime, optional
        Use the newest ingestion at or before this time (default: now).
    chunksize : int, optional
        Run in chunks of this many sessions (``run_chunked_pipeline``) to bound memory.
    custom_loader : mapping, optional
        Extra ``{column: loader}`` for other DataSets.
    engine : SimplePipelineEngine, optional
        Reuse an engine from :func:`pipeline_engine` (skips reopening the bundle).

    Returns
    -------
    pandas.DataFrame
        Indexed by (date, asset), one column per pipeline column.
    """
    if engine is None:
        engine = pipeline_engine(bundle, environ, bundle_timestamp, custom_loader)
    start = pd.Timestamp(start).tz_localize(None) if pd.Timestamp(start).tzinfo else pd.Timestamp(start)
    end = pd.Timestamp(end).tz_localize(None) if pd.Timestamp(end).tzinfo else pd.Timestamp(end)
    if chunksize:
        return engine.run_chunked_pipeline(pipeline, start, end, chunksize)
    return engine.run_pipeline(pipeline, start, end)


# ----------------------------------------------------------------------------- the patch
def wrap_get_loader(get_loader, asset_finder):
    """Fall back to the reference side table for PolygonReference columns."""
    def get_loader_with_reference(column):
        if is_reference_column(column):
            try:
                return get_loader(column)  # an explicit custom_loader wins
            except (KeyError, ValueError):
                return reference_loader(ingestion_dir_of(asset_finder))
        return get_loader(column)

    get_loader_with_reference.__wrapped__ = get_loader
    return get_loader_with_reference


def install():
    """Make ``zipline run`` / ``run_algorithm`` resolve :class:`PolygonReference` columns.

    Wraps every algorithm's pipeline-loader lookup with :func:`wrap_get_loader`; the patch
    itself lives with gapline's other zipline patches (:mod:`bundles.zipline_patches`).
    Idempotent: returns True when it patched, False when already installed.
    """
    from bundles import zipline_patches

    return zipline_patches.install_engine_loader_wrapper(wrap_get_loader)


def uninstall():
    """Undo :func:`install` (for tests). Returns True when something was removed."""
    from bundles import zipline_patches

    return zipline_patches.uninstall_engine_loader_wrapper()


def installed() -> bool:
    from bundles import zipline_patches

    return zipline_patches.engine_loader_wrapper_installed()


def run_algorithm(*args, **kwargs):
    """``zipline.run_algorithm`` with :func:`install` applied first (same arguments)."""
    from zipline import run_algorithm as _run_algorithm

    install()
    return _run_algorithm(*args, **kwargs)

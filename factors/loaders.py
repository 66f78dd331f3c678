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

from .reference import PolygonReferenceLoader, is_reference_column

_lock = threading.Lock()
_reference_loaders: dict[Path, PolygonReferenceLoader] = {}


# ----------------------------------------------------------------------------- locating data
def ingestion_dir(bundle="polygon", timestamp=None, environ=None) -> Path:
    """The ingestion folder zipline loads for ``bundle`` at ``timestamp`` (default: now).

    The folder holding ``assets-N.sqlite``, ``daily_equities.bcolz`` and ``gapline/``: the
    newest ``zipline.utils.paths.data_path([bundle, <ingestion>])`` not after ``timestamp``,
    the rule of zipline's ``most_recent_data`` (which zipline does not export).
    """
    from zipline.data.bundles import from_bundle_ingest_dirname
    from zipline.utils.paths import data_path, hidden

    environ = os.environ if environ is None else environ
    _ensure_registered(bundle)
    cutoff = pd.Timestamp.utcnow() if timestamp is None else pd.Timestamp(timestamp)
    if cutoff.tzinfo is not None:
        cutoff = cutoff.tz_convert("UTC").tz_localize(None)
    base = Path(data_path([bundle], environ=environ))
    try:
        names = [n for n in os.listdir(base) if not hidden(n)]
    except FileNotFoundError:
        names = []
    stamps = {}
    for n in names:
        stamp = from_bundle_ingest_dirname(n)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        if stamp <= cutoff:
            stamps[n] = stamp
    if not stamps:
        raise ValueError(f"no data for bundle {bundle!r} on or before {cutoff} under {base}; "
                         f"run: zipline ingest -b {bundle}")
    return base / max(stamps, key=stamps.get)


def ingestion_dir_of(asset_finder) -> Path:
    """The ingestion folder an ``AssetFinder`` was opened from (its sqlite file's folder)."""
    engine = getattr(asset_finder, "engine", None)
    database = getattr(getattr(engine, "url", None), "database", None)
    if not database or database == ":memory:":
        raise ValueError(
            "PolygonReference columns need an asset finder opened from an ingested bundle "
            f"(got {engine!r}); use factors.loaders.run_pipeline or a bundle-backed algorithm")
    return Path(database).resolve().parent


def reference_loader(folder) -> PolygonReferenceLoader:
    """A (cached) :class:`PolygonReferenceLoader` for the ingestion ``folder``."""
    folder = Path(folder).resolve()
    with _lock:
        loader = _reference_loaders.get(folder)
        if loader is None:
            loader = _reference_loaders[folder] = PolygonReferenceLoader(folder)
        return loader


def _ensure_registered(bundle):
    from zipline.data import bundles as zb

    if bundle in zb.bundles:
        return
    if bundle in ("polygon", "polygon-demo"):
        try:
            from bundles.register import register_all

            register_all()
        except Exception as exc:  # noqa: BLE001 -- report why, below
            raise ValueError(f"bundle {bundle!r} is not registered and registering gapline's "
                             f"bundles failed: {exc!r}") from exc
        if bundle in zb.bundles:
            return
    raise ValueError(f"bundle {bundle!r} is not registered in this process; load its zipline "
                     f"extension first (known: {sorted(zb.bundles)})")


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
    _ensure_registered(bundle)
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
def _wrap_get_loader(get_loader, asset_finder):
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

    Wraps every algorithm's pipeline-loader lookup with :func:`_wrap_get_loader`; the patch
    itself lives with gapline's other zipline patches (:mod:`bundles.zipline_patches`).
    Idempotent: returns True when it patched, False when already installed.
    """
    from bundles import zipline_patches

    return zipline_patches.install_engine_loader_wrapper(_wrap_get_loader)


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

"""The ingest driver: phases in order, each handed what the previous ones returned.

:func:`ingest_polygon` runs one ingest; :func:`make_ingest` wraps it as a zipline ingest
function (cleaning up after a failure); :func:`build_bundle` registers, ingests and loads a
bundle programmatically.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pandas as pd

from ..ingestions import REPORT_FILE, side_dir
from ..market import CALENDAR, MINUTES_PER_DAY
from .adjustments import write_adjustments
from .assets import write_assets
from .config import PolygonBundleConfig
from .daily import write_daily
from .days import read_days
from .minutes import write_minutes
from .reference import Universe, load_reference_assets
from .report import IngestReport, write_report
from .side_tables import write_side_tables
from .sids import assign_sids

log = logging.getLogger(__name__)


def ingest_polygon(config: PolygonBundleConfig, asset_db_writer, minute_bar_writer,
                   daily_bar_writer, adjustment_writer, calendar, start_session, end_session,
                   show_progress, output_dir):
    """Run one ingest (see :mod:`bundles.polygon`); returns the ingest report dict."""
    start_session, end_session = pd.Timestamp(start_session), pd.Timestamp(end_session)
    show = show_progress
    r = IngestReport()
    reference = load_reference_assets(config.root, config.bad_rows, r)
    universe = Universe.of(config, reference)
    tmpdir = Path(tempfile.mkdtemp(prefix="gapline-ingest-"))
    timings = r.seconds
    try:
        with _timed(timings, "read_day_files"):
            days = read_days(config, universe, calendar, start_session, end_session, tmpdir, r,
                             show)
        with _timed(timings, "assign_sids"):
            sids = assign_sids(days.daily, reference)
        with _timed(timings, "write_minute_bars"):
            ratios = write_minutes(minute_bar_writer, calendar, days.bucket_files,
                                   days.id_tickers, sids, r, show)
        with _timed(timings, "write_assets"):
            assets = write_assets(asset_db_writer, sids.assets, ratios, calendar.name)
        with _timed(timings, "write_daily_bars"):
            # before adjustments: dividend ratios use closes
            write_daily(daily_bar_writer, days.daily, sids, calendar, start_session,
                        end_session, r, show)
        with _timed(timings, "write_adjustments"):
            n_splits, n_dividends = write_adjustments(adjustment_writer, config.root, sids,
                                                         config.bad_rows, r)
        r.auction_rows = write_side_tables(output_dir, assets, days.extended, days.auctions,
                                           sids)
        report = write_report(output_dir, r, config, days.daily_source, start_session,
                              end_session, assets, n_splits, n_dividends)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    log.info("ingested %d assets (%d with minute bars), %d minute rows, %d splits, %d dividends; "
             "report: %s", report["assets"], report["assets_with_minute_bars"],
             r.minute_rows_written, n_splits, n_dividends, side_dir(output_dir) / REPORT_FILE)
    for msg in r.unstorable_values[:5] + r.low_precision_daily + r.notes:
        log.warning(msg)
    if r.skipped_rows:
        log.warning("%d bad row(s) skipped, e.g. %s", r.file_counts.get("bad_rows", 0),
                    r.skipped_rows[0])
    return report


@contextlib.contextmanager
def _timed(timings: dict, phase: str):
    start = time.perf_counter()
    yield
    timings[phase] = round(time.perf_counter() - start, 3)
    log.info("%s: %.1fs", phase, timings[phase])


@contextlib.contextmanager
def _sigterm_as_exception():
    """Turn SIGTERM into an exception so the cleanup below runs (main thread only)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"received signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def make_ingest(config_factory):
    """A zipline ingest function; ``config_factory(environ)`` builds the config at ingest time.

    The ingestion folder is removed when anything fails (zipline creates it before calling
    us, and would otherwise load the empty folder as the newest ingestion).
    """
    from ..zipline_patches import install_fast_commit

    install_fast_commit()

    def ingest(environ, asset_db_writer, minute_bar_writer, daily_bar_writer,
               adjustment_writer, calendar, start_session, end_session, cache,
               show_progress, output_dir):
        try:
            with _sigterm_as_exception():
                config = config_factory(environ)
                ingest_polygon(config, asset_db_writer, minute_bar_writer, daily_bar_writer,
                               adjustment_writer, calendar, start_session, end_session,
                               show_progress, output_dir)
        except BaseException:
            shutil.rmtree(output_dir, ignore_errors=True)
            log.error("ingest failed; removed %s so the previous ingestion stays in use",
                      output_dir)
            raise
    return ingest


def build_bundle(name: str, config: PolygonBundleConfig, zipline_root, show_progress=False,
                 calendar_name=CALENDAR):
    """Register ``name`` for ``config``, ingest it into ``zipline_root`` and load it.

    The programmatic path used by tests, benchmarks and notebooks: exactly what
    ``zipline ingest -b <name>`` does, with an explicit ``ZIPLINE_ROOT``.
    Returns zipline's ``BundleData``.
    """
    from zipline.data import bundles as zb

    start, end = config.resolved_range()
    if start is None:
        raise FileNotFoundError(f"no Polygon day files under {config.root}")
    environ = dict(os.environ, ZIPLINE_ROOT=str(zipline_root))
    zb.register(name, make_ingest(lambda env: config), calendar_name=calendar_name,
                start_session=start, end_session=end, minutes_per_day=MINUTES_PER_DAY)
    zb.ingest(name, environ=environ, show_progress=show_progress)
    return zb.load(name, environ=environ)

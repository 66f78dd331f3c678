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

from ..ingestions import INGEST_TMP_PREFIX, REPORT_FILE, side_dir
from ..market import CALENDAR, MINUTES_PER_DAY
from .adjustments import write_adjustments
from .assets import write_assets
from .config import PolygonBundleConfig, snap_to_sessions
from .daily import daily_row_sids, daily_sources, write_daily
from .days import read_days
from .history import write_reference_history
from .incremental import Incremental
from .minutes import write_minutes
from .reference import Universe, load_reference_assets
from .report import IngestReport, write_report
from .side_tables import write_side_tables
from .sids import assign_sids

log = logging.getLogger(__name__)


def ingest_polygon(config: PolygonBundleConfig, asset_db_writer, minute_bar_writer,
                   daily_bar_writer, adjustment_writer, calendar, start_session, end_session,
                   show_progress, output_dir, bundle_dir=None):
    """Run one ingest (see :mod:`bundles.polygon`); returns the ingest report dict.

    ``bundle_dir`` (``data/<bundle>/``) holds the previous ingestions: the newest one is
    extended when only new sessions arrived (:mod:`.incremental`)."""
    r = IngestReport()
    # a range that is not sessions fails inside zipline's writers: snap it (and say so)
    r.notes.extend(snap_to_sessions(calendar, *config.resolved_range())[2])
    start_session, end_session, more = snap_to_sessions(calendar, start_session, end_session)
    r.notes.extend(n for n in more if n not in r.notes)
    for note in r.notes:
        log.info(note)
    show = show_progress
    reference = load_reference_assets(config.root, config.bad_rows, r)
    universe = Universe.of(config, reference)
    # <pid> in the name: a killed ingest's folder is removed by the next one (bundles.ingestions)
    tmpdir = Path(tempfile.mkdtemp(prefix=f"{INGEST_TMP_PREFIX}{os.getpid()}-"))
    timings = r.seconds
    inc = None
    try:
        with _timed(timings, "scan_inputs"):
            inc = Incremental(config, universe, calendar, start_session, end_session, r,
                              bundle_dir, Path(output_dir).name, minute_bar_writer, _timed)
        # read_day_files, assign_sids: in full, or the new sessions on top of the previous
        days, sids = inc.pass1(read_days, assign_sids, reference, tmpdir, show)
        with _timed(timings, "write_minute_bars"):
            # incremental: the shared tables are written in the background until
            # finish_minute_bars, while the phases below run
            ratios = inc.write_minutes(write_minutes, minute_bar_writer, days, sids, show,
                                       config.workers)
        with _timed(timings, "write_assets"):
            assets = write_assets(asset_db_writer, sids.assets, ratios, calendar.name)
        with _timed(timings, "write_daily_bars"):
            # before adjustments: dividend ratios use closes
            row_sids = daily_row_sids(days.daily, sids)
            write_daily(daily_bar_writer, days.daily, row_sids, calendar, start_session,
                        end_session, r, show)
        with _timed(timings, "write_adjustments"):
            n_splits, n_dividends = write_adjustments(adjustment_writer, config.root, sids,
                                                         config.bad_rows, r)
        assets = assets.assign(daily_source=daily_sources(days.daily, row_sids, sids, r))
        r.auction_rows = write_side_tables(output_dir, assets, days.extended, days.auctions,
                                           sids)
        write_reference_history(output_dir, config.root, sids, config.shares_lag_days,
                                config.bad_rows, r)
        with _timed(timings, "finish_minute_bars"):
            inc.finish_minutes(show)
        report = write_report(output_dir, r, config, days.daily_source, start_session,
                              end_session, assets, n_splits, n_dividends)
        inc.save(output_dir, sids, ratios)  # gapline/inputs.json: what the next ingest checks
    finally:
        if inc is not None:
            inc.close()  # after a failure: no table is written into the folder being removed
        shutil.rmtree(tmpdir, ignore_errors=True)
    log.info("ingested %d assets (%d with minute bars), %d minute rows, %d splits, %d dividends; "
             "report: %s", report["assets"], report["assets_with_minute_bars"],
             r.minute_rows_written, n_splits, n_dividends, side_dir(output_dir) / REPORT_FILE)
    by_sid = r.daily_source_by_sid
    log.info("daily bars (daily_source=%s): %d sids from minute files, %d from day aggs, %d "
             "from both", days.daily_source, by_sid.get("minute", 0), by_sid.get("day", 0),
             by_sid.get("mixed", 0))
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


def _building_dir(daily_bar_writer, output_dir) -> Path:
    """Where this ingestion is being built: the folder of zipline's daily bars inside its
    working dir (moved to ``output_dir`` in one rename once everything is written,
    :mod:`bundles.zipline_patches`); ``output_dir`` itself when there is no such writer."""
    daily = getattr(daily_bar_writer, "_filename", None)
    if daily and Path(daily).parent.name == Path(output_dir).name:
        return Path(daily).parent
    return Path(output_dir)


def make_ingest(config_factory):
    """A zipline ingest function; ``config_factory(environ)`` builds the config at ingest time
    (an invalid option fails the ingest naming the option and its allowed values).

    Nothing appears under ``data/<bundle>/`` until the whole ingestion is written (zipline's
    working dir is renamed into place last, :mod:`bundles.zipline_patches`); on any failure
    the work folder is removed (and a legacy pre-created ``output_dir`` too).
    """
    import click

    from ..zipline_patches import install_fast_commit, install_ingest_lock, mark_gapline_ingest

    install_fast_commit()
    install_ingest_lock()

    def ingest(environ, asset_db_writer, minute_bar_writer, daily_bar_writer,
               adjustment_writer, calendar, start_session, end_session, cache,
               show_progress, output_dir):
        building = _building_dir(daily_bar_writer, output_dir)
        try:
            with _sigterm_as_exception():
                try:
                    config = config_factory(environ)
                except ValueError as exc:
                    raise click.UsageError(f"polygon bundle option: {exc}") from exc
                ingest_polygon(config, asset_db_writer, minute_bar_writer, daily_bar_writer,
                               adjustment_writer, calendar, start_session, end_session,
                               show_progress, building, bundle_dir=Path(output_dir).parent)
        except BaseException:
            for path in {Path(output_dir), building}:
                shutil.rmtree(path, ignore_errors=True)
            log.error("ingest failed; removed %s (never moved into place) so the previous "
                      "ingestion stays in use", building)
            raise
    return mark_gapline_ingest(ingest)


def build_bundle(name: str, config: PolygonBundleConfig, zipline_root, show_progress=False,
                 calendar_name=CALENDAR):
    """Register ``name`` for ``config``, ingest it into ``zipline_root`` and load it.

    The programmatic path used by tests, benchmarks and notebooks: exactly what
    ``zipline ingest -b <name>`` does, with an explicit ``ZIPLINE_ROOT``.
    Returns zipline's ``BundleData``.
    """
    from zipline.data import bundles as zb

    from zipline.utils.calendar_utils import get_calendar

    start, end, notes = config.session_range(get_calendar(calendar_name))
    if start is None:
        raise FileNotFoundError(f"no Polygon day files under {config.root}")
    for note in notes:
        log.info(note)
    environ = dict(os.environ, ZIPLINE_ROOT=str(zipline_root))
    zb.register(name, make_ingest(lambda env: config), calendar_name=calendar_name,
                start_session=start, end_session=end, minutes_per_day=MINUTES_PER_DAY)
    zb.ingest(name, environ=environ, show_progress=show_progress)
    return zb.load(name, environ=environ)

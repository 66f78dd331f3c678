"""Pass 2: the bucket files -> zipline minute bars, sid by sid, buckets across processes.

Each bucket is regrouped by ticker and every sid's table is written in one call (sid by sid
is ~12x faster than day by day), with a per-sid OHLC ratio so sub-dollar and sub-penny
prices keep their digits. A sid's table is its own folder and a ticker lives in one bucket,
so buckets are independent: with ``workers`` > 1 (``-x polygon.workers=N``) they are written
by a pool of processes (:mod:`.minute_pool`), one bucket in flight per worker (memory:
``ROWS_PER_BUCKET`` rows each); the parent merges what each bucket reports, in bucket order,
and writes ``metadata.json`` once at the end. The files are the same bytes either way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import zipline_writers
from ..zipline_writers import MINUTE_COLUMNS
from ..market import ET
from ..progress import progress_bar
from .bars import clip_minute_volume, group_bounds, ohlc_ratio_for
from .report import IngestReport
from .sids import SidMap

EMPTY_TABLES_PER_TASK = 500  # daily-only sids per pool task


@dataclass
class BucketResult:
    """What writing one bucket found: the OHLC ratio of each sid written (in write order),
    the rows written, unstorable-value messages and tickers without an asset."""

    ratios: dict = field(default_factory=dict)
    rows: int = 0
    unstorable: list = field(default_factory=list)
    no_asset: list = field(default_factory=list)


def write_minutes(minute_bar_writer, calendar, bucket_files: dict, id_tickers: np.ndarray,
                  sids: SidMap, report: IngestReport, show: bool, workers: int = 1
                  ) -> dict[int, int]:
    """Write every sid's minute bars from pass 1's bucket files (deleted once written);
    returns the OHLC ratio of each sid written."""
    from .minute_pool import TaskPool

    ratios: dict[int, int] = {}
    zipline_writers.use_ohlc_ratios(minute_bar_writer, ratios)  # filled as sids are written
    tables = zipline_writers.MinuteTables.of(minute_bar_writer)
    buckets = sorted(bucket_files)
    workers = workers if len(buckets) > 1 else 1
    results: dict[int, BucketResult] = {}
    with TaskPool(workers, (tables, id_tickers, sids)) as pool:
        with progress_bar("writing minute bars (buckets)", len(buckets), show) as bar:
            tasks = [(b, [str(p) for p in bucket_files[b]]) for b in buckets]
            for b, result in pool.run(_bucket_task, tasks):
                results[b] = result
                bar.update(1)
        no_asset = []  # tickers with minute bars but no daily bar (daily_source=day): no sid
        for b in buckets:  # in bucket order: the serial order, whatever finished first
            result = results.pop(b)
            ratios.update(result.ratios)
            report.minute_rows_written += result.rows
            report.unstorable_values.extend(result.unstorable)
            no_asset.extend(result.no_asset)
        note_no_asset(report, no_asset)
        # Sids outside the minute subset get an empty table: zipline's minute reader treats a
        # short table as "no trades" (NaN price, zero volume) but raises NoDataForSid when the
        # table is missing, which would crash a minute backtest on any such screened name.
        empty = [int(sid) for sid in sids.assets.index if sid not in ratios]
        chunks = [(empty[i:i + EMPTY_TABLES_PER_TASK],)
                  for i in range(0, len(empty), EMPTY_TABLES_PER_TASK)]
        with progress_bar("empty minute tables (daily-only sids)", len(empty),
                          show and len(empty) > 0) as bar:
            for n in pool.run(_empty_task, chunks):
                bar.update(n)
    # The writer's metadata was written at construction; rewrite it with the ratios.
    zipline_writers.write_minute_metadata(minute_bar_writer, calendar, ratios)
    return ratios


def _bucket_task(state, bucket, paths):
    tables, id_tickers, sids = state
    return bucket, write_bucket(tables, paths, id_tickers, sids)


def _empty_task(state, sid_list):
    tables = state[0]
    for sid in sid_list:
        zipline_writers.ensure_minute_table(tables, sid)
    return len(sid_list)


def note_no_asset(report: IngestReport, no_asset) -> None:
    """Say (report notes) which tickers' minute bars had no asset, so were not ingested."""
    if no_asset:
        report.notes.append(
            f"{len(no_asset)} ticker(s) have minute bars but no day-aggregate bar, so no "
            f"asset; their minute bars were not ingested, e.g. {sorted(no_asset)[0]}")


def write_bucket(tables, paths, id_tickers: np.ndarray, sids: SidMap) -> BucketResult:
    """Write the sids of one bucket (its Arrow files, one per day, deleted once written)."""
    from pathlib import Path

    out = BucketResult()
    for sid, ticker, end_ns, cols in bucket_bars(paths, id_tickers, sids, out.no_asset):
        write_sid(tables, out, sid, ticker, end_ns, cols)
    for p in paths:
        Path(p).unlink()
    return out


def bucket_bars(paths, id_tickers: np.ndarray, sids: SidMap, no_asset: list):
    """Each ``(sid, ticker, end_ns, {column: values})`` in one bucket's Arrow files (pass 1's,
    one per day), by ticker id, a reused ticker's bars split by company; tickers with bars
    but no asset are appended to ``no_asset``."""
    table = pa.concat_tables(pa.ipc.open_file(str(p)).read_all() for p in paths)
    tid = table.column("tid").to_numpy()
    # Files were appended in day order and are time-sorted within a day, so a stable
    # sort by ticker id leaves each ticker's bars in time order.
    order = np.argsort(tid, kind="stable")
    cols = {k: table.column(k).to_numpy()[order] for k in ("end_ns",) + MINUTE_COLUMNS}
    tid = tid[order]
    del table
    starts, lengths = group_bounds(tid)
    for s, n in zip(starts, lengths):
        ticker = id_tickers[tid[s]]
        sl = slice(s, s + n)
        end_ns = cols["end_ns"][sl]
        if ticker in sids.periods:  # reused ticker: split its bars by company
            days = (pd.DatetimeIndex(end_ns - 1, tz="UTC").tz_convert(ET)
                    .tz_localize(None).normalize().to_numpy("datetime64[ns]"))
            owners = sids.map(np.full(len(days), ticker, dtype=object), days)
        elif ticker in sids.sid_of_ticker:
            yield (int(sids.sid_of_ticker[ticker]), ticker, end_ns,
                   {k: cols[k][sl] for k in MINUTE_COLUMNS})
            continue
        else:
            no_asset.append(ticker)
            continue
        for sid in np.unique(owners):
            m = owners == sid
            yield int(sid), ticker, end_ns[m], {k: cols[k][sl][m] for k in MINUTE_COLUMNS}


def write_sid(tables, out: BucketResult, sid, ticker, end_ns, cols):
    """Write one sid's minute table (its OHLC ratio, volumes clipped to uint32) into ``out``."""
    ratio = ohlc_ratio_for(float(np.nanmax(cols["high"])))
    out.ratios[sid] = ratio
    cols["volume"], note = clip_minute_volume(ticker, end_ns, cols["volume"])
    if note:
        out.unstorable.append(note)
    zipline_writers.write_minute_table(tables, sid, end_ns, cols, ratio)
    out.rows += len(end_ns)

"""The minute bars of an incremental ingest: the previous ingestion's tables shared by hard
link, the new sessions' bars appended (:mod:`bundles.bcolz_share`).

A sid of the new ingestion **continues** a sid of the previous one when every minute bar the
previous sid holds belongs to the new sid, and no other previous sid's bars do. Sids are
matched by identity, not number (a new ticker sorting earlier renumbers every sid after it):
the previous sid's share of its ticker's days -- up to the previous ingestion's last session --
must map to one new sid of the same ticker under the new (ticker, day) -> sid map
(:class:`~bundles.polygon.sids.SidMap`; the map is monotone in the day, so its two ends
decide). Then the new table is the previous one plus the new bars, with the same OHLC ratio:
the combined ratio is ``min(old ratio, ratio of the new bars)`` (prices are > 0, so
:func:`~bundles.polygon.bars.ohlc_ratio_for` is monotone), and when it would change (a price
crossing $4,294.96 and the like) the stored uint32 values cannot be rescaled exactly, so the
ingest falls back to a full one (rare). It falls back too when a previous sid's bars would be
split or merged (the reference tickers changed a reused ticker's companies), or a ticker whose
minute bars had no asset gets one (``daily_source=day``).

Everything else is written as a full ingest writes it: new sids' tables from their new bars,
empty tables for sids without minute bars, ``metadata.json`` once at the end.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import zipline_writers
from ..bcolz_share import share_ctable, table_length
from ..progress import progress_bar, track
from .bars import UINT32_MAX, ohlc_ratio_for
from .inputs import NotIncremental
from .minutes import BucketResult, bucket_bars, note_no_asset, write_sid
from .report import IngestReport
from .sids import SidMap

SHARE_THREADS = 4  # threads sharing tables in the ingest's process (file system latency)
# Sharing moves to worker processes (TableSharing) from this many previous sids on: below it
# a pool's start-up (~1.3 s a worker, importing bcolz) is more than the work it takes over
POOL_MIN_SIDS = 1_000
SIDS_PER_TASK = 100  # ~0.5 s of work a task: ~20 tasks for 2,000 sids


def bars_by_sid(bucket_files: dict, id_tickers: np.ndarray, sids: SidMap):
    """The new sessions' regular-session bars (pass 1's bucket files) grouped by sid:
    ``({sid: (ticker, end_ns, {col: values})}, tickers with bars but no sid)``; grouped as
    a full ingest groups them (:func:`.minutes.bucket_bars`: each ticker lives in one
    bucket)."""
    out, no_asset = {}, []
    for bucket in sorted(bucket_files):
        if bucket_files[bucket]:
            for sid, ticker, end_ns, cols in bucket_bars(bucket_files[bucket], id_tickers, sids,
                                                         no_asset):
                out[sid] = (ticker, end_ns, cols)
    return out, set(no_asset)


def minute_tickers(bucket_files: dict, id_tickers: np.ndarray) -> set:
    """Tickers with regular-session minute bars in pass 1's bucket files (their ``tid``
    column only)."""
    seen = np.zeros(len(id_tickers), dtype=bool)
    for paths in bucket_files.values():
        for p in paths:
            with pa.memory_map(str(p)) as source:
                seen[pa.ipc.open_file(source).read_all().column("tid").to_numpy()] = True
    return set(id_tickers[seen])


def plan_links(old: pd.DataFrame, start_session, last_session, sids: SidMap, bars: dict,
               old_no_asset: set, old_rootdir: str, old_sessions, minutes_per_day: int) -> dict:
    """``{new sid: (previous sid, its ratio or None)}`` for the new sids continuing a previous
    one (module doc); raises :class:`NotIncremental` when a previous sid's bars cannot be
    carried over exactly. ``old``: the previous ingestion's sids (index ``sid``; ``ticker``,
    ``end_date``, ``ratio`` NaN without minute bars); ``old_rootdir``, ``old_sessions``,
    ``minutes_per_day``: its minute bars (a table ends at its last bar: that bar's session
    bounds the days the sid's bars cover)."""
    old_tables = zipline_writers.MinuteTables(old_rootdir, None, 0)
    gained = sorted(old_no_asset & (set(sids.sid_of_ticker) | set(sids.periods)))
    if gained:
        raise NotIncremental(f"ticker {gained[0]} had minute bars without an asset in the "
                             "previous ingestion and now has one: its old bars must be read")
    spans = _previous_spans(old, start_session, last_session)
    has_bars = spans["ratio"].notna().to_numpy()
    hi = spans["hi"].to_numpy("datetime64[ns]").copy()
    if has_bars.any():
        # a table ends at its last bar: that bar's session bounds the days its bars cover
        lengths = np.array([table_length(old_tables.sidpath(int(s)))
                            for s in spans.index[has_bars]], dtype=np.int64)
        last_bar = np.asarray(old_sessions, dtype="datetime64[ns]")[
            (lengths - 1) // minutes_per_day]
        hi[has_bars] = np.minimum(hi[has_bars], last_bar)
    lo = spans["lo"].to_numpy("datetime64[ns]")
    keep = lo <= hi
    tickers = spans["ticker"].to_numpy(object)[keep]
    n = int(keep.sum())
    # one map call for both ends of every span (the map is monotone in the day)
    ends = sids.map(np.concatenate([tickers, tickers]), np.concatenate([lo[keep], hi[keep]]))
    links: dict[int, tuple] = {}
    with_bars: dict[int, int] = {}
    for sid, ticker, bars_kept, ratio, lo_sid, hi_sid in zip(
            spans.index[keep], tickers, has_bars[keep], spans["ratio"].to_numpy()[keep],
            ends[:n], ends[n:]):
        if lo_sid != hi_sid or lo_sid < 0:
            if bars_kept:
                raise NotIncremental(
                    f"the minute bars of {ticker} (previous sid {sid}) now belong to "
                    "several assets or none (reference tickers changed its companies)")
            continue
        new = int(lo_sid)
        if bars_kept:
            if new in with_bars:
                raise NotIncremental(f"previous sids {with_bars[new]} and {sid} of {ticker} "
                                     "are one asset now (reference tickers changed)")
            with_bars[new] = int(sid)
            ratio = int(ratio)
            if new in bars:
                _, _, cols = bars[new]
                combined = min(ratio, ohlc_ratio_for(float(np.nanmax(cols["high"]))))
                if combined != ratio:
                    raise NotIncremental(
                        f"{ticker}: new prices need OHLC ratio {combined} instead of "
                        f"{ratio}; the stored minute bars cannot be rescaled exactly")
                if (cols["volume"] > UINT32_MAX).any():
                    raise NotIncremental(f"{ticker}: new minute volumes above {UINT32_MAX}")
            links[new] = (int(sid), ratio)
        elif new not in links and new not in bars:
            links[new] = (int(sid), None)  # an empty table, shared as is
    return links


def _previous_spans(old: pd.DataFrame, start_session, last_session) -> pd.DataFrame:
    """The days each previous sid owned, ``lo``..``hi``, in the order the checks run: by
    ticker (first seen by end date), then by end date. A ticker's first sid owns its days
    from the start session, each later one from the day after the previous one's end; the
    last owns them up to ``last_session``, the others up to their end date."""
    ordered = old[old["ticker"].notna()].sort_values("end_date")
    first_seen = ordered.groupby("ticker", sort=False).ngroup().to_numpy()
    ordered = ordered.iloc[np.argsort(first_seen, kind="stable")]
    by_ticker = ordered.groupby("ticker", sort=False)["end_date"]
    end = pd.to_datetime(ordered["end_date"])
    previous_end = pd.to_datetime(by_ticker.shift(1))
    last = pd.Timestamp(last_session)
    lo = (previous_end + pd.Timedelta(days=1)).fillna(pd.Timestamp(start_session))
    is_last = by_ticker.cumcount(ascending=False).to_numpy() == 0
    hi = end.where(end < last, last).where(~is_last, last)
    return pd.DataFrame({"ticker": ordered["ticker"], "ratio": ordered["ratio"],
                         "lo": lo, "hi": hi}, index=ordered.index)


def write_minutes(minute_bar_writer, calendar, previous_rootdir: str, links: dict, bars: dict,
                  no_asset: set, sids: SidMap, report: IngestReport, show: bool,
                  sharing: "TableSharing") -> dict:
    """Write every sid's minute table (module doc); returns the OHLC ratio of each sid with
    minute bars. ``no_asset``: tickers with minute bars but no sid, previous and new. The
    shared tables go to ``sharing``, possibly still being written when this returns
    (:meth:`TableSharing.wait`)."""
    ratios: dict[int, int] = {}
    zipline_writers.use_ohlc_ratios(minute_bar_writer, ratios)
    tables = zipline_writers.MinuteTables.of(minute_bar_writer)
    old_tables = zipline_writers.MinuteTables(previous_rootdir, None, tables.expectedlen)
    linked = appended = 0
    jobs = []  # (source table, new table, new bars as (slots, scaled columns) or None)
    for sid in track([int(s) for s in sids.assets.index], "writing minute bars", show):
        if sid in links:
            old_sid, ratio = links[sid]
            new_bars = None
            if sid in bars:
                _, end_ns, cols = bars[sid]
                new_bars = zipline_writers.minute_slots(tables, sid, end_ns, cols, ratio)
                report.minute_rows_written += len(end_ns)
                appended += 1
            jobs.append((old_tables.sidpath(old_sid), tables.sidpath(sid), new_bars))
            linked += 1
            if ratio is not None:
                ratios[sid] = ratio
        elif sid in bars:  # a new sid: written as a full ingest writes it
            ticker, end_ns, cols = bars[sid]
            written = BucketResult(ratios=ratios, unstorable=report.unstorable_values)
            write_sid(tables, written, sid, ticker, end_ns, dict(cols))
            report.minute_rows_written += written.rows
        else:
            zipline_writers.ensure_minute_table(tables, sid)
    sharing.submit(jobs)
    note_no_asset(report, no_asset)
    zipline_writers.write_minute_metadata(minute_bar_writer, calendar, ratios)
    report.incremental.update(sids_shared=linked, sids_appended=appended)
    return ratios


def share_sid(src: str, dst: str, new_bars=None) -> None:
    """The new table ``dst``: ``src`` shared (:func:`~bundles.bcolz_share.share_ctable`) plus
    ``new_bars`` (``(slots, scaled columns)`` of :func:`~bundles.zipline_writers.minute_slots`)
    at their slots, the gap since ``src``'s last row padded with zeros as zipline pads it."""
    tails = None
    if new_bars is not None:
        pos, scaled = new_bars
        start = table_length(src)
        if pos[0] < start:
            raise ValueError(f"{dst}: new bars overlap its previous table {src}")
        tails = zipline_writers.slot_columns(pos, scaled, start)
    share_ctable(src, dst, tails)


class TableSharing:
    """The shared tables' jobs (:func:`share_sid`) run while the ingest goes on.

    With ``workers`` > 1 they run in a pool of worker processes started at once
    (:meth:`~bundles.polygon.minute_pool.TaskPool.start`),
    ``SIDS_PER_TASK`` sids a task, and the ingest writes its assets, daily bars, adjustments
    and side tables meanwhile; :meth:`wait` then waits for them. Sharing a table is ~2-3 ms
    of file system work plus, for a sid with new bars, recompressing its five last chunks
    (~2.5 ms of CPU that holds the GIL): processes, not threads, run that side by side. With
    one worker the jobs run in :meth:`submit`, in a few threads (the file system's latency).
    :meth:`close` cancels what has not started and waits for the rest, so nothing writes
    into a folder being removed after a failure."""

    def __init__(self, workers: int):
        from .minute_pool import TaskPool

        # forked, not spawned: the pool starts before pass 1 has started its readers, and a
        # fork costs milliseconds where a spawned worker re-imports bcolz for ~1.7 s of CPU,
        # taken from pass 1 on a two-core machine
        self.pool = TaskPool(workers, None, "fork").start() if workers > 1 else None
        self.futures: list = []

    def submit(self, jobs: list):
        if self.pool is None:
            _run_threads(share_sid, jobs)
            return
        for i in range(0, len(jobs), SIDS_PER_TASK):
            self.futures.append(self.pool.submit(_share_task, jobs[i:i + SIDS_PER_TASK]))

    def wait(self, show: bool):
        """Wait for every job; the first error is raised (after :meth:`close`)."""
        from concurrent.futures import as_completed

        futures, self.futures = self.futures, []
        try:
            with progress_bar("sharing minute tables", len(futures), show, "tasks") as bar:
                for future in as_completed(futures):
                    future.result()
                    bar.update(1)
        finally:
            self.close()

    def close(self):
        if self.pool is not None:
            self.pool.__exit__(None, None, None)
            self.pool = None


def _share_task(state, jobs):
    for job in jobs:
        share_sid(*job)
    return len(jobs)


def _run_threads(fn, jobs, threads: int = SHARE_THREADS):
    """``fn(*job)`` for every job in a few threads: sharing a table is mostly mkdir / link /
    small writes (and blosc, which releases the GIL), so threads overlap the file system's
    latency. The first error cancels what has not started and is raised."""
    from concurrent.futures import ThreadPoolExecutor

    if threads <= 1 or len(jobs) < 2:
        for job in jobs:
            fn(*job)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="gapline-share")
    try:
        for future in [pool.submit(fn, *job) for job in jobs]:
            future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

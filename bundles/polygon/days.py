"""Pass 1: the day files, one at a time -> daily bars, extended-hours summaries, auction
prints, bucket files.

A session's minute data is its day file plus any part files ``gapline download`` added
(:mod:`.parts`). Its bars are split into the regular session (``calendar.session_minutes``,
labels shifted +1 minute from Polygon's window START to zipline's window END), pre-market
(04:00 ET up to the open) and after-hours (the close + 4 h; its first bar, the one starting AT
the close, holds the closing cross). Regular-session bars of minute tickers go to per-bucket
Arrow files in ``tmpdir`` (tickers hashed into buckets, ticker as an int id) for pass 2; daily
OHLCV (close = the official close, :mod:`.auctions`), the extended-hours summaries (with the
09:25 cut, :mod:`.premarket_cut`) and the auction prints stay in memory (one row per
ticker-day).

Where the daily bars come from (``daily_source``, :func:`resolve_daily_source`): ``minute``
(regular-session minutes, close = the official close), ``day`` (Polygon's day aggs) or
``mixed`` -- what ``auto`` does when both datasets are present: a (ticker, session) the
session's minute files hold gets its daily bar from the minutes, every other ticker of the
day aggs from the day aggs, so a minute subset (``gapline download --tickers``) does not
shrink the market the daily bars (and every Pipeline screen) cover. Each daily row carries
its ``source`` ("minute" or "day"); the field meanings of each are in
:data:`.report.DAILY_FIELDS`.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import layout
from ..flatfiles import NS_PER_MINUTE, read_day_file
from ..market import ET
from ..progress import track
from .auctions import apply_official_close, auction_prints
from .bars import carry_round_volumes, group_bounds, ohlcv_by_ticker
from .config import PolygonBundleConfig
from .minute_pool import bucket_count
from .parts import read_session_files
from .premarket_cut import premarket_cut
from .reference import Universe
from .report import IngestReport

EXTENDED_HOURS_SPAN = pd.Timedelta(hours=4)  # after-hours run 4 h past the close (20:00 / 17:00)
PREMARKET_START = pd.Timedelta(hours=4)  # 04:00 ET
ROWS_PER_BUCKET = 3_000_000  # bounds pass-2 memory: ~100 bytes per row in flight
DAILY_COLUMNS = ["ticker", "day", "open", "high", "low", "close", "volume", "source"]


@dataclass(frozen=True, eq=False)
class DayData:
    """What pass 1 hands on."""

    daily_source: str  # "minute", "day" or "mixed": where ``daily`` came from
    daily: pd.DataFrame  # DAILY_COLUMNS, one row per (ticker, session) with bars; ``source``
    # is the row's own source ("minute" or "day")
    extended: pd.DataFrame | None  # pm_*/pmcut_*/ah_* summaries per (ticker, session)
    auctions: pd.DataFrame | None  # open/close prints per (ticker, session)
    id_tickers: np.ndarray  # ticker of each int id used in the bucket files
    bucket_files: dict  # bucket -> [Arrow file per day], in day order


def range_notes(sessions, minute_files: dict, day_files: dict, source: str) -> list[str]:
    """The notes about a range of day files as a whole (the rest of pass 1's notes are per
    day file): files dated on non-sessions, and sessions with no file of the daily
    ``source``. ``minute_files``, ``day_files``: ``{session: parts}`` of the range."""
    notes = []
    not_sessions = sorted((set(minute_files) | set(day_files)) - set(sessions))
    if not_sessions:
        notes.append(f"ignored {len(not_sessions)} day file(s) dated on non-sessions, e.g. "
                     f"{not_sessions[0].date()}")
    source_files = {"minute": minute_files, "day": day_files}.get(
        source, {**day_files, **minute_files})
    missing = [s for s in sessions if s not in source_files]
    if missing:
        what = "minute or day" if source == "mixed" else source
        notes.append(f"{len(missing)} session(s) have no {what} file, e.g. "
                     f"{missing[0].date()}: no bars for them")
    return notes


def read_days(config: PolygonBundleConfig, universe: Universe, calendar, start_session,
              end_session, tmpdir: Path, report: IngestReport, show: bool) -> DayData:
    """Read every day file between the sessions (counts and notes go to ``report``)."""
    cfg = config
    # {session: [day file, part 1, ...]}: parts hold tickers downloaded later
    minute_files = layout.list_day_file_parts(cfg.root, layout.MINUTE_DATASET,
                                              start_session, end_session)
    day_files = layout.list_day_file_parts(cfg.root, layout.DAY_DATASET, start_session,
                                           end_session)
    sessions = calendar.sessions_in_range(start_session, end_session)
    source = resolve_daily_source(cfg.daily_source, minute_files, day_files)
    if not minute_files and not day_files:
        raise FileNotFoundError(
            f"no Polygon day files under {layout.sip_dir(cfg.root)} between "
            f"{start_session.date()} and {end_session.date()}; run "
            "`gapline download` or point GAPLINE_DATA at your flat files"
        )
    if source == "day" and not day_files:
        raise FileNotFoundError(f"daily_source=day but no {layout.DAY_DATASET} files under "
                                f"{layout.sip_dir(cfg.root)}")
    report.notes.extend(range_notes(sessions, minute_files, day_files, source))

    ticker_ids: dict[str, int] = {}  # grows as files name new tickers
    n_buckets = 1
    bucket_files: dict[int, list[Path]] = {}
    daily_parts, ext_parts, auction_parts = [], [], []
    work = sorted(s for s in sessions if s in minute_files or s in day_files)
    minute_work = [d for d in work if d in minute_files]
    # read_day_file is looked up at call time (tests slow it down to interrupt an ingest)
    prefetched = _prefetch(lambda d: read_session_files(minute_files[d], d, "minute",
                                                        cfg.bad_rows, read_day_file),
                           minute_work)
    for i, day in enumerate(track(work, "reading day files", show)):
        covered = None  # tickers the session's minute files hold (mixed: not from day aggs)
        if day in minute_files:
            frame = next(prefetched)
            _note_frame(report, frame)
            if i == 0:
                est = max(len(frame), 1) * len(work)
                n_buckets = bucket_count(est, ROWS_PER_BUCKET, getattr(cfg, "workers", 1),
                                         len(frame.symbols))
            daily, ext, prints, written = _split_minute_frame(
                frame, day, calendar, universe, ticker_ids, n_buckets, tmpdir, report)
            for b, path in written:
                bucket_files.setdefault(b, []).append(path)
            if source == "mixed" and day in day_files:  # read below, only then
                covered = frame.symbols[np.unique(frame.codes)]
            if source != "day" and daily is not None:
                # close = the official close (the open of the bar starting at the close);
                # fallback where there is no such bar: the last regular minute's close
                daily = apply_official_close(daily.set_index("ticker"), prints, report)
                daily_parts.append(daily.reset_index().assign(source="minute"))
            if ext is not None:
                ext_parts.append(ext)
            if prints is not None:
                auction_parts.append(prints.reset_index().assign(session=day))
        if source in ("day", "mixed") and day in day_files:
            # Polygon's day aggs: see report.DAILY_FIELDS["day"] for what each field holds
            frame = read_session_files(day_files[day], day, "day", cfg.bad_rows, read_day_file)
            _note_frame(report, frame)
            uni, _, _ = _symbol_flags(universe, frame.symbols, ticker_ids)
            if covered is not None and source == "mixed":  # the minute files' tickers win
                uni &= ~np.isin(frame.symbols, covered)
            keep = uni[frame.codes]
            daily_parts.append(pd.DataFrame({
                "ticker": frame.symbols[frame.codes[keep]], "day": day,
                "open": frame.open[keep], "high": frame.high[keep], "low": frame.low[keep],
                "close": frame.close[keep], "volume": frame.volume[keep], "source": "day"}))
        report.days_read += 1
    daily = (pd.concat(daily_parts, ignore_index=True) if daily_parts else
             pd.DataFrame(columns=DAILY_COLUMNS))
    extended = pd.concat(ext_parts, ignore_index=True) if ext_parts else None
    auctions = pd.concat(auction_parts, ignore_index=True) if auction_parts else None
    return DayData(source, daily, extended, auctions, np.array(list(ticker_ids), dtype=object),
                   bucket_files)


def resolve_daily_source(option: str, minute_files: dict, day_files: dict) -> str:
    """The config's ``daily_source`` for these files: ``auto`` -> ``mixed`` when both minute
    and day files exist, else whichever exists; ``minute``, ``day`` and ``mixed`` as given."""
    if option != "auto":
        return option
    if minute_files and day_files:
        return "mixed"
    return "minute" if minute_files else "day"


def _prefetch(read, items):
    """``read(item)`` for each item in order, the next one read in a thread while the caller
    works on the current one (gzip and Arrow's CSV parser release the GIL). One file ahead
    at most, so memory stays at two day files."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gapline-read") as pool:
        pending = pool.submit(read, items[0]) if items else None
        for nxt in list(items[1:]) + [None]:
            current = pending.result()
            pending = pool.submit(read, nxt) if nxt is not None else None
            yield current


def _note_frame(report: IngestReport, frame):
    if not frame.counts.get("rows", len(frame)):
        report.header_only_files.append(str(frame.path))
        report.notes.append(
            f"{frame.path}: header only, no rows: ingested as no trades for any ticker on "
            f"{pd.Timestamp(frame.day).date()}; if that session did trade, delete the file and "
            "run `gapline download` again")
    report.fractional_volumes += int(np.count_nonzero(frame.volume % 1))
    report.rows_read += len(frame)
    report.add_counts({k: v for k, v in frame.counts.items() if k != "rows"})
    report.skipped_rows.extend(frame.skipped[: max(0, 1000 - len(report.skipped_rows))])


def _bucket_of(ticker: str, n_buckets: int) -> int:
    return zlib.crc32(ticker.encode()) % n_buckets


def _symbol_flags(universe: Universe, symbols, ticker_ids: dict):
    """Per unique symbol of a file: (in universe, gets minute bars, global ticker id);
    new symbols get the next ids in ``ticker_ids``."""
    uni = np.fromiter((universe.contains(t) for t in symbols), bool, len(symbols))
    mins = np.fromiter((u and universe.wants_minutes(t) for t, u in zip(symbols, uni)), bool,
                       len(symbols))
    ids = np.fromiter((ticker_ids.setdefault(t, len(ticker_ids)) for t in symbols),
                      np.int64, len(symbols))
    return uni, mins, ids


def _split_minute_frame(frame, day, calendar, universe: Universe, ticker_ids: dict,
                        n_buckets: int, tmpdir: Path, report: IngestReport):
    """One session's minute bars -> (daily rows, extended-hours rows, auction prints by
    ticker, [(bucket, Arrow file written)]).

    The bar starting at the close (16:00, 13:00 on half days) ends at 16:01 / 13:01, after
    the session's last minute, so it is never regular: it is the first after-hours bar, and
    its open is the auction table's ``close_print``."""
    cal = calendar
    ws = frame.window_start
    end_label = ws + NS_PER_MINUTE
    first_minute = cal.session_first_minute(day).value  # 09:31 ET: right-labelled
    last_minute = cal.session_last_minute(day).value    # 16:00 ET, 13:00 on early closes
    open_ns = cal.session_open(day).value
    close_ns = cal.session_close(day).value
    pm_start = pd.Timestamp(day).tz_localize(ET) + PREMARKET_START
    regular = (end_label >= first_minute) & (end_label <= last_minute)
    premarket = (ws >= pm_start.value) & (ws < open_ns)
    afterhours = (ws >= close_ns) & (ws < close_ns + EXTENDED_HOURS_SPAN.value)
    report.regular_rows += int(regular.sum())
    report.premarket_rows += int(premarket.sum())
    report.afterhours_rows += int(afterhours.sum())
    report.other_hours_rows += int((~(regular | premarket | afterhours)).sum())

    uni, mins, ids = _symbol_flags(universe, frame.symbols, ticker_ids)
    report.excluded_tickers = max(report.excluded_tickers, int((~uni).sum()))
    codes = frame.codes
    in_uni = uni[codes]
    reg = regular & in_uni
    volume = frame.volume
    if np.count_nonzero(volume[reg] % 1):  # fractional shares: whole, totals kept per ticker
        volume = volume.copy()
        volume[reg] = carry_round_volumes(codes[reg], volume[reg])
    cols = (codes, ws, frame.open, frame.high, frame.low, frame.close, volume)

    def subset(mask):
        return [a[mask] for a in cols]

    def with_tickers(agg):
        agg["ticker"] = frame.symbols[agg["ticker"]]
        return pd.DataFrame(agg)

    daily = ohlcv_by_ticker(*subset(reg))
    daily = with_tickers(daily).assign(day=day) if daily is not None else None

    ext = []
    for prefix, mask in (("pm", premarket & in_uni), ("ah", afterhours & in_uni)):
        rows = subset(mask)
        agg = ohlcv_by_ticker(*rows, dollar=True)
        if agg is None:
            continue
        agg = with_tickers(agg).rename(columns={"close": "last"})
        ext.append(agg.set_index("ticker").add_prefix(prefix + "_"))
        if prefix == "pm":  # the pre-market as known at the 09:25 decision
            c, w, _, h, l, cl, v = rows
            cut = premarket_cut(c, w, h, l, cl, v, day)
            if cut is not None:
                ext.append(cut.set_axis(frame.symbols[cut.index], axis=0))
    ext_frame = pd.concat(ext, axis=1).reset_index(names="ticker").assign(session=day) \
        if ext else None

    # The opening print (bar starting at the open) and the closing cross (bar starting AT
    # the close, 16:00 / 13:00): the latter is after-hours above, never a regular minute.
    c, w, o, _, _, _, v = subset(in_uni & ((ws == open_ns) | (ws == close_ns)))
    prints = auction_prints(c, w, o, v, open_ns, close_ns)
    if prints is not None:
        prints = prints.set_axis(pd.Index(frame.symbols[prints.index], name="ticker"), axis=0)

    # Regular-session bars of minute tickers -> bucket files for pass 2 (ticker as int id).
    written = []
    mmask = reg & mins[codes]
    if mmask.any():
        c, _, o, h, l, cl, v = subset(mmask)
        tid = ids[c]
        bucket_of_symbol = np.array([_bucket_of(t, n_buckets) for t in frame.symbols], np.int64)
        buckets = bucket_of_symbol[c]
        table = pa.table({"tid": tid, "end_ns": end_label[mmask], "open": o, "high": h,
                          "low": l, "close": cl, "volume": v})
        order = np.argsort(buckets, kind="stable")
        starts, lengths = group_bounds(buckets[order])
        for st, n in zip(starts, lengths):
            b = int(buckets[order[st]])
            path = tmpdir / f"b{b:04d}" / f"{day:%Y%m%d}.arrow"
            path.parent.mkdir(exist_ok=True)
            with pa.OSFile(str(path), "wb") as sink, \
                    pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table.take(pa.array(order[st:st + n])))
            written.append((b, path))
    return daily, ext_frame, prints, written


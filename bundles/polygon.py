"""The ``polygon`` zipline bundle: Polygon.io (Massive) flat files -> zipline bundle.

Ingest reads the raw cache (:mod:`bundles.layout`) in two passes so that memory does not grow
with the number of days:

1. **Day files, one at a time.** Each minute file is validated (:mod:`bundles.flatfiles`),
   its bars are split into regular session (``calendar.session_minutes``, labels shifted
   +1 minute from Polygon's window START to zipline's window END, so the 09:30 bar is stored
   at 09:31 and the 15:59 bar at 16:00; early closes end at 13:00), pre-market (04:00 ET up to
   the open) and after-hours (the close + 4 h). Regular-session bars of minute tickers are
   appended to per-bucket Arrow files (tickers hashed into buckets); daily OHLCV and the
   extended-hours summaries are kept in memory (one row per ticker-day).
2. **Buckets, one at a time.** Each bucket is regrouped by ticker and written sid by sid with
   ``BcolzMinuteBarWriter.write_cols`` (sid by sid is ~12x faster than day by day), with a
   per-sid OHLC ratio so sub-dollar and sub-penny prices keep their digits.

Then daily bars (dense: sessions without trades have NaN prices and zero volume), splits and
cash dividends (after the daily bars: zipline computes dividend ratios from daily closes),
assets with start/end dates (a reused ticker gets one sid per company, dates not
overlapping) and exchanges (``country_code="US"``), and three side tables in the ingestion
folder under ``gapline/``: ``assets.parquet`` (Polygon type, primary exchange, FIGI, CIK,
shares outstanding per sid), ``extended_hours.parquet`` (pre-market and after-hours
open/high/low/last/volume/dollar volume per sid and session) and ``ingest_report.json``.

A failed or interrupted ingest (exception, Ctrl-C or SIGTERM) removes its ingestion folder,
so zipline keeps loading the previous ingestion.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import layout
from .flatfiles import NS_PER_MINUTE, read_day_file

log = logging.getLogger(__name__)

# zipline rejects values >= 2**32 - 1 (check_uint32_safe), so the largest storable is one less
UINT32_MAX = np.iinfo(np.uint32).max - 1
EXTENDED_HOURS_SPAN = pd.Timedelta(hours=4)  # after-hours run 4 h past the close (20:00 / 17:00)
PREMARKET_START = pd.Timedelta(hours=4)  # 04:00 ET
SIDE_DIR = "gapline"
ROWS_PER_BUCKET = 3_000_000  # bounds pass-2 memory: ~100 bytes per row in flight
DIVIDEND_TYPES = ("CD", "SC")  # regular and special cash; capital-gain (LT/ST) kept out


# ----------------------------------------------------------------------------- configuration
@dataclass
class PolygonBundleConfig:
    """What to ingest. Every field can be set from the environment or ``zipline -x``.

    =================  ==========================  ===============================================
    field              env / ``-x polygon.<key>``  meaning
    =================  ==========================  ===============================================
    root               GAPLINE_DATA / root         folder holding ``raw/`` (or ``us_stocks_sip/``)
    start, end         GAPLINE_START / start ...   session range (default: the files present)
    tickers            GAPLINE_TICKERS / tickers   universe: ``all``, ``A,B,C`` or ``@file``
    types              GAPLINE_TYPES / types       universe filter on Polygon type: ``CS,ADRC``
    minute_tickers     GAPLINE_MINUTE_TICKERS      minute bars for ``all`` (default), ``none``,
                                                   a list/``@file``, or ``types:CS,ETF``
    daily_source       GAPLINE_DAILY_SOURCE        ``minute`` (regular-session bars resampled),
                                                   ``day`` (Polygon day aggs), ``auto``
    bad_rows           GAPLINE_BAD_ROWS            ``raise`` (default) or ``skip`` bad rows
    =================  ==========================  ===============================================
    """

    root: Path
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    tickers: tuple | None = None
    types: tuple | None = None
    minute_tickers: tuple | str = "all"
    daily_source: str = "auto"
    bad_rows: str = "raise"

    KEYS = ("root", "start", "end", "tickers", "types", "minute_tickers", "daily_source", "bad_rows")

    def __post_init__(self):
        self.root = Path(self.root).expanduser()
        self.start = pd.Timestamp(self.start).normalize() if self.start is not None else None
        self.end = pd.Timestamp(self.end).normalize() if self.end is not None else None
        self.tickers = _parse_list(self.tickers)
        self.types = _parse_list(self.types)
        if isinstance(self.minute_tickers, str) and self.minute_tickers.strip().lower() in ("all", "none"):
            self.minute_tickers = self.minute_tickers.strip().lower()
        elif isinstance(self.minute_tickers, str) and self.minute_tickers.lower().startswith("types:"):
            self.minute_tickers = "types:" + ",".join(_parse_list(self.minute_tickers[6:]) or ())
        else:
            self.minute_tickers = _parse_list(self.minute_tickers) or "none"
        if self.daily_source not in ("auto", "minute", "day"):
            raise ValueError(f"daily_source must be auto, minute or day; got {self.daily_source!r}")
        if self.bad_rows not in ("raise", "skip"):
            raise ValueError(f"bad_rows must be raise or skip; got {self.bad_rows!r}")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start.date()} is after end {self.end.date()}")

    @classmethod
    def from_environ(cls, environ=None, extension_args=None, **overrides):
        """Build from ``GAPLINE_*`` variables, then ``-x polygon.<key>=...``, then overrides."""
        environ = os.environ if environ is None else environ
        values = {"root": layout.data_root(environ)}
        for key in cls.KEYS[1:]:
            env_value = environ.get(f"GAPLINE_{key.upper()}")
            if env_value:
                values[key] = env_value
        ns = getattr(extension_args, "polygon", None) if extension_args is not None else None
        for key in cls.KEYS:
            value = getattr(ns, key, None) if ns is not None else None
            if value is not None:
                values[key] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def resolved_range(self):
        """(start, end) with defaults taken from the day files present under ``root``."""
        start, end = self.start, self.end
        if start is None or end is None:
            found = layout.date_range_of(self.root)
            if found is not None:
                start = start if start is not None else pd.Timestamp(found[0])
                end = end if end is not None else pd.Timestamp(found[1])
        return start, end


def _parse_list(value):
    """``None``/``all`` -> None; ``"A,B"`` -> ("A","B"); ``"@file"`` -> tickers in the file."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, set)):
        items = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text.lower() in ("", "all"):
            return None
        if text.startswith("@"):
            path = Path(text[1:]).expanduser()
            if not path.exists():
                raise ValueError(f"ticker list file {path} does not exist")
            text = path.read_text().replace("\n", ",")
        items = [t.strip() for t in text.split(",")]
    items = tuple(dict.fromkeys(t for t in items if t))
    return items or None


# ----------------------------------------------------------------------------- reference data
def load_reference_assets(root) -> pd.DataFrame:
    """Polygon reference tickers (+ details) as one frame, one row per (ticker, company)."""
    tickers = pd.DataFrame(layout.read_reference(root, "tickers"))
    cols = ["ticker", "name", "type", "primary_exchange", "active", "delisted_utc",
            "composite_figi", "share_class_figi", "cik"]
    if tickers.empty:
        return pd.DataFrame(columns=cols + ["delisted_date", "share_class_shares_outstanding",
                                            "weighted_shares_outstanding", "list_date"])
    for c in cols:
        if c not in tickers:
            tickers[c] = None
    tickers = tickers[cols].copy()
    delisted = pd.to_datetime(tickers["delisted_utc"], utc=True, errors="coerce")
    tickers["delisted_date"] = delisted.dt.tz_convert("America/New_York").dt.tz_localize(None).dt.normalize()
    details = pd.DataFrame(layout.read_reference(root, "ticker_details"))
    detail_cols = ["share_class_shares_outstanding", "weighted_shares_outstanding", "list_date"]
    for c in detail_cols:
        tickers[c] = None
    if not details.empty:
        for c in ["ticker", "composite_figi"] + detail_cols:
            if c not in details:
                details[c] = None
        # Match details by FIGI (it tells reused tickers apart), else by ticker.
        by_figi = details.dropna(subset=["composite_figi"]).drop_duplicates("composite_figi", keep="last")
        by_figi = by_figi.set_index("composite_figi")
        by_ticker = details.drop_duplicates("ticker", keep="last").set_index("ticker")
        for c in detail_cols:
            from_figi = tickers["composite_figi"].map(by_figi[c]) if len(by_figi) else None
            from_ticker = tickers["ticker"].map(by_ticker[c])
            tickers[c] = from_figi.combine_first(from_ticker) if from_figi is not None else from_ticker
    return tickers.reset_index(drop=True)


# ----------------------------------------------------------------------------- helpers
def _group_bounds(keys: np.ndarray):
    """Start indices and lengths of runs of equal values in sorted ``keys``."""
    if len(keys) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(keys)]]))
    return starts, lengths


def _ohlcv_by_ticker(tickers, ws, o, h, l, c, v, dollar=False):
    """Per-ticker OHLCV of rows sorted by (ticker, time)."""
    starts, lengths = _group_bounds(tickers)
    if not len(starts):
        return None
    ends = starts + lengths - 1
    out = {
        "ticker": tickers[starts],
        "open": o[starts],
        "high": np.maximum.reduceat(h, starts),
        "low": np.minimum.reduceat(l, starts),
        "close": c[ends],
        "volume": np.add.reduceat(v, starts),
    }
    if dollar:
        # Dollar volume from the typical price: flat files carry no per-bar VWAP.
        out["dollar_volume"] = np.add.reduceat(v * (h + l + c) / 3.0, starts)
        out["bars"] = lengths
        out["last_start"] = ws[ends]
    return out


def ohlc_ratio_for(max_price: float) -> int:
    """Largest power of ten (<= 1e6) that keeps ``max_price`` inside zipline's uint32.

    Default zipline storage is x1000: $0.0034 reads back as $0.003. A $2 stock stored x1e6
    keeps six decimals; a $5,000 stock falls back to x100000.
    """
    if not np.isfinite(max_price) or max_price <= 0:
        return 1000
    for k in range(6, -1, -1):
        if max_price * 10**k <= UINT32_MAX:
            return 10**k
    return 1


def _bucket_of(ticker: str, n_buckets: int) -> int:
    return zlib.crc32(ticker.encode()) % n_buckets


class _Progress:
    """click progress bar when asked, else a log line every ~10%."""

    def __init__(self, items, label, show):
        self.items = list(items)
        self.label = label
        self.show = show

    def __iter__(self):
        if self.show:
            with click.progressbar(self.items, label=self.label, show_pos=True) as bar:
                yield from bar
            return
        n = len(self.items)
        step = max(1, n // 10)
        for i, item in enumerate(self.items, 1):
            yield item
            if i % step == 0 or i == n:
                log.info("%s: %d/%d", self.label, i, n)


@contextlib.contextmanager
def _timed(timings: dict, phase: str):
    start = time.perf_counter()
    yield
    timings[phase] = round(time.perf_counter() - start, 3)
    log.info("%s: %.1fs", phase, timings[phase])


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


def _write_by_session(frame: pd.DataFrame, path: Path):
    """Parquet with one row group per session (``frame`` sorted by session): a backtest reads
    only its day's group, so its cost follows the backtest's days, not the bundle's."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sessions = frame["session"].to_numpy()
    with pq.ParquetWriter(path, table.schema) as writer:
        if not len(frame):
            writer.write_table(table)
            return
        starts = np.flatnonzero(np.r_[True, sessions[1:] != sessions[:-1]])
        for st, end in zip(starts, np.r_[starts[1:], len(frame)]):
            writer.write_table(table.slice(st, end - st))


def _write_asset_db(asset_db_writer, equities: pd.DataFrame, exchanges: pd.DataFrame):
    """``AssetDBWriter.write`` for one row per sid, without its per-symbol pandas ``apply``
    (~5 ms a sid: 35 s for a full market). Builds exactly the frames zipline's own
    ``_normalize_equities`` would for single-row sids and hands them to ``write_direct``."""
    from zipline.assets.asset_writer import split_delimited_symbol

    def epoch_ns(col):
        return pd.DatetimeIndex(equities[col]).asi8

    parts = [split_delimited_symbol(s) for s in equities["symbol"]]
    mappings = pd.DataFrame({
        "sid": equities.index.to_numpy(),
        "symbol": equities["symbol"].str.upper().to_numpy(),
        "company_symbol": [p[0] for p in parts],
        "share_class_symbol": [p[1] for p in parts],
        "start_date": epoch_ns("start_date"),
        "end_date": epoch_ns("end_date"),
    })
    direct = pd.DataFrame({
        "asset_name": equities["asset_name"],
        "start_date": epoch_ns("start_date"),
        "end_date": epoch_ns("end_date"),
        "first_traded": epoch_ns("first_traded"),
        "auto_close_date": epoch_ns("auto_close_date"),
        "exchange": equities["exchange"],
    }, index=equities.index)
    # write_direct looks exchanges up by name before it sets their index (a zipline quirk):
    # index by name and keep the column so both of its code paths work.
    exchanges = exchanges.set_index(exchanges["exchange"].to_numpy())
    asset_db_writer.write_direct(equities=direct, equity_symbol_mappings=mappings,
                                 exchanges=exchanges)


def _write_minute_table(writer, sid: int, end_ns: np.ndarray, cols: dict, ratio: int):
    """Write one sid's whole minute table in a single bcolz call.

    Produces exactly what ``BcolzMinuteBarWriter.write_cols`` writes for a sid written once --
    uint32 columns scaled by zipline's own ``convert_cols``, one slot per minute of the
    writer's minute index (``minutes_per_day`` per session), zeros where there is no bar, the
    table ending at the sid's last bar -- without its create-empty / zero-pad / reopen /
    append sequence, which flushes and re-scans the table on disk several times per sid.
    """
    import bcolz
    from zipline.data.bcolz_minute_bars import convert_cols

    index = writer._minute_index.values.astype("datetime64[ns]").view(np.int64)
    pos = np.searchsorted(index, end_ns)
    if (pos >= len(index)).any() or (index[np.minimum(pos, len(index) - 1)] != end_ns).any():
        bad = end_ns[(pos >= len(index)) | (index[np.minimum(pos, len(index) - 1)] != end_ns)][0]
        raise ValueError(f"sid {sid}: {pd.Timestamp(bad, tz='UTC')} is not a minute of the "
                         "bundle's calendar")
    scaled = convert_cols(cols, ratio, sid, "raise")
    length = int(pos[-1]) + 1
    columns = []
    for values in scaled:
        full = np.zeros(length, dtype=np.uint32)
        full[pos] = values
        columns.append(full)
    path = writer.sidpath(sid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    table = bcolz.ctable(rootdir=path, columns=columns,
                         names=["open", "high", "low", "close", "volume"],
                         expectedlen=writer._expectedlen, mode="w")
    table.flush()


class _Columns(dict):
    """Column arrays of one sid, shaped the way ``BcolzDailyBarWriter._write_internal`` reads a
    ctable (``len()`` = rows, ``[name]`` = column)."""

    def __len__(self):
        return len(self["day"])


def _dense_daily_columns(d: pd.DataFrame, sessions: pd.DatetimeIndex):
    """(sid, columns) per sid, dense over every session of its life, in zipline's storage units.

    One vectorised conversion for all sids (zipline's own per-sid ``to_ctable`` costs ~5 ms
    a sid in pandas). Prices x1000 rounded to uint32 exactly as zipline does; a session
    without trades gets zeros, which zipline reads back as NaN prices and zero volume.
    """
    pos = sessions.get_indexer(pd.DatetimeIndex(d["day"]))
    if (pos < 0).any():
        raise ValueError(f"daily bar on a non-session: {d['day'][pos < 0].iloc[0]}")
    sid = d["sid"].to_numpy()
    starts, lengths = _group_bounds(sid)
    first = pos[starts]
    last = pos[starts + lengths - 1]
    span = last - first + 1
    offsets = np.concatenate([[0], np.cumsum(span)])
    owner = np.repeat(np.arange(len(starts)), lengths)
    target = offsets[owner] + (pos - first[owner])
    total = int(offsets[-1])
    out = {}
    for col in ("open", "high", "low", "close"):
        arr = np.zeros(total, dtype=np.uint32)
        arr[target] = np.nan_to_num(d[col].to_numpy() * 1000).round().astype(np.uint32)
        out[col] = arr
    vol = np.zeros(total, dtype=np.uint32)
    vol[target] = d["volume"].to_numpy().astype(np.uint32)
    out["volume"] = vol
    session_seconds = sessions.values.astype("datetime64[s]").astype(np.int64)
    day_idx = np.concatenate([np.arange(f, l + 1) for f, l in zip(first, last)]) if len(first) else []
    out["day"] = session_seconds[day_idx].astype(np.uint32)
    for i, s in enumerate(sid[starts]):
        sl = slice(offsets[i], offsets[i + 1])
        cols = _Columns({k: v[sl] for k, v in out.items()})
        cols["day"] = cols["day"].tolist()  # zipline stores day[0] in JSON attrs: needs an int
        yield int(s), cols


# ----------------------------------------------------------------------------- ingest
@dataclass
class IngestReport:
    days_read: int = 0
    rows_read: int = 0
    regular_rows: int = 0
    premarket_rows: int = 0
    afterhours_rows: int = 0
    other_hours_rows: int = 0
    minute_rows_written: int = 0
    file_counts: dict = field(default_factory=dict)  # summed flat-file counts
    skipped_rows: list = field(default_factory=list)
    unstorable_values: list = field(default_factory=list)
    low_precision_daily: list = field(default_factory=list)
    excluded_tickers: int = 0
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)  # wall time per phase

    def add_counts(self, counts):
        for k, v in counts.items():
            self.file_counts[k] = self.file_counts.get(k, 0) + int(v)


class _Ingest:
    """One ingest run; see the module docstring for the passes."""

    def __init__(self, config: PolygonBundleConfig, calendar, start_session, end_session,
                 show_progress: bool):
        self.config = config
        self.calendar = calendar
        self.start_session = pd.Timestamp(start_session)
        self.end_session = pd.Timestamp(end_session)
        self.show = show_progress
        self.report = IngestReport()
        self.reference = load_reference_assets(config.root)
        self.ref_types = (self.reference.drop_duplicates("ticker", keep="last")
                          .set_index("ticker")["type"].to_dict())

    # -- universe ---------------------------------------------------------------------
    def in_universe(self, ticker: str) -> bool:
        cfg = self.config
        if cfg.tickers is not None and ticker not in cfg.tickers:
            return False
        if cfg.types is not None and self.ref_types.get(ticker) not in cfg.types:
            return False
        return True

    def wants_minutes(self, ticker: str) -> bool:
        mt = self.config.minute_tickers
        if mt == "all":
            return True
        if mt == "none":
            return False
        if isinstance(mt, str) and mt.startswith("types:"):
            return self.ref_types.get(ticker) in mt[6:].split(",")
        return ticker in mt

    def _symbol_flags(self, symbols):
        """Per unique symbol of a file: (in universe, gets minute bars, global ticker id)."""
        uni = np.fromiter((self.in_universe(t) for t in symbols), bool, len(symbols))
        mins = np.fromiter((u and self.wants_minutes(t) for t, u in zip(symbols, uni)), bool,
                           len(symbols))
        ids = np.fromiter((self.ticker_ids.setdefault(t, len(self.ticker_ids)) for t in symbols),
                          np.int64, len(symbols))
        return uni, mins, ids

    # -- pass 1 -----------------------------------------------------------------------
    def read_days(self, tmpdir: Path):
        cfg = self.config
        minute_files = layout.list_day_files(cfg.root, layout.MINUTE_DATASET,
                                             self.start_session, self.end_session)
        day_files = layout.list_day_files(cfg.root, layout.DAY_DATASET,
                                          self.start_session, self.end_session)
        sessions = self.calendar.sessions_in_range(self.start_session, self.end_session)
        source = cfg.daily_source
        if source == "auto":
            source = "minute" if minute_files else "day"
        self.daily_source = source
        if not minute_files and not day_files:
            raise FileNotFoundError(
                f"no Polygon day files under {layout.sip_dir(cfg.root)} between "
                f"{self.start_session.date()} and {self.end_session.date()}; run "
                "`gapline download` or point GAPLINE_DATA at your flat files"
            )
        if source == "day" and not day_files:
            raise FileNotFoundError(f"daily_source=day but no {layout.DAY_DATASET} files under "
                                    f"{layout.sip_dir(cfg.root)}")
        not_sessions = sorted((set(minute_files) | set(day_files)) - set(sessions))
        if not_sessions:
            self.report.notes.append(
                f"ignored {len(not_sessions)} day file(s) dated on non-sessions, e.g. "
                f"{not_sessions[0].date()}")
        source_files = minute_files if source == "minute" else day_files
        missing = [s for s in sessions if s not in source_files]
        if missing:
            self.report.notes.append(f"{len(missing)} session(s) have no {source} file, e.g. "
                                     f"{missing[0].date()}: no bars for them")

        self.ticker_ids: dict[str, int] = {}
        self.n_buckets = 1
        self.bucket_files: dict[int, list[Path]] = {}
        daily_parts, ext_parts = [], []
        work = sorted(s for s in sessions if s in minute_files or s in day_files)
        minute_work = [d for d in work if d in minute_files]
        prefetched = _prefetch(lambda d: read_day_file(minute_files[d], d, "minute", cfg.bad_rows),
                               minute_work)
        for i, day in enumerate(_Progress(work, "reading day files", self.show)):
            if day in minute_files:
                frame = next(prefetched)
                self._note_frame(frame)
                if i == 0:
                    est = max(len(frame), 1) * len(work)
                    self.n_buckets = int(np.clip(np.ceil(est / ROWS_PER_BUCKET), 1, 512))
                daily, ext = self._split_minute_frame(frame, day, tmpdir)
                if source == "minute" and daily is not None:
                    daily_parts.append(daily)
                if ext is not None:
                    ext_parts.append(ext)
            if source == "day" and day in day_files:
                frame = read_day_file(day_files[day], day, "day", cfg.bad_rows)
                self._note_frame(frame)
                uni, _, _ = self._symbol_flags(frame.symbols)
                keep = uni[frame.codes]
                daily_parts.append(pd.DataFrame({
                    "ticker": frame.symbols[frame.codes[keep]], "day": day,
                    "open": frame.open[keep], "high": frame.high[keep], "low": frame.low[keep],
                    "close": frame.close[keep], "volume": frame.volume[keep]}))
            self.report.days_read += 1
        self.daily = (pd.concat(daily_parts, ignore_index=True) if daily_parts else
                      pd.DataFrame(columns=["ticker", "day", "open", "high", "low", "close", "volume"]))
        self.extended = pd.concat(ext_parts, ignore_index=True) if ext_parts else None
        self.id_tickers = np.array(list(self.ticker_ids), dtype=object)

    def _note_frame(self, frame):
        self.report.rows_read += len(frame)
        self.report.add_counts({k: v for k, v in frame.counts.items() if k != "rows"})
        self.report.skipped_rows.extend(frame.skipped[: max(0, 1000 - len(self.report.skipped_rows))])

    def _split_minute_frame(self, frame, day, tmpdir):
        cal = self.calendar
        ws = frame.window_start
        end_label = ws + NS_PER_MINUTE
        first_minute = cal.session_first_minute(day).value  # 09:31 ET: right-labelled
        last_minute = cal.session_last_minute(day).value    # 16:00 ET, 13:00 on early closes
        open_ns = cal.session_open(day).value
        close_ns = cal.session_close(day).value
        pm_start = pd.Timestamp(day).tz_localize("America/New_York") + PREMARKET_START
        regular = (end_label >= first_minute) & (end_label <= last_minute)
        premarket = (ws >= pm_start.value) & (ws < open_ns)
        afterhours = (ws >= close_ns) & (ws < close_ns + EXTENDED_HOURS_SPAN.value)
        self.report.regular_rows += int(regular.sum())
        self.report.premarket_rows += int(premarket.sum())
        self.report.afterhours_rows += int(afterhours.sum())
        self.report.other_hours_rows += int((~(regular | premarket | afterhours)).sum())

        uni, mins, ids = self._symbol_flags(frame.symbols)
        self.report.excluded_tickers = max(self.report.excluded_tickers, int((~uni).sum()))
        codes = frame.codes
        in_uni = uni[codes]
        cols = (codes, ws, frame.open, frame.high, frame.low, frame.close, frame.volume)

        def subset(mask):
            return [a[mask] for a in cols]

        def with_tickers(agg):
            agg["ticker"] = frame.symbols[agg["ticker"]]
            return pd.DataFrame(agg)

        reg = regular & in_uni
        daily = _ohlcv_by_ticker(*subset(reg))
        daily = with_tickers(daily).assign(day=day) if daily is not None else None

        ext = []
        for prefix, mask in (("pm", premarket & in_uni), ("ah", afterhours & in_uni)):
            agg = _ohlcv_by_ticker(*subset(mask), dollar=True)
            if agg is None:
                continue
            agg = with_tickers(agg).rename(columns={"close": "last"})
            ext.append(agg.set_index("ticker").add_prefix(prefix + "_"))
        ext_frame = pd.concat(ext, axis=1).reset_index().assign(session=day) if ext else None

        # Regular-session bars of minute tickers -> bucket files for pass 2 (ticker as int id).
        mmask = reg & mins[codes]
        if mmask.any():
            c, _, o, h, l, cl, v = subset(mmask)
            tid = ids[c]
            bucket_of_symbol = np.array([_bucket_of(t, self.n_buckets) for t in frame.symbols],
                                        np.int64)
            buckets = bucket_of_symbol[c]
            table = pa.table({"tid": tid, "end_ns": end_label[mmask], "open": o, "high": h,
                              "low": l, "close": cl, "volume": v})
            order = np.argsort(buckets, kind="stable")
            starts, lengths = _group_bounds(buckets[order])
            for st, n in zip(starts, lengths):
                b = int(buckets[order[st]])
                path = tmpdir / f"b{b:04d}" / f"{day:%Y%m%d}.arrow"
                path.parent.mkdir(exist_ok=True)
                with pa.OSFile(str(path), "wb") as sink, \
                        pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table.take(pa.array(order[st:st + n])))
                self.bucket_files.setdefault(b, []).append(path)
        return daily, ext_frame

    # -- assets ------------------------------------------------------------------------
    def assign_sids(self):
        """One sid per (ticker, company): a reused ticker's bars are split at delisting dates."""
        daily = self.daily
        if daily.empty:
            raise ValueError(
                "no bars to ingest after filtering (check tickers/types options and the date range)")
        ref = self.reference
        first_last = daily.groupby("ticker")["day"].agg(["min", "max"])
        counts = ref.groupby("ticker").size() if len(ref) else pd.Series(dtype=int)
        multi = set(counts[counts > 1].index) & set(first_last.index)
        # Tickers with at most one reference entry: one sid over the whole life.
        single = first_last.drop(index=list(multi))
        one_ref = ref[~ref["ticker"].isin(multi)].drop_duplicates("ticker", keep="last")
        rows = single.rename(columns={"min": "start_date", "max": "end_date"}).join(
            one_ref.set_index("ticker"), how="left").reset_index(names="ticker")
        parts = [rows]
        # Reused tickers: delisted companies first (by date), the active one last; a bar on
        # day d belongs to the first company whose delisting date is >= d.
        for ticker in sorted(multi):
            entries = ref[ref["ticker"] == ticker]
            entries = entries.assign(_k=entries["delisted_date"].fillna(pd.Timestamp.max))
            entries = entries.sort_values("_k").drop(columns="_k").reset_index(drop=True)
            days = np.sort(daily.loc[daily["ticker"] == ticker, "day"].unique())
            bounds = entries["delisted_date"].to_numpy()
            lo = 0
            for i in range(len(entries)):
                last = i == len(entries) - 1
                hi = len(days) if last or pd.isna(bounds[i]) else \
                    int(np.searchsorted(days, bounds[i], side="right"))
                if hi > lo:
                    parts.append(entries.iloc[[i]].assign(start_date=pd.Timestamp(days[lo]),
                                                          end_date=pd.Timestamp(days[hi - 1])))
                lo = max(lo, hi)
        assets = pd.concat(parts, ignore_index=True)
        assets["symbol"] = assets["ticker"].str.upper()
        assets["name"] = assets["name"].where(assets["name"].notna(), assets["ticker"])
        keep = ["ticker", "symbol", "name", "type", "primary_exchange", "composite_figi",
                "share_class_figi", "cik", "active", "delisted_utc",
                "share_class_shares_outstanding", "weighted_shares_outstanding", "list_date",
                "start_date", "end_date"]
        for c in keep:
            if c not in assets:
                assets[c] = None
        assets = assets[keep].sort_values(["ticker", "start_date"]).reset_index(drop=True)
        assets = assets.astype({c: object for c in keep if c not in ("start_date", "end_date")})
        assets = assets.where(assets.notna(), None)
        assets.index.name = "sid"
        upper = assets.groupby("symbol")["ticker"].nunique()
        clash = upper[upper > 1]
        if len(clash):
            raise ValueError(
                f"tickers differing only by case map to one zipline symbol: {list(clash.index)}; "
                "zipline upper-cases symbols")
        self.assets = assets
        self.sid_of_ticker = {t: sid for sid, t in assets["ticker"].items() if t not in multi}
        self.periods = {t: [(row.end_date, sid) for sid, row in
                            assets[assets["ticker"] == t].iterrows()] for t in multi}

    def map_sids(self, tickers, days) -> np.ndarray:
        """The sid owning each (ticker, day); -1 for tickers not ingested."""
        tickers = np.asarray(tickers, dtype=object)
        sids = pd.Series(tickers).map(self.sid_of_ticker).fillna(-1).to_numpy(np.int64)
        for ticker, periods in self.periods.items():
            m = tickers == ticker
            if m.any():
                ends = np.array([p[0] for p in periods], dtype="datetime64[ns]")
                idx = np.searchsorted(ends, np.asarray(days)[m].astype("datetime64[ns]"),
                                      side="left").clip(0, len(periods) - 1)
                sids[m] = np.array([p[1] for p in periods], dtype=np.int64)[idx]
        return sids

    # -- writers ----------------------------------------------------------------------
    def write_daily(self, daily_bar_writer):
        d = self.daily
        d = d.assign(sid=self.map_sids(d["ticker"].to_numpy(), d["day"].to_numpy()))
        over = d["volume"] > UINT32_MAX
        if over.any():
            for _, r in d[over].head(100).iterrows():
                self.report.unstorable_values.append(
                    f"daily {r['ticker']} {r['day'].date()}: volume {r['volume']:.0f} clipped "
                    f"to {UINT32_MAX} (zipline stores uint32)")
            d.loc[over, "volume"] = UINT32_MAX
        # Daily bars are stored x1000 in uint32: a price above ~$4.29M cannot be stored at all.
        too_big = d[["open", "high", "low", "close"]].max(axis=1) * 1000 > UINT32_MAX
        if too_big.any():
            for _, r in d[too_big].head(100).iterrows():
                self.report.unstorable_values.append(
                    f"daily {r['ticker']} {r['day'].date()}: high {r['high']:.2f} exceeds what "
                    "zipline's x1000 uint32 daily storage holds; bar stored as no-trade (NaN)")
            d.loc[too_big, ["open", "high", "low", "close", "volume"]] = 0.0
        tiny = (d["low"] < 0.001)
        if tiny.any():
            self.report.low_precision_daily.append(
                f"{int(tiny.sum())} daily bar(s) below $0.001 lose digits in zipline's x1000 daily "
                f"storage (minute bars keep them), e.g. {d.loc[tiny, 'ticker'].iloc[0]}")
        sessions = self.calendar.sessions_in_range(self.start_session, self.end_session)
        d = d.sort_values(["sid", "day"])
        daily_bar_writer._write_internal(
            _Progress(list(_dense_daily_columns(d, sessions)), "writing daily bars", self.show),
            None)

    def write_minutes(self, minute_bar_writer, tmpdir: Path):
        ratios: dict[int, int] = {}
        minute_bar_writer._ohlc_ratios_per_sid = ratios  # read by write_cols for each sid
        for b in _Progress(sorted(self.bucket_files), "writing minute bars (buckets)", self.show):
            table = pa.concat_tables(
                pa.ipc.open_file(str(p)).read_all() for p in self.bucket_files[b])
            tid = table.column("tid").to_numpy()
            # Files were appended in day order and are time-sorted within a day, so a stable
            # sort by ticker id leaves each ticker's bars in time order.
            order = np.argsort(tid, kind="stable")
            cols = {k: table.column(k).to_numpy()[order] for k in
                    ("end_ns", "open", "high", "low", "close", "volume")}
            tid = tid[order]
            del table
            starts, lengths = _group_bounds(tid)
            for s, n in zip(starts, lengths):
                ticker = self.id_tickers[tid[s]]
                sl = slice(s, s + n)
                end_ns = cols["end_ns"][sl]
                if ticker in self.periods:  # reused ticker: split its bars by company
                    days = (pd.DatetimeIndex(end_ns - 1, tz="UTC").tz_convert("America/New_York")
                            .tz_localize(None).normalize().to_numpy("datetime64[ns]"))
                    sids = self.map_sids(np.full(len(days), ticker, dtype=object), days)
                else:
                    sids = np.full(len(end_ns), self.sid_of_ticker[ticker], dtype=np.int64)
                for sid in np.unique(sids):
                    m = sids == sid
                    self._write_sid(minute_bar_writer, ratios, int(sid), ticker, end_ns[m],
                                    {k: cols[k][sl][m] for k in ("open", "high", "low", "close",
                                                                "volume")})
            for p in self.bucket_files[b]:
                p.unlink()
        # Sids outside the minute subset get an empty table: zipline's minute reader treats a
        # short table as "no trades" (NaN price, zero volume) but raises NoDataForSid when the
        # table is missing, which would crash a minute backtest on any such screened name.
        empty = [sid for sid in self.assets.index if sid not in ratios]
        for sid in _Progress(empty, "empty minute tables (daily-only sids)", self.show and len(empty) > 0):
            minute_bar_writer._ensure_ctable(int(sid))
        # The writer's metadata was written at construction; rewrite it with the ratios.
        from zipline.data.bcolz_minute_bars import BcolzMinuteBarMetadata
        BcolzMinuteBarMetadata(
            minute_bar_writer._default_ohlc_ratio, ratios, self.calendar,
            minute_bar_writer._start_session, minute_bar_writer._end_session,
            minute_bar_writer._minutes_per_day,
        ).write(minute_bar_writer._rootdir)
        return ratios

    def _write_sid(self, writer, ratios, sid, ticker, end_ns, cols):
        ratio = ohlc_ratio_for(float(np.nanmax(cols["high"])))
        ratios[sid] = ratio
        vol = cols["volume"]
        over = vol > UINT32_MAX
        if over.any():
            i = int(np.flatnonzero(over)[0])
            self.report.unstorable_values.append(
                f"minute {ticker} {pd.Timestamp(end_ns[i], tz='UTC')}: {int(over.sum())} bar(s) "
                f"with volume above {UINT32_MAX} clipped (zipline would zero the whole bar)")
            cols["volume"] = np.minimum(vol, UINT32_MAX)
        _write_minute_table(writer, sid, end_ns, cols, ratio)
        self.report.minute_rows_written += len(end_ns)

    def write_assets(self, asset_db_writer, ratios):
        a = self.assets
        exchange = a["primary_exchange"].fillna("UNKNOWN")
        equities = pd.DataFrame({
            "symbol": a["symbol"],
            "asset_name": a["name"],
            "start_date": a["start_date"],
            "end_date": a["end_date"],
            "first_traded": a["start_date"],
            # zipline closes positions the day after an asset's last bar
            "auto_close_date": a["end_date"] + pd.Timedelta(days=1),
            "exchange": exchange,
        }, index=a.index)
        exchanges = pd.DataFrame({"exchange": sorted(exchange.unique())})
        # canonical_name is the calendar zipline's can_trade() opens (asset.exchange); every US
        # venue keeps the bundle calendar's hours, and a per-venue name would build a calendar
        # per venue in every backtest (~0.5 s each) or raise for one exchange_calendars lacks
        # ("UNKNOWN"). Polygon's MIC stays in asset.exchange_full and gapline/assets.parquet.
        exchanges["canonical_name"] = self.calendar.name
        exchanges["country_code"] = "US"  # without it every Pipeline fails to find a domain
        _write_asset_db(asset_db_writer, equities, exchanges)
        self.assets["has_minute_bars"] = self.assets.index.isin(list(ratios))
        self.assets["ohlc_ratio"] = pd.Series(ratios, dtype="float64").reindex(self.assets.index)

    def write_adjustments(self, adjustment_writer):
        def to_sids(frame, date_col):
            frame = frame.copy()
            frame[date_col] = pd.to_datetime(frame[date_col]).dt.normalize()
            frame["sid"] = self.map_sids(frame["ticker"].to_numpy(), frame[date_col].to_numpy())
            frame = frame[frame["sid"] >= 0]
            # keep only actions inside the asset's life (adjusting data that exists)
            life = self.assets.loc[frame["sid"], ["start_date", "end_date"]].to_numpy()
            dates = frame[date_col].to_numpy()
            return frame[(dates > life[:, 0]) & (dates <= life[:, 1])]

        splits = pd.DataFrame(layout.read_reference(self.config.root, "splits"))
        if not splits.empty:
            splits = to_sids(splits, "execution_date")
            splits = pd.DataFrame({
                "sid": splits["sid"].astype(int),
                # zipline multiplies prices before the date by ratio: 4:1 forward = 1/4
                "ratio": splits["split_from"].astype(float) / splits["split_to"].astype(float),
                "effective_date": splits["execution_date"],
            })
        else:
            splits = None
        divs = pd.DataFrame(layout.read_reference(self.config.root, "dividends"))
        if not divs.empty:
            if "dividend_type" in divs:
                divs = divs[divs["dividend_type"].fillna("CD").isin(DIVIDEND_TYPES)]
            divs = to_sids(divs, "ex_dividend_date")
            ex = divs["ex_dividend_date"]

            def date_or_ex(col):
                return pd.to_datetime(divs[col], errors="coerce").fillna(ex) if col in divs else ex

            divs = pd.DataFrame({
                "sid": divs["sid"].astype(int),
                "amount": divs["cash_amount"].astype(float),
                "ex_date": ex,
                "record_date": date_or_ex("record_date"),
                "declared_date": date_or_ex("declaration_date"),
                "pay_date": date_or_ex("pay_date"),
            })
        else:
            divs = None
        adjustment_writer.write(splits=splits, dividends=divs)
        self.n_splits = 0 if splits is None else len(splits)
        self.n_dividends = 0 if divs is None else len(divs)

    def write_side_tables(self, output_dir: Path):
        side = Path(output_dir) / SIDE_DIR
        side.mkdir(parents=True, exist_ok=True)
        assets = self.assets.reset_index()
        for c in ("cik", "composite_figi", "share_class_figi", "delisted_utc", "list_date", "type",
                  "primary_exchange"):
            assets[c] = assets[c].astype("string")
        for c in ("share_class_shares_outstanding", "weighted_shares_outstanding"):
            assets[c] = pd.to_numeric(assets[c], errors="coerce")
        assets["active"] = assets["active"].astype("boolean")
        assets.to_parquet(side / "assets.parquet", index=False)
        ext = self.extended
        cols = ["session", "sid"] + [f"{p}_{k}" for p in ("pm", "ah") for k in
                                     ("open", "high", "low", "last", "volume", "dollar_volume",
                                      "bars", "last_start")]
        if ext is None or ext.empty:
            ext = pd.DataFrame(columns=cols)
        else:
            ext = ext.assign(sid=self.map_sids(ext["ticker"].to_numpy(), ext["session"].to_numpy()))
            ext = ext[ext["sid"] >= 0]
            for c in cols:
                if c not in ext:
                    ext[c] = np.nan
            ext = ext[cols]
            for p in ("pm", "ah"):
                ext[f"{p}_last_start"] = pd.to_datetime(ext[f"{p}_last_start"], utc=True)
        _write_by_session(ext.sort_values(["session", "sid"]), side / "extended_hours.parquet")
        report = asdict(self.report)
        report.update({
            "config": {k: str(v) for k, v in asdict(self.config).items()},
            "daily_source": self.daily_source,
            "start_session": str(self.start_session.date()),
            "end_session": str(self.end_session.date()),
            "assets": int(len(self.assets)),
            "assets_with_minute_bars": int(self.assets["has_minute_bars"].sum()),
            "splits": self.n_splits,
            "dividends": self.n_dividends,
        })
        (side / "ingest_report.json").write_text(json.dumps(report, indent=1, default=str))
        return report


def ingest_polygon(config: PolygonBundleConfig, asset_db_writer, minute_bar_writer,
                   daily_bar_writer, adjustment_writer, calendar, start_session, end_session,
                   show_progress, output_dir):
    """Run one ingest (see module docstring); returns the ingest report dict."""
    run = _Ingest(config, calendar, start_session, end_session, show_progress)
    tmpdir = Path(tempfile.mkdtemp(prefix="gapline-ingest-"))
    timings = run.report.seconds
    try:
        with _timed(timings, "read_day_files"):
            run.read_days(tmpdir)
        with _timed(timings, "assign_sids"):
            run.assign_sids()
        with _timed(timings, "write_minute_bars"):
            ratios = run.write_minutes(minute_bar_writer, tmpdir)
        with _timed(timings, "write_assets"):
            run.write_assets(asset_db_writer, ratios)
        with _timed(timings, "write_daily_bars"):
            run.write_daily(daily_bar_writer)  # before adjustments: dividend ratios use closes
        with _timed(timings, "write_adjustments"):
            run.write_adjustments(adjustment_writer)
        report = run.write_side_tables(output_dir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    r = run.report
    log.info("ingested %d assets (%d with minute bars), %d minute rows, %d splits, %d dividends; "
             "report: %s", report["assets"], report["assets_with_minute_bars"],
             r.minute_rows_written, run.n_splits, run.n_dividends,
             Path(output_dir) / SIDE_DIR / "ingest_report.json")
    for msg in r.unstorable_values[:5] + r.low_precision_daily + r.notes:
        log.warning(msg)
    if r.skipped_rows:
        log.warning("%d bad row(s) skipped, e.g. %s", r.file_counts.get("bad_rows", 0),
                    r.skipped_rows[0])
    return report


def make_ingest(config_factory):
    """A zipline ingest function; ``config_factory(environ)`` builds the config at ingest time.

    The ingestion folder is removed when anything fails (zipline creates it before calling
    us, and would otherwise load the empty folder as the newest ingestion).
    """
    from .zipline_patches import install_fast_commit

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
                 calendar_name="XNYS"):
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
                start_session=start, end_session=end, minutes_per_day=390)
    zb.ingest(name, environ=environ, show_progress=show_progress)
    return zb.load(name, environ=environ)

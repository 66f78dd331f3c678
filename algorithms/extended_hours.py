"""The one door to the bundle's pre-market / after-hours summaries, with a look-ahead guard.

The ``polygon`` bundle writes ``<ingestion>/gapline/extended_hours.parquet``: one row per
(session, sid) with ``pm_open, pm_high, pm_low, pm_last, pm_volume, pm_dollar_volume,
pm_bars, pm_last_start`` (pre-market 04:00-09:30 ET) and the same ``ah_*`` columns
(after-hours, the close + 4 h). A pre-market row summarises the whole pre-market, so it is
only known once the session has opened: :meth:`ExtendedHours.premarket` raises
:class:`LookAheadError` when asked for a session's row before that session's open (09:30 ET
on regular days), and :meth:`ExtendedHours.afterhours` before the after-hours window has
ended (close + 4 h).

In an algorithm::

    from algorithms.extended_hours import ExtendedHours
    eh = ExtendedHours.for_algorithm(context)            # the bundle being run
    pm = eh.premarket_now(context, data, assets)         # after the open only

The table is opened once per ingestion folder per process and read a session at a time.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

SIDE_TABLE = Path("gapline") / "extended_hours.parquet"
FIELDS = ("open", "high", "low", "last", "volume", "dollar_volume", "bars", "last_start")
AFTER_HOURS_SPAN = pd.Timedelta(hours=4)


class LookAheadError(RuntimeError):
    """Asked for extended-hours data that is not yet known at the simulation time."""


def ingestion_dir_of_algorithm(algo) -> Path:
    """Ingestion folder of the bundle an algorithm runs on (from its asset database path)."""
    engine = getattr(algo.asset_finder, "engine", None)
    database = getattr(getattr(engine, "url", None), "database", None)
    if not database:
        raise FileNotFoundError("cannot locate the bundle's ingestion folder from the asset finder")
    return Path(database).parent


def ingestion_dir_of_bundle(bundle: str, environ=None, timestamp=None) -> Path:
    """Most recent ingestion folder of a registered bundle."""
    import os

    from zipline.data.bundles import core

    environ = os.environ if environ is None else environ
    timestamp = pd.Timestamp.utcnow() if timestamp is None else timestamp
    name = core.most_recent_data(bundle, timestamp, environ=environ)
    return Path(core.pth.data_path([bundle, name], environ=environ))


class _SessionTable:
    """The side table read a session at a time: the ingest writes one Parquet row group per
    session, and the row-group statistics (metadata only) say which group holds which session,
    so a backtest pays for its own days, not for every session of the bundle. Files with other
    row groups work too (each group whose session range covers the day is read and filtered)."""

    CACHED_SESSIONS = 8  # an algorithm reads today's rows, seldom more than a few days back

    def __init__(self, path: str):
        import pyarrow.parquet as pq

        self.file = pq.ParquetFile(path)
        meta = self.file.metadata
        column = self.file.schema_arrow.get_field_index("session")
        self.groups = []  # (first session, last session, row group); None bounds: unknown
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(column).statistics
            if stats is not None and stats.has_min_max:
                self.groups.append((_session(stats.min), _session(stats.max), i))
            else:
                self.groups.append((None, None, i))
        self._cache: dict = {}

    def get(self, session: pd.Timestamp):
        """Rows of ``session`` indexed by sid (None when the session has no rows)."""
        if session in self._cache:
            return self._cache[session]
        wanted = [i for lo, hi, i in self.groups if lo is None or lo <= session <= hi]
        rows = None
        if wanted:
            raw = self.file.read_row_groups(wanted).to_pandas()
            raw = raw[pd.to_datetime(raw["session"]).dt.tz_localize(None).dt.normalize() == session]
            if len(raw):
                rows = raw.assign(sid=raw["sid"].astype("int64")).set_index("sid")
        if len(self._cache) >= self.CACHED_SESSIONS:
            self._cache.pop(next(iter(self._cache)))
        self._cache[session] = rows
        return rows


def _session(value) -> pd.Timestamp:
    """A session label as the table keys it: tz-naive midnight (tz dropped, not converted)."""
    return pd.Timestamp(value).tz_localize(None).normalize()


@functools.lru_cache(maxsize=8)
def _load_table(path: str) -> _SessionTable:
    return _SessionTable(path)


def _calendar():
    from zipline.utils.calendar_utils import get_calendar

    return get_calendar("XNYS")


class ExtendedHours:
    """Pre-market / after-hours rows per (session, asset); see the module docstring."""

    def __init__(self, path, calendar=None):
        path = Path(path)
        if path.is_dir():
            path = path / SIDE_TABLE if (path / SIDE_TABLE).exists() else path / SIDE_TABLE.name
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no extended-hours table; it is written by the polygon bundle's ingest")
        self.path = path
        self.table = _load_table(str(path))
        self.calendar = calendar or _calendar()

    @classmethod
    def for_algorithm(cls, algo) -> "ExtendedHours":
        """The table of the bundle the running algorithm uses (cached on the algorithm)."""
        cached = getattr(algo, "_gapline_extended_hours", None)
        if cached is None:
            cached = cls(ingestion_dir_of_algorithm(algo), calendar=algo.trading_calendar)
            algo._gapline_extended_hours = cached
        return cached

    @classmethod
    def for_bundle(cls, bundle: str, environ=None, timestamp=None) -> "ExtendedHours":
        return cls(ingestion_dir_of_bundle(bundle, environ, timestamp))

    # -- guards -------------------------------------------------------------------------
    def known_from(self, session, part: str = "pm") -> pd.Timestamp:
        """First time (UTC) at which ``part`` of ``session`` is fully known."""
        session = _session(session)
        if part == "pm":
            return self.calendar.session_open(session)
        return self.calendar.session_close(session) + AFTER_HOURS_SPAN

    def _check(self, session, now, part):
        if now is None:
            raise LookAheadError("pass the current simulation time (`now`) to read "
                                 "extended-hours data")
        now = pd.Timestamp(now)
        now = now.tz_localize("UTC") if now.tzinfo is None else now
        known = self.known_from(session, part)
        if now < known:
            what = "pre-market" if part == "pm" else "after-hours"
            raise LookAheadError(
                f"{what} data of {pd.Timestamp(session).date()} is not known before "
                f"{known.tz_convert('America/New_York'):%Y-%m-%d %H:%M %Z} (asked at "
                f"{now.tz_convert('America/New_York'):%Y-%m-%d %H:%M %Z})")

    # -- reads --------------------------------------------------------------------------
    def _rows(self, session, assets, part):
        session = _session(session)
        assets = list(assets)
        sids = [int(getattr(a, "sid", a)) for a in assets]
        cols = [f"{part}_{f}" for f in FIELDS]
        table = self.table.get(session)
        if table is None:
            out = pd.DataFrame(np.nan, index=range(len(assets)), columns=cols)
        else:
            out = table.reindex(sids)[cols].reset_index(drop=True)
        out.index = pd.Index(assets, dtype=object)
        out.columns = list(FIELDS)
        out["last_start"] = pd.to_datetime(out["last_start"], utc=True)
        return out

    def premarket(self, session, assets, now) -> pd.DataFrame:
        """Pre-market summary of ``session`` for ``assets`` (index: the assets as given;
        columns open, high, low, last, volume, dollar_volume, bars, last_start; NaN rows for
        assets without pre-market trades). Raises :class:`LookAheadError` before the open."""
        self._check(session, now, "pm")
        return self._rows(session, assets, "pm")

    def afterhours(self, session, assets, now) -> pd.DataFrame:
        """After-hours summary of ``session``; raises before the after-hours window ended."""
        self._check(session, now, "ah")
        return self._rows(session, assets, "ah")

    def premarket_now(self, algo, data, assets) -> pd.DataFrame:
        """Today's pre-market rows at the simulation's current minute."""
        now = pd.Timestamp(data.current_dt)
        session = self.calendar.minute_to_session(now)
        return self.premarket(session, assets, now)

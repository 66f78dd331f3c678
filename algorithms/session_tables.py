"""Side tables of an ingestion read a session at a time (extended hours, auctions).

The ingest writes these Parquet files with one row group per session; the row-group
statistics (metadata only) say which group holds which session, so a backtest pays for its own
days, not for every session of the bundle.
"""
from __future__ import annotations

import functools

import pandas as pd


class SessionTable:
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
                self.groups.append((session_key(stats.min), session_key(stats.max), i))
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


def session_key(value) -> pd.Timestamp:
    """A session label as the table keys it: tz-naive midnight (tz dropped, not converted)."""
    return pd.Timestamp(value).tz_localize(None).normalize()


@functools.lru_cache(maxsize=8)
def load_session_table(path: str) -> SessionTable:
    return SessionTable(path)

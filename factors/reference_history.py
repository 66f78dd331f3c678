"""Dated reference values joined as of a session: the rule every reader of
``gapline/reference_history.parquet`` uses (:mod:`bundles.polygon.history` writes it).

The rule (:data:`VISIBLE_RULE`): on session ``D`` a column shows the value of the sid's
latest row dated **strictly before** ``D``, never one dated ``D`` or later:

* ``shares_outstanding`` is dated by ``known_date`` (the sample date plus the ingest's
  ``shares_lag_days`` for dated samples: Polygon answers a date from filings whose period of
  report ends by then, filed up to a quarter later). The latest row wins even when its count
  is NaN (unknown: e.g. from a split until a post-split count is known).
* ``security_type`` / ``primary_exchange`` are dated by ``asof_date`` (the sample describes
  the security trading on that day, known at its end); rows without a value are skipped.

Strictly before: a sample asked for day ``X`` may hold what was known only at the end of
``X`` (a split effective that day, a filing of that evening), and a Pipeline row for ``D`` is
computed before ``D`` opens from data through the previous session (zipline's one-session lag
of daily data). A value dated a weekend or holiday is therefore visible from the next session.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from bundles.ingestions import REFERENCE_HISTORY_FILE, SIDE_DIR

HISTORY_TABLE = Path(SIDE_DIR) / REFERENCE_HISTORY_FILE
VISIBLE_RULE = "date < session"  # strictly before the session (see the module docstring)
#: column served -> (history column, date column, skip rows without a value)
JOINS = {
    "shares_outstanding": ("shares_outstanding", "known_date", False),
    "security_type": ("type", "asof_date", True),
    "primary_exchange": ("primary_exchange", "asof_date", True),
}
_DAY_NS = 86_400_000_000_000
_DAY_BITS = 22  # days since 1970 + 2**21 fit in 22 bits until the year 7700


def read_reference_history(path) -> pd.DataFrame | None:
    """The history table of an ingestion (folder, its ``gapline`` folder or the file), with
    naive datetime64 dates; None when the ingestion has none (ingested before gapline wrote
    it: re-ingest)."""
    path = Path(path)
    if path.is_file() and path.name != REFERENCE_HISTORY_FILE:  # e.g. its assets.parquet
        path = path.parent / REFERENCE_HISTORY_FILE
    if path.is_dir():
        inside = path / HISTORY_TABLE
        path = inside if inside.exists() else path / HISTORY_TABLE.name
    if not path.exists():
        return None
    raw = pd.read_parquet(path)
    missing = {"sid", "asof_date", "known_date", "shares_outstanding"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    out = raw.copy()
    out["sid"] = out["sid"].astype("int64")
    for c in ("asof_date", "known_date"):
        d = pd.to_datetime(out[c])
        out[c] = (d.dt.tz_localize(None) if d.dt.tz is not None else d).dt.normalize()
    out["shares_outstanding"] = pd.to_numeric(out["shares_outstanding"],
                                              errors="coerce").astype("float64")
    for c in ("type", "primary_exchange"):
        if c not in out:
            out[c] = None
        s = out[c].astype(object)
        out[c] = s.where(s.notna() & (s != ""), None)
    return out.reset_index(drop=True)


def _days(values) -> np.ndarray:
    return pd.DatetimeIndex(np.asarray(values, dtype="datetime64[ns]")).normalize().asi8 // _DAY_NS


def _composite(sid: np.ndarray, days: np.ndarray) -> np.ndarray:
    return (sid.astype(np.int64) << _DAY_BITS) + (days.astype(np.int64) + (1 << (_DAY_BITS - 1)))


def asof_join(history: pd.DataFrame, column: str, sids, dates, date_col: str | None = None,
              skip_missing: bool | None = None, missing=np.nan) -> np.ndarray:
    """For each pair ``(sids[i], dates[i])`` the ``column`` value of the sid's latest history
    row whose ``date_col`` is strictly before ``dates[i]`` (:data:`VISIBLE_RULE`); ``missing``
    when there is none. Rows keep the file's order among equal dates (the last one wins).

    ``column`` may be a served name (``shares_outstanding``, ``security_type``,
    ``primary_exchange``: the date column and the skipping of rows without a value then come
    from :data:`JOINS`) or a history column with ``date_col`` given."""
    if column in JOINS:
        column, default_date, default_skip = JOINS[column]
        date_col = date_col or default_date
        skip_missing = default_skip if skip_missing is None else skip_missing
    if date_col is None:
        raise ValueError(f"asof_join: no date column for {column!r}")
    sids = np.asarray(sids, dtype=np.int64)
    out = np.full(len(sids), missing, dtype=object if isinstance(missing, str) else float)
    if history is None or not len(history) or not len(sids):
        return out
    h = history
    if skip_missing:
        h = h[h[column].notna()]
    if not len(h):
        return out
    # stable sort by (sid, date): rows of equal dates keep their order in the file
    key = _composite(h["sid"].to_numpy(np.int64), _days(h[date_col].to_numpy()))
    order = np.argsort(key, kind="stable")
    key, values, hsid = key[order], h[column].to_numpy()[order], h["sid"].to_numpy(np.int64)[order]
    pos = np.searchsorted(key, _composite(sids, _days(dates)), side="left") - 1
    ok = (pos >= 0) & (hsid[np.clip(pos, 0, None)] == sids)
    if out.dtype == object:
        picked = values[pos[ok]]
        out[ok] = [missing if v is None or (isinstance(v, float) and np.isnan(v)) else v
                   for v in picked]
    else:
        out[ok] = values[pos[ok]].astype(float)
    return out


def asof_grid(history: pd.DataFrame, column: str, dates, sids, missing=np.nan) -> np.ndarray:
    """:func:`asof_join` over every (date, sid): an array of shape (len(dates), len(sids))."""
    dates = pd.DatetimeIndex(dates)
    sids = np.asarray(sids, dtype=np.int64)
    grid_sids = np.tile(sids, len(dates))
    grid_dates = np.repeat(dates.to_numpy("datetime64[ns]"), len(sids))
    values = asof_join(history, column, grid_sids, grid_dates, missing=missing)
    return values.reshape(len(dates), len(sids))

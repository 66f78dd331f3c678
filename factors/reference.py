"""Polygon reference data as a Pipeline DataSet: security type, exchange, shares outstanding.

The ``polygon`` bundle writes one row per sid to ``<ingestion folder>/gapline/assets.parquet``
(see :mod:`bundles.polygon`). :class:`PolygonReference` exposes three of its columns to
Pipeline and :class:`PolygonReferenceLoader` serves them.

Point in time
-------------
Life span: a row of ``assets.parquet`` describes one company's life under one ticker and
applies to sessions from its ``start_date`` to its ``end_date`` (a reused ticker is already a
separate sid with its own row). Pipeline shows on session ``D`` what was known at the start of
``D``, i.e. data through the previous session, exactly like
:class:`zipline.pipeline.data.EquityPricing`; the loader therefore fills the cell for ``D``
only when the previous session lies inside ``[start_date, end_date]``.

Values: ``shares_outstanding``, and ``security_type`` / ``primary_exchange`` where the security
changed, come from the ingestion's ``gapline/reference_history.parquet`` -- dated ticker
details, per company (:mod:`bundles.polygon.history`) -- joined as of each session: the
latest value dated strictly before ``D`` (:mod:`factors.reference_history`; a share count is
dated by when it counts as known, its sample date plus the ingest's ``shares_lag_days``).
Before a sid's first dated type or exchange, the reference tickers' value (today's
description of the security, ``assets.parquet``) stands in; a share count never does: without
a dated count the value is NaN (unknown). An ingestion made before the history existed has
no dated counts at all (re-ingest).

It is shares **outstanding** (``share_class_shares_outstanding``, else
``weighted_shares_outstanding``), not the float: Polygon/Massive has no dated float (its
``/stocks/vX/float`` gives only the latest value, which would be look-ahead in a backtest).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import logging

from bundles.ingestions import ASSETS_FILE, SIDE_DIR
from zipline.lib.adjusted_array import AdjustedArray
from zipline.lib.labelarray import LabelArray
from zipline.pipeline.data import Column, DataSet
from zipline.pipeline.domain import US_EQUITIES
from zipline.pipeline.loaders.base import PipelineLoader

from .reference_history import asof_grid, read_reference_history

log = logging.getLogger(__name__)

SIDE_TABLE = Path(SIDE_DIR) / ASSETS_FILE

#: Polygon ``type`` codes seen on US stocks (``/v3/reference/tickers/types``), for reference.
SECURITY_TYPES = {
    "CS": "Common Stock",
    "ETF": "Exchange Traded Fund",
    "ETN": "Exchange Traded Note",
    "ETV": "Exchange Traded Vehicle",
    "ADRC": "American Depository Receipt Common",
    "PFD": "Preferred Stock",
    "WARRANT": "Warrant",
    "RIGHT": "Rights",
    "UNIT": "Unit",
    "FUND": "Fund",
    "SP": "Structured Product",
    "OS": "Ordinary Shares",
    "GDR": "Global Depository Receipts",
}


class PolygonReference(DataSet):
    """Polygon reference data per sid (``gapline/assets.parquet`` of the bundle).

    Columns
    -------
    security_type : object (str) classifier, missing value ``""``
        Polygon ``type``: ``CS`` common stock, ``ETF``, ``ADRC``, ``PFD``, ``WARRANT``, ...
        (see :data:`SECURITY_TYPES`). ``PolygonReference.security_type.latest.eq('ETF')``.
    primary_exchange : object (str) classifier, missing value ``""``
        Polygon ``primary_exchange`` MIC, e.g. ``XNAS``, ``XNYS``, ``ARCX``.
    shares_outstanding : float
        Shares outstanding of the share class as known before the session (point in time, see
        the module docstring); NaN when unknown. Not the float.
    """

    domain = US_EQUITIES
    # "" rather than zipline's default None: pandas >= 1 refuses None as a category, so a
    # string classifier whose missing value is None cannot be a Pipeline output column.
    security_type = Column(object, missing_value="")
    primary_exchange = Column(object, missing_value="")
    shares_outstanding = Column(float)


def is_reference_column(column) -> bool:
    """True when ``column`` (bound, possibly specialized) belongs to :class:`PolygonReference`."""
    try:
        generic = column.unspecialize()
    except AttributeError:
        return False
    return generic in _GENERIC_COLUMNS


_GENERIC_COLUMNS = frozenset(c.unspecialize() for c in PolygonReference.columns)


def read_reference_table(path) -> pd.DataFrame:
    """The per-sid side table as a frame indexed by sid: ``security_type``,
    ``primary_exchange`` (today's values, standing in before a sid's first dated one),
    ``start_date``, ``end_date`` and ``snapshot_shares_outstanding`` (the undated count, for
    inspection only: the loader never serves it, it would be look-ahead).

    ``path`` is the ingestion folder, its ``gapline`` folder or the parquet file itself.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SIDE_TABLE if (path / SIDE_TABLE).exists() else path / SIDE_TABLE.name
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no gapline reference table; it is written by the polygon bundle's ingest "
            "(re-run `zipline ingest -b polygon` with this version of gapline)")
    raw = pd.read_parquet(path)
    missing = {"sid", "start_date", "end_date"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")

    def text(col):
        if col not in raw:
            return pd.Series(None, index=raw.index, dtype=object)
        s = raw[col].astype(object)
        return s.where(s.notna(), None).map(lambda v: None if v is None or v == "" else str(v))

    def number(col):
        if col not in raw:
            return pd.Series(np.nan, index=raw.index)
        return pd.to_numeric(raw[col], errors="coerce").astype("float64")

    shares = number("share_class_shares_outstanding").combine_first(
        number("weighted_shares_outstanding"))
    table = pd.DataFrame({
        "security_type": text("type"),
        "primary_exchange": text("primary_exchange"),
        "snapshot_shares_outstanding": shares,
        "start_date": pd.to_datetime(raw["start_date"]).dt.tz_localize(None).dt.normalize(),
        "end_date": pd.to_datetime(raw["end_date"]).dt.tz_localize(None).dt.normalize(),
    })
    table.index = pd.Index(raw["sid"].astype("int64"), name="sid")
    if table.index.has_duplicates:
        raise ValueError(f"{path}: duplicate sids {table.index[table.index.duplicated()][:5].tolist()}")
    return table


class PolygonReferenceLoader(PipelineLoader):
    """Serve :class:`PolygonReference` columns from a bundle's side tables.

    Parameters
    ----------
    table : str, Path or DataFrame
        The ingestion folder (or its ``assets.parquet``), or a frame as returned by
        :func:`read_reference_table` (indexed by sid).
    history : DataFrame, optional
        Dated values (:func:`factors.reference_history.read_reference_history`); read from
        the ingestion folder when ``table`` is one. ``None`` with a frame ``table``: the
        frame's own columns are served over each sid's life (a hand-built table, e.g. in a
        test: a ``shares_outstanding`` column there is the caller's choice).

    Notes
    -----
    For each requested session ``D`` the as-of session is the previous session (the same
    one-session lag :class:`~zipline.pipeline.loaders.USEquityPricingLoader` applies); a sid's
    cell is filled only where ``start_date <= as_of <= end_date`` and is the column's missing
    value (``""`` for the string columns, NaN for ``shares_outstanding``) elsewhere and for
    sids not in the table. Inside that life a cell holds the latest dated value strictly
    before ``D`` (:mod:`factors.reference_history`); the type and exchange fall back to the
    table's value before the first dated one, the share count to NaN. Values change only by
    new dated rows, never retroactively, so no adjustments are produced.
    """

    def __init__(self, table, history=None):
        if isinstance(table, pd.DataFrame):
            self.table, self.history = table, history
        else:
            self.table = read_reference_table(table)
            self.history = history if history is not None else read_reference_history(table)
            if self.history is None:
                log.warning("%s: no %s (ingested before gapline dated its reference data): "
                            "shares_outstanding is unknown (NaN) in every session; re-ingest "
                            "the bundle", table, "reference_history.parquet")
                self.history = _EMPTY_HISTORY

    def load_adjusted_array(self, domain, columns, dates, sids, mask):
        # the session before each requested date (what USEquityPricingLoader's shift_dates
        # gives for the contiguous dates the engine asks for)
        sessions = domain.sessions()
        dates = pd.DatetimeIndex(dates)
        pos = sessions.searchsorted(dates, side="left") - 1
        if len(pos) and pos.min() < 0:
            raise ValueError(f"no session before {dates[0]} in {domain}")
        as_of = sessions[pos].to_numpy("datetime64[ns]")
        sids = np.asarray(sids, dtype="int64")
        rows = self.table.reindex(pd.Index(sids))
        start = rows["start_date"].to_numpy("datetime64[ns]")
        end = rows["end_date"].to_numpy("datetime64[ns]")
        # NaT compares False, so sids missing from the table are never alive here
        alive = (as_of[:, None] >= start[None, :]) & (as_of[:, None] <= end[None, :])
        out = {}
        for column in columns:
            if not is_reference_column(column):
                raise ValueError(f"PolygonReferenceLoader cannot load {column}")
            data = self._values(column, dates, sids, rows)
            data = np.where(alive, data, column.missing_value)
            if column.dtype == np.dtype(object):
                data = LabelArray(data.astype(object), missing_value=column.missing_value)
            else:
                data = data.astype(column.dtype)
            out[column] = AdjustedArray(data, adjustments={}, missing_value=column.missing_value)
        return out

    def _values(self, column, dates, sids, rows) -> np.ndarray:
        """(dates x sids) values before the life-span mask."""
        name, missing = column.name, column.missing_value
        static = rows[name].to_numpy() if name in rows else np.full(len(sids), None)
        if column.dtype == np.dtype(object):
            static = np.array([missing if v is None or v is pd.NA else v for v in static],
                              dtype=object)
        else:
            static = pd.to_numeric(pd.Series(static), errors="coerce").to_numpy(float)
        if self.history is None:  # a hand-built table: its values over each life
            return np.repeat(static[None, :], len(dates), axis=0)
        dated = asof_grid(self.history, name, dates, sids,
                          missing=missing if column.dtype == np.dtype(object) else np.nan)
        if name == "shares_outstanding":
            return dated  # never today's snapshot: NaN until a dated count is known
        return np.where(dated == missing, static[None, :], dated)


_EMPTY_HISTORY = pd.DataFrame({"sid": pd.Series(dtype="int64"),
                               "asof_date": pd.Series(dtype="datetime64[ns]"),
                               "known_date": pd.Series(dtype="datetime64[ns]"),
                               "shares_outstanding": pd.Series(dtype="float64"),
                               "type": pd.Series(dtype=object),
                               "primary_exchange": pd.Series(dtype=object)})


# ----------------------------------------------------------------------------- filters
def SecurityType():
    """Polygon security type of each asset as a string classifier (``.eq('ETF')``)."""
    return PolygonReference.security_type.latest


def PrimaryExchange():
    """Polygon primary exchange (MIC) of each asset as a string classifier (``.eq('XNAS')``)."""
    return PolygonReference.primary_exchange.latest


def SharesOutstanding():
    """Shares outstanding as known before each session (dated, see the module docstring) as a
    factor; NaN when unknown. Shares outstanding, not the float."""
    return PolygonReference.shares_outstanding.latest


def CommonStock():
    """Filter: Polygon type is ``CS`` (common stock; excludes ETFs, ADRs, preferreds, warrants).

    ``PolygonReference.security_type.latest.eq("CS")`` -- the analogue of QuantRocket's
    ``usstock_SecurityType2 == "Common Stock"``. Assets without a reference row are excluded.
    """
    return PolygonReference.security_type.latest.eq("CS")

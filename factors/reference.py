"""Polygon reference data as a Pipeline DataSet: security type, exchange, shares outstanding.

The ``polygon`` bundle writes one row per sid to ``<ingestion folder>/gapline/assets.parquet``
(see :mod:`bundles.polygon`). :class:`PolygonReference` exposes three of its columns to
Pipeline and :class:`PolygonReferenceLoader` serves them.

Point in time
-------------
A row describes one company's life under one ticker: it applies to sessions from its
``start_date`` to its ``end_date`` (a reused ticker is already a separate sid with its own
row). Pipeline shows on session ``D`` what was known at the start of ``D``, i.e. data through
the previous session, exactly like :class:`zipline.pipeline.data.EquityPricing`; the loader
therefore fills the cell for ``D`` when the previous session lies inside
``[start_date, end_date]`` and leaves the missing value elsewhere.

Caveat: ``shares_outstanding`` is a snapshot
--------------------------------------------
Polygon's ticker details give *one* share count per ticker, as of the day they were
downloaded, not a history. The loader repeats that value over the asset's whole life, so in a
backtest it is look-ahead for older dates (counts change with offerings, buybacks and
splits). Use it to bucket names coarsely, not as a point-in-time fundamental. It is shares
**outstanding** (``share_class_shares_outstanding``, else ``weighted_shares_outstanding``),
not the float.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from bundles.ingestions import ASSETS_FILE, SIDE_DIR
from zipline.lib.adjusted_array import AdjustedArray
from zipline.lib.labelarray import LabelArray
from zipline.pipeline.data import Column, DataSet
from zipline.pipeline.domain import US_EQUITIES
from zipline.pipeline.loaders.base import PipelineLoader

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
        Shares outstanding of the share class (a snapshot, see the module docstring).
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
    """The side table as a frame indexed by sid with the columns the loader serves.

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
        "shares_outstanding": shares,
        "start_date": pd.to_datetime(raw["start_date"]).dt.tz_localize(None).dt.normalize(),
        "end_date": pd.to_datetime(raw["end_date"]).dt.tz_localize(None).dt.normalize(),
    })
    table.index = pd.Index(raw["sid"].astype("int64"), name="sid")
    if table.index.has_duplicates:
        raise ValueError(f"{path}: duplicate sids {table.index[table.index.duplicated()][:5].tolist()}")
    return table


class PolygonReferenceLoader(PipelineLoader):
    """Serve :class:`PolygonReference` columns from a bundle's ``gapline/assets.parquet``.

    Parameters
    ----------
    table : str, Path or DataFrame
        The ingestion folder (or the parquet file), or a frame as returned by
        :func:`read_reference_table` (indexed by sid).

    Notes
    -----
    For each requested session ``D`` the as-of session is the previous session (the same
    one-session lag :class:`~zipline.pipeline.loaders.USEquityPricingLoader` applies); a sid's
    value is filled where ``start_date <= as_of <= end_date`` and is the column's missing value
    (``""`` for the string columns, NaN for ``shares_outstanding``) elsewhere and for sids not in the table. The values never change within
    a sid's life, so no adjustments are produced.
    """

    def __init__(self, table):
        self.table = table if isinstance(table, pd.DataFrame) else read_reference_table(table)

    def load_adjusted_array(self, domain, columns, dates, sids, mask):
        # the session before each requested date (what USEquityPricingLoader's shift_dates
        # gives for the contiguous dates the engine asks for)
        sessions = domain.sessions()
        pos = sessions.searchsorted(pd.DatetimeIndex(dates), side="left") - 1
        if len(pos) and pos.min() < 0:
            raise ValueError(f"no session before {dates[0]} in {domain}")
        as_of = sessions[pos].to_numpy("datetime64[ns]")
        rows = self.table.reindex(pd.Index(np.asarray(sids, dtype="int64")))
        start = rows["start_date"].to_numpy("datetime64[ns]")
        end = rows["end_date"].to_numpy("datetime64[ns]")
        # NaT compares False, so sids missing from the table are never alive here
        alive = (as_of[:, None] >= start[None, :]) & (as_of[:, None] <= end[None, :])
        out = {}
        for column in columns:
            if not is_reference_column(column):
                raise ValueError(f"PolygonReferenceLoader cannot load {column}")
            values = rows[column.name].to_numpy()
            if column.dtype == np.dtype(object):
                filled = np.array([column.missing_value if v is None else v for v in values],
                                  dtype=object)
                data = np.where(alive, filled[None, :], column.missing_value)
                data = LabelArray(data, missing_value=column.missing_value)
            else:
                data = np.where(alive, values[None, :].astype(column.dtype),
                                column.missing_value)
            out[column] = AdjustedArray(data, adjustments={}, missing_value=column.missing_value)
        return out


# ----------------------------------------------------------------------------- filters
def SecurityType():
    """Polygon security type of each asset as a string classifier (``.eq('ETF')``)."""
    return PolygonReference.security_type.latest


def PrimaryExchange():
    """Polygon primary exchange (MIC) of each asset as a string classifier (``.eq('XNAS')``)."""
    return PolygonReference.primary_exchange.latest


def SharesOutstanding():
    """Shares outstanding (a snapshot, see the module docstring) as a factor."""
    return PolygonReference.shares_outstanding.latest


def CommonStock():
    """Filter: Polygon type is ``CS`` (common stock; excludes ETFs, ADRs, preferreds, warrants).

    ``PolygonReference.security_type.latest.eq("CS")`` -- the analogue of QuantRocket's
    ``usstock_SecurityType2 == "Common Stock"``. Assets without a reference row are excluded.
    """
    return PolygonReference.security_type.latest.eq("CS")

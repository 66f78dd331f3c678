"""gapline's side tables in the ingestion folder: ``assets.parquet``, ``extended_hours.parquet``,
``auctions.parquet``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..ingestions import ASSETS_FILE, AUCTIONS_FILE, EXTENDED_HOURS_FILE, side_dir
from .auctions import auctions_table
from .premarket_cut import COLUMNS as PMCUT_COLUMNS
from .sids import SidMap

SUMMARY_FIELDS = ("open", "high", "low", "last", "volume", "dollar_volume", "bars", "last_start")
EXTENDED_COLUMNS = (["session", "sid"] + [f"pm_{k}" for k in SUMMARY_FIELDS] + PMCUT_COLUMNS
                    + [f"ah_{k}" for k in SUMMARY_FIELDS])


def write_side_tables(output_dir: Path, assets: pd.DataFrame, extended: pd.DataFrame | None,
                      auctions: pd.DataFrame | None, sids: SidMap) -> int:
    """Polygon's per-sid reference (``assets``: the asset table after the asset db was written),
    the per-session pre-market / after-hours summaries (``extended``, by ticker) and the
    auction prints (``auctions``, by ticker); returns the number of auction rows written."""
    side = side_dir(output_dir)
    side.mkdir(parents=True, exist_ok=True)
    assets = assets.reset_index()
    for c in ("cik", "composite_figi", "share_class_figi", "delisted_utc", "list_date", "type",
              "primary_exchange"):
        assets[c] = assets[c].astype("string")
    for c in ("share_class_shares_outstanding", "weighted_shares_outstanding"):
        assets[c] = pd.to_numeric(assets[c], errors="coerce")
    assets["active"] = assets["active"].astype("boolean")
    assets.to_parquet(side / ASSETS_FILE, index=False)
    ext = extended
    cols = EXTENDED_COLUMNS
    if ext is None or ext.empty:
        ext = pd.DataFrame(columns=cols)
    else:
        ext = ext.assign(sid=sids.map(ext["ticker"].to_numpy(), ext["session"].to_numpy()))
        ext = ext[ext["sid"] >= 0]
        for c in cols:
            if c not in ext:
                ext[c] = np.nan
        ext = ext[cols]
        for p in ("pm", "ah"):
            ext[f"{p}_last_start"] = pd.to_datetime(ext[f"{p}_last_start"], utc=True)
    _write_by_session(ext.sort_values(["session", "sid"]), side / EXTENDED_HOURS_FILE)
    table = auctions_table(auctions, sids)
    _write_by_session(table, side / AUCTIONS_FILE)
    return len(table)


def _write_by_session(frame: pd.DataFrame, path: Path):
    """Parquet with one row group per session (``frame`` sorted by session): a backtest reads
    only its day's group, so its cost follows the backtest's days, not the bundle's."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sessions = frame["session"].to_numpy()
    # no dictionary pages: the values are prices, volumes and times, seldom repeated, and
    # trying to dictionary-encode every column chunk doubled the time of writing them
    with pq.ParquetWriter(path, table.schema, use_dictionary=False) as writer:
        if not len(frame):
            writer.write_table(table)
            return
        starts = np.flatnonzero(np.r_[True, sessions[1:] != sessions[:-1]])
        for st, end in zip(starts, np.r_[starts[1:], len(frame)]):
            writer.write_table(table.slice(st, end - st))

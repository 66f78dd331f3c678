"""Every use of zipline's PRIVATE bundle-writer internals, in one module.

Checked against **zipline-reloaded 3.2.1**. On a zipline upgrade, re-read the zipline code
named below and re-run ``tests/bundles/polygon/test_ingest.py`` (it compares :func:`write_minute_table` with
zipline's own ``write_cols`` and reads every bundle back through zipline's readers).

gapline's ingest writes through zipline's writers but skips their slow per-sid pandas paths.
Doing so touches these internals; no module of :mod:`bundles.polygon` touches any of them:

``zipline.data.bcolz_minute_bars``
  1. ``BcolzMinuteBarWriter._minute_index`` -- the writer's minute slots
     (:func:`write_minute_table`);
  2. ``BcolzMinuteBarWriter._expectedlen`` -- bcolz sizing of a sid's table
     (:func:`write_minute_table`);
  3. ``convert_cols`` -- zipline's float -> uint32 scaling (module function, not exported)
     (:func:`write_minute_table`);
  4. ``BcolzMinuteBarWriter._ohlc_ratios_per_sid`` -- the per-sid ratio dict
     (:func:`use_ohlc_ratios`);
  5. ``BcolzMinuteBarWriter._ensure_ctable`` -- an empty table for a sid
     (:func:`ensure_minute_table`);
  6. ``BcolzMinuteBarMetadata`` and the writer's ``_default_ohlc_ratio``, ``_start_session``,
     ``_end_session``, ``_minutes_per_day`` and ``_rootdir`` -- rewriting ``metadata.json``
     with the per-sid ratios (:func:`write_minute_metadata`).

``zipline.data.bcolz_daily_bars``
  7. ``BcolzDailyBarWriter._write_internal(iterator, assets)`` and the shape of the "ctable"
     it reads (``len()`` = rows, ``[name]`` = column, ``["day"][0]`` an int): :class:`DailyColumns`,
     :func:`write_daily_tables`.

``zipline.assets.asset_writer``
  8. ``AssetDBWriter.write_direct`` fed with the frames ``AssetDBWriter._normalize_equities``
     would build (``split_delimited_symbol``, epoch-ns dates, exchanges indexed by name for a
     ``write_direct`` quirk): :func:`write_asset_db`.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd


# ----------------------------------------------------------------------------- minute bars
def write_minute_table(writer, sid: int, end_ns: np.ndarray, cols: dict, ratio: int):
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


def use_ohlc_ratios(writer, ratios: dict) -> None:
    """Make ``ratios`` (sid -> OHLC ratio, filled as sids are written) the writer's per-sid
    ratios, as read by its ``write_cols`` / ``ohlc_ratio_for_sid``."""
    writer._ohlc_ratios_per_sid = ratios


def ensure_minute_table(writer, sid: int) -> None:
    """Create an empty minute table for ``sid`` unless it has one."""
    writer._ensure_ctable(int(sid))


def write_minute_metadata(writer, calendar, ratios: dict) -> None:
    """Rewrite the writer's ``metadata.json`` with the per-sid ``ratios`` (the writer wrote it
    at construction, before the ratios were known)."""
    from zipline.data.bcolz_minute_bars import BcolzMinuteBarMetadata

    BcolzMinuteBarMetadata(
        writer._default_ohlc_ratio, ratios, calendar,
        writer._start_session, writer._end_session,
        writer._minutes_per_day,
    ).write(writer._rootdir)


# ----------------------------------------------------------------------------- daily bars
class DailyColumns(dict):
    """Column arrays of one sid, shaped the way ``BcolzDailyBarWriter._write_internal`` reads a
    ctable (``len()`` = rows, ``[name]`` = column)."""

    def __len__(self):
        return len(self["day"])


def write_daily_tables(writer, tables) -> None:
    """Write ``(sid, DailyColumns)`` pairs (sids ascending, each dense over its sessions, in
    zipline's uint32 storage units) with the daily writer's own table assembly, skipping
    ``write``'s per-sid pandas conversion."""
    writer._write_internal(tables, None)


# ----------------------------------------------------------------------------- assets
def write_asset_db(asset_db_writer, equities: pd.DataFrame, exchanges: pd.DataFrame):
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

"""Every use of zipline's PRIVATE bundle-writer internals, in one module.

Checked against **zipline-reloaded 3.2.1**. On a zipline upgrade, re-read the zipline code
named below and re-run ``tests/bundles/polygon/test_ingest.py`` (it compares :func:`write_minute_table` with
zipline's own ``write_cols`` and reads every bundle back through zipline's readers).

gapline's ingest writes through zipline's writers but skips their slow per-sid pandas paths.
Doing so touches these internals; no module of :mod:`bundles.polygon` touches any of them:

``zipline.data.bcolz_minute_bars``
  1. ``BcolzMinuteBarWriter._minute_index``, ``_expectedlen`` and ``_rootdir`` -- the
     writer's minute slots, bcolz sizing of a sid's table and its folder, copied into a
     picklable :class:`MinuteTables` (worker processes write sids without the writer);
  2. ``_sid_subdir_path`` -- a sid's folder under the rootdir (:meth:`MinuteTables.sidpath`);
  3. ``convert_cols`` -- zipline's float -> uint32 scaling (module function, not exported)
     (:func:`write_minute_table`);
  4. ``BcolzMinuteBarWriter._ohlc_ratios_per_sid`` -- the per-sid ratio dict
     (:func:`use_ohlc_ratios`);
  5. ``BcolzMinuteBarWriter._init_ctable`` -- what an empty table for a sid looks like
     (:func:`ensure_minute_table` writes the same files);
  6. ``BcolzMinuteBarMetadata`` and the writer's ``_default_ohlc_ratio``, ``_start_session``,
     ``_end_session``, ``_minutes_per_day`` and ``_rootdir`` -- rewriting ``metadata.json``
     with the per-sid ratios (:func:`write_minute_metadata`).

``bcolz`` (1.13, the version zipline-reloaded 3.2.1 pins)
  9. the on-disk layout of a ctable of uint32 columns written once (``__attrs__``,
     ``__rootdirs__``, per column ``meta/storage``, ``meta/sizes``, ``__attrs__`` and
     ``data/__<n>.blp`` = bloscpack header + one blosc chunk compressed by bcolz's own
     ``carray_ext.chunk``): :func:`write_ctable` writes each file once where
     ``bcolz.ctable(...)`` + ``flush()`` rewrites ``sizes``, ``__rootdirs__`` and the last
     chunk several times (the per-sid fixed cost of a short history);
     ``tests/bundles/polygon/test_parallel_writes.py`` compares the bytes with bcolz's.

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

import json
import os
import shutil
import struct

import numpy as np
import pandas as pd


# ----------------------------------------------------------------------------- minute bars
MINUTE_COLUMNS = ("open", "high", "low", "close", "volume")


class MinuteTables:
    """Where and how a ``BcolzMinuteBarWriter`` lays out its sids' tables: its rootdir, its
    minute slots (int64 ns) and the bcolz sizing of a table. Picklable, so worker processes
    write sids without the writer (:mod:`bundles.polygon.minute_pool`)."""

    def __init__(self, rootdir: str, minute_index: np.ndarray, expectedlen: int):
        self.rootdir = str(rootdir)
        self.minute_index = minute_index
        self.expectedlen = int(expectedlen)

    @classmethod
    def of(cls, writer) -> "MinuteTables":
        if isinstance(writer, cls):
            return writer
        cached = getattr(writer, "_gapline_tables", None)
        if cached is None:
            index = writer._minute_index.values.astype("datetime64[ns]").view(np.int64)
            cached = cls(writer._rootdir, index, writer._expectedlen)
            writer._gapline_tables = cached
        return cached

    def sidpath(self, sid: int) -> str:
        from zipline.data.bcolz_minute_bars import _sid_subdir_path

        return os.path.join(self.rootdir, _sid_subdir_path(int(sid)))


def write_minute_table(writer, sid: int, end_ns: np.ndarray, cols: dict, ratio: int):
    """Write one sid's whole minute table in a single call (``writer``: a
    ``BcolzMinuteBarWriter`` or its :class:`MinuteTables`).

    Produces exactly what ``BcolzMinuteBarWriter.write_cols`` writes for a sid written once --
    uint32 columns scaled by zipline's own ``convert_cols``, one slot per minute of the
    writer's minute index (``minutes_per_day`` per session), zeros where there is no bar, the
    table ending at the sid's last bar -- without its create-empty / zero-pad / reopen /
    append sequence, which flushes and re-scans the table on disk several times per sid.
    """
    tables = MinuteTables.of(writer)
    pos, scaled = minute_slots(writer, sid, end_ns, cols, ratio)
    write_ctable(tables.sidpath(sid), slot_columns(pos, scaled, 0), MINUTE_COLUMNS,
                 tables.expectedlen)


def slot_columns(pos: np.ndarray, scaled, start: int) -> list:
    """Each of ``scaled`` placed at its slots ``pos`` in zeros covering slots ``start`` to the
    last bar's: a whole table (``start`` 0) or what an append adds after ``start`` rows."""
    columns = []
    for values in scaled:
        full = np.zeros(int(pos[-1]) + 1 - start, dtype=np.uint32)
        full[pos - start] = values
        columns.append(full)
    return columns


def minute_slots(writer, sid: int, end_ns: np.ndarray, cols: dict, ratio: int):
    """(slot of each bar in the writer's minute index, uint32 columns scaled by zipline's
    ``convert_cols``): what :func:`write_minute_table` stores, and what bars appended to a
    table shared with an earlier ingestion add (:mod:`bundles.bcolz_share`)."""
    from zipline.data.bcolz_minute_bars import convert_cols

    index = MinuteTables.of(writer).minute_index
    pos = np.searchsorted(index, end_ns)
    bad = (pos >= len(index)) | (index[np.minimum(pos, len(index) - 1)] != end_ns)
    if bad.any():
        raise ValueError(f"sid {sid}: {pd.Timestamp(end_ns[bad][0], tz='UTC')} is not a minute "
                         "of the bundle's calendar")
    return pos, convert_cols(cols, ratio, sid, "raise")


def ensure_minute_table(writer, sid: int) -> None:
    """Create an empty minute table for ``sid`` unless it has one (the files of zipline's
    ``_ensure_ctable``)."""
    tables = MinuteTables.of(writer)
    path = tables.sidpath(sid)
    if not os.path.exists(path):
        empty = np.empty(0, np.uint32)
        write_ctable(path, [empty] * len(MINUTE_COLUMNS), MINUTE_COLUMNS, tables.expectedlen)


_CHUNKLEN: dict = {}
# bcolz's create_bloscpack_header(1): magic, format version 1, 3 reserved bytes, nchunks = 1
BLOSCPACK_HEADER = b"blpk" + struct.pack("<B", 1) + b"\x00\x00\x00" + struct.pack("<q", 1)


def write_ctable(path: str, columns, names, expectedlen: int) -> None:
    """The files ``bcolz.ctable(columns=..., names=..., rootdir=path, expectedlen=...,
    mode="w")`` + ``flush()`` leaves for 1-d uint32 ``columns`` (default cparams), each file
    written once (see 9. above). Replaces ``path`` if it exists, like bcolz's mode ``"w"``."""
    import bcolz

    dtype = np.dtype(np.uint32)
    chunklen = _CHUNKLEN.get(expectedlen)
    if chunklen is None:
        chunklen = bcolz.carray(np.empty(0, dtype), expectedlen=expectedlen).chunklen
        _CHUNKLEN[expectedlen] = chunklen
    cparams = bcolz.cparams()
    storage = _json_line({
        "dtype": str(dtype),
        "cparams": {"clevel": cparams.clevel, "shuffle": cparams.shuffle,
                    "cname": cparams.cname, "quantize": cparams.quantize},
        "chunklen": chunklen, "expectedlen": int(expectedlen), "dflt": 0})
    empty_attrs = _json_line({})
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    for name, values in zip(names, columns):
        values = np.ascontiguousarray(values, dtype=dtype)
        col = os.path.join(path, name)
        data, meta = os.path.join(col, "data"), os.path.join(col, "meta")
        os.mkdir(col)
        os.mkdir(data)
        os.mkdir(meta)
        _write(os.path.join(meta, "storage"), storage)
        n = len(values)
        cbytes = chunklen * dtype.itemsize  # bcolz counts the (uncompressed) last chunk
        cbytes += write_chunks(data, values, 0, chunklen, cparams)
        _write(os.path.join(meta, "sizes"), sizes_line(n, dtype, cbytes))
        _write(os.path.join(col, "__attrs__"), empty_attrs)
    _write(os.path.join(path, "__rootdirs__"),
           json.dumps({"names": list(names)}).encode("ascii") + b"\n")
    _write(os.path.join(path, "__attrs__"), empty_attrs)


def write_chunks(data_dir: str, values: np.ndarray, first: int, chunklen: int,
                 cparams) -> int:
    """``values`` as bcolz chunk files ``__<first>.blp``, ``__<first + 1>.blp``, ... of
    ``chunklen`` items (the last may be partial), compressed as bcolz's ``flush`` does;
    returns the compressed bytes of the full chunks (what ``meta/sizes`` counts of them)."""
    from bcolz.carray_ext import chunk

    dtype = values.dtype
    cbytes = 0
    for j in range(-(-len(values) // chunklen)):
        piece = values[j * chunklen:(j + 1) * chunklen]
        packed = chunk(piece, dtype, cparams, _memory=False).getdata()
        if len(piece) == chunklen:
            cbytes += len(packed)
        _write(os.path.join(data_dir, f"__{first + j}.blp"), BLOSCPACK_HEADER + packed)
    return cbytes


def sizes_line(n: int, dtype, cbytes: int) -> bytes:
    """A column's ``meta/sizes`` file for ``n`` items."""
    return _json_line({"shape": [n], "nbytes": n * np.dtype(dtype).itemsize, "cbytes": cbytes})


def _json_line(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=True).encode("ascii") + b"\n"


def _write(path: str, data: bytes) -> None:
    # always a new file ("x"): a table shared by hard links (bundles.bcolz_share) is never
    # written through; write_ctable removes the folder it replaces first
    with open(path, "xb") as fh:
        fh.write(data)


def use_ohlc_ratios(writer, ratios: dict) -> None:
    """Make ``ratios`` (sid -> OHLC ratio, filled as sids are written) the writer's per-sid
    ratios, as read by its ``write_cols`` / ``ohlc_ratio_for_sid``."""
    writer._ohlc_ratios_per_sid = ratios


def write_minute_metadata(writer, calendar, ratios: dict) -> None:
    """Rewrite the writer's ``metadata.json`` with the per-sid ``ratios`` (the writer wrote it
    at construction, before the ratios were known), sids ascending: the same bytes whatever
    order the sids were written in."""
    from zipline.data.bcolz_minute_bars import BcolzMinuteBarMetadata

    BcolzMinuteBarMetadata(
        writer._default_ohlc_ratio, {int(s): int(ratios[s]) for s in sorted(ratios)}, calendar,
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

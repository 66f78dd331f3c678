"""Read and validate Polygon flat files (``minute_aggs_v1`` / ``day_aggs_v1`` day files).

Every problem is reported as a :class:`FlatFileError` naming the file, the ticker and the
1-based CSV line (header = line 1), so a user can open the file at that line.

What is handled (and how), rather than rejected:

- rows in any order: sorted by (ticker, window_start);
- exact duplicate rows: dropped, counted;
- conflicting duplicates (same ticker and minute, different values): the LAST row in file
  order wins (Polygon re-publishes corrected bars after the original), counted;
- ``window_start`` in ms or us instead of ns: detected from the magnitude and converted, counted;
- extra columns: ignored;
- volume above what zipline's uint32 storage holds: kept here, reported by the ingest.

What is rejected (``bad_rows="raise"``, the default) or dropped and counted (``bad_rows="skip"``):
non-numeric values, NaN / zero / negative prices, infinite prices or volumes (``inf``,
``1e400``), prices above :data:`MAX_PRICE` or below :data:`MIN_PRICE`, ``high < low`` or
open/close outside [low, high], negative volume, tickers that are empty or hold characters
other than letters, digits, ``.`` and ``-`` (``../x``, ``A/B``), bars whose time is not on a
whole minute or whose ET date is not the file's date, ``window_start`` values that are no
integer (``inf``, ``1e30``).

The price limit :data:`MAX_PRICE` ($4,294,967.29) is what the bundle can store: zipline keeps
daily prices as uint32 x 1000 (``(2**32 - 2) / 1000``; zipline refuses ``2**32 - 1``), and
minute prices as uint32 x a per-sid ratio that is >= 1000 for any price up to the limit
(:func:`bundles.polygon.bars.ohlc_ratio_for`). A price above it could only be kept in one
store (or, above $4.29B, crashes zipline's writer naming nothing), so such a row is a bad
row here, with the file, ticker and line. It is no real share price either: the highest
priced US share, BRK.A, trades at ~$0.7-0.8M, five times below the limit, so a row above it
is a data error (a bad print, a misplaced decimal). A tighter "absurd price" limit (say $1M)
was not chosen because BRK.A at ~10%/year would cross it within a few years and real data
would start failing. At the other end, :data:`MIN_PRICE` ($0.000001) is the smallest price the
finest minute storage (x 1,000,000) keeps; a smaller one would be stored as 0, read back as
"no trade" (listed stocks trade in steps of $0.0001 below $1).

Unreadable files (truncated or corrupt gzip, missing or renamed columns) always raise.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .layout import FLAT_COLUMNS
from .market import et_midnight_ns

PRICE_COLUMNS = ("open", "high", "low", "close")
NS_PER_MINUTE = 60_000_000_000
# The largest value zipline stores in its uint32 columns (check_uint32_safe refuses 2**32 - 1;
# the same as bundles.polygon.bars.UINT32_MAX, which imports from here would make circular).
_UINT32_STORABLE = 2**32 - 2
#: Highest price a row may hold: what zipline's daily bars store (uint32 x 1000), ~$4.29M.
MAX_PRICE = _UINT32_STORABLE / 1000
#: Lowest price a row may hold: one unit of the finest minute storage (price x 1,000,000).
MIN_PRICE = 1e-6
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_VALID_TICKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,19}$")
# ns timestamps for 1990..2100 lie in [6.3e17, 4.2e18]; ms and us are 1e6 / 1e3 smaller.
_NS_MIN = 6.0e17
_US_MIN = 6.0e14
_MS_MIN = 6.0e11


class FlatFileError(ValueError):
    """A flat file that cannot be ingested; the message names file, ticker and row."""


@dataclass
class DayFrame:
    """One validated day file, sorted by (ticker, window_start).

    Tickers are integer ``codes`` into the sorted unique ``symbols`` (sorting and grouping
    ints is far cheaper than strings on a ~1M-row full-market file).
    """

    path: Path
    day: pd.Timestamp
    codes: np.ndarray  # int64 index into symbols; sorted
    symbols: np.ndarray  # object array of str, sorted unique
    window_start: np.ndarray  # int64 ns UTC, bar START
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # float64 (Polygon volumes can be fractional for odd lots / exceed uint32)
    counts: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)  # messages for dropped bad rows

    def __len__(self):
        return len(self.codes)

    @property
    def ticker(self) -> np.ndarray:
        """Ticker of every row (object array)."""
        return self.symbols[self.codes]


def _open_text(path: Path) -> bytes:
    """The file's bytes, gunzipped; corrupt or truncated gzip raises FlatFileError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FlatFileError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise FlatFileError(
                f"{path}: corrupt or truncated gzip ({exc}); re-download this file "
                "(raw files are never modified in place)"
            ) from None
    return raw


_TYPED = {
    "ticker": pa.string(), "volume": pa.float64(), "open": pa.float64(), "close": pa.float64(),
    "high": pa.float64(), "low": pa.float64(), "window_start": pa.int64(),
    "transactions": pa.float64(),
}


def _convert_options(types):
    return pacsv.ConvertOptions(include_columns=FLAT_COLUMNS, column_types=types,
                                strings_can_be_null=False, null_values=[""])


def _read_fast(path: Path):
    """The common case in one call: Arrow decompresses and parses in C++ threads. Any problem
    (corrupt gzip, missing column, a value that does not parse) returns None, and the caller
    takes the slow path that names the file, ticker and line."""
    try:
        return pacsv.read_csv(str(path), convert_options=_convert_options(_TYPED))
    except (pa.ArrowException, OSError, EOFError, zlib.error):
        return None


def _parse(path: Path, data: bytes | None, table=None):
    """Columns as numpy arrays: a typed multi-threaded parse, or (when a value does not
    parse) a string parse whose bad cells become NaN so the caller can name their lines."""
    def read(types):
        return pacsv.read_csv(io.BytesIO(data), convert_options=_convert_options(types))

    try:
        typed = True
        if table is None:
            table = read(_TYPED)
    except pa.ArrowInvalid:
        try:
            table = read({c: pa.string() for c in FLAT_COLUMNS})
        except pa.ArrowException as exc:
            raise FlatFileError(f"{path}: unreadable CSV ({exc})") from None
        typed = False
    except pa.ArrowException as exc:
        raise FlatFileError(f"{path}: unreadable CSV ({exc})") from None

    encoded = table.column("ticker").combine_chunks().dictionary_encode()
    dictionary = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(dictionary.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
    symbols = dictionary[order]
    numeric = {}
    for col in ("volume", "open", "close", "high", "low", "transactions"):
        arr = table.column(col)
        if typed:
            values = arr.to_numpy(zero_copy_only=False).astype("float64")
        else:
            values = _floats(arr)
        if col == "transactions":
            values = np.nan_to_num(values)  # Polygon leaves it blank on some bars
        numeric[col] = values
    ws_col = table.column("window_start")
    if typed:
        ws_ok = ~np.asarray(ws_col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        ws = ws_col.fill_null(0).to_numpy(zero_copy_only=False).astype("int64")
    else:
        texts = ws_col.to_numpy(zero_copy_only=False)
        parsed = pd.to_numeric(pd.Series(texts), errors="coerce")
        ws_ok = parsed.notna().to_numpy()
        # exact integers: float64 would lose the last digits of ns timestamps
        ints = [_exact_int(x) if ok else None for x, ok in zip(texts, ws_ok)]
        ws_ok = np.array([i is not None for i in ints], dtype=bool)
        ws = np.array([0 if i is None else i for i in ints], dtype="int64")
    numeric["window_start"] = (ws, ws_ok)
    return codes, symbols, numeric


def _floats(column) -> np.ndarray:
    """A string column as float64, a value that does not parse as NaN. Arrow's cast when the
    whole column parses, else Python's ``float`` per value: both round correctly, so a good
    value reads as the very same float as on the typed path (pandas' ``to_numeric`` can be
    one ulp off) whatever bad cell sent the file down this path."""
    try:
        cast = pc.cast(column, pa.float64())
    except pa.ArrowException:
        return np.array([_float(x) for x in column.to_pylist()], dtype="float64")
    return cast.fill_null(np.nan).to_numpy(zero_copy_only=False).astype("float64")


def _float(text) -> float:
    # what Arrow's parser takes: no blanks, no digit separators ("1_000"), no empty cell
    if not text or text != text.strip() or "_" in text:
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


def _exact_int(text: str) -> int | None:
    """The integer ``text`` spells (``1.7e18`` too); None for inf, NaN and values outside int64."""
    try:
        value = int(text)
    except ValueError:
        try:
            value = int(float(text))
        except (ValueError, OverflowError):
            return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _bad(path, line, ticker, message):
    return f"{path}: line {line}, ticker {ticker!r}: {message}"


def read_day_file(path, day, kind: str = "minute", bad_rows: str = "raise") -> DayFrame:
    """Read and validate one Polygon day file.

    Parameters
    ----------
    path : path-like
        ``YYYY-MM-DD.csv.gz`` (or plain ``.csv``).
    day : date-like
        The session the file holds (from its name).
    kind : {"minute", "day"}
        Minute files must hold whole-minute bars on ``day`` (ET); day files one row per ticker.
    bad_rows : {"raise", "skip"}
        Reject the file on the first bad row, or drop bad rows and list them in ``skipped``.
    """
    if bad_rows not in ("raise", "skip"):
        raise ValueError(f"bad_rows must be 'raise' or 'skip', got {bad_rows!r}")
    path = Path(path)
    day = pd.Timestamp(day).normalize()
    table = _read_fast(path)
    data = None
    if table is None:
        data = _open_text(path)
        if not data.strip():
            raise FlatFileError(f"{path}: empty file (no header)")
        # csv module: a quoted header ("ticker","volume",...) is valid CSV too
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()]), [])
        missing = [c for c in FLAT_COLUMNS if c not in header]
        if missing:
            raise FlatFileError(
                f"{path}: missing column(s) {missing}; found {header}; expected Polygon's "
                f"{FLAT_COLUMNS}"
            )
    codes, symbols, numeric = _parse(path, data, table)
    n = len(codes)
    counts = {"rows": n}
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}

    def flag(mask, message):
        new = mask & ~bad
        for i in np.flatnonzero(new)[:1000]:
            reasons[int(i)] = message
        bad[:] |= mask

    symbol_ok = np.fromiter((bool(_VALID_TICKER.match(t)) for t in symbols), bool, len(symbols))
    flag(~symbol_ok[codes], "invalid ticker (letters, digits, '.' and '-' only)")
    for col, values in numeric.items():
        if col == "window_start":
            continue
        flag(np.isnan(values), f"missing, NaN or non-numeric {col}")

    ws, ws_ok = numeric["window_start"]
    flag(~ws_ok, "missing, non-numeric or out-of-range window_start")
    if ws_ok.any():
        med = np.median(np.abs(ws[ws_ok]))
        if med < _MS_MIN:
            flag(ws_ok, "window_start is not a timestamp (expected ns since the epoch)")
        elif med < _US_MIN:
            ws = ws * 1_000_000
            counts["converted_ms"] = int(ws_ok.sum())
        elif med < _NS_MIN:
            ws = ws * 1_000
            counts["converted_us"] = int(ws_ok.sum())

    o, h, l, c, v = (numeric[k] for k in ("open", "high", "low", "close", "volume"))
    with np.errstate(invalid="ignore"):
        # inf would pass every comparison below and crash zipline's writer, naming nothing
        for col in ("open", "high", "low", "close", "volume"):
            flag(np.isinf(numeric[col]) & ~bad, f"{col} is not finite")
        flag(~((o > 0) & (h > 0) & (l > 0) & (c > 0)) & ~bad, "price is NaN, zero or negative")
        for col in PRICE_COLUMNS:
            flag((numeric[col] > MAX_PRICE) & ~bad,
                 f"{col} is above the largest storable price ${MAX_PRICE:,.2f} (zipline keeps "
                 "daily prices as uint32 x 1000): a bad print or a misplaced decimal")
            flag((numeric[col] < MIN_PRICE) & ~bad,
                 f"{col} is below the smallest storable price ${MIN_PRICE:.6f} (it would be "
                 "stored as 0, read back as no trade)")
        flag((h < l) & ~bad, "high < low")
        flag(((o > h) | (o < l) | (c > h) | (c < l)) & ~bad, "open/close outside [low, high]")
        flag((v < 0) & ~bad, "negative volume")

    # The file's ET calendar day as two UTC ns bounds (cheaper than converting every row).
    day_start = et_midnight_ns(day)
    day_end = et_midnight_ns(day + pd.Timedelta(days=1))
    et_day = (ws >= day_start) & (ws < day_end)
    if kind == "minute":
        flag(((ws % NS_PER_MINUTE) != 0) & ~bad, "window_start not on a whole minute")
        flag(~et_day & ~bad, f"bar time is not on the file's date {day.date()} (ET)")
    elif kind == "day":
        flag(~et_day & ~bad, f"bar date is not the file's date {day.date()} (ET)")
    else:
        raise ValueError(f"kind must be 'minute' or 'day', got {kind!r}")

    skipped = []
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        if bad_rows == "raise":
            raise FlatFileError(
                _bad(path, first + 2, symbols[codes[first]], reasons.get(first, "bad row"))
                + f" ({int(bad.sum())} bad row(s) in this file; "
                "use bad_rows=skip (-x polygon.bad_rows=skip) to drop and report them)"
            )
        skipped = [_bad(path, i + 2, symbols[codes[i]], reasons.get(i, "bad row"))
                   for i in np.flatnonzero(bad)[:1000]]
        counts["bad_rows"] = int(bad.sum())
        keep = ~bad
        codes, ws, o, h, l, c, v = (a[keep] for a in (codes, ws, o, h, l, c, v))

    # Stable sort keeps file order within equal keys, so "last row wins" below is file order.
    in_order = bool(np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (ws[1:] >= ws[:-1]))))
    counts["unsorted"] = int(not in_order)
    if not in_order:
        order = np.lexsort((ws, codes))
        codes, ws, o, h, l, c, v = (a[order] for a in (codes, ws, o, h, l, c, v))

    if len(ws):
        same_next = (codes[1:] == codes[:-1]) & (ws[1:] == ws[:-1])
        if same_next.any():
            dup_prev = np.concatenate([same_next, [False]])  # row i duplicated by row i+1
            identical = dup_prev.copy()
            idx = np.flatnonzero(dup_prev)
            for arr in (o, h, l, c, v):
                identical[idx] &= arr[idx] == arr[idx + 1]
            counts["duplicate_rows"] = int(identical.sum())
            counts["conflicting_duplicates"] = int((dup_prev & ~identical).sum())
            keep = ~dup_prev  # keep the last of each run
            codes, ws, o, h, l, c, v = (a[keep] for a in (codes, ws, o, h, l, c, v))

    return DayFrame(path, day, codes, symbols, ws, o, h, l, c, v, counts, skipped)

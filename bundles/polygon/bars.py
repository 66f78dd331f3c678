"""Array kernels over bars: runs of equal keys, per-ticker OHLCV, OHLC ratios, dense daily
columns in zipline's storage units."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..zipline_writers import DailyColumns

# zipline rejects values >= 2**32 - 1 (check_uint32_safe), so the largest storable is one less
UINT32_MAX = np.iinfo(np.uint32).max - 1


def group_bounds(keys: np.ndarray):
    """Start indices and lengths of runs of equal values in sorted ``keys``."""
    if len(keys) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(keys)]]))
    return starts, lengths


def round_half_up(x):
    """Nearest integer, halves up (0.5 -> 1, 2.5 -> 3; numpy's ``round`` goes to even)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def carry_round_volumes(keys: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Whole-share volumes of rows sorted by ``keys`` (then time) that keep each key's total:
    minute ``i`` gets ``round_half_up(C_i) - round_half_up(C_{i-1})`` where ``C`` is the
    running total of the key's volumes, so the rounded minutes sum to the rounded total (the
    daily volume) and fractions carry forward (three minutes of 0.4 -> 0, 1, 0) instead of
    being floored away. Whole volumes are unchanged. Only the fractional parts are summed,
    so the running sums stay exact enough to round (< 2**53 / 1e9 rows)."""
    v = np.asarray(volume, dtype=np.float64)
    whole = np.floor(v)
    frac = v - whole
    if not frac.any():
        return whole
    starts, lengths = group_bounds(keys)
    cum = np.cumsum(frac)
    before = np.repeat(cum[starts] - frac[starts], lengths)
    rounded = round_half_up(np.round(cum - before, 9))
    step = np.diff(rounded, prepend=0.0)
    step[starts] = rounded[starts]
    return whole + step


def ohlcv_by_ticker(tickers, ws, o, h, l, c, v, dollar=False):
    """Per-ticker OHLCV of rows sorted by (ticker, time)."""
    starts, lengths = group_bounds(tickers)
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


def clip_minute_volume(ticker, end_ns: np.ndarray, volume: np.ndarray):
    """``(volume, note)``: minute volumes clipped to :data:`UINT32_MAX` (zipline would zero the
    whole bar) and the note describing the first clipped bar, or ``note`` None."""
    over = volume > UINT32_MAX
    if not over.any():
        return volume, None
    i = int(np.flatnonzero(over)[0])
    return np.minimum(volume, UINT32_MAX), (
        f"minute {ticker} {pd.Timestamp(end_ns[i], tz='UTC')}: {int(over.sum())} bar(s) with "
        f"volume above {UINT32_MAX} clipped (zipline would zero the whole bar)")


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


def dense_daily_columns(d: pd.DataFrame, sessions: pd.DatetimeIndex):
    """(sid, columns) per sid, dense over every session of its life, in zipline's storage units.

    One vectorised conversion for all sids (zipline's own per-sid ``to_ctable`` costs ~5 ms
    a sid in pandas). Prices x1000 rounded to uint32 exactly as zipline does; a session
    without trades gets zeros, which zipline reads back as NaN prices and zero volume.
    """
    pos = sessions.get_indexer(pd.DatetimeIndex(d["day"]))
    if (pos < 0).any():
        raise ValueError(f"daily bar on a non-session: {d['day'][pos < 0].iloc[0]}")
    sid = d["sid"].to_numpy()
    starts, lengths = group_bounds(sid)
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
    # fractional volumes (Polygon, since 2026-02-23): rounded half up, never floored
    vol[target] = round_half_up(d["volume"].to_numpy()).astype(np.uint32)
    out["volume"] = vol
    session_seconds = sessions.values.astype("datetime64[s]").astype(np.int64)
    day_idx = np.concatenate([np.arange(f, l + 1) for f, l in zip(first, last)]) if len(first) else []
    out["day"] = session_seconds[day_idx].astype(np.uint32)
    for i, s in enumerate(sid[starts]):
        sl = slice(offsets[i], offsets[i + 1])
        cols = DailyColumns({k: v[sl] for k, v in out.items()})
        cols["day"] = cols["day"].tolist()  # zipline stores day[0] in JSON attrs: needs an int
        yield int(s), cols

"""Synthetic Polygon-format flat files for the benchmarks (fast to write, realistic shape)."""
from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundles import layout  # noqa: E402

from bundles.market import ET  # noqa: E402


def write_flat(root: Path, dataset: str, day, frame: pd.DataFrame) -> None:
    """Polygon-format gzip CSV via pyarrow (pandas' to_csv would dominate a bench's setup)."""
    buf = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(frame[layout.FLAT_COLUMNS], preserve_index=False), buf,
                    pacsv.WriteOptions(quoting_style="none"))
    path = layout.day_file_path(root, dataset, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1))


def minute_frame(tickers, day, base, rng, premarket_minutes=60, volume_scale=None) -> pd.DataFrame:
    """One session of bars for every ticker: ``premarket_minutes`` before 09:30 and the 390
    regular minutes, a random walk starting at ``base`` (one price per ticker); minute volume
    100..10,000 shares, times ``volume_scale`` (one factor per ticker) when given."""
    minutes = pd.date_range(f"{day:%Y-%m-%d} 09:30", periods=390, freq="min", tz=ET)
    extended = pd.date_range(f"{day:%Y-%m-%d} 09:30", periods=premarket_minutes + 1, freq="-1min",
                             tz=ET)[1:][::-1]
    starts = np.concatenate([extended.asi8, minutes.asi8])
    n, k = len(starts), len(tickers)
    close = base[:, None] * np.exp(np.cumsum(rng.normal(0, 0.001, (k, n)), axis=1))
    open_ = close * (1 + rng.normal(0, 0.0005, close.shape))
    digits = np.where(base < 1, 4, 2)[:, None]
    tick = 10.0 ** -digits
    high = np.maximum(open_, close) * 1.001 + tick
    low = np.maximum(np.minimum(open_, close) * 0.999 - tick, tick)
    rnd = lambda a: (np.round(a * 10.0 ** digits) / 10.0 ** digits).ravel()  # noqa: E731
    return pd.DataFrame({
        "ticker": np.repeat(tickers, n),
        "volume": (rng.integers(100, 10_000, (k, n)).astype(float)
                   * (1.0 if volume_scale is None else np.asarray(volume_scale, float)[:, None])
                   ).round().ravel(),
        "open": rnd(open_), "close": rnd(close), "high": rnd(high), "low": rnd(low),
        "window_start": np.tile(starts, k),
        "transactions": 5,
    })


def regular_mask(frame: pd.DataFrame, premarket_minutes: int, n_tickers: int) -> np.ndarray:
    n = premarket_minutes + 390
    return np.tile(np.arange(n) >= premarket_minutes, n_tickers)


# ----------------------------------------------------------------------------- market shape
GRID_START = pd.Timedelta(hours=4)  # Polygon's minute files run 04:00 .. 19:59 ET
GRID_MINUTES = 16 * 60
REGULAR = slice(330, 720)  # 09:30 .. 15:59 starts
BLOCK = 250  # tickers generated together: one RNG stream per (session, block)


def ticker_names(n: int) -> np.ndarray:
    """``n`` distinct upper-case tickers of 3-5 letters (deterministic)."""
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    out = []
    for i in range(n):
        width = 3 + i % 3
        k, s = i + 26 ** 2, ""
        for _ in range(width):
            k, r = divmod(k, 26)
            s = letters[r] + s
        out.append(s)
    assert len(set(out)) == n, "ticker_names: at most ~16,000 distinct names"
    return np.array(out, dtype=object)


class Market:
    """A deterministic synthetic US equity market with Polygon's skew.

    Each ticker gets a fixed activity class: ~27% liquid (a bar in 85-100% of regular
    minutes, 5-40% of extended-hours minutes), ~28% mid (5-50% of regular minutes), ~45% thin
    (a few bars a day); prices log-uniform $0.05-$500 (sub-dollar names with 4 decimals),
    a daily random walk. With ``listings``, ~8% of tickers list and ~8% delist at a random
    session. A session's rows are generated per block of :data:`BLOCK` tickers from their own
    seed, so any block can be regenerated alone (the floor does, block by block).
    ~164 rows per ticker-session: 11,000 tickers -> ~1.8M rows in a day file.
    """

    def __init__(self, n_tickers: int, sessions, seed: int = 0, listings: bool = False):
        self.n, self.sessions, self.seed = n_tickers, pd.DatetimeIndex(sessions), seed
        rng = np.random.default_rng([seed, 1])
        self.tickers = ticker_names(n_tickers)
        kind = rng.choice(3, n_tickers, p=[0.27, 0.28, 0.45])
        p_reg = np.where(kind == 0, rng.uniform(0.85, 1.0, n_tickers),
                         np.where(kind == 1, rng.uniform(0.05, 0.5, n_tickers),
                                  (1 + rng.geometric(0.2, n_tickers)) / 390))
        p_ext = np.where(kind == 0, rng.uniform(0.05, 0.4, n_tickers),
                         np.where(kind == 1, p_reg * 0.1, 0.002))
        self.p_reg, self.p_ext = np.minimum(p_reg, 1.0), p_ext
        self.base = np.exp(rng.uniform(np.log(0.05), np.log(500), n_tickers))
        self.volume_scale = np.where(kind == 0, 20.0, np.where(kind == 1, 3.0, 1.0))
        self.drift = np.cumsum(rng.normal(0, 0.02, (n_tickers, len(self.sessions))), axis=1)
        n_s = len(self.sessions)
        self.first = np.zeros(n_tickers, dtype=np.int64)
        self.last = np.full(n_tickers, n_s - 1, dtype=np.int64)
        if listings and n_s > 2:
            lists, delists = rng.random(n_tickers) < 0.08, rng.random(n_tickers) < 0.08
            self.first[lists] = rng.integers(1, n_s, lists.sum())
            self.last[delists] = rng.integers(0, n_s - 1, delists.sum())
            self.last = np.maximum(self.last, self.first)

    def blocks(self):
        return [np.arange(s, min(s + BLOCK, self.n)) for s in range(0, self.n, BLOCK)]

    def session_rows(self, day_idx: int, block: np.ndarray) -> pd.DataFrame | None:
        """Polygon minute rows of ``block``'s tickers on session ``day_idx`` (ticker, time
        order); ``None`` when none of them trades that session."""
        block = block[(self.first[block] <= day_idx) & (self.last[block] >= day_idx)]
        if not len(block):
            return None
        rng = np.random.default_rng([self.seed, 2, day_idx, int(block[0])])
        p = np.repeat(self.p_ext[block][:, None], GRID_MINUTES, axis=1)
        p[:, REGULAR] = self.p_reg[block][:, None]
        has = rng.random(p.shape) < p
        t_idx, m_idx = np.nonzero(has)
        if not len(t_idx):
            return None
        n = len(t_idx)
        level = self.base[block] * np.exp(self.drift[block, day_idx])
        steps = rng.normal(0, 0.0015, n)
        cum = np.cumsum(steps)
        starts = np.flatnonzero(np.r_[True, t_idx[1:] != t_idx[:-1]])
        cum -= np.repeat(cum[starts] - steps[starts], np.diff(np.r_[starts, n]))
        close = level[t_idx] * np.exp(cum)
        open_ = close * np.exp(rng.normal(0, 0.0008, n))
        hi = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
        lo = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
        scale = np.where(level[t_idx] < 1, 1e4, 1e2)
        rnd = lambda a: np.maximum(np.round(a * scale), 1) / scale  # noqa: E731
        o, c, h, lw = rnd(open_), rnd(close), rnd(hi), rnd(lo)
        h, lw = np.maximum.reduce([h, o, c]), np.minimum.reduce([lw, o, c])
        day0 = (pd.Timestamp(self.sessions[day_idx]).tz_localize(None).tz_localize(ET)
                + GRID_START).value
        return pd.DataFrame({
            "ticker": self.tickers[block][t_idx],
            "volume": (rng.integers(1, 2000, n) * self.volume_scale[block][t_idx]).astype(float),
            "open": o, "close": c, "high": h, "low": lw,
            "window_start": day0 + m_idx.astype(np.int64) * 60_000_000_000,
            "transactions": rng.integers(1, 60, n),
        })

    def day_frame(self, day_idx: int) -> pd.DataFrame:
        parts = [f for b in self.blocks() if (f := self.session_rows(day_idx, b)) is not None]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=layout.FLAT_COLUMNS)

    def write(self, root: Path, day_indices, reference: bool = True) -> int:
        """Write the day files (and the reference tickers); returns the rows written."""
        rows = 0
        for d in day_indices:
            frame = self.day_frame(d)
            write_flat(root, layout.MINUTE_DATASET, self.sessions[d], frame)
            rows += len(frame)
        if not reference:
            return rows
        delisted = self.last < len(self.sessions) - 1
        layout.write_reference(root, "tickers", [
            {"ticker": t, "name": t, "type": "CS", "primary_exchange": "XNAS",
             "active": not bool(gone),
             **({"delisted_utc": f"{self.sessions[last] + pd.Timedelta(days=1):%Y-%m-%d}"
                                 "T00:00:00Z"} if gone else {})}
            for t, gone, last in zip(self.tickers, delisted, self.last)], overwrite=True)
        return rows

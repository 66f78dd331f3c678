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

"""Ingest benchmark: end-to-end ``polygon`` ingest vs the BcolzMinuteBarWriter floor.

Writes N synthetic Polygon minute day files (default 2,000 tickers x 20 sessions, regular
session plus some extended hours), then measures in one run:

- **floor**: the same regular-session rows, already grouped by sid in memory, written by
  ``BcolzMinuteBarWriter.write_sid`` alone (no parsing, no daily bars, no assets);
- **gapline**: ``zipline ingest`` of the ``polygon`` bundle over those files (parse, validate,
  regroup, minute + daily bars, assets, adjustments, side tables), in a child process so its
  peak RSS is measured on its own.

Prints seconds, rows/s, the ratio gapline/floor (target <= 1.5) and peak RSS; run with
``--days`` twice as large to see that peak memory does not grow with the number of days.

    python bench/ingest.py [--tickers 2000] [--days 20]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import minute_frame, regular_mask, write_flat  # noqa: E402
from bundles import layout  # noqa: E402
from bundles.market import CALENDAR  # noqa: E402

PREMARKET_MINUTES = 60


def make_files(root: Path, n_tickers: int, sessions, rng) -> pd.DataFrame:
    """Write day files; return the regular-session rows per ticker (for the floor)."""
    tickers = np.array([f"T{i:04d}" for i in range(n_tickers)])
    regular_parts = []
    for day in sessions:
        frame = minute_frame(tickers, day, rng.uniform(2, 300, n_tickers), rng, PREMARKET_MINUTES)
        write_flat(root, layout.MINUTE_DATASET, day, frame)
        regular_parts.append(frame[regular_mask(frame, PREMARKET_MINUTES, n_tickers)])
    return pd.concat(regular_parts, ignore_index=True)


def floor(regular: pd.DataFrame, sessions, tmp: Path) -> float:
    from zipline.data.bcolz_minute_bars import BcolzMinuteBarWriter
    from zipline.utils.calendar_utils import get_calendar

    cal = get_calendar(CALENDAR)
    grouped = []
    for ticker, g in regular.groupby("ticker", sort=True):
        idx = pd.DatetimeIndex(g["window_start"].to_numpy() + 60_000_000_000, tz="UTC")
        grouped.append(g[["open", "high", "low", "close", "volume"]].set_index(idx))
    (tmp / "floor").mkdir()
    writer = BcolzMinuteBarWriter(str(tmp / "floor"), cal, sessions[0], sessions[-1], 390)
    t0 = time.perf_counter()
    for sid, df in enumerate(grouped):
        writer.write_sid(sid, df)
    return time.perf_counter() - t0


def gapline_ingest(root: Path, zroot: Path, sessions) -> dict:
    code = f"""
import json, resource, time, os
os.environ['ZIPLINE_ROOT'] = {str(zroot)!r}
from bundles.polygon import PolygonBundleConfig, build_bundle
t0 = time.perf_counter()
build_bundle('bench', PolygonBundleConfig(root={str(root)!r}), {str(zroot)!r})
# VmHWM: this process's own peak (ru_maxrss would include the parent's, kept across exec)
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({{'seconds': time.perf_counter() - t0, 'peak_rss_mb': int(hwm) / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    if out.returncode:
        raise SystemExit(f"ingest failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=20)
    args = parser.parse_args()
    from zipline.utils.calendar_utils import get_calendar

    sessions = get_calendar(CALENDAR).sessions_in_range("2024-03-01", "2024-12-31")[: args.days]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="gapline-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        regular = make_files(tmp / "raw", args.tickers, sessions, rng)
        gen = time.perf_counter() - t0
        total_rows = args.tickers * args.days * (390 + PREMARKET_MINUTES)
        floor_s = floor(regular, sessions, tmp)
        n_regular = len(regular)
        del regular
        result = gapline_ingest(tmp / "raw", tmp / "zipline", sessions)
    ratio = result["seconds"] / floor_s
    print(f"data: {args.tickers} tickers x {args.days} sessions = {total_rows:,} rows in flat files "
          f"({n_regular:,} regular-session), generated in {gen:.1f}s")
    print(f"floor   (BcolzMinuteBarWriter.write_sid, pre-grouped): {floor_s:7.1f}s "
          f"{n_regular / floor_s:>12,.0f} rows/s")
    print(f"gapline (zipline ingest -b polygon, end to end):       {result['seconds']:7.1f}s "
          f"{total_rows / result['seconds']:>12,.0f} rows/s")
    print(f"ratio gapline/floor: {ratio:.2f}x (target <= 1.5x)")
    print(f"gapline peak RSS: {result['peak_rss_mb']:.0f} MB "
          f"(bench process itself: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()

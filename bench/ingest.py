"""Ingest benchmark: end-to-end ``polygon`` ingest vs the serial zipline writer floor.

Profiles (``--profile``):

- ``equal`` (default): ``--tickers`` (2,000) equal tickers x ``--days`` (20) sessions, every
  ticker trading all 390 regular minutes and the 60 before the open;
- ``fullday``: the real market's shape in one session (:class:`bench.synthetic.Market`):
  ~11,000 tickers, a few thousand liquid names with most minutes, thousands trading a few
  minutes a day, extended hours 04:00-20:00 ET: ~1.8M rows;
- ``year``: 252 sessions (2024) of 2,000 tickers of that shape, ~8% listing and ~8% delisting
  during the year (``--scale 0.25``: 500 tickers, for a quick run);
- ``update``: the year ingested, then one more session appended to the raw files and
  ingested again, with the default config (incremental) and with ``incremental=0``
  (:func:`profile_update`); prints full/incremental.

For each profile it measures:

- **floor**: the same regular-session rows, grouped by sid in memory, written by zipline's
  ``BcolzMinuteBarWriter.write_sid`` alone, serially (no parsing, no daily bars, no assets;
  the market profiles regenerate the rows block by block, untimed, so memory stays small);
- **gapline** for each ``--workers`` value (default ``1`` and the machine's cores):
  ``zipline ingest`` of the ``polygon`` bundle (parse, validate, regroup, minute + daily bars,
  assets, adjustments, side tables) in a child process. While it runs the bench samples,
  every 0.1 s, the memory of the child plus its worker processes (psutil, PSS summed: the
  peak of the whole process tree, a page the ingest shares with a forked worker counted
  once) and the bytes under the child's private ``TMPDIR`` (pass 1's bucket files: the
  ingest's temp disk). Also printed: the ingest process's own peak (``VmHWM``, exact) and
  the largest single worker's PSS (sampled).

Prints seconds, rows/s (rows in the flat files, all hours), peak memory (PSS), peak temp disk
and the ratio gapline/floor (targets: <= 1.5x for ``equal``; full ingest <= 0.7x with 2 workers for
the market profiles). Raw files of the market profiles are cached under ``--cache``
(default ``$TMPDIR/gapline-bench-cache``), keyed by profile, tickers and seed.

    python bench/ingest.py [--profile equal|fullday|year|update] [--tickers N] [--days D]
                           [--scale F] [--workers 1,2] [--cache DIR] [--no-floor]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.synthetic import Market, minute_frame, regular_mask, write_flat  # noqa: E402
from bundles import layout  # noqa: E402
from bundles.market import trading_calendar  # noqa: E402

PREMARKET_MINUTES = 60
PROFILE_TICKERS = {"equal": 2000, "fullday": 11000, "year": 2000, "update": 2000}
FULLDAY = "2024-06-03"
YEAR = ("2024-01-02", "2025-01-02")  # 2024's 252 sessions + the update's session
COLS = ["open", "high", "low", "close", "volume"]


# ----------------------------------------------------------------------------- equal profile
def make_files(root: Path, n_tickers: int, sessions, rng) -> pd.DataFrame:
    """Write day files; return the regular-session rows per ticker (for the floor)."""
    tickers = np.array([f"T{i:04d}" for i in range(n_tickers)])
    regular_parts = []
    for day in sessions:
        frame = minute_frame(tickers, day, rng.uniform(2, 300, n_tickers), rng, PREMARKET_MINUTES)
        write_flat(root, layout.MINUTE_DATASET, day, frame)
        regular_parts.append(frame[regular_mask(frame, PREMARKET_MINUTES, n_tickers)])
    return pd.concat(regular_parts, ignore_index=True)


def settle() -> None:
    """Flush the disk before a timed phase. Deleting the previous run's tree (tens of
    thousands of folders) leaves the file system journalling and discarding for a while; on
    this machine consecutive runs of the same ingest differed up to 6x without this."""
    os.sync()
    time.sleep(1.0)


def floor(regular: pd.DataFrame, sessions, tmp: Path) -> float:
    from zipline.data.bcolz_minute_bars import BcolzMinuteBarWriter

    grouped = []
    for ticker, g in regular.groupby("ticker", sort=True):
        idx = pd.DatetimeIndex(g["window_start"].to_numpy() + 60_000_000_000, tz="UTC")
        grouped.append(g[COLS].set_index(idx))
    (tmp / "floor").mkdir()
    writer = BcolzMinuteBarWriter(str(tmp / "floor"), trading_calendar(), sessions[0],
                                  sessions[-1], 390)
    settle()
    t0 = time.perf_counter()
    for sid, df in enumerate(grouped):
        writer.write_sid(sid, df)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- market profiles
def year_market(n_tickers: int, seed: int) -> Market:
    """2024's 252 sessions plus 2025-01-02 (the update profile's new session)."""
    sessions = trading_calendar().sessions_in_range(*YEAR)
    assert len(sessions) == 253
    return Market(n_tickers, sessions, seed, listings=True)


def cached_raw(args, market: Market, key: str, day_indices) -> tuple[Path, int]:
    """The market's day files for ``day_indices`` under the cache (written once); returns
    (raw root, rows in the files)."""
    root = Path(args.cache) / f"{key}-{market.n}t-{len(day_indices)}d-seed{market.seed}"
    done = root / "rows.json"
    if done.exists():
        return root, json.loads(done.read_text())["rows"]
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    rows = market.write(root, day_indices)
    done.write_text(json.dumps({"rows": rows}))
    print(f"generated {rows:,} rows for {key} in {time.perf_counter() - t0:.1f}s -> {root}")
    return root, rows


def market_floor(market: Market, day_indices, tmp: Path) -> tuple[float, int, int]:
    """(seconds, rows, sids): ``write_sid`` of each ticker's regular-session rows, block by block
    (only the writes are timed)."""
    from zipline.data.bcolz_minute_bars import BcolzMinuteBarWriter

    cal = trading_calendar()
    sessions = market.sessions[list(day_indices)]
    opens = {d: cal.session_open(market.sessions[d]).value for d in day_indices}
    closes = {d: cal.session_close(market.sessions[d]).value for d in day_indices}
    folder = tmp / "floor"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    writer = BcolzMinuteBarWriter(str(folder), cal, sessions[0], sessions[-1], 390)
    seconds, rows, sid = 0.0, 0, 0
    for block in market.blocks():
        parts = []
        for d in day_indices:
            f = market.session_rows(d, block)
            if f is not None:
                ws = f["window_start"].to_numpy()
                parts.append(f[(ws >= opens[d]) & (ws < closes[d])])
        if not parts:
            continue
        frame = pd.concat(parts, ignore_index=True)
        for _, g in frame.groupby("ticker", sort=True):  # day order kept within a ticker
            df = g[COLS].set_index(pd.DatetimeIndex(
                g["window_start"].to_numpy() + 60_000_000_000, tz="UTC"))
            t0 = time.perf_counter()
            writer.write_sid(sid, df)
            seconds += time.perf_counter() - t0
            sid, rows = sid + 1, rows + len(g)
    shutil.rmtree(folder, ignore_errors=True)
    return seconds, rows, sid


# ----------------------------------------------------------------------------- one ingest
CHILD = """
import glob, json, os, sys, time
sys.path.insert(0, {repo!r})
from bundles.polygon import PolygonBundleConfig, build_bundle
cfg = PolygonBundleConfig(root={root!r}, **json.loads({extra!r}))
t0 = time.perf_counter()
build_bundle({name!r}, cfg, {zroot!r})
seconds = time.perf_counter() - t0
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
report = sorted(glob.glob(os.path.join({zroot!r}, 'data', {name!r}, '*', 'gapline',
                                       'ingest_report.json')))[-1]
phases = json.load(open(report)).get('seconds', {{}})
print(json.dumps({{'seconds': seconds, 'vmhwm_mb': int(hwm) / 1024, 'phases': phases}}))
"""


class Sampler(threading.Thread):
    """Peak memory of a process tree (PSS, summed) and peak bytes under a folder, sampled."""

    def __init__(self, pid: int, folder: Path, period: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.folder, self.period = pid, folder, period
        self.peak_pss = self.peak_disk = self.peak_child = 0
        self._done = threading.Event()

    def run(self):
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.is_set():
            pss = 0
            try:
                for p in [root] + root.children(recursive=True):
                    try:
                        # PSS: a page shared by the ingest and its forked workers counts once
                        # in the sum (RSS would count it in each)
                        one = p.memory_full_info().pss
                    except psutil.NoSuchProcess:
                        continue
                    pss += one
                    if p.pid != self.pid:
                        self.peak_child = max(self.peak_child, one)
            except psutil.NoSuchProcess:
                break
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_disk = max(self.peak_disk, _du(self.folder))
            self._done.wait(self.period)

    def stop(self):
        self._done.set()
        self.join()


def _du(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def run_ingest(root: Path, zroot: Path, name: str, workers: int, tmp: Path, **extra) -> dict:
    """One ingest in a child process, sampled (see the module docstring)."""
    ingest_tmp = tmp / f"ingest-tmp-{name}-{workers}"
    ingest_tmp.mkdir(parents=True, exist_ok=True)
    code = CHILD.format(repo=str(REPO), root=str(root), zroot=str(zroot), name=name,
                        extra=json.dumps({"workers": workers, **extra}))
    env = dict(os.environ, ZIPLINE_ROOT=str(zroot), TMPDIR=str(ingest_tmp))
    settle()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    sampler = Sampler(proc.pid, ingest_tmp)
    sampler.start()
    out, err = proc.communicate()
    sampler.stop()
    if proc.returncode:
        raise SystemExit(f"ingest failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(tree_peak_mb=sampler.peak_pss / 2**20, tmp_peak_mb=sampler.peak_disk / 2**20,
                  worker_max_mb=sampler.peak_child / 2**20)
    shutil.rmtree(ingest_tmp, ignore_errors=True)
    return result


def report_line(label: str, r: dict, rows: int, floor_s: float | None) -> str:
    ratio = f"{r['seconds'] / floor_s:5.2f}x floor" if floor_s else "  (no floor)"
    phases = r.get("phases", {})
    split = ", ".join(f"{k} {phases[k]:.1f}s" for k in ("read_day_files", "write_minute_bars",
                                                         "finish_minute_bars")
                      if phases.get(k))
    return (f"{label:<28} {r['seconds']:7.1f}s {rows / r['seconds']:>11,.0f} rows/s  {ratio}  "
            f"peak PSS {r['tree_peak_mb']:5.0f} MB (tree; ingest VmHWM {r['vmhwm_mb']:.0f}, largest "
            f"worker {r['worker_max_mb']:.0f})  temp {r['tmp_peak_mb']:5.0f} MB"
            + (f"  [{split}]" if split else ""))


def compare_workers(args, root: Path, rows: int, floor_s, tmp: Path, key: str):
    results = {}
    for w in args.workers:
        zroot = tmp / f"zipline-{key}-{w}"
        results[w] = run_ingest(root, zroot, f"bench-{key}", w, tmp)
        print(report_line(f"gapline workers={w}", results[w], rows, floor_s), flush=True)
        shutil.rmtree(zroot, ignore_errors=True)
    if len(results) > 1:
        base = results[min(results)]["seconds"]
        print("speed-up vs workers=%d: %s" % (min(results), ", ".join(
            f"workers={w}: {base / r['seconds']:.2f}x" for w, r in results.items()
            if w != min(results))))
    return results


# ----------------------------------------------------------------------------- profiles
def profile_equal(args, tmp: Path):
    sessions = trading_calendar().sessions_in_range("2024-03-01", "2024-12-31")[: args.days]
    n = args.tickers or PROFILE_TICKERS["equal"]
    t0 = time.perf_counter()
    regular = make_files(tmp / "raw", n, sessions, np.random.default_rng(args.seed))
    gen = time.perf_counter() - t0
    total_rows = n * args.days * (390 + PREMARKET_MINUTES)
    floor_s = None if args.no_floor else floor(regular, sessions, tmp)
    n_regular = len(regular)
    del regular
    print(f"data: {n} tickers x {args.days} sessions = {total_rows:,} rows in flat files "
          f"({n_regular:,} regular-session), generated in {gen:.1f}s")
    _print_floor(floor_s, n_regular, n)
    compare_workers(args, tmp / "raw", total_rows, floor_s, tmp, "equal")


def profile_market(args, tmp: Path, key: str):
    n = _tickers(args, key)
    if key == "fullday":
        market = Market(n, trading_calendar().sessions_in_range(FULLDAY, FULLDAY), args.seed)
        days = [0]
    else:
        market, days = year_market(n, args.seed), list(range(252))
    root, rows = cached_raw(args, market, key, days)
    floor_s, n_regular, n_sids = (None, 0, n) if args.no_floor else market_floor(market, days, tmp)
    print(f"data ({key}): {n} tickers x {len(days)} session(s) = {rows:,} rows in flat files "
          f"({n_regular:,} regular-session)")
    _print_floor(floor_s, n_regular, n_sids)
    compare_workers(args, root, rows, floor_s, tmp, key)


def profile_update(args, tmp: Path | None = None):
    """The year ingested in full; then one more session (2025-01-02) appended to the raw
    files and ingested again: with the default config (incremental,
    :mod:`bundles.polygon.incremental`) and with ``incremental=0``. Prints both times and
    full/incremental (target >= 20x)."""
    tmp = Path(tmp or tempfile.mkdtemp(prefix="gapline-bench-"))
    n = _tickers(args, "update")
    market = year_market(n, args.seed)
    year_root, year_rows = cached_raw(args, market, "year", list(range(252)))
    root = tmp / "raw-update"  # the cached year, linked file by file, + the new session
    for src in year_root.rglob("*"):
        if src.is_file() and src.name != "rows.json":
            dst = root / src.relative_to(year_root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    zroot, w = tmp / "zipline-update", max(args.workers)
    full_opt = {"incremental": "0"}
    first = run_ingest(root, zroot, "bench-update", w, tmp, **full_opt)
    print(report_line(f"year, full (workers={w})", first, year_rows, None))
    new_rows = market.write(root, [252], reference=False)
    incremental = run_ingest(root, zroot, "bench-update", w, tmp)
    full = run_ingest(root, zroot, "bench-update", w, tmp, **full_opt)
    rows = year_rows + new_rows
    print(report_line("+1 session, default config", incremental, new_rows, None))
    print(report_line("+1 session, incremental=0", full, rows, None))
    print(f"full/incremental: {full['seconds'] / incremental['seconds']:.2f}x (target >= 20x)")
    shutil.rmtree(zroot, ignore_errors=True)


def _tickers(args, key: str) -> int:
    return max(1, int(round((args.tickers or PROFILE_TICKERS[key]) * args.scale)))


def _print_floor(floor_s, n_regular: int, n_sids: int):
    if floor_s:
        print(f"floor (BcolzMinuteBarWriter.write_sid, pre-grouped, serial): {floor_s:7.1f}s "
              f"{n_regular / floor_s:>11,.0f} rows/s ({n_sids} sids, "
              f"{floor_s / n_sids * 1000:.1f} ms/sid)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="equal", choices=list(PROFILE_TICKERS))
    parser.add_argument("--tickers", type=int, default=None,
                        help="tickers (default: 2,000; fullday 11,000)")
    parser.add_argument("--days", type=int, default=20, help="sessions of the equal profile")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the market profiles' tickers (0.25: a quick year)")
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}",
                        help="workers values to ingest with, in this order (default 1,cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "gapline-bench-cache"),
                        help="where generated raw files of the market profiles are kept")
    parser.add_argument("--no-floor", action="store_true", help="skip the zipline floor")
    args = parser.parse_args(argv)
    args.workers = list(dict.fromkeys(max(1, int(w)) for w in str(args.workers).split(",")
                                      if w.strip()))  # in the order given
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; workers "
          f"{args.workers}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gapline-bench-") as tmp:
        tmp = Path(tmp)
        if args.profile == "equal":
            profile_equal(args, tmp)
        elif args.profile == "update":
            profile_update(args, tmp)
        else:
            profile_market(args, tmp, args.profile)
    print(f"bench process peak RSS: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()

"""Sweep benchmark: ``gapline sweep --workers 2`` against the same backtests run one after
another in one process, on ``polygon-demo``.

Both sides are timed as the command a user runs, from a fresh Python process to the last
result: the baseline is a script that calls ``algorithms.runner.run`` for each task in turn
(Python start, imports and the first run's warm-up included), the sweep is ``gapline sweep``
(Python start, the local cluster, gapline's extension on each worker, the ingestion check,
the plan on a worker, the tasks and the report included). Target: ratio <= 0.6 on 2 cores.

From the sweep's own rows it also derives the per-task time and the fixed overhead (wall time
minus the tasks' time divided among the workers), and projects a sweep of ``--project`` tasks
onto a 32-core host and a 10-host cluster of 32 cores each:
``overhead + ceil(tasks / workers) x per-task time``.

    python bench/sweep.py [--root ZIPLINE_ROOT] [--algorithm gap_and_go] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: 8 tasks: 2 x 2 parameters x 2 cost presets, each a quarter of minute bars
DEFAULT_GRID = ("top_n=3,5", "min_gap_pct=8,10")
DEFAULT_COSTS = "published,realistic"

SEQUENTIAL = r'''
import json, sys, time
t0 = time.perf_counter()
from algorithms.runner import run
tasks = json.loads(sys.argv[1])
times = []
for t in tasks:
    s = time.perf_counter()
    run(t["algorithm"], t["start"], t["end"], bundle=t["bundle"], costs=t["costs"], **t["params"])
    times.append(time.perf_counter() - s)
print(json.dumps({"times": times, "wall": time.perf_counter() - t0}))
'''


def ensure_demo(root: Path) -> None:
    """polygon-demo ingested under ``root`` (built once, ~2 minutes)."""
    if (root / "data" / "polygon-demo").is_dir() and any((root / "data" / "polygon-demo").iterdir()):
        return
    from bundles.polygon import build_bundle
    from bundles.register import demo_config

    print(f"building polygon-demo under {root} ...", flush=True)
    build_bundle("polygon-demo", demo_config(os.environ), root)


def task_list(algorithm, start, end, grid, costs):
    from gapline.sweep import grid as g

    return [{"algorithm": algorithm, "start": start, "end": end, "bundle": "polygon-demo",
             "costs": preset, "params": params}
            for preset in g.parse_list(costs) for params in g.expand(g.parse_grid(grid))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=None, help="ZIPLINE_ROOT holding polygon-demo "
                    "(default: a temporary one, built first)")
    ap.add_argument("--algorithm", default="gap_and_go")
    ap.add_argument("--start", default="2024-10-01")
    ap.add_argument("--end", default="2024-12-31")
    ap.add_argument("--grid", action="append", default=None)
    ap.add_argument("--costs", default=DEFAULT_COSTS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--project", type=int, default=256, help="tasks of the projection")
    args = ap.parse_args(argv)
    grid = args.grid or list(DEFAULT_GRID)

    tmp = tempfile.TemporaryDirectory(prefix="gapline-bench-sweep-")
    root = Path(args.root) if args.root else Path(tmp.name) / "zipline"
    os.environ["ZIPLINE_ROOT"] = str(root)
    os.environ.setdefault("GAPLINE_DATA", str(root / "gapline"))
    ensure_demo(root)
    tasks = task_list(args.algorithm, args.start, args.end, grid, args.costs)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    print(f"{len(tasks)} tasks: {args.algorithm} {args.start}..{args.end}, grid {grid}, "
          f"costs {args.costs}; {os.cpu_count()} cores", flush=True)

    print("load average at the start: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SEQUENTIAL, json.dumps(tasks)], cwd=REPO,
                         env=env, check=True, capture_output=True, text=True)
    sequential = time.perf_counter() - t0
    seq = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"one after another: {sequential:.1f} s (tasks {sum(seq['times']):.1f} s, "
          f"mean {sum(seq['times']) / len(tasks):.2f} s/task)", flush=True)

    sweep_dir = Path(tmp.name) / "sweep"
    cmd = [sys.executable, "-m", "gapline.cli", "sweep", args.algorithm, "-b", "polygon-demo",
           "--start", args.start, "--end", args.end, "--costs", args.costs,
           "--workers", str(args.workers), "--dashboard-address", ":0", "-o", str(sweep_dir)]
    for spec in grid:
        cmd += ["--grid", spec]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    swept = time.perf_counter() - t0
    rows = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(rows) == len(tasks) and rows["error"].isna().all(), rows["error"].dropna()
    task_time = float(rows["run_seconds"].mean())
    overhead = swept - rows["run_seconds"].sum() / args.workers
    ratio = swept / sequential
    print(f"gapline sweep --workers {args.workers}: {swept:.1f} s (tasks on workers: mean "
          f"{task_time:.2f} s/task; fixed overhead {overhead:.1f} s)")
    print(f"ratio sweep / one after another: {ratio:.2f} (target <= 0.6)")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{v:.1f}" for v in
                                                                  os.getloadavg()) +
          f" on {os.cpu_count()} cores: other processes slow the parallel side most")
    per_task = sum(seq["times"]) / len(tasks)
    for label, workers in (("32-core host", 32), ("10 hosts x 32 cores", 320)):
        projected = overhead + math.ceil(args.project / workers) * per_task
        print(f"projection, {args.project} tasks on a {label}: {projected:.0f} s "
              f"(one after another: {args.project * per_task:.0f} s)")
    tmp.cleanup()
    return ratio


if __name__ == "__main__":
    main()

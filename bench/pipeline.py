"""Pipeline benchmark: ``sell_gap_pipeline()`` vs zipline's built-in ADV + SMA pipeline.

Ingests the full pystock universe (../shared/data/real/pystock, ~7,000 US symbols,
2015-03-20..2017-03-31) as Polygon day files into a daily-only ``polygon``-style bundle
(cached under ``--workdir``; ``--rebuild`` to redo it), then times Pipeline compute over
the same sessions for

- **gapline**: ``factors.screens.sell_gap_pipeline()`` -- common stock (PolygonReference),
  top decile of 30-day dollar volume ranked within common stock, 10 < close < 2000, close
  above SMA20; columns prior_low, std (EWMSTD 63), mavg (SMA20), close;
- **baseline**: ``Pipeline(columns={"adv": AverageDollarVolume(window_length=30),
  "sma": SimpleMovingAverage(inputs=[close], window_length=20)})``, no screen.

Both run on one engine (bundle readers opened once, not timed) after a warm-up; each is
timed ``--repeat`` times and the best run is reported as seconds per session, with the
ratio gapline / baseline.

    .venv/bin/python bench/pipeline.py [--start 2016-01-04] [--end 2017-03-31] [--repeat 3]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from bundles.market import CALENDAR  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUNDLE = "gapline-bench-pystock"


def build(workdir: Path, rebuild: bool):
    from zipline.data import bundles as zb

    from tests import realdata

    zroot = workdir / "zipline"
    marker = workdir / "ingested.ok"
    if marker.exists() and not rebuild:
        # only the name needs registering to load an existing ingestion
        zb.register(BUNDLE, lambda *a, **k: None, calendar_name=CALENDAR)
        print(f"reusing ingestion under {zroot}")
        return zroot
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    t = time.perf_counter()
    frame = realdata.load_pystock()
    print(f"loaded pystock: {len(frame):,} rows, {frame.symbol.nunique():,} symbols "
          f"({time.perf_counter() - t:.1f}s)")
    t = time.perf_counter()
    _, zroot, summary = realdata.build_pystock_bundle(BUNDLE, frame, workdir)
    print(f"wrote {summary['sessions']} day files and ingested daily-only "
          f"({len(summary['splits'])} splits, {len(summary['dividends'])} dividends) in "
          f"{time.perf_counter() - t:.1f}s")
    marker.write_text("ok")
    return zroot


def time_pipeline(engine, pipeline, start, end, repeat):
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        out = engine.run_pipeline(pipeline, start, end)
        best = min(best, time.perf_counter() - t)
        rows = len(out)
    return best, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "gapline-bench-pipeline")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--start", default="2016-01-04")
    parser.add_argument("--end", default="2017-03-31")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from tests import realdata

    if not realdata.pystock_available():
        print(realdata.skip_reason())
        return 1
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)

    import pandas as pd
    from zipline.pipeline import Pipeline
    from zipline.pipeline.data import EquityPricing
    from zipline.pipeline.factors import AverageDollarVolume, SimpleMovingAverage

    from factors.loaders import pipeline_engine
    from factors.screens import sell_gap_pipeline

    zroot = build(args.workdir, args.rebuild)
    environ = dict(os.environ, ZIPLINE_ROOT=str(zroot))
    engine = pipeline_engine(BUNDLE, environ=environ)
    start, end = pd.Timestamp(args.start), pd.Timestamp(args.end)
    sessions = engine._default_domain.sessions()
    n = int(((sessions >= start) & (sessions <= end)).sum())
    n_assets = len(engine._finder.sids)

    gapline = sell_gap_pipeline()
    baseline = Pipeline(columns={
        "adv": AverageDollarVolume(window_length=30),
        "sma": SimpleMovingAverage(inputs=[EquityPricing.close], window_length=20),
    })
    warm = sessions[sessions.searchsorted(start) + 5]
    for p in (gapline, baseline):  # warm-up: imports, reference table, caches
        engine.run_pipeline(p, start, warm)

    t_base, rows_base = time_pipeline(engine, baseline, start, end, args.repeat)
    t_gap, rows_gap = time_pipeline(engine, gapline, start, end, args.repeat)
    per_base, per_gap = t_base / n, t_gap / n
    print(f"universe: {n_assets:,} assets; {n} sessions {start.date()}..{end.date()}; "
          f"best of {args.repeat}; {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"baseline  AverageDollarVolume(30) + SimpleMovingAverage(20): "
          f"{t_base:7.2f}s total, {per_base * 1000:7.2f} ms/session ({rows_base:,} rows)")
    print(f"gapline   sell_gap_pipeline():                              "
          f"{t_gap:7.2f}s total, {per_gap * 1000:7.2f} ms/session ({rows_gap:,} rows)")
    print(f"ratio gapline / baseline: {per_gap / per_base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

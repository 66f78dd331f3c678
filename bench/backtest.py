"""Backtest benchmark: seconds per simulated day of ``sell_gap`` and ``microcap_short`` on a
2,000-asset minute bundle vs a bare zipline algorithm with the same Pipeline that does not trade.

The bundle: 2,000 common stocks (a fifth of them $0.20-$4 penny names) with ~130 sessions of
Polygon day aggs (the Pipeline's history) and minute bars (with pre-market) for the last
``--days`` sessions, where the backtests run. A few percent of ticker-days open with a gap so
both strategies find candidates; minute share volume scales with 1/price and is 10x on gap days,
as in real tapes; ``--flat-volume`` keeps 100-10,000 shares a minute whatever the price, which
turns every $100k penny short into a morning of 2.5%-of-volume partial fills (~5,700 in 10 days).

Each algorithm is timed against its own baseline: the same ``make_pipeline()`` attached and read
every morning, no scheduled functions, no orders; best of two interleaved runs each, after a
one-day warm-up of both. Target: ratio <= 1.3.

    python bench/backtest.py [--tickers 2000] [--days 10] [--flat-volume]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import minute_frame, write_flat  # noqa: E402
from bundles import layout  # noqa: E402
from bundles.market import CALENDAR, ET  # noqa: E402

HISTORY_SESSIONS = 130
COSTS = "published"  # the preset of every algorithm here, like for like with earlier figures
REPEATS = 2
PREMARKET_MINUTES = 30


def make_bundle_files(root: Path, n_tickers: int, sessions: pd.DatetimeIndex, minute_days: int, rng,
                      flat_volume: bool = False):
    tickers = np.array([f"B{i:04d}" for i in range(n_tickers)])
    penny = rng.random(n_tickers) < 0.2
    price = np.where(penny, rng.uniform(0.2, 4, n_tickers), rng.uniform(10, 300, n_tickers))
    minute_sessions = set(sessions[-minute_days:])
    for day in sessions:
        # down gaps deep enough to clear the sell-gap threshold (prior low - 63-day price std),
        # up gaps for the penny short
        gap = np.where(rng.random(n_tickers) < 0.03,
                       np.where(penny, rng.uniform(0.2, 0.6, n_tickers), -rng.uniform(0.2, 0.35, n_tickers)),
                       0.0)
        open_ = price * (1 + gap)
        if day in minute_sessions:
            # share volume ~ 1/price (a $1 name trades 50x the shares of a $50 one, as in the
            # market) and 10x relative volume on gap days: without it a $100k penny short
            # capped at 2.5% of a 5,000-share bar needs the whole morning of partial fills
            volume_scale = None if flat_volume else \
                np.clip(50.0 / open_, 1.0, 250.0) * np.where(gap != 0, 10.0, 1.0)
            frame = minute_frame(tickers, day, open_, rng, PREMARKET_MINUTES, volume_scale)
            write_flat(root, layout.MINUTE_DATASET, day, frame)
            regular = frame.groupby("ticker", sort=True)
            day_agg = pd.DataFrame({
                "ticker": tickers, "open": regular["open"].first().to_numpy(),
                "high": regular["high"].max().to_numpy(), "low": regular["low"].min().to_numpy(),
                "close": regular["close"].last().to_numpy(),
                "volume": regular["volume"].sum().to_numpy()})
        else:
            close = open_ * np.exp(rng.normal(0, 0.02, n_tickers))
            day_agg = pd.DataFrame({
                "ticker": tickers, "open": open_, "close": close,
                "high": np.maximum(open_, close) * 1.01, "low": np.minimum(open_, close) * 0.99,
                "volume": rng.integers(10_000, 5_000_000, n_tickers).astype(float)})
        digits = np.where(day_agg["close"] < 1, 4, 2)
        for col in ("open", "high", "low", "close"):
            day_agg[col] = [round(v, d) for v, d in zip(day_agg[col], digits)]
        day_agg["window_start"] = day.tz_localize(ET).value
        day_agg["transactions"] = 100
        write_flat(root, layout.DAY_DATASET, day, day_agg)
        price = day_agg["close"].to_numpy()
    layout.write_reference(root, "tickers", [
        {"ticker": t, "name": t, "type": "CS", "primary_exchange": "XNAS", "active": True}
        for t in tickers])
    layout.write_reference(root, "ticker_details", [
        {"ticker": t, "share_class_shares_outstanding": float(s)}
        for t, s in zip(tickers, rng.uniform(5e6, 5e8, n_tickers))])


def bare_run(module_name, start, end, bundle, environ):
    """zipline with the algorithm's own Pipeline attached and read each morning; no trading."""
    from zipline import run_algorithm
    from zipline.api import attach_pipeline, pipeline_output

    from algorithms.runner import load_algorithm
    from factors.loaders import install

    install()
    module = load_algorithm(module_name)

    def initialize(context):
        attach_pipeline(module.make_pipeline(), "bare")

    def before_trading_start(context, data):
        context.out = pipeline_output("bare")

    return run_algorithm(start=pd.Timestamp(start), end=pd.Timestamp(end), initialize=initialize,
                         before_trading_start=before_trading_start, capital_base=1e6,
                         data_frequency="minute", bundle=bundle, environ=environ)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--flat-volume", action="store_true",
                        help="100-10,000 shares a minute whatever the price (illiquid pennies: "
                             "thousands of partial fills)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    from zipline.utils.calendar_utils import get_calendar

    from algorithms.runner import run
    from analysis.fills import transactions_frame as trades
    from bundles.polygon import PolygonBundleConfig, build_bundle

    sessions = get_calendar(CALENDAR).sessions_in_range("2024-01-02", "2024-12-31")
    sessions = sessions[:HISTORY_SESSIONS + args.days]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="gapline-bench-bt-") as tmp:
        tmp = Path(tmp)
        t_gen, _ = timed(lambda: make_bundle_files(tmp / "raw", args.tickers, sessions, args.days, rng,
                                                     args.flat_volume))
        environ = dict(os.environ, ZIPLINE_ROOT=str(tmp / "zipline"))
        os.environ["ZIPLINE_ROOT"] = environ["ZIPLINE_ROOT"]
        t_ing, _ = timed(lambda: build_bundle(
            "bench-backtest", PolygonBundleConfig(root=tmp / "raw", daily_source="day"),
            tmp / "zipline"))
        start, end = sessions[-args.days], sessions[-1]
        print(f"bundle: {args.tickers} assets, {HISTORY_SESSIONS} sessions of day aggs + "
              f"{args.days} of minute bars (files {t_gen:.0f}s, ingest {t_ing:.0f}s); "
              f"backtest {start.date()}..{end.date()}")
        from algorithms.session_tables import load_session_table as _load_table

        for name in ("sell_gap", "buy_gap", "microcap_short", "gap_and_go"):
            # warm-up: one day of each pays the imports; then best of REPEATS interleaved runs
            # (the daily-bar reads behind the Pipeline vary with the disk cache)
            bare_run(name, start, start, "bench-backtest", environ)
            run(name, start, start, bundle="bench-backtest", environ=environ, costs=COSTS)
            t_bare = t_algo = np.inf
            for _ in range(REPEATS):
                t_bare = min(t_bare, timed(lambda: bare_run(name, start, end, "bench-backtest",
                                                            environ))[0])
                _load_table.cache_clear()  # every backtest opens the side table itself
                t, perf = timed(lambda: run(name, start, end, bundle="bench-backtest",
                                            environ=environ, costs=COSTS))
                t_algo = min(t_algo, t)
            per_bare, per_algo = t_bare / args.days, t_algo / args.days
            print(f"{name:15s} {per_algo:6.3f} s/day  bare pipeline-only {per_bare:6.3f} s/day  "
                  f"ratio {per_algo / per_bare:4.2f}x (target <= 1.3x)  fills {len(trades(perf))}")


if __name__ == "__main__":
    main()

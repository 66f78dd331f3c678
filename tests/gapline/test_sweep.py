"""gapline sweep on polygon-demo with two local worker processes (the cluster ``--workers 2``
starts): every task's perf frame equals the sequential ``algorithms.runner.run``; a rerun skips
finished tasks; a task that raises is recorded and the sweep goes on; a worker SIGKILLed
mid-task has its task rerun elsewhere; the CLI writes results.parquet, heat maps and the page.

Windows are a few sessions so the whole file stays well under a minute of backtests.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from gapline.sweep import SweepSpec, check_ingestions, run_sweep, start_client
from gapline.sweep.cluster import ingestion_info

START, END = "2024-10-07", "2024-10-11"   # sell_gap fills on the demo data in this week

TEST_ALGORITHM = '''"""sell_gap with two test switches: FAIL raises in initialize, HOLD blocks until the
test releases it (time to SIGKILL the worker running it)."""
import os
import time
from pathlib import Path

import algorithms.sell_gap as base
from algorithms.sell_gap import (COSTS, ENTRY_MINUTE, LIQUIDITY_RANK, PIPELINE_NAME,
                                 POSITION_VALUE, SIGNAL_MINUTE, TOP_N, before_trading_start,
                                 make_pipeline)

PARAM_BOUNDS = dict(base.PARAM_BOUNDS)
FAIL = False
HOLD = False
FLAGS = Path(r"{flags}")


def initialize(context):
    overrides = dict(getattr(context, "gapline_overrides", None) or {{}})
    fail, hold = overrides.pop("FAIL", False), overrides.pop("HOLD", False)
    context.gapline_overrides = overrides
    if fail:
        raise RuntimeError("task failed on purpose")
    if hold:
        (FLAGS / f"started-{{os.getpid()}}").write_text("")
        deadline = time.time() + 180
        while not (FLAGS / "release").exists() and time.time() < deadline:
            time.sleep(0.05)
    base.initialize(context)
'''


@pytest.fixture(scope="module")
def client(demo_root):
    client, cluster = start_client(workers=2, dashboard_address=":0")
    yield client
    client.close()
    cluster.close()


@pytest.fixture()
def test_algorithm(tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    path = tmp_path / "sell_gap_switches.py"
    path.write_text(TEST_ALGORITHM.format(flags=flags))
    return path, flags


def _same_orders(perf):
    """Order ids are random uuids: number them by first appearance instead."""
    ids = {}

    def rename(items, field):
        return [{**d, field: ids.setdefault(d[field], len(ids))} for d in items]

    out = perf.copy()
    out["orders"] = [rename(v, "id") for v in perf["orders"]]
    out["transactions"] = [rename(v, "order_id") for v in perf["transactions"]]
    return out


def test_workers_see_one_ingestion_with_the_extension_loaded(client):
    seen = check_ingestions(client, "polygon-demo")
    assert seen["workers"] == 2
    assert seen["checksum"] == ingestion_info("polygon-demo")["checksum"]
    assert all(client.run(lambda: __import__("zipline").data.bundles.bundles.get("polygon-demo")
                          is not None).values())


def test_sweep_results_equal_sequential_runs_and_rerun_skips_them(client, tmp_path):
    from algorithms.runner import run

    spec = SweepSpec("sell_gap", START, END, grid={"top_n": ["1", "10"]},
                     costs=("published", "realistic"), keep_perf=True)
    first = run_sweep(spec, tmp_path, client)
    assert (first.ran, first.skipped, first.errors) == (4, 0, 0)
    assert len({r for r in first.results["worker"]}) == 2       # both workers worked
    for task in first.tasks:
        swept = pd.read_pickle(tmp_path / "perf" / f"{task.key}.pickle")
        sequential = run("sell_gap", task.start, task.end, bundle="polygon-demo",
                         costs=task.costs, **task.param_dict)
        pd.testing.assert_frame_equal(_same_orders(swept), _same_orders(sequential),
                                      check_like=True)  # column order: zipline dict order
    assert first.results["fills"].sum() > 0

    again = run_sweep(spec, tmp_path, client)
    assert (again.ran, again.skipped) == (0, 4)
    cols = ["key", "sharpe", "fills", "costs_paid", "run_seconds", "worker"]
    pd.testing.assert_frame_equal(again.results[cols], first.results[cols])
    forced = run_sweep(spec, tmp_path, client, force=True, report=False)
    assert (forced.ran, forced.skipped) == (4, 0)
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert {"top_n", "costs", "window", "annual_return", "sharpe", "sortino", "max_drawdown",
            "fills", "turnover", "costs_paid", "run_seconds", "worker", "error"} <= set(table)


def test_a_task_that_raises_is_recorded_and_the_sweep_goes_on(client, tmp_path, test_algorithm):
    path, _ = test_algorithm
    spec = SweepSpec(str(path), START, END, grid={"fail": ["false", "true"]})
    outcome = run_sweep(spec, tmp_path / "out", client)
    rows = outcome.results.set_index("fail")
    assert outcome.errors == 1
    assert "task failed on purpose" in rows.loc[True, "error"]
    assert pd.isna(rows.loc[False, "error"]) and rows.loc[False, "sessions"] == 5
    assert "task failed on purpose" in (tmp_path / "out" / "index.html").read_text()


def test_ctrl_c_keeps_finished_tasks_and_the_rerun_resumes(client, tmp_path):
    from gapline.sweep import SweepInterrupted

    spec = SweepSpec("sell_gap", START, "2024-10-08", grid={"top_n": ["1", "2", "3", "4"]})

    def interrupt(row):
        raise KeyboardInterrupt  # what Ctrl-C raises in the loop collecting results

    with pytest.raises(SweepInterrupted) as exc:
        run_sweep(spec, tmp_path, client, on_result=interrupt)
    kept = pd.read_parquet(tmp_path / "results.parquet")
    assert len(kept) == len(exc.value.outcome.results) == 1   # saved before the interrupt
    resumed = run_sweep(spec, tmp_path, client, report=False)
    assert (resumed.skipped, resumed.ran) == (1, 3)
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 4


def test_a_worker_killed_mid_task_has_its_task_rerun(client, tmp_path, test_algorithm):
    path, flags = test_algorithm
    spec = SweepSpec(str(path), START, END, grid={"hold": ["false", "true"]})
    box = {}
    thread = threading.Thread(target=lambda: box.update(o=run_sweep(spec, tmp_path / "o", client)))
    thread.start()
    deadline = time.time() + 120
    while not list(flags.glob("started-*")) and time.time() < deadline:
        time.sleep(0.1)
    started = list(flags.glob("started-*"))
    assert started, "the holding task never started"
    victim = int(started[0].name.split("-")[1])
    os.kill(victim, signal.SIGKILL)
    time.sleep(1.0)
    (flags / "release").write_text("")
    thread.join(240)
    outcome = box["o"]
    assert outcome.errors == 0 and len(outcome.results) == 2
    assert outcome.results["sessions"].tolist() == [5, 5]
    assert len(list(flags.glob("started-*"))) == 2          # it ran again, in another process
    assert victim not in [int(p.name.split("-")[1]) for p in flags.glob("started-*")
                          if p != started[0]]


def test_cli_sweep_writes_results_heat_map_walk_forward_and_resumes(client, tmp_path):
    from gapline.cli import main

    out = tmp_path / "sg"
    args = ["sweep", "sell_gap", "-b", "polygon-demo", "--start", "2024-10-01", "--end",
            "2024-10-10", "--grid", "top_n=1,10", "--grid", "entry_minute=5,10",
            "--walk-forward", "4D:2D", "--scheduler", client.scheduler.address, "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "16 to run" in result.output and "deflated Sharpe ratio" in result.output
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 16 and table["error"].isna().all()  # 4 configs x 4 blocks of 2
    for name in ("index.html", "heatmap_published.png", "walk_forward_published.png",
                 "configs.csv", "summary.json"):
        assert (out / name).is_file(), name
    assert "walk-forward" in (out / "index.html").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "0 to run, 16 finished before" in again.output

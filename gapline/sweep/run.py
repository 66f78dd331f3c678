"""Run a sweep: plan on a worker, skip what is done, submit the rest, store each result as it
arrives, then write the report.

::

    from gapline.sweep import SweepSpec, run_sweep, start_client
    client, cluster = start_client(workers=2)
    outcome = run_sweep(SweepSpec("sell_gap", "2024-10-01", "2024-12-31",
                                  grid={"top_n": ["5", "10"]}, costs=("published",
                                  "realistic")), "sweeps/sg", client)

A task that raises is stored with its error (:func:`.tasks.run_task` catches it). A worker
that dies mid-task (killed, out of memory) is Dask's business: the scheduler reschedules its
tasks on the other workers, and the nanny restarts it; a task that kills
``distributed.scheduler.allowed-failures`` + 1 workers is stored as an error. Ctrl-C cancels
what is queued and leaves every finished task on disk (results.parquet included); the same
command resumes.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass, field

import pandas as pd

from . import grid as g
from .cluster import check_ingestions
from .store import SweepStore
from .tasks import METRICS, Task, algorithm_for, plan, run_task

log = logging.getLogger(__name__)


@dataclass
class SweepSpec:
    algorithm: str                       # module name (sell_gap) or path to a .py file
    start: str
    end: str
    bundle: str = "polygon-demo"
    grid: dict = field(default_factory=dict)         # {name: [values as text]}
    costs: tuple = ("published",)
    walk_forward: str | None = None      # "2M:1M"
    select: str = "sharpe"
    capital_base: float = 1_000_000.0
    keep_perf: bool = False
    heatmap: tuple | None = None         # two parameter names (default: the first two)

    def describe(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}


@dataclass
class SweepOutcome:
    out_dir: str
    tasks: list
    results: pd.DataFrame
    ran: int
    skipped: int
    errors: int
    interrupted: bool
    ingestion: dict
    plan: dict
    seconds: float
    report: dict = field(default_factory=dict)


def build_tasks(spec: SweepSpec, planned: dict, ingestion: dict, algorithm) -> tuple[list, list]:
    """``(tasks, windows)``: every (configuration, preset, window), windows being the whole
    planned range or the walk-forward blocks."""
    wf = g.parse_walk_forward(spec.walk_forward)
    sessions = pd.DatetimeIndex(planned["sessions"])
    if len(sessions) == 0:
        raise ValueError(f"no session of {spec.bundle} in {spec.start}..{spec.end} after the "
                         f"look-back (earliest start {planned['earliest']}, last session "
                         f"{planned['last']})")
    windows = g.blocks(sessions, wf.out_of_sample) if wf else [(sessions[0], sessions[-1])]
    tasks = [Task(algorithm=algorithm, params=tuple(config), costs=preset,
                  start=str(first.date()), end=str(last.date()), window=i,
                  bundle=spec.bundle, ingestion=ingestion["ingestion"],
                  checksum=ingestion["checksum"], capital_base=float(spec.capital_base),
                  keep_perf=spec.keep_perf)
             for preset in spec.costs
             for config in (tuple(map(tuple, c)) for c in planned["configs"])
             for i, (first, last) in enumerate(windows)]
    return tasks, windows


def prepare(spec: SweepSpec, client) -> tuple[dict, dict, object]:
    """``(ingestion, plan, algorithm)``: the workers' common ingestion (refused when they
    differ) and the plan computed on a worker."""
    from .walkforward import SELECT

    if spec.select not in SELECT:
        raise g.GridError(f"--select {spec.select!r}: choose one of {', '.join(SELECT)}")
    g.parse_walk_forward(spec.walk_forward)
    if not spec.costs:
        raise g.GridError("--costs: give at least one preset")
    algorithm = algorithm_for(spec.algorithm)
    ingestion = check_ingestions(client, spec.bundle)
    planned = client.submit(plan, algorithm, spec.bundle, g.expand(spec.grid), spec.start,
                            spec.end, pure=False, key=f"gapline-plan-{time.time_ns()}").result()
    return ingestion, planned, algorithm


def run_sweep(spec: SweepSpec, out_dir, client, force=False, retry_errors=False,
              on_start=None, on_result=None, report=True) -> SweepOutcome:
    """Run ``spec`` on ``client``'s workers into ``out_dir`` (see the module docstring).
    ``on_start(to_run, skipped)`` and ``on_result(row)`` report progress."""
    from distributed import as_completed

    t0 = time.perf_counter()
    ingestion, planned, algorithm = prepare(spec, client)
    tasks, windows = build_tasks(spec, planned, ingestion, algorithm)
    store = SweepStore(out_dir)
    store.write_json("sweep.json", {"spec": spec.describe(), "ingestion": ingestion,
                                    "earliest": planned["earliest"], "last": planned["last"],
                                    "windows": [[str(a.date()), str(b.date())] for a, b in windows]})
    done = {} if force else store.finished(tasks, retry_errors=retry_errors)
    todo = [t for t in tasks if t.key not in done]
    if on_start:
        on_start(len(todo), len(done))
    futures = {client.submit(run_task, t, key=f"gapline-task-{t.key}-{time.time_ns()}",
                             pure=False, retries=0): t for t in todo}
    if report:  # the client idles while the workers run: import the report's libraries now
        threading.Thread(target=importlib.import_module, args=("gapline.sweep.report",),
                         daemon=True).start()
    ran = interrupted = 0
    pending = as_completed(list(futures))
    try:
        for future in pending:
            task = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 -- KilledWorker and friends
                result = {"row": {**task.describe(), **{m: None for m in METRICS},
                                  "run_seconds": None, "worker": None,
                                  "error": f"{type(exc).__name__}: {exc}"}}
            row = store.save(task, result)
            future.release()
            ran += 1
            if on_result:
                on_result(row)
    except KeyboardInterrupt:
        interrupted = True
        client.cancel(list(futures))
    finally:
        store.write_results(tasks)
    results = store.results(tasks)
    errors = int(results["error"].notna().sum()) if "error" in results else 0
    outcome = SweepOutcome(str(out_dir), tasks, results, ran, len(done), errors,
                           bool(interrupted), ingestion, planned, time.perf_counter() - t0)
    if interrupted:
        raise SweepInterrupted(outcome)
    if report:
        from .report import write_report

        outcome.report = write_report(spec, outcome, store, windows)
    return outcome


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; ``outcome`` says what was kept."""

    def __init__(self, outcome):
        super().__init__("sweep interrupted")
        self.outcome = outcome

"""One sweep task = one backtest: (parameters, cost preset, window), content-addressed.

:func:`run_task` runs on a Dask worker and calls :func:`algorithms.runner.run` with exactly the
arguments a sequential ``run(algorithm, start, end, bundle=..., costs=..., **params)`` gets,
so its perf frame is the sequential run's. It never raises: an exception in the backtest is
returned as the row's ``error`` and the sweep goes on.

A task's :attr:`Task.key` hashes everything its result depends on that the sweep can see: the
algorithm file's SHA-256, the parameters (after the algorithm converted them: ``top_n=05`` and
``top_n=5`` are one task), the preset, the window, the capital, the bundle and its ingestion
(folder timestamp and metadata checksum). The modules the algorithm imports are not hashed:
rerun with ``--force`` after changing them.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bundles.market import ET

#: bump when a task's result would change for the same inputs (the row's columns, metrics)
TASK_VERSION = 1
#: the numbers of a task's row (see :func:`metrics_row`)
METRICS = ("annual_return", "sharpe", "sortino", "max_drawdown", "fills", "turnover",
           "commission", "borrow_fees", "costs_paid", "sessions", "end_value")


@dataclass(frozen=True)
class Algorithm:
    """What a worker runs: ``name`` as given on the command line (``sell_gap`` or a path),
    the file's text for a path (shipped to workers that lack it) and its SHA-256."""
    name: str
    sha256: str
    source: str | None = None

    @property
    def stem(self) -> str:
        return Path(self.name).stem if self.name.endswith(".py") else self.name.split(".")[-1]


@dataclass(frozen=True)
class Task:
    algorithm: Algorithm
    params: tuple            # ((lower-case name, converted value), ...) in grid order
    costs: str
    start: str               # YYYY-MM-DD
    end: str
    window: int              # block number (walk-forward), 0 for the whole range
    bundle: str
    ingestion: str           # ingestion folder name (its timestamp)
    checksum: str            # of the ingestion's metadata (cluster.ingestion_info)
    capital_base: float = 1_000_000.0
    keep_perf: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        payload = {"v": TASK_VERSION, "algorithm": self.algorithm.stem,
                   "algorithm_sha256": self.algorithm.sha256,
                   "params": [[k, _jsonable(v)] for k, v in self.params],
                   "costs": self.costs, "start": self.start, "end": self.end,
                   "bundle": self.bundle, "ingestion": self.ingestion,
                   "checksum": self.checksum, "capital_base": float(self.capital_base)}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def param_dict(self) -> dict:
        return dict(self.params)

    def describe(self) -> dict:
        """The identifying columns of the task's row."""
        return {"key": self.key, **{k: _jsonable(v) for k, v in self.params},
                "costs": self.costs, "window": self.window, "start": self.start,
                "end": self.end}


def _jsonable(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def algorithm_for(name: str) -> Algorithm:
    """:class:`Algorithm` of a module name (``sell_gap``: the installed module's file) or a
    path (its text travels with the task)."""
    if str(name).endswith(".py"):
        path = Path(name).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"algorithm file {name} not found")
        text = path.read_text()
        return Algorithm(str(path), hashlib.sha256(text.encode()).hexdigest(), text)
    import importlib.util

    module = name if "." in name else f"algorithms.{name}"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(f"no algorithm module {module!r}")
    return Algorithm(name, file_sha256(spec.origin))


def algorithm_path(algorithm: Algorithm) -> str:
    """What to hand :func:`algorithms.runner.run` on this worker: the module name, the
    original file when it is there with the same hash, else the shipped text written to a
    private temporary folder named by its hash (same file stem, so the same algorithm name)."""
    if algorithm.source is None:
        return algorithm.name
    path = Path(algorithm.name)
    if path.is_file() and file_sha256(path) == algorithm.sha256:
        return str(path)
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"gapline-sweep-{os.getuid()}" / algorithm.sha256[:16]
    copy = folder / path.name
    if not copy.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{os.getpid()}"
        tmp.write_text(algorithm.source)
        os.replace(tmp, copy)
    return str(copy)


# ----------------------------------------------------------------------------- worker side
def worker_name() -> str:
    """The Dask worker's address (``host:pid`` outside a worker)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def plan(algorithm: Algorithm, bundle: str, configs: list[dict], start, end) -> dict:
    """Run on a worker before the sweep: each grid combination converted and checked by the
    algorithm (:func:`algorithms.runner.resolve`; a bad name or value raises here, before any
    task), the first session every combination can start on (its Pipeline's look-back), and
    the bundle's sessions in ``start``..``end`` after clamping to those and the bundle's end."""
    from types import SimpleNamespace

    from algorithms import history
    from algorithms.runner import bundle_history, load_algorithm, resolve
    from gapline.extension import load

    load()
    module = load_algorithm(algorithm_path(algorithm))
    first, sessions = bundle_history(bundle)
    sessions = pd.DatetimeIndex(sessions)
    if sessions.tz is not None:
        sessions = sessions.tz_convert("UTC").tz_localize(None)
    converted, earliest = [], pd.Timestamp(first).normalize()
    for config in configs:
        _, resolved = resolve(module, config)
        converted.append([(k, resolved[k.upper()]) for k in config])
        lookback = history.algorithm_lookback(vars(module), SimpleNamespace(**resolved)) or 0
        day = history.earliest_start(sessions, first, lookback)
        if day is None:
            raise ValueError(f"{config_text(config)} needs {lookback} sessions of history: "
                             f"more than {bundle} holds")
        earliest = max(earliest, pd.Timestamp(day))
    last = pd.Timestamp(ingested_last_session(bundle, sessions))
    lo, hi = max(pd.Timestamp(start), earliest), min(pd.Timestamp(end), last)
    window = sessions[(sessions >= lo) & (sessions <= hi)]
    return {"configs": converted, "earliest": str(earliest.date()), "last": str(last.date()),
            "sessions": [str(d.date()) for d in window]}


def config_text(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items()) or "the defaults"


def ingested_last_session(bundle, sessions) -> pd.Timestamp:
    """The last session of ``bundle``'s minute data (its daily reader's last day)."""
    from zipline.data import bundles as zb

    data = zb.load(bundle)
    last = getattr(data.equity_minute_bar_reader, "last_available_dt", None)
    if last is None:
        return pd.DatetimeIndex(sessions)[-1]
    last = pd.Timestamp(last)
    if last.tzinfo is not None:
        last = last.tz_convert(ET).tz_localize(None)
    return last.normalize()


def metrics_row(perf: pd.DataFrame) -> dict:
    """Annual return, Sharpe, Sortino, max drawdown (empyrical, as in tear sheets), fills,
    turnover (mean over sessions of traded dollars / portfolio value), commissions and borrow
    fees paid (slippage is in the fill prices, not here), sessions, end value."""
    from analysis.fills import transactions_frame
    from analysis.tearsheet import daily_returns, perf_stats

    stats = perf_stats(daily_returns(perf))
    txns = transactions_frame(perf)
    traded = (txns["amount"].abs() * txns["price"]).groupby(txns["session"]).sum() \
        if len(txns) else pd.Series(dtype=float)
    value = perf["portfolio_value"].astype(float)
    value.index = pd.DatetimeIndex(perf.index).tz_localize(None).normalize() \
        if pd.DatetimeIndex(perf.index).tz is not None else pd.DatetimeIndex(perf.index).normalize()
    turnover = float((traded.reindex(value.index).fillna(0.0) / value).mean()) if len(value) else 0.0
    commission = float(txns["commission"].fillna(0).sum()) if len(txns) else 0.0
    borrow = float(perf["borrow_fee"].fillna(0).sum()) if "borrow_fee" in perf else 0.0
    return {"annual_return": stats["annual_return"], "sharpe": stats["sharpe_ratio"],
            "sortino": stats["sortino_ratio"], "max_drawdown": stats["max_drawdown"],
            "fills": int(len(txns)), "turnover": turnover, "commission": commission,
            "borrow_fees": borrow, "costs_paid": commission + borrow,
            "sessions": int(len(perf)), "end_value": float(value.iloc[-1]) if len(value) else np.nan}


def _check_ingestion(task: Task) -> None:
    from .cluster import ingestion_info

    info = ingestion_info(task.bundle)
    if (info.get("ingestion"), info.get("checksum")) != (task.ingestion, task.checksum):
        raise RuntimeError(f"worker {worker_name()} sees ingestion {info.get('ingestion')} "
                           f"(checksum {str(info.get('checksum'))[:12]}) of {task.bundle}, the "
                           f"sweep was planned on {task.ingestion} ({task.checksum[:12]}); "
                           f"share ZIPLINE_ROOT between the workers")


def run_task(task: Task) -> dict:
    """Run one task; ``{"row": {...}, "returns": Series | None, "perf": frame | None}``.
    ``row`` holds :meth:`Task.describe`, :data:`METRICS`, ``run_seconds``, ``worker`` and
    ``error`` (``None`` or the exception's last traceback lines)."""
    from gapline.extension import load

    row = {**task.describe(), **{m: np.nan for m in METRICS}, "run_seconds": np.nan,
           "worker": worker_name(), "error": None}
    t0 = time.perf_counter()
    returns = perf = None
    try:
        load()
        _check_ingestion(task)
        from algorithms.runner import run

        perf = run(algorithm_path(task.algorithm), task.start, task.end, bundle=task.bundle,
                   capital_base=task.capital_base, costs=task.costs, **task.param_dict)
        row["run_seconds"] = time.perf_counter() - t0
        row.update(metrics_row(perf))
        from analysis.tearsheet import daily_returns

        returns = daily_returns(perf).tz_localize(None)
    except Exception as exc:  # noqa: BLE001 -- recorded in the row, the sweep goes on
        row["run_seconds"] = time.perf_counter() - t0
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        row["error"] = f"{type(exc).__name__}: {exc}\n" + "".join(lines[-3:])
    return {"row": row, "returns": returns, "perf": perf if task.keep_perf else None}


def task_record(task: Task) -> dict:
    """The task as JSON (stored next to its result)."""
    out = asdict(task)
    out["algorithm"].pop("source", None)
    out["params"] = [[k, _jsonable(v)] for k, v in task.params]
    out.pop("extra", None)
    return out

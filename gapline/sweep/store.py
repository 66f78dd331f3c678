"""A sweep's folder: one file per finished task, written the moment it finishes.

::

    <out>/tasks/<key>.json        the task and its row (metrics, run seconds, worker, error)
    <out>/returns/<key>.parquet   its daily returns (walk-forward stitching, DSR, PBO)
    <out>/perf/<key>.pickle       its perf frame (``--keep-perf``)
    <out>/results.parquet         one row per task of the last command (rebuilt from tasks/)

Every file is written to a temporary name and renamed, so an interrupted sweep (Ctrl-C, a
killed client) leaves only whole files: the finished tasks. A task is finished when its JSON
exists; rerunning the command skips it (unless ``force``; ``retry_errors`` reruns the ones
that recorded an error).
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from .tasks import Task, task_record


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class SweepStore:
    def __init__(self, out_dir):
        self.root = Path(out_dir)
        self.root.mkdir(parents=True, exist_ok=True)

    def _task_file(self, key) -> Path:
        return self.root / "tasks" / f"{key}.json"

    def _returns_file(self, key) -> Path:
        return self.root / "returns" / f"{key}.parquet"

    def perf_file(self, key) -> Path:
        return self.root / "perf" / f"{key}.pickle"

    # ------------------------------------------------------------------ writing
    def save(self, task: Task, result: dict) -> dict:
        """Store one finished task (returns and perf first, the JSON that marks it finished
        last); returns its row."""
        row = {k: _plain(v) for k, v in result["row"].items()}
        returns = result.get("returns")
        if returns is not None:
            frame = pd.DataFrame({"returns": pd.Series(returns, dtype=float)})
            frame.index.name = "session"
            tmp = self._returns_file(task.key).with_suffix(f".{os.getpid()}.tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(tmp)
            os.replace(tmp, self._returns_file(task.key))
        if result.get("perf") is not None:
            _atomic_write(self.perf_file(task.key), pickle.dumps(result["perf"]))
        record = {"task": task_record(task), "row": row}
        _atomic_write(self._task_file(task.key), json.dumps(record, indent=1, default=str).encode())
        return row

    # ------------------------------------------------------------------ reading
    def row(self, key) -> dict | None:
        path = self._task_file(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())["row"]
        except (ValueError, KeyError):  # a foreign or damaged file: the task reruns
            return None

    def finished(self, tasks, retry_errors=False) -> dict:
        """``{key: row}`` of the ``tasks`` already done (with ``retry_errors``: done without
        an error)."""
        done = {}
        for task in tasks:
            row = self.row(task.key)
            if row is not None and not (retry_errors and row.get("error")):
                done[task.key] = row
        return done

    def returns(self, key) -> pd.Series | None:
        path = self._returns_file(key)
        if not path.is_file():
            return None
        series = pd.read_parquet(path)["returns"]
        series.index = pd.DatetimeIndex(series.index)
        return series

    def results(self, tasks) -> pd.DataFrame:
        """One row per task of ``tasks`` that has a result, in task order."""
        rows = [r for r in (self.row(t.key) for t in tasks) if r is not None]
        return pd.DataFrame(rows)

    def write_results(self, tasks) -> Path:
        frame = self.results(tasks)
        path = self.root / "results.parquet"
        tmp = path.with_name(f".results.{os.getpid()}.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        return path

    def write_json(self, name, payload) -> Path:
        path = self.root / name
        _atomic_write(path, json.dumps(payload, indent=1, default=_plain).encode())
        return path

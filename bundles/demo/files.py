"""Writing the files: minute and day files per session (minute files formatted and compressed
in a process pool) and the reference files."""
from __future__ import annotations

import concurrent.futures as futures
import contextlib
import logging
import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np

from .. import layout
from ..progress import progress_bar

log = logging.getLogger(__name__)


def default_workers() -> int:
    """The CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def write_sessions(sim, root: Path, only, workers: int, progress: bool) -> tuple[int, int]:
    """Simulate the sessions in order and write their minute and day files; ``only`` (a set of
    session labels, or None for all) limits the files written and stops the simulation after
    the last of them. Returns the minute and day rows simulated."""
    days = sim.sessions.days
    n_sessions = len(days)
    if only is not None:  # the simulation is sequential: stop after the last requested session
        n_sessions = int(np.searchsorted(days, max(only), side="right")) if only else 0
    n_minute = n_day = 0
    with _writer_pool(workers) as pool, \
            progress_bar("polygon-demo sessions", n_sessions, progress, "sessions") as bar:
        pending: list[futures.Future] = []
        for d in range(n_sessions):
            day = days[d]
            wanted = only is None or day in only
            minute, daily = sim.simulate_day(d, build=wanted)
            n_minute += minute["n"]
            n_day += len(daily)
            if wanted:
                if pool is None:
                    _write_minute_file(root, day, minute["frame"])
                else:
                    pending.append(pool.submit(_write_minute_file, str(root), day,
                                               minute["frame"]))
                    while len(pending) > 2 * workers:
                        pending.pop(0).result()
                layout.write_day_file(root, layout.DAY_DATASET, day, daily, overwrite=True)
            bar.update(1)
        for fut in pending:
            fut.result()
    return n_minute, n_day


def write_reference(root: Path, payloads: dict, dated=()) -> None:
    """The reference files, and the dated details ``(ticker, date, results)`` (the folder is
    the generator's: samples of an older demo version are removed first)."""
    import shutil

    from .. import reference_history
    from .params import LAST_UPDATED

    for name, payload in payloads.items():
        layout.write_reference(root, name, payload, overwrite=True)
    shutil.rmtree(reference_history.dated_details_dir(root), ignore_errors=True)
    for ticker, day, results in dated:
        reference_history.write_dated_details(root, ticker, day, results,
                                              fetched_utc=LAST_UPDATED, overwrite=True)


def _write_minute_file(root, day, frame):
    layout.write_day_file(Path(root), layout.MINUTE_DATASET, day, frame, overwrite=True)


@contextlib.contextmanager
def _writer_pool(workers):
    """A process pool formatting and compressing minute files (None: write in this process)."""
    if workers <= 1:
        yield None
        return
    # fork is cheap and safe on Linux (workers only format and compress); elsewhere the
    # platform default (spawn on macOS and Windows).
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    try:
        pool = futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    except (OSError, NotImplementedError) as exc:  # e.g. no semaphores in a sandbox
        log.warning("polygon-demo: no worker processes (%s); writing in this process", exc)
        yield None
        return
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

"""Tasks run inline or across worker processes, each worker holding one copy of a state.

:class:`TaskPool` runs ``fn(state, *args)`` for a list of ``args``: with one worker, inline
and in order (no pool at all); with more, in ``workers`` *spawned* processes (a fresh
interpreter: nothing of the parent's threads -- pyarrow's pools, the day-file prefetcher --
or locks is inherited, and zipline's writer need not pickle), each given ``state`` once at
start-up and running one task at a time, so a worker's memory is one task's. Results come
back as tasks finish. A task's exception is raised in the parent as it was raised in the
worker (same type and message); the pool then cancels the tasks not started and waits for
the running ones, so nothing writes into a folder the caller is about to remove.
``start_method="fork"`` forks the workers instead (milliseconds, not a re-import), for a
caller that starts them before its own reader threads run and whose tasks need none of them
(an incremental ingest's table sharing).

:meth:`TaskPool.start` starts the workers at once (their start-up then overlaps whatever the
parent does next) and :meth:`TaskPool.submit` hands one task to them without waiting: work in
the background while the parent writes the rest.

Used by pass 2 (:mod:`.minutes`): a task is a bucket of minute bars; the state is the minute
tables' layout, the ticker ids and the sid map; and by an incremental ingest's table sharing
(:mod:`.incremental_minutes`). Also: how many buckets pass 1 makes (:func:`bucket_count`).
"""
from __future__ import annotations


# Below this many rows and tickers an ingest is not split for workers: starting a pool
# costs ~2-3 s (each worker imports zipline), writing a sid's table ~2-20 ms (file system).
PARALLEL_MIN_ROWS = 1_000_000
PARALLEL_MIN_TICKERS = 1_000
BUCKETS_PER_WORKER = 3  # a few buckets per worker so the last ones finish together

_STATE = None  # a worker's copy of the pool's state


def bucket_count(est_rows: int, rows_per_bucket: int, workers: int, est_tickers: int = 0,
                 max_buckets: int = 512) -> int:
    """Buckets for ``est_rows`` rows of ``est_tickers`` tickers: enough to keep each under
    ``rows_per_bucket`` (memory), and with several workers at least ``BUCKETS_PER_WORKER``
    per worker once the ingest is big enough to be worth a pool."""
    n = -(-max(int(est_rows), 1) // int(rows_per_bucket))
    if workers > 1 and (est_rows >= PARALLEL_MIN_ROWS or est_tickers >= PARALLEL_MIN_TICKERS):
        n = max(n, BUCKETS_PER_WORKER * workers)
    return int(min(max(n, 1), max_buckets))


class TaskPool:
    """``with TaskPool(workers, state) as pool: for result in pool.run(fn, tasks): ...``"""

    def __init__(self, workers: int, state, start_method: str = "spawn"):
        self.workers = max(1, int(workers))
        self.state = state
        self.start_method = start_method
        self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        return False

    def run(self, fn, tasks):
        """Yield ``fn(state, *task)`` for each task: in order inline, as they finish in a pool.
        ``fn`` must be a module-level function (workers import it by name)."""
        tasks = list(tasks)
        if self.workers == 1 or len(tasks) <= 1 and self._executor is None:
            for task in tasks:
                yield fn(self.state, *task)
            return
        from concurrent.futures import FIRST_COMPLETED, wait

        executor = self._start()
        pending = {executor.submit(_call, fn, task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()

    def start(self) -> "TaskPool":
        """Start every worker now (a pool starts them as tasks arrive otherwise)."""
        if self.workers > 1:
            executor = self._start()
            for _ in range(self.workers):  # one idle task each: 3.11 spawns one per submit
                executor.submit(_call, _idle, ())
        return self

    def submit(self, fn, *task):
        """A future of ``fn(state, *task)``, run in a worker process (with one worker too:
        a caller that wants the work inline runs it itself)."""
        return self._start().submit(_call, fn, task)

    def _start(self):
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context(self.start_method),
                initializer=_init_worker, initargs=(self.state,))
        return self._executor


def _init_worker(state):
    global _STATE
    _STATE = state
    try:  # one process per core already: no blosc threads on top
        import bcolz

        bcolz.set_nthreads(1)
    except ImportError:  # pragma: no cover
        pass


def _idle(state):
    return None


def _call(fn, task):
    return fn(_STATE, *task)

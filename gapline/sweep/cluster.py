"""The Dask side of a sweep: a local cluster or a scheduler, gapline's extension on every
worker, and one ingestion of the bundle seen by all of them.

Workers read the bundle from their own ``ZIPLINE_ROOT``. On one host the local cluster's
workers share the client's; on several hosts ``ZIPLINE_ROOT`` must be shared storage (NFS, a
cluster file system) or an identical copy. :func:`check_ingestions` asks every worker which
ingestion zipline would load and a checksum of its metadata (:func:`ingestion_info`) and
refuses a sweep when they differ, naming each worker and what it sees.
"""
from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

#: files whose bytes identify an ingestion (relative to its folder; globs); the bar data
#: itself is not read: these record its sids, sessions and sizes
METADATA_GLOBS = ("assets-*.sqlite", "adjustments.sqlite", "daily_equities.bcolz/__attrs__",
                  "daily_equities.bcolz/__rootdirs__", "daily_equities.bcolz/*/meta/sizes",
                  "minute_equities.bcolz/metadata.json", "gapline/ingest_report.json")


class ClusterError(RuntimeError):
    """The workers cannot run the sweep (no workers, different ingestions)."""


def ingestion_info(bundle: str) -> dict:
    """Which ingestion of ``bundle`` zipline loads in this process: folder, name (its
    timestamp) and SHA-256 of :data:`METADATA_GLOBS`; ``error`` when there is none."""
    info = {"host": socket.gethostname(), "pid": os.getpid(),
            "zipline_root": os.environ.get("ZIPLINE_ROOT", "~/.zipline")}
    try:
        from bundles.ingestions import ingestion_dir
        from gapline.extension import load

        load()
        folder = ingestion_dir(bundle)
    except Exception as exc:  # noqa: BLE001 -- reported per worker by check_ingestions
        return {**info, "ingestion": None, "checksum": None, "error": f"{exc}"}
    digest = hashlib.sha256()
    for pattern in METADATA_GLOBS:
        for path in sorted(folder.glob(pattern)):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return {**info, "path": str(folder), "ingestion": folder.name, "checksum": digest.hexdigest()}


def check_ingestions(client, bundle: str) -> dict:
    """The one ingestion every worker of ``client`` sees (``ingestion``, ``checksum``,
    ``workers``); :class:`ClusterError` listing each worker's view when they differ or a
    worker has none."""
    views = client.run(ingestion_info, bundle)
    if not views:
        raise ClusterError("the cluster has no workers")
    seen = {(v.get("ingestion"), v.get("checksum")) for v in views.values()}
    if len(seen) == 1 and None not in next(iter(seen)):
        ingestion, checksum = next(iter(seen))
        return {"ingestion": ingestion, "checksum": checksum, "workers": len(views),
                "path": next(iter(views.values())).get("path")}
    lines = []
    for address, v in sorted(views.items()):
        what = (f"ingestion {v['ingestion']} checksum {v['checksum'][:12]}" if v.get("ingestion")
                else f"no ingestion ({v.get('error')})")
        lines.append(f"  {address} (host {v['host']}, ZIPLINE_ROOT={v['zipline_root']}): {what}")
    raise ClusterError(
        f"the workers do not all see the same ingestion of bundle {bundle!r}, so their results "
        f"could not be compared:\n" + "\n".join(lines) +
        f"\nPut ZIPLINE_ROOT on storage every worker mounts at the same path (or copy one "
        f"ingestion folder to each), then `zipline ingest -b {bundle}` once; see README "
        f"'Sweeps: cluster set-up'.")


class GaplineExtension(WorkerPlugin):
    """A Dask worker plugin: every worker (also one that joins or restarts later) loads
    gapline's zipline extension (:func:`gapline.extension.load`: the bundles and the
    reference-column Pipeline loader) and, when given, extension files (``zipline -e``)."""

    name = "gapline-extension"

    def __init__(self, extensions=()):
        self.extensions = tuple(str(Path(e).resolve()) for e in extensions)

    def setup(self, worker=None):
        load_extensions(self.extensions)


def load_extensions(extensions=()) -> None:
    """gapline's extension, then each extension file (zipline's loader, run once per file)."""
    from gapline.extension import load

    load()
    if extensions:
        from zipline.extensions import load_extensions as zipline_load

        zipline_load(False, list(extensions), True, os.environ)


def start_client(workers: int | None = None, scheduler: str | None = None,
                 dashboard_address: str = ":8787", extensions=()):
    """``(client, cluster)``: connected to ``scheduler`` (``cluster`` None), else a
    ``LocalCluster`` of ``workers`` processes with one thread each (zipline runs are
    CPU-bound and not thread-safe). The plugin is registered on every worker."""
    from distributed import Client, LocalCluster

    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        import dask

        preload_workers()
        with dask.config.set(LOCAL_WORKER_CONFIG):
            cluster = LocalCluster(n_workers=int(workers or os.cpu_count() or 1),
                                   threads_per_worker=1, processes=True,
                                   dashboard_address=dashboard_address)
        client = Client(cluster)
    try:
        client.register_plugin(GaplineExtension(extensions), name=GaplineExtension.name)
    except Exception:
        client.close()
        if cluster is not None:
            cluster.close()
        raise
    return client, cluster


#: Dask settings of the local cluster's workers. Each wake-up of a worker's event loop takes
#: the GIL from the backtest running in its task thread: the 20 ms event-loop health tick and
#: the 500 ms system monitor cost a pure-Python backtest ~10% (measured: 8.6-8.9 s -> 7.9-8.0
#: s per gap_and_go task on the demo); the statistical profiler samples the task's thread
#: every 10 ms, a few percent more, for a flame graph nobody asked for. Workers of a
#: ``--scheduler`` cluster take these from their own configuration (README "Sweeps").
LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False,
                       "distributed.admin.tick.interval": "1s",
                       "distributed.admin.system-monitor.interval": "5s"}

#: imported once, in the fork server every local worker is forked from, instead of by each
#: worker after it starts (zipline and gapline take ~3 s to import; a restarted worker, after
#: a crash, comes back with them loaded too)
WORKER_PRELOAD = ("zipline", "zipline.algorithm", "zipline.pipeline", "algorithms.runner",
                  "analysis.tearsheet", "gapline.extension")


def preload_workers() -> None:
    """Start this process's local workers from a fork server that has imported
    :data:`WORKER_PRELOAD` (Dask's ``multiprocessing-method: forkserver``; set for the rest of
    the process, so the nannies restart workers the same way). Workers of a ``--scheduler``
    cluster are not started here and are unaffected."""
    import dask
    from distributed.utils import get_mp_context

    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    get_mp_context()  # Dask's own preload list (distributed and its packages) goes in first
    from multiprocessing import forkserver

    modules = list(forkserver._forkserver._preload_modules)
    missing = [m for m in WORKER_PRELOAD if m not in modules]
    if missing:
        forkserver.set_forkserver_preload(modules + missing)
    # start it now: it imports while this process starts the scheduler
    forkserver.ensure_running()


def dashboard_link(client) -> str | None:
    """The Dask dashboard's URL (None without bokeh, which serves it)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return None
    return getattr(client, "dashboard_link", None)

"""Ingestion folders of a bundle: which one zipline loads, what each holds, which are broken.

One home for "the ingestion folder of a bundle" (by name, or from an open asset finder), the
name of gapline's side-table folder inside it, and the registration of gapline's bundles when a
caller outside ``zipline run`` (research code, the CLI) needs them.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from .layout import zipline_root

SIDE_DIR = "gapline"  # gapline's side tables inside an ingestion folder
REPORT_FILE = "ingest_report.json"
ASSETS_FILE = "assets.parquet"  # reference columns per sid (today's snapshot: see below)
EXTENDED_HOURS_FILE = "extended_hours.parquet"  # pre-market / after-hours per sid and session
AUCTIONS_FILE = "auctions.parquet"  # opening / closing cross prints per sid and session
# dated reference values per sid (shares outstanding, type, exchange), joined as of a session
REFERENCE_HISTORY_FILE = "reference_history.parquet"
# What a complete gapline ingestion folder holds (zipline's files plus our report).
REQUIRED = ("daily_equities.bcolz", "minute_equities.bcolz", "adjustments.sqlite",
            f"{SIDE_DIR}/{REPORT_FILE}")


def side_dir(ingestion) -> Path:
    """gapline's side-table folder of an ingestion folder."""
    return Path(ingestion) / SIDE_DIR


def ensure_registered(bundle: str) -> None:
    """Register gapline's bundles with zipline when ``bundle`` is not registered yet; raise
    ``ValueError`` saying why when it still is not."""
    from zipline.data import bundles as zb

    if bundle in zb.bundles:
        return
    if bundle in ("polygon", "polygon-demo"):
        try:
            from .register import register_all

            register_all()
        except Exception as exc:  # noqa: BLE001 -- report why, below
            raise ValueError(f"bundle {bundle!r} is not registered and registering gapline's "
                             f"bundles failed: {exc!r}") from exc
        if bundle in zb.bundles:
            return
    raise ValueError(f"bundle {bundle!r} is not registered in this process; load its zipline "
                     f"extension first (known: {sorted(zb.bundles)})")


def ingestion_dir(bundle="polygon", timestamp=None, environ=None) -> Path:
    """The ingestion folder zipline loads for ``bundle`` at ``timestamp`` (default: now).

    The newest ``zipline.utils.paths.data_path([bundle, <ingestion>])`` not after ``timestamp``:
    the rule of zipline's ``most_recent_data`` (which zipline does not export).
    """
    from zipline.data.bundles import from_bundle_ingest_dirname
    from zipline.utils.paths import data_path, hidden

    environ = os.environ if environ is None else environ
    ensure_registered(bundle)
    cutoff = pd.Timestamp.utcnow() if timestamp is None else pd.Timestamp(timestamp)
    if cutoff.tzinfo is not None:
        cutoff = cutoff.tz_convert("UTC").tz_localize(None)
    base = Path(data_path([bundle], environ=environ))
    try:
        names = [n for n in os.listdir(base) if not hidden(n)]
    except FileNotFoundError:
        names = []
    stamps = {}
    for n in names:
        stamp = from_bundle_ingest_dirname(n)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        if stamp <= cutoff:
            stamps[n] = stamp
    if not stamps:
        raise ValueError(f"no data for bundle {bundle!r} on or before {cutoff} under {base}; "
                         f"run: zipline ingest -b {bundle}")
    return base / max(stamps, key=stamps.get)


def ingestion_dir_of(asset_finder) -> Path:
    """The ingestion folder an ``AssetFinder`` was opened from (its sqlite file's folder)."""
    engine = getattr(asset_finder, "engine", None)
    database = getattr(getattr(engine, "url", None), "database", None)
    if not database or database == ":memory:":
        raise ValueError(
            "gapline's side tables need an asset finder opened from an ingested bundle "
            f"(got {engine!r}); use factors.loaders.run_pipeline or a bundle-backed algorithm")
    return Path(database).resolve().parent


def ingestions(bundle: str, environ=None) -> list[dict]:
    """Every ingestion folder of ``bundle``, oldest first, with what it is missing."""
    base = zipline_root(environ) / "data" / bundle
    if not base.is_dir():
        return []
    rows = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        missing = [r for r in REQUIRED if not (folder / r).exists()]
        if not any(folder.glob("assets-*.sqlite")):
            missing.append("assets-N.sqlite")
        rows.append({"path": folder, "name": folder.name, "missing": missing,
                     "ok": not missing})
    return rows


def broken_ingestions(bundle: str, environ=None) -> list[Path]:
    return [r["path"] for r in ingestions(bundle, environ) if not r["ok"]]


def remove_broken(bundle: str, environ=None) -> list[Path]:
    """Delete incomplete ingestion folders (zipline would load the newest one, broken or not)."""
    removed = broken_ingestions(bundle, environ)
    for path in removed:
        shutil.rmtree(path)
    return removed


LOCK_FILE = ".gapline.lock"  # in data/<bundle>/: held by the running ingest (hidden from zipline)
INGEST_TMP_PREFIX = "gapline-ingest-"  # + "<pid>-": gapline's pass-1 bucket files (temp dir)
LEGACY_AGE = 3600.0  # seconds: temp folders without an owner pid older than this are stale


class IngestLocked(RuntimeError):
    """Another ingest of the same bundle holds the lock."""


@contextlib.contextmanager
def bundle_lock(bundle: str, environ=None):
    """Hold ``$ZIPLINE_ROOT/data/<bundle>/.gapline.lock`` (``fcntl.flock``) for one ingest;
    raise :class:`IngestLocked` at once, naming the holder's pid, when another one holds it.
    The kernel drops the lock when its process dies (SIGKILL included)."""
    import fcntl

    path = zipline_root(environ) / "data" / bundle / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            raise IngestLocked(f"another ingest of {bundle} is running (pid {pid}); wait for it "
                               f"to finish (lock file {path})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield path
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_dead(name: str, prefix: str) -> bool | None:
    """True/False when ``name`` is ``<prefix><pid>-...`` with a dead/live pid; None otherwise."""
    m = re.match(re.escape(prefix) + r"(\d+)-", name)
    return None if m is None else not _pid_alive(int(m.group(1)))


def _old(path: Path, age: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > age
    except OSError:
        return False


def stale_temp(bundle: str, environ=None, tmp=None) -> list[Path]:
    """Temp folders killed ingests left behind: zipline's working dirs
    (``data/.gapline-work-<pid>-*``) and gapline's bucket folders (``<tmp>/gapline-ingest-*``)
    of processes that no longer run, and zipline's ``<tmp>/tmp*/<bundle>`` left by ingests
    before gapline moved the working dir (older than an hour)."""
    from .zipline_patches import WORK_PREFIX

    found = []
    data = zipline_root(environ) / "data"
    if data.is_dir():
        found += [p for p in data.iterdir()
                  if p.name.startswith(WORK_PREFIX) and _owner_dead(p.name, WORK_PREFIX)]
    tmp = Path(tmp or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for p in tmp.iterdir():
            if p.name.startswith(INGEST_TMP_PREFIX) and p.is_dir():
                dead = _owner_dead(p.name, INGEST_TMP_PREFIX)
                if dead or (dead is None and _old(p, LEGACY_AGE)):
                    found.append(p)
            elif (p.name.startswith("tmp") and p.is_dir() and (p / bundle).is_dir()
                  and _old(p / bundle, LEGACY_AGE)
                  and {c.name for c in p.iterdir()} == {bundle}):
                found.append(p)
    return sorted(found)


def remove_stale_temp(bundle: str, environ=None, tmp=None) -> list[Path]:
    """Delete :func:`stale_temp` folders; returns them."""
    removed = stale_temp(bundle, environ, tmp)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed

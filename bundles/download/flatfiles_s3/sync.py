"""The sync driver: :func:`sync_flat_files` and the :class:`FlatFilesSummary` it returns."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from bundles.layout import MINUTE_DATASET
from bundles.progress import progress_bar

from ..manifest import SessionManifest, manifest_path
from .connect import (
    BUCKET,
    FlatFilesError,
    client_error_message,
    make_client,
    resolve_endpoint,
    scrub,
    scrubbed_logs,
)
from .listing import DATASETS, list_objects
from .state import (
    CONFLICT,
    NEW,
    REPLACED,
    UNCHANGED,
    FlatFilesManifest,
    Planned,
    classify,
    utc_now,
)
from .transfer import fetch, install_new, install_replacement

log = logging.getLogger(__name__)

SAVE_EVERY = 2.0  # seconds between manifest saves while files complete (and once at the end)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


@dataclass
class FlatFilesSummary:
    """What one :func:`sync_flat_files` call found and did."""

    dry_run: bool = False
    planned: list = field(default_factory=list)  # Planned, one per listed object
    fetched: list = field(default_factory=list)  # keys written as new files
    replaced: list = field(default_factory=list)  # (key, path of the kept old copy)
    adopted: int = 0  # present and identical, recorded in the manifest without a transfer
    failed: list = field(default_factory=list)  # (key, message)
    bytes_fetched: int = 0

    def of(self, action: str) -> list:
        return [p for p in self.planned if p.action == action]

    def count(self, action: str) -> tuple[int, int]:
        """(files, bytes) of the listed objects classified as ``action``."""
        items = self.of(action)
        return len(items), sum(p.obj.size for p in items)

    def describe(self) -> str:
        (n_new, b_new), (n_rep, b_rep), (n_same, b_same), (n_conf, _) = (
            self.count(a) for a in (NEW, REPLACED, UNCHANGED, CONFLICT))
        if self.dry_run:
            lines = [f"dry run, nothing written: {n_new} new ({_mb(b_new)}), {n_rep} replaced "
                     f"({_mb(b_rep)}), {n_same} unchanged ({_mb(b_same)}), {n_conf} "
                     f"conflict(s); would fetch {n_new + n_rep} file(s), {_mb(b_new + b_rep)}"]
            lines += [f"{p.action:<9} {p.obj.key}  {p.obj.size:,} bytes"
                      + (f"  ({p.reason})" if p.action == REPLACED else "")
                      for p in self.planned if p.action in (NEW, REPLACED)]
        else:
            lines = [f"flat files: {len(self.fetched)} new, {len(self.replaced)} replaced "
                     f"({_mb(self.bytes_fetched)} fetched), {n_same} unchanged"
                     + (f" (of which {self.adopted} already present, now recorded)"
                        if self.adopted else "")
                     + f", {len(self.failed)} failed, {n_conf} conflict(s)"]
            lines += [f"replaced {key}: the old copy is kept as {aside}"
                      for key, aside in self.replaced]
            lines += [f"warning: {key} failed: {message}" for key, message in self.failed]
            if self.failed:
                lines.append("warning: the files that failed were not written; run the same "
                             "command again to fetch them (finished files are not fetched "
                             "again)")
        lines += [f"warning: conflict {p.path}: {p.reason}" for p in self.of(CONFLICT)]
        if not self.planned:
            lines.append("no flat files listed in that range (sessions appear around 11:00 ET "
                         "the next day)")
        return "\n".join(lines)


class _Stopped(Exception):
    """Another transfer failed fatally (or Ctrl-C): this one stops too."""


def sync_flat_files(root, start, end=None, *, datasets=DATASETS, endpoint: str | None = None,
                    profile: str | None = None, jobs: int = 4, dry_run: bool = False,
                    progress: bool = True, client=None, bucket: str = BUCKET,
                    on_bytes: Callable[[str, int], None] | None = None,
                    now: Callable = utc_now) -> FlatFilesSummary:
    """Mirror the vendor's flat files of [start, end] into ``root``'s raw cache.

    Only objects missing locally, or whose ETag or size changed since they were synced, are
    fetched; a changed one keeps its old copy as ``YYYY-MM-DD.replaced-<UTC time>.csv.gz``
    (:mod:`.transfer`), and ``raw/manifests/flatfiles.json`` records both (:mod:`.state`).

    Parameters
    ----------
    root : path
        The data root (holds ``raw/``, or ``us_stocks_sip/`` directly).
    start, end : date-like
        Days of the files (by their names); ``end`` defaults to today.
    datasets : iterable of str
        ``minute_aggs_v1`` and/or ``day_aggs_v1``.
    endpoint : str, optional
        S3 endpoint; default ``$GAPLINE_S3_ENDPOINT``, else ``https://files.massive.com``.
    profile : str, optional
        AWS profile holding the S3 keys; default boto3's chain (environment, ``AWS_PROFILE``,
        the default profile).
    jobs : int
        Files transferred at once (a thread pool).
    dry_run : bool
        List and classify only; nothing is written (not even the manifest).
    progress : bool
        A click progress bar over the bytes to fetch; else a log line about every 10%.
    client : boto3 S3 client, optional
        Injectable; default :func:`.connect.make_client`.
    on_bytes : callable, optional
        ``on_bytes(key, n)`` after every chunk written; an exception it raises stops the
        sync (used by the tests to cut a transfer off).

    Returns
    -------
    FlatFilesSummary
        Files that failed (403, retries exhausted, size mismatch) are listed in ``failed``;
        the others are written.

    Raises
    ------
    FlatFilesError
        Bad endpoint, no credentials, or the listing failed.
    """
    root = Path(root)
    endpoint = resolve_endpoint(endpoint)
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs!r}")
    datasets = tuple(datasets)
    if not datasets:
        raise ValueError("no dataset to sync (both minute and day aggregates were excluded)")
    end = pd.Timestamp(end if end is not None else pd.Timestamp.today()).normalize()
    secrets = ()
    if client is None:
        client, secrets = make_client(endpoint, profile, jobs)
    summary = FlatFilesSummary(dry_run=dry_run)
    with scrubbed_logs(secrets):
        manifest = FlatFilesManifest.load(root, endpoint, bucket)
        try:
            objects = _list(client, bucket, datasets, start, end, endpoint, secrets)
            with ThreadPoolExecutor(int(jobs)) as pool:
                summary.planned = list(pool.map(lambda o: classify(o, root, manifest),
                                                objects))
            if dry_run:
                return summary
            for plan in summary.planned:
                if plan.adopt:
                    manifest.record(plan.obj, plan.path, now(), source="adopted")
                    summary.adopted += 1
            _transfer_all(client, bucket, root, manifest, summary, int(jobs), progress,
                          on_bytes, now, secrets)
        finally:
            if not dry_run and manifest.dirty:
                manifest.save()
    log.info("%s", summary.describe().split("\n", 1)[0])
    return summary


def _list(client, bucket, datasets, start, end, endpoint, secrets):
    import botocore.exceptions

    try:
        return list_objects(client, bucket, datasets, start, end)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise FlatFilesError(f"listing s3://{bucket}/us_stocks_sip/ at {endpoint}: "
                             f"{client_error_message(exc, secrets)}") from None


def _transfer_all(client, bucket, root, manifest, summary, jobs, progress, on_bytes, now,
                  secrets) -> None:
    import botocore.exceptions

    todo = [p for p in summary.planned if p.action in (NEW, REPLACED)]
    if not todo:
        return
    stop, lock = threading.Event(), threading.Lock()
    expected = (FlatFilesError, OSError, botocore.exceptions.ClientError,
                botocore.exceptions.BotoCoreError)
    with progress_bar("flat files", sum(p.obj.size for p in todo), progress, "bytes") as bar:
        def chunk_done(key, n):
            if stop.is_set():
                raise _Stopped()
            if on_bytes is not None:
                on_bytes(key, n)
            with lock:
                bar.update(n)

        def work(plan: Planned):
            if stop.is_set():
                raise _Stopped()
            tmp = fetch(client, bucket, plan.obj, plan.path,
                        lambda n: chunk_done(plan.obj.key, n))
            if plan.action == NEW:
                install_new(tmp, plan.path)
                return None
            return install_replacement(tmp, plan.path, now())

        pool = ThreadPoolExecutor(jobs)
        try:
            futures = {pool.submit(work, plan): plan for plan in todo}
            last_save = time.monotonic()
            for future in as_completed(futures):
                plan = futures[future]
                try:
                    aside = future.result()
                except expected as exc:
                    summary.failed.append((plan.obj.key, client_error_message(exc, secrets)
                                           if not isinstance(exc, FlatFilesError)
                                           else scrub(exc, secrets)))
                    continue
                _done(plan, aside, root, manifest, summary, now)
                if plan.action == REPLACED or time.monotonic() - last_save > SAVE_EVERY:
                    manifest.save()
                    last_save = time.monotonic()
        except BaseException:
            stop.set()  # running transfers stop at their next chunk and remove their temp file
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _done(plan: Planned, aside, root: Path, manifest: FlatFilesManifest,
          summary: FlatFilesSummary, now) -> None:
    """Bookkeeping of one installed file (main thread)."""
    when = now()
    summary.bytes_fetched += plan.obj.size
    if aside is None:
        manifest.record(plan.obj, plan.path, when)
        summary.fetched.append(plan.obj.key)
        return
    old = manifest.entry(plan.obj.key) or {}
    size = aside.stat().st_size
    manifest.record(plan.obj, plan.path, when, replaced={
        "etag": old.get("etag") if old.get("size") == size else None, "size": size,
        "synced_at": old.get("synced_at"), "replaced_at": when.isoformat(),
        "reason": plan.reason, "path": manifest.relative(aside)})
    summary.replaced.append((plan.obj.key, str(aside)))
    if plan.obj.dataset == MINUTE_DATASET:
        _forget_in_session_manifest(root, plan)


def _forget_in_session_manifest(root: Path, plan: Planned) -> None:
    """A REST download's session manifest lists which tickers each minute file holds; drop the
    replaced file's entry so that its next load reads the new file's tickers."""
    if not manifest_path(root, MINUTE_DATASET, plan.obj.day).exists():
        return
    session = SessionManifest.load(root, MINUTE_DATASET, plan.obj.day)
    if session.files.pop(plan.path.name, None) is not None:
        session.save()

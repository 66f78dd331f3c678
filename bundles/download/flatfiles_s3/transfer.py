"""Moving one flat file from the bucket into the raw cache, never leaving half a file.

A transfer writes a hidden temp file next to its destination (``.YYYY-MM-DD.csv.gz.<random>
.s3tmp``, which no reader lists), requests the object with ``If-Match: <listed ETag>`` (so a
file the vendor replaces mid-transfer fails instead of mixing two versions), resumes a broken
stream with a ``Range`` request from the bytes already written, and checks the final size
against the listing. Only then does the file get its name:

* a **new** file: ``os.replace(temp, day file)``;
* a **replacement**: 1. the new bytes are complete in the temp file; 2. the current day file
  gets a second name, ``YYYY-MM-DD.replaced-<UTC timestamp>.csv.gz`` (a hard link; a copy
  where links are not supported); 3. ``os.replace(temp, day file)`` swaps the new bytes in,
  atomically. The day file is never opened for writing, and at every instant the session has
  exactly one complete day file (old or new), so an ingest running meanwhile reads one version.

What a crash leaves: during 1, a stale hidden temp file (removed by the next transfer of that
file); between 2 and 3, the old day file plus an identical dated copy (the next sync finds the
manifest's old ETag, fetches again and reuses that dated copy instead of making another);
after 3 but before the manifest is saved, the new day file and the dated copy (the next sync
sees the day file's MD5 equals the vendor's ETag and only records it -- the dated copy stays on
disk, missing from the manifest's ``replaced`` list; for a multipart ETag it fetches the file
once more).
"""
from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from .connect import FlatFilesError
from .listing import RemoteObject

log = logging.getLogger(__name__)

CHUNK = 1 << 20
STREAM_ATTEMPTS = 5  # broken streams per file, each resumed with a Range request
TEMP_SUFFIX = ".s3tmp"
_sleep = time.sleep  # between resumed streams (tests replace it)
# A raw file the vendor replaced. The day-file and part-file patterns of bundles.layout do not
# match it, so list_day_files, day_file_parts and the ingest never read it.
_REPLACED_FILE_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})\.replaced-(\d{8}T\d{6}Z)(?:-([1-9]\d*))?\.csv(\.gz)?$")


def replaced_file_path(path: Path, when: dt.datetime) -> Path:
    """Where the superseded copy of raw file ``path`` goes:
    ``YYYY-MM-DD.replaced-<UTC YYYYmmddTHHMMSSZ>.csv.gz`` next to it (``-2``, ``-3``, ...
    when the name is taken)."""
    path = Path(path)
    stem, _, suffix = path.name.partition(".")
    if suffix not in ("csv", "csv.gz"):
        raise ValueError(f"{path}: not a .csv or .csv.gz raw file")
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    stamp = f"{when:%Y%m%dT%H%M%S}Z"
    n = 1
    while True:
        candidate = path.with_name(f"{stem}.replaced-{stamp}{'' if n == 1 else f'-{n}'}"
                                   f".{suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def is_replaced_copy(name: str) -> bool:
    """Whether file name ``name`` is a replaced copy (:func:`replaced_file_path`)."""
    return _REPLACED_FILE_RE.match(name) is not None


def _stream_errors() -> tuple:
    import botocore.exceptions as bce
    import urllib3.exceptions as ue

    return (bce.ResponseStreamingError, bce.IncompleteReadError, bce.ReadTimeoutError,
            bce.ConnectionClosedError, bce.EndpointConnectionError, ue.ProtocolError,
            ue.ReadTimeoutError, ConnectionError, TimeoutError)


def fetch(client, bucket: str, obj: RemoteObject, dest: Path, on_bytes=lambda n: None) -> Path:
    """Download ``obj`` into a temp file next to ``dest`` and return it, complete and
    size-checked; on any failure the temp file is removed and the error raised.

    ``on_bytes(n)`` is called after every chunk written (progress; an exception it raises
    aborts the transfer like any other)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)  # left by a transfer that was killed
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TEMP_SUFFIX, dir=dest.parent)
    tmp = Path(name)
    retried = _stream_errors()
    try:
        with os.fdopen(fd, "wb") as fh:
            written, breaks = 0, 0
            while True:
                args = {"Bucket": bucket, "Key": obj.key, "IfMatch": f'"{obj.etag}"'}
                if written:
                    args["Range"] = f"bytes={written}-"
                try:
                    response = client.get_object(**args)
                    if written and not response.get("ContentRange"):
                        fh.seek(0)  # the server ignored the Range: start over
                        fh.truncate()
                        written = 0
                    body = response["Body"]
                    try:
                        for chunk in body.iter_chunks(CHUNK):
                            fh.write(chunk)
                            written += len(chunk)
                            on_bytes(len(chunk))
                    finally:
                        body.close()
                    if written >= obj.size:
                        break
                    problem = f"the stream ended at {written} of {obj.size} bytes"
                except retried as exc:
                    problem = f"{type(exc).__name__} at {written} of {obj.size} bytes"
                breaks += 1
                if breaks >= STREAM_ATTEMPTS:
                    raise FlatFilesError(f"{obj.key}: transfer broke {breaks} times (last: "
                                         f"{problem}); nothing written, run again to resume")
                log.warning("%s: %s; resuming", obj.key, problem)
                _sleep(min(30.0, 2.0 ** breaks))
            fh.flush()
            os.fsync(fh.fileno())
        size = tmp.stat().st_size
        if size != obj.size:
            raise FlatFilesError(f"{obj.key}: received {size} bytes, the listing says "
                                 f"{obj.size}; nothing written, run again")
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def install_new(tmp: Path, dest: Path) -> None:
    """Give the complete temp file its day-file name (raw files are never overwritten)."""
    if dest.exists():
        tmp.unlink(missing_ok=True)
        raise FlatFilesError(f"{dest} appeared during the sync (another writer?); left alone")
    os.replace(tmp, dest)
    _sync_dir(dest.parent)


def install_replacement(tmp: Path, dest: Path, when: dt.datetime) -> Path:
    """Keep ``dest``'s bytes under a dated name, then swap ``tmp`` in (module docstring)."""
    aside = _dated_alias(dest)
    if aside is None:
        aside = replaced_file_path(dest, when)
        try:
            os.link(dest, aside)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
                                 getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                tmp.unlink(missing_ok=True)
                raise
            _copy_atomically(dest, aside)
    os.replace(tmp, dest)
    _sync_dir(dest.parent)
    return aside


def _dated_alias(dest: Path) -> Path | None:
    """A replaced copy that is a hard link of ``dest`` (left by a crash between steps 2 and 3)."""
    stem = dest.name.partition(".")[0]
    for path in sorted(dest.parent.glob(f"{stem}.replaced-*")):
        if is_replaced_copy(path.name):
            try:
                if os.path.samefile(path, dest):
                    return path
            except OSError:
                continue
    return None


def _copy_atomically(src: Path, dest: Path) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TEMP_SUFFIX, dir=dest.parent)
    os.close(fd)
    try:
        shutil.copy2(src, name)
        os.replace(name, dest)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def _sync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


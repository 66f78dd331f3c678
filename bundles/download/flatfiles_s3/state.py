"""What was synced: ``raw/manifests/flatfiles.json``, and what a sync must do per object.

::

    {"version": 1, "endpoint": "https://files.massive.com", "bucket": "flatfiles",
     "objects": {"us_stocks_sip/day_aggs_v1/2024/03/2024-03-07.csv.gz": {
         "etag": "9b2c...", "size": 81234, "last_modified": "2024-03-08T16:00:00+00:00",
         "path": "us_stocks_sip/day_aggs_v1/2024/03/2024-03-07.csv.gz",
         "synced_at": "2024-03-09T08:00:00+00:00", "source": "sync",
         "replaced": [{"etag": "41d8...", "size": 81200, "synced_at": "...",
                       "replaced_at": "2024-03-09T08:00:00+00:00",
                       "path": "us_stocks_sip/day_aggs_v1/2024/03/"
                               "2024-03-07.replaced-20240309T080000Z.csv.gz"}]}}}

``path`` is relative to the folder holding ``us_stocks_sip/`` (``raw/``). No credentials are
stored, only the endpoint and bucket. The manifest is an index: a lost one is rebuilt by the
next sync, which adopts the files already present that match the vendor's (see
:func:`classify`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from bundles.layout import atomic_write_bytes, manifest_dir, sip_dir

from .listing import RemoteObject

log = logging.getLogger(__name__)

VERSION = 1
NEW, REPLACED, UNCHANGED, CONFLICT = "new", "replaced", "unchanged", "conflict"


def flatfiles_manifest_path(root: Path) -> Path:
    """``raw/manifests/flatfiles.json``."""
    return manifest_dir(root) / "flatfiles.json"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


class FlatFilesManifest:
    """The synced objects of one raw cache (thread-safe updates, atomic saves)."""

    def __init__(self, root: Path, endpoint: str, bucket: str, objects: dict | None = None):
        self.root, self.endpoint, self.bucket = Path(root), endpoint, bucket
        self.objects: dict[str, dict] = dict(objects or {})
        self._lock = threading.Lock()
        self.dirty = False

    @property
    def path(self) -> Path:
        return flatfiles_manifest_path(self.root)

    @classmethod
    def load(cls, root: Path, endpoint: str, bucket: str) -> "FlatFilesManifest":
        manifest = cls(root, endpoint, bucket)
        try:
            payload = json.loads(manifest.path.read_text())
            if not isinstance(payload, dict) or payload.get("version") != VERSION:
                raise ValueError("unknown manifest version")
            manifest.objects = {str(k): dict(v) for k, v in payload["objects"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("%s: unreadable (%s); rebuilding it: files that match the vendor's "
                        "are adopted, others are reported as conflicts", manifest.path, exc)
        return manifest

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(sip_dir(self.root).parent).as_posix()

    def entry(self, key: str) -> dict | None:
        with self._lock:
            entry = self.objects.get(key)
            return dict(entry) if entry else None

    def record(self, obj: RemoteObject, path: Path, when: dt.datetime, source: str = "sync",
               replaced: dict | None = None) -> None:
        """``obj`` is now the file at ``path``; ``replaced`` describes the copy it superseded."""
        with self._lock:
            history = list((self.objects.get(obj.key) or {}).get("replaced") or ())
            if replaced is not None:
                history.append(replaced)
            self.objects[obj.key] = {
                "etag": obj.etag, "size": obj.size, "last_modified": obj.last_modified,
                "path": self.relative(path), "synced_at": when.isoformat(), "source": source,
                "replaced": history}
            self.dirty = True

    def save(self) -> None:
        with self._lock:
            payload = {"version": VERSION, "endpoint": self.endpoint, "bucket": self.bucket,
                       "objects": dict(sorted(self.objects.items()))}
            data = json.dumps(payload, indent=1).encode()
            self.dirty = False
        atomic_write_bytes(self.path, data, overwrite=True)


@dataclass
class Planned:
    """What a sync does with one object: ``action`` is new / replaced / unchanged / conflict."""

    obj: RemoteObject
    action: str
    path: Path
    reason: str = ""
    adopt: bool = False  # unchanged, but not yet in the manifest: record it


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def classify(obj: RemoteObject, root: Path, manifest: FlatFilesManifest) -> Planned:
    """Compare ``obj`` with the local file and the manifest.

    * no local file: **new** (also when the manifest lists it: a deleted file comes back);
    * in the manifest with the same ETag and size, local size matching: **unchanged**;
    * the local file already holds the vendor's bytes (its MD5 is the ETag; for a multipart
      ETag of a file the manifest does not know, an equal size): **unchanged**, adopted into
      the manifest (files from ``aws s3 sync``, or from a sync cut off before its manifest
      was saved);
    * in the manifest but changed on the server (or the local copy changed): **replaced**;
    * present, unknown to the manifest and different: **conflict**, left alone (e.g. a file
      ``gapline download`` built from the REST API, whose part files and session manifest
      belong with it).
    """
    path = obj.local_path(root)
    try:
        local_size = path.stat().st_size
    except FileNotFoundError:
        return Planned(obj, NEW, path, "not in the raw cache")
    entry = manifest.entry(obj.key)
    if entry and entry.get("etag") == obj.etag and entry.get("size") == obj.size \
            and local_size == obj.size:
        return Planned(obj, UNCHANGED, path)
    if local_size == obj.size:
        same = (entry is None) if obj.multipart else md5_of(path) == obj.etag
        if same:
            return Planned(obj, UNCHANGED, path, "already the vendor's copy", adopt=True)
    if entry:
        if (entry.get("etag"), entry.get("size")) != (obj.etag, obj.size):
            why = (f"changed on the server (ETag {entry.get('etag')} -> {obj.etag}, size "
                   f"{entry.get('size')} -> {obj.size})")
        else:
            why = f"the local copy differs from the synced one (size {local_size})"
        return Planned(obj, REPLACED, path, why)
    return Planned(obj, CONFLICT, path,
                   f"exists, is not in {flatfiles_manifest_path(root).name} and differs from "
                   f"the vendor's copy (size {local_size} vs {obj.size}); left alone -- move "
                   f"it away and sync again to take the vendor's")

"""What each downloaded minute file holds: one manifest per session.

``raw/manifests/<dataset>/YYYY/MM/YYYY-MM-DD.json``::

    {"version": 1, "dataset": "minute_aggs_v1", "session": "2024-02-28",
     "files": {"2024-02-28.csv.gz": {"tickers": [...], "rows": 1234, "sha256": "...",
                                     "written_at": "2024-03-05T12:00:00+00:00",
                                     "source": "download"}},
     "without_bars": ["XYZ", ...]}

``files`` names every file of the session (the day file and its parts, see
:func:`bundles.layout.day_file_parts`) with the tickers it holds; ``without_bars`` the tickers
fetched for the session that had no bars in it. A ticker is covered for a session when it is in
either: only uncovered tickers are requested again, and they go to a NEW part file (raw files are
immutable).

The manifest is an index, not raw data: it is rewritten (atomically) as files are added, and a
file it does not know -- a Polygon flat file, a file of an older download, or one written just
before a crash -- is adopted by reading the tickers it holds (``"source": "adopted"``). A lost or
unreadable manifest is rebuilt that way, at worst re-requesting tickers that had no bars.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from bundles.layout import atomic_write_bytes, day_file_parts, manifest_dir

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


class UnreadableRawFile(ValueError):
    """A raw file whose tickers cannot be read (corrupt or truncated)."""


def manifest_path(root: Path, dataset: str, day) -> Path:
    day = pd.Timestamp(day)
    return manifest_dir(root) / dataset / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}.json"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def file_tickers(path: Path) -> tuple[list[str], int]:
    """Sorted unique tickers and row count of a flat file (reads the ticker column only)."""
    try:
        table = pacsv.read_csv(str(path), convert_options=pacsv.ConvertOptions(
            include_columns=["ticker"], column_types={"ticker": pa.string()},
            strings_can_be_null=False))
    except (pa.ArrowException, OSError, EOFError, ValueError) as exc:
        raise UnreadableRawFile(f"{path}: cannot read its tickers ({exc})") from None
    column = table.column("ticker")
    return sorted(set(column.unique().to_pylist())), table.num_rows


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SessionManifest:
    """The manifest of one session (see the module docstring)."""

    root: Path
    dataset: str
    day: pd.Timestamp
    files: dict = field(default_factory=dict)
    without_bars: set = field(default_factory=set)
    unreadable: list = field(default_factory=list)  # files whose tickers could not be read

    @property
    def path(self) -> Path:
        return manifest_path(self.root, self.dataset, self.day)

    @classmethod
    def load(cls, root: Path, dataset: str, day) -> "SessionManifest":
        """The session's manifest, reconciled with the files on disk (adopting unknown ones,
        forgetting deleted ones); saved when that changed it."""
        day = pd.Timestamp(day).normalize()
        manifest = cls(Path(root), dataset, day)
        try:
            payload = json.loads(manifest.path.read_text())
            if not isinstance(payload, dict) or payload.get("version") != MANIFEST_VERSION:
                raise ValueError("unknown manifest version")
            manifest.files = {str(k): dict(v) for k, v in (payload.get("files") or {}).items()}
            manifest.without_bars = set(payload.get("without_bars") or ())
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("%s: unreadable manifest (%s); rebuilding it from the raw files",
                        manifest.path, exc)
        if manifest._reconcile():
            manifest.save()
        return manifest

    def _reconcile(self) -> bool:
        on_disk = {p.name: p for p in day_file_parts(self.root, self.dataset, self.day)}
        changed = False
        for name in [n for n in self.files if n not in on_disk]:
            log.warning("%s: listed in %s but gone; its tickers will be fetched again",
                        name, self.path)
            del self.files[name]
            changed = True
        for name, path in on_disk.items():
            if name in self.files:
                continue
            try:
                tickers, rows = file_tickers(path)
            except UnreadableRawFile as exc:
                self.unreadable.append(str(exc))
                continue
            self.files[name] = {"tickers": tickers, "rows": rows, "sha256": sha256_of(path),
                                "written_at": _now(), "source": "adopted"}
            changed = True
        return changed

    def covered(self, retry_empty: bool = False) -> set:
        """Tickers this session needs no request for (``retry_empty``: only those with bars)."""
        held = set()
        for entry in self.files.values():
            held.update(entry.get("tickers") or ())
        return held if retry_empty else held | self.without_bars

    def add_file(self, path: Path, tickers, rows: int) -> None:
        self.files[Path(path).name] = {"tickers": sorted(set(tickers)), "rows": int(rows),
                                       "sha256": sha256_of(path), "written_at": _now(),
                                       "source": "download"}

    def save(self) -> None:
        self.without_bars -= self.covered(retry_empty=True)
        payload = {"version": MANIFEST_VERSION, "dataset": self.dataset,
                   "session": f"{self.day:%Y-%m-%d}", "files": dict(sorted(self.files.items())),
                   "without_bars": sorted(self.without_bars)}
        atomic_write_bytes(self.path, json.dumps(payload, indent=1).encode(), overwrite=True)

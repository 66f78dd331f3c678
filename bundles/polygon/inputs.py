"""The inputs manifest of an ingestion (``gapline/inputs.json``): what it was built from.

Every ingest records

- the raw files it read: every minute and day file (and part file) listed between its start
  and end session, and the reference files (``tickers``, ``splits``, ``dividends``,
  ``ticker_details``), each with its path relative to the data root, its size, its
  ``mtime_ns``, the session it holds (day files) and a content hash;
- the options that shape the output (every config field but ``end`` and the ones in
  :data:`NOT_OUTPUT`), the calendar, the session range, the sessions' fingerprint, the library
  versions and a fingerprint of gapline's ingest code.

Hashing: xxhash's ``xxh3_128`` when the ``xxhash`` package is installed, else sha256. A file
is hashed once: the next ingest reuses the recorded hash when the file's (size, mtime_ns)
are unchanged (a rewrite changes mtime, so it is hashed again and compared by content), so an
incremental ingest hashes only the new day files instead of the whole raw cache.

:func:`compare` says why a previous ingestion cannot be extended (None when it can).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from .. import layout, reference_files
from ..ingestions import side_dir

INPUTS_FILE = "inputs.json"
FORMAT = 1
#: config fields that do not change what an ingest writes for a given session range
NOT_OUTPUT = ("end", "incremental", "workers")


class NotIncremental(Exception):
    """Why an ingest cannot extend the previous ingestion (the message says it)."""


try:  # optional, faster
    import xxhash

    HASH = "xxh3_128"

    def _hasher():
        return xxhash.xxh3_128()
except ImportError:  # pragma: no cover - depends on the environment
    HASH = "sha256"

    def _hasher():
        return hashlib.sha256()


def file_hash(path: Path) -> str:
    h = _hasher()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of gapline's ingest code (``bundles/polygon/*.py`` and the ``bundles`` modules it
    reads files and writes tables with): a changed ingest means a full ingest. Read once per
    process (the code that runs is the code imported)."""
    here = Path(__file__).resolve().parent
    files = sorted(here.glob("*.py")) + [here.parent / f"{m}.py" for m in (
        "flatfiles", "layout", "market", "zipline_writers", "bcolz_share", "reference_files")]
    h = hashlib.sha256()
    for f in files:
        if f.exists():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("zipline-reloaded", "bcolz-zipline", "exchange-calendars", "pandas", "numpy",
                "pyarrow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def output_options(config) -> dict:
    """The config fields that shape the output, as strings."""
    return {k: str(v) for k, v in dataclasses.asdict(config).items() if k not in NOT_OUTPUT}


def scan(root: Path, start, end, previous: dict | None = None) -> dict:
    """``{relative path: {size, mtime_ns, hash, day}}`` of the raw files an ingest of
    ``[start, end]`` reads; hashes come from ``previous`` (a manifest's ``files``) when a
    file's size and mtime_ns are unchanged."""
    root = Path(root)
    old = previous or {}
    found: dict[str, dict] = {}

    def add(path: Path, day):
        st = path.stat()
        rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        prev = old.get(rel)
        if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
            digest = prev["hash"]
        else:
            digest = file_hash(path)
        found[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "hash": digest,
                      "day": None if day is None else str(day.date())}

    for dataset in (layout.MINUTE_DATASET, layout.DAY_DATASET):
        for day, paths in layout.list_day_file_parts(root, dataset, start, end).items():
            for path in paths:
                add(path, day)
    for name in layout.REFERENCE_FILES:
        path = reference_files.reference_path(root, name)
        if path.exists():
            add(path, None)
    return found


def manifest(config, calendar_name: str, minutes_per_day: int, start, end, sessions,
             files: dict, universe: str) -> dict:
    return {
        "format": FORMAT,
        "code": code_fingerprint(),
        "versions": versions(),
        "options": output_options(config),
        "calendar": calendar_name,
        "minutes_per_day": int(minutes_per_day),
        "start_session": str(start.date()),
        "end_session": str(end.date()),
        "sessions": sessions_fingerprint(sessions),
        "universe": universe,
        "hash": HASH,
        "files": files,
    }


def sessions_fingerprint(sessions) -> str:
    text = ",".join(str(s.date()) for s in sessions)
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(ingestion: Path) -> dict | None:
    path = side_dir(ingestion) / INPUTS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def compare(old: dict, current: dict, last_session) -> tuple[str | None, list[str]]:
    """(why the previous ingestion's inputs do not allow extending it, or None; notes on the
    reference files that changed -- allowed: assets, adjustments and side tables are rebuilt
    from them in full). ``old``/``current``: manifests; the current one's ``files`` may list
    more sessions."""
    for key, what in (("format", "manifest format"), ("code", "gapline's ingest code"),
                      ("versions", "library versions"), ("calendar", "calendar"),
                      ("minutes_per_day", "minutes per day"), ("hash", "hash function"),
                      ("start_session", "start session")):
        if old.get(key) != current.get(key):
            return (f"{what} changed since the previous ingestion ({old.get(key)!r} -> "
                    f"{current.get(key)!r})"), []
    options, now = old.get("options", {}), current["options"]
    for key in sorted(set(options) | set(now)):
        if options.get(key) != now.get(key):
            return (f"option {key} changed ({options.get(key)!r} -> {now.get(key)!r})"), []
    if old.get("universe") != current.get("universe"):
        return ("tickers.json changed the Polygon types the universe filters on "
                "(types / minute_tickers=types:...)"), []
    notes = []
    last = str(last_session.date())
    old_files, files = old.get("files", {}), current["files"]
    for rel, meta in old_files.items():
        now_meta = files.get(rel)
        if meta.get("day") is None:  # reference file
            if now_meta is None or now_meta["hash"] != meta["hash"]:
                notes.append(f"{rel} changed: assets, adjustments and side tables rebuilt from it")
            continue
        if now_meta is None:
            return f"{rel} (read by the previous ingestion) is gone", notes
        if now_meta["hash"] != meta["hash"]:
            return f"{rel} changed since the previous ingestion (content hash differs)", notes
    for rel, meta in files.items():
        if rel in old_files:
            continue
        if meta.get("day") is None:
            notes.append(f"{rel} is new: assets, adjustments and side tables rebuilt from it")
        elif meta["day"] <= last:
            return (f"{rel} is new but holds session {meta['day']}, already ingested "
                    f"(up to {last})"), notes
    return None, notes

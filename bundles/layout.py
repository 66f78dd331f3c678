"""Where gapline keeps raw Polygon data: the flat-file layout of Polygon's S3 bucket.

::

    <root>/raw/us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz
    <root>/raw/us_stocks_sip/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz
    <root>/raw/reference/tickers.json     # list of /v3/reference/tickers results
    <root>/raw/reference/splits.json      # list of /v3/reference/splits results
    <root>/raw/reference/dividends.json   # list of /v3/reference/dividends results
    <root>/raw/reference/ticker_details.json  # optional: list of /v3/reference/tickers/{t} results

Day files carry Polygon's columns ``ticker,volume,open,close,high,low,window_start,transactions``
with ``window_start`` in nanoseconds since the epoch (UTC) labelling the bar's START.

The root is ``$GAPLINE_DATA`` or ``$ZIPLINE_ROOT/gapline`` (``~/.zipline/gapline``). A user who
already has Polygon flat files points ``GAPLINE_DATA`` (or ``-x polygon.root=...``) at the
folder that holds ``raw/`` -- or at a folder that holds ``us_stocks_sip/`` directly.
Raw files are immutable: writers create them once, atomically, and never overwrite.

A session may have more than one minute file: when ``gapline download`` later fetches tickers
a session's file does not hold, it adds them in a PART file next to it (the day file itself
is never rewritten)::

    <root>/raw/us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.part-1.csv.gz   # part 1, 2, ...
    <root>/raw/manifests/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.json  # which file holds which tickers
    <root>/raw/rejected/<dataset>/YYYY/MM/YYYY-MM-DD.jsonl       # bars the ingest would refuse

The parts of a session hold disjoint tickers; :func:`day_file_parts` and
:func:`list_day_file_parts` list all files of a session (:func:`list_day_files` keeps listing
the one day file per session).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from pathlib import Path

import pandas as pd


FLAT_COLUMNS = ["ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"]
MINUTE_DATASET = "minute_aggs_v1"
DAY_DATASET = "day_aggs_v1"
REFERENCE_FILES = ("tickers", "splits", "dividends", "ticker_details")

_DAY_FILE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.csv(\.gz)?$")
_PART_FILE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.part-([1-9]\d*)\.csv(\.gz)?$")


def zipline_root(environ=None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("ZIPLINE_ROOT", Path.home() / ".zipline")).expanduser()


def data_root(environ=None) -> Path:
    """The gapline data root (holds ``raw/``)."""
    environ = os.environ if environ is None else environ
    if environ.get("GAPLINE_DATA"):
        return Path(environ["GAPLINE_DATA"]).expanduser()
    return zipline_root(environ) / "gapline"


def sip_dir(root: Path) -> Path:
    """The ``us_stocks_sip`` folder under ``root`` (accepts ``root`` or ``root/raw``)."""
    root = Path(root)
    for candidate in (root / "raw" / "us_stocks_sip", root / "us_stocks_sip"):
        if candidate.is_dir():
            return candidate
    return root / "raw" / "us_stocks_sip"


def reference_dir(root: Path) -> Path:
    root = Path(root)
    if (root / "reference").is_dir() and not (root / "raw").is_dir():
        return root / "reference"
    return root / "raw" / "reference"


def day_file_path(root: Path, dataset: str, day) -> Path:
    """Path of the flat file for one session: ``.../YYYY/MM/YYYY-MM-DD.csv.gz``."""
    day = pd.Timestamp(day)
    return sip_dir(root) / dataset / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}.csv.gz"


def list_day_files(root: Path, dataset: str, start=None, end=None) -> dict[pd.Timestamp, Path]:
    """``{session date: path}`` of the day files present, sorted, optionally within [start, end]."""
    base = sip_dir(root) / dataset
    found: dict[pd.Timestamp, Path] = {}
    if not base.is_dir():
        return found
    start = pd.Timestamp(start) if start is not None else None
    end = pd.Timestamp(end) if end is not None else None
    for path in base.rglob("*.csv*"):
        m = _DAY_FILE_RE.match(path.name)
        if not m:
            continue
        day = pd.Timestamp(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        # prefer the .gz when both a .csv and .csv.gz exist
        if day in found and found[day].suffix == ".gz":
            continue
        found[day] = path
    return dict(sorted(found.items()))


def part_file_path(root: Path, dataset: str, day, part: int) -> Path:
    """Path of part ``part`` (1, 2, ...) of a session: ``.../YYYY/MM/YYYY-MM-DD.part-<n>.csv.gz``.

    Part 0 is the day file itself (:func:`day_file_path`)."""
    if part == 0:
        return day_file_path(root, dataset, day)
    if not isinstance(part, int) or part < 0:
        raise ValueError(f"part must be a non-negative int, got {part!r}")
    day = pd.Timestamp(day)
    return (sip_dir(root) / dataset / f"{day:%Y}" / f"{day:%m}"
            / f"{day:%Y-%m-%d}.part-{part}.csv.gz")


def _part_number(name: str, day: pd.Timestamp) -> tuple | None:
    """Sort key ``(part, plain .csv?)`` of a file of ``day``; None for other files."""
    m = _DAY_FILE_RE.match(name)
    part = 0
    if not m:
        m = _PART_FILE_RE.match(name)
        if not m:
            return None
        part = int(m.group(4))
    if pd.Timestamp(int(m.group(1)), int(m.group(2)), int(m.group(3))) != day:
        return None
    return part, not name.endswith(".gz")


def _unique_parts(paths) -> list[Path]:
    """One path per part number (the ``.gz`` when both a ``.csv`` and ``.csv.gz`` exist)."""
    seen, out = set(), []
    for key, path in sorted(paths, key=lambda kp: kp[0]):
        if key[0] not in seen:
            seen.add(key[0])
            out.append(path)
    return out


def day_file_parts(root: Path, dataset: str, day) -> list[Path]:
    """Every file holding bars of session ``day``: the day file, then its parts in order.

    ``[]`` when the session has none. The parts of a session hold disjoint tickers, so a
    reader concatenates them (each validates like a day file of ``day``)."""
    day = pd.Timestamp(day).normalize()
    folder = day_file_path(root, dataset, day).parent
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        key = _part_number(path.name, day)
        if key is not None:
            found.append((key, path))
    return _unique_parts(found)


def list_day_file_parts(root: Path, dataset: str, start=None,
                        end=None) -> dict[pd.Timestamp, list[Path]]:
    """``{session date: [day file, part 1, ...]}`` like :func:`list_day_files`, with parts."""
    base = sip_dir(root) / dataset
    found: dict[pd.Timestamp, list] = {}
    if not base.is_dir():
        return {}
    start = pd.Timestamp(start) if start is not None else None
    end = pd.Timestamp(end) if end is not None else None
    for path in base.rglob("*.csv*"):
        m = _DAY_FILE_RE.match(path.name) or _PART_FILE_RE.match(path.name)
        if not m:
            continue
        day = pd.Timestamp(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        found.setdefault(day, []).append((_part_number(path.name, day), path))
    return {day: _unique_parts(paths) for day, paths in sorted(found.items())}


def manifest_dir(root: Path) -> Path:
    """``raw/manifests``: what each downloaded raw file holds (next to ``us_stocks_sip``)."""
    return sip_dir(root).parent / "manifests"


def rejected_dir(root: Path, dataset: str) -> Path:
    """``raw/rejected/<dataset>``: downloaded records the ingest would refuse, with reasons."""
    return sip_dir(root).parent / "rejected" / dataset


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = False) -> bool:
    """Write ``data`` to ``path`` via a temp file + rename in the same folder.

    Returns False (and writes nothing) when ``path`` exists and ``overwrite`` is False:
    raw files are immutable.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not overwrite and path.exists():
            return False
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def write_day_file(root: Path, dataset: str, day, frame: pd.DataFrame, overwrite: bool = False) -> bool:
    """Write one Polygon-format day file (gzip CSV, Polygon's column order), atomically."""
    return atomic_write_bytes(day_file_path(root, dataset, day), day_file_bytes(frame, day),
                              overwrite=overwrite)


def day_file_bytes(frame: pd.DataFrame, day) -> bytes:
    """The gzip CSV bytes of a Polygon-format day file (Polygon's column order)."""
    import gzip
    import io

    missing = [c for c in FLAT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"day file for {pd.Timestamp(day).date()}: missing columns {missing}")
    buf = io.StringIO()
    frame[FLAT_COLUMNS].to_csv(buf, index=False)
    # mtime=0 keeps the gzip bytes deterministic
    return gzip.compress(buf.getvalue().encode(), compresslevel=6, mtime=0)


def write_day_part(root: Path, dataset: str, day, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as the first free file of session ``day`` and return its path.

    The day file when the session has none, else the next part
    (``YYYY-MM-DD.part-<n>.csv.gz``); nothing existing is ever overwritten."""
    data = day_file_bytes(frame, day)
    taken = {_part_number(p.name, pd.Timestamp(day).normalize())[0]
             for p in day_file_parts(root, dataset, day)}
    part = 0
    while True:
        while part in taken:
            part += 1
        path = part_file_path(root, dataset, day, part)
        if atomic_write_bytes(path, data):
            return path
        taken.add(part)  # another writer took it meanwhile


def write_reference(root: Path, name: str, payload, overwrite: bool = False) -> bool:
    """Write ``raw/reference/<name>.json`` (one of :data:`REFERENCE_FILES`), atomically."""
    if name not in REFERENCE_FILES:
        raise ValueError(f"unknown reference file {name!r}; expected one of {REFERENCE_FILES}")
    return atomic_write_json(reference_dir(root) / f"{name}.json", payload, overwrite=overwrite)


def atomic_write_json(path: Path, payload, overwrite: bool = False) -> bool:
    """Write ``payload`` as a raw reference JSON file (one space indent, sorted keys, dates
    and other non-JSON values as ``str``) via :func:`atomic_write_bytes`."""
    data = json.dumps(payload, indent=1, sort_keys=True, default=str).encode()
    return atomic_write_bytes(path, data, overwrite=overwrite)


def _edge_day(base: Path, last: bool):
    """The first (or last) day file under ``base/YYYY/MM/``, opening only the year and month
    folders up to the first one that holds a file (no walk of the whole cache)."""
    def numbered(folder):
        return sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                      key=lambda p: int(p.name), reverse=last)

    for year in numbered(base):
        for month in numbered(year):
            days = sorted(pd.Timestamp(int(m[1]), int(m[2]), int(m[3]))
                          for m in map(_DAY_FILE_RE.match, (p.name for p in month.iterdir())) if m)
            if days:
                return days[-1] if last else days[0]
    return None


def date_range_of(root: Path) -> tuple[dt.date, dt.date] | None:
    """First and last session with a minute or day file under ``root``.

    Runs on every ``zipline`` command (bundle registration), so it reads folder names at the
    two ends of the ``YYYY/MM`` tree, not the whole raw cache."""
    firsts, lasts = [], []
    for dataset in (MINUTE_DATASET, DAY_DATASET):
        base = sip_dir(root) / dataset
        if base.is_dir():
            firsts.append(_edge_day(base, last=False))
            lasts.append(_edge_day(base, last=True))
    firsts, lasts = [d for d in firsts if d is not None], [d for d in lasts if d is not None]
    if not firsts:
        return None
    return min(firsts).date(), max(lasts).date()

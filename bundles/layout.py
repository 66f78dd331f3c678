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


def read_reference(root: Path, name: str):
    """Load ``raw/reference/<name>.json`` (``[]``/``{}`` when absent)."""
    if name not in REFERENCE_FILES:
        raise ValueError(f"unknown reference file {name!r}; expected one of {REFERENCE_FILES}")
    path = reference_dir(root) / f"{name}.json"
    if not path.exists():
        return []
    with open(path) as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None


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
    import gzip
    import io

    missing = [c for c in FLAT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"day file for {pd.Timestamp(day).date()}: missing columns {missing}")
    buf = io.StringIO()
    frame[FLAT_COLUMNS].to_csv(buf, index=False)
    # mtime=0 keeps the gzip bytes deterministic
    data = gzip.compress(buf.getvalue().encode(), compresslevel=6, mtime=0)
    return atomic_write_bytes(day_file_path(root, dataset, day), data, overwrite=overwrite)


def write_reference(root: Path, name: str, payload, overwrite: bool = False) -> bool:
    if name not in REFERENCE_FILES:
        raise ValueError(f"unknown reference file {name!r}; expected one of {REFERENCE_FILES}")
    data = json.dumps(payload, indent=1, sort_keys=True, default=str).encode()
    return atomic_write_bytes(reference_dir(root) / f"{name}.json", data, overwrite=overwrite)


def date_range_of(root: Path) -> tuple[dt.date, dt.date] | None:
    """First and last session with a minute or day file under ``root``."""
    days = sorted(set(list_day_files(root, MINUTE_DATASET)) | set(list_day_files(root, DAY_DATASET)))
    if not days:
        return None
    return days[0].date(), days[-1].date()

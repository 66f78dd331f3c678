"""The minute staging area: ``<root>/.staging/minute/<YYYY-MM>/<safe ticker>.json.gz``.

A (ticker, month) chunk of minute bars waits here until every ticker of the month is in; a
chunk is a gzipped JSON ``{"ticker", "from_ms", "to_ms", "results"}``. Staging is not raw data:
it may be overwritten, and is removed once the month's day files are written.
"""
from __future__ import annotations

import gzip
import json
import logging
import re
import string
from pathlib import Path

from bundles.layout import atomic_write_bytes

log = logging.getLogger(__name__)

_STAGING = Path(".staging") / "minute"
# Upper case and digits only: a safe name can never hold a separator, a dot or a case that a
# case-insensitive file system would fold into another ticker's name (BACpB vs BACPB).
_SAFE_CHARS = frozenset(string.ascii_uppercase + string.digits)


def safe_name(ticker: str) -> str:
    """A reversible file-name encoding of ``ticker``: ``A-Z``, ``0-9`` and ``_xx`` escapes.

    Every other character (lower case, ``.``, ``/``, ``_`` itself, non-ASCII) becomes
    ``_xx`` (lower-case hex) per UTF-8 byte, so ``BRK.A`` -> ``BRK_2eA`` and ``../x`` ->
    ``_2e_2e_2f_78``. Names stay distinct on case-insensitive file systems too.
    """
    if not ticker:
        raise ValueError("empty ticker")
    return "".join(ch if ch in _SAFE_CHARS else "".join(f"_{b:02x}" for b in ch.encode())
                   for ch in ticker)


def staging_dir(root: Path, month: str) -> Path:
    """``<root>/.staging/minute/<YYYY-MM>``: the staged chunks of one calendar month."""
    if not re.fullmatch(r"\d{4}-\d{2}", month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return Path(root) / _STAGING / month


def staging_path(root: Path, month: str, ticker: str) -> Path:
    """Where the (ticker, month) minute chunk is staged; always directly in :func:`staging_dir`."""
    base = staging_dir(root, month)
    path = base / f"{safe_name(ticker)}.json.gz"
    # safe_name cannot produce a separator or "..", but a path escape must be impossible
    if path.resolve().parent != base.resolve():
        raise ValueError(f"ticker {ticker!r} would escape the staging folder")
    return path


def _read_stage(path: Path) -> dict | None:
    try:
        return json.loads(gzip.decompress(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError):
        # written atomically, so this is outside interference; refetching is always safe
        log.warning("ignoring unreadable staged chunk %s", path)
        return None


def _write_stage(path: Path, payload: dict) -> None:
    """Stage ``payload`` at ``path`` atomically, replacing what is there (a chunk covering too
    short a span): staging is not raw data."""
    atomic_write_bytes(path, gzip.compress(json.dumps(payload).encode(), mtime=0),
                       overwrite=True)

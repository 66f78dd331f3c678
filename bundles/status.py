"""What is ingested where, and which ingestion folders are broken."""
from __future__ import annotations

import shutil
from pathlib import Path

from .layout import zipline_root
from .polygon import SIDE_DIR

# What a complete gapline ingestion folder holds (zipline's files plus our report).
REQUIRED = ("daily_equities.bcolz", "minute_equities.bcolz", "adjustments.sqlite",
            f"{SIDE_DIR}/ingest_report.json")


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


def install_extension(environ=None, force=False) -> Path:
    """Copy the repo's extension.py to ``$ZIPLINE_ROOT/extension.py`` (zipline loads it by default)."""
    src = Path(__file__).resolve().parents[1] / "extension.py"
    dst = zipline_root(environ) / "extension.py"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and not force and dst.read_text() != src.read_text():
        raise FileExistsError(f"{dst} exists and differs; use --force to replace it")
    shutil.copyfile(src, dst)
    return dst

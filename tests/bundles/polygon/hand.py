"""Hand-written Polygon minute bars (start-labelled, ET clock) for the auction, 09:25-cut and
part-file tests: every bar is written out, so every expected value is arithmetic on this page.

Sessions: 2024-11-26 and 2024-11-27 (full days, close 16:00 ET) and 2024-11-29 (the day after
Thanksgiving, close 13:00 ET).
"""
from __future__ import annotations

import json

import pandas as pd

from bundles import layout
from bundles.ingestions import side_dir
from bundles.polygon import PolygonBundleConfig, build_bundle

ET = "America/New_York"
DAYS = ["2024-11-26", "2024-11-27", "2024-11-29"]
HALF_DAY = "2024-11-29"

# (ticker, day, HH:MM start, open, high, low, close, volume)
BARS = [
    # AUC: a pre-market around the 09:25 cut, the open, the 15:59 bar and the closing cross
    ("AUC", "2024-11-26", "04:00", 9.00, 9.10, 8.90, 9.05, 100),
    ("AUC", "2024-11-26", "08:54", 9.20, 9.30, 9.15, 9.25, 200),   # before the 30-min window
    ("AUC", "2024-11-26", "08:55", 9.30, 9.40, 9.25, 9.35, 300),   # first bar of the window
    ("AUC", "2024-11-26", "09:10", 9.50, 9.70, 9.45, 9.60, 400),
    ("AUC", "2024-11-26", "09:24", 9.80, 9.90, 9.75, 9.85, 500),   # last bar before the cut
    ("AUC", "2024-11-26", "09:25", 9.90, 12.00, 8.00, 11.00, 9000),  # after the cut: excluded
    ("AUC", "2024-11-26", "09:29", 10.00, 10.05, 9.95, 10.02, 600),
    ("AUC", "2024-11-26", "09:30", 10.10, 10.40, 10.00, 10.30, 7000),  # opening print 10.10
    ("AUC", "2024-11-26", "12:00", 10.30, 10.80, 10.20, 10.70, 1500),
    ("AUC", "2024-11-26", "15:59", 10.70, 10.75, 10.50, 10.55, 2500),  # last regular close
    ("AUC", "2024-11-26", "16:00", 10.60, 10.90, 10.10, 10.20, 777777),  # official close 10.60
    ("AUC", "2024-11-26", "16:01", 10.20, 10.25, 10.15, 10.18, 800),
    ("AUC", "2024-11-27", "09:30", 10.50, 10.60, 10.40, 10.45, 5000),
    ("AUC", "2024-11-27", "15:59", 10.40, 10.42, 10.30, 10.35, 1200),
    ("AUC", "2024-11-27", "16:00", 10.38, 10.39, 10.37, 10.37, 4400),  # official close 10.38
    # half day: the cross is the bar starting 13:00; 16:00 is an after-hours bar there
    ("AUC", HALF_DAY, "09:30", 10.00, 10.20, 9.90, 10.10, 3000),
    ("AUC", HALF_DAY, "12:59", 10.10, 10.30, 10.05, 10.25, 900),
    ("AUC", HALF_DAY, "13:00", 10.28, 10.29, 10.20, 10.22, 6600),   # official close 10.28
    ("AUC", HALF_DAY, "16:00", 11.00, 11.00, 11.00, 11.00, 50),     # not the close this day
    # NOX: no bar starting 16:00 (no closing print): the daily close falls back to 15:59
    ("NOX", "2024-11-26", "09:24", 5.00, 5.00, 5.00, 5.00, 10),
    ("NOX", "2024-11-26", "09:30", 5.10, 5.20, 5.05, 5.15, 1000),
    ("NOX", "2024-11-26", "15:59", 5.30, 5.35, 5.25, 5.33, 2000),
    # WID: the cross prints above every regular-session trade (daily high widened to it)
    ("WID", "2024-11-26", "10:00", 20.00, 20.50, 19.90, 20.40, 100),
    ("WID", "2024-11-26", "15:59", 20.40, 20.60, 20.30, 20.55, 200),
    ("WID", "2024-11-26", "16:00", 21.00, 21.00, 20.80, 20.90, 300),
    # MID: neither the 09:30 nor the 16:00 bar (no auction row); pre-market from 09:25 only
    ("MID", "2024-11-27", "09:26", 3.00, 3.10, 2.90, 3.05, 40),
    ("MID", "2024-11-27", "11:00", 3.10, 3.20, 3.00, 3.15, 300),
    # EAR: pre-market before 08:55 only (cut columns, but an empty 30-minute window)
    ("EAR", "2024-11-27", "07:00", 2.00, 2.10, 1.95, 2.05, 1000),
    ("EAR", "2024-11-27", "08:54", 2.05, 2.20, 2.00, 2.10, 3000),
    ("EAR", "2024-11-27", "09:30", 2.12, 2.15, 2.10, 2.11, 500),
    ("EAR", "2024-11-27", "16:00", 2.14, 2.14, 2.14, 2.14, 700),
]
# LATE: in a part file of 2024-11-26 (downloaded after the day file was written)
PART_BARS = [
    ("LATE", "2024-11-26", "09:30", 7.00, 7.20, 6.90, 7.10, 100),
    ("LATE", "2024-11-26", "15:59", 7.30, 7.40, 7.25, 7.35, 200),
    ("LATE", "2024-11-26", "16:00", 7.36, 7.36, 7.36, 7.36, 300),
]
TICKERS = ["AUC", "NOX", "WID", "MID", "EAR", "LATE"]


def start(day: str, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}", tz=ET)


def frame(bars) -> pd.DataFrame:
    """Polygon rows (window_start in ns UTC) of ``bars``."""
    rows = [{"ticker": t, "volume": float(v), "open": o, "close": c, "high": h, "low": lo,
             "window_start": start(d, hm).value, "transactions": 1, "day": d}
            for t, d, hm, o, h, lo, c, v in bars]
    return pd.DataFrame(rows)


def bar(ticker, day, hhmm):
    """The hand row of ``ticker``'s bar starting at ``hhmm`` ET on ``day``."""
    for t, d, hm, o, h, lo, c, v in BARS + PART_BARS:
        if (t, d, hm) == (ticker, day, hhmm):
            return {"open": o, "high": h, "low": lo, "close": c, "volume": float(v)}
    raise KeyError((ticker, day, hhmm))


def write_raw(root, with_part=True):
    """Day files of :data:`BARS` (+ a part file holding :data:`PART_BARS`) and reference."""
    full = frame(BARS)
    for day, rows in full.groupby("day"):
        layout.write_day_file(root, layout.MINUTE_DATASET, day,
                              rows.sort_values(["ticker", "window_start"]))
    if with_part:
        part = frame(PART_BARS)
        path = layout.write_day_part(root, layout.MINUTE_DATASET, "2024-11-26", part)
        assert path.name == "2024-11-26.part-1.csv.gz"
    layout.write_reference(root, "tickers", [
        {"ticker": t, "name": t, "type": "CS", "primary_exchange": "XNAS", "active": True}
        for t in TICKERS])


def build(tmp_path_factory, name, **config):
    """Write the hand files and ingest them; returns (BundleData, side-table folder)."""
    root = tmp_path_factory.mktemp(f"{name}-raw")
    zroot = tmp_path_factory.mktemp(f"{name}-zipline")
    write_raw(root)
    data = build_bundle(name, PolygonBundleConfig(root=root, **config), zroot)
    folder = sorted(p for p in (zroot / "data" / name).iterdir() if not p.name.startswith("."))
    return data, side_dir(folder[-1]), root


def report(side) -> dict:
    return json.loads((side / "ingest_report.json").read_text())


def sid_of(data, ticker, day):
    """The sid ``ticker`` had on ``day`` in the hand-built bundle."""
    return data.asset_finder.lookup_symbol(ticker, pd.Timestamp(day)).sid

"""Dated ticker details in the raw cache: Polygon's ``/v3/reference/tickers/{ticker}?date=D``.

One file per (ticker, date) the download sampled, next to the undated snapshot
``ticker_details.json``::

    <root>/raw/reference/ticker_details/<safe ticker>/YYYY-MM-DD.json
    {"ticker": "AAPL", "date": "2024-03-28", "fetched_utc": "2024-05-02T10:00:00+00:00",
     "results": {...the details record, reduced to DETAIL_FIELDS...} | null}

``results`` is null when Polygon had no details of the ticker on that date (HTTP 404: not
listed yet, or between two companies of a reused ticker); the file records that the date was
asked, so a resumed download does not ask again. ``<safe ticker>`` is
:func:`bundles.download.staging.safe_name` (``BRK.A`` -> ``BRK_2eA``); the ticker itself is
read from the file. Files are written once, atomically, and never modified (raw data).

What a sample means (when it is known)
--------------------------------------
Polygon's ``date`` is "a point in time to get information about the ticker available on that
date". Fields describing the security (``type``, ``primary_exchange``, FIGIs, ``cik``,
``list_date``) describe the security trading under the ticker on ``D``; they are treated as
known at the end of ``D``. Share counts come from SEC filings, and Polygon matches ``D``
against a filing's *period of report*, not its filing date: a 10-Q for the quarter ending on
``D`` is submitted up to 45 days later (a 10-K up to 90), yet answers a query dated ``D``.
A count sampled on ``D`` therefore counts as known only from ``D +``
:data:`SHARES_KNOWN_LAG_DAYS` (configurable per ingest, ``-x polygon.shares_lag_days=N``).

The undated snapshot ``ticker_details.json`` (``gapline download --details``, and every cache
made before dated details existed) is the state of the day it was fetched; the file's
modification time stands for that day (it is written once, atomically; a copy only makes it
later). Its rows therefore count from that day on -- never backwards -- and need no lag (every
filing it draws on was public when it was fetched).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import pandas as pd

from .layout import atomic_write_json, reference_dir
from .market import session_of
from .reference_files import (
    REFERENCE_RULES,
    ReferenceDataError,
    _field_problem,
    parse_reference_date,
    reject_or_skip_records,
)

DATED_DETAILS_DIR = "ticker_details"  # under raw/reference/, next to ticker_details.json

#: Days after its sample date from which a dated share count counts as known: Polygon answers
#: ``date=D`` from the filing whose period of report is on or before ``D``, which may be filed
#: up to 90 days after that period ends (10-K of a non-accelerated filer; 10-Q: 40-45 days).
#: 90 keeps every such filing in the past; 0 trusts the sample on its own date (look-ahead of
#: up to a quarter). The ingest option ``shares_lag_days`` overrides it.
SHARES_KNOWN_LAG_DAYS = 90


def dated_details_dir(root) -> Path:
    """``raw/reference/ticker_details/``: the dated ticker details, one folder per ticker."""
    return reference_dir(root) / DATED_DETAILS_DIR


def dated_details_path(root, ticker: str, date) -> Path:
    """The file of ``ticker``'s details sampled on ``date``."""
    from .download.staging import safe_name  # lazy: bundles.download imports this module

    return dated_details_dir(root) / safe_name(ticker) / f"{pd.Timestamp(date):%Y-%m-%d}.json"


def write_dated_details(root, ticker: str, date, results: dict | None,
                        fetched_utc: str | None = None, overwrite: bool = False) -> bool:
    """Write one sample (``results`` None: Polygon had none); False when it already exists
    (``overwrite``: only for generated data such as the demo's). ``fetched_utc``: when it
    was fetched (default: now)."""
    if fetched_utc is None:
        fetched_utc = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    payload = {"ticker": ticker, "date": f"{pd.Timestamp(date):%Y-%m-%d}",
               "fetched_utc": fetched_utc, "results": results}
    return atomic_write_json(dated_details_path(root, ticker, date), payload, overwrite=overwrite)


def _sample_problem(payload) -> str | None:
    if not isinstance(payload, dict):
        return "not a JSON object with ticker, date and results"
    ticker = payload.get("ticker")
    if not isinstance(ticker, str) or not ticker.strip():
        return f"ticker {ticker!r} is not a non-empty string"
    try:
        parse_reference_date(payload.get("date"))
    except (ValueError, OverflowError):
        return f"date {payload.get('date')!r} is not a date (YYYY-MM-DD)"
    results = payload.get("results")
    if results is None:
        return None
    if not isinstance(results, dict):
        return "results is neither an object nor null"
    problems = [p for p in (_field_problem(f, rule, results)
                            for f, rule in REFERENCE_RULES["ticker_details"].items())
                if p is not None]
    return "; ".join(problems) or None


def read_dated_details(root, bad_rows: str = "raise", skipped: list | None = None) -> list[dict]:
    """Every dated sample of the raw cache, sorted by (ticker, date): dicts with ``ticker``,
    ``date`` (Timestamp), ``results`` (dict or None) and ``file``.

    A file that is not valid JSON, or a sample in the wrong shape, raises
    :class:`~bundles.reference_files.ReferenceDataError` naming the file, the ticker, the date
    and the field (``bad_rows="raise"``), or is left out, logged and added to ``skipped``
    (``"skip"``)."""
    base = dated_details_dir(root)
    if not base.is_dir():
        return []
    samples, bad = [], []
    for path in sorted(base.glob("*/*.json")):
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            bad.append(f"{path}: not valid JSON ({exc})")
            continue
        problem = _sample_problem(payload)
        if problem is not None:
            who = payload.get("ticker") if isinstance(payload, dict) else None
            when = payload.get("date") if isinstance(payload, dict) else None
            bad.append(f"{path}: ticker {who!r}, date {when!r}: {problem}")
            continue
        samples.append({"ticker": payload["ticker"],
                        "date": _session_date(payload["date"]),
                        "results": payload.get("results"), "file": str(path)})
    if bad and not samples:
        raise ReferenceDataError(f"{bad[0]}; none of the dated ticker details under {base} is "
                                 f"usable: wrong files or format?")
    reject_or_skip_records(base, bad, bad_rows, skipped)
    return sorted(samples, key=lambda s: (s["ticker"], s["date"]))


def _session_date(value) -> pd.Timestamp:
    """A reference date as a naive New York calendar date (a zoned timestamp is converted)."""
    ts = parse_reference_date(value)
    return session_of(ts) if ts.tzinfo is not None else ts.normalize()


def snapshot_date(root) -> pd.Timestamp | None:
    """The day the undated ``ticker_details.json`` was fetched (its modification time, New
    York date); None when there is no such file."""
    path = reference_dir(root) / "ticker_details.json"
    try:
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    return session_of(pd.Timestamp(mtime, unit="s", tz="UTC"))


def shares_of(record: dict | None) -> float:
    """A details record's share count: ``share_class_shares_outstanding``, else
    ``weighted_shares_outstanding``; NaN when neither is a number."""
    if not record:
        return math.nan
    for key in ("share_class_shares_outstanding", "weighted_shares_outstanding"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            return float(value)
    return math.nan

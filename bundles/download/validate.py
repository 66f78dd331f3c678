"""Check downloaded records against what the ingest accepts, before anything is written.

A record the ingest (:func:`bundles.flatfiles.read_day_file`) would refuse must not reach a raw
file: raw files are immutable and never re-fetched, so one bad bar would block the whole
session's ingest for good. Such records are kept instead, each with its reason, in a side file
``raw/rejected/<dataset>/YYYY/MM/YYYY-MM-DD[.<n>].jsonl`` (:func:`write_rejected`), and the
download summary lists them.

Rejected: a ticker outside the ingest's alphabet (:data:`bundles.flatfiles._VALID_TICKER`:
letters, digits, ``.`` and ``-``), a missing, non-numeric or non-finite ``t``, ``v``, ``o``,
``h``, ``l`` or ``c``; a price that is zero or negative; ``h < l``; ``o`` or ``c`` outside
[``l``, ``h``]; a negative volume; a minute bar not on a whole minute; a bar whose New York date
is not its session. A bad ``n`` (transactions, which the ingest reads as 0 when blank) is
written blank rather than rejecting the bar.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from pathlib import Path

import pandas as pd

from bundles.flatfiles import _VALID_TICKER
from bundles.layout import atomic_write_bytes, rejected_dir
from bundles.market import et_midnight_ns

from .convert import _NS_PER_MS

_MS_PER_MINUTE = 60_000
TICKER_RULE = "letters, digits, '.' and '-' only, starting with a letter or digit, at most 20"


def ticker_problem(ticker) -> str | None:
    """Why the ingest would refuse ``ticker``, or None when it is fine."""
    if not isinstance(ticker, str) or not ticker:
        return f"missing or non-text ticker {ticker!r}"
    if not _VALID_TICKER.match(ticker):
        return f"invalid ticker {ticker!r} (the ingest accepts {TICKER_RULE})"
    return None


def _number(value):
    """``value`` as a finite float, or None (bools, strings, NaN and infinities are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        value = float(value)
    except (OverflowError, ValueError):
        return None
    return value if math.isfinite(value) else None


def bar_problem(bar, ticker, minute: bool, day_bounds_ms: tuple[int, int] | None = None):
    """Why the ingest would refuse ``bar`` (Polygon's short keys), or None.

    ``day_bounds_ms``: [start, stop) of the bar's session (New York midnights) in epoch ms.
    """
    if not isinstance(bar, dict):
        return "not a JSON object"
    problem = ticker_problem(ticker)
    if problem:
        return problem
    values = {}
    for key, name in (("t", "timestamp"), ("v", "volume"), ("o", "open"), ("h", "high"),
                      ("l", "low"), ("c", "close")):
        if key not in bar or bar[key] is None:
            return f"no {name} ({key!r})"
        values[key] = _number(bar[key])
        if values[key] is None:
            return f"non-numeric or non-finite {name} ({key!r}={bar[key]!r})"
    t, v, o, h, l, c = (values[k] for k in "tvohlc")
    if t != int(t) or t <= 0:
        return f"timestamp 't'={bar['t']!r} is not epoch milliseconds"
    if min(o, h, l, c) <= 0:
        return "price is zero or negative"
    if h < l:
        return "high < low"
    if not (l <= o <= h and l <= c <= h):
        return "open/close outside [low, high]"
    if v < 0:
        return "negative volume"
    if minute and int(t) % _MS_PER_MINUTE:
        return "timestamp not on a whole minute"
    if day_bounds_ms is not None and not day_bounds_ms[0] <= int(t) < day_bounds_ms[1]:
        return "bar's New York date is not its session"
    return None


def clean_transactions(bar: dict) -> dict:
    """``bar`` with a bad ``n`` (non-numeric, negative, fractional) dropped (written blank)."""
    n = bar.get("n")
    if n is None:
        return bar
    value = _number(n)
    if value is None or value < 0 or value != int(value):
        return {k: x for k, x in bar.items() if k != "n"}
    return bar


def day_bounds_ms(day) -> tuple[int, int]:
    """[New York midnight of ``day``, next New York midnight) in epoch ms."""
    day = pd.Timestamp(day).normalize()
    return (et_midnight_ns(day) // _NS_PER_MS,
            et_midnight_ns(day + pd.Timedelta(days=1)) // _NS_PER_MS)


def split_bars(bars, day, minute: bool, ticker: str | None = None):
    """``(accepted, rejected)`` of one session's ``bars``; ``rejected`` holds
    ``{"ticker", "reason", "record"}`` dicts. ``ticker``: for results without ``T``."""
    bounds = day_bounds_ms(day)
    accepted, rejected = [], []
    for bar in bars:
        name = ticker if ticker is not None else (bar.get("T") if isinstance(bar, dict)
                                                  else None)
        reason = bar_problem(bar, name, minute, bounds)
        if reason is None:
            accepted.append(clean_transactions(bar))
        else:
            rejected.append({"ticker": name, "reason": reason, "record": bar})
    return accepted, rejected


def rejected_path(root: Path, dataset: str, day, number: int = 0) -> Path:
    day = pd.Timestamp(day)
    suffix = f".{number}" if number else ""
    return (rejected_dir(root, dataset) / f"{day:%Y}" / f"{day:%m}"
            / f"{day:%Y-%m-%d}{suffix}.jsonl")


def write_rejected(root: Path, dataset: str, day, rejected: list[dict]) -> Path:
    """Write ``rejected`` (one JSON line each, with its session) to a new side file of ``day``
    and return its path; earlier side files are never overwritten."""
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    lines = [json.dumps({"dataset": dataset, "session": f"{pd.Timestamp(day):%Y-%m-%d}",
                         "rejected_at": stamp, **item}, sort_keys=True, default=str)
             for item in rejected]
    data = ("\n".join(lines) + "\n").encode()
    number = 0
    while not atomic_write_bytes(rejected_path(root, dataset, day, number), data):
        number += 1
    return rejected_path(root, dataset, day, number)

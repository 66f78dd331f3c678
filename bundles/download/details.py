"""Dated ticker details: which dates to sample per ticker, and fetching them into the cache.

Per ticker the download asks ``/v3/reference/tickers/{ticker}?date=D`` for

* the first session of the sampled span -- the requested range's start minus
  :data:`bundles.reference_history.SHARES_KNOWN_LAG_DAYS`, so that a share count is already
  known when the range begins -- or the ticker's listing date when it listed later (the
  ``list_date`` of a sample; the listing is sampled as soon as a sample names it);
* the last session of every ``every``-th month (``1M``, the default; ``3M``, ``2W`` for every
  second week's last session; ``none`` skips dated details altogether);
* every split's execution date (``splits.json``) in the span.

Each answer lands in its own file (:func:`bundles.reference_history.write_dated_details`), a
404 as ``results: null``; a file already there is not asked again (resume).
"""
from __future__ import annotations

import logging
import re

import pandas as pd

from bundles.progress import progress_bar
from bundles.reference_files import read_reference, written_date
from bundles.reference_history import (
    SHARES_KNOWN_LAG_DAYS,
    dated_details_path,
    write_dated_details,
)

from .sessions import sessions_between

log = logging.getLogger(__name__)

DEFAULT_DETAILS_EVERY = "1M"
_EVERY = re.compile(r"^\s*(\d*)\s*([MWQ])\s*$", re.IGNORECASE)


def parse_every(spec) -> tuple[int, str] | None:
    """``"1M"`` -> ``(1, "M")``, ``"2W"`` -> ``(2, "W")``, ``"Q"`` -> ``(3, "M")``;
    ``None``/``"none"``/``"off"``/``""`` -> None (no dated details)."""
    if spec is None or str(spec).strip().lower() in ("", "none", "off", "0"):
        return None
    m = _EVERY.match(str(spec))
    if not m or (m.group(1) and int(m.group(1)) < 1):
        raise ValueError(f"details every {spec!r}: expected e.g. 1M (every month-end), 3M, "
                         f"2W (every second week's last session) or none")
    n, unit = int(m.group(1) or 1), m.group(2).upper()
    return (3 * n, "M") if unit == "Q" else (n, unit)


def periodic_dates(sessions: pd.DatetimeIndex, every: tuple[int, str]) -> list[pd.Timestamp]:
    """The last session of every ``n``-th month (``M``) or week (``W``) of ``sessions``,
    counting from the first session's period (a period cut off by the range end counts)."""
    if not len(sessions):
        return []
    n, unit = every
    periods = sessions.to_period("M" if unit == "M" else "W-FRI")
    last = ~pd.Series(periods).duplicated(keep="last").to_numpy()
    ordinal = (periods.asi8 - periods.asi8[0])
    return [s for s, keep, k in zip(sessions, last, ordinal) if keep and k % n == n - 1]


def sample_dates(sessions: pd.DatetimeIndex, every: tuple[int, str], split_dates=(),
                 list_date=None) -> list[pd.Timestamp]:
    """The dates to sample one ticker on (sorted, unique); see the module docstring.
    ``sessions``: the sessions of the sampled span."""
    if not len(sessions):
        return []
    first, last = sessions[0], sessions[-1]
    dates = {first, *periodic_dates(sessions, every)}
    for day in split_dates:
        day = pd.Timestamp(day).normalize()
        if first <= day <= last:
            dates.add(day)
    if list_date is not None and first < pd.Timestamp(list_date).normalize() <= last:
        dates.add(pd.Timestamp(list_date).normalize())
    return sorted(dates)


def _splits_by_ticker(root) -> dict[str, list]:
    out: dict[str, list] = {}
    for record in read_reference(root, "splits", bad_rows="skip"):
        try:
            out.setdefault(record["ticker"], []).append(written_date(record["execution_date"]))
        except (KeyError, ValueError):
            continue
    return out


def _list_date(results) -> pd.Timestamp | None:
    value = results.get("list_date") if isinstance(results, dict) else None
    try:
        return written_date(value) if value else None
    except ValueError:
        return None


def download_dated_details(client, root, tickers: list[str], start, end, every,
                           summary, progress: bool = True,
                           lookback_days: int = SHARES_KNOWN_LAG_DAYS) -> int:
    """Sample every ticker's details on its dates (module docstring); returns the number of
    samples written. ``every``: :func:`parse_every` spec or its result."""
    every = parse_every(every) if not isinstance(every, tuple) else every
    if every is None or not tickers:
        return 0
    span_start = pd.Timestamp(start).normalize() - pd.Timedelta(days=lookback_days)
    sessions = sessions_between(span_start, end)
    splits = _splits_by_ticker(root)
    written = 0
    with progress_bar("ticker details (dated)", len(tickers), progress, "tickers") as bar:
        for ticker in tickers:
            asked, listed = set(), None
            while True:  # again when a sample names a listing date not sampled yet
                todo = [d for d in sample_dates(sessions, every, splits.get(ticker, ()), listed)
                        if d not in asked]
                if not todo:
                    break
                for day in todo:
                    asked.add(day)
                    path = dated_details_path(root, ticker, day)
                    if path.exists():
                        results = _cached_results(path)
                    else:
                        results = client.ticker_details(ticker, date=day)
                        written += write_dated_details(root, ticker, day, results)
                    found = _list_date(results)
                    if found is not None and (listed is None or found > listed):
                        listed = found
            bar.update(1)
    if written:
        summary.reference.append(f"ticker_details/ ({written} dated)")
    return written


def _cached_results(path):
    import json

    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return payload.get("results") if isinstance(payload, dict) else None

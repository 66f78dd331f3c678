"""Polygon reference files (``raw/reference/*.json``): their expected shape, record by record,
and reading them with a clear error -- file, record index, ticker and field -- or skipping bad
records per ``bad_rows``."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from .layout import REFERENCE_FILES, reference_dir

log = logging.getLogger(__name__)


class ReferenceDataError(ValueError):
    """A reference file in the wrong shape, or a bad record in it: the message names the file,
    the record (its 0-based index in the JSON list), the ticker and the field."""


#: What each record of a reference file must hold: field -> rule. ``?`` rules accept a missing
#: field, ``null`` and NaN (pandas writes missing values as NaN). Fields not listed are not
#: checked (Polygon adds fields over time).
#:
#: ``ticker``: a non-empty string (required); ``str?``: string; ``bool?``: true/false;
#: ``id?``: string or integer (``cik``); ``date`` / ``date?``: an ISO 8601 date or timestamp
#: string (``2024-07-08``, ``2024-07-08T00:00:00Z``); ``count?``: a finite number >= 0;
#: ``positive``: a finite number > 0 (a numeric string like ``"4"`` is accepted too).
REFERENCE_RULES = {
    "tickers": {
        "ticker": "ticker", "name": "str?", "type": "str?", "primary_exchange": "str?",
        "active": "bool?", "delisted_utc": "date?", "composite_figi": "str?",
        "share_class_figi": "str?", "cik": "id?",
    },
    "ticker_details": {
        "ticker": "ticker", "name": "str?", "type": "str?", "primary_exchange": "str?",
        "active": "bool?", "list_date": "date?", "delisted_utc": "date?",
        "composite_figi": "str?", "share_class_figi": "str?", "cik": "id?",
        "share_class_shares_outstanding": "count?", "weighted_shares_outstanding": "count?",
        "market_cap": "count?",
    },
    "splits": {
        "ticker": "ticker", "execution_date": "date", "split_from": "positive",
        "split_to": "positive",
    },
    "dividends": {
        "ticker": "ticker", "ex_dividend_date": "date", "cash_amount": "positive",
        "record_date": "date?", "declaration_date": "date?", "pay_date": "date?",
    },
}
SKIP_RECORDS_HINT = ("fix or delete the record(s), or ingest with bad_rows=skip "
                     "(-x polygon.bad_rows=skip) to skip and report them")


def reference_path(root: Path, name: str) -> Path:
    """``raw/reference/<name>.json`` under ``root``."""
    if name not in REFERENCE_FILES:
        raise ValueError(f"unknown reference file {name!r}; expected one of {REFERENCE_FILES}")
    return reference_dir(root) / f"{name}.json"


def parse_reference_date(value) -> pd.Timestamp:
    """The timestamp an ISO 8601 string of a reference record spells (tz-aware when it names
    a zone); ValueError for anything else (numbers, ``07/08/24``, ``2024-13-45``)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    ts = pd.to_datetime(value, format="ISO8601")
    if pd.isna(ts):
        raise ValueError(f"{value!r} is not a date")
    return ts


def written_date(value) -> pd.Timestamp:
    """The calendar date a reference date or timestamp is written on, as naive midnight: a
    zone is dropped, not converted (``2024-07-08T23:00:00-04:00`` -> 2024-07-08); any value is
    read as its ``str()``, strictly as ISO 8601 (:func:`parse_reference_date`), so a malformed
    one raises ValueError rather than turning into another date (taking the first ten
    characters read `` 2024-03-28`` as 2024-03-02)."""
    ts = parse_reference_date(str(value))
    return (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()


def reference_number(value) -> float | None:
    """``value`` as a float (numbers and numeric strings); None when it is no number (bools,
    lists, ``"abc"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_kind(value) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else type(value).__name__


def _field_problem(field: str, rule: str, record: dict) -> str | None:
    """What is wrong with ``record[field]`` under ``rule`` (None when it is fine)."""
    value = record.get(field)
    if rule.endswith("?"):  # missing, null, NaN (and "" for a date): fine
        if _is_null(value) or (rule.startswith("date") and value == ""):
            return None
        rule = rule[:-1]
    elif value is None or (rule == "date" and value == ""):
        return f"{field} is missing"
    if rule == "ticker":
        if not isinstance(value, str):
            return f"ticker {value!r} is not a string"
        return f"ticker {value!r} is empty" if not value.strip() else None
    if rule == "str":
        return None if isinstance(value, str) else f"{field} {value!r} is not a string or null"
    if rule == "bool":
        return None if isinstance(value, bool) else f"{field} {value!r} is not true, false or null"
    if rule == "id":
        ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else f"{field} {value!r} is not a string, integer or null"
    if rule == "date":
        try:
            parse_reference_date(value)
        except (ValueError, OverflowError):
            return f"{field} {value!r} is not a date (ISO 8601, e.g. 2024-07-08)"
        return None
    if rule in ("count", "positive"):
        if rule == "count" and isinstance(value, str):
            return f"{field} {value!r} is not a number"
        number = reference_number(value)
        if number is None:
            return f"{field} {value!r} is not a number"
        if not math.isfinite(number):
            return f"{field} {value!r} is not finite"
        if rule == "positive" and number <= 0:
            return f"{field} {value!r} is not > 0"
        if rule == "count" and number < 0:
            return f"{field} {value!r} is < 0"
        return None
    raise ValueError(f"unknown reference rule {rule!r}")


def reference_record_message(path: Path, index: int, record, problem: str) -> str:
    """``<path>: record [i], ticker 'X': <problem>`` (without the ticker when it has none)."""
    ticker = record.get("ticker") if isinstance(record, dict) else None
    if isinstance(ticker, str) and ticker.strip():
        return f"{path}: record [{index}], ticker {ticker!r}: {problem}"
    return f"{path}: record [{index}]: {problem}"


def reject_or_skip_records(path: Path, messages: list[str], bad_rows: str,
                           skipped: list | None) -> None:
    """``bad_rows="raise"``: raise :class:`ReferenceDataError` with the first of ``messages``
    and their count; ``"skip"``: log each and add them to ``skipped``."""
    if not messages:
        return
    if bad_rows == "raise":
        raise ReferenceDataError(f"{messages[0]} ({len(messages)} bad record(s) in this file; "
                                 f"{SKIP_RECORDS_HINT})")
    if bad_rows != "skip":
        raise ValueError(f"bad_rows must be 'raise' or 'skip', got {bad_rows!r}")
    for msg in messages[:20]:
        log.warning("skipped bad reference record: %s", msg)
    if len(messages) > 20:
        log.warning("skipped %d more bad record(s) of %s", len(messages) - 20, path)
    if skipped is not None:
        skipped.extend(messages)


def read_reference_records(root: Path, name: str, bad_rows: str = "raise",
                           skipped: list | None = None) -> list[tuple[int, dict]]:
    """The valid records of ``raw/reference/<name>.json`` with their index in the file.

    The file must be a JSON list of objects, each passing :data:`REFERENCE_RULES`. A file in
    the wrong shape always raises :class:`ReferenceDataError` (whatever ``bad_rows``): not a
    list (a dict, such as a raw API response), or a non-empty list none of whose records is
    an object with a string ``ticker``. A bad record raises (``bad_rows="raise"``) or is
    left out, logged and added to ``skipped`` (``"skip"``), named by file, index and ticker.
    """
    path = reference_path(root, name)
    if not path.exists():
        return []
    with open(path) as fh:
        try:
            payload = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ReferenceDataError(f"{path}: not valid JSON ({exc})") from None
    expected = "expected a JSON list of records (objects, each with a string 'ticker')"
    if not isinstance(payload, list):
        msg = f"{path} is {_json_kind(payload).replace('an object', 'a JSON object')}"
        if isinstance(payload, dict):
            keys = list(payload)
            msg += f" with keys {keys[:5]}{' ...' if len(keys) > 5 else ''}"
        msg += f", {expected}"
        if isinstance(payload, dict) and isinstance(payload.get("results"), list):
            msg += ("; it looks like a raw API response: save its 'results' list as the file, "
                    "or re-fetch it with `gapline download --refresh-reference`")
        raise ReferenceDataError(msg)
    rules = REFERENCE_RULES[name]
    good, bad, unusable = [], [], 0
    for i, record in enumerate(payload):
        if not isinstance(record, dict):
            bad.append(f"{path}: record [{i}] is {_json_kind(record)}, expected an object")
            unusable += 1
            continue
        problems = [p for p in (_field_problem(f, rule, record) for f, rule in rules.items())
                    if p is not None]
        if problems:
            unusable += _field_problem("ticker", "ticker", record) is not None
            bad.append(reference_record_message(path, i, record, "; ".join(problems)))
        else:
            good.append((i, record))
    if payload and unusable == len(payload):
        raise ReferenceDataError(
            f"{bad[0]}; none of the file's {len(payload)} record(s) is usable: wrong file or "
            f"format? {expected}")
    reject_or_skip_records(path, bad, bad_rows, skipped)
    return good


def read_reference(root: Path, name: str, bad_rows: str = "raise", skipped: list | None = None):
    """Load ``raw/reference/<name>.json`` (``[]`` when absent): its records, validated by
    :func:`read_reference_records` (a wrong shape always raises; a bad record raises or, with
    ``bad_rows="skip"``, is left out and listed in ``skipped``)."""
    return [record for _, record in read_reference_records(root, name, bad_rows, skipped)]

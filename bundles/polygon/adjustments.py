"""Polygon splits and cash dividends -> zipline's adjustments db.

Every record of ``splits.json`` and ``dividends.json`` is validated before it becomes an
adjustment (a bad one would silently corrupt the adjusted history: ``split_to`` 0 is a ratio
of inf, a negative ``cash_amount`` a ratio above 1):

- on read (:data:`bundles.reference_files.REFERENCE_RULES`): a string ``ticker``; ISO 8601 dates
  (``execution_date`` / ``ex_dividend_date`` required; ``record_date``, ``declaration_date``,
  ``pay_date`` optional, falling back to the ex-date); ``split_from``, ``split_to`` and
  ``cash_amount`` finite numbers > 0;
- a split's ratio ``split_from / split_to`` must be finite and > 0;
- a cash dividend must be below the close of the session before its ex-date: zipline's price
  ratio ``1 - amount / close`` must lie in (0, 1) (zipline itself drops a ratio <= 0 with a log
  line, yet still books the payout). A dividend whose prior session has no close is left to
  zipline (no ratio, as before).

A bad record raises :class:`bundles.reference_files.ReferenceDataError` naming the file, the record's
index, its ticker and the field (``bad_rows="raise"``), or is skipped, logged and listed in
the ingest report (``bad_rows="skip"``). A file in the wrong shape always raises.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import reference_files
from ..reference_files import written_date
from .reference import note_skipped, read_checked
from .sids import SidMap

DIVIDEND_TYPES = ("CD", "SC")  # regular and special cash; capital-gain (LT/ST) kept out
_OPTIONAL_DATES = {"record_date": "record_date", "declared_date": "declaration_date",
                   "pay_date": "pay_date"}


def write_adjustments(adjustment_writer, root: Path, sids: SidMap, bad_rows: str = "raise",
                      report=None) -> tuple[int, int]:
    """Write the splits and dividends of ingested sids inside each sid's life (run after the
    daily bars: zipline computes dividend ratios from daily closes); returns
    (splits written, dividends written).

    ``bad_rows`` and ``report`` (an :class:`~bundles.polygon.report.IngestReport`): see the
    module docstring."""
    def to_sids(frame, date_col):
        frame = frame.copy()
        frame["sid"] = sids.map(frame["ticker"].to_numpy(), frame[date_col].to_numpy())
        frame = frame[frame["sid"] >= 0]
        # keep only actions inside the asset's life (adjusting data that exists)
        life = sids.assets.loc[frame["sid"], ["start_date", "end_date"]].to_numpy()
        dates = frame[date_col].to_numpy()
        return frame[(dates > life[:, 0]) & (dates <= life[:, 1])]

    splits = _split_frame(root, bad_rows, report)
    if not splits.empty:
        splits = to_sids(splits, "effective_date")
        splits = pd.DataFrame({
            "sid": splits["sid"].astype(int),
            # zipline multiplies prices before the date by ratio: 4:1 forward = 1/4
            "ratio": splits["ratio"].astype(float),
            "effective_date": splits["effective_date"],
        })
    else:
        splits = None
    divs = _dividend_frame(root, bad_rows, report)
    if not divs.empty:
        divs = to_sids(divs, "ex_date")
        divs = _check_prior_close(divs, getattr(adjustment_writer, "_equity_daily_bar_reader",
                                                None), root, bad_rows, report)
        divs = divs[["sid", "amount", "ex_date", "record_date", "declared_date", "pay_date"]]
        divs = divs.astype({"sid": int, "amount": float}).reset_index(drop=True)
    else:
        divs = None
    adjustment_writer.write(splits=splits, dividends=divs)
    return (0 if splits is None else len(splits)), (0 if divs is None else len(divs))


def _present(record: dict, field: str) -> bool:
    value = record.get(field)
    return not (value is None or value == "" or (isinstance(value, float) and math.isnan(value)))


def _reject_or_skip(root, name, messages, bad_rows, report):
    skipped: list[str] = []
    reference_files.reject_or_skip_records(reference_files.reference_path(root, name), messages, bad_rows,
                                  skipped)
    note_skipped(report, skipped)


def _split_frame(root, bad_rows, report) -> pd.DataFrame:
    """The valid splits: record index, ticker, effective_date, ratio."""
    path = reference_files.reference_path(root, "splits")
    rows, bad = [], []
    for i, rec in read_checked(root, "splits", bad_rows, report):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            ratio = float(np.float64(reference_files.reference_number(rec["split_from"]))
                          / np.float64(reference_files.reference_number(rec["split_to"])))
        if not (math.isfinite(ratio) and ratio > 0):
            bad.append(reference_files.reference_record_message(
                path, i, rec, f"ratio split_from / split_to ({ratio!r}) is not finite and > 0"))
            continue
        rows.append({"record": i, "ticker": rec["ticker"],
                     "effective_date": written_date(rec["execution_date"]), "ratio": ratio})
    _reject_or_skip(root, "splits", bad, bad_rows, report)
    return pd.DataFrame(rows, columns=["record", "ticker", "effective_date", "ratio"])


def _dividend_frame(root, bad_rows, report) -> pd.DataFrame:
    """The valid cash dividends (:data:`DIVIDEND_TYPES`; a record without a type is a
    regular cash dividend), with the record index and the raw ``cash_amount``."""
    rows = []
    for i, rec in read_checked(root, "dividends", bad_rows, report):
        kind = rec.get("dividend_type") if _present(rec, "dividend_type") else "CD"
        if kind not in DIVIDEND_TYPES:
            continue
        ex = written_date(rec["ex_dividend_date"])
        row = {"record": i, "ticker": rec["ticker"], "raw_amount": rec["cash_amount"],
               "amount": reference_files.reference_number(rec["cash_amount"]), "ex_date": ex}
        for col, field in _OPTIONAL_DATES.items():
            row[col] = written_date(rec[field]) if _present(rec, field) else ex
        rows.append(row)
    return pd.DataFrame(rows, columns=["record", "ticker", "raw_amount", "amount", "ex_date",
                                       *_OPTIONAL_DATES])


def _check_prior_close(divs: pd.DataFrame, reader, root, bad_rows, report) -> pd.DataFrame:
    """``divs`` without the dividends not below the prior session's close (rejected or
    skipped). Without a daily bar reader (or with no close that session) nothing is checked."""
    if reader is None or divs.empty:
        return divs
    sessions = pd.DatetimeIndex(reader.sessions)
    pos = sessions.searchsorted(divs["ex_date"].to_numpy()) - 1  # the session before ex
    sid = divs["sid"].to_numpy()
    close = np.full(len(divs), np.nan)
    has_prior = pos >= 0
    unique = np.unique(sid[has_prior])
    for start in range(0, len(unique), 256):  # bounded memory on a full-market ingest
        chunk = unique[start:start + 256]
        m = has_prior & np.isin(sid, chunk)
        lo, hi = int(pos[m].min()), int(pos[m].max())
        (arr,) = reader.load_raw_arrays(["close"], sessions[lo], sessions[hi],
                                        [int(s) for s in chunk])
        column = np.searchsorted(chunk, sid[m])
        close[m] = arr[pos[m] - lo, column]
    with np.errstate(invalid="ignore"):
        over = divs["amount"].to_numpy() >= close  # NaN close: False
    if not over.any():
        return divs
    path = reference_files.reference_path(root, "dividends")
    bad = []
    for (_, row), c, p in zip(divs[over].iterrows(), close[over], pos[over]):
        problem = (f"cash_amount {row['raw_amount']!r} is not below the close {float(c)!r} of "
                   f"{sessions[p]:%Y-%m-%d} (the session before the ex-date): zipline's "
                   "dividend ratio 1 - amount / close must be in (0, 1)")
        bad.append((int(row["record"]), reference_files.reference_record_message(
            path, int(row["record"]), {"ticker": row["ticker"]}, problem)))
    bad.sort()
    _reject_or_skip(root, "dividends", [m for _, m in bad], bad_rows, report)
    return divs[~over]

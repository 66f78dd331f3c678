"""Point-in-time reference data: ``gapline/reference_history.parquet`` of an ingestion.

One row per (sid, dated value) -- columns :data:`HISTORY_COLUMNS`:

``asof_date``
    The day the value describes: the ``date`` a dated ticker-details sample was asked for
    (:mod:`bundles.reference_history`), the fetch day of the undated snapshot
    ``ticker_details.json``, or the day before a split's execution date.
``known_date``
    The first day the share count counts as known: ``asof_date +`` the ingest's
    ``shares_lag_days`` for dated samples (Polygon answers a date from filings whose *period
    of report* ends by then, filed up to a quarter later), ``asof_date`` for the snapshot
    (everything it draws on was public when it was fetched) and for split rows.
``source``
    ``dated``, ``snapshot`` or ``split``: a split makes the count unknown (NaN) from its
    execution date until a sample taken on or after it is known (a count sampled before it
    is in pre-split shares); dated rows sampled before a split that would become known only
    after it are left out.
``shares_outstanding``
    ``share_class_shares_outstanding``, else ``weighted_shares_outstanding`` (NaN: unknown).
    Shares OUTSTANDING, not the float: Polygon/Massive has no dated float.
``type``, ``primary_exchange``, ``composite_figi``, ``share_class_figi``, ``cik``, ``ticker``
    As the sample gave them (None when it had none).

Whose value is it: a sample is for a ticker on a date, and a reused ticker is several
companies (one sid each, :mod:`.sids`). A sample goes to the sid of the same ticker with the
same composite FIGI, else share-class FIGI, else CIK; with none of these in common, to the sid
owning the ticker on the sample's date -- unless an identifier both carry differs (the sample
is of a company not ingested, e.g. the ticker's next company after the range): then it is
left out. So the new company's count never reaches the old company's sid.

Built only from the raw cache and the sids (a pure function of its inputs: an incremental
ingest that rebuilds it gets the same table as a full one). Readers join it as of each
session: :class:`factors.reference.PolygonReferenceLoader`, :mod:`analysis.gapstats`.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import reference_files, reference_history
from ..ingestions import REFERENCE_HISTORY_FILE, side_dir
from .adjustments import _split_frame
from .reference import note_skipped
from .sids import SidMap

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["sid", "asof_date", "known_date", "source", "shares_outstanding", "type",
                   "primary_exchange", "composite_figi", "share_class_figi", "cik", "ticker"]
_IDS = ("composite_figi", "share_class_figi", "cik")
_SOURCE_ORDER = {"snapshot": 0, "dated": 1, "split": 2}  # on equal known_date the last wins


def _id(key: str, value) -> str | None:
    """A comparable identifier: stripped text; a CIK without leading zeros."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if key == "cik":
        text = text.lstrip("0")
    return text or None


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _row(ticker, asof, known, source, record) -> dict:
    return {"ticker": ticker, "asof_date": asof, "known_date": known, "source": source,
            "shares_outstanding": reference_history.shares_of(record),
            "type": _text(record.get("type")),
            "primary_exchange": _text(record.get("primary_exchange")),
            **{k: _id(k, record.get(k)) for k in _IDS}}


def raw_rows(root, lag_days: int, bad_rows: str = "raise", report=None) -> list[dict]:
    """The dated samples and the snapshot as rows (no sid yet)."""
    skipped: list[str] = []
    rows = []
    lag = pd.Timedelta(days=int(lag_days))
    for s in reference_history.read_dated_details(root, bad_rows, skipped):
        if s["results"] is not None:
            rows.append(_row(s["ticker"], s["date"], s["date"] + lag, "dated", s["results"]))
    note_skipped(report, skipped)
    fetched = reference_history.snapshot_date(root)
    if fetched is not None:
        # bad records were reported when the reference assets were read
        for _, record in reference_files.read_reference_records(root, "ticker_details",
                                                                bad_rows, []):
            rows.append(_row(record["ticker"], fetched, fetched, "snapshot", record))
    return rows


def _resolve(rows: list[dict], sids: SidMap) -> tuple[list[dict], int]:
    """Give each row its sid (module docstring); returns the rows kept and how many were of
    a company not ingested."""
    assets = sids.assets
    by_ticker: dict[str, list] = {}
    for sid, a in assets.iterrows():
        by_ticker.setdefault(a["ticker"], []).append(
            (int(sid), {k: _id(k, a.get(k)) for k in _IDS}))
    def owner(ticker, day) -> int:
        sid = sids.sid_of_ticker.get(ticker)
        if sid is not None:
            return int(sid)
        return int(sids.map([ticker], [np.datetime64(day, "ns")])[0])

    kept, other = [], 0
    for row in rows:
        candidates = by_ticker.get(row["ticker"])
        if not candidates:
            continue
        sid = None
        for key in _IDS:
            if row[key] is not None:
                same = [s for s, ids in candidates if ids[key] == row[key]]
                if same:
                    sid = same[0] if len(same) == 1 else owner(row["ticker"], row["asof_date"])
                    break
        if sid is None:
            sid = owner(row["ticker"], row["asof_date"])
            ids = dict(candidates).get(sid, {})
            if any(row[k] is not None and ids.get(k) is not None and row[k] != ids[k]
                   for k in _IDS):
                other += 1
                continue
        kept.append({**row, "sid": sid})
    return kept, other


def _split_rows(root, sids: SidMap, bad_rows: str) -> list[dict]:
    splits = _split_frame(root, bad_rows, None)  # bad records were reported by the adjustments
    if splits.empty:
        return []
    sid = sids.map(splits["ticker"].to_numpy(), splits["effective_date"].to_numpy())
    out = []
    for s, ticker, day in zip(sid, splits["ticker"], splits["effective_date"]):
        if s >= 0:
            before = pd.Timestamp(day) - pd.Timedelta(days=1)
            out.append({"sid": int(s), "ticker": ticker, "asof_date": before,
                        "known_date": before, "source": "split",
                        "shares_outstanding": math.nan, "type": None,
                        "primary_exchange": None, **{k: None for k in _IDS},
                        "split_date": pd.Timestamp(day)})
    return out


def reference_history_table(root, sids: SidMap, lag_days: int | None = None,
                            bad_rows: str = "raise", report=None) -> pd.DataFrame:
    """The history table (module docstring), sorted by sid, known_date (ties: snapshot, dated,
    split)."""
    lag = reference_history.SHARES_KNOWN_LAG_DAYS if lag_days is None else int(lag_days)
    if lag < 0:
        raise ValueError(f"shares_lag_days must be >= 0, got {lag}")
    rows, other = _resolve(raw_rows(root, lag, bad_rows, report), sids)
    splits = _split_rows(root, sids, bad_rows)
    if splits:
        by_sid: dict[int, list] = {}
        for s in splits:
            by_sid.setdefault(s["sid"], []).append(s["split_date"])
        # a count sampled before a split must not become known after it (pre-split shares)
        rows = [r for r in rows if r["source"] != "dated" or not any(
            r["asof_date"] < e and r["known_date"] >= e - pd.Timedelta(days=1)
            for e in by_sid.get(r["sid"], ()))]
    frame = pd.DataFrame(rows + [{k: v for k, v in s.items() if k != "split_date"}
                                 for s in splits], columns=HISTORY_COLUMNS)
    if report is not None and other:
        report.add_counts({"reference_samples_of_other_companies": other})
    frame["_order"] = frame["source"].map(_SOURCE_ORDER)
    frame = (frame.sort_values(["sid", "known_date", "_order", "asof_date"], kind="mergesort")
             .drop(columns="_order").reset_index(drop=True))
    frame["sid"] = frame["sid"].astype("int64")
    for c in ("asof_date", "known_date"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[ns]")
    frame["shares_outstanding"] = pd.to_numeric(frame["shares_outstanding"]).astype("float64")
    for c in ("source", "type", "primary_exchange", *_IDS, "ticker"):
        frame[c] = frame[c].astype("string")
    return frame


def write_reference_history(output_dir: Path, root, sids: SidMap, lag_days: int | None = None,
                            bad_rows: str = "raise", report=None) -> int:
    """Write ``gapline/reference_history.parquet``; returns its row count."""
    table = reference_history_table(root, sids, lag_days, bad_rows, report)
    side = side_dir(output_dir)
    side.mkdir(parents=True, exist_ok=True)
    table.to_parquet(side / REFERENCE_HISTORY_FILE, index=False)
    if report is not None:
        report.add_counts({"reference_history_rows": len(table)})
        if not (table["source"] == "dated").any():
            snap = table.loc[table["source"] == "snapshot", "asof_date"]
            since = f"from {snap.min():%Y-%m-%d} on (the day ticker_details.json was fetched)" \
                if len(snap) else "in no session"
            report.notes.append(
                f"no dated ticker details under {reference_history.dated_details_dir(root)}: "
                f"shares outstanding are known {since}; `gapline download` (dated details, "
                f"--details-every) gives point-in-time counts")
    return len(table)

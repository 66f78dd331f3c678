"""Polygon reference data for an ingest: the tickers frame and the universe it defines."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from .. import reference_files
from ..market import ET
from .config import PolygonBundleConfig

log = logging.getLogger(__name__)


def read_checked(root, name: str, bad_rows: str = "raise", report=None) -> list[tuple[int, dict]]:
    """The valid ``(index, record)`` pairs of reference file ``name``
    (:func:`bundles.reference_files.read_reference_records`: a wrong shape always raises; a bad record
    raises or, with ``bad_rows="skip"``, is skipped, logged and listed in ``report``)."""
    skipped: list[str] = []
    records = reference_files.read_reference_records(root, name, bad_rows, skipped)
    note_skipped(report, skipped)
    return records


def note_skipped(report, messages: list[str]) -> None:
    """Add skipped reference records to the ingest report (``skipped_rows`` and the
    ``bad_reference_records`` count); a no-op without a report (they were logged)."""
    if report is None or not messages:
        return
    report.skipped_rows.extend(messages[: max(0, 1000 - len(report.skipped_rows))])
    report.add_counts({"bad_reference_records": len(messages)})


def load_reference_assets(root, bad_rows: str = "raise", report=None) -> pd.DataFrame:
    """Polygon reference tickers (+ details) as one frame, one row per (ticker, company).

    ``tickers.json`` and ``ticker_details.json`` are validated on read
    (:data:`bundles.reference_files.REFERENCE_RULES`): a file in the wrong shape always raises
    :class:`bundles.reference_files.ReferenceDataError` naming it; a bad record raises naming the file,
    its index, ticker and field, or with ``bad_rows="skip"`` is skipped, logged and listed in
    ``report`` (an :class:`~bundles.polygon.report.IngestReport`).
    """
    records = [r for _, r in read_checked(root, "tickers", bad_rows, report)]
    tickers = pd.DataFrame(records)
    if records and ("type" not in tickers or tickers["type"].isna().all()):
        msg = (f"no record of {reference_files.reference_path(root, 'tickers')} has a 'type': "
               "type-based universes (types=CS, CommonStock()) select nothing")
        log.warning(msg)
        if report is not None:
            report.notes.append(msg)
    cols = ["ticker", "name", "type", "primary_exchange", "active", "delisted_utc",
            "composite_figi", "share_class_figi", "cik"]
    if tickers.empty:
        return pd.DataFrame(columns=cols + ["delisted_date", "share_class_shares_outstanding",
                                            "weighted_shares_outstanding", "list_date"])
    for c in cols:
        if c not in tickers:
            tickers[c] = None
    tickers = tickers[cols].copy()
    # validated ISO 8601 on read; ISO8601 parses each value on its own (mixed spellings)
    delisted = pd.to_datetime(tickers["delisted_utc"], utc=True, format="ISO8601",
                              errors="coerce")
    tickers["delisted_date"] = delisted.dt.tz_convert(ET).dt.tz_localize(None).dt.normalize()
    details = pd.DataFrame([r for _, r in read_checked(root, "ticker_details", bad_rows,
                                                       report)])
    detail_cols = ["share_class_shares_outstanding", "weighted_shares_outstanding", "list_date"]
    for c in detail_cols:
        tickers[c] = None
    if not details.empty:
        for c in ["ticker", "composite_figi"] + detail_cols:
            if c not in details:
                details[c] = None
        # Match details by FIGI (it tells reused tickers apart), else by ticker.
        by_figi = details.dropna(subset=["composite_figi"]).drop_duplicates("composite_figi", keep="last")
        by_figi = by_figi.set_index("composite_figi")
        by_ticker = details.drop_duplicates("ticker", keep="last").set_index("ticker")
        for c in detail_cols:
            from_figi = tickers["composite_figi"].map(by_figi[c]) if len(by_figi) else None
            from_ticker = tickers["ticker"].map(by_ticker[c])
            tickers[c] = from_figi.combine_first(from_ticker) if from_figi is not None else from_ticker
    return tickers.reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class Universe:
    """Which tickers an ingest keeps, and which of those get minute bars: the config's
    ``tickers`` / ``types`` / ``minute_tickers`` against the reference types."""

    config: PolygonBundleConfig
    ref_types: dict  # ticker -> Polygon type (the last reference entry of a reused ticker)

    @classmethod
    def of(cls, config: PolygonBundleConfig, reference: pd.DataFrame) -> "Universe":
        last = reference.drop_duplicates("ticker", keep="last")
        return cls(config, last.set_index("ticker")["type"].to_dict())

    def contains(self, ticker: str) -> bool:
        cfg = self.config
        if cfg.tickers is not None and ticker not in cfg.tickers:
            return False
        if cfg.types is not None and self.ref_types.get(ticker) not in cfg.types:
            return False
        return True

    def wants_minutes(self, ticker: str) -> bool:
        mt = self.config.minute_tickers
        if mt == "all":
            return True
        if mt == "none":
            return False
        if isinstance(mt, str) and mt.startswith("types:"):
            return self.ref_types.get(ticker) in mt[6:].split(",")
        return ticker in mt

"""What an ingest saw and did: :class:`IngestReport`, saved as ``gapline/ingest_report.json``."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..ingestions import REPORT_FILE, side_dir


VOLUME_ROUNDING = (
    "zipline stores whole shares: a daily volume is the session total rounded half up; a "
    "regular-session minute's volume is the change of the rounded running total of its "
    "ticker's session, so minutes sum to the daily volume and fractions carry forward")


@dataclass
class IngestReport:
    days_read: int = 0
    rows_read: int = 0
    regular_rows: int = 0
    premarket_rows: int = 0
    afterhours_rows: int = 0
    other_hours_rows: int = 0
    minute_rows_written: int = 0
    file_counts: dict = field(default_factory=dict)  # summed flat-file counts
    skipped_rows: list = field(default_factory=list)
    unstorable_values: list = field(default_factory=list)
    low_precision_daily: list = field(default_factory=list)
    excluded_tickers: int = 0
    # daily_source=minute: sid-sessions whose daily close is the official close (closing-cross
    # print), those falling back to the last regular-session minute's close, and those whose
    # high/low were widened to an official close printed outside the regular minutes' range
    daily_close_official: int = 0
    daily_close_fallback: int = 0
    daily_range_widened_by_close: int = 0
    auction_rows: int = 0  # rows of gapline/auctions.parquet
    header_only_files: list = field(default_factory=list)  # day files with a header, no rows
    # rows whose volume is not a whole number of shares (Polygon sends fractional volumes
    # since 2026-02-23); stored rounded (see VOLUME_ROUNDING)
    fractional_volumes: int = 0
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)  # wall time per phase

    def add_counts(self, counts):
        for k, v in counts.items():
            self.file_counts[k] = self.file_counts.get(k, 0) + int(v)


def write_report(output_dir: Path, report: IngestReport, config, daily_source: str,
                 start_session: pd.Timestamp, end_session: pd.Timestamp, assets: pd.DataFrame,
                 n_splits: int, n_dividends: int) -> dict:
    """Write ``report`` plus the run's totals to the ingestion folder; return it as a dict.

    ``assets`` is the asset table after the asset db was written (with ``has_minute_bars``)."""
    side = side_dir(output_dir)
    side.mkdir(parents=True, exist_ok=True)
    out = asdict(report)
    out.update({
        "config": {k: str(v) for k, v in asdict(config).items()},
        "daily_source": daily_source,
        "daily_close": ("official close: the closing-cross print where the session has one, "
                        "else the last regular-session minute's close" if daily_source == "minute"
                        else "Polygon day aggregates' close (the official close)"),
        "volume_rounding": VOLUME_ROUNDING,
        "start_session": str(start_session.date()),
        "end_session": str(end_session.date()),
        "assets": int(len(assets)),
        "assets_with_minute_bars": int(assets["has_minute_bars"].sum()),
        "splits": n_splits,
        "dividends": n_dividends,
    })
    (side / REPORT_FILE).write_text(json.dumps(out, indent=1, default=str))
    return out

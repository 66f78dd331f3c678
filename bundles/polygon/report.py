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

#: What each daily field holds, by where the (sid, session)'s bar came from (``source`` of
#: pass 1's daily rows; README "Daily bars: minute files, day aggs, or both"). Polygon sources:
#: a Form T (extended-hours) trade never sets a day aggregate's open, high, low or close, but
#: its volume counts (massive.com knowledge base, "Does a Form T trade update a pre-market
#: minute bar's high, low, open and close?"; polygon-io/issues #70), and the closing cross
#: prints in the minute bar starting at the close (polygon-io/issues #67, #95).
DAILY_FIELDS = {
    "minute": {
        "open": "open of the first regular-session minute bar (09:30 ET start)",
        "high": "highest high of the regular-session minute bars (09:30-15:59 starts), raised "
                "to the official close when the cross printed above it",
        "low": "lowest low of the regular-session minute bars, lowered to the official close "
               "when the cross printed below it",
        "close": "official close: the open of the minute bar starting at the close (16:00 ET, "
                 "13:00 on half days: the closing cross); without that bar, the last "
                 "regular-session minute's close",
        "volume": "sum of the regular-session minute bars: no pre-market, after-hours or "
                  "closing-bar (16:00) volume",
    },
    "day": {
        "open": "Polygon day aggregate open: the day's first trade eligible to set an open "
                "(never a Form T extended-hours trade)",
        "high": "Polygon day aggregate high: regular-hours trades only (Form T prices excluded), "
                "the opening and closing crosses included",
        "low": "Polygon day aggregate low: regular-hours trades only, crosses included",
        "close": "Polygon day aggregate close: the last trade eligible to set the consolidated "
                 "last price; trades after 16:00 carry Form T and cannot, so normally the "
                 "closing-cross print, i.e. the official close",
        "volume": "Polygon day aggregate volume: every trade of the day, pre-market, "
                  "after-hours (Form T) and the closing cross included",
    },
}


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
    # (sid, session) daily bars by source ("minute" / "day"), and sids by the sources of their
    # daily bars ("minute", "day", or "mixed": some sessions from each)
    daily_rows_by_source: dict = field(default_factory=dict)
    daily_source_by_sid: dict = field(default_factory=dict)
    auction_rows: int = 0  # rows of gapline/auctions.parquet
    header_only_files: list = field(default_factory=list)  # day files with a header, no rows
    # rows whose volume is not a whole number of shares (Polygon sends fractional volumes
    # since 2026-02-23); stored rounded (see VOLUME_ROUNDING)
    fractional_volumes: int = 0
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)  # wall time per phase
    # full or incremental, and why (bundles.polygon.incremental)
    incremental: dict = field(default_factory=dict)

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
    used = [k for k in DAILY_FIELDS if report.daily_rows_by_source.get(k)] or \
        (["day"] if daily_source == "day" else ["minute"])
    closes = {"minute": "official close: the closing-cross print where the session has one, "
                        "else the last regular-session minute's close",
              "day": "Polygon day aggregates' close (normally the closing-cross print)"}
    out.update({
        "config": {k: str(v) for k, v in asdict(config).items()},
        "daily_source": daily_source,
        "daily_close": "; ".join(f"{k} bars: {closes[k]}" for k in used),
        "daily_fields": {k: DAILY_FIELDS[k] for k in used},
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

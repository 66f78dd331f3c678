"""Polygon splits and cash dividends -> zipline's adjustments db."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import layout
from .sids import SidMap

DIVIDEND_TYPES = ("CD", "SC")  # regular and special cash; capital-gain (LT/ST) kept out


def write_adjustments(adjustment_writer, root: Path, sids: SidMap) -> tuple[int, int]:
    """Write the splits and dividends of ingested sids inside each sid's life (run after the
    daily bars: zipline computes dividend ratios from daily closes); returns
    (splits written, dividends written)."""
    def to_sids(frame, date_col):
        frame = frame.copy()
        frame[date_col] = pd.to_datetime(frame[date_col]).dt.normalize()
        frame["sid"] = sids.map(frame["ticker"].to_numpy(), frame[date_col].to_numpy())
        frame = frame[frame["sid"] >= 0]
        # keep only actions inside the asset's life (adjusting data that exists)
        life = sids.assets.loc[frame["sid"], ["start_date", "end_date"]].to_numpy()
        dates = frame[date_col].to_numpy()
        return frame[(dates > life[:, 0]) & (dates <= life[:, 1])]

    splits = pd.DataFrame(layout.read_reference(root, "splits"))
    if not splits.empty:
        splits = to_sids(splits, "execution_date")
        splits = pd.DataFrame({
            "sid": splits["sid"].astype(int),
            # zipline multiplies prices before the date by ratio: 4:1 forward = 1/4
            "ratio": splits["split_from"].astype(float) / splits["split_to"].astype(float),
            "effective_date": splits["execution_date"],
        })
    else:
        splits = None
    divs = pd.DataFrame(layout.read_reference(root, "dividends"))
    if not divs.empty:
        if "dividend_type" in divs:
            divs = divs[divs["dividend_type"].fillna("CD").isin(DIVIDEND_TYPES)]
        divs = to_sids(divs, "ex_dividend_date")
        ex = divs["ex_dividend_date"]

        def date_or_ex(col):
            return pd.to_datetime(divs[col], errors="coerce").fillna(ex) if col in divs else ex

        divs = pd.DataFrame({
            "sid": divs["sid"].astype(int),
            "amount": divs["cash_amount"].astype(float),
            "ex_date": ex,
            "record_date": date_or_ex("record_date"),
            "declared_date": date_or_ex("declaration_date"),
            "pay_date": date_or_ex("pay_date"),
        })
    else:
        divs = None
    adjustment_writer.write(splits=splits, dividends=divs)
    return (0 if splits is None else len(splits)), (0 if divs is None else len(divs))

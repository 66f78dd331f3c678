"""A session held in several files: the day file plus the part files ``gapline download`` adds
(``YYYY-MM-DD.part-<n>.csv.gz``, :func:`bundles.layout.day_file_parts`) -> one frame.

Each file is read and validated on its own (:func:`bundles.flatfiles.read_day_file`), then the
files are merged with the reader's duplicate rule carried across files: the LAST row in file
order wins, the day file counting as first and the parts following in part order. Parts are
written for tickers the day file lacks, so duplicates across files are rare; they are counted
like duplicates inside one file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..flatfiles import DayFrame, read_day_file

ARRAYS = ("window_start", "open", "high", "low", "close", "volume")


def read_session_files(paths: list[Path], day, kind: str = "minute", bad_rows: str = "raise",
                       read=read_day_file) -> DayFrame:
    """Every file of session ``day`` (day file first, then its parts) as one :class:`DayFrame`
    (``read``: the one-file reader, :func:`~bundles.flatfiles.read_day_file`)."""
    if not paths:
        raise ValueError(f"no files for session {day}")
    frames = [read(p, day, kind, bad_rows) for p in paths]
    return frames[0] if len(frames) == 1 else merge_frames(frames)


def merge_frames(frames: list[DayFrame]) -> DayFrame:
    """Concatenate validated frames of one session in file order; sort by (ticker, time) and
    keep the last row of each (ticker, minute) across files (counted in ``counts``)."""
    symbols = np.unique(np.concatenate([f.symbols.astype(str) for f in frames]))
    codes = np.concatenate([np.searchsorted(symbols, f.symbols.astype(str))[f.codes]
                            for f in frames])
    cols = {k: np.concatenate([getattr(f, k) for f in frames]) for k in ARRAYS}
    counts: dict = {}
    for f in frames:
        for k, v in f.counts.items():
            counts[k] = counts.get(k, 0) + int(v)
    counts["part_files"] = len(frames) - 1
    # lexsort is stable: rows with equal (ticker, minute) stay in file order
    order = np.lexsort((cols["window_start"], codes))
    codes = codes[order]
    cols = {k: v[order] for k, v in cols.items()}
    ws = cols["window_start"]
    same_next = (codes[1:] == codes[:-1]) & (ws[1:] == ws[:-1])
    if same_next.any():
        dup_prev = np.concatenate([same_next, [False]])  # row i is replaced by row i + 1
        idx = np.flatnonzero(dup_prev)
        identical = np.ones(len(idx), dtype=bool)
        for k in ARRAYS[1:]:
            identical &= cols[k][idx] == cols[k][idx + 1]
        counts["duplicate_rows"] = counts.get("duplicate_rows", 0) + int(identical.sum())
        counts["conflicting_duplicates"] = (counts.get("conflicting_duplicates", 0)
                                            + int((~identical).sum()))
        keep = ~dup_prev
        codes = codes[keep]
        cols = {k: v[keep] for k, v in cols.items()}
    skipped = [m for f in frames for m in f.skipped]
    return DayFrame(frames[0].path, frames[0].day, codes, symbols.astype(object),
                    cols["window_start"], cols["open"], cols["high"], cols["low"], cols["close"],
                    cols["volume"], counts, skipped)

"""The pre-market as known at the 09:25 ET decision of opening-auction strategies: the
``pmcut_*`` columns of ``extended_hours.parquet``.

A market-on-open order must be decided before the opening cross (09:30 ET). The microcap_short
reference (``../shared/references/000_b6ec8f3297f30e2b.txt``; its code, cjdietl/microcap_short
``microshort.py``) scans for gappers and fires its orders at 09:25 ET
(``Schedule.On(..., TimeRules.At(9, 25), self.FireOrders)``) and ranks them by pre-market dollar
volume ``(close * volume).sum()`` over ``History(symbol, TimeSpan.FromMinutes(30),
Resolution.Minute)`` with extended hours on: the 30 one-minute bars ending by 09:25, i.e. the
bars STARTING 08:55..09:24 ET. The full summaries (``pm_*``) cover the pre-market up to the
open and are only known at 09:30; these columns use the bars starting before 09:25 only:

``pmcut_last`` (close of the last such bar), ``pmcut_high``, ``pmcut_low``, ``pmcut_volume``,
``pmcut_dollar_volume`` (sum of close x volume over the bars starting 04:00..09:24),
``pmcut_window_dollar_volume`` (the same over the bars starting 08:55..09:24; NaN when the
window has no bar, as the reference skips a name whose 30-minute history is empty) and
``pmcut_bars``. All NaN for a name without a pre-market bar before 09:25.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..market import ET
from .bars import group_bounds

# microcap_short (000_b6ec8f3297f30e2b.txt; cjdietl/microcap_short microshort.py): orders are
# fired at 09:25 ET, ranked by close x volume over the last 30 minutes of bars before then.
DECISION_CUT = pd.Timedelta(hours=9, minutes=25)  # bars starting before 09:25 ET
DECISION_WINDOW = pd.Timedelta(minutes=30)  # the ranking window: bars starting 08:55..09:24
FIELDS = ("last", "high", "low", "volume", "dollar_volume", "window_dollar_volume", "bars")
COLUMNS = [f"pmcut_{f}" for f in FIELDS]


def cut_bounds(day) -> tuple[int, int]:
    """(window start, cut) of session ``day`` in ns UTC: 08:55 and 09:25 ET."""
    cut = pd.Timestamp(day).tz_localize(None).normalize().tz_localize(ET) + DECISION_CUT
    return (cut - DECISION_WINDOW).value, cut.value


def premarket_cut(codes, ws, h, l, c, v, day) -> pd.DataFrame | None:
    """``pmcut_*`` per ticker code (index ``code``) from pre-market rows sorted by
    (code, time); None when no bar starts before the cut."""
    window_start, cut = cut_bounds(day)
    m = ws < cut
    codes, ws, h, l, c, v = (a[m] for a in (codes, ws, h, l, c, v))
    starts, lengths = group_bounds(codes)
    if not len(starts):
        return None
    dollars = c * v
    out = pd.DataFrame({
        "pmcut_last": c[starts + lengths - 1],
        "pmcut_high": np.maximum.reduceat(h, starts),
        "pmcut_low": np.minimum.reduceat(l, starts),
        "pmcut_volume": np.add.reduceat(v, starts),
        "pmcut_dollar_volume": np.add.reduceat(dollars, starts),
        "pmcut_bars": lengths.astype("float64"),
    }, index=pd.Index(codes[starts], name="code"))
    w = ws >= window_start
    w_starts, _ = group_bounds(codes[w])
    window = pd.Series(np.add.reduceat(dollars[w], w_starts) if len(w_starts) else [],
                       index=codes[w][w_starts], dtype="float64")
    out["pmcut_window_dollar_volume"] = window.reindex(out.index)
    return out[COLUMNS]

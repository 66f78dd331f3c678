"""The demo's sessions (``DEMO_START..DEMO_END`` on the trading calendar) and date strings."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..market import et_midnight_ns, trading_calendar
from .params import DEMO_END, DEMO_START, NS_PER_MINUTE


class Sessions:
    """Session labels with their open and close (ns since the epoch, UTC), regular-session
    minutes and Polygon's day-aggregate label (00:00 New York time)."""

    def __init__(self):
        cal = trading_calendar()
        self.days = cal.sessions_in_range(DEMO_START, DEMO_END)
        self.opens = np.array([cal.session_open(s).value for s in self.days], dtype=np.int64)
        self.closes = np.array([cal.session_close(s).value for s in self.days], dtype=np.int64)
        self.n_rth = ((self.closes - self.opens) // NS_PER_MINUTE).astype(int)
        self.day_ns = np.array([et_midnight_ns(s) for s in self.days], dtype=np.int64)
        self._index = {pd.Timestamp(s): i for i, s in enumerate(self.days)}

    def __len__(self) -> int:
        return len(self.days)

    def index(self, day) -> int:
        """The position of session ``day``."""
        return self._index[pd.Timestamp(day)]


def iso(day) -> str:
    return pd.Timestamp(day).strftime("%Y-%m-%d")


def utc_midnight(day) -> str:
    return pd.Timestamp(day).strftime("%Y-%m-%dT00:00:00Z")

"""The simulation's state: sessions, universe, event calendar, and what carries from one
session to the next (last close and lows, close and dollar-volume histories, event logs)."""
from __future__ import annotations

import numpy as np

from .day import simulate_day
from .events import schedule_events
from .params import SEED
from .sessions import Sessions
from .universe import build_universe


class Simulation:
    """The universe and its day-by-day state; :meth:`simulate_day` must be called in order."""

    def __init__(self):
        self.sessions = Sessions()
        rng = np.random.default_rng(SEED)  # the universe, then the event calendar
        self.universe = build_universe(rng, self.sessions)
        self.schedule = schedule_events(self.universe, self.sessions, rng)
        p0 = self.universe.p0
        S, D = len(self.universe), len(self.sessions)
        self.last_close = p0.copy()
        self.last_low = p0.copy()
        self.anchor = p0.copy()
        self.closes_hist = np.full((S, D), np.nan)
        # What the bundle's daily bars (regular-session minutes) and Pipeline see: adjusted
        # closes, the regular-session low, dollar volume.
        self.last_low_rth = p0.copy()
        self.adj_hist = np.full((S, D), np.nan)
        self.dv_hist = np.zeros((S, D))
        self.sell_gaps: list[dict] = []
        self.gap_and_go: list[dict] = []
        self.pumps: list[dict] = []

    def simulate_day(self, d: int, build: bool = True):
        """Simulate session ``d`` (see :func:`bundles.demo.day.simulate_day`)."""
        return simulate_day(self, d, build)

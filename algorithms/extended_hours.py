"""The one door to the bundle's pre-market / after-hours summaries, with a look-ahead guard.

The ``polygon`` bundle writes ``<ingestion>/gapline/extended_hours.parquet``: one row per
(session, sid) with ``pm_open, pm_high, pm_low, pm_last, pm_volume, pm_dollar_volume,
pm_bars, pm_last_start`` (pre-market 04:00-09:30 ET), the same ``ah_*`` columns
(after-hours, the close + 4 h) and the pre-market cut at 09:25 ET, ``pmcut_last, pmcut_high,
pmcut_low, pmcut_volume, pmcut_dollar_volume, pmcut_window_dollar_volume, pmcut_bars`` (bars
starting before 09:25 only; the window is 08:55..09:24; see
:mod:`bundles.polygon.premarket_cut`). A pre-market row summarises the whole pre-market, so it
is only known once the session has opened: :meth:`ExtendedHours.premarket` raises
:class:`LookAheadError` when asked for a session's row before that session's open (09:30 ET
on regular days), and :meth:`ExtendedHours.afterhours` before the after-hours window has
ended (close + 4 h).

:meth:`ExtendedHours.premarket_cut` serves the 09:25 cut for the decision of OPENING-AUCTION
(market-on-open) orders: it is allowed from the session's ``before_trading_start`` (08:45 ET,
zipline's time for it) on, i.e. 40 minutes before 09:25. That is a modelling choice, not a
leak into any fill: the decision is taken "as of 09:25" and the orders it sends cannot execute
before the opening cross at 09:30, which is after everything the cut summarises. It is refused
(:class:`LookAheadError`) on any earlier simulation day, and it must not be used to trade
before 09:30 (e.g. a pre-market limit order placed at 08:45 on 09:24's price would see the
future).

In an algorithm::

    from algorithms.extended_hours import ExtendedHours
    eh = ExtendedHours.for_algorithm(context)            # the bundle being run
    pm = eh.premarket_now(context, data, assets)         # after the open only
    cut = eh.premarket_cut_now(context, data, assets)    # in before_trading_start: MOO decision

The table is opened once per ingestion folder per process and read a session at a time.
"""
from __future__ import annotations

from pathlib import Path

import datetime as dt

import numpy as np
import pandas as pd

from bundles.ingestions import EXTENDED_HOURS_FILE, SIDE_DIR, ingestion_dir, ingestion_dir_of
from bundles.market import ET, trading_calendar

from .session_tables import load_session_table, session_key

SIDE_TABLE = Path(SIDE_DIR) / EXTENDED_HOURS_FILE
FIELDS = ("open", "high", "low", "last", "volume", "dollar_volume", "bars", "last_start")
CUT_FIELDS = ("last", "high", "low", "volume", "dollar_volume", "window_dollar_volume", "bars")
AFTER_HOURS_SPAN = pd.Timedelta(hours=4)
# zipline calls before_trading_start at 08:45 ET on every session (TradingAlgorithm._create_clock)
BEFORE_TRADING_START = dt.time(8, 45)


class LookAheadError(RuntimeError):
    """Asked for extended-hours data that is not yet known at the simulation time."""


class ExtendedHours:
    """Pre-market / after-hours rows per (session, asset); see the module docstring."""

    def __init__(self, path, calendar=None):
        path = Path(path)
        if path.is_dir():
            path = path / SIDE_TABLE if (path / SIDE_TABLE).exists() else path / SIDE_TABLE.name
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no extended-hours table; it is written by the polygon bundle's ingest")
        self.path = path
        self.table = load_session_table(str(path))
        self.calendar = calendar or trading_calendar()

    @classmethod
    def for_algorithm(cls, algo) -> "ExtendedHours":
        """The table of the bundle the running algorithm uses (cached on the algorithm)."""
        cached = getattr(algo, "_gapline_extended_hours", None)
        if cached is None:
            cached = cls(ingestion_dir_of(algo.asset_finder), calendar=algo.trading_calendar)
            algo._gapline_extended_hours = cached
        return cached

    @classmethod
    def for_bundle(cls, bundle: str, environ=None, timestamp=None) -> "ExtendedHours":
        """The table of ``bundle``'s ingestion that zipline loads at ``timestamp`` (research)."""
        return cls(ingestion_dir(bundle, timestamp, environ))

    # -- guards -------------------------------------------------------------------------
    def known_from(self, session, part: str = "pm") -> pd.Timestamp:
        """First time (UTC) at which ``part`` of ``session`` is fully known."""
        session = session_key(session)
        if part == "pm":
            return self.calendar.session_open(session)
        if part == "pmcut":  # the MOO decision: from before_trading_start (module docstring)
            return pd.Timestamp.combine(session.date(), BEFORE_TRADING_START).tz_localize(ET) \
                .tz_convert("UTC")
        return self.calendar.session_close(session) + AFTER_HOURS_SPAN

    def _check(self, session, now, part):
        if now is None:
            raise LookAheadError("pass the current simulation time (`now`) to read "
                                 "extended-hours data")
        now = pd.Timestamp(now)
        now = now.tz_localize("UTC") if now.tzinfo is None else now
        known = self.known_from(session, part)
        if now < known:
            what = {"pm": "pre-market", "pmcut": "the 09:25 pre-market cut of"}.get(
                part, "after-hours")
            raise LookAheadError(
                f"{what} data of {pd.Timestamp(session).date()} is not known before "
                f"{known.tz_convert(ET):%Y-%m-%d %H:%M %Z} (asked at "
                f"{now.tz_convert(ET):%Y-%m-%d %H:%M %Z})")

    # -- reads --------------------------------------------------------------------------
    def _rows(self, session, assets, part, fields=FIELDS):
        session = session_key(session)
        assets = list(assets)
        sids = [int(getattr(a, "sid", a)) for a in assets]
        cols = [f"{part}_{f}" for f in fields]
        missing = [c for c in cols if c not in self.table.file.schema_arrow.names]
        if missing:
            raise KeyError(f"{self.path} has no {missing[0]} column: it was ingested before "
                           "the column existed; re-ingest the bundle")
        table = self.table.get(session)
        if table is None:
            out = pd.DataFrame(np.nan, index=range(len(assets)), columns=cols)
        else:
            out = table.reindex(sids)[cols].reset_index(drop=True)
        out.index = pd.Index(assets, dtype=object)
        out.columns = list(fields)
        if "last_start" in fields:
            out["last_start"] = pd.to_datetime(out["last_start"], utc=True)
        return out

    def premarket(self, session, assets, now) -> pd.DataFrame:
        """Pre-market summary of ``session`` for ``assets`` (index: the assets as given;
        columns open, high, low, last, volume, dollar_volume, bars, last_start; NaN rows for
        assets without pre-market trades). Raises :class:`LookAheadError` before the open."""
        self._check(session, now, "pm")
        return self._rows(session, assets, "pm")

    def afterhours(self, session, assets, now) -> pd.DataFrame:
        """After-hours summary of ``session``; raises before the after-hours window ended."""
        self._check(session, now, "ah")
        return self._rows(session, assets, "ah")

    def premarket_cut(self, session, assets, now) -> pd.DataFrame:
        """The pre-market of ``session`` as known at 09:25 ET, for the decision of orders that
        execute in the opening auction (market-on-open), which cannot fill before 09:30.

        Columns last, high, low, volume, dollar_volume (close x volume of the bars starting
        04:00..09:24), window_dollar_volume (the same over 08:55..09:24) and bars; NaN rows for
        assets without a pre-market bar before 09:25. Allowed from the session's
        before_trading_start (08:45 ET) on; raises :class:`LookAheadError` before that, so on
        any earlier simulation day."""
        self._check(session, now, "pmcut")
        return self._rows(session, assets, "pmcut", CUT_FIELDS)

    def premarket_now(self, algo, data, assets) -> pd.DataFrame:
        """Today's pre-market rows at the simulation's current minute."""
        now = pd.Timestamp(data.current_dt)
        session = self.calendar.minute_to_session(now)
        return self.premarket(session, assets, now)

    def premarket_cut_now(self, algo, data, assets) -> pd.DataFrame:
        """Today's 09:25 cut at the simulation's current time (``before_trading_start`` or
        later; before the open the session is the one about to start)."""
        now = pd.Timestamp(data.current_dt if data is not None else algo.get_datetime())
        now = now.tz_localize("UTC") if now.tzinfo is None else now
        session = self.calendar.minute_to_session(now, direction="next")
        return self.premarket_cut(session, assets, now)

"""What a ``polygon`` ingest reads: :class:`PolygonBundleConfig` (environment, ``zipline -x``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import layout
from ..options import parse_bool, parse_list
from ..reference_history import SHARES_KNOWN_LAG_DAYS


def _as_tuple(value):
    """:func:`bundles.options.parse_list` as a tuple (the config stores lists as tuples)."""
    items = parse_list(value)
    return tuple(items) if items is not None else None


def _as_bool(value, key: str) -> bool:
    """``value`` (a bool, or ``1/0``, ``true/false``, ``yes/no``, ``on/off``) as a bool."""
    if isinstance(value, bool):
        return value
    parsed = parse_bool(str(value))
    if parsed is not None:
        return parsed
    raise ValueError(f"invalid {key} {value!r} (-x polygon.{key}=... / GAPLINE_{key.upper()}): "
                     "use 1 or 0")


CHOICES = {"daily_source": ("auto", "minute", "day", "mixed"), "bad_rows": ("raise", "skip")}


@dataclass
class PolygonBundleConfig:
    """What to ingest. Every field can be set from the environment or ``zipline -x``.

    =================  ==========================  ===============================================
    field              env / ``-x polygon.<key>``  meaning
    =================  ==========================  ===============================================
    root               GAPLINE_DATA / root         folder holding ``raw/`` (or ``us_stocks_sip/``)
    start, end         GAPLINE_START / start ...   session range (default: the files present)
    tickers            GAPLINE_TICKERS / tickers   universe: ``all``, ``A,B,C`` or ``@file``
    types              GAPLINE_TYPES / types       universe filter on Polygon type: ``CS,ADRC``
    minute_tickers     GAPLINE_MINUTE_TICKERS      minute bars for ``all`` (default), ``none``,
                                                   a list/``@file``, or ``types:CS,ETF``
    daily_source       GAPLINE_DAILY_SOURCE        ``minute`` (regular-session bars resampled),
                                                   ``day`` (Polygon day aggs), ``mixed`` (minutes
                                                   where the minute files hold the ticker, day
                                                   aggs for the rest), ``auto`` (``mixed`` when
                                                   both datasets exist, else the one present)
    bad_rows           GAPLINE_BAD_ROWS            ``raise`` (default) or ``skip`` bad rows
    shares_lag_days    GAPLINE_SHARES_LAG_DAYS     days after its sample date a dated share
                                                   count counts as known (default 90, see
                                                   :mod:`bundles.reference_history`)
    incremental        GAPLINE_INCREMENTAL         ``1`` (default): reuse the previous ingestion
                                                   when only new sessions arrived; ``0``: always
                                                   a full ingest (:mod:`.incremental`)
    workers            GAPLINE_WORKERS             processes writing minute bars (an integer
                                                   >= 1; default: the machine's cores)
    =================  ==========================  ===============================================
    """

    root: Path
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    tickers: tuple | None = None
    types: tuple | None = None
    minute_tickers: tuple | str = "all"
    daily_source: str = "auto"
    bad_rows: str = "raise"
    shares_lag_days: int = SHARES_KNOWN_LAG_DAYS
    incremental: bool = True
    workers: int | str | None = None

    KEYS = ("root", "start", "end", "tickers", "types", "minute_tickers", "daily_source", "bad_rows",
            "shares_lag_days", "incremental", "workers")

    def __post_init__(self):
        self.root = Path(self.root).expanduser()
        self.start = pd.Timestamp(self.start).normalize() if self.start is not None else None
        self.end = pd.Timestamp(self.end).normalize() if self.end is not None else None
        self.tickers = _as_tuple(self.tickers)
        self.types = _as_tuple(self.types)
        if isinstance(self.minute_tickers, str) and self.minute_tickers.strip().lower() in ("all", "none"):
            self.minute_tickers = self.minute_tickers.strip().lower()
        elif isinstance(self.minute_tickers, str) and self.minute_tickers.lower().startswith("types:"):
            self.minute_tickers = "types:" + ",".join(parse_list(self.minute_tickers[6:]) or ())
        else:
            self.minute_tickers = _as_tuple(self.minute_tickers) or "none"
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"invalid {key} {getattr(self, key)!r} (-x polygon.{key}=... / "
                    f"GAPLINE_{key.upper()}): {key} must be one of {', '.join(allowed)}")
        try:
            self.shares_lag_days = int(self.shares_lag_days)
        except (TypeError, ValueError):
            self.shares_lag_days = -1
        if self.shares_lag_days < 0:
            raise ValueError("invalid shares_lag_days (-x polygon.shares_lag_days=... / "
                             "GAPLINE_SHARES_LAG_DAYS): a whole number of days >= 0")
        self.incremental = _as_bool(self.incremental, "incremental")
        self.workers = _parse_workers(self.workers)
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start.date()} is after end {self.end.date()}")

    @classmethod
    def from_environ(cls, environ=None, extension_args=None, **overrides):
        """Build from ``GAPLINE_*`` variables, then ``-x polygon.<key>=...``, then overrides."""
        environ = os.environ if environ is None else environ
        values = {"root": layout.data_root(environ)}
        for key in cls.KEYS[1:]:
            env_value = environ.get(f"GAPLINE_{key.upper()}")
            if env_value:
                values[key] = env_value
        ns = getattr(extension_args, "polygon", None) if extension_args is not None else None
        for key in cls.KEYS:
            value = getattr(ns, key, None) if ns is not None else None
            if value is not None:
                values[key] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def resolved_range(self):
        """(start, end) with defaults taken from the day files present under ``root``."""
        start, end = self.start, self.end
        if start is None or end is None:
            found = layout.date_range_of(self.root)
            if found is not None:
                start = start if start is not None else pd.Timestamp(found[0])
                end = end if end is not None else pd.Timestamp(found[1])
        return start, end

    def session_range(self, calendar):
        """:meth:`resolved_range` snapped to sessions of ``calendar``: start -> the first
        session on or after it, end -> the last on or before it (a weekend or holiday day file
        at the edge of the raw cache, ``GAPLINE_END=2024-03-31``). Returns (start, end, notes);
        ``(None, None, [])`` when there are no day files."""
        return snap_to_sessions(calendar, *self.resolved_range())


def _parse_workers(value) -> int:
    """``workers``: an integer >= 1; unset (``None``) -> the machine's cores."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return max(1, os.cpu_count() or 1)
    try:
        n = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value))
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"invalid workers {value!r} (-x polygon.workers=N / GAPLINE_WORKERS): "
                         "workers must be an integer >= 1")
    return n


def snap_to_sessions(calendar, start, end):
    """(start, end, notes): ``start`` moved to the next session, ``end`` to the previous one,
    each move described in ``notes``; raises ``ValueError`` when no session lies between."""
    if start is None or end is None:
        return start, end, []
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    first, last = calendar.first_session.tz_localize(None), calendar.last_session.tz_localize(None)
    lo, hi = max(start, first), min(end, last)
    sessions = calendar.sessions_in_range(lo, hi) if lo <= hi else pd.DatetimeIndex([])
    if not len(sessions):
        raise ValueError(f"no {calendar.name} trading session between {start.date()} and "
                         f"{end.date()}: set GAPLINE_START / GAPLINE_END (-x polygon.start=...) "
                         "to a range holding at least one session")
    s, e = sessions[0].tz_localize(None), sessions[-1].tz_localize(None)
    notes = []
    if s != start:
        notes.append(f"start {start.date()} is not a {calendar.name} session: moved to the "
                     f"next session {s.date()}")
    if e != end:
        notes.append(f"end {end.date()} is not a {calendar.name} session: moved to the "
                     f"previous session {e.date()}")
    return s, e, notes

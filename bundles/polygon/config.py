"""What a ``polygon`` ingest reads: :class:`PolygonBundleConfig` (environment, ``zipline -x``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import layout
from ..options import parse_list


def _as_tuple(value):
    """:func:`bundles.options.parse_list` as a tuple (the config stores lists as tuples)."""
    items = parse_list(value)
    return tuple(items) if items is not None else None


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
                                                   ``day`` (Polygon day aggs), ``auto``
    bad_rows           GAPLINE_BAD_ROWS            ``raise`` (default) or ``skip`` bad rows
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

    KEYS = ("root", "start", "end", "tickers", "types", "minute_tickers", "daily_source", "bad_rows")

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
        if self.daily_source not in ("auto", "minute", "day"):
            raise ValueError(f"daily_source must be auto, minute or day; got {self.daily_source!r}")
        if self.bad_rows not in ("raise", "skip"):
            raise ValueError(f"bad_rows must be raise or skip; got {self.bad_rows!r}")
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

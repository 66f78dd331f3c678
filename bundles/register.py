"""Register gapline's bundles with zipline (called by the repo's ``extension.py``).

Registration never fails on a bad option: the options are validated when the bundle is
ingested, so ``zipline -x polygon.bad_rows=ignore ingest -b polygon`` fails naming
``bad_rows`` and its allowed values (zipline swallows an extension's exception into a warning
and would then only say that no bundle ``polygon`` is registered).
"""
from __future__ import annotations

import logging
import os

import pandas as pd

from . import layout
from .market import CALENDAR, MINUTES_PER_DAY
from .options import extension_args
from .polygon import PolygonBundleConfig, make_ingest

log = logging.getLogger(__name__)


def polygon_config(environ=None) -> PolygonBundleConfig:
    """The ``polygon`` bundle's options from the environment and ``zipline -x polygon.*``."""
    return PolygonBundleConfig.from_environ(environ, extension_args())


def demo_root(environ=None):
    environ = os.environ if environ is None else environ
    return layout.data_root(environ) / "demo"


def demo_config(environ=None) -> PolygonBundleConfig:
    """``polygon-demo``: generate the demo raw files if needed, then ingest them like ``polygon``."""
    from . import demo

    root = demo_root(environ)
    demo.generate(root, progress=False)
    return PolygonBundleConfig(root=root, start=demo.DEMO_START, end=demo.DEMO_END,
                               daily_source="minute")


def _polygon_range(calendar):
    """The session range to register ``polygon`` with; (None, None) when the options are
    invalid (the ingest then fails naming the option, see the module doc)."""
    try:
        start, end, _ = polygon_config().session_range(calendar)
    except ValueError as exc:
        log.debug("polygon bundle options invalid at registration: %s", exc)
        return None, None
    return start, end


def register_all():
    """Register ``polygon`` and ``polygon-demo`` (start/end sessions fixed at registration:
    without them zipline zero-pads every sid from 1990; snapped to sessions, since zipline's
    writers fail on a range that starts or ends on a weekend or holiday)."""
    from zipline.data.bundles import register
    from zipline.utils.calendar_utils import get_calendar

    from . import demo

    start, end = _polygon_range(get_calendar(CALENDAR))
    register("polygon", make_ingest(polygon_config), calendar_name=CALENDAR,
             start_session=start, end_session=end, minutes_per_day=MINUTES_PER_DAY)
    register("polygon-demo", make_ingest(demo_config), calendar_name=CALENDAR,
             start_session=pd.Timestamp(demo.DEMO_START), end_session=pd.Timestamp(demo.DEMO_END),
             minutes_per_day=MINUTES_PER_DAY)

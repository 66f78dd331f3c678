"""Register gapline's bundles with zipline (called by the repo's ``extension.py``)."""
from __future__ import annotations

import os

import pandas as pd

from . import layout
from .market import CALENDAR, MINUTES_PER_DAY
from .options import extension_args
from .polygon import PolygonBundleConfig, make_ingest



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


def register_all():
    """Register ``polygon`` and ``polygon-demo`` (start/end sessions fixed at registration:
    without them zipline zero-pads every sid from 1990)."""
    from zipline.data.bundles import register

    from . import demo

    config = polygon_config()
    start, end = config.resolved_range()
    register("polygon", make_ingest(polygon_config), calendar_name=CALENDAR,
             start_session=start, end_session=end, minutes_per_day=MINUTES_PER_DAY)
    register("polygon-demo", make_ingest(demo_config), calendar_name=CALENDAR,
             start_session=pd.Timestamp(demo.DEMO_START), end_session=pd.Timestamp(demo.DEMO_END),
             minutes_per_day=MINUTES_PER_DAY)

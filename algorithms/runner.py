"""Run a gapline algorithm from Python with parameter overrides.

::

    from algorithms.runner import run
    perf = run("sell_gap", "2024-10-01", "2024-10-31", costs="realistic", top_n=5)

is the Python twin of::

    zipline -x costs=realistic -x top_n=5 run -f algorithms/sell_gap.py -b polygon-demo \\
        --data-frequency minute --no-benchmark -s 2024-10-01 -e 2024-10-31

The module's UPPER_CASE constants are the defaults; keyword ``params`` override them
(case-insensitive; unknown names raise ``TypeError``, values of the wrong type or outside the
module's ``PARAM_BOUNDS`` raise ``ValueError`` naming the parameter: see
:mod:`algorithms.common`); ``costs`` selects the cost preset (default: the module's ``COSTS``) and ``cost_overrides`` tweaks
single cost parameters (see :mod:`algorithms.costs`). The module is imported once and never
modified, so runs do not leak parameters into each other.

Before zipline starts, the start is checked against the bundle's first session and the
Pipeline's look-back (:func:`earliest_start`): too early raises
:class:`algorithms.params.HistoryError` (a ``ValueError``) naming the earliest valid start.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from bundles.ingestions import ensure_registered

from . import common, history
from .params import module_params, resolve_params
from .costs import make_config


def load_algorithm(algo_module_name):
    """Import ``sell_gap`` / ``algorithms.sell_gap`` / ``path/to/file.py``."""
    name = str(algo_module_name)
    if name.endswith(".py"):
        path = Path(name).resolve()
        spec = importlib.util.spec_from_file_location(f"gapline_algo_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    if "." not in name:
        name = f"algorithms.{name}"
    return importlib.import_module(name)


def algorithm_name(module) -> str:
    """``sell_gap`` for ``algorithms.sell_gap`` or ``path/to/sell_gap.py``."""
    file = getattr(module, "__file__", None)
    return Path(file).stem if file else module.__name__.rsplit(".", 1)[-1]


def resolve(module, params: dict, costs=None):
    """``(overrides, resolved)``: the UPPER_CASE ``params`` (plus ``COSTS`` when ``costs`` is
    given) and every parameter of ``module`` after them, converted and checked against its
    ``PARAM_BOUNDS`` (``-x`` arguments are not read here: ``initialize`` applies them)."""
    defaults = module_params(vars(module))
    overrides = {k.upper(): v for k, v in params.items()}
    if costs is not None and "COSTS" in defaults:
        overrides["COSTS"] = costs
    resolved = resolve_params(defaults, overrides, use_extension_args=False,
                              bounds=getattr(module, "PARAM_BOUNDS", None))
    return overrides, resolved


def bundle_history(bundle="polygon-demo", environ=None):
    """``(first session, calendar sessions)`` of the ingestion of ``bundle`` zipline loads: the
    later of its minute and daily readers' ``first_trading_day`` (what zipline hands its data
    portal and Pipeline loader), and the sessions of the bundle's calendar."""
    from zipline.data import bundles as zb
    from zipline.utils.calendar_utils import get_calendar

    environ = dict(os.environ if environ is None else environ)
    ensure_registered(bundle)
    data = zb.load(bundle, environ)
    firsts = [getattr(reader, "first_trading_day", None)
              for reader in (data.equity_minute_bar_reader, data.equity_daily_bar_reader)]
    first = max(history._session(f) for f in firsts if f is not None)
    return first, get_calendar(zb.bundles[bundle].calendar_name).sessions


def earliest_start(algo_module_name, bundle="polygon-demo", environ=None, **params):
    """The first session ``algo_module_name`` (with ``params``) can start on ``bundle``: its
    Pipeline's look-back (:func:`algorithms.history.algorithm_lookback`) sessions after the
    bundle's first session; ``None`` when the calendar ends before that."""
    module = load_algorithm(algo_module_name)
    _, resolved = resolve(module, params)
    lookback = history.algorithm_lookback(vars(module), SimpleNamespace(**resolved)) or 0
    first, sessions = bundle_history(bundle, environ)
    return history.earliest_start(sessions, first, lookback)


def run(algo_module_name, start, end, bundle="polygon-demo", capital_base=1_000_000.0,
        costs=None, cost_overrides=None, environ=None, data_frequency="minute",
        **params) -> pd.DataFrame:
    """Run ``algo_module_name`` on ``bundle`` from ``start`` to ``end``; returns zipline's perf
    DataFrame (one row per session). No benchmark (zero benchmark returns)."""
    from zipline import run_algorithm

    module = load_algorithm(algo_module_name)
    # validate now, before zipline loads anything
    overrides, resolved = resolve(module, params, costs)
    make_config(resolved["COSTS"] if "COSTS" in resolved else (costs or "published"),
                **(cost_overrides or {}))
    if cost_overrides:
        overrides["COST_OVERRIDES"] = dict(cost_overrides)

    environ = dict(os.environ if environ is None else environ)
    ensure_registered(bundle)
    first, sessions = bundle_history(bundle, environ)
    lookback = history.algorithm_lookback(vars(module), SimpleNamespace(**resolved))
    if lookback is not None:
        history.check_history(algorithm_name(module), lookback, start, first, sessions, bundle)
    common.ensure_pipeline_loaders()  # factors.loaders.install(): reference columns

    def initialize(context):
        context.gapline_overrides = {k: v for k, v in overrides.items() if k != "COST_OVERRIDES"}
        context.gapline_cost_overrides = overrides.get("COST_OVERRIDES") or {}
        module.initialize(context)

    return run_algorithm(
        start=pd.Timestamp(start),
        end=pd.Timestamp(end),
        initialize=initialize,
        handle_data=getattr(module, "handle_data", None),
        before_trading_start=getattr(module, "before_trading_start", None),
        analyze=None,
        capital_base=float(capital_base),
        data_frequency=data_frequency,
        bundle=bundle,
        environ=environ,
        default_extension=False,
        benchmark_returns=None,
    )

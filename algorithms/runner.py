"""Run a gapline algorithm from Python with parameter overrides.

::

    from algorithms.runner import run
    perf = run("sell_gap", "2024-10-01", "2024-10-31", costs="realistic", top_n=5)

is the Python twin of::

    zipline -x costs=realistic -x top_n=5 run -f algorithms/sell_gap.py -b polygon-demo \\
        --data-frequency minute --no-benchmark -s 2024-10-01 -e 2024-10-31

The module's UPPER_CASE constants are the defaults; keyword ``params`` override them
(case-insensitive; unknown names raise ``TypeError``); ``costs`` selects the cost preset and
``cost_overrides`` tweaks single cost parameters (see :mod:`algorithms.costs`). The module is
imported once and never modified, so runs do not leak parameters into each other.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import common
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


def algorithm_params(algo_module_name) -> dict:
    """The default parameters (UPPER_CASE constants) of an algorithm module."""
    return common.module_params(vars(load_algorithm(algo_module_name)))


def _ensure_bundle_registered(bundle):
    from zipline.data import bundles as zb

    if bundle not in zb.bundles:
        from bundles.register import register_all

        register_all()


def run(algo_module_name, start, end, bundle="polygon-demo", capital_base=1_000_000.0,
        costs="published", cost_overrides=None, environ=None, data_frequency="minute",
        **params) -> pd.DataFrame:
    """Run ``algo_module_name`` on ``bundle`` from ``start`` to ``end``; returns zipline's perf
    DataFrame (one row per session). No benchmark (zero benchmark returns)."""
    from zipline import run_algorithm

    module = load_algorithm(algo_module_name)
    defaults = common.module_params(vars(module))
    overrides = {k.upper(): v for k, v in params.items()}
    if "COSTS" in defaults:
        overrides["COSTS"] = costs
    # validate now, before zipline loads anything
    common.resolve_params(defaults, overrides, use_extension_args=False)
    make_config(costs, **(cost_overrides or {}))
    if cost_overrides:
        overrides["COST_OVERRIDES"] = dict(cost_overrides)

    environ = dict(os.environ if environ is None else environ)
    _ensure_bundle_registered(bundle)
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


def trades(perf: pd.DataFrame) -> pd.DataFrame:
    """All fills of a perf frame as one table: dt, session, symbol, sid, amount, price, side."""
    rows = []
    for session, txns in perf["transactions"].items():
        for t in txns:
            asset = t["sid"]
            rows.append({
                "session": pd.Timestamp(session).tz_localize(None).normalize()
                if pd.Timestamp(session).tzinfo else pd.Timestamp(session).normalize(),
                "dt": pd.Timestamp(t["dt"]),
                "symbol": getattr(asset, "symbol", str(asset)),
                "sid": int(getattr(asset, "sid", asset)),
                "amount": int(t["amount"]),
                "price": float(t["price"]),
            })
    out = pd.DataFrame(rows, columns=["session", "dt", "symbol", "sid", "amount", "price"])
    if out.empty:  # keep the dtypes so .dt and arithmetic work on no trades
        out = out.astype({"session": "datetime64[ns]", "dt": "datetime64[ns, UTC]",
                          "symbol": object, "sid": "int64", "amount": "int64",
                          "price": "float64"})
    out["side"] = np.where(out["amount"] > 0, "buy", "sell")
    return out.sort_values(["dt", "symbol"]).reset_index(drop=True)

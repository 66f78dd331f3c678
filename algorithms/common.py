"""Helpers shared by gapline's algorithms: order hygiene, tradability, and :func:`prepare`
(the start of every ``initialize``). Parameters live in :mod:`algorithms.params`, the
history check in :mod:`algorithms.history`.
"""
from __future__ import annotations

import logging

import numpy as np

from .history import bundle_name, check_context_history


log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- orders
def positions(context) -> dict:
    """``{asset: position}`` with ``amount`` and ``cost_basis`` -- without the price sync that
    ``context.portfolio`` performs on every access (cheap enough for per-minute checks).

    Falls back to ``context.portfolio.positions`` outside a zipline simulation.
    """
    tracker = getattr(context, "metrics_tracker", None)
    if tracker is not None:
        return {a: p for a, p in tracker.positions.items() if p.amount}
    return {a: p for a, p in context.portfolio.positions.items() if p.amount}


def tradable(data, assets) -> list:
    """The assets that can be ordered now: alive, with a known price (batched)."""
    assets = list(assets)
    if not assets:
        return []
    ok = data.can_trade(assets)
    prices = data.current(assets, "price")
    return [a for a in assets if bool(ok[a]) and np.isfinite(prices[a]) and prices[a] > 0]


def cancel_open_orders(context, assets=None, keep=()):
    """Cancel every open order (or those in ``assets``), except the orders in ``keep``'s
    assets."""
    from zipline.api import cancel_order, get_open_orders

    for asset, orders in list(get_open_orders().items()):
        if (assets is not None and asset not in assets) or asset in keep:
            continue
        for o in orders:
            cancel_order(o)


def overnight_assets(context):
    """The assets the strategy holds overnight by design (``context.overnight_assets``:
    microcap_short's SPY hedge; none when unset): no close-out closes their positions."""
    return getattr(context, "overnight_assets", ())


def close_positions(context, data, assets=None):
    """Cancel open orders, then market-order every position (or those in ``assets``) flat;
    the positions and orders of the :func:`overnight_assets` (a strategy's overnight leg)
    stay.

    Positions in assets that cannot trade now (halted, delisted, no price) are left and
    retried by the next call; zipline itself closes delisted names at their auto-close date.
    """
    from zipline.api import order

    keep = overnight_assets(context)
    cancel_open_orders(context, assets, keep)
    held = [a for a, p in context.portfolio.positions.items()
            if p.amount and (assets is None or a in assets) and a not in keep]
    ok = set(tradable(data, held))
    for asset in held:
        if asset in ok:
            order(asset, -context.portfolio.positions[asset].amount)
        else:
            log.warning("%s: cannot close %s now (no tradable price)", data.current_dt, asset)


def order_value_many(data, targets: dict) -> dict:
    """``order_value`` for each ``{asset: dollars}`` (negative: short); returns
    ``{asset: order id}`` of the orders placed (assets that cannot trade are skipped)."""
    from zipline.api import order_value

    placed = {}
    for asset in tradable(data, list(targets)):
        oid = order_value(asset, targets[asset])
        if oid is not None:
            placed[asset] = oid
    return placed


def prepare(context, params, pipeline, pipeline_name):
    """The start of every gapline ``initialize``: the history check of the Pipeline
    (:func:`check_context_history`), Pipeline loaders, the cost preset in ``params.COSTS``,
    end-of-day cancel of open orders, flat by the close (every position goes to the closing
    auction at the MOC cutoff: :mod:`algorithms.execution.close_out`), the labels of the run
    in the perf frame, and the strategy's Pipeline."""
    from zipline import api as algo

    from .costs import apply_costs
    from .execution.close_out import schedule_flat_by_close

    check_context_history(context, pipeline, pipeline_name)
    ensure_pipeline_loaders(context)
    apply_costs(context, params.COSTS, **getattr(context, "gapline_cost_overrides", {}))
    algo.set_cancel_policy(algo.EODCancel())
    schedule_flat_by_close(context)
    context.gapline_labels = run_labels(context, params.COSTS)
    algo.schedule_function(record_run_labels, algo.date_rules.every_day(),
                           algo.time_rules.market_open())
    algo.attach_pipeline(pipeline, pipeline_name)


#: bundles whose data are generated, not market data: results on them say so
SYNTHETIC_BUNDLES = frozenset({"polygon-demo"})


def run_labels(context, costs) -> dict:
    """What the run is: its bundle, whether the bundle is synthetic, its cost preset."""
    bundle = bundle_name(context)
    return {"bundle": bundle or "unknown", "costs": str(costs),
            "data": "synthetic data" if bundle in SYNTHETIC_BUNDLES else "market data"}


def record_run_labels(context, data):
    """Put the run's labels in the perf frame (``bundle``, ``data``, ``costs`` columns)."""
    from zipline.api import record

    record(**context.gapline_labels)


def ensure_pipeline_loaders(context=None):
    """Make Pipeline find gapline's reference columns (``factors.reference.PolygonReference``).

    Installs ``factors.loaders.install()`` (idempotent; it patches how new algorithms build
    their pipeline engine). Under ``zipline run`` the algorithm object -- and its engine -- exist
    before the algorithm file runs, so when ``context`` is given and its engine was built
    without the patch (an extension that does not call ``install()``), its loader lookup is
    wrapped here with the same fallback: reference columns come from the ingestion folder of
    the algorithm's own asset database.
    """
    from factors import loaders

    loaders.install()
    engine = getattr(context, "engine", None) if context is not None else None
    get_loader = getattr(engine, "_get_loader", None)
    if get_loader is None or getattr(get_loader, "__wrapped__", None) is not None:
        return
    engine._get_loader = loaders.wrap_get_loader(get_loader, context.asset_finder)

"""Helpers shared by gapline's algorithms: parameters, order hygiene, tradability.

Parameters
----------
Each algorithm keeps its parameters as UPPER_CASE module constants. :func:`load_params`
returns them as ``context.params`` with, in increasing priority,

1. ``zipline -x name=value`` extension arguments (lower-case names, e.g.
   ``zipline -x costs=realistic -x max_positions=3 run -f algorithms/microcap_short.py ...``;
   values are converted to the constant's type);
2. the overrides :func:`algorithms.runner.run` passes (``context.gapline_overrides``).
"""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

_PARAM_TYPES = (bool, int, float, str, tuple, type(None))


def module_params(namespace) -> dict:
    """The UPPER_CASE constants of an algorithm module's namespace."""
    return {k: v for k, v in namespace.items()
            if k.isupper() and not k.startswith("_") and isinstance(v, _PARAM_TYPES)}


def _coerce(value, like):
    if not isinstance(value, str) or isinstance(like, str):
        return value
    text = value.strip()
    if like is None:
        if text.lower() in ("none", ""):
            return None
        try:
            return float(text)
        except ValueError:
            return text
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(float(text))
    if isinstance(like, float):
        return float(text)
    if isinstance(like, tuple):
        return tuple(t.strip() for t in text.split(",") if t.strip())
    return value


def _extension_overrides(defaults) -> dict:
    try:
        import zipline

        ns = getattr(zipline, "extension_args", None)
    except Exception:  # pragma: no cover
        ns = None
    if ns is None:
        return {}
    out = {}
    for key in defaults:
        value = getattr(ns, key.lower(), None)
        if isinstance(value, str):  # nested namespaces (e.g. ``polygon.root``) are not ours
            out[key] = value
    return out


def resolve_params(defaults: dict, overrides: dict | None = None, use_extension_args=True) -> dict:
    """``defaults`` updated by ``-x`` extension args then ``overrides`` (names case-insensitive);
    unknown override names raise ``TypeError``."""
    params = dict(defaults)
    sources = [_extension_overrides(defaults)] if use_extension_args else []
    sources.append(overrides or {})
    for source in sources:
        for key, value in source.items():
            name = key.upper()
            if name not in defaults:
                raise TypeError(f"unknown parameter {key!r}; valid: "
                                f"{sorted(k.lower() for k in defaults)}")
            params[name] = _coerce(value, defaults[name])
    return params


def load_params(context, namespace) -> SimpleNamespace:
    """Resolve the algorithm's parameters (see the module docstring) into ``context.params``."""
    overrides = getattr(context, "gapline_overrides", None)
    params = resolve_params(module_params(namespace), overrides)
    context.params = SimpleNamespace(**params)
    return context.params


# ----------------------------------------------------------------------------- time
def session_of(dt) -> pd.Timestamp:
    """The ET calendar date of a UTC timestamp (the session of an intraday minute)."""
    return pd.Timestamp(dt).tz_convert("America/New_York").normalize().tz_localize(None)


def et_clock(dt) -> str:
    """``HH:MM`` ET of a UTC timestamp."""
    return pd.Timestamp(dt).tz_convert("America/New_York").strftime("%H:%M")


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


def cancel_open_orders(context, assets=None):
    """Cancel every open order (or those in ``assets``)."""
    from zipline.api import cancel_order, get_open_orders

    for asset, orders in list(get_open_orders().items()):
        if assets is not None and asset not in assets:
            continue
        for o in orders:
            cancel_order(o)


def close_positions(context, data, assets=None):
    """Cancel open orders, then market-order every position (or those in ``assets``) flat.

    Positions in assets that cannot trade now (halted, delisted, no price) are left and
    retried by the next call; zipline itself closes delisted names at their auto-close date.
    """
    from zipline.api import order

    cancel_open_orders(context, assets)
    held = [a for a, p in context.portfolio.positions.items()
            if p.amount and (assets is None or a in assets)]
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
    """The start of every gapline ``initialize``: Pipeline loaders, the cost preset in
    ``params.COSTS``, end-of-day cancel of open orders, and the strategy's Pipeline."""
    from zipline import api as algo

    from .costs import apply_costs

    ensure_pipeline_loaders(context)
    apply_costs(context, params.COSTS, **getattr(context, "gapline_cost_overrides", {}))
    algo.set_cancel_policy(algo.EODCancel())
    algo.attach_pipeline(pipeline, pipeline_name)


def ensure_pipeline_loaders(context=None):
    """Make Pipeline find gapline's reference columns (``factors.reference.PolygonReference``).

    Installs ``factors.loaders.install()`` (idempotent; it patches how new algorithms build
    their pipeline engine). Under ``zipline run`` the algorithm object -- and its engine -- exist
    before the algorithm file runs, so when ``context`` is given and its engine was built
    without the patch (an extension that does not call ``install()``), its loader lookup is
    wrapped here with the same fallback: reference columns come from the ingestion folder of
    the algorithm's own asset database.
    """
    try:
        from factors import loaders
        from factors.reference import is_reference_column
    except ImportError:  # pragma: no cover - factors not present
        log.debug("factors.loaders not available; only EquityPricing columns can be loaded")
        return
    loaders.install()
    engine = getattr(context, "engine", None) if context is not None else None
    get_loader = getattr(engine, "_get_loader", None)
    if get_loader is None or getattr(get_loader, "_gapline_wrapped", False) \
            or getattr(get_loader, "__wrapped__", None) is not None:
        return
    asset_finder = context.asset_finder

    def get_loader_with_reference(column):
        if is_reference_column(column):
            try:
                return get_loader(column)
            except (KeyError, ValueError):
                return loaders.reference_loader(loaders.ingestion_dir_of(asset_finder))
        return get_loader(column)

    get_loader_with_reference._gapline_wrapped = True
    engine._get_loader = get_loader_with_reference

"""The fills and orders of a zipline perf frame as flat tables: the one table of fills every
report, test and benchmark reads (``transactions_frame``).

Zipline leaves ``commission`` empty on fills and books it on the order, so each order's final
commission is spread over its fills in proportion to their shares.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bundles.market import ET

TXN_COLUMNS = ["dt", "session", "symbol", "sid", "amount", "price", "order_id", "commission"]


# ----------------------------------------------------------------------------- assets
def asset_symbol(asset) -> str:
    """Symbol of a zipline Equity, an ``(sid, symbol)`` reference or a plain string."""
    sym = getattr(asset, "symbol", None)
    if sym is not None:
        return str(sym)
    if isinstance(asset, tuple) and len(asset) == 2:
        return str(asset[1])
    return str(asset)


def asset_sid(asset):
    sid = getattr(asset, "sid", None)
    if sid is not None:
        return int(sid)
    if isinstance(asset, tuple) and len(asset) == 2:
        return int(asset[0])
    if isinstance(asset, (int, np.integer)):
        return int(asset)
    return -1


def session_of_utc(ts: pd.Series) -> pd.Series:
    """ET calendar date (tz-naive midnight) of UTC timestamps."""
    t = pd.to_datetime(ts, utc=True)
    return t.dt.tz_convert(ET).dt.tz_localize(None).dt.normalize()


def clock_of(ts: pd.Series) -> pd.Series:
    t = pd.to_datetime(ts, utc=True)
    return t.dt.tz_convert(ET).dt.strftime("%H:%M").where(t.notna())


# ----------------------------------------------------------------------------- flatten
def orders_frame(perf: pd.DataFrame) -> pd.DataFrame:
    """Last state of every order in ``perf['orders']``: id, symbol, sid, created, dt, amount,
    filled, commission, status (empty frame when the column is absent)."""
    cols = ["id", "symbol", "sid", "created", "dt", "amount", "filled", "commission", "status"]
    if "orders" not in perf:
        return pd.DataFrame(columns=cols)
    last = {}
    for orders in perf["orders"]:
        for o in orders or ():
            last[o.get("id")] = o  # later sessions overwrite: the final state wins
    rows = [{
        "id": oid,
        "symbol": asset_symbol(o.get("sid")),
        "sid": asset_sid(o.get("sid")),
        "created": pd.Timestamp(o["created"]) if o.get("created") is not None else pd.NaT,
        "dt": pd.Timestamp(o["dt"]) if o.get("dt") is not None else pd.NaT,
        "amount": o.get("amount"),
        "filled": o.get("filled"),
        "commission": float(o.get("commission") or 0.0),
        "status": str(getattr(o.get("status"), "name", o.get("status"))),
    } for oid, o in last.items() if oid is not None]
    out = pd.DataFrame(rows, columns=cols)
    for c in ("created", "dt"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out


def transactions_frame(perf: pd.DataFrame, orders: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every fill of ``perf['transactions']`` as one frame (columns :data:`TXN_COLUMNS`),
    sorted by time. ``commission`` is the fill's own when zipline set one, else the order's
    final commission pro rata to the fill's shares (0 when unknown)."""
    rows = []
    if "transactions" in perf:
        for txns in perf["transactions"]:
            for t in txns or ():
                rows.append({
                    "dt": pd.Timestamp(t["dt"]),
                    "symbol": asset_symbol(t["sid"]),
                    "sid": asset_sid(t["sid"]),
                    "amount": int(t["amount"]),
                    "price": float(t["price"]),
                    "order_id": t.get("order_id"),
                    "commission": t.get("commission"),
                })
    out = pd.DataFrame(rows, columns=[c for c in TXN_COLUMNS if c != "session"])
    out["dt"] = pd.to_datetime(out["dt"], utc=True)
    out.insert(1, "session", session_of_utc(out["dt"]))
    out["commission"] = pd.to_numeric(out["commission"], errors="coerce")
    if orders is None:
        orders = orders_frame(perf)
    missing = out["commission"].isna()
    if missing.any() and len(orders):
        per_order = orders.set_index("id")["commission"]
        shares = out.loc[missing].groupby("order_id")["amount"].transform(lambda a: a.abs().sum())
        total = out.loc[missing, "order_id"].map(per_order)
        out.loc[missing, "commission"] = (total * out.loc[missing, "amount"].abs() / shares)
    out["commission"] = out["commission"].fillna(0.0).astype(float)
    out = out.sort_values(["dt", "symbol"], kind="stable").reset_index(drop=True)
    return out[TXN_COLUMNS]


#: the labels gapline's algorithms record in every perf frame (algorithms.common.run_labels)
LABEL_COLUMNS = ("bundle", "data", "costs")


def run_labels(perf: pd.DataFrame) -> dict:
    """``{"bundle", "data", "costs"}`` of a gapline run ("unknown" for frames that do not
    carry them, e.g. another tool's perf frame); ``data`` says "synthetic data" on
    ``polygon-demo``."""
    out = {}
    for column in LABEL_COLUMNS:
        values = perf[column].dropna() if column in perf else ()
        out[column] = str(values.iloc[-1]) if len(values) else "unknown"
    return out


def describe_run(perf: pd.DataFrame) -> str:
    """``"synthetic data (polygon-demo), realistic costs"``: what a result is, in words."""
    labels = run_labels(perf)
    if labels["data"] == "unknown":
        return f"bundle and data unknown, {labels['costs']} costs"
    return f"{labels['data']} ({labels['bundle']}), {labels['costs']} costs"

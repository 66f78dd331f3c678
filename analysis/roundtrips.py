"""Round trips of intraday strategies, matched FIFO from the perf frame's fills.

Intraday strategies are flat at the close, so the end-of-day positions pyfolio reads show
only cash. The trades are in the perf frame's ``transactions`` column (one dict per fill:
``dt``, ``sid``, ``amount``, ``price``, ``order_id``) and its ``orders`` column (one dict per
order and session it was touched: ``id``, ``created``, ``commission``, ...).

Three steps, plain functions around one frame:

1. :func:`transactions_frame` / :func:`orders_frame` flatten those columns. Zipline leaves
   ``commission`` empty on fills and books it on the order, so each order's final commission
   is spread over its fills in proportion to their shares.
2. :func:`match_fifo` matches closing fills against the open lots of the same symbol, first
   in, first out. Scaling in adds lots, scaling out closes the oldest lots first, a partial
   fill is just a smaller fill, and a fill that crosses zero (long 100, sell 150) closes the
   position and opens the opposite one with the rest. Output: one row per matched piece
   (``trip`` numbers the position episodes: flat -> position -> flat).
3. :func:`round_trips` sums the pieces per episode: entry/exit time (first entry fill, last
   exit fill), side, shares opened, share-weighted entry/exit prices, PnL (from fill prices,
   so slippage is in it), commission and net PnL, return on the entry notional, hold minutes
   (share-weighted mean over the FIFO pieces), the ET entry clock and weekday, and an exit
   reason (:func:`classify_exits`).

Breakdowns: :func:`pnl_by` (entry minute, weekday, gap class, exit reason, ...),
:func:`trip_summary`, :func:`plot_round_trips`. Gap sizes come from a frame keyed by
(date, symbol) (:func:`attach_gaps`), from the perf frame when the algorithm recorded them
(:func:`gaps_from_perf`), or from the bundle (:func:`analysis.gapstats.daily_gaps`).
"""
from __future__ import annotations

import re
from collections import deque
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from bundles.market import ET

from .fills import (asset_symbol, clock_of, orders_frame, session_of_utc,
                    transactions_frame)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

PIECE_COLUMNS = ["symbol", "trip", "side", "shares", "entry_dt", "entry_price", "exit_dt",
                 "exit_price", "pnl", "commission", "entry_order_id", "exit_order_id"]
TRIP_COLUMNS = ["symbol", "sid", "trip", "session", "side", "shares", "entry_time", "exit_time",
                "entry_price", "exit_price", "pnl", "commission", "net_pnl", "return",
                "hold_minutes", "entry_fills", "exit_fills", "open_shares", "closed",
                "entry_clock", "minutes_after_open", "weekday", "entry_order_id",
                "exit_order_id", "exit_clock",
                "exit_reason"]
_CLOCK_RE = re.compile(r"^\d{1,2}:\d{2}$")


# ----------------------------------------------------------------------------- FIFO matcher
def match_fifo(txns: pd.DataFrame) -> pd.DataFrame:
    """Match fills FIFO per symbol; one row per matched piece (:data:`PIECE_COLUMNS`).

    ``txns`` needs ``symbol``, ``dt``, ``amount`` (signed shares) and ``price``; ``order_id``
    and ``commission`` (per fill, in dollars) are optional. Fills are processed in time order
    (stable for equal times). A piece whose entry lot is still open at the end has NaN
    ``exit_*`` fields and NaN ``pnl``. ``commission`` of a piece is the entry fill's
    commission for its shares plus the exit fill's for its shares. ``trip`` counts position
    episodes per symbol from 0.
    """
    t = txns.copy()
    if "order_id" not in t:
        t["order_id"] = None
    if "commission" not in t:
        t["commission"] = 0.0
    t["commission"] = pd.to_numeric(t["commission"], errors="coerce").fillna(0.0)
    t = t[t["amount"] != 0].sort_values("dt", kind="stable")
    rows = []
    for symbol, g in t.groupby("symbol", sort=True):
        lots: deque = deque()  # [entry_dt, signed remaining, price, order_id, fee/share, trip]
        trip = -1
        for dt, amount, price, order_id, fee in zip(g["dt"], g["amount"].astype(np.int64),
                                                     g["price"].astype(float), g["order_id"],
                                                     g["commission"].astype(float)):
            qty = int(amount)
            fee_per_share = fee / abs(qty)
            while qty and lots and np.sign(lots[0][1]) != np.sign(qty):
                lot = lots[0]
                n = min(abs(lot[1]), abs(qty))
                long = lot[1] > 0
                pnl = n * (price - lot[2]) * (1.0 if long else -1.0)
                rows.append((symbol, lot[5], "long" if long else "short", n, lot[0], lot[2],
                             dt, price, pnl, n * (lot[4] + fee_per_share), lot[3], order_id))
                lot[1] -= int(np.sign(lot[1])) * n
                qty -= int(np.sign(qty)) * n
                if lot[1] == 0:
                    lots.popleft()
            if qty:
                if not lots:
                    trip += 1
                lots.append([dt, qty, price, order_id, fee_per_share, trip])
        for lot in lots:
            n = abs(lot[1])
            rows.append((symbol, lot[5], "long" if lot[1] > 0 else "short", n, lot[0], lot[2],
                         pd.NaT, np.nan, np.nan, n * lot[4], lot[3], None))
    out = pd.DataFrame(rows, columns=PIECE_COLUMNS)
    out["shares"] = out["shares"].astype(np.int64)
    out["trip"] = out["trip"].astype(np.int64)
    for c in ("entry_price", "exit_price", "pnl", "commission"):
        out[c] = out[c].astype(float)
    if len(t):
        tz = getattr(t["dt"].dtype, "tz", None)
        for c in ("entry_dt", "exit_dt"):
            out[c] = pd.to_datetime(out[c], utc=tz is not None)
            if tz is not None:
                out[c] = out[c].dt.tz_convert(tz)
    return out.sort_values(["symbol", "trip", "entry_dt", "exit_dt"], kind="stable",
                           na_position="last").reset_index(drop=True)


# ----------------------------------------------------------------------------- round trips
def round_trips(perf_or_txns: pd.DataFrame, orders: pd.DataFrame | None = None,
                exit_reasons: Mapping | Callable | None = None, scheduled=None,
                gaps=None, market_open="09:30") -> pd.DataFrame:
    """One row per position episode (:data:`TRIP_COLUMNS`), sorted by entry time.

    ``perf_or_txns`` is a zipline perf frame (fills and orders are read from it) or a
    transactions frame like :func:`transactions_frame` returns (then ``orders`` optionally
    supplies order creation times). ``exit_reasons``/``scheduled``: see :func:`classify_exits`.
    ``gaps``: see :func:`attach_gaps`; when omitted and ``perf`` recorded gaps
    (:func:`gaps_from_perf`), those are used.

    ``session`` is the ET date of the first entry fill, ``entry_clock`` its ET ``HH:MM``
    (zipline labels a minute bar by its END: a 09:41 fill is the 09:40-09:41 bar),
    ``minutes_after_open`` the minutes from ``market_open`` to the entry, ``hold_minutes`` the
    share-weighted mean holding time of the FIFO pieces, ``return`` the PnL over the entry
    notional of the closed shares. An episode still open at the end has ``closed=False``,
    ``open_shares`` > 0, and realised-only PnL.
    """
    is_perf = "transactions" in perf_or_txns and "returns" in perf_or_txns
    if is_perf:
        perf = perf_or_txns
        orders = orders_frame(perf) if orders is None else orders
        txns = transactions_frame(perf, orders)
        if gaps is None:
            gaps = gaps_from_perf(perf)
        if exit_reasons is None and "exit_reasons" in perf:
            exit_reasons = _recorded_exit_reasons(perf)
    else:
        txns = perf_or_txns
    pieces = match_fifo(txns)
    if pieces.empty:
        return pd.DataFrame({c: pd.Series(dtype=_TRIP_DTYPES.get(c, object))
                             for c in TRIP_COLUMNS})
    sid_of = (txns.drop_duplicates("symbol").set_index("symbol")["sid"]
              if "sid" in txns else pd.Series(dtype=np.int64))
    p = pieces.assign(
        closed_shares=np.where(pieces["exit_dt"].notna(), pieces["shares"], 0),
        entry_value=pieces["shares"] * pieces["entry_price"],
        closed_entry_value=np.where(pieces["exit_dt"].notna(),
                                    pieces["shares"] * pieces["entry_price"], 0.0),
        exit_value=np.where(pieces["exit_dt"].notna(), pieces["shares"] * pieces["exit_price"],
                            0.0),
        held=(pieces["exit_dt"] - pieces["entry_dt"]).dt.total_seconds() / 60.0
        * pieces["shares"],
        entry_key=list(zip(pieces["entry_dt"], pieces["entry_order_id"])),
        exit_key=[(d, o) if pd.notna(d) else None
                  for d, o in zip(pieces["exit_dt"], pieces["exit_order_id"])],
    )
    g = p.groupby(["symbol", "trip"], sort=False)
    trips = pd.DataFrame({
        "side": g["side"].first(),
        "shares": g["shares"].sum(),
        "entry_time": g["entry_dt"].min(),
        "exit_time": g["exit_dt"].max(),
        "entry_value": g["entry_value"].sum(),
        "closed_shares": g["closed_shares"].sum(),
        "closed_entry_value": g["closed_entry_value"].sum(),
        "exit_value": g["exit_value"].sum(),
        "pnl": g["pnl"].sum(min_count=1),
        "commission": g["commission"].sum(),
        "held": g["held"].sum(min_count=1),
        "entry_fills": g["entry_key"].nunique(),
        "exit_fills": g["exit_key"].agg(lambda s: len(set(x for x in s if x is not None))),
    }).reset_index()
    # the order of the last exit fill (None: a fill without order, e.g. zipline's auto close)
    last_exit = (p.dropna(subset=["exit_dt"]).sort_values("exit_dt", kind="stable")
                 .drop_duplicates(["symbol", "trip"], keep="last"))
    last_exit = dict(zip(zip(last_exit["symbol"], last_exit["trip"]), last_exit["exit_order_id"]))
    trips["exit_order_id"] = [last_exit.get(k) for k in zip(trips["symbol"], trips["trip"])]
    # the order of the first entry fill
    first_entry = (p.sort_values("entry_dt", kind="stable")
                   .drop_duplicates(["symbol", "trip"], keep="first"))
    first_entry = dict(zip(zip(first_entry["symbol"], first_entry["trip"]),
                           first_entry["entry_order_id"]))
    trips["entry_order_id"] = [first_entry.get(k) for k in zip(trips["symbol"], trips["trip"])]
    closed_sh = trips["closed_shares"].replace(0, np.nan)
    trips["sid"] = trips["symbol"].map(sid_of).fillna(-1).astype(np.int64)
    trips["session"] = session_of_utc(trips["entry_time"])
    trips["entry_price"] = trips["entry_value"] / trips["shares"]
    trips["exit_price"] = trips["exit_value"] / closed_sh
    trips["pnl"] = trips["pnl"].fillna(0.0)
    trips["net_pnl"] = trips["pnl"] - trips["commission"]
    trips["return"] = trips["pnl"] / trips["closed_entry_value"].replace(0, np.nan)
    trips["hold_minutes"] = trips["held"] / closed_sh
    trips["open_shares"] = (trips["shares"] - trips["closed_shares"]).astype(np.int64)
    trips["closed"] = trips["open_shares"] == 0
    trips.loc[~trips["closed"] & (trips["closed_shares"] == 0), "exit_time"] = pd.NaT
    entry_et = pd.to_datetime(trips["entry_time"], utc=True).dt.tz_convert(ET)
    trips["entry_clock"] = entry_et.dt.strftime("%H:%M")
    h, m = (int(x) for x in market_open.split(":"))
    trips["minutes_after_open"] = (entry_et.dt.hour * 60 + entry_et.dt.minute - (h * 60 + m))
    trips["weekday"] = pd.Categorical(entry_et.dt.day_name(), categories=WEEKDAYS[:5],
                                      ordered=True)
    created = None
    if orders is not None and len(orders):
        created = orders.set_index("id")["created"]
    exit_created = trips["exit_order_id"].map(created) if created is not None else None
    if exit_created is None or exit_created.isna().all():
        exit_created = trips["exit_time"]
    else:
        exit_created = exit_created.fillna(trips["exit_time"])
    trips["exit_clock"] = clock_of(exit_created)
    trips["exit_reason"] = None
    trips = trips.sort_values(["entry_time", "symbol"], kind="stable").reset_index(drop=True)
    trips["trip"] = trips["trip"].astype(np.int64)
    trips = trips[TRIP_COLUMNS]
    trips["exit_reason"] = classify_exits(trips, exit_reasons, scheduled)
    if gaps is not None:
        trips = attach_gaps(trips, gaps)
    return trips


_TRIP_DTYPES = {"shares": np.int64, "trip": np.int64, "sid": np.int64, "pnl": float,
                "commission": float, "net_pnl": float, "return": float, "hold_minutes": float,
                "entry_price": float, "exit_price": float, "open_shares": np.int64,
                "closed": bool, "minutes_after_open": np.int64,
                "entry_time": "datetime64[ns, UTC]", "exit_time": "datetime64[ns, UTC]",
                "session": "datetime64[ns]", "entry_fills": np.int64, "exit_fills": np.int64}


def _recorded_exit_reasons(perf) -> dict:
    """``record(exit_reasons={order_id: reason})`` values merged over the run."""
    out = {}
    for value in perf["exit_reasons"]:
        if isinstance(value, Mapping):
            out.update(value)
    return out


def scheduled_exit_clocks(trips: pd.DataFrame, min_sessions=2, min_share=0.2) -> list:
    """ET clocks at which exit orders look scheduled: used on at least ``min_sessions``
    sessions and by at least ``min_share`` of the closed round trips (a heuristic)."""
    closed = trips[trips["closed"] & trips["exit_clock"].notna()]
    if closed.empty:
        return []
    sessions = closed.groupby("exit_clock")["session"].nunique()
    share = closed["exit_clock"].value_counts(normalize=True)
    keep = sessions[(sessions >= min_sessions)].index
    return sorted(c for c in keep if share.get(c, 0) >= min_share)


def classify_exits(trips: pd.DataFrame, exit_reasons: Mapping | Callable | None = None,
                   scheduled=None) -> pd.Series:
    """Exit reason of each round trip, first rule that applies:

    1. ``exit_reasons`` callable: ``exit_reasons(row)`` (a row of :func:`round_trips`); a
       ``None`` result falls through;
    2. ``exit_reasons`` mapping: by exit order id (a trip without an exit fill yet: by its
       first entry order id, e.g. a hedge leg still held), else by the ET ``HH:MM`` at which
       the exit order was created (``{"15:55": "scheduled close"}``); algorithms can
       ``record(exit_reasons={order_id: "stop"})`` and the perf frame's values are used;
    3. ``open`` when the position is still open at the end of the run;
    4. ``auto close`` when the exit fill has no order (zipline closing a delisted asset);
    5. ``scheduled close`` when the exit order was created at a ``scheduled`` clock
       (``["15:55"]``; default: :func:`scheduled_exit_clocks`);
    6. otherwise an intraday exit: ``stop`` when it lost money, ``target`` when it did not
       (a heuristic: a bar-level backtest does not say why an order was placed).
    """
    if trips.empty:
        return pd.Series([], dtype=object, index=trips.index)
    if scheduled is None:
        scheduled = scheduled_exit_clocks(trips)
    scheduled = {_norm_clock(c) for c in (scheduled or ())}
    by_id, by_clock = {}, {}
    if isinstance(exit_reasons, Mapping):
        for k, v in exit_reasons.items():
            if isinstance(k, str) and _CLOCK_RE.match(k):
                by_clock[_norm_clock(k)] = v
            else:
                by_id[k] = v
    out = []
    for row in trips.itertuples(index=False):
        reason = None
        if callable(exit_reasons):
            reason = exit_reasons(row)
        if reason is None and by_id and row.exit_order_id in by_id:
            reason = by_id[row.exit_order_id]
        if reason is None and by_id and _missing(row.exit_order_id) \
                and row.entry_order_id in by_id:
            reason = by_id[row.entry_order_id]
        if reason is None and by_clock and row.exit_clock in by_clock:
            reason = by_clock[row.exit_clock]
        if reason is None:
            if not row.closed:
                reason = "open"
            elif _missing(row.exit_order_id):
                reason = "auto close"
            elif row.exit_clock in scheduled:
                reason = "scheduled close"
            else:
                reason = "stop" if row.pnl < 0 else "target"
        out.append(reason)
    return pd.Series(out, index=trips.index, dtype=object)


def _missing(order_id) -> bool:
    return order_id is None or (isinstance(order_id, float) and np.isnan(order_id))


def _norm_clock(c) -> str:
    h, m = str(c).split(":")
    return f"{int(h):02d}:{int(m):02d}"


# ----------------------------------------------------------------------------- gaps
def normalize_gaps(gaps) -> pd.DataFrame:
    """Gaps as a frame with columns ``session`` (tz-naive date), ``symbol``, ``gap``
    (a fraction: open / prior close - 1).

    Accepts a Series with a (date, symbol) MultiIndex, a frame with such an index and a
    ``gap`` column (or a single column), or a frame with ``date``/``session`` and ``symbol``
    columns. Symbols may be zipline assets.
    """
    if isinstance(gaps, pd.Series):
        frame = gaps.rename("gap").reset_index()
    else:
        frame = gaps.copy()
        if "gap" not in frame:
            value_cols = [c for c in frame.columns if c not in ("date", "session", "symbol",
                                                                "asset", "sid")]
            if len(value_cols) == 1:
                frame = frame.rename(columns={value_cols[0]: "gap"})
        if not ({"symbol", "asset"} & set(frame.columns)):
            frame = frame.reset_index()
    cols = list(frame.columns)
    date_col = next((c for c in ("session", "date", "level_0") if c in cols), cols[0])
    sym_col = next((c for c in ("symbol", "asset", "level_1") if c in cols), cols[1])
    dates = pd.to_datetime(frame[date_col])
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(ET).dt.tz_localize(None)
    out = pd.DataFrame({"session": dates.dt.normalize(),
                        "symbol": frame[sym_col].map(asset_symbol),
                        "gap": pd.to_numeric(frame["gap"], errors="coerce")})
    return out.drop_duplicates(["session", "symbol"], keep="last").reset_index(drop=True)


def gaps_from_perf(perf: pd.DataFrame):
    """Gaps the algorithm recorded, or None: a perf column ``gaps`` (or ``gap``) whose values
    are ``{asset_or_symbol: gap}`` mappings (``record(gaps={...})``) or Series, keyed by the
    session of the row."""
    for col in ("gaps", "gap"):
        if col not in perf:
            continue
        rows = []
        for idx, value in perf[col].items():
            if isinstance(value, pd.Series):
                value = value.to_dict()
            if not isinstance(value, Mapping):
                continue
            session = pd.Timestamp(idx)
            if session.tzinfo is not None:
                session = session.tz_convert(ET).tz_localize(None)
            for asset, gap in value.items():
                rows.append((session.normalize(), asset_symbol(asset), gap))
        if rows:
            return pd.DataFrame(rows, columns=["session", "symbol", "gap"])
    return None


def attach_gaps(trips: pd.DataFrame, gaps) -> pd.DataFrame:
    """Add ``gap`` (fraction) and ``gap_class`` (:func:`factors.gap.gap_class` bins) to
    round trips, joined on (entry session, symbol)."""
    from factors.gap import gap_class

    g = normalize_gaps(gaps)
    out = trips.drop(columns=[c for c in ("gap", "gap_class") if c in trips])
    out = out.merge(g, on=["session", "symbol"], how="left")
    out["gap_class"] = gap_class(100.0 * out["gap"])
    return out


# ----------------------------------------------------------------------------- breakdowns
def trip_summary(trips: pd.DataFrame) -> pd.Series:
    """Round trips, wins, PnL and holding time in one Series."""
    closed = trips[trips["closed"]] if len(trips) else trips
    wins = closed["pnl"] > 0
    gross_win = closed.loc[wins, "pnl"].sum()
    gross_loss = -closed.loc[closed["pnl"] < 0, "pnl"].sum()
    return pd.Series({
        "round trips": len(trips),
        "closed": len(closed),
        "long": int((trips["side"] == "long").sum()),
        "short": int((trips["side"] == "short").sum()),
        "win rate": wins.mean() if len(closed) else np.nan,
        "total PnL": trips["pnl"].sum(),
        "commission": trips["commission"].sum(),
        "net PnL": trips["net_pnl"].sum(),
        "mean PnL": closed["pnl"].mean(),
        "median PnL": closed["pnl"].median(),
        "mean return": closed["return"].mean(),
        "profit factor": gross_win / gross_loss if gross_loss > 0 else np.nan,
        "largest win": closed["pnl"].max(),
        "largest loss": closed["pnl"].min(),
        "mean hold minutes": closed["hold_minutes"].mean(),
    })


def pnl_by(trips: pd.DataFrame, by) -> pd.DataFrame:
    """PnL of round trips grouped by ``by`` (a column name, e.g. ``entry_clock``,
    ``weekday``, ``gap_class``, ``exit_reason``, ``side``, or a list of them): trades, total,
    mean and median PnL, net PnL, win rate and mean return."""
    keys = [by] if isinstance(by, str) else list(by)
    g = trips.groupby(keys, observed=True, sort=True)
    out = pd.DataFrame({
        "trades": g.size(),
        "total_pnl": g["pnl"].sum(),
        "mean_pnl": g["pnl"].mean(),
        "median_pnl": g["pnl"].median(),
        "net_pnl": g["net_pnl"].sum(),
        "win_rate": g["pnl"].apply(lambda s: (s > 0).mean()),
        "mean_return": g["return"].mean(),
    })
    return out


def plot_round_trips(trips: pd.DataFrame, title: str | None = None):
    """One figure: PnL by entry minute, weekday, gap class (when known) and exit reason,
    holding-time histogram and cumulative PnL by exit time. Returns the figure."""
    import matplotlib.pyplot as plt

    panels = ["entry_clock", "weekday", "exit_reason", "hold", "cum"]
    if "gap_class" in trips and trips["gap_class"].notna().any():
        panels.insert(2, "gap_class")
    ncols = 2
    nrows = (len(panels) + 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(14, 4 * nrows), squeeze=False)
    axes = axes.ravel()
    labels = {"entry_clock": "PnL by entry minute (ET, bar end)", "weekday": "PnL by weekday",
              "gap_class": "PnL by gap class", "exit_reason": "PnL by exit reason"}
    for ax, panel in zip(axes, panels):
        if panel in labels:
            table = pnl_by(trips, panel) if len(trips) else pd.DataFrame({"total_pnl": []})
            s = table["total_pnl"]
            ax.bar([str(i) for i in s.index], s.to_numpy(),
                   color=["tab:green" if v >= 0 else "tab:red" for v in s.to_numpy()])
            ax.axhline(0, color="black", lw=0.8)
            ax.set_title(labels[panel])
            ax.set_ylabel("total PnL ($)")
            if len(s) > 8:
                ax.tick_params(axis="x", labelrotation=90)
        elif panel == "hold":
            h = trips["hold_minutes"].dropna()
            ax.hist(h, bins=min(30, max(5, len(h) // 2 or 1)))
            ax.set_title("Holding time (minutes, share-weighted FIFO)")
            ax.set_xlabel("minutes")
        elif panel == "cum":
            closed = trips[trips["closed"]].sort_values("exit_time")
            ax.plot(closed["exit_time"], closed["net_pnl"].cumsum(), label="net")
            ax.plot(closed["exit_time"], closed["pnl"].cumsum(), label="gross", alpha=0.6)
            ax.set_title("Cumulative PnL of round trips")
            ax.legend(loc="best")
            ax.tick_params(axis="x", labelrotation=30)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

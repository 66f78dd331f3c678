"""Gap statistics from a bundle's bars: gap-fill probability, continuation, intraday path.

Definitions (one row per asset and session ``D``, :func:`gap_events`):

``gap``
    ``open(D) / close(D-1) - 1`` where ``D-1`` is the previous **session** (no gap when the
    asset did not trade on ``D-1`` or ``D``). Binned into :data:`factors.gap.GAP_CLASSES`
    with the bins of "Gap % and Float" (``003_290001eae97eba9c.txt`` lines 13-15:
    ``pd.cut(gap_pct, bins=[-inf, -10, -5, -2, 2, 5, 10, 20, inf])``), closed on the right
    like ``pd.cut``: ``<=-10%`` is ``(-inf, -10]``, ``-2%..2%`` is ``(-2, 2]``, ``>20%`` is
    ``(20, inf]``, so a value on a bound goes to the class below it.
``direction``
    ``up`` (gap > 0), ``down`` (gap < 0) or ``flat``.
gap fill
    The article's ``gap_fill_analysis`` (``003_290001eae97eba9c.txt`` lines 119-146): for a
    gap on row ``idx`` and ``days`` in (1, 3, 5, 10, 20), ``future_data =
    df.loc[idx:idx+days]`` -- label slicing, both ends included -- so "filled within N days"
    looks at the **N + 1 sessions D .. D+N** (the gap day itself and the N sessions after
    it). A gap-up (``gap_pct > 0``) fills when ``future_data['low'].min() <= prev_close``;
    any other gap (down, or flat: the article's ``else``) when ``future_data['high'].max()
    >= prev_close``. ``days_to_fill`` is the first ``k`` with a fill on session ``D+k``
    (``0``: the gap day itself; NaN: no fill by ``D+20``), so ``filled_N = days_to_fill <=
    N``. An event whose window is not complete in the data -- ``D+N`` after the bundle's last
    session or the asset's last bar (the article's ``if idx + days < len(df)``) -- is
    **dropped** from that horizon (``filled_N`` NaN) whether or not it filled: counting the
    early fills of short windows but not their misses would inflate the fill rates. Windows
    count sessions of the bundle's calendar; a session without trades inside the window
    counts as a session without a fill (the article's frame has a row per traded day).
continuation
    ``close(D) / open(D) - 1``: positive after a gap-up means the gap continued, after a
    gap-down it means the gap reversed.
shares class
    :data:`factors.gap.SHARES_CLASSES` (micro < 10M, low < 25M, medium < 50M, large < 100M,
    institutional) on the shares OUTSTANDING known before the gap session ``D``: the latest
    count of the bundle's ``gapline/reference_history.parquet`` dated strictly before ``D``
    (:mod:`factors.reference_history`, the rule the Pipeline loader uses), ``unknown``
    without one. Shares outstanding, not the float (the article's "Float" classes are
    applied to shares outstanding: Polygon/Massive has no dated float).

Prices: the bundle's **unadjusted** daily bars (``load_raw_arrays``), then back-adjusted with
the bundle's own split and merger ratios (prices before the effective date times the
ratio), so a 4:1 split is no -75 % gap; cash dividends are left in by default (an ex-date
shows as the small down gap it really is; ``adjust_dividends=True`` removes them with
zipline's dividend ratios).

Intraday path (:func:`intraday_path`): for gap events only (``|gap| >= min_gap``), the
return ``close(minute m) / open(D) - 1`` at each minute ``m`` after the open (zipline's end
labels: minute 1 is the 09:30-09:31 bar; ``open(D)`` is the open of the session's first
traded minute bar, unadjusted like the minute closes), last price carried over minutes
without trades,
averaged over the events of each direction. Minute bars are read once per event session for
all of that session's event assets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bundles.ingestions import ensure_registered, ingestion_dir_of, side_dir

FILL_HORIZONS = (1, 3, 5, 10, 20)
DIRECTIONS = ("up", "down", "flat")
UNKNOWN = "unknown"


# ----------------------------------------------------------------------------- loading
def load_bundle(bundle="polygon", environ=None):
    """zipline ``BundleData`` of ``bundle`` (registering gapline's bundles when needed)."""
    from zipline.data import bundles as zb

    ensure_registered(bundle)
    return zb.load(bundle, environ=os.environ if environ is None else environ)


def ingestion_dir(bundle_data) -> Path:
    """The ingestion folder of a loaded bundle (holds gapline's side tables)."""
    return ingestion_dir_of(bundle_data.asset_finder)


def asset_table(bundle_data) -> pd.DataFrame:
    """One row per sid: :func:`_asset_frame`'s columns and ``last_shares_outstanding``: the
    latest dated count known by the end of the asset's life (for an overview of the
    universe; per-session decisions use :func:`reference_history`)."""
    from factors.reference_history import asof_join

    base = _asset_frame(bundle_data)
    after_life = pd.to_datetime(base["end_date"]).dt.tz_localize(None) + pd.Timedelta(days=1)
    base["last_shares_outstanding"] = asof_join(reference_history(bundle_data),
                                                "shares_outstanding", base.index, after_life)
    return base


def _asset_frame(bundle_data) -> pd.DataFrame:
    """One row per sid, ascending: symbol, exchange, start_date, end_date, type,
    primary_exchange, has_minute_bars (side-table columns NaN when the bundle has no
    ``assets.parquet``)."""
    finder = bundle_data.asset_finder
    assets = finder.retrieve_all(finder.sids)
    base = pd.DataFrame({
        "sid": [a.sid for a in assets],
        "symbol": [a.symbol for a in assets],
        "exchange": [a.exchange_full for a in assets],
        "start_date": [a.start_date for a in assets],
        "end_date": [a.end_date for a in assets],
    }).set_index("sid")
    side = side_dir(ingestion_dir(bundle_data)) / "assets.parquet"
    extra = ["type", "primary_exchange", "has_minute_bars"]
    if side.exists():
        table = pd.read_parquet(side).set_index("sid")
        for c in extra:
            base[c] = table[c].reindex(base.index) if c in table else np.nan
    else:
        for c in extra:
            base[c] = np.nan
    return base.sort_index()


def reference_history(bundle_data) -> pd.DataFrame | None:
    """The bundle's dated reference values (``gapline/reference_history.parquet``); None for
    an ingestion made before they existed."""
    from factors.reference_history import read_reference_history

    return read_reference_history(ingestion_dir(bundle_data))


def _sessions_window(reader, start, end, lookahead):
    sessions = pd.DatetimeIndex(reader.sessions)
    sessions = sessions[(sessions >= reader.first_trading_day)
                        & (sessions <= pd.Timestamp(reader.last_available_dt))]
    start = pd.Timestamp(start) if start is not None else sessions[0]
    end = pd.Timestamp(end) if end is not None else sessions[-1]
    lo = max(int(sessions.searchsorted(start)) - 1, 0)  # one session before: prior close
    hi = min(int(sessions.searchsorted(end, side="right")) - 1 + lookahead, len(sessions) - 1)
    return sessions, sessions[lo], sessions[hi], start, end


def _adjustment_multipliers(bundle_data, sessions, sids, adjust_dividends):
    """(sessions x sids) multipliers: product of the ratios of every adjustment effective
    after the session (prices before an effective date are multiplied by its ratio)."""
    mult = np.ones((len(sessions), len(sids)))
    reader = bundle_data.adjustment_reader
    if reader is None:
        return mult
    tables = reader.unpack_db_to_component_dfs()
    names = ["splits", "mergers"] + (["dividends"] if adjust_dividends else [])
    col_of = {sid: i for i, sid in enumerate(sids)}
    sess_ns = sessions.asi8
    for name in names:
        frame = tables.get(name)
        if frame is None or frame.empty:
            continue
        eff = pd.to_datetime(frame["effective_date"], unit="s").to_numpy("datetime64[ns]")
        for sid, date, ratio in zip(frame["sid"], eff.astype(np.int64), frame["ratio"]):
            j = col_of.get(int(sid))
            if j is None:
                continue
            mult[sess_ns < date, j] *= float(ratio)
    return mult


def load_daily(bundle="polygon", start=None, end=None, lookahead=max(FILL_HORIZONS),
               adjust_dividends=False, types=None, environ=None, bundle_data=None):
    """Daily bars of every asset as a long frame: session, sid, symbol, open, high, low,
    close, volume; split/merger-adjusted (see the module docstring).

    Rows run from the session before ``start`` (for the prior close) to ``lookahead``
    sessions after ``end`` (for gap fills), clipped to the bundle. Sessions without trades
    keep NaN prices. ``types`` (``("CS",)``) keeps assets of those Polygon types.
    """
    data = bundle_data if bundle_data is not None else load_bundle(bundle, environ)
    reader = data.equity_daily_bar_reader
    all_sessions, lo, hi, _, _ = _sessions_window(reader, start, end, lookahead)
    assets = _asset_frame(data)
    if types:
        assets = assets[assets["type"].isin(list(types))]
    assets = assets[(assets["end_date"] >= lo) & (assets["start_date"] <= hi)]
    sids = list(assets.index)
    sessions = all_sessions[(all_sessions >= lo) & (all_sessions <= hi)]
    cols = ["open", "high", "low", "close", "volume"]
    if not sids:
        return pd.DataFrame(columns=["session", "sid", "symbol"] + cols)
    arrays = reader.load_raw_arrays(cols, lo, hi, sids)
    mult = _adjustment_multipliers(data, sessions, sids, adjust_dividends)
    frame = pd.DataFrame({
        "session": np.repeat(sessions.to_numpy(), len(sids)),
        "sid": np.tile(np.asarray(sids, dtype=np.int64), len(sessions)),
    })
    for c, a in zip(cols, arrays):
        a = np.asarray(a, dtype=float)
        frame[c] = (a * mult if c != "volume" else a).ravel()
    frame["symbol"] = frame["sid"].map(assets["symbol"])
    return frame[["session", "sid", "symbol"] + cols]


# ----------------------------------------------------------------------------- events
def _panel(daily, col, sessions, sids):
    return (daily.pivot(index="session", columns="sid", values=col)
            .reindex(index=sessions, columns=sids).to_numpy(dtype=float))


def gap_events(daily: pd.DataFrame, start=None, end=None, assets: pd.DataFrame | None = None,
               horizons=FILL_HORIZONS, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (session, sid) in ``[start, end]`` with a gap (see the module docstring).

    ``daily``: long frame with session, sid, symbol, open, high, low, close (e.g.
    :func:`load_daily`). ``history`` (:func:`reference_history`) adds the shares outstanding
    known before each event's session and its ``shares_class``; without it, ``assets``
    (indexed by sid, with a ``shares_outstanding`` column: a hand-made table, one count per
    sid) does. Columns: session, sid, symbol, prior_close, open, high, low,
    close, gap, gap_pct, gap_class, direction, continuation, days_to_fill, filled_<N> per
    horizon, shares_outstanding, shares_class.
    """
    from factors.gap import GAP_CLASSES, gap_class

    sessions = pd.DatetimeIndex(sorted(pd.unique(daily["session"])))
    sids = np.array(sorted(pd.unique(daily["sid"])), dtype=np.int64)
    o, h, l, c = (_panel(daily, k, sessions, sids) for k in ("open", "high", "low", "close"))
    prior = np.full_like(c, np.nan)
    prior[1:] = c[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(prior > 0, o / prior - 1.0, np.nan)
    n_s = len(sessions)
    rows_idx = np.arange(n_s)[:, None]
    finite = np.isfinite(c)
    last_valid = np.where(finite.any(axis=0), n_s - 1 - np.argmax(finite[::-1], axis=0), -1)
    max_h = max(horizons)
    days_to_fill = np.full(c.shape, np.nan)
    up = gap > 0  # the article's ``if gap_row['gap_pct'] > 0`` (else: the gap-down test)
    for k in range(min(max_h + 1, n_s)):  # session D+k, k = 0 (the gap day) .. max_h
        lk = np.full_like(l, np.nan)
        hk = np.full_like(h, np.nan)
        lk[: n_s - k] = l[k:]
        hk[: n_s - k] = h[k:]
        with np.errstate(invalid="ignore"):
            hit = np.where(up, lk <= prior, hk >= prior)
        new = hit & np.isnan(days_to_fill)
        days_to_fill[new] = k
    # the last session D+k present for the asset (its last bar, the data's end): a window
    # D..D+N is complete when D+N <= that session
    last_row = np.minimum(last_valid[None, :], n_s - 1) - rows_idx
    out = {}
    mask = np.isfinite(gap)
    if start is not None:
        mask &= (sessions >= pd.Timestamp(start))[:, None]
    if end is not None:
        mask &= (sessions <= pd.Timestamp(end))[:, None]
    ii, jj = np.nonzero(mask)
    out["session"] = sessions[ii]
    out["sid"] = sids[jj]
    sym = daily.drop_duplicates("sid").set_index("sid")["symbol"]
    out["symbol"] = sym.reindex(sids[jj]).to_numpy()
    out["prior_close"] = prior[ii, jj]
    out["open"], out["high"], out["low"], out["close"] = o[ii, jj], h[ii, jj], l[ii, jj], c[ii, jj]
    out["gap"] = gap[ii, jj]
    ev = pd.DataFrame(out)
    ev["gap_pct"] = 100.0 * ev["gap"]
    ev["gap_class"] = gap_class(ev["gap_pct"])
    if len(ev) == 0:
        ev["gap_class"] = pd.Categorical([], categories=GAP_CLASSES, ordered=True)
    ev["direction"] = pd.Categorical(
        np.select([ev["gap"] > 0, ev["gap"] < 0], ["up", "down"], "flat"),
        categories=DIRECTIONS)
    with np.errstate(invalid="ignore", divide="ignore"):
        ev["continuation"] = ev["close"] / ev["open"] - 1.0
    dtf = days_to_fill[ii, jj]
    reach = last_row[ii, jj]
    ev["days_to_fill"] = dtf
    for n in horizons:
        filled = (dtf <= n).astype(float)
        filled[reach < n] = np.nan  # window D..D+N not complete: dropped, filled or not
        ev[f"filled_{n}"] = filled
    if history is not None:
        from factors.reference_history import asof_join

        ev["shares_outstanding"] = asof_join(history, "shares_outstanding", ev["sid"],
                                             ev["session"])
    elif assets is not None and "shares_outstanding" in assets:
        shares = pd.to_numeric(assets["shares_outstanding"], errors="coerce")
        ev["shares_outstanding"] = shares.reindex(ev["sid"]).to_numpy()
    else:
        ev["shares_outstanding"] = np.nan
    ev["shares_class"] = shares_class(ev["shares_outstanding"])
    return ev.sort_values(["session", "sid"], kind="stable").reset_index(drop=True)


def shares_class(shares: pd.Series) -> pd.Series:
    """:func:`factors.gap.shares_outstanding_class` with ``unknown`` for missing counts."""
    from factors.gap import SHARES_CLASSES, shares_outstanding_class

    labels = shares_outstanding_class(pd.Series(shares, dtype=float).reset_index(drop=True))
    cats = list(SHARES_CLASSES) + [UNKNOWN]
    out = pd.Categorical(labels.astype(object).where(labels.notna(), UNKNOWN),
                         categories=cats, ordered=True)
    return pd.Series(out, index=getattr(shares, "index", None))


def daily_gaps(bundle="polygon", start=None, end=None, environ=None, bundle_data=None):
    """Gaps keyed by (session, symbol): the ``gaps`` argument of
    :func:`analysis.roundtrips.round_trips`."""
    daily = load_daily(bundle, start, end, lookahead=0, environ=environ,
                       bundle_data=bundle_data)
    ev = gap_events(daily, start, end, horizons=(1,))
    return ev.set_index(["session", "symbol"])["gap"]


# ----------------------------------------------------------------------------- tables
def gap_fill_table(events: pd.DataFrame, by="gap_class", horizons=FILL_HORIZONS) -> pd.DataFrame:
    """Per group: events, mean gap (%), fill probability within each horizon (the share of
    the events with a complete window ``D .. D+N`` that filled in it: the article's ``fills /
    total``; events without a complete window are left out), mean days to fill (``k`` of the
    fill on session ``D+k``, over the events that filled within the longest horizon with its
    window complete), continuation mean/median and share positive."""
    keys = [by] if isinstance(by, str) else list(by)
    g = events.groupby(keys, observed=False, sort=True)
    out = pd.DataFrame({"events": g.size(), "mean_gap_pct": g["gap_pct"].mean()})
    for n in horizons:
        out[f"fill_{n}d"] = g[f"filled_{n}"].mean()
    longest = f"filled_{max(horizons)}"
    filled = events["days_to_fill"].where(events[longest] == 1)
    out["mean_days_to_fill"] = filled.groupby([events[k] for k in keys], observed=False,
                                              sort=True).mean()
    out["cont_mean"] = g["continuation"].mean()
    out["cont_median"] = g["continuation"].median()
    out["cont_positive"] = g["continuation"].apply(
        lambda s: (s.dropna() > 0).mean() if s.notna().any() else np.nan)
    return out


def shares_table(events: pd.DataFrame, min_gap=0.02, horizons=FILL_HORIZONS) -> pd.DataFrame:
    """:func:`gap_fill_table` of the gap events (``|gap| >= min_gap``) by shares class and
    direction (up/down)."""
    ev = events[events["gap"].abs() >= min_gap].copy()
    ev["direction"] = ev["direction"].cat.remove_categories(["flat"])
    return gap_fill_table(ev, by=["shares_class", "direction"], horizons=horizons)


# ----------------------------------------------------------------------------- intraday path
def intraday_path(bundle_data, events: pd.DataFrame, min_gap=0.02, by="direction",
                  minutes=390) -> pd.DataFrame:
    """Mean return from the open by minute after the open, for gap events (``|gap| >=
    min_gap``), grouped by ``by`` (``direction`` or ``gap_class``).

    Returns a frame indexed by minute (1..``minutes``; minute ``m`` is the bar ending
    ``m`` minutes after the open) with one column per group (mean return, a fraction) and
    ``n_<group>`` columns (events with a price at that minute).
    """
    ev = events[events["gap"].abs() >= min_gap]
    reader = bundle_data.equity_minute_bar_reader
    cal = reader.trading_calendar
    has_minutes = None
    try:
        table = _asset_frame(bundle_data)["has_minute_bars"]
        if table.notna().any():
            has_minutes = set(table.index[table.fillna(False).astype(bool)])
    except Exception:  # pragma: no cover
        pass
    if has_minutes is not None:
        ev = ev[ev["sid"].isin(has_minutes)]
    groups = [str(x) for x in (ev[by].cat.categories if hasattr(ev[by], "cat")
                               else sorted(ev[by].unique()))]
    groups = [x for x in groups if x in set(ev[by].astype(str))]
    sums = {k: np.zeros(minutes) for k in groups}
    counts = {k: np.zeros(minutes) for k in groups}
    for session, day in ev.groupby("session", sort=True):
        first = cal.session_first_minute(session)
        last = cal.session_last_minute(session)
        sids = day["sid"].to_numpy()
        try:
            opens, close = reader.load_raw_arrays(["open", "close"], first, last, list(sids))
        except Exception:  # pragma: no cover - session outside the minute data
            continue
        opens = np.asarray(opens, dtype=float)
        # the session's first traded minute's open: unadjusted, like the minute closes
        first_traded = np.argmax(np.isfinite(opens), axis=0)
        day_open = opens[first_traded, np.arange(opens.shape[1])]
        close = pd.DataFrame(np.asarray(close, dtype=float)).ffill().to_numpy()[:minutes]
        with np.errstate(invalid="ignore", divide="ignore"):
            ret = close / day_open[None, :] - 1.0
        labels = day[by].astype(str).to_numpy()
        for k in np.unique(labels):
            r = ret[:, labels == k]
            ok = np.isfinite(r)
            sums[k][: len(r)] += np.where(ok, r, 0.0).sum(axis=1)
            counts[k][: len(r)] += ok.sum(axis=1)
    out = pd.DataFrame(index=pd.RangeIndex(1, minutes + 1, name="minute"))
    for k in groups:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(counts[k] > 0, sums[k] / np.maximum(counts[k], 1), np.nan)
    for k in groups:
        out[f"n_{k}"] = counts[k].astype(np.int64)
    return out


# ----------------------------------------------------------------------------- study
@dataclass
class GapStudy:
    events: pd.DataFrame
    by_gap: pd.DataFrame
    by_shares: pd.DataFrame
    path: pd.DataFrame


def study(bundle="polygon", start=None, end=None, min_gap=0.02, types=None,
          adjust_dividends=False, environ=None, bundle_data=None, with_path=True) -> GapStudy:
    """Everything ``gapline gaps`` reports: events, the table by gap class, the table by
    shares class x direction, and the intraday path by direction."""
    data = bundle_data if bundle_data is not None else load_bundle(bundle, environ)
    daily = load_daily(bundle, start, end, types=types, adjust_dividends=adjust_dividends,
                       bundle_data=data)
    events = gap_events(daily, start, end, history=reference_history(data))
    path = (intraday_path(data, events, min_gap=min_gap) if with_path
            else pd.DataFrame(index=pd.RangeIndex(1, 391, name="minute")))
    return GapStudy(events, gap_fill_table(events), shares_table(events, min_gap), path)


def plot_study(result: GapStudy, title=None):
    """Figure: fill probability by gap class and horizon, continuation by gap class,
    fill probability by shares class, intraday path after gap-ups vs gap-downs."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    ax = axes[0, 0]
    fill_cols = [c for c in result.by_gap.columns if c.startswith("fill_")]
    labels = [str(i) for i in result.by_gap.index]
    for c in fill_cols:
        ax.plot(labels, result.by_gap[c].to_numpy(dtype=float), marker="o", label=c[5:])
    ax.set_title("Gap-fill probability by gap class (within N days: sessions D..D+N)")
    ax.set_ylim(0, 1.05)
    ax.legend(title="within", loc="best")
    ax.tick_params(axis="x", labelrotation=30)
    ax = axes[0, 1]
    cont = result.by_gap["cont_mean"].to_numpy(dtype=float) * 100
    ax.bar(labels, np.nan_to_num(cont),
           color=["tab:green" if v >= 0 else "tab:red" for v in np.nan_to_num(cont)])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title("Mean continuation close/open - 1 (%) by gap class")
    ax.tick_params(axis="x", labelrotation=30)
    ax = axes[1, 0]
    bs = result.by_shares
    if len(bs) and fill_cols:
        col = fill_cols[0] if "fill_1d" not in bs else "fill_1d"
        t = bs[col].unstack("direction") if "direction" in bs.index.names else bs[col]
        t.plot.bar(ax=ax)
        ax.set_title(f"Fill probability ({col}) by shares-outstanding class, |gap| >= min gap")
        ax.set_ylim(0, 1.05)
    ax = axes[1, 1]
    path = result.path
    for k in [c for c in path.columns if not str(c).startswith("n_")]:
        ax.plot(path.index, path[k] * 100, label=f"gap {k}")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title("Mean return from the open (%) by minute after the open")
    ax.set_xlabel("minutes after the open")
    if len(path.columns):
        ax.legend(loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_study(result: GapStudy, out_dir, title=None) -> dict:
    """Save the tables as CSV and the figure as PNG under ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "by_gap": out / "gap_fill_by_class.csv",
        "by_shares": out / "gap_fill_by_shares.csv",
        "path": out / "intraday_path.csv",
        "events": out / "gap_events.csv",
        "figure": out / "gaps.png",
    }
    result.by_gap.to_csv(paths["by_gap"])
    result.by_shares.to_csv(paths["by_shares"])
    result.path.to_csv(paths["path"])
    result.events.to_csv(paths["events"], index=False)
    import matplotlib.pyplot as plt

    fig = plot_study(result, title)
    fig.savefig(paths["figure"], dpi=90)
    plt.close(fig)
    return paths

"""Judge gapline's factors and screens with alphalens-reloaded.

::

    from factors.analysis import factor_data, write_tear_sheets
    data = factor_data("gap", "2024-08-01", "2024-12-20", bundle="polygon-demo")
    write_tear_sheets(data, "reports/factor_gap")      # alphalens' sheets as PNG + index.html

:func:`factor_data` builds alphalens' input -- the frame of
``alphalens.utils.get_clean_factor_and_forward_returns`` -- from the bundle:

* **factor values** per session and asset from the Pipeline (:func:`factors.loaders.
  run_pipeline`, data through the previous session), masked by a universe screen;
* **prices** from the bundle's daily bars, split- and dividend-adjusted as of the last day
  read (zipline's ``DataPortal.get_history_window``), so returns across a split are returns;
* **forward returns from the open**: a Pipeline row for session D is known before D's open,
  so ``kD`` is ``open[D+k] / open[D] - 1`` (trade at the first price after the factor is known);
* **gap factors** (:attr:`FactorSpec.at_open`) also need D's own open -- the gap
  ``open[D] / close[D-1] - 1`` exists only once D has opened -- and what gap strategies trade
  is the rest of that session: the ``6h30m`` column is ``close[D] / open[D] - 1``
  (09:30 -> 16:00; alphalens recognises forward-return columns by time-delta labels). It comes
  first, so alphalens' "per base period" rates are per open-to-close session.

A factor is a name of :data:`FACTORS`, ``<screen>.<column>`` of a strategy's Pipeline
(``sell_gap.std``, ``microcap_short.sigma``: that column, that strategy's screen as universe),
a zipline ``Factor``, or a :class:`FactorSpec`.
"""
from __future__ import annotations

import base64
import contextlib
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bundles.ingestions import ensure_registered
from bundles.market import trading_calendar

#: alphalens' label of the open-to-close return (the regular session, 09:30 -> 16:00)
OPEN_TO_CLOSE = "6h30m"
DEFAULT_PERIODS = (1, 5, 10)


@dataclass(frozen=True)
class FactorSpec:
    """A factor for alphalens: Pipeline ``columns`` (a dict factory), a universe ``screen``
    (a Filter factory, or None), and ``value(frame, bars)`` turning the Pipeline output into
    the factor Series; for ``at_open`` factors ``bars`` holds each row's ``open`` and
    ``prior_close`` from the same adjusted prices as the forward returns (a Pipeline close is
    adjusted as of its own row, the history window as of its last day: mixing them would turn
    every later split into a gap)."""
    name: str
    columns: Callable[[], dict]
    screen: Callable | None = None
    value: Callable | None = None
    at_open: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)


def _close():
    from zipline.pipeline.data import EquityPricing

    return EquityPricing.close.latest


def _common_priced(min_price=1.0):
    def screen():
        from .reference import CommonStock

        return CommonStock() & (_close() > min_price)
    return screen


def _column(term_factory):
    return lambda: {"factor": term_factory()}


def _gap(frame, bars):
    from .gap import gap_percent

    return pd.Series(gap_percent(bars["open"].to_numpy(), bars["prior_close"].to_numpy())
                     / 100.0, index=frame.index)


def _gap_zscore(frame, bars):
    from .gap import gap_zscore

    return pd.Series(gap_zscore(bars["open"].to_numpy(), bars["prior_close"].to_numpy(),
                                frame["sigma"].to_numpy()), index=frame.index)


def _factors() -> dict:
    from zipline.pipeline.factors import AverageDollarVolume

    from .gap import AverageRange, DailyReturnsStdDev, RelativeVolume, price_std

    return {
        "gap": FactorSpec("gap", lambda: {"close": _close()}, _common_priced(), _gap,
                          at_open=True, description="opening gap open[D] / close[D-1] - 1"),
        "gap_zscore": FactorSpec(
            "gap_zscore", lambda: {"sigma": DailyReturnsStdDev(window_length=21)},
            _common_priced(0.10), _gap_zscore, at_open=True,
            description="gap in 20-day daily-return standard deviations (microcap_short)"),
        "price_std": FactorSpec("price_std", _column(price_std), _common_priced(),
                                description="sell-gap's 63-day exponential std of closes"),
        "relative_volume": FactorSpec("relative_volume",
                                      _column(lambda: RelativeVolume(window_length=20)),
                                      _common_priced(), description="last volume / 20-day mean"),
        "avg_range": FactorSpec("avg_range", _column(lambda: AverageRange(window_length=20)),
                                _common_priced(), description="20-day mean (high-low)/close"),
        "dollar_volume": FactorSpec("dollar_volume",
                                    _column(lambda: AverageDollarVolume(window_length=30)),
                                    _common_priced(), description="30-day average dollar volume"),
    }


#: the named factors (``gapline factor NAME``); see :func:`factor_names` for screen columns
FACTORS = ("gap", "gap_zscore", "price_std", "relative_volume", "avg_range", "dollar_volume")
SCREENS = ("sell_gap", "buy_gap", "microcap_short", "gap_and_go")


def factor_names() -> list[str]:
    """Every name :func:`resolve_factor` takes: :data:`FACTORS` and ``screen.column``."""
    from . import screens

    names = list(FACTORS)
    for screen in SCREENS:
        pipe = getattr(screens, f"{screen}_pipeline")()
        names += [f"{screen}.{c}" for c, t in pipe.columns.items() if _numeric(t)]
    return names


def _numeric(term) -> bool:
    from zipline.pipeline.factors import Factor

    return isinstance(term, Factor)


def resolve_factor(factor) -> FactorSpec:
    """A :class:`FactorSpec` for a name, ``screen.column``, zipline Factor or spec."""
    if isinstance(factor, FactorSpec):
        return factor
    if isinstance(factor, str):
        named = _factors()
        if factor in named:
            return named[factor]
        screen, _, column = factor.partition(".")
        if screen in SCREENS and column:
            from . import screens

            make = getattr(screens, f"{screen}_pipeline")
            pipe = make()
            if column not in pipe.columns or not _numeric(pipe.columns[column]):
                raise ValueError(f"{screen}'s Pipeline has no numeric column {column!r}; "
                                 f"its factors: {[c for c, t in pipe.columns.items() if _numeric(t)]}")
            return FactorSpec(factor, lambda: {"factor": make().columns[column]},
                              lambda: make().screen, description=f"{screen} column {column}")
        raise ValueError(f"unknown factor {factor!r}; known: {', '.join(FACTORS)} or "
                         f"<screen>.<column> with a screen of {', '.join(SCREENS)}")
    if _numeric(factor):
        return FactorSpec(type(factor).__name__, lambda: {"factor": factor})
    raise TypeError(f"a factor is a name, a zipline Factor or a FactorSpec, got {factor!r}")


# ----------------------------------------------------------------------------- the frame
def forward_returns(opens: pd.DataFrame, closes: pd.DataFrame, periods=DEFAULT_PERIODS,
                    open_to_close=False) -> pd.DataFrame:
    """Forward returns from the open, (session, asset) x columns: ``6h30m`` = close[D] /
    open[D] - 1 (with ``open_to_close``), then ``{k}D`` = open[D+k] / open[D] - 1 (k
    sessions of ``opens``' index later; NaN where a price is missing)."""
    cols = {}
    if open_to_close:
        cols[OPEN_TO_CLOSE] = closes.reindex_like(opens) / opens - 1.0
    for k in sorted(int(p) for p in periods):
        cols[f"{k}D"] = opens.shift(-k) / opens - 1.0
    stacked = {name: frame.stack(future_stack=True) for name, frame in cols.items()}
    out = pd.DataFrame(stacked)
    out.index.names = ["date", "asset"]
    return out


def clean_factor_data(factor: pd.Series, returns: pd.DataFrame, quantiles=5, bins=None,
                      max_loss=0.35, groupby=None, calendar_index=None) -> pd.DataFrame:
    """alphalens' ``get_clean_factor`` of ``factor`` with ``returns`` (rows with a NaN factor
    or return dropped, quantiles added), the date level carrying the trading calendar's
    frequency as ``compute_forward_returns`` would set it."""
    from alphalens.utils import get_clean_factor, infer_trading_calendar

    factor = factor.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    factor.index.names = ["date", "asset"]
    dates = factor.index.levels[0]
    freq = infer_trading_calendar(dates, calendar_index if calendar_index is not None
                                  else returns.index.levels[0])
    returns = returns.reindex(factor.index)
    with _quiet():
        data = get_clean_factor(factor, returns, groupby=groupby, quantiles=quantiles,
                                bins=bins, max_loss=max_loss)
    level = pd.DatetimeIndex(data.index.levels[0])
    try:
        data.index = data.index.set_levels(pd.DatetimeIndex(level, freq=freq), level=0)
    except ValueError:
        pass
    return data


def bundle_prices(bundle, assets, start, end, environ=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(opens, closes)``: daily bars of ``assets`` for the sessions ``start``..``end``,
    split- and dividend-adjusted as of ``end`` (zipline's history window)."""
    from zipline.data import bundles as zb
    from zipline.data.data_portal import DataPortal
    from zipline.utils.calendar_utils import get_calendar

    environ = os.environ if environ is None else environ
    ensure_registered(bundle)
    data = zb.load(bundle, environ)
    calendar = get_calendar(zb.bundles[bundle].calendar_name)
    reader = data.equity_daily_bar_reader
    sessions = calendar.sessions_in_range(max(pd.Timestamp(start), reader.first_trading_day),
                                          min(pd.Timestamp(end), reader.last_available_dt))
    portal = DataPortal(data.asset_finder, calendar, reader.first_trading_day,
                        equity_daily_reader=reader, adjustment_reader=data.adjustment_reader)
    out = []
    for fld in ("open", "close"):
        frame = portal.get_history_window(list(assets), sessions[-1], len(sessions), "1d", fld,
                                          "daily")
        frame.index = pd.DatetimeIndex(frame.index).tz_localize(None) \
            if pd.DatetimeIndex(frame.index).tz is not None else pd.DatetimeIndex(frame.index)
        out.append(frame)
    return out[0], out[1]


def factor_frame(spec: FactorSpec, pipe_out: pd.DataFrame, opens: pd.DataFrame,
                 closes: pd.DataFrame) -> pd.Series:
    """The factor Series (date, asset) of ``spec`` from its Pipeline output and, for a gap
    factor, each row's ``open`` and ``prior_close`` (the previous session's close) from
    ``opens``/``closes``."""
    if spec.value is None:
        return pipe_out["factor"].astype(float)
    bars = None
    if spec.at_open:
        bars = pd.DataFrame({"open": opens.stack(future_stack=True),
                             "prior_close": closes.shift(1).stack(future_stack=True)})
        bars = bars.reindex(pipe_out.index)
    return spec.value(pipe_out, bars)


def factor_data(factor, start, end, bundle="polygon", periods=DEFAULT_PERIODS, quantiles=5,
                bins=None, max_loss=0.35, screen=None, environ=None) -> pd.DataFrame:
    """alphalens' factor data of ``factor`` (see the module docstring) for the sessions
    ``start``..``end`` of ``bundle``. ``screen`` (a Filter) replaces the factor's universe."""
    from zipline.pipeline import Pipeline

    from .loaders import run_pipeline

    spec = resolve_factor(factor)
    universe = screen if screen is not None else (spec.screen() if spec.screen else None)
    pipe_out = run_pipeline(Pipeline(columns=spec.columns(), screen=universe), start, end,
                            bundle=bundle, environ=environ)
    if pipe_out.empty:
        raise ValueError(f"factor {spec.name}: the Pipeline selected nothing in {start}..{end}")
    assets = pipe_out.index.get_level_values(1).unique()
    sessions = trading_calendar().sessions
    last = sessions[min(sessions.searchsorted(pd.Timestamp(end)) + max(periods),
                        len(sessions) - 1)]
    # one session before start: the first row's prior close
    first = sessions[max(sessions.searchsorted(pd.Timestamp(start)) - 1, 0)]
    opens, closes = bundle_prices(bundle, assets, first, last, environ)
    values = factor_frame(spec, pipe_out, opens, closes)
    returns = forward_returns(opens, closes, periods, open_to_close=spec.at_open)
    # the last sessions have no k-session forward return: alphalens drops those rows
    data = clean_factor_data(values, returns, quantiles=quantiles, bins=bins,
                             max_loss=max_loss, calendar_index=opens.index)
    data.attrs.update({"factor": spec.name, "bundle": bundle, "at_open": spec.at_open,
                       "description": spec.description})
    return data


# ----------------------------------------------------------------------------- tear sheets
@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _capture_figures(figures: list):
    """alphalens draws each sheet then calls ``plt.show()`` and closes it: keep a PNG of
    every open figure at each ``show``."""
    import matplotlib.pyplot as plt

    original = plt.show

    def show(*args, **kwargs):
        for num in plt.get_fignums():
            fig = plt.figure(num)
            if not fig.axes:  # an empty figure alphalens opened and never drew on
                plt.close(fig)
                continue
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
            figures.append(buf.getvalue())
            plt.close(fig)

    plt.show = show
    try:
        yield
    finally:
        plt.show = original


def factor_summary(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """alphalens' numbers as tables: information coefficient per period, mean forward return
    by quantile, mean factor-quantile turnover (daily periods only)."""
    from alphalens import performance as perf
    from alphalens.utils import get_forward_returns_columns

    ic = perf.factor_information_coefficient(data)
    ic_table = pd.DataFrame({"IC mean": ic.mean(), "IC std": ic.std(),
                             "IR": ic.mean() / ic.std(), "t-stat": ic.mean() / ic.std()
                             * np.sqrt(ic.count()), "sessions": ic.count()})
    by_q, _ = perf.mean_return_by_quantile(data, demeaned=False)
    days = [c for c in get_forward_returns_columns(data.columns) if c.endswith("D")]
    turnover = pd.DataFrame()
    if days:
        quantiles = sorted(data["factor_quantile"].unique())
        turnover = pd.DataFrame({
            "quantile": quantiles,
            f"turnover ({days[0]})": [perf.quantile_turnover(data["factor_quantile"], q,
                                                             int(days[0][:-1])).mean()
                                      for q in quantiles]})
    return {"information coefficient": ic_table, "mean return by quantile": by_q,
            "turnover": turnover}


def write_tear_sheets(data: pd.DataFrame, out_dir, title=None) -> dict:
    """alphalens' full tear sheet (returns, information, turnover) as ``sheet_NN.png`` plus
    ``index.html`` with the summary tables and every figure embedded; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import alphalens

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[bytes] = []
    with _capture_figures(figures), _quiet():
        alphalens.tears.create_full_tear_sheet(data, long_short=True)
    paths = {}
    for i, png in enumerate(figures, 1):
        path = out / f"sheet_{i:02d}.png"
        path.write_bytes(png)
        paths[path.stem] = path
    tables = factor_summary(data)
    name = title or data.attrs.get("factor", "factor")
    body = [f"<h1>{html.escape(str(name))}</h1>",
            f"<p>{html.escape(str(data.attrs.get('description', '')))} -- bundle "
            f"{html.escape(str(data.attrs.get('bundle', '')))}, "
            f"{data.index.get_level_values(0).nunique()} sessions, {len(data)} factor values. "
            f"Forward returns from the open" + (f"; {OPEN_TO_CLOSE} = open to close of the "
                                               f"gap session" if data.attrs.get("at_open")
                                               else "") + ".</p>"]
    for label, table in tables.items():
        body.append(f"<h2>{html.escape(label)}</h2>" + table.to_html(
            border=0, float_format=lambda v: f"{v:.4f}"))
    body += [f"<img src='data:image/png;base64,{base64.b64encode(p).decode()}'>"
             for p in figures]
    (out / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(str(name)) +
        "</title><style>body{font-family:sans-serif;margin:2em} table{border-collapse:"
        "collapse;font-size:13px} td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "img{max-width:100%}</style></head><body>" + "".join(body) + "</body></html>")
    paths["html"] = out / "index.html"
    return paths

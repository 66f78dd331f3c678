"""Tear sheets of one zipline run: pyfolio figures as PNG + one self-contained HTML page.

::

    from analysis.tearsheet import load_perf, write_tearsheet
    perf = load_perf("out.pickle")           # zipline run -o out.pickle (or a CSV of perf)
    paths = write_tearsheet(perf, "reports/sell_gap/", title="sell_gap")

writes ``returns.png``, ``round_trips.png`` and ``transactions.png`` (pyfolio-reloaded's
``create_returns_tear_sheet`` / ``create_round_trip_tear_sheet`` / ``create_txn_tear_sheet``
with ``return_fig=True``), ``intraday_round_trips.png`` (:mod:`.roundtrips`: PnL by entry
minute, weekday, gap class and exit reason), ``stats.csv``, ``round_trips.csv`` and
``index.html``: the statistics of :func:`perf_stats`, the round-trip summary and breakdowns,
and every figure embedded as a base64 PNG (no external file, script or style sheet).

pyfolio reads end-of-day positions; an intraday strategy is flat at the close, so they are
only cash. pyfolio's ``estimate_intraday="infer"`` (used here) then estimates intraday
exposure from the fills; the round trips of :mod:`.roundtrips` use the fills directly.
A run without a single fill gets a page that says so (no pyfolio round-trip or transaction
sheet; the returns sheet is attempted and any pyfolio failure is noted on the page).
"""
from __future__ import annotations

import base64
import contextlib
import html
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .fills import describe_run, run_labels
from .perf_files import TEARSHEET_COLUMNS, PerfFileError, check_perf

#: Statistics of :func:`perf_stats`: key -> (label, format).
STATS = {
    "annual_return": ("Annual return", "pct"),
    "cumulative_return": ("Cumulative return", "pct"),
    "annual_volatility": ("Annual volatility", "pct"),
    "sharpe_ratio": ("Sharpe ratio", "num"),
    "sortino_ratio": ("Sortino ratio", "num"),
    "calmar_ratio": ("Calmar ratio", "num"),
    "max_drawdown": ("Max drawdown", "pct"),
    "stability": ("Stability", "num"),
    "tail_ratio": ("Tail ratio", "num"),
    "daily_var": ("Daily value at risk (5%)", "pct"),
    "alpha": ("Alpha (annual)", "num"),
    "beta": ("Beta", "num"),
}


def _daily_index(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.tz_convert("UTC").normalize()


def daily_returns(perf: pd.DataFrame) -> pd.Series:
    """The run's daily returns, indexed by UTC midnight of each session (pyfolio's format)."""
    r = perf["returns"].astype(float).copy()
    r.index = _daily_index(perf.index)
    r.name = "returns"
    return r


def benchmark_returns(perf: pd.DataFrame):
    """The perf frame's benchmark returns when zipline had a benchmark (not all zero), else
    None (``algorithms.runner.run`` runs without one)."""
    if "benchmark_period_return" not in perf:
        return None
    cum = perf["benchmark_period_return"].astype(float)
    if not np.any(np.nan_to_num(cum.to_numpy()) != 0):
        return None
    level = 1.0 + cum
    r = level / level.shift(1).fillna(1.0) - 1.0
    r.index = _daily_index(perf.index)
    return r.rename("benchmark")


def load_benchmark(spec, bundle=None, start=None, end=None, environ=None) -> pd.Series:
    """Benchmark daily returns from a file (CSV: date, return; or a pickled Series / perf
    frame) or, when ``spec`` is not a file, a symbol's close-to-close returns in ``bundle``
    (split- and dividend-adjusted: total return)."""
    path = Path(str(spec))
    if path.exists():
        try:
            if path.suffix in (".pickle", ".pkl"):  # runs code from the file: yours only
                obj = pd.read_pickle(path)
                if isinstance(obj, pd.DataFrame):
                    obj = obj["returns"] if "returns" in obj else obj.iloc[:, 0]
            else:
                obj = pd.read_csv(path, index_col=0).iloc[:, 0]
            r = obj.astype(float)
            r.index = _daily_index(r.index)
        except Exception as exc:  # noqa: BLE001 -- name the file, not a traceback
            raise PerfFileError(f"{path}: not a benchmark returns file ({type(exc).__name__}: "
                                f"{exc}); give a CSV of date, return") from None
        return r.rename("benchmark")
    if bundle is None:
        raise ValueError(f"benchmark {spec!r} is not a file; pass a bundle to read the symbol")
    from .gapstats import load_daily

    daily = load_daily(bundle, start, end, lookahead=0, adjust_dividends=True,
                       environ=environ)
    close = daily[daily["symbol"] == str(spec).upper()].set_index("session")["close"]
    if close.empty:
        raise ValueError(f"benchmark symbol {spec!r} not in bundle {bundle!r}")
    r = close.pct_change().dropna()
    r.index = _daily_index(r.index)
    return r.rename("benchmark")


def perf_stats(returns: pd.Series, benchmark: pd.Series | None = None) -> pd.Series:
    """empyrical statistics of daily ``returns`` (keys of :data:`STATS`); alpha and beta
    only with a ``benchmark``. ``daily_var`` is ``empyrical.value_at_risk`` at 5%."""
    import empyrical as ep

    r = returns.astype(float).dropna()
    out = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out["annual_return"] = ep.annual_return(r)
        out["cumulative_return"] = ep.cum_returns_final(r)
        out["annual_volatility"] = ep.annual_volatility(r)
        out["sharpe_ratio"] = ep.sharpe_ratio(r)
        out["sortino_ratio"] = ep.sortino_ratio(r)
        out["calmar_ratio"] = ep.calmar_ratio(r)
        out["max_drawdown"] = ep.max_drawdown(r)
        out["stability"] = ep.stability_of_timeseries(r)
        out["tail_ratio"] = ep.tail_ratio(r)
        out["daily_var"] = ep.value_at_risk(r, cutoff=0.05)
        if benchmark is not None:
            b = benchmark.astype(float).reindex(r.index)
            out["alpha"], out["beta"] = ep.alpha_beta(r, b)
    return pd.Series({k: float(v) if v is not None else np.nan for k, v in out.items()},
                     name="value")


def format_stats(stats: pd.Series) -> pd.Series:
    """Labels and formatted values (percent or two decimals) for display."""
    out = {}
    for key, value in stats.items():
        label, kind = STATS.get(key, (key, "num"))
        if pd.isna(value) or not np.isfinite(value):
            out[label] = "n/a"
        else:
            out[label] = f"{value:.2%}" if kind == "pct" else f"{value:.2f}"
    return pd.Series(out, name="value")


def format_summary(summary: pd.Series) -> pd.Series:
    """:func:`.roundtrips.trip_summary` as display strings."""
    out = {}
    for key, value in summary.items():
        if pd.isna(value):
            out[key] = "n/a"
        elif key in ("round trips", "closed", "long", "short"):
            out[key] = f"{int(value):,d}"
        elif key in ("win rate", "mean return"):
            out[key] = f"{value:.2%}"
        elif key in ("profit factor", "mean hold minutes"):
            out[key] = f"{value:,.2f}"
        else:
            out[key] = f"{value:,.2f}"
    return pd.Series(out, name="value")


# ----------------------------------------------------------------------------- pyfolio
def pyfolio_inputs(perf: pd.DataFrame):
    """(returns, positions, transactions) for pyfolio, from a copy of ``perf``."""
    from pyfolio.utils import extract_rets_pos_txn_from_zipline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return extract_rets_pos_txn_from_zipline(perf.copy())


def pyfolio_figures(perf: pd.DataFrame, benchmark: pd.Series | None = None):
    """pyfolio's returns, round-trip and transaction tear sheets as figures.

    Returns ``(figures, notes)``: ``{"returns": fig, "round_trips": fig, "transactions":
    fig}`` (a sheet that could not be drawn is missing) and human-readable notes on why.
    pyfolio's printed tables go to a buffer, not stdout.
    """
    import matplotlib.pyplot as plt
    import pyfolio as pf

    figures, notes = {}, []
    returns, positions, transactions = pyfolio_inputs(perf)
    has_trades = len(transactions) > 0
    if benchmark is not None:
        benchmark = benchmark.reindex(returns.index).fillna(0.0)

    def attempt(name, fn):
        before = set(plt.get_fignums())
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
                    np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                fig = fn()
        except Exception as exc:  # pyfolio is fragile on short or flat runs
            notes.append(f"pyfolio {name} tear sheet failed: {type(exc).__name__}: {exc}")
            fig = None
        for num in set(plt.get_fignums()) - before:  # close what pyfolio left behind
            if fig is None or fig.number != num:
                plt.close(num)
        if fig is not None:
            figures[name] = fig
        return fig

    attempt("returns", lambda: pf.create_returns_tear_sheet(
        returns, positions=positions if has_trades else None,
        transactions=transactions if has_trades else None,
        benchmark_rets=benchmark, return_fig=True))
    if not has_trades:
        notes.append("No trades in this run: no round-trip or transaction tear sheet.")
        return figures, notes
    attempt("round_trips", lambda: pf.create_round_trip_tear_sheet(
        returns, positions, transactions, estimate_intraday="infer", return_fig=True))
    if "round_trips" not in figures and not any(n.startswith("pyfolio round_trips")
                                                for n in notes):
        notes.append("pyfolio draws no round-trip tear sheet for fewer than 5 round trips.")
    attempt("transactions", lambda: pf.create_txn_tear_sheet(
        returns, positions, transactions, estimate_intraday="infer", return_fig=True))
    return figures, notes


# ----------------------------------------------------------------------------- HTML
def figure_png(fig, dpi=80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em;
       color: #222; max-width: 1200px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } img { max-width: 100%; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 0.5em 1em; }
"""


def _table_html(frame, float_format="{:,.4f}".format):
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    return frame.to_html(float_format=float_format, na_rep="n/a", border=0, escape=True)


def render_html(title: str, stats: pd.Series, sections: list, notes=(), images=()) -> str:
    """One self-contained page: ``sections`` are ``(heading, frame_or_html)``; ``images``
    are ``(heading, png_bytes)`` embedded as base64 data URIs."""
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for note in notes:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    parts.append("<h2>Performance statistics</h2>")
    parts.append(_table_html(format_stats(stats)))
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(body if isinstance(body, str) else _table_html(body))
    for heading, png in images:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(f"<img alt='{html.escape(heading)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- the sheet
def write_tearsheet(perf: pd.DataFrame, out_dir, title: str = "gapline backtest",
                    benchmark: pd.Series | None = None, gaps=None, exit_reasons=None,
                    scheduled=None, pyfolio=True) -> dict:
    """Write the PNG figures, CSV tables and ``index.html`` under ``out_dir``.

    ``perf`` needs :data:`TEARSHEET_COLUMNS` and at least one row (else
    :class:`PerfFileError`); pyfolio's sheets also need ``positions``.
    ``benchmark``: daily returns (default: the perf frame's own benchmark when it had one).
    ``gaps``, ``exit_reasons``, ``scheduled``: see :func:`.roundtrips.round_trips`.
    Returns ``{name: path}`` of the files written.
    """
    import matplotlib.pyplot as plt

    from . import roundtrips as rt

    check_perf(perf, TEARSHEET_COLUMNS)
    title = f"{title} -- {describe_run(perf)}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if benchmark is None:
        benchmark = benchmark_returns(perf)
    returns = daily_returns(perf)
    stats = perf_stats(returns, benchmark)
    trips = rt.round_trips(perf, exit_reasons=exit_reasons, scheduled=scheduled, gaps=gaps)
    notes, sections, images = [], [], []
    paths = {}
    stats.to_csv(out / "stats.csv", header=True)
    paths["stats"] = out / "stats.csv"
    trips.to_csv(out / "round_trips.csv", index=False)
    paths["round_trips_csv"] = out / "round_trips.csv"
    start, end = returns.index[0].date(), returns.index[-1].date()
    labels = run_labels(perf)
    sections.append(("Run", pd.Series({
        "data": labels["data"],
        "bundle": labels["bundle"],
        "cost preset": labels["costs"],
        "sessions": f"{len(returns)} ({start} .. {end})",
        "starting value": f"{float(perf['portfolio_value'].iloc[0] - perf['pnl'].iloc[0]):,.2f}"
        if "portfolio_value" in perf and "pnl" in perf else "n/a",
        "ending value": f"{float(perf['portfolio_value'].iloc[-1]):,.2f}"
        if "portfolio_value" in perf else "n/a",
        "benchmark": "yes" if benchmark is not None else "none",
    }, name="value")))
    if trips.empty:
        notes.append("No trades in this run: zero fills, so no round trips.")
    else:
        summary = format_summary(rt.trip_summary(trips))
        sections.append(("Round trips (FIFO-matched fills)", summary.to_frame("value")))
        for key, heading in (("exit_reason", "PnL by exit reason"),
                             ("entry_clock", "PnL by entry minute (ET, bar end label)"),
                             ("weekday", "PnL by weekday"),
                             ("gap_class", "PnL by gap class"),
                             ("side", "PnL by side")):
            if key in trips and trips[key].notna().any():
                sections.append((heading, rt.pnl_by(trips, key)))
        fig = rt.plot_round_trips(trips, title=f"{title}: round trips")
        png = figure_png(fig)
        plt.close(fig)
        (out / "intraday_round_trips.png").write_bytes(png)
        paths["intraday_round_trips"] = out / "intraday_round_trips.png"
        images.append(("Round trips by entry minute, weekday, gap and exit reason", png))
        cols = ["symbol", "session", "side", "shares", "entry_clock", "exit_clock",
                "entry_price", "exit_price", "pnl", "net_pnl", "return", "hold_minutes",
                "exit_reason"] + (["gap"] if "gap" in trips else [])
        shown = trips[cols].copy()
        shown["session"] = shown["session"].dt.strftime("%Y-%m-%d")
        more = f" (first 200 of {len(trips)}; all in round_trips.csv)" if len(trips) > 200 else ""
        sections.append((f"Round trip list{more}", shown.head(200)))
    if pyfolio and "positions" not in perf:
        notes.append("The perf frame has no 'positions' column: no pyfolio tear sheets.")
    elif pyfolio:
        figures, pf_notes = pyfolio_figures(perf, benchmark)
        notes.extend(n for n in pf_notes if n not in notes and not
                     (trips.empty and n.startswith("No trades")))
        labels = {"returns": "pyfolio returns tear sheet",
                  "round_trips": "pyfolio round-trip tear sheet",
                  "transactions": "pyfolio transaction tear sheet"}
        for name in ("returns", "round_trips", "transactions"):
            fig = figures.get(name)
            if fig is None:
                continue
            png = figure_png(fig)
            plt.close(fig)
            (out / f"{name}.png").write_bytes(png)
            paths[name] = out / f"{name}.png"
            images.append((labels[name], png))
    page = render_html(title, stats, sections, notes, images)
    (out / "index.html").write_text(page, encoding="utf-8")
    paths["html"] = out / "index.html"
    return paths

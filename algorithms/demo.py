"""``make demo``: every algorithm on ``polygon-demo`` with the ``published`` and ``realistic``
cost presets side by side, pickles + tear sheets + one summary table."""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

DEMO_ALGORITHMS = ("sell_gap", "buy_gap", "microcap_short", "gap_and_go")
PRESETS = ("published", "realistic")
# microcap_short's sigma needs 100 sessions of history: the demo data starts 2024-07-01.
EARLIEST_START = {"microcap_short": "2024-11-22"}
TEARSHEETS = ("sell_gap", "microcap_short")


def summary_row(perf: pd.DataFrame) -> dict:
    """Trades, annual return, Sharpe and max drawdown of one run."""
    from .analysis.tearsheet import daily_returns, perf_stats
    from .runner import trades

    stats = perf_stats(daily_returns(perf))
    return {"fills": len(trades(perf)),
            "annual_return": stats["annual_return"],
            "sharpe": stats["sharpe_ratio"],
            "max_drawdown": stats["max_drawdown"],
            "end_value": float(perf["portfolio_value"].iloc[-1])}


def run_demo(start, end, out_dir, bundle="polygon-demo", algorithms=DEMO_ALGORITHMS,
             tearsheets=TEARSHEETS, environ=None) -> pd.DataFrame:
    """Run each algorithm under each preset; write ``<out>/<algo>/<preset>.pickle``, a
    published-vs-realistic comparison per algorithm, tear sheets for ``tearsheets`` and
    ``<out>/summary.csv``. Returns the summary table."""
    import matplotlib

    matplotlib.use("Agg")
    from .analysis.compare import write_compare
    from .analysis.tearsheet import write_tearsheet
    from .runner import run

    out = Path(out_dir)
    rows = []
    for algo in algorithms:
        algo_start = max(pd.Timestamp(start), pd.Timestamp(EARLIEST_START.get(algo, start)))
        perfs = {}
        for preset in PRESETS:
            log.info("running %s (%s costs) %s..%s", algo, preset, algo_start.date(), end)
            perf = run(algo, algo_start, end, bundle=bundle, costs=preset, environ=environ)
            perfs[preset] = perf
            (out / algo).mkdir(parents=True, exist_ok=True)
            with open(out / algo / f"{preset}.pickle", "wb") as fh:
                pickle.dump(perf, fh)
            rows.append({"algorithm": algo, "costs": preset, "start": algo_start.date(),
                         **summary_row(perf)})
        write_compare(perfs, out / algo / "compare")
        if algo in tearsheets:
            write_tearsheet(perfs["realistic"], out / algo / "tearsheet",
                            title=f"{algo} on {bundle} (realistic costs)")
    table = pd.DataFrame(rows).set_index(["algorithm", "costs"])
    table.to_csv(out / "summary.csv")
    return table


def format_summary(table: pd.DataFrame) -> str:
    """One screen: the summary with percentages."""
    shown = table.copy()
    for col in ("annual_return", "max_drawdown"):
        shown[col] = shown[col].map(lambda v: f"{v:+.2%}")
    shown["sharpe"] = shown["sharpe"].map(lambda v: f"{v:.2f}")
    shown["end_value"] = shown["end_value"].map(lambda v: f"{v:,.0f}")
    return shown.to_string()

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
TEARSHEETS = ("sell_gap", "microcap_short")


def summary_row(perf: pd.DataFrame) -> dict:
    """Trades, annual return, Sharpe and max drawdown of one run."""
    from analysis.fills import run_labels, transactions_frame
    from analysis.tearsheet import daily_returns, perf_stats

    stats = perf_stats(daily_returns(perf))
    return {"data": run_labels(perf)["data"],
            "fills": len(transactions_frame(perf)),
            "annual_return": stats["annual_return"],
            "sharpe": stats["sharpe_ratio"],
            "max_drawdown": stats["max_drawdown"],
            "end_value": float(perf["portfolio_value"].iloc[-1])}


def algorithm_start(algo, start, bundle="polygon-demo", environ=None) -> pd.Timestamp:
    """``start``, or the first session ``algo``'s Pipeline look-back allows on ``bundle`` when
    that is later (microcap_short's 100-session sigma on the demo data, which starts
    2024-07-01: 2024-11-20). Computed by :func:`algorithms.runner.earliest_start`."""
    from algorithms.runner import earliest_start

    earliest = earliest_start(algo, bundle=bundle, environ=environ)
    start = pd.Timestamp(start)
    return start if earliest is None else max(start, earliest)


def run_demo(start, end, out_dir, bundle="polygon-demo", algorithms=DEMO_ALGORITHMS,
             tearsheets=TEARSHEETS, environ=None) -> pd.DataFrame:
    """Run each algorithm under each preset; write ``<out>/<algo>/<preset>.pickle``, a
    published-vs-realistic comparison per algorithm, tear sheets for ``tearsheets`` and
    ``<out>/summary.csv``. Returns the summary table."""
    import matplotlib

    matplotlib.use("Agg")
    from analysis.compare import write_compare
    from analysis.tearsheet import write_tearsheet
    from algorithms.runner import run

    out = Path(out_dir)
    rows = []
    for algo in algorithms:
        algo_start = algorithm_start(algo, start, bundle=bundle, environ=environ)
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
                            title=f"{algo} on {bundle}")
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
    kinds = sorted(set(shown.pop("data"))) if "data" in shown else []
    head = f"Results on {' and '.join(kinds)}" if kinds else "Results"
    if "synthetic data" in kinds:
        head += " (polygon-demo: generated prices, not a market; the numbers test the code)"
    return head + "\n" + shown.to_string()

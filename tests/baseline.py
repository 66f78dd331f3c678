"""Stored expected results of algorithm runs, and a readable comparison against them.

The expected file of an algorithm is a small CSV, one row per session::

    date, returns, pnl, portfolio_value, positions, transactions

(``positions``: open positions at the close; ``transactions``: fills that session). Tolerances
follow zipline's ``tests/test_examples.py`` idea -- exact for counts, relative/absolute for
money -- with explicit numbers in :data:`TOLERANCES`.

``update(name, perf, directory)`` writes it; ``compare(name, perf, directory)`` returns a
:class:`Comparison` whose ``str()`` is a table of the sessions/columns that disagree (and
raises ``AssertionError`` with that table when ``raise_on_diff=True``). ``make baselines``
(``python -m tests.baseline update``) calls :func:`update_all`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["returns", "pnl", "portfolio_value", "positions", "transactions"]

#: column -> (rtol, atol); counts must match exactly
TOLERANCES = {
    "returns": (1e-6, 1e-8),
    "pnl": (1e-6, 0.01),
    "portfolio_value": (1e-9, 0.01),
    "positions": (0.0, 0.0),
    "transactions": (0.0, 0.0),
}

DEFAULT_DIR = Path(__file__).resolve().parent / "expected"


def summarize(perf: pd.DataFrame) -> pd.DataFrame:
    """The daily columns baselines store, from a zipline perf frame."""
    idx = pd.DatetimeIndex(perf.index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    out = pd.DataFrame({
        "returns": perf["returns"].to_numpy(dtype=float),
        "pnl": perf["pnl"].to_numpy(dtype=float),
        "portfolio_value": perf["portfolio_value"].to_numpy(dtype=float),
        "positions": [sum(1 for p in ps if p["amount"]) for ps in perf["positions"]],
        "transactions": [len(t) for t in perf["transactions"]],
    }, index=pd.Index(idx.normalize(), name="date"))
    return out


def as_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` if it already is a summary, else :func:`summarize` of a perf frame."""
    is_perf = len(frame) and isinstance(frame["transactions"].iloc[0], list)
    return summarize(frame) if is_perf else frame


def path_for(name: str, directory=None) -> Path:
    return Path(directory or DEFAULT_DIR) / f"{name}.csv"


def update(name: str, perf: pd.DataFrame, directory=None) -> Path:
    """Write the baseline of ``name`` from ``perf`` (a zipline perf frame or a summary)."""
    frame = as_summary(perf)
    path = path_for(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame[COLUMNS].copy()
    out.index = pd.DatetimeIndex(out.index).strftime("%Y-%m-%d")
    out.index.name = "date"
    out.to_csv(path, float_format="%.15g")
    return path


def load(name: str, directory=None) -> pd.DataFrame:
    path = path_for(name, directory)
    if not path.exists():
        raise FileNotFoundError(f"no baseline {path}; create it with update({name!r}, perf)")
    frame = pd.read_csv(path, index_col="date", parse_dates=["date"])
    return frame[COLUMNS]


@dataclass
class Comparison:
    name: str
    diffs: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing_dates: list = field(default_factory=list)
    extra_dates: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.diffs.empty and not self.missing_dates and not self.extra_dates

    def __bool__(self):
        return self.ok

    def __str__(self):
        if self.ok:
            return f"{self.name}: matches its baseline"
        lines = [f"{self.name}: differs from its baseline"]
        if self.missing_dates:
            lines.append(f"  sessions in the baseline but not in the run: "
                         f"{[str(d.date()) for d in self.missing_dates]}")
        if self.extra_dates:
            lines.append(f"  sessions in the run but not in the baseline: "
                         f"{[str(d.date()) for d in self.extra_dates]}")
        if not self.diffs.empty:
            with pd.option_context("display.width", 160, "display.max_rows", 200,
                                   "display.float_format", "{:.8g}".format):
                lines.append(self.diffs.to_string(index=False))
        return "\n".join(lines)


def compare(name: str, perf: pd.DataFrame, directory=None, tolerances=None,
            raise_on_diff=False) -> Comparison:
    """Compare a run with the stored baseline of ``name`` (see the module docstring)."""
    tol = dict(TOLERANCES, **(tolerances or {}))
    expected = load(name, directory)
    actual = as_summary(perf)[COLUMNS].copy()
    actual.index = pd.DatetimeIndex(actual.index).normalize()
    common = expected.index.intersection(actual.index)
    rows = []
    for date in common:
        for col in COLUMNS:
            want, got = float(expected.at[date, col]), float(actual.at[date, col])
            rtol, atol = tol[col]
            if not np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
                rows.append({"date": str(date.date()), "column": col, "expected": want,
                             "actual": got, "diff": got - want})
    result = Comparison(
        name=name,
        diffs=pd.DataFrame(rows, columns=["date", "column", "expected", "actual", "diff"]),
        missing_dates=list(expected.index.difference(actual.index)),
        extra_dates=list(actual.index.difference(expected.index)),
    )
    if raise_on_diff and not result.ok:
        raise AssertionError(str(result))
    return result


# ----------------------------------------------------------------------------- the standard set
#: name -> (algorithm module, start, end, run keyword arguments): the runs that
#: ``tests/algorithms/test_algorithms.py`` checks against ``tests/expected/<name>.csv``. Windows are short
#: (the suite must stay fast) and chosen where the demo data has events that pass the screens
#: (the sell-gap screen needs 63 sessions of history and the microcap screen 100; the demo
#: starts 2024-07-01). Regenerate the baselines whenever the demo generator changes.
STANDARD_RUNS = {
    "sell_gap": ("sell_gap", "2024-11-01", "2024-12-31", {"costs": "published"}),
    "sell_gap_realistic": ("sell_gap", "2024-11-01", "2024-12-31", {"costs": "realistic"}),
    "buy_gap": ("buy_gap", "2024-11-01", "2024-12-31", {"costs": "published"}),
    "buy_gap_revised": ("buy_gap", "2024-11-01", "2024-12-31",
                        {"costs": "published", "variant": "revised"}),
    "microcap_short": ("microcap_short", "2024-12-02", "2024-12-20", {"costs": "published"}),
    "microcap_short_realistic": ("microcap_short", "2024-12-02", "2024-12-20",
                                 {"costs": "realistic"}),
    # the Gap & Go article's scanner and simulate_gap_trade (algorithms/gap_and_go.py)
    "gap_and_go": ("gap_and_go", "2024-10-01", "2024-10-31", {"costs": "published"}),
    # the rules gap_and_go had before it followed the article (variant "loose": 50,000
    # pre-market shares, no liquidity or score floor, 10% positions) trade more names, reach
    # the VWAP stop, the target and the 15:45 exit
    "gap_and_go_loose": ("gap_and_go", "2024-10-01", "2024-10-31",
                         {"costs": "published", "variant": "loose"}),
}
STANDARD_CAPITAL = 1_000_000.0


def run_standard(name, bundle="polygon-demo", environ=None):
    """Run the standard run ``name`` (see :data:`STANDARD_RUNS`); returns the perf frame."""
    from algorithms.runner import run

    module, start, end, kwargs = STANDARD_RUNS[name]
    return run(module, start, end, bundle=bundle, capital_base=STANDARD_CAPITAL,
               environ=environ, **kwargs)


def update_all(names=None, directory=None, bundle="polygon-demo", environ=None) -> list[Path]:
    """Re-run the standard runs and rewrite their baselines."""
    return [update(n, run_standard(n, bundle, environ), directory)
            for n in (names or STANDARD_RUNS)]


def compare_all(names=None, directory=None, bundle="polygon-demo", environ=None) -> dict:
    """Re-run the standard runs and compare each with its baseline."""
    return {n: compare(n, run_standard(n, bundle, environ), directory)
            for n in (names or STANDARD_RUNS)}


def main(argv=None) -> int:
    """``python -m tests.baseline update|compare [NAME ...]`` (run from the repo with the demo
    bundle ingested: ``make baselines``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.baseline", description=main.__doc__)
    parser.add_argument("action", choices=("update", "compare"))
    parser.add_argument("names", nargs="*", help=f"default: all of {list(STANDARD_RUNS)}")
    args = parser.parse_args(argv)
    from gapline.extension import load

    load()
    if args.action == "update":
        for path in update_all(args.names or None):
            print(f"wrote {path}")
        return 0
    results = compare_all(args.names or None).values()
    for result in results:
        print(result)
    return 0 if all(results) else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

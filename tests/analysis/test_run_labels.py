"""Results say what they are (issue #10 item 8): the labels a gapline run records reach the
compare table, the tear sheet's title and the demo summary (hand-built perf frames)."""
import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from analysis.compare import compare_stats  # noqa: E402
from analysis.fills import describe_run, run_labels  # noqa: E402
from gapline.demo import format_summary  # noqa: E402


def perf(bundle=None, data=None, costs=None, n=3):
    idx = pd.date_range("2024-10-01", periods=n, freq="B", tz="UTC")
    frame = pd.DataFrame({"returns": [0.01, -0.005, 0.002][:n], "transactions": [[]] * n,
                          "orders": [[]] * n, "positions": [[]] * n,
                          "portfolio_value": [1.01e6, 1.005e6, 1.007e6][:n],
                          "pnl": [1e4, -5e3, 2e3][:n]}, index=idx)
    if bundle is not None:
        frame["bundle"], frame["data"], frame["costs"] = bundle, data, costs
    return frame


def test_labels_of_a_demo_run_and_of_a_frame_without_them():
    demo = perf("polygon-demo", "synthetic data", "realistic")
    assert run_labels(demo) == {"bundle": "polygon-demo", "data": "synthetic data",
                                "costs": "realistic"}
    assert describe_run(demo) == "synthetic data (polygon-demo), realistic costs"
    assert run_labels(perf()) == {"bundle": "unknown", "data": "unknown", "costs": "unknown"}


def test_compare_table_carries_data_and_preset():
    table = compare_stats({"a": perf("polygon-demo", "synthetic data", "published"),
                           "b": perf("polygon", "market data", "realistic")})
    assert table.loc["a", ["data", "costs"]].tolist() == ["synthetic data", "published"]
    assert table.loc["b", ["data", "costs"]].tolist() == ["market data", "realistic"]


def test_demo_summary_says_synthetic_data():
    table = pd.DataFrame([{"algorithm": "sell_gap", "costs": "published", "data": "synthetic data",
                           "fills": 2, "annual_return": 0.1, "sharpe": 1.0,
                           "max_drawdown": -0.01, "end_value": 1e6}]).set_index(
        ["algorithm", "costs"])
    text = format_summary(table)
    assert text.splitlines()[0].startswith("Results on synthetic data")
    assert "published" in text

"""What ``make demo`` produces: perf pickles with transactions, tear sheet images, a summary."""
from __future__ import annotations

import pickle

import pandas as pd
from click.testing import CliRunner

from gapline.cli import main


def test_gapline_demo_writes_pickles_tearsheet_and_summary(demo_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ZIPLINE_ROOT", str(demo_root))
    out = tmp_path / "reports"
    result = CliRunner().invoke(main, ["demo", "--start", "2024-12-02", "--end", "2024-12-20",
                                       "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(out / "sell_gap" / "realistic.pickle", "rb") as fh:
        perf = pickle.load(fh)
    fills = [t for day in perf["transactions"] for t in day]
    assert fills, "the demo sell_gap run should trade"
    assert all(pd.Timestamp(t["dt"]).tz_convert("America/New_York").strftime("%H:%M") >= "09:40"
               for t in fills if t["amount"] < 0)  # shorts only after the 09:40 entry time
    pngs = list((out / "sell_gap" / "tearsheet").glob("*.png"))
    assert pngs and all(p.stat().st_size > 5_000 for p in pngs)
    html = (out / "sell_gap" / "tearsheet" / "index.html").read_text()
    assert "data:image/png;base64," in html
    summary = pd.read_csv(out / "summary.csv", index_col=[0, 1])
    assert set(summary.index.get_level_values("costs")) == {"published", "realistic"}
    assert summary.loc[("sell_gap", "realistic"), "fills"] == len(fills)
    for algo in ("sell_gap", "buy_gap", "microcap_short", "gap_and_go"):
        assert (out / algo / "compare" / "cumulative_returns.png").exists()
    assert "annual_return" in result.output and "sell_gap" in result.output


"""The ``gapline sweep`` and ``gapline factor`` commands end to end (their own processes)."""
from __future__ import annotations

from click.testing import CliRunner

from gapline.cli import main


def test_sweep_with_two_local_workers_refuses_an_unknown_parameter(demo_root, tmp_path):
    result = CliRunner().invoke(main, [
        "sweep", "sell_gap", "-b", "polygon-demo", "--start", "2024-10-07", "--end",
        "2024-10-08", "--grid", "topn=1,2", "--workers", "2", "--dashboard-address", ":0",
        "-o", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert "Dask dashboard: http" in result.output
    assert "unknown parameter 'topn'" in result.output and "top_n" in result.output
    assert not (tmp_path / "s" / "tasks").exists()


def test_sweep_refuses_workers_and_scheduler_together(tmp_path):
    result = CliRunner().invoke(main, ["sweep", "sell_gap", "--start", "2024-10-07", "--end",
                                       "2024-10-08", "--workers", "2", "--scheduler",
                                       "tcp://127.0.0.1:1", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "not both" in result.output


def test_factor_command_writes_alphalens_sheets(demo_root, tmp_path):
    out = tmp_path / "gap"
    result = CliRunner().invoke(main, ["factor", "gap", "-b", "polygon-demo", "--start",
                                       "2024-10-01", "--end", "2024-10-31", "--periods", "1,5",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "information coefficient" in result.output and "6h30m" in result.output
    assert len(list(out.glob("sheet_*.png"))) >= 3
    assert "data:image/png;base64" in (out / "index.html").read_text()
    bad = CliRunner().invoke(main, ["factor", "nope", "--start", "2024-10-01", "--end",
                                    "2024-10-31", "-o", str(out)])
    assert bad.exit_code == 1 and "unknown factor" in bad.output

"""A start before a strategy's Pipeline look-back (issue #12, item 15): every algorithm declares
``LOOKBACK_SESSIONS`` (derived from its Pipeline), and ``algorithms.runner.run``, ``zipline run``
and the demo refuse -- or avoid -- a start the bundle's history cannot serve, naming the
earliest valid start instead of failing deep in zipline with ``NoDataOnDate``.

``polygon-demo`` starts 2024-07-01; microcap_short's sigma needs 100 sessions of closes.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from zipline.pipeline import Pipeline
from zipline.pipeline.data import EquityPricing
from zipline.pipeline.domain import US_EQUITIES
from zipline.pipeline.factors import Returns, SimpleMovingAverage
from zipline.pipeline.term import AssetExists
from zipline.utils.calendar_utils import get_calendar

from algorithms import buy_gap, gap_and_go, history, microcap_short, params, sell_gap
from algorithms import runner
from algorithms.runner import run
from tests.synth import quiet

REPO = Path(__file__).resolve().parents[2]
TOO_EARLY = ("microcap_short needs 100 sessions of daily history before its first session "
             "(its Pipeline's longest window plus the one-session lag); the bundle "
             "polygon-demo starts 2024-07-01, so the earliest start is 2024-11-20, not "
             "2024-10-09")


# ----------------------------------------------------------------------------- look-back
def test_each_algorithm_declares_its_lookback_from_its_pipeline():
    # the longest window + 1 session: sell/buy gap's 63-session std, microcap's 100-session
    # sigma, gap_and_go's 20-session windows
    assert {m.__name__: m.LOOKBACK_SESSIONS for m in (sell_gap, buy_gap, microcap_short,
                                                       gap_and_go)} == {
        "algorithms.sell_gap": 63, "algorithms.buy_gap": 63,
        "algorithms.microcap_short": 100, "algorithms.gap_and_go": 20}
    # derived, so it follows the parameters
    p = SimpleNamespace(**dict(params.module_params(vars(microcap_short)), SIGMA_WINDOW=150))
    assert history.algorithm_lookback(vars(microcap_short), p) == 150


def test_pipeline_lookback_walks_chained_windows():
    close = EquityPricing.close.latest
    assert history.pipeline_lookback(Pipeline(columns={"close": close})) == 1
    sma = SimpleMovingAverage(inputs=[EquityPricing.close], window_length=20)
    assert history.pipeline_lookback(Pipeline(columns={"close": close},
                                             screen=close > sma)) == 20
    # a window over a windowed term: 9 + 1 extra rows
    chained = SimpleMovingAverage(inputs=[Returns(window_length=2)], window_length=10)
    assert history.pipeline_lookback(Pipeline(columns={"x": chained})) == 11


@pytest.mark.parametrize("module", [sell_gap, buy_gap, microcap_short, gap_and_go])
def test_pipeline_lookback_agrees_with_zipline_execution_plan(module):
    root = AssetExists()
    pipeline = module.make_pipeline()
    plan = pipeline.to_execution_plan(US_EQUITIES, root, pd.Timestamp("2024-06-03"),
                                      pd.Timestamp("2024-06-05"))
    assert history.pipeline_lookback(pipeline) == plan.extra_rows[root] + 1


def test_check_history_names_the_earliest_start():
    sessions = get_calendar("XNYS").sessions
    with pytest.raises(ValueError) as info:
        history.check_history("microcap_short", 100, "2024-10-09", "2024-07-01", sessions,
                             bundle="polygon-demo")
    assert str(info.value).startswith(TOO_EARLY)
    assert history.check_history("microcap_short", 100, "2024-11-20", "2024-07-01",
                                sessions) == pd.Timestamp("2024-11-20")


# ----------------------------------------------------------------------------- the runner
def test_runner_refuses_a_start_before_the_lookback(env):
    with pytest.raises(ValueError) as info:
        run("microcap_short", "2024-10-09", "2024-10-10", environ=env)
    assert str(info.value).startswith(TOO_EARLY)
    assert "NoDataOnDate" not in str(info.value)


def test_runner_lookback_follows_overridden_windows(env):
    with pytest.raises(ValueError, match=r"microcap_short needs 150 sessions .* the earliest "
                                         r"start is 2025-02-05, not 2024-11-20"):
        run("microcap_short", "2024-11-20", "2024-11-20", environ=env, sigma_window=150)


def test_the_earliest_start_runs_and_the_session_before_does_not(env):
    first = runner.earliest_start("microcap_short", bundle="polygon-demo", environ=env)
    assert first == pd.Timestamp("2024-11-20")
    perf = quiet(run, "microcap_short", first, first, environ=env)  # no NoDataOnDate
    assert len(perf) == 1
    with pytest.raises(ValueError, match="earliest start is 2024-11-20, not 2024-11-19"):
        run("microcap_short", "2024-11-19", "2024-11-19", environ=env)
    assert runner.earliest_start("gap_and_go", environ=env) == pd.Timestamp("2024-07-30")


# ----------------------------------------------------------------------------- zipline run
def test_zipline_run_refuses_a_start_before_the_lookback_cleanly(env, tmp_path):
    """``zipline run`` does not go through the runner: ``initialize`` (common.prepare) checks."""
    cmd = [str(Path(sys.executable).parent / "zipline"), "-e", str(REPO / "extension.py"),
           "run", "-f", str(REPO / "algorithms" / "microcap_short.py"), "-b", "polygon-demo",
           "--data-frequency", "minute", "--no-benchmark", "-s", "2024-10-09",
           "-e", "2024-10-09", "-o", str(tmp_path / "perf.pickle")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert TOO_EARLY in " ".join(proc.stderr.split()), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "NoDataOnDate" not in proc.stderr


# ----------------------------------------------------------------------------- the demo
def test_demo_start_is_computed_not_hard_coded(env):
    from gapline import demo

    assert not hasattr(demo, "EARLIEST_START")
    assert demo.algorithm_start("microcap_short", "2024-10-01", environ=env) \
        == pd.Timestamp("2024-11-20")
    assert demo.algorithm_start("microcap_short", "2024-12-02", environ=env) \
        == pd.Timestamp("2024-12-02")
    assert demo.algorithm_start("sell_gap", "2024-10-01", environ=env) \
        == pd.Timestamp("2024-10-01")

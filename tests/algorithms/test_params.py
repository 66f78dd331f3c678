"""Algorithm parameters under hostile input (issue #12, item 16): names, types and ranges are
checked -- for ``algorithms.runner.run`` keywords and for ``zipline -x name=value`` alike --
and every error names the parameter and the value.

Most tests need no bundle (the checks run before zipline loads anything); the command-line
ones use ``polygon-demo``.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import zipline
from zipline.extensions import Namespace

from algorithms import buy_gap, gap_and_go, microcap_short, params, sell_gap
from algorithms.runner import run

REPO = Path(__file__).resolve().parents[2]
MODULES = {"sell_gap": sell_gap, "buy_gap": buy_gap, "microcap_short": microcap_short,
           "gap_and_go": gap_and_go}


@pytest.fixture
def x_args(monkeypatch):
    """Set ``zipline -x`` arguments for one test: ``x_args(top_n="3", polygon={"root": ...})``."""
    def set_args(**values):
        ns = Namespace()
        for key, value in values.items():
            if isinstance(value, dict):
                inner = Namespace()
                for k, v in value.items():
                    setattr(inner, k, v)
                value = inner
            setattr(ns, key, value)
        monkeypatch.setattr(zipline, "extension_args", ns)
    set_args()
    return set_args


def _load(module):
    """``initialize``'s parameter step on a bare context."""
    context = SimpleNamespace()
    return params.load_params(context, vars(module))


# ----------------------------------------------------------------------------- types
def test_x_arg_of_the_wrong_type_names_the_parameter_and_value(x_args):
    x_args(top_n="abc")
    with pytest.raises(ValueError, match=r"top_n \(TOP_N\) must be an integer, got 'abc'"):
        _load(sell_gap)
    x_args(position_value="nan")
    with pytest.raises(ValueError, match=r"position_value .* must be a finite number, got 'nan'"):
        _load(sell_gap)
    x_args(top_n="3", position_value="25000")
    p = _load(sell_gap)
    assert p.TOP_N == 3 and p.POSITION_VALUE == 25_000.0


@pytest.mark.parametrize("algo, params, message", [
    ("sell_gap", {"top_n": "abc"}, r"top_n \(TOP_N\) must be an integer, got 'abc'"),
    ("sell_gap", {"top_n": 2.5}, r"top_n \(TOP_N\) must be an integer, got 2\.5"),
    ("sell_gap", {"top_n": True}, r"top_n \(TOP_N\) must be an integer, got True"),
    ("sell_gap", {"top_n": -5}, r"top_n \(TOP_N\) must be >= 1, got -5"),
    ("sell_gap", {"top_n": 0}, r"top_n \(TOP_N\) must be >= 1, got 0"),
    ("sell_gap", {"position_value": float("nan")}, r"position_value .* finite number, got nan"),
    ("sell_gap", {"position_value": float("inf")}, r"position_value .* finite number, got inf"),
    ("sell_gap", {"position_value": -50_000.0}, r"position_value .* must be > 0, got -50000"),
    ("sell_gap", {"entry_minute": 0}, r"entry_minute .* must be >= 1 and <= 390, got 0"),
    ("buy_gap", {"variant": "sideways"},
     r"variant .* must be one of \['original', 'revised'\], got 'sideways'"),
    ("buy_gap", {"variant": 1}, r"variant .* must be a string, got 1"),
    ("microcap_short", {"short_fraction": 1.5}, r"short_fraction .* must be > 0 and <= 1"),
    ("microcap_short", {"max_positions": -1}, r"max_positions .* must be >= 1, got -1"),
    ("microcap_short", {"stop_pct": "-0.2"}, r"stop_pct .* must be > 0, got -0\.2"),
    ("gap_and_go", {"position_fraction": 0.0}, r"position_fraction .* must be > 0 and <= 1"),
    ("gap_and_go", {"min_pm_volume": -100}, r"min_pm_volume .* must be >= 0, got -100"),
])
def test_runner_rejects_bad_values_before_zipline_starts(algo, params, message, tmp_path):
    # an empty ZIPLINE_ROOT: the check must come before zipline looks for the bundle
    env = dict(os.environ, ZIPLINE_ROOT=str(tmp_path))
    with pytest.raises(ValueError, match=message):
        run(algo, "2024-11-01", "2024-11-01", environ=env, **params)


def test_bool_parameter_rejects_an_unknown_word():
    defaults = {"FLAG": False}
    assert params.resolve_params(defaults, {"flag": "yes"}, use_extension_args=False) \
        == {"FLAG": True}
    with pytest.raises(ValueError, match=r"flag \(FLAG\) must be true or false.*got 'maybe'"):
        params.resolve_params(defaults, {"flag": "maybe"}, use_extension_args=False)


# ----------------------------------------------------------------------------- names
def test_misspelt_x_argument_is_an_error_listing_the_known_ones(x_args):
    x_args(topn="5")
    with pytest.raises(TypeError, match=r"unknown -x argument topn=5") as info:
        _load(sell_gap)
    assert "top_n" in str(info.value) and "position_value" in str(info.value)


def test_runner_rejects_a_misspelt_keyword(tmp_path):
    env = dict(os.environ, ZIPLINE_ROOT=str(tmp_path))
    with pytest.raises(TypeError, match=r"unknown parameter 'topn'; valid: .*top_n"):
        run("sell_gap", "2024-11-01", "2024-11-01", environ=env, topn=5)


def test_x_argument_of_another_algorithm_is_ignored_with_a_warning(x_args, caplog):
    x_args(variant="revised", top_n="2", polygon={"root": "/somewhere"})
    with caplog.at_level(logging.WARNING, logger="algorithms.common"):
        p = _load(sell_gap)
    assert p.TOP_N == 2 and not hasattr(p, "VARIANT")
    assert "-x variant=revised ignored" in caplog.text
    # nested namespaces (bundle options) are never parameters
    assert "polygon" not in caplog.text


# ----------------------------------------------------------------------------- bounds
@pytest.mark.parametrize("name", list(MODULES))
def test_every_numeric_parameter_declares_bounds_the_defaults_meet(name):
    module = MODULES[name]
    defaults = params.module_params(vars(module))
    numeric = {k for k, v in defaults.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric <= set(module.PARAM_BOUNDS), numeric - set(module.PARAM_BOUNDS)
    assert params.resolve_params(defaults, use_extension_args=False,
                                 bounds=module.PARAM_BOUNDS) == defaults
    assert "LOOKBACK_SESSIONS" not in defaults and "PIPELINE_NAME" not in defaults


# ----------------------------------------------------------------------------- zipline run
@pytest.mark.parametrize("x_arg, message", [
    ("topn=5", "unknown -x argument topn=5"),
    ("top_n=abc", "parameter top_n (TOP_N) must be an integer, got 'abc'"),
    ("position_value=-1", "parameter position_value (POSITION_VALUE) must be > 0, got -1.0"),
])
def test_zipline_run_reports_a_bad_x_argument_without_a_traceback(x_arg, message, demo_root,
                                                                 tmp_path):
    env = dict(os.environ, ZIPLINE_ROOT=str(demo_root))
    cmd = [str(Path(sys.executable).parent / "zipline"), "-e", str(REPO / "extension.py"),
           "-x", x_arg, "run", "-f", str(REPO / "algorithms" / "sell_gap.py"),
           "-b", "polygon-demo", "--data-frequency", "minute", "--no-benchmark",
           "-s", "2024-11-01", "-e", "2024-11-01", "-o", str(tmp_path / "perf.pickle")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]

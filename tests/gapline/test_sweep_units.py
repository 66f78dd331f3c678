"""gapline sweep without a cluster: the grid, windows, task keys, walk-forward selection, the
ingestion check's refusal and the store's resume bookkeeping."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gapline.sweep import grid as g
from gapline.sweep.cluster import ClusterError, check_ingestions
from gapline.sweep.store import SweepStore
from gapline.sweep.tasks import Algorithm, Task, algorithm_for
from gapline.sweep.walkforward import walk_forward


def test_grid_is_the_product_of_the_named_values_in_order():
    grid = g.parse_grid(["top_n=5,10", "ENTRY_MINUTE=5, 10"])
    assert grid == {"top_n": ["5", "10"], "entry_minute": ["5", "10"]}
    assert g.expand(grid) == [{"top_n": "5", "entry_minute": "5"},
                              {"top_n": "5", "entry_minute": "10"},
                              {"top_n": "10", "entry_minute": "5"},
                              {"top_n": "10", "entry_minute": "10"}]
    assert g.expand({}) == [{}]


@pytest.mark.parametrize("spec, match", [("top_n", "NAME=V1"), ("top_n=", "no values"),
                                         ("top_n=5,5", "repeated"), ("1x=2", "NAME=V1")])
def test_bad_grid_specs_are_refused(spec, match):
    with pytest.raises(g.GridError, match=match):
        g.parse_grid([spec])
    with pytest.raises(g.GridError, match="twice"):
        g.parse_grid(["top_n=1", "top_n=2"])


def test_walk_forward_spans():
    wf = g.parse_walk_forward("2M:1M")
    assert (wf.in_sample_blocks, str(wf)) == (2, "2M:1M")
    assert g.parse_walk_forward(None) is None
    for bad, match in (("2M", "IN:OUT"), ("2M:2W", "same unit"), ("3M:2M", "whole number"),
                       ("0D:1D", "span")):
        with pytest.raises(g.GridError, match=match):
            g.parse_walk_forward(bad)


def test_blocks_by_sessions_weeks_and_months():
    sessions = pd.bdate_range("2024-09-30", "2024-12-31")
    by_days = g.blocks(sessions, g.Span(10, "D"))
    assert by_days[0] == (sessions[0], sessions[9]) and by_days[-1][1] == sessions[-1]
    assert sum(len(sessions[(sessions >= a) & (sessions <= b)]) for a, b in by_days) == len(sessions)
    months = g.blocks(sessions, g.Span(1, "M"))
    assert [(a.date().isoformat(), b.date().isoformat()) for a, b in months] == [
        ("2024-09-30", "2024-10-29"), ("2024-10-30", "2024-11-29"), ("2024-12-02", "2024-12-27"),
        ("2024-12-30", "2024-12-31")]
    weeks = g.blocks(sessions, g.Span(2, "W"))
    assert all((b - a).days < 14 for a, b in weeks)


def _task(**kw):
    base = dict(algorithm=Algorithm("sell_gap", "ab" * 32), params=(("top_n", 5),),
                costs="published", start="2024-10-01", end="2024-10-31", window=0,
                bundle="polygon-demo", ingestion="2024-01-01T00;00;00", checksum="c" * 64)
    base.update(kw)
    return Task(**base)


def test_task_keys_cover_what_the_result_depends_on():
    key = _task().key
    assert _task().key == key and _task(keep_perf=True).key == key
    assert _task(algorithm=Algorithm("sell_gap", "cd" * 32)).key != key   # file changed
    assert _task(ingestion="2024-02-01T00;00;00").key != key              # re-ingested
    assert _task(checksum="d" * 64).key != key
    assert _task(params=(("top_n", 10),)).key != key
    assert _task(costs="realistic").key != key
    assert _task(end="2024-11-29").key != key


def test_algorithm_hash_is_the_files(tmp_path):
    path = tmp_path / "algo.py"
    path.write_text("X = 1\n")
    first = algorithm_for(str(path))
    path.write_text("X = 2\n")
    assert algorithm_for(str(path)).sha256 != first.sha256
    assert algorithm_for("sell_gap").source is None


def test_walk_forward_chooses_in_sample_and_trades_the_next_block():
    sessions = pd.bdate_range("2024-01-01", periods=40)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.001, (40, 2))
    # "a" wins in the first half, "b" in the second
    drift = np.where(np.arange(40)[:, None] < 20, [[0.01, -0.01]], [[-0.01, 0.01]])
    matrix = pd.DataFrame(noise + drift, index=sessions, columns=["a", "b"])
    blocks = g.blocks(sessions, g.Span(10, "D"))
    result = walk_forward(matrix, blocks, in_sample_blocks=1)
    assert list(result.folds["chosen"]) == ["a", "a", "b"]
    oos = pd.concat([matrix["a"].iloc[10:20], matrix["a"].iloc[20:30], matrix["b"].iloc[30:40]])
    pd.testing.assert_series_equal(result.oos_returns, oos, check_names=False)
    assert result.in_sample_best in ("a", "b")
    assert result.best_returns.index.equals(oos.index)
    with pytest.raises(ValueError, match="more than 4 blocks"):
        walk_forward(matrix, blocks, in_sample_blocks=4)


class _FakeClient:
    def __init__(self, views):
        self.views = views

    def run(self, fn, *args):
        return self.views


def test_ingestion_check_refuses_workers_that_see_different_ingestions():
    same = {"host": "h", "zipline_root": "/shared", "ingestion": "2024-01-01T00;00;00",
            "checksum": "a" * 64, "path": "/shared/data/polygon-demo/2024-01-01T00;00;00"}
    ok = check_ingestions(_FakeClient({"tcp://1": same, "tcp://2": same}), "polygon-demo")
    assert ok["workers"] == 2 and ok["checksum"] == "a" * 64
    other = dict(same, checksum="b" * 64, host="h2", zipline_root="/local")
    with pytest.raises(ClusterError, match="do not all see the same ingestion") as exc:
        check_ingestions(_FakeClient({"tcp://1": same, "tcp://2": other}), "polygon-demo")
    assert "tcp://2 (host h2, ZIPLINE_ROOT=/local)" in str(exc.value)
    assert "shared" in str(exc.value).lower()
    missing = dict(same, ingestion=None, checksum=None, error="no data for bundle")
    with pytest.raises(ClusterError, match="no ingestion"):
        check_ingestions(_FakeClient({"tcp://1": same, "tcp://2": missing}), "polygon-demo")


def test_store_marks_a_task_finished_only_once_its_row_is_written(tmp_path):
    store = SweepStore(tmp_path)
    ok, bad = _task(), _task(costs="realistic")
    returns = pd.Series([0.01, -0.02], index=pd.DatetimeIndex(["2024-10-01", "2024-10-02"]))
    store.save(ok, {"row": {**ok.describe(), "sharpe": 1.0, "error": None}, "returns": returns})
    store.save(bad, {"row": {**bad.describe(), "sharpe": np.nan, "error": "boom"}})
    assert set(store.finished([ok, bad])) == {ok.key, bad.key}
    assert set(store.finished([ok, bad], retry_errors=True)) == {ok.key}
    pd.testing.assert_series_equal(store.returns(ok.key), returns, check_names=False,
                                   check_freq=False)
    store.write_results([ok, bad])
    frame = pd.read_parquet(tmp_path / "results.parquet")
    assert list(frame["key"]) == [ok.key, bad.key] and frame["error"].tolist() == [None, "boom"]
    assert not list(tmp_path.rglob("*.tmp"))

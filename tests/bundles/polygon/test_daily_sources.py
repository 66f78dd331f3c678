"""daily_sources (bundles.polygon.daily): each sid's daily-bar source against a plain oracle
on hand-built and random rows."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bundles.polygon.daily import daily_sources
from bundles.polygon.report import IngestReport


def _oracle(sources, row_sids, all_sids):
    out = {}
    for sid in all_sids:
        seen = {s for s, r in zip(sources, row_sids) if r == sid}
        out[sid] = None if not seen else seen.pop() if len(seen) == 1 else "mixed"
    return out


def _run(sources, row_sids, all_sids):
    sids = SimpleNamespace(assets=pd.DataFrame(index=pd.Index(all_sids, name="sid")))
    daily = pd.DataFrame({"source": sources})
    report = IngestReport()
    got = daily_sources(daily, np.asarray(row_sids, dtype=np.int64), sids, report)
    return {k: (None if pd.isna(v) else v) for k, v in got.items()}, report


def test_hand_built():
    got, report = _run(["minute", "day", "day", "minute", "day"], [0, 0, 1, 2, -1], [0, 1, 2, 3])
    assert got == {0: "mixed", 1: "day", 2: "minute", 3: None}
    assert report.daily_rows_by_source == {"day": 2, "minute": 2}  # the row without a sid: out
    assert report.daily_source_by_sid == {"mixed": 1, "day": 1, "minute": 1}


@pytest.mark.parametrize("seed", range(20))
def test_random_rows_match_the_oracle(seed):
    rng = np.random.default_rng(seed)
    n, n_sids = int(rng.integers(0, 60)), int(rng.integers(1, 12))
    sources = list(rng.choice(["minute", "day"], n))
    row_sids = list(rng.integers(-1, n_sids, n))
    got, _ = _run(sources, row_sids, list(range(n_sids)))
    assert got == _oracle(sources, row_sids, range(n_sids))

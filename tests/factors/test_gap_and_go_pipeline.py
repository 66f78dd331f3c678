"""``gap_and_go_pipeline``'s pre-open screen on polygon-demo: the Gap & Go article's liquidity
and float rules (``001_77709d99fd9024e0.txt`` lines 106-107) against plain pandas, and an
unknown share count rejected (the demo's dated history knows every count: one is blanked
here). Counts are point in time: known strictly before the session."""
from __future__ import annotations


import numpy as np
import pandas as pd

from algorithms import gap_and_go
from factors.reference import PolygonReference, PolygonReferenceLoader, read_reference_table
from factors.reference_history import read_reference_history
from factors.screens import gap_and_go_pipeline
from tests.oracle import vectorized as V

SESSIONS = ("2024-10-07", "2024-10-09")


def run(pipeline, env, table=None, history=None):
    from factors.loaders import run_pipeline

    custom = None
    if table is not None:
        loader = PolygonReferenceLoader(table, history)
        custom = {c: loader for c in PolygonReference.columns}
    out = run_pipeline(pipeline, *SESSIONS, bundle="polygon-demo", environ=env,
                       custom_loader=custom)
    return {pd.Timestamp(d).tz_localize(None): {a.sid for a in out.xs(d, level=0).index}
            for d in out.index.get_level_values(0).unique()}


def article_pipeline(require_shares=True):
    return gap_and_go_pipeline(min_price=None, min_avg_volume=100_000.0, max_shares=50e6,
                               require_shares=require_shares)


def test_pre_open_rules_equal_plain_pandas(env, ingestion):
    b = V.Bundle.open(ingestion)
    got = run(gap_and_go.make_pipeline(), env)   # the article's defaults
    assert len(got) == 3  # 10/07, 10/08, 10/09
    for session, sids in got.items():
        shares = b.shares_outstanding(session)  # dated: known strictly before the session
        h = b.history(session, 20, fields=("close", "volume"))
        ok = (b.common_stock(session) & b.alive(session) & h["close"].iloc[-1].notna()
              & (h["volume"].mean(axis=0) >= 100_000) & (shares <= 50e6))
        assert sids == set(ok.index[ok.fillna(False).to_numpy()]), session
        assert 0 < len(sids) < int((b.common_stock(session) & b.alive(session)).sum())


def test_unknown_share_count_is_rejected(env, ingestion):
    table = read_reference_table(ingestion)
    history = read_reference_history(ingestion)
    kept = run(article_pipeline(), env, table, history)
    sid = min(set.intersection(*kept.values()))           # a name the screen keeps
    blank = history.copy()
    blank.loc[blank["sid"] == sid, "shares_outstanding"] = np.nan
    assert all(sid not in sids for sids in run(article_pipeline(), env, table, blank).values())
    # the loose variant's reading: unknown passes
    assert all(sid in sids
               for sids in run(article_pipeline(False), env, table, blank).values())
    # a count above 50M fails
    big = history.copy()
    big.loc[big["sid"] == sid, "shares_outstanding"] = 50e6 + 1
    assert all(sid not in sids for sids in run(article_pipeline(), env, table, big).values())

"""``gap_and_go_pipeline``'s pre-open screen on polygon-demo: the Gap & Go article's liquidity
and float rules (``001_77709d99fd9024e0.txt`` lines 106-107) against plain pandas, and an
unknown share count rejected (the demo knows every count: one is blanked here)."""
from __future__ import annotations


import numpy as np
import pandas as pd

from algorithms import gap_and_go
from factors.reference import PolygonReference, PolygonReferenceLoader, read_reference_table
from factors.screens import gap_and_go_pipeline
from tests.oracle import vectorized as V

SESSIONS = ("2024-10-07", "2024-10-09")


def run(pipeline, env, table=None):
    from factors.loaders import run_pipeline

    custom = None
    if table is not None:
        loader = PolygonReferenceLoader(table)
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
    shares = pd.to_numeric(b.assets["share_class_shares_outstanding"]).combine_first(
        pd.to_numeric(b.assets["weighted_shares_outstanding"]))
    assert len(got) == 3  # 10/07, 10/08, 10/09
    for session, sids in got.items():
        h = b.history(session, 20, fields=("close", "volume"))
        ok = (b.common_stock(session) & b.alive(session) & h["close"].iloc[-1].notna()
              & (h["volume"].mean(axis=0) >= 100_000) & (shares <= 50e6))
        assert sids == set(ok.index[ok.fillna(False).to_numpy()]), session
        assert 0 < len(sids) < int((b.common_stock(session) & b.alive(session)).sum())


def test_unknown_share_count_is_rejected(env, ingestion):
    table = read_reference_table(ingestion)
    kept = run(article_pipeline(), env, table)
    sid = min(set.intersection(*kept.values()))           # a name the screen keeps
    blank = table.copy()
    blank.loc[sid, "shares_outstanding"] = np.nan
    assert all(sid not in sids for sids in run(article_pipeline(), env, blank).values())
    # the loose variant's reading: unknown passes
    assert all(sid in sids for sids in run(article_pipeline(False), env, blank).values())
    # a count above 50M fails
    big = table.copy()
    big.loc[sid, "shares_outstanding"] = 50e6 + 1
    assert all(sid not in sids for sids in run(article_pipeline(), env, big).values())

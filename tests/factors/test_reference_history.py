"""Point-in-time reference data: no session sees a value dated on or after it.

A hand-built history (values dated on sessions, a weekend, ties, NaN counts, a reused
ticker's two companies) is served by :class:`PolygonReferenceLoader`; the whole frame is
checked against a plain ``pandas.merge_asof`` (strictly before the session, per sid) and,
cell by cell, against "no row dated on or after the session".
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from factors.reference import PolygonReference, PolygonReferenceLoader
from factors.reference_history import asof_join, read_reference_history

D = pd.Timestamp
OLD, NEW, OTHER = 0, 1, 2  # OLD and NEW: one reused ticker (RELO), two companies


def _table():
    return pd.DataFrame({
        "security_type": ["CS", "CS", "ETF"],
        "primary_exchange": ["XNYS", "XNAS", "ARCX"],
        "start_date": [D("2024-01-02"), D("2024-03-01"), D("2024-01-02")],
        "end_date": [D("2024-02-09"), D("2024-04-30"), D("2024-04-30")],
    }, index=pd.Index([OLD, NEW, OTHER], name="sid"))


def _history():
    rows = [  # sid, asof_date, known_date, shares, type, exchange
        (OLD, "2023-12-29", "2024-01-05", 10e6, "CS", "XNYS"),
        (OLD, "2024-01-31", "2024-02-05", 12e6, None, None),
        (OLD, "2024-02-09", "2024-05-01", 13e6, "CS", "XNYS"),  # known after its life: never
        (NEW, "2024-02-29", "2024-03-04", 80e6, "CS", "XNAS"),  # the new company: big
        (NEW, "2024-03-09", "2024-03-09", 81e6, "ADRC", None),   # a Saturday
        (NEW, "2024-03-28", "2024-04-01", np.nan, None, None),   # unknown again (a split)
        (NEW, "2024-04-10", "2024-04-15", 320e6, None, "XNYS"),
        (OTHER, "2024-01-10", "2024-01-10", 5e6, None, None),
        (OTHER, "2024-01-10", "2024-01-10", 6e6, None, None),    # same day: the later row wins
        (OTHER, "2024-02-14", "2024-02-15", 7e6, "ETF", "BATS"),
    ]
    h = pd.DataFrame(rows, columns=["sid", "asof_date", "known_date", "shares_outstanding",
                                    "type", "primary_exchange"])
    for c in ("asof_date", "known_date"):
        h[c] = pd.to_datetime(h[c])
    return h


def _serve(history=None):
    from zipline.pipeline.domain import US_EQUITIES

    sessions = US_EQUITIES.sessions()
    dates = sessions[(sessions >= "2024-01-02") & (sessions <= "2024-05-03")]
    loader = PolygonReferenceLoader(_table(), _history() if history is None else history)
    cols = [PolygonReference.shares_outstanding, PolygonReference.security_type,
            PolygonReference.primary_exchange]
    sids = pd.Index([OLD, NEW, OTHER, 99])
    out = loader.load_adjusted_array(US_EQUITIES, cols, dates, sids, None)
    frame = pd.DataFrame({
        "date": np.repeat(dates.to_numpy(), len(sids)),
        "sid": np.tile(sids.to_numpy(), len(dates)),
        "shares_outstanding": out[cols[0]].data.ravel(),
        "security_type": out[cols[1]].data.as_string_array().ravel(),
        "primary_exchange": out[cols[2]].data.as_string_array().ravel(),
    })
    prev = sessions[sessions.searchsorted(dates) - 1]
    frame["as_of"] = np.repeat(prev.to_numpy(), len(sids))
    return frame


def _oracle(frame, history, value, date_col, skip_missing):
    """plain pandas: the latest row with ``date_col`` strictly before the session, per sid."""
    h = history.rename(columns={date_col: "key"})[["sid", "key", value]]
    if skip_missing:
        h = h[h[value].notna()]
    h = h.reset_index(drop=True).assign(_row=lambda x: np.arange(len(x)))
    h = h.sort_values(["key", "_row"], kind="stable")  # equal dates: the last row wins
    q = frame[["date", "sid"]].reset_index().sort_values("date", kind="stable")
    got = pd.merge_asof(q, h, left_on="date", right_on="key", by="sid",
                        allow_exact_matches=False, direction="backward")
    return got.set_index("index")[value].reindex(frame.index)


def test_every_session_sees_the_latest_value_dated_before_it_and_never_a_later_one():
    history = _history()
    frame = _serve()
    table = _table().reindex(frame["sid"])
    alive = ((frame["as_of"].to_numpy() >= table["start_date"].to_numpy())
             & (frame["as_of"].to_numpy() <= table["end_date"].to_numpy()))
    # shares: dated by known_date, a NaN row counts (unknown), no fallback to a snapshot
    expect = _oracle(frame, history, "shares_outstanding", "known_date", False).where(alive)
    np.testing.assert_array_equal(frame["shares_outstanding"].to_numpy(), expect.to_numpy())
    # type / exchange: dated by asof_date, rows without a value skipped, the table's value
    # before the first dated one
    for served, col in (("security_type", "type"), ("primary_exchange", "primary_exchange")):
        dated = _oracle(frame, history, col, "asof_date", True)
        expect = dated.fillna(pd.Series(table[served].to_numpy(), index=frame.index))
        expect = expect.where(alive, "")
        assert frame[served].tolist() == expect.tolist(), served

    # never a value dated on or after the session: every served count is the count of a row
    # known strictly before it (and the latest such row)
    for row in frame[frame["shares_outstanding"].notna()].itertuples():
        mine = history[(history["sid"] == row.sid)]
        before = mine[mine["known_date"] < row.date]
        assert len(before) and before["shares_outstanding"].iloc[-1] == row.shares_outstanding
        later = mine[mine["known_date"] >= row.date]["shares_outstanding"]
        assert row.shares_outstanding not in set(later) - set(before["shares_outstanding"])


def test_spot_checks_of_the_rule():
    f = _serve().set_index(["date", "sid"])
    shares = f["shares_outstanding"]
    assert np.isnan(shares[(D("2024-01-05"), OLD)])          # known 01-05: not on 01-05
    assert shares[(D("2024-01-08"), OLD)] == 10e6             # the next session
    assert shares[(D("2024-02-06"), OLD)] == 12e6
    assert shares[(D("2024-02-12"), OLD)] == 12e6             # as of 02-09, its last day
    assert np.isnan(shares[(D("2024-02-13"), OLD)])           # OLD's life ended 02-09
    # the reused ticker: the new company's 80M never reaches the old company's sid
    assert set(f.xs(OLD, level="sid")["shares_outstanding"].dropna()) == {10e6, 12e6}
    assert np.isnan(shares[(D("2024-03-04"), NEW)])
    assert shares[(D("2024-03-05"), NEW)] == 80e6
    assert shares[(D("2024-03-11"), NEW)] == 81e6             # dated Saturday: seen Monday
    assert f.loc[(D("2024-03-11"), NEW), "security_type"] == "ADRC"
    assert f.loc[(D("2024-03-08"), NEW), "security_type"] == "CS"
    assert np.isnan(shares[(D("2024-04-02"), NEW)])           # a NaN row: unknown again
    assert shares[(D("2024-04-16"), NEW)] == 320e6
    assert f.loc[(D("2024-04-10"), NEW), "primary_exchange"] == "XNAS"   # dated 04-10: not yet
    assert f.loc[(D("2024-04-11"), NEW), "primary_exchange"] == "XNYS"
    assert shares[(D("2024-01-11"), OTHER)] == 6e6            # ties: the later row
    assert f.loc[(D("2024-01-11"), OTHER), "security_type"] == "ETF"  # the table's value
    assert f.loc[(D("2024-02-16"), OTHER), "primary_exchange"] == "BATS"
    assert f.xs(99, level="sid")["security_type"].eq("").all()


def test_no_history_means_unknown_counts_not_the_snapshot(tmp_path, caplog):
    side = tmp_path / "gapline"
    side.mkdir()
    pd.DataFrame({"sid": [0], "ticker": ["AAA"], "type": ["CS"], "primary_exchange": ["XNAS"],
                  "share_class_shares_outstanding": [12e6],
                  "start_date": [D("2024-01-02")], "end_date": [D("2024-04-30")]}
                 ).to_parquet(side / "assets.parquet", index=False)
    assert read_reference_history(tmp_path) is None
    frame_loader = PolygonReferenceLoader(tmp_path)
    from zipline.pipeline.domain import US_EQUITIES

    dates = pd.DatetimeIndex(["2024-02-01", "2024-02-02"])
    cols = [PolygonReference.shares_outstanding, PolygonReference.security_type]
    out = frame_loader.load_adjusted_array(US_EQUITIES, cols, dates, pd.Index([0]), None)
    assert np.isnan(out[cols[0]].data).all()
    assert out[cols[1]].data.as_string_array().tolist() == [["CS"], ["CS"]]
    assert "re-ingest" in caplog.text


def test_asof_join_pairs():
    h = _history()
    got = asof_join(h, "shares_outstanding", [OLD, OLD, NEW, 7],
                    pd.to_datetime(["2024-01-05", "2024-01-06", "2024-04-16", "2024-04-16"]))
    np.testing.assert_array_equal(got, [np.nan, 10e6, 320e6, np.nan])
    with pytest.raises(ValueError, match="no date column"):
        asof_join(h, "cik", [0], [D("2024-01-05")])


# ----------------------------------------------------------------------------- polygon-demo
def test_demo_pipeline_counts_are_point_in_time(env, ingestion, demo_root):
    """On the demo bundle: the Pipeline's SharesOutstanding over every session and sid equals
    the merge_asof oracle on the ingested history; the offering's count changes only once it
    is known; the reused ticker's old company never shows the new company's count."""
    import json

    from zipline.pipeline import Pipeline

    from factors.loaders import run_pipeline
    from factors.reference import SharesOutstanding
    from tests.demo_fixture import demo_raw_root

    history = read_reference_history(ingestion)
    assert set(history["source"]) >= {"dated", "split", "snapshot"}
    out = run_pipeline(Pipeline(columns={"shares": SharesOutstanding()}), "2024-07-02",
                       "2024-12-31", bundle="polygon-demo", environ=env)
    frame = out.reset_index()
    frame = pd.DataFrame({"date": pd.to_datetime(frame["level_0"]).dt.tz_localize(None),
                          "sid": [a.sid for a in frame["level_1"]],
                          "shares": frame["shares"].to_numpy()})
    expect = _oracle(frame, history, "shares_outstanding", "known_date", False)
    np.testing.assert_array_equal(frame["shares"].to_numpy(), expect.to_numpy())
    assert frame["shares"].notna().mean() > 0.9  # sampled 90+ days before the demo starts

    manifest = json.loads((demo_raw_root(demo_root) / "raw" / "demo_manifest.json").read_text())
    offering = manifest["dated_details"]["offering"]
    assets = pd.read_parquet(ingestion / "gapline" / "assets.parquet").set_index("sid")
    sid = assets.index[assets["ticker"] == offering["ticker"]][0]
    seen = frame[frame["sid"] == sid].set_index("date")["shares"]
    before, after = seen.iloc[0], seen.iloc[-1]
    assert after == pytest.approx(before * offering["ratio"], rel=1e-6)
    first_after = seen.index[seen == after][0]
    # the July 31 sample shows the offering; known 90 days later, seen the session after
    assert first_after > D("2024-07-31") + pd.Timedelta(days=90)
    relo = assets[assets["ticker"] == "RELO"]
    old = relo.index[relo["active"] == False][0]  # noqa: E712
    new = relo.index[relo["active"] == True][0]  # noqa: E712
    new_counts = set(history.loc[history["sid"] == new, "shares_outstanding"].dropna())
    assert new_counts and not new_counts & set(frame.loc[frame["sid"] == old, "shares"].dropna())

"""``gapline/reference_history.parquet``: dated samples given to the right company's sid, the
share-count lag, splits, the undated snapshot dated by its fetch day, and clear errors."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from bundles import layout, reference_history
from bundles.polygon.history import reference_history_table
from bundles.polygon.reference import load_reference_assets
from bundles.polygon.report import IngestReport
from bundles.polygon.sids import assign_sids
from bundles.reference_files import ReferenceDataError

D = pd.Timestamp
FA, FB, FC = "BBG000RELOA", "BBG000RELOB", "BBG000AAAAA"


def _cache(root):
    layout.write_reference(root, "tickers", [
        {"ticker": "RELO", "name": "Relo A", "type": "CS", "active": False,
         "delisted_utc": "2024-02-10T00:00:00Z", "composite_figi": FA, "cik": "0000000111"},
        {"ticker": "RELO", "name": "Relo B", "type": "CS", "active": True,
         "composite_figi": FB, "cik": "0000000222"},
        {"ticker": "AAA", "name": "Triple A", "type": "CS", "active": True,
         "composite_figi": FC, "cik": "333"},
    ])
    layout.write_reference(root, "splits", [
        {"ticker": "AAA", "execution_date": "2024-03-15", "split_from": 1, "split_to": 2}])
    layout.write_reference(root, "ticker_details", [
        {"ticker": "AAA", "composite_figi": FC, "share_class_shares_outstanding": 10e6,
         "type": "CS", "primary_exchange": "XNAS"}])
    fetched = D("2024-06-01 12:00", tz="America/New_York").timestamp()
    os.utime(layout.reference_dir(root) / "ticker_details.json", (fetched, fetched))
    samples = [
        ("RELO", "2024-01-15", {"ticker": "RELO", "share_class_shares_outstanding": 9e6}),
        ("RELO", "2024-01-31", {"ticker": "RELO", "composite_figi": FA, "cik": "111",
                                "share_class_shares_outstanding": 10e6, "type": "CS"}),
        ("RELO", "2024-02-29", None),  # between the two companies: Polygon had nothing
        ("RELO", "2024-03-28", {"ticker": "RELO", "composite_figi": FB, "type": "CS",
                                "primary_exchange": "XNAS",
                                "share_class_shares_outstanding": 80e6}),
        ("RELO", "2024-04-30", {"ticker": "RELO", "cik": 222,
                                "weighted_shares_outstanding": 81e6}),
        ("AAA", "2024-01-31", {"ticker": "AAA", "composite_figi": FC,
                               "share_class_shares_outstanding": 5e6}),
        ("AAA", "2024-02-15", {"ticker": "AAA", "composite_figi": "BBG000OTHER",
                               "share_class_shares_outstanding": 1e9}),  # another company
        ("AAA", "2024-02-29", {"ticker": "AAA", "composite_figi": FC,
                               "share_class_shares_outstanding": 5.5e6}),
        ("AAA", "2024-03-15", {"ticker": "AAA", "composite_figi": FC,
                               "share_class_shares_outstanding": 11e6}),
    ]
    for ticker, day, results in samples:
        assert reference_history.write_dated_details(root, ticker, day, results)
    return samples


def _sids(root):
    days = pd.bdate_range("2024-01-02", "2024-04-30")
    relo = [d for d in days if d <= D("2024-02-09") or d >= D("2024-03-01")]
    daily = pd.DataFrame({"ticker": ["RELO"] * len(relo) + ["AAA"] * len(days),
                          "day": list(relo) + list(days)})
    return assign_sids(daily, load_reference_assets(root))


def test_samples_go_to_their_company_with_the_lag_and_splits(tmp_path):
    _cache(tmp_path)
    sids = _sids(tmp_path)
    a = sids.assets
    old, new = (a[(a["ticker"] == "RELO") & (a["composite_figi"] == f)].index[0] for f in (FA, FB))
    aaa = a[a["ticker"] == "AAA"].index[0]
    report = IngestReport()
    h = reference_history_table(tmp_path, sids, lag_days=30, report=report)
    rows = {(int(r.sid), f"{r.asof_date:%Y-%m-%d}", r.source): r for r in h.itertuples()}
    # the old company: its FIGI sample and the identifier-less one of its period
    assert {k[1] for k in rows if k[0] == old} == {"2024-01-15", "2024-01-31"}
    # the new company: by FIGI, and by CIK (222 == 0000000222)
    assert {k[1] for k in rows if k[0] == new} == {"2024-03-28", "2024-04-30"}
    assert rows[(new, "2024-04-30", "dated")].shares_outstanding == 81e6  # weighted fallback
    assert report.file_counts["reference_samples_of_other_companies"] == 1  # the 1e9 one
    assert 1e9 not in set(h["shares_outstanding"])
    # lag: dated counts known 30 days after their sample date
    dated = h[h["source"] == "dated"]
    assert ((dated["known_date"] - dated["asof_date"]) == pd.Timedelta(days=30)).all()
    # AAA: a split on 03-15 makes the count unknown from that session; the 02-29 sample
    # (pre-split shares, known only on 03-30) is left out; the split-day sample stays
    mine = h[h["sid"] == aaa]
    assert list(zip(mine["asof_date"].dt.strftime("%Y-%m-%d"), mine["source"])) == [
        ("2024-01-31", "dated"), ("2024-03-14", "split"), ("2024-03-15", "dated"),
        ("2024-06-01", "snapshot")]
    split = mine[mine["source"] == "split"].iloc[0]
    assert np.isnan(split["shares_outstanding"]) and split["known_date"] == D("2024-03-14")
    # the snapshot counts from its fetch day on, never before, without a lag
    snap = mine[mine["source"] == "snapshot"].iloc[0]
    assert snap["known_date"] == snap["asof_date"] == D("2024-06-01")
    assert h["known_date"].is_monotonic_increasing is False  # sorted per sid, not globally
    assert (h.groupby("sid")["known_date"].apply(lambda s: s.is_monotonic_increasing)).all()


def test_pure_function_of_its_inputs(tmp_path):
    _cache(tmp_path)
    sids = _sids(tmp_path)
    pd.testing.assert_frame_equal(reference_history_table(tmp_path, sids, 30),
                                  reference_history_table(tmp_path, sids, 30))


def test_a_cache_with_only_the_undated_snapshot(tmp_path):
    _cache(tmp_path)
    import shutil

    shutil.rmtree(reference_history.dated_details_dir(tmp_path))
    h = reference_history_table(tmp_path, _sids(tmp_path), 30)
    assert set(h["source"]) == {"snapshot", "split"}
    assert h.loc[h["source"] == "snapshot", "known_date"].eq(D("2024-06-01")).all()


def test_bad_sample_names_file_ticker_and_date(tmp_path):
    _cache(tmp_path)
    path = reference_history.dated_details_path(tmp_path, "AAA", "2024-04-30")
    path.write_text('{"ticker": "AAA", "date": "2024-04-30", "results": '
                    '{"ticker": "AAA", "share_class_shares_outstanding": "many"}}')
    with pytest.raises(ReferenceDataError) as err:
        reference_history.read_dated_details(tmp_path)
    text = str(err.value)
    assert str(path) in text and "'AAA'" in text and "2024-04-30" in text and "many" in text
    skipped = []
    got = reference_history.read_dated_details(tmp_path, "skip", skipped)
    assert len(skipped) == 1 and all(s["file"] != str(path) for s in got)
    path.write_text("{not json")
    with pytest.raises(ReferenceDataError, match="not valid JSON"):
        reference_history.read_dated_details(tmp_path)


def test_dated_path_is_one_folder_per_ticker(tmp_path):
    path = reference_history.dated_details_path(tmp_path, "BRK.A", D("2024-01-31"))
    assert path.parent.name == "BRK_2eA" and path.name == "2024-01-31.json"
    assert reference_history.write_dated_details(tmp_path, "BRK.A", "2024-01-31", None)
    assert not reference_history.write_dated_details(tmp_path, "BRK.A", "2024-01-31", {})


def test_written_side_table_and_a_note_without_dated_details(tmp_path):
    import shutil

    from bundles.polygon.history import write_reference_history

    _cache(tmp_path)
    sids = _sids(tmp_path)
    out = tmp_path / "ingestion"
    report = IngestReport()
    n = write_reference_history(out, tmp_path, sids, 30, report=report)
    assert n == len(pd.read_parquet(out / "gapline" / "reference_history.parquet")) > 0
    assert report.file_counts["reference_history_rows"] == n and not report.notes
    shutil.rmtree(reference_history.dated_details_dir(tmp_path))
    write_reference_history(out, tmp_path, sids, 30, report=report)
    assert any("no dated ticker details" in m and "2024-06-01" in m for m in report.notes)

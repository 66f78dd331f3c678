"""Issue #12, item 4: reference files in the wrong shape are rejected on read.

A ``tickers.json`` that is a dict, a list of strings or records without ``ticker`` used to be
accepted silently: every asset got no type, so ``CommonStock()`` selected nothing. Now a wholly
wrong shape always fails, naming the file and what is wrong; a single bad record fails naming
the file, the record index and the field (``bad_rows="raise"``), or is skipped and reported
(``bad_rows="skip"``).
"""
from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

from bundles import layout, reference_files
from bundles.polygon import PolygonBundleConfig, build_bundle
from bundles.polygon.reference import load_reference_assets
from bundles.polygon.report import IngestReport
from tests.synth import minute_rows, write_minute_days

GOOD = [{"ticker": "AAA", "name": "Alpha", "type": "CS", "primary_exchange": "XNAS",
         "active": True, "composite_figi": "BBG000AAA", "cik": "0000000001"},
        {"ticker": "BBB", "name": "Beta", "type": "ETF", "primary_exchange": None,
         "active": False, "delisted_utc": "2024-07-04T00:00:00Z"}]
GOOD_DETAILS = [{"ticker": "AAA", "composite_figi": "BBG000AAA", "list_date": "1999-01-04",
                 "share_class_shares_outstanding": 5e8, "weighted_shares_outstanding": 499000000}]


def _root(tmp_path, tickers=GOOD, details=GOOD_DETAILS):
    root = tmp_path / "raw"
    layout.write_reference(root, "tickers", tickers)
    layout.write_reference(root, "ticker_details", details)
    return root


def _raw_json(root, name, text):
    (layout.reference_dir(root) / f"{name}.json").write_text(text)


WRONG_SHAPES = [
    ('{"results": [{"ticker": "AAA", "type": "CS"}], "status": "OK"}',
     r"is a JSON object.*expected a JSON list.*'results'"),
    ('{"AAA": "CS", "BBB": "ETF"}', r"is a JSON object.*expected a JSON list"),
    ('["AAA", "BBB"]', r"record \[0\] is a string, expected an object"),
    ('[{"symbol": "AAA", "type": "CS"}, {"symbol": "BBB", "type": "ETF"}]',
     r"record \[0\]: ticker is missing"),
    ('[{"ticker": null}, {"ticker": 5}]', r"record \[0\]: ticker is missing"),
    ('"AAA"', r"is a string, expected a JSON list"),
    ("3", r"is a number, expected a JSON list"),
]


@pytest.mark.parametrize("text, pattern", WRONG_SHAPES)
@pytest.mark.parametrize("bad_rows", ["raise", "skip"])
def test_wholly_wrong_tickers_json_always_fails(tmp_path, text, pattern, bad_rows):
    root = _root(tmp_path)
    _raw_json(root, "tickers", text)
    with pytest.raises(ValueError) as err:
        load_reference_assets(root, bad_rows=bad_rows, report=IngestReport())
    msg = str(err.value)
    assert "raw/reference/tickers.json" in msg, msg
    assert re.search(pattern, msg), msg


@pytest.mark.parametrize("text, pattern", WRONG_SHAPES)
def test_wholly_wrong_tickers_json_fails_by_default(tmp_path, text, pattern):
    root = _root(tmp_path)
    _raw_json(root, "tickers", text)
    with pytest.raises(ValueError, match=r"raw/reference/tickers\.json"):
        load_reference_assets(root)


BAD_TICKERS = [
    ({"name": "No ticker", "type": "CS"}, "ticker is missing"),
    ({"ticker": "", "type": "CS"}, "ticker '' is empty"),
    ({"ticker": 7, "type": "CS"}, "ticker 7 is not a string"),
    ({"ticker": "CCC", "type": 5}, "type 5 is not a string or null"),
    ({"ticker": "CCC", "type": ["CS"]}, "type ['CS'] is not a string or null"),
    ({"ticker": "CCC", "primary_exchange": {"mic": "XNAS"}},
     "primary_exchange {'mic': 'XNAS'} is not a string or null"),
    ({"ticker": "CCC", "name": 1.5}, "name 1.5 is not a string or null"),
    ({"ticker": "CCC", "active": "yes"}, "active 'yes' is not true, false or null"),
    ({"ticker": "CCC", "delisted_utc": "last year"}, "delisted_utc 'last year' is not a date"),
    ({"ticker": "CCC", "composite_figi": 12}, "composite_figi 12 is not a string or null"),
    ("CCC", "record [2] is a string, expected an object"),
    (["CCC", "CS"], "record [2] is a list, expected an object"),
]


@pytest.mark.parametrize("record, reason", BAD_TICKERS)
def test_bad_ticker_record_is_rejected_naming_file_record_and_field(tmp_path, record, reason):
    root = _root(tmp_path, tickers=GOOD + [record])
    with pytest.raises(ValueError) as err:
        load_reference_assets(root)
    msg = str(err.value)
    assert "raw/reference/tickers.json: record [2]" in msg and reason in msg, msg
    assert "bad_rows=skip" in msg, msg  # says what to do


@pytest.mark.parametrize("record, reason", BAD_TICKERS)
def test_bad_ticker_record_is_skipped_and_reported(tmp_path, record, reason):
    root = _root(tmp_path, tickers=GOOD + [record])
    report = IngestReport()
    ref = load_reference_assets(root, bad_rows="skip", report=report)
    assert list(ref["ticker"]) == ["AAA", "BBB"]
    assert list(ref["type"]) == ["CS", "ETF"]
    (msg,) = report.skipped_rows
    assert "raw/reference/tickers.json: record [2]" in msg and reason in msg, msg
    assert report.file_counts["bad_reference_records"] == 1


def test_skip_without_a_report_logs_a_warning(tmp_path, caplog):
    root = _root(tmp_path, tickers=GOOD + [{"ticker": "CCC", "type": 5}])
    with caplog.at_level(logging.WARNING):
        ref = load_reference_assets(root, bad_rows="skip")
    assert list(ref["ticker"]) == ["AAA", "BBB"]
    assert "tickers.json: record [2], ticker 'CCC': type 5 is not a string or null" in caplog.text


BAD_DETAILS = [
    ({"composite_figi": "BBG000CCC"}, "ticker is missing"),
    ({"ticker": "CCC", "share_class_shares_outstanding": "many"},
     "share_class_shares_outstanding 'many' is not a number"),
    ({"ticker": "CCC", "weighted_shares_outstanding": -5}, "weighted_shares_outstanding -5 is < 0"),
    ({"ticker": "CCC", "share_class_shares_outstanding": float("inf")},
     "share_class_shares_outstanding inf is not finite"),
    ({"ticker": "CCC", "list_date": "someday"}, "list_date 'someday' is not a date"),
    ({"ticker": "CCC", "composite_figi": ["x"]}, "composite_figi ['x'] is not a string or null"),
]


@pytest.mark.parametrize("record, reason", BAD_DETAILS)
def test_bad_detail_record_is_rejected_or_skipped(tmp_path, record, reason):
    root = _root(tmp_path, details=GOOD_DETAILS + [record])
    with pytest.raises(ValueError) as err:
        load_reference_assets(root)
    assert "raw/reference/ticker_details.json: record [1]" in str(err.value)
    assert reason in str(err.value)
    report = IngestReport()
    ref = load_reference_assets(root, bad_rows="skip", report=report)
    assert ref.set_index("ticker").loc["AAA", "share_class_shares_outstanding"] == 5e8
    (msg,) = report.skipped_rows
    assert "ticker_details.json: record [1]" in msg and reason in msg


@pytest.mark.parametrize("text", ['{"results": []}', '["AAA"]', '[{"name": "x"}]'])
@pytest.mark.parametrize("bad_rows", ["raise", "skip"])
def test_wholly_wrong_ticker_details_always_fails(tmp_path, text, bad_rows):
    root = _root(tmp_path)
    _raw_json(root, "ticker_details", text)
    with pytest.raises(ValueError, match=r"raw/reference/ticker_details\.json"):
        load_reference_assets(root, bad_rows=bad_rows, report=IngestReport())


@pytest.mark.parametrize("name", layout.REFERENCE_FILES)
def test_read_reference_checks_every_file_and_keeps_good_files_as_they_were(tmp_path, name):
    root = tmp_path
    layout.write_reference(root, name, [])
    assert reference_files.read_reference(root, name) == []
    (layout.reference_dir(root) / f"{name}.json").write_text('{"results": []}')
    with pytest.raises(ValueError, match=rf"{name}\.json.*expected a JSON list"):
        reference_files.read_reference(root, name)
    with pytest.raises(ValueError, match=rf"{name}\.json.*expected a JSON list"):
        reference_files.read_reference(root, name, bad_rows="skip")


def test_read_reference_skip_lists_what_it_dropped(tmp_path):
    layout.write_reference(tmp_path, "tickers", GOOD + [{"ticker": "CCC", "active": "no"}])
    skipped = []
    got = reference_files.read_reference(tmp_path, "tickers", bad_rows="skip", skipped=skipped)
    assert got == GOOD
    assert len(skipped) == 1 and "record [2], ticker 'CCC': active 'no'" in skipped[0]
    with pytest.raises(ValueError, match=r"record \[2\], ticker 'CCC': active 'no'"):
        reference_files.read_reference(tmp_path, "tickers")


def test_polygon_records_with_every_field_are_accepted(tmp_path):
    """The fields Polygon sends (and nulls where it sends them) all pass."""
    ticker = {"ticker": "AAPL", "name": "Apple Inc.", "market": "stocks", "locale": "us",
              "primary_exchange": "XNAS", "type": "CS", "active": True, "currency_name": "usd",
              "cik": "0000320193", "composite_figi": "BBG000B9XRY4",
              "share_class_figi": "BBG001S5N8V8", "last_updated_utc": "2024-07-09T00:00:00Z"}
    delisted = dict(ticker, ticker="OLD", active=False, cik=None, composite_figi=None,
                    share_class_figi=None, primary_exchange=None, type=None,
                    delisted_utc="2019-06-01T00:00:00Z")
    detail = {"ticker": "AAPL", "name": "Apple Inc.", "type": "CS", "active": True,
              "list_date": "1980-12-12", "share_class_shares_outstanding": 15441881000,
              "weighted_shares_outstanding": 15441881000, "market_cap": 3.3e12,
              "primary_exchange": "XNAS", "composite_figi": "BBG000B9XRY4",
              "share_class_figi": "BBG001S5N8V8", "cik": "0000320193", "sic_code": "3571",
              "sic_description": "ELECTRONIC COMPUTERS", "currency_name": "usd",
              "delisted_utc": None, "round_lot": 100}
    root = _root(tmp_path, tickers=[ticker, delisted], details=[detail])
    ref = load_reference_assets(root)
    assert list(ref["ticker"]) == ["AAPL", "OLD"]
    assert ref.loc[1, "delisted_date"] == pd.Timestamp("2019-05-31")  # ET date of 00:00 UTC
    assert ref.loc[0, "list_date"] == "1980-12-12"


def test_no_type_anywhere_is_warned_about(tmp_path, caplog):
    """Records that all lack ``type`` are valid Polygon records, but then no type-based
    universe (``types=CS``, ``CommonStock()``) can select anything: say so."""
    root = _root(tmp_path, tickers=[{"ticker": "AAA"}, {"ticker": "BBB", "type": None}])
    report = IngestReport()
    with caplog.at_level(logging.WARNING):
        load_reference_assets(root, report=report)
    assert "no record of" in caplog.text and "tickers.json has a 'type'" in caplog.text
    assert any("tickers.json has a 'type'" in n for n in report.notes)


# ---------------------------------------------------------------------------- whole ingests
DAY = "2024-07-09"


@pytest.mark.parametrize("text", ['{"results": [{"ticker": "AAA", "type": "CS"}]}',
                                  '["AAA"]', '[{"symbol": "AAA", "type": "CS"}]'])
def test_ingest_stops_on_a_wrong_shaped_tickers_json(tmp_path, text):
    root, rng = tmp_path / "raw", np.random.default_rng(8)
    write_minute_days(root, minute_rows("AAA", DAY, 20.0, rng, "09:30", "09:40"))
    layout.write_reference(root, "tickers", [])
    _raw_json(root, "tickers", text)
    for bad_rows in ("raise", "skip"):
        with pytest.raises(ValueError, match=r"raw/reference/tickers\.json"):
            build_bundle("test-shape", PolygonBundleConfig(root=root, bad_rows=bad_rows),
                         tmp_path / "z")


def test_ingest_stops_on_a_bad_tickers_record(tmp_path):
    root, rng = tmp_path / "raw", np.random.default_rng(8)
    write_minute_days(root, minute_rows("AAA", DAY, 20.0, rng, "09:30", "09:40"))
    layout.write_reference(root, "tickers", [{"ticker": "AAA", "type": "CS"},
                                             {"ticker": "BBB", "type": {"code": "CS"}}])
    with pytest.raises(ValueError, match=r"tickers\.json: record \[1\], ticker 'BBB': type"):
        build_bundle("test-shape-rec", PolygonBundleConfig(root=root), tmp_path / "z")


def test_download_universe_reads_validated_tickers(tmp_path):
    """``gapline download`` picks its universe from tickers.json through the same reader."""
    from bundles.download import universe

    layout.write_reference(tmp_path, "tickers", GOOD)
    assert universe(reference_files.read_reference(tmp_path, "tickers"), ("CS",), "2024-01-01") == ["AAA"]
    _raw_json(tmp_path, "tickers", json.dumps({"results": GOOD}))
    with pytest.raises(ValueError, match="tickers.json"):
        reference_files.read_reference(tmp_path, "tickers")


def test_ingest_with_skip_drops_a_bad_tickers_record_and_reports_it(tmp_path):
    root, rng = tmp_path / "raw", np.random.default_rng(8)
    write_minute_days(root, pd.concat([minute_rows(t, DAY, 20.0, rng, "09:30", "09:40")
                                       for t in ("AAA", "BBB")]))
    layout.write_reference(root, "tickers", [{"ticker": "AAA", "type": "CS"},
                                             {"ticker": "BBB", "type": {"code": "CS"}}])
    data = build_bundle("test-shape-skip", PolygonBundleConfig(root=root, bad_rows="skip"),
                        tmp_path / "z")
    assert len(data.asset_finder.sids) == 2  # BBB's bars stay; it has no reference entry
    report = json.loads(next((tmp_path / "z").rglob("ingest_report.json")).read_text())
    assert any("tickers.json: record [1], ticker 'BBB': type" in m for m in report["skipped_rows"])
    assert report["file_counts"]["bad_reference_records"] == 1

"""Issue #12, item 2: every split and dividend record is validated before it becomes an
adjustment.

``split_from`` 0, ``split_to`` 0, negative ratios and negative ``cash_amount`` used to be
stored as ratios 0, inf, -0.25 and 1.05 (adjusted history reading 0.0, inf, -2.52 or inflated
prices); a missing field, a non-numeric ratio or a bad date crashed with a bare KeyError /
ValueError / DateParseError. Now each bad record is rejected (``bad_rows="raise"``) or skipped
and reported (``bad_rows="skip"``) with the file, the record index, the ticker and the field.
"""
from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

from bundles import layout
from bundles.polygon import PolygonBundleConfig, build_bundle
from bundles.polygon.adjustments import write_adjustments
from bundles.polygon.report import IngestReport
from bundles.polygon.sids import SidMap
from tests.synth import minute_rows, write_minute_days

SESSIONS = pd.DatetimeIndex(["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05",
                             "2024-07-08", "2024-07-09", "2024-07-10"])
CLOSE = 10.5  # every session's close in the fake daily store


class FakeDailyReader:
    """What the adjustment writer's daily bar reader answers: closes per session and sid."""

    def __init__(self, closes):
        self.sessions = SESSIONS
        self._closes = closes  # sid -> array over SESSIONS

    def load_raw_arrays(self, columns, start, end, sids):
        assert list(columns) == ["close"]
        lo, hi = self.sessions.get_loc(start), self.sessions.get_loc(end)
        return [np.column_stack([self._closes[s][lo:hi + 1] for s in sids])]


class FakeAdjustmentWriter:
    """Records what zipline's SQLiteAdjustmentWriter would be handed."""

    def __init__(self, closes=None):
        closes = closes or {0: np.full(len(SESSIONS), CLOSE), 1: np.full(len(SESSIONS), CLOSE)}
        self._equity_daily_bar_reader = FakeDailyReader(closes)
        self.splits = self.dividends = "not written"

    def write(self, splits=None, mergers=None, dividends=None, stock_dividends=None):
        self.splits, self.dividends = splits, dividends


def _sids():
    assets = pd.DataFrame({"ticker": ["AAA", "BBB"], "start_date": SESSIONS[0],
                           "end_date": SESSIONS[-1]}, index=pd.Index([0, 1], name="sid"))
    return SidMap(assets, {"AAA": 0, "BBB": 1}, {})


GOOD_SPLIT = {"ticker": "AAA", "execution_date": "2024-07-08", "split_from": 1, "split_to": 2}
GOOD_DIV = {"ticker": "BBB", "ex_dividend_date": "2024-07-08", "cash_amount": 0.5,
            "dividend_type": "CD", "pay_date": "2024-07-20", "record_date": "2024-07-09",
            "declaration_date": "2024-06-20"}


def _root(tmp_path, splits=(), dividends=()):
    root = tmp_path / "raw"
    layout.write_reference(root, "splits", list(splits))
    layout.write_reference(root, "dividends", list(dividends))
    return root


def _write_raw_json(root, name, text):
    (layout.reference_dir(root) / f"{name}.json").write_text(text)


def _changed(record, changes):
    """``record`` with ``changes`` applied (``_DROP`` removes the field)."""
    rec = dict(record)
    for k, v in changes.items():
        if v is _DROP:
            rec.pop(k)
        else:
            rec[k] = v
    return rec


def _split(**changes):
    return _changed(dict(GOOD_SPLIT, ticker="BBB", execution_date="2024-07-09"), changes)


def _div(**changes):
    return _changed(dict(GOOD_DIV, ticker="AAA", ex_dividend_date="2024-07-09"), changes)


_DROP = object()

BAD_SPLITS = [
    (_split(split_from=0), "split_from 0 is not > 0"),
    (_split(split_to=0), "split_to 0 is not > 0"),
    (_split(split_from=-1), "split_from -1 is not > 0"),
    (_split(split_to=-4), "split_to -4 is not > 0"),
    (_split(split_from="abc"), "split_from 'abc' is not a number"),
    (_split(split_to=True), "split_to True is not a number"),
    (_split(split_to=[2]), "split_to [2] is not a number"),
    (_split(split_from=_DROP), "split_from is missing"),
    (_split(split_to=None), "split_to is missing"),
    (_split(split_from=float("nan")), "split_from nan is not finite"),
    (_split(split_to=float("inf")), "split_to inf is not finite"),
    (_split(split_from=1e300, split_to=1e-300), "ratio split_from / split_to"),
    (_split(execution_date="2024-13-45"), "execution_date '2024-13-45' is not a date"),
    (_split(execution_date="soon"), "execution_date 'soon' is not a date"),
    (_split(execution_date=20240709), "execution_date 20240709 is not a date"),
    (_split(execution_date=_DROP), "execution_date is missing"),
]
BAD_DIVIDENDS = [
    (_div(cash_amount=-0.5), "cash_amount -0.5 is not > 0"),
    (_div(cash_amount=0), "cash_amount 0 is not > 0"),
    (_div(cash_amount="abc"), "cash_amount 'abc' is not a number"),
    (_div(cash_amount=_DROP), "cash_amount is missing"),
    (_div(cash_amount=float("nan")), "cash_amount nan is not finite"),
    (_div(cash_amount=float("inf")), "cash_amount inf is not finite"),
    (_div(cash_amount=CLOSE), "cash_amount 10.5 is not below the close 10.5 of 2024-07-08"),
    (_div(cash_amount=12.0), "cash_amount 12.0 is not below the close 10.5 of 2024-07-08"),
    (_div(ex_dividend_date="2024-02-30"), "ex_dividend_date '2024-02-30' is not a date"),
    (_div(ex_dividend_date=None), "ex_dividend_date is missing"),
    (_div(pay_date="next week"), "pay_date 'next week' is not a date"),
]
IDS = lambda case: re.sub(r"\W+", "_", str(case))[:60]  # noqa: E731


def _expect_message(msg, name, reason, ticker, raised=True):
    assert f"raw/reference/{name}.json: record [1], ticker {ticker!r}: " in msg, msg
    assert reason in msg, msg
    if raised:
        assert "bad_rows=skip" in msg, msg  # says what to do


@pytest.mark.parametrize("record, reason", BAD_SPLITS, ids=IDS)
def test_bad_split_is_rejected_naming_file_record_ticker_and_field(tmp_path, record, reason):
    root = _root(tmp_path, splits=[GOOD_SPLIT, record], dividends=[GOOD_DIV])
    writer = FakeAdjustmentWriter()
    with pytest.raises(ValueError) as err:
        write_adjustments(writer, root, _sids())
    _expect_message(str(err.value), "splits", reason, "BBB")
    assert writer.splits == "not written"


@pytest.mark.parametrize("record, reason", BAD_DIVIDENDS, ids=IDS)
def test_bad_dividend_is_rejected_naming_file_record_ticker_and_field(tmp_path, record, reason):
    root = _root(tmp_path, splits=[GOOD_SPLIT], dividends=[GOOD_DIV, record])
    writer = FakeAdjustmentWriter()
    with pytest.raises(ValueError) as err:
        write_adjustments(writer, root, _sids())
    _expect_message(str(err.value), "dividends", reason, "AAA")
    assert writer.dividends == "not written"


def _good_written(writer, n_splits=1, n_divs=1):
    assert list(writer.splits["sid"]) == [0] * n_splits
    assert list(writer.splits["ratio"]) == [0.5] * n_splits  # 2:1 -> prices before x 0.5
    assert list(writer.splits["effective_date"]) == [pd.Timestamp("2024-07-08")] * n_splits
    assert list(writer.dividends["sid"]) == [1] * n_divs
    assert list(writer.dividends["amount"]) == [0.5] * n_divs
    assert list(writer.dividends["pay_date"]) == [pd.Timestamp("2024-07-20")] * n_divs


@pytest.mark.parametrize("kind, record, reason",
                         [("splits", r, m) for r, m in BAD_SPLITS]
                         + [("dividends", r, m) for r, m in BAD_DIVIDENDS], ids=IDS)
def test_skip_drops_the_bad_record_and_reports_it(tmp_path, kind, record, reason):
    splits = [GOOD_SPLIT] + ([record] if kind == "splits" else [])
    dividends = [GOOD_DIV] + ([record] if kind == "dividends" else [])
    root = _root(tmp_path, splits=splits, dividends=dividends)
    writer, report = FakeAdjustmentWriter(), IngestReport()
    assert write_adjustments(writer, root, _sids(), bad_rows="skip", report=report) == (1, 1)
    _good_written(writer)
    (msg,) = report.skipped_rows
    _expect_message(msg, kind, reason, "AAA" if kind == "dividends" else "BBB", raised=False)
    assert report.file_counts["bad_reference_records"] == 1


def test_skip_without_a_report_logs_a_warning(tmp_path, caplog):
    root = _root(tmp_path, splits=[GOOD_SPLIT, _split(split_to=0)], dividends=[GOOD_DIV])
    writer = FakeAdjustmentWriter()
    with caplog.at_level(logging.WARNING):
        write_adjustments(writer, root, _sids(), bad_rows="skip")
    _good_written(writer)
    assert any("splits.json: record [1], ticker 'BBB': split_to 0 is not > 0" in r.getMessage()
               for r in caplog.records), caplog.text


def test_every_bad_record_is_listed_and_the_error_counts_them(tmp_path):
    root = _root(tmp_path, splits=[GOOD_SPLIT, _split(split_to=0), _split(split_from="x")])
    with pytest.raises(ValueError, match=r"record \[1\].*\(2 bad record\(s\) in this file"):
        write_adjustments(FakeAdjustmentWriter(), root, _sids())
    report = IngestReport()
    write_adjustments(FakeAdjustmentWriter(), root, _sids(), bad_rows="skip", report=report)
    assert [m.split(": ")[1] for m in report.skipped_rows] == ["record [1], ticker 'BBB'",
                                                                "record [2], ticker 'BBB'"]


def test_json_infinity_and_nan_are_caught(tmp_path):
    """Python's json writes and reads ``Infinity`` / ``NaN``; they are not ratios."""
    root = _root(tmp_path)
    _write_raw_json(root, "splits", '[{"ticker": "AAA", "execution_date": "2024-07-08", '
                                    '"split_from": 1, "split_to": Infinity}]')
    with pytest.raises(ValueError, match=r"record \[0\], ticker 'AAA': split_to inf is not finite"):
        write_adjustments(FakeAdjustmentWriter(), root, _sids())


def test_numeric_strings_and_other_date_spellings_are_accepted(tmp_path):
    root = _root(tmp_path, splits=[dict(GOOD_SPLIT, split_from="1", split_to="2.0",
                                        execution_date="2024-07-08T00:00:00Z")],
                 dividends=[dict(GOOD_DIV, cash_amount="0.5", record_date=None, pay_date="",
                                 declaration_date="2024-06-20T12:00:00")])
    writer = FakeAdjustmentWriter()
    assert write_adjustments(writer, root, _sids()) == (1, 1)
    assert list(writer.splits["ratio"]) == [0.5]
    assert list(writer.splits["effective_date"]) == [pd.Timestamp("2024-07-08")]
    divs = writer.dividends
    assert list(divs["amount"]) == [0.5]
    # missing optional dates fall back to the ex-date, as before
    assert list(divs["record_date"]) == [pd.Timestamp("2024-07-08")]
    assert list(divs["pay_date"]) == [pd.Timestamp("2024-07-08")]
    assert list(divs["declared_date"]) == [pd.Timestamp("2024-06-20")]


def test_capital_gain_distributions_stay_out_but_are_validated(tmp_path):
    root = _root(tmp_path, splits=[GOOD_SPLIT],
                 dividends=[GOOD_DIV, dict(GOOD_DIV, dividend_type="LT", cash_amount=2.0)])
    writer = FakeAdjustmentWriter()
    assert write_adjustments(writer, root, _sids()) == (1, 1)
    root = _root(tmp_path / "b", dividends=[dict(GOOD_DIV, dividend_type="LT", cash_amount=-1)])
    with pytest.raises(ValueError, match="cash_amount -1 is not > 0"):
        write_adjustments(FakeAdjustmentWriter(), root, _sids())


def test_dividend_without_a_prior_close_is_left_to_zipline(tmp_path):
    """No trade on the session before the ex-date: zipline itself drops the ratio (NaN); the
    record is not bad data."""
    closes = {0: np.full(len(SESSIONS), CLOSE), 1: np.full(len(SESSIONS), CLOSE)}
    closes[1][SESSIONS.get_loc(pd.Timestamp("2024-07-05"))] = np.nan
    root = _root(tmp_path, dividends=[GOOD_DIV])
    writer = FakeAdjustmentWriter(closes)
    assert write_adjustments(writer, root, _sids()) == (0, 1)


@pytest.mark.parametrize("text", ['{"results": []}', '["AAA 2:1"]', '"splits"', "42"])
@pytest.mark.parametrize("bad_rows", ["raise", "skip"])
def test_wrong_shape_always_fails(tmp_path, text, bad_rows):
    root = _root(tmp_path)
    _write_raw_json(root, "splits", text)
    with pytest.raises(ValueError, match=r"raw/reference/splits\.json"):
        write_adjustments(FakeAdjustmentWriter(), root, _sids(), bad_rows=bad_rows,
                          report=IngestReport())


# ---------------------------------------------------------------------------- whole ingests
DAYS = ["2024-07-05", "2024-07-08", "2024-07-09"]


def _raw(tmp_path, splits=(), dividends=()):
    root, rng = tmp_path / "raw", np.random.default_rng(5)
    frame = pd.concat([minute_rows(t, d, 20.0, rng, "09:30", "10:00") for d in DAYS
                       for t in ("AAA", "BBB")])
    write_minute_days(root, frame)
    layout.write_reference(root, "tickers", [{"ticker": t, "type": "CS"} for t in ("AAA", "BBB")])
    layout.write_reference(root, "splits", list(splits))
    layout.write_reference(root, "dividends", list(dividends))
    return root


@pytest.mark.parametrize("splits, dividends, pattern", [
    ([dict(GOOD_SPLIT, split_to=0)], [],
     r"splits\.json: record \[0\], ticker 'AAA': split_to 0"),
    ([dict(GOOD_SPLIT, split_from=0)], [],
     r"splits\.json: record \[0\], ticker 'AAA': split_from 0"),
    ([dict(GOOD_SPLIT, split_from=-1, split_to=4)], [],
     r"record \[0\], ticker 'AAA': split_from -1"),
    ([{k: v for k, v in GOOD_SPLIT.items() if k != "split_to"}], [], r"split_to is missing"),
    ([dict(GOOD_SPLIT, execution_date="07/08/24")], [],
     r"execution_date '07/08/24' is not a date"),
    ([], [dict(GOOD_DIV, cash_amount=-1.0)],
     r"dividends\.json: record \[0\], ticker 'BBB': cash_amount -1"),
    ([], [dict(GOOD_DIV, cash_amount=500.0)], r"cash_amount 500\.0 is not below the close"),
])
def test_ingest_stops_on_a_bad_corporate_action(tmp_path, splits, dividends, pattern):
    root = _raw(tmp_path, splits, dividends)
    with pytest.raises(ValueError, match=pattern):
        build_bundle("test-bad-actions", PolygonBundleConfig(root=root), tmp_path / "z")


def test_ingest_with_valid_actions_adjusts_history(tmp_path):
    root = _raw(tmp_path, [GOOD_SPLIT], [GOOD_DIV])
    data = build_bundle("test-good-actions", PolygonBundleConfig(root=root), tmp_path / "z")
    aaa, bbb = (data.asset_finder.lookup_symbol(t, pd.Timestamp(DAYS[-1])).sid
                for t in ("AAA", "BBB"))
    reader = data.adjustment_reader
    assert reader.get_adjustments_for_sid("splits", aaa) == [[pd.Timestamp("2024-07-08"), 0.5]]
    ((ex, ratio),) = reader.get_adjustments_for_sid("dividends", bbb)
    close = data.equity_daily_bar_reader.get_value(bbb, pd.Timestamp("2024-07-05"), "close")
    assert ex == pd.Timestamp("2024-07-08") and ratio == pytest.approx(1 - 0.5 / close)
    assert 0 < ratio < 1


def test_ingest_with_skip_drops_bad_actions_and_reports_them(tmp_path):
    root = _raw(tmp_path, [GOOD_SPLIT, dict(GOOD_SPLIT, ticker="BBB", split_to=0)],
                [GOOD_DIV, dict(GOOD_DIV, ticker="AAA", cash_amount=-1.0)])
    data = build_bundle("test-skip-actions", PolygonBundleConfig(root=root, bad_rows="skip"),
                        tmp_path / "z")
    aaa, bbb = (data.asset_finder.lookup_symbol(t, pd.Timestamp(DAYS[-1])).sid
                for t in ("AAA", "BBB"))
    assert data.adjustment_reader.get_adjustments_for_sid("splits", bbb) == []
    assert data.adjustment_reader.get_adjustments_for_sid("dividends", aaa) == []
    report = json.loads(next((tmp_path / "z").rglob("ingest_report.json")).read_text())
    assert report["splits"] == 1 and report["dividends"] == 1
    skipped = "\n".join(report["skipped_rows"])
    assert "splits.json: record [1], ticker 'BBB': split_to 0" in skipped
    assert "dividends.json: record [1], ticker 'AAA': cash_amount -1.0" in skipped

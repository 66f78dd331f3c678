"""Issue #12 item 13: records the ingest would refuse never reach a raw file.

They are kept, with their reason, in ``raw/rejected/<dataset>/YYYY/MM/YYYY-MM-DD.jsonl`` and
listed in the download summary; every message names the file, the ticker and the record.
"""
from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from bundles import download as dl
from bundles.flatfiles import read_day_file as ingest_read
from bundles.layout import DAY_DATASET, MINUTE_DATASET, day_file_path
from tests.bundles.download.test_redirects import Transport, client_for
from tests.bundles.download.test_download import (
    END,
    SESSIONS,
    START,
    FakePolygon,
    expected_minute_file,
    grouped_bars,
    ms,
    ok,
)

DAY = pd.Timestamp("2024-02-29")


def bad_grouped(day):
    good = grouped_bars(day, ["AAPL", "MSFT"])
    template = dict(good[0])
    bad = [dict(template, T="BAD TICKER"), dict(template, T="../x"),
           {k: v for k, v in template.items() if k != "v"} | {"T": "NOVOL"},
           dict(template, T="NANP", o=float("nan")), dict(template, T="INFH", h=float("inf")),
           dict(template, T="HILO", h=1.0, l=2.0), dict(template, T="ZERO", o=0, l=0),
           dict(template, T="NEXTDAY", t=ms(day + pd.Timedelta(days=1), "16:00"))]
    return good, bad


class BadPolygon(FakePolygon):
    """Serves grouped daily bars with bad records mixed in, and minute bars of AAPL with a
    bar without volume, an infinite price and a timestamp off the minute."""

    def __call__(self, url, params):
        if "/v2/aggs/grouped/" in url:
            good, bad = bad_grouped(pd.Timestamp(url.rsplit("/", 1)[-1]))
            return ok(good[:1] + bad + good[1:])
        if "/v2/aggs/ticker/AAPL/" in url:
            response = super().__call__(url, params)
            payload = response.json()
            for bar in payload["results"]:
                if bar["t"] == ms("2024-02-28", "09:30"):
                    del bar["v"]
                if bar["t"] == ms("2024-03-01", "09:31"):
                    bar["c"] = float("inf")
                if bar["t"] == ms("2024-03-04", "04:00"):
                    bar["t"] += 30_000
            return ok(payload["results"])
        return super().__call__(url, params)


def run(root, **kwargs):
    polygon = BadPolygon(tickers=["AAPL", "MSFT"])
    transport = Transport(lambda url, params, headers: polygon(url, params))
    summary = dl.download(root, START, END, reference=False, progress=False,
                          client=client_for(transport), **kwargs)
    return summary, transport


def rejected_dir(root, dataset):
    return root / "raw" / "rejected" / dataset


def side_file(root, dataset, day):
    return rejected_dir(root, dataset) / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}.jsonl"


def test_bad_daily_records_are_kept_out_and_reported(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        summary, _ = run(tmp_path, tickers=["AAPL"], minute=False)
    for day in SESSIONS:
        frame = ingest_read(day_file_path(tmp_path, DAY_DATASET, day), day, "day")  # no raise
        assert sorted(frame.symbols) == ["AAPL", "MSFT"]
        lines = [json.loads(x) for x in side_file(tmp_path, DAY_DATASET, day).read_text()
                 .splitlines()]
        good, bad = bad_grouped(day)
        assert [x["ticker"] for x in lines] == [b["T"] for b in bad]
        assert [x["record"]["T"] for x in lines] == [b["T"] for b in bad]
        reasons = {x["ticker"]: x["reason"] for x in lines}
        assert "invalid ticker" in reasons["BAD TICKER"] and "invalid ticker" in reasons["../x"]
        assert reasons["NOVOL"] == "no volume ('v')"
        assert "non-finite open" in reasons["NANP"] and "non-finite high" in reasons["INFH"]
        assert reasons["HILO"] == "high < low"
        assert reasons["ZERO"] == "price is zero or negative"
        assert reasons["NEXTDAY"] == "bar's New York date is not its session"
        assert all(x["session"] == f"{day:%Y-%m-%d}" and x["dataset"] == DAY_DATASET
                   for x in lines)
    assert len(summary.rejected) == 8 * len(SESSIONS)
    first = summary.rejected[0]
    assert first["file"] == f"raw/rejected/{DAY_DATASET}/2024/02/2024-02-28.jsonl"
    assert first["line"] == 1 and first["ticker"] == "BAD TICKER"
    assert first["kept_out_of"].endswith("day_aggs_v1/2024/02/2024-02-28.csv.gz")
    # the message names the file (and line), the ticker and the record, and says what to do
    message = next(r.getMessage() for r in caplog.records if "BAD TICKER" in r.getMessage())
    for part in (first["file"] + " line 1", "'BAD TICKER'", '"T": "BAD TICKER"',
                 "invalid ticker", "nothing to do unless", "2024-02-28.csv.gz"):
        assert part in message, part
    assert f"{len(summary.rejected)} record(s) the ingest would refuse" in summary.describe()


def test_bad_minute_bars_are_kept_out_and_never_refetched(tmp_path):
    summary, _ = run(tmp_path, tickers=["AAPL", "MSFT"], daily=False)
    for day in SESSIONS:
        frame = ingest_read(day_file_path(tmp_path, MINUTE_DATASET, day), day, "minute")
        expected = len(expected_minute_file(day, ["AAPL", "MSFT"]))
        bad = day != pd.Timestamp("2024-02-29")
        assert len(frame) == expected - bad
    got = {(r["session"], r["ticker"], r["reason"]) for r in summary.rejected}
    assert got == {("2024-02-28", "AAPL", "no volume ('v')"),
                   ("2024-03-01", "AAPL", "non-numeric or non-finite close ('c'=inf)"),
                   ("2024-03-04", "AAPL", "timestamp not on a whole minute")}
    line = json.loads(side_file(tmp_path, MINUTE_DATASET, SESSIONS[0]).read_text())
    assert "v" not in line["record"] and line["record"]["t"] == ms("2024-02-28", "09:30")

    # the sessions are complete: nothing is requested again, no side file is added
    before = sorted(p.name for p in rejected_dir(tmp_path, MINUTE_DATASET).rglob("*"))
    again, transport = run(tmp_path, tickers=["AAPL", "MSFT"], daily=False)
    assert transport.sent == [] and again.rejected == []
    assert sorted(p.name for p in rejected_dir(tmp_path, MINUTE_DATASET).rglob("*")) == before


@pytest.mark.parametrize("bar, reason", [
    ({"v": 1, "o": 1, "h": 1, "l": 1, "c": 1, "t": "1709217000000"}, "non-numeric"),
    ({"v": True, "o": 1, "h": 1, "l": 1, "c": 1, "t": 1709217000000}, "non-numeric"),
    ({"v": 1, "o": 1, "h": 1, "l": 1, "c": None, "t": 1709217000000}, "no close"),
    ({"v": -1, "o": 1, "h": 1, "l": 1, "c": 1, "t": 1709217000000}, "negative volume"),
    ({"v": 1, "o": 3, "h": 2, "l": 1, "c": 1, "t": 1709217000000}, "outside [low, high]"),
    ({"v": 1, "o": 1, "h": 1, "l": 1, "c": 1, "t": 1709217000000.5}, "not epoch milliseconds"),
    ({"v": 1e400, "o": 1, "h": 1, "l": 1, "c": 1, "t": 1709217000000}, "non-finite"),
])
def test_bar_problems(bar, reason):
    assert reason in dl.bar_problem(bar, "AAPL", minute=True)


def test_good_bar_and_bad_transactions():
    bar = {"v": 1.5, "o": 1, "h": 2, "l": 0.5, "c": 1, "t": 1709217000000, "n": "x"}
    assert dl.bar_problem(bar, "BRK.A", minute=True) is None
    accepted, rejected = dl.validate.split_bars([bar], "2024-02-29", minute=True,
                                                ticker="BRK.A")
    assert rejected == [] and "n" not in accepted[0]  # written blank, as the ingest reads it
    frame = dl.bars_to_frame(accepted, "BRK.A")
    assert frame["transactions"].isna().all()


@pytest.mark.parametrize("ticker", ["", None, "A/B", "../x", ".A", "A B", "ÅÄ", "A" * 21])
def test_ticker_problems(ticker):
    assert dl.ticker_problem(ticker)


@pytest.mark.parametrize("ticker", ["A", "BRK.A", "BF-B", "ABCpA", "X1"])
def test_good_tickers(ticker):
    assert dl.ticker_problem(ticker) is None

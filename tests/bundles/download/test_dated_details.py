"""Dated ticker details: the sampling schedule, one cached file per (ticker, date), resume, the
``date`` parameter, 404s recorded, listings found, and the CLI default."""
from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest
from click.testing import CliRunner

from bundles import download as dl
from bundles import reference_history
from gapline.cli import main

from .test_download import API_KEY, FakePolygon, FakeResponse, FakeSession, make_client, ok

D = pd.Timestamp
START, END = "2024-02-28", "2024-03-04"


def test_parse_every():
    assert dl.parse_every("1M") == (1, "M") and dl.parse_every("3m") == (3, "M")
    assert dl.parse_every("2W") == (2, "W") and dl.parse_every("Q") == (3, "M")
    for off in (None, "none", "off", ""):
        assert dl.parse_every(off) is None
    for bad in ("1Y", "M1", "0M", "monthly"):
        with pytest.raises(ValueError, match="details every"):
            dl.parse_every(bad)


def test_sample_dates():
    sessions = dl.sessions_between("2024-01-10", "2024-04-05")
    got = dl.sample_dates(sessions, (1, "M"), split_dates=["2024-02-20", "2023-06-01"],
                          list_date="2024-03-13")
    assert got == [D("2024-01-10"), D("2024-01-31"), D("2024-02-20"), D("2024-02-29"),
                   D("2024-03-13"), D("2024-03-28"), D("2024-04-05")]
    # every second month-end, counted from the first month; a listing before the span: none
    assert dl.sample_dates(sessions, (2, "M"), list_date="2001-01-01") == [
        D("2024-01-10"), D("2024-02-29"), D("2024-04-05")]


class DatedPolygon(FakePolygon):
    """Details by date: AAPL always; NEWCO lists on 2024-01-16 (404 before)."""

    def __call__(self, url, params):
        path = urlsplit(url).path
        if path.startswith("/v3/reference/tickers/"):
            ticker, day = unquote(path.split("/")[-1]), params.get("date")
            assert day is not None, "dated details need ?date="
            if ticker == "NEWCO" and day >= "2024-01-16":
                return ok({"ticker": "NEWCO", "list_date": "2024-01-16", "type": "CS",
                           "share_class_shares_outstanding": 7e6, "description": "dropped"})
            if ticker == "AAPL":
                return ok({"ticker": "AAPL", "list_date": "1980-12-12", "type": "CS",
                           "composite_figi": "BBG000B9XRY4",
                           "share_class_shares_outstanding": 15e9 + int(day[5:7])})
            return FakeResponse(404, {"status": "NOT_FOUND", "message": "Ticker not found."})
        return super().__call__(url, params)


def _details_calls(session):
    return [(unquote(urlsplit(u).path.split("/")[-1]), p["date"]) for u, p in session.calls
            if urlsplit(u).path.startswith("/v3/reference/tickers/")]


def test_download_samples_each_ticker_and_resumes(tmp_path):
    session = FakeSession(handler=DatedPolygon())
    summary = dl.download(tmp_path, START, END, tickers=["AAPL", "NEWCO"], minute=False,
                          daily=False, details_every="1M", client=make_client(session))
    calls = _details_calls(session)
    span = dl.sessions_between(D(START) - pd.Timedelta(days=90), END)
    months = [f"{d:%Y-%m-%d}" for d in dl.sample_dates(span, (1, "M"))]
    assert months[0] == f"{span[0]:%Y-%m-%d}" and months[-1] == "2024-03-04"
    assert [d for t, d in calls if t == "AAPL"] == months
    # NEWCO: 404 until its listing, which a later sample names and is then sampled too
    assert sorted(d for t, d in calls if t == "NEWCO") == sorted(months + ["2024-01-16"])
    samples = reference_history.read_dated_details(tmp_path)
    newco = {f"{s['date']:%Y-%m-%d}": s["results"] for s in samples if s["ticker"] == "NEWCO"}
    assert newco["2023-12-29"] is None                       # recorded: not asked again
    assert newco["2024-01-16"]["share_class_shares_outstanding"] == 7e6
    assert "description" not in newco["2024-01-16"]           # reduced to DETAIL_FIELDS
    assert any("dated" in r for r in summary.reference)
    for path in reference_history.dated_details_dir(tmp_path).rglob("*.json"):
        assert API_KEY not in path.read_text()
        assert json.loads(path.read_text())["fetched_utc"]
    again = FakeSession(handler=DatedPolygon())
    dl.download(tmp_path, START, END, tickers=["AAPL", "NEWCO"], minute=False, daily=False,
                reference=False, details_every="1M", client=make_client(again))
    assert _details_calls(again) == []


def test_split_dates_are_sampled(tmp_path):
    from bundles import layout

    layout.write_reference(tmp_path, "splits", [
        {"ticker": "AAPL", "execution_date": "2024-02-12", "split_from": 1, "split_to": 4}])
    session = FakeSession(handler=DatedPolygon())
    dl.download(tmp_path, START, END, tickers=["AAPL"], minute=False, daily=False,
                reference=False, details_every="3M", client=make_client(session))
    assert "2024-02-12" in [d for _, d in _details_calls(session)]


def test_none_skips_and_a_bad_spec_fails_before_any_request(tmp_path):
    session = FakeSession(handler=DatedPolygon())
    dl.download(tmp_path, START, END, tickers=["AAPL"], minute=False, daily=False,
                reference=False, details_every="none", client=make_client(session))
    assert session.calls == []
    with pytest.raises(ValueError, match="details every"):
        dl.download(tmp_path, START, END, tickers=["AAPL"], details_every="weekly",
                    client=make_client(session))
    assert session.calls == []


def test_cli_fetches_dated_details_by_default(tmp_path, monkeypatch):
    from bundles.download import run as dl_run

    monkeypatch.setenv("POLYGON_API_KEY", API_KEY)
    sessions = []
    real = dl.PolygonClient

    def build(**kwargs):
        sessions.append(FakeSession(handler=DatedPolygon()))
        return real(session=sessions[-1], sleep=lambda s: None, **kwargs)

    monkeypatch.setattr(dl_run, "PolygonClient", build)
    result = CliRunner().invoke(main, ["download", "--start", START, "--end", END, "--tickers",
                                       "AAPL", "--root", str(tmp_path), "--no-minute",
                                       "--no-daily", "--no-reference"])
    assert result.exit_code == 0, result.output
    assert len(_details_calls(sessions[0])) == 5
    result = CliRunner().invoke(main, ["download", "--flat-files", "--start", START,
                                       "--details-every", "none", "--root", str(tmp_path)])
    assert result.exit_code != 0 and "--details-every" in result.output

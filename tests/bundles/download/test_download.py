"""Tests of bundles.download against a fake Polygon (no network)."""
from __future__ import annotations

import gzip
import json
import logging
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest
import requests
from click.testing import CliRunner

from bundles import download as dl
from bundles.download import run as dl_run
from bundles.reference_files import read_reference
from bundles.layout import (
    DAY_DATASET,
    FLAT_COLUMNS,
    MINUTE_DATASET,
    day_file_path,
    write_day_file,
)
from bundles.options import parse_list
from gapline.cli import main

API_KEY = "pk_TESTKEY_9f8e7d6c5b4a"
BASE = "https://api.polygon.io"
NY = "America/New_York"
# Feb 28 .. Mar 4 2024: four sessions across two calendar months, all in EST (UTC-5), so a
# 19:59 New York bar falls on the next UTC day and must still land in its own session's file.
START, END = "2024-02-28", "2024-03-04"
SESSIONS = [pd.Timestamp(d) for d in ("2024-02-28", "2024-02-29", "2024-03-01", "2024-03-04")]
TICKERS = ["MSFT", "AAPL", "BRK.A"]
MINUTES_NY = ["04:00", "09:30", "09:31", "15:59", "19:59"]


# -- fake transport --------------------------------------------------------------------------


class FakeResponse:
    """What the client reads from a ``requests.Response``."""

    def __init__(self, status_code=200, payload=None, text=None, headers=None):
        self.status_code = status_code
        self.headers = headers or {}
        self.text = text if text is not None else json.dumps(payload)

    def json(self):
        return json.loads(self.text)  # a cut-off body raises ValueError, as requests does


class Interrupted(Exception):
    """The process died mid-download (not a retried transport error)."""


class FakeSession:
    """Replays ``script`` (responses or exceptions) in order, then asks ``handler``.

    Records every call; raises :class:`Interrupted` on the call after ``fail_after``. Checks
    that every request carries the key in the Authorization header only, and follows no
    redirect itself.
    """

    def __init__(self, script=(), handler=None, fail_after=None):
        self.script = list(script)
        self.handler = handler
        self.fail_after = fail_after
        self.calls = []
        self.headers = []

    def get(self, url, params=None, headers=None, timeout=None, allow_redirects=True):
        assert timeout is not None, "every request needs a timeout"
        assert allow_redirects is False, "redirects must be handled by the client"
        assert (headers or {}).get("Authorization") == f"Bearer {API_KEY}"
        assert API_KEY not in url and "apikey" not in url.lower()
        assert not any(k.lower() == "apikey" or v == API_KEY for k, v in (params or {}).items())
        self.calls.append((url, dict(params or {})))
        self.headers.append(dict(headers or {}))
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise Interrupted(f"killed after {self.fail_after} requests")
        item = self.script.pop(0) if self.script else self.handler(url, dict(params or {}))
        if isinstance(item, BaseException):
            raise item
        return item

    def served(self):
        """(url, params without key) of the calls that got an answer."""
        calls = self.calls if self.fail_after is None else self.calls[:self.fail_after]
        return [(u, tuple(sorted((k, str(v)) for k, v in p.items()))) for u, p in calls]


def make_client(session, **kwargs):
    kwargs.setdefault("sleep", lambda s: None)
    kwargs.setdefault("base_url", BASE)
    return dl.PolygonClient(api_key=API_KEY, session=session, **kwargs)


def ok(results=None, **extra):
    payload = {"status": "OK", "request_id": "a1b2c3d4e5"}
    if results is not None:
        payload.update(results=results, resultsCount=len(results), count=len(results))
    payload.update(extra)
    return FakeResponse(200, payload)


def ms(day, hhmm):
    return pd.Timestamp(f"{pd.Timestamp(day):%Y-%m-%d} {hhmm}", tz=NY).value // 1_000_000


# -- a fake Polygon serving recorded-style payloads ------------------------------------------


def minute_bars(ticker):
    """Recorded-style /v2/aggs minute results (no ``T``; ``t`` in ms)."""
    bars = []
    for i, day in enumerate(SESSIONS):
        for j, hhmm in enumerate(MINUTES_NY):
            price = 100.0 + 10 * len(ticker) + i + j / 100
            bars.append({"v": 100 * (j + 1) + i, "vw": price + 0.001, "o": price,
                         "c": price + 0.05, "h": price + 0.1, "l": price - 0.1,
                         "t": ms(day, hhmm), "n": j + 1})
    return bars


def grouped_bars(day, tickers=TICKERS):
    """Recorded-style grouped-daily results, deliberately not sorted by ticker."""
    return [{"T": t, "v": 1_000_000 + k, "vw": 50.5, "o": 50.0 + k, "c": 51.25 + k,
             "h": 52.0 + k, "l": 49.5 + k, "t": ms(day, "16:00"), "n": 9000 + k}
            for k, t in enumerate(tickers)]


REFERENCE_TICKERS = {
    "true": [{"ticker": "AAPL", "name": "Apple Inc.", "market": "stocks", "locale": "us",
              "primary_exchange": "XNAS", "type": "CS", "active": True, "currency_name": "usd",
              "cik": "0000320193", "composite_figi": "BBG000B9XRY4",
              "share_class_figi": "BBG001S5N8V8", "last_updated_utc": "2024-03-04T00:00:00Z"},
             {"ticker": "SPY", "name": "SPDR S&P 500", "market": "stocks", "locale": "us",
              "primary_exchange": "ARCX", "type": "ETF", "active": True,
              "currency_name": "usd", "last_updated_utc": "2024-03-04T00:00:00Z"},
             {"ticker": "XYZ.WS", "name": "XYZ warrants", "market": "stocks", "locale": "us",
              "type": "WARRANT", "active": True}],
    "false": [{"ticker": "OLDCO", "name": "Old Co", "market": "stocks", "locale": "us",
               "type": "CS", "active": False, "delisted_utc": "2019-06-01T00:00:00Z"},
              {"ticker": "GONE", "name": "Gone Inc", "market": "stocks", "locale": "us",
               "type": "CS", "active": False, "delisted_utc": "2024-03-01T00:00:00Z"}],
}
SPLITS = [{"execution_date": "2020-08-31", "id": "E36416cce743c3964c5da63e1ef1626c0aece30fb47",
           "split_from": 1, "split_to": 4, "ticker": "AAPL"}]
DIVIDENDS = [{"cash_amount": 0.24, "currency": "USD", "declaration_date": "2024-02-01",
              "dividend_type": "CD", "ex_dividend_date": "2024-02-09", "frequency": 4,
              "pay_date": "2024-02-15", "record_date": "2024-02-12", "ticker": "AAPL",
              "id": "Eabc"}]


class FakePolygon:
    """Routes requests like api.polygon.io does (FakeSession checks the key header)."""

    def __init__(self, tickers=TICKERS, empty_days=()):
        self.minute = {t: minute_bars(t) for t in tickers}
        self.tickers = tickers
        self.empty_days = {pd.Timestamp(d) for d in empty_days}

    def __call__(self, url, params):
        path = urlsplit(url).path
        parts = path.strip("/").split("/")
        if path.startswith("/v2/aggs/grouped/"):
            day = pd.Timestamp(parts[-1])
            assert params["adjusted"] == "false"
            bars = [] if day in self.empty_days else grouped_bars(day, self.tickers)
            return ok(bars or None, queryCount=len(bars), adjusted=False)
        if path.startswith("/v2/aggs/ticker/"):
            ticker, start, end = unquote(parts[3]), int(parts[7]), int(parts[8])
            assert (params["adjusted"], params["sort"], params["limit"]) == ("false", "asc",
                                                                             50000)
            bars = [b for b in self.minute.get(ticker, []) if start <= b["t"] <= end]
            return ok(bars, ticker=ticker, queryCount=len(bars), adjusted=False)
        if path == "/v3/reference/tickers":
            assert params["market"] == "stocks" and params["limit"] == 1000
            return ok(REFERENCE_TICKERS[params["active"]])
        if path == "/v3/reference/splits":
            return ok(SPLITS)
        if path == "/v3/reference/dividends":
            return ok(DIVIDENDS)
        if path.startswith("/v3/reference/tickers/"):
            ticker = unquote(parts[-1])
            if ticker == "AAPL":
                return ok({"ticker": "AAPL", "name": "Apple Inc.", "list_date": "1980-12-12",
                           "share_class_shares_outstanding": 15441881000,
                           "weighted_shares_outstanding": 15441881000,
                           "description": "dropped"})
            return FakeResponse(404, {"status": "NOT_FOUND", "request_id": "x",
                                      "message": "Ticker not found."})
        raise AssertionError(f"unexpected request {path}")


def expected_minute_file(day, tickers=TICKERS):
    """The minute day file for ``day``, built independently of the code under test."""
    rows = []
    for ticker in sorted(tickers):
        for bar in minute_bars(ticker):
            stamp = pd.Timestamp(bar["t"], unit="ms", tz="UTC").tz_convert(NY)
            if stamp.tz_localize(None).normalize() == day:
                rows.append([ticker, bar["v"], bar["o"], bar["c"], bar["h"], bar["l"],
                             bar["t"] * 1_000_000, bar["n"]])
    return pd.DataFrame(rows, columns=FLAT_COLUMNS)


def read_day_file(root, dataset, day):
    return pd.read_csv(day_file_path(root, dataset, day), keep_default_na=False,
                       float_precision="round_trip")


def tree(root):
    """{relative path: bytes} of every file under ``root`` (manifests without their
    ``written_at`` clock times)."""
    def content(path):
        if "manifests" in path.relative_to(root).parts:
            payload = json.loads(path.read_text())
            for entry in payload["files"].values():
                entry.pop("written_at")
            return json.dumps(payload, sort_keys=True).encode()
        return path.read_bytes()

    return {str(p.relative_to(root)): content(p) for p in sorted(root.rglob("*"))
            if p.is_file()}


# -- the client: auth, retries, pagination ---------------------------------------------------


def test_missing_key_names_the_env_var(monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    with pytest.raises(dl.MissingApiKeyError, match="POLYGON_API_KEY"):
        dl.PolygonClient(session=FakeSession())


def test_key_from_env_and_repr_hides_it(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", API_KEY)
    session = FakeSession([ok([])])
    client = dl.PolygonClient(session=session)
    client.get_json("/v3/reference/splits")
    assert session.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert session.calls[0][1] == {}
    assert API_KEY not in repr(client)


def test_pagination_follows_next_url_across_three_pages():
    cursor2 = f"{BASE}/v3/reference/tickers?cursor=YWN0aXZlPXRydWUmcGFnZT0y"
    cursor3 = f"{BASE}/v3/reference/tickers?cursor=YWN0aXZlPXRydWUmcGFnZT0z"
    session = FakeSession([ok([{"ticker": "A"}, {"ticker": "AA"}], next_url=cursor2),
                           ok([{"ticker": "AAPL"}], next_url=cursor3),
                           ok([{"ticker": "ZZZ"}])])
    got = list(make_client(session).paginate("/v3/reference/tickers", {"limit": 1000}))
    assert [r["ticker"] for r in got] == ["A", "AA", "AAPL", "ZZZ"]
    assert [u for u, _ in session.calls] == [f"{BASE}/v3/reference/tickers", cursor2, cursor3]
    # next_url carries no key: the header goes with every page's request
    assert all(h["Authorization"] == f"Bearer {API_KEY}" for h in session.headers)
    assert session.calls[0][1]["limit"] == 1000 and "limit" not in session.calls[1][1]


def test_429_storm_then_success_honours_retry_after():
    sleeps = []
    too_many = FakeResponse(429, {"status": "ERROR", "error": "exceeded the maximum requests"},
                            headers={"Retry-After": "7"})
    session = FakeSession([too_many] * 4 + [ok([{"ticker": "AAPL"}])])
    client = make_client(session, sleep=sleeps.append, backoff=0.01, max_retries=5)
    assert client.get_json("/v3/reference/tickers")["results"] == [{"ticker": "AAPL"}]
    assert sleeps == [7.0] * 4
    assert len(session.calls) == 5


def test_5xx_then_success_backs_off_exponentially_with_jitter():
    sleeps = []
    session = FakeSession([FakeResponse(500, text="Internal Server Error"),
                           FakeResponse(502, text="<html>Bad Gateway</html>"),
                           FakeResponse(503, text=""), ok([1])])
    client = make_client(session, sleep=sleeps.append, backoff=1.0, jitter=lambda: 0.0)
    assert client.get_json("/x")["results"] == [1]
    assert sleeps == [0.5, 1.0, 2.0]  # 1, 2, 4 seconds scaled by the 0.5..1 jitter


def test_backoff_is_capped():
    sleeps = []
    session = FakeSession([FakeResponse(503, text="")] * 4 + [ok([])])
    make_client(session, sleep=sleeps.append, backoff=10, max_backoff=15,
                jitter=lambda: 1.0).get_json("/x")
    assert sleeps == [10, 15, 15, 15]


def test_timeout_and_connection_error_then_success_without_leaking_key(caplog):
    leaky = requests.ConnectionError(
        f"HTTPSConnectionPool(host='api.polygon.io', port=443): Max retries exceeded with url: "
        f"/v2/aggs/grouped/locale/us/market/stocks/2024-03-01?adjusted=false&apiKey={API_KEY}")
    session = FakeSession([requests.Timeout("read timed out"), leaky, ok([{"T": "A"}])])
    with caplog.at_level(logging.DEBUG):
        got = make_client(session).get_json("/v2/aggs/grouped/locale/us/market/stocks/2024-03-01")
    assert got["results"] == [{"T": "A"}]
    assert len(session.calls) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("Timeout" in m for m in messages) and any("ConnectionError" in m for m in messages)
    assert not any(API_KEY in m for m in messages)


def test_truncated_json_then_success():
    session = FakeSession([FakeResponse(200, text='{"results": [{"t": 17092', ),
                           FakeResponse(200, text="[]"),  # valid JSON, not a Polygon body
                           ok([{"t": 1709251200000}])])
    assert make_client(session).get_json("/x")["results"] == [{"t": 1709251200000}]
    assert len(session.calls) == 3


def test_retries_exhausted_raises_a_clear_error():
    session = FakeSession(handler=lambda url, params: FakeResponse(503, text="unavailable"))
    with pytest.raises(dl.RetriesExhaustedError,
                       match=r"GET https://api.polygon.io/v3/reference/splits failed after 4 "
                             r"attempts \(last: HTTP 503\)") as info:
        make_client(session, max_retries=3).get_json("/v3/reference/splits")
    assert len(session.calls) == 4
    assert API_KEY not in str(info.value)


def test_other_4xx_is_not_retried():
    session = FakeSession([FakeResponse(400, {"status": "ERROR", "message": "bad date"})])
    with pytest.raises(dl.PolygonHTTPError, match="HTTP 400: bad date") as info:
        make_client(session).get_json("/x")
    assert info.value.status == 400 and len(session.calls) == 1


@pytest.mark.parametrize("cursors", [["c1", "c2", "c1"], ["c1", "c1"]])
def test_pagination_loop_is_detected(cursors):
    pages = [ok([{"i": i}], next_url=f"{BASE}/v3/reference/splits?cursor={c}")
             for i, c in enumerate(cursors)]
    session = FakeSession(pages + [ok([{"i": 99}])])
    with pytest.raises(dl.PaginationLoopError, match="cursor=c1"):
        list(make_client(session).paginate("/v3/reference/splits", {"limit": 1000}))
    assert len(session.calls) == len(cursors)  # stopped before re-requesting a page


def test_next_url_pointing_back_at_the_first_request_is_a_loop():
    session = FakeSession([ok([1], next_url=f"{BASE}/v3/reference/splits?limit=1000")])
    with pytest.raises(dl.PaginationLoopError):
        list(make_client(session).paginate("/v3/reference/splits", {"limit": 1000}))


def test_key_is_never_sent_to_another_host():
    session = FakeSession([ok([1], next_url="https://evil.example.com/steal?cursor=x")])
    with pytest.raises(dl.PolygonError, match="refusing to send the API key"):
        list(make_client(session).paginate("/v3/reference/splits"))
    assert len(session.calls) == 1


def test_401_is_clear_not_retried_and_never_leaks_the_key(tmp_path, caplog):
    def handler(url, params):
        if "/v2/aggs/ticker/" in url:  # the key "expires" after reference and daily data
            return FakeResponse(401, {"status": "ERROR", "request_id": "r",
                                      "error": f"Unknown API Key apiKey={API_KEY}"})
        return FakePolygon()(url, params)

    session = FakeSession(handler=handler)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(dl.PolygonAuthError) as info:
            dl.download(tmp_path, START, END, tickers=["AAPL"], progress=True,
                        client=make_client(session))
    message = str(info.value)
    assert "rejected" in message and "POLYGON_API_KEY" in message and "401" in message
    assert API_KEY not in message and API_KEY not in repr(info.value)
    assert sum("/v2/aggs/ticker/" in u for u, _ in session.calls) == 1  # not retried
    assert caplog.records and not any(API_KEY in r.getMessage() for r in caplog.records)
    files = tree(tmp_path)
    assert any(name.endswith(".csv.gz") for name in files)  # something was written...
    for name, data in files.items():  # ...and none of it holds the key
        text = gzip.decompress(data) if name.endswith(".gz") else data
        assert API_KEY.encode() not in text, name


def test_403_not_entitled_is_an_auth_error():
    session = FakeSession([FakeResponse(403, {"status": "NOT_AUTHORIZED",
                                              "message": "You are not entitled to this data."})])
    with pytest.raises(dl.PolygonAuthError, match="HTTP 403: You are not entitled"):
        make_client(session).get_json("/v2/aggs/ticker/AAPL/range/1/minute/1/2")


def test_urllib3_request_lines_are_redacted(caplog):
    make_client(FakeSession())  # installs the filter
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").debug(
            '%s://%s:%s "%s %s %s" %s %s', "https", "api.polygon.io", 443, "GET",
            f"/v3/reference/splits?limit=1000&apiKey={API_KEY}", "HTTP/1.1", 200, 123)
    assert caplog.records and API_KEY not in caplog.records[-1].getMessage()
    assert "apiKey=***" in caplog.records[-1].getMessage()


# -- conversion and the written files --------------------------------------------------------


def test_daily_file_equals_the_input_bars(tmp_path):
    session = FakeSession(handler=FakePolygon())
    summary = dl.download(tmp_path, START, END, minute=False, reference=False,
                          client=make_client(session))
    assert summary.day_files == len(SESSIONS)
    for day in SESSIONS:
        bars = grouped_bars(day)
        expected = pd.DataFrame(
            [[b["T"], b["v"], b["o"], b["c"], b["h"], b["l"], b["t"] * 1_000_000, b["n"]]
             for b in sorted(bars, key=lambda b: b["T"])], columns=FLAT_COLUMNS)
        pd.testing.assert_frame_equal(read_day_file(tmp_path, DAY_DATASET, day), expected)
    requested = sorted(urlsplit(u).path.rsplit("/", 1)[-1] for u, _ in session.calls)
    assert requested == [f"{d:%Y-%m-%d}" for d in SESSIONS]


def test_minute_files_hold_all_tickers_per_session_and_staging_is_cleared(tmp_path):
    session = FakeSession(handler=FakePolygon())
    summary = dl.download(tmp_path, START, END, tickers=TICKERS, daily=False, reference=False,
                          client=make_client(session))
    assert summary.minute_files == len(SESSIONS)
    for day in SESSIONS:
        got = read_day_file(tmp_path, MINUTE_DATASET, day)
        pd.testing.assert_frame_equal(got, expected_minute_file(day))
        assert len(got) == len(TICKERS) * len(MINUTES_NY)  # incl. 19:59 NY = next day UTC
    # one request per (ticker, month), with explicit New York midnight bounds
    paths = sorted(urlsplit(u).path for u, _ in session.calls)
    assert len(paths) == 2 * len(TICKERS)
    assert f"/v2/aggs/ticker/BRK.A/range/1/minute/{ms('2024-02-28', '00:00')}/" \
           f"{ms('2024-03-01', '00:00') - 1}" in paths
    assert not (tmp_path / ".staging" / "minute" / "2024-02").exists()
    assert not (tmp_path / ".staging" / "minute" / "2024-03").exists()


def test_bars_to_frame_types_and_order():
    frame = dl.bars_to_frame([{"T": "B", "v": 5, "o": 1, "c": 2, "h": 3, "l": 0.5,
                               "t": 2000, "n": 4},
                              {"T": "A", "v": 2.5, "o": 1, "c": 2, "h": 3, "l": 0.5, "t": 1000},
                              {"T": "A", "v": 2.5, "o": 9, "c": 9, "h": 9, "l": 9, "t": 1000}])
    assert list(frame.columns) == FLAT_COLUMNS
    assert frame["ticker"].tolist() == ["A", "B"]  # sorted, duplicate (A, 1000) dropped
    assert frame["window_start"].tolist() == [1000 * 1_000_000, 2000 * 1_000_000]
    assert frame["volume"].dtype == "float64"  # 2.5 shares: not forced to int
    assert frame["transactions"].isna().tolist() == [True, False]
    assert frame["open"].tolist() == [1.0, 1.0]


def test_empty_session_is_not_written(tmp_path):
    session = FakeSession(handler=FakePolygon(empty_days=["2024-02-29"]))
    summary = dl.download(tmp_path, START, END, minute=False, reference=False,
                          client=make_client(session))
    assert not day_file_path(tmp_path, DAY_DATASET, "2024-02-29").exists()
    assert summary.empty_sessions == [(DAY_DATASET, pd.Timestamp("2024-02-29").date())]
    assert summary.day_files == 3


# -- resume, immutability, staging safety ----------------------------------------------------


def full_run(root, session):
    return dl.download(root, START, END, tickers=TICKERS, reference=False,
                       client=make_client(session))


@pytest.mark.parametrize("fail_after", [0, 2, 4, 5, 7, 9])
def test_interrupted_download_resumes_without_refetching(tmp_path, fail_after):
    baseline_session = FakeSession(handler=FakePolygon())
    full_run(tmp_path / "baseline", baseline_session)
    baseline = baseline_session.served()
    assert len(baseline) == len(SESSIONS) + 2 * len(TICKERS)  # 4 daily + 6 (ticker, month)

    root = tmp_path / "resumed"
    first = FakeSession(handler=FakePolygon(), fail_after=fail_after)
    with pytest.raises(Interrupted):
        full_run(root, first)
    raw = root / "raw"
    leftovers = [p for p in raw.rglob("*") if p.is_file() and
                 (p.name.startswith(".") or p.name.endswith(".part"))] if raw.exists() else []
    assert leftovers == []
    for path in raw.rglob("*.csv.gz") if raw.exists() else []:
        assert len(pd.read_csv(path)) > 0  # every file present is complete

    second = FakeSession(handler=FakePolygon())
    full_run(root, second)
    # nothing fetched twice, nothing missing: together the runs made the baseline requests
    assert len(second.calls) == len(baseline) - fail_after
    assert sorted(first.served() + second.served()) == sorted(baseline)
    assert tree(raw) == tree(tmp_path / "baseline" / "raw")
    assert not any((root / ".staging" / "minute").rglob("*.json.gz"))


def test_staged_chunks_are_reused(tmp_path):
    first = FakeSession(handler=FakePolygon(), fail_after=2)  # Feb: AAPL, BRK.A staged
    with pytest.raises(Interrupted):
        dl.download(tmp_path, START, END, tickers=TICKERS, daily=False, reference=False,
                    client=make_client(first))
    staged = sorted(p.name for p in dl.staging_dir(tmp_path, "2024-02").iterdir())
    assert staged == ["AAPL.json.gz", "BRK_2eA.json.gz"]
    second = FakeSession(handler=FakePolygon())
    summary = dl.download(tmp_path, START, END, tickers=TICKERS, daily=False, reference=False,
                          client=make_client(second))
    assert (summary.chunks_reused, summary.chunks_fetched) == (2, 4)
    assert [urlsplit(u).path.split("/")[4] for u, _ in second.calls] == \
        ["MSFT", "AAPL", "BRK.A", "MSFT"]
    pd.testing.assert_frame_equal(read_day_file(tmp_path, MINUTE_DATASET, "2024-02-28"),
                                  expected_minute_file(pd.Timestamp("2024-02-28")))


def test_staged_chunk_for_a_shorter_span_is_refetched(tmp_path):
    # a chunk staged by an earlier run that stopped at Feb 28 (and had no bars)
    path = dl.staging_path(tmp_path, "2024-02", "AAPL")
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(json.dumps(
        {"ticker": "AAPL", "from_ms": ms("2024-02-28", "00:00"),
         "to_ms": ms("2024-02-29", "00:00") - 1, "results": []}).encode()))
    session = FakeSession(handler=FakePolygon())
    summary = dl.download(tmp_path, START, "2024-02-29", tickers=["AAPL"], daily=False,
                          reference=False, client=make_client(session))
    assert (summary.chunks_reused, summary.chunks_fetched) == (0, 1)
    for day in SESSIONS[:2]:
        pd.testing.assert_frame_equal(read_day_file(tmp_path, MINUTE_DATASET, day),
                                      expected_minute_file(day, ["AAPL"]))


def test_existing_raw_files_are_never_overwritten_nor_refetched(tmp_path):
    day = pd.Timestamp("2024-02-29")
    sentinel = pd.DataFrame([["ZZZ", 1, 1.0, 1.0, 1.0, 1.0, 0, 1]], columns=FLAT_COLUMNS)
    # a minute file (e.g. a Polygon flat file) holding every requested ticker
    minute_sentinel = pd.DataFrame([[t, 1, 1.0, 1.0, 1.0, 1.0, 0, 1] for t in TICKERS],
                                   columns=FLAT_COLUMNS)
    datasets = (DAY_DATASET, MINUTE_DATASET)
    assert write_day_file(tmp_path, DAY_DATASET, day, sentinel)
    assert write_day_file(tmp_path, MINUTE_DATASET, day, minute_sentinel)
    before = {d: day_file_path(tmp_path, d, day).read_bytes() for d in datasets}
    session = FakeSession(handler=FakePolygon())
    summary = full_run(tmp_path, session)
    assert {d: day_file_path(tmp_path, d, day).read_bytes() for d in datasets} == before
    assert summary.existing == 2 and summary.day_files == 3 and summary.minute_files == 3
    assert not any("2024-02-29" in u for u, _ in session.calls)
    # Feb's minute requests span the missing sessions only: Feb 28, not the existing Feb 29
    feb = [u for u, _ in session.calls if "/v2/aggs/ticker/" in u
           and int(u.split("/")[-2]) < ms("2024-03-01", "00:00")]
    assert len(feb) == 3 and all(int(u.split("/")[-1]) < ms("2024-02-29", "00:00") for u in feb)
    assert write_day_file(tmp_path, DAY_DATASET, day, sentinel.assign(ticker="NEW")) is False


@pytest.mark.parametrize("ticker", ["../x", "A/B", "..", ".", "/etc/passwd", "a\\b", "BRK.A",
                                    "ÅÄ", "_2e"])
def test_ticker_cannot_escape_staging(tmp_path, ticker):
    base = dl.staging_dir(tmp_path, "2024-03")
    path = dl.staging_path(tmp_path, "2024-03", ticker)
    assert path.parent == base
    assert set(path.name[:-len(".json.gz")]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_abcdef")


def test_safe_names_are_distinct_even_ignoring_case():
    names = [dl.safe_name(t) for t in ["BACpB", "BACPB", "BAC.PB", "BAC_PB", "_2e", "."]]
    assert len({n.lower() for n in names}) == len(names)
    with pytest.raises(ValueError):
        dl.safe_name("")
    with pytest.raises(ValueError):
        dl.staging_dir(".", "../2024")


def test_odd_tickers_are_not_requested_and_stay_inside_the_tree(tmp_path):
    # the ingest refuses these tickers: requesting them would only fill raw files it rejects
    odd = ["../x", "A/B"]
    root = tmp_path / "root"
    session = FakeSession(handler=FakePolygon(tickers=odd + ["AAPL"]))
    summary = dl.download(root, START, END, tickers=odd + ["AAPL"], daily=False,
                          reference=False, client=make_client(session))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]
    assert {p.relative_to(root).parts[0] for p in root.rglob("*")} <= {"raw", ".staging"}
    assert [t for t, _ in summary.invalid_tickers] == ["../x", "A/B"]
    assert all("invalid ticker" in reason for _, reason in summary.invalid_tickers)
    assert not any("%2F" in u for u, _ in session.calls)
    got = read_day_file(root, MINUTE_DATASET, "2024-03-01")
    pd.testing.assert_frame_equal(got, expected_minute_file(pd.Timestamp("2024-03-01"),
                                                            ["AAPL"]))
    assert "'../x' not requested" in summary.describe()


def test_a_ticker_is_one_quoted_path_segment():
    session = FakeSession(handler=lambda url, params: ok([]))
    make_client(session).minute_aggs("../x", 1, 2)
    assert urlsplit(session.calls[0][0]).path == "/v2/aggs/ticker/..%2Fx/range/1/minute/1/2"


# -- reference -------------------------------------------------------------------------------


def test_reference_written_once_with_delisted_and_kept_fields(tmp_path):
    session = FakeSession(handler=FakePolygon())
    summary = dl.download(tmp_path, START, END, tickers=["AAPL"], minute=False, daily=False,
                          details=True, client=make_client(session))
    assert summary.reference == ["tickers", "splits", "dividends", "ticker_details"]
    tickers = read_reference(tmp_path, "tickers")
    assert [t["ticker"] for t in tickers] == ["AAPL", "SPY", "XYZ.WS", "OLDCO", "GONE"]
    assert tickers[3]["delisted_utc"] == "2019-06-01T00:00:00Z"
    assert all(set(t) <= set(dl.TICKER_FIELDS) for t in tickers)
    assert read_reference(tmp_path, "splits") == SPLITS
    assert "id" not in read_reference(tmp_path, "dividends")[0]
    details = read_reference(tmp_path, "ticker_details")
    assert details == [{"ticker": "AAPL", "name": "Apple Inc.", "list_date": "1980-12-12",
                        "share_class_shares_outstanding": 15441881000,
                        "weighted_shares_outstanding": 15441881000}]

    again = FakeSession(handler=FakePolygon())
    assert dl.download(tmp_path, START, END, tickers=["AAPL"], minute=False, daily=False,
                       details=True, client=make_client(again)).reference == []
    assert again.calls == []
    refreshed = FakeSession(handler=FakePolygon())
    dl.download(tmp_path, START, END, tickers=["AAPL"], minute=False, daily=False,
                refresh_reference=True, client=make_client(refreshed))
    assert len(refreshed.calls) == 4  # tickers active + delisted, splits, dividends


def test_default_universe_comes_from_reference_types(tmp_path):
    session = FakeSession(handler=FakePolygon(tickers=["AAPL", "SPY", "GONE"]))
    dl.download(tmp_path, START, END, daily=False, types=("CS", "ETF"),
                client=make_client(session))
    minute_tickers = {unquote(urlsplit(u).path.split("/")[4]) for u, _ in session.calls
                      if "/v2/aggs/ticker/" in u}
    # XYZ.WS: a warrant; OLDCO: delisted before START; GONE: delisted during the range
    assert minute_tickers == {"AAPL", "SPY", "GONE"}


def test_no_universe_is_a_clear_error(tmp_path):
    with pytest.raises(dl.PolygonError, match="no tickers"):
        dl.download(tmp_path, START, END, reference=False, daily=False,
                    client=make_client(FakeSession()))


def test_parse_list(tmp_path):
    listing = tmp_path / "t.txt"
    listing.write_text("AAPL\n# comment\nBRK.A, MSFT  # inline\n\nAAPL\n")
    assert parse_list(f"@{listing}") == ["AAPL", "BRK.A", "MSFT"]
    assert parse_list(" CS, ETF ,,ADRC") == ["CS", "ETF", "ADRC"]
    assert parse_list("") is None


# -- CLI -------------------------------------------------------------------------------------


def test_cli_help():
    result = CliRunner().invoke(main, ["download", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--start", "--end", "--tickers", "--types", "--root", "--no-minute",
                   "--no-daily", "--no-reference", "--details", "--api-url", "--retry-empty"):
        assert option in result.output


@pytest.fixture
def fake_client_factory(monkeypatch):
    """Make download()'s default PolygonClient() (looked up in bundles.download.run) talk to a
    FakeSession."""
    monkeypatch.setenv("POLYGON_API_KEY", API_KEY)
    sessions = []
    real = dl.PolygonClient

    def factory(handler):
        def build(**kwargs):
            sessions.append(FakeSession(handler=handler))
            return real(session=sessions[-1], sleep=lambda s: None, **kwargs)
        monkeypatch.setattr(dl_run, "PolygonClient", build)
        return sessions
    return factory


def test_cli_download_runs(tmp_path, fake_client_factory):
    sessions = fake_client_factory(FakePolygon())
    listing = tmp_path / "tickers.txt"
    listing.write_text("AAPL\nBRK.A\nMSFT\n")
    result = CliRunner().invoke(main, ["download", "--start", START, "--end", END,
                                       "--tickers", f"@{listing}", "--root",
                                       str(tmp_path / "data"), "--no-reference",
                                       "--details-every", "none"])
    assert result.exit_code == 0, result.output
    assert "minute files written: 4" in result.output
    assert len(sessions[0].calls) == len(SESSIONS) + 2 * len(TICKERS)
    pd.testing.assert_frame_equal(
        read_day_file(tmp_path / "data", MINUTE_DATASET, "2024-03-04"),
        expected_minute_file(pd.Timestamp("2024-03-04")))


def test_cli_auth_error_is_clear_and_hides_key(tmp_path, fake_client_factory):
    fake_client_factory(lambda url, params: FakeResponse(401, {"status": "ERROR"}))
    result = CliRunner().invoke(main, ["download", "--start", START, "--end", END,
                                       "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "POLYGON_API_KEY" in result.output and API_KEY not in result.output

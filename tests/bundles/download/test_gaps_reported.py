"""Issue #12 item 14: an empty page in the middle of a pagination and a ticker without bars are
warned about and listed in the download summary."""
from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import unquote, urlsplit

from bundles import download as dl
from tests.bundles.download.test_redirects import BASE, Transport, client_for
from tests.bundles.download.test_download import END, SESSIONS, START, FakePolygon, ok


def test_empty_page_in_the_middle_of_a_pagination_is_reported(caplog):
    pages = {None: ok([{"ticker": "A"}], next_url=f"{BASE}/v3/reference/tickers?cursor=p2"),
             "p2": ok([], next_url=f"{BASE}/v3/reference/tickers?cursor=p3"),
             "p3": ok([{"ticker": "B"}])}
    transport = Transport(lambda url, params, headers: pages[params.get("cursor")])
    client = client_for(transport)
    with caplog.at_level(logging.WARNING, logger="bundles.download.client"):
        got = list(client.paginate("/v3/reference/tickers", {"limit": 1000}))
    assert [r["ticker"] for r in got] == ["A", "B"]  # followed, nothing lost
    assert client.empty_pages == [f"{BASE}/v3/reference/tickers?cursor=p2 (page 2)"]
    assert any("page 2 has no results but a next_url" in r.getMessage()
               for r in caplog.records)


def test_a_last_empty_page_is_not_a_gap():
    pages = {None: ok([{"ticker": "A"}], next_url=f"{BASE}/v3/reference/splits?cursor=p2"),
             "p2": ok([])}
    client = client_for(Transport(lambda url, params, headers: pages[params.get("cursor")]))
    assert len(list(client.paginate("/v3/reference/splits"))) == 1
    assert client.empty_pages == []


def test_download_summary_lists_empty_pages(tmp_path):
    polygon = FakePolygon()

    def route(url, params, headers):
        if urlsplit(url).path == "/v3/reference/splits":
            if params.get("cursor") == "2":
                return ok([], next_url=f"{BASE}/v3/reference/splits?cursor=3")
            if params.get("cursor") == "3":
                return ok([{"ticker": "AAPL", "execution_date": "2020-08-31"}])
            return ok([{"ticker": "MSFT", "execution_date": "2003-02-18"}],
                      next_url=f"{BASE}/v3/reference/splits?cursor=2")
        return polygon(url, params)

    summary = dl.download(tmp_path, START, END, minute=False, daily=False, progress=False,
                          client=client_for(Transport(route)))
    assert summary.empty_pages == [f"{BASE}/v3/reference/splits?cursor=2 (page 2)"]
    assert "empty page in a pagination" in summary.describe()
    splits = json.loads((tmp_path / "raw" / "reference" / "splits.json").read_text())
    assert [s["ticker"] for s in splits] == ["MSFT", "AAPL"]


def run(root, tickers, **kwargs):
    polygon = FakePolygon(tickers=["AAPL"])  # NOPE has no bars at all
    transport = Transport(lambda url, params, headers: polygon(url, params))
    summary = dl.download(root, START, END, tickers=tickers, daily=False, reference=False,
                          progress=False, client=client_for(transport), **kwargs)
    minute = [unquote(urlsplit(u).path.split("/")[4]) for u, _ in transport.sent
              if "/v2/aggs/ticker/" in u]
    return summary, minute


def test_a_ticker_without_bars_is_reported(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bundles.download.run"):
        summary, _ = run(tmp_path, ["AAPL", "NOPE"])
    # one entry over both calendar months
    assert summary.tickers_without_bars == [("NOPE", dt.date(2024, 2, 28), dt.date(2024, 3, 4))]
    messages = [r.getMessage() for r in caplog.records if "'NOPE'" in r.getMessage()]
    assert len(messages) == 1
    assert "no minute bars from 2024-02-28 to 2024-03-04" in messages[0]
    assert "--retry-empty" in messages[0]
    assert messages[0] in summary.describe()
    assert summary.minute_files == len(SESSIONS)

    # recorded in the session manifests: not requested again ...
    again, minute = run(tmp_path, ["AAPL", "NOPE"])
    assert minute == [] and again.existing == len(SESSIONS)
    manifest = json.loads(dl.manifest_path(tmp_path, "minute_aggs_v1", SESSIONS[0]).read_text())
    assert manifest["without_bars"] == ["NOPE"]
    # ... unless asked to
    retried, minute = run(tmp_path, ["AAPL", "NOPE"], retry_empty=True)
    assert minute == ["NOPE", "NOPE"]
    assert retried.tickers_without_bars == [("NOPE", dt.date(2024, 2, 28), dt.date(2024, 3, 4))]


def test_a_session_without_any_bars_stays_unwritten_and_is_fetched_again(tmp_path):
    summary, minute = run(tmp_path, ["NOPE"])
    assert summary.minute_files == 0 and len(summary.empty_sessions) == len(SESSIONS)
    assert summary.tickers_without_bars == [("NOPE", dt.date(2024, 2, 28), dt.date(2024, 3, 4))]
    _, minute = run(tmp_path, ["NOPE"])
    assert minute == ["NOPE", "NOPE"]  # an empty session is not final (as before)

"""Issue #12 item 10: the API key never follows a redirect off the API host, travels in an
``Authorization`` header (never a URL), and the API origin is configurable."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
import requests
from click.testing import CliRunner

from bundles import download as dl
from bundles.download import run as dl_run
from bundles.layout import reference_dir
from bundles.reference_files import read_reference
from gapline.cli import main
from tests.bundles.download.test_download import API_KEY, END, START, FakePolygon, FakeResponse, ok

BASE = "https://api.polygon.io"
EVIL = "https://evil.example.com"
REDIRECTS = (301, 302, 303, 307, 308)


def host(url):
    return urlsplit(url).netloc


class Transport:
    """A ``requests.Session`` stand-in that behaves like requests: it follows redirects unless
    ``allow_redirects=False`` (dropping ``Authorization`` on a host change, as requests does),
    and records every request it sends as ``(full url, headers)``.

    ``route(url, params, headers)`` answers one request; ``params`` merges the URL's query and
    the ``params`` the client passed (with their types)."""

    def __init__(self, route):
        self.route = route
        self.sent = []

    def get(self, url, params=None, headers=None, timeout=None, allow_redirects=True):
        assert timeout is not None
        headers = dict(headers or {})
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        merged = {**query, **(params or {})}
        full = url.split("?", 1)[0] + ("?" + urlencode(merged) if merged else "")
        for _ in range(10):
            self.sent.append((full, dict(headers)))
            response = self.route(full.split("?", 1)[0], merged, headers)
            if not (allow_redirects and response.status_code in REDIRECTS):
                return response
            target = urljoin(full, response.headers["Location"])
            if host(target) != host(full):
                headers.pop("Authorization", None)
            full = target
            merged = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
        raise AssertionError("redirect loop")

    def key_sent_to(self, netloc):
        """Requests to ``netloc`` that carried the key (in the URL or a header)."""
        return [(u, h) for u, h in self.sent
                if host(u) == netloc and (API_KEY in u or API_KEY in json.dumps(h))]

    def to(self, netloc):
        return [u for u, _ in self.sent if host(u) == netloc]


def client_for(transport, **kwargs):
    kwargs.setdefault("base_url", BASE)
    kwargs.setdefault("sleep", lambda s: None)
    return dl.PolygonClient(api_key=API_KEY, session=transport, **kwargs)


def moved_to(target, status=301):
    """A route: the API host answers ``status`` to ``target`` + the original query (as a host
    rename does); ``target``'s host serves a body that must never be saved."""
    def route(url, params, headers):
        if host(url) == host(BASE):
            query = urlencode(params)
            return FakeResponse(status, {"status": "MOVED"},
                                headers={"Location": url.replace(BASE, target, 1)
                                         + ("?" + query if query else "")})
        return ok([{"ticker": "EVIL", "execution_date": "2024-01-01", "split_from": 1,
                    "split_to": 1000}])
    return route


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirect_to_another_host_is_refused_and_never_gets_the_key(status):
    transport = Transport(moved_to(EVIL, status))
    try:
        client_for(transport).get_json("/v3/reference/splits", {"limit": 1000})
        error = None
    except dl.PolygonError as exc:
        error = str(exc)
    assert transport.key_sent_to(host(EVIL)) == []
    assert transport.to(host(EVIL)) == []  # not followed at all
    assert error is not None, "the redirect must raise"
    assert re.search(r"redirect to another host https://evil\.example\.com refused", error)
    assert API_KEY not in error
    assert "GAPLINE_API_URL" in error  # what to do if the API really moved


def test_redirect_off_host_with_a_real_requests_session():
    """The same with requests' own redirect machinery (a mounted adapter, no network)."""
    sent = []

    class Adapter(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            sent.append((request.url, dict(request.headers)))
            response = requests.Response()
            response.request, response.url = request, request.url
            if host(request.url) == host(BASE):
                response.status_code = 301
                response.headers["Location"] = request.url.replace(BASE, EVIL, 1)
                response._content = b""
            else:
                response.status_code = 200
                response._content = json.dumps({"results": [{"ticker": "EVIL"}]}).encode()
            return response

        def close(self):
            pass

    session = requests.Session()
    session.mount("https://", Adapter())
    with pytest.raises(dl.PolygonError, match="evil.example.com"):
        client_for(session, max_retries=0).get_json("/v3/reference/splits", {"limit": 1000})
    assert [u for u, _ in sent if host(u) == host(EVIL)] == []
    assert all(API_KEY not in u for u, _ in sent)
    assert sent[0][1]["Authorization"] == f"Bearer {API_KEY}"


def test_download_does_not_save_a_redirected_body(tmp_path):
    def route(url, params, headers):
        if urlsplit(url).path == "/v3/reference/splits":
            return moved_to(EVIL)(url, params, headers)
        return FakePolygon()(url, {k: v for k, v in params.items()})

    transport = Transport(route)
    with pytest.raises(dl.PolygonError, match="evil.example.com"):
        dl.download(tmp_path, START, END, minute=False, daily=False,
                    client=client_for(transport))
    assert transport.key_sent_to(host(EVIL)) == []
    assert not (reference_dir(tmp_path) / "splits.json").exists()
    assert read_reference(tmp_path, "tickers")  # what came before is kept
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"EVIL" not in path.read_bytes() and API_KEY.encode() not in path.read_bytes()


def test_same_host_redirect_is_followed_with_the_header_only():
    def route(url, params, headers):
        if urlsplit(url).path == "/v3/reference/splits":
            return FakeResponse(301, {}, headers={
                "Location": f"/v3/reference/splits-moved?cursor=abc&apiKey={API_KEY}"})
        return ok([{"ticker": "AAPL"}])

    transport = Transport(route)
    got = client_for(transport).get_json("/v3/reference/splits", {"limit": 1000})
    assert got["results"] == [{"ticker": "AAPL"}]
    assert [urlsplit(u).path for u, _ in transport.sent] == ["/v3/reference/splits",
                                                              "/v3/reference/splits-moved"]
    assert all(API_KEY not in u and "apikey" not in u.lower() for u, _ in transport.sent)
    assert all(h.get("Authorization") == f"Bearer {API_KEY}" for _, h in transport.sent)


def test_redirect_loop_on_the_api_host_stops():
    transport = Transport(lambda url, params, headers: FakeResponse(
        302, {}, headers={"Location": f"{BASE}/v3/a" if url.endswith("/b") else f"{BASE}/v3/b"}))
    with pytest.raises(dl.PolygonError, match="redirects"):
        client_for(transport).get_json("/v3/a")
    assert len(transport.sent) <= 6


def test_requests_carry_the_bearer_header_and_no_api_key_param():
    # Polygon may put the key into next_url: it must be dropped, not sent back in the URL
    pages = {None: ok([{"ticker": "A"}], next_url=f"{BASE}/v3/reference/tickers?cursor=p2"
                                                  f"&apiKey={API_KEY}"),
             "p2": ok([{"ticker": "B"}])}
    transport = Transport(lambda url, params, headers: pages[params.get("cursor")])
    got = list(client_for(transport).paginate("/v3/reference/tickers", {"limit": 1000}))
    assert [r["ticker"] for r in got] == ["A", "B"]
    assert len(transport.sent) == 2
    for url, headers in transport.sent:
        assert headers["Authorization"] == f"Bearer {API_KEY}"
        assert API_KEY not in url and "apikey" not in url.lower()
    assert "cursor=p2" in transport.sent[1][0]


def test_api_url_default_env_and_validation(monkeypatch):
    monkeypatch.delenv("GAPLINE_API_URL", raising=False)
    transport = Transport(lambda url, params, headers: ok([]))
    client = dl.PolygonClient(api_key=API_KEY, session=transport)
    assert client.base_url == dl.DEFAULT_BASE_URL == "https://api.massive.com"
    client.get_json("/v3/reference/splits")
    assert host(transport.sent[0][0]) == "api.massive.com"

    monkeypatch.setenv("GAPLINE_API_URL", "https://api.polygon.io/")
    assert dl.PolygonClient(api_key=API_KEY, session=transport).base_url == BASE
    # an explicit base_url wins over the environment
    assert dl.PolygonClient(api_key=API_KEY, session=transport,
                            base_url="https://api.massive.com").base_url == \
        "https://api.massive.com"
    for bad in ("http://api.polygon.io", "api.polygon.io",
                f"https://api.polygon.io?apiKey={API_KEY}"):
        monkeypatch.setenv("GAPLINE_API_URL", bad)
        with pytest.raises(dl.PolygonError, match="GAPLINE_API_URL") as info:
            dl.PolygonClient(api_key=API_KEY, session=transport)
        assert API_KEY not in str(info.value)


def test_cli_api_url_option(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", API_KEY)
    monkeypatch.delenv("GAPLINE_API_URL", raising=False)
    built = []
    real = dl.PolygonClient

    def build(**kwargs):
        transport = Transport(lambda url, params, headers: FakePolygon()(url, params))
        built.append((kwargs, transport))
        return real(session=transport, sleep=lambda s: None, **kwargs)

    monkeypatch.setattr(dl_run, "PolygonClient", build)
    result = CliRunner().invoke(main, ["download", "--start", START, "--end", END,
                                       "--tickers", "AAPL", "--no-reference", "--no-minute",
                                       "--root", str(tmp_path), "--api-url",
                                       "https://api.polygon.io"])
    assert result.exit_code == 0, result.output
    (kwargs, transport), = built
    assert kwargs["base_url"] == "https://api.polygon.io"
    assert transport.sent and all(host(u) == "api.polygon.io" for u, _ in transport.sent)
    assert "--api-url" in CliRunner().invoke(main, ["download", "--help"]).output


def test_bearer_tokens_are_redacted_from_text():
    text = f"headers {{'Authorization': 'Bearer {API_KEY}'}} url ?apiKey={API_KEY}&a=1"
    assert API_KEY not in dl.redact(text)
    assert API_KEY not in dl.redact(f"Authorization: bearer {API_KEY}")
    assert dl.redact(f"Authorization: Bearer {API_KEY}") == "Authorization: Bearer ***"

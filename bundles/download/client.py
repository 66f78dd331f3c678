"""A small, key-safe, retrying client for Polygon's (Massive's) REST API.

The API key never leaves :class:`PolygonClient`: it is sent in an ``Authorization: Bearer``
header (never in a URL), only to the API origin (redirects elsewhere are refused, not followed),
and scrubbed (:mod:`.redact`) from every message, exception and log record the client produces.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import random
import time
from typing import Callable, Iterable, Iterator
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import pandas as pd
import requests

from .errors import (
    MissingApiKeyError,
    PaginationLoopError,
    PolygonAuthError,
    PolygonError,
    PolygonHTTPError,
    RetriesExhaustedError,
)
from .redact import _install_urllib3_filter, _strip_key, redact

log = logging.getLogger(__name__)

API_KEY_ENV = "POLYGON_API_KEY"
# Polygon.io is now Massive: api.massive.com is the current REST host; api.polygon.io is
# still served (set GAPLINE_API_URL=https://api.polygon.io to keep using it).
DEFAULT_BASE_URL = "https://api.massive.com"
API_URL_ENV = "GAPLINE_API_URL"
MAX_RETRY_AFTER_ENV = "GAPLINE_MAX_RETRY_AFTER"
DEFAULT_MAX_RETRY_AFTER = 120.0  # seconds; a Retry-After of a day would stall a download
MAX_REDIRECTS = 5
AGGS_LIMIT = 50_000
REFERENCE_LIMIT = 1_000

TICKER_FIELDS = ("ticker", "name", "type", "primary_exchange", "active", "delisted_utc",
                 "composite_figi", "share_class_figi", "cik", "market", "locale",
                 "currency_name", "last_updated_utc")
SPLIT_FIELDS = ("ticker", "execution_date", "split_from", "split_to", "id")
DIVIDEND_FIELDS = ("ticker", "ex_dividend_date", "pay_date", "record_date", "declaration_date",
                   "cash_amount", "dividend_type", "frequency", "currency")
DETAIL_FIELDS = ("ticker", "name", "type", "active", "list_date", "delisted_utc",
                 "share_class_shares_outstanding", "weighted_shares_outstanding", "market_cap",
                 "primary_exchange", "composite_figi", "share_class_figi", "cik", "sic_code",
                 "sic_description", "currency_name")
# Transport failures worth another attempt; anything else from requests is a programming error.
_RETRIED_EXCEPTIONS = (requests.ConnectionError, requests.Timeout,
                       requests.exceptions.ChunkedEncodingError,
                       requests.exceptions.ContentDecodingError)


def _canonical(url: str, params: dict | None) -> tuple:
    """A comparable identity of a request (origin, path, sorted query without the key)."""
    parts = urlsplit(_strip_key(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(str(k), str(v)) for k, v in (params or {}).items() if k.lower() != "apikey"]
    return parts.scheme, parts.netloc, parts.path, tuple(sorted(query))


def _pick(record: dict, fields: Iterable[str]) -> dict:
    return {k: record[k] for k in fields if k in record}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def resolve_base_url(base_url: str | None = None, environ=None) -> str:
    """The API origin: ``base_url``, else ``$GAPLINE_API_URL``, else :data:`DEFAULT_BASE_URL`.

    Raises
    ------
    PolygonError
        When it is not an ``https://host`` URL (the key must not travel in clear text).
    """
    environ = os.environ if environ is None else environ
    source = "base_url" if base_url else API_URL_ENV
    url = (base_url or environ.get(API_URL_ENV, "").strip() or DEFAULT_BASE_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname or parts.query or parts.fragment:
        raise PolygonError(
            f"{source}: the API URL must look like https://api.massive.com (https, a host, no "
            f"query), got {redact(url)!r}")
    return url


def resolve_max_retry_after(value: float | None = None, environ=None) -> float:
    """The cap on a server's ``Retry-After``: ``value``, else ``$GAPLINE_MAX_RETRY_AFTER``, else
    :data:`DEFAULT_MAX_RETRY_AFTER` seconds."""
    environ = os.environ if environ is None else environ
    if value is None:
        text = environ.get(MAX_RETRY_AFTER_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_RETRY_AFTER
        try:
            value = float(text)
        except ValueError:
            raise PolygonError(f"{MAX_RETRY_AFTER_ENV}={text!r}: expected seconds, e.g. 120"
                               ) from None
    if not value >= 0 or value == float("inf"):
        raise PolygonError(f"max_retry_after must be a finite number of seconds >= 0, "
                           f"got {value!r}")
    return float(value)


class PolygonClient:
    """A small, key-safe, retrying client for Polygon's REST API.

    Parameters
    ----------
    api_key : str, optional
        Defaults to ``$POLYGON_API_KEY``.
    base_url : str, optional
        API origin; defaults to ``$GAPLINE_API_URL``, else :data:`DEFAULT_BASE_URL`
        (``https://api.massive.com``; ``https://api.polygon.io`` is still served). The key is
        only ever sent there: a ``next_url`` or a redirect elsewhere is refused, not followed.
    session : requests.Session-like, optional
        Anything with ``get(url, params=..., headers=..., timeout=..., allow_redirects=...)``;
        injectable for tests.
    max_retries : int
        Extra attempts after the first for retried failures (429, 5xx, connection errors,
        timeouts, truncated or invalid JSON).
    backoff : float
        First retry delay in seconds; doubles each attempt, capped at ``max_backoff``, with
        jitter. A ``Retry-After`` header is honoured (waited at least), up to
        ``max_retry_after``.
    max_backoff : float
        Cap on the exponential delay.
    timeout : float or tuple
        ``requests`` timeout (connect, read).
    sleep : callable
        ``time.sleep``; tests pass a recorder.
    jitter : callable
        Returns a float in [0, 1); the delay is scaled by ``0.5 + 0.5 * jitter()`` so many
        clients hitting a rate limit do not retry in lockstep.
    max_retry_after : float, optional
        Longest wait a ``Retry-After`` header can impose, in seconds (longer ones are capped
        and logged); defaults to ``$GAPLINE_MAX_RETRY_AFTER``, else 120.

    Attributes
    ----------
    requests : int
        HTTP requests made.
    empty_pages : list of str
        Pages (key-free URLs) that held no results but a ``next_url``: a gap in a pagination.

    Raises
    ------
    MissingApiKeyError
        When no key is given and ``POLYGON_API_KEY`` is unset or empty.
    """

    def __init__(self, api_key: str | None = None, base_url: str | None = None,
                 session=None, max_retries: int = 5, backoff: float = 1.0,
                 max_backoff: float = 60.0, timeout=(10, 60),
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random,
                 max_retry_after: float | None = None):
        api_key = api_key or os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            raise MissingApiKeyError(
                f"no Polygon API key: set the {API_KEY_ENV} environment variable")
        self._api_key = api_key
        self.base_url = resolve_base_url(base_url)
        self.max_retry_after = resolve_max_retry_after(max_retry_after)
        self.session = session if session is not None else requests.Session()
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._sleep = sleep
        self._jitter = jitter
        self.requests = 0  # HTTP attempts made, for progress reports and tests
        self.empty_pages: list[str] = []  # pages without results but with a next_url
        _install_urllib3_filter()

    def __repr__(self) -> str:
        return f"PolygonClient(base_url={self.base_url!r}, api_key='***')"

    # -- transport ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    def _url(self, path: str) -> str:
        if not path.startswith(("http://", "https://")):
            return self.base_url + "/" + path.lstrip("/")
        if _origin(path) != _origin(self.base_url):
            raise PolygonError(f"refusing to send the API key to {self._redact(_strip_key(path))}"
                               f" (not {self.base_url})")
        return _strip_key(path)

    def _delay(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** attempt)
        return base * (0.5 + 0.5 * self._jitter())

    @staticmethod
    def _retry_after(response) -> float | None:
        value = (getattr(response, "headers", None) or {}).get("Retry-After")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:  # the HTTP-date form
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())

    def _server_message(self, response) -> str:
        try:
            body = response.json()
            text = body.get("message") or body.get("error") or body.get("status") or ""
        except (ValueError, AttributeError):
            text = getattr(response, "text", "") or ""
        return self._redact(str(text).strip()[:300])

    def _send(self, url: str, params: dict | None, shown: str):
        """One GET with the key in the Authorization header; redirects are followed by hand,
        and only on the API origin (same scheme and host): the key never goes anywhere else."""
        headers = {"Authorization": f"Bearer {self._api_key}"}
        for _ in range(MAX_REDIRECTS + 1):
            response = self.session.get(url, params=params, headers=headers,
                                        timeout=self.timeout, allow_redirects=False)
            status = response.status_code
            if not 300 <= status < 400 or status == 304:
                return response
            location = (getattr(response, "headers", None) or {}).get("Location")
            if not location:
                raise PolygonHTTPError(status, f"GET {shown}: HTTP {status} without a Location")
            target = urljoin(url, location)
            if _origin(target) != _origin(self.base_url):
                parts = urlsplit(target)
                host = parts.netloc.rsplit("@", 1)[-1] or "?"  # never userinfo
                raise PolygonError(
                    f"GET {shown}: HTTP {status} redirect to another host "
                    f"{self._redact(f'{parts.scheme}://{host}')} refused (the "
                    f"API key is only sent to {self.base_url}); if the API moved, set "
                    f"{API_URL_ENV} (or gapline download --api-url) to the new origin")
            log.info("GET %s: HTTP %d redirect to %s", shown, status,
                     self._redact(_strip_key(target)))
            url, params = _strip_key(target), None  # the Location carries the query
        raise PolygonError(f"GET {shown}: more than {MAX_REDIRECTS} redirects")

    def get_json(self, path: str, params: dict | None = None) -> dict:
        """GET ``path`` (relative to ``base_url``, or a same-origin ``next_url``) as a dict.

        Parameters
        ----------
        path : str
            ``/v2/...`` or an absolute URL on ``base_url``.
        params : dict, optional
            Query parameters (never the key: it goes in the Authorization header).

        Returns
        -------
        dict
            The decoded JSON body.

        Raises
        ------
        PolygonError
            On a redirect off the API origin (not followed) or too many redirects.
        PolygonAuthError
            On 401/403 (not retried).
        PolygonHTTPError
            On other 4xx answers except 429 (not retried).
        RetriesExhaustedError
            When 429, 5xx, network errors or invalid JSON persist through every attempt.
        """
        url = self._url(path)
        shown = self._redact(url)
        query = {k: v for k, v in (params or {}).items() if str(k).lower() != "apikey"}
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            retry_after = None
            try:
                response = self._send(url, query, shown)
            except _RETRIED_EXCEPTIONS as exc:
                # requests puts the full URL, key included, in these messages
                last = f"{type(exc).__name__}: {self._redact(str(exc))}"
            else:
                status = response.status_code
                if status in (401, 403):
                    detail = self._server_message(response)
                    raise PolygonAuthError(
                        f"Polygon rejected the API key (HTTP {status}"
                        f"{': ' + detail if detail else ''}) for GET {shown}: the key is "
                        f"invalid, expired or not entitled to this data; set {API_KEY_ENV}")
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                    retry_after = self._retry_after(response)
                elif status >= 400:
                    raise PolygonHTTPError(
                        status, f"GET {shown}: HTTP {status}: {self._server_message(response)}")
                else:
                    try:
                        payload = response.json()
                    except ValueError:  # includes requests' JSONDecodeError: a cut-off body
                        payload = None
                    if isinstance(payload, dict):
                        return payload
                    last = "invalid or truncated JSON body"
            if attempt == self.max_retries:
                break
            wait = self._delay(attempt)
            if retry_after is not None:
                if retry_after > self.max_retry_after:
                    log.warning("GET %s: Retry-After %.0fs capped at %.0fs (%s)", shown,
                                retry_after, self.max_retry_after, MAX_RETRY_AFTER_ENV)
                    retry_after = self.max_retry_after
                wait = max(wait, retry_after)
            log.warning("GET %s: %s; retry %d/%d in %.1fs", shown, last, attempt + 1,
                        self.max_retries, wait)
            self._sleep(wait)
        raise RetriesExhaustedError(
            f"GET {shown} failed after {self.max_retries + 1} attempts (last: {last})")

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Yield every ``results`` item of ``path``, following ``next_url`` page by page.

        Raises
        ------
        PaginationLoopError
            When a ``next_url`` repeats a request already made (the API would loop forever).
        """
        seen = {_canonical(self._url(path), params)}
        shown = self._redact(self._url(path))
        payload = self.get_json(path, params)
        page = 1
        while True:
            results = payload.get("results") or []
            next_url = payload.get("next_url")
            if not next_url:
                yield from results
                return
            if not results:
                # not an error (the API may skip ahead), but a gap worth a look: reported
                log.warning("GET %s: page %d has no results but a next_url; following it",
                            shown, page)
                self.empty_pages.append(f"{shown} (page {page})")
            yield from results
            key = _canonical(self._url(next_url), None)
            if key in seen:
                raise PaginationLoopError(
                    f"pagination loop: {self._redact(_strip_key(next_url))} was already fetched")
            seen.add(key)
            shown = self._redact(self._url(next_url))
            payload = self.get_json(next_url)
            page += 1

    # -- endpoints ---------------------------------------------------------------------------

    def minute_aggs(self, ticker: str, start, end) -> list[dict]:
        """Unadjusted 1-minute bars of ``ticker`` from ``start`` to ``end`` (ms or YYYY-MM-DD)."""
        # quote: a ticker is data, never path syntax ("A/B" must stay one segment)
        path = f"/v2/aggs/ticker/{quote(ticker, safe='')}/range/1/minute/{start}/{end}"
        return list(self.paginate(path, {"adjusted": "false", "sort": "asc",
                                          "limit": AGGS_LIMIT}))

    def grouped_daily(self, day) -> list[dict]:
        """Unadjusted daily bars of every US stock for one session."""
        path = f"/v2/aggs/grouped/locale/us/market/stocks/{pd.Timestamp(day):%Y-%m-%d}"
        return list(self.paginate(path, {"adjusted": "false"}))

    def reference_tickers(self) -> list[dict]:
        """Every stock ticker, active then delisted, reduced to :data:`TICKER_FIELDS`."""
        return [_pick(r, TICKER_FIELDS)
                for active in ("true", "false")
                for r in self.paginate("/v3/reference/tickers",
                                       {"market": "stocks", "active": active,
                                        "limit": REFERENCE_LIMIT})]

    def splits(self) -> list[dict]:
        """Every split, reduced to :data:`SPLIT_FIELDS`."""
        return [_pick(r, SPLIT_FIELDS)
                for r in self.paginate("/v3/reference/splits", {"limit": REFERENCE_LIMIT})]

    def dividends(self) -> list[dict]:
        """Every cash dividend, reduced to :data:`DIVIDEND_FIELDS`."""
        return [_pick(r, DIVIDEND_FIELDS)
                for r in self.paginate("/v3/reference/dividends", {"limit": REFERENCE_LIMIT})]

    def ticker_details(self, ticker: str, date=None) -> dict | None:
        """Details of ``ticker`` reduced to :data:`DETAIL_FIELDS`; None when Polygon has none.

        ``date``: the point in time (``?date=YYYY-MM-DD``: the security trading under the
        ticker that day, share counts from filings whose period of report is on or before it);
        default: today's details."""
        params = None if date is None else {"date": f"{pd.Timestamp(date):%Y-%m-%d}"}
        try:
            payload = self.get_json(f"/v3/reference/tickers/{quote(ticker, safe='')}", params)
        except PolygonHTTPError as exc:
            if exc.status == 404:
                return None
            raise
        return _pick(payload.get("results") or {}, DETAIL_FIELDS) or None

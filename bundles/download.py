"""Fill the raw cache (see :mod:`bundles.layout`) from Polygon's (Massive's) REST API.

The REST responses are converted to the flat-file format of Polygon's S3 bucket so that a cache
filled here is indistinguishable from one filled with the flat files themselves:

* day aggs: one file per XNYS session from the grouped-daily endpoint;
* minute aggs: per ticker and calendar month from the aggregates endpoint, staged under
  ``<root>/.staging/minute/<YYYY-MM>/`` until every ticker of the month is in, then written as
  one file per session (all tickers, sorted by ticker then ``window_start``);
* reference: tickers (active and delisted), splits, dividends and optionally ticker details.

Every download resumes: sessions whose day file exists are not fetched again, staged
(ticker, month) chunks are reused, and nothing is ever overwritten or left half-written.

The API key never leaves :class:`PolygonClient`: it is sent as the ``apiKey`` query parameter
and scrubbed from every message, exception and log record the client produces.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import json
import logging
import os
import random
import re
import shutil
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pandas as pd
import requests

from bundles.layout import (
    DAY_DATASET,
    FLAT_COLUMNS,
    MINUTE_DATASET,
    atomic_write_bytes,
    day_file_path,
    read_reference,
    reference_dir,
    write_day_file,
    write_reference,
)

log = logging.getLogger(__name__)

API_KEY_ENV = "POLYGON_API_KEY"
DEFAULT_BASE_URL = "https://api.polygon.io"
DEFAULT_TYPES = ("CS", "ETF", "ADRC")
AGGS_LIMIT = 50_000
REFERENCE_LIMIT = 1_000
NY_TZ = "America/New_York"

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

# Polygon's short aggregate keys -> flat-file column names.
_AGG_KEYS = {"T": "ticker", "v": "volume", "o": "open", "c": "close", "h": "high", "l": "low",
             "t": "window_start", "n": "transactions"}
_NS_PER_MS = 1_000_000
_STAGING = Path(".staging") / "minute"
# Upper case and digits only: a safe name can never hold a separator, a dot or a case that a
# case-insensitive file system would fold into another ticker's name (BACpB vs BACPB).
_SAFE_CHARS = frozenset(string.ascii_uppercase + string.digits)
_KEY_IN_URL = re.compile(r"(?i)(apikey=)[^&\s'\"]+")
# Transport failures worth another attempt; anything else from requests is a programming error.
_RETRIED_EXCEPTIONS = (requests.ConnectionError, requests.Timeout,
                       requests.exceptions.ChunkedEncodingError,
                       requests.exceptions.ContentDecodingError)


class PolygonError(RuntimeError):
    """A Polygon request failed; the message never contains the API key."""


class MissingApiKeyError(PolygonError):
    """No API key was given and ``POLYGON_API_KEY`` is unset."""


class PolygonAuthError(PolygonError):
    """Polygon answered 401/403: the key is wrong, expired or not entitled. Not retried."""


class PolygonHTTPError(PolygonError):
    """A non-retried HTTP error (4xx other than 401/403/429)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class RetriesExhaustedError(PolygonError):
    """A retried failure (429, 5xx, network, invalid JSON) persisted through every attempt."""


class PaginationLoopError(PolygonError):
    """Polygon returned a ``next_url`` that was already followed."""


def redact(text: str, api_key: str | None = None) -> str:
    """``text`` with ``api_key`` and any ``apiKey=...`` query value replaced by ``***``."""
    if api_key:
        text = text.replace(api_key, "***")
    return _KEY_IN_URL.sub(r"\1***", text)


class _RedactFilter(logging.Filter):
    """Scrub ``apiKey=...`` from urllib3's debug lines, which print every request URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _KEY_IN_URL.search(message):
            record.msg, record.args = redact(message), None
        return True


def _install_urllib3_filter() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactFilter) for f in logger.filters):
        logger.addFilter(_RedactFilter())


def _strip_key(url: str) -> str:
    """``url`` without an ``apiKey`` query parameter (so it can be shown and compared)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() != "apikey"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _canonical(url: str, params: dict | None) -> tuple:
    """A comparable identity of a request (origin, path, sorted query without the key)."""
    parts = urlsplit(_strip_key(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(str(k), str(v)) for k, v in (params or {}).items() if k.lower() != "apikey"]
    return parts.scheme, parts.netloc, parts.path, tuple(sorted(query))


def _pick(record: dict, fields: Iterable[str]) -> dict:
    return {k: record[k] for k in fields if k in record}


class PolygonClient:
    """A small, key-safe, retrying client for Polygon's REST API.

    Parameters
    ----------
    api_key : str, optional
        Defaults to ``$POLYGON_API_KEY``.
    base_url : str
        API origin; the key is only ever sent there (a ``next_url`` elsewhere is refused).
    session : requests.Session-like, optional
        Anything with ``get(url, params=..., timeout=...)``; injectable for tests.
    max_retries : int
        Extra attempts after the first for retried failures (429, 5xx, connection errors,
        timeouts, truncated or invalid JSON).
    backoff : float
        First retry delay in seconds; doubles each attempt, capped at ``max_backoff``, with
        jitter. A ``Retry-After`` header is honoured (waited at least).
    max_backoff : float
        Cap on the exponential delay.
    timeout : float or tuple
        ``requests`` timeout (connect, read).
    sleep : callable
        ``time.sleep``; tests pass a recorder.
    jitter : callable
        Returns a float in [0, 1); the delay is scaled by ``0.5 + 0.5 * jitter()`` so many
        clients hitting a rate limit do not retry in lockstep.

    Raises
    ------
    MissingApiKeyError
        When no key is given and ``POLYGON_API_KEY`` is unset or empty.
    """

    def __init__(self, api_key: str | None = None, base_url: str = DEFAULT_BASE_URL,
                 session=None, max_retries: int = 5, backoff: float = 1.0,
                 max_backoff: float = 60.0, timeout=(10, 60),
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random):
        api_key = api_key or os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            raise MissingApiKeyError(
                f"no Polygon API key: set the {API_KEY_ENV} environment variable")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.session = session if session is not None else requests.Session()
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._sleep = sleep
        self._jitter = jitter
        self.requests = 0  # HTTP attempts made, for progress reports and tests
        _install_urllib3_filter()

    def __repr__(self) -> str:
        return f"PolygonClient(base_url={self.base_url!r}, api_key='***')"

    # -- transport ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    def _url(self, path: str) -> str:
        if not path.startswith(("http://", "https://")):
            return self.base_url + "/" + path.lstrip("/")
        if urlsplit(path)[:2] != urlsplit(self.base_url)[:2]:
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

    def get_json(self, path: str, params: dict | None = None) -> dict:
        """GET ``path`` (relative to ``base_url``, or a same-origin ``next_url``) as a dict.

        Parameters
        ----------
        path : str
            ``/v2/...`` or an absolute URL on ``base_url``.
        params : dict, optional
            Query parameters; ``apiKey`` is added here, on every request.

        Returns
        -------
        dict
            The decoded JSON body.

        Raises
        ------
        PolygonAuthError
            On 401/403 (not retried).
        PolygonHTTPError
            On other 4xx answers except 429 (not retried).
        RetriesExhaustedError
            When 429, 5xx, network errors or invalid JSON persist through every attempt.
        """
        url = self._url(path)
        shown = self._redact(url)
        query = {**(params or {}), "apiKey": self._api_key}
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            retry_after = None
            try:
                response = self.session.get(url, params=query, timeout=self.timeout)
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
        payload = self.get_json(path, params)
        while True:
            yield from payload.get("results") or []
            next_url = payload.get("next_url")
            if not next_url:
                return
            key = _canonical(self._url(next_url), None)
            if key in seen:
                raise PaginationLoopError(
                    f"pagination loop: {self._redact(_strip_key(next_url))} was already fetched")
            seen.add(key)
            payload = self.get_json(next_url)

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

    def ticker_details(self, ticker: str) -> dict | None:
        """Details of ``ticker`` reduced to :data:`DETAIL_FIELDS`; None when Polygon has none."""
        try:
            payload = self.get_json(f"/v3/reference/tickers/{quote(ticker, safe='')}")
        except PolygonHTTPError as exc:
            if exc.status == 404:
                return None
            raise
        return _pick(payload.get("results") or {}, DETAIL_FIELDS) or None


# -- conversion and staging ------------------------------------------------------------------


def bars_to_frame(bars: Iterable[dict], ticker: str | None = None) -> pd.DataFrame:
    """Polygon aggregate results -> a flat-file frame (:data:`~bundles.layout.FLAT_COLUMNS`).

    Parameters
    ----------
    bars : iterable of dict
        Results with Polygon's short keys (``T`` only for grouped daily, ``t`` in ms).
    ticker : str, optional
        The ticker of every bar, for per-ticker endpoints whose results carry no ``T``.

    Returns
    -------
    pandas.DataFrame
        ``window_start`` in nanoseconds, ``transactions`` as nullable ``Int64``, ``volume`` as
        int64 when every value is whole, sorted by ticker then ``window_start`` and without
        duplicate (ticker, window_start) rows.
    """
    raw = pd.DataFrame.from_records(list(bars), columns=list(_AGG_KEYS))
    if ticker is not None:
        raw["T"] = ticker
    frame = raw.rename(columns=_AGG_KEYS)[FLAT_COLUMNS].dropna(subset=["ticker", "window_start"])
    volume = pd.to_numeric(frame["volume"])
    if volume.notna().all() and (volume % 1 == 0).all():
        volume = volume.astype("int64")
    frame = frame.assign(
        ticker=frame["ticker"].astype(str),
        volume=volume,
        open=frame["open"].astype("float64"),
        close=frame["close"].astype("float64"),
        high=frame["high"].astype("float64"),
        low=frame["low"].astype("float64"),
        window_start=frame["window_start"].astype("int64") * _NS_PER_MS,
        transactions=pd.to_numeric(frame["transactions"]).astype("Int64"),
    )
    return (frame.sort_values(["ticker", "window_start"], kind="mergesort")
            .drop_duplicates(["ticker", "window_start"])
            .reset_index(drop=True))


def safe_name(ticker: str) -> str:
    """A reversible file-name encoding of ``ticker``: ``A-Z``, ``0-9`` and ``_xx`` escapes.

    Every other character (lower case, ``.``, ``/``, ``_`` itself, non-ASCII) becomes
    ``_xx`` (lower-case hex) per UTF-8 byte, so ``BRK.A`` -> ``BRK_2eA`` and ``../x`` ->
    ``_2e_2e_2f_78``. Names stay distinct on case-insensitive file systems too.
    """
    if not ticker:
        raise ValueError("empty ticker")
    return "".join(ch if ch in _SAFE_CHARS else "".join(f"_{b:02x}" for b in ch.encode())
                   for ch in ticker)


def staging_dir(root: Path, month: str) -> Path:
    """``<root>/.staging/minute/<YYYY-MM>``: the staged chunks of one calendar month."""
    if not re.fullmatch(r"\d{4}-\d{2}", month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return Path(root) / _STAGING / month


def staging_path(root: Path, month: str, ticker: str) -> Path:
    """Where the (ticker, month) minute chunk is staged; always directly in :func:`staging_dir`."""
    base = staging_dir(root, month)
    path = base / f"{safe_name(ticker)}.json.gz"
    # safe_name cannot produce a separator or "..", but a path escape must be impossible
    if path.resolve().parent != base.resolve():
        raise ValueError(f"ticker {ticker!r} would escape the staging folder")
    return path


def _read_stage(path: Path) -> dict | None:
    try:
        return json.loads(gzip.decompress(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError):
        # written atomically, so this is outside interference; refetching is always safe
        log.warning("ignoring unreadable staged chunk %s", path)
        return None


def _ny_span_ms(first, last) -> tuple[int, int]:
    """[midnight New York of ``first``, midnight New York after ``last``) in epoch ms, inclusive.

    Explicit timestamps because a bare date would leave it to the API which time zone a day
    starts in, and extended hours run to 20:00 New York, past midnight UTC in winter.
    """
    start = pd.Timestamp(first).tz_localize(NY_TZ)
    stop = (pd.Timestamp(last) + pd.Timedelta(days=1)).tz_localize(NY_TZ)
    return start.value // _NS_PER_MS, stop.value // _NS_PER_MS - 1


def _session_dates(frame: pd.DataFrame) -> pd.Series:
    """The New York calendar date of each bar (a minute file holds 04:00-20:00 New York)."""
    return (pd.to_datetime(frame["window_start"], unit="ns", utc=True)
            .dt.tz_convert(NY_TZ).dt.tz_localize(None).dt.normalize())


# -- download --------------------------------------------------------------------------------


@dataclass
class DownloadSummary:
    """What one :func:`download` call did."""

    day_files: int = 0
    minute_files: int = 0
    existing: int = 0  # sessions skipped because their file was already there
    empty_sessions: list = field(default_factory=list)  # (dataset, date): no bars, no file
    chunks_fetched: int = 0
    chunks_reused: int = 0
    reference: list = field(default_factory=list)  # reference files written
    requests: int = 0

    def describe(self) -> str:
        text = (f"day files written: {self.day_files}, minute files written: "
                f"{self.minute_files}, sessions already present: {self.existing}, "
                f"minute chunks fetched/reused: {self.chunks_fetched}/{self.chunks_reused}, "
                f"reference written: {', '.join(self.reference) or 'none'}, "
                f"requests: {self.requests}")
        if self.empty_sessions:
            text += f", sessions without bars (not written): {len(self.empty_sessions)}"
        return text


def _report(label: str, done: int, total: int, unit: str, progress: bool) -> None:
    """Log ``label: done/total unit`` about twenty times per loop (every step at debug)."""
    step = max(1, total // 20)
    level = logging.INFO if progress and (done == total or done % step == 0) else logging.DEBUG
    log.log(level, "%s: %d/%d %s", label, done, total, unit)


def sessions_between(start, end) -> pd.DatetimeIndex:
    """XNYS sessions in [start, end] that are over (before today in New York)."""
    import exchange_calendars as xcals

    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end < start:
        raise ValueError(f"end {end.date()} is before start {start.date()}")
    today = pd.Timestamp.now(tz=NY_TZ).tz_localize(None).normalize()
    end = min(end, today - pd.Timedelta(days=1))  # today's bars are not final yet
    if end < start:
        return pd.DatetimeIndex([])
    # pad the calendar's bounds: sessions_in_range refuses dates outside them, and the
    # default calendar only reaches ~20 years back while Polygon has data from 2003
    pad = pd.Timedelta(days=10)
    calendar = xcals.get_calendar("XNYS", start=start - pad, end=end + pad)
    return calendar.sessions_in_range(start, end)


def _write_session(root: Path, dataset: str, day: pd.Timestamp, frame: pd.DataFrame,
                   summary: DownloadSummary) -> None:
    """Write one session's day file, or record it as empty (an empty file would be permanent)."""
    if frame.empty:
        log.warning("%s %s: no bars returned; nothing written", dataset, day.date())
        summary.empty_sessions.append((dataset, day.date()))
        return
    if write_day_file(root, dataset, day, frame):
        if dataset == DAY_DATASET:
            summary.day_files += 1
        else:
            summary.minute_files += 1
    else:  # appeared meanwhile (another process): raw files are never overwritten
        summary.existing += 1


def _missing_sessions(root: Path, dataset: str, sessions, summary: DownloadSummary) -> list:
    missing = [d for d in sessions if not day_file_path(root, dataset, d).exists()]
    summary.existing += len(sessions) - len(missing)
    return missing


def _download_daily(client: PolygonClient, root: Path, sessions, summary, progress) -> None:
    missing = _missing_sessions(root, DAY_DATASET, sessions, summary)
    for i, day in enumerate(missing, 1):
        _write_session(root, DAY_DATASET, day, bars_to_frame(client.grouped_daily(day)), summary)
        _report("daily", i, len(missing), "sessions", progress)


def _month_chunk(client: PolygonClient, root: Path, month: str, ticker: str, span: tuple,
                 summary: DownloadSummary) -> list[dict]:
    """The minute bars of ``ticker`` over ``span`` (ms), from staging or fetched and staged."""
    path = staging_path(root, month, ticker)
    staged = _read_stage(path)
    # reuse only a chunk of this ticker covering the span (an earlier run may have been shorter)
    if (isinstance(staged, dict) and staged.get("ticker") == ticker
            and staged.get("from_ms", span[0] + 1) <= span[0]
            and staged.get("to_ms", span[1] - 1) >= span[1]):
        summary.chunks_reused += 1
        return staged.get("results") or []
    bars = client.minute_aggs(ticker, *span)
    payload = {"ticker": ticker, "from_ms": span[0], "to_ms": span[1], "results": bars}
    # overwrite: staging is not raw data, and what is there covers too short a span
    atomic_write_bytes(path, gzip.compress(json.dumps(payload).encode(), mtime=0),
                       overwrite=True)
    summary.chunks_fetched += 1
    return bars


def _download_minute(client: PolygonClient, root: Path, sessions, tickers: list[str],
                     summary: DownloadSummary, progress: bool) -> None:
    missing = _missing_sessions(root, MINUTE_DATASET, sessions, summary)
    months: dict[str, list] = {}
    for day in missing:
        months.setdefault(f"{day:%Y-%m}", []).append(day)
    for month, days in months.items():
        span = _ny_span_ms(days[0], days[-1])
        # the whole month is held in memory to write all tickers of a session in one file
        frames = []
        for i, ticker in enumerate(tickers, 1):
            frames.append(bars_to_frame(_month_chunk(client, root, month, ticker, span,
                                                     summary), ticker))
            _report(f"minute {month}", i, len(tickers), "tickers", progress)
        bars = pd.concat(frames, ignore_index=True) if frames else bars_to_frame([])
        dates = _session_dates(bars)
        for day in days:
            session = bars[dates == day].sort_values(["ticker", "window_start"],
                                                     kind="mergesort")
            _write_session(root, MINUTE_DATASET, day, session.reset_index(drop=True), summary)
        shutil.rmtree(staging_dir(root, month), ignore_errors=True)


def _download_reference(client: PolygonClient, root: Path, summary: DownloadSummary,
                        refresh: bool) -> None:
    fetchers = {"tickers": client.reference_tickers, "splits": client.splits,
                "dividends": client.dividends}
    for name, fetch in fetchers.items():
        if refresh or not (reference_dir(root) / f"{name}.json").exists():
            log.info("reference: fetching %s", name)
            if write_reference(root, name, fetch(), overwrite=refresh):
                summary.reference.append(name)


def _download_details(client: PolygonClient, root: Path, tickers: list[str],
                      summary: DownloadSummary, refresh: bool, progress: bool) -> None:
    if not refresh and (reference_dir(root) / "ticker_details.json").exists():
        return
    details = []
    for i, ticker in enumerate(tickers, 1):
        record = client.ticker_details(ticker)
        if record is None:
            log.debug("no ticker details for %s", ticker)
        else:
            details.append(record)
        _report("ticker details", i, len(tickers), "tickers", progress)
    if write_reference(root, "ticker_details", details, overwrite=refresh):
        summary.reference.append("ticker_details")


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def universe(tickers_reference: list[dict], types, start) -> list[str]:
    """Sorted unique tickers of ``types`` (all when empty) not delisted before ``start``."""
    start = _utc(start)
    keep = set()
    for record in tickers_reference:
        if types and record.get("type") not in types:
            continue
        delisted = record.get("delisted_utc")
        if delisted and _utc(delisted) < start:
            continue
        keep.add(record["ticker"])
    return sorted(keep)


def parse_list(value: str | None) -> list[str] | None:
    """``"AAPL,MSFT"`` or ``"@file"`` (commas or one per line, ``#`` comments) -> unique items.

    Used for the CLI's ``--tickers`` and ``--types``; None or empty gives None.
    """
    if not value:
        return None
    if value.startswith("@"):
        text = Path(value[1:]).expanduser().read_text()
        value = ",".join(line.split("#", 1)[0] for line in text.splitlines())
    return list(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))


def download(root, start, end=None, tickers: list[str] | None = None, *,
             types: Iterable[str] | None = DEFAULT_TYPES, minute: bool = True,
             daily: bool = True, reference: bool = True, details: bool = False,
             refresh_reference: bool = False, progress: bool = True,
             client: PolygonClient | None = None) -> DownloadSummary:
    """Fill ``root``'s raw cache for the XNYS sessions in [start, end]; resumable.

    Parameters
    ----------
    root : path
        The data root (holds ``raw/``; staging goes to ``<root>/.staging``).
    start, end : date-like
        Session range; ``end`` defaults to today. Today and later are skipped (not final).
    tickers : list of str, optional
        Tickers for the minute files and details; default: the reference tickers of
        ``types`` not delisted before ``start``.
    types : iterable of str, optional
        Polygon ticker types for the default universe (e.g. ``("CS", "ETF", "ADRC")``).
    minute, daily, reference, details : bool
        Which parts to fetch; ``details`` adds ``ticker_details.json``.
    refresh_reference : bool
        Re-fetch and replace the reference snapshots instead of keeping existing ones.
    progress : bool
        Log counts at INFO (otherwise DEBUG).
    client : PolygonClient, optional
        Defaults to ``PolygonClient()`` (key from ``$POLYGON_API_KEY``).

    Returns
    -------
    DownloadSummary

    Raises
    ------
    PolygonError
        On a failed request; what was finished stays on disk and the next call resumes.
    """
    root = Path(root)
    client = client if client is not None else PolygonClient()
    sessions = sessions_between(start, end if end is not None else pd.Timestamp.today())
    summary = DownloadSummary()
    try:
        if reference:
            _download_reference(client, root, summary, refresh_reference)
        if daily:
            _download_daily(client, root, sessions, summary, progress)
        if minute or details:
            if tickers is None:
                tickers = universe(read_reference(root, "tickers"), tuple(types or ()), start)
                if not tickers:
                    raise PolygonError("no tickers: pass tickers, or download the reference "
                                       "tickers first (it selects the universe by type)")
            else:
                tickers = sorted(dict.fromkeys(tickers))
            if minute:
                _download_minute(client, root, sessions, tickers, summary, progress)
            if details:
                _download_details(client, root, tickers, summary, refresh_reference, progress)
    finally:
        summary.requests = client.requests
    log.info("download done: %s", summary.describe())
    return summary

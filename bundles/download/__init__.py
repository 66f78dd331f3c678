"""Fill the raw cache (see :mod:`bundles.layout`) from Polygon's (Massive's) REST API.

The REST responses are converted to the flat-file format of Polygon's S3 bucket so that a cache
filled here is indistinguishable from one filled with the flat files themselves:

* day aggs: one file per session (:data:`bundles.market.CALENDAR`) from the grouped-daily
  endpoint;
* minute aggs: per ticker and calendar month from the aggregates endpoint, staged under
  ``<root>/.staging/minute/<YYYY-MM>/`` until every ticker of the month is in, then written as
  one file per session (all tickers, sorted by ticker then ``window_start``); tickers a later
  run adds to a session go to a part file ``YYYY-MM-DD.part-<n>.csv.gz`` next to it;
* reference: tickers (active and delisted), splits, dividends, dated ticker details (one file
  per ticker and sampled date, :mod:`.details`) and optionally today's ticker details.

Every download resumes: day-agg sessions whose day file exists are not fetched again; for
minute aggs a manifest per session (:mod:`.manifest`) records which tickers its files hold, and
only the tickers missing are fetched; staged (ticker, month) chunks are reused, and nothing is
ever overwritten or left half-written. Records the ingest would refuse are kept out of the raw
files, in ``raw/rejected/`` with their reasons (:mod:`.validate`).

The API key never leaves :class:`PolygonClient`: it is sent in an ``Authorization: Bearer``
header to the API origin only (``$GAPLINE_API_URL``, default ``https://api.massive.com``;
redirects to other hosts are refused) and scrubbed from every message, exception and log
record the client produces.

The vendor's flat files themselves (S3, ``gapline download --flat-files``) are synced by
:mod:`.flatfiles_s3` (:func:`sync_flat_files`) into the same layout.

Modules: :mod:`.errors` (the :class:`PolygonError` family), :mod:`.redact` (keeping the key
out of text), :mod:`.client` (:class:`PolygonClient`), :mod:`.convert` (results -> flat-file
frames), :mod:`.details` (dated ticker details), :mod:`.validate` (what the ingest would
refuse), :mod:`.manifest` (what each minute
file holds), :mod:`.staging` (the minute staging area), :mod:`.sessions` (which sessions, New
York clock), :mod:`.universe` (the default tickers) and :mod:`.run` (:func:`download`).
"""
from .client import (
    AGGS_LIMIT,
    API_KEY_ENV,
    API_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRY_AFTER,
    MAX_RETRY_AFTER_ENV,
    DETAIL_FIELDS,
    DIVIDEND_FIELDS,
    REFERENCE_LIMIT,
    SPLIT_FIELDS,
    TICKER_FIELDS,
    PolygonClient,
)
from .convert import bars_to_frame
from .details import DEFAULT_DETAILS_EVERY, parse_every, sample_dates
from .flatfiles_s3 import (
    FlatFilesError,
    FlatFilesSummary,
    is_replaced_copy,
    replaced_file_path,
    sync_flat_files,
)
from .manifest import SessionManifest, manifest_path
from .errors import (
    MissingApiKeyError,
    PaginationLoopError,
    PolygonAuthError,
    PolygonError,
    PolygonHTTPError,
    RetriesExhaustedError,
)
from .redact import redact
from .run import DownloadSummary, download
from .sessions import sessions_between
from .staging import safe_name, staging_dir, staging_path
from .universe import DEFAULT_TYPES, universe
from .validate import bar_problem, ticker_problem

__all__ = [
    "AGGS_LIMIT", "API_KEY_ENV", "API_URL_ENV", "DEFAULT_BASE_URL", "DEFAULT_DETAILS_EVERY",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_TYPES", "DETAIL_FIELDS", "DIVIDEND_FIELDS", "MAX_RETRY_AFTER_ENV",
    "REFERENCE_LIMIT", "SPLIT_FIELDS", "TICKER_FIELDS",
    "DownloadSummary", "FlatFilesError", "FlatFilesSummary", "MissingApiKeyError",
    "PaginationLoopError", "PolygonAuthError", "PolygonClient", "PolygonError",
    "PolygonHTTPError", "RetriesExhaustedError",
    "SessionManifest", "bar_problem", "bars_to_frame", "download", "is_replaced_copy",
    "manifest_path", "parse_every", "redact", "replaced_file_path", "safe_name",
    "sample_dates", "sessions_between",
    "staging_dir", "staging_path", "sync_flat_files", "ticker_problem", "universe",
]

"""Sync the vendor's flat files from S3 into the raw cache (``gapline download --flat-files``).

Polygon (Massive) publishes one gzip CSV per session and dataset in the bucket ``flatfiles`` at
``https://files.massive.com`` (``$GAPLINE_S3_ENDPOINT``), under the same layout as the raw
cache (:mod:`bundles.layout`)::

    us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz
    us_stocks_sip/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz

:func:`sync_flat_files` lists the months of the range, fetches only what is missing or what the
vendor changed (ETag or size) since the last sync, in parallel, each file through a temp file
that only gets its name once complete and size-checked; a file the vendor replaced keeps its
old copy as ``YYYY-MM-DD.replaced-<UTC timestamp>.csv.gz`` (never read by the ingest), and
``raw/manifests/flatfiles.json`` records every synced object and its replacements.

Modules: :mod:`.connect` (endpoint, credentials, boto3 client, scrubbing the keys out of logs
and errors), :mod:`.listing` (bucket keys <-> raw cache paths), :mod:`.state` (the manifest,
what to do per object), :mod:`.transfer` (one file, temp file to its name) and :mod:`.sync`
(the driver).
"""
from .connect import (
    BUCKET,
    DEFAULT_ENDPOINT,
    ENDPOINT_ENV,
    FlatFilesError,
    make_client,
    resolve_endpoint,
    scrub,
)
from .listing import DATASETS, RemoteObject, list_objects, parse_key
from .state import FlatFilesManifest, flatfiles_manifest_path
from .sync import FlatFilesSummary, sync_flat_files
from .transfer import is_replaced_copy, replaced_file_path

__all__ = [
    "BUCKET", "DATASETS", "DEFAULT_ENDPOINT", "ENDPOINT_ENV", "FlatFilesError",
    "FlatFilesManifest", "FlatFilesSummary", "RemoteObject", "flatfiles_manifest_path",
    "is_replaced_copy", "list_objects", "make_client", "parse_key", "replaced_file_path",
    "resolve_endpoint", "scrub", "sync_flat_files",
]

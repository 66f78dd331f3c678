"""The vendor's objects in a date range, and where each one goes in the raw cache.

Bucket keys and the raw cache share one layout: the object
``us_stocks_sip/minute_aggs_v1/2024/03/2024-03-07.csv.gz`` is the file
``raw/us_stocks_sip/minute_aggs_v1/2024/03/2024-03-07.csv.gz``
(:func:`bundles.layout.day_file_path`). Other keys under the prefixes are ignored.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bundles.layout import DAY_DATASET, MINUTE_DATASET, day_file_path

DATASETS = (MINUTE_DATASET, DAY_DATASET)
SIP_PREFIX = "us_stocks_sip/"
_KEY_RE = re.compile(r"^us_stocks_sip/(minute_aggs_v1|day_aggs_v1)/(\d{4})/(\d{2})/"
                     r"(\d{4})-(\d{2})-(\d{2})\.csv\.gz$")


@dataclass(frozen=True)
class RemoteObject:
    """One flat file on the vendor's side, as listed."""

    key: str
    etag: str  # without the quotes S3 puts around it
    size: int
    dataset: str
    day: pd.Timestamp
    last_modified: str = ""

    @property
    def multipart(self) -> bool:
        """A multipart upload's ETag (``<md5 of md5s>-<parts>``) is no MD5 of the content."""
        return "-" in self.etag

    def local_path(self, root: Path) -> Path:
        return day_file_path(root, self.dataset, self.day)


def parse_key(key: str):
    """``(dataset, day)`` of a flat-file key; None for any other key (or a key whose folder
    does not match its file's date)."""
    m = _KEY_RE.match(key)
    if not m:
        return None
    if (m.group(2), m.group(3)) != (m.group(4), m.group(5)):
        return None
    try:
        day = pd.Timestamp(int(m.group(4)), int(m.group(5)), int(m.group(6)))
    except ValueError:
        return None
    return m.group(1), day


def dataset_prefix(dataset: str) -> str:
    """``us_stocks_sip/<dataset>/``."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown flat-file dataset {dataset!r}; expected one of {DATASETS}")
    return f"{SIP_PREFIX}{dataset}/"


def month_prefixes(dataset: str, start, end) -> list[str]:
    """``us_stocks_sip/<dataset>/YYYY/MM/`` for every month touching [start, end]: the listing
    reads those folders only, not the whole history."""
    first = pd.Timestamp(start).to_period("M")
    last = pd.Timestamp(end).to_period("M")
    return [f"{dataset_prefix(dataset)}{p.year:04d}/{p.month:02d}/"
            for p in pd.period_range(first, last, freq="M")]


def _iso(value) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    return str(value or "")


def list_objects(client, bucket: str, datasets, start, end) -> list[RemoteObject]:
    """The flat files of ``datasets`` for the days in [start, end], sorted by key."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end < start:
        raise ValueError(f"end {end.date()} is before start {start.date()}")
    paginator = client.get_paginator("list_objects_v2")
    found = {}
    for dataset in datasets:
        for prefix in month_prefixes(dataset, start, end):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents") or ():
                    parsed = parse_key(item["Key"])
                    if parsed is None or not start <= parsed[1] <= end:
                        continue
                    found[item["Key"]] = RemoteObject(
                        key=item["Key"], etag=str(item.get("ETag", "")).strip('"'),
                        size=int(item["Size"]), dataset=parsed[0], day=parsed[1],
                        last_modified=_iso(item.get("LastModified")))
    return [found[k] for k in sorted(found)]

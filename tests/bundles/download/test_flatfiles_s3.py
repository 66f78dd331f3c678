"""Issue #13 part 1: ``gapline download --flat-files`` syncs the vendor's S3 flat files into the
raw cache -- against moto's S3 server on 127.0.0.1 (no network)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os

import boto3
import pandas as pd
import pytest
import requests
from botocore.config import Config
from click.testing import CliRunner

from bundles import download as dl
from bundles.download.flatfiles_s3 import connect, transfer
from bundles.download.flatfiles_s3.state import flatfiles_manifest_path
from bundles.layout import (
    DAY_DATASET,
    MINUTE_DATASET,
    date_range_of,
    day_file_bytes,
    day_file_parts,
    day_file_path,
    list_day_file_parts,
    list_day_files,
)
from gapline.cli import main

import moto.server as moto_server  # noqa: E402 -- a dev dependency: fail loudly if missing

ACCESS = "AKIAGAPLINETEST0001"
SECRET = "gaplineSecret/9f8e7d6c5b4a+ZYXWVU0123"
DAYS = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08", "2024-04-01"]
NOW = dt.datetime(2024, 3, 10, 12, 0, 0, tzinfo=dt.timezone.utc)


def key_of(dataset, day):
    day = pd.Timestamp(day)
    return f"us_stocks_sip/{dataset}/{day:%Y}/{day:%m}/{day:%Y-%m-%d}.csv.gz"


def flat_bytes(day, tickers=("AAPL", "MSFT"), price=100.0, rows=1):
    """A small Polygon-format day file (gzip CSV)."""
    start = pd.Timestamp(day).tz_localize("America/New_York") + pd.Timedelta(hours=9, minutes=30)
    records = [{"ticker": t, "volume": 100 + i, "open": price, "close": price, "high": price,
                "low": price, "window_start": (start + pd.Timedelta(minutes=i)).value,
                "transactions": 1} for t in tickers for i in range(rows)]
    return day_file_bytes(pd.DataFrame(records), day)


def tree(root):
    """{relative path: bytes} of every file under ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def raw_files(root):
    return {k: v for k, v in tree(root).items() if k.startswith("raw/us_stocks_sip/")}


@pytest.fixture(scope="module")
def endpoint():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Vendor:
    """The vendor's side of the bucket (its own client: the publisher)."""

    def __init__(self, endpoint):
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                               aws_access_key_id="publisher", aws_secret_access_key="publisher",
                               config=Config(s3={"addressing_style": "path"}))
        self.s3.create_bucket(Bucket=dl.flatfiles_s3.BUCKET)
        self.objects = {}

    def put(self, key, data):
        self.s3.put_object(Bucket=dl.flatfiles_s3.BUCKET, Key=key, Body=data)
        self.objects[key] = data
        return hashlib.md5(data).hexdigest()

    def publish(self, days=DAYS, datasets=(MINUTE_DATASET, DAY_DATASET)):
        for day in days:
            for dataset in datasets:
                self.put(key_of(dataset, day), flat_bytes(day, rows=3 if dataset ==
                                                          MINUTE_DATASET else 1))


@pytest.fixture
def vendor(endpoint, monkeypatch, tmp_path):
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("GAPLINE_S3_ENDPOINT", endpoint)
    v = Vendor(endpoint)
    v.publish()
    # noise the sync must ignore: another asset class, a non-flat-file key, a misfiled day
    v.s3.put_object(Bucket="flatfiles", Key="us_options_opra/day_aggs_v1/2024/03/"
                    "2024-03-05.csv.gz", Body=b"x")
    v.s3.put_object(Bucket="flatfiles", Key="us_stocks_sip/day_aggs_v1/2024/03/README.txt",
                    Body=b"x")
    v.s3.put_object(Bucket="flatfiles", Key="us_stocks_sip/day_aggs_v1/2024/03/"
                    "2024-02-29.csv.gz", Body=b"x")
    return v


def sync(root, start="2024-03-01", end="2024-04-30", **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("now", lambda: NOW)
    return dl.sync_flat_files(root, start, end, **kwargs)


def expected_layout(objects, start="2024-03-01", end="2024-04-30", datasets=None):
    out = {}
    for key, data in objects.items():
        parsed = dl.flatfiles_s3.parse_key(key)
        if parsed and pd.Timestamp(start) <= parsed[1] <= pd.Timestamp(end) \
                and (datasets is None or parsed[0] in datasets):
            out[f"raw/{key}"] = data
    return out


# -- sync ------------------------------------------------------------------------------------


def test_fresh_sync_writes_exactly_the_vendors_files(vendor, tmp_path):
    summary = sync(tmp_path, jobs=3)
    assert raw_files(tmp_path) == expected_layout(vendor.objects)
    assert len(summary.fetched) == 12 and summary.replaced == [] and summary.failed == []
    assert summary.bytes_fetched == sum(len(v) for v in vendor.objects.values())
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp files
    assert list(list_day_files(tmp_path, MINUTE_DATASET)) == [pd.Timestamp(d) for d in DAYS]
    manifest = json.loads(flatfiles_manifest_path(tmp_path).read_text())
    assert manifest["bucket"] == "flatfiles" and manifest["endpoint"].startswith("http://127.")
    key = key_of(DAY_DATASET, "2024-03-05")
    assert manifest["objects"][key] == {
        "etag": hashlib.md5(vendor.objects[key]).hexdigest(), "size": len(vendor.objects[key]),
        "last_modified": manifest["objects"][key]["last_modified"], "path": key,
        "synced_at": NOW.isoformat(), "source": "sync", "replaced": []}
    assert set(manifest["objects"]) == set(vendor.objects)


def test_second_sync_fetches_nothing(vendor, tmp_path):
    sync(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.csv.gz")}
    chunks = []
    summary = sync(tmp_path, on_bytes=lambda key, n: chunks.append(key))
    assert chunks == [] and summary.fetched == [] and summary.replaced == []
    assert summary.count("unchanged") == (12, sum(len(v) for v in vendor.objects.values()))
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.csv.gz")} == before


def test_replaced_object_keeps_the_old_file_under_a_dated_name_and_records_it(vendor, tmp_path):
    sync(tmp_path)
    key = key_of(MINUTE_DATASET, "2024-03-06")
    old = vendor.objects[key]
    new_etag = vendor.put(key, flat_bytes("2024-03-06", price=101.5, rows=3))
    later = NOW + dt.timedelta(days=1)
    summary = sync(tmp_path, now=lambda: later)
    day_file = day_file_path(tmp_path, MINUTE_DATASET, "2024-03-06")
    kept = day_file.with_name("2024-03-06.replaced-20240311T120000Z.csv.gz")
    assert summary.fetched == [] and summary.replaced == [(key, str(kept))]
    assert day_file.read_bytes() == vendor.objects[key]
    assert kept.read_bytes() == old
    assert raw_files(tmp_path) == {**expected_layout(vendor.objects),
                                   f"raw/{kept.relative_to(tmp_path / 'raw').as_posix()}": old}
    entry = json.loads(flatfiles_manifest_path(tmp_path).read_text())["objects"][key]
    assert entry["etag"] == new_etag and entry["synced_at"] == later.isoformat()
    (record,) = entry["replaced"]
    assert record["etag"] == hashlib.md5(old).hexdigest() and record["size"] == len(old)
    assert record["path"] == kept.relative_to(tmp_path / "raw").as_posix()
    assert record["replaced_at"] == later.isoformat() and record["synced_at"] == NOW.isoformat()
    # readers see the new day file only; the next sync has nothing to do
    assert list_day_files(tmp_path, MINUTE_DATASET)[pd.Timestamp("2024-03-06")] == day_file
    assert day_file_parts(tmp_path, MINUTE_DATASET, "2024-03-06") == [day_file]
    again = sync(tmp_path)
    assert again.fetched == [] and again.replaced == []


def test_a_replaced_minute_file_is_read_again_by_the_rest_session_manifest(vendor, tmp_path):
    """The REST download's per-session manifest lists the tickers of each minute file: after a
    replacement it must read the new file's tickers, not keep the old list."""
    sync(tmp_path)
    day = "2024-03-05"
    assert dl.SessionManifest.load(tmp_path, MINUTE_DATASET, day).covered() == {"AAPL", "MSFT"}
    vendor.put(key_of(MINUTE_DATASET, day), flat_bytes(day, tickers=("AAPL", "MSFT", "TSLA")))
    sync(tmp_path)
    manifest = dl.SessionManifest.load(tmp_path, MINUTE_DATASET, day)
    assert manifest.covered() == {"AAPL", "MSFT", "TSLA"}
    assert list(manifest.files) == [f"{day}.csv.gz"]


def test_a_second_replacement_in_the_same_second_gets_its_own_name(vendor, tmp_path):
    sync(tmp_path)
    key = key_of(DAY_DATASET, "2024-03-07")
    versions = [vendor.objects[key]]
    for price in (102.0, 103.0):
        vendor.put(key, flat_bytes("2024-03-07", price=price))
        versions.append(vendor.objects[key])
        sync(tmp_path)
    folder = day_file_path(tmp_path, DAY_DATASET, "2024-03-07").parent
    assert (folder / "2024-03-07.replaced-20240310T120000Z.csv.gz").read_bytes() == versions[0]
    assert (folder / "2024-03-07.replaced-20240310T120000Z-2.csv.gz").read_bytes() == versions[1]
    assert (folder / "2024-03-07.csv.gz").read_bytes() == versions[2]
    entry = json.loads(flatfiles_manifest_path(tmp_path).read_text())["objects"][key]
    assert [r["path"].rsplit("/", 1)[1] for r in entry["replaced"]] == [
        "2024-03-07.replaced-20240310T120000Z.csv.gz",
        "2024-03-07.replaced-20240310T120000Z-2.csv.gz"]


def test_start_end_and_datasets_limit_the_sync(vendor, tmp_path):
    summary = sync(tmp_path, start="2024-03-05", end="2024-03-06", datasets=[DAY_DATASET])
    assert raw_files(tmp_path) == expected_layout(vendor.objects, "2024-03-05", "2024-03-06",
                                                  [DAY_DATASET])
    assert sorted(summary.fetched) == [key_of(DAY_DATASET, "2024-03-05"),
                                       key_of(DAY_DATASET, "2024-03-06")]
    sync(tmp_path, start="2024-04-01", end="2024-04-01")
    assert set(raw_files(tmp_path)) == set(expected_layout(
        vendor.objects, "2024-03-05", "2024-03-06", [DAY_DATASET])) | {
        f"raw/{key_of(d, '2024-04-01')}" for d in (MINUTE_DATASET, DAY_DATASET)}


def test_dry_run_writes_nothing_and_lists(vendor, tmp_path):
    root = tmp_path / "data"
    summary = sync(root, dry_run=True)
    assert not root.exists()
    assert summary.count("new") == (12, sum(len(v) for v in vendor.objects.values()))
    text = summary.describe()
    assert text.startswith("dry run, nothing written: 12 new")
    assert all(key in text for key in vendor.objects)

    sync(root)
    key = key_of(DAY_DATASET, "2024-03-08")
    vendor.put(key, flat_bytes("2024-03-08", price=99.0))
    snapshot = tree(root)
    summary = sync(root, dry_run=True)
    assert tree(root) == snapshot
    assert summary.count("replaced") == (1, len(vendor.objects[key]))
    assert summary.count("new")[0] == 0 and summary.count("unchanged")[0] == 11
    lines = summary.describe().splitlines()
    assert "1 replaced" in lines[0] and "11 unchanged" in lines[0]
    assert lines[1].startswith(f"replaced  {key}") and "changed on the server" in lines[1]

    result = CliRunner().invoke(main, ["download", "--flat-files", "--dry-run", "--start",
                                       "2024-03-01", "--end", "2024-04-30", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "dry run, nothing written: 0 new" in result.output and key in result.output
    assert tree(root) == snapshot


class Interrupted(Exception):
    """The process died mid-transfer."""


def cut_off(target, after_bytes):
    seen = {}

    def on_bytes(key, n):
        seen[key] = seen.get(key, 0) + n
        if key == target and seen[key] >= after_bytes:
            raise Interrupted(key)
    return on_bytes


def test_interrupted_transfer_leaves_no_partial_file_and_the_next_run_completes(
        vendor, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "CHUNK", 16)  # several chunks per file
    key = key_of(MINUTE_DATASET, "2024-03-07")
    assert len(vendor.objects[key]) > 3 * 16
    with pytest.raises(Interrupted):
        sync(tmp_path, jobs=3, on_bytes=cut_off(key, 32))
    assert not day_file_path(tmp_path, MINUTE_DATASET, "2024-03-07").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    for rel, data in raw_files(tmp_path).items():  # whatever was finished is whole
        assert data == vendor.objects[rel[len("raw/"):]]
    manifest = json.loads(flatfiles_manifest_path(tmp_path).read_text()) \
        if flatfiles_manifest_path(tmp_path).exists() else {"objects": {}}
    assert key not in manifest["objects"]
    assert pd.Timestamp("2024-03-07") not in list_day_files(tmp_path, MINUTE_DATASET)

    summary = sync(tmp_path)
    assert key in summary.fetched
    assert raw_files(tmp_path) == expected_layout(vendor.objects)


def test_interrupted_replacement_keeps_the_old_file(vendor, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "CHUNK", 16)
    sync(tmp_path)
    key = key_of(MINUTE_DATASET, "2024-03-04")
    old = vendor.objects[key]
    vendor.put(key, flat_bytes("2024-03-04", price=98.0, rows=3))
    with pytest.raises(Interrupted):
        sync(tmp_path, on_bytes=cut_off(key, 32))
    day_file = day_file_path(tmp_path, MINUTE_DATASET, "2024-03-04")
    assert day_file.read_bytes() == old
    assert [p.name for p in day_file.parent.iterdir() if "2024-03-04" in p.name] == \
        ["2024-03-04.csv.gz"]
    summary = sync(tmp_path)
    assert [k for k, _ in summary.replaced] == [key]
    assert day_file.read_bytes() == vendor.objects[key]


def test_a_crash_inside_a_replacement_is_repaired_by_the_next_sync(vendor, tmp_path):
    sync(tmp_path)
    key = key_of(DAY_DATASET, "2024-03-05")
    day_file = day_file_path(tmp_path, DAY_DATASET, "2024-03-05")
    old = day_file.read_bytes()
    vendor.put(key, flat_bytes("2024-03-05", price=97.0))
    # crash after step 2 (old file linked to its dated name), before step 3 (the swap)
    early = dl.replaced_file_path(day_file, NOW - dt.timedelta(hours=1))
    os.link(day_file, early)
    summary = sync(tmp_path)
    assert summary.replaced == [(key, str(early))]  # the dated link is reused, not doubled
    assert early.read_bytes() == old and day_file.read_bytes() == vendor.objects[key]
    assert sorted(p.name for p in day_file.parent.glob("2024-03-05*")) == [
        "2024-03-05.csv.gz", early.name]

    # crash after step 3, before the manifest was saved: the new bytes are only recorded
    key = key_of(DAY_DATASET, "2024-03-06")
    day_file = day_file_path(tmp_path, DAY_DATASET, "2024-03-06")
    vendor.put(key, flat_bytes("2024-03-06", price=96.0))
    day_file.write_bytes(vendor.objects[key])
    chunks = []
    summary = sync(tmp_path, on_bytes=lambda k, n: chunks.append(k))
    assert chunks == [] and summary.adopted == 1 and summary.replaced == []
    entry = json.loads(flatfiles_manifest_path(tmp_path).read_text())["objects"][key]
    assert entry["etag"] == hashlib.md5(vendor.objects[key]).hexdigest()
    assert entry["source"] == "adopted"


class BrokenBody:
    """A streaming body that breaks after ``n`` bytes, like a dropped connection."""

    def __init__(self, body, n):
        self.body, self.n = body, n

    def iter_chunks(self, size):
        import botocore.exceptions

        data = self.body.read()
        yield data[:self.n]
        raise botocore.exceptions.ResponseStreamingError(error="connection reset")

    def close(self):
        self.body.close()


class Breaking:
    """A boto3 client whose first GET of every object breaks midway; records GET args."""

    def __init__(self, client):
        self.client, self.gets = client, []

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_object(self, **kwargs):
        self.gets.append(kwargs)
        response = self.client.get_object(**kwargs)
        if "Range" not in kwargs:
            response["Body"] = BrokenBody(response["Body"], 100)
        return response


def test_a_broken_stream_resumes_with_a_range_request(vendor, tmp_path, endpoint,
                                                      monkeypatch):
    waits = []
    monkeypatch.setattr(transfer, "_sleep", waits.append)
    client, _ = connect.make_client(endpoint)
    breaking = Breaking(client)
    summary = sync(tmp_path, start="2024-03-05", end="2024-03-05", datasets=[MINUTE_DATASET],
                   client=breaking)
    key = key_of(MINUTE_DATASET, "2024-03-05")
    assert summary.fetched == [key] and waits == [2.0]
    assert raw_files(tmp_path) == {f"raw/{key}": vendor.objects[key]}
    etag = f'"{hashlib.md5(vendor.objects[key]).hexdigest()}"'
    assert breaking.gets == [{"Bucket": "flatfiles", "Key": key, "IfMatch": etag},
                             {"Bucket": "flatfiles", "Key": key, "IfMatch": etag,
                              "Range": "bytes=100-"}]


class Forbidding(Breaking):
    """403 on one object, as the vendor answers for a file outside the plan."""

    def __init__(self, client, key):
        super().__init__(client)
        self.key = key

    def get_object(self, **kwargs):
        import botocore.exceptions

        if kwargs["Key"] == self.key:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                 "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")
        return self.client.get_object(**kwargs)


def test_a_forbidden_file_is_reported_and_the_others_are_written(vendor, tmp_path, endpoint):
    client, _ = connect.make_client(endpoint)
    key = key_of(DAY_DATASET, "2024-03-05")
    summary = sync(tmp_path, client=Forbidding(client, key))
    (failed_key, message), = summary.failed
    assert failed_key == key and "outside your plan" in message
    expected = expected_layout(vendor.objects)
    del expected[f"raw/{key}"]
    assert raw_files(tmp_path) == expected
    assert "1 failed" in summary.describe() and "run the same command again" in summary.describe()
    assert sync(tmp_path).fetched == [key]


def test_existing_files_are_adopted_or_left_alone(vendor, tmp_path):
    # the vendor's own file, e.g. from `aws s3 sync`: adopted without a transfer
    same = key_of(DAY_DATASET, "2024-03-04")
    (tmp_path / "raw" / same).parent.mkdir(parents=True)
    (tmp_path / "raw" / same).write_bytes(vendor.objects[same])
    # a file built by the REST download: different bytes, unknown to the manifest
    rest = key_of(MINUTE_DATASET, "2024-03-05")
    (tmp_path / "raw" / rest).parent.mkdir(parents=True)
    rest_bytes = flat_bytes("2024-03-05", tickers=("AAPL",))
    (tmp_path / "raw" / rest).write_bytes(rest_bytes)
    summary = sync(tmp_path)
    assert summary.adopted == 1 and same not in summary.fetched and len(summary.fetched) == 10
    assert (tmp_path / "raw" / rest).read_bytes() == rest_bytes
    (conflict,) = summary.of("conflict")
    assert conflict.obj.key == rest and "left alone" in summary.describe()
    objects = json.loads(flatfiles_manifest_path(tmp_path).read_text())["objects"]
    assert objects[same]["source"] == "adopted" and rest not in objects


# -- credentials -----------------------------------------------------------------------------


def test_credentials_never_appear_in_logs_errors_or_files(vendor, tmp_path, caplog, endpoint):
    caplog.set_level(logging.DEBUG)
    factory = logging.getLogRecordFactory()
    sync(tmp_path)
    key = key_of(DAY_DATASET, "2024-03-05")
    vendor.put(key, flat_bytes("2024-03-05", price=90.0))
    summary = sync(tmp_path)
    assert summary.replaced
    client, _ = connect.make_client(endpoint)
    failing = sync(tmp_path / "other", client=Forbidding(client, key))
    assert failing.failed
    result = CliRunner().invoke(main, ["download", "--flat-files", "--start", "2024-03-01",
                                       "--end", "2024-03-31", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert logging.getLogRecordFactory() is factory  # the scrubbing is undone after a sync
    # botocore's debug lines (the signed request) were captured, and scrubbed
    assert "Credential=***" in caplog.text
    for secret in (ACCESS, SECRET):
        assert secret not in caplog.text
        assert secret not in result.output
        assert secret not in failing.describe() and secret not in summary.describe()
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_scrub_removes_keys_and_signatures():
    header = (f"{{'Authorization': b'AWS4-HMAC-SHA256 Credential={ACCESS}/20240310/us-east-1/"
              f"s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=0a1b2c3d4e5f'}}")
    text = connect.scrub(f"{header} secret={SECRET}", (ACCESS, SECRET))
    assert ACCESS not in text and SECRET not in text and "0a1b2c3d4e5f" not in text
    # without being told the keys, the SigV4 pattern still hides the access key id
    assert ACCESS not in connect.scrub(header)
    assert "x-amz-security-token: ***" in connect.scrub("x-amz-security-token: FQoGZXIvYXdz")


def test_missing_credentials_and_bad_endpoints_are_clear_errors(vendor, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = CliRunner().invoke(main, ["download", "--flat-files", "--start", "2024-03-04",
                                       "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "no S3 credentials" in result.output and "not the REST API key" in result.output
    result = CliRunner().invoke(main, ["download", "--flat-files", "--start", "2024-03-04",
                                       "--profile", "nope", "--root", str(tmp_path)])
    assert "AWS profile 'nope' not found" in result.output
    for bad in ("http://files.massive.com", f"https://{ACCESS}:{SECRET}@files.massive.com",
                f"https://{ACCESS}@files.massive.com", "https://files.massive.com/flatfiles",
                "ftp://127.0.0.1", "https://:443", "https://files.massive.com:port"):
        with pytest.raises(dl.FlatFilesError, match="--s3-endpoint") as info:
            connect.resolve_endpoint(bad)
        assert ACCESS not in str(info.value) and SECRET not in str(info.value)
    assert connect.resolve_endpoint(None, {}) == "https://files.massive.com"
    assert connect.resolve_endpoint(None, {"GAPLINE_S3_ENDPOINT": "https://files.polygon.io/"}) \
        == "https://files.polygon.io"
    assert not tmp_path.joinpath("raw").exists()


def test_profile_credentials_are_used(vendor, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "no-aws-credentials"
    credentials.write_text(f"[massive]\naws_access_key_id = {ACCESS}\n"
                           f"aws_secret_access_key = {SECRET}\n")
    root = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--flat-files", "--profile", "massive",
                                       "--start", "2024-03-04", "--end", "2024-03-04",
                                       "--jobs", "2", "--no-minute", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "flat files: 1 new, 0 replaced" in result.output
    assert raw_files(root) == expected_layout(vendor.objects, "2024-03-04", "2024-03-04",
                                              [DAY_DATASET])


def test_cli_refuses_options_of_the_other_mode(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["download", "--flat-files", "--start", "2024-03-04",
                                  "--tickers", "AAPL", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "--tickers: only for the REST download" in result.output
    result = runner.invoke(main, ["download", "--start", "2024-03-04", "--dry-run", "--jobs",
                                  "2", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "--jobs, --dry-run: only with --flat-files" in result.output
    assert "--s3-endpoint" in runner.invoke(main, ["download", "--help"]).output


# -- the layout never reads a replaced copy --------------------------------------------------


def test_a_replaced_copy_is_ignored_by_the_layout_readers(tmp_path):
    day = "2024-03-06"
    path = day_file_path(tmp_path, MINUTE_DATASET, day)
    path.parent.mkdir(parents=True)
    path.write_bytes(flat_bytes(day))
    kept = dl.replaced_file_path(path, NOW)
    assert kept.name == "2024-03-06.replaced-20240310T120000Z.csv.gz"
    kept.write_bytes(flat_bytes(day, price=1.0))
    assert dl.is_replaced_copy(kept.name) and not dl.is_replaced_copy(path.name)
    # a replaced copy alone in a month (nothing else there) does not count as a session
    lone = day_file_path(tmp_path, MINUTE_DATASET, "2024-05-01")
    lone.parent.mkdir(parents=True)
    lone = dl.replaced_file_path(lone, NOW)
    lone.write_bytes(flat_bytes("2024-05-01"))
    assert list_day_files(tmp_path, MINUTE_DATASET) == {pd.Timestamp(day): path}
    assert list_day_file_parts(tmp_path, MINUTE_DATASET) == {pd.Timestamp(day): [path]}
    assert day_file_parts(tmp_path, MINUTE_DATASET, day) == [path]
    assert date_range_of(tmp_path) == (dt.date(2024, 3, 6), dt.date(2024, 3, 6))
    assert dl.replaced_file_path(path, NOW).name == \
        "2024-03-06.replaced-20240310T120000Z-2.csv.gz"
    # and the ingest's session manifest does not adopt it
    manifest = dl.SessionManifest.load(tmp_path, MINUTE_DATASET, day)
    assert list(manifest.files) == ["2024-03-06.csv.gz"]
    assert os.path.exists(kept)

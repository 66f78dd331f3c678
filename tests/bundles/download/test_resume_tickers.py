"""Issue #12 item 11: minute resume is per (session, ticker), not per session file.

A later run with more tickers fetches only the tickers no file of a session holds, into a new
part file next to the (untouched) day file; a manifest per session says which file holds what.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from urllib.parse import unquote, urlsplit

import pandas as pd

from bundles import download as dl
from bundles import layout
from bundles.flatfiles import read_day_file as ingest_read
from bundles.layout import MINUTE_DATASET, day_file_path, write_day_file
from tests.bundles.download.test_redirects import Transport, client_for
from tests.bundles.download.test_download import END, SESSIONS, START, FakePolygon, expected_minute_file


def run(root, tickers, polygon=None, **kwargs):
    polygon = polygon or FakePolygon()
    transport = Transport(lambda url, params, headers: polygon(url, params))
    summary = dl.download(root, START, END, tickers=tickers, daily=False, reference=False,
                          progress=False, client=client_for(transport), **kwargs)
    return summary, transport


def requested_tickers(transport):
    return [unquote(urlsplit(u).path.split("/")[4]) for u, _ in transport.sent
            if "/v2/aggs/ticker/" in u]


def read_parts(root, day):
    frames = [pd.read_csv(p, keep_default_na=False, float_precision="round_trip")
              for p in layout.day_file_parts(root, MINUTE_DATASET, day)]
    return (pd.concat(frames, ignore_index=True)
            .sort_values(["ticker", "window_start"], kind="mergesort").reset_index(drop=True))


def manifest(root, day):
    return json.loads(dl.manifest_path(root, MINUTE_DATASET, day).read_text())


def test_adding_a_ticker_fetches_only_that_ticker_into_part_files(tmp_path):
    first, _ = run(tmp_path, ["AAPL"])
    assert first.minute_files == len(SESSIONS)
    before = {day: day_file_path(tmp_path, MINUTE_DATASET, day).read_bytes() for day in SESSIONS}

    second, transport = run(tmp_path, ["AAPL", "MSFT"])
    # MSFT is fetched (one request per calendar month), AAPL is not fetched again
    assert requested_tickers(transport) == ["MSFT", "MSFT"]
    assert (second.minute_files, second.minute_parts, second.existing) == (4, 4, 0)
    assert "with tickers MSFT (4 sessions)" in second.describe()
    assert [a["tickers"] for a in second.added] == [["MSFT"]] * 4
    for day in SESSIONS:
        # the day file is untouched, MSFT is in part 1 next to it
        assert day_file_path(tmp_path, MINUTE_DATASET, day).read_bytes() == before[day]
        parts = layout.day_file_parts(tmp_path, MINUTE_DATASET, day)
        assert [p.name for p in parts] == [f"{day:%Y-%m-%d}.csv.gz",
                                           f"{day:%Y-%m-%d}.part-1.csv.gz"]
        pd.testing.assert_frame_equal(read_parts(tmp_path, day),
                                      expected_minute_file(day, ["AAPL", "MSFT"]))
        for path in parts:  # every part passes the ingest's own reader
            assert len(ingest_read(path, day, "minute")) == 5
        # existing callers still get one path per session: the day file
        assert layout.list_day_files(tmp_path, MINUTE_DATASET)[day] == parts[0]
        files = manifest(tmp_path, day)["files"]
        assert {name: entry["tickers"] for name, entry in files.items()} == \
            {parts[0].name: ["AAPL"], parts[1].name: ["MSFT"]}
        for path in parts:
            entry = files[path.name]
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["rows"] == 5 and entry["written_at"]
    assert layout.list_day_file_parts(tmp_path, MINUTE_DATASET) == {
        day: layout.day_file_parts(tmp_path, MINUTE_DATASET, day) for day in SESSIONS}

    third, transport = run(tmp_path, ["MSFT", "AAPL"])
    assert transport.sent == [] and third.existing == len(SESSIONS)
    assert third.minute_files == 0


def test_a_file_without_manifest_is_adopted_by_its_tickers(tmp_path):
    # a minute file from an older download (or a Polygon flat file): no manifest
    for day in SESSIONS:
        assert write_day_file(tmp_path, MINUTE_DATASET, day, expected_minute_file(day, ["AAPL"]))
    summary, transport = run(tmp_path, ["AAPL", "BRK.A"])
    assert requested_tickers(transport) == ["BRK.A", "BRK.A"]
    assert summary.minute_parts == len(SESSIONS)
    for day in SESSIONS:
        pd.testing.assert_frame_equal(read_parts(tmp_path, day),
                                      expected_minute_file(day, ["AAPL", "BRK.A"]))
        files = manifest(tmp_path, day)["files"]
        assert files[f"{day:%Y-%m-%d}.csv.gz"]["source"] == "adopted"
        assert files[f"{day:%Y-%m-%d}.part-1.csv.gz"]["source"] == "download"


def test_a_lost_manifest_is_rebuilt_without_refetching(tmp_path):
    run(tmp_path, ["AAPL"])
    run(tmp_path, ["AAPL", "MSFT"])
    shutil.rmtree(layout.manifest_dir(tmp_path))
    summary, transport = run(tmp_path, ["AAPL", "MSFT"])
    assert transport.sent == [] and summary.existing == len(SESSIONS)
    assert set(manifest(tmp_path, SESSIONS[0])["files"]) == {"2024-02-28.csv.gz",
                                                             "2024-02-28.part-1.csv.gz"}


def test_an_unreadable_file_skips_its_session_and_says_what_to_do(tmp_path):
    bad = day_file_path(tmp_path, MINUTE_DATASET, SESSIONS[1])
    bad.parent.mkdir(parents=True)
    bad.write_bytes(gzip.compress(b"ticker,volume,open,close,high,low,window_start,tr")[:30])
    summary, transport = run(tmp_path, ["AAPL"])
    assert bad.read_bytes() and len(layout.day_file_parts(tmp_path, MINUTE_DATASET,
                                                          SESSIONS[1])) == 1
    assert summary.minute_files == len(SESSIONS) - 1
    (message,) = summary.unreadable
    assert str(bad) in message and "Delete the file" in message
    assert message in summary.describe()


def test_write_day_part_never_overwrites(tmp_path):
    day = SESSIONS[0]
    frame = expected_minute_file(day, ["AAPL"])
    names = [layout.write_day_part(tmp_path, MINUTE_DATASET, day, frame).name for _ in range(3)]
    assert names == ["2024-02-28.csv.gz", "2024-02-28.part-1.csv.gz", "2024-02-28.part-2.csv.gz"]
    # a plain .csv day file counts as the day file; a .csv twin of a .gz part is not listed twice
    other = SESSIONS[1]
    plain = day_file_path(tmp_path, MINUTE_DATASET, other).with_suffix("")
    frame.to_csv(plain, index=False)
    assert layout.write_day_part(tmp_path, MINUTE_DATASET, other, frame).name == \
        "2024-02-29.part-1.csv.gz"
    twin = layout.part_file_path(tmp_path, MINUTE_DATASET, other, 1).with_suffix("")
    frame.to_csv(twin, index=False)
    assert [p.name for p in layout.day_file_parts(tmp_path, MINUTE_DATASET, other)] == \
        ["2024-02-29.csv", "2024-02-29.part-1.csv.gz"]
    # stray files are not parts
    (plain.parent / "2024-02-29.part-x.csv.gz").write_bytes(b"")
    (plain.parent / ".2024-02-29.part-3.csv.gz.abc.part").write_bytes(b"")
    assert len(layout.day_file_parts(tmp_path, MINUTE_DATASET, other)) == 2
    assert layout.date_range_of(tmp_path) == (SESSIONS[0].date(), SESSIONS[1].date())


def test_tickers_another_download_wrote_meanwhile_are_not_written_twice(tmp_path):
    run(tmp_path, ["AAPL"])
    polygon = FakePolygon()
    day = SESSIONS[0]

    def route(url, params, headers):
        if "/v2/aggs/ticker/MSFT/" in url and len(layout.day_file_parts(
                tmp_path, MINUTE_DATASET, day)) == 1:
            # a second download on the same root finishes MSFT of Feb 28 first
            layout.write_day_part(tmp_path, MINUTE_DATASET, day,
                                  expected_minute_file(day, ["MSFT"]))
        return polygon(url, params)

    summary = dl.download(tmp_path, START, END, tickers=["AAPL", "MSFT"], daily=False,
                          reference=False, progress=False,
                          client=client_for(Transport(route)))
    assert [p.name for p in layout.day_file_parts(tmp_path, MINUTE_DATASET, day)] == \
        ["2024-02-28.csv.gz", "2024-02-28.part-1.csv.gz"]
    pd.testing.assert_frame_equal(read_parts(tmp_path, day),
                                  expected_minute_file(day, ["AAPL", "MSFT"]))
    assert summary.minute_parts == len(SESSIONS) - 1
    assert manifest(tmp_path, day)["files"]["2024-02-28.part-1.csv.gz"]["tickers"] == ["MSFT"]

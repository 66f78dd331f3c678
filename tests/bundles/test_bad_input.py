"""Hostile flat files and interrupted ingests: handled and documented, or rejected with the
file, ticker and line -- and nothing already stored is lost."""
from __future__ import annotations

import gzip
import json
import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bundles import layout
from bundles.flatfiles import FlatFileError, read_day_file
from bundles.polygon import PolygonBundleConfig, build_bundle
from tests.synth import minute_rows, write_minute_days

DAY = "2024-07-09"
HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
T0 = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York").value  # ns
MIN = 60_000_000_000


def _write(tmp_path, lines, header=HEADER, name=f"{DAY}.csv.gz"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(("\n".join([header] + lines) + "\n").encode()))
    return path


def _good(ticker="AAA", i=0, o=10.0, c=10.5, h=11.0, l=9.5, v=100, ts=None):
    return f"{ticker},{v},{o},{c},{h},{l},{T0 + i * MIN if ts is None else ts},3"


@pytest.mark.parametrize("bad_line, reason", [
    (_good(o="abc"), "non-numeric open"),
    (_good(v=""), "missing, NaN or non-numeric volume"),
    (_good(o="nan"), "NaN or non-numeric open"),
    (_good(o=-1), "NaN, zero or negative"),
    (_good(l=0), "NaN, zero or negative"),
    (_good(h=9, l=9.5), "high < low"),
    (_good(o=12), "outside \\[low, high\\]"),
    (_good(v=-5), "negative volume"),
    (_good(ticker="../x"), "invalid ticker"),
    (_good(ticker="A/B"), "invalid ticker"),
    (_good(ticker=""), "invalid ticker"),
    (_good(ts=T0 + 30_000_000_000), "not on a whole minute"),
    (_good(ts=T0 - 86_400 * 10**9), "not on the file's date"),
])
def test_bad_rows_are_rejected_with_file_ticker_and_line(tmp_path, bad_line, reason):
    path = _write(tmp_path, [_good("AAA", 0), _good("AAA", 1), bad_line.replace("AAA", "ZZZ", 1)
                             if bad_line.startswith("AAA") else bad_line])
    with pytest.raises(FlatFileError) as err:
        read_day_file(path, DAY)
    message = str(err.value)
    assert str(path) in message and "line 4" in message
    assert re.search(reason, message), message
    ticker = bad_line.split(",")[0].replace("AAA", "ZZZ")
    assert repr(ticker) in message


def test_skip_mode_drops_and_lists_bad_rows(tmp_path):
    path = _write(tmp_path, [_good("AAA", 0), _good("BBB", 0, h=9, l=9.5), _good("CCC", 0)])
    frame = read_day_file(path, DAY, bad_rows="skip")
    assert list(frame.ticker) == ["AAA", "CCC"]
    assert frame.counts["bad_rows"] == 1
    assert "line 3" in frame.skipped[0] and "'BBB'" in frame.skipped[0]


@pytest.mark.parametrize("mangle", ["truncate", "garbage", "empty"])
def test_corrupt_files_raise_naming_the_file(tmp_path, mangle):
    path = _write(tmp_path, [_good("AAA", i) for i in range(50)])
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"\x1f\x8b" + os.urandom(200),
                      "empty": gzip.compress(b"")}[mangle])
    with pytest.raises(FlatFileError, match=str(path.name)):
        read_day_file(path, DAY)


def test_missing_or_renamed_columns_raise(tmp_path):
    path = _write(tmp_path, ["AAA,100,10,10.5,11,9.5,1,3"],
                  header="ticker,volume,open,close,high,low,timestamp,transactions")
    with pytest.raises(FlatFileError, match=r"missing column\(s\) \['window_start'\]"):
        read_day_file(path, DAY)
    path = _write(tmp_path, ["AAA,100,10,10.5,11,1"], header="ticker,volume,open,close,high,window_start")
    with pytest.raises(FlatFileError, match="low"):
        read_day_file(path, DAY)


def test_extra_columns_are_ignored_and_column_order_is_free(tmp_path):
    lines = [f"{T0 + i * MIN},AAA,9.5,11,10.5,10,100,3,x" for i in range(3)]
    path = _write(tmp_path, lines, header="window_start,ticker,low,high,close,open,volume,transactions,otc")
    frame = read_day_file(path, DAY)
    assert list(frame.open) == [10.0] * 3 and list(frame.high) == [11.0] * 3


@pytest.mark.parametrize("unit, factor", [("ms", 1_000_000), ("us", 1_000)])
def test_ms_and_us_timestamps_are_converted(tmp_path, unit, factor):
    ns = _write(tmp_path, [_good("AAA", i) for i in range(3)], name="a.csv.gz")
    other = _write(tmp_path, [_good("AAA", ts=(T0 + i * MIN) // factor) for i in range(3)], name="b.csv.gz")
    a, b = read_day_file(ns, DAY), read_day_file(other, DAY)
    np.testing.assert_array_equal(a.window_start, b.window_start)
    assert b.counts[f"converted_{unit}"] == 3


def test_unsorted_and_duplicates(tmp_path):
    lines = [_good("BBB", 1), _good("AAA", 1), _good("AAA", 0, c=10.1), _good("AAA", 0, c=10.2),
             _good("AAA", 1)]
    frame = read_day_file(_write(tmp_path, lines), DAY)
    assert list(frame.ticker) == ["AAA", "AAA", "BBB"]
    assert list(frame.close) == [10.2, 10.5, 10.5]  # last row in file order wins
    assert frame.counts["conflicting_duplicates"] == 1 and frame.counts["duplicate_rows"] == 1


def test_odd_but_valid_tickers_are_ingested(tmp_path):
    """Polygon tickers with dots (BRK.A) and lowercase (preferred ABCpA) are real: kept as
    Polygon spells them in the side table, upper-cased by zipline as symbols. A ticker
    named NA must not become a missing value."""
    root, rng = tmp_path / "raw", np.random.default_rng(1)
    frame = pd.concat([minute_rows(t, DAY, 20.0, rng, "09:30", "10:00") for t in ["BRK.A", "ABCpA", "NA"]])
    write_minute_days(root, frame)
    data = build_bundle("test-odd", PolygonBundleConfig(root=root), tmp_path / "z")
    symbols = {a.symbol for a in data.asset_finder.retrieve_all(data.asset_finder.sids)}
    assert symbols == {"BRK.A", "ABCPA", "NA"}
    side = next((tmp_path / "z").rglob("assets.parquet"))
    assert set(pd.read_parquet(side).ticker) == {"BRK.A", "ABCpA", "NA"}


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_bad_file_stops_ingest_and_nothing_stored_is_lost(tmp_path):
    from zipline.data import bundles as zb

    root, rng = tmp_path / "raw", np.random.default_rng(2)
    days = ["2024-07-08", DAY]
    write_minute_days(root, pd.concat([minute_rows("AAA", d, 20.0, rng, "09:30", "10:00") for d in days]))
    zroot = tmp_path / "z"
    first = build_bundle("test-bad", PolygonBundleConfig(root=root), zroot)
    sid = first.asset_finder.lookup_symbol("AAA", pd.Timestamp(DAY)).sid
    # a new day file with a bad row arrives
    bad = [_good("AAA", 0), _good("AAA", 1, h=1, l=2)]
    p = layout.day_file_path(root, layout.MINUTE_DATASET, "2024-07-10")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(gzip.compress(("\n".join([HEADER] + [b.replace(str(T0), str(T0 + 86400 * 10**9)) for b in bad])).encode()))
    raw_before = _tree_digest(root)
    with pytest.raises(FlatFileError, match=r"2024-07-10\.csv\.gz: line 3, ticker 'AAA': high < low"):
        build_bundle("test-bad", PolygonBundleConfig(root=root), zroot)
    assert _tree_digest(root) == raw_before  # raw data untouched
    env = dict(os.environ, ZIPLINE_ROOT=str(zroot))
    again = zb.load("test-bad", environ=env)  # previous ingestion still loads
    assert again.equity_daily_bar_reader.get_value(sid, pd.Timestamp(DAY), "volume") > 0


SIGTERM_SCRIPT = textwrap.dedent("""
    import sys, time, pathlib
    import bundles.polygon.days as bp  # pass 1 looks read_day_file up at call time
    from bundles.polygon import PolygonBundleConfig, build_bundle
    marker = pathlib.Path(sys.argv[3])
    real = bp.read_day_file
    def slow(*a, **k):
        marker.touch()          # tell the test we are inside the ingest
        time.sleep(0.5)
        return real(*a, **k)
    bp.read_day_file = slow
    # incremental=False: unchanged inputs would otherwise read no day file at all
    build_bundle("test-term", PolygonBundleConfig(root=sys.argv[1], incremental=False),
                 sys.argv[2])
""")


def test_sigterm_midway_leaves_previous_ingestion_in_use(tmp_path):
    from zipline.data import bundles as zb
    from bundles.ingestions import ingestions

    root, rng = tmp_path / "raw", np.random.default_rng(3)
    days = pd.bdate_range("2024-07-08", "2024-07-19").strftime("%Y-%m-%d")
    write_minute_days(root, pd.concat([minute_rows("AAA", d, 20.0, rng, "09:30", "09:40") for d in days]))
    zroot = tmp_path / "z"
    build_bundle("test-term", PolygonBundleConfig(root=root), zroot)
    env = dict(os.environ, ZIPLINE_ROOT=str(zroot))
    before = [r["name"] for r in ingestions("test-term", env)]
    marker = tmp_path / "inside"
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(root), str(zroot), str(marker)],
                            cwd=Path(__file__).resolve().parents[2], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()[1].decode()[-2000:]
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert b"removed" in err  # our cleanup ran
    rows = ingestions("test-term", env)
    assert [r["name"] for r in rows] == before and all(r["ok"] for r in rows)
    zb.register("test-term", lambda *a: None, calendar_name="XNYS")
    assert zb.load("test-term", environ=env).asset_finder.sids


def test_status_flags_and_cleans_a_broken_ingestion(tmp_path):
    from click.testing import CliRunner

    from gapline.cli import main

    broken = tmp_path / "data" / "polygon" / "2024-01-01T00;00;00.000000"
    broken.mkdir(parents=True)
    runner = CliRunner()
    env = {"ZIPLINE_ROOT": str(tmp_path)}
    out = runner.invoke(main, ["status", "-b", "polygon"], env=env)
    assert out.exit_code == 0 and "BROKEN" in out.output and "--clean-broken" in out.output
    out = runner.invoke(main, ["status", "-b", "polygon", "--clean-broken"], env=env)
    assert "removed" in out.output and not broken.exists()


def test_quoted_header_is_valid_csv(tmp_path):
    path = _write(tmp_path, [_good("AAA", 0)], header=",".join(f'"{c}"' for c in HEADER.split(",")))
    assert list(read_day_file(path, DAY).ticker) == ["AAA"]


def test_prices_beyond_zipline_storage_are_bad_rows(tmp_path):
    """$5M a share is more than zipline's daily bars can store (uint32 x 1000): the reader
    rejects the row naming file, ticker and line (skip drops and reports it) -- never a
    wrapped value, never a crash inside zipline's writer."""
    root, rng = tmp_path / "raw", np.random.default_rng(4)
    write_minute_days(root, pd.concat([minute_rows("HUGE", DAY, 5_000_000.0, rng, "09:30", "09:40"),
                                       minute_rows("OK", DAY, 20.0, rng, "09:30", "09:40")]))
    with pytest.raises(FlatFileError, match=r"line 2, ticker 'HUGE': .*above the largest storable"):
        build_bundle("test-huge", PolygonBundleConfig(root=root), tmp_path / "z")
    data = build_bundle("test-huge", PolygonBundleConfig(root=root, bad_rows="skip"), tmp_path / "z")
    assert [a.symbol for a in data.asset_finder.retrieve_all(data.asset_finder.sids)] == ["OK"]
    report = json.loads(next((tmp_path / "z").rglob("ingest_report.json")).read_text())
    assert report["file_counts"]["bad_rows"] == 11 and "'HUGE'" in report["skipped_rows"][0]

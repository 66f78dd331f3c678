"""Issue #12: ingests that used to leave a broken ingestion folder (loaded by zipline by
default), lose data silently or fail with the wrong message."""
from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bundles import layout
from bundles.ingestions import ingestions
from bundles.polygon import PolygonBundleConfig, build_bundle, make_ingest
from tests.synth import minute_rows, write_minute_days

REPO = Path(__file__).resolve().parents[3]
ET = "America/New_York"
HEADER = "ticker,volume,open,close,high,low,window_start,transactions"


def _report(zroot, bundle):
    rows = [r for r in ingestions(bundle, {"ZIPLINE_ROOT": str(zroot)}) if r["ok"]]
    return json.loads((rows[-1]["path"] / "gapline" / "ingest_report.json").read_text())


def _names(zroot, bundle):
    return [(r["name"], r["ok"]) for r in ingestions(bundle, {"ZIPLINE_ROOT": str(zroot)})]


# -- 1. a start or end that is not a session -----------------------------------------------

def test_weekend_edge_files_are_snapped_to_sessions(tmp_path):
    """Day files dated Saturday at both edges of the raw cache: the range is snapped to the
    sessions between (and the report says so) instead of failing in zipline's writer."""
    root, rng = tmp_path / "raw", np.random.default_rng(1)
    days = ["2024-07-06", "2024-07-08", "2024-07-09", "2024-07-13"]  # Sat, Mon, Tue, Sat
    write_minute_days(root, pd.concat([minute_rows("AAA", d, 20.0, rng, "09:30", "09:40")
                                       for d in days]))
    data = build_bundle("fault-edges", PolygonBundleConfig(root=root), tmp_path / "z")
    assert data.equity_daily_bar_reader.sessions[0] == pd.Timestamp("2024-07-08")
    report = _report(tmp_path / "z", "fault-edges")
    assert report["start_session"] == "2024-07-08" and report["end_session"] == "2024-07-12"
    notes = " ".join(report["notes"])
    assert "start 2024-07-06 is not a XNYS session: moved to the next session 2024-07-08" in notes
    assert "end 2024-07-13 is not a XNYS session: moved to the previous session 2024-07-12" in notes


def test_end_on_a_holiday_weekend_is_snapped(tmp_path):
    """``GAPLINE_END=2024-03-31`` (Easter Sunday, after Good Friday): end -> 2024-03-28."""
    root, rng = tmp_path / "raw", np.random.default_rng(2)
    write_minute_days(root, pd.concat([minute_rows("AAA", d, 20.0, rng, "09:30", "09:40")
                                       for d in ["2024-03-27", "2024-03-28"]]))
    env = {"GAPLINE_DATA": str(root), "GAPLINE_END": "2024-03-31"}
    build_bundle("fault-end", PolygonBundleConfig.from_environ(env), tmp_path / "z")
    report = _report(tmp_path / "z", "fault-end")
    assert report["end_session"] == "2024-03-28"
    assert any("moved to the previous session 2024-03-28" in n for n in report["notes"])


def test_failure_inside_zipline_writers_leaves_no_folder(tmp_path):
    """A range registered straight with zipline (no snapping) that zipline's own writers
    reject: whatever fails, no ingestion folder appears under data/<bundle>/."""
    from zipline.data import bundles as zb

    root, rng = tmp_path / "raw", np.random.default_rng(3)
    write_minute_days(root, minute_rows("AAA", "2024-07-08", 20.0, rng, "09:30", "09:40"))
    zroot = tmp_path / "z"
    build_bundle("fault-writer", PolygonBundleConfig(root=root), zroot)
    before = _names(zroot, "fault-writer")
    zb.register("fault-writer", make_ingest(lambda env: PolygonBundleConfig(root=root)),
                calendar_name="XNYS", start_session=pd.Timestamp("2024-07-06"),
                end_session=pd.Timestamp("2024-07-07"))  # a weekend: no session at all
    with pytest.raises(Exception):
        zb.ingest("fault-writer", environ=dict(os.environ, ZIPLINE_ROOT=str(zroot)))
    assert _names(zroot, "fault-writer") == before
    assert not [p for p in (zroot / "data").iterdir() if p.name.startswith(".gapline-work")]


# -- 5. header-only day file --------------------------------------------------------------------

def test_header_only_day_file_is_reported(tmp_path, caplog):
    root, rng = tmp_path / "raw", np.random.default_rng(4)
    write_minute_days(root, pd.concat([minute_rows("AAA", d, 20.0, rng, "09:30", "09:40")
                                       for d in ["2024-07-08", "2024-07-10"]]))
    empty = layout.day_file_path(root, layout.MINUTE_DATASET, "2024-07-09")
    empty.write_bytes(gzip.compress((HEADER + "\n").encode()))
    with caplog.at_level(logging.WARNING):
        build_bundle("fault-header", PolygonBundleConfig(root=root), tmp_path / "z")
    report = _report(tmp_path / "z", "fault-header")
    assert report["header_only_files"] == [str(empty)]
    assert any(str(empty) in n and "header only" in n for n in report["notes"])
    assert any(str(empty) in r.getMessage() for r in caplog.records
               if r.levelno >= logging.WARNING)


# -- 6. fractional volumes --------------------------------------------------------------------

def _bars(rows):
    """Polygon rows from (ticker, day, HH:MM start, price, volume)."""
    return pd.DataFrame([{"ticker": t, "volume": v, "open": p, "close": p, "high": p, "low": p,
                          "window_start": pd.Timestamp(f"{d} {hm}", tz=ET).value,
                          "transactions": 1} for t, d, hm, p, v in rows])


FRACTIONAL = [("FRA", "2024-07-08", "09:30", 10.0, 0.4), ("FRA", "2024-07-08", "09:31", 10.0, 0.4),
              ("FRA", "2024-07-08", "09:32", 10.0, 0.4), ("FRA", "2024-07-08", "10:00", 10.0, 2.5),
              ("WHL", "2024-07-08", "09:30", 5.0, 100.0), ("WHL", "2024-07-08", "09:31", 5.0, 0.5)]


def test_fractional_minute_volumes_carry_and_keep_the_daily_total(tmp_path):
    """Running total 0.4, 0.8, 1.2, 3.7 -> rounded 0, 1, 1, 4: minutes 0, 1, 0, 3 (sum 4 =
    the daily volume, 3.7 rounded half up); WHL 100 + 0.5 -> 100, 1 (daily 101)."""
    root = tmp_path / "raw"
    write_minute_days(root, _bars(FRACTIONAL))
    data = build_bundle("fault-frac", PolygonBundleConfig(root=root), tmp_path / "z")
    minute, daily = data.equity_minute_bar_reader, data.equity_daily_bar_reader
    day = pd.Timestamp("2024-07-08")

    def vols(ticker, ends):
        sid = data.asset_finder.lookup_symbol(ticker, day).sid
        got = [minute.get_value(sid, pd.Timestamp(f"2024-07-08 {e}", tz=ET).tz_convert("UTC"),
                                "volume") for e in ends]
        return got, daily.get_value(sid, day, "volume")

    assert vols("FRA", ["09:31", "09:32", "09:33", "10:01"]) == ([0, 1, 0, 3], 4)
    assert vols("WHL", ["09:31", "09:32"]) == ([100, 1], 101)
    report = _report(tmp_path / "z", "fault-frac")
    assert report["fractional_volumes"] == 5
    assert any("5 row(s) with a fractional volume" in n for n in report["notes"])
    assert "rounded half up" in report["volume_rounding"]


def test_fractional_day_aggregate_volume_rounds_half_up(tmp_path):
    root = tmp_path / "raw"
    rows = _bars([("DAY", "2024-07-08", "00:00", 10.0, 3.5), ("DOWN", "2024-07-08", "00:00", 4.0, 7.49)])
    layout.write_day_file(root, layout.DAY_DATASET, "2024-07-08", rows)
    data = build_bundle("fault-frac-day", PolygonBundleConfig(root=root, daily_source="day"),
                        tmp_path / "z")
    day = pd.Timestamp("2024-07-08")
    got = {t: data.equity_daily_bar_reader.get_value(
        data.asset_finder.lookup_symbol(t, day).sid, day, "volume") for t in ("DAY", "DOWN")}
    assert got == {"DAY": 4, "DOWN": 7}


# -- 7. SIGKILL mid-ingest ----------------------------------------------------------------------

SLOW_INGEST = textwrap.dedent("""
    import sys, time, pathlib
    import bundles.polygon.days as bp  # pass 1 looks read_day_file up at call time
    from bundles.polygon import PolygonBundleConfig, build_bundle
    marker = pathlib.Path(sys.argv[3])
    real = bp.read_day_file
    def slow(*a, **k):
        marker.touch()          # tell the test we are inside the ingest
        time.sleep(float(sys.argv[5]))
        return real(*a, **k)
    bp.read_day_file = slow
    # incremental=False: unchanged inputs would otherwise read no day file at all
    build_bundle(sys.argv[4], PolygonBundleConfig(root=sys.argv[1], incremental=False),
                 sys.argv[2])
""")


def _start_slow(root, zroot, marker, bundle, env, sleep=0.5):
    return subprocess.Popen([sys.executable, "-c", SLOW_INGEST, str(root), str(zroot),
                             str(marker), bundle, str(sleep)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(marker, proc, timeout=120):
    deadline = time.time() + timeout
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()[1].decode()[-3000:]


def _raw_days(tmp_path, seed, n_days=6):
    root, rng = tmp_path / "raw", np.random.default_rng(seed)
    days = pd.bdate_range("2024-07-08", periods=n_days).strftime("%Y-%m-%d")
    write_minute_days(root, pd.concat([minute_rows("AAA", d, 20.0, rng, "09:30", "09:40")
                                       for d in days]))
    return root


def _leftovers(zroot, tmp):
    work = [p for p in (zroot / "data").iterdir() if p.name.startswith(".gapline-work-")]
    return work + sorted(tmp.glob("gapline-ingest-*"))


def _kill_midway(root, zroot, tmp_path, bundle, env, n):
    marker = tmp_path / f"inside{n}"
    proc = _start_slow(root, zroot, marker, bundle, env)
    _wait_for(marker, proc)
    time.sleep(0.7)  # a day file or two into pass 1
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_midway_leaves_previous_ingestion_in_use_and_leftovers_are_cleaned(
        tmp_path, monkeypatch):
    from click.testing import CliRunner
    from zipline.data import bundles as zb

    from gapline.cli import main

    bundle = "fault-kill"
    root, zroot, tmp = _raw_days(tmp_path, 5), tmp_path / "z", tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    env = dict(os.environ, ZIPLINE_ROOT=str(zroot), TMPDIR=str(tmp))
    build_bundle(bundle, PolygonBundleConfig(root=root), zroot)
    before = _names(zroot, bundle)

    _kill_midway(root, zroot, tmp_path, bundle, env, 1)
    assert _names(zroot, bundle) == before  # nothing half-built where zipline looks
    zb.register(bundle, lambda *a: None, calendar_name="XNYS")
    loaded = zb.load(bundle, environ=env)
    assert loaded.asset_finder.sids
    assert _leftovers(zroot, tmp), "the killed ingest left its temp folders"
    # the next run removes them
    build_bundle(bundle, PolygonBundleConfig(root=root), zroot)
    assert _leftovers(zroot, tmp) == []
    assert all(ok for _, ok in _names(zroot, bundle)) and len(_names(zroot, bundle)) == 2

    # ... and so does `gapline status --clean-broken`
    _kill_midway(root, zroot, tmp_path, bundle, env, 2)
    assert _leftovers(zroot, tmp)
    out = CliRunner().invoke(main, ["status", "-b", bundle, "--clean-broken"],
                             env={"ZIPLINE_ROOT": str(zroot)})
    assert out.exit_code == 0, out.output
    assert "removed" in out.output and _leftovers(zroot, tmp) == []
    assert all(ok for _, ok in _names(zroot, bundle)) and len(_names(zroot, bundle)) == 2


def test_legacy_zipline_tmp_leftovers_are_cleaned_when_old(tmp_path):
    from bundles.ingestions import remove_stale_temp

    tmp = tmp_path / "tmp"
    old = tmp / "tmpabc123" / "polygon" / "2024-01-01T00;00;00.000000"
    fresh = tmp / "tmpdef456" / "polygon" / "2024-01-02T00;00;00.000000"
    other = tmp / "tmpghi789" / "something-else"
    for p in (old, fresh, other):
        p.mkdir(parents=True)
    os.utime(old.parent, (time.time() - 7200, time.time() - 7200))
    os.utime(other, (time.time() - 7200, time.time() - 7200))
    removed = remove_stale_temp("polygon", {"ZIPLINE_ROOT": str(tmp_path / "z")}, tmp)
    assert removed == [tmp / "tmpabc123"] and fresh.exists() and other.exists()


# -- 8. two concurrent ingests --------------------------------------------------------------

def test_second_concurrent_ingest_fails_fast_naming_the_first(tmp_path):
    bundle = "fault-lock"
    root, zroot = _raw_days(tmp_path, 6, n_days=4), tmp_path / "z"
    env = dict(os.environ, ZIPLINE_ROOT=str(zroot))
    marker = tmp_path / "inside"
    first = _start_slow(root, zroot, marker, bundle, env, sleep=1.0)
    _wait_for(marker, first)
    second = subprocess.run([sys.executable, "-c", SLOW_INGEST, str(root), str(zroot),
                             str(tmp_path / "inside2"), bundle, "0"], cwd=REPO, env=env,
                            capture_output=True, timeout=120)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()[-3000:]
    assert second.returncode != 0
    assert f"another ingest of {bundle} is running (pid {first.pid})" in second.stderr.decode()
    assert [ok for _, ok in _names(zroot, bundle)] == [True]


# -- 9. an invalid -x value ---------------------------------------------------------------------

def test_invalid_extension_option_names_the_option_and_allowed_values(tmp_path):
    root = _raw_days(tmp_path, 7, n_days=2)
    env = dict(os.environ, ZIPLINE_ROOT=str(tmp_path / "z"), GAPLINE_DATA=str(root),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    zipline = Path(sys.executable).with_name("zipline")
    out = subprocess.run([str(zipline), "-e", str(REPO / "extension.py"),
                          "-x", "polygon.bad_rows=ignore", "ingest", "-b", "polygon"],
                         cwd=tmp_path, env=env, capture_output=True, timeout=300)
    text = (out.stdout + out.stderr).decode()
    assert out.returncode != 0
    assert "No bundle registered" not in text, text[-3000:]
    assert "bad_rows" in text and "raise, skip" in text and "'ignore'" in text, text[-3000:]
    assert not [r for r in ingestions("polygon", env)]

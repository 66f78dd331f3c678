"""Incremental ingest (bundles.polygon.incremental): the same bundle as a full ingest of the same
files, the previous ingestion never touched, a full ingest when the inputs changed or when
asked."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import bcolz
import numpy as np
import pandas as pd
import pytest

from bundles import layout
from bundles.polygon import PolygonBundleConfig, build_bundle

# the demo's special cases: 4:1 split 2024-10-15 (ABFL), 1:10 reverse split 2024-11-18 (RSJN),
# delisting after 2024-09-13 (ZNLA), RELO reused (company A to 2024-08-02, B from 2024-10-16),
# a full-day halt (RSQN), an intraday halt (DLHX), ETF and stock dividends, a warrant
TICKERS = ["ABFL", "RSJN", "ZNLA", "RELO", "RSQN", "DLHX", "SPY", "QQQ", "IWM", "FRCR", "JNMR",
           "BLGLW"]
START, CUT, MIDDLE, END = "2024-07-01", "2024-09-10", "2024-11-15", "2024-12-31"


def newest(zroot: Path, name: str) -> Path:
    return max((p for p in (zroot / "data" / name).iterdir() if not p.name.startswith(".")),
               key=lambda p: p.name)


def report_of(folder: Path) -> dict:
    return json.loads((folder / "gapline" / "ingest_report.json").read_text())


def tree_hashes(folder: Path) -> dict:
    out = {}
    for base, _, files in os.walk(folder):
        for f in files:
            p = Path(base) / f
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _ctable(path: Path) -> dict:
    t = bcolz.ctable(rootdir=str(path), mode="r")
    return {n: t[n][:] for n in t.names}, dict(t.attrs.attrs)


def _sqlite_tables(path: Path) -> dict:
    with sqlite3.connect(str(path)) as con:
        names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return {n: pd.read_sql(f"select * from {n}", con) for n in names}


def assert_same_bundle(a: Path, b: Path):
    """Every array, table and adjustment of ingestion folders ``a`` and ``b`` is equal."""
    # minute bars: every sid's bcolz columns, and the metadata (ratios, sessions)
    ma, mb = a / "minute_equities.bcolz", b / "minute_equities.bcolz"
    sids_a = sorted(str(p.relative_to(ma)) for p in ma.rglob("*.bcolz"))
    assert sids_a == sorted(str(p.relative_to(mb)) for p in mb.rglob("*.bcolz"))
    assert sids_a
    for rel in sids_a:
        (ca, _), (cb, _) = _ctable(ma / rel), _ctable(mb / rel)
        assert ca.keys() == cb.keys()
        for k in ca:
            np.testing.assert_array_equal(ca[k], cb[k], err_msg=f"{rel} {k}")
    assert json.loads((ma / "metadata.json").read_text()) == \
        json.loads((mb / "metadata.json").read_text())
    # daily bars: the one ctable with its attrs (first/last rows, calendar offsets)
    (da, attrs_a), (db, attrs_b) = _ctable(a / "daily_equities.bcolz"), \
        _ctable(b / "daily_equities.bcolz")
    assert attrs_a == attrs_b
    for k in da:
        np.testing.assert_array_equal(da[k], db[k], err_msg=f"daily {k}")
    # adjustments (splits, mergers, dividends, payouts) and assets (every table)
    for pattern in ("adjustments.sqlite", "assets-*.sqlite"):
        (fa,), (fb,) = sorted(a.glob(pattern)), sorted(b.glob(pattern))
        ta, tb = _sqlite_tables(fa), _sqlite_tables(fb)
        assert ta.keys() == tb.keys()
        for name in ta:
            pd.testing.assert_frame_equal(ta[name], tb[name], obj=f"{fa.name} {name}")
    # side tables
    pa_ = sorted(p.name for p in (a / "gapline").glob("*.parquet"))
    assert pa_ == sorted(p.name for p in (b / "gapline").glob("*.parquet")) and pa_
    for name in pa_:
        pd.testing.assert_frame_equal(pd.read_parquet(a / "gapline" / name),
                                      pd.read_parquet(b / "gapline" / name), obj=name)
    # the report, but for timings and the ingest mode
    ra, rb = report_of(a), report_of(b)
    for r in (ra, rb):
        r.pop("seconds")
        r.pop("incremental")
    assert ra == rb


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory):
    """The demo's raw files (hard links to the test session's generated demo)."""
    from bundles.register import demo_config

    source = Path(demo_config(os.environ).root)
    root = tmp_path_factory.mktemp("inc_raw")
    for p in source.rglob("*"):
        if p.is_file():
            dst = root / p.relative_to(source)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(p, dst)
    return root


def config(root, end, **kw):
    return PolygonBundleConfig(root=root, start=START, end=end, tickers=TICKERS, **kw)


@pytest.fixture(scope="module")
def demo_runs(demo_raw, tmp_path_factory):
    """A full ingest up to CUT, two incremental ones (MIDDLE: tables shared in the ingest's
    process; END: in two worker processes), with the previous ingestions' bytes before and
    after; and a full ingest up to END elsewhere."""
    from bundles.polygon import incremental_minutes, minute_pool

    zroot = tmp_path_factory.mktemp("inc_z")
    build_bundle("inc", config(demo_raw, CUT), zroot)
    first = newest(zroot, "inc")
    before = tree_hashes(first)
    build_bundle("inc", config(demo_raw, MIDDLE, workers=1), zroot)
    second = newest(zroot, "inc")
    second_before = tree_hashes(second)
    pools = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(incremental_minutes, "POOL_MIN_SIDS", 0)  # the demo is small: pool anyway
        mp.setattr(incremental_minutes, "SIDS_PER_TASK", 3)
        start = minute_pool.TaskPool.start
        mp.setattr(minute_pool.TaskPool, "start", lambda pool: pools.append(pool) or start(pool))
        build_bundle("inc", config(demo_raw, END, workers=2), zroot)
    assert [p.workers for p in pools] == [2]
    third = newest(zroot, "inc")
    after = (tree_hashes(first), tree_hashes(second))
    full_root = tmp_path_factory.mktemp("inc_full")
    build_bundle("inc", config(demo_raw, END), full_root)
    return {"zroot": zroot, "folders": (first, second, third), "before": (before, second_before),
            "after": after, "full": newest(full_root, "inc")}


def test_incremental_equals_full_on_the_demo(demo_runs):
    first, second, third = demo_runs["folders"]
    assert report_of(first)["incremental"]["mode"] == "full"
    for folder in (second, third):
        mode = report_of(folder)["incremental"]
        assert mode["mode"] == "incremental", mode
        assert mode["sids_shared"] > 0 and mode["sids_appended"] > 0
    assert report_of(second)["incremental"]["previous"] == first.name
    assert_same_bundle(third, demo_runs["full"])


def test_the_new_sessions_hold_the_special_cases(demo_runs):
    """The incremental steps cross a split, a delisting, a new listing of a reused ticker and
    dividends (so the equality above covers them)."""
    first, _, third = demo_runs["folders"]
    old = pd.read_parquet(first / "gapline" / "assets.parquet")
    new = pd.read_parquet(third / "gapline" / "assets.parquet")
    assert (old["ticker"] == "RELO").sum() == 1 and (new["ticker"] == "RELO").sum() == 2
    assert old.loc[old.ticker == "ZNLA", "end_date"].iloc[0] == pd.Timestamp(CUT)
    assert new.loc[new.ticker == "ZNLA", "end_date"].iloc[0] == pd.Timestamp("2024-09-13")
    with sqlite3.connect(str(third / "adjustments.sqlite")) as con:
        splits = pd.read_sql("select * from splits", con)
        dividends = pd.read_sql("select * from dividends", con)
    assert len(splits) == 2
    assert (pd.to_datetime(dividends["effective_date"], unit="s") > pd.Timestamp(CUT)).any()


def test_previous_ingestions_are_untouched_and_share_files(demo_runs):
    first, second, third = demo_runs["folders"]
    before, second_before = demo_runs["before"]
    after_first, after_second = demo_runs["after"]
    assert after_first == before
    assert after_second == second_before
    # the demo's tables are shorter than one bcolz chunk (65,536 minutes): what is shared here
    # is the write-once metadata; full chunks are shared in the Lean test below
    shared = [p for p in (third / "minute_equities.bcolz").rglob("*")
              if p.is_file() and p.stat().st_nlink > 1]
    assert shared, "no file is shared: the link path was not exercised"
    for p in shared[:20]:
        rel = p.relative_to(third)
        assert any((f / rel).exists() and os.path.samefile(f / rel, p) for f in (first, second))
    segments = list((third / "gapline" / "incremental").glob("daily-*.parquet"))
    assert len(segments) == 3
    assert os.path.samefile(third / "gapline" / "incremental" / "daily-00000.parquet",
                            first / "gapline" / "incremental" / "daily-00000.parquet")


def test_the_newest_ingestion_loads(demo_runs):
    from zipline.data import bundles as zb

    data = zb.load("inc", environ=dict(os.environ, ZIPLINE_ROOT=str(demo_runs["zroot"])))
    spy = data.asset_finder.lookup_symbol("SPY", pd.Timestamp(END))
    reader = data.equity_minute_bar_reader
    minutes = reader.calendar.session_minutes(pd.Timestamp(END))
    closes = reader.load_raw_arrays(["close"], minutes[0], minutes[-1], [spy.sid])[0]
    assert np.isfinite(closes).sum() > 300


def _copy_raw(src: Path, dst: Path):
    for p in src.rglob("*"):
        if p.is_file():
            d = dst / p.relative_to(src)
            d.parent.mkdir(parents=True, exist_ok=True)
            os.link(p, d)


def test_a_changed_day_file_means_a_full_ingest(demo_raw, tmp_path):
    raw = tmp_path / "raw"
    _copy_raw(demo_raw, raw)
    zroot = tmp_path / "z"
    tickers = ["SPY", "RELO"]
    cfg = PolygonBundleConfig(root=raw, start=START, end="2024-07-12", tickers=tickers)
    build_bundle("chg", cfg, zroot)
    # a new file (new inode: the demo's own file is a hard link) with other bytes, same bars
    path = layout.day_file_path(raw, layout.MINUTE_DATASET, "2024-07-09")
    import gzip
    data = gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=1)
    path.unlink()
    path.write_bytes(data)
    cfg = PolygonBundleConfig(root=raw, start=START, end="2024-07-19", tickers=tickers)
    build_bundle("chg", cfg, zroot)
    mode = report_of(newest(zroot, "chg"))["incremental"]
    assert mode["mode"] == "full"
    assert "2024-07-09.csv.gz changed" in mode["reason"]
    # unchanged inputs again: incremental
    cfg = PolygonBundleConfig(root=raw, start=START, end="2024-07-26", tickers=tickers)
    build_bundle("chg", cfg, zroot)
    assert report_of(newest(zroot, "chg"))["incremental"]["mode"] == "incremental"


def test_incremental_0_forces_a_full_ingest(demo_raw, tmp_path):
    zroot = tmp_path / "z"
    build_bundle("frc", PolygonBundleConfig(root=demo_raw, start=START, end="2024-07-12",
                                            tickers=["SPY"]), zroot)
    env = {"GAPLINE_DATA": str(demo_raw), "GAPLINE_START": START, "GAPLINE_END": "2024-07-19",
           "GAPLINE_TICKERS": "SPY", "GAPLINE_INCREMENTAL": "0"}
    cfg = PolygonBundleConfig.from_environ(env)
    assert cfg.incremental is False
    build_bundle("frc", cfg, zroot)
    mode = report_of(newest(zroot, "frc"))["incremental"]
    assert mode["mode"] == "full" and "GAPLINE_INCREMENTAL=0" in mode["reason"]
    with pytest.raises(ValueError, match="incremental"):
        PolygonBundleConfig(root=demo_raw, incremental="maybe")


SMALL = ["SPY", "QQQ", "IWM", "ABFL"]  # a quick bundle for the failure tests


def _july_then_august(demo_raw, zroot: Path, name: str, **august):
    """A full ingest of SMALL to 2024-07-31 (its folder and file hashes), and a function
    running the incremental ingest to 2024-08-30 (``august``: more config options)."""
    build_bundle(name, PolygonBundleConfig(root=demo_raw, start=START, end="2024-07-31",
                                           tickers=SMALL), zroot)
    first = newest(zroot, name)

    def to_august():
        build_bundle(name, PolygonBundleConfig(root=demo_raw, start=START, end="2024-08-30",
                                               tickers=SMALL, **august), zroot)
    return first, tree_hashes(first), to_august


def test_an_interrupted_incremental_ingest_keeps_the_previous_one(demo_raw, tmp_path,
                                                                   monkeypatch):
    from zipline.data import bundles as zb

    from bundles.polygon import incremental_minutes

    zroot = tmp_path / "z"
    first, before, to_august = _july_then_august(demo_raw, zroot, "itr")
    real, calls = incremental_minutes.share_ctable, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("interrupted in the minute phase")
        return real(*args, **kwargs)

    monkeypatch.setattr(incremental_minutes, "share_ctable", failing)
    with pytest.raises(KeyboardInterrupt):
        to_august()
    assert len(calls) >= 3  # (threads: others may have started)
    assert newest(zroot, "itr") == first
    assert tree_hashes(first) == before
    data = zb.load("itr", environ=dict(os.environ, ZIPLINE_ROOT=str(zroot)))
    assert data.equity_daily_bar_reader.last_available_dt == pd.Timestamp("2024-07-31")


def test_a_failure_while_workers_share_tables_keeps_the_previous_one(demo_raw, tmp_path,
                                                                      monkeypatch):
    """The shared tables are written in worker processes while the ingest writes the rest:
    a failure there stops them before the new folder is removed (nothing is left behind,
    the previous ingestion is untouched)."""
    from bundles.polygon import incremental_minutes, ingest

    zroot = tmp_path / "z"
    first, before, to_august = _july_then_august(demo_raw, zroot, "wfl", workers=2)
    monkeypatch.setattr(incremental_minutes, "POOL_MIN_SIDS", 0)
    monkeypatch.setattr(incremental_minutes, "SIDS_PER_TASK", 1)
    closed = []
    close = incremental_minutes.TableSharing.close
    monkeypatch.setattr(incremental_minutes.TableSharing, "close",
                        lambda self: closed.append(self.pool is not None) or close(self))

    def failing(*args, **kwargs):
        raise OSError("disk full while the workers share tables")

    monkeypatch.setattr(ingest, "write_side_tables", failing)
    with pytest.raises(OSError, match="disk full"):
        to_august()
    assert closed == [True]  # the pool was running, and was stopped
    bundle_dir = zroot / "data" / "wfl"
    assert [p.name for p in bundle_dir.iterdir() if not p.name.startswith(".")] == [first.name]
    assert [p for p in (bundle_dir / ".cache").rglob("*") if p.is_file()] == []
    assert tree_hashes(first) == before


def test_a_workers_sharing_error_reaches_the_ingest(tmp_path):
    from bundles.polygon.incremental_minutes import TableSharing

    sharing = TableSharing(2)
    sharing.submit([(str(tmp_path / "missing.bcolz"), str(tmp_path / "new" / "0.bcolz"), None)])
    with pytest.raises(FileNotFoundError, match="missing.bcolz"):
        sharing.wait(False)
    assert sharing.pool is None


@pytest.fixture(scope="module")
def lean_raw(tmp_path_factory):
    """The Lean real minute bars as Polygon flat files (tests/bundles/polygon/
    test_lean_real_data.py), with its AAPL split and tickers."""
    from tests.bundles.polygon.test_lean_real_data import write_lean_raw

    root = tmp_path_factory.mktemp("inc_lean_raw")
    frame = write_lean_raw(root)
    return root, sorted(frame["day"].unique())


def test_incremental_equals_full_on_lean_real_data(lean_raw, tmp_path):
    root, days = lean_raw
    start, end = pd.Timestamp(days[0]), pd.Timestamp(days[-1])
    # Lean holds AIG/BAC/IBM/SPY 2013-10-04..11, AAPL 2014-06-05..09 (its 7:1 split on the
    # 9th) and SPY 2023-08-03: the new session appends nine years of padding + one day to SPY
    cut = pd.Timestamp("2014-06-09")
    assert days[-1] > cut
    zroot = tmp_path / "z"
    build_bundle("lean-inc", PolygonBundleConfig(root=root, start=start, end=cut), zroot)
    first = newest(zroot, "lean-inc")
    before = tree_hashes(first)
    build_bundle("lean-inc", PolygonBundleConfig(root=root, start=start, end=end), zroot)
    second = newest(zroot, "lean-inc")
    assert report_of(second)["incremental"]["mode"] == "incremental"
    assert tree_hashes(first) == before
    # tables longer than a bcolz chunk (65,536 minutes: AAPL to 2014-06-09) share their full
    # chunks by hard link; the partial last chunk and sizes are new files
    linked = 0
    for sizes in (first / "minute_equities.bcolz").rglob("close/meta/sizes"):
        if json.loads(sizes.read_text())["shape"][0] < 65536:
            continue
        chunk = sizes.parent.parent / "data" / "__0.blp"
        again = second / chunk.relative_to(first)
        assert os.path.samefile(chunk, again) and chunk.stat().st_nlink > 1
        assert not os.path.samefile(sizes, second / sizes.relative_to(first))
        linked += 1
    assert linked >= 1
    build_bundle("lean-inc", PolygonBundleConfig(root=root, start=start, end=end),
                 tmp_path / "full")
    assert_same_bundle(second, newest(tmp_path / "full", "lean-inc"))

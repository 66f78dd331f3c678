"""Pass 2 across worker processes (``workers``): the same bytes as the serial writer.

Also: the direct bcolz writer (:func:`bundles.zipline_writers.write_ctable`) against bcolz's
own ``ctable`` + ``flush``, the ``workers`` option, and a worker's exception in the parent.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bundles import layout, zipline_writers
from bundles.polygon import PolygonBundleConfig, build_bundle, minute_pool, minutes
from tests.synth import minute_rows, write_minute_days

DAYS = ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]
TICKERS = [f"T{i:02d}" for i in range(14)]


def _tree(root: Path) -> dict:
    """relative path -> bytes of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _raw(root: Path):
    rng = np.random.default_rng(3)
    parts = []
    for i, t in enumerate(TICKERS):
        for j, day in enumerate(DAYS):
            if i % 5 == 4 and j % 2:  # some tickers skip sessions: tables of several lengths
                continue
            parts.append(minute_rows(t, day, 0.5 + 7 * i, rng, "08:00", "17:00", skip=0.3))
    for day in DAYS[:2] + DAYS[3:]:  # a reused ticker: two companies, one sid each
        parts.append(minute_rows("RUSE", day, 5.0 if day < "2024-07-03" else 30.0, rng,
                                 "09:30", "15:59", skip=0.2))
    big = minute_rows("BIG", DAYS[1], 4000.0, rng, "09:30", "15:59")
    big.loc[big.index[5], "volume"] = 6e9  # above uint32: clipped, reported
    parts.append(big)
    parts.append(minute_rows("DONLY", DAYS[0], 9.0, rng, "09:30", "15:59"))  # daily only
    write_minute_days(root, pd.concat(parts, ignore_index=True))
    layout.write_reference(root, "tickers", [
        {"ticker": t, "name": t, "type": "CS", "active": True} for t in TICKERS + ["BIG", "DONLY"]
    ] + [
        {"ticker": "RUSE", "name": "Old", "type": "CS", "active": False,
         "delisted_utc": "2024-07-03T00:00:00Z"},
        {"ticker": "RUSE", "name": "New", "type": "CS", "active": True},
    ])


@pytest.fixture(scope="module")
def two_ingests(tmp_path_factory):
    """The minute bars folder of the same raw files ingested with workers=1 and workers=2
    (several buckets, the pool used for buckets and empty tables)."""
    root = tmp_path_factory.mktemp("par-raw")
    _raw(root)
    minute_tickers = tuple(TICKERS + ["RUSE", "BIG"])  # DONLY: daily bars, empty minute table
    out = {}
    started = []
    start = minute_pool.TaskPool._start

    def spy(pool):
        started.append(pool.workers)
        return start(pool)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(minute_pool, "PARALLEL_MIN_ROWS", 0)  # small data: split it anyway
        mp.setattr(minute_pool, "PARALLEL_MIN_TICKERS", 0)
        mp.setattr(minutes, "EMPTY_TABLES_PER_TASK", 1)
        mp.setattr(minute_pool.TaskPool, "_start", spy)
        for workers in (1, 2):
            zroot = tmp_path_factory.mktemp(f"par-zipline-{workers}")
            cfg = PolygonBundleConfig(root=root, workers=workers, minute_tickers=minute_tickers)
            build_bundle(f"test-par-{workers}", cfg, zroot)
            folder = [p for p in (zroot / "data" / f"test-par-{workers}").iterdir()
                      if not p.name.startswith(".")]
            assert len(folder) == 1
            out[workers] = folder[0] / "minute_equities.bcolz"
    assert started and set(started) == {2}  # workers=2 did start a pool; workers=1 did not
    return out


def test_workers_write_the_same_bytes_as_the_serial_writer(two_ingests):
    serial, parallel = _tree(two_ingests[1]), _tree(two_ingests[2])
    # bcolz writes no timestamps and metadata.json lists sids ascending: every file, metadata
    # included, compares byte for byte
    assert sorted(serial) == sorted(parallel)
    assert "metadata.json" in serial
    assert sum(p.endswith(".blp") for p in serial) >= len(TICKERS)
    assert [p for p in serial if serial[p] != parallel[p]] == []


def test_parallel_ingest_reads_back(two_ingests, tmp_path):
    import json

    meta = json.loads((two_ingests[2] / "metadata.json").read_text())
    ratios = {int(k): v for k, v in meta["ohlc_ratios_per_sid"].items()}
    assert list(ratios) == sorted(ratios) and len(ratios) == len(TICKERS) + 3  # RUSE: 2 sids
    sid_dirs = [p for p in _tree(two_ingests[2]) if p.endswith("__rootdirs__")]
    assert len(sid_dirs) == len(TICKERS) + 4  # + the daily-only sid's empty table


@pytest.mark.parametrize("value", [0, -2, "0", "abc", "1.5", True])
def test_bad_workers_raise_naming_the_option(tmp_path, value):
    with pytest.raises(ValueError, match="workers"):
        PolygonBundleConfig(root=tmp_path, workers=value)


def test_workers_from_environment_and_extension_args(tmp_path):
    import types

    assert PolygonBundleConfig(root=tmp_path).workers == max(1, os.cpu_count() or 1)
    env = {"GAPLINE_DATA": str(tmp_path), "GAPLINE_WORKERS": "3"}
    assert PolygonBundleConfig.from_environ(env).workers == 3
    ext = types.SimpleNamespace(polygon=types.SimpleNamespace(workers="1"))
    assert PolygonBundleConfig.from_environ(env, ext).workers == 1
    with pytest.raises(ValueError, match="GAPLINE_WORKERS"):
        PolygonBundleConfig.from_environ({"GAPLINE_DATA": str(tmp_path), "GAPLINE_WORKERS": "x"})


def _boom(state, i):
    if i == 2:
        raise ValueError(f"sid {i}: bad minute ({state})")
    return i


@pytest.mark.parametrize("workers", [1, 2])
def test_a_workers_error_reaches_the_parent_with_its_message(workers):
    with pytest.raises(ValueError, match=r"^sid 2: bad minute \(st\)$"):
        with minute_pool.TaskPool(workers, "st") as pool:
            list(pool.run(_boom, [(i,) for i in range(4)]))


def test_bucket_count():
    assert minute_pool.bucket_count(10, 3_000_000, 1) == 1
    assert minute_pool.bucket_count(10_000_000, 3_000_000, 1) == 4
    assert minute_pool.bucket_count(500_000, 3_000_000, 2) == 1  # too small for a pool
    assert minute_pool.bucket_count(2_000_000, 3_000_000, 2) == 2 * minute_pool.BUCKETS_PER_WORKER
    many_tickers = minute_pool.bucket_count(500_000, 3_000_000, 2, 5_000)
    assert many_tickers == 2 * minute_pool.BUCKETS_PER_WORKER


@pytest.mark.parametrize("n", [0, 1, 7_800, 65_536, 65_537, 140_000])
def test_direct_ctable_is_bcolz_byte_for_byte(tmp_path, n):
    import bcolz

    rng = np.random.default_rng(n)
    cols = [np.where(rng.random(n) < 0.3, rng.integers(0, 2**31, n), 0).astype(np.uint32)
            for _ in zipline_writers.MINUTE_COLUMNS]
    expectedlen = 390 * 252 * 15
    table = bcolz.ctable(rootdir=str(tmp_path / "bcolz"), columns=cols,
                         names=list(zipline_writers.MINUTE_COLUMNS), expectedlen=expectedlen,
                         mode="w")
    table.flush()
    zipline_writers.write_ctable(str(tmp_path / "direct"), cols, zipline_writers.MINUTE_COLUMNS,
                                 expectedlen)
    assert _tree(tmp_path / "bcolz") == _tree(tmp_path / "direct")


def test_empty_minute_table_is_zipline_init_ctable(tmp_path):
    from zipline.data.bcolz_minute_bars import BcolzMinuteBarWriter
    from zipline.utils.calendar_utils import get_calendar

    trees = []
    for name in ("zipline", "direct"):
        (tmp_path / name).mkdir()
        writer = BcolzMinuteBarWriter(str(tmp_path / name), get_calendar("XNYS"),
                                      pd.Timestamp(DAYS[0]), pd.Timestamp(DAYS[-1]), 390)
        if name == "zipline":
            writer._ensure_ctable(7)
        else:
            zipline_writers.ensure_minute_table(writer, 7)
        trees.append(_tree(tmp_path / name))
    assert trees[0] == trees[1] and len(trees[0]) > 5

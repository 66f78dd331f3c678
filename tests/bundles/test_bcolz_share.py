"""bundles.bcolz_share: a shared ctable is what bcolz's own append writes, and the source table
never changes."""
import hashlib
import os
import shutil

import bcolz
import numpy as np
import pytest

from bundles.bcolz_share import share_ctable, table_length

NAMES = ["open", "high", "low", "close", "volume"]


def _tree(path):
    out = {}
    for folder, _, files in os.walk(path):
        for f in files:
            p = os.path.join(folder, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _make(path, n, seed=0):
    rng = np.random.default_rng(seed)
    cols = [rng.integers(0, 50, n).astype(np.uint32) for _ in NAMES]
    bcolz.ctable(rootdir=str(path), columns=cols, names=NAMES, chunklen=1024,
                 mode="w").flush()
    return cols


@pytest.mark.parametrize("n,extra", [(0, 5), (700, 0), (700, 10), (1024, 3), (1000, 3000),
                                     (2048, 1024), (0, 0)])
def test_share_equals_bcolz_append(tmp_path, n, extra):
    src = tmp_path / "src"
    cols = _make(src, n)
    chunklen = bcolz.carray(rootdir=str(src / "open"), mode="r").chunklen
    assert chunklen == 1024
    before = _tree(src)
    rng = np.random.default_rng(1)
    tails = [rng.integers(0, 50, extra).astype(np.uint32) for _ in NAMES]
    expected = tmp_path / "expected"
    shutil.copytree(src, expected)
    if extra:
        t = bcolz.ctable(rootdir=str(expected), mode="a")
        t.append(tails)
        t.flush()
    got = tmp_path / "got"
    share_ctable(str(src), str(got), tails if extra else None)
    assert _tree(src) == before
    assert _tree(got) == _tree(expected)
    table = bcolz.ctable(rootdir=str(got), mode="r")
    assert table_length(str(got)) == len(table) == n + extra
    for name, c, t in zip(NAMES, cols, tails):
        np.testing.assert_array_equal(table[name][:], np.concatenate([c, t]))
    # full chunks are shared, never copied
    for k in range(n // chunklen):
        a, b = src / "open" / "data" / f"__{k}.blp", got / "open" / "data" / f"__{k}.blp"
        assert os.path.samefile(a, b)
    assert not os.path.samefile(src / "open" / "meta" / "sizes", got / "open" / "meta" / "sizes")
    # appending to the new table (bcolz itself) leaves the source untouched
    t = bcolz.ctable(rootdir=str(got), mode="a")
    t.append([np.ones(2500, np.uint32)] * 5)
    t.flush()
    assert _tree(src) == before

"""Property tests of the flat-file reader (:func:`bundles.flatfiles.read_day_file`).

Random valid day files -- tickers of the allowed alphabet, prices from $0.0001 to $100,000,
duplicates (identical and conflicting), unsorted rows, bars at any minute of the ET day
(pre-market, after-hours, overnight; DST days included) -- read back as exactly the rows a
plain-pandas oracle computes: the last row in file order wins a duplicated (ticker, minute),
rows sorted by (ticker, window_start).

Random single-field corruptions (non-numeric, negative, zero, inf, NaN, missing value, price
above the storable limit, bad timestamp, bad ticker) either raise naming the file, the ticker
and the line (``bad_rows="raise"``) or drop exactly the corrupted row (``bad_rows="skip"``),
returning the oracle's rows for the others. A missing column always raises naming the file
and the column.
"""
from __future__ import annotations

import csv
import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundles.flatfiles import FlatFileError, read_day_file
from bundles.layout import FLAT_COLUMNS

ET = "America/New_York"
MIN = 60_000_000_000
DAYS = ["2024-07-09", "2024-01-02", "2024-03-10", "2024-11-03"]  # two DST switch days
SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TICKER = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,19}", fullmatch=True)
PRICE = st.one_of(st.floats(1e-4, 1e5, allow_nan=False, allow_infinity=False),
                  st.floats(1e-4, 1e5).map(lambda x: max(round(x, 2), 0.01)),
                  st.sampled_from([1e-4, 0.0034, 1.0, 99_999.99, 1e5]))
VOLUME = st.one_of(st.integers(0, 10**10), st.floats(0, 1e10, allow_nan=False),
                   st.sampled_from([0, 1, 2**32 - 1, 2**32 + 5]))


def _bounds(day):
    start = pd.Timestamp(day, tz=ET).value
    end = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(ET).value
    return start, end


@st.composite
def bar(draw, ticker, minutes):
    low, a, b, high = sorted(draw(st.lists(PRICE, min_size=4, max_size=4)))
    o, c = (a, b) if draw(st.booleans()) else (b, a)
    return {"ticker": ticker, "volume": draw(VOLUME), "open": o, "close": c, "high": high,
            "low": low, "window_start": draw(minutes),
            "transactions": draw(st.one_of(st.integers(0, 10**6), st.just("")))}


@st.composite
def day_files(draw, max_rows=30):
    """(day, rows in file order): a valid minute file with duplicates, in random order."""
    day = draw(st.sampled_from(DAYS))
    start, end = _bounds(day)
    minutes = st.integers(0, (end - start) // MIN - 1).map(lambda m: start + m * MIN)
    tickers = draw(st.lists(TICKER, min_size=1, max_size=5, unique=True))
    rows = [draw(bar(draw(st.sampled_from(tickers)), minutes))
            for _ in range(draw(st.integers(1, max_rows)))]
    for i, conflicting in draw(st.lists(st.tuples(st.integers(0, len(rows) - 1), st.booleans()),
                                        max_size=8)):
        again = dict(rows[i])
        if conflicting:  # same ticker and minute, other values
            again.update({k: v for k, v in draw(bar(again["ticker"], st.just(0))).items()
                          if k not in ("ticker", "window_start")})
        rows.append(again)
    order = draw(st.permutations(range(len(rows))))
    return day, [rows[i] for i in order]


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _write(folder: Path, rows, columns=FLAT_COLUMNS, gz=True, day="x") -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_text(r[c]) for c in columns])
    path = folder / (f"{day}.csv.gz" if gz else f"{day}.csv")
    data = buf.getvalue().encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def oracle(rows) -> pd.DataFrame:
    """Plain pandas: last row of each (ticker, minute) in file order, sorted by both."""
    frame = pd.DataFrame(rows, columns=FLAT_COLUMNS)
    frame = frame.drop_duplicates(["ticker", "window_start"], keep="last")
    return frame.sort_values(["ticker", "window_start"], kind="stable").reset_index(drop=True)


def assert_same(got, expected: pd.DataFrame):
    assert list(got.ticker) == list(expected["ticker"])
    np.testing.assert_array_equal(got.window_start, expected["window_start"].to_numpy("int64"))
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, col), expected[col].to_numpy("float64"),
                                      err_msg=col)


@SETTINGS
@given(day_files(), st.booleans())
def test_valid_files_read_as_the_oracle_computes(case, gz):
    day, rows = case
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), rows, gz=gz, day=day)
        for bad_rows in ("raise", "skip"):
            got = read_day_file(path, day, "minute", bad_rows)
            expected = oracle(rows)
            assert_same(got, expected)
            assert got.skipped == [] and "bad_rows" not in got.counts
            assert got.counts["rows"] == len(rows)
            dropped = (got.counts.get("duplicate_rows", 0)
                       + got.counts.get("conflicting_duplicates", 0))
            assert dropped == len(rows) - len(expected)


# (column, replacement): every one makes its row bad
def _ws_corruptions(day):
    start, end = _bounds(day)
    return [("window_start", v) for v in
            ("abc", "", "1.5e30", "inf", "nan", str(start - MIN), str(end), str(end + 5 * MIN))]


CORRUPTIONS = (
    [(c, v) for c in ("open", "high", "low", "close", "volume")
     for v in ("abc", "", "nan", "NaN", "inf", "-inf", "1e400", "-1", "1,5")]
    + [(c, v) for c in ("open", "high", "low", "close") for v in ("0", "-0.01", "5000000", "1e12")]
    + [("ticker", v) for v in ("", "../x", "A/B", "A B", ".AB", "-AB", "A" * 21, "AB$", "ÄB",
                               "A,B", 'A"B')]
)


@st.composite
def corrupted_files(draw):
    day, rows = draw(day_files(max_rows=15))
    k = draw(st.integers(0, len(rows) - 1))
    col, value = draw(st.sampled_from(CORRUPTIONS + _ws_corruptions(day)
                                      + [("window_start", "off-minute")]))
    bad = dict(rows[k])
    if value == "off-minute":
        value = str(bad["window_start"] + 30_000_000_000)
    bad[col] = value
    return day, rows, k, bad


@SETTINGS
@given(corrupted_files())
def test_one_corrupted_field_is_named_or_dropped_exactly(case):
    day, rows, k, bad = case
    written = rows[:k] + [bad] + rows[k + 1:]
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), written, day=day)
        with pytest.raises(FlatFileError) as err:
            read_day_file(path, day, "minute", "raise")
        msg = str(err.value)
        assert msg.startswith(f"{path}: line {k + 2}, ticker {bad['ticker']!r}: "), msg
        assert "bad_rows=skip" in msg
        got = read_day_file(path, day, "minute", "skip")
        assert_same(got, oracle(rows[:k] + rows[k + 1:]))
        assert got.counts["bad_rows"] == 1
        (skipped,) = got.skipped
        assert skipped.startswith(f"{path}: line {k + 2}, ticker {bad['ticker']!r}: ")


@SETTINGS
@given(day_files(max_rows=10), st.sampled_from(FLAT_COLUMNS), st.sampled_from(["raise", "skip"]))
def test_a_missing_column_always_raises_naming_file_and_column(case, column, bad_rows):
    day, rows = case
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), rows, columns=[c for c in FLAT_COLUMNS if c != column],
                      day=day)
        with pytest.raises(FlatFileError) as err:
            read_day_file(path, day, "minute", bad_rows)
        assert str(path) in str(err.value) and f"missing column(s) [{column!r}]" in str(err.value)

"""Property tests of the whole ingest: random valid day files read back (through zipline's
minute reader) as exactly the regular-session bars a plain-pandas oracle computes; a random
single-field corruption either stores the exact good data or fails naming file, ticker and
line, and the previous ingestion stays the one zipline loads."""
from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bundles import layout
from bundles.flatfiles import FlatFileError
from bundles.ingestions import ingestions
from bundles.polygon import PolygonBundleConfig, build_bundle

ET = "America/New_York"
DAYS = ["2024-07-03", "2024-07-05"]  # an early close (13:00) and a full day
EARLY = {"2024-07-03"}
HEADER = ["ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"]
# bar starts (ET) around every edge, plus any minute of the day
EDGES = ["00:00", "03:59", "04:00", "09:29", "09:30", "09:31", "12:58", "12:59", "13:00",
         "15:59", "16:00", "16:01", "19:59", "23:59"]
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

tickers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,4}", fullmatch=True)
ticks = st.integers(1, 1_000_000_000)  # price in $0.0001 steps: $0.0001 .. $100,000
minutes = st.one_of(st.sampled_from(EDGES), st.integers(0, 1439).map(
    lambda m: f"{m // 60:02d}:{m % 60:02d}"))


@st.composite
def bar(draw, ticker):
    day, hm = draw(st.sampled_from(DAYS)), draw(minutes)
    base = draw(ticks)
    a, b = sorted([base, min(base + draw(st.integers(0, base // 50 + 3)), 1_000_000_000)])
    o, c = draw(st.integers(a, b)), draw(st.integers(a, b))
    return {"ticker": ticker, "volume": draw(st.integers(1, 2_000_000)), "open": o / 1e4,
            "close": c / 1e4, "high": b / 1e4, "low": a / 1e4,
            "window_start": pd.Timestamp(f"{day} {hm}", tz=ET).value, "transactions": 1}


@st.composite
def day_rows(draw):
    """Rows of the day files (file order): random tickers, gaps, exact and conflicting
    duplicates, unsorted, extended hours."""
    names = draw(st.lists(tickers, min_size=1, max_size=4, unique_by=str.upper))
    rows = [draw(bar(t)) for t in names for _ in range(draw(st.integers(1, 6)))]
    for day in DAYS:  # one regular bar a day at least (a bundle without any is refused)
        rows.append(dict(draw(bar(names[0])), window_start=pd.Timestamp(f"{day} 10:00",
                                                                         tz=ET).value))
    for i in draw(st.lists(st.integers(0, len(rows) - 1), max_size=3)):
        dup = dict(rows[i])
        if draw(st.booleans()):  # conflicting duplicate: another valid bar, same minute
            other = draw(bar(dup["ticker"]))
            dup.update({k: other[k] for k in ("open", "high", "low", "close", "volume")})
        rows.append(dup)
    return draw(st.permutations(rows))


def _write(root: Path, rows: list[dict]) -> dict:
    """One gzip CSV per ET date, rows in the given order; {day: (path, [rows])}."""
    out = {}
    for r in rows:
        day = pd.Timestamp(r["window_start"], tz="UTC").tz_convert(ET).strftime("%Y-%m-%d")
        out.setdefault(day, (layout.day_file_path(root, layout.MINUTE_DATASET, day), []))[1].append(r)
    for path, day_list in out.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [",".join(HEADER)] + [",".join(str(r[k]) for k in HEADER) for r in day_list]
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return out


def oracle(rows: list[dict]) -> pd.DataFrame:
    """Plain pandas: last row per (ticker, minute) in file order; bars starting 09:30 to
    15:59 ET (12:59 on early closes), labelled at their END (start + 1 minute)."""
    f = pd.DataFrame(rows).drop_duplicates(["ticker", "window_start"], keep="last")
    start = pd.to_datetime(f["window_start"], utc=True).dt.tz_convert(ET)
    clock = start.dt.hour * 60 + start.dt.minute
    last = np.where(start.dt.strftime("%Y-%m-%d").isin(EARLY), 12 * 60 + 59, 15 * 60 + 59)
    f = f[(clock >= 9 * 60 + 30) & (clock <= last)].copy()
    f["dt"] = pd.to_datetime(f["window_start"], utc=True) + pd.Timedelta(minutes=1)
    # whole shares: the rounded (half up) running total of the ticker's session, differenced
    f = f.sort_values(["ticker", "window_start"])
    key = [f["ticker"], f["dt"].dt.tz_convert(ET).dt.date]
    total = np.floor(f.groupby(key)["volume"].cumsum().round(9) + 0.5)
    f["volume"] = total - total.groupby(key).shift(fill_value=0)
    return f


def _ratio(max_price: float) -> int:
    """Minute prices are stored x 10**k in uint32: the largest k <= 6 that fits."""
    return next(10**k for k in range(6, -1, -1) if max_price * 10**k <= 2**32 - 2)


def assert_reads_back(data, expected: pd.DataFrame):
    """Every regular-session minute of every sid equals the oracle (NaN / 0 where none)."""
    from zipline.utils.calendar_utils import get_calendar

    cal = get_calendar("XNYS")
    mins = cal.sessions_minutes(pd.Timestamp(DAYS[0]), pd.Timestamp(DAYS[-1]))
    assets = data.asset_finder.retrieve_all(data.asset_finder.sids)
    sid_of = {a.symbol: a.sid for a in assets}
    assert set(sid_of) == set(expected["ticker"].str.upper()) | (set(sid_of) - set(
        expected["ticker"].str.upper()))  # daily-only names (no regular bar) may exist too
    fields = ["open", "high", "low", "close", "volume"]
    for ticker, bars in expected.groupby("ticker"):
        sid = sid_of[ticker.upper()]
        got = data.equity_minute_bar_reader.load_raw_arrays(fields, mins[0], mins[-1], [sid])
        want = {k: np.full(len(mins), np.nan if k != "volume" else 0.0) for k in fields}
        pos = mins.get_indexer(pd.DatetimeIndex(bars["dt"]))
        assert (pos >= 0).all()
        ratio = _ratio(bars["high"].max())
        for k in fields:
            v = bars[k].to_numpy(float)
            want[k][pos] = v if k == "volume" else np.round(v * ratio) / ratio
            np.testing.assert_allclose(got[fields.index(k)][:, 0], want[k], rtol=1e-12,
                                       err_msg=f"{ticker} {k}")
    with_bars = {t.upper() for t in expected["ticker"]}
    for symbol, sid in sid_of.items():  # names without regular bars: no minute trades
        if symbol not in with_bars:
            vol = data.equity_minute_bar_reader.load_raw_arrays(["volume"], mins[0], mins[-1], [sid])
            assert not vol[0].any()


@PROPERTY
@given(rows=day_rows())
def test_random_valid_day_files_read_back_as_the_regular_session(rows):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        _write(root, rows)
        data = build_bundle("prop-valid", PolygonBundleConfig(root=root), Path(tmp) / "z")
        assert_reads_back(data, oracle(rows))


# -- corruptions ------------------------------------------------------------------------------

BASE = [{"ticker": t, "volume": 100 + i, "open": p, "close": p, "high": p * 1.01, "low": p * 0.99,
         "window_start": pd.Timestamp(f"{d} {hm}", tz=ET).value, "transactions": 1}
        for t, p in (("AAA", 20.0), ("B.X", 0.5)) for d in DAYS
        for i, hm in enumerate(["09:30", "09:31", "10:00", "12:59", "15:59"])]
FIELDS = ["ticker", "volume", "open", "close", "high", "low", "window_start"]
BAD_VALUES = ["abc", "", "nan", "-1", "0", "inf", "1e400", "5e6", "1e-9", "1_000", " 7",
              "../x", "A/B", "7", "12.5", "ZZZ"]


def _corrupt(value, field, row):
    """The corrupted field's text: a bad value, or a time off the minute / off the date."""
    if field == "window_start" and value == "7":
        return str(row["window_start"] + 30_000_000_000)  # not a whole minute
    if field == "window_start" and value == "12.5":
        return str(row["window_start"] + 60_000_000_000)  # valid: one minute later
    if field == "window_start" and value == "ZZZ":
        return str(row["window_start"] - 86_400_000_000_000)  # another date
    return value


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A good ingestion of BASE that every corruption must leave in use."""
    tmp = tmp_path_factory.mktemp("prop_corrupt")
    root, zroot = tmp / "raw", tmp / "z"
    _write(root, BASE)
    build_bundle("prop-corrupt", PolygonBundleConfig(root=root), zroot)
    return root, zroot


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(i=st.integers(0, len(BASE) - 1), field=st.sampled_from(FIELDS),
       value=st.sampled_from(BAD_VALUES))
def test_single_field_corruption_stores_good_data_or_names_file_ticker_line(previous, i, field,
                                                                             value):
    from zipline.data import bundles as zb

    root, zroot = previous
    env = dict(os.environ, ZIPLINE_ROOT=str(zroot))
    good = [r["name"] for r in ingestions("prop-corrupt", env)]
    rows = [dict(r) for r in BASE]
    rows[i][field] = _corrupt(value, field, rows[i])
    day = pd.Timestamp(BASE[i]["window_start"], tz="UTC").tz_convert(ET).strftime("%Y-%m-%d")
    path = layout.day_file_path(root, layout.MINUTE_DATASET, day)
    same_day = [r for r, b in zip(rows, BASE) if pd.Timestamp(b["window_start"], tz="UTC")
                .tz_convert(ET).strftime("%Y-%m-%d") == day]
    line = next(n for n, r in enumerate(same_day) if r is rows[i]) + 2
    lines = [",".join(HEADER)] + [",".join(str(r[k]) for k in HEADER) for r in same_day]
    original = path.read_bytes()
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    try:
        try:
            data = build_bundle("prop-corrupt", PolygonBundleConfig(root=root), zroot)
        except FlatFileError as exc:
            event("rejected")
            msg = str(exc)
            assert str(path) in msg and f"line {line}," in msg, msg
            assert f"ticker {str(rows[i]['ticker'])!r}" in msg, msg
            assert [r["name"] for r in ingestions("prop-corrupt", env)] == good
            assert all(r["ok"] for r in ingestions("prop-corrupt", env))
            loaded = zb.load("prop-corrupt", environ=env)
            assert loaded.asset_finder.sids  # the newest good ingestion is what zipline loads
            return
        event("accepted")
        # accepted: the value was valid, so the new ingestion holds exactly the new data
        typed = [dict(r, **{k: (str(r[k]) if k == "ticker" else
                                int(r[k]) if k == "window_start" else float(r[k]))
                            for k in FIELDS}) for r in rows]
        assert_reads_back(data, oracle(typed))
    finally:
        path.write_bytes(original)

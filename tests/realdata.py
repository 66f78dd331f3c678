"""Real daily prices (pystock, ../shared/data/real/pystock) as Polygon flat files, for tests.

The pystock file holds unadjusted daily OHLCV for ~7,000 US symbols (2015-03-20..2017-03-31)
plus an ``adj_close`` that differs from ``close`` only on the session(s) *before* a
corporate action: ``close - adj_close`` is the cash dividend whose ex-date is the next row,
and ``adj_close / close`` ~ 0.5 (or 1/7, 3, 15, ...) is a split effective on the next row.
:func:`derive_corporate_actions` turns those rows into Polygon ``splits.json`` /
``dividends.json`` records; :func:`write_polygon_raw` writes ``day_aggs_v1`` day files
(``window_start`` = the session's midnight America/New_York, in ns UTC, as Polygon does)
plus the reference files, ready for ``build_bundle(..., daily_source="day")``.

What pystock does not have is made up, and said so: Polygon types are ``CS`` except for
the ETFs in :data:`KNOWN_ETFS`; primary exchanges come from :data:`KNOWN_EXCHANGES` (None
for the rest); share counts are synthetic, only to exercise the plumbing: the undated
snapshot ``ticker_details.json`` (:func:`synthetic_share_counts`, dated by the file's
modification time) and dated samples ``ticker_details/<TICKER>/<date>.json``
(:func:`synthetic_dated_details`), both made up.

Usage::

    frame = load_pystock(symbols=SLICE_SYMBOLS, end="2016-06-30")   # skips when absent
    summary = write_polygon_raw(frame, tmp_path / "raw")
    bundle = build_bundle("x", PolygonBundleConfig(root=tmp_path / "raw", daily_source="day",
                          minute_tickers="none"), tmp_path / "zipline")
"""
from __future__ import annotations

import functools
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from bundles import layout

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PYSTOCK_FILE = SHARED_DATA / "real" / "pystock" / "prices_2015-03-20_2017-03-31.csv.gz"
ET = "America/New_York"

#: ETFs present in pystock (everything else is written as Polygon type ``CS``).
KNOWN_ETFS = frozenset({"SPY", "QQQ", "TLT", "IWM", "DIA", "GLD", "EEM", "XLF", "VTI"})

#: Primary exchanges of well-known names (None for the rest of the pystock symbols).
KNOWN_EXCHANGES = {
    "AAPL": "XNAS", "MSFT": "XNAS", "INTC": "XNAS", "NFLX": "XNAS", "QQQ": "XNAS",
    "TLT": "XNAS", "CTRP": "XNAS", "FCEL": "XNAS", "DRYS": "XNAS", "SIRI": "XNAS",
    "ZNGA": "XNAS", "XOM": "XNYS", "JPM": "XNYS", "KO": "XNYS", "PFE": "XNYS", "GE": "XNYS",
    "BAC": "XNYS", "T": "XNYS", "NKE": "XNYS", "EW": "XNYS", "GPN": "XNYS", "HRL": "XNYS",
    "BTU": "XNYS", "CHK": "XNYS", "FRO": "XNYS",
}

#: A 40-symbol slice of 2015-03..2016-06 covering what the factor tests need.
SLICE_SYMBOLS = (
    # liquid dividend payers
    "AAPL", "MSFT", "XOM", "JPM", "KO", "PFE", "INTC", "GE", "BAC", "T",
    # forward splits inside the window (NFLX 7:1 2015-07-15, NKE 2:1 2015-12-24, ...)
    "NKE", "NFLX", "BOFI", "EW", "GPN", "HRL", "CTRP",
    # ETFs (type ETF)
    "QQQ", "TLT",
    # sub-$1 names with reverse splits (AEZS 1:100, CPST 1:20, DRYS 1:25, FCEL 1:12, ...)
    "AEZS", "CPST", "DRYS", "FCEL", "ELON", "INVT", "HH", "NBY",
    # delisted before the end of the window
    "ACI", "ADAT", "BTU", "DSCO", "BSI", "FREE",
    # listed during the window
    "CAA", "EIGR", "FCPT",
    # small caps / penny band
    "CHK", "SIRI", "ZNGA", "FRO",
)
SLICE_START = "2015-03-20"
SLICE_END = "2016-06-30"


def pystock_available() -> bool:
    return PYSTOCK_FILE.exists()


def skip_reason() -> str:
    return (f"real market data not available at {PYSTOCK_FILE} "
            "(../shared/data is not checked out)")


@functools.lru_cache(maxsize=1)
def _read_table(path: str):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={
        "symbol": pa.string(), "date": pa.timestamp("ns"), "open": pa.float64(),
        "high": pa.float64(), "low": pa.float64(), "close": pa.float64(),
        "volume": pa.float64(), "adj_close": pa.float64()}))


def load_pystock(symbols=None, start=None, end=None, path=None) -> pd.DataFrame:
    """pystock rows (symbol, date, open, high, low, close, volume, adj_close), cleaned.

    Skips the calling test (pytest.skip) when the file is absent. Cleaning (see
    :func:`clean`) drops rows on non-sessions and rows Polygon's validator would reject.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path) if path is not None else PYSTOCK_FILE
    if not path.exists():
        import pytest

        pytest.skip(skip_reason())
    table = _read_table(str(path))
    keep = None

    def both(a, b):
        return b if a is None else pc.and_(a, b)

    if symbols is not None:
        keep = both(keep, pc.is_in(table["symbol"], value_set=pa.array(list(symbols))))
    if start is not None:
        keep = both(keep, pc.greater_equal(table["date"], pa.scalar(pd.Timestamp(start), pa.timestamp("ns"))))
    if end is not None:
        keep = both(keep, pc.less_equal(table["date"], pa.scalar(pd.Timestamp(end), pa.timestamp("ns"))))
    if keep is not None:
        table = table.filter(keep)
    frame = table.to_pandas()
    frame = frame.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    return clean(frame)


def clean(frame: pd.DataFrame, calendar="XNYS") -> pd.DataFrame:
    """Drop rows dated on non-sessions (pystock has a few holiday rows), rows with a zero or
    negative price and rows whose open/close lie outside [low, high]."""
    from zipline.utils.calendar_utils import get_calendar

    if frame.empty:
        return frame.copy()
    cal = get_calendar(calendar)
    sessions = cal.sessions_in_range(frame["date"].min(), frame["date"].max())
    ok = frame["date"].isin(sessions)
    o, h, l, c = (frame[k] for k in ("open", "high", "low", "close"))
    ok &= (o > 0) & (h > 0) & (l > 0) & (c > 0) & (h >= l)
    ok &= (o <= h) & (o >= l) & (c <= h) & (c >= l)
    return frame[ok].reset_index(drop=True)


# ----------------------------------------------------------------------------- actions
def derive_corporate_actions(frame: pd.DataFrame, max_denominator=10, tolerance=1e-3):
    """Splits and cash dividends implied by pystock's ``adj_close``.

    For a row where ``adj_close != close`` the action takes effect on the symbol's next row:
    ``r = adj_close / close`` close to a simple fraction p/q (q <= ``max_denominator``,
    relative error < ``tolerance``) with ``|r - 1| > 0.2`` is a split (Polygon
    ``split_from = p``, ``split_to = q``: 2-for-1 is 1/2, a 1-for-15 reverse split 15/1);
    any other ``r < 1`` is a cash dividend of ``close - adj_close``; any other ``r > 1`` a
    split ``split_from = r, split_to = 1``. Consecutive flagged rows describing the same
    action (pystock flags two days for NFLX's 7:1) collapse onto the last one.

    Returns
    -------
    splits : DataFrame[ticker, execution_date, split_from, split_to]
    dividends : DataFrame[ticker, ex_dividend_date, cash_amount]
    """
    f = frame.sort_values(["symbol", "date"]).reset_index(drop=True)
    next_date = f.groupby("symbol")["date"].shift(-1)
    ratio = f["adj_close"] / f["close"]
    flagged = (ratio - 1).abs() > 1e-9
    rows = []
    for i in np.flatnonzero(flagged.to_numpy()):
        if pd.isna(next_date.iloc[i]):
            continue  # last row: the action falls after the data
        r = float(ratio.iloc[i])
        frac = Fraction(r).limit_denominator(max_denominator)
        if abs(r - 1) > 0.2 and abs(float(frac) / r - 1) < tolerance:
            kind, a, b = "split", float(frac.numerator), float(frac.denominator)
        elif r < 1:
            kind, a, b = "dividend", round(float(f["close"].iloc[i] - f["adj_close"].iloc[i]), 4), None
        else:
            kind, a, b = "split", round(r, 6), 1.0
        rows.append((i, f["symbol"].iloc[i], next_date.iloc[i], kind, a, b))
    actions = pd.DataFrame(rows, columns=["row", "ticker", "date", "kind", "a", "b"])
    if len(actions):
        same_as_next = ((actions["row"].shift(-1) == actions["row"] + 1)
                        & (actions["ticker"].shift(-1) == actions["ticker"])
                        & (actions["kind"].shift(-1) == actions["kind"])
                        & np.isclose(actions["a"].shift(-1), actions["a"], rtol=1e-3))
        actions = actions[~same_as_next]
    splits = actions[actions["kind"] == "split"]
    splits = pd.DataFrame({"ticker": splits["ticker"], "execution_date": splits["date"],
                           "split_from": splits["a"], "split_to": splits["b"]})
    divs = actions[(actions["kind"] == "dividend") & (actions["a"] > 0)]
    divs = pd.DataFrame({"ticker": divs["ticker"], "ex_dividend_date": divs["date"],
                         "cash_amount": divs["a"]})
    return splits.reset_index(drop=True), divs.reset_index(drop=True)


def synthetic_share_counts(symbols):
    """Made-up share counts (pystock has none) cycling through every size class and its
    bounds, with a gap (no details) and a weighted-only entry; deterministic by sort order."""
    cycle = [5e6, 10e6, 24.9e6, 25e6, 60e6, 100e6, 2.5e9, None, "weighted:40e6"]
    out = {}
    for i, sym in enumerate(sorted(symbols)):
        out[sym] = cycle[i % len(cycle)]
    return out


#: Dates of the synthetic dated ticker details: month/quarter ends (as ``gapline download``
#: samples them) before the slice and inside it, plus a Sunday. With the default 90-day
#: share-count lag they become known on 2015-03-31, 2015-09-28 (inside the factor tests' run
#: from 2015-09-01), 2016-01-30 (a Saturday), 2016-03-30 and 2016-06-29 (seen on the slice's
#: last session only).
DETAIL_DATES = ("2014-12-31", "2015-06-30", "2015-11-01", "2015-12-31", "2016-03-31")
_DETAIL_FACTORS = (1.0, 1.13, 1.29, 0.61, 1.47)  # count at each date / the symbol's base count
#: The day the undated snapshot ``ticker_details.json`` is said to be fetched (its mtime).
SNAPSHOT_DATE = "2016-04-15"


def synthetic_dated_details(frame: pd.DataFrame, etfs=KNOWN_ETFS) -> list:
    """Made-up dated ticker details, ``[(ticker, date, results | None)]``, deterministic by
    the symbols' sort order ``i``:

    * ``i % 4 == 0``: a sample on every :data:`DETAIL_DATES`;
    * ``i % 4 == 1``: from 2015-06-30 on, without the Sunday (no count known at the start of
      the run, a first one inside it);
    * ``i % 4 == 2``: 2014-12-31 and 2015-12-31, the second without any share count (the
      count becomes unknown again);
    * ``i % 4 == 3``: only a 2015-06-30 query that Polygon answered with nothing (404).

    A date before the first bar of a symbol listed inside the frame, or after the last bar of
    one delisted inside it, is a 404 (``results`` None). The
    count is the symbol's base count (the cycle of :func:`synthetic_share_counts` shifted by
    three, so it differs from the snapshot's) times a factor per date; a ``None`` base gives
    samples without counts, a ``"weighted:"`` base weighted-only ones. Type and exchange are
    those of :func:`write_polygon_raw`'s tickers except: CHK's 2015-06-30 sample says type
    ``ADRC`` (not common stock until its 2015-12-31 sample), and FCEL's samples say
    ``XASE`` until an extra 2016-03-15 sample says ``XNAS``.
    """
    cycle = [5e6, 10e6, 24.9e6, 25e6, 60e6, 100e6, 2.5e9, None, "weighted:40e6"]
    life = frame.groupby("symbol")["date"].agg(["min", "max"])
    # listed / delisted inside the frame: not listed before the first bar / after the last
    listed = life["min"].where(life["min"] > frame["date"].min(), pd.Timestamp.min)
    delisted = life["max"].where(life["max"] < frame["date"].max(), pd.Timestamp.max)
    out = []
    for i, sym in enumerate(sorted(life.index)):
        base = cycle[(i + 3) % len(cycle)]
        dates = list(zip(DETAIL_DATES, _DETAIL_FACTORS))
        pattern = i % 4
        if pattern == 1:
            dates = [dates[1], dates[3], dates[4]]
        elif pattern == 2:
            dates = [dates[0], (dates[3][0], None)]
        elif pattern == 3:
            dates = [(dates[1][0], "404")]
        if sym == "FCEL":
            dates.append(("2016-03-15", 1.71))
        for day, factor in sorted(dates):
            ts = pd.Timestamp(day)
            if factor == "404" or not listed[sym] <= ts <= delisted[sym]:
                out.append((sym, day, None))
                continue
            results = {"ticker": sym, "type": "ETF" if sym in etfs else "CS"}
            exchange = KNOWN_EXCHANGES.get(sym)
            if exchange is not None:
                results["primary_exchange"] = exchange
            if sym == "CHK" and day == "2015-06-30":
                results["type"] = "ADRC"
            if sym == "FCEL" and day < "2016-03-15":
                results["primary_exchange"] = "XASE"
            if factor is not None and base is not None:
                if isinstance(base, str):
                    results["weighted_shares_outstanding"] = float(base[9:]) * factor
                else:
                    results["share_class_shares_outstanding"] = base * factor
                    results["weighted_shares_outstanding"] = base * factor * 1.01
            out.append((sym, day, results))
    return out


# ----------------------------------------------------------------------------- writing
def polygon_day_frame(rows: pd.DataFrame, day) -> pd.DataFrame:
    """One session's rows in Polygon ``day_aggs_v1`` columns."""
    ws = pd.Timestamp(day).tz_localize(ET).value
    out = pd.DataFrame({
        "ticker": rows["symbol"].to_numpy(),
        "volume": rows["volume"].to_numpy(),
        "open": rows["open"].to_numpy(), "close": rows["close"].to_numpy(),
        "high": rows["high"].to_numpy(), "low": rows["low"].to_numpy(),
        "window_start": np.full(len(rows), ws, dtype=np.int64),
        "transactions": np.zeros(len(rows), dtype=np.int64),
    })
    return out.sort_values("ticker", kind="stable")


def write_polygon_raw(frame: pd.DataFrame, root, etfs=KNOWN_ETFS, shares=None,
                      overwrite=False, dated_details=None, snapshot_date=None) -> dict:
    """Write ``frame`` (cleaned pystock rows) under ``root`` as Polygon raw files.

    Day files ``raw/us_stocks_sip/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz`` for every date
    present, and ``raw/reference/{tickers,splits,dividends,ticker_details}.json``. A symbol
    whose last row is before the frame's last date is written as delisted (``active``
    false, ``delisted_utc`` the next day). ``shares``: {symbol: count | None |
    "weighted:<count>"}, default :func:`synthetic_share_counts`. ``dated_details``:
    ``[(ticker, date, results | None)]`` written as dated samples
    (``raw/reference/ticker_details/<TICKER>/<date>.json``), e.g.
    :func:`synthetic_dated_details`; ``snapshot_date``: the day the undated
    ``ticker_details.json`` was fetched (set as its modification time; default: now).

    Returns a summary dict: sessions, symbols, splits/dividends frames, tickers, shares (the
    snapshot's), dated_details and snapshot_date.
    """
    from bundles import reference_history

    root = Path(root)
    frame = frame.sort_values(["date", "symbol"])
    for day, rows in frame.groupby("date", sort=True):
        layout.write_day_file(root, layout.DAY_DATASET, day, polygon_day_frame(rows, day),
                              overwrite=overwrite)
    splits, divs = derive_corporate_actions(frame)
    last = frame.groupby("symbol")["date"].max()
    end = frame["date"].max()
    tickers = []
    for sym, last_day in last.items():
        delisted = last_day < end
        tickers.append({
            "ticker": sym, "name": f"{sym} (pystock)", "market": "stocks", "locale": "us",
            "type": "ETF" if sym in etfs else "CS",
            "primary_exchange": KNOWN_EXCHANGES.get(sym),
            "active": not delisted,
            "delisted_utc": (f"{(last_day + pd.Timedelta(days=1)).date()}T05:00:00Z"
                             if delisted else None),
            "composite_figi": None, "cik": None,
        })
    shares = synthetic_share_counts(last.index) if shares is None else shares
    details = []
    for sym, value in shares.items():
        if value is None:
            continue
        if isinstance(value, str) and value.startswith("weighted:"):
            details.append({"ticker": sym, "weighted_shares_outstanding": float(value[9:])})
        else:
            details.append({"ticker": sym, "share_class_shares_outstanding": float(value),
                            "weighted_shares_outstanding": float(value) * 1.01})

    def records(df, date_cols):
        out = df.copy()
        for c in date_cols:
            out[c] = out[c].dt.strftime("%Y-%m-%d")
        return out.to_dict("records")

    layout.write_reference(root, "tickers", tickers, overwrite=overwrite)
    layout.write_reference(root, "ticker_details", details, overwrite=overwrite)
    layout.write_reference(root, "splits", records(splits, ["execution_date"]),
                           overwrite=overwrite)
    div_records = records(divs, ["ex_dividend_date"])
    for r in div_records:
        r["dividend_type"] = "CD"
    layout.write_reference(root, "dividends", div_records, overwrite=overwrite)
    for ticker, day, results in dated_details or ():
        reference_history.write_dated_details(root, ticker, day, results,
                                              fetched_utc="2016-07-01T00:00:00+00:00",
                                              overwrite=overwrite)
    if snapshot_date is not None:
        snapshot_date = pd.Timestamp(snapshot_date).normalize()
        noon = (snapshot_date + pd.Timedelta(hours=12)).tz_localize(ET).timestamp()
        os.utime(layout.reference_dir(root) / "ticker_details.json", (noon, noon))
    return {"sessions": int(frame["date"].nunique()), "symbols": int(len(last)),
            "splits": splits, "dividends": divs, "tickers": tickers, "shares": shares,
            "dated_details": list(dated_details or ()), "snapshot_date": snapshot_date}


def build_pystock_bundle(name, frame, workdir, shares_lag_days=None, **write_kwargs):
    """Write ``frame`` as Polygon files under ``workdir/raw`` and ingest it daily-only into
    ``workdir/zipline`` (dated share counts known ``shares_lag_days`` after their sample
    date; default the bundle's, ``SHARES_KNOWN_LAG_DAYS``). Returns (BundleData,
    zipline_root, summary)."""
    from bundles.polygon import PolygonBundleConfig, build_bundle
    from bundles.reference_history import SHARES_KNOWN_LAG_DAYS

    if shares_lag_days is None:
        shares_lag_days = SHARES_KNOWN_LAG_DAYS
    workdir = Path(workdir)
    summary = write_polygon_raw(frame, workdir / "raw", **write_kwargs)
    zroot = workdir / "zipline"
    config = PolygonBundleConfig(root=workdir / "raw", daily_source="day", minute_tickers="none",
                                 shares_lag_days=shares_lag_days)
    bundle = build_bundle(name, config, zroot)
    summary["shares_lag_days"] = shares_lag_days
    return bundle, zroot, summary

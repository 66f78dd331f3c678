"""The gap screens on real prices (pystock) against an independent pandas computation.

A 40-symbol slice of 2015-03..2016-06 (splits forward and reverse, quarterly dividends,
delistings, new listings, sub-$1 names, two ETFs) is written as Polygon day files, ingested
daily-only with ``build_bundle`` and every pipeline term is recomputed here from the raw
frame: dense session panels, prices rounded to zipline's x1000 storage, and adjustments
applied by hand the way zipline applies them (prices before an effective date times the
ratio; dividend ratio ``1 - amount / close of the session before the ex-date``; split
ratios also divide volumes) -- as known on the pipeline date (an action effective on ``D``
already adjusts the bars a window for ``D`` sees, a later one does not).

Reference data is point in time: the raw cache carries made-up dated ticker details
(:func:`tests.realdata.synthetic_dated_details`) and an undated snapshot fetched inside the
run (:data:`tests.realdata.SNAPSHOT_DATE`); :func:`asof_reference` recomputes what each session
may see with ``pandas.merge_asof`` from the documented rules alone.

The full ~7,000-symbol universe runs the same comparison under ``-m slow``.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from tests import realdata

pytestmark = pytest.mark.realdata

RTOL = 1e-9
ATOL = 1e-12  # for terms that are exactly 0 in one computation and ~1e-17 in the other
RUN_START = "2015-09-01"  # >= 100 sessions after the first bar: every window is full
RUN_END = realdata.SLICE_END
SHARES_LAG_DAYS = 90  # the ingest's default, given explicitly


# ----------------------------------------------------------------------------- reference
def reference_events(summary) -> pd.DataFrame:
    """Every dated reference value the raw cache holds, by the documented rules
    (``bundles/polygon/history.py``, README "Point-in-time reference data"), from what the test
    wrote -- not from the ingested table:

    * a dated sample of day ``a``: type and exchange dated ``a``, its count (share class,
      else weighted; NaN without one) known on ``a + shares_lag_days``; a 404 has no value;
    * a split effective ``e``: the count is unknown (NaN) from ``e`` on (dated ``e - 1``), and
      a sample taken before ``e`` that would be known only on ``e - 1`` or later is dropped;
    * the undated snapshot: counts known from its fetch day on (no lag), no type/exchange;
    * on equal dates: snapshot, then dated, then split (the last one wins).
    """
    lag = pd.Timedelta(days=summary["shares_lag_days"])
    splits = summary["splits"]
    rows = []
    for sym, day, res in summary["dated_details"]:
        if res is None:
            continue
        day = pd.Timestamp(day)
        shares = res.get("share_class_shares_outstanding",
                         res.get("weighted_shares_outstanding", np.nan))
        effective = splits.loc[splits["ticker"] == sym, "execution_date"]
        if ((day < effective) & (day + lag >= effective - pd.Timedelta(days=1))).any():
            continue  # pre-split shares that would be known only after the split
        rows.append((sym, day, day + lag, 1, float(shares), res.get("type"),
                     res.get("primary_exchange")))
    for r in splits.itertuples():
        before = r.execution_date - pd.Timedelta(days=1)
        rows.append((r.ticker, before, before, 2, np.nan, None, None))
    snap = summary["snapshot_date"]
    for sym, v in summary["shares"].items():
        if v is None:
            continue  # no record in ticker_details.json
        v = float(v.split(":")[1]) if isinstance(v, str) else float(v)
        rows.append((sym, snap, snap, 0, v, None, None))
    return pd.DataFrame(rows, columns=["symbol", "asof_date", "known_date", "order", "shares",
                                       "type", "exchange"])


def asof_reference(events, value, sessions, symbols, fallback=None) -> pd.DataFrame:
    """(session x symbol) panel: per symbol, the ``value`` of the latest event dated strictly
    before the session (shares by ``known_date``, a NaN count included; type and exchange by
    ``asof_date``, events without one skipped, else ``fallback`` -- today's reference value)."""
    shares = value == "shares"
    key = "known_date" if shares else "asof_date"
    ev = events if shares else events[events[value].notna()]
    ev = ev.sort_values([key, "order"], kind="stable")[["symbol", key, value]]
    q = pd.DataFrame({"session": np.repeat(sessions.to_numpy(), len(symbols)),
                      "symbol": np.tile(np.asarray(symbols, dtype=object), len(sessions))})
    got = pd.merge_asof(q, ev.rename(columns={key: "key"}), left_on="session", right_on="key",
                        by="symbol", allow_exact_matches=False, direction="backward")
    panel = got.pivot(index="session", columns="symbol", values=value).reindex(
        index=sessions, columns=symbols)
    if fallback is not None:
        panel = panel.where(panel.notna(), pd.Series(fallback).reindex(symbols), axis=1)
    return panel


class Reference:
    """Dense (session x symbol) panels of the raw frame and hand-made adjustment factors.

    ``fp[t]`` = product of the price ratios of every action effective after session ``t``,
    ``fv`` the same for volumes (splits only, inverted). A bar ``t`` seen on pipeline date
    ``D`` (``t < D``) is ``raw_t * f[t] / f[D]``: adjusted by the actions effective in
    ``(t, D]``.
    """

    def __init__(self, frame, splits, dividends, sessions, types, snapshot_shares, events,
                 exchanges):
        self.sessions = sessions
        self.symbols = sorted(frame["symbol"].unique())
        cols = pd.Index(self.symbols)

        def panel(col):
            return frame.pivot(index="date", columns="symbol", values=col).reindex(
                index=sessions, columns=cols)

        # zipline stores prices as round(x * 1000) and reads back uint32 * 0.001, a stored 0
        # (a price below $0.0005) as NaN
        self.raw = {c: (np.round(panel(c) * 1000) * 0.001).replace(0.0, np.nan)
                    for c in ("open", "high", "low", "close")}
        self.raw["volume"] = panel("volume").fillna(0.0)
        first = frame.groupby("symbol")["date"].min().reindex(cols)
        last = frame.groupby("symbol")["date"].max().reindex(cols)
        s = sessions.to_numpy()[:, None]
        # zipline's Pipeline mask: start_date < D <= end_date
        self.alive = pd.DataFrame((s > first.to_numpy()[None, :]) & (s <= last.to_numpy()[None, :]),
                                  index=sessions, columns=cols)
        self.types = pd.Series(types).reindex(cols)  # today's (the reference tickers')
        self.snapshot_shares = pd.Series(snapshot_shares, dtype="float64").reindex(cols)
        self.events = events
        # as known before each session
        self.shares = asof_reference(events, "shares", sessions, cols).astype(float)
        self.type_asof = asof_reference(events, "type", sessions, cols, self.types)
        self.exchange_asof = asof_reference(events, "exchange", sessions, cols,
                                            pd.Series(exchanges).reindex(cols).fillna(""))

        step_p = pd.DataFrame(1.0, index=sessions, columns=cols)
        step_v = step_p.copy()
        self.applied = []
        for r in splits.itertuples():
            ratio = r.split_from / r.split_to
            step_p.loc[r.execution_date, r.ticker] *= ratio
            step_v.loc[r.execution_date, r.ticker] /= ratio
            self.applied.append(("split", r.ticker, r.execution_date, ratio))
        prev_close = self.raw["close"].shift(1)
        for r in dividends.itertuples():
            pc = prev_close.loc[r.ex_dividend_date, r.ticker]
            ratio = 1.0 - r.cash_amount / pc
            if not np.isfinite(ratio) or ratio <= 0:
                continue  # zipline drops these too (with a warning)
            step_p.loc[r.ex_dividend_date, r.ticker] *= ratio
            self.applied.append(("dividend", r.ticker, r.ex_dividend_date, ratio))
        # f[t] = prod of steps at sessions > t
        self.fp = self._after(step_p)
        self.fv = self._after(step_v)

    @staticmethod
    def _after(step):
        rev = step.iloc[::-1].cumprod().iloc[::-1]  # prod of steps at sessions >= t
        return (rev / step).where(step != 0)

    # adjusted-to-the-end panels (divide by f[D] to see them as on pipeline date D)
    def adj(self, col):
        f = self.fv if col == "volume" else self.fp
        return self.raw[col] * f

    @staticmethod
    def windows(panel, n):
        """Shifted copies: [value at D-1, D-2, ..., D-n] aligned on pipeline date D."""
        return [panel.shift(k) for k in range(1, n + 1)]

    def latest(self, col):
        f = self.fv if col == "volume" else self.fp
        return self.adj(col).shift(1) / f

    def sma(self, col, n):
        wins = self.windows(self.adj(col), n)
        total = sum(w.fillna(0.0) for w in wins)
        count = sum(w.notna().astype(float) for w in wins)
        f = self.fv if col == "volume" else self.fp
        return (total / count).where(count > 0) / f

    def ewm_std_prices(self, n, decay):
        """zipline's EWMSTD formula: weighted mean/variance, bias-corrected; NaN if any NaN."""
        wins = self.windows(self.adj("close"), n)
        w = decay ** np.arange(n)  # newest first; zipline's absolute scale cancels out
        mean = sum(wk * x for wk, x in zip(w, wins)) / w.sum()
        var = sum(wk * (x - mean) ** 2 for wk, x in zip(w, wins)) / w.sum()
        bias = w.sum() ** 2 / (w.sum() ** 2 - (w ** 2).sum())
        return np.sqrt(var * bias) / self.fp

    def ema(self, n, decay):
        wins = self.windows(self.adj("close"), n)
        w = decay ** np.arange(n)
        num = sum(wk * x.fillna(0.0) for wk, x in zip(w, wins))
        den = sum(wk * x.notna() for wk, x in zip(w, wins))
        return (num / den).where(den > 0) / self.fp

    def returns_std(self, n, min_returns=2):
        a = self.adj("close")
        rets = a / a.shift(1) - 1.0
        wins = self.windows(rets, n - 1)
        count = sum(x.notna().astype(float) for x in wins)
        mean = sum(x.fillna(0.0) for x in wins) / count
        var = sum(((x - mean) ** 2).fillna(0.0) for x in wins) / count
        return np.sqrt(var).where(count >= min_returns)

    def adv(self, n):
        dv = self.adj("close") * self.adj("volume")
        total = sum(w.fillna(0.0) for w in self.windows(dv, n))
        return total / n / (self.fp * self.fv)

    def avg_range(self, n):
        # "Gap % and Float": (high - low) / low, the divisor is the session's low
        low = self.raw["low"]
        r = ((self.raw["high"] - low) / low).where(low > 0)
        wins = self.windows(r, n)
        count = sum(w.notna().astype(float) for w in wins)
        return (sum(w.fillna(0.0) for w in wins) / count).where(count > 0)

    def relative_volume(self, n):
        v = self.adj("volume")
        mean = sum(self.windows(v, n)) / n
        return (v.shift(1) / mean).where(mean > 0)

    def common(self):
        return self.type_asof == "CS"

    def percentile_band(self, values, mask, lo, hi):
        """zipline's percentile_between: inclusive band of nanpercentile over the mask."""
        data = values.where(mask)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lower = np.nanpercentile(data.to_numpy(), lo, axis=1, keepdims=True)
            upper = np.nanpercentile(data.to_numpy(), hi, axis=1, keepdims=True)
        inside = (data.to_numpy() >= lower) & (data.to_numpy() <= upper)
        # a value within rounding of an interpolated bound could fall either way; the
        # bounds at 0 and 100 are the min and max themselves, never ambiguous
        near = np.zeros(data.shape, dtype=bool)
        for pct, bound in ((lo, lower), (hi, upper)):
            if 0 < pct < 100:
                near |= np.abs(data.to_numpy() - bound) <= RTOL * np.abs(bound)
        return (pd.DataFrame(inside, index=values.index, columns=values.columns),
                pd.DataFrame(near, index=values.index, columns=values.columns))


def stack(panel, sids, dates):
    """(session x symbol) panel -> Series on the pipeline's (date, Equity) index."""
    s = panel.loc[dates].rename(columns=sids).stack(future_stack=True)
    s.index = s.index.set_names(["date", "sid"])
    return s


def compare(name, got, expected, rtol=RTOL, atol=ATOL):
    """got/expected aligned Series; NaN must match NaN."""
    got = got.astype(float)
    expected = expected.reindex(got.index).astype(float)
    both_nan = got.isna() & expected.isna()
    ok = both_nan | np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=False)
    bad = ~ok
    assert not bad.any(), (
        f"{name}: {int(bad.sum())} of {len(got)} values differ, e.g.\n"
        f"{pd.DataFrame({'pipeline': got[bad], 'pandas': expected[bad]}).head(10)}")


def by_sid(out):
    """Pipeline output re-indexed by (date, sid int)."""
    out = out.copy()
    out.index = pd.MultiIndex.from_arrays(
        [out.index.get_level_values(0), [a.sid for a in out.index.get_level_values(1)]],
        names=["date", "sid"])
    return out


def check_screen(name, out, expected_screen, ambiguous):
    """Rows of the output == rows where the reference screen holds (ties exempt)."""
    got = set(by_sid(out).index)
    exp = expected_screen.stack()
    exp = exp[exp]
    amb = ambiguous.stack()
    amb = set(amb[amb].index)
    expected = set(exp.index)
    missing = (expected - got) - amb
    extra = (got - expected) - amb
    assert not missing and not extra, (
        f"{name} screen: {len(missing)} row(s) missing, e.g. {sorted(missing)[:5]}; "
        f"{len(extra)} unexpected, e.g. {sorted(extra)[:5]}")
    return len(expected), len(amb)


# ----------------------------------------------------------------------------- fixtures
class Built:
    """A pystock frame ingested as a bundle, with its reference computation."""

    def __init__(self, name, frame, workdir):
        self.name = name
        self.frame = frame
        self.bundle, self.zroot, self.summary = realdata.build_pystock_bundle(
            name, frame, workdir, shares_lag_days=SHARES_LAG_DAYS,
            dated_details=realdata.synthetic_dated_details(frame),
            snapshot_date=realdata.SNAPSHOT_DATE)
        self.environ = dict(os.environ, ZIPLINE_ROOT=str(self.zroot))
        from bundles.ingestions import ingestion_dir

        side = pd.read_parquet(ingestion_dir(name, environ=self.environ) / "gapline" / "assets.parquet")
        assert side["ticker"].is_unique  # no reused tickers in pystock
        self.sids = dict(zip(side["ticker"], side["sid"].astype(int)))
        sessions = self.bundle.equity_daily_bar_reader.sessions
        types = {t["ticker"]: t["type"] for t in self.summary["tickers"]}
        exchanges = {t["ticker"]: t["primary_exchange"] for t in self.summary["tickers"]}
        shares = {}
        for sym, v in self.summary["shares"].items():
            if isinstance(v, str):
                v = float(v.split(":")[1])
            shares[sym] = np.nan if v is None else v
        self.ref = Reference(frame, self.summary["splits"], self.summary["dividends"], sessions,
                             types, shares, reference_events(self.summary), exchanges)

    def run(self, pipeline, start=RUN_START, end=RUN_END):
        from factors.loaders import run_pipeline

        return run_pipeline(pipeline, start, end, bundle=self.name, environ=self.environ)

    def dates(self, out):
        return out.index.get_level_values(0).unique()


@pytest.fixture(scope="session")
def pystock_slice():
    return realdata.load_pystock(symbols=realdata.SLICE_SYMBOLS, start=realdata.SLICE_START,
                                 end=realdata.SLICE_END)


@pytest.fixture(scope="session")
def built(pystock_slice, tmp_path_factory):
    return Built("gapline-factors-slice", pystock_slice, tmp_path_factory.mktemp("factors_slice"))


# ----------------------------------------------------------------------------- checks
def test_slice_covers_the_cases(built):
    """The slice really holds what the comparisons are meant to exercise."""
    ref = built.ref
    kinds = pd.DataFrame(ref.applied, columns=["kind", "ticker", "date", "ratio"])
    run = kinds[(kinds.date > pd.Timestamp(RUN_START) - pd.Timedelta(days=150))]
    assert (run[run.kind == "split"].ratio < 1).sum() >= 5      # forward splits
    assert (run[run.kind == "split"].ratio > 1).sum() >= 5      # reverse splits
    assert (run.kind == "dividend").sum() >= 30
    last = built.frame.groupby("symbol").date.max()
    assert (last < pd.Timestamp(RUN_END)).sum() >= 5             # delisted inside the window
    assert (built.frame.groupby("symbol").close.min() < 1).sum() >= 8  # sub-$1 names
    assert set(ref.types[ref.types == "ETF"].index) == {"QQQ", "TLT"}
    # dated share counts inside the run: unknown at first then known, changing, unknown again
    shares = ref.shares.loc[RUN_START:RUN_END].where(ref.alive)
    known = shares.notna()
    assert (~known.iloc[0] & known.any()).sum() >= 5               # a first count in the run
    assert (shares.nunique() >= 2).sum() >= 5                      # a count that changes
    assert (known.iloc[:-1].to_numpy() & ~known.iloc[1:].to_numpy()).any(axis=0).sum() >= 3
    assert known.any(axis=None) and (~known & ref.alive.loc[RUN_START:RUN_END]).any(axis=None)


def _sell_gap_reference(ref, rank_within, min_price, max_price, above):
    close = ref.latest("close")
    mavg = ref.sma("close", 20)
    alive = ref.alive
    common = ref.common() & alive
    adv = ref.adv(30)
    mask = common if rank_within == "common_stock" else alive
    liquid, near_liquid = ref.percentile_band(adv, mask, 90, 100)
    screen = common & liquid & alive
    near = near_liquid.copy()
    if min_price is not None:
        screen &= close > min_price
        near |= (close - min_price).abs() <= RTOL * min_price
    if max_price is not None:
        screen &= close < max_price
        near |= (close - max_price).abs() <= RTOL * max_price
    if above:
        screen &= close > mavg
        near |= (close - mavg).abs() <= RTOL * mavg.abs()
    return {"prior_low": ref.latest("low"), "std": ref.ewm_std_prices(63, 0.99), "mavg": mavg,
            "close": close}, screen.fillna(False), near & alive


@pytest.mark.parametrize("which", ["sell_gap", "buy_gap"])
def test_gap_down_pipelines_match_pandas(built, which):
    from factors.screens import buy_gap_pipeline, sell_gap_pipeline

    if which == "sell_gap":
        # the post's percentile_between(90, 100) without a mask: ranked across all assets
        pipe, args = sell_gap_pipeline(), ("all_assets", 10.0, 2000.0, True)
    else:
        pipe, args = buy_gap_pipeline(), ("all_assets", None, None, True)
    out = built.run(pipe)
    dates = built.dates(out)
    assert len(dates) > 150 and len(out) > 300
    cols, screen, near = _sell_gap_reference(built.ref, *args)
    screen, near = screen.loc[dates].rename(columns=built.sids), near.loc[dates].rename(columns=built.sids)
    n, n_amb = check_screen(which, out, screen, near)
    got = by_sid(out)
    for col, panel in cols.items():
        compare(f"{which}.{col}", got[col], stack(panel, built.sids, dates))
    # exempt ties are real (a one-bar average equals its close) but rare
    assert n_amb <= 0.005 * built.ref.alive.loc[dates].to_numpy().sum()


def test_sell_gap_terms_on_every_asset(built):
    """Same terms without the screen: every alive (date, asset), NaNs included."""
    from zipline.pipeline import Pipeline

    from factors.screens import sell_gap_pipeline

    pipe = sell_gap_pipeline()
    pipe = Pipeline(columns=pipe.columns)
    out = built.run(pipe)
    dates = built.dates(out)
    cols, _, _ = _sell_gap_reference(built.ref, "all_assets", 10.0, 2000.0, True)
    alive = built.ref.alive.loc[dates].rename(columns=built.sids).stack()
    assert set(by_sid(out).index) == set(alive[alive].index)
    got = by_sid(out)
    for col, panel in cols.items():
        compare(f"all.{col}", got[col], stack(panel, built.sids, dates))
    # the std really is NaN-propagating zipline code and windows really cross actions
    assert got["std"].isna().any() and got["std"].notna().sum() > 0.8 * len(got)


def test_microcap_short_pipeline_matches_pandas(built):
    from factors.screens import microcap_short_pipeline

    ref = built.ref
    out = built.run(microcap_short_pipeline())
    dates = built.dates(out)
    close = ref.latest("close")
    sigma = ref.returns_std(100)
    screen = ref.common() & ref.alive & (close > 0.10) & (close <= 5.0) & sigma.notna()
    near = ((close - 0.10).abs() <= 1e-9) | ((close - 5.0).abs() <= 5e-9)
    r = lambda p: p.loc[dates].rename(columns=built.sids)  # noqa: E731
    n, _ = check_screen("microcap", out, r(screen), r(near & ref.alive))
    assert n > 1000
    got = by_sid(out)
    expected = {
        "prior_close": close, "sigma": sigma, "ema20": ref.ema(60, 1 - 2 / 21),
        "prior_high": ref.latest("high"), "prior_volume": ref.latest("volume"),
        "adv": ref.adv(20), "shares_outstanding": ref.shares,
    }
    for col, panel in expected.items():
        compare(f"microcap.{col}", got[col], stack(panel, built.sids, dates))
    # sub-$1 names and reverse splits are in the band and in the comparison
    syms = {v: k for k, v in built.sids.items()}
    names = {syms[s] for s in got.index.get_level_values(1)}
    assert {"AEZS", "CPST", "FCEL", "DRYS", "SIRI", "ZNGA"} <= names


def test_gap_and_go_pipeline_matches_pandas(built):
    from factors.gap import SHARES_CLASSES, shares_outstanding_class
    from factors.screens import gap_and_go_pipeline

    ref = built.ref
    out = built.run(gap_and_go_pipeline())
    dates = built.dates(out)
    close = ref.latest("close")
    screen = ref.common() & ref.alive & close.notna() & (close >= 1.0)
    near = (close - 1.0).abs() <= 1e-9
    r = lambda p: p.loc[dates].rename(columns=built.sids)  # noqa: E731
    check_screen("gap_and_go", out, r(screen), r(near & ref.alive))
    got = by_sid(out)
    sma20 = ref.sma("close", 20)
    shares = ref.shares
    expected = {
        "prior_close": close, "prior_high": ref.latest("high"),
        "avg_range": ref.avg_range(20), "avg_volume": ref.sma("volume", 20),
        "relative_volume": ref.relative_volume(20), "adv": ref.adv(20),
        "shares_outstanding": shares,
    }
    for col, panel in expected.items():
        compare(f"gap_and_go.{col}", got[col], stack(panel, built.sids, dates))
    above = stack((close > sma20), built.sids, dates).reindex(got.index)
    tie = stack(((close - sma20).abs() <= RTOL * sma20), built.sids, dates).reindex(got.index)
    assert ((got["above_sma20"] == above) | tie).all()
    labels = shares_outstanding_class(stack(shares, built.sids, dates).reindex(got.index))
    codes = got["shares_class"].map(lambda c: SHARES_CLASSES[c] if c >= 0 else None)
    assert (codes.fillna("?") == labels.astype(object).fillna("?")).all()
    assert set(got["shares_class"]) >= {-1, 0, 1, 2, 3, 4}


def test_reference_columns_and_common_stock(built):
    """Type, exchange and shares outstanding as known before each session, against the
    merge_asof oracle: CHK is ``ADRC`` (not common stock) until its 2015-12-31 sample is
    seen, FCEL moves from XASE to XNAS after its 2016-03-15 sample, counts appear, change and
    become unknown again (splits, a sample without a count), the snapshot counts from the
    session after its fetch day."""
    from zipline.pipeline import Pipeline

    from factors.reference import CommonStock, PrimaryExchange, SecurityType, SharesOutstanding

    out = built.run(Pipeline(columns={
        "type": SecurityType(), "exchange": PrimaryExchange(), "shares": SharesOutstanding(),
        "etf": SecurityType().eq("ETF"), "cs": CommonStock(), "nasdaq": PrimaryExchange().eq("XNAS"),
    }), "2015-12-01", "2016-04-29")
    got = by_sid(out)
    dates = built.dates(out)
    ref = built.ref
    r = lambda p: stack(p, built.sids, dates).reindex(got.index)  # noqa: E731
    types, exch, shares = r(ref.type_asof), r(ref.exchange_asof), r(ref.shares)
    assert (got["type"].astype(str) == types).all()
    assert (got["etf"] == (types == "ETF")).all()
    assert (got["cs"] == (types == "CS")).all()
    assert (got["exchange"].astype(str) == exch).all()
    assert (got["nasdaq"] == (exch == "XNAS")).all()
    np.testing.assert_array_equal(got["shares"].to_numpy(), shares.to_numpy())

    def at(day, sym, col):
        return got.loc[(pd.Timestamp(day), built.sids[sym]), col]

    assert at("2015-12-31", "CHK", "type") == "ADRC" and not at("2015-12-31", "CHK", "cs")
    assert at("2016-01-04", "CHK", "type") == "CS" and at("2016-01-04", "CHK", "cs")
    assert at("2016-03-15", "FCEL", "exchange") == "XASE"
    assert at("2016-03-16", "FCEL", "exchange") == "XNAS" and at("2016-03-16", "FCEL", "nasdaq")
    # AAPL's 2015-12-31 count is known 2016-03-30: seen from 03-31 on, not before
    base = at("2016-03-30", "AAPL", "shares")
    assert np.isfinite(base) and at("2016-03-31", "AAPL", "shares") == pytest.approx(
        base * 0.61 / 1.29, rel=1e-12)
    # the undated snapshot (fetched 2016-04-15) counts from the session after, never before
    snap_day = pd.Timestamp(realdata.SNAPSHOT_DATE)
    snapshot = got.index.get_level_values(1).map(
        {built.sids[k]: v for k, v in ref.snapshot_shares.items()}).to_numpy(float)
    dated = ref.events[ref.events["order"] == 1].groupby("symbol")["shares"].apply(set)
    for sym, values in dated.items():  # the premise: a snapshot count is never a dated one
        assert ref.snapshot_shares[sym] not in values, sym
    on_or_before = got.index.get_level_values(0) <= snap_day
    assert on_or_before.any() and (~on_or_before).any()
    assert not (got["shares"].to_numpy()[on_or_before] == snapshot[on_or_before]).any()
    after = ~on_or_before & np.isfinite(snapshot)
    assert (got["shares"].to_numpy()[after] == snapshot[after]).mean() > 0.5


def test_reference_loader_is_point_in_time(built):
    """Outside [start_date, end_date] (as of the previous session) the loader gives the
    missing value, even where Pipeline's own mask would not hide it; inside, the count known
    strictly before each date (the oracle), NaN before the first one and from a split on."""
    from zipline.pipeline.domain import US_EQUITIES

    from bundles.ingestions import ingestion_dir
    from factors.loaders import reference_loader
    from factors.reference import PolygonReference

    loader = reference_loader(ingestion_dir(built.name, environ=built.environ))
    life = built.frame.groupby("symbol").date.agg(["min", "max"])
    sessions = US_EQUITIES.sessions()
    dates = sessions[(sessions >= "2015-03-23") & (sessions <= "2016-06-30")]
    cols = [PolygonReference.security_type, PolygonReference.shares_outstanding]
    syms = ["ACI", "BSI"]  # delisted 2016-01-11 (split 2015-08-04), 2016-05-24 (2015-12-14)
    sids = [built.sids[s] for s in syms]
    arrays = loader.load_adjusted_array(US_EQUITIES, cols, dates, pd.Index(sids + [10**6]), None)
    expected = asof_reference(built.ref.events, "shares", dates, syms)
    as_of = sessions[sessions.get_indexer(dates) - 1]
    for j, sym in enumerate(syms):
        types = arrays[cols[0]].data.as_string_array()[:, j]
        shares = arrays[cols[1]].data[:, j]
        inside = (as_of >= life.loc[sym, "min"]) & (as_of <= life.loc[sym, "max"])
        assert inside.any() and (~inside).any()
        assert (types[inside] == "CS").all() and (types[~inside] == "").all()
        assert np.isnan(shares[~inside]).all()
        np.testing.assert_array_equal(shares[inside], expected[sym].to_numpy()[inside])
    # ACI: its 2015-06-30 sample (pre-split shares, known 09-28) falls after its 2015-08-04
    # split, the next one is known after its delisting, and the snapshot after too: no count
    assert np.isnan(arrays[cols[1]].data[:, 0]).all()
    bsi = pd.Series(arrays[cols[1]].data[:, 1], index=dates)
    assert np.isnan(bsi.loc[:"2015-03-31"]).all()           # sampled 2014-12-31, known 03-31
    assert (bsi.loc["2015-04-01":"2015-12-11"] == 5e6).all()
    assert np.isnan(bsi.loc["2015-12-14":"2016-04-15"]).all()  # the split: pre-split count gone
    assert (bsi.loc["2016-04-18":"2016-05-25"] == 2.5e9).all()  # the snapshot, fetched 04-15
    assert np.isnan(bsi.loc["2016-05-26":]).all()           # last bar 05-24
    # a sid unknown to the table is missing everywhere
    assert (arrays[cols[0]].data.as_string_array()[:, 2] == "").all()
    assert np.isnan(arrays[cols[1]].data[:, 2]).all()


def test_adjustments_inside_windows_match_hand_adjusted(built):
    """SMA and EWM std across NFLX's 7:1 split, NKE's 2:1 split, DRYS's 1:25 reverse split and
    AAPL's dividend: the pipeline equals the raw closes hand-adjusted with every action
    effective up to the pipeline date, and differs from the unadjusted closes."""
    from zipline.pipeline import Pipeline
    from zipline.pipeline.data import EquityPricing
    from zipline.pipeline.factors import SimpleMovingAverage

    from factors.gap import price_std

    out = built.run(Pipeline(columns={
        "sma": SimpleMovingAverage(inputs=[EquityPricing.close], window_length=20),
        "std": price_std()}), "2015-07-01", "2016-06-30")
    raw_close = built.ref.raw["close"]
    splits, divs = built.summary["splits"], built.summary["dividends"]

    def hand_adjusted(sym, bars, d):
        """bars (a Series of closes before d) adjusted for every action effective <= d."""
        adjusted = bars.copy()
        for r in splits[splits.ticker == sym].itertuples():
            if r.execution_date <= d:
                adjusted[adjusted.index < r.execution_date] *= r.split_from / r.split_to
        for r in divs[divs.ticker == sym].itertuples():
            if r.ex_dividend_date <= d:
                prev = raw_close[sym].loc[:r.ex_dividend_date].iloc[-2]
                adjusted[adjusted.index < r.ex_dividend_date] *= 1 - r.cash_amount / prev
        return adjusted

    for sym, effective in (("NFLX", "2015-07-15"), ("NKE", "2015-12-24"), ("DRYS", "2016-03-11"),
                           ("AAPL", "2015-08-06")):
        got = out.xs(built.bundle.asset_finder.retrieve_asset(built.sids[sym]), level=1)
        eff = pd.Timestamp(effective)
        i = got.index.get_loc(eff)
        for d in (got.index[i - 1], eff, got.index[i + 5]):
            bars = raw_close[sym].loc[:d].iloc[:-1]  # bars before D
            w20, w63 = bars.iloc[-20:], bars.iloc[-63:]
            assert w20.index[0] < eff  # the window reaches back before the action
            hand20 = hand_adjusted(sym, w20, d)
            assert got.loc[d, "sma"] == pytest.approx(hand20.mean(), rel=RTOL)
            hand63 = hand_adjusted(sym, w63, d).to_numpy()
            wts = 0.99 ** np.arange(62, -1, -1)
            m = np.sum(wts * hand63) / wts.sum()
            var = np.sum(wts * (hand63 - m) ** 2) / wts.sum()
            corr = wts.sum() ** 2 / (wts.sum() ** 2 - np.sum(wts ** 2))
            assert got.loc[d, "std"] == pytest.approx(np.sqrt(var * corr), rel=RTOL)
        # from the effective date on, the window is adjusted: raw closes would be wrong
        assert got.loc[eff, "sma"] != pytest.approx(raw_close[sym].loc[:eff].iloc[-21:-1].mean(),
                                                    rel=1e-6)
        assert got.loc[got.index[i - 1], "sma"] == pytest.approx(
            raw_close[sym].loc[:got.index[i - 1]].iloc[-21:-1].mean(), rel=1e-3)


# ----------------------------------------------------------------------------- look-ahead
def test_no_look_ahead(built, pystock_slice, tmp_path_factory):
    """Change every bar of day D (and D's corporate actions) in the raw data, re-ingest:
    no output for dates <= D changes; D+1 does."""
    from factors.screens import (buy_gap_pipeline, gap_and_go_pipeline, microcap_short_pipeline,
                                 sell_gap_pipeline)

    day = pd.Timestamp("2015-12-23")  # NKE's split is effective the next session
    frame = pystock_slice.copy()
    on_day = frame.date == day
    assert on_day.sum() >= 30
    frame.loc[on_day, ["open", "high", "low", "close"]] *= 1.37
    frame.loc[on_day, "adj_close"] *= 1.37  # keeps the derived actions as they were
    frame.loc[on_day, "volume"] = frame.loc[on_day, "volume"] * 5 + 1000
    changed = Built("gapline-factors-lookahead", frame, tmp_path_factory.mktemp("lookahead"))
    pipes = {"sell": sell_gap_pipeline(), "buy": buy_gap_pipeline(),
             "micro": microcap_short_pipeline(), "gng": gap_and_go_pipeline()}
    nxt = built.bundle.equity_daily_bar_reader.sessions
    nxt = nxt[nxt.get_loc(day) + 1]
    start, end = "2015-11-02", str(nxt.date())
    for name, pipe in pipes.items():
        # without the screen too, so every term of every asset is compared
        from zipline.pipeline import Pipeline

        for p in (pipe, Pipeline(columns=pipe.columns)):
            a = built.run(p, start, end)
            b = changed.run(p, start, end)
            pd.testing.assert_frame_equal(a.loc[:day], b.loc[:day], check_exact=True,
                                          obj=f"{name} through {day.date()}")
            assert not a.loc[nxt:].equals(b.loc[nxt:]), f"{name}: the change never shows"


# ----------------------------------------------------------------------------- zipline run
ALGO = '''
import json, os
from zipline.api import attach_pipeline, pipeline_output, record
from factors.screens import sell_gap_pipeline
from factors.reference import CommonStock, SecurityType
from zipline.pipeline import Pipeline

def initialize(context):
    attach_pipeline(sell_gap_pipeline(), "sell")
    attach_pipeline(Pipeline(columns={"etf": SecurityType().eq("ETF")}, screen=CommonStock()), "cs")

def before_trading_start(context, data):
    sell = pipeline_output("sell")
    cs = pipeline_output("cs")
    record(n_sell=len(sell), n_cs=len(cs), n_etf=int(cs["etf"].sum()),
           sell_std=float(sell["std"].sum()))
'''


def _expected_counts(built, start, end):
    from zipline.pipeline import Pipeline

    from factors.reference import CommonStock
    from factors.screens import sell_gap_pipeline

    sell = built.run(sell_gap_pipeline(), start, end)
    cs = built.run(Pipeline(screen=CommonStock()), start, end)
    return (sell.groupby(level=0).size(), cs.groupby(level=0).size(),
            sell["std"].groupby(level=0).sum())


def test_zipline_run_cli_resolves_reference_columns(built, tmp_path, monkeypatch):
    """``zipline -e ext.py run -f algo.py -b <bundle>``: the extension calls
    factors.loaders.install(); the algorithm's pipelines use PolygonReference."""
    from click.testing import CliRunner
    from zipline.__main__ import main

    from factors import loaders

    loaders.uninstall()
    algo = tmp_path / "algo.py"
    algo.write_text(ALGO)
    ext = tmp_path / "ext.py"
    ext.write_text("from factors.loaders import install\ninstall()\n")
    perf_path = tmp_path / "perf.pickle"
    monkeypatch.setenv("ZIPLINE_ROOT", str(built.zroot))
    start, end = "2016-03-01", "2016-03-31"
    try:
        result = CliRunner().invoke(main, [
            "-e", str(ext), "run", "-f", str(algo), "-b", built.name, "-s", start, "-e", end,
            "--no-benchmark", "-o", str(perf_path), "--capital-base", "100000"],
            catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert loaders.installed()
    finally:
        loaders.uninstall()
    perf = pd.read_pickle(perf_path)
    n_sell, n_cs, std = _expected_counts(built, start, end)
    perf.index = perf.index.tz_localize(None).normalize() if perf.index.tz else perf.index.normalize()
    assert (perf["n_sell"].to_numpy() == n_sell.reindex(perf.index).to_numpy()).all()
    assert (perf["n_cs"].to_numpy() == n_cs.reindex(perf.index).to_numpy()).all()
    assert (perf["n_etf"] == 0).all()
    np.testing.assert_allclose(perf["sell_std"].to_numpy(), std.reindex(perf.index).to_numpy(),
                               rtol=1e-12)


def test_run_algorithm_helper_and_missing_patch(built):
    """factors.loaders.run_algorithm installs the patch; plain zipline without it cannot
    load PolygonReference (the failure the patch exists for)."""
    import zipline
    from zipline.api import attach_pipeline, pipeline_output, record
    from zipline.pipeline import Pipeline

    from factors import loaders
    from factors.reference import CommonStock

    seen = []

    def initialize(context):
        attach_pipeline(Pipeline(screen=CommonStock()), "cs")

    def before_trading_start(context, data):
        seen.append(len(pipeline_output("cs")))
        record(n=seen[-1])

    kwargs = dict(start=pd.Timestamp("2016-03-01"), end=pd.Timestamp("2016-03-10"),
                  initialize=initialize, before_trading_start=before_trading_start,
                  capital_base=1e5, bundle=built.name, environ=built.environ,
                  default_extension=False, benchmark_returns=None)
    loaders.uninstall()
    with pytest.raises(ValueError, match="No PipelineLoader registered"):
        zipline.run_algorithm(**kwargs)
    seen.clear()
    try:
        loaders.run_algorithm(**kwargs)
        assert loaders.install() is False  # idempotent: already there
    finally:
        loaders.uninstall()
    _, n_cs, _ = _expected_counts(built, "2016-03-01", "2016-03-10")
    assert seen == n_cs.tolist()


# ----------------------------------------------------------------------------- full universe
@pytest.fixture(scope="session")
def built_full(request, tmp_path_factory):
    markexpr = request.config.getoption("markexpr") or ""
    if "slow" not in markexpr and not os.environ.get("GAPLINE_RUN_SLOW"):
        pytest.skip("full pystock universe: run with -m slow (or GAPLINE_RUN_SLOW=1)")
    frame = realdata.load_pystock()
    return Built("gapline-factors-full", frame, tmp_path_factory.mktemp("factors_full"))


@pytest.mark.slow
def test_full_universe_sell_gap_and_microcap(built_full):
    from zipline.pipeline import Pipeline

    from factors.screens import microcap_short_pipeline, sell_gap_pipeline

    b = built_full
    ref = b.ref
    start, end = "2015-09-01", "2017-03-31"
    out = b.run(sell_gap_pipeline(), start, end)
    dates = b.dates(out)
    cols, screen, near = _sell_gap_reference(ref, "all_assets", 10.0, 2000.0, True)
    n, n_amb = check_screen("full sell_gap", out, screen.loc[dates].rename(columns=b.sids),
                            near.loc[dates].rename(columns=b.sids))
    assert n > 50_000
    got = by_sid(out)
    for col, panel in cols.items():
        compare(f"full.{col}", got[col], stack(panel, b.sids, dates))
    out = b.run(Pipeline(columns=microcap_short_pipeline().columns), start, end)
    got = by_sid(out)
    compare("full.sigma", got["sigma"], stack(ref.returns_std(100), b.sids, dates))
    compare("full.ema20", got["ema20"], stack(ref.ema(60, 1 - 2 / 21), b.sids, dates))

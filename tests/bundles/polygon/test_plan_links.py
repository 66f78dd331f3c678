"""Which previous sid's minute table each new sid continues (``plan_links``), on hand-built
sid frames: plain continuations, reused tickers, tables ending before their asset, and every
case that must fall back to a full ingest. Checked against a per-sid loop written plainly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bundles.polygon import incremental_minutes
from bundles.polygon.inputs import NotIncremental
from bundles.polygon.sids import SidMap

MPD = 390
SESSIONS = pd.bdate_range("2024-01-02", "2024-01-31")  # the previous ingestion's sessions
START, LAST = SESSIONS[0], SESSIONS[-1]
MAX = pd.Timestamp("2262-01-01")


def old_frame(rows):
    """(sid, ticker, end_date, ratio or None) -> the previous ingestion's sids frame."""
    frame = pd.DataFrame(rows, columns=["sid", "ticker", "end_date", "ratio"])
    frame["end_date"] = pd.to_datetime(frame["end_date"])
    frame["ratio"] = frame["ratio"].astype(float)
    return frame.set_index("sid")


def sid_map(single: dict, periods: dict) -> SidMap:
    sids = sorted(set(single.values()) | {s for p in periods.values() for _, s in p})
    assets = pd.DataFrame({"ticker": [None] * len(sids)}, index=pd.Index(sids, name="sid"))
    return SidMap(assets, single, {t: [(pd.Timestamp(d), s) for d, s in p]
                                   for t, p in periods.items()})


def oracle(old, sids, bars, lengths):
    """The rule, one previous sid at a time: the days it owned (a ticker's first sid from the
    start, each later one from the day after the previous one's end, the last up to the last
    session, cut at the session of its table's last bar) must map to one new sid."""
    links, with_bars = {}, {}
    for ticker, group in old.sort_values("end_date", kind="stable").groupby("ticker",
                                                                            sort=False):
        ends = list(group["end_date"])
        for i, sid in enumerate(group.index):
            lo = START if i == 0 else ends[i - 1] + pd.Timedelta(days=1)
            hi = LAST if i == len(ends) - 1 else min(ends[i], LAST)
            ratio = group.loc[sid, "ratio"]
            if not pd.isna(ratio):
                hi = min(hi, SESSIONS[(lengths[sid] - 1) // MPD])
            if lo > hi:
                continue
            a, b = (int(sids.map(np.array([ticker], object),
                                 np.array([d], "datetime64[ns]"))[0]) for d in (lo, hi))
            if a != b or a < 0:
                if not pd.isna(ratio):
                    raise NotIncremental("several assets or none")
                continue
            if not pd.isna(ratio):
                if a in with_bars:
                    raise NotIncremental("are one asset now")
                with_bars[a] = sid
                if a in bars:
                    high = float(np.nanmax(bars[a][2]["high"]))
                    if min(int(ratio), incremental_minutes.ohlc_ratio_for(high)) != ratio:
                        raise NotIncremental("OHLC ratio")
                links[a] = (sid, int(ratio))
            elif a not in links and a not in bars:
                links[a] = (sid, None)
    return links


def plan(old, sids, bars, lengths, monkeypatch):
    monkeypatch.setattr(incremental_minutes, "table_length",
                        lambda path: lengths[int(path.rsplit("/", 1)[-1].split(".")[0])])
    return incremental_minutes.plan_links(old, START, LAST, sids, bars, set(), "/nowhere",
                                          SESSIONS, MPD)


def new_bars(sid, high):
    return (None, np.array([0]), {"high": np.array([high]), "volume": np.array([10])})


FULL = len(SESSIONS) * MPD


def test_continuations_reused_tickers_and_short_tables(monkeypatch):
    old = old_frame([
        (0, "AAA", LAST, 1000),            # plain continuation
        (1, "BBB", "2024-01-10", 10000),   # a reused ticker's first company ...
        (2, "BBB", LAST, 1000),            # ... and the one after it
        (3, "CCC", LAST, 1000),            # its table ends on Jan 10: a new company from Jan 22
        (4, "DDD", LAST, None),            # no minute bars: an empty table shared
        (5, "EEE", LAST, None),            # no minute bars before, bars now: written anew
        (6, "FFF", "2024-01-12", None),    # delisted; its ticker's days after are a new
    ])                                     # company's: it owns no one new sid, so no link
    sids = sid_map({"AAA": 10, "DDD": 15, "EEE": 16},
                   {"BBB": [("2024-01-10", 11), (MAX, 12)],
                    "CCC": [("2024-01-19", 13), (MAX, 14)],
                    "FFF": [("2024-01-12", 17), (MAX, 18)]})
    lengths = {0: FULL, 1: 7 * MPD, 2: FULL, 3: 7 * MPD}
    bars = {10: new_bars(10, 12.0), 16: new_bars(16, 5.0)}
    got = plan(old, sids, bars, lengths, monkeypatch)
    assert got == {10: (0, 1000), 11: (1, 10000), 12: (2, 1000), 13: (3, 1000),
                   15: (4, None)}
    assert got == oracle(old, sids, bars, lengths)


BBB_TWO = {"BBB": [("2024-01-10", 11), (MAX, 12)]}


@pytest.mark.parametrize("case, single, periods, bars, message", [
    ("a sid's bars split between two companies now", {},
     {"AAA": [("2024-01-15", 10), (MAX, 13)], **BBB_TWO}, {}, "several assets or none"),
    ("two previous sids are one company now", {"AAA": 10, "BBB": 12}, {}, {},
     "are one asset now"),
    ("new prices need a smaller OHLC ratio", {"AAA": 10}, BBB_TWO,
     {10: new_bars(10, 5_000_000.0)}, "OHLC ratio"),
])
def test_what_cannot_carry_over_falls_back(case, single, periods, bars, message,
                                           monkeypatch):
    old = old_frame([(0, "AAA", LAST, 1000), (1, "BBB", "2024-01-10", 1000),
                     (2, "BBB", LAST, 1000)])
    lengths = {0: FULL, 1: 7 * MPD, 2: FULL}
    sids = sid_map(single, periods)
    with pytest.raises(NotIncremental, match=message):
        oracle(old, sids, bars, lengths)
    with pytest.raises(NotIncremental, match=message):
        plan(old, sids, bars, lengths, monkeypatch)


def test_gaining_an_asset_for_bars_that_had_none_falls_back(monkeypatch):
    old = old_frame([(0, "AAA", LAST, 1000)])
    sids = sid_map({"AAA": 10, "ZZZ": 11}, {})
    monkeypatch.setattr(incremental_minutes, "table_length", lambda path: FULL)
    with pytest.raises(NotIncremental, match="ZZZ had minute bars without an asset"):
        incremental_minutes.plan_links(old, START, LAST, sids, {}, {"ZZZ"}, "/nowhere",
                                       SESSIONS, MPD)


def test_many_random_frames_match_the_oracle(monkeypatch):
    rng = np.random.default_rng(7)
    for trial in range(40):
        rows, single, periods, lengths, sid, new = [], {}, {}, {}, 0, 100
        for t in range(rng.integers(1, 8)):
            ticker = f"T{t}"
            n_old = int(rng.integers(1, 4))
            cuts = sorted(rng.choice(len(SESSIONS) - 1, n_old - 1, replace=False))
            for k in range(n_old):
                last_end = LAST if rng.random() < 0.7 else SESSIONS[-1 - rng.integers(1, 5)]
                end = SESSIONS[cuts[k]] if k < n_old - 1 else max(last_end, SESSIONS[cuts[-1]]
                                                                   if cuts else START)
                ratio = None if rng.random() < 0.2 else 1000
                rows.append((sid, ticker, end, ratio))
                lengths[sid] = int(rng.integers(1, len(SESSIONS) + 1)) * MPD
                sid += 1
            n_new = int(rng.integers(1, 4))
            if n_new == 1:
                single[ticker] = new
                new += 1
            else:
                new_cuts = sorted(rng.choice(len(SESSIONS) - 1, n_new - 1, replace=False))
                periods[ticker] = [(SESSIONS[c], new + i) for i, c in enumerate(new_cuts)]
                periods[ticker].append((MAX, new + n_new - 1))
                new += n_new
        old, sids = old_frame(rows), sid_map(single, periods)
        try:
            want = oracle(old, sids, {}, lengths)
        except NotIncremental as exc:
            with pytest.raises(NotIncremental, match=str(exc)):
                plan(old, sids, {}, lengths, monkeypatch)
            continue
        assert plan(old, sids, {}, lengths, monkeypatch) == want, trial

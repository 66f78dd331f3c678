"""The ``polygon-demo`` data set: realistic, fully deterministic Polygon-format raw files.

:func:`generate` writes, under ``root``, exactly what a user's Polygon (Massive) flat files and
reference downloads look like (see :mod:`bundles.layout`)::

    <root>/raw/us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz   one file per session
    <root>/raw/us_stocks_sip/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz
    <root>/raw/reference/{tickers,splits,dividends,ticker_details}.json
    <root>/raw/demo_manifest.json     what was generated (roles, special events and dates)
    <root>/raw/DEMO_VERSION           written last; present + same version => nothing to do

Everything is drawn from fixed seeds (``np.random.default_rng``), so two runs write
byte-identical files. The sessions are the NYSE-calendar sessions ``DEMO_START..DEMO_END`` (128,
three of them early closes at 13:00 ET); session opens and closes come from the calendar.

**Universe** (~150 tickers, fictional names except the ETFs):

* 90 liquid names: 28 large caps and 62 mid caps (``CS``, $10-$800, minute volumes in the
  thousands; large caps trade every regular-session minute, mid caps 20-50 % of them, which
  keeps the set at ~3.7 million minute rows). About 1.5 % of their days (after the first 15
  sessions) open with a *sell gap*: the open is set below the prior day's low by 1.3-3x the
  63-day EWM standard deviation of closes (``close.ewm(span=63).std()`` over the prior
  sessions' day-aggregate closes), and the day then drifts on (continuation) or back
  (reversion) at random, on 4x volume. From October on (once the screen has its 63 sessions),
  another ~10 % of the days on which a name passes the QuantRocket sell-gap *screen* -- as
  Pipeline computes it on the ingested bundle: one of the ~11 most liquid common stocks by
  30-day dollar volume (the screen keeps the top decile, ~14), close > $10 and above its
  20-day mean -- open with a sell gap that also satisfies the screen's signal: below the
  prior regular-session low minus zipline's ``ExponentialWeightedMovingStdDev(close, 63,
  decay 0.99)`` (1.1-1.8x), and below the 20-day mean (``screened: true`` in the manifest).
* 20 low-float small caps (``CS``, $3-$20, 5-60 M shares, 8-30 % of minutes). From October
  on, ~3 % of the days of the small and mid caps with fewer than 50 M shares outstanding and
  a prior close of $5.5-$34 are *gap-and-go* days: news between 04:30 and 08:00 ET, a
  pre-market gap of 11-40 % on heavy volume (the pre-market high 3-10 % above the last
  pre-market price), a pull-back under the pre-market high after the open, then a break above
  it on a volume burst 4-75 minutes after the open and a run of 4-30 %: *runners* (45 %) hold
  most of it, *faders* (30 %) give it back to around the pre-market high, *reversals* (25 %)
  drop back to the open and below within the hour (``gap_and_go`` in the manifest).
* 25 penny stocks (``CS``, $0.10-$5; four below $0.05 with sub-penny prices such as 0.0034,
  one of them around $0.01): 20-50 % of regular-session minutes have a bar; on ~3 % of days a
  pre-market *pump* (news between 04:00 and 07:20 ET, heavy volume, prices 20-150 % above the
  prior close; the stock then trades nearly every minute of the morning). Most pumps chop
  around the open for 30-120 minutes and fade (``kind: fade``); a quarter *squeeze* 20-80 %
  above the open 8-60 minutes after it, then fade (``squeeze``) or hold most of it into the
  close (``squeeze_hold``, about a third of the squeezes). One penny stock is halted
  intraday (no bars for 26 minutes) on one day.
* SPY, QQQ, IWM (``ETF``, ARCX), 3 ADRs (``ADRC``), 3 warrants (``WARRANT``, ticker ends in
  ``W``, sub-dollar), 2 preferreds (``PFD``, Polygon-style tickers such as ``ABCpA``).

**Corporate actions and special cases** (all in the returned manifest):

* a 4:1 forward split of a large cap in mid-October and a 1:10 reverse split of a penny stock
  in November; raw prices are *unadjusted* (they drop ~4x / jump ~10x on the execution date,
  volumes move the other way). ``splits.json`` records them as Polygon does
  (4:1 forward: ``split_from=1, split_to=4``; 1:10 reverse: ``split_from=10, split_to=1``).
* quarterly cash dividends (``CD``) for 15 large caps and the ETFs; the open drops by the
  amount on the ex-date (record date = ex-date, as under T+1 settlement).
* a mid cap delisted in mid-September (``active: false``, ``delisted_utc`` = the day after
  its last session, ``YYYY-MM-DDT00:00:00Z``).
* a reused ticker: company A trades it until early August (delisted), company B (another
  FIGI, CIK, name and price level) from mid-October. Both are in ``tickers.json``.
* a mid cap with no bars at all on one session (full-day halt), re-opening with a wide gap.
* one session's minute file is written with its rows shuffled (real ingest must sort).

**Bars.** Minute bars carry Polygon's columns ``ticker,volume,open,close,high,low,
window_start,transactions`` with ``window_start`` the bar START in ns since the epoch (UTC).
Regular-session bars start at the open .. close - 1 minute (15:59, or 12:59 on early closes);
sparse extended-hours bars start 04:00 .. 09:29 ET and at the close .. close + 4 h - 1 minute
(19:59, or 16:59 on early closes). Each day's prices follow one continuous path (prior close
-> open -> close -> after hours), and every ticker that trades has bars at the first (09:30)
and the last regular-session minute. Prices are positive, rounded to 4 decimals below $1 and
2 decimals above, ``low <= min(open, close) <= max(open, close) <= high``; volumes and
transactions are positive integers. Minute rows are sorted by ticker, then ``window_start``
(except the shuffled session).

**Day aggregates** (``day_aggs_v1``, one row per ticker and session, ``window_start`` = the
session date at 00:00 New York time in UTC ns, as Polygon labels them): ``open`` = the
first regular-session bar's open, ``close`` = the last regular-session bar's close, while
``high``, ``low``, ``volume`` and ``transactions`` cover *all* that day's minute bars,
04:00-20:00 ET including extended hours.

**Modules.** :mod:`.params` (dates, seeds, rates), :mod:`.sessions`, :mod:`.names` and
:mod:`.figi` (identifiers), :mod:`.universe`, :mod:`.events` (the event calendar),
:mod:`.simulation` (state carried between sessions), :mod:`.day` (one session) with
:mod:`.gaps`, :mod:`.pumps`, :mod:`.gap_and_go`, :mod:`.paths`, :mod:`.screen` and
:mod:`.bars`, then :mod:`.manifest`, :mod:`.reference`, :mod:`.files` and :mod:`.generator`.
"""
from __future__ import annotations

from .generator import generate
from .params import DEMO_END, DEMO_START, DEMO_VERSION, EVENTS_FROM

__all__ = ["generate", "DEMO_START", "DEMO_END", "DEMO_VERSION", "EVENTS_FROM"]

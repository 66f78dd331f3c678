"""Gap & Go: buy the break of the pre-market high of the day's best-scored gap-ups, exit on a
VWAP stop, a +15% target or at 15:45.

The reference is the Gap & Go article ``../shared/references/001_77709d99fd9024e0.txt``
("GG" below, with its line numbers): the screen is ``GapAndGoScanner`` (GG 61-185), the trade
is ``simulate_gap_trade`` (GG 544-608), the size is ``calculate_gap_position_size`` (GG
348-397). Each constant below quotes its rule; where the article can be read two ways the
choice is stated next to the constant and the other reading is a parameter value.

Rules (variant ``article``, the default)
----------------------------------------
* universe (``factors.screens.gap_and_go_pipeline``, data through yesterday): common stocks
  with a prior close, 20-day average volume >= ``MIN_AVG_VOLUME`` and a known share count
  <= ``MAX_SHARES_OUTSTANDING`` (both also re-checked by :func:`screen_gaps`);
* 09:31 (the first minute bar; the pre-market summary is known from 09:30 and zipline's first
  clock tick after it is this bar) -- :func:`screen_gaps` on the pre-market summary
  (:class:`~algorithms.extended_hours.ExtendedHours`): ``current_price`` = the last
  pre-market price, ``MIN_PRICE <= price <= MAX_PRICE``, gap % >= ``MIN_GAP_PCT``, pre-market
  volume >= ``MIN_PM_VOLUME``, shares outstanding <= ``MAX_SHARES_OUTSTANDING`` (gapline has
  no float: shares outstanding stand in for it; unknown fails), 20-day average volume >=
  ``MIN_AVG_VOLUME``; the article's RVOL and weighted score (:mod:`factors.gap`), score >=
  ``MIN_SCORE``; ranked by score (:func:`rank_gaps`), the top ``TOP_N`` are traded;
* entry: a resting BUY STOP at ``pre-market high + ENTRY_OFFSET`` placed at 09:31 for each
  ranked name, volume-confirmed (``Stop(min_volume=...)``): it triggers only on a bar whose
  high reaches it and whose volume is above ``VOLUME_CONFIRM`` x the average bar volume of the
  session's earlier bars (amended after every bar); a bar opening above it fills at its open;
* exits: the entry carries a bracket (``Bracket``): a sell Stop at ``VWAP_STOP`` x the session
  VWAP through the previous bar (amended after every bar) and a sell Limit at ``(1 +
  TARGET_PCT)`` x the fill; one cancels the other, the stop is checked first, both live from
  the bar after the fill. Once an exit has filled, the rest of the entry is cancelled;
* 15:45: cancel everything, market-sell what is held; anything left goes to the closing
  auction at 15:50 (:mod:`algorithms.execution.close_out`): nothing is held overnight;
* size: :func:`position_size` (the article's ``calculate_gap_position_size``), computed at
  09:31 with the entry and the stop known then; orders never take the gross exposure above
  ``MAX_GROSS`` x the portfolio value.

Variants (``VARIANT``; an explicit parameter override always wins over the variant's value)
-------------------------------------------------------------------------------------------
``article``  the scanner and ``simulate_gap_trade`` as written (the constants below);
``author``   the author's own setup, "Mi Setup Personal" ``GAP_CONFIG`` (GG 609-640) and
             workflow (GG 641-652): gap >= 12%, pre-market volume >= 750,000, float <= 40M,
             price $2-$40, RVOL >= 3, score >= 8, top 5, no entries after 11:00;
``loose``    the rules gap_and_go had before it followed the article: gap >= 10%,
             pre-market volume >= 50,000, price $1-$50, <= 100M shares with unknown counts
             passing, no average-volume, RVOL or score floor, entries until 11:00,
             ``POSITION_FRACTION`` (10%) of the portfolio per name.

Not modelled: the catalyst (no data: every name gets the article's default ``'none'``); the
``GapMonitor`` live rules (11:30 cut-off, price above VWAP, trailing 15% stop, GG 187-244);
the other entry styles (conservative, layered, GG 246-297) and the author's ``'layered'`` entry
and ``'adaptive'`` stop (GG 621, 630); scaling exits (GG 491-520). The first regular bar
(09:30-09:31) cannot be an entry bar: the buy stop is placed when it closes.

Run::

    zipline run -f algorithms/gap_and_go.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-10-01 -e 2024-10-31
    zipline -x variant=author run -f algorithms/gap_and_go.py ...
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import zipline.api as algo

from algorithms import common, history, params
from algorithms.execution import Bracket, Stop, place
from algorithms.execution.book import book_of
from algorithms.extended_hours import ExtendedHours
from bundles.market import session_of
from algorithms import gap_and_go_rules as _rules
from algorithms.gap_and_go_rules import confirm_volume, position_size, rank_gaps, screen_gaps

COSTS = "published"          # cost preset: zero | published | realistic
VARIANT = "article"          # "article" | "author" | "loose" (see the module docstring)

# -- the screen: GapAndGoScanner.__init__ (GG 62-67) and passes_basic_filters (GG 100-108) --
#: ``self.min_price = 1.00`` / ``self.min_price <= data['current_price'] <= self.max_price``
#: (GG 66, 103); ``current_price`` is the last pre-market price known at 09:31 (the scanner
#: runs pre-market, GG 68: "scan_time='08:00'")
MIN_PRICE = 1.00
#: ``self.max_price = 50.00`` (GG 67), inclusive (GG 103)
MAX_PRICE = 50.00
#: ``self.min_gap_pct = 10`` / ``data['gap_pct'] >= self.min_gap_pct`` (GG 63, 104), with
#: ``gap_pct = (current_price - prev_close) / prev_close * 100`` (GG 116); in percent
MIN_GAP_PCT = 10.0
#: ``self.min_volume = 500_000`` / ``data['premarket_volume'] >= self.min_volume`` (GG 64, 105)
MIN_PM_VOLUME = 500_000
#: ``self.max_float = 50_000_000`` / ``data['float_shares'] <= self.max_float`` (GG 65, 106).
#: gapline has no dated float source: the column is SHARES OUTSTANDING as known before the
#: session (dated Polygon details, ``factors.reference.SharesOutstanding``), which is >= the
#: float, so this is stricter
MAX_SHARES_OUTSTANDING = 50_000_000.0
#: an unknown share count FAILS (``float_shares <= max_float`` cannot be shown); the
#: ``loose`` variant lets it pass
REQUIRE_SHARES_OUTSTANDING = True
#: ``data['avg_volume_20d'] >= 100_000 # Minimum liquidity`` (GG 107)
MIN_AVG_VOLUME = 100_000.0
#: the "20d" of ``avg_volume_20d``: the mean daily volume of the last 20 sessions (through
#: yesterday, split-adjusted)
AVG_VOLUME_WINDOW = 20
#: no RVOL floor in the scanner (RVOL only feeds the score); the author's ``'min_rvol': 3.0``
#: (GG 618). RVOL = ``pm_volume / (avg_volume * 0.1)`` (GG 119). 0 = no floor
MIN_RVOL = 0.0
#: ``if score['total_score'] >= 7: # Minimum score`` (GG 83); 0 = no score floor
MIN_SCORE = 7.0
#: ``data.get('catalyst', 'none')`` (GG 157): no catalyst data, every name scores 1 for it
#: (``factors.gap.GAP_AND_GO_DEFAULT_CATALYST``)
CATALYST = "none"
#: ``top_candidates = [c for c in candidates if c['score'] >= 8][:5]`` (GG 647)
TOP_N = 5
#: ``'rank': self.calculate_rank(metrics, score)`` and ``sorted(..., key=lambda x: x['rank'],
#: reverse=True)`` (GG 93, 99): ``calculate_rank`` is never defined. Choice: rank by the
#: score (then gap, then sid); the other readings: "rvol" or "gap" first
RANK_BY = "score"

# -- the entry: simulate_gap_trade (GG 553-559) --------------------------------------------
#: ``entry_price = candidate['premarket_high'] + 0.01`` (GG 557): a buy stop one cent above
#: the pre-market high (``bar['high'] > candidate['premarket_high']``, GG 555)
ENTRY_OFFSET = 0.01
#: ``bar['volume'] > candidate['avg_volume'] * 2`` (GG 556), strict
VOLUME_CONFIRM = 2.0
#: which ``avg_volume`` (GG 556: not defined for a candidate). Choice "session": the average
#: volume of this session's earlier minute bars that traded (before the first traded bar: the
#: pre-market average bar volume), i.e. a breakout bar with twice the usual bar volume.
#: "daily": the literal ``avg_volume_20d``, the 20-day average DAILY volume
VOLUME_AVERAGE = "session"
#: minutes after the open after which no entry fills (the buy stop, or the unfilled rest of a
#: triggered one, is cancelled). ``simulate_gap_trade`` has no cut-off (GG 554: every bar of
#: the day), so the article's is the 15:45 exit (375); the author's ``'max_entry_time':
#: '11:00'`` (GG 625) is 90; ``GapMonitor``'s 11:30 (GG 212) would be 120
ENTRY_DEADLINE_MINUTES = 375

# -- the exits: simulate_gap_trade (GG 563-587) --------------------------------------------
#: ``stop_price = candidate['vwap'] * 0.97`` (GG 563), checked first on the bar's low and
#: filled at the stop (GG 571-575)
VWAP_STOP = 0.97
#: which ``candidate['vwap']`` (GG 563: one value, never defined). Choice "session": the
#: session VWAP through the previous bar, the resting stop amended after every bar; "entry":
#: the session VWAP through the entry bar, fixed for the rest of the trade
STOP_MODE = "session"
#: ``target_price = entry_price * 1.15`` (GG 564), on the bar's high, filled at the target
#: (GG 577-581); the entry price is the fill price
TARGET_PCT = 0.15
#: stop and target prices are sent in cents (brokers quote stocks >= $1 in cents)
PRICE_DECIMALS = 2
#: ``if timestamp.time() >= pd.Timestamp('15:45').time(): exit_price = bar['close']`` (GG
#: 583-587): cancel and market-sell at 15:45 (fills on the next bar's close)
FLAT_MINUTES_BEFORE_CLOSE = 15

# -- the size: calculate_gap_position_size (GG 348-397) -----------------------------------
#: "risk": the article's sizing (:func:`position_size`); "fraction": ``POSITION_FRACTION`` of
#: the portfolio value per name (the ``loose`` variant's sizing)
SIZING = "risk"
RISK_PCT = _rules.ARTICLE_RISK_PCT  # GG 348 (algorithms.gap_and_go_rules)
MAX_POSITION_PCT = _rules.ARTICLE_MAX_POSITION_PCT  # GG 395
#: the ``fraction`` sizing: portfolio value per name
POSITION_FRACTION = 0.10
#: the strategy's MAX GROSS EXPOSURE, a multiple of the portfolio value: TOP_N (5) names of at
#: most MAX_POSITION_PCT (10%) each; every entry order is cut to stay within it
MAX_GROSS = 0.50

PIPELINE_NAME = "gap_and_go"
PARAM_BOUNDS = {             # checked by params.load_params: (min, max) inclusive, None = open
    "VARIANT": params.one_of("article", "author", "loose"),
    "MIN_PRICE": (0, None),
    "MAX_PRICE": params.above(0),
    "MIN_GAP_PCT": (0, None),
    "MIN_PM_VOLUME": (0, None),
    "MAX_SHARES_OUTSTANDING": params.above(0),
    "MIN_AVG_VOLUME": (0, None),
    "AVG_VOLUME_WINDOW": (2, None),
    "MIN_RVOL": (0, None),
    "MIN_SCORE": (0, None),
    "TOP_N": (1, None),
    "RANK_BY": params.one_of("score", "rvol", "gap"),
    "ENTRY_OFFSET": (0, None),
    "VOLUME_CONFIRM": (0, None),
    "VOLUME_AVERAGE": params.one_of("session", "daily"),
    "ENTRY_DEADLINE_MINUTES": (1, 390),
    "VWAP_STOP": params.above(0),
    "STOP_MODE": params.one_of("session", "entry"),
    "TARGET_PCT": params.above(0),
    "PRICE_DECIMALS": (0, 6),
    "FLAT_MINUTES_BEFORE_CLOSE": (1, 389),
    "SIZING": params.one_of("risk", "fraction"),
    "RISK_PCT": params.above(0, 1),
    "MAX_POSITION_PCT": params.above(0, 1),
    "POSITION_FRACTION": params.above(0, 1),
    "MAX_GROSS": params.above(0),
}

#: the constants each variant sets (``article``: the module values above)
VARIANTS = {
    "article": {},
    "author": {                                  # GAP_CONFIG['screening'] (GG 612-619)
        "MIN_GAP_PCT": 12.0,                     # 'min_gap_pct': 12
        "MIN_PM_VOLUME": 750_000,                # 'min_premarket_volume': 750_000
        "MAX_SHARES_OUTSTANDING": 40_000_000.0,  # 'max_float': 40_000_000
        "MIN_PRICE": 2.00,                       # 'min_price': 2.00
        "MAX_PRICE": 40.00,                      # 'max_price': 40.00
        "MIN_RVOL": 3.0,                         # 'min_rvol': 3.0
        "MIN_SCORE": 8.0,                        # c['score'] >= 8 (GG 647)
        "TOP_N": 5,                              # [:5] (GG 647)
        "ENTRY_DEADLINE_MINUTES": 90,            # 'max_entry_time': '11:00' (GG 625)
    },
    "loose": {                                   # gap_and_go before issue #11
        "MIN_GAP_PCT": 10.0,
        "MIN_PM_VOLUME": 50_000,
        "MAX_SHARES_OUTSTANDING": 100_000_000.0,
        "REQUIRE_SHARES_OUTSTANDING": False,
        "MIN_AVG_VOLUME": 0.0,
        "MIN_SCORE": 0.0,
        "ENTRY_DEADLINE_MINUTES": 90,
        "SIZING": "fraction",
    },
}


def variant_params(p, explicit=()):
    """``p`` (a namespace of parameters) with its ``VARIANT``'s constants, except those named
    in ``explicit`` (parameters the user set: they win)."""
    explicit = {name.upper() for name in explicit}
    for name, value in VARIANTS[p.VARIANT].items():
        if name not in explicit:
            setattr(p, name, value)
    return p


def make_pipeline(params=None):
    """The daily screen: factors.screens.gap_and_go_pipeline with the rules known before the
    open (no prior-close price floor: the price rule applies to the pre-market price)."""
    from factors.screens import gap_and_go_pipeline

    p = params
    get = (lambda name: getattr(p, name)) if p is not None else (lambda name: globals()[name])
    return gap_and_go_pipeline(
        min_price=None, window_length=get("AVG_VOLUME_WINDOW"),
        min_avg_volume=get("MIN_AVG_VOLUME") or None,
        max_shares=get("MAX_SHARES_OUTSTANDING"),
        require_shares=get("REQUIRE_SHARES_OUTSTANDING"))


#: sessions of daily history the default Pipeline needs before the first session
#: (20: the 20-session windows); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())


# ----------------------------------------------------------------------------- the day
@dataclass
class Trade:
    """One ranked name of the day: its entry order and the running session numbers."""

    entry_price: float
    order_id: str | None = None
    pm_bar_volume: float = float("nan")
    daily_avg_volume: float = float("nan")
    pv: float = 0.0          # sum of typical price x volume of the session's bars
    volume: float = 0.0      # sum of their volume
    bars: int = 0            # bars that traded
    fixed: set = field(default_factory=set)  # stop children set once (STOP_MODE "entry")

    @property
    def vwap(self):
        return self.pv / self.volume if self.volume > 0 else float("nan")

    def bar_average(self, p):
        if p.VOLUME_AVERAGE == "daily":
            return self.daily_avg_volume
        return self.volume / self.bars if self.bars else self.pm_bar_volume


def initialize(context):
    """Attach the pipeline, install costs, schedule the 15:45 exit."""
    p = params.load_params(context, globals())
    explicit = set(getattr(context, "gapline_overrides", None) or {}) | {
        k.upper() for k in params.extension_params()}
    variant_params(p, explicit)
    common.prepare(context, p, make_pipeline(p), PIPELINE_NAME)
    algo.schedule_function(flatten, algo.date_rules.every_day(),
                           algo.time_rules.market_close(minutes=p.FLAT_MINUTES_BEFORE_CLOSE))
    context.session = None
    context.trades = {}
    context.flat = False


def before_trading_start(context, data):
    """Take today's pipeline output; reset the intraday state."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)
    context.session = None
    context.trades = {}
    context.flat = False


def handle_data(context, data):
    """09:31: screen, rank and place the buy stops; every later bar: the session's VWAP and
    bar volume, then the amended stops, the cancels after an exit or the entry deadline."""
    session = session_of(data.current_dt)
    if context.session != session:
        context.session = session
        open_trades(context, data)
        return
    if not context.trades or context.flat:
        return
    update_tape(context, data)
    manage(context, data)


def _minutes_since_open(context, now):
    open_ = context.trading_calendar.session_open(context.session)
    return int((pd.Timestamp(now) - open_) / pd.Timedelta(minutes=1))


def morning_table(context, data) -> pd.DataFrame:
    """The pipeline columns and today's pre-market summary of every candidate (read after the
    open only: ``ExtendedHours`` refuses it before 09:30)."""
    cands = context.candidates
    assets = list(cands.index)
    pm = ExtendedHours.for_algorithm(context).premarket_now(context, data, assets)
    return pd.DataFrame({
        "prior_close": cands["prior_close"].astype(float),
        "avg_volume": cands["avg_volume"].astype(float),
        "shares_outstanding": cands["shares_outstanding"].astype(float),
        "pm_last": pm["last"].astype(float), "pm_high": pm["high"].astype(float),
        "pm_volume": pm["volume"].astype(float), "pm_bars": pm["bars"].astype(float),
        "pm_dollar_volume": pm["dollar_volume"].astype(float),
        "sid": [a.sid for a in assets],
    }, index=cands.index)


def open_trades(context, data):
    """The 09:31 decision: rank today's gappers, place a volume-confirmed buy stop with its
    bracket for each."""
    p = context.params
    context.trades = {}
    if len(context.candidates) == 0:
        algo.record(candidates=0, watch=0, ranked=0)
        return
    screened = screen_gaps(morning_table(context, data), p)
    held = set(common.positions(context))
    ranked = rank_gaps(screened[~screened.index.isin(held)], p)
    algo.record(candidates=len(screened), watch=int(screened["passes"].sum()),
                ranked=len(ranked))
    if ranked.empty:
        return
    for asset, row in ranked.iterrows():
        with np.errstate(invalid="ignore", divide="ignore"):
            pm_bar = row["pm_volume"] / row["pm_bars"] if row["pm_bars"] > 0 else float("nan")
        context.trades[asset] = Trade(
            entry_price=round(row["pm_high"] + p.ENTRY_OFFSET, p.PRICE_DECIMALS),
            pm_bar_volume=float(pm_bar), daily_avg_volume=float(row["avg_volume"]))
    update_tape(context, data)  # the 09:31 bar
    equity = float(context.portfolio.portfolio_value)
    for asset, row in ranked.iterrows():
        trade = context.trades[asset]
        vwap = trade.vwap
        if not np.isfinite(vwap):  # no regular trade yet: the pre-market VWAP
            vwap = row["pm_dollar_volume"] / row["pm_volume"]
        stop = round(p.VWAP_STOP * vwap, p.PRICE_DECIMALS)
        if p.SIZING == "risk":
            shares = position_size(equity, trade.entry_price, stop, row["gap_pct"],
                                   row["rvol"], row["shares_outstanding"],
                                   risk_pct=p.RISK_PCT, max_position_pct=p.MAX_POSITION_PCT)
        else:
            shares = int(p.POSITION_FRACTION * equity / trade.entry_price)
        if shares <= 0 or not stop > 0:
            continue
        style = Stop(trade.entry_price,
                     min_volume=confirm_volume(trade.bar_average(p), p.VOLUME_CONFIRM))
        bracket = Bracket(stop_price=stop, target_pct=p.TARGET_PCT, decimals=p.PRICE_DECIMALS)
        trade.order_id = place(context, asset, shares, style, bracket=bracket,
                               max_gross=p.MAX_GROSS, price=trade.entry_price)


def update_tape(context, data):
    """Add the current bar to each ranked name's session VWAP (typical price x volume) and
    bar-volume average (bars without a trade add nothing)."""
    assets = list(context.trades)
    bars = data.current(assets, ["high", "low", "close", "volume"])
    for a in assets:
        h, lo = bars.at[a, "high"], bars.at[a, "low"]
        c, v = bars.at[a, "close"], bars.at[a, "volume"]
        if np.isfinite(c) and v > 0:
            t = context.trades[a]
            t.pv += (h + lo + c) / 3.0 * v
            t.volume += v
            t.bars += 1


def manage(context, data):
    """After each bar: cancel an entry whose exit has filled or whose deadline has come, keep
    the buy stop's volume threshold and the protective stops on the session's numbers."""
    from zipline.api import cancel_order, get_open_orders

    p = context.params
    book = book_of(context)
    minute = _minutes_since_open(context, data.current_dt)
    held = common.positions(context)
    for asset, trade in context.trades.items():
        if trade.order_id is None:
            continue
        entry = context.blotter.orders.get(trade.order_id)
        pos = held.get(asset)
        amount = pos.amount if pos is not None else 0
        if entry is not None and entry.open:
            if amount < entry.filled or minute >= p.ENTRY_DEADLINE_MINUTES:
                cancel_order(trade.order_id)  # an exit filled, or no entries after the deadline
            elif trade.order_id not in book.triggered:
                book.amend(trade.order_id, Stop(
                    trade.entry_price,
                    min_volume=confirm_volume(trade.bar_average(p), p.VOLUME_CONFIRM)))
        if amount <= 0 or not trade.volume > 0:
            continue
        stop = round(p.VWAP_STOP * trade.vwap, p.PRICE_DECIMALS)
        if not stop > 0:
            continue
        for o in get_open_orders(asset):
            if book.parent_of.get(o.id) != trade.order_id or not isinstance(book.style(o.id), Stop):
                continue
            if p.STOP_MODE == "session" or o.id not in trade.fixed:
                book.amend(o.id, Stop(stop))
                trade.fixed.add(o.id)


def flatten(context, data):
    """15:45: cancel open orders and sell everything (the closing auction takes the rest)."""
    context.flat = True
    common.close_positions(context, data)

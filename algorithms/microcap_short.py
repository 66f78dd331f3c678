"""Microcap gap-up short: fade penny stocks that gapped up pre-market, from the opening cross.

The reference is ``cjdietl/microcap_short`` (``microshort.py``; its README is
``../shared/references/000_b6ec8f3297f30e2b.txt``: "All stocks, which gapped up above 2 stddev
of their historical returns are ranked and shorted at the market open", line 9). Each rule below
names the reference function it comes from.

Rules
-----
* universe (``factors.screens.microcap_short_pipeline``, data through yesterday): common
  stocks with a prior close in ``(0, MAX_PRICE]`` (a gap-up priced at most $5 had a lower prior
  close), ``sigma`` (std of 100 days of daily returns) and ``ema20`` known;
* 09:25 ET -- the decision (``FireOrders`` runs at ``TimeRules.At(9, 25)``), from the bundle's
  pre-market bars that started before 09:25 (``ExtendedHours.premarket_cut``): the price is the
  last pre-market price (``security.Open`` at 09:25); ``MIN_PRICE < price <= MAX_PRICE``
  (``SelectSymbols``: ``Price > 0.1 & Price <= 5``); ``price >= ema20`` (``todayopen < ema:
  continue``); ``gap = price / prior_close - 1`` and ``gap / sigma >= MIN_GAP_SIGMAS`` (2);
* the ``TOP_GAPS`` (50) largest gaps (``numberOfGappers``) are ranked by pre-market dollar
  volume, ``close x volume`` over the 30 minutes before 09:25 (``History(s,
  TimeSpan.FromMinutes(30), Resolution.Minute)``; a name without bars there is dropped);
* each ranked name is sized ``SHORT_FRACTION x portfolio value / number of ranked names``
  shares at the decision price (``available/len(StocksToTrade)/sec.Price``, rounded) and the
  first ``MAX_POSITIONS`` (5, ``numberOfStocks``) are shorted with market-on-open orders
  (``MarketOnOpenOrder``), skipping names the cost model cannot short (locate);
* every fill gets a resting buy stop at ``round(fill x (1 + STOP_PCT), 2)`` for the filled
  shares (``OnOrderEvent``: ``StopMarketOrder(..., round(fill.FillPrice*1.2, 2))``), live from
  the opening print: a bar whose high reaches it fills at the stop, or at its open when it
  opens above;
* 12:00: cancel the stops and cover everything but the hedge (``CoverShorts``: ``Liquidate``
  every holding ``if not str(s) == 'SPY'``); anything a volume cap leaves open goes to the
  closing auction (every gapline strategy is flat by the close, but for the hedge);
* the hedge: a long ``HEDGE_SYMBOL`` (SPY) leg, rebalanced every Monday at 09:35 to
  ``HEDGE_WEIGHT`` (40%) of the portfolio value (``RebalanceSPY``: ``SetHoldings('SPY',
  0.4)``, scheduled ``DateRules.Every(DayOfWeek.Monday), TimeRules.At(9, 35)``) with a market
  order for ``int(HEDGE_WEIGHT x portfolio value / price)`` shares less the shares held. It is
  held overnight: the 12:00 cover and the closing auction leave it (``overnight_assets``). The
  date rule lists calendar Mondays (LEAN ``DateRules.Every``: ``Time.EachDay(start,
  end).Where(date => hash.Contains(date.DayOfWeek))``); unlike ``WeekStart("SPY")`` (zipline's
  ``week_start``) it does not move a holiday Monday to Tuesday: a week whose Monday is a
  market holiday (Labor Day, MLK, Presidents' Day) has no rebalance and the leg keeps its
  shares. ``HEDGE_WEIGHT = 0``: no hedge leg, no order in it. Every hedge order is recorded as
  ``exit_reasons`` ``"hedge rebalance"`` (the label of its round trip). A bundle without
  ``HEDGE_SYMBOL`` runs without the leg (a warning says so).

zipline has no clock between ``before_trading_start`` (08:45) and the first bar (09:31): the
09:25 decision runs in ``before_trading_start`` and reads only data stamped before 09:25; its
orders are market-on-open, which cannot execute before the 09:30 cross.

Run::

    zipline run -f algorithms/microcap_short.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-11-20 -e 2024-12-31
"""
import logging

import numpy as np
import pandas as pd
import zipline.api as algo

from algorithms import common, history, params
from algorithms.execution import Bracket, MarketOnOpen, place
from algorithms.extended_hours import ExtendedHours
from bundles.market import session_of

log = logging.getLogger(__name__)

COSTS = "realistic"          # the reference README names the spread and borrow as its
                             # backtest's flaws (000_b6ec8f3297f30e2b.txt line 7); "published"
                             # reproduces the reference's own backtest
MIN_PRICE = 0.10             # decision price strictly above (SelectSymbols: Price > 0.1)
MAX_PRICE = 5.00             # decision price at most (SelectSymbols: Price <= 5)
MIN_GAP_SIGMAS = 2.0         # FireOrders: "if gap/sigma < 2: continue"
TOP_GAPS = 50                # numberOfGappers = 50: largest gaps kept before the ranking
MAX_POSITIONS = 5            # numberOfStocks = 5
SHORT_FRACTION = 0.50        # "Due to Margin requirements, take only half"
STOP_PCT = 0.20              # OnOrderEvent: StopMarketOrder(round(fill.FillPrice*1.2, 2))
STOP_DECIMALS = 2            # the stop price in cents, as the reference rounds it
COVER_MINUTES_AFTER_OPEN = 150  # CoverShorts at TimeRules.At(12, 0): 12:00
# the SPY leg (cjdietl/microcap_short microshort.py; line numbers of that file):
#   line 25   self.AddEquity("SPY")
#   line 36   self.Schedule.On(self.DateRules.Every(DayOfWeek.Monday),self.TimeRules.At(9, 35),
#                              self.RebalanceSPY)
#   line 122  self.SetHoldings('SPY', 0.4)            (in RebalanceSPY, lines 120-122)
#   line 336  if not str(s) == 'SPY': self.Liquidate(s)  (CoverShorts keeps it: held overnight)
HEDGE_SYMBOL = "SPY"         # line 25 / 122: the hedge asset
HEDGE_WEIGHT = 0.40          # line 122 SetHoldings('SPY', 0.4): target 40% of portfolio value
                             # (long); 0 disables the leg
HEDGE_WEEKDAY = 0            # line 36 DateRules.Every(DayOfWeek.Monday): Monday (= 0) only
HEDGE_MINUTES_AFTER_OPEN = 5  # line 36 TimeRules.At(9, 35): 09:35
SIGMA_WINDOW = 100           # sessions of closes behind sigma (std of daily returns)
EMA_WINDOW = 60              # sessions behind the 20-day EMA (span 20)
PIPELINE_NAME = "microcap_short"
PARAM_BOUNDS = {             # checked by params.load_params: (min, max) inclusive, None = open
    "MIN_PRICE": (0, None),
    "MAX_PRICE": params.above(0),
    "MIN_GAP_SIGMAS": (0, None),
    "TOP_GAPS": (1, None),
    "MAX_POSITIONS": (1, None),
    "SHORT_FRACTION": params.above(0, 1),
    "STOP_PCT": params.above(0),
    "STOP_DECIMALS": (0, 6),
    "COVER_MINUTES_AFTER_OPEN": (1, 390),
    "HEDGE_WEIGHT": (0, 1),
    "HEDGE_WEEKDAY": (0, 4),
    "HEDGE_MINUTES_AFTER_OPEN": (1, 390),
    "SIGMA_WINDOW": (2, None),
    "EMA_WINDOW": (2, None),
}


def make_pipeline(params=None):
    """The daily screen: factors.screens.microcap_short_pipeline with the prior close in
    (0, MAX_PRICE] (the $0.10 floor applies to the 09:25 price, not to the prior close)."""
    from factors.screens import microcap_short_pipeline

    p = params
    return microcap_short_pipeline(min_price=0.0,
                                   max_price=p.MAX_PRICE if p else MAX_PRICE,
                                   sigma_window=p.SIGMA_WINDOW if p else SIGMA_WINDOW,
                                   ema_window=p.EMA_WINDOW if p else EMA_WINDOW)


#: sessions of daily history the default Pipeline needs before the first session
#: (100: SIGMA_WINDOW); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())
#: the exit reason recorded for every hedge order (analysis.roundtrips reads ``exit_reasons``;
#: a name, not a parameter: ``params.NOT_PARAMETERS``)
HEDGE_EXIT_REASON = "hedge rebalance"


def initialize(context):
    """Attach the pipeline, install costs, schedule the noon cover and the Monday hedge."""
    p = params.load_params(context, globals())
    common.prepare(context, p, make_pipeline(p), PIPELINE_NAME)
    algo.schedule_function(cover_all, algo.date_rules.every_day(),
                           algo.time_rules.market_open(minutes=p.COVER_MINUTES_AFTER_OPEN))
    context.hedge_asset = hedge_asset(p)
    context.hedge_orders = {}
    context.overnight_assets = frozenset() if context.hedge_asset is None else frozenset(
        {context.hedge_asset})
    if context.hedge_asset is not None:
        # every session at 09:35; rebalance_hedge acts on Mondays only (HEDGE_WEEKDAY)
        algo.schedule_function(rebalance_hedge, algo.date_rules.every_day(),
                               algo.time_rules.market_open(minutes=p.HEDGE_MINUTES_AFTER_OPEN))


def before_trading_start(context, data):
    """The 09:25 decision: short today's top pre-market gap-ups at the open."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)
    chosen = select_gap_ups(context, data)
    algo.record(candidates=len(context.candidates), signals=len(chosen))
    short_at_open(context, data, chosen)


def select_gap_ups(context, data):
    """The ranked gap-ups (``price``, ``gap``, ``zscore``, ``window_dollar_volume``, ``shares``),
    at most ``MAX_POSITIONS`` rows, from pre-market data stamped before 09:25."""
    p = context.params
    cands = context.candidates
    columns = ["price", "gap", "zscore", "window_dollar_volume", "sid", "shares"]
    if len(cands) == 0:
        return pd.DataFrame(columns=columns)
    assets = list(cands.index)
    now = context.get_datetime()
    session = context.trading_calendar.minute_to_session(now, direction="next")
    pm = ExtendedHours.for_algorithm(context).premarket_cut(session, assets, now)
    price = pm["last"].astype(float)
    prior = cands["prior_close"]
    gap = price / prior - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        zscore = gap / cands["sigma"]
    ok = ((price > p.MIN_PRICE) & (price <= p.MAX_PRICE) & (price >= cands["ema20"])
          & (zscore >= p.MIN_GAP_SIGMAS))
    table = pd.DataFrame({"price": price, "gap": gap, "zscore": zscore,
                          "window_dollar_volume": pm["window_dollar_volume"].astype(float),
                          "sid": [a.sid for a in assets]}, index=cands.index)[ok]
    top = table.sort_values(["gap", "sid"], ascending=[False, True]).head(p.TOP_GAPS)
    ranked = top[top["window_dollar_volume"] > 0].sort_values(
        ["window_dollar_volume", "sid"], ascending=[False, True])
    if ranked.empty:
        return ranked.assign(shares=[])
    available = p.SHORT_FRACTION * context.portfolio.portfolio_value
    ranked = ranked.assign(shares=[round(available / len(ranked) / px) for px in ranked["price"]])
    return ranked.head(p.MAX_POSITIONS)


def short_at_open(context, data, chosen):
    """Market-on-open shorts of the chosen names, each fill with its resting stop."""
    p = context.params
    if chosen.empty:
        return
    allowed = context.costs.new_short_allowed(data, list(chosen.index))
    bracket = Bracket(stop_pct=p.STOP_PCT, decimals=p.STOP_DECIMALS)
    for asset, row in chosen.iterrows():
        if allowed[asset] and row["shares"] > 0:
            place(context, asset, -int(row["shares"]), MarketOnOpen(), bracket)


def cover_all(context, data):
    """Cancel the stops and cover every short at noon (the rest goes to the closing auction);
    the hedge and its orders stay (``CoverShorts``: ``if not str(s) == 'SPY'``): it is in
    ``context.overnight_assets``, which :func:`common.close_positions` never closes."""
    common.close_positions(context, data)


# ----------------------------------------------------------------------------- the SPY hedge
def hedge_asset(p):
    """The hedge's asset, or None: ``HEDGE_WEIGHT = 0`` (no leg), or no ``HEDGE_SYMBOL`` in
    the bundle (a warning)."""
    from zipline.errors import SymbolNotFound

    if p.HEDGE_WEIGHT <= 0:
        return None
    try:
        return algo.symbol(p.HEDGE_SYMBOL)
    except SymbolNotFound:
        log.warning("microcap_short: no %s in the bundle, the hedge leg (HEDGE_WEIGHT=%g) is "
                    "off", p.HEDGE_SYMBOL, p.HEDGE_WEIGHT)
        return None


def is_hedge_day(now, weekday=HEDGE_WEEKDAY) -> bool:
    """Does the reference rebalance on the session of ``now``? Only on its weekday (Monday,
    ET): a holiday Monday's rebalance is not moved to Tuesday (``DateRules.Every`` lists
    calendar Mondays; there is no session to trade on)."""
    return session_of(now).weekday() == weekday


def hedge_order_amount(weight, portfolio_value, price, held) -> int:
    """Shares to order so that the hedge holds ``int(weight x portfolio_value / price)``
    shares (``SetHoldings``: a target percent of the portfolio value, whole shares, never
    above the weight); ``held``: the shares held now."""
    if not (np.isfinite(price) and price > 0 and np.isfinite(portfolio_value)):
        return 0
    target = max(0, int(weight * portfolio_value / price + 1e-9))
    return target - int(held)


def rebalance_hedge(context, data):
    """``RebalanceSPY`` on Mondays at 09:35: a market order bringing the hedge to
    ``HEDGE_WEIGHT`` of the portfolio value at the current price (it fills from the next bar,
    under the run's cost model like any order)."""
    asset = context.hedge_asset
    if asset is None or not is_hedge_day(context.get_datetime(), context.params.HEDGE_WEEKDAY):
        return
    if not common.tradable(data, [asset]):
        log.warning("%s: hedge %s cannot trade now, no rebalance", context.get_datetime(), asset)
        return
    held = common.positions(context).get(asset)
    amount = hedge_order_amount(context.params.HEDGE_WEIGHT,
                                float(context.portfolio.portfolio_value),
                                float(data.current(asset, "price")),
                                held.amount if held is not None else 0)
    order_id = place(context, asset, amount)
    if order_id is not None:
        context.hedge_orders[order_id] = HEDGE_EXIT_REASON
        algo.record(exit_reasons=dict(context.hedge_orders))

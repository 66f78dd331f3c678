"""Microcap gap-up short: fade penny stocks that gapped up on a pre-market pump.

Rules
-----
* universe (``factors.screens.microcap_short_pipeline``, data through yesterday): common
  stocks with ``MIN_PRICE < prior close <= MAX_PRICE`` (0.10 .. 5.00) and a known ``sigma``
  (std of daily returns) and ``ema20`` (20-day EMA of closes);
* 09:31 (first minute bar, end label 09:31): the reference price is the **latest pre-market
  price** of today (``pm_last`` of the bundle's extended-hours table, read through
  :class:`algorithms.extended_hours.ExtendedHours`, which refuses to serve it before the
  09:30 open), or the 09:30 open when the stock had no pre-market trade;
  ``gap = price / prior_close - 1``;
* skip when ``price < ema20`` or ``gap / sigma < MIN_GAP_SIGMAS`` (2);
* keep the ``TOP_GAPS`` (50) largest gaps, rank them by pre-market dollar volume (no
  pre-market: 0), and short at most ``MAX_POSITIONS`` (5), skipping names already held and
  names the cost model cannot short (locate / SSR);
* size: ``SHORT_FRACTION`` (50%) of the portfolio value split into ``MAX_POSITIONS`` equal
  dollar slices (one slice per name, so fewer names means less gross exposure), market
  orders placed at 09:31, filled from the 09:32 bar on;
* stop: a minute bar whose high reaches ``(1 + STOP_PCT)`` x the average fill price of the
  shares held *before* that bar (zipline's cost basis after the previous bar; a fill inside the
  bar may come after its high) triggers a market buy-to-cover on the next bar, cancelling what
  is left of the entry order; no re-entry that day;
* 12:00: cancel open orders and cover everything.

Run::

    zipline run -f algorithms/microcap_short.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-10-01 -e 2024-10-31
"""
import numpy as np
import pandas as pd
import zipline.api as algo

from algorithms import common, history, params
from algorithms.extended_hours import ExtendedHours

COSTS = "published"          # cost preset: zero | published | realistic
MIN_PRICE = 0.10             # prior close strictly above
MAX_PRICE = 5.00             # prior close at most
MIN_GAP_SIGMAS = 2.0         # gap / sigma must reach this
TOP_GAPS = 50                # largest gaps kept before the dollar-volume ranking
MAX_POSITIONS = 5
SHORT_FRACTION = 0.50        # of the portfolio value, over MAX_POSITIONS slices
STOP_PCT = 0.20              # stop at +20% over the average fill
ENTRY_MINUTE = 1             # 09:31 end label
COVER_MINUTES_AFTER_OPEN = 150  # 12:00
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
    "ENTRY_MINUTE": (1, 390),
    "COVER_MINUTES_AFTER_OPEN": (1, 390),
    "SIGMA_WINDOW": (2, None),
    "EMA_WINDOW": (2, None),
}


def make_pipeline(params=None):
    """The daily screen: factors.screens.microcap_short_pipeline."""
    from factors.screens import microcap_short_pipeline

    p = params
    return microcap_short_pipeline(min_price=p.MIN_PRICE if p else MIN_PRICE,
                                   max_price=p.MAX_PRICE if p else MAX_PRICE,
                                   sigma_window=p.SIGMA_WINDOW if p else SIGMA_WINDOW,
                                   ema_window=p.EMA_WINDOW if p else EMA_WINDOW)


#: sessions of daily history the default Pipeline needs before the first session
#: (100: SIGMA_WINDOW); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())


def initialize(context):
    """Attach the pipeline, install costs, schedule entry and cover."""
    p = params.load_params(context, globals())
    common.prepare(context, p, make_pipeline(p), PIPELINE_NAME)
    rules = algo.date_rules.every_day()
    algo.schedule_function(short_gap_ups, rules,
                           algo.time_rules.market_open(minutes=p.ENTRY_MINUTE))
    algo.schedule_function(cover_all, rules,
                           algo.time_rules.market_open(minutes=p.COVER_MINUTES_AFTER_OPEN))
    context.stopped = set()
    context.last_amount = {}
    context.monitoring = False


def before_trading_start(context, data):
    """Take today's pipeline output; reset the day's stop book-keeping."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)
    context.stopped = set()


def select_gap_ups(context, data):
    """Today's shorts (ranked) from the pre-market/open prices; a DataFrame per chosen name."""
    p = context.params
    cands = context.candidates
    if len(cands) == 0:
        return cands.assign(price=[], gap=[], pm_dollar_volume=[])
    assets = list(cands.index)
    pm = ExtendedHours.for_algorithm(context).premarket_now(context, data, assets)
    price = pm["last"].astype(float)
    no_premarket = list(price.index[price.isna()])
    if no_premarket:  # the open stands in only where there was no pre-market trade
        price[no_premarket] = data.current(no_premarket, "open").astype(float)
    prior = cands["prior_close"]
    gap = price / prior - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        zscore = gap / cands["sigma"]
    ok = ((prior > p.MIN_PRICE) & (prior <= p.MAX_PRICE) & price.notna()
          & (price >= cands["ema20"]) & (zscore >= p.MIN_GAP_SIGMAS))
    table = pd.DataFrame({"price": price, "gap": gap, "zscore": zscore,
                          "pm_dollar_volume": pm["dollar_volume"].fillna(0.0).astype(float),
                          "sid": [a.sid for a in assets]}, index=cands.index)[ok]
    held = {a for a, pos in context.portfolio.positions.items() if pos.amount}
    table = table[~table.index.isin(held)]
    top = table.sort_values(["gap", "sid"], ascending=[False, True]).head(p.TOP_GAPS)
    return top.sort_values(["pm_dollar_volume", "gap", "sid"],
                           ascending=[False, False, True]).head(p.MAX_POSITIONS)


def short_gap_ups(context, data):
    """Short equal dollar slices of the top pre-market gap-ups."""
    p = context.params
    chosen = select_gap_ups(context, data)
    algo.record(candidates=len(context.candidates), signals=len(chosen))
    if chosen.empty:
        return
    allowed = context.costs.new_short_allowed(data, list(chosen.index))
    slice_value = p.SHORT_FRACTION * context.portfolio.portfolio_value / p.MAX_POSITIONS
    placed = common.order_value_many(data, {a: -slice_value for a in chosen.index if allowed[a]})
    context.monitoring = bool(placed) or context.monitoring


def handle_data(context, data):
    """Every minute between entry and noon: check the stops of open shorts."""
    if context.monitoring:
        check_stops(context, data)


def check_stops(context, data):
    """Cover a short when a bar's high reaches +STOP_PCT over its average fill."""
    held_before = context.last_amount  # asset -> (shares, cost basis) after the previous bar
    shorts = {a: pos for a, pos in common.positions(context).items()
              if pos.amount < 0 and a not in context.stopped}
    context.last_amount = {a: (pos.amount, pos.cost_basis) for a, pos in shorts.items()}
    # only shares held before this bar: a fill in this bar may come after the bar's high
    armed = [a for a in shorts if held_before.get(a, (0, 0.0))[0] < 0]
    if not armed:
        return
    for a in armed:
        # at most MAX_POSITIONS names: a scalar read each is ~5x cheaper than data.current's
        # per-call pandas Series, and this runs every minute of the morning
        high = data.current(a, "high")
        stop = held_before[a][1] * (1.0 + context.params.STOP_PCT)
        if np.isfinite(high) and high >= stop:
            common.cancel_open_orders(context, [a])
            algo.order(a, -shorts[a].amount)
            context.stopped.add(a)
            context.last_amount.pop(a, None)


def cover_all(context, data):
    """Cancel open orders and cover every short at noon."""
    context.monitoring = False
    context.last_amount = {}
    common.close_positions(context, data)

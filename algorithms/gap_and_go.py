"""Gap & Go: buy stocks that gapped up 10%+ on pre-market volume when they break the
pre-market high with volume, before 11:00.

Rules
-----
* universe (``factors.screens.gap_and_go_pipeline``, data through yesterday): common stocks
  with a prior close >= ``MIN_PRICE``;
* 09:31 (first minute bar, end label 09:31) -- the watchlist: today's pre-market summary (the
  bundle's extended-hours table through :class:`algorithms.extended_hours.ExtendedHours`, which
  refuses it before the open) must show ``pm_volume >= MIN_PM_VOLUME``; the gap uses the
  latest pre-market price (``pm_last``): ``pm_last / prior_close - 1 >= MIN_GAP``; the price
  must be within ``MIN_PRICE .. MAX_PRICE``; ``shares_outstanding <= MAX_SHARES_OUTSTANDING``
  where known (unknown passes). Names without a pre-market trade never qualify;
* entry, each minute bar up to 11:00 (end label): bar ``close > pm_high`` (the break of the
  pre-market high) and bar ``volume >= VOLUME_CONFIRM x`` the average volume of this
  session's earlier bars (first bar: the average pre-market bar volume). Market order for
  ``POSITION_FRACTION`` of the portfolio value, filled from the next bar; at most
  ``MAX_POSITIONS`` names a day, one entry per name a day;
* exits, checked on every bar for the shares held before that bar: stop when the bar's
  close falls below ``VWAP_STOP`` (0.97) x the session VWAP (typical price x volume of the
  session's minute bars since the open, accumulated bar by bar); target when the close reaches
  ``(1 + TARGET_PCT)`` x the average fill (cost basis after the previous bar). Market
  orders, filled on the next bar;
* 15:45: cancel open orders, sell everything.

Run::

    zipline run -f algorithms/gap_and_go.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-10-01 -e 2024-10-31
"""
import numpy as np
import pandas as pd
import zipline.api as algo

from algorithms import common, history, params
from bundles.market import session_of
from algorithms.extended_hours import ExtendedHours

COSTS = "published"          # cost preset: zero | published | realistic
MIN_GAP = 0.10               # pre-market gap over the prior close
MIN_PM_VOLUME = 50_000       # shares traded pre-market
MIN_PRICE = 1.0
MAX_PRICE = 50.0
MAX_SHARES_OUTSTANDING = 100e6  # where known
VOLUME_CONFIRM = 2.0         # breakout bar volume vs the session's average bar so far
ENTRY_DEADLINE_MINUTES = 90  # last signal bar: 11:00 end label
VWAP_STOP = 0.97
TARGET_PCT = 0.15
POSITION_FRACTION = 0.10     # of the portfolio value per name
MAX_POSITIONS = 5
FLAT_MINUTES_BEFORE_CLOSE = 15  # 15:45
PIPELINE_NAME = "gap_and_go"
PARAM_BOUNDS = {             # checked by params.load_params: (min, max) inclusive, None = open
    "MIN_GAP": (0, None),
    "MIN_PM_VOLUME": (0, None),
    "MIN_PRICE": (0, None),
    "MAX_PRICE": params.above(0),
    "MAX_SHARES_OUTSTANDING": params.above(0),
    "VOLUME_CONFIRM": (0, None),
    "ENTRY_DEADLINE_MINUTES": (1, 390),
    "VWAP_STOP": params.above(0),
    "TARGET_PCT": params.above(0),
    "POSITION_FRACTION": params.above(0, 1),
    "MAX_POSITIONS": (1, None),
    "FLAT_MINUTES_BEFORE_CLOSE": (1, 389),
}


def make_pipeline(params=None):
    """The daily screen: factors.screens.gap_and_go_pipeline."""
    from factors.screens import gap_and_go_pipeline

    return gap_and_go_pipeline(min_price=params.MIN_PRICE if params else MIN_PRICE)


#: sessions of daily history the default Pipeline needs before the first session
#: (20: the 20-session windows); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())


def initialize(context):
    """Attach the pipeline, install costs, schedule the end-of-day flattening."""
    p = params.load_params(context, globals())
    common.prepare(context, p, make_pipeline(p), PIPELINE_NAME)
    algo.schedule_function(flatten, algo.date_rules.every_day(),
                           algo.time_rules.market_close(minutes=p.FLAT_MINUTES_BEFORE_CLOSE))
    context.session = None


def before_trading_start(context, data):
    """Take today's pipeline output; reset the intraday state."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)
    context.session = None
    context.watch = pd.DataFrame()       # watchlist: pm_high, pm_avg_bar_volume per asset
    context.vwap = {}                    # asset -> [sum(price x volume), sum(volume), bars]
    context.entered = set()
    context.exited = set()
    context.last_amount = {}


def handle_data(context, data):
    """Every minute: build the watchlist at the first bar, then VWAP, entries and exits."""
    now = data.current_dt
    session = session_of(now)
    if context.session != session:
        context.session = session
        build_watchlist(context, data)
    if context.watch.empty:
        return
    in_entry_window = _minutes_since_open(context, now) <= context.params.ENTRY_DEADLINE_MINUTES
    if not in_entry_window and not (context.entered - context.exited):
        return  # nothing left to enter or manage today
    update_vwap(context, data)
    manage_exits(context, data)
    if in_entry_window:
        find_breakouts(context, data)


def _minutes_since_open(context, now):
    open_ = context.trading_calendar.session_open(context.session)
    return int((pd.Timestamp(now) - open_) / pd.Timedelta(minutes=1))


def build_watchlist(context, data):
    """Gappers of the day from the pre-market summary (read after the open only)."""
    p = context.params
    cands = context.candidates
    context.watch = pd.DataFrame()
    if len(cands) == 0:
        algo.record(candidates=0, watch=0)
        return
    assets = list(cands.index)
    pm = ExtendedHours.for_algorithm(context).premarket_now(context, data, assets)
    price = pm["last"].astype(float)
    gap = price / cands["prior_close"] - 1.0
    shares = cands["shares_outstanding"]
    ok = ((pm["volume"] >= p.MIN_PM_VOLUME) & (gap >= p.MIN_GAP)
          & (price >= p.MIN_PRICE) & (price <= p.MAX_PRICE)
          & (shares.isna() | (shares <= p.MAX_SHARES_OUTSTANDING)))
    watch = pd.DataFrame({
        "pm_high": pm["high"].astype(float),
        "pm_bar_volume": (pm["volume"] / pm["bars"]).astype(float),
        "gap": gap,
    }, index=cands.index)[ok]
    held = {a for a, pos in context.portfolio.positions.items() if pos.amount}
    context.watch = watch[~watch.index.isin(held)]
    context.vwap = {a: [0.0, 0.0, 0] for a in context.watch.index}
    algo.record(candidates=len(cands), watch=len(context.watch))


def update_vwap(context, data):
    """Add the current bar to each watched name's session VWAP (batched read)."""
    assets = list(context.vwap)
    bars = data.current(assets, ["high", "low", "close", "volume"])
    context.bar = bars
    for a in assets:
        h, lo = bars.at[a, "high"], bars.at[a, "low"]
        c, v = bars.at[a, "close"], bars.at[a, "volume"]
        if np.isfinite(c) and v > 0:  # no trade this minute (halt, sparse name): nothing to add
            acc = context.vwap[a]
            acc[0] += (h + lo + c) / 3.0 * v
            acc[1] += v
            acc[2] += 1


def _vwap(context, asset):
    acc = context.vwap.get(asset)
    return acc[0] / acc[1] if acc and acc[1] > 0 else np.nan


def find_breakouts(context, data):
    """Buy names whose bar closes above the pre-market high on confirming volume."""
    p = context.params
    open_names = set(common.positions(context))
    room = p.MAX_POSITIONS - len(context.entered)
    if room <= 0:
        return
    bars = context.bar
    buys = []
    for a, row in context.watch.iterrows():
        if a in context.entered or a in open_names:
            continue
        c, v = bars.at[a, "close"], bars.at[a, "volume"]
        acc = context.vwap[a]
        prior_bars = acc[2] - (1 if np.isfinite(c) and v > 0 else 0)
        prior_volume = acc[1] - (v if np.isfinite(c) and v > 0 else 0)
        ref = prior_volume / prior_bars if prior_bars > 0 else row["pm_bar_volume"]
        if np.isfinite(c) and c > row["pm_high"] and v >= p.VOLUME_CONFIRM * ref:
            buys.append(a)
    for a in buys[:room]:
        value = p.POSITION_FRACTION * context.portfolio.portfolio_value
        if common.order_value_many(data, {a: value}):
            context.entered.add(a)


def manage_exits(context, data):
    """Sell on a close below VWAP x VWAP_STOP or at the +TARGET_PCT target."""
    p = context.params
    held_before = context.last_amount  # asset -> (shares, cost basis) after the previous bar
    longs = {a: pos for a, pos in common.positions(context).items()
             if pos.amount > 0 and a not in context.exited}
    context.last_amount = {a: (pos.amount, pos.cost_basis) for a, pos in longs.items()}
    for a, pos in longs.items():
        before = held_before.get(a, (0, 0.0))
        if before[0] <= 0 or a not in context.vwap:
            continue  # not held before this bar (or not today's trade)
        c = context.bar.at[a, "close"]
        if not np.isfinite(c):
            continue
        stop = c < p.VWAP_STOP * _vwap(context, a)
        target = c >= (1.0 + p.TARGET_PCT) * before[1]
        if stop or target:
            common.cancel_open_orders(context, [a])
            algo.order(a, -pos.amount)
            context.exited.add(a)
            context.last_amount.pop(a, None)


def flatten(context, data):
    """Cancel open orders and sell everything before the close."""
    context.exited |= context.entered
    common.close_positions(context, data)

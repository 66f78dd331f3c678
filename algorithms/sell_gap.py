"""Sell-on-gap: short liquid stocks that gap below their prior low and 20-day average.

QuantRocket's ``sell-gap`` strategy, rule for rule:

* universe (``factors.screens.sell_gap_pipeline``): common stocks, top decile of 30-day dollar
  volume, 10 < close < 2000, close above its 20-day average (all as of the prior session);
* 09:31 (the first minute bar, zipline end label 09:31 = the 09:30-09:31 bar): today's open
  is that bar's open; signal ``open < prior_low - std`` and ``open < mavg``; keep the top
  ``TOP_N`` (10) by ``std``;
* 09:40: short ``POSITION_VALUE`` ($50,000) of each with a market order (fills on the 09:41
  bar);
* 15:55: cancel what is still open and close every position.

Run::

    zipline run -f algorithms/sell_gap.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-10-01 -e 2024-10-31
    zipline -x costs=realistic run -f algorithms/sell_gap.py ...   # another cost preset

or from Python: ``algorithms.runner.run("sell_gap", start, end, costs="realistic")``.

Robustness: a candidate without a 09:30 bar (halt, no trade) has a NaN open and no signal;
names that cannot trade at 09:40 (no price, delisted) or cannot be shorted under the cost
model's locate/SSR rules are skipped; open orders are cancelled at the end of the day, so a
partially filled entry stays partial; positions that could not be closed are retried the next
day at 15:55 (zipline closes delisted names itself).
"""
import zipline.api as algo

from algorithms import common, history, params

COSTS = "published"          # cost preset: zero | published | realistic (algorithms.costs)
TOP_N = 10                   # shorts per day, largest std first
POSITION_VALUE = 50_000.0    # dollars shorted per name
SIGNAL_MINUTE = 1            # minutes after the open: 09:31 bar end label (09:30 open)
ENTRY_MINUTE = 10            # minutes after the open: 09:40
EXIT_MINUTES_BEFORE_CLOSE = 5  # 15:55
PIPELINE_NAME = "sell_gap"
PARAM_BOUNDS = {             # checked by params.load_params: (min, max) inclusive, None = open
    "TOP_N": (1, None),
    "POSITION_VALUE": params.above(0),
    "SIGNAL_MINUTE": (1, 390),
    "ENTRY_MINUTE": (1, 390),
    "EXIT_MINUTES_BEFORE_CLOSE": (1, 389),
}


def make_pipeline():
    """The daily screen: factors.screens.sell_gap_pipeline."""
    from factors.screens import sell_gap_pipeline

    return sell_gap_pipeline()


#: sessions of daily history the default Pipeline needs before the first session
#: (63: the 63-session std); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())


def initialize(context):
    """Attach the pipeline, install costs, schedule signal, entry and exit."""
    p = params.load_params(context, globals())
    common.prepare(context, p, make_pipeline(), PIPELINE_NAME)
    rules = algo.date_rules.every_day()
    algo.schedule_function(find_down_gaps, rules,
                           algo.time_rules.market_open(minutes=p.SIGNAL_MINUTE))
    algo.schedule_function(short_down_gaps, rules,
                           algo.time_rules.market_open(minutes=p.ENTRY_MINUTE))
    algo.schedule_function(close_positions, rules,
                           algo.time_rules.market_close(minutes=p.EXIT_MINUTES_BEFORE_CLOSE))


def before_trading_start(context, data):
    """Take today's pipeline output (data through yesterday)."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)
    context.assets_to_short = []


def find_down_gaps(context, data):
    """Identify stocks that opened below prior_low - std and below their moving average."""
    candidates = context.candidates
    if len(candidates) == 0:
        algo.record(candidates=0, signals=0)
        return
    opens = data.current(list(candidates.index), "open")  # NaN when there is no 09:30 bar
    gapped_down = opens < (candidates["prior_low"] - candidates["std"])
    below_mavg = opens < candidates["mavg"]
    signals = candidates[gapped_down & below_mavg]
    context.assets_to_short = list(signals.sort_values("std", ascending=False)
                                   .index[:context.params.TOP_N])
    algo.record(candidates=len(candidates), signals=len(context.assets_to_short))


def short_down_gaps(context, data):
    """Short a fixed dollar amount of each gapped-down stock with market orders."""
    assets = context.assets_to_short
    if not assets:
        return
    allowed = context.costs.new_short_allowed(data, assets)
    targets = {a: -context.params.POSITION_VALUE for a in assets if allowed[a]}
    common.order_value_many(data, targets)


def close_positions(context, data):
    """Cancel open orders and close all positions."""
    common.close_positions(context, data)

"""Sell-on-gap: short liquid stocks that gap below their prior low and 20-day average.

QuantRocket's ``sell-gap`` strategy (blog post ``../shared/references/004_3c38ecd07eeb7bfa.txt``;
code ``quantrocket-codeload/sell-gap``: ``sell_gap/sell-gap.py`` @617e0f7/@8a71f66 and
``sell_gap/pipeline.py`` @1019a71), rule for rule -- each constant below quotes its rule:

* universe (``factors.screens.sell_gap_pipeline``): common stocks, top decile of 30-day dollar
  volume ranked across all assets (``LIQUIDITY_RANK``), 10 < close < 2000, close above its
  20-day average (all as of the prior session);
* 09:31 (the first minute bar, zipline end label 09:31 = the 09:30-09:31 bar): today's open
  is that bar's open; signal ``open < prior_low - std`` and ``open < mavg``; keep the top
  ``TOP_N`` (10) by ``std``;
* 09:40: short ``POSITION_VALUE`` ($50,000) of each with a market order (fills on the 09:41
  bar);
* the close: every position goes to the closing auction (a market-on-close order sent at the
  15:50 MOC cutoff by :mod:`algorithms.execution.close_out`, filled whole at the official
  close). QuantRocket's ``sell-gap.py`` sends market orders at 15:55 ("close positions 5
  minutes before the close", ``market_close(minutes=5)``); a market order that the volume
  cap leaves partly unfilled at 15:55 rides overnight, so gapline exits in the closing cross,
  which fills MOC orders whole. The difference is the 15:55 -> 16:00 drift.
* costs: ``published`` = the code's ``FixedBasisPointsSlippage(basis_points=3.0)`` and
  ``PerShare(cost=0.0)`` (sell-gap.py @617e0f7 and @8a71f66; the copy @1019a71 has both
  lines commented out).

Run::

    zipline run -f algorithms/sell_gap.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-10-01 -e 2024-10-31
    zipline -x costs=realistic run -f algorithms/sell_gap.py ...   # another cost preset
    zipline -x liquidity_rank=common_stock run -f algorithms/sell_gap.py ...  # 2024 ranking

or from Python: ``algorithms.runner.run("sell_gap", start, end, costs="realistic")``.

Robustness: a candidate without a 09:30 bar (halt, no trade) has a NaN open and no signal;
names that cannot trade at 09:40 (no price, delisted) or cannot be shorted under the cost
model's locate/SSR rules are skipped; open entry orders are cancelled at the MOC cutoff, so a
partially filled entry stays partial; a name without a closing print (halted) is reported
(``unclosed_at_close``) and closed at the next closing auction.
"""
import zipline.api as algo

from algorithms import common, history, params

COSTS = "published"          # cost preset: zero | published | realistic (algorithms.costs)
# "Limit to the top 10 by std": sort_values("std", ascending=False).iloc[:10] (sell-gap.py)
TOP_N = 10                   # shorts per day, largest std first
# "context.target_value_per_position = -50e3" (sell-gap.py before_trading_start)
POSITION_VALUE = 50_000.0    # dollars shorted per name
# "identify down gaps immediately after the opening": market_open(minutes=1) (sell-gap.py)
SIGNAL_MINUTE = 1            # minutes after the open: 09:31 bar end label (09:30 open)
# "at 9:40, short stocks that gapped down": market_open(minutes=10) (sell-gap.py); the post:
# "Entering positions 5-10 minutes after the open works better" (004 line 54)
ENTRY_MINUTE = 10            # minutes after the open: 09:40
# "AverageDollarVolume(window_length=30).percentile_between(90, 100)" without a mask (post
# line 21, pipeline.py): "all_assets"; "common_stock" ranks within common stocks (the 2024
# code); see factors.gap.LIQUIDITY_RANKING
LIQUIDITY_RANK = "all_assets"
PIPELINE_NAME = "sell_gap"
PARAM_BOUNDS = {             # checked by params.load_params: (min, max) inclusive, None = open
    "TOP_N": (1, None),
    "POSITION_VALUE": params.above(0),
    "SIGNAL_MINUTE": (1, 390),
    "ENTRY_MINUTE": (1, 390),
    "LIQUIDITY_RANK": params.one_of("all_assets", "common_stock"),
}


def make_pipeline(params=None):
    """The daily screen: factors.screens.sell_gap_pipeline, liquidity ranked as ``LIQUIDITY_RANK``."""
    from factors.screens import sell_gap_pipeline

    return sell_gap_pipeline(rank_within=params.LIQUIDITY_RANK if params else LIQUIDITY_RANK)


#: sessions of daily history the default Pipeline needs before the first session
#: (63: the 63-session std); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())


def initialize(context):
    """Attach the pipeline, install costs, schedule signal and entry (the exit is the closing
    auction, scheduled by common.prepare)."""
    p = params.load_params(context, globals())
    common.prepare(context, p, make_pipeline(p), PIPELINE_NAME)
    rules = algo.date_rules.every_day()
    algo.schedule_function(find_down_gaps, rules,
                           algo.time_rules.market_open(minutes=p.SIGNAL_MINUTE))
    algo.schedule_function(short_down_gaps, rules,
                           algo.time_rules.market_open(minutes=p.ENTRY_MINUTE))


def before_trading_start(context, data):
    """Take today's pipeline output (data through yesterday)."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)
    context.assets_to_short = []


def select_shorts(candidates, opens, top_n=TOP_N):
    """The names to short today, largest ``std`` first (sell-gap.py ``find_down_gaps``):

    * ``gapped_down = today_opens < (prior_lows - stds)`` -- "opened sufficiently below the
      prior day's low" (strict);
    * ``are_below_mavg = (today_opens < context.candidates["mavg"])`` -- "and are now below
      their moving averages" (strict);
    * "Limit to the top 10 by std": ``sort_values("std", ascending=False).iloc[:10]``.

    ``candidates``: the pipeline output (``prior_low``, ``std``, ``mavg``); ``opens``: today's
    open per candidate (NaN: no signal). Ties in ``std`` keep the pipeline's order.
    """
    if len(candidates) == 0:
        return []
    opens = opens.reindex(candidates.index)
    gapped_down = opens < (candidates["prior_low"] - candidates["std"])
    below_mavg = opens < candidates["mavg"]
    signals = candidates[gapped_down & below_mavg]
    return list(signals.sort_values("std", ascending=False, kind="stable").index[:top_n])


def find_down_gaps(context, data):
    """Identify stocks that opened below prior_low - std and below their moving average."""
    candidates = context.candidates
    if len(candidates) == 0:
        algo.record(candidates=0, signals=0)
        return
    opens = data.current(list(candidates.index), "open")  # NaN when there is no 09:30 bar
    context.assets_to_short = select_shorts(candidates, opens, context.params.TOP_N)
    algo.record(candidates=len(candidates), signals=len(context.assets_to_short))


def short_down_gaps(context, data):
    """Short a fixed dollar amount of each gapped-down stock with market orders."""
    assets = context.assets_to_short
    if not assets:
        return
    allowed = context.costs.new_short_allowed(data, assets)
    targets = {a: -context.params.POSITION_VALUE for a in assets if allowed[a]}
    common.order_value_many(data, targets)

"""Buy-on-gap: the long side of the sell-gap signal, bought one minute after the open.

Two variants, switched by ``VARIANT``:

``original`` (the 2020 published buy-on-gap run; ``factors.screens.buy_gap_pipeline``)
    buy when ``open < prior_low - std`` and ``open < mavg`` -- the same signal sell-gap shorts.
``revised``
    buy small down gaps that stay above trend: ``open < prior_low - std`` and
    ``open > mavg`` (the 20-day mean). The two mean conditions exclude each other, so
    "also requiring open > 20-day mean" replaces the below-average test.

Timing: the signal is read on the first minute bar (end label 09:31: the 09:30 open); orders
are placed in that same minute and fill on the 09:32 bar ("1 minute after the open"); every
position is sold at 15:59 and fills on the last bar (16:00 end label, the close). Top ``TOP_N``
by ``std``, ``POSITION_VALUE`` dollars each.

Run::

    zipline run -f algorithms/buy_gap.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-10-01 -e 2024-10-31
    zipline -x variant=revised run -f algorithms/buy_gap.py ...

Robustness as in :mod:`algorithms.sell_gap`.
"""
import zipline.api as algo

from algorithms import common, history, params

COSTS = "published"          # cost preset: zero | published | realistic
VARIANT = "original"         # "original" (open below mavg) | "revised" (open above mavg)
TOP_N = 10
POSITION_VALUE = 50_000.0
SIGNAL_MINUTE = 1            # 09:31 end label: the 09:30 bar
EXIT_MINUTES_BEFORE_CLOSE = 1  # order at 15:59, fills on the closing bar
PIPELINE_NAME = "buy_gap"
PARAM_BOUNDS = {             # checked by params.load_params: (min, max) inclusive, None = open
    "VARIANT": params.one_of("original", "revised"),
    "TOP_N": (1, None),
    "POSITION_VALUE": params.above(0),
    "SIGNAL_MINUTE": (1, 390),
    "EXIT_MINUTES_BEFORE_CLOSE": (1, 389),
}


def make_pipeline():
    """The daily screen: factors.screens.buy_gap_pipeline."""
    from factors.screens import buy_gap_pipeline

    return buy_gap_pipeline()


#: sessions of daily history the default Pipeline needs before the first session
#: (63: the 63-session std); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())


def initialize(context):
    """Attach the pipeline, install costs, schedule entry and exit."""
    p = params.load_params(context, globals())
    if p.VARIANT not in ("original", "revised"):
        raise ValueError(f"VARIANT must be 'original' or 'revised', got {p.VARIANT!r}")
    common.prepare(context, p, make_pipeline(), PIPELINE_NAME)
    rules = algo.date_rules.every_day()
    algo.schedule_function(buy_down_gaps, rules,
                           algo.time_rules.market_open(minutes=p.SIGNAL_MINUTE))
    algo.schedule_function(close_positions, rules,
                           algo.time_rules.market_close(minutes=p.EXIT_MINUTES_BEFORE_CLOSE))


def before_trading_start(context, data):
    """Take today's pipeline output (data through yesterday)."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)


def find_down_gaps(context, data):
    """The assets to buy today (top TOP_N by std) from the open of the 09:30 bar."""
    candidates = context.candidates
    if len(candidates) == 0:
        return []
    opens = data.current(list(candidates.index), "open")
    gapped_down = opens < (candidates["prior_low"] - candidates["std"])
    if context.params.VARIANT == "original":
        trend = opens < candidates["mavg"]
    else:
        trend = opens > candidates["mavg"]
    signals = candidates[gapped_down & trend]
    return list(signals.sort_values("std", ascending=False).index[:context.params.TOP_N])


def buy_down_gaps(context, data):
    """Buy a fixed dollar amount of each down gap right after the open."""
    assets = find_down_gaps(context, data)
    algo.record(candidates=len(context.candidates), signals=len(assets))
    common.order_value_many(data, {a: context.params.POSITION_VALUE for a in assets})


def close_positions(context, data):
    """Cancel open orders and sell everything at the close."""
    common.close_positions(context, data)

"""Buy-on-gap: buy liquid uptrending stocks that gap down, one minute after the open.

QuantRocket's blog post "buy the gap? sell the gap" (``../shared/references/
004_3c38ecd07eeb7bfa.txt``; the line numbers below are that file's). Two variants, switched
by ``VARIANT``:

``original`` (the first buy-on-gap backtest, whose losses motivated sell-gap)
    the post's only intraday rule, ``gapped_down = today_opens < (prior_lows - stds)``
    (line 39), and ``assets_to_buy = context.candidates[gapped_down]`` (line 41): **every**
    signal is bought. The post has no moving-average test on the open ("I inadvertently
    omitted such a rule", line 60) and no cap on the number of names (the top-10-by-std cap
    is in the sell-gap code only).
``revised``
    "requiring that stocks not only closed above their 20-day moving average the prior day,
    but also open above the moving average on the day of the down gap" (line 62):
    ``open < prior_low - std`` and ``open > mavg``. The revised signals are a subset of the
    original ones.

Both variants: the screen of the post (lines 13-30, ``factors.screens.buy_gap_pipeline``):
common stocks, top decile of 30-day dollar volume ranked across all assets
(``LIQUIDITY_RANK``), close above its 20-day mean, no price band. "I buy the stocks 1 minute
after the open and hold until the close" (line 43): the signal is read on the first minute
bar (end label 09:31: the 09:30 open), orders are placed in that same minute and fill on the
09:32 bar; every position goes to the closing auction (market-on-close at the 15:50 cutoff,
filled at the official close; :mod:`algorithms.execution.close_out`). The post gives no
position size; ``POSITION_VALUE`` is sell-gap's $50,000.

Run::

    zipline run -f algorithms/buy_gap.py -b polygon-demo --data-frequency minute \\
        --no-benchmark -s 2024-10-01 -e 2024-10-31
    zipline -x variant=revised run -f algorithms/buy_gap.py ...

Robustness as in :mod:`algorithms.sell_gap`.
"""
import zipline.api as algo

from algorithms import common, history, params

COSTS = "published"          # cost preset: zero | published | realistic
# "original": "gapped_down = today_opens < (prior_lows - stds)" (004 line 39) only;
# "revised": "also open above the moving average on the day of the down gap" (004 line 62)
VARIANT = "original"
# "assets_to_buy = context.candidates[gapped_down]" (004 line 41): every signal is bought.
# 0 = no cap (the post); N > 0 keeps the N largest std, as sell-gap's "top 10 by std" does
TOP_N = 0
# not in the post (no size given): sell-gap's "target_value_per_position = -50e3", long
POSITION_VALUE = 50_000.0
# "I buy the stocks 1 minute after the open" (004 line 43): the 09:30 bar (end label 09:31)
SIGNAL_MINUTE = 1
# "AverageDollarVolume(window_length=30).percentile_between(90, 100)" without a mask (004
# line 21): "all_assets"; "common_stock" ranks within common stocks (the 2024 sell-gap code)
LIQUIDITY_RANK = "all_assets"
PIPELINE_NAME = "buy_gap"
PARAM_BOUNDS = {             # checked by params.load_params: (min, max) inclusive, None = open
    "VARIANT": params.one_of("original", "revised"),
    "TOP_N": (0, None),
    "POSITION_VALUE": params.above(0),
    "SIGNAL_MINUTE": (1, 390),
    "LIQUIDITY_RANK": params.one_of("all_assets", "common_stock"),
}


def make_pipeline(params=None):
    """The daily screen: factors.screens.buy_gap_pipeline, liquidity ranked as ``LIQUIDITY_RANK``."""
    from factors.screens import buy_gap_pipeline

    return buy_gap_pipeline(rank_within=params.LIQUIDITY_RANK if params else LIQUIDITY_RANK)


#: sessions of daily history the default Pipeline needs before the first session
#: (63: the 63-session std); derived from its terms' window lengths, not a parameter
LOOKBACK_SESSIONS = history.pipeline_lookback(make_pipeline())


def initialize(context):
    """Attach the pipeline, install costs, schedule the entry (the exit is the closing
    auction, scheduled by common.prepare)."""
    p = params.load_params(context, globals())
    common.prepare(context, p, make_pipeline(p), PIPELINE_NAME)
    rules = algo.date_rules.every_day()
    algo.schedule_function(buy_down_gaps, rules,
                           algo.time_rules.market_open(minutes=p.SIGNAL_MINUTE))


def before_trading_start(context, data):
    """Take today's pipeline output (data through yesterday)."""
    context.candidates = algo.pipeline_output(PIPELINE_NAME)


def select_buys(candidates, opens, variant=VARIANT, top_n=TOP_N):
    """The names to buy today (see the module docstring).

    ``candidates``: the pipeline output (``prior_low``, ``std``, ``mavg``); ``opens``: today's
    open per candidate (NaN: no signal). Every comparison is strict. Returns the signals in
    the pipeline's order, or the ``top_n`` largest ``std`` first when ``top_n > 0``.
    """
    if variant not in ("original", "revised"):
        raise ValueError(f"variant must be 'original' or 'revised', got {variant!r}")
    if len(candidates) == 0:
        return []
    opens = opens.reindex(candidates.index)
    gapped_down = opens < (candidates["prior_low"] - candidates["std"])
    if variant == "revised":
        gapped_down &= opens > candidates["mavg"]
    signals = candidates[gapped_down]
    if top_n:
        signals = signals.sort_values("std", ascending=False, kind="stable").iloc[:top_n]
    return list(signals.index)


def find_down_gaps(context, data):
    """The assets to buy today from the open of the 09:30 bar."""
    candidates = context.candidates
    if len(candidates) == 0:
        return []
    opens = data.current(list(candidates.index), "open")  # NaN when there is no 09:30 bar
    return select_buys(candidates, opens, context.params.VARIANT, context.params.TOP_N)


def buy_down_gaps(context, data):
    """Buy a fixed dollar amount of each down gap right after the open."""
    assets = find_down_gaps(context, data)
    algo.record(candidates=len(context.candidates), signals=len(assets))
    common.order_value_many(data, {a: context.params.POSITION_VALUE for a in assets})

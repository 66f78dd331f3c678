"""One Pipeline per gap strategy: the daily screen and the inputs the intraday logic needs.

Every column is known before the open of the row's session (data through the previous
session). The gap itself -- today's open or pre-market price against these columns -- is
evaluated in the algorithm with :mod:`factors.gap`'s plain functions.

=========================  ==============================================================
pipeline                   intraday use of the columns
=========================  ==============================================================
sell_gap_pipeline          short if ``open < prior_low - std`` and ``open < mavg``
                           (QuantRocket sell-gap; top 10 by ``std``)
buy_gap_pipeline           buy every ``open < prior_low - std`` (the 2020 buy-on-gap run whose
                           failure motivated sell-gap); revised: and ``open > mavg``
microcap_short_pipeline    short penny gap-ups: ``gap_zscore(open, prior_close, sigma)``
                           large and price above ``ema20``
gap_and_go_pipeline        research: ``gap_class(gap_percent(open, prior_close))`` by
                           ``shares_class``, ``avg_range`` and ``relative_volume``; the Gap
                           & Go article's scanner on the pre-market price, gap, volume,
                           RVOL and score (``algorithms.gap_and_go.screen_gaps``)
=========================  ==============================================================
"""
from __future__ import annotations

from zipline.pipeline import Pipeline
from zipline.pipeline.data import EquityPricing
from zipline.pipeline.factors import AverageDollarVolume, SimpleMovingAverage

from .gap import (
    DEFAULT_LIQUIDITY_RANK,
    AverageRange,
    DailyReturnsStdDev,
    ExponentialMovingAverage,
    RelativeVolume,
    SharesOutstandingClass,
    _check_window,
    liquid_stocks,
    price_std,
)
from .reference import CommonStock, SharesOutstanding

__all__ = ["sell_gap_pipeline", "buy_gap_pipeline", "microcap_short_pipeline",
           "gap_and_go_pipeline"]


def _check_band(min_price, max_price):
    for name, value in (("min_price", min_price), ("max_price", max_price)):
        if value is not None and not value >= 0:
            raise ValueError(f"{name} must be >= 0 or None, got {value!r}")
    if min_price is not None and max_price is not None and not min_price < max_price:
        raise ValueError(f"min_price ({min_price}) must be below max_price ({max_price})")


def _all_of(*conditions):
    """The conjunction of the named screen conditions; ``None`` stands for "no condition"."""
    screen = None
    for condition in conditions:
        if condition is not None:
            screen = condition if screen is None else screen & condition
    return screen


def _price_band(close, min_price, max_price, include_max=False):
    """``min_price < close < max_price`` (``<= max_price`` with ``include_max``); an open end
    is ``None``; no band at all is ``None``."""
    above = close > min_price if min_price is not None else None
    if max_price is None:
        return above
    below = close <= max_price if include_max else close < max_price
    return _all_of(above, below)


# ----------------------------------------------------------------------------- gap down
# QuantRocket's buy/sell-gap screen, rule by rule. "post" is the blog post
# ../shared/references/004_3c38ecd07eeb7bfa.txt, "pipeline.py" is sell_gap/pipeline.py of
# quantrocket-codeload/sell-gap @1019a71 (the same lines in sell-gap.py's notebooks).
#: "liquid stocks only (top 10% by dollar volume)" (post line 14);
#: ``AverageDollarVolume(window_length=30).percentile_between(90, 100)`` (post line 21)
GAP_DOWN_LIQUIDITY_WINDOW = 30
#: ``mavg = SimpleMovingAverage(window_length=20, inputs=[EquityPricing.close])`` (post lines
#: 16-17); "closed above their 20-day moving average" (post line 15):
#: ``are_above_mavg = EquityPricing.close.latest > mavg`` (post line 22)
GAP_DOWN_MAVG_WINDOW = 20
#: ``"std": ExponentialWeightedMovingStdDev(inputs=[EquityPricing.close], window_length=63,
#: decay_rate=0.99)`` (pipeline.py); the post's ``stds = context.candidates["std"]`` (line 36)
GAP_DOWN_STD_WINDOW = 63
GAP_DOWN_STD_DECAY = 0.99
#: ``are_not_too_cheap = EquityPricing.close.latest > 10``, ``are_not_too_expensive =
#: EquityPricing.close.latest < 2000`` (pipeline.py; "price must be between 10 and 2000",
#: Part2-Universe-Selection.ipynb). Sell-gap only: the post's buy-on-gap screen (lines 24-30)
#: has no price band.
SELL_GAP_PRICE_BAND = (10.0, 2000.0)


def _gap_down_columns(close, mavg, std_window, std_decay):
    return {
        "prior_low": EquityPricing.low.latest,   # "prior_low": EquityPricing.low.latest
        "std": price_std(window_length=std_window, decay_rate=std_decay),
        "mavg": mavg,
        "close": close,
    }


def sell_gap_pipeline(rank_within=DEFAULT_LIQUIDITY_RANK, min_price=SELL_GAP_PRICE_BAND[0],
                      max_price=SELL_GAP_PRICE_BAND[1], above_mavg=True,
                      liquidity_window=GAP_DOWN_LIQUIDITY_WINDOW,
                      mavg_window=GAP_DOWN_MAVG_WINDOW, std_window=GAP_DOWN_STD_WINDOW,
                      std_decay=GAP_DOWN_STD_DECAY):
    """QuantRocket's sell-on-gap screen (``sell_gap/pipeline.py``).

    Columns
    -------
    prior_low : low of the previous session (split- and dividend-adjusted as of today, like every Pipeline price window)
    std : zipline ``ExponentialWeightedMovingStdDev(inputs=[close], window_length=63,
          decay_rate=0.99)`` -- std of adjusted closing prices, in dollars
    mavg : ``SimpleMovingAverage(inputs=[close], window_length=20)``
    close : previous close

    Screen
    ------
    ``are_common`` (``CommonStock()``; "common stocks only (no ETFs, ADRs, or preferred
    shares)", post line 13) & ``are_liquid`` (top decile of 30-day average dollar volume;
    ``rank_within="all_assets"``, the default, ranks across every asset as the post and its
    code do, ``"common_stock"`` ranks inside common stocks as QuantRocket's 2024 code does;
    see :func:`factors.gap.liquid_stocks`) & ``are_in_price_band`` (10 < close < 2000, both
    strict) & ``are_above_mavg`` (close > 20-day mean, strict; ``above_mavg=False`` drops it).
    """
    _check_band(min_price, max_price)
    _check_window("mavg_window", mavg_window)
    close = EquityPricing.close.latest
    mavg = SimpleMovingAverage(inputs=[EquityPricing.close], window_length=mavg_window)
    are_common = CommonStock()
    are_liquid = liquid_stocks(window_length=liquidity_window, rank_within=rank_within)
    are_in_price_band = _price_band(close, min_price, max_price)
    are_above_mavg = close > mavg
    return Pipeline(
        columns=_gap_down_columns(close, mavg, std_window, std_decay),
        screen=_all_of(are_common, are_liquid, are_in_price_band,
                       are_above_mavg if above_mavg else None),
    )


def buy_gap_pipeline(rank_within=DEFAULT_LIQUIDITY_RANK, min_price=None, max_price=None,
                     above_mavg=True, liquidity_window=GAP_DOWN_LIQUIDITY_WINDOW,
                     mavg_window=GAP_DOWN_MAVG_WINDOW, std_window=GAP_DOWN_STD_WINDOW,
                     std_decay=GAP_DOWN_STD_DECAY):
    """The 2020 published buy-on-gap screen (QuantRocket blog "buy the gap? sell the gap").

    The post's pipeline (``004_3c38ecd07eeb7bfa.txt`` lines 13-30): ``are_common_stocks &
    are_liquid & are_above_mavg`` -- the same named conditions, columns and liquidity ranking
    (across all assets by default) as :func:`sell_gap_pipeline`, and no price band unless
    ``min_price``/``max_price`` are given (the 10..2000 band is in the sell-gap code only).
    The algorithm buys ``open < prior_low - std`` (post line 39) after the open and sells in
    the closing auction.
    """
    return sell_gap_pipeline(rank_within=rank_within, min_price=min_price, max_price=max_price,
                             above_mavg=above_mavg, liquidity_window=liquidity_window,
                             mavg_window=mavg_window, std_window=std_window,
                             std_decay=std_decay)


def microcap_short_pipeline(min_price=0.10, max_price=5.00, sigma_window=100, ema_span=20,
                            ema_window=60, adv_window=20):
    """Penny-stock gap-up short: inputs for ``gap_zscore`` and the EMA trend test.

    Columns
    -------
    prior_close : previous close
    sigma : :class:`~factors.gap.DailyReturnsStdDev` -- population std of the 99 daily
            close-to-close returns of the last 100 sessions
    ema20 : :class:`~factors.gap.ExponentialMovingAverage` of closes, span 20 over 60
            sessions (NaN-aware)
    prior_high, prior_volume : previous session's high and volume
    adv : ``AverageDollarVolume(window_length=20)`` -- capacity / borrow sizing
    shares_outstanding : shares outstanding known before the session (dated Polygon
                         details, :mod:`factors.reference`); not the float

    Screen
    ------
    ``CommonStock()`` & ``min_price < close <= max_price`` (0.10 < close <= 5.00) & sigma
    known (at least two returns).
    """
    _check_band(min_price, max_price)
    close = EquityPricing.close.latest
    sigma = DailyReturnsStdDev(window_length=sigma_window)
    ema = ExponentialMovingAverage.from_span(span=ema_span, window_length=ema_window)
    are_common = CommonStock()
    are_penny_priced = (close > min_price) & (close <= max_price)
    have_sigma = sigma.notnull()
    screen = are_common & are_penny_priced & have_sigma
    return Pipeline(
        columns={
            "prior_close": close,
            "sigma": sigma,
            "ema20": ema,
            "prior_high": EquityPricing.high.latest,
            "prior_volume": EquityPricing.volume.latest,
            "adv": AverageDollarVolume(window_length=adv_window),
            "shares_outstanding": SharesOutstanding(),
        },
        screen=screen,
    )


def gap_and_go_pipeline(min_price=1.0, max_price=None, window_length=20, min_avg_volume=None,
                        max_shares=None, require_shares=False):
    """Gap & Go / gap-and-float research terms, and the Gap & Go article's rules that are
    known before the open.

    Columns
    -------
    prior_close, prior_high : previous session's close and high
    avg_range : :class:`~factors.gap.AverageRange` -- mean of (high - low) / close, 20 days
    avg_volume : ``SimpleMovingAverage(inputs=[volume], window_length=20)`` -- the article's
                 ``avg_volume_20d`` (``001_77709d99fd9024e0.txt`` line 107) and the base of
                 its pre-market RVOL (:func:`~factors.gap_and_go.premarket_rvol`, line 119)
    relative_volume : :class:`~factors.gap.RelativeVolume` -- last volume / its 20-day mean
    adv : ``AverageDollarVolume(window_length=20)``
    above_sma20 : ``close > SimpleMovingAverage(inputs=[close], window_length=20)``
    shares_outstanding : shares OUTSTANDING known before the session (dated Polygon details),
                         not the float (gapline has no dated float source; the article's
                         ``float_shares`` rules are applied to this column)
    shares_class : :class:`~factors.gap.SharesOutstandingClass` code (0 micro .. 4
                   institutional, -1 unknown)

    Screen
    ------
    ``are_common`` (``CommonStock()``) & ``have_close`` & ``are_above_min_price`` (prior close
    >= ``min_price``, 1.0; ``None`` drops it: the article's price rule is on the pre-market
    price) [& ``are_below_max_price``: close <= ``max_price``] [& ``are_liquid``: avg_volume
    >= ``min_avg_volume``, the article's "avg_volume_20d >= 100_000 # Minimum liquidity",
    line 107] [& ``are_small_float``: shares outstanding <= ``max_shares``, the article's
    "float_shares <= self.max_float", line 106; an unknown count passes unless
    ``require_shares``]. Bracketed conditions apply when their argument is given.
    """
    _check_band(min_price, max_price)
    _check_window("window_length", window_length)
    close = EquityPricing.close.latest
    avg_volume = SimpleMovingAverage(inputs=[EquityPricing.volume], window_length=window_length)
    shares = SharesOutstanding()
    are_common = CommonStock()
    have_close = close.notnull()
    are_above_min_price = close >= min_price if min_price is not None else None
    are_below_max_price = close <= max_price if max_price is not None else None
    are_liquid = avg_volume >= min_avg_volume if min_avg_volume is not None else None
    are_small_float = None
    if max_shares is not None:
        are_small_float = shares <= max_shares
        if not require_shares:
            are_small_float = are_small_float | shares.isnull()
    elif require_shares:
        are_small_float = shares.notnull()
    screen = _all_of(are_common, have_close, are_above_min_price, are_below_max_price,
                     are_liquid, are_small_float)
    return Pipeline(
        columns={
            "prior_close": close,
            "prior_high": EquityPricing.high.latest,
            "avg_range": AverageRange(window_length=window_length),
            "avg_volume": avg_volume,
            "relative_volume": RelativeVolume(window_length=window_length),
            "adv": AverageDollarVolume(window_length=window_length),
            "above_sma20": close > SimpleMovingAverage(inputs=[EquityPricing.close],
                                                       window_length=window_length),
            "shares_outstanding": shares,
            "shares_class": SharesOutstandingClass(),
        },
        screen=screen,
    )

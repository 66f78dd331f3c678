"""Pipeline terms and plain functions for the gap strategies.

Everything here that is a Pipeline term sees daily bars through the **previous** session
(Pipeline's one-session lag): on session ``D`` "close" means ``close(D-1)``, and window terms
use split- and dividend-adjusted prices as known at the end of ``D-1``. Anything that needs
today's open or pre-market price (the gap itself) cannot be a Pipeline term; those are plain
vectorised functions (:func:`gap_percent`, :func:`gap_zscore`, :func:`gap_class`) applied in
the algorithm to the pipeline output and today's prices.

Terms by strategy
-----------------
Sell-on-gap / buy-on-gap (QuantRocket): ``EquityPricing.low.latest`` (prior low),
zipline's own ``ExponentialWeightedMovingStdDev(inputs=[close], window_length=63,
decay_rate=0.99)`` (std of closing *prices*), ``SimpleMovingAverage(inputs=[close],
window_length=20)``, :func:`liquid_stocks`.

Microcap (penny) gap-up short: :class:`DailyReturnsStdDev` (sigma of daily returns),
:class:`ExponentialMovingAverage` (20-day EMA), :func:`gap_zscore`.

Gap & Go / gap-and-float research: :class:`AverageRange`, :class:`RelativeVolume`,
:class:`SharesOutstandingClass` / :func:`shares_outstanding_class`, :func:`gap_class`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from zipline.pipeline.classifiers import CustomClassifier
from zipline.pipeline.data import EquityPricing
from zipline.pipeline.factors import (
    AverageDollarVolume,
    CustomFactor,
    ExponentialWeightedMovingStdDev,
    SimpleMovingAverage,
)
from zipline.utils.math_utils import nanmean, nanstd, nansum

from .reference import CommonStock, PolygonReference

__all__ = [
    "AverageDollarVolume",
    "ExponentialWeightedMovingStdDev",
    "SimpleMovingAverage",
    "DailyReturnsStdDev",
    "ExponentialMovingAverage",
    "AverageRange",
    "RelativeVolume",
    "SharesOutstandingClass",
    "liquid_stocks",
    "price_std",
    "gap_percent",
    "gap_zscore",
    "gap_class",
    "shares_outstanding_class",
    "GAP_CLASSES",
    "SHARES_CLASSES",
    "LIQUIDITY_RANKING",
    "DEFAULT_LIQUIDITY_RANK",
    "GAP_CLASS_BINS",
    "GAP_TYPES",
]


# ----------------------------------------------------------------------------- validation
class _MinWindowMixin:
    """``window_length >= min_window_length`` checked when the term is constructed."""

    min_window_length = 2

    def _validate(self):
        super()._validate()
        if self.window_length < self.min_window_length:
            raise ValueError(
                f"{type(self).__name__} needs window_length >= {self.min_window_length}, "
                f"got {self.window_length}")


def _check_percentiles(min_percentile, max_percentile):
    for name, value in (("min_percentile", min_percentile), ("max_percentile", max_percentile)):
        if not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 100:
            raise ValueError(f"{name} must be a number between 0 and 100, got {value!r}")
    if not min_percentile < max_percentile:
        raise ValueError(f"min_percentile ({min_percentile}) must be below max_percentile "
                         f"({max_percentile})")


def _check_window(name, window_length, minimum=2):
    if not isinstance(window_length, (int, np.integer)) or window_length < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {window_length!r}")


# ----------------------------------------------------------------------------- liquidity
#: How :func:`liquid_stocks` ranks dollar volume. The post (``004_3c38ecd07eeb7bfa.txt``
#: line 21) and the stored sell-gap code (``sell_gap/pipeline.py`` @1019a71) rank with no mask
#: (the default: the published figures); QuantRocket's 2024 code ranks within common stocks.
LIQUIDITY_RANKING = {
    "all_assets": "rank among every asset alive in the bundle, ETFs and ADRs included (the "
                  "2020 post and code: percentile_between(90, 100) without a mask; default)",
    "common_stock": "rank among common stocks only (QuantRocket's 2024 sell-gap code: "
                    "percentile_between(90, 100, mask=common stock))",
}
#: the default of :func:`liquid_stocks` and of the buy/sell-gap screens
DEFAULT_LIQUIDITY_RANK = "all_assets"


def liquid_stocks(window_length=30, min_percentile=90, max_percentile=100,
                  rank_within=DEFAULT_LIQUIDITY_RANK):
    """Filter: assets in the top decile (by default) of average daily dollar volume.

    QuantRocket: "liquid stocks only (top 10% by dollar volume)" (``004_3c38ecd07eeb7bfa.txt``
    line 14), ``AverageDollarVolume(window_length=30).percentile_between(90, 100)`` (line 21).
    Dollar volume is zipline's :class:`~zipline.pipeline.factors.AverageDollarVolume`:
    ``sum(close_t * volume_t) / window_length`` over the last ``window_length`` sessions
    (adjusted closes and volumes; sessions without trades count as zero).

    Parameters
    ----------
    window_length : int >= 2
        Sessions averaged (30 in every QuantRocket version).
    min_percentile, max_percentile : float in [0, 100]
        Percentile band kept (inclusive), ``90, 100`` = top decile.
    rank_within : {"all_assets", "common_stock"} or Filter
        Which assets the percentiles are computed over (see :data:`LIQUIDITY_RANKING`).
        ``"all_assets"`` (default, the 2020 post and code) ranks across every asset alive on
        the session; combined with ``CommonStock()`` afterwards it keeps fewer stocks than
        10% of the common stocks, because liquid ETFs take part of the top decile.
        ``"common_stock"`` ranks inside ``CommonStock()`` (QuantRocket 2024), so the top
        decile always holds ~10% of common stocks. A Filter ranks inside it.

    Returns
    -------
    Filter
        False for assets outside ``rank_within``.
    """
    _check_window("window_length", window_length)
    _check_percentiles(min_percentile, max_percentile)
    if isinstance(rank_within, str):
        if rank_within not in LIQUIDITY_RANKING:
            raise ValueError(f"rank_within must be one of {sorted(LIQUIDITY_RANKING)} or a "
                             f"Filter, got {rank_within!r}")
        mask = CommonStock() if rank_within == "common_stock" else None
    else:
        mask = rank_within
    adv = AverageDollarVolume(window_length=window_length)
    if mask is None:
        return adv.percentile_between(min_percentile, max_percentile)
    return adv.percentile_between(min_percentile, max_percentile, mask=mask)


# ----------------------------------------------------------------------------- price terms
def price_std(window_length=63, decay_rate=0.99):
    """QuantRocket's sell-gap ``std``: zipline's exponentially weighted std of closing prices.

    ``ExponentialWeightedMovingStdDev(inputs=[EquityPricing.close], window_length=63,
    decay_rate=0.99)`` -- the std of adjusted closing **prices** (dollars, not returns), with
    weights ``decay_rate ** k`` and zipline's bias correction. Not NaN-aware (zipline's own
    code): one session without a trade in the window gives NaN.
    """
    _check_window("window_length", window_length)
    if not 0 < decay_rate < 1:
        raise ValueError(f"decay_rate must be strictly between 0 and 1, got {decay_rate!r}")
    return ExponentialWeightedMovingStdDev(inputs=[EquityPricing.close],
                                           window_length=window_length, decay_rate=decay_rate)


class DailyReturnsStdDev(_MinWindowMixin, CustomFactor):
    """Population standard deviation of daily close-to-close returns.

    From ``n = window_length`` closes (100) the ``n - 1`` returns
    ``r_t = close_t / close_{t-1} - 1`` are formed and

    .. math:: \\sigma = \\sqrt{\\frac{1}{m}\\sum_t (r_t - \\bar r)^2}

    over the ``m`` returns whose two closes both exist (ddof = 0; a session without a trade
    removes the two returns touching it). NaN when fewer than ``min_returns`` (2) remain.
    The sigma of :func:`gap_zscore` for the microcap gap-up short.

    **Default Inputs:** ``[EquityPricing.close]``

    **Default Window Length:** 100 (99 returns)
    """

    inputs = (EquityPricing.close,)
    window_length = 100
    params = {"min_returns": 2}
    window_safe = True  # returns do not change under split/dividend adjustment

    def _validate(self):
        super()._validate()
        if self.params["min_returns"] < 1:
            raise ValueError(f"min_returns must be >= 1, got {self.params['min_returns']}")

    def compute(self, today, assets, out, close, min_returns):
        with np.errstate(invalid="ignore", divide="ignore"):
            returns = close[1:] / close[:-1] - 1.0
        count = np.sum(~np.isnan(returns), axis=0)
        sigma = nanstd(returns, axis=0, ddof=0)
        out[:] = np.where(count >= min_returns, sigma, np.nan)


class ExponentialMovingAverage(_MinWindowMixin, CustomFactor):
    """NaN-aware exponential moving average over a finite window.

    .. math:: \\mathrm{EMA} = \\frac{\\sum_{k=0}^{n-1} w_k x_{D-1-k}}{\\sum_{k=0}^{n-1} w_k},
              \\qquad w_k = \\mathrm{decay\\_rate}^{k}

    summing only over sessions where ``x`` exists (weights renormalised). With no missing
    value this equals zipline's ``ExponentialWeightedMovingAverage`` and pandas'
    ``Series.ewm(alpha=1 - decay_rate, adjust=True).mean()`` over the same ``n`` values.
    The "20-day EMA" is ``span = 20``: ``decay_rate = 1 - 2 / 21``; the default 60-session
    window leaves out weights worth ``decay_rate ** 60`` = 0.25% of the infinite sum.

    **Default Inputs:** ``[EquityPricing.close]``

    **Default Window Length:** 60

    Parameters
    ----------
    decay_rate : float, 0 < decay_rate < 1
        Default ``1 - 2 / 21`` (span 20). Use :meth:`from_span` for other spans.
    """

    inputs = (EquityPricing.close,)
    window_length = 60
    params = {"decay_rate": 1.0 - 2.0 / 21.0}
    window_safe = True

    def _validate(self):
        super()._validate()
        decay = self.params["decay_rate"]
        if not isinstance(decay, (int, float, np.floating)) or not 0.0 < decay < 1.0:
            raise ValueError(f"decay_rate must be strictly between 0 and 1, got {decay!r}")

    @classmethod
    def from_span(cls, span=20, window_length=60, **kwargs):
        """EMA with ``decay_rate = 1 - 2 / (span + 1)`` (pandas' ``span``); span > 1."""
        if not span > 1:
            raise ValueError(f"span must be > 1, got {span!r}")
        return cls(decay_rate=1.0 - 2.0 / (span + 1.0), window_length=window_length, **kwargs)

    def compute(self, today, assets, out, data, decay_rate):
        n = len(data)
        weights = decay_rate ** np.arange(n - 1, -1, -1, dtype="float64")[:, None]
        valid = ~np.isnan(data)
        wsum = np.sum(np.where(valid, weights, 0.0), axis=0)
        total = np.sum(np.where(valid, data * weights, 0.0), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:] = np.where(wsum > 0, total / wsum, np.nan)


class AverageRange(_MinWindowMixin, CustomFactor):
    """Average daily range as a fraction of the session's **low**.

    .. math:: \\frac{1}{m}\\sum_{k=1}^{n} \\frac{\\mathrm{high}_{D-k} - \\mathrm{low}_{D-k}}
              {\\mathrm{low}_{D-k}}

    "Gap % and Float" (``003_290001eae97eba9c.txt`` line 21):
    ``df['avg_range'] = ((df['high'] - df['low']) / df['low']).rolling(20).mean()`` -- the
    divisor is the low. 0.05 means the stock's high is 5% above its low on an average day.

    The window is the ``n = window_length`` (20) sessions before ``D`` (the article's row ``D``
    also counts ``D``, unknown before the open). Sessions without trades (or ``low <= 0``):
    ``full_window=False`` (default) averages the ``m`` that traded (the article's frame has
    a row per traded day); ``full_window=True`` is NaN unless all ``n`` traded (its
    ``rolling(20).mean()`` on a frame with a row per session).

    **Default Inputs:** ``[EquityPricing.high, EquityPricing.low]``

    **Default Window Length:** 20
    """

    inputs = (EquityPricing.high, EquityPricing.low)
    window_length = 20
    params = {"full_window": False}
    window_safe = True

    def compute(self, today, assets, out, high, low, full_window):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(low > 0, (high - low) / low, np.nan)
            mean = nanmean(ratio, axis=0)
        if full_window:
            mean = np.where(np.isfinite(ratio).all(axis=0), mean, np.nan)
        out[:] = mean


class RelativeVolume(_MinWindowMixin, CustomFactor):
    """Last session's volume over its simple moving average ("RVOL").

    .. math:: \\frac{\\mathrm{volume}_{D-1}}{\\frac{1}{n}\\sum_{k=1}^{n}\\mathrm{volume}_{D-k}}

    ``n = window_length`` (20), the average including the last session. Sessions without
    trades have volume 0 and count in the average. NaN when the average is 0. Split
    adjusted (volume is), so a split inside the window does not distort it. For today's
    relative volume divide today's (pre-market) volume by ``SimpleMovingAverage(
    inputs=[EquityPricing.volume], window_length=20)`` in the algorithm.

    **Default Inputs:** ``[EquityPricing.volume]``

    **Default Window Length:** 20
    """

    inputs = (EquityPricing.volume,)
    window_length = 20
    window_safe = True

    def compute(self, today, assets, out, volume):
        mean = nansum(volume, axis=0) / len(volume)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:] = np.where(mean > 0, volume[-1] / mean, np.nan)


# ----------------------------------------------------------------------------- classes
#: Bin edges of :func:`gap_class`, in percent: "Gap % and Float" (``003_290001eae97eba9c.txt``
#: lines 13-15), ``pd.cut(df['gap_pct'], bins=[-np.inf, -10, -5, -2, 2, 5, 10, 20, np.inf])``;
#: pandas' default ``right=True``: every class is closed on the right, ``(-10, -5]``.
GAP_CLASS_BINS = (-np.inf, -10.0, -5.0, -2.0, 2.0, 5.0, 10.0, 20.0, np.inf)
#: Gap classes of :func:`gap_class`, most negative first (one per bin of :data:`GAP_CLASS_BINS`).
GAP_CLASSES = ("<=-10%", "-10%..-5%", "-5%..-2%", "-2%..2%", "2%..5%", "5%..10%", "10%..20%",
               ">20%")
#: The article's names of the same classes (``003_290001eae97eba9c.txt`` lines 16-18).
GAP_TYPES = dict(zip(GAP_CLASSES, ("large_gap_down", "medium_gap_down", "small_gap_down",
                                   "no_gap", "small_gap_up", "medium_gap_up", "large_gap_up",
                                   "massive_gap_up")))

#: Shares-outstanding classes of :func:`shares_outstanding_class`, smallest first.
SHARES_CLASSES = ("micro", "low", "medium", "large", "institutional")
SHARES_BOUNDS = (10e6, 25e6, 50e6, 100e6)


def _shares_codes(shares):
    s = np.asarray(shares, dtype="float64")
    with np.errstate(invalid="ignore"):
        conditions = [s < SHARES_BOUNDS[0], s < SHARES_BOUNDS[1], s < SHARES_BOUNDS[2],
                      s < SHARES_BOUNDS[3], s >= SHARES_BOUNDS[3]]
        codes = np.select(conditions, range(len(SHARES_CLASSES)), default=-1)
        codes[s < 0] = -1
    return codes


class SharesOutstandingClass(CustomClassifier):
    """Classifier: shares-outstanding class as an integer code (index into
    :data:`SHARES_CLASSES`), -1 when unknown.

    ===  =================  ===========================
    0    ``micro``          shares < 10M
    1    ``low``            10M <= shares < 25M
    2    ``medium``         25M <= shares < 50M
    3    ``large``          50M <= shares < 100M
    4    ``institutional``  shares >= 100M
    ===  =================  ===========================

    Built on ``PolygonReference.shares_outstanding``: shares **outstanding**, not the float
    (Polygon/Massive has no dated float), as known before each session (dated reference
    data, see :mod:`factors.reference`); unknown counts are ``-1``.
    ``.eq(0)`` selects micro.
    """

    inputs = (PolygonReference.shares_outstanding,)
    window_length = 1
    dtype = np.dtype("int64")
    missing_value = -1

    def compute(self, today, assets, out, shares):
        out[:] = _shares_codes(shares[-1])


def _labels(codes, labels, like):
    """Map integer codes (-1 = missing) to labels, keeping pandas shape/index when given."""
    cat = pd.CategoricalDtype(list(labels), ordered=True)
    if isinstance(like, pd.DataFrame):
        return pd.DataFrame({c: pd.Categorical.from_codes(codes[:, i], dtype=cat)
                             for i, c in enumerate(like.columns)}, index=like.index)
    if isinstance(like, pd.Series):
        return pd.Series(pd.Categorical.from_codes(codes, dtype=cat), index=like.index,
                         name=like.name)
    arr = np.asarray(codes)
    out = np.where(arr >= 0, np.asarray(labels, dtype=object)[arr.clip(0)], None)
    return out.item() if out.ndim == 0 else out


def shares_outstanding_class(shares):
    """Shares-outstanding class label for each value (see :class:`SharesOutstandingClass`).

    Parameters
    ----------
    shares : scalar, array, Series or DataFrame
        Shares outstanding (a count, not millions).

    Returns
    -------
    Same shape: ordered categorical Series/DataFrame with categories :data:`SHARES_CLASSES`
    for pandas input, an object array (or a str) otherwise; missing (NaN/None) for NaN or
    negative counts. Bounds go up: exactly 10M is ``low``, exactly 100M ``institutional``.
    """
    return _labels(_shares_codes(shares), SHARES_CLASSES, shares)


def gap_percent(price, prior_close):
    """Gap in percent: ``100 * (price / prior_close - 1)``; NaN where prior_close <= 0.

    ``price`` is today's open or a pre-market price; vectorised over scalars, arrays,
    Series and DataFrames (pandas aligns on index).
    """
    return 100.0 * _ratio_minus_one(price, prior_close)


def _ratio_minus_one(price, prior_close):
    prior = _positive_or_nan(prior_close)
    with np.errstate(invalid="ignore", divide="ignore"):
        return price / prior - 1.0


def _positive_or_nan(x):
    if isinstance(x, (pd.Series, pd.DataFrame)):
        return x.astype("float64").where(x > 0)
    arr = np.asarray(x, dtype="float64")
    with np.errstate(invalid="ignore"):
        out = np.where(arr > 0, arr, np.nan)
    return out.item() if out.ndim == 0 else out


def gap_zscore(open_or_premarket_price, prior_close, sigma):
    """Opening gap in units of the daily-return standard deviation.

    .. math:: z = \\frac{\\mathrm{price} / \\mathrm{close}_{D-1} - 1}{\\sigma}

    Parameters
    ----------
    open_or_premarket_price : scalar, array, Series or DataFrame
        Today's open (or a pre-market price).
    prior_close : same shape
        Previous session's close (``EquityPricing.close.latest`` in the pipeline output).
    sigma : same shape
        Standard deviation of daily **returns**, e.g. :class:`DailyReturnsStdDev` (a
        fraction: 0.05 = 5%). Not the price std of the sell-gap strategy, which compares
        prices directly: ``open < prior_low - std``.

    Returns
    -------
    Same shape as the inputs; NaN where ``prior_close`` or ``sigma`` is missing or <= 0.
    """
    return _ratio_minus_one(open_or_premarket_price, prior_close) / _positive_or_nan(sigma)


def _gap_codes(gap_pct):
    """Index into :data:`GAP_CLASSES` of each value, -1 where ``pd.cut`` gives NaN."""
    g = np.asarray(gap_pct, dtype="float64")
    inner = np.asarray(GAP_CLASS_BINS[1:-1])
    # right-closed bins: x in (e[i-1], e[i]] <=> i = number of inner edges strictly below x
    codes = np.searchsorted(inner, g, side="left")
    # pd.cut: NaN and values outside (-inf, inf] (that is -inf) are not in any bin
    return np.where(np.isnan(g) | (g == -np.inf), -1, codes)


def gap_class(gap_pct):
    """Bin gaps (in percent, e.g. from :func:`gap_percent`) into :data:`GAP_CLASSES`.

    The bins of "Gap % and Float" (``003_290001eae97eba9c.txt`` lines 13-18): ``pd.cut`` with
    :data:`GAP_CLASS_BINS`, closed on the right (pandas' default), so a value on a bound
    belongs to the class **below** it:

    ==============  ====================  ===================
    label           gap (percent)         article's name
    ==============  ====================  ===================
    ``<=-10%``      gap <= -10            large_gap_down
    ``-10%..-5%``   -10 < gap <= -5       medium_gap_down
    ``-5%..-2%``    -5 < gap <= -2        small_gap_down
    ``-2%..2%``     -2 < gap <= 2         no_gap
    ``2%..5%``      2 < gap <= 5          small_gap_up
    ``5%..10%``     5 < gap <= 10         medium_gap_up
    ``10%..20%``    10 < gap <= 20        large_gap_up
    ``>20%``        gap > 20              massive_gap_up
    ==============  ====================  ===================

    (:data:`GAP_TYPES` maps the labels to the article's names.)

    Returns
    -------
    Same shape: ordered categorical Series/DataFrame for pandas input, an object array (or a
    str) otherwise; missing for NaN (and ``-inf``, as ``pd.cut``).
    """
    return _labels(_gap_codes(gap_pct), GAP_CLASSES, gap_pct)

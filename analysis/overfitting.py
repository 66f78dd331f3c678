"""Multiple testing: how much of the best backtest of a sweep is selection luck.

Two statistics of the López de Prado school, each for a set of N configurations tried on the
same data:

* :func:`deflated_sharpe_ratio` -- Bailey & López de Prado (2014), "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", *Journal of Portfolio
  Management* 40(5). The probability that the best configuration's true Sharpe ratio is above
  the Sharpe ratio the best of N *skill-less* configurations would show by chance
  (:func:`expected_max_sharpe`), given the dispersion of the N Sharpe ratios, the track
  record's length and its skewness and kurtosis (:func:`probabilistic_sharpe_ratio`).
* :func:`probability_of_backtest_overfitting` -- Bailey, Borwein, López de Prado & Zhu (2017),
  "The Probability of Backtest Overfitting", *Journal of Computational Finance* 20(4): the
  combinatorially symmetric cross-validation (CSCV). The T x N matrix of returns is cut into S
  sub-periods; for each of the C(S, S/2) ways to call half of them in-sample, the in-sample best
  configuration's out-of-sample rank is turned into a logit; PBO is the share of splits where
  that rank is at or below the median (logit <= 0).

Sharpe ratios here are per observation (daily returns: daily Sharpe, not annualised), as in
both papers; :func:`sharpe` is mean / standard deviation (ddof=1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

#: Euler-Mascheroni constant (the expected-maximum formula of Bailey & López de Prado 2014)
EULER_GAMMA = 0.5772156649015329


# ----------------------------------------------------------------------------- Sharpe
def sharpe(returns) -> float:
    """Per-observation Sharpe ratio of ``returns``: mean / std (ddof=1); NaN for fewer than two
    observations or no variation."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return float("nan")
    sd = r.std(ddof=1)
    return float(r.mean() / sd) if sd > 0 else float("nan")


def expected_max_sharpe(n_trials: int, var_sharpe: float, mean_sharpe: float = 0.0) -> float:
    """E[max SR] of ``n_trials`` independent skill-less trials whose Sharpe ratios have variance
    ``var_sharpe`` (Bailey & López de Prado 2014, eq. 6; the "False Strategy" theorem)::

        SR0 = mean + sqrt(V) * ((1 - g) * Z^-1[1 - 1/N] + g * Z^-1[1 - 1/(N e)])

    with ``g`` the Euler-Mascheroni constant. One trial selects nothing: ``mean_sharpe``."""
    n = int(n_trials)
    if n < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials!r}")
    if n == 1 or not var_sharpe > 0:
        return float(mean_sharpe)
    z = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1.0 / n) \
        + EULER_GAMMA * stats.norm.ppf(1 - 1.0 / (n * math.e))
    return float(mean_sharpe + math.sqrt(var_sharpe) * z)


def probabilistic_sharpe_ratio(sr: float, benchmark_sr: float, n_obs: int, skew: float = 0.0,
                               kurtosis: float = 3.0) -> float:
    """P[true SR > ``benchmark_sr``] for an observed per-period ``sr`` over ``n_obs``
    observations with the returns' ``skew`` and (non-excess) ``kurtosis`` (Bailey & López de
    Prado 2012; eq. 2 of the 2014 paper)::

        Z[(SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2)]
    """
    if n_obs < 2 or not np.isfinite(sr):
        return float("nan")
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not denom > 0:
        return float("nan")
    z = (sr - benchmark_sr) * math.sqrt(n_obs - 1) / math.sqrt(denom)
    return float(stats.norm.cdf(z))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of one selected configuration and its inputs."""
    dsr: float            # P[true SR > sr0]
    sr: float             # the selected configuration's per-period Sharpe ratio
    sr0: float            # expected maximum Sharpe of n_trials skill-less trials
    n_trials: int
    var_sharpe: float     # variance of the trials' per-period Sharpe ratios
    n_obs: int
    skew: float
    kurtosis: float       # non-excess (3 for a normal distribution)

    def as_dict(self) -> dict:
        return dict(vars(self))


def deflated_sharpe_ratio(sr: float, n_trials: int, var_sharpe: float, n_obs: int,
                          skew: float = 0.0, kurtosis: float = 3.0,
                          mean_sharpe: float = 0.0) -> DeflatedSharpe:
    """The deflated Sharpe ratio (Bailey & López de Prado 2014, eq. 9): the probabilistic
    Sharpe ratio of the selected per-period ``sr`` against :func:`expected_max_sharpe` of
    ``n_trials`` trials with Sharpe variance ``var_sharpe``."""
    sr0 = expected_max_sharpe(n_trials, var_sharpe, mean_sharpe)
    dsr = probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis)
    return DeflatedSharpe(dsr=dsr, sr=float(sr), sr0=sr0, n_trials=int(n_trials),
                          var_sharpe=float(var_sharpe), n_obs=int(n_obs), skew=float(skew),
                          kurtosis=float(kurtosis))


def deflated_sharpe_of(returns: pd.DataFrame, best=None) -> DeflatedSharpe:
    """:func:`deflated_sharpe_ratio` of a sweep: ``returns`` holds one column of daily returns
    per configuration; ``best`` names the selected column (default: the highest Sharpe).
    N is the number of columns, V the variance (ddof=1) of their Sharpe ratios, T, skew and
    kurtosis those of the selected column."""
    frame = pd.DataFrame(returns).astype(float)
    srs = frame.apply(sharpe)
    valid = srs.dropna()
    if valid.empty:
        raise ValueError("no configuration has a Sharpe ratio (fewer than two returns, or "
                         "constant returns)")
    best = valid.idxmax() if best is None else best
    r = frame[best].dropna().to_numpy()
    var = float(valid.var(ddof=1)) if len(valid) > 1 else 0.0
    skew = float(stats.skew(r)) if r.std() > 0 else 0.0
    kurt = float(stats.kurtosis(r, fisher=False)) if r.std() > 0 else 3.0
    return deflated_sharpe_ratio(float(srs[best]), len(frame.columns), var, len(r), skew, kurt)


# ----------------------------------------------------------------------------- CSCV
@dataclass(frozen=True)
class BacktestOverfitting:
    """Result of :func:`probability_of_backtest_overfitting`."""
    pbo: float                   # share of splits with logit <= 0
    logits: np.ndarray           # one per split (combination)
    n_splits: int                # S sub-periods
    n_combinations: int          # C(S, S/2)
    is_best: np.ndarray          # in-sample metric of the in-sample best, per combination
    oos_of_best: np.ndarray      # its out-of-sample metric, per combination
    prob_oos_loss: float         # share of combinations where that OOS metric is < 0

    def as_dict(self) -> dict:
        return {"pbo": self.pbo, "n_splits": self.n_splits,
                "n_combinations": self.n_combinations, "prob_oos_loss": self.prob_oos_loss,
                "median_logit": float(np.median(self.logits))}


def _block_moments(matrix: np.ndarray, n_splits: int):
    """Per sub-period and configuration: count, sum and sum of squares (S x N each)."""
    blocks = np.array_split(np.arange(matrix.shape[0]), n_splits)
    finite = np.isfinite(matrix)
    values = np.where(finite, matrix, 0.0)
    count = np.stack([finite[b].sum(axis=0) for b in blocks]).astype(float)
    total = np.stack([values[b].sum(axis=0) for b in blocks])
    squares = np.stack([(values[b] ** 2).sum(axis=0) for b in blocks])
    return count, total, squares


def _sharpe_from_moments(n, s, q):
    with np.errstate(all="ignore"):
        mean = s / n
        var = (q - n * mean * mean) / (n - 1)
        sr = mean / np.sqrt(var)
    return np.where((n > 1) & (var > 1e-300), sr, np.nan)


def probability_of_backtest_overfitting(returns, n_splits: int = 16) -> BacktestOverfitting:
    """CSCV (Bailey, Borwein, López de Prado & Zhu 2017, section 2.3) with the Sharpe ratio as
    the performance statistic.

    ``returns``: T x N (rows: observations in time order, columns: configurations). Steps
    1-6 of the paper: cut the rows into ``n_splits`` (S, even) contiguous sub-periods; for
    every combination ``c`` of S/2 of them (the training set J, its complement the testing
    set J-bar): the configuration ``n*`` with the best in-sample Sharpe, its relative rank
    ``w_c = rank / (N + 1)`` among the out-of-sample Sharpe ratios (1 = worst, average ranks on
    ties), ``logit_c = ln(w_c / (1 - w_c))``. PBO = share of ``logit_c <= 0``.
    """
    matrix = np.asarray(returns, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError("CSCV needs a T x N matrix with N >= 2 configurations")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits (S) must be an even number >= 2, got {n_splits!r}")
    if matrix.shape[0] < 2 * n_splits:
        raise ValueError(f"CSCV with S={n_splits} needs at least {2 * n_splits} observations "
                         f"(two per sub-period), got {matrix.shape[0]}")
    n_configs = matrix.shape[1]
    count, total, squares = _block_moments(matrix, n_splits)
    combos = np.array([[i in c for i in range(n_splits)]
                       for c in combinations(range(n_splits), n_splits // 2)], dtype=float)
    rest = 1.0 - combos
    is_sr = _sharpe_from_moments(combos @ count, combos @ total, combos @ squares)
    oos_sr = _sharpe_from_moments(rest @ count, rest @ total, rest @ squares)
    best = np.argmax(np.where(np.isfinite(is_sr), is_sr, -np.inf), axis=1)
    rows = np.arange(len(combos))
    oos_filled = np.where(np.isfinite(oos_sr), oos_sr, -np.inf)
    mine = oos_filled[rows, best][:, None]
    # average rank (1 = worst) of n* among the out-of-sample Sharpe ratios
    ranks = (oos_filled < mine).sum(axis=1) + ((oos_filled == mine).sum(axis=1) + 1) / 2.0
    omega = ranks / (n_configs + 1.0)
    logits = np.log(omega / (1.0 - omega))
    oos_best = oos_sr[rows, best]
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)), logits=logits, n_splits=n_splits,
        n_combinations=len(combos), is_best=is_sr[rows, best], oos_of_best=oos_best,
        prob_oos_loss=float(np.mean(np.nan_to_num(oos_best, nan=0.0) < 0)))

"""Deflated Sharpe ratio and probability of backtest overfitting against the papers.

* Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5), section "A numerical
  example": N = 100 trials, Var[SR_n] = 1/2 (annualised), best annualised SR 2.5 over T = 1,250
  daily observations, skewness -3, kurtosis 10 -> SR0 = 0.1132 (per day) and DSR = 0.9004.
* Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest Overfitting",
  J. Computational Finance 20(4), section 2.3 (CSCV): S = 16 sub-periods give C(16, 8) = 12,870
  combinations; the logit of the in-sample best's out-of-sample relative rank; PBO is the mass
  of logits <= 0. Their section 3 properties: skill-less configurations (IID noise) give
  PBO near 1/2, a configuration with real skill gives PBO near 0. The CSCV steps are also
  replayed one split at a time in plain pandas on a small matrix (the oracle below).
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import overfitting as ov


# ----------------------------------------------------------------------------- DSR
def test_deflated_sharpe_ratio_reproduces_the_papers_numerical_example():
    sr = 2.5 / math.sqrt(250)                 # annualised 2.5 -> per day
    var = 0.5 / 250                           # annualised variance 1/2 -> per day
    result = ov.deflated_sharpe_ratio(sr, n_trials=100, var_sharpe=var, n_obs=1250,
                                      skew=-3.0, kurtosis=10.0)
    assert result.sr0 == pytest.approx(0.1132, abs=5e-5)
    assert result.dsr == pytest.approx(0.9004, abs=5e-5)
    # annualised SR0 (the paper's 1.79) -- the bar the best of 100 tries clears by luck
    assert result.sr0 * math.sqrt(250) == pytest.approx(1.7894, abs=5e-4)


def test_expected_max_sharpe_grows_with_trials_and_is_the_mean_for_one_trial():
    assert ov.expected_max_sharpe(1, 1.0) == 0.0
    values = [ov.expected_max_sharpe(n, 1.0) for n in (2, 10, 100, 1000)]
    assert values == sorted(values)
    # a Monte Carlo check of the approximation for N = 100 standard normals
    rng = np.random.default_rng(7)
    mc = rng.standard_normal((20_000, 100)).max(axis=1).mean()
    assert ov.expected_max_sharpe(100, 1.0) == pytest.approx(mc, rel=0.02)


def test_probabilistic_sharpe_ratio_is_one_half_at_the_benchmark():
    assert ov.probabilistic_sharpe_ratio(0.1, 0.1, 500) == pytest.approx(0.5)
    assert ov.probabilistic_sharpe_ratio(0.2, 0.1, 500) > 0.5


def test_deflated_sharpe_of_a_returns_frame_uses_the_best_column_and_sharpe_dispersion():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(0.0005, 0.01, (250, 8)), columns=list("abcdefgh"))
    result = ov.deflated_sharpe_of(frame)
    srs = frame.apply(lambda c: c.mean() / c.std(ddof=1))
    best = srs.idxmax()
    assert result.sr == pytest.approx(srs[best])
    assert result.var_sharpe == pytest.approx(srs.var(ddof=1))
    assert (result.n_trials, result.n_obs) == (8, 250)
    assert result.skew == pytest.approx(stats.skew(frame[best]))
    assert result.kurtosis == pytest.approx(stats.kurtosis(frame[best], fisher=False))


# ----------------------------------------------------------------------------- CSCV
def _pbo_oracle(frame: pd.DataFrame, n_splits: int) -> float:
    """The paper's steps, one split at a time, with pandas."""
    blocks = np.array_split(np.arange(len(frame)), n_splits)
    logits = []
    for train in combinations(range(n_splits), n_splits // 2):
        rows_in = np.concatenate([blocks[i] for i in train])
        rows_out = np.concatenate([blocks[i] for i in range(n_splits) if i not in train])
        sr_in = frame.iloc[rows_in].mean() / frame.iloc[rows_in].std(ddof=1)
        sr_out = frame.iloc[rows_out].mean() / frame.iloc[rows_out].std(ddof=1)
        best = sr_in.idxmax()
        rank = sr_out.rank()[best]                  # 1 = worst out of sample
        omega = rank / (len(frame.columns) + 1)
        logits.append(math.log(omega / (1 - omega)))
    return float(np.mean(np.array(logits) <= 0))


def test_cscv_matches_the_papers_steps_replayed_in_pandas():
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(0.0002, 0.01, (120, 7)))
    for s in (4, 6, 8):
        assert ov.probability_of_backtest_overfitting(frame, s).pbo == \
            pytest.approx(_pbo_oracle(frame, s))


def test_cscv_has_c_s_over_two_combinations():
    frame = np.random.default_rng(0).normal(0, 0.01, (320, 5))
    assert ov.probability_of_backtest_overfitting(frame, 16).n_combinations == 12_870
    assert ov.probability_of_backtest_overfitting(frame, 4).n_combinations == 6


def test_pbo_of_skill_less_configurations_is_near_one_half():
    # the paper's no-skill case: IID normal returns. One matrix's PBO varies widely (its
    # combinations share sub-periods), so average over 60 matrices (N = 20, T = 400, S = 8)
    rng = np.random.default_rng(2014)
    results = [ov.probability_of_backtest_overfitting(rng.normal(0, 0.01, (400, 20)), 8).pbo
               for _ in range(60)]
    assert np.mean(results) == pytest.approx(0.5, abs=0.06)


def test_pbo_of_one_skilled_configuration_is_near_zero():
    rng = np.random.default_rng(5)
    matrix = rng.normal(0, 0.01, (1000, 100))
    matrix[:, 17] += 0.003                       # daily Sharpe 0.3 against noise
    result = ov.probability_of_backtest_overfitting(matrix, 16)
    assert result.pbo < 0.05
    assert result.prob_oos_loss < 0.05


def test_cscv_refuses_too_few_observations_or_an_odd_split():
    with pytest.raises(ValueError, match="even"):
        ov.probability_of_backtest_overfitting(np.zeros((100, 3)), 5)
    with pytest.raises(ValueError, match="at least 32"):
        ov.probability_of_backtest_overfitting(np.zeros((20, 3)), 16)
    with pytest.raises(ValueError, match="N >= 2"):
        ov.probability_of_backtest_overfitting(np.zeros((100, 1)), 4)

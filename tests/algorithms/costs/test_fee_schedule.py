"""Dated SEC Section 31 / FINRA TAF fees (algorithms/costs/fee_schedule.py) and the commission
model charging the fee in force on each fill's date, against hand-typed rates.

The expected rates are typed here from the SEC orders / FINRA notices (not read from the
module's tables), so a wrong table row fails a test.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from zipline.assets import Equity, ExchangeInfo
from zipline.finance.order import Order
from zipline.finance.transaction import Transaction

from algorithms.costs import GaplineCommission, make_config
from algorithms.costs import fee_schedule as F
from algorithms.costs.commission import ceil_cent

AAA = Equity(1, exchange_info=ExchangeInfo("NYSE", "NYSE", "US"), symbol="AAA")

# one date inside every Section 31 period: (date, $ per million)
SEC_PERIODS = [
    ("2008-06-02", 5.60), ("2009-06-01", 25.70), ("2010-02-01", 12.70),
    ("2010-06-01", 16.90), ("2011-06-01", 19.20), ("2012-03-01", 18.00),
    ("2012-06-01", 22.40), ("2013-07-01", 17.40), ("2014-06-02", 22.10),
    ("2015-03-02", 18.40), ("2016-06-01", 21.80), ("2017-09-01", 23.10),
    ("2018-09-04", 13.00), ("2019-06-03", 20.70), ("2020-06-01", 22.10),
    ("2021-06-01", 5.10), ("2022-06-01", 22.90), ("2023-06-01", 8.00),
    ("2024-06-03", 27.80), ("2025-06-02", 0.00), ("2026-06-01", 20.60),
    ("2026-11-30", 20.60),
]

# every Section 31 change: (effective date, rate the day before, rate from that day)
SEC_BOUNDARIES = [
    ("2009-04-10", 5.60, 25.70), ("2010-01-15", 25.70, 12.70), ("2010-04-01", 12.70, 16.90),
    ("2011-01-21", 16.90, 19.20), ("2012-02-21", 19.20, 18.00), ("2012-04-01", 18.00, 22.40),
    ("2013-05-25", 22.40, 17.40), ("2014-03-18", 17.40, 22.10), ("2015-02-14", 22.10, 18.40),
    ("2016-02-16", 18.40, 21.80), ("2017-07-04", 21.80, 23.10), ("2018-05-22", 23.10, 13.00),
    ("2019-04-16", 13.00, 20.70), ("2020-02-18", 20.70, 22.10), ("2021-02-25", 22.10, 5.10),
    ("2022-05-14", 5.10, 22.90), ("2023-02-27", 22.90, 8.00), ("2024-05-22", 8.00, 27.80),
    ("2025-05-14", 27.80, 0.00), ("2026-04-04", 0.00, 20.60),
]

# one date inside every TAF period: (date, $ per share, $ max per trade)
TAF_PERIODS = [
    ("2010-06-01", 0.000075, 3.75), ("2011-09-01", 0.000090, 4.50),
    ("2012-05-01", 0.000095, 4.75), ("2015-03-02", 0.000119, 5.95),
    ("2022-06-01", 0.000130, 6.49), ("2023-06-01", 0.000145, 7.27),
    ("2025-06-02", 0.000166, 8.30), ("2026-06-01", 0.000195, 9.79),
    ("2026-11-02", 0.0, 0.0), ("2027-03-01", 0.000195, 9.79),
]

# every TAF change: (effective date, (rate, cap) the day before, (rate, cap) from that day)
TAF_BOUNDARIES = [
    ("2011-07-01", (0.000075, 3.75), (0.000090, 4.50)),
    ("2012-03-01", (0.000090, 4.50), (0.000095, 4.75)),
    ("2012-07-01", (0.000095, 4.75), (0.000119, 5.95)),
    ("2022-01-01", (0.000119, 5.95), (0.000130, 6.49)),
    ("2023-01-01", (0.000130, 6.49), (0.000145, 7.27)),
    ("2024-01-01", (0.000145, 7.27), (0.000166, 8.30)),
    ("2026-01-01", (0.000166, 8.30), (0.000195, 9.79)),
    ("2026-10-01", (0.000195, 9.79), (0.0, 0.0)),
    ("2027-01-01", (0.0, 0.0), (0.000195, 9.79)),
]


def day_before(day: str) -> str:
    return (pd.Timestamp(day) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")


def fill_at(day: str, hhmm: str = "10:00") -> pd.Timestamp:
    """A fill's UTC timestamp at ``hhmm`` New York time on ``day``."""
    return pd.Timestamp(f"{day} {hhmm}", tz="America/New_York").tz_convert("UTC")


FEES_ONLY = dict(ecn_fee_per_share=0.0, round_reg_fees=False)


# ----------------------------------------------------------------------------- tables
def test_tables_are_sorted_cited_and_cover_2010_to_today():
    for table in (F.SEC_SECTION_31, F.FINRA_TAF):
        dates = [row[0] for row in table]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)
        assert dates[0] <= dt.date(2010, 1, 1)
        assert all(isinstance(row[-1], str) and row[-1] for row in table)  # a citation
    assert max(row[0] for row in F.SEC_SECTION_31) <= dt.date(2026, 11, 30)


@pytest.mark.parametrize("day, per_million", SEC_PERIODS)
def test_sec_rate_in_each_period(day, per_million):
    assert F.sec_fee_rate(day) == pytest.approx(per_million / 1e6, abs=1e-15)


@pytest.mark.parametrize("day, before, after", SEC_BOUNDARIES)
def test_sec_rate_changes_on_the_effective_day(day, before, after):
    assert F.sec_fee_rate(day_before(day)) == pytest.approx(before / 1e6, abs=1e-15)
    assert F.sec_fee_rate(day) == pytest.approx(after / 1e6, abs=1e-15)


@pytest.mark.parametrize("day, per_share, cap", TAF_PERIODS)
def test_taf_in_each_period(day, per_share, cap):
    assert F.taf(day) == (per_share, cap)


@pytest.mark.parametrize("day, before, after", TAF_BOUNDARIES)
def test_taf_changes_on_the_effective_day(day, before, after):
    assert F.taf(day_before(day)) == before
    assert F.taf(day) == after


def test_dates_before_the_tables_raise():
    with pytest.raises(ValueError, match="no SEC Section 31 schedule"):
        F.sec_fee_rate("2008-03-31")
    with pytest.raises(ValueError, match="no FINRA TAF schedule"):
        F.taf("2004-10-29")


# ----------------------------------------------------------------------------- fills
@pytest.mark.parametrize("day, per_million", SEC_PERIODS)
def test_sale_pays_the_sec_fee_in_force(day, per_million):
    # 1,000 shares sold at $50.00 -> SEC fee = 50,000 x rate
    m = GaplineCommission(taf_per_share=0.0, taf_max_per_trade=0.0, **FEES_ONLY)
    assert m.fee(-1000, 50.0, fill_at(day)) == pytest.approx(50_000 * per_million / 1e6)


@pytest.mark.parametrize("day, per_share, cap", TAF_PERIODS)
def test_sale_pays_the_taf_in_force_capped_per_trade(day, per_share, cap):
    m = GaplineCommission(sec_fee_rate=0.0, **FEES_ONLY)
    # 1,000 shares: under every cap -> 1000 x per_share
    assert m.fee(-1000, 50.0, fill_at(day)) == pytest.approx(min(1000 * per_share, cap))
    assert m.fee(-1000, 50.0, fill_at(day)) == pytest.approx(1000 * per_share)
    # 100,000 shares: the cap binds in every period
    assert m.fee(-100_000, 5.0, fill_at(day)) == pytest.approx(cap)


def test_hand_computed_sale_on_2015_03_02():
    """1,000 shares at $50.00 on 2015-03-02: SEC 50,000 x $18.40/M = $0.92; TAF
    min(1000 x 0.000119, 5.95) = $0.119 -> $0.12 rounded up; ECN 1000 x 0.003 = $3.00."""
    m = GaplineCommission()  # realistic defaults: dated schedules, rounding, ECN 0.003
    assert m.sell_fees(1000, 50.0, fill_at("2015-03-02")) == (pytest.approx(0.92),
                                                              pytest.approx(0.12))
    assert m.fee(-1000, 50.0, fill_at("2015-03-02")) == pytest.approx(3.00 + 0.92 + 0.12)
    unrounded = GaplineCommission(round_reg_fees=False)
    assert unrounded.fee(-1000, 50.0, fill_at("2015-03-02")) == \
        pytest.approx(3.00 + 50_000 * 18.40e-6 + 1000 * 0.000119)


def test_the_boundary_day_itself_pays_the_new_rates():
    m = GaplineCommission(**FEES_ONLY)
    # 2025-05-13: $27.80/M; 2025-05-14: $0.00/M (TAF 0.000166 both days)
    assert m.fee(-1000, 50.0, fill_at("2025-05-13")) == pytest.approx(1.39 + 0.166)
    assert m.fee(-1000, 50.0, fill_at("2025-05-14")) == pytest.approx(0.0 + 0.166)
    # 2026-09-30: TAF 0.000195 and $20.60/M; 2026-10-01: TAF paused
    assert m.fee(-1000, 50.0, fill_at("2026-09-30")) == pytest.approx(50_000 * 20.60e-6
                                                                       + 0.195)
    assert m.fee(-1000, 50.0, fill_at("2026-10-01")) == pytest.approx(50_000 * 20.60e-6)
    # 2022-01-03 (first session of 2022): 0.000130 a share, $5.10/M still
    assert m.fee(-1000, 50.0, fill_at("2021-12-31")) == pytest.approx(0.255 + 0.119)
    assert m.fee(-1000, 50.0, fill_at("2022-01-03")) == pytest.approx(0.255 + 0.130)


def test_the_fill_date_is_taken_in_new_york_time():
    """transaction.dt is UTC; 2025-05-14 03:00 UTC is still 2025-05-13 in New York."""
    m = GaplineCommission(ecn_fee_per_share=0.0, taf_per_share=0.0, taf_max_per_trade=0.0,
                          round_reg_fees=False)
    late = pd.Timestamp("2025-05-14 03:00", tz="UTC")
    morning = pd.Timestamp("2025-05-14 13:31", tz="UTC")
    order = Order(late, AAA, -2000)
    assert m.calculate(order, Transaction(AAA, -1000, late, 50.0, order.id)) == \
        pytest.approx(1.39)
    assert m.calculate(order, Transaction(AAA, -1000, morning, 50.0, order.id)) == 0.0


def test_a_buy_pays_neither():
    m = GaplineCommission(ecn_fee_per_share=0.0)
    for day, *_ in SEC_PERIODS:
        assert m.fee(1000, 50.0, fill_at(day)) == 0.0
    assert GaplineCommission().fee(1000, 50.0, fill_at("2024-06-03")) == pytest.approx(3.00)
    assert m.fee(1000, 50.0) == 0.0  # a buy needs no date


def test_rounding_up_to_the_cent():
    m = GaplineCommission(ecn_fee_per_share=0.0)
    # Just2Trade's example: 100 sh at $25.00 with $21.80/M -> $0.0545 -> $0.06; TAF
    # 100 x 0.000119 = $0.0119 -> $0.02
    assert m.sell_fees(100, 25.0, fill_at("2016-06-01")) == (pytest.approx(0.06),
                                                             pytest.approx(0.02))
    # an exact number of cents stays (50,000 x 27.80e-6 is 1.3900000000000001 in floats)
    assert m.sell_fees(1000, 50.0, fill_at("2024-06-03"))[0] == pytest.approx(1.39)
    assert ceil_cent(50_000 * 27.80e-6) == 1.39 and ceil_cent(1.391) == 1.40
    # a zero fee stays zero (SEC $0.00/M period; TAF pause)
    assert m.sell_fees(1000, 50.0, fill_at("2025-06-02"))[0] == 0.0
    assert m.sell_fees(1000, 50.0, fill_at("2026-11-02"))[1] == 0.0
    # the cap is a whole number of cents: not changed by rounding
    assert m.sell_fees(100_000, 5.0, fill_at("2024-06-03"))[1] == pytest.approx(8.30)


def test_no_taf_below_the_per_share_rate():
    """Schedule A: no TAF when the execution price is below the per-share rate."""
    m = GaplineCommission(sec_fee_rate=0.0, **FEES_ONLY)
    assert m.fee(-1_000_000, 0.0001, fill_at("2024-06-03")) == 0.0   # $0.0001 < $0.000166
    assert m.fee(-1_000, 0.0002, fill_at("2024-06-03")) == pytest.approx(0.166)


def test_pinned_rates_replace_the_schedule():
    pinned = GaplineCommission(ecn_fee_per_share=0.0, sec_fee_rate=27.80e-6,
                               taf_per_share=0.000166, taf_max_per_trade=8.30,
                               round_reg_fees=False)
    # a 2015 sale at 2024's constants, and no date needed
    assert pinned.fee(-1000, 50.0, fill_at("2015-03-02")) == pytest.approx(1.39 + 0.166)
    assert pinned.fee(-1000, 50.0) == pytest.approx(1.39 + 0.166)
    # one rate pinned, the others dated: SEC pinned at $8/M, TAF of 2015
    mixed = GaplineCommission(sec_fee_rate=8e-6, **FEES_ONLY)
    assert mixed.fee(-1000, 50.0, fill_at("2015-03-02")) == pytest.approx(0.40 + 0.119)
    with pytest.raises(ValueError, match="needs the fill's date"):
        GaplineCommission().fee(-1000, 50.0)


def test_presets():
    # published (QuantRocket's published backtest) charges no fees, on any date
    pub = GaplineCommission.from_config(make_config("published"))
    for day, *_ in SEC_PERIODS:
        assert pub.fee(-1000, 50.0, fill_at(day)) == 0.0 and pub.fee(1000, 50.0) == 0.0
    assert GaplineCommission.from_config(make_config("zero")).fee(-1000, 50.0) == 0.0
    # realistic: the dated schedules, rounded, plus the configurable ECN fee
    real = GaplineCommission.from_config(make_config("realistic", ecn_fee_per_share=0.0035))
    assert real.dated and real.round_reg_fees
    assert real.fee(-1000, 50.0, fill_at("2010-06-01")) == \
        pytest.approx(3.50 + ceil_cent(50_000 * 16.90e-6) + ceil_cent(1000 * 0.000075))
    const = GaplineCommission.from_config(make_config("realistic", sec_fee_rate=27.80e-6))
    assert const.sec_fee_rate == 27.80e-6 and const.taf_per_share is None

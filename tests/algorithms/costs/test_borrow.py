"""Borrow accrual as brokers do it (algorithms/costs/borrow.py, Costs.end_of_session), by hand.

Realistic defaults: easy to borrow 0.25% a year, hard to borrow (price < $5) 63% a year, both
accrued / 360 per calendar day a short is held over a session boundary; a locate fee of $0.01 a
share on hard-to-borrow shorts opened in a session.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from zipline.assets import Equity, ExchangeInfo

from algorithms import costs as C

EX = ExchangeInfo("NYSE", "NYSE", "US")
AAA = Equity(1, exchange_info=EX, symbol="AAA")   # $20: easy to borrow
PNY = Equity(2, exchange_info=EX, symbol="PNY")   # $3: hard to borrow (below htb_price $5)
ETB = 0.0025 / 360   # per calendar day
HTB = 0.63 / 360


def et(day, hhmm):
    return pd.Timestamp(f"{day} {hhmm}", tz="America/New_York").tz_convert("UTC")


class FakePosition:
    def __init__(self, amount, last_sale_price=np.nan):
        self.amount = amount
        self.last_sale_price = last_sale_price


class FakeTracker:
    def __init__(self):
        self.commissions = []

    def process_commission(self, commission):
        self.commissions.append(commission)


class FakeAlgo:
    def __init__(self):
        self.metrics_tracker = FakeTracker()


class Portfolio:
    def __init__(self, **held):  # symbol -> (amount, close)
        assets = {"AAA": AAA, "PNY": PNY}
        self.positions = {assets[s]: FakePosition(n, c) for s, (n, c) in held.items()}


class Current:
    def current(self, asset, field):
        return {AAA: 20.0, PNY: 3.0}[asset]


class Book:
    """A Costs object fed fills and end-of-session positions the way a run feeds it."""

    def __init__(self, **overrides):
        self.algo = FakeAlgo()
        self.costs = C.Costs(C.make_config("realistic", **overrides), algo=self.algo)

    def session(self, day, fills=(), **held):
        """Fills ``[(hh:mm, asset, amount, price)]`` on ``day``, then the session's end with
        ``held`` positions at the close; returns the total charged that session."""
        for hhmm, asset, amount, price in fills:
            self.costs.fills.append((et(day, hhmm), asset, amount, price))
        charges = self.costs.end_of_session(Portfolio(**held), et(day, "16:00"), Current())
        return sum(c["fee"] for c in charges)

    @property
    def total(self):
        return sum(c["cost"] for c in self.algo.metrics_tracker.commissions)


# ----------------------------------------------------------------------------- calendar
@pytest.mark.parametrize("session, days", [
    ("2024-10-02", 1),   # Wed -> Thu
    ("2024-10-04", 3),   # Fri -> Mon
    ("2024-07-03", 2),   # Wed -> Fri over Independence Day
    ("2024-11-27", 2),   # Wed -> Fri over Thanksgiving
    ("2024-12-31", 2),   # Tue -> Thu over New Year's Day
    ("2025-01-08", 2),   # Wed -> Fri: 2025-01-09 market closed (national day of mourning)
])
def test_days_to_next_session(session, days):
    assert C.days_to_next_session(pd.Timestamp(session)) == days


# ----------------------------------------------------------------------------- borrow
def test_short_held_friday_to_monday_pays_three_days():
    b = Book()
    # short 1,000 AAA Fri 2024-10-04 at $20.10, close $20.00; covered Mon 2024-10-07
    fri = b.session("2024-10-04", [("10:00", AAA, -1000, 20.10)], AAA=(-1000, 20.0))
    assert fri == pytest.approx(1000 * 20.0 * ETB * 3)          # $0.41667
    mon = b.session("2024-10-07", [("10:00", AAA, 1000, 19.5)])
    assert mon == 0.0
    assert b.total == pytest.approx(20_000 * 0.0025 / 360 * 3)
    log = b.costs.borrow_log
    assert [(e["kind"], e["days"], e["shares"], e["price"]) for e in log] == \
        [("borrow", 3, 1000, 20.0)]


def test_short_held_wednesday_to_thursday_pays_one_day():
    b = Book()
    wed = b.session("2024-10-02", [("09:45", AAA, -500, 20.0)], AAA=(-500, 21.0))
    assert wed == pytest.approx(500 * 21.0 * ETB * 1)           # $0.07292
    assert b.session("2024-10-03", [("11:00", AAA, 500, 20.5)]) == 0.0


def test_short_held_over_a_holiday_pays_the_calendar_days():
    b = Book()
    # 2024-07-03 -> 2024-07-05 (July 4th closed): 2 days at the 07-03 close
    assert b.session("2024-07-03", [("10:00", AAA, -1000, 20.0)], AAA=(-1000, 19.0)) == \
        pytest.approx(1000 * 19.0 * ETB * 2)
    # held on through Friday 07-05 (close $18) to Monday 07-08: 3 more days
    assert b.session("2024-07-05", AAA=(-1000, 18.0)) == pytest.approx(1000 * 18.0 * ETB * 3)


def test_same_day_round_trip_pays_no_borrow():
    b = Book()
    got = b.session("2024-10-02", [("09:45", AAA, -1000, 20.0), ("12:00", AAA, 1000, 19.0)])
    assert got == 0.0 and b.costs.borrow_log == [] and b.algo.metrics_tracker.commissions == []


def test_hard_to_borrow_rate_and_longs():
    b = Book(locate_fee_per_share=0.0)
    # 2,000 PNY held short over Wed -> Thu at a $2.90 close: HTB 63% a year
    assert b.session("2024-10-02", [("10:00", PNY, -2000, 3.0)], PNY=(-2000, 2.9)) == \
        pytest.approx(2000 * 2.9 * HTB)                        # $10.15
    # longs pay nothing
    assert b.session("2024-10-03", [("10:00", PNY, 4000, 3.0)], PNY=(2000, 3.1)) == 0.0


# ----------------------------------------------------------------------------- locate
def test_htb_short_pays_the_locate_fee_once():
    b = Book()  # locate $0.01 a share
    # scaled in twice (peak 2,000 sh), covered 1,000, re-shorted 1,000 (the day's locate is
    # reused), all covered by the close: one locate on 2,000 shares, no borrow
    fills = [("09:45", PNY, -1000, 3.0), ("09:50", PNY, -1000, 3.05),
             ("10:30", PNY, 1000, 2.9), ("11:00", PNY, -1000, 3.0), ("12:00", PNY, 2000, 2.8)]
    assert b.session("2024-10-02", fills) == pytest.approx(2000 * 0.01)
    assert [(e["kind"], e["shares"]) for e in b.costs.borrow_log] == [("locate", 2000)]


def test_locate_only_on_new_htb_shares_and_not_on_easy_to_borrow_names():
    b = Book()
    # day 1: short 1,000 PNY and hold it: locate 1,000 x $0.01 + one night of HTB borrow
    day1 = b.session("2024-10-02", [("10:00", PNY, -1000, 3.0)], PNY=(-1000, 3.0))
    assert day1 == pytest.approx(1000 * 0.01 + 1000 * 3.0 * HTB)
    # day 2: add 500 (locate on the 500 only), hold 1,500 over Thu -> Fri
    day2 = b.session("2024-10-03", [("10:00", PNY, -500, 3.2)], PNY=(-1500, 3.2))
    assert day2 == pytest.approx(500 * 0.01 + 1500 * 3.2 * HTB)
    # day 3: keep holding (no new short): borrow only, Fri -> Mon
    assert b.session("2024-10-04", PNY=(-1500, 3.1)) == pytest.approx(1500 * 3.1 * HTB * 3)
    # an easy-to-borrow name needs no paid locate
    assert b.session("2024-10-07", [("10:00", AAA, -1000, 20.0), ("11:00", AAA, 1000, 20.0)],
                     PNY=(-1500, 3.1)) == pytest.approx(1500 * 3.1 * HTB)


def test_locate_fee_is_configurable():
    b = Book(locate_fee_per_share=0.05)
    assert b.session("2024-10-02", [("10:00", PNY, -1000, 3.0), ("11:00", PNY, 1000, 3.0)]) \
        == pytest.approx(50.0)
    pub = C.make_config("published")
    assert pub.locate_fee_per_share == 0.0 and pub.borrow_annual_rate == 0.0
    assert not C.Costs(pub).charges_borrow


def test_borrow_charges_and_locate_charges_directly():
    rules = C.ShortSaleRules(C.make_config("realistic"))
    got = C.borrow_charges({AAA: 1000, PNY: 100}, {AAA: 20.0, PNY: 4.0}, 3, rules)
    assert [(g["asset"], g["annual_rate"], g["days"]) for g in got] == \
        [(AAA, 0.0025, 3), (PNY, 0.63, 3)]
    assert got[0]["fee"] == pytest.approx(20_000 * 0.0025 / 360 * 3)
    assert got[1]["fee"] == pytest.approx(400 * 0.63 / 360 * 3)
    # a short held from yesterday and increased: locate on the increase, at its fill price
    t = et("2024-10-02", "10:00")
    got = C.locate_charges([(t, PNY, -300, 2.5)], {PNY: -1000}, rules, 0.01)
    assert got == [{"kind": "locate", "asset": PNY, "shares": 300, "price": 2.5,
                    "fee_per_share": 0.01, "fee": pytest.approx(3.0)}]
    # covering part of an old short and re-shorting it is no new locate
    assert C.locate_charges([(t, PNY, 300, 2.5), (t, PNY, -300, 2.6)], {PNY: -1000}, rules,
                            0.01) == []
    # HTB is judged at the opening fill's price: $6 is easy to borrow
    assert C.locate_charges([(t, PNY, -300, 6.0)], {}, rules, 0.01) == []

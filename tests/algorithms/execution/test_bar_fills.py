"""Where each order style fills inside one hand-built minute bar (prices computed by hand)."""
import math

import pytest

from algorithms.execution import Limit, MarketOnClose, MarketOnOpen, Stop, StopLimit
from algorithms.execution.auctions import auction_impact, parkinson_sigma
from algorithms.execution.bar_fills import Bar, base_price
from algorithms.execution.book import Bracket

BUY, SELL = 1, -1
BAR = Bar(open=10.00, high=10.50, low=9.80, close=10.20, volume=1_000)


def price(style, direction, bar=BAR, first=False, last=False, official=None, triggered=False):
    return base_price(style, direction, bar, first_bar=first, last_bar=last,
                      official_close=official, triggered=triggered)[0]


def test_market_fills_at_the_close_of_a_bar_that_traded():
    assert price(None, BUY) == 10.20
    assert price(None, BUY, Bar(10, 10, 10, 10, 0)) is None  # no volume, no fill


def test_market_on_open_fills_at_the_opening_print_only_in_the_first_bar():
    assert price(MarketOnOpen(), SELL, first=True) == 10.00
    assert price(MarketOnOpen(), SELL, first=False) is None


def test_market_on_close_fills_at_the_official_close_only_in_the_last_bar():
    assert price(MarketOnClose(), BUY, last=True, official=10.37) == 10.37
    assert price(MarketOnClose(), BUY, last=False, official=10.37) is None
    assert price(MarketOnClose(), BUY, last=True, official=None) is None  # no closing print


@pytest.mark.parametrize("stop, direction, expected", [
    (10.40, BUY, 10.40),   # high 10.50 reaches it: fills at the stop, not at the close
    (10.60, BUY, None),    # high below the stop: no trigger
    (9.90, BUY, 10.00),    # the bar opened through the buy stop: fills at the open
    (9.90, SELL, 9.90),    # low 9.80 reaches the sell stop
    (9.70, SELL, None),
    (10.10, SELL, 10.00),  # opened below the sell stop: the open
])
def test_stop_triggers_on_high_or_low_and_fills_at_the_stop_or_the_gap_open(stop, direction,
                                                                            expected):
    assert price(Stop(stop), direction) == expected


def test_a_triggered_stop_rests_as_a_market_order():
    got, triggered = base_price(Stop(11.0), BUY, BAR, first_bar=False, last_bar=False,
                                triggered=True)
    assert (got, triggered) == (10.20, True)


@pytest.mark.parametrize("limit, direction, expected", [
    (9.90, BUY, 9.90),     # low 9.80 touches: fills at the limit
    (9.70, BUY, None),
    (10.45, SELL, 10.45),  # a target above: high 10.50 touches
    (10.60, SELL, None),
    (10.30, BUY, 10.30),   # opened below a buy limit: still the limit (no improvement)
])
def test_limit_fills_at_the_limit_when_touched(limit, direction, expected):
    assert price(Limit(limit), direction) == expected


def test_stop_limit():
    assert price(StopLimit(10.40, 10.45), BUY) == 10.40           # within the limit
    gap = Bar(open=10.60, high=10.70, low=10.42, close=10.65, volume=100)
    assert price(StopLimit(10.40, 10.45), BUY, gap) == 10.45       # came back to the limit
    assert price(StopLimit(10.40, 10.45), BUY,
                 Bar(10.60, 10.70, 10.50, 10.65, 100)) is None     # never back within it


def test_bracket_children_sit_on_the_right_side_of_each_fill():
    short = Bracket(stop_pct=0.20).children(fill_price=2.50, filled=-1000)
    assert short == [(1000, Stop(3.0))]                            # +20% above a short
    cents = Bracket(stop_pct=0.20, decimals=2).children(fill_price=0.4567, filled=-100)
    assert cents == [(100, Stop(0.55))]                            # 0.54804 in cents
    long = Bracket(stop_price=9.70, target_pct=0.15).children(fill_price=10.00, filled=500)
    assert long == [(-500, Stop(9.70)), (-500, Limit(11.5))]


def test_bad_prices_are_refused_when_the_order_is_built():
    for build in (lambda: Stop(0.0), lambda: Stop(float("nan")), lambda: Limit(-1.0),
                  lambda: Bracket(stop_pct=0.0), lambda: Bracket(target_pct=float("inf"))):
        with pytest.raises(ValueError):
            build()


def test_auction_impact_square_root_law_by_hand():
    sigma = parkinson_sigma(11.0, 10.0)
    assert sigma == pytest.approx(math.log(1.1) / (2 * math.sqrt(math.log(2))))  # ~0.05724
    # 10,000 shares into a 1,000,000-share cross at $10: 1.0 x 0.05724 x sqrt(0.01) x $10
    assert auction_impact(10.0, 10_000, 1_000_000, sigma, y=1.0, cap=0.10) == \
        pytest.approx(sigma * 0.1 * 10.0)
    # more shares cost more per share; the cap binds; zero Y costs nothing
    assert auction_impact(10.0, 40_000, 1_000_000, sigma, 1.0, 0.10) > \
        auction_impact(10.0, 10_000, 1_000_000, sigma, 1.0, 0.10)
    assert auction_impact(10.0, 10**9, 1_000, sigma, 1.0, 0.10) == pytest.approx(1.0)
    assert auction_impact(10.0, 10_000, 1_000_000, sigma, 0.0, 0.10) == 0.0
    # unknown auction volume costs the cap, never nothing
    assert auction_impact(10.0, 100, float("nan"), sigma, 1.0, 0.10) == pytest.approx(1.0)

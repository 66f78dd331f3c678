"""The volume-confirmed stop: ``Stop(price, min_volume=...)`` triggers only on a bar that
reaches the price AND trades at least ``min_volume`` shares (hand-built bars)."""
import pytest

from algorithms.execution import OrderBook, Stop
from algorithms.execution.bar_fills import Bar, base_price, stop_triggered

BUY, SELL = 1, -1
BAR = Bar(open=10.00, high=10.50, low=9.80, close=10.20, volume=1_000)


def fill(style, direction, bar=BAR, triggered=False):
    return base_price(style, direction, bar, first_bar=False, last_bar=False,
                      triggered=triggered)


def test_default_min_volume_is_the_plain_stop():
    assert Stop(10.40) == Stop(10.40, min_volume=0.0)
    assert fill(Stop(10.40), BUY) == fill(Stop(10.40, 0.0), BUY) == (10.40, True)


@pytest.mark.parametrize("min_volume, expected", [
    (999, (10.40, True)),     # 1,000 >= 999: a breakout on volume
    (1_000, (10.40, True)),   # exactly the threshold is enough ("at least")
    (1_001, (None, False)),   # the price was reached on too little volume: keeps resting
])
def test_buy_stop_needs_the_volume_in_its_trigger_bar(min_volume, expected):
    assert fill(Stop(10.40, min_volume=min_volume), BUY) == expected


def test_volume_does_not_trigger_without_the_price():
    assert fill(Stop(10.60, min_volume=10), BUY) == (None, False)


def test_gap_through_with_volume_fills_at_the_open():
    assert fill(Stop(9.90, min_volume=500), BUY) == (10.00, True)


def test_sell_stop_with_min_volume():
    assert fill(Stop(9.90, min_volume=500), SELL) == (9.90, True)
    assert fill(Stop(9.90, min_volume=5_000), SELL) == (None, False)


def test_once_triggered_the_rest_is_a_market_order_whatever_the_volume():
    thin = Bar(10.0, 10.1, 9.9, 10.05, 10)
    assert fill(Stop(10.40, min_volume=1_000_000), BUY, thin, triggered=True) == (10.05, True)


def test_bar_without_volume_never_triggers_a_volume_stop():
    nan_volume = Bar(10.0, 10.5, 9.9, 10.2, float("nan"))
    assert not stop_triggered(10.40, BUY, nan_volume, min_volume=1)
    assert stop_triggered(10.40, BUY, nan_volume)  # the plain stop ignores volume


def test_amend_moves_the_volume_threshold():
    book = OrderBook()
    book.register("a", Stop(10.40, min_volume=5_000))
    assert fill(book.style("a"), BUY) == (None, False)
    book.amend("a", Stop(10.40, min_volume=800))
    assert fill(book.style("a"), BUY) == (10.40, True)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "100"])
def test_bad_min_volume_is_refused(bad):
    with pytest.raises(ValueError):
        Stop(10.0, min_volume=bad)

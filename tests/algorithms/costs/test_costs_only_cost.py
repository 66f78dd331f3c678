"""Property (issue #10, "costs that can only cost"): for the same order and the same bar, a
``realistic`` fill is never better than a ``published`` fill -- price, and shares filled.

Random bars and orders (hypothesis); every order style. The one documented exception, an SSR
short posted at the ask (Rule 201), is kept out by a prior close that cannot trigger SSR here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zipline.finance.order import Order

from algorithms import costs as C
from algorithms.execution import Limit, MarketOnClose, MarketOnOpen, Stop
from tests.algorithms.costs.test_costs import AAA, FakeBlotter, FakeData, FakePosition

FIRST = pd.Timestamp("2024-10-01 13:31", tz="UTC")  # 09:31 ET: the session's first bar
MIDDAY = pd.Timestamp("2024-10-01 16:00", tz="UTC")
LAST = pd.Timestamp("2024-10-01 20:00", tz="UTC")   # 16:00 ET: the last bar


class BarData(FakeData):
    def _one(self, asset, field):
        if field == "last_traded":
            return self.current_dt
        return super()._one(asset, field)


class Algo:
    def __init__(self, position):
        self.metrics_tracker = type("T", (), {"positions": {AAA: FakePosition(position)}})()
        self.blotter = FakeBlotter()


@st.composite
def bar_and_order(draw):
    close = draw(st.floats(0.05, 500.0))
    spread = draw(st.floats(0.0, 0.2))
    open_ = close * (1 + draw(st.floats(-0.1, 0.1)))
    high = max(open_, close) * (1 + spread * draw(st.floats(0, 1)))
    low = min(open_, close) * (1 - spread * draw(st.floats(0, 1)))
    volume = draw(st.integers(1, 5_000_000))
    when = draw(st.sampled_from([FIRST, MIDDAY, LAST]))
    amount = draw(st.integers(1, 200_000)) * draw(st.sampled_from([1, -1]))
    ref = draw(st.sampled_from([low, close, high, (low + high) / 2]))
    style = draw(st.sampled_from(["market", "stop", "limit", "moo", "moc"]))
    style = {"market": None, "stop": Stop(ref), "limit": Limit(ref),
             "moo": MarketOnOpen(), "moc": MarketOnClose()}[style]
    position = draw(st.integers(-100_000, 100_000))
    return when, (open_, high, low, close, volume), amount, style, position


def run(preset, when, bar, amount, style, position):
    open_, high, low, close, volume = bar
    idx = pd.date_range(end=when, periods=12, freq="min")
    minutes = pd.DataFrame({"open": [close] * 11 + [open_], "high": [close] * 11 + [high],
                            "low": [close] * 11 + [low], "close": [close] * 12,
                            "volume": [volume] * 12}, index=idx)
    # prior close = today's low: no SSR (its ask-side fill is the documented exception)
    daily = pd.DataFrame({"low": [low, low, low], "high": [high, high, high],
                          "close": [low, low, close]})
    cfg = C.make_config(preset, htb_price=0.0) if preset == "realistic" else C.make_config(preset)
    model = C.GaplineSlippage(cfg, algo=Algo(position))
    order = Order(when - pd.Timedelta(minutes=1), AAA, amount)
    if style is not None:
        model.book.register(order.id, style)
    data = BarData(when, {AAA: minutes}, {AAA: daily})
    out = [(t.amount, t.price) for _, t in model.simulate(data, AAA, [order])]
    return out[0] if out else (0, None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bar_and_order())
def test_realistic_never_fills_better_than_published(case):
    when, bar, amount, style, position = case
    shares_r, price_r = run("realistic", when, bar, amount, style, position)
    shares_p, price_p = run("published", when, bar, amount, style, position)
    assert abs(shares_r) <= abs(shares_p)  # a volume cap may delay, never add
    if shares_r:
        direction = np.sign(amount)
        # a buy never pays less, a sell never receives more
        assert direction * price_r >= direction * price_p - 1e-9

"""Unit tests of algorithms/costs/ against hand computations on tiny hand-built bars."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from zipline.assets import Equity, ExchangeInfo
from zipline.finance.order import ORDER_STATUS, Order
from zipline.finance.slippage import FixedBasisPointsSlippage
from zipline.finance.transaction import Transaction

from algorithms import costs as C

EX = ExchangeInfo("NYSE", "NYSE", "US")
AAA = Equity(1, exchange_info=EX, symbol="AAA")
BBB = Equity(2, exchange_info=EX, symbol="BBB")
T0 = pd.Timestamp("2024-10-01 13:41", tz="UTC")  # 09:41 ET, end label of the 09:40 bar


# ----------------------------------------------------------------------------- fakes
class FakeData:
    """The slice of zipline's BarData the cost models use, over hand-built frames.

    ``minutes[asset]``: DataFrame indexed by UTC end-labelled minutes with open/high/low/close/
    volume; ``daily[asset]``: DataFrame (oldest first, the last row = today so far) with
    low/close.
    """

    def __init__(self, dt, minutes, daily=None):
        self.current_dt = pd.Timestamp(dt)
        self.minutes = minutes
        self.daily = daily or {}

    def _upto(self, asset):
        m = self.minutes[asset]
        return m[m.index <= self.current_dt]

    def _one(self, asset, field):
        m = self._upto(asset)
        if field == "price":
            c = m["close"].dropna()
            return float(c.iloc[-1]) if len(c) else np.nan
        if len(m) == 0 or m.index[-1] != self.current_dt:
            return 0 if field == "volume" else np.nan
        return m[field].iloc[-1]

    def current(self, assets, field):
        if isinstance(assets, (list, tuple, pd.Index)):
            return pd.Series({a: self._one(a, field) for a in assets})
        return self._one(assets, field)

    def history(self, assets, fields, bar_count, frequency):
        def one(asset, fld):
            if frequency == "1d":
                return self.daily[asset][fld].iloc[-bar_count:].reset_index(drop=True)
            m = self._upto(asset)
            if fld == "price":
                return m["close"].ffill().iloc[-bar_count:]
            return m[fld].iloc[-bar_count:]

        if isinstance(assets, list):
            return pd.DataFrame({a: one(a, fields) for a in assets})
        if isinstance(fields, list):
            return pd.DataFrame({f: one(assets, f) for f in fields})
        return one(assets, fields)


class FakePosition:
    def __init__(self, amount, last_sale_price=np.nan):
        self.amount = amount
        self.last_sale_price = last_sale_price


class FakeTracker:
    def __init__(self, positions=None):
        self.positions = positions or {}
        self.commissions = []

    def process_commission(self, commission):
        self.commissions.append(commission)


class FakeBlotter:
    def __init__(self):
        self.cancelled = []

    def cancel(self, order_id):
        self.cancelled.append(order_id)


class FakeAlgo:
    def __init__(self, positions=None):
        self.metrics_tracker = FakeTracker(positions)
        self.blotter = FakeBlotter()


def bars(closes, highs=None, lows=None, volumes=None, end=T0):
    n = len(closes)
    idx = pd.date_range(end=end, periods=n, freq="min")
    closes = np.asarray(closes, dtype=float)
    return pd.DataFrame({
        "open": closes,
        "high": np.asarray(highs if highs is not None else closes, dtype=float),
        "low": np.asarray(lows if lows is not None else closes, dtype=float),
        "close": closes,
        "volume": np.asarray(volumes if volumes is not None else [10_000] * n, dtype=float),
    }, index=idx)


def order(asset, amount, limit=None):
    return Order(T0 - pd.Timedelta(minutes=1), asset, amount, limit=limit)


def fills(model, data, asset, orders):
    out = []
    for o, txn in model.simulate(data, asset, orders):
        o.filled += txn.amount
        out.append((txn.amount, txn.price))
    return out


# ----------------------------------------------------------------------------- config
def test_presets_and_overrides():
    pub = C.make_config("published")
    assert (pub.slippage, pub.slippage_bps, pub.volume_limit) == ("fixed_bps", 3.0, 0.1)
    assert pub.ecn_fee_per_share == pub.sec_fee_rate == pub.taf_per_share == 0
    assert not pub.short_rules
    real = C.make_config("realistic", ecn_fee_per_share=0.0035)
    assert real.ecn_fee_per_share == 0.0035 and real.slippage == "spread" and real.short_rules
    # realistic: SEC fee and TAF from the dated schedules (None); a number pins a constant
    assert real.sec_fee_rate is None and real.taf_per_share is None
    assert C.make_config("realistic", sec_fee_rate=27.80e-6).sec_fee_rate == 27.80e-6
    zero = C.make_config("zero")
    assert zero.slippage == "none" and zero.volume_limit is None
    with pytest.raises(TypeError, match="unknown cost parameter"):
        C.make_config("realistic", ecn_fee=1)
    with pytest.raises(ValueError, match="unknown cost preset"):
        C.make_config("cheap")
    with pytest.raises(ValueError, match="ssr_mode"):
        C.make_config("realistic", ssr_mode="maybe")


# ----------------------------------------------------------------------------- commission
def test_commission_buy_is_ecn_only():
    m = C.GaplineCommission()
    assert m.fee(1000, 50.0) == pytest.approx(3.00)  # 1000 x $0.003


def test_commission_sell_adds_sec_and_taf():
    m = C.GaplineCommission()
    # on T0 (2024-10-01) the dated schedule gives $27.80/M and TAF 0.000166 (cap 8.30):
    # ECN 1000 x 0.003 = 3.00; SEC 50,000 x 27.80e-6 = 1.39; TAF 1000 x 0.000166 = 0.166,
    # rounded up to the cent = 0.17
    assert m.fee(-1000, 50.0, T0) == pytest.approx(3.00 + 1.39 + 0.17)
    unrounded = C.GaplineCommission(round_reg_fees=False)
    assert unrounded.fee(-1000, 50.0, T0) == pytest.approx(3.00 + 1.39 + 0.166)


def test_commission_taf_cap_per_trade():
    m = C.GaplineCommission()
    # 100,000 shares sold at $1 on T0: TAF 16.60 capped at 8.30; SEC 100,000 x 27.80e-6 = 2.78
    assert m.fee(-100_000, 1.0, T0) == pytest.approx(300.0 + 2.78 + 8.30)
    # the cap is per fill (each fill is one execution)
    o = order(AAA, -200_000)
    txn = Transaction(AAA, -100_000, T0, 1.0, o.id)
    assert m.calculate(o, txn) == pytest.approx(311.08)


def test_commission_parameters_and_zero_preset():
    m = C.GaplineCommission(ecn_fee_per_share=0.001, sec_fee_rate=8e-6, taf_per_share=0.0002,
                            taf_max_per_trade=1.0)
    assert m.fee(-500, 20.0) == pytest.approx(0.5 + 10_000 * 8e-6 + 0.1)
    z = C.GaplineCommission.from_config(C.make_config("published"))
    assert z.fee(-1000, 50.0) == 0.0 and z.fee(1000, 50.0) == 0.0


# ----------------------------------------------------------------------------- slippage
def test_fixed_bps_matches_zipline_with_partial_fills():
    """published == zipline's FixedBasisPointsSlippage(3 bps, 10% of volume) fill by fill."""
    m = bars([50.0, 50.5, 49.8], volumes=[3000, 2000, 1234])
    ours = C.GaplineSlippage(C.make_config("published"))
    ref = FixedBasisPointsSlippage(basis_points=3.0, volume_limit=0.1)
    o1, o2 = order(AAA, -1000), order(AAA, -1000)
    got, want = [], []
    for dt in m.index:
        data = FakeData(dt, {AAA: m})
        got += fills(ours, data, AAA, [o1])
        want += fills(ref, data, AAA, [o2])
    # int(0.1 x 3000) = 300, then 200, then 123 shares; sells fill 3 bps under the close
    assert [a for a, _ in got] == [-300, -200, -123]
    assert got == want
    assert got[0][1] == pytest.approx(50.0 * (1 - 0.0003))
    assert o1.open_amount == -377


def test_volume_cap_is_shared_by_orders_in_the_bar():
    m = bars([10.0], volumes=[5000])
    model = C.GaplineSlippage(C.make_config("published"))
    data = FakeData(T0, {AAA: m})
    got = fills(model, data, AAA, [order(AAA, 400), order(AAA, 400)])
    assert got == [(400, pytest.approx(10.003)), (100, pytest.approx(10.003))]  # 500 cap


def test_no_fill_without_volume_or_close():
    m = bars([10.0, np.nan], volumes=[5000, 0])
    model = C.GaplineSlippage(C.make_config("realistic"))
    assert fills(model, FakeData(T0, {AAA: m}), AAA, [order(AAA, 100)]) == []
    m2 = bars([10.0, 10.0], volumes=[5000, 5000])
    m2.iloc[-1, m2.columns.get_loc("close")] = np.nan
    assert fills(model, FakeData(T0, {AAA: m2}), AAA, [order(AAA, 100)]) == []


def test_zero_preset_fills_everything_at_close():
    m = bars([10.0], volumes=[10])
    model = C.GaplineSlippage(C.make_config("zero"))
    assert fills(model, FakeData(T0, {AAA: m}), AAA, [order(AAA, -5000)]) == [(-5000, 10.0)]


def test_high_low_half_spread_by_hand():
    cfg = C.make_config("realistic", spread_estimator="high_low", spread_window=2,
                        short_rules=False)
    # last two bars: ranges 0.10 and 0.06 -> mean (high-low)/2 = (0.05 + 0.03) / 2 = 0.04
    m = bars([20.0, 20.0, 20.0], highs=[21, 20.05, 20.03], lows=[19, 19.95, 19.97])
    model = C.GaplineSlippage(cfg)
    data = FakeData(T0, {AAA: m})
    assert fills(model, data, AAA, [order(AAA, 100)]) == [(100, pytest.approx(20.04))]
    assert fills(model, data, AAA, [order(AAA, -100)]) == [(-100, pytest.approx(19.96))]
    # spread_factor scales it
    model2 = C.GaplineSlippage(C.make_config(cfg, spread_factor=1.5))
    assert fills(model2, data, AAA, [order(AAA, 100)]) == [(100, pytest.approx(20.06))]


def test_corwin_schultz_by_hand():
    h = [10.10, 10.12]
    lo = [10.00, 10.01]
    b1 = math.log(10.10 / 10.00) ** 2 + math.log(10.12 / 10.01) ** 2
    g = math.log(10.12 / 10.00) ** 2
    k = 3 - 2 * math.sqrt(2)
    a = (math.sqrt(2 * b1) - math.sqrt(b1)) / k - math.sqrt(g / k)
    s = 2 * (math.exp(a) - 1) / (1 + math.exp(a))
    assert s > 0
    assert C.corwin_schultz_spread(h, lo) == pytest.approx(s)
    # a pair whose estimate is negative counts as zero
    assert C.corwin_schultz_spread([10.0, 12.0], [9.99, 11.99]) == 0.0
    assert math.isnan(C.corwin_schultz_spread([np.nan, 10.0], [np.nan, 9.0]))
    cfg = C.make_config("realistic", spread_window=1, short_rules=False)
    m = bars([10.05, 10.05], highs=h, lows=lo)
    model = C.GaplineSlippage(cfg)
    got = fills(model, FakeData(T0, {AAA: m}), AAA, [order(AAA, 10)])
    assert got == [(10, pytest.approx(10.05 + s / 2 * 10.05))]


def test_half_spread_floor_and_cap():
    cfg = C.make_config("realistic")
    # flat bars: estimator gives 0 -> floor max($0.005, 3 bp: the published preset's bps)
    assert C.half_spread(cfg, 10.0, [10, 10], [10, 10]) == pytest.approx(0.005)
    assert C.half_spread(cfg, 20.0, [20, 20], [20, 20]) == pytest.approx(0.006)
    assert C.half_spread(cfg, 200.0, [200, 200], [200, 200]) == pytest.approx(0.06)
    # cap at 500 bps
    hl = C.make_config(cfg, spread_estimator="high_low")
    assert C.half_spread(hl, 1.0, [2.0], [0.5]) == pytest.approx(0.05)


def test_limit_order_not_filled_worse_than_limit():
    m = bars([10.0])
    model = C.GaplineSlippage(C.make_config("published"))
    data = FakeData(T0, {AAA: m})
    # buy limit 10.001 triggers (close <= limit) but the slipped price 10.003 is worse
    assert fills(model, data, AAA, [order(AAA, 100, limit=10.001)]) == []
    assert fills(model, data, AAA, [order(AAA, 100, limit=10.01)]) == [(100, pytest.approx(10.003))]


# ----------------------------------------------------------------------------- short rules
def daily(lows, closes):
    return pd.DataFrame({"low": lows, "close": closes})


def test_ssr_trigger_today_and_carry_over():
    f = C.ShortSaleRules.ssr_from_daily
    # prior close 100; today's low 90.00 is exactly -10% -> triggered
    assert f([95, 98, 90.0], [100, 100, 95], 0.10) == (False, True)
    assert f([95, 98, 90.01], [100, 100, 95], 0.10) == (False, False)
    # yesterday's low 89 vs the close before (100): carries over to today
    assert f([99, 89, 95], [100, 92, 96], 0.10) == (True, False)
    assert f([np.nan, 89, 95], [np.nan, 92, 96], 0.10) == (False, False)


def _ssr_setup(position=0, close_path=(50.0, 49.0), mode="wait"):
    cfg = C.make_config("realistic", spread_estimator="high_low", spread_window=1,
                        ssr_mode=mode, htb_price=1.0)
    algo = FakeAlgo({AAA: FakePosition(position)} if position else {})
    rules = C.ShortSaleRules(cfg)
    model = C.GaplineSlippage(cfg, rules, algo)
    m = bars(list(close_path), highs=[c + 0.05 for c in close_path],
             lows=[c - 0.05 for c in close_path])
    d = {AAA: daily([59, 58, 48.5], [60, 60, 49.0])}  # prior close 60, low 48.5 -> SSR
    return model, algo, FakeData(T0, {AAA: m}, d)


def test_ssr_wait_blocks_new_short_on_downtick_and_doubles_spread():
    model, algo, data = _ssr_setup(close_path=(50.0, 49.0))  # down-tick bar
    o = order(AAA, -100)
    assert fills(model, data, AAA, [o]) == []
    assert o.open and o.open_amount == -100
    model2, _, data2 = _ssr_setup(close_path=(48.0, 49.0))  # up-tick bar
    # Rule 201: a short prints only above the national best bid -> posted at the ask
    # estimate, close + half-spread (high-low)/2 = 49.0 + 0.05
    assert fills(model2, data2, AAA, [order(AAA, -100)]) == [(-100, pytest.approx(49.05))]
    # buys pay the doubled half-spread too
    assert fills(model, data, AAA, [order(AAA, 100)]) == [(100, pytest.approx(49.10))]


def test_ssr_wait_lets_the_long_sale_part_through():
    model, algo, data = _ssr_setup(position=300, close_path=(50.0, 49.0))
    o = order(AAA, -500)
    assert fills(model, data, AAA, [o]) == [(-300, pytest.approx(48.90))]
    assert o.open_amount == -200 and o.open  # the 200-share short part waits


def test_ssr_reject_mode_rejects_new_shorts():
    model, algo, data = _ssr_setup(close_path=(48.0, 49.0), mode="reject")
    o = order(AAA, -100)
    assert fills(model, data, AAA, [o]) == []
    assert o.status == ORDER_STATUS.REJECTED and algo.blotter.cancelled == [o.id]
    assert model.rejected[0]["reason"].startswith("short-sale restriction")


def test_ssr_ignored_when_rules_off():
    cfg = C.make_config("published")
    model = C.GaplineSlippage(cfg)
    m = bars([50.0, 49.0])
    data = FakeData(T0, {AAA: m}, {AAA: daily([59, 58, 48.5], [60, 60, 49.0])})
    assert fills(model, data, AAA, [order(AAA, -100)]) == [(-100, pytest.approx(49 * 0.9997))]


def test_locate_rules(tmp_path):
    csv = tmp_path / "htb.csv"
    csv.write_text("ticker,borrow_annual_rate,borrow_bps_per_day,shortable\n"
                   "bbb,0.35,,1\nAAA,,,0\nddd,,40,1\n")
    cfg = C.make_config("realistic", htb_tickers_csv=str(csv), htb_price=5.0)
    rules = C.ShortSaleRules(cfg)
    CCC = Equity(3, exchange_info=EX, symbol="CCC")
    DDD = Equity(4, exchange_info=EX, symbol="DDD")
    assert not rules.locatable(AAA, 50.0)          # CSV: not shortable
    assert rules.locatable(BBB, 50.0) and rules.borrow_annual_rate(BBB, 50.0) == 0.35
    # a legacy bps-per-session column: 40 bps x 252 sessions = 100.8% a year
    assert rules.borrow_annual_rate(DDD, 50.0) == pytest.approx(40 * 252 / 1e4)
    assert rules.locatable(CCC, 3.0) and rules.borrow_annual_rate(CCC, 3.0) == 0.63  # HTB: price
    assert rules.borrow_annual_rate(CCC, 30.0) == 0.0025
    rej = C.ShortSaleRules(C.make_config("realistic", htb_policy="reject"))
    assert not rej.locatable(CCC, 3.0) and rej.locatable(CCC, 30.0)
    # the slippage backstop rejects the unlocatable short, but lets a long sale through
    model = C.GaplineSlippage(cfg, rules, FakeAlgo())
    m = bars([50.0, 50.0])
    data = FakeData(T0, {AAA: m}, {AAA: daily([50, 50, 50], [50, 50, 50])})
    o = order(AAA, -100)
    assert fills(model, data, AAA, [o]) == [] and o.status == ORDER_STATUS.REJECTED
    model2 = C.GaplineSlippage(cfg, rules, FakeAlgo({AAA: FakePosition(100)}))
    assert [a for a, _ in fills(model2, data, AAA, [order(AAA, -100)])] == [-100]


def test_borrow_charges_by_hand():
    rules = C.ShortSaleRules(C.make_config("realistic"))  # 0.25% a year ETB, 63% below $5
    # 1000 sh short at the close of $11, one night: 11,000 x 0.0025 / 360 x 1
    got = C.borrow_charges({AAA: 1000}, {AAA: 11.0}, 1, rules)
    assert got == [{"kind": "borrow", "asset": AAA, "shares": 1000, "price": 11.0,
                    "notional": 11_000.0, "annual_rate": 0.0025, "days": 1,
                    "fee": pytest.approx(11_000 * 0.0025 / 360)}]
    # penny short (HTB by price), over a weekend: 10,000 sh x $2.90 x 0.63 / 360 x 3
    got = C.borrow_charges({BBB: 10_000}, {BBB: 2.9}, 3, rules)
    assert got[0]["annual_rate"] == 0.63 and got[0]["days"] == 3
    assert got[0]["fee"] == pytest.approx(29_000 * 0.63 / 360 * 3)
    # no close, nothing charged
    assert C.borrow_charges({AAA: 1000}, {AAA: np.nan}, 1, rules) == []


def test_costs_end_of_session_books_fees_once():
    """Was: an intraday round trip paid one session of borrow (0.1 bps of $10,000 = $0.10).
    Now (issue #10 item 6): a short opened and covered the same session pays no borrow, and an
    easy-to-borrow name ($10 > htb_price) pays no locate either."""
    algo = FakeAlgo()
    costs = C.Costs(C.make_config("realistic"), algo=algo)
    costs.fills += [(T0, AAA, -1000, 10.0), (T0 + pd.Timedelta(minutes=5), AAA, 1000, 9.0)]

    class Portfolio:
        positions = {}

    class Current:
        def current(self, a, f):
            return 9.0

    assert costs.end_of_session(Portfolio(), T0 + pd.Timedelta(hours=6), Current()) == []
    assert algo.metrics_tracker.commissions == [] and costs.borrow_log == []
    assert costs.fills == []

    # held at the close of Tue 2024-10-01 ($9.50) to Wed: 1 day on 9,500 at 0.25% / 360
    class Short:
        positions = {AAA: FakePosition(-1000, 9.5)}

    costs.fills.append((T0, AAA, -1000, 10.0))
    charges = costs.end_of_session(Short(), T0 + pd.Timedelta(hours=6), Current())
    assert [c["fee"] for c in charges] == [pytest.approx(9_500 * 0.0025 / 360)]
    assert algo.metrics_tracker.commissions == [
        {"asset": AAA, "cost": pytest.approx(9_500 * 0.0025 / 360), "order": None}]
    assert costs.fills == [] and len(costs.borrow_log) == 1


def test_new_short_allowed_batched():
    cfg = C.make_config("realistic", ssr_mode="reject", htb_policy="reject")
    costs = C.Costs(cfg)
    m = {AAA: bars([50.0, 49.0]), BBB: bars([3.0, 3.0])}
    d = {AAA: daily([59, 58, 48.5], [60, 60, 49.0]), BBB: daily([3, 3, 3], [3, 3, 3])}
    ok = costs.new_short_allowed(FakeData(T0, m, d), [AAA, BBB])
    assert ok.to_dict() == {AAA: False, BBB: False}  # AAA under SSR, BBB hard to borrow
    assert C.Costs(C.make_config("published")).new_short_allowed(
        FakeData(T0, m, d), [AAA, BBB]).all()

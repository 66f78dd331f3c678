"""microcap_short's rules on hand-built candidates (``select_gap_ups``): the 09:25 price band,
the EMA and 2-sigma tests, the top-50 gaps, the 30-minute dollar-volume ranking, the
reference's sizing and the top 5 (every expected value worked out by hand here)."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from algorithms import microcap_short as M
from algorithms.execution import Bracket, Stop
from algorithms.params import module_params
from bundles.market import trading_calendar

BTS = pd.Timestamp("2024-12-03 13:45", tz="UTC")  # 08:45 ET, before_trading_start


class Cut:
    """An ExtendedHours stand-in serving the 09:25 cut and recording what was asked."""

    def __init__(self, frame):
        self.frame, self.asked = frame, []

    def premarket_cut(self, session, assets, now):
        self.asked.append((session, now))
        return self.frame.reindex(assets)


def context(cands, cut, value=1_000_000.0, **overrides):
    params = {**module_params(vars(M)), **{k.upper(): v for k, v in overrides.items()}}
    return SimpleNamespace(params=SimpleNamespace(**params), candidates=cands,
                           get_datetime=lambda: BTS, trading_calendar=trading_calendar(),
                           portfolio=SimpleNamespace(portfolio_value=value),
                           _gapline_extended_hours=Cut(cut))


def frames(rows):
    """rows: name -> (prior_close, sigma, ema20, last_0925, window_dollar_volume)."""
    idx = pd.Index(list(rows), dtype=object)
    cands = pd.DataFrame({"prior_close": [r[0] for r in rows.values()],
                          "sigma": [r[1] for r in rows.values()],
                          "ema20": [r[2] for r in rows.values()]}, index=idx)
    cut = pd.DataFrame({"last": [r[3] for r in rows.values()],
                        "window_dollar_volume": [r[4] for r in rows.values()]}, index=idx)
    return cands, cut


def select(rows, **kw):
    cands, cut = frames(rows)
    cands.index = [SimpleNamespace(sid=i, name=n) for i, n in enumerate(cands.index)]
    cut.index = cands.index
    ctx = context(cands, cut, **kw)
    out = M.select_gap_ups(ctx, None)
    return out.rename(index=lambda a: a.name), ctx


def test_price_band_is_on_the_0925_price_not_the_prior_close():
    got, _ = select({
        "IN": (0.08, 0.05, 0.05, 0.12, 1e5),    # prior 0.08, 09:25 price 0.12 > 0.10: in
        "FLOOR": (0.08, 0.05, 0.05, 0.10, 1e5),  # 0.10 is not > 0.10
        "CAP": (4.0, 0.05, 3.0, 5.00, 1e5),      # 5.00 <= 5.00: in
        "OVER": (4.0, 0.05, 3.0, 5.01, 1e5),     # above 5.00
    })
    assert set(got.index) == {"IN", "CAP"}


def test_ema_and_two_sigma_tests():
    got, _ = select({
        "OK": (1.00, 0.05, 1.05, 1.10, 1e5),      # gap 10% = 2.0 sigma, price >= ema
        "WEAK": (1.00, 0.05, 1.05, 1.09, 1e5),    # gap 9% = 1.8 sigma
        "BELOW_EMA": (1.00, 0.05, 1.20, 1.15, 1e5),
    })
    assert list(got.index) == ["OK"]
    assert got.loc["OK", "zscore"] == pytest.approx(2.0)


def test_no_window_volume_is_not_ranked_and_ranking_is_by_dollar_volume():
    got, _ = select({
        "A": (1.0, 0.01, 0.5, 1.5, 2e5),
        "B": (1.0, 0.01, 0.5, 1.5, 9e5),
        "C": (1.0, 0.01, 0.5, 1.5, np.nan),  # no bar in 08:55..09:24: dropped
    })
    assert list(got.index) == ["B", "A"]


def test_reference_sizing_over_all_ranked_names_then_top_5():
    rows = {f"N{i}": (1.0, 0.01, 0.5, 2.0, 1e6 - i) for i in range(7)}
    got, ctx = select(rows, max_positions=5)
    # 0.5 x 1,000,000 / 7 ranked names / $2.00 = 35,714.28 -> round -> 35,714 shares
    assert len(got) == 5 and (got["shares"] == 35_714).all()
    assert list(got.index) == ["N0", "N1", "N2", "N3", "N4"]
    session, now = ctx._gapline_extended_hours.asked[0]
    assert session == pd.Timestamp("2024-12-03") and now == BTS  # today's cut, asked at 08:45


def test_top_50_gaps_before_the_ranking():
    rows = {f"G{i:02d}": (1.0, 0.01, 0.5, 1.0 + 0.5 + i / 100, 1e6 - 1000 * i) for i in range(52)}
    rows["G00"] = (1.0, 0.01, 0.5, 1.40, 9e9)  # the smallest gap with the most dollar volume
    rows["G01"] = (1.0, 0.01, 0.5, 1.41, 8e9)
    got, _ = select(rows, max_positions=60)
    assert "G00" not in got.index and "G01" not in got.index and len(got) == 50


def test_stop_is_twenty_percent_over_each_fill_in_cents():
    assert (M.STOP_PCT, M.STOP_DECIMALS) == (0.20, 2)  # round(fill.FillPrice*1.2, 2)
    bracket = Bracket(stop_pct=M.STOP_PCT, decimals=M.STOP_DECIMALS)
    assert bracket.children(fill_price=1.2345, filled=-1000) == [(1000, Stop(1.48))]


def test_default_costs_are_realistic_and_runs_use_the_module_default(monkeypatch):
    # the reference's README names spread and borrow as its backtest's flaws: realistic by
    # default; runner.run without costs= runs the module's COSTS
    assert M.COSTS == "realistic"
    from algorithms import runner

    seen = {}
    monkeypatch.setattr(runner, "make_config", lambda preset, **kw: seen.setdefault("p", preset))
    monkeypatch.setattr(runner, "bundle_history", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("stop before zipline")))
    with pytest.raises(RuntimeError, match="stop before zipline"):
        runner.run("microcap_short", "2024-12-02", "2024-12-03")
    assert seen["p"] == "realistic"


def test_constants_are_the_references():
    assert (M.MIN_PRICE, M.MAX_PRICE, M.MIN_GAP_SIGMAS, M.TOP_GAPS, M.MAX_POSITIONS,
            M.SHORT_FRACTION, M.COVER_MINUTES_AFTER_OPEN) == (0.10, 5.00, 2.0, 50, 5, 0.5, 150)


# ----------------------------------------------------------------------------- the SPY hedge
# microshort.py line 36: Schedule.On(DateRules.Every(DayOfWeek.Monday), TimeRules.At(9, 35),
# RebalanceSPY); line 122: SetHoldings('SPY', 0.4); line 336: CoverShorts skips 'SPY'
def test_hedge_constants_are_the_references():
    assert (M.HEDGE_SYMBOL, M.HEDGE_WEIGHT, M.HEDGE_WEEKDAY, M.HEDGE_MINUTES_AFTER_OPEN) == \
        ("SPY", 0.40, 0, 5)  # SPY, 40%, Monday, 09:35
    assert "HEDGE_EXIT_REASON" not in module_params(vars(M))  # a label, not a parameter


class Equity:
    """A hashable stand-in for zipline's SPY asset."""
    sid, symbol = 8, "SPY"


class HedgeRun:
    """A fake algorithm for ``rebalance_hedge``: a hand-built SPY price path, the account
    marked to it (cash + SPY shares x price) and the orders sent through ``place``, filled at
    the price they were sized at (the fill model is not what is tested here)."""

    def __init__(self, monkeypatch, cash=1_000_000.0, weight=0.40):
        self.cash, self.shares, self.price, self.now, self.sent = cash, 0, np.nan, None, []
        self.spy = Equity()
        self.ctx = SimpleNamespace(
            hedge_asset=self.spy, hedge_orders={}, get_datetime=lambda: self.now,
            params=SimpleNamespace(HEDGE_WEIGHT=weight, HEDGE_WEEKDAY=M.HEDGE_WEEKDAY),
            portfolio=self)
        self.data = SimpleNamespace(
            can_trade=lambda assets: {a: True for a in assets},
            current=lambda assets, field: ({a: self.price for a in assets}
                                           if isinstance(assets, list) else self.price))
        monkeypatch.setattr(M, "place", self.place)
        monkeypatch.setattr(M.common, "positions", lambda ctx: (
            {self.spy: SimpleNamespace(amount=self.shares)} if self.shares else {}))
        monkeypatch.setattr(M.algo, "record", lambda **kw: self.__dict__.update(recorded=kw))

    @property
    def portfolio_value(self):
        return self.cash + self.shares * self.price

    def place(self, ctx, asset, amount, style=None, bracket=None):
        assert asset is self.spy and style is None and bracket is None  # a market order
        self.sent.append(amount)
        self.cash -= amount * self.price
        self.shares += amount
        return f"o{len(self.sent)}"

    def at(self, day, price, clock="09:35"):
        self.now, self.price = pd.Timestamp(f"{day} {clock}", tz="America/New_York"), price
        before = len(self.sent)
        M.rebalance_hedge(self.ctx, self.data)
        return self.sent[-1] if len(self.sent) > before else None


def test_hedge_bought_on_the_first_monday_then_rebalanced_to_40_percent(monkeypatch):
    run = HedgeRun(monkeypatch)
    # Mon 2024-12-02, SPY $500: 0.4 x 1,000,000 / 500 = 800 shares
    assert run.at("2024-12-02", 500.0) == 800 and run.shares == 800
    # Tue..Fri: no rebalance, whatever SPY does
    for day, px in [("2024-12-03", 520.0), ("2024-12-04", 530.0), ("2024-12-06", 560.0)]:
        run.at(day, px)
    assert run.sent == [800]
    # Mon 12-09, SPY $550: value 600,000 + 800 x 550 = 1,040,000; 0.4 x 1,040,000 / 550
    # = 756.36 -> 756 shares: sell 44
    assert run.at("2024-12-09", 550.0) == -44 and run.shares == 756
    # Mon 12-16, SPY $450: value 1,040,000 - 756 x 100 = 964,400; 0.4 x 964,400 / 450
    # = 857.24 -> 857 shares: buy 101
    assert run.at("2024-12-16", 450.0) == 101 and run.shares == 857
    assert run.portfolio_value == pytest.approx(964_400.0)
    # every hedge order is labelled for the round-trip analysis
    assert run.recorded == {"exit_reasons": {"o1": "hedge rebalance", "o2": "hedge rebalance",
                                             "o3": "hedge rebalance"}}


def test_hedge_skips_the_week_of_a_monday_holiday(monkeypatch):
    """DateRules.Every(DayOfWeek.Monday) lists calendar Mondays (LEAN's DateRules.cs: no
    roll to the next trading day, unlike WeekStart("SPY") or zipline's week_start): after
    Labor Day (Mon 2024-09-02) the Tuesday session does not rebalance."""
    run = HedgeRun(monkeypatch)
    assert run.at("2024-08-26", 500.0) == 800
    assert run.at("2024-09-03", 400.0) is None and run.sent == [800]  # Tue: nothing sent
    assert M.is_hedge_day(pd.Timestamp("2024-09-02 09:35", tz="America/New_York"))  # (closed)
    assert not M.is_hedge_day(pd.Timestamp("2024-09-03 09:35", tz="America/New_York"))
    # Mon 09-09, SPY $400: value 600,000 + 800 x 400 = 920,000 -> 920 shares: buy 120
    assert run.at("2024-09-09", 400.0) == 120


def test_hedge_rebalance_is_monday_in_new_york_not_utc():
    # 2024-12-09 00:30 UTC is Sunday 19:30 in New York
    assert not M.is_hedge_day(pd.Timestamp("2024-12-09 00:30", tz="UTC"))
    assert M.is_hedge_day(pd.Timestamp("2024-12-09 14:35", tz="UTC"))


def test_hedge_order_amount_whole_shares_never_above_the_weight():
    assert M.hedge_order_amount(0.4, 1_000_000.0, 500.0, 0) == 800
    assert M.hedge_order_amount(0.4, 1_000_000.0, 501.0, 0) == 798  # 798.40 -> 798
    assert M.hedge_order_amount(0.4, 1_000_000.0, 500.0, 800) == 0   # on target: no order
    assert M.hedge_order_amount(0.4, 1_000_000.0, 500.0, 900) == -100
    assert M.hedge_order_amount(0.0, 1_000_000.0, 500.0, 900) == -900
    assert M.hedge_order_amount(0.4, 1_000_000.0, float("nan"), 10) == 0  # no price: none


def test_hedge_weight_zero_means_no_hedge_asset_and_no_schedule(monkeypatch):
    looked_up, scheduled = [], []
    monkeypatch.setattr(M.algo, "symbol", lambda s: looked_up.append(s) or s)
    p = SimpleNamespace(HEDGE_WEIGHT=0.0, HEDGE_SYMBOL="SPY")
    assert M.hedge_asset(p) is None and looked_up == []
    assert M.hedge_asset(SimpleNamespace(HEDGE_WEIGHT=0.4, HEDGE_SYMBOL="SPY")) == "SPY"
    monkeypatch.setattr(M.common, "prepare", lambda *a: None)
    monkeypatch.setattr(M.algo, "schedule_function", lambda f, *a: scheduled.append(f))
    ctx = SimpleNamespace(gapline_overrides={"HEDGE_WEIGHT": 0})
    M.initialize(ctx)
    assert ctx.hedge_asset is None and ctx.overnight_assets == frozenset()
    assert M.rebalance_hedge not in scheduled and M.cover_all in scheduled


def test_noon_cover_keeps_the_hedge(monkeypatch):
    # the overnight exemption lives in common.close_positions: the short is covered and its
    # stop cancelled, the hedge (context.overnight_assets) keeps its position and its order
    import zipline.api

    ordered, cancelled = [], []
    monkeypatch.setattr(zipline.api, "get_open_orders",
                        lambda: {"SPY": ["spy order"], "ABC": ["abc stop"]})
    monkeypatch.setattr(zipline.api, "cancel_order", cancelled.append)
    monkeypatch.setattr(zipline.api, "order", lambda asset, amount: ordered.append((asset, amount)))
    monkeypatch.setattr(M.common, "tradable", lambda data, assets: list(assets))
    positions = {"SPY": SimpleNamespace(amount=80), "ABC": SimpleNamespace(amount=-100)}
    M.cover_all(SimpleNamespace(overnight_assets=frozenset({"SPY"}),
                                portfolio=SimpleNamespace(positions=positions)), None)
    assert ordered == [("ABC", 100)] and cancelled == ["abc stop"]

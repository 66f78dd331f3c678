"""Orders as a broker executes them, simulated on minute bars.

zipline fills every order at the NEXT bar's close and its ``StopOrder`` triggers on the bar
close. gapline's strategies need the order types their references use, so gapline keeps its
own order styles (:mod:`.styles`), decides triggers and base prices from each bar's
open/high/low/close (:mod:`.bar_fills`), fills auction orders at the official prints of the
bundle's auction table (:mod:`.auctions`), and places orders (with attached protective
children) through :mod:`.book`. The cost model (:mod:`algorithms.costs.slippage`) applies its
slippage on top of these base prices; a fill never improves on them.
"""
from .book import Bracket, OrderBook, place, place_value
from .styles import Limit, MarketOnClose, MarketOnOpen, Stop, StopLimit

__all__ = ["Bracket", "Limit", "MarketOnClose", "MarketOnOpen", "OrderBook", "Stop", "StopLimit", "place",
           "place_value"]

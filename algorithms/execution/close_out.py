"""Flat by the close, every session: the closing auction takes whatever is still held.

At the exchanges' MOC cutoff (:data:`~algorithms.execution.styles.MOC_CUTOFF_MINUTES` before
the close: 15:50, 12:50 on half days) every open order is cancelled and every position gets a
market-on-close order for its whole size. The closing cross fills MOC orders in full at the
official close, so a position left over by a volume cap, a halted exit bar or a late signal
never rides overnight. A name with no closing print (halted, delisted) is reported by the cost
model (log line, ``unclosed_at_close`` in the perf frame) and stays open.

The one exception is a leg the strategy holds overnight by design: the assets in
``context.overnight_assets`` (microcap_short's SPY hedge) get no MOC order, so they are
neither closed nor counted in ``unclosed_at_close``; their open orders are cancelled like all
others.
"""
from __future__ import annotations

from ..common import cancel_open_orders, overnight_assets
from .book import place
from .styles import MOC_CUTOFF_MINUTES, MarketOnClose


def flatten_at_close(context, data):
    """Cancel open orders; send every position to the closing auction, except the assets in
    ``context.overnight_assets``."""
    # common.close_positions' exemption; unlike it, the kept legs' open orders are cancelled
    keep = overnight_assets(context)
    cancel_open_orders(context)
    for asset, position in list(context.portfolio.positions.items()):
        if position.amount and asset not in keep:
            place(context, asset, -position.amount, MarketOnClose())


def reset_unclosed(context, data):
    """Start the session's ``unclosed_at_close`` count at 0 (zipline keeps recorded values)."""
    from zipline.api import record

    record(unclosed_at_close=0)


def schedule_flat_by_close(context):
    """Run :func:`flatten_at_close` at the MOC cutoff of every session (and reset the
    session's ``unclosed_at_close`` at the open)."""
    from zipline import api as algo

    algo.schedule_function(reset_unclosed, algo.date_rules.every_day(),
                           algo.time_rules.market_open())
    algo.schedule_function(flatten_at_close, algo.date_rules.every_day(),
                           algo.time_rules.market_close(minutes=MOC_CUTOFF_MINUTES))

"""The ingest's assets -> zipline's asset db (equities and exchanges)."""
from __future__ import annotations

import pandas as pd

from .. import zipline_writers


def write_assets(asset_db_writer, assets: pd.DataFrame, ratios: dict,
                 calendar_name: str) -> pd.DataFrame:
    """Write one equity per sid of ``assets``; return ``assets`` plus ``has_minute_bars`` and
    ``ohlc_ratio`` (from the minute pass's ``ratios``) for the side tables and the report."""
    a = assets
    exchange = a["primary_exchange"].fillna("UNKNOWN")
    equities = pd.DataFrame({
        "symbol": a["symbol"],
        "asset_name": a["name"],
        "start_date": a["start_date"],
        "end_date": a["end_date"],
        "first_traded": a["start_date"],
        # zipline closes positions the day after an asset's last bar
        "auto_close_date": a["end_date"] + pd.Timedelta(days=1),
        "exchange": exchange,
    }, index=a.index)
    exchanges = pd.DataFrame({"exchange": sorted(exchange.unique())})
    # canonical_name is the calendar zipline's can_trade() opens (asset.exchange); every US
    # venue keeps the bundle calendar's hours, and a per-venue name would build a calendar
    # per venue in every backtest (~0.5 s each) or raise for one exchange_calendars lacks
    # ("UNKNOWN"). Polygon's MIC stays in asset.exchange_full and gapline/assets.parquet.
    exchanges["canonical_name"] = calendar_name
    exchanges["country_code"] = "US"  # without it every Pipeline fails to find a domain
    zipline_writers.write_asset_db(asset_db_writer, equities, exchanges)
    return assets.assign(
        has_minute_bars=assets.index.isin(list(ratios)),
        ohlc_ratio=pd.Series(ratios, dtype="float64").reindex(assets.index))

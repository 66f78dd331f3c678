"""The demo's fixed parameters: dates, seeds, rates, the screen it plants gaps for, special days."""
from __future__ import annotations

DEMO_START = "2024-07-01"
DEMO_END = "2024-12-31"
DEMO_VERSION = "4"
SEED = 20240701
MARKER = "DEMO_VERSION"
MANIFEST = "demo_manifest.json"
LAST_UPDATED = "2025-01-02T00:00:00Z"

# Exchange MICs of the generated reference data (``primary_exchange``).
NYSE_MIC = "XNYS"
NASDAQ_MIC = "XNAS"
NYSE_AMERICAN_MIC = "XASE"
NYSE_ARCA_MIC = "ARCX"

NS_PER_MINUTE = 60_000_000_000
PRE_MINUTES = 330   # 04:00 .. 09:29 ET
POST_MINUTES = 240  # the close .. the close + 4 h
MIN_PRICE = 0.0001
EWM_SPAN = 63
SELL_GAP_RATE = 0.015
PUMP_RATE = 0.03
SQUEEZE_RATE = 0.25       # share of pumps that squeeze 20-80 % above the open in the first hour
SCREEN_GAP_RATE = 0.10    # sell gaps planted on names that pass the sell-gap screen
GAP_AND_GO_RATE = 0.03    # gap-and-go days of low-float small/mid caps
EVENTS_FROM = "2024-10-01"  # first session of the screened sell gaps and gap-and-go days
LOW_FLOAT = 50e6          # gap-and-go names: shares outstanding below this
GAP_AND_GO_PRICE = (5.5, 34.0)  # prior close band of gap-and-go names (above the $5 microcap band)
# The sell-gap screen as the pipeline computes it (factors.screens.sell_gap_pipeline).
SCREEN_ADV_WINDOW = 30
SCREEN_TOP = 11           # the most liquid common stocks (the screen keeps the top decile, ~14)
SCREEN_STD_WINDOW = 63
SCREEN_STD_DECAY = 0.99
SCREEN_SMA_WINDOW = 20
SCREEN_MIN_CLOSE = 10.0

# Special dates (sessions).
FORWARD_SPLIT_DATE = "2024-10-15"
REVERSE_SPLIT_DATE = "2024-11-18"
DELISTED_LAST_SESSION = "2024-09-13"
REUSED_A_LAST_SESSION = "2024-08-02"
REUSED_B_FIRST_SESSION = "2024-10-16"
FULL_DAY_HALT_SESSION = "2024-09-25"
INTRADAY_HALT_SESSION = "2024-08-21"
INTRADAY_HALT = ("11:02", "11:28")  # no bar starts in [11:02, 11:28) ET
UNSORTED_SESSION = "2024-08-14"
REUSED_TICKER = "RELO"
# Dated ticker details (``raw/reference/ticker_details/``): sampled like ``gapline download``
# does (month-ends from 90 days before DEMO_START, listings, splits). The small cap with the
# fewest shares sells 25 % more shares on OFFERING_DATE (its counts before are 1/1.25 of the
# current one); split names' counts before the split are in pre-split shares.
DETAILS_EVERY = "1M"
OFFERING_DATE = "2024-07-22"
OFFERING_RATIO = 1.25

ETF_SPECS = [  # ticker, name, price, beta, idiosyncratic vol, minute volume, (ex-date, amount) x2
    ("IWM", "iShares Russell 2000 ETF", 203.0, 1.25, 0.007, 30000,
     [("2024-09-25", 0.62), ("2024-12-17", 0.64)]),
    ("QQQ", "Invesco QQQ Trust, Series 1", 479.0, 1.2, 0.004, 40000,
     [("2024-09-23", 0.68), ("2024-12-23", 0.72)]),
    ("SPY", "SPDR S&P 500 ETF Trust", 545.0, 1.0, 0.001, 60000,
     [("2024-09-20", 1.75), ("2024-12-20", 1.97)]),
]

"""Dated US regulatory sell-side fees: SEC Section 31 and FINRA Trading Activity Fee (TAF).

Both apply to **sales only** (long sales and short sales alike); buys pay neither.

* :data:`SEC_SECTION_31`: ``(effective date, dollars per $1,000,000 sold, citation)``;
  :func:`sec_fee_rate` gives the rate in force on a date as dollars per dollar sold.
* :data:`FINRA_TAF`: ``(effective date, dollars per share sold, maximum dollars per trade,
  citation)``; :func:`taf` gives ``(per_share, max_per_trade)`` in force on a date.

Each row is in force from its date (inclusive) until the next row's date; a date is looked up
with :func:`bisect.bisect_right` (the boundary day itself already pays the new rate). Dates
before the first row raise :class:`ValueError`; the last row stays in force after its date
(until someone adds the next row: the FY2027 Section 31 rate was not known on 2026-11-30).

Date basis. We look both fees up by the fill's **trade date** in New York time (what a broker
prints on the confirmation). Strictly, an SRO's Section 31 liability for a clearing-reported
sale accrues on its *charge date*, the settlement date (17 CFR 240.31(a)(3)(i)), so on the one
or two sessions before a rate change a broker may already bill the new rate; the difference is
at most one or two sessions of fees per change and is ignored. FINRA assesses the TAF by
transaction (trade) date (SR-FINRA-2026-021 speaks of "transactions from October 1, 2026").

Rounding (what :class:`~algorithms.costs.commission.GaplineCommission` does with
``round_reg_fees=True``, the default): brokers pass each fee through per trade **rounded up
to the next cent** (so a non-zero fee is at least $0.01): Motif Investing's regulatory-fee FAQ
("Fee is rounded up to the nearest penny" for the SEC fee; the TAF "with a minimum charge of
$0.01 ... rounded up to the nearest penny"), Just2Trade's fee page (a $2,500 sale: "$0.054 =
$0.06 (rounded up to the nearest penny)"). The SEC and FINRA rules themselves define the SROs'
aggregate liabilities, not a per-trade rounding; the per-trade cent rounding is broker practice.
FINRA By-Laws Schedule A, Section 1: no TAF is assessed when the execution price is below the
per-share rate (quoted on Just2Trade's fee page); :func:`taf_fee` applies it.

Verification. Every row was cross-checked against at least two public sources (the SEC order /
fee rate advisory or FINRA notice / rule filing named in the row, plus an independent copy:
a FINRA Information Notice, a law-firm or trade-press summary, a broker fee page, or another
project's table that quotes the Federal Register text), except where a row's comment says
"single source" -- there the effective date follows from the statutory rule (Section 31(g)/(j):
30 days after the regular appropriation before Dodd-Frank, 60 days after it since; mid-year
adjustments on April 1) applied to the appropriation date the SEC order states, and the rate is
confirmed by the next notice's "current rate".
"""
from __future__ import annotations

import bisect
import datetime as _dt

import pandas as pd

from bundles.market import ET

# --------------------------------------------------------------------------------------------
# SEC Section 31 transaction fee: (effective date, $ per $1,000,000 of covered sales, citation)
# --------------------------------------------------------------------------------------------
SEC_SECTION_31: tuple[tuple[_dt.date, float, str], ...] = (
    # FY2008 mid-year adjustment, $11.00 -> $5.60: SEC Fee Rate Advisory #7 for FY2008 (press
    # release 2008-25); FINRA Information Notice 3/10/08 ("effective April 1, 2008 ... will
    # decrease from $11.00 per million to $5.60 per million").
    (_dt.date(2008, 4, 1), 5.60,
     "SEC Fee Rate Advisory #7 FY2008 (2008-25); FINRA Information Notice 3/10/08"),
    # FY2009 rate $25.70: SEC press release 2009-56 (Fee Rate Advisory, FY2009 appropriation of
    # 2009-03-11 + 30 days). Single source for the date; the rate is confirmed as "the current
    # rate of $25.70" by SEC Fee Rate Advisory #1 for FY2010 (2009-100) and #2 (2009-209).
    (_dt.date(2009, 4, 10), 25.70,
     "SEC press release 2009-56 (FY2009); rate confirmed by Fee Rate Advisory #1/#2 FY2010"),
    # FY2010 annual rate, $25.70 -> $12.70 "effective January 15, 2010": SEC press release
    # 2009-270 (Fee Rate Advisory FY2010); order of April 30, 2009 (Release 33-9030).
    (_dt.date(2010, 1, 15), 12.70,
     "SEC press release 2009-270 (Fee Rate Advisory FY2010); Release 33-9030"),
    # FY2010 mid-year adjustment, $12.70 -> $16.90 effective April 1, 2010: SEC order 75 FR 9964
    # (2010-03-04, FR Doc 2010-4530); FINRA Information Notice 3/10/10.
    (_dt.date(2010, 4, 1), 16.90,
     "SEC FY2010 mid-year order, 75 FR 9964; FINRA Information Notice 3/10/10"),
    # FY2011, $16.90 -> $19.20 "effective Jan. 21, 2011": SEC Fee Rate Advisory #5 for FY2011
    # (press release 2010-255); rate set by Fee Rate Advisory #1 FY2011 (2010-66, Release
    # 33-9122).
    (_dt.date(2011, 1, 21), 19.20,
     "SEC Fee Rate Advisory #5 FY2011 (2010-255); Fee Rate Advisory #1 FY2011 (2010-66)"),
    # FY2012, $19.20 -> $18.00 effective February 21, 2012: SEC Fee Rate Advisory #5 for FY2012
    # (press release 2012-15, Jan. 20, 2012); Katten Corporate & Financial Weekly Digest,
    # "SEC reduces Exchange Act fees for securities transactions" (Jan. 2012).
    (_dt.date(2012, 2, 21), 18.00,
     "SEC Fee Rate Advisory #5 FY2012 (2012-15); Katten CFWD Jan. 2012"),
    # FY2012 mid-year adjustment to $22.40 effective April 1, 2012: SEC press release 2012-35.
    # Rate confirmed by SEC Fee Rate Advisory #2 for FY2013 (press release 2012-232: "remain at
    # the current rate of $22.40 per million"); the April 1 date by two independent public
    # tables (Section 31(j)(2): mid-year adjustments take effect April 1).
    (_dt.date(2012, 4, 1), 22.40,
     "SEC press release 2012-35 (FY2012 mid-year); Fee Rate Advisory #2 FY2013 (2012-232)"),
    # FY2013, $22.40 -> $17.40: SEC Release 34-69449 (Apr. 25, 2013), 78 FR 25515; the
    # FY2013 appropriation (continuing resolution) was signed March 26, 2013, the rate takes
    # effect 60 days later = May 25, 2013 (SEC press release 2013-74). Single source for the
    # date (derived as described); rate confirmed by FINRA Information Notice 3/3/14 ("its
    # current rate of $17.40 per million").
    (_dt.date(2013, 5, 25), 17.40,
     "SEC Release 34-69449, 78 FR 25515 (2013-74); FINRA Information Notice 3/3/14"),
    # FY2014, $17.40 -> $22.10 "Effective March 18, 2014": FINRA Information Notice 3/3/14;
    # SEC press release 2014-30.
    (_dt.date(2014, 3, 18), 22.10,
     "SEC press release 2014-30; FINRA Information Notice 3/3/14"),
    # FY2015, $22.10 -> $18.40: SEC press release 2015-8 (FY2015 appropriation of 2014-12-16 +
    # 60 days = February 14, 2015). Single source for the date (derived as described); the
    # rate extension to then is FINRA Information Notice 10/7/14 ("remain at the current rate of
    # $22.10 ... until 60 days after the enactment of a new fiscal year appropriation"); $18.40
    # in force at 2016-01-01 per an independent public table.
    (_dt.date(2015, 2, 14), 18.40,
     "SEC press release 2015-8; FINRA Information Notice 10/7/14"),
    # FY2016, $18.40 -> $21.80 "effective on February 16, 2016": SEC Release 34-76848, 81 FR 1458
    # (order text); FINRA Information Notice 3/15/16 (rate remains $21.80 until 60 days after
    # the FY2017 appropriation).
    (_dt.date(2016, 2, 16), 21.80,
     "SEC Release 34-76848, 81 FR 1458; FINRA Information Notice 3/15/16"),
    # FY2017, $21.80 -> $23.10 "effective on July 4, 2017": SEC Release 34-80816, 82 FR 25895;
    # SEC press release 2017-111.
    (_dt.date(2017, 7, 4), 23.10,
     "SEC Release 34-80816, 82 FR 25895; SEC press release 2017-111"),
    # FY2018, $23.10 -> $13.00 "effective on May 22, 2018": SEC Release 34-83057, 83 FR 17577;
    # SEC press release 2018-67.
    (_dt.date(2018, 5, 22), 13.00,
     "SEC Release 34-83057, 83 FR 17577; SEC press release 2018-67"),
    # FY2019, $13.00 -> $20.70 "effective on April 16, 2019": SEC Release 34-85287, 84 FR 9576;
    # SEC Fee Rate Advisory #2 FY2019; FINRA Information Notice (FTF News, "FINRA ups key fees
    # by 59 percent").
    (_dt.date(2019, 4, 16), 20.70,
     "SEC Release 34-85287, 84 FR 9576; Fee Rate Advisory #2 FY2019; FINRA Info Notice 2019"),
    # FY2020, $20.70 -> $22.10 "effective on February 18, 2020": SEC Release 34-87918,
    # 85 FR 2218; FINRA Information Notice 2/3/20.
    (_dt.date(2020, 2, 18), 22.10,
     "SEC Release 34-87918, 85 FR 2218; FINRA Information Notice 2/3/20"),
    # FY2021, $22.10 -> $5.10 "effective on February 25, 2021": SEC Release 34-90932, 86 FR 6694;
    # SEC Fee Rate Advisory #2 FY2021 (Jan. 15, 2021); FINRA Information Notice 2/16/21.
    (_dt.date(2021, 2, 25), 5.10,
     "SEC Release 34-90932, 86 FR 6694; Fee Rate Advisory #2 FY2021; FINRA Info Notice 2/16/21"),
    # FY2022, $5.10 -> $22.90 "effective on May 14, 2022": SEC Release 34-94644, 87 FR 21931;
    # SEC press release 2022-60.
    (_dt.date(2022, 5, 14), 22.90,
     "SEC Release 34-94644, 87 FR 21931; SEC press release 2022-60"),
    # FY2023, $22.90 -> $8.00 "effective on February 27, 2023": SEC Release 34-96724, 88 FR 5051;
    # SEC press release 2023-15.
    (_dt.date(2023, 2, 27), 8.00,
     "SEC Release 34-96724, 88 FR 5051; SEC press release 2023-15"),
    # FY2024, $8.00 -> $27.80 "effective on May 22, 2024": SEC Release 34-99973, 89 FR 29402;
    # SEC Fee Rate Advisory 2024-2.
    (_dt.date(2024, 5, 22), 27.80,
     "SEC Release 34-99973, 89 FR 29402; SEC Fee Rate Advisory 2024-2"),
    # FY2025, $27.80 -> $0.00 "effective on May 14, 2025": SEC Release 34-102779, 90 FR 15492;
    # SEC Fee Rate Advisory 2025-2; FINRA Information Notice 4/24/25; STA, "Congrats stock
    # traders, you funded the SEC four months early".
    (_dt.date(2025, 5, 14), 0.00,
     "SEC Release 34-102779, 90 FR 15492; Fee Rate Advisory 2025-2; FINRA Info Notice 4/24/25"),
    # FY2026, $0.00 -> $20.60 "effective on April 4, 2026": SEC Release 34-104909 (Feb. 27, 2026),
    # 91 FR 10643 (correction 91 FR 24948 fixes a sign typo only); SEC Fee Rate Advisory
    # 2026-2 (in effect "until 60 calendar days after ... the Commission's fiscal year 2027
    # appropriation"; no FY2027 rate was known on 2026-11-30).
    (_dt.date(2026, 4, 4), 20.60,
     "SEC Release 34-104909, 91 FR 10643; SEC Fee Rate Advisory 2026-2"),
)

# --------------------------------------------------------------------------------------------
# FINRA Trading Activity Fee on covered equity sales (FINRA By-Laws, Schedule A, Section 1(b)):
# (effective trade date, $ per share sold, $ maximum per trade, citation)
# --------------------------------------------------------------------------------------------
FINRA_TAF: tuple[tuple[_dt.date, float, float, str], ...] = (
    # $0.000075 per share, max $3.75 per trade: NASD Notice to Members 04-84 (effective
    # Nov. 1, 2004). FINRA Regulatory Notice 11-27 confirms the rate and cap in force until
    # 2011-06-30 ("in place for over six years"). The Nov. 1, 2004 start is single source
    # (NTM 04-84 as cited by a public table); only the 2010+ part matters here.
    (_dt.date(2004, 11, 1), 0.000075, 3.75,
     "NASD NTM 04-84; FINRA Regulatory Notice 11-27"),
    # $0.000090, max $4.50 effective July 1, 2011: FINRA Regulatory Notice 11-27 (SEC approval
    # June 8, 2011); Orrick and Financialish summaries.
    (_dt.date(2011, 7, 1), 0.000090, 4.50,
     "FINRA Regulatory Notice 11-27"),
    # $0.000095, max $4.75 effective March 1, 2012: FINRA Regulatory Notice 12-06.
    (_dt.date(2012, 3, 1), 0.000095, 4.75,
     "FINRA Regulatory Notice 12-06"),
    # $0.000119, max $5.95 effective July 1, 2012: SR-FINRA-2012-023, SEC Release 34-67242
    # (77 FR 38690: "from $0.000095 per share to $0.000119 ... cap ... from $4.75 to $5.95";
    # "effective on July 1, 2012"); FINRA Regulatory Notice 12-31; FINRA rulebook versions
    # 2012-07-01 .. 2021-12-31. Also on broker fee pages (Motif, Just2Trade, TradeZero).
    (_dt.date(2012, 7, 1), 0.000119, 5.95,
     "SR-FINRA-2012-023, 77 FR 38690; FINRA Regulatory Notice 12-31"),
    # $0.000130, max $6.49 from January 1, 2022: SR-FINRA-2020-032, SEC Release 34-90176,
    # 85 FR 66592 (fee table 2022/2023/2024); FINRA rulebook version 2022-01-01 .. 2022-12-31;
    # OptionsRoute fee page ($0.00013, $6.49 maximum).
    (_dt.date(2022, 1, 1), 0.000130, 6.49,
     "SR-FINRA-2020-032, 85 FR 66592"),
    # $0.000145, max $7.27 from January 1, 2023: SR-FINRA-2020-032, 85 FR 66592; FINRA rulebook
    # version 2023-01-01 .. 2023-12-31; EDDID Financial USA fee page ($0.000145/share, max $7.27).
    (_dt.date(2023, 1, 1), 0.000145, 7.27,
     "SR-FINRA-2020-032, 85 FR 66592"),
    # $0.000166, max $8.30 from January 1, 2024 (unchanged in 2025): SR-FINRA-2020-032,
    # 85 FR 66592; SR-FINRA-2024-019, SEC Release 34-101696, 89 FR 93709 ("2024 (current) 2025
    # (no change)"); FINRA rulebook version 2024-01-01 .. 2025-12-31.
    (_dt.date(2024, 1, 1), 0.000166, 8.30,
     "SR-FINRA-2020-032, 85 FR 66592; SR-FINRA-2024-019, 89 FR 93709"),
    # $0.000195, max $9.79 from January 1, 2026: SR-FINRA-2024-019, 89 FR 93709 (fee table
    # 2026); FINRA rulebook version 2026-01-01 .. 2026-09-30.
    (_dt.date(2026, 1, 1), 0.000195, 9.79,
     "SR-FINRA-2024-019, 89 FR 93709"),
    # $0.00 (TAF paused) for transactions October 1 .. December 31, 2026: SR-FINRA-2026-021,
    # SEC Release 34-106409, 91 FR 60435 (Sept. 23, 2026: "temporarily pause assessment of the
    # Trading Activity Fee ... for transactions from October 1, 2026 through December 31,
    # 2026"); FINRA rulebook version 2026-10-01 .. 2026-12-31 ("$0.00 per share ... maximum
    # charge of $0.00 per trade").
    (_dt.date(2026, 10, 1), 0.0, 0.0,
     "SR-FINRA-2026-021, 91 FR 60435"),
    # Back to $0.000195, max $9.79 from January 1, 2027 (2027 and 2028 "no change"; the
    # SR-FINRA-2024-019 increases shift to 2029-2031): SR-FINRA-2026-020, SEC Release
    # 34-106410, 91 FR 60427; FINRA rulebook version 2027-01-01 .. 2028-12-31.
    (_dt.date(2027, 1, 1), 0.000195, 9.79,
     "SR-FINRA-2026-020, 91 FR 60427"),
)

_SEC_DATES = [row[0] for row in SEC_SECTION_31]
_TAF_DATES = [row[0] for row in FINRA_TAF]


def as_trade_date(when) -> _dt.date:
    """The New York calendar date of ``when`` (a tz-aware timestamp is converted to New York
    time first; a naive timestamp, ``datetime.date`` or ISO string is taken as it is)."""
    if isinstance(when, _dt.date) and not isinstance(when, _dt.datetime):
        return when
    ts = pd.Timestamp(when)
    if ts.tz is not None:
        ts = ts.tz_convert(ET)
    return ts.date()


def _row(dates, table, when, name):
    day = as_trade_date(when)
    i = bisect.bisect_right(dates, day) - 1
    if i < 0:
        raise ValueError(f"no {name} schedule before {dates[0]} (asked for {day})")
    return table[i]


def sec_fee_rate(when) -> float:
    """SEC Section 31 fee in force on ``when``'s date, in dollars per dollar sold."""
    return _row(_SEC_DATES, SEC_SECTION_31, when, "SEC Section 31")[1] / 1e6


def taf(when) -> tuple[float, float]:
    """FINRA TAF in force on ``when``'s date: ``(dollars per share sold, max dollars per
    trade)``."""
    row = _row(_TAF_DATES, FINRA_TAF, when, "FINRA TAF")
    return row[1], row[2]


def taf_fee(shares: int, price: float, per_share: float, max_per_trade: float) -> float:
    """Unrounded TAF of one sale of ``shares`` at ``price``: ``min(shares x per_share, cap)``,
    nothing when the execution price is below the per-share rate (Schedule A, Section 1)."""
    if price < per_share:
        return 0.0
    return min(abs(int(shares)) * per_share, max_per_trade)

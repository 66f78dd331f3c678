"""The reference downloads: ``tickers``, ``ticker_details``, ``splits`` and ``dividends``, and
the dated ticker details (``raw/reference/ticker_details/<ticker>/<date>.json``)."""
from __future__ import annotations

import hashlib

import pandas as pd

from ..reference_files import written_date
from .manifest import delisted_utc
from .params import (DEMO_END, DEMO_START, DETAILS_EVERY, FORWARD_SPLIT_DATE, LAST_UPDATED,
                     OFFERING_DATE, OFFERING_RATIO, REVERSE_SPLIT_DATE)

_SIC = {"large": ("3674", "Semiconductors & Related Devices"),
        "mid": ("7372", "Services-Prepackaged Software"),
        "small": ("3841", "Surgical & Medical Instruments & Apparatus"),
        "penny": ("2834", "Pharmaceutical Preparations"),
        "adr": ("4813", "Telephone Communications (No Radiotelephone)"),
        "etf": (None, None), "warrant": ("6770", "Blank Checks"),
        "preferred": ("6022", "State Commercial Banks")}


def _ticker_entry(r, delisted) -> dict:
    """One ``tickers.json`` row (Polygon's ``/v3/reference/tickers``)."""
    entry = {
        "ticker": r["ticker"], "name": r["name"], "market": "stocks", "locale": "us",
        "primary_exchange": r["exchange"], "type": r["type"], "active": delisted is None,
        "currency_name": "usd", "cik": r["cik"], "composite_figi": r["figi"],
        "share_class_figi": r["share_figi"],
        "last_updated_utc": delisted or LAST_UPDATED,
    }
    if delisted:
        entry["delisted_utc"] = delisted
    return entry


def _detail_entry(r, delisted, shares: int | None = None) -> dict:
    """One ``ticker_details.json`` row (Polygon's ``/v3/reference/tickers/{ticker}``) with
    ``shares`` outstanding (default ``r["shares"]``, today's: the undated snapshot)."""
    shares = r["shares"] if shares is None else shares
    sic_code, sic_desc = _SIC.get(r["role"], _SIC["mid"])
    detail = {
        "ticker": r["ticker"], "name": r["name"], "type": r["type"],
        "active": delisted is None, "list_date": r["list_date"],
        "primary_exchange": r["exchange"], "composite_figi": r["figi"],
        "share_class_figi": r["share_figi"], "cik": r["cik"], "currency_name": "usd",
        "share_class_shares_outstanding": shares,
        "weighted_shares_outstanding": int(shares * 0.995),
        "market_cap": round(shares * r["p0"], 2),
    }
    if sic_code:
        detail.update(sic_code=sic_code, sic_description=sic_desc)
    if delisted:
        detail["delisted_utc"] = delisted
    return detail


def _splits(u) -> list[dict]:
    """The 4:1 forward and the 1:10 reverse split, as Polygon records them."""
    splits = []
    for info, (frm, to) in ((u.forward_split, (1, 4)), (u.reverse_split, (10, 1))):
        date = FORWARD_SPLIT_DATE if to > frm else REVERSE_SPLIT_DATE
        sid = hashlib.sha256(f"{info['ticker']}|{date}|{frm}|{to}".encode()).hexdigest()
        splits.append({"id": "E" + sid, "ticker": info["ticker"], "execution_date": date,
                       "split_from": frm, "split_to": to})
    return splits


def reference(sim) -> dict:
    """The payloads of the reference files, by name."""
    u = sim.universe
    tickers, details = [], []
    for r in u.rows:
        delisted = delisted_utc(sim, r)
        tickers.append(_ticker_entry(r, delisted))
        details.append(_detail_entry(r, delisted))
    dividends = sorted(sim.schedule.dividend_rows,
                       key=lambda r: (r["ticker"], r["ex_dividend_date"]))
    return {"tickers": tickers, "splits": _splits(u), "dividends": dividends,
            "ticker_details": details}


def offering_row(u) -> dict:
    """The small cap whose share count grows by the offering: the one with the fewest shares."""
    return min((r for r in u.rows if r["role"] == "small"),
               key=lambda r: (r["shares"], r["ticker"]))


def shares_on(u, r, day: str) -> int:
    """``r``'s share count on ``day`` (``r["shares"]`` is today's, after every event)."""
    shares = r["shares"]
    if r is u.forward_split and day < FORWARD_SPLIT_DATE:
        shares //= 4
    if r is u.reverse_split and day < REVERSE_SPLIT_DATE:
        shares *= 10
    if r is offering_row(u) and day < OFFERING_DATE:
        shares = int(shares / OFFERING_RATIO)
    return shares


def dated_details(sim) -> list[tuple[str, str, dict | None]]:
    """``(ticker, date, results or None)`` of every dated sample, on the dates ``gapline
    download`` would ask for (:mod:`bundles.download.details`); None: no company held the
    ticker that day (before its listing, after its delisting, between a reused ticker's two
    companies)."""
    from ..download.details import parse_every, sample_dates
    from ..download.sessions import sessions_between
    from ..reference_history import SHARES_KNOWN_LAG_DAYS

    u = sim.universe
    span = sessions_between(pd.Timestamp(DEMO_START) - pd.Timedelta(days=SHARES_KNOWN_LAG_DAYS),
                            DEMO_END)
    splits = {u.forward_split["ticker"]: [FORWARD_SPLIT_DATE],
              u.reverse_split["ticker"]: [REVERSE_SPLIT_DATE]}
    by_ticker: dict[str, list] = {}
    for r in u.rows:
        by_ticker.setdefault(r["ticker"], []).append(r)
    out = []
    for ticker in sorted(by_ticker):
        rows = by_ticker[ticker]
        listed = max(r["list_date"] for r in rows)
        for day in sample_dates(span, parse_every(DETAILS_EVERY), splits.get(ticker, ()),
                                listed):
            iso = f"{day:%Y-%m-%d}"
            owner = next((r for r in rows if r["list_date"] <= iso and (
                delisted_utc(sim, r) is None or day < written_date(delisted_utc(sim, r)))), None)
            if owner is None:
                out.append((ticker, iso, None))
                continue
            out.append((ticker, iso, _detail_entry(owner, None, shares_on(u, owner, iso))))
    return out

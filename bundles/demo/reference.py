"""The reference downloads: ``tickers``, ``ticker_details``, ``splits`` and ``dividends``."""
from __future__ import annotations

import hashlib

from .manifest import delisted_utc
from .params import FORWARD_SPLIT_DATE, LAST_UPDATED, REVERSE_SPLIT_DATE

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


def _detail_entry(r, delisted) -> dict:
    """One ``ticker_details.json`` row (Polygon's ``/v3/reference/tickers/{ticker}``)."""
    sic_code, sic_desc = _SIC.get(r["role"], _SIC["mid"])
    detail = {
        "ticker": r["ticker"], "name": r["name"], "type": r["type"],
        "active": delisted is None, "list_date": r["list_date"],
        "primary_exchange": r["exchange"], "composite_figi": r["figi"],
        "share_class_figi": r["share_figi"], "cik": r["cik"], "currency_name": "usd",
        "share_class_shares_outstanding": r["shares"],
        "weighted_shares_outstanding": int(r["shares"] * 0.995),
        "market_cap": round(r["shares"] * r["p0"], 2),
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

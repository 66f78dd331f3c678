"""The ``polygon`` zipline bundle: Polygon.io (Massive) flat files -> zipline bundle.

Ingest reads the raw cache (:mod:`bundles.layout`) in two passes so that memory does not grow
with the number of days:

1. **Day files, one at a time** (:mod:`.days`). Each session's minute files (the day file and
   any part files, merged by :mod:`.parts`) are validated (:mod:`bundles.flatfiles`), their
   bars split into regular session (``calendar.session_minutes``, labels shifted +1 minute
   from Polygon's window START to zipline's window END, so the 09:30 bar is stored at 09:31
   and the 15:59 bar at 16:00; early closes end at 13:00), pre-market (04:00 ET up to the
   open) and after-hours (the close + 4 h; its first bar, starting AT the close, holds the
   closing cross and never enters the minute bars). Regular-session bars of minute tickers
   are appended to per-bucket Arrow files (tickers hashed into buckets); daily OHLCV (close =
   the official close, :mod:`.auctions`), the extended-hours summaries (with the 09:25 cut,
   :mod:`.premarket_cut`) and the auction prints are kept in memory (one row per
   ticker-day). Day aggs, where present, give the daily bars of every ticker the session's
   minute files lack (``daily_source`` ``mixed``, the ``auto`` default with both datasets), so a
   minute subset does not shrink the market; each daily row keeps its source.
2. **Buckets, one at a time** (:mod:`.minutes`). Each bucket is regrouped by ticker and
   written sid by sid (sid by sid is ~12x faster than day by day), with a per-sid OHLC ratio
   so sub-dollar and sub-penny prices keep their digits. Buckets are independent (a sid's
   table is its own folder): with ``workers`` > 1 a pool of processes writes them, one bucket
   per worker at a time (:mod:`.minute_pool`), the same bytes as serially.

Then daily bars (:mod:`.daily`; dense: sessions without trades have NaN prices and zero
volume), splits and cash dividends (:mod:`.adjustments`, after the daily bars: zipline
computes dividend ratios from daily closes), assets with start/end dates (:mod:`.sids`: a
reused ticker gets one sid per company, dates not overlapping) and exchanges (:mod:`.assets`,
``country_code="US"``), and five side tables in the ingestion folder under ``gapline/``
(:mod:`.side_tables`, :mod:`.history`, :mod:`.report`): ``assets.parquet`` (Polygon type,
primary exchange, FIGI, CIK per sid: today's reference values), ``reference_history.parquet``
(dated shares outstanding, type and exchange per sid, joined as of each session: point in
time), ``extended_hours.parquet`` (pre-market and
after-hours open/high/low/last/volume/dollar volume per sid and session, plus the pre-market
cut at 09:25 ET), ``auctions.parquet`` (opening and closing cross prints and volumes per sid
and session) and ``ingest_report.json``.

A failed or interrupted ingest (exception, Ctrl-C or SIGTERM) removes its ingestion folder,
so zipline keeps loading the previous ingestion (:mod:`.ingest`, the driver).

When only new sessions arrived since the previous ingestion and its recorded inputs
(``gapline/inputs.json``, :mod:`.inputs`) are unchanged, the ingest is incremental
(:mod:`.incremental`): pass 1 reads the new day files only, the minute tables are shared with
the previous ingestion by hard link and extended (:mod:`.incremental_minutes`), everything else
is rewritten as a full ingest would; ``GAPLINE_INCREMENTAL=0`` forces a full one.

Modules: :mod:`.config` (options), :mod:`.reference` (reference tickers, the universe),
:mod:`.bars` (array kernels), :mod:`.parts` (a session's files as one), :mod:`.auctions`
(cross prints, official close), :mod:`.premarket_cut` (the 09:25 cut), :mod:`.days`,
:mod:`.sids`, :mod:`.minutes`, :mod:`.minute_pool` (worker processes), :mod:`.assets`,
:mod:`.daily`, :mod:`.adjustments`,
:mod:`.side_tables`, :mod:`.history`, :mod:`.report`, :mod:`.inputs`, :mod:`.incremental`,
:mod:`.incremental_minutes`, :mod:`.ingest`.
zipline's private writer internals are touched only in :mod:`bundles.zipline_writers`.
"""
from ..ingestions import SIDE_DIR
from .bars import ohlc_ratio_for
from .config import PolygonBundleConfig
from .ingest import build_bundle, ingest_polygon, make_ingest
from .reference import load_reference_assets
from .report import IngestReport

__all__ = ["SIDE_DIR", "IngestReport", "PolygonBundleConfig", "build_bundle", "ingest_polygon",
           "load_reference_assets", "make_ingest", "ohlc_ratio_for"]

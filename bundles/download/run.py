"""The download driver: :func:`download` fills the raw cache, resumably, and sums up what it did."""
from __future__ import annotations

import bisect
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from bundles.reference_files import read_reference
from bundles.layout import (
    DAY_DATASET,
    MINUTE_DATASET,
    day_file_path,
    reference_dir,
    sip_dir,
    write_day_file,
    write_day_part,
    write_reference,
)
from bundles.progress import progress_bar

from .client import PolygonClient
from .convert import bars_to_frame
from .details import download_dated_details, parse_every
from .errors import PolygonError
from .manifest import SessionManifest
from .sessions import _ny_span_ms, _session_dates, sessions_between
from .staging import _read_stage, _write_stage, staging_dir, staging_path
from .universe import DEFAULT_TYPES, universe
from .validate import (
    _number,
    bar_problem,
    clean_transactions,
    day_bounds_ms,
    split_bars,
    ticker_problem,
    write_rejected,
)

log = logging.getLogger(__name__)

_LOGGED_REJECTIONS = 20  # warnings per run; the rest are in the summary and the side files


@dataclass
class DownloadSummary:
    """What one :func:`download` call did, and what needs a look."""

    day_files: int = 0
    minute_files: int = 0  # minute files written, day files and part files
    minute_parts: int = 0  # of which part files added to sessions that already had a file
    existing: int = 0  # sessions skipped: their file (and, for minute, every ticker) was there
    empty_sessions: list = field(default_factory=list)  # (dataset, date): no bars, no file
    chunks_fetched: int = 0
    chunks_reused: int = 0
    reference: list = field(default_factory=list)  # reference files written
    requests: int = 0
    # {"session", "file", "tickers", "rows"} of every minute file written
    added: list = field(default_factory=list)
    # {"dataset", "session", "ticker", "reason", "record", "file", "line", "kept_out_of"}
    rejected: list = field(default_factory=list)
    invalid_tickers: list = field(default_factory=list)  # (ticker, reason): not requested
    tickers_without_bars: list = field(default_factory=list)  # (ticker, first, last session)
    empty_pages: list = field(default_factory=list)  # key-free URLs of results-less pages
    unreadable: list = field(default_factory=list)  # messages: raw files that cannot be read

    def describe(self) -> str:
        """One line of counts, then a line per thing that needs a look."""
        text = (f"day files written: {self.day_files}, minute files written: "
                f"{self.minute_files}, sessions already present: {self.existing}, "
                f"minute chunks fetched/reused: {self.chunks_fetched}/{self.chunks_reused}, "
                f"reference written: {', '.join(self.reference) or 'none'}, "
                f"requests: {self.requests}")
        if self.empty_sessions:
            text += f", sessions without bars (not written): {len(self.empty_sessions)}"
        lines = [text]
        if self.minute_parts:
            added = {}
            for item in self.added:
                if ".part-" in item["file"]:
                    for ticker in item["tickers"]:
                        added[ticker] = added.get(ticker, 0) + 1
            shown = ", ".join(f"{t} ({n} sessions)" for t, n in sorted(added.items())[:20])
            more = f" and {len(added) - 20} more" if len(added) > 20 else ""
            lines.append(f"part files added to sessions that already had a minute file: "
                         f"{self.minute_parts}, with tickers {shown}{more}")
        lines += [f"warning: {text}" for text in self.problems()]
        return "\n".join(lines)

    def problems(self) -> list[str]:
        """Human-readable lines about rejected records, skipped tickers, tickers without bars,
        empty pages and unreadable files (each says what to do)."""
        out = []
        if self.rejected:
            files = sorted({r["file"] for r in self.rejected})
            out.append(f"{len(self.rejected)} record(s) the ingest would refuse were kept out "
                       f"of the raw files and saved with their reasons in {', '.join(files)}; "
                       f"the sessions ingest without them (see the lines above or those files)")
            out += [_rejection_message(r) for r in self.rejected[:_LOGGED_REJECTIONS]]
        for ticker, reason in self.invalid_tickers:
            out.append(_invalid_ticker_message(ticker, reason))
        for ticker, first, last in self.tickers_without_bars:
            out.append(_without_bars_message(ticker, first, last))
        for url in self.empty_pages:
            out.append(_empty_page_message(url))
        out += list(self.unreadable)
        return out


def _short(record) -> str:
    text = json.dumps(record, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _rejection_message(item: dict) -> str:
    kept = f"kept out of {item['kept_out_of']}" if item.get("kept_out_of") else "not written"
    return (f"{item['dataset']} {item['session']}: ticker {item['ticker']!r}: record "
            f"{_short(item['record'])} rejected ({item['reason']}); {kept}, saved in "
            f"{item['file']} line {item['line']}. The ingest would refuse it; nothing to do "
            f"unless you need this bar (it is not requested again; if Polygon corrects it, "
            f"delete the session's files and manifest and download again)")


def _invalid_ticker_message(ticker, reason) -> str:
    return (f"ticker {ticker!r} not requested: {reason}; check its spelling (Polygon's "
            f"form, e.g. BRK.A) in --tickers or the reference tickers")


def _without_bars_message(ticker, first, last) -> str:
    return (f"ticker {ticker!r}: no minute bars from {first} to {last}; check its spelling and "
            f"that it traded then. Recorded as without bars in raw/manifests (not requested "
            f"again; gapline download --retry-empty requests it again)")


def _empty_page_message(url) -> str:
    return (f"empty page in a pagination: {url} held no results but a next_url (followed); if "
            f"data looks missing, download again later (reference: --refresh-reference)")


def _write_session(root: Path, dataset: str, day: pd.Timestamp, frame: pd.DataFrame,
                   summary: DownloadSummary) -> Path | None:
    """Write one session's day file, or record it as empty (an empty file would be permanent)."""
    if frame.empty:
        log.warning("%s %s: no bars returned; nothing written", dataset, day.date())
        summary.empty_sessions.append((dataset, day.date()))
        return None
    if write_day_file(root, dataset, day, frame):
        if dataset == DAY_DATASET:
            summary.day_files += 1
        else:
            summary.minute_files += 1
        return day_file_path(root, dataset, day)
    # appeared meanwhile (another process): raw files are never overwritten
    summary.existing += 1
    return None


def _relative(root: Path, path: Path) -> str:
    try:
        return str(Path(path).relative_to(sip_dir(root).parent.parent))
    except ValueError:
        return str(path)


def _save_rejections(root: Path, dataset: str, day: pd.Timestamp,
                     rejected: list[dict]) -> Path | None:
    """Save ``rejected`` in a new side file (before the session's data file: a crash between
    the two then re-fetches the session rather than losing the rejected records)."""
    return write_rejected(root, dataset, day, rejected) if rejected else None


def _report_rejections(root: Path, dataset: str, day: pd.Timestamp, rejected: list[dict],
                       side: Path | None, kept_out_of: Path | None,
                       summary: DownloadSummary) -> None:
    """Add the records saved in ``side`` to the summary and log the first ones."""
    for line, item in enumerate(rejected, 1):
        entry = {"dataset": dataset, "session": f"{day:%Y-%m-%d}", "ticker": item["ticker"],
                 "reason": item["reason"], "record": item["record"],
                 "file": _relative(root, side), "line": line,
                 "kept_out_of": _relative(root, kept_out_of) if kept_out_of else None}
        summary.rejected.append(entry)
        if len(summary.rejected) <= _LOGGED_REJECTIONS:
            log.warning("%s", _rejection_message(entry))
        elif len(summary.rejected) == _LOGGED_REJECTIONS + 1:
            log.warning("more rejected records: see the download summary and %s",
                        _relative(root, side.parent.parent.parent))


def _missing_sessions(root: Path, dataset: str, sessions, summary: DownloadSummary) -> list:
    missing = [d for d in sessions if not day_file_path(root, dataset, d).exists()]
    summary.existing += len(sessions) - len(missing)
    return missing


def _download_daily(client: PolygonClient, root: Path, sessions, summary, progress) -> None:
    missing = _missing_sessions(root, DAY_DATASET, sessions, summary)
    with progress_bar("daily", len(missing), progress, "sessions") as bar:
        for day in missing:
            accepted, rejected = split_bars(client.grouped_daily(day), day, minute=False)
            side = _save_rejections(root, DAY_DATASET, day, rejected)
            written = _write_session(root, DAY_DATASET, day, bars_to_frame(accepted), summary)
            _report_rejections(root, DAY_DATASET, day, rejected, side, written, summary)
            bar.update(1)


def _month_chunk(client: PolygonClient, root: Path, month: str, ticker: str, span: tuple,
                 summary: DownloadSummary) -> list[dict]:
    """The minute bars of ``ticker`` over ``span`` (ms), from staging or fetched and staged."""
    path = staging_path(root, month, ticker)
    staged = _read_stage(path)
    # reuse only a chunk of this ticker covering the span (an earlier run may have been shorter)
    if (isinstance(staged, dict) and staged.get("ticker") == ticker
            and staged.get("from_ms", span[0] + 1) <= span[0]
            and staged.get("to_ms", span[1] - 1) >= span[1]):
        summary.chunks_reused += 1
        return staged.get("results") or []
    bars = client.minute_aggs(ticker, *span)
    _write_stage(path, {"ticker": ticker, "from_ms": span[0], "to_ms": span[1],
                        "results": bars})
    summary.chunks_fetched += 1
    return bars


def _previous_month(month: str) -> str:
    return f"{pd.Period(month, 'M') - 1}"


def _minute_needs(root: Path, sessions, tickers: list[str], summary: DownloadSummary,
                  retry_empty: bool) -> dict:
    """``{session: [tickers to fetch]}``: per session, the tickers no minute file of it holds
    (nor, unless ``retry_empty``, its manifest records as without bars)."""
    needs = {}
    for day in sessions:
        manifest = SessionManifest.load(root, MINUTE_DATASET, day)
        if manifest.unreadable:
            for message in manifest.unreadable:
                text = (f"{message}; session {day.date()} skipped (nothing fetched: its tickers "
                        f"are unknown). Delete the file to download the session again")
                log.warning("%s", text)
                summary.unreadable.append(text)
            continue
        covered = manifest.covered(retry_empty)
        wanted = [t for t in tickers if t not in covered]
        if wanted:
            needs[day] = wanted
        else:
            summary.existing += 1
    return needs


def _sort_month(chunk: list, ticker: str, days: list, wanted: dict, rejected: dict) -> list:
    """Split one ticker's month ``chunk`` into its accepted bars of the sessions that need the
    ticker (returned) and rejected ones (into ``rejected[day]``); bars of other days (sessions
    already held, weekends) are dropped. A bar without a usable time goes to the first session
    that needs the ticker."""
    starts = [day_bounds_ms(d) for d in days]
    lows = [lo for lo, _ in starts]
    first = next(d for d in days if ticker in wanted[d])
    accepted = []
    for bar in chunk:
        t = _number(bar.get("t")) if isinstance(bar, dict) else None
        if t is None or t != int(t):
            day = first
        else:
            i = bisect.bisect_right(lows, t) - 1
            if i < 0 or t >= starts[i][1] or ticker not in wanted[days[i]]:
                continue
            day = days[i]
        problem = bar_problem(bar, ticker, minute=True)
        if problem is None:
            accepted.append(clean_transactions(bar))
        else:
            rejected.setdefault(day, []).append({"ticker": ticker, "reason": problem,
                                                 "record": bar})
    return accepted


def _download_minute(client: PolygonClient, root: Path, sessions, tickers: list[str],
                     summary: DownloadSummary, progress: bool, retry_empty: bool) -> None:
    needs = _minute_needs(root, sessions, tickers, summary, retry_empty)
    months: dict[str, list] = {}
    for day in needs:
        months.setdefault(f"{day:%Y-%m}", []).append(day)
    without_bars: dict[str, list] = {}  # ticker -> [(first, last)], merged across months
    try:
        for month, days in months.items():
            _minute_month(client, root, month, days, needs, summary, progress, without_bars)
    finally:
        for ticker, spans in without_bars.items():
            for first, last, _ in spans:
                log.warning("%s", _without_bars_message(ticker, first, last))
                summary.tickers_without_bars.append((ticker, first, last))


def _minute_month(client: PolygonClient, root: Path, month: str, days: list, needs: dict,
                  summary: DownloadSummary, progress: bool, without_bars: dict) -> None:
    """Fetch, check and write the minute bars one calendar month's sessions need."""
    span = _ny_span_ms(days[0], days[-1])
    wanted = {day: set(needs[day]) for day in days}
    month_tickers = sorted(set().union(*wanted.values()))
    # the whole month is held in memory to write all tickers of a session in one file
    frames, rejected = [], {}
    with progress_bar(f"minute {month}", len(month_tickers), progress, "tickers") as bar:
        for ticker in month_tickers:
            chunk = _month_chunk(client, root, month, ticker, span, summary)
            before = sum(map(len, rejected.values()))
            accepted = _sort_month(chunk, ticker, days, wanted, rejected)
            if not accepted and sum(map(len, rejected.values())) == before:
                mine = [d for d in days if ticker in wanted[d]]
                spans = without_bars.setdefault(ticker, [])
                if spans and spans[-1][2] == _previous_month(month):
                    spans[-1] = (spans[-1][0], mine[-1].date(), month)
                else:
                    spans.append((mine[0].date(), mine[-1].date(), month))
            frames.append(bars_to_frame(accepted, ticker))
            bar.update(1)
    bars = pd.concat(frames, ignore_index=True) if frames else bars_to_frame([])
    dates = _session_dates(bars)
    for day in days:
        # read again: another download on this root may have added files meanwhile
        manifest = SessionManifest.load(root, MINUTE_DATASET, day)
        session = bars[dates == day]
        held_already = manifest.covered(retry_empty=True)
        if held_already:
            session = session[~session["ticker"].isin(held_already)]
        session = (session.sort_values(["ticker", "window_start"], kind="mergesort")
                   .reset_index(drop=True))
        had_files = bool(manifest.files)
        side = _save_rejections(root, MINUTE_DATASET, day, rejected.get(day, []))
        written = None
        if not session.empty:
            written = write_day_part(root, MINUTE_DATASET, day, session)
            held = set(session["ticker"])
            manifest.add_file(written, held, len(session))
            manifest.without_bars |= wanted[day] - held
            manifest.save()
            summary.minute_files += 1
            summary.minute_parts += had_files
            summary.added.append({"session": day.date(), "file": written.name,
                                  "tickers": sorted(held), "rows": len(session)})
            log.info("%s %s: wrote %s (%d tickers, %d rows)", MINUTE_DATASET, day.date(),
                     written.name, len(held), len(session))
        elif had_files:  # the session has data; these tickers simply had none
            manifest.without_bars |= wanted[day]
            manifest.save()
        else:
            _write_session(root, MINUTE_DATASET, day, session, summary)
        _report_rejections(root, MINUTE_DATASET, day, rejected.get(day, []), side, written,
                           summary)
    shutil.rmtree(staging_dir(root, month), ignore_errors=True)


def _download_reference(client: PolygonClient, root: Path, summary: DownloadSummary,
                        refresh: bool) -> None:
    fetchers = {"tickers": client.reference_tickers, "splits": client.splits,
                "dividends": client.dividends}
    for name, fetch in fetchers.items():
        if refresh or not (reference_dir(root) / f"{name}.json").exists():
            log.info("reference: fetching %s", name)
            if write_reference(root, name, fetch(), overwrite=refresh):
                summary.reference.append(name)


def _download_details(client: PolygonClient, root: Path, tickers: list[str],
                      summary: DownloadSummary, refresh: bool, progress: bool) -> None:
    if not refresh and (reference_dir(root) / "ticker_details.json").exists():
        return
    details = []
    with progress_bar("ticker details", len(tickers), progress, "tickers") as bar:
        for ticker in tickers:
            record = client.ticker_details(ticker)
            if record is None:
                log.debug("no ticker details for %s", ticker)
            else:
                details.append(record)
            bar.update(1)
    if write_reference(root, "ticker_details", details, overwrite=refresh):
        summary.reference.append("ticker_details")


def _usable_tickers(tickers: list[str], summary: DownloadSummary) -> list[str]:
    """``tickers`` without those the ingest would refuse (reported, never requested)."""
    usable = []
    for ticker in tickers:
        problem = ticker_problem(ticker)
        if problem is None:
            usable.append(ticker)
        else:
            summary.invalid_tickers.append((ticker, problem))
            log.warning("%s", _invalid_ticker_message(ticker, problem))
    return usable


def download(root, start, end=None, tickers: list[str] | None = None, *,
             types: Iterable[str] | None = DEFAULT_TYPES, minute: bool = True,
             daily: bool = True, reference: bool = True, details: bool = False,
             refresh_reference: bool = False, progress: bool = True,
             client: PolygonClient | None = None, api_url: str | None = None,
             retry_empty: bool = False, details_every: str | None = None) -> DownloadSummary:
    """Fill ``root``'s raw cache for the sessions in [start, end]; resumable.

    Parameters
    ----------
    root : path
        The data root (holds ``raw/``; staging goes to ``<root>/.staging``).
    start, end : date-like
        Session range; ``end`` defaults to today. Today and later are skipped (not final).
    tickers : list of str, optional
        Tickers for the minute files and details; default: the reference tickers of
        ``types`` not delisted before ``start``. Tickers the ingest would refuse (see
        :func:`.validate.ticker_problem`) are not requested, and reported. The day aggs
        (``daily``) are not limited to them: one grouped-daily request per session covers the
        whole market, so the ingest's daily bars do too (``daily_source=auto`` -> ``mixed``).
    types : iterable of str, optional
        Polygon ticker types for the default universe (e.g. ``("CS", "ETF", "ADRC")``).
    minute, daily, reference, details : bool
        Which parts to fetch; ``details`` adds the undated snapshot ``ticker_details.json``
        (today's details: it counts only from the day it was fetched).
    refresh_reference : bool
        Re-fetch and replace the reference snapshots instead of keeping existing ones.
    progress : bool
        Show a click progress bar per loop; otherwise log a line about every 10%
        (:mod:`bundles.progress`).
    client : PolygonClient, optional
        Defaults to ``PolygonClient(base_url=api_url)`` (key from ``$POLYGON_API_KEY``).
    api_url : str, optional
        API origin of the default client (default ``$GAPLINE_API_URL``, else
        ``https://api.massive.com``).
    retry_empty : bool
        Request again the tickers a session's manifest records as without bars.
    details_every : str, optional
        Dated ticker details (point-in-time shares outstanding, type, exchange): ``"1M"``
        samples every ticker at the start of the span, its listing, every month-end and
        every split (:mod:`.details`; ``gapline download`` defaults to ``1M``); None or
        ``"none"`` skips them.

    Resume: a day file per session for day aggs; for minute aggs a manifest per session
    (:mod:`.manifest`) records the tickers each file holds, and tickers no file holds are
    fetched into a new part file (``YYYY-MM-DD.part-<n>.csv.gz``) -- the ingest reads every
    part (:func:`bundles.layout.day_file_parts`). Records the ingest would refuse go to
    ``raw/rejected/`` instead of a raw file.

    Returns
    -------
    DownloadSummary

    Raises
    ------
    PolygonError
        On a failed request; what was finished stays on disk and the next call resumes.
    """
    root = Path(root)
    every = parse_every(details_every)  # a bad spec fails before any request
    client = client if client is not None else PolygonClient(base_url=api_url)
    pages_before = len(client.empty_pages)
    sessions = sessions_between(start, end if end is not None else pd.Timestamp.today())
    summary = DownloadSummary()
    try:
        if reference:
            _download_reference(client, root, summary, refresh_reference)
        if daily:
            _download_daily(client, root, sessions, summary, progress)
        if minute or details or every:
            if tickers is None:
                tickers = universe(read_reference(root, "tickers"), tuple(types or ()), start)
                if not tickers:
                    raise PolygonError("no tickers: pass tickers, or download the reference "
                                       "tickers first (it selects the universe by type)")
            else:
                tickers = sorted(dict.fromkeys(tickers))
            tickers = _usable_tickers(tickers, summary)
            if minute:
                _download_minute(client, root, sessions, tickers, summary, progress,
                                 retry_empty)
            if details:
                _download_details(client, root, tickers, summary, refresh_reference, progress)
            if every:
                download_dated_details(client, root, tickers, start,
                                       end if end is not None else pd.Timestamp.today(),
                                       every, summary, progress)
    finally:
        summary.requests = client.requests
        summary.empty_pages = list(client.empty_pages[pages_before:])
    log.info("download done: %s", summary.describe().split("\n", 1)[0])
    return summary

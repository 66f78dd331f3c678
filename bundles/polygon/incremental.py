"""Incremental ingest: a new ingestion built from the previous one plus the new sessions only.

When ``zipline ingest -b polygon`` runs after new day files arrived, the work and the disk of
the new ingestion follow the NEW sessions, not the history -- provided the previous ingestion
was built from the same inputs (:mod:`.inputs`, its ``gapline/inputs.json``):

- a previous ingestion of the bundle exists (the newest folder under ``data/<bundle>/``) and
  holds ``gapline/inputs.json`` and ``gapline/incremental/``;
- gapline's ingest code, the library versions, the calendar, the start session, the options
  that shape the output and the universe's Polygon types are unchanged;
- every day file it read is unchanged (same content hash) and the only new day files hold
  sessions after its last session (reference files may change: assets, adjustments and side
  tables are rebuilt from them in full);
- its sids' minute bars carry over exactly (:mod:`.incremental_minutes`).

Otherwise the ingest says why (log line and ``ingest_report.json``: ``incremental.reason``)
and runs a full one. ``GAPLINE_INCREMENTAL=0`` / ``-x polygon.incremental=0`` forces it.

What an incremental ingest does:

- pass 1 (:mod:`.days`) reads the new sessions' day files only; the previous sessions' pass-1
  rows (daily rows, extended-hours summaries, auction prints, by ticker: every ingestion keeps
  them in ``gapline/incremental/<frame>-<n>.parquet`` segments, immutable and hard-linked from
  ingestion to ingestion) are concatenated with the new ones, and the report's pass-1 counts
  and notes merged, so the rest of the ingest sees exactly what a full pass 1 would;
- sids, assets, daily bars, adjustments, side tables and the report are then written from the
  combined rows exactly as a full ingest writes them (small next to the minute bars);
- minute bars: each sid continuing a previous sid shares its bcolz table (hard links for the
  full chunk files, new files for the last partial chunk and ``sizes``:
  :mod:`bundles.bcolz_share`) with the new bars appended -- in worker processes, while the
  ingest writes assets, daily bars, adjustments and side tables (``finish_minute_bars`` waits
  for them; :class:`.incremental_minutes.TableSharing`); new sids are written from their new
  bars; ``metadata.json`` once at the end.

The previous ingestion is only read and hard-linked from, never written: it stays loadable,
and ``zipline clean`` can remove either ingestion (a hard-linked file lives on while another
folder links it).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from .. import layout, zipline_writers
from ..ingestions import side_dir
from . import incremental_minutes, inputs
from .days import DayData
from .inputs import NotIncremental
from .report import VOLUME_ROUNDING, IngestReport

log = logging.getLogger(__name__)

STATE_DIR = "incremental"  # in gapline/: pass-1 segments, sids, state.json
STATE_FILE = "state.json"
SIDS_FILE = "sids.parquet"
MAX_FIELDS = ("excluded_tickers",)  # pass-1 report fields that keep a maximum, not a sum
SKIPPED_ROWS_KEPT = 1000


def _frame_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(DayData) if "DataFrame" in str(f.type)]


def previous_ingestion(bundle_dir: Path | None, exclude: str | None = None) -> Path | None:
    """The newest ingestion folder of the bundle (what zipline loads by default)."""
    from zipline.data.bundles import from_bundle_ingest_dirname

    if bundle_dir is None or not Path(bundle_dir).is_dir():
        return None
    found = []
    for p in Path(bundle_dir).iterdir():
        if p.name.startswith(".") or not p.is_dir() or p.name == exclude:
            continue
        try:
            found.append((from_bundle_ingest_dirname(p.name), p))
        except (ValueError, TypeError):
            continue
    return max(found)[1] if found else None


class Incremental:
    """One ingest's incremental decision, pass 1 and saved state (module doc)."""

    def __init__(self, config, universe, calendar, start, end, report: IngestReport,
                 bundle_dir=None, exclude=None, minute_bar_writer=None, timed=None):
        self.config, self.universe, self.calendar = config, universe, calendar
        self.start, self.end, self.r = start, end, report
        self.timed = timed
        self.active = False
        self.previous = previous_ingestion(bundle_dir, exclude)
        self.state: dict = {}
        self.new_frames: dict = {}
        self.pass1_delta: dict = {}
        self.links, self.bars, self.no_asset = {}, {}, set()
        self.sharing = None
        old = inputs.read_manifest(self.previous) if self.previous else None
        reuse = old.get("files") if old and old.get("hash") == inputs.HASH else None
        files = inputs.scan(config.root, start, end, reuse)
        sessions = calendar.sessions_in_range(start, end)
        minutes_per_day = 0
        if minute_bar_writer is not None and len(sessions):
            index = zipline_writers.MinuteTables.of(minute_bar_writer).minute_index
            minutes_per_day = len(index) // len(sessions)
        self.manifest = inputs.manifest(config, calendar.name, minutes_per_day, start, end,
                                        sessions, files, self._universe_fingerprint())
        report.incremental.update(mode="full", reason=None, previous=None)
        try:
            self._check(old)
        except NotIncremental as exc:
            self._full_because(str(exc))
            return
        self.active = True
        report.incremental.update(mode="incremental", previous=self.previous.name,
                                  new_sessions=int(len(self._new_sessions())))
        self.sharing = incremental_minutes.TableSharing(self._sharing_workers())
        log.info("incremental ingest on top of %s (%d new session(s))", self.previous.name,
                 report.incremental["new_sessions"])

    # ------------------------------------------------------------------ decision
    def _universe_fingerprint(self) -> str:
        cfg = self.config
        if cfg.types is None and not str(cfg.minute_tickers).startswith("types:"):
            return ""
        items = sorted((str(k), str(v)) for k, v in self.universe.ref_types.items())
        return hashlib.sha256(json.dumps(items).encode()).hexdigest()

    def _check(self, old: dict | None):
        if not self.config.incremental:
            raise NotIncremental("forced full: GAPLINE_INCREMENTAL=0 (-x polygon.incremental=0)")
        if self.previous is None:
            raise NotIncremental("no previous ingestion")
        if old is None:
            raise NotIncremental(f"previous ingestion {self.previous.name} has no "
                                 f"gapline/{inputs.INPUTS_FILE}")
        try:
            self.state = json.loads((self._state_dir(self.previous) / STATE_FILE).read_text())
        except (OSError, ValueError):
            raise NotIncremental(f"previous ingestion {self.previous.name} has no "
                                 f"gapline/{STATE_DIR}/{STATE_FILE}") from None
        self.last = pd.Timestamp(old["end_session"])
        if self.end < self.last:
            raise NotIncremental(f"end session {self.end.date()} is before the previous "
                                 f"ingestion's last session {self.last.date()}")
        if inputs.sessions_fingerprint(self.calendar.sessions_in_range(self.start, self.last)) \
                != old.get("sessions"):
            raise NotIncremental("the calendar's sessions of the previous range changed")
        reason, notes = inputs.compare(old, self.manifest, self.last)
        if reason:
            raise NotIncremental(reason)
        source = self._resolved_source(self.manifest["files"])
        if source != self.state.get("daily_source"):
            raise NotIncremental(f"daily source resolves to {source} now, "
                                 f"{self.state.get('daily_source')} before")
        for note in notes:
            log.info(note)

    def _resolved_source(self, files: dict) -> str:
        from .days import resolve_daily_source

        def listed(dataset):
            return {m["day"] for rel, m in files.items() if m.get("day") and dataset in rel}
        return resolve_daily_source(self.config.daily_source, listed(layout.MINUTE_DATASET),
                                    listed(layout.DAY_DATASET))

    def _sharing_workers(self) -> int:
        """Worker processes for sharing the previous minute tables: the ingest's workers once
        the previous ingestion has ``POOL_MIN_SIDS`` sids, else none (inline)."""
        import pyarrow.parquet as pq

        n = pq.read_metadata(self._state_dir(self.previous) / SIDS_FILE).num_rows
        return self.config.workers if n >= incremental_minutes.POOL_MIN_SIDS else 1

    def _full_because(self, reason: str):
        self.close()
        self.active = False
        self.r.incremental.update(mode="full", reason=reason,
                                  previous=self.previous.name if self.previous else None)
        log.info("full ingest: %s", reason)

    def _new_sessions(self):
        nxt = self.last + pd.Timedelta(days=1)
        return self.calendar.sessions_in_range(nxt, self.end) if nxt <= self.end else []

    @staticmethod
    def _state_dir(ingestion: Path) -> Path:
        return side_dir(ingestion) / STATE_DIR

    # ------------------------------------------------------------------ pass 1
    def pass1(self, read_days, assign_sids, reference, tmpdir: Path, show: bool):
        """(DayData, SidMap) of the whole range: read in full, or the new sessions plus the
        previous ingestion's saved rows; an incremental attempt that cannot finish exactly
        falls back to the full read."""
        if self.active:
            saved = copy.deepcopy(self.r)
            work = Path(tmpdir) / "incremental"
            work.mkdir()
            try:
                return self._incremental_pass1(read_days, assign_sids, reference, work, show)
            except NotIncremental as exc:
                self.r.__dict__.update(saved.__dict__)
                shutil.rmtree(work, ignore_errors=True)
                self._full_because(str(exc))
                self.links, self.bars, self.new_frames = {}, {}, {}
        return self._full_pass1(read_days, assign_sids, reference, tmpdir, show)

    def _full_pass1(self, read_days, assign_sids, reference, tmpdir, show):
        r = self.r
        before = dataclasses.asdict(r)
        with self.timed(r.seconds, "read_day_files"):
            days = read_days(self.config, self.universe, self.calendar, self.start, self.end,
                             tmpdir, r, show)
        self.pass1_delta = _delta(before, r, self._range_notes(self.start, self.end,
                                                         days.daily_source))
        self.pass1_delta["ref_skipped"] = len(before["skipped_rows"])
        self.new_frames = {k: getattr(days, k) for k in _frame_fields()}
        self.daily_source = days.daily_source
        _fractional_note(r)
        with self.timed(r.seconds, "assign_sids"):
            sids = assign_sids(days.daily, reference)
        return days, sids

    def _incremental_pass1(self, read_days, assign_sids, reference, work, show):
        r = self.r
        source = self.state["daily_source"]
        self.daily_source = source
        new_sessions = self._new_sessions()
        last = str(self.last.date())
        has_new = any(m.get("day") and m["day"] > last for m in self.manifest["files"].values())
        ref_skipped = len(r.skipped_rows)
        old = self.state["pass1"]
        if ref_skipped != old.get("ref_skipped") and (
                old.get("ref_skipped", 0) + len(old.get("skipped_rows", [])) >= SKIPPED_ROWS_KEPT):
            raise NotIncremental("the report's list of skipped rows was full and the reference "
                                 "files' skipped records changed")
        new = None
        new_r = IngestReport()
        with self.timed(r.seconds, "read_day_files"):
            if has_new and len(new_sessions):
                cfg = dataclasses.replace(self.config, daily_source=source)
                try:
                    new = read_days(cfg, self.universe, self.calendar, new_sessions[0],
                                    self.end, work, new_r, show)
                except FileNotFoundError as exc:
                    raise NotIncremental(f"new sessions: {exc}") from None
            frames = {k: None if new is None else getattr(new, k) for k in _frame_fields()}
            combined = self._combine(frames)
        new_delta = (_delta(dataclasses.asdict(IngestReport()), new_r,
                            self._range_notes(new_sessions[0], self.end, source))
                     if new is not None else {})
        _merge(r, [old, new_delta], self._range_notes(self.start, self.end, source))
        self.pass1_delta = _combine_deltas(old, new_delta, ref_skipped)
        self.new_frames = frames
        values = {f.name: None for f in dataclasses.fields(DayData)}
        values.update(combined, daily_source=source, id_tickers=(
            new.id_tickers if new is not None else pd.Index([], dtype=object).to_numpy()),
            bucket_files=new.bucket_files if new is not None else {})
        days = DayData(**values)
        _fractional_note(r)
        with self.timed(r.seconds, "assign_sids"):
            sids = assign_sids(days.daily, reference)
        old_sids = pd.read_parquet(self._state_dir(self.previous) / SIDS_FILE).set_index("sid")
        bars, no_asset = incremental_minutes.bars_by_sid(days.bucket_files, days.id_tickers,
                                                          sids)
        self.links = incremental_minutes.plan_links(
            old_sids, self.start, self.last, sids, bars, set(self.state.get("no_asset", [])),
            str(self.previous / "minute_equities.bcolz"),
            self.calendar.sessions_in_range(self.start, self.last),
            self.manifest["minutes_per_day"])
        self.bars = bars
        self.no_asset = set(self.state.get("no_asset", [])) | no_asset
        return days, sids

    def _combine(self, frames: dict) -> dict:
        folder = self._state_dir(self.previous)
        out = {}
        for name in _frame_fields():
            parts = [pd.read_parquet(folder / seg)
                     for seg in self.state.get("segments", {}).get(name, [])]
            if frames.get(name) is not None:
                parts.append(frames[name])
            if not parts:
                out[name] = None
            elif len(parts) == 1:
                out[name] = parts[0]
            else:
                out[name] = pd.concat(parts, ignore_index=True)
        return out

    def _range_notes(self, start, end, source) -> list[str]:
        """The notes :func:`.days.read_days` writes about the range as a whole
        (:func:`.days.range_notes`)."""
        from .days import range_notes

        root = self.config.root
        return range_notes(self.calendar.sessions_in_range(start, end),
                           layout.list_day_file_parts(root, layout.MINUTE_DATASET, start, end),
                           layout.list_day_file_parts(root, layout.DAY_DATASET, start, end),
                           source)

    # ------------------------------------------------------------------ minute bars
    def write_minutes(self, write_minutes, minute_bar_writer, days, sids, show, workers=1):
        """The minute phase: shared tables plus new bars, or ``write_minutes`` in full."""
        if self.active:
            rootdir = str(self.previous / "minute_equities.bcolz")
            n_messages = len(self.r.unstorable_values)
            ratios = incremental_minutes.write_minutes(
                minute_bar_writer, self.calendar, rootdir, self.links, self.bars,
                self.no_asset, sids, self.r, show, self.sharing)
            self.r.minute_rows_written += int(self.state.get("minute_rows_written", 0))
            self.minute_messages = (self.state.get("minute_messages", [])
                                    + self.r.unstorable_values[n_messages:])
            self.r.unstorable_values[n_messages:] = self.minute_messages
            return ratios
        if days.daily_source == "day":  # minute bars without a day agg get no sid
            seen = incremental_minutes.minute_tickers(days.bucket_files, days.id_tickers)
            self.no_asset = {t for t in seen
                             if t not in sids.sid_of_ticker and t not in sids.periods}
        n_messages = len(self.r.unstorable_values)
        ratios = write_minutes(minute_bar_writer, self.calendar, days.bucket_files,
                               days.id_tickers, sids, self.r, show, workers)
        self.minute_messages = self.r.unstorable_values[n_messages:]
        return ratios

    def finish_minutes(self, show: bool):
        """Wait for the minute tables still being shared (:meth:`write_minutes`)."""
        if self.sharing is not None:
            self.sharing.wait(show)
            self.sharing = None

    def close(self):
        """Stop sharing tables (after a failure: nothing is written once this returns)."""
        if self.sharing is not None:
            self.sharing.close()
            self.sharing = None

    # ------------------------------------------------------------------ state
    def save(self, output_dir: Path, sids, ratios: dict):
        """Write ``gapline/inputs.json`` and ``gapline/incremental/`` for the next ingest."""
        folder = self._state_dir(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        segments = {}
        for name in _frame_fields():
            names = []
            if self.active:
                for seg in self.state.get("segments", {}).get(name, []):
                    os.link(self._state_dir(self.previous) / seg, folder / seg)
                    names.append(seg)
            frame = self.new_frames.get(name)
            if frame is not None and len(frame):
                seg = f"{name}-{len(names):05d}.parquet"
                frame.to_parquet(folder / seg, index=False)
                names.append(seg)
            segments[name] = names
        table = sids.assets[["ticker", "start_date", "end_date"]].copy()
        table["ratio"] = pd.Series(ratios, dtype="float64").reindex(table.index)
        table.reset_index(names="sid").to_parquet(folder / SIDS_FILE, index=False)
        state = {
            "format": inputs.FORMAT,
            "daily_source": self.daily_source,
            "pass1": self.pass1_delta,
            "no_asset": sorted(self.no_asset),
            "minute_rows_written": int(self.r.minute_rows_written),
            "minute_messages": getattr(self, "minute_messages", []),
            "segments": segments,
        }
        (folder / STATE_FILE).write_text(json.dumps(state, default=str))
        (side_dir(output_dir) / inputs.INPUTS_FILE).write_text(json.dumps(self.manifest))


# ---------------------------------------------------------------------- report merging
def _fractional_note(r: IngestReport):
    if r.fractional_volumes:
        r.notes.append(f"{r.fractional_volumes} row(s) with a fractional volume: "
                       f"{VOLUME_ROUNDING}")


def _delta(before: dict, after: IngestReport, range_notes: list[str]) -> dict:
    """What pass 1 added to the report: counts, list items, and its per-day notes (the
    range-wide ones, recomputed for any range, left out)."""
    out = {}
    for f in dataclasses.fields(IngestReport):
        k = f.name
        if k in ("seconds", "incremental"):
            continue
        a, b = getattr(after, k), before.get(k)
        if k == "notes":
            added = list(a[len(b):])
            for note in range_notes:
                if note in added:
                    added.remove(note)
            out["day_notes"] = added
        elif k in MAX_FIELDS:
            out[k] = a
        elif isinstance(a, bool):
            continue
        elif isinstance(a, (int, float)):
            out[k] = a - b
        elif isinstance(a, list):
            out[k] = list(a[len(b):])
        elif isinstance(a, dict):
            out[k] = {kk: vv - b.get(kk, 0) for kk, vv in a.items()
                      if isinstance(vv, (int, float))}
    return out


def _merged(key: str, cur, value):
    """One pass-1 report field ``cur`` with a later ``value`` of it added (as one pass 1
    over both ranges would count it)."""
    if key in MAX_FIELDS:
        return max(cur, value)
    if isinstance(cur, list):
        return cur + list(value)
    if isinstance(cur, dict):
        return {k: cur.get(k, 0) + value.get(k, 0) for k in {**cur, **value}}
    return cur + value


def _merge(r: IngestReport, deltas: list[dict], range_notes: list[str]):
    """Add pass-1 ``deltas`` (in session order) to ``r`` as one pass 1 over the whole range."""
    for d in deltas:
        for k, v in d.items():
            if k in ("day_notes", "ref_skipped") or not hasattr(r, k) \
                    or isinstance(getattr(r, k), bool):
                continue
            setattr(r, k, _merged(k, getattr(r, k), v))
    del r.skipped_rows[SKIPPED_ROWS_KEPT:]
    r.notes.extend(range_notes)
    for d in deltas:
        r.notes.extend(d.get("day_notes", []))


def _combine_deltas(old: dict, new: dict, ref_skipped: int) -> dict:
    """The pass-1 delta of the whole range (what a full ingest would save)."""
    out = copy.deepcopy(old)
    for k, v in new.items():
        out[k] = copy.deepcopy(v) if out.get(k) is None else _merged(k, out[k], v)
    out["skipped_rows"] = out.get("skipped_rows", [])[:max(0, SKIPPED_ROWS_KEPT - ref_skipped)]
    out["ref_skipped"] = ref_skipped
    return out

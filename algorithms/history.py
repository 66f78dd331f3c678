"""How much daily history a strategy's Pipeline needs, and the earliest start a bundle allows.

A Pipeline needs daily bars from before the first session it computes. :func:`pipeline_lookback`
counts them from the Pipeline object (the longest chain of ``window_length - 1`` extra rows
through its terms, plus one session because the row of session D holds data through D-1);
each algorithm module states its default as ``LOOKBACK_SESSIONS`` (derived, not a parameter).
:func:`prepare` checks at ``initialize`` that the simulation starts at least that many sessions
after the bundle's first session, and :func:`algorithms.runner.run` checks the same before
zipline starts: :class:`HistoryError` (a ``ValueError``) names the earliest valid start instead
of zipline's ``NoDataOnDate`` from deep inside the Pipeline engine.
"""
from __future__ import annotations

import inspect
import logging

import pandas as pd

from .params import HistoryError


log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- history
def pipeline_lookback(pipeline) -> int:
    """Sessions of daily bars ``pipeline`` needs before the first session it computes.

    The longest chain of extra rows through its terms (a term of ``window_length`` n asks
    its inputs for n - 1 rows before each date: zipline's ``Term.dependencies``), plus one
    session: the row of session D is computed from data through D - 1.
    """
    terms = list(pipeline.columns.values())
    if pipeline.screen is not None:
        terms.append(pipeline.screen)
    memo = {}

    def extra_rows(term):
        if term not in memo:
            memo[term] = max((rows + extra_rows(dep)
                              for dep, rows in term.dependencies.items()), default=0)
        return memo[term]

    return 1 + max((extra_rows(t) for t in terms), default=0)


def algorithm_lookback(namespace, params=None) -> int:
    """:func:`pipeline_lookback` of an algorithm module's ``make_pipeline`` (built with
    ``params`` when it takes parameters); ``namespace`` is the module's ``vars()``. ``None``
    for a module without ``make_pipeline``."""
    make_pipeline = namespace.get("make_pipeline")
    if make_pipeline is None:
        return None
    takes_params = bool(inspect.signature(make_pipeline).parameters)
    return pipeline_lookback(make_pipeline(params) if takes_params and params is not None
                             else make_pipeline())


def _session(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def earliest_start(sessions, first_session, lookback: int):
    """The first session with ``lookback`` sessions of ``sessions`` on or after
    ``first_session`` before it (``None`` when ``sessions`` end before that)."""
    sessions = pd.DatetimeIndex(sessions)
    if sessions.tz is not None:
        sessions = sessions.tz_convert("UTC").tz_localize(None)
    i = sessions.searchsorted(_session(first_session)) + int(lookback)
    return sessions[i] if i < len(sessions) else None


def check_history(name, lookback, start, first_session, sessions, bundle=None) -> pd.Timestamp:
    """The earliest start of ``name`` (see :func:`earliest_start`); :class:`HistoryError` when
    ``start`` comes before it."""
    start, first = _session(start), _session(first_session)
    earliest = earliest_start(sessions, first, lookback)
    if earliest is not None and start >= earliest:
        return earliest
    where = f"the bundle {bundle}" if bundle else "the bundle"
    need = (f"{name} needs {lookback} sessions of daily history before its first session "
            f"(its Pipeline's longest window plus the one-session lag); {where} starts "
            f"{first.date()}")
    if earliest is None:
        raise HistoryError(f"{need}, and its calendar ends before {lookback} sessions have "
                           f"passed: ingest more data")
    raise HistoryError(f"{need}, so the earliest start is {earliest.date()}, not "
                       f"{start.date()}: start on or after {earliest.date()} "
                       f"(-s {earliest.date()}) or ingest earlier data")


def bundle_name(context):
    """The name of the bundle the algorithm runs on (its ingestion folder's parent), or None."""
    try:
        from bundles.ingestions import ingestion_dir_of

        return ingestion_dir_of(context.asset_finder).parent.name
    except Exception:  # noqa: BLE001 -- only a nicer message
        return None


def check_context_history(context, pipeline, name):
    """:func:`check_history` of a running algorithm: its ``sim_params.start_session`` against
    the first session of its data portal (zipline's ``first_trading_day`` of the bundle);
    skipped when the algorithm has no data portal that knows it."""
    first = getattr(getattr(context, "data_portal", None), "_first_trading_day", None)
    sim_params = getattr(context, "sim_params", None)
    if first is None or sim_params is None:
        return None
    return check_history(name, pipeline_lookback(pipeline), sim_params.start_session, first,
                         context.trading_calendar.sessions, bundle=bundle_name(context))



"""Reading a run's perf frame from disk (zipline's pickle, or a CSV of it) and checking it,
with errors that name the file and the problem.

A pickle runs code when it is loaded: open only perf pickles you wrote yourself; for files
from elsewhere use the CSV form (``perf.to_csv(path)``), which :func:`load_perf` reads too.
"""
from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pandas as pd


# ----------------------------------------------------------------------------- loading
class PerfFileError(ValueError):
    """A file that is not a readable zipline perf frame; the message names the file and the
    problem (the CLI prints it without a traceback)."""


#: what the tear sheet reads from a perf frame (``returns`` alone is enough for ``compare``)
TEARSHEET_COLUMNS = ("returns", "transactions")

_HOW = ("give the pickle `zipline run -o FILE` wrote, or a CSV of the perf frame "
        "(perf.to_csv(FILE))")


def load_perf(path, columns=("returns",)) -> pd.DataFrame:
    """A zipline perf frame from ``path``: a pickle (what ``zipline run -o`` writes, whatever
    the extension, ``out.csv`` included) or a CSV of the perf frame (``perf.to_csv``), whose
    ``transactions``/``orders``/``positions`` cells are parsed back into lists of dicts
    (assets become ``(sid, symbol)`` tuples, timestamps ``pd.Timestamp``) without ``eval``.

    Loading a pickle runs code from the file: load only pickles you made yourself; a CSV
    is parsed as data only. The frame must have ``columns`` and at least one row (session).
    Anything else raises :class:`PerfFileError` (a ``ValueError``) naming the file and the
    problem: unreadable, truncated or foreign pickle, a text or binary file that is no CSV of
    a perf frame, a missing column, no rows, session labels that are not dates.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        raise PerfFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not head:
        raise PerfFileError(f"{path}: the file is empty; {_HOW}")
    if head[:1] == b"\x80":  # pickle protocol 2+
        try:
            perf = pd.read_pickle(path)
        except Exception as exc:  # noqa: BLE001 -- any failure of a foreign/broken pickle
            problem = ("truncated (the file ends early: was the run or the copy interrupted?)"
                       if isinstance(exc, EOFError) or "truncated" in str(exc)
                       else f"{type(exc).__name__}: {exc}")
            raise PerfFileError(f"{path}: cannot load the pickle: {problem}; {_HOW}") from None
        kind = "pickle"
    else:
        perf = _read_perf_csv(path)
        kind = "CSV"
    check_perf(perf, columns, f"{path} ({kind})")
    return perf


def check_perf(perf, columns=("returns",), source="perf frame", dates=True) -> pd.DataFrame:
    """``perf`` when it is a zipline perf frame with ``columns``, at least one row and (with
    ``dates``) a datetime index, else :class:`PerfFileError` naming ``source`` and what is
    wrong."""
    if not isinstance(perf, pd.DataFrame):
        raise PerfFileError(f"{source}: not a zipline perf frame (holds a "
                            f"{type(perf).__name__}, not a DataFrame); {_HOW}")
    missing = [c for c in columns if c not in perf]
    if "returns" in missing:
        shown = ", ".join(map(str, list(perf.columns)[:8])) or "none"
        raise PerfFileError(f"{source}: not a zipline perf frame (no 'returns' column; "
                            f"columns: {shown}); {_HOW}")
    if missing:
        raise PerfFileError(f"{source}: the perf frame has no {', '.join(map(repr, missing))} "
                            f"column, which the tear sheet needs (a frame cut down to a few "
                            f"columns?); use the full frame zipline returned")
    if len(perf) == 0:
        raise PerfFileError(f"{source}: the perf frame has no rows (no session was simulated); "
                            f"rerun over at least one session")
    if dates and not pd.api.types.is_datetime64_any_dtype(perf.index):
        raise PerfFileError(f"{source}: the index is not session dates (first label: "
                            f"{perf.index[0]!r}); {_HOW}")
    return perf


_TS_RE = re.compile(r"Timestamp\('([^']*)'(?:,\s*tz='([^']*)')?(?:,\s*freq='[^']*')?\)")
_ASSET_RE = re.compile(r"Equity\((\d+) \[([^\]]*)\]\)")
_ENUM_RE = re.compile(r"<\w+\.(\w+): -?\d+>")
_NAN_RE = re.compile(r"\bnan\b")
_LIST_COLUMNS = ("transactions", "orders", "positions")


def _parse_cell(text):
    """One stringified list of dicts (zipline's repr) -> Python objects, without eval."""
    if not isinstance(text, str) or not text.strip():
        return []
    s = _TS_RE.sub(lambda m: repr("__ts__" + m.group(1) + ("|" + m.group(2) if m.group(2)
                                                           else "")), text)
    s = _ASSET_RE.sub(lambda m: f"({m.group(1)}, {m.group(2)!r})", s)
    s = _ENUM_RE.sub(lambda m: repr(m.group(1)), s)
    s = _NAN_RE.sub("None", s)
    value = ast.literal_eval(s)
    return _restore(value)


def _restore(value):
    if isinstance(value, str) and value.startswith("__ts__"):
        stamp, _, tz = value[6:].partition("|")
        ts = pd.Timestamp(stamp)
        return ts.tz_convert(tz) if tz and ts.tzinfo is not None else ts
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    return value


def _read_perf_csv(path) -> pd.DataFrame:
    """A CSV of a perf frame; :class:`PerfFileError` for a file that is not one."""
    try:
        perf = pd.read_csv(path, index_col=0)
    except UnicodeDecodeError:
        raise PerfFileError(f"{path}: neither a pickle nor a text CSV (binary data); "
                            f"{_HOW}") from None
    except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        raise PerfFileError(f"{path}: not a pickle, and not readable as a CSV ({exc}); "
                            f"{_HOW}") from None
    check_perf(perf, ("returns",), f"{path} (CSV)", dates=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
            perf.index = pd.to_datetime(perf.index, utc=True)
    except (TypeError, ValueError) as exc:
        raise PerfFileError(f"{path} (CSV): the first column must be the session dates "
                            f"({exc}); {_HOW}") from None
    for col in _LIST_COLUMNS:
        if col in perf:
            try:
                perf[col] = perf[col].map(_parse_cell)
            except (ValueError, SyntaxError) as exc:
                raise PerfFileError(f"{path} (CSV): cannot parse the {col!r} column "
                                    f"({type(exc).__name__}: {exc})") from None
    return perf


# ----------------------------------------------------------------------------- returns

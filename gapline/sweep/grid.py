"""What a sweep tries: the parameter grid, the cost presets and the time windows.

``--grid top_n=5,10 --grid entry_minute=5,10`` is the Cartesian product of the named values
(:func:`parse_grid`, :func:`expand`); ``--costs published,realistic`` the presets
(:func:`parse_list`); the windows are the whole range, or with ``--walk-forward 2M:1M`` the
out-of-sample blocks of :mod:`.walkforward` (:func:`parse_walk_forward`, :func:`blocks`).
Values stay strings here: the algorithm converts and checks them (``-x`` rules of
:mod:`algorithms.params`) when the sweep is planned on a worker.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pandas as pd

#: span units of ``--walk-forward``: sessions, weeks, months
UNITS = {"D": "sessions", "W": "weeks", "M": "months"}
_SPAN_RE = re.compile(r"^\s*(\d+)\s*([DWM])\s*$", re.IGNORECASE)


class GridError(ValueError):
    """A malformed --grid, --costs or --walk-forward value."""


def parse_list(text) -> list[str]:
    """``"a,b , c"`` -> ``["a", "b", "c"]`` (empty items dropped, order and repeats kept)."""
    if text is None:
        return []
    if isinstance(text, (list, tuple)):
        return [str(t).strip() for t in text if str(t).strip()]
    return [t.strip() for t in str(text).split(",") if t.strip()]


def parse_grid(specs) -> dict[str, list[str]]:
    """``["top_n=5,10", "entry_minute=5,10"]`` -> ``{"top_n": ["5", "10"], ...}`` (names
    lower-cased, in the order given; a name twice or a value twice is an error)."""
    grid: dict[str, list[str]] = {}
    for spec in specs or ():
        name, sep, values = str(spec).partition("=")
        name = name.strip().lower()
        if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise GridError(f"--grid {spec!r}: expected NAME=V1,V2,... (e.g. top_n=5,10)")
        items = parse_list(values)
        if not items:
            raise GridError(f"--grid {spec!r}: no values")
        if name in grid:
            raise GridError(f"--grid names {name!r} twice; give all its values in one --grid")
        if len(set(items)) != len(items):
            raise GridError(f"--grid {spec!r}: a value is repeated")
        grid[name] = items
    return grid


def expand(grid: dict) -> list[dict]:
    """Every combination of ``grid``'s values, the last name varying fastest; ``[{}]`` for an
    empty grid (the algorithm's defaults)."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*grid.values())]


def config_label(params: dict) -> str:
    """``top_n=5 entry_minute=10`` (``defaults`` for no parameters)."""
    return " ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


# ----------------------------------------------------------------------------- windows
@dataclass(frozen=True)
class Span:
    count: int
    unit: str  # D, W or M

    def __str__(self):
        return f"{self.count}{self.unit}"


@dataclass(frozen=True)
class WalkForward:
    """``in_sample:out_of_sample``; the in-sample span is a whole number of out-of-sample
    blocks (``2M:1M``: choose on two months, trade the next one)."""
    in_sample: Span
    out_of_sample: Span

    @property
    def in_sample_blocks(self) -> int:
        return self.in_sample.count // self.out_of_sample.count

    def __str__(self):
        return f"{self.in_sample}:{self.out_of_sample}"


def parse_span(text) -> Span:
    match = _SPAN_RE.match(str(text))
    if not match or int(match.group(1)) < 1:
        raise GridError(f"span {text!r}: expected a count and a unit, e.g. 20D (sessions), "
                        f"4W (weeks) or 2M (months)")
    return Span(int(match.group(1)), match.group(2).upper())


def parse_walk_forward(text) -> WalkForward | None:
    """``"2M:1M"`` -> :class:`WalkForward`; ``None`` for ``None``/empty."""
    if text is None or not str(text).strip():
        return None
    left, sep, right = str(text).partition(":")
    if not sep:
        raise GridError(f"--walk-forward {text!r}: expected IN:OUT, e.g. 2M:1M")
    ins, oos = parse_span(left), parse_span(right)
    if ins.unit != oos.unit:
        raise GridError(f"--walk-forward {text!r}: give both spans in the same unit "
                        f"(e.g. 8W:4W, not 2M:4W)")
    if ins.count % oos.count:
        raise GridError(f"--walk-forward {text!r}: the in-sample span must be a whole number "
                        f"of out-of-sample spans (e.g. 2M:1M, 6M:2M)")
    return WalkForward(ins, oos)


def blocks(sessions, span: Span) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive ``(first, last)`` sessions of ``span`` each, from the first session on: D
    counts sessions, W and M calendar weeks and months from the first session (the last block
    may be shorter)."""
    sessions = pd.DatetimeIndex(sessions).sort_values()
    if len(sessions) == 0:
        return []
    if span.unit == "D":
        groups = [sessions[i:i + span.count] for i in range(0, len(sessions), span.count)]
    else:
        first = sessions[0]
        offset = (pd.DateOffset(weeks=span.count) if span.unit == "W"
                  else pd.DateOffset(months=span.count))
        groups, lo = [], first
        while lo <= sessions[-1]:
            hi = lo + offset
            group = sessions[(sessions >= lo) & (sessions < hi)]
            if len(group):
                groups.append(group)
            lo = hi
    return [(g[0], g[-1]) for g in groups]

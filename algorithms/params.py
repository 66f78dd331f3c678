"""Algorithm parameters: UPPER_CASE module constants, ``-x`` overrides, names, types, ranges.

Each algorithm keeps its parameters as UPPER_CASE module constants. :func:`load_params`
returns them as ``context.params`` with, in increasing priority,

1. ``zipline -x name=value`` extension arguments (lower-case names, e.g.
   ``zipline -x costs=realistic -x max_positions=3 run -f algorithms/microcap_short.py ...``;
   values are converted to the constant's type);
2. the overrides :func:`algorithms.runner.run` passes (``context.gapline_overrides``).

Every value is checked by :func:`resolve_params`, the defaults included:

* **names** -- an override naming no parameter of the algorithm raises
  :class:`UnknownParameterError` (a ``TypeError``) listing the valid names. Top-level ``-x``
  keys are checked too (nested ones such as ``-x polygon.root=...`` are bundle options and
  never looked at): a key that the running algorithm does not define but another gapline
  algorithm (:data:`GAPLINE_ALGORITHMS`) does -- ``-x variant=revised`` left in a command that
  now runs sell_gap -- is ignored with a warning; a key that *no* gapline algorithm defines
  (``-x topn=5``) is an error naming it and listing the running algorithm's parameters.
* **types** -- a value that cannot be converted to the type of the constant (``-x top_n=abc``,
  ``top_n=2.5``, ``-x flag=maybe``) raises :class:`ParameterError` (a ``ValueError``) naming
  the parameter and the value; a float must be finite (no ``nan``, ``inf``).
* **ranges** -- an algorithm declares ``PARAM_BOUNDS`` next to its constants, e.g.
  ``{"TOP_N": (1, None), "POSITION_VALUE": common.above(0), "VARIANT":
  common.one_of("original", "revised")}``: ``(min, max)`` is inclusive with ``None`` for an
  open end, :func:`above` excludes its lower end (sizes: ``above(0)``), :func:`one_of` lists
  the allowed strings. Out of range raises :class:`ParameterError`.

The three errors are also ``click.ClickException``\\ s: ``zipline run`` prints
``Error: <message>`` and exits with status 1 instead of a traceback.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from types import SimpleNamespace

import click
import numpy as np

from bundles.options import extension_args, parse_bool

log = logging.getLogger(__name__)

_PARAM_TYPES = (bool, int, float, str, tuple, type(None))
#: UPPER_CASE module constants that are not parameters: derived values and names
NOT_PARAMETERS = frozenset({"LOOKBACK_SESSIONS", "PIPELINE_NAME", "HEDGE_EXIT_REASON"})
#: the algorithm modules (``algorithms.<name>``) whose parameter names are valid ``-x`` keys
GAPLINE_ALGORITHMS = ("sell_gap", "buy_gap", "microcap_short", "gap_and_go")


class ParameterError(click.ClickException, ValueError):
    """A parameter value of the wrong type or outside its declared range."""


class UnknownParameterError(click.ClickException, TypeError):
    """A parameter name (override or ``-x`` key) that the algorithm does not define."""


class HistoryError(click.ClickException, ValueError):
    """A start too early for the Pipeline's look-back on the bundle's data."""


def module_params(namespace) -> dict:
    """The UPPER_CASE constants of an algorithm module's namespace (its parameters)."""
    return {k: v for k, v in namespace.items()
            if k.isupper() and not k.startswith("_") and k not in NOT_PARAMETERS
            and isinstance(v, _PARAM_TYPES)}


# ----------------------------------------------------------------------------- bounds
@dataclass(frozen=True)
class Range:
    """``low <= value <= high`` (``None``: open end); ``low_open`` excludes ``low``."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def problem(self, value):
        too_low = self.low is not None and (value <= self.low if self.low_open
                                            else value < self.low)
        too_high = self.high is not None and value > self.high
        return f"must be {self}" if too_low or too_high else None

    def __str__(self):
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        high = None if self.high is None else f"<= {self.high:g}"
        return " and ".join(s for s in (low, high) if s) or "any number"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""
    choices: tuple

    def problem(self, value):
        return None if value in self.choices else f"must be one of {list(self.choices)}"


def above(low, high=None) -> Range:
    """``low < value`` (``<= high`` when given): sizes, fractions, percentages."""
    return Range(low, high, low_open=True)


def one_of(*choices) -> OneOf:
    return OneOf(tuple(choices))


def _bound(spec):
    if isinstance(spec, (Range, OneOf)):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:
        return Range(*spec)
    raise TypeError(f"a PARAM_BOUNDS entry is (min, max), common.above(...) or "
                    f"common.one_of(...), got {spec!r}")


# ----------------------------------------------------------------------------- values
def _label(name) -> str:
    return f"parameter {name.lower()} ({name})"


def _coerce(value, like, name="VALUE"):
    """``value`` (a ``-x`` string or a Python value) as the type of the default ``like``;
    :class:`ParameterError` naming ``name`` and the value when it cannot be."""
    def bad(expected):
        return ParameterError(f"{_label(name)} must be {expected}, got {value!r}")

    is_bool = isinstance(value, (bool, np.bool_))
    if like is None:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.lower() in ("none", ""):
            return None
        try:
            return float(text)
        except ValueError:
            return text
    if isinstance(like, bool):
        if is_bool:
            return bool(value)
        parsed = parse_bool(value) if isinstance(value, str) else None
        if parsed is not None:
            return parsed
        raise bad("true or false (1/0, yes/no, on/off)")
    if isinstance(like, int):
        if isinstance(value, (int, np.integer)) and not is_bool:
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
            try:
                number = float(value.strip())
            except ValueError:
                raise bad("an integer") from None
        elif isinstance(value, (float, np.floating)):
            number = float(value)
        else:
            raise bad("an integer")
        if not np.isfinite(number) or number != int(number):
            raise bad("an integer")
        return int(number)
    if isinstance(like, float):
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise bad("a number") from None
        elif isinstance(value, (int, float, np.integer, np.floating)) and not is_bool:
            number = float(value)
        else:
            raise bad("a number")
        if not np.isfinite(number):
            raise bad("a finite number")
        return number
    if isinstance(like, str):
        if isinstance(value, str):
            return value
        raise bad("a string")
    if isinstance(like, tuple):
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise bad("a comma-separated list")
    return value


def check_bounds(params: dict, bounds: dict | None) -> None:
    """:class:`ParameterError` for the first value outside its ``PARAM_BOUNDS`` entry; a
    float without an entry must still be finite."""
    bounds = {k.upper(): _bound(v) for k, v in (bounds or {}).items()}
    unknown = sorted(set(bounds) - set(params))
    if unknown:
        raise TypeError(f"PARAM_BOUNDS names no parameter: {unknown}")
    for name, value in params.items():
        if isinstance(value, float) and not np.isfinite(value):
            raise ParameterError(f"{_label(name)} must be a finite number, got {value!r}")
        bound = bounds.get(name)
        if bound is None or value is None:
            continue
        problem = bound.problem(value)
        if problem:
            raise ParameterError(f"{_label(name)} {problem}, got {value!r}")


# ----------------------------------------------------------------------------- names
def extension_params() -> dict:
    """The top-level plain-string ``-x`` arguments, ``{key: value}`` (nested namespaces such
    as ``polygon`` are bundle options, not parameters)."""
    args = extension_args()
    if args is None:
        return {}
    return {k: v for k, v in vars(args).items() if isinstance(v, str)}


def known_parameter_names() -> set:
    """Every parameter name (UPPER_CASE) of the :data:`GAPLINE_ALGORITHMS`."""
    names = set()
    for algorithm in GAPLINE_ALGORITHMS:
        names |= set(module_params(vars(importlib.import_module(f"algorithms.{algorithm}"))))
    return names


def _valid(defaults) -> str:
    return ", ".join(sorted(k.lower() for k in defaults))


def _extension_overrides(defaults) -> dict:
    """``-x name=value`` arguments naming one of ``defaults`` (case-insensitive); a top-level
    key that no gapline algorithm defines raises :class:`UnknownParameterError`."""
    found = {}
    for key, value in extension_params().items():
        name = key.upper()
        if name in defaults:
            found[name] = value
        elif name in known_parameter_names():
            log.warning("-x %s=%s ignored: this algorithm has no parameter %s (its parameters: "
                        "%s)", key, value, key, _valid(defaults))
        else:
            raise UnknownParameterError(
                f"unknown -x argument {key}={value}: no gapline algorithm has a parameter "
                f"{key!r}; this algorithm's parameters are: {_valid(defaults)} (bundle options "
                f"are namespaced: -x polygon.<option>=...)")
    return found


def resolve_params(defaults: dict, overrides: dict | None = None, use_extension_args=True,
                   bounds: dict | None = None) -> dict:
    """``defaults`` updated by ``-x`` extension args then ``overrides`` (names
    case-insensitive), converted to the defaults' types and checked against ``bounds`` (see
    the module docstring); unknown override names raise :class:`UnknownParameterError`."""
    params = dict(defaults)
    sources = [_extension_overrides(defaults)] if use_extension_args else []
    sources.append(overrides or {})
    for source in sources:
        for key, value in source.items():
            name = key.upper()
            if name not in defaults:
                raise UnknownParameterError(f"unknown parameter {key.lower()!r}; valid: "
                                            f"{_valid(defaults)}")
            params[name] = _coerce(value, defaults[name], name)
    check_bounds(params, bounds)
    return params


def load_params(context, namespace) -> SimpleNamespace:
    """Resolve the algorithm's parameters (see the module docstring) into ``context.params``;
    ``namespace`` is the module's ``globals()`` (constants and ``PARAM_BOUNDS``)."""
    overrides = getattr(context, "gapline_overrides", None)
    params = resolve_params(module_params(namespace), overrides,
                            bounds=namespace.get("PARAM_BOUNDS"))
    context.params = SimpleNamespace(**params)
    return context.params



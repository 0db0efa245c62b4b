"""What Grafana and the ClickHouse plugin do to a panel's SQL before ClickHouse sees it — so tests can run it.

Grafana cannot run on this machine, so the boards are proven by running every panel query against chDB. For that
the SQL must be rewritten exactly as it would be in Grafana, in the same three steps
(grafana/clickhouse-datasource ``src/data/CHDatasource.ts`` and ``pkg/macros/macros.go``, grafana/sqlds macros):

1. frontend, ``applyConditionalAll``: ``$__conditionalAll(condition, $var)`` becomes ``1=1`` when the variable is
   All (``$__all``) or empty, else the condition;
2. frontend, Grafana's template service with the plugin's formatter: ``$var``/``${var}`` become the value, a
   multi-value as ``'a','b'``; ``${var:singlequote}`` quotes each value; All means every option's value;
3. backend, the plugin's macros (sqlds finds ``$__name`` at a word boundary and reads a bracketed argument list):
   ``$__timeFilter(col)`` -> ``col >= toDateTime(from) AND col <= toDateTime(to)``, ``$__fromTime``/``$__toTime``
   -> ``toDateTime(seconds)``, the ``_ms`` forms with ``fromUnixTimestamp64Milli``, ``$__dateFilter``,
   ``$__dateTimeFilter``/``$__dt``, ``$__timeInterval(col)``, ``$__timeInterval_ms(col)`` and ``$__interval_s``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

ALL = "$__all"


class MacroError(ValueError):
    """A macro with the wrong arguments or unbalanced brackets (the plugin would fail the query too)."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and the panel's interval (Grafana: ``$__interval``)."""

    start: dt.datetime
    end: dt.datetime
    interval: dt.timedelta = dt.timedelta(minutes=1)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")


@dataclass(frozen=True)
class Variable:
    """A template variable: its options' values and what is selected (``[ALL]`` for All)."""

    name: str
    options: Sequence[str]
    selected: Sequence[str] = (ALL,)

    @property
    def is_all(self) -> bool:
        return list(self.selected) in ([ALL], [])

    def values(self) -> list[str]:
        """What the template service substitutes: every option for All (no custom all value), else the selection."""
        return list(self.options) if self.is_all else list(self.selected)


# --- step 1: $__conditionalAll (frontend) ------------------------------------------------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
_VAR_IN_ARG = re.compile(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+")


def _macro_args(sql: str, open_index: int) -> list[str] | None:
    """Arguments of the call whose ``(`` is at ``open_index``, split at depth-1 commas (as the plugin does)."""
    depth, start, args = 0, open_index + 1, []
    for i in range(open_index, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args
        elif ch == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    return None


def apply_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    """Replace each ``$__conditionalAll(cond, $var)``, last first, as ``CHDatasource.applyConditionalAll``."""
    index = sql.rfind(_CONDITIONAL_ALL)
    while index != -1:
        args = _macro_args(sql, index + len(_CONDITIONAL_ALL) - 1)
        if args is None or len(args) != 2:
            return sql  # the plugin leaves a malformed call alone
        phrase = args[0]
        found = _VAR_IN_ARG.search(args[1].strip())
        if found:
            variable = variables.get(found.group(0))
            if variable is None or variable.is_all:
                phrase = "1=1"  # an unknown variable has no current value: the plugin's check sees '' too
        sql = sql.replace(f"{_CONDITIONAL_ALL}{args[0]},{args[1]})", phrase, 1)
        index = sql.rfind(_CONDITIONAL_ALL)
    return sql


# --- step 2: template variables (frontend) -----------------------------------------------------------------------

_TEMPLATE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _plugin_format(values: list[str], multi: bool) -> str:
    """``CHDatasource.format``: arrays as ``'a','b'`` (no escaping), single values as they are."""
    return "'" + "','".join(values) + "'" if multi else values[0]


_FORMATS: dict[str, Callable[[list[str]], str]] = {
    "singlequote": lambda vs: ",".join("'" + v.replace("'", "\\'") + "'" for v in vs),
    "doublequote": lambda vs: ",".join('"' + v.replace('"', '\\"') + '"' for v in vs),
    "sqlstring": lambda vs: ",".join("'" + v.replace("'", "''") + "'" for v in vs),
    "csv": lambda vs: ",".join(vs),
    "pipe": lambda vs: "|".join(vs),
    "raw": lambda vs: ",".join(vs),
    "regex": lambda vs: "(" + "|".join(re.escape(v) for v in vs) + ")" if len(vs) > 1 else re.escape(vs[0]),
}


def interpolate_variables(sql: str, variables: Mapping[str, Variable]) -> str:
    """Grafana's ``templateSrv.replace`` with the plugin's formatter; unknown names (macros) are left alone."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        variable = variables.get(name)
        if variable is None:
            return match.group(0)
        values = variable.values()
        fmt = match.group(3) or match.group(6)
        if fmt:
            if fmt not in _FORMATS:
                raise MacroError(f"variable format {fmt!r} is not supported here")
            return _FORMATS[fmt](values)
        return _plugin_format(values, multi=True)

    return _TEMPLATE.sub(replace, sql)


# --- step 3: the plugin's macros (backend) -----------------------------------------------------------------------


def _seconds(t: dt.datetime) -> int:
    return math.floor(t.timestamp())


def _millis(t: dt.datetime) -> int:
    return math.floor(t.timestamp() * 1000)


def _date(t: dt.datetime) -> str:
    return f"toDate('{t.astimezone(dt.UTC).strftime('%Y-%m-%d')}')"


def _one(name: str, args: list[str]) -> str:
    if len(args) != 1:
        raise MacroError(f"$__{name}: expected 1 argument, received {len(args)}")
    return args[0]


def _macros(r: TimeRange) -> dict[str, Callable[[list[str]], str]]:
    frm, to = f"toDateTime({_seconds(r.start)})", f"toDateTime({_seconds(r.end)})"
    frm_ms, to_ms = f"fromUnixTimestamp64Milli({_millis(r.start)})", f"fromUnixTimestamp64Milli({_millis(r.end)})"
    seconds = max(int(r.interval.total_seconds()), 1)
    millis = max(int(r.interval.total_seconds() * 1000), 1)

    def date_time(args: list[str]) -> str:
        if len(args) != 2:
            raise MacroError(f"$__dateTimeFilter: expected 2 arguments, received {len(args)}")
        d, t = args
        return f"({d} >= {_date(r.start)} AND {d} <= {_date(r.end)}) AND ({t} >= {frm} AND {t} <= {to})"

    return {
        "fromTime": lambda _: frm,
        "toTime": lambda _: to,
        "fromTime_ms": lambda _: frm_ms,
        "toTime_ms": lambda _: to_ms,
        "timeFilter": lambda a: f"{(c := _one('timeFilter', a))} >= {frm} AND {c} <= {to}",
        "timeFilter_ms": lambda a: f"{(c := _one('timeFilter_ms', a))} >= {frm_ms} AND {c} <= {to_ms}",
        "dateFilter": lambda a: f"{(c := _one('dateFilter', a))} >= {_date(r.start)} AND {c} <= {_date(r.end)}",
        "dateTimeFilter": date_time,
        "dt": date_time,
        "timeInterval": lambda a: (
            f"toStartOfInterval(toDateTime({_one('timeInterval', a)}), INTERVAL {seconds} second)"
        ),
        "timeInterval_ms": lambda a: (
            f"toStartOfInterval(toDateTime64({_one('timeInterval_ms', a)}, 3), INTERVAL {millis} millisecond)"
        ),
        "interval_s": lambda _: str(seconds),
    }


def _parse_args(text: str) -> tuple[list[str], int]:
    """sqlds ``parseArgs``: a bracketed list at the start of ``text`` -> (trimmed args, length consumed)."""
    if not text.startswith("("):
        return [], 0
    depth, current, args = 0, "", []
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(current.strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(current.strip())
            current = ""
            continue
        current += ch
    raise MacroError("failed to parse macro arguments (missing close bracket?)")


def expand_macros(sql: str, time_range: TimeRange) -> str:
    """Replace the plugin's macros; longer names first so ``$__timeFilter_ms`` is never read as ``$__timeFilter``."""
    macros = _macros(time_range)
    for name in sorted(macros, key=len, reverse=True):
        pattern = re.compile(rf"\$__{re.escape(name)}\b")
        while (match := pattern.search(sql)) is not None:
            args, length = _parse_args(sql[match.end() :])
            sql = sql[: match.start()] + macros[name](args) + sql[match.end() + length :]
    return sql


def render(sql: str, variables: Mapping[str, Variable], time_range: TimeRange) -> str:
    """The SQL ClickHouse would receive from Grafana for this panel, time range and variable selection."""
    sql = apply_conditional_all(sql, variables)
    sql = interpolate_variables(sql, variables)
    return expand_macros(sql, time_range)


LEFTOVER = re.compile(r"\$__\w+|\$\{\w+|\[\[\w+")
"""Anything that still looks like a macro or a variable after :func:`render` (a test asserts there is none)."""

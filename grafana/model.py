"""Small builders for Grafana dashboard JSON: datasources, thresholds from targets, panels, variables and layout.

Why plain dicts and not a dashboard SDK: the JSON is what Grafana stores, provisions and exports, so the generated
files can be read, diffed and validated directly. ``grafana-foundation-sdk`` is alpha and has no model for the
ClickHouse plugin's queries, and ``grafanalib`` is dormant with a lagging panel schema; the few shapes we need fit
in this module, and the tests check them against what Grafana and the plugin expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.config import Target

SCHEMA_VERSION = 39
"""Grafana 10.4/11.x dashboard schema; newer Grafana migrates it on load."""

CLICKHOUSE_UID = "scc-clickhouse"
PROMETHEUS_UID = "scc-prometheus"
CLICKHOUSE: dict[str, str] = {"type": "grafana-clickhouse-datasource", "uid": CLICKHOUSE_UID}
PROMETHEUS: dict[str, str] = {"type": "prometheus", "uid": PROMETHEUS_UID}

GREEN, AMBER, RED, NEUTRAL = "green", "orange", "red", "blue"
THRESHOLD_EPSILON = 1e-6
"""Grafana colours a value by the highest step at or below it, so a strict bound needs a step just above the
target: values within 1e-6 of a ``<=`` target would show amber. Indicator values are counts, minutes and
percentages: none is reported to that precision."""

GRID_WIDTH = 24
Format = Literal["table", "timeseries"]
_FORMAT_CODE = {"timeseries": 0, "table": 1}  # sqlutil.FormatQueryOption in the plugin's backend


def sql_string(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def thresholds(target: Target | None) -> dict[str, Any]:
    """Grafana threshold steps that colour a value as :func:`streams.status.judge` rates it.

    green meets the target; amber misses it by at most ``amber_within``; red beyond. No target: one neutral step.
    """
    if target is None:
        return {"mode": "absolute", "steps": [{"color": NEUTRAL, "value": None}]}
    t, within = target.value, target.amber_within
    match target.op:
        case ">=":
            steps = [(RED, None), (AMBER, t - within), (GREEN, t)]
        case ">":
            steps = [(RED, None), (AMBER, t - within), (GREEN, t + THRESHOLD_EPSILON)]
        case "<=":
            steps = [(GREEN, None), (AMBER, t + THRESHOLD_EPSILON), (RED, t + within + THRESHOLD_EPSILON)]
        case "<":
            steps = [(GREEN, None), (AMBER, t), (RED, t + within + THRESHOLD_EPSILON)]
    # a step followed by one at the same value never shows (e.g. no amber band when amber_within is 0 for >=)
    steps = [s for s, after in zip(steps, [*steps[1:], (None, None)], strict=True) if s[1] is None or s[1] != after[1]]
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def colour_of(value: float, steps: dict[str, Any]) -> str:
    """The colour Grafana gives ``value``: the last step whose value is at or below it (the base step is -inf)."""
    colour = steps["steps"][0]["color"]
    for step in steps["steps"][1:]:
        if value >= step["value"]:
            colour = step["color"]
    return colour


@dataclass(frozen=True)
class Query:
    """One panel query: the ClickHouse SQL (or PromQL) and the columns the panel reads from its result."""

    sql: str
    columns: tuple[str, ...]
    format: Format = "table"
    ref_id: str = "A"

    def target(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": CLICKHOUSE,
            "editorType": "sql",
            "queryType": self.format,
            "format": _FORMAT_CODE[self.format],
            "rawSql": self.sql,
        }


@dataclass(frozen=True)
class PromQuery:
    """One Prometheus panel query (instant for tables and stats, range for graphs)."""

    expr: str
    legend: str = ""
    instant: bool = True
    table: bool = False
    ref_id: str = "A"

    def target(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": PROMETHEUS,
            "expr": self.expr,
            "legendFormat": self.legend,
            "instant": self.instant,
            "range": not self.instant,
            "format": "table" if self.table else "time_series",
        }


AnyQuery = Query | PromQuery


def _datasource(queries: list[AnyQuery]) -> dict[str, str]:
    kinds = {type(q) for q in queries}
    if len(kinds) != 1:
        raise ValueError("a panel's queries must use one datasource")
    return CLICKHOUSE if kinds == {Query} else PROMETHEUS


def _field_defaults(unit: str, decimals: int | None, steps: dict[str, Any] | None, **custom: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": steps or thresholds(None),
        "custom": custom,
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return defaults


def override(field_name: str, **properties: Any) -> dict[str, Any]:
    """A field override by name: ``override("mean_min", thresholds=..., unit="m")``."""
    ids = {
        "cell": "custom.cellOptions",
        "display": "displayName",
        "line": "custom.lineStyle",
        "fill": "custom.fillOpacity",
    }
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [{"id": ids.get(k, k), "value": v} for k, v in properties.items()],
    }


def colour_cells(
    field_name: str, target: Target | None, unit: str = "none", decimals: int | None = None
) -> dict[str, Any]:
    """Override that colours a table column's cells by the target's status."""
    props: dict[str, Any] = {"thresholds": thresholds(target), "cell": {"type": "color-background", "mode": "basic"}}
    props["unit"] = unit
    if decimals is not None:
        props["decimals"] = decimals
    return override(field_name, **props)


@dataclass
class Panel:
    """A panel before layout: its JSON (without id and gridPos), its queries and its size."""

    spec: dict[str, Any]
    queries: list[AnyQuery]
    width: int
    height: int


def stat(
    title: str,
    query: AnyQuery,
    *,
    target: Target | None = None,
    unit: str = "none",
    decimals: int | None = 1,
    sparkline: bool = True,
    description: str = "",
    width: int = 4,
    height: int = 5,
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    """A tile: the last value coloured by the target's status, with the range's sparkline behind it."""
    spec = {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": _datasource([query]),
        "targets": [query.target()],
        "fieldConfig": {"defaults": _field_defaults(unit, decimals, thresholds(target)), "overrides": overrides or []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area" if sparkline else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name" if overrides else "value",
        },
    }
    return Panel(spec, [query], width, height)


def timeseries(
    title: str,
    queries: list[AnyQuery],
    *,
    target: Target | None = None,
    unit: str = "none",
    decimals: int | None = 1,
    description: str = "",
    stacked: bool = False,
    bars: bool = False,
    width: int = 12,
    height: int = 8,
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    """A graph; with a target, its threshold steps are drawn as lines and bands so the target is visible."""
    show = "line+area" if target is not None else "off"
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 2,
        "fillOpacity": 60 if bars else (20 if stacked else 0),
        "showPoints": "auto",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "thresholdsStyle": {"mode": show},
    }
    defaults = _field_defaults(unit, decimals, thresholds(target), **custom)
    defaults["color"] = {"mode": "palette-classic"}
    spec = {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _datasource(queries),
        "targets": [q.target() for q in queries],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
    }
    return Panel(spec, list(queries), width, height)


def table(
    title: str,
    query: AnyQuery,
    *,
    overrides: list[dict[str, Any]] | None = None,
    description: str = "",
    width: int = 12,
    height: int = 8,
    sort_by: str | None = None,
) -> Panel:
    """A table; columns named in ``overrides`` are coloured by their targets."""
    options: dict[str, Any] = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": False}]
    spec = {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": _datasource([query]),
        "targets": [query.target()],
        "fieldConfig": {
            "defaults": _field_defaults("none", None, None, align="auto", cellOptions={"type": "auto"}),
            "overrides": overrides or [],
        },
        "options": options,
    }
    return Panel(spec, [query], width, height)


def bargauge(
    title: str,
    query: AnyQuery,
    *,
    target: Target | None = None,
    unit: str = "none",
    decimals: int | None = 1,
    description: str = "",
    width: int = 8,
    height: int = 7,
) -> Panel:
    """Horizontal bars, one per row of the result (e.g. per site), coloured by the target's status."""
    spec = {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": _datasource([query]),
        "targets": [query.target()],
        "fieldConfig": {"defaults": _field_defaults(unit, decimals, thresholds(target)), "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
            "valueMode": "color",
        },
    }
    return Panel(spec, [query], width, height)


def text(title: str, content: str, *, width: int = 24, height: int = 3) -> Panel:
    """Markdown text (what a board shows and where its numbers come from)."""
    spec = {"type": "text", "title": title, "options": {"mode": "markdown", "content": content}}
    return Panel(spec, [], width, height)


def query_variable(name: str, label: str, sql: str, *, multi: bool = True) -> dict[str, Any]:
    """A ClickHouse query variable with an All option; ``sql`` returns (value, text) rows."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": CLICKHOUSE,
        "query": {"refId": f"var-{name}", "editorType": "sql", "format": 1, "queryType": "table", "rawSql": sql},
        "definition": sql,
        "refresh": 1,
        "includeAll": True,
        "multi": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 0,
        "hide": 0,
    }


@dataclass
class Board:
    """A dashboard being laid out: rows of panels flowing left to right, ids assigned in order."""

    uid: str
    title: str
    description: str
    tags: list[str]
    time_from: str = "now-24h"
    refresh: str = "30s"
    variables: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    _panels: list[dict[str, Any]] = field(default_factory=list)
    queries: dict[tuple[int, str], AnyQuery] = field(default_factory=dict)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0

    def _next_id(self) -> int:
        return len(self._panels) + 1

    def row(self, title: str) -> None:
        """Start a new (always expanded) row."""
        self._newline()
        self._panels.append(
            {
                "type": "row",
                "id": self._next_id(),
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y},
            }
        )
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
            self._x, self._row_height = 0, 0

    def add(self, *panels: Panel) -> None:
        """Place panels left to right, wrapping at the grid's width."""
        for panel in panels:
            if self._x + panel.width > GRID_WIDTH:
                self._newline()
            pid = self._next_id()
            spec = {"id": pid, "gridPos": {"h": panel.height, "w": panel.width, "x": self._x, "y": self._y}}
            spec.update(panel.spec)
            self._panels.append(spec)
            for q in panel.queries:
                self.queries[(pid, q.ref_id)] = q
            self._x += panel.width
            self._row_height = max(self._row_height, panel.height)

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": False,
            "graphTooltip": 1,
            "timezone": "Europe/London",
            "weekStart": "monday",
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "fiscalYearStartMonth": 3,  # 0-based: April, the NHS financial year
            "liveNow": False,
            "links": self.links,
            "templating": {"list": self.variables},
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "panels": self._panels,
        }

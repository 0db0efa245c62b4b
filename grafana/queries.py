"""The SQL behind the boards, for the ClickHouse plugin (its macros and Grafana's template variables).

Every query reads the platform's own tables: ``scc.indicator_snapshots`` (what the agents published) and, for the
analysts' history, ``scc.raw_ed`` (recomputed in SQL, independently of the engine). Snapshots can be stored twice
(at-least-once), so every read deduplicates: ``argMax(value, computed_at)`` per evaluation time, and
``argMax(value, (ts, computed_at))`` for "the latest in the range". Site and organisation names come from the ICB
file, so a board shows "Leicester Royal Infirmary", not ``RWEAA``, without a lookup table to keep in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana.model import Query, sql_string
from schemas.config import Icb

SNAPSHOTS = "scc.indicator_snapshots"
RAW_ED = "scc.raw_ed"
LOCAL_TZ = "Europe/London"
FOUR_HOURS_MS = 4 * 3600 * 1000
AMBULANCE_CLOCK_CAP = "INTERVAL 15 MINUTE"
LATEST = "argMax(value, (ts, computed_at))"


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(sql_string(v) for v in values) + ")"


@dataclass(frozen=True)
class Scopes:
    """SQL fragments derived from the ICB file: scope names, the site -> organisation map and the variables."""

    icb: Icb

    @property
    def _codes(self) -> list[str]:
        return [*self.icb.sites, *self.icb.orgs, self.icb.code]

    @property
    def _names(self) -> list[str]:
        sites = [s.name for s in self.icb.sites.values()]
        orgs = [o.name for o in self.icb.orgs.values()]
        return [*sites, *orgs, self.icb.name]

    def name(self, column: str = "scope_code") -> str:
        """Expression giving the display name of a scope code."""
        return f"transform({column}, {_list(self._codes)}, {_list(self._names)}, {column})"

    def org_of_site(self, column: str = "scope_code") -> str:
        sites = list(self.icb.org_of_site)
        return f"transform({column}, {_list(sites)}, {_list([self.icb.org_of_site[s] for s in sites])}, '')"

    def filter(self) -> str:
        """Rows the ``org`` and ``site`` variables select; the system row always shows."""
        site = (
            "(scope_type = 'site' AND $__conditionalAll(scope_code IN (${site:singlequote}), $site)"
            f" AND $__conditionalAll({self.org_of_site()} IN (${{org:singlequote}}), $org))"
        )
        org = "(scope_type = 'org' AND $__conditionalAll(scope_code IN (${org:singlequote}), $org))"
        return f"({site} OR {org} OR scope_type = 'system')"

    def org_variable_sql(self) -> str:
        rows = ", ".join(f"({sql_string(o.code)}, {sql_string(o.name)})" for o in self.icb.organisations)
        return f"SELECT value, text FROM VALUES('value String, text String', {rows}) ORDER BY text"

    def site_variable_sql(self) -> str:
        rows = ", ".join(
            f"({sql_string(s.code)}, {sql_string(s.name)}, {sql_string(o.code)})"
            for o in self.icb.organisations
            for s in o.sites
        )
        return (
            f"SELECT value, text FROM VALUES('value String, text String, org String', {rows})"
            " WHERE $__conditionalAll(org IN (${org:singlequote}), $org) ORDER BY text"
        )


def series(indicator: str, window: str, *, alias: str | None = None, with_target: bool = False) -> Query:
    """The system's value at each evaluation time in the range (and the target in force, to draw as a line)."""
    alias = alias or indicator
    target = ",\n       argMax(target, computed_at) AS target" if with_target else ""
    sql = f"""SELECT ts AS time,
       argMax(value, computed_at) AS {alias}{target}
FROM {SNAPSHOTS}
WHERE indicator = {sql_string(indicator)} AND `window` = {sql_string(window)} AND scope_type = 'system'
  AND $__timeFilter(ts)
GROUP BY ts
ORDER BY time"""
    return Query(sql, ("time", alias, *(("target",) if with_target else ())), "timeseries")


def series_by_label(indicators: dict[str, str], window: str, *, label: str) -> Query:
    """Several system indicators as one long series set: (time, label, value), e.g. MOFD by pathway."""
    names = list(indicators)
    sql = f"""SELECT ts AS time,
       transform(indicator, {_list(names)}, {_list(list(indicators.values()))}, indicator) AS {label},
       argMax(value, computed_at) AS value
FROM {SNAPSHOTS}
WHERE indicator IN {_in(names)} AND `window` = {sql_string(window)} AND scope_type = 'system'
  AND $__timeFilter(ts)
GROUP BY ts, indicator
ORDER BY time, {label}"""
    return Query(sql, ("time", label, "value"), "timeseries")


def series_by_site(scopes: Scopes, indicator: str, window: str) -> Query:
    """One series per site the variables select: (time, site, value)."""
    sql = f"""SELECT ts AS time,
       {scopes.name()} AS site,
       argMax(value, computed_at) AS value
FROM {SNAPSHOTS}
WHERE indicator = {sql_string(indicator)} AND `window` = {sql_string(window)} AND scope_type = 'site'
  AND {scopes.filter()}
  AND $__timeFilter(ts)
GROUP BY ts, scope_code
ORDER BY time, site"""
    return Query(sql, ("time", "site", "value"), "timeseries")


def latest_fields(columns: dict[str, tuple[str, str]], *, scope_type: str = "system") -> Query:
    """One row: the latest value in the range of each (indicator, window), one column each (a multi-value tile)."""
    pairs = ", ".join(f"({sql_string(i)}, {sql_string(w)})" for i, w in columns.values())
    fields = ",\n       ".join(
        f"argMaxIf(value, (ts, computed_at), indicator = {sql_string(i)} AND `window` = {sql_string(w)}) AS {alias}"
        for alias, (i, w) in columns.items()
    )
    sql = f"""SELECT {fields}
FROM {SNAPSHOTS}
WHERE (indicator, `window`) IN ({pairs}) AND scope_type = {sql_string(scope_type)}
  AND $__timeFilter(ts)"""
    return Query(sql, tuple(columns))


def latest_by_scope(scopes: Scopes, columns: dict[str, tuple[str, str]], *, scope_types: Sequence[str]) -> Query:
    """A row per scope (sites, then organisations, then the system) with the latest value of each column."""
    pairs = ", ".join(f"({sql_string(i)}, {sql_string(w)})" for i, w in columns.values())
    fields = ",\n       ".join(
        f"argMaxIf(value, (ts, computed_at), indicator = {sql_string(i)} AND `window` = {sql_string(w)}) AS {alias}"
        for alias, (i, w) in columns.items()
    )
    sql = f"""SELECT {scopes.name()} AS name,
       scope_type AS level,
       {fields}
FROM {SNAPSHOTS}
WHERE (indicator, `window`) IN ({pairs}) AND scope_type IN {_in(scope_types)}
  AND {scopes.filter()}
  AND $__timeFilter(ts)
GROUP BY scope_type, scope_code
ORDER BY scope_type = 'system', scope_type = 'org', name"""
    return Query(sql, ("name", "level", *columns))


def latest_per_site(scopes: Scopes, indicator: str, window: str) -> Query:
    """(site, value) rows: the latest value of one indicator at each selected site (bars)."""
    sql = f"""SELECT {scopes.name()} AS site,
       {LATEST} AS value
FROM {SNAPSHOTS}
WHERE indicator = {sql_string(indicator)} AND `window` = {sql_string(window)} AND scope_type = 'site'
  AND {scopes.filter()}
  AND $__timeFilter(ts)
GROUP BY scope_code
ORDER BY site"""
    return Query(sql, ("site", "value"))


def latest_per_label(indicators: dict[str, str], window: str, *, label: str) -> Query:
    """(label, value) rows for several system indicators, e.g. 4-hour % by department type (bars)."""
    names = list(indicators)
    sql = f"""SELECT transform(indicator, {_list(names)}, {_list(list(indicators.values()))}, indicator) AS {label},
       {LATEST} AS value
FROM {SNAPSHOTS}
WHERE indicator IN {_in(names)} AND `window` = {sql_string(window)} AND scope_type = 'system'
  AND $__timeFilter(ts)
GROUP BY indicator
ORDER BY {label}"""
    return Query(sql, (label, "value"))


# --- history for analysts ----------------------------------------------------------------------------------------

_ATTENDANCES = f"""attendances AS (
    SELECT attendance_id,
           argMinIf(org_code, (occurred_at, event_id), event_type = 'ed.arrived') AS org,
           argMinIf(site_code, (occurred_at, event_id), event_type = 'ed.arrived') AS site,
           argMinIf(arrival_mode, (occurred_at, event_id), event_type = 'ed.arrived') AS mode,
           minIf(occurred_at, event_type = 'ed.arrived') AS arrived,
           minIf(occurred_at, event_type = 'ed.handover') AS handover,
           minIf(occurred_at, event_type = 'ed.departed') AS departed,
           countIf(event_type = 'ed.arrived') AS n_arrived,
           countIf(event_type = 'ed.handover') AS n_handover,
           countIf(event_type = 'ed.departed') AS n_departed,
           countIf(event_type = 'ed.cancelled') AS n_cancelled
    FROM {RAW_ED}
    WHERE occurred_at >= $__fromTime - INTERVAL 13 MONTH AND occurred_at <= $__toTime
    GROUP BY attendance_id
),
departures AS (
    SELECT org, site, departed,
           if(mode = 'ambulance',
              least(if(n_handover > 0 AND handover >= arrived, handover, arrived + {AMBULANCE_CLOCK_CAP}),
                    arrived + {AMBULANCE_CLOCK_CAP}),
              arrived) AS clock_start,
           dateDiff('millisecond', clock_start, departed) <= {FOUR_HOURS_MS} AS within_4h
    FROM attendances
    WHERE n_arrived > 0 AND n_departed > 0 AND n_cancelled = 0
)"""
"""Per attendance, as docs/definitions.md reads INDICATORS.md: arrival, the first handover (ignored when before
arrival), departure and cancellation; the clock starts at arrival, or for ambulance arrivals at the handover capped
at arrival + 15 minutes. Written from the definitions, not from the engine's code, so the two can be compared."""


def ed_4h_monthly_by_org() -> Query:
    """Monthly ED 4-hour % per organisation from ``scc.raw_ed``, with the same month last year."""
    sql = f"""WITH {_ATTENDANCES},
monthly AS (
    SELECT org,
           toStartOfMonth(departed, '{LOCAL_TZ}') AS month,
           addYears(month, 1) AS month_next_year,
           countIf(within_4h) AS within,
           count() AS total
    FROM departures
    WHERE $__conditionalAll(org IN (${{org:singlequote}}), $org)
    GROUP BY org, month
)
SELECT toDateTime(cur.month, '{LOCAL_TZ}') AS time,
       cur.org AS org,
       round(100 * cur.within / cur.total, 2) AS ed_4h_pct,
       round(100 * ly.within / ly.total, 2) AS ed_4h_pct_last_year
FROM monthly AS cur
LEFT JOIN monthly AS ly ON ly.org = cur.org AND ly.month_next_year = cur.month
WHERE cur.month >= toStartOfMonth($__fromTime, '{LOCAL_TZ}') AND cur.month <= toDate($__toTime, '{LOCAL_TZ}')
ORDER BY time, org
SETTINGS join_use_nulls = 1"""
    return Query(sql, ("time", "org", "ed_4h_pct", "ed_4h_pct_last_year"), "timeseries")


def ed_4h_monthly_by_site(scopes: Scopes) -> Query:
    """The same recomputation per site (the ``site`` and ``org`` variables apply), as a table for analysts."""
    sql = f"""WITH {_ATTENDANCES},
monthly AS (
    SELECT org, site,
           toStartOfMonth(departed, '{LOCAL_TZ}') AS month,
           addYears(month, 1) AS month_next_year,
           countIf(within_4h) AS within,
           count() AS total
    FROM departures
    WHERE $__conditionalAll(org IN (${{org:singlequote}}), $org)
      AND $__conditionalAll(site IN (${{site:singlequote}}), $site)
    GROUP BY org, site, month
)
SELECT cur.month AS month,
       {scopes.name("cur.site")} AS site_name,
       cur.total AS departures,
       cur.within AS within_4h,
       round(100 * cur.within / cur.total, 2) AS ed_4h_pct,
       round(100 * ly.within / ly.total, 2) AS ed_4h_pct_last_year,
       round(ed_4h_pct - ed_4h_pct_last_year, 2) AS change_pts
FROM monthly AS cur
LEFT JOIN monthly AS ly ON ly.org = cur.org AND ly.site = cur.site AND ly.month_next_year = cur.month
WHERE cur.month >= toStartOfMonth($__fromTime, '{LOCAL_TZ}') AND cur.month <= toDate($__toTime, '{LOCAL_TZ}')
ORDER BY month DESC, site_name
SETTINGS join_use_nulls = 1"""
    columns = ("month", "site_name", "departures", "within_4h", "ed_4h_pct", "ed_4h_pct_last_year", "change_pts")
    return Query(sql, columns)


def ed_attendances_monthly() -> Query:
    """Monthly ED attendances (arrivals, not cancelled) per organisation, with the same month last year."""
    sql = f"""WITH {_ATTENDANCES},
monthly AS (
    SELECT org,
           toStartOfMonth(arrived, '{LOCAL_TZ}') AS month,
           addYears(month, 1) AS month_next_year,
           count() AS attendances
    FROM attendances
    WHERE n_arrived > 0 AND n_cancelled = 0
      AND $__conditionalAll(org IN (${{org:singlequote}}), $org)
    GROUP BY org, month
)
SELECT toDateTime(cur.month, '{LOCAL_TZ}') AS time,
       cur.org AS org,
       cur.attendances AS attendances,
       ly.attendances AS attendances_last_year
FROM monthly AS cur
LEFT JOIN monthly AS ly ON ly.org = cur.org AND ly.month_next_year = cur.month
WHERE cur.month >= toStartOfMonth($__fromTime, '{LOCAL_TZ}') AND cur.month <= toDate($__toTime, '{LOCAL_TZ}')
ORDER BY time, org
SETTINGS join_use_nulls = 1"""
    return Query(sql, ("time", "org", "attendances", "attendances_last_year"), "timeseries")


def published_monthly(scopes: Scopes, indicators: Sequence[str]) -> Query:
    """The engine's closed-month figures (``month`` window) per organisation, with the same month last year.

    A ``month`` snapshot at T describes the local month before T's; the last one published for a month wins.
    """
    sql = f"""WITH published AS (
    SELECT indicator, scope_code AS org,
           addMonths(toStartOfMonth(ts, '{LOCAL_TZ}'), -1) AS month,
           addYears(month, 1) AS month_next_year,
           {LATEST} AS value
    FROM {SNAPSHOTS}
    WHERE `window` = 'month' AND scope_type = 'org' AND indicator IN {_in(indicators)}
      AND $__conditionalAll(scope_code IN (${{org:singlequote}}), $org)
      AND ts >= $__fromTime - INTERVAL 13 MONTH AND ts <= $__toTime + INTERVAL 32 DAY
    GROUP BY indicator, org, month
)
SELECT cur.month AS month,
       {scopes.name("cur.org")} AS organisation,
       cur.indicator AS indicator,
       round(cur.value, 2) AS value,
       round(ly.value, 2) AS same_month_last_year
FROM published AS cur
LEFT JOIN published AS ly ON ly.indicator = cur.indicator AND ly.org = cur.org AND ly.month_next_year = cur.month
WHERE cur.month >= toStartOfMonth($__fromTime, '{LOCAL_TZ}') AND cur.month <= toDate($__toTime, '{LOCAL_TZ}')
ORDER BY month DESC, organisation, indicator
SETTINGS join_use_nulls = 1"""
    return Query(sql, ("month", "organisation", "indicator", "value", "same_month_last_year"))

"""NHS monthly returns recomputed from the raw events by SQL: A&E (MSitAE), ambulance (AmbSYS-style), discharge (DRD).

Each return is one Europe/London calendar month (``month='YYYY-MM'``) per organisation, built on the same per-entity
SQL as the independent recomputation (:mod:`clickhouse.recompute`: deduplication by ``event_id`` with the first copy
winning, folds in (``occurred_at``, ``event_id``) order, cancelled attendances and spells left out), so a return
equals the stream engine's ``month``-window indicators for that month. Column names and decisions: docs/returns.md.

As in the recomputation, Python only names the organisations (from the ICB file), binds parameters and shapes rows;
every count, sum and centile is SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from clickhouse.recompute import ed_facts_sql, responses_sql, scope_parameters, spell_facts_sql
from clickhouse.store import Store
from schemas.config import Icb

RETURNS = ("ae", "ambulance", "discharge")
# "Every event in the store": the default evaluation time (the SQL reads events with occurred_at <= T).
EVERYTHING = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
_MONTH_NAMES = (
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
)
# The month an instant belongs to: its Europe/London calendar month, as YYYYMM.
_IN_MONTH = "toYYYYMM({column}, 'Europe/London') = {{yyyymm:UInt32}}"

# NHS England's monthly A&E CSV (MSitAE) column names; the four percentage columns are those of its time series.
AE_TYPES = ("1", "2", "3")  # the arrival's department type; 3 is NHS England's "Other A&E Department"
AE_COLUMNS = (
    "Period",
    "Org Code",
    "Org name",
    "A&E attendances Type 1",
    "A&E attendances Type 2",
    "A&E attendances Other A&E Department",
    "Attendances over 4hrs Type 1",
    "Attendances over 4hrs Type 2",
    "Attendances over 4hrs Other Department",
    "Emergency admissions via A&E - Type 1",
    "Emergency admissions via A&E - Type 2",
    "Emergency admissions via A&E - Other A&E department",
    "Total attendances",
    "Total Attendances > 4 hours",
    "Percentage in 4 hours or less (type 1)",
    "Percentage in 4 hours or less (type 2)",
    "Percentage in 4 hours or less (other A&E)",
    "Percentage in 4 hours or less (all)",
)
AMBULANCE_COLUMNS = (
    "Year",
    "Month",
    "Org Code",
    "Org name",
    "Category",
    "Incidents",
    "Total response time (s)",
    "Mean response time (s)",
    "90th centile response time (s)",
    "Mean response time (min)",
    "90th centile response time (min)",
)
DELAY_BUCKETS = (("0", 0, 0), ("1", 1, 1), ("2-3", 2, 3), ("4-6", 4, 6), ("7-13", 7, 13), ("14-20", 14, 20))
DISCHARGE_COLUMNS = (
    "Period",
    "Org Code",
    "Org name",
    "Discharges (stay of one night or more)",
    "Discharged on ready date",
    "Percentage discharged on ready date",
    *(f"Delay {label} {'day' if label == '1' else 'days'}" for label, _, _ in DELAY_BUCKETS),
    "Delay 21+ days",
    "Total delay days",
    "Average delay days (all discharges)",
    "Average delay days (delayed discharges)",
)
COLUMNS = {"ae": AE_COLUMNS, "ambulance": AMBULANCE_COLUMNS, "discharge": DISCHARGE_COLUMNS}


class UnknownOrganisation(ValueError):
    """The organisation is not one the ICB configures for this return."""


def parse_month(month: str) -> dt.date:
    """``'YYYY-MM'`` -> the first day of that month; ValueError otherwise."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1970:
        raise ValueError(f"month must be YYYY-MM (e.g. 2026-03), got {month!r}")
    return dt.date(int(match[1]), int(match[2]), 1)


def ae_period(first_day: dt.date) -> str:
    """NHS England's A&E ``Period`` label, e.g. ``MSitAE-MARCH-2026``."""
    return f"MSitAE-{_MONTH_NAMES[first_day.month - 1]}-{first_day.year}"


def return_organisations(icb: Icb, kind: str) -> list[str]:
    """The organisations a return reports (in ICB file order): those with an ED site (ae), ambulance services
    (ambulance), those with adult G&A beds (discharge)."""
    params = scope_parameters(icb)
    return {"ae": params["ed_orgs"], "ambulance": params["amb_orgs"], "discharge": params["bed_orgs"]}[kind]


def _ae_sql(store: Store) -> str:
    """Per organisation: attendances departed in the month by department type, those over 4 hours (duration from
    clock start > 4:00:00, the engine's rule) and those admitted (departure disposal ``admitted``)."""
    columns = ["count() AS att_all", "countIf(NOT within_4h) AS over_all"]
    for dtype in AE_TYPES:
        columns += [
            f"countIf(dtype = '{dtype}') AS att{dtype}",
            f"countIf(dtype = '{dtype}' AND NOT within_4h) AS over{dtype}",
            f"countIf(dtype = '{dtype}' AND disposal = 'admitted') AS adm{dtype}",
        ]

    def pct(att: str, over: str) -> str:
        return f"if({att} = 0, NULL, 100 * ({att} - {over}) / {att})"

    return f"""
        SELECT o.org AS org,
               f.att1, f.att2, f.att3, f.over1, f.over2, f.over3, f.adm1, f.adm2, f.adm3, f.att_all, f.over_all,
               {pct("f.att1", "f.over1")} AS pct1, {pct("f.att2", "f.over2")} AS pct2,
               {pct("f.att3", "f.over3")} AS pct3, {pct("f.att_all", "f.over_all")} AS pct_all
        FROM (SELECT arrayJoin({{report_orgs:Array(String)}}) AS org) AS o
        LEFT JOIN (
            SELECT org, {", ".join(columns)}
            FROM ({ed_facts_sql(store)})
            WHERE departed AND {_IN_MONTH.format(column="departure")}
            GROUP BY org
        ) AS f ON o.org = f.org
        SETTINGS join_use_nulls = 0"""


def _ambulance_sql(store: Store) -> str:
    """Per ambulance organisation and category 1-4: responses whose clock stopped in the month (the engine's clock
    start, stop and category rules), their total, mean and nearest-rank 90th centile."""
    return f"""
        SELECT k.org AS org, k.category AS category, f.n AS n, f.total AS total,
               if(f.n = 0, NULL, f.total / f.n) AS mean_s,
               if(f.n = 0, NULL, f.sorted[intDiv(9 * f.n + 9, 10)]) AS p90_s,
               if(f.n = 0, NULL, f.total_min / f.n) AS mean_min,
               if(f.n = 0, NULL, f.sorted_min[intDiv(9 * f.n + 9, 10)]) AS p90_min
        FROM (
            SELECT arrayJoin({{report_orgs:Array(String)}}) AS org,
                   arrayJoin(CAST([1, 2, 3, 4] AS Array(UInt8))) AS category
        ) AS k
        LEFT JOIN (
            SELECT org, category, count() AS n, sum(seconds) AS total, arraySort(groupArray(seconds)) AS sorted,
                   sum(minutes) AS total_min, arraySort(groupArray(minutes)) AS sorted_min
            FROM ({responses_sql(store)})
            WHERE {_IN_MONTH.format(column="stop")}
            GROUP BY org, category
        ) AS f ON k.org = f.org AND k.category = f.category
        SETTINGS join_use_nulls = 0"""


def _discharge_sql(store: Store) -> str:
    """Per organisation: adult G&A spells discharged in the month with a stay of one night or more (the engine's
    ``counts_for_drd``), by delay from the ready date in force at discharge (0 when none or on/before it)."""
    buckets = ", ".join(
        f"countIf(delay_days BETWEEN {low} AND {high}) AS d{i}" for i, (_, low, high) in enumerate(DELAY_BUCKETS)
    )
    return f"""
        SELECT o.org AS org, f.n AS n, f.d0 AS on_time,
               if(f.n = 0, NULL, 100 * f.d0 / f.n) AS on_time_pct,
               {", ".join(f"f.d{i}" for i in range(len(DELAY_BUCKETS)))}, f.d21 AS d21, f.total AS total,
               if(f.n = 0, NULL, f.total / f.n) AS mean_all,
               if(f.delayed = 0, NULL, f.total / f.delayed) AS mean_delayed
        FROM (SELECT arrayJoin({{report_orgs:Array(String)}}) AS org) AS o
        LEFT JOIN (
            SELECT org, count() AS n, {buckets}, countIf(delay_days >= 21) AS d21,
                   sum(delay_days) AS total, countIf(delay_days > 0) AS delayed
            FROM ({spell_facts_sql(store)})
            WHERE counts_for_drd AND {_IN_MONTH.format(column="discharged_at")}
            GROUP BY org
        ) AS f ON o.org = f.org
        SETTINGS join_use_nulls = 0"""


def _num(value: Any) -> Any:
    """Counts as int, measures as float, no value as None."""
    if value is None:
        return None
    if isinstance(value, float):
        return value
    return int(value)


def monthly_return(
    store: Store, icb: Icb, kind: str, month: str, org: str | None = None, at: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """One monthly return as rows (dicts in :data:`COLUMNS` order), one per organisation (ambulance: per
    organisation and category), every configured organisation included even with no activity.

    ``at``: use the events with ``occurred_at <= at`` (default: every event in the store). ``org``: one
    organisation only (:class:`UnknownOrganisation` if the ICB has no such organisation for this return).
    """
    if kind not in RETURNS:
        raise ValueError(f"unknown return {kind!r}: use one of {', '.join(RETURNS)}")
    first_day = parse_month(month)
    orgs = return_organisations(icb, kind)
    if org is not None:
        if org not in orgs:
            raise UnknownOrganisation(
                f"organisation {org!r} has no {kind} return in ICB {icb.code}: use one of {', '.join(orgs) or '(none)'}"
            )
        orgs = [org]
    when = EVERYTHING if at is None else at
    if when.tzinfo is None:
        raise ValueError("monthly_return needs an aware time (UTC or with an offset)")
    params = {
        **scope_parameters(icb),
        "at": when.astimezone(dt.UTC),
        "yyyymm": first_day.year * 100 + first_day.month,
        "report_orgs": orgs,
    }
    names = {o.code: o.name for o in icb.organisations}
    order = {code: i for i, code in enumerate(orgs)}
    sql = {"ae": _ae_sql, "ambulance": _ambulance_sql, "discharge": _discharge_sql}[kind](store)
    rows = sorted(store.query_rows(sql, params), key=lambda r: (order[r[0]], r[1] if kind == "ambulance" else 0))
    out = []
    for code, *values in rows:
        values = [_num(v) for v in values]
        if kind == "ae":
            head: list[Any] = [ae_period(first_day), code, names[code]]
        elif kind == "ambulance":
            head = [first_day.year, first_day.month, code, names[code]]
        else:
            head = [first_day.strftime("%Y-%m"), code, names[code]]
        out.append(dict(zip(COLUMNS[kind], head + values, strict=True)))
    return out

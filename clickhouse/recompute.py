"""The independent SQL recomputation of the indicators: the platform's main correctness check.

Why it exists: the stream engine (``streams/``) computes every indicator incrementally in Python. This module computes
the same indicators "as of T" from nothing but the raw event tables, in ClickHouse SQL, following docs/definitions.md
directly (deduplication, (occurred_at, event_id) ordering, per-entity folds, Europe/London windows). If the two ever
disagree, one of them is wrong. To keep it independent, no Python indicator code is called and no arithmetic over
events happens in Python: Python only lists the scopes from the ICB configuration (site -> organisation -> system),
binds them as query parameters, and turns rows into dicts.

Every query below starts from :func:`_events`: the events with ``occurred_at <= T`` about organisations and sites the
ICB configures (the platform rejects the others), one copy per ``event_id`` (the first ingested).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse.store import Store
from schemas.config import Icb

ROW_KEYS = ("indicator", "window", "scope_type", "scope_code", "value", "numerator", "denominator")

_T = "{at:DateTime64(6, 'UTC')}"
_LOCAL_TODAY = f"toDate({_T}, 'Europe/London')"
_DAY_START = f"toDateTime64({_LOCAL_TODAY}, 3, 'Europe/London')"  # instant of local midnight (23/25 h days ok)
_MONTH_START = f"toDateTime64(toStartOfMonth({_LOCAL_TODAY}), 3, 'Europe/London')"
# The `month` window: the last complete local calendar month before T's month, [its local start, T's month start).
_PREV_MONTH_START = f"toDateTime64(toStartOfMonth({_LOCAL_TODAY}) - INTERVAL 1 MONTH, 3, 'Europe/London')"
_ROW_TYPE = "Tuple(String, String, Nullable(Float64), Nullable(Float64), Nullable(Float64))"
CALENDAR_WINDOWS = ("today", "mtd", "month")
DEPARTMENT_TYPES = ("1", "2", "3")
HANDOVER_THRESHOLDS_MIN = (15, 30, 45, 60)


# The window bounds as columns: select them next to the facts (``SELECT *, {_BOUNDS} ...``) before using in_window.
_BOUNDS = (
    f"{_DAY_START} AS day_start, {_MONTH_START} AS month_start, {_PREV_MONTH_START} AS prev_month_start,"
    f" {_T} - INTERVAL 60 MINUTE AS hour_ago"
)


def in_window(window: str, column: str) -> str:
    """SQL condition: the instant ``column`` (at or before T, as every as-of-T event is) falls in ``window``; needs
    the :data:`_BOUNDS` columns."""
    conditions = {
        "today": f"{column} >= day_start",
        "last_60m": f"{column} > hour_ago",
        "mtd": f"{column} >= month_start",
        "month": f"{column} >= prev_month_start AND {column} < month_start",
    }
    return f"({conditions[window]})"


def _ms(column: str) -> str:
    return f"toUnixTimestamp64Milli({column})"


def _events(store: Store, table: str, columns: str) -> str:
    """As-of-T events of one raw table, for configured organisations/sites, deduplicated (first copy wins)."""
    return f"""
        SELECT {columns}
        FROM {store.table(table)}
        WHERE occurred_at <= {_T}
          AND has({{orgs:Array(String)}}, org_code)
          AND (site_code IS NULL OR has({{sites:Array(String)}}, site_code))
        ORDER BY event_id, ingested_at, kafka_partition, kafka_offset
        LIMIT 1 BY event_id"""


def _row(indicator: str, window: str, value: str, numerator: str, denominator: str) -> str:
    """SQL for one output row of a scope: (indicator, window, value, numerator, denominator)."""
    return f"CAST(('{indicator}', '{window}', {value}, {numerator}, {denominator}) AS {_ROW_TYPE})"


def _count(indicator: str, window: str, column: str) -> str:
    """A count: value = numerator = the count, no denominator."""
    return _row(indicator, window, f"toFloat64({column})", f"toFloat64({column})", "NULL")


def _percent(indicator: str, window: str, num: str, den: str) -> str:
    """A percentage: value = 100 * num / den, NULL when den = 0; numerator and denominator always published."""
    return _row(
        indicator, window, f"if({den} = 0, NULL, 100 * {num} / {den})", f"toFloat64({num})", f"toFloat64({den})"
    )


def _scope_keys(sites: str, orgs: str, site: str, org: str) -> str:
    """SQL array of the (scope_type, scope_code) keys a fact counts for: its site and organisation when those report
    the family, and always the system."""
    return (
        f"arrayConcat(if(has({sites}, ifNull({site}, '')), [('site', ifNull({site}, ''))], []),"
        f" if(has({orgs}, {org}), [('org', {org})], []), [('system', {{icb:String}})])"
    )


def _unpivot(scopes_param: str, aggregated: str, rows: list[str]) -> str:
    """Every configured scope (zero counts included), joined to the per-scope aggregates, one output row per
    indicator and window."""
    return f"""
        SELECT r.1 AS indicator, r.2 AS `window`, scope.1 AS scope_type, scope.2 AS scope_code,
               r.3 AS value, r.4 AS numerator, r.5 AS denominator
        FROM (
            SELECT s.scope AS scope, [{", ".join(rows)}] AS out_rows
            FROM (SELECT arrayJoin({{{scopes_param}:Array(Tuple(String, String))}}) AS scope) AS s
            LEFT JOIN ({aggregated}) AS a ON s.scope = a.scope
        )
        ARRAY JOIN out_rows AS r
        SETTINGS join_use_nulls = 0"""


# --- Emergency department --------------------------------------------------------------------------------------


def ed_facts_sql(store: Store) -> str:
    """One fact per attendance: earliest arrival (by occurred_at, event_id) with its department type, mode,
    organisation and site; earliest handover (ignored when it is before the arrival); earliest departure at or after
    the arrival, and its disposal (a departure timed before its own arrival is bad input: the worker dead-letters
    it); cancelled or never-arrived attendances drop out. Also used by the monthly returns."""
    events = _events(
        store,
        "raw_ed",
        "attendance_id, event_id, event_type, occurred_at, org_code, site_code, arrival_mode, department_type,"
        " disposal",
    )
    return f"""
        SELECT attendance_id,
               a.1 AS arrival, a.2 AS mode, a.3 AS org, a.4 AS site, a.5 AS dtype,
               multiIf(mode != 'ambulance', arrival,
                       has_handover AND handover >= arrival AND handover < arrival + INTERVAL 15 MINUTE, handover,
                       arrival + INTERVAL 15 MINUTE) AS clock_start,
               arrayFilter(d -> d.1 >= arrival, departures) AS valid_departures,
               notEmpty(valid_departures) AS departed,
               valid_departures[1].1 AS departure,
               valid_departures[1].3 AS disposal,
               departure <= clock_start + INTERVAL 4 HOUR AS within_4h,
               departure > arrival + INTERVAL 12 HOUR AS over_12h
        FROM (
            SELECT attendance_id,
                   countIf(event_type = 'ed.arrived') > 0 AS arrived,
                   countIf(event_type = 'ed.cancelled') > 0 AS cancelled,
                   argMinIf((occurred_at, arrival_mode, org_code, site_code, ifNull(department_type, '')),
                            (occurred_at, event_id), event_type = 'ed.arrived') AS a,
                   countIf(event_type = 'ed.handover') > 0 AS has_handover,
                   minIf(occurred_at, event_type = 'ed.handover') AS handover,
                   arraySort(groupArrayIf((occurred_at, event_id, ifNull(disposal, '')),
                                          event_type = 'ed.departed')) AS departures
            FROM ({events})
            GROUP BY attendance_id
            HAVING arrived AND NOT cancelled
        )"""


def _ed_sql(store: Store) -> str:
    """ED facts counted per scope: departures (4 h, 12 h) and arrivals per calendar window, for all department types
    and each type (suffix ``_type1`` …), then the live ones."""
    columns = []
    rows = []
    for window in CALENDAR_WINDOWS:
        for dtype in ("", *DEPARTMENT_TYPES):
            c = f"{window}{dtype}"
            of_type = f" AND dtype = '{dtype}'" if dtype else ""
            departed = f"departed AND {in_window(window, 'departure')}{of_type}"
            columns += [
                f"countIf({departed}) AS dep_{c}",
                f"countIf({departed} AND within_4h) AS in4_{c}",
                f"countIf({departed} AND over_12h) AS over12_{c}",
                f"countIf({in_window(window, 'arrival')}{of_type}) AS arr_{c}",
            ]
            suffix = f"_type{dtype}" if dtype else ""
            rows.append(_percent(f"ed_4h_pct{suffix}", window, f"a.in4_{c}", f"a.dep_{c}"))
            rows.append(_percent(f"ed_12h_pct{suffix}", window, f"a.over12_{c}", f"a.dep_{c}"))
            rows.append(_count(f"ed_attendances{suffix}", window, f"a.arr_{c}"))
    columns += [
        "countIf(NOT departed) AS present",
        f"countIf(NOT departed AND {_T} > clock_start + INTERVAL 4 HOUR) AS present_over_4h",
        f"countIf(NOT departed AND {_T} > arrival + INTERVAL 12 HOUR) AS present_over_12h",
    ]
    aggregated = f"""
        SELECT scope, {", ".join(columns)}
        FROM (
            SELECT *, {_BOUNDS},
                   arrayJoin({_scope_keys("{ed_sites:Array(String)}", "{ed_orgs:Array(String)}", "site", "org")}) AS scope
            FROM ({ed_facts_sql(store)})
        )
        GROUP BY scope"""
    rows.append(_count("ed_in_department", "live", "a.present"))
    rows.append(_count("ed_over_4h_now", "live", "a.present_over_4h"))
    rows.append(_count("ed_over_12h_now", "live", "a.present_over_12h"))
    rows.append(_percent("ed_over_12h_now_pct", "live", "a.present_over_12h", "a.present"))
    return _unpivot("ed_scopes", aggregated, rows)


# --- Ambulance -------------------------------------------------------------------------------------------------


def _ambulance_events(store: Store) -> str:
    return _events(
        store,
        "raw_ambulance",
        "incident_id, event_id, event_type, occurred_at, org_code, site_code, category, transport_capable, conveyed",
    )


def responses_sql(store: Store) -> str:
    """One response per incident: clock start = earliest clock_started; stop = first transport-capable arrival at or
    after it, else (latest closure not conveyed) the first arrival of any kind; category in force at the stop.
    Columns: incident_id, start, org (the clock start's), stop, category, seconds, minutes. Also used by the monthly
    returns."""
    incidents = f"""
        SELECT incident_id,
               argMinIf((occurred_at, org_code), (occurred_at, event_id),
                        event_type = 'ambulance.clock_started') AS cs,
               arraySort(x -> (x.1, x.2), groupArrayIf((occurred_at, event_id, ifNull(transport_capable, false)),
                         event_type = 'ambulance.resource_arrived')) AS arrivals,
               countIf(event_type = 'ambulance.incident_closed') > 0 AS closed,
               argMaxIf(ifNull(conveyed, true), (occurred_at, event_id),
                        event_type = 'ambulance.incident_closed') AS last_closure_conveyed,
               arraySort(x -> (x.1, x.2), groupArrayIf((occurred_at, event_id, ifNull(category, 0)),
                         event_type IN ('ambulance.clock_started', 'ambulance.recategorised'))) AS categories
        FROM ({_ambulance_events(store)})
        GROUP BY incident_id
        HAVING countIf(event_type = 'ambulance.clock_started') > 0"""
    return f"""
        SELECT incident_id, start, org, assumeNotNull(stop_or_null) AS stop,
               arrayLast(x -> x.1 <= stop, categories).3 AS category,
               ({_ms("stop")} - {_ms("start")}) / 1000 AS seconds,
               ({_ms("stop")} - {_ms("start")}) / 60000 AS minutes
        FROM (
            SELECT incident_id, cs.1 AS start, cs.2 AS org, categories,
                   arrayFilter(x -> x.1 >= start, arrivals) AS after_start,
                   arrayFirstIndex(x -> x.3, after_start) AS capable,
                   multiIf(capable > 0, after_start[capable].1,
                           closed AND NOT last_closure_conveyed AND length(after_start) > 0, after_start[1].1,
                           NULL) AS stop_or_null
            FROM ({incidents})
        )
        WHERE stop_or_null IS NOT NULL"""


def _ambulance_sql(store: Store) -> str:
    """Mean and nearest-rank p90 in minutes per category, scope and window (by stop time)."""
    windows = ("today", "last_60m", "mtd", "month")
    per_window = ",\n".join(
        f"countIf({in_window(w, 'stop')}) AS n_{w}, sumIf(minutes, {in_window(w, 'stop')}) AS total_{w},"
        f" arraySort(groupArrayIf(minutes, {in_window(w, 'stop')})) AS sorted_{w}"
        for w in windows
    )
    aggregated = f"""
        SELECT key, category, {per_window}
        FROM (
            SELECT *, {_BOUNDS}, arrayJoin({_scope_keys("[]", "{amb_orgs:Array(String)}", "NULL", "org")}) AS key
            FROM ({responses_sql(store)})
        )
        GROUP BY key, category"""
    rows = []
    for w in windows:
        n, total, ordered = f"a.n_{w}", f"a.total_{w}", f"a.sorted_{w}"
        rows.append(_row("mean", w, f"if({n} = 0, NULL, {total} / {n})", f"toFloat64({total})", f"toFloat64({n})"))
        # nearest rank: the ceil(0.9 n)-th smallest, with integer arithmetic (0.9 * 10 is not exactly 9 in floats)
        rows.append(_row("p90", w, f"if({n} = 0, NULL, {ordered}[intDiv(9 * {n} + 9, 10)])", "NULL", f"toFloat64({n})"))
    return f"""
        SELECT concat('amb_cat', toString(category), '_', r.1, '_min') AS indicator, r.2 AS `window`,
               key.1 AS scope_type, key.2 AS scope_code,
               r.3 AS value, r.4 AS numerator, r.5 AS denominator
        FROM (
            SELECT s.key AS key, s.category AS category, [{", ".join(rows)}] AS out_rows
            FROM (
                SELECT arrayJoin({{amb_scopes:Array(Tuple(String, String))}}) AS key,
                       arrayJoin(CAST([1, 2, 3, 4] AS Array(UInt8))) AS category
            ) AS s
            LEFT JOIN ({aggregated}) AS a ON s.key = a.key AND s.category = a.category
        )
        ARRAY JOIN out_rows AS r
        SETTINGS join_use_nulls = 0"""


def _handover_sql(store: Store) -> str:
    """Hospital handovers per receiving site: arrival at hospital = the earliest arrived_at_hospital (its site is the
    receiving site), handover = the earliest handover_completed at or after it (any incident, with or without a
    response clock). Counted for the site (when it has an ED), the site's organisation (not the ambulance service's)
    and the system, by handover time; waiting = at hospital and not handed over as of T."""
    site_org = "{site_orgs:Array(String)}[indexOf({sites:Array(String)}, site)]"
    incidents = f"""
        SELECT incident_id, ah.1 AS at_hospital, assumeNotNull(ah.2) AS site,
               arrayFirstIndex(x -> x >= at_hospital, handovers) AS h,
               h > 0 AS handed_over,
               handovers[h] AS handover,
               ({_ms("handover")} - {_ms("at_hospital")}) / 1000 AS seconds
        FROM (
            SELECT incident_id,
                   argMinIf((occurred_at, site_code), (occurred_at, event_id),
                            event_type = 'ambulance.arrived_at_hospital') AS ah,
                   arraySort(groupArrayIf(occurred_at, event_type = 'ambulance.handover_completed')) AS handovers
            FROM ({_ambulance_events(store)})
            GROUP BY incident_id
            HAVING countIf(event_type = 'ambulance.arrived_at_hospital') > 0
        )"""
    columns = []
    rows = []
    for w in ("today", "last_60m", "mtd", "month"):
        done = f"handed_over AND {in_window(w, 'handover')}"
        columns += [
            f"countIf({done}) AS n_{w}",
            f"sumIf(seconds / 60, {done}) AS total_{w}",
            f"sumIf(greatest(0, seconds - 900), {done}) AS lost_{w}",
            *(f"countIf({done} AND seconds > {60 * m}) AS over{m}_{w}" for m in HANDOVER_THRESHOLDS_MIN),
        ]
        n = f"toFloat64(a.n_{w})"
        rows.append(
            _row("amb_handover_mean_min", w, f"if(a.n_{w} = 0, NULL, a.total_{w} / a.n_{w})", f"a.total_{w}", n)
        )
        for m in HANDOVER_THRESHOLDS_MIN:
            rows.append(_row(f"amb_handover_over_{m}", w, f"toFloat64(a.over{m}_{w})", f"toFloat64(a.over{m}_{w})", n))
        rows.append(_row("amb_handover_hours_lost", w, f"a.lost_{w} / 3600", f"a.lost_{w} / 3600", n))
    waited = f"(toUnixTimestamp64Micro({_T}) - toUnixTimestamp64Micro(at_hospital)) / 60000000"  # T has microseconds
    columns += ["countIf(NOT handed_over) AS waiting", f"maxIf({waited}, NOT handed_over) AS longest"]
    rows.append(_count("amb_waiting_handover_now", "live", "a.waiting"))
    longest = "if(a.waiting = 0, NULL, a.longest)"
    rows.append(_row("amb_waiting_handover_longest_min", "live", longest, longest, "NULL"))
    aggregated = f"""
        SELECT scope, {", ".join(columns)}
        FROM (
            SELECT *, {_BOUNDS},
                   arrayJoin({_scope_keys("{ed_sites:Array(String)}", "{ed_orgs:Array(String)}", "site", site_org)}) AS scope
            FROM ({incidents})
        )
        GROUP BY scope"""
    return _unpivot("ed_scopes", aggregated, rows)


# --- Beds and discharge ----------------------------------------------------------------------------------------

# The state of one spell while its events are folded in (occurred_at, event_id) order (docs/definitions.md).
_SPELL_STATE = (
    "Tuple(live UInt8, org String, site Nullable(String), has_bed UInt8,"
    " bed_cat String, bed_esc Bool, bed_site Nullable(String),"
    " transfers Array(Tuple(String, Bool, Nullable(String))), discharged UInt8, pathway Nullable(UInt8),"
    " drd Nullable(Date), drd_set_at Nullable(DateTime64(3, 'UTC')),"
    " referrals Array(Tuple(String, DateTime64(3, 'UTC'), UInt8)), plans Array(Tuple(String, DateTime64(3, 'UTC'))),"
    " admitted_at DateTime64(3, 'UTC'), discharged_at DateTime64(3, 'UTC'), drd_at_discharge Nullable(Date))"
)
_SPELL_INIT = f"CAST((0, '', NULL, 0, '', false, NULL, [], 0, NULL, NULL, NULL, [], [], 0, 0, NULL) AS {_SPELL_STATE})"
# x = (occurred_at, event_id, event_type, org_code, site_code, bed_category, escalation_bed, pathway, drd, referral_id)
# referrals: (referral id, made at, pathway) of each referral id's first referral_made; plans: (referral id, plan at)
# of the first plan_in_place of a referral already made. drd_at_discharge: the DRD in force when adt.discharged was
# applied (cleared by adt.discharge_cancelled).
_SPELL_STEP = f"""(s, x) -> CAST((
    multiIf(x.3 = 'adt.admitted', 1, x.3 = 'adt.admission_cancelled', 0, s.live),
    if(x.3 = 'adt.admitted', x.4, s.org),
    if(x.3 = 'adt.admitted', x.5, s.site),
    if(x.3 = 'adt.admitted', 1, s.has_bed),
    multiIf(x.3 = 'adt.admitted', assumeNotNull(x.6),
            x.3 = 'adt.updated' AND s.has_bed = 1, ifNull(x.6, s.bed_cat), s.bed_cat),
    multiIf(x.3 = 'adt.admitted', assumeNotNull(x.7),
            x.3 = 'adt.updated' AND s.has_bed = 1, ifNull(x.7, s.bed_esc), s.bed_esc),
    multiIf(x.3 = 'adt.admitted', x.5,
            x.3 = 'adt.updated' AND s.has_bed = 1, ifNull(x.5, s.bed_site), s.bed_site),
    multiIf(x.3 = 'adt.admitted', CAST([], 'Array(Tuple(String, Bool, Nullable(String)))'),
            x.3 = 'adt.transferred',
            arrayPushBack(s.transfers, (assumeNotNull(x.6), assumeNotNull(x.7), ifNull(x.5, s.site))),
            x.3 = 'adt.transfer_cancelled', arrayPopBack(s.transfers),
            s.transfers),
    multiIf(x.3 = 'adt.discharged', 1, x.3 IN ('adt.admitted', 'adt.discharge_cancelled'), 0, s.discharged),
    multiIf(x.3 IN ('adt.discharged', 'discharge.ready_date_set'), ifNull(x.8, s.pathway),
            x.3 = 'discharge.pathway_assigned', x.8, s.pathway),
    multiIf(x.3 = 'discharge.ready_date_set', x.9, x.3 = 'discharge.ready_date_cleared', NULL, s.drd),
    multiIf(x.3 = 'discharge.ready_date_set', x.1, x.3 = 'discharge.ready_date_cleared', NULL, s.drd_set_at),
    if(x.3 = 'discharge.referral_made' AND NOT has(arrayMap(r -> r.1, s.referrals), assumeNotNull(x.10)),
       arrayPushBack(s.referrals, (assumeNotNull(x.10), x.1, ifNull(x.8, 0))),
       s.referrals),
    if(x.3 = 'discharge.plan_in_place' AND has(arrayMap(r -> r.1, s.referrals), assumeNotNull(x.10))
         AND NOT has(arrayMap(p -> p.1, s.plans), assumeNotNull(x.10)),
       arrayPushBack(s.plans, (assumeNotNull(x.10), x.1)), s.plans),
    if(x.3 = 'adt.admitted', x.1, s.admitted_at),
    if(x.3 = 'adt.discharged', x.1, s.discharged_at),
    multiIf(x.3 = 'adt.discharged', s.drd, x.3 = 'adt.discharge_cancelled', NULL, s.drd_at_discharge)
  ) AS {_SPELL_STATE})"""
PLAN_WITHIN = "INTERVAL 48 HOUR"


def spell_facts_sql(store: Store) -> str:
    """Fold each spell's ADT and discharge events (one dedup across both topics, ordered by occurred_at, event_id)
    into its state as of T: one row per spell that exists (admitted, not cancelled), open or discharged, with its
    current bed, scope, NCTR flags, DRD delay at discharge and pathway-2 referrals. Also used by the monthly
    returns."""
    common = (
        "spell_id, event_id, event_type, occurred_at, org_code, site_code, ingested_at, kafka_partition, kafka_offset"
    )
    adt = _events(
        store,
        "raw_adt",
        f"{common}, bed_category, escalation_bed, pathway,"
        " CAST(NULL, 'Nullable(Date)') AS drd, CAST(NULL, 'Nullable(String)') AS referral_id",
    )
    discharge = _events(
        store,
        "raw_discharge",
        f"{common}, CAST(NULL, 'LowCardinality(Nullable(String))') AS bed_category,"
        " CAST(NULL, 'Nullable(Bool)') AS escalation_bed, pathway, discharge_ready_date AS drd, referral_id",
    )
    spells = f"""
        SELECT spell_id,
               arrayFold({_SPELL_STEP},
                         arraySort(x -> (x.1, x.2), groupArray((occurred_at, event_id, event_type, org_code, site_code,
                                                                bed_category, escalation_bed, pathway, drd, referral_id))),
                         {_SPELL_INIT}) AS st
        FROM (
            SELECT * FROM ({adt} UNION ALL {discharge})
            ORDER BY event_id, ingested_at, kafka_partition, kafka_offset
            LIMIT 1 BY event_id
        )
        GROUP BY spell_id"""
    return f"""
        SELECT spell_id,
               if(length(st.transfers) > 0, st.transfers[-1], (st.bed_cat, st.bed_esc, st.bed_site)) AS bed,
               st.org AS org, ifNull(bed.3, st.site) AS site,
               bed.1 AS bed_category,
               bed.2 AS escalation,
               st.discharged = 0 AS open,
               open AND bed_category = 'adult_ga' AS occupied,
               st.drd IS NOT NULL AND st.drd <= {_LOCAL_TODAY} AS nctr,
               nctr AND st.drd <= subtractDays({_LOCAL_TODAY}, 21) AS nctr_21plus,
               st.drd_set_at IS NOT NULL
                 AND arrayExists(r -> r.2 >= st.drd_set_at AND has(arrayMap(p -> p.1, st.plans), r.1), st.referrals)
                 AS plan_since_drd,
               st.pathway AS pathway,
               nctr AND ifNull(pathway != 0, true) AND NOT plan_since_drd AS awaiting,
               st.admitted_at AS admitted_at,
               st.discharged_at AS discharged_at,
               st.drd_at_discharge AS drd_at_discharge,
               NOT open AND bed_category = 'adult_ga'
                 AND toDate(discharged_at, 'Europe/London') > toDate(admitted_at, 'Europe/London') AS counts_for_drd,
               if(drd_at_discharge IS NULL, 0,
                  greatest(0, dateDiff('day', assumeNotNull(drd_at_discharge), toDate(discharged_at, 'Europe/London'))))
                 AS delay_days,
               arrayMap(r -> (r.2, arrayExists(p -> p.1 = r.1, st.plans), arrayFirst(p -> p.1 = r.1, st.plans).2),
                        arrayFilter(r -> r.3 = 2, st.referrals)) AS p2_referrals
        FROM ({spells})
        WHERE st.live = 1"""


def _ratio(indicator: str, window: str, num: str, den: str) -> str:
    """A mean as a ratio of sums: value = num / den (NULL when den = 0); numerator and denominator published."""
    return _row(indicator, window, f"if({den} = 0, NULL, {num} / {den})", f"toFloat64({num})", f"toFloat64({den})")


def _beds_sql(store: Store) -> str:
    """Per scope: open adult G&A spells, escalation beds, occupancy against the configured bed base, NCTR and MOFD
    awaiting a plan (live); discharges against their ready date (today, mtd, month by discharge time); pathway-2
    referrals and their plans."""
    columns = [
        "countIf(occupied) AS occupied_n",
        "countIf(occupied AND escalation) AS escalation_n",
        "countIf(occupied AND nctr) AS nctr_n",
        "countIf(occupied AND nctr_21plus) AS nctr_21plus_n",
        "countIf(occupied AND awaiting) AS awaiting_n",
        "countIf(occupied AND awaiting AND pathway = 1) AS awaiting_p1",
        "countIf(occupied AND awaiting AND pathway = 2) AS awaiting_p2",
        "countIf(occupied AND awaiting AND pathway = 3) AS awaiting_p3",
        "countIf(occupied AND awaiting AND pathway IS NULL) AS awaiting_unknown",
        f"sumIf(arrayCount(r -> NOT r.2 AND {_T} > r.1 + {PLAN_WITHIN}, p2_referrals), open) AS p2_overdue",
    ]
    # configured adult G&A beds of the scope: its site, its organisation's sites, or every site (system)
    base = (
        "arraySum(arrayMap(x -> x.3, arrayFilter(x -> multiIf(tupleElement(s.scope, 1) = 'site', x.1 = tupleElement(s.scope, 2),"
        " tupleElement(s.scope, 1) = 'org', x.2 = tupleElement(s.scope, 2), true),"
        " {site_beds:Array(Tuple(String, String, UInt32))})))"
    )
    rows = [
        _count("ga_beds_occupied", "live", "a.occupied_n"),
        _count("ga_escalation_beds_occupied", "live", "a.escalation_n"),
        _percent("ga_escalation_beds_pct", "live", "a.escalation_n", "a.occupied_n"),
        _percent("ga_occupancy_pct", "live", "a.occupied_n", f"({base} + a.escalation_n)"),
        _count("nctr_count", "live", "a.nctr_n"),
        _percent("nctr_pct", "live", "a.nctr_n", "a.occupied_n"),
        _percent("ctr_met_pct", "live", "(a.occupied_n - a.nctr_n)", "a.occupied_n"),
        _count("nctr_21plus_days", "live", "a.nctr_21plus_n"),
        _count("mofd_awaiting_plan", "live", "a.awaiting_n"),
        _count("mofd_awaiting_plan_p1", "live", "a.awaiting_p1"),
        _count("mofd_awaiting_plan_p2", "live", "a.awaiting_p2"),
        _count("mofd_awaiting_plan_p3", "live", "a.awaiting_p3"),
        _count("mofd_awaiting_plan_pathway_unknown", "live", "a.awaiting_unknown"),
        _count("p2_referrals_over_48h_now", "live", "a.p2_overdue"),
    ]
    for w in CALENDAR_WINDOWS:
        counted = f"counts_for_drd AND {in_window(w, 'discharged_at')}"
        p0 = f"{counted} AND ifNull(pathway = 0, false)"
        columns += [
            f"countIf({counted}) AS drd_n_{w}",
            f"countIf({counted} AND delay_days = 0) AS drd_on_{w}",
            f"countIf({p0}) AS p0_n_{w}",
            f"countIf({p0} AND delay_days = 0) AS p0_on_{w}",
            f"sumIf(delay_days, {counted}) AS delay_total_{w}",
            f"countIf({counted} AND delay_days > 0) AS delayed_{w}",
        ]
        rows += [
            _percent("discharged_on_drd_pct", w, f"a.drd_on_{w}", f"a.drd_n_{w}"),
            _percent("discharged_on_drd_pct_p0", w, f"a.p0_on_{w}", f"a.p0_n_{w}"),
            _ratio("drd_delay_days_mean", w, f"a.delay_total_{w}", f"a.delayed_{w}"),
            _ratio("discharge_delay_days_mean", w, f"a.delay_total_{w}", f"a.drd_n_{w}"),
        ]
        if w != "today":
            due = f"{in_window(w, 'r.1')} AND r.1 + {PLAN_WITHIN} <= {_T}"
            columns += [
                f"sum(arrayCount(r -> {due}, p2_referrals)) AS p2_due_{w}",
                f"sum(arrayCount(r -> {due} AND r.2 AND r.3 <= r.1 + {PLAN_WITHIN}, p2_referrals)) AS p2_ok_{w}",
            ]
            rows.append(_percent("p2_plan_48h_pct", w, f"a.p2_ok_{w}", f"a.p2_due_{w}"))
    aggregated = f"""
        SELECT scope, {", ".join(columns)}
        FROM (
            SELECT *, {_BOUNDS},
                   arrayJoin({_scope_keys("{bed_sites:Array(String)}", "{bed_orgs:Array(String)}", "site", "org")}) AS scope
            FROM ({spell_facts_sql(store)})
        )
        GROUP BY scope"""
    return _unpivot("bed_scopes", aggregated, rows)


# --- Scopes and entry point ------------------------------------------------------------------------------------


def scope_parameters(icb: Icb) -> dict[str, Any]:
    """Query parameters naming the scopes of each family (site -> organisation -> system), from the ICB file only."""
    ed_sites = [s.code for o in icb.organisations for s in o.sites if s.ed_department_types]
    bed_sites = [s.code for o in icb.organisations for s in o.sites if s.adult_ga_beds > 0]
    ed_orgs = [o.code for o in icb.organisations if any(s.code in ed_sites for s in o.sites)]
    bed_orgs = [o.code for o in icb.organisations if any(s.code in bed_sites for s in o.sites)]
    amb_orgs = [o.code for o in icb.organisations if o.kind == "ambulance"]
    system = [("system", icb.code)]
    return {
        "icb": icb.code,
        "orgs": [o.code for o in icb.organisations],
        "sites": [s.code for o in icb.organisations for s in o.sites],
        "ed_sites": ed_sites,
        "ed_orgs": ed_orgs,
        "ed_scopes": [*(("site", s) for s in ed_sites), *(("org", o) for o in ed_orgs), *system],
        "bed_sites": bed_sites,
        "bed_orgs": bed_orgs,
        "bed_scopes": [*(("site", s) for s in bed_sites), *(("org", o) for o in bed_orgs), *system],
        "site_orgs": [o.code for o in icb.organisations for s in o.sites],
        "site_beds": [(s.code, o.code, s.adult_ga_beds) for o in icb.organisations for s in o.sites],
        "amb_orgs": amb_orgs,
        "amb_scopes": [*(("org", o) for o in amb_orgs), *system],
    }


def recompute(store: Store, at: dt.datetime, icb: Icb) -> list[dict[str, Any]]:
    """Every covered indicator as of ``at``, by SQL alone over the raw tables (see the module docstring).

    Rows: indicator, window, scope_type, scope_code, value, numerator, denominator; sorted by those keys.
    """
    if at.tzinfo is None:
        raise ValueError("recompute needs an aware evaluation time (UTC or with an offset)")
    params = {"at": at.astimezone(dt.UTC), **scope_parameters(icb)}
    out: list[dict[str, Any]] = []
    for sql in (_ed_sql(store), _ambulance_sql(store), _handover_sql(store), _beds_sql(store)):
        out.extend(dict(zip(ROW_KEYS, row, strict=True)) for row in store.query_rows(sql, params))
    out.sort(key=lambda r: (r["indicator"], r["window"], r["scope_type"], r["scope_code"]))
    return out

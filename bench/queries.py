"""Figure 5: analysts' queries over a year of England-scale history on chDB.

History is generated inside ClickHouse (``INSERT … SELECT`` from ``numbers()`` with hash-derived fields and
``randNormal`` durations; far faster than Python) straight into the raw tables the platform writes
(``clickhouse/migrations/001_raw_events.sql``), over one year (April 2025 – March 2026), in England's proportions:

- ED: attendances at ~120 trusts × up to 3 sites, types 1/2/3, arrived + departed (40% of events);
- ambulance: incidents of 10 services, clock started (category 1–4) + resource arrived + at hospital + handover (36%);
- ADT: spells admitted + discharged (16%); discharge: the ready date of each spell (8%).

The ``payload`` column (the canonical JSON, not read by any of these queries) is left empty: in a columnar store it
costs disk, not query time. Events are one copy each (no redeliveries), so the queries read without ``FINAL``;
they fold each entity's events with ``min``/``any``, which duplicates would not change.

The three queries (each run ``--repeat`` times; the median is the figure):

1. monthly ED 4-hour performance per organisation and department type;
2. Category 2 mean and 90th centile (nearest rank) response per ambulance service per month;
3. discharge-delay buckets (discharge date − discharge ready date) per organisation.

Then the same three questions are timed on the schema's per-entity views (``clickhouse/migrations/005_entity_tables.sql``,
docs/analysts.md), first as the store holds them, then after ``OPTIMIZE TABLE ... FINAL`` of their state tables
(``--no-optimize`` skips that, ``--no-entity`` skips both), and their answers are compared with the raw queries'.
Opening an older store applies migration 005, whose backfill folds the events already stored (timed as
``migrate_seconds``); a fresh store is generated with the materialized views attached.

Last, the analyst marts (``clickhouse/migrations/006_analyst_marts.sql``: refreshable materialized views that copy
the three views into plain ``MergeTree`` tables ordered by organisation and time). The bench waits for the refresh
every process starts with, times one full refresh of the three marts (``clickhouse.migrate.refresh_marts``, one
after the other), stops their schedules so that no refresh competes with the timings, and times the same three
questions on the marts, comparing their answers with the views' (``--no-marts`` skips this).

Run: ``python -m bench.queries [--events 20000000] [--store var/bench/history]``; ``--events 100000000`` is the
issue's size (~10 min of generation on 2 cores, ~5 GB of disk). The store is kept and reused when it already holds
the requested number of events.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from bench.common import Figure, Rate, Result, at_least_one

YEAR_START = 1743465600  # 2025-04-01 00:00:00 UTC
YEAR_S = 365 * 86400
CHUNK = 5_000_000  # entities per INSERT

ED_SQL = """
INSERT INTO scc.raw_ed (event_id, event_type, occurred_at, source, org_code, site_code, schema_version,
    attendance_id, department_type, arrival_mode, disposal, payload, kafka_partition, kafka_offset)
SELECT concat('ed-', toString(number), '-', toString(j)), if(j = 0, 'ed.arrived', 'ed.departed'),
    if(j = 0, arr, arr + toIntervalSecond(dur)), 'BENCH', org, concat(org, 'A', toString(cityHash64(number, 2) % 3)),
    1, concat('A', toString(number)), if(j = 0, dtype, NULL), if(j = 0, 'walk_in', NULL),
    if(j = 1, 'discharged', NULL), '', -1, -1
FROM (
    SELECT number,
        toDateTime64({start:UInt32} + cityHash64(number) % {span:UInt32}, 3, 'UTC') AS arr,
        concat('R', toString(100 + cityHash64(number, 1) % 120)) AS org,
        ['1', '1', '1', '2', '3', '3'][1 + cityHash64(number, 3) % 6] AS dtype,
        least(172800, toUInt32(exp(9.0 + 0.7 * randNormal(0, 1)))) AS dur
    FROM numbers({first:UInt64}, {count:UInt64})
)
ARRAY JOIN [0, 1] AS j
"""

AMBULANCE_SQL = """
INSERT INTO scc.raw_ambulance (event_id, event_type, occurred_at, source, org_code, site_code, schema_version,
    incident_id, category, resource_id, transport_capable, payload, kafka_partition, kafka_offset)
SELECT concat('am-', toString(number), '-', toString(j)),
    ['ambulance.clock_started', 'ambulance.resource_arrived', 'ambulance.arrived_at_hospital',
     'ambulance.handover_completed'][j + 1],
    start + toIntervalSecond([0, resp, resp + 2400, resp + 2400 + handover][j + 1]), 'BENCH', org,
    if(j >= 2, concat('R', toString(100 + cityHash64(number, 4) % 120), 'A0'), NULL), 1, concat('I', toString(number)),
    if(j = 0, cat, NULL), if(j = 1, 'V1', NULL), if(j = 1, true, NULL), '', -1, -1
FROM (
    SELECT number,
        toDateTime64({start:UInt32} + cityHash64(number) % {span:UInt32}, 3, 'UTC') AS start,
        concat('AMB', toString(cityHash64(number, 1) % 10)) AS org,
        toUInt8([1, 2, 2, 2, 2, 3, 3, 4][1 + cityHash64(number, 3) % 8]) AS cat,
        least(36000, toUInt32(exp(7.0 + 0.6 * randNormal(0, 1)) * cat)) AS resp,
        least(36000, toUInt32(exp(7.2 + 0.6 * randNormal(0, 1)))) AS handover
    FROM numbers({first:UInt64}, {count:UInt64})
)
ARRAY JOIN [0, 1, 2, 3] AS j
"""

ADT_SQL = """
INSERT INTO scc.raw_adt (event_id, event_type, occurred_at, source, org_code, site_code, schema_version, spell_id,
    ward_code, bed_category, escalation_bed, admission_method, payload, kafka_partition, kafka_offset)
SELECT concat('ad-', toString(number), '-', toString(j)), if(j = 0, 'adt.admitted', 'adt.discharged'),
    if(j = 0, adm, adm + toIntervalSecond(los)), 'BENCH', org, concat(org, 'A0'), 1, concat('S', toString(number)),
    if(j = 0, 'W1', NULL), if(j = 0, 'adult_ga', NULL), if(j = 0, false, NULL), if(j = 0, 'emergency', NULL),
    '', -1, -1
FROM (
    SELECT number,
        toDateTime64({start:UInt32} + cityHash64(number) % {span:UInt32}, 3, 'UTC') AS adm,
        concat('R', toString(100 + cityHash64(number, 1) % 120)) AS org,
        toUInt32(exp(11.8 + 0.9 * randNormal(0, 1))) AS los
    FROM numbers({first:UInt64}, {count:UInt64})
)
ARRAY JOIN [0, 1] AS j
"""

DISCHARGE_SQL = """
INSERT INTO scc.raw_discharge (event_id, event_type, occurred_at, source, org_code, site_code, schema_version,
    spell_id, discharge_ready_date, pathway, payload, kafka_partition, kafka_offset)
SELECT concat('dr-', toString(number)), 'discharge.ready_date_set', adm + toIntervalSecond(toUInt32(los * 0.6)),
    'BENCH', org, concat(org, 'A0'), 1, concat('S', toString(number)),
    toDate(adm + toIntervalSecond(los), 'Europe/London') - toIntervalDay(delay), 0, '', -1, -1
FROM (
    SELECT number,
        toDateTime64({start:UInt32} + cityHash64(number) % {span:UInt32}, 3, 'UTC') AS adm,
        concat('R', toString(100 + cityHash64(number, 1) % 120)) AS org,
        toUInt32(exp(11.8 + 0.9 * randNormal(0, 1))) AS los,
        toUInt16(if(cityHash64(number, 5) % 10 < 6, 0, least(60, toUInt32(exp(1.2 + randNormal(0, 1)))))) AS delay
    FROM numbers({first:UInt64}, {count:UInt64})
)
"""

QUERIES = {
    "ED 4-hour performance per org, type and month": """
SELECT org_code, department_type, toStartOfMonth(toDateTime(arrived_s), 'Europe/London') AS month,
    count() AS attendances, round(100 * countIf(departed_s - arrived_s <= 14400) / count(), 1) AS within_4h_pct
FROM (
    SELECT attendance_id, any(org_code) AS org_code, anyIf(department_type, event_type = 'ed.arrived')
        AS department_type, minIf(toUnixTimestamp(occurred_at), event_type = 'ed.arrived') AS arrived_s,
        minIf(toUnixTimestamp(occurred_at), event_type = 'ed.departed') AS departed_s
    FROM scc.raw_ed
    WHERE event_type IN ('ed.arrived', 'ed.departed')
    GROUP BY attendance_id
    HAVING countIf(event_type = 'ed.arrived') > 0 AND countIf(event_type = 'ed.departed') > 0
)
GROUP BY org_code, department_type, month ORDER BY org_code, department_type, month
""",
    "Category 2 mean and p90 per ambulance service and month": """
SELECT org_code, toStartOfMonth(toDateTime(started), 'Europe/London') AS month, count() AS incidents,
    round(avg(stopped - started) / 60, 1) AS mean_min,
    round(arraySort(groupArray(stopped - started))[intDiv(9 * count() + 9, 10)] / 60, 1) AS p90_min
FROM (
    SELECT incident_id, any(org_code) AS org_code, anyIf(category, event_type = 'ambulance.clock_started') AS category,
        minIf(toUnixTimestamp(occurred_at), event_type = 'ambulance.clock_started') AS started,
        minIf(toUnixTimestamp(occurred_at), event_type = 'ambulance.resource_arrived') AS stopped
    FROM scc.raw_ambulance
    WHERE event_type IN ('ambulance.clock_started', 'ambulance.resource_arrived')
    GROUP BY incident_id
    HAVING countIf(event_type = 'ambulance.resource_arrived') > 0
)
WHERE category = 2
GROUP BY org_code, month ORDER BY org_code, month
""",
    "Discharge-delay buckets per org": """
SELECT d.org_code, multiIf(delay <= 0, '0 days', delay <= 2, '1-2 days', delay <= 6, '3-6 days',
    delay <= 13, '7-13 days', delay <= 20, '14-20 days', '21+ days') AS bucket, count() AS spells
FROM (
    SELECT spell_id, any(org_code) AS org_code,
        toDate(min(occurred_at), 'Europe/London') AS discharged
    FROM scc.raw_adt WHERE event_type = 'adt.discharged' GROUP BY spell_id
) AS d
INNER JOIN (
    SELECT spell_id, argMax(discharge_ready_date, occurred_at) AS drd
    FROM scc.raw_discharge WHERE event_type = 'discharge.ready_date_set' GROUP BY spell_id
) AS r USING (spell_id)
ARRAY JOIN [dateDiff('day', r.drd, d.discharged)] AS delay
GROUP BY d.org_code, bucket ORDER BY d.org_code, bucket
""",
}


# The same three questions on the per-entity views of clickhouse/migrations/005_entity_tables.sql (docs/analysts.md).
# {ed}, {responses} and {spells} name the row sources: the schema's views here; tests/unit/test_entity_tables.py also
# runs them over clickhouse/recompute.py's fact queries on the raw tables and checks the numbers are the same.
ENTITY_QUERIES = {
    "ED 4-hour performance per org, type and month": """
SELECT org AS org_code, dtype AS department_type, toStartOfMonth(arrival, 'Europe/London') AS month,
    count() AS attendances, round(100 * countIf(within_4h) / count(), 1) AS within_4h_pct
FROM {ed} WHERE departed
GROUP BY org_code, department_type, month ORDER BY org_code, department_type, month
""",
    "Category 2 mean and p90 per ambulance service and month": """
SELECT org AS org_code, toStartOfMonth(start, 'Europe/London') AS month, count() AS incidents,
    round(avg(seconds) / 60, 1) AS mean_min,
    round(arraySort(groupArray(seconds))[intDiv(9 * count() + 9, 10)] / 60, 1) AS p90_min
FROM {responses} WHERE category = 2
GROUP BY org_code, month ORDER BY org_code, month
""",
    "Discharge-delay buckets per org": """
SELECT org AS org_code, multiIf(delay <= 0, '0 days', delay <= 2, '1-2 days', delay <= 6, '3-6 days',
    delay <= 13, '7-13 days', delay <= 20, '14-20 days', '21+ days') AS bucket, count() AS spells
FROM (
    SELECT org, dateDiff('day', assumeNotNull(drd_at_discharge), toDate(discharged_at, 'Europe/London')) AS delay
    FROM {spells} WHERE NOT open AND drd_at_discharge IS NOT NULL
)
GROUP BY org_code, bucket ORDER BY org_code, bucket
""",
}
SCHEMA_SOURCES = {"ed": "scc.ed_attendances", "responses": "scc.ambulance_responses", "spells": "scc.spells"}
MART_SOURCES = {
    "ed": "scc.ed_attendances_mart",
    "responses": "scc.ambulance_responses_mart",
    "spells": "scc.spells_mart",
}
STATE_TABLES = ("ed_attendance_state", "ambulance_incident_state", "spell_state")
MART_TABLES = ("ed_attendances_mart", "ambulance_responses_mart", "spells_mart")
REFRESH_GOAL_S = 360.0  # 10% of the marts' hourly refresh period: the share of the machine the schedule may take


def entity_queries(sources: dict[str, str] = SCHEMA_SOURCES) -> dict[str, str]:
    """The analysts' queries over the given per-entity row sources (table names or parenthesised subqueries)."""
    return {name: sql.format(**sources) for name, sql in ENTITY_QUERIES.items()}


PROPOSED_LEFTOVERS = ("bench_ed_attendances", "bench_incidents", "bench_discharges")


def _time(store, queries: dict[str, str], repeat: int, label: str) -> tuple[dict, dict, dict]:  # noqa: ANN001
    timings: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    answers: dict[str, list] = {}
    for name, sql in queries.items():
        timings[name] = []
        for _ in range(repeat):
            t = time.perf_counter()
            result = store.query_rows(sql)
            timings[name].append(time.perf_counter() - t)
        rows[name] = len(result)
        answers[name] = result
        print(
            f"  [{label}] {name}: median {statistics.median(timings[name]):.3f}s over {repeat} runs, {len(result)} rows"
        )
    return timings, rows, answers


def _generate(store, events: int) -> float:  # noqa: ANN001
    """Fill the raw tables with ``events`` events; return the seconds it took."""
    plan = [
        ("raw_ed", ED_SQL, int(events * 0.40 / 2), 2),
        ("raw_ambulance", AMBULANCE_SQL, int(events * 0.36 / 4), 4),
        ("raw_adt", ADT_SQL, int(events * 0.16 / 2), 2),
        ("raw_discharge", DISCHARGE_SQL, int(events * 0.08), 1),
    ]
    rate = Rate("generated events", events, every=0)
    done = 0
    t = time.perf_counter()
    for _table, sql, entities, per in plan:
        for first in range(0, entities, CHUNK):
            count = min(CHUNK, entities - first)
            store.command(sql, {"start": YEAR_START, "span": YEAR_S, "first": first, "count": count})
            done += count * per
            rate(done)
    return time.perf_counter() - t


def _state_parts(store, names: tuple[str, ...] = STATE_TABLES) -> int:  # noqa: ANN001
    tables = ", ".join(f"'{t}'" for t in names)
    return store.query_rows(
        f"SELECT count() FROM system.parts WHERE database = 'scc' AND active AND table IN ({tables})"
    )[0][0]


def _refresh_marts(store) -> tuple[float, dict[str, float], int, float]:  # noqa: ANN001
    """Wait for any refresh under way, time one full refresh of the marts, then stop their schedules.

    Returns (seconds for all three, seconds per view, rows in the marts, GiB on disk).
    """
    from clickhouse.migrate import refresh_marts, refreshable_views

    views = refreshable_views(store)
    t = time.perf_counter()
    for view in views:  # the refresh a process starts with (006_analyst_marts.sql): not the one timed
        store.command(f"SYSTEM WAIT VIEW scc.{view}")
    print(f"analyst marts: waited {time.perf_counter() - t:.1f}s for the refreshes under way")
    t = time.perf_counter()
    per_view = refresh_marts(store, views)
    took = time.perf_counter() - t
    for view in views:  # a scheduled refresh must not compete with the timings (refresh_marts still works)
        store.command(f"SYSTEM STOP VIEW scc.{view}")
    names = ", ".join(f"'{t}'" for t in MART_TABLES)
    rows, disk = store.query_rows(
        f"SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = 'scc' AND active AND table IN ({names})"
    )[0]
    print(f"analyst marts refreshed in {took:.1f}s ({', '.join(f'{v} {s:.1f}s' for v, s in per_view.items())})")
    return took, per_view, rows, disk / 2**30


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=at_least_one, default=20_000_000, help="raw events of history to generate")
    parser.add_argument("--store", type=Path, default=Path("var/bench/history"), help="chDB directory (kept)")
    parser.add_argument("--repeat", type=at_least_one, default=5, help="runs of each query")
    parser.add_argument("--fresh", action="store_true", help="delete the store and generate again")
    parser.add_argument("--no-entity", action="store_true", help="skip the per-entity tables")
    parser.add_argument("--no-optimize", action="store_true", help="do not merge the per-entity tables' parts")
    parser.add_argument("--no-marts", action="store_true", help="skip the analyst marts (006)")
    args = parser.parse_args(argv)

    from clickhouse.migrate import migrate
    from clickhouse.store import open_store

    started = time.perf_counter()
    if args.fresh and args.store.exists():
        shutil.rmtree(args.store)
    store = open_store(f"chdb://{args.store.resolve()}")
    t = time.perf_counter()
    applied = migrate(store)  # on a store holding events, 005 backfills the per-entity tables from them
    migrate_s = time.perf_counter() - t
    if applied:
        print(f"migrations applied in {migrate_s:.1f}s (backfill included): {', '.join(applied)}")
    for table in PROPOSED_LEFTOVERS:  # tables an earlier version of this bench built by hand
        store.command(f"DROP TABLE IF EXISTS scc.{table}")
    tables = ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge")
    count_sql = " + ".join(f"(SELECT count() FROM scc.{t})" for t in tables)
    held = store.query_rows(f"SELECT {count_sql}")[0][0]
    generate_s = None
    if held < args.events * 0.99:
        for table in (*tables, *STATE_TABLES):
            store.command(f"TRUNCATE TABLE scc.{table}")
        print(f"generating {args.events:,} events of history in chDB at {args.store} (materialized views attached)")
        generate_s = _generate(store, args.events)
        held = store.query_rows(f"SELECT {count_sql}")[0][0]
    else:
        print(f"reusing {held:,} events of history at {args.store}")
    disk = store.query_rows(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'scc' AND active AND table LIKE 'raw_%'"
    )[0][0]
    entity_disk = store.query_rows(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'scc' AND active AND table LIKE '%_state'"
    )[0][0]
    print(f"history: {held:,} raw events, {disk / 2**30:.2f} GiB on disk (+{entity_disk / 2**30:.2f} GiB entity state)")
    refresh_s = mart_rows = mart_disk = None
    refresh_per_view: dict[str, float] = {}
    if not args.no_marts:  # first: afterwards no refresh runs, and none competes with the timings below
        refresh_s, refresh_per_view, mart_rows, mart_disk = _refresh_marts(store)
    timings, rows, answers = _time(store, QUERIES, args.repeat, "raw events")
    entity: dict[str, list[float]] = {}
    merged: dict[str, list[float]] = {}
    parts_before = parts_after = optimize_s = None
    same_answers: dict[str, bool] = {}
    if not args.no_entity:
        parts_before = _state_parts(store)
        print(f"per-entity tables as stored ({parts_before} active parts)")
        entity, _, entity_answers = _time(store, entity_queries(), args.repeat, "per-entity views")
        same_answers = {name: entity_answers[name] == answers[name] for name in QUERIES}
        print(f"  same results as the raw-event queries: {same_answers}")
        if not args.no_optimize:
            t = time.perf_counter()
            for table in STATE_TABLES:
                store.command(f"OPTIMIZE TABLE scc.{table} FINAL")
            optimize_s = time.perf_counter() - t
            parts_after = _state_parts(store)
            print(f"per-entity tables merged in {optimize_s:.1f}s ({parts_after} active parts)")
            merged, _, _ = _time(store, entity_queries(), args.repeat, "per-entity views, merged")
    marts: dict[str, list[float]] = {}
    mart_parts = None
    same_as_views: dict[str, bool] = {}
    if not args.no_marts:
        mart_parts = _state_parts(store, MART_TABLES)
        print(f"analyst marts ({mart_parts} active parts)")
        marts, _, mart_answers = _time(store, entity_queries(MART_SOURCES), args.repeat, "analyst marts")
        if not args.no_entity:
            same_as_views = {name: mart_answers[name] == entity_answers[name] for name in QUERIES}
            print(f"  same results as the per-entity views: {same_as_views}")
    store.close()
    scale = f"{held / 1e6:,.0f}M raw events"

    def median_figure(label: str, name: str, times: list[float], note: str) -> Figure:
        return Figure(f"{label}: {name}", round(statistics.median(times), 3), "s", 1.0, higher_is_better=False,
                      note=note)  # fmt: skip

    figures = [
        median_figure("Analyst query, median", name, times, f"{scale} ({rows[name]} result rows)")
        for name, times in timings.items()
    ]
    for label, measured, parts in (
        ("Same query on the schema's per-entity views (005), as stored", entity, parts_before),
        ("Same query on the schema's per-entity views (005), parts merged", merged, parts_after),
    ):
        figures += [
            median_figure(
                label,
                name,
                times,
                f"{scale}, {parts} active parts; {rows[name]} result rows, "
                + ("same as raw" if same_answers.get(name) else "**differ from raw**: see bench/analysis.md"),
            )  # fmt: skip
            for name, times in measured.items()
        ]
    compared = {True: "same as the views", False: "**differ from the views**", None: "not compared"}
    figures += [
        median_figure(
            "Same query on the analyst marts (006), after a refresh",
            name,
            times,
            f"{scale}, {mart_parts} active parts; {rows[name]} result rows, {compared[same_as_views.get(name)]}",
        )  # fmt: skip
        for name, times in marts.items()
    ]
    if refresh_s is not None:
        figures.append(
            Figure(
                "Full refresh of the three analyst marts (006), one after the other",
                round(refresh_s, 1),
                "s",
                REFRESH_GOAL_S,
                higher_is_better=False,
                note=f"{scale}, {mart_rows:,} mart rows ({mart_disk:.2f} GiB); "
                + ", ".join(f"{v.removesuffix('_mart_refresh')} {s:.0f} s" for v, s in refresh_per_view.items())
                + "; goal: 10% of the hourly refresh period",
            )
        )
    result = Result(
        "queries",
        f"python -m bench.queries --events {args.events} --repeat {args.repeat}",
        figures=figures,
        details={
            "raw_events": held,
            "disk_gib": round(disk / 2**30, 2),
            "entity_state_disk_gib": round(entity_disk / 2**30, 2),
            "generate_seconds_with_views": generate_s and round(generate_s, 1),
            "migrate_seconds": round(migrate_s, 1),
            "migrations_applied": applied,
            "timings_s": {k: [round(x, 3) for x in v] for k, v in timings.items()},
            "entity_state_parts": parts_before,
            "entity_timings_s": {k: [round(x, 3) for x in v] for k, v in entity.items()},
            "same_answers_as_raw": same_answers,
            "optimize_final_seconds": optimize_s and round(optimize_s, 1),
            "entity_state_parts_merged": parts_after,
            "entity_merged_timings_s": {k: [round(x, 3) for x in v] for k, v in merged.items()},
            "mart_refresh_seconds": refresh_s and round(refresh_s, 1),
            "mart_refresh_seconds_per_view": {k: round(v, 1) for k, v in refresh_per_view.items()},
            "mart_rows": mart_rows,
            "mart_disk_gib": mart_disk and round(mart_disk, 2),
            "mart_parts": mart_parts,
            "mart_timings_s": {k: [round(x, 3) for x in v] for k, v in marts.items()},
            "mart_same_answers_as_views": same_as_views,
            "queries": QUERIES,  # bench/all.py leaves this key out of docs/performance.md
        },
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()

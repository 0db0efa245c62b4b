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
2. Category 2 mean and 90th centile response per ambulance service per month;
3. discharge-delay buckets (discharge date − discharge ready date) per organisation.

Then the same three questions are timed on the per-entity tables ``bench/analysis.md`` proposes (one row per
attendance, incident and discharged spell, built here once by ``INSERT … SELECT``; not part of the schema yet),
checking they return as many rows as the raw-event queries (``--no-proposed`` skips this).

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

from bench.common import Figure, Rate, Result

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
    round(avg(stopped - started) / 60, 1) AS mean_min, round(quantileTDigest(0.9)(stopped - started) / 60, 1) AS p90_min
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


# The per-entity tables bench/analysis.md proposes (a migration, not part of the schema today): one row per
# attendance / incident / spell, folded once (here by INSERT ... SELECT; live, by a materialized view or the sink).
PROPOSED_TABLES = {
    "bench_ed_attendances": (
        "(org_code LowCardinality(String), department_type LowCardinality(String), arrived DateTime,"
        " departed DateTime) ENGINE = MergeTree ORDER BY (org_code, department_type, arrived)",
        """SELECT any(org_code), anyIf(department_type, event_type = 'ed.arrived'),
            toDateTime(minIf(toUnixTimestamp(occurred_at), event_type = 'ed.arrived')),
            toDateTime(minIf(toUnixTimestamp(occurred_at), event_type = 'ed.departed'))
        FROM scc.raw_ed GROUP BY attendance_id
        HAVING countIf(event_type = 'ed.arrived') > 0 AND countIf(event_type = 'ed.departed') > 0""",
    ),
    "bench_incidents": (
        "(org_code LowCardinality(String), category UInt8, started DateTime, stopped DateTime)"
        " ENGINE = MergeTree ORDER BY (org_code, category, started)",
        """SELECT any(org_code), anyIf(category, event_type = 'ambulance.clock_started'),
            toDateTime(minIf(toUnixTimestamp(occurred_at), event_type = 'ambulance.clock_started')),
            toDateTime(minIf(toUnixTimestamp(occurred_at), event_type = 'ambulance.resource_arrived'))
        FROM scc.raw_ambulance WHERE event_type IN ('ambulance.clock_started', 'ambulance.resource_arrived')
        GROUP BY incident_id HAVING countIf(event_type = 'ambulance.resource_arrived') > 0""",
    ),
    "bench_discharges": (
        "(org_code LowCardinality(String), discharged Date, drd Date) ENGINE = MergeTree ORDER BY (org_code, discharged)",
        """SELECT d.org_code, d.discharged, r.drd FROM (
            SELECT spell_id, any(org_code) AS org_code, toDate(min(occurred_at), 'Europe/London') AS discharged
            FROM scc.raw_adt WHERE event_type = 'adt.discharged' GROUP BY spell_id) AS d
        INNER JOIN (SELECT spell_id, argMax(discharge_ready_date, occurred_at) AS drd FROM scc.raw_discharge
            WHERE event_type = 'discharge.ready_date_set' GROUP BY spell_id) AS r USING (spell_id)""",
    ),
}
PROPOSED_QUERIES = {
    "ED 4-hour performance per org, type and month": """
SELECT org_code, department_type, toStartOfMonth(arrived, 'Europe/London') AS month, count() AS attendances,
    round(100 * countIf(departed - arrived <= 14400) / count(), 1) AS within_4h_pct
FROM scc.bench_ed_attendances GROUP BY org_code, department_type, month ORDER BY org_code, department_type, month
""",
    "Category 2 mean and p90 per ambulance service and month": """
SELECT org_code, toStartOfMonth(started, 'Europe/London') AS month, count() AS incidents,
    round(avg(stopped - started) / 60, 1) AS mean_min, round(quantileTDigest(0.9)(stopped - started) / 60, 1) AS p90_min
FROM scc.bench_incidents WHERE category = 2 GROUP BY org_code, month ORDER BY org_code, month
""",
    "Discharge-delay buckets per org": """
SELECT org_code, multiIf(delay <= 0, '0 days', delay <= 2, '1-2 days', delay <= 6, '3-6 days',
    delay <= 13, '7-13 days', delay <= 20, '14-20 days', '21+ days') AS bucket, count() AS spells
FROM (SELECT org_code, dateDiff('day', drd, discharged) AS delay FROM scc.bench_discharges)
GROUP BY org_code, bucket ORDER BY org_code, bucket
""",
}


def _build_proposed(store) -> float:  # noqa: ANN001
    """(Re)build the proposed per-entity tables from the raw events; return the seconds it took."""
    t = time.perf_counter()
    for table, (ddl, select) in PROPOSED_TABLES.items():
        store.command(f"DROP TABLE IF EXISTS scc.{table}")
        store.command(f"CREATE TABLE scc.{table} {ddl}")
        store.command(f"INSERT INTO scc.{table} {select}")
        print(f"  built scc.{table}: {store.query_rows(f'SELECT count() FROM scc.{table}')[0][0]:,} rows", flush=True)
    return time.perf_counter() - t


def _time(store, queries: dict[str, str], repeat: int, label: str) -> tuple[dict, dict]:  # noqa: ANN001
    timings: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    for name, sql in queries.items():
        timings[name] = []
        for _ in range(repeat):
            t = time.perf_counter()
            result = store.query_rows(sql)
            timings[name].append(time.perf_counter() - t)
        rows[name] = len(result)
        print(
            f"  [{label}] {name}: median {statistics.median(timings[name]):.3f}s over {repeat} runs, {len(result)} rows"
        )
    return timings, rows


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


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000_000, help="raw events of history to generate")
    parser.add_argument("--store", type=Path, default=Path("var/bench/history"), help="chDB directory (kept)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query")
    parser.add_argument("--fresh", action="store_true", help="delete the store and generate again")
    parser.add_argument("--no-proposed", action="store_true", help="skip the proposed per-entity tables")
    args = parser.parse_args(argv)

    from bench.common import migrated_store

    started = time.perf_counter()
    if args.fresh and args.store.exists():
        shutil.rmtree(args.store)
    store = migrated_store(args.store.resolve())
    tables = ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge")
    count_sql = " + ".join(f"(SELECT count() FROM scc.{t})" for t in tables)
    held = store.query_rows(f"SELECT {count_sql}")[0][0]
    generate_s = None
    if held < args.events * 0.99:
        if held:
            for t in tables:
                store.command(f"TRUNCATE TABLE scc.{t}")
        print(f"generating {args.events:,} events of history in chDB at {args.store}")
        generate_s = _generate(store, args.events)
        held = store.query_rows(f"SELECT {count_sql}")[0][0]
    else:
        print(f"reusing {held:,} events of history at {args.store}")
    disk = store.query_rows(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'scc' AND active AND table LIKE 'raw_%'"
    )[0][0]
    print(f"history: {held:,} raw events, {disk / 2**30:.2f} GiB on disk")
    timings, rows = _time(store, QUERIES, args.repeat, "raw events")
    proposed: dict[str, list[float]] = {}
    build_s = None
    if not args.no_proposed:
        print("building the proposed per-entity tables (bench/analysis.md, section 5)")
        build_s = _build_proposed(store)
        proposed, proposed_rows = _time(store, PROPOSED_QUERIES, args.repeat, "per-entity tables")
        for name in PROPOSED_QUERIES:
            assert proposed_rows[name] == rows[name], (name, proposed_rows[name], rows[name])
    store.close()
    scale = f"{held / 1e6:,.0f}M raw events"
    result = Result(
        "queries",
        f"python -m bench.queries --events {args.events} --repeat {args.repeat}",
        figures=[
            Figure(
                f"Analyst query, median: {name}",
                round(statistics.median(times), 3),
                "s",
                1.0,
                higher_is_better=False,
                note=f"{scale} ({rows[name]} result rows)",
            )
            for name, times in timings.items()
        ]
        + [
            Figure(
                f"Same query on the proposed per-entity table (not in the schema yet): {name}",
                round(statistics.median(times), 3),
                "s",
                1.0,
                higher_is_better=False,
                note=f"{scale}, folded once into one row per entity ({rows[name]} result rows)",
            )
            for name, times in proposed.items()
        ],
        details={
            "raw_events": held,
            "disk_gib": round(disk / 2**30, 2),
            "generate_seconds": generate_s and round(generate_s, 1),
            "timings_s": {k: [round(x, 3) for x in v] for k, v in timings.items()},
            "proposed_tables_build_seconds": build_s and round(build_s, 1),
            "proposed_timings_s": {k: [round(x, 3) for x in v] for k, v in proposed.items()},
            "queries": QUERIES,
        },
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()

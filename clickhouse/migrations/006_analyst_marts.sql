-- Analyst marts: finalized copies of the per-entity views of 005_entity_tables, one plain row per entity, ordered by
-- organisation and time, rebuilt by refreshable materialized views (docs/analysts.md, docs/performance.md section 5).
--
-- Why: the views fold the AggregatingMergeTree state with FINAL, and the spells view replays each spell's events,
-- on every read. Over a year of England (100M raw events) that costs 1-12 s per analysts' query. Here each view is
-- folded once per refresh into a MergeTree table, so a monthly question only scans plain columns.
--
-- Lag: a mart holds the view as of its last refresh. Each refreshes EVERY 1 HOUR, at its own OFFSET (ED at :05,
-- ambulance at :20, spells at :35 past the hour), so that the three full folds do not run at the same time. So a
-- mart trails the live view by up to an hour plus its refresh time (docs/performance.md gives it at 100M events).
-- The views remain the exact, always-current source: use them for today, the marts for history. To refresh on
-- demand and wait: `python -m clickhouse.migrate refresh` or `scc db refresh` (clickhouse.migrate.refresh_marts).
--
-- How a refresh works: ClickHouse runs the view's SELECT into a new table and swaps it for the target atomically
-- (EXCHANGE TABLES; Atomic database), so readers see the old copy or the new one, never a partial one. The marts are
-- created EMPTY; clickhouse/migrate.py refreshes them (and waits) right after this migration, instead of the INSERT
-- backfill it runs for the incremental views of 005 (an INSERT into a mart would duplicate its rows).
-- Restarts: without ClickHouse Keeper a refreshable view keeps its last refresh time in memory only, so a server,
-- or a process opening an embedded chDB store, refreshes every mart once as it starts, then on the schedule.
--
-- Columns: those of the view, without spells.bed (the tuple that bed_category, escalation and site already hold).

CREATE TABLE IF NOT EXISTS {db}.ed_attendances_mart
(
    attendance_id String COMMENT 'ED attendance',
    arrival DateTime64(3, 'UTC') COMMENT 'earliest ed.arrived (UTC)',
    mode LowCardinality(Nullable(String)) COMMENT 'arrival mode of that arrival (ambulance, walk_in, ...)',
    org LowCardinality(String) COMMENT 'organisation of that arrival',
    site LowCardinality(Nullable(String)) COMMENT 'site of that arrival',
    dtype LowCardinality(String) COMMENT 'department type 1, 2 or 3',
    clock_start DateTime64(3, 'UTC') COMMENT '4-hour clock start: arrival, or handover within 15 minutes for ambulance arrivals',
    departed UInt8 COMMENT '1 once a departure at or after the arrival is stored',
    departure DateTime64(3, 'UTC') COMMENT 'earliest ed.departed at or after the arrival (1970 when not departed)',
    disposal LowCardinality(String) COMMENT 'disposal of that departure',
    within_4h UInt8 COMMENT 'departed within 4 hours of the clock start',
    over_12h UInt8 COMMENT 'departed more than 12 hours after arrival'
)
ENGINE = MergeTree
ORDER BY (org, arrival, attendance_id)
COMMENT 'Analyst mart: ed_attendances as of its last refresh (ed_attendances_mart_refresh, hourly)';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ed_attendances_mart_refresh
REFRESH EVERY 1 HOUR OFFSET 5 MINUTE
TO {db}.ed_attendances_mart
EMPTY
AS SELECT attendance_id, arrival, mode, org, site, dtype, clock_start, departed, departure, disposal, within_4h,
          over_12h
FROM {db}.ed_attendances
COMMENT 'Rebuilds ed_attendances_mart from ed_attendances every hour at :05 (and on demand: scc db refresh)';

CREATE TABLE IF NOT EXISTS {db}.ambulance_responses_mart
(
    incident_id String COMMENT 'ambulance incident',
    start DateTime64(3, 'UTC') COMMENT 'response clock start: earliest clock_started (UTC)',
    org LowCardinality(String) COMMENT 'ambulance service of the clock start',
    stop DateTime64(3, 'UTC') COMMENT 'clock stop: first transport-capable arrival, else first arrival of a closed, not conveyed incident',
    category UInt8 COMMENT 'category in force at the clock stop',
    seconds Float64 COMMENT 'response time in seconds',
    minutes Float64 COMMENT 'response time in minutes'
)
ENGINE = MergeTree
ORDER BY (org, start, incident_id)
COMMENT 'Analyst mart: ambulance_responses as of its last refresh (ambulance_responses_mart_refresh, hourly)';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ambulance_responses_mart_refresh
REFRESH EVERY 1 HOUR OFFSET 20 MINUTE
TO {db}.ambulance_responses_mart
EMPTY
AS SELECT incident_id, start, org, stop, category, seconds, minutes
FROM {db}.ambulance_responses
COMMENT 'Rebuilds ambulance_responses_mart from ambulance_responses every hour at :20 (and on demand: scc db refresh)';

CREATE TABLE IF NOT EXISTS {db}.spells_mart
(
    spell_id String COMMENT 'inpatient spell',
    org LowCardinality(String) COMMENT 'organisation of the admission',
    site LowCardinality(Nullable(String)) COMMENT 'site of the current bed (else of the admission)',
    bed_category LowCardinality(String) COMMENT 'category of the current bed (adult_ga, ...)',
    escalation Bool COMMENT 'the current bed is an escalation bed',
    open UInt8 COMMENT '1 while not discharged',
    pathway Nullable(UInt8) COMMENT 'discharge pathway 0-3 in force',
    drd Nullable(Date) COMMENT 'discharge ready date in force now',
    admitted_at DateTime64(3, 'UTC') COMMENT 'admission time (UTC)',
    discharged_at DateTime64(3, 'UTC') COMMENT 'discharge time (UTC; 1970 while open)',
    drd_at_discharge Nullable(Date) COMMENT 'discharge ready date in force when the spell was discharged',
    counts_for_drd UInt8 COMMENT 'discharged from an adult G&A bed after at least one night: in the DRD indicators',
    delay_days Int64 COMMENT 'days from drd_at_discharge to the discharge date (0 without one)'
)
ENGINE = MergeTree
ORDER BY (org, admitted_at, spell_id)
COMMENT 'Analyst mart: spells as of its last refresh (spells_mart_refresh, hourly)';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.spells_mart_refresh
REFRESH EVERY 1 HOUR OFFSET 35 MINUTE
TO {db}.spells_mart
EMPTY
AS SELECT spell_id, org, site, bed_category, escalation, open, pathway, drd, admitted_at, discharged_at,
          drd_at_discharge, counts_for_drd, delay_days
FROM {db}.spells
COMMENT 'Rebuilds spells_mart from spells every hour at :35 (and on demand: scc db refresh)';

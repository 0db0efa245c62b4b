-- Per-entity tables for analysts: one row per ED attendance, ambulance response and inpatient spell, kept up to date
-- from the raw tables by materialized views (docs/analysts.md).
--
-- Why: analysts' questions (monthly 4-hour performance, Category 2 response times, discharge delays) fold each
-- entity's events. Folding tens of millions of raw events per query takes seconds; these tables hold the fold's
-- inputs per entity, so a query reads one small row per entity.
--
-- How it stays exact whatever the delivery order: each *_state table is an AggregatingMergeTree keyed by the entity
-- id whose columns are idempotent, order-free aggregates of the entity's events (max of flags, min of
-- (occurred_at, event_id, ...) tuples, union of distinct event tuples). A redelivered event (same event_id, same
-- contents) changes none of them; late and out-of-order events merge into the same values as if they had come in
-- order. The views (ed_attendances, ambulance_responses, spells) apply docs/definitions.md to the merged state with
-- the same SQL as clickhouse/recompute.py (ed_facts_sql, responses_sql, spell_facts_sql), as of every stored event.
-- Read the views, or the state tables with FINAL (or GROUP BY id with the same simple aggregate functions).
-- Limit: an event_id sent again with *different* contents (a source bug) is folded as two events here, where the
-- recomputation keeps the first copy ingested. Unconfigured organisations are not filtered (the worker and sink
-- reject them before they reach the raw tables).
--
-- Backfill: a materialized view sees only rows inserted after it exists. clickhouse/migrate.py therefore folds the
-- events already in the raw tables right after this migration creates the views (`backfill`: INSERT INTO <state
-- table> <the view's own SELECT> over the whole raw table). An event inserted in between is folded twice, which the
-- idempotent aggregates absorb, and running it again changes nothing, so a store can be re-backfilled at any time:
-- `python -m clickhouse.migrate backfill`.

CREATE TABLE IF NOT EXISTS {db}.ed_attendance_state
(
    attendance_id String COMMENT 'ED attendance',
    arrived SimpleAggregateFunction(max, UInt8) COMMENT '1 once an ed.arrived is stored',
    cancelled SimpleAggregateFunction(max, UInt8) COMMENT '1 once an ed.cancelled is stored',
    first_arrival SimpleAggregateFunction(min, Tuple(DateTime64(3, 'UTC'), String, Nullable(String), String, Nullable(String), String))
        COMMENT 'earliest ed.arrived: (occurred_at, event_id, arrival_mode, org_code, site_code, department_type)',
    has_handover SimpleAggregateFunction(max, UInt8) COMMENT '1 once an ed.handover is stored',
    first_handover SimpleAggregateFunction(min, DateTime64(3, 'UTC')) COMMENT 'earliest ed.handover',
    departures SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), String, String)))
        COMMENT 'every ed.departed: (occurred_at, event_id, disposal)'
)
ENGINE = AggregatingMergeTree
ORDER BY attendance_id
COMMENT 'Folded events of each ED attendance (written by ed_attendance_state_mv); read through ed_attendances';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ed_attendance_state_mv TO {db}.ed_attendance_state AS
SELECT attendance_id,
       max(event_type = 'ed.arrived') AS arrived,
       max(event_type = 'ed.cancelled') AS cancelled,
       min(if(event_type = 'ed.arrived',
              CAST((occurred_at, event_id, arrival_mode, org_code, site_code, ifNull(department_type, ''))
                   AS Tuple(DateTime64(3, 'UTC'), String, Nullable(String), String, Nullable(String), String)),
              CAST((toDateTime64('2299-12-31 23:59:59.999', 3, 'UTC'), '', NULL, '', NULL, '')
                   AS Tuple(DateTime64(3, 'UTC'), String, Nullable(String), String, Nullable(String), String))))
           AS first_arrival,
       max(event_type = 'ed.handover') AS has_handover,
       min(if(event_type = 'ed.handover', occurred_at, toDateTime64('2299-12-31 23:59:59.999', 3, 'UTC')))
           AS first_handover,
       groupUniqArrayArray(if(event_type = 'ed.departed',
                              [CAST((occurred_at, event_id, ifNull(disposal, ''))
                                    AS Tuple(DateTime64(3, 'UTC'), String, String))],
                              [])) AS departures
FROM {db}.raw_ed
GROUP BY attendance_id
COMMENT 'Folds every insert into raw_ed into ed_attendance_state';

CREATE VIEW IF NOT EXISTS {db}.ed_attendances AS
SELECT attendance_id, arrival, mode, org, site, dtype, clock_start, departed, departure, disposal,
       departure <= clock_start + INTERVAL 4 HOUR AS within_4h,
       departure > arrival + INTERVAL 12 HOUR AS over_12h
FROM (
    SELECT attendance_id,
           first_arrival.1 AS arrival, first_arrival.3 AS mode, first_arrival.4 AS org, first_arrival.5 AS site,
           first_arrival.6 AS dtype,
           multiIf(mode != 'ambulance', arrival,
                   has_handover AND first_handover >= arrival AND first_handover < arrival + INTERVAL 15 MINUTE,
                   first_handover,
                   arrival + INTERVAL 15 MINUTE) AS clock_start,
           arraySort(arrayFilter(d -> d.1 >= arrival, departures)) AS valid_departures,
           notEmpty(valid_departures) AS departed,
           valid_departures[1].1 AS departure,
           valid_departures[1].3 AS disposal
    FROM {db}.ed_attendance_state FINAL
    WHERE arrived = 1 AND cancelled = 0
)
COMMENT 'One row per ED attendance (arrived, not cancelled), as clickhouse/recompute.py ed_facts_sql defines it';

CREATE TABLE IF NOT EXISTS {db}.ambulance_incident_state
(
    incident_id String COMMENT 'ambulance incident',
    has_clock_start SimpleAggregateFunction(max, UInt8) COMMENT '1 once an ambulance.clock_started is stored',
    clock_start SimpleAggregateFunction(min, Tuple(DateTime64(3, 'UTC'), String, String))
        COMMENT 'earliest clock_started: (occurred_at, event_id, org_code)',
    arrivals SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), String, Bool)))
        COMMENT 'every resource_arrived: (occurred_at, event_id, transport_capable)',
    closed SimpleAggregateFunction(max, UInt8) COMMENT '1 once an incident_closed is stored',
    last_closure SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), String, Bool))
        COMMENT 'latest incident_closed: (occurred_at, event_id, conveyed)',
    categories SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), String, UInt8)))
        COMMENT 'every clock_started/recategorised: (occurred_at, event_id, category)'
)
ENGINE = AggregatingMergeTree
ORDER BY incident_id
COMMENT 'Folded events of each ambulance incident (written by ambulance_incident_state_mv); read through ambulance_responses';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ambulance_incident_state_mv TO {db}.ambulance_incident_state AS
SELECT incident_id,
       max(event_type = 'ambulance.clock_started') AS has_clock_start,
       min(if(event_type = 'ambulance.clock_started',
              CAST((occurred_at, event_id, org_code) AS Tuple(DateTime64(3, 'UTC'), String, String)),
              CAST((toDateTime64('2299-12-31 23:59:59.999', 3, 'UTC'), '', '')
                   AS Tuple(DateTime64(3, 'UTC'), String, String)))) AS clock_start,
       groupUniqArrayArray(if(event_type = 'ambulance.resource_arrived',
                              [CAST((occurred_at, event_id, ifNull(transport_capable, false))
                                    AS Tuple(DateTime64(3, 'UTC'), String, Bool))],
                              [])) AS arrivals,
       max(event_type = 'ambulance.incident_closed') AS closed,
       max(if(event_type = 'ambulance.incident_closed',
              CAST((occurred_at, event_id, ifNull(conveyed, true)) AS Tuple(DateTime64(3, 'UTC'), String, Bool)),
              CAST((toDateTime64(0, 3, 'UTC'), '', true) AS Tuple(DateTime64(3, 'UTC'), String, Bool))))
           AS last_closure,
       groupUniqArrayArray(if(event_type IN ('ambulance.clock_started', 'ambulance.recategorised'),
                              [CAST((occurred_at, event_id, ifNull(category, 0))
                                    AS Tuple(DateTime64(3, 'UTC'), String, UInt8))],
                              [])) AS categories
FROM {db}.raw_ambulance
GROUP BY incident_id
COMMENT 'Folds every insert into raw_ambulance into ambulance_incident_state';

CREATE VIEW IF NOT EXISTS {db}.ambulance_responses AS
SELECT incident_id, start, org, assumeNotNull(stop_or_null) AS stop,
       arrayLast(x -> x.1 <= stop, categories).3 AS category,
       (toUnixTimestamp64Milli(stop) - toUnixTimestamp64Milli(start)) / 1000 AS seconds,
       (toUnixTimestamp64Milli(stop) - toUnixTimestamp64Milli(start)) / 60000 AS minutes
FROM (
    SELECT incident_id, clock_start.1 AS start, clock_start.3 AS org, arraySort(categories) AS categories,
           arrayFilter(x -> x.1 >= start, arraySort(arrivals)) AS after_start,
           arrayFirstIndex(x -> x.3, after_start) AS capable,
           multiIf(capable > 0, after_start[capable].1,
                   closed = 1 AND NOT last_closure.3 AND length(after_start) > 0, after_start[1].1,
                   NULL) AS stop_or_null
    FROM {db}.ambulance_incident_state FINAL
    WHERE has_clock_start = 1
)
WHERE stop_or_null IS NOT NULL
COMMENT 'One row per stopped ambulance response clock, as clickhouse/recompute.py responses_sql defines it';

CREATE TABLE IF NOT EXISTS {db}.spell_state
(
    spell_id String COMMENT 'inpatient spell',
    events SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), String, String, String, Nullable(String), Nullable(String), Nullable(Bool), Nullable(UInt8), Nullable(Date))))
        COMMENT 'every adt.* and discharge.* event of the spell: (occurred_at, event_id, event_type, org_code, site_code, bed_category, escalation_bed, pathway, discharge_ready_date)'
)
ENGINE = AggregatingMergeTree
ORDER BY spell_id
COMMENT 'Distinct events of each spell (written by spell_state_adt_mv and spell_state_discharge_mv); read through spells';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.spell_state_adt_mv TO {db}.spell_state AS
SELECT spell_id,
       groupUniqArrayArray([CAST((occurred_at, event_id, event_type, org_code, site_code, bed_category, escalation_bed,
                                  pathway, NULL)
                                 AS Tuple(DateTime64(3, 'UTC'), String, String, String, Nullable(String),
                                          Nullable(String), Nullable(Bool), Nullable(UInt8), Nullable(Date)))])
           AS events
FROM {db}.raw_adt
GROUP BY spell_id
COMMENT 'Folds every insert into raw_adt into spell_state';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.spell_state_discharge_mv TO {db}.spell_state AS
SELECT spell_id,
       groupUniqArrayArray([CAST((occurred_at, event_id, event_type, org_code, site_code, NULL, NULL, pathway,
                                  discharge_ready_date)
                                 AS Tuple(DateTime64(3, 'UTC'), String, String, String, Nullable(String),
                                          Nullable(String), Nullable(Bool), Nullable(UInt8), Nullable(Date)))])
           AS events
FROM {db}.raw_discharge
GROUP BY spell_id
COMMENT 'Folds every insert into raw_discharge into spell_state';

-- The spell fold of clickhouse/recompute.py (_SPELL_STEP), restricted to the fields these columns need (bed,
-- discharge, ready date, pathway; referrals and plans are left to the recomputation). x = (occurred_at, event_id,
-- event_type, org_code, site_code, bed_category, escalation_bed, pathway, discharge_ready_date).
CREATE VIEW IF NOT EXISTS {db}.spells AS
SELECT spell_id,
       if(length(st.8) > 0, st.8[-1], (st.5, st.6, st.7)) AS bed,
       st.2 AS org, ifNull(bed.3, st.3) AS site,
       bed.1 AS bed_category,
       bed.2 AS escalation,
       st.9 = 0 AS open,
       st.10 AS pathway,
       st.11 AS drd,
       st.12 AS admitted_at,
       st.13 AS discharged_at,
       st.14 AS drd_at_discharge,
       NOT open AND bed_category = 'adult_ga'
         AND toDate(discharged_at, 'Europe/London') > toDate(admitted_at, 'Europe/London') AS counts_for_drd,
       if(drd_at_discharge IS NULL, 0,
          greatest(0, dateDiff('day', assumeNotNull(drd_at_discharge), toDate(discharged_at, 'Europe/London'))))
         AS delay_days
FROM (
    SELECT spell_id,
           arrayFold((s, x) -> CAST((
               multiIf(x.3 = 'adt.admitted', 1, x.3 = 'adt.admission_cancelled', 0, s.1),
               if(x.3 = 'adt.admitted', x.4, s.2),
               if(x.3 = 'adt.admitted', x.5, s.3),
               if(x.3 = 'adt.admitted', 1, s.4),
               multiIf(x.3 = 'adt.admitted', assumeNotNull(x.6),
                       x.3 = 'adt.updated' AND s.4 = 1, ifNull(x.6, s.5), s.5),
               multiIf(x.3 = 'adt.admitted', assumeNotNull(x.7),
                       x.3 = 'adt.updated' AND s.4 = 1, ifNull(x.7, s.6), s.6),
               multiIf(x.3 = 'adt.admitted', x.5,
                       x.3 = 'adt.updated' AND s.4 = 1, ifNull(x.5, s.7), s.7),
               multiIf(x.3 = 'adt.admitted', CAST([], 'Array(Tuple(String, Bool, Nullable(String)))'),
                       x.3 = 'adt.transferred',
                       arrayPushBack(s.8, (assumeNotNull(x.6), assumeNotNull(x.7), ifNull(x.5, s.3))),
                       x.3 = 'adt.transfer_cancelled', arrayPopBack(s.8),
                       s.8),
               multiIf(x.3 = 'adt.discharged', 1, x.3 IN ('adt.admitted', 'adt.discharge_cancelled'), 0, s.9),
               multiIf(x.3 IN ('adt.discharged', 'discharge.ready_date_set'), ifNull(x.8, s.10),
                       x.3 = 'discharge.pathway_assigned', x.8, s.10),
               multiIf(x.3 = 'discharge.ready_date_set', x.9, x.3 = 'discharge.ready_date_cleared', NULL, s.11),
               if(x.3 = 'adt.admitted', x.1, s.12),
               if(x.3 = 'adt.discharged', x.1, s.13),
               multiIf(x.3 = 'adt.discharged', s.11, x.3 = 'adt.discharge_cancelled', NULL, s.14)
             ) AS Tuple(UInt8, String, Nullable(String), UInt8, String, Bool, Nullable(String),
                        Array(Tuple(String, Bool, Nullable(String))), UInt8, Nullable(UInt8), Nullable(Date),
                        DateTime64(3, 'UTC'), DateTime64(3, 'UTC'), Nullable(Date))),
             arraySort(events),
             CAST((0, '', NULL, 0, '', false, NULL, [], 0, NULL, NULL, 0, 0, NULL)
                  AS Tuple(UInt8, String, Nullable(String), UInt8, String, Bool, Nullable(String),
                           Array(Tuple(String, Bool, Nullable(String))), UInt8, Nullable(UInt8), Nullable(Date),
                           DateTime64(3, 'UTC'), DateTime64(3, 'UTC'), Nullable(Date)))) AS st
    FROM {db}.spell_state FINAL
)
WHERE st.1 = 1
COMMENT 'One row per spell that exists (admitted, not cancelled), open or discharged, as clickhouse/recompute.py spell_facts_sql defines it';

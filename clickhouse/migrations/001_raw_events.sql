-- Raw canonical events, one table per input topic (../shared/domain/EVENTS.md).
--
-- Why ReplacingMergeTree: Kafka delivers at least once and Tansu cannot do exactly-once, so every write must be
-- idempotent. A redelivered event has the same event_id, event_type and occurred_at, hence the same sorting key,
-- and merges (or FINAL) collapse the copies. The version column `_keep` decreases with ingested_at, so the copy that
-- survives is the FIRST one ingested, as docs/definitions.md requires ("first copy wins").
-- Why ORDER BY (event_type, occurred_at, event_id): every reader (dashboards, the SQL recomputation) filters on
-- event type and an occurred_at range; event_id last makes the key unique per event.
-- Readers that need exact answers before a merge use FINAL, or LIMIT 1 BY event_id ordered by ingestion.
-- No clear patient identifiers exist in events: patient_ref is already a keyed pseudonym made at the edge.
-- {db} is replaced by the store's database (default scc) when the migration is applied.

CREATE TABLE IF NOT EXISTS {db}.raw_ed
(
    event_id String COMMENT 'idempotency key: unique per event at its source, repeated on redelivery',
    event_type LowCardinality(String) COMMENT 'ed.arrived, ed.handover, ed.decision_to_admit, ed.departed, ed.cancelled',
    occurred_at DateTime64(3, 'UTC') COMMENT 'event time (UTC)',
    source LowCardinality(String) COMMENT 'sending system, e.g. UHL-EPR',
    org_code LowCardinality(String) COMMENT 'ODS code of the organisation',
    site_code LowCardinality(Nullable(String)) COMMENT 'ODS site code',
    schema_version UInt8 COMMENT 'event contract version',
    attendance_id String COMMENT 'ED attendance (the topic key)',
    department_type LowCardinality(Nullable(String)) COMMENT 'ed.arrived: 1, 2 or 3',
    arrival_mode LowCardinality(Nullable(String)) COMMENT 'ed.arrived: ambulance, walk_in or other',
    ambulance_incident_id Nullable(String) COMMENT 'ed.arrived: the conveying ambulance incident, when known',
    age Nullable(UInt8) COMMENT 'ed.arrived: age in years',
    disposal LowCardinality(Nullable(String)) COMMENT 'ed.departed: admitted, transferred, discharged, left, died',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)',
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written',
    _keep UInt64 MATERIALIZED bitNot(toUInt64(toUnixTimestamp64Milli(ingested_at)))
        COMMENT 'ReplacingMergeTree version: larger for earlier ingestion, so the first copy survives merges'
)
ENGINE = ReplacingMergeTree(_keep)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, occurred_at, event_id)
COMMENT 'Topic scc.ed: emergency department attendance events, one row per event_id after dedup';

CREATE TABLE IF NOT EXISTS {db}.raw_ambulance
(
    event_id String COMMENT 'idempotency key: unique per event at its source, repeated on redelivery',
    event_type LowCardinality(String) COMMENT 'ambulance.call_connected, clock_started, recategorised, resource_arrived, incident_closed, arrived_at_hospital, handover_completed, crew_clear',
    occurred_at DateTime64(3, 'UTC') COMMENT 'event time (UTC)',
    source LowCardinality(String) COMMENT 'sending system, e.g. EMAS-CAD',
    org_code LowCardinality(String) COMMENT 'ODS code of the organisation',
    site_code LowCardinality(Nullable(String)) COMMENT 'ODS site code (receiving hospital for arrived_at_hospital/handover_completed)',
    schema_version UInt8 COMMENT 'event contract version',
    incident_id String COMMENT 'ambulance incident (the topic key)',
    category Nullable(UInt8) COMMENT 'clock_started/recategorised: response category 1-4',
    resource_id Nullable(String) COMMENT 'resource_arrived: the responding resource',
    transport_capable Nullable(Bool) COMMENT 'resource_arrived: the resource can convey a patient',
    conveyed Nullable(Bool) COMMENT 'incident_closed: the patient was conveyed',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)',
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written',
    _keep UInt64 MATERIALIZED bitNot(toUInt64(toUnixTimestamp64Milli(ingested_at)))
        COMMENT 'ReplacingMergeTree version: larger for earlier ingestion, so the first copy survives merges'
)
ENGINE = ReplacingMergeTree(_keep)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, occurred_at, event_id)
COMMENT 'Topic scc.ambulance: ambulance incident events (CAD), one row per event_id after dedup';

CREATE TABLE IF NOT EXISTS {db}.raw_adt
(
    event_id String COMMENT 'idempotency key: unique per event at its source, repeated on redelivery',
    event_type LowCardinality(String) COMMENT 'adt.admitted (A01), transferred (A02), discharged (A03), updated (A08), admission_cancelled (A11), transfer_cancelled (A12), discharge_cancelled (A13)',
    occurred_at DateTime64(3, 'UTC') COMMENT 'event time (UTC)',
    source LowCardinality(String) COMMENT 'sending system, e.g. UHL-EPR',
    org_code LowCardinality(String) COMMENT 'ODS code of the organisation',
    site_code LowCardinality(Nullable(String)) COMMENT 'ODS site code',
    schema_version UInt8 COMMENT 'event contract version',
    spell_id String COMMENT 'inpatient spell (the topic key)',
    patient_ref Nullable(String) COMMENT 'admitted/updated: keyed pseudonym made at the edge (not an identifier in clear)',
    ward_code Nullable(String) COMMENT 'admitted/transferred/updated: ward',
    bed_category LowCardinality(Nullable(String)) COMMENT 'admitted/transferred/updated: adult_ga, paediatric_ga, critical_care, maternity, mental_health, other',
    escalation_bed Nullable(Bool) COMMENT 'admitted/transferred/updated: an escalation (surge) bed',
    admission_method LowCardinality(Nullable(String)) COMMENT 'admitted/updated: emergency, elective, other',
    age Nullable(UInt8) COMMENT 'admitted/updated: age in years',
    pathway Nullable(UInt8) COMMENT 'discharged: discharge pathway 0-3',
    destination Nullable(String) COMMENT 'discharged: destination',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)',
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written',
    _keep UInt64 MATERIALIZED bitNot(toUInt64(toUnixTimestamp64Milli(ingested_at)))
        COMMENT 'ReplacingMergeTree version: larger for earlier ingestion, so the first copy survives merges'
)
ENGINE = ReplacingMergeTree(_keep)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, occurred_at, event_id)
COMMENT 'Topic scc.adt: inpatient bed state events (HL7 v2 ADT), one row per event_id after dedup';

CREATE TABLE IF NOT EXISTS {db}.raw_discharge
(
    event_id String COMMENT 'idempotency key: unique per event at its source, repeated on redelivery',
    event_type LowCardinality(String) COMMENT 'discharge.ready_date_set, ready_date_cleared, pathway_assigned, referral_made, plan_in_place',
    occurred_at DateTime64(3, 'UTC') COMMENT 'event time (UTC)',
    source LowCardinality(String) COMMENT 'sending system',
    org_code LowCardinality(String) COMMENT 'ODS code of the organisation',
    site_code LowCardinality(Nullable(String)) COMMENT 'ODS site code',
    schema_version UInt8 COMMENT 'event contract version',
    spell_id String COMMENT 'inpatient spell (the topic key, shared with scc.adt)',
    discharge_ready_date Nullable(Date) COMMENT 'ready_date_set: the discharge ready date (local calendar date)',
    pathway Nullable(UInt8) COMMENT 'ready_date_set/pathway_assigned/referral_made: discharge pathway 0-3',
    referral_id Nullable(String) COMMENT 'referral_made/plan_in_place: referral to the integrated discharge function',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)',
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written',
    _keep UInt64 MATERIALIZED bitNot(toUInt64(toUnixTimestamp64Milli(ingested_at)))
        COMMENT 'ReplacingMergeTree version: larger for earlier ingestion, so the first copy survives merges'
)
ENGINE = ReplacingMergeTree(_keep)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, occurred_at, event_id)
COMMENT 'Topic scc.discharge: criteria to reside, discharge ready dates, referrals and plans, one row per event_id after dedup';

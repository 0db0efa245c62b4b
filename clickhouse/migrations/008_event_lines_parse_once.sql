-- The raw tables' insert points parse each JSON line once instead of once per column.
--
-- Why: the views of 007_event_lines called JSONExtract* once per column, and each call parses the whole line again
-- (8 to 16 parses per event). Here one JSONExtract reads every column into a named tuple, and the view takes the
-- columns out of it: ClickHouse's side of a raw insert went from ~3.5 to ~2.2 µs per event (ED, on chDB), the CPU
-- that a replay's writer thread, or a second replay beside it, needs (bench/analysis.md, replay).
-- The rows are the same: a tuple element is read as the 007 call read it (String: '' when absent; Nullable: NULL
-- when absent), and occurred_at and discharge_ready_date are converted as before; tests/unit/test_replay_fast_path.py
-- compares the stored rows with the former columnar insert on every event type and edge cases.
-- ALTER ... MODIFY QUERY replaces a view's query in place, so an insert during the migration goes through either the
-- old query or the new one, never through no view (a Null table would drop it).

ALTER TABLE {db}.raw_ed_lines_mv MODIFY QUERY
SELECT
    tupleElement(j, 'event_id') AS event_id,
    tupleElement(j, 'event_type') AS event_type,
    parseDateTime64BestEffort(tupleElement(j, 'occurred_at'), 3, 'UTC') AS occurred_at,
    tupleElement(j, 'source') AS source,
    tupleElement(j, 'org_code') AS org_code,
    tupleElement(j, 'site_code') AS site_code,
    tupleElement(j, 'schema_version') AS schema_version,
    tupleElement(j, 'attendance_id') AS attendance_id,
    tupleElement(j, 'department_type') AS department_type,
    tupleElement(j, 'arrival_mode') AS arrival_mode,
    tupleElement(j, 'ambulance_incident_id') AS ambulance_incident_id,
    tupleElement(j, 'age') AS age,
    tupleElement(j, 'disposal') AS disposal,
    payload,
    kafka_partition,
    kafka_offset
FROM
(
    SELECT
        JSONExtract(payload, 'Tuple(event_id String, event_type String, occurred_at Nullable(String), source String, org_code String, site_code Nullable(String), schema_version UInt8, attendance_id String, department_type Nullable(String), arrival_mode Nullable(String), ambulance_incident_id Nullable(String), age Nullable(UInt8), disposal Nullable(String))') AS j,
        payload,
        kafka_partition,
        kafka_offset
    FROM {db}.raw_ed_lines
);

ALTER TABLE {db}.raw_ambulance_lines_mv MODIFY QUERY
SELECT
    tupleElement(j, 'event_id') AS event_id,
    tupleElement(j, 'event_type') AS event_type,
    parseDateTime64BestEffort(tupleElement(j, 'occurred_at'), 3, 'UTC') AS occurred_at,
    tupleElement(j, 'source') AS source,
    tupleElement(j, 'org_code') AS org_code,
    tupleElement(j, 'site_code') AS site_code,
    tupleElement(j, 'schema_version') AS schema_version,
    tupleElement(j, 'incident_id') AS incident_id,
    tupleElement(j, 'category') AS category,
    tupleElement(j, 'resource_id') AS resource_id,
    tupleElement(j, 'transport_capable') AS transport_capable,
    tupleElement(j, 'conveyed') AS conveyed,
    payload,
    kafka_partition,
    kafka_offset
FROM
(
    SELECT
        JSONExtract(payload, 'Tuple(event_id String, event_type String, occurred_at Nullable(String), source String, org_code String, site_code Nullable(String), schema_version UInt8, incident_id String, category Nullable(UInt8), resource_id Nullable(String), transport_capable Nullable(Bool), conveyed Nullable(Bool))') AS j,
        payload,
        kafka_partition,
        kafka_offset
    FROM {db}.raw_ambulance_lines
);

ALTER TABLE {db}.raw_adt_lines_mv MODIFY QUERY
SELECT
    tupleElement(j, 'event_id') AS event_id,
    tupleElement(j, 'event_type') AS event_type,
    parseDateTime64BestEffort(tupleElement(j, 'occurred_at'), 3, 'UTC') AS occurred_at,
    tupleElement(j, 'source') AS source,
    tupleElement(j, 'org_code') AS org_code,
    tupleElement(j, 'site_code') AS site_code,
    tupleElement(j, 'schema_version') AS schema_version,
    tupleElement(j, 'spell_id') AS spell_id,
    tupleElement(j, 'patient_ref') AS patient_ref,
    tupleElement(j, 'ward_code') AS ward_code,
    tupleElement(j, 'bed_category') AS bed_category,
    tupleElement(j, 'escalation_bed') AS escalation_bed,
    tupleElement(j, 'admission_method') AS admission_method,
    tupleElement(j, 'age') AS age,
    tupleElement(j, 'pathway') AS pathway,
    tupleElement(j, 'destination') AS destination,
    payload,
    kafka_partition,
    kafka_offset
FROM
(
    SELECT
        JSONExtract(payload, 'Tuple(event_id String, event_type String, occurred_at Nullable(String), source String, org_code String, site_code Nullable(String), schema_version UInt8, spell_id String, patient_ref Nullable(String), ward_code Nullable(String), bed_category Nullable(String), escalation_bed Nullable(Bool), admission_method Nullable(String), age Nullable(UInt8), pathway Nullable(UInt8), destination Nullable(String))') AS j,
        payload,
        kafka_partition,
        kafka_offset
    FROM {db}.raw_adt_lines
);

ALTER TABLE {db}.raw_discharge_lines_mv MODIFY QUERY
SELECT
    tupleElement(j, 'event_id') AS event_id,
    tupleElement(j, 'event_type') AS event_type,
    parseDateTime64BestEffort(tupleElement(j, 'occurred_at'), 3, 'UTC') AS occurred_at,
    tupleElement(j, 'source') AS source,
    tupleElement(j, 'org_code') AS org_code,
    tupleElement(j, 'site_code') AS site_code,
    tupleElement(j, 'schema_version') AS schema_version,
    tupleElement(j, 'spell_id') AS spell_id,
    toDateOrNull(tupleElement(j, 'discharge_ready_date')) AS discharge_ready_date,
    tupleElement(j, 'pathway') AS pathway,
    tupleElement(j, 'referral_id') AS referral_id,
    payload,
    kafka_partition,
    kafka_offset
FROM
(
    SELECT
        JSONExtract(payload, 'Tuple(event_id String, event_type String, occurred_at Nullable(String), source String, org_code String, site_code Nullable(String), schema_version UInt8, spell_id String, discharge_ready_date Nullable(String), pathway Nullable(UInt8), referral_id Nullable(String))') AS j,
        payload,
        kafka_partition,
        kafka_offset
    FROM {db}.raw_discharge_lines
);

ALTER TABLE {db}.raw_opel_lines_mv MODIFY QUERY
SELECT
    tupleElement(j, 'event_id') AS event_id,
    tupleElement(j, 'event_type') AS event_type,
    parseDateTime64BestEffort(tupleElement(j, 'occurred_at'), 3, 'UTC') AS occurred_at,
    tupleElement(j, 'source') AS source,
    tupleElement(j, 'org_code') AS org_code,
    tupleElement(j, 'site_code') AS site_code,
    tupleElement(j, 'schema_version') AS schema_version,
    tupleElement(j, 'level') AS level,
    payload,
    kafka_partition,
    kafka_offset
FROM
(
    SELECT
        JSONExtract(payload, 'Tuple(event_id String, event_type String, occurred_at Nullable(String), source String, org_code String, site_code Nullable(String), schema_version UInt8, level UInt8)') AS j,
        payload,
        kafka_partition,
        kafka_offset
    FROM {db}.raw_opel_lines
);

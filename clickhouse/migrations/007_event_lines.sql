-- Insert points for raw events: the pipeline writes each event as (kafka_partition, kafka_offset, canonical JSON)
-- into a Null table, and a materialized view reads the raw table's columns out of the JSON into raw_<topic>.
--
-- Why: the columns of a raw table are all in the payload already. Building them as a columnar block in Python took
-- about twice the CPU of serialising the payload alone; here ClickHouse parses the JSON in C++ (on chDB with the
-- GIL released, so a replay's background thread stores events while Python goes on folding them). The rows, and
-- everything the raw tables feed (entity state views, marts), are the same as before: tests/unit/test_replay_fast_path.py
-- compares them with the former columnar insert on every event type.
-- How each column is read: strings and numbers as JSON holds them (a field the event lacks is NULL, or '' for the
-- few required string fields, which every valid event carries); occurred_at is ISO 8601 with an offset, parsed to
-- UTC milliseconds (truncated, as DateTime64(3) stores any time); discharge_ready_date is an ISO calendar date.
-- A new raw column needs its line here too (the comparison test fails until it has one).
-- The Null tables keep nothing: a row exists only on its way through the view. ingested_at and _keep are filled by
-- the raw table itself, as for any insert.

CREATE TABLE IF NOT EXISTS {db}.raw_ed_lines
(
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)'
)
ENGINE = Null
COMMENT 'Insert point for scc.ed events: rows pass through raw_ed_lines_mv into raw_ed and are not kept here';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.raw_ed_lines_mv TO {db}.raw_ed AS
SELECT
    JSONExtractString(payload, 'event_id') AS event_id,
    JSONExtractString(payload, 'event_type') AS event_type,
    parseDateTime64BestEffort(JSONExtract(payload, 'occurred_at', 'Nullable(String)'), 3, 'UTC') AS occurred_at,
    JSONExtractString(payload, 'source') AS source,
    JSONExtractString(payload, 'org_code') AS org_code,
    JSONExtract(payload, 'site_code', 'Nullable(String)') AS site_code,
    JSONExtract(payload, 'schema_version', 'UInt8') AS schema_version,
    JSONExtractString(payload, 'attendance_id') AS attendance_id,
    JSONExtract(payload, 'department_type', 'Nullable(String)') AS department_type,
    JSONExtract(payload, 'arrival_mode', 'Nullable(String)') AS arrival_mode,
    JSONExtract(payload, 'ambulance_incident_id', 'Nullable(String)') AS ambulance_incident_id,
    JSONExtract(payload, 'age', 'Nullable(UInt8)') AS age,
    JSONExtract(payload, 'disposal', 'Nullable(String)') AS disposal,
    payload,
    kafka_partition,
    kafka_offset
FROM {db}.raw_ed_lines
COMMENT 'Reads the columns of raw_ed out of each JSON line inserted into raw_ed_lines';

CREATE TABLE IF NOT EXISTS {db}.raw_ambulance_lines
(
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)'
)
ENGINE = Null
COMMENT 'Insert point for scc.ambulance events: rows pass through raw_ambulance_lines_mv into raw_ambulance and are not kept here';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.raw_ambulance_lines_mv TO {db}.raw_ambulance AS
SELECT
    JSONExtractString(payload, 'event_id') AS event_id,
    JSONExtractString(payload, 'event_type') AS event_type,
    parseDateTime64BestEffort(JSONExtract(payload, 'occurred_at', 'Nullable(String)'), 3, 'UTC') AS occurred_at,
    JSONExtractString(payload, 'source') AS source,
    JSONExtractString(payload, 'org_code') AS org_code,
    JSONExtract(payload, 'site_code', 'Nullable(String)') AS site_code,
    JSONExtract(payload, 'schema_version', 'UInt8') AS schema_version,
    JSONExtractString(payload, 'incident_id') AS incident_id,
    JSONExtract(payload, 'category', 'Nullable(UInt8)') AS category,
    JSONExtract(payload, 'resource_id', 'Nullable(String)') AS resource_id,
    JSONExtract(payload, 'transport_capable', 'Nullable(Bool)') AS transport_capable,
    JSONExtract(payload, 'conveyed', 'Nullable(Bool)') AS conveyed,
    payload,
    kafka_partition,
    kafka_offset
FROM {db}.raw_ambulance_lines
COMMENT 'Reads the columns of raw_ambulance out of each JSON line inserted into raw_ambulance_lines';

CREATE TABLE IF NOT EXISTS {db}.raw_adt_lines
(
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)'
)
ENGINE = Null
COMMENT 'Insert point for scc.adt events: rows pass through raw_adt_lines_mv into raw_adt and are not kept here';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.raw_adt_lines_mv TO {db}.raw_adt AS
SELECT
    JSONExtractString(payload, 'event_id') AS event_id,
    JSONExtractString(payload, 'event_type') AS event_type,
    parseDateTime64BestEffort(JSONExtract(payload, 'occurred_at', 'Nullable(String)'), 3, 'UTC') AS occurred_at,
    JSONExtractString(payload, 'source') AS source,
    JSONExtractString(payload, 'org_code') AS org_code,
    JSONExtract(payload, 'site_code', 'Nullable(String)') AS site_code,
    JSONExtract(payload, 'schema_version', 'UInt8') AS schema_version,
    JSONExtractString(payload, 'spell_id') AS spell_id,
    JSONExtract(payload, 'patient_ref', 'Nullable(String)') AS patient_ref,
    JSONExtract(payload, 'ward_code', 'Nullable(String)') AS ward_code,
    JSONExtract(payload, 'bed_category', 'Nullable(String)') AS bed_category,
    JSONExtract(payload, 'escalation_bed', 'Nullable(Bool)') AS escalation_bed,
    JSONExtract(payload, 'admission_method', 'Nullable(String)') AS admission_method,
    JSONExtract(payload, 'age', 'Nullable(UInt8)') AS age,
    JSONExtract(payload, 'pathway', 'Nullable(UInt8)') AS pathway,
    JSONExtract(payload, 'destination', 'Nullable(String)') AS destination,
    payload,
    kafka_partition,
    kafka_offset
FROM {db}.raw_adt_lines
COMMENT 'Reads the columns of raw_adt out of each JSON line inserted into raw_adt_lines';

CREATE TABLE IF NOT EXISTS {db}.raw_discharge_lines
(
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)'
)
ENGINE = Null
COMMENT 'Insert point for scc.discharge events: rows pass through raw_discharge_lines_mv into raw_discharge and are not kept here';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.raw_discharge_lines_mv TO {db}.raw_discharge AS
SELECT
    JSONExtractString(payload, 'event_id') AS event_id,
    JSONExtractString(payload, 'event_type') AS event_type,
    parseDateTime64BestEffort(JSONExtract(payload, 'occurred_at', 'Nullable(String)'), 3, 'UTC') AS occurred_at,
    JSONExtractString(payload, 'source') AS source,
    JSONExtractString(payload, 'org_code') AS org_code,
    JSONExtract(payload, 'site_code', 'Nullable(String)') AS site_code,
    JSONExtract(payload, 'schema_version', 'UInt8') AS schema_version,
    JSONExtractString(payload, 'spell_id') AS spell_id,
    toDateOrNull(JSONExtract(payload, 'discharge_ready_date', 'Nullable(String)')) AS discharge_ready_date,
    JSONExtract(payload, 'pathway', 'Nullable(UInt8)') AS pathway,
    JSONExtract(payload, 'referral_id', 'Nullable(String)') AS referral_id,
    payload,
    kafka_partition,
    kafka_offset
FROM {db}.raw_discharge_lines
COMMENT 'Reads the columns of raw_discharge out of each JSON line inserted into raw_discharge_lines';

CREATE TABLE IF NOT EXISTS {db}.raw_opel_lines
(
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    payload String COMMENT 'canonical JSON of the event (schemas.events.dump_event)'
)
ENGINE = Null
COMMENT 'Insert point for scc.opel events: rows pass through raw_opel_lines_mv into raw_opel and are not kept here';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.raw_opel_lines_mv TO {db}.raw_opel AS
SELECT
    JSONExtractString(payload, 'event_id') AS event_id,
    JSONExtractString(payload, 'event_type') AS event_type,
    parseDateTime64BestEffort(JSONExtract(payload, 'occurred_at', 'Nullable(String)'), 3, 'UTC') AS occurred_at,
    JSONExtractString(payload, 'source') AS source,
    JSONExtractString(payload, 'org_code') AS org_code,
    JSONExtract(payload, 'site_code', 'Nullable(String)') AS site_code,
    JSONExtract(payload, 'schema_version', 'UInt8') AS schema_version,
    JSONExtract(payload, 'level', 'UInt8') AS level,
    payload,
    kafka_partition,
    kafka_offset
FROM {db}.raw_opel_lines
COMMENT 'Reads the columns of raw_opel out of each JSON line inserted into raw_opel_lines';

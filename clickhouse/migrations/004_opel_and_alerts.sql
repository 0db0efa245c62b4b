-- Declared OPEL levels (topic scc.opel, event opel.declared: docs/opel.md) and the alert log (topic scc.alerts).
-- Both idempotent like the other tables: redeliveries collapse on their keys.

CREATE TABLE IF NOT EXISTS {db}.raw_opel
(
    event_id String COMMENT 'idempotency key',
    event_type LowCardinality(String) COMMENT 'opel.declared',
    occurred_at DateTime64(3, 'UTC') COMMENT 'when the level was declared (UTC)',
    source LowCardinality(String) COMMENT 'sending system',
    org_code LowCardinality(String) COMMENT 'organisation declaring (the ICB code declares for the system)',
    site_code LowCardinality(Nullable(String)) COMMENT 'site the level is declared for, when not the organisation',
    schema_version UInt8 COMMENT 'event contract version',
    level UInt8 COMMENT 'declared OPEL level 1-4',
    payload String COMMENT 'canonical JSON of the event',
    kafka_partition Int32 COMMENT 'source partition; -1 when replayed from files',
    kafka_offset Int64 COMMENT 'source offset; -1 when replayed from files',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written',
    _keep UInt64 MATERIALIZED bitNot(toUInt64(toUnixTimestamp64Milli(ingested_at)))
        COMMENT 'ReplacingMergeTree version: the first copy survives merges'
)
ENGINE = ReplacingMergeTree(_keep)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, occurred_at, event_id)
COMMENT 'Topic scc.opel: declared OPEL levels';

CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id String COMMENT 'indicator|window|scope_type|scope_code|raised time: one alert from raise to resolve',
    state LowCardinality(String) COMMENT 'raised or resolved',
    indicator LowCardinality(String),
    window LowCardinality(String),
    scope_type LowCardinality(String),
    scope_code LowCardinality(String),
    value Float64 COMMENT 'the value that crossed (raised) or recovered (resolved)',
    threshold Float64 COMMENT 'the target in force',
    op LowCardinality(String) COMMENT 'the target comparison (>=, >, <=, <)',
    status LowCardinality(String) COMMENT 'status when the event happened',
    ts DateTime64(3, 'UTC') COMMENT 'event time of the crossing or recovery',
    raised_ts DateTime64(3, 'UTC') COMMENT 'event time the alert was raised',
    logged_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(logged_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (alert_id, state)
COMMENT 'Alert log: every raise and resolve (topic scc.alerts), one row per alert and state';

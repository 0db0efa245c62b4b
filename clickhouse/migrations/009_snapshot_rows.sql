-- Insert point for a replay's snapshot rows: RowBinary bytes (clickhouse.snapshot_blocks) go into a Null table whose
-- names are plain strings, and a materialized view writes them into indicator_snapshots.
--
-- Why: reading RowBinary straight into indicator_snapshots puts each of a row's five LowCardinality strings into its
-- column's dictionary one value at a time: ~2 of the ~3.5 µs a row that ClickHouse spent on a replay's insert (on chDB,
-- a year of one ICB's hourly snapshots is 3.7M rows, CPU taken from the evaluation beside it). Read as String first,
-- the view converts whole columns at once: ~1.5-2 µs a row in all (bench/analysis.md, "Twenty-third session").
-- The rows are the same: tests/unit/test_snapshot_blocks.py compares them with the columnar insert.
-- The Null table keeps nothing: a row exists only on its way through the view. Its columns are indicator_snapshots'
-- (a new column there needs its line here too, and the comparison test fails until it has one).

CREATE TABLE IF NOT EXISTS {db}.indicator_snapshot_rows
(
    ts DateTime64(3, 'UTC'),
    indicator String,
    `window` String,
    scope_type String,
    scope_code String,
    value Nullable(Float64),
    numerator Nullable(Float64),
    denominator Nullable(Float64),
    target Nullable(Float64),
    status String,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = Null
COMMENT 'Insert point for replayed snapshot rows: they pass through indicator_snapshot_rows_mv into indicator_snapshots and are not kept here';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.indicator_snapshot_rows_mv TO {db}.indicator_snapshots AS
SELECT
    ts,
    indicator,
    `window`,
    scope_type,
    scope_code,
    value,
    numerator,
    denominator,
    target,
    status,
    computed_at
FROM {db}.indicator_snapshot_rows
COMMENT 'Writes the rows inserted into indicator_snapshot_rows into indicator_snapshots, their names as LowCardinality';

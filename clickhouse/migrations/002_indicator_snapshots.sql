-- Indicator history: every snapshot the engine publishes on scc.indicators (schemas.indicators.IndicatorSnapshot).
-- Why ReplacingMergeTree(computed_at): a snapshot for the same indicator, window, scope and evaluation time T is
-- re-sent after a restart or a replay; the latest computation of it wins, so re-publishing is idempotent.
-- Query with FINAL (or argMax(..., computed_at)) for exact answers before a merge.

CREATE TABLE IF NOT EXISTS {db}.indicator_snapshots
(
    ts DateTime64(3, 'UTC') COMMENT 'evaluation time T (UTC): the value is as of T',
    indicator LowCardinality(String) COMMENT 'indicator id, e.g. ed_4h_pct (INDICATORS.md)',
    `window` LowCardinality(String) COMMENT 'live, today, last_60m, mtd or month',
    scope_type LowCardinality(String) COMMENT 'system, org or site',
    scope_code LowCardinality(String) COMMENT 'ICB, organisation or site code',
    value Nullable(Float64) COMMENT 'the value; NULL when undefined (denominator 0)',
    numerator Nullable(Float64) COMMENT 'published so that roll-ups are ratios of sums',
    denominator Nullable(Float64) COMMENT 'published so that roll-ups are ratios of sums',
    target Nullable(Float64) COMMENT 'target in force on T''s local date, if any',
    status LowCardinality(String) COMMENT 'green, amber, red or none',
    computed_at DateTime64(3, 'UTC') COMMENT 'when the engine computed it (ReplacingMergeTree version)'
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (indicator, `window`, scope_type, scope_code, ts)
COMMENT 'Indicator snapshots (topic scc.indicators): one row per indicator, window, scope and T after dedup';

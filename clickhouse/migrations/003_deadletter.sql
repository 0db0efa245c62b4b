-- Rejected inputs (topic scc.deadletter): every event that broke the contract, with its reason and raw bytes,
-- so that nothing is dropped silently (EVENTS.md). Why ReplacingMergeTree: a rejected message redelivered by Kafka
-- and rejected again at the same received_at collapses; distinct rejections of the same offset stay visible.

CREATE TABLE IF NOT EXISTS {db}.deadletter
(
    received_at DateTime64(3, 'UTC') COMMENT 'when the input was rejected',
    source_topic LowCardinality(String) COMMENT 'topic the input came from',
    `partition` Int32 COMMENT 'source partition; -1 when not from Kafka',
    `offset` Int64 COMMENT 'source offset; not from Kafka: -1, or a stable 63-bit key of the redacted input (HL7)',
    reason String COMMENT 'why it was rejected, naming the field (schemas.events.describe_error)',
    raw String COMMENT 'the raw bytes as received'
)
ENGINE = ReplacingMergeTree(received_at)
ORDER BY (source_topic, `partition`, `offset`)
COMMENT 'Rejected inputs with reason, source topic/partition/offset and raw bytes';

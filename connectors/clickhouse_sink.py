"""The ClickHouse sink: raw events, indicator snapshots and dead letters from Kafka into the store, in batches.

At-least-once and idempotent (DESIGN.md): offsets are committed only after a batch has landed, and every table
deduplicates on its key (``event_id``, the snapshot key, the dead letter's source offset), so a redelivery after a
crash changes nothing. When ClickHouse is unavailable the sink pauses its partitions, backs off and retries the same
batch: its buffer is bounded by one batch and consumption stops rather than grows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from pydantic import ValidationError

from clickhouse.store import DeadLetter, Store
from schemas.alerts import AlertEvent
from schemas.events import EventRejected, parse_event, topic_of
from schemas.indicators import IndicatorSnapshot
from schemas.settings import Settings
from streams.metrics import PipelineMetrics
from streams.topics import ALERTS, DEADLETTER, INDICATORS, INPUT_TOPICS

log = logging.getLogger(__name__)

SINK_GROUP = "scc-sink"
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass
class SinkStats:
    """Counters the sink keeps for progress lines and, later, metrics."""

    events: int = 0
    snapshots: int = 0
    dead_letters: int = 0
    alerts: int = 0
    skipped_invalid: int = 0
    batches: int = 0
    failed_writes: int = 0
    last_batch_seconds: float = 0.0


@dataclass
class _Batch:
    events: dict[str, list] = field(default_factory=dict)
    snapshots: list[IndicatorSnapshot] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    rows: int = 0
    opened: float = field(default_factory=time.monotonic)


class ClickHouseSink:
    """Consume the canonical topics, ``scc.indicators``, ``scc.alerts`` and ``scc.deadletter``; write them to the store."""

    def __init__(
        self,
        settings: Settings,
        store_factory: Callable[[], Store],
        *,
        batch_rows: int = 20_000,
        flush_interval: float = 1.0,
        group_id: str = SINK_GROUP,
        status_file: Path | None = None,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.store_factory = store_factory
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.group_id = group_id
        self.status_file = status_file
        self.stats = SinkStats()
        self.metrics = metrics
        self._store: Store | None = None
        self._batch = _Batch()

    def _add(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        batch = self._batch
        if topic == INDICATORS:
            try:
                batch.snapshots.append(IndicatorSnapshot.model_validate_json(value or b""))
            except ValidationError:
                self.stats.skipped_invalid += 1
                return
        elif topic == ALERTS:
            try:
                batch.alerts.append(AlertEvent.model_validate_json(value or b""))
            except ValidationError:
                self.stats.skipped_invalid += 1
                return
        elif topic == DEADLETTER:
            try:
                record = orjson.loads(value or b"")
                batch.dead_letters.append(
                    DeadLetter(
                        received_at=dt.datetime.fromisoformat(record["received_at"]),
                        source_topic=record["source_topic"],
                        partition=int(record["partition"]),
                        offset=int(record["offset"]),
                        reason=record["reason"],
                        raw=base64.b64decode(record["raw_b64"]),
                    )
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.stats.skipped_invalid += 1
                return
        else:
            try:
                event = parse_event(value or b"")
                if topic_of(event) != topic:  # would not fit the topic's raw table: the write would fail forever
                    raise EventRejected(f"event_type: {event.event_type!r} does not belong on topic {topic}")
            except EventRejected:
                self.stats.skipped_invalid += 1  # the stream worker dead-letters it with the reason
                return
            batch.events.setdefault(topic, []).append((event, partition, offset))
        batch.rows += 1

    def _due(self) -> bool:
        batch = self._batch
        return batch.rows >= self.batch_rows or (
            batch.rows > 0 and time.monotonic() - batch.opened >= self.flush_interval
        )

    def _write(self, batch: _Batch) -> None:
        if self._store is None:
            self._store = self.store_factory()
        for topic, items in batch.events.items():
            self._store.insert_events(topic, items)
        if batch.snapshots:
            self._store.insert_snapshots(batch.snapshots)
        if batch.dead_letters:
            self._store.insert_deadletters(batch.dead_letters)
        if batch.alerts:
            self._store.insert_alerts(batch.alerts)

    async def _flush(self, consumer: AIOKafkaConsumer) -> None:
        """Write the batch, retrying with backoff (partitions paused meanwhile); then commit offsets."""
        batch, self._batch = self._batch, _Batch()
        if batch.rows == 0:
            return
        delay = BACKOFF_START_S
        paused = False
        while True:
            started = time.monotonic()
            try:
                await asyncio.to_thread(self._write, batch)
                break
            except Exception as exc:  # any store failure: keep the batch, back off, retry
                self.stats.failed_writes += 1
                if self.metrics:
                    self.metrics.sink_failure()
                log.warning("store write failed (%s); retrying in %.1fs", exc, delay)
                self._drop_store()
                if not paused:
                    consumer.pause(*consumer.assignment())
                    paused = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        if paused:
            consumer.resume(*consumer.assignment())
        self.stats.last_batch_seconds = time.monotonic() - started
        self.stats.batches += 1
        self.stats.events += sum(len(v) for v in batch.events.values())
        self.stats.snapshots += len(batch.snapshots)
        self.stats.dead_letters += len(batch.dead_letters)
        self.stats.alerts += len(batch.alerts)
        if self.metrics:
            rows = {topic: len(items) for topic, items in batch.events.items()}
            rows |= {INDICATORS: len(batch.snapshots), DEADLETTER: len(batch.dead_letters), ALERTS: len(batch.alerts)}
            self.metrics.sink_batch(self.stats.last_batch_seconds, rows)
        await consumer.commit()
        self._write_status()

    def _write_status(self) -> None:
        """Publish the counters atomically (``scc stack status`` and the integration tests read them)."""
        if self.status_file is None:
            return
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(asdict(self.stats)))
        tmp.replace(self.status_file)

    def _drop_store(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                self._store.close()
            self._store = None

    async def run(self, stop: asyncio.Event) -> SinkStats:
        """Consume until ``stop`` is set; flush and commit what is buffered before returning."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            rebalance_timeout_ms=6000,
            max_poll_interval_ms=600_000,
            **self.settings.aiokafka_security(),
        )
        sink = self

        class _FlushOnRevoke(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: set) -> None:
                await sink._flush(consumer)
                if sink.metrics:
                    for tp in revoked:
                        sink.metrics.forget_partition(sink.group_id, tp.topic, tp.partition)

            async def on_partitions_assigned(self, assigned: object) -> None:
                return None

        consumer.subscribe([*INPUT_TOPICS, INDICATORS, ALERTS, DEADLETTER], listener=_FlushOnRevoke())
        await consumer.start()
        try:
            while not stop.is_set():
                records = await consumer.getmany(timeout_ms=200, max_records=self.batch_rows)
                for tp, messages in records.items():
                    for m in messages:
                        self._add(tp.topic, tp.partition, m.offset, m.value)
                    if self.metrics:
                        self.metrics.events_in(tp.topic, len(messages))
                if self.metrics and records:
                    await self.metrics.record_consumer_lag(consumer, self.group_id)
                if self._due():
                    await self._flush(consumer)
            await self._flush(consumer)
        finally:
            await consumer.stop()
            self._drop_store()
        return self.stats

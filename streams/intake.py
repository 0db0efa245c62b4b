"""Stage 1 of the worker: the canonical input topics, read in batches by a plain aiokafka consumer.

Each batch is validated record by record (rejects go to ``scc.deadletter`` with the reason and the raw bytes), folded
into per-entity state (:mod:`streams.entities`, one tracker per partition number: the input topics are
co-partitioned by entity id) and the resulting fact updates are sent to ``scc.facts`` (one batch record per
partition, with the event clock). Offsets are committed only once every record the batch caused has been delivered.

Why not a Faust agent, as stage 2 is: Faust's per-message path (a task pair and an ``asyncio.wait`` per record, a
channel hop, an ``Event`` wrapper) was about half of the worker's time (docs/performance.md), and its rebalance
handling has known gaps where prefetched records are skipped (faust-streaming issues #216, #221). A consumer that
hands over whole fetches and commits what it has processed is both faster and easier to reason about.

State recovery: a worker assigned a partition number it holds no state for (start, restart, rebalance) rebuilds it
from the retained input log up to the group's committed offsets while live processing carries on from them (fact
updates carry their evidence, so stage 2 keeps the best-informed fact whatever order they arrive in).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from schemas import events as ev
from schemas.config import PlatformConfig
from schemas.events import EventRejected, parse_event
from schemas.settings import Settings
from streams.entities import EntityTracker, FactUpdate
from streams.facts import batch_to_wire
from streams.metrics import PipelineMetrics, consumer_lags
from streams.orphans import orphan_counter, stable_key
from streams.topics import DEADLETTER, FACTS, INPUT_TOPICS

log = logging.getLogger(__name__)

BATCH_MAX = 5000
"""Records per fetch handed to the stage (a bigger batch amortises the per-batch sends and commit)."""
FETCH_MAX_WAIT_MS = 50
"""Longest a fetch waits for data. Tansu does not answer a waiting fetch when data arrives (measured: 0.19 s median
with 1,500 ms, 9 ms with 50 ms), so a long wait costs freshness; on real Kafka it only means more empty fetches."""
REBUILD_IDLE_POLLS = 6
FACTS_PER_RECORD = 500
"""Fact updates per ``scc.facts`` record (~150 KB typically); a record over ``FACTS_RECORD_MAX_BYTES`` is split."""
FACTS_RECORD_MAX_BYTES = 900_000
"""Under the producer's 1,000,000-byte request limit."""
RETRY_START_S = 0.5
RETRY_MAX_S = 10.0
LAG_EVERY_S = 2.0
GROUP_TIMEOUT_MS = 6_000
"""Session and rebalance timeout of the worker group (as Faust's stage 2 uses): a dead worker's partitions move
within 6 s, and Tansu completes a join in about half the rebalance timeout (3 s here; 5 s with 10 s)."""


class Producer(Protocol):
    """The part of Faust's producer the stage uses: ``send`` enqueues and returns the delivery future."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None, timestamp: float | None,
        headers: Any,
    ) -> Awaitable[Any]: ...  # fmt: skip


def dead_letter_record(reason: str, topic: str, partition: int, offset: int, raw: bytes | None) -> bytes:
    """The ``scc.deadletter`` record: why, where from, and the raw bytes (base64) so nothing is lost."""
    return orjson.dumps(
        {
            "reason": reason,
            "source_topic": topic,
            "partition": partition,
            "offset": offset,
            "raw_b64": base64.b64encode(raw or b"").decode(),
            "received_at": dt.datetime.now(dt.UTC),
        }
    )


def parse_record(raw: bytes | None, topic: str, timestamp: float | None) -> ev.Envelope:
    """Validate one input record; raise :class:`EventRejected` with the reason (never anything else).

    The future bound is measured from the record's own timestamp (seconds), capped by the wall clock, so a rebuild
    long afterwards decides exactly as live processing did and a producer cannot widen it with a future timestamp.
    """
    now = dt.datetime.now(dt.UTC)
    if timestamp is not None and timestamp > 0:
        now = min(now, dt.datetime.fromtimestamp(timestamp, dt.UTC))
    try:
        event = parse_event(raw, now=now)
    except EventRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - a decoder bug must cost one record (dead-lettered), not the worker
        raise EventRejected(f"event: could not be decoded ({type(exc).__name__})") from None
    if ev.topic_of(event) != topic:
        raise EventRejected(f"event_type: {event.event_type!r} does not belong on topic {topic}")
    return event


def record_seconds(record: ConsumerRecord) -> float | None:
    """A record's timestamp in seconds (aiokafka gives milliseconds)."""
    return record.timestamp / 1000 if record.timestamp else None


def ingest_quietly(tracker: EntityTracker, records: list[ConsumerRecord]) -> None:
    """Fold retained events into the tracker without emitting (bad ones were dead-lettered the first time)."""
    events = []
    for record in records:
        try:
            event = parse_record(record.value, record.topic, record_seconds(record))
            tracker.check_known(event)
        except EventRejected:
            continue
        events.append(event)
    tracker.ingest_many(events, report=False, known=True)


async def replay_partitions(
    settings: Settings, group_id: str, tps: list[TopicPartition], handle: Callable[[list[ConsumerRecord]], None]
) -> int:
    """Read partitions from their first retained offset up to the group's committed offsets; return records read.

    Stops at the committed offsets (what the group had already processed) rather than at the log end, because Tansu
    reports wrong end offsets for batched producers (INFRA.md caveat 1); live processing carries on from there.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_servers, **settings.aiokafka_security())
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id, partitions=tps)
    finally:
        await admin.close()
    stop_at = {tp: meta.offset for tp, meta in committed.items() if meta is not None and meta.offset > 0}
    if not stop_at:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_servers, enable_auto_commit=False, group_id=None,
        **settings.aiokafka_security(),
    )  # fmt: skip
    await consumer.start()
    read = 0
    try:
        consumer.assign(list(stop_at))
        await consumer.seek_to_beginning(*stop_at)
        idle = 0
        while idle < REBUILD_IDLE_POLLS:
            positions = {tp: await consumer.position(tp) for tp in stop_at}
            if all(positions[tp] >= stop for tp, stop in stop_at.items()):
                break
            batch = await consumer.getmany(timeout_ms=500, max_records=BATCH_MAX)
            records = [
                m
                for messages in batch.values()
                for m in messages
                if m.offset < stop_at[TopicPartition(m.topic, m.partition)]
            ]
            idle = 0 if batch else idle + 1
            if records:
                handle(records)
                read += len(records)
    finally:
        await consumer.stop()
    return read


class _Outbox:
    """Records a batch causes, sent together; :meth:`deliver` returns once every one is on the broker."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._records: list[tuple[str, bytes | None, bytes]] = []

    def add(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._records.append((topic, key, value))

    async def deliver(self) -> None:
        """Send everything; resend what failed, backing off, until all is delivered (consumption waits meanwhile:
        the offsets are committed only afterwards, so nothing is lost if the worker dies here)."""
        pending = self._records
        delay = RETRY_START_S
        while pending:
            futures = [await self._producer.send(t, k, v, None, None, None) for t, k, v in pending]
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [record for record, result in zip(pending, results, strict=True) if isinstance(result, Exception)]
            if failed:
                error = next(r for r in results if isinstance(r, Exception))
                log.warning("%d of %d records not delivered (%r); retrying in %.1fs", len(failed), len(pending),
                            error, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            pending = failed
        self._records = []


class EntityStage:
    """Per-partition entity state for the partitions this worker holds, fed by :meth:`run`'s consumer."""

    def __init__(
        self,
        settings: Settings,
        config: PlatformConfig,
        metrics: PipelineMetrics,
        producer: Callable[[], Awaitable[Producer]],
    ) -> None:
        self.settings = settings
        self.icb = config.icb
        self.metrics = metrics
        self.group_id = settings.app_id
        self._producer = producer
        self.trackers: dict[int, EntityTracker] = {}
        self.rebuilding: set[int] = set()
        """Partitions whose retained events are still being read back: no orphan sweeps (openers may be missing)."""
        self._set_aside: dict[int, list[tuple[ev.Envelope, str]]] = {}
        self._orphan_after = dt.timedelta(minutes=settings.orphan_after_minutes)
        self._orphans_total = orphan_counter(metrics.registry)
        self._tasks: set[asyncio.Task[None]] = set()
        self._lag_tps: set[TopicPartition] = set()

    # --- partitions -----------------------------------------------------------------------------------------------

    def _new_tracker(self, partition: int) -> EntityTracker:
        def on_reject(event: ev.Envelope, reason: str) -> None:
            self._set_aside.setdefault(partition, []).append((event, reason))

        retention = dt.timedelta(hours=self.settings.closed_entity_retention_hours)
        tracker = self.trackers[partition] = EntityTracker(self.icb, on_reject=on_reject, retention=retention)
        return tracker

    def hold(self, assigned: Iterable[TopicPartition]) -> list[int]:
        """Keep the state of partition numbers still held, drop the others, and return the new ones to rebuild."""
        numbers = {tp.partition for tp in assigned if tp.topic in INPUT_TOPICS}
        for partition in set(self.trackers) - numbers:
            del self.trackers[partition]
            self._set_aside.pop(partition, None)
            self.rebuilding.discard(partition)
        new = sorted(numbers - set(self.trackers))
        for partition in new:
            self._new_tracker(partition)
            self.rebuilding.add(partition)
        return new

    async def rebuild(self, partition: int) -> None:
        """Refill a partition's entity state from its retained input log, then re-send every fact."""
        tracker = self.trackers[partition]
        tps = [TopicPartition(topic, partition) for topic in INPUT_TOPICS]
        try:
            read = await replay_partitions(
                self.settings, self.group_id, tps, lambda records: ingest_quietly(tracker, records)
            )
        finally:
            self.rebuilding.discard(partition)
        if self.trackers.get(partition) is not tracker:
            return  # the partition moved on meanwhile: its state went with it
        outbox = _Outbox(await self._producer())
        self._add_facts(outbox, tracker.current(), tracker.clock)
        await outbox.deliver()
        log.info("rebuilt entity state of partition %d from %d retained events", partition, read)

    def _start_rebuilds(self, partitions: list[int]) -> None:
        for partition in partitions:
            task = asyncio.create_task(self.rebuild(partition))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- records --------------------------------------------------------------------------------------------------

    def _add_dead_letter(self, outbox: _Outbox, reason: str, topic: str, partition: int, offset: int,
                         raw: bytes | None) -> None:  # fmt: skip
        outbox.add(DEADLETTER, None, dead_letter_record(reason, topic, partition, offset, raw))
        self.metrics.dead_letter(topic)

    def _add_facts(self, outbox: _Outbox, updates: list[FactUpdate], clock: dt.datetime | None) -> None:
        """Fact updates and the sender's event clock as batch records (one per ``FACTS_PER_RECORD`` updates, one
        clock-only record when there is none), keyed by the ICB."""
        if clock is None:
            return  # nothing accepted yet: no fact and no clock to tell
        key = self.icb.code.encode()
        entries = [(u.kind, u.entity_id, u.fact, u.evidence) for u in updates]
        chunks = [entries[i : i + FACTS_PER_RECORD] for i in range(0, max(len(entries), 1), FACTS_PER_RECORD)]
        while chunks:
            chunk = chunks.pop(0)
            value = batch_to_wire(chunk, clock)
            if len(value) > FACTS_RECORD_MAX_BYTES and len(chunk) > 1:  # unusually large facts: halve and retry
                chunks[:0] = [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
                continue
            outbox.add(FACTS, key, value)

    async def process(self, records: list[ConsumerRecord]) -> None:
        """Validate, fold and send everything a batch of input records causes; return once it is delivered."""
        outbox = _Outbox(await self._producer())
        by_partition: dict[int, list[ev.Envelope]] = {}
        consumed: dict[str, int] = {}
        origin: dict[int, tuple[int, bytes | None]] = {}  # id(event) -> (offset, raw bytes), for this batch
        for record in records:
            consumed[record.topic] = consumed.get(record.topic, 0) + 1
            tracker = self.trackers.get(record.partition)
            if tracker is None:
                continue  # revoked while in flight: the new owner reads it from the committed offset
            try:
                event = parse_record(record.value, record.topic, record_seconds(record))
                tracker.check_known(event)
                tracker.admit(event)  # an event for an entity released after closing (docs/definitions.md)
            except EventRejected as exc:
                self._add_dead_letter(outbox, exc.reason, record.topic, record.partition, record.offset, record.value)
                continue
            origin[id(event)] = (record.offset, record.value)
            by_partition.setdefault(record.partition, []).append(event)
        for topic, n in consumed.items():
            self.metrics.events_in(topic, n)
        for partition, events in by_partition.items():
            tracker = self.trackers[partition]
            updates = tracker.ingest_many(events, known=True)
            for event, reason in self._set_aside.pop(partition, []):
                offset, raw = origin.get(id(event), (None, None))
                if offset is None:  # held from an earlier batch: no record at hand, a stable key instead
                    self._add_dead_letter(outbox, reason, ev.topic_of(event), -1,
                                          stable_key(f"set-aside:{event.event_id}"), ev.dump_event(event))  # fmt: skip
                else:
                    self._add_dead_letter(outbox, reason, ev.topic_of(event), partition, offset, raw)
            self._add_facts(outbox, updates, tracker.clock)
            if partition not in self.rebuilding:  # a half-rebuilt state would see openers as missing
                for orphan in tracker.orphans(self._orphan_after):
                    self._add_dead_letter(outbox, orphan.reason(), orphan.topic, -1, orphan.key(), orphan.summary())
                    self._orphans_total.labels(orphan.kind).inc()
                tracker.sweep()  # closed entities past the retention: at most hourly, O(released)
        self.metrics.entity_state(self.trackers.values())
        await outbox.deliver()

    def note_read_to_end(self, lags: dict[TopicPartition, int]) -> None:
        """Tell each partition's tracker which of its input topics it has read to their end (lag 0 at the last
        fetch): those do not hold its releases back (:attr:`streams.entities.EntityTracker.read_to_end`)."""
        ends: dict[int, set[str]] = {}
        for tp, lag in lags.items():
            if lag <= 0 and tp.topic in INPUT_TOPICS:
                ends.setdefault(tp.partition, set()).add(tp.topic)
        for partition, tracker in self.trackers.items():
            tracker.read_to_end = frozenset(ends.get(partition, ()))

    # --- the consumer ---------------------------------------------------------------------------------------------

    def consumer(self) -> AIOKafkaConsumer:
        """The input consumer: the worker group, manual commits, range assignment (co-partitioned topics give the
        same partition numbers of every topic to the same worker)."""
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=GROUP_TIMEOUT_MS,
            heartbeat_interval_ms=1_000,
            rebalance_timeout_ms=GROUP_TIMEOUT_MS,
            **self.settings.aiokafka_security(),
        )

    async def run(self) -> None:
        """Consume until cancelled: fetch, process, deliver, commit."""
        consumer = self.consumer()
        stage = self

        class Rebalance(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                pass  # offsets are committed after every batch; state is kept if the partition comes back

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                stage._start_rebuilds(stage.hold(assigned))
                for tp in set(stage._lag_tps) - set(assigned):
                    stage.metrics.forget_partition(stage.group_id, tp.topic, tp.partition)
                stage._lag_tps = set(assigned)

        consumer.subscribe(list(INPUT_TOPICS), listener=Rebalance())
        await consumer.start()
        last_lag = 0.0
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=FETCH_MAX_WAIT_MS, max_records=BATCH_MAX)
                records = [record for batch in fetched.values() for record in batch]
                if records:
                    self.note_read_to_end(await consumer_lags(consumer))  # after the fetch: these records are read
                    await self.process(records)
                    await self._commit(consumer, fetched)
                if time.monotonic() - last_lag > LAG_EVERY_S:
                    last_lag = time.monotonic()
                    await self.metrics.record_consumer_lag(consumer, self.group_id)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Commit past the processed records of the partitions still held (a commit refused mid-rebalance only
        means those records are read again: every step downstream is idempotent)."""
        held = consumer.assignment()
        offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch and tp in held}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (KafkaError, AssertionError) as exc:
            log.info("offset commit refused (%r): the records will be read again", exc)

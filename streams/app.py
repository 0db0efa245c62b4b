"""The Faust app: two agents around the pure engine, and a timer that publishes snapshots.

- ``track_entities`` reads the four canonical topics (co-partitioned, keyed by attendance / incident / spell id, so
  every event of an entity meets the same state), validates each record (rejects go to ``scc.deadletter`` with the
  reason and the raw bytes), folds events into facts (:mod:`streams.entities`) and sends fact updates to
  ``scc.facts`` keyed by ICB.
- ``aggregate`` reads ``scc.facts`` and keeps the ICB's facts (:mod:`streams.aggregator`).
- ``publish_snapshots`` sends every indicator to ``scc.indicators`` when something changed (at most every
  ``snapshot_interval`` s) and at least every ``snapshot_heartbeat`` s, and the alerts they raise or resolve
  (:mod:`streams.alerts`, with hysteresis) to ``scc.alerts``.

State lives in plain engine objects per partition, not in Faust tables: Tansu's end offsets are wrong for batched
producers (INFRA.md caveat 1), which breaks changelog recovery. Instead, a worker that is assigned a partition it
holds no state for (a restart, a rebalance) rebuilds it from the retained input log — the events are the source of
truth — reading up to the group's committed offsets, while live processing carries on; fact updates carry their
evidence (event count), so stage 2 keeps the best-informed fact whatever order they arrive in.
Processing is at-least-once (Tansu cannot do idempotent producers, caveat 2); every step downstream is idempotent.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas import events as ev
from schemas.config import PlatformConfig, load_config
from schemas.events import EventRejected, parse_event
from schemas.settings import Settings
from streams.aggregator import Aggregator
from streams.alerts import AlertTracker
from streams.entities import EntityTracker, FactUpdate
from streams.facts import FACT_TYPES, from_wire, to_wire
from streams.metrics import PipelineMetrics, default_metrics
from streams.orphans import orphan_counter, stable_key
from streams.topics import ALERTS, DEADLETTER, FACTS, INDICATORS, INPUT_TOPICS

log = logging.getLogger(__name__)

BATCH_MAX = 5000
BATCH_WITHIN_S = 0.05
REBUILD_IDLE_POLLS = 6
CLOCK_KIND = "clock"


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


def create_app(settings: Settings, config: PlatformConfig, metrics: PipelineMetrics | None = None) -> faust.App:
    """Build the Faust app for one ICB configuration (metrics: the process's Prometheus metrics by default)."""
    metrics = metrics if metrics is not None else default_metrics(config.icb)
    datadir = (settings.data_dir / "faust").resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.kafka_servers],
        broker_credentials=settings.faust_credentials(),
        store="memory://",
        processing_guarantee="at_least_once",
        topic_allow_declare=False,  # topics are created explicitly (streams.topics)
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=6,
        web_enabled=False,
        datadir=str(datadir),
    )
    icb = config.icb
    raw = {"value_serializer": "raw", "key_serializer": "raw"}
    inputs = app.topic(*INPUT_TOPICS, **raw)
    facts_topic = app.topic(FACTS, **raw)
    indicators_topic = app.topic(INDICATORS, **raw)
    deadletter_topic = app.topic(DEADLETTER, **raw)
    alerts_topic = app.topic(ALERTS, **raw)
    trackers: dict[int, EntityTracker] = {}
    aggregators: dict[int, Aggregator] = {}
    alert_trackers: dict[int, AlertTracker] = {}
    building_entities: set[int] = set()
    building_aggregates: set[int] = set()
    recovering: set[int] = set()
    tasks: list[asyncio.Task[None]] = []
    emitted: dict[int, tuple[int, float]] = {}  # partition -> (aggregator version, monotonic time) last published

    orphan_after = dt.timedelta(minutes=settings.orphan_after_minutes)
    orphans_total = orphan_counter(metrics.registry)
    rebuilding: set[int] = set()
    set_aside: dict[int, list[tuple[ev.Envelope, str]]] = {}  # partition -> events the tracker excluded, why

    def tracker_of(partition: int) -> EntityTracker:
        tracker = trackers.get(partition)
        if tracker is None:
            tracker = trackers[partition] = EntityTracker(
                icb, on_reject=lambda event, reason: set_aside.setdefault(partition, []).append((event, reason))
            )
        return tracker

    async def send_dead_letter(reason: str, topic: str, partition: int, offset: int, raw: bytes | None) -> None:
        await deadletter_topic.send(value=dead_letter_record(reason, topic, partition, offset, raw))
        metrics.dead_letter(topic)

    async def send_fact(update: FactUpdate, tracker: EntityTracker) -> None:
        value = to_wire(update.kind, update.entity_id, update.fact, tracker.clock, update.evidence)  # type: ignore[arg-type]
        await facts_topic.send(key=icb.code.encode(), value=value)

    async def rebuild_entities(partition: int) -> None:
        """Refill a partition's entity state from its retained input log, then re-send every fact."""
        tracker = tracker_of(partition)
        tps = [TopicPartition(topic, partition) for topic in INPUT_TOPICS]
        rebuilding.add(partition)  # already added when scheduled; kept here for direct callers
        try:
            read = await replay_partitions(
                settings, app.conf.id, tps, lambda records: _ingest_quietly(tracker, records)
            )
        finally:
            rebuilding.discard(partition)
        for update in tracker.current():
            await send_fact(update, tracker)
        if tracker.clock is not None:
            await facts_topic.send(key=icb.code.encode(), value=orjson.dumps([CLOCK_KIND, "", None, tracker.clock]))
        log.info("rebuilt entity state of partition %d from %d retained events", partition, read)

    async def rebuild_aggregate(partition: int) -> None:
        """Refill an aggregator from the retained fact log (evidence makes the order irrelevant)."""
        aggregator = aggregators.setdefault(partition, Aggregator(config))
        recovering.add(partition)
        try:
            read = await replay_partitions(
                settings,
                app.conf.id,
                [TopicPartition(FACTS, partition)],
                lambda records: _apply_facts(aggregator, [r.value for r in records]),
            )
        finally:
            recovering.discard(partition)
        log.info("rebuilt aggregate state of partition %d from %d retained facts", partition, read)

    @app.on_partitions_assigned.connect
    async def rebuild_assigned(sender: faust.App, assigned: set[Any], **_: Any) -> None:
        """A worker that gains a partition it holds no state for rebuilds that state from the retained logs."""
        for tp in assigned:
            if tp.topic in INPUT_TOPICS and tp.partition not in building_entities:
                building_entities.add(tp.partition)
                rebuilding.add(tp.partition)  # no orphan sweeps until the retained events are back
                tasks.append(asyncio.create_task(rebuild_entities(tp.partition)))
            elif tp.topic == FACTS and tp.partition not in building_aggregates:
                building_aggregates.add(tp.partition)
                tasks.append(asyncio.create_task(rebuild_aggregate(tp.partition)))

    @app.agent(inputs, name="track_entities")
    async def track_entities(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
            by_partition: dict[int, list[Any]] = {}
            consumed: dict[str, int] = {}
            origin: dict[int, tuple[int, bytes]] = {}  # id(event) -> (offset, raw bytes), for this batch
            for item in batch:
                msg = item.message
                consumed[msg.topic] = consumed.get(msg.topic, 0) + 1
                try:
                    event = _parse_record(item.value, msg.topic, msg.timestamp)
                    tracker = tracker_of(msg.partition)
                    tracker.check_known(event)
                except EventRejected as exc:
                    await send_dead_letter(exc.reason, msg.topic, msg.partition, msg.offset, item.value)
                    continue
                origin[id(event)] = (msg.offset, item.value)
                by_partition.setdefault(msg.partition, []).append(event)
            for topic, n in consumed.items():
                metrics.events_in(topic, n)
            for partition, events in by_partition.items():
                tracker = trackers[partition]
                updates = tracker.ingest_many(events)
                for event, reason in set_aside.pop(partition, []):
                    offset, raw = origin.get(id(event), (None, None))
                    if offset is None:  # held from an earlier batch: no record at hand, a stable key instead
                        await send_dead_letter(reason, ev.topic_of(event), -1, stable_key(f"set-aside:{event.event_id}"),
                                               ev.dump_event(event))  # fmt: skip
                    else:
                        await send_dead_letter(reason, ev.topic_of(event), partition, offset, raw)
                for update in updates:
                    await send_fact(update, tracker)
                await facts_topic.send(key=icb.code.encode(), value=orjson.dumps([CLOCK_KIND, "", None, tracker.clock]))
                if partition not in rebuilding:  # a half-rebuilt state would see openers as missing
                    for orphan in tracker.orphans(orphan_after):
                        await send_dead_letter(orphan.reason(), orphan.topic, -1, orphan.key(), orphan.summary())
                        orphans_total.labels(orphan.kind).inc()

    @app.agent(facts_topic, name="aggregate")
    async def aggregate(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
            for item in batch:
                aggregator = aggregators.get(item.message.partition)
                if aggregator is None:
                    aggregator = aggregators[item.message.partition] = Aggregator(config)
                _apply_facts(aggregator, [item.value])

    @app.timer(interval=settings.snapshot_interval, name="publish_snapshots")
    async def publish_snapshots() -> None:
        now = time.monotonic()
        for partition, aggregator in list(aggregators.items()):
            last_version, last_time = emitted.get(partition, (-1, 0.0))
            if aggregator.clock is None or partition in recovering:
                continue
            if aggregator.version == last_version and now - last_time < settings.snapshot_heartbeat:
                continue
            emitted[partition] = (aggregator.version, now)
            snapshots = aggregator.snapshot()
            for snap in snapshots:
                key = f"{snap.indicator}|{snap.window}|{snap.scope_type}|{snap.scope_code}".encode()
                await indicators_topic.send(key=key, value=snap.model_dump_json().encode())
            metrics.snapshots_published(snapshots)
            tracker = alert_trackers.setdefault(partition, AlertTracker(config))
            for alert in tracker.update(snapshots):
                await alerts_topic.send(key=alert.alert_id.encode(), value=alert.model_dump_json().encode())

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: faust.App, revoked: set[Any], **_: Any) -> None:
        """A partition that moved to another worker takes its state with it; keep none that would go stale."""
        for tp in revoked:
            if tp.topic in INPUT_TOPICS:
                trackers.pop(tp.partition, None)
                set_aside.pop(tp.partition, None)
                building_entities.discard(tp.partition)
            elif tp.topic == FACTS:
                building_aggregates.discard(tp.partition)
                aggregators.pop(tp.partition, None)
                alert_trackers.pop(tp.partition, None)
                emitted.pop(tp.partition, None)

    return app


def _parse_record(raw: bytes | None, topic: str, timestamp: float | None) -> ev.Envelope:
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


def _ingest_quietly(tracker: EntityTracker, records: list[ConsumerRecord]) -> None:
    """Fold retained events into the tracker without emitting (bad ones were dead-lettered the first time)."""
    events = []
    for record in records:
        try:
            event = _parse_record(record.value, record.topic, record.timestamp / 1000 if record.timestamp else None)
            tracker.check_known(event)
        except EventRejected:
            continue
        events.append(event)
    tracker.ingest_many(events, report=False)


FACT_DECODING_ERRORS = (ValueError, TypeError, IndexError, KeyError)
"""What :func:`streams.facts.from_wire` raises on a record it cannot read (tests/unit/test_fuzz_decoders.py)."""


def _apply_facts(aggregator: Aggregator, raws: list[bytes | None]) -> None:
    """Apply fact updates and clock ticks; a record that cannot be read is logged and skipped (only workers write
    ``scc.facts``, so it is a bug or tampering, and one bad record must not stop the aggregate)."""
    for raw in raws:
        try:
            record = orjson.loads(raw or b"")
            if record[0] == CLOCK_KIND:
                tick = dt.datetime.fromisoformat(record[3])
                if tick.tzinfo is None:
                    raise ValueError("naive clock")
                aggregator.observe(tick)
                continue
            kind, entity_id, fact, clock, evidence = from_wire(raw or b"")
            if (
                kind not in FACT_TYPES
                or clock.tzinfo is None
                or (fact is not None and type(fact) is not FACT_TYPES[kind])
            ):
                raise ValueError(f"not a fact update of a known kind: {str(kind)[:20]!r}")
        except FACT_DECODING_ERRORS as exc:
            log.warning("skipped an unreadable scc.facts record (%s: %s)", type(exc).__name__, str(exc)[:200])
            continue
        aggregator.apply(kind, entity_id, fact, evidence)
        aggregator.observe(clock)


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
        bootstrap_servers=settings.kafka_servers,
        enable_auto_commit=False,
        group_id=None,
        **settings.aiokafka_security(),
    )
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


app = create_app(Settings(), load_config(Settings().icb_file))

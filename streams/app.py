"""The Faust app: two agents around the pure engine, and a timer that publishes snapshots.

- ``track_entities`` reads the four canonical topics (co-partitioned, keyed by attendance / incident / spell id, so
  every event of an entity meets the same state), validates each record (rejects go to ``scc.deadletter`` with the
  reason and the raw bytes), folds events into facts (:mod:`streams.entities`) and sends fact updates to
  ``scc.facts`` keyed by ICB, one batch record per partition and input batch (with the event clock).
- ``aggregate`` reads ``scc.facts`` and keeps the ICB's facts (:mod:`streams.aggregator`).
- ``publish_snapshots`` sends every indicator to ``scc.indicators`` when something changed (at most every
  ``snapshot_interval`` s, start to start, looked at every 50 ms) and at least every ``snapshot_heartbeat`` s,
  and the alerts they raise or resolve (:mod:`streams.alerts`, with hysteresis) to ``scc.alerts``.

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
from streams.facts import BATCH_KIND, FACT_TYPES, batch_to_wire, decode_entry, from_wire
from streams.metrics import PipelineMetrics, default_metrics
from streams.orphans import orphan_counter, stable_key
from streams.topics import ALERTS, DEADLETTER, FACTS, INDICATORS, INPUT_TOPICS

log = logging.getLogger(__name__)

BATCH_MAX = 5000
BATCH_WITHIN_S = 0.05
REBUILD_IDLE_POLLS = 6
CLOCK_KIND = "clock"
PRODUCER_LINGER_S = 0.005
"""Fewer, fuller produce requests (Faust's default sends at once); 5 ms is small against the 1 s freshness goal."""
FETCH_MAX_WAIT_MS = 50
"""Longest a worker's fetch waits for data. Faust fixes 1,500 ms, and Tansu does not answer a waiting fetch when
data arrives (measured: a record waits 0.19 s median, up to 0.56 s, with 1,500 ms; 9 ms median with 50 ms), which
cost each hop (input -> facts -> aggregate) up to half a second of freshness. Real Kafka answers as soon as data
arrives, so there the shorter wait only means more empty fetches while idle (20 a second)."""
SNAPSHOT_TICK_S = 0.05
"""How often the snapshot timer looks for a change. A set is published at most every ``snapshot_interval`` s, start
to start, so a change waits at most one interval (a plain timer at the interval waits the interval plus the time
the previous set took to compute)."""
FACTS_PER_RECORD = 500
"""Fact updates per ``scc.facts`` record (~150 KB typically); a record over ``FACTS_RECORD_MAX_BYTES`` is split."""
FACTS_RECORD_MAX_BYTES = 900_000
"""Under the producer's 1,000,000-byte request limit (Faust's ``producer_max_request_size``)."""


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
        producer_linger=PRODUCER_LINGER_S,
    )
    icb = config.icb
    raw = {"value_serializer": "raw", "key_serializer": "raw"}
    inputs = app.topic(*INPUT_TOPICS, **raw)
    facts_topic = app.topic(FACTS, **raw)
    deadletter_topic = app.topic(DEADLETTER, **raw)
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

    async def send_facts(updates: list[FactUpdate], clock: dt.datetime | None) -> None:
        """Send fact updates and the sender's event clock as batch records (one per ``FACTS_PER_RECORD`` updates,
        one clock-only record when there is none), keyed by the ICB."""
        if clock is None:
            return  # nothing accepted yet: no fact and no clock to tell
        key = icb.code.encode()
        entries = [(u.kind, u.entity_id, u.fact, u.evidence) for u in updates]
        chunks = [entries[i : i + FACTS_PER_RECORD] for i in range(0, max(len(entries), 1), FACTS_PER_RECORD)]
        while chunks:
            chunk = chunks.pop(0)
            value = batch_to_wire(chunk, clock)
            if len(value) > FACTS_RECORD_MAX_BYTES and len(chunk) > 1:  # unusually large facts: halve and retry
                chunks[:0] = [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
                continue
            await facts_topic.send(key=key, value=value)

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
        await send_facts(tracker.current(), tracker.clock)
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
        _shorten_fetch_wait(app)
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
                await send_facts(updates, tracker.clock)
                if partition not in rebuilding:  # a half-rebuilt state would see openers as missing
                    for orphan in tracker.orphans(orphan_after):
                        await send_dead_letter(orphan.reason(), orphan.topic, -1, orphan.key(), orphan.summary())
                        orphans_total.labels(orphan.kind).inc()

    @app.agent(facts_topic, name="aggregate")
    async def aggregate(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
            by_partition: dict[int, list[bytes | None]] = {}
            for item in batch:
                by_partition.setdefault(item.message.partition, []).append(item.value)
            for partition, raws in by_partition.items():
                aggregator = aggregators.get(partition)
                if aggregator is None:
                    aggregator = aggregators[partition] = Aggregator(config)
                _apply_facts(aggregator, raws)

    @app.timer(interval=min(SNAPSHOT_TICK_S, settings.snapshot_interval), name="publish_snapshots")
    async def publish_snapshots() -> None:
        now = time.monotonic()
        for partition, aggregator in list(aggregators.items()):
            last_version, last_time = emitted.get(partition, (-1, 0.0))
            if aggregator.clock is None or partition in recovering:
                continue
            since = now - last_time
            if since < settings.snapshot_interval:
                continue
            if aggregator.version == last_version and since < settings.snapshot_heartbeat:
                continue
            emitted[partition] = (aggregator.version, now)
            snapshots = aggregator.snapshot()
            # Every row of the set at one ts, enqueued in order on the producer's buffer without waiting for each
            # delivery (Topic.send per row cost ~9% of the worker); the deliveries are awaited together below.
            producer = await app.maybe_start_producer()
            pending = []
            for snap in snapshots:
                key = f"{snap.indicator}|{snap.window}|{snap.scope_type}|{snap.scope_code}".encode()
                pending.append(await producer.send(INDICATORS, key, snap.model_dump_json().encode(), None, None, None))
            metrics.snapshots_published(snapshots)
            tracker = alert_trackers.setdefault(partition, AlertTracker(config))
            for alert in tracker.update(snapshots):
                key = alert.alert_id.encode()
                pending.append(await producer.send(ALERTS, key, alert.model_dump_json().encode(), None, None, None))
            failed = [r for r in await asyncio.gather(*pending, return_exceptions=True) if isinstance(r, Exception)]
            if failed:  # the next change or heartbeat publishes the full set again
                log.warning("%d of %d snapshot/alert records not delivered: %r", len(failed), len(pending), failed[0])

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


def _shorten_fetch_wait(app: faust.App) -> None:
    """Set the worker consumer's fetch wait to :data:`FETCH_MAX_WAIT_MS` (Faust has no setting for it; the
    attribute is read for every fetch request, so it applies from the next one). A no-op if the internals moved."""
    thread = getattr(app.consumer, "_thread", None)
    fetcher = getattr(getattr(thread, "_consumer", None), "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
        log.warning("could not shorten the consumer's fetch wait: freshness may suffer by up to 1.5 s per hop")
        return
    fetcher._fetch_max_wait_ms = FETCH_MAX_WAIT_MS


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
            if record[0] == BATCH_KIND:
                _apply_batch(aggregator, record)
                continue
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


def _apply_batch(aggregator: Aggregator, record: list[Any]) -> None:
    """Apply a batch record (``["batch", [[kind, entity_id, values, evidence], ...], clock]``), then its clock.

    A record whose shape or clock cannot be read raises (the caller skips it whole); an entry that cannot be read is
    logged and skipped, and the others still apply."""
    _, entries, clock_text = record
    clock = dt.datetime.fromisoformat(clock_text)
    if clock.tzinfo is None:
        raise ValueError("naive clock")
    if not isinstance(entries, list):
        raise TypeError("batch entries are not a list")
    for entry in entries:
        try:
            kind, entity_id, fact, evidence = decode_entry(entry)
        except FACT_DECODING_ERRORS as exc:
            log.warning("skipped an unreadable fact update in scc.facts (%s: %s)", type(exc).__name__, str(exc)[:200])
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

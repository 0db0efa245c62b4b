"""The worker: stage 1 (:mod:`streams.intake`) and a Faust app for stage 2 and the snapshots.

- Stage 1 (:class:`streams.intake.EntityStage`, run as a Faust task) reads the canonical topics in batches with a
  plain aiokafka consumer in the worker group (``app_id``), validates each record (rejects go to
  ``scc.deadletter``), folds events into facts and sends fact updates to ``scc.facts`` keyed by ICB.
- ``aggregate`` (a Faust agent, group ``<app_id>-facts``) reads ``scc.facts`` and keeps the ICB's facts
  (:mod:`streams.aggregator`).
- ``publish_snapshots`` sends every indicator to ``scc.indicators`` when something changed (at most every
  ``snapshot_interval`` s, start to start, looked at every 50 ms) and at least every ``snapshot_heartbeat`` s,
  and the alerts they raise or resolve (:mod:`streams.alerts`, with hysteresis) to ``scc.alerts``.

State lives in plain engine objects per partition, not in Faust tables: Tansu's end offsets are wrong for batched
producers (INFRA.md caveat 1), which breaks changelog recovery. Instead, a worker that is assigned a partition it
holds no state for (a restart, a rebalance) rebuilds it from the retained log — the events are the source of
truth — reading up to the group's committed offsets, while live processing carries on; fact updates carry their
evidence (event count), so stage 2 keeps the best-informed fact whatever order they arrive in.
Processing is at-least-once (Tansu cannot do idempotent producers, caveat 2); every step downstream is idempotent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

import faust
import orjson
from aiokafka import TopicPartition

from schemas.config import PlatformConfig, load_config
from schemas.settings import Settings
from streams.aggregator import Aggregator
from streams.alerts import AlertTracker
from streams.facts import BATCH_KIND, FACT_TYPES, decode_entry, from_wire
from streams.intake import FETCH_MAX_WAIT_MS, EntityStage, replay_partitions
from streams.metrics import PipelineMetrics, default_metrics
from streams.topics import ALERTS, FACTS, INDICATORS

log = logging.getLogger(__name__)

BATCH_MAX = 5000
BATCH_WITHIN_S = 0.05
CLOCK_KIND = "clock"
PRODUCER_LINGER_S = 0.005
"""Fewer, fuller produce requests (Faust's default sends at once); 5 ms is small against the 1 s freshness goal."""
SNAPSHOT_TICK_S = 0.05
"""How often the snapshot timer looks for a change. A set is published at most every ``snapshot_interval`` s, start
to start, so a change waits at most one interval (a plain timer at the interval waits the interval plus the time
the previous set took to compute)."""


def create_app(settings: Settings, config: PlatformConfig, metrics: PipelineMetrics | None = None) -> faust.App:
    """Build the Faust app for one ICB configuration (metrics: the process's Prometheus metrics by default)."""
    metrics = metrics if metrics is not None else default_metrics(config.icb)
    datadir = (settings.data_dir / "faust").resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.app_id}-facts",
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
    facts_topic = app.topic(FACTS, value_serializer="raw", key_serializer="raw")
    aggregators: dict[int, Aggregator] = {}
    alert_trackers: dict[int, AlertTracker] = {}
    building_aggregates: set[int] = set()
    recovering: set[int] = set()
    tasks: list[asyncio.Task[None]] = []
    emitted: dict[int, tuple[int, float]] = {}  # partition -> (aggregator version, monotonic time) last published
    stage = EntityStage(settings, config, metrics, app.maybe_start_producer)

    @app.task
    async def consume_inputs() -> None:
        """Stage 1: the input topics, in batches, outside Faust's per-message path (:mod:`streams.intake`)."""
        await stage.run()

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

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust's handler type omits the signal's keywords
    async def rebuild_assigned(sender: faust.App, assigned: set[Any], **_: Any) -> None:
        """A worker that gains a facts partition it holds no state for rebuilds it from the retained log."""
        _shorten_fetch_wait(app)
        for tp in assigned:
            if tp.topic == FACTS and tp.partition not in building_aggregates:
                building_aggregates.add(tp.partition)
                tasks.append(asyncio.create_task(rebuild_aggregate(tp.partition)))

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

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust's handler type omits the signal's keywords
    async def forget_revoked(sender: faust.App, revoked: set[Any], **_: Any) -> None:
        """A partition that moved to another worker takes its state with it; keep none that would go stale."""
        for tp in revoked:
            if tp.topic == FACTS:
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


app = create_app(Settings(), load_config(Settings().icb_file))

"""Prometheus metrics of the workers and the sink: indicator values and pipeline health, with bounded label sets.

Why these and why this shape:

- **Indicator values** (``scc_indicator_value`` and ``scc_indicator_target``, labelled by indicator, window and scope)
  feed the Prometheus alert rules generated from the targets file (``grafana/alerting.py``), so alerts use the same
  numbers and the same target the agents judged. They are held by a custom collector that always reports the latest
  snapshot batch, so a series disappears when the engine stops reporting it instead of freezing at its last value.
  The ``month`` window is left out: a closed month is history, and history lives in ClickHouse.
- **Pipeline health**: events in per topic, dead letters per source topic, consumer lag per group/topic/partition,
  sink batch latency and the age of the last snapshot — enough to tell "no pressure" from "no data".
- **Bounded labels**: topics outside the platform's own are reported as ``other`` (``file`` for replayed files),
  scopes must be the ICB's, and the indicator collector holds at most ``max_series`` series; anything beyond is
  counted in ``scc_metrics_dropped_total`` rather than exported. A typo or a hostile key cannot grow the label space.

Usage (the worker and the sink each own one :class:`PipelineMetrics`)::

    from prometheus_client import CollectorRegistry
    from streams.metrics import PipelineMetrics, start_metrics_server

    metrics = PipelineMetrics(CollectorRegistry())
    server = start_metrics_server(0, registry=metrics.registry)   # port 0: any free port, see server.port
    metrics.events_in("scc.ed", 120)
    metrics.indicators.update(snapshots)                          # every batch the timer publishes
    server.close()
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.errors import IllegalStateError
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.config import Icb
from schemas.indicators import IndicatorSnapshot
from streams.topics import ALERTS, DEADLETTER, FACTS, INDICATORS, INPUT_TOPICS

EXPORTED_WINDOWS = frozenset({"live", "today", "last_60m", "mtd"})
"""Windows exported to Prometheus (the agents' alerting windows); ``month`` stays in ClickHouse."""
KNOWN_TOPICS = frozenset({*INPUT_TOPICS, FACTS, INDICATORS, ALERTS, DEADLETTER})
OTHER = "other"
FILE_SOURCE = "file"
MAX_INDICATOR_SERIES = 5000
"""Guard on the indicator collector: an ICB of 30 sites reports well under 3,000 series."""
MAX_PARTITION = 1024
SINK_BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INDICATOR_LABELS = ("indicator", "window", "scope_type", "scope_code")

_INDICATOR_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SCOPE_TYPES = frozenset({"system", "org", "site"})

SeriesKey = tuple[str, str, str, str]
ENTITY_KINDS = ("ed", "ambulance", "spell", "opel")


class _Tracker(Protocol):
    """What :meth:`PipelineMetrics.entity_state` reads of a :class:`streams.entities.EntityTracker`."""

    def entity_count(self, kind: Any) -> int: ...

    def tombstone_count(self, kind: Any) -> int: ...


def topic_label(topic: str) -> str:
    """The bounded label for a topic: the platform's own topics as they are, replayed files as ``file``, else other."""
    if topic in KNOWN_TOPICS:
        return topic
    if topic.startswith("file:"):
        return FILE_SOURCE
    return OTHER


class IndicatorMetrics(Collector):
    """The latest value and target of every indicator series, exported at scrape time.

    ``update`` replaces the whole picture with the batch it is given (the engine publishes every indicator each
    time), so series the engine no longer reports disappear; ``clear`` forgets everything (a revoked partition).
    Thread-safe: the HTTP server's thread scrapes while the event loop updates.
    """

    def __init__(
        self,
        icb: Icb | None = None,
        *,
        max_series: int = MAX_INDICATOR_SERIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._scopes: frozenset[str] | None = None
        if icb is not None:
            self._scopes = frozenset({icb.code, *icb.orgs, *icb.sites})
        self._max_series = max_series
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[SeriesKey, float] = {}
        self._targets: dict[SeriesKey, float] = {}
        self._updated_at: float | None = None
        self._event_time: float | None = None
        self._dropped = 0

    def _accept(self, snap: IndicatorSnapshot) -> bool:
        if snap.window not in EXPORTED_WINDOWS:
            return False  # not an error: months are history
        ok = (
            _INDICATOR_NAME.match(snap.indicator) is not None
            and snap.scope_type in _SCOPE_TYPES
            and (self._scopes is None or snap.scope_code in self._scopes)
        )
        if not ok:
            self._dropped += 1
        return ok

    def update(self, snapshots: Iterable[IndicatorSnapshot]) -> int:
        """Replace the exported picture with this batch; return how many series it holds."""
        values: dict[SeriesKey, float] = {}
        targets: dict[SeriesKey, float] = {}
        latest: float | None = None
        with self._lock:
            for snap in snapshots:
                stamp = snap.ts.timestamp()
                latest = stamp if latest is None else max(latest, stamp)
                if not self._accept(snap):
                    continue
                key = (snap.indicator, snap.window, snap.scope_type, snap.scope_code)
                if key not in values and len(values) >= self._max_series:
                    self._dropped += 1
                    continue
                if snap.value is not None and math.isfinite(snap.value):
                    values[key] = snap.value
                if snap.target is not None and snap.value is not None:
                    targets[key] = snap.target  # no value: no status, so no target to alert against
            self._values, self._targets = values, targets
            self._updated_at = self._clock()
            if latest is not None:
                self._event_time = latest
            return len(values)

    def clear(self) -> None:
        """Forget every series (the partition that held this ICB moved to another worker)."""
        with self._lock:
            self._values, self._targets = {}, {}
            self._updated_at = self._event_time = None

    def value(self, indicator: str, window: str, scope_type: str, scope_code: str) -> float | None:
        """The exported value of one series (for tests and debugging)."""
        with self._lock:
            return self._values.get((indicator, window, scope_type, scope_code))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            values, targets = dict(self._values), dict(self._targets)
            updated_at, event_time, dropped = self._updated_at, self._event_time, self._dropped
        value_family = GaugeMetricFamily(
            "scc_indicator_value", "Latest value of an indicator (INDICATORS.md)", labels=INDICATOR_LABELS
        )
        for key, number in sorted(values.items()):
            value_family.add_metric(key, number)
        yield value_family
        target_family = GaugeMetricFamily(
            "scc_indicator_target",
            "Target the agents judged the value against (present only where a target applies)",
            labels=INDICATOR_LABELS,
        )
        for key, number in sorted(targets.items()):
            target_family.add_metric(key, number)
        yield target_family
        if updated_at is not None:
            yield GaugeMetricFamily(
                "scc_last_snapshot_age_seconds",
                "Wall-clock seconds since the worker last published indicator snapshots",
                value=max(0.0, self._clock() - updated_at),
            )
        if event_time is not None:
            yield GaugeMetricFamily(
                "scc_snapshot_event_time_seconds",
                "Evaluation time T (event time, Unix seconds) of the latest snapshot batch",
                value=event_time,
            )
        yield CounterMetricFamily(
            "scc_metrics_dropped", "Indicator series not exported because a label was out of bounds", value=dropped
        )


class _Consumer(Protocol):
    """The part of an aiokafka consumer that lag needs."""

    def assignment(self) -> set[Any]: ...

    def highwater(self, tp: Any) -> int | None: ...

    async def position(self, tp: Any) -> int: ...


class PipelineMetrics:
    """Every metric of one process (worker or sink), registered in one registry.

    Pass a fresh :class:`~prometheus_client.CollectorRegistry` in tests; processes use :func:`default_metrics`,
    which registers once in the global registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, icb: Icb | None = None) -> None:
        self.registry = registry if registry is not None else REGISTRY
        self.indicators = IndicatorMetrics(icb)
        self.registry.register(self.indicators)
        self._events_in = Counter("scc_events_in", "Records consumed, per topic", ["topic"], registry=self.registry)
        self._dead_letters = Counter(
            "scc_dead_letters", "Inputs rejected to scc.deadletter, per source topic", ["source_topic"],
            registry=self.registry,
        )  # fmt: skip
        self._lag = Gauge(
            "scc_consumer_lag",
            "Records behind the end of the partition (high watermark minus position)",
            ["group", "topic", "partition"],
            registry=self.registry,
        )
        self._batch_seconds = Histogram(
            "scc_sink_batch_seconds",
            "Seconds to write one sink batch to ClickHouse (all its tables)",
            buckets=SINK_BATCH_BUCKETS,
            registry=self.registry,
        )
        self._rows = Counter("scc_sink_rows", "Rows written by the sink, per topic", ["topic"], registry=self.registry)
        self._write_failures = Counter(
            "scc_sink_write_failures", "Sink batches that failed to write and were retried", registry=self.registry
        )
        self._snapshots = Counter(
            "scc_snapshots_published", "Indicator snapshots published on scc.indicators", registry=self.registry
        )
        self._entities = Gauge(
            "scc_entities_held", "Entities in the worker's stage-1 state, per kind", ["kind"], registry=self.registry
        )
        self._released = Gauge(
            "scc_entities_released",
            "Closed entities released from the worker's state whose ids are still kept to reject late events, per kind",
            ["kind"],
            registry=self.registry,
        )

    def events_in(self, topic: str, n: int = 1) -> None:
        """Count ``n`` records consumed from ``topic``."""
        self._events_in.labels(topic_label(topic)).inc(n)

    def dead_letter(self, source_topic: str, n: int = 1) -> None:
        """Count ``n`` rejected inputs from ``source_topic``."""
        self._dead_letters.labels(topic_label(source_topic)).inc(n)

    def consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        """Set the lag of one assigned partition (negative values, seen mid-rebalance, are reported as 0)."""
        part = str(partition) if 0 <= partition < MAX_PARTITION else OTHER
        self._lag.labels(group, topic_label(topic), part).set(max(0, lag))

    def forget_partition(self, group: str, topic: str, partition: int) -> None:
        """Drop the lag series of a partition this process no longer owns."""
        part = str(partition) if 0 <= partition < MAX_PARTITION else OTHER
        with contextlib.suppress(KeyError):  # never set, or already forgotten
            self._lag.remove(group, topic_label(topic), part)

    def sink_batch(self, seconds: float, rows_by_topic: Mapping[str, int] | None = None) -> None:
        """Record one sink batch that landed: its latency and the rows per topic."""
        self._batch_seconds.observe(seconds)
        for topic, rows in (rows_by_topic or {}).items():
            if rows:
                self._rows.labels(topic_label(topic)).inc(rows)

    def sink_failure(self) -> None:
        """Count a batch that could not be written (it is retried: at-least-once)."""
        self._write_failures.inc()

    def entity_state(self, trackers: Iterable[_Tracker]) -> None:
        """Set the entities held and released, summed over the worker's per-partition trackers: shows that the state
        is bounded (docs/definitions.md, "Retention of closed entities")."""
        trackers = list(trackers)
        for kind in ENTITY_KINDS:
            self._entities.labels(kind).set(sum(t.entity_count(kind) for t in trackers))
            self._released.labels(kind).set(sum(t.tombstone_count(kind) for t in trackers))

    def snapshots_published(self, snapshots: list[IndicatorSnapshot]) -> None:
        """The worker published this batch: export its values and count it."""
        self.indicators.update(snapshots)
        self._snapshots.inc(len(snapshots))

    async def record_consumer_lag(self, consumer: _Consumer, group: str) -> None:
        """Set the lag of every partition an aiokafka consumer holds (high watermark minus position)."""
        for tp, lag in (await consumer_lags(consumer)).items():
            self.consumer_lag(group, tp.topic, tp.partition, lag)


async def consumer_lags(consumer: _Consumer) -> dict[Any, int]:
    """High watermark minus position of every partition a consumer holds, as of its last fetch response; a
    partition with no fetch response yet, or revoked meanwhile (a position being reset waits, and a rebalance may
    come in between), is left out (unknown, not zero)."""
    lags = {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        try:
            lags[tp] = highwater - await consumer.position(tp)
        except IllegalStateError:
            continue
    return lags


_default: PipelineMetrics | None = None
_default_lock = threading.Lock()


def default_metrics(icb: Icb | None = None) -> PipelineMetrics:
    """The process's metrics in the global registry, created on first use (so app and sink can share one)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PipelineMetrics(REGISTRY, icb=icb)
        return _default


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; ``close`` stops it and frees the port."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    port: int, host: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` in a daemon thread (loopback by default; port 0 picks a free one).

    Bind to ``0.0.0.0`` only inside a container network (``compose.yaml`` sets ``SCC_METRICS_HOST``).
    """
    server, thread = start_http_server(port, addr=host, registry=registry if registry is not None else REGISTRY)
    return MetricsServer(host, server.server_port, server, thread)

"""The workers' Prometheus metrics: what is exported, that label sets stay bounded, and the HTTP endpoint."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.request
from dataclasses import dataclass

import pytest
from aiokafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from schemas.config import load_config
from schemas.indicators import IndicatorSnapshot
from streams.metrics import (
    MAX_PARTITION,
    IndicatorMetrics,
    PipelineMetrics,
    consumer_lags,
    default_metrics,
    start_metrics_server,
    topic_label,
)

ICB = load_config().icb
T = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def snap(
    indicator: str = "mofd_awaiting_plan",
    value: float | None = 104.0,
    *,
    window: str = "live",
    scope_type: str = "system",
    scope_code: str = "QK1",
    target: float | None = 100.0,
) -> IndicatorSnapshot:
    return IndicatorSnapshot(
        ts=T,
        indicator=indicator,
        window=window,  # type: ignore[arg-type]
        scope_type=scope_type,  # type: ignore[arg-type]
        scope_code=scope_code,
        value=value,
        numerator=None,
        denominator=None,
        target=target,
        status="red" if target is not None and value is not None else "none",
        computed_at=T,
    )


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_indicator_values_and_targets_by_indicator_window_and_scope() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, icb=ICB)
    metrics.snapshots_published(
        [snap(), snap(scope_type="org", scope_code="RWE"), snap("ctr_met_pct", 88.0, target=None), snap(window="month")]
    )
    values = samples(registry, "scc_indicator_value")
    key = (("indicator", "mofd_awaiting_plan"), ("scope_code", "QK1"), ("scope_type", "system"), ("window", "live"))
    assert values[key] == 104.0
    assert len(values) == 3, "month windows are history: not exported"
    targets = samples(registry, "scc_indicator_target")
    assert targets[key] == 100.0
    assert not any(dict(k)["indicator"] == "ctr_met_pct" for k in targets), "no target series where none applies"
    assert samples(registry, "scc_snapshots_published_total")[()] == 4
    assert samples(registry, "scc_snapshot_event_time_seconds")[()] == T.timestamp()


def test_update_replaces_the_picture_and_clear_forgets_it() -> None:
    collector = IndicatorMetrics(ICB)
    collector.update([snap(), snap("nctr_count", 300.0, target=None)])
    collector.update([snap(value=None)])  # the value became undefined: no value and no target exported
    assert collector.value("nctr_count", "live", "system", "QK1") is None
    assert collector.value("mofd_awaiting_plan", "live", "system", "QK1") is None
    collector.update([snap(value=96.0)])
    assert collector.value("mofd_awaiting_plan", "live", "system", "QK1") == 96.0
    collector.clear()
    assert collector.value("mofd_awaiting_plan", "live", "system", "QK1") is None


def test_labels_stay_bounded() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, icb=ICB)
    metrics.indicators.update([snap(scope_code="NOT-AN-ICB-SCOPE"), snap("Bad Name!"), snap()])
    assert len(samples(registry, "scc_indicator_value")) == 1
    assert samples(registry, "scc_metrics_dropped_total")[()] == 2
    small = IndicatorMetrics(None, max_series=2)
    small.update([snap(scope_type="site", scope_code=f"S{i}") for i in range(5)])
    assert len(list(small.collect())[0].samples) == 2, "a cap on series, whatever arrives"

    metrics.events_in("scc.ed", 10)
    metrics.events_in("some.random.topic")
    metrics.dead_letter("file:day.jsonl")
    metrics.consumer_lag("scc-sink", "scc.ed", 3, 42)
    metrics.consumer_lag("scc-sink", "scc.ed", MAX_PARTITION + 5, -3)
    assert samples(registry, "scc_events_in_total") == {(("topic", "scc.ed"),): 10, (("topic", "other"),): 1}
    assert samples(registry, "scc_dead_letters_total") == {(("source_topic", "file"),): 1}
    lag = samples(registry, "scc_consumer_lag")
    assert lag[(("group", "scc-sink"), ("partition", "3"), ("topic", "scc.ed"))] == 42
    assert lag[(("group", "scc-sink"), ("partition", "other"), ("topic", "scc.ed"))] == 0
    metrics.forget_partition("scc-sink", "scc.ed", 3)
    metrics.forget_partition("scc-sink", "scc.ed", 3)  # twice is harmless
    assert (("group", "scc-sink"), ("partition", "3"), ("topic", "scc.ed")) not in samples(registry, "scc_consumer_lag")
    assert topic_label("scc.indicators") == "scc.indicators"


def test_sink_batches_and_snapshot_age() -> None:
    now = [1000.0]
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    metrics.indicators._clock = lambda: now[0]  # a fake clock for the age
    metrics.sink_batch(0.2, {"scc.ed": 120, "scc.indicators": 40, "scc.adt": 0})
    metrics.sink_failure()
    assert samples(registry, "scc_sink_batch_seconds_count")[()] == 1
    assert samples(registry, "scc_sink_rows_total") == {(("topic", "scc.ed"),): 120, (("topic", "scc.indicators"),): 40}
    assert samples(registry, "scc_sink_write_failures_total")[()] == 1
    assert samples(registry, "scc_last_snapshot_age_seconds") == {}, "no age before the first snapshot"
    metrics.indicators.update([snap()])
    now[0] += 7.5
    assert samples(registry, "scc_last_snapshot_age_seconds")[()] == 7.5


@dataclass(frozen=True)
class _TP:
    topic: str
    partition: int


class _FakeConsumer:
    """An aiokafka consumer's lag surface: scc.ed 0 has a fetch response, scc.adt 1 none yet, and scc.discharge 2
    is revoked while its position is asked for (as a rebalance during a position reset would)."""

    def assignment(self) -> set[_TP]:
        return {_TP("scc.ed", 0), _TP("scc.adt", 1), _TP("scc.discharge", 2)}

    def highwater(self, tp: _TP) -> int | None:
        return None if tp.topic == "scc.adt" else 500

    async def position(self, tp: _TP) -> int:
        if tp.topic == "scc.discharge":
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return 380


def test_consumer_lag_from_an_aiokafka_consumer() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    asyncio.run(metrics.record_consumer_lag(_FakeConsumer(), "scc-sink"))
    assert samples(registry, "scc_consumer_lag") == {
        (("group", "scc-sink"), ("partition", "0"), ("topic", "scc.ed")): 120
    }


def test_consumer_lags_leave_out_what_is_unknown() -> None:
    assert asyncio.run(consumer_lags(_FakeConsumer())) == {_TP("scc.ed", 0): 120}


def test_metrics_server_on_loopback() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, icb=ICB)
    metrics.indicators.update([snap()])
    server = start_metrics_server(0, registry=registry)
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        with urllib.request.urlopen(server.url, timeout=5) as response:
            body = response.read().decode()
    finally:
        server.close()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert families["scc_indicator_value"].samples[0].value == 104.0
    assert "scc_indicator_target" in families


def test_default_metrics_is_one_per_process() -> None:
    assert default_metrics() is default_metrics()


def test_no_registry_collision_between_instances() -> None:
    PipelineMetrics(CollectorRegistry())
    PipelineMetrics(CollectorRegistry())
    with pytest.raises(ValueError):
        registry = CollectorRegistry()
        PipelineMetrics(registry)
        PipelineMetrics(registry)

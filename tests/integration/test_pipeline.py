"""The real pipeline over a simulated day: Tansu, a Faust worker, the ClickHouse sink and chDB.

Events go in out of order and partly twice. Afterwards every event is in ClickHouse exactly once, and the indicators
the worker published for the last event time equal the independent SQL recomputation over the raw events, and the
in-process engine on the same events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
import urllib.request
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from clickhouse.recompute import recompute
from clickhouse.store import open_store
from connectors.kafka_producer import EventProducer
from connectors.simulator import simulate
from scc.broker import start_broker
from scc.processes import free_port, python_module, start
from schemas.config import load_config
from schemas.indicators import IndicatorSnapshot
from schemas.settings import Settings
from streams.engine import evaluate_at
from streams.topics import INDICATORS, INPUT_TOPICS, create_topics

pytestmark = pytest.mark.integration

# Crosses the spring clock change (29 March 2026, a 23-hour day).
START = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)
HOURS = 24
DUPLICATE_SHARE = 0.02
SHUFFLE_WINDOW = 200


def _delivery_order(events: list, rng: random.Random) -> list:
    """Shuffle within windows of events and re-send a share of them: late, out of order and duplicated."""
    out = []
    for i in range(0, len(events), SHUFFLE_WINDOW):
        chunk = events[i : i + SHUFFLE_WINDOW]
        rng.shuffle(chunk)
        out.extend(chunk)
    out.extend(rng.sample(events, int(len(events) * DUPLICATE_SHARE)))
    return out


async def _produce(settings: Settings, events: list) -> None:
    async with EventProducer(settings) as producer:
        for event in events:
            await producer.send(event)


async def _wait_for_snapshot_at(settings: Settings, at: dt.datetime, timeout: float) -> None:
    consumer = AIOKafkaConsumer(INDICATORS, bootstrap_servers=settings.kafka_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            async for message in consumer:
                if IndicatorSnapshot.model_validate_json(message.value).ts >= at:
                    return
    finally:
        await consumer.stop()


def _wait_for_sink(status_file: Path, events: int, timeout: float, quiet: float = 4.0) -> dict:
    """Until the sink has written every delivered event and then nothing new for ``quiet`` seconds (the worker has
    stopped, so no more snapshots come)."""
    deadline = time.monotonic() + timeout
    status: dict = {}
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        status = json.loads(status_file.read_text()) if status_file.exists() else {}
        if status != last:
            last, since = status, time.monotonic()
        elif status.get("events", 0) >= events and time.monotonic() - since >= quiet:
            return status
        time.sleep(0.5)
    raise TimeoutError(f"sink did not catch up: {status}")


def test_simulated_day_through_real_pipeline(tmp_path: Path) -> None:
    config = load_config()
    events = list(
        simulate(
            config.icb,
            scenario="normal",
            start=START,
            duration=dt.timedelta(hours=HOURS),
            seed=7,
            warmup=dt.timedelta(days=10),
        )
    )
    last_time = max(e.occurred_at for e in events)
    delivered = _delivery_order(list(events), random.Random(11))

    run_dir = tmp_path / "run"
    port = free_port()
    store_dsn = f"chdb://{tmp_path / 'store'}"
    env = {"SCC_KAFKA": f"127.0.0.1:{port}", "SCC_STORE": store_dsn, "SCC_DATA_DIR": str(tmp_path / "var")}
    settings = Settings(kafka=env["SCC_KAFKA"], store=store_dsn, data_dir=tmp_path / "var")
    broker = start_broker(port, run_dir)
    children = []
    try:
        asyncio.run(create_topics(settings))
        worker_metrics, sink_metrics = free_port(), free_port()
        children.append(
            start(
                "worker", python_module("scc.cli", "worker"), run_dir, env | {"SCC_METRICS_PORT": str(worker_metrics)}
            )
        )
        children.append(
            start("sink", python_module("scc.cli", "sink"), run_dir, env | {"SCC_METRICS_PORT": str(sink_metrics)})
        )
        asyncio.run(_produce(settings, delivered))
        asyncio.run(_wait_for_snapshot_at(settings, last_time, timeout=300))
        time.sleep(3)  # the worker publishes the final state within a snapshot interval
        worker_scrape = _scrape(worker_metrics)
        worker = children[0]
        assert worker.alive(), worker.log_file.read_text()[-3000:]
        assert worker.stop(timeout=30) == 0  # a clean stop flushes what it produced
        status = _wait_for_sink(tmp_path / "var" / "run" / "sink-status.json", len(delivered), timeout=300)
        assert status["failed_writes"] == 0
        assert children[1].alive(), children[1].log_file.read_text()[-3000:]
        sink_scrape = _scrape(sink_metrics)
    finally:
        for child in reversed(children):
            child.stop(timeout=30)
        broker.stop()

    store = open_store(store_dsn)
    try:
        stored = {
            table: store.query_rows(f"SELECT count(), uniqExact(event_id) FROM scc.{table} FINAL")[0]
            for table in ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge")
        }
        assert sum(n for n, _ in stored.values()) == len(events)  # every event exactly once
        assert all(n == unique for n, unique in stored.values())

        published = {
            (r["indicator"], r["window"], r["scope_type"], r["scope_code"]): r
            for r in store.query_dicts(
                "SELECT indicator, window, scope_type, scope_code, value, numerator, denominator "
                "FROM scc.indicator_snapshots FINAL WHERE ts = (SELECT max(ts) FROM scc.indicator_snapshots)"
            )
        }
        recomputed = recompute(store, last_time, config.icb)
    finally:
        store.close()

    engine = {(s.indicator, s.window, s.scope_type, s.scope_code): s for s in evaluate_at(config, events, last_time)}
    assert recomputed, "the SQL recomputation returned nothing"
    mismatches = []
    for row in recomputed:
        key = (row["indicator"], row["window"], row["scope_type"], row["scope_code"])
        for source, other in (("stream", published.get(key)), ("engine", engine.get(key))):
            got = None if other is None else (other["value"] if isinstance(other, dict) else other.value)
            if other is None or not _close(got, row["value"]):
                mismatches.append((source, key, row["value"], got))
    assert not mismatches, (
        len(mismatches),
        sorted({(m[0], m[1][0], m[1][1]) for m in mismatches})[:40],
        mismatches[:5],
    )
    # Prometheus metrics of the live processes: what they consumed, wrote and published.
    assert sum(v for (name, labels), v in worker_scrape.items() if name == "scc_events_in_total") == len(delivered)
    assert (
        worker_scrape[
            (
                "scc_indicator_value",
                (
                    ("indicator", "mofd_awaiting_plan"),
                    ("scope_code", "QK1"),
                    ("scope_type", "system"),
                    ("window", "live"),
                ),
            )
        ]
        == published[("mofd_awaiting_plan", "live", "system", "QK1")]["value"]
    )
    assert sum(
        v
        for (name, labels), v in sink_scrape.items()
        if name == "scc_sink_rows_total" and dict(labels)["topic"] in INPUT_TOPICS
    ) == len(delivered)
    assert sink_scrape[("scc_sink_batch_seconds_count", ())] >= 1
    # The day was a real one: beds, ED and ambulance activity all present.
    assert engine[("ga_beds_occupied", "live", "system", "QK1")].value > 1000
    assert engine[("ed_4h_pct", "today", "system", "QK1")].denominator > 100


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A process's /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))

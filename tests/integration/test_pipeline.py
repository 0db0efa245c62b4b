"""The real pipeline over a simulated day: Tansu, a Faust worker, the ClickHouse sink and chDB.

Events go in out of order and partly twice. Afterwards every event is in ClickHouse exactly once, and the indicators
the worker published for the last event time equal the independent SQL recomputation over the raw events, and the
in-process engine on the same events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from pathlib import Path

import pytest

from clickhouse.recompute import recompute
from clickhouse.store import open_store
from connectors.simulator import simulate
from integration.pipeline_support import close, produce, scrape, wait_for_sink, wait_for_snapshot_at
from scc.broker import start_broker
from scc.processes import free_port, python_module, start
from schemas.config import load_config
from schemas.settings import Settings
from streams.engine import evaluate_at
from streams.topics import INPUT_TOPICS, create_topics

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
        asyncio.run(produce(settings, delivered))
        asyncio.run(wait_for_snapshot_at(settings, last_time, timeout=300))
        time.sleep(3)  # the worker publishes the final state within a snapshot interval
        worker_scrape = scrape(worker_metrics)
        worker = children[0]
        assert worker.alive(), worker.log_file.read_text()[-3000:]
        assert worker.stop(timeout=30) == 0  # a clean stop flushes what it produced
        status = wait_for_sink(tmp_path / "var" / "run" / "sink-status.json", len(delivered), timeout=300)
        assert status["failed_writes"] == 0
        assert children[1].alive(), children[1].log_file.read_text()[-3000:]
        sink_scrape = scrape(sink_metrics)
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
            if other is None or not close(got, row["value"]):
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

"""Faults on the real pipeline (Tansu, Faust workers, sink, chDB): afterwards every event is in ClickHouse exactly once
and the published indicators equal the SQL recomputation over the raw events.

- a worker killed with SIGKILL mid-stream and restarted: its state is rebuilt from the retained input log;
- two workers, one killed mid-stream: the survivor takes over its partitions (a rebalance under load);
- the sink killed with SIGKILL mid-stream: uncommitted batches are redelivered and deduplicated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from clickhouse.recompute import recompute
from clickhouse.store import open_store
from connectors.simulator import simulate
from integration.test_pipeline import _close, _produce, _wait_for_sink, _wait_for_snapshot_at
from scc.broker import start_broker
from scc.processes import Child, free_port, python_module, start
from schemas.config import load_config
from schemas.settings import Settings
from streams.topics import create_topics

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 10, 24, 12, 0, tzinfo=dt.UTC)  # crosses the autumn clock change


class Pipeline:
    """Broker, workers and sink on loopback, each stopped by its own pid."""

    def __init__(self, tmp_path: Path) -> None:
        self.run_dir = tmp_path / "run"
        self.port = free_port()
        self.store_dsn = f"chdb://{tmp_path / 'store'}"
        self.env = {
            "SCC_KAFKA": f"127.0.0.1:{self.port}",
            "SCC_STORE": self.store_dsn,
            "SCC_DATA_DIR": str(tmp_path / "var"),
        }
        self.settings = Settings(kafka=self.env["SCC_KAFKA"], store=self.store_dsn, data_dir=tmp_path / "var")
        self.status_file = tmp_path / "var" / "run" / "sink-status.json"
        self.children: dict[str, Child] = {}
        self.broker = start_broker(self.port, self.run_dir)
        asyncio.run(create_topics(self.settings))

    def start(self, name: str, command: str) -> Child:
        child = start(name, python_module("scc.cli", command), self.run_dir, self.env)
        self.children[name] = child
        return child

    def kill(self, name: str) -> None:
        child = self.children.pop(name)
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(10)
        child.pid_file.unlink(missing_ok=True)

    def stop_all(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop(timeout=30)
        self.children.clear()
        self.broker.stop()


def _events() -> list:
    config = load_config()
    return list(
        simulate(
            config.icb,
            scenario="normal",
            start=START,
            duration=dt.timedelta(hours=12),
            seed=3,
            warmup=dt.timedelta(days=5),
        )
    )


def _run_with_fault(tmp_path: Path, workers: int, fault: Callable[[Pipeline], None]) -> None:
    config = load_config()
    events = _events()
    half = len(events) // 2
    last_time = max(e.occurred_at for e in events)
    pipe = Pipeline(tmp_path)
    try:
        for n in range(workers):
            pipe.start(f"worker{n}", "worker")
        pipe.start("sink", "sink")
        asyncio.run(_produce(pipe.settings, events[:half]))
        asyncio.run(_wait_for_snapshot_at(pipe.settings, events[half - 1].occurred_at, timeout=300))
        fault(pipe)
        asyncio.run(_produce(pipe.settings, events[half:]))
        asyncio.run(_wait_for_snapshot_at(pipe.settings, last_time, timeout=300))
        time.sleep(4)
        for name in [n for n in pipe.children if n.startswith("worker")]:
            pipe.children.pop(name).stop(timeout=30)
        _wait_for_sink(pipe.status_file, half, timeout=300)
    finally:
        pipe.stop_all()

    store = open_store(pipe.store_dsn)
    try:
        counts = [
            store.query_rows(f"SELECT count(), uniqExact(event_id) FROM scc.{t} FINAL")[0]
            for t in ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge")
        ]
        published = {
            (r["indicator"], r["window"], r["scope_type"], r["scope_code"]): r["value"]
            for r in store.query_dicts(
                "SELECT indicator, window, scope_type, scope_code, value FROM scc.indicator_snapshots FINAL "
                "WHERE ts = (SELECT max(ts) FROM scc.indicator_snapshots)"
            )
        }
        latest_ts = store.query_rows("SELECT max(ts) FROM scc.indicator_snapshots")[0][0]
        recomputed = recompute(store, last_time, config.icb)
    finally:
        store.close()
    assert sum(n for n, _ in counts) == len(events), "an event was lost or duplicated"
    assert all(n == u for n, u in counts)
    assert latest_ts.replace(tzinfo=dt.UTC) == last_time
    wrong = [
        (key, row["value"], published.get(key))
        for row in recomputed
        if not _close(
            published.get(key := (row["indicator"], row["window"], row["scope_type"], row["scope_code"])), row["value"]
        )
    ]
    assert not wrong, (len(wrong), wrong[:10])


def test_worker_killed_and_restarted(tmp_path: Path) -> None:
    def kill_and_restart(pipe: Pipeline) -> None:
        pipe.kill("worker0")
        pipe.start("worker0", "worker")

    _run_with_fault(tmp_path, 1, kill_and_restart)


def test_one_of_two_workers_killed_under_load(tmp_path: Path) -> None:
    _run_with_fault(tmp_path, 2, lambda pipe: pipe.kill("worker1"))


def test_sink_killed_and_restarted(tmp_path: Path) -> None:
    def kill_and_restart(pipe: Pipeline) -> None:
        pipe.kill("sink")
        pipe.start("sink", "sink")

    _run_with_fault(tmp_path, 1, kill_and_restart)

"""`scc stack up|status|down` through the real CLI: Tansu, two Faust workers, the sink on chDB, Prometheus and
Alertmanager (Debian's binaries) on loopback; events in, counted by the sink and scraped by Prometheus; then down,
and nothing of it left running or listening.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.kafka_producer import EventProducer
from connectors.simulator import simulate
from scc.processes import free_port
from scc.stack import alive, stop_pid
from schemas.config import load_config
from schemas.settings import Settings
from streams.topics import INPUT_TOPICS

pytestmark = pytest.mark.integration

EVENTS = 60
TIMEOUT_S = 30.0


def _scc(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SCC_KAFKA", "SCC_METRICS_PORT", "SCC_METRICS_HOST")}
    env |= {"SCC_DATA_DIR": str(tmp_path / "var"), "SCC_STORE": f"chdb://{tmp_path / 'store'}", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "scc.cli", "stack", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _status(tmp_path: Path) -> tuple[int, dict[str, Any]]:
    result = _scc(tmp_path, "status", "--json")
    return result.returncode, json.loads(result.stdout)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read() or b"null")


def _wait(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _prom_value(prom: str, expr: str) -> float | None:
    reply = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    result = reply["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def _produce(kafka: str, n: int) -> None:
    events = simulate(
        load_config().icb,
        scenario="normal",
        start=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
        duration=dt.timedelta(hours=6),
        seed=3,
        warmup=dt.timedelta(0),
    )
    async with EventProducer(Settings(kafka=kafka)) as producer:
        for event in itertools.islice(events, n):
            await producer.send(event)


def test_stack_up_status_down(tmp_path: Path) -> None:
    started = time.monotonic()
    broker, prom_port, am_port = free_port(), free_port(), free_port()
    manifest = tmp_path / "var" / "stack" / "stack.json"
    recorded: list[dict[str, Any]] = []
    try:
        up = _scc(
            tmp_path,
            "up",
            "--workers",
            "2",
            "--broker-port",
            str(broker),
            "--prometheus-port",
            str(prom_port),
            "--alertmanager-port",
            str(am_port),
            "--scrape-interval",
            "1s",
        )
        if manifest.exists():
            recorded = json.loads(manifest.read_text())["services"]
        assert up.returncode == 0, up.stdout + up.stderr
        up_took = time.monotonic() - started
        names = [s["name"] for s in recorded]
        assert names == ["broker", "sink", "worker-1", "worker-2", "alertmanager", "prometheus"]
        for service in recorded:
            assert str(service["pid"]) in up.stdout and service["name"] in up.stdout  # the table

        code, report = _status(tmp_path)
        assert code == 0 and report["ok"], report
        assert {s["name"]: s["state"] for s in report["services"]} == dict.fromkeys(names, "up")
        assert report["kafka"] == f"127.0.0.1:{broker}"

        again = _scc(tmp_path, "up", "--broker-port", "0", "--prometheus-port", "0", "--alertmanager-port", "0")
        assert again.returncode != 0 and "already running" in again.stderr, again.stderr

        prom, am = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
        by_name = {s["name"]: s for s in recorded}
        expected_targets = {
            ("scc-worker", f"127.0.0.1:{by_name['worker-1']['port']}"),
            ("scc-worker", f"127.0.0.1:{by_name['worker-2']['port']}"),
            ("scc-sink", f"127.0.0.1:{by_name['sink']['port']}"),
        }

        def targets_up() -> bool:
            active = _get(f"{prom}/api/v1/targets")["data"]["activeTargets"]
            return {(t["labels"]["job"], t["labels"]["instance"]) for t in active if t["health"] == "up"} == (
                expected_targets
            )

        _wait(targets_up, "Prometheus to scrape both workers and the sink")
        groups = {g["name"] for g in _get(f"{prom}/api/v1/rules")["data"]["groups"]}
        assert groups == {"scc-indicators", "scc-pipeline"}, "the repository's generated rules are loaded"
        with urllib.request.urlopen(f"{am}/-/ready", timeout=5) as response:
            assert response.status == 200
        assert "scc-oncall-lead" in _get(f"{am}/api/v2/status")["config"]["original"], "the generated routing"
        notifiers = _get(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        assert [a["url"] for a in notifiers] == [f"{am}/api/v2/alerts"]

        asyncio.run(_produce(f"127.0.0.1:{broker}", EVENTS))

        def sink_counted() -> bool:
            sink = _status(tmp_path)[1]["sink"]
            return sink is not None and sink["events"] >= EVENTS

        _wait(sink_counted, f"the sink to count {EVENTS} events")
        code, report = _status(tmp_path)
        assert code == 0 and report["sink"]["events"] == EVENTS and report["sink"]["failed_writes"] == 0
        worker_in = 'sum(scc_events_in_total{job="scc-worker"})'
        sink_rows = f'sum(scc_sink_rows_total{{job="scc-sink", topic=~"{"|".join(INPUT_TOPICS)}"}})'
        _wait(lambda: _prom_value(prom, worker_in) == EVENTS, "Prometheus to count the events the workers took in")
        _wait(lambda: _prom_value(prom, sink_rows) == EVENTS, "Prometheus to count the rows the sink wrote")

        down = _scc(tmp_path, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        for service in recorded:
            assert f"{service['name']}" in down.stdout
            assert not alive(service["pid"], service["started"]), f"{service['name']} still running"
            assert not Path(service["log"]).with_suffix(".pid").exists()
            assert service["port"] is None or not _listening(service["port"]), f"{service['name']} still listens"
        assert not list((tmp_path / "var" / "stack").glob("*.pid")) and not manifest.exists()
        assert _status(tmp_path)[0] != 0, "status exits non-zero when nothing runs"
        print(f"\nstack up in {up_took:.1f}s; whole test {time.monotonic() - started:.1f}s")
    finally:
        _scc(tmp_path, "down")
        for service in recorded:  # a safety net: only the pids this test's stack recorded
            stop_pid(service["pid"], service["started"], 5)

"""End to end alerting: engine -> metrics endpoint -> Prometheus 2.42 -> Alertmanager 0.25 -> webhook, on loopback.

A surge run of the engine gives MOFD awaiting-a-plan values; they are published on a ``streams.metrics`` endpoint
until the system passes its target of 100. Prometheus evaluates the generated rules and Alertmanager the generated
routing (with test timings), and exactly one alert reaches the webhook — the system's, carrying indicator, scope,
value and threshold (the organisation's alert for the same crossing is inhibited). Lowered into the hysteresis band
the alert holds; lowered past the target by the margin it resolves. Every Prometheus panel query of the boards is
run against the live Prometheus on the way. Binaries come from Debian (``scripts/install-monitoring.sh``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors.simulator import simulate
from grafana import alerting, boards
from grafana.boards import ALERT_NAME
from grafana.build import recorded_year, to_yaml
from grafana.model import PromQuery
from grafana.targets import targets_for_year
from scc.processes import free_port
from schemas.config import load_config
from schemas.indicators import IndicatorSnapshot
from streams.engine import Engine
from streams.metrics import PipelineMetrics, start_metrics_server

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
INDICATOR = "mofd_awaiting_plan"
START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
STEP = dt.timedelta(hours=2)
SEED = 2  # with one day of warm-up this run starts below 100 and passes it in the surge
SCRAPE = "500ms"
SETTLE_S = 1.2  # a few scrape and evaluation cycles
TIMEOUT_S = 30.0


class Webhook(ThreadingHTTPServer):
    """Alertmanager's webhook receiver: keeps every notification it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.notifications: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.notifications)


class _HookHandler(BaseHTTPRequestHandler):
    server: Webhook

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.notifications.append(body)
        self.send_response(200)
        self.end_headers()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read() or b"null")


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _mofd_run() -> list[list[IndicatorSnapshot]]:
    """MOFD awaiting-plan snapshots (every scope, pathways included) every two hours, until the system passes 100."""
    config = load_config()
    events = sorted(
        simulate(
            config.icb,
            scenario="surge",
            start=START,
            duration=dt.timedelta(hours=12),
            seed=SEED,
            warmup=dt.timedelta(days=1),
        ),
        key=lambda e: (e.occurred_at, e.event_id),
    )
    engine, steps, i = Engine(config), [], 0
    at = START - dt.timedelta(days=1) + STEP
    while at <= START + dt.timedelta(hours=12):
        j = i
        while j < len(events) and events[j].occurred_at <= at:
            j += 1
        engine.ingest(events[i:j])
        i = j
        step = [s for s in engine.snapshot(at) if s.indicator.startswith(INDICATOR)]
        steps.append(step)
        if _system(step).value > _system(step).target:  # type: ignore[operator]
            return steps
        at += STEP
    raise AssertionError("the surge run never passed the target: the scenario or the seed changed")


def _system(step: list[IndicatorSnapshot]) -> IndicatorSnapshot:
    return next(s for s in step if s.indicator == INDICATOR and s.scope_type == "system")


def _with_value(step: list[IndicatorSnapshot], value: float) -> list[IndicatorSnapshot]:
    """The same snapshots with the headline value set for the system and its organisation (a recovery)."""
    return [
        s.model_copy(update={"value": value}) if s.indicator == INDICATOR and s.scope_type in ("system", "org") else s
        for s in step
    ]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if PROMETHEUS is None or ALERTMANAGER is None:
        pytest.fail(
            "prometheus/prometheus-alertmanager missing: scripts/test.sh installs them (scripts/install-monitoring.sh)"
        )
    config = load_config()
    targets = targets_for_year(config, recorded_year() or "2026/27")
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, icb=config.icb)
    endpoint = start_metrics_server(0, registry=registry)
    hook = Webhook()
    hook_thread = threading.Thread(target=hook.serve_forever, daemon=True)
    hook_thread.start()
    prom_port, am_port = free_port(), free_port()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/scc-indicators.yml").write_text(to_yaml(alerting.indicator_rules(targets), "alerting"))
    (tmp_path / "rules/scc-pipeline.yml").write_text(to_yaml(alerting.pipeline_rules(), "alerting"))
    scrape = alerting.ScrapeTargets(
        worker_dns=None,
        worker_static=(f"127.0.0.1:{endpoint.port}",),
        sink=(),
        alertmanagers=(f"127.0.0.1:{am_port}",),
        rule_files=(str(tmp_path / "rules/*.yml"),),
        scrape_interval=SCRAPE,
        evaluation_interval=SCRAPE,
    )
    prom_config = alerting.prometheus_config(scrape)
    prom_config["scrape_configs"] = [
        c for c in prom_config["scrape_configs"] if c.get("static_configs", [{}])[0].get("targets")
    ]
    (tmp_path / "prometheus.yml").write_text(to_yaml(prom_config, "alerting"))
    receivers = alerting.Receivers(
        oncall_webhook=f"http://127.0.0.1:{hook.server_port}/oncall",
        oncall_email=None,
        platform_webhook=f"http://127.0.0.1:{hook.server_port}/platform",
    )
    timings = alerting.RouteTimings(group_wait="1s", group_interval="1s", repeat_interval="1h")
    (tmp_path / "alertmanager.yml").write_text(to_yaml(alerting.alertmanager_config(receivers, timings), "alerting"))
    am = _start(
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    prom = _start(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        prom_url, am_url = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
        _wait(lambda: _ready(am_url) and _ready(prom_url), TIMEOUT_S, "Prometheus and Alertmanager to be ready")
        yield {"metrics": metrics, "hook": hook, "prom": prom_url, "targets": targets, "logs": tmp_path}
    finally:
        _stop(prom)
        _stop(am)
        hook.shutdown()
        hook.server_close()
        endpoint.close()


def _firing_in_prometheus(prom: str) -> list[dict[str, Any]]:
    alerts = _get(f"{prom}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == ALERT_NAME and a["state"] == "firing"]


def _alerts(notifications: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [a for n in notifications for a in n["alerts"] if a["status"] == status]


def _run_board_prometheus_queries(prom: str) -> None:
    """Every Prometheus panel query of every board runs, and returns data, against the live Prometheus."""
    config = load_config()
    targets = targets_for_year(config, recorded_year() or "2026/27")
    now = time.time()
    for board in boards.build_boards(config.icb, targets):
        for (panel_id, _ref), query in board.queries.items():
            if not isinstance(query, PromQuery):
                continue
            if query.instant:
                url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": query.expr})
            else:
                params = {"query": query.expr, "start": now - 30, "end": now, "step": "1"}
                url = f"{prom}/api/v1/query_range?" + urllib.parse.urlencode(params)
            reply = _get(url)
            assert reply["status"] == "success", (board.uid, panel_id, query.expr)
            assert reply["data"]["result"], f"no data for {query.expr!r} ({board.uid} panel {panel_id})"


def test_mofd_alert_fires_once_holds_in_the_band_and_resolves(stack: dict[str, Any]) -> None:
    started = time.monotonic()
    metrics: PipelineMetrics = stack["metrics"]
    hook: Webhook = stack["hook"]
    target = stack["targets"].get(INDICATOR)
    assert target is not None and target.op == "<="
    steps = _mofd_run()
    assert _system(steps[0]).value <= target.value, "the run must start on target to show the crossing"  # type: ignore[operator]

    # pipeline counters too, so the boards' health panels have data
    metrics.events_in("scc.adt", 1000)
    metrics.dead_letter("scc.ed")
    metrics.consumer_lag("scc-indicators", "scc.adt", 0, 12)
    metrics.sink_batch(0.05, {"scc.adt": 1000})

    for step in steps[:-1]:
        metrics.snapshots_published(step)
        time.sleep(SETTLE_S)
    assert hook.received() == [], "no alert while the value is on target"

    crossing = _system(steps[-1]).value
    metrics.snapshots_published(steps[-1])
    _wait(lambda: _alerts(hook.received(), "firing"), TIMEOUT_S, "the firing notification")
    fired_after = time.monotonic() - started
    time.sleep(3 * SETTLE_S)  # anything else would have arrived by now

    firing = _alerts(hook.received(), "firing")
    assert len(firing) == 1, f"exactly one alert reaches the on-call lead: {firing}"
    alert = firing[0]
    assert alert["labels"]["indicator"] == INDICATOR
    assert (alert["labels"]["scope_type"], alert["labels"]["scope_code"]) == ("system", "QK1")
    assert alert["labels"]["window"] == "live"
    assert float(alert["annotations"]["value"]) == crossing
    assert alert["labels"]["threshold"] == alert["annotations"]["threshold"] == "100"
    assert alert["annotations"]["status"] in ("amber", "red")
    scopes = {(a["labels"]["scope_type"], a["labels"]["scope_code"]) for a in _firing_in_prometheus(stack["prom"])}
    assert scopes == {("system", "QK1"), ("org", "RWE")}, "Prometheus fires both; Alertmanager inhibits the org's"

    _run_board_prometheus_queries(stack["prom"])

    in_band = target.value - target.alert_margin / 2  # back on target, not yet past it by the margin
    metrics.snapshots_published(_with_value(steps[-1], in_band))
    time.sleep(4 * SETTLE_S)
    assert _alerts(hook.received(), "resolved") == [], "hysteresis: held inside the margin"
    assert len(_firing_in_prometheus(stack["prom"])) == 2

    metrics.snapshots_published(_with_value(steps[-1], target.value - target.alert_margin - 1))
    _wait(lambda: _alerts(hook.received(), "resolved"), TIMEOUT_S, "the resolved notification")
    resolved = _alerts(hook.received(), "resolved")
    assert len(resolved) == 1 and resolved[0]["labels"] == alert["labels"]
    assert len(_alerts(hook.received(), "firing")) == 1, "no second page on the way down"
    elapsed = time.monotonic() - started
    print(f"\nalert fired {fired_after:.1f}s after start, resolved; test body took {elapsed:.1f}s")

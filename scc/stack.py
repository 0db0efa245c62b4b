"""``scc stack``: the whole pipeline on one machine without Docker, left running in the background.

Tansu (unless ``SCC_KAFKA`` names a broker), the store migration, the ClickHouse sink writing to the store (chDB by
default), one or more Faust workers, Alertmanager with the generated routing, Prometheus with the generated rules
scraping the workers' and the sink's ``/metrics``, and optionally the simulator feeding the broker. Everything binds
to 127.0.0.1. Pid files and logs live in ``<SCC_DATA_DIR>/stack`` (``./var/stack``), with ``stack.json`` — the
manifest ``status`` and ``down`` read: each service's pid, port, URL and log, and the process's start time, so a pid
the system has since given to another process is never signalled. Every process is stopped by its own pid.

Compose (``compose.yaml``) runs the same processes as services; this is the same stack for people without Docker.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grafana import alerting
from grafana.build import ROOT
from scc.broker import start_broker
from scc.demo import external_broker, pipeline_env, start_pipeline_process
from scc.processes import Child, free_port, python_module, start
from schemas.settings import DEFAULT_BROKER_PORT, Settings
from streams.topics import create_topics

STACK_DIR = "stack"
STATE_FILE = "stack.json"
LOCK_FILE = ".lock"
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
RULES_GLOB = ROOT / "deploy/prometheus/rules/*.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy/alertmanager/alertmanager.yml"
SIMULATOR = ROOT / "deploy/simulator.py"
START_TIMEOUT_S = 90.0  # a Faust worker imports for a few seconds; several at once on two cores take longer
MIGRATE_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
SINK_STOP_TIMEOUT_S = 30.0  # the sink flushes and commits what it holds before exiting
LOG_TAIL_LINES = 20

Progress = Callable[[str], None]


class StackError(Exception):
    """The stack cannot be started (or is already running): the message says why and what to do."""


@dataclass
class Service:
    """One process of the stack, as recorded in ``stack.json``."""

    name: str
    pid: int
    url: str
    log: str
    port: int | None = None
    check: str = "tcp"  # tcp: the port accepts connections; ready: GET URL/-/ready is 200; none: no port
    started: int | None = None  # the process's start time (clock ticks after boot, /proc), to recognise it later

    @property
    def pid_file(self) -> Path:
        return Path(self.log).with_suffix(".pid")


@dataclass
class Stack:
    """The manifest of a started stack."""

    started_at: str
    data_dir: str
    kafka: str
    store: str
    sink_status: str
    services: list[Service] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stack:
        services = [Service(**s) for s in data.get("services", [])]
        return cls(**{**data, "services": services})


@dataclass(frozen=True)
class UpOptions:
    workers: int = 1
    simulate: str | None = None  # normal or surge: play a synthetic day into the broker
    speed: float = 60.0  # simulated seconds per real second
    broker_port: int = DEFAULT_BROKER_PORT  # 0: any free port
    prometheus_port: int = PROMETHEUS_PORT
    alertmanager_port: int = ALERTMANAGER_PORT
    scrape_interval: str = "15s"


@dataclass
class ServiceStatus:
    service: Service
    alive: bool
    state: str  # up, not ready (alive, port not answering), finished (the simulator, done), down

    @property
    def ok(self) -> bool:
        return self.state in ("up", "finished")


@dataclass
class StackStatus:
    stack: Stack
    services: list[ServiceStatus]
    sink: dict[str, Any] | None  # the sink's counters (connectors/clickhouse_sink.py SinkStats) since the stack started

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.services)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "started_at": self.stack.started_at,
            "kafka": self.stack.kafka,
            "store": self.stack.store,
            "services": [
                {**asdict(s.service), "alive": s.alive, "state": s.state, "pid_file": str(s.service.pid_file)}
                for s in self.services
            ],
            "sink": self.sink,
        }


# --- where things are --------------------------------------------------------------------------------------------


def stack_dir(settings: Settings) -> Path:
    return (settings.data_dir / STACK_DIR).resolve()


def load(directory: Path) -> Stack | None:
    try:
        return Stack.from_json(json.loads((directory / STATE_FILE).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise StackError(f"{directory / STATE_FILE} is unreadable ({exc}); remove it once nothing runs") from None


def _save(directory: Path, stack: Stack) -> None:
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(stack.to_json(), indent=1))
    tmp.replace(directory / STATE_FILE)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One ``up`` or ``down`` at a time on a data directory (released when the process ends, however it ends)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"another `scc stack` command is working on {directory}") from None
        yield


# --- processes, by pid -------------------------------------------------------------------------------------------


def _proc(pid: int) -> tuple[str, int | None] | None:
    """(state letter, start time in clock ticks after boot) of a process, or None when there is no such process.

    The start time (``/proc/PID/stat`` field 22) never changes for a process and differs for a later one that is
    given the same pid, so it tells the process we started from another one reusing its number.
    """
    if not Path("/proc").is_dir():
        return _kill_probe(pid)
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _kill_probe(pid)
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[19])


def _kill_probe(pid: int) -> tuple[str, int | None] | None:
    """Without /proc: signal 0 says whether the pid exists (no start time to compare)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "?", None


def _started(pid: int) -> int | None:
    info = _proc(pid)
    return info[1] if info else None


def _started_epoch(ticks: int) -> float | None:
    """A start time in clock ticks after boot as epoch seconds (to within the boot time's second)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    boot = next((float(line.split()[1]) for line in lines if line.startswith("btime ")), None)
    return None if boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def alive(pid: int, started: int | None = None) -> bool:
    """The process runs and is the one recorded (same start time): a zombie or a reused pid is not alive."""
    info = _proc(pid)
    if info is None or info[0] in ("Z", "X"):
        return False
    return started is None or info[1] is None or info[1] == started


def stop_pid(pid: int, started: int | None, timeout: float) -> str:
    """SIGTERM, then SIGKILL after ``timeout``: 'stopped', 'killed' or 'not running'."""
    if not alive(pid, started):
        return "not running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, started):
            return "stopped"
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.1)
    return "killed"


# --- health ------------------------------------------------------------------------------------------------------


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def healthy(service: Service) -> bool:
    if service.check == "ready":
        return _http_ready(service.url)
    if service.check == "tcp" and service.port is not None:
        return _port_open(service.port)
    return True


def log_tail(path: str | Path, lines: int = LOG_TAIL_LINES, since: int = 0) -> str:
    """The last lines of a log, from byte ``since`` on (logs are appended to across runs)."""
    try:
        with open(path, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _simulator_finished(service: Service) -> bool:
    return service.name == "simulator" and any(
        line.rstrip().endswith(" events") and ": done: " in line for line in log_tail(service.log, 3).splitlines()
    )


# --- up ----------------------------------------------------------------------------------------------------------


def _binaries() -> tuple[str, str]:
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if prometheus is None or alertmanager is None:
        missing = " and ".join(n for n, b in (("prometheus", prometheus), ("alertmanager", alertmanager)) if not b)
        raise StackError(
            f"{missing} not found on PATH: install Debian's packages "
            "(`apt-get install -y --no-install-recommends prometheus prometheus-alertmanager`, "
            "or scripts/install-monitoring.sh)"
        )
    return prometheus, alertmanager


def _generated_files(simulate: bool) -> None:
    if not list(RULES_GLOB.parent.glob(RULES_GLOB.name)) or not ALERTMANAGER_CONFIG.exists():
        raise StackError(
            f"the generated alert rules ({RULES_GLOB.parent}) or routing ({ALERTMANAGER_CONFIG}) are missing: "
            "run `scc grafana build` in a checkout of the repository"
        )
    if simulate and not SIMULATOR.exists():
        raise StackError(f"{SIMULATOR} is missing: --simulate needs a checkout of the repository")


def _ports(options: UpOptions, local_broker: bool) -> dict[str, int]:
    """The fixed ports, each free on 127.0.0.1 (0: any free port), or a clear refusal."""
    wanted = {"prometheus": options.prometheus_port, "alertmanager": options.alertmanager_port}
    if local_broker:
        wanted = {"broker": options.broker_port, **wanted}
    ports: dict[str, int] = {}
    for name, port in wanted.items():
        if port == 0:
            port = free_port()
            while port in ports.values():
                port = free_port()
        elif port in ports.values():
            raise StackError(f"--{name}-port {port} is also given to another service")
        elif not _port_free(port):
            raise StackError(
                f"port {port} on 127.0.0.1 is in use, so {name} cannot listen there: "
                f"pass --{name}-port PORT (0: any free port)"
            )
        ports[name] = port
    return ports


def prometheus_config(worker_ports: list[int], sink_port: int, alertmanager_port: int, scrape_interval: str) -> str:
    """The stack's prometheus.yml: the generated configuration with loopback targets and the repository's rules."""
    targets = alerting.ScrapeTargets(
        worker_dns=None,
        worker_static=tuple(f"127.0.0.1:{p}" for p in worker_ports),
        sink=(f"127.0.0.1:{sink_port}",),
        alertmanagers=(f"127.0.0.1:{alertmanager_port}",),
        rule_files=(str(RULES_GLOB),),
        scrape_interval=scrape_interval,
        evaluation_interval=scrape_interval,
    )
    header = (
        "# Written by `scc stack up` from grafana/alerting.py (as deploy/prometheus/prometheus.yml, with loopback\n"
        "# targets). Rewritten at every start: do not edit.\n"
    )
    return header + yaml.safe_dump(alerting.prometheus_config(targets), sort_keys=False)


class _Starter:
    """Starts the services in order, recording each in the manifest as soon as it runs."""

    def __init__(self, directory: Path, stack: Stack, progress: Progress) -> None:
        self.directory = directory
        self.stack = stack
        self.progress = progress
        self.children: list[Child] = []
        self.log_sizes = {log.name: log.stat().st_size for log in directory.glob("*.log")}  # earlier runs' lines

    def tail(self, child: Child) -> str:
        return log_tail(child.log_file, since=self.log_sizes.get(child.log_file.name, 0))

    def add(self, child: Child, url: str, port: int | None, check: str) -> Service:
        self.children.append(child)
        service = Service(
            child.name, child.process.pid, url, str(child.log_file), port, check, _started(child.process.pid)
        )
        self.stack.services.append(service)
        _save(self.directory, self.stack)
        return service

    def wait(self, child: Child, service: Service, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not child.alive():
                raise StackError(
                    f"{child.name} exited with code {child.process.returncode} while starting; "
                    f"last lines of {child.log_file}:\n{self.tail(child)}"
                )
            if healthy(service):
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"{child.name} did not become ready at {service.url} within {timeout:.0f}s; "
                    f"last lines of {child.log_file}:\n{self.tail(child)}"
                )
            time.sleep(0.1)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop(timeout=SINK_STOP_TIMEOUT_S if child.name == "sink" else STOP_TIMEOUT_S)
        (self.directory / STATE_FILE).unlink(missing_ok=True)


def up(settings: Settings, options: UpOptions, progress: Progress = lambda _: None) -> Stack:
    """Start the stack in dependency order, each service healthy before the next; refuse if one is running."""
    if options.workers < 1:
        raise StackError("--workers must be at least 1")
    if options.speed <= 0:
        raise StackError("--speed must be positive")
    directory = stack_dir(settings)
    with _locked(directory):
        _refuse_if_running(directory)
        _clear(directory)
        prometheus, alertmanager = _binaries()
        _generated_files(options.simulate is not None)
        local_broker = not external_broker()
        ports = _ports(options, local_broker)
        data_dir = settings.data_dir.resolve()
        settings = settings.model_copy(update={"data_dir": data_dir})
        if local_broker:
            settings = settings.model_copy(update={"kafka": f"127.0.0.1:{ports['broker']}"})
        from clickhouse.store import DEFAULT_DSN

        stack = Stack(
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            data_dir=str(data_dir),
            kafka=settings.kafka,
            store=settings.store or DEFAULT_DSN,
            sink_status=str(data_dir / "run" / "sink-status.json"),
        )
        starter = _Starter(directory, stack, progress)
        try:
            _start_all(starter, settings, options, ports, prometheus, alertmanager)
        except BaseException:
            progress("stopping what was started …")
            starter.stop_all()
            raise
        return stack


def _start_all(
    starter: _Starter, settings: Settings, options: UpOptions, ports: dict[str, int], prometheus: str, alertmanager: str
) -> None:
    directory, progress = starter.directory, starter.progress
    env = pipeline_env(settings) | {"SCC_DATA_DIR": str(settings.data_dir), "SCC_METRICS_HOST": "127.0.0.1"}

    # the store migration runs (one-shot, as compose's `migrate`) while the broker starts and the topics are created
    migrate = start("migrate", python_module("scc.cli", "db", "migrate"), directory, env)
    starter.children.append(migrate)
    if "broker" in ports:
        progress(f"starting Tansu on 127.0.0.1:{ports['broker']} …")
        broker = start_broker(ports["broker"], directory)
        starter.add(broker, settings.kafka, ports["broker"], "tcp")
    else:
        progress(f"using the broker in SCC_KAFKA ({settings.kafka})")
    try:
        created = asyncio.run(create_topics(settings))
    except Exception as exc:  # an unreachable or refusing broker: say which, without a traceback
        raise StackError(f"cannot create the topics on {settings.kafka}: {type(exc).__name__}: {exc}") from None
    progress(f"topics ready ({len(created)} created); migrating the store {starter.stack.store} …")
    try:
        code = migrate.process.wait(MIGRATE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = None
    starter.children.remove(migrate)
    migrate.stop()
    if code != 0:
        raise StackError(
            f"store migration failed (`scc db migrate`); last lines of {migrate.log_file}:\n{starter.tail(migrate)}"
        )

    progress(f"starting the sink and {options.workers} worker(s) …")
    sink_port = free_port()
    pending = [
        (
            start_pipeline_process("sink", directory, env | {"SCC_METRICS_PORT": str(sink_port)}),
            sink_port,
        )
    ]
    worker_ports: list[int] = []
    for i in range(1, options.workers + 1):
        port = free_port()
        while port in (sink_port, *worker_ports, *ports.values()):
            port = free_port()
        worker_ports.append(port)
        child = start_pipeline_process("worker", directory, env | {"SCC_METRICS_PORT": str(port)}, f"worker-{i}")
        pending.append((child, port))
    services = [(child, starter.add(child, f"http://127.0.0.1:{port}/metrics", port, "tcp")) for child, port in pending]
    for child, service in services:
        starter.wait(child, service)

    am_port = ports["alertmanager"]
    progress(f"starting Alertmanager on 127.0.0.1:{am_port} …")
    am = start(
        "alertmanager",
        [
            alertmanager,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={directory / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            f"--web.external-url=http://127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # no gossip port (it would listen on every interface)
        ],
        directory,
    )
    starter.wait(am, starter.add(am, f"http://127.0.0.1:{am_port}", am_port, "ready"))

    prom_port = ports["prometheus"]
    progress(f"starting Prometheus on 127.0.0.1:{prom_port} …")
    config_file = directory / "prometheus.yml"
    config_file.write_text(prometheus_config(worker_ports, sink_port, am_port, options.scrape_interval))
    prom = start(
        "prometheus",
        [
            prometheus,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={directory / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            f"--web.external-url=http://127.0.0.1:{prom_port}",
        ],
        directory,
    )
    starter.wait(prom, starter.add(prom, f"http://127.0.0.1:{prom_port}", prom_port, "ready"))

    if options.simulate:
        progress(f"starting the simulator ({options.simulate}, ×{options.speed:g}) …")
        argv = [sys.executable, str(SIMULATOR), "--scenario", options.simulate, "--speed", f"{options.speed:g}"]
        sim = start("simulator", argv, directory, env)
        service = starter.add(sim, "-", None, "none")
        time.sleep(0.5)
        starter.wait(sim, service)


def _refuse_if_running(directory: Path) -> None:
    stack = load(directory)
    running = [s for s in stack.services if alive(s.pid, s.started)] if stack else []
    running_names = {s.name for s in running}
    for pid_file, pid, started in _pid_files(directory):
        if pid_file.stem not in running_names and alive(pid, started):
            running.append(Service(pid_file.stem, pid, "-", str(pid_file.with_suffix(".log"))))
    if running:
        listed = ", ".join(f"{s.name} (pid {s.pid})" for s in running)
        raise StackError(f"a stack is already running from {directory}: {listed}; `scc stack down` stops it")


def _pid_files(directory: Path) -> list[tuple[Path, int, int | None]]:
    """Every pid file in the directory, with the start time its process must have (the file was written just after)."""
    out = []
    for pid_file in sorted(directory.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
            written = pid_file.stat().st_mtime
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
            continue
        started = _started(pid)
        epoch = None if started is None else _started_epoch(started)
        if started is not None and epoch is not None and epoch > written + 2.0:
            started = -1  # started after its pid file was written: another process reusing the number
        out.append((pid_file, pid, started))
    return out


def _clear(directory: Path) -> None:
    """Forget a stack that is no longer running: its manifest and pid files (the logs stay, appended to)."""
    (directory / STATE_FILE).unlink(missing_ok=True)
    for pid_file in directory.glob("*.pid"):
        pid_file.unlink(missing_ok=True)


# --- status and down ---------------------------------------------------------------------------------------------


def status(settings: Settings) -> StackStatus | None:
    """Each service of the recorded stack, alive and answering or not, and the sink's counters; None: no stack."""
    stack = load(stack_dir(settings))
    if stack is None:
        return None
    services = []
    for service in stack.services:
        is_alive = alive(service.pid, service.started)
        if is_alive:
            state = "up" if healthy(service) else "not ready"
        else:
            state = "finished" if _simulator_finished(service) else "down"
        services.append(ServiceStatus(service, is_alive, state))
    return StackStatus(stack, services, _sink_counters(stack))


def _sink_counters(stack: Stack) -> dict[str, Any] | None:
    path = Path(stack.sink_status)
    try:
        if path.stat().st_mtime < dt.datetime.fromisoformat(stack.started_at).timestamp() - 1:
            return None  # left by an earlier run
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class Stopped:
    name: str
    pid: int
    outcome: str  # stopped, killed, not running


def down(settings: Settings, timeout: float = STOP_TIMEOUT_S, progress: Progress = lambda _: None) -> list[Stopped]:
    """Stop every service by its own pid, in reverse start order; remove the pid files and the manifest."""
    directory = stack_dir(settings)
    if not directory.exists():
        return []
    with _locked(directory):
        stack = load(directory)
        services = list(reversed(stack.services)) if stack else []
        known = {s.pid_file.name for s in services}
        for pid_file, pid, started in _pid_files(directory):  # a process started but not yet recorded
            if pid_file.name not in known:
                services.insert(0, Service(pid_file.stem, pid, "-", str(pid_file.with_suffix(".log")), started=started))
        stopped = []
        for service in services:
            if alive(service.pid, service.started):
                progress(f"stopping {service.name} (pid {service.pid}) …")
            wait = max(timeout, SINK_STOP_TIMEOUT_S) if service.name == "sink" else timeout
            outcome = stop_pid(service.pid, service.started, wait)
            service.pid_file.unlink(missing_ok=True)
            stopped.append(Stopped(service.name, service.pid, outcome))
        _clear(directory)
        return stopped

"""Fault scenarios on the real pipeline (Tansu, Faust workers, the sink, chDB), shared by ``test_faults.py`` and
``scripts/reliability_report.py``.

Each scenario runs real processes, injects one fault, waits until the platform has caught up and returns an
:class:`Outcome`: events sent, stored, lost and duplicated, how many published indicators disagree with the SQL
recomputation and the in-process engine, and the recovery time (seconds from the end of the fault to caught up:
the worker has published a snapshot at the last event time and the sink has written every delivered event).
The tests assert on the outcome; the report script tabulates it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from clickhouse.recompute import recompute
from clickhouse.store import open_store
from connectors.clickhouse_sink import SINK_GROUP
from connectors.files import FileReject, read_jsonl, write_jsonl
from connectors.kafka_producer import EventProducer
from connectors.simulator import simulate
from integration.pipeline_support import close, scrape, wait_for_sink, wait_for_snapshot_at
from scc.broker import start_broker
from scc.processes import Child, free_port, python_module, start
from schemas.config import load_config
from schemas.events import Envelope, topic_of
from schemas.indicators import IndicatorSnapshot
from schemas.settings import Settings
from streams.engine import evaluate_at
from streams.topics import INDICATORS, INPUT_TOPICS, create_topics, partition_counts

START = dt.datetime(2026, 10, 24, 12, 0, tzinfo=dt.UTC)  # crosses the autumn clock change
RAW_TABLES = ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge", "raw_opel")
REPLAY_EVERY_MINUTES = 720  # history snapshots every 12 h of event time: keeps `scc replay` to seconds in tests
STORE_OUTAGE_S = 12.0
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# --- the day and its source file -----------------------------------------------------------------------------------


def day_events() -> list[Envelope]:
    """A simulated 12-hour LLR day (with five days of warm-up history), in event-time order: ~33k events."""
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


def source_file(tmp_path: Path, events: list[Envelope]) -> Path:
    """The day as a JSON Lines source file (what a feed would have written and a replay reads back)."""
    path = tmp_path / "source" / "day.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(events, path)
    return path


def read_source(path: Path) -> list[Envelope]:
    items = list(read_jsonl([path]))
    assert not [i for i in items if isinstance(i, FileReject)], "the source file has rejects"
    return items  # type: ignore[return-value]


def split_point(events: list[Envelope]) -> int:
    """An index near the middle where event time strictly increases, so 'the first half' is 'everything up to T'."""
    half = len(events) // 2
    while half < len(events) and events[half].occurred_at == events[half - 1].occurred_at:
        half += 1
    return half


# --- the outcome ---------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a scenario sent and what the store holds afterwards."""

    name: str
    sent: int = 0  # distinct events offered to the platform (re-sends and replays not counted twice)
    stored_rows: int = 0  # rows in the raw tables (FINAL)
    stored_unique: int = 0  # distinct event ids in the raw tables
    lost: int = 0  # sent but not stored
    duplicated: int = 0  # stored more than once, or stored but never sent
    indicators_checked: int = 0
    wrong_vs_sql: list = field(default_factory=list)
    wrong_vs_engine: list = field(default_factory=list)
    latest_snapshot_ok: bool = False
    recovery_s: float | None = None
    evidence: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.stored_rows == self.sent
            and self.indicators_checked > 0
            and not self.wrong_vs_sql
            and not self.wrong_vs_engine
            and self.latest_snapshot_ok
        )

    def summary(self) -> str:
        return (
            f"{self.name}: sent {self.sent}, stored {self.stored_rows} ({self.stored_unique} ids), lost {self.lost}, "
            f"duplicated {self.duplicated}, indicators {self.indicators_checked} "
            f"(wrong vs SQL {len(self.wrong_vs_sql)}, vs engine {len(self.wrong_vs_engine)}), "
            f"latest snapshot ok {self.latest_snapshot_ok}, recovery {self.recovery_s}s, evidence {self.evidence}"
        )


def _key(row: dict) -> tuple[str, str, str, str]:
    return row["indicator"], row["window"], row["scope_type"], row["scope_code"]


def verify_store(outcome: Outcome, store_dsn: str, events: list[Envelope], at: dt.datetime) -> Outcome:
    """Every event stored exactly once; the snapshots published for ``at`` equal the SQL recomputation over the raw
    tables and the in-process engine over the events."""
    config = load_config()
    store = open_store(store_dsn)
    try:
        ids: list[str] = []
        for table in RAW_TABLES:
            ids += [r[0] for r in store.query_rows(f"SELECT event_id FROM scc.{table} FINAL")]
        published = {
            _key(r): r["value"]
            for r in store.query_dicts(
                "SELECT indicator, window, scope_type, scope_code, value FROM scc.indicator_snapshots FINAL "
                "WHERE ts = {at:DateTime64(6, 'UTC')}",
                {"at": at},
            )
        }
        latest = store.query_rows("SELECT max(ts) FROM scc.indicator_snapshots")[0][0]
        recomputed = recompute(store, at, config.icb)
    finally:
        store.close()
    sent_ids = {e.event_id for e in events}
    stored = set(ids)
    outcome.sent = len(sent_ids)
    outcome.stored_rows = len(ids)
    outcome.stored_unique = len(stored)
    outcome.lost = len(sent_ids - stored)
    outcome.duplicated = (len(ids) - len(stored)) + len(stored - sent_ids)
    outcome.latest_snapshot_ok = latest is not None and latest.replace(tzinfo=dt.UTC) == at
    engine = {(s.indicator, s.window, s.scope_type, s.scope_code): s.value for s in evaluate_at(config, events, at)}
    outcome.indicators_checked = len(recomputed)
    outcome.wrong_vs_sql = [
        (_key(r), r["value"], published.get(_key(r)))
        for r in recomputed
        if not close(published.get(_key(r)), r["value"])
    ]
    outcome.wrong_vs_engine = [
        (_key(r), r["value"], engine.get(_key(r))) for r in recomputed if not close(engine.get(_key(r)), r["value"])
    ]
    return outcome


# --- processes -----------------------------------------------------------------------------------------------------


class Pipeline:
    """Broker, workers and sink on loopback, each stopped by its own pid; each with its own /metrics port."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.run_dir = tmp_path / "run"
        self.port = free_port()
        self.store_path = tmp_path / "store"
        self.store_dsn = f"chdb://{self.store_path}"
        self.env = {
            "SCC_KAFKA": f"127.0.0.1:{self.port}",
            "SCC_STORE": self.store_dsn,
            "SCC_DATA_DIR": str(tmp_path / "var"),
        }
        self.settings = Settings(kafka=self.env["SCC_KAFKA"], store=self.store_dsn, data_dir=tmp_path / "var")
        self.status_file = tmp_path / "var" / "run" / "sink-status.json"
        self.children: dict[str, Child] = {}
        self.metrics_ports: dict[str, int] = {}
        self.broker = start_broker(self.port, self.run_dir)
        asyncio.run(create_topics(self.settings))

    def start(self, name: str, command: str) -> Child:
        port = free_port()
        env = self.env | {"SCC_METRICS_PORT": str(port)}
        child = start(name, python_module("scc.cli", command), self.run_dir, env)
        self.children[name] = child
        self.metrics_ports[name] = port
        return child

    def kill(self, name: str) -> None:
        child = self.children.pop(name)
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(10)
        child.pid_file.unlink(missing_ok=True)

    def workers(self) -> list[str]:
        return [n for n in self.children if n.startswith("worker")]

    def stop_workers(self) -> None:
        for name in self.workers():
            self.children.pop(name).stop(timeout=30)

    def stop_all(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop(timeout=30)
        self.children.clear()
        self.broker.stop()

    def kill_broker(self) -> None:
        """SIGKILL Tansu: its memory store (topics, retained logs, committed offsets) is gone."""
        self.broker.process.send_signal(signal.SIGKILL)
        self.broker.process.wait(10)
        self.broker.pid_file.unlink(missing_ok=True)

    def restart_broker(self) -> None:
        """Start Tansu again on the same port (empty) and create the topics at once."""
        self.broker = start_broker(self.port, self.run_dir)
        asyncio.run(create_topics(self.settings))

    def sink_status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def scrape(self, name: str) -> dict:
        return scrape(self.metrics_ports[name])

    def metric_sum(self, name: str, metric: str) -> float:
        return sum(v for (sample, _), v in self.scrape(name).items() if sample == metric)

    def rss_mb(self, name: str) -> float:
        for line in Path(f"/proc/{self.children[name].process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log_tail(self, name: str, chars: int = 3000) -> str:
        return (self.run_dir / f"{name}.log").read_text(errors="replace")[-chars:]


async def produce(settings: Settings, events: Iterable[Envelope], producer: EventProducer | None = None) -> int:
    """Send events (through ``producer`` when given, else a new one) and wait until the broker has them."""
    if producer is not None:
        for event in events:
            await producer.send(event)
        await producer.flush()
        return producer.sent
    async with EventProducer(settings) as own:
        for event in events:
            await own.send(event)
    return own.sent


async def group_offsets(settings: Settings, group: str) -> tuple[int, int]:
    """(sum of the group's committed offsets, sum of the end offsets) over the input and output topics the sink reads.
    Tansu under-reports end offsets of batched producers (INFRA.md caveat 1): the difference is a lower bound of the
    group's lag."""
    counts = partition_counts(settings)
    tps = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return sum(max(0, m.offset) for m in committed.values() if m is not None), sum(ends.values())


async def wait_for_indicators(settings: Settings, at: dt.datetime, expected: dict, timeout: float) -> None:
    """Until the worker has published, for event time ``at``, every indicator with its expected value (the last
    published value of each key counts): a snapshot at ``at`` alone may come from a worker still rebuilding."""
    wrong = set(expected)
    consumer = AIOKafkaConsumer(INDICATORS, bootstrap_servers=settings.kafka_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            async for message in consumer:
                snap = IndicatorSnapshot.model_validate_json(message.value)
                key = (snap.indicator, snap.window, snap.scope_type, snap.scope_code)
                if snap.ts != at or key not in expected:
                    continue
                if close(snap.value, expected[key]):
                    wrong.discard(key)
                    if not wrong:
                        return
                else:
                    wrong.add(key)
    finally:
        await consumer.stop()


def expected_indicators(events: list[Envelope], at: dt.datetime) -> dict:
    return {
        (s.indicator, s.window, s.scope_type, s.scope_code): s.value for s in evaluate_at(load_config(), events, at)
    }


def wait_caught_up(
    pipe: Pipeline, events: list[Envelope], sink_events: int, since: float, timeout: float = 300
) -> float:
    """Block until the worker published every indicator at the last event time with its value (the engine's, over
    the same events) and the sink's status counts ``sink_events`` written events; return the seconds since
    ``since`` (the end of the fault)."""
    last_time = events[-1].occurred_at
    asyncio.run(wait_for_indicators(pipe.settings, last_time, expected_indicators(events, last_time), timeout))
    deadline = time.monotonic() + timeout
    while pipe.sink_status().get("events", 0) < sink_events:
        if time.monotonic() > deadline:
            raise TimeoutError(f"sink did not catch up: {pipe.sink_status()} < {sink_events}")
        time.sleep(0.2)
    return round(time.monotonic() - since, 1)


def finish(pipe: Pipeline, sink_events: int) -> None:
    """Stop the workers cleanly (they flush what they produced), let the sink write it, stop everything."""
    time.sleep(4)  # a last snapshot interval at the final event time
    pipe.stop_workers()
    wait_for_sink(pipe.status_file, sink_events, timeout=300)


# --- scenarios: a process fault between two halves of the day -------------------------------------------------------


@dataclass
class Fault:
    """What happens to the pipeline between the two halves: ``inject`` before the second half is produced,
    ``recover`` after it (a fault that is over at once does nothing in ``recover``). Both may record evidence."""

    name: str
    inject: Callable[[Pipeline, dict], None]
    recover: Callable[[Pipeline, dict], None] = lambda pipe, evidence: None
    workers: int = 1


def run_fault(tmp_path: Path, fault: Fault, progress: Progress = _quiet) -> Outcome:
    events = day_events()
    half = split_point(events)
    last_time = events[-1].occurred_at
    outcome = Outcome(fault.name)
    pipe = Pipeline(tmp_path)
    try:
        for n in range(fault.workers):
            pipe.start(f"worker{n}", "worker")
        pipe.start("sink", "sink")
        progress(f"{fault.name}: first half ({half} events)")
        asyncio.run(produce(pipe.settings, events[:half]))
        asyncio.run(wait_for_snapshot_at(pipe.settings, events[half - 1].occurred_at, timeout=300))
        progress(f"{fault.name}: fault")
        fault.inject(pipe, outcome.evidence)
        progress(f"{fault.name}: second half ({len(events) - half} events)")
        asyncio.run(produce(pipe.settings, events[half:]))
        fault.recover(pipe, outcome.evidence)
        fault_end = time.monotonic()
        # The sink incarnation running now must write what it had not committed before: all, unless restarted.
        target = len(events) - outcome.evidence.get("sink_committed_before_restart", 0)
        outcome.recovery_s = wait_caught_up(pipe, events, target, fault_end)
        progress(f"{fault.name}: caught up {outcome.recovery_s}s after the fault ended")
        outcome.evidence["sink_status"] = pipe.sink_status()
        finish(pipe, target)
    finally:
        pipe.stop_all()
    return verify_store(outcome, pipe.store_dsn, events, last_time)


def _kill_restart_worker(pipe: Pipeline, evidence: dict) -> None:
    pipe.kill("worker0")
    pipe.start("worker0", "worker")


def _kill_one_of_two(pipe: Pipeline, evidence: dict) -> None:
    pipe.kill("worker1")


def _kill_restart_sink(pipe: Pipeline, evidence: dict) -> None:
    evidence["sink_committed_before_restart"] = pipe.sink_status().get("events", 0)
    pipe.kill("sink")
    pipe.status_file.unlink(missing_ok=True)
    pipe.start("sink", "sink")


WORKER_KILLED = Fault("worker SIGKILL + restart", _kill_restart_worker)
ONE_OF_TWO_WORKERS_KILLED = Fault("one of two workers SIGKILL under load", _kill_one_of_two, workers=2)
SINK_KILLED = Fault("sink SIGKILL + restart", _kill_restart_sink)


# --- ClickHouse (chDB) unavailable -----------------------------------------------------------------------------------


def _store_away(pipe: Pipeline) -> Path:
    return pipe.store_path.with_name(pipe.store_path.name + ".away")


def _store_down(pipe: Pipeline, evidence: dict) -> None:
    """Make the sink's store unusable for real: move the chDB data directory away and put a file in its place.
    Writes through the sink's open session fail (ClickHouse cannot statvfs/create parts under a file), and the
    sink's re-open fails too (the directory cannot be created), until the directory is moved back."""
    evidence["sink_rss_mb_before"] = round(pipe.rss_mb("sink"), 1)
    evidence["sink_consumed_before"] = pipe.metric_sum("sink", "scc_events_in_total")
    os.rename(pipe.store_path, _store_away(pipe))
    pipe.store_path.write_text("ClickHouse is unavailable (fault test)\n")
    evidence["outage_started"] = time.monotonic()


def _store_up(pipe: Pipeline, evidence: dict) -> None:
    """Observe the sink while the store is down, then restore the directory."""
    samples: list[dict] = []
    while time.monotonic() - evidence["outage_started"] < STORE_OUTAGE_S:
        committed, ends = asyncio.run(group_offsets(pipe.settings, SINK_GROUP))
        samples.append(
            {
                "t": round(time.monotonic() - evidence["outage_started"], 1),
                "failures": pipe.metric_sum("sink", "scc_sink_write_failures_total"),
                "consumed": pipe.metric_sum("sink", "scc_events_in_total"),
                "rss_mb": round(pipe.rss_mb("sink"), 1),
                "committed": committed,
                "lag_lower_bound": ends - committed,
            }
        )
        time.sleep(1.0)
    pipe.store_path.unlink()
    os.rename(_store_away(pipe), pipe.store_path)
    failing = [s for s in samples if s["failures"] > 0]
    evidence["samples"] = samples
    evidence["write_failures_during_outage"] = samples[-1]["failures"]
    if failing:  # from the first failed write on, the sink is paused: it consumes and commits nothing more
        evidence["consumed_while_paused"] = failing[-1]["consumed"] - failing[0]["consumed"]
        evidence["committed_while_paused"] = failing[-1]["committed"] - failing[0]["committed"]
        evidence["lag_growth_while_paused"] = failing[-1]["lag_lower_bound"] - failing[0]["lag_lower_bound"]
        evidence["paused_for_s"] = failing[-1]["t"] - failing[0]["t"]
    evidence["sink_rss_mb_max"] = max(s["rss_mb"] for s in samples)
    evidence["sink_consumed_during_outage"] = samples[-1]["consumed"] - evidence["sink_consumed_before"]
    del evidence["outage_started"]


STORE_UNAVAILABLE = Fault(f"ClickHouse (chDB) unavailable {STORE_OUTAGE_S:.0f} s", _store_down, _store_up)


# --- the broker restarted: everything it held is gone ----------------------------------------------------------------


def run_broker_restart(tmp_path: Path, progress: Progress = _quiet) -> Outcome:
    """Tansu is killed mid-day and started again (memory store: topics, retained logs and committed offsets are gone).

    One producer stays open across the restart and reconnects by itself. The consumers must not simply carry on: left
    running, the worker and the sink rejoin the new broker's groups and commit the positions they held in the lost
    logs, then skip that many records of the re-produced day (seen: the sink wrote only the second half again and the
    worker's state missed the first half). Procedure: stop the workers and the sink (SIGKILL: their state refers to
    logs that no longer exist) before the broker is back, start the broker and create the topics, start the workers
    and the sink (empty groups: they read from the start), re-produce the day from its JSON Lines source file. The
    raw tables deduplicate what the sink writes twice."""
    events = day_events()
    source = source_file(tmp_path, events)
    half = split_point(events)
    last_time = events[-1].occurred_at
    name = "broker restart (memory lost), replay from source"
    outcome = Outcome(name)
    pipe = Pipeline(tmp_path)

    async def day() -> float:
        async with EventProducer(pipe.settings) as producer:
            progress(f"{name}: first half ({half} events)")
            await produce(pipe.settings, read_source(source)[:half], producer)
            await wait_for_snapshot_at(pipe.settings, events[half - 1].occurred_at, timeout=300)
            outcome.evidence["sink_events_before_restart"] = pipe.sink_status().get("events", 0)
            progress(f"{name}: broker SIGKILL; workers and sink stopped; broker started again")
            pipe.kill_broker()
            consumers = [*pipe.workers(), "sink"]
            for child in consumers:
                pipe.kill(child)
            pipe.status_file.unlink(missing_ok=True)
            await asyncio.to_thread(pipe.restart_broker)
            outcome.evidence["topics_after_restart"] = await _partition_counts(pipe.settings)
            for child in consumers:
                pipe.start(child, "sink" if child == "sink" else "worker")
            fault_end = time.monotonic()
            progress(f"{name}: re-producing the day from {source.name} ({len(events)} events)")
            await produce(pipe.settings, read_source(source), producer)  # the same producer: it reconnected
            outcome.evidence["producer_sent"] = producer.sent
            return fault_end

    try:
        pipe.start("worker0", "worker")
        pipe.start("sink", "sink")
        fault_end = asyncio.run(day())
        outcome.recovery_s = wait_caught_up(pipe, events, len(events), fault_end)
        progress(f"{name}: caught up {outcome.recovery_s}s after the restart")
        finish(pipe, len(events))
        outcome.evidence["sink_status"] = pipe.sink_status()
    finally:
        pipe.stop_all()
    return verify_store(outcome, pipe.store_dsn, events, last_time)


async def _partition_counts(settings: Settings) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_servers)
    await consumer.start()
    try:
        topics = await consumer.topics()
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in sorted(topics)}
    finally:
        await consumer.stop()


# --- replay: twice, and over live data -------------------------------------------------------------------------------


def scc(*args: str, store: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process (chDB: one process per data directory)."""
    result = subprocess.run(
        [sys.executable, "-m", "scc.cli", *args, "--store", store],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def replay(path: Path, store: str) -> str:
    return scc("replay", str(path), "--every", str(REPLAY_EVERY_MINUTES), store=store).stdout.strip()


def indicators_at(at: dt.datetime, store: str) -> list[dict]:
    return json.loads(scc("indicators", "--at", at.isoformat(), "--json", store=store).stdout)


def table_digest(store_dsn: str) -> dict[str, tuple]:
    """Each table as the platform reads it (FINAL): row count and an order-independent hash of its content
    (``computed_at``, ``ingested_at`` and ``logged_at`` excluded: they record when a row was written, not what it
    says)."""
    store = open_store(store_dsn)
    try:
        digest = {}
        for table in RAW_TABLES:
            digest[table] = store.query_rows(
                f"SELECT count(), uniqExact(event_id), sum(cityHash64(event_id, payload)) FROM scc.{table} FINAL"
            )[0]
        digest["indicator_snapshots"] = store.query_rows(
            "SELECT count(), countDistinct(ts), sum(cityHash64(indicator, window, scope_type, scope_code, ts, "
            "toString(value), toString(numerator), toString(denominator), toString(status))) "
            "FROM scc.indicator_snapshots FINAL"
        )[0]
        digest["alerts"] = store.query_rows(
            "SELECT count(), sum(cityHash64(alert_id, state, indicator, window, scope_type, scope_code, "
            "toString(value), toString(threshold), op, status, ts, raised_ts)) FROM scc.alerts FINAL"
        )[0]
        digest["deadletter"] = store.query_rows("SELECT count() FROM scc.deadletter FINAL")[0]
    finally:
        store.close()
    return digest


def run_replay_twice(tmp_path: Path, progress: Progress = _quiet) -> Outcome:
    """`scc replay FILE` twice into one store: the second run changes no table and no `scc indicators --at`."""
    events = day_events()
    source = source_file(tmp_path, events)
    last_time = events[-1].occurred_at
    store = f"chdb://{tmp_path / 'store'}"
    outcome = Outcome("scc replay of the same day twice")
    progress(f"{outcome.name}: first replay ({len(events)} events)")
    outcome.evidence["first"] = replay(source, store)
    digest, rows = table_digest(store), indicators_at(last_time, store)
    progress(f"{outcome.name}: second replay")
    started = time.monotonic()
    outcome.evidence["second"] = replay(source, store)
    outcome.recovery_s = round(time.monotonic() - started, 1)
    outcome.evidence["tables_unchanged"] = table_digest(store) == digest
    outcome.evidence["indicators_unchanged"] = indicators_at(last_time, store) == rows
    outcome.evidence["tables"] = {t: d[0] for t, d in digest.items()}
    if not (outcome.evidence["tables_unchanged"] and outcome.evidence["indicators_unchanged"]):
        outcome.notes.append("the second replay changed the store")
    return verify_store(outcome, store, events, last_time)


def run_replay_over_live(tmp_path: Path, progress: Progress = _quiet) -> Outcome:
    """The live pipeline writes the first half of the day; then `scc replay` of the whole day into the same store.
    With chDB the sink must release the store first (one process per directory): the live pipeline is stopped for
    the replay. Afterwards every event is stored once, the live snapshot at the half-day time and every replayed
    history snapshot equal the SQL recomputation at their times."""
    events = day_events()
    source = source_file(tmp_path, events)
    half = split_point(events)
    half_time, last_time = events[half - 1].occurred_at, events[-1].occurred_at
    outcome = Outcome("scc replay of a whole day over live data")
    pipe = Pipeline(tmp_path)
    try:
        pipe.start("worker0", "worker")
        pipe.start("sink", "sink")
        progress(f"{outcome.name}: live first half ({half} events)")
        asyncio.run(produce(pipe.settings, events[:half]))
        asyncio.run(wait_for_snapshot_at(pipe.settings, half_time, timeout=300))
        finish(pipe, half)
    finally:
        pipe.stop_all()
    progress(f"{outcome.name}: replay of the whole day ({len(events)} events)")
    started = time.monotonic()
    outcome.evidence["replay"] = replay(source, pipe.store_dsn)
    outcome.recovery_s = round(time.monotonic() - started, 1)
    outcome.evidence["history"] = _history_consistent(pipe.store_dsn, half_time)
    if outcome.evidence["history"]["wrong"]:
        outcome.notes.append("a history snapshot disagrees with the SQL recomputation at its time")
    return verify_store(outcome, pipe.store_dsn, events, last_time)


def _history_consistent(store_dsn: str, live_time: dt.datetime, replayed: int = 3) -> dict:
    """The live snapshot at ``live_time`` and the last ``replayed`` history times, each against the SQL
    recomputation at that time over the store as it is now."""
    config = load_config()
    store = open_store(store_dsn)
    try:
        times = [r[0].replace(tzinfo=dt.UTC) for r in store.query_rows(
            "SELECT DISTINCT ts FROM scc.indicator_snapshots FINAL WHERE ts > {t:DateTime64(6, 'UTC')} "
            "ORDER BY ts DESC LIMIT {n:UInt32}", {"t": live_time, "n": replayed}
        )]  # fmt: skip
        checked, wrong = 0, []
        for at in [live_time, *times]:
            published = {
                _key(r): r["value"]
                for r in store.query_dicts(
                    "SELECT indicator, window, scope_type, scope_code, value FROM scc.indicator_snapshots FINAL "
                    "WHERE ts = {at:DateTime64(6, 'UTC')}",
                    {"at": at},
                )
            }
            for row in recompute(store, at, config.icb):
                checked += 1
                if not close(published.get(_key(row)), row["value"]):
                    wrong.append((at.isoformat(), _key(row), row["value"], published.get(_key(row))))
        distinct = store.query_rows("SELECT count() = uniqExact(indicator, window, scope_type, scope_code, ts) "
                                    "FROM scc.indicator_snapshots FINAL")[0][0]  # fmt: skip
    finally:
        store.close()
    return {"times": 1 + len(times), "checked": checked, "wrong": wrong[:10], "one_row_per_key": bool(distinct)}


# --- bad input through the live pipeline -----------------------------------------------------------------------------


def bad_records(events: list[Envelope]) -> list[tuple[str, str, bytes]]:
    """(class, topic, raw bytes) of records that break the contract, each marked with its class in its bytes."""
    sample = [orjson.loads(orjson.dumps(e.model_dump(mode="json", exclude_none=True))) for e in events[:400:20]]
    out: list[tuple[str, str, bytes]] = []
    for n, good in enumerate(sample):
        topic = topic_of(events[n * 20])
        marked = {**good, "event_id": f"bad-{{cls}}-{n}"}

        def record(cls: str, value: dict, topic: str = topic) -> tuple[str, str, bytes]:
            return cls, topic, orjson.dumps(value).replace(b"{cls}", cls.encode())

        out.append(("not-json", topic, f"bad-not-json-{n} \x00\xff{{".encode()))
        out.append(record("naive-time", {**marked, "occurred_at": good["occurred_at"].replace("Z", "")[:19]}))
        out.append(record("unknown-type", {**marked, "event_type": "ed.teleported"}))
        out.append(record("missing-field", {k: v for k, v in marked.items() if k != "occurred_at"}))
        wrong_topic = next(t for t in INPUT_TOPICS if t != topic and t != "scc.opel")
        out.append(record("wrong-topic", marked, wrong_topic))
    return out


BAD_CLASSES = ("not-json", "naive-time", "unknown-type", "missing-field", "wrong-topic")


def run_bad_input(tmp_path: Path, progress: Progress = _quiet) -> tuple[Outcome, dict[str, tuple[int, int]]]:
    """The day through the live pipeline with bad records interleaved (and 2% of the events sent twice, out of
    order): every bad record is dead-lettered once, every good event stored once, indicators exact.
    Returns the outcome and {class: (bad records sent, dead letters stored)}."""
    events = day_events()
    last_time = events[-1].occurred_at
    bad = bad_records(events)
    outcome = Outcome("bad input + duplicates")
    pipe = Pipeline(tmp_path)
    try:
        pipe.start("worker0", "worker")
        pipe.start("sink", "sink")
        resend = events[::50]

        async def send() -> int:
            async with EventProducer(pipe.settings) as producer:
                step = len(events) // len(bad)
                for i, event in enumerate(events):
                    await producer.send(event)
                    if i % step == 0 and i // step < len(bad):
                        cls, topic, raw = bad[i // step]
                        await producer.send_raw(topic, f"bad-{cls}".encode(), raw)
                for event in resend:
                    await producer.send(event)
            return producer.sent

        progress(f"{outcome.name}: {len(events)} events, {len(bad)} bad records, {len(resend)} re-sent")
        started = time.monotonic()
        asyncio.run(send())
        delivered = len(events) + len(resend)
        outcome.recovery_s = wait_caught_up(pipe, events, delivered, started)
        finish(pipe, delivered)
    finally:
        pipe.stop_all()
    store = open_store(pipe.store_dsn)
    try:
        letters = [
            r[0] if isinstance(r[0], str) else bytes(r[0]).decode(errors="replace")
            for r in store.query_rows("SELECT raw FROM scc.deadletter FINAL")
        ]
    finally:
        store.close()
    by_class = {
        cls: (sum(1 for c, _, _ in bad if c == cls), sum(1 for raw in letters if f"bad-{cls}-" in raw))
        for cls in BAD_CLASSES
    }
    outcome.evidence["dead_letters"] = by_class
    outcome.evidence["dead_letters_unmatched"] = len(letters) - sum(n for _, n in by_class.values())
    verify_store(outcome, pipe.store_dsn, events, last_time)
    return outcome, by_class

"""A flood of bad input mixed into a simulated day on the real pipeline (Tansu, a Faust worker, the sink, chDB).

Thousands of records of every bad class (docs/definitions.md, "Bad input, orphans") are produced raw to the input
topics among the good events, plus orphans (events whose opening event never comes). Afterwards:

- every bad record is in ClickHouse's ``deadletter`` table with a reason naming its problem, and counted by the
  worker's ``scc_dead_letters_total``; every orphan is reported once (``orphan: …``, ``scc_orphans_total``);
- every good event is in the raw tables exactly once, and no record that breaks the contract is;
- the indicators the worker published for the last event time equal the SQL recomputation over the raw tables (so
  no bad record moved the worker's clock or a count).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import urllib.error
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from clickhouse.recompute import recompute
from clickhouse.store import open_store
from connectors.simulator import simulate
from integration.pipeline_support import close, scrape, wait_for_sink
from scc.broker import start_broker
from scc.processes import free_port, python_module, start
from schemas import events as ev
from schemas.config import load_config
from schemas.settings import Settings
from streams.engine import evaluate_at
from streams.topics import create_topics

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 3, 28, 8, 0, tzinfo=dt.UTC)
HOURS = 8
PER_CLASS = 250
ORPHAN_ATTENDANCES = 120
ORPHAN_SPELLS = 60
DEPARTURES_BEFORE_ARRIVAL = 150
LONDON = ZoneInfo("Europe/London")
RAW_TABLES = ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge")


class Bad:
    """The bad records, by class: (topic, key, value, the text its dead letter's reason must contain)."""

    def __init__(self, template: dict, rng: random.Random) -> None:
        self.records: dict[str, list[tuple[str, bytes, bytes | None, str]]] = {}
        self._made: dict[str, list[dict]] = {}
        self.stored_anyway: set[str] = set()
        """Event ids that pass the contract and so reach the raw tables (the worker rejects them with context)."""
        self._template = template
        self._rng = rng
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        self._add("malformed", "event: Invalid JSON", lambda e: orjson.dumps(e)[: -self._rng.randint(1, 30)])
        self._add("wrong_type", "department_type: Input should be", lambda e: orjson.dumps({**e, "department_type": 1}))
        self._add("wrong_type_age", "age: Input should be a valid integer", lambda e: orjson.dumps({**e, "age": "40"}))
        self._add(
            "naive",
            "occurred_at: Input should have timezone info",
            lambda e: orjson.dumps({**e, "occurred_at": e["occurred_at"][:19]}),
        )
        self._add(
            "unknown_type",
            "event_type: unknown event type 'ed.teleported'",
            lambda e: orjson.dumps({**e, "event_type": "ed.teleported"}),
        )
        self._add(
            "unknown_org", "org_code: unknown organisation 'ZZZ'", lambda e: orjson.dumps({**e, "org_code": "ZZZ"})
        )
        self._add(
            "unknown_site", "site_code: unknown site 'ZZZ01'", lambda e: orjson.dumps({**e, "site_code": "ZZZ01"})
        )
        self.stored_anyway |= {e["event_id"] for c in ("unknown_org", "unknown_site") for e in self._made[c]}
        self._add("future", "is in the future", lambda e: orjson.dumps({**e, "occurred_at": "2099-06-01T10:00:00Z"}))
        self._add("future_soon", "is in the future", lambda e: orjson.dumps({**e, "occurred_at": soon.isoformat()}))
        self._add("past", "is before 2000-01-01", lambda e: orjson.dumps({**e, "occurred_at": "1999-12-31T23:00:00Z"}))
        self._add("no_utc_instant", "outside the representable range", lambda e: orjson.dumps({**e, "occurred_at": "0001-01-01T00:00:00+01:00"}))  # fmt: skip
        self._add(
            "oversized",
            "over the 65536 byte limit",
            lambda e: orjson.dumps({**e, "source": "x" * 70_000}),
            n=30,
        )
        self._add("binary", "event: Invalid JSON", lambda e: b"\xff" + self._rng.randbytes(self._rng.randint(1, 300)))
        self._add("wrong_topic", "does not belong on topic scc.adt", orjson.dumps, topic="scc.adt")
        self._add("tombstone", "event: empty record", lambda e: None, n=10)

    def _add(self, name: str, reason: str, value, *, topic: str = "scc.ed", n: int = PER_CLASS) -> None:  # noqa: ANN001
        made = []
        records = []
        for i in range(n):
            event = {**self._template, "event_id": f"bad-{name}-{i}", "attendance_id": f"BAD-{name}-{i}"}
            made.append(event)
            records.append((topic, event["attendance_id"].encode(), value(event), reason))
        self._made[name] = made
        self.records[name] = records


def _events() -> list[ev.Envelope]:
    return list(
        simulate(
            load_config().icb,
            scenario="normal",
            start=START,
            duration=dt.timedelta(hours=HOURS),
            seed=5,
            warmup=dt.timedelta(days=2),
        )
    )


def _departures_before_arrival(events: list[ev.Envelope], last: dt.datetime) -> list[ev.EdDeparted]:
    """Bad departures (one minute before the arrival) for attendances where the SQL recomputation, which still counts
    a departure before its arrival, gives the same indicators as the worker, which rejects it: the good departure and
    the bad one fall in the same windows (today and mtd, not the last 60 minutes), both within 4 h, neither over 12 h.
    """
    day_start = dt.datetime.combine(last.astimezone(LONDON).date(), dt.time(), LONDON)
    by_id: dict[str, list[ev.Envelope]] = {}
    for e in events:
        if ev.topic_of(e) == "scc.ed":
            by_id.setdefault(ev.key_of(e), []).append(e)
    bad = []
    for attendance, items in sorted(by_id.items()):
        arrivals = [e for e in items if isinstance(e, ev.EdArrived)]
        departures = [e for e in items if isinstance(e, ev.EdDeparted)]
        if len(arrivals) != 1 or len(departures) != 1 or any(isinstance(e, ev.EdCancelled) for e in items):
            continue
        arrival, departure = arrivals[0], departures[0]
        early = arrival.occurred_at - dt.timedelta(minutes=1)
        if (
            early >= day_start
            and departure.occurred_at <= last - dt.timedelta(minutes=61)
            and departure.occurred_at - arrival.occurred_at <= dt.timedelta(hours=4)  # within 4 h of clock start too
        ):
            bad.append(departure.model_copy(update={"event_id": f"bad-departure-{attendance}", "occurred_at": early}))
        if len(bad) == DEPARTURES_BEFORE_ARRIVAL:
            break
    assert len(bad) == DEPARTURES_BEFORE_ARRIVAL
    return bad


def _orphans(events: list[ev.Envelope], last: dt.datetime, rng: random.Random) -> list[ev.Envelope]:
    """Departures of attendances and ready dates of spells whose arrival/admission never comes, all older than the
    orphan grace period (60 minutes of event time) by the end of the day."""
    template_dep = next(e for e in events if isinstance(e, ev.EdDeparted))
    template_drd = next(e for e in events if isinstance(e, ev.DischargeReadyDateSet))
    span = int((last - START).total_seconds() // 60) - 90
    out: list[ev.Envelope] = []
    for i in range(ORPHAN_ATTENDANCES):
        at = START + dt.timedelta(minutes=rng.randint(0, span))
        out.append(template_dep.model_copy(update={"event_id": f"orphan-dep-{i}", "attendance_id": f"ORPHAN-A{i}", "occurred_at": at}))  # fmt: skip
    for i in range(ORPHAN_SPELLS):
        at = START + dt.timedelta(minutes=rng.randint(0, span))
        out.append(template_drd.model_copy(update={"event_id": f"orphan-drd-{i}", "spell_id": f"ORPHAN-S{i}", "occurred_at": at}))  # fmt: skip
    return out


async def _produce(settings: Settings, records: list[tuple[str, bytes | None, bytes | None]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_servers, linger_ms=5, acks=1, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


def _record(event: ev.Envelope) -> tuple[str, bytes, bytes]:
    return ev.topic_of(event), ev.key_of(event).encode(), ev.dump_event(event)


def _wait_for_consumed(port: int, total: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    metrics: dict = {}
    while time.monotonic() < deadline:
        try:
            metrics = scrape(port)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
            continue
        if sum(v for (name, _), v in metrics.items() if name == "scc_events_in_total") >= total:
            return metrics
        time.sleep(0.5)
    raise TimeoutError(f"the worker did not consume {total} records: {metrics}")


WATCHED = (
    ("ed_4h_pct", "today", "system", "QK1"),
    ("ed_12h_pct", "today", "system", "QK1"),
    ("ed_in_department", "live", "system", "QK1"),
    ("ga_beds_occupied", "live", "system", "QK1"),
)


def _wait_for_published(port: int, expected: dict, timeout: float) -> dict:
    """Until the worker's exported indicator values are the expected ones (its final state is published)."""
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        metrics = scrape(port)
        got = {
            key: metrics.get(
                (
                    "scc_indicator_value",
                    tuple(sorted(zip(("indicator", "window", "scope_type", "scope_code"), key, strict=True))),
                )
            )
            for key in expected
        }
        if all(close(got[key], value) for key, value in expected.items()):
            return metrics
        time.sleep(0.5)
    raise TimeoutError(f"the worker did not publish the final values: {got} != {expected}")


def test_bad_input_flood_is_dead_lettered_and_changes_no_indicator(tmp_path: Path) -> None:
    config = load_config()
    rng = random.Random(17)
    events = _events()
    last_time = max(e.occurred_at for e in events)
    template = orjson.loads(ev.dump_event(next(e for e in events if isinstance(e, ev.EdArrived))))
    bad = Bad(template, rng)
    departures = _departures_before_arrival(events, last_time)
    orphans = _orphans(events, last_time, rng)

    # Good events slightly out of order, bad records and orphans mixed in at random; the bad departures go last, after
    # their arrivals (the other order is covered by the unit tests: their dead letter then has no offset of its own).
    # Out of order by up to 10 minutes of event time (an opener later than the orphan grace period, 60 minutes,
    # would rightly be reported as an orphan).
    jitter = {e.event_id: e.occurred_at + dt.timedelta(seconds=rng.uniform(0, 600)) for e in events}
    good = [_record(e) for e in sorted(events, key=lambda e: jitter[e.event_id])]
    mixed: list[tuple[str, bytes | None, bytes | None]] = list(good)
    flood = [(t, k, v) for records in bad.records.values() for t, k, v, _ in records] + [_record(e) for e in orphans]
    for record in flood:
        mixed.insert(rng.randrange(len(mixed) + 1), record)
    mixed.extend(_record(e) for e in departures)
    bad_count = sum(len(r) for r in bad.records.values()) + len(departures)
    # What the worker must end up publishing for a few series (the in-process engine on the good events): the
    # consumed count is reached before the last facts have gone through the aggregate stage.
    engine = {
        (s.indicator, s.window, s.scope_type, s.scope_code): s.value for s in evaluate_at(config, events, last_time)
    }
    expected = {key: engine[key] for key in WATCHED}

    run_dir = tmp_path / "run"
    port = free_port()
    store_dsn = f"chdb://{tmp_path / 'store'}"
    metrics_port = free_port()
    env = {"SCC_KAFKA": f"127.0.0.1:{port}", "SCC_STORE": store_dsn, "SCC_DATA_DIR": str(tmp_path / "var")}
    settings = Settings(kafka=env["SCC_KAFKA"], store=store_dsn, data_dir=tmp_path / "var")
    broker = start_broker(port, run_dir)
    children = []
    try:
        asyncio.run(create_topics(settings))
        worker_env = env | {"SCC_METRICS_PORT": str(metrics_port), "SCC_ORPHAN_AFTER_MINUTES": "60"}
        children.append(start("worker", python_module("scc.cli", "worker"), run_dir, worker_env))
        children.append(start("sink", python_module("scc.cli", "sink"), run_dir, env))
        asyncio.run(_produce(settings, mixed))
        _wait_for_consumed(metrics_port, len(mixed), timeout=120)
        metrics = _wait_for_published(metrics_port, expected, timeout=60)
        time.sleep(1)  # the last dead letters leave the producer buffer
        metrics = scrape(metrics_port)
        worker = children[0]
        assert worker.alive(), worker.log_file.read_text()[-3000:]
        assert worker.stop(timeout=30) == 0
        stored_events = len(events) + len(orphans) + len(bad.stored_anyway) + len(departures)
        status = wait_for_sink(
            tmp_path / "var" / "run" / "sink-status.json",
            {
                "events": stored_events,
                "dead_letters": bad_count + len(orphans),
                "snapshots": metrics[("scc_snapshots_published_total", ())],
            },
            timeout=120,
        )
        assert status["failed_writes"] == 0
        assert children[1].alive(), children[1].log_file.read_text()[-3000:]
    finally:
        for child in reversed(children):
            child.stop(timeout=30)
        broker.stop()

    store = open_store(store_dsn)
    try:
        letters = store.query_dicts(
            "SELECT source_topic, partition, offset, reason, hex(raw) AS raw_hex FROM scc.deadletter FINAL"
        )
        stored_ids = Counter(
            row[0] for table in RAW_TABLES for row in store.query_rows(f"SELECT event_id FROM scc.{table} FINAL")
        )
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

    # Every bad record: one dead letter with its own source offset, a reason naming the problem, the raw bytes.
    from_records = [r for r in letters if r["partition"] >= 0]
    reported = [r for r in letters if r["partition"] < 0]
    assert len(from_records) == bad_count, Counter(r["reason"][:40] for r in from_records)
    by_raw: dict[str, list[str]] = {}
    for row in from_records:
        by_raw.setdefault(row["raw_hex"].upper(), []).append(row["reason"])
    for name, records in bad.records.items():
        for _, _, value, reason in records:
            reasons = by_raw.get((value or b"").hex().upper(), [])
            assert reasons and all(reason in r for r in reasons), (name, reason, reasons[:2])
    for departure in departures:
        (reason,) = by_raw[ev.dump_event(departure).hex().upper()]
        assert reason.startswith(f"occurred_at: ed.departed {departure.event_id!r} at ")
        assert "is before the attendance's arrival at" in reason

    # Every orphan: reported once, never counted.
    extra = [r["reason"] for r in reported if not r["reason"].split("'")[1].startswith("ORPHAN-")]
    assert not extra, (len(extra), extra[:5])
    assert sorted(r["reason"].split("'")[1] for r in reported) == sorted(ev.key_of(e) for e in orphans)
    assert all(r["reason"].startswith(("orphan: ed ", "orphan: spell ")) for r in reported)
    assert Counter(r["source_topic"] for r in reported) == {
        "scc.ed": ORPHAN_ATTENDANCES,
        "scc.discharge": ORPHAN_SPELLS,
    }

    # The worker's metrics count the same.
    dead_letters = {dict(labels)["source_topic"]: v for (name, labels), v in metrics.items() if name == "scc_dead_letters_total"}  # fmt: skip
    assert sum(dead_letters.values()) == bad_count + len(orphans), dead_letters
    assert dead_letters["scc.adt"] == PER_CLASS  # the wrong-topic class
    orphan_metric = {dict(labels)["kind"]: v for (name, labels), v in metrics.items() if name == "scc_orphans_total"}
    assert orphan_metric == {"ed": ORPHAN_ATTENDANCES, "spell": ORPHAN_SPELLS}
    assert sum(v for (name, _), v in metrics.items() if name == "scc_events_in_total") == len(mixed)

    # Every good event exactly once; nothing that breaks the contract reached the raw tables.
    expected_ids = {e.event_id for e in events} | {e.event_id for e in orphans} | bad.stored_anyway
    expected_ids |= {e.event_id for e in departures}
    assert set(stored_ids) == expected_ids
    assert all(n == 1 for n in stored_ids.values())

    # The published indicators equal the recomputation: no bad record moved the clock or a count.
    assert latest_ts.replace(tzinfo=dt.UTC) == last_time
    assert recomputed
    wrong = [
        (key, row["value"], published.get(key))
        for row in recomputed
        if not close(
            published.get(key := (row["indicator"], row["window"], row["scope_type"], row["scope_code"])), row["value"]
        )
    ]
    assert not wrong, (len(wrong), wrong[:10])

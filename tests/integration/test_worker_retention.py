"""A real worker on Tansu releases closed spells on partitions that never get a discharge event.

A trust with no discharge feed sends nothing on ``scc.discharge``. A spell is released by the slower of its two
topics, and a topic that has delivered nothing used to hold every release back, so such a worker grew for ever.
The worker now reads each topic's end from its consumer (position at the high watermark): a topic read to its end
holds nothing back (docs/definitions.md, "Retention of closed entities").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from connectors.simulator import simulate
from integration.pipeline_support import produce, scrape
from scc.broker import start_broker
from scc.processes import free_port, python_module, start
from schemas import events as ev
from schemas.config import load_config
from schemas.settings import Settings
from streams.topics import create_topics

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)
RETENTION = dt.timedelta(hours=6)
SWEEP = dt.timedelta(hours=1)


def _spell_events() -> list[ev.Envelope]:
    """Two simulated days of scc.adt alone (in event-time order): no partition gets a discharge event."""
    events = simulate(
        load_config().icb, scenario="normal", start=START, duration=dt.timedelta(days=2), seed=5,
        warmup=dt.timedelta(0),
    )  # fmt: skip
    return sorted((e for e in events if ev.topic_of(e) == "scc.adt"), key=lambda e: (e.occurred_at, e.event_id))


def _closed_before(events: list[ev.Envelope], cutoff: dt.datetime) -> int:
    """Spells discharged or cancelled whose latest event is before ``cutoff``: every partition's clock is past
    ``cutoff`` + retention by the end, so each of them is released whichever partition holds it."""
    latest: dict[str, dt.datetime] = {}
    closed: set[str] = set()
    for e in events:
        spell = e.spell_id  # type: ignore[attr-defined]
        latest[spell] = max(latest.get(spell, e.occurred_at), e.occurred_at)
        if e.event_type in ("adt.discharged", "adt.admission_cancelled"):  # type: ignore[attr-defined]
            closed.add(spell)
    return sum(1 for spell in closed if latest[spell] < cutoff)


def test_spells_are_released_on_partitions_without_discharge_events(tmp_path: Path) -> None:
    events = _spell_events()
    first_clock_of_the_last_hour = events[-1].occurred_at - SWEEP
    expected_at_least = _closed_before(events, first_clock_of_the_last_hour - SWEEP - RETENTION)
    assert expected_at_least > 100, "the sample must close spells for the test to mean anything"

    run_dir = tmp_path / "run"
    port, metrics_port = free_port(), free_port()
    env = {
        "SCC_KAFKA": f"127.0.0.1:{port}",
        "SCC_STORE": f"chdb://{tmp_path / 'store'}",
        "SCC_DATA_DIR": str(tmp_path / "var"),
        "SCC_CLOSED_ENTITY_RETENTION_HOURS": str(RETENTION.total_seconds() / 3600),
        "SCC_METRICS_PORT": str(metrics_port),
    }
    settings = Settings(kafka=env["SCC_KAFKA"], data_dir=tmp_path / "var")
    broker = start_broker(port, run_dir)
    worker = None
    try:
        asyncio.run(create_topics(settings))
        worker = start("worker", python_module("scc.cli", "worker"), run_dir, env)
        asyncio.run(produce(settings, events))
        deadline = time.monotonic() + 240
        seen: dict = {}
        while time.monotonic() < deadline:
            assert worker.alive(), worker.log_file.read_text()[-3000:]
            try:
                seen = scrape(metrics_port)
            except OSError:
                seen = {}  # the endpoint is not up yet
            consumed = sum(v for (name, _), v in seen.items() if name == "scc_events_in_total")
            if consumed >= len(events):
                time.sleep(2)  # the batch's entity gauges are set once it is folded
                seen = scrape(metrics_port)
                break
            time.sleep(1)
        released = seen.get(("scc_entities_released", (("kind", "spell"),)), 0)
        held = seen.get(("scc_entities_held", (("kind", "spell"),)), 0)
    finally:
        if worker is not None:
            worker.stop(timeout=30)
        broker.stop()

    assert consumed == len(events)
    assert released >= expected_at_least, (released, expected_at_least, held)
    spells = len({e.spell_id for e in events})  # type: ignore[attr-defined]
    assert released + held == spells  # every spell is either held or released: none lost, none counted twice

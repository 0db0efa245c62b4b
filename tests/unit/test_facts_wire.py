"""The ``scc.facts`` wire formats: a batch record and the older one-update records give the aggregate stage exactly
the same state, and a bad record is skipped without stopping the rest (streams.app._apply_facts)."""

from __future__ import annotations

import datetime as dt

from connectors.simulator import simulate
from schemas.config import load_config
from streams.aggregator import Aggregator
from streams.app import _apply_facts
from streams.entities import EntityTracker
from streams.facts import batch_from_wire, batch_to_wire, to_wire

CONFIG = load_config()
START = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)


def _updates() -> tuple[list, dt.datetime]:
    events = list(simulate(CONFIG.icb, scenario="normal", start=START, duration=dt.timedelta(hours=6), seed=4,
                           warmup=dt.timedelta(days=2)))  # fmt: skip
    tracker = EntityTracker(CONFIG.icb)
    updates = [(u.kind, u.entity_id, u.fact, u.evidence) for u in tracker.ingest_many(events)]
    assert tracker.clock is not None
    return updates, tracker.clock


def _rows(aggregator: Aggregator) -> list[tuple]:
    return sorted(
        (s.indicator, s.window, s.scope_type, s.scope_code, s.value, s.numerator, s.denominator)
        for s in aggregator.snapshot()
    )


def test_batch_round_trip() -> None:
    updates, clock = _updates()
    decoded, decoded_clock = batch_from_wire(batch_to_wire(updates[:50], clock))
    assert decoded == updates[:50] and decoded_clock == clock


def test_batch_and_single_records_give_the_same_aggregate() -> None:
    updates, clock = _updates()
    assert len(updates) > 1000
    batched, single = Aggregator(CONFIG), Aggregator(CONFIG)
    records = [batch_to_wire(updates[i : i + 500], clock) for i in range(0, len(updates), 500)]
    _apply_facts(batched, [b"\x00 not a record", *records, b'["batch", [["nonsense", 1, null, 0]], "x"]'])
    _apply_facts(single, [to_wire(kind, entity, fact, clock, evidence) for kind, entity, fact, evidence in updates])
    assert batched.clock == single.clock == clock
    assert _rows(batched) == _rows(single)
    assert any(row[0] == "ga_beds_occupied" and row[4] for row in _rows(batched))  # a real, non-empty picture

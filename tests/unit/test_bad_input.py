"""Bad input never counts and never passes silently: each class is rejected with a reason naming the field and the
problem (docs/definitions.md, "Bad input, orphans"); orphans are held, then reported once.
"""

from __future__ import annotations

import datetime as dt
import random

import orjson
import pytest
from events_factory import admitted, config, drd_set, ed_arrived, ed_departed, ed_handover
from prometheus_client import CollectorRegistry

from connectors.simulator import simulate
from schemas import events as ev
from schemas.events import MAX_EVENT_BYTES, EventRejected, dump_event, parse_event
from schemas.settings import Settings
from streams.entities import EntityTracker
from streams.intake import dead_letter_record
from streams.intake import parse_record as _parse_record
from streams.orphans import Orphan, orphan_counter

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def arrival(**changes: object) -> dict:
    raw = {
        "event_id": "e-1",
        "event_type": "ed.arrived",
        "occurred_at": "2026-03-10T09:00:00Z",
        "source": "TEST",
        "org_code": "RWE",
        "site_code": "RWEAA",
        "attendance_id": "A1",
        "department_type": "1",
        "arrival_mode": "walk_in",
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def reason_of(raw: object, now: dt.datetime = NOW) -> str:
    with pytest.raises(EventRejected) as info:
        parse_event(raw, now=now)  # type: ignore[arg-type]
    return info.value.reason


def test_a_good_event_passes() -> None:
    assert parse_event(orjson.dumps(arrival()), now=NOW).attendance_id == "A1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"event_type": "ed.arrived", ', "event: Invalid JSON"),
        (b"", "event: Invalid JSON"),
        (b"not json at all", "event: Invalid JSON"),
        (b"[1, 2, 3]", "event: Input should be an object"),
        (b"null", "event: Input should be an object"),
        (None, "event: empty record"),
    ],
)
def test_malformed_json_is_rejected(raw: bytes | None, expected: str) -> None:
    assert reason_of(raw).startswith(expected)


@pytest.mark.parametrize(
    "garbage",
    [
        bytes(range(256)),
        b"\xff\xfe\x00\x01" * 50,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\x1f\x8b\x08\x00" + b"\0" * 9,
    ],
)
def test_binary_garbage_is_rejected(garbage: bytes) -> None:
    assert reason_of(garbage).startswith("event: Invalid JSON")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("department_type", 1, "department_type: Input should be '1', '2' or '3'"),
        ("age", "42", "age: Input should be a valid integer"),
        ("attendance_id", 17, "attendance_id: Input should be a valid string"),
        ("org_code", ["RWE"], "org_code: Input should be a valid string"),
        ("occurred_at", 1773133200, "occurred_at: Input should be a valid datetime"),
        ("arrival_mode", "helicopter", "arrival_mode: Input should be 'ambulance', 'walk_in' or 'other'"),
        ("schema_version", 2, "schema_version: Input should be 1"),
    ],
)
def test_wrong_types_name_the_field(field: str, value: object, expected: str) -> None:
    assert expected in reason_of(orjson.dumps(arrival(**{field: value})))


def test_missing_and_extra_fields_name_the_field() -> None:
    assert "arrival_mode: Field required" in reason_of(orjson.dumps(arrival(arrival_mode=None)))
    assert "nhs_number: Extra inputs are not permitted" in reason_of(orjson.dumps(arrival(nhs_number="943")))


def test_naive_timestamps_are_rejected() -> None:
    reason = reason_of(orjson.dumps(arrival(occurred_at="2026-03-10T09:00:00")))
    assert reason == "occurred_at: Input should have timezone info"


@pytest.mark.parametrize(("event_type", "shown"), [("ed.teleported", "'ed.teleported'"), ("", "''"), (5, "'5'")])
def test_unknown_event_types_are_rejected(event_type: object, shown: str) -> None:
    assert reason_of(orjson.dumps(arrival(event_type=event_type))) == f"event_type: unknown event type {shown}"
    assert reason_of(orjson.dumps(arrival(event_type=None))) == "event_type: Field required"


def test_unknown_organisations_and_sites_are_rejected_by_the_tracker() -> None:
    tracker = EntityTracker(config().icb)
    with pytest.raises(EventRejected, match=r"^org_code: unknown organisation 'ZZZ' for ICB QK1"):
        tracker.check_known(parse_event(arrival(org_code="ZZZ"), now=NOW))
    with pytest.raises(EventRejected, match=r"^site_code: unknown site 'ZZZ01' for ICB QK1"):
        tracker.check_known(parse_event(arrival(site_code="ZZZ01"), now=NOW))
    with pytest.raises(EventRejected, match="unknown organisation"):
        tracker.add(parse_event(arrival(org_code="ZZZ"), now=NOW))  # add checks too: nothing unknown is held


def test_far_future_timestamps_are_rejected_relative_to_the_receivers_clock() -> None:
    just_ok = (NOW + dt.timedelta(days=1)).isoformat()
    assert parse_event(arrival(occurred_at=just_ok), now=NOW)
    reason = reason_of(arrival(occurred_at=(NOW + dt.timedelta(days=1, seconds=1)).isoformat()))
    assert reason.startswith("occurred_at: 2026-03-11T12:00:01+00:00 is in the future (more than 1 day after")
    assert "2026-03-10T12:00:00Z" in reason
    assert reason_of(arrival(occurred_at="2099-01-01T00:00:00Z")).startswith("occurred_at: 2099-01-01")
    # without a clock given, the wall clock: far-future data is rejected today as well
    with pytest.raises(EventRejected, match="in the future"):
        parse_event(arrival(occurred_at="2199-01-01T00:00:00Z"))


def test_timestamps_before_2000_are_rejected() -> None:
    assert reason_of(arrival(occurred_at="1999-12-31T23:59:59Z")) == (
        "occurred_at: Value error, 1999-12-31T23:59:59+00:00 is before 2000-01-01"
    )
    assert reason_of(arrival(occurred_at="1970-01-01T00:00:00+00:00")).startswith("occurred_at: Value error, 1970")
    assert parse_event(arrival(occurred_at="2000-01-01T00:00:00Z"), now=NOW)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamps_without_a_utc_instant_are_rejected_not_crashing(text: str) -> None:
    # Found by the fuzzer: astimezone overflowed (OverflowError) and would have stopped the worker.
    assert reason_of(arrival(occurred_at=text)) == "occurred_at: Value error, is outside the representable range"


def test_discharge_ready_dates_outside_2000_2100_are_rejected() -> None:
    base = {
        "event_id": "d-1",
        "event_type": "discharge.ready_date_set",
        "occurred_at": "2026-03-10T09:00:00Z",
        "source": "TEST",
        "org_code": "RWE",
        "spell_id": "S1",
    }
    assert parse_event({**base, "discharge_ready_date": "2026-03-10"}, now=NOW)
    reason = reason_of({**base, "discharge_ready_date": "1960-03-10"})
    assert reason == "discharge_ready_date: Value error, 1960-03-10 is outside 2000-01-01..2100-12-31"


def test_historical_simulated_data_used_by_the_tests_is_accepted() -> None:
    events = list(
        simulate(
            config().icb,
            start=dt.datetime(2026, 3, 28, 12, tzinfo=UTC),
            duration=dt.timedelta(hours=2),
            warmup=dt.timedelta(days=1),
            seed=1,
        )
    )
    for event in random.Random(1).sample(events, 300):
        assert parse_event(dump_event(event)) == event  # wall clock (later than 2026-03)


def test_oversized_payloads_are_rejected_before_parsing() -> None:
    big = orjson.dumps(arrival(source="x" * 64)) + b" " * MAX_EVENT_BYTES  # valid JSON, padded
    assert reason_of(big) == f"event: record of {len(big)} bytes is over the 65536 byte limit"
    assert reason_of(b"\xff" * (MAX_EVENT_BYTES + 1)).startswith("event: record of 65537 bytes")  # not even parsed
    assert reason_of("é" * (MAX_EVENT_BYTES // 2 + 1)).startswith("event: record of 65538 bytes")  # str: UTF-8 bytes
    assert parse_event(orjson.dumps(arrival()) + b" " * (MAX_EVENT_BYTES - 400), now=NOW)


def test_values_that_are_not_json_text_are_rejected_by_type() -> None:
    assert reason_of(5) == "event: not valid JSON (expected bytes, str or a dict, got int)"
    assert reason_of([arrival()]) == "event: not valid JSON (expected bytes, str or a dict, got list)"
    assert reason_of({"when": object()}).startswith("event: not valid JSON (")  # not serialisable
    assert parse_event(bytearray(orjson.dumps(arrival())), now=NOW).attendance_id == "A1"


def test_the_worker_decoder_checks_topic_and_uses_the_record_timestamp() -> None:
    good = orjson.dumps(arrival())
    assert _parse_record(good, "scc.ed", NOW.timestamp()).event_id == "e-1"
    with pytest.raises(EventRejected, match=r"^event_type: 'ed.arrived' does not belong on topic scc.adt"):
        _parse_record(good, "scc.adt", NOW.timestamp())
    # The record was produced on 1 March: an event of 10 March was 9 days in its future, whatever the wall clock
    # says now — a rebuild long afterwards rejects it exactly as live processing did.
    with pytest.raises(EventRejected, match="in the future"):
        _parse_record(good, "scc.ed", dt.datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    # A producer stamping its record in the future cannot widen the bound past the wall clock.
    with pytest.raises(EventRejected, match="in the future"):
        _parse_record(orjson.dumps(arrival(occurred_at="2199-01-01T00:00:00Z")), "scc.ed", 7.3e9)


def test_dead_letter_record_carries_reason_source_and_raw_bytes() -> None:
    record = orjson.loads(dead_letter_record("event: Invalid JSON", "scc.ed", 2, 41, b"\x00\xff"))
    assert (record["reason"], record["source_topic"], record["partition"], record["offset"]) == (
        "event: Invalid JSON",
        "scc.ed",
        2,
        41,
    )
    assert record["raw_b64"] == "AP8="


# --- departure before its own arrival --------------------------------------------------------------------------


def _tracker() -> tuple[EntityTracker, list[tuple[ev.Envelope, str]]]:
    rejected: list[tuple[ev.Envelope, str]] = []
    return EntityTracker(config().icb, on_reject=lambda e, r: rejected.append((e, r))), rejected


def test_a_departure_before_the_known_arrival_is_rejected() -> None:
    tracker, rejected = _tracker()
    arrive = ed_arrived("A", "2026-03-10T10:00Z")
    early = ed_departed("A", "2026-03-10T09:59Z", event_id="dep-early")
    tracker.ingest(arrive)
    tracker.ingest(early)
    assert [(e.event_id, r) for e, r in rejected] == [
        (
            "dep-early",
            "occurred_at: ed.departed 'dep-early' at 2026-03-10T09:59:00+00:00 is before the attendance's arrival "
            "at 2026-03-10T10:00:00+00:00",
        )
    ]
    fact = tracker.current()[0].fact
    assert fact is not None and fact.departure is None  # still in the department
    tracker.ingest(early)  # a redelivery is a duplicate, not a second rejection
    assert len(rejected) == 1


def test_a_departure_before_its_arrival_gives_the_same_fact_in_either_order() -> None:
    events = [
        ed_arrived("A", "2026-03-10T10:00Z", "ambulance"),
        ed_handover("A", "2026-03-10T10:05Z"),
        ed_departed("A", "2026-03-10T08:00Z", event_id="dep-bad"),
        ed_departed("A", "2026-03-10T13:00Z", event_id="dep-good"),
    ]
    facts, reasons = [], []
    for seed in range(12):
        order = events[:]
        random.Random(seed).shuffle(order)
        tracker, rejected = _tracker()
        for e in order:
            tracker.ingest(e)
        facts.append(tracker.current()[0])
        reasons.append([(e.event_id, r.split(" (")[0]) for e, r in rejected])
    assert all(f.fact == facts[0].fact and f.evidence == 4 for f in facts)
    assert facts[0].fact.departure == dt.datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # type: ignore[union-attr]
    assert all(r == [("dep-bad", reasons[0][0][1])] for r in reasons)  # reported once, whatever the order


def test_a_held_departure_is_set_aside_when_its_later_arrival_comes() -> None:
    tracker, rejected = _tracker()
    tracker.ingest(ed_departed("A", "2026-03-10T08:00Z", event_id="dep-bad"))
    assert rejected == []  # held: its arrival may still come
    tracker.ingest(ed_arrived("A", "2026-03-10T10:00Z"))
    assert [r for _, r in rejected] == [
        "occurred_at: ed.departed 'dep-bad' at 2026-03-10T08:00:00+00:00 is before the attendance's arrival at "
        "2026-03-10T10:00:00+00:00 (the arrival was delivered later)"
    ]
    assert tracker.current()[0].fact.departure is None  # type: ignore[union-attr]


def test_an_earlier_arrival_makes_an_excluded_departure_valid_again() -> None:
    tracker, _ = _tracker()
    tracker.ingest(ed_arrived("A", "2026-03-10T10:00Z", event_id="arr-late"))
    tracker.ingest(ed_departed("A", "2026-03-10T09:00Z", event_id="dep"))
    tracker.ingest(ed_arrived("A", "2026-03-10T08:00Z", event_id="arr-early"))  # earliest arrival wins
    other, _ = _tracker()
    for e in [ed_departed("A", "2026-03-10T09:00Z", event_id="dep"), ed_arrived("A", "2026-03-10T08:00Z")]:
        other.ingest(e)
    assert tracker.current()[0].fact.departure == dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # type: ignore[union-attr]
    assert tracker.current()[0].fact.arrival == other.current()[0].fact.arrival  # type: ignore[union-attr]


def test_a_rebuild_does_not_report_again() -> None:
    tracker, rejected = _tracker()
    tracker.ingest_many([ed_arrived("A", "2026-03-10T10:00Z"), ed_departed("A", "2026-03-10T08:00Z")], report=False)
    assert rejected == [] and tracker.current()[0].fact.departure is None  # type: ignore[union-attr]


# --- orphans ---------------------------------------------------------------------------------------------------

HOUR = dt.timedelta(minutes=Settings().orphan_after_minutes)


def test_the_orphan_setting_defaults_to_60_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().orphan_after_minutes == 60
    monkeypatch.setenv("SCC_ORPHAN_AFTER_MINUTES", "2.5")
    assert Settings().orphan_after_minutes == 2.5


def test_a_departure_whose_arrival_never_comes_is_reported_once_after_the_grace_period() -> None:
    tracker, _ = _tracker()
    tracker.ingest(ed_departed("lost", "2026-03-10T10:00Z", event_id="dep-lost"))
    tracker.ingest(ed_arrived("B", "2026-03-10T10:59Z"))
    assert tracker.orphans(HOUR) == [] and tracker.pending_orphans() == 1  # 59 min: still waiting
    tracker.ingest(ed_arrived("C", "2026-03-10T11:00Z"))
    (orphan,) = tracker.orphans(HOUR)
    assert orphan == Orphan(
        kind="ed",
        entity_id="lost",
        topic="scc.ed",
        first_at=dt.datetime(2026, 3, 10, 10, 0, tzinfo=UTC),
        event_ids=("dep-lost",),
        event_types=("ed.departed",),
        clock=dt.datetime(2026, 3, 10, 11, 0, tzinfo=UTC),
    )
    assert orphan.reason() == (
        "orphan: ed 'lost' has 1 event(s) (ed.departed) since 2026-03-10T10:00:00+00:00 but no ed.arrived "
        "after 60 min of event time"
    )
    assert orjson.loads(orphan.summary())["event_ids"] == ["dep-lost"]
    tracker.ingest(ed_handover("lost", "2026-03-10T10:30Z"))
    tracker.ingest(ed_arrived("D", "2026-03-10T13:00Z"))
    assert tracker.orphans(HOUR) == []  # reported once
    assert all(u.fact is None for u in tracker.current() if u.entity_id == "lost")  # and never counted


def test_an_orphan_whose_opener_finally_comes_counts_as_if_delivered_in_order() -> None:
    late, _ = _tracker()
    late.ingest(ed_departed("X", "2026-03-10T10:30Z", event_id="dep"))
    late.ingest(ed_arrived("Y", "2026-03-10T12:00Z"))
    assert [o.entity_id for o in late.orphans(HOUR)] == ["X"]
    late.ingest(ed_arrived("X", "2026-03-10T10:00Z", event_id="arr"))
    in_order, _ = _tracker()
    for e in [ed_arrived("X", "2026-03-10T10:00Z", event_id="arr"), ed_departed("X", "2026-03-10T10:30Z")]:
        in_order.ingest(e)
    assert {u.entity_id: u.fact for u in late.current()}["X"] == in_order.current()[0].fact


def test_held_events_whose_opener_comes_in_time_are_not_orphans() -> None:
    tracker, _ = _tracker()
    tracker.ingest(drd_set("S", "2026-03-10T10:00Z", "2026-03-10"))  # scc.discharge, before its admission
    tracker.ingest(admitted("S", "2026-03-09T10:00Z"))
    tracker.ingest(admitted("T", "2026-03-10T20:00Z"))
    assert tracker.orphans(HOUR) == [] and tracker.pending_orphans() == 0


def test_orphans_wait_on_their_opener_topics_clock_not_another_topics() -> None:
    tracker, _ = _tracker()
    tracker.ingest(drd_set("S", "2026-03-10T10:00Z", "2026-03-10"))
    tracker.ingest(drd_set("T", "2026-03-10T15:00Z", "2026-03-10"))  # scc.discharge runs ahead of scc.adt
    tracker.ingest(ed_arrived("E", "2026-03-10T15:00Z"))
    assert tracker.orphans(HOUR) == []  # scc.adt has not moved: its admission may still be on the way
    tracker.ingest(admitted("U", "2026-03-10T11:00Z"))
    (orphan,) = tracker.orphans(HOUR)
    assert (orphan.kind, orphan.entity_id, orphan.topic) == ("spell", "S", "scc.discharge")
    assert "but no adt.admitted" in orphan.reason()


def test_ambulance_incidents_are_opened_by_a_call_a_clock_start_or_a_hospital_arrival() -> None:
    from events_factory import amb_call_connected, amb_crew_clear, amb_resource_arrived

    tracker, _ = _tracker()
    tracker.ingest(amb_call_connected("I1", "2026-03-10T10:00Z"))
    tracker.ingest(amb_resource_arrived("I2", "2026-03-10T10:00Z"))
    tracker.ingest(amb_crew_clear("I3", "2026-03-10T12:00Z"))
    (orphan,) = tracker.orphans(HOUR)
    assert orphan.entity_id == "I2"
    assert "but no ambulance.arrived_at_hospital or ambulance.call_connected or ambulance.clock_started" in (
        orphan.reason()
    )


def test_the_orphan_metric_is_registered_once_per_registry() -> None:
    registry = CollectorRegistry()
    orphan_counter(registry).labels("ed").inc()
    orphan_counter(registry).labels("ed").inc()
    assert registry.get_sample_value("scc_orphans_total", {"kind": "ed"}) == 2

"""The fast load and read-back path of ``scc replay`` gives exactly what the straightforward code gave.

Each faster piece (``dump_event`` through the model's serializer, ``parse_event`` calling the core validator,
``Store.insert_events`` writing JSON lines that ClickHouse reads into the raw columns (migration 007), payloads read back as bytes in blocks by
``events_until``, the collector pause of ``load_files``) is checked against a reference copy of the code it replaced,
on a simulated sample covering every event type plus hand-made edge cases: same bytes, same rejects, same rows, same
events in the same order.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import re
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from events_factory import config, simulated_llr
from pydantic import ValidationError

import scc.history as history
import schemas.events as events_module
from clickhouse.store import RAW_TABLE_OF_TOPIC, Store
from scc.collector import paused_gc
from scc.history import events_until
from scc.replay import ReplayReport, load_files
from schemas.events import (
    EARLIEST_OCCURRED_AT,
    EVENT_ADAPTER,
    EVENT_MODELS,
    MAX_EVENT_BYTES,
    MAX_FUTURE,
    Envelope,
    EventRejected,
    _to_utc,
    describe_error,
    dump_event,
    parse_event,
    topic_of,
)
from streams.engine import Engine

UTC = dt.UTC
START = dt.datetime(2026, 1, 5, tzinfo=UTC)
NOW = dt.datetime(2026, 1, 8, tzinfo=UTC)


# --- reference copies of the code the fast path replaced ----------------------------------------------------------


def reference_dump(event: Envelope) -> bytes:
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def reference_parse(raw: Any, *, now: dt.datetime | None = None) -> Envelope:
    if raw is None:
        raise EventRejected("event: empty record (no value)")
    try:
        if isinstance(raw, dict):
            raw = orjson.dumps(raw)
        size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
        if size > MAX_EVENT_BYTES:
            raise EventRejected(f"event: record of {size} bytes is over the {MAX_EVENT_BYTES} byte limit")
        event = EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise EventRejected(describe_error(exc)) from None
    except EventRejected:
        raise
    except (ValueError, TypeError) as exc:
        raise EventRejected(f"event: not valid JSON ({exc})") from None
    clock = now or dt.datetime.now(UTC)
    if event.occurred_at > clock + MAX_FUTURE:
        raise EventRejected(
            f"occurred_at: {event.occurred_at.isoformat()} is in the future (more than {MAX_FUTURE.days} day after "
            f"the receiver's clock, {clock.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})"
        )
    return event


def reference_insert(store: Store, topic: str, items: list[tuple[Envelope, int, int]]) -> None:
    """The former ``insert_events`` body: a columnar block built in Python, one column per field of the event."""
    table = RAW_TABLE_OF_TOPIC[topic]
    seen: set[str] = set()
    unique = []
    for item in items:
        if item[0].event_id not in seen:
            seen.add(item[0].event_id)
            unique.append(item)
    names = [c for c in store.insertable_columns(table) if c != "ingested_at"]
    events = [e for e, _, _ in unique]
    data: list[list[Any]] = []
    for name in names:
        if name == "payload":
            data.append([reference_dump(e).decode() for e in events])
        elif name == "kafka_partition":
            data.append([p for _, p, _ in unique])
        elif name == "kafka_offset":
            data.append([o for _, _, o in unique])
        else:
            data.append([e.__dict__.get(name) for e in events])
    store.client.insert(store.table(table), data, column_names=names, column_oriented=True)


def reference_events_until(store: Store, until: dt.datetime) -> Iterator[Envelope]:
    for table in history.RAW_TABLES:
        sql = (
            f"SELECT payload FROM scc.{table} FINAL WHERE occurred_at <= {history._literal(until)} "
            "ORDER BY occurred_at, event_id"
        )
        for (payload,) in store.query_rows(sql):
            yield parse_event(payload)


# --- the sample ---------------------------------------------------------------------------------------------------


_edge_ids = itertools.count(1)


def _raw(event_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"edge-{next(_edge_ids):03d}",
        "event_type": event_type,
        "occurred_at": "2026-01-06T10:15:30.123456+01:00",
        "source": "EDGE",
        "org_code": "RWE",
        **fields,
    }


EDGE_EVENTS: list[dict[str, Any]] = [
    _raw("opel.declared", level=3),
    _raw("opel.declared", level=1, site_code="RWEAA", occurred_at="2026-01-06T00:00:00Z"),
    _raw("adt.discharged", spell_id="s-1", destination="Résidence Ünter 中文 😀 \u2028\u2029 \u0080\u00ff"),
    _raw("adt.discharged", spell_id="s-2", destination='a"b\\c/d\n\t\r\b\f\x00\x01\x1f\x7f <&>', pathway=0),
    _raw("adt.discharged", spell_id="s-3", destination=""),
    _raw("adt.updated", spell_id="s-4"),  # every optional field None
    _raw("adt.updated", spell_id="s-5", escalation_bed=False, age=0, patient_ref="ab" * 8, bed_category="other"),
    _raw("ed.arrived", attendance_id="a-1", department_type="3", arrival_mode="other", occurred_at="2000-01-01T00:00Z"),
    _raw("ed.arrived", attendance_id="a-2", department_type="1", arrival_mode="walk_in", age=130, site_code="RWEAA"),
    _raw("discharge.ready_date_set", spell_id="s-6", discharge_ready_date="2100-12-31", pathway=3),
    _raw("ambulance.resource_arrived", incident_id="i-1", resource_id="r" * 128, transport_capable=True),
    _raw(
        "ambulance.incident_closed", incident_id="i-2", conveyed=False, occurred_at="2026-01-06T10:15:30.999999-05:00"
    ),
    _raw("ambulance.clock_started", incident_id="i-3", category=1, occurred_at="2026-01-06T10:15:30.000001+14:00"),
]


@pytest.fixture(scope="module")
def sample() -> list[Envelope]:
    """Two simulated days of LLR (every event type but opel.declared) and the edge cases above."""
    events = simulated_llr(START, 48, seed=3, warmup_days=2)
    events += [parse_event(raw, now=NOW) for raw in EDGE_EVENTS]
    assert {e.event_type for e in events} == set(EVENT_MODELS)  # type: ignore[attr-defined]
    return events


# --- dump_event ---------------------------------------------------------------------------------------------------


def test_dump_event_bytes_are_identical_on_every_event(sample: list[Envelope]) -> None:
    for event in sample:
        assert dump_event(event) == reference_dump(event), event.event_id


def test_dump_event_keeps_the_original_path_for_what_its_serializer_refuses() -> None:
    odd = EVENT_MODELS["opel.declared"].model_construct(event_id="x", occurred_at=object(), level=1)
    with pytest.raises(Exception) as new:  # noqa: B017 (whatever the original raised, the same must come)
        dump_event(odd)
    with pytest.raises(Exception) as old:  # noqa: B017
        reference_dump(odd)
    assert (type(new.value), str(new.value)) == (type(old.value), str(old.value))


# --- parse_event and _to_utc --------------------------------------------------------------------------------------


BAD_INPUTS: list[Any] = [
    None,
    b"",
    b"not json",
    b"[1, 2]",
    b'{"event_type": "ed.arrived", ',
    "\ud800",
    {"x": {1, 2}},
    {"x": dt.datetime(2026, 1, 1)},
    b"x" * (MAX_EVENT_BYTES + 1),
    "é" * (MAX_EVENT_BYTES // 2 + 1),
    _raw("ed.nonsense", attendance_id="a"),
    {k: v for k, v in _raw("ed.handover", attendance_id="a").items() if k != "event_type"},
    _raw("ed.handover", attendance_id="a", occurred_at="2026-01-06T10:00:00"),  # naive
    _raw("ed.handover", attendance_id="a", occurred_at="1999-12-31T23:59:59.999999Z"),
    _raw("ed.handover", attendance_id="a", occurred_at="2000-01-01T00:30:00+01:00"),  # 1999 in UTC
    _raw("ed.handover", attendance_id="a", occurred_at="0001-01-01T00:00:00+01:00"),  # no UTC instant
    _raw("ed.handover", attendance_id="a", occurred_at="2026-01-09T00:00:00.001Z"),  # > 1 day after NOW
    _raw("ed.handover", attendance_id="a", occurred_at="2026-01-09T00:00:00Z", extra="x"),
    _raw("ed.arrived", attendance_id="a", department_type="4", arrival_mode="car", age=131),
    _raw("adt.admitted", spell_id="s", patient_ref="NOTHEX", ward_code="", bed_category="x", escalation_bed="no"),
    _raw("discharge.ready_date_set", spell_id="s", discharge_ready_date="2101-01-01"),
    _raw("opel.declared", level=5, org_code="rwe"),
]


def _outcome(parse: Any, raw: Any) -> tuple[str, Any]:
    try:
        event = parse(raw, now=NOW)
    except EventRejected as exc:
        return "rejected", exc.reason
    return "event", (type(event), event.__dict__, event.model_fields_set, event.occurred_at.tzinfo)


@pytest.mark.parametrize("raw", BAD_INPUTS + EDGE_EVENTS, ids=range(len(BAD_INPUTS) + len(EDGE_EVENTS)))
def test_parse_event_gives_the_same_event_or_reject(raw: Any) -> None:
    assert _outcome(parse_event, raw) == _outcome(reference_parse, raw)
    if isinstance(raw, dict) and raw.get("event_id"):  # the same record as JSON text and as bytes
        for form in (orjson.dumps(raw), orjson.dumps(raw).decode()):
            assert _outcome(parse_event, form) == _outcome(reference_parse, form)


def test_parse_event_on_the_sample_gives_the_same_events(sample: list[Envelope]) -> None:
    for event in sample:
        raw = dump_event(event)
        assert _outcome(parse_event, raw) == _outcome(reference_parse, raw)


def test_parsed_events_share_one_fields_set_per_type_and_set_of_fields(sample: list[Envelope]) -> None:
    """A replay holds millions of events: one shared ``__pydantic_fields_set__`` per distinct set instead of one each
    (more than half an event's memory), with what pydantic does with it unchanged."""
    parsed = [parse_event(dump_event(event), now=NOW) for event in sample]
    sets = {id(event.__pydantic_fields_set__) for event in parsed}
    distinct = {(type(event), frozenset(event.__pydantic_fields_set__)) for event in parsed}
    assert len(sets) == len(distinct) < len(parsed) / 100
    for event in parsed[:500]:
        reference = reference_parse(dump_event(event), now=NOW)
        assert event.model_dump(exclude_unset=True) == reference.model_dump(exclude_unset=True)
        assert event.model_dump_json(exclude_unset=True) == reference.model_dump_json(exclude_unset=True)
    first = parsed[0]
    shared = set(first.__pydantic_fields_set__)
    copy = first.model_copy(update={"source": "other"})
    assert copy.source == "other" and "source" in copy.model_fields_set
    assert first.__pydantic_fields_set__ == shared  # the copy took its own set
    with pytest.raises(ValidationError):
        first.source = "other"  # type: ignore[misc]  # frozen: nothing adds to a shared set
    assert first.__pydantic_fields_set__ == shared


def test_fields_sets_shared_are_bounded(monkeypatch: pytest.MonkeyPatch, sample: list[Envelope]) -> None:
    """Input naming ever new sets of fields keeps its own sets past the bound (per event type) rather than growing the
    cache."""
    monkeypatch.setattr(events_module, "_SHARED_FIELDS_SETS", {})
    monkeypatch.setattr(events_module, "MAX_SHARED_FIELDS_SETS", 1)
    raw = orjson.loads(dump_event(next(event for event in sample if event.site_code)))
    first = parse_event(orjson.dumps(raw), now=NOW)
    again = parse_event(orjson.dumps(raw), now=NOW)
    assert again.__pydantic_fields_set__ is first.__pydantic_fields_set__
    raw.pop("site_code")
    other = parse_event(orjson.dumps(raw), now=NOW)
    assert other.__pydantic_fields_set__ == first.__pydantic_fields_set__ - {"site_code"}
    assert [len(sets) for sets in events_module._SHARED_FIELDS_SETS.values()] == [1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T10:00:00+01:00", dt.datetime(2026, 6, 1, 9, 0, tzinfo=UTC)),
        ("2026-06-01T10:00:00-05:00", dt.datetime(2026, 6, 1, 15, 0, tzinfo=UTC)),
        ("2026-06-01T10:00:00Z", dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)),
        ("2026-06-01T10:00:00.5+00:00", dt.datetime(2026, 6, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2000-01-01T00:00:00Z", EARLIEST_OCCURRED_AT),
        ("2000-01-01T01:00:00+01:00", EARLIEST_OCCURRED_AT),
    ],
)
def test_to_utc_normalises_to_utc(text: str, expected: dt.datetime) -> None:
    value = parse_event(_raw("opel.declared", level=1, occurred_at=text)).occurred_at
    assert value == expected and value.tzinfo is UTC
    assert _to_utc(dt.datetime.fromisoformat(text)) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "1999-12-31T23:59:59.999999+00:00 is before 2000-01-01",
        ),
        (dt.datetime(2000, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), "is before 2000-01-01"),
        (dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), "is outside the representable range"),
    ],
)
def test_to_utc_rejects(value: dt.datetime, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _to_utc(value)


# --- insert_events ------------------------------------------------------------------------------------------------


def _stored(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: store.query_rows(f"SELECT * EXCEPT ingested_at FROM scc.{table} ORDER BY event_id")
        for table in RAW_TABLE_OF_TOPIC.values()
    }


def test_insert_events_stores_the_same_rows_as_before(store: Store, sample: list[Envelope]) -> None:
    by_topic: dict[str, list[tuple[Envelope, int, int]]] = {}
    for n, event in enumerate(sample):
        by_topic.setdefault(topic_of(event), []).append((event, n % 4 - 1, n))
    for items in by_topic.values():  # copies inside a batch: the first wins on both paths
        items.extend((e, 9, 9) for e, _, _ in items[:3])
    for topic, items in by_topic.items():
        store.insert_events(topic, items)
    new = _stored(store)
    for table in RAW_TABLE_OF_TOPIC.values():
        store.command(f"TRUNCATE TABLE scc.{table}")
    for topic, items in by_topic.items():
        reference_insert(store, topic, items)
    assert new == _stored(store)
    assert sum(map(len, new.values())) == len(sample)
    payloads = store.query_column("SELECT payload FROM scc.raw_adt ORDER BY event_id", as_bytes=True)
    adt = sorted((e for e in sample if topic_of(e) == "scc.adt"), key=lambda e: e.event_id)
    assert list(payloads) == [reference_dump(e) for e in adt]  # the exact bytes


# --- events_until -------------------------------------------------------------------------------------------------


def _load(store: Store, events: list[Envelope]) -> None:
    by_topic: dict[str, list[tuple[Envelope, int, int]]] = {}
    for event in events:
        by_topic.setdefault(topic_of(event), []).append((event, -1, -1))
    for topic, items in by_topic.items():
        store.insert_events(topic, items)


def _same_events(a: list[Envelope], b: list[Envelope]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert type(x) is type(y)
        assert x.__dict__ == y.__dict__ and x.model_fields_set == y.model_fields_set
        assert x.occurred_at.tzinfo is y.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("block", [history.PARSE_BLOCK, 1, 7, 1000])
def test_events_until_reads_back_the_same_events_in_the_same_order(
    store: Store, sample: list[Envelope], monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    _load(store, sample)
    monkeypatch.setattr(history, "PARSE_BLOCK", block)
    until = dt.datetime(2026, 1, 6, 12, tzinfo=UTC)
    for at in (until, NOW):
        new, old = list(events_until(store, at)), list(reference_events_until(store, at))
        _same_events(new, old)
        assert new and all(e.occurred_at <= at for e in new)
    since = dt.datetime(2026, 1, 5, 6, tzinfo=UTC)
    assert [e.event_id for e in events_until(store, until, since)] == [
        e.event_id for e in reference_events_until(store, until) if e.occurred_at >= since
    ]
    assert gc.isenabled()


@pytest.mark.parametrize("block", [history.PARSE_BLOCK, 3])
def test_events_until_yields_the_events_before_a_bad_payload_then_raises(
    store: Store, sample: list[Envelope], monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    ed = [e for e in sample if topic_of(e) == "scc.ed"][:20]
    _load(store, ed)
    names = [c for c in store.insertable_columns("raw_ed") if c != "ingested_at"]
    bad = {n: None for n in names} | {
        "event_id": "zz-bad",
        "event_type": "ed.handover",
        "occurred_at": sorted(e.occurred_at for e in ed)[9],
        "source": "X",
        "org_code": "RWE",
        "schema_version": 1,
        "attendance_id": "a",
        "payload": '{"event_id": "zz-bad"}',
        "kafka_partition": -1,
        "kafka_offset": -1,
    }
    store.client.insert("scc.raw_ed", [[bad[n] for n in names]], column_names=names)
    monkeypatch.setattr(history, "PARSE_BLOCK", block)

    def drain(events: Iterator[Envelope]) -> tuple[list[Envelope], str]:
        got: list[Envelope] = []
        with pytest.raises(EventRejected) as info:
            for event in events:
                got.append(event)
        return got, info.value.reason

    new, old = drain(events_until(store, NOW)), drain(reference_events_until(store, NOW))
    _same_events(new[0], old[0])
    assert new[1] == old[1] and len(new[0]) == 10
    assert gc.isenabled()


def test_an_engine_is_freed_when_its_last_reference_goes(sample: list[Envelope]) -> None:
    """No reference cycle keeps an evaluated engine (its entities and facts) alive until a full collection: the
    replay holds the collector off, and a cycle there cost a traversal of the whole heap when it resumed."""
    engine = Engine(config())
    engine.ingest(sorted(sample, key=lambda e: e.occurred_at))
    assert engine.aggregator.open_spells and engine.aggregator.ed_in_department
    freed = weakref.ref(engine), weakref.ref(engine.tracker), weakref.ref(engine.aggregator)
    with paused_gc():
        del engine
        assert [ref() for ref in freed] == [None, None, None]


# --- load_files ---------------------------------------------------------------------------------------------------


def test_load_files_stores_every_line_and_reports_as_before(
    store: Store, sample: list[Envelope], tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    lines = [dump_event(e) for e in reversed(sample)]  # out of time order: first/last are a min and a max
    lines[5:5] = [b"not json", b'{"event_type": "ed.nonsense"}', b"   ", lines[0]]  # rejects, a blank, a copy
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = ReplayReport()
    load_files(store, [path], report)
    assert gc.isenabled()
    assert (report.events, report.rejected) == (len(sample) + 1, 2)
    assert report.first == min(e.occurred_at for e in sample) and report.last == max(e.occurred_at for e in sample)
    reasons = [_outcome(reference_parse, raw)[1] for raw in lines[5:7]]
    assert reasons[1] == "event_type: unknown event type 'ed.nonsense'"
    assert report.reject_reasons == [f"{path}:6: {reasons[0]}", f"{path}:7: {reasons[1]}"]
    stored = store.query_rows(
        "SELECT sum(c) FROM ("
        + " UNION ALL ".join(f"SELECT count() c FROM scc.{t} FINAL" for t in history.RAW_TABLES)
        + ")"
    )
    assert stored == [(len(sample),)]
    assert store.query_rows("SELECT partition, offset, reason FROM scc.deadletter ORDER BY offset") == [
        (-1, 6, reasons[0]),
        (-1, 7, reasons[1]),
    ]

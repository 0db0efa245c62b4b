"""Fuzzing every decoder that reads untrusted bytes: each either decodes or fails with its own error type, never with
anything else (an unexpected exception in a decoder would stop a worker, a sink or a listener on one bad record).

- ``schemas.events.parse_event`` (worker and sink): arbitrary bytes and text, arbitrary JSON structures, and valid
  events with one field replaced by arbitrary JSON -> an event or :class:`EventRejected`;
- ``streams.intake.parse_record`` (the worker's decoder around it) -> an event or :class:`EventRejected`;
- ``streams.facts.from_wire``: the round trip is the identity; arbitrary input fails only with a decoding error
  (ValueError, TypeError, IndexError, KeyError) that the aggregate agent catches;
- HL7: ``MllpDecoder.feed`` never raises and reassembles framed messages however the bytes are split;
  ``message.parse`` raises only :class:`Hl7Error`; ``Hl7Mapper.map`` never raises and never reports an internal
  error; ``parse_hl7_ts``/``parse_hl7_date`` raise only ValueError;
- CSV extracts: a row of arbitrary cells fails only with the row error; a file of arbitrary bytes is read with
  errors reported, never raised;
- the ClickHouse sink's ``_add`` with arbitrary bytes on every topic never raises.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors.clickhouse_sink import ClickHouseSink
from connectors.csv_extracts import ExtractReader, _RowFailed, load_extract_mapping
from connectors.hl7 import Hl7Mapper, load_hl7_config
from connectors.hl7 import message as hl7_message
from connectors.hl7.message import Hl7Error
from connectors.hl7.mllp import END_BLOCK, START_BLOCK, MllpDecoder, frame
from connectors.hl7.timestamps import parse_hl7_date, parse_hl7_ts
from connectors.pseudonymise import Pseudonymiser
from schemas.config import load_icb
from schemas.events import EVENT_MODELS, Envelope, EventRejected, parse_event
from schemas.settings import Settings
from streams.facts import AttendanceFact, DeclaredLevelFact, IncidentFact, Referral, SpellFact, from_wire, to_wire
from streams.intake import parse_record as _parse_record
from streams.topics import ALERTS, DEADLETTER, INDICATORS, INPUT_TOPICS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["2026-03-10T09:00:00Z", "2026-03-10T09:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)

VALID = {
    "event_id": "e-1",
    "event_type": "ed.arrived",
    "occurred_at": "2026-03-10T09:00:00Z",
    "source": "TEST",
    "org_code": "RWE",
    "site_code": "RWEAA",
    "attendance_id": "A1",
    "department_type": "1",
    "arrival_mode": "walk_in",
    "age": 40,
}


def dumps(value: object) -> bytes:
    """JSON bytes of any generated value (stdlib: integers beyond 64 bits too, which orjson refuses)."""
    return json.dumps(value).encode()


FIELDS = sorted({*VALID, "spell_id", "discharge_ready_date", "pathway", "category", "level", "schema_version"})


def _decodes_or_rejects(raw: object) -> None:
    try:
        event = parse_event(raw, now=NOW)  # type: ignore[arg-type]
    except EventRejected as exc:
        assert exc.reason and ":" in exc.reason  # names a field (or "event") and the problem
    else:
        assert isinstance(event, Envelope)


@FUZZ
@given(st.binary(max_size=600))
@example(b"\xff\xfe\x00\x01")
@example(b"")
def test_parse_event_on_arbitrary_bytes(raw: bytes) -> None:
    _decodes_or_rejects(raw)


@FUZZ
@given(st.text(max_size=300))
def test_parse_event_on_arbitrary_text(raw: str) -> None:
    _decodes_or_rejects(raw)


@FUZZ
@given(json_values)
def test_parse_event_on_arbitrary_json(value: object) -> None:
    _decodes_or_rejects(dumps(value))


@FUZZ
@given(
    st.sampled_from(sorted(EVENT_MODELS)),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3),
    st.lists(st.sampled_from(sorted(VALID)), max_size=2),
)
@example("ed.arrived", {"occurred_at": "0001-01-01T00:00:00+01:00"}, [])  # overflowed before the fix
@example("discharge.ready_date_set", {"spell_id": "S", "discharge_ready_date": "0001-01-01"}, [])
def test_parse_event_on_valid_events_with_fields_replaced(event_type: str, changes: dict, dropped: list) -> None:
    raw = {**VALID, "event_type": event_type, **changes}
    for name in dropped:
        raw.pop(name, None)
    _decodes_or_rejects(raw)
    _decodes_or_rejects(dumps(raw))


@FUZZ
@given(
    st.one_of(st.none(), st.binary(max_size=200), json_values.map(dumps)),
    st.sampled_from([*INPUT_TOPICS, "elsewhere"]),
    st.one_of(st.none(), st.floats(min_value=-1e12, max_value=1e11, allow_nan=False)),
)
def test_the_worker_record_decoder_only_rejects(raw: bytes | None, topic: str, timestamp: float | None) -> None:
    try:
        event = _parse_record(raw, topic, timestamp)
    except EventRejected as exc:
        assert exc.reason
    else:
        assert isinstance(event, Envelope)


# --- scc.facts -------------------------------------------------------------------------------------------------

instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))
maybe_instant = st.none() | instants
ids = st.text(min_size=1, max_size=20)
facts = st.one_of(
    st.builds(AttendanceFact, ids, ids, st.none() | ids, st.sampled_from("123"), instants, instants, maybe_instant),
    st.builds(
        IncidentFact,
        ids,
        ids,
        maybe_instant,
        maybe_instant,
        st.none() | st.integers(1, 4),
        st.none() | ids,
        maybe_instant,
        maybe_instant,
    ),  # fmt: skip
    st.builds(
        SpellFact,
        ids,
        ids,
        st.none() | ids,
        instants,
        maybe_instant,
        ids,
        st.booleans(),
        st.none() | st.dates(),
        st.none() | st.integers(0, 3),
        st.booleans(),
        st.none() | st.dates(),
        st.lists(st.builds(Referral, ids, st.integers(1, 3), instants, maybe_instant), max_size=3).map(tuple),
    ),  # fmt: skip
    st.builds(DeclaredLevelFact, ids, ids, st.integers(1, 4), instants),
)
KIND_OF_FACT = {AttendanceFact: "ed", IncidentFact: "ambulance", SpellFact: "spell", DeclaredLevelFact: "opel"}
FACT_DECODING_ERRORS = (ValueError, TypeError, IndexError, KeyError)


@FUZZ
@given(facts, ids, instants, st.integers(0, 10**6))
def test_facts_round_trip_on_the_wire(fact: object, entity_id: str, clock: dt.datetime, evidence: int) -> None:
    kind = KIND_OF_FACT[type(fact)]
    assert from_wire(to_wire(kind, entity_id, fact, clock, evidence)) == (kind, entity_id, fact, clock, evidence)  # type: ignore[arg-type]


@FUZZ
@given(st.one_of(st.binary(max_size=300), json_values.map(dumps)))
def test_from_wire_on_arbitrary_input_fails_only_with_decoding_errors(raw: bytes) -> None:
    with contextlib.suppress(*FACT_DECODING_ERRORS):
        from_wire(raw)


@FUZZ
@given(
    st.sampled_from(["ed", "ambulance", "spell", "opel", "other"]),
    st.lists(json_values, min_size=0, max_size=13),
    json_values,
)
def test_from_wire_on_fact_shaped_input_fails_only_with_decoding_errors(kind: str, values: list, clock: object) -> None:
    with contextlib.suppress(*FACT_DECODING_ERRORS):
        from_wire(dumps([kind, "id", values, clock, 1]))


# --- HL7 v2 and MLLP -------------------------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=12), st.integers(1, 64))
def test_mllp_decoder_never_raises_on_arbitrary_bytes(chunks: list[bytes], max_frame: int) -> None:
    decoder = MllpDecoder(max_frame_bytes=max_frame)
    for chunk in chunks:
        for got in decoder.feed(chunk):
            assert len(got.payload) <= max_frame
            assert got.oversized == (got.size > max_frame)


payloads = st.binary(max_size=120).map(lambda b: b.replace(START_BLOCK, b"").replace(END_BLOCK, b""))


@FUZZ
@given(st.binary(max_size=40).map(lambda b: b.replace(START_BLOCK, b"")), st.lists(payloads, max_size=5), st.data())
def test_mllp_decoder_reassembles_frames_however_split(
    garbage: bytes, messages: list[bytes], data: st.DataObject
) -> None:
    stream = garbage + b"".join(frame(p) for p in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = MllpDecoder()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got.extend(f.payload for f in decoder.feed(stream[start:end]))
    assert got == messages
    assert not decoder.partial


segment_text = st.text(alphabet=string.ascii_uppercase + string.digits + "|^~\\&- .", max_size=60)
hl7_like = st.one_of(
    st.binary(max_size=300),
    st.lists(segment_text, max_size=6).map(
        lambda segs: "\r".join(["MSH|^~\\&|A|RWE|B|C|20260310101500||ADT^A01", *segs]).encode()
    ),
    st.builds(
        lambda trigger, fields: (
            f"MSH|^~\\&|EPR|RWE|SCC|QK1|20260310101500||ADT^{trigger}|C1|P|2.4\r"
            f"EVN|{trigger}|20260310101500\rPID|1||M1^^^RWE^MR\rPV1|1|{fields}"
        ).encode(),
        st.sampled_from(["A01", "A02", "A03", "A04", "A08", "A11", "A12", "A13", "A05", "Z99"]),
        segment_text,
    ),
)


@pytest.fixture(scope="module")
def mapper() -> Hl7Mapper:
    return Hl7Mapper(load_hl7_config(), Pseudonymiser("fuzz-pseudonym-key-0123456789abcdef"), load_icb())


@FUZZ
@given(hl7_like)
def test_hl7_parse_raises_only_hl7_errors(raw: bytes) -> None:
    try:
        hl7_message.parse(raw)
    except Hl7Error as exc:
        assert exc.reason


@settings(FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=hl7_like)
def test_hl7_mapper_never_raises_nor_fails_internally(mapper: Hl7Mapper, raw: bytes) -> None:
    outcome = mapper.map(raw)
    if outcome.error is not None:
        assert "internal error" not in outcome.error.reason, outcome.error.reason
        assert outcome.events == []


@FUZZ
@given(st.one_of(st.text(max_size=30), st.text(alphabet="0123456789.+-", max_size=24)))
def test_hl7_timestamps_raise_only_value_errors(text: str) -> None:
    for parse in (parse_hl7_ts, parse_hl7_date):
        with contextlib.suppress(ValueError):
            parse(text)


# --- CSV extracts ----------------------------------------------------------------------------------------------

EXTRACTS = {kind: ExtractReader(load_extract_mapping(kind), load_icb()) for kind in ("ambulance", "ed")}
cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "01", "C2", "Y", "N", "RWE", "RWEAA", "RX9", "2026-03-10 09:05:00", "31/02/2026 10:00"]),
    st.datetimes(min_value=dt.datetime(1, 1, 1)).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.datetimes(timezones=st.timezones()).map(dt.datetime.isoformat),
)


@FUZZ
@given(st.sampled_from(sorted(EXTRACTS)), st.data())
def test_csv_rows_fail_only_with_a_row_error(kind: str, data: st.DataObject) -> None:
    reader = EXTRACTS[kind]
    columns = sorted(reader.mapping.columns(required_only=False))
    row = {c: data.draw(cells, label=c) for c in columns}
    try:
        events = reader._row(row)
    except _RowFailed as exc:
        assert exc.reason and exc.column
    else:
        assert all(isinstance(e, Envelope) for e in events)


@FUZZ
@given(st.sampled_from(sorted(EXTRACTS)), st.binary(max_size=400), st.booleans())
def test_csv_files_of_arbitrary_bytes_are_read_with_errors_never_raised(kind: str, body: bytes, header: bool) -> None:
    reader = EXTRACTS[kind]
    head = ",".join(sorted(reader.mapping.columns(required_only=False))).encode() + b"\n" if header else b""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "extract.csv"
        path.write_bytes(head + body)
        result = reader.read([path])
    assert result.rows >= result.rows_rejected >= 0


# --- the ClickHouse sink ---------------------------------------------------------------------------------------

SINK = ClickHouseSink(Settings(), store_factory=lambda: None)  # type: ignore[arg-type,return-value]  # _add needs no store


@FUZZ
@given(
    st.sampled_from([*INPUT_TOPICS, INDICATORS, ALERTS, DEADLETTER, "elsewhere"]),
    st.one_of(
        st.none(),
        st.binary(max_size=300),
        json_values.map(dumps),
        st.fixed_dictionaries(
            {
                "reason": json_values,
                "source_topic": json_values,
                "partition": json_values,
                "offset": json_values,
                "raw_b64": st.one_of(st.text(max_size=20), json_values),
                "received_at": st.one_of(json_scalars, st.just("2026-03-10T09:00:00+00:00")),
            }
        ).map(dumps),
    ),
)
def test_sink_add_never_raises(topic: str, value: bytes | None) -> None:
    SINK._add(topic, 0, 1, value)

"""HL7 v2 ADT -> canonical events: each trigger, the UK conventions, the configurable fields, and every rejection.

Fixtures: tests/fixtures/hl7/ (see README there for the public examples they follow). Messages built here differ
from a known-good UK ITK-shaped message by exactly the thing under test.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from pathlib import Path

import hl7
import pytest

from connectors.hl7 import Hl7Mapper, iter_file_messages, load_hl7_config
from connectors.hl7.ack import build_ack, escape
from connectors.hl7.config import DEFAULT_MAPPING_FILE, Mapping, Wards, load_yaml_model
from connectors.pseudonymise import NHS_NUMBER_PATTERN, Pseudonymiser
from schemas.config import ConfigError, load_icb
from schemas.events import dump_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
KEY = "unit-test-pseudonym-key-0123456789abcdef"
NHS = "9990001001"
MRN = "RWE1000101"
NAME = "TESTPATIENT"


@pytest.fixture(scope="module")
def icb():  # noqa: ANN201
    return load_icb()


@pytest.fixture(scope="module")
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(KEY)


@pytest.fixture(scope="module")
def mapper(icb, pseudonymiser: Pseudonymiser) -> Hl7Mapper:  # noqa: ANN001
    return Hl7Mapper(load_hl7_config(), pseudonymiser, icb)


def adt(
    trigger: str = "A01",
    *,
    facility: str = "RWE",
    msh7: str = "20260310101500",
    control: str = "UNIT0001",
    processing: str = "P",
    version: str = "2.4",
    message_type: str = "ADT",
    evn: str | None = "EVN|{t}|20260310101500||||20260310101000",
    pid: str | None = f"PID|1||{MRN}^^^RWE^MR~{NHS}^^^NHS^NH||{NAME}^ALPHA||19450612|M",
    cls: str = "I",
    ward: str = "LRIW15^BAY4^BED2^RWEAA",
    admission: str = "21",
    visit: str = "V26000001",
    disposition: str = "",
    destination: str = "",
    extra: tuple[str, ...] = (),
    sep: str = "\r",
) -> bytes:
    """A UK ITK-shaped v2.4 ADT message; every argument changes one thing."""
    segments = [
        f"MSH|^~\\&|UHL-EPR|{facility}|SCC|QK1|{msh7}||{message_type}^{trigger}^ADT_A01|{control}|{processing}|{version}|||AL|NE"
    ]
    if evn is not None:
        segments.append(evn.format(t=trigger))
    if pid is not None:
        segments.append(pid)
    if ward is not None:
        fields = [""] * 38
        fields[1], fields[2], fields[3], fields[4], fields[19] = "1", cls, ward, admission, visit
        fields[36], fields[37] = disposition, destination
        segments.append("PV1|" + "|".join(fields[1:]).rstrip("|"))
    segments.extend(extra)
    return sep.join(segments).encode()


def one(mapper: Hl7Mapper, raw: bytes):  # noqa: ANN201
    outcome = mapper.map(raw)
    assert outcome.error is None, outcome.error.reason
    return outcome


def rejected(mapper: Hl7Mapper, raw: bytes, ack: str = "AE"):  # noqa: ANN201
    outcome = mapper.map(raw)
    assert outcome.error is not None, [e.event_type for e in outcome.events]
    assert outcome.ack_code == ack
    assert outcome.events == []
    return outcome.error


# --- the LLR stream fixture ------------------------------------------------------------------------------------

EXPECTED_STREAM = {
    "UHL0000101": ["adt.admitted"],
    "UHL0000102": ["adt.admitted"],
    "UHL0000103": [],  # A31 person update: ignored
    "UHL0000104": ["adt.admitted"],
    "UHL0000105": ["adt.transferred"],
    "UHL0000106": ["discharge.ready_date_set", "adt.updated"],
    "UHL0000107": [],  # A05 pre-admit: ignored
    "UHL0000108": ["adt.admitted"],
    "UHL0000109": ["adt.transferred"],
    "UHL0000110": ["adt.admitted"],
    "UHL0000111": ["adt.admission_cancelled"],
    "UHL0000112": ["adt.transferred"],
    "UHL0000113": ["adt.transfer_cancelled"],
    "UHL0000114": ["adt.transferred"],
    "UHL0000115": ["discharge.ready_date_set", "adt.updated"],
    "UHL0000116": ["discharge.ready_date_set", "adt.updated"],
    "UHL0000117": ["adt.discharged"],
    "UHL0000118": ["adt.discharge_cancelled"],
    "UHL0000119": ["discharge.ready_date_cleared", "adt.updated"],
    "UHL0000120": ["adt.admitted"],
    "UHL0000121": ["adt.transferred"],
    "UHL0000122": ["ed.arrived"],
    "UHL0000123": ["discharge.pathway_assigned", "adt.updated"],
    "UHL0000124": ["ed.departed", "adt.discharged"],
    "UHL0000125": ["adt.discharged"],
}


def stream_outcomes(mapper: Hl7Mapper) -> dict:
    return {
        o.control_id: o for o in (mapper.map(raw) for _, raw in iter_file_messages(FIXTURES / "llr_adt_stream.hl7"))
    }


def test_stream_maps_every_message_to_the_expected_events(mapper: Hl7Mapper) -> None:
    outcomes = stream_outcomes(mapper)
    assert {c: o.ack_code for c, o in outcomes.items()} == dict.fromkeys(EXPECTED_STREAM, "AA")
    assert {c: [e.event_type for e in o.events] for c, o in outcomes.items()} == EXPECTED_STREAM
    assert outcomes["UHL0000103"].ignored and outcomes["UHL0000107"].ignored


def test_event_ids_come_from_the_control_id_and_repeat_on_redelivery(mapper: Hl7Mapper) -> None:
    first, again = stream_outcomes(mapper), stream_outcomes(mapper)
    ids = [e.event_id for o in first.values() for e in o.events]
    assert len(ids) == len(set(ids))
    assert first["UHL0000106"].events[0].event_id == "RWE:UHL-EPR:UHL0000106:0"
    assert first["UHL0000106"].events[1].event_id == "RWE:UHL-EPR:UHL0000106:1"
    assert [dump_event(e) for o in first.values() for e in o.events] == [
        dump_event(e) for o in again.values() for e in o.events
    ]


def test_admission_fields(mapper: Hl7Mapper, pseudonymiser: Pseudonymiser) -> None:
    admitted = stream_outcomes(mapper)["UHL0000101"].events[0]
    assert admitted.model_dump(exclude={"patient_ref"}) == {
        "event_id": "RWE:UHL-EPR:UHL0000101:0",
        "event_type": "adt.admitted",
        "occurred_at": dt.datetime(2026, 3, 28, 9, 15, tzinfo=dt.UTC),  # EVN-6, GMT
        "source": "UHL-EPR",
        "org_code": "RWE",
        "site_code": "RWEAA",
        "schema_version": 1,
        "spell_id": "V26000101",
        "ward_code": "LRIAMU",
        "bed_category": "adult_ga",
        "escalation_bed": False,
        "admission_method": "emergency",
        "age": 80,
    }
    assert admitted.patient_ref == pseudonymiser.nhs_number_ref("9990001001")


def test_mrn_only_patient_and_site_facility(mapper: Hl7Mapper, pseudonymiser: Pseudonymiser) -> None:
    admitted = stream_outcomes(mapper)["UHL0000104"].events[0]  # MSH-4 RWEAK (a site), PID-3 has only the MRN
    assert admitted.org_code == "RWE" and admitted.site_code == "RWEAK"
    assert admitted.patient_ref == pseudonymiser.mrn_ref("RWE1000105", "RWE")


def test_no_clear_identifier_in_any_event(mapper: Hl7Mapper) -> None:
    text = b"\n".join(dump_event(e) for o in stream_outcomes(mapper).values() for e in o.events).decode()
    for clear in ("9990001001", "999 000 1001", "RWE1000101", "TESTPATIENT", "19450612", "LE1 9ZZ", "TEST STREET"):
        assert clear not in text
    for line in text.splitlines():
        for ref in __import__("re").findall(r'"patient_ref":"([0-9a-f]+)"', line):
            line = line.replace(ref, "")
        assert not NHS_NUMBER_PATTERN.search(line), line


# --- time ------------------------------------------------------------------------------------------------------


def test_event_time_prefers_evn6_then_evn2_then_msh7(mapper: Hl7Mapper) -> None:
    def when(evn: str | None) -> dt.datetime:
        return one(mapper, adt(evn=evn)).events[0].occurred_at

    assert when("EVN|A01|20260310101500||||20260310090000") == dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    assert when("EVN|A01|20260310101500") == dt.datetime(2026, 3, 10, 10, 15, tzinfo=dt.UTC)
    assert when("EVN|A01") == dt.datetime(2026, 3, 10, 10, 15, tzinfo=dt.UTC)  # MSH-7
    assert when(None) == dt.datetime(2026, 3, 10, 10, 15, tzinfo=dt.UTC)  # no EVN at all: MSH-7
    assert when("EVN|A01|20260710101500||||20260710090000+0000") == dt.datetime(2026, 7, 10, 9, 0, tzinfo=dt.UTC)
    assert when("EVN|A01|20260710101500||||20260710090000") == dt.datetime(2026, 7, 10, 8, 0, tzinfo=dt.UTC)  # BST


def test_a_bad_timestamp_is_rejected_not_skipped(mapper: Hl7Mapper) -> None:
    error = rejected(mapper, adt(evn="EVN|A01|20260310101500||||20260310251500"))
    assert error.location == "EVN-6" and error.code == 102
    error = rejected(mapper, adt(evn="EVN|A01|2026031"))
    assert error.location == "EVN-2"
    error = rejected(mapper, adt(msh7="yesterday", evn=None))
    assert error.location == "MSH-7"


# --- discharge readiness ---------------------------------------------------------------------------------------


def test_ready_date_set_uses_its_recorded_time_and_pathway(mapper: Hl7Mapper) -> None:
    events = one(mapper, adt("A08", extra=("ZDS|20260311|2|20260310180000",))).events
    drd, update = events
    assert (drd.event_type, drd.discharge_ready_date, drd.pathway) == (
        "discharge.ready_date_set",
        dt.date(2026, 3, 11),
        2,
    )
    assert drd.occurred_at == dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC)
    assert update.event_type == "adt.updated" and update.ward_code == "LRIW15"
    assert drd.event_id < update.event_id  # readiness first at equal times (engine tie-break)


def test_ready_date_cleared_by_the_hl7_null_and_nothing_when_empty(mapper: Hl7Mapper) -> None:
    assert [e.event_type for e in one(mapper, adt("A08", extra=('ZDS|""',))).events] == [
        "discharge.ready_date_cleared",
        "adt.updated",
    ]
    assert [e.event_type for e in one(mapper, adt("A08", extra=("ZDS||",))).events] == ["adt.updated"]
    assert [e.event_type for e in one(mapper, adt("A08")).events] == ["adt.updated"]


def test_pathway_alone_and_on_discharge(mapper: Hl7Mapper) -> None:
    events = one(mapper, adt("A08", extra=("ZDS||P3",))).events
    assert (events[0].event_type, events[0].pathway) == ("discharge.pathway_assigned", 3)
    discharged = one(mapper, adt("A03", destination="19", extra=("ZDS||2",))).events
    assert [(e.event_type, e.pathway, e.destination) for e in discharged] == [("adt.discharged", 2, "19")]
    both = one(mapper, adt("A03", extra=("ZDS|20260310|2",))).events
    assert [e.event_type for e in both] == ["discharge.ready_date_set", "adt.discharged"]


def test_bad_readiness_values_are_rejected(mapper: Hl7Mapper) -> None:
    assert rejected(mapper, adt("A08", extra=("ZDS||5",))).location == "ZDS-2"
    assert rejected(mapper, adt("A08", extra=("ZDS|20261332",))).location == "ZDS-1"
    assert rejected(mapper, adt("A08", extra=("ZDS|20260310||notatime",))).location == "ZDS-3"


# --- the other triggers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "event_type"),
    [("A11", "adt.admission_cancelled"), ("A12", "adt.transfer_cancelled"), ("A13", "adt.discharge_cancelled")],
)
def test_cancellations(mapper: Hl7Mapper, trigger: str, event_type: str) -> None:
    events = one(mapper, adt(trigger, extra=("ZDS|20260310|1",))).events
    assert [(e.event_type, e.spell_id) for e in events] == [(event_type, "V26000001")]


def test_transfer_to_escalation_bed(mapper: Hl7Mapper) -> None:
    (event,) = one(mapper, adt("A02", ward="LGHESC^BAY1^BED2^RWEAK")).events
    assert (event.event_type, event.bed_category, event.escalation_bed, event.site_code) == (
        "adt.transferred",
        "adult_ga",
        True,
        "RWEAK",
    )


def test_update_carries_only_what_is_valued(mapper: Hl7Mapper, pseudonymiser: Pseudonymiser) -> None:
    (event,) = one(mapper, adt("A08", ward="", admission="", pid="PID|1||||X||")).events
    assert event.model_dump(exclude_none=True).keys() == {
        "event_id",
        "event_type",
        "occurred_at",
        "source",
        "org_code",
        "schema_version",
        "spell_id",
    }
    (event,) = one(mapper, adt("A08", admission="11")).events
    assert (event.admission_method, event.patient_ref) == ("elective", pseudonymiser.nhs_number_ref(NHS))


def test_spell_id_template(icb, pseudonymiser: Pseudonymiser, tmp_path: Path) -> None:  # noqa: ANN001
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(DEFAULT_MAPPING_FILE.read_text().replace('spell_id: "{visit}"', 'spell_id: "{org}-{visit}"'))
    namespaced = Hl7Mapper(load_hl7_config(mapping), pseudonymiser, icb)
    assert one(namespaced, adt("A02")).events[0].spell_id == "RWE-V26000001"


# --- ED on ADT -------------------------------------------------------------------------------------------------


def test_ed_registration_arrival_departure_and_cancel(mapper: Hl7Mapper) -> None:
    pv2 = "PV2" + "|" * 38 + "A"
    (arrived,) = one(mapper, adt("A04", cls="E", ward="LRIED^MAJ^CUB1^RWEAA", visit="E1", extra=(pv2,))).events
    assert (arrived.event_type, arrived.attendance_id, arrived.department_type, arrived.arrival_mode, arrived.age) == (
        "ed.arrived",
        "E1",
        "1",
        "ambulance",
        80,
    )
    (utc,) = one(mapper, adt("A04", cls="E", ward="LRIUTC", visit="E2")).events
    assert (utc.department_type, utc.arrival_mode) == ("3", "other")
    departed = one(mapper, adt("A03", cls="E", ward="LRIED", visit="E1", disposition="ADM")).events
    assert [(e.event_type, getattr(e, "disposal", None)) for e in departed] == [
        ("ed.departed", "admitted"),
        ("adt.discharged", None),  # harmless for a visit that never opened a spell; closes one opened by A01
    ]
    cancelled = one(mapper, adt("A11", cls="E", ward="LRIED", visit="E1")).events
    assert [e.event_type for e in cancelled] == ["ed.cancelled", "adt.admission_cancelled"]


def test_a04_outside_an_ed_is_acknowledged_without_events(mapper: Hl7Mapper) -> None:
    outpatient = one(mapper, adt("A04", cls="O", ward="CLINIC9"))
    assert outpatient.events == [] and outpatient.ack_code == "AA"
    assert one(mapper, adt("A04", cls="E", ward="LRIW15")).events == []  # ED class, not an ED location
    assert rejected(mapper, adt("A04", cls="E", ward="NEWED")).location == "PV1-3"  # an ED not configured yet


@pytest.mark.parametrize("trigger", ["A01", "A02", "A03", "A08", "A11", "A12", "A13"])
def test_outpatient_visits_give_no_events(mapper: Hl7Mapper, trigger: str) -> None:
    outcome = mapper.map(adt(trigger, cls="O", ward="CLINIC9", visit=""))
    assert (outcome.ack_code, outcome.events, outcome.ignored) == ("AA", [], True)


def test_a01_at_an_ed_location_opens_a_spell_in_a_non_ga_bed(mapper: Hl7Mapper) -> None:
    (event,) = one(mapper, adt("A01", cls="E", ward="LRIED")).events
    assert (event.event_type, event.bed_category) == ("adt.admitted", "other")


@pytest.mark.parametrize("trigger", ["A05", "A28", "A31", "A40"])
def test_ignored_triggers(mapper: Hl7Mapper, trigger: str) -> None:
    outcome = mapper.map(adt(trigger, ward=None))
    assert (outcome.ack_code, outcome.events, outcome.ignored) == ("AA", [], True)


# --- rejections ------------------------------------------------------------------------------------------------

REJECTIONS = {
    "not ADT": (adt(message_type="ORU"), "AR", 200, "MSH-9"),
    "unmapped trigger": (adt("A06"), "AR", 201, "MSH-9"),
    "training message": (adt(processing="T"), "AR", 202, "MSH-11"),
    "unknown version": (adt(version="2.9"), "AR", 203, "MSH-12"),
    "no control id": (adt(control=""), "AE", 101, "MSH-10"),
    "no PID": (adt(pid=None), "AE", 100, "PID"),
    "no PV1": (adt(ward=None), "AE", 100, "PV1"),
    "no visit number": (adt(visit=""), "AE", 101, "PV1-19"),
    "no ward on admission": (adt(ward=""), "AE", 101, "PV1-3"),
    "unknown ward": (adt(ward="WARD99"), "AE", 103, "PV1-3"),
    "unknown facility": (adt(facility="RX1"), "AE", 103, "MSH-4"),
    "no identifiers": (adt(pid="PID|1||||TESTPATIENT||19450612"), "AE", 101, "PID-3"),
    "NHS number not 10 digits": (adt(pid="PID|1||99900010^^^NHS^NH"), "AE", 102, "PID-3"),
    "unknown admission code": (None, None, None, None),
    "wrong encoding characters": (adt().replace(b"MSH|^~\\&|", b"MSH|^^\\&|"), "AE", 102, "MSH-2"),
    "short encoding characters": (adt().replace(b"MSH|^~\\&|", b"MSH|^~|"), "AE", 102, "MSH-2"),
    "alphanumeric separators": (adt().replace(b"MSH|^~\\&|", b"MSHA^~\\&A"), "AE", 102, "MSH-2"),
    "not starting with MSH": (b"EVN|A01\r" + adt(), "AE", 100, "MSH"),
    "a line that is not a segment": (adt(extra=("this is not a segment",)), "AE", 100, None),
    "lower-case segment id": (adt(extra=("zds|20260310",)), "AE", 100, None),
    "empty": (b"", "AE", 100, None),
    "only whitespace": (b" \r\n\r\n ", "AE", 100, None),
    "NUL bytes": (adt().replace(b"LRIW15", b"LRI\x00W15"), "AE", 102, None),
    "not UTF-8": (adt().replace(b"ALPHA", b"\xe9\xff"), "AE", 102, "MSH-18"),
    "unknown character set": (adt().replace(b"|AL|NE", b"|AL|NE|GBR|KOI8-R"), "AE", 102, "MSH-18"),
}
REJECTIONS.pop("unknown admission code")


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejections(mapper: Hl7Mapper, case: str) -> None:
    raw, ack, code, location = REJECTIONS[case]
    error = rejected(mapper, raw, ack)
    assert (error.code, error.location) == (code, location), error.reason
    for clear in (NHS, MRN, NAME, "19450612"):
        assert clear not in error.reason
    ack_message = hl7.parse(build_ack(mapper.map(raw).header, ack, error).decode().replace("\r", "\r"))
    assert str(ack_message.segment("MSA")[1]) == ack


def test_latin1_is_read_when_msh18_declares_it(mapper: Hl7Mapper) -> None:
    raw = adt().replace(b"|AL|NE", b"|AL|NE|GBR|8859/1").replace(b"ALPHA", b"\xe9LODIE")
    assert one(mapper, raw).events[0].event_type == "adt.admitted"


def test_binary_garbage_never_raises(mapper: Hl7Mapper) -> None:
    rng = random.Random(20260329)
    for size in (1, 3, 8, 64, 512, 4096):
        for _ in range(20):
            raw = bytes(rng.randrange(256) for _ in range(size))
            assert mapper.map(raw).ack_code in ("AE", "AR")
    for prefix in (b"MSH", b"MSH|", b"MSH|^~\\&", b"MSH|^~\\&|" + b"|" * 300):
        assert mapper.map(prefix).ack_code in ("AE", "AR")


def test_identifiers_placed_where_codes_belong_are_masked_in_reasons(mapper: Hl7Mapper) -> None:
    error = rejected(mapper, adt(ward="999 000 1001"))
    assert "999 000 1001" not in error.reason and "############" in error.reason
    error = rejected(mapper, adt(facility="9990001001"))
    assert NHS_NUMBER_PATTERN.search(error.reason) is None


def test_python_hl7_never_logs_field_content(mapper: Hl7Mapper, caplog: pytest.LogCaptureFixture) -> None:
    raw = adt(pid=f"PID|1||{NHS}\\Z99\\^^^NHS^NH||TEST\\Q1\\PATIENT||19450612")
    with caplog.at_level(logging.DEBUG):
        mapper.map(raw)
    assert NHS not in caplog.text and "TEST" not in caplog.text


# --- a second real-world shape: an Epic feed (UCLH EMAP test resources) -----------------------------------------


def test_epic_shape_needs_its_own_mapping_and_then_maps(icb, pseudonymiser: Pseudonymiser) -> None:  # noqa: ANN001
    messages = [raw for _, raw in iter_file_messages(FIXTURES / "uclh_epic_shape.hl7")]
    default = Hl7Mapper(load_hl7_config(), pseudonymiser, icb)
    assert {default.map(raw).error.location for raw in messages} == {"MSH-4"}  # type: ignore[union-attr]
    tuned = Hl7Mapper(load_hl7_config(FIXTURES / "uclh_mapping.yaml", FIXTURES / "uclh_wards.yaml"), pseudonymiser, icb)
    outcomes = [tuned.map(raw) for raw in messages]
    assert [o.ack_code for o in outcomes] == ["AA"] * 4
    events = [e for o in outcomes for e in o.events]
    assert [e.event_type for e in events] == [
        "adt.admitted",
        "adt.transferred",
        "adt.discharged",
        "adt.discharge_cancelled",
    ]
    admitted = events[0]
    assert (admitted.bed_category, admitted.admission_method, admitted.source, admitted.spell_id) == (
        "maternity",
        "emergency",
        "EPIC-UCLH",
        "553412341234",
    )
    assert admitted.patient_ref == pseudonymiser.nhs_number_ref("9990002001")  # typed "HN" in that feed
    assert admitted.occurred_at == dt.datetime(2026, 1, 12, 10, 0, tzinfo=dt.UTC)  # EVN-6 to the minute
    assert events[1].bed_category == "adult_ga"


# --- ACKs ------------------------------------------------------------------------------------------------------


def test_ack_accept_echoes_the_control_id_and_swaps_sender_and_receiver(mapper: Hl7Mapper) -> None:
    outcome = mapper.map(adt(control="CTRL-42"))
    ack = hl7.parse(build_ack(outcome.header, "AA").decode())
    msh, msa = ack.segment("MSH"), ack.segment("MSA")
    assert (str(msh[3]), str(msh[4]), str(msh[5]), str(msh[6])) == ("SCC", "QK1", "UHL-EPR", "RWE")
    assert str(msh[9]) == "ACK^A01^ACK" and str(msh[12]) == "2.4"
    assert (str(msa[1]), str(msa[2])) == ("AA", "CTRL-42")
    assert not any(s[0][0] == "ERR" for s in ack)


def test_ack_error_carries_the_reason_in_msa3_and_err(mapper: Hl7Mapper) -> None:
    outcome = mapper.map(adt(ward="W\\F\\X\\S\\Y"))  # escaped in the message: the ward code is W|X^Y
    assert outcome.error is not None
    text = build_ack(outcome.header, outcome.ack_code, outcome.error).decode()
    ack = hl7.parse(text)
    assert ack.segment("MSA").extract_field(1, 3, 1, 1, 1).startswith("PV1-3: unknown ward")
    assert "'W|X^Y'" in ack.unescape(str(ack.segment("MSA")[3]))
    assert text.count("\r") == 3 and text.split("\r")[1].count("|") == 3  # the reason added no field
    err = ack.segment("ERR")
    assert str(err[1]) == "PV1^1^3^103&Table value not found&HL70357"
    assert str(err[3]) == "103^Table value not found^HL70357" and str(err[4]) == "E"
    assert escape("a|b^c~d\\e&f") == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f"


# --- configuration ---------------------------------------------------------------------------------------------


def test_configuration_errors_say_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("discharge:\n  ready_date: ZDS1\nignore_events: [A01]\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_model(bad, Mapping)
    assert f"{bad}:2: discharge.ready_date" in str(info.value) and "ignore_events" in str(info.value)
    wards = tmp_path / "wards.yaml"
    wards.write_text("synthetic: true\norganisations:\n  RWE:\n    W1: {site: RWEAA, bed_category: adult_gen}\n")
    with pytest.raises(ConfigError, match=r"wards.yaml:4: organisations.RWE.W1.bed_category"):
        load_yaml_model(wards, Wards)


def test_shipped_configuration_matches_the_icb_and_a_mismatch_is_reported(icb, tmp_path: Path) -> None:  # noqa: ANN001
    assert load_hl7_config().check_against(icb) == []
    wards = tmp_path / "wards.yaml"
    wards.write_text("synthetic: true\norganisations:\n  RX9:\n    W1: {site: RWEAA, bed_category: adult_ga}\n")
    assert load_hl7_config(wards_file=wards).check_against(icb) == [
        "wards organisations.RX9.W1: site 'RWEAA' is not a site of RX9"
    ]


def test_an_internal_error_costs_one_message_not_the_connection(icb) -> None:  # noqa: ANN001
    class Broken(Pseudonymiser):
        def nhs_number_ref(self, nhs_number: str) -> str:
            raise RuntimeError(f"boom {nhs_number}")

    outcome = Hl7Mapper(load_hl7_config(), Broken(KEY), icb).map(adt())
    assert outcome.ack_code == "AE" and outcome.error is not None and outcome.error.code == 207
    assert "RuntimeError" in outcome.error.reason and NHS not in outcome.error.reason

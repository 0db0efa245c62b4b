"""Canonical event contract, version 1 (../shared/domain/EVENTS.md) as strict pydantic v2 models.

Strict on purpose: the contract is the platform's public face to data suppliers, so a naive timestamp, an unknown
event type, a wrong enum value, a wrong JSON type or a missing field is rejected with a message that names the field
(see :func:`describe_error`) rather than coerced into something that later skews an indicator.

Bounds (docs/definitions.md, "Bad input"): a record over :data:`MAX_EVENT_BYTES` is rejected before it is parsed;
``occurred_at`` before :data:`EARLIEST_OCCURRED_AT`, or (on the wire, :func:`parse_event`) more than
:data:`MAX_FUTURE` after the receiver's clock, is rejected — one event from 2099 would otherwise become every
worker's live evaluation time, and either would break the store's ``DateTime64`` range.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

SCHEMA_VERSION: Final = 1
MAX_EVENT_BYTES = 64 * 1024
"""Largest accepted record (an event is well under 1 KiB); checked before parsing."""
EARLIEST_OCCURRED_AT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""No event of this platform happened before 2000: earlier times are typos or epoch defaults."""
MAX_FUTURE = dt.timedelta(days=1)
"""How far after the receiver's clock an ``occurred_at`` may be (clock skew and local-time slips, not more)."""
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)


_CORE_UTC = TypeAdapter(AwareDatetime).validate_json(b'"2000-01-01T00:00:00Z"').tzinfo
"""pydantic-core's own tzinfo for a zero offset: every ``Z`` and ``+00:00`` timestamp it parses shares this object."""


def _to_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is _CORE_UTC and type(value) is dt.datetime:  # a subclass may pickle otherwise
        # The same fields with datetime.UTC, built from the datetime's pickled state (its fields as bytes): 0.2 µs a
        # call inside validation, where astimezone() costs 0.7 µs (mostly calling pydantic-core's TzInfo.utcoffset)
        # and replace(tzinfo=...) 0.9 µs. A replay validates millions; tests/unit/test_event_times.py pins it.
        utc = dt.datetime(value.__reduce__()[1][0], dt.UTC)  # type: ignore[call-arg, arg-type]  # pickle's form
    else:
        try:
            utc = value.astimezone(dt.UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00: no UTC instant exists
            raise ValueError("is outside the representable range") from None
    if utc < EARLIEST_OCCURRED_AT:
        raise ValueError(f"{utc.isoformat()} is before {EARLIEST_OCCURRED_AT.date().isoformat()}")
    return utc


def _plausible_date(value: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"{value.isoformat()} is outside {EARLIEST_DATE.isoformat()}..{LATEST_DATE.isoformat()}")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""RFC 3339 timestamp with an offset, not before 2000; naive timestamps are rejected; normalised to UTC."""
PlausibleDate = Annotated[dt.date, AfterValidator(_plausible_date)]
"""A calendar date within 2000..2100 (the store's ``Date`` column holds 1970..2149)."""

OdsCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{3,6}$", description="ODS organisation or site code")]
Identifier = Annotated[str, Field(min_length=1, max_length=128)]
PatientRef = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{16,128}$",
        description="keyed hash (pseudonym) made at the edge; never an NHS number or MRN in clear",
    ),
]
Pathway = Annotated[int, Field(ge=0, le=3)]
ReferralPathway = Annotated[int, Field(ge=1, le=3)]
Category = Annotated[int, Field(ge=1, le=4)]
Age = Annotated[int, Field(ge=0, le=130)]

DepartmentType = Literal["1", "2", "3"]
ArrivalMode = Literal["ambulance", "walk_in", "other"]
Disposal = Literal["admitted", "transferred", "discharged", "left", "died"]
BedCategory = Literal["adult_ga", "paediatric_ga", "critical_care", "maternity", "mental_health", "other"]
AdmissionMethod = Literal["emergency", "elective", "other"]


class Envelope(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    event_id: Identifier
    occurred_at: UtcDatetime
    source: Annotated[str, Field(min_length=1, max_length=64)]
    org_code: OdsCode
    site_code: OdsCode | None = None
    schema_version: Literal[1] = SCHEMA_VERSION


# --- scc.ed (key: attendance_id) -------------------------------------------------------------------------------


class EdEvent(Envelope):
    attendance_id: Identifier


class EdArrived(EdEvent):
    event_type: Literal["ed.arrived"]
    department_type: DepartmentType
    arrival_mode: ArrivalMode
    ambulance_incident_id: Identifier | None = None
    age: Age | None = None


class EdHandover(EdEvent):
    event_type: Literal["ed.handover"]


class EdDecisionToAdmit(EdEvent):
    event_type: Literal["ed.decision_to_admit"]


class EdDeparted(EdEvent):
    event_type: Literal["ed.departed"]
    disposal: Disposal


class EdCancelled(EdEvent):
    event_type: Literal["ed.cancelled"]


# --- scc.ambulance (key: incident_id) --------------------------------------------------------------------------


class AmbulanceEvent(Envelope):
    incident_id: Identifier


class AmbulanceCallConnected(AmbulanceEvent):
    event_type: Literal["ambulance.call_connected"]


class AmbulanceClockStarted(AmbulanceEvent):
    event_type: Literal["ambulance.clock_started"]
    category: Category


class AmbulanceRecategorised(AmbulanceEvent):
    event_type: Literal["ambulance.recategorised"]
    category: Category


class AmbulanceResourceArrived(AmbulanceEvent):
    event_type: Literal["ambulance.resource_arrived"]
    resource_id: Identifier
    transport_capable: bool


class AmbulanceIncidentClosed(AmbulanceEvent):
    event_type: Literal["ambulance.incident_closed"]
    conveyed: bool


class AmbulanceArrivedAtHospital(AmbulanceEvent):
    event_type: Literal["ambulance.arrived_at_hospital"]
    site_code: OdsCode  # the receiving hospital: required here


class AmbulanceHandoverCompleted(AmbulanceEvent):
    event_type: Literal["ambulance.handover_completed"]
    site_code: OdsCode


class AmbulanceCrewClear(AmbulanceEvent):
    event_type: Literal["ambulance.crew_clear"]


# --- scc.adt (key: spell_id) -----------------------------------------------------------------------------------


class SpellEvent(Envelope):
    spell_id: Identifier


class AdtAdmitted(SpellEvent):
    event_type: Literal["adt.admitted"]
    patient_ref: PatientRef
    ward_code: Identifier
    bed_category: BedCategory
    escalation_bed: bool
    admission_method: AdmissionMethod
    age: Age | None = None


class AdtTransferred(SpellEvent):
    event_type: Literal["adt.transferred"]
    ward_code: Identifier
    bed_category: BedCategory
    escalation_bed: bool


class AdtDischarged(SpellEvent):
    event_type: Literal["adt.discharged"]
    pathway: Pathway | None = None
    destination: Annotated[str, Field(max_length=64)] | None = None


class AdtUpdated(SpellEvent):
    event_type: Literal["adt.updated"]
    patient_ref: PatientRef | None = None
    ward_code: Identifier | None = None
    bed_category: BedCategory | None = None
    escalation_bed: bool | None = None
    admission_method: AdmissionMethod | None = None
    age: Age | None = None


class AdtAdmissionCancelled(SpellEvent):
    event_type: Literal["adt.admission_cancelled"]


class AdtTransferCancelled(SpellEvent):
    event_type: Literal["adt.transfer_cancelled"]


class AdtDischargeCancelled(SpellEvent):
    event_type: Literal["adt.discharge_cancelled"]


# --- scc.discharge (key: spell_id) -----------------------------------------------------------------------------


class DischargeReadyDateSet(SpellEvent):
    event_type: Literal["discharge.ready_date_set"]
    discharge_ready_date: PlausibleDate
    pathway: Pathway | None = None


class DischargeReadyDateCleared(SpellEvent):
    event_type: Literal["discharge.ready_date_cleared"]


class DischargePathwayAssigned(SpellEvent):
    event_type: Literal["discharge.pathway_assigned"]
    pathway: Pathway


class DischargeReferralMade(SpellEvent):
    event_type: Literal["discharge.referral_made"]
    referral_id: Identifier
    pathway: ReferralPathway


class DischargePlanInPlace(SpellEvent):
    event_type: Literal["discharge.plan_in_place"]
    referral_id: Identifier


# --- scc.opel (key: the site or organisation the level is declared for) ----------------------------------------


class OpelDeclared(Envelope):
    """A trust's (site's, or with the ICB's code, the system's) declared OPEL level, shown beside the calculated one.

    An extension of contract version 1 (docs/events.md): declared for ``site_code`` when given, else ``org_code``.
    """

    event_type: Literal["opel.declared"]
    level: Annotated[int, Field(ge=1, le=4)]


EdEventT = EdArrived | EdHandover | EdDecisionToAdmit | EdDeparted | EdCancelled
AmbulanceEventT = (
    AmbulanceCallConnected
    | AmbulanceClockStarted
    | AmbulanceRecategorised
    | AmbulanceResourceArrived
    | AmbulanceIncidentClosed
    | AmbulanceArrivedAtHospital
    | AmbulanceHandoverCompleted
    | AmbulanceCrewClear
)
AdtEventT = (
    AdtAdmitted
    | AdtTransferred
    | AdtDischarged
    | AdtUpdated
    | AdtAdmissionCancelled
    | AdtTransferCancelled
    | AdtDischargeCancelled
)
DischargeEventT = (
    DischargeReadyDateSet
    | DischargeReadyDateCleared
    | DischargePathwayAssigned
    | DischargeReferralMade
    | DischargePlanInPlace
)

Event = Annotated[
    EdEventT | AmbulanceEventT | AdtEventT | DischargeEventT | OpelDeclared, Field(discriminator="event_type")
]

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)
_validate_json = EVENT_ADAPTER.validator.validate_json
"""The adapter's core validator, called without ``TypeAdapter.validate_json``'s Python wrapper (same defaults, same
result): it runs once per event on every ingest and replay path."""

EVENT_MODELS: dict[str, type[Envelope]] = {
    model.model_fields["event_type"].annotation.__args__[0]: model
    for model in (
        *EdEventT.__args__,
        *AmbulanceEventT.__args__,
        *AdtEventT.__args__,
        *DischargeEventT.__args__,
        OpelDeclared,
    )
}
"""event_type -> model, in contract order."""

TOPIC_OF_FAMILY = {
    "ed": "scc.ed",
    "ambulance": "scc.ambulance",
    "adt": "scc.adt",
    "discharge": "scc.discharge",
    "opel": "scc.opel",
}
KEY_FIELD_OF_TOPIC = {
    "scc.ed": "attendance_id",
    "scc.ambulance": "incident_id",
    "scc.adt": "spell_id",
    "scc.discharge": "spell_id",
}


class EventRejected(ValueError):
    """An input that breaks the contract; ``reason`` names the offending field(s)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_error(error: ValidationError) -> str:
    """One line per problem, each starting with the field path, e.g. ``occurred_at: Input should have timezone info``."""
    parts = []
    for item in error.errors(include_url=False):
        loc = [str(p) for p in item["loc"]]
        if item["type"] == "union_tag_invalid":
            parts.append(f"event_type: unknown event type {item['ctx']['tag']!r}")
            continue
        if item["type"] == "union_tag_not_found":
            parts.append("event_type: Field required")
            continue
        # Drop the union tag pydantic prefixes (e.g. 'ed.arrived') so the path reads as the field itself.
        if loc and loc[0] in EVENT_MODELS:
            loc = loc[1:]
        parts.append(f"{'.'.join(loc) or 'event'}: {item['msg']}")
    return "; ".join(parts)


_SHARED_FIELDS_SETS: dict[type, list[set[str]]] = {}
"""The shared sets of each event type, in the order first seen (the commonest first, in practice)."""
MAX_SHARED_FIELDS_SETS = 32
"""Bound on the sets shared per event type (a year of one ICB has 1 or 2 per type; odd input past it keeps its own,
and a lookup compares at most this many sets)."""


def _share_fields_set(event: Event) -> Event:
    """The event with its ``__pydantic_fields_set__`` swapped for the one equal set every such event shares.

    pydantic gives each instance its own set of the fields the input named: 728 bytes for the usual 7-14 fields, more
    than half of what a parsed event holds, and a replay holds millions (a year of one ICB: peak memory 3.5 -> 2.1 GB).
    Sharing is safe because events are frozen: pydantic adds to the set only on assignment, and ``model_copy`` copies
    it first. It stays a ``set`` (pydantic's serializer refuses a frozenset). The shared sets are found by comparing
    with the type's few (cheaper than hashing a frozenset of the fields per event: 0.27 against 0.40 µs)."""
    fields_set = event.__pydantic_fields_set__
    shared_sets = _SHARED_FIELDS_SETS.get(type(event))
    if shared_sets is None:
        shared_sets = _SHARED_FIELDS_SETS[type(event)] = []
    for shared in shared_sets:
        if shared == fields_set:
            object.__setattr__(event, "__pydantic_fields_set__", shared)
            return event
    if len(shared_sets) < MAX_SHARED_FIELDS_SETS:
        shared_sets.append(fields_set)
    return event


def parse_event(raw: bytes | str | dict[str, Any] | None, *, now: dt.datetime | None = None) -> Event:
    """Validate one event from JSON bytes/str or a dict; raise :class:`EventRejected` naming the field.

    ``now`` is the receiver's clock for the future bound (default: the wall clock); nothing else is ever raised.
    """
    if raw is None:
        raise EventRejected("event: empty record (no value)")
    if isinstance(raw, dict):
        try:
            raw = orjson.dumps(raw)
        except TypeError as exc:  # a dict that is not serialisable
            raise EventRejected(f"event: not valid JSON ({exc})") from None
    elif not isinstance(raw, bytes | bytearray | str):
        raise EventRejected(f"event: not valid JSON (expected bytes, str or a dict, got {type(raw).__name__})")
    return parse_json(raw, (now or dt.datetime.now(dt.UTC)) + MAX_FUTURE)


def parse_json(raw: bytes | bytearray | str, latest: dt.datetime) -> Event:
    """:func:`parse_event` of JSON, with the future bound given as the latest ``occurred_at`` accepted (the
    receiver's clock plus :data:`MAX_FUTURE`): a file reader works it out once per file, not once per line."""
    size = len(raw.encode("utf-8", "surrogatepass")) if type(raw) is str else len(raw)
    if size > MAX_EVENT_BYTES:
        raise EventRejected(f"event: record of {size} bytes is over the {MAX_EVENT_BYTES} byte limit")
    try:
        event = _share_fields_set(_validate_json(raw))
    except ValidationError as exc:
        raise EventRejected(describe_error(exc)) from None
    except (ValueError, TypeError) as exc:  # not JSON at all
        raise EventRejected(f"event: not valid JSON ({exc})") from None
    if event.occurred_at > latest:
        raise EventRejected(
            f"occurred_at: {event.occurred_at.isoformat()} is in the future (more than {MAX_FUTURE.days} day after "
            f"the receiver's clock, {(latest - MAX_FUTURE).astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ})"
        )
    return event


_TOPIC_OF_TYPE: dict[str, str] = {}
"""``topic_of`` memoised by event type (a validated literal, so bounded): it runs several times per event."""


def topic_of_type(event_type: str) -> str:
    """The canonical topic of an event type, from its family (``ed.arrived`` -> ``scc.ed``)."""
    return TOPIC_OF_FAMILY[event_type.split(".", 1)[0]]


def topic_of(event: Envelope) -> str:
    """The canonical topic of an event (:func:`topic_of_type` of its type)."""
    event_type: str = event.event_type  # type: ignore[attr-defined]
    topic = _TOPIC_OF_TYPE.get(event_type)
    if topic is None:
        topic = _TOPIC_OF_TYPE[event_type] = topic_of_type(event_type)
    return topic


def key_of(event: Envelope) -> str:
    """The partition key of an event: its attendance, incident or spell id."""
    topic = topic_of(event)
    if topic == "scc.opel":
        return event.site_code or event.org_code
    return getattr(event, KEY_FIELD_OF_TOPIC[topic])


def dump_event(event: Envelope) -> bytes:
    """Canonical JSON bytes of an event (UTC timestamps with offset, no nulls).

    Written in one step by the model's own (Rust) serializer: the same bytes as
    ``orjson.dumps(event.model_dump(mode="json", exclude_none=True))`` for every valid event
    (tests/unit/test_replay_fast_path.py) at about half the cost. Anything it cannot serialise takes that original
    path, so failures stay the same.
    """
    try:
        return event.__pydantic_serializer__.to_json(event, exclude_none=True)
    except Exception:  # e.g. a model_construct()ed event holding a value JSON cannot carry
        return orjson.dumps(event.model_dump(mode="json", exclude_none=True))

"""Facts: what one attendance, incident or spell amounts to, derived from its events as of T.

A fact is the small, immutable summary the indicators are computed from. The entity trackers derive it from the
entity's (deduplicated, time-ordered) events and the aggregator counts it; when a late or corrected event changes an
entity, its new fact simply replaces the old one, so delivery order never changes a result. Facts travel between the
two stages of the stream (topic ``scc.facts``) as compact JSON arrays, many updates per record
(:func:`batch_to_wire`, :func:`batch_from_wire`; :func:`to_wire` / :func:`from_wire` for one update, the format of
earlier releases, which stage 2 still reads).

Facts are named tuples: immutable and hashable like the frozen dataclasses they were, and built ~3x faster (a replay
derives one per entity and day it touches; the engine's instructions per event fell 8%). Two facts of different
kinds are never compared: each kind has its own tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, NamedTuple

import orjson

FactKind = Literal["ed", "ambulance", "spell", "opel"]


class AttendanceFact(NamedTuple):
    """An ED attendance that has arrived and is not cancelled (docs/definitions.md, "Emergency department")."""

    attendance_id: str
    org_code: str
    site_code: str | None
    department_type: str
    arrival: dt.datetime
    clock_start: dt.datetime
    departure: dt.datetime | None


class IncidentFact(NamedTuple):
    """An ambulance incident: its response clock and, when conveyed, its hospital handover (docs/definitions.md)."""

    incident_id: str
    org_code: str
    clock_start: dt.datetime | None
    stop: dt.datetime | None
    category: int | None  # category in force at the stop; None while the clock runs
    hospital_site: str | None = None
    at_hospital: dt.datetime | None = None
    handover_at: dt.datetime | None = None

    @property
    def response_seconds(self) -> float | None:
        if self.stop is None or self.clock_start is None:
            return None
        return (self.stop - self.clock_start).total_seconds()

    @property
    def handover_seconds(self) -> float | None:
        if self.handover_at is None or self.at_hospital is None:
            return None
        return (self.handover_at - self.at_hospital).total_seconds()


class Referral(NamedTuple):
    """A referral to the integrated discharge function and when its plan was in place."""

    referral_id: str
    pathway: int
    made_at: dt.datetime
    plan_at: dt.datetime | None


class SpellFact(NamedTuple):
    """An inpatient spell that exists (admitted, not cancelled), open or discharged (docs/definitions.md, "Beds")."""

    spell_id: str
    org_code: str
    site_code: str | None
    admitted_at: dt.datetime
    discharged_at: dt.datetime | None
    bed_category: str
    escalation_bed: bool
    drd: dt.date | None
    pathway: int | None
    plan_since_drd: bool  # a plan is in place for a referral made since the current DRD was set
    drd_at_discharge: dt.date | None = None
    referrals: tuple[Referral, ...] = ()


class DeclaredLevelFact(NamedTuple):
    """The OPEL level last declared for a site, organisation or (with the ICB's code) the system."""

    scope_code: str
    org_code: str
    level: int
    declared_at: dt.datetime


Fact = AttendanceFact | IncidentFact | SpellFact | DeclaredLevelFact
FACT_TYPES: dict[FactKind, type] = {
    "ed": AttendanceFact,
    "ambulance": IncidentFact,
    "spell": SpellFact,
    "opel": DeclaredLevelFact,
}


def _ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _day(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _decode(kind: FactKind, v: list[Any]) -> Fact:
    if kind == "ed":
        return AttendanceFact(v[0], v[1], v[2], v[3], _ts(v[4]), _ts(v[5]), _ts(v[6]))  # type: ignore[arg-type]
    if kind == "opel":
        return DeclaredLevelFact(v[0], v[1], v[2], _ts(v[3]))  # type: ignore[arg-type]
    if kind == "ambulance":
        return IncidentFact(v[0], v[1], _ts(v[2]), _ts(v[3]), v[4], v[5], _ts(v[6]), _ts(v[7]))
    referrals = tuple(Referral(r[0], r[1], _ts(r[2]), _ts(r[3])) for r in v[11])  # type: ignore[arg-type]
    return SpellFact(
        v[0],
        v[1],
        v[2],
        _ts(v[3]),  # type: ignore[arg-type]
        _ts(v[4]),
        v[5],
        v[6],
        _day(v[7]),
        v[8],
        v[9],
        _day(v[10]),
        referrals,
    )


def _values(fact: Fact) -> tuple[Any, ...]:
    """The fact's field values in order, referrals as plain tuples (orjson writes a tuple, not a named tuple)."""
    if type(fact) is SpellFact:
        return (*fact[:-1], tuple(tuple(r) for r in fact.referrals))
    return tuple(fact)


def to_wire(kind: FactKind, entity_id: str, fact: Fact | None, clock: dt.datetime, evidence: int = 0) -> bytes:
    """Serialise a fact update (``fact`` None = the entity no longer counts) with the sender's event clock and the
    number of events the fact was derived from."""
    return orjson.dumps([kind, entity_id, None if fact is None else _values(fact), clock, evidence])


def from_wire(raw: bytes) -> tuple[FactKind, str, Fact | None, dt.datetime, int]:
    """Inverse of :func:`to_wire`."""
    kind, entity_id, values, clock, evidence = orjson.loads(raw)
    fact: Fact | None = None if values is None else _decode(kind, values)
    return kind, entity_id, fact, dt.datetime.fromisoformat(clock), evidence


BATCH_KIND = "batch"
"""First element of a batch record: ``["batch", [[kind, entity_id, values, evidence], ...], clock]``."""

FactEntry = tuple[FactKind, str, "Fact | None", int]
"""One fact update inside a batch: kind, entity id, fact (None = no longer counts), evidence."""


def batch_to_wire(updates: list[FactEntry], clock: dt.datetime) -> bytes:
    """Serialise many fact updates and the sender's event clock as one record (one send instead of one per fact).

    Each entry is what :func:`to_wire` carries minus the clock, which the batch carries once."""
    return orjson.dumps([BATCH_KIND, [[k, i, None if f is None else _values(f), e] for k, i, f, e in updates], clock])


def decode_entry(entry: list[Any]) -> FactEntry:
    """One entry of a batch record (``[kind, entity_id, values, evidence]``); raises ValueError, TypeError,
    IndexError or KeyError on anything else."""
    kind, entity_id, values, evidence = entry
    if kind not in FACT_TYPES or not isinstance(entity_id, str) or type(evidence) is not int:
        raise ValueError(f"not a fact update of a known kind: {str(kind)[:20]!r}")
    fact: Fact | None = None if values is None else _decode(kind, values)
    if fact is not None and type(fact) is not FACT_TYPES[kind]:
        raise ValueError(f"not a fact of kind {kind!r}")
    return kind, entity_id, fact, evidence


def batch_from_wire(raw: bytes) -> tuple[list[FactEntry], dt.datetime]:
    """Inverse of :func:`batch_to_wire` (every entry decoded; the first bad one raises)."""
    tag, entries, clock = orjson.loads(raw)
    if tag != BATCH_KIND or not isinstance(entries, list):
        raise ValueError("not a batch of fact updates")
    return [decode_entry(e) for e in entries], dt.datetime.fromisoformat(clock)

"""Stage 1 of the engine: one state per attendance, incident or spell.

Keeps each entity's events deduplicated by ``event_id`` and sorted by (occurred_at, event_id), and re-derives the
entity's fact whenever an event changes it. This is what makes late, duplicate and out-of-order delivery harmless:
the fact depends only on the set of events, never on their arrival order.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

from schemas import events as ev
from schemas.config import Icb
from schemas.events import EventRejected
from streams.derive import derive_attendance, derive_declared_level, derive_incident, derive_spell
from streams.facts import Fact, FactKind

KIND_OF_TOPIC: dict[str, FactKind] = {
    "scc.opel": "opel",
    "scc.ed": "ed",
    "scc.ambulance": "ambulance",
    "scc.adt": "spell",
    "scc.discharge": "spell",
}
DERIVE = {
    "ed": derive_attendance,
    "ambulance": derive_incident,
    "spell": derive_spell,
    "opel": derive_declared_level,
}


@dataclass(slots=True)
class _Entity:
    keys: list[tuple[dt.datetime, str]] = field(default_factory=list)
    events: list[ev.Envelope] = field(default_factory=list)
    fact: Fact | None = None


@dataclass(frozen=True, slots=True)
class FactUpdate:
    """The new fact of an entity (None: it no longer counts anywhere)."""

    kind: FactKind
    entity_id: str
    fact: Fact | None
    evidence: int = 0
    """How many distinct events the fact was derived from. Events only accumulate, so a fact from more evidence
    supersedes one from less: stage 2 keeps the larger, which makes the order fact updates arrive in irrelevant
    (a worker rebuilding its state re-sends older facts while live processing sends newer ones)."""


class EntityTracker:
    """Per-entity event logs for every kind; :meth:`ingest` returns the fact update an event causes, if any."""

    def __init__(self, icb: Icb) -> None:
        self._icb = icb
        self._entities: dict[FactKind, dict[str, _Entity]] = {"ed": {}, "ambulance": {}, "spell": {}, "opel": {}}
        self.clock: dt.datetime | None = None
        """Latest ``occurred_at`` seen: the live evaluation time."""

    def check_known(self, event: ev.Envelope) -> None:
        """Reject events for organisations or sites the ICB configuration does not know."""
        if isinstance(event, ev.OpelDeclared) and event.org_code == self._icb.code and event.site_code is None:
            return  # a level declared for the whole system
        if event.org_code not in self._icb.orgs:
            raise EventRejected(f"org_code: unknown organisation {event.org_code!r} for ICB {self._icb.code}")
        if event.site_code is not None and event.site_code not in self._icb.sites:
            raise EventRejected(f"site_code: unknown site {event.site_code!r} for ICB {self._icb.code}")

    def add(self, event: ev.Envelope) -> tuple[FactKind, str] | None:
        """Record an event; return its entity when the event was new (a duplicate returns None)."""
        self.check_known(event)
        kind = KIND_OF_TOPIC[ev.topic_of(event)]
        entity_id = ev.key_of(event)
        entity = self._entities[kind].get(entity_id)
        if entity is None:
            entity = self._entities[kind][entity_id] = _Entity()
        sort_key = (event.occurred_at, event.event_id)
        i = bisect.bisect_left(entity.keys, sort_key)
        if i < len(entity.keys) and entity.keys[i] == sort_key:
            return None
        if any(e.event_id == event.event_id for e in entity.events):
            return None  # same id redelivered with another time: first copy wins
        entity.keys.insert(i, sort_key)
        entity.events.insert(i, event)
        if self.clock is None or event.occurred_at > self.clock:
            self.clock = event.occurred_at
        return kind, entity_id

    def refresh(self, kind: FactKind, entity_id: str) -> FactUpdate | None:
        """Re-derive an entity's fact; return the update when it changed."""
        entity = self._entities[kind][entity_id]
        fact = DERIVE[kind](entity.events)
        if fact == entity.fact:
            return None
        entity.fact = fact
        return FactUpdate(kind, entity_id, fact, len(entity.events))

    def ingest(self, event: ev.Envelope) -> FactUpdate | None:
        """:meth:`add` then :meth:`refresh`: the fact update one event causes, if any."""
        touched = self.add(event)
        return None if touched is None else self.refresh(*touched)

    def ingest_many(self, batch: list[ev.Envelope]) -> list[FactUpdate]:
        """Add a batch, then derive each touched entity once (cheaper than per event under load)."""
        touched = dict.fromkeys(t for t in map(self.add, batch) if t is not None)
        return [u for u in (self.refresh(*t) for t in touched) if u is not None]

    def entity_count(self, kind: FactKind) -> int:
        return len(self._entities[kind])

    def current(self) -> list[FactUpdate]:
        """Every entity's current fact with its evidence (re-sent after a state rebuild)."""
        return [
            FactUpdate(kind, entity_id, entity.fact, len(entity.events))
            for kind, entities in self._entities.items()
            for entity_id, entity in entities.items()
            if entity.events
        ]

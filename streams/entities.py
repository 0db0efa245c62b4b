"""Stage 1 of the engine: one state per attendance, incident or spell.

Keeps each entity's events deduplicated by ``event_id`` and sorted by (occurred_at, event_id), and re-derives the
entity's fact whenever an event changes it. This is what makes late, duplicate and out-of-order delivery harmless:
the fact depends only on the set of events, never on their arrival order.

Two rules on top (docs/definitions.md, "Bad input" and "Orphans"):

- an ``ed.departed`` timed before the attendance's (earliest) arrival is excluded from the attendance — rejected
  when the arrival is already known, dropped from the held events when the arrival comes later — and reported
  through ``on_reject``; so the fact is the same in either delivery order;
- an entity whose opening event (:data:`streams.orphans.OPENERS`) has not come is held and, once its opener topic's
  event clock is ``orphan_after`` past its earliest event, returned once by :meth:`EntityTracker.orphans`.

Retention (docs/definitions.md, "Retention of closed entities"): with a ``retention``, :meth:`EntityTracker.sweep`
releases every *closed* entity (no longer live in stage 2, see :func:`streams.aggregator.is_live`, or a reported
orphan) whose latest event is more than ``retention`` behind its kind's event clock (its slowest topic; no release
before each of its topics has delivered something, an unread topic may be far behind, unless the live stage has
read that topic to its end: :attr:`EntityTracker.read_to_end`): its events go, its id stays in
a per-kind tombstone set until the stage-2 horizon passes its last event's day, and an event for a tombstoned
entity is rejected (:meth:`EntityTracker.admit`) rather than folded into an entity that has lost its history.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple

from schemas import events as ev
from schemas.config import Icb
from schemas.events import EventRejected
from streams.aggregator import horizon, is_live
from streams.clock import local_date
from streams.derive import derive_attendance, derive_declared_level, derive_incident, derive_spell
from streams.facts import FACT_TYPES, Fact, FactKind
from streams.orphans import OPENER_TOPIC, OPENERS, Orphan

KIND_OF_TOPIC: dict[str, FactKind] = {
    "scc.opel": "opel",
    "scc.ed": "ed",
    "scc.ambulance": "ambulance",
    "scc.adt": "spell",
    "scc.discharge": "spell",
}
KEY_FIELD: dict[FactKind, str] = {
    kind: ev.KEY_FIELD_OF_TOPIC[topic] for topic, kind in KIND_OF_TOPIC.items() if topic in ev.KEY_FIELD_OF_TOPIC
}
"""The event field holding each kind's entity id (what :func:`schemas.events.key_of` reads; OPEL is keyed by site)."""
DERIVE = {
    "ed": derive_attendance,
    "ambulance": derive_incident,
    "spell": derive_spell,
    "opel": derive_declared_level,
}
TOPICS_OF_KIND: dict[FactKind, tuple[str, ...]] = {
    kind: tuple(t for t, k in KIND_OF_TOPIC.items() if k == kind) for kind in FACT_TYPES
}
RELEASED_KINDS: tuple[FactKind, ...] = ("ed", "ambulance", "spell")
"""Kinds whose closed entities are released (OPEL is a handful of sites: kept whole)."""
SWEEP_EVERY = dt.timedelta(hours=1)
"""Event time between two sweeps of one tracker (a sweep inside the hour returns at once)."""


class _Route(NamedTuple):
    """What :meth:`EntityTracker.add` needs to know of an event type, looked up once per event (a replay adds
    millions: one lookup instead of a topic, kind and key lookup and three ``isinstance`` checks each)."""

    topic: str
    kind: FactKind
    key_field: str | None
    """The field holding the entity id (None: OPEL, keyed by its site, else its organisation)."""
    has_openers: bool
    """Whether the kind waits for an opening event (:data:`streams.orphans.OPENERS`)."""
    opens: bool
    """Whether this type opens its entity."""
    arrival: bool
    departure: bool


def _route(event_type: str) -> _Route:
    topic = ev.topic_of_type(event_type)
    kind = KIND_OF_TOPIC[topic]
    return _Route(
        topic=topic,
        kind=kind,
        key_field=KEY_FIELD.get(kind),
        has_openers=kind in OPENERS,
        opens=event_type in OPENERS.get(kind, ()),
        arrival=event_type == "ed.arrived",
        departure=event_type == "ed.departed",
    )


ROUTES: dict[str, _Route] = {event_type: _route(event_type) for event_type in ev.EVENT_MODELS}
"""Every event type's :class:`_Route`."""


EVENT_ORDER = attrgetter("occurred_at", "event_id")
"""The order of an entity's events (and of a replay's history): event time, then event id."""


@dataclass(slots=True)
class _Entity:
    """One entity's events and fact. Lean on purpose: a replay holds every entity of a year (an ICB's ~500,000)."""

    events: list[ev.Envelope] = field(default_factory=list)
    """Sorted by :data:`EVENT_ORDER`."""
    fact: Fact | None = None
    opened: bool = False
    orphan_reported: bool = False
    excluded: list[ev.EdDeparted] = field(default_factory=list)
    """Departures timed before the attendance's arrival: kept aside (not derived from), still duplicates."""
    ids: list[str] = field(default_factory=list)
    """Every event id in ``events`` and ``excluded`` (events only move between the two): the duplicate check. A
    list: an entity has a handful of events, which a list holds in 8 bytes each where a set took 216-728 bytes."""

    def insert(self, event: ev.Envelope) -> None:
        """Put an event in its place in :attr:`events` (usually the end: events mostly come in order, so the last
        event's time is compared first, without building the two sort keys)."""
        events = self.events
        if events:
            last, at = events[-1], event.occurred_at
            if last.occurred_at > at or (last.occurred_at == at and last.event_id > event.event_id):
                events.insert(bisect.bisect_left(events, EVENT_ORDER(event), key=EVENT_ORDER), event)
                return
        events.append(event)

    @property
    def evidence(self) -> int:
        """Distinct events seen (excluded ones too, so the count only grows)."""
        return len(self.events) + len(self.excluded)

    def arrival(self) -> dt.datetime | None:
        """The earliest ``ed.arrived`` (events are sorted: usually the first)."""
        events = self.events
        if events and type(events[0]) is ev.EdArrived:
            return events[0].occurred_at
        return next((e.occurred_at for e in events if type(e) is ev.EdArrived), None)

    def latest(self) -> dt.datetime:
        """The latest ``occurred_at`` held, excluded departures included (an entity always holds an event)."""
        last = self.events[-1].occurred_at if self.events else self.excluded[0].occurred_at
        for departure in self.excluded:  # almost always none
            last = max(last, departure.occurred_at)
        return last


RejectHandler = Callable[[ev.Envelope, str], None]
"""Called with an event the tracker set aside after accepting it for checking, and why."""


def departure_reason(departure: ev.Envelope, arrival: dt.datetime) -> str:
    return (
        f"occurred_at: ed.departed {departure.event_id!r} at {departure.occurred_at.isoformat()} is before the "
        f"attendance's arrival at {arrival.isoformat()}"
    )


def released_reason(kind: FactKind, entity_id: str, retention: dt.timedelta) -> str:
    """Why an event for a released entity is dead-lettered, and where its history is corrected instead."""
    hours = retention.total_seconds() / 3600
    return (
        f"occurred_at: {kind} {entity_id!r} was closed and released from the live worker's state (its event clock "
        f"passed {hours:g} h after its last event); history is corrected by `scc replay --from-store`"
    )


@dataclass(slots=True)
class SweepStats:
    """What the sweeps of one tracker did (the work is the entries examined: O(released), never O(held))."""

    sweeps: int = 0
    examined: int = 0
    """Queue entries looked at: at most one per (closed entity, batch that touched it)."""
    released: int = 0
    forgotten: int = 0
    """Tombstones dropped once the stage-2 horizon passed their last event's day."""


class FactUpdate(NamedTuple):
    """The new fact of an entity (None: it no longer counts anywhere). A named tuple: a replay makes one per entity
    and day it touches, and a frozen dataclass took ~0.6 µs to build against ~0.2."""

    kind: FactKind
    entity_id: str
    fact: Fact | None
    evidence: int = 0
    """How many distinct events the fact was derived from. Events only accumulate, so a fact from more evidence
    supersedes one from less: stage 2 keeps the larger, which makes the order fact updates arrive in irrelevant
    (a worker rebuilding its state re-sends older facts while live processing sends newer ones)."""


class EntityTracker:
    """Per-entity event logs for every kind; :meth:`ingest` returns the fact update an event causes, if any."""

    def __init__(self, icb: Icb, on_reject: RejectHandler | None = None, retention: dt.timedelta | None = None) -> None:
        self._icb = icb
        self._entities: dict[FactKind, dict[str, _Entity]] = {"ed": {}, "ambulance": {}, "spell": {}, "opel": {}}
        self.clock: dt.datetime | None = None
        """Latest ``occurred_at`` seen: the live evaluation time."""
        self.topic_clocks: dict[str, dt.datetime] = {}
        """Latest ``occurred_at`` seen per topic (orphans wait on their opener topic's clock)."""
        self.on_reject = on_reject
        self._pending: dict[tuple[FactKind, str], dt.datetime] = {}
        """Entities without their opening event (not yet reported): earliest held ``occurred_at``."""
        self.retention = retention
        """How long a closed entity is kept after its latest event (None: forever, e.g. replay and tests)."""
        self._closing: dict[FactKind, list[tuple[dt.datetime, str]]] = {kind: [] for kind in RELEASED_KINDS}
        """Per kind, a heap of (latest event, id) of entities that were closed when last touched; an entry is
        checked again when popped (the entity may have been touched or reopened since)."""
        self._tombstones: dict[FactKind, dict[str, dt.date]] = {kind: {} for kind in RELEASED_KINDS}
        """Released ids per kind -> the first day of their last event's local month (one shared date per month)."""
        self._tombstone_horizon: dt.date | None = None
        """The stage-2 horizon tombstones were last filtered by (they are filtered when it moves)."""
        self._next_sweep: dict[bool, dt.datetime] = {}
        """Per clock (live, rebuild), the event time before which another sweep does nothing."""
        self._rebuild_clocks: dict[str, dt.datetime] = {}
        """Latest ``occurred_at`` per topic among rebuilt events (``report=False``): how far a rebuild has read."""
        self.read_to_end: frozenset[str] = frozenset()
        """Input topics whose partition was last seen read to its end (the consumer's position at the high
        watermark), set by the live stage after every fetch (streams.intake). Such a topic has nothing unread that
        could be behind, so it does not hold a kind's release back: a partition that never gets a discharge event
        releases its spells by scc.adt alone. Empty otherwise: every topic holds back (unknown is not caught up)."""
        self.sweep_stats = SweepStats()

    def check_known(self, event: ev.Envelope) -> None:
        """Reject events for organisations or sites the ICB configuration does not know."""
        org, site, icb = event.org_code, event.site_code, self._icb
        if org in icb.orgs and (site is None or site in icb.sites):
            return  # the usual case, tested first
        if site is None and org == icb.code and event.event_type == "opel.declared":  # type: ignore[attr-defined]
            return  # a level declared for the whole system
        if org not in icb.orgs:
            raise EventRejected(f"org_code: unknown organisation {org!r} for ICB {icb.code}")
        raise EventRejected(f"site_code: unknown site {site!r} for ICB {icb.code}")

    @staticmethod
    def _key(event: ev.Envelope) -> tuple[FactKind, str]:
        """The entity an event belongs to (OPEL: its site, else its organisation)."""
        return ROUTES[event.event_type].kind, ev.key_of(event)  # type: ignore[attr-defined]

    def released(self, kind: FactKind, entity_id: str) -> bool:
        """Whether an entity was released and is still tombstoned (and not held again since)."""
        return entity_id in self._tombstones.get(kind, ())

    def _released_reason(self, kind: FactKind, entity_id: str) -> str:
        assert self.retention is not None  # only a tracker with a retention releases entities
        return released_reason(kind, entity_id, self.retention)

    def admit(self, event: ev.Envelope) -> None:
        """Reject an event for a released entity (see the module doc): folding it would reopen the entity without
        its history. Stage 1 calls this per record, next to :meth:`check_known`, so the rejection is a dead letter
        and the rest of the batch goes through; :meth:`add` refuses such events too."""
        kind, entity_id = self._key(event)
        if entity_id not in self._entities[kind] and self.released(kind, entity_id):
            raise EventRejected(self._released_reason(kind, entity_id))

    def add(self, event: ev.Envelope, *, report: bool = True, known: bool = False) -> tuple[FactKind, str] | None:
        """Record an event; return its entity when the event was new (a duplicate returns None).

        A departure before the attendance's arrival is set aside (see the module doc) and reported to ``on_reject``
        unless ``report`` is false (a rebuild, whose events were reported the first time). ``known``: the caller
        has already passed the event through :meth:`check_known`. An event for a released entity is not folded: it
        goes to ``on_reject`` (when ``report``) and None is returned. ``report=False`` also marks the events of a
        rebuild, whose progress :meth:`ingest_many` sweeps by.
        """
        if not known:
            self.check_known(event)
        topic, kind, key_field, has_openers, opens, arrival, departure = ROUTES[event.event_type]  # type: ignore[attr-defined]
        entity_id = getattr(event, key_field) if key_field else (event.site_code or event.org_code)  # key_of, inlined
        entity = self._entities[kind].get(entity_id)
        if entity is None:
            if self.released(kind, entity_id):
                if report and self.on_reject is not None:
                    self.on_reject(event, self._released_reason(kind, entity_id))
                return None
            entity = self._entities[kind][entity_id] = _Entity(opened=not has_openers)
        event_id = event.event_id
        if event_id in entity.ids:
            return None  # a duplicate, or the same id redelivered with another time: first copy wins
        entity.ids.append(event_id)
        at = event.occurred_at
        if self.clock is None or at > self.clock:
            self.clock = at
        topic_clock = self.topic_clocks.get(topic)
        if topic_clock is None or at > topic_clock:
            self.topic_clocks[topic] = at
        if not report and (topic not in self._rebuild_clocks or at > self._rebuild_clocks[topic]):
            self._rebuild_clocks[topic] = at
        if departure:
            first_arrival = entity.arrival()
            if first_arrival is not None and at < first_arrival:
                entity.excluded.append(event)  # type: ignore[arg-type]
                if report and self.on_reject is not None:
                    self.on_reject(event, departure_reason(event, first_arrival))
                return kind, entity_id  # evidence grew: an update with the same fact is harmless
        entity.insert(event)
        if has_openers:
            self._track_opening(kind, entity_id, entity, at, opens=opens)
        if arrival and (entity.excluded or len(entity.events) > 1):  # else the arrival is all there is
            self._exclude_departures_before_arrival(entity, report=report)
        return kind, entity_id

    def _track_opening(self, kind: FactKind, entity_id: str, entity: _Entity, at: dt.datetime, *, opens: bool) -> None:
        """Note an event at ``at`` of an entity that needs an opener: it opens it (``opens``), or it is held."""
        if opens:
            if not entity.opened:
                entity.opened = True
                self._pending.pop((kind, entity_id), None)
        elif not entity.opened and not entity.orphan_reported:  # an orphan is reported once
            key = (kind, entity_id)
            first = self._pending.get(key)
            if first is None or at < first:
                self._pending[key] = at

    def _exclude_departures_before_arrival(self, entity: _Entity, *, report: bool) -> None:
        """Set aside the held departures before the (possibly new) earliest arrival; take back any excluded
        departure an earlier arrival makes valid again."""
        arrival = entity.arrival()
        assert arrival is not None
        early = [i for i, e in enumerate(entity.events) if type(e) is ev.EdDeparted and e.occurred_at < arrival]
        valid_again = [e for e in entity.excluded if e.occurred_at >= arrival]
        for i in reversed(early):
            departure = entity.events.pop(i)
            entity.excluded.append(departure)  # type: ignore[arg-type]
            if report and self.on_reject is not None:
                self.on_reject(departure, departure_reason(departure, arrival) + " (the arrival was delivered later)")
        for departure in valid_again:
            entity.excluded.remove(departure)
            entity.insert(departure)

    def orphans(self, after: dt.timedelta) -> list[Orphan]:
        """Entities still without their opening event once their opener topic's event clock is ``after`` past
        their earliest held event; each is returned once (and counts normally if the opener still comes)."""
        found = []
        for key, first in list(self._pending.items()):
            kind, entity_id = key
            clock = self.topic_clocks.get(OPENER_TOPIC[kind])
            if clock is None or clock - first < after:
                continue
            del self._pending[key]
            entity = self._entities[kind][entity_id]
            entity.orphan_reported = True
            self._queue_if_closed(kind, entity_id)
            events = entity.events
            found.append(
                Orphan(
                    kind=kind,
                    entity_id=entity_id,
                    topic=ev.topic_of(events[0]),
                    first_at=first,
                    event_ids=tuple(e.event_id for e in events),
                    event_types=tuple(e.event_type for e in events),  # type: ignore[attr-defined]
                    clock=clock,
                )
            )
        return found

    def pending_orphans(self) -> int:
        """Entities held for their opening event and not yet reported."""
        return len(self._pending)

    def refresh(self, kind: FactKind, entity_id: str) -> FactUpdate | None:
        """Re-derive an entity's fact; return the update when it changed."""
        entity = self._entities[kind][entity_id]
        fact = DERIVE[kind](entity.events)
        if fact == entity.fact:
            return None
        entity.fact = fact
        return FactUpdate(kind, entity_id, fact, entity.evidence)

    def ingest(self, event: ev.Envelope) -> FactUpdate | None:
        """:meth:`add` then :meth:`refresh`: the fact update one event causes, if any."""
        touched = self.add(event)
        if touched is None:
            return None
        update = self.refresh(*touched)
        self._queue_if_closed(*touched)
        return update

    def ingest_many(self, batch: list[ev.Envelope], *, report: bool = True, known: bool = False) -> list[FactUpdate]:
        """Add a batch, then derive each touched entity once (cheaper than per event under load).

        A rebuild's batch (``report=False``) is then swept by how far the rebuild has read, not by the live clock
        (live events fold into the same tracker meanwhile): an entity is released only once the retained log has
        passed the retention after its latest event, as live processing would have."""
        touched = dict.fromkeys(t for t in (self.add(e, report=report, known=known) for e in batch) if t is not None)
        updates = []
        for kind, entity_id in touched:
            update = self.refresh(kind, entity_id)
            if update is not None:
                updates.append(update)
            self._queue_if_closed(kind, entity_id)
        if not report:
            self._sweep(self._rebuild_clocks, rebuild=True)
        return updates

    # --- retention ------------------------------------------------------------------------------------------------

    def _closed(self, kind: FactKind, entity: _Entity) -> bool:
        """Opened and no longer live in stage 2 (departed, cancelled, handed over or never at hospital, discharged),
        or a reported orphan. A held orphan not yet reported is still waiting for its opener: not closed."""
        if kind not in RELEASED_KINDS:
            return False
        if not entity.opened:
            return entity.orphan_reported
        return not is_live(kind, entity.fact)

    def _queue_if_closed(self, kind: FactKind, entity_id: str) -> None:
        if self.retention is None or kind not in RELEASED_KINDS:
            return
        entity = self._entities[kind][entity_id]
        if self._closed(kind, entity):
            heapq.heappush(self._closing[kind], (entity.latest(), entity_id))

    def sweep(self) -> int:
        """Release the closed entities idle for the retention by the live clock (see the module doc) and forget
        the tombstones the stage-2 horizon has passed; return how many were released. At most once per
        :data:`SWEEP_EVERY` of event clock; the work is the queue entries due, not the entities held."""
        return self._sweep(self.topic_clocks, rebuild=False)

    def _sweep(self, clocks: Mapping[str, dt.datetime], *, rebuild: bool) -> int:
        if self.retention is None or not clocks:
            return 0
        clock = max(clocks.values())
        due = self._next_sweep.get(rebuild)
        if due is not None and clock < due:
            return 0
        self._next_sweep[rebuild] = clock + SWEEP_EVERY
        stats = self.sweep_stats
        stats.sweeps += 1
        released = 0
        months: dict[dt.date, dt.date] = {}
        for kind, queue in self._closing.items():
            cutoff = self._release_clock(kind, clocks, rebuild=rebuild)
            if cutoff is None:
                continue
            cutoff -= self.retention
            while queue and queue[0][0] < cutoff:
                latest, entity_id = heapq.heappop(queue)
                stats.examined += 1
                entity = self._entities[kind].get(entity_id)
                if entity is None or entity.latest() != latest or not self._closed(kind, entity):
                    continue  # released already, touched since (queued again if still closed), or reopened
                del self._entities[kind][entity_id]
                month = local_date(latest).replace(day=1)
                self._tombstones[kind][entity_id] = months.setdefault(month, month)
                released += 1
        passed = horizon(clock)
        if passed != self._tombstone_horizon:  # once a month: keep the tombstones the horizon has not passed
            self._tombstone_horizon = passed
            for kind, tombstones in self._tombstones.items():
                kept = self._tombstones[kind] = {i: month for i, month in tombstones.items() if month >= passed}
                stats.forgotten += len(tombstones) - len(kept)
        stats.released += released
        return released

    def _release_clock(self, kind: FactKind, clocks: Mapping[str, dt.datetime], *, rebuild: bool) -> dt.datetime | None:
        """The event clock a kind's closed entities are released by (None: release nothing yet).

        The kind's slowest topic that may still hold unread events: a spell waits for both scc.adt and scc.discharge
        to move on, and for a topic that has delivered nothing yet on this partition (it may be far behind, e.g.
        while catching up). A topic :attr:`read_to_end` (live sweeps only) holds nothing unread, so it does not
        hold the others back; when every topic of the kind is read to its end, the kind's latest event is the clock.
        """
        topics = TOPICS_OF_KIND[kind]
        unread = [topic for topic in topics if rebuild or topic not in self.read_to_end]
        if any(topic not in clocks for topic in unread):
            return None
        if unread:
            return min(clocks[topic] for topic in unread)
        return max((clocks[topic] for topic in topics if topic in clocks), default=None)

    def entity_count(self, kind: FactKind) -> int:
        return len(self._entities[kind])

    def tombstone_count(self, kind: FactKind) -> int:
        """Released ids still remembered (their late events are rejected)."""
        return len(self._tombstones.get(kind, ()))

    def current(self) -> list[FactUpdate]:
        """Every entity's current fact with its evidence (re-sent after a state rebuild)."""
        return [
            FactUpdate(kind, entity_id, entity.fact, entity.evidence)
            for kind, entities in self._entities.items()
            for entity_id, entity in entities.items()
            if entity.events
        ]

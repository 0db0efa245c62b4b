"""Orphans: entities whose opening event never came, reported rather than silently held (docs/definitions.md).

Events delivered before the event that opens their entity (a departure before its arrival, a discharge event before
its admission) are legitimate: the tracker holds them and they count once the opener comes, whatever the delivery
order. An entity still without its opener once the event clock of the opener's topic (on the same partition) is
``orphan_after_minutes`` past the entity's earliest event is an **orphan**: the worker sends one record to
``scc.deadletter`` with a reason starting ``orphan:`` and counts it in ``scc_orphans_total{kind}`` (and, as every
dead letter, in ``scc_dead_letters_total``). An orphan report is a warning, not a verdict: if the opener arrives
later still, the entity counts from then on, exactly as if it had come in order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import weakref
from dataclasses import dataclass

import orjson
from prometheus_client import CollectorRegistry, Counter

from streams.facts import FactKind

OPENERS: dict[FactKind, frozenset[str]] = {
    "ed": frozenset({"ed.arrived"}),
    "ambulance": frozenset({"ambulance.call_connected", "ambulance.clock_started", "ambulance.arrived_at_hospital"}),
    "spell": frozenset({"adt.admitted"}),
}
"""Event types that open an entity of each kind (an OPEL declaration needs no opener)."""
OPENER_TOPIC: dict[FactKind, str] = {"ed": "scc.ed", "ambulance": "scc.ambulance", "spell": "scc.adt"}
"""The topic carrying each kind's openers: its event clock measures how long an orphan has waited."""
ORPHAN_PREFIX = "orphan: "


@dataclass(frozen=True, slots=True)
class Orphan:
    """An entity with events but, after the grace period, still no opening event."""

    kind: FactKind
    entity_id: str
    topic: str
    """Topic of the entity's earliest held event (where the dead letter says it came from)."""
    first_at: dt.datetime
    event_ids: tuple[str, ...]
    event_types: tuple[str, ...]
    clock: dt.datetime
    """The opener topic's event clock when the orphan was declared."""

    def summary(self) -> bytes:
        """The dead letter's "raw" bytes: what is held (there is no single input record to keep)."""
        return orjson.dumps(
            {
                "kind": self.kind,
                "entity_id": self.entity_id,
                "first_at": self.first_at,
                "event_ids": self.event_ids,
                "event_types": self.event_types,
            }
        )

    def key(self) -> int:
        """The dead letter's offset (partition -1): stable, so a report repeated after a rebuild collapses."""
        return stable_key(f"orphan:{self.kind}:{self.entity_id}")

    def reason(self) -> str:
        openers = " or ".join(sorted(OPENERS[self.kind]))
        waited = int((self.clock - self.first_at).total_seconds() // 60)
        return (
            f"{ORPHAN_PREFIX}{self.kind} {self.entity_id!r} has {len(self.event_ids)} event(s) "
            f"({', '.join(sorted(set(self.event_types)))}) since {self.first_at.isoformat()} but no {openers} "
            f"after {waited} min of event time"
        )


def stable_key(text: str) -> int:
    """A non-negative 63-bit key naming ``text``: the offset of a dead letter that has no Kafka record of its own
    (the store deduplicates dead letters on source topic, partition and offset; see connectors/hl7/deadletter.py)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


_counters: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def orphan_counter(registry: CollectorRegistry) -> Counter:
    """``scc_orphans_total{kind}`` in ``registry`` (registered once per registry)."""
    counter = _counters.get(registry)
    if counter is None:
        counter = _counters[registry] = Counter(
            "scc_orphans", "Entities reported as orphans (no opening event in time), per kind", ["kind"],
            registry=registry,
        )  # fmt: skip
    return counter

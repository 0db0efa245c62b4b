"""Stage 2 of the engine: the current fact of every entity, indexed by the local dates the windows need.

Replacing an entity's fact re-indexes it, so a late correction moves it between days or out of every window.
:meth:`Aggregator.snapshot` evaluates every indicator as of T by reading only the buckets T's windows touch.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from schemas.config import PlatformConfig
from schemas.indicators import IndicatorSnapshot
from streams.clock import local_date
from streams.facts import AttendanceFact, Fact, FactKind, IncidentFact, SpellFact
from streams.indicators import ambulance, beds, discharge, ed, opel
from streams.indicators.rows import Row
from streams.indicators.scopes import Scopes
from streams.status import judge


class _DateIndex:
    """Items bucketed by one local date each (an item with no date is not in the index)."""

    def __init__(self) -> None:
        self.buckets: dict[dt.date, dict[str, Any]] = defaultdict(dict)

    def put(self, entity_id: str, old_day: dt.date | None, new_day: dt.date | None, fact: Any) -> None:
        if old_day is not None:
            bucket = self.buckets.get(old_day)
            if bucket is not None:
                bucket.pop(entity_id, None)
                if not bucket:
                    del self.buckets[old_day]
        if new_day is not None and fact is not None:
            self.buckets[new_day][entity_id] = fact

    def between(self, first: dt.date, last: dt.date) -> list[Any]:
        return [f for day, bucket in self.buckets.items() if first <= day <= last for f in bucket.values()]


def _day(ts: dt.datetime | None) -> dt.date | None:
    return None if ts is None else local_date(ts)


class Aggregator:
    """Holds facts, answers "every indicator as of T"."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.scopes = Scopes(config.icb)
        self.facts: dict[FactKind, dict[str, Fact]] = {"ed": {}, "ambulance": {}, "spell": {}, "opel": {}}
        self.ed_departed = _DateIndex()
        self.ed_arrived = _DateIndex()
        self.ed_in_department: dict[str, AttendanceFact] = {}
        self.amb_stopped = _DateIndex()
        self.amb_handed_over = _DateIndex()
        self.amb_waiting_handover: dict[str, IncidentFact] = {}
        self.open_spells: dict[str, SpellFact] = {}
        self.spells_discharged = _DateIndex()
        self.referrals_made = _DateIndex()
        self.evidence: dict[tuple[FactKind, str], int] = {}
        self.clock: dt.datetime | None = None
        self.version = 0
        """Bumped on every change: lets the stream emit snapshots on change."""

    def observe(self, clock: dt.datetime) -> None:
        """Advance the event clock (the latest occurred_at any stage-1 tracker has seen)."""
        if self.clock is None or clock > self.clock:
            self.clock = clock
            self.version += 1

    def apply(self, kind: FactKind, entity_id: str, fact: Fact | None, evidence: int | None = None) -> None:
        """Replace an entity's fact (None removes it); idempotent.

        With ``evidence`` (the number of events behind the fact), a fact from less evidence than the one held is
        ignored, so updates may arrive in any order (see :class:`streams.entities.FactUpdate`).
        """
        if evidence is not None:
            held = self.evidence.get((kind, entity_id), -1)
            if evidence < held:
                return
            self.evidence[(kind, entity_id)] = evidence
        facts = self.facts[kind]
        old = facts.get(entity_id)
        if old == fact:
            return
        self.version += 1
        if fact is None:
            facts.pop(entity_id, None)
        else:
            facts[entity_id] = fact
        if kind == "ed":
            self._apply_ed(entity_id, old, fact)  # type: ignore[arg-type]
        elif kind == "opel":
            pass  # read straight from self.facts["opel"]
        elif kind == "ambulance":
            self._apply_ambulance(entity_id, old, fact)  # type: ignore[arg-type]
        else:
            self._apply_spell(entity_id, old, fact)  # type: ignore[arg-type]

    def _apply_ed(self, entity_id: str, old: AttendanceFact | None, new: AttendanceFact | None) -> None:
        self.ed_departed.put(entity_id, old and _day(old.departure), new and _day(new.departure), new)
        self.ed_arrived.put(entity_id, old and _day(old.arrival), new and _day(new.arrival), new)
        if new is not None and new.departure is None:
            self.ed_in_department[entity_id] = new
        else:
            self.ed_in_department.pop(entity_id, None)

    def _apply_ambulance(self, entity_id: str, old: IncidentFact | None, new: IncidentFact | None) -> None:
        self.amb_stopped.put(entity_id, old and _day(old.stop), new and _day(new.stop), new)
        self.amb_handed_over.put(entity_id, old and _day(old.handover_at), new and _day(new.handover_at), new)
        if new is not None and new.at_hospital is not None and new.handover_at is None:
            self.amb_waiting_handover[entity_id] = new
        else:
            self.amb_waiting_handover.pop(entity_id, None)

    def _apply_spell(self, entity_id: str, old: SpellFact | None, new: SpellFact | None) -> None:
        if new is not None and new.discharged_at is None:
            self.open_spells[entity_id] = new
        else:
            self.open_spells.pop(entity_id, None)
        self.spells_discharged.put(entity_id, old and _day(old.discharged_at), new and _day(new.discharged_at), new)
        for ref in old.referrals if old else ():
            self.referrals_made.put(f"{entity_id}/{ref.referral_id}", _day(ref.made_at), None, None)
        for ref in new.referrals if new else ():
            self.referrals_made.put(f"{entity_id}/{ref.referral_id}", None, _day(ref.made_at), (new, ref))

    def rows(self, at: dt.datetime) -> list[Row]:
        """Every indicator value as of ``at`` (no targets yet)."""
        rows = [
            *ed.compute(self, at, self.scopes),
            *ambulance.compute(self, at, self.scopes),
            *beds.compute(self, at, self.scopes),
            *discharge.compute(self, at, self.scopes),
        ]
        rows.extend(opel.compute(rows, self.config.opel))
        rows.extend(opel.declared(self.facts["opel"].values(), at, self.config.icb))  # type: ignore[arg-type]
        return rows

    def snapshot(
        self, at: dt.datetime | None = None, computed_at: dt.datetime | None = None
    ) -> list[IndicatorSnapshot]:
        """Every indicator as of ``at`` (default: the event clock) with its target and status."""
        at = at or self.clock
        if at is None:
            return []
        computed_at = computed_at or dt.datetime.now(dt.UTC)
        today = local_date(at)
        out = []
        for row in self.rows(at):
            target = self.config.target_for(row.indicator, today)
            out.append(
                IndicatorSnapshot(
                    ts=at,
                    indicator=row.indicator,
                    window=row.window,
                    scope_type=row.scope_type,
                    scope_code=row.scope_code,
                    value=row.value,
                    numerator=row.numerator,
                    denominator=row.denominator,
                    target=None if target is None else target.value,
                    status=judge(row.value, target),
                    computed_at=computed_at,
                )
            )
        return out

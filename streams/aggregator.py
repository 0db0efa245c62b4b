"""Stage 2 of the engine: the current fact of every entity, indexed by the local dates the windows need.

Replacing an entity's fact re-indexes it, so a late correction moves it between days or out of every window.
:meth:`Aggregator.snapshot` evaluates every indicator as of T from per-day summaries of the buckets T's windows
touch (:class:`streams.date_index.DateIndex`: a day's summary is reused until a fact of that day changes).

State stays bounded (docs/definitions.md, "Retention of closed entities"): no window as of the event clock or later
reads a local date before :func:`horizon` (the first day of the previous calendar month: the ``month`` window's
start), so when the horizon moves :meth:`Aggregator.evict` drops every date bucket before it and every fact that is
not live (:func:`is_live`) and has no date on or after it. Snapshots at any time >= the clock are unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Sequence

from schemas.config import PlatformConfig
from schemas.indicators import IndicatorSnapshot, SnapshotRow
from streams.clock import local_date, local_midnight, month_bounds
from streams.date_index import DateIndex
from streams.facts import AttendanceFact, Fact, FactKind, IncidentFact, SpellFact
from streams.indicators import ambulance, beds, discharge, ed, opel
from streams.indicators.rows import Row, RowMemo
from streams.indicators.scopes import Scopes
from streams.status import TargetsInForce, judge


def _day(ts: dt.datetime | None) -> dt.date | None:
    return None if ts is None else local_date(ts)


def horizon(clock: dt.datetime) -> dt.date:
    """The earliest local date a window as of ``clock`` or later reads: the first day of the previous calendar month
    (``month``, the oldest window; ``last_60m`` reaches back at most to yesterday)."""
    first_of_month = local_date(clock).replace(day=1)
    return (first_of_month - dt.timedelta(days=1)).replace(day=1)


def is_live(kind: FactKind, fact: Fact | None) -> bool:
    """Whether a fact is in a live set whatever its age: an attendance in the department, an incident waiting at
    hospital for its handover, an open spell; OPEL declarations are always kept. The stage-1 tracker releases an
    entity only when this is false (streams.entities)."""
    if fact is None:
        return False
    if kind == "ed":
        return fact.departure is None  # type: ignore[union-attr]
    if kind == "ambulance":
        return fact.at_hospital is not None and fact.handover_at is None  # type: ignore[union-attr]
    if kind == "spell":
        return fact.discharged_at is None  # type: ignore[union-attr]
    return True


def _all_before(fact: Fact, before: dt.datetime) -> bool:
    """Whether every instant of a fact (the dates it is indexed by among them) is before ``before``. Written out per
    type: a generator over a tuple of the instants cost ~1 µs per fact, and the monthly eviction reads every fact."""
    if isinstance(fact, AttendanceFact):
        return (
            fact.arrival < before and fact.clock_start < before and (fact.departure is None or fact.departure < before)
        )
    if isinstance(fact, IncidentFact):
        return (
            (fact.clock_start is None or fact.clock_start < before)
            and (fact.stop is None or fact.stop < before)
            and (fact.at_hospital is None or fact.at_hospital < before)
            and (fact.handover_at is None or fact.handover_at < before)
        )
    if isinstance(fact, SpellFact):
        return (
            fact.admitted_at < before
            and (fact.discharged_at is None or fact.discharged_at < before)
            and all(r.made_at < before and (r.plan_at is None or r.plan_at < before) for r in fact.referrals)
        )
    return fact.declared_at < before


def evictable(kind: FactKind, fact: Fact, before: dt.datetime) -> bool:
    """A fact no window from the horizon on can read: not live and every instant of it before ``before``, the UTC
    instant the horizon's local day starts (an instant before it has an earlier local date: one comparison per
    instant instead of a time zone conversion)."""
    return not is_live(kind, fact) and _all_before(fact, before)


class Aggregator:
    """Holds facts, answers "every indicator as of T"."""

    def __init__(self, config: PlatformConfig, *, evict: bool = True) -> None:
        self.config = config
        self.evicts = evict
        """Drop what no window can read any more when the horizon moves (off: keep everything, for comparison)."""
        self.scopes = Scopes(config.icb)
        self.facts: dict[FactKind, dict[str, Fact]] = {"ed": {}, "ambulance": {}, "spell": {}, "opel": {}}
        self.ed_departed = DateIndex()
        self.ed_arrived = DateIndex(reads=ed.ARRIVAL_READS)
        self.ed_in_department: dict[str, AttendanceFact] = {}
        self.amb_stopped = DateIndex(reads=ambulance.RESPONSE_READS)
        self.amb_handed_over = DateIndex(reads=ambulance.HANDOVER_READS)
        self.amb_waiting_handover: dict[str, IncidentFact] = {}
        self.open_spells: dict[str, SpellFact] = {}
        self.open_pathway_2: dict[str, SpellFact] = {}
        """The open spells with a pathway-2 referral (kept with :attr:`open_spells`): the few that
        ``p2_referrals_over_48h_now`` reads at every snapshot, where the open spells are thousands."""
        self.occupied_beds = beds.OccupiedBeds()
        """The open spells as the bed indicators count them (kept with :attr:`open_spells`)."""
        self.spells_discharged = DateIndex()
        self.referrals_made = DateIndex()
        """The pathway-2 referrals (a referral keeps its pathway), by local date made: ``p2_plan_48h_pct`` counts
        them, and no indicator counts the others."""
        self.evidence: dict[FactKind, dict[str, int]] = {kind: {} for kind in self.facts}
        """How many events are behind each entity's fact, by kind (no (kind, id) tuple per entity: see :meth:`apply`)."""
        self.row_memo = RowMemo()
        """Each window's rows, reused while its summaries are unchanged (:class:`RowMemo`)."""
        self.targets = TargetsInForce(config)
        """The targets in force on the latest day snapshotted."""
        self.clock: dt.datetime | None = None
        self.version = 0
        """Bumped on every change: lets the stream emit snapshots on change."""
        self.horizon: dt.date | None = None
        """The horizon of the last :meth:`evict`."""
        self.evictions = 0
        """How many times :meth:`evict` ran (once per local month of event clock when driven by :meth:`observe`)."""
        self._horizon_moves_at: dt.datetime | None = None
        """Start of the local month after the last eviction's clock: the horizon moves then, not before."""
        self._factless: dict[FactKind, set[str]] = {kind: set() for kind in self.facts}
        """Evidence entries without a fact (cancelled entities) at the last eviction and not cancelled again since:
        their evidence is dropped at the next one, so a cancellation is remembered for at least a month."""

    def observe(self, clock: dt.datetime) -> None:
        """Advance the event clock (the latest occurred_at any stage-1 tracker has seen); evict when the horizon
        moves (at most once per local month: a datetime comparison otherwise)."""
        if self.clock is None or clock > self.clock:
            self.clock = clock
            self.version += 1
            if self.evicts and (self._horizon_moves_at is None or clock >= self._horizon_moves_at):
                self.evict()

    def evict(self) -> int:
        """Drop every date bucket before :func:`horizon` of the clock and every fact it makes :func:`evictable`, with
        its evidence; return how many facts were dropped. Live facts are never dropped.

        A fact re-sent later for a dropped entity (a stage-1 rebuild re-sends every fact it holds) is applied again
        (its evidence is gone) into buckets before the horizon, which no window reads; the next eviction drops it
        again. Costs one pass over the facts, once per local month of event time.
        """
        if self.clock is None:
            return 0
        self.evictions += 1
        before = self.horizon = horizon(self.clock)
        starts = local_midnight(before)
        today = local_date(self.clock)
        self._horizon_moves_at = month_bounds(today.year, today.month)[1]
        dropped = 0
        for kind, facts in list(self.facts.items()):  # new dicts: a dict's table never shrinks on deletion
            kept = self.facts[kind] = {e: fact for e, fact in facts.items() if not evictable(kind, fact, starts)}
            gone = facts.keys() - kept.keys()
            dropped += len(gone)
            factless = self._factless[kind]
            evidence = self.evidence[kind] = {
                e: n for e, n in self.evidence[kind].items() if e not in gone and (e in kept or e not in factless)
            }
            self._factless[kind] = {e for e in evidence if e not in kept}
        for index in (
            self.ed_departed,
            self.ed_arrived,
            self.amb_stopped,
            self.amb_handed_over,
            self.spells_discharged,
            self.referrals_made,
        ):
            index.drop_before(before)
        return dropped

    def apply(self, kind: FactKind, entity_id: str, fact: Fact | None, evidence: int | None = None) -> None:
        """Replace an entity's fact (None removes it); idempotent.

        With ``evidence`` (the number of events behind the fact), a fact from less evidence than the one held is
        ignored, so updates may arrive in any order (see :class:`streams.entities.FactUpdate`).
        """
        if evidence is not None:
            evidence_of = self.evidence[kind]
            if evidence < evidence_of.get(entity_id, -1):
                return
            evidence_of[entity_id] = evidence
            if fact is None:
                self._factless[kind].discard(entity_id)  # cancelled now: remember it a full month again
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
        if is_live("ed", new):
            self.ed_in_department[entity_id] = new  # type: ignore[assignment]
        else:
            self.ed_in_department.pop(entity_id, None)

    def _apply_ambulance(self, entity_id: str, old: IncidentFact | None, new: IncidentFact | None) -> None:
        self.amb_stopped.put(entity_id, old and _day(old.stop), new and _day(new.stop), new)
        self.amb_handed_over.put(entity_id, old and _day(old.handover_at), new and _day(new.handover_at), new)
        if is_live("ambulance", new):
            self.amb_waiting_handover[entity_id] = new  # type: ignore[assignment]
        else:
            self.amb_waiting_handover.pop(entity_id, None)

    def _apply_spell(self, entity_id: str, old: SpellFact | None, new: SpellFact | None) -> None:
        was_open = self.open_spells.get(entity_id)
        if is_live("spell", new):
            self.open_spells[entity_id] = new  # type: ignore[assignment]
            self.occupied_beds.replace(was_open, new)
            if any(r.pathway == 2 for r in new.referrals):  # type: ignore[union-attr]
                self.open_pathway_2[entity_id] = new  # type: ignore[assignment]
            else:
                self.open_pathway_2.pop(entity_id, None)
        else:
            self.open_spells.pop(entity_id, None)
            self.open_pathway_2.pop(entity_id, None)
            self.occupied_beds.replace(was_open, None)
        self.spells_discharged.put(entity_id, old and _day(old.discharged_at), new and _day(new.discharged_at), new)
        for ref in old.referrals if old else ():
            if ref.pathway == 2:
                self.referrals_made.put(f"{entity_id}/{ref.referral_id}", _day(ref.made_at), None, None)
        for ref in new.referrals if new else ():
            if ref.pathway == 2:
                self.referrals_made.put(f"{entity_id}/{ref.referral_id}", None, _day(ref.made_at), (new, ref))

    def rows(self, at: dt.datetime) -> list[Row]:
        """Every indicator value as of ``at`` (no targets yet)."""
        rows = self.domain_rows(at)
        rows.extend(opel_rows(rows, self.declared_rows(at), self.config))
        return rows

    def domain_rows(self, at: dt.datetime, kinds: Collection[FactKind] | None = None) -> list[Row]:
        """The rows of every domain (or of those whose facts are of ``kinds``), in :data:`DOMAINS` order: all but
        OPEL's."""
        rows: list[Row] = []
        for kind, compute in DOMAINS:
            if kinds is None or kind in kinds:
                rows.extend(compute(self, at, self.scopes))
        return rows

    def declared_rows(self, at: dt.datetime) -> list[Row]:
        """``opel_declared_level`` as of ``at``, from the declarations held."""
        return list(opel.declared(self.facts["opel"].values(), at, self.config.icb))  # type: ignore[arg-type]

    def snapshot(
        self, at: dt.datetime | None = None, computed_at: dt.datetime | None = None
    ) -> list[IndicatorSnapshot]:
        """Every indicator as of ``at`` (default: the event clock) with its target and status, validated."""
        return [row.validated() for row in self.snapshot_rows(at, computed_at)]

    def snapshot_rows(self, at: dt.datetime | None = None, computed_at: dt.datetime | None = None) -> list[SnapshotRow]:
        """What :meth:`snapshot` validates: the rows alone, for a replay's millions of them."""
        at = at or self.clock
        if at is None:
            return []
        return finished(self.rows(at), at, self.targets, computed_at or dt.datetime.now(dt.UTC))


ComputeRows = Callable[["Aggregator", dt.datetime, Scopes], Iterable[Row]]
DOMAINS: tuple[tuple[FactKind, ComputeRows], ...] = (
    ("ed", ed.compute),
    ("ambulance", ambulance.compute),
    ("spell", beds.compute),
    ("spell", discharge.compute),
)
"""Each indicator domain's rows and the kind of facts they read, in the order a snapshot lists them; no domain reads
another's facts, so each can be evaluated apart (:mod:`scc.parallel_history`). OPEL's rows come last, from these
rows and the declarations (:func:`opel_rows`)."""


def opel_rows(domain_rows: Sequence[Row | SnapshotRow], declared: list[Row], config: PlatformConfig) -> list[Row]:
    """The rows a snapshot lists after the domains' (:meth:`Aggregator.domain_rows`, finished or not): the
    calculated OPEL level from them, then the declared levels."""
    return [*opel.compute(domain_rows, config.opel), *declared]  # type: ignore[arg-type]


def finished(
    rows: Iterable[Row], at: dt.datetime, targets: TargetsInForce, computed_at: dt.datetime
) -> list[SnapshotRow]:
    """Rows as of ``at`` with their targets and status, as stored (unvalidated: a replay makes millions)."""
    in_force = targets.on(local_date(at))
    ts = at.astimezone(dt.UTC)
    out: list[SnapshotRow] = []
    append, make = out.append, tuple.__new__
    for indicator, window, scope_type, scope, value, num, den in rows:
        target_value, target = in_force[indicator]
        # Row's fields are SnapshotRow's from the indicator to the denominator (the indicator functions yield only
        # the Window names and scope types the record allows); made as a tuple of that class, as ``SnapshotRow(...)``
        # would after binding eleven arguments in Python, and spelt out (a starred row builds a list first).
        status = "none" if target is None else judge(value, target)
        append(
            make(
                SnapshotRow,
                (ts, indicator, window, scope_type, scope, value, num, den, target_value, status, computed_at),
            )
        )
    return out

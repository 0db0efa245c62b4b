"""Fold one entity's events into its fact (docs/definitions.md).

Each function takes the entity's events, already deduplicated and sorted by (occurred_at, event_id), and returns
the fact, or None when the entity does not count (not opened yet, cancelled, no response clock). Pure functions:
the same events always give the same fact, whatever order they were delivered in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from schemas import events as ev
from streams.facts import AttendanceFact, DeclaredLevelFact, IncidentFact, Referral, SpellFact

AMBULANCE_HANDOVER_GRACE = dt.timedelta(minutes=15)


def derive_attendance(events: Sequence[ev.Envelope]) -> AttendanceFact | None:
    """ED attendance: earliest arrival, earliest handover (not before arrival), earliest departure."""
    arrived: ev.EdArrived | None = None
    handover: dt.datetime | None = None
    departure: dt.datetime | None = None
    for e in events:
        if isinstance(e, ev.EdCancelled):
            return None
        if isinstance(e, ev.EdArrived):
            arrived = arrived or e
        elif isinstance(e, ev.EdDeparted):
            departure = departure or e.occurred_at
        elif isinstance(e, ev.EdHandover) and handover is None:
            handover = e.occurred_at
    if arrived is None:
        return None
    clock_start = arrived.occurred_at
    if arrived.arrival_mode == "ambulance":
        clock_start += AMBULANCE_HANDOVER_GRACE
        if handover is not None and arrived.occurred_at <= handover < clock_start:
            clock_start = handover
    return AttendanceFact(
        attendance_id=arrived.attendance_id,
        org_code=arrived.org_code,
        site_code=arrived.site_code,
        department_type=arrived.department_type,
        arrival=arrived.occurred_at,
        clock_start=clock_start,
        departure=departure,
    )


def derive_incident(events: Sequence[ev.Envelope]) -> IncidentFact | None:
    """Ambulance incident: response clock from the first clock start to the stop the category rules give, and the
    hospital handover (earliest arrival at hospital, earliest handover at or after it)."""
    start = next((e for e in events if isinstance(e, ev.AmbulanceClockStarted)), None)
    at_hospital = next((e for e in events if isinstance(e, ev.AmbulanceArrivedAtHospital)), None)
    if start is None and at_hospital is None:
        return None
    stop = category = None
    if start is not None:
        arrivals = [
            e for e in events if isinstance(e, ev.AmbulanceResourceArrived) and e.occurred_at >= start.occurred_at
        ]
        stop = next((e.occurred_at for e in arrivals if e.transport_capable), None)
        if stop is None and arrivals:
            closures = [e for e in events if isinstance(e, ev.AmbulanceIncidentClosed)]
            if closures and not closures[-1].conveyed:
                stop = arrivals[0].occurred_at
        if stop is not None:
            for e in events:
                if isinstance(e, ev.AmbulanceClockStarted | ev.AmbulanceRecategorised) and e.occurred_at <= stop:
                    category = e.category
    handover_at = None
    if at_hospital is not None:
        handover_at = next(
            (
                e.occurred_at
                for e in events
                if isinstance(e, ev.AmbulanceHandoverCompleted) and e.occurred_at >= at_hospital.occurred_at
            ),
            None,
        )
    first = start or at_hospital
    return IncidentFact(
        incident_id=first.incident_id,  # type: ignore[union-attr]
        org_code=first.org_code,  # type: ignore[union-attr]
        clock_start=None if start is None else start.occurred_at,
        stop=stop,
        category=category,
        hospital_site=None if at_hospital is None else at_hospital.site_code,
        at_hospital=None if at_hospital is None else at_hospital.occurred_at,
        handover_at=handover_at,
    )


def derive_spell(events: Sequence[ev.Envelope]) -> SpellFact | None:  # noqa: C901 - one state machine, kept whole
    """Inpatient spell: ADT state machine plus discharge-readiness, referrals and plans."""
    admitted: ev.AdtAdmitted | None = None
    admission_bed: tuple[str, bool, str | None] | None = None  # bed category, escalation, site
    transfers: list[tuple[str, bool, str | None]] = []
    discharged_at: dt.datetime | None = None
    pathway: int | None = None
    drd: dt.date | None = None
    drd_set_at: dt.datetime | None = None
    referrals: dict[str, tuple[dt.datetime, int]] = {}  # referral_id -> (made at, pathway)
    plans: dict[str, dt.datetime] = {}  # referral_id -> plan in place at
    org_code = site_code = None
    drd_at_discharge: dt.date | None = None
    for e in events:
        match e:
            case ev.AdtAdmitted():
                admitted, discharged_at, transfers = e, None, []
                admission_bed = (e.bed_category, e.escalation_bed, e.site_code)
                org_code, site_code = e.org_code, e.site_code
            case ev.AdtAdmissionCancelled():
                admitted = None
            case ev.AdtTransferred():
                transfers.append((e.bed_category, e.escalation_bed, e.site_code or site_code))
            case ev.AdtTransferCancelled():
                if transfers:
                    transfers.pop()
            case ev.AdtUpdated() if admission_bed is not None:
                admission_bed = (
                    e.bed_category or admission_bed[0],
                    admission_bed[1] if e.escalation_bed is None else e.escalation_bed,
                    e.site_code or admission_bed[2],
                )
            case ev.AdtDischarged():
                discharged_at, drd_at_discharge = e.occurred_at, drd
                pathway = pathway if e.pathway is None else e.pathway
            case ev.AdtDischargeCancelled():
                discharged_at = drd_at_discharge = None
            case ev.DischargeReadyDateSet():
                drd, drd_set_at = e.discharge_ready_date, e.occurred_at
                pathway = pathway if e.pathway is None else e.pathway
            case ev.DischargeReadyDateCleared():
                drd = drd_set_at = None
            case ev.DischargePathwayAssigned():
                pathway = e.pathway
            case ev.DischargeReferralMade():
                referrals.setdefault(e.referral_id, (e.occurred_at, e.pathway))
            case ev.DischargePlanInPlace() if e.referral_id in referrals:
                plans.setdefault(e.referral_id, e.occurred_at)
    if admitted is None or admission_bed is None:
        return None
    bed_category, escalation, bed_site = transfers[-1] if transfers else admission_bed
    plan_since_drd = drd_set_at is not None and any(
        made >= drd_set_at and ref in plans for ref, (made, _) in referrals.items()
    )
    return SpellFact(
        spell_id=admitted.spell_id,
        org_code=org_code or admitted.org_code,
        site_code=bed_site or site_code,
        admitted_at=admitted.occurred_at,
        discharged_at=discharged_at,
        bed_category=bed_category,
        escalation_bed=escalation,
        drd=drd,
        pathway=pathway,
        plan_since_drd=plan_since_drd,
        drd_at_discharge=drd_at_discharge,
        referrals=tuple(
            Referral(ref, pathway_, made, plans.get(ref)) for ref, (made, pathway_) in sorted(referrals.items())
        ),
    )


def derive_declared_level(events: Sequence[ev.Envelope]) -> DeclaredLevelFact | None:
    """The latest declaration (by occurred_at, event_id) wins."""
    declared = [e for e in events if isinstance(e, ev.OpelDeclared)]
    if not declared:
        return None
    last = declared[-1]
    return DeclaredLevelFact(last.site_code or last.org_code, last.org_code, last.level, last.occurred_at)

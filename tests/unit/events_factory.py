"""Small builders for canonical events (validated through ``schemas.events.parse_event``) and snapshot look-ups.

Defaults: ED and bed events belong to organisation RWE, site RWEAA (Leicester Royal Infirmary); ambulance events to
RX9 (East Midlands Ambulance Service). Every builder gives the event a fresh, unique ``event_id`` unless one is
passed. Times are ISO 8601 text: with an offset or ``Z`` they are taken as given; without one they are Europe/London
local time (``when``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from connectors.simulator import simulate
from schemas.config import PlatformConfig, load_config
from schemas.events import Envelope, parse_event
from schemas.indicators import IndicatorSnapshot
from streams.engine import evaluate_at

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
SYSTEM = "QK1"

_ids = itertools.count(1)


def simulated_llr(start: dt.datetime, hours: float, seed: int, warmup_days: float = 1) -> list[Envelope]:
    """A simulated LLR period (normal scenario) with warm-up history: the shared fixture of the store tests."""
    return list(
        simulate(
            load_config().icb,
            scenario="normal",
            start=start,
            duration=dt.timedelta(hours=hours),
            seed=seed,
            warmup=dt.timedelta(days=warmup_days),
        )
    )


def when(text: str | dt.datetime) -> dt.datetime:
    """An aware instant: ISO text with an offset as given, naive text as Europe/London local time."""
    value = text if isinstance(text, dt.datetime) else dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=LONDON) if value.tzinfo is None else value


def event(
    event_type: str,
    at: str | dt.datetime,
    *,
    org: str,
    site: str | None = None,
    event_id: str | None = None,
    source: str = "TEST",
    **fields: Any,
) -> Envelope:
    """Build one event from a dict through ``parse_event`` (fields set to None are left out)."""
    raw: dict[str, Any] = {
        "event_id": event_id or f"{event_type}-{next(_ids):06d}",
        "event_type": event_type,
        "occurred_at": when(at).isoformat(),
        "source": source,
        "org_code": org,
        "site_code": site,
        "schema_version": 1,
        **fields,
    }
    return parse_event({k: v for k, v in raw.items() if v is not None})


# --- ED (scc.ed) ------------------------------------------------------------------------------------------------


def ed_arrived(
    attendance: str,
    at: str | dt.datetime,
    mode: str = "walk_in",
    department_type: str = "1",
    *,
    org: str = "RWE",
    site: str | None = "RWEAA",
    **fields: Any,
) -> Envelope:
    return event(
        "ed.arrived",
        at,
        org=org,
        site=site,
        attendance_id=attendance,
        department_type=department_type,
        arrival_mode=mode,
        **fields,
    )


def ed_handover(attendance: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA", **kw: Any):
    return event("ed.handover", at, org=org, site=site, attendance_id=attendance, **kw)


def ed_decision_to_admit(attendance: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA"):
    return event("ed.decision_to_admit", at, org=org, site=site, attendance_id=attendance)


def ed_departed(
    attendance: str,
    at: str | dt.datetime,
    disposal: str = "discharged",
    *,
    org: str = "RWE",
    site: str | None = "RWEAA",
    **kw: Any,
) -> Envelope:
    return event("ed.departed", at, org=org, site=site, attendance_id=attendance, disposal=disposal, **kw)


def ed_cancelled(attendance: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA", **kw: Any):
    return event("ed.cancelled", at, org=org, site=site, attendance_id=attendance, **kw)


def ed_attendance(
    attendance: str,
    arrived: str | dt.datetime,
    departed: str | dt.datetime | None = None,
    mode: str = "walk_in",
    department_type: str = "1",
    *,
    handover: str | dt.datetime | None = None,
    org: str = "RWE",
    site: str | None = "RWEAA",
) -> list[Envelope]:
    """An arrival, optionally a handover, optionally a departure."""
    out = [ed_arrived(attendance, arrived, mode, department_type, org=org, site=site)]
    if handover is not None:
        out.append(ed_handover(attendance, handover, org=org, site=site))
    if departed is not None:
        out.append(ed_departed(attendance, departed, org=org, site=site))
    return out


# --- Ambulance (scc.ambulance) ----------------------------------------------------------------------------------


def amb_call_connected(incident: str, at: str | dt.datetime, *, org: str = "RX9") -> Envelope:
    return event("ambulance.call_connected", at, org=org, incident_id=incident)


def amb_clock_started(incident: str, at: str | dt.datetime, category: int, *, org: str = "RX9", **kw: Any):
    return event("ambulance.clock_started", at, org=org, incident_id=incident, category=category, **kw)


def amb_recategorised(incident: str, at: str | dt.datetime, category: int, *, org: str = "RX9", **kw: Any):
    return event("ambulance.recategorised", at, org=org, incident_id=incident, category=category, **kw)


def amb_resource_arrived(
    incident: str,
    at: str | dt.datetime,
    transport_capable: bool = True,
    resource_id: str = "AMB1",
    *,
    org: str = "RX9",
    **kw: Any,
) -> Envelope:
    return event(
        "ambulance.resource_arrived",
        at,
        org=org,
        incident_id=incident,
        resource_id=resource_id,
        transport_capable=transport_capable,
        **kw,
    )


def amb_closed(incident: str, at: str | dt.datetime, conveyed: bool, *, org: str = "RX9", **kw: Any) -> Envelope:
    return event("ambulance.incident_closed", at, org=org, incident_id=incident, conveyed=conveyed, **kw)


def amb_at_hospital(incident: str, at: str | dt.datetime, site: str = "RWEAA", *, org: str = "RX9", **kw: Any):
    return event("ambulance.arrived_at_hospital", at, org=org, site=site, incident_id=incident, **kw)


def amb_handover_completed(
    incident: str, at: str | dt.datetime, site: str = "RWEAA", *, org: str = "RX9", **kw: Any
) -> Envelope:
    return event("ambulance.handover_completed", at, org=org, site=site, incident_id=incident, **kw)


def amb_crew_clear(incident: str, at: str | dt.datetime, *, org: str = "RX9") -> Envelope:
    return event("ambulance.crew_clear", at, org=org, incident_id=incident)


def amb_response(
    incident: str,
    start: str | dt.datetime,
    minutes: float,
    category: int,
    *,
    org: str = "RX9",
) -> list[Envelope]:
    """A clock start and a transport-capable arrival ``minutes`` later (the response time), conveyed."""
    t0 = when(start)
    stop = t0 + dt.timedelta(minutes=minutes)
    return [
        amb_clock_started(incident, t0, category, org=org),
        amb_resource_arrived(incident, stop, True, f"{incident}-DCA", org=org),
        amb_closed(incident, stop + dt.timedelta(minutes=40), True, org=org),
    ]


# --- Beds (scc.adt) and discharge (scc.discharge) ---------------------------------------------------------------


def admitted(
    spell: str,
    at: str | dt.datetime,
    bed_category: str = "adult_ga",
    escalation_bed: bool = False,
    *,
    org: str = "RWE",
    site: str | None = "RWEAA",
    ward: str = "WARD1",
    admission_method: str = "emergency",
    patient_ref: str | None = None,
    **kw: Any,
) -> Envelope:
    return event(
        "adt.admitted",
        at,
        org=org,
        site=site,
        spell_id=spell,
        patient_ref=patient_ref or "ab" * 16,
        ward_code=ward,
        bed_category=bed_category,
        escalation_bed=escalation_bed,
        admission_method=admission_method,
        **kw,
    )


def transferred(
    spell: str,
    at: str | dt.datetime,
    bed_category: str,
    escalation_bed: bool = False,
    *,
    org: str = "RWE",
    site: str | None = None,
    ward: str = "WARD2",
    **kw: Any,
) -> Envelope:
    return event(
        "adt.transferred",
        at,
        org=org,
        site=site,
        spell_id=spell,
        ward_code=ward,
        bed_category=bed_category,
        escalation_bed=escalation_bed,
        **kw,
    )


def discharged(
    spell: str,
    at: str | dt.datetime,
    pathway: int | None = None,
    *,
    org: str = "RWE",
    site: str | None = "RWEAA",
    **kw: Any,
) -> Envelope:
    return event("adt.discharged", at, org=org, site=site, spell_id=spell, pathway=pathway, **kw)


def adt_updated(spell: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA", **fields: Any):
    return event("adt.updated", at, org=org, site=site, spell_id=spell, **fields)


def admission_cancelled(spell: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA"):
    return event("adt.admission_cancelled", at, org=org, site=site, spell_id=spell)


def transfer_cancelled(spell: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA"):
    return event("adt.transfer_cancelled", at, org=org, site=site, spell_id=spell)


def discharge_cancelled(spell: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA"):
    return event("adt.discharge_cancelled", at, org=org, site=site, spell_id=spell)


def drd_set(
    spell: str,
    at: str | dt.datetime,
    ready_date: str | dt.date,
    pathway: int | None = None,
    *,
    org: str = "RWE",
    site: str | None = "RWEAA",
) -> Envelope:
    return event(
        "discharge.ready_date_set",
        at,
        org=org,
        site=site,
        spell_id=spell,
        discharge_ready_date=str(ready_date),
        pathway=pathway,
    )


def drd_cleared(spell: str, at: str | dt.datetime, *, org: str = "RWE", site: str | None = "RWEAA") -> Envelope:
    return event("discharge.ready_date_cleared", at, org=org, site=site, spell_id=spell)


def pathway_assigned(
    spell: str, at: str | dt.datetime, pathway: int, *, org: str = "RWE", site: str | None = "RWEAA"
) -> Envelope:
    return event("discharge.pathway_assigned", at, org=org, site=site, spell_id=spell, pathway=pathway)


def referral_made(
    spell: str,
    at: str | dt.datetime,
    referral_id: str,
    pathway: int,
    *,
    org: str = "RWE",
    site: str | None = "RWEAA",
) -> Envelope:
    return event(
        "discharge.referral_made", at, org=org, site=site, spell_id=spell, referral_id=referral_id, pathway=pathway
    )


def plan_in_place(
    spell: str, at: str | dt.datetime, referral_id: str, *, org: str = "RWE", site: str | None = "RWEAA"
) -> Envelope:
    return event("discharge.plan_in_place", at, org=org, site=site, spell_id=spell, referral_id=referral_id)


def opel_declared(at: str | dt.datetime, level: int, *, org: str = "RWE", site: str | None = "RWEAA") -> Envelope:
    return event("opel.declared", at, org=org, site=site, level=level)


# --- Evaluation and look-up -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def config() -> PlatformConfig:
    """The shipped LLR configuration (system QK1; RWE with sites RWEAA, RWEAE, RWEAK; RX9)."""
    return load_config()


class Snapshot:
    """The rows of one evaluation, picked out by (indicator, window, scope_type, scope_code)."""

    def __init__(self, rows: Iterable[IndicatorSnapshot]) -> None:
        self.rows = list(rows)
        self.by_key: dict[tuple[str, str, str, str], IndicatorSnapshot] = {}
        for row in self.rows:
            key = (row.indicator, row.window, row.scope_type, row.scope_code)
            assert key not in self.by_key, f"two rows for {key}"
            self.by_key[key] = row

    def row(
        self, indicator: str, window: str, scope_type: str = "system", scope_code: str = SYSTEM
    ) -> IndicatorSnapshot:
        key = (indicator, window, scope_type, scope_code)
        assert key in self.by_key, f"no row {key}"
        return self.by_key[key]

    def value(self, indicator: str, window: str, scope_type: str = "system", scope_code: str = SYSTEM) -> float | None:
        return self.row(indicator, window, scope_type, scope_code).value

    def has(self, indicator: str, window: str, scope_type: str = "system", scope_code: str = SYSTEM) -> bool:
        return (indicator, window, scope_type, scope_code) in self.by_key

    def values(self) -> dict[tuple[str, str, str, str], tuple[Any, ...]]:
        """Everything but ``computed_at``: the comparable content of a snapshot."""
        return {
            k: (r.ts, r.value, r.numerator, r.denominator, r.target, r.status) for k, r in sorted(self.by_key.items())
        }


def evaluate(events: Iterable[Envelope], at: str | dt.datetime) -> Snapshot:
    """Every indicator as of ``at`` from the events (those after ``at`` are left out, as INDICATORS.md says)."""
    return Snapshot(evaluate_at(config(), list(events), when(at)))

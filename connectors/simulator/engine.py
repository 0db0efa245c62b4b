"""The generation engine: every attendance, incident and spell drawn as a whole timeline, then merged in time order.

Why whole timelines rather than a clock-driven queue model: each entity's events follow from a handful of draws made
when it starts (a length of stay, a response time, a referral-to-plan delay), so queues such as "MOFD awaiting a
plan" or "P2 waiting" come out of Little's law (arrivals x time in the queue) and are tuned in ``params.py`` with no
capacity model. It is also fast: no event loop, one sort at the end.

Times are integer seconds since the epoch (UTC) until the very end; calendar rules (ward rounds, working hours,
discharge ready dates) use Europe/London local time like the indicators do.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from schemas.config import Icb, Organisation, Site
from schemas.events import EVENT_MODELS, Envelope

from .params import (
    AMBULANCE_BY_HOUR,
    AMBULANCE_BY_WEEKDAY,
    ED_BY_WEEKDAY,
    ED_TYPE1_BY_HOUR,
    ED_TYPE3_BY_HOUR,
    NORMAL,
    SCENARIO_PARAMS,
    Lognormal,
    ScenarioParams,
)

LONDON = ZoneInfo("Europe/London")
MINUTE = 60
HOUR = 3600
DAY = 86400
PREHISTORY_DAYS = 120  # spells admitted this long before the warm-up can still be in a bed when it starts
PREHISTORY_MAX_DELAY_D = 25  # ready-to-discharge longer than this is vanishingly rare: skip drawing those spells
FEEDBACK_LEAD_D = 15  # occupancy steering starts this long before the warm-up (all spells since are tracked)
FEEDBACK_GAIN = 10.0  # direct admissions x (1 + gain x shortfall as a share of beds): 2% below target -> x1.2
WARD_BEDS = 28  # beds per adult base ward, only to name wards

Row = tuple[int, int, str, str, str, str | None, str, dict[str, Any]]
"""(ts, seq, event_type, event_id, org_code, site_code, source, extra fields): sortable, cheap to hold."""

SpellEvent = tuple[int, str, dict[str, Any]]
"""(ts, event_type, extra fields) of one spell, before it gets its envelope."""

_SPELL_RANK = {
    "adt.admitted": 0,
    "adt.admission_cancelled": 1,
    "adt.transferred": 2,
    "adt.transfer_cancelled": 3,
    "adt.updated": 4,
    "discharge.ready_date_set": 5,
    "discharge.pathway_assigned": 5,
    "discharge.ready_date_cleared": 5,
    "discharge.referral_made": 6,
    "discharge.plan_in_place": 7,
    "adt.discharged": 8,
    "adt.discharge_cancelled": 9,
}

# --- local-time helpers ----------------------------------------------------------------------------------------


def local(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, LONDON)


def local_date(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, LONDON).date()


def at_local(day: dt.date, hours: float) -> int:
    """Epoch seconds of ``hours`` after local midnight on ``day`` (wall-clock, so DST days come out right)."""
    h = int(hours)
    m = int((hours - h) * 60)
    return int(dt.datetime(day.year, day.month, day.day, h, m, tzinfo=LONDON).timestamp())


def in_hours(ts: float, window: tuple[float, float], rng: random.Random, spread_h: float = 3.0) -> int:
    """``ts`` if it falls in the local-time window, else the next opening plus a spread (work piles up overnight)."""
    t = dt.datetime.fromtimestamp(ts, LONDON)
    h = t.hour + t.minute / 60
    start, end = window
    if start <= h < end:
        return int(ts)
    day = t.date() if h < start else t.date() + dt.timedelta(days=1)
    spread = min(spread_h, end - start - 0.5)
    return at_local(day, start) + int(rng.uniform(0, spread * HOUR))


def choose(rng: random.Random, weights: tuple[float, ...]) -> int:
    """Index drawn with the given (summing to ~1) probabilities."""
    u = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        u -= w
        if u < 0:
            return i
    return len(weights) - 1


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def acronym(name: str) -> str:
    """'University Hospitals of Leicester NHS Trust' -> 'UHL': how source systems are usually prefixed."""
    skip = {"NHS", "Trust", "Foundation"}
    letters = "".join(w[0] for w in name.split() if w[:1].isupper() and w not in skip)
    return letters or name[:8].upper()


def age_of(rng: random.Random, child_share: float, mean: float, sd: float) -> int:
    if rng.random() < child_share:
        return rng.randint(0, 15)
    return max(16, min(104, int(rng.gauss(mean, sd))))


# --- output ----------------------------------------------------------------------------------------------------


class Sink:
    """Collects rows below ``end`` and numbers event ids per family (``ed-00000001``, ``adt-00000001`` ...)."""

    PREFIX = {"ed": "ed", "ambulance": "amb", "adt": "adt", "discharge": "dis"}

    def __init__(self, end: int) -> None:
        self.end = end
        self.rows: list[Row] = []
        self.counters = dict.fromkeys(self.PREFIX, 0)

    def add(self, ts: int, event_type: str, org: str, site: str | None, source: str, extra: dict[str, Any]) -> None:
        if ts >= self.end:
            return
        family = event_type.split(".", 1)[0]
        n = self.counters[family] = self.counters[family] + 1
        event_id = f"{self.PREFIX[family]}-{n:08d}"
        self.rows.append((ts, len(self.rows), event_type, event_id, org, site, source, extra))


def materialise(rows: list[Row]) -> Iterator[Envelope]:
    """Rows in time order as validated event models (``model_validate`` is faster than ``model_construct`` here)."""
    rows.sort()
    utc = dt.UTC
    from_ts = dt.datetime.fromtimestamp
    for ts, _seq, event_type, event_id, org, site, source, extra in rows:
        data = {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": from_ts(ts, utc),
            "source": source,
            "org_code": org,
            **extra,
        }
        if site is not None:
            data["site_code"] = site
        yield EVENT_MODELS[event_type].model_validate(data)


# --- spells ----------------------------------------------------------------------------------------------------


@dataclass
class Wards:
    """Ward codes of one site, named so that a reader can tell the kind of bed."""

    site: str
    base: list[str]
    assessment: str
    escalation: str
    paediatric: str
    critical_care: str

    @classmethod
    def of(cls, site: Site) -> Wards:
        n = max(1, site.adult_ga_beds // WARD_BEDS)
        return cls(
            site=site.code,
            base=[f"{site.code}-W{i:02d}" for i in range(1, n + 1)],
            assessment=f"{site.code}-AMU",
            escalation=f"{site.code}-ESC",
            paediatric=f"{site.code}-CHW",
            critical_care=f"{site.code}-ICU",
        )


@dataclass
class SpellPlan:
    """What decides a spell before it is drawn: when, where, how and who."""

    admitted: int
    wards: Wards
    method: str  # emergency | elective | other
    category: str  # adult_ga | paediatric_ga | critical_care
    age: int
    clinical_d: float | None = None  # admission to no longer meeting the criteria to reside


@dataclass
class SpellResult:
    events: list[SpellEvent] = field(default_factory=list)
    ga_seconds: int = 0  # time in an adult G&A bed (the occupancy calibration needs it)
    ga_from: int = 0  # when the spell entered an adult G&A bed
    discharged: int | None = None
    closed: int | None = None  # discharge or cancellation: after this the spell has no more events


class SpellBuilder:
    """Draws one inpatient spell's ADT and discharge timeline."""

    def __init__(self, rng: random.Random, p_at: Callable[[float], ScenarioParams]) -> None:
        self.rng = rng
        self.p_at = p_at

    def patient_ref(self) -> str:
        """32 lowercase hex chars, like a keyed hash (HMAC) truncated at the edge: nothing that resembles an ID."""
        return f"{self.rng.getrandbits(128):032x}"

    def build(self, spell_id: str, plan: SpellPlan) -> SpellResult:
        rng = self.rng
        out = SpellResult()
        ev = out.events
        a = plan.admitted
        p = self.p_at(a)
        w = plan.wards
        category = plan.category
        if category == "critical_care":
            ward = w.critical_care
        elif category == "paediatric_ga":
            ward = w.paediatric
        elif plan.method == "emergency":
            ward = w.assessment
        else:
            ward = rng.choice(w.base)
        admitted = {
            "spell_id": spell_id,
            "patient_ref": self.patient_ref(),
            "ward_code": ward,
            "bed_category": category,
            "escalation_bed": False,
            "admission_method": plan.method,
            "age": plan.age,
        }
        ev.append((a, "adt.admitted", admitted))
        if rng.random() < p.admission_cancel_share:
            cancelled = a + rng.randint(2 * MINUTE, 30 * MINUTE)
            ev.append((cancelled, "adt.admission_cancelled", {"spell_id": spell_id}))
            if rng.random() < 0.5:
                out.closed = cancelled
                return out  # keyed in error: the spell never happened
            a = cancelled + rng.randint(5 * MINUTE, 30 * MINUTE)  # re-admitted, to the bed it should have been
            ev.append(
                (a, "adt.admitted", {**admitted, "ward_code": rng.choice(w.base) if category == "adult_ga" else ward})
            )

        if category == "paediatric_ga":
            d = in_hours(a + p.los_paediatric_d.draw(rng) * DAY, p.discharge_hours, rng)
            ev.append((d, "adt.discharged", {"spell_id": spell_id, "destination": "usual_residence"}))
            out.discharged = d
            return self._finish(out)

        ga_from = a
        transfers: list[tuple[int, str, bool]] = []  # (ts, ward, escalation)
        if category == "critical_care":
            ga_from = a + int(p.critical_care_d.draw(rng) * DAY)
            transfers.append((ga_from, rng.choice(w.base), False))
        clinical = plan.clinical_d
        if clinical is None:
            dist = p.los_clinical_emergency_d if plan.method == "emergency" else p.los_clinical_elective_d
            clinical = dist.draw(rng)
        ready = ga_from + clinical * DAY

        destination = "usual_residence"
        pathway: int | None = 0
        if plan.method == "emergency" and rng.random() < p.died_share:
            d = int(ga_from + clinical * DAY * rng.uniform(0.3, 1.0)) + 1
            destination, pathway = "died", None
        elif rng.random() < (p.no_drd_short_stay_share if clinical < 1.0 else p.no_drd_share):
            d = in_hours(ready, p.discharge_hours, rng)
            pathway = None  # no ready date, no pathway recorded
        else:
            d, pathway, destination = self._discharge_phase(spell_id, ready, a, ev)
        d = max(d, ga_from + HOUR)

        # Ward moves: assessment unit to a base ward, a spell in an escalation bed, mistakes undone.
        if plan.method == "emergency" and category == "adult_ga" and rng.random() < p.assessment_transfer_share:
            t = a + int(p.assessment_stay_h.draw(rng) * HOUR)
            if t < d - HOUR:
                transfers.append((t, rng.choice(w.base), False))
                if rng.random() < p.transfer_cancel_share:
                    undo = t + rng.randint(5 * MINUTE, 40 * MINUTE)
                    transfers.append((undo, "", False))  # "" marks the cancellation
                    if rng.random() < 0.7:
                        transfers.append((undo + rng.randint(30 * MINUTE, 3 * HOUR), rng.choice(w.base), False))
        if rng.random() < self.p_at(a).escalation_share:
            lo = max([ga_from, *(t for t, _, _ in transfers)]) + HOUR
            if lo < d - 3 * HOUR:
                t = rng.randint(lo, d - 2 * HOUR)
                transfers.append((t, w.escalation, True))
                if rng.random() < 0.5:
                    back = t + int((d - t) * rng.uniform(0.3, 0.8))
                    if back > t + MINUTE:
                        transfers.append((back, rng.choice(w.base), False))
        for t, to, escalation in transfers:
            if t >= d:
                continue
            if to:
                bed = "adult_ga"
                ev.append(
                    (
                        t,
                        "adt.transferred",
                        {"spell_id": spell_id, "ward_code": to, "bed_category": bed, "escalation_bed": escalation},
                    )
                )
            else:
                ev.append((t, "adt.transfer_cancelled", {"spell_id": spell_id}))
        if rng.random() < p.update_share and d - a > 2 * HOUR:
            t = a + rng.randint(5 * MINUTE, min(DAY, d - a - HOUR))
            age = max(16, min(104, plan.age + rng.choice((-2, -1, 1, 2))))
            ev.append((t, "adt.updated", {"spell_id": spell_id, "age": age}))

        discharged: dict[str, Any] = {"spell_id": spell_id, "destination": destination}
        if pathway is not None:
            discharged["pathway"] = pathway
        ev.append((d, "adt.discharged", discharged))
        if rng.random() < p.discharge_cancel_share:
            undo = d + rng.randint(5 * MINUTE, HOUR)
            ev.append((undo, "adt.discharge_cancelled", {"spell_id": spell_id}))
            d = undo + rng.randint(HOUR, 5 * HOUR)
            ev.append((d, "adt.discharged", discharged))
        out.discharged = d
        out.ga_from = ga_from
        out.ga_seconds = max(0, d - ga_from)
        return self._finish(out)

    @staticmethod
    def _finish(out: SpellResult) -> SpellResult:
        """Time order within the spell with no ties, so (occurred_at, event_id) order is the story's order."""
        out.events.sort(key=lambda e: (e[0], _SPELL_RANK[e[1]]))
        last = -1
        fixed = []
        for ts, kind, extra in out.events:
            ts = max(ts, last + 1)
            fixed.append((ts, kind, extra))
            last = ts
        out.events = fixed
        if out.discharged is not None:
            out.discharged = out.closed = fixed[-1][0]
        return out

    def _discharge_phase(
        self, spell_id: str, ready: float, admitted: int, ev: list[SpellEvent]
    ) -> tuple[int, int, str]:
        """Ready date, pathway, referral, plan and the discharge they lead to; returns (discharge ts, pathway, dest)."""
        rng = self.rng
        p = self.p_at(ready)
        s = in_hours(ready, p.working_hours, rng, spread_h=9.5)
        pathway = choose(rng, p.pathway_mix)
        admitted_date = local_date(admitted)
        if rng.random() < p.drd_clear_share:
            # Set, perhaps referred, then deteriorated: the ready date is cleared and set again days later.
            ev.append(
                (
                    s,
                    "discharge.ready_date_set",
                    {"spell_id": spell_id, "discharge_ready_date": local_date(s), "pathway": pathway},
                )
            )
            cleared = s + rng.randint(2 * HOUR, 30 * HOUR)
            if pathway:
                ref = in_hours(s + p.referral_after_h[pathway - 1].draw(rng) * HOUR, p.working_hours, rng)
                if ref < cleared:
                    ev.append(
                        (
                            ref,
                            "discharge.referral_made",
                            {"spell_id": spell_id, "referral_id": f"{spell_id}-R1", "pathway": pathway},
                        )
                    )
            ev.append((cleared, "discharge.ready_date_cleared", {"spell_id": spell_id}))
            s = in_hours(cleared + p.drd_reset_after_d.draw(rng) * DAY, p.working_hours, rng, spread_h=4.0)
            if rng.random() < 0.3:
                pathway = choose(rng, p.pathway_mix)
            ref_no = 2
        else:
            ref_no = 1
        p = self.p_at(s)
        drd = local_date(s)
        set_at = s
        if rng.random() < p.drd_future_share:
            evening = at_local(drd - dt.timedelta(days=1), rng.uniform(17, 21))
            if evening > max(e[0] for e in ev) + HOUR:
                set_at = evening  # recorded the evening before: a plan until midnight, then a fact
        elif pathway and rng.random() < p.drd_retrospective_share:
            drd = max(admitted_date, drd - dt.timedelta(days=rng.choice((1, 1, 2))))
        unknown = rng.random() < p.drd_unknown_pathway_share
        fields: dict[str, Any] = {"spell_id": spell_id, "discharge_ready_date": drd}
        if not unknown:
            fields["pathway"] = pathway
        ev.append((set_at, "discharge.ready_date_set", fields))
        t = s
        if unknown:
            t = in_hours(s + p.pathway_assigned_after_h.draw(rng) * HOUR, p.working_hours, rng)
            ev.append((t, "discharge.pathway_assigned", {"spell_id": spell_id, "pathway": pathway}))

        if pathway == 0:
            closing = at_local(local_date(t), p.discharge_hours[1])
            if rng.random() < p.p0_on_drd_share and t + HOUR < closing:
                d = t + int(rng.uniform(HOUR, min(7 * HOUR, closing - t)))  # home the same day
            else:
                later = drd + dt.timedelta(days=choose(rng, (0.0, 0.7, 0.2, 0.05, 0.05)))
                d = max(at_local(later, rng.uniform(10, 20)), t + HOUR)
            return d, 0, "usual_residence"
        i = pathway - 1
        referral_id = f"{spell_id}-R{ref_no}"
        ref = in_hours(t + p.referral_after_h[i].draw(rng) * HOUR, p.working_hours, rng)
        ev.append(
            (ref, "discharge.referral_made", {"spell_id": spell_id, "referral_id": referral_id, "pathway": pathway})
        )
        plan_at = in_hours(ref + self.p_at(ref).plan_after_h[i].draw(rng) * HOUR, p.plan_hours, rng)
        ev.append((plan_at, "discharge.plan_in_place", {"spell_id": spell_id, "referral_id": referral_id}))
        wait = self.p_at(plan_at).discharge_after_plan_h[i].draw(rng) * HOUR
        d = in_hours(plan_at + wait, p.discharge_hours, rng)
        return d, pathway, ("usual_residence", "community_bed", "care_home")[i]


# --- calibration ------------------------------------------------------------------------------------------------


def _steady_rate(per_day: float) -> Callable[[ScenarioParams], float]:
    """A daily rate that ignores the scenario's parameters (the prehistory's arrivals, before any scenario)."""
    return lambda _params: per_day


def capped_lognormal_mean(dist: Lognormal) -> float:
    """Exact mean of :meth:`Lognormal.draw` (a lognormal capped at ``cap`` medians)."""
    s, log_cap = dist.sigma, math.log(dist.cap)

    def phi(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    return dist.median * (math.exp(s * s / 2) * phi(log_cap / s - s) + dist.cap * (1 - phi(log_cap / s)))


@lru_cache(maxsize=8)
def mean_ga_days(params: ScenarioParams, method: str) -> float:
    """Mean adult G&A bed-days per adult admission of this method, by drawing spells with a fixed RNG.

    Used to size the admissions that keep occupancy at the target for any configured bed base. The clinical stay
    has a heavy tail, so it is a control variate: its exact mean plus the sampled mean of the rest of the stay.
    """
    rng = random.Random(f"calibration/{method}")
    builder = SpellBuilder(rng, lambda _t: params)
    wards = Wards("CAL", ["CAL-W01"], "CAL-AMU", "CAL-ESC", "CAL-CHW", "CAL-ICU")
    monday = at_local(dt.date(2025, 1, 6), 0)
    dist = params.los_clinical_emergency_d if method == "emergency" else params.los_clinical_elective_d
    cc_share = params.critical_care_share_emergency if method == "emergency" else params.critical_care_share_elective
    n, rest = 4000, 0.0
    for _ in range(n):
        a = monday + rng.randint(0, 7 * DAY)
        category = "critical_care" if rng.random() < cc_share else "adult_ga"
        clinical = dist.draw(rng)
        ga = builder.build("CAL", SpellPlan(a, wards, method, category, 60, clinical)).ga_seconds
        rest += ga / DAY - clinical
    return capped_lognormal_mean(dist) + rest / n


def expected_conveyed_share(p: ScenarioParams) -> float:
    """Share of incidents conveyed to hospital, from the ambulance parameters (sizes walk-ins to the ED total)."""
    share = 0.0
    for c in range(4):
        on_scene = (1 - p.amb_hear_and_treat_share[c]) * (1 - p.amb_rrv_first_share[c] * p.amb_rrv_only_share)
        share += p.amb_category_mix[c] * on_scene * p.amb_convey_share
    return share


# --- the system -------------------------------------------------------------------------------------------------


@dataclass
class EdSite:
    site: Site
    org: Organisation
    type1_share_of_conveyances: float


class Simulation:
    """One run: the ICB's EDs, its ambulance service and its acute beds, from the prehistory to ``end``."""

    def __init__(
        self,
        icb: Icb,
        scenario: str,
        start: dt.datetime,
        duration: dt.timedelta,
        seed: int,
        warmup: dt.timedelta,
    ) -> None:
        self.icb = icb
        self.params = SCENARIO_PARAMS[scenario]
        self.start = int(start.timestamp())
        self.end = int((start + duration).timestamp())
        self.warm_start = int((start - warmup).timestamp())
        self.regime_start = self.start - int(self.params.regime_lead_h * HOUR)
        self.seed = seed
        self.sink = Sink(self.end)
        self.rng_ed = random.Random(f"{seed}/ed")
        self.rng_amb = random.Random(f"{seed}/ambulance")
        self.rng_admit = random.Random(f"{seed}/admissions")
        self.builder = SpellBuilder(random.Random(f"{seed}/spells"), self.p_at)
        self.sources = {o.code: acronym(o.name) for o in icb.organisations}
        self.wards = {s.code: Wards.of(s) for o in icb.organisations for s in o.sites}
        self.acute = [o for o in icb.organisations if any(s.adult_ga_beds for s in o.sites)]
        self.ambulance_org = next((o for o in icb.organisations if o.kind == "ambulance"), None)
        type1 = [(s, o) for o in icb.organisations for s in o.sites if "1" in s.ed_department_types]
        self.type1_sites = [EdSite(s, o, 1 / len(type1)) for s, o in type1]
        self.counter = {"attendance": 0, "incident": 0, "spell": 0}
        # Adult G&A bed occupancy per acute organisation, as hourly +1/-1 steps from feedback_start on: the direct
        # (GP/SDEC) admissions are generated last and steer by it, the way a bed bureau accepts more when beds free up.
        self.feedback_start = self.warm_start - FEEDBACK_LEAD_D * DAY
        hours = (self.end - self.feedback_start) // HOUR + 2
        self.occupancy_steps = {o.code: [0] * hours for o in self.acute}
        self._steer_hour = -1  # while steering: the hour reached and the beds occupied then
        self._steer_occupied = 0

    def p_at(self, ts: float) -> ScenarioParams:
        """The scenario's parameters from ``start - regime_lead_h`` (a surge builds up), NORMAL before."""
        return self.params if ts >= self.regime_start else NORMAL

    def _next(self, kind: str) -> int:
        self.counter[kind] += 1
        return self.counter[kind]

    def run(self) -> list[Row]:
        self._prehistory()
        self._ambulance()
        for o in self.icb.organisations:
            for s in o.sites:
                for dtype in s.ed_department_types:
                    self._walk_ins(o, s, dtype)
        for o in self.acute:
            self._electives(o, self.warm_start, self.end)
        for o in self.acute:  # last: it steers by the beds everything else has filled
            self._direct(o, self.feedback_start, self.end, feedback=True)
        return self.sink.rows

    # --- arrivals ------------------------------------------------------------------------------------------------

    def arrivals(
        self,
        rng: random.Random,
        t0: int,
        t1: int,
        per_day: Callable[[ScenarioParams], float],
        by_hour: tuple[float, ...],
        by_weekday: tuple[float, ...],
    ) -> Iterator[int]:
        """Poisson arrivals with a rate constant within each hour: local hour-of-day and weekday profile."""
        cur = t0
        while cur < t1:
            nxt = min((cur // HOUR + 1) * HOUR, t1)
            t = local(cur)
            rate = per_day(self.p_at(cur)) * by_hour[t.hour] * by_weekday[t.weekday()] / HOUR
            x = float(cur)
            while rate > 0:
                x += rng.expovariate(rate)
                if x >= nxt:
                    break
                yield int(x)
            cur = nxt

    # --- ambulance ---------------------------------------------------------------------------------------------------

    def _ambulance(self) -> None:
        org = self.ambulance_org
        if org is None or not self.type1_sites:
            return
        rng = self.rng_amb
        src = f"{self.sources[org.code]}-CAD"
        add = self.sink.add
        for t0 in self.arrivals(
            rng,
            self.warm_start,
            self.end,
            lambda p: p.amb_incidents_per_day,
            AMBULANCE_BY_HOUR,
            AMBULANCE_BY_WEEKDAY,
        ):
            p = self.p_at(t0)
            inc = f"INC{self._next('incident'):08d}"
            key = {"incident_id": inc}
            cat = choose(rng, p.amb_category_mix) + 1
            add(t0, "ambulance.call_connected", org.code, None, src, key)
            cs = t0 + rng.randint(20, 240)
            add(cs, "ambulance.clock_started", org.code, None, src, {**key, "category": cat})
            first_cat = cat
            if rng.random() < p.amb_recategorise_share:
                cat = 2 if cat == 1 else 3 if cat == 4 else cat + rng.choice((-1, 1))
            if rng.random() < p.amb_hear_and_treat_share[first_cat - 1]:
                closed = cs + rng.randint(20 * MINUTE, 90 * MINUTE)
                if cat != first_cat:
                    add(
                        cs + rng.randint(2 * MINUTE, 15 * MINUTE),
                        "ambulance.recategorised",
                        org.code,
                        None,
                        src,
                        {**key, "category": cat},
                    )
                add(closed, "ambulance.incident_closed", org.code, None, src, {**key, "conveyed": False})
                continue
            response = max(60, int(p.amb_response_min[cat - 1].draw(rng) * MINUTE))
            stop = cs + response
            if cat != first_cat:
                add(
                    cs + int(response * rng.uniform(0.1, 0.7)),
                    "ambulance.recategorised",
                    org.code,
                    None,
                    src,
                    {**key, "category": cat},
                )
            if rng.random() < p.amb_rrv_first_share[first_cat - 1]:
                rrv = cs + max(30, int(response * rng.uniform(0.35, 0.85)))
                rrv_id = f"{org.code}-RRV{rng.randint(1, 40):02d}"
                add(
                    rrv,
                    "ambulance.resource_arrived",
                    org.code,
                    None,
                    src,
                    {**key, "resource_id": rrv_id, "transport_capable": False},
                )
                if rng.random() < p.amb_rrv_only_share:
                    closed = rrv + int(p.amb_see_and_treat_min.draw(rng) * MINUTE)
                    add(closed, "ambulance.incident_closed", org.code, None, src, {**key, "conveyed": False})
                    continue
                stop = max(stop, rrv + MINUTE)
            vehicle = f"{org.code}-DCA{rng.randint(1, 180):03d}"
            add(
                stop,
                "ambulance.resource_arrived",
                org.code,
                None,
                src,
                {**key, "resource_id": vehicle, "transport_capable": True},
            )
            if rng.random() >= p.amb_convey_share:
                closed = stop + int(p.amb_see_and_treat_min.draw(rng) * MINUTE)
                add(closed, "ambulance.incident_closed", org.code, None, src, {**key, "conveyed": False})
                continue
            at_hospital = stop + int((p.amb_on_scene_min.draw(rng) + p.amb_travel_min.draw(rng)) * MINUTE)
            ed = self.type1_sites[choose(rng, tuple(e.type1_share_of_conveyances for e in self.type1_sites))]
            age = age_of(rng, p.ed_child_share_ambulance, 66, 19)
            handover = self._attendance(ed.org, ed.site, "1", at_hospital, "ambulance", inc, age)
            site = ed.site.code
            add(at_hospital, "ambulance.arrived_at_hospital", org.code, site, src, key)
            add(handover, "ambulance.handover_completed", org.code, site, src, key)
            clear = handover + int(p.amb_crew_clear_min.draw(rng) * MINUTE)
            add(clear, "ambulance.crew_clear", org.code, None, src, key)
            add(
                clear + rng.randint(30, 10 * MINUTE),
                "ambulance.incident_closed",
                org.code,
                None,
                src,
                {**key, "conveyed": True},
            )

    # --- ED ----------------------------------------------------------------------------------------------------------

    def _walk_ins(self, org: Organisation, site: Site, dtype: str) -> None:
        """Self-presenting attendances; type 1's ambulance share comes from the conveyed incidents."""
        rng = self.rng_ed

        def rate(p: ScenarioParams) -> float:
            if dtype == "1":
                ambulance = p.amb_incidents_per_day * expected_conveyed_share(p) if self.ambulance_org else 0.0
                return max(0.0, p.ed_type1_per_day - ambulance * self._share_of(site))
            return p.ed_type3_per_day if dtype == "3" else p.ed_type2_per_day

        by_hour = ED_TYPE3_BY_HOUR if dtype == "3" else ED_TYPE1_BY_HOUR
        for t in self.arrivals(rng, self.warm_start, self.end, rate, by_hour, ED_BY_WEEKDAY):
            p = self.p_at(t)
            if dtype == "3":
                age = age_of(rng, p.ed_child_share_type3, 38, 16)
            else:
                age = age_of(rng, p.ed_child_share_walk_in, 45, 20)
            mode = "other" if rng.random() < p.ed_other_mode_share else "walk_in"
            self._attendance(org, site, dtype, t, mode, None, age)

    def _share_of(self, site: Site) -> float:
        return next((e.type1_share_of_conveyances for e in self.type1_sites if e.site.code == site.code), 0.0)

    def _attendance(
        self, org: Organisation, site: Site, dtype: str, arrived: int, mode: str, incident: str | None, age: int
    ) -> int:
        """One attendance's events; returns the handover time (ambulance arrivals) so the crew's events agree."""
        rng = self.rng_ed
        p = self.p_at(arrived)
        add = self.sink.add
        src = f"{self.sources[org.code]}-ED"
        att = f"{site.code}-A{self._next('attendance'):08d}"
        key = {"attendance_id": att}
        fields: dict[str, Any] = {**key, "department_type": dtype, "arrival_mode": mode, "age": age}
        if incident:
            fields["ambulance_incident_id"] = incident
        add(arrived, "ed.arrived", org.code, site.code, src, fields)
        handover = arrived
        if mode == "ambulance":
            handover = arrived + max(MINUTE, int(p.ed_handover_min.draw(rng) * MINUTE))
            add(handover, "ed.handover", org.code, site.code, src, key)
        elif rng.random() < p.ed_cancel_share:
            add(arrived + rng.randint(5 * MINUTE, HOUR), "ed.cancelled", org.code, site.code, src, key)
            return handover
        child = age < 16
        u = rng.random()
        if dtype == "3":
            disposal = (
                "left"
                if u < p.ed_type3_left_share
                else "transferred"
                if u < p.ed_type3_left_share + p.ed_type3_transfer_share
                else "discharged"
            )
            los = p.ed_los_type3_min
        else:
            admit = p.ed_admit_share_ambulance if mode == "ambulance" else p.ed_admit_share_walk_in
            if child:
                admit *= p.ed_admit_child_factor
            cut = (admit, p.ed_left_share, p.ed_transfer_share, p.ed_died_share)
            disposal = "discharged"
            acc = 0.0
            for name, share in zip(("admitted", "left", "transferred", "died"), cut, strict=True):
                acc += share
                if u < acc:
                    disposal = name
                    break
            los = {"admitted": p.ed_los_admitted_min, "left": p.ed_los_left_min}.get(disposal, p.ed_los_discharged_min)
        departed = max(arrived + int(los.draw(rng) * MINUTE), handover + 10 * MINUTE)
        if disposal == "admitted" and rng.random() < p.ed_dta_share:
            dta = max(arrived + int((departed - arrived) * rng.uniform(0.3, 0.7)), handover + MINUTE)
            if dta < departed:
                add(dta, "ed.decision_to_admit", org.code, site.code, src, key)
        add(departed, "ed.departed", org.code, site.code, src, {**key, "disposal": disposal})
        if disposal == "admitted" and departed < self.end:
            self._admit_emergency(org, site, departed + rng.randint(MINUTE, 10 * MINUTE), age)
        return handover

    # --- beds ------------------------------------------------------------------------------------------------------

    def _bed_site(self, org: Organisation, rng: random.Random) -> Site:
        sites = [s for s in org.sites if s.adult_ga_beds]
        return sites[choose(rng, tuple(float(s.adult_ga_beds) for s in sites))]

    def _admit_emergency(
        self, org: Organisation, ed_site: Site, t: int, age: int, clinical_d: float | None = None
    ) -> None:
        """An emergency admission: children to the ED site's children's ward, adults to a G&A or critical care bed."""
        rng = self.rng_admit
        p = self.p_at(t)
        if age < 16:
            self._spell(org, SpellPlan(t, self.wards[ed_site.code], "emergency", "paediatric_ga", age))
            return
        if not any(s.adult_ga_beds for s in org.sites):
            return
        site = self._bed_site(org, rng)
        category = "critical_care" if rng.random() < p.critical_care_share_emergency else "adult_ga"
        self._spell(org, SpellPlan(t, self.wards[site.code], "emergency", category, age, clinical_d))

    def _admit_other(self, org: Organisation, t: int, method: str, clinical_d: float | None = None) -> None:
        rng = self.rng_admit
        p = self.p_at(t)
        site = self._bed_site(org, rng)
        cc = p.critical_care_share_elective if method == "elective" else p.critical_care_share_emergency
        category = "critical_care" if rng.random() < cc else "adult_ga"
        age = age_of(rng, 0.0, 62 if method == "elective" else 66, 16)
        self._spell(org, SpellPlan(t, self.wards[site.code], method, category, age, clinical_d))

    def _spell(self, org: Organisation, plan: SpellPlan) -> None:
        spell_id = f"{plan.wards.site}-S{self._next('spell'):08d}"
        result = self.builder.build(spell_id, plan)
        steps = self.occupancy_steps.get(org.code)
        if steps is not None and result.ga_seconds > 0:
            self._occupy(steps, result.ga_from, result.ga_from + result.ga_seconds)
        if result.closed is not None and result.closed <= self.warm_start:
            return  # over before the history starts: nobody needs it
        src = self.sources[org.code]
        adt_src, dis_src = f"{src}-EPR", f"{src}-DISCHARGE"
        add = self.sink.add
        for ts, kind, extra in result.events:
            add(ts, kind, org.code, plan.wards.site, adt_src if kind[0] == "a" else dis_src, extra)

    def _org_rates(self, org: Organisation) -> tuple[float, float, float, float]:
        """(ED adult admissions, ED child admissions, direct emergency, mean electives) per day, sized to occupancy.

        The direct (GP, SDEC) emergency stream fills what ED and elective admissions leave of the target occupancy.
        """
        p = NORMAL
        amb = p.amb_incidents_per_day * expected_conveyed_share(p) if self.ambulance_org else 0.0
        adult = child = 0.0
        for s in org.sites:
            for dtype in s.ed_department_types:
                if dtype == "3":
                    continue
                share = self._share_of(s) if dtype == "1" else 0.0
                a = amb * share
                per_day = p.ed_type1_per_day if dtype == "1" else p.ed_type2_per_day
                w = max(0.0, per_day - a) * (1 - p.ed_cancel_share)
                for n, pa, cs in (
                    (a, p.ed_admit_share_ambulance, p.ed_child_share_ambulance),
                    (w, p.ed_admit_share_walk_in, p.ed_child_share_walk_in),
                ):
                    adult += n * (1 - cs) * pa
                    child += n * cs * pa * p.ed_admit_child_factor
        beds = sum(s.adult_ga_beds for s in org.sites)
        electives = (5 * p.elective_per_weekday + 2 * p.elective_per_weekend_day) / 7
        need = p.target_ga_occupancy * beds
        ga_emergency = mean_ga_days(p, "emergency")
        direct = max(0.0, (need - adult * ga_emergency - electives * mean_ga_days(p, "elective")) / ga_emergency)
        return adult, child, direct, electives

    def _occupy(self, steps: list[int], start: int, end: int) -> None:
        """Record a stay in an adult G&A bed; during steering, a step at or before the current hour goes straight
        into the running count."""
        if end <= self.feedback_start:
            return
        for ts, step in ((start, 1), (end, -1)):
            i = max(0, (ts - self.feedback_start) // HOUR)
            if i < len(steps):
                if i <= self._steer_hour:
                    self._steer_occupied += step
                else:
                    steps[i] += step

    def _clinical_or_skip(self, rng: random.Random, method: str, t: int, prehistory: bool) -> float | None:
        """Prehistory only: draw the clinical stay first; -1 for spells long over by the warm-up (not drawn)."""
        if not prehistory:
            return None
        p = self.p_at(t)
        dist = p.los_clinical_emergency_d if method == "emergency" else p.los_clinical_elective_d
        d = dist.draw(rng)
        return d if t + (d + PREHISTORY_MAX_DELAY_D) * DAY > self.warm_start else -1.0

    def _direct(self, org: Organisation, t0: int, t1: int, *, feedback: bool, prehistory: bool = False) -> None:
        """GP/SDEC emergency admissions, busiest in the day; with ``feedback``, more when beds are short of the
        target occupancy and fewer when over it, so occupancy stays near the target as it does in a real hospital."""
        rng = self.rng_admit
        _, _, direct, _ = self._org_rates(org)
        steps = self.occupancy_steps[org.code]
        target = self.params.target_ga_occupancy * sum(s.adult_ga_beds for s in org.sites)
        beds = max(1, sum(s.adult_ga_beds for s in org.sites))
        self._steer_hour, self._steer_occupied = -1, 0
        if feedback:
            self._steer_occupied = steps[0]
            self._steer_hour = 0
        cur = t0
        while cur < t1:
            nxt = min((cur // HOUR + 1) * HOUR, t1)
            factor = 1.0
            if feedback:
                hour = (cur - self.feedback_start) // HOUR
                while self._steer_hour < hour:
                    self._steer_hour += 1
                    self._steer_occupied += steps[self._steer_hour]
                factor = max(0.0, 1 + FEEDBACK_GAIN * (target - self._steer_occupied) / beds)
            local_t = local(cur)
            rate = direct * factor * ED_TYPE3_BY_HOUR[local_t.hour] * ED_BY_WEEKDAY[local_t.weekday()] / HOUR
            x = float(cur)
            while rate > 0:
                x += rng.expovariate(rate)
                if x >= nxt:
                    break
                c = self._clinical_or_skip(rng, "emergency", int(x), prehistory)
                if c is None or c >= 0:
                    self._admit_other(org, int(x), "emergency", c)
            cur = nxt
        self._steer_hour, self._steer_occupied = -1, 0

    def _electives(self, org: Organisation, t0: int, t1: int, prehistory: bool = False) -> None:
        """Elective admissions on the morning of their operation, mostly Monday to Friday."""
        rng = self.rng_admit
        day = local_date(t0)
        while at_local(day, 0) < t1:
            p = self.p_at(at_local(day, 12))
            lam = p.elective_per_weekday if day.weekday() < 5 else p.elective_per_weekend_day
            for _ in range(poisson(rng, lam)):
                t = at_local(day, rng.uniform(7, 12))
                if t0 <= t < t1:
                    c = self._clinical_or_skip(rng, "elective", t, prehistory)
                    if c is None or c >= 0:
                        self._admit_other(org, t, "elective", c)
            day += dt.timedelta(days=1)

    def _prehistory(self) -> None:
        """Spells already in a bed when the warm-up starts, drawn from the same admission streams run for months
        before it: their earlier events (admission, transfers, ready dates) come out at their true, earlier times.

        The ED is not simulated before the warm-up, so its admissions come from a stream at the ED's admission rate.
        """
        t0 = self.warm_start - PREHISTORY_DAYS * DAY
        for org in self.acute:
            rng = self.rng_admit
            adult, child, _, _ = self._org_rates(org)
            ed_site = next((s for s in org.sites if "1" in s.ed_department_types), None)
            if ed_site is not None and adult + child > 0:
                steady = _steady_rate(adult + child)
                for t in self.arrivals(rng, t0, self.warm_start, steady, ED_TYPE1_BY_HOUR, ED_BY_WEEKDAY):
                    if rng.random() < child / (adult + child):
                        if t > self.warm_start - 30 * DAY:
                            self._admit_emergency(org, ed_site, t, rng.randint(0, 15))
                        continue
                    c = self._clinical_or_skip(rng, "emergency", t, True)
                    if c is not None and c >= 0:
                        self._admit_emergency(org, ed_site, t, age_of(rng, 0.0, 64, 19), c)
            self._electives(org, t0, self.warm_start, prehistory=True)
            self._direct(org, t0, self.feedback_start, feedback=False, prehistory=True)

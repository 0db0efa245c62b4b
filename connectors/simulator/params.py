"""Scenario parameters of the LLR simulator, in one place so that every number is visible and can be argued with.

Each field says where its value comes from:

- ``[seed]``: the LLR seed documents, via ``shared/research/seed_digest.md`` section 8 (reference in brackets);
- ``[external]``: an order of magnitude from outside the seeds (seed digest section 8.5 or national statistics);
- ``[assumption]``: chosen by us so that the indicators land where the seeds say they sit (the calibration each
  one serves is named), not a published figure.

Durations are lognormal (:class:`Lognormal`: a median and a log-scale spread), the shape hospital and ambulance
times have: most short, a long right tail. Units are in the field names (``_min`` minutes, ``_h`` hours, ``_d``
days).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Lognormal:
    """A positive duration: ``median * exp(N(0, sigma))``, capped at ``cap`` medians so no draw is absurd."""

    median: float
    sigma: float
    cap: float = 8.0

    def draw(self, rng: random.Random) -> float:
        return self.median * min(math.exp(rng.gauss(0.0, self.sigma)), self.cap)

    def scaled(self, factor: float) -> Lognormal:
        return replace(self, median=self.median * factor)


def _normalised(weights: tuple[float, ...]) -> tuple[float, ...]:
    total = sum(weights)
    return tuple(w / total for w in weights)


# Share of a day's arrivals in each local hour (00-01 ... 23-24), normalised. [external] shape of the NHS England
# A&E arrivals-by-hour profile: trough 04:00-06:00, steep rise from 08:00, peak late morning, plateau to the evening.
# fmt: off
ED_TYPE1_BY_HOUR = _normalised(
    (2.6, 2.1, 1.7, 1.5, 1.3, 1.3, 1.6, 2.4, 3.9, 5.4, 6.2, 6.4, 6.2, 6.0, 5.8, 5.6, 5.6, 5.5, 5.4, 5.2, 4.8, 4.3, 3.7, 3.1)
)
# [assumption] an urgent treatment centre is busier in the day and much quieter overnight than a type 1 ED.
ED_TYPE3_BY_HOUR = _normalised(
    (1.2, 0.8, 0.6, 0.5, 0.4, 0.5, 0.9, 2.2, 4.6, 6.6, 7.4, 7.4, 7.0, 6.8, 6.6, 6.4, 6.3, 6.2, 6.0, 5.6, 4.9, 4.0, 3.0, 2.1)
)
# [external] 999 demand is flatter than ED walk-in demand: busy from mid-morning, never quiet overnight.
AMBULANCE_BY_HOUR = _normalised(
    (3.3, 2.9, 2.6, 2.4, 2.2, 2.2, 2.5, 3.2, 4.2, 4.9, 5.3, 5.4, 5.3, 5.1, 5.0, 4.9, 4.9, 4.9, 4.8, 4.7, 4.5, 4.2, 3.9, 3.6)
)
# fmt: on
# Relative demand Monday..Sunday (mean 1). [assumption] Monday is the busiest ED day, the weekend quieter.
ED_BY_WEEKDAY = (1.10, 1.01, 0.99, 0.98, 0.98, 0.95, 0.99)
AMBULANCE_BY_WEEKDAY = (1.02, 0.98, 0.97, 0.98, 1.01, 1.03, 1.01)


@dataclass(frozen=True)
class ScenarioParams:
    """Every tunable number of one scenario. ``NORMAL`` is a typical winter weekday-ish system; ``SURGE`` a bad day."""

    name: str

    # --- ED (per site with the department type) ---------------------------------------------------------------
    ed_type1_per_day: float = 600.0  # [external §8.5] 500-700 arrivals/day at LRI; ambulance arrivals included
    ed_type3_per_day: float = 200.0  # [assumption] co-located urgent treatment centre
    ed_type2_per_day: float = 30.0  # [assumption] single-specialty department, only if a site configures one
    ed_type3_ambulance_share: float = 0.0  # [assumption] crews convey to the type 1 department
    ed_other_mode_share: float = 0.04  # [assumption] police, other transport ("other" arrival mode)
    ed_cancel_share: float = 0.015  # [assumption] brief: 1-2% registered in error (walk-in and other only)
    ed_child_share_walk_in: float = 0.22  # [external] about a fifth of type 1 attenders are under 16
    ed_child_share_ambulance: float = 0.06  # [external]
    ed_child_share_type3: float = 0.30  # [assumption]
    ed_admit_share_ambulance: float = 0.45  # [external] ~half of conveyed patients are admitted
    ed_admit_share_walk_in: float = 0.22  # [assumption] so ~30% of all type 1 attenders are admitted (brief)
    ed_admit_child_factor: float = 0.5  # [assumption] children are admitted half as often as adults
    ed_left_share: float = 0.04  # [external] left before treatment complete
    ed_transfer_share: float = 0.01  # [assumption] transferred to another provider
    ed_died_share: float = 0.001  # [external]
    ed_type3_left_share: float = 0.03  # [assumption]
    ed_type3_transfer_share: float = 0.03  # [assumption] sent on to the type 1 department or elsewhere
    ed_dta_share: float = 0.92  # [assumption] admitted attendances with a recorded decision to admit
    # Length of stay from arrival, by outcome. [assumption] calibrated so the all-types 4-hour % over a day is
    # ~73-79% in normal (type 1 ~70%, type 3 ~99%) around the 78% 2025/26 target; 12-hour stays a few % of type 1.
    ed_los_admitted_min: Lognormal = Lognormal(330, 0.55)
    ed_los_discharged_min: Lognormal = Lognormal(150, 0.55)
    ed_los_left_min: Lognormal = Lognormal(100, 0.6)
    ed_los_type3_min: Lognormal = Lognormal(70, 0.55)
    ed_handover_min: Lognormal = Lognormal(22, 0.55)  # [assumption] brief: typically 10-60 min after arrival

    # --- Ambulance (EMAS incidents for the ICB's population) ------------------------------------------------------
    amb_incidents_per_day: float = 360.0  # [assumption] brief 350-450/day; seeds give no volume (§8.3). With the
    # conveyance below, ~200 conveyances/day = ~34% of 600 type 1 arrivals (brief: 30-35% ambulance share)
    amb_category_mix: tuple[float, float, float, float] = (0.10, 0.60, 0.25, 0.05)  # [external] AQI national mix
    amb_recategorise_share: float = 0.07  # [assumption]
    amb_hear_and_treat_share: tuple[float, float, float, float] = (0.0, 0.0, 0.12, 0.25)  # [assumption] by category
    amb_rrv_first_share: tuple[float, float, float, float] = (0.40, 0.15, 0.05, 0.02)  # [assumption]
    amb_rrv_only_share: float = 0.35  # [assumption] of RRV-first incidents, resolved without an ambulance
    amb_convey_share: float = 0.62  # [assumption] of incidents with an ambulance on scene; ~56% of all (brief ~60%)
    # Response (clock start to first transport-capable arrival), by category. [external] AQI 2024/25 orders of
    # magnitude; Cat 2 mean ~30 min in normal (the 2025/26 operational target), p90 ~60.
    amb_response_min: tuple[Lognormal, Lognormal, Lognormal, Lognormal] = (
        Lognormal(7.5, 0.45),
        Lognormal(23.0, 0.7),
        Lognormal(70.0, 0.9),
        Lognormal(95.0, 0.9),
    )
    amb_on_scene_min: Lognormal = Lognormal(35, 0.4)  # [external]
    amb_travel_min: Lognormal = Lognormal(18, 0.45)  # [assumption] Leicestershire and Rutland distances
    amb_see_and_treat_min: Lognormal = Lognormal(55, 0.45)  # [external]
    amb_crew_clear_min: Lognormal = Lognormal(14, 0.4)  # [assumption] after handover

    # --- Beds (adult general & acute across the acute organisation's sites) --------------------------------------
    # [external] 92% planning assumption; UHL runs hotter. Direct (GP/SDEC) admissions steer towards it hour by
    # hour; beds fill overnight and empty in the afternoon around it (brief: 90-95% at the start).
    target_ga_occupancy: float = 0.94
    elective_per_weekday: float = 40.0  # [assumption] overnight elective admissions, mostly Monday-Friday
    elective_per_weekend_day: float = 5.0  # [assumption]
    # Time from admission until the patient no longer meets the criteria to reside. [assumption] with the discharge
    # delays below gives a length of stay with median ~3.5 days and a tail past 30 days (brief).
    los_clinical_emergency_d: Lognormal = Lognormal(2.6, 1.0, cap=40.0)
    los_clinical_elective_d: Lognormal = Lognormal(2.0, 0.8, cap=30.0)
    los_paediatric_d: Lognormal = Lognormal(1.2, 0.9)  # [assumption]
    critical_care_share_emergency: float = 0.03  # [external] of adult emergency admissions
    critical_care_share_elective: float = 0.02  # [external] planned post-operative
    critical_care_d: Lognormal = Lognormal(2.0, 0.7)  # [external] then step-down to an adult G&A ward
    died_share: float = 0.03  # [external] in-hospital deaths of adult emergency spells
    assessment_transfer_share: float = 0.65  # [assumption] moved from the assessment unit to a base ward
    assessment_stay_h: Lognormal = Lognormal(14, 0.6)  # [assumption]
    escalation_share: float = 0.025  # [assumption] spells that spend time in an escalation bed
    transfer_cancel_share: float = 0.02  # [assumption] of ward transfers, keyed in error and undone
    admission_cancel_share: float = 0.005  # [assumption] brief ~0.5%; half are re-admitted under the same spell
    discharge_cancel_share: float = 0.005  # [assumption] brief ~0.5%
    update_share: float = 0.04  # [assumption] spells with a corrected admission record (A08)

    # --- Discharge (criteria to reside, discharge ready date, pathways, plans) ----------------------------------
    # P0 home, P1 home with support, P2 bed-based recovery, P3 care home. [seed §8.2] P2 = 8% of discharges
    # (local); the rest [assumption] per the brief: P0 50-60%, P1 25-30%, P3 ~3%.
    pathway_mix: tuple[float, float, float, float] = (0.60, 0.28, 0.085, 0.035)
    no_drd_short_stay_share: float = 0.7  # [assumption] stays under a day: most go home with no ready date recorded
    no_drd_share: float = 0.10  # [assumption] longer stays with no ready date recorded (count as on time)
    drd_unknown_pathway_share: float = 0.10  # [assumption] ready date set before the pathway is known
    pathway_assigned_after_h: Lognormal = Lognormal(3.0, 0.7)  # [assumption] then the pathway is agreed
    drd_retrospective_share: float = 0.15  # [assumption] non-P0 ready dates recorded a day or two late
    drd_future_share: float = 0.04  # [assumption] set the evening before for tomorrow (a plan, not yet NCTR)
    drd_clear_share: float = 0.06  # [assumption] deteriorate: ready date cleared, set again days later
    drd_reset_after_d: Lognormal = Lognormal(2.5, 0.6)  # [assumption]
    # [seed §8.2] DRD on-day discharge ~85% overall. With the brief's pathway mix (40% P1-P3, who mostly wait) the
    # indicator lands at ~65-68%; P0 alone at ~87% (local P0 target 66%).
    p0_on_drd_share: float = 0.90  # of P0 ready dates set early enough to leave the same day
    # Referral to the integrated discharge function after the ready date is set, and the plan after the referral.
    # [assumption] sized with Little's law so MOFD awaiting a plan averages ~95-100 through a day, 80-125 at any hour
    # ([seed §8.2] target <=100, typical "around or above 100"); P2 plan within 48 h ~90% ([seed] target 90%).
    # Referrals and plans are recorded in working hours (below), which is what makes the count swing in the day.
    referral_after_h: tuple[Lognormal, Lognormal, Lognormal] = (
        Lognormal(1.0, 0.8),
        Lognormal(2.0, 0.8),
        Lognormal(4.0, 0.8),
    )
    plan_after_h: tuple[Lognormal, Lognormal, Lognormal] = (
        Lognormal(6.0, 0.9),
        Lognormal(16.0, 0.6),
        Lognormal(26.0, 0.7),
    )
    # From plan in place to leaving hospital. [seed §8.2] P2 waiting 67-108 people (NCTR on pathway 2: ~60-100 here);
    # P1 delay ~2 days in the seeds, ~1 day here (a longer P1 wait would break the on-DRD share further).
    discharge_after_plan_h: tuple[Lognormal, Lognormal, Lognormal] = (
        Lognormal(4.0, 0.8),
        Lognormal(54.0, 0.6),
        Lognormal(48.0, 0.7),
    )
    working_hours: tuple[float, float] = (8.0, 18.0)  # [assumption] when ready dates and referrals are recorded
    plan_hours: tuple[float, float] = (8.0, 20.0)  # [assumption] when plans are confirmed
    discharge_hours: tuple[float, float] = (9.0, 21.0)  # [assumption] when patients leave

    # --- Scenario timing --------------------------------------------------------------------------------------
    regime_lead_h: float = 0.0  # the scenario's parameters apply from start - lead; before that NORMAL applies
    notes: str = field(default="", compare=False)


NORMAL = ScenarioParams(name="normal", notes="a typical day: 4-hour ~76%, Cat 2 ~28 min, MOFD awaiting plan ~95-100")

SURGE = replace(
    NORMAL,
    name="surge",
    notes="a bad winter day building since noon the day before: demand up, flow down, plans slower",
    regime_lead_h=12.0,  # [assumption] the surge starts at noon the day before the simulated day
    ed_type1_per_day=660.0,  # [seed §8.3] flow into acute care +11%
    ed_type3_per_day=220.0,
    amb_incidents_per_day=410.0,
    ed_los_admitted_min=Lognormal(480, 0.55),  # exit block: admitted patients wait for beds
    ed_los_discharged_min=Lognormal(175, 0.55),
    ed_los_left_min=Lognormal(130, 0.6),
    ed_los_type3_min=Lognormal(85, 0.55),
    ed_handover_min=Lognormal(55, 0.6),  # queues at the front door
    amb_response_min=(
        Lognormal(9.0, 0.5),
        Lognormal(45.0, 0.75),
        Lognormal(140.0, 0.9),
        Lognormal(180.0, 0.9),
    ),
    escalation_share=0.08,
    # [assumption] the integrated discharge function is swamped: referrals and plans take two to three times longer
    referral_after_h=(Lognormal(4.0, 0.8), Lognormal(8.0, 0.8), Lognormal(12.0, 0.8)),
    plan_after_h=(Lognormal(26.0, 0.8), Lognormal(60.0, 0.6), Lognormal(120.0, 0.7)),
    drd_unknown_pathway_share=0.2,
)

SCENARIO_PARAMS: dict[str, ScenarioParams] = {p.name: p for p in (NORMAL, SURGE)}

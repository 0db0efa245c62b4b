"""Discharge-ready-date and pathway-2 indicators from the pure-Python engine, against hand-worked cases.

Definitions: INDICATORS.md (`discharged_on_drd_pct`, `_p0`, `drd_delay_days_mean`, `discharge_delay_days_mean`,
`p2_plan_48h_pct`, `p2_referrals_over_48h_now`) with the decisions in docs/definitions.md. Times without an offset
are Europe/London local time; T = Friday 20 March 2026 12:00 (GMT), so `today` is 20 March, `mtd` 1–20 March and
`month` is February. Every expected number is worked out in the comment next to it.
"""

from __future__ import annotations

import random

import pytest
from events_factory import (
    Snapshot,
    admission_cancelled,
    admitted,
    config,
    discharge_cancelled,
    discharged,
    drd_cleared,
    drd_set,
    evaluate,
    plan_in_place,
    referral_made,
    when,
)

from schemas.events import Envelope
from streams.engine import Engine

T = "2026-03-20T12:00"
DRD_INDICATORS = (
    "discharged_on_drd_pct",
    "discharged_on_drd_pct_p0",
    "drd_delay_days_mean",
    "discharge_delay_days_mean",
)


def drd_spells() -> list[Envelope]:
    """Eight adult G&A spells at RWEAA; which count, and their delays, are worked out spell by spell."""
    return [
        # S1: ready 5 March, discharged 5 March on pathway 0 → counted, on time (delay 0), P0.
        admitted("S1", "2026-03-01T10:00"),
        drd_set("S1", "2026-03-02T09:00", "2026-03-05", pathway=0),
        discharged("S1", "2026-03-05T15:00", pathway=0),
        # S2: ready 6 March, discharged 9 March on pathway 1 → counted, 3 days late.
        admitted("S2", "2026-03-02T09:00"),
        drd_set("S2", "2026-03-04T09:00", "2026-03-06", pathway=1),
        discharged("S2", "2026-03-09T11:00", pathway=1),
        # S3: no ready date at all, one night, pathway 0 → counted, on time (DRD guidance: blank = no delay), P0.
        admitted("S3", "2026-03-03T08:00"),
        discharged("S3", "2026-03-04T10:00", pathway=0),
        # S4: admitted and discharged the same local day → not counted (a stay of at least one night is required).
        admitted("S4", "2026-03-04T08:00"),
        drd_set("S4", "2026-03-04T09:00", "2026-03-04", pathway=0),
        discharged("S4", "2026-03-04T20:00", pathway=0),
        # S5: ready 12 March, discharged today on pathway 0 → counted in today and mtd, 8 days late, P0.
        admitted("S5", "2026-03-10T08:00"),
        drd_set("S5", "2026-03-11T09:00", "2026-03-12", pathway=0),
        discharged("S5", "2026-03-20T10:00", pathway=0),
        # S6: critical care, not adult G&A → not counted.
        admitted("S6", "2026-03-05T08:00", bed_category="critical_care"),
        discharged("S6", "2026-03-08T08:00", pathway=0),
        # S7: February: ready 3 Feb, discharged 5 Feb on pathway 2 → counted in `month` only, 2 days late, not P0.
        admitted("S7", "2026-02-01T08:00"),
        drd_set("S7", "2026-02-02T09:00", "2026-02-03", pathway=2),
        discharged("S7", "2026-02-05T12:00", pathway=2),
        # S8: discharged 8 March, but the discharge is cancelled at 12:00 → still open, not counted.
        admitted("S8", "2026-03-06T08:00"),
        drd_set("S8", "2026-03-06T09:00", "2026-03-07", pathway=1),
        discharged("S8", "2026-03-08T10:00", pathway=1),
        discharge_cancelled("S8", "2026-03-08T12:00"),
    ]


def triple(snap: Snapshot, indicator: str, window: str) -> tuple[float | None, float | None, float | None]:
    row = snap.row(indicator, window)
    return (None if row.value is None else round(row.value, 6), row.numerator, row.denominator)


@pytest.mark.parametrize(
    ("indicator", "window", "expected"),
    [
        # mtd counts S1 (on time), S2 (3 late), S3 (on time, no DRD), S5 (8 late): 2 on time of 4 = 50%.
        ("discharged_on_drd_pct", "mtd", (50.0, 2.0, 4.0)),
        # P0 at discharge: S1, S3, S5 → 2 of 3 = 66.666667%.
        ("discharged_on_drd_pct_p0", "mtd", (66.666667, 2.0, 3.0)),
        # Delayed only: S2 3 days + S5 8 days = 11 over 2 spells = 5.5.
        ("drd_delay_days_mean", "mtd", (5.5, 11.0, 2.0)),
        # All counted spells, on time = 0: (0 + 3 + 0 + 8) / 4 = 2.75.
        ("discharge_delay_days_mean", "mtd", (2.75, 11.0, 4.0)),
        # today: S5 alone: 0 of 1 on time; P0 0 of 1; delay 8 / 1; all-spell delay 8 / 1.
        ("discharged_on_drd_pct", "today", (0.0, 0.0, 1.0)),
        ("discharged_on_drd_pct_p0", "today", (0.0, 0.0, 1.0)),
        ("drd_delay_days_mean", "today", (8.0, 8.0, 1.0)),
        ("discharge_delay_days_mean", "today", (8.0, 8.0, 1.0)),
        # month (February): S7 alone: 0 of 1 on time; no P0 spell (0/0, no value); delay 2 / 1.
        ("discharged_on_drd_pct", "month", (0.0, 0.0, 1.0)),
        ("discharged_on_drd_pct_p0", "month", (None, 0.0, 0.0)),
        ("drd_delay_days_mean", "month", (2.0, 2.0, 1.0)),
        ("discharge_delay_days_mean", "month", (2.0, 2.0, 1.0)),
    ],
)
def test_discharge_ready_date_indicators(indicator: str, window: str, expected: tuple) -> None:
    assert triple(evaluate(drd_spells(), T), indicator, window) == expected


def test_drd_indicators_do_not_depend_on_delivery_order_or_duplicates() -> None:
    events = drd_spells()
    delivered = events + events[::3]  # a third of the events delivered twice (same event_id)
    random.Random(5).shuffle(delivered)
    in_order, shuffled = evaluate(events, T), evaluate(delivered, T)
    for indicator in DRD_INDICATORS:
        for window in ("today", "mtd", "month"):
            assert triple(shuffled, indicator, window) == triple(in_order, indicator, window), (indicator, window)


def test_ready_date_cleared_before_discharge_means_on_time() -> None:
    # Ready 2 March, cleared 3 March (not ready after all), discharged 6 March: no DRD in force → on time, delay 0.
    events = [
        admitted("C1", "2026-03-01T08:00"),
        drd_set("C1", "2026-03-01T12:00", "2026-03-02", pathway=1),
        drd_cleared("C1", "2026-03-03T09:00"),
        discharged("C1", "2026-03-06T12:00", pathway=1),
    ]
    snap = evaluate(events, T)
    assert triple(snap, "discharged_on_drd_pct", "mtd") == (100.0, 1.0, 1.0)
    assert triple(snap, "drd_delay_days_mean", "mtd") == (None, 0.0, 0.0)  # no delayed spell: no mean
    assert triple(snap, "discharge_delay_days_mean", "mtd") == (0.0, 0.0, 1.0)


def test_delay_counts_local_dates_across_the_spring_clock_change() -> None:
    # Ready Saturday 28 March; discharged Monday 30 March 00:30 BST (= 29 March 23:30 UTC): local date 30 March,
    # so 2 days late, not 1 as the UTC date would say. T = 30 March 12:00 BST.
    events = [
        admitted("K1", "2026-03-20T08:00"),
        drd_set("K1", "2026-03-27T09:00", "2026-03-28", pathway=1),
        discharged("K1", "2026-03-30T00:30", pathway=1),
    ]
    snap = evaluate(events, "2026-03-30T12:00")
    assert triple(snap, "drd_delay_days_mean", "today") == (2.0, 2.0, 1.0)


def p2_referrals() -> list[Envelope]:
    """Pathway-2 referrals; which count, and whether their plans came within 48 h, worked out one by one."""
    return [
        # R1: made 10 Mar 09:00, plan 12 Mar 09:00 = exactly 48:00:00 → within. A second referral_made for the same
        # id later (12 Mar 20:00) is ignored: the first counts.
        admitted("P1", "2026-03-01T08:00"),
        referral_made("P1", "2026-03-10T09:00", "r1", 2),
        plan_in_place("P1", "2026-03-12T09:00", "r1"),
        referral_made("P1", "2026-03-12T20:00", "r1", 2),
        # R2: made 11 Mar 10:00, plan 13 Mar 10:01 = 48 h 1 min → not within.
        admitted("P2", "2026-03-01T08:00"),
        referral_made("P2", "2026-03-11T10:00", "r2", 2),
        plan_in_place("P2", "2026-03-13T10:01", "r2"),
        # R3: made 15 Mar 12:00, no plan, spell open: 48 h elapsed (5 days by T) → counted, not within; over 48 h now.
        admitted("P3", "2026-03-01T08:00"),
        referral_made("P3", "2026-03-15T12:00", "r3", 2),
        # R4: made 19 Mar 08:00: only 28 h by T → not yet counted, and not over 48 h.
        admitted("P4", "2026-03-01T08:00"),
        referral_made("P4", "2026-03-19T08:00", "r4", 2),
        # R5: a pathway-1 referral → no pathway-2 indicator counts it. A plan for an unknown referral is ignored.
        admitted("P5", "2026-03-01T08:00"),
        referral_made("P5", "2026-03-10T09:00", "r5", 1),
        plan_in_place("P5", "2026-03-11T09:00", "no-such-referral"),
        # R6: made 12 Mar 09:00, no plan, spell discharged 16 Mar → counted (elapsed), not within; not "now" (closed).
        admitted("P6", "2026-03-01T08:00"),
        referral_made("P6", "2026-03-12T09:00", "r6", 2),
        discharged("P6", "2026-03-16T12:00", pathway=2),
        # R7: February: made 20 Feb 10:00, plan 21 Feb 10:00 → within; in `month` only.
        admitted("P7", "2026-02-10T08:00"),
        referral_made("P7", "2026-02-20T10:00", "r7", 2),
        plan_in_place("P7", "2026-02-21T10:00", "r7"),
    ]


def test_pathway_2_plans_within_48_hours() -> None:
    snap = evaluate(p2_referrals(), T)
    # mtd: R1 (within), R2, R3, R6 (not) → 1 of 4 = 25%; R4 not yet 48 h old, R5 not pathway 2, R7 in February.
    assert triple(snap, "p2_plan_48h_pct", "mtd") == (25.0, 1.0, 4.0)
    # month (February): R7 → 1 of 1 = 100%.
    assert triple(snap, "p2_plan_48h_pct", "month") == (100.0, 1.0, 1.0)
    # Open spells with a pathway-2 referral older than 48 h and no plan: R3 only.
    assert snap.value("p2_referrals_over_48h_now", "live") == 1.0


def test_pathway_2_referral_at_exactly_48_hours_is_not_over() -> None:
    events = [admitted("Q1", "2026-03-01T08:00"), referral_made("Q1", "2026-03-18T12:00", "q1", 2)]
    # At T it is exactly 48:00:00 old: elapsed for the percentage (counted, no plan), but not *more* than 48 h.
    snap = evaluate(events, T)
    assert triple(snap, "p2_plan_48h_pct", "mtd") == (0.0, 0.0, 1.0)
    assert snap.value("p2_referrals_over_48h_now", "live") == 0.0
    assert evaluate(events, "2026-03-20T12:00:01").value("p2_referrals_over_48h_now", "live") == 1.0


def test_pathway_2_over_48h_now_follows_a_spell_through_discharge_and_its_cancellations() -> None:
    """One engine fed step by step (as the worker is), so the spell's fact changes in place: an open spell with an
    overdue pathway-2 referral counts; discharged, it does not; the discharge cancelled, it counts again; the
    admission cancelled, it never existed. A pathway-1 referral on another open spell never counts."""
    engine = Engine(config())

    def over_48h_now(events: list[Envelope], at: str) -> float | None:
        engine.ingest(events)
        return Snapshot(engine.snapshot(when(at))).value("p2_referrals_over_48h_now", "live")

    # R1 made 15 Mar 12:00 with no plan: over 48 h from 17 Mar 12:00:01.
    opened = [admitted("Z1", "2026-03-01T08:00"), referral_made("Z1", "2026-03-15T12:00", "z1", 2)]
    other = [admitted("Z2", "2026-03-01T08:00"), referral_made("Z2", "2026-03-10T12:00", "z2", 1)]
    assert over_48h_now(opened + other, "2026-03-18T12:00") == 1.0
    assert over_48h_now([discharged("Z1", "2026-03-18T13:00", pathway=2)], "2026-03-18T14:00") == 0.0
    assert over_48h_now([discharge_cancelled("Z1", "2026-03-18T15:00")], "2026-03-18T16:00") == 1.0
    assert over_48h_now([admission_cancelled("Z1", "2026-03-18T17:00")], "2026-03-18T18:00") == 0.0


# --- Days when the clocks change -------------------------------------------------------------------------------------
# 48 hours are real hours (UTC instants subtracted); "one night" and the delay compare local dates. Times here are UTC.


def test_pathway_2_48_hours_are_real_hours_across_the_spring_clock_change() -> None:
    # Clocks go forward at 2026-03-29T01:00Z. All three referrals made Saturday 28 March 12:00 GMT (12:00Z); their
    # 48 hours end Monday 30 March 12:00Z = 13:00 BST (the wall clock says 49 hours).
    events = [
        admitted("V1", "2026-03-20T08:00Z"),
        referral_made("V1", "2026-03-28T12:00Z", "v1", 2),
        plan_in_place("V1", "2026-03-30T11:30Z", "v1"),  # 12:30 BST: 47.5 real hours → within
        admitted("V2", "2026-03-20T08:00Z"),
        referral_made("V2", "2026-03-28T12:00Z", "v2", 2),
        plan_in_place("V2", "2026-03-30T12:30Z", "v2"),  # 13:30 BST: 48.5 hours → not within
        admitted("V3", "2026-03-20T08:00Z"),
        referral_made("V3", "2026-03-28T12:00Z", "v3", 2),  # no plan
    ]
    # 12:59:59 BST (11:59:59Z): 47:59:59 have elapsed → none counted yet, none over 48 h now.
    snap = evaluate(events, "2026-03-30T11:59:59Z")
    assert triple(snap, "p2_plan_48h_pct", "mtd") == (None, 0.0, 0.0)
    assert snap.value("p2_referrals_over_48h_now", "live") == 0.0
    # 13:00 BST (12:00Z): all three counted, V1 within → 1 of 3; V3 exactly 48 h old, not yet *more*.
    snap = evaluate(events, "2026-03-30T12:00Z")
    assert triple(snap, "p2_plan_48h_pct", "mtd") == (33.333333, 1.0, 3.0)
    assert snap.value("p2_referrals_over_48h_now", "live") == 0.0
    # One second later V2 (its plan comes at 12:30Z) and V3 are both over 48 h with no plan; from 12:30Z, V3 alone.
    assert evaluate(events, "2026-03-30T12:00:01Z").value("p2_referrals_over_48h_now", "live") == 2.0
    assert evaluate(events, "2026-03-30T12:30Z").value("p2_referrals_over_48h_now", "live") == 1.0


def test_pathway_2_over_48_hours_across_the_autumn_clock_change() -> None:
    # Clocks go back at 2026-10-25T01:00Z. Made Saturday 24 October 10:00 BST (09:00Z): 48 hours end Monday 26 October
    # 09:00Z = 09:00 GMT, when the wall clock says only 47 hours.
    events = [admitted("W1", "2026-10-20T08:00Z"), referral_made("W1", "2026-10-24T09:00Z", "w1", 2)]
    assert evaluate(events, "2026-10-26T09:00Z").value("p2_referrals_over_48h_now", "live") == 0.0
    snap = evaluate(events, "2026-10-26T09:00:01Z")
    assert snap.value("p2_referrals_over_48h_now", "live") == 1.0
    assert triple(snap, "p2_plan_48h_pct", "mtd") == (0.0, 0.0, 1.0)


def test_one_night_and_delays_by_local_date_on_clock_change_days() -> None:
    events = [
        # N1: admitted 29 March 23:30Z = 00:30 BST on 30 March, discharged 30 March 21:00 BST → the same local day:
        # not counted (the UTC dates, 29 and 30, would count it).
        admitted("N1", "2026-03-29T23:30Z"),
        discharged("N1", "2026-03-30T20:00Z", pathway=0),
        # N2: admitted 23:30 BST on 29 March (22:30Z), discharged 09:00 BST on 30 March: one night; no ready date →
        # on time.
        admitted("N2", "2026-03-29T22:30Z"),
        discharged("N2", "2026-03-30T08:00Z", pathway=0),
        # N3: admitted 01:30 BST on 25 October (00:30Z), discharged 23:30 GMT the same 25-hour day → not counted.
        admitted("N3", "2026-10-25T00:30Z"),
        drd_set("N3", "2026-10-25T10:00Z", "2026-10-25", pathway=1),
        discharged("N3", "2026-10-25T23:30Z", pathway=1),
        # N4: admitted 23:30 BST on 24 October (22:30Z), ready that day, discharged 01:30 BST on 25 October (00:30Z):
        # one night, discharged the local day after its ready date → 1 day late.
        admitted("N4", "2026-10-24T22:30Z"),
        drd_set("N4", "2026-10-24T22:40Z", "2026-10-24", pathway=1),
        discharged("N4", "2026-10-25T00:30Z", pathway=1),
    ]
    spring = evaluate(events, "2026-03-30T21:00Z")
    assert triple(spring, "discharged_on_drd_pct", "today") == (100.0, 1.0, 1.0)  # N2 alone
    assert triple(spring, "discharged_on_drd_pct_p0", "today") == (100.0, 1.0, 1.0)
    autumn = evaluate(events, "2026-10-25T23:59Z")
    assert triple(autumn, "discharged_on_drd_pct", "today") == (0.0, 0.0, 1.0)  # N4 alone, late
    assert triple(autumn, "drd_delay_days_mean", "today") == (1.0, 1.0, 1.0)
    assert triple(autumn, "discharge_delay_days_mean", "today") == (1.0, 1.0, 1.0)

"""Bed-state and discharge-readiness indicators (live) from the pure-Python engine, against hand-worked cases.

Times without an offset are Europe/London local time. March 2026 before the 29th is GMT (local = UTC); June is BST.
Every expected number is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from events_factory import (
    Snapshot,
    admission_cancelled,
    admitted,
    adt_updated,
    config,
    discharge_cancelled,
    discharged,
    drd_cleared,
    drd_set,
    evaluate,
    pathway_assigned,
    plan_in_place,
    referral_made,
    transfer_cancelled,
    transferred,
    when,
)

from streams.clock import local_date
from streams.engine import Engine

BED_SCOPES = (("site", "RWEAA"), ("org", "RWE"), ("system", "QK1"))


def occupied(snap: Snapshot, scope: tuple[str, str] = ("system", "QK1")) -> float | None:
    return snap.value("ga_beds_occupied", "live", *scope)


def nctr(snap: Snapshot, scope: tuple[str, str] = ("system", "QK1")) -> float | None:
    return snap.value("nctr_count", "live", *scope)


# --- Worked example 4: the spell's NCTR state around the ready dates -------------------------------------------------


def _example4(discharge_at: str) -> list:
    return [
        admitted("ex4", "2026-03-03T14:00"),
        drd_set("ex4", "2026-03-04T10:00", "2026-03-05", pathway=1),  # ready date 5 March
        drd_cleared("ex4", "2026-03-06T09:00"),  # meets the criteria to reside again
        drd_set("ex4", "2026-03-07T10:00", "2026-03-08"),  # ready date 8 March
        discharged("ex4", discharge_at, pathway=1),
    ]


@pytest.mark.parametrize(
    ("at", "occupied_", "nctr_"),
    [
        ("2026-03-03T15:00", 1, 0),  # admitted, no ready date
        ("2026-03-04T12:00", 1, 0),  # ready date 5 March set, but in the future → not NCTR yet
        ("2026-03-04T23:59:59", 1, 0),  # still 4 March
        ("2026-03-05T00:00", 1, 1),  # 5 March: ready date ≤ today → NCTR
        ("2026-03-05T12:00", 1, 1),
        ("2026-03-06T08:59", 1, 1),  # not cleared until 09:00
        ("2026-03-06T12:00", 1, 0),  # cleared → not NCTR
        ("2026-03-07T12:00", 1, 0),  # set again to 8 March: in the future
        ("2026-03-08T00:00", 1, 1),  # 8 March → NCTR again
        ("2026-03-08T17:59", 1, 1),
        ("2026-03-08T18:00", 0, 0),  # discharged → no longer open
    ],
)
def test_example4_nctr_state_discharged_on_8_march(at: str, occupied_: int, nctr_: int) -> None:
    snap = evaluate(_example4("2026-03-08T18:00"), at)
    for scope in BED_SCOPES:
        assert occupied(snap, scope) == occupied_
        assert nctr(snap, scope) == nctr_
    if occupied_:
        row = snap.row("nctr_pct", "live")
        assert (row.numerator, row.denominator, row.value) == (nctr_, 1.0, 100.0 * nctr_)  # 0/1 or 1/1


def test_example4_spell_fact_drd_in_force_at_discharge() -> None:
    for discharge_at, delay in (("2026-03-08T18:00", 0), ("2026-03-10T18:00", 2)):
        engine = Engine(config())
        engine.ingest(_example4(discharge_at))
        fact = engine.aggregator.facts["spell"]["ex4"]
        # The DRD in force at discharge is the current period's (8 March), not the first one (5 March).
        assert fact.drd_at_discharge == dt.date(2026, 3, 8)
        assert fact.discharged_at == when(discharge_at)
        # 8 March − 8 March = 0 (on time); 10 March − 8 March = 2 days.
        assert max(0, (local_date(fact.discharged_at) - fact.drd_at_discharge).days) == delay
    # Discharged 10 March: NCTR all through 9 and 10 March until the discharge.
    events = _example4("2026-03-10T18:00")
    assert nctr(evaluate(events, "2026-03-09T12:00")) == 1.0
    assert nctr(evaluate(events, "2026-03-10T17:59")) == 1.0
    assert nctr(evaluate(events, "2026-03-10T18:00")) == 0.0


# --- ga_beds_occupied through the ADT state machine ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("07:59", 0),  # not admitted yet
        ("08:00", 1),  # admitted to adult_ga
        ("10:30", 0),  # transferred to critical_care at 10:00 → leaves G&A
        ("11:30", 1),  # A12 at 11:00 undoes the transfer → adult_ga again
        ("14:30", 0),  # discharged 14:00
        ("15:30", 1),  # A13 at 15:00: in the bed again
    ],
)
def test_transfer_cancel_and_discharge_cancel(at: str, expected: int) -> None:
    events = [
        admitted("B1", "2026-03-10T08:00"),
        transferred("B1", "2026-03-10T10:00", "critical_care"),
        transfer_cancelled("B1", "2026-03-10T11:00"),
        discharged("B1", "2026-03-10T14:00"),
        discharge_cancelled("B1", "2026-03-10T15:00"),
    ]
    snap = evaluate(events, f"2026-03-10T{at}")
    for scope in BED_SCOPES:
        assert occupied(snap, scope) == expected


def test_admission_cancel_and_readmission() -> None:
    events = [
        admitted("B2", "2026-03-10T08:00"),
        admission_cancelled("B2", "2026-03-10T09:30"),  # the spell never happened
    ]
    assert occupied(evaluate(events, "2026-03-10T09:00")) == 1.0
    assert occupied(evaluate(events, "2026-03-10T10:00")) == 0.0
    # A later adt.admitted opens it again.
    events.append(admitted("B2", "2026-03-10T11:00"))
    assert occupied(evaluate(events, "2026-03-10T11:30")) == 1.0


def test_stack_of_transfers_and_cancels() -> None:
    events = [
        admitted("B3", "2026-03-10T08:00", "adult_ga"),
        transfer_cancelled("B3", "2026-03-10T08:30"),  # nothing to undo: ignored → still adult_ga
        transferred("B3", "2026-03-10T09:00", "critical_care"),
        transferred("B3", "2026-03-10T10:00", "adult_ga", True),  # into an escalation G&A bed
        transfer_cancelled("B3", "2026-03-10T11:00"),  # undo → critical_care
        transfer_cancelled("B3", "2026-03-10T12:00"),  # undo → admission bed adult_ga
    ]
    expected = {
        "08:45": (1, 0),  # adult_ga (the cancel with nothing to pop changed nothing)
        "09:30": (0, 0),  # critical_care
        "10:30": (1, 1),  # adult_ga escalation bed
        "11:30": (0, 0),  # critical_care again
        "12:30": (1, 0),  # the admission bed
    }
    for at, (occ, esc) in expected.items():
        snap = evaluate(events, f"2026-03-10T{at}")
        assert occupied(snap) == occ, at
        assert snap.value("ga_escalation_beds_occupied", "live") == esc, at


def test_only_adult_ga_beds_count_and_updates_apply() -> None:
    events = [
        admitted("g1", "2026-03-10T08:00", "adult_ga"),
        admitted("p1", "2026-03-10T08:00", "paediatric_ga"),
        admitted("m1", "2026-03-10T08:00", "maternity"),
        admitted("u1", "2026-03-10T08:00", "other"),
        adt_updated("u1", "2026-03-10T09:00", bed_category="adult_ga"),  # A08: corrected to adult G&A
        adt_updated("g1", "2026-03-10T09:00", escalation_bed=True),  # A08: it is an escalation bed
    ]
    before = evaluate(events, "2026-03-10T08:30")
    assert occupied(before) == 1.0  # g1
    assert before.value("ga_escalation_beds_occupied", "live") == 0.0
    after = evaluate(events, "2026-03-10T09:30")
    assert occupied(after) == 2.0  # g1, u1
    assert after.value("ga_escalation_beds_occupied", "live") == 1.0  # g1


def test_escalation_beds_and_occupancy() -> None:
    events = [
        admitted("e1", "2026-03-10T08:00", "adult_ga", True, site="RWEAK"),  # escalation bed
        admitted("e2", "2026-03-10T08:00", "adult_ga", False, site="RWEAK"),
        admitted("e3", "2026-03-10T08:00", "adult_ga", False, site="RWEAK"),
        transferred("e3", "2026-03-10T09:00", "adult_ga", True),  # moves into an escalation bed
        admitted("e4", "2026-03-10T08:00", "critical_care", True, site="RWEAK"),  # not G&A
    ]
    snap = evaluate(events, "2026-03-10T10:00")
    site = ("site", "RWEAK")
    assert occupied(snap, site) == 3.0  # e1, e2, e3
    assert snap.value("ga_escalation_beds_occupied", "live", *site) == 2.0  # e1, e3
    pct = snap.row("ga_escalation_beds_pct", "live", *site)
    assert (pct.numerator, pct.denominator) == (2.0, 3.0)
    assert pct.value == pytest.approx(200.0 / 3)  # 2/3
    occ = snap.row("ga_occupancy_pct", "live", *site)
    # RWEAK base 380 + 2 escalation beds open = 382; 3/382 × 100 = 0.7853%.
    assert (occ.numerator, occ.denominator) == (3.0, 382.0)
    assert occ.value == pytest.approx(300.0 / 382)
    assert (occ.target, occ.status) == (92.0, "green")
    org = snap.row("ga_occupancy_pct", "live", "org", "RWE")
    # RWE base 860 + 410 + 380 = 1650, + 2 escalation = 1652.
    assert (org.numerator, org.denominator) == (3.0, 1652.0)
    # Nothing at RWEAA: 0 / 860 → 0%.
    assert snap.row("ga_occupancy_pct", "live", "site", "RWEAA").value == 0.0


# --- NCTR ------------------------------------------------------------------------------------------------------------


def test_nctr_count_pct_and_ctr_met_pct() -> None:
    events = [
        admitted("n1", "2026-03-01T10:00"),
        drd_set("n1", "2026-03-05T10:00", "2026-03-05", pathway=1),  # NCTR
        admitted("n2", "2026-03-02T10:00"),
        admitted("n3", "2026-03-02T10:00"),
        drd_set("n3", "2026-03-09T10:00", "2026-03-12"),  # ready date in the future → not NCTR on 10 March
        admitted("n4", "2026-03-03T10:00"),
        admitted("n5", "2026-03-03T10:00", "paediatric_ga"),
        drd_set("n5", "2026-03-05T10:00", "2026-03-05"),  # not adult G&A → not in nctr_count
        admitted("n6", "2026-03-03T10:00"),
        drd_set("n6", "2026-03-05T10:00", "2026-03-05"),
        discharged("n6", "2026-03-08T10:00"),  # discharged → not open
    ]
    snap = evaluate(events, "2026-03-10T12:00")
    for scope in BED_SCOPES:
        assert occupied(snap, scope) == 4.0  # n1..n4
        assert nctr(snap, scope) == 1.0  # n1
        pct = snap.row("nctr_pct", "live", *scope)
        assert (pct.numerator, pct.denominator, pct.value) == (1.0, 4.0, 25.0)  # 1/4
        met = snap.row("ctr_met_pct", "live", *scope)
        assert (met.numerator, met.denominator, met.value) == (3.0, 4.0, 75.0)  # (4 − 1)/4
    # On 12 March n3's ready date arrives: 2 of 4 → 50%.
    snap = evaluate(events, "2026-03-12T00:00")
    assert snap.row("nctr_pct", "live").value == 50.0
    assert snap.row("ctr_met_pct", "live").value == 50.0


def test_nctr_pct_without_occupied_beds_has_no_value() -> None:
    snap = evaluate([admitted("x", "2026-03-10T08:00", "maternity")], "2026-03-10T09:00")
    row = snap.row("nctr_pct", "live")
    assert (row.value, row.denominator, row.status) == (None, 0.0, "none")


def test_future_ready_date_becomes_nctr_at_local_midnight_in_bst() -> None:
    events = [
        admitted("bst", "2026-06-01T10:00"),
        drd_set("bst", "2026-06-10T10:00", "2026-06-12"),
    ]
    # 2026-06-11T22:59:59Z = 23:59:59 BST on 11 June → not yet.
    assert nctr(evaluate(events, "2026-06-11T22:59:59Z")) == 0.0
    # 2026-06-11T23:00:00Z = 00:00 BST on 12 June (still 11 June in UTC) → NCTR.
    assert nctr(evaluate(events, "2026-06-11T23:00:00Z")) == 1.0


def test_drd_cleared_and_set_again() -> None:
    events = [
        admitted("c", "2026-03-01T10:00"),
        drd_set("c", "2026-03-02T10:00", "2026-03-02"),
        drd_cleared("c", "2026-03-03T10:00"),
        drd_set("c", "2026-03-04T10:00", "2026-03-04"),
        drd_set("c", "2026-03-05T10:00", "2026-03-07"),  # a later event replaces the date: back to the future
    ]
    assert nctr(evaluate(events, "2026-03-02T12:00")) == 1.0
    assert nctr(evaluate(events, "2026-03-03T12:00")) == 0.0  # cleared
    assert nctr(evaluate(events, "2026-03-04T12:00")) == 1.0  # set again to 4 March
    assert nctr(evaluate(events, "2026-03-05T12:00")) == 0.0  # replaced by 7 March
    assert nctr(evaluate(events, "2026-03-07T00:00")) == 1.0


def test_discharge_cancel_reopens_an_nctr_spell() -> None:
    events = [
        admitted("r", "2026-03-01T10:00"),
        drd_set("r", "2026-03-02T10:00", "2026-03-02"),
        discharged("r", "2026-03-05T10:00"),
        discharge_cancelled("r", "2026-03-05T11:00"),
    ]
    assert (occupied(evaluate(events, "2026-03-05T10:30")), nctr(evaluate(events, "2026-03-05T10:30"))) == (0, 0)
    snap = evaluate(events, "2026-03-05T11:30")
    assert (occupied(snap), nctr(snap)) == (1.0, 1.0)  # back in the bed, still NCTR


def test_nctr_21plus_days() -> None:
    events = [
        admitted("a", "2026-02-20T10:00"),
        drd_set("a", "2026-03-01T10:00", "2026-03-01"),  # 22 March − 1 March = 21 days → counts
        admitted("b", "2026-02-20T10:00"),
        drd_set("b", "2026-03-02T10:00", "2026-03-02"),  # 20 days → not
    ]
    snap = evaluate(events, "2026-03-22T08:00")
    assert nctr(snap) == 2.0
    assert snap.value("nctr_21plus_days", "live") == 1.0
    # 23 March: b reaches 21 days.
    assert evaluate(events, "2026-03-23T08:00").value("nctr_21plus_days", "live") == 2.0


def test_nctr_21plus_days_counts_local_dates_on_clock_change_days() -> None:
    events = [
        admitted("s", "2026-02-20T10:00"),
        drd_set("s", "2026-03-09T10:00", "2026-03-09"),  # ready 9 March
        admitted("a", "2026-09-20T10:00"),
        drd_set("a", "2026-10-04T10:00", "2026-10-04"),  # ready 4 October
    ]
    # 2026-03-29T23:30Z = 00:30 BST on 30 March: 30 − 9 = 21 days → counts (the UTC date, 29 March, gives 20).
    assert evaluate(events, "2026-03-29T22:59Z").value("nctr_21plus_days", "live") == 0.0  # 23:59 BST, 20 days
    assert evaluate(events, "2026-03-29T23:30Z").value("nctr_21plus_days", "live") == 1.0
    # 2026-10-24T23:30Z = 00:30 BST on 25 October: 25 − 4 = 21 days → counts (the UTC date, 24 October, gives 20);
    # at 23:59 GMT on the 25-hour 25 October it still counts, once.
    assert evaluate(events, "2026-10-24T22:59Z").value("nctr_21plus_days", "live") == 1.0  # s only
    assert evaluate(events, "2026-10-24T23:30Z").value("nctr_21plus_days", "live") == 2.0
    assert evaluate(events, "2026-10-25T23:59Z").value("nctr_21plus_days", "live") == 2.0


def test_discharge_events_before_the_admission_are_held() -> None:
    engine = Engine(config())
    engine.ingest([drd_set("held", "2026-03-05T10:00", "2026-03-05", pathway=2)])
    snap = Snapshot(engine.snapshot(when("2026-03-06T12:00")))
    assert (occupied(snap), nctr(snap)) == (0.0, 0.0)  # no admission yet: nothing counts
    engine.ingest([admitted("held", "2026-03-01T10:00")])
    snap = Snapshot(engine.snapshot(when("2026-03-06T12:00")))
    assert (occupied(snap), nctr(snap)) == (1.0, 1.0)
    assert snap.value("mofd_awaiting_plan_p2", "live") == 1.0


# --- MOFD awaiting a plan ----------------------------------------------------------------------------------------------


def test_mofd_awaiting_plan_by_pathway() -> None:
    day = "2026-03-05"
    events = [
        # P0: pathway 0 → excluded.
        admitted("P0", "2026-03-01T10:00"),
        drd_set("P0", f"{day}T09:00", day, pathway=0),
        # P1: pathway 1, no referral → awaiting (p1).
        admitted("P1", "2026-03-01T10:00"),
        drd_set("P1", f"{day}T09:00", day, pathway=1),
        # P2a: pathway 2, referral after the DRD, plan in place → not awaiting.
        admitted("P2a", "2026-03-01T10:00"),
        drd_set("P2a", f"{day}T09:00", day, pathway=2),
        referral_made("P2a", f"{day}T10:00", "ref-P2a", 2),
        plan_in_place("P2a", f"{day}T15:00", "ref-P2a"),
        # P2b: pathway 2, referral after the DRD, no plan yet → awaiting (p2).
        admitted("P2b", "2026-03-01T10:00"),
        drd_set("P2b", f"{day}T09:00", day, pathway=2),
        referral_made("P2b", f"{day}T10:00", "ref-P2b", 2),
        # P3: pathway 3 from discharge.pathway_assigned → awaiting (p3).
        admitted("P3", "2026-03-01T10:00"),
        drd_set("P3", f"{day}T09:00", day),
        pathway_assigned("P3", f"{day}T09:30", 3),
        # PU: no pathway → unknown → awaiting (pathway_unknown).
        admitted("PU", "2026-03-01T10:00"),
        drd_set("PU", f"{day}T09:00", day),
        # PF: pathway 1 but the ready date is in the future → not NCTR → excluded.
        admitted("PF", "2026-03-01T10:00"),
        drd_set("PF", f"{day}T09:00", "2026-03-09", pathway=1),
        # PX: pathway 2 at first, then assigned pathway 0 → excluded.
        admitted("PX", "2026-03-01T10:00"),
        drd_set("PX", f"{day}T09:00", day, pathway=2),
        pathway_assigned("PX", f"{day}T11:00", 0),
        # PC: paediatric, pathway 1, NCTR → not adult G&A → excluded.
        admitted("PC", "2026-03-01T10:00", "paediatric_ga"),
        drd_set("PC", f"{day}T09:00", day, pathway=1),
    ]
    snap = evaluate(events, f"{day}T18:00")
    assert occupied(snap) == 8.0  # all but PC
    assert nctr(snap) == 7.0  # all adult G&A but PF
    for scope in BED_SCOPES:
        assert snap.value("mofd_awaiting_plan", "live", *scope) == 4.0  # P1, P2b, P3, PU
        assert snap.value("mofd_awaiting_plan_p1", "live", *scope) == 1.0  # P1
        assert snap.value("mofd_awaiting_plan_p2", "live", *scope) == 1.0  # P2b
        assert snap.value("mofd_awaiting_plan_p3", "live", *scope) == 1.0  # P3
        assert snap.value("mofd_awaiting_plan_pathway_unknown", "live", *scope) == 1.0  # PU
    # 2025/26 local target ≤ 100 from 1 July 2025: 4 → green.
    row = snap.row("mofd_awaiting_plan", "live")
    assert (row.target, row.status) == (100.0, "green")
    # As of 14:59 P2a's plan (15:00) is not in yet → 5 awaiting, 2 of them pathway 2.
    snap = evaluate(events, f"{day}T14:59")
    assert snap.value("mofd_awaiting_plan", "live") == 5.0
    assert snap.value("mofd_awaiting_plan_p2", "live") == 2.0


def test_referral_before_the_ready_date_is_not_a_plan() -> None:
    events = [
        admitted("RB", "2026-03-01T08:00"),
        referral_made("RB", "2026-03-01T10:00", "ref-early", 1),
        plan_in_place("RB", "2026-03-02T10:00", "ref-early"),
        drd_set("RB", "2026-03-03T10:00", "2026-03-03", pathway=1),  # set after the referral was made
    ]
    snap = evaluate(events, "2026-03-03T12:00")
    assert nctr(snap) == 1.0
    assert snap.value("mofd_awaiting_plan", "live") == 1.0  # the only plan is for an earlier referral
    assert snap.value("mofd_awaiting_plan_p1", "live") == 1.0


def test_drd_cleared_and_reset_makes_an_earlier_referral_not_count() -> None:
    events = [
        admitted("CR", "2026-03-01T08:00"),
        drd_set("CR", "2026-03-01T09:00", "2026-03-01", pathway=2),
        referral_made("CR", "2026-03-01T10:00", "ref-1", 2),  # made after this DRD was set
        plan_in_place("CR", "2026-03-02T10:00", "ref-1"),
        drd_cleared("CR", "2026-03-03T09:00"),
        drd_set("CR", "2026-03-04T09:00", "2026-03-04", pathway=2),  # the current DRD: set after ref-1
        referral_made("CR", "2026-03-05T10:00", "ref-2", 2),
        plan_in_place("CR", "2026-03-06T10:00", "ref-2"),
    ]
    # 1 March 12:00: NCTR, referral made, no plan yet → awaiting.
    assert evaluate(events, "2026-03-01T12:00").value("mofd_awaiting_plan", "live") == 1.0
    # 2 March 12:00: plan for a referral made since the current DRD → not awaiting.
    assert evaluate(events, "2026-03-02T12:00").value("mofd_awaiting_plan", "live") == 0.0
    # 3 March 12:00: cleared → not NCTR → not awaiting.
    snap = evaluate(events, "2026-03-03T12:00")
    assert (nctr(snap), snap.value("mofd_awaiting_plan", "live")) == (0.0, 0.0)
    # 4 March 12:00: DRD set again; ref-1 was made before it → awaiting again (pathway 2).
    snap = evaluate(events, "2026-03-04T12:00")
    assert snap.value("mofd_awaiting_plan", "live") == 1.0
    assert snap.value("mofd_awaiting_plan_p2", "live") == 1.0
    # 5 March 12:00: ref-2 made after the current DRD, no plan yet → still awaiting.
    assert evaluate(events, "2026-03-05T12:00").value("mofd_awaiting_plan", "live") == 1.0
    # 6 March 12:00: ref-2's plan in place → not awaiting.
    assert evaluate(events, "2026-03-06T12:00").value("mofd_awaiting_plan", "live") == 0.0


def test_referral_at_the_instant_the_ready_date_was_set_counts() -> None:
    events = [
        admitted("AT", "2026-03-01T08:00"),
        drd_set("AT", "2026-03-02T10:00", "2026-03-02", pathway=3),
        referral_made("AT", "2026-03-02T10:00", "ref-at", 3),  # made at (not after) the DRD's time: "at or after"
        plan_in_place("AT", "2026-03-02T16:00", "ref-at"),
    ]
    assert evaluate(events, "2026-03-02T15:00").value("mofd_awaiting_plan", "live") == 1.0
    assert evaluate(events, "2026-03-02T17:00").value("mofd_awaiting_plan", "live") == 0.0


def test_plan_for_an_unknown_referral_is_ignored() -> None:
    events = [
        admitted("UK", "2026-03-01T08:00"),
        drd_set("UK", "2026-03-02T10:00", "2026-03-02", pathway=1),
        plan_in_place("UK", "2026-03-02T12:00", "ref-nobody"),
    ]
    assert evaluate(events, "2026-03-02T13:00").value("mofd_awaiting_plan", "live") == 1.0


def test_mofd_target_applies_only_from_july_2025() -> None:
    events = [admitted("J", "2025-06-01T08:00"), drd_set("J", "2025-06-10T10:00", "2025-06-10", pathway=1)]
    june = evaluate(events, "2025-06-30T12:00").row("mofd_awaiting_plan", "live")
    assert (june.value, june.target, june.status) == (1.0, None, "none")  # before effective_from 2025-07-01
    july = evaluate(events, "2025-07-01T00:00").row("mofd_awaiting_plan", "live")
    assert (july.value, july.target, july.status) == (1.0, 100.0, "green")


def test_one_engine_takes_up_the_mofd_target_on_the_day_it_comes_into_force() -> None:
    """The targets looked up for one day's snapshots are not kept for the next day's."""
    engine = Engine(config())
    engine.ingest([admitted("J", "2025-06-01T08:00"), drd_set("J", "2025-06-10T10:00", "2025-06-10", pathway=1)])
    rows = [
        Snapshot(engine.snapshot(when(at))).row("mofd_awaiting_plan", "live")
        for at in ("2025-06-30T12:00", "2025-06-30T23:00", "2025-07-01T00:00", "2025-07-01T01:00")
    ]
    assert [(r.target, r.status) for r in rows] == [(None, "none"), (None, "none"), (100.0, "green"), (100.0, "green")]


# --- Scopes per site ---------------------------------------------------------------------------------------------------


def test_bed_scopes_per_site() -> None:
    events = [
        admitted("sA1", "2026-03-01T08:00", site="RWEAA"),
        admitted("sA2", "2026-03-01T08:00", site="RWEAA"),
        drd_set("sA2", "2026-03-02T08:00", "2026-03-02", site="RWEAA"),  # NCTR, pathway unknown
        admitted("sE1", "2026-03-01T08:00", site="RWEAE"),
        admitted("sK1", "2026-03-01T08:00", site="RWEAK"),
        drd_set("sK1", "2026-03-02T08:00", "2026-03-02", pathway=0, site="RWEAK"),  # NCTR, pathway 0
        # Moves from RWEAA to Glenfield (RWEAE) at 09:00 on 3 March.
        admitted("mv", "2026-03-01T08:00", site="RWEAA"),
        transferred("mv", "2026-03-03T09:00", "adult_ga", site="RWEAE"),
    ]
    snap = evaluate(events, "2026-03-03T12:00")
    expected = {
        ("site", "RWEAA"): (2, 1, 1),  # sA1, sA2; NCTR sA2; awaiting sA2
        ("site", "RWEAE"): (2, 0, 0),  # sE1, mv
        ("site", "RWEAK"): (1, 1, 0),  # sK1 NCTR but pathway 0
        ("org", "RWE"): (5, 2, 1),
        ("system", "QK1"): (5, 2, 1),
    }
    for scope, (occ, n, awaiting) in expected.items():
        assert occupied(snap, scope) == occ, scope
        assert nctr(snap, scope) == n, scope
        assert snap.value("mofd_awaiting_plan", "live", *scope) == awaiting, scope
    # nctr_pct per site: RWEAA 1/2 = 50%, RWEAK 1/1 = 100%, RWEAE 0/2 = 0%; system 2/5 = 40% (ratio of sums).
    assert snap.value("nctr_pct", "live", "site", "RWEAA") == 50.0
    assert snap.value("nctr_pct", "live", "site", "RWEAK") == 100.0
    assert snap.value("nctr_pct", "live", "site", "RWEAE") == 0.0
    assert snap.value("nctr_pct", "live") == 40.0
    # Before the move mv is at RWEAA.
    snap = evaluate(events, "2026-03-03T08:00")
    assert occupied(snap, ("site", "RWEAA")) == 3.0
    assert occupied(snap, ("site", "RWEAE")) == 1.0
    # Bed scopes: the three sites with a bed base, RWE, QK1; not RX9.
    scopes = {(r.scope_type, r.scope_code) for r in snap.rows if r.indicator == "ga_beds_occupied"}
    assert scopes == {("site", "RWEAA"), ("site", "RWEAE"), ("site", "RWEAK"), ("org", "RWE"), ("system", "QK1")}

"""Delivery order and repetition never change a result (EVENTS.md "Ordering and repetition"; docs/definitions.md).

One realistic day (10 March 2026, GMT, so local = UTC) of ~60 events across ED, ambulance, ADT, discharge and OPEL
is evaluated in order, shuffled (several seeds), with random duplicates, incrementally and in batches: every
snapshot value must be identical. A few anchor values are worked out by hand so the comparison is not vacuous.
"""

from __future__ import annotations

import random

import pytest
from events_factory import (
    Snapshot,
    admission_cancelled,
    admitted,
    adt_updated,
    amb_at_hospital,
    amb_call_connected,
    amb_clock_started,
    amb_closed,
    amb_crew_clear,
    amb_handover_completed,
    amb_recategorised,
    amb_resource_arrived,
    config,
    discharge_cancelled,
    discharged,
    drd_set,
    ed_arrived,
    ed_attendance,
    ed_cancelled,
    ed_decision_to_admit,
    ed_departed,
    ed_handover,
    evaluate,
    opel_declared,
    plan_in_place,
    referral_made,
    transfer_cancelled,
    transferred,
    when,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.engine import Engine

DAY = "2026-03-10"
AT = f"{DAY}T18:00"


def t(hhmm: str, day: str = DAY) -> str:
    return f"{day}T{hhmm}"


def day_events() -> list:
    """64 events, in time order within each entity; hand-worked results in the comments."""
    ed = [
        *ed_attendance("E1", t("08:00"), t("11:00")),  # walk-in, 3:00 → within
        *ed_attendance("E2", t("08:30"), t("13:00"), "ambulance", handover=t("08:40")),  # clock 08:40, 4:20 breach
        *ed_attendance("E3", t("09:00"), t("13:15"), "ambulance"),  # clock 09:15, 4:00:00 → within
        ed_arrived("E4", t("09:30")),
        ed_decision_to_admit("E4", t("10:00")),
        ed_departed("E4", t("13:30:01"), "admitted"),  # 4:00:01 → breach
        ed_arrived("E5", t("10:00")),
        ed_cancelled("E5", t("10:20")),  # counts nowhere
        *ed_attendance("E6", t("11:00"), t("11:45"), "other", "3"),  # type 3, within
        ed_arrived("E7", t("12:00")),  # still here at 18:00: 6 h → over 4 h
        ed_arrived("E8", t("15:00"), "ambulance"),
        ed_handover("E8", t("15:05")),  # clock 15:05; at 18:00 2:55 → not over 4 h
        *ed_attendance("E9", t("20:00", "2026-03-09"), t("09:00")),  # 13 h → breach, and over 12 h
        *ed_attendance("E10", t("10:00", "2026-03-09"), t("12:00", "2026-03-09")),  # yesterday: mtd only
    ]
    ambulance = [
        # A1: Cat 2, 08:01 → DCA 08:21 = 20 min; handover 09:00 → 09:25 = 25 min.
        amb_call_connected("A1", t("08:00")),
        amb_clock_started("A1", t("08:01"), 2),
        amb_resource_arrived("A1", t("08:09"), False, "RRV1"),
        amb_resource_arrived("A1", t("08:21"), True, "DCA1"),
        amb_at_hospital("A1", t("09:00")),
        amb_handover_completed("A1", t("09:25")),
        amb_closed("A1", t("09:30"), True),
        amb_crew_clear("A1", t("09:40")),
        # A2: Cat 3 → Cat 2 at 10:05, only an RRV at 10:12, closed not conveyed → Cat 2, 12 min.
        amb_clock_started("A2", t("10:00"), 3),
        amb_recategorised("A2", t("10:05"), 2),
        amb_resource_arrived("A2", t("10:12"), False, "RRV2"),
        amb_closed("A2", t("11:00"), False),
        # A3: Cat 1, 7 min; at hospital 12:40, not handed over → waiting 5:20 = 320 min at 18:00.
        amb_clock_started("A3", t("12:00"), 1),
        amb_resource_arrived("A3", t("12:07"), True, "DCA3"),
        amb_at_hospital("A3", t("12:40")),
        # A4: Cat 2, stop 13:40 (40 min); recategorised to Cat 1 after the stop → stays Cat 2.
        amb_clock_started("A4", t("13:00"), 2),
        amb_resource_arrived("A4", t("13:40"), True, "DCA4"),
        amb_recategorised("A4", t("13:45"), 1),
        # A5: Cat 4, only an RRV, closed conveyed → no response time.
        amb_clock_started("A5", t("14:00"), 4),
        amb_resource_arrived("A5", t("14:30"), False, "RRV5"),
        amb_closed("A5", t("15:00"), True),
        # A6: no clock start, handover 16:00 → 16:50 = 50 min.
        amb_at_hospital("A6", t("16:00")),
        amb_handover_completed("A6", t("16:50")),
    ]
    beds = [
        # S1: NCTR since 5 March, pathway 2, referral made after the DRD with a plan → not awaiting.
        admitted("S1", t("10:00", "2026-03-01")),
        drd_set("S1", t("09:00", "2026-03-05"), "2026-03-05", pathway=2),
        referral_made("S1", t("10:00", "2026-03-06"), "r1", 2),
        plan_in_place("S1", t("10:00", "2026-03-07"), "r1"),
        # S2: to critical care and back (A12) → adult_ga.
        admitted("S2", t("10:00", "2026-03-02")),
        transferred("S2", t("10:00", "2026-03-08"), "critical_care"),
        transfer_cancelled("S2", t("10:00", "2026-03-09")),
        # S3: escalation bed; NCTR since 9 March, pathway unknown → awaiting.
        admitted("S3", t("10:00", "2026-03-03"), escalation_bed=True),
        drd_set("S3", t("10:00", "2026-03-08"), "2026-03-09"),
        # S4: discharged on 9 March (pathway 0).
        admitted("S4", t("10:00", "2026-03-04")),
        discharged("S4", t("10:00", "2026-03-09"), pathway=0),
        # S5: admission cancelled.
        admitted("S5", t("10:00", "2026-03-05")),
        admission_cancelled("S5", t("11:00", "2026-03-05")),
        # S6: at Glenfield; ready date 12 March (future) → not NCTR.
        admitted("S6", t("10:00", "2026-03-06"), site="RWEAE"),
        drd_set("S6", t("10:00"), "2026-03-12", site="RWEAE"),
        # S7: discharged, then the discharge cancelled (A13) → open; an A08 in between.
        admitted("S7", t("10:00", "2026-03-07")),
        discharged("S7", t("10:00", "2026-03-09")),
        discharge_cancelled("S7", t("11:00", "2026-03-09")),
        adt_updated("S7", t("12:00", "2026-03-09"), ward_code="WARD9"),
    ]
    opel = [opel_declared(t("07:00"), 3)]
    return [*ed, *ambulance, *beds, *opel]


def _check_anchors(snap: Snapshot) -> None:
    # ED today departures: E1, E2, E3, E4, E6, E9 = 6; within E1, E3, E6 = 3 → 50%; over 12 h: E9 → 1/6.
    row = snap.row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator, row.value) == (3.0, 6.0, 50.0)
    assert snap.row("ed_12h_pct", "today").numerator == 1.0
    # mtd adds E10 (within): 4/7.
    assert (snap.row("ed_4h_pct", "mtd").numerator, snap.row("ed_4h_pct", "mtd").denominator) == (4.0, 7.0)
    # Arrivals today: E1 E2 E3 E4 E6 E7 E8 = 7 (E5 cancelled, E9 arrived 9 March).
    assert snap.value("ed_attendances", "today") == 7.0
    assert snap.value("ed_in_department", "live") == 2.0  # E7, E8
    assert snap.value("ed_over_4h_now", "live") == 1.0  # E7
    # Cat 2: A1 20, A2 12, A4 40 → mean 72/3 = 24; p90 ⌈2.7⌉ = 3rd → 40. Cat 1: A3 7. Cat 4: none.
    assert snap.value("amb_cat2_mean_min", "today") == 24.0
    assert snap.value("amb_cat2_p90_min", "today") == 40.0
    assert snap.value("amb_cat1_mean_min", "today") == 7.0
    assert snap.row("amb_cat4_mean_min", "today").denominator == 0.0
    # Handovers: A1 25, A6 50 → mean 37.5; waiting: A3 since 12:40 → 320 min.
    assert snap.value("amb_handover_mean_min", "today", "site", "RWEAA") == 37.5
    assert snap.value("amb_waiting_handover_longest_min", "live") == 320.0
    # Beds: open adult_ga S1, S2, S3, S6, S7 = 5; escalation S3; NCTR S1, S3; awaiting S3 (unknown).
    assert snap.value("ga_beds_occupied", "live") == 5.0
    assert snap.value("ga_beds_occupied", "live", "site", "RWEAE") == 1.0  # S6
    assert snap.value("ga_escalation_beds_occupied", "live") == 1.0
    assert snap.value("nctr_count", "live") == 2.0
    assert snap.value("mofd_awaiting_plan", "live") == 1.0
    assert snap.value("mofd_awaiting_plan_pathway_unknown", "live") == 1.0
    assert snap.value("opel_declared_level", "live", "site", "RWEAA") == 3.0


EVENTS = day_events()
IN_ORDER = evaluate(EVENTS, AT)


def test_fixture_size_and_anchors() -> None:
    assert len(EVENTS) == 64  # ED 21, ambulance 23, ADT + discharge 19, OPEL 1
    assert len({e.event_id for e in EVENTS}) == 64
    _check_anchors(IN_ORDER)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 7, 42, 2026, 31337])
def test_shuffled_with_duplicates_gives_the_same_snapshot(seed: int) -> None:
    rng = random.Random(seed)
    delivered = [*EVENTS, *rng.choices(EVENTS, k=25)]  # 25 random redeliveries
    rng.shuffle(delivered)
    snap = evaluate(delivered, AT)
    assert snap.values() == IN_ORDER.values()
    _check_anchors(snap)


@pytest.mark.parametrize("seed", [0, 5, 99])
def test_incremental_delivery_in_any_order_gives_the_same_snapshot(seed: int) -> None:
    rng = random.Random(seed)
    delivered = [*EVENTS, *rng.choices(EVENTS, k=15)]
    rng.shuffle(delivered)
    one_by_one = Engine(config())
    for e in delivered:
        one_by_one.ingest([e])
    in_batches = Engine(config())
    for i in range(0, len(delivered), 7):
        in_batches.ingest(delivered[i : i + 7])
    for engine in (one_by_one, in_batches):
        assert not engine.rejected
        assert Snapshot(engine.snapshot(when(AT))).values() == IN_ORDER.values()


def test_reverse_order_gives_the_same_snapshot() -> None:
    assert evaluate(list(reversed(EVENTS)), AT).values() == IN_ORDER.values()


def test_as_of_earlier_t_ignores_later_events_whatever_the_order() -> None:
    # As of 12:00: ED departures today E1 (11:00), E6 (11:45), E9 (09:00) → within E1, E6 → 2/3.
    at = t("12:00")
    expected = evaluate(EVENTS, at)
    row = expected.row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (2.0, 3.0)
    # In the department at 12:00: E2, E3, E4, E7 (E7 arrives at 12:00) → 4.
    assert expected.value("ed_in_department", "live") == 4.0
    shuffled = list(EVENTS)
    random.Random(11).shuffle(shuffled)
    assert evaluate(shuffled, at).values() == expected.values()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.permutations(range(len(EVENTS))),
    duplicates=st.lists(st.tuples(st.integers(0, len(EVENTS) - 1), st.integers(0, 200)), max_size=30),
)
def test_any_permutation_with_duplicates_gives_the_same_snapshot(
    order: list[int], duplicates: list[tuple[int, int]]
) -> None:
    delivered = [EVENTS[i] for i in order]
    for which, where in duplicates:
        delivered.insert(where % (len(delivered) + 1), EVENTS[which])
    assert evaluate(delivered, AT).values() == IN_ORDER.values()

"""ED indicators from the pure-Python engine, against hand-worked cases (INDICATORS.md, docs/definitions.md).

Times without an offset are Europe/London local time. 10 March 2026 is in GMT, so local = UTC on that day. Every
expected number is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from events_factory import (
    Snapshot,
    config,
    ed_arrived,
    ed_attendance,
    ed_cancelled,
    ed_decision_to_admit,
    ed_departed,
    ed_handover,
    evaluate,
    when,
)

from streams.clock import calendar_windows, local_midnight
from streams.engine import Engine

DAY = "2026-03-10"


def t(hhmmss: str, day: str = DAY) -> str:
    return f"{day}T{hhmmss}"


# --- Worked example 1 ---------------------------------------------------------------------------------------------


def test_example1_ambulance_arrival_clock_starts_at_arrival_plus_15() -> None:
    # Arrival 10:00, handover 10:40 (after arrival+15 → ignored), departed 14:10.
    # Clock start = min(10:40, 10:15) = 10:15; duration 14:10 − 10:15 = 3:55 ≤ 4:00 → within.
    events = ed_attendance("ex1", t("10:00"), t("14:10"), "ambulance", handover=t("10:40"))
    snap = evaluate(events, t("15:00"))
    row = snap.row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator, row.value) == (1.0, 1.0, 100.0)  # 1/1 within = 100%


@pytest.mark.parametrize(
    ("departed", "within"),
    [
        ("14:00:00", 1.0),  # 14:00:00 − 10:00:00 = 4:00:00 exactly ≤ 4 h → within
        ("14:00:01", 0.0),  # 4:00:01 > 4 h → breach
    ],
)
def test_example1_walk_in_four_hour_boundary(departed: str, within: float) -> None:
    events = ed_attendance("walk", t("10:00:00"), t(departed), "walk_in")
    row = evaluate(events, t("15:00")).row("ed_4h_pct", "today")
    assert row.denominator == 1.0
    assert row.numerator == within
    assert row.value == 100.0 * within  # 1/1 → 100%, 0/1 → 0%


# --- Worked example 5: clock changes ----------------------------------------------------------------------------


def test_example5_spring_forward_today_is_23_hours() -> None:
    # Clocks go forward 2026-03-29 01:00 UTC. Local midnight 29 March = 2026-03-29T00:00Z (GMT) and local midnight
    # 30 March = 2026-03-29T23:00Z (BST), so 29 March lasts 23 hours.
    assert local_midnight(dt.date(2026, 3, 30)) - local_midnight(dt.date(2026, 3, 29)) == dt.timedelta(hours=23)
    at = when("2026-03-29T22:59:59+00:00")  # = 23:59:59 BST, still 29 March
    today = next(w for w in calendar_windows(at) if w.name == "today")
    assert today.start == when("2026-03-29T00:00:00+00:00")
    assert today.first == dt.date(2026, 3, 29)
    events = [
        # 00:30 GMT on 29 March (before the 01:00 UTC change): falls on 29 March.
        *ed_attendance("spring-a", "2026-03-28T22:00:00+00:00", "2026-03-29T00:30:00+00:00"),
        # 23:59 GMT on 28 March: the day before.
        *ed_attendance("spring-b", "2026-03-28T21:00:00+00:00", "2026-03-28T23:59:00+00:00"),
        # 23:59 BST on 29 March (22:59Z): last minute of the 23-hour day.
        *ed_attendance("spring-c", "2026-03-29T20:00:00+00:00", "2026-03-29T22:59:00+00:00"),
    ]
    snap = evaluate(events, at)
    # today (29 March) holds spring-a and spring-c: 2 departures.
    assert snap.row("ed_4h_pct", "today").denominator == 2.0
    # mtd (1–29 March) holds all three.
    assert snap.row("ed_4h_pct", "mtd").denominator == 3.0
    # As of 28 March 23:59:30Z (local 28 March), 'today' is 28 March: only spring-b has departed by then.
    snap_28 = evaluate(events, "2026-03-28T23:59:30+00:00")
    assert snap_28.row("ed_4h_pct", "today").denominator == 1.0
    # 2026-03-29T23:00Z is 00:00 BST on 30 March: a new day, with nothing departed yet.
    snap_30 = evaluate(events, "2026-03-29T23:00:00+00:00")
    assert snap_30.row("ed_4h_pct", "today").denominator == 0.0
    assert snap_30.row("ed_4h_pct", "today").value is None


def test_example5_fall_back_today_is_25_hours() -> None:
    # Clocks go back 2026-10-25 01:00 UTC. Local midnight 25 Oct = 2026-10-24T23:00Z (BST); 26 Oct = 2026-10-26T00:00Z
    # (GMT): 25 hours.
    assert local_midnight(dt.date(2026, 10, 26)) - local_midnight(dt.date(2026, 10, 25)) == dt.timedelta(hours=25)
    events = [
        # 2026-10-24T23:30Z = 00:30 BST on 25 October.
        *ed_attendance("fall-a", "2026-10-24T21:00:00Z", "2026-10-24T23:30:00Z"),
        # 2026-10-25T23:30Z = 23:30 GMT on 25 October.
        *ed_attendance("fall-b", "2026-10-25T21:00:00Z", "2026-10-25T23:30:00Z"),
        # 2026-10-24T22:59Z = 23:59 BST on 24 October: the day before.
        *ed_attendance("fall-c", "2026-10-24T20:00:00Z", "2026-10-24T22:59:00Z"),
    ]
    snap = evaluate(events, "2026-10-25T23:59:00Z")  # 23:59 GMT, 25 October
    assert snap.row("ed_4h_pct", "today").denominator == 2.0  # fall-a and fall-b
    assert snap.row("ed_4h_pct", "mtd").denominator == 3.0  # all three in October
    # ed_attendances today (arrivals on 25 October local): fall-b arrived 21:00 GMT 25 Oct; fall-a arrived
    # 22:00 BST 24 Oct; fall-c 21:00 BST 24 Oct → 1.
    assert snap.value("ed_attendances", "today") == 1.0


def test_durations_across_a_clock_change_are_real_time() -> None:
    events = [
        # Spring: arrived 00:30 GMT, departed 05:00 BST (04:00Z) → 3:30 real → within (the wall clock says 4:30).
        *ed_attendance("sp-in", "2026-03-29T00:30:00Z", "2026-03-29T04:00:00Z"),
        # Autumn: arrived 01:30 BST (00:30Z), departed 04:45 GMT (04:45Z) → 4:15 real → breach (the wall clock: 3:15).
        *ed_attendance("au-breach", "2026-10-25T00:30:00Z", "2026-10-25T04:45:00Z"),
        # Autumn: arrived 15:00 BST on 24 October (14:00Z), departed 02:30 GMT (02:30Z) → 12:30 since arrival → over
        # 12 hours (the wall clock says 11:30).
        *ed_attendance("au-12h", "2026-10-24T14:00:00Z", "2026-10-25T02:30:00Z"),
    ]
    spring = evaluate(events, "2026-03-29T12:00:00Z")
    assert (spring.value("ed_4h_pct", "today"), spring.row("ed_4h_pct", "today").denominator) == (100.0, 1.0)
    autumn = evaluate(events, "2026-10-25T12:00:00Z")
    today = autumn.row("ed_4h_pct", "today")
    assert (today.numerator, today.denominator) == (0.0, 2.0)  # au-breach 4:15 and au-12h 12:30: neither within
    twelve = autumn.row("ed_12h_pct", "today")
    assert (twelve.numerator, twelve.denominator) == (1.0, 2.0)  # au-12h only
    # Live at 04:00 GMT on 25 October (04:00Z): au-breach has been in the department 3:30 → not over 4 h, though
    # its arrival reads 01:30 on the wall clock.
    live = evaluate(events, "2026-10-25T04:00:00Z")
    assert live.value("ed_in_department", "live") == 1.0
    assert live.value("ed_over_4h_now", "live") == 0.0
    assert evaluate(events, "2026-10-25T04:31:00Z").value("ed_over_4h_now", "live") == 1.0  # 4:01 real


# --- Clock start and the 4-hour / 12-hour rules ---------------------------------------------------------------


def test_ambulance_arrival_without_handover_starts_at_arrival_plus_15() -> None:
    # Arrival 10:00 by ambulance, no handover: clock start 10:15.
    # Departed 14:15:00 → 4:00:00 → within; another departs 14:15:01 → 4:00:01 → breach.
    events = [
        *ed_attendance("amb-a", t("10:00"), t("14:15:00"), "ambulance"),
        *ed_attendance("amb-b", t("10:00"), t("14:15:01"), "ambulance"),
    ]
    row = evaluate(events, t("15:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (1.0, 2.0)
    assert row.value == 50.0  # 1/2


def test_ambulance_handover_before_15_minutes_starts_the_clock() -> None:
    # Arrival 10:00, handover 10:05 → clock start 10:05. Departed 14:05:01 → 4:00:01 → breach
    # (it would have been within with the arrival + 15 rule: 14:05:01 − 10:15 = 3:50:01).
    events = ed_attendance("hand", t("10:00"), t("14:05:01"), "ambulance", handover=t("10:05"))
    row = evaluate(events, t("15:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (0.0, 1.0)


def test_ambulance_handover_after_15_minutes_is_ignored() -> None:
    # Arrival 10:00, handover 10:50 (later than 10:15) → clock start stays 10:15.
    # Departed 14:14:59 → 3:59:59 → within (from the handover it would be 3:24:59, also within; from arrival 4:14:59
    # it would breach, so this pins the +15).
    events = ed_attendance("late-hand", t("10:00"), t("14:14:59"), "ambulance", handover=t("10:50"))
    row = evaluate(events, t("15:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (1.0, 1.0)
    # Departed 14:15:01 → 4:00:01 from 10:15 → breach (from the handover it would be 3:25:01, within).
    events = ed_attendance("late-hand2", t("10:00"), t("14:15:01"), "ambulance", handover=t("10:50"))
    row = evaluate(events, t("15:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (0.0, 1.0)


def test_handover_at_exactly_15_minutes_and_before_arrival() -> None:
    # Handover at exactly 10:15 → min(10:15, 10:15) = 10:15; departure 14:15:00 → 4:00:00 within.
    a = ed_attendance("h15", t("10:00"), t("14:15:00"), "ambulance", handover=t("10:15"))
    # Handover recorded before arrival (09:55) is ignored → clock start 10:15; departure 14:15:00 → within
    # (from 09:55 it would be 4:20 → breach).
    b = ed_attendance("hbefore", t("10:00"), t("14:15:00"), "ambulance", handover=t("09:55"))
    # Handover at the arrival instant → clock start 10:00; departure 14:00:01 → 4:00:01 breach.
    c = ed_attendance("hat", t("10:00"), t("14:00:01"), "ambulance", handover=t("10:00"))
    row = evaluate([*a, *b, *c], t("15:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (2.0, 3.0)  # a, b within; c breach


def test_walk_in_and_other_start_at_arrival_even_with_a_handover() -> None:
    # 'other' arrival 10:00 with an ed.handover at 10:30: the handover rule is for ambulances only → clock 10:00.
    # Departed 14:00:01 → breach.
    events = ed_attendance("oth", t("10:00"), t("14:00:01"), "other", handover=t("10:30"))
    row = evaluate(events, t("15:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (0.0, 1.0)


def test_twelve_hours_from_arrival_strictly_greater() -> None:
    day = "2026-03-09"
    events = [
        # Walk-in 08:00 → 20:00:00: exactly 12:00:00 → not over 12 h.
        *ed_attendance("w12", t("08:00", day), t("20:00:00", day)),
        # Walk-in 08:00 → 20:00:01: 12:00:01 → over.
        *ed_attendance("w12b", t("08:00", day), t("20:00:01", day)),
        # Ambulance 08:00 (clock start 08:15) → 20:10: from arrival 12:10 → over (from clock start 11:55 would not be).
        *ed_attendance("a12", t("08:00", day), t("20:10:00", day), "ambulance"),
        # Walk-in 08:00 → 11:00: 3 h, neither over 4 h nor 12 h.
        *ed_attendance("short", t("08:00", day), t("11:00", day)),
    ]
    snap = evaluate(events, t("23:00", day))
    row12 = snap.row("ed_12h_pct", "today")
    assert (row12.numerator, row12.denominator) == (2.0, 4.0)  # w12b, a12
    assert row12.value == 50.0  # 2/4
    row4 = snap.row("ed_4h_pct", "today")
    assert (row4.numerator, row4.denominator) == (1.0, 4.0)  # only 'short' within 4 h → 25%
    assert row4.value == 25.0


def test_decision_to_admit_changes_nothing() -> None:
    events = [
        *ed_attendance("dta", t("10:00"), t("13:00")),
        ed_decision_to_admit("dta", t("11:00")),
    ]
    row = evaluate(events, t("15:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (1.0, 1.0)  # 3 h → within


# --- Live indicators ------------------------------------------------------------------------------------------


def _live_events() -> list:
    return [
        # W: walk-in 06:00, not departed.
        ed_arrived("W", t("06:00")),
        # A: ambulance 07:00, no handover → clock start 07:15.
        ed_arrived("A", t("07:00"), "ambulance"),
        # H: ambulance 07:00, handover 07:05 → clock start 07:05.
        ed_arrived("H", t("07:00"), "ambulance"),
        ed_handover("H", t("07:05")),
        # D: walk-in 05:00, departed 09:00.
        *ed_attendance("D", t("05:00"), t("09:00")),
        # Y: walk-in the day before at 21:00, still here.
        ed_arrived("Y", t("21:00", "2026-03-09")),
    ]


@pytest.mark.parametrize(
    ("at", "present", "over4", "over12"),
    [
        # 05:30: Y (arr. 09 Mar 21:00, 8:30 → over 4 h, not 12 h) and D (arr. 05:00, 0:30).
        ("05:30", 2, 1, 0),
        # 08:30: Y (11:30 waited), D (3:30), W (2:30), A (clock 07:15, 1:15), H (1:25) → 5 present; over 4 h: Y.
        ("08:30", 5, 1, 0),
        # 09:00: D departed at 09:00 → not present. Y 12:00:00 → over 4, not over 12 (strict). W, A, H → 4.
        ("09:00", 4, 1, 0),
        # 09:00:01: Y 12:00:01 → over 12.
        ("09:00:01", 4, 1, 1),
        # 10:00:00: W 4:00:00 → not over 4 h (strict >).
        ("10:00:00", 4, 1, 1),
        # 10:00:01: W 4:00:01 → over. Over 4: Y, W.
        ("10:00:01", 4, 2, 1),
        # 11:05:01: H (clock 07:05) 4:00:01 → over; A (clock 07:15) 3:50:01 → not. Over 4: Y, W, H.
        ("11:05:01", 4, 3, 1),
        # 11:15:00: A exactly 4:00:00 → not over.
        ("11:15:00", 4, 3, 1),
        # 11:15:01: A 4:00:01 → over. Over 4: Y, W, H, A.
        ("11:15:01", 4, 4, 1),
        # 18:00:01: W 12:00:01 from arrival → over 12. Over 12: Y, W. A and H arrived 07:00: 11:00:01 → not.
        ("18:00:01", 4, 4, 2),
        # 19:00:01: A and H 12:00:01 from arrival (not clock start) → over 12: Y, W, A, H.
        ("19:00:01", 4, 4, 4),
    ],
)
def test_live_in_department_and_over_4h_12h(at: str, present: int, over4: int, over12: int) -> None:
    snap = evaluate(_live_events(), t(at))
    for scope in (("site", "RWEAA"), ("org", "RWE"), ("system", "QK1")):
        assert snap.value("ed_in_department", "live", *scope) == present
        assert snap.value("ed_over_4h_now", "live", *scope) == over4
        assert snap.value("ed_over_12h_now", "live", *scope) == over12
    pct = snap.row("ed_over_12h_now_pct", "live")
    assert (pct.numerator, pct.denominator) == (over12, present)
    assert pct.value == pytest.approx(100.0 * over12 / present)


def test_live_before_arrival_counts_nothing() -> None:
    # As of 04:59 on 10 March only Y (arrived the evening before) is in the department: D arrives at 05:00.
    snap = evaluate(_live_events(), t("04:59"))
    assert snap.value("ed_in_department", "live") == 1.0
    # As of 05:00:00 D has arrived (an arrival at T counts).
    assert evaluate(_live_events(), t("05:00")).value("ed_in_department", "live") == 2.0


# --- Cancellations, duplicates, late events -----------------------------------------------------------------------


def test_cancelled_attendance_counts_nowhere() -> None:
    events = [
        # K: arrived 08:00, departed 13:00 (breach: 5 h), cancelled 13:30.
        *ed_attendance("K", t("08:00"), t("13:00")),
        ed_cancelled("K", t("13:30")),
        # L: arrived 09:00, cancelled 09:30 while still in the department.
        ed_arrived("L", t("09:00")),
        ed_cancelled("L", t("09:30")),
        # M: arrived 10:00, departed 11:00 (within): the only one that counts.
        *ed_attendance("M", t("10:00"), t("11:00")),
    ]
    snap = evaluate(events, t("14:00"))
    row = snap.row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator, row.value) == (1.0, 1.0, 100.0)  # M only
    assert snap.row("ed_12h_pct", "today").denominator == 1.0
    assert snap.value("ed_attendances", "today") == 1.0  # M only
    assert snap.value("ed_attendances_type1", "today") == 1.0
    assert snap.value("ed_in_department", "live") == 0.0  # L cancelled, K and M departed
    # As of 13:15 K's cancellation (13:30) has not happened yet: K counts (as a breach), L is gone (09:30).
    snap = evaluate(events, t("13:15"))
    row = snap.row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (1.0, 2.0)  # M within, K breach → 50%
    assert snap.value("ed_attendances", "today") == 2.0  # K, M
    # As of 09:15, L is still in the department (cancelled at 09:30), as is K.
    assert evaluate(events, t("09:15")).value("ed_in_department", "live") == 2.0


def test_cancellation_delivered_before_the_arrival() -> None:
    engine = Engine(config())
    # The cancellation (occurred 09:30) is delivered first, then the arrival (09:00) and the departure (10:00).
    engine.ingest([ed_cancelled("C", t("09:30"))])
    engine.ingest([ed_arrived("C", t("09:00"), "ambulance")])
    engine.ingest([ed_departed("C", t("10:00"))])
    snap = Snapshot(engine.snapshot(when(t("11:00"))))
    assert snap.row("ed_4h_pct", "today").denominator == 0.0
    assert snap.value("ed_attendances", "today") == 0.0
    assert snap.value("ed_in_department", "live") == 0.0


def test_cancellation_with_an_earlier_timestamp_than_the_arrival_still_removes() -> None:
    # Any ed.cancelled as of T removes the attendance, whatever its time relative to the arrival.
    events = [ed_cancelled("E", t("08:59")), *ed_attendance("E", t("09:00"), t("10:00"))]
    snap = evaluate(events, t("11:00"))
    assert snap.row("ed_4h_pct", "today").denominator == 0.0
    assert snap.value("ed_attendances", "today") == 0.0


def test_duplicate_event_ids_change_nothing() -> None:
    base = [
        *ed_attendance("P", t("08:00"), t("12:30")),  # 4:30 → breach
        *ed_attendance("Q", t("09:00"), t("10:00")),  # 1:00 → within
        ed_arrived("R", t("10:00")),
    ]
    doubled = [*base, *base, base[0], base[1]]  # every event twice, P's three times
    a, b = evaluate(base, t("13:00")), evaluate(doubled, t("13:00"))
    assert a.values() == b.values()
    row = b.row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (1.0, 2.0)  # Q within of P, Q → 50%
    assert b.value("ed_attendances", "today") == 3.0  # P, Q, R
    assert b.value("ed_in_department", "live") == 1.0  # R


def test_redelivery_of_the_same_id_with_another_time_keeps_the_first_copy() -> None:
    engine = Engine(config())
    arrival = ed_arrived("S", t("08:00"))
    dep = ed_departed("S", t("11:00"), event_id="dep-S")
    dep_again = ed_departed("S", t("12:30"), event_id="dep-S")  # same id, another time: ignored
    engine.ingest([arrival, dep])
    engine.ingest([dep_again])
    row = Snapshot(engine.snapshot(when(t("13:00")))).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (1.0, 1.0)  # 08:00 → 11:00 = 3 h within


def test_events_before_their_arrival_are_held_until_it_comes() -> None:
    engine = Engine(config())
    # Departure (14:30) and handover (10:05) delivered before the arrival (10:00, ambulance).
    engine.ingest([ed_departed("late", t("14:30"))])
    engine.ingest([ed_handover("late", t("10:05"))])
    snap = Snapshot(engine.snapshot(when(t("15:00"))))
    assert snap.row("ed_4h_pct", "today").denominator == 0.0  # no arrival yet → not counted
    assert snap.value("ed_attendances", "today") == 0.0
    assert snap.value("ed_in_department", "live") == 0.0
    engine.ingest([ed_arrived("late", t("10:00"), "ambulance")])
    snap = Snapshot(engine.snapshot(when(t("15:00"))))
    # Clock start = handover 10:05 (< 10:15); 14:30 − 10:05 = 4:25 → breach.
    row = snap.row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (0.0, 1.0)
    assert snap.value("ed_attendances", "today") == 1.0
    assert snap.value("ed_in_department", "live") == 0.0


def test_earliest_arrival_and_departure_win() -> None:
    events = [
        ed_arrived("two", t("09:00")),
        ed_arrived("two", t("09:30"), department_type="3"),  # a second arrival: ignored (earliest wins, type 1)
        ed_departed("two", t("13:00:01")),  # 4:00:01 from 09:00 → breach
        ed_departed("two", t("13:10")),  # a second departure: ignored
    ]
    snap = evaluate(events, t("14:00"))
    assert snap.row("ed_4h_pct", "today").numerator == 0.0
    assert snap.row("ed_4h_pct_type1", "today").denominator == 1.0
    assert snap.row("ed_4h_pct_type3", "today").denominator == 0.0
    assert snap.value("ed_attendances", "today") == 1.0


# --- Windows -------------------------------------------------------------------------------------------------------


def test_mtd_and_today_across_a_month_boundary() -> None:
    events = [
        # X: arrives 31 Jan 23:00, departs 1 Feb 02:00 (3 h, within) → February by departure, January by arrival.
        *ed_attendance("X", "2026-01-31T23:00", "2026-02-01T02:00"),
        # J: arrives 31 Jan 10:00, departs 31 Jan 15:00 (5 h, breach) → January only.
        *ed_attendance("J", "2026-01-31T10:00", "2026-01-31T15:00"),
        # F: arrives 1 Feb 08:00, departs 1 Feb 09:00 (within).
        *ed_attendance("F", "2026-02-01T08:00", "2026-02-01T09:00"),
    ]
    snap = evaluate(events, "2026-02-01T10:00")
    today = snap.row("ed_4h_pct", "today")
    assert (today.numerator, today.denominator) == (2.0, 2.0)  # X and F departed on 1 Feb, both within
    mtd = snap.row("ed_4h_pct", "mtd")
    assert (mtd.numerator, mtd.denominator) == (2.0, 2.0)  # same: February so far
    month = snap.row("ed_4h_pct", "month")  # January, the last complete month
    assert (month.numerator, month.denominator) == (0.0, 1.0)  # J only, a breach → 0%
    assert month.value == 0.0
    assert snap.value("ed_attendances", "today") == 1.0  # F arrived 1 Feb
    assert snap.value("ed_attendances", "mtd") == 1.0  # F
    assert snap.value("ed_attendances", "month") == 2.0  # X and J arrived in January
    # As of 31 Jan 23:30 X is in the department; January's mtd has J (departed) only.
    snap = evaluate(events, "2026-01-31T23:30")
    assert snap.value("ed_in_department", "live") == 1.0  # X
    assert snap.row("ed_4h_pct", "mtd").denominator == 1.0  # J
    assert snap.value("ed_attendances", "today") == 2.0  # J and X arrived 31 Jan


def test_mtd_covers_earlier_days_today_does_not() -> None:
    events = [
        *ed_attendance("d2", "2026-03-02T10:00", "2026-03-02T15:00"),  # 5 h breach, 2 March
        *ed_attendance("d9", "2026-03-09T10:00", "2026-03-09T11:00"),  # within, 9 March
        *ed_attendance("d10", "2026-03-10T10:00", "2026-03-10T12:00"),  # within, today
    ]
    snap = evaluate(events, t("18:00"))
    today, mtd = snap.row("ed_4h_pct", "today"), snap.row("ed_4h_pct", "mtd")
    assert (today.numerator, today.denominator, today.value) == (1.0, 1.0, 100.0)
    # mtd: 2 within of 3 → 66.67%.
    assert (mtd.numerator, mtd.denominator) == (2.0, 3.0)
    assert mtd.value == pytest.approx(200.0 / 3)
    assert snap.value("ed_attendances", "mtd") == 3.0
    # A departure exactly at T counts (the window is closed at T); one a second after T does not exist yet.
    events_t = [*events, *ed_attendance("at-T", t("16:00"), t("18:00:00"))]
    assert evaluate(events_t, t("18:00")).row("ed_4h_pct", "today").denominator == 2.0
    assert evaluate(events_t, t("17:59:59")).row("ed_4h_pct", "today").denominator == 1.0


# --- Scopes, department types, targets and status ----------------------------------------------------------------


def test_scopes_site_org_system_and_department_types() -> None:
    events = [
        # At RWEAA: type 1 within, type 1 breach, type 3 within.
        *ed_attendance("s1", t("08:00"), t("09:00"), department_type="1"),
        *ed_attendance("s2", t("08:00"), t("13:00"), department_type="1"),
        *ed_attendance("s3", t("08:00"), t("08:30"), department_type="3"),
        # At RWE with no site code: counts for the organisation and the system, not for RWEAA.
        *ed_attendance("s4", t("08:00"), t("12:30"), department_type="1", site=None),
    ]
    snap = evaluate(events, t("14:00"))
    site = snap.row("ed_4h_pct", "today", "site", "RWEAA")
    assert (site.numerator, site.denominator) == (2.0, 3.0)  # s1, s3 of s1..s3 → 66.7%
    assert site.value == pytest.approx(200.0 / 3)
    org = snap.row("ed_4h_pct", "today", "org", "RWE")
    assert (org.numerator, org.denominator, org.value) == (2.0, 4.0, 50.0)  # s1, s3 of 4
    system = snap.row("ed_4h_pct", "today", "system", "QK1")
    assert (system.numerator, system.denominator, system.value) == (2.0, 4.0, 50.0)
    t1 = snap.row("ed_4h_pct_type1", "today", "system", "QK1")
    assert (t1.numerator, t1.denominator) == (1.0, 3.0)  # s1 of s1, s2, s4
    t3 = snap.row("ed_4h_pct_type3", "today", "site", "RWEAA")
    assert (t3.numerator, t3.denominator, t3.value) == (1.0, 1.0, 100.0)
    t2 = snap.row("ed_4h_pct_type2", "today")
    assert (t2.denominator, t2.value, t2.status) == (0.0, None, "none")
    assert snap.value("ed_attendances_type3", "today", "site", "RWEAA") == 1.0
    assert snap.value("ed_attendances", "today", "org", "RWE") == 4.0
    assert snap.value("ed_attendances", "today", "site", "RWEAA") == 3.0
    # ED scopes: RWEAA (the only site with an ED), RWE, QK1; no rows for sites without an ED or for RX9.
    assert not snap.has("ed_4h_pct", "today", "site", "RWEAE")
    assert not snap.has("ed_4h_pct", "today", "org", "RX9")


@pytest.mark.parametrize(
    ("within", "total", "value", "status"),
    [
        (4, 5, 80.0, "green"),  # 4/5 = 80% ≥ 78 → green
        (39, 50, 78.0, "green"),  # 39/50 = 78% exactly → green (≥)
        (3, 4, 75.0, "amber"),  # 75%: misses 78 by 3 ≤ amber_within 5 → amber
        (73, 100, 73.0, "amber"),  # misses by exactly 5 → amber
        (7, 10, 70.0, "red"),  # misses by 8 > 5 → red
    ],
)
def test_ed_4h_target_and_status(within: int, total: int, value: float, status: str) -> None:
    events = []
    for i in range(total):
        # within: 08:00 → 11:00 (3 h); breach: 08:00 → 13:00 (5 h)
        events += ed_attendance(f"st{i}", t("08:00"), t("11:00") if i < within else t("13:00"))
    row = evaluate(events, t("14:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (within, total)
    assert row.value == pytest.approx(value)
    assert row.target == 78.0  # 2025/26 operational target
    assert row.status == status


def test_ed_status_none_without_departures_and_for_untargeted_indicators() -> None:
    snap = evaluate([ed_arrived("only", t("08:00"))], t("09:00"))
    row = snap.row("ed_4h_pct", "today")
    assert (row.value, row.target, row.status) == (None, 78.0, "none")  # denominator 0 → no value → none
    live = snap.row("ed_in_department", "live")
    assert (live.value, live.target, live.status) == (1.0, None, "none")


def test_ed_12h_target_strictly_below_10_pct() -> None:
    # 1 of 10 over 12 h → 10% → misses "< 10" by 0 → amber; 1 of 11 → 9.09% → green; 3 of 10 → 30% → red.
    def build(over: int, total: int) -> list:
        out = []
        for i in range(total):
            departed = "2026-03-10T21:00:01" if i < over else "2026-03-10T10:00"  # 12:00:01 vs 1 h from 09:00
            out += ed_attendance(f"tw{i}", "2026-03-10T09:00", departed)
        return out

    for over, total, status in ((1, 10, "amber"), (1, 11, "green"), (3, 10, "red")):
        row = evaluate(build(over, total), t("22:00")).row("ed_12h_pct", "today")
        assert (row.numerator, row.denominator) == (over, total)
        assert row.target == 10.0
        assert row.status == status, (over, total, row.value)


def test_snapshot_rows_carry_evaluation_time() -> None:
    snap = evaluate(ed_attendance("ts", t("08:00"), t("09:00")), t("10:00"))
    assert snap.row("ed_4h_pct", "today").ts == when(t("10:00")).astimezone(dt.UTC)
    assert ed_arrived("tz", "2026-06-01T10:00").occurred_at == when("2026-06-01T09:00Z")  # BST stored as UTC


def test_departure_before_the_ambulance_clock_start_counts_as_within() -> None:
    # Ambulance arrival 10:00, no handover → clock start 10:15; departed 10:10 (left): duration −5 min ≤ 4 h → within.
    events = ed_attendance("early", t("10:00"), t("10:10"), "ambulance")
    row = evaluate(events, t("11:00")).row("ed_4h_pct", "today")
    assert (row.numerator, row.denominator) == (1.0, 1.0)
    assert evaluate(events, t("11:00")).row("ed_12h_pct", "today").numerator == 0.0


def test_unknown_site_is_rejected_and_counts_nowhere() -> None:
    engine = Engine(config())
    bad = ed_arrived("bad", t("09:00"), site="RWEZZ")  # not a site of the LLR ICB
    good = ed_arrived("good", t("09:00"))
    assert engine.ingest([bad, good]) == 1
    assert [reason for _, reason in engine.rejected] == ["site_code: unknown site 'RWEZZ' for ICB QK1"]
    assert Snapshot(engine.snapshot(when(t("10:00")))).value("ed_in_department", "live") == 1.0


def test_twelve_hours_and_attendances_by_department_type() -> None:
    # Today at RWEAA: type 1 — a 12 h 1 min stay (over 12 h from arrival) and a 3 h stay; type 3 — a 1 h stay.
    events = [
        *ed_attendance("k1", t("00:30"), t("12:31"), department_type="1"),  # 12:01 > 12 h
        *ed_attendance("k2", t("08:00"), t("11:00"), department_type="1"),
        *ed_attendance("k3", t("09:00"), t("10:00"), department_type="3"),
    ]
    snap = evaluate(events, t("14:00"))
    t1 = snap.row("ed_12h_pct_type1", "today")
    assert (t1.numerator, t1.denominator, t1.value) == (1.0, 2.0, 50.0)  # k1 of k1, k2
    t3 = snap.row("ed_12h_pct_type3", "today", "site", "RWEAA")
    assert (t3.numerator, t3.denominator, t3.value) == (0.0, 1.0, 0.0)  # k3: 1 h
    all_types = snap.row("ed_12h_pct", "today")
    assert (all_types.numerator, all_types.denominator) == (1.0, 3.0)  # k1 of 3 → 33.3%
    # No type 2 department in LLR: its rows are there, empty (0 attendances, 0/0 with no value).
    assert snap.value("ed_attendances_type2", "today") == 0.0
    assert snap.value("ed_attendances_type1", "today") == 2.0
    t2 = snap.row("ed_12h_pct_type2", "today")
    assert (t2.numerator, t2.denominator, t2.value) == (0.0, 0.0, None)

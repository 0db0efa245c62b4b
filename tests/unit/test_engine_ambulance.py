"""Ambulance response-time and handover indicators from the pure-Python engine, against hand-worked cases.

Times without an offset are Europe/London local time; 10 March 2026 is GMT (local = UTC). Every expected number is
worked out by hand in the comment next to it.
"""

from __future__ import annotations

import random

import pytest
from events_factory import (
    amb_at_hospital,
    amb_call_connected,
    amb_clock_started,
    amb_closed,
    amb_crew_clear,
    amb_handover_completed,
    amb_recategorised,
    amb_resource_arrived,
    amb_response,
    evaluate,
)

DAY = "2026-03-10"
AMB_SCOPES = (("org", "RX9"), ("system", "QK1"))


def t(hhmmss: str, day: str = DAY) -> str:
    return f"{day}T{hhmmss}"


def counts(snap, window: str = "today", scope: tuple[str, str] = ("system", "QK1")) -> dict[int, float]:
    """Number of response times per category (the p90 row's denominator)."""
    return {c: snap.row(f"amb_cat{c}_p90_min", window, *scope).denominator for c in (1, 2, 3, 4)}


# --- Worked examples 2 and 3 ----------------------------------------------------------------------------------------


CAT2_TIMES = (5, 9, 12, 20, 31, 44, 7, 18, 25, 60)


def test_example2_cat2_mean_and_nearest_rank_p90() -> None:
    events = []
    for i, minutes in enumerate(CAT2_TIMES):
        events += amb_response(f"ex2-{i}", t(f"{8 + i // 4:02d}:{(i % 4) * 10:02d}"), minutes, 2)
    snap = evaluate(events, t("12:00"))
    for scope in AMB_SCOPES:
        mean = snap.row("amb_cat2_mean_min", "today", *scope)
        # Σ = 5+9+12+20+31+44+7+18+25+60 = 231 over n = 10 → 23.1 min.
        assert mean.numerator == pytest.approx(231.0)
        assert mean.denominator == 10.0
        assert mean.value == pytest.approx(23.1)
        # Sorted: 5 7 9 12 18 20 25 31 44 60; ⌈0.9·10⌉ = 9th → 44.
        p90 = snap.row("amb_cat2_p90_min", "today", *scope)
        assert p90.value == 44.0
        assert p90.denominator == 10.0
    # Targets 2025/26: mean ≤ 30 (23.1 → green); p90 the LLR local ambition ≤ 30 with amber 10: 44 misses by 14 → red.
    mean, p90 = snap.row("amb_cat2_mean_min", "today"), snap.row("amb_cat2_p90_min", "today")
    assert (mean.target, mean.status) == (30.0, "green")
    assert (p90.target, p90.status) == (30.0, "red")
    # No other category has anything.
    assert counts(snap) == {1: 0.0, 2: 10.0, 3: 0.0, 4: 0.0}


def _example3(conveyed: bool) -> list:
    events = [
        amb_call_connected("ex3", t("08:58")),
        amb_clock_started("ex3", t("09:00"), 3),  # Cat 3
        amb_recategorised("ex3", t("09:05"), 2),  # → Cat 2
        amb_resource_arrived("ex3", t("09:12"), False, "RRV1"),  # rapid response vehicle
    ]
    if conveyed:
        events += [
            amb_resource_arrived("ex3", t("09:30"), True, "DCA1"),  # double-crewed ambulance
            amb_closed("ex3", t("10:15"), True),
        ]
    else:
        events.append(amb_closed("ex3", t("09:50"), False))
    return events


def test_example3_recategorised_and_conveyed() -> None:
    # Stop = first transport-capable arrival 09:30; 09:30 − 09:00 = 30 min; category at 09:30 = Cat 2.
    snap = evaluate(_example3(conveyed=True), t("11:00"))
    assert snap.value("amb_cat2_mean_min", "today") == 30.0
    assert snap.value("amb_cat2_p90_min", "today") == 30.0
    assert counts(snap) == {1: 0.0, 2: 1.0, 3: 0.0, 4: 0.0}


def test_example3_not_conveyed_with_only_the_rrv() -> None:
    # Closed not conveyed, no transport-capable arrival → stop = first arrival of any kind 09:12; 12 min, Cat 2.
    snap = evaluate(_example3(conveyed=False), t("11:00"))
    assert snap.value("amb_cat2_mean_min", "today") == 12.0
    assert counts(snap) == {1: 0.0, 2: 1.0, 3: 0.0, 4: 0.0}


# --- Clock stop rules -------------------------------------------------------------------------------------------------


def test_conveyed_with_only_an_rrv_has_no_response_time() -> None:
    events = [
        amb_clock_started("c", t("09:00"), 2),
        amb_resource_arrived("c", t("09:10"), False, "RRV"),
        amb_closed("c", t("10:00"), True),  # conveyed, yet no transport-capable arrival recorded
    ]
    snap = evaluate(events, t("11:00"))
    assert counts(snap) == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
    assert snap.value("amb_cat2_mean_min", "today") is None
    assert snap.row("amb_cat2_mean_min", "today").status == "none"


def test_closure_dependent_stop_counts_only_from_the_closure() -> None:
    events = [
        amb_clock_started("n", t("09:00"), 2),
        amb_resource_arrived("n", t("09:12"), False, "RRV"),
        amb_closed("n", t("10:00"), False),
    ]
    # As of 09:30: only the RRV, incident not closed → no response yet.
    assert counts(evaluate(events, t("09:30")))[2] == 0.0
    # As of 09:59:59: still not closed.
    assert counts(evaluate(events, t("09:59:59")))[2] == 0.0
    # As of 10:00:00 the closure (not conveyed) is in → stop 09:12, 12 min.
    snap = evaluate(events, t("10:00"))
    assert counts(snap)[2] == 1.0
    assert snap.value("amb_cat2_mean_min", "today") == 12.0
    # last_60m at 10:00 is (09:00, 10:00]: the stop (09:12) is in it.
    assert snap.value("amb_cat2_mean_min", "last_60m") == 12.0
    # At 10:30 last_60m is (09:30, 10:30]: the stop at 09:12 is not (windows go by stop time).
    snap = evaluate(events, t("10:30"))
    assert snap.row("amb_cat2_mean_min", "last_60m").denominator == 0.0
    assert snap.value("amb_cat2_mean_min", "today") == 12.0


def test_incident_not_closed_with_only_an_rrv_has_no_response_yet() -> None:
    events = [amb_clock_started("o", t("09:00"), 1), amb_resource_arrived("o", t("09:04"), False, "RRV")]
    assert counts(evaluate(events, t("12:00")))[1] == 0.0


def test_latest_closure_decides() -> None:
    base = [amb_clock_started("l", t("09:00"), 2), amb_resource_arrived("l", t("09:08"), False, "RRV")]
    # Closed not conveyed 09:40, corrected to conveyed 09:45 → latest says conveyed → no stop.
    a = [*base, amb_closed("l", t("09:40"), False), amb_closed("l", t("09:45"), True)]
    assert counts(evaluate(a, t("10:00")))[2] == 0.0
    # As of 09:42 (before the correction) the not-conveyed closure stands → stop 09:08, 8 min.
    snap = evaluate(a, t("09:42"))
    assert snap.value("amb_cat2_mean_min", "today") == 8.0
    # Closed conveyed 09:40, corrected to not conveyed 09:45 → stop 09:08, 8 min.
    b = [*base, amb_closed("l", t("09:40"), True), amb_closed("l", t("09:45"), False)]
    assert evaluate(b, t("10:00")).value("amb_cat2_mean_min", "today") == 8.0


def test_first_transport_capable_arrival_stops_the_clock_even_when_not_conveyed() -> None:
    events = [
        amb_clock_started("tc", t("09:00"), 2),
        amb_resource_arrived("tc", t("09:05"), False, "RRV"),
        amb_resource_arrived("tc", t("09:20"), True, "DCA1"),
        amb_resource_arrived("tc", t("09:25"), True, "DCA2"),
        amb_closed("tc", t("10:00"), False),
    ]
    # First transport-capable arrival 09:20 → 20 min (not the RRV's 5, not DCA2's 25).
    snap = evaluate(events, t("10:30"))
    assert snap.value("amb_cat2_mean_min", "today") == 20.0
    # It does not wait for the closure: as of 09:21 the stop is known.
    assert evaluate(events, t("09:21")).value("amb_cat2_mean_min", "today") == 20.0


def test_arrivals_before_the_clock_start_are_ignored() -> None:
    events = [
        amb_resource_arrived("pre", t("08:59"), True, "DCA0"),  # before the clock start: ignored
        amb_clock_started("pre", t("09:00"), 3),
        amb_resource_arrived("pre", t("09:45"), True, "DCA1"),
    ]
    # Stop 09:45 → 45 min.
    assert evaluate(events, t("10:00")).value("amb_cat3_mean_min", "today") == 45.0


def test_no_clock_start_no_response_time() -> None:
    events = [
        amb_call_connected("h", t("09:00")),
        amb_resource_arrived("h", t("09:10"), True, "DCA"),
        amb_closed("h", t("09:50"), True),
        amb_crew_clear("h", t("10:00")),
    ]
    assert counts(evaluate(events, t("11:00"))) == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}


def test_hear_and_treat_no_responder_no_response_time() -> None:
    events = [amb_clock_started("ht", t("09:00"), 4), amb_closed("ht", t("09:30"), False)]
    assert counts(evaluate(events, t("11:00")))[4] == 0.0


def test_stop_after_t_is_not_counted() -> None:
    events = amb_response("later", t("09:00"), 30, 2)  # stop 09:30
    assert counts(evaluate(events, t("09:29:59")))[2] == 0.0
    assert counts(evaluate(events, t("09:30:00")))[2] == 1.0  # a stop at T counts


# --- Category at the stop ---------------------------------------------------------------------------------------------


def test_recategorisation_after_the_stop_does_not_change_the_category() -> None:
    events = [
        amb_clock_started("r", t("09:00"), 2),
        amb_resource_arrived("r", t("09:20"), True, "DCA"),  # stop: Cat 2, 20 min
        amb_recategorised("r", t("09:25"), 1),  # after the stop: ignored
    ]
    snap = evaluate(events, t("10:00"))
    assert counts(snap) == {1: 0.0, 2: 1.0, 3: 0.0, 4: 0.0}
    assert snap.value("amb_cat2_mean_min", "today") == 20.0


def test_recategorisation_at_the_stop_instant_and_several_before_it() -> None:
    events = [
        amb_clock_started("s", t("09:00"), 4),
        amb_recategorised("s", t("09:02"), 3),
        amb_recategorised("s", t("09:06"), 1),  # latest before the stop → ... but see the next one
        amb_recategorised("s", t("09:15"), 2),  # at the stop instant: "at or before" → Cat 2
        amb_resource_arrived("s", t("09:15"), True, "DCA"),
    ]
    snap = evaluate(events, t("10:00"))
    assert counts(snap) == {1: 0.0, 2: 1.0, 3: 0.0, 4: 0.0}
    assert snap.value("amb_cat2_mean_min", "today") == 15.0  # 09:15 − 09:00


def test_category_while_the_clock_runs_and_then_at_stop() -> None:
    events = [
        amb_clock_started("u", t("09:00"), 3),
        amb_recategorised("u", t("09:30"), 1),
        amb_resource_arrived("u", t("09:40"), True, "DCA"),
    ]
    # As of 09:35 the clock runs: nothing counted in any category.
    assert counts(evaluate(events, t("09:35"))) == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
    # As of 09:40: Cat 1 (recategorised at 09:30), 40 min.
    snap = evaluate(events, t("09:40"))
    assert counts(snap) == {1: 1.0, 2: 0.0, 3: 0.0, 4: 0.0}
    assert snap.value("amb_cat1_mean_min", "today") == 40.0


# --- Windows -------------------------------------------------------------------------------------------------------


def test_last_60m_edges() -> None:
    events = [
        # A: stop exactly at T − 60 min = 11:00:00 → excluded. 10 min.
        *amb_response("A", t("10:50:00"), 10, 2),
        # B: stop 11:00:01 → included. 20 min.
        *amb_response("B", t("10:40:01"), 20, 2),
        # C: stop exactly at T = 12:00:00 → included. 30 min.
        *amb_response("C", t("11:30:00"), 30, 2),
    ]
    snap = evaluate(events, t("12:00:00"))
    last = snap.row("amb_cat2_mean_min", "last_60m")
    assert last.denominator == 2.0  # B, C
    assert last.value == 25.0  # (20 + 30) / 2
    assert snap.value("amb_cat2_p90_min", "last_60m") == 30.0  # ⌈0.9·2⌉ = 2nd of [20, 30]
    today = snap.row("amb_cat2_mean_min", "today")
    assert today.denominator == 3.0
    assert today.value == 20.0  # (10 + 20 + 30) / 3
    # One second later, last_60m = (11:00:01, 12:00:01]: B's stop (11:00:01) drops out → C only.
    snap = evaluate(events, t("12:00:01"))
    assert snap.row("amb_cat2_mean_min", "last_60m").denominator == 1.0
    assert snap.value("amb_cat2_mean_min", "last_60m") == 30.0


def test_windows_by_stop_time_today_mtd_month() -> None:
    events = [
        # Feb 27: 50 min Cat 3 (month = February when T is in March).
        *amb_response("feb", "2026-02-27T10:00", 50, 3),
        # Mar 2: 70 min Cat 3.
        *amb_response("m2", "2026-03-02T10:00", 70, 3),
        # Started 9 Mar 23:50, stopped 10 Mar 00:10 → 20 min, falls on 10 March (by stop time).
        *amb_response("mid", "2026-03-09T23:50", 20, 3),
        # 10 Mar 08:00: 30 min.
        *amb_response("m10", t("08:00"), 30, 3),
    ]
    snap = evaluate(events, t("12:00"))
    today = snap.row("amb_cat3_mean_min", "today")
    assert (today.numerator, today.denominator) == (50.0, 2.0)  # 20 + 30 over 2
    assert today.value == 25.0
    mtd = snap.row("amb_cat3_mean_min", "mtd")
    assert (mtd.numerator, mtd.denominator) == (120.0, 3.0)  # 70 + 20 + 30 over 3
    assert mtd.value == 40.0
    assert snap.value("amb_cat3_p90_min", "mtd") == 70.0  # ⌈2.7⌉ = 3rd of [20, 30, 70]
    month = snap.row("amb_cat3_mean_min", "month")
    assert (month.value, month.denominator) == (50.0, 1.0)  # February: 'feb' only
    # As of 9 March 23:59 the midnight incident's clock still runs: today (9 March) has nothing.
    assert evaluate(events, "2026-03-09T23:59").row("amb_cat3_mean_min", "today").denominator == 0.0


# --- Nearest-rank 90th centile -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "p90", "mean"),
    [
        ((17,), 17.0, 17.0),  # n = 1: ⌈0.9⌉ = 1st → 17
        ((10, 1, 2, 3, 4, 5, 6, 7, 8, 9), 9.0, 5.5),  # n = 10: ⌈9.0⌉ = 9th of 1..10 → 9; mean 55/10
        ((11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 10.0, 6.0),  # n = 11: ⌈9.9⌉ = 10th of 1..11 → 10; mean 66/11
        ((4, 8), 8.0, 6.0),  # n = 2: ⌈1.8⌉ = 2nd → 8
        (
            (3, 3, 3, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 100),
            9.0,
            12.65,
        ),  # n = 20: ⌈18.0⌉ = 18th → 9; (3·3 + 16·9 + 100)/20 = 253/20
    ],
)
def test_nearest_rank_p90(times: tuple[int, ...], p90: float, mean: float) -> None:
    events = []
    for i, minutes in enumerate(times):
        events += amb_response(f"nr{i}", t(f"{6 + i // 6:02d}:{(i % 6) * 10:02d}"), minutes, 1)
    snap = evaluate(events, t("13:00"))
    assert snap.value("amb_cat1_p90_min", "today") == p90
    assert snap.row("amb_cat1_p90_min", "today").denominator == len(times)
    assert snap.value("amb_cat1_mean_min", "today") == pytest.approx(mean)


def test_all_four_categories_and_their_targets() -> None:
    events = [
        # Cat 1: 6 and 9 min → mean 7.5 (target ≤ 7, amber 1 → misses by 0.5 → amber); p90 ⌈1.8⌉ = 2nd → 9 (≤ 15 green)
        *amb_response("c1a", t("08:00"), 6, 1),
        *amb_response("c1b", t("08:10"), 9, 1),
        # Cat 2: 28 min → mean 28 (≤ 30 green); p90 28 (local ≤ 30 green)
        *amb_response("c2", t("08:20"), 28, 2),
        # Cat 3: 100 and 160 min → mean 130 (no target); p90 160 (≤ 120, amber 30 → misses by 40 → red)
        *amb_response("c3a", t("06:00"), 100, 3),
        *amb_response("c3b", t("06:10"), 160, 3),
        # Cat 4: 200 min → p90 200 (≤ 180, amber 30 → misses by 20 → amber)
        *amb_response("c4", t("05:00"), 200, 4),
    ]
    snap = evaluate(events, t("12:00"))
    for scope in AMB_SCOPES:
        assert counts(snap, "today", scope) == {1: 2.0, 2: 1.0, 3: 2.0, 4: 1.0}
        assert snap.value("amb_cat1_mean_min", "today", *scope) == 7.5
        assert snap.value("amb_cat1_p90_min", "today", *scope) == 9.0
        assert snap.value("amb_cat2_mean_min", "today", *scope) == 28.0
        assert snap.value("amb_cat3_mean_min", "today", *scope) == 130.0
        assert snap.value("amb_cat3_p90_min", "today", *scope) == 160.0
        assert snap.value("amb_cat4_mean_min", "today", *scope) == 200.0
        assert snap.value("amb_cat4_p90_min", "today", *scope) == 200.0
    statuses = {
        ind: (snap.row(ind, "today").target, snap.row(ind, "today").status)
        for ind in (
            "amb_cat1_mean_min",
            "amb_cat1_p90_min",
            "amb_cat2_mean_min",
            "amb_cat2_p90_min",
            "amb_cat3_mean_min",
            "amb_cat3_p90_min",
            "amb_cat4_mean_min",
            "amb_cat4_p90_min",
        )
    }
    assert statuses == {
        "amb_cat1_mean_min": (7.0, "amber"),
        "amb_cat1_p90_min": (15.0, "green"),
        "amb_cat2_mean_min": (30.0, "green"),
        "amb_cat2_p90_min": (30.0, "green"),
        "amb_cat3_mean_min": (None, "none"),
        "amb_cat3_p90_min": (120.0, "red"),
        "amb_cat4_mean_min": (None, "none"),
        "amb_cat4_p90_min": (180.0, "amber"),
    }


def test_ambulance_scopes_are_rx9_and_the_system() -> None:
    snap = evaluate(amb_response("sc", t("09:00"), 11, 2), t("10:00"))
    scopes = {(r.scope_type, r.scope_code) for r in snap.rows if r.indicator == "amb_cat2_mean_min"}
    assert scopes == {("org", "RX9"), ("system", "QK1")}
    assert snap.value("amb_cat2_mean_min", "today", "org", "RX9") == 11.0
    assert snap.value("amb_cat2_mean_min", "today", "system", "QK1") == 11.0


def test_seconds_are_exact() -> None:
    # 09:00:00 → 09:07:30 = 450 s = 7.5 min; 09:10:00 → 09:18:45 = 525 s = 8.75 min. Mean 8.125, p90 2nd → 8.75.
    events = [
        amb_clock_started("x1", t("09:00:00"), 1),
        amb_resource_arrived("x1", t("09:07:30"), True),
        amb_clock_started("x2", t("09:10:00"), 1),
        amb_resource_arrived("x2", t("09:18:45"), True),
    ]
    snap = evaluate(events, t("10:00"))
    assert snap.value("amb_cat1_mean_min", "today") == pytest.approx(8.125)
    assert snap.value("amb_cat1_p90_min", "today") == pytest.approx(8.75)


# --- Handovers ---------------------------------------------------------------------------------------------------------


def _handover(incident: str, arrived: str, handed_over: str | None, *, start: bool = True) -> list:
    out = [amb_clock_started(incident, t("08:00"), 2)] if start else []
    out.append(amb_at_hospital(incident, t(arrived)))
    if handed_over is not None:
        out.append(amb_handover_completed(incident, t(handed_over)))
    return out


def test_handover_indicators() -> None:
    events = [
        *_handover("h1", "09:00", "09:10"),  # 10 min
        *_handover("h2", "09:00", "09:20"),  # 20 min
        *_handover("h3", "09:00", "09:50", start=False),  # 50 min; no clock start: still a handover
        *_handover("h4", "09:00", "10:15"),  # 75 min
        *_handover("h5", "10:30", None),  # waiting since 10:30
        *_handover("h6", "10:50", None),  # waiting since 10:50
    ]
    snap = evaluate(events, t("11:00"))
    for scope in (("site", "RWEAA"), ("org", "RWE"), ("system", "QK1")):
        mean = snap.row("amb_handover_mean_min", "today", *scope)
        # (10 + 20 + 50 + 75) / 4 = 155 / 4 = 38.75 min.
        assert (mean.numerator, mean.denominator) == (155.0, 4.0)
        assert mean.value == pytest.approx(38.75)
        assert snap.value("amb_handover_over_15", "today", *scope) == 3.0  # 20, 50, 75
        assert snap.value("amb_handover_over_30", "today", *scope) == 2.0  # 50, 75
        assert snap.value("amb_handover_over_45", "today", *scope) == 2.0  # 50, 75
        assert snap.value("amb_handover_over_60", "today", *scope) == 1.0  # 75
        # Hours lost: (0 + 5 + 35 + 60) min = 100 min = 1.6667 h.
        assert snap.value("amb_handover_hours_lost", "today", *scope) == pytest.approx(100 / 60)
        assert snap.value("amb_waiting_handover_now", "live", *scope) == 2.0  # h5, h6
        assert snap.value("amb_waiting_handover_longest_min", "live", *scope) == 30.0  # 11:00 − 10:30
    # Handover scopes are the receiving site's, not the ambulance service's.
    assert not snap.has("amb_handover_mean_min", "today", "org", "RX9")
    # Over 45 target ≤ 0 with amber 2: 2 → misses by 2 → amber.
    over45 = snap.row("amb_handover_over_45", "today")
    assert (over45.target, over45.status) == (0.0, "amber")
    # last_60m at 11:00 = (10:00, 11:00]: only h4 (handed over 10:15) → 75 min.
    assert snap.value("amb_handover_mean_min", "last_60m") == 75.0


def test_handover_exactly_15_minutes_is_not_over_15() -> None:
    events = [*_handover("e1", "09:00", "09:15"), *_handover("e2", "09:00", "09:15:01")]
    snap = evaluate(events, t("10:00"))
    assert snap.value("amb_handover_over_15", "today") == 1.0  # only e2 (15:01 > 15)
    # Hours lost: 0 + 1 s = 1/3600 h.
    assert snap.value("amb_handover_hours_lost", "today") == pytest.approx(1 / 3600)


def test_last_60m_across_midnight() -> None:
    events = [
        *amb_response("pm", "2026-03-09T23:30", 15, 2),  # stop 23:45 on 9 March
        *amb_response("am", "2026-03-10T00:05", 20, 2),  # stop 00:25 on 10 March
    ]
    snap = evaluate(events, "2026-03-10T00:30")
    # last_60m = (23:30, 00:30]: both stops → (15 + 20) / 2 = 17.5.
    assert snap.value("amb_cat2_mean_min", "last_60m") == 17.5
    # today (10 March) has only 'am'.
    assert snap.value("amb_cat2_mean_min", "today") == 20.0


def test_handover_before_the_hospital_arrival_is_ignored() -> None:
    events = [
        amb_handover_completed("hb", t("08:55")),  # before the arrival at hospital: ignored
        amb_at_hospital("hb", t("09:00")),
        amb_handover_completed("hb", t("09:20")),  # the earliest at or after it → 20 min
    ]
    snap = evaluate(events, t("10:00"))
    assert snap.value("amb_handover_mean_min", "today") == 20.0
    assert snap.value("amb_waiting_handover_now", "live") == 0.0
    # As of 09:10 it is waiting (10 min).
    snap = evaluate(events, t("09:10"))
    assert snap.value("amb_waiting_handover_now", "live") == 1.0
    assert snap.value("amb_waiting_handover_longest_min", "live") == 10.0


def test_transport_capable_arrival_after_a_not_conveyed_closure() -> None:
    events = [
        amb_clock_started("ac", t("09:00"), 2),
        amb_resource_arrived("ac", t("09:12"), False, "RRV"),
        amb_closed("ac", t("09:50"), False),
        amb_resource_arrived("ac", t("10:10"), True, "DCA"),
    ]
    # As of 10:00: closed not conveyed, no transport-capable arrival → stop 09:12 (12 min).
    assert evaluate(events, t("10:00")).value("amb_cat2_mean_min", "today") == 12.0
    # As of 10:30: a transport-capable arrival exists → the stop is the first of those, 10:10 (70 min).
    assert evaluate(events, t("10:30")).value("amb_cat2_mean_min", "today") == 70.0


# --- Days when the clocks change -------------------------------------------------------------------------------------
# Response and handover times are real elapsed time (UTC instants subtracted), windows are local: `today` runs from
# local midnight, `last_60m` is the 60 real minutes before T, whatever the wall clock reads. Times here are UTC (Z).

SPRING = [  # Clocks go forward at 2026-03-29T01:00Z (01:00 GMT → 02:00 BST); 29 March lasts 23 hours.
    *amb_response("sat", "2026-03-28T23:40Z", 15, 2),  # stop 23:55 GMT on 28 March
    *amb_response("midnight", "2026-03-28T23:50Z", 25, 2),  # stop 00:15 GMT on 29 March
    *amb_response("gmt", "2026-03-29T00:30Z", 10, 2),  # stop 00:40 GMT
    *amb_response("jump", "2026-03-29T00:50Z", 20, 2),  # 00:50 GMT → 02:10 BST: 20 min (the wall clock says 80)
    *amb_response("late", "2026-03-29T22:30Z", 29, 2),  # stop 22:59Z = 23:59 BST, last minute of 29 March
    *amb_response("next", "2026-03-29T22:50Z", 20, 2),  # stop 23:10Z = 00:10 BST on 30 March
]


def _mean(snap, window: str) -> tuple[float | None, float, float]:
    row = snap.row("amb_cat2_mean_min", window)
    return (None if row.value is None else round(row.value, 6), row.numerator, row.denominator)


def test_response_times_and_windows_when_the_clocks_go_forward() -> None:
    # T = 01:30Z = 02:30 BST. last_60m = (00:30Z, 01:30Z]: gmt (00:40Z) and jump (01:10Z) → (10 + 20) / 2 = 15. A
    # wall-clock window (01:30–02:30 local) would hold jump alone.
    snap = evaluate(SPRING, "2026-03-29T01:30Z")
    assert _mean(snap, "last_60m") == (15.0, 30.0, 2.0)
    # today (29 March from 00:00 GMT): midnight, gmt, jump → (25 + 10 + 20) / 3 = 55 / 3.
    assert _mean(snap, "today") == (18.333333, 55.0, 3.0)
    # T = 22:59:30Z = 23:59:30 BST, still 29 March: today adds late → (25 + 10 + 20 + 29) / 4 = 84 / 4 = 21.
    snap = evaluate(SPRING, "2026-03-29T22:59:30Z")
    assert _mean(snap, "today") == (21.0, 84.0, 4.0)
    assert snap.value("amb_cat2_p90_min", "today") == 29.0  # ⌈0.9·4⌉ = 4th of [10, 20, 25, 29]
    assert _mean(snap, "mtd") == (19.8, 99.0, 5.0)  # + sat (15): 99 / 5
    assert _mean(snap, "last_60m") == (29.0, 29.0, 1.0)  # (21:59:30Z, 22:59:30Z]: late
    # T = 23:30Z = 00:30 BST on 30 March: a new day holding next alone; last_60m = (22:30Z, 23:30Z]: late and next.
    snap = evaluate(SPRING, "2026-03-29T23:30Z")
    assert _mean(snap, "today") == (20.0, 20.0, 1.0)
    assert _mean(snap, "last_60m") == (24.5, 49.0, 2.0)
    assert _mean(snap, "mtd") == (19.833333, 119.0, 6.0)  # all six: 119 / 6


AUTUMN = [  # Clocks go back at 2026-10-25T01:00Z (02:00 BST → 01:00 GMT); 25 October lasts 25 hours.
    *amb_response("prev", "2026-10-24T22:20Z", 30, 2),  # stop 22:50Z = 23:50 BST on 24 October
    *amb_response("first", "2026-10-24T22:55Z", 15, 2),  # stop 23:10Z = 00:10 BST on 25 October
    *amb_response("bst", "2026-10-25T00:15Z", 10, 2),  # stop 00:25Z = 01:25 BST (the first 01:25)
    *amb_response("back", "2026-10-25T00:50Z", 20, 2),  # 01:50 BST → 01:10 GMT: 20 min (the wall clock says −40)
    *amb_response("hour", "2026-10-25T00:20Z", 60, 2),  # 01:20 BST → 01:20 GMT: 60 min (the wall clock says 0)
    *amb_response("eve", "2026-10-25T23:00Z", 30, 2),  # stop 23:30 GMT on 25 October
    *amb_response("next", "2026-10-25T23:50Z", 20, 2),  # stop 00:10 GMT on 26 October
]


def test_response_times_and_windows_when_the_clocks_go_back() -> None:
    # T = 01:30Z = 01:30 GMT. last_60m = (00:30Z, 01:30Z]: back (01:10Z) and hour (01:20Z) → (20 + 60) / 2 = 40. bst
    # stopped at 01:25 BST (00:25Z), 65 real minutes before T, though the wall clock reads 01:25 → out.
    snap = evaluate(AUTUMN, "2026-10-25T01:30Z")
    assert _mean(snap, "last_60m") == (40.0, 80.0, 2.0)
    # today (25 October from 23:00Z on the 24th): first, bst, back, hour → (15 + 10 + 20 + 60) / 4 = 26.25.
    assert _mean(snap, "today") == (26.25, 105.0, 4.0)
    assert snap.value("amb_cat2_p90_min", "today") == 60.0  # ⌈0.9·4⌉ = 4th of [10, 15, 20, 60]
    # T = 23:59:59Z, the 25th hour of 25 October: today adds eve → 135 / 5 = 27; mtd adds prev → 165 / 6 = 27.5.
    snap = evaluate(AUTUMN, "2026-10-25T23:59:59Z")
    assert _mean(snap, "today") == (27.0, 135.0, 5.0)
    assert snap.value("amb_cat2_p90_min", "today") == 60.0  # ⌈4.5⌉ = 5th of [10, 15, 20, 30, 60]
    assert _mean(snap, "mtd") == (27.5, 165.0, 6.0)
    # T = 00:10Z on 26 October: today holds next alone.
    assert _mean(evaluate(AUTUMN, "2026-10-26T00:10Z"), "today") == (20.0, 20.0, 1.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clock_change_days_do_not_depend_on_delivery_order_or_duplicates(seed: int) -> None:
    rng = random.Random(seed)
    for events, at in ((SPRING, "2026-03-29T22:59:30Z"), (AUTUMN, "2026-10-25T23:59:59Z")):
        delivered = [*events, *rng.choices(events, k=8)]  # redeliveries of the same event ids
        rng.shuffle(delivered)
        assert evaluate(delivered, at).values() == evaluate(events, at).values()


def test_handovers_when_the_clocks_change() -> None:
    events = [
        # Spring: at hospital 00:50 GMT, handed over 02:20 BST (01:20Z) → 30 min (the wall clock says 90).
        amb_at_hospital("hs", "2026-03-29T00:50Z"),
        amb_handover_completed("hs", "2026-03-29T01:20Z"),
        # Autumn: at hospital 01:45 BST (00:45Z), handed over 01:05 GMT (01:05Z) → 20 min (the wall clock says −40).
        amb_at_hospital("ha", "2026-10-25T00:45Z"),
        amb_handover_completed("ha", "2026-10-25T01:05Z"),
        # Autumn: at hospital 01:50 BST (00:50Z), still waiting.
        amb_at_hospital("hw", "2026-10-25T00:50Z"),
    ]
    snap = evaluate(events, "2026-03-29T12:00Z")
    assert snap.value("amb_handover_mean_min", "today") == 30.0
    assert snap.value("amb_handover_over_15", "today") == 1.0
    assert snap.value("amb_handover_over_30", "today") == 0.0  # 30 is not more than 30
    assert snap.value("amb_handover_hours_lost", "today") == pytest.approx(0.25)  # 30 − 15 = 15 min
    # T = 01:30 GMT on 25 October: ha's 20 min is in today and last_60m ((00:30Z, 01:30Z]); hw has waited 40 real
    # minutes (01:50 BST → 01:30 GMT; the wall clock says −20).
    snap = evaluate(events, "2026-10-25T01:30Z")
    assert snap.value("amb_handover_mean_min", "today") == 20.0
    assert snap.value("amb_handover_mean_min", "last_60m") == 20.0
    assert snap.value("amb_handover_hours_lost", "today") == pytest.approx(5 / 60)
    assert snap.value("amb_waiting_handover_now", "live") == 1.0
    assert snap.value("amb_waiting_handover_longest_min", "live") == 40.0

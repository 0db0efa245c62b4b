"""The independent SQL recomputation on real chDB, against hand-worked cases (INDICATORS.md, docs/definitions.md).

Every expected number is worked out by hand in a comment next to it. Events are built as dicts and validated through
schemas.events.parse_event, exactly as a connector's output would be.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from clickhouse.recompute import recompute
from clickhouse.store import Store
from schemas.config import Icb, load_config
from schemas.events import Envelope, parse_event, topic_of
from streams.engine import evaluate_at

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC

ICB = Icb.model_validate(
    {
        "code": "QK1",
        "name": "Test ICB",
        "synthetic_figures": True,
        "organisations": [
            {
                "code": "RWE",
                "name": "Acute trust",
                "kind": "acute",
                "sites": [
                    {"code": "RWEAA", "name": "ED and beds", "ed_department_types": ["1", "3"], "adult_ga_beds": 860},
                    {"code": "RWEAE", "name": "Beds, no ED", "adult_ga_beds": 410},
                    {"code": "RWEAK", "name": "Neither", "adult_ga_beds": 0},
                ],
            },
            {"code": "RX9", "name": "Ambulance service", "kind": "ambulance"},
            {"code": "RT5", "name": "Community trust", "kind": "community"},
        ],
    }
)
SYSTEM = ("system", "QK1")
DEFAULT_ORG = {"ed": "RWE", "ambulance": "RX9", "adt": "RWE", "discharge": "RWE"}


def when(text: str) -> dt.datetime:
    """An aware instant: ISO text with an offset or Z as given, naive text as Europe/London local time."""
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=LONDON) if value.tzinfo is None else value


class Feed:
    """Builds validated canonical events with unique ids, in the order written."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def add(self, event_type: str, at: str, **fields: Any) -> Envelope:
        family = event_type.split(".", 1)[0]
        raw = {
            "event_id": f"{family}-{len(self.events):04d}",
            "event_type": event_type,
            "occurred_at": when(at).isoformat(),
            "source": "TEST",
            "org_code": DEFAULT_ORG[family],
            **fields,
        }
        event = parse_event({k: v for k, v in raw.items() if v is not None})
        self.events.append(event)
        return event

    def ed(self, kind: str, at: str, attendance: str, site: str | None = "RWEAA", **fields: Any) -> Envelope:
        if kind == "arrived":
            fields = {"department_type": "1", **fields}
        if kind == "departed":
            fields = {"disposal": "discharged", **fields}
        return self.add(f"ed.{kind}", at, attendance_id=attendance, site_code=site, **fields)

    def amb(self, kind: str, at: str, incident: str, **fields: Any) -> Envelope:
        if kind == "resource_arrived":
            fields = {"resource_id": f"res-{len(self.events)}", **fields}
        return self.add(f"ambulance.{kind}", at, incident_id=incident, **fields)

    def adt(self, kind: str, at: str, spell: str, site: str | None = "RWEAA", **fields: Any) -> Envelope:
        if kind == "admitted":
            fields = {
                "patient_ref": "0123456789abcdef",
                "ward_code": "W1",
                "bed_category": "adult_ga",
                "escalation_bed": False,
                "admission_method": "emergency",
                **fields,
            }
        if kind == "transferred":
            fields = {"ward_code": "W2", "escalation_bed": False, **fields}
        return self.add(f"adt.{kind}", at, spell_id=spell, site_code=site, **fields)

    def dis(self, kind: str, at: str, spell: str, **fields: Any) -> Envelope:
        return self.add(f"discharge.{kind}", at, spell_id=spell, **fields)


def load(store: Store, events: list[Envelope], mode: str = "in_order") -> None:
    """Insert events the way the platform might receive them: in order, reversed one by one, or duplicated and
    shuffled across batches (the result must not depend on it)."""
    if mode == "in_order":
        batches = [events]
    elif mode == "reversed_one_by_one":
        batches = [[e] for e in reversed(events)]
    elif mode == "duplicated_shuffled":
        copies = events + events + events[::2]
        random.Random(7).shuffle(copies)
        batches = [copies[i : i + 3] for i in range(0, len(copies), 3)]
    else:
        raise ValueError(mode)
    for i, batch in enumerate(batches):
        by_topic: dict[str, list[tuple[Envelope, int, int]]] = {}
        for j, event in enumerate(batch):
            by_topic.setdefault(topic_of(event), []).append((event, 0, i * 1000 + j))
        for topic, items in by_topic.items():
            store.insert_events(topic, items)


Key = tuple[str, str, str, str]
Triple = tuple[float | None, float | None, float | None]


def evaluate(store: Store, at: str) -> dict[Key, Triple]:
    rows = recompute(store, when(at), ICB)
    out = {
        (r["indicator"], r["window"], r["scope_type"], r["scope_code"]): (r["value"], r["numerator"], r["denominator"])
        for r in rows
    }
    assert len(out) == len(rows), "one row per indicator, window and scope"
    return out


def got(result: dict[Key, Triple], indicator: str, window: str, scope: tuple[str, str] = SYSTEM) -> Triple:
    value, num, den = result[(indicator, window, *scope)]
    return (None if value is None else round(value, 6), num, den)


# --- scopes and empty results ----------------------------------------------------------------------------------


def test_every_configured_scope_appears_with_zeros(store: Store) -> None:
    result = evaluate(store, "2026-05-05 12:00")
    scopes_of: dict[str, set[tuple[str, str]]] = {}
    for indicator, _, scope_type, scope_code in result:
        scopes_of.setdefault(indicator, set()).add((scope_type, scope_code))
    # ED: only RWEAA has ED department types; its organisation RWE; the system.
    assert scopes_of["ed_4h_pct"] == {("site", "RWEAA"), ("org", "RWE"), SYSTEM}
    # Beds: RWEAA (860) and RWEAE (410) have adult G&A beds, RWEAK (0) does not.
    assert scopes_of["ga_beds_occupied"] == {("site", "RWEAA"), ("site", "RWEAE"), ("org", "RWE"), SYSTEM}
    # Ambulance: organisations of kind ambulance, and the system.
    assert scopes_of["amb_cat2_p90_min"] == {("org", "RX9"), SYSTEM}
    # Exactly the engine's rows for the same (empty) state, less OPEL, which is scored from the other indicators.
    engine = evaluate_at(load_config().model_copy(update={"icb": ICB}), [], when("2026-05-05 12:00"))
    engine_keys = {(s.indicator, s.window, s.scope_type, s.scope_code) for s in engine}
    assert set(result) == {k for k in engine_keys if not k[0].startswith("opel_")}
    assert got(result, "ed_4h_pct", "today") == (None, 0.0, 0.0)  # no departures: no value, 0/0 published
    assert got(result, "ed_attendances", "mtd") == (0.0, 0.0, None)
    assert got(result, "ed_over_12h_now", "live", ("site", "RWEAA")) == (0.0, 0.0, None)
    assert got(result, "amb_cat1_mean_min", "last_60m") == (None, 0.0, 0.0)  # n = 0: total 0, no mean
    assert got(result, "amb_cat1_p90_min", "last_60m") == (None, None, 0.0)  # n = 0: no centile
    assert got(result, "nctr_pct", "live") == (None, 0.0, 0.0)
    assert got(result, "ctr_met_pct", "live", ("site", "RWEAE")) == (None, 0.0, 0.0)
    assert got(result, "mofd_awaiting_plan_pathway_unknown", "live") == (0.0, 0.0, None)
    assert {k[1] for k in result if k[0].startswith("amb_cat")} == {"today", "last_60m", "mtd", "month"}
    assert {k[1] for k in result if k[0] == "ed_in_department"} == {"live"}


def test_naive_evaluation_time_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="aware"):
        recompute(store, dt.datetime(2026, 5, 5, 12), ICB)


# --- emergency department --------------------------------------------------------------------------------------


def test_worked_example_1_ed_clock_start_and_4_hours(store: Store) -> None:
    f = Feed()
    # Ambulance arrival 10:00, handover 10:40, departed 14:10: clock start = min(10:40, 10:00 + 15 min) = 10:15,
    # duration 14:10 - 10:15 = 3:55 -> within 4 hours.
    f.ed("arrived", "2026-05-05 10:00", "amb", arrival_mode="ambulance")
    f.ed("handover", "2026-05-05 10:40", "amb")
    f.ed("departed", "2026-05-05 14:10", "amb")
    # Walk-in 10:00, departed 14:00:00: 4:00:00 exactly -> within.
    f.ed("arrived", "2026-05-05 10:00", "walk1", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 14:00:00", "walk1")
    # Walk-in 10:00, departed 14:00:01: 4:00:01 -> breach.
    f.ed("arrived", "2026-05-05 10:00", "walk2", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 14:00:01", "walk2")
    load(store, f.events)
    r = evaluate(store, "2026-05-05 20:00")
    for scope in (("site", "RWEAA"), ("org", "RWE"), SYSTEM):
        # 2 of 3 departures within 4 h: 100 * 2 / 3 = 66.666667
        assert got(r, "ed_4h_pct", "today", scope) == (66.666667, 2.0, 3.0)
        assert got(r, "ed_4h_pct", "mtd", scope) == (66.666667, 2.0, 3.0)
        # none over 12 h from arrival: 0 / 3
        assert got(r, "ed_12h_pct", "today", scope) == (0.0, 0.0, 3.0)
        assert got(r, "ed_attendances", "today", scope) == (3.0, 3.0, None)
        assert got(r, "ed_in_department", "live", scope) == (0.0, 0.0, None)


def test_departure_timed_before_its_arrival_is_not_the_departure(store: Store) -> None:
    f = Feed()
    # Arrived 10:00; a departure stamped 09:30 (before its own arrival: the worker dead-letters it) is ignored; the
    # real departure at 15:00 (admitted) counts: 5:00 from arrival -> a breach, and an admission.
    f.ed("arrived", "2026-05-05 10:00", "early", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 09:30", "early")
    f.ed("departed", "2026-05-05 15:00", "early", disposal="admitted")
    # Only a departure before the arrival: still in the department at T.
    f.ed("arrived", "2026-05-05 11:00", "only-early", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 10:59", "only-early")
    load(store, f.events)
    r = evaluate(store, "2026-05-05 16:00")
    assert got(r, "ed_4h_pct", "today") == (0.0, 0.0, 1.0)  # "early" departed 5 h after arrival; 0 of 1 within
    assert got(r, "ed_in_department", "live") == (1.0, 1.0, None)  # "only-early" has not left
    assert got(r, "ed_attendances", "today") == (2.0, 2.0, None)


def test_ed_handover_rules(store: Store) -> None:
    f = Feed()
    # D: ambulance 10:00, handover 10:05 -> clock 10:05; departed 14:05:00 -> 4:00:00 within.
    f.ed("arrived", "2026-05-05 10:00", "D", arrival_mode="ambulance")
    f.ed("handover", "2026-05-05 10:05", "D")
    f.ed("departed", "2026-05-05 14:05:00", "D")
    # E: the same, departed 14:05:01 -> 4:00:01 breach.
    f.ed("arrived", "2026-05-05 10:00", "E", arrival_mode="ambulance")
    f.ed("handover", "2026-05-05 10:05", "E")
    f.ed("departed", "2026-05-05 14:05:01", "E")
    # F: the earliest handover (09:59) is before the arrival (10:00): ignored -> clock 10:15; 14:15 -> 4:00:00 within.
    #    (Its later handover at 10:01 is not the earliest handover, so it does not count either.)
    f.ed("arrived", "2026-05-05 10:00", "F", arrival_mode="ambulance")
    f.ed("handover", "2026-05-05 09:59", "F")
    f.ed("handover", "2026-05-05 10:01", "F")
    f.ed("departed", "2026-05-05 14:15", "F")
    # G: ambulance, no handover -> clock 10:15; departed 14:15:01 -> 4:00:01 breach.
    f.ed("arrived", "2026-05-05 10:00", "G", arrival_mode="ambulance")
    f.ed("departed", "2026-05-05 14:15:01", "G")
    # H: departed 10:10, before its clock start 10:15: duration -0:05 <= 4 h -> within.
    f.ed("arrived", "2026-05-05 10:00", "H", arrival_mode="ambulance")
    f.ed("departed", "2026-05-05 10:10", "H")
    # I: handover at 10:30 is later than arrival + 15 min -> clock 10:15; 14:15 -> within.
    f.ed("arrived", "2026-05-05 10:00", "I", arrival_mode="ambulance")
    f.ed("handover", "2026-05-05 10:30", "I")
    f.ed("departed", "2026-05-05 14:15", "I")
    load(store, f.events)
    r = evaluate(store, "2026-05-05 20:00")
    # within: D, F, H, I = 4 of 6 -> 66.666667
    assert got(r, "ed_4h_pct", "today") == (66.666667, 4.0, 6.0)


def test_ed_12_hours_from_arrival(store: Store) -> None:
    f = Feed()
    # Measured from arrival, not from the clock start:
    f.ed("arrived", "2026-05-05 00:30", "a", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 12:30:00", "a")  # 12:00:00 exactly -> not over 12 h
    f.ed("arrived", "2026-05-05 00:30", "b", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 12:30:01", "b")  # 12:00:01 -> over
    f.ed("arrived", "2026-05-05 00:30", "c", arrival_mode="ambulance")
    f.ed("departed", "2026-05-05 12:40", "c")  # 12:10 from arrival (11:55 from the 00:45 clock start) -> over
    load(store, f.events)
    r = evaluate(store, "2026-05-05 13:00")
    # over 12 h: b, c = 2 of 3 -> 66.666667; within 4 h: none -> 0 of 3
    assert got(r, "ed_12h_pct", "today") == (66.666667, 2.0, 3.0)
    assert got(r, "ed_4h_pct", "today") == (0.0, 0.0, 3.0)


def test_ed_live_indicators(store: Store) -> None:
    f = Feed()
    f.ed("arrived", "2026-05-05 15:59:59", "P1", arrival_mode="walk_in")  # T - arrival = 4:00:01 -> over 4 h
    f.ed("arrived", "2026-05-05 16:00:00", "P2", arrival_mode="walk_in")  # 4:00:00 exactly -> not over
    f.ed("arrived", "2026-05-05 15:50", "P3", arrival_mode="ambulance")  # clock 16:05 -> 3:55 -> not over
    f.ed("arrived", "2026-05-05 15:50", "P4", arrival_mode="ambulance")
    f.ed("handover", "2026-05-05 15:55", "P4")  # clock 15:55 -> 4:05 -> over 4 h
    f.ed("arrived", "2026-05-05 07:59:59", "P5", arrival_mode="walk_in")  # 12:00:01 since arrival -> over 12 h and 4 h
    f.ed("arrived", "2026-05-05 08:00:00", "P6", arrival_mode="walk_in")  # 12:00:00 -> over 4 h only
    f.ed("arrived", "2026-05-05 10:00", "P7", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 11:00", "P7")  # gone
    f.ed("arrived", "2026-05-05 20:30", "P8", arrival_mode="walk_in")  # after T: does not exist yet
    f.ed("departed", "2026-05-05 19:00", "P9")  # no arrival yet: held, counts nowhere
    load(store, f.events)
    r = evaluate(store, "2026-05-05 20:00")
    assert got(r, "ed_in_department", "live") == (6.0, 6.0, None)  # P1..P6
    assert got(r, "ed_over_4h_now", "live") == (4.0, 4.0, None)  # P1, P4, P5, P6
    assert got(r, "ed_over_12h_now", "live") == (1.0, 1.0, None)  # P5
    assert got(r, "ed_attendances", "today") == (7.0, 7.0, None)  # P1..P7
    assert got(r, "ed_4h_pct", "today") == (100.0, 1.0, 1.0)  # P7: 1:00


def test_ed_cancelled_attendances_count_nowhere(store: Store) -> None:
    f = Feed()
    f.ed("arrived", "2026-05-05 10:00", "X", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 12:00", "X")
    f.ed("cancelled", "2026-05-05 13:00", "X")  # registered in error after it departed
    f.ed("arrived", "2026-05-05 11:00", "Y", arrival_mode="walk_in")
    f.ed("cancelled", "2026-05-05 11:30", "Y")
    f.ed("arrived", "2026-05-05 11:00", "Z", arrival_mode="walk_in")
    f.ed("cancelled", "2026-05-05 21:00", "Z")  # cancelled only after T
    load(store, f.events)
    r = evaluate(store, "2026-05-05 20:00")
    assert got(r, "ed_attendances", "today") == (1.0, 1.0, None)  # Z only
    assert got(r, "ed_in_department", "live") == (1.0, 1.0, None)  # Z
    assert got(r, "ed_4h_pct", "today") == (None, 0.0, 0.0)  # X is gone
    r = evaluate(store, "2026-05-05 21:30")
    assert got(r, "ed_attendances", "today") == (0.0, 0.0, None)
    assert got(r, "ed_in_department", "live") == (0.0, 0.0, None)


def test_ed_scopes_follow_the_arrival(store: Store) -> None:
    f = Feed()
    f.ed("arrived", "2026-05-05 10:00", "s1", arrival_mode="walk_in")  # RWEAA: site, org, system
    f.ed("arrived", "2026-05-05 10:00", "s2", site=None, arrival_mode="walk_in")  # no site: org, system
    f.ed("arrived", "2026-05-05 10:00", "s3", site="RWEAE", arrival_mode="walk_in")  # not an ED site: org, system
    f.ed("arrived", "2026-05-05 10:00", "s4", site=None, arrival_mode="walk_in", org_code="RT5")  # no ED org: system
    f.ed("arrived", "2026-05-05 10:00", "s5", site=None, arrival_mode="walk_in", org_code="ZZZ")  # not in the ICB
    f.ed("arrived", "2026-05-05 10:00", "s6", site="ZZZAA", arrival_mode="walk_in")  # unknown site: rejected
    # The earliest arrival decides: s7 first arrives at RWEAE, a later arrival at RWEAA does not move it.
    f.ed("arrived", "2026-05-05 09:00", "s7", site="RWEAE", arrival_mode="walk_in")
    f.ed("arrived", "2026-05-05 09:30", "s7", arrival_mode="walk_in")
    load(store, f.events)
    r = evaluate(store, "2026-05-05 12:00")
    assert got(r, "ed_attendances", "today", ("site", "RWEAA")) == (1.0, 1.0, None)  # s1
    assert got(r, "ed_attendances", "today", ("org", "RWE")) == (4.0, 4.0, None)  # s1, s2, s3, s7
    assert got(r, "ed_attendances", "today") == (5.0, 5.0, None)  # + s4


# --- ambulance -------------------------------------------------------------------------------------------------


def _response(f: Feed, incident: str, start: str, minutes: float, category: int, org: str = "RX9") -> None:
    """An incident with a clock start and a transport-capable arrival ``minutes`` later."""
    stop = (when(start) + dt.timedelta(minutes=minutes)).isoformat()
    f.amb("clock_started", start, incident, category=category, org_code=org)
    f.amb("resource_arrived", stop, incident, transport_capable=True, org_code=org)


def test_worked_example_2_cat2_mean_and_p90(store: Store) -> None:
    f = Feed()
    minutes = [5, 9, 12, 20, 31, 44, 7, 18, 25, 60]
    for k, m in enumerate(minutes):
        _response(f, f"c2-{k}", f"2026-05-05 {9 + k // 2:02d}:{30 * (k % 2):02d}", m, 2)
    load(store, f.events)
    r = evaluate(store, "2026-05-05 17:00")  # last stop 13:30 + 60 min = 14:30
    # sum = 5+9+12+20+31+44+7+18+25+60 = 231 -> mean 231 / 10 = 23.1
    # sorted 5 7 9 12 18 20 25 31 44 60; nearest rank ceil(0.9 * 10) = 9th -> 44
    for scope in (("org", "RX9"), SYSTEM):
        for window in ("today", "mtd"):
            assert got(r, "amb_cat2_mean_min", window, scope) == (23.1, pytest.approx(231.0), 10.0)
            assert got(r, "amb_cat2_p90_min", window, scope) == (44.0, None, 10.0)
        # nothing stopped in (16:00, 17:00]
        assert got(r, "amb_cat2_mean_min", "last_60m", scope) == (None, 0.0, 0.0)
        assert got(r, "amb_cat2_p90_min", "last_60m", scope) == (None, None, 0.0)
    assert got(r, "amb_cat1_mean_min", "today") == (None, 0.0, 0.0)


def test_ambulance_windows_by_stop_time(store: Store) -> None:
    f = Feed()
    _response(f, "I1", "2026-05-05 10:53", 7, 1)  # stop 11:00:00 = T - 60 min: outside (T-60, T]; today
    _response(f, "I2", "2026-05-05 10:51:01", 9, 1)  # stop 11:00:01: last_60m and today
    _response(f, "I3", "2026-05-04 23:54", 5, 1)  # stop 23:59 yesterday: mtd only
    _response(f, "I4", "2026-04-30 23:50", 9, 1)  # stop 23:59 on 30 April: no window
    _response(f, "I5", "2026-05-05 11:50", 15, 1)  # stop 12:05, after T: no stop as of T
    _response(f, "I6", "2026-05-05 09:00", 20, 1, org="RWE")  # non-ambulance organisation: system only
    load(store, f.events)
    r = evaluate(store, "2026-05-05 12:00")
    rx9 = ("org", "RX9")
    # today RX9: I1 7, I2 9 -> mean 8, p90 rank ceil(1.8) = 2 -> 9
    assert got(r, "amb_cat1_mean_min", "today", rx9) == (8.0, 16.0, 2.0)
    assert got(r, "amb_cat1_p90_min", "today", rx9) == (9.0, None, 2.0)
    # last_60m: I2 only
    assert got(r, "amb_cat1_mean_min", "last_60m", rx9) == (9.0, 9.0, 1.0)
    assert got(r, "amb_cat1_p90_min", "last_60m", rx9) == (9.0, None, 1.0)
    # mtd RX9: 5, 7, 9 -> mean 7, p90 rank ceil(2.7) = 3 -> 9
    assert got(r, "amb_cat1_mean_min", "mtd", rx9) == (7.0, 21.0, 3.0)
    assert got(r, "amb_cat1_p90_min", "mtd", rx9) == (9.0, None, 3.0)
    # today system: 7, 9, 20 -> mean 12, p90 rank ceil(2.7) = 3 -> 20
    assert got(r, "amb_cat1_mean_min", "today") == (12.0, 36.0, 3.0)
    assert got(r, "amb_cat1_p90_min", "today") == (20.0, None, 3.0)


def test_worked_example_3_recategorisation_and_stop_rules(store: Store) -> None:
    f = Feed()
    # A: Cat 3 at 09:00, recategorised Cat 2 at 09:05, RRV 09:12, ambulance 09:30, conveyed -> Cat 2, 30 min.
    f.amb("clock_started", "2026-05-05 09:00", "A", category=3)
    f.amb("recategorised", "2026-05-05 09:05", "A", category=2)
    f.amb("resource_arrived", "2026-05-05 09:12", "A", transport_capable=False)
    f.amb("resource_arrived", "2026-05-05 09:30", "A", transport_capable=True)
    f.amb("incident_closed", "2026-05-05 10:00", "A", conveyed=True)
    # B: the same incident closed not conveyed (09:40) with only the RRV -> Cat 2, 12 min, known from 09:40.
    f.amb("clock_started", "2026-05-05 09:00", "B", category=3)
    f.amb("recategorised", "2026-05-05 09:05", "B", category=2)
    f.amb("resource_arrived", "2026-05-05 09:12", "B", transport_capable=False)
    f.amb("incident_closed", "2026-05-05 09:40", "B", conveyed=False)
    # C: only the RRV and closed conveyed -> no stop (no transport-capable arrival, conveyed).
    f.amb("clock_started", "2026-05-05 09:00", "C", category=2)
    f.amb("resource_arrived", "2026-05-05 09:12", "C", transport_capable=False)
    f.amb("incident_closed", "2026-05-05 09:20", "C", conveyed=True)
    # D: Cat 1, stop 09:08, recategorised to Cat 3 after the stop -> still Cat 1, 8 min.
    f.amb("clock_started", "2026-05-05 09:00", "D", category=1)
    f.amb("resource_arrived", "2026-05-05 09:08", "D", transport_capable=True)
    f.amb("recategorised", "2026-05-05 09:20", "D", category=3)
    # E: Cat 4, RRV 09:10; closed not conveyed 09:20, then closed conveyed 09:30: the LATEST closure decides.
    f.amb("clock_started", "2026-05-05 09:00", "E", category=4)
    f.amb("resource_arrived", "2026-05-05 09:10", "E", transport_capable=False)
    f.amb("incident_closed", "2026-05-05 09:20", "E", conveyed=False)
    f.amb("incident_closed", "2026-05-05 09:30", "E", conveyed=True)
    # F: Cat 4, a capable arrival at 08:55 is before the clock start (ignored); the next at 09:14 -> 14 min.
    f.amb("resource_arrived", "2026-05-05 08:55", "F", transport_capable=True)
    f.amb("clock_started", "2026-05-05 09:00", "F", category=4)
    f.amb("resource_arrived", "2026-05-05 09:14", "F", transport_capable=True)
    # G: no clock start -> no response time.
    f.amb("call_connected", "2026-05-05 08:58", "G")
    f.amb("resource_arrived", "2026-05-05 09:03", "G", transport_capable=True)
    load(store, f.events)

    r = evaluate(store, "2026-05-05 09:25")
    # A's ambulance (09:30) and B's closure (09:40) are after T: Cat 2 has no response yet.
    assert got(r, "amb_cat2_mean_min", "today") == (None, 0.0, 0.0)
    assert got(r, "amb_cat1_mean_min", "today") == (8.0, 8.0, 1.0)  # D
    # Cat 4 as of 09:25: E stopped by its RRV (not-conveyed closure at 09:20 is in) 10 min, F 14 min -> mean 12
    assert got(r, "amb_cat4_mean_min", "today") == (12.0, 24.0, 2.0)
    assert got(r, "amb_cat3_mean_min", "today") == (None, 0.0, 0.0)

    r = evaluate(store, "2026-05-05 09:45")
    # Cat 2: A 30, B 12 -> mean 21, p90 rank ceil(1.8) = 2 -> 30; both stops in (08:45, 09:45]
    assert got(r, "amb_cat2_mean_min", "today") == (21.0, 42.0, 2.0)
    assert got(r, "amb_cat2_p90_min", "today") == (30.0, None, 2.0)
    assert got(r, "amb_cat2_mean_min", "last_60m") == (21.0, 42.0, 2.0)
    # Cat 4: E's latest closure (09:30) says conveyed -> no stop; F 14 -> n = 1
    assert got(r, "amb_cat4_mean_min", "today") == (14.0, 14.0, 1.0)
    assert got(r, "amb_cat4_p90_min", "today") == (14.0, None, 1.0)
    assert got(r, "amb_cat3_p90_min", "today") == (None, None, 0.0)  # D stays Cat 1


# --- beds and discharge ----------------------------------------------------------------------------------------


def test_worked_example_4_discharge_ready_date(store: Store) -> None:
    f = Feed()
    # Admitted 3 March 14:00; ready date set to 5 March (pathway 1); cleared 6 March; set again to 8 March;
    # discharged 8 March 18:00.
    f.adt("admitted", "2026-03-03 14:00", "S")
    f.dis("ready_date_set", "2026-03-04 10:00", "S", discharge_ready_date="2026-03-05", pathway=1)
    f.dis("ready_date_cleared", "2026-03-06 09:00", "S")
    f.dis("ready_date_set", "2026-03-07 10:00", "S", discharge_ready_date="2026-03-08")
    f.adt("discharged", "2026-03-08 18:00", "S", pathway=1)
    load(store, f.events)
    site = ("site", "RWEAA")

    r = evaluate(store, "2026-03-04 12:00")  # DRD 5 March is in the future: a plan, not yet NCTR
    assert got(r, "ga_beds_occupied", "live", site) == (1.0, 1.0, None)
    assert got(r, "nctr_count", "live", site) == (0.0, 0.0, None)
    assert got(r, "nctr_pct", "live", site) == (0.0, 0.0, 1.0)  # 0 / 1
    assert got(r, "ctr_met_pct", "live", site) == (100.0, 1.0, 1.0)  # (1 - 0) / 1

    r = evaluate(store, "2026-03-05 00:00")  # local date 5 March: DRD reached -> NCTR
    assert got(r, "nctr_count", "live", site) == (1.0, 1.0, None)
    assert got(r, "nctr_pct", "live", site) == (100.0, 1.0, 1.0)
    assert got(r, "ctr_met_pct", "live", site) == (0.0, 0.0, 1.0)
    assert got(r, "mofd_awaiting_plan", "live") == (1.0, 1.0, None)  # pathway 1, no referral
    assert got(r, "mofd_awaiting_plan_p1", "live") == (1.0, 1.0, None)

    r = evaluate(store, "2026-03-06 12:00")  # cleared: meets the criteria to reside again
    assert got(r, "nctr_count", "live") == (0.0, 0.0, None)
    assert got(r, "mofd_awaiting_plan", "live") == (0.0, 0.0, None)

    r = evaluate(store, "2026-03-07 12:00")  # set again, to 8 March: future
    assert got(r, "nctr_count", "live") == (0.0, 0.0, None)

    r = evaluate(store, "2026-03-08 12:00")  # the current period counts: NCTR again, pathway still 1
    assert got(r, "nctr_count", "live") == (1.0, 1.0, None)
    assert got(r, "mofd_awaiting_plan_p1", "live") == (1.0, 1.0, None)

    r = evaluate(store, "2026-03-08 18:00")  # discharged at T (occurred_at <= T): the bed is free
    assert got(r, "ga_beds_occupied", "live") == (0.0, 0.0, None)
    assert got(r, "nctr_pct", "live") == (None, 0.0, 0.0)


def test_referral_before_the_current_ready_date_is_not_a_plan(store: Store) -> None:
    f = Feed()
    f.adt("admitted", "2026-05-01 10:00", "S")
    f.dis("ready_date_set", "2026-05-02 09:00", "S", discharge_ready_date="2026-05-02", pathway=2)
    f.dis("referral_made", "2026-05-02 10:00", "S", referral_id="r1", pathway=2)
    f.dis("plan_in_place", "2026-05-02 15:00", "S", referral_id="r1")
    f.dis("ready_date_cleared", "2026-05-03 09:00", "S")
    f.dis("ready_date_set", "2026-05-04 09:00", "S", discharge_ready_date="2026-05-04")
    f.dis("plan_in_place", "2026-05-04 12:30", "S", referral_id="r9")  # unknown referral: ignored
    f.dis("referral_made", "2026-05-04 13:00", "S", referral_id="r2", pathway=2)
    f.dis("plan_in_place", "2026-05-04 13:30", "S", referral_id="r3")  # before its referral: ignored
    f.dis("referral_made", "2026-05-04 14:00", "S", referral_id="r3", pathway=2)
    f.dis("plan_in_place", "2026-05-04 17:00", "S", referral_id="r2")
    f.dis("ready_date_set", "2026-05-04 19:00", "S", discharge_ready_date="2026-05-04")  # replaces: new set time
    load(store, f.events)

    def awaiting(at: str) -> tuple[float | None, float | None]:
        r = evaluate(store, at)
        assert got(r, "nctr_count", "live")[0] == 1.0
        return got(r, "mofd_awaiting_plan", "live")[0], got(r, "mofd_awaiting_plan_p2", "live")[0]

    assert awaiting("2026-05-02 14:00") == (1.0, 1.0)  # r1 referred, no plan yet
    assert awaiting("2026-05-02 16:00") == (0.0, 0.0)  # r1 (made after the DRD was set) has a plan
    assert awaiting("2026-05-04 12:00") == (1.0, 1.0)  # DRD set again 4 May 09:00: r1 was made before it
    assert awaiting("2026-05-04 15:00") == (1.0, 1.0)  # r2 made, no plan; r9 and r3 plans ignored
    assert awaiting("2026-05-04 18:00") == (0.0, 0.0)  # r2 (made 13:00 >= 09:00) planned at 17:00
    assert awaiting("2026-05-04 20:00") == (1.0, 1.0)  # DRD re-set at 19:00: r2 now predates it


def test_mofd_awaiting_plan_by_pathway(store: Store) -> None:
    f = Feed()
    for spell in ("p0", "p1", "p2", "p3", "unknown"):
        f.adt("admitted", "2026-05-01 10:00", spell)
    f.dis("ready_date_set", "2026-05-02 09:00", "p0", discharge_ready_date="2026-05-02", pathway=0)  # not awaiting
    f.dis("ready_date_set", "2026-05-02 09:00", "p1", discharge_ready_date="2026-05-02", pathway=1)
    f.dis("ready_date_set", "2026-05-02 09:00", "p2", discharge_ready_date="2026-05-02")
    f.adt("discharged", "2026-05-02 10:00", "p2", pathway=2)  # pathway from the discharge...
    f.adt("discharge_cancelled", "2026-05-02 11:00", "p2")  # ...stays after A13; back in the bed
    f.dis("ready_date_set", "2026-05-02 09:00", "p3", discharge_ready_date="2026-05-02", pathway=1)
    f.dis("pathway_assigned", "2026-05-02 12:00", "p3", pathway=3)  # latest pathway wins
    f.dis("ready_date_set", "2026-05-02 09:00", "unknown", discharge_ready_date="2026-05-01")
    load(store, f.events)
    r = evaluate(store, "2026-05-02 13:00")
    assert got(r, "ga_beds_occupied", "live") == (5.0, 5.0, None)
    assert got(r, "nctr_count", "live") == (5.0, 5.0, None)
    # 5 NCTR of 5 occupied -> 100%; ctr met (5 - 5) / 5 = 0%
    assert got(r, "nctr_pct", "live") == (100.0, 5.0, 5.0)
    assert got(r, "ctr_met_pct", "live") == (0.0, 0.0, 5.0)
    assert got(r, "mofd_awaiting_plan", "live") == (4.0, 4.0, None)  # all but pathway 0
    for suffix in ("_p1", "_p2", "_p3", "_pathway_unknown"):
        assert got(r, f"mofd_awaiting_plan{suffix}", "live") == (1.0, 1.0, None)


def test_adt_cancellations_transfers_and_updates(store: Store) -> None:
    f = Feed()
    day = "2026-05-05"
    # S1 (A11): admission cancelled -> the spell never happened.
    f.adt("admitted", f"{day} 08:00", "S1")
    f.adt("admission_cancelled", f"{day} 09:00", "S1")
    # S2 (A12): moved to critical care, the transfer cancelled -> back in its adult G&A bed at RWEAA.
    f.adt("admitted", f"{day} 08:00", "S2")
    f.adt("transferred", f"{day} 09:00", "S2", bed_category="critical_care")
    f.adt("transfer_cancelled", f"{day} 10:00", "S2")
    # S3: two transfers, the latest cancelled -> the first transfer's bed: adult G&A escalation bed at RWEAE.
    f.adt("admitted", f"{day} 08:00", "S3")
    f.adt("transferred", f"{day} 09:00", "S3", site="RWEAE", bed_category="adult_ga", escalation_bed=True)
    f.adt("transferred", f"{day} 10:00", "S3", site="RWEAE", bed_category="critical_care")
    f.adt("transfer_cancelled", f"{day} 11:00", "S3")
    # S4 (A13): discharged then the discharge cancelled -> in the bed again.
    f.adt("admitted", f"{day} 08:00", "S4")
    f.adt("discharged", f"{day} 09:00", "S4")
    f.adt("discharge_cancelled", f"{day} 10:00", "S4")
    # S5: discharged.
    f.adt("admitted", f"{day} 08:00", "S5")
    f.adt("discharged", f"{day} 09:00", "S5")
    # S6: not an adult G&A bed.
    f.adt("admitted", f"{day} 08:00", "S6", bed_category="critical_care")
    # S7: a transfer cancellation with nothing to pop is ignored -> still adult G&A at RWEAE.
    f.adt("admitted", f"{day} 08:00", "S7", site="RWEAE")
    f.adt("transfer_cancelled", f"{day} 09:00", "S7")
    # S8: admission cancelled, then admitted again -> open at RWEAA.
    f.adt("admitted", f"{day} 06:00", "S8")
    f.adt("admission_cancelled", f"{day} 07:00", "S8")
    f.adt("admitted", f"{day} 08:00", "S8")
    # S9 (A08): bed category corrected to maternity -> not adult G&A.
    f.adt("admitted", f"{day} 08:00", "S9")
    f.adt("updated", f"{day} 09:00", "S9", bed_category="maternity")
    # S10 (A08): flagged as an escalation bed.
    f.adt("admitted", f"{day} 08:00", "S10")
    f.adt("updated", f"{day} 09:00", "S10", escalation_bed=True)
    # S11: adult G&A at RWEAK (no adult G&A bed base configured): counts for the organisation and system only.
    f.adt("admitted", f"{day} 08:00", "S11", site="RWEAK")
    # S12: a community trust's spell: system only.
    f.adt("admitted", f"{day} 08:00", "S12", site=None, org_code="RT5")
    load(store, f.events)
    r = evaluate(store, f"{day} 12:00")
    # RWEAA: S2, S4, S8, S10 = 4 (escalation S10 = 1); RWEAE: S3, S7 = 2 (escalation S3 = 1)
    assert got(r, "ga_beds_occupied", "live", ("site", "RWEAA")) == (4.0, 4.0, None)
    assert got(r, "ga_escalation_beds_occupied", "live", ("site", "RWEAA")) == (1.0, 1.0, None)
    assert got(r, "ga_beds_occupied", "live", ("site", "RWEAE")) == (2.0, 2.0, None)
    assert got(r, "ga_escalation_beds_occupied", "live", ("site", "RWEAE")) == (1.0, 1.0, None)
    # RWE: 4 + 2 + S11 = 7; system: 7 + S12 = 8; escalation 2 at both
    assert got(r, "ga_beds_occupied", "live", ("org", "RWE")) == (7.0, 7.0, None)
    assert got(r, "ga_beds_occupied", "live") == (8.0, 8.0, None)
    assert got(r, "ga_escalation_beds_occupied", "live") == (2.0, 2.0, None)
    assert got(r, "ctr_met_pct", "live") == (100.0, 8.0, 8.0)  # no ready dates: (8 - 0) / 8
    # As of 08:30 S2 is still in its admission bed (the transfer comes at 09:00) and S1 exists
    r = evaluate(store, f"{day} 08:30")
    # RWEAA at 08:30: S1, S2, S3, S4, S5, S8, S9, S10 = 8 (S6 critical care; S7, S11 elsewhere)
    assert got(r, "ga_beds_occupied", "live", ("site", "RWEAA")) == (8.0, 8.0, None)


# --- delivery order and duplicates -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["in_order", "reversed_one_by_one", "duplicated_shuffled"])
def test_results_do_not_depend_on_delivery(store: Store, mode: str) -> None:
    f = Feed()
    # ED: worked example 1 -> 2 of 3 within 4 h.
    f.ed("arrived", "2026-05-05 10:00", "amb", arrival_mode="ambulance")
    f.ed("handover", "2026-05-05 10:40", "amb")
    f.ed("departed", "2026-05-05 14:10", "amb")
    f.ed("arrived", "2026-05-05 10:00", "w1", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 14:00:00", "w1")
    f.ed("arrived", "2026-05-05 10:00", "w2", arrival_mode="walk_in")
    f.ed("departed", "2026-05-05 14:00:01", "w2")
    # Ambulance: worked example 3, conveyed -> Cat 2, 30 min.
    f.amb("clock_started", "2026-05-05 09:00", "A", category=3)
    f.amb("recategorised", "2026-05-05 09:05", "A", category=2)
    f.amb("resource_arrived", "2026-05-05 09:12", "A", transport_capable=False)
    f.amb("resource_arrived", "2026-05-05 09:30", "A", transport_capable=True)
    # Beds: transferred to critical care, transfer cancelled, DRD set (today), cleared, set again (pathway 3).
    f.adt("admitted", "2026-05-04 08:00", "S")
    f.adt("transferred", "2026-05-04 09:00", "S", bed_category="critical_care")
    f.adt("transfer_cancelled", "2026-05-04 10:00", "S")
    f.dis("ready_date_set", "2026-05-04 11:00", "S", discharge_ready_date="2026-05-04", pathway=3)
    f.dis("ready_date_cleared", "2026-05-04 12:00", "S")
    f.dis("ready_date_set", "2026-05-05 08:00", "S", discharge_ready_date="2026-05-05")
    load(store, f.events, mode)
    assert store.query_rows("SELECT count() FROM scc.raw_ed FINAL") == [(7,)]  # copies collapse
    r = evaluate(store, "2026-05-05 20:00")
    assert got(r, "ed_4h_pct", "today") == (66.666667, 2.0, 3.0)
    assert got(r, "ed_attendances", "today") == (3.0, 3.0, None)
    assert got(r, "amb_cat2_mean_min", "today") == (30.0, 30.0, 1.0)
    assert got(r, "amb_cat3_mean_min", "today") == (None, 0.0, 0.0)
    assert got(r, "ga_beds_occupied", "live", ("site", "RWEAA")) == (1.0, 1.0, None)
    assert got(r, "nctr_pct", "live") == (100.0, 1.0, 1.0)
    assert got(r, "mofd_awaiting_plan_p3", "live") == (1.0, 1.0, None)


# --- clock changes ---------------------------------------------------------------------------------------------


def test_spring_clock_change_today_is_23_hours(store: Store) -> None:
    # 29 March 2026: local midnight is 00:00Z (GMT); at 01:00Z the clocks go to 02:00 BST; the day ends at 23:00Z.
    f = Feed()
    f.ed("arrived", "2026-03-28T23:59:59Z", "a1", arrival_mode="walk_in")  # 28 March 23:59:59 GMT: yesterday
    f.ed("departed", "2026-03-29T00:30:00Z", "a1")  # 29 March 00:30 local (worked example 5): today; 0:30:01 within
    f.ed("arrived", "2026-03-29T00:00:00Z", "a2", arrival_mode="walk_in")  # 00:00:00 GMT: first instant of today
    f.ed("arrived", "2026-03-29T01:30:00Z", "a3", arrival_mode="walk_in")  # 02:30 BST
    f.ed("arrived", "2026-03-29T22:59:59Z", "a4", arrival_mode="walk_in")  # 23:59:59 BST: last second of today
    f.adt("admitted", "2026-03-28T10:00:00Z", "S")
    f.dis("ready_date_set", "2026-03-28T11:00:00Z", "S", discharge_ready_date="2026-03-30")
    load(store, f.events)

    r = evaluate(store, "2026-03-29T22:59:59Z")  # 23:59:59 BST on the 29th: today = [00:00Z, 22:59:59Z], 23 h
    assert got(r, "ed_attendances", "today") == (3.0, 3.0, None)  # a2, a3, a4
    assert got(r, "ed_attendances", "mtd") == (4.0, 4.0, None)  # + a1
    assert got(r, "ed_4h_pct", "today") == (100.0, 1.0, 1.0)  # a1 departed today
    assert got(r, "nctr_count", "live") == (0.0, 0.0, None)  # DRD 30 March is tomorrow

    r = evaluate(store, "2026-03-29T23:00:00Z")  # 00:00 BST on 30 March: a new day
    assert got(r, "ed_attendances", "today") == (0.0, 0.0, None)
    assert got(r, "ed_4h_pct", "today") == (None, 0.0, 0.0)
    assert got(r, "ed_attendances", "mtd") == (4.0, 4.0, None)
    assert got(r, "nctr_count", "live") == (1.0, 1.0, None)  # local date 30 March: DRD reached


def test_autumn_clock_change_today_is_25_hours(store: Store) -> None:
    # 25 October 2026: local midnight is 24 Oct 23:00Z (BST); at 01:00Z the clocks go back to 01:00 GMT; the day
    # ends at 26 Oct 00:00Z, 25 hours later.
    f = Feed()
    f.ed("arrived", "2026-09-30T22:59:59Z", "bm", arrival_mode="walk_in")  # 30 Sep 23:59:59 BST: not this month
    f.ed("arrived", "2026-09-30T23:30:00Z", "b0", arrival_mode="walk_in")  # 1 Oct 00:30 BST: this month
    f.ed("arrived", "2026-10-24T22:59:59Z", "b1", arrival_mode="walk_in")  # 24 Oct 23:59:59 BST: yesterday
    f.ed("arrived", "2026-10-24T23:00:00Z", "b2", arrival_mode="walk_in")  # 25 Oct 00:00 BST: today
    f.ed("arrived", "2026-10-25T23:59:59Z", "b3", arrival_mode="walk_in")  # 25 Oct 23:59:59 GMT: today
    # last_60m is exact UTC time across the repeated hour: T = 01:30Z (01:30 GMT), window (00:30Z, 01:30Z].
    _response(f, "in", "2026-10-25T00:40:00Z", 5, 2)  # stop 00:45Z (01:45 BST, reads later than T's 01:30)
    _response(f, "out", "2026-10-25T00:24:59Z", 5, 2)  # stop 00:29:59Z: outside
    load(store, f.events)

    r = evaluate(store, "2026-10-25T23:59:59Z")  # today = [24 Oct 23:00Z, 25 Oct 23:59:59Z]: 25 h
    assert got(r, "ed_attendances", "today") == (2.0, 2.0, None)  # b2, b3
    assert got(r, "ed_attendances", "mtd") == (4.0, 4.0, None)  # b0, b1, b2, b3
    assert got(r, "ed_in_department", "live") == (5.0, 5.0, None)

    r = evaluate(store, "2026-10-25T01:30:00Z")
    assert got(r, "amb_cat2_mean_min", "last_60m") == (5.0, 5.0, 1.0)  # "in" only
    assert got(r, "amb_cat2_mean_min", "today") == (5.0, 10.0, 2.0)  # both stopped after 24 Oct 23:00Z

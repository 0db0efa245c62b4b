"""NHS monthly returns (clickhouse/returns.py, ``scc report monthly``) on real chDB, against hand-worked cases and
against the stream engine's ``month`` window.

Every expected number is worked out by hand in a comment next to it. March 2026 has the spring clock change:
Sunday 29 March 2026, 01:00 GMT -> 02:00 BST, so local times before it are UTC+0 and after it UTC+1.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clickhouse.migrate import migrate
from clickhouse.returns import COLUMNS, UnknownOrganisation, ae_period, monthly_return, parse_month
from clickhouse.store import Store, open_store
from connectors.simulator import simulate
from scc.cli import app
from schemas.config import Icb, PlatformConfig, load_config
from schemas.events import Envelope, topic_of
from streams.engine import evaluate_at
from tests.unit import events_factory as ef

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
                ],
            },
            {
                "code": "RFS",
                "name": "Eye hospital trust",
                "kind": "acute",
                "sites": [{"code": "RFSEY", "name": "Eye unit", "ed_department_types": ["2"], "adult_ga_beds": 20}],
            },
            {"code": "RX9", "name": "Ambulance service", "kind": "ambulance"},
            {"code": "RT5", "name": "Community trust", "kind": "community"},
        ],
    }
)
CONFIG: PlatformConfig = load_config().model_copy(update={"icb": ICB})
AFTER = ef.when("2026-04-20 12:00")  # T for the engine: inside the month after March, and after every event here


def load(store: Store, events: list[Envelope], first_offset: int = 0) -> None:
    """Insert one batch per topic; a later call gets later offsets (and ingestion times), so its copies lose."""
    by_topic: dict[str, list[tuple[Envelope, int, int]]] = {}
    for i, event in enumerate(events):
        by_topic.setdefault(topic_of(event), []).append((event, 0, first_offset + i))
    for topic, items in by_topic.items():
        store.insert_events(topic, items)


def by_org(rows: list[dict]) -> dict[str, dict]:
    return {r["Org Code"]: r for r in rows}


def engine_month(events: list[Envelope], config: PlatformConfig = CONFIG, at: dt.datetime = AFTER) -> dict:
    """The engine's ``month``-window rows (the last complete month before ``at``): key -> (value, num, den)."""
    return {
        (s.indicator, s.scope_type, s.scope_code): (s.value, s.numerator, s.denominator)
        for s in evaluate_at(config, events, at)
        if s.window == "month"
    }


# --- month parsing and labels ----------------------------------------------------------------------------------


def test_month_parsing_and_the_nhs_period_label() -> None:
    assert parse_month("2026-03") == dt.date(2026, 3, 1)
    assert ae_period(dt.date(2026, 3, 1)) == "MSitAE-MARCH-2026"  # NHS England's CSV Period form
    assert ae_period(dt.date(2026, 10, 1)) == "MSitAE-OCTOBER-2026"
    for bad in ("2026-13", "2026-00", "2026-3", "March 2026", "2026/03", "", "26-03"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)


def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown return"):
        monthly_return(store, ICB, "rtt", "2026-03")
    with pytest.raises(ValueError, match="YYYY-MM"):
        monthly_return(store, ICB, "ae", "2026-3")
    with pytest.raises(UnknownOrganisation, match="RX9"):  # an ambulance service has no A&E return
        monthly_return(store, ICB, "ae", "2026-03", org="RX9")
    with pytest.raises(UnknownOrganisation, match="ZZZ"):
        monthly_return(store, ICB, "discharge", "2026-03", org="ZZZ")
    with pytest.raises(ValueError, match="aware"):
        monthly_return(store, ICB, "ae", "2026-03", at=dt.datetime(2026, 4, 1))


def test_empty_store_lists_every_organisation_with_zeros(store: Store) -> None:
    ae = monthly_return(store, ICB, "ae", "2026-03")
    # A&E: the organisations with an ED site, in ICB file order; RX9 and RT5 have none.
    assert [r["Org Code"] for r in ae] == ["RWE", "RFS"]
    assert ae[0]["A&E attendances Type 1"] == 0 and ae[0]["Percentage in 4 hours or less (all)"] is None
    assert list(ae[0]) == list(COLUMNS["ae"])
    amb = monthly_return(store, ICB, "ambulance", "2026-03")
    assert [(r["Org Code"], r["Category"], r["Incidents"], r["Mean response time (s)"]) for r in amb] == [
        ("RX9", c, 0, None) for c in (1, 2, 3, 4)
    ]
    dis = monthly_return(store, ICB, "discharge", "2026-03")
    assert [r["Org Code"] for r in dis] == ["RWE", "RFS"]  # organisations with adult G&A beds
    assert dis[1]["Discharges (stay of one night or more)"] == 0
    assert dis[1]["Percentage discharged on ready date"] is None


# --- A&E ---------------------------------------------------------------------------------------------------------


def ae_events() -> tuple[list[Envelope], list[Envelope]]:
    """March 2026 A&E cases (see the comments), and later copies of some events (duplicates, first copy wins)."""
    ev: list[Envelope] = []
    # A1 type 1, across the clock change: arrived 29 Mar 00:30 GMT (00:30Z), departed 04:30 BST (03:30Z):
    #    the wall clock says 4:00 but the stay is 3:00 -> within.
    ev += ef.ed_attendance("A1", "2026-03-29 00:30", "2026-03-29 04:30")
    # A2 type 1, across midnight and the clock change: 28 Mar 23:00 GMT (23:00Z) -> 29 Mar 03:30 BST (02:30Z) = 3:30
    #    -> within.
    ev += ef.ed_attendance("A2", "2026-03-28 23:00", "2026-03-29 03:30")
    # A3 type 1: 29 Mar 00:45 GMT (00:45Z) -> 05:46 BST (04:46Z) = 4:01 -> over 4 h; admitted.
    ev += [ef.ed_arrived("A3", "2026-03-29 00:45"), ef.ed_departed("A3", "2026-03-29 05:46", "admitted")]
    # A4 type 1 (worked example 1): ambulance 10:00, handover 10:40 -> clock 10:15; departed 14:10 = 3:55 -> within;
    #    admitted.
    ev += [
        ef.ed_arrived("A4", "2026-03-10 10:00", "ambulance"),
        ef.ed_handover("A4", "2026-03-10 10:40"),
        ef.ed_departed("A4", "2026-03-10 14:10", "admitted", event_id="A4-departed"),
    ]
    # A5 type 1, across the month end: arrived 31 Mar 23:00 BST, departed 1 Apr 01:00 BST (00:00Z) = 2:00:
    #    an April attendance (month of departure), within.
    ev += ef.ed_attendance("A5", "2026-03-31 23:00", "2026-04-01 01:00")
    # A6 type 1: arrived 28 Feb 22:00, departed 1 Mar 03:00 = 5:00 -> March, over 4 h (February has none).
    ev += ef.ed_attendance("A6", "2026-02-28 22:00", "2026-03-01 03:00")
    # A7/A8 type 3 (other A&E): walk-ins 09:00 -> 13:00:00 = 4:00:00 exactly -> within; 13:00:01 -> over.
    ev += ef.ed_attendance("A7", "2026-03-15 09:00", "2026-03-15 13:00:00", department_type="3")
    ev += ef.ed_attendance("A8", "2026-03-15 09:00", "2026-03-15 13:00:01", department_type="3")
    # A9 type 1, cancelled (10 h stay): counts nowhere.
    ev += ef.ed_attendance("A9", "2026-03-20 10:00", "2026-03-20 20:00")
    ev.append(ef.ed_cancelled("A9", "2026-03-20 10:05"))
    # A10 type 1: arrived 31 Mar 12:00, still in the department: not in any month's return yet.
    ev.append(ef.ed_arrived("A10", "2026-03-31 12:00"))
    # A11 type 1: 08:00 -> 11:00 = 3:00 -> within (a later copy of its departure says 15:00: ignored).
    ev += [ef.ed_arrived("A11", "2026-03-12 08:00"), ef.ed_departed("A11", "2026-03-12 11:00", event_id="A11-dep")]
    # B1/B2 type 2 at RFS: 10:00 -> 11:00 within, admitted; 10:00 -> 15:00 = 5:00 over.
    rfs = {"org": "RFS", "site": "RFSEY"}
    ev += [ef.ed_arrived("B1", "2026-03-05 10:00", department_type="2", **rfs)]
    ev += [ef.ed_departed("B1", "2026-03-05 11:00", "admitted", **rfs)]
    ev += ef.ed_attendance("B2", "2026-03-05 10:00", "2026-03-05 15:00", department_type="2", **rfs)
    copies = [
        ef.ed_departed("A11", "2026-03-12 15:00", event_id="A11-dep"),  # same event_id, different content: loses
        *[e for e in ev if getattr(e, "attendance_id", None) == "A4"],  # exact re-deliveries of A4's events
    ]
    return ev, copies


def test_ae_return_march_2026(store: Store) -> None:
    events, copies = ae_events()
    load(store, events)
    load(store, copies, first_offset=10_000)
    march = by_org(monthly_return(store, ICB, "ae", "2026-03"))
    rwe = march["RWE"]
    assert rwe["Period"] == "MSitAE-MARCH-2026" and rwe["Org name"] == "Acute trust"
    # Type 1 departed in March: A1, A2, A3, A4, A6, A11 = 6 (A5 is April's, A9 cancelled, A10 not departed).
    assert rwe["A&E attendances Type 1"] == 6
    assert rwe["Attendances over 4hrs Type 1"] == 2  # A3 (4:01), A6 (5:00)
    assert rwe["Emergency admissions via A&E - Type 1"] == 2  # A3, A4 departed with disposal admitted
    assert rwe["A&E attendances Type 2"] == 0 and rwe["Attendances over 4hrs Type 2"] == 0
    assert rwe["A&E attendances Other A&E Department"] == 2  # A7, A8
    assert rwe["Attendances over 4hrs Other Department"] == 1  # A8 (4:00:01)
    assert rwe["Emergency admissions via A&E - Other A&E department"] == 0
    assert rwe["Total attendances"] == 8 and rwe["Total Attendances > 4 hours"] == 3  # 6 + 2; 2 + 1
    assert rwe["Percentage in 4 hours or less (type 1)"] == pytest.approx(100 * 4 / 6)  # 66.67
    assert rwe["Percentage in 4 hours or less (type 2)"] is None  # no type 2 attendances
    assert rwe["Percentage in 4 hours or less (other A&E)"] == 50.0  # 1 of 2
    assert rwe["Percentage in 4 hours or less (all)"] == 62.5  # (8 - 3) / 8
    rfs = march["RFS"]
    # RFS: B1 within (admitted), B2 over.
    assert (rfs["A&E attendances Type 2"], rfs["Attendances over 4hrs Type 2"]) == (2, 1)
    assert rfs["Emergency admissions via A&E - Type 2"] == 1
    assert rfs["Percentage in 4 hours or less (type 2)"] == 50.0 and rfs["Percentage in 4 hours or less (all)"] == 50.0
    assert rfs["A&E attendances Type 1"] == 0 and rfs["Percentage in 4 hours or less (type 1)"] is None

    april = by_org(monthly_return(store, ICB, "ae", "2026-04", org="RWE"))
    assert list(april) == ["RWE"]  # --org: that organisation only
    assert april["RWE"]["Period"] == "MSitAE-APRIL-2026"
    # A5 (31 Mar 23:00 -> 1 Apr 01:00 BST, 2:00) is April's only attendance: 1 of 1 within.
    assert april["RWE"]["A&E attendances Type 1"] == 1 and april["RWE"]["Attendances over 4hrs Type 1"] == 0
    assert april["RWE"]["Percentage in 4 hours or less (all)"] == 100.0
    february = by_org(monthly_return(store, ICB, "ae", "2026-02"))
    assert february["RWE"]["Total attendances"] == 0  # A6 arrived in February but departed in March

    # As of 20 Mar 12:00: A1-A3 (29 Mar) have not happened yet, A9's cancellation has but A9 has not departed.
    early = by_org(monthly_return(store, ICB, "ae", "2026-03", at=ef.when("2026-03-20 12:00")))["RWE"]
    assert early["A&E attendances Type 1"] == 3  # A4, A6, A11
    assert early["Attendances over 4hrs Type 1"] == 1  # A6

    # The engine's month window (T in April) agrees: ratio numerators are the within-4h counts.
    engine = engine_month(events + copies)
    assert engine[("ed_4h_pct_type1", "org", "RWE")] == (pytest.approx(100 * 4 / 6), 4.0, 6.0)
    assert engine[("ed_4h_pct_type3", "org", "RWE")] == (50.0, 1.0, 2.0)
    assert engine[("ed_4h_pct", "org", "RWE")] == (62.5, 5.0, 8.0)
    assert engine[("ed_4h_pct_type2", "org", "RFS")] == (50.0, 1.0, 2.0)


# --- Ambulance ---------------------------------------------------------------------------------------------------


def amb_events() -> tuple[list[Envelope], list[Envelope]]:
    ev: list[Envelope] = []
    # Cat 2 (worked example 2): 5, 9, 12, 20, 31, 44, 7, 18, 25, 60 min, clocks started on 10 March.
    for i, minutes in enumerate((5, 9, 12, 20, 31, 44, 7, 18, 25, 60)):
        ev += ef.amb_response(f"C2-{i}", f"2026-03-10 {8 + i:02d}:00", minutes, 2)
    # Cat 1: clock 28 Feb 23:58, arrival 1 Mar 00:05 = 7 min -> March (month of the clock stop).
    ev += ef.amb_response("C1-feb", "2026-02-28 23:58", 7, 1)
    # Cat 1 across the clock change: clock 29 Mar 00:55 GMT (00:55Z), arrival 02:05 BST (01:05Z) = 10 min.
    ev += [
        ef.amb_clock_started("C1-dst", "2026-03-29 00:55", 1, event_id="C1-dst-start"),
        ef.amb_resource_arrived("C1-dst", "2026-03-29 02:05", True, "DCA-1"),
        ef.amb_closed("C1-dst", "2026-03-29 03:00", True),
    ]
    # Cat 1 across the month end: clock 31 Mar 23:50 BST, arrival 1 Apr 00:05 BST = 15 min -> April.
    ev += ef.amb_response("C1-apr", "2026-03-31 23:50", 15, 1)
    # Worked example 3, recategorised to 4: clock 09:00 Cat 3, Cat 4 at 09:05, RRV 09:12, ambulance 09:30,
    # conveyed -> Cat 4, 30 min.
    ev += [
        ef.amb_clock_started("R1", "2026-03-20 09:00", 3),
        ef.amb_recategorised("R1", "2026-03-20 09:05", 4),
        ef.amb_resource_arrived("R1", "2026-03-20 09:12", False, "RRV-1"),
        ef.amb_resource_arrived("R1", "2026-03-20 09:30", True, "DCA-2"),
        ef.amb_closed("R1", "2026-03-20 10:30", True),
    ]
    # Cat 3, not conveyed, only the RRV on scene: the clock stops at the RRV, 09:00 -> 09:12 = 12 min.
    ev += [
        ef.amb_clock_started("R2", "2026-03-21 09:00", 3),
        ef.amb_resource_arrived("R2", "2026-03-21 09:12", False, "RRV-2"),
        ef.amb_closed("R2", "2026-03-21 10:00", False),
    ]
    # No responder yet (no clock stop): no response time.
    ev.append(ef.amb_clock_started("R3", "2026-03-22 09:00", 2))
    copies = [
        *ev[:6],  # exact re-deliveries of C2-0 and C2-1
        ef.amb_clock_started("C1-dst", "2026-03-29 00:30", 2, event_id="C1-dst-start"),  # a conflicting copy: loses
    ]
    return ev, copies


def test_ambulance_return_march_2026(store: Store) -> None:
    events, copies = amb_events()
    load(store, events)
    load(store, copies, first_offset=10_000)
    rows = {r["Category"]: r for r in monthly_return(store, ICB, "ambulance", "2026-03")}
    assert {(r["Year"], r["Month"], r["Org Code"]) for r in rows.values()} == {(2026, 3, "RX9")}
    cat1, cat2, cat3, cat4 = rows[1], rows[2], rows[3], rows[4]
    # Cat 1: 7 and 10 min = 420 s + 600 s = 1020 s; mean 510 s (8.5 min); p90 rank ceil(0.9 * 2) = 2nd = 600 s.
    assert (cat1["Incidents"], cat1["Total response time (s)"]) == (2, 1020.0)
    assert (cat1["Mean response time (s)"], cat1["90th centile response time (s)"]) == (510.0, 600.0)
    assert (cat1["Mean response time (min)"], cat1["90th centile response time (min)"]) == (8.5, 10.0)
    # Cat 2: total 231 min = 13,860 s; mean 23.1 min = 1,386 s; p90 = 9th of 10 sorted = 44 min = 2,640 s.
    assert (cat2["Incidents"], cat2["Total response time (s)"]) == (10, 13860.0)
    assert cat2["Mean response time (s)"] == pytest.approx(1386.0)
    assert cat2["Mean response time (min)"] == pytest.approx(23.1)
    assert (cat2["90th centile response time (s)"], cat2["90th centile response time (min)"]) == (2640.0, 44.0)
    # Cat 3: R2 only, 12 min = 720 s (R3 has no stop; R1 was recategorised to 4).
    assert (cat3["Incidents"], cat3["Total response time (s)"], cat3["90th centile response time (s)"]) == (
        1,
        720.0,
        720.0,
    )
    # Cat 4: R1, 09:00 -> the ambulance 09:30 = 30 min = 1,800 s.
    assert (cat4["Incidents"], cat4["Mean response time (s)"], cat4["Mean response time (min)"]) == (1, 1800.0, 30.0)

    april = {r["Category"]: r for r in monthly_return(store, ICB, "ambulance", "2026-04", org="RX9")}
    # C1-apr: stop 1 Apr 00:05 BST -> April, 15 min = 900 s.
    assert (april[1]["Incidents"], april[1]["Total response time (s)"]) == (1, 900.0)
    assert april[2]["Incidents"] == 0 and april[2]["90th centile response time (s)"] is None

    engine = engine_month(events + copies)
    assert engine[("amb_cat1_mean_min", "org", "RX9")] == (8.5, 17.0, 2.0)
    assert engine[("amb_cat1_p90_min", "org", "RX9")] == (10.0, None, 2.0)
    assert engine[("amb_cat2_p90_min", "org", "RX9")] == (44.0, None, 10.0)
    assert engine[("amb_cat4_mean_min", "org", "RX9")] == (30.0, 30.0, 1.0)


# --- Discharge ---------------------------------------------------------------------------------------------------


def discharge_events() -> tuple[list[Envelope], list[Envelope]]:
    ev: list[Envelope] = []

    def spell(spell_id: str, admitted: str, drd: str | None, out: str | None, **kw: str) -> None:
        """Admitted to an adult G&A bed; the ready date (when given) recorded an hour after admission."""
        ev.append(ef.admitted(spell_id, admitted, **kw))
        if drd is not None:
            ev.append(ef.drd_set(spell_id, ef.when(admitted) + dt.timedelta(hours=1), drd, **kw))
        if out is not None:
            ev.append(ef.discharged(spell_id, out, event_id=f"{spell_id}-discharged", **kw))

    # S1 (worked example 4): admitted 3 Mar, DRD 5 Mar, cleared 6 Mar, set again to 8 Mar, discharged 8 Mar -> 0.
    ev += [
        ef.admitted("S1", "2026-03-03 14:00"),
        ef.drd_set("S1", "2026-03-05 10:00", "2026-03-05"),
        ef.drd_cleared("S1", "2026-03-06 09:00"),
        ef.drd_set("S1", "2026-03-08 09:00", "2026-03-08"),
        ef.discharged("S1", "2026-03-08 18:00"),
    ]
    # S2: the same, discharged 10 Mar -> 10 - 8 = 2 days (bucket 2-3).
    ev += [
        ef.admitted("S2", "2026-03-03 14:00"),
        ef.drd_set("S2", "2026-03-05 10:00", "2026-03-05"),
        ef.drd_cleared("S2", "2026-03-06 09:00"),
        ef.drd_set("S2", "2026-03-08 09:00", "2026-03-08"),
        ef.discharged("S2", "2026-03-10 18:00"),
    ]
    spell("S3", "2026-03-01 10:00", None, "2026-03-02 11:00")  # no DRD: on time, 0
    spell("S4", "2026-03-12 08:00", "2026-03-12", "2026-03-12 20:00")  # same-day stay: not counted
    # S5, the clock-change day: DRD 27 Mar, discharged 29 Mar 23:30 BST (22:30Z) -> local date 29 Mar -> 2 days.
    spell("S5", "2026-03-20 10:00", "2026-03-27", "2026-03-29 23:30")
    # S6, across the month end: discharged 1 Apr 00:30 BST (31 Mar 23:30Z) -> April; DRD 30 Mar -> 2 days.
    spell("S6", "2026-03-25 10:00", "2026-03-30", "2026-04-01 00:30")
    spell("S7", "2026-03-02 10:00", "2026-03-04", "2026-03-05 12:00")  # 5 - 4 = 1 day
    spell("S8", "2026-02-01 10:00", "2026-02-05", "2026-03-03 12:00")  # 5 Feb -> 3 Mar: 23 + 3 = 26 days (21+)
    spell("S9", "2026-03-01 10:00", "2026-03-05", "2026-03-15 12:00")  # 10 days (7-13)
    spell("S10", "2026-03-01 10:00", "2026-03-10", "2026-03-15 12:00")  # 5 days (4-6)
    spell("S11", "2026-03-01 10:00", "2026-03-02", "2026-03-18 12:00")  # 16 days (14-20)
    spell("S15", "2026-03-01 10:00", "2026-03-20", "2026-03-15 12:00")  # before its ready date: 0
    # S12: in critical care at discharge -> not adult G&A -> not counted.
    spell("S12", "2026-03-01 10:00", "2026-03-02", None)
    ev += [ef.transferred("S12", "2026-03-02 10:00", "critical_care"), ef.discharged("S12", "2026-03-09 10:00")]
    # S13: admission cancelled -> never existed.
    spell("S13", "2026-03-01 10:00", "2026-03-02", "2026-03-09 10:00")
    ev.append(ef.admission_cancelled("S13", "2026-03-01 11:00"))
    # S14: discharge cancelled -> still in hospital.
    spell("S14", "2026-03-01 10:00", "2026-03-02", "2026-03-09 10:00")
    ev.append(ef.discharge_cancelled("S14", "2026-03-09 11:00"))
    # S17 at RFS: DRD 2 Mar, discharged 4 Mar -> 2 days.
    spell("S17", "2026-03-01 10:00", "2026-03-02", "2026-03-04 12:00", org="RFS", site="RFSEY")
    copies = [
        ef.discharged("S3", "2026-04-02 11:00", event_id="S3-discharged"),  # conflicting copy: the first wins
        *[e for e in ev if getattr(e, "spell_id", None) == "S9"],  # exact re-deliveries
    ]
    return ev, copies


def test_discharge_return_march_2026(store: Store) -> None:
    events, copies = discharge_events()
    load(store, events)
    load(store, copies, first_offset=10_000)
    march = by_org(monthly_return(store, ICB, "discharge", "2026-03"))
    rwe = march["RWE"]
    assert rwe["Period"] == "2026-03"
    # Counted: S1 0, S2 2, S3 0, S5 2, S7 1, S8 26, S9 10, S10 5, S11 16, S15 0 = 10 spells
    # (S4 same day, S6 April, S12 critical care, S13 cancelled, S14 discharge cancelled).
    assert rwe["Discharges (stay of one night or more)"] == 10
    assert rwe["Discharged on ready date"] == 3  # S1, S3, S15
    assert rwe["Percentage discharged on ready date"] == 30.0  # 3 / 10
    buckets = [rwe[c] for c in COLUMNS["discharge"][6:13]]
    # 0: S1 S3 S15; 1: S7; 2-3: S2 S5; 4-6: S10; 7-13: S9; 14-20: S11; 21+: S8
    assert buckets == [3, 1, 2, 1, 1, 1, 1]
    assert rwe["Total delay days"] == 62  # 2 + 2 + 1 + 26 + 10 + 5 + 16
    assert rwe["Average delay days (all discharges)"] == pytest.approx(6.2)  # 62 / 10
    assert rwe["Average delay days (delayed discharges)"] == pytest.approx(62 / 7)  # 7 delayed: 8.857
    rfs = march["RFS"]
    assert (rfs["Discharges (stay of one night or more)"], rfs["Delay 2-3 days"], rfs["Total delay days"]) == (1, 1, 2)
    assert rfs["Percentage discharged on ready date"] == 0.0

    april = by_org(monthly_return(store, ICB, "discharge", "2026-04"))["RWE"]
    # S6 only (S3's later copy at 2 Apr lost): 1 spell, 2 days.
    assert (april["Discharges (stay of one night or more)"], april["Delay 2-3 days"]) == (1, 1)
    assert april["Average delay days (all discharges)"] == 2.0

    engine = engine_month(events + copies)
    assert engine[("discharged_on_drd_pct", "org", "RWE")] == (30.0, 3.0, 10.0)
    assert engine[("discharge_delay_days_mean", "org", "RWE")] == (pytest.approx(6.2), 62.0, 10.0)
    assert engine[("drd_delay_days_mean", "org", "RWE")] == (pytest.approx(62 / 7), 62.0, 7.0)


# --- October clock change ------------------------------------------------------------------------------------------


def test_october_clock_change_month_bounds(store: Store) -> None:
    # Clocks go back on Sunday 25 October 2026 (02:00 BST -> 01:00 GMT); October ends at 31 Oct 24:00 GMT = 1 Nov 00:00Z.
    ev: list[Envelope] = []
    # 25 Oct 00:30 BST (24 Oct 23:30Z) -> 03:30 GMT (03:30Z): 3:00 on the wall clock, but 4:00:00 elapsed (the hour
    # 01:00-02:00 happens twice) -> within, exactly 4 hours.
    ev += ef.ed_attendance("O1", "2026-10-25 00:30", "2026-10-25 03:30")
    # 25 Oct 00:30 BST -> 03:31 GMT = 4:01 elapsed (the wall clock shows 3:01) -> over.
    ev += ef.ed_attendance("O2", "2026-10-25 00:30", "2026-10-25 03:31")
    # Departed 31 Oct 23:59 GMT (23:59Z) -> October; departed 1 Nov 00:00 GMT -> November.
    ev += ef.ed_attendance("O3", "2026-10-31 22:00", "2026-10-31 23:59")
    ev += ef.ed_attendance("O4", "2026-10-31 22:00", "2026-11-01 00:00")
    # Departed 1 Oct 00:30 BST = 30 Sep 23:30Z: October in London, September in UTC.
    ev += ef.ed_attendance("O5", "2026-09-30 22:00", "2026-10-01 00:30")
    load(store, ev)
    october = by_org(monthly_return(store, ICB, "ae", "2026-10", org="RWE"))["RWE"]
    assert october["Period"] == "MSitAE-OCTOBER-2026"
    assert (october["A&E attendances Type 1"], october["Attendances over 4hrs Type 1"]) == (4, 1)  # O1 O2 O3 O5; O2
    assert october["Percentage in 4 hours or less (type 1)"] == 75.0
    assert by_org(monthly_return(store, ICB, "ae", "2026-11"))["RWE"]["Total attendances"] == 1  # O4
    assert by_org(monthly_return(store, ICB, "ae", "2026-09"))["RWE"]["Total attendances"] == 0
    engine = engine_month(ev, at=ef.when("2026-11-02 12:00"))
    assert engine[("ed_4h_pct_type1", "org", "RWE")] == (75.0, 3.0, 4.0)


# --- The returns equal the engine's month window on a simulated month end ----------------------------------------


def test_returns_equal_the_engines_month_window_on_simulated_data(store: Store) -> None:
    config = load_config()  # the shipped LLR configuration: RWE (ED types 1 and 3, beds), RX9
    events = list(
        simulate(
            config.icb,
            scenario="normal",
            start=dt.datetime(2026, 3, 27, tzinfo=dt.UTC),  # the last days of March (clock change on the 29th)
            duration=dt.timedelta(days=6),
            seed=5,
            warmup=dt.timedelta(days=2),
        )
    )
    at = ef.when("2026-04-02 12:00")  # inside April: the engine's month window is March
    load(store, events)
    load(store, events[::7], first_offset=1_000_000)  # re-deliveries
    engine = engine_month(events + events[::11], config=config, at=at)
    ae = by_org(monthly_return(store, config.icb, "ae", "2026-03", at=at))["RWE"]
    for suffix, kind in (("_type1", "Type 1"), ("_type3", "Other A&E Department")):
        value, within, departed = engine[(f"ed_4h_pct{suffix}", "org", "RWE")]
        assert ae[f"A&E attendances {kind}"] == departed > 50
        over = ae["Attendances over 4hrs " + ("Type 1" if kind == "Type 1" else "Other Department")]
        assert departed - over == within
    value, within, departed = engine[("ed_4h_pct", "org", "RWE")]
    assert (ae["Total attendances"], ae["Total attendances"] - ae["Total Attendances > 4 hours"]) == (departed, within)
    assert ae["Percentage in 4 hours or less (all)"] == pytest.approx(value)
    assert ae["Percentage in 4 hours or less (type 1)"] == pytest.approx(engine[("ed_4h_pct_type1", "org", "RWE")][0])
    assert ae["Emergency admissions via A&E - Type 1"] > 0

    amb = {r["Category"]: r for r in monthly_return(store, config.icb, "ambulance", "2026-03", at=at)}
    for category, row in amb.items():
        mean, total, n = engine[(f"amb_cat{category}_mean_min", "org", "RX9")]
        p90 = engine[(f"amb_cat{category}_p90_min", "org", "RX9")][0]
        assert row["Incidents"] == n
        assert row["Total response time (s)"] == pytest.approx(total * 60)
        assert row["Mean response time (min)"] == pytest.approx(mean)
        assert row["90th centile response time (min)"] == pytest.approx(p90)
        assert row["90th centile response time (s)"] == pytest.approx(p90 * 60)
    assert amb[2]["Incidents"] > 50

    dis = by_org(monthly_return(store, config.icb, "discharge", "2026-03", at=at))["RWE"]
    value, on_time, n = engine[("discharged_on_drd_pct", "org", "RWE")]
    assert (dis["Discharges (stay of one night or more)"], dis["Discharged on ready date"]) == (n, on_time)
    assert dis["Percentage discharged on ready date"] == pytest.approx(value)
    assert n > 100 and on_time < n
    mean, total, n = engine[("discharge_delay_days_mean", "org", "RWE")]
    assert (dis["Total delay days"], dis["Average delay days (all discharges)"]) == (total, pytest.approx(mean))
    mean, total, delayed = engine[("drd_delay_days_mean", "org", "RWE")]
    assert dis["Average delay days (delayed discharges)"] == pytest.approx(mean)
    assert sum(dis[c] for c in COLUMNS["discharge"][7:13]) == delayed  # the buckets past 0 are the delayed spells


# --- The command line ----------------------------------------------------------------------------------------------


def test_cli_monthly_csv_json_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    monkeypatch.setenv("SCC_STORE", dsn)
    monkeypatch.delenv("SCC_ICB_FILE", raising=False)  # the shipped LLR configuration: RWE, RX9
    s = open_store(dsn)
    migrate(s)
    # RWE, March: type 1 within (3:00) and over (5:00), admitted; type 3 within.
    load(
        s,
        [
            *ef.ed_attendance("X1", "2026-03-03 10:00", "2026-03-03 13:00"),
            ef.ed_arrived("X2", "2026-03-03 10:00"),
            ef.ed_departed("X2", "2026-03-03 15:00", "admitted"),
            *ef.ed_attendance("X3", "2026-03-03 10:00", "2026-03-03 11:00", department_type="3"),
            *ef.amb_response("I1", "2026-03-03 10:00", 12.5, 2),  # Cat 2, 12.5 min = 750 s
        ],
    )
    s.close()  # one chDB store per process: the command opens its own
    runner = CliRunner()

    result = runner.invoke(app, ["report", "monthly", "--month", "2026-03", "--return", "ae", "--store", dsn])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(COLUMNS["ae"]) and len(rows) == 1
    row = rows[0]
    assert (row["Period"], row["Org Code"]) == ("MSitAE-MARCH-2026", "RWE")
    assert (row["A&E attendances Type 1"], row["Attendances over 4hrs Type 1"]) == ("2", "1")
    assert row["Emergency admissions via A&E - Type 1"] == "1"
    assert row["A&E attendances Other A&E Department"] == "1"
    assert row["Percentage in 4 hours or less (type 2)"] == ""  # no value: empty cell
    assert float(row["Percentage in 4 hours or less (all)"]) == pytest.approx(100 * 2 / 3)  # 2 of 3 within

    result = runner.invoke(
        app, ["report", "monthly", "--month", "2026-03", "--return", "ambulance", "--org", "RX9", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["Category"] for r in data] == [1, 2, 3, 4]
    assert data[1]["Incidents"] == 1 and data[1]["Mean response time (s)"] == 750.0
    assert data[1]["Mean response time (min)"] == 12.5 and data[0]["Mean response time (s)"] is None

    result = runner.invoke(
        app, ["report", "monthly", "--month", "2026-03", "--return", "discharge", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["Discharges (stay of one night or more)"] == 0

    for args, message in (
        (["--month", "2026-13", "--return", "ae"], "YYYY-MM"),
        (["--month", "March", "--return", "ae"], "YYYY-MM"),
        (["--month", "2026-03", "--return", "rtt"], "--return must be one of ae, ambulance, discharge"),
        (["--month", "2026-03", "--return", "ae", "--org", "RX9"], "no ae return"),
        (["--month", "2026-03", "--return", "discharge", "--org", "ZZZ"], "'ZZZ'"),
        (["--month", "2026-03", "--return", "ae", "--format", "xml"], "--format"),
    ):
        result = runner.invoke(app, ["report", "monthly", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output.replace("\n", " "), (args, result.output)

"""OPEL scoring (streams/indicators/opel.py, schemas/opel.py, config/opel/default-2024-26.yaml, docs/opel.md).

Score per scope = 100 * sum(weight * (band score - 1)) / sum(weight * 3) over the parameters with a value there;
level 1 below the first cut-off, 2 below the second, 3 below the third, 4 at or above it. Every expected number is
worked out by hand next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.config import DEFAULT_ICB_FILE, ConfigError, load_config
from schemas.opel import OpelFramework, OpelParameter
from streams.indicators.opel import compute, read_by
from streams.indicators.rows import Row
from tests.unit import events_factory as ef

HANDOVER = {"indicator": "amb_handover_mean_min", "window": "today", "weight": 2, "bands": [15, 30, 60]}
FOUR_HOUR = {"indicator": "ed_4h_pct", "window": "today", "weight": 1, "bands": [78, 70, 60], "lower_is_worse": True}
NCTR = {"indicator": "nctr_pct", "window": "live", "weight": 1, "bands": [15, 20, 25]}


def framework(parameters: dict[str, dict[str, Any]], cutoffs: list[float] | None = None) -> OpelFramework:
    return OpelFramework.model_validate(
        {"version": "t", "label": "test", "parameters": parameters, "level_cutoffs": cutoffs or [25, 50, 75]}
    )


def scored(rows: list[Row], fw: OpelFramework) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    return {(r.indicator, r.scope_type, r.scope_code): (r.value, r.numerator, r.denominator) for r in compute(rows, fw)}


# --- bands and cut-offs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1), (15, 1), (15.0001, 2), (30, 2), (30.01, 3), (60, 3), (60.01, 4), (1000, 4)],
)
def test_band_edges_higher_is_worse(value: float, expected: int) -> None:
    # bands [15, 30, 60]: score 1 up to and including 15, 2 up to 30, 3 up to 60, 4 beyond
    assert OpelParameter.model_validate(HANDOVER).score(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(100, 1), (78, 1), (77.99, 2), (70, 2), (69.99, 3), (60, 3), (59.99, 4), (0, 4)],
)
def test_band_edges_lower_is_worse(value: float, expected: int) -> None:
    # bands [78, 70, 60], lower is worse: 1 at 78 or more, 2 at 70 or more, 3 at 60 or more, 4 below 60
    assert OpelParameter.model_validate(FOUR_HOUR).score(value) == expected


@pytest.mark.parametrize(
    ("score", "level"),
    [(0, 1), (24.999, 1), (25, 2), (49.999, 2), (50, 3), (74.999, 3), (75, 4), (100, 4)],
)
def test_level_cutoffs(score: float, level: int) -> None:
    # cut-offs [25, 50, 75]: a score on a cut-off is the higher level
    assert framework({"nctr": NCTR}).level(score) == level


# --- weighted scores per scope ---------------------------------------------------------------------------------


def test_weighted_score_levels_and_missing_parameters() -> None:
    fw = framework({"handover": HANDOVER, "four_hour": FOUR_HOUR, "nctr": NCTR})
    rows = [
        # site S1: handover 45 -> 3 (2 * 2 = 4 points), 4-hour 78 -> 1 (0), NCTR 25.5 -> 4 (1 * 3 = 3)
        Row("amb_handover_mean_min", "today", "site", "S1", 45.0, 90.0, 2.0),
        Row("ed_4h_pct", "today", "site", "S1", 78.0, 78.0, 100.0),
        Row("nctr_pct", "live", "site", "S1", 25.5, 51.0, 200.0),
        # site S2: only NCTR has a value (20 -> 2, 1 point); the handover has none (0 handovers); ed_4h_pct mtd is
        # not a parameter (the framework reads `today`)
        Row("nctr_pct", "live", "site", "S2", 20.0, 20.0, 100.0),
        Row("amb_handover_mean_min", "today", "site", "S2", None, 0.0, 0.0),
        Row("ed_4h_pct", "mtd", "site", "S2", 10.0, 1.0, 10.0),
        # org O1: every parameter at its worst: 60.0001 -> 4 (6), 59.9 -> 4 (3), 26 -> 4 (3)
        Row("amb_handover_mean_min", "today", "org", "O1", 60.0001, None, None),
        Row("ed_4h_pct", "today", "org", "O1", 59.9, None, None),
        Row("nctr_pct", "live", "org", "O1", 26.0, None, None),
        # system: 4-hour 100 -> 1 (0 points of 3)
        Row("ed_4h_pct", "today", "system", "QK1", 100.0, 10.0, 10.0),
        # site S3: no parameter has a value -> no OPEL rows at all
        Row("nctr_pct", "live", "site", "S3", None, 0.0, 0.0),
        Row("ga_beds_occupied", "live", "site", "S3", 12.0, 12.0, None),
    ]
    got = scored(rows, fw)
    # S1: 4 + 0 + 3 = 7 of 3 * (2 + 1 + 1) = 12 -> 58.333333333 -> level 3 (50 <= score < 75)
    assert got[("opel_score", "site", "S1")] == (pytest.approx(58.333333333), 7.0, 12.0)
    assert got[("opel_level", "site", "S1")] == (3.0, 3.0, None)
    # S2: 1 of 3 (the others re-normalised away) -> 33.333333333 -> level 2
    assert got[("opel_score", "site", "S2")] == (pytest.approx(33.333333333), 1.0, 3.0)
    assert got[("opel_level", "site", "S2")] == (2.0, 2.0, None)
    # O1: 6 + 3 + 3 = 12 of 12 -> 100 -> level 4
    assert got[("opel_score", "org", "O1")] == (100.0, 12.0, 12.0)
    assert got[("opel_level", "org", "O1")] == (4.0, 4.0, None)
    # system: 0 of 3 -> 0 -> level 1
    assert got[("opel_score", "system", "QK1")] == (0.0, 0.0, 3.0)
    assert got[("opel_level", "system", "QK1")] == (1.0, 1.0, None)
    assert not any(code == "S3" for _, _, code in got)
    assert {r.window for r in compute(rows, fw)} == {"live"}


def test_weights_change_the_score() -> None:
    rows = [
        Row("amb_handover_mean_min", "today", "site", "S", 100.0, None, None),  # -> 4: 3 points per unit weight
        Row("nctr_pct", "live", "site", "S", 10.0, None, None),  # -> 1: 0 points
    ]
    # handover weight 2, NCTR 1: 2 * 3 = 6 of 3 * 3 = 9 -> 66.666666667 -> level 3
    heavy = scored(rows, framework({"handover": HANDOVER, "nctr": NCTR}))
    assert heavy[("opel_score", "site", "S")] == (pytest.approx(66.666666667), 6.0, 9.0)
    assert heavy[("opel_level", "site", "S")][0] == 3.0
    # handover weight 1, NCTR 3: 1 * 3 = 3 of 3 * 4 = 12 -> 25 exactly -> level 2 (on the cut-off)
    light = scored(rows, framework({"handover": {**HANDOVER, "weight": 1}, "nctr": {**NCTR, "weight": 3}}))
    assert light[("opel_score", "site", "S")] == (25.0, 3.0, 12.0)
    assert light[("opel_level", "site", "S")][0] == 2.0


def test_fractional_weights_land_on_the_cut_off() -> None:
    # Four parameters of weight 1.1; one scores 4: 1.1 * 3 = 3.3 of 1.1 * 3 * 4 = 13.2 -> exactly 25 -> level 2.
    # (In floats 100 * 3.3000000000000003 / 13.200000000000001 = 24.999999999999996: it was level 1 before the fix.)
    parameters = {f"p{i}": {**NCTR, "indicator": f"x{i}", "weight": 1.1} for i in range(4)}
    rows = [Row(f"x{i}", "live", "site", "S", 30.0 if i == 0 else 0.0, None, None) for i in range(4)]
    got = scored(rows, framework(parameters))
    assert got[("opel_score", "site", "S")][0] == 25.0
    assert got[("opel_level", "site", "S")][0] == 2.0


def test_two_parameters_may_read_the_same_indicator() -> None:
    # NCTR 18 scored by two parameters: bands [15, 20, 25] -> 2 (1 point), bands [5, 10, 15] -> 4 (3 points)
    # -> 4 of 6 -> 66.666666667 -> level 3 (before the fix only one of them counted)
    fw = framework({"nctr": NCTR, "nctr_strict": {**NCTR, "bands": [5, 10, 15]}})
    got = scored([Row("nctr_pct", "live", "site", "S", 18.0, None, None)], fw)
    assert got[("opel_score", "site", "S")] == (pytest.approx(66.666666667), 4.0, 6.0)
    assert got[("opel_level", "site", "S")][0] == 3.0


def test_only_the_rows_read_by_says_count() -> None:
    # a replay in processes sends OPEL only these rows: the others (another window, another indicator) change nothing
    fw = framework({"handover": HANDOVER, "four_hour": FOUR_HOUR, "nctr": NCTR})
    assert read_by(fw) == {("amb_handover_mean_min", "today"), ("ed_4h_pct", "today"), ("nctr_pct", "live")}
    rows = [
        Row("ed_4h_pct", "today", "site", "S", 65.0, None, None),
        Row("ed_4h_pct", "mtd", "site", "S", 95.0, None, None),
        Row("amb_handover_mean_min", "today", "site", "S", 40.0, None, None),
        Row("amb_handover_mean_min", "last_60m", "site", "S", 5.0, None, None),
        Row("ed_attendances", "today", "site", "S", 310.0, None, None),
        Row("nctr_pct", "live", "system", "QK1", 22.0, None, None),
    ]
    read = [row for row in rows if (row.indicator, row.window) in read_by(fw)]
    assert len(read) == 3 and list(compute(read, fw)) == list(compute(rows, fw))


# --- the shipped default, end to end through the engine, with declared levels --------------------------------------


def test_default_framework_end_to_end_with_declared_levels() -> None:
    day = "2026-05-05"
    ev = []
    # ED today at RWEAA: 3 walk-ins 08:00 -> 10:00 (within), 1 walk-in 01:00 -> 06:00 (5 h, breach) -> 75% -> band 2
    for i in range(3):
        ev += ef.ed_attendance(f"D{i}", f"{day} 08:00", f"{day} 10:00")
    ev += ef.ed_attendance("D3", f"{day} 01:00", f"{day} 06:00")
    # In the department at 12:00: 19 arrived 11:00, 1 arrived 4 May 23:00 (13 h) -> 1 / 20 = 5% -> band 2 (edge)
    for i in range(19):
        ev += ef.ed_attendance(f"P{i}", f"{day} 11:00")
    ev += ef.ed_attendance("P19", "2026-05-04 23:00")
    # Handovers today at RWEAA: 10 and 20 min -> mean 15 -> band 1 (edge)
    ev += [ef.amb_at_hospital("H1", f"{day} 09:00"), ef.amb_handover_completed("H1", f"{day} 09:10")]
    ev += [ef.amb_at_hospital("H2", f"{day} 10:00"), ef.amb_handover_completed("H2", f"{day} 10:20")]
    # Beds at RWEAA: 4 adult G&A spells, 1 in an escalation bed, 1 with a ready date of 3 May (NCTR):
    # occupancy 4 / (860 + 1) = 0.46% -> band 1; escalation 1 / 4 = 25% -> band 4; NCTR 1 / 4 = 25% -> band 3 (edge)
    ev.append(ef.admitted("B1", "2026-05-01 10:00", escalation_bed=True))
    ev += [ef.admitted(f"B{i}", "2026-05-01 10:00") for i in (2, 3, 4)]
    ev.append(ef.drd_set("B2", "2026-05-03 10:00", "2026-05-03"))
    # Declared levels: RWEAA 3 (07:00); RWE 2 (06:00) then 4 (08:00), the latest wins; the system (QK1) 1;
    # a declaration after T (13:00) is not yet in force.
    ev += [
        ef.opel_declared(f"{day} 07:00", 3),
        ef.opel_declared(f"{day} 06:00", 2, site=None),
        ef.opel_declared(f"{day} 08:00", 4, site=None),
        ef.opel_declared(f"{day} 09:00", 1, org="QK1", site=None),
        ef.opel_declared(f"{day} 13:00", 1),
    ]
    snap = ef.evaluate(ev, f"{day} 12:00")
    assert snap.value("ed_4h_pct", "today", "site", "RWEAA") == 75.0
    assert snap.value("ed_over_12h_now_pct", "live", "site", "RWEAA") == 5.0
    assert snap.value("amb_handover_mean_min", "today", "site", "RWEAA") == 15.0
    assert snap.value("ga_escalation_beds_pct", "live", "site", "RWEAA") == 25.0
    assert snap.value("nctr_pct", "live", "site", "RWEAA") == 25.0
    # Points (all weights 1): handover 0, 4-hour 1, 12 h 1, occupancy 0, escalation 3, NCTR 2 = 7 of 6 * 3 = 18
    # -> 38.888888889 -> level 2. The organisation and the system see the same values (occupancy against more beds,
    # still band 1).
    for scope in (("site", "RWEAA"), ("org", "RWE"), ("system", "QK1")):
        row = snap.row("opel_score", "live", *scope)
        assert (row.value, row.numerator, row.denominator) == (pytest.approx(38.888888889), 7.0, 18.0), scope
        assert snap.value("opel_level", "live", *scope) == 2.0, scope
    # RWEAE and RWEAK: beds but no patients: occupancy 0 -> band 1; escalation and NCTR have no value (0 / 0); no
    # ED, no handovers -> 0 of 3 -> level 1.
    for site in ("RWEAE", "RWEAK"):
        row = snap.row("opel_score", "live", "site", site)
        assert (row.value, row.numerator, row.denominator) == (0.0, 0.0, 3.0)
        assert snap.value("opel_level", "live", "site", site) == 1.0
    # RX9 (an ambulance service: no parameter is reported for it) gets no calculated level.
    assert not snap.has("opel_score", "live", "org", "RX9")
    assert not snap.has("opel_level", "live", "org", "RX9")
    # The declared levels sit next to the calculated ones.
    assert snap.value("opel_declared_level", "live", "site", "RWEAA") == 3.0  # the 13:00 declaration is after T
    assert snap.value("opel_declared_level", "live", "org", "RWE") == 4.0  # 08:00 beats 06:00
    assert snap.value("opel_declared_level", "live", "system", "QK1") == 1.0
    assert not snap.has("opel_declared_level", "live", "site", "RWEAE")
    later = ef.evaluate(ev, f"{day} 14:00")
    assert later.value("opel_declared_level", "live", "site", "RWEAA") == 1.0  # now the 13:00 one is in force


def test_shipped_default_matches_docs_opel_md() -> None:
    fw = load_config().opel
    table = {name: (p.indicator, p.window, p.weight, p.bands, p.lower_is_worse) for name, p in fw.parameters.items()}
    assert table == {
        "mean_handover_min": ("amb_handover_mean_min", "today", 1.0, [15, 30, 60], False),
        "four_hour_pct": ("ed_4h_pct", "today", 1.0, [78, 70, 60], True),
        "over_12h_in_ed_pct": ("ed_over_12h_now_pct", "live", 1.0, [2, 5, 10], False),
        "ga_occupancy_pct": ("ga_occupancy_pct", "live", 1.0, [92, 95, 98], False),
        "escalation_beds_pct": ("ga_escalation_beds_pct", "live", 1.0, [1, 3, 5], False),
        "nctr_pct": ("nctr_pct", "live", 1.0, [15, 20, 25], False),
    }
    assert fw.level_cutoffs == [25, 50, 75]
    assert "not the NHS England tables" in fw.label


# --- a bad OPEL file is rejected, saying where ---------------------------------------------------------------------


def write_icb_with_opel(tmp_path: Path, opel_text: str) -> tuple[Path, Path]:
    icb = tmp_path / "icb.yaml"
    icb.write_text(DEFAULT_ICB_FILE.read_text(encoding="utf-8") + "\nopel_file: bad-opel.yaml\n", encoding="utf-8")
    opel = tmp_path / "bad-opel.yaml"
    opel.write_text(opel_text, encoding="utf-8")
    return icb, opel


def test_bad_opel_file_is_rejected_with_file_line_and_field(tmp_path: Path) -> None:
    icb, opel = write_icb_with_opel(
        tmp_path,
        "version: bad\n"  # 1
        "label: test\n"  # 2
        "parameters:\n"  # 3
        "  nctr_pct:\n"  # 4
        "    indicator: nctr_pct\n"  # 5
        "    window: live\n"  # 6
        "    weight: 1\n"  # 7
        "    bands: [25, 20, 15]\n"  # 8: must ascend
        "  handover:\n"  # 9
        "    indicator: amb_handover_mean_min\n"  # 10
        "    window: today\n"  # 11
        "    weight: 0\n"  # 12: must be > 0
        "    bands: [15, 30, 60]\n"  # 13
        "  four_hour: {indicator: ed_4h_pct, window: today, weight: 1, bands: [60, 70, 78], lower_is_worse: true}\n"
        "  no_window: {indicator: nctr_pct, weight: 1, bands: [1, 2, 3], colour: red}\n"  # 15
        "level_cutoffs: [25, 75, 50]\n",  # 16: must ascend
    )
    with pytest.raises(ConfigError) as caught:
        load_config(icb)
    lines = str(caught.value).splitlines()
    assert f"{opel}:8: parameters.nctr_pct.bands: Value error, bands must be ascending: [25.0, 20.0, 15.0]" in lines
    assert f"{opel}:12: parameters.handover.weight: Input should be greater than 0" in lines
    assert f"{opel}:14: parameters.four_hour.bands: Value error, bands must be descending: [60.0, 70.0, 78.0]" in lines
    assert f"{opel}:15: parameters.no_window.window: Field required" in lines
    assert f"{opel}:15: parameters.no_window.colour: Extra inputs are not permitted" in lines
    assert f"{opel}:16: level_cutoffs: Value error, level_cutoffs must be ascending: [25.0, 75.0, 50.0]" in lines
    assert len(lines) == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: v\nlabel: l\nparameters: {}\nlevel_cutoffs: [25, 50]\n", ":4: level_cutoffs: List should have"),
        ("version: v\nlabel: l\nparameters: [\n", "not valid YAML"),
        ("version: v\nparameters: {}\nlevel_cutoffs: [1, 2, 3]\n", ":1: label: Field required"),
    ],
)
def test_other_bad_opel_files(tmp_path: Path, text: str, message: str) -> None:
    icb, opel = write_icb_with_opel(tmp_path, text)
    with pytest.raises(ConfigError, match=str(opel)) as caught:
        load_config(icb)
    assert message in str(caught.value)


def test_missing_opel_file_is_named(tmp_path: Path) -> None:
    icb, opel = write_icb_with_opel(tmp_path, "")
    opel.unlink()
    with pytest.raises(ConfigError, match=rf"{opel}: cannot read"):
        load_config(icb)

"""RAG status against a target (``streams.status.judge``) and the target in force by financial year and effective date
(``PlatformConfig.target_for``), from the shipped configuration (config/targets/*.yaml, config/icb/llr.yaml)."""

from __future__ import annotations

import datetime as dt

import pytest
from events_factory import config, ed_attendance, evaluate

from schemas.config import Target, financial_year
from streams.status import judge


def target(op: str, value: float, amber_within: float = 0.0) -> Target:
    return Target(op=op, value=value, amber_within=amber_within, source="test")


# --- judge ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (100.0, "green"),
        (78.0, "green"),  # 78 ≥ 78 → green
        (77.999, "amber"),  # misses by 0.001 ≤ 5
        (75.0, "amber"),  # misses by 3
        (73.0, "amber"),  # misses by exactly 5 → still amber
        (72.99, "red"),  # misses by 5.01 > 5
        (0.0, "red"),
    ],
)
def test_judge_greater_or_equal(value: float, status: str) -> None:
    assert judge(value, target(">=", 78, 5)) == status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (90.5, "green"),  # 90.5 > 90
        (90.0, "amber"),  # not > 90: misses by 0 ≤ 2
        (88.0, "amber"),  # misses by 2
        (87.9, "red"),  # misses by 2.1
    ],
)
def test_judge_greater(value: float, status: str) -> None:
    assert judge(value, target(">", 90, 2)) == status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (0.0, "green"),
        (30.0, "green"),  # 30 ≤ 30
        (30.01, "amber"),  # over by 0.01 ≤ 10
        (40.0, "amber"),  # over by exactly 10
        (40.5, "red"),  # over by 10.5
    ],
)
def test_judge_less_or_equal(value: float, status: str) -> None:
    assert judge(value, target("<=", 30, 10)) == status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (9.99, "green"),  # 9.99 < 10
        (10.0, "amber"),  # not < 10: over by 0 ≤ 2
        (12.0, "amber"),  # over by exactly 2
        (12.5, "red"),  # over by 2.5
    ],
)
def test_judge_less(value: float, status: str) -> None:
    assert judge(value, target("<", 10, 2)) == status


def test_judge_zero_amber_band_and_missing_inputs() -> None:
    strict = target("<=", 0, 0)  # e.g. "no handover over 45 min" with no tolerance
    assert judge(0.0, strict) == "green"
    assert judge(1.0, strict) == "red"  # over by 1 > 0
    assert judge(None, target(">=", 78, 5)) == "none"  # no value (denominator 0)
    assert judge(50.0, None) == "none"  # no target


def test_judge_with_the_shipped_amber_bands() -> None:
    cfg = config()
    day = dt.date(2025, 10, 1)  # 2025/26
    ed_4h = cfg.target_for("ed_4h_pct", day)  # ≥ 78, amber 5
    assert (judge(78.0, ed_4h), judge(73.0, ed_4h), judge(72.9, ed_4h)) == ("green", "amber", "red")
    ed_12h = cfg.target_for("ed_12h_pct", day)  # < 10, amber 2
    assert (judge(9.9, ed_12h), judge(10.0, ed_12h), judge(12.1, ed_12h)) == ("green", "amber", "red")
    over_45 = cfg.target_for("amb_handover_over_45", day)  # ≤ 0, amber 2
    assert (judge(0.0, over_45), judge(2.0, over_45), judge(3.0, over_45)) == ("green", "amber", "red")


# --- Targets by financial year -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "fy"),
    [
        (dt.date(2025, 3, 31), "2024/25"),
        (dt.date(2025, 4, 1), "2025/26"),
        (dt.date(2026, 1, 1), "2025/26"),
        (dt.date(2026, 3, 31), "2025/26"),
        (dt.date(2026, 4, 1), "2026/27"),
        (dt.date(1999, 12, 31), "1999/00"),
    ],
)
def test_financial_year(day: dt.date, fy: str) -> None:
    assert financial_year(day) == fy


def test_target_for_by_financial_year() -> None:
    cfg = config()
    # ed_12h_pct exists from 2025/26 only: 31 March 2025 (2024/25) → none; 1 April 2025 → < 10.
    assert cfg.target_for("ed_12h_pct", dt.date(2025, 3, 31)) is None
    t12 = cfg.target_for("ed_12h_pct", dt.date(2025, 4, 1))
    assert t12 is not None
    assert (t12.op, t12.value, t12.amber_within) == ("<", 10.0, 2.0)
    # amb_handover_over_45 likewise (the 45-minute maximum is a 2025/26 target).
    assert cfg.target_for("amb_handover_over_45", dt.date(2025, 3, 31)) is None
    assert cfg.target_for("amb_handover_over_45", dt.date(2025, 4, 1)).value == 0.0
    # ed_4h_pct: 78% in both years.
    assert cfg.target_for("ed_4h_pct", dt.date(2025, 3, 31)).value == 78.0
    assert cfg.target_for("ed_4h_pct", dt.date(2025, 4, 1)).value == 78.0
    # Cat 2 p90: national 40 in 2024/25; the LLR local ambition 30 overrides it in 2025/26.
    assert cfg.target_for("amb_cat2_p90_min", dt.date(2025, 3, 31)).value == 40.0
    assert cfg.target_for("amb_cat2_p90_min", dt.date(2025, 4, 1)).value == 30.0
    # Local-only targets (no national value) exist only in the years the ICB file lists them.
    assert cfg.target_for("discharged_on_drd_pct", dt.date(2025, 3, 31)) is None
    assert cfg.target_for("discharged_on_drd_pct", dt.date(2025, 4, 1)).value == 89.0
    # 2026/27 carries 2025/26 forward (provisional).
    assert cfg.target_years["2026/27"].provisional is True
    assert cfg.target_for("ed_4h_pct", dt.date(2026, 4, 1)).value == 78.0
    # No file for 2023/24 → no targets.
    assert cfg.target_for("ed_4h_pct", dt.date(2024, 3, 31)) is None
    # Indicators with no target at all.
    assert cfg.target_for("ed_in_department", dt.date(2025, 10, 1)) is None


def test_target_for_respects_effective_from() -> None:
    cfg = config()
    # MOFD ≤ 100 from 1 July 2025 (2025/26 local target with effective_from 2025-07-01).
    assert cfg.target_for("mofd_awaiting_plan", dt.date(2025, 4, 1)) is None
    assert cfg.target_for("mofd_awaiting_plan", dt.date(2025, 6, 30)) is None
    mofd = cfg.target_for("mofd_awaiting_plan", dt.date(2025, 7, 1))
    assert mofd is not None
    assert (mofd.op, mofd.value, mofd.amber_within) == ("<=", 100.0, 10.0)
    assert cfg.target_for("mofd_awaiting_plan", dt.date(2026, 3, 31)).value == 100.0
    # None in 2024/25; carried forward to 2026/27 from 1 April 2026.
    assert cfg.target_for("mofd_awaiting_plan", dt.date(2025, 3, 31)) is None
    assert cfg.target_for("mofd_awaiting_plan", dt.date(2026, 4, 1)).value == 100.0


def test_snapshot_target_switches_at_the_financial_year_by_local_date() -> None:
    # One breach of 12 h among 10 departures: 10% → ed_12h_pct. On 31 March 2025 (2024/25) there is no target; on
    # 1 April 2025 the target is < 10 and 10% misses it by 0 → amber. 1 April 2025 00:30 BST is 31 March 23:30 UTC:
    # the local date decides.
    def events(day: str) -> list:
        out = []
        for i in range(10):
            departed = f"{day}T21:00:01" if i == 0 else f"{day}T10:00"  # 12:00:01 from 09:00 for the first
            out += ed_attendance(f"fy{day}{i}", f"{day}T09:00", departed)
        return out

    march = evaluate(events("2025-03-31"), "2025-03-31T22:00").row("ed_12h_pct", "today")
    assert (march.value, march.target, march.status) == (10.0, None, "none")
    april = evaluate(events("2025-04-01"), "2025-04-01T22:00").row("ed_12h_pct", "today")
    assert (april.value, april.target, april.status) == (10.0, 10.0, "amber")
    # At 2025-03-31T23:30Z (= 00:30 BST, 1 April) the target already applies (no departures yet: no value, so none).
    early = evaluate(events("2025-03-31"), "2025-03-31T23:30Z").row("ed_12h_pct", "today")
    assert (early.target, early.value, early.status) == (10.0, None, "none")
    # ... while at 22:59Z (23:59 BST, 31 March) it does not.
    late_march = evaluate(events("2025-03-31"), "2025-03-31T22:59Z").row("ed_12h_pct", "today")
    assert late_march.target is None

"""A window's rows reused while its summaries are the same objects (streams.indicators.rows.RowMemo), and a warm
engine whose last-month rows were reused across hourly snapshots still reporting a late correction to that month."""

from __future__ import annotations

import operator
from collections import Counter

from events_factory import Snapshot, amb_response, config, ed_attendance, when

from streams.engine import Engine
from streams.indicators.rows import Row, RowMemo


def test_rows_are_built_again_only_for_a_different_summary_object() -> None:
    memo = RowMemo()
    builds: list[int] = []

    def build(counts: Counter) -> list[Row]:
        builds.append(counts["x"])
        return [Row("n", "month", "system", "QK1", float(counts["x"]), float(counts["x"]), None)]

    last_month = Counter({"x": 3})
    first = memo.rows(("n", "month"), (last_month,), lambda: build(last_month))
    assert memo.rows(("n", "month"), (last_month,), lambda: build(last_month)) is first  # same object: reused
    corrected = Counter({"x": 3})  # equal, but a new object (a day of the window changed): built again
    assert memo.rows(("n", "month"), (corrected,), lambda: build(corrected)) == first
    assert memo.rows(("n", "today"), (last_month,), lambda: build(last_month)) == first  # another key: its own
    assert builds == [3, 3, 3]


def _snapshot(engine: Engine, at: str) -> Snapshot:
    return Snapshot(engine.snapshot(when(at)))


def _month_rows(engine: Engine, at: str) -> list[Row]:
    """Last month's ED 4-hour and ambulance response rows as the aggregator computes them (before targets)."""
    prefixes = ("ed_4h_pct", "amb_cat")
    return [
        r for r in engine.aggregator.domain_rows(when(at)) if r.window == "month" and r.indicator.startswith(prefixes)
    ]


def test_last_months_rows_follow_a_late_correction_after_being_reused() -> None:
    engine = Engine(config())
    # January: one attendance within 4 h (10:00-12:00) and one Cat 2 response of 20 min.
    engine.ingest(
        [*ed_attendance("J1", "2026-01-20T10:00", "2026-01-20T12:00"), *amb_response("I1", "2026-01-20T09:00", 20, 2)]
    )
    engine.ingest(ed_attendance("F1", "2026-02-10T08:00", "2026-02-10T09:00"))
    for hour in ("10:00", "11:00"):  # last month's rows built at 10:00, reused at 11:00
        snap = _snapshot(engine, f"2026-02-10T{hour}")
        assert (snap.row("ed_4h_pct", "month").numerator, snap.row("ed_4h_pct", "month").denominator) == (1.0, 1.0)
        assert snap.value("amb_cat2_mean_min", "month") == 20.0
    reused = _month_rows(engine, "2026-02-10T11:00")
    assert all(map(operator.is_, reused, _month_rows(engine, "2026-02-10T11:00")))  # the very same rows
    # Late, at 11:30: a January attendance of 5 h (a breach) and a Cat 2 response of 40 min.
    engine.ingest(
        [*ed_attendance("J2", "2026-01-21T10:00", "2026-01-21T15:00"), *amb_response("I2", "2026-01-21T09:00", 40, 2)]
    )
    snap = _snapshot(engine, "2026-02-10T12:00")
    assert not any(map(operator.is_, reused, _month_rows(engine, "2026-02-10T12:00")))  # ED's and Cat 2's built again
    # ED 4 h: 1 within of 2 → 50%; Cat 2 mean (20 + 40) / 2 = 30 min, nearest-rank p90 ⌈1.8⌉ = 2nd → 40.
    month = snap.row("ed_4h_pct", "month")
    assert (month.numerator, month.denominator, month.value) == (1.0, 2.0, 50.0)
    assert snap.value("amb_cat2_mean_min", "month") == 30.0
    assert snap.value("amb_cat2_p90_min", "month") == 40.0
    assert snap.value("ed_attendances", "mtd") == 1.0  # February's own rows are untouched: F1

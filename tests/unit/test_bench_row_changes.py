"""bench.row_changes: which snapshot rows, and which families' windows, equal the snapshot before's (hand-worked)."""

from __future__ import annotations

import datetime as dt

from bench import row_changes
from schemas.indicators import SnapshotRow

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _row(hour: int, indicator: str, window: str, scope: str, value: float | None) -> SnapshotRow:
    at = T0 + dt.timedelta(hours=hour)
    return SnapshotRow._make((at, indicator, window, "org", scope, value, value, None, None, "none", T0))


def test_rows_and_groups_equal_to_the_snapshot_before_are_counted_per_family_and_window() -> None:
    snapshots = [
        [  # the first snapshot is only compared with
            _row(0, "ed_4h_pct", "today", "A", 90.0),
            _row(0, "ed_attendances", "today", "A", 10.0),
            _row(0, "amb_cat2_mean_min", "today", "A", 30.0),
            _row(0, "ed_4h_pct", "month", "A", 80.0),
        ],
        [
            _row(1, "ed_4h_pct", "today", "A", 90.0),  # same
            _row(1, "ed_attendances", "today", "A", 11.0),  # changed: the ed/today group changed
            _row(1, "amb_cat2_mean_min", "today", "A", 30.0),  # same: amb/today all the same
            _row(1, "ed_4h_pct", "month", "A", 80.0),  # same
            _row(1, "ed_4h_pct", "month", "B", None),  # new scope: changed, so ed/month changed
        ],
        [
            _row(2, "ed_4h_pct", "today", "A", 90.0),
            _row(2, "ed_attendances", "today", "A", 11.0),  # all ed/today the same now
            _row(2, "amb_cat2_mean_min", "today", "A", 31.0),  # changed
            _row(2, "ed_4h_pct", "month", "A", 80.0),
            _row(2, "ed_4h_pct", "month", "B", None),  # None equals None: the same
        ],
    ]
    found = row_changes.repeats(snapshots)

    assert found.snapshots == 3
    assert found.rows == {("ed", "today"): 4, ("amb", "today"): 2, ("ed", "month"): 4}
    assert found.same_rows == {("ed", "today"): 3, ("amb", "today"): 1, ("ed", "month"): 3}
    assert found.groups == {("ed", "today"): 2, ("amb", "today"): 2, ("ed", "month"): 2}
    assert found.same_groups == {("ed", "today"): 1, ("amb", "today"): 1, ("ed", "month"): 1}

    table = row_changes.table(found).splitlines()
    assert table[2] == "| all | all | 5 | 70.0% | 50.0% |"  # 10 rows over 2 comparisons, 7 the same; 3 of 6 groups
    assert table[3] == "| ed | month | 2 | 75.0% | 50.0% |"  # ties on rows broken by name: month before today
    assert table[4] == "| ed | today | 2 | 75.0% | 50.0% |"
    assert table[5] == "| amb | today | 1 | 50.0% | 50.0% |"


def test_a_family_is_the_indicator_name_up_to_its_first_underscore() -> None:
    assert row_changes.family("amb_cat2_p90_min") == "amb"
    assert row_changes.family("mofd") == "mofd"

"""Durations kept as sorted runs (streams.indicators.durations): the centile across runs and the merge of days."""

from __future__ import annotations

import random

import pytest

from streams.indicators.durations import Durations, as_durations, kth_smallest, merged_durations


def test_kth_smallest_of_two_runs_matches_sorting_their_union() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        a = sorted(rng.randint(0, 30) for _ in range(rng.randint(0, 12)))  # small values: many ties
        b = sorted(rng.randint(0, 30) for _ in range(rng.randint(0 if a else 1, 12)))
        union = sorted(a + b)
        for k in range(len(union)):
            assert kth_smallest((a, b), k) == union[k], (a, b, k)


def test_kth_smallest_hand_worked() -> None:
    # Union sorted: 1 2 3 5 7 8 9; the 0th is 1, the 3rd (0-based) is 5, the last is 9.
    a, b = [2, 5, 8], [1, 3, 7, 9]
    assert [kth_smallest((a, b), k) for k in (0, 3, 6)] == [1, 5, 9]
    assert kth_smallest(([4, 6],), 1) == 6  # one run: its own index


def test_days_merged_into_one_run_then_today_kept_beside_it() -> None:
    days = [as_durations({"g": [30, 10, 20]}), as_durations({"g": [25, 5]}), as_durations({"g": [15, 35]})]
    whole = merged_durations(days)
    # First day (3) is not longer than the others together (4): one run of all seven, total 140.
    assert whole["g"] == Durations(([5, 10, 15, 20, 25, 30, 35],), 140, 7)
    today = as_durations({"g": [12], "h": [40]})
    window = merged_durations([whole, today])
    # The month's run (7) is longer than today's (1): kept as it is, the same list, with today's run beside it.
    assert window["g"].runs[0] is whole["g"].runs[0]
    assert window["g"].runs[1] == [12]
    assert (window["g"].total_us, window["g"].n) == (152, 8)
    assert window["h"] == Durations(([40],), 40, 1)  # a group in one part only is that part's own
    assert whole["g"] == Durations(([5, 10, 15, 20, 25, 30, 35],), 140, 7)  # the inputs are not changed


@pytest.mark.parametrize("seed", range(5))
def test_any_grouping_of_days_gives_the_same_total_count_and_centiles(seed: int) -> None:
    rng = random.Random(seed)
    days = [as_durations({"g": [rng.randint(1, 10**9) for _ in range(rng.randint(1, 9))]}) for _ in range(6)]
    everything = sorted(v for day in days for run in day["g"].runs for v in run)
    cut = rng.randint(1, 5)
    ways = [merged_durations(days), merged_durations([merged_durations(days[:cut]), *days[cut:]])]
    for way in ways:
        durations = way["g"]
        assert len(durations.runs) <= 2
        assert (durations.total_us, durations.n) == (sum(everything), len(everything))
        assert [kth_smallest(durations.runs, k) for k in range(len(everything))] == everything

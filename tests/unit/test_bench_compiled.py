"""The compiled-engine probe's goal: the evaluation speed-up a from-store replay needs for 85,000 events/s
(hand-worked)."""

from __future__ import annotations

from bench.compiled import needed_speedup


def test_needed_speedup_keeps_the_other_stages_and_shrinks_the_evaluation() -> None:
    # 1,700,000 events at 17,000/s took 100 s; at 85,000/s they may take 20 s. Reading back (8 s) and storing (2 s)
    # stay, so the evaluation must go from 80 s to 10 s: 8 times faster.
    cadence = {
        "events_per_s": 17_000,
        "replay_seconds": 100.0,
        "load_seconds": 8.0,
        "store_wait_and_snapshot_insert_seconds": 2.0,
        "evaluate_seconds": 80.0,
    }
    assert needed_speedup(cadence) == 8.0


def test_no_speedup_is_enough_when_the_other_stages_alone_take_longer() -> None:
    # 20 s allowed, 15 s reading back and 6 s storing: the evaluation has -1 s left.
    cadence = {
        "events_per_s": 17_000,
        "replay_seconds": 100.0,
        "load_seconds": 15.0,
        "store_wait_and_snapshot_insert_seconds": 6.0,
        "evaluate_seconds": 79.0,
    }
    assert needed_speedup(cadence) is None

"""The throughput benchmark's arithmetic: its measured stretch, rates, CPU per event and overlap (hand-worked)."""

from __future__ import annotations

import os

from bench.common import cpu_seconds
from bench.throughput import _overlap, _pipeline_cpu, _slope, _window

TOTAL = 1000
# One sample every second; the worker passes 10% at t=2 and 90% at t=6, the sink at t=3 and t=5.
SAMPLES = {
    "worker": [(0.0, 0), (1.0, 50), (2.0, 100), (3.0, 300), (4.0, 500), (5.0, 700), (6.0, 900), (7.0, 1000)],
    "sink": [(0.0, 0), (1.0, 0), (2.0, 0), (3.0, 200), (4.0, 600), (5.0, 1000), (6.0, 1000), (7.0, 1000)],
}
CPU = {
    "worker0": [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.1],
    "sink": [0.0, 0.0, 0.0, 0.1, 0.3, 0.5, 0.5, 0.5],
    "broker": [0.0, 0.0, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05],
}


def test_window_is_from_the_first_sample_at_10_percent_to_the_first_at_90() -> None:
    assert _window(SAMPLES["worker"], TOTAL) == (2, 6)
    assert _window(SAMPLES["sink"], TOTAL) == (3, 5)
    assert _window([(0.0, 0), (1.0, 500)], TOTAL) is None  # never reached 90%


def test_slope_over_the_window() -> None:
    assert _slope(SAMPLES["worker"], TOTAL) == (900 - 100) / (6 - 2)
    assert _slope(SAMPLES["sink"], TOTAL) == (1000 - 200) / (5 - 3)


def test_cpu_per_event_of_each_process_over_its_own_window_and_of_the_broker_over_both() -> None:
    cpu = _pipeline_cpu(SAMPLES, CPU, TOTAL)
    assert cpu["worker"] == round((1.0 - 0.2) / 800 * 1e6, 1)  # 1,000 µs per event
    assert cpu["sink"] == round((0.5 - 0.1) / 800 * 1e6, 1)  # 500 µs
    # Broker: samples 2..6 (0.04 s), over half of the worker's 800 and the sink's 1,000 events there.
    assert cpu["broker"] == round(0.04 / 900 * 1e6, 1)


def test_cpu_per_event_is_unknown_when_a_process_could_not_be_read() -> None:
    cpu = _pipeline_cpu(SAMPLES, {**CPU, "sink": [None] * 8}, TOTAL)
    assert cpu["sink"] is None
    assert cpu["worker"] == 1000.0


def test_overlap_is_the_share_of_the_worker_window_with_the_sink_mid_backlog() -> None:
    # Worker window t=2..6; the sink is between 0 and the total at t=3 and t=4 only: 2 s of 4.
    assert _overlap(SAMPLES, TOTAL) == 0.5


def test_cpu_seconds_of_this_process_agree_with_its_own_clock() -> None:
    for _ in range(2_000_000):  # spend a little CPU so the reading is not all start-up
        pass
    own = os.times()
    measured = cpu_seconds(os.getpid())
    assert measured is not None
    assert abs(measured - (own.user + own.system)) < 0.05
    assert cpu_seconds(2**22 + 1) is None  # no such process: above the largest pid Linux allows (2**22)

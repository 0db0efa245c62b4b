"""The replay benches' repeats: which run a figure reports, and what its note says (hand-worked)."""

from __future__ import annotations

import argparse

import pytest

from bench.replay import (
    GOAL_EVENTS_PER_S,
    add_repeat_argument,
    median_run,
    medians,
    rate_figures,
    repeats_note,
    run_flags,
)


def _run(every_min: float, processes: int, rate: int, load: float = 1.0) -> dict:
    return {
        "every_min": every_min,
        "processes": processes,
        "events_per_s": rate,
        "load_seconds": load,
        "england_year_minutes_extrapolated": round(150_000_000 / rate / 60, 1),
    }


def test_one_run_is_reported_as_it_is() -> None:
    run = _run(60, 3, 50_000)
    assert median_run([run]) is run
    assert repeats_note(run) == ""


def test_the_median_run_is_reported_whole_with_every_rate() -> None:
    runs = [_run(1440, 3, 79_893, load=2.0), _run(1440, 3, 54_777, load=3.0), _run(1440, 3, 64_065, load=2.5)]
    median = median_run(runs)
    assert median["events_per_s"] == 64_065
    assert median["load_seconds"] == 2.5  # that run's own stage times, not a mixture
    assert median["rates"] == [54_777, 64_065, 79_893]
    assert repeats_note(median) == "; median of 3 runs (54,777–79,893 events/s)"


def test_an_even_number_of_runs_reports_the_lower_middle_one() -> None:
    median = median_run([_run(60, 1, 40_000), _run(60, 1, 30_000), _run(60, 1, 35_000), _run(60, 1, 45_000)])
    assert median["events_per_s"] == 35_000  # a run that happened, not the mean of 35,000 and 40,000
    assert median["rates"] == [30_000, 35_000, 40_000, 45_000]


def test_repeats_are_grouped_by_replay_in_the_order_they_first_ran() -> None:
    round_robin = [
        _run(60, 3, 50_000),
        _run(60, 1, 30_000),
        _run(1440, 3, 90_000),
        _run(60, 3, 40_000),
        _run(60, 1, 32_000),
        _run(1440, 3, 99_000),
        _run(60, 3, 45_000),
        _run(60, 1, 31_000),
        _run(1440, 3, 80_000),
    ]
    reported = medians(round_robin, "every_min", "processes")
    assert [(r["every_min"], r["processes"], r["events_per_s"]) for r in reported] == [
        (60, 3, 45_000),
        (60, 1, 31_000),
        (1440, 3, 90_000),
    ]


def test_the_rate_figure_notes_its_repeats_and_the_command_records_them() -> None:
    median = median_run([_run(1440, 1, 86_052), _run(1440, 1, 84_000), _run(1440, 1, 91_752)])
    rate, england = rate_figures("2 ICB-year replays at once", median, "2 samples", ", daily", "150M / rate")
    assert (rate.value, rate.goal, rate.note) == (
        86_052,
        GOAL_EVENTS_PER_S,
        "2 samples; median of 3 runs (84,000–91,752 events/s)",
    )
    assert england.value == 29.1  # 150M / 86,052 / 60
    assert run_flags(2, True, 3, 3) == " --processes 3 --at-once 2 --repeat 3 --profile"
    assert run_flags(1, False, 3) == " --processes 3"


@pytest.mark.parametrize(("value", "message"), [("0", "must be at least 1"), ("two", "not a whole number")])
def test_repeat_below_one_or_not_a_number_is_a_usage_error(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="bench.replay")
    add_repeat_argument(parser)
    assert parser.parse_args([]).repeat == 1
    assert parser.parse_args(["--repeat", "3"]).repeat == 3
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--repeat", value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err

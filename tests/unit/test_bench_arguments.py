"""The benches' counts and spans: a count below 1, a span or rate not above 0, or a word where a number goes is
argparse's usage error naming it (exit 2), before any work, rather than a failure at a bench's end."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from bench import compiled, freshness, memory, queries, replay, replay_store, row_changes, throughput
from bench.common import above_zero, at_least_one, minutes_list


def test_counts_are_whole_numbers_from_one() -> None:
    assert at_least_one("1") == 1
    assert at_least_one("42") == 42
    for text, message in (("0", "0: must be at least 1"), ("-3", "-3: must be at least 1"), ("2.5", "not a whole")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            at_least_one(text)


def test_spans_and_rates_are_numbers_above_zero() -> None:
    assert above_zero("0.5") == 0.5
    assert above_zero("1440") == 1440.0
    for text in ("0", "-1", "nan", "inf"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"{text}: must be above 0 and finite"):
            above_zero(text)
    with pytest.raises(argparse.ArgumentTypeError, match="'hourly' is not a number"):
        above_zero("hourly")


def test_a_list_of_cadences_is_kept_as_given_when_every_one_is_above_zero() -> None:
    assert minutes_list("60,1440") == "60,1440"
    assert minutes_list("15") == "15"
    with pytest.raises(argparse.ArgumentTypeError, match="0: must be above 0"):
        minutes_list("60,0")
    with pytest.raises(argparse.ArgumentTypeError, match="'' is not a number"):
        minutes_list("60,")


@pytest.mark.parametrize(
    ("bench_main", "argv", "named"),
    [
        (queries.main, ["--repeat", "0"], "--repeat"),
        (queries.main, ["--events", "0"], "--events"),
        (compiled.main, ["--repeats", "0"], "--repeats"),
        (compiled.main, ["--every", "60,0"], "--every"),
        (replay.main, ["--repeat", "0"], "--repeat"),
        (replay.main, ["--at-once", "0"], "--at-once"),
        (replay.main, ["--days", "0"], "--days"),
        (replay_store.main, ["--at-once", "-1"], "--at-once"),
        (replay_store.main, ["--every", "0"], "--every"),
        (freshness.main, ["--rate", "0"], "--rate"),
        (throughput.main, ["--partitions", "0"], "--partitions"),
        (memory.main, ["--goal-gib", "0"], "--goal-gib"),
        (row_changes.main, ["--every", "0"], "--every"),
    ],
)
def test_each_bench_refuses_a_count_or_span_that_leaves_nothing_to_measure(
    bench_main: Callable[[list[str]], object], argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench_main(argv)
    assert exit_.value.code == 2
    assert f"argument {named}" in capsys.readouterr().err

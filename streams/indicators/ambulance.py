"""Ambulance response-time and handover indicators (INDICATORS.md, "Ambulance"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from streams.clock import Window, calendar_windows, last_60m
from streams.indicators.rows import Row, count_rows, nearest_rank, tally
from streams.indicators.scopes import Scopes

if TYPE_CHECKING:
    from streams.aggregator import Aggregator

CATEGORIES = (1, 2, 3, 4)
HANDOVER_GUIDANCE_S = 15 * 60
HANDOVER_THRESHOLDS_MIN = (15, 30, 45, 60)


def _windows(at: dt.datetime) -> list[Window]:
    return [*calendar_windows(at), last_60m(at)]


def _mean_row(indicator: str, window: str, key: tuple[str, str], minutes: list[float]) -> Row:
    n, total = len(minutes), sum(minutes)
    return Row(indicator, window, key[0], key[1], total / n if n else None, total, float(n))


def response_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Cat 1–4 mean and nearest-rank 90th centile, by clock-stop time."""
    for window in _windows(at):
        minutes: dict[tuple[int, tuple[str, str]], list[float]] = defaultdict(list)
        for f in agg.amb_stopped.between(window.first, window.last):
            if window.contains(f.stop):  # type: ignore[arg-type]
                response = f.response_seconds / 60.0  # type: ignore[operator]
                for key in scopes.ambulance_keys(f.org_code):
                    minutes[(f.category, key)].append(response)  # type: ignore[index]
        for cat in CATEGORIES:
            for key in scopes.ambulance:
                values = sorted(minutes.get((cat, key), ()))
                yield _mean_row(f"amb_cat{cat}_mean_min", window.name, key, values)
                p90 = nearest_rank(values, 0.9) if values else None
                yield Row(f"amb_cat{cat}_p90_min", window.name, key[0], key[1], p90, None, float(len(values)))


def handover_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Per receiving site (and its organisation, and the system), by handover time."""
    for window in _windows(at):
        minutes: dict[tuple[str, str], list[float]] = defaultdict(list)
        for f in agg.amb_handed_over.between(window.first, window.last):
            if window.contains(f.handover_at):  # type: ignore[arg-type]
                for key in scopes.handover_keys(f.hospital_site):
                    minutes[key].append(f.handover_seconds / 60.0)  # type: ignore[operator]
        for key in scopes.handover:
            values = minutes.get(key, [])
            yield _mean_row("amb_handover_mean_min", window.name, key, values)
            for limit in HANDOVER_THRESHOLDS_MIN:
                n = float(sum(1 for v in values if v > limit))
                yield Row(f"amb_handover_over_{limit}", window.name, key[0], key[1], n, n, float(len(values)))
            lost = sum(max(0.0, v * 60 - HANDOVER_GUIDANCE_S) for v in values) / 3600.0
            yield Row("amb_handover_hours_lost", window.name, key[0], key[1], lost, lost, float(len(values)))
    waiting = [f for f in agg.amb_waiting_handover.values() if f.at_hospital <= at]  # type: ignore[operator]
    yield from count_rows(
        "amb_waiting_handover_now",
        "live",
        scopes.handover,
        tally(scopes.handover_keys(f.hospital_site) for f in waiting),
    )
    longest: dict[tuple[str, str], float] = {}
    for f in waiting:
        wait = (at - f.at_hospital).total_seconds() / 60.0  # type: ignore[operator]
        for key in scopes.handover_keys(f.hospital_site):
            longest[key] = max(longest.get(key, 0.0), wait)
    for key in scopes.handover:
        value = longest.get(key)
        yield Row("amb_waiting_handover_longest_min", "live", key[0], key[1], value, value, None)


def compute(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    yield from response_rows(agg, at, scopes)
    yield from handover_rows(agg, at, scopes)

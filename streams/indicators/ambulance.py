"""Ambulance response-time and handover indicators (INDICATORS.md, "Ambulance"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING

from streams.clock import Window, calendar_windows, last_60m
from streams.date_index import added
from streams.facts import IncidentFact
from streams.indicators.durations import Durations, as_durations, kth_smallest, merged_durations
from streams.indicators.rows import Row, count_rows, nearest_rank, tally
from streams.indicators.scopes import Scopes

if TYPE_CHECKING:
    from streams.aggregator import Aggregator

CATEGORIES = (1, 2, 3, 4)
HANDOVER_GUIDANCE_S = 15 * 60
HANDOVER_THRESHOLDS_MIN = (15, 30, 45, 60)


def _windows(at: dt.datetime) -> list[Window]:
    return [*calendar_windows(at), last_60m(at)]


MICROSECOND = dt.timedelta(microseconds=1)
MICROSECONDS_PER_MINUTE = 60_000_000


def _response_durations(scopes: Scopes, incidents: Iterable[IncidentFact]) -> dict[Hashable, Durations]:
    """Response times in microseconds per (category, scope key)."""
    values: dict[Hashable, list[int]] = defaultdict(list)
    for f in incidents:
        us = (f.stop - f.clock_start) // MICROSECOND  # type: ignore[operator]
        for key in scopes.ambulance_keys(f.org_code):
            values[(f.category, key)].append(us)
    return as_durations(values)


_NONE = Durations(([],), 0, 0)

RESPONSE_READS = attrgetter("category", "org_code", "clock_start", "stop")
"""All that the response times read of an incident (:func:`_response_durations` and the stop time it is bucketed
by): the aggregator's index of stopped incidents ignores changes to the rest (``DateIndex.reads``)."""
HANDOVER_READS = attrgetter("hospital_site", "at_hospital", "handover_at")
"""All that the handover tallies read of an incident (:func:`_handover_tallies` and the handover time)."""


def _handover_tallies(scopes: Scopes, incidents: Iterable[IncidentFact]) -> Counter[tuple]:
    """Per (scope key of the receiving site, measure): ``n`` handovers, ``us`` their total duration, ``over_<limit>``
    per threshold and ``lost_us`` beyond the 15-minute guidance.

    Durations are summed as whole microseconds, so a window's total is exact whatever order its days and facts are
    added in (float minutes summed per day, then across days, would depend on which days were cached). Each
    receiving site's sums are taken first and spread over its scopes once (a snapshot summarises today afresh).
    """
    guidance_us = HANDOVER_GUIDANCE_S * 1_000_000
    limits_us = [limit * MICROSECONDS_PER_MINUTE for limit in HANDOVER_THRESHOLDS_MIN]
    by_site: dict[str | None, list[int]] = {}  # receiving site -> [n, us, lost_us, over each threshold...]
    for f in incidents:
        us = (f.handover_at - f.at_hospital) // MICROSECOND  # type: ignore[operator]
        sums = by_site.get(f.hospital_site)
        if sums is None:
            sums = by_site[f.hospital_site] = [0] * (3 + len(limits_us))
        sums[0] += 1
        sums[1] += us
        sums[2] += max(0, us - guidance_us)
        for i, limit_us in enumerate(limits_us, start=3):
            if us > limit_us:
                sums[i] += 1
    counts: Counter[tuple] = Counter()
    for site, (n, us, lost, *over) in by_site.items():
        for key in scopes.handover_keys(site):
            counts[(key, "n")] += n
            counts[(key, "us")] += us
            counts[(key, "lost_us")] += lost
            for limit, k in zip(HANDOVER_THRESHOLDS_MIN, over, strict=True):
                if k:
                    counts[(key, f"over_{limit}")] += k
    return counts


def response_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Cat 1–4 mean and nearest-rank 90th centile, by clock-stop time."""
    by_response = partial(_response_durations, scopes)
    for window in _windows(at):
        groups = agg.amb_stopped.window_summary(window, "response", by_response, merged_durations, attrgetter("stop"))
        build = partial(_response_window_rows, scopes, window.name, groups)
        yield from agg.row_memo.rows(("response", window.name), (groups,), build)


def _response_window_rows(scopes: Scopes, window: str, groups: dict[Hashable, Durations]) -> Iterator[Row]:
    for cat in CATEGORIES:
        for key in scopes.ambulance:
            runs, total_us, n = groups.get((cat, key), _NONE)
            total = total_us / MICROSECONDS_PER_MINUTE
            mean = total_us / (n * MICROSECONDS_PER_MINUTE) if n else None  # one rounding: exact to the last bit
            yield Row(f"amb_cat{cat}_mean_min", window, key[0], key[1], mean, total, float(n))
            p90 = kth_smallest(runs, nearest_rank(n, 0.9) - 1) / MICROSECONDS_PER_MINUTE if n else None
            yield Row(f"amb_cat{cat}_p90_min", window, key[0], key[1], p90, None, float(n))


def _handover_window_rows(scopes: Scopes, window: str, counts: Counter[tuple]) -> Iterator[Row]:
    for key in scopes.handover:
        n, total = counts[(key, "n")], counts[(key, "us")] / MICROSECONDS_PER_MINUTE
        yield Row("amb_handover_mean_min", window, key[0], key[1], total / n if n else None, total, float(n))
        for limit in HANDOVER_THRESHOLDS_MIN:
            over = float(counts[(key, f"over_{limit}")])
            yield Row(f"amb_handover_over_{limit}", window, key[0], key[1], over, over, float(n))
        lost = counts[(key, "lost_us")] / 3_600_000_000
        yield Row("amb_handover_hours_lost", window, key[0], key[1], lost, lost, float(n))


def handover_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Per receiving site (and its organisation, and the system), by handover time."""
    by_handover = partial(_handover_tallies, scopes)
    for window in _windows(at):
        counts = agg.amb_handed_over.window_summary(window, "handover", by_handover, added, attrgetter("handover_at"))
        build = partial(_handover_window_rows, scopes, window.name, counts)
        yield from agg.row_memo.rows(("handover", window.name), (counts,), build)
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

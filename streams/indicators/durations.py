"""Durations of one group (e.g. Cat 2 response times in one scope) summarised so that a window's mean and nearest-rank
centile come from per-day summaries without re-sorting the window at every snapshot.

Why: the ``mtd`` window is a month's cached merge plus today's part. Merging them into one sorted list, and summing
that list, made each hourly snapshot cost in proportion to the month's durations. A :class:`Durations` keeps the
month's list as one sorted run and today's as a second (:func:`merged_durations`), with an exact integer total, and
:func:`kth_smallest` finds a centile across the two runs by bisection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from itertools import chain
from typing import NamedTuple


class Durations(NamedTuple):
    """Durations in whole microseconds: one or two sorted runs (their union is the group's durations), their total
    and count. Integer microseconds make the total exact whatever order the days are added in, so a mean does not
    depend on which days were cached."""

    runs: tuple[list[int], ...]
    total_us: int
    n: int


def as_durations(values: dict[Hashable, list[int]]) -> dict[Hashable, Durations]:
    """One :class:`Durations` per group from its durations in µs (the lists are sorted in place)."""
    for run in values.values():
        run.sort()
    return {group: Durations((run,), sum(run), len(run)) for group, run in values.items()}


def merged_durations(parts: list[dict[Hashable, Durations]]) -> dict[Hashable, Durations]:
    """Per-group durations of several parts (e.g. days, oldest first) combined; the parts are not changed.

    The runs of a group are merged into one sorted run, except that a first run longer than all the others together
    (a window's cached whole days, then today's part) is kept as it is and the others merged beside it: so a snapshot
    sorts today's durations, not the month's."""
    if len(parts) == 1:
        return parts[0]
    gathered: dict[Hashable, list[Durations]] = defaultdict(list)
    for part in parts:
        for group, durations in part.items():
            gathered[group].append(durations)
    return {group: found[0] if len(found) == 1 else _combined(found) for group, found in gathered.items()}


def _combined(found: list[Durations]) -> Durations:
    runs = [run for durations in found for run in durations.runs]
    total_us = sum(durations.total_us for durations in found)
    n = sum(durations.n for durations in found)
    first, rest = runs[0], runs[1:]
    if 2 * len(first) > n:  # longer than the other runs together
        return Durations((first, rest[0] if len(rest) == 1 else sorted(chain.from_iterable(rest))), total_us, n)
    return Durations((sorted(chain.from_iterable(runs)),), total_us, n)  # sorted merges sorted runs in linear time


def kth_smallest(runs: Sequence[list[int]], k: int) -> int:
    """The ``k``-th smallest (0-based) of the union of one or two sorted runs, without merging them."""
    if len(runs) == 1:
        return runs[0][k]
    a, b = runs
    # The k + 1 smallest are a[:i] and b[:k + 1 - i] for the least i at which b's next-taken value is not above a[i].
    lo, hi = max(0, k + 1 - len(b)), min(k + 1, len(a))
    while lo < hi:
        i = (lo + hi) // 2
        j = k + 1 - i
        if j > 0 and i < len(a) and b[j - 1] > a[i]:
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo
    if lo == 0:
        return b[j - 1]
    if j == 0:
        return a[lo - 1]
    return max(a[lo - 1], b[j - 1])

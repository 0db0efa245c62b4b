"""The row every indicator function yields, and the arithmetic shared by all of them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from operator import is_
from typing import Any, NamedTuple

from streams.indicators.scopes import ScopeKey


class Row(NamedTuple):
    """One indicator value for one window and scope; numerator/denominator published for roll-ups.

    A named tuple: a snapshot makes ~400 of them (a year's hourly replay, millions), and a tuple is built in C where
    a frozen dataclass sets each field through ``object.__setattr__``; a snapshot row is this row's fields plus three
    (:meth:`streams.aggregator.Aggregator.snapshot_rows`)."""

    indicator: str
    window: str
    scope_type: str
    scope_code: str
    value: float | None
    numerator: float | None
    denominator: float | None


def tally(keys_per_item: Iterable[Sequence[ScopeKey]]) -> Counter[ScopeKey]:
    """Count items per scope; each item names the scopes it belongs to.

    Items share a handful of key sequences (:class:`~streams.indicators.scopes.Scopes` memoises them as tuples), so
    the sequences are counted whole first (in C) and spread over their scopes once each.
    """
    counts: Counter[ScopeKey] = Counter()
    for keys, n in Counter(map(tuple, keys_per_item)).items():
        for key in keys:
            counts[key] += n
    return counts


def count_rows(indicator: str, window: str, scopes: Sequence[ScopeKey], counts: Counter[ScopeKey]) -> Iterator[Row]:
    """Counts: value = numerator = the count; no denominator."""
    for scope_type, code in scopes:
        n = counts[(scope_type, code)]
        yield Row(indicator, window, scope_type, code, float(n), float(n), None)


def percent_rows(
    indicator: str, window: str, scopes: Sequence[ScopeKey], num: Counter[ScopeKey], den: Counter[ScopeKey]
) -> Iterator[Row]:
    """Percentages: value = 100 × numerator ÷ denominator, None when the denominator is 0."""
    for key in scopes:
        n, d = num[key], den[key]
        yield Row(indicator, window, key[0], key[1], 100.0 * n / d if d else None, float(n), float(d))


def nearest_rank(n: int, q: float) -> int:
    """The 1-based rank ⌈q·n⌉ of the nearest-rank q-th percentile of n values (INDICATORS.md), at least 1."""
    return max(math.ceil(round(q * n, 9)), 1)


class RowMemo:
    """The rows last built under a key (an indicator family and window) with the summaries they were built from,
    handed out again while the summaries are the same objects.

    Why: a window whose days are all whole (last month, in every hourly snapshot of this month) gets the same merged
    summary object from :class:`~streams.date_index.DateIndex` until one of its days changes, and its rows depend on
    that summary alone; building them again at each snapshot was a quarter of the windowed rows' work. A summary is
    held here, so an identical object is never a new one at a reused address. ``build`` must depend on the
    summaries and the key alone, and the summaries must not change once handed out (a window's partial day gives a
    new object each time).
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[Hashable, tuple[tuple[Any, ...], list[Row]]] = {}

    def rows(self, key: Hashable, summaries: tuple[Any, ...], build: Callable[[], Iterable[Row]]) -> list[Row]:
        held = self._held.get(key)
        if held is not None and all(map(is_, held[0], summaries)):
            return held[1]
        rows = list(build())
        self._held[key] = (summaries, rows)
        return rows

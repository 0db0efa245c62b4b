"""Facts bucketed by local date, with per-day summaries kept until the day changes.

A snapshot's windows (today, month to date, the previous month) span up to ~60 local days, but between two
snapshots only a few days' buckets change (today's, and the days a late correction touches). So each indicator
asks for its window as a list of per-day *summaries* (e.g. a ``Counter`` of scope groups): a day the window covers
whole is summarised once and served from the cache until a fact is put into or taken out of it; only the window's
partial days (today up to T, the last 60 minutes) are summarised afresh from their facts. That makes a snapshot
cost in proportion to the days and scopes it reports, not to the facts in its windows (bench/analysis.md, replay).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from functools import lru_cache
from typing import Any, TypeVar

from streams.clock import Window, local_midnight

Summary = TypeVar("Summary")


@lru_cache(maxsize=4096)
def _next_midnight(day: dt.date) -> dt.datetime:
    """Start (UTC) of the local day after ``day`` (memoised: a snapshot asks for every day of its windows)."""
    return local_midnight(day + dt.timedelta(days=1))


@lru_cache(maxsize=4096)
def _midnight(day: dt.date) -> dt.datetime:
    return local_midnight(day)


def covers_whole(window: Window, day: dt.date) -> bool:
    """Whether every instant of local ``day`` is in ``window`` (so every fact bucketed on that day counts)."""
    if _midnight(day) < window.start:
        return False
    return _next_midnight(day) <= window.end  # the day's instants are before its next midnight


class DateIndex:
    """Items bucketed by one local date each (an item with no date is not in the index)."""

    def __init__(self) -> None:
        self.buckets: dict[dt.date, dict[str, Any]] = defaultdict(dict)
        self._summaries: dict[dt.date, dict[Hashable, Any]] = {}
        """Per day, the cached summaries of its bucket by name, and of its part up to a window's end by (name,
        "until") (all dropped whenever the bucket changes)."""
        self._merged: dict[tuple[str, str], tuple[list[Any], Any]] = {}
        """Per (summary name, window name), the whole days' summaries last merged and their merge."""

    def put(self, entity_id: str, old_day: dt.date | None, new_day: dt.date | None, fact: Any) -> None:
        if old_day is not None:
            bucket = self.buckets.get(old_day)
            if bucket is not None:
                self._summaries.pop(old_day, None)
                bucket.pop(entity_id, None)
                if not bucket:
                    del self.buckets[old_day]
        if new_day is not None and fact is not None:
            self._summaries.pop(new_day, None)
            self.buckets[new_day][entity_id] = fact

    def between(self, first: dt.date, last: dt.date) -> list[Any]:
        return [f for day, bucket in self.buckets.items() if first <= day <= last for f in bucket.values()]

    def drop_before(self, day: dt.date) -> None:
        """Forget every bucket before ``day`` whole (whatever facts it holds: no window reads it any more)."""
        for old in [d for d in self.buckets if d < day]:
            del self.buckets[old]
            self._summaries.pop(old, None)

    def window_summary(
        self,
        window: Window,
        name: str,
        summarise: Callable[[Iterable[Any]], Summary],
        merge: Callable[[list[Summary]], Summary],
        time_of: Callable[[Any], dt.datetime],
        *,
        settled_by: dt.datetime | None = None,
        settle: dt.timedelta = dt.timedelta(0),
    ) -> Summary:
        """``summarise`` of the items in ``window``, built by ``merge`` from per-day summaries (oldest day first).

        A day the window covers whole is summarised from its whole bucket and cached under ``name``, and so is the
        merge of the window's whole days while none of them changes; any other day is summarised from the items
        whose ``time_of`` the window contains, every time, and merged on top. ``summarise`` must depend on the items
        alone, or also on T only until ``settle`` after the day's end: with ``settled_by`` (T), a day is cached only
        once ``settled_by`` is at least ``settle`` past the day's end. ``merge`` must not change its inputs.
        """
        whole: list[Summary] = []
        fresh: list[Summary] = []
        day, last, one_day = window.first, window.last, dt.timedelta(days=1)
        while day <= last:
            bucket = self.buckets.get(day)
            if bucket:
                if not covers_whole(window, day):
                    fresh.append(self._partial(day, bucket, window, name, summarise, time_of, settled_by))
                elif settled_by is not None and _next_midnight(day) + settle > settled_by:
                    fresh.append(summarise(bucket.values()))
                else:
                    cached = self._summaries.setdefault(day, {})
                    part = cached.get(name)
                    if part is None:
                        part = cached[name] = summarise(bucket.values())
                    whole.append(part)
            day += one_day
        key = (name, window.name)
        held = self._merged.get(key)
        if held is not None and len(held[0]) == len(whole) and all(a is b for a, b in zip(held[0], whole, strict=True)):
            merged_whole = held[1]
        else:
            merged_whole = merge(whole)
            self._merged[key] = (whole, merged_whole)
        return merge([merged_whole, *fresh]) if fresh else merged_whole

    def _partial(
        self,
        day: dt.date,
        bucket: dict[str, Any],
        window: Window,
        name: str,
        summarise: Callable[[Iterable[Any]], Summary],
        time_of: Callable[[Any], dt.datetime],
        settled_by: dt.datetime | None,
    ) -> Summary:
        """The summary of a day the window cuts. A day cut only by the window's end (today, in ``today`` and in
        ``mtd``) is kept, as of that end, until the day changes: both windows, and repeated snapshots as of the
        same T, share it."""
        if _midnight(day) < window.start or not window.closed_end:
            return summarise([f for f in bucket.values() if window.contains(time_of(f))])
        cached = self._summaries.setdefault(day, {})
        as_of = (window.end, settled_by)
        held = cached.get((name, "until"))
        if held is not None and held[0] == as_of:
            return held[1]
        part = summarise([f for f in bucket.values() if window.contains(time_of(f))])
        cached[(name, "until")] = (as_of, part)
        return part


def added(parts: list[Counter]) -> Counter:
    """The sum of per-day counters (a new counter: cached parts are never changed)."""
    total: Counter = Counter()
    for part in parts:
        total.update(part)
    return total


def sorted_merge(parts: list[dict[Hashable, list[float]]]) -> dict[Hashable, list[float]]:
    """Per-key sorted lists of values merged into sorted lists (new lists: cached parts are never changed).

    The inputs are sorted runs, which ``sorted`` merges in linear time."""
    merged: dict[Hashable, list[float]] = defaultdict(list)
    for part in parts:
        for key, values in part.items():
            merged[key].extend(values)
    if len(parts) > 1:
        for values in merged.values():
            values.sort()
    return dict(merged)

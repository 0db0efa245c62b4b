"""Facts bucketed by local date and, within it, by UTC hour, with per-hour and per-day summaries kept until they change.

A snapshot's windows (today, month to date, the previous month, the last 60 minutes) span up to ~60 local days, but
between two snapshots only a few hours' buckets change (the latest hour's, and the hours a later event about an
earlier fact touches: an attendance that arrived at 22:00 and leaves at 03:00 changes 22:00's arrival bucket). So
each indicator asks for its window as a list of *summaries* (e.g. a ``Counter`` of scope groups): an hour is
summarised once and served from the cache until a fact is put into or taken out of it; a day the window covers whole
is the merge of its hours, cached too; a day the window cuts (today up to T, the last 60 minutes) is the merge of its
whole hours' summaries and a fresh summary of the facts of the hour the window cuts. That makes a snapshot cost in
proportion to the hours and scopes it reports, not to the facts in its windows (bench/analysis.md, replay).

A local day is a whole number of UTC hours (Europe/London's offsets are whole hours), so every hour bucket belongs
to one local day, on the 23- and 25-hour days too.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from functools import lru_cache
from typing import Any, TypeVar

from streams.clock import Window, local_date, local_midnight

Summary = TypeVar("Summary")
HOUR = dt.timedelta(hours=1)
LAST_INSTANT = dt.timedelta(microseconds=1)
"""The resolution of a timestamp: the last instant of an hour is its end minus this."""


@lru_cache(maxsize=4096)
def _next_midnight(day: dt.date) -> dt.datetime:
    """Start (UTC) of the local day after ``day`` (memoised: a snapshot asks for every day of its windows)."""
    return local_midnight(day + dt.timedelta(days=1))


@lru_cache(maxsize=4096)
def _midnight(day: dt.date) -> dt.datetime:
    return local_midnight(day)


@lru_cache(maxsize=8192)
def _day_of_hour(hour: dt.datetime) -> dt.date:
    """The local date of an hour bucket (memoised: every put asks, and a bucket's hour comes back many times)."""
    return local_date(hour)


def hour_of(ts: dt.datetime) -> dt.datetime:
    """The start of the hour ``ts`` is in (timestamps are UTC: see schemas.events)."""
    return ts.replace(minute=0, second=0, microsecond=0)


def covers_whole(window: Window, day: dt.date) -> bool:
    """Whether every instant of local ``day`` is in ``window`` (so every fact bucketed on that day counts)."""
    if _midnight(day) < window.start:
        return False
    return _next_midnight(day) <= window.end  # the day's instants are before its next midnight


def _covers_hour(window: Window, hour: dt.datetime) -> bool:
    """Whether every instant of the hour starting at ``hour`` is in ``window``."""
    if hour < window.start:
        return False
    end = hour + HOUR
    return end - LAST_INSTANT <= window.end if window.closed_end else end <= window.end


class DateIndex:
    """Items bucketed by the local date and the hour of one instant each (an item with no instant is not in the
    index)."""

    def __init__(self) -> None:
        self.buckets: dict[dt.date, dict[dt.datetime, dict[str, Any]]] = {}
        """Per local date, per hour (UTC start), the items by id."""
        self._day_summaries: dict[dt.date, dict[Hashable, Any]] = {}
        """Per day, the merge of its hours' summaries by name, and its part up to a window's end by (name, "until")
        (all dropped whenever one of its hours changes)."""
        self._hour_summaries: dict[dt.datetime, dict[str, Any]] = {}
        """Per hour, its summaries by name (dropped whenever the hour changes)."""
        self._merged: dict[tuple[str, str], tuple[list[Any], Any]] = {}
        """Per (summary name, window name), the whole days' summaries last merged and their merge."""

    def put(self, entity_id: str, old_at: dt.datetime | None, new_at: dt.datetime | None, fact: Any) -> None:
        """Move an item from the bucket of ``old_at`` (None: it was in none) to that of ``new_at`` (None, or no
        ``fact``: it leaves the index)."""
        if old_at is not None:
            hour = hour_of(old_at)
            day = _day_of_hour(hour)
            hours = self.buckets.get(day)
            bucket = hours.get(hour) if hours is not None else None
            if bucket is not None:
                self._day_summaries.pop(day, None)
                self._hour_summaries.pop(hour, None)
                bucket.pop(entity_id, None)
                if not bucket:
                    del hours[hour]  # type: ignore[union-attr]
                    if not hours:
                        del self.buckets[day]
        if new_at is not None and fact is not None:
            hour = hour_of(new_at)
            day = _day_of_hour(hour)
            self._day_summaries.pop(day, None)
            self._hour_summaries.pop(hour, None)
            hours = self.buckets.get(day)
            if hours is None:
                hours = self.buckets[day] = {}
            bucket = hours.get(hour)
            if bucket is None:
                bucket = hours[hour] = {}
            bucket[entity_id] = fact

    def drop_before(self, day: dt.date) -> None:
        """Forget every bucket before ``day`` whole (whatever facts it holds: no window reads it any more)."""
        for old in [d for d in self.buckets if d < day]:
            for hour in self.buckets.pop(old):
                self._hour_summaries.pop(hour, None)
            self._day_summaries.pop(old, None)

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
        """``summarise`` of the items in ``window``, built by ``merge`` from per-hour and per-day summaries (oldest
        first).

        A day the window covers whole is the merge of its hours' summaries, each cached under ``name``, and so is
        the merge of the window's whole days while none of them changes; a day the window cuts is the merge of the
        summaries of the hours it covers whole and of the items of the other hours whose ``time_of`` (the instant
        they were put with) the window contains. ``summarise`` must depend on the items alone, or also on T only
        until ``settle`` after the day's end: with ``settled_by`` (T), a day is summarised from its items at each T
        until ``settled_by`` is at least ``settle`` past the day's end, and cached from then on. ``merge`` must not
        change its inputs, and must give the same result whichever hours and days its inputs were summarised over.
        """
        whole: list[Summary] = []
        fresh: list[Summary] = []
        day, last, one_day = window.first, window.last, dt.timedelta(days=1)
        while day <= last:
            hours = self.buckets.get(day)
            if hours:
                unsettled = settled_by is not None and _next_midnight(day) + settle > settled_by
                if not covers_whole(window, day):
                    fresh.append(self._partial(day, hours, window, name, summarise, merge, time_of, settled_by))
                elif unsettled:
                    fresh.append(summarise(_items(hours)))
                else:
                    whole.append(self._whole_day(day, hours, name, summarise, merge))
            day += one_day
        key = (name, window.name)
        held = self._merged.get(key)
        if held is not None and len(held[0]) == len(whole) and all(a is b for a, b in zip(held[0], whole, strict=True)):
            merged_whole = held[1]
        else:
            merged_whole = merge(whole)
            self._merged[key] = (whole, merged_whole)
        return merge([merged_whole, *fresh]) if fresh else merged_whole

    def _hour(
        self, hour: dt.datetime, bucket: dict[str, Any], name: str, summarise: Callable[[Iterable[Any]], Any]
    ) -> Any:
        cached = self._hour_summaries.get(hour)
        if cached is None:
            cached = self._hour_summaries[hour] = {}
        part = cached.get(name)
        if part is None:
            part = cached[name] = summarise(bucket.values())
        return part

    def _whole_day(
        self,
        day: dt.date,
        hours: dict[dt.datetime, dict[str, Any]],
        name: str,
        summarise: Callable[[Iterable[Any]], Summary],
        merge: Callable[[list[Summary]], Summary],
    ) -> Summary:
        cached = self._day_summaries.get(day)
        if cached is None:
            cached = self._day_summaries[day] = {}
        part = cached.get(name)
        if part is None:
            part = cached[name] = merge([self._hour(h, hours[h], name, summarise) for h in sorted(hours)])
        return part

    def _partial(
        self,
        day: dt.date,
        hours: dict[dt.datetime, dict[str, Any]],
        window: Window,
        name: str,
        summarise: Callable[[Iterable[Any]], Summary],
        merge: Callable[[list[Summary]], Summary],
        time_of: Callable[[Any], dt.datetime],
        settled_by: dt.datetime | None,
    ) -> Summary:
        """The summary of a day the window cuts. A day cut only by the window's end (today, in ``today`` and in
        ``mtd``) is kept, as of that end, until the day changes: both windows, and repeated snapshots as of the
        same T, share it. A T-dependent summary (``settled_by``) of a day the window cuts is not settled: it is
        taken from the day's items afresh."""
        end_cut_only = _midnight(day) >= window.start and window.closed_end
        if end_cut_only:
            cached = self._day_summaries.get(day)
            if cached is None:
                cached = self._day_summaries[day] = {}
            as_of = (window.end, settled_by)
            held = cached.get((name, "until"))
            if held is not None and held[0] == as_of:
                return held[1]
        if settled_by is not None:
            part = summarise([f for f in _items(hours) if window.contains(time_of(f))])
        else:
            parts = []
            for hour in sorted(hours):
                bucket = hours[hour]
                if _covers_hour(window, hour):
                    parts.append(self._hour(hour, bucket, name, summarise))
                elif hour <= window.end and hour + HOUR > window.start:  # the window cuts this hour
                    parts.append(summarise([f for f in bucket.values() if window.contains(time_of(f))]))
            part = merge(parts) if parts else summarise(())
        if end_cut_only:
            cached[(name, "until")] = (as_of, part)
        return part


def _items(hours: dict[dt.datetime, dict[str, Any]]) -> list[Any]:
    """Every item of a day, oldest hour first."""
    return [f for hour in sorted(hours) for f in hours[hour].values()]


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

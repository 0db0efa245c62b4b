"""Facts bucketed by local date, with per-day summaries kept until the day changes.

A snapshot's windows (today, month to date, the previous month) span up to ~60 local days, but between two
snapshots only a few days' buckets change (today's, and the days a late correction touches). So each indicator
asks for its window as a list of per-day *summaries* (e.g. a ``Counter`` of scope groups): a day the window covers
whole is summarised once and served from the cache until a fact is put into or taken out of it; only the window's
partial days (today up to T, the last 60 minutes) are summarised afresh from their facts. That makes a snapshot
cost in proportion to the days and scopes it reports, not to the facts in its windows (bench/journal.md, "3. Replay").
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
from functools import lru_cache
from operator import is_
from typing import Any, NamedTuple, TypeVar

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


def whole_days(window: Window) -> tuple[dt.date, dt.date]:
    """The first and last of the window's dates it :func:`covers_whole` (first > last: none). Midnights increase
    with the date, so those dates run unbroken: a snapshot finds them with a few comparisons, not two per date."""
    one_day = dt.timedelta(days=1)
    first, last = window.first, window.last
    while first <= last and _midnight(first) < window.start:
        first += one_day
    while last >= first and _next_midnight(last) > window.end:
        last -= one_day
    return first, last


class DateIndex:
    """Items bucketed by one local date each (an item with no date is not in the index)."""

    def __init__(self, reads: Callable[[Any], Hashable] | None = None) -> None:
        self.reads = reads
        """What of an item the index's summaries read (e.g. an ``attrgetter`` of the fields); a put that changes
        none of it on the same day leaves the index as it is, holding the item it has. None: every put counts."""
        self.buckets: dict[dt.date, dict[str, Any]] = defaultdict(dict)
        self._summaries: dict[dt.date, dict[Hashable, Any]] = {}
        """Per day, the cached summaries of its bucket by name (dropped whenever the bucket changes)."""
        self._partials: dict[dt.date, _DayPartials] = {}
        """Per recent day cut by a window's end (today), its summaries up to that end and the items added since
        (:meth:`_partial`; dropped when an item of the day changes or leaves it)."""
        self._merged: dict[tuple[str, str], _HeldMerge] = {}
        """Per (summary name, window name), the whole days' summaries last merged and their merge."""
        self._held_last = dt.date.min
        """No held merge covers a day after this one (a put to a later day, today's, leaves them all valid)."""
        self._tallies: dict[dt.date, dict[str, DayTally]] = {}
        """Per recent day, its :class:`DayTally` by name (:meth:`window_tally`: two days at most)."""

    def put(self, entity_id: str, old_day: dt.date | None, new_day: dt.date | None, fact: Any) -> None:
        """Move an item from ``old_day``'s bucket to ``new_day``'s (None: not in the index before / after).

        Why ``reads``: a fact changes at each of its entity's events, but an index's summaries read a few of its
        fields (an attendance's arrival count reads none of what its triage or departure changes). Putting it again
        would drop the day's cached summaries, the window merges over that day and, for today, re-group it."""
        if old_day == new_day and old_day is not None and fact is not None and self.reads is not None:
            held = self.buckets.get(old_day, {}).get(entity_id)
            if held is not None and self.reads(held) == self.reads(fact):
                return
        held_last = self._held_last
        if old_day is not None and old_day <= held_last:
            self._day_changed(old_day)
        if new_day is not None and new_day <= held_last and new_day != old_day:
            self._day_changed(new_day)
        if old_day is not None:
            bucket = self.buckets.get(old_day)
            if bucket is not None:
                self._summaries.pop(old_day, None)
                self._partials.pop(old_day, None)
                bucket.pop(entity_id, None)
                if not bucket:
                    del self.buckets[old_day]
                if old_day in self._tallies:
                    self._mark(old_day, entity_id)
        if new_day is not None and fact is not None:
            self._summaries.pop(new_day, None)
            bucket = self.buckets[new_day]
            partials = self._partials.get(new_day)
            if partials is not None:
                if entity_id in bucket:  # not moved out of it first: a change
                    del self._partials[new_day]
                else:
                    partials.added.append(entity_id)
            bucket[entity_id] = fact
            if new_day in self._tallies:
                self._mark(new_day, entity_id)

    def _day_changed(self, day: dt.date) -> None:
        """A put into or out of ``day``: the held merges covering it must look at their days again."""
        for held in self._merged.values():
            if held.first <= day <= held.last:
                held.current = False

    def _mark(self, day: dt.date, entity_id: str) -> None:
        """Tell the day's tallies that an item was put into or out of it (re-grouped when next read)."""
        for tally in self._tallies[day].values():
            tally.stale.add(entity_id)

    def between(self, first: dt.date, last: dt.date) -> list[Any]:
        return [f for day, bucket in self.buckets.items() if first <= day <= last for f in bucket.values()]

    def drop_before(self, day: dt.date) -> None:
        """Forget every bucket before ``day`` whole (whatever facts it holds: no window reads it any more)."""
        for old in [d for d in self.buckets if d < day]:
            del self.buckets[old]
            self._summaries.pop(old, None)
            self._partials.pop(old, None)
            self._day_changed(old)
        for old in [d for d in self._tallies if d < day]:
            del self._tallies[old]

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
        first_whole, last_whole = whole_days(window)
        last_cached = last_whole
        if settled_by is not None:  # the latest whole days may not be settled yet: summarised afresh
            while last_cached >= first_whole and _next_midnight(last_cached) + settle > settled_by:
                last_cached -= dt.timedelta(days=1)
        held = self._held(name, window, first_whole, last_cached)
        for day, bucket in self._buckets_in(window, first_whole, last_cached, skip_cached=held is not None):
            if not first_whole <= day <= last_whole:
                fresh.append(self._partial(day, bucket, window, name, summarise, merge, time_of, settled_by))
            elif day > last_cached:
                fresh.append(summarise(bucket.values()))
            else:
                whole.append(self._whole_day(day, bucket, name, summarise))
        return self._merge(name, window, (first_whole, last_cached), held, whole, fresh, merge)

    def _held(self, name: str, window: Window, first: dt.date, last: dt.date) -> _HeldMerge | None:
        """The merge of the window's cached days ``first``..``last`` when it is held and none of them has changed
        since (then the snapshot walks only the window's other days: today, or none for last month)."""
        held = self._merged.get((name, window.name))
        if held is not None and held.current and held.first == first and held.last == last:
            return held
        return None

    def _buckets_in(
        self, window: Window, first_cached: dt.date, last_cached: dt.date, *, skip_cached: bool
    ) -> Iterator[tuple[dt.date, dict[str, Any]]]:
        """The window's days with items, oldest first, without ``first_cached``..``last_cached`` if ``skip_cached``."""
        one_day = dt.timedelta(days=1)
        day, last = window.first, window.last
        while day <= last:
            if skip_cached and day == first_cached and first_cached <= last_cached:
                day = last_cached + one_day
                continue
            bucket = self.buckets.get(day)
            if bucket:
                yield day, bucket
            day += one_day

    def _whole_day(
        self, day: dt.date, bucket: dict[str, Any], name: str, summarise: Callable[[Iterable[Any]], Summary]
    ) -> Summary:
        """A whole day's summary under ``name``, cached until the day's bucket changes."""
        cached = self._summaries.setdefault(day, {})
        part = cached.get(name)
        if part is None:
            part = cached[name] = summarise(bucket.values())
        return part

    def _merge(
        self,
        name: str,
        window: Window,
        cached_days: tuple[dt.date, dt.date],
        held: _HeldMerge | None,
        whole: list[Summary],
        fresh: list[Summary],
        merge: Callable[[list[Summary]], Summary],
    ) -> Summary:
        """The merge of a window's whole days' summaries (kept while none of them changes), then its other days'
        on top (always a new object when there are any: a partial day's summary may be a live one). ``held``: the
        whole days' merge, known unchanged (:meth:`_held`; ``whole`` is then empty)."""
        if held is None:
            key = (name, window.name)
            held = self._merged.get(key)
            if held is None or len(held.whole) != len(whole) or not all(map(is_, held.whole, whole)):
                held = self._merged[key] = _HeldMerge(whole, merge(whole))
            held.first, held.last = cached_days
            held.current = True
            self._held_last = max(self._held_last, held.last)
        return merge([held.merged, *fresh]) if fresh else held.merged

    def window_tally(
        self,
        window: Window,
        name: str,
        group: Callable[[Any], Hashable | None],
        time_of: Callable[[Any], dt.datetime],
        spread: Callable[[Counter], Counter] = Counter,
    ) -> Counter:
        """How many of the items in ``window`` fall in each ``group`` (an item whose group is None is not counted),
        each day's counts turned into the day's summary by ``spread`` (e.g. a group's count added to each of its
        scopes; by default a copy) and the days' summaries added up: :meth:`window_summary` of
        ``spread(Counter(map(group, items)))``, with the latest days' counts kept up to date.

        Why: today's bucket changes between any two snapshots (an attendance's fact changes at each of its events),
        so its summary up to T was made afresh from all its items at every snapshot, and yesterday's whole summary
        again whenever one of its items changed (a departure after midnight). A :class:`DayTally` of each of the two
        latest days (the first day a window cuts at its end makes one) re-groups only the items put since it was
        last read. Each item must be bucketed on the local date of its ``time_of``, and ``group`` must depend on the
        item alone.
        """
        whole: list[Counter] = []
        fresh: list[Counter] = []
        first_whole, last_whole = whole_days(window)

        def counted(items: Iterable[Any]) -> Counter:
            return spread(_grouped(items, group))

        held = self._held(name, window, first_whole, last_whole)
        for day, bucket in self._buckets_in(window, first_whole, last_whole, skip_cached=held is not None):
            tally = self._tallies.get(day, {}).get(name)
            if first_whole <= day <= last_whole:
                if tally is not None and 2 * len(tally.stale) > len(bucket):
                    # Mostly changed since it was read (daily snapshots: a day read at its start, then whole):
                    # counting it afresh, as any whole day, is cheaper than re-grouping each changed fact.
                    del self._tallies[day][name]
                    tally = None
                if tally is not None:
                    whole.append(tally.whole(bucket, group, time_of, spread))
                else:
                    whole.append(self._whole_day(day, bucket, name, counted))
            elif _midnight(day) >= window.start and window.closed_end:  # cut by the window's end alone
                if tally is None or tally.later_than(window.end):
                    tally = self._new_tally(day, name, bucket, group, time_of, window.end)
                fresh.append(spread(tally.up_to(window.end, bucket, group, time_of)))
            else:
                fresh.append(counted(f for f in bucket.values() if window.contains(time_of(f))))
        return self._merge(name, window, (first_whole, last_whole), held, whole, fresh, added)

    def _new_tally(
        self,
        day: dt.date,
        name: str,
        bucket: dict[str, Any],
        group: Callable[[Any], Hashable | None],
        time_of: Callable[[Any], dt.datetime],
        as_of: dt.datetime,
    ) -> DayTally:
        """A tally of ``day`` up to ``as_of``; only this day's and the day before's are kept (the other days' whole
        summaries are cached as any day's: a tally holds a group per item)."""
        for old in [d for d in self._tallies if d != day and d != day - dt.timedelta(days=1)]:
            del self._tallies[old]
        tally = self._tallies.setdefault(day, {})[name] = DayTally(as_of)
        for entity_id, fact in bucket.items():
            tally.add(entity_id, fact, group, time_of)
        return tally

    def _partial(
        self,
        day: dt.date,
        bucket: dict[str, Any],
        window: Window,
        name: str,
        summarise: Callable[[Iterable[Any]], Summary],
        merge: Callable[[list[Summary]], Summary],
        time_of: Callable[[Any], dt.datetime],
        settled_by: dt.datetime | None,
    ) -> Summary:
        """The summary of a day the window cuts. A day cut only by the window's end (today, in ``today`` and in
        ``mtd``) is kept as of that end: both windows, and repeated snapshots as of the same T, share it.

        At a later T, when the day has only gained items since and every item was in the summary kept, that summary
        merged with the new items' is the day's (``summarise`` must not depend on T: ``settled_by`` None). Why: a
        snapshot summarised all of today's stopped incidents and handovers again every hour; now only the hour's."""
        if _midnight(day) < window.start or not window.closed_end:
            return summarise([f for f in bucket.values() if window.contains(time_of(f))])
        partials = self._partials.get(day)
        if partials is None:
            for old in [d for d in self._partials if d < day - dt.timedelta(days=1)]:
                del self._partials[old]  # only today's and yesterday's are still cut by a window's end
            partials = self._partials[day] = _DayPartials()
        as_of, seen = (window.end, settled_by), len(partials.added)
        held = partials.by_name.get(name)
        if held is not None:
            if held.as_of == as_of and held.seen == seen:
                return held.part
            if settled_by is None and held.complete and held.as_of[0] <= window.end:
                added = [bucket[entity_id] for entity_id in partials.added[held.seen :]]
                within = [f for f in added if time_of(f) <= window.end]  # the day starts inside the window
                part = merge([held.part, summarise(within)]) if within else held.part
                partials.by_name[name] = _Partial(as_of, part, len(within) == len(added), seen)
                return part
        items = [f for f in bucket.values() if window.contains(time_of(f))]
        part = summarise(items)
        partials.by_name[name] = _Partial(as_of, part, len(items) == len(bucket), seen)
        return part


class _Partial(NamedTuple):
    """A day's summary up to a window's end: as of (end, settled_by), whether every item of the day was in it, and
    how many of the day's added items it had seen."""

    as_of: tuple[dt.datetime, dt.datetime | None]
    part: Any
    complete: bool
    seen: int


class _DayPartials:
    """A day's :class:`_Partial` summaries by name and the items added to the day, in order, since they were kept."""

    __slots__ = ("added", "by_name")

    def __init__(self) -> None:
        self.added: list[str] = []
        self.by_name: dict[str, _Partial] = {}


class _HeldMerge:
    """A window's merge of its whole days: the summaries merged, the merge, the days it covers and whether none of
    them has changed since it was made (cleared by a put into one of them)."""

    __slots__ = ("current", "first", "last", "merged", "whole")

    def __init__(self, whole: list[Any], merged: Any) -> None:
        self.whole = whole
        self.merged = merged
        self.first = self.last = dt.date.min
        self.current = False


_NOT_COUNTED = object()


class DayTally:
    """One day's items counted by group up to a time (None: the whole day), brought up to date when read.

    A put into or out of the day only marks its item stale; reading re-groups the stale items alone, and an item
    later than the time is held aside until a later read reaches it. Reading as of an earlier time than the last
    read starts a new tally (:meth:`DateIndex.window_tally`)."""

    __slots__ = ("ahead", "as_of", "counts", "groups", "stale", "view")

    def __init__(self, as_of: dt.datetime | None) -> None:
        self.as_of = as_of
        self.counts: Counter = Counter()
        self.groups: dict[str, Hashable] = {}
        """The group of each counted item."""
        self.ahead: dict[str, Any] = {}
        """Items later than :attr:`as_of`, not counted yet."""
        self.stale: set[str] = set()
        """Items put into or out of the day since the last read."""
        self.view: Counter | None = None
        """The whole day's summary (its counts spread) handed out: kept, and so the same object, until the counts
        change (the window's merge of its whole days is reused while they are the same objects)."""

    def later_than(self, as_of: dt.datetime) -> bool:
        return self.as_of is None or self.as_of > as_of

    def _reaches(self, fact: Any, time_of: Callable[[Any], dt.datetime]) -> bool:
        return self.as_of is None or time_of(fact) <= self.as_of

    def add(
        self, entity_id: str, fact: Any, group: Callable[[Any], Hashable | None], time_of: Callable[[Any], dt.datetime]
    ) -> None:
        if not self._reaches(fact, time_of):
            self.ahead[entity_id] = fact
            return
        key = group(fact)
        if key is not None:
            self.groups[entity_id] = key
            self.counts[key] += 1
            self.view = None

    def _take_out(self, entity_id: str) -> None:
        key = self.groups.pop(entity_id, _NOT_COUNTED)
        if key is _NOT_COUNTED:
            self.ahead.pop(entity_id, None)
            return
        left = self.counts[key] - 1
        if left:
            self.counts[key] = left
        else:
            del self.counts[key]
        self.view = None

    def up_to(
        self,
        as_of: dt.datetime | None,
        bucket: dict[str, Any],
        group: Callable[[Any], Hashable | None],
        time_of: Callable[[Any], dt.datetime],
    ) -> Counter:
        """The counts as of ``as_of`` (not earlier than the last read's), after re-grouping the stale items. The
        counter is the tally's own: merge it, never hand it on."""
        for entity_id in self.stale:
            fact = bucket.get(entity_id)
            held = self.groups.get(entity_id, _NOT_COUNTED)
            if held is not _NOT_COUNTED and fact is not None and self._reaches(fact, time_of) and group(fact) == held:
                continue  # a change that leaves the item in its group (most of them)
            self._take_out(entity_id)
            if fact is not None:
                self.add(entity_id, fact, group, time_of)
        self.stale.clear()
        if as_of != self.as_of:
            self.as_of = as_of
            if self.ahead:
                reached = [e for e, f in self.ahead.items() if as_of is None or time_of(f) <= as_of]
                for entity_id in reached:
                    self.add(entity_id, self.ahead.pop(entity_id), group, time_of)
        return self.counts

    def whole(
        self,
        bucket: dict[str, Any],
        group: Callable[[Any], Hashable | None],
        time_of: Callable[[Any], dt.datetime],
        spread: Callable[[Counter], Counter],
    ) -> Counter:
        """The whole day's counts, spread, as an object that stays the same until they change."""
        counts = self.up_to(None, bucket, group, time_of)
        if self.view is None:
            self.view = spread(counts)
        return self.view


def _grouped(items: Iterable[Any], group: Callable[[Any], Hashable | None]) -> Counter:
    counts = Counter(map(group, items))
    counts.pop(None, None)
    return counts


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

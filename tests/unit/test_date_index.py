"""Per-day summaries of the aggregator's date buckets (streams/date_index.py).

A snapshot reuses the summary of every day its window covers whole until a fact of that day changes. Pinned here:
which days count as whole (23- and 25-hour days, each window's ends), that a cached day is summarised again after
a put into it or out of it, that a T-dependent summary is cached only once settled, and — the point of it all —
that an aggregator which has taken snapshots all along (warm caches, late corrections, cancellations, a clock
change, a month end) reports exactly what a fresh engine built from the same events reports.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Iterable

import pytest
from events_factory import admitted, config, ed_arrived, ed_cancelled, ed_departed

from connectors.simulator import simulate
from schemas.events import Envelope
from streams.clock import LONDON, Window, calendar_windows, last_60m, local_midnight
from streams.date_index import DateIndex, added, covers_whole, whole_days
from streams.engine import Engine
from streams.indicators.durations import as_durations, merged_durations

CONFIG = config()
COMPUTED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _day(name: str, first: dt.date, last: dt.date, end: dt.datetime) -> Window:
    return Window(name, first, last, local_midnight(first), end)


def _counting(calls: list[int]) -> Callable[[Iterable[str]], Counter]:
    """A summary (a Counter of the items) that records how many items it was given each time it ran."""

    def summarise(items: Iterable[str]) -> Counter:
        items = list(items)
        calls.append(len(items))
        return Counter(items)

    return summarise


def test_a_day_is_whole_when_all_its_hours_are_in_the_window_on_both_clock_change_days() -> None:
    spring, autumn = dt.date(2026, 3, 29), dt.date(2026, 10, 25)  # 23 and 25 local hours
    for day in (spring, autumn):
        next_midnight = local_midnight(day + dt.timedelta(days=1))
        assert covers_whole(_day("mtd", day, day + dt.timedelta(days=1), next_midnight), day)
        assert not covers_whole(_day("mtd", day, day, next_midnight - dt.timedelta(microseconds=1)), day)
    # the 25-hour day runs 24 Oct 23:00 to 26 Oct 00:00 UTC: a window ending at 23:30 UTC on the 25th is partial
    assert local_midnight(autumn) == dt.datetime(2026, 10, 24, 23, 0, tzinfo=dt.UTC)
    assert not covers_whole(_day("today", autumn, autumn, dt.datetime(2026, 10, 25, 23, 30, tzinfo=dt.UTC)), autumn)
    assert covers_whole(_day("today", autumn, autumn, dt.datetime(2026, 10, 26, 0, 0, tzinfo=dt.UTC)), autumn)


def test_windows_as_of_t_cover_their_past_days_whole_and_today_in_part() -> None:
    at = dt.datetime(2026, 3, 29, 15, 0, tzinfo=dt.UTC)
    today, mtd, month = calendar_windows(at)
    assert not covers_whole(today, dt.date(2026, 3, 29))
    assert all(covers_whole(mtd, dt.date(2026, 3, d)) for d in range(1, 29))
    assert not covers_whole(mtd, dt.date(2026, 3, 29))
    assert all(covers_whole(month, dt.date(2026, 2, d)) for d in range(1, 29))  # open end: 1 March 00:00 excluded
    recent = last_60m(dt.datetime(2026, 3, 30, 0, 30, tzinfo=LONDON))  # spans two local days, neither whole
    assert not covers_whole(recent, dt.date(2026, 3, 29)) and not covers_whole(recent, dt.date(2026, 3, 30))


def test_the_whole_days_found_at_the_ends_are_those_covered_whole() -> None:
    """whole_days finds the dates covers_whole accepts from the window's ends alone: every 20 minutes over both
    clock changes and two month ends, in each calendar window and the last 60 minutes, and in windows that end at,
    just after or just before a midnight."""
    checked = 0
    for start in (dt.datetime(2026, 3, 27, tzinfo=dt.UTC), dt.datetime(2026, 10, 23, tzinfo=dt.UTC)):
        for step in range(6 * 72):
            at = start + dt.timedelta(minutes=20 * step)
            midnight = local_midnight(at.astimezone(LONDON).date())
            odd = [
                Window("open", midnight.astimezone(LONDON).date() - dt.timedelta(days=2), midnight.astimezone(LONDON).date(),
                       midnight - dt.timedelta(days=2), midnight + offset, closed)
                for offset in (dt.timedelta(0), dt.timedelta(microseconds=1), -dt.timedelta(microseconds=1))
                for closed in (True, False)
            ]  # fmt: skip
            for window in [*calendar_windows(at), last_60m(at), *odd]:
                first, last = whole_days(window)
                day = window.first
                while day <= window.last:
                    assert covers_whole(window, day) == (first <= day <= last), (window, day)
                    day += dt.timedelta(days=1)
                    checked += 1
    assert checked > 40_000


def test_a_whole_day_is_summarised_once_until_a_fact_moves_in_or_out() -> None:
    index = DateIndex()
    calls: list[int] = []
    summarise = _counting(calls)

    day = dt.date(2026, 3, 2)
    times = {"x": local_midnight(day) + dt.timedelta(hours=9), "y": local_midnight(day) + dt.timedelta(hours=10)}
    index.put("a", None, day, "x")
    index.put("b", None, day, "y")
    window = _day("mtd", dt.date(2026, 3, 1), dt.date(2026, 3, 3), local_midnight(dt.date(2026, 3, 3)) + HOUR)
    assert index.window_summary(window, "n", summarise, added, times.get) == Counter({"x": 1, "y": 1})
    assert index.window_summary(window, "n", summarise, added, times.get) == Counter({"x": 1, "y": 1})
    assert calls == [2]  # the second snapshot read the cache
    times["y"] = local_midnight(dt.date(2026, 3, 3)) + 2 * HOUR  # a correction moves y to the next day, after T
    index.put("b", day, dt.date(2026, 3, 3), "y")
    assert index.window_summary(window, "n", summarise, added, times.get) == Counter({"x": 1})
    assert calls == [2, 1, 0]  # day 2 again (x), and day 3, partial: y filtered out as after the window's end
    index.put("a", day, None, None)  # a cancellation takes x out
    assert index.window_summary(window, "n", summarise, added, times.get) == Counter()
    assert index.buckets.get(day) is None and calls == [2, 1, 0]  # day 3, cut at T, is kept as of T


def test_a_windows_merge_of_its_whole_days_is_held_until_a_put_touches_one_of_them() -> None:
    index = DateIndex()
    merges: list[int] = []

    def merge(parts: list[Counter]) -> Counter:
        merges.append(len(parts))
        return added(parts)

    first, second, today = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    times = {}
    for n, day in enumerate((first, second, today)):
        index.put(f"e{n}", None, day, f"x{n}")
        times[f"x{n}"] = local_midnight(day) + 9 * HOUR

    def mtd(hours: float) -> Counter:
        window = _day("mtd", first, today, local_midnight(today) + hours * HOUR)
        return index.window_summary(window, "n", Counter, merge, times.get)

    assert mtd(10) == Counter(["x0", "x1", "x2"])
    assert merges == [2, 2]  # the whole days 1 and 2, then that merge with today's part
    index.put("e3", None, today, "x3")  # today changes: the whole days are not walked or merged again
    times["x3"] = local_midnight(today) + 10 * HOUR
    index.put("e4", None, dt.date(2026, 2, 27), "x4")  # nor when a day before the window changes
    times["x4"] = local_midnight(dt.date(2026, 2, 27)) + 9 * HOUR
    assert mtd(11) == Counter(["x0", "x1", "x2", "x3"])
    assert merges == [2, 2, 2, 2]  # today's part extended with x3 (a merge), then laid on the held merge only
    index.put("e1", second, None, None)  # a cancellation on a whole day: its days are merged again
    assert mtd(12) == Counter(["x0", "x2", "x3"])
    assert merges == [2, 2, 2, 2, 1, 2]  # day 2 is empty now: day 1 alone, then today's part (unchanged)
    assert mtd(13) == Counter(["x0", "x2", "x3"])
    assert merges == [2, 2, 2, 2, 1, 2, 2]  # held again
    index.drop_before(second)  # forgetting old days lets go of the merges that covered them
    assert mtd(14) == Counter(["x2", "x3"])
    assert merges[-2:] == [0, 2]


def test_a_put_that_changes_nothing_the_summaries_read_leaves_the_index_as_it_is() -> None:
    index = DateIndex(reads=lambda fact: fact["site"])  # the summaries read a fact's site alone
    calls: list[int] = []

    def by_site(facts: Iterable[dict]) -> Counter:
        facts = list(facts)
        calls.append(len(facts))
        return Counter(f["site"] for f in facts)

    day, other = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    window = _day("mtd", dt.date(2026, 3, 1), other, local_midnight(other) + HOUR)
    first = {"site": "A", "triage": None}
    index.put("a", None, day, first)
    assert index.window_summary(window, "n", by_site, added, lambda f: window.start) == Counter({"A": 1})
    index.put("a", day, day, {"site": "A", "triage": "10:05"})  # a change the summaries do not read
    assert index.buckets[day]["a"] is first  # the fact it holds is the first, equal in what is read
    assert index.window_summary(window, "n", by_site, added, lambda f: window.start) == Counter({"A": 1})
    assert calls == [1]  # the day's summary kept
    index.put("a", day, day, {"site": "B", "triage": "10:05"})  # a change it reads: put as any other
    assert index.window_summary(window, "n", by_site, added, lambda f: window.start) == Counter({"B": 1})
    index.put("a", day, other, {"site": "B", "triage": "10:05"})  # a move to another day, whatever it reads
    assert day not in index.buckets and index.buckets[other]["a"]["site"] == "B"
    assert calls == [1, 1]


def test_a_summary_that_depends_on_t_is_cached_only_once_settled() -> None:
    index = DateIndex()
    calls: list[dt.datetime] = []
    day = dt.date(2026, 3, 2)
    index.put("a", None, day, "x")
    window = _day("mtd", dt.date(2026, 3, 1), dt.date(2026, 3, 10), local_midnight(dt.date(2026, 3, 10)))
    settle = dt.timedelta(hours=48)
    end_of_day = local_midnight(day + dt.timedelta(days=1))
    for at in (end_of_day + dt.timedelta(hours=47), end_of_day + settle, end_of_day + dt.timedelta(hours=72)):
        index.window_summary(window, "p", lambda items, at=at: calls.append(at) or Counter(items), added, str,
                             settled_by=at, settle=settle)  # fmt: skip
    assert calls == [end_of_day + dt.timedelta(hours=47), end_of_day + settle]  # settled at 48 h: cached then


def _deliveries(events: list[Envelope], seed: int) -> list[tuple[dt.datetime, Envelope]]:
    """(delivered at, event) as a worker might see them: 3% held back 1-72 hours, 1% delivered twice."""
    rnd = random.Random(seed)
    keyed = []
    for n, e in enumerate(events):
        delay = dt.timedelta(hours=rnd.randint(1, 72)) if rnd.random() < 0.03 else dt.timedelta(0)
        keyed.append((e.occurred_at + delay, n, e))
        if rnd.random() < 0.01:
            keyed.append((e.occurred_at + delay + dt.timedelta(minutes=5), n, e))
    return [(at, e) for at, _, e in sorted(keyed, key=lambda k: k[:2])]


def _rows(engine: Engine, at: dt.datetime) -> list[tuple]:
    return sorted(
        (s.indicator, s.window, s.scope_type, s.scope_code, s.value, s.numerator, s.denominator, s.status)
        for s in engine.aggregator.snapshot(at, COMPUTED_AT)
    )


SPRING_CHANGE = (
    dt.datetime(2026, 3, 27, 6, tzinfo=dt.UTC),
    [
        ed_arrived("late-1", "2026-03-30T09:00"),  # a whole day, cached, then corrected by a late cancellation
        ed_departed("late-1", "2026-03-30T11:00"),
        ed_cancelled("late-1", "2026-04-01T10:00"),
        admitted("late-2", "2026-03-31T22:30"),  # an admission on the last evening of March
    ],
)
AUTUMN_CHANGE = (
    dt.datetime(2026, 10, 23, 6, tzinfo=dt.UTC),
    [
        ed_arrived("late-1", "2026-10-25T00:40Z"),  # 01:40 BST, in the hour the clocks repeat
        ed_departed("late-1", "2026-10-25T01:20Z"),  # 01:20 GMT: 40 minutes later, on the same 25-hour day
        ed_cancelled("late-1", "2026-10-27T10:00Z"),  # a late cancellation of a day already cached
        admitted("late-2", "2026-10-25T23:30Z"),  # the 25th hour of 25 October
    ],
)


@pytest.mark.parametrize(("start", "extra"), [SPRING_CHANGE, AUTUMN_CHANGE], ids=["spring", "autumn"])
def test_an_aggregator_with_warm_caches_reports_what_a_fresh_one_does(start: dt.datetime, extra: list) -> None:
    """Snapshots every 3 hours over a clock change (and, in spring, the end of March), late and duplicate events, ED
    cancellations: at 9 of those times the warm engine's rows equal a fresh engine's from the same events."""
    simulated = list(simulate(CONFIG.icb, start=start, duration=dt.timedelta(days=6), seed=11,
                              warmup=dt.timedelta(days=35)))  # fmt: skip
    deliveries = _deliveries(sorted(simulated + extra, key=lambda e: e.occurred_at), seed=3)
    warm = Engine(CONFIG)
    seen: list[Envelope] = []
    times = [start + dt.timedelta(hours=3 * k) for k in range(1, 6 * 8 + 1)]
    checked = 0
    i = 0
    for k, t in enumerate(times):
        batch = []
        while i < len(deliveries) and deliveries[i][0] <= t:
            batch.append(deliveries[i][1])
            i += 1
        warm.ingest(batch)
        seen.extend(batch)
        warm_rows = _rows(warm, t)
        if k % 5 == 4:
            fresh = Engine(CONFIG)
            fresh.ingest(seen)
            assert warm_rows == _rows(fresh, t), t
            checked += 1
    assert checked == 9 and extra[2].occurred_at <= times[-1]  # the cancellation came before the last check


def test_a_day_cut_at_t_is_shared_by_the_windows_as_of_t_until_it_changes() -> None:
    index = DateIndex()
    calls: list[int] = []
    summarise = _counting(calls)

    at = dt.datetime(2026, 3, 29, 15, tzinfo=dt.UTC)
    today, mtd, _ = calendar_windows(at)
    times = {"x": at - HOUR, "y": at + HOUR}  # y is later than T: not in either window
    index.put("a", None, dt.date(2026, 3, 29), "x")
    index.put("b", None, dt.date(2026, 3, 29), "y")
    for window in (today, mtd, today):
        assert index.window_summary(window, "n", summarise, added, times.get) == Counter({"x": 1})
    assert calls == [1]  # one summary of the day's part up to T (x) for both windows and the repeat
    times["z"] = at - 2 * HOUR
    index.put("c", None, dt.date(2026, 3, 29), "z")  # the day changed: summarised again
    assert index.window_summary(mtd, "n", summarise, added, times.get) == Counter({"x": 1, "z": 1})
    later = calendar_windows(at + HOUR)[0]  # as of a later T: summarised again, now with y
    assert index.window_summary(later, "n", summarise, added, times.get) == Counter({"x": 1, "y": 1, "z": 1})
    assert calls == [1, 2, 3]


def _brute_tally(
    index: DateIndex, window: Window, times: dict[str, dt.datetime], groups: dict[str, str | None]
) -> Counter:
    """What window_tally must give: every item of the window's days that it contains, counted by group afresh."""
    counts = Counter(
        groups[fact]
        for day, bucket in index.buckets.items()
        if window.first <= day <= window.last
        for fact in bucket.values()
        if window.contains(times[fact]) and groups[fact] is not None
    )
    return counts


def test_a_tally_kept_up_to_date_counts_what_a_fresh_count_does() -> None:
    """Items put into, moved between and taken out of three days around the spring clock change, some later than T,
    some changing group, some in no group; read as of a T that mostly moves forward (and sometimes back), in the
    day's windows, the last 60 minutes and a window over all three days: every read equals a count made afresh."""
    rnd = random.Random(7)
    days = [dt.date(2026, 3, 28) + dt.timedelta(days=k) for k in range(3)]  # the 29th has 23 hours
    index = DateIndex()
    times: dict[str, dt.datetime] = {}
    groups: dict[str, str | None] = {}
    held: dict[str, dt.date] = {}  # entity -> the day its current fact is bucketed on
    at = local_midnight(days[0]) + dt.timedelta(hours=6)
    reads = tallied = 0
    for step in range(3000):
        entity = f"e{rnd.randrange(40)}"
        if rnd.random() < 0.15 and entity in held:
            index.put(entity, held.pop(entity), None, None)  # a cancellation
        elif rnd.random() < 0.7:
            day = rnd.choice(days) if rnd.random() < 0.3 or entity not in held else held[entity]
            span = (local_midnight(day + dt.timedelta(days=1)) - local_midnight(day)).total_seconds()
            fact = f"f{step}"
            times[fact] = local_midnight(day) + dt.timedelta(seconds=rnd.randrange(int(span)))
            groups[fact] = rnd.choice(["a", "b", "c", None]) if rnd.random() < 0.5 else "a"
            index.put(entity, held.get(entity), day, fact)
            held[entity] = day
        else:
            at += dt.timedelta(minutes=rnd.randrange(-90, 240) if rnd.random() < 0.1 else rnd.randrange(0, 120))
            at = max(min(at, local_midnight(days[-1]) + dt.timedelta(hours=23)), local_midnight(days[0]))
            everything = Window("all", days[0], days[-1], local_midnight(days[0]), local_midnight(days[-1]), False)
            for window in [*calendar_windows(at), last_60m(at), everything]:
                expected = _brute_tally(index, window, times, groups)
                assert index.window_tally(window, "g", groups.get, times.get) == expected, (step, window)
                reads += 1
            tallied += bool(index._tallies)
            assert len(index._tallies) <= 2
    assert reads > 2000 and tallied > 300


def test_a_days_part_extended_with_its_new_items_summarises_what_a_fresh_one_does() -> None:
    """Today's part up to T, kept and extended with the items added since at a later T: items mostly added, some
    changed or cancelled, some later than T, T mostly moving forward (sometimes back), summarised as counts and as
    sorted durations; every read equals a summary made afresh, and most reads only summarised the new items."""
    rnd = random.Random(11)
    day = dt.date(2026, 3, 29)  # 23 hours
    index = DateIndex()
    times: dict[str, dt.datetime] = {}
    values: dict[str, int] = {}
    held: set[str] = set()
    sizes: list[int] = []

    def counted(facts: Iterable[str]) -> Counter:
        facts = list(facts)
        sizes.append(len(facts))
        return Counter(values[f] % 3 for f in facts)

    def durations(facts: Iterable[str]) -> dict:
        grouped: dict = {}
        for f in facts:
            grouped.setdefault(values[f] % 2, []).append(values[f])
        return as_durations(grouped)

    at = local_midnight(day) + HOUR
    reads = 0
    for step in range(2500):
        roll = rnd.random()
        if roll < 0.03 and held:
            entity = rnd.choice(sorted(held))
            index.put(entity, day, None, None)  # a cancellation
            held.discard(entity)
        elif roll < 0.75:
            entity = rnd.choice(sorted(held)) if roll < 0.06 and held else f"e{step}"  # a change, or a new item
            fact = f"f{step}"
            late = rnd.random() < 0.03  # later than T: not in the part yet
            offset = dt.timedelta(minutes=rnd.randrange(1, 180)) if late else -dt.timedelta(minutes=rnd.randrange(60))
            end_of_day = local_midnight(day + dt.timedelta(days=1)) - dt.timedelta(seconds=1)
            times[fact] = max(min(at + offset, end_of_day), local_midnight(day))
            values[fact] = rnd.randrange(1, 10**6)
            index.put(entity, day if entity in held else None, day, fact)
            held.add(entity)
        else:
            at += dt.timedelta(minutes=rnd.randrange(-60, 0) if rnd.random() < 0.05 else rnd.randrange(0, 40))
            at = max(min(at, local_midnight(day + dt.timedelta(days=1)) - dt.timedelta(seconds=1)), local_midnight(day))
            today = calendar_windows(at)[0]
            inside = [f for f in index.buckets.get(day, {}).values() if today.contains(times[f])]
            assert index.window_summary(today, "n", counted, added, times.get) == Counter(values[f] % 3 for f in inside)
            got = index.window_summary(today, "d", durations, merged_durations, times.get)
            want = durations(inside)
            assert {g: (sorted(v for run in d.runs for v in run), d.total_us, d.n) for g, d in got.items()} == {
                g: (d.runs[0], d.total_us, d.n) for g, d in want.items()
            }, step
            assert all(len(d.runs) <= 2 for d in got.values())
            reads += 1
    assert reads > 500
    assert sum(1 for n in sizes if n < 20) > len(sizes) / 3  # often the new items alone


def test_a_tallied_whole_day_is_the_same_object_until_it_changes() -> None:
    """A window's merge of its whole days is reused while they are the same objects: a tallied day's whole count
    stays one object through changes that leave every item in its group, and is a new one after a real change."""
    index = DateIndex()
    day = dt.date(2026, 3, 2)
    times = {f: local_midnight(day) + n * HOUR for n, f in enumerate(("x", "x2", "y", "z1", "z2", "z3"), start=8)}
    groups = {"x": "a", "x2": "a", "y": "b", "z1": "c", "z2": "c", "z3": "c"}
    for entity, fact in (("1", "x"), ("2", "y"), ("3", "z1"), ("4", "z2"), ("5", "z3")):
        index.put(entity, None, day, fact)
    index.window_tally(calendar_windows(local_midnight(day) + 22 * HOUR)[0], "g", groups.get, times.get)  # cut
    mtd_next_day = calendar_windows(local_midnight(day + dt.timedelta(days=1)) + HOUR)[1]
    first = index.window_tally(mtd_next_day, "g", groups.get, times.get)
    whole = index._tallies[day]["g"].view
    index.put("1", day, day, "x2")  # the same group: the day's count is unchanged
    assert index.window_tally(mtd_next_day, "g", groups.get, times.get) == first == Counter({"a": 1, "b": 1, "c": 3})
    assert index._tallies[day]["g"].view is whole
    index.put("2", day, None, None)
    assert index.window_tally(mtd_next_day, "g", groups.get, times.get) == Counter({"a": 1, "c": 3})
    assert index._tallies[day]["g"].view is not whole


def test_a_day_mostly_changed_since_its_tally_was_read_is_counted_afresh() -> None:
    """Daily snapshots read today's tally at the day's start, and the whole day after it has filled: re-grouping
    each changed item would cost more than counting the day afresh, so the tally is dropped for the day's cached
    count."""
    index = DateIndex()
    day = dt.date(2026, 3, 2)
    times = {f"f{n}": local_midnight(day) + dt.timedelta(minutes=10 * n) for n in range(12)}
    index.put("0", None, day, "f0")
    index.window_tally(calendar_windows(local_midnight(day) + HOUR)[0], "g", lambda f: f[-1], times.get)
    assert index._tallies[day]["g"].counts == Counter({"0": 1})
    for n in range(1, 12):
        index.put(str(n), None, day, f"f{n}")
    mtd_next_day = calendar_windows(local_midnight(day + dt.timedelta(days=1)))[1]
    counted = index.window_tally(mtd_next_day, "g", lambda f: f[-1], times.get)
    assert counted == Counter(f"f{n}"[-1] for n in range(12)) and "g" not in index._tallies[day]

"""Emergency department indicators (INDICATORS.md, "Emergency department"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING

from streams.clock import calendar_windows
from streams.facts import AttendanceFact
from streams.indicators.rows import Row, count_rows, percent_rows, tally
from streams.indicators.scopes import Scopes

if TYPE_CHECKING:
    from streams.aggregator import Aggregator

FOUR_HOURS = dt.timedelta(hours=4)
TWELVE_HOURS = dt.timedelta(hours=12)
DEPARTMENT_TYPES = ("1", "2", "3")


def within_4h(fact: AttendanceFact) -> bool:
    """Departure − clock start of at most exactly 4:00:00."""
    assert fact.departure is not None
    return fact.departure - fact.clock_start <= FOUR_HOURS


def over_12h_from_arrival(fact: AttendanceFact) -> bool:
    assert fact.departure is not None
    return fact.departure - fact.arrival > TWELVE_HOURS


def _spread(groups: Counter[tuple], dtype: str | None, flag: int | None = None) -> Counter:
    """Per-scope counts from ``(scope keys, department type, flags...) -> n`` groups of one department type (None:
    all types), counting only groups whose ``flag``-th field is true when ``flag`` is given."""
    counts: Counter = Counter()
    for group, n in groups.items():
        if (dtype is None or group[1] == dtype) and (flag is None or group[flag]):
            for key in group[0]:
                counts[key] += n
    return counts


def _departure_group(scopes: Scopes, f: AttendanceFact) -> tuple:
    """A departure's group: (scope keys, department type, within 4 h, over 12 h from arrival)."""
    return (
        scopes.ed_keys(f.org_code, f.site_code),
        f.department_type,
        f.departure - f.clock_start <= FOUR_HOURS,  # type: ignore[operator]
        f.departure - f.arrival > TWELVE_HOURS,  # type: ignore[operator]
    )


def _arrival_group(scopes: Scopes, f: AttendanceFact) -> tuple:
    """An arrival's group: (scope keys, department type)."""
    return (scopes.ed_keys(f.org_code, f.site_code), f.department_type)


ARRIVAL_READS = attrgetter("org_code", "site_code", "department_type", "arrival")
"""All that the arrivals' counts read of an attendance (:func:`_arrival_group` and its time): the aggregator's
arrivals index ignores changes to the rest (``DateIndex.reads``)."""


def _window_rows(scopes: Scopes, window: str, departed: Counter, arrived: Counter) -> Iterator[Row]:
    """A window's rows for all types and each department type, from its departures' and arrivals' groups."""
    for suffix, dtype in (("", None), *((f"_type{t}", t) for t in DEPARTMENT_TYPES)):
        den = _spread(departed, dtype)
        yield from percent_rows(f"ed_4h_pct{suffix}", window, scopes.ed, _spread(departed, dtype, 2), den)
        yield from percent_rows(f"ed_12h_pct{suffix}", window, scopes.ed, _spread(departed, dtype, 3), den)
        yield from count_rows(f"ed_attendances{suffix}", window, scopes.ed, _spread(arrived, dtype))


def compute(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Windowed indicators for all types and by department type (suffix ``_type1`` …), then the live ones.

    Each window's departures and arrivals are counted by group (scope keys, department type, within 4 h, over 12 h)
    per local day (:meth:`~streams.date_index.DateIndex.window_tally`: cached per whole day, today's kept up to
    date as attendances change); every type's rows then come from those few groups rather than from another pass
    over the facts.
    """
    by_departure = partial(_departure_group, scopes)
    by_arrival = partial(_arrival_group, scopes)
    for window in calendar_windows(at):
        departed = agg.ed_departed.window_tally(window, "ed", by_departure, attrgetter("departure"))
        arrived = agg.ed_arrived.window_tally(window, "ed", by_arrival, attrgetter("arrival"))
        build = partial(_window_rows, scopes, window.name, departed, arrived)
        yield from agg.row_memo.rows(("ed", window.name), (departed, arrived), build)

    present = [f for f in agg.ed_in_department.values() if f.arrival <= at]
    keys = {f.attendance_id: scopes.ed_keys(f.org_code, f.site_code) for f in present}
    yield from count_rows("ed_in_department", "live", scopes.ed, tally(keys.values()))
    over_4h = tally(keys[f.attendance_id] for f in present if at - f.clock_start > FOUR_HOURS)
    yield from count_rows("ed_over_4h_now", "live", scopes.ed, over_4h)
    over_12h = tally(keys[f.attendance_id] for f in present if at - f.arrival > TWELVE_HOURS)
    yield from count_rows("ed_over_12h_now", "live", scopes.ed, over_12h)
    yield from percent_rows("ed_over_12h_now_pct", "live", scopes.ed, over_12h, tally(keys.values()))

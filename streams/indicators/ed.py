"""Emergency department indicators (INDICATORS.md, "Emergency department"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
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


def _departure_rows(suffix: str, window: str, scopes: Scopes, departed: list[AttendanceFact]) -> Iterator[Row]:
    den: Counter = Counter()
    num_4h: Counter = Counter()
    num_12h: Counter = Counter()
    for f in departed:
        keys = scopes.ed_keys(f.org_code, f.site_code)
        den.update(keys)
        if within_4h(f):
            num_4h.update(keys)
        if over_12h_from_arrival(f):
            num_12h.update(keys)
    yield from percent_rows(f"ed_4h_pct{suffix}", window, scopes.ed, num_4h, den)
    yield from percent_rows(f"ed_12h_pct{suffix}", window, scopes.ed, num_12h, den)


def compute(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Windowed indicators for all types and by department type (suffix ``_type1`` …), then the live ones."""
    for window in calendar_windows(at):
        departed = [f for f in agg.ed_departed.between(window.first, window.last) if window.contains(f.departure)]
        arrived = [f for f in agg.ed_arrived.between(window.first, window.last) if window.contains(f.arrival)]
        for suffix, dtype in (("", None), *((f"_type{t}", t) for t in DEPARTMENT_TYPES)):
            mine = departed if dtype is None else [f for f in departed if f.department_type == dtype]
            yield from _departure_rows(suffix, window.name, scopes, mine)
            arrivals = tally(
                scopes.ed_keys(f.org_code, f.site_code) for f in arrived if dtype is None or f.department_type == dtype
            )
            yield from count_rows(f"ed_attendances{suffix}", window.name, scopes.ed, arrivals)

    present = [f for f in agg.ed_in_department.values() if f.arrival <= at]
    keys = {f.attendance_id: scopes.ed_keys(f.org_code, f.site_code) for f in present}
    yield from count_rows("ed_in_department", "live", scopes.ed, tally(keys.values()))
    over_4h = tally(keys[f.attendance_id] for f in present if at - f.clock_start > FOUR_HOURS)
    yield from count_rows("ed_over_4h_now", "live", scopes.ed, over_4h)
    over_12h = tally(keys[f.attendance_id] for f in present if at - f.arrival > TWELVE_HOURS)
    yield from count_rows("ed_over_12h_now", "live", scopes.ed, over_12h)
    yield from percent_rows("ed_over_12h_now_pct", "live", scopes.ed, over_12h, tally(keys.values()))

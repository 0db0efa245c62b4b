"""``local_date`` answers UTC timestamps from a cached instant per UTC date: it must agree with the time zone
conversion at every instant, the clock changes and the last microsecond before each local midnight included."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.clock import LONDON, local_date

UTC = dt.UTC


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        # Winter (UTC+0): the local day starts at 00:00 UTC.
        (dt.datetime(2025, 1, 15, 23, 59, 59, 999999, tzinfo=UTC), dt.date(2025, 1, 15)),
        (dt.datetime(2025, 1, 16, 0, 0, tzinfo=UTC), dt.date(2025, 1, 16)),
        # Summer (UTC+1): the local day starts at 23:00 UTC the day before.
        (dt.datetime(2025, 6, 1, 22, 59, 59, 999999, tzinfo=UTC), dt.date(2025, 6, 1)),
        (dt.datetime(2025, 6, 1, 23, 0, tzinfo=UTC), dt.date(2025, 6, 2)),
        # Spring forward, Sunday 30 March 2025 (23 hours): the next day starts at 23:00 UTC.
        (dt.datetime(2025, 3, 30, 0, 30, tzinfo=UTC), dt.date(2025, 3, 30)),
        (dt.datetime(2025, 3, 30, 22, 59, tzinfo=UTC), dt.date(2025, 3, 30)),
        (dt.datetime(2025, 3, 30, 23, 0, tzinfo=UTC), dt.date(2025, 3, 31)),
        # Fall back, Sunday 26 October 2025 (25 hours): it started at 23:00 UTC the day before, ends at 00:00 UTC.
        (dt.datetime(2025, 10, 25, 23, 0, tzinfo=UTC), dt.date(2025, 10, 26)),
        (dt.datetime(2025, 10, 26, 23, 59, tzinfo=UTC), dt.date(2025, 10, 26)),
        (dt.datetime(2025, 10, 27, 0, 0, tzinfo=UTC), dt.date(2025, 10, 27)),
        # Another zone's offset takes the conversion path: 00:30+01:00 on 2 June is 23:30 UTC on 1 June.
        (dt.datetime(2025, 6, 2, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), dt.date(2025, 6, 2)),
        (dt.datetime(2025, 1, 16, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), dt.date(2025, 1, 15)),
    ],
)
def test_local_date_at_day_edges_and_clock_changes(ts: dt.datetime, expected: dt.date) -> None:
    assert local_date(ts) == expected


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_local_date_agrees_with_the_time_zone_conversion(ts: dt.datetime) -> None:
    assert local_date(ts) == ts.astimezone(LONDON).date()


def test_local_date_agrees_every_half_hour_over_two_years() -> None:
    """Every half hour and the microsecond before it, 2025-2026 (four clock changes)."""
    t = dt.datetime(2025, 1, 1, tzinfo=UTC)
    mismatches = []
    while t < dt.datetime(2027, 1, 1, tzinfo=UTC):
        for u in (t, t - dt.timedelta(microseconds=1)):
            if local_date(u) != u.astimezone(LONDON).date():
                mismatches.append(u)
        t += dt.timedelta(minutes=30)
    assert mismatches == []

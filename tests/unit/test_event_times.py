"""An event's ``occurred_at`` is normalised to ``datetime.UTC`` on validation. Timestamps with a zero offset take a
shortcut (the same fields with UTC, built from the datetime's pickled state rather than by ``astimezone``): it must
give exactly what the conversion gives, and it must be the path ``Z`` timestamps take."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from events_factory import ed_arrived
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from schemas.events import _CORE_UTC, EventRejected, UtcDatetime, dump_event, parse_event

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OCCURRED_AT: TypeAdapter[dt.datetime] = TypeAdapter(UtcDatetime)
OFFSETS = ["Z", "+00:00", "-00:00", "+01:00", "-05:30", "+14:00", "-12:00"]


def _text(wall: dt.datetime, offset: str) -> str:
    return wall.isoformat() + offset


def _expected(text: str) -> dt.datetime:
    """The reference: the standard library's reading of the timestamp, converted to UTC."""
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def test_zero_offsets_share_pydantic_cores_utc_so_they_take_the_shortcut() -> None:
    parse = TypeAdapter(AwareDatetime).validate_json
    assert parse(b'"2026-03-10T09:00:00Z"').tzinfo is _CORE_UTC
    assert parse(b'"2026-03-10T09:00:00+00:00"').tzinfo is _CORE_UTC
    assert parse(b'"2026-03-10T09:00:00+01:00"').tzinfo is not _CORE_UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-10T09:00:00Z", dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)),
        ("2026-03-10T09:00:00.000001Z", dt.datetime(2026, 3, 10, 9, 0, 0, 1, tzinfo=UTC)),
        ("2026-03-29T00:59:59.999999+00:00", dt.datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC)),
        (
            "2026-10-25T01:30:00+01:00",
            dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),  # BST, the night the clocks go back
        ("2026-10-25T01:30:00Z", dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),  # GMT, the same wall time an hour on
        ("2000-01-01T00:00:00Z", dt.datetime(2000, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_occurred_at_is_the_same_instant_in_datetime_utc(text: str, expected: dt.datetime) -> None:
    value = OCCURRED_AT.validate_json(orjson.dumps(text))
    assert value == expected
    assert value.tzinfo is UTC
    assert (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.fold,
    ) == (
        expected.year,
        expected.month,
        expected.day,
        expected.hour,
        expected.minute,
        expected.second,
        expected.microsecond,
        0,
    )


@settings(max_examples=500, deadline=None)
@given(
    wall=st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    offset=st.sampled_from(OFFSETS),
)
def test_every_offset_agrees_with_the_standard_conversion(wall: dt.datetime, offset: str) -> None:
    text = _text(wall, offset)
    value = OCCURRED_AT.validate_json(orjson.dumps(text))
    assert value == _expected(text)
    assert value.tzinfo is UTC
    assert value.isoformat() == _expected(text).isoformat()


def test_events_parsed_from_json_hold_datetime_utc() -> None:
    raw = orjson.loads(dump_event(ed_arrived("A1", "2026-03-10T09:00")))  # the factory's arrival, as JSON
    for text in ("2026-03-10T09:00:00Z", "2026-03-10T09:00:00+00:00", "2026-03-10T10:00:00+01:00"):
        event = parse_event({**raw, "occurred_at": text}, now=NOW)
        assert event.occurred_at == dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
        assert event.occurred_at.tzinfo is UTC
    with pytest.raises(EventRejected, match=r"^occurred_at: Value error, 1999-12-31T23:59:59\+00:00 is before 2000"):
        parse_event({**raw, "occurred_at": "1999-12-31T23:59:59Z"}, now=NOW)


def test_a_datetime_subclass_with_cores_utc_converts_the_ordinary_way() -> None:
    class Stamp(dt.datetime):
        """A datetime subclass (as a caller's library might pass in Python mode), pickled like its own class."""

        def __reduce__(self) -> tuple:  # type: ignore[override]
            return (Stamp, ("not a datetime state",))

    value = Stamp(2026, 3, 10, 9, 0, tzinfo=_CORE_UTC)
    assert OCCURRED_AT.validate_python(value) == dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

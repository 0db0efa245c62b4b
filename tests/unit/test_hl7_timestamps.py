"""HL7 timestamps: offsets honoured, local times read as Europe/London, clock-change days decided explicitly."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.hl7.timestamps import LocalTimeError, LocalTimePolicy, parse_hl7_date, parse_hl7_ts

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("202601121000", utc(2026, 1, 12, 10, 0)),  # winter: GMT
        ("20260712100052", utc(2026, 7, 12, 9, 0, 52)),  # summer: BST
        ("20140529080238.241+0100", utc(2014, 5, 29, 7, 2, 38, 241000)),  # ITK example shape, with offset
        ("20260712100052-0500", utc(2026, 7, 12, 15, 0, 52)),
        ("20260712100052+0000", utc(2026, 7, 12, 10, 0, 52)),
        ("20260329005959", utc(2026, 3, 29, 0, 59, 59)),  # last GMT second before the spring change
        ("20260329020000", utc(2026, 3, 29, 1, 0)),  # first BST wall-clock time after it
    ],
)
def test_instants(text: str, expected: dt.datetime) -> None:
    assert parse_hl7_ts(text) == expected


def test_spring_gap_is_read_with_the_offset_before_the_change() -> None:
    # 01:30 on 29 March 2026 never happened in London; read as a clock not yet put forward: 01:30 GMT.
    assert parse_hl7_ts("20260329013000") == utc(2026, 3, 29, 1, 30)
    with pytest.raises(LocalTimeError, match="does not exist"):
        parse_hl7_ts("20260329013000", LocalTimePolicy(nonexistent="reject"))


def test_autumn_repeated_hour_is_read_as_its_first_occurrence_by_default() -> None:
    # 01:30 on 25 October 2026 happens twice: 00:30 UTC (BST) then 01:30 UTC (GMT).
    assert parse_hl7_ts("20261025013000") == utc(2026, 10, 25, 0, 30)
    assert parse_hl7_ts("20261025013000", LocalTimePolicy(ambiguous="later")) == utc(2026, 10, 25, 1, 30)
    with pytest.raises(LocalTimeError, match="ambiguous"):
        parse_hl7_ts("20261025013000", LocalTimePolicy(ambiguous="reject"))
    assert parse_hl7_ts("20261025013000+0000") == utc(2026, 10, 25, 1, 30)  # an offset removes the doubt


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026",
        "20260329",
        "2026032910",
        "20261340101500",
        "20260230101500",
        "2026-03-29T10:00",
        "20260329101500+2500",
        "20260329101500Z",
        "2026032910150",
        "abc",
        "20260329101500.12345",
    ],
)
def test_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hl7_ts(text)


def test_dates() -> None:
    assert parse_hl7_date("19450612") == dt.date(1945, 6, 12)
    assert parse_hl7_date("194506121230") == dt.date(1945, 6, 12)
    for bad in ("1945", "194513", "19450231", "12/06/1945"):
        with pytest.raises(ValueError):
            parse_hl7_date(bad)


def test_unknown_zone_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        LocalTimePolicy(zone="Europe/Leicester")

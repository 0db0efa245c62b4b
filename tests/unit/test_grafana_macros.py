"""The plugin's macros and Grafana's variable interpolation, as grafana/clickhouse-datasource documents them."""

from __future__ import annotations

import datetime as dt

import pytest

from grafana.macros import (
    ALL,
    MacroError,
    TimeRange,
    Variable,
    apply_conditional_all,
    expand_macros,
    interpolate_variables,
    render,
)

# The plugin's documentation example: time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)
RANGE = TimeRange(
    dt.datetime.fromtimestamp(1415792726.123, dt.UTC),
    dt.datetime.fromtimestamp(1447328726.456, dt.UTC),
    dt.timedelta(seconds=30),
)
VARS = {
    "site": Variable("site", ["RWEAA", "RWEAE"]),
    "org": Variable("org", ["RWE", "RX9"], ["RWE"]),
}


def test_time_filter_as_documented() -> None:
    assert expand_macros("WHERE $__timeFilter(time)", RANGE) == (
        "WHERE time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"
    )


def test_millisecond_macros_are_not_read_as_second_macros() -> None:
    sql = expand_macros("$__timeFilter_ms(ts) AND $__fromTime_ms < $__toTime_ms", RANGE)
    assert sql == (
        "ts >= fromUnixTimestamp64Milli(1415792726123) AND ts <= fromUnixTimestamp64Milli(1447328726456)"
        " AND fromUnixTimestamp64Milli(1415792726123) < fromUnixTimestamp64Milli(1447328726456)"
    )


def test_from_to_date_and_interval_macros() -> None:
    assert expand_macros("$__fromTime, $__toTime", RANGE) == "toDateTime(1415792726), toDateTime(1447328726)"
    assert expand_macros("$__dateFilter(d)", RANGE) == "d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')"
    assert expand_macros("$__timeInterval(ts)", RANGE) == "toStartOfInterval(toDateTime(ts), INTERVAL 30 second)"
    assert expand_macros("$__interval_s", RANGE) == "30"
    tiny = TimeRange(RANGE.start, RANGE.end, dt.timedelta(milliseconds=10))
    assert expand_macros("$__interval_s", tiny) == "1", "the plugin never uses an interval under a second"
    assert expand_macros("$__dateTimeFilter(d, t)", RANGE) == (
        "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12'))"
        " AND (t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))"
    )


def test_macro_arguments_with_nested_brackets() -> None:
    assert expand_macros("$__timeFilter(toDateTime(ts, 'UTC'))", RANGE).startswith("toDateTime(ts, 'UTC') >= ")
    with pytest.raises(MacroError):
        expand_macros("$__timeFilter(ts", RANGE)
    with pytest.raises(MacroError):
        expand_macros("$__timeFilter(a, b)", RANGE)


def test_conditional_all() -> None:
    sql = "WHERE $__conditionalAll(site IN (${site:singlequote}), $site) AND $__conditionalAll(org IN ($org), $org)"
    assert apply_conditional_all(sql, VARS) == "WHERE 1=1 AND org IN ($org)"
    assert apply_conditional_all("$__conditionalAll(x IN (${org}), ${org})", VARS) == "x IN (${org})"
    empty = {"site": Variable("site", ["A"], [])}
    assert apply_conditional_all("$__conditionalAll(a = 1, $site)", empty) == "1=1", "empty counts as All"


def test_variable_formats() -> None:
    assert interpolate_variables("IN (${site:singlequote})", VARS) == "IN ('RWEAA','RWEAE')", "All is every option"
    assert interpolate_variables("IN ($org)", VARS) == "IN ('RWE')", "the plugin quotes multi-value variables"
    assert interpolate_variables("[[org]] ${org:csv}", VARS) == "'RWE' RWE"
    quoted = {"x": Variable("x", ["King's Mill"], ["King's Mill"])}
    assert interpolate_variables("${x:singlequote}", quoted) == "'King\\'s Mill'"
    assert interpolate_variables("${x:sqlstring}", quoted) == "'King''s Mill'"
    assert interpolate_variables("$__timeFilter(ts) $unknown", VARS) == "$__timeFilter(ts) $unknown"


def test_render_applies_the_three_steps_in_order() -> None:
    sql = "SELECT 1 WHERE $__conditionalAll(s IN (${site:singlequote}), $site) AND $__timeFilter(ts) AND o IN ($org)"
    one_site = {**VARS, "site": Variable("site", ["RWEAA", "RWEAE"], ["RWEAE"])}
    assert render(sql, one_site, RANGE) == (
        "SELECT 1 WHERE s IN ('RWEAE') AND ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)"
        " AND o IN ('RWE')"
    )
    assert Variable("v", ["a"], [ALL]).values() == ["a"]

"""Alert hysteresis (streams.alerts): one raise per crossing, resolve only past the margin; hand-worked sequences."""

from __future__ import annotations

import datetime as dt

from schemas.config import load_config
from schemas.indicators import IndicatorSnapshot
from streams.alerts import AlertTracker
from streams.status import judge

CONFIG = load_config()
T0 = dt.datetime(
    2025, 9, 1, 8, 0, tzinfo=dt.UTC
)  # 2025/26: MOFD <= 100 (amber 10, margin 5); 4h >= 78 (amber 5, margin 1)


def _snap(indicator: str, value: float | None, minute: int, window: str = "live") -> IndicatorSnapshot:
    ts = T0 + dt.timedelta(minutes=minute)
    target = CONFIG.target_for(indicator, ts.date())
    return IndicatorSnapshot(
        ts=ts,
        indicator=indicator,
        window=window,
        scope_type="system",
        scope_code="QK1",
        value=value,
        numerator=value,
        denominator=None,
        target=None if target is None else target.value,
        status=judge(value, target),
        computed_at=ts,
    )


def _run(indicator: str, values: list[float | None], window: str = "live") -> list[tuple[int, str, float]]:
    tracker = AlertTracker(CONFIG)
    out = []
    for minute, value in enumerate(values):
        for alert in tracker.update([_snap(indicator, value, minute, window)]):
            out.append((minute, alert.state, alert.value))
    return out


def test_mofd_hovering_at_the_line_pages_once() -> None:
    # 98 green; 103 misses <=100 -> raised; 99 meets 100 but not 100-5=95 -> held; 104 and 112 (red) -> still held,
    # no second page; 94 <= 95 -> resolved; 101 -> a new crossing, raised again.
    events = _run("mofd_awaiting_plan", [98, 103, 99, 104, 112, 94, 101])
    assert events == [(1, "raised", 103), (5, "resolved", 94), (6, "raised", 101)]


def test_alert_carries_indicator_scope_value_and_threshold() -> None:
    tracker = AlertTracker(CONFIG)
    (alert,) = tracker.update([_snap("mofd_awaiting_plan", 130, 0)])
    assert (alert.indicator, alert.window, alert.scope_type, alert.scope_code) == (
        "mofd_awaiting_plan",
        "live",
        "system",
        "QK1",
    )
    assert (alert.value, alert.threshold, alert.op, alert.status) == (130, 100, "<=", "red")  # 130 - 100 > 10: red
    assert alert.ts == T0 and alert.raised_ts == T0


def test_higher_is_better_resolves_only_past_target_plus_margin() -> None:
    # >= 78, margin 1: 77.5 raised; 78.5 meets 78 but not 79 -> held; 79.0 >= 79 -> resolved.
    assert _run("ed_4h_pct", [80, 77.5, 78.5, 79.0], window="today") == [(1, "raised", 77.5), (3, "resolved", 79.0)]


def test_no_alerts_for_month_windows_missing_values_or_no_target() -> None:
    assert _run("ed_4h_pct", [70, 90, 70], window="month") == []
    assert _run("mofd_awaiting_plan", [None, 150, None], window="live") == [(1, "raised", 150)]
    assert _run("ed_in_department", [500, 1, 500]) == []  # no target configured


def test_mofd_target_only_applies_from_july_2025() -> None:
    tracker = AlertTracker(CONFIG)
    june = IndicatorSnapshot(
        ts=dt.datetime(2025, 6, 30, 12, tzinfo=dt.UTC),
        indicator="mofd_awaiting_plan",
        window="live",
        scope_type="system",
        scope_code="QK1",
        value=150,
        numerator=150,
        denominator=None,
        target=None,
        status="none",
        computed_at=T0,
    )
    assert tracker.update([june]) == []

"""Threshold alerts with hysteresis (INDICATORS.md, "Status and alerts").

An alert is raised once when an indicator's status leaves green (it misses its target) and is held until the value
is back past the target by the target's ``alert_margin``; only then is it resolved. A value hovering at the line
therefore pages no one twice. Worsening from amber to red while held does not raise again (one alert per crossing;
the raise records the status at the time). ``month`` windows never alert: they describe a closed month.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from schemas.alerts import AlertEvent
from schemas.config import PlatformConfig, Target
from schemas.indicators import IndicatorSnapshot, SnapshotRow
from streams.clock import local_date
from streams.status import TargetsInForce

ALERTING_WINDOWS = frozenset({"live", "today", "last_60m", "mtd"})
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def recovered(value: float, target: Target) -> bool:
    """Back past the target by the hysteresis margin."""
    shifted = target.value + target.alert_margin if target.higher_is_better else target.value - target.alert_margin
    return _OPS[target.op](value, shifted)


@dataclass
class AlertTracker:
    """Alert state per (indicator, window, scope); feed it every snapshot batch in event-time order."""

    config: PlatformConfig

    def __post_init__(self) -> None:
        self.active: dict[tuple[str, str, str, str], AlertEvent] = {}
        self.targets = TargetsInForce(self.config)

    def update(self, snapshots: Iterable[IndicatorSnapshot | SnapshotRow]) -> list[AlertEvent]:
        """The alert events the new snapshots cause (raised and resolved), in a stable order."""
        out: list[AlertEvent] = []
        ts: dt.datetime | None = None  # a batch's rows share their time: its day's targets are found once
        for snap in snapshots:
            if snap.window not in ALERTING_WINDOWS or snap.value is None or snap.status == "none":
                continue
            if snap.ts != ts:
                ts = snap.ts
                in_force = self.targets.on(local_date(ts))
            target = in_force[snap.indicator][1]
            if target is None:
                continue
            key = (snap.indicator, snap.window, snap.scope_type, snap.scope_code)
            held = self.active.get(key)
            if held is None and snap.status in ("amber", "red"):
                event = _event("raised", snap, target, snap.ts)
                self.active[key] = event
                out.append(event)
            elif held is not None and recovered(snap.value, target):
                del self.active[key]
                out.append(_event("resolved", snap, target, held.raised_ts))
        return out


def _event(
    state: Literal["raised", "resolved"],
    snap: IndicatorSnapshot | SnapshotRow,
    target: Target,
    raised: dt.datetime,
) -> AlertEvent:
    key = f"{snap.indicator}|{snap.window}|{snap.scope_type}|{snap.scope_code}|{raised.isoformat()}"
    return AlertEvent(
        alert_id=key,
        state=state,
        indicator=snap.indicator,
        window=snap.window,
        scope_type=snap.scope_type,
        scope_code=snap.scope_code,
        value=snap.value,
        threshold=target.value,
        op=target.op,
        status=snap.status,
        ts=snap.ts,
        raised_ts=raised,
    )

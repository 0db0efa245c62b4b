"""RAG status of a value against its target (INDICATORS.md, "Status and alerts")."""

from __future__ import annotations

import datetime as dt
import operator

from schemas.config import PlatformConfig, Target
from schemas.indicators import Status

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def judge(value: float | None, target: Target | None) -> Status:
    """green meets the target; amber misses it by at most ``amber_within``; red beyond; none without both."""
    if value is None or target is None:
        return "none"
    if _OPS[target.op](value, target.value):
        return "green"
    shortfall = target.value - value if target.higher_is_better else value - target.value
    return "amber" if shortfall <= target.amber_within else "red"


class TargetsOn(dict[str, tuple[float | None, Target | None]]):
    """Each indicator's (target value, target) in force on one local day, looked up on first use."""

    def __init__(self, config: PlatformConfig, day: dt.date) -> None:
        super().__init__()
        self.config = config
        self.day = day

    def __missing__(self, indicator: str) -> tuple[float | None, Target | None]:
        target = self.config.target_for(indicator, self.day)
        found = self[indicator] = (None, None) if target is None else (target.value, target)
        return found


class TargetsInForce:
    """The targets in force, kept for the latest local day asked for.

    Why: targets change only with the day (a financial year, an effective date), while a year's hourly replay
    finishes 3.7M rows; looking each indicator's target up again at every snapshot was a third of finishing them."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self._on = TargetsOn(config, dt.date.min)

    def on(self, day: dt.date) -> TargetsOn:
        if day != self._on.day:
            self._on = TargetsOn(self.config, day)
        return self._on

"""RAG status of a value against its target (INDICATORS.md, "Status and alerts")."""

from __future__ import annotations

import operator

from schemas.config import Target
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

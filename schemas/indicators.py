"""The indicator snapshot record (INDICATORS.md, "Snapshot record"): topic ``scc.indicators`` and ClickHouse history."""

from __future__ import annotations

import datetime as dt
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from schemas.events import UtcDatetime

Window = Literal["live", "today", "last_60m", "mtd", "month"]
ScopeType = Literal["system", "org", "site"]
Status = Literal["green", "amber", "red", "none"]


class IndicatorSnapshot(BaseModel):
    """One indicator value for one window and scope, as of ``ts`` (evaluation time T, UTC).

    Ratios always publish numerator and denominator so that any roll-up is a ratio of sums.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: UtcDatetime
    indicator: str
    window: Window
    scope_type: ScopeType
    scope_code: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: Status
    computed_at: dt.datetime


class SnapshotRow(NamedTuple):
    """The fields of :class:`IndicatorSnapshot`, in its order, as the engine computes them, without the model.

    A replay takes millions of snapshots (a year of one ICB, hourly: 3.7M rows) and the model's validation of values
    the engine has just computed was ~20% of an hourly snapshot; the replay stores and alerts on these rows, and
    everything that leaves the engine on a topic is validated by :meth:`validated`.
    """

    ts: dt.datetime
    indicator: str
    window: Window
    scope_type: ScopeType
    scope_code: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: Status
    computed_at: dt.datetime

    def validated(self) -> IndicatorSnapshot:
        return IndicatorSnapshot.model_validate(self._asdict())

"""The indicator snapshot record (INDICATORS.md, "Snapshot record"): topic ``scc.indicators`` and ClickHouse history."""

from __future__ import annotations

import datetime as dt
from typing import Literal

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

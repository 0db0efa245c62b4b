"""The alert record (topic ``scc.alerts`` and the ClickHouse alert log)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.events import UtcDatetime


class AlertEvent(BaseModel):
    """A record on ``scc.alerts`` and in the ClickHouse alert log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: str
    state: Literal["raised", "resolved"]
    indicator: str
    window: str
    scope_type: str
    scope_code: str
    value: float
    threshold: float
    op: str
    status: str
    ts: UtcDatetime  # event time T at which the crossing was seen
    raised_ts: UtcDatetime

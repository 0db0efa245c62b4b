"""The OPEL scoring framework as configuration: parameters, bands, weights and level cut-offs (versioned file)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class OpelParameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    indicator: str
    window: str
    weight: Annotated[float, Field(gt=0)]
    # before `bands`, so that the bands' check (below) sees it and its error points at the bands themselves
    lower_is_worse: bool = False
    bands: Annotated[list[float], Field(min_length=3, max_length=3)]

    @field_validator("bands")
    @classmethod
    def _ordered(cls, bands: list[float], info: ValidationInfo) -> list[float]:
        lower_is_worse = bool(info.data.get("lower_is_worse", False))
        if bands != sorted(bands, reverse=lower_is_worse):
            raise ValueError(f"bands must be {'descending' if lower_is_worse else 'ascending'}: {bands}")
        return bands

    def score(self, value: float) -> int:
        """1 (no pressure) to 4 (severe) against the band edges."""
        for n, edge in enumerate(self.bands, start=1):
            if (value >= edge) if self.lower_is_worse else (value <= edge):
                return n
        return 4


class OpelFramework(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    label: str
    parameters: dict[str, OpelParameter]
    level_cutoffs: Annotated[list[float], Field(min_length=3, max_length=3)]

    @field_validator("level_cutoffs")
    @classmethod
    def _ascending(cls, cutoffs: list[float]) -> list[float]:
        if cutoffs != sorted(cutoffs):
            raise ValueError(f"level_cutoffs must be ascending: {cutoffs}")
        return cutoffs

    def level(self, score: float) -> int:
        return 1 + sum(score >= cut for cut in self.level_cutoffs)

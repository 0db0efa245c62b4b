"""The OPEL scoring framework as configuration: parameters, bands, weights and level cut-offs (versioned file)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OpelParameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    indicator: str
    window: str
    weight: Annotated[float, Field(gt=0)]
    bands: Annotated[list[float], Field(min_length=3, max_length=3)]
    lower_is_worse: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> OpelParameter:
        expected = sorted(self.bands, reverse=self.lower_is_worse)
        if self.bands != expected:
            raise ValueError(f"bands must be {'descending' if self.lower_is_worse else 'ascending'}: {self.bands}")
        return self

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

    @model_validator(mode="after")
    def _ascending(self) -> OpelFramework:
        if self.level_cutoffs != sorted(self.level_cutoffs):
            raise ValueError(f"level_cutoffs must be ascending: {self.level_cutoffs}")
        return self

    def level(self, score: float) -> int:
        return 1 + sum(score >= cut for cut in self.level_cutoffs)

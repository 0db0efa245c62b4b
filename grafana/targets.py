"""The targets a financial year's boards and alert rules are generated from: the agents' own lookup.

Why by financial year: targets are versioned by financial year (``config/targets/<year>.yaml`` merged with the ICB's
``local_targets``), Grafana thresholds and Prometheus rules are static files, and the agents judge each snapshot with
:meth:`schemas.config.PlatformConfig.target_for`. Generating with that same method, as of the year's last day (so a
target that becomes effective during the year is included), keeps one source for status, thresholds and alerts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from schemas.config import PlatformConfig, Target, financial_year


def year_end(fy: str) -> dt.date:
    """31 March that closes financial year ``fy`` (e.g. '2025/26' -> 2026-03-31)."""
    return dt.date(int(fy[:4]) + 1, 3, 31)


def current_year(today: dt.date | None = None) -> str:
    """The financial year of ``today`` (default: today)."""
    return financial_year(today or dt.date.today())


@dataclass(frozen=True)
class YearTargets:
    """Every target in force in one financial year (national merged with local), keyed by indicator."""

    financial_year: str
    provisional: bool
    targets: dict[str, Target]

    def get(self, indicator: str) -> Target | None:
        return self.targets.get(indicator)


def targets_for_year(config: PlatformConfig, fy: str) -> YearTargets:
    """The targets of ``fy`` as the agents resolve them (local overrides national); error if the year is unknown."""
    year = config.target_years.get(fy)
    local = config.icb.local_targets.get(fy, {})
    if year is None and not local:
        known = ", ".join(sorted(config.target_years)) or "none"
        raise ValueError(f"no targets for financial year {fy} (config/targets has {known})")
    names = sorted({*(year.targets if year else {}), *local})
    end = year_end(fy)
    resolved = {n: t for n in names if (t := config.target_for(n, end)) is not None}
    return YearTargets(fy, bool(year and year.provisional), resolved)
